//! `telctl audit` on audit files written by the library's own writer: the listing, `--name`,
//! and `--follow` while lines are appended and the file rotates.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use support::{telctl, TempDir};
use tel::internals::privacy::{AuditFile, AuditOutcome};

fn envelope(name: &str, data: &str) -> String {
    format!(
        r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc123","ext":{{"sdk":{{"seq":1}}}},"data":{data}}}"#
    )
}

fn write(path: &Path, outcome: AuditOutcome, status: u16, events: &[String]) {
    AuditFile::open(path, 8_388_608).record(outcome, status, events);
}

#[test]
fn lists_each_event_and_filters_by_name() {
    let dir = TempDir::new("audit-list");
    let path = dir.path().join("audit.jsonl");
    write(
        &path,
        AuditOutcome::Sent,
        200,
        &[
            envelope("App.Start", r#"{"z":1,"a":"<email>"}"#),
            envelope("App.Stop", "{}"),
        ],
    );
    write(
        &path,
        AuditOutcome::Rejected,
        400,
        &[envelope("App.Start", r#"{"n":2}"#)],
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"not a record\n"))
        .unwrap();
    let file = path.to_str().unwrap();

    let run = telctl(dir.path(), &["audit", file], &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].contains(" sent ") && lines[0].contains(" 200 "),
        "{}",
        lines[0]
    );
    // The data as sent: its own key order.
    assert!(
        lines[0].contains("App.Start") && lines[0].ends_with(r#"{"z":1,"a":"<email>"}"#),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("App.Stop") && lines[1].ends_with("{}"));
    assert!(
        lines[2].contains("rejected")
            && lines[2].contains(" 400 ")
            && lines[2].ends_with(r#"{"n":2}"#)
    );
    assert!(run.stderr.contains("1 line skipped"), "{}", run.stderr);
    assert!(!run.stdout.contains('\x1b'), "no colours off a terminal");

    let only = telctl(dir.path(), &["audit", file, "--name", "App.Start"], &[]);
    assert_eq!(only.code, 0);
    assert_eq!(only.stdout.lines().count(), 2, "{}", only.stdout);
    assert!(only.stdout.lines().all(|l| l.contains("App.Start")));

    let missing = telctl(dir.path(), &["audit", &format!("{file}.missing")], &[]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("cannot read"), "{}", missing.stderr);
}

/// Lines of a running `telctl audit --follow`, as they come.
struct Follower {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(cache_dir: &Path, path: &Path) -> Follower {
        let mut child = Command::new(env!("CARGO_BIN_EXE_telctl"))
            .args(["audit", "--follow", path.to_str().unwrap()])
            .env("TEL_CACHE_DIR", cache_dir)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Follower { child, lines }
    }

    /// The next line that holds `text`, skipping none that hold something else: lines come in
    /// file order. The timeout is a safety net against a hang, not a synchronisation.
    fn expect(&self, text: &str) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("no line with {text:?}: {e}"));
        assert!(line.contains(text), "expected {text:?}, got {line}");
        line
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn follow_shows_appended_lines_across_a_rotation() {
    let dir = TempDir::new("audit-follow");
    let path = dir.path().join("audit.jsonl");
    // Not there yet: waited for.
    let follower = Follower::start(dir.path(), &path);
    write(
        &path,
        AuditOutcome::Sent,
        200,
        &[envelope("Follow.One", r#"{"n":1}"#)],
    );
    follower.expect("Follow.One");
    write(
        &path,
        AuditOutcome::Sent,
        200,
        &[envelope("Follow.Two", r#"{"n":2}"#)],
    );
    follower.expect("Follow.Two");
    // A last line in the old file, then the rotation and a line in the new one.
    write(
        &path,
        AuditOutcome::Rejected,
        400,
        &[envelope("Follow.Three", r#"{"n":3}"#)],
    );
    std::fs::rename(&path, dir.path().join("audit.jsonl.1")).unwrap();
    write(
        &path,
        AuditOutcome::Sent,
        200,
        &[envelope("Follow.Four", r#"{"n":4}"#)],
    );
    follower.expect("Follow.Three");
    follower.expect("Follow.Four");
    // The library's own rotation.
    let small = AuditFile::open(&path, 10);
    small.record(
        AuditOutcome::Sent,
        200,
        &[envelope("Follow.Five", r#"{"n":5}"#)],
    );
    follower.expect("Follow.Five");
}
