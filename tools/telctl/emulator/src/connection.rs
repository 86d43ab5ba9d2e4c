//! One client connection: requests read in turn (keep-alive), routed to the collector path,
//! the control API or a 404, and answered as judged and scripted.

use crate::fault;
use crate::http::{self, Framing, ReadError, RequestHead, Response};
use crate::judge::{judge_request, Judgement};
use crate::record::RecordedRequest;
use crate::script::Scripted;
use crate::shared::{now_ms, Shared};
use crate::{control, COLLECTOR_PATH};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// How long an idle keep-alive connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Bounds on what a refused client may still send before its connection is closed.
const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
const LINGER_BYTES: u64 = 64 * 1024 * 1024;

/// The body of refusals that carry no `efi`.
const REFUSED_BODY: &str = r#"{"acc":0}"#;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flow {
    KeepOpen,
    Close,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Collector,
    Control,
    Unknown,
}

impl Route {
    fn of(path: &str) -> Route {
        if path == COLLECTOR_PATH || path == COLLECTOR_PATH.trim_end_matches('/') {
            Route::Collector
        } else if path.starts_with(control::PREFIX) {
            Route::Control
        } else {
            Route::Unknown
        }
    }
}

/// Serves requests on `stream` until either side closes it.
pub(crate) fn serve(shared: &Shared, stream: TcpStream) {
    // The TCP handshake of a far collector (behind TLS, the TLS front plays it).
    if !shared.options.tls && !shared.options.rtt.is_zero() && !shared.pause(shared.options.rtt) {
        return;
    }
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let head = match http::read_head(&mut reader) {
            Ok(head) => head,
            Err(ReadError::Refuse(status, why)) => {
                let _ = send(&stream, refusal(status, &why), false);
                lingering_close(&mut reader, &stream);
                return;
            }
            Err(_) => return,
        };
        let route = Route::of(&head.path);
        let limit = shared.options.max_raw_body_bytes;
        let body = match read_body(&mut reader, &stream, &head, limit) {
            Ok(body) => body,
            Err(ReadError::Refuse(status, why)) => {
                let response = refusal(status, &why);
                if route == Route::Collector {
                    shared.record(record_of(&head, Vec::new(), &response), Vec::new());
                }
                let _ = send(&stream, response, false);
                lingering_close(&mut reader, &stream);
                return;
            }
            Err(_) => return,
        };
        let keep_alive = head.keep_alive();
        let flow = match route {
            Route::Collector => exchange(shared, &stream, &head, body, keep_alive),
            Route::Control => send(&stream, control::handle(shared, &head, &body), keep_alive),
            Route::Unknown => {
                let body = format!(
                    r#"{{"error":"no such path: {}"}}"#,
                    head.path.escape_default()
                );
                send(&stream, Response::json(404, body), keep_alive)
            }
        };
        if flow == Flow::Close {
            return;
        }
    }
}

fn read_body(
    reader: &mut BufReader<TcpStream>,
    mut stream: &TcpStream,
    head: &RequestHead,
    limit: usize,
) -> Result<Vec<u8>, ReadError> {
    let framing = http::framing(head)?;
    if matches!(framing, Framing::Length(n) if n > limit) {
        return Err(ReadError::Refuse(413, "Request body too large".into()));
    }
    if head.expects_continue() {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    http::read_body(reader, framing, limit)
}

/// After refusing a request whose rest is still coming: stops writing, then discards what
/// the client still sends (bounded in bytes and time), so that closing with unread data does
/// not reset the connection before the client has read the refusal.
fn lingering_close(reader: &mut BufReader<TcpStream>, stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(LINGER_TIMEOUT));
    let _ = io::copy(&mut reader.by_ref().take(LINGER_BYTES), &mut io::sink());
}

fn refusal(status: u16, why: &str) -> Response {
    let mut response = Response::json(status, REFUSED_BODY);
    response.set_header("Collector-Error", why);
    response
}

fn send(mut stream: &TcpStream, mut response: Response, keep_alive: bool) -> Flow {
    if !keep_alive {
        response.set_header("Connection", "close");
    }
    // A scripted `Connection: close` is kept as a server keeps its word: it closes.
    let closing = response
        .header("connection")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("close"));
    match response.write_to(&mut stream) {
        Ok(()) if keep_alive && !closing => Flow::KeepOpen,
        _ => Flow::Close,
    }
}

fn record_of(head: &RequestHead, raw_body: Vec<u8>, response: &Response) -> RecordedRequest {
    RecordedRequest {
        method: head.method.clone(),
        path: head.target.clone(),
        headers: head.headers.clone(),
        raw_body,
        body: Vec::new(),
        lines: Vec::new(),
        status: response.status,
        collector_error: response.header("collector-error").map(str::to_string),
        accepted: 0,
        rejected: 0,
        full_key_in_body: false,
        fault: None,
        received_at_ms: now_ms(),
    }
}

/// One request to the collector path: scripted delay, judgement, scripting, record, answer.
fn exchange(
    shared: &Shared,
    stream: &TcpStream,
    head: &RequestHead,
    raw_body: Vec<u8>,
    keep_alive: bool,
) -> Flow {
    if head.method != "POST" {
        let mut response = refusal(405, &format!("Method not allowed: {}", head.method));
        response.set_header("Allow", "POST");
        shared.record(record_of(head, raw_body, &response), Vec::new());
        return send(stream, response, keep_alive);
    }
    // The request's way there and the answer's way back.
    if !shared.options.rtt.is_zero() && !shared.pause(shared.options.rtt) {
        return Flow::Close;
    }
    if shared.options.sink {
        shared.sunk();
        return send(stream, Response::json(200, "{}"), keep_alive);
    }
    let scripted = shared.next_answer();
    if let Some(delay) = scripted.as_ref().map(|s| s.delay).filter(|d| !d.is_zero()) {
        if !shared.pause(delay) {
            return Flow::Close;
        }
    }
    let options = &shared.options;
    let judgement = judge_request(
        &head.headers,
        &raw_body,
        options.api_keys.as_deref(),
        options.max_body_bytes,
    );
    let (response, judged) = compose(&judgement, scripted.as_ref());
    let hold = scripted.as_ref().is_some_and(|s| s.hold);
    let fault = scripted.and_then(|s| s.fault);
    let accepted = if judged && fault.is_none() {
        judgement.accepted
    } else {
        Vec::new()
    };
    let record = RecordedRequest {
        method: head.method.clone(),
        path: head.target.clone(),
        headers: head.headers.clone(),
        raw_body,
        body: judgement.body,
        lines: judgement.lines,
        status: if fault.is_some() { 0 } else { response.status },
        collector_error: match fault {
            Some(_) => None,
            None => response.header("collector-error").map(str::to_string),
        },
        accepted: accepted.len(),
        rejected: if judged && fault.is_none() {
            judgement.rejected
        } else {
            0
        },
        full_key_in_body: judgement.full_key_in_body,
        fault: fault.as_ref().map(|f| f.name().to_string()),
        received_at_ms: now_ms(),
    };
    let generation = shared.record(record, accepted);
    if hold {
        shared.hang(generation);
    }
    match fault {
        None => send(stream, response, keep_alive),
        Some(fault) => {
            fault::deliver(shared, stream, response, &fault, generation);
            Flow::Close
        }
    }
}

/// The response for a judgement under a scripted answer, and whether it is the judgement's
/// own (so that its acceptances stand).
fn compose(judgement: &Judgement, scripted: Option<&Scripted>) -> (Response, bool) {
    let judged_response = || {
        let mut response = Response::json(judgement.status, judgement.response_body.clone());
        if let Some(error) = &judgement.collector_error {
            response.set_header("Collector-Error", error);
        }
        response
    };
    let Some(scripted) = scripted else {
        return (judged_response(), true);
    };
    let (mut response, judged) = match scripted.status {
        None => (judged_response(), true),
        Some(status) if (200..300).contains(&status) && scripted.body.is_none() => {
            let mut response = judged_response();
            if response.status == 200 {
                response.status = status;
            }
            (response, true)
        }
        Some(status) => (Response::json(status, ""), false),
    };
    if let Some(body) = &scripted.body {
        response.body = body.clone().into_bytes();
    }
    response.headers.retain(|(name, _)| {
        !scripted
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    });
    response.headers.extend(scripted.headers.iter().cloned());
    (response, judged)
}
