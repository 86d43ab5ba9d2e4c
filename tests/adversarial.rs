//! The defects an adversarial pass found (issue: files deleted that are not ours, another
//! tenant's events sent, claim races, forks, orphaned temporaries, unbounded reads, FIFOs,
//! endpoints that never deliver, redaction defeated by truncation, re-entrant `tel_init`, a
//! stray stderr line, uncapped directives, memory per key). Each test drives the C ABI against
//! the emulator, in real processes where processes matter: a second process holding the cache
//! lock, `fork`, SIGKILL, a FIFO that would block a process forever. Linux: it reads /proc.
#![cfg(target_os = "linux")]

mod common;
mod hardening;

use common::*;
use hardening::Capture;
use serde_json::{json, Value};
use std::ffi::{c_char, c_void};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::ptr::null_mut;
use std::time::{Duration, Instant};
use tel::ffi;

/// Another tenant's key, sharing a cache file with [`IKEY`]'s tenant.
const OTHER_IKEY: &str = "othertenant0-aaaa-bbbb-cccc";
const OTHER_TENANT: &str = "othertenant0";

/// The part of [`IKEY`] after the tenant token: what must never show, even cut short.
fn secret() -> &'static str {
    &IKEY[TENANT.len() + 1..]
}

/// A port where nothing listens: every request fails to connect (an outage).
fn fast(endpoint: &str, cache: Option<&Path>, extra: Value) -> Value {
    let c = json!({
        "ikey": IKEY,
        "endpoint": endpoint,
        "cache_path": cache,
        "flush_interval_ms": 20,
        "retry_initial_ms": 20,
        "retry_max_ms": 100,
        "http_timeout_ms": 5000,
    });
    merged(c, extra)
}

/// Leaves `n` events named `name` of the key `ikey` in `cache`, through a session that shut
/// down during an outage.
fn cache_through_outage(ikey: &str, cache: &Path, n: usize, name: &str) {
    init_ok(&fast(&dead_endpoint(), Some(cache), json!({"ikey": ikey})));
    for i in 0..n {
        log_ok(name, Some(&format!("{{\"i\":{i}}}")));
    }
    let _ = shutdown(2000);
    assert_eq!(stat("persisted"), n as u64, "{}", stats());
    assert_conserved();
}

/// Runs this binary's test `test` as a child process with `env` (and without `TEL_LOG`),
/// killing it past `limit`; returns its output and whether it finished in time.
fn run_child_within(test: &str, env: &[(&str, String)], limit: Duration) -> (Output, bool) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env_remove("TEL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let readers = (
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = out.read_to_end(&mut v);
            v
        }),
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v);
            v
        }),
    );
    let start = Instant::now();
    let mut in_time = true;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            in_time = false;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: readers.0.join().unwrap(),
        stderr: readers.1.join().unwrap(),
    };
    (output, in_time)
}

/// The environment of a child in `role`, with `extra` variables.
fn role_env<'a>(role: &str, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut env = vec![("TEL_TEST_ROLE", role.to_owned())];
    env.extend_from_slice(extra);
    env
}

/// The value printed by a child as `KEY=value`.
fn printed(out: &Output, key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let prefix = format!("{key}=");
    // The first one may follow the harness's "test NAME ... " on the same line.
    text.lines()
        .find_map(|l| l.split(&prefix).nth(1).map(|v| v.trim().to_owned()))
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs this binary's test `test` as a child process in `role` (see [`role_env`]) and returns
/// its output once it has succeeded within `limit`.
fn run_role_ok(test: &str, role: &str, extra: &[(&str, String)], limit: Duration) -> Output {
    let (out, in_time) = run_child_within(test, &role_env(role, extra), limit);
    assert!(in_time && out.status.success(), "{}", describe(&out));
    out
}

/// The configuration a child was handed in `TEL_TEST_CONFIG`.
fn child_config() -> Value {
    serde_json::from_str(&std::env::var("TEL_TEST_CONFIG").unwrap()).unwrap()
}

/// Starts this binary's test `test` as a child process with `env` and waits until it prints
/// `READY`; returns the child and the lines it printed up to then.
fn spawn_until_ready(test: &str, env: &[(&str, String)]) -> (Child, Vec<String>) {
    let mut child = spawn_child(test, env);
    let mut printed = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // (It may follow the harness's "test NAME ... " on the same line.)
        let ready = line.ends_with("READY");
        printed.push(line);
        if ready {
            return (child, printed);
        }
    }
    let _ = child.wait();
    panic!("{test} ended without READY: {printed:?}");
}

/// The child side's end: prints `READY` and waits to be killed.
fn ready_until_killed() -> ! {
    println!("READY");
    loop {
        std::thread::park();
    }
}

/// The child side's end in the fork tests: forks a grandchild that lives on (it pauses until
/// it is killed), prints its pid as `GRANDCHILD`, then `READY`, and waits to be killed.
///
/// `READY` waits until the grandchild has run: the fork handlers run in the new process
/// before `fork` returns there, and a process the scheduler has not run yet still shares the
/// parent's descriptors (and their locks). The test checks what the handlers did, not whether
/// the grandchild was scheduled before the parent died.
fn fork_until_killed() -> ! {
    let mut pipe = [0; 2];
    // SAFETY: two descriptors into a local array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the grandchild only makes async-signal-safe calls (write, pause).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: one byte from a static buffer into the pipe.
        unsafe { libc::write(pipe[1], b"r".as_ptr().cast(), 1) };
        loop {
            // SAFETY: async-signal-safe.
            unsafe { libc::pause() };
        }
    }
    let mut byte = 0u8;
    // SAFETY: closing this process's write end; reading one byte into a local.
    let n = unsafe {
        libc::close(pipe[1]);
        libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1)
    };
    assert_eq!(n, 1, "the grandchild never ran");
    println!("GRANDCHILD={pid}");
    ready_until_killed()
}

/// The fork tests' scenario: the child `test` (one that ends in [`fork_until_killed`]) runs a
/// session on `cache` against a collector whose requests hang, forks a grandchild and is
/// killed; a new session on the same cache, while the grandchild lives, must deliver what the
/// dead one left. Returns the `data.i` values the collector accepted in that session.
fn delivered_while_a_forked_child_lives(test: &str, role: &str, cache: &Path) -> Vec<u64> {
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let config = fast(
        &hang.endpoint(),
        Some(cache),
        json!({"http_timeout_ms": 60_000}),
    );
    let (mut parent, printed) = spawn_until_ready(
        test,
        &role_env(role, &[("TEL_TEST_CONFIG", config.to_string())]),
    );
    let grandchild: i32 = printed
        .iter()
        .find_map(|l| l.split("GRANDCHILD=").nth(1))
        .map_or(0, |pid| pid.trim().parse().unwrap());
    assert!(grandchild > 0, "the child forked");
    // The session dies; its forked child lives on.
    let _ = parent.kill();
    let _ = parent.wait();
    let c = Collector::start().unwrap();
    init_ok(&fast(&c.endpoint(), Some(cache), json!({})));
    let flushed = flush(10_000);
    let delivered = data_i(&c.accepted());
    // SAFETY: a process this test's child started.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert_eq!(flushed, 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    delivered
}

fn vm_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

// ---------------------------------------------------------------------------------------------
// 3. Files that are not ours are never deleted.

/// A `cache_path` naming a file that is not a cache: the file is left exactly as it was,
/// whether the session delivers everything or has to persist at shutdown.
#[test]
fn a_cache_path_naming_another_file_leaves_it_untouched() {
    let _s = serial();
    let dir = temp_dir("not-a-cache");
    let notes = dir.join("notes.txt");
    let text = "my notes, not a cache\nsecond line\n";
    let c = Collector::start().unwrap();
    for endpoint in [c.endpoint(), dead_endpoint()] {
        std::fs::write(&notes, text).unwrap();
        init_ok(&fast(&endpoint, Some(&notes), json!({})));
        for _ in 0..3 {
            log_ok("Not.A.Cache", None);
        }
        if endpoint == c.endpoint() {
            assert_eq!(flush(10_000), 0, "{}", last_error());
        }
        let _ = shutdown(1000);
        assert_conserved();
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), text, "{endpoint}");
    }
    assert_eq!(c.accepted_count(), 3);
    // Nor does an opt-out session, which deletes the cache file.
    init_ok(&fast(
        &c.endpoint(),
        Some(&notes),
        json!({"enabled": false}),
    ));
    assert_eq!(shutdown(1000), 0);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text, "opt-out");
}

/// Tenant B's session on a file that holds tenant A's entries: A's entries stay, and A's next
/// session delivers every one of them.
#[test]
fn another_tenants_entries_survive_a_session_of_this_tenant() {
    let _s = serial();
    let cache = temp_dir("two-tenants").join("shared.cache");
    cache_through_outage(OTHER_IKEY, &cache, 5, "Other.Tenant");
    let c = Collector::start().unwrap();
    init_ok(&fast(&c.endpoint(), Some(&cache), json!({})));
    log_ok("This.Tenant", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("replayed"), 0);
    assert_conserved();
    assert_eq!(names(&c.accepted()), vec!["This.Tenant"]);
    let left = read_lines(&cache);
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left
        .iter()
        .all(|l| l.contains(&format!("\"iKey\":\"o:{OTHER_TENANT}\""))));

    let other = Collector::start().unwrap();
    init_ok(&fast(
        &other.endpoint(),
        Some(&cache),
        json!({"ikey": OTHER_IKEY}),
    ));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("replayed"), 5);
    assert_conserved();
    assert_eq!(data_i(&other.accepted()), vec![0, 1, 2, 3, 4]);
}

// ---------------------------------------------------------------------------------------------
// 4. Replay takes this tenant's lines by a real parse, and sets unsendable lines aside.

#[test]
fn replay_takes_this_tenants_lines_by_parse_and_sets_bad_ones_aside() {
    let _s = serial();
    let cache = temp_dir("replay-checks").join("events.cache");
    cache_through_outage(IKEY, &cache, 4, "Good.Entry");
    let good = read_lines(&cache);
    assert_eq!(good.len(), 4);
    let first = &good[0];
    let data0 = "\"data\":{\"i\":0}";
    assert!(first.contains(data0), "{first}");
    let time = serde_json::from_str::<Value>(first).unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another tenant's line whose data holds the text of this tenant's iKey.
    let foreign = format!(
        r#"{{"ver":"4.0","name":"Other.Tenant","time":"{time}","iKey":"o:{OTHER_TENANT}","data":{{"iKey":"o:{TENANT}"}}}}"#
    );
    // This tenant's lines that tel_log would never have accepted.
    let crlf = first.replace(data0, "\"data\":{\"i\":100}") + "\r";
    let huge_number = first.replace(
        data0,
        &format!("\"data\":{{\"i\":101,\"n\":1{}}}", "0".repeat(5000)),
    );
    let bad_name = first.replace("\"name\":\"Good.Entry\"", "\"name\":\"x\"");
    let mut file = String::new();
    for l in [
        &good[0],
        &foreign,
        &crlf,
        &good[1],
        &huge_number,
        &good[2],
        &bad_name,
        &good[3],
    ] {
        file.push_str(l);
        file.push('\n');
    }
    std::fs::write(&cache, file).unwrap();

    let c = Collector::start().unwrap();
    let capture = Capture::start();
    init_ok(&fast(&c.endpoint(), Some(&cache), json!({})));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    capture.stop();
    assert_conserved();
    let s = stats();
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2, 3], "{s}");
    assert!(
        c.requests().iter().all(|r| r.status == 200),
        "a request was refused: {:?}",
        c.requests()
            .iter()
            .map(|r| (r.status, r.collector_error.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(s["sent"], 4, "{s}");
    assert_eq!(s["rejected"], 3, "unsendable lines are counted: {s}");
    assert_eq!(s["replayed"], 7, "{s}");
    assert_eq!(
        read_lines(&cache),
        vec![foreign],
        "the other tenant's line stays"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. A claim file is created and locked under the cache lock.

/// The child side: holds the cache lock (as another process mid-write would) until killed.
#[test]
fn child_holding_the_cache_lock() {
    if child_role().as_deref() != Some("hold-lock") {
        return;
    }
    let lock = std::env::var("TEL_TEST_LOCK").unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)
        .unwrap();
    f.lock().unwrap();
    ready_until_killed()
}

/// While another process holds the cache lock, no claim file appears: one that did could be
/// taken for a dead session's (its lock not yet taken) and deleted by that process, and with
/// it the entries the session then claims.
#[test]
fn no_claim_file_appears_while_another_process_holds_the_cache_lock() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let dir = temp_dir("claim-race");
    let cache = dir.join("events.cache");
    cache_through_outage(IKEY, &cache, 3, "Claim.Race");
    let (mut holder, _) = spawn_until_ready(
        "child_holding_the_cache_lock",
        &role_env(
            "hold-lock",
            &[("TEL_TEST_LOCK", format!("{}.lock", cache.display()))],
        ),
    );

    let c = Collector::start().unwrap();
    let capture = Capture::start();
    init_ok(&fast(&c.endpoint(), Some(&cache), json!({})));
    let mut seen = Vec::new();
    let gave_up = eventually(Duration::from_secs(20), || {
        seen.extend(claim_files(&dir));
        capture.has("another process holds the cache lock")
    });
    seen.extend(claim_files(&dir));
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(gave_up, "the worker waited for the lock and gave up");
    assert!(
        seen.is_empty(),
        "claim files appeared under another process's lock: {seen:?}"
    );
    assert_eq!(shutdown(2000), 0);
    capture.stop();
    assert_conserved();

    // The entries are all still there for the next session.
    init_ok(&fast(&c.endpoint(), Some(&cache), json!({})));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// 6. A forked child does not keep a dead session's claim locked.

/// The child side: a session that claims the cache (its requests hang), then forks a
/// grandchild that lives on, and waits to be killed.
#[test]
fn child_forking_with_a_claim() {
    if child_role().as_deref() != Some("fork-claim") {
        return;
    }
    let config = child_config();
    init_ok(&config);
    assert!(eventually(Duration::from_secs(20), || stat("replayed") == 5));
    fork_until_killed()
}

#[test]
fn a_forked_child_does_not_keep_a_dead_sessions_claim_locked() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let cache = temp_dir("fork-claim").join("events.cache");
    cache_through_outage(IKEY, &cache, 5, "Fork.Claim");
    assert_eq!(
        delivered_while_a_forked_child_lives("child_forking_with_a_claim", "fork-claim", &cache),
        vec![0, 1, 2, 3, 4],
        "the dead session's claim was recovered while its forked child lives"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Orphaned temporary files are removed.

#[test]
fn orphaned_temporary_files_are_removed() {
    let _s = serial();
    let dir = temp_dir("orphans");
    let cache = dir.join("events.cache");
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let me = std::process::id();
    let orphans = [
        "events.cache.1234567890.tmp".to_owned(), // a writer of an earlier version
        format!("events.cache.{dead}.42.tmp"),
        format!("events.cache.kill.{dead}.7.tmp"),
        format!("device-id.{dead}.9.tmp"),
    ];
    let keep = [
        format!("device-id.{me}.1.tmp"), // a writer that is alive
        "notes.tmp".to_owned(),          // not the library's
    ];
    for name in orphans.iter().chain(&keep) {
        std::fs::write(dir.join(name), vec![b'x'; 1 << 20]).unwrap();
    }
    let c = Collector::start().unwrap();
    init_ok(&fast(&c.endpoint(), Some(&cache), json!({})));
    log_ok("Orphans.Gone", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    for name in &orphans {
        assert!(!dir.join(name).exists(), "{name} is left");
    }
    for name in &keep {
        assert!(dir.join(name).exists(), "{name} was removed");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Reading the cache is bounded in memory.

/// The child side: a session on `TEL_TEST_CONFIG`'s cache; prints the peak RSS growth.
#[test]
fn child_reading_a_big_cache() {
    if child_role().as_deref() != Some("big-cache") {
        return;
    }
    let config = child_config();
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let before = vm_kb("VmHWM:");
    init_ok(&config);
    println!("FLUSH={}", flush(60_000));
    println!("HWM_GROWTH_KB={}", vm_kb("VmHWM:").saturating_sub(before));
    println!("SHUTDOWN={}", shutdown(2000));
    println!("STATS={}", stats());
}

/// A cache file with a 256 MiB line (a hole of NULs) between two entries: the line is read
/// past without being kept, and both entries are delivered.
#[test]
fn an_overlong_line_is_read_past_in_bounded_memory() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let cache = temp_dir("big-cache").join("events.cache");
    cache_through_outage(IKEY, &cache, 2, "Big.Cache");
    let lines = read_lines(&cache);
    {
        let mut f = std::fs::File::create(&cache).unwrap();
        writeln!(f, "{}", lines[0]).unwrap();
        let at = f.metadata().unwrap().len();
        f.set_len(at + (256 << 20)).unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::End(0)).unwrap();
        writeln!(f, "\n{}", lines[1]).unwrap();
    }
    let c = Collector::start().unwrap();
    let config = fast(&c.endpoint(), Some(&cache), json!({}));
    let out = run_role_ok(
        "child_reading_a_big_cache",
        "big-cache",
        &[("TEL_TEST_CONFIG", config.to_string())],
        Duration::from_secs(120),
    );
    let growth: u64 = printed(&out, "HWM_GROWTH_KB").unwrap().parse().unwrap();
    assert!(
        growth < 48 * 1024,
        "peak RSS grew by {growth} kB reading the cache"
    );
    assert_eq!(printed(&out, "FLUSH").as_deref(), Some("0"));
    assert_eq!(data_i(&c.accepted()), vec![0, 1]);
}

// ---------------------------------------------------------------------------------------------
// 9. FIFOs never block.

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// The child side: a FIFO in place of the file `TEL_TEST_FIFO` names; the session must start,
/// deliver, and leave no thread behind.
#[test]
fn child_with_a_fifo() {
    if child_role().as_deref() != Some("fifo") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap();
    let dir = PathBuf::from(env("TEL_TEST_DIR"));
    mkfifo(&dir.join(env("TEL_TEST_FIFO")));
    let threads = thread_count();
    init_ok(&fast(
        &env("TEL_TEST_ENDPOINT"),
        Some(&dir.join("events.cache")),
        json!({}),
    ));
    for _ in 0..3 {
        log_ok("Fifo.Event", None);
    }
    println!("FLUSH={}", flush(10_000));
    println!("SHUTDOWN={}", shutdown(1000));
    println!("THREADS_LEFT={}", thread_count() as i64 - threads as i64);
    println!("STATS={}", stats());
}

#[test]
fn a_fifo_in_place_of_a_file_never_blocks() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    for fifo in [
        "events.cache",
        "events.cache.kill",
        "device-id",
        "events.cache.lock",
    ] {
        let dir = temp_dir("fifo");
        let before = c.accepted_count();
        let (out, in_time) = run_child_within(
            "child_with_a_fifo",
            &role_env(
                "fifo",
                &[
                    ("TEL_TEST_DIR", dir.display().to_string()),
                    ("TEL_TEST_FIFO", fifo.to_owned()),
                    ("TEL_TEST_ENDPOINT", c.endpoint()),
                ],
            ),
            Duration::from_secs(30),
        );
        assert!(in_time, "{fifo}: the process hung\n{}", describe(&out));
        assert!(out.status.success(), "{fifo}: {}", describe(&out));
        assert_eq!(printed(&out, "FLUSH").as_deref(), Some("0"), "{fifo}");
        assert_eq!(printed(&out, "SHUTDOWN").as_deref(), Some("0"), "{fifo}");
        assert_eq!(
            printed(&out, "THREADS_LEFT").as_deref(),
            Some("0"),
            "{fifo}: the worker outlived tel_shutdown"
        );
        assert_eq!(c.accepted_count() - before, 3, "{fifo}");
    }
}

// ---------------------------------------------------------------------------------------------
// 10. An endpoint either works or is refused at init.

/// A one-request-at-a-time HTTP collector on `[::1]`: answers 200 and counts the lines.
fn ipv6_collector() -> Option<(u16, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("[::1]:0").ok()?;
    let port = listener.local_addr().unwrap().port();
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = lines.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            count.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            let answer = format!("{{\"acc\":{n}}}");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Some((port, lines))
}

#[test]
fn endpoints_work_in_any_scheme_case_and_on_ipv6_loopback() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let port = c.port();
    for endpoint in [
        format!("HTTP://127.0.0.1:{port}/OneCollector/1.0/"),
        format!("Http://localhost:{port}/OneCollector/1.0/"),
    ] {
        let before = c.accepted_count();
        init_ok(&fast(&endpoint, None, json!({})));
        log_ok("Endpoint.Case", None);
        assert_eq!(flush(10_000), 0, "{endpoint}: {}", last_error());
        assert_eq!(shutdown(1000), 0);
        assert_eq!(c.accepted_count() - before, 1, "{endpoint}");
    }
    let (v6_port, lines) = ipv6_collector().expect("::1 is up");
    let endpoint = format!("http://[::1]:{v6_port}/OneCollector/1.0/");
    init_ok(&fast(&endpoint, None, json!({"compression": "none"})));
    log_ok("Endpoint.Ipv6", None);
    log_ok("Endpoint.Ipv6", None);
    assert_eq!(flush(10_000), 0, "{endpoint}: {}", last_error());
    assert_eq!(shutdown(1000), 0);
    assert_eq!(stat("sent"), 2);
    assert_eq!(lines.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A host part that only looks like loopback is refused at init.
    for endpoint in [
        format!("http://127.0.0.1#.example.com:{port}/"),
        format!("http://127.0.0.1:{port}#x/OneCollector/1.0/"),
        format!("http://127.0.0.1%2eexample.com:{port}/"),
    ] {
        assert_eq!(
            init(&fast(&endpoint, None, json!({}))),
            2,
            "{endpoint} was accepted"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Redaction is not defeated by truncation.

fn assert_no_secret(text: &str, what: &str) {
    let s = secret();
    assert!(
        !text.contains(&s[..6]) && !text.contains(&format!("{TENANT}-{}", &s[..1])),
        "{what} shows part of the key: {text}"
    );
}

#[test]
fn a_key_cut_short_by_an_excerpt_is_still_redacted() {
    let _s = serial();
    let c = Collector::start().unwrap();
    // The 200-byte body excerpt ends inside the key's secret part.
    let body = format!("{}{IKEY} and more", "x".repeat(150));
    c.push(Scripted::status(503).with_body(body));
    let capture = Capture::start();
    init_ok(&fast(&c.endpoint(), None, json!({})));
    log_ok("Redact.Body", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(1000), 0);
    let lines = capture.stop();
    assert!(lines.iter().any(|l| l.contains("503")), "{lines:?}");
    for l in &lines {
        assert_no_secret(l, "a log line");
    }
    // The 64-character excerpt of a configuration error ends inside the key.
    for (key, value) in [
        ("endpoint", format!("ftp://{IKEY}")),
        ("compression", format!("x{IKEY}")),
    ] {
        let mut cfg = json!({"ikey": IKEY});
        cfg[key] = json!(value);
        assert_eq!(init(&cfg), 2);
        assert_no_secret(&last_error(), key);
    }
}

// ---------------------------------------------------------------------------------------------
// 12. A re-entrant tel_init from the logger callback is refused.

static INNER_INIT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn init_again(_: i32, _: *const c_char, _: *mut c_void) {
    let config = format!("{{\"ikey\":\"{IKEY}\",\"enabled\":false,\"cache_path\":null}}\0");
    // SAFETY: a NUL-terminated string.
    let rc = unsafe { ffi::tel_init(config.as_ptr().cast()) };
    INNER_INIT.store(rc, std::sync::atomic::Ordering::SeqCst);
}

#[test]
fn child_initialising_from_the_logger() {
    if child_role().as_deref() != Some("reentrant-init") {
        return;
    }
    assert_eq!(ffi::tel_set_logger(Some(init_again), 5, null_mut()), 0);
    let rc = init(&json!({"ikey": IKEY, "enabled": false, "cache_path": null}));
    println!("OUTER={rc}");
    println!(
        "INNER={}",
        INNER_INIT.load(std::sync::atomic::Ordering::SeqCst)
    );
    let _ = ffi::tel_set_logger(None, 0, null_mut());
    println!("SHUTDOWN={}", shutdown(0));
}

#[test]
fn tel_init_from_the_logger_callback_under_opt_out_is_refused() {
    if child_role().is_some() {
        return;
    }
    let out = run_role_ok(
        "child_initialising_from_the_logger",
        "reentrant-init",
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(printed(&out, "OUTER").as_deref(), Some("0"));
    // TEL_ERR_ALREADY_INITIALIZED: a session is being started on this thread.
    assert_eq!(
        printed(&out, "INNER").as_deref(),
        Some("5"),
        "{}",
        describe(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 13. With TEL_LOG unset, nothing reaches stderr, even while the logger is being unset.

extern "C" fn quiet(_: i32, _: *const c_char, _: *mut c_void) {}

#[test]
fn child_unsetting_the_logger_while_lines_are_logged() {
    if child_role().as_deref() != Some("stderr-race") {
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let logger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                ffi::tel_set_logger(Some(quiet), 5, null_mut());
                ffi::tel_set_logger(None, 0, null_mut());
            }
        })
    };
    // Every opt-out tel_init logs an info line.
    let config = json!({"ikey": IKEY, "enabled": false, "cache_path": null});
    for _ in 0..80_000 {
        assert_eq!(init(&config), 0);
        let _ = shutdown(0);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    logger.join().unwrap();
    println!("DONE=1");
}

#[test]
fn no_line_reaches_stderr_while_the_logger_is_unset() {
    if child_role().is_some() {
        return;
    }
    let out = run_role_ok(
        "child_unsetting_the_logger_while_lines_are_logged",
        "stderr-race",
        &[],
        Duration::from_secs(120),
    );
    assert_eq!(printed(&out, "DONE").as_deref(), Some("1"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("tel ["), "stray stderr lines:\n{stderr}");
}

// ---------------------------------------------------------------------------------------------
// 14. Directives past 2^64 are capped, not ignored; memory per key is bounded.

#[test]
fn retry_after_and_kill_duration_past_u64_are_capped() {
    let _s = serial();
    let huge = "18446744073709551616"; // 2^64
    let c = Collector::start().unwrap();
    c.push(Scripted::status(503).with_header("Retry-After", huge));
    let capture = Capture::start();
    init_ok(&fast(&c.endpoint(), None, json!({})));
    log_ok("Retry.After", None);
    assert!(
        eventually(Duration::from_secs(20), || capture.has("backing off")),
        "the worker backed off"
    );
    let _ = shutdown(0);
    let lines = capture.stop();
    let wait_ms: u64 = lines
        .iter()
        .find_map(|l| {
            let rest = l.split(" tried again in ").nth(1)?;
            rest.split(" ms").next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no backoff line in {lines:?}"));
    assert!(
        wait_ms >= 3_600_000,
        "Retry-After 2^64 must be capped at one hour, the wait was {wait_ms} ms"
    );

    let k = Collector::start().unwrap();
    k.push(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", huge),
    );
    init_ok(&fast(&k.endpoint(), None, json!({})));
    log_ok("Kill.Duration", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    let until = stat("killed_until_ms");
    assert_eq!(shutdown(1000), 0);
    assert!(until > 0, "kill-duration 2^64 must open the longest window");
}

/// The child side: init/shutdown cycles with a new key each time; prints RSS growth.
#[test]
fn child_cycling_keys() {
    if child_role().as_deref() != Some("key-cycles") {
        return;
    }
    let cycle = |i: usize| {
        let key = format!("t{i}-secret-part-of-key-number-{i:08}-0123456789abcdef");
        assert_eq!(
            init(&json!({"ikey": key, "enabled": false, "cache_path": null})),
            0
        );
        assert_eq!(shutdown(0), 0);
    };
    for i in 0..2_000 {
        cycle(i);
    }
    let before = vm_kb("VmRSS:");
    for i in 2_000..42_000 {
        cycle(i);
    }
    println!("RSS_GROWTH_KB={}", vm_kb("VmRSS:").saturating_sub(before));
}

#[test]
fn init_shutdown_cycles_with_new_keys_keep_memory_flat() {
    if child_role().is_some() {
        return;
    }
    let out = run_role_ok(
        "child_cycling_keys",
        "key-cycles",
        &[],
        Duration::from_secs(300),
    );
    let growth: u64 = printed(&out, "RSS_GROWTH_KB").unwrap().parse().unwrap();
    // 40,000 keys at ~140 bytes each would be ~5,500 kB.
    assert!(growth < 1024, "RSS grew by {growth} kB over 40,000 keys");
}

// ---------------------------------------------------------------------------------------------
// 1.1 additions: a purge and a critical-events file follow the same rules.

/// `tel_purge` on a `cache_path` naming a file that is not a cache leaves it, and on a file
/// shared with another tenant deletes this tenant's entries only.
#[test]
fn a_purge_deletes_this_tenants_entries_only() {
    let _s = serial();
    let dir = temp_dir("purge-not-ours");
    let notes = dir.join("notes.txt");
    let text = "my notes, not a cache\n";
    std::fs::write(&notes, text).unwrap();
    let purge = |cfg: &Value| {
        let c = std::ffi::CString::new(cfg.to_string()).unwrap();
        // SAFETY: a NUL-terminated string.
        unsafe { ffi::tel_purge(c.as_ptr()) }
    };
    assert_eq!(
        purge(&json!({"ikey": IKEY, "cache_path": notes})),
        0,
        "{}",
        last_error()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);

    let cache = dir.join("shared.cache");
    cache_through_outage(OTHER_IKEY, &cache, 3, "Other.Tenant");
    cache_through_outage(IKEY, &cache, 2, "This.Tenant");
    assert_eq!(read_lines(&cache).len(), 5);
    assert_eq!(
        purge(&json!({"ikey": IKEY, "cache_path": cache})),
        0,
        "{}",
        last_error()
    );
    let left = read_lines(&cache);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left
        .iter()
        .all(|l| l.contains(&format!("o:{OTHER_TENANT}"))));
}

/// The child side: logs critical events (each in the critical-events file before the call
/// returns; requests hang), forks a grandchild that lives on, and waits to be killed.
#[test]
fn child_forking_with_critical_events() {
    if child_role().as_deref() != Some("fork-critical") {
        return;
    }
    let config = child_config();
    init_ok(&config);
    for i in 0..3 {
        assert_eq!(
            log_ex(
                "Fork.Critical",
                Some(&format!("{{\"i\":{i}}}")),
                Some(r#"{"priority":"critical"}"#)
            ),
            0,
            "{}",
            last_error()
        );
    }
    fork_until_killed()
}

/// A forked child does not keep a dead session's critical-events file locked: the next
/// session delivers the critical events while the child lives.
#[test]
fn a_forked_child_does_not_keep_a_dead_sessions_critical_events_locked() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let cache = temp_dir("fork-critical").join("events.cache");
    assert_eq!(
        delivered_while_a_forked_child_lives(
            "child_forking_with_critical_events",
            "fork-critical",
            &cache
        ),
        vec![0, 1, 2],
        "the dead session's critical events were recovered while its forked child lives"
    );
}
