//! Scrubbing (abi.md 1.2, "Scrubbing") through the C ABI against the emulator: the default
//! detectors, each of the six, their order, what is scrubbed (string values of `data`, nested
//! ones too, `ext.ex.msg` and `ext.ex.stack`) and what is not, before anything is sent or
//! written (a cached file holds only the scrubbed text), and the `scrubbed` counter.
//!
//! `user_path` reads `HOME` and `USER` when a client starts: every test here takes [`serial`]
//! and sets them, so that the expectations do not depend on who runs the tests.

mod common;

use common::*;
use serde_json::{json, Value};

const HOME: &str = "/home/jdoe";
const LOGIN: &str = "jdoe";

/// One sample of what each detector matches, in a string value of its own.
fn samples() -> Value {
    json!({
        "email": "write to jane.doe+tel@example.co.uk today",
        "path": "/home/jdoe/projects/app/main.rs",
        "other_path": "/srv/builds/jdoe/out.log",
        "ipv4": "from 192.168.10.20 port",
        "ipv6": "at fe80::1ff:fe23:4567:890a and 2001:db8:0:0:1:0:0:1",
        "guid": "id 123e4567-e89b-12d3-a456-426614174000",
        "token": "key sk_live_51HxAbCdEfGhIjKlMnOp",
        "plain": "std::vector at 10:11:12 version 1.2.3",
    })
}

/// The `data` sent for [`samples`] by a client with `scrub` (None: the default), and the stats.
fn scrubbed_with(scrub: Option<Value>) -> (Value, Value) {
    std::env::set_var("HOME", HOME);
    std::env::set_var("USER", LOGIN);
    let c = Collector::start().unwrap();
    let extra = match scrub {
        Some(s) => json!({ "scrub": s }),
        None => json!({}),
    };
    let client = TestClient::new(&config(&c, None, extra));
    assert_eq!(client.log("Scrub.Sample", Some(&samples().to_string())), 0);
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_conserved_in(&s);
    (c.accepted()[0]["data"].clone(), s)
}

#[test]
fn the_default_is_email_and_user_path() {
    let _s = serial();
    let (d, s) = scrubbed_with(None);
    assert_eq!(d["email"], "write to <email> today");
    assert_eq!(d["path"], "<home>/projects/app/main.rs");
    assert_eq!(d["other_path"], "/srv/builds/<user>/out.log");
    // The others are not on by default.
    for key in ["ipv4", "ipv6", "guid", "token", "plain"] {
        assert_eq!(d[key], samples()[key], "{key}");
    }
    assert_eq!(s["scrubbed"], 3, "{s}");
}

#[test]
fn each_detector_alone() {
    let _s = serial();
    let expected = [
        ("email", "email", "write to <email> today"),
        ("user_path", "path", "<home>/projects/app/main.rs"),
        ("ipv4", "ipv4", "from <ipv4> port"),
        ("ipv6", "ipv6", "at <ipv6> and <ipv6>"),
        ("guid", "guid", "id <guid>"),
        ("token", "token", "key <token>"),
    ];
    for (detector, key, want) in expected {
        let (d, s) = scrubbed_with(Some(json!([detector])));
        assert_eq!(d[key], want, "{detector}");
        assert_eq!(d["plain"], samples()["plain"], "{detector}");
        for (_, other, _) in expected.iter().filter(|(det, _, _)| *det != detector) {
            if !(detector == "token" && *other == "guid") {
                assert_eq!(d[other], samples()[other], "{detector} touched {other}");
            }
        }
        assert!(s["scrubbed"].as_u64().unwrap() >= 1, "{detector}: {s}");
    }
}

#[test]
fn detectors_run_in_the_table_order_whatever_the_list_order() {
    let _s = serial();
    // A GUID is also a run of 24+ token characters holding a digit: guid comes first.
    let (d, _) = scrubbed_with(Some(json!(["token", "guid"])));
    assert_eq!(d["guid"], "id <guid>");
    let (d, _) = scrubbed_with(Some(json!(["token"])));
    assert_eq!(d["guid"], "id <token>");
}

#[test]
fn all_six_and_none() {
    let _s = serial();
    let all = json!(["email", "user_path", "ipv4", "ipv6", "guid", "token"]);
    let (d, s) = scrubbed_with(Some(all));
    assert_eq!(d["ipv4"], "from <ipv4> port");
    assert_eq!(d["email"], "write to <email> today");
    assert_eq!(d["plain"], samples()["plain"]);
    assert!(s["scrubbed"].as_u64().unwrap() >= 8, "{s}");
    let (d, s) = scrubbed_with(Some(json!([])));
    assert_eq!(d, samples());
    assert_eq!(s["scrubbed"], 0);
}

#[test]
fn nested_strings_and_exceptions_are_scrubbed_names_keys_and_other_ext_are_not() {
    let _s = serial();
    std::env::set_var("HOME", HOME);
    std::env::set_var("USER", LOGIN);
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"properties": {"contact": "ops@example.com"}}),
    ));
    let props = json!({
        "list": ["a@example.com", 1, {"deep": "/home/jdoe/x"}],
        "me@example.com": "key kept",
    });
    let options = json!({"ext": {
        "ex": {"type": "Err@example.com", "msg": "failed for bob@example.org",
               "stack": "at /home/jdoe/src/lib.rs:10"},
        "app": {"userId": "carol@example.com"},
    }});
    assert_eq!(
        client.log_ex(
            "Scrub.Nested",
            Some(&props.to_string()),
            Some(&options.to_string())
        ),
        0
    );
    assert_eq!(client.flush(10_000), 0);
    let e = &c.accepted()[0];
    assert_eq!(
        e["data"],
        json!({
            "list": ["<email>", 1, {"deep": "<home>/x"}],
            "me@example.com": "key kept",
            "contact": "<email>",
        })
    );
    assert_eq!(e["ext"]["ex"]["msg"], "failed for <email>");
    assert_eq!(e["ext"]["ex"]["stack"], "at <home>/src/lib.rs:10");
    assert_eq!(e["ext"]["ex"]["type"], "Err@example.com");
    assert_eq!(e["ext"]["app"]["userId"], "carol@example.com");
    assert_eq!(client.stats()["scrubbed"], 5);
}

#[test]
fn nothing_unscrubbed_reaches_the_cache_file() {
    let _s = serial();
    std::env::set_var("HOME", HOME);
    std::env::set_var("USER", LOGIN);
    let dir = temp_dir("scrub-cache");
    let cache = dir.join("events.cache");
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.pause(), 0);
    assert_eq!(
        client.log("Scrub.Cached", Some(r#"{"who":"jane@example.com"}"#)),
        0
    );
    assert_eq!(
        client.log_ex(
            "Scrub.Critical",
            Some(r#"{"where":"/home/jdoe/notes.txt"}"#),
            Some(CRITICAL)
        ),
        0
    );
    assert_eq!(client.flush(10_000), 0);
    assert_eq!(client.close(2000), 0);
    let mut on_disk = String::new();
    for f in files_named(&dir, |_| true) {
        on_disk.push_str(&std::fs::read_to_string(f).unwrap_or_default());
    }
    assert!(read_lines(&cache).len() >= 2, "{on_disk}");
    assert!(
        on_disk.contains("<email>") && on_disk.contains("<home>/notes.txt"),
        "{on_disk}"
    );
    assert!(
        !on_disk.contains("jane@") && !on_disk.contains("/home/jdoe"),
        "{on_disk}"
    );
    assert_eq!(c.connection_count(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unknown_detector_is_refused_naming_the_key() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for scrub in [json!(["phone"]), json!("email"), json!([1])] {
        let (rc, _) = client_new(&config(&c, None, json!({ "scrub": scrub })));
        assert_eq!(rc, 2, "{scrub}");
        assert!(last_error().contains("scrub"), "{}", last_error());
    }
}
