//! Hostile input through the C ABI: NULL everywhere, invalid UTF-8, 100 MB strings, JSON nested
//! 100,000 deep, overflowing numbers, duplicate keys, lifecycle races from many threads, logging
//! during shutdown, a logger callback that re-enters the library, and `fork()`. Every call
//! returns a status code; none crashes, deadlocks (each scenario runs under a time limit) or
//! leaks (threads and descriptors come back to where they were).

mod common;
mod hardening;

use common::*;
use hardening::*;
use serde_json::json;
use std::ffi::{c_char, c_void, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tel::ffi;

const LIMIT: Duration = Duration::from_secs(60);

fn init_raw(bytes: &[u8]) -> i32 {
    let c = CString::new(bytes).unwrap();
    unsafe { ffi::tel_init(c.as_ptr()) }
}

fn log_raw(name: &[u8], props: Option<&[u8]>) -> i32 {
    let n = CString::new(name).unwrap();
    let p = props.map(|p| CString::new(p).unwrap());
    unsafe { ffi::tel_log(n.as_ptr(), p.as_ref().map_or(null(), |p| p.as_ptr())) }
}

#[test]
fn null_in_every_pointer_argument() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for live in [false, true] {
        if live {
            init_ok(&config(&c, None, json!({})));
        }
        unsafe {
            assert_eq!(ffi::tel_init(null()), 1);
            assert!(last_error().contains("config_json is NULL"));
            assert_eq!(ffi::tel_log(null(), null()), 1);
            let props = CString::new("{}").unwrap();
            assert_eq!(ffi::tel_log(null(), props.as_ptr()), 1);
            let name = CString::new("Null.Props").unwrap();
            // NULL properties mean `{}`.
            assert_eq!(
                ffi::tel_log(name.as_ptr(), null()),
                if live { 0 } else { 4 }
            );
            // snprintf rules: NULL or zero-length buffers are not written, the length is told.
            let n = ffi::tel_stats_json(null_mut(), 0);
            assert!(n > 0);
            assert_eq!(ffi::tel_stats_json(null_mut(), 4096), n);
            let mut one = [0x55u8; 4];
            assert_eq!(ffi::tel_stats_json(one.as_mut_ptr().cast(), 0), n);
            assert_eq!(one, [0x55; 4], "a zero-length buffer is not touched");
            assert_eq!(ffi::tel_stats_json(one.as_mut_ptr().cast(), 1), n);
            assert_eq!(
                one,
                [0, 0x55, 0x55, 0x55],
                "a 1-byte buffer gets the NUL only"
            );
            let m = ffi::tel_last_error(null_mut(), 0);
            assert_eq!(ffi::tel_last_error(null_mut(), 100), m);
            assert!(!ffi::tel_version().is_null());
            // A NULL callback restores the default sink; user data may be NULL.
            assert_eq!(ffi::tel_set_logger(None, 5, null_mut()), 0);
            assert_eq!(ffi::tel_set_logger(None, 0, null_mut()), 0);
            // Levels outside 0-5 are clamped or refused, never trusted.
            for level in [6, -1, i32::MIN, i32::MAX] {
                assert!([0, 1].contains(&ffi::tel_set_logger(None, level, null_mut())));
            }
            assert_eq!(ffi::tel_set_logger(None, 0, null_mut()), 0);
        }
    }
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted_count(), 1);
    assert_eq!(c.accepted()[0]["data"], json!({}));
}

#[test]
fn invalid_utf8_is_an_invalid_argument() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let bad: [&[u8]; 6] = [
        b"\xff\xfe",
        b"Name\x80",
        b"\xc0\xafName",         // overlong '/'
        b"Nam\xed\xa0\x80e",     // a UTF-16 surrogate
        b"Name\xf4\x90\x80\x80", // above U+10FFFF
        b"Name\xe2\x82",         // truncated sequence
    ];
    for b in bad {
        assert_eq!(init_raw(b), 1, "{b:?}");
        assert!(last_error().contains("UTF-8"), "{}", last_error());
    }
    init_ok(&config(&c, None, json!({})));
    for b in bad {
        assert_eq!(log_raw(b, None), 1, "{b:?}");
        assert_eq!(log_raw(b"Good.Name", Some(b)), 1, "{b:?}");
        let mut props = b"{\"k\":\"".to_vec();
        props.extend_from_slice(b);
        props.extend_from_slice(b"\"}");
        assert_eq!(log_raw(b"Good.Name", Some(&props)), 1, "{b:?}");
    }
    // Valid UTF-8 that is not a valid event name is an invalid event, not an argument error.
    assert_eq!(log("Ünïcödé.Name", None), 3);
    assert_eq!(log("Name\u{200b}Zero", None), 3);
    // Non-ASCII inside properties is fine and arrives intact.
    log_ok("Utf8.Props", Some(r#"{"s":"żółć 🦀 \u0000 \ud83e\udd80"}"#));
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted()[0]["data"]["s"], "żółć 🦀 \u{0} 🦀");
    assert_eq!(stat("logged"), 1);
    assert_conserved();
}

#[test]
fn hundred_megabyte_strings() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let huge = "a".repeat(100 << 20);
    init_ok(&config(&c, None, json!({})));
    let (rc, took) = timed(|| log(&huge, None));
    assert_eq!(rc, 3, "a 100 MB name: {}", last_error());
    assert!(last_error().len() < 1024, "the message stays short");
    let props = format!("{{\"big\":\"{huge}\"}}");
    let (rc, took2) = timed(|| log("Huge.Props", Some(&props)));
    assert_eq!(rc, 3);
    assert!(last_error().contains("event_max_bytes"), "{}", last_error());
    // Refused without parsing: at the speed of strlen and UTF-8 validation.
    assert_within("tel_log(100 MB)", took + took2, Duration::from_secs(5));
    // A 100 MB value for keys the session knows.
    assert_eq!(shutdown(1000), 0);
    for cfg in [
        json!({"ikey": IKEY, "endpoint": c.endpoint(), "cache_path": null, "ext": {"app": {"ver": huge}}}),
        json!({"ikey": format!("{huge}-x")}),
        json!({"ikey": IKEY, "endpoint": format!("https://{huge}/")}),
    ] {
        let rc = init_raw(cfg.to_string().as_bytes());
        assert!(rc == 0 || rc == 2, "{rc}");
        if rc == 0 {
            assert_eq!(shutdown(1000), 0);
        }
    }
    assert_eq!(stat("logged"), 0);
}

/// An error message names the offending key or value; a hostile one must not be echoed whole
/// (the thread's last error would hold, and `tel_last_error` copy out, 100 MB).
#[test]
fn error_messages_do_not_echo_100_megabytes() {
    let _s = serial();
    let huge = "k".repeat(100 << 20);
    for cfg in [
        json!({"ikey": IKEY, (huge.clone()): 1}),
        json!({"ikey": IKEY, "endpoint": format!("ftp://{huge}/")}),
        json!({"ikey": IKEY, "ext": {"app": {(huge.clone()): "x"}}}),
        json!({"ikey": IKEY, "compression": huge}),
    ] {
        assert_eq!(init_raw(cfg.to_string().as_bytes()), 2);
        let n = unsafe { ffi::tel_last_error(null_mut(), 0) };
        assert!(n < 4096, "a {n} byte error message");
    }
}

#[test]
fn json_nested_100000_deep() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let depth = 100_000;
    let arrays = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let objects = nested(depth);
    let unclosed = "[".repeat(depth);
    for cfg in [
        format!("{{\"ikey\":\"{IKEY}\",\"ext\":{objects}}}"),
        format!("{{\"ikey\":\"{IKEY}\",\"x\":{arrays}}}"),
        objects.clone(),
        unclosed.clone(),
    ] {
        assert_eq!(init_raw(cfg.as_bytes()), 2, "{}", last_error());
    }
    init_ok(&config(&c, None, json!({})));
    for props in [&arrays, &objects, &unclosed] {
        assert_eq!(log("Deep.Event", Some(props)), 3);
    }
    // Brackets inside strings are not nesting.
    let in_string = format!("{{\"s\":\"{}\"}}", "[{".repeat(depth));
    log_ok("Deep.InString", Some(&in_string));
    assert_eq!(flush(5000), 0);
    // The limit: 126 levels are accepted (127 with the envelope), 127 are not.
    log_ok("Deep.Limit", Some(&nested(126)));
    assert_eq!(log("Deep.Over", Some(&nested(127))), 3);
    assert_eq!(flush(5000), 0);
    assert_eq!(names(&c.accepted())[0], "Deep.InString");
    assert_conserved();
}

/// Properties nested `n` levels deep (the top-level object counts as one).
fn nested(n: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(n - 1), "}".repeat(n - 1)).replacen("1", "{\"a\":1}", 1)
}

/// What `tel_log` accepts at its nesting limit must be deliverable, here after a trip through
/// the cache. The envelope wraps the properties one level deeper (`data`), so the limit of 126
/// levels keeps envelopes within the 127 levels a collector parsing with serde_json's default
/// limit (the emulator) accepts; one level more would refuse every other event of the batch.
#[test]
fn an_event_at_the_nesting_limit_is_delivered_with_its_batch() {
    let _s = serial();
    let dir = temp_dir("deep-cache");
    let down = Collector::start().unwrap();
    down.set_default(Some(Scripted::status(503)));
    init_ok(&config(&down, Some(&dir), json!({"retry_max_attempts": 1})));
    log_ok("Deep.Cached", Some(&nested(126)));
    log_ok("Shallow.Cached", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("persisted"), 2);
    assert_eq!(shutdown(1000), 0);
    let up = Collector::start().unwrap();
    init_ok(&config(&up, Some(&dir), json!({})));
    assert_eq!(flush(5000), 0);
    let s = stats();
    assert_eq!(s["replayed"], 2, "{s}");
    assert_eq!(s["sent"], 2, "the batch was refused: {s}");
    assert_eq!(shutdown(1000), 0);
}

#[test]
fn numbers_that_overflow() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for (key, value) in [
        ("batch_max_events", "18446744073709551616"),
        ("batch_max_events", "1e30"),
        ("queue_max_events", "-1"),
        ("http_timeout_ms", "18446744073709551615"),
        ("retry_max_attempts", "4294967297"),
        ("flush_interval_ms", "1.5"),
        ("cache_max_bytes", "1e999"),
        ("event_max_bytes", "NaN"),
    ] {
        let cfg = format!(
            "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"{}\",\"{key}\":{value}}}",
            c.endpoint()
        );
        assert_eq!(init_raw(cfg.as_bytes()), 2, "{key}={value}");
        assert!(last_error().contains(key) || last_error().contains("JSON"));
    }
    init_ok(&config(&c, None, json!({})));
    for props in [r#"{"n":1e999999}"#, r#"{"n":-1e400}"#] {
        let rc = log("Number.Overflow", Some(props));
        assert!(rc == 3 || rc == 0, "{rc}");
    }
    assert_eq!(flush(5000), 0);
    assert_conserved();
    // Large but representable numbers pass through as written.
    let big = r#"{"i":123456789012345678901234567890,"u":18446744073709551615,"neg":-9223372036854775809,"tiny":1e-400}"#;
    log_ok("Number.Big", Some(big));
    assert_eq!(flush(5000), 0, "{}", last_error());
    let acc = c.accepted();
    let big_one = acc.iter().find(|e| e["name"] == "Number.Big").unwrap();
    assert_eq!(big_one["data"]["u"], json!(18446744073709551615u64));
    assert_conserved();
}

/// A number no double can hold (`1e999999`) is valid JSON text but no JSON parser that maps
/// numbers to doubles can read it: the collector's (here the emulator's) refuses the whole
/// batch as `InvalidEventFormat`, taking every other event of the batch with it. `tel_log`
/// should refuse it, where the caller sees why.
#[test]
fn a_number_no_double_can_hold_is_refused_at_tel_log() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"flush_interval_ms": 60_000})));
    log_ok("Innocent.Event", None);
    let rc = log("Number.Overflow", Some(r#"{"n":1e999999}"#));
    log_ok("Innocent.Event", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(
        c.accepted_count(),
        2,
        "the innocent events of the batch were refused with it (tel_log said {rc})"
    );
    assert_eq!(rc, 3);
}

#[test]
fn duplicate_keys() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let good = c.endpoint();
    // Whichever duplicate wins, the value that wins is validated: a clear-text endpoint off
    // loopback never gets through.
    let dup = format!(
        "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"{good}\",\"endpoint\":\"http://example.com/\"}}"
    );
    assert_eq!(init_raw(dup.as_bytes()), 2);
    let dup = format!(
        "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"http://example.com/\",\"endpoint\":\"{good}\",\"cache_path\":null}}"
    );
    let rc = init_raw(dup.as_bytes());
    assert!(rc == 0 || rc == 2);
    if rc == 2 {
        init_ok(&config(&c, None, json!({})));
    }
    let dup_ikey = format!("{{\"ikey\":\"abc-1\",\"ikey\":\"{IKEY}\"}}");
    assert_eq!(init_raw(dup_ikey.as_bytes()), 5, "a session is live");
    // Duplicate property keys: sent as given, one line, counted.
    log_ok("Dup.Keys", Some(r#"{"a":1,"a":2,"a":{"a":3,"a":4}}"#));
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted_count(), 1);
    let raw = &c.requests()[0].lines[0];
    assert!(
        raw.contains(r#""data":{"a":1,"a":2,"a":{"a":3,"a":4}}"#),
        "{raw}"
    );
    assert_conserved();
}

/// `tel_init`, `tel_shutdown`, `tel_log`, `tel_flush` and `tel_stats_json` from 20 threads at
/// once, a few thousand calls each: only documented codes, no deadlock, and in the end no
/// thread or descriptor left behind.
#[test]
fn init_shutdown_log_flush_race_from_many_threads() {
    let _s = serial();
    let c = Arc::new(Collector::start().unwrap());
    let (thr0, fds0) = (library_threads(), open_fds());
    let cfg = config(&c, None, json!({"flush_interval_ms": 1}));
    within("the lifecycle race", LIMIT, move || {
        let bad = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for t in 0..20 {
            let (cfg, bad) = (cfg.clone(), bad.clone());
            handles.push(std::thread::spawn(move || {
                for i in 0..400u32 {
                    let (rc, ok): (i32, &[i32]) = match t % 5 {
                        0 => (init(&cfg), &[0, 5]),
                        1 => (shutdown(i % 20), &[0, 4, 7]),
                        2 | 3 => (log("Race.Event", Some("{\"x\":1}")), &[0, 4, 6]),
                        _ if i % 2 == 0 => (flush(i % 10), &[0, 4, 7]),
                        _ => {
                            let n = unsafe { ffi::tel_stats_json(null_mut(), 0) };
                            (if n > 0 { 0 } else { -1 }, &[0])
                        }
                    };
                    if !ok.contains(&rc) {
                        eprintln!("thread {t} call {i}: unexpected {rc}: {}", last_error());
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(bad.load(Ordering::Relaxed), 0);
    });
    let _ = shutdown(2000);
    assert_conserved();
    assert_eq!(stat("pending"), 0, "{}", stats());
    assert!(
        eventually(Duration::from_secs(20), || library_threads() <= thr0
            && open_fds() <= fds0 + 2),
        "threads {thr0} -> {}, descriptors {fds0} -> {}",
        library_threads(),
        open_fds()
    );
    drop(c);
}

/// Loggers keep calling while the session shuts down: each call answers OK (counted) or
/// NOT_INITIALIZED (after), and everything OK'd is accounted for by the last session's figures.
#[test]
fn tel_log_during_shutdown() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for round in 0..20 {
        init_ok(&config(
            &c,
            None,
            json!({"flush_interval_ms": 1, "queue_max_events": 100_000}),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let loggers: Vec<_> = (0..4)
            .map(|_| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || {
                    let mut after = 0;
                    while after < 100 {
                        match log("During.Shutdown", None) {
                            0 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            4 if stop.load(Ordering::Relaxed) => after += 1,
                            // Full queue (a loaded machine): dropped and counted.
                            4 | 6 => {}
                            rc => panic!("unexpected {rc}"),
                        }
                    }
                })
            })
            .collect();
        while ok.load(Ordering::Relaxed) < 200 {
            std::thread::yield_now();
        }
        let (rc, took) = timed(|| shutdown(if round % 2 == 0 { 0 } else { 2000 }));
        stop.store(true, Ordering::Relaxed);
        assert!(rc == 0 || rc == 7, "{rc}");
        assert_within("tel_shutdown", took, Duration::from_millis(2000));
        for l in loggers {
            l.join().unwrap();
        }
        let s = stats();
        assert_eq!(
            s["logged"].as_u64().unwrap(),
            ok.load(Ordering::Relaxed),
            "{s}"
        );
        assert_eq!(s["pending"], 0, "round {round}: {s}");
        assert_conserved();
    }
}

/// `tel_shutdown(0)` while the worker is busy takes over what it holds: nothing stays pending
/// in a session that has ended.
#[test]
fn shutdown_zero_with_a_busy_worker_leaves_nothing_pending() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for round in 0..200 {
        init_ok(&config(
            &c,
            None,
            json!({"flush_interval_ms": 0, "batch_max_events": 3}),
        ));
        for i in 0..60 {
            log_ok("Busy.Worker", Some(&format!("{{\"i\":{i}}}")));
        }
        let rc = shutdown(0);
        assert!(rc == 0 || rc == 7);
        let s = stats();
        assert_eq!(s["pending"], 0, "round {round}: {s}");
        assert_conserved();
    }
}

/// The Rust API: `Client::log` racing `Client::shutdown` on other threads. An event that
/// `log` accepted must be resolved by the shutdown, not left in a queue nobody drains.
#[test]
fn rust_api_log_racing_shutdown_leaves_nothing_pending() {
    // Serial: its 200 KB properties would otherwise land in many_sessions_leak_nothing's RSS.
    let _s = serial();
    let c = Collector::start().unwrap();
    // Large properties widen the window between `log`'s shut-down check and its enqueue.
    let props = format!("{{\"pad\":\"{}\"}}", "p".repeat(200_000));
    let mut stuck = Vec::new();
    for round in 0..100 {
        let cfg = config(
            &c,
            None,
            json!({"flush_interval_ms": 1, "queue_max_events": 1_000_000}),
        );
        let client = Arc::new(
            tel::Client::start(tel::Config::from_json(&cfg.to_string()).unwrap()).unwrap(),
        );
        let loggers: Vec<_> = (0..4)
            .map(|_| {
                let (client, props) = (client.clone(), props.clone());
                std::thread::spawn(move || while client.log("Rust.Race", Some(&props)).is_ok() {})
            })
            .collect();
        while client.stats().logged < 4 {
            std::thread::yield_now();
        }
        let _ = client.shutdown(if round % 2 == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(2)
        });
        for l in loggers {
            l.join().unwrap();
        }
        let s = client.stats();
        assert!(s.conserved(), "round {round}: {s:?}");
        if s.pending != 0 {
            stuck.push((round, s.pending));
        }
    }
    assert!(
        stuck.is_empty(),
        "(round, events pending after shutdown returned): {stuck:?}"
    );
}

static REENTRIES: AtomicU64 = AtomicU64::new(0);
static REENTRY_CODES: parking_lot::Mutex<Vec<(i32, i32, i32)>> =
    parking_lot::Mutex::new(Vec::new());

/// A logger callback that calls `tel_log`, `tel_flush` and (on its 30th line) `tel_shutdown`.
extern "C" fn reentrant(_level: i32, _msg: *const c_char, _: *mut c_void) {
    let n = REENTRIES.fetch_add(1, Ordering::SeqCst);
    if n > 10_000 {
        return; // the library logging about what the callback did, without end
    }
    let name = CString::new("Callback.Event").unwrap();
    let rc_log = unsafe { ffi::tel_log(name.as_ptr(), null()) };
    let rc_flush = ffi::tel_flush(10);
    let rc_shutdown = if n == 30 { ffi::tel_shutdown(100) } else { -1 };
    REENTRY_CODES.lock().push((rc_log, rc_flush, rc_shutdown));
}

#[test]
fn a_logger_callback_that_calls_log_flush_and_shutdown() {
    let _s = serial();
    let c = Collector::start().unwrap();
    // Every request fails: the worker logs a debug and an info line for each.
    c.set_default(Some(Scripted::status(503)));
    REENTRIES.store(0, Ordering::SeqCst);
    REENTRY_CODES.lock().clear();
    let endpoint = c.endpoint();
    within("the re-entrant callback", LIMIT, move || {
        assert_eq!(ffi::tel_set_logger(Some(reentrant), 5, null_mut()), 0);
        let cfg = json!({
            "ikey": IKEY, "endpoint": endpoint, "cache_path": null,
            "flush_interval_ms": 1, "retry_initial_ms": 1, "retry_max_ms": 5,
        });
        init_ok(&cfg);
        log_ok("Callback.First", None);
        // The callback shuts the session down from the worker thread.
        assert!(
            eventually(Duration::from_secs(30), || REENTRIES.load(Ordering::SeqCst)
                > 30),
            "the worker logged"
        );
        assert!(eventually(Duration::from_secs(30), || log(
            "After.Callback",
            None
        ) == 4));
        assert!(eventually(Duration::from_secs(30), || stat("pending") == 0));
        assert_eq!(ffi::tel_set_logger(None, 0, null_mut()), 0);
    });
    assert_conserved();
    let codes = REENTRY_CODES.lock().clone();
    for (l, f, s) in &codes {
        assert!([0, 4, 6].contains(l), "tel_log from the callback: {l}");
        assert!([0, 4, 7].contains(f), "tel_flush from the callback: {f}");
        assert!(
            [-1, 0, 4, 7].contains(s),
            "tel_shutdown from the callback: {s}"
        );
    }
    assert!(codes.iter().any(|(_, _, s)| *s == 0), "{codes:?}");
    // And the library is usable afterwards.
    c.set_default(None);
    init_ok(&config(&c, None, json!({})));
    log_ok("Callback.After", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
}

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

#[cfg(unix)]
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

#[cfg(not(unix))]
fn fork_role(_: bool, _: bool, _: i32) {
    println!("FORK-OK");
}

/// Hundreds of sessions in a row: no thread, descriptor or memory left behind by any of them.
#[test]
fn many_sessions_leak_nothing() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("sessions");
    let cfg = config(&c, Some(&dir), json!({}));
    let cycle = |n: usize| {
        for _ in 0..n {
            init_ok(&cfg);
            log_ok("Cycle.Event", None);
            assert_eq!(shutdown(2000), 0, "{}", last_error());
        }
    };
    cycle(20); // warm up allocator pools and lazily created state
    let (thr, fds, rss) = (library_threads(), open_fds(), rss_kb());
    cycle(300);
    assert!(
        eventually(Duration::from_secs(10), || library_threads() <= thr
            && open_fds() <= fds),
        "threads {thr} -> {}, descriptors {fds} -> {}",
        library_threads(),
        open_fds()
    );
    let grew = rss_kb().saturating_sub(rss);
    assert!(grew < 8 * 1024, "RSS grew by {grew} kB over 300 sessions");
    assert_eq!(c.accepted_count(), 320);
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("claim") || n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A compact workout of every path (threads logging, retries, a reset, a hang cut by the
/// shutdown deadline, the cache written and replayed, sessions started and ended) for
/// valgrind memcheck: `scripts/hardening.sh` runs it under valgrind, where a test run plainly
/// would be no news.
#[test]
#[ignore = "run under valgrind memcheck by scripts/hardening.sh"]
fn stress_for_valgrind() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("valgrind");
    let cfg = config(
        &c,
        Some(&dir),
        json!({"retry_initial_ms": 5, "retry_max_ms": 10, "retry_max_attempts": 2, "http_timeout_ms": 1000}),
    );
    for round in 0..3 {
        init_ok(&cfg);
        c.push(Scripted::fault(Fault::Reset));
        c.push(Scripted::status(503));
        c.push(Scripted::status(200).with_body(r#"{"acc":1,"rej":1,"efi":{"X":[0]}}"#));
        let loggers: Vec<_> = (0..3)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..30 {
                        let rc = log(
                            "Valgrind.Event",
                            Some(&format!("{{\"t\":{t},\"i\":{i},\"r\":{round}}}")),
                        );
                        assert!(rc == 0 || rc == 6);
                    }
                })
            })
            .collect();
        for l in loggers {
            l.join().unwrap();
        }
        assert_eq!(flush(20_000), 0, "{}", last_error());
        assert_conserved();
        c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
        log_ok("Valgrind.Hang", None);
        assert!(c.wait_for_requests(1, WAIT));
        let _ = shutdown(200);
        assert_conserved();
        c.release();
        c.set_default(None);
    }
    init_ok(&cfg);
    assert_eq!(flush(20_000), 0);
    assert!(stat("replayed") >= 3, "{}", stats());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
}
