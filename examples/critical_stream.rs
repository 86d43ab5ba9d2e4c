//! Critical events under a steady stream: how large the session's critical-events file grows,
//! and how many events a SIGKILL makes the next process send again (docs/reliability.md).
//!
//! A child process (this program again) logs `--events` critical events at `--rate` a second
//! through the C ABI to a collector that answers every request after `--latency-ms`, with a
//! cache folder; it samples the size of its critical-events file after every event and prints
//! the peak. Without `--kill` it then shuts down; with it, the parent kills it (SIGKILL) once the
//! last event was logged, and a new session on the same cache (against a second collector)
//! delivers what the dead one left: the events it sends that the first collector had already
//! accepted are the ones sent again, and every event must have been delivered once at least.
//!
//! ```sh
//! cargo run --release --example critical_stream -- --events 12000             # 40 s at 300/s
//! cargo run --release --example critical_stream -- --events 8000 --kill
//! ```
//!
//! Not part of CI.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tel::ffi;
use tel_emulator::{Collector, Scripted};

const IKEY: &str = "c417ca1ec417ca1ec417ca1ec417ca1e-c417-4ca1-ec41-7ca1ec417ca1-0001";

struct Args {
    events: u64,
    rate: u64,
    latency_ms: u64,
    kill: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        events: 12_000,
        rate: 300,
        latency_ms: 40,
        kill: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = || it.next().and_then(|v| v.parse().ok()).expect(&arg);
        match arg.as_str() {
            "--events" => a.events = number(),
            "--rate" => a.rate = number(),
            "--latency-ms" => a.latency_ms = number(),
            "--kill" => a.kill = true,
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn config(endpoint: &str, dir: &Path) -> CString {
    CString::new(
        json!({
            "ikey": IKEY,
            "endpoint": endpoint,
            "cache_path": dir.join("events.cache"),
            "queue_max_events": 1_000_000,
        })
        .to_string(),
    )
    .unwrap()
}

fn critical_bytes_and_lines(dir: &Path) -> (u64, usize) {
    let mut bytes = 0;
    let mut lines = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with("-critical") {
            if let Ok(text) = std::fs::read(e.path()) {
                bytes += text.len() as u64;
                lines += text.iter().filter(|b| **b == b'\n').count();
            }
        }
    }
    (bytes, lines)
}

fn stats() -> Value {
    let mut buf = vec![0u8; 4096];
    let n = unsafe { ffi::tel_stats_json(buf.as_mut_ptr().cast(), buf.len()) };
    serde_json::from_slice(&buf[..n]).unwrap()
}

/// The child: logs the stream, prints `PEAK=<bytes> <lines>` and `LOGGED=<n>`, then either
/// waits to be killed or shuts down.
fn child(endpoint: &str, dir: &Path, a: &Args) {
    let c = config(endpoint, dir);
    assert_eq!(unsafe { ffi::tel_init(c.as_ptr()) }, 0);
    let name = CString::new("Crash.Report").unwrap();
    let options = CString::new(r#"{"priority":"critical"}"#).unwrap();
    let start = Instant::now();
    let mut peak = (0, 0);
    let mut slowest = Duration::ZERO;
    for i in 0..a.events {
        let due = start + Duration::from_micros(i * 1_000_000 / a.rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let props = CString::new(json!({"i": i, "stack": "x".repeat(40)}).to_string()).unwrap();
        let t = Instant::now();
        let rc = unsafe { ffi::tel_log_ex(name.as_ptr(), props.as_ptr(), options.as_ptr()) };
        slowest = slowest.max(t.elapsed());
        assert_eq!(rc, 0, "event {i}");
        let now = critical_bytes_and_lines(dir);
        if now.0 > peak.0 {
            peak = now;
        }
    }
    let s = stats();
    println!("PEAK={} {}", peak.0, peak.1);
    println!("PENDING={}", s["pending"]);
    println!("SLOWEST_US={}", slowest.as_micros());
    println!("LOGGED={}", a.events);
    std::io::stdout().flush().unwrap();
    if a.kill {
        loop {
            std::thread::park();
        }
    }
    let rc = ffi::tel_shutdown(5000);
    println!("SHUTDOWN={rc} {}", stats());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let a = Args {
            events: args[4].parse().unwrap(),
            rate: args[5].parse().unwrap(),
            latency_ms: 0,
            kill: args[6] == "kill",
        };
        child(&args[2], Path::new(&args[3]), &a);
        return;
    }
    let a = parse_args();
    let first = Collector::start().unwrap();
    first.set_default(Some(
        Scripted::accept().with_delay(Duration::from_millis(a.latency_ms)),
    ));
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "tel-critical-stream-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{} critical events at {}/s, collector latency {} ms{}",
        a.events,
        a.rate,
        a.latency_ms,
        if a.kill {
            ", SIGKILL after the last"
        } else {
            ""
        }
    );
    let mut kid = Command::new(std::env::current_exe().unwrap())
        .args([
            "child",
            &first.endpoint(),
            &dir.display().to_string(),
            &a.events.to_string(),
            &a.rate.to_string(),
            if a.kill { "kill" } else { "live" },
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = Vec::new();
    for line in BufReader::new(kid.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        println!("  child: {line}");
        let last = line.starts_with("LOGGED=");
        printed.push(line);
        if last && a.kill {
            let (bytes, lines) = critical_bytes_and_lines(&dir);
            kid.kill().unwrap();
            println!("  killed; its critical-events files: {bytes} bytes, {lines} lines");
            break;
        }
    }
    kid.wait().unwrap();
    if !a.kill {
        return;
    }
    let delivered: HashSet<u64> = first
        .accepted()
        .iter()
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    let second = Collector::start().unwrap();
    let c = config(&second.endpoint(), &dir);
    assert_eq!(unsafe { ffi::tel_init(c.as_ptr()) }, 0);
    assert_eq!(ffi::tel_flush(60_000), 0);
    assert_eq!(ffi::tel_shutdown(5000), 0);
    let again: Vec<u64> = second
        .accepted()
        .iter()
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    let resent = again.iter().filter(|i| delivered.contains(i)).count();
    let all: HashSet<u64> = delivered.iter().chain(&again).copied().collect();
    println!(
        "delivered before the SIGKILL: {}; the next process sent {} of which {resent} again; \
         delivered by neither: {}",
        delivered.len(),
        again.len(),
        a.events - all.len() as u64
    );
    let _ = std::fs::remove_dir_all(dir);
}
