//! Input through the C ABI that the library must refuse, with its status and a message naming
//! the problem: invalid configurations and events, then hostile ones (100 MB strings, JSON
//! nested 100,000 deep, numbers that overflow or that no double can hold, duplicate keys).
//! Every call returns a status; none crashes, and what is accepted is delivered.

mod common;

use common::*;
use serde_json::json;
use std::ptr::null_mut;
use std::time::Duration;
use tel::ffi;

// ---------------------------------------------------------------------------------------------
// Invalid configurations and events.

#[test]
fn invalid_configurations_name_their_problem() {
    let _s = serial();
    let cases = [
        (json!({}), "ikey"),
        (json!({"ikey": ""}), "ikey"),
        (json!({"ikey": "nodash"}), "ikey"),
        (json!({"ikey": "-abc"}), "tenant"),
        (json!({"ikey": 5}), "ikey"),
        (json!({"ikey": IKEY, "colour": "red"}), "colour"),
        (json!({"ikey": IKEY, "endpoint": ""}), "endpoint"),
        (
            json!({"ikey": IKEY, "endpoint": "http://example.com/"}),
            "loopback",
        ),
        (json!({"ikey": IKEY, "endpoint": "ftp://x/"}), "https://"),
        (
            json!({"ikey": IKEY, "ext": {"os": {"release": "x"}}}),
            "ext.os.release",
        ),
        (
            json!({"ikey": IKEY, "ext": {"app": {"initTs": "x"}}}),
            "ext.app.initTs",
        ),
        (
            json!({"ikey": IKEY, "ext": {"sdk": {"ver": "x"}}}),
            "ext.sdk",
        ),
        (
            json!({"ikey": IKEY, "ext": {"device": {"localId": "deadbeef"}}}),
            "scope prefix",
        ),
        (
            json!({"ikey": IKEY, "batch_max_events": 0}),
            "batch_max_events",
        ),
        (
            json!({"ikey": IKEY, "queue_max_events": -1}),
            "queue_max_events",
        ),
        (
            json!({"ikey": IKEY, "http_timeout_ms": "10"}),
            "http_timeout_ms",
        ),
        (json!({"ikey": IKEY, "compression": "zstd"}), "compression"),
        (json!({"ikey": IKEY, "enabled": "yes"}), "enabled"),
        (
            json!({"ikey": IKEY, "retry_initial_ms": 500, "retry_max_ms": 100}),
            "retry_max_ms",
        ),
        (json!([]), "object"),
    ];
    for (cfg, word) in cases {
        assert_eq!(init(&cfg), 2, "{cfg} should be TEL_ERR_INVALID_CONFIG");
        let msg = last_error();
        assert!(
            msg.contains(word),
            "{cfg}: message {msg:?} should name {word:?}"
        );
        assert!(!msg.contains("0123-4567"), "the key leaked into {msg:?}");
    }
    let bad_json = std::ffi::CString::new("{not json").unwrap();
    assert_eq!(unsafe { tel::ffi::tel_init(bad_json.as_ptr()) }, 2);
}

#[test]
fn invalid_events_get_their_status_and_a_message() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"event_max_bytes": 2000})));
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(3000));
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("abc", None, "4 to 100"),
        ("_abc", None, "start and end"),
        ("abc.", None, "start and end"),
        ("has space", None, "only letters"),
        ("Event", Some("[1,2]"), "JSON object"),
        ("Event", Some("\"s\""), "JSON object"),
        ("Event", Some("{\"a\":"), "JSON object"),
        ("Event", Some(big.as_str()), "event_max_bytes"),
        ("Event", Some(deep.as_str()), "levels deep"),
    ];
    let long_name = "a".repeat(101);
    for (name, props, word) in cases
        .iter()
        .copied()
        .chain([(long_name.as_str(), None, "4 to 100")])
    {
        assert_eq!(log(name, props), 3, "{name} {props:?}");
        assert!(last_error().contains(word), "{name}: {}", last_error());
    }
    assert_eq!(stat("logged"), 0);
    assert_eq!(flush(5000), 0);
    assert_eq!(c.request_count(), 0, "an empty flush sends nothing");
}

// ---------------------------------------------------------------------------------------------
// Hostile sizes, depths and numbers.

#[test]
fn hundred_megabyte_strings() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let huge = "a".repeat(100 << 20);
    init_ok(&config(&c, None, json!({})));
    let (rc, took) = timed(|| log(&huge, None));
    assert_eq!(rc, 3, "a 100 MB name: {}", last_error());
    assert!(last_error().len() < 1024, "the message stays short");
    let props = format!("{{\"big\":\"{huge}\"}}");
    let (rc, took2) = timed(|| log("Huge.Props", Some(&props)));
    assert_eq!(rc, 3);
    assert!(last_error().contains("event_max_bytes"), "{}", last_error());
    // Refused without parsing: at the speed of strlen and UTF-8 validation.
    assert_within("tel_log(100 MB)", took + took2, Duration::from_secs(5));
    // A 100 MB value for keys the session knows.
    assert_eq!(shutdown(1000), 0);
    for cfg in [
        json!({"ikey": IKEY, "endpoint": c.endpoint(), "cache_path": null, "ext": {"app": {"ver": huge}}}),
        json!({"ikey": format!("{huge}-x")}),
        json!({"ikey": IKEY, "endpoint": format!("https://{huge}/")}),
    ] {
        let rc = init_raw(cfg.to_string().as_bytes());
        assert!(rc == 0 || rc == 2, "{rc}");
        if rc == 0 {
            assert_eq!(shutdown(1000), 0);
        }
    }
    assert_eq!(stat("logged"), 0);
}

/// An error message names the offending key or value; a hostile one must not be echoed whole
/// (the thread's last error would hold, and `tel_last_error` copy out, 100 MB).
#[test]
fn error_messages_do_not_echo_100_megabytes() {
    let _s = serial();
    let huge = "k".repeat(100 << 20);
    for cfg in [
        json!({"ikey": IKEY, (huge.clone()): 1}),
        json!({"ikey": IKEY, "endpoint": format!("ftp://{huge}/")}),
        json!({"ikey": IKEY, "ext": {"app": {(huge.clone()): "x"}}}),
        json!({"ikey": IKEY, "compression": huge}),
    ] {
        assert_eq!(init_raw(cfg.to_string().as_bytes()), 2);
        let n = unsafe { ffi::tel_last_error(null_mut(), 0) };
        assert!(n < 4096, "a {n} byte error message");
    }
}

#[test]
fn json_nested_100000_deep() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let depth = 100_000;
    let arrays = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let objects = nested(depth);
    let unclosed = "[".repeat(depth);
    for cfg in [
        format!("{{\"ikey\":\"{IKEY}\",\"ext\":{objects}}}"),
        format!("{{\"ikey\":\"{IKEY}\",\"x\":{arrays}}}"),
        objects.clone(),
        unclosed.clone(),
    ] {
        assert_eq!(init_raw(cfg.as_bytes()), 2, "{}", last_error());
    }
    init_ok(&config(&c, None, json!({})));
    for props in [&arrays, &objects, &unclosed] {
        assert_eq!(log("Deep.Event", Some(props)), 3);
    }
    // Brackets inside strings are not nesting.
    let in_string = format!("{{\"s\":\"{}\"}}", "[{".repeat(depth));
    log_ok("Deep.InString", Some(&in_string));
    assert_eq!(flush(5000), 0);
    // The limit: 126 levels are accepted (127 with the envelope), 127 are not.
    log_ok("Deep.Limit", Some(&nested(126)));
    assert_eq!(log("Deep.Over", Some(&nested(127))), 3);
    assert_eq!(flush(5000), 0);
    assert_eq!(names(&c.accepted())[0], "Deep.InString");
    assert_conserved();
}

/// Properties nested `n` levels deep (the top-level object counts as one).
fn nested(n: usize) -> String {
    format!("{}1{}", "{\"a\":".repeat(n - 1), "}".repeat(n - 1)).replacen("1", "{\"a\":1}", 1)
}

/// What `tel_log` accepts at its nesting limit must be deliverable, here after a trip through
/// the cache. The envelope wraps the properties one level deeper (`data`), so the limit of 126
/// levels keeps envelopes within the 127 levels a collector parsing with serde_json's default
/// limit (the emulator) accepts; one level more would refuse every other event of the batch.
#[test]
fn an_event_at_the_nesting_limit_is_delivered_with_its_batch() {
    let _s = serial();
    let dir = temp_dir("deep-cache");
    let down = Collector::start().unwrap();
    down.set_default(Some(Scripted::status(503)));
    init_ok(&config(&down, Some(&dir), json!({"retry_max_attempts": 1})));
    log_ok("Deep.Cached", Some(&nested(126)));
    log_ok("Shallow.Cached", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("persisted"), 2);
    assert_eq!(shutdown(1000), 0);
    let up = Collector::start().unwrap();
    init_ok(&config(&up, Some(&dir), json!({})));
    assert_eq!(flush(5000), 0);
    let s = stats();
    assert_eq!(s["replayed"], 2, "{s}");
    assert_eq!(s["sent"], 2, "the batch was refused: {s}");
    assert_eq!(shutdown(1000), 0);
}

#[test]
fn numbers_that_overflow() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for (key, value) in [
        ("batch_max_events", "18446744073709551616"),
        ("batch_max_events", "1e30"),
        ("queue_max_events", "-1"),
        ("http_timeout_ms", "18446744073709551615"),
        ("retry_max_attempts", "4294967297"),
        ("flush_interval_ms", "1.5"),
        ("cache_max_bytes", "1e999"),
        ("event_max_bytes", "NaN"),
    ] {
        let cfg = format!(
            "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"{}\",\"{key}\":{value}}}",
            c.endpoint()
        );
        assert_eq!(init_raw(cfg.as_bytes()), 2, "{key}={value}");
        assert!(last_error().contains(key) || last_error().contains("JSON"));
    }
    init_ok(&config(&c, None, json!({})));
    for props in [r#"{"n":1e999999}"#, r#"{"n":-1e400}"#] {
        let rc = log("Number.Overflow", Some(props));
        assert!(rc == 3 || rc == 0, "{rc}");
    }
    assert_eq!(flush(5000), 0);
    assert_conserved();
    // Large but representable numbers pass through as written.
    let big = r#"{"i":123456789012345678901234567890,"u":18446744073709551615,"neg":-9223372036854775809,"tiny":1e-400}"#;
    log_ok("Number.Big", Some(big));
    assert_eq!(flush(5000), 0, "{}", last_error());
    let acc = c.accepted();
    let big_one = acc.iter().find(|e| e["name"] == "Number.Big").unwrap();
    assert_eq!(big_one["data"]["u"], json!(18446744073709551615u64));
    assert_conserved();
}

/// A number no double can hold (`1e999999`) is valid JSON text but no JSON parser that maps
/// numbers to doubles can read it: the collector's (here the emulator's) refuses the whole
/// batch as `InvalidEventFormat`, taking every other event of the batch with it. `tel_log`
/// should refuse it, where the caller sees why.
#[test]
fn a_number_no_double_can_hold_is_refused_at_tel_log() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"flush_interval_ms": 60_000})));
    log_ok("Innocent.Event", None);
    let rc = log("Number.Overflow", Some(r#"{"n":1e999999}"#));
    log_ok("Innocent.Event", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(
        c.accepted_count(),
        2,
        "the innocent events of the batch were refused with it (tel_log said {rc})"
    );
    assert_eq!(rc, 3);
}

#[test]
fn duplicate_keys() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let good = c.endpoint();
    // Whichever duplicate wins, the value that wins is validated: a clear-text endpoint off
    // loopback never gets through.
    let dup = format!(
        "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"{good}\",\"endpoint\":\"http://example.com/\"}}"
    );
    assert_eq!(init_raw(dup.as_bytes()), 2);
    let dup = format!(
        "{{\"ikey\":\"{IKEY}\",\"endpoint\":\"http://example.com/\",\"endpoint\":\"{good}\",\"cache_path\":null}}"
    );
    let rc = init_raw(dup.as_bytes());
    assert!(rc == 0 || rc == 2);
    if rc == 2 {
        init_ok(&config(&c, None, json!({})));
    }
    let dup_ikey = format!("{{\"ikey\":\"abc-1\",\"ikey\":\"{IKEY}\"}}");
    assert_eq!(init_raw(dup_ikey.as_bytes()), 5, "a session is live");
    // Duplicate property keys: sent as given, one line, counted.
    log_ok("Dup.Keys", Some(r#"{"a":1,"a":2,"a":{"a":3,"a":4}}"#));
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted_count(), 1);
    let raw = &c.requests()[0].lines[0];
    assert!(
        raw.contains(r#""data":{"a":1,"a":2,"a":{"a":3,"a":4}}"#),
        "{raw}"
    );
    assert_conserved();
}
