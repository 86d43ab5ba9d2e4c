//! What must hold of the parsers that read outside data, whatever the input: written once for
//! the property tests (tests/fuzz_*.rs) and the libFuzzer targets (fuzz/, which include this
//! file), so that both kinds of fuzzing check the same contract.

use tel::internals::backoff::MAX_RETRY_AFTER;
use tel::internals::envelope::check_name;
use tel::internals::ikey::InstrumentationKey;
use tel::internals::kill::MAX_KILL_SECONDS;
use tel::internals::response::{
    classify, directives, refused_events, HttpResponse, Refused, Verdict,
};
use tel::{Config, Status};

// ---------- configuration ----------

/// Any configuration text: no panic; a refusal is INVALID_CONFIG with a short message that
/// never carries `full_key`; an acceptance is a configuration the contract allows.
pub fn check_config(text: &str, full_key: Option<&str>) {
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
            if let Some(k) = full_key {
                assert!(!e.message.contains(k), "the key leaked: {}", e.message);
            }
        }
    }
}

/// The well-formed full key of a configuration text's `ikey`, when it has one of some length:
/// the key a refusal must not echo, whatever field it is in.
pub fn full_key_in(text: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("ikey")?.as_str().map(str::to_owned))
        .filter(|k| k.len() >= 16 && InstrumentationKey::parse(k).is_ok())
}

// ---------- event names ----------

/// A refused name is quoted at most 100 characters, each at most 10 bytes once escaped
/// (`\u{10ffff}`), so the message stays bounded whatever the name.
pub const NAME_MESSAGE_MAX: usize = 1200;

/// The rule of protocol.md, written independently of the library's.
pub fn name_is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    (4..=100).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `check_name` follows the rule; a refusal is INVALID_EVENT with a bounded message.
pub fn check_event_name(name: &str) {
    let r = check_name(name);
    assert_eq!(r.is_ok(), name_is_valid(name), "{name:?}");
    if let Err(e) = r {
        assert_eq!(e.status, Status::InvalidEvent);
        assert!(e.message.len() < NAME_MESSAGE_MAX, "{}", e.message.len());
    }
}

// ---------- responses ----------

/// Any answer: the verdict its status calls for, and every directive within its documented
/// bounds.
pub fn check_response(r: &HttpResponse) {
    let verdict = classify(&Ok(r.clone()));
    match r.status {
        200..=299 => {
            let Verdict::Accepted(refused) = &verdict else {
                panic!("{} gave {verdict:?}", r.status)
            };
            assert_eq!(refused, &refused_events(&r.body));
        }
        413 => assert_eq!(verdict, Verdict::Split),
        408 | 429 | 500..=599 | 100..=199 | 300..=399 => {
            let Verdict::Retry { retry_after } = verdict else {
                panic!("{} gave {verdict:?}", r.status)
            };
            assert!(retry_after.is_none_or(|d| d <= MAX_RETRY_AFTER));
        }
        _ => assert_eq!(verdict, Verdict::Rejected, "{}", r.status),
    }

    let d = directives(r);
    if let Some(k) = &d.kill {
        assert!((1..=MAX_KILL_SECONDS).contains(&k.seconds), "{k:?}");
        assert!(!k.tenants.is_empty());
        for t in &k.tenants {
            assert!(!t.is_empty() && t.len() <= 256, "{t:?}");
            assert!(!t.contains(':') && !t.contains(',') && !t.chars().any(char::is_control));
        }
    }
    if let Some(v) = r.header("time-delta-millis") {
        assert_eq!(d.time_delta_ms, v.trim().parse::<i64>().ok());
    }

    check_refused(&r.body);
    assert!(r.body_excerpt().chars().all(|c| c != '\n' && c != '\r'));
}

/// `efi` indices come back sorted, deduplicated; counting them never exceeds the batch.
pub fn check_refused(body: &[u8]) -> Refused {
    let r = refused_events(body);
    if let Refused::Some(v) = &r {
        assert!(!v.is_empty());
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
    }
    for n in [0usize, 1, 7, 500] {
        assert!(r.count(n) <= n);
    }
    r
}
