//! Per-event options of `tel_log_ex` (abi.md, "1.1: Per-event options"): the event's own
//! `time`, its `priority`, and per-event `ext` fields (the session's allow-list plus the
//! distributed-trace context `dt` and the exception `ex` of protocol.md).
//!
//! Parsed once, on the caller's thread, before anything is queued; every refusal names the key.

pub use crate::model::ext::ExtField;
use crate::model::ext::{has_scope_prefix, DOCUMENTED, LOCAL_ID_PREFIXES, PER_EVENT};
pub use crate::model::priority::Priority;
use crate::model::status::{excerpt, Error, Result};
use serde_json::{Map, Value};

/// The parsed `options_json` of `tel_log_ex`. The default is "as `tel_log`".
///
/// For [`Client::log_ex`](crate::Client::log_ex): the event's own time, its priority, and its
/// own `ext` fields (merged over the client's, the trace context `dt` and the exception `ex`
/// included).
///
/// ```
/// use tel::{EventOptions, Priority, Status};
///
/// # fn main() -> Result<(), tel::Error> {
/// let options = EventOptions::from_json(
///     r#"{"time":"2026-12-01T09:30:00.125Z","priority":"critical",
///         "ext":{"dt":{"traceId":"0123456789abcdef0123456789abcdef","spanId":"0123456789abcdef"}}}"#,
/// )?;
/// assert_eq!(options.time_ms, Some(1_796_117_400_125));
/// assert_eq!(options.priority, Priority::Critical);
/// assert_eq!(options.ext_fields().count(), 2);
///
/// // From code: time and priority are public fields.
/// let mut high = EventOptions::default();
/// high.priority = Priority::High;
/// assert!(!high.is_plain());
///
/// // Every refusal names the option.
/// let e = EventOptions::from_json(r#"{"priority":"urgent"}"#).unwrap_err();
/// assert_eq!(e.status, Status::InvalidEvent);
/// assert!(e.message.contains("options.priority"), "{e}");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventOptions {
    /// The envelope's `time` in Unix ms, instead of the moment of the call.
    pub time_ms: Option<u64>,
    pub priority: Priority,
    /// Merged over the session's `ext` field by field. Set only by [`EventOptions::from_json`],
    /// which validates each field against protocol.md.
    pub(crate) ext: Vec<ExtField>,
}

/// The last instant an envelope `time` can show (9999-12-31T23:59:59.999Z).
const MAX_TIME_MS: u64 = 253_402_300_799_999;

impl EventOptions {
    /// Parses and validates `options_json` (NULL, i.e. `None`, and `{}` both mean "as
    /// `tel_log`"). Unknown keys, wrong types and bad values are [`crate::Status::InvalidEvent`]
    /// with a message naming the key.
    pub fn from_json(text: &str) -> Result<EventOptions> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            Error::event(format!(
                "options_json must be a JSON object, e.g. {{\"priority\":\"high\"}}: {e}"
            ))
        })?;
        let Value::Object(map) = value else {
            return Err(Error::event(
                "options_json must be a JSON object, e.g. {\"priority\":\"high\"}",
            ));
        };
        let mut options = EventOptions::default();
        for (key, v) in &map {
            match key.as_str() {
                "time" => options.time_ms = Some(parse_time(v)?),
                "priority" => options.priority = parse_priority(v)?,
                "ext" => options.ext = parse_ext(v)?,
                other => {
                    return Err(Error::event(format!(
                        "options.{} is not a known option (known: time, priority, ext)",
                        excerpt(other)
                    )))
                }
            }
        }
        Ok(options)
    }

    /// Each accepted per-event `ext` field as (extension, field, JSON value), e.g.
    /// `("dt", "traceId", "\"4bf9…\"")`.
    pub fn ext_fields(&self) -> impl Iterator<Item = (&'static str, &'static str, &str)> {
        self.ext.iter().map(|f| (f.ext, f.field, f.json.as_str()))
    }

    /// True when the options change nothing of `tel_log`'s behaviour.
    pub fn is_plain(&self) -> bool {
        self.time_ms.is_none() && self.priority == Priority::Normal && self.ext.is_empty()
    }
}

fn parse_time(v: &Value) -> Result<u64> {
    let bad = || {
        Error::event(
            "options.time must be an RFC 3339 UTC time ending in Z, e.g. \"2026-12-01T09:30:00.125Z\", or an integer of Unix milliseconds between 0 and 253402300799999",
        )
    };
    match v {
        Value::Number(n) => n.as_u64().filter(|ms| *ms <= MAX_TIME_MS).ok_or_else(bad),
        Value::String(s) => parse_rfc3339_utc(s).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, years 1970 to 9999. The fraction may have any number of
/// digits; what is below a millisecond is dropped. A 60th (leap) second and numeric offsets are
/// refused: the envelope cannot show the first, and the contract asks for UTC with `Z`.
pub fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || *b.last()? != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        let part = s.get(from..to)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let mut ms = 0;
    if b.len() > 20 {
        // ".ddd...Z"
        let frac = s.get(19..s.len() - 1)?;
        let digits = frac.strip_prefix('.')?;
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let first3: String = digits.chars().chain("000".chars()).take(3).collect();
        ms = first3.parse().ok()?;
    }
    let second = num(17, 19).filter(|s| *s < 60)?;
    crate::sys::clock::to_unix_ms(
        num(0, 4)? as i64,
        num(5, 7)?,
        num(8, 10)?,
        num(11, 13)?,
        num(14, 16)?,
        second,
        ms,
    )
}

fn parse_priority(v: &Value) -> Result<Priority> {
    match v.as_str() {
        Some("normal") => Ok(Priority::Normal),
        Some("high") => Ok(Priority::High),
        Some("critical") => Ok(Priority::Critical),
        _ => Err(Error::event(format!(
            "options.priority must be \"normal\", \"high\" or \"critical\", got {}",
            excerpt(&v.to_string())
        ))),
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn parse_ext(v: &Value) -> Result<Vec<ExtField>> {
    let Value::Object(exts) = v else {
        return Err(Error::event(
            "options.ext must be an object of extensions, e.g. {\"dt\":{\"traceId\":\"...\"}}",
        ));
    };
    let mut out = Vec::new();
    for (ext_name, fields) in exts {
        if ext_name == "sdk" {
            return Err(Error::event(
                "options.ext.sdk is filled by the library itself and cannot be given",
            ));
        }
        let Some(&(ext, allowed)) = DOCUMENTED
            .iter()
            .chain(PER_EVENT.iter())
            .find(|(n, _)| n == ext_name)
        else {
            return Err(Error::event(format!(
                "options.ext.{} is not a documented Common Schema 4.0 extension (documented: {})",
                excerpt(ext_name),
                DOCUMENTED
                    .iter()
                    .chain(PER_EVENT.iter())
                    .map(|(n, _)| *n)
                    .filter(|n| *n != "sdk")
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Value::Object(given) = fields else {
            return Err(Error::event(format!("options.ext.{ext} must be an object")));
        };
        parse_fields(ext, allowed, given, &mut out)?;
    }
    Ok(out)
}

fn parse_fields(
    ext: &'static str,
    allowed: &'static [&'static str],
    given: &Map<String, Value>,
    out: &mut Vec<ExtField>,
) -> Result<()> {
    for (name, v) in given {
        let Some(&field) = allowed.iter().find(|f| *f == name) else {
            return Err(Error::event(format!(
                "options.ext.{ext}.{} is not a documented Common Schema 4.0 field (ext.{ext} allows: {})",
                excerpt(name),
                allowed.join(", ")
            )));
        };
        let key = format!("options.ext.{ext}.{field}");
        let json = match (ext, field) {
            ("dt", "traceFlags") => match v.as_u64() {
                Some(n) if n <= 255 => n.to_string(),
                _ => {
                    return Err(Error::event(format!(
                        "{key} must be an integer from 0 to 255"
                    )))
                }
            },
            ("dt", "traceId") | ("dt", "spanId") => {
                let len = if field == "traceId" { 32 } else { 16 };
                match v.as_str() {
                    Some(s) if is_lower_hex(s, len) => crate::model::ext::json_string(s),
                    _ => {
                        return Err(Error::event(format!(
                            "{key} must be a string of {len} lowercase hexadecimal digits"
                        )))
                    }
                }
            }
            _ => {
                let Some(s) = v.as_str() else {
                    return Err(Error::event(format!("{key} must be a string")));
                };
                if (ext, field) == ("device", "localId") && !has_scope_prefix(s) {
                    return Err(Error::event(format!(
                        "{key} must carry a scope prefix ({}), e.g. \"r:<uuid>\"",
                        LOCAL_ID_PREFIXES.join(" ")
                    )));
                }
                crate::model::ext::json_string(s)
            }
        };
        out.push(ExtField { ext, field, json });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_as_tel_log() {
        assert!(EventOptions::from_json("{}").unwrap().is_plain());
        assert!(EventOptions::from_json(" { } ").unwrap().is_plain());
    }

    #[test]
    fn times() {
        let t = |s: &str| EventOptions::from_json(s).map(|o| o.time_ms);
        assert_eq!(
            t(r#"{"time":"2026-12-01T09:30:00.125Z"}"#).unwrap(),
            Some(1_796_117_400_125)
        );
        assert_eq!(
            t(r#"{"time":"2026-12-01T09:30:00Z"}"#).unwrap(),
            Some(1_796_117_400_000)
        );
        assert_eq!(
            t(r#"{"time":"2026-12-01T09:30:00.1256789Z"}"#).unwrap(),
            Some(1_796_117_400_125)
        );
        assert_eq!(
            t(r#"{"time":"2026-12-01T09:30:00.5Z"}"#).unwrap(),
            Some(1_796_117_400_500)
        );
        assert_eq!(t(r#"{"time":0}"#).unwrap(), Some(0));
        assert_eq!(
            t(r#"{"time":1796117400125}"#).unwrap(),
            Some(1_796_117_400_125)
        );
        for bad in [
            r#"{"time":"2026-12-01T09:30:00+00:00"}"#,
            r#"{"time":"2026-12-01 09:30:00Z"}"#,
            r#"{"time":"2026-12-01T09:30:60Z"}"#,
            r#"{"time":"2026-02-30T09:30:00Z"}"#,
            r#"{"time":"2026-12-01T09:30:00.Z"}"#,
            r#"{"time":"1969-12-31T23:59:59Z"}"#,
            r#"{"time":-1}"#,
            r#"{"time":1.5}"#,
            r#"{"time":253402300800000}"#,
            r#"{"time":true}"#,
            r#"{"time":"2026-12-01T09:30:00.12éZ"}"#,
        ] {
            let e = t(bad).unwrap_err();
            assert!(e.message.contains("options.time"), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn priorities_and_unknown_keys() {
        let p = |s: &str| EventOptions::from_json(s).map(|o| o.priority);
        assert_eq!(p(r#"{"priority":"high"}"#).unwrap(), Priority::High);
        assert_eq!(p(r#"{"priority":"critical"}"#).unwrap(), Priority::Critical);
        assert_eq!(p(r#"{"priority":"normal"}"#).unwrap(), Priority::Normal);
        for (bad, word) in [
            (r#"{"priority":"urgent"}"#, "options.priority"),
            (r#"{"priority":2}"#, "options.priority"),
            (r#"{"colour":1}"#, "options.colour"),
            ("[]", "JSON object"),
            ("{", "JSON object"),
        ] {
            let e = EventOptions::from_json(bad).unwrap_err();
            assert!(e.message.contains(word), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn ext_fields() {
        let o = EventOptions::from_json(
            r#"{"ext":{"dt":{"traceId":"0123456789abcdef0123456789abcdef","spanId":"0123456789abcdef","traceFlags":1},
                "ex":{"type":"E","msg":"m","stack":"s"},"app":{"ver":"2"}}}"#,
        )
        .unwrap();
        assert_eq!(o.ext.len(), 7);
        for (bad, word) in [
            (r#"{"ext":{"sdk":{"seq":"1"}}}"#, "options.ext.sdk"),
            (
                r#"{"ext":{"dt":{"traceId":"ABC"}}}"#,
                "options.ext.dt.traceId",
            ),
            (
                r#"{"ext":{"dt":{"traceId":"0123456789ABCDEF0123456789abcdef"}}}"#,
                "options.ext.dt.traceId",
            ),
            (
                r#"{"ext":{"dt":{"spanId":"0123"}}}"#,
                "options.ext.dt.spanId",
            ),
            (
                r#"{"ext":{"dt":{"traceFlags":256}}}"#,
                "options.ext.dt.traceFlags",
            ),
            (
                r#"{"ext":{"dt":{"traceFlags":"1"}}}"#,
                "options.ext.dt.traceFlags",
            ),
            (r#"{"ext":{"dt":{"parent":"x"}}}"#, "options.ext.dt.parent"),
            (r#"{"ext":{"ex":{"msg":5}}}"#, "options.ext.ex.msg"),
            (
                r#"{"ext":{"os":{"release":"x"}}}"#,
                "options.ext.os.release",
            ),
            (r#"{"ext":{"foo":{}}}"#, "options.ext.foo"),
            (r#"{"ext":{"dt":[]}}"#, "options.ext.dt"),
            (r#"{"ext":[]}"#, "options.ext"),
            (
                r#"{"ext":{"device":{"localId":"abc"}}}"#,
                "options.ext.device.localId",
            ),
        ] {
            let e = EventOptions::from_json(bad).unwrap_err();
            assert!(e.message.contains(word), "{bad}: {}", e.message);
        }
    }
}
