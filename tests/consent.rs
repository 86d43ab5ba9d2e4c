//! Consent (abi.md 1.2, "Consent") through the C ABI against the emulator: while unknown
//! nothing is sent, written or replayed; a grant sends what waits and replays the cache; a
//! denial drops what waits, purges the tenant's cache and the device id and records the answer;
//! a newer `consent_version` asks again; and the record and the purge are what the next real
//! process finds.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// A client configuration for `c` with its cache in `dir`, consent required, merged with
/// `extra`.
fn required(c: &Collector, dir: &Path, extra: Value) -> Value {
    config(c, Some(dir), merged(json!({"consent": "required"}), extra))
}

fn record(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("consent")).unwrap()).unwrap()
}

#[test]
fn while_unknown_nothing_is_sent_written_or_replayed() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-unknown");
    let cache = dir.join("events.cache");
    fill_cache(&cache, "Earlier.Event", 3);
    let before = std::fs::read(&cache).unwrap();
    let client = TestClient::new(&required(&c, &dir, json!({})));
    let reports = Reports::default();
    client.collect_reports(&reports);
    assert_eq!(client.consent(), CONSENT_UNKNOWN);
    assert_eq!(client.log("Waits.Normal", Some(r#"{"i":1}"#)), 0);
    assert_eq!(client.log_ex("Waits.Critical", None, Some(CRITICAL)), 0);
    // Returns at once: nothing can be sent, the events stay pending.
    assert_eq!(client.flush(5000), 0);
    let s = client.stats();
    assert_eq!(s["consent"], "unknown", "{s}");
    assert_eq!(
        (s["logged"].as_u64(), s["pending"].as_u64()),
        (Some(2), Some(2)),
        "{s}"
    );
    assert_eq!(s["replayed"], 0, "{s}");
    assert_conserved_in(&s);
    // At shutdown what still waits is dropped for consent; nothing touched the disk (no
    // device id, no critical file, no claim, the cache as it was) or the network.
    assert_eq!(client.close(2000), 0);
    assert_eq!(reports.events("dropped_consent"), 2);
    assert_eq!(reports.0.lock().len(), 1, "{:?}", reports.0.lock());
    assert_eq!(file_names(&dir), vec!["events.cache".to_owned()]);
    assert_eq!(std::fs::read(&cache).unwrap(), before);
    assert_eq!(c.request_count(), 0);
    assert_eq!(c.connection_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_grant_sends_what_waits_and_replays_the_cache() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-grant");
    fill_cache(&dir.join("events.cache"), "Earlier.Event", 2);
    let client = TestClient::new(&required(&c, &dir, json!({"consent_version": 3})));
    assert_eq!(client.log("Waits.Normal", None), 0);
    assert_eq!(client.log_ex("Waits.Critical", None, Some(CRITICAL)), 0);
    assert_eq!(client.set_consent(CONSENT_GRANTED), 0);
    assert_eq!(client.consent(), CONSENT_GRANTED);
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(
        (s["sent"].as_u64(), s["replayed"].as_u64()),
        (Some(4), Some(2)),
        "{s}"
    );
    assert_eq!(s["consent"], "granted");
    assert_conserved_in(&s);
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(
        got,
        [
            "Earlier.Event",
            "Earlier.Event",
            "Waits.Critical",
            "Waits.Normal"
        ]
    );
    let r = record(&dir);
    assert_eq!(
        (r["state"].as_str(), r["version"].as_u64()),
        (Some("granted"), Some(3))
    );
    assert!(r["time_ms"].is_u64());
    // The device id is written once consent is granted, and it is the one sent.
    let id = std::fs::read_to_string(dir.join("device-id")).unwrap();
    let sent = c.accepted();
    let own = sent.iter().find(|e| e["name"] == "Waits.Normal").unwrap();
    assert_eq!(own["ext"]["device"]["localId"], id.trim());
    assert_eq!(client.close(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_denial_drops_what_waits_purges_the_cache_and_the_device_id() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-deny");
    let cache = dir.join("events.cache");
    // A device id and cache entries left by earlier sessions.
    std::fs::write(dir.join("device-id"), "r:earlier-device").unwrap();
    fill_cache(&cache, "Earlier.Event", 4);
    let client = TestClient::new(&required(&c, &dir, json!({})));
    let reports = Reports::default();
    client.collect_reports(&reports);
    assert_eq!(client.log("Waits.One", None), 0);
    assert_eq!(client.log("Waits.Two", None), 0);
    assert_eq!(client.set_consent(CONSENT_DENIED), 0);
    assert_eq!(client.consent(), CONSENT_DENIED);
    // Logged and dropped at once from now on.
    assert_eq!(client.log("After.Denial", None), 0);
    assert_eq!(client.flush(5000), 0);
    let s = client.stats();
    assert_eq!(
        (
            s["logged"].as_u64(),
            s["dropped_consent"].as_u64(),
            s["pending"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{s}"
    );
    assert_eq!(s["consent"], "denied");
    assert_conserved_in(&s);
    assert_eq!(record(&dir)["state"], "denied");
    assert!(!dir.join("device-id").exists());
    assert!(read_lines(&cache).is_empty(), "{:?}", read_lines(&cache));
    assert_eq!(client.close(2000), 0);
    assert_eq!(reports.events("dropped_consent"), 3);
    assert_eq!(c.request_count(), 0);
    // Nothing but the record was written after the denial.
    assert_eq!(
        file_names(&dir)
            .into_iter()
            .filter(|n| !n.starts_with("events.cache"))
            .collect::<Vec<_>>(),
        vec!["consent".to_owned()]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_newer_consent_version_asks_again() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-version");
    let first = TestClient::new(&required(&c, &dir, json!({"consent_version": 1})));
    assert_eq!(first.set_consent(CONSENT_GRANTED), 0);
    assert_eq!(first.close(2000), 0);
    let same = TestClient::new(&required(&c, &dir, json!({"consent_version": 1})));
    assert_eq!(same.consent(), CONSENT_GRANTED);
    assert_eq!(same.close(2000), 0);
    let newer = TestClient::new(&required(&c, &dir, json!({"consent_version": 2})));
    assert_eq!(newer.consent(), CONSENT_UNKNOWN);
    assert_eq!(newer.close(2000), 0);
    // Under consent "granted" an outdated record means granted.
    let default = TestClient::new(&config(&c, Some(&dir), json!({"consent_version": 2})));
    assert_eq!(default.consent(), CONSENT_GRANTED);
    assert_eq!(default.close(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_states_and_versions_are_refused() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-bad");
    let client = TestClient::new(&required(&c, &dir, json!({})));
    for state in [0, 3, -1] {
        assert_eq!(client.set_consent(state), 1, "state {state}");
    }
    assert_eq!(client.consent(), CONSENT_UNKNOWN);
    assert_eq!(
        unsafe { tel::ffi::tel_client_consent(std::ptr::null_mut()) },
        -1
    );
    for (key, value) in [
        ("consent", json!("maybe")),
        ("consent_version", json!(0)),
        ("consent_version", json!(4_294_967_296u64)),
    ] {
        let (rc, _) = client_new(&config(&c, Some(&dir), json!({ key: value })));
        assert_eq!(rc, 2, "{key}");
        assert!(last_error().contains(key), "{}", last_error());
    }
    assert_eq!(client.close(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn opt_out_answers_denied_and_records_nothing() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-optout");
    let client = TestClient::new(&required(&c, &dir, json!({"enabled": false})));
    assert_eq!(client.consent(), CONSENT_DENIED);
    assert_eq!(client.set_consent(CONSENT_GRANTED), 0);
    assert_eq!(client.consent(), CONSENT_DENIED);
    assert_eq!(client.close(2000), 0);
    assert!(!dir.join("consent").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_default_session_has_the_same_calls() {
    let _s = serial();
    assert_eq!(consent(), -1);
    assert_eq!(set_consent(CONSENT_GRANTED), 4);
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-global");
    init_ok(&required(&c, &dir, json!({})));
    assert_eq!(consent(), CONSENT_UNKNOWN);
    log_ok("Global.Waits", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(c.request_count(), 0);
    assert_eq!(set_consent(CONSENT_GRANTED), 0);
    // The flush sees the grant: it returns once the event is sent.
    assert_eq!(flush(10_000), 0);
    assert_eq!(names(&c.accepted()), ["Global.Waits"]);
    assert_eq!(stat("sent"), 1);
    assert_conserved();
    assert_eq!(shutdown(2000), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Across processes.

/// The child side: a session from `TEL_TEST_CONFIG`; `TEL_TEST_CONSENT` set records that
/// answer; it prints `CONSENT=` the state it then holds and `STATS=` after a flush and shutdown.
#[test]
fn child_consent() {
    if child_role().as_deref() != Some("consent") {
        return;
    }
    init_ok(&child_config());
    if let Ok(state) = std::env::var("TEL_TEST_CONSENT") {
        assert_eq!(set_consent(state.parse().unwrap()), 0, "{}", last_error());
    }
    println!("CONSENT={}", consent());
    assert_eq!(flush(10_000), 0);
    assert_eq!(shutdown(2000), 0);
    println!("STATS={}", stats());
}

fn consent_child(config: &Value, answer: Option<i32>) -> (i32, Value) {
    let mut env = vec![("TEL_TEST_CONFIG", config.to_string())];
    if let Some(a) = answer {
        env.push(("TEL_TEST_CONSENT", a.to_string()));
    }
    let out = run_role_ok("child_consent", "consent", &env, Duration::from_secs(60));
    let state = printed(&out, "CONSENT").unwrap().parse().unwrap();
    (state, printed_stats(&out))
}

#[test]
fn the_next_process_reads_the_recorded_answer() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-procs");
    let cfg = required(&c, &dir, json!({"consent_version": 5}));
    // The first process asks and records a grant; the next one starts granted.
    assert_eq!(consent_child(&cfg, None).0, CONSENT_UNKNOWN);
    assert_eq!(
        consent_child(&cfg, Some(CONSENT_GRANTED)).0,
        CONSENT_GRANTED
    );
    assert_eq!(consent_child(&cfg, None).0, CONSENT_GRANTED);
    // A notice of a newer version asks again in the next process.
    let newer = required(&c, &dir, json!({"consent_version": 6}));
    assert_eq!(consent_child(&newer, None).0, CONSENT_UNKNOWN);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_later_process_finds_the_denial_and_its_purge() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    let dir = temp_dir("consent-purge-procs");
    let cache = dir.join("events.cache");
    fill_cache(&cache, "Left.Behind", 5);
    std::fs::write(dir.join("device-id"), "r:left-behind").unwrap();
    // A process with consent required denies: the cache and the device id go.
    let (state, s) = consent_child(&required(&c, &dir, json!({})), Some(CONSENT_DENIED));
    assert_eq!(state, CONSENT_DENIED);
    assert_eq!(s["replayed"], 0, "{s}");
    // A later process, even one that would default to granted, reads the denial: nothing of
    // the cache is left to replay and nothing is sent.
    let (state, s) = consent_child(&config(&c, Some(&dir), json!({})), None);
    assert_eq!(state, CONSENT_DENIED);
    assert_eq!(
        (s["replayed"].as_u64(), s["sent"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert!(read_lines(&cache).is_empty());
    assert!(!dir.join("device-id").exists());
    assert_eq!(c.request_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
