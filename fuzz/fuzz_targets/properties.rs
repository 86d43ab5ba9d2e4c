//! What `tel_log` reads from the host besides the configuration: the event name
//! (`check_name`) and the properties (`check_properties`), any text. The name check equals an
//! independent implementation of the rule; accepted properties are exactly the JSON objects
//! serde_json (the collector's and the cache reader's parser) reads, within the nesting limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tel::envelope::{check_name, check_properties, MAX_DEPTH};
use tel::Status;

/// The rule of protocol.md, written independently of the library's.
fn name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    (4..=100).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the C ABI refuses invalid UTF-8 before these checks
    };
    let name = check_name(text);
    assert_eq!(name.is_ok(), name_is_valid(text), "{text:?}");
    if let Err(e) = name {
        assert_eq!(e.status, Status::InvalidEvent);
        // At most 100 characters quoted, each at most 10 bytes escaped (`\u{10ffff}`).
        assert!(e.message.len() < 1200, "{}", e.message.len());
    }

    let accepted = check_properties(text);
    // serde_json stops at 128 levels; MAX_DEPTH is below that, so its verdict is the oracle.
    let expected =
        serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object() && depth(&v) <= MAX_DEPTH);
    assert_eq!(accepted.is_ok(), expected, "{:.300}", text);
    if let Err(e) = accepted {
        assert_eq!(e.status, Status::InvalidEvent);
        assert!(e.message.len() < 1024, "{}", e.message.len());
    }
});
