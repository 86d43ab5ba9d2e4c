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
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    fn client_config(collector: &Collector) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(collector.tls_certificate_der().unwrap().into())
            .unwrap();
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    /// One upload on a new TLS connection, read to its end.
    fn upload_over_tls(port: u16, config: Arc<rustls::ClientConfig>) -> String {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let body = ndjson(&[envelope("Tls.Event")]);
        let mut request = format!(
            "POST /OneCollector/1.0/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in upload_headers() {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        tls.write_all(request.as_bytes()).unwrap();
        tls.write_all(&body).unwrap();
        let mut reply = Vec::new();
        match tls.read_to_end(&mut reply) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
            Err(e) => panic!("{e}"),
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    #[test]
    fn a_tls_connection_costs_the_tcp_and_the_tls_round_trips() {
        let collector = Collector::start_with(Options {
            tls: true,
            rtt: RTT,
            ..Options::default()
        })
        .unwrap();
        let start = Instant::now();
        let reply = upload_over_tls(collector.port(), client_config(&collector));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        let took = start.elapsed();
        // TCP, the server's TLS 1.3 flight, the answer.
        assert!(took >= 3 * RTT, "took {took:?}");
    }
}
