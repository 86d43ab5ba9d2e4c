//! `telctl demo`: the library against a local emulator on loopback, step by step, with what the
//! collector received and the counters after each step.

use crate::term;
use clap::Args;
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::Duration;
use tel::{Client, Config};
use tel_emulator::{Collector, Scripted};

#[derive(Args)]
pub struct DemoArgs {
    /// Events to log in the first step.
    #[arg(long, default_value_t = 5)]
    events: usize,
}

const DEMO_KEY: &str = "d3m0tenant-0000-4000-8000-000000000000";

fn client(collector: &Collector, cache: &std::path::Path) -> Result<Client, tel::Error> {
    let mut config = Config::from_json(
        &json!({
            "ikey": DEMO_KEY,
            "endpoint": collector.endpoint(),
            "cache_path": cache,
            "flush_interval_ms": 50,
            "retry_initial_ms": 100,
            "retry_max_ms": 400,
            "retry_max_attempts": 2,
            "ext": {"app": {"ver": env!("CARGO_PKG_VERSION"), "name": "telctl-demo"}},
        })
        .to_string(),
    )?;
    config.http_timeout_ms = 5000;
    Client::start(config)
}

fn show_counters(c: &Client) {
    let s: Value = serde_json::from_str(&c.stats().to_json()).unwrap_or_default();
    let keys = [
        "logged",
        "sent",
        "rejected",
        "retries",
        "replayed",
        "persisted",
        "dropped_killed",
        "pending",
    ];
    let parts: Vec<String> = keys.iter().map(|k| format!("{k}={}", s[k])).collect();
    println!("   counters: {}", parts.join(" "));
}

fn show_received(collector: &Collector, from: usize) -> usize {
    let acc = collector.accepted();
    for e in &acc[from.min(acc.len())..] {
        println!(
            "   received {:<22} time={} iKey={} data={}",
            e["name"].as_str().unwrap_or("?"),
            e["time"].as_str().unwrap_or("?"),
            e["iKey"].as_str().unwrap_or("?"),
            e["data"]
        );
    }
    acc.len()
}

pub fn run(args: DemoArgs) -> ExitCode {
    match demo(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telctl demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let collector = Collector::start()?;
    let dir = std::env::temp_dir().join(format!("telctl-demo-{}", std::process::id()));
    let cache = dir.join("demo.cache");
    println!(
        "A local OneCollector emulator listens on {} (loopback only).",
        collector.endpoint()
    );
    let key = tel::internals::ikey::InstrumentationKey::parse(DEMO_KEY)?;
    println!(
        "Instrumentation key {}: the full key goes only into the x-apikey header; envelopes carry {}.\n",
        key.redacted(),
        key.envelope_ikey().as_str()
    );

    println!("1. Delivery: {} events logged, then a flush.", args.events);
    let c = client(&collector, &cache)?;
    for i in 0..args.events {
        c.log(
            "Demo.Action",
            Some(&json!({"step": i, "ok": true}).to_string()),
        )?;
    }
    c.flush(Duration::from_secs(10))?;
    let seen = show_received(&collector, 0);
    if let Some(r) = collector.requests().last() {
        println!(
            "   request headers: content-type={:?} content-encoding={:?} sdk-version={:?}",
            r.header("content-type").unwrap_or(""),
            r.header("content-encoding").unwrap_or(""),
            r.header("sdk-version").unwrap_or("")
        );
        if let Some(first) = r.lines.first() {
            println!("   first envelope on the wire: {first}");
        }
    }
    show_counters(&c);

    println!("\n2. Retry: the collector answers 503 once; the library backs off and tries again.");
    collector.push(Scripted::status(503).with_header("Collector-Error", "demo outage"));
    c.log("Demo.Retried", None)?;
    c.flush(Duration::from_secs(10))?;
    let seen = show_received(&collector, seen);
    show_counters(&c);

    println!("\n3. Cache: the collector is down at shutdown; the next process replays the cache.");
    collector.set_default(Some(Scripted::status(503)));
    c.log(
        "Demo.Cached",
        Some(r#"{"note":"written to disk, sent later"}"#),
    )?;
    let _ = c.shutdown(Duration::from_secs(2));
    show_counters(&c);
    let lines = std::fs::read_to_string(&cache)
        .map(|s| s.lines().count())
        .unwrap_or(0);
    println!(
        "   cache file {} holds {}",
        cache.display(),
        term::plural(lines as u64, "entry", "entries")
    );
    collector.set_default(None);
    let c = client(&collector, &cache)?;
    c.flush(Duration::from_secs(10))?;
    println!(
        "   the next process replayed {} from the cache file",
        term::plural(c.stats().replayed, "entry", "entries")
    );
    let seen = show_received(&collector, seen);
    show_counters(&c);

    println!("\n4. Kill: the collector tells the tenant to stop for 60 s; events are dropped, not sent or cached.");
    collector.push(
        Scripted::accept()
            .with_header("kill-tokens", "o:d3m0tenant")
            .with_header("kill-duration", "60"),
    );
    c.log("Demo.BeforeKill", None)?;
    c.flush(Duration::from_secs(10))?;
    for _ in 0..3 {
        c.log("Demo.DuringKill", None)?;
    }
    c.flush(Duration::from_secs(1))?;
    show_received(&collector, seen);
    show_counters(&c);
    println!(
        "   killed until {} (persisted beside the cache file, so the next process waits too)",
        tel::internals::clock::iso8601(c.stats().killed_until_ms)
    );
    let _ = c.shutdown(Duration::from_secs(2));
    println!(
        "\nThe collector received {} requests and accepted {} events.",
        collector.request_count(),
        collector.accepted_count()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
