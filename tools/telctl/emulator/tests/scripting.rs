//! Scripted answers and faults, seen from a raw client.

mod common;

use common::*;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};
use tel_emulator::{Collector, Fault, Scripted};

fn one_event() -> Vec<u8> {
    ndjson(&[envelope("Scripted.Event")])
}

/// A raw client that has sent `collector` one upload, not read its answer yet.
fn sent_one_upload(collector: &Collector) -> Client {
    let mut client = Client::connect(collector.port());
    client.send(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    client
}

#[test]
fn a_scripted_status_answers_once_and_accepts_nothing() {
    let collector = Collector::start().unwrap();
    collector.push(
        Scripted::status(503)
            .with_header("Retry-After", "2")
            .with_header("time-delta-millis", "-1500"),
    );
    let reply = upload(collector.port(), &one_event());
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("2"));
    assert_eq!(reply.header("time-delta-millis"), Some("-1500"));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(collector.accepted_count(), 0);

    let reply = upload(collector.port(), &one_event());
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":1}"#.into()));
    let statuses: Vec<_> = collector
        .requests()
        .iter()
        .map(|r| (r.status, r.accepted))
        .collect();
    assert_eq!(statuses, [(503, 0), (200, 1)]);
}

#[test]
fn times_reuses_an_answer_and_the_fifo_keeps_its_order() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::status(429).times(2));
    collector.push(Scripted::status(500).with_header("Collector-Error", "boom"));
    let statuses: Vec<u16> = (0..4)
        .map(|_| upload(collector.port(), &one_event()).status)
        .collect();
    assert_eq!(statuses, [429, 429, 500, 200]);
    assert_eq!(
        collector.requests()[2].collector_error.as_deref(),
        Some("boom")
    );
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn a_default_answers_while_the_script_is_empty() {
    let collector = Collector::start().unwrap();
    collector.set_default(Some(Scripted::status(503)));
    collector.push(Scripted::accept());
    let statuses: Vec<u16> = (0..3)
        .map(|_| upload(collector.port(), &one_event()).status)
        .collect();
    assert_eq!(statuses, [200, 503, 503]);
    collector.set_default(None);
    assert_eq!(upload(collector.port(), &one_event()).status, 200);
    assert_eq!(collector.accepted_count(), 2);
}

#[test]
fn an_acceptance_can_carry_kill_tokens() {
    let collector = Collector::start().unwrap();
    collector.push(
        Scripted::accept()
            .with_header("kill-tokens", "o:abc123")
            .with_header("kill-duration", "3600"),
    );
    let reply = upload(collector.port(), &one_event());
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":1}"#.into()));
    assert_eq!(reply.header("kill-tokens"), Some("o:abc123"));
    assert_eq!(reply.header("kill-duration"), Some("3600"));
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn a_scripted_2xx_overrides_the_status_of_a_normal_acceptance() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::status(204));
    collector.push(Scripted::status(200).with_body(r#"{"acc":7}"#));
    let mut client = Client::connect(collector.port());
    let reply = client.request(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    assert_eq!(reply.status, 204);
    assert!(reply.body.is_empty() && reply.header("content-length").is_none());
    assert_eq!(collector.accepted_count(), 1);
    // With a body of its own, nothing is accepted.
    let reply = client.request(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    assert_eq!((reply.status, reply.text()), (200, r#"{"acc":7}"#.into()));
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn a_delay_comes_before_the_answer() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::accept().with_delay(Duration::from_millis(150)));
    let started = Instant::now();
    let reply = upload(collector.port(), &one_event());
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(reply.status, 200);
}

#[test]
fn reset_closes_without_an_answer() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::Reset));
    let mut client = sent_one_upload(&collector);
    let mut buf = Vec::new();
    let result = client.reader.read_to_end(&mut buf);
    assert!(buf.is_empty(), "got {:?}", String::from_utf8_lossy(&buf));
    #[cfg(unix)]
    assert_eq!(
        result.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset)
    );
    #[cfg(not(unix))]
    let _ = result;
    let r = &collector.requests()[0];
    assert_eq!(
        (r.status, r.accepted, r.fault.as_deref()),
        (0, 0, Some("reset"))
    );
    assert_eq!(r.lines.len(), 1);
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn a_hang_lasts_until_release() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::HangBeforeHeaders));
    let mut client = sent_one_upload(&collector);
    assert!(collector.wait_for_requests(1, WAIT));
    // Nothing comes while the hang lasts.
    client
        .stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let err = client.reader.read(&mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    client.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    collector.release();
    assert!(client.closed(), "the connection should close at release");
    assert_eq!(collector.accepted_count(), 0);
    // The collector still serves others.
    assert_eq!(upload(collector.port(), &one_event()).status, 200);
}

#[test]
fn a_release_before_the_hang_begins_still_ends_it() {
    // The hang's request is recorded before it hangs; a release that follows the record must
    // end it even if it comes first.
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::HangBeforeHeaders).times(3));
    for _ in 0..3 {
        let mut client = sent_one_upload(&collector);
        let n = collector.request_count() + 1;
        assert!(collector.wait_for_requests(n, WAIT));
        collector.release();
        assert!(client.closed());
    }
}

#[test]
fn hang_mid_body_sends_part_of_the_body() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::HangMidBody));
    let mut client = sent_one_upload(&collector);
    assert!(collector.wait_for_requests(1, WAIT));
    let mut partial = [0u8; 10];
    let mut head = String::new();
    loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut client.reader, &mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Length: 1000\r\n"), "{head}");
    client.reader.read_exact(&mut partial).unwrap();
    collector.release();
    assert!(client.closed());
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn dropping_the_collector_ends_hangs() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::HangBeforeHeaders));
    let mut client = sent_one_upload(&collector);
    assert!(collector.wait_for_requests(1, WAIT));
    let started = Instant::now();
    drop(collector);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(client.closed());
}

#[test]
fn garbage_is_sent_as_is() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::Garbage(
        b"\x00\xffNOT HTTP".to_vec(),
    )));
    let mut client = sent_one_upload(&collector);
    assert_eq!(client.read_to_close().unwrap(), b"\x00\xffNOT HTTP");
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn a_lying_content_length_promises_more_than_it_sends() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::LyingContentLength));
    let mut client = sent_one_upload(&collector);
    let err = client.read_reply().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UnexpectedEof);
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn many_headers_and_a_huge_body_are_complete_responses() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::fault(Fault::ManyHeaders(5000)));
    collector.push(Scripted::fault(Fault::HugeBody(3 * 1024 * 1024 + 7)));
    collector.push(Scripted::fault(Fault::HugeBody(5)));
    let reply = upload(collector.port(), &one_event());
    assert_eq!(reply.status, 200);
    assert!(reply.headers.len() >= 5000);
    assert_eq!(reply.text(), r#"{"acc":1}"#);
    let reply = upload(collector.port(), &one_event());
    assert_eq!(reply.body.len(), 3 * 1024 * 1024 + 7);
    assert_eq!(reply.json()["acc"], 0);
    let reply = upload(collector.port(), &one_event());
    assert_eq!(reply.body, b"     ");
    assert_eq!(collector.accepted_count(), 0);
    let faults: Vec<_> = collector
        .requests()
        .iter()
        .map(|r| r.fault.clone().unwrap())
        .collect();
    assert_eq!(faults, ["many_headers", "huge_body", "huge_body"]);
}

#[test]
fn trickled_responses_arrive_whole_and_slowly() {
    let collector = Collector::start().unwrap();
    let interval = Duration::from_millis(2);
    collector.push(Scripted::status(503).with_fault(Fault::TrickleHeaders(interval)));
    let mut client = Client::connect(collector.port());
    let started = Instant::now();
    client.send(
        "POST",
        "/OneCollector/1.0/",
        &upload_headers(),
        &one_event(),
    );
    let all = client.read_to_close().unwrap();
    // One byte per interval: the last byte cannot come before (length - 1) intervals.
    assert!(started.elapsed() >= interval * (all.len() as u32 - 1));
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{text}"
    );
    assert!(text.contains("Connection: close\r\n"));
    assert_eq!(collector.requests()[0].fault.as_deref(), Some("trickle"));
}

#[test]
fn reset_of_the_collector_clears_everything() {
    let collector = Collector::start().unwrap();
    upload(collector.port(), &one_event());
    collector.push(Scripted::status(500));
    collector.set_default(Some(Scripted::status(503)));
    collector.reset();
    assert_eq!(
        (collector.request_count(), collector.accepted_count()),
        (0, 0)
    );
    assert_eq!(upload(collector.port(), &one_event()).status, 200);
}

#[test]
fn watchers_see_every_request() {
    let collector = Collector::start().unwrap();
    let watcher = collector.watch();
    collector.push(Scripted::status(500));
    upload(collector.port(), &one_event());
    upload(collector.port(), &one_event());
    let seen: Vec<u16> = watcher.try_iter().map(|r| r.status).collect();
    assert_eq!(seen, [500, 200]);
}
