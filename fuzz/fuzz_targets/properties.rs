//! What `tel_log` reads from the host besides the configuration: the event name
//! (`check_name`) and the properties (`check_properties`), any text. The name check equals an
//! independent implementation of the rule; accepted properties are exactly the JSON objects
//! serde_json (the collector's and the cache reader's parser) reads, nested within the limit as
//! written (a duplicate key's deeper value counts: the envelope carries the text as given).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onecollector_tel_fuzz::oracle::check_event_name;
use serde_json::Value;
use tel::envelope::{check_properties, MAX_DEPTH};
use tel::Status;

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
    check_event_name(text);

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
