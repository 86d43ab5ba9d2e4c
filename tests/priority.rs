//! Priorities through the C ABI: eviction from a full queue (`dropped_evicted`), cache eviction
//! by priority (with 0.1 cache lines read as normal), and durable `critical` events, with real
//! processes for SIGKILL and for exactly-once across processes.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;

const HIGH: &str = r#"{"priority":"high"}"#;
const CRITICAL: &str = r#"{"priority":"critical"}"#;

#[test]
fn a_higher_priority_takes_the_place_of_the_oldest_lower_one() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"queue_max_events": 5, "flush_interval_ms": 600_000, "batch_max_events": 100}),
    ));
    // One event in flight, held by a collector that hangs: the worker takes nothing more from
    // the queue meanwhile (a full queue would otherwise go out at once to make room), and an
    // event in flight is never pushed out.
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    assert_eq!(client.log("Stuck.Event", Some(r#"{"i":0}"#)), 0);
    assert_eq!(client.flush(0), 7);
    assert!(c.wait_for_requests(1, WAIT));
    for i in 0..4 {
        let props = format!("{{\"i\":{i}}}");
        assert_eq!(client.log("Normal.Event", Some(&props)), 0);
    }
    assert_eq!(client.log("Normal.Event", Some(r#"{"i":99}"#)), 6, "full");
    let ex = |name: &str, i: u32, opts: &str| {
        client.log_ex(name, Some(&format!("{{\"i\":{i}}}")), Some(opts))
    };
    assert_eq!(ex("High.Event", 0, HIGH), 0);
    assert_eq!(ex("High.Event", 1, HIGH), 0);
    assert_eq!(client.stats()["dropped_evicted"], 2);
    // Critical without a cache: the highest priority all the same.
    assert_eq!(ex("Crit.Event", 0, CRITICAL), 0);
    assert_eq!(ex("High.Event", 2, HIGH), 0);
    // Only high and critical are queued: another high is refused, a critical evicts a high.
    assert_eq!(ex("High.Event", 3, HIGH), 6);
    assert_eq!(ex("Crit.Event", 1, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 2, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 3, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 4, CRITICAL), 6);
    c.release();
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_conserved_in(&s);
    assert_eq!(s["dropped_evicted"], 7);
    assert_eq!(s["dropped_queue_full"], 3);
    assert_eq!(s["logged"], 12);
    assert_eq!(s["sent"], 5);
    let mut got: Vec<(String, u64)> = c
        .accepted()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_owned();
            (name, e["data"]["i"].as_u64().unwrap())
        })
        .collect();
    got.sort();
    let crit = |i| ("Crit.Event".to_owned(), i);
    assert_eq!(
        got,
        [
            crit(0),
            crit(1),
            crit(2),
            crit(3),
            ("Stuck.Event".to_owned(), 0)
        ]
    );
    assert_eq!(client.close(5000), 0);
}

#[test]
fn without_priorities_nothing_is_evicted() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"queue_max_events": 3, "flush_interval_ms": 600_000}),
    ));
    for _ in 0..3 {
        assert_eq!(client.log("Normal.Event", None), 0);
    }
    assert_eq!(
        client.log_ex("Normal.Event", None, Some(r#"{"priority":"normal"}"#)),
        6
    );
    assert_eq!(client.close(5000), 0);
    assert_eq!(c.accepted().len(), 3);
}

#[test]
fn the_cache_evicts_lower_priorities_first_and_reads_0_1_lines_as_normal() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("prio-evict");
    let path = dir.join("events.cache");
    // Oldest first: critical and high entries are older than every normal (0.1-style) one.
    let mut text = String::new();
    for (seq, mark) in [
        (1, "  "),
        (2, " "),
        (3, ""),
        (4, ""),
        (5, " "),
        (6, ""),
        (7, ""),
    ] {
        text.push_str(&cached_line("Cached.Entry", "old", seq, mark));
        text.push('\n');
    }
    std::fs::write(&path, &text).unwrap();
    let line_len = text.lines().map(|l| l.len() + 1).max().unwrap() as u64;
    // Room for three entries: the critical and the two high ones stay.
    let client = TestClient::new(&config(
        &c,
        Some(&dir),
        json!({"cache_max_bytes": line_len * 3 + 2}),
    ));
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    let mut seqs: Vec<u64> = c
        .accepted()
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 5]);
    assert_eq!(s["cache_evicted"], 4);
    // Marks never reach the wire.
    for r in c.requests() {
        for l in &r.lines {
            assert!(l.ends_with('}'), "{l:?}");
        }
    }
}

fn critical_files(dir: &Path) -> Vec<std::path::PathBuf> {
    files_named(dir, |name| name.ends_with("-critical"))
}

#[test]
fn a_critical_event_is_on_disk_when_the_call_returns_and_sent_at_once() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-disk");
    let client = TestClient::new(&config(
        &c,
        Some(&dir),
        json!({"flush_interval_ms": 600_000}),
    ));
    // A collector that hangs keeps it from being resolved while we look.
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    assert_eq!(
        client.log_ex("Crash.Report", Some(r#"{"why":"x"}"#), Some(CRITICAL)),
        0
    );
    let files = critical_files(&dir);
    assert_eq!(files.len(), 1, "one critical-events file");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("\"name\":\"Crash.Report\""), "{text}");
    // Sent without a flush and without waiting for flush_interval_ms.
    assert!(c.wait_for_requests(1, WAIT), "sent at once");
    c.release();
    assert!(c.wait_for_accepted(1, WAIT));
    assert_eq!(client.close(5000), 0);
    assert!(
        critical_files(&dir).is_empty(),
        "resolved: nothing left for a next process"
    );
    assert_eq!(c.accepted().len(), 1);
}

/// The child side: log one critical event towards `TEL_TEST_CONFIG`, say so, then either wait
/// to be killed or shut down.
#[test]
fn child_critical() {
    let Some(role) = child_role() else {
        return;
    };
    if !role.starts_with("critical") {
        return;
    }
    let config: Value = serde_json::from_str(&std::env::var("TEL_TEST_CONFIG").unwrap()).unwrap();
    init_ok(&config);
    let rc = log_ex("Crash.Report", Some(r#"{"pid":1}"#), Some(CRITICAL));
    println!("LOGGED={rc}");
    if role == "critical-kill" {
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        loop {
            std::thread::park();
        }
    }
    println!("SHUTDOWN={}", shutdown(2000));
    println!("STATS={}", stats());
}

fn run_critical_child(role: &str, config: &Value) -> String {
    let env = [
        ("TEL_TEST_ROLE", role.to_owned()),
        ("TEL_TEST_CONFIG", config.to_string()),
    ];
    let mut child = spawn_child("child_critical", &env);
    if role == "critical-kill" {
        use std::io::BufRead;
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(out.read_line(&mut line).unwrap() > 0, "child ended early");
            if line.contains("LOGGED=") {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL right after the call returned
        child.wait().unwrap();
        return line;
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_critical_event_survives_sigkill_right_after_the_call() {
    let _s = serial();
    let dir = temp_dir("crit-kill");
    let cfg = json!({
        "ikey": IKEY, "endpoint": dead_endpoint(), "retry_initial_ms": 10_000,
        "cache_path": dir.join("events.cache"),
    });
    let out = run_critical_child("critical-kill", &cfg);
    assert!(out.contains("LOGGED=0"), "{out}");
    let c = Collector::start().unwrap();
    init_ok(&config(&c, Some(&dir), json!({})));
    assert_eq!(flush(10_000), 0);
    assert_eq!(names(&c.accepted()), ["Crash.Report"]);
    assert_eq!(stat("replayed"), 1);
    assert_eq!(shutdown(5000), 0);
    assert_conserved();
}

#[test]
fn a_critical_event_is_delivered_exactly_once_when_the_process_lives_to_shutdown() {
    let _s = serial();
    // Delivered by this process: nothing left for the next one.
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-once");
    let out = run_critical_child("critical", &config(&c, Some(&dir), json!({})));
    assert!(out.contains("SHUTDOWN=0"), "{out}");
    assert_eq!(names(&c.accepted()), ["Crash.Report"]);
    init_ok(&config(&c, Some(&dir), json!({})));
    assert_eq!(flush(10_000), 0);
    assert_eq!(shutdown(5000), 0);
    assert_eq!(c.accepted().len(), 1, "not replayed by the next process");

    // Not deliverable now: kept for the next process, which delivers it once.
    let dir = temp_dir("crit-later");
    let cfg = json!({
        "ikey": IKEY, "endpoint": dead_endpoint(), "retry_initial_ms": 10_000,
        "cache_path": dir.join("events.cache"),
    });
    let out = run_critical_child("critical", &cfg);
    let s: Value =
        serde_json::from_str(out.split("STATS=").nth(1).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(s["persisted"], 1, "{s}");
    assert_eq!(s["pending"], 0);
    assert_conserved_in(&s);
    let c = Collector::start().unwrap();
    for _ in 0..2 {
        init_ok(&config(&c, Some(&dir), json!({})));
        assert_eq!(flush(10_000), 0);
        assert_eq!(shutdown(5000), 0);
    }
    assert_eq!(names(&c.accepted()), ["Crash.Report"], "once");
}

#[test]
fn a_line_both_in_the_cache_and_in_a_dead_claim_is_delivered_once() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("dup-claim");
    let line = cached_line("Twice.Written", "e1", 1, "  ");
    let other = cached_line("Once.Written", "e1", 2, "");
    std::fs::write(dir.join("events.cache"), format!("{line}\n{other}\n")).unwrap();
    std::fs::write(
        dir.join("events.cache.claim-0123456789abcdef"),
        format!("{line}\n"),
    )
    .unwrap();
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(got, ["Once.Written", "Twice.Written"]);
    assert_eq!(s["replayed"], 2);
    assert_conserved_in(&s);
}
