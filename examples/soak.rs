//! Soak: the library through the C ABI, for a chosen time at a chosen rate, against a collector
//! (in a child process, so its threads and sockets are not counted here) that switches at
//! random between accepting, refusing and breaking HTTP every few hundred milliseconds.
//!
//! Two hazards come from the host's side: the logger callback blocks at random (1 line in 200
//! sleeps 20-300 ms), and the collector's process holds the cache lock at random (50-1500 ms
//! every 0.2-3 s), as another process of the tenant would. Sessions last `--session` seconds on
//! average: each ends with `tel_shutdown(1000)`, after which `pending` must be 0, the balance
//! exact and the deadline kept; the next session starts at once (and replays what the last one
//! persisted) while the loggers go on.
//!
//! Every `--report` seconds it prints this process's RSS, open file descriptors and thread
//! count, the counters, and the conservation balance (exact at quiet points, and at any other
//! instant off by at most the events a worker is resolving at that moment). At the end the
//! last session shuts down while the collector still misbehaves, a clean session replays what
//! was persisted, the collector's count of accepted events must equal the sessions' `sent`, and
//! every event logged must be accounted for across all sessions.
//!
//! ```sh
//! scripts/soak.sh 600 1000          # 10 minutes at 1000 events/s
//! cargo run --release --example soak -- --seconds 600 --rate 1000 --report 5
//! ```
//!
//! Linux (reads /proc/self). Not part of CI.

use serde_json::{json, Value};
use std::ffi::{c_char, c_void, CStr, CString};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tel::ffi;
use tel_emulator::{Collector, Fault, Scripted};

const IKEY: &str = "50a4c0de50a4c0de50a4c0de50a4c0de-50a4-4c0d-e50a-4c0de50a4c0d-0001";

struct Args {
    seconds: u64,
    rate: u64,
    report: u64,
    threads: u64,
    session: u64,
}

fn parse_args() -> (Args, Option<String>) {
    let mut a = Args {
        seconds: 60,
        rate: 1000,
        report: 5,
        threads: 4,
        session: 20,
    };
    let mut collector = None;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut num = || -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{flag} needs a number"))
        };
        match flag.as_str() {
            "--seconds" => a.seconds = num(),
            "--rate" => a.rate = num(),
            "--report" => a.report = num().max(1),
            "--threads" => a.threads = num().max(1),
            "--session" => a.session = num().max(1),
            "--collector" => collector = Some(it.next().expect("--collector needs the lock path")),
            other => panic!("unknown argument {other}"),
        }
    }
    (a, collector)
}

fn main() {
    let (args, collector_role) = parse_args();
    if let Some(lock) = collector_role {
        run_collector(&lock);
        return;
    }
    run_soak(&args);
}

/// The faulty collector: prints its port, then picks a new behaviour every 100-600 ms until
/// its standard input closes (the soak ended or died). Meanwhile it holds the cache lock `lock`
/// at random, as another process of the tenant would.
fn run_collector(lock: &str) {
    let c = Collector::start().expect("collector");
    println!("PORT={}", c.port());
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            stop.store(true, Ordering::SeqCst);
        });
    }
    {
        let (stop, lock) = (stop.clone(), std::path::PathBuf::from(lock));
        std::thread::spawn(move || hold_the_cache_lock_at_random(&lock, &stop));
    }
    while !stop.load(Ordering::SeqCst) {
        let r = tel::internals::random::u64() % 100;
        // Broken answers carry a 503 status line: a client that reads a 2xx status counts
        // the batch as delivered, while the emulator accepts nothing from a faulted answer,
        // and the closing check compares the two counts.
        let broken = |f: Fault| Some(Scripted::status(503).with_fault(f));
        let behaviour = match r {
            0..=44 => None, // accept
            45..=51 => Some(Scripted::status(503)),
            52..=55 => Some(Scripted::status(500)),
            56..=58 => Some(Scripted::status(429).with_header("Retry-After", "1")),
            59..=62 => Some(Scripted::fault(Fault::Reset)),
            63..=66 => Some(Scripted::fault(Fault::Garbage(
                b"HTTP/9 ???\r\n\r\n".to_vec(),
            ))),
            67..=70 => Some(Scripted::fault(Fault::HangBeforeHeaders)),
            71..=73 => broken(Fault::HangMidBody),
            74..=76 => broken(Fault::LyingContentLength),
            77..=79 => broken(Fault::HugeBody(2 << 20)),
            80..=82 => broken(Fault::ManyHeaders(2000)),
            83..=85 => broken(Fault::TrickleHeaders(Duration::from_millis(2))),
            86..=89 => Some(
                Scripted::status(200).with_body(r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#),
            ),
            90..=92 => Some(Scripted::status(413)),
            // A 4xx refuses the whole batch: counted as rejected.
            93..=94 => Some(Scripted::status(400)),
            _ => None,
        };
        c.set_default(behaviour);
        let pause = 100 + tel::internals::random::u64() % 500;
        std::thread::sleep(Duration::from_millis(pause));
        c.release(); // hangs end with the behaviour that made them
    }
    c.set_default(None);
    c.release();
}

/// Takes the cache lock for 50-1500 ms every 0.2-3 s until `stop`.
fn hold_the_cache_lock_at_random(lock: &std::path::Path, stop: &AtomicBool) {
    let mut held_ms = 0u64;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(
            200 + tel::internals::random::u64() % 2800,
        ));
        if let Some(dir) = lock.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(lock)
        else {
            continue;
        };
        if f.lock().is_ok() {
            let hold = 50 + tel::internals::random::u64() % 1450;
            std::thread::sleep(Duration::from_millis(hold));
            held_ms += hold;
            let _ = f.unlock();
        }
    }
    eprintln!("lock holder: held the cache lock {held_ms} ms in all");
}

/// Lines the logger received, and how many of them it blocked on.
static LOGGED_LINES: AtomicU64 = AtomicU64::new(0);
static BLOCKED_LINES: AtomicU64 = AtomicU64::new(0);

/// A host logger that blocks at random: 1 line in 200 takes 20-300 ms.
extern "C" fn blocking_logger(_level: i32, _message: *const c_char, _user_data: *mut c_void) {
    LOGGED_LINES.fetch_add(1, Ordering::Relaxed);
    if tel::internals::random::u64().is_multiple_of(200) {
        BLOCKED_LINES.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(
            20 + tel::internals::random::u64() % 280,
        ));
    }
}

fn rss_kb() -> u64 {
    status_field("VmRSS:")
}

fn threads() -> u64 {
    status_field("Threads:")
}

fn status_field(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

fn stats() -> Value {
    let n = unsafe { ffi::tel_stats_json(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    unsafe { ffi::tel_stats_json(buf.as_mut_ptr().cast(), buf.len()) };
    serde_json::from_slice(&buf[..n]).expect("stats JSON")
}

fn last_error() -> String {
    let mut buf = vec![0u8; 1024];
    unsafe { ffi::tel_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    CStr::from_bytes_until_nul(&buf)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `logged + replayed - (sent + rejected + dropped_killed + dropped_shutdown + persisted + pending)`.
fn balance(s: &Value) -> i64 {
    let g = |k: &str| s[k].as_u64().unwrap_or(0) as i64;
    g("logged") + g("replayed")
        - (g("sent")
            + g("rejected")
            + g("dropped_killed")
            + g("dropped_shutdown")
            + g("persisted")
            + g("pending"))
}

fn collector_stat(port: u16, key: &str) -> u64 {
    let url = format!("http://127.0.0.1:{port}/_emulator/stats");
    ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .proxy(None)
        .build()
        .new_agent()
        .get(&url)
        .call()
        .ok()
        .and_then(|r| r.into_body().read_to_vec().ok())
        .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
        .and_then(|v| v[key].as_u64())
        .unwrap_or(u64::MAX)
}

fn init(config: &Value) {
    let c = CString::new(config.to_string()).unwrap();
    let rc = unsafe { ffi::tel_init(c.as_ptr()) };
    assert_eq!(rc, 0, "tel_init: {}", last_error());
}

/// What the sessions of the soak added up to, and what went wrong at their shutdowns.
#[derive(Default)]
struct Totals {
    sessions: u64,
    logged: i64,
    sent: i64,
    resolved: i64,
    evicted: i64,
    /// Shutdowns after which `pending` was not 0, the balance not exact, or the deadline missed.
    failures: Vec<String>,
    slowest_shutdown_ms: u128,
}

impl Totals {
    /// Ends the live session with `tel_shutdown(deadline_ms)` and checks what it promises.
    fn shut_down(&mut self, deadline_ms: u32) -> Value {
        let t = Instant::now();
        let rc = ffi::tel_shutdown(deadline_ms);
        let ms = t.elapsed().as_millis();
        let s = stats();
        let g = |k: &str| s[k].as_u64().unwrap_or(0) as i64;
        self.sessions += 1;
        self.logged += g("logged");
        self.sent += g("sent");
        self.resolved += g("sent") + g("rejected") + g("dropped_killed") + g("dropped_shutdown");
        self.evicted += g("cache_evicted");
        self.slowest_shutdown_ms = self.slowest_shutdown_ms.max(ms);
        // abi.md: within the deadline plus 200 ms; a loaded machine gets a second more.
        let late = ms > u128::from(deadline_ms) + 200 + 1000;
        if g("pending") != 0 || balance(&s) != 0 || late || ![0, 7].contains(&rc) {
            self.failures.push(format!(
                "session {}: tel_shutdown({deadline_ms})={rc} in {ms} ms, pending {}, balance {}",
                self.sessions,
                g("pending"),
                balance(&s)
            ));
        }
        s
    }
}

fn run_soak(args: &Args) {
    let dir = std::env::temp_dir().join(format!("tel-soak-{}", std::process::id()));
    let cache = dir.join("soak.cache");
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--collector")
        .arg(dir.join("soak.cache.lock"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("collector process");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let port: u16 = first
        .trim()
        .strip_prefix("PORT=")
        .and_then(|p| p.parse().ok())
        .expect("PORT= line");
    let config = json!({
        "ikey": IKEY,
        "endpoint": format!("http://127.0.0.1:{port}/OneCollector/1.0/"),
        "cache_path": cache.to_string_lossy(),
        "flush_interval_ms": 200,
        "http_timeout_ms": 2000,
        "retry_initial_ms": 100,
        "retry_max_ms": 2000,
        "retry_max_attempts": 4,
        "queue_max_events": 20000,
    });
    assert_eq!(
        ffi::tel_set_logger(Some(blocking_logger), 4, std::ptr::null_mut()),
        0
    );
    init(&config);
    println!(
        "soak: {} s at {} events/s over {} threads, sessions of ~{} s; collector pid {} on port {port}; cache {}",
        args.seconds,
        args.rate,
        args.threads,
        args.session,
        child.id(),
        dir.display()
    );
    println!(
        "{:>6} {:>9} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7} {:>5}",
        "t_s",
        "rss_kb",
        "fds",
        "thr",
        "logged",
        "sent",
        "rejected",
        "persist",
        "replayed",
        "pending",
        "qfull",
        "http_req",
        "balance",
        "sess"
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let between = Arc::new(AtomicU64::new(0));
    let per_thread = (args.rate / args.threads).max(1);
    let loggers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (stop, refused, between) = (stop.clone(), refused.clone(), between.clone());
            std::thread::spawn(move || {
                let name = CString::new("Soak.Event").unwrap();
                let t0 = Instant::now();
                let mut i: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    let props = CString::new(format!(
                        "{{\"t\":{t},\"i\":{i},\"pad\":\"{}\"}}",
                        "p".repeat(100)
                    ))
                    .unwrap();
                    match unsafe { ffi::tel_log(name.as_ptr(), props.as_ptr()) } {
                        0 | 6 => {}
                        // Between one session's shutdown and the next one's init.
                        4 => {
                            between.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    i += 1;
                    // Pace to the rate: sleep until event i is due.
                    let due = t0 + Duration::from_micros(i * 1_000_000 / per_thread);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            })
        })
        .collect();
    let session_length = |args: &Args| {
        let base = args.session * 1000;
        Duration::from_millis(base / 2 + tel::internals::random::u64() % base.max(1))
    };
    let mut totals = Totals::default();
    let mut peak_rss = 0;
    let mut peak_fds = 0;
    let mut peak_threads = 0;
    let mut worst_balance = 0i64;
    let mut next = start + Duration::from_secs(args.report);
    let mut session_end = start + session_length(args);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(
            next.min(end)
                .min(session_end)
                .saturating_duration_since(now),
        );
        if Instant::now() >= session_end && Instant::now() < end {
            totals.shut_down(1000);
            init(&config);
            session_end = Instant::now() + session_length(args);
        }
        if Instant::now() < next {
            continue;
        }
        next += Duration::from_secs(args.report);
        let s = stats();
        let (rss, fds, thr, bal) = (rss_kb(), open_fds(), threads(), balance(&s));
        peak_rss = peak_rss.max(rss);
        peak_fds = peak_fds.max(fds);
        peak_threads = peak_threads.max(thr);
        worst_balance = worst_balance.max(bal.abs());
        println!(
            "{:>6} {:>9} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7} {:>5}",
            start.elapsed().as_secs(),
            rss,
            fds,
            thr,
            s["logged"],
            s["sent"],
            s["rejected"],
            s["persisted"],
            s["replayed"],
            s["pending"],
            s["dropped_queue_full"],
            s["http_requests"],
            bal,
            totals.sessions + 1
        );
    }
    stop.store(true, Ordering::SeqCst);
    for l in loggers {
        l.join().unwrap();
    }
    // Shut down while the collector still misbehaves: the deadline holds, the rest is persisted.
    let last = totals.shut_down(5000);
    let faulty_accepted = collector_stat(port, "accepted");
    drop(child.stdin.take());
    let _ = child.wait();
    println!(
        "{} faulty sessions; slowest tel_shutdown {} ms; last session {last}",
        totals.sessions, totals.slowest_shutdown_ms
    );
    println!(
        "logger: {} lines, {} of them blocked 20-300 ms",
        LOGGED_LINES.load(Ordering::Relaxed),
        BLOCKED_LINES.load(Ordering::Relaxed)
    );
    println!(
        "faulty collector accepted {faulty_accepted} events; the sessions counted {} sent",
        totals.sent
    );
    let mut ok = totals.failures.is_empty() && faulty_accepted == totals.sent as u64;
    for f in &totals.failures {
        println!("FAILED CHECK: {f}");
    }
    // The faults clear: a clean session delivers what the others persisted.
    let collector = Collector::start().expect("clean collector");
    let mut config2 = config.clone();
    config2["endpoint"] = json!(collector.endpoint());
    init(&config2);
    let rc_flush = ffi::tel_flush(120_000);
    let rc_shutdown2 = ffi::tel_shutdown(5000);
    let clean = stats();
    let _ = ffi::tel_set_logger(None, 0, std::ptr::null_mut());
    println!(
        "clean session: tel_flush={rc_flush} tel_shutdown={rc_shutdown2} balance {}; stats {clean}",
        balance(&clean)
    );
    println!(
        "clean collector accepted {} events; clean session sent {}",
        collector.accepted_count(),
        clean["sent"]
    );
    ok &= balance(&clean) == 0
        && rc_flush == 0
        && clean["pending"] == 0
        && collector.accepted_count() as u64 == clean["sent"].as_u64().unwrap_or(u64::MAX);
    let g = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0) as i64;
    // Every event logged in the faulty sessions ends up sent, rejected, dropped for a named
    // reason or evicted from the bounded cache, in one session or another (the clean one logs
    // nothing and leaves nothing in the cache).
    let left_in_cache = std::fs::read_to_string(&cache)
        .map(|t| t.lines().filter(|l| !l.is_empty()).count() as i64)
        .unwrap_or(0);
    let unaccounted = totals.logged
        - totals.resolved
        - totals.evicted
        - (g(&clean, "sent")
            + g(&clean, "rejected")
            + g(&clean, "dropped_killed")
            + g(&clean, "dropped_shutdown")
            + g(&clean, "cache_evicted"))
        - left_in_cache;
    ok &= unaccounted == 0;
    println!(
        "summary: {} s, {} sessions, peak rss {} kB, peak fds {}, peak threads {}, largest instantaneous balance {}, tel_log refusals other than queue-full {}, calls between sessions {}, left in the cache {}, events unaccounted across all sessions {}",
        start.elapsed().as_secs(),
        totals.sessions + 1,
        peak_rss,
        peak_fds,
        peak_threads,
        worst_balance,
        refused.load(Ordering::Relaxed),
        between.load(Ordering::Relaxed),
        left_in_cache,
        unaccounted
    );
    let _ = std::fs::remove_dir_all(&dir);
    if ok && refused.load(Ordering::Relaxed) == 0 {
        println!("SOAK PASSED");
    } else {
        println!("SOAK FAILED");
        std::process::exit(1);
    }
}
