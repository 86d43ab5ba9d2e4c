//! The live view of `telctl serve`: each request as one line, then each of its events, accepted
//! (name, time, compact `data`) or not (with the reason, in another colour), then a running
//! summary. What a developer runs beside an application to see what leaves the machine.

use crate::term::{self, Color, Out};
use serde_json::Value;
use std::collections::BTreeMap;
use tel_emulator::{tenant_of, validate_envelope, Reach, RecordedRequest};

/// What became of one event of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Accepted,
    /// Refused by the collector's judgement, for this reason.
    Rejected(String),
    /// Not judged: a scripted status, a retryable answer or a fault.
    NotAccepted(String),
}

/// The running totals of the summary line.
#[derive(Default)]
pub struct Totals {
    requests: usize,
    accepted: usize,
    refused: usize,
    statuses: BTreeMap<String, usize>,
}

impl Totals {
    pub fn add(&mut self, request: &RecordedRequest, fates: &[Fate]) {
        self.requests += 1;
        self.accepted += fates.iter().filter(|f| **f == Fate::Accepted).count();
        self.refused += fates.iter().filter(|f| **f != Fate::Accepted).count();
        let status = match &request.fault {
            Some(fault) => fault.clone(),
            None => request.status.to_string(),
        };
        *self.statuses.entry(status).or_default() += 1;
    }

    pub fn line(&self) -> String {
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, n)| format!("{status} x{n}"))
            .collect();
        format!(
            "= {}: {} accepted, {} not accepted; answers {}",
            term::plural(self.requests as u64, "request", "requests"),
            self.accepted,
            self.refused,
            statuses.join(", ")
        )
    }
}

/// An instrumentation key as it may be shown: the tenant token and `-***`.
fn masked_key(key: &str) -> String {
    match tenant_of(key) {
        Some(tenant) => format!("{tenant}-***"),
        None => "***".to_string(),
    }
}

/// One line about a request: status, counts, masked key, Collector-Error, the optional headers
/// it lacks, accepted names.
fn request_line(request: &RecordedRequest) -> String {
    let mut line = match &request.fault {
        Some(fault) => format!("{} {} fault={fault}", request.method, request.path),
        None => format!("{} {} {}", request.method, request.path, request.status),
    };
    line.push_str(&format!(
        " acc={} rej={} events={}",
        request.accepted,
        request.rejected,
        request.lines.len()
    ));
    if let Some(key) = request.header("x-apikey") {
        line.push_str(&format!(" key={}", masked_key(key)));
    }
    if let Some(encoding) = request.header("content-encoding") {
        line.push_str(&format!(" encoding={encoding}"));
    }
    if let Some(error) = &request.collector_error {
        line.push_str(&format!(" error={error:?}"));
    }
    // Accepted without them, as the service does; worth knowing when comparing clients.
    let missing = tel_emulator::missing_optional_headers(&request.headers);
    if request.method == "POST" && !missing.is_empty() {
        line.push_str(&format!(" lacks=[{}]", missing.join(", ")));
    }
    if request.full_key_in_body {
        line.push_str(" FULL-KEY-IN-BODY");
    }
    if request.accepted > 0 {
        line.push_str(&format!(" names=[{}]", event_names(request)));
    }
    line
}

/// Names of the request's events with repeats folded, `Name x3`, at most a few shown.
fn event_names(request: &RecordedRequest) -> String {
    const SHOWN: usize = 5;
    let mut counted: Vec<(String, usize)> = Vec::new();
    for line in &request.lines {
        let name = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
            .unwrap_or_else(|| "?".to_string());
        match counted.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => counted.push((name, 1)),
        }
    }
    let mut parts: Vec<String> = counted
        .iter()
        .take(SHOWN)
        .map(|(name, count)| match count {
            1 => name.clone(),
            n => format!("{name} x{n}"),
        })
        .collect();
    if counted.len() > SHOWN {
        parts.push(format!("+{} more", counted.len() - SHOWN));
    }
    parts.join(", ")
}

/// `text` with the request's key masked, wherever it appears (an event's data may hold it).
fn mask(request: &RecordedRequest, text: String) -> String {
    match request.header("x-apikey").map(str::trim) {
        Some(key) if tenant_of(key).is_some() && text.contains(key) => {
            text.replace(key, &masked_key(key))
        }
        _ => text,
    }
}

/// Why the request as a whole accepted nothing.
fn request_reason(request: &RecordedRequest) -> String {
    if let Some(fault) = &request.fault {
        return format!("answered with fault {fault}");
    }
    match &request.collector_error {
        Some(error) => format!("HTTP {}: {error}", request.status),
        None => format!("HTTP {}", request.status),
    }
}

/// The fate of each line of a request. The record says how many were accepted and refused;
/// which ones, and why, is the emulator's own per-event rule applied again.
pub fn fates(request: &RecordedRequest) -> Vec<Fate> {
    let n = request.lines.len();
    if request.accepted == n {
        return vec![Fate::Accepted; n];
    }
    let tenant = request
        .header("x-apikey")
        .and_then(|k| tenant_of(k.trim()))
        .unwrap_or("");
    let checks: Vec<Result<(), (Reach, String)>> = request
        .lines
        .iter()
        .map(|line| {
            let envelope: Value =
                serde_json::from_str(line).map_err(|e| (Reach::Batch, format!("not JSON: {e}")))?;
            validate_envelope(&envelope, tenant).map_err(|e| (e.rejection.reach(), e.to_string()))
        })
        .collect();
    let passing = checks.iter().filter(|c| c.is_ok()).count();
    let judged_per_event = request.rejected > 0
        && passing == request.accepted
        && n - passing == request.rejected
        && checks
            .iter()
            .all(|c| matches!(c, Ok(()) | Err((Reach::Event, _))));
    if judged_per_event {
        return checks
            .into_iter()
            .map(|c| match c {
                Ok(()) => Fate::Accepted,
                Err((_, why)) => Fate::Rejected(why),
            })
            .collect();
    }
    let why = request_reason(request);
    let judged = request.fault.is_none() && (400..500).contains(&request.status);
    (0..n)
        .map(|_| match judged {
            true => Fate::Rejected(why.clone()),
            false => Fate::NotAccepted(why.clone()),
        })
        .collect()
}

/// The text of a top-level member of a one-line JSON object, exactly as sent (key order and
/// spacing kept), or None.
pub fn raw_member<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let bytes = line.as_bytes();
    let key = format!("\"{name}\"");
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut string_start = 0;
    let mut value_start = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => {
                    in_string = false;
                    // A key of the top-level object: the next non-space byte is ':'.
                    let after = line[i + 1..].trim_start();
                    if depth == 1
                        && value_start.is_none()
                        && after.starts_with(':')
                        && line[string_start..=i] == key
                    {
                        let colon = line.len() - after.len();
                        value_start = Some(colon + 1);
                    }
                }
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                string_start = i;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 1 {
                    return value_start.map(|start| line[start..i].trim());
                }
                depth = depth.saturating_sub(1);
            }
            b',' if depth == 1 => {
                if let Some(start) = value_start {
                    return Some(line[start..i].trim());
                }
            }
            _ => {}
        }
    }
    None
}

/// Prints requests as they arrive, keeping the summary as the last line.
pub struct LiveView {
    out: Out,
    totals: Totals,
    /// On a terminal the summary line is rewritten in place; elsewhere it follows each request.
    summary_shown: bool,
}

impl LiveView {
    pub fn new(out: Out) -> LiveView {
        LiveView {
            out,
            totals: Totals::default(),
            summary_shown: false,
        }
    }

    pub fn show(&mut self, request: &RecordedRequest) {
        let fates = fates(request);
        self.totals.add(request, &fates);
        if self.summary_shown {
            self.out.clear_line();
        }
        let color = match (&request.fault, request.status) {
            (None, 200..=299) if request.rejected == 0 => Color::Green,
            (None, 200..=299) | (None, 408 | 429) | (None, 500..) | (Some(_), _) => Color::Yellow,
            _ => Color::Red,
        };
        let line = mask(request, request_line(request));
        self.out.line(&self.out.paint(color, &line));
        for (line, fate) in request.lines.iter().zip(&fates) {
            self.out.line(&mask(request, self.event_line(line, fate)));
        }
        let summary = self.out.paint(Color::Dim, &self.totals.line());
        if self.out.is_terminal() {
            self.out.partial(&summary);
            self.summary_shown = true;
        } else {
            self.out.line(&summary);
        }
    }

    /// Ends the sticky summary line, if any.
    pub fn finish(&mut self) {
        if self.summary_shown {
            self.out.line("");
            self.summary_shown = false;
        }
    }

    fn event_line(&self, line: &str, fate: &Fate) -> String {
        let envelope: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let name = envelope["name"].as_str().unwrap_or("?");
        let time = envelope["time"].as_str().unwrap_or("?");
        match fate {
            Fate::Accepted => format!(
                "  {} {name:<30} {time}  {}",
                self.out.paint(Color::Green, "+"),
                term::excerpt(
                    &raw_member(line, "data")
                        .map_or_else(|| envelope["data"].to_string(), str::to_string),
                    120
                )
            ),
            Fate::Rejected(why) => self.out.paint(
                Color::Red,
                &format!("  x {name:<30} {time}  rejected: {why}"),
            ),
            Fate::NotAccepted(why) => self.out.paint(
                Color::Yellow,
                &format!("  - {name:<30} {time}  not accepted: {why}"),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "abc123-secret-part";

    fn judged(lines: &[&str], content_type: &str) -> RecordedRequest {
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let headers: Vec<(String, String)> = [
            ("content-type", content_type),
            ("x-apikey", KEY),
            ("client-id", "NO_AUTH"),
            ("sdk-version", "t"),
            ("upload-time", "1778123352345"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let j = tel_emulator::judge_request(&headers, body.as_bytes(), None, 1 << 20);
        RecordedRequest {
            method: "POST".into(),
            path: "/OneCollector/1.0/".into(),
            headers,
            raw_body: body.clone().into_bytes(),
            body: body.into_bytes(),
            lines: j.lines,
            status: j.status,
            collector_error: j.collector_error,
            accepted: j.accepted.len(),
            rejected: j.rejected,
            full_key_in_body: j.full_key_in_body,
            fault: None,
            received_at_ms: 0,
        }
    }

    fn event(name: &str, local_id: &str, data: &str) -> String {
        format!(
            r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc123","ext":{{"device":{{"localId":"{local_id}"}}}},"data":{{"k":"{data}"}}}}"#
        )
    }

    #[test]
    fn keys_are_masked_to_their_tenant_token() {
        assert_eq!(masked_key("abc123-secret-part"), "abc123-***");
        assert_eq!(masked_key("nodash"), "***");
        assert_eq!(masked_key("-x"), "***");
    }

    #[test]
    fn each_event_gets_its_own_fate() {
        let good = event("App.Good", "r:1", "v");
        let bad = event("App.Bad", "deadbeef", "v");
        let stream = "application/x-json-stream";
        let fates = fates(&judged(&[&good, &bad, &good], stream));
        assert_eq!(fates[0], Fate::Accepted);
        assert!(matches!(&fates[1], Fate::Rejected(why) if why.contains("InvalidDeviceLocalId")));
        assert_eq!(fates[2], Fate::Accepted);

        let none = fates_of(&[&bad], stream);
        assert!(matches!(&none[0], Fate::Rejected(why) if why.contains("InvalidDeviceLocalId")));

        let wrong_type = fates_of(&[&good], "application/json");
        assert!(matches!(&wrong_type[0], Fate::Rejected(why) if why.contains("415")));
    }

    fn fates_of(lines: &[&str], content_type: &str) -> Vec<Fate> {
        fates(&judged(lines, content_type))
    }

    #[test]
    fn unjudged_answers_are_not_rejections() {
        let mut request = judged(
            &[&event("App.Good", "r:1", "v")],
            "application/x-json-stream",
        );
        request.status = 503;
        request.accepted = 0;
        request.rejected = 0;
        assert!(matches!(&fates(&request)[0], Fate::NotAccepted(why) if why == "HTTP 503"));
        request.fault = Some("reset".into());
        assert!(matches!(&fates(&request)[0], Fate::NotAccepted(why) if why.contains("reset")));
    }

    #[test]
    fn data_is_shown_as_sent() {
        let line =
            r#"{"ver":"4.0","name":"a\"data\":","data":{"z":1,"a":[{"b":"}"}]} ,"x":{"data":2}}"#;
        assert_eq!(raw_member(line, "data"), Some(r#"{"z":1,"a":[{"b":"}"}]}"#));
        assert_eq!(raw_member(r#"{"data" : 7}"#, "data"), Some("7"));
        assert_eq!(raw_member(r#"{"x":{"data":2}}"#, "data"), None);
        assert_eq!(raw_member("not json", "data"), None);
    }

    #[test]
    fn the_key_is_masked_in_event_lines() {
        let request = judged(
            &[&event("App.Good", "r:1", KEY)],
            "application/x-json-stream",
        );
        assert!(request.full_key_in_body);
        let view = LiveView::new(Out::stdout());
        let line = mask(
            &request,
            view.event_line(&request.lines[0], &Fate::Accepted),
        );
        assert!(line.contains("abc123-***") && !line.contains(KEY), "{line}");
    }
}
