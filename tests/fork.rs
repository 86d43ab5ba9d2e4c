//! `fork()` and the library: in a child forked while the parent's worker delivers (and while
//! other threads log), the inherited session answers NOT_INITIALIZED without deadlocking, its
//! shutdown is a no-op, the child may start a session of its own, and it exits either way; a
//! child forked by a session that then dies does not keep that session's claim or
//! critical-events file locked, so the next session delivers them while the child lives. Real
//! processes throughout.
#![cfg(unix)]

mod common;

use common::*;
use serde_json::json;
use std::ffi::CString;
use std::path::Path;
use std::ptr::null;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tel::ffi;

// ---------------------------------------------------------------------------------------------
// The inherited session in the child.

/// `fork()` while the parent's worker delivers: in the child, the inherited session answers
/// NOT_INITIALIZED (its threads do not exist there) without deadlocking, its shutdown is a
/// no-op, and the child exits (half through `exit`, half through `_exit`); the parent goes on
/// delivering.
#[test]
fn fork_then_log_and_exit_in_the_child() {
    fork_test("fork_then_log_and_exit_in_the_child", "quiet", 20);
}

/// The same, and then the child starts a session of its own and delivers through it.
#[test]
fn fork_then_a_session_of_the_childs_own() {
    fork_test("fork_then_a_session_of_the_childs_own", "own-session", 200);
}

/// The same while two other threads of the parent keep calling `tel_log`: the fork can happen
/// while they wait on the session lock, and the child must still never hang.
#[test]
fn fork_while_other_threads_log_never_hangs_the_child() {
    fork_test(
        "fork_while_other_threads_log_never_hangs_the_child",
        "contended",
        50,
    );
}

fn fork_test(test: &str, mode: &str, rounds: i32) {
    if let Some(role) = child_role() {
        if role == "fork" {
            let mode = std::env::var("TEL_TEST_FORK_MODE").unwrap();
            fork_role(mode == "contended", mode != "quiet", rounds);
        }
        return;
    }
    let out = run_child(
        test,
        &[
            ("TEL_TEST_ROLE", "fork".into()),
            ("TEL_TEST_FORK_MODE", mode.into()),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("FORK-OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fork_role(contended: bool, own_session: bool, rounds: i32) {
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"flush_interval_ms": 1})));
    let stop = Arc::new(AtomicBool::new(false));
    let loggers: Vec<_> = (0..if contended { 2 } else { 0 })
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let rc = log("Parent.Event", None);
                    assert!(rc == 0 || rc == 6, "{rc}");
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    let child_cfg = CString::new(config(&c, None, json!({})).to_string()).unwrap();
    let name = CString::new("Child.Event").unwrap();
    for round in 0..rounds {
        if !contended {
            // The worker is busy with these while the fork happens.
            for _ in 0..50 {
                log_ok("Parent.Event", None);
            }
        }
        // SAFETY: the child calls only the library and async-signal-tolerant libc, then _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Progress marks straight to the descriptor (no lock a dead thread could hold), so
            // that a hang names the call that hung.
            let mark = |m: &[u8]| unsafe {
                libc::write(2, m.as_ptr().cast(), m.len());
            };
            let code = unsafe {
                mark(b"[child: tel_log]");
                let inherited_log = ffi::tel_log(name.as_ptr(), null());
                mark(b"[child: tel_flush]");
                let inherited_flush = ffi::tel_flush(100);
                let mut buf = [0u8; 1024];
                mark(b"[child: tel_stats_json]");
                let stats_len = ffi::tel_stats_json(buf.as_mut_ptr().cast(), buf.len());
                mark(b"[child: tel_shutdown inherited]");
                let inherited_shutdown = ffi::tel_shutdown(100);
                let own_ok = !own_session || {
                    mark(b"[child: tel_init]");
                    let own_init = ffi::tel_init(child_cfg.as_ptr());
                    mark(b"[child: own tel_log]");
                    let own_log = ffi::tel_log(name.as_ptr(), null());
                    mark(b"[child: own tel_flush]");
                    let own_flush = ffi::tel_flush(10_000);
                    mark(b"[child: own tel_shutdown]");
                    let own_shutdown = ffi::tel_shutdown(1000);
                    own_init == 0 && own_log == 0 && own_flush == 0 && own_shutdown == 0
                };
                mark(b"[child: done]\n");
                let ok = inherited_log == 4
                    && inherited_flush == 4
                    && stats_len > 0
                    && inherited_shutdown == 0
                    && own_ok;
                if ok {
                    0
                } else {
                    10 + round
                }
            };
            // Half the children leave through exit() (atexit handlers run), half through _exit.
            unsafe {
                if round % 2 == 0 {
                    libc::exit(code)
                } else {
                    libc::_exit(code)
                }
            }
        }
        let mut status = 0;
        let done = eventually(Duration::from_secs(15), || unsafe {
            libc::waitpid(pid, &mut status, libc::WNOHANG) == pid
        });
        if !done {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("round {round}: the forked child hung");
        }
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "round {round}: child status {status:#x}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for l in loggers {
        l.join().unwrap();
    }
    assert_eq!(flush(20_000), 0, "{}", last_error());
    let acc = c.accepted();
    let children = acc.iter().filter(|e| e["name"] == "Child.Event").count();
    let expected = if own_session { rounds as usize } else { 0 };
    assert_eq!(children, expected, "each child's own session delivered");
    let parent = acc.iter().filter(|e| e["name"] == "Parent.Event").count() as u64;
    assert_eq!(parent, stat("sent"));
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    println!("FORK-OK");
}

// ---------------------------------------------------------------------------------------------
// A dead session's files, while the child it forked lives.

/// The fork tests' scenario: the child `test` (one that ends in [`fork_until_killed`]) runs a
/// session on `cache` against a collector whose requests hang, forks a grandchild and is
/// killed; a new session on the same cache, while the grandchild lives, must deliver what the
/// dead one left. Returns the `data.i` values the collector accepted in that session.
fn delivered_while_a_forked_child_lives(test: &str, role: &str, cache: &Path) -> Vec<u64> {
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let config = fast_config(
        &hang.endpoint(),
        Some(cache),
        json!({"http_timeout_ms": 60_000}),
    );
    let mut parent = Kid::start(test, role, &[("TEL_TEST_CONFIG", config.to_string())]);
    parent.until("READY");
    let grandchild: i32 = parent.value("GRANDCHILD").parse().unwrap();
    assert!(grandchild > 0, "the child forked");
    // The session dies; its forked child lives on.
    parent.kill();
    let c = Collector::start().unwrap();
    init_ok(&fast_config(&c.endpoint(), Some(cache), json!({})));
    let flushed = flush(10_000);
    let delivered = data_i(&c.accepted());
    // SAFETY: a process this test's child started.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    assert_eq!(flushed, 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    delivered
}

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
