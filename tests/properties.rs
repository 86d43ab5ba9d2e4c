//! Common properties (abi.md 1.2, "Common properties") through the C ABI against the emulator:
//! merged at the top level of `data` under the event's own keys, set and removed at runtime,
//! per client, checked like event properties.

mod common;

use common::*;
use serde_json::{json, Value};

/// The `data` of each accepted event, by name.
fn data_by_name(c: &Collector) -> std::collections::HashMap<String, Value> {
    c.accepted()
        .into_iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e["data"].clone()))
        .collect()
}

#[test]
fn merged_into_data_under_the_events_own_keys() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"properties": {"channel": "beta", "build": 7, "tags": ["a", "b"]}}),
    ));
    assert_eq!(client.log("Props.None", None), 0);
    assert_eq!(
        client.log("Props.Own", Some(r#"{"n":1,"nested":{"build":"x"}}"#)),
        0
    );
    assert_eq!(client.log("Props.Wins", Some(r#"{"channel":"stable"}"#)), 0);
    assert_eq!(client.flush(10_000), 0);
    let d = data_by_name(&c);
    assert_eq!(
        d["Props.None"],
        json!({"channel": "beta", "build": 7, "tags": ["a", "b"]})
    );
    assert_eq!(
        d["Props.Own"],
        json!({"n": 1, "nested": {"build": "x"}, "channel": "beta", "build": 7, "tags": ["a", "b"]})
    );
    assert_eq!(
        d["Props.Wins"],
        json!({"channel": "stable", "build": 7, "tags": ["a", "b"]})
    );
    assert_conserved_in(&client.stats());
}

#[test]
fn set_replace_and_remove_at_runtime() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"properties": {"channel": "beta"}}),
    ));
    assert_eq!(client.log("Props.Before", None), 0);
    assert_eq!(client.set_property("session", Some(r#"{"id":42}"#)), 0);
    assert_eq!(client.set_property("channel", Some(r#""stable""#)), 0);
    // JSON null is a value like any other.
    assert_eq!(client.set_property("nothing", Some("null")), 0);
    assert_eq!(client.log("Props.Set", None), 0);
    assert_eq!(client.set_property("channel", None), 0);
    assert_eq!(client.set_property("nothing", None), 0);
    // Removing what is not there is no error.
    assert_eq!(client.set_property("never.set", None), 0);
    assert_eq!(client.log("Props.Removed", None), 0);
    assert_eq!(client.flush(10_000), 0);
    let d = data_by_name(&c);
    assert_eq!(d["Props.Before"], json!({"channel": "beta"}));
    assert_eq!(
        d["Props.Set"],
        json!({"channel": "stable", "session": {"id": 42}, "nothing": null})
    );
    assert_eq!(d["Props.Removed"], json!({"session": {"id": 42}}));
    assert_conserved_in(&client.stats());
}

#[test]
fn each_client_has_its_own() {
    let c = Collector::start().unwrap();
    let a = TestClient::new(&config(&c, None, json!({"properties": {"who": "a"}})));
    let b = TestClient::new(&config(&c, None, json!({})));
    assert_eq!(b.set_property("who", Some(r#""b""#)), 0);
    assert_eq!(a.log("Client.A", None), 0);
    assert_eq!(b.log("Client.B", None), 0);
    assert_eq!(a.flush(10_000), 0);
    assert_eq!(b.flush(10_000), 0);
    let d = data_by_name(&c);
    assert_eq!(d["Client.A"], json!({"who": "a"}));
    assert_eq!(d["Client.B"], json!({"who": "b"}));
}

#[test]
fn bad_names_and_values_are_refused_naming_them() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, None, json!({})));
    assert_eq!(client.set_property("", Some("1")), 3);
    assert_eq!(client.set_property(&"n".repeat(101), Some("1")), 3);
    assert_eq!(client.set_property("ok", Some("{not json")), 3);
    assert!(last_error().contains("ok"), "{}", last_error());
    assert_eq!(client.set_property("ok", Some("1 2")), 3);
    assert_eq!(client.set_property(&"n".repeat(100), Some("1")), 0);
    let (rc, _) = client_new(&config(&c, None, json!({"properties": [1, 2]})));
    assert_eq!(rc, 2);
    assert!(last_error().contains("properties"), "{}", last_error());
}

#[test]
fn the_merged_event_is_bounded_by_event_max_bytes() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, None, json!({"event_max_bytes": 2000})));
    assert_eq!(client.log("Props.Small", Some(r#"{"a":1}"#)), 0);
    let big = format!("\"{}\"", "x".repeat(1900));
    assert_eq!(client.set_property("big", Some(&big)), 0);
    assert_eq!(client.log("Props.Small", Some(r#"{"a":1}"#)), 3);
    assert!(last_error().contains("event_max_bytes"), "{}", last_error());
    assert_eq!(client.flush(10_000), 0);
    assert_eq!(client.stats()["logged"], 1);
}

#[test]
fn the_default_session_has_the_call() {
    let _s = serial();
    assert_eq!(set_property("channel", Some(r#""beta""#)), 4);
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({})));
    assert_eq!(set_property("channel", Some(r#""beta""#)), 0);
    log_ok("Global.Props", Some(r#"{"n":1}"#));
    assert_eq!(flush(10_000), 0);
    assert_eq!(c.accepted()[0]["data"], json!({"n": 1, "channel": "beta"}));
    assert_conserved();
    assert_eq!(shutdown(2000), 0);
}
