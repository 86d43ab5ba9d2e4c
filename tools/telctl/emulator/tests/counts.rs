//! With `keep_records` off, the collector keeps counts only: benchmarks and long runs stay flat.

mod common;

use common::*;
use std::time::Duration;
use tel_emulator::{Collector, Options};

#[test]
fn counts_without_records() {
    let collector = Collector::start_with(Options {
        keep_records: false,
        ..Options::default()
    })
    .unwrap();
    let body = ndjson(&[envelope("Count.One"), envelope("Count.Two")]);
    for _ in 0..3 {
        let reply = upload_with(collector.port(), &[], &body);
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert!(collector.wait_for_accepted(6, Duration::from_secs(5)));
    assert_eq!(collector.accepted_count(), 6);
    assert_eq!(collector.request_count(), 3);
    assert!(collector.accepted().is_empty(), "no envelope is kept");
    assert!(collector.requests().is_empty(), "no request is kept");
    collector.reset();
    assert_eq!(collector.accepted_count(), 0);
}

#[test]
fn a_sink_takes_every_upload_unchecked_and_counts_it() {
    let collector = Collector::start_with(Options {
        sink: true,
        keep_records: false,
        ..Options::default()
    })
    .unwrap();
    // Refused by a collector on every count: no key, an array body, garbage as deflate.
    let garbage = [("Content-Encoding", "deflate")];
    let reply = upload_with(collector.port(), &garbage, b"not deflate at all");
    assert_eq!((reply.status, reply.text().as_str()), (200, "{}"));
    let reply = request(
        collector.port(),
        "POST",
        "/OneCollector/1.0/",
        &headers_with("x-apikey", None),
        b"[1,2]",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(collector.request_count(), 2);
    assert_eq!(collector.accepted_count(), 0);
    assert!(collector.requests().is_empty());
    // Other paths are what they always are.
    let reply = request(
        collector.port(),
        "POST",
        "/elsewhere",
        &upload_headers(),
        b"",
    );
    assert_eq!(reply.status, 404);
    let reply = request(collector.port(), "GET", "/OneCollector/1.0/", &[], b"");
    assert_eq!(reply.status, 405);
}

#[test]
fn a_scripted_connection_close_closes_the_connection() {
    let collector = Collector::start().unwrap();
    collector.set_default(Some(
        tel_emulator::Scripted::accept().with_header("Connection", "close"),
    ));
    let mut client = Client::connect(collector.port());
    let body = ndjson(&[envelope("Closing.Event")]);
    let reply = client.request("POST", "/OneCollector/1.0/", &upload_headers(), &body);
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert!(client.closed(), "the collector closes after saying so");
    assert_eq!(collector.accepted_count(), 1);
}
