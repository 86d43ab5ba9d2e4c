//! The benchmarks of docs/performance.md. They print figures; they never fail on a number.
//!
//! `cargo bench --bench tel_bench` runs everything; `cargo bench --bench tel_bench -- NAME...`
//! runs the named groups of: latency, throughput, sink, network, memory, lifecycle, cpu, size,
//! clients (ABI 1.1 call latencies), many_clients (8 clients at once), scrub (the scrubber
//! alone on the typical event).
//! Memory figures come from child processes (this binary re-run with `memory-child`), so that
//! the collector and the other benchmarks do not pollute them.

use serde_json::json;
use std::ffi::CString;
use std::time::{Duration, Instant};
use tel::ffi;
use tel_emulator::{Collector, Options, Scripted};

const IKEY: &str = "0123456789abcdef0123456789abcdef-0123-4567-89ab-cdef01234567-0001";

/// A typical event: a name and 10 properties, about 300 bytes of JSON.
fn typical_properties(i: u64) -> String {
    json!({
        "action_name": "build",
        "success": true,
        "duration_ms": 1234 + (i % 100),
        "model": "resnet50-v2-7.onnx",
        "model_path": "C:/Users/someone/models/vision/resnet50-v2-7.onnx",
        "device": "gpu",
        "precision": "fp16",
        "batch_size": 8,
        "cache_hit": false,
        "error_code": null,
        "args": ["--optimize", "--quantize", "--target", "x64"],
    })
    .to_string()
}

/// The configuration JSON: no cache unless `extra` names one.
fn config_json(endpoint: &str, extra: serde_json::Value) -> CString {
    let mut c = json!({"ikey": IKEY, "endpoint": endpoint, "cache_path": null});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    CString::new(c.to_string()).unwrap()
}

fn init(endpoint: &str, extra: serde_json::Value) {
    let c = config_json(endpoint, extra);
    let rc = unsafe { ffi::tel_init(c.as_ptr()) };
    assert_eq!(rc, 0, "tel_init failed");
}

fn stats() -> serde_json::Value {
    let mut buf = vec![0u8; 4096];
    let n = unsafe { ffi::tel_stats_json(buf.as_mut_ptr().cast(), buf.len()) };
    serde_json::from_slice(&buf[..n]).unwrap()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report_latency(label: &str, mut ns: Vec<u64>) {
    ns.sort_unstable();
    println!(
        "{label:<34} n={:<8} median {:>6} ns   p99 {:>7} ns   p99.9 {:>8} ns   max {:>9} ns",
        ns.len(),
        percentile(&ns, 0.5),
        percentile(&ns, 0.99),
        percentile(&ns, 0.999),
        ns[ns.len() - 1]
    );
}

/// An in-process emulator that keeps counts only, so that its memory stays flat.
fn counting_collector() -> Collector {
    Collector::start_with(Options {
        keep_records: false,
        ..Options::default()
    })
    .unwrap()
}

/// `tel_log` on the caller's thread, timed call by call, with the worker sending to the emulator.
fn latency() {
    let collector = counting_collector();
    let props: Vec<CString> = (0..1000)
        .map(|i| CString::new(typical_properties(i)).unwrap())
        .collect();
    println!("typical properties: {} bytes", props[0].as_bytes().len());
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let all_six = json!(["email", "user_path", "ipv4", "ipv6", "guid", "token"]);
    let five_common = json!({"channel": "beta", "build": "2026.12.1", "tenant_kind": "enterprise",
        "session_kind": "interactive", "flags": 3});
    // Scrubbing off, default (email, user_path) and all six detectors, and the cost of 5
    // common properties (abi.md 1.2), on 1 thread; the default on 8 threads.
    let runs = [
        ("scrubbing off", 1usize, json!({"scrub": []})),
        ("default scrubbing", 1, json!({})),
        ("all six detectors", 1, json!({"scrub": all_six})),
        (
            "default scrubbing, 5 common properties",
            1,
            json!({"properties": five_common}),
        ),
        ("default scrubbing", 8, json!({})),
    ];
    for (label, threads, extra) in runs {
        let mut config = json!({"queue_max_events": 1_000_000});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        init(&collector.endpoint(), config);
        let per_thread = if threads == 1 { 200_000 } else { 40_000 };
        let mut handles = Vec::new();
        for t in 0..threads {
            let props = props.clone();
            let name = name.clone();
            handles.push(std::thread::spawn(move || {
                let mut ns = Vec::with_capacity(per_thread);
                for i in 0..per_thread {
                    let p = &props[(i + t) % props.len()];
                    let start = Instant::now();
                    let rc = unsafe { ffi::tel_log(name.as_ptr(), p.as_ptr()) };
                    ns.push(start.elapsed().as_nanos() as u64);
                    assert!(rc == 0 || rc == 6);
                }
                ns
            }));
        }
        let all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        report_latency(&format!("tel_log, {threads} thread(s), {label}"), all);
        let _ = ffi::tel_flush(60_000);
        let s = stats();
        println!(
            "   sent {} queue_full {}",
            s["sent"], s["dropped_queue_full"]
        );
        let _ = ffi::tel_shutdown(10_000);
        collector.reset();
    }
}

/// Serialising the same envelopes to NDJSON and compressing them, no I/O: the pipeline limit.
fn pipeline_limit(compression: tel::Compression, n: usize) -> f64 {
    pipeline_limit_and_cpu(compression, n).0
}

/// The pipeline limit in events/s, and the CPU time it took per event (µs).
fn pipeline_limit_and_cpu(compression: tel::Compression, n: usize) -> (f64, f64) {
    let key = tel::internals::ikey::InstrumentationKey::parse(IKEY).unwrap();
    let ext = tel::internals::ext::SessionExt::new(
        &tel::internals::ext::default_context(
            tel::internals::device::local_id(None),
            tel::internals::random::uuid4(),
        ),
        &Default::default(),
    );
    let template = tel::internals::envelope::EnvelopeTemplate::new(&key.envelope_ikey(), &ext);
    let props: Vec<String> = (0..1000).map(typical_properties).collect();
    let cpu0 = cpu_time(libc::RUSAGE_THREAD);
    let start = Instant::now();
    let mut batch = Vec::with_capacity(500);
    let mut bytes = 0usize;
    for i in 0..n {
        let p = &props[i % props.len()];
        tel::internals::envelope::check_properties(p).unwrap();
        batch.push(template.render(
            "Bench.TypicalEvent",
            Some(p),
            tel::internals::clock::now_ms(),
            i as u64,
        ));
        if batch.len() == 500 {
            let body = tel::internals::transport::ndjson(batch.iter().map(|s| s.as_str()));
            bytes += tel::internals::transport::encode(&body, compression)
                .0
                .len();
            batch.clear();
        }
    }
    std::hint::black_box(bytes);
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let cpu = cpu_time(libc::RUSAGE_THREAD) - cpu0;
    (rate, 1e6 * cpu / n as f64)
}

/// Events per second from the first `tel_log` to the last acceptance at the emulator, the
/// process's CPU time in cores, and the share of the time spent logging (the rest is the flush
/// of the backlog: the worker, or what it sends to, did not keep up with the logging thread).
fn end_to_end(endpoint: &str, compression: &str, n: usize) -> (f64, f64, f64) {
    init(
        endpoint,
        json!({"compression": compression, "queue_max_events": 1_000_000}),
    );
    let props: Vec<CString> = (0..1000)
        .map(|i| CString::new(typical_properties(i)).unwrap())
        .collect();
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let cpu0 = cpu_time(libc::RUSAGE_SELF);
    let start = Instant::now();
    for i in 0..n {
        let rc = unsafe { ffi::tel_log(name.as_ptr(), props[i % props.len()].as_ptr()) };
        assert_eq!(rc, 0);
    }
    let logging = start.elapsed().as_secs_f64();
    assert_eq!(ffi::tel_flush(120_000), 0);
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_time(libc::RUSAGE_SELF) - cpu0;
    let sent = stats()["sent"].as_u64().unwrap();
    assert_eq!(sent as usize, n);
    let _ = ffi::tel_shutdown(10_000);
    (n as f64 / secs, cpu / secs, logging / secs)
}

/// One deflated request body of 500 typical envelopes, and its encoding.
fn sample_body() -> (Vec<u8>, Option<&'static str>) {
    let key = tel::internals::ikey::InstrumentationKey::parse(IKEY).unwrap();
    let ext =
        tel::internals::ext::SessionExt::new(&[("sdk", "ver", "x".into())], &Default::default());
    let template = tel::internals::envelope::EnvelopeTemplate::new(&key.envelope_ikey(), &ext);
    let lines: Vec<String> = (0..500)
        .map(|i| {
            template.render(
                "Bench.TypicalEvent",
                Some(&typical_properties(i)),
                tel::internals::clock::now_ms(),
                i,
            )
        })
        .collect();
    let body = tel::internals::transport::ndjson(lines.iter().map(|s| s.as_str()));
    tel::internals::transport::encode(&body, tel::Compression::Deflate)
}

/// How fast the emulator alone takes the same bodies: whether it is the bottleneck.
fn emulator_capacity(collector: &Collector, n_batches: usize) -> f64 {
    use std::io::{Read, Write};
    let (payload, _) = sample_body();
    let head = format!(
        "POST /OneCollector/1.0/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-json-stream; charset=utf-8\r\nx-apikey: {IKEY}\r\nClient-Id: NO_AUTH\r\nsdk-version: bench\r\nUpload-Time: {}\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        tel::internals::clock::now_ms(),
        payload.len()
    );
    let start = Instant::now();
    for _ in 0..n_batches {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", collector.port())).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&payload).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }
    let rate = (n_batches * 500) as f64 / start.elapsed().as_secs_f64();
    collector.reset();
    rate
}

/// The library's transport alone, posting the same encoded 500-event body again and again.
fn transport_alone(collector: &Collector, n_batches: usize) -> f64 {
    let (payload, encoding) = sample_body();
    let config = tel::Config::from_json(
        &json!({"ikey": IKEY, "endpoint": collector.endpoint()}).to_string(),
    )
    .unwrap();
    let transport = tel::internals::transport::Transport::new(&config);
    let start = Instant::now();
    for _ in 0..n_batches {
        let r = transport.post(&payload, encoding, None, None).unwrap();
        assert_eq!(r.status, 200);
    }
    (n_batches * 500) as f64 / start.elapsed().as_secs_f64()
}

fn throughput() {
    let collector = counting_collector();
    let n = 200_000;
    for (mode, compression) in [
        ("deflate", tel::Compression::Deflate),
        ("none", tel::Compression::None),
    ] {
        let limit = pipeline_limit(compression, n);
        let (rate, cpu, _) = end_to_end(&collector.endpoint(), mode, n);
        collector.reset();
        println!(
            "end-to-end {mode:<8} {rate:>10.0} events/s   pipeline limit {limit:>10.0} events/s   {:>5.1} % of the limit   process CPU {:.0} % of a core",
            100.0 * rate / limit,
            cpu * 100.0
        );
    }
    println!(
        "emulator alone (500-event deflated bodies, one connection each): {:.0} events/s",
        emulator_capacity(&collector, 200)
    );
    println!(
        "the library's transport alone (same bodies, encoded once): {:.0} events/s",
        transport_alone(&collector, 200)
    );
}

/// The library's own end-to-end limit: the same run as `throughput`, against a sink that
/// answers every upload at once without decoding or checking it (`telctl serve --sink` in its
/// own process, so that the CPU time measured is the library's and its host's alone), next to
/// the pipeline limit. Interleaved, five times, because the machine's speed drifts; the median
/// fraction is the figure.
fn sink() {
    let in_process;
    let (mut serve, endpoint) = match start_serve(&["--sink"]) {
        Some((serve, endpoint)) => (Some(serve), endpoint),
        None => {
            println!("sink: telctl not built (cargo build --release -p telctl); the sink runs in this process");
            in_process = Collector::start_with(Options {
                sink: true,
                keep_records: false,
                ..Options::default()
            })
            .unwrap();
            (None, in_process.endpoint())
        }
    };
    let n = 300_000;
    let modes = [
        ("deflate", tel::Compression::Deflate),
        ("none", tel::Compression::None),
    ];
    let mut fractions = vec![Vec::new(); modes.len()];
    for round in 1..=5 {
        for (m, (mode, compression)) in modes.iter().enumerate() {
            let (limit, limit_cpu) = pipeline_limit_and_cpu(*compression, n);
            let (rate, cpu, logging) = end_to_end(&endpoint, mode, n);
            fractions[m].push(rate / limit);
            println!(
                "run {round}: to a sink, {mode:<8} {rate:>10.0} events/s   pipeline limit {limit:>10.0} events/s   {:>5.1} % of the limit   CPU per event {:.2} us (pipeline alone {limit_cpu:.2} us)   process CPU {:.0} % of a core   logging {:.0} % of the time",
                100.0 * rate / limit,
                1e6 * cpu / rate,
                cpu * 100.0,
                100.0 * logging
            );
        }
    }
    for ((mode, _), mut f) in modes.iter().zip(fractions) {
        f.sort_by(f64::total_cmp);
        println!(
            "to a sink, {mode:<8} median {:.1} % of the pipeline limit (runs: {:.1}-{:.1} %)",
            100.0 * f[f.len() / 2],
            100.0 * f[0],
            100.0 * f[f.len() - 1]
        );
    }
    if let Some(serve) = serve.as_mut() {
        let _ = serve.kill();
    }
}

/// One network run: `n` events through the Rust API to `collector`, flushed; what it took.
struct NetworkRun {
    events_per_s: f64,
    requests_per_s: f64,
    requests: u64,
    connections: u64,
    full_handshakes: u64,
}

fn network_run(collector: &Collector, reuse: bool, inflight: usize, n: usize) -> NetworkRun {
    let config = json!({"ikey": IKEY, "endpoint": collector.endpoint(), "cache_path": null,
                        "compression": "deflate", "queue_max_events": 1_000_000,
                        "max_inflight_requests": inflight});
    let mut config = tel::Config::from_json(&config.to_string()).unwrap();
    config.connection_reuse = reuse;
    let client = tel::Client::start(config).unwrap();
    let props: Vec<String> = (0..1000).map(typical_properties).collect();
    let before = collector.tls_counts();
    let start = Instant::now();
    for i in 0..n {
        client
            .log("Bench.TypicalEvent", Some(&props[i % props.len()]))
            .unwrap();
    }
    client.flush(Duration::from_secs(600)).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let stats = client.stats();
    assert_eq!(stats.sent as usize, n, "{stats:?}");
    let _ = client.shutdown(Duration::from_secs(10));
    let after = collector.tls_counts();
    let requests = collector.request_count() as u64;
    collector.reset();
    let handshakes = after.handshakes - before.handshakes;
    NetworkRun {
        events_per_s: n as f64 / secs,
        requests_per_s: requests as f64 / secs,
        requests,
        connections: after.connections - before.connections,
        full_handshakes: handshakes - (after.resumed - before.resumed),
    }
}

/// End-to-end against the TLS emulator, near and 50 ms away, with connection reuse on and off:
/// events/s, requests/s, and connections and full TLS handshakes per 1,000 requests.
fn network() {
    // The library verifies certificates with the system's verifier, which reads SSL_CERT_FILE.
    let ca_file = std::env::temp_dir().join(format!("tel-bench-ca-{}.pem", std::process::id()));
    // The strict emulator near and far; then a TLS sink near, to see what TLS and the
    // emulator's judgement each take.
    for (rtt_ms, sink) in [(0u64, false), (50, false), (0, true)] {
        let collector = Collector::start_with(Options {
            tls: true,
            keep_records: false,
            rtt: Duration::from_millis(rtt_ms),
            sink,
            ..Options::default()
        })
        .unwrap();
        let what = if sink { "TLS sink    " } else { "TLS emulator" };
        std::fs::write(&ca_file, collector.tls_ca_pem().unwrap()).unwrap();
        std::env::set_var("SSL_CERT_FILE", &ca_file);
        // 500-event batches: at 50 ms a request takes one to three round trips.
        let n = if rtt_ms == 0 { 200_000 } else { 25_000 };
        // Reuse on and off; then on, with a collector that closes every connection after its
        // answer (`Connection: close`), so that each request needs a new connection and only
        // TLS resumption is left to save the full handshake.
        for (label, reuse, closing) in [
            ("reuse on ", true, false),
            ("reuse off", false, false),
            ("reuse on, collector closes", true, true),
        ] {
            if sink && closing {
                continue; // a sink answers no script
            }
            collector.set_default(
                closing.then(|| Scripted::accept().with_header("Connection", "close")),
            );
            let r = network_run(&collector, reuse, 4, n);
            let per_1000 = |x: u64| 1000.0 * x as f64 / r.requests.max(1) as f64;
            println!(
                "{what}, RTT {rtt_ms:>2} ms, {label:<26}: {:>7.0} events/s {:>6.1} requests/s   per 1,000 requests: {:>6.1} connections, {:>6.1} full handshakes ({} requests, {} connections, {} full handshakes)",
                r.events_per_s,
                r.requests_per_s,
                per_1000(r.connections),
                per_1000(r.full_handshakes),
                r.requests,
                r.connections,
                r.full_handshakes,
            );
        }
    }
    // Far collectors: requests in flight (`max_inflight_requests`), 0, 50 and 150 ms away; and
    // the TLS sink 50 ms away, which answers without judging: on a machine of few cores the
    // emulator's own work (TLS, inflating, judging each event) shares them with the library.
    for (rtt_ms, sink) in [(0u64, false), (50, false), (150, false), (50, true)] {
        let collector = Collector::start_with(Options {
            tls: true,
            keep_records: false,
            rtt: Duration::from_millis(rtt_ms),
            sink,
            ..Options::default()
        })
        .unwrap();
        let what = if sink { "TLS sink    " } else { "TLS emulator" };
        std::fs::write(&ca_file, collector.tls_ca_pem().unwrap()).unwrap();
        std::env::set_var("SSL_CERT_FILE", &ca_file);
        // Setting up each connection takes two round trips (TCP, then TLS) and the first
        // request goes alone: 50 ms away, 200,000 events (400 requests) make that start-up a
        // small part of the run; 150 ms away, 50,000 keep the run under a minute.
        let n = if rtt_ms == 150 { 50_000 } else { 200_000 };
        for inflight in [1, 4, 8] {
            let r = network_run(&collector, true, inflight, n);
            println!(
                "{what}, RTT {rtt_ms:>3} ms, {inflight} in flight: {:>7.0} events/s {:>6.1} requests/s, {} connections ({} requests)",
                r.events_per_s, r.requests_per_s, r.connections, r.requests,
            );
        }
    }
    let _ = std::fs::remove_file(ca_file);
    burst();
}

/// A 20,000-event burst against a slow collector (each request answered after 667 ms: with 4
/// requests of 500 events in flight, about 3,000 events/s), with and without a cache: how many
/// `tel_log` refused, how many were delivered by the end of a flush.
fn burst() {
    let n = 20_000;
    for cached in [false, true] {
        let collector = Collector::start_with(Options {
            keep_records: false,
            ..Options::default()
        })
        .unwrap();
        collector.set_default(Some(
            Scripted::accept().with_delay(Duration::from_millis(667)),
        ));
        let dir = std::env::temp_dir().join(format!("tel-bench-burst-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = cached.then(|| dir.join("burst.cache").to_string_lossy().into_owned());
        let config = json!({"ikey": IKEY, "endpoint": collector.endpoint(), "cache_path": cache,
                            "cache_max_bytes": 64 << 20});
        let config = tel::Config::from_json(&config.to_string()).unwrap();
        let client = tel::Client::start(config).unwrap();
        let props: Vec<String> = (0..1000).map(typical_properties).collect();
        let start = Instant::now();
        let refused = (0..n)
            .filter(|i| {
                client
                    .log("Bench.Burst", Some(&props[i % props.len()]))
                    .is_err()
            })
            .count();
        let _ = client.flush(Duration::from_secs(120));
        let secs = start.elapsed().as_secs_f64();
        let stats = client.stats();
        let _ = client.shutdown(Duration::from_secs(10));
        println!(
            "burst of {n} against a collector of ~3,000 events/s, {}: {refused} refused, {} delivered, {} spilled to the cache, in {secs:.1} s",
            if cached { "with a cache   " } else { "without a cache" },
            collector.accepted_count(),
            stats.persisted,
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Child: log 1,000,000 events against `endpoint` and print RSS figures.
fn memory_child(endpoint: &str, up: bool) {
    let baseline = rss_kib("VmRSS:");
    init(
        endpoint,
        json!({"http_timeout_ms": 2000, "retry_initial_ms": 200}),
    );
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let props: Vec<CString> = (0..1000)
        .map(|i| CString::new(typical_properties(i)).unwrap())
        .collect();
    let mut full = 0u64;
    let mut samples = Vec::new();
    for i in 0..1_000_000usize {
        loop {
            let rc = unsafe { ffi::tel_log(name.as_ptr(), props[i % 1000].as_ptr()) };
            if rc != 6 {
                break;
            }
            full += 1;
            if !up {
                break; // the collector is down: the bound drops it, which is the point
            }
            // The collector is up: let the worker catch up rather than drop the event.
            std::thread::sleep(Duration::from_micros(200));
        }
        if i % 100_000 == 0 {
            samples.push(rss_kib("VmRSS:"));
        }
    }
    let _ = ffi::tel_flush(if up { 120_000 } else { 10 });
    let peak = rss_kib("VmHWM:");
    let _ = ffi::tel_shutdown(1000);
    println!(
        "collector {}: baseline RSS {} KiB, peak {} KiB (+{:.1} MiB), samples every 100k events {:?} KiB, queue_full {}",
        if up { "up  " } else { "down" },
        baseline,
        peak,
        (peak.saturating_sub(baseline)) as f64 / 1024.0,
        samples,
        full
    );
}

fn memory() {
    let exe = std::env::current_exe().unwrap();
    let Some((mut serve, endpoint)) = start_serve(&[]) else {
        println!("memory: telctl not built (cargo build --release -p telctl); skipped");
        return;
    };
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        format!("http://127.0.0.1:{p}/OneCollector/1.0/")
    };
    for (ep, up) in [(endpoint.as_str(), "up"), (dead.as_str(), "down")] {
        let out = std::process::Command::new(&exe)
            .args(["memory-child", ep, up])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    let _ = serve.kill();
}

fn telctl_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/tel_bench-... -> target/<profile>/telctl
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    for candidate in [
        dir.join("telctl"),
        dir.join("../release/telctl"),
        dir.join("../debug/telctl"),
    ] {
        if candidate.exists() {
            return candidate;
        }
    }
    dir.join("telctl")
}

fn lifecycle() {
    let collector = Collector::start().unwrap();
    let dir = std::env::temp_dir().join(format!("tel-bench-{}", std::process::id()));
    let mut init_ns = Vec::new();
    let mut shut_ns = Vec::new();
    for i in 0..200 {
        let cache = dir.join(format!("c{}.cache", i % 2));
        let c = CString::new(
            json!({"ikey": IKEY, "endpoint": collector.endpoint(), "cache_path": cache})
                .to_string(),
        )
        .unwrap();
        let t = Instant::now();
        assert_eq!(unsafe { ffi::tel_init(c.as_ptr()) }, 0);
        init_ns.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        assert_eq!(ffi::tel_shutdown(5000), 0);
        shut_ns.push(t.elapsed().as_nanos() as u64);
    }
    report_latency("tel_init (with a cache folder)", init_ns);
    report_latency("tel_shutdown (idle)", shut_ns);
    let _ = std::fs::remove_dir_all(dir);
}

/// A client of the C ABI (`tel_client_new`), closed when dropped. The ABI lets any thread use
/// it, so it is shared between threads as a host program would.
struct AbiClient(*mut ffi::tel_client);

// SAFETY: every tel_client_* call is thread-safe (abi.md), and the pointer is only closed on drop.
unsafe impl Send for AbiClient {}
unsafe impl Sync for AbiClient {}

impl AbiClient {
    fn new(endpoint: &str, extra: serde_json::Value) -> Self {
        let config = config_json(endpoint, extra);
        let mut client = std::ptr::null_mut();
        let rc = unsafe { ffi::tel_client_new(config.as_ptr(), &mut client) };
        assert_eq!(rc, 0, "tel_client_new failed");
        AbiClient(client)
    }

    fn flush(&self, timeout_ms: u32) -> i32 {
        unsafe { ffi::tel_client_flush(self.0, timeout_ms) }
    }

    fn stats(&self) -> serde_json::Value {
        let mut buf = vec![0u8; 4096];
        let n = unsafe { ffi::tel_client_stats_json(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        serde_json::from_slice(&buf[..n]).unwrap()
    }
}

impl Drop for AbiClient {
    fn drop(&mut self) {
        unsafe { ffi::tel_client_close(self.0, 10_000) };
    }
}

/// `n` calls of `call(i)` on this thread, each timed; a call returns TEL_OK or
/// TEL_ERR_QUEUE_FULL.
fn time_calls(n: usize, mut call: impl FnMut(usize) -> i32) -> Vec<u64> {
    let mut ns = Vec::with_capacity(n);
    for i in 0..n {
        let start = Instant::now();
        let rc = call(i);
        ns.push(start.elapsed().as_nanos() as u64);
        assert!(rc == 0 || rc == 6, "status {rc}");
    }
    ns
}

/// ABI 1.1 on the caller's thread, call by call, with the worker sending to the emulator:
/// `tel_client_log` next to `tel_log` under the same conditions, `tel_log_ex` with a `time`
/// (Unix ms and RFC 3339), and a critical event with a cache (an append before the call
/// returns). One thread, typical properties.
fn clients() {
    let collector = counting_collector();
    let props: Vec<CString> = (0..1000)
        .map(|i| CString::new(typical_properties(i)).unwrap())
        .collect();
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let n = 200_000;
    let roomy = json!({"queue_max_events": 1_000_000});

    init(&collector.endpoint(), roomy.clone());
    let ns = time_calls(n, |i| unsafe {
        ffi::tel_log(name.as_ptr(), props[i % props.len()].as_ptr())
    });
    report_latency("tel_log (for reference)", ns);
    let _ = ffi::tel_flush(60_000);
    let _ = ffi::tel_shutdown(10_000);
    collector.reset();

    let client = AbiClient::new(&collector.endpoint(), roomy.clone());
    let ns = time_calls(n, |i| unsafe {
        ffi::tel_client_log(client.0, name.as_ptr(), props[i % props.len()].as_ptr())
    });
    report_latency("tel_client_log", ns);
    let _ = client.flush(60_000);
    println!(
        "   sent {} queue_full {}",
        client.stats()["sent"],
        client.stats()["dropped_queue_full"]
    );
    drop(client);
    collector.reset();

    // A second of distinct times, as a host replaying recorded events would give:
    // 2026-12-01T09:30:00.000Z and on.
    let unix_ms: Vec<CString> = (0..1000u64)
        .map(|i| CString::new(json!({"time": 1_796_117_400_000 + i}).to_string()).unwrap())
        .collect();
    let rfc3339: Vec<CString> = (0..1000)
        .map(|i| CString::new(format!(r#"{{"time":"2026-12-01T09:30:00.{i:03}Z"}}"#)).unwrap())
        .collect();
    for (label, options) in [
        ("tel_log_ex, time as Unix ms", &unix_ms),
        ("tel_log_ex, time as RFC 3339", &rfc3339),
    ] {
        init(&collector.endpoint(), roomy.clone());
        let ns = time_calls(n, |i| unsafe {
            ffi::tel_log_ex(
                name.as_ptr(),
                props[i % props.len()].as_ptr(),
                options[i % options.len()].as_ptr(),
            )
        });
        report_latency(label, ns);
        let _ = ffi::tel_flush(60_000);
        let _ = ffi::tel_shutdown(10_000);
        collector.reset();
    }

    // Critical events with a cache: each is appended to the cache folder before the call
    // returns (no fsync), and sent at once.
    let dir = std::env::temp_dir().join(format!("tel-bench-critical-{}", std::process::id()));
    let critical = CString::new(json!({"priority": "critical"}).to_string()).unwrap();
    init(
        &collector.endpoint(),
        json!({"cache_path": dir.join("events.cache"), "queue_max_events": 1_000_000}),
    );
    let ns = time_calls(5_000, |i| unsafe {
        ffi::tel_log_ex(
            name.as_ptr(),
            props[i % props.len()].as_ptr(),
            critical.as_ptr(),
        )
    });
    report_latency("tel_log_ex, critical, with a cache", ns);
    let _ = ffi::tel_flush(60_000);
    let s = stats();
    println!("   sent {} persisted {}", s["sent"], s["persisted"]);
    let _ = ffi::tel_shutdown(10_000);
    let _ = std::fs::remove_dir_all(dir);
}

/// Child: `clients` clients (or, with `clients` 0, the default session), one logging thread
/// each (8 threads on the one session), `per_thread` events each against `endpoint`, waiting
/// out a full queue; prints throughput, CPU and RSS.
fn clients_child(endpoint: &str, clients: usize, per_thread: usize) {
    let threads = if clients == 0 { 8 } else { clients };
    let baseline = rss_kib("VmRSS:");
    let props: Vec<CString> = (0..1000)
        .map(|i| CString::new(typical_properties(i)).unwrap())
        .collect();
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let all: Vec<AbiClient> = (0..clients)
        .map(|_| AbiClient::new(endpoint, json!({})))
        .collect();
    if clients == 0 {
        init(endpoint, json!({}));
    }
    // The process's threads once the clients are open: this one and each client's worker.
    let open_threads = proc_threads();
    let cpu0 = cpu_time(libc::RUSAGE_SELF);
    let start = Instant::now();
    let full: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (all, props, name) = (&all, &props, &name);
                scope.spawn(move || {
                    let mut full = 0u64;
                    for i in 0..per_thread {
                        let p = props[(i + t) % props.len()].as_ptr();
                        loop {
                            let rc = match all.get(t) {
                                Some(c) => unsafe { ffi::tel_client_log(c.0, name.as_ptr(), p) },
                                None => unsafe { ffi::tel_log(name.as_ptr(), p) },
                            };
                            if rc != 6 {
                                assert_eq!(rc, 0);
                                break;
                            }
                            // The queue is full: let the worker catch up rather than drop it.
                            full += 1;
                            std::thread::sleep(Duration::from_micros(200));
                        }
                    }
                    full
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let mut sent = 0;
    for c in &all {
        assert_eq!(c.flush(300_000), 0);
        sent += c.stats()["sent"].as_u64().unwrap();
    }
    if clients == 0 {
        assert_eq!(ffi::tel_flush(300_000), 0);
        sent = stats()["sent"].as_u64().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_time(libc::RUSAGE_SELF) - cpu0;
    let peak = rss_kib("VmHWM:");
    drop(all);
    if clients == 0 {
        let _ = ffi::tel_shutdown(10_000);
    }
    assert_eq!(sent as usize, threads * per_thread);
    println!(
        "{:<30} {threads} threads: {:>8.0} events/s ({sent} sent in {secs:.1} s)   process CPU {:>4.0} % of a core   RSS {baseline} KiB -> peak {peak} KiB (+{:.1} MiB)   {open_threads} threads before logging   queue-full waits {full}",
        if clients == 0 {
            "the default session,".to_owned()
        } else {
            format!("{clients} clients at once,")
        },
        sent as f64 / secs,
        100.0 * cpu / secs,
        peak.saturating_sub(baseline) as f64 / 1024.0,
    );
}

fn proc_threads() -> u64 {
    rss_kib("Threads:")
}

/// 8 clients logging at once, one thread each, to a collector in another process, next to the
/// default session logging from 8 threads: events/s, CPU, RSS. In child processes, as `memory`.
fn many_clients() {
    let exe = std::env::current_exe().unwrap();
    let Some((mut serve, endpoint)) = start_serve(&[]) else {
        println!("many_clients: telctl not built (cargo build --release -p telctl); skipped");
        return;
    };
    for clients in ["8", "0"] {
        let out = std::process::Command::new(&exe)
            .args(["clients-child", &endpoint, clients, "50000"])
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            print!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let _ = serve.kill();
}

/// CPU time of the library's threads (the worker and its request threads) while the host logs
/// 1,000 events per second to a collector in another process: the process's CPU time minus the
/// logging thread's own.
fn cpu() {
    let Some((mut serve, endpoint)) = start_serve(&[]) else {
        println!("cpu: telctl not built (cargo build --release -p telctl); skipped");
        return;
    };
    init(&endpoint, json!({}));
    let name = CString::new("Bench.TypicalEvent").unwrap();
    let props = CString::new(typical_properties(1)).unwrap();
    let secs = 10u64;
    let (process0, thread0) = (cpu_time(libc::RUSAGE_SELF), cpu_time(libc::RUSAGE_THREAD));
    let start = Instant::now();
    for i in 0..secs * 1000 {
        let due = start + Duration::from_micros(i * 1000);
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        unsafe { ffi::tel_log(name.as_ptr(), props.as_ptr()) };
    }
    let wall = start.elapsed().as_secs_f64();
    let library =
        (cpu_time(libc::RUSAGE_SELF) - process0) - (cpu_time(libc::RUSAGE_THREAD) - thread0);
    let logging = cpu_time(libc::RUSAGE_THREAD) - thread0;
    let _ = ffi::tel_flush(5000);
    let sent = stats()["sent"].clone();
    let _ = ffi::tel_shutdown(5000);
    let _ = serve.kill();
    println!(
        "library threads' CPU at 1,000 events/s over {wall:.1} s: {:.2} % of a core ({sent} sent; the logging thread itself: {:.2} %)",
        100.0 * library / wall,
        100.0 * logging / wall
    );
}

/// `telctl serve --count-only` (or with `extra` options) in its own process, and its endpoint.
fn start_serve(extra: &[&str]) -> Option<(std::process::Child, String)> {
    let extra = if extra.is_empty() {
        &["--count-only"]
    } else {
        extra
    };
    let mut serve = std::process::Command::new(telctl_path())
        .args(["serve", "--exit-on-stdin-eof"])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(serve.stdout.as_mut()?),
        &mut first,
    )
    .ok()?;
    // A telctl that does not know the options says so on stderr and prints nothing here.
    let Some(endpoint) = first.trim().strip_prefix("listening on ") else {
        let _ = serve.kill();
        return None;
    };
    Some((serve, endpoint.to_owned()))
}

fn cpu_time(who: i32) -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Scrubbing the typical event's properties on this thread, call by call, as `tel_log` will
/// (abi.md, "Scrubbing"): off, the default detectors (`email`, `user_path`, with this user's
/// home folder and login name), and all six. Nothing in the typical event matches; a second
/// set of rows adds an email and a path in the home folder to each event, so that every event
/// is rewritten.
fn scrub() {
    use tel::internals::privacy::{Detectors, Scrubber};
    let typical: Vec<String> = (0..1000).map(typical_properties).collect();
    let home = std::env::var("HOME").unwrap_or_else(|_| "/home/someone".into());
    let personal: Vec<String> = (0..1000u64)
        .map(|i| {
            let mut v: serde_json::Value = serde_json::from_str(&typical_properties(i)).unwrap();
            v["user"] = json!(format!("someone{i}@example.com"));
            v["model_path"] = json!(format!("{home}/models/vision/resnet50-v2-{i}.onnx"));
            v.to_string()
        })
        .collect();
    println!(
        "typical properties: {} bytes; with an email and a home path: {} bytes",
        typical[0].len(),
        personal[0].len()
    );
    for (events, label) in [(&typical, "typical"), (&personal, "email+home")] {
        for (detectors, which) in [
            (Detectors::NONE, "off"),
            (Detectors::default(), "default"),
            (Detectors::ALL, "all six"),
        ] {
            let scrubber = Scrubber::new(detectors);
            let mut replaced = 0;
            let ns = time_calls(200_000, |i| {
                let (out, n) = scrubber.scrub_json(&events[i % events.len()]);
                std::hint::black_box(out);
                replaced += n;
                0
            });
            report_latency(&format!("scrub {label}, {which}"), ns);
            println!(
                "   replacements per event: {:.1}",
                replaced as f64 / 200_000.0
            );
        }
    }
}

/// The size of the shared library built with this benchmark's own profile (`bench`, which has
/// the settings of `dist`, the shipped build): cargo leaves it beside the benchmark, in
/// `deps/`, and does not copy it to the profile's folder, where another profile's build of
/// `libtel.so` may be (`target/release/libtel.so` is the `release` one).
fn size() {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let Some(lib) = [
        deps.join("libtel.so"),
        deps.parent().unwrap().join("libtel.so"),
    ]
    .into_iter()
    .find(|p| p.exists()) else {
        println!(
            "libtel.so: not built in {} (cargo bench builds it)",
            deps.display()
        );
        return;
    };
    let stripped = std::env::temp_dir().join(format!("libtel-stripped-{}.so", std::process::id()));
    let ok = std::process::Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&lib)
        .status()
        .is_ok_and(|s| s.success());
    let full = std::fs::metadata(&lib).map_or(0, |m| m.len());
    let small = if ok {
        std::fs::metadata(&stripped).map_or(0, |m| m.len())
    } else {
        0
    };
    println!(
        "libtel.so: {:.2} MiB as built, {:.2} MiB stripped ({})",
        full as f64 / 1048576.0,
        small as f64 / 1048576.0,
        lib.display()
    );
    let _ = std::fs::remove_file(stripped);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if args.first().map(String::as_str) == Some("memory-child") {
        memory_child(&args[1], args[2] == "up");
        return;
    }
    if args.first().map(String::as_str) == Some("clients-child") {
        clients_child(&args[1], args[2].parse().unwrap(), args[3].parse().unwrap());
        return;
    }
    println!("machine: {}", machine());
    println!(
        "build: {}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    // Every benchmark, or the ones named on the command line, in this order.
    let benchmarks: [(&str, fn()); 11] = [
        ("size", size),
        ("lifecycle", lifecycle),
        ("latency", latency),
        ("throughput", throughput),
        ("sink", sink),
        ("network", network),
        ("cpu", cpu),
        ("memory", memory),
        ("clients", clients),
        ("many_clients", many_clients),
        ("scrub", scrub),
    ];
    for (name, run) in benchmarks {
        if args.is_empty() || args.iter().any(|a| a == name) {
            run();
        }
    }
}
