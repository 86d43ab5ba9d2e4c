//! Pause and resume (abi.md 1.2, "Pause and resume") through the C ABI against the emulator:
//! no connection while paused, what would be sent goes to the cache, a shutdown while paused
//! persists without touching the network, and resume sends.

mod common;

use common::*;
use serde_json::json;

#[test]
fn paused_nothing_connects_and_batches_go_to_the_cache() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("pause-cache");
    let cache = dir.join("events.cache");
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.pause(), 0);
    assert_eq!(client.pause(), 0, "idempotent");
    for i in 0..3 {
        assert_eq!(
            client.log("Paused.Event", Some(&format!("{{\"i\":{i}}}"))),
            0
        );
    }
    // The flush persists what is queued and returns.
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(s["paused"], true, "{s}");
    assert_eq!(
        (s["persisted"].as_u64(), s["pending"].as_u64()),
        (Some(3), Some(0)),
        "{s}"
    );
    assert_conserved_in(&s);
    assert_eq!(read_lines(&cache).len(), 3);
    assert_eq!(c.connection_count(), 0);
    assert_eq!(c.request_count(), 0);
    // Resume sends, the cache included, and the flush after it waits for that.
    assert_eq!(client.resume(), 0);
    assert_eq!(client.resume(), 0, "idempotent");
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(s["paused"], false, "{s}");
    assert_eq!(
        (s["sent"].as_u64(), s["replayed"].as_u64()),
        (Some(3), Some(3)),
        "{s}"
    );
    assert_conserved_in(&s);
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2]);
    assert_eq!(client.close(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_a_cache_events_wait_in_memory_until_resume() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, None, json!({})));
    assert_eq!(client.pause(), 0);
    assert_eq!(client.log("Paused.Memory", None), 0);
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(
        (s["pending"].as_u64(), s["persisted"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    assert_eq!(c.connection_count(), 0);
    assert_eq!(client.resume(), 0);
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(s["sent"], 1, "{s}");
    assert_conserved_in(&s);
}

#[test]
fn shutdown_while_paused_persists_without_the_network() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("pause-shutdown");
    let cache = dir.join("events.cache");
    // A long flush interval: the events are still queued when the shutdown comes.
    let client = TestClient::new(&config(
        &c,
        Some(&dir),
        json!({"flush_interval_ms": 600_000}),
    ));
    let reports = Reports::default();
    client.collect_reports(&reports);
    assert_eq!(client.pause(), 0);
    for i in 0..4 {
        assert_eq!(
            client.log("Paused.Shutdown", Some(&format!("{{\"i\":{i}}}"))),
            0
        );
    }
    assert_eq!(client.close(2000), 0);
    assert_eq!(reports.events("persisted"), 4);
    assert_eq!(read_lines(&cache).len(), 4);
    assert_eq!(c.connection_count(), 0);
    // The next session sends them.
    let next = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(next.flush(10_000), 0);
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2, 3]);
    assert_conserved_in(&next.stats());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_critical_event_is_written_while_paused_and_sent_after_resume() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("pause-critical");
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.pause(), 0);
    assert_eq!(client.log_ex("Paused.Critical", None, Some(CRITICAL)), 0);
    // On disk before the call returned.
    let on_disk: usize = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .filter(|t| t.contains("Paused.Critical"))
        .count();
    assert!(on_disk >= 1);
    assert_eq!(c.connection_count(), 0);
    assert_eq!(client.resume(), 0);
    assert_eq!(client.flush(10_000), 0);
    assert_eq!(names(&c.accepted()), ["Paused.Critical"]);
    let s = client.stats();
    assert_conserved_in(&s);
    assert_eq!(client.close(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_session_has_the_calls() {
    let _s = serial();
    assert_eq!(pause(), 4);
    assert_eq!(resume(), 4);
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({})));
    assert_eq!(pause(), 0);
    assert_eq!(stats()["paused"], true);
    log_ok("Global.Paused", None);
    assert_eq!(flush(10_000), 0);
    assert_eq!(c.connection_count(), 0);
    assert_eq!(resume(), 0);
    assert_eq!(flush(10_000), 0);
    assert_eq!(names(&c.accepted()), ["Global.Paused"]);
    assert_conserved();
    assert_eq!(shutdown(2000), 0);
}
