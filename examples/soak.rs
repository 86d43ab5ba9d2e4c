//! Soak: the library through the C ABI, for a chosen time at a chosen rate, against a collector
//! (in a child process, so its threads and sockets are not counted here) that switches at
//! random between accepting, refusing and breaking HTTP every few hundred milliseconds.
//!
//! Every `--report` seconds it prints this process's RSS, open file descriptors and thread
//! count, the counters, and the conservation balance (exact at quiet points, and at any other
//! instant off by at most the events a worker is resolving at that moment). At the end the
//! collector is made to accept, `tel_flush` and `tel_shutdown` must leave the balance exact,
//! a second session replays what the first persisted, and the collector's count of accepted
//! events must equal the library's `sent`.
//!
//! ```sh
//! scripts/soak.sh 600 1000          # 10 minutes at 1000 events/s
//! cargo run --release --example soak -- --seconds 600 --rate 1000 --report 5
//! ```
//!
//! Linux (reads /proc/self). Not part of CI.

use serde_json::{json, Value};
use std::ffi::{CStr, CString};
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
}

fn parse_args() -> (Args, bool) {
    let mut a = Args {
        seconds: 60,
        rate: 1000,
        report: 5,
        threads: 4,
    };
    let mut collector = false;
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
            "--collector" => collector = true,
            other => panic!("unknown argument {other}"),
        }
    }
    (a, collector)
}

fn main() {
    let (args, collector_role) = parse_args();
    if collector_role {
        run_collector();
        return;
    }
    run_soak(&args);
}

/// The faulty collector: prints its port, then picks a new behaviour every 100-600 ms until
/// its standard input closes (the soak ended or died).
fn run_collector() {
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
    while !stop.load(Ordering::SeqCst) {
        let r = tel::random::u64() % 100;
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
        let pause = 100 + tel::random::u64() % 500;
        std::thread::sleep(Duration::from_millis(pause));
        c.release(); // hangs end with the behaviour that made them
    }
    c.set_default(None);
    c.release();
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

fn run_soak(args: &Args) {
    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--collector")
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
    let dir = std::env::temp_dir().join(format!("tel-soak-{}", std::process::id()));
    let config = json!({
        "ikey": IKEY,
        "endpoint": format!("http://127.0.0.1:{port}/OneCollector/1.0/"),
        "cache_path": dir.join("soak.cache").to_string_lossy(),
        "flush_interval_ms": 200,
        "http_timeout_ms": 2000,
        "retry_initial_ms": 100,
        "retry_max_ms": 2000,
        "retry_max_attempts": 4,
        "queue_max_events": 20000,
    });
    init(&config);
    println!(
        "soak: {} s at {} events/s over {} threads; collector pid {} on port {port}; cache {}",
        args.seconds,
        args.rate,
        args.threads,
        child.id(),
        dir.display()
    );
    println!(
        "{:>6} {:>9} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7}",
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
        "balance"
    );
    let start = Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicU64::new(0));
    let per_thread = (args.rate / args.threads).max(1);
    let loggers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (stop, refused) = (stop.clone(), refused.clone());
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
    let mut peak_rss = 0;
    let mut peak_fds = 0;
    let mut peak_threads = 0;
    let mut worst_balance = 0i64;
    let mut next = start + Duration::from_secs(args.report);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        std::thread::sleep(next.min(end).saturating_duration_since(now));
        next += Duration::from_secs(args.report);
        let s = stats();
        let (rss, fds, thr, bal) = (rss_kb(), open_fds(), threads(), balance(&s));
        peak_rss = peak_rss.max(rss);
        peak_fds = peak_fds.max(fds);
        peak_threads = peak_threads.max(thr);
        worst_balance = worst_balance.max(bal.abs());
        println!(
            "{:>6} {:>9} {:>5} {:>5} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8} {:>7}",
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
            bal
        );
    }
    stop.store(true, Ordering::SeqCst);
    for l in loggers {
        l.join().unwrap();
    }
    // Shut down while the collector still misbehaves: the deadline holds, the rest is persisted.
    let t = Instant::now();
    let rc_shutdown = ffi::tel_shutdown(5000);
    let shutdown_ms = t.elapsed().as_millis();
    let first = stats();
    let faulty_accepted = collector_stat(port, "accepted");
    drop(child.stdin.take());
    let _ = child.wait();
    println!(
        "first session: tel_shutdown(5000)={rc_shutdown} in {shutdown_ms} ms; balance {}; stats {first}",
        balance(&first)
    );
    println!(
        "faulty collector accepted {faulty_accepted} events; the library counted {} sent",
        first["sent"]
    );
    let mut ok = balance(&first) == 0
        && shutdown_ms < 5000 + 2000
        && faulty_accepted == first["sent"].as_u64().unwrap_or(u64::MAX);
    // The fault clears: a second session, against a collector that accepts, delivers what
    // the first persisted.
    let collector = Collector::start().expect("clean collector");
    let mut config2 = config.clone();
    config2["endpoint"] = json!(collector.endpoint());
    init(&config2);
    let rc_flush = ffi::tel_flush(120_000);
    let rc_shutdown2 = ffi::tel_shutdown(5000);
    let second = stats();
    println!(
        "second session: tel_flush={rc_flush} tel_shutdown={rc_shutdown2} balance {}; stats {second}",
        balance(&second)
    );
    println!(
        "clean collector accepted {} events; second session sent {}",
        collector.accepted_count(),
        second["sent"]
    );
    ok &= balance(&second) == 0
        && rc_flush == 0
        && collector.accepted_count() as u64 == second["sent"].as_u64().unwrap_or(u64::MAX);
    let g = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0) as i64;
    // Every event logged in the first session ends up sent, rejected or evicted from the
    // bounded cache in one of the two sessions (the second logs nothing).
    let unaccounted = g(&first, "logged")
        - (g(&first, "sent")
            + g(&first, "rejected")
            + g(&first, "dropped_killed")
            + g(&first, "dropped_shutdown"))
        - (g(&second, "sent")
            + g(&second, "rejected")
            + g(&second, "dropped_killed")
            + g(&second, "dropped_shutdown")
            + g(&second, "persisted"))
        - (g(&first, "cache_evicted") + g(&second, "cache_evicted"));
    ok &= unaccounted == 0;
    println!(
        "summary: {} s, peak rss {} kB, peak fds {}, peak threads {}, largest instantaneous balance {}, tel_log refusals other than queue-full {}, events unaccounted across both sessions {}",
        start.elapsed().as_secs(),
        peak_rss,
        peak_fds,
        peak_threads,
        worst_balance,
        refused.load(Ordering::Relaxed),
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
