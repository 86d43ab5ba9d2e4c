//! Critical events survive (abi.md, "Priority": a `critical` event that `tel_log_ex` answered
//! as durable is delivered by a later process after a SIGKILL). Each case runs the session to
//! be killed in a real child process (this binary again, in a role) and the next process's
//! session here, against the emulator:
//!
//! - a purge under a live session, then a later critical event (resolution names its entries);
//! - a steady stream of critical events (the file stays bounded by what is unresolved, and a
//!   SIGKILL re-sends no more than that, give or take one rewrite's worth);
//! - a full file system during an append (no torn line; the call says it was not durable);
//! - another process holding the cache lock (critical calls do not wait for it, and plain
//!   `tel_log` never waits for a critical call's disk work);
//! - an event on disk when the call returns and sent at once, one that survives a SIGKILL right
//!   after the call, and one delivered exactly once by whichever process lives to deliver it.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tel::ffi;

fn critical_files(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, |name| name.ends_with("-critical"))
}

/// Bytes in the critical-events files of `dir` (during a rewrite there may be two).
fn critical_bytes(dir: &Path) -> u64 {
    critical_files(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn log_critical(name: &str, i: u64) -> i32 {
    log_ex(name, Some(&format!("{{\"i\":{i}}}")), Some(CRITICAL))
}

/// The child side of every test here, by `TEL_TEST_ROLE`.
#[test]
fn child_in_a_role() {
    let Some(role) = child_role() else {
        return;
    };
    match role.as_str() {
        "purge-live" => purge_under_a_live_session(),
        "stream" => stream_of_critical_events(),
        "file-size-limit" => append_past_the_file_size_limit(),
        "hold-lock" => hold_the_cache_lock(),
        "slow-append" => plain_log_beside_a_slow_critical_append(),
        other => panic!("unknown role {other}"),
    }
}

fn wait_for_go() {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
}

// ---------------------------------------------------------------------------------------------
// 1. A purge under a live session, then a later critical event.

/// The child: C1 is in flight (the collector hangs), the session's critical-events file is
/// purged, C2 is logged (a new file); once told, it waits until C1 was delivered and C2 is in
/// flight, and is killed.
fn purge_under_a_live_session() {
    let config = child_config();
    init_ok(&config);
    assert_eq!(log_critical("Crit.Before", 1), 0, "{}", last_error());
    assert!(
        eventually(WAIT, || stat("http_requests") >= 1),
        "C1 went out"
    );
    assert_eq!(purge(&config), 0, "{}", last_error());
    assert_eq!(log_critical("Crit.After", 2), 0, "{}", last_error());
    println!("LOGGED");
    std::io::stdout().flush().unwrap();
    wait_for_go();
    // C1 again (its hang was released) and accepted, then C2 in a request that hangs.
    assert!(
        eventually(WAIT, || stat("sent") == 1 && stat("http_requests") >= 3),
        "{}",
        stats()
    );
    ready_until_killed()
}

#[test]
fn a_critical_event_logged_after_a_purge_survives_sigkill() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    c.push(Scripted::fault(Fault::HangBeforeHeaders)); // C1
    c.push(Scripted::accept()); // C1, once more
    c.push(Scripted::fault(Fault::HangBeforeHeaders)); // C2
    let dir = temp_dir("crit-purge-live");
    let config = config(&c, Some(&dir), json!({"http_timeout_ms": 60_000}));
    let mut kid = Kid::start(
        "child_in_a_role",
        "purge-live",
        &[("TEL_TEST_CONFIG", config.to_string())],
    );
    kid.until("LOGGED");
    assert!(c.wait_for_requests(1, WAIT), "C1 reached the collector");
    c.release();
    kid.tell("go");
    kid.until("READY");
    kid.kill();
    c.release();
    assert_eq!(names(&c.accepted()), ["Crit.Before"]);

    // The next process delivers C2, which the dead one's `tel_log_ex` answered TEL_OK.
    let next = Collector::start().unwrap();
    let client = TestClient::new(&config_for(&next, &dir));
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    assert_conserved_in(&s);
    assert_eq!(names(&next.accepted()), ["Crit.After"], "{s}");
}

fn config_for(c: &Collector, dir: &Path) -> Value {
    config(c, Some(dir), json!({}))
}

// ---------------------------------------------------------------------------------------------
// 2. A steady stream: the file stays bounded, a SIGKILL re-sends little.

/// Dead bytes past which the worker rewrites the critical-events file (docs/cache.md).
const REWRITE_DEAD_BYTES: u64 = 16 * 1024;
const STREAM_EVENTS: u64 = 2000;
const STREAM_BATCH: u64 = 50;

/// The child: `STREAM_EVENTS` critical events, about one a millisecond, to a collector that
/// answers after 20 ms; prints the largest size of the critical-events file seen and what is
/// still pending, then is killed.
fn stream_of_critical_events() {
    let config = child_config();
    let dir = PathBuf::from(std::env::var("TEL_TEST_DIR").unwrap());
    init_ok(&config);
    let mut peak = 0;
    for i in 0..STREAM_EVENTS {
        assert_eq!(log_critical("Crit.Stream", i), 0, "{}", last_error());
        if i % 10 == 0 {
            peak = peak.max(critical_bytes(&dir));
        }
        std::thread::sleep(Duration::from_millis(1)); // the stream's pace
    }
    peak = peak.max(critical_bytes(&dir));
    let s = stats();
    println!("PEAK={peak}");
    println!("PENDING={}", s["pending"]);
    println!("SENT={}", s["sent"]);
    ready_until_killed()
}

#[test]
fn a_steady_stream_keeps_the_file_small_and_a_sigkill_resends_little() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    c.set_default(Some(
        Scripted::accept().with_delay(Duration::from_millis(20)),
    ));
    let dir = temp_dir("crit-stream");
    let config = config(
        &c,
        Some(&dir),
        json!({"batch_max_events": STREAM_BATCH, "queue_max_events": 100_000}),
    );
    let mut kid = Kid::start(
        "child_in_a_role",
        "stream",
        &[
            ("TEL_TEST_CONFIG", config.to_string()),
            ("TEL_TEST_DIR", dir.display().to_string()),
        ],
    );
    kid.until("READY");
    kid.kill();
    let peak: u64 = kid.value("PEAK").parse().unwrap();
    let pending: u64 = kid.value("PENDING").parse().unwrap();
    let first: HashSet<u64> = data_i(&c.accepted()).into_iter().collect();
    let line_len = critical_files(&dir)
        .iter()
        .flat_map(|p| read_lines(p))
        .map(|l| l.len() as u64 + 1)
        .min()
        .unwrap_or(200);

    let next = Collector::start().unwrap();
    let client = TestClient::new(&config_for(&next, &dir));
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    assert_eq!(client.close(5000), 0);
    let second = data_i(&next.accepted());
    let resent = second.iter().filter(|i| first.contains(i)).count() as u64;
    let all: HashSet<u64> = first.iter().chain(&second).copied().collect();
    println!(
        "{STREAM_EVENTS} critical events: file peak {peak} bytes; pending at the kill {pending}; \
         delivered before it {}; re-sent by the next process {resent} (of {} it sent)",
        first.len(),
        second.len()
    );
    assert_eq!(all.len() as u64, STREAM_EVENTS, "every event delivered");
    // What the file holds beyond the unresolved events: resolved ones not yet rewritten away,
    // at most the larger of the rewrite threshold and the unresolved ones, plus one batch
    // resolved since the worker last looked.
    let bound = (REWRITE_DEAD_BYTES / line_len + 1).max(pending) + STREAM_BATCH;
    assert!(
        resent <= bound,
        "{resent} events delivered before the SIGKILL were sent again (bound {bound})"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A write that does not fit (a full disk, here the file size limit).

/// Where the critical-events file stops growing in the child.
const FILE_SIZE_LIMIT: u64 = 2000;

fn set_file_size_limit(soft: libc::rlim_t) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut r), 0);
        r.rlim_cur = soft.min(r.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &r), 0);
    }
}

/// The child: nothing is resolved (requests hang); critical events are logged past the file
/// size limit, the limit is lifted (space freed), one more is logged, and it is killed.
fn append_past_the_file_size_limit() {
    init_ok(&child_config());
    // SAFETY: a write past the limit then fails with EFBIG instead of killing the process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    set_file_size_limit(FILE_SIZE_LIMIT);
    let rcs: Vec<i32> = (0..20).map(|i| log_critical("Disk.Full", i)).collect();
    let message = last_error();
    set_file_size_limit(libc::RLIM_INFINITY);
    println!("RCS={}", serde_json::to_string(&rcs).unwrap());
    println!("MESSAGE={message}");
    println!("AFTER={}", log_critical("Disk.Full", 100));
    println!("STATS={}", stats());
    ready_until_killed()
}

#[test]
fn a_full_disk_leaves_no_torn_line_and_the_call_says_so() {
    if child_role().is_some() {
        return;
    }
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let dir = temp_dir("crit-full");
    let config = config(&hang, Some(&dir), json!({"http_timeout_ms": 60_000}));
    let mut kid = Kid::start(
        "child_in_a_role",
        "file-size-limit",
        &[("TEL_TEST_CONFIG", config.to_string())],
    );
    kid.until("READY");
    kid.kill();
    hang.release();
    let rcs: Vec<i32> = serde_json::from_str(&kid.value("RCS")).unwrap();
    let after: i32 = kid.value("AFTER").parse().unwrap();
    let s: Value = serde_json::from_str(&kid.value("STATS")).unwrap();
    println!("statuses {rcs:?}, then {after}; {s}");
    assert!(
        rcs.iter()
            .all(|rc| *rc == 0 || *rc == ffi::TEL_ERR_NOT_DURABLE),
        "{rcs:?}"
    );
    let not_durable = rcs
        .iter()
        .filter(|rc| **rc == ffi::TEL_ERR_NOT_DURABLE)
        .count() as u64;
    assert!(
        not_durable > 0,
        "the calls that could not write say so: {rcs:?}"
    );
    assert!(
        kid.value("MESSAGE").contains("not written"),
        "{}",
        kid.value("MESSAGE")
    );
    assert_eq!(after, 0, "written once there is room again");
    // Still queued and counted like any other event.
    assert_eq!(s["logged"], 21, "{s}");
    assert_eq!(s["pending"], 21, "{s}");
    assert_eq!(s["not_durable"], not_durable, "{s}");
    assert_conserved_in(&s);
    // Every line of the file is whole.
    for path in critical_files(&dir) {
        for line in read_lines(&path) {
            assert!(
                serde_json::from_str::<Value>(&line).is_ok(),
                "a torn line in {}: {line:?}",
                path.display()
            );
        }
    }

    // The next process delivers every event the dead one answered TEL_OK.
    let next = Collector::start().unwrap();
    let client = TestClient::new(&config_for(&next, &dir));
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    assert_eq!(client.close(5000), 0);
    let delivered: HashSet<u64> = data_i(&next.accepted()).into_iter().collect();
    let mut durable: Vec<u64> = (0..rcs.len() as u64)
        .filter(|i| rcs[*i as usize] == 0)
        .collect();
    durable.push(100);
    for i in durable {
        assert!(
            delivered.contains(&i),
            "event {i} was answered TEL_OK and is lost: {delivered:?}"
        );
    }
}

#[test]
fn a_cache_folder_that_cannot_be_created_answers_not_durable() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-no-folder");
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"").unwrap(); // the cache folder would have to be here
    let client = TestClient::new(&config_for(&c, &blocker));
    let rc = client.log_ex("Crit.Nowhere", Some(r#"{"i":1}"#), Some(CRITICAL));
    assert_eq!(rc, ffi::TEL_ERR_NOT_DURABLE);
    assert!(
        last_error().contains("not written to the cache file"),
        "{}",
        last_error()
    );
    assert_eq!(client.log("Plain.Event", None), 0);
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    assert_conserved_in(&s);
    assert_eq!(
        (s["logged"].as_u64(), s["not_durable"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(got, ["Crit.Nowhere", "Plain.Event"], "sent all the same");
}

/// A critical-events file not yet named (`<claim>.tmp`) is never merged: a locked one belongs to
/// a live session and stays; one whose lock is free (its writer died before naming it) is
/// removed unread, since it never holds the only copy of an entry.
#[test]
fn unnamed_critical_files_are_never_merged_and_dead_ones_go() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-unnamed");
    let line = cached_line("Never.Merged", "dead", 1, "  ") + "\n";
    let dead = dir.join("events.cache.claim-00000000000000aa-critical.tmp");
    let live = dir.join("events.cache.claim-00000000000000bb-critical.tmp");
    std::fs::write(&dead, &line).unwrap();
    std::fs::write(&live, &line).unwrap();
    let held = std::fs::OpenOptions::new().read(true).open(&live).unwrap();
    held.lock().unwrap(); // as its live session holds it
    let client = TestClient::new(&config_for(&c, &dir));
    assert_eq!(client.flush(10_000), 0, "{}", last_error()); // the replay has looked
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    assert_eq!(s["replayed"], 0, "{s}");
    assert!(c.accepted().is_empty());
    assert!(!dead.exists(), "a dead one is removed");
    assert!(live.exists(), "a live one stays");
}

// ---------------------------------------------------------------------------------------------
// 4. Another process holds the cache lock; a slow disk under a critical append.

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

#[test]
fn a_held_cache_lock_neither_stalls_nor_weakens_critical_calls() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-lock");
    let cache = dir.join("events.cache");
    let mut holder = Kid::start(
        "child_in_a_role",
        "hold-lock",
        &[("TEL_TEST_LOCK", format!("{}.lock", cache.display()))],
    );
    holder.until("READY");
    let client = TestClient::new(&config_for(&c, &dir));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (critical, plain) = std::thread::scope(|s| {
        let plain = s.spawn(|| {
            let mut took = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                assert_eq!(client.log("Plain.Event", None), 0);
                took.push(t.elapsed());
            }
            took
        });
        // Stops the other thread however this one ends (a failed assertion included).
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let stopping = Stop(&stop);
        let mut took = Vec::new();
        for i in 0..40 {
            let t = Instant::now();
            let rc = client.log_ex(
                "Crit.Locked",
                Some(&format!("{{\"i\":{i}}}")),
                Some(CRITICAL),
            );
            took.push(t.elapsed());
            assert_eq!(rc, 0, "{}", last_error());
            // Durable when the call returns, whoever holds the cache lock.
            let needle = format!("\"data\":{{\"i\":{i}}}");
            let on_disk = critical_files(&dir)
                .iter()
                .flat_map(|p| read_lines(p))
                .any(|l| l.contains(&needle));
            assert!(
                on_disk,
                "critical event {i} is not in the critical-events file"
            );
        }
        drop(stopping);
        (took, plain.join().unwrap())
    });
    // Everything above happened while the other process held the lock.
    assert!(
        holder.child.try_wait().unwrap().is_none(),
        "the lock holder is still alive"
    );
    println!(
        "while another process held the cache lock: 40 critical calls, median {:?}, max {:?}; \
         {} plain tel_log calls on another thread, median {:?}, max {:?}",
        median(critical.clone()),
        critical.iter().max().unwrap(),
        plain.len(),
        median(plain.clone()),
        plain.iter().max().unwrap_or(&Duration::ZERO),
    );
    holder.kill();
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    assert_conserved_in(&s);
    assert_eq!(
        names(&c.accepted())
            .iter()
            .filter(|n| *n == "Crit.Locked")
            .count(),
        40
    );
}

/// The child: a critical append is held up inside its write (the debug build's
/// `TEL_TEST_CRITICAL_GATE`, as a slow or stuck disk would); a plain `tel_log` on another
/// thread must not wait for it.
fn plain_log_beside_a_slow_critical_append() {
    let gate = PathBuf::from(std::env::var("TEL_TEST_CRITICAL_GATE").unwrap());
    std::fs::write(&gate, b"").unwrap();
    init_ok(&child_config());
    let critical = std::thread::spawn(|| log_critical("Crit.Slow", 1));
    let mut entered = gate.clone().into_os_string();
    entered.push(".entered");
    assert!(
        eventually(WAIT, || Path::new(&entered).exists()),
        "the critical call reached its write"
    );
    let t = Instant::now();
    let rc = log("Plain.Event", None);
    let took = t.elapsed();
    let still_writing = !critical.is_finished();
    std::fs::remove_file(&gate).unwrap();
    assert_eq!(critical.join().unwrap(), 0, "{}", last_error());
    println!("PLAIN={rc}");
    println!("TOOK_US={}", took.as_micros());
    println!("WHILE_WRITING={still_writing}");
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    println!("DONE");
}

#[test]
fn plain_tel_log_never_waits_for_a_critical_append() {
    if child_role().is_some() || !cfg!(debug_assertions) {
        return; // the gate exists in debug builds only
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("crit-gate");
    let mut kid = Kid::start(
        "child_in_a_role",
        "slow-append",
        &[
            ("TEL_TEST_CONFIG", config_for(&c, &dir).to_string()),
            (
                "TEL_TEST_CRITICAL_GATE",
                dir.join("gate").display().to_string(),
            ),
        ],
    );
    // A plain call stuck behind the critical one would never come back: the child would then
    // be killed here, and the test fail.
    let watchdog = {
        let pid = kid.child.id() as i32;
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(60);
            while !d.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50));
            }
            if !d.load(std::sync::atomic::Ordering::Relaxed) {
                // SAFETY: a child of this test.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        done
    };
    kid.until("DONE");
    watchdog.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(kid.value("PLAIN"), "0");
    println!(
        "plain tel_log beside a stuck critical append: {} us",
        kid.value("TOOK_US")
    );
    assert_eq!(
        kid.value("WHILE_WRITING"),
        "true",
        "the plain call returned while the critical one was still in its write"
    );
    assert!(kid.child.wait().unwrap().success());
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(got, ["Crit.Slow", "Plain.Event"]);
}

// ---------------------------------------------------------------------------------------------
// 5. On disk when the call returns, and delivered once.

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

/// The child side: log one critical event towards `TEL_TEST_CONFIG` and print its status, then
/// wait to be killed (`critical-kill`) or shut down (`critical`).
#[test]
fn child_critical() {
    let Some(role) = child_role() else {
        return;
    };
    if !role.starts_with("critical") {
        return;
    }
    init_ok(&child_config());
    let rc = log_ex("Crash.Report", Some(r#"{"pid":1}"#), Some(CRITICAL));
    println!("LOGGED={rc}");
    if role == "critical-kill" {
        ready_until_killed()
    }
    println!("SHUTDOWN={}", shutdown(2000));
    println!("STATS={}", stats());
}

/// Runs [`child_critical`] to its shutdown with `config`; what it printed.
fn critical_to_shutdown(config: &Value) -> std::process::Output {
    let out = run_child(
        "child_critical",
        &role_env("critical", &[("TEL_TEST_CONFIG", config.to_string())]),
    );
    assert!(out.status.success(), "{}", describe(&out));
    out
}

#[test]
fn a_critical_event_survives_sigkill_right_after_the_call() {
    let _s = serial();
    let dir = temp_dir("crit-kill");
    let cfg = json!({
        "ikey": IKEY, "endpoint": dead_endpoint(), "retry_initial_ms": 10_000,
        "cache_path": dir.join("events.cache"),
    });
    let mut kid = Kid::start(
        "child_critical",
        "critical-kill",
        &[("TEL_TEST_CONFIG", cfg.to_string())],
    );
    kid.until("READY");
    kid.kill(); // SIGKILL right after the call returned
    assert_eq!(kid.value("LOGGED"), "0");
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
    let out = critical_to_shutdown(&config(&c, Some(&dir), json!({})));
    assert_eq!(printed(&out, "SHUTDOWN").as_deref(), Some("0"));
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
    let s = printed_stats(&critical_to_shutdown(&cfg));
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
