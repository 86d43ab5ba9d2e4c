//! What `tel_log` reads from the host besides the configuration: the event name
//! (`check_name`) and the properties (`check_properties`), any text. The name check equals an
//! independent implementation of the rule; accepted properties are exactly the JSON objects
//! serde_json (the collector's and the cache reader's parser) reads, nested within the limit as
//! written (a duplicate key's deeper value counts: the envelope carries the text as given).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tel::internals::envelope::{check_name, check_properties, MAX_DEPTH};
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

/// Nesting of the text as written, strings skipped: duplicate keys count (serde_json's `Value`
/// keeps only the last of them, but the envelope carries the text as given).
fn depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for c in text.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
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
    // serde_json (which stops at 128 levels, above MAX_DEPTH) says whether it is one object;
    // the nesting counts every value as written, duplicates included.
    let expected = serde_json::from_str::<Value>(text).is_ok_and(|v| v.is_object())
        && depth(text) <= MAX_DEPTH;
    assert_eq!(accepted.is_ok(), expected, "{:.300}", text);
    if let Err(e) = accepted {
        assert_eq!(e.status, Status::InvalidEvent);
        assert!(e.message.len() < 1024, "{}", e.message.len());
    }
});
