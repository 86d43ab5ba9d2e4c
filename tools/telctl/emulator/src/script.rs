//! Scripted answers: what the collector says to the next requests instead of (or on top of)
//! its normal judgement, down to broken bytes on the wire.

use serde_json::{Map, Value};
use std::time::Duration;

/// A way of answering that breaks HTTP. A request answered by a fault accepts nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Reads the request, then closes the socket without answering (with a TCP RST on Unix).
    Reset,
    /// Reads the request, then sends nothing and keeps the socket open until
    /// [`Collector::release`](crate::Collector::release) or the collector is dropped.
    HangBeforeHeaders,
    /// Sends the status line and headers with `Content-Length: 1000`, then 10 bytes of body,
    /// then hangs like [`Fault::HangBeforeHeaders`].
    HangMidBody,
    /// Sends the response one byte per interval.
    TrickleHeaders(Duration),
    /// Writes these bytes instead of a response, then closes.
    Garbage(Vec<u8>),
    /// The response, with this many extra headers.
    ManyHeaders(usize),
    /// The response, with a body of this many bytes (streamed).
    HugeBody(usize),
    /// The response with a Content-Length larger than its body, then closes.
    LyingContentLength,
}

impl Fault {
    /// The fault's name in records and in the control API.
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Reset => "reset",
            Fault::HangBeforeHeaders => "hang",
            Fault::HangMidBody => "hang_mid_body",
            Fault::TrickleHeaders(_) => "trickle",
            Fault::Garbage(_) => "garbage",
            Fault::ManyHeaders(_) => "many_headers",
            Fault::HugeBody(_) => "huge_body",
            Fault::LyingContentLength => "lying_content_length",
        }
    }
}

/// The bytes [`Fault::Garbage`] sends when the control API names no text.
pub const DEFAULT_GARBAGE: &[u8] = b"this is not HTTP\r\n\r\n";

/// One scripted answer.
///
/// - `status: None`: the request is judged and accepted normally; `headers` are added and
///   `body`, when set, replaces the response body.
/// - `status: Some(2xx)` and no `body`: judged and accepted normally; a request that passes is
///   answered with that status instead of 200 (a refused one keeps its refusal).
/// - any other `status`: answered so, and nothing is accepted.
/// - `fault`: the response (as the rules above shape it) is broken that way; nothing is
///   accepted.
///
/// Headers replace the collector's own header of the same name (Content-Length included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scripted {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Waited before the request is judged and answered.
    pub delay: Duration,
    pub fault: Option<Fault>,
    /// How many requests this answer serves before it leaves the script (at least 1).
    pub times: usize,
    /// The request is recorded (and judged) on arrival, and its answer held back until the next
    /// [`Collector::release`](crate::Collector::release): tests see requests overlap.
    pub hold: bool,
}

impl Default for Scripted {
    fn default() -> Self {
        Scripted::accept()
    }
}

impl Scripted {
    /// Normal judgement and acceptance; add headers to it with [`Scripted::with_header`].
    pub fn accept() -> Self {
        Scripted {
            status: None,
            headers: Vec::new(),
            body: None,
            delay: Duration::ZERO,
            fault: None,
            times: 1,
            hold: false,
        }
    }

    /// Answers `status` (see the type's rules for 2xx).
    pub fn status(status: u16) -> Self {
        Scripted {
            status: Some(status),
            ..Scripted::accept()
        }
    }

    /// Answers with `fault`.
    pub fn fault(fault: Fault) -> Self {
        Scripted {
            fault: Some(fault),
            ..Scripted::accept()
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Records the request on arrival, answers only at the next release.
    pub fn held(mut self) -> Self {
        self.hold = true;
        self
    }

    /// Serves the next `n` requests (`0` counts as 1).
    pub fn times(mut self, n: usize) -> Self {
        self.times = n.max(1);
        self
    }

    /// Whether requests answered this way may have events accepted.
    pub fn accepts(&self) -> bool {
        self.fault.is_none()
            && match self.status {
                None => true,
                Some(s) => (200..300).contains(&s) && self.body.is_none(),
            }
    }

    /// Reads the control API's form:
    /// `{"status":503,"headers":{"Retry-After":"2"},"body":"...","delay_ms":0,"fault":...,
    /// "times":1,"hold":false}` or `{"accept":true,"headers":{...}}`; every field optional.
    pub fn from_json(value: &Value) -> Result<Scripted, String> {
        let Some(fields) = value.as_object() else {
            return Err("a scripted answer must be a JSON object".into());
        };
        let mut scripted = Scripted::accept();
        for (name, value) in fields {
            match name.as_str() {
                "accept" => match value {
                    Value::Bool(true) => {}
                    _ => return Err("accept must be true".into()),
                },
                "status" => {
                    let status = value
                        .as_u64()
                        .filter(|s| (100..=999).contains(s))
                        .ok_or("status must be an integer from 100 to 999")?;
                    scripted.status = Some(status as u16);
                }
                "headers" => scripted.headers = headers_from_json(value)?,
                "body" => match value {
                    Value::String(s) => scripted.body = Some(s.clone()),
                    Value::Null => scripted.body = None,
                    other => scripted.body = Some(other.to_string()),
                },
                "delay_ms" => {
                    let ms = value
                        .as_u64()
                        .ok_or("delay_ms must be a non-negative integer")?;
                    scripted.delay = Duration::from_millis(ms);
                }
                "fault" => scripted.fault = fault_from_json(value)?,
                "hold" => match value {
                    Value::Bool(b) => scripted.hold = *b,
                    _ => return Err("hold must be true or false".into()),
                },
                "times" => {
                    let n = value
                        .as_u64()
                        .ok_or("times must be a non-negative integer")?;
                    scripted = scripted.times(n as usize);
                }
                other => return Err(format!("unknown field {other:?} in a scripted answer")),
            }
        }
        if fields.get("accept").is_some() && scripted.status.is_some() {
            return Err("accept and status are exclusive".into());
        }
        Ok(scripted)
    }
}

fn headers_from_json(value: &Value) -> Result<Vec<(String, String)>, String> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Object(map) => Ok(map.iter().map(|(k, v)| (k.clone(), as_text(v))).collect()),
        Value::Array(pairs) => pairs
            .iter()
            .map(|pair| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), value]) => Ok((name.clone(), as_text(value))),
                _ => Err("headers as a list must hold [name, value] pairs".to_string()),
            })
            .collect(),
        _ => Err("headers must be an object or a list of [name, value] pairs".into()),
    }
}

fn fault_from_json(value: &Value) -> Result<Option<Fault>, String> {
    let unknown = || format!("unknown fault {value}");
    match value {
        Value::Null => Ok(None),
        Value::String(name) => match name.as_str() {
            "reset" => Ok(Some(Fault::Reset)),
            "hang" | "hang_before_headers" => Ok(Some(Fault::HangBeforeHeaders)),
            "hang_mid_body" => Ok(Some(Fault::HangMidBody)),
            "garbage" => Ok(Some(Fault::Garbage(DEFAULT_GARBAGE.to_vec()))),
            "lying_content_length" => Ok(Some(Fault::LyingContentLength)),
            _ => Err(unknown()),
        },
        Value::Object(map) if map.len() == 1 => {
            let (name, arg) = map.iter().next().expect("one entry");
            let count = |arg: &Value| {
                arg.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| format!("fault {name} takes a non-negative integer"))
            };
            match name.as_str() {
                "many_headers" => Ok(Some(Fault::ManyHeaders(count(arg)?))),
                "huge_body" => Ok(Some(Fault::HugeBody(count(arg)?))),
                "trickle_ms" => Ok(Some(Fault::TrickleHeaders(Duration::from_millis(
                    count(arg)? as u64,
                )))),
                "garbage" => match arg {
                    Value::String(text) => Ok(Some(Fault::Garbage(text.as_bytes().to_vec()))),
                    _ => Err("fault garbage takes a string".into()),
                },
                _ => Err(unknown()),
            }
        }
        _ => Err(unknown()),
    }
}

/// A scripted answer in the control API's form, for reports.
pub fn to_json(scripted: &Scripted) -> Value {
    let mut out = Map::new();
    if let Some(status) = scripted.status {
        out.insert("status".into(), status.into());
    }
    if !scripted.headers.is_empty() {
        let headers: Vec<Value> = scripted
            .headers
            .iter()
            .map(|(k, v)| Value::from(vec![k.clone(), v.clone()]))
            .collect();
        out.insert("headers".into(), headers.into());
    }
    if let Some(body) = &scripted.body {
        out.insert("body".into(), body.clone().into());
    }
    if !scripted.delay.is_zero() {
        out.insert(
            "delay_ms".into(),
            (scripted.delay.as_millis() as u64).into(),
        );
    }
    if let Some(fault) = &scripted.fault {
        out.insert("fault".into(), fault.name().into());
    }
    out.insert("times".into(), scripted.times.into());
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_control_api_form() {
        let s = Scripted::from_json(&json!({"status":503,"headers":{"Retry-After":"2"},
            "body":"x","delay_ms":5,"fault":"reset","times":3}))
        .unwrap();
        assert_eq!(
            s,
            Scripted::status(503)
                .with_header("Retry-After", "2")
                .with_body("x")
                .with_delay(Duration::from_millis(5))
                .with_fault(Fault::Reset)
                .times(3)
        );
        let s =
            Scripted::from_json(&json!({"accept":true,"headers":[["kill-tokens","o:a"]]})).unwrap();
        assert_eq!(s, Scripted::accept().with_header("kill-tokens", "o:a"));
        for (fault, want) in [
            (json!("hang"), Fault::HangBeforeHeaders),
            (json!("hang_mid_body"), Fault::HangMidBody),
            (json!("lying_content_length"), Fault::LyingContentLength),
            (json!({"many_headers":7}), Fault::ManyHeaders(7)),
            (json!({"huge_body":9}), Fault::HugeBody(9)),
            (
                json!({"trickle_ms":4}),
                Fault::TrickleHeaders(Duration::from_millis(4)),
            ),
            (json!({"garbage":"zz"}), Fault::Garbage(b"zz".to_vec())),
            (json!("garbage"), Fault::Garbage(DEFAULT_GARBAGE.to_vec())),
        ] {
            let s = Scripted::from_json(&json!({ "fault": fault })).unwrap();
            assert_eq!(s.fault, Some(want));
        }
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        for bad in [
            json!({"stauts":503}),
            json!({"status":"503"}),
            json!({"fault":"explode"}),
            json!({"accept":true,"status":200}),
            json!([]),
        ] {
            assert!(Scripted::from_json(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn which_answers_accept() {
        assert!(Scripted::accept().accepts());
        assert!(Scripted::status(204).accepts());
        assert!(!Scripted::status(200).with_body("{}").accepts());
        assert!(!Scripted::status(503).accepts());
        assert!(!Scripted::fault(Fault::Reset).accepts());
        assert_eq!(Scripted::accept().times(0).times, 1);
    }
}
