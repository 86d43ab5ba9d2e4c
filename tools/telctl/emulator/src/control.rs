//! The control API under `/_emulator/`, on the collector's own port, so that tests in other
//! languages (which run `telctl serve` as a process) can script and inspect the collector.
//!
//! | request | effect | answer |
//! | --- | --- | --- |
//! | `POST /_emulator/script` | queues a scripted answer, or a JSON array of them | `{"ok":true,"queued":N}` |
//! | `POST /_emulator/default` | sets the answer used while the script is empty; `null` clears it | `{"ok":true}` |
//! | `POST /_emulator/release` | ends every hang in progress | `{"ok":true}` |
//! | `POST /_emulator/reset` | clears records, script and default | `{"ok":true}` |
//! | `GET /_emulator/accepted` | | JSON array of the accepted envelopes |
//! | `GET /_emulator/requests[?since=I]` | | JSON array of the records (from index I) |
//! | `GET /_emulator/wait?accepted=N&requests=M&timeout_ms=T` | waits for both counts | `{"ok":bool,"accepted":n,"requests":n}` |
//! | `GET /_emulator/stats` | | counts |

use crate::http::{RequestHead, Response};
use crate::script::{self, Scripted};
use crate::shared::Shared;
use serde_json::{json, Value};
use std::time::Duration;

/// The path prefix of the control API.
pub const PREFIX: &str = "/_emulator/";

/// The default and the longest wait of `/_emulator/wait`.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
const LONGEST_WAIT: Duration = Duration::from_secs(600);

pub(crate) fn handle(shared: &Shared, head: &RequestHead, body: &[u8]) -> Response {
    let action = head.path[PREFIX.len()..].trim_end_matches('/');
    let result = match (head.method.as_str(), action) {
        ("POST", "script") => push_script(shared, body),
        ("POST", "default") => set_default(shared, body),
        ("POST", "release") => {
            shared.release();
            Ok(json!({"ok": true}))
        }
        ("POST", "reset") => {
            shared.reset();
            Ok(json!({"ok": true}))
        }
        ("GET", "accepted") => Ok(Value::Array(shared.lock().accepted.clone())),
        ("GET", "requests") => requests(shared, head),
        ("GET", "wait") => wait(shared, head),
        ("GET", "stats") => Ok(stats(shared)),
        (
            _,
            "script" | "default" | "release" | "reset" | "accepted" | "requests" | "wait" | "stats",
        ) => Err((
            405,
            format!("{} is not allowed on {}", head.method, head.path),
        )),
        _ => Err((404, format!("no control action {}", head.path))),
    };
    match result {
        Ok(value) => Response::json(200, value.to_string()),
        Err((status, error)) => {
            Response::json(status, json!({"ok": false, "error": error}).to_string())
        }
    }
}

type Outcome = Result<Value, (u16, String)>;

fn parse(body: &[u8]) -> Result<Value, (u16, String)> {
    serde_json::from_slice(body).map_err(|e| (400, format!("body is not JSON: {e}")))
}

fn push_script(shared: &Shared, body: &[u8]) -> Outcome {
    let value = parse(body)?;
    let items = match &value {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    let answers = items
        .into_iter()
        .map(Scripted::from_json)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (400, e))?;
    let mut state = shared.lock();
    state.script.extend(answers);
    Ok(json!({"ok": true, "queued": state.script.len()}))
}

fn set_default(shared: &Shared, body: &[u8]) -> Outcome {
    let answer = match parse(body)? {
        Value::Null => None,
        value => Some(Scripted::from_json(&value).map_err(|e| (400, e))?),
    };
    shared.lock().default = answer;
    Ok(json!({"ok": true}))
}

fn number(head: &RequestHead, name: &str) -> Result<Option<u64>, (u16, String)> {
    head.query_param(name)
        .map(|v| {
            v.parse()
                .map_err(|_| (400, format!("{name} must be a non-negative integer")))
        })
        .transpose()
}

fn requests(shared: &Shared, head: &RequestHead) -> Outcome {
    let since = number(head, "since")?.unwrap_or(0) as usize;
    let state = shared.lock();
    let records = state.requests.iter().skip(since).map(|r| r.to_json());
    Ok(Value::Array(records.collect()))
}

fn wait(shared: &Shared, head: &RequestHead) -> Outcome {
    let accepted = number(head, "accepted")?.unwrap_or(0) as usize;
    let requests = number(head, "requests")?.unwrap_or(0) as usize;
    let timeout = number(head, "timeout_ms")?
        .map_or(DEFAULT_WAIT, Duration::from_millis)
        .min(LONGEST_WAIT);
    let ok = shared.wait_until(timeout, |s| {
        s.accepted_total >= accepted && s.requests_total >= requests
    });
    let state = shared.lock();
    Ok(json!({"ok": ok, "accepted": state.accepted_total, "requests": state.requests_total}))
}

fn stats(shared: &Shared) -> Value {
    let state = shared.lock();
    let by_status = state
        .requests
        .iter()
        .fold(serde_json::Map::new(), |mut map, r| {
            let count = map.entry(r.status.to_string()).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
            map
        });
    json!({
        "requests": state.requests_total,
        "accepted": state.accepted_total,
        "rejected": state.rejected_total,
        "statuses": by_status,
        "full_key_in_body": state.requests.iter().filter(|r| r.full_key_in_body).count(),
        "scripted": state.script.iter().map(script::to_json).collect::<Vec<_>>(),
        "default": state.default.as_ref().map(script::to_json),
        "hanging": state.hanging,
        "connections": state.connections.len(),
    })
}
