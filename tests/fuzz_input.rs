//! Property-based fuzzing of what a host hands the library: the configuration JSON
//! (`Config::from_json`), event names (`check_name`) and properties (`check_properties`).
//!
//! Each target runs `PROPTEST_CASES` random cases (256 by default; CI keeps the default) and
//! replays its checked-in corpus, `tests/fuzz-corpus/<target>/*`, every time. Failures that
//! proptest finds are persisted to `tests/fuzz-corpus/<file>.regressions` and replayed first
//! on the next run: commit them. Longer runs: `PROPTEST_CASES=200000 cargo test --release
//! --test fuzz_input` (docs/reliability.md).

#[path = "common/fuzz/mod.rs"]
mod fuzz;

use fuzz::corpus;
use fuzz::oracle::{check_config, check_event_name, name_is_valid, NAME_MESSAGE_MAX};
use proptest::prelude::*;
use serde_json::{json, Value};
use tel::internals::envelope::{check_name, check_properties, MAX_DEPTH};
use tel::{Config, Status};

fn settings() -> ProptestConfig {
    fuzz::settings("fuzz_input", 256)
}

// ---------- configuration ----------

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        Just(json!("https://127.0.0.1:1/")),
        Just(json!("http://localhost/x")),
        Just(json!("http://[::1]:80/")),
        Just(json!("http://10.0.0.1/")),
        Just(json!("HTTP://127.0.0.1/")),
        Just(json!("deflate")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every key `tel_init` knows, and one it does not.
fn keys() -> Vec<&'static str> {
    tel::config::KEYS.iter().copied().chain(["bogus"]).collect()
}

fn config_object() -> impl Strategy<Value = (Value, String)> {
    let key = ("[A-Za-z0-9_]{1,12}", "[!-~]{8,30}").prop_map(|(t, r)| format!("{t}-{r}"));
    (
        key,
        prop::collection::vec((prop::sample::select(keys()), json_value()), 0..8),
    )
        .prop_map(|(key, fields)| {
            let mut m = serde_json::Map::new();
            m.insert("ikey".into(), json!(key));
            for (k, v) in fields {
                if k != "ikey" {
                    m.insert(k.to_string(), v);
                }
            }
            (Value::Object(m), key)
        })
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn config_from_any_text(text in ".{0,200}") {
        check_config(&text, None);
    }

    #[test]
    fn config_from_structured_objects((cfg, key) in config_object()) {
        check_config(&cfg.to_string(), Some(&key));
    }

    #[test]
    fn config_with_mutated_bytes(
        (cfg, key) in config_object(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = cfg.to_string().into_bytes();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check_config(text, Some(&key));
        }
    }
}

/// Found by the `config` libFuzzer target: an unknown key is quoted in the message, and one
/// whose name holds the instrumentation key echoed the key, which the redaction of the other
/// configuration errors did not cover.
#[test]
fn an_unknown_key_holding_the_ikey_does_not_echo_it() {
    let key = "ddddddddd-ddddddd";
    for unknown in [format!("x{key}y"), key.to_string(), format!("{key}\"")] {
        let text = json!({"ikey": key, unknown.as_str(): 1}).to_string();
        let e = Config::from_json(&text).unwrap_err();
        assert_eq!(e.status, Status::InvalidConfig);
        assert!(
            e.message.contains("unknown configuration key"),
            "{}",
            e.message
        );
        assert!(!e.message.contains(key), "the key leaked: {}", e.message);
    }
}

#[test]
fn config_corpus() {
    for (path, bytes) in corpus("config") {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let r = std::panic::catch_unwind(|| check_config(text, None));
            assert!(r.is_ok(), "{path}");
        }
    }
}

// ---------- event names ----------

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn names_follow_the_rule(name in prop_oneof![".{0,120}", "[A-Za-z0-9_.]{0,110}"]) {
        check_event_name(&name);
    }
}

/// Found by the `properties` libFuzzer target: a name of control characters is quoted
/// escaped, six bytes a character, past the 600 bytes this file used to allow.
#[test]
fn a_name_of_escaped_characters_has_a_bounded_message() {
    for c in ['\u{18}', '\u{10ffff}', '"', '\\'] {
        let name: String = std::iter::repeat_n(c, 5000).collect();
        let e = check_name(&name).unwrap_err();
        assert!(
            e.message.len() < NAME_MESSAGE_MAX,
            "{c:?}: {}",
            e.message.len()
        );
        let name: String = std::iter::repeat_n(c, 100).collect();
        let e = check_name(&name).unwrap_err();
        assert!(
            e.message.len() < NAME_MESSAGE_MAX,
            "{c:?}: {}",
            e.message.len()
        );
    }
}

#[test]
fn name_corpus() {
    for (path, bytes) in corpus("name") {
        for line in String::from_utf8_lossy(&bytes).lines() {
            assert_eq!(
                check_name(line).is_ok(),
                name_is_valid(line),
                "{path}: {line:?}"
            );
        }
    }
}

// ---------- event properties ----------

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Accepted properties are one JSON object that serde_json (what collectors and the cache
/// reader use) can read back, within the documented depth.
fn check_props(text: &str) {
    if check_properties(text).is_ok() {
        let v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            // Finding 3 of docs/reliability.md (`1e999999` is accepted), covered by the
            // ignored `a_number_no_double_can_hold_is_refused_at_tel_log` until it is fixed.
            Err(e) if e.to_string().contains("number out of range") => return,
            Err(e) => panic!("accepted but unreadable ({e}): {text:.200}"),
        };
        assert!(v.is_object(), "{text:.200}");
        assert!(depth(&v) <= MAX_DEPTH);
    }
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn properties_of_generated_json(v in json_value()) {
        let text = v.to_string();
        let ok = check_properties(&text).is_ok();
        prop_assert_eq!(ok, v.is_object() && depth(&v) <= MAX_DEPTH, "{}", text);
        check_props(&text);
    }

    #[test]
    fn properties_of_any_text(text in prop_oneof![".{0,200}", "[{}\\[\\]\",:0-9a-z \\\\e.+-]{0,200}"]) {
        check_props(&text);
    }

    #[test]
    fn properties_deeply_nested(n in 1usize..400, open in "[\\[{]", close_all in any::<bool>()) {
        let mut text = String::from("{\"a\":");
        for _ in 0..n {
            text.push_str(if open == "[" { "[" } else { "{\"k\":" });
        }
        text.push('1');
        if close_all {
            for _ in 0..n {
                text.push(if open == "[" { ']' } else { '}' });
            }
        }
        text.push('}');
        let ok = check_properties(&text).is_ok();
        prop_assert_eq!(ok, close_all && n < MAX_DEPTH);
    }
}

/// Found by the `properties` libFuzzer target: serde_json's "invalid type" error quotes a
/// string value whole, so properties that are one long JSON string (up to `event_max_bytes`,
/// 1 MB by default) came back whole in the message, and in `tel_last_error`.
#[test]
fn refused_properties_have_a_bounded_message() {
    for text in [
        format!("\"{}\"", "x".repeat(100_000)),
        format!("\"{}\"", "f\\\"".repeat(10_000)),
        format!("[\"{}\"]", "y".repeat(100_000)),
        format!("{{\"a\":1}} \"{}\"", "z".repeat(100_000)),
    ] {
        let e = check_properties(&text).unwrap_err();
        assert_eq!(e.status, Status::InvalidEvent);
        assert!(
            e.message.len() < 1024,
            "{} bytes: {:.200}",
            e.message.len(),
            e.message
        );
    }
}

#[test]
fn properties_corpus() {
    for (path, bytes) in corpus("properties") {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let text = text.trim_end_matches('\n');
            let r = std::panic::catch_unwind(|| check_properties(text).is_ok());
            assert!(r.is_ok(), "{path} panicked");
        }
    }
}
