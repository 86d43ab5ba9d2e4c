//! A short-lived process (init, then shutdown at once: a CLI command) drains the cache entries
//! present at init within its shutdown deadline, like logged events (abi.md, `tel_shutdown`).
//! Real processes, 20 runs: before the fix the replay was skipped once shutdown had begun.

mod common;

use common::*;
use serde_json::{json, Value};

/// The child side: init from `TEL_TEST_CONFIG`, shut down at once, print the stats.
#[test]
fn child_short() {
    if child_role().as_deref() != Some("short") {
        return;
    }
    let config: Value = serde_json::from_str(&std::env::var("TEL_TEST_CONFIG").unwrap()).unwrap();
    init_ok(&config);
    println!("SHUTDOWN={}", shutdown(5000));
    println!("STATS={}", stats());
}

#[test]
fn init_then_shutdown_delivers_the_cache() {
    let c = Collector::start().unwrap();
    for run in 0..20 {
        let dir = temp_dir("short-lived");
        fill_cache(&dir.join("events.cache"), "Cached.Entry", 30);
        let before = c.accepted_count();
        let out = run_child(
            "child_short",
            &[
                ("TEL_TEST_ROLE", "short".to_owned()),
                (
                    "TEL_TEST_CONFIG",
                    config(&c, Some(&dir), json!({})).to_string(),
                ),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("SHUTDOWN=0"), "run {run}: {text}");
        let s: Value =
            serde_json::from_str(text.split("STATS=").nth(1).unwrap().lines().next().unwrap())
                .unwrap();
        assert_eq!(s["replayed"], 30, "run {run}: {s}");
        assert_eq!(s["sent"], 30, "run {run}: {s}");
        assert_eq!(s["pending"], 0);
        assert_conserved_in(&s);
        assert_eq!(c.accepted_count() - before, 30, "run {run}");
        assert!(read_lines(&dir.join("events.cache")).is_empty());
    }
}

#[test]
fn closing_a_client_right_away_delivers_the_cache() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("short-client");
    fill_cache(&dir.join("events.cache"), "Cached.Entry", 30);
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.close(5000), 0);
    assert_eq!(c.accepted_count(), 30);
}
