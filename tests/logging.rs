//! The library's own lines and the host's logger: levels filter and clamp; a non-2xx answer makes
//! one debug line, without the key; a logger callback may call back into the library (`tel_log`,
//! `tel_flush`, `tel_shutdown`, and `tel_init`, which is refused while a session is starting),
//! and no library lock is held while it runs: one that blocks on a mutex held by the thread
//! calling `tel_shutdown` cannot deadlock it, and a slow one does not stretch it. With
//! `TEL_LOG` set, the last lines reach stderr before `tel_shutdown` returns; with it unset,
//! nothing reaches stderr, even while the logger is being unset.
//!
//! The logger is process-wide: every test here that runs the library in this process takes
//! `serial`.

mod common;

use common::*;
use serde_json::json;
use std::ffi::{c_char, c_void, CString};
use std::ptr::{null, null_mut};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tel::ffi;

const LIMIT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Levels and lines.

#[test]
fn logger_levels_filter_and_clamp() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(Scripted::status(400));
    let capture = Capture::up_to(3);
    init_ok(&config(&c, None, json!({})));
    log_ok("Logger.Levels", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    let seen: Vec<i32> = capture.lines().iter().map(|(level, _)| *level).collect();
    assert!(seen.contains(&3), "the rejection's info line: {seen:?}");
    assert!(
        seen.iter().all(|l| *l <= 3),
        "nothing above max_level: {seen:?}"
    );
    // Levels past trace are clamped to it; below 0 (with no callback) is accepted too.
    drop(Capture::up_to(99));
    assert_eq!(ffi::tel_set_logger(None, -3, null_mut()), 0);
}

#[test]
fn non_2xx_produces_one_debug_line_without_the_key() {
    let _s = serial();
    let capture = Capture::start();
    let c = Collector::start().unwrap();
    let body = format!("{{\"reason\":\"{}\"}}\nsecond line", "z".repeat(400));
    c.push(
        Scripted::status(403)
            .with_header("Collector-Error", "Tenant is not allowed")
            .with_body(&body),
    );
    init_ok(&config(&c, None, json!({})));
    log_ok("Debug.Line", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    let lines = capture.lines();
    drop(capture);
    let debug: Vec<&String> = lines
        .iter()
        .filter(|(l, m)| *l == 4 && m.contains("HTTP 403"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(debug.len(), 1, "{lines:?}");
    assert!(debug[0].contains("Tenant is not allowed"));
    let excerpt = debug[0].split("body: ").nth(1).unwrap();
    assert_eq!(
        excerpt.len(),
        200,
        "the body excerpt is capped at 200 bytes"
    );
    assert!(!debug[0].contains('\n'));
    assert!(
        lines.iter().any(|(l, m)| *l == 3 && m.contains("rejected")),
        "{lines:?}"
    );
    for (_, m) in &lines {
        assert!(
            !m.contains(IKEY),
            "the full key leaked into a log line: {m}"
        );
    }
    assert_eq!(stat("rejected"), 1);
    assert_conserved();
}

// ---------------------------------------------------------------------------------------------
// Callbacks that call the library.

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

static INNER_INIT: AtomicI32 = AtomicI32::new(-1);

extern "C" fn init_again(_: i32, _: *const c_char, _: *mut c_void) {
    let config = format!("{{\"ikey\":\"{IKEY}\",\"enabled\":false,\"cache_path\":null}}\0");
    // SAFETY: a NUL-terminated string.
    let rc = unsafe { ffi::tel_init(config.as_ptr().cast()) };
    INNER_INIT.store(rc, Ordering::SeqCst);
}

#[test]
fn child_initialising_from_the_logger() {
    if child_role().as_deref() != Some("reentrant-init") {
        return;
    }
    assert_eq!(ffi::tel_set_logger(Some(init_again), 5, null_mut()), 0);
    let rc = init(&json!({"ikey": IKEY, "enabled": false, "cache_path": null}));
    println!("OUTER={rc}");
    println!("INNER={}", INNER_INIT.load(Ordering::SeqCst));
    let _ = ffi::tel_set_logger(None, 0, null_mut());
    println!("SHUTDOWN={}", shutdown(0));
}

/// A `tel_init` from the logger callback while `tel_init` (an opt-out one, which logs an info
/// line) is starting a session on this thread is refused.
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
// No library lock held while the logger runs.

static HOST_MUTEX: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

static LINES: AtomicUsize = AtomicUsize::new(0);

extern "C" fn blocking_logger(_level: i32, _msg: *const c_char, _ud: *mut c_void) {
    LINES.fetch_add(1, Ordering::SeqCst);
    // A host logger that takes its own lock.
    drop(HOST_MUTEX.lock());
}

extern "C" fn slow_logger(_level: i32, _msg: *const c_char, _ud: *mut c_void) {
    LINES.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1000));
}

/// Removes the logger when dropped.
struct LoggerReset;

impl Drop for LoggerReset {
    fn drop(&mut self) {
        tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut());
    }
}

/// A session (cache in a folder named after `tag`) whose every request is answered 503, so that
/// the worker writes a "backing off" line after each, to `logger` at info level until the
/// returned guard is dropped.
fn refused_session_logging_to(
    logger: extern "C" fn(i32, *const c_char, *mut c_void),
    tag: &str,
) -> (Collector, LoggerReset) {
    let reset = LoggerReset;
    let c = Collector::start().unwrap();
    c.set_default(Some(Scripted::status(503)));
    tel::ffi::tel_set_logger(Some(logger), 3, std::ptr::null_mut());
    init_ok(&config(
        &c,
        Some(&temp_dir(tag)),
        json!({"flush_interval_ms": 10, "retry_initial_ms": 10}),
    ));
    (c, reset)
}

#[test]
fn a_logger_blocking_on_a_mutex_held_by_the_shutdown_caller_does_not_deadlock() {
    let _s = serial();
    let (c, _reset) = refused_session_logging_to(blocking_logger, "logger-mutex");
    let host = HOST_MUTEX.lock();
    LINES.store(0, Ordering::SeqCst);
    log_ok("Mutex.Event", None);
    assert!(c.wait_for_requests(1, WAIT));
    // The worker is (or soon will be) in the callback, waiting for the host mutex this thread
    // holds while it calls tel_shutdown.
    let (rc, pending) = within("tel_shutdown", Duration::from_secs(30), || {
        (shutdown(500), stat("pending"))
    });
    drop(host);
    assert!(rc == 0 || rc == 7, "{rc}");
    assert_eq!(pending, 0);
    assert_conserved();
}

#[test]
fn a_slow_logger_does_not_stretch_shutdown() {
    let _s = serial();
    let (c, _reset) = refused_session_logging_to(slow_logger, "logger-slow");
    for i in 0..5 {
        log_ok("Slow.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    assert!(c.wait_for_requests(1, WAIT));
    let started = Instant::now();
    let rc = shutdown(300);
    let took = started.elapsed();
    assert!(rc == 0 || rc == 7, "{rc}");
    // Each line takes a second and a shutdown writes several: it must not wait for them.
    assert!(
        took < Duration::from_millis(300 + 200 + 1500),
        "tel_shutdown(300) took {took:?} with a logger taking 1 s a line"
    );
    assert_eq!(stat("pending"), 0);
    assert_conserved();
}

// ---------------------------------------------------------------------------------------------
// Standard error.

/// The child of `the_persisted_line_reaches_stderr_before_the_process_exits`: with `TEL_LOG`
/// at info and a collector that never answers, it shuts down (which takes over from the stuck
/// worker and persists its batch) and exits at once.
#[test]
fn child_persisting_at_exit() {
    if child_role().as_deref() != Some("persist-and-exit") {
        return;
    }
    let endpoint = std::env::var("TEL_TEST_ENDPOINT").unwrap();
    let dir = std::path::PathBuf::from(std::env::var("TEL_TEST_DIR").unwrap());
    init_ok(&json!({
        "ikey": IKEY, "endpoint": endpoint, "cache_path": dir.join("events.cache"),
        "flush_interval_ms": 10, "http_timeout_ms": 60_000,
    }));
    for i in 0..3 {
        log_ok("Exit.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    assert!(
        eventually(WAIT, || stat("http_requests") > 0),
        "no request was made"
    );
    let rc = shutdown(100);
    println!("RC={rc} PERSISTED={}", stat("persisted"));
    use std::io::Write;
    std::io::stdout().flush().unwrap();
    // What a short-lived program does next.
    std::process::exit(0);
}

/// abi.md: "one info line ... ; the library holds none of its locks while calling it". The
/// line saying that what was pending went to the cache is written before `tel_shutdown`
/// returns (the stderr sink is not slow), so a process that exits right after still shows it.
#[test]
fn the_persisted_line_reaches_stderr_before_the_process_exits() {
    if child_role().is_some() {
        return;
    }
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let dir = temp_dir("persist-line");
    for round in 0..5 {
        let out = run_child(
            "child_persisting_at_exit",
            &[
                ("TEL_TEST_ROLE", "persist-and-exit".into()),
                ("TEL_TEST_ENDPOINT", hang.endpoint()),
                ("TEL_TEST_DIR", dir.to_string_lossy().into_owned()),
                ("TEL_LOG", "info".into()),
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stdout.contains("RC=7 PERSISTED=3"),
            "round {round}: {stdout}\n{stderr}"
        );
        assert!(
            stderr.contains("3 events undelivered: written to the cache file"),
            "round {round}: the line is lost:\n{stderr}"
        );
        std::fs::remove_file(dir.join("events.cache")).unwrap();
    }
}

extern "C" fn quiet(_: i32, _: *const c_char, _: *mut c_void) {}

#[test]
fn child_unsetting_the_logger_while_lines_are_logged() {
    if child_role().as_deref() != Some("stderr-race") {
        return;
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let logger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
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
    stop.store(true, Ordering::SeqCst);
    logger.join().unwrap();
    println!("DONE=1");
}

/// With `TEL_LOG` unset, nothing reaches stderr, even while another thread sets and unsets the
/// logger as lines are logged.
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
