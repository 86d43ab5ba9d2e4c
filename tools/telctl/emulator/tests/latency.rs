//! `Options::rtt`: the collector plays a far collector's round trips. The round trips are checked as lower bounds only: a delay
//! the collector adds on purpose cannot come out shorter, however loaded the machine.

mod common;

use common::*;
use std::time::{Duration, Instant};
use tel_emulator::{Collector, Options};

const RTT: Duration = Duration::from_millis(150);

#[test]
fn a_new_connection_and_each_answer_cost_a_round_trip() {
    let collector = Collector::start_with(Options {
        rtt: RTT,
        ..Options::default()
    })
    .unwrap();
    let body = ndjson(&[envelope("Far.Event")]);
    let start = Instant::now();
    let mut client = Client::connect(collector.port());
    let reply = client.request("POST", "/OneCollector/1.0/", &upload_headers(), &body);
    assert_eq!(reply.status, 200);
    let first = start.elapsed();
    assert!(first >= 2 * RTT, "connect + answer took {first:?}");
    let start = Instant::now();
    let reply = client.request("POST", "/OneCollector/1.0/", &upload_headers(), &body);
    assert_eq!(reply.status, 200);
    let again = start.elapsed();
    assert!(
        again >= RTT,
        "an answer on the same connection took {again:?}"
    );
    assert_eq!(collector.accepted_count(), 2);
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use common::tls::{exchange, trusting};

    #[test]
    fn a_tls_connection_costs_the_tcp_and_the_tls_round_trips() {
        let collector = Collector::start_with(Options {
            tls: true,
            rtt: RTT,
            ..Options::default()
        })
        .unwrap();
        let config = trusting(&collector);
        let start = Instant::now();
        let reply = exchange(collector.port(), config, "localhost").unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let took = start.elapsed();
        // TCP, the server's TLS 1.3 flight, the answer.
        assert!(took >= 3 * RTT, "took {took:?}");
    }
}
