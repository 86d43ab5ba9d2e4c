//! The per-envelope rules of Common Schema 4.0 as OneCollector enforces them (protocol.md).
//!
//! Pure functions, so that other tools can check an envelope without running a collector.

use serde_json::Value;

/// The documented Common Schema 4.0 extensions and their fields. Anything else under `ext`
/// makes the collector reject the whole batch.
pub const DOCUMENTED_EXT: &[(&str, &[&str])] = &[
    (
        "app",
        &[
            "id", "ver", "name", "locale", "env", "expId", "userId", "sesId", "asId",
        ],
    ),
    ("os", &["name", "ver", "locale", "bootId", "expId"]),
    (
        "device",
        &[
            "id",
            "localId",
            "authId",
            "authSecId",
            "deviceClass",
            "orgId",
            "orgAuthId",
            "make",
            "model",
            "authIdEnt",
        ],
    ),
    ("user", &["id", "localId", "authId", "locale"]),
    ("loc", &["id", "country", "timezone"]),
    ("net", &["provider", "cost", "type"]),
    ("sdk", &["ver", "epoch", "seq", "installId"]),
    (
        "cloud",
        &[
            "fullEnvName",
            "location",
            "environment",
            "deploymentUnit",
            "name",
            "roleInstance",
            "role",
        ],
    ),
    ("dt", &["traceId", "spanId", "traceFlags"]),
    ("ex", &["type", "msg", "stack"]),
];

/// Scope prefixes that `ext.device.localId` must start with.
pub const LOCAL_ID_PREFIXES: &[&str] = &["c:", "r:", "u:", "a:", "s:", "x:", "i:"];

/// The Common Schema version every envelope must carry in `ver`.
pub const SCHEMA_VERSION: &str = "4.0";

/// The tenant token of a full instrumentation key: the part before its first `-`.
///
/// `None` for a key without `-` or with an empty tenant token: the collector answers such a key
/// with 401 `Invalid Tenant Token`.
pub fn tenant_of(key: &str) -> Option<&str> {
    match key.split_once('-') {
        Some((tenant, _)) if !tenant.is_empty() => Some(tenant),
        _ => None,
    }
}

/// The envelope `iKey` that goes with a full instrumentation key: `o:` + its tenant token.
///
/// The full key belongs in the `x-apikey` header only; an envelope carrying it is refused.
pub fn envelope_ikey(key: &str) -> Option<String> {
    tenant_of(key).map(|tenant| format!("o:{tenant}"))
}

/// Whether `name` is a valid event name: 4 to 100 characters of `[A-Za-z0-9_.]`, starting and
/// ending with a letter or digit.
pub fn is_valid_event_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (4..=100).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Whether `time` is exactly `YYYY-MM-DDTHH:MM:SS.sssZ` and names a real instant (UTC,
/// millisecond precision, a valid calendar date).
pub fn is_valid_time(time: &str) -> bool {
    let b = time.as_bytes();
    if b.len() != 24 {
        return false;
    }
    let layout = b"dddd-dd-ddTdd:dd:dd.dddZ";
    let shape_ok = layout.iter().zip(b).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        other => other == got,
    });
    if !shape_ok {
        return false;
    }
    let num = |from: usize, to: usize| -> u32 {
        b[from..to]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (num(0, 4), num(5, 7), num(8, 10));
    let (hour, minute, second) = (num(11, 13), num(14, 16), num(17, 19));
    year >= 1
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// Whether `local_id` carries one of the scope prefixes of [`LOCAL_ID_PREFIXES`] followed by
/// a non-empty identifier.
pub fn is_valid_local_id(local_id: &str) -> bool {
    LOCAL_ID_PREFIXES
        .iter()
        .any(|prefix| local_id.len() > prefix.len() && local_id.starts_with(prefix))
}

/// Checks `ext` against [`DOCUMENTED_EXT`], and the values of the per-event extensions `dt` and
/// `ex` (see [`check_ext_value`]); the error names the first offending field, e.g.
/// `ext.os.release is not a documented Common Schema 4.0 field`.
pub fn check_ext(ext: &Value) -> Result<(), String> {
    let Some(extensions) = ext.as_object() else {
        return Err("ext must be a JSON object".to_string());
    };
    for (extension, fields) in extensions {
        let Some((_, documented)) = DOCUMENTED_EXT.iter().find(|(name, _)| name == extension)
        else {
            return Err(format!(
                "ext.{extension} is not a documented Common Schema 4.0 extension"
            ));
        };
        let Some(fields) = fields.as_object() else {
            return Err(format!("ext.{extension} must be a JSON object"));
        };
        if let Some(field) = fields.keys().find(|f| !documented.contains(&f.as_str())) {
            return Err(format!(
                "ext.{extension}.{field} is not a documented Common Schema 4.0 field"
            ));
        }
        for (field, value) in fields {
            check_ext_value(extension, field, value)?;
        }
    }
    Ok(())
}

/// The value rules of the per-event extensions, as the OpenTelemetry .NET OneCollector exporter
/// sends them: `dt.traceId` 32 and `dt.spanId` 16 lowercase hex digits, `dt.traceFlags` an
/// integer 0-255; `ex.type`, `ex.msg`, `ex.stack` strings. The values of the other extensions are
/// not checked here (`device.localId` is a per-event rule of [`validate_envelope`]).
pub fn check_ext_value(extension: &str, field: &str, value: &Value) -> Result<(), String> {
    let ok = match (extension, field) {
        ("dt", "traceId") => value.as_str().is_some_and(|v| is_lower_hex(v, 32)),
        ("dt", "spanId") => value.as_str().is_some_and(|v| is_lower_hex(v, 16)),
        ("dt", "traceFlags") => value.as_u64().is_some_and(|v| v <= 255),
        ("ex", _) => value.is_string(),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let want = match (extension, field) {
        ("dt", "traceId") => "32 lowercase hex digits",
        ("dt", "spanId") => "16 lowercase hex digits",
        ("dt", _) => "an integer from 0 to 255",
        _ => "a string",
    };
    Err(format!(
        "ext.{extension}.{field} must be {want}, not {value}"
    ))
}

fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why an envelope was refused. The reasons that reject one event only are the keys of the
/// response's `efi` map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rejection {
    /// `iKey` is not `o:` + the tenant token of the request's `x-apikey`: the whole request is
    /// answered 401 `Invalid Tenant Token`.
    InvalidTenantToken,
    /// Not a JSON object, an undocumented `ext` extension or field, or a malformed `ext.dt` /
    /// `ext.ex` value: the whole batch is answered 400 `{"acc":0,"efi":{"InvalidEventFormat":"all"}}`.
    InvalidEventFormat,
    /// `ver` is not `"4.0"`.
    InvalidVersion,
    /// `name` breaks the naming rule.
    InvalidEventName,
    /// `time` is not `YYYY-MM-DDTHH:MM:SS.sssZ`.
    InvalidTime,
    /// `data` is present and not a JSON object.
    InvalidData,
    /// `ext.device.localId` lacks a scope prefix.
    InvalidDeviceLocalId,
}

/// How far a [`Rejection`] reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// The whole request is refused with 401.
    Request,
    /// The whole batch is refused with 400 and `efi` `"all"`.
    Batch,
    /// This event alone is refused; the others may be accepted.
    Event,
}

impl Rejection {
    /// The reason as it appears in the response's `efi` map.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::InvalidTenantToken => "InvalidTenantToken",
            Rejection::InvalidEventFormat => "InvalidEventFormat",
            Rejection::InvalidVersion => "InvalidVersion",
            Rejection::InvalidEventName => "InvalidEventName",
            Rejection::InvalidTime => "InvalidTime",
            Rejection::InvalidData => "InvalidData",
            Rejection::InvalidDeviceLocalId => "InvalidDeviceLocalId",
        }
    }

    /// How much of the request this rejection takes down.
    pub fn reach(self) -> Reach {
        match self {
            Rejection::InvalidTenantToken => Reach::Request,
            Rejection::InvalidEventFormat => Reach::Batch,
            _ => Reach::Event,
        }
    }
}

/// A refused envelope: the reason and a sentence naming the offending field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeError {
    pub rejection: Rejection,
    pub message: String,
}

impl EnvelopeError {
    fn new(rejection: Rejection, message: impl Into<String>) -> Self {
        EnvelopeError {
            rejection,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.rejection.as_str(), self.message)
    }
}

impl std::error::Error for EnvelopeError {}

/// Validates one envelope sent with a key of tenant token `tenant`.
///
/// Reports the failure of widest reach first (a wrong `iKey` before an undocumented `ext`
/// field before a per-event fault), so that a caller folding the results of a batch answers
/// as the collector does.
pub fn validate_envelope(envelope: &Value, tenant: &str) -> Result<(), EnvelopeError> {
    use Rejection::*;
    let Some(fields) = envelope.as_object() else {
        return Err(EnvelopeError::new(
            InvalidEventFormat,
            "an envelope must be a JSON object",
        ));
    };
    let expected_ikey = format!("o:{tenant}");
    match fields.get("iKey").and_then(Value::as_str) {
        Some(ikey) if ikey == expected_ikey => {}
        Some(_) => {
            return Err(EnvelopeError::new(
                InvalidTenantToken,
                "iKey must be \"o:\" followed by the tenant token of x-apikey",
            ))
        }
        None => {
            return Err(EnvelopeError::new(
                InvalidTenantToken,
                "iKey is missing or not a string",
            ))
        }
    }
    if let Some(ext) = fields.get("ext") {
        check_ext(ext).map_err(|message| EnvelopeError::new(InvalidEventFormat, message))?;
    }
    if fields.get("ver").and_then(Value::as_str) != Some(SCHEMA_VERSION) {
        return Err(EnvelopeError::new(
            InvalidVersion,
            format!("ver must be \"{SCHEMA_VERSION}\""),
        ));
    }
    match fields.get("name").and_then(Value::as_str) {
        Some(name) if is_valid_event_name(name) => {}
        _ => {
            return Err(EnvelopeError::new(
                InvalidEventName,
                "name must be 4 to 100 characters of [A-Za-z0-9_.], starting and ending with \
                 a letter or digit",
            ))
        }
    }
    match fields.get("time").and_then(Value::as_str) {
        Some(time) if is_valid_time(time) => {}
        _ => {
            return Err(EnvelopeError::new(
                InvalidTime,
                "time must be UTC as YYYY-MM-DDTHH:MM:SS.sssZ",
            ))
        }
    }
    if fields.get("data").is_some_and(|data| !data.is_object()) {
        return Err(EnvelopeError::new(
            InvalidData,
            "data must be a JSON object",
        ));
    }
    if let Some(local_id) = envelope.pointer("/ext/device/localId") {
        if !local_id.as_str().is_some_and(is_valid_local_id) {
            return Err(EnvelopeError::new(
                InvalidDeviceLocalId,
                "ext.device.localId must start with a scope prefix (c:, r:, u:, a:, s:, x:, i:)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({"ver":"4.0","name":"WinMLCLIAction","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc",
               "ext":{"os":{"name":"Windows","ver":"10.0"},"app":{"ver":"1"},"device":{"localId":"r:123"},
                      "sdk":{"ver":"x","epoch":"e","seq":1}},
               "data":{"a":[{"b":1}]}})
    }

    fn rejection(envelope: &Value) -> Option<Rejection> {
        validate_envelope(envelope, "abc")
            .err()
            .map(|e| e.rejection)
    }

    #[test]
    fn tenant_token_is_the_part_before_the_first_dash() {
        assert_eq!(tenant_of("abc-def-ghi"), Some("abc"));
        assert_eq!(tenant_of("abc-"), Some("abc"));
        assert_eq!(tenant_of("-abc"), None);
        assert_eq!(tenant_of("abc"), None);
        assert_eq!(envelope_ikey("abc-def").as_deref(), Some("o:abc"));
    }

    #[test]
    fn event_names() {
        for ok in ["abcd", "a_b.c1", "Z234", &"x".repeat(100)] {
            assert!(is_valid_event_name(ok), "{ok}");
        }
        for bad in [
            "abc",
            "_abc",
            "abc.",
            "ab-cd",
            "ab cd",
            "",
            &"x".repeat(101),
            "abcé",
        ] {
            assert!(!is_valid_event_name(bad), "{bad}");
        }
    }

    #[test]
    fn times() {
        for ok in [
            "2026-05-07T03:09:12.345Z",
            "2024-02-29T23:59:59.999Z",
            "2000-02-29T00:00:00.000Z",
        ] {
            assert!(is_valid_time(ok), "{ok}");
        }
        for bad in [
            "2026-05-07T03:09:12Z",
            "2026-05-07T03:09:12.345",
            "2026-05-07T03:09:12.345+00:00",
            "2026-05-07T03:09:12.3456Z",
            "2026-05-07 03:09:12.345Z",
            "2025-02-29T00:00:00.000Z",
            "1900-02-29T00:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-04-31T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T00:60:00.000Z",
            "2026-01-01T00:00:60.000Z",
            "0000-01-01T00:00:00.000Z",
        ] {
            assert!(!is_valid_time(bad), "{bad}");
        }
    }

    #[test]
    fn local_ids() {
        assert!(is_valid_local_id("r:5b1f"));
        assert!(is_valid_local_id("i:x"));
        assert!(!is_valid_local_id("r:"));
        assert!(!is_valid_local_id("5b1f0a"));
        assert!(!is_valid_local_id("z:5b1f"));
    }

    #[test]
    fn a_good_envelope_passes() {
        assert_eq!(rejection(&good()), None);
        let mut no_optional = good();
        no_optional.as_object_mut().unwrap().remove("ext");
        no_optional.as_object_mut().unwrap().remove("data");
        assert_eq!(rejection(&no_optional), None);
    }

    #[test]
    fn each_rule_names_its_reason() {
        let cases = [
            ("/iKey", json!("o:abc-def"), Rejection::InvalidTenantToken),
            ("/iKey", json!("abc"), Rejection::InvalidTenantToken),
            ("/ver", json!("3.0"), Rejection::InvalidVersion),
            ("/ver", json!(4.0), Rejection::InvalidVersion),
            ("/name", json!("abc"), Rejection::InvalidEventName),
            (
                "/time",
                json!("2026-05-07T03:09:12Z"),
                Rejection::InvalidTime,
            ),
            ("/data", json!([1]), Rejection::InvalidData),
            (
                "/ext/device/localId",
                json!("abcdef"),
                Rejection::InvalidDeviceLocalId,
            ),
            (
                "/ext/device/localId",
                json!(5),
                Rejection::InvalidDeviceLocalId,
            ),
            ("/ext/os/release", json!("x"), Rejection::InvalidEventFormat),
            ("/ext/app/initTs", json!("x"), Rejection::InvalidEventFormat),
            ("/ext/custom", json!({}), Rejection::InvalidEventFormat),
            ("/ext/os", json!("Windows"), Rejection::InvalidEventFormat),
        ];
        for (path, value, want) in cases {
            let mut envelope = good();
            let (parent, leaf) = path.rsplit_once('/').unwrap();
            envelope
                .pointer_mut(if parent.is_empty() { "" } else { parent })
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(leaf.to_string(), value.clone());
            assert_eq!(rejection(&envelope), Some(want), "{path} = {value}");
        }
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("iKey");
        assert_eq!(rejection(&missing), Some(Rejection::InvalidTenantToken));
        assert_eq!(rejection(&json!([1])), Some(Rejection::InvalidEventFormat));
    }

    #[test]
    fn ext_errors_name_the_field() {
        let err = check_ext(&json!({"os":{"name":"x","release":"y"}})).unwrap_err();
        assert_eq!(
            err,
            "ext.os.release is not a documented Common Schema 4.0 field"
        );
        let err = check_ext(&json!({"foo":{}})).unwrap_err();
        assert!(err.starts_with("ext.foo "), "{err}");
    }

    #[test]
    fn trace_context_and_exception_values() {
        let dt = |v: Value| check_ext(&json!({ "dt": v }));
        let good = json!({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","traceFlags":1});
        assert_eq!(dt(good.clone()), Ok(()));
        assert_eq!(dt(json!({"traceFlags":255})), Ok(()));
        assert_eq!(dt(json!({"traceFlags":0})), Ok(()));
        let bad = [
            ("traceId", json!("0AF7651916CD43DD8448EB211C80319C")),
            ("traceId", json!("0af7651916cd43dd8448eb211c80319")),
            ("traceId", json!("0af7651916cd43dd8448eb211c80319cc")),
            ("traceId", json!("0af7651916cd43dd8448eb211c80319g")),
            ("traceId", json!(7)),
            ("spanId", json!("b7ad6b716920333")),
            ("spanId", json!("B7AD6B7169203331")),
            ("spanId", json!(null)),
            ("traceFlags", json!(256)),
            ("traceFlags", json!(-1)),
            ("traceFlags", json!(1.0)),
            ("traceFlags", json!("1")),
        ];
        for (field, value) in bad {
            let mut dt_value = good.clone();
            dt_value[field] = value.clone();
            let err = dt(dt_value).unwrap_err();
            assert!(
                err.starts_with(&format!("ext.dt.{field} must be")),
                "{field}={value}: {err}"
            );
        }
        let ex =
            json!({"type":"System.IO.IOException","msg":"disk full","stack":"at A.B()\nat C.D()"});
        assert_eq!(check_ext(&json!({ "ex": ex })), Ok(()));
        for field in ["type", "msg", "stack"] {
            let mut bad = ex.clone();
            bad[field] = json!(1);
            let err = check_ext(&json!({ "ex": bad })).unwrap_err();
            assert_eq!(err, format!("ext.ex.{field} must be a string, not 1"));
        }
        let err = check_ext(&json!({"dt":{"traceState":"x"}})).unwrap_err();
        assert_eq!(
            err,
            "ext.dt.traceState is not a documented Common Schema 4.0 field"
        );
        let err = check_ext(&json!({"ex":{"id":"x"}})).unwrap_err();
        assert_eq!(err, "ext.ex.id is not a documented Common Schema 4.0 field");
    }

    #[test]
    fn the_widest_failure_is_reported_first() {
        let mut envelope = good();
        envelope["name"] = json!("x");
        envelope["ext"]["os"]["release"] = json!("1");
        assert_eq!(rejection(&envelope), Some(Rejection::InvalidEventFormat));
        envelope["iKey"] = json!("o:other");
        assert_eq!(rejection(&envelope), Some(Rejection::InvalidTenantToken));
    }
}
