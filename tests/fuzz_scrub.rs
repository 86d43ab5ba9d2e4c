//! Property-based fuzzing of scrubbing (abi.md, "Scrubbing"): whatever the properties, the
//! scrubbed text is valid JSON with the same keys and the same non-string values; each string
//! value is what scrubbing that string alone gives (escapes or not); and scrubbing the result
//! again changes nothing.
//!
//! Runs `PROPTEST_CASES` cases (256 by default) and replays `tests/fuzz-corpus/scrub/*` every
//! time; see tests/fuzz_input.rs for the conventions.

#[path = "common/fuzz/mod.rs"]
mod fuzz;

use proptest::prelude::*;
use serde_json::{Map, Value};
use std::borrow::Cow;
use tel::internals::privacy::{Detectors, Scrubber, UserIdentity};

fn settings() -> ProptestConfig {
    fuzz::settings("fuzz_scrub", 256)
}

/// The scrubbers under test: every detector, the default ones, or the others, under Unix and
/// Windows rules.
fn scrubbers() -> Vec<Scrubber> {
    let unix = || UserIdentity::new(Some("/home/ann"), Some("ann"), false);
    let windows = || UserIdentity::new(Some(r"C:\Users\Ann"), Some("Ann"), true);
    vec![
        Scrubber::with_identity(Detectors::ALL, unix()),
        Scrubber::with_identity(Detectors::default(), unix()),
        Scrubber::with_identity(Detectors::ALL, windows()),
        Scrubber::with_identity(Detectors::default(), windows()),
        Scrubber::with_identity(
            Detectors::from_json(&serde_json::json!(["ipv4", "ipv6", "guid", "token"])).unwrap(),
            unix(),
        ),
    ]
}

/// Pieces that detectors match, almost match, or sit next to.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ann@example.com".to_owned()),
        Just("a.b+c@mail.example.co.uk".to_owned()),
        Just("@".to_owned()),
        Just("/home/ann".to_owned()),
        Just("/home/ann/".to_owned()),
        Just("/opt/ann".to_owned()),
        Just(r"C:\Users\Ann\".to_owned()),
        Just("c:/users/ANN".to_owned()),
        Just("ann".to_owned()),
        Just("10.0.0.1".to_owned()),
        Just("1.2.3.4.5".to_owned()),
        Just("255.".to_owned()),
        Just("2001:db8::1".to_owned()),
        Just("::".to_owned()),
        Just("10:11:12".to_owned()),
        Just("std::vector".to_owned()),
        Just("0f8fad5b-d9cb-469f-a165-70867728950e".to_owned()),
        Just("ghp_abcdefghijklmnopqrst0123".to_owned()),
        Just("abcdefghijklmnopqrstuvw1".to_owned()),
        Just("<email>".to_owned()),
        Just("<home>".to_owned()),
        "[a-f0-9]{1,8}",
        "[a-zA-Z0-9@.:/\\\\_<>-]{0,8}",
        "[ \"\\\\\n\t\u{1}é\u{1F600}]{0,3}",
        ".{0,6}",
    ]
}

fn string_value() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..6).prop_map(|pieces| pieces.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        string_value().prop_map(Value::from),
        string_value().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((string_value(), inner), 0..5)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn properties() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((string_value(), json_value()), 0..8)
        .prop_map(|fields| fields.into_iter().collect())
}

/// JSON text of `v` with string tokens escaped in varied ways (`\/`, `\u00XX`, `\uXXXX`
/// surrogate pairs, spaces around the colon), as hosts other than serde_json write it.
fn write_json(v: &Value, seed: &mut u64, out: &mut String) {
    let mut coin = |n: u64| {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 33).is_multiple_of(n)
    };
    match v {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '/' if coin(2) => out.push_str("\\/"),
                    c if (c as u32) < 0x20 || coin(5) => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            out.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, seed, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(&Value::String(k.clone()), seed, out);
                out.push_str(if seed.is_multiple_of(3) { " : " } else { ":" });
                write_json(item, seed, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `scrubbed` has the shape of `original` (keys, non-string values, lengths), and each of its
/// strings is `original`'s scrubbed alone.
fn same_shape(s: &Scrubber, original: &Value, scrubbed: &Value) -> Result<(), String> {
    match (original, scrubbed) {
        (Value::String(a), Value::String(b)) => {
            let (alone, _) = s.scrub_str(a);
            if alone != b.as_str() {
                return Err(format!("{a:?} became {b:?} in JSON but {alone:?} alone"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (x, y) in a.iter().zip(b) {
                same_shape(s, x, y)?;
            }
        }
        (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
            for ((ka, x), (kb, y)) in a.iter().zip(b) {
                if ka != kb {
                    return Err(format!("key {ka:?} became {kb:?}"));
                }
                same_shape(s, x, y)?;
            }
        }
        (a, b) if a == b => {}
        (a, b) => return Err(format!("{a} became {b}")),
    }
    Ok(())
}

fn check(text: &str) -> Result<(), String> {
    let original: Value = serde_json::from_str(text).map_err(|e| format!("test input: {e}"))?;
    for s in scrubbers() {
        let (out, n) = s.scrub_json(text);
        let value: Value = serde_json::from_str(&out)
            .map_err(|e| format!("not JSON after scrubbing ({e}): {out}"))?;
        same_shape(&s, &original, &value).map_err(|e| format!("{e}\nin {text}\n-> {out}"))?;
        match (&out, n) {
            (Cow::Borrowed(_), 0) => {}
            (Cow::Owned(o), n) if n > 0 && o != text => {}
            _ => return Err(format!("{n} replacements, but {text} -> {out}")),
        }
        let (again, m) = s.scrub_json(&out);
        if m != 0 || again != out {
            return Err(format!("a second scrub changed {out} into {again} ({m})"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn scrubbed_json_keeps_its_shape_and_is_stable(props in properties(), seed in any::<u64>()) {
        let mut text = String::new();
        let mut seed = seed;
        write_json(&Value::Object(props), &mut seed, &mut text);
        if let Err(e) = check(&text) {
            prop_assert!(false, "{}", e);
        }
    }

    #[test]
    fn a_scrubbed_string_is_stable(text in string_value()) {
        for s in scrubbers() {
            let (once, n) = s.scrub_str(&text);
            prop_assert_eq!(n == 0, once == text.as_str());
            let (twice, m) = s.scrub_str(&once);
            prop_assert_eq!((twice.as_ref(), m), (once.as_ref(), 0));
        }
    }
}

#[test]
fn the_corpus() {
    for (name, bytes) in fuzz::corpus("scrub") {
        let text = String::from_utf8(bytes).unwrap();
        if let Err(e) = check(text.trim_end()) {
            panic!("{name}: {e}");
        }
    }
}
