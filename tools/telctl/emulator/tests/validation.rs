//! Each rule of the protocol answered as the real collector answers it.

mod common;

use common::*;
use serde_json::json;
use tel_emulator::{Collector, Options};

fn two_events() -> Vec<u8> {
    ndjson(&[envelope("First.Event"), envelope("Second_Event")])
}

#[test]
fn a_good_request_is_accepted_and_recorded() {
    let collector = Collector::start().unwrap();
    let reply = upload(collector.port(), &two_events());
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), r#"{"acc":2}"#);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("content-length"), Some("9"));
    assert_eq!(reply.collector_error(), None);

    let accepted = collector.accepted();
    assert_eq!(collector.accepted_count(), 2);
    assert_eq!(accepted[0]["name"], "First.Event");
    assert_eq!(accepted[1]["name"], "Second_Event");
    let requests = collector.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/OneCollector/1.0/")
    );
    assert_eq!((r.status, r.accepted, r.rejected), (200, 2, 0));
    assert_eq!(r.header("X-APIKEY"), Some(KEY));
    assert_eq!(r.lines.len(), 2);
    assert!(!r.full_key_in_body);
    assert!(r.received_at_ms > 1_700_000_000_000);
}

#[test]
fn raw_deflate_and_gzip_bodies_are_accepted() {
    let collector = Collector::start().unwrap();
    let body = two_events();
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "deflate")],
        &deflate(&body),
    );
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":2}"#.into()));
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "gzip")],
        &gzip(&body),
    );
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":2}"#.into()));
    assert_eq!(collector.accepted_count(), 4);
    let requests = collector.requests();
    assert_eq!(requests[0].body, body);
    assert_eq!(requests[0].raw_body, deflate(&body));
}

#[test]
fn zlib_wrapped_deflate_is_refused() {
    let collector = Collector::start().unwrap();
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "deflate")],
        &zlib(&two_events()),
    );
    assert_eq!(reply.status, 400);
    assert!(reply.collector_error().unwrap().contains("zlib-wrapped"));
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn an_unknown_encoding_or_a_corrupt_body_is_400() {
    let collector = Collector::start().unwrap();
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "br")],
        &two_events(),
    );
    assert_eq!(reply.status, 400);
    assert!(reply.collector_error().unwrap().contains("br"));
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "gzip")],
        b"garbage",
    );
    assert_eq!(reply.status, 400);
}

#[test]
fn the_full_key_in_ikey_is_an_invalid_tenant_token() {
    let collector = Collector::start().unwrap();
    let body = ndjson(&[
        envelope("Good.Event"),
        envelope_with("Bad.Event", "/iKey", json!(format!("o:{KEY}"))),
    ]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.collector_error(), Some("Invalid Tenant Token"));
    assert_eq!(collector.accepted_count(), 0);
    let r = &collector.requests()[0];
    assert_eq!((r.status, r.accepted), (401, 0));
    assert!(r.full_key_in_body);

    let other = ndjson(&[envelope_with("Bad.Event", "/iKey", json!("o:someoneelse"))]);
    let reply = upload(collector.port(), &other);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.collector_error(), Some("Invalid Tenant Token"));
}

#[test]
fn the_full_key_anywhere_in_the_body_is_refused_and_flagged() {
    let collector = Collector::start().unwrap();
    let body = ndjson(&[envelope_with("Leaky.Event", "/data/key", json!(KEY))]);
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "deflate")],
        &deflate(&body),
    );
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.collector_error(),
        Some("Full instrumentation key found in body")
    );
    assert!(collector.requests()[0].full_key_in_body);
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn an_undocumented_ext_field_rejects_the_whole_batch() {
    let collector = Collector::start().unwrap();
    let body = ndjson(&[
        envelope("Good.Event"),
        envelope_with("Bad.Event", "/ext/os/release", json!("24H2")),
    ]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.text(),
        r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#
    );
    assert!(reply.collector_error().unwrap().contains("ext.os.release"));
    assert_eq!(collector.accepted_count(), 0);

    let body = ndjson(&[envelope_with(
        "Bad.Event",
        "/ext/app",
        json!({"initTs": "1"}),
    )]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 400);
    assert!(reply.collector_error().unwrap().contains("ext.app.initTs"));
}

#[test]
fn a_bad_device_local_id_rejects_that_event_only() {
    let collector = Collector::start().unwrap();
    let bad = |name| envelope_with(name, "/ext/device/localId", json!("5b1f0a9e"));
    let body = ndjson(&[
        envelope("Event.Zero"),
        bad("Event.One"),
        envelope("Event.Two"),
    ]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        r#"{"acc":2,"rej":1,"efi":{"InvalidDeviceLocalId":[1]}}"#
    );
    let names: Vec<_> = collector
        .accepted()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, [json!("Event.Zero"), json!("Event.Two")]);
    assert_eq!(collector.requests()[0].rejected, 1);

    // protocol.md's recorded answer, word for word.
    let reply = upload(
        collector.port(),
        &ndjson(&[bad("Event.One"), bad("Event.Two")]),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.collector_error(),
        Some("No events passed validation.")
    );
    assert_eq!(
        reply.text(),
        r#"{"acc":0,"rej":2,"efi":{"InvalidDeviceLocalId":[0,1]}}"#
    );
    assert_eq!(collector.accepted_count(), 2);
}

#[test]
fn per_event_faults_are_listed_by_reason() {
    let collector = Collector::start().unwrap();
    let body = ndjson(&[
        envelope_with("abc", "/name", json!("abc")),
        envelope_with("Bad.Time", "/time", json!("2026-05-07T03:09:12Z")),
        envelope("Good.Event"),
        envelope_with("Bad.Ver", "/ver", json!("3.0")),
        envelope_with("Bad.Data", "/data", json!([1, 2])),
        envelope_with("_bad", "/name", json!("_bad")),
    ]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"acc":1,"rej":5,"efi":{
            "InvalidEventName":[0,5],"InvalidTime":[1],"InvalidVersion":[3],"InvalidData":[4]}})
    );
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn the_content_type_must_be_a_json_stream() {
    let collector = Collector::start().unwrap();
    let array = format!("[{}]", envelope("Array.Event"));
    let reply = upload_with(
        collector.port(),
        &[("Content-Type", "application/json")],
        array.as_bytes(),
    );
    assert_eq!(reply.status, 415);
    assert!(reply.collector_error().is_some());
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let reply = upload_with(
        collector.port(),
        &[("Content-Type", "application/x-json-stream")],
        &two_events(),
    );
    assert_eq!(reply.status, 200);
    let reply = upload_with(
        collector.port(),
        &[("Content-Type", "application/x-json-stream; charset=latin1")],
        &two_events(),
    );
    assert_eq!(reply.status, 415);

    // An array with the right content type is still not a stream.
    let reply = upload(collector.port(), array.as_bytes());
    assert_eq!(reply.status, 400);
    assert!(reply.collector_error().unwrap().contains("array"));
    assert_eq!(collector.accepted_count(), 2);
}

#[test]
fn the_api_key_must_be_present_well_formed_and_known() {
    let collector = Collector::start().unwrap();
    let reply = request(
        collector.port(),
        "POST",
        "/OneCollector/1.0/",
        &headers_with("x-apikey", None),
        &two_events(),
    );
    assert_eq!(reply.status, 401);
    assert!(reply.collector_error().unwrap().contains("x-apikey"));
    for malformed in ["abc123", "-abc123", ""] {
        let reply = upload_with(collector.port(), &[("x-apikey", malformed)], &two_events());
        assert_eq!(reply.status, 401, "{malformed:?}");
        assert_eq!(reply.collector_error(), Some("Invalid Tenant Token"));
    }
    assert_eq!(collector.accepted_count(), 0);

    let known_only = Collector::start_with(Options {
        api_keys: Some(vec!["abc123-other".into()]),
        ..Options::default()
    })
    .unwrap();
    let reply = upload(known_only.port(), &two_events());
    assert_eq!(reply.status, 401);
    assert_eq!(reply.collector_error(), Some("Invalid Tenant Token"));
}

#[test]
fn a_request_with_only_content_type_and_key_is_accepted() {
    // What a minimal exporter sends (protocol.md): the service takes it, so the emulator does.
    let collector = Collector::start().unwrap();
    let headers: Vec<(String, String)> = [
        ("Content-Type", "application/x-json-stream; charset=utf-8"),
        ("x-apikey", KEY),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let reply = request(
        collector.port(),
        "POST",
        "/OneCollector/1.0/",
        &headers,
        &two_events(),
    );
    assert_eq!(reply.status, 200, "{:?}", reply.collector_error());
    assert_eq!(reply.text(), r#"{"acc":2}"#);
    for name in ["Client-Id", "sdk-version", "Upload-Time"] {
        let reply = request(
            collector.port(),
            "POST",
            "/OneCollector/1.0/",
            &headers_with(name, None),
            &two_events(),
        );
        assert_eq!(
            reply.status,
            200,
            "without {name}: {:?}",
            reply.collector_error()
        );
    }
    assert_eq!(collector.accepted_count(), 8);
    let missing = tel_emulator::missing_optional_headers(&collector.requests()[0].headers);
    assert_eq!(missing, ["Client-Id", "sdk-version", "Upload-Time"]);
    let missing = tel_emulator::missing_optional_headers(&collector.requests()[2].headers);
    assert_eq!(missing, ["sdk-version"]);
}

#[test]
fn optional_headers_present_but_malformed_are_named() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let path = "/OneCollector/1.0/";
    let cases = [
        (headers_with("Client-Id", Some("AUTH")), "Client-Id"),
        (headers_with("sdk-version", Some("")), "sdk-version"),
        (headers_with("sdk-version", Some("  ")), "sdk-version"),
        (headers_with("Upload-Time", Some("soon")), "Upload-Time"),
        (headers_with("Upload-Time", Some("")), "Upload-Time"),
        (
            headers_with("Upload-Time", Some("1778123352")),
            "Upload-Time",
        ),
    ];
    for (headers, name) in cases {
        let reply = request(port, "POST", path, &headers, &two_events());
        assert_eq!(reply.status, 400, "{name}");
        let error = reply.collector_error().unwrap();
        assert!(error.contains(name), "{error:?} should name {name}");
    }
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn trace_context_and_exception_extensions_are_accepted_when_well_formed() {
    let collector = Collector::start().unwrap();
    let dt = json!({"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","traceFlags":1});
    let ex = json!({"type":"System.InvalidOperationException","msg":"no","stack":"at A.B()"});
    let body = ndjson(&[
        envelope_with("Traced.Event", "/ext/dt", dt.clone()),
        envelope_with("Failed.Event", "/ext/ex", ex.clone()),
    ]);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 200, "{:?}", reply.collector_error());
    assert_eq!(reply.text(), r#"{"acc":2}"#);
    let accepted = collector.accepted();
    assert_eq!(accepted[0]["ext"]["dt"], dt);
    assert_eq!(accepted[1]["ext"]["ex"], ex);

    // A malformed value takes the whole batch down, named like an undocumented field.
    let cases = [
        (
            "/ext/dt",
            json!({"traceId":"0AF7651916CD43DD8448EB211C80319C"}),
            "ext.dt.traceId",
        ),
        (
            "/ext/dt",
            json!({"spanId":"b7ad6b716920333"}),
            "ext.dt.spanId",
        ),
        ("/ext/dt", json!({"traceFlags":256}), "ext.dt.traceFlags"),
        ("/ext/dt", json!({"traceFlags":"1"}), "ext.dt.traceFlags"),
        (
            "/ext/dt",
            json!({"parentId":"b7ad6b7169203331"}),
            "ext.dt.parentId",
        ),
        ("/ext/ex", json!({"msg":{"text":"no"}}), "ext.ex.msg"),
        ("/ext/ex", json!({"stack":["at A.B()"]}), "ext.ex.stack"),
        ("/ext/ex", json!({"code":"E1"}), "ext.ex.code"),
        (
            "/ext/dt",
            json!("0af7651916cd43dd8448eb211c80319c"),
            "ext.dt",
        ),
    ];
    for (pointer, value, field) in cases {
        let body = ndjson(&[
            envelope("Good.Event"),
            envelope_with("Bad.Event", pointer, value.clone()),
        ]);
        let reply = upload(collector.port(), &body);
        assert_eq!(reply.status, 400, "{value}");
        assert_eq!(
            reply.text(),
            r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#
        );
        let error = reply.collector_error().unwrap();
        assert!(
            error.starts_with(&format!("{field} ")),
            "{error:?} should name {field}"
        );
    }
    assert_eq!(collector.accepted_count(), 2);
}

#[test]
fn bodies_over_the_limits_are_413() {
    let collector = Collector::start_with(Options {
        max_body_bytes: 1000,
        max_raw_body_bytes: 5000,
        ..Options::default()
    })
    .unwrap();
    let many: Vec<String> = (0..50).map(|i| envelope(&format!("Event{i}"))).collect();
    let body = ndjson(&many);
    assert!(body.len() > 5000);
    let reply = upload_with(
        collector.port(),
        &[("Content-Encoding", "deflate")],
        &deflate(&body),
    );
    assert_eq!(reply.status, 413);
    let reply = upload(collector.port(), &body);
    assert_eq!(reply.status, 413);
    assert_eq!(collector.accepted_count(), 0);
    assert_eq!(collector.request_count(), 2);
}

#[test]
fn paths_and_methods() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    let reply = request(
        port,
        "POST",
        "/OneCollector/1.0",
        &upload_headers(),
        &two_events(),
    );
    assert_eq!(reply.status, 200);
    let reply = request(
        port,
        "POST",
        "/OneCollector/1.0/?cors=true",
        &upload_headers(),
        &two_events(),
    );
    assert_eq!(reply.status, 200);
    let reply = request(
        port,
        "POST",
        "/OneCollector/2.0/",
        &upload_headers(),
        &two_events(),
    );
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = request(port, "GET", "/OneCollector/1.0/", &upload_headers(), b"");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
    let statuses: Vec<u16> = collector.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 200, 405]);
}

#[test]
fn body_framing_rules() {
    let collector = Collector::start().unwrap();
    let port = collector.port();
    // No trailing newline is fine too.
    let reply = upload(port, envelope("No.Newline").as_bytes());
    assert_eq!(reply.text(), r#"{"acc":1}"#);
    let with_empty_line = format!("{}\n\n{}\n", envelope("One.Event"), envelope("Two.Event"));
    let reply = upload(port, with_empty_line.as_bytes());
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.text(),
        r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#
    );
    let crlf = format!("{}\r\n{}\r\n", envelope("One.Event"), envelope("Two.Event"));
    assert_eq!(upload(port, crlf.as_bytes()).status, 400);
    let broken = format!("{}\n{{\"ver\":", envelope("One.Event"));
    assert_eq!(upload(port, broken.as_bytes()).status, 400);
    assert_eq!(upload(port, b"").status, 400);
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn chunked_request_bodies_are_read() {
    let collector = Collector::start().unwrap();
    let body = deflate(&two_events());
    let (a, b) = body.split_at(body.len() / 2);
    let mut wire = String::from("POST /OneCollector/1.0/ HTTP/1.1\r\nHost: x\r\n");
    for (name, value) in upload_headers() {
        wire.push_str(&format!("{name}: {value}\r\n"));
    }
    wire.push_str("Content-Encoding: deflate\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut bytes = wire.into_bytes();
    for chunk in [a, b] {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    let mut client = Client::connect(collector.port());
    client.send_raw(&bytes);
    let reply = client.read_reply().unwrap();
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":2}"#.into()));
}

#[test]
fn accepted_envelopes_are_appended_to_the_record_file() {
    let path =
        std::env::temp_dir().join(format!("tel-emulator-record-{}.ndjson", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let collector = Collector::start_with(Options {
        record: Some(path.clone()),
        ..Options::default()
    })
    .unwrap();
    upload(collector.port(), &two_events());
    upload(collector.port(), &ndjson(&[envelope("Third.Event")]));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let names: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["First.Event", "Second_Event", "Third.Event"]);
}
