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

/// The library's worker threads alive in this process (a worker a shutdown left behind ends by
/// itself later).
#[cfg(target_os = "linux")]
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|c| c.starts_with("tel-worker"))
        })
        .count()
}

#[cfg(target_os = "linux")]
fn wait_for_no_worker() {
    let until = Instant::now() + WAIT;
    while worker_threads() > 0 {
        assert!(Instant::now() < until, "a worker outlived its shutdown");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A worker busy in a claim (disk work under the cache lock, which a loaded machine makes slow)
/// when the deadline passes is not stuck in a request: the shutdown must not wait for the lock
/// its own worker holds and give the events up as `dropped_shutdown`. What is left is
/// persisted, the counters are final when `tel_shutdown` returns, and the next session delivers
/// every event once. The claim is held up by the debug builds' `TEL_TEST_CLAIM_GATE`.
#[cfg(target_os = "linux")]
#[test]
fn a_worker_inside_a_claim_at_the_deadline_leaves_everything_persisted() {
    let _s = serial();
    let dir = temp_dir("claim-at-deadline");
    let cache = dir.join("events.cache");
    fill_cache(&cache, "Cached.Event", 5);
    // And one entry past `cache_max_age_s`, which the claim evicts.
    let expired = cached_line("Expired.Event", "old", 99, "").replace(
        &tel::internals::clock::iso8601(tel::internals::clock::now_ms())[..4],
        "2001",
    );
    let mut text = std::fs::read_to_string(&cache).unwrap();
    text.push_str(&expired);
    text.push('\n');
    std::fs::write(&cache, text).unwrap();
    let gate = dir.join("claim-gate");
    std::fs::write(&gate, b"").unwrap();
    std::env::set_var("TEL_TEST_CLAIM_GATE", &gate);
    let c = Collector::start().unwrap();
    init_ok(&config(&c, Some(&dir), json!({})));
    // The claim file is created under the cache lock, at the start of the claim.
    let until = Instant::now() + WAIT;
    while claim_files(&dir).is_empty() {
        assert!(Instant::now() < until, "no claim began");
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..10 {
        log_ok("Late.Event", Some(&format!("{{\"seq\":{}}}", 100 + i)));
    }
    let rc = shutdown(100);
    let after = stats();
    // The claim may go on now (as a slow disk's would); nothing it does may show any more.
    std::fs::remove_file(&gate).unwrap();
    std::env::remove_var("TEL_TEST_CLAIM_GATE");
    wait_for_no_worker();
    let later = stats();
    assert!(rc == 0 || rc == 7, "{rc}: {}", last_error());
    assert_eq!(after["pending"], 0, "{after}");
    assert_eq!(after["dropped_shutdown"], 0, "{after}");
    assert_eq!(after["persisted"], 10, "{after}");
    assert_conserved_in(&after);
    assert_eq!(after, later, "counters moved after tel_shutdown returned");

    init_ok(&config(&c, Some(&dir), json!({})));
    assert_eq!(flush(WAIT.as_millis() as u32), 0, "{}", last_error());
    assert_eq!(shutdown(WAIT.as_millis() as u32), 0, "{}", last_error());
    let s = stats();
    assert_conserved_in(&s);
    let wire = wire_envelopes(&c);
    let counts = seq_counts(&wire);
    let mut expected: Vec<u64> = (1..=5).chain(100..110).collect();
    let mut got: Vec<u64> = counts.keys().copied().collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "{s}");
    assert!(counts.values().all(|&n| n == 1), "sent twice: {counts:?}");
    let evicted = after["cache_evicted"].as_u64().unwrap() + s["cache_evicted"].as_u64().unwrap();
    assert_eq!(evicted, 1, "the expired entry, once: {after} {s}");
    assert_eq!(s["replayed"], 15, "{s}");
}

/// A shutdown that takes over from a worker stuck in a request persists the replayed batch in
/// flight to the cache; the worker's claim file must not list it any more, or a later session,
/// once that worker has ended, takes the batch up (and sends and counts it) a second time.
#[cfg(target_os = "linux")]
#[test]
fn a_replayed_batch_persisted_by_a_takeover_is_taken_up_once() {
    let _s = serial();
    let dir = temp_dir("takeover-claim");
    fill_cache(&dir.join("events.cache"), "Cached.Event", 5);
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    init_ok(&config(
        &hang,
        Some(&dir),
        json!({"http_timeout_ms": 60_000}),
    ));
    let until = Instant::now() + WAIT;
    while stat("http_requests") == 0 {
        assert!(Instant::now() < until, "the replayed batch was never sent");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(shutdown(100), 7, "{}", last_error());
    let first = stats();
    assert_eq!(first["replayed"], 5, "{first}");
    assert_eq!(first["persisted"], 5, "{first}");
    assert_conserved_in(&first);

    // Another session while the first one's worker is still stuck in its request.
    let c = Collector::start().unwrap();
    let deliver_all = |c: &Collector| {
        init_ok(&config(c, Some(&dir), json!({})));
        assert_eq!(flush(WAIT.as_millis() as u32), 0, "{}", last_error());
        assert_eq!(shutdown(WAIT.as_millis() as u32), 0, "{}", last_error());
        let s = stats();
        assert_conserved_in(&s);
        s
    };
    let second = deliver_all(&c);
    assert_eq!(second["replayed"], 5, "{second}");
    // The stuck worker ends; its claim is free for the next session to merge back.
    hang.release();
    wait_for_no_worker();
    let third = deliver_all(&c);
    assert_eq!(third["replayed"], 0, "taken up again: {third}");
    let counts = seq_counts(&wire_envelopes(&c));
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "sent twice: {counts:?}");
}

/// A shutdown that takes over from a stuck worker (in a request, or reading the cache for a
/// claim) leaves no claim file behind, at once and after that worker ended; every entry the
/// worker had claimed is in the cache file, and the next session delivers each one once.
#[cfg(target_os = "linux")]
#[test]
fn a_takeover_leaves_no_claim_file_behind() {
    let _s = serial();
    // In a request: the replayed batch hangs at a collector that never answers.
    let dir = temp_dir("takeover-no-claim");
    let cache = dir.join("events.cache");
    fill_cache(&cache, "Cached.Event", 5);
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    init_ok(&config(
        &hang,
        Some(&dir),
        json!({"http_timeout_ms": 60_000}),
    ));
    assert!(
        hang.wait_for_requests(1, WAIT),
        "the replayed batch was never sent"
    );
    assert_eq!(claim_files(&dir).len(), 1, "the worker holds a claim");
    assert_eq!(shutdown(100), 7, "{}", last_error());
    assert_eq!(
        claim_files(&dir),
        Vec::<std::path::PathBuf>::new(),
        "at once"
    );
    assert_eq!(read_lines(&cache).len(), 5);
    hang.release();
    wait_for_no_worker();
    assert_eq!(
        claim_files(&dir),
        Vec::<std::path::PathBuf>::new(),
        "once the worker ended"
    );

    // Reading the cache for a claim (held up by the debug builds' TEL_TEST_CLAIM_GATE): the
    // claim file exists from the start of the claim.
    let gate = dir.join("claim-gate");
    std::fs::write(&gate, b"").unwrap();
    std::env::set_var("TEL_TEST_CLAIM_GATE", &gate);
    let c = Collector::start().unwrap();
    init_ok(&config(&c, Some(&dir), json!({})));
    let until = Instant::now() + WAIT;
    while claim_files(&dir).is_empty() {
        assert!(Instant::now() < until, "no claim began");
        std::thread::sleep(Duration::from_millis(5));
    }
    let rc = shutdown(100);
    assert!(rc == 0 || rc == 7, "{rc}: {}", last_error());
    let left = claim_files(&dir);
    std::fs::remove_file(&gate).unwrap();
    std::env::remove_var("TEL_TEST_CLAIM_GATE");
    wait_for_no_worker();
    assert_eq!(left, Vec::<std::path::PathBuf>::new(), "at once");
    assert_eq!(
        claim_files(&dir),
        Vec::<std::path::PathBuf>::new(),
        "once the worker ended"
    );

    init_ok(&config(&c, Some(&dir), json!({})));
    assert_eq!(flush(WAIT.as_millis() as u32), 0, "{}", last_error());
    assert_eq!(shutdown(WAIT.as_millis() as u32), 0, "{}", last_error());
    assert_conserved();
    let counts = seq_counts(&wire_envelopes(&c));
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(counts.values().all(|&n| n == 1), "sent twice: {counts:?}");
    assert!(claim_files(&dir).is_empty());
}

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
    let until = Instant::now() + WAIT;
    while stat("http_requests") == 0 {
        assert!(Instant::now() < until, "no request was made");
        std::thread::sleep(Duration::from_millis(5));
    }
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
