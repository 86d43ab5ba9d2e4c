//! What the collector remembers of each request that reached its path.

use serde_json::{json, Map, Value};

/// One request to the collector path and what it was answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as received.
    pub raw_body: Vec<u8>,
    /// The body once `Content-Encoding` is undone (empty when it could not be).
    pub body: Vec<u8>,
    /// The decoded body's lines.
    pub lines: Vec<String>,
    /// The status answered; 0 for a fault.
    pub status: u16,
    /// The `Collector-Error` answered, if any.
    pub collector_error: Option<String>,
    /// Envelopes accepted from this request.
    pub accepted: usize,
    /// Envelopes refused in this request's answer.
    pub rejected: usize,
    /// Whether the full `x-apikey` value appeared in the decoded body.
    pub full_key_in_body: bool,
    /// The fault that answered, by [`Fault::name`](crate::Fault::name).
    pub fault: Option<String>,
    /// Unix ms when the request had been read.
    pub received_at_ms: u64,
}

impl RecordedRequest {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::judge::header_value(&self.headers, name)
    }

    /// The record as the control API shows it: headers as an object (repeated names joined
    /// with `, `), the decoded body as text.
    pub fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in &self.headers {
            match headers.get_mut(name) {
                Some(Value::String(joined)) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                _ => {
                    headers.insert(name.clone(), Value::String(value.clone()));
                }
            }
        }
        json!({
            "method": self.method,
            "path": self.path,
            "headers": headers,
            "body": String::from_utf8_lossy(&self.body),
            "raw_body_len": self.raw_body.len(),
            "lines": self.lines,
            "status": self.status,
            "collector_error": self.collector_error,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "full_key_in_body": self.full_key_in_body,
            "fault": self.fault,
            "received_at_ms": self.received_at_ms,
        })
    }
}
