//! `tel_shutdown` keeps its promises (issue: reliability points 1 and 2): no logger call under a
//! library lock (a logger that blocks on a host mutex held by the thread calling `tel_shutdown`
//! cannot deadlock it; a slow logger does not stretch it), and it always resolves what is left:
//! `pending` is 0 when it returns, with 50,000 events pending, with the cache lock held by
//! another process, and with a thread logging while it runs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on a thread and fails the test if it has not returned after `limit` (a hang).
fn returns_within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not return within {limit:?} (a hang)"))
}

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

struct LoggerReset;
impl Drop for LoggerReset {
    fn drop(&mut self) {
        tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut());
    }
}

#[test]
fn a_logger_blocking_on_a_mutex_held_by_the_shutdown_caller_does_not_deadlock() {
    let _s = serial();
    let _r = LoggerReset;
    let c = Collector::start().unwrap();
    let dir = temp_dir("logger-mutex");
    // Every answer is a 503: the worker writes a "backing off" line after each.
    c.set_default(Some(Scripted::status(503)));
    tel::ffi::tel_set_logger(Some(blocking_logger), 3, std::ptr::null_mut());
    init_ok(&config(
        &c,
        Some(&dir),
        json!({"flush_interval_ms": 10, "retry_initial_ms": 10}),
    ));
    let host = HOST_MUTEX.lock();
    LINES.store(0, Ordering::SeqCst);
    log_ok("Mutex.Event", None);
    assert!(c.wait_for_requests(1, WAIT));
    // The worker is (or soon will be) in the callback, waiting for the host mutex this thread
    // holds while it calls tel_shutdown.
    let (rc, pending) =
        returns_within(Duration::from_secs(30), || (shutdown(500), stat("pending")));
    drop(host);
    assert!(rc == 0 || rc == 7, "{rc}");
    assert_eq!(pending, 0);
    assert_conserved();
}

#[test]
fn a_slow_logger_does_not_stretch_shutdown() {
    let _s = serial();
    let _r = LoggerReset;
    let c = Collector::start().unwrap();
    let dir = temp_dir("logger-slow");
    c.set_default(Some(Scripted::status(503)));
    tel::ffi::tel_set_logger(Some(slow_logger), 3, std::ptr::null_mut());
    init_ok(&config(
        &c,
        Some(&dir),
        json!({"flush_interval_ms": 10, "retry_initial_ms": 10}),
    ));
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

fn fifty_thousand_pending(endpoint: String, tag: &str, timeout_ms: u32) {
    let dir = temp_dir(tag);
    init_ok(&json!({
        "ikey": IKEY, "endpoint": endpoint, "cache_path": dir.join("events.cache"),
        "queue_max_events": 100_000, "http_timeout_ms": 60_000, "retry_initial_ms": 60_000,
        "cache_max_bytes": 1_000_000_000u64, "flush_interval_ms": 10,
    }));
    for i in 0..50_000 {
        log_ok("Many.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    let rc = shutdown(timeout_ms);
    assert!(rc == 0 || rc == 7, "{rc}: {}", last_error());
    let s = stats();
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(s["persisted"], 50_000, "{s}");
    assert_conserved();
    assert_eq!(read_lines(&dir.join("events.cache")).len(), 50_000);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn fifty_thousand_pending_are_all_persisted_by_shutdown() {
    let _s = serial();
    // The collector is down: the worker writes them itself, which takes longer than the grace a
    // shutdown gives it before taking over.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let down = format!("http://127.0.0.1:{port}/");
    fifty_thousand_pending(down.clone(), "fifty-down", 2000);
    // At once: the worker is still writing when the shutdown's grace ends.
    fifty_thousand_pending(down, "fifty-down-now", 0);
    // The collector hangs: the shutdown takes over from the stuck worker.
    let c = Collector::start().unwrap();
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    fifty_thousand_pending(c.endpoint(), "fifty-hang", 2000);
    c.release();
}

/// The child side: hold the cache lock of `TEL_TEST_LOCK` until stdin closes.
#[test]
fn child_lock_holder() {
    if child_role().as_deref() != Some("lock") {
        return;
    }
    let path = std::env::var("TEL_TEST_LOCK").unwrap();
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap();
    f.lock().unwrap();
    println!("LOCKED");
    use std::io::Read;
    let _ = std::io::stdin().read(&mut [0u8; 1]);
}

#[test]
fn another_process_holding_the_cache_lock_leaves_nothing_pending() {
    let _s = serial();
    let dir = temp_dir("lock-held");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    init_ok(&json!({
        "ikey": IKEY, "endpoint": format!("http://127.0.0.1:{port}/"), "flush_interval_ms": 10,
        "retry_initial_ms": 10_000, "cache_path": dir.join("events.cache"),
    }));
    for _ in 0..10 {
        log_ok("Locked.Event", None);
    }
    // Wait until the batch failed once and is backing off: shutdown then has the worker write
    // it to the cache, and the lock is held by another process meanwhile.
    let until = Instant::now() + WAIT;
    while stat("http_failures") == 0 {
        assert!(Instant::now() < until, "no attempt");
        std::thread::sleep(Duration::from_millis(5));
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([
            "child_lock_holder",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("TEL_TEST_ROLE", "lock")
        .env("TEL_TEST_LOCK", dir.join("events.cache.lock"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("LOCKED") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "lock holder ended early"
        );
    }
    let rc = shutdown(300);
    let s = stats();
    drop(child.stdin.take());
    let _ = std::io::Read::read_to_end(&mut out, &mut Vec::new());
    child.wait().unwrap();
    assert!(rc == 0 || rc == 7, "{rc}");
    assert_eq!(s["pending"], 0, "{s}");
    assert_eq!(s["dropped_shutdown"], 10, "counted where they went: {s}");
    assert_conserved();
}

#[test]
fn logging_racing_shutdown_leaves_nothing_pending() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("race");
    for round in 0..100 {
        // Default settings but the endpoint and a cache file of its own.
        init_ok(
            &json!({"ikey": IKEY, "endpoint": c.endpoint(), "cache_path": dir.join("events.cache")}),
        );
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let logger = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if log("Race.Event", None) == 4 {
                        break;
                    }
                }
            })
        };
        std::thread::sleep(Duration::from_micros(200 * (round % 5)));
        let rc = shutdown([0, 1, 5, 20, 100][round as usize % 5]);
        let s: Value = stats();
        stop.store(true, Ordering::Relaxed);
        logger.join().unwrap();
        assert!(rc == 0 || rc == 7, "{rc}");
        assert_eq!(s["pending"], 0, "round {round}: {s}");
        assert_conserved_in(&s);
    }
}
