//! What the collector's answer means: the one place the response policy is written down.

use crate::policy::backoff::MAX_RETRY_AFTER;
use crate::policy::kill::{parse_directive, KillDirective};
use crate::transport::reply::{HttpResponse, NetworkError};
use std::time::Duration;

/// Which events of an accepted request the collector refused (`efi`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    None,
    All,
    /// Zero-based indices within the request, deduplicated and in range.
    Some(Vec<usize>),
}

impl Refused {
    /// Whether the event at `index` of the request was refused.
    pub fn includes(&self, index: usize) -> bool {
        match self {
            Refused::None => false,
            Refused::All => true,
            Refused::Some(v) => v.contains(&index),
        }
    }

    pub fn count(&self, batch_len: usize) -> usize {
        match self {
            Refused::None => 0,
            Refused::All => batch_len,
            Refused::Some(v) => v.iter().filter(|i| **i < batch_len).count(),
        }
    }
}

/// `all`, the indices (`[0, 2]`), or nothing.
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::None => Ok(()),
            Refused::All => f.write_str("all"),
            Refused::Some(v) => write!(f, "{v:?}"),
        }
    }
}

/// The decision for a batch after one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx: delivered, except the events `efi` names.
    Accepted(Refused),
    /// Worth another attempt after backoff; `retry_after` is the collector's floor.
    Retry { retry_after: Option<Duration> },
    /// 413: too large; send each half on its own (a single event is rejected).
    Split,
    /// Refused for good: not retried, not cached.
    Rejected,
}

/// The response policy.
///
/// - **2xx**: accepted. A body `{"acc":N,"rej":R,"efi":{reason: "all" | [indices]}}` names the
///   refused events by index within the request, or all of them; those count as `rejected`,
///   the rest as `sent`. An unreadable body on a 2xx counts everything as sent.
/// - **408, 429, 5xx**, and any network failure (refused or reset connection, timeout, TLS
///   failure, garbage instead of HTTP): retried with exponential backoff and full jitter,
///   at most `retry_max_attempts` attempts; then the batch goes to the on-disk cache rather
///   than being dropped. `Retry-After` (seconds or HTTP-date) is a floor on the next attempt,
///   capped at one hour.
/// - **413**: the batch is split in halves that are sent on their own; a single event that
///   still gets 413 is rejected.
/// - **every other 4xx**: rejected, not retried, not cached: the same bytes would be refused
///   again, and caching them only repeats the failure in the next process.
/// - **1xx and 3xx** (redirects are not followed, so the key never goes elsewhere): retried,
///   as a misrouted request says nothing about the events.
///
/// Kill directives (`kill-tokens`) are read from every response whatever its status; see
/// [`directives`]. What the worker then does with the batch and the backoff is
/// `policy::decide::decide`'s.
pub fn classify(result: &Result<HttpResponse, NetworkError>) -> Verdict {
    classify_at(result, crate::sys::clock::now_ms())
}

/// [`classify`] at the instant `now_ms` (Unix ms), which an HTTP-date `Retry-After` is
/// counted from.
pub fn classify_at(result: &Result<HttpResponse, NetworkError>, now_ms: u64) -> Verdict {
    let r = match result {
        Err(_) => return Verdict::Retry { retry_after: None },
        Ok(r) => r,
    };
    match r.status {
        200..=299 => Verdict::Accepted(refused_events(&r.body)),
        413 => Verdict::Split,
        408 | 429 | 500..=599 | 100..=199 | 300..=399 => Verdict::Retry {
            retry_after: r
                .header("retry-after")
                .and_then(|v| retry_after_at(v, now_ms)),
        },
        _ => Verdict::Rejected,
    }
}

/// Reads `efi` from a 2xx body.
pub fn refused_events(body: &[u8]) -> Refused {
    let Ok(serde_json::Value::Object(v)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Refused::None;
    };
    let Some(serde_json::Value::Object(efi)) = v.get("efi") else {
        return Refused::None;
    };
    let mut idx: Vec<usize> = Vec::new();
    for reason in efi.values() {
        match reason {
            serde_json::Value::String(s) if s == "all" => return Refused::All,
            serde_json::Value::Array(list) => {
                idx.extend(list.iter().filter_map(|i| i.as_u64()).map(|i| i as usize))
            }
            _ => {}
        }
    }
    idx.sort_unstable();
    idx.dedup();
    if idx.is_empty() {
        Refused::None
    } else {
        Refused::Some(idx)
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date, capped at [`MAX_RETRY_AFTER`] (a number of
/// seconds too large for any integer type is capped too, not ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    retry_after_at(v, crate::sys::clock::now_ms())
}

/// [`parse_retry_after`] at the instant `now_ms` (Unix ms): an HTTP-date in the past is no wait.
pub fn retry_after_at(v: &str, now_ms: u64) -> Option<Duration> {
    let v = v.trim();
    let d = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<u64>()
            .map_or(MAX_RETRY_AFTER, Duration::from_secs)
    } else {
        let at = crate::sys::clock::parse_http_date(v)?;
        Duration::from_millis(at.saturating_sub(now_ms))
    };
    Some(d.min(MAX_RETRY_AFTER))
}

/// The directives a response carries besides its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directives {
    pub kill: Option<KillDirective>,
    /// `time-delta-millis`: server time minus client time, echoed later as
    /// `time-delta-to-apply-millis`.
    pub time_delta_ms: Option<i64>,
}

pub fn directives(r: &HttpResponse) -> Directives {
    Directives {
        kill: parse_directive(
            r.header("kill-tokens"),
            r.header("kill-duration")
                .or_else(|| r.header("kill-duration-seconds")),
        ),
        time_delta_ms: r
            .header("time-delta-millis")
            .and_then(|v| v.trim().parse::<i64>().ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<HttpResponse, NetworkError> {
        Ok(HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn status_classes() {
        assert_eq!(
            classify(&resp(200, &[], r#"{"acc":2}"#)),
            Verdict::Accepted(Refused::None)
        );
        assert_eq!(
            classify(&resp(204, &[], "")),
            Verdict::Accepted(Refused::None)
        );
        for s in [408, 429, 500, 502, 503, 599, 301] {
            assert!(
                matches!(classify(&resp(s, &[], "")), Verdict::Retry { .. }),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 415, 499] {
            assert_eq!(classify(&resp(s, &[], "")), Verdict::Rejected, "{s}");
        }
        assert_eq!(classify(&resp(413, &[], "")), Verdict::Split);
        assert!(matches!(
            classify(&Err(NetworkError("reset".into()))),
            Verdict::Retry { retry_after: None }
        ));
        assert_eq!(
            classify(&resp(503, &[("Retry-After", "2")], "")),
            Verdict::Retry {
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn efi_by_index_or_all() {
        assert_eq!(
            refused_events(br#"{"acc":1,"rej":2,"efi":{"InvalidDeviceLocalId":[2,0,9,0]}}"#),
            Refused::Some(vec![0, 2, 9])
        );
        assert_eq!(
            refused_events(br#"{"acc":0,"efi":{"X":"all"}}"#),
            Refused::All
        );
        assert_eq!(refused_events(b"garbage"), Refused::None);
    }

    /// RFC 9110 (5.6.7): a recipient accepts all three forms of an HTTP-date, and
    /// `Retry-After` may carry any. These name one instant, long past: no wait.
    #[test]
    fn retry_after_takes_every_http_date_form() {
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_retry_after(date), Some(Duration::ZERO), "{date}");
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("18446744073709551616"),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(parse_retry_after(&"9".repeat(400)), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("soon"), None);
    }
}
