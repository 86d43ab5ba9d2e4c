//! A collector's answer, as raw bytes: status line, headers, blank line, body. The harness
//! splits it the way an HTTP/1.1 client does (headers lowercased, trimmed; the body capped) and
//! hands it to the response policy, which is what this target fuzzes: `classify` (the
//! verdict), `directives` (`kill-tokens`, `kill-duration`, `time-delta-millis`),
//! `refused_events` (`efi`), `Retry-After`, the debug line's excerpt, and the time formats.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onecollector_tel_fuzz::oracle::check_response;
use tel::backoff::MAX_RETRY_AFTER;
use tel::clock::{iso8601, parse_http_date, parse_iso8601};
use tel::response::{classify, parse_retry_after, HttpResponse, NetworkError, Verdict};

/// `HTTP/1.1 503 Reason` -> 503; anything else is no status (a network error).
fn status(line: &str) -> Option<u16> {
    let mut words = line.split_ascii_whitespace();
    words.next().filter(|v| v.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

fn split(data: &[u8]) -> Result<HttpResponse, NetworkError> {
    let (head, body) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(end) => (&data[..end], &data[end + 4..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = status(lines.next().unwrap_or(""))
        .ok_or_else(|| NetworkError("no HTTP status line".into()))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(HttpResponse {
        status,
        headers,
        body: body[..body.len().min(64 * 1024)].to_vec(),
    })
}

fn check(result: &Result<HttpResponse, NetworkError>) {
    let verdict = classify(result);
    let Ok(r) = result else {
        assert_eq!(verdict, Verdict::Retry { retry_after: None });
        return;
    };
    check_response(r);
    let _ = r.collector_error();

    for (_, v) in &r.headers {
        if let Some(d) = parse_retry_after(v) {
            assert!(d <= MAX_RETRY_AFTER);
            if let Ok(secs) = v.trim().parse::<u64>() {
                assert_eq!(d.as_secs(), secs.min(MAX_RETRY_AFTER.as_secs()));
            }
        }
        if let Some(t) = parse_iso8601(v) {
            assert_eq!(&iso8601(t), v, "only the canonical form parses");
        }
        let _ = parse_http_date(v);
    }
}

fuzz_target!(|data: &[u8]| {
    check(&split(data));
});
