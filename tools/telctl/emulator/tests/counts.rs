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
