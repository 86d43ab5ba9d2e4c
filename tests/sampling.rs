//! Sampling (abi.md 1.2, "Sampling") through the C ABI against the emulator: a pure function of
//! the device id and the event name, the same in every real process that shares the device id;
//! critical events never sampled out; `dropped_sampled` counted and reported to no callback.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Forty event names: enough that two devices keep the same set at rate 0.5 only by a chance
/// of one in 2^40.
fn forty_names() -> Vec<String> {
    (0..40).map(|i| format!("Sample.Event{i:02}")).collect()
}

fn accepted_names(c: &Collector) -> BTreeSet<String> {
    names(&c.accepted()).into_iter().collect()
}

#[test]
fn rate_zero_drops_all_but_critical_and_named_exceptions() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"sample": {"rate": 0, "events": {"Sample.Kept": 1}}}),
    ));
    let reports = Reports::default();
    client.collect_reports(&reports);
    assert_eq!(client.log("Sample.Dropped", None), 0);
    assert_eq!(client.log("Sample.Dropped", None), 0);
    assert_eq!(client.log("Sample.Kept", None), 0);
    // Critical events are never sampled out.
    assert_eq!(client.log_ex("Sample.Dropped", None, Some(CRITICAL)), 0);
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(
        (
            s["logged"].as_u64(),
            s["dropped_sampled"].as_u64(),
            s["sent"].as_u64()
        ),
        (Some(4), Some(2), Some(2)),
        "{s}"
    );
    assert_conserved_in(&s);
    assert_eq!(client.close(2000), 0);
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(got, ["Sample.Dropped", "Sample.Kept"]);
    // Sampled events are reported to no callback.
    let reported: u64 = reports
        .0
        .lock()
        .iter()
        .map(|r| r["events"].as_u64().unwrap())
        .sum();
    assert_eq!(reported, 2, "{:?}", reports.0.lock());
}

#[test]
fn a_device_keeps_every_event_of_a_name_or_none() {
    let c = Collector::start().unwrap();
    let device = json!({"device": {"localId": "r:sample-device-1"}});
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"sample": {"rate": 0.5}, "ext": device}),
    ));
    for _ in 0..3 {
        for name in forty_names() {
            assert_eq!(client.log(&name, None), 0);
        }
    }
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_conserved_in(&s);
    let mut per_name: std::collections::HashMap<String, usize> = Default::default();
    for n in names(&c.accepted()) {
        *per_name.entry(n).or_default() += 1;
    }
    assert!(per_name.values().all(|&n| n == 3), "{per_name:?}");
    let kept = per_name.len() as u64;
    assert!(kept > 0 && kept < 40, "rate 0.5 kept {kept} of 40 names");
    assert_eq!(s["dropped_sampled"].as_u64().unwrap(), 3 * (40 - kept));
}

#[test]
fn bad_rates_are_refused_naming_the_key() {
    let c = Collector::start().unwrap();
    for sample in [
        json!({"rate": 1.5}),
        json!({"rate": -0.1}),
        json!({"events": {"A.Name": "half"}}),
        json!(0.5),
    ] {
        let (rc, _) = client_new(&config(&c, None, json!({ "sample": sample })));
        assert_eq!(rc, 2, "{sample}");
        assert!(last_error().contains("sample"), "{}", last_error());
    }
}

// ---------------------------------------------------------------------------------------------
// Across processes.

/// The child side: a session from `TEL_TEST_CONFIG` logs each of [`forty_names`] once and
/// flushes.
#[test]
fn child_sampler() {
    if child_role().as_deref() != Some("sampler") {
        return;
    }
    init_ok(&child_config());
    for name in forty_names() {
        log_ok(&name, None);
    }
    assert_eq!(flush(10_000), 0);
    assert_eq!(shutdown(2000), 0);
    println!("STATS={}", stats());
}

/// The names a child process with `config` kept.
fn kept_in_a_process(c: &Collector, config: &Value) -> BTreeSet<String> {
    c.reset();
    let out = run_role_ok(
        "child_sampler",
        "sampler",
        &[("TEL_TEST_CONFIG", config.to_string())],
        Duration::from_secs(60),
    );
    let s = printed_stats(&out);
    assert_conserved_in(&s);
    let kept = accepted_names(c);
    assert_eq!(s["sent"].as_u64().unwrap(), kept.len() as u64, "{s}");
    kept
}

fn sampled(c: &Collector, dir: &Path) -> Value {
    config(c, Some(dir), json!({"sample": {"rate": 0.5}}))
}

#[test]
fn the_same_device_keeps_the_same_names_in_every_process() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    // Two processes sharing a cache folder share its device id.
    let dir = temp_dir("sample-procs");
    let first = kept_in_a_process(&c, &sampled(&c, &dir));
    let second = kept_in_a_process(&c, &sampled(&c, &dir));
    assert_eq!(first, second);
    assert!(!first.is_empty() && first.len() < 40, "{first:?}");
    // A device id given in the configuration decides alike in another folder.
    let id = std::fs::read_to_string(dir.join("device-id")).unwrap();
    let other = temp_dir("sample-procs-given");
    let given = merged(
        sampled(&c, &other),
        json!({"ext": {"device": {"localId": id.trim()}}}),
    );
    assert_eq!(kept_in_a_process(&c, &given), first);
    // Another device keeps another set.
    let elsewhere = temp_dir("sample-procs-other");
    assert_ne!(kept_in_a_process(&c, &sampled(&c, &elsewhere)), first);
    for d in [dir, other, elsewhere] {
        let _ = std::fs::remove_dir_all(d);
    }
}
