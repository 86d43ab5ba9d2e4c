//! `Options::tls`: the collector behind HTTPS with a CA and certificate made at start. A client
//! given that CA as its root completes the handshake and is served like over plain HTTP
//! (so a client that refuses the server refuses it for the certificate alone); a client with
//! the public roots is refused, and the collector sees no request.
#![cfg(feature = "tls")]

mod common;

use common::tls::{client, exchange, trusting, upload_request};
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use tel_emulator::{Collector, Options};

#[test]
fn a_client_trusting_the_certificate_is_served_over_https() {
    let c = Collector::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .unwrap();
    assert!(c.endpoint().starts_with("https://127.0.0.1:"));
    let config = trusting(&c);
    for host in ["localhost", "127.0.0.1", "localhost"] {
        let reply = exchange(c.port(), config.clone(), host).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{host}: {reply}");
    }
    assert_eq!(c.accepted_count(), 3);
    let counts = c.tls_counts();
    assert_eq!(
        (counts.connections, counts.handshakes),
        (3, 3),
        "{counts:?}"
    );
    // The second visit to "localhost" resumed the session of the first.
    assert_eq!(counts.resumed, 1, "{counts:?}");
    assert_eq!(
        c.connection_count(),
        3,
        "each relayed on its own connection"
    );
}

#[test]
fn the_certificate_names_the_extra_host_names() {
    let c = Collector::start_with(Options {
        tls: true,
        tls_names: vec!["collector.test".into()],
        ..Options::default()
    })
    .unwrap();
    let pem = c.tls_ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let config = trusting(&c);
    let reply = exchange(c.port(), config.clone(), "collector.test").unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let err = exchange(c.port(), config, "other.test").expect_err("a name not in it");
    assert!(err.to_string().contains("certificate"), "{err}");
}

#[test]
fn a_client_with_the_public_roots_is_refused_and_nothing_is_recorded() {
    let c = Collector::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .unwrap();
    let err = exchange(
        c.port(),
        client(rustls::RootCertStore::empty()),
        "localhost",
    )
    .expect_err("an untrusted certificate");
    assert!(
        err.to_string().to_ascii_lowercase().contains("certificate"),
        "{err}"
    );
    let deadline = std::time::Instant::now() + WAIT;
    while c.tls_counts().handshake_failures == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let counts = c.tls_counts();
    assert_eq!(counts.handshakes, 0, "{counts:?}");
    assert_eq!(counts.handshake_failures, 1, "{counts:?}");
    assert_eq!(c.request_count(), 0);
}

#[test]
fn plain_http_to_the_https_port_is_a_failed_handshake() {
    let c = Collector::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", c.port())).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    tcp.write_all(&upload_request(b"{}")).unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    assert!(!String::from_utf8_lossy(&reply).contains("HTTP/1.1 200"));
    assert_eq!(c.request_count(), 0);
}
