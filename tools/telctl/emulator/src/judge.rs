//! The collector's answer to one upload: the headers, the encoding, the body and every envelope
//! checked in the order OneCollector checks them (protocol.md).

use crate::decode::{decode_body, DecodeError};
use crate::validate::{tenant_of, validate_envelope, EnvelopeError, Reach};
use serde_json::Value;
use std::collections::BTreeMap;

/// The Content-Type of an upload.
pub const STREAM_CONTENT_TYPE: &str = "application/x-json-stream";

/// The body of every refusal that carries no `efi`.
const REFUSED_BODY: &str = r#"{"acc":0}"#;

/// The body of a batch refused whole.
pub const ALL_INVALID_BODY: &str = r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#;

/// What the collector makes of a request before any scripting applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// The HTTP status the real service would answer.
    pub status: u16,
    /// The `Collector-Error` header, if any.
    pub collector_error: Option<String>,
    /// The JSON response body.
    pub response_body: String,
    /// The envelopes accepted, each with the line it came from, in request order.
    pub accepted: Vec<(String, Value)>,
    /// How many events were refused.
    pub rejected: usize,
    /// The body once `Content-Encoding` is undone (empty when it could not be).
    pub body: Vec<u8>,
    /// The body's lines (a final empty line after a trailing `\n` excluded).
    pub lines: Vec<String>,
    /// Whether the full `x-apikey` value appears in the decoded body.
    pub full_key_in_body: bool,
}

impl Judgement {
    fn refuse(status: u16, error: impl Into<String>, body: &str) -> Self {
        Judgement {
            status,
            collector_error: Some(error.into()),
            response_body: body.to_string(),
            accepted: Vec::new(),
            rejected: 0,
            body: Vec::new(),
            lines: Vec::new(),
            full_key_in_body: false,
        }
    }
}

/// The first value of header `name` (matched case-insensitively).
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Judges an upload: `headers` as received, `raw_body` before decoding.
///
/// `api_keys`: when set, the only keys the collector knows. `max_body_bytes`: the bound on the
/// decoded body (413 beyond it).
///
/// Order of the checks, the first failure answering: Content-Type (415); `x-apikey` (401);
/// `Client-Id`, `sdk-version`, `Upload-Time` when present and malformed (400; they may be
/// absent); `Content-Encoding` and decoding (400, or
/// 413 when too large); the body's framing (400); every envelope's `iKey` (401 `Invalid
/// Tenant Token`); the full key anywhere in the body (401); undocumented `ext` fields and
/// unparsable lines (400, `InvalidEventFormat: all`); then per event: the events that pass are
/// accepted, the others listed in `efi` by reason (400 `No events passed validation.` when
/// none passed, else 200).
pub fn judge_request(
    headers: &[(String, String)],
    raw_body: &[u8],
    api_keys: Option<&[String]>,
    max_body_bytes: usize,
) -> Judgement {
    let key = header_value(headers, "x-apikey").map(str::trim);
    let decoded = decode_body(
        header_value(headers, "content-encoding"),
        raw_body,
        max_body_bytes,
    );
    let body = decoded.clone().unwrap_or_default();
    let full_key_in_body = key.is_some_and(|k| !k.is_empty() && contains(&body, k.as_bytes()));
    let lines = split_lines(&body);
    let mut judgement = judge(headers, key, decoded, full_key_in_body, api_keys);
    judgement.body = body;
    judgement.lines = lines;
    judgement.full_key_in_body = full_key_in_body;
    judgement
}

fn judge(
    headers: &[(String, String)],
    key: Option<&str>,
    decoded: Result<Vec<u8>, DecodeError>,
    full_key_in_body: bool,
    api_keys: Option<&[String]>,
) -> Judgement {
    if let Err(why) = check_content_type(header_value(headers, "content-type")) {
        return Judgement::refuse(415, why, REFUSED_BODY);
    }
    let Some(key) = key else {
        return Judgement::refuse(401, "Missing x-apikey header", REFUSED_BODY);
    };
    let Some(tenant) = tenant_of(key) else {
        return Judgement::refuse(401, "Invalid Tenant Token", REFUSED_BODY);
    };
    if api_keys.is_some_and(|known| !known.iter().any(|k| k == key)) {
        return Judgement::refuse(401, "Invalid Tenant Token", REFUSED_BODY);
    }
    if let Err(why) = check_optional_headers(headers) {
        return Judgement::refuse(400, why, REFUSED_BODY);
    }
    let body = match decoded {
        Ok(body) => body,
        Err(e @ DecodeError::TooLarge { .. }) => {
            return Judgement::refuse(413, e.to_string(), REFUSED_BODY)
        }
        Err(e) => return Judgement::refuse(400, e.to_string(), REFUSED_BODY),
    };
    judge_body(&body, tenant, full_key_in_body)
}

fn check_content_type(value: Option<&str>) -> Result<(), String> {
    let refuse = || {
        format!(
            "Unsupported Content-Type: {}; expected {STREAM_CONTENT_TYPE}",
            value.unwrap_or("(none)")
        )
    };
    let value = value.ok_or_else(refuse)?;
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(STREAM_CONTENT_TYPE) {
        return Err(refuse());
    }
    for parameter in parts {
        let (name, val) = parameter.split_once('=').ok_or_else(refuse)?;
        let val = val.trim().trim_matches('"');
        if !name.trim().eq_ignore_ascii_case("charset") || !val.eq_ignore_ascii_case("utf-8") {
            return Err(refuse());
        }
    }
    Ok(())
}

/// `Client-Id`, `sdk-version` and `Upload-Time` are optional, as at the service (clients that
/// send only `Content-Type` and `x-apikey` are accepted); when present, they must be well formed:
/// a malformed one is a client bug the collector names.
fn check_optional_headers(headers: &[(String, String)]) -> Result<(), String> {
    match header_value(headers, "client-id").map(str::trim) {
        None | Some("NO_AUTH") => {}
        Some(other) => {
            return Err(format!(
                "Invalid Client-Id header: {other}; expected NO_AUTH"
            ))
        }
    }
    if header_value(headers, "sdk-version").is_some_and(|v| v.trim().is_empty()) {
        return Err("Invalid sdk-version header: empty".to_string());
    }
    match header_value(headers, "upload-time").map(str::trim) {
        None => Ok(()),
        Some(v) if is_unix_ms(v) => Ok(()),
        Some(v) => Err(format!(
            "Invalid Upload-Time header: {v}; expected Unix time in milliseconds"
        )),
    }
}

/// The headers of protocol.md that clients may leave out (the service accepts requests without
/// them) and that `headers` lacks, in the order protocol.md lists them.
pub fn missing_optional_headers(headers: &[(String, String)]) -> Vec<&'static str> {
    OPTIONAL_HEADERS
        .iter()
        .copied()
        .filter(|name| header_value(headers, name).is_none())
        .collect()
}

/// Sent by 1DS, the JS SDK and this project's library, but not required by the service.
pub const OPTIONAL_HEADERS: &[&str] = &["Client-Id", "sdk-version", "Upload-Time"];

/// Digits only, and large enough to be milliseconds rather than seconds (after 2001-09-09).
fn is_unix_ms(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 15
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u64>().is_ok_and(|ms| ms >= 1_000_000_000_000)
}

fn judge_body(body: &[u8], tenant: &str, full_key_in_body: bool) -> Judgement {
    let batch_invalid = |why: String| Judgement::refuse(400, why, ALL_INVALID_BODY);
    let Ok(text) = std::str::from_utf8(body) else {
        return batch_invalid("Body is not valid UTF-8".to_string());
    };
    if text.is_empty() {
        return Judgement::refuse(400, "Body has no events", REFUSED_BODY);
    }
    if text.trim_start().starts_with('[') {
        return batch_invalid(
            "Body is a JSON array; send one JSON object per line (application/x-json-stream)"
                .to_string(),
        );
    }
    let lines: Vec<&str> = text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect();
    let mut envelopes = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let place = format!("Event {index} (line {})", index + 1);
        if line.trim().is_empty() {
            return batch_invalid(format!("{place} is empty"));
        }
        if line.ends_with('\r') {
            return batch_invalid(format!(
                "{place} ends with \\r; lines are separated by \\n alone"
            ));
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => envelopes.push(value),
            Err(e) => return batch_invalid(format!("{place} is not valid JSON: {e}")),
        }
    }

    let results: Vec<Result<(), EnvelopeError>> = envelopes
        .iter()
        .map(|envelope| validate_envelope(envelope, tenant))
        .collect();
    let first_of_reach = |reach: Reach| {
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .find(|e| e.rejection.reach() == reach)
    };
    if first_of_reach(Reach::Request).is_some() {
        return Judgement::refuse(401, "Invalid Tenant Token", REFUSED_BODY);
    }
    if full_key_in_body {
        return Judgement::refuse(401, "Full instrumentation key found in body", REFUSED_BODY);
    }
    if let Some(e) = first_of_reach(Reach::Batch) {
        return batch_invalid(e.message.clone());
    }

    let mut efi: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    let mut accepted = Vec::new();
    for (index, (result, envelope)) in results.iter().zip(envelopes).enumerate() {
        match result {
            Ok(()) => accepted.push((lines[index].to_string(), envelope)),
            Err(e) => efi.entry(e.rejection.as_str()).or_default().push(index),
        }
    }
    let rejected = lines.len() - accepted.len();
    let acc = accepted.len();
    let (status, collector_error, response_body) = if rejected == 0 {
        (200, None, format!(r#"{{"acc":{acc}}}"#))
    } else {
        let efi = serde_json::to_string(&efi).expect("a map of lists of integers serializes");
        let body = format!(r#"{{"acc":{acc},"rej":{rejected},"efi":{efi}}}"#);
        if acc == 0 {
            let error = "No events passed validation.".to_string();
            (400, Some(error), body)
        } else {
            (200, None, body)
        }
    };
    Judgement {
        status,
        collector_error,
        response_body,
        accepted,
        rejected,
        body: Vec::new(),
        lines: Vec::new(),
        full_key_in_body,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.is_empty() {
        return false;
    }
    // The substring search of `str` is linear; bodies are UTF-8 in all but hostile requests.
    match (std::str::from_utf8(haystack), std::str::from_utf8(needle)) {
        (Ok(h), Ok(n)) => h.contains(n),
        _ => haystack.windows(needle.len()).any(|w| w == needle),
    }
}

fn split_lines(body: &[u8]) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|b| *b == b'\n')
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .collect()
}
