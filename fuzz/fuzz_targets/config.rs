//! The configuration `tel_init` reads (`Config::from_json`): any text. An acceptance is a
//! configuration the contract allows; a refusal is `TEL_ERR_INVALID_CONFIG` with a short
//! message that never carries the full key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tel::internals::ikey::InstrumentationKey;
use tel::{Config, Status};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // tel_init refuses invalid UTF-8 before parsing
    };
    match Config::from_json(text) {
        Ok(c) => {
            let url = c.endpoint.url.to_ascii_lowercase();
            assert!(
                url.starts_with("https://") || (url.starts_with("http://") && c.endpoint.loopback),
                "clear text off loopback: {}",
                c.endpoint.url
            );
            assert!(!c.ikey.tenant().is_empty());
            assert!(c.batch_max_events >= 1 && c.queue_max_events >= 1);
            assert!(c.retry_max_ms >= c.retry_initial_ms && c.retry_initial_ms >= 1);
            assert!(c.http_timeout_ms >= 1 && c.retry_max_attempts >= 1);
        }
        Err(e) => {
            assert_eq!(e.status, Status::InvalidConfig, "{}", e.message);
            assert!(!e.message.is_empty());
            assert!(
                e.message.len() <= 1024,
                "message of {} bytes",
                e.message.len()
            );
            // A well-formed key of some length is never echoed, whatever field it is in.
            let key = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("ikey")?.as_str().map(str::to_owned));
            if let Some(key) = key.filter(|k| k.len() >= 16) {
                if InstrumentationKey::parse(&key).is_ok() {
                    assert!(!e.message.contains(&key), "the key leaked: {}", e.message);
                }
            }
        }
    }
});
