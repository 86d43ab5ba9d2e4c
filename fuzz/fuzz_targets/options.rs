//! The per-event options of `tel_log_ex` (`EventOptions::from_json`), any text. A refusal is
//! `TEL_ERR_INVALID_EVENT` with a bounded message; an accepted `time` is a representable
//! envelope time, and a string `time` in the envelope's own form gives the instant the
//! envelope's parser reads from it; every accepted `ext` field is valid JSON for the envelope.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tel::internals::clock::{iso8601, parse_iso8601};
use tel::{EventOptions, Status};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // the C ABI refuses invalid UTF-8 before parsing
    };
    match EventOptions::from_json(text) {
        Ok(o) => {
            let v: Value = serde_json::from_str(text).expect("accepted, so JSON");
            let map = v.as_object().expect("accepted, so an object");
            assert!(map
                .keys()
                .all(|k| ["time", "priority", "ext"].contains(&k.as_str())));
            if let Some(t) = o.time_ms {
                let shown = iso8601(t);
                assert_eq!(parse_iso8601(&shown), Some(t));
                if let Some(Value::String(s)) = map.get("time") {
                    // Same second as given; the envelope's canonical form reads back the same.
                    assert_eq!(&shown[..19], &s[..19], "{s:?}");
                    if let Some(canonical) = parse_iso8601(s) {
                        assert_eq!(canonical, t, "{s:?}");
                    }
                }
            } else {
                assert!(!map.contains_key("time"));
            }
            for (ext, field, json) in o.ext_fields() {
                serde_json::from_str::<Value>(json)
                    .unwrap_or_else(|e| panic!("ext.{ext}.{field} = {json} ({e})"));
            }
        }
        Err(e) => {
            assert_eq!(e.status, Status::InvalidEvent, "{}", e.message);
            assert!(e.message.len() < 1024, "{} bytes", e.message.len());
        }
    }
});
