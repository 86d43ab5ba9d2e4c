//! Runs a test again, as a real process, inside new network and mount namespaces where only
//! loopback is up and `/etc/hosts` is the test's own: made-up host names resolve only as the
//! test says, nothing leaves the machine, and nothing of the host's network is visible.
//!
//! `netns::inside("name", hosts, || { ... })` in the test `name`: the outer run re-executes the
//! test binary for that one test under `unshare --net --mount` (which needs root, as CI has) and
//! asserts it passed; the inner run (told by `TEL_NETNS_TEST`) runs the closure. Processes the
//! closure starts inherit the namespaces; remove `TEL_NETNS_TEST` from their environment if they
//! are this test binary again (see [`INNER`]).

use std::process::Command;

/// The variable that marks the inner run.
pub const INNER: &str = "TEL_NETNS_TEST";

/// Whether this process is the inner run of `test`.
fn is_inner(test: &str) -> bool {
    std::env::var(INNER).is_ok_and(|t| t == test)
}

/// Whether new namespaces can be made here; the reason when not.
fn available() -> Result<(), String> {
    let probe = Command::new("unshare")
        .args(["--net", "--mount", "--", "ip", "link", "set", "lo", "up"])
        .output();
    match probe {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`unshare --net --mount ip link set lo up` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run unshare: {e}")),
    }
}

/// Runs `body` in the namespaces, with `hosts` (lines of a hosts file, `localhost` added) as
/// `/etc/hosts`. Outside CI, a machine that cannot make namespaces skips the test with a
/// message; in CI (`CI` set) that is a failure.
pub fn inside(test: &str, hosts: &str, body: impl FnOnce()) {
    if is_inner(test) {
        body();
        return;
    }
    if let Err(why) = available() {
        if std::env::var_os("CI").is_some() {
            panic!("{test} needs a network namespace: {why}");
        }
        eprintln!("SKIPPED {test}: it needs a network namespace (run as root): {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tel-netns-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts_file = dir.join("hosts");
    std::fs::write(
        &hosts_file,
        format!("127.0.0.1 localhost\n::1 localhost\n{hosts}\n"),
    )
    .unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args(["--net", "--mount", "--", "sh", "-c"])
        .arg(
            "ip link set lo up && mount --bind \"$1\" /etc/hosts && \
             exec \"$2\" \"$3\" --exact --nocapture --test-threads=1",
        )
        .arg("sh")
        .arg(&hosts_file)
        .arg(&exe)
        .arg(test)
        .env(INNER, test)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{test} failed in its network namespace:\n{text}"
    );
    assert!(
        text.contains("1 passed"),
        "{test} did not run in its network namespace:\n{text}"
    );
}
