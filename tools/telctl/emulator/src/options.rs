//! How a collector is set up.

use std::path::PathBuf;
use std::time::Duration;

/// How a [`Collector`](crate::Collector) is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// When set, the only `x-apikey` values accepted; others get 401.
    pub api_keys: Option<Vec<String>>,
    /// Bound on a body once decompressed (413 beyond). Default 3 MiB.
    pub max_body_bytes: usize,
    /// Bound on a body as received (413 beyond, and the connection is closed). Default 10 MiB.
    pub max_raw_body_bytes: usize,
    /// Port on 127.0.0.1 (on `::1` with `ipv6`); 0 picks a free one.
    pub port: u16,
    /// Listen on the IPv6 loopback `[::1]` instead of 127.0.0.1 (the TLS certificate names
    /// `::1` too), for clients given an IPv6 literal.
    pub ipv6: bool,
    /// A file to which accepted envelopes are appended, one JSON line each.
    pub record: Option<PathBuf>,
    /// Serve HTTPS with a certificate signed by a CA made at start (feature `tls`): no client
    /// trusts it unless given the CA ([`Collector::tls_certificate_der`],
    /// [`Collector::tls_ca_pem`]). The endpoint is `https://`.
    pub tls: bool,
    /// With `tls`: host names (or addresses) the server certificate names besides `localhost`
    /// and `127.0.0.1`, for clients that reach it under another name (through a proxy, or a
    /// hosts file in a network namespace).
    pub tls_names: Vec<String>,
    /// Keep every request and accepted envelope for inspection (the default). Off, only the
    /// counts are kept: for benchmarks and long runs, whose memory would otherwise grow.
    pub keep_records: bool,
    /// A round-trip time to play, as if the collector were far away (zero: none). Each new
    /// connection waits it once (the TCP handshake), each handshake flight of the TLS server
    /// once more (one for TLS 1.3, two for a full TLS 1.2 handshake), and each answer on the
    /// collector path once. Connections wait in parallel: it adds latency, not load.
    pub rtt: Duration,
    /// A sink, not a collector: every POST to the collector path is answered 200 `{}` without
    /// being decoded, parsed or checked, and only counted (in [`Collector::request_count`]);
    /// scripts do not apply and nothing is accepted or recorded. For measuring a client's own
    /// limit, which a strict collector would hide. Off by default.
    pub sink: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_keys: None,
            max_body_bytes: 3 * 1024 * 1024,
            max_raw_body_bytes: 10 * 1024 * 1024,
            port: 0,
            ipv6: false,
            record: None,
            tls: false,
            tls_names: Vec::new(),
            keep_records: true,
            rtt: Duration::ZERO,
            sink: false,
        }
    }
}
