//! Property-based fuzzing of what the collector sends back: the status and headers
//! (`classify`, `directives`: `kill-tokens`, `kill-duration`, `Retry-After`,
//! `time-delta-millis`), response bodies (`refused_events`: `acc`/`efi`), and the time formats
//! (`parse_iso8601`, `parse_http_date`).
//!
//! `PROPTEST_CASES` random cases per target (256 by default), the checked-in corpus
//! `tests/fuzz-corpus/{headers,bodies}/` replayed every run, failures persisted to
//! `tests/fuzz-corpus/fuzz_response.regressions`. See docs/reliability.md for longer runs.

#[path = "common/fuzz/mod.rs"]
mod fuzz;

use fuzz::corpus;
use fuzz::oracle::{check_refused, check_response};
use proptest::prelude::*;
use std::time::Duration;
use tel::internals::backoff::MAX_RETRY_AFTER;
use tel::internals::clock::{iso8601, parse_http_date, parse_iso8601};
use tel::internals::kill::{parse_directive, MAX_KILL_SECONDS};
use tel::internals::response::{directives, parse_retry_after, HttpResponse, Refused};

fn settings() -> ProptestConfig {
    fuzz::settings("fuzz_response", 256)
}

/// Header values as a collector (or something pretending to be one) might send them.
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[0-9 \\-+.e]{0,25}",
        "(o:[a-z0-9]{0,6}(:[a-z]{0,4})?, ?){0,4}",
        "[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT",
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        Just("99999999999999999999999999".to_string()),
    ]
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "kill-tokens",
            "kill-duration",
            "kill-duration-seconds",
            "retry-after",
            "time-delta-millis",
            "collector-error",
            "Kill-Tokens",
            "RETRY-AFTER",
        ])
        .prop_map(str::to_string),
        "[a-z-]{1,20}",
    ]
}

fn response() -> impl Strategy<Value = HttpResponse> {
    (
        prop_oneof![0u16..1000, any::<u16>()],
        prop::collection::vec((header_name(), header_value()), 0..8),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(status, headers, body)| HttpResponse {
            status,
            headers,
            body,
        })
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn any_response(r in response()) {
        check_response(&r);
    }

    #[test]
    fn kill_directives(tokens in proptest::option::of(header_value()), duration in proptest::option::of(header_value())) {
        let d = parse_directive(tokens.as_deref(), duration.as_deref());
        if let Some(k) = d {
            prop_assert!((1..=MAX_KILL_SECONDS).contains(&k.seconds));
            // Digits only; a number past u64 is the longest window, not ignored.
            let digits = duration.unwrap().trim().to_owned();
            prop_assert!(digits.bytes().all(|b| b.is_ascii_digit()));
            let secs: u64 = digits.parse().unwrap_or(u64::MAX);
            prop_assert_eq!(k.seconds, secs.min(MAX_KILL_SECONDS));
            prop_assert!(tokens.unwrap().contains("o:"));
        }
    }

    #[test]
    fn retry_after_is_capped(v in header_value()) {
        if let Some(d) = parse_retry_after(&v) {
            prop_assert!(d <= MAX_RETRY_AFTER);
        }
        let t = v.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            let n = t.parse::<u64>().unwrap_or(u64::MAX);
            prop_assert_eq!(parse_retry_after(&v), Some(Duration::from_secs(n).min(MAX_RETRY_AFTER)));
        }
    }

    #[test]
    fn time_delta_is_an_integer_or_nothing(v in header_value()) {
        let r = HttpResponse { status: 200, headers: vec![("time-delta-millis".into(), v.clone())], body: vec![] };
        prop_assert_eq!(directives(&r).time_delta_ms, v.trim().parse::<i64>().ok());
    }

    #[test]
    fn bodies_of_any_bytes(body in prop::collection::vec(any::<u8>(), 0..200)) {
        check_refused(&body);
    }

    #[test]
    fn bodies_shaped_like_answers(
        acc in any::<i64>(),
        idx in prop::collection::vec(prop_oneof![any::<i64>().prop_map(|i| i.to_string()), Just("\"x\"".to_string()), Just("1.5".to_string()), Just("1e30".to_string())], 0..10),
        all in any::<bool>(),
        reason in "[A-Za-z]{0,10}",
    ) {
        let list = format!("[{}]", idx.join(","));
        let body = if all {
            format!(r#"{{"acc":{acc},"efi":{{"{reason}":"all"}}}}"#)
        } else {
            format!(r#"{{"acc":{acc},"rej":1,"efi":{{"{reason}":{list}}}}}"#)
        };
        let r = check_refused(body.as_bytes());
        if all {
            prop_assert_eq!(r, Refused::All);
        }
    }

    #[test]
    fn iso8601_round_trips(t in 0u64..253_402_300_799_999) {
        prop_assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
    }

    #[test]
    fn time_parsers_take_any_text(s in prop_oneof![".{0,40}", "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z", "[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"]) {
        if let Some(t) = parse_iso8601(&s) {
            prop_assert_eq!(iso8601(t), s.clone(), "only the canonical form parses");
        }
        let _ = parse_http_date(&s);
    }
}

#[test]
fn header_corpus() {
    for (path, bytes) in corpus("headers") {
        // One `name: value` per line.
        let text = String::from_utf8_lossy(&bytes);
        let headers: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        for status in [200, 204, 400, 401, 413, 429, 503, 0, 999] {
            let r = HttpResponse {
                status,
                headers: headers.clone(),
                body: Vec::new(),
            };
            let ok = std::panic::catch_unwind(|| check_response(&r));
            assert!(ok.is_ok(), "{path} with {status}");
        }
    }
}

#[test]
fn body_corpus() {
    for (path, bytes) in corpus("bodies") {
        let ok = std::panic::catch_unwind(|| check_refused(&bytes));
        assert!(ok.is_ok(), "{path}");
    }
}
