//! `Options::tls`: the collector behind HTTPS, with a CA and a server certificate made at start.
//!
//! TLS is terminated in front of the plain collector: each TLS connection is relayed, once its
//! handshake is done, to a plain connection of the collector on loopback, so every scripted
//! answer and fault works over HTTPS unchanged. No client trusts the certificate unless it is
//! given the CA ([`TlsFront::ca_der`], [`TlsFront::ca_pem`]): that is the point, a client that
//! verifies certificates must refuse this server, and the counters tell whether it even
//! finished a handshake, and whether it resumed a session.

use crate::listener::AcceptLoop;
use crate::sync::lock;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// What a TLS front saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounts {
    /// TCP connections accepted on the HTTPS port.
    pub connections: u64,
    /// Handshakes completed (the client accepted the certificate), resumed ones included.
    pub handshakes: u64,
    /// Of `handshakes`, those that resumed an earlier session (no certificate sent, no
    /// signature made): `handshakes - resumed` is the number of full handshakes.
    pub resumed: u64,
    /// Connections that failed before or during the handshake (e.g. the client's
    /// `unknown_ca` alert, or plain HTTP sent to the HTTPS port).
    pub handshake_failures: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    handshakes: AtomicU64,
    resumed: AtomicU64,
    handshake_failures: AtomicU64,
}

struct FrontShared {
    counters: Counters,
    /// The round-trip time played (`Options::rtt`).
    rtt: Duration,
}

/// A private CA and a server certificate it signed, made fresh for one front.
pub struct TlsMaterial {
    pub ca_der: Vec<u8>,
    pub ca_pem: String,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

impl TlsMaterial {
    /// A CA ("tel-emulator test CA <pid>-<time>") and a server certificate for `localhost`,
    /// `127.0.0.1`, `::1` and `names` (host names or IP addresses).
    pub fn generate(names: &[String]) -> io::Result<TlsMaterial> {
        let mut ca_params = rcgen::CertificateParams::new(Vec::new());
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own: two CAs of two emulators are told apart by name, as unrelated
        // CAs are (a client given the other one finds no issuer, not a bad signature).
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        ca_params.distinguished_name.push(
            rcgen::DnType::CommonName,
            format!("tel-emulator test CA {}-{unique}", std::process::id()),
        );
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca = rcgen::Certificate::from_params(ca_params).map_err(io::Error::other)?;
        let mut sans = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        for name in names {
            if !sans.contains(name) {
                sans.push(name.clone());
            }
        }
        let mut params = rcgen::CertificateParams::new(Vec::new());
        params.subject_alt_names = sans
            .iter()
            .map(|n| match n.parse::<std::net::IpAddr>() {
                Ok(ip) => rcgen::SanType::IpAddress(ip),
                Err(_) => rcgen::SanType::DnsName(n.clone()),
            })
            .collect();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "tel-emulator");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = rcgen::Certificate::from_params(params).map_err(io::Error::other)?;
        Ok(TlsMaterial {
            ca_der: ca.serialize_der().map_err(io::Error::other)?,
            ca_pem: ca.serialize_pem().map_err(io::Error::other)?,
            cert_der: cert
                .serialize_der_with_signer(&ca)
                .map_err(io::Error::other)?,
            key_der: cert.serialize_private_key_der(),
        })
    }

    /// A server configuration presenting the certificate (with ring, TLS 1.2 and 1.3, and
    /// the default in-memory session cache, so that clients can resume).
    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(self.cert_der.clone())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
        )
        .map_err(io::Error::other)
    }
}

/// The HTTPS listener in front of a plain collector.
pub(crate) struct TlsFront {
    material: TlsMaterial,
    shared: Arc<FrontShared>,
    accepting: AcceptLoop,
}

impl TlsFront {
    /// Listens on `ip:port` (a loopback address; port 0: any free port) and relays to
    /// `backend`; the server certificate names `localhost`, `127.0.0.1`, `::1` and `names`. Plays a round-trip time of `rtt`
    /// for the TCP handshake and each handshake flight the client waits for.
    pub fn start(
        ip: IpAddr,
        port: u16,
        backend: SocketAddr,
        names: &[String],
        rtt: Duration,
    ) -> io::Result<TlsFront> {
        let material = TlsMaterial::generate(names)?;
        let config = Arc::new(material.server_config()?);
        let listener = TcpListener::bind((ip, port))?;
        let shared = Arc::new(FrontShared {
            counters: Counters::default(),
            rtt,
        });
        let accepting = {
            let shared = Arc::clone(&shared);
            AcceptLoop::start(listener, "tel-emulator-tls", move |stream| {
                shared.counters.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                let config = Arc::clone(&config);
                move || relay(&shared, stream, config, backend)
            })?
        };
        Ok(TlsFront {
            material,
            shared,
            accepting,
        })
    }

    pub fn port(&self) -> u16 {
        self.accepting.port()
    }

    /// The CA certificate (DER) that signed the server's, for a client that should trust it.
    pub fn ca_der(&self) -> &[u8] {
        &self.material.ca_der
    }

    /// The CA certificate as PEM, for `SSL_CERT_FILE`.
    pub fn ca_pem(&self) -> &str {
        &self.material.ca_pem
    }

    pub fn counts(&self) -> TlsCounts {
        let c = &self.shared.counters;
        TlsCounts {
            connections: c.connections.load(Ordering::SeqCst),
            handshakes: c.handshakes.load(Ordering::SeqCst),
            resumed: c.resumed.load(Ordering::SeqCst),
            handshake_failures: c.handshake_failures.load(Ordering::SeqCst),
        }
    }
}

/// One TLS connection: handshake, then plaintext both ways between the client and a fresh
/// plain connection to the collector. The TLS state is shared by the two directions under a
/// lock that is never held across a blocking read.
fn relay(
    shared: &FrontShared,
    client: TcpStream,
    config: Arc<rustls::ServerConfig>,
    backend: SocketAddr,
) {
    let Ok(tls) = rustls::ServerConnection::new(config) else {
        return;
    };
    // Records and relayed answers go out as they come: with Nagle's algorithm, a small write
    // behind an unacknowledged one would wait for the peer's delayed ACK (40 ms on Linux).
    let _ = client.set_nodelay(true);
    // The TCP handshake of a far collector.
    if !shared.rtt.is_zero() {
        std::thread::sleep(shared.rtt);
    }
    let tls = Arc::new(Mutex::new(tls));
    let mut client_read = match client.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut plain: Option<TcpStream> = None;
    let mut pump: Option<JoinHandle<()>> = None;
    let mut handshaken = false;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match client_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut conn = lock(&tls);
        let mut input = &buf[..n];
        let mut failed = false;
        let was_handshaking = conn.is_handshaking();
        while !input.is_empty() {
            if conn.read_tls(&mut input).is_err() || conn.process_new_packets().is_err() {
                failed = true;
                break;
            }
        }
        let far = !shared.rtt.is_zero();
        if far && !failed && was_handshaking && conn.wants_write() && waits_for_flight(&conn) {
            // A far collector's handshake flight reaches the client one round trip later.
            std::thread::sleep(shared.rtt);
        }
        // Handshake replies, or the alert explaining a failure.
        while conn.wants_write() {
            if conn.write_tls(&mut &client).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break;
        }
        if !handshaken && !conn.is_handshaking() {
            handshaken = true;
            shared.counters.handshakes.fetch_add(1, Ordering::SeqCst);
            if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                shared.counters.resumed.fetch_add(1, Ordering::SeqCst);
            }
        }
        let mut clear = Vec::new();
        match conn.reader().read_to_end(&mut clear) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        drop(conn);
        if clear.is_empty() {
            continue;
        }
        if plain.is_none() {
            let Ok(p) = TcpStream::connect(backend) else {
                break;
            };
            let _ = p.set_nodelay(true);
            let (tls2, client2) = (Arc::clone(&tls), client.try_clone());
            let (Ok(back_read), Ok(client2)) = (p.try_clone(), client2) else {
                break;
            };
            pump = std::thread::Builder::new()
                .name("tel-emulator-tls-back".into())
                .spawn(move || pump_back(back_read, tls2, client2))
                .ok();
            plain = Some(p);
        }
        if plain
            .as_ref()
            .is_some_and(|mut p| p.write_all(&clear).is_err())
        {
            break;
        }
    }
    if !handshaken {
        // Whichever way it ended (an alert, garbage, or the client hanging up), the
        // connection never got past the handshake.
        shared
            .counters
            .handshake_failures
            .fetch_add(1, Ordering::SeqCst);
    }
    if let Some(p) = &plain {
        let _ = p.shutdown(Shutdown::Both);
    }
    let _ = client.shutdown(Shutdown::Both);
    if let Some(t) = pump {
        let _ = t.join();
    }
}

/// Whether the client waits for what the server is about to write in the handshake: every
/// flight but TLS 1.3's session tickets, which follow the server's Finished and are not waited
/// for (TLS 1.2's last flight, ChangeCipherSpec and Finished, is).
fn waits_for_flight(conn: &rustls::ServerConnection) -> bool {
    conn.is_handshaking() || conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3)
}

/// The collector's answer, encrypted back to the client; its end closes the TLS session.
fn pump_back(mut back: TcpStream, tls: Arc<Mutex<rustls::ServerConnection>>, client: TcpStream) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match back.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut conn = lock(&tls);
        if conn.writer().write_all(&buf[..n]).is_err() {
            break;
        }
        while conn.wants_write() {
            if conn.write_tls(&mut &client).is_err() {
                return;
            }
        }
    }
    let mut conn = lock(&tls);
    conn.send_close_notify();
    while conn.wants_write() {
        if conn.write_tls(&mut &client).is_err() {
            break;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
}
