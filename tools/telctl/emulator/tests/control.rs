//! The control API under /_emulator/, as tests in other languages use it.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tel_emulator::Collector;

fn one_event() -> Vec<u8> {
    ndjson(&[envelope("Control.Event")])
}

#[test]
fn script_pushes_answers_one_or_many() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let reply = control(
        port,
        "POST",
        "script",
        r#"{"status":503,"headers":{"Retry-After":"2"}}"#,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"ok":true,"queued":1}));
    let reply = control(
        port,
        "POST",
        "script",
        r#"[{"status":429,"times":2},{"accept":true,"headers":{"kill-tokens":"o:abc123","kill-duration":"60"}}]"#,
    );
    assert_eq!(reply.json(), json!({"ok":true,"queued":3}));

    let first = upload(port, &one_event());
    assert_eq!(
        (first.status, first.header("retry-after")),
        (503, Some("2"))
    );
    assert_eq!(upload(port, &one_event()).status, 429);
    assert_eq!(upload(port, &one_event()).status, 429);
    let killed = upload(port, &one_event());
    assert_eq!(
        (killed.status, killed.header("kill-tokens")),
        (200, Some("o:abc123"))
    );
    assert_eq!(upload(port, &one_event()).status, 200);
    assert_eq!(collector.accepted_count(), 2);
}

#[test]
fn default_sets_and_clears_the_standing_answer() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    assert_eq!(
        control(port, "POST", "default", r#"{"status":503}"#).status,
        200
    );
    assert_eq!(upload(port, &one_event()).status, 503);
    assert_eq!(upload(port, &one_event()).status, 503);
    assert_eq!(control(port, "POST", "default", "null").status, 200);
    assert_eq!(upload(port, &one_event()).status, 200);
}

#[test]
fn faults_can_be_scripted() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    control(port, "POST", "script", r#"{"fault":{"garbage":"nope"}}"#);
    let mut client = Client::connect(port);
    client.send(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    assert_eq!(client.read_to_close().unwrap(), b"nope");

    control(port, "POST", "script", r#"{"fault":"hang"}"#);
    let mut client = Client::connect(port);
    client.send(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    let waited = control(port, "GET", "wait?requests=2&timeout_ms=10000", "");
    assert_eq!(waited.json()["ok"], true);
    assert_eq!(control(port, "GET", "stats", "").json()["hanging"], 1);
    assert_eq!(
        control(port, "POST", "release", "").json(),
        json!({"ok":true})
    );
    assert!(client.closed());
}

#[test]
fn accepted_and_requests_show_what_happened() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    upload(port, &one_event());
    let bad = envelope_with("Bad.Event", "/ext/device/localId", json!("nope"));
    upload_with(
        port,
        &[("Content-Encoding", "deflate")],
        &deflate(&ndjson(&[bad])),
    );

    let accepted = control(port, "GET", "accepted", "").json();
    assert_eq!(accepted.as_array().unwrap().len(), 1);
    assert_eq!(accepted[0]["name"], "Control.Event");

    let requests = control(port, "GET", "requests", "").json();
    let requests = requests.as_array().unwrap();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/OneCollector/1.0/");
    assert_eq!(first["headers"]["x-apikey"], KEY);
    assert_eq!(first["headers"]["client-id"], "NO_AUTH");
    assert_eq!(first["status"], 200);
    assert_eq!(first["accepted"], 1);
    assert_eq!(first["rejected"], 0);
    assert_eq!(first["collector_error"], json!(null));
    assert_eq!(first["full_key_in_body"], false);
    assert_eq!(first["lines"].as_array().unwrap().len(), 1);
    assert!(first["body"].as_str().unwrap().contains("Control.Event"));
    assert!(first["received_at_ms"].as_u64().unwrap() > 0);
    let second = &requests[1];
    assert_eq!(second["status"], 400);
    assert_eq!(second["collector_error"], "No events passed validation.");
    assert_eq!(second["rejected"], 1);
    assert!(second["body"].as_str().unwrap().contains("Bad.Event"));

    let since = control(port, "GET", "requests?since=1", "").json();
    assert_eq!(since.as_array().unwrap().len(), 1);

    let stats = control(port, "GET", "stats", "").json();
    assert_eq!(stats["requests"], 2);
    assert_eq!(stats["accepted"], 1);
    assert_eq!(stats["rejected"], 1);
    assert_eq!(stats["statuses"], json!({"200":1,"400":1}));
}

#[test]
fn wait_returns_when_counts_are_reached_or_time_is_up() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let sender = std::thread::spawn(move || upload(port, &one_event()).status);
    let reply = control(
        port,
        "GET",
        "wait?accepted=1&requests=1&timeout_ms=10000",
        "",
    );
    assert_eq!(reply.json(), json!({"ok":true,"accepted":1,"requests":1}));
    assert_eq!(sender.join().unwrap(), 200);

    let started = std::time::Instant::now();
    let reply = control(port, "GET", "wait?accepted=5&timeout_ms=50", "");
    assert_eq!(reply.json(), json!({"ok":false,"accepted":1,"requests":1}));
    assert!(started.elapsed() >= Duration::from_millis(50));
}

#[test]
fn reset_clears_records_and_script() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    upload(port, &one_event());
    control(port, "POST", "script", r#"{"status":500}"#);
    control(port, "POST", "default", r#"{"status":503}"#);
    assert_eq!(
        control(port, "POST", "reset", "").json(),
        json!({"ok":true})
    );
    assert_eq!(control(port, "GET", "accepted", "").json(), json!([]));
    assert_eq!(control(port, "GET", "requests", "").json(), json!([]));
    assert_eq!(upload(port, &one_event()).status, 200);
}

#[test]
fn mistakes_are_explained() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    for (method, action, body, status) in [
        ("POST", "script", "{nope", 400),
        ("POST", "script", r#"{"fault":"explode"}"#, 400),
        ("POST", "script", r#"{"stauts":503}"#, 400),
        ("POST", "default", "[]", 400),
        ("GET", "script", "", 405),
        ("GET", "nothing", "", 404),
        ("GET", "wait?accepted=x", "", 400),
    ] {
        let reply = control(port, method, action, body);
        assert_eq!(reply.status, status, "{method} {action} {body}");
        assert_eq!(reply.json()["ok"], false);
        assert!(reply.json()["error"].as_str().is_some());
    }
    // A refused script queues nothing, and control calls are not collector requests.
    assert_eq!(upload(port, &one_event()).status, 200);
    assert_eq!(collector.request_count(), 1);
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let mut client = Client::connect(port);
    let path = "/OneCollector/1.0/";
    for _ in 0..3 {
        let reply = client.request("POST", path, &upload_headers(), &one_event());
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), None);
    }
    // Refusals keep the connection too, and the control API shares it.
    let reply = client.request("POST", path, &headers_with("x-apikey", None), &one_event());
    assert_eq!(reply.status, 401);
    let reply = client.request("GET", "/_emulator/stats", &[], b"");
    assert_eq!(reply.json()["accepted"], 3);
    // Two requests written at once are answered in order.
    client.send("POST", path, &upload_headers(), &one_event());
    client.send(
        "POST",
        path,
        &headers_with("Content-Type", Some("application/json")),
        b"[]",
    );
    assert_eq!(client.read_reply().unwrap().status, 200);
    assert_eq!(client.read_reply().unwrap().status, 415);

    let mut closing = headers_with("Connection", Some("close"));
    closing.extend(
        upload_headers()
            .into_iter()
            .filter(|(n, _)| n != "Connection"),
    );
    closing.dedup();
    let reply = client.request("POST", path, &closing, &one_event());
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.closed());
    assert_eq!(collector.accepted_count(), 5);
}

#[test]
fn http_1_0_closes_and_expect_continue_is_honoured() {
    let collector = Collector::start().unwrap();
    let body = one_event();
    let mut head = String::from("POST /OneCollector/1.0/ HTTP/1.0\r\n");
    for (name, value) in upload_headers() {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut client = Client::connect(collector.port());
    client.send_raw(head.as_bytes());
    client.send_raw(&body);
    assert_eq!(client.read_reply().unwrap().status, 200);
    assert!(client.closed());

    let mut expecting = upload_headers();
    expecting.push(("Expect".into(), "100-continue".into()));
    let mut client = Client::connect(collector.port());
    let mut head = String::from("POST /OneCollector/1.0/ HTTP/1.1\r\n");
    for (name, value) in &expecting {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    client.send_raw(head.as_bytes());
    assert_eq!(client.read_reply().unwrap().status, 100);
    client.send_raw(&body);
    assert_eq!(client.read_reply().unwrap().status, 200);
}

#[test]
fn malformed_requests_are_refused_and_closed() {
    let collector = Collector::start().unwrap();
    let mut client = Client::connect(collector.port());
    client.send_raw(b"POST /OneCollector/1.0/ HTTP/1.1\r\nContent-Length: nope\r\n\r\n");
    let reply = client.read_reply().unwrap();
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.closed());

    let mut client = Client::connect(collector.port());
    let huge = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    client.send_raw(huge.as_bytes());
    assert_eq!(client.read_reply().unwrap().status, 431);
}
