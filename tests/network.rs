//! Real networks, with real processes: the endpoint (any scheme case, IPv6 loopback, a host
//! that only looks like loopback), the route of a request (loopback never proxied, the proxy
//! variables in either case, NO_PROXY as curl reads it), proxy credentials, trust from
//! `SSL_CERT_FILE` and the refusal of an unknown CA with its reason, and connection reuse
//! (keep-alive over HTTP, TLS and CONNECT tunnels; TLS resumption; a connection the collector
//! closed while idle costs nothing).
//!
//! Each TLS or proxy test runs in a network namespace with only loopback up
//! (`tel_emulator::netns`):
//! the emulator and the CONNECT proxy run in the test's process there, and the library in a
//! client process started with the environment under test, whose counters and warnings the
//! test reads back.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use tel::config::Endpoint;
use tel::{CachePath, Client, Config};
use tel_emulator::{netns, ConnectProxy, Options, ProxyOptions};

const KEY: &str = "netten-0000-0000-0000-000000000000-0000";
/// Reachable only through the proxy, which maps it to the collector.
const PROXIED: &str = "proxied.test";
/// In the namespace's hosts file: reachable directly.
const DIRECT: &str = "direct.test";
const HOSTS: &str = "127.0.0.1 direct.test";
/// Every variable the route reads, cleared in client processes before the test's own.
const ROUTE_VARIABLES: &[&str] = &[
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "http_proxy",
    "HTTP_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

// ---------------------------------------------------------------------------------------------
// The client process.

/// The library in a process of its own, set up by `TEL_NET_*`: it logs one event and flushes,
/// `TEL_NET_FLUSHES` times (reading a line from stdin between flushes with `TEL_NET_STEP`),
/// shuts down, and prints `STATS <json>`.
#[test]
fn client_process() {
    let Ok(endpoint) = std::env::var("TEL_NET_ENDPOINT") else {
        return;
    };
    let number = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut config = Config::new(KEY).unwrap();
    config.endpoint = Endpoint::parse(&endpoint).unwrap();
    config.cache_path = CachePath::Disabled;
    config.flush_interval_ms = 600_000;
    config.http_timeout_ms = 5000;
    config.retry_initial_ms = 20;
    config.retry_max_ms = 50;
    config.retry_max_attempts = 3;
    config.connection_reuse = std::env::var("TEL_NET_REUSE").as_deref() != Ok("0");
    let client = Client::start(config).unwrap();
    let flush_ms = number("TEL_NET_FLUSH_MS", 10_000);
    let step = std::env::var_os("TEL_NET_STEP").is_some();
    let stdin = std::io::stdin();
    for i in 0..number("TEL_NET_FLUSHES", 1) {
        if step && i > 0 {
            let mut line = String::new();
            stdin.lock().read_line(&mut line).unwrap();
        }
        client.log(&format!("Net.Event{i}"), None).unwrap();
        let _ = client.flush(Duration::from_millis(flush_ms));
        if step {
            println!("FLUSHED {i}");
            std::io::stdout().flush().unwrap();
        }
    }
    let _ = client.shutdown(Duration::from_millis(500));
    println!("STATS {}", client.stats().to_json());
}

struct Run {
    stats: Value,
    /// The library's warnings and everything else it printed.
    stderr: String,
    stdout: String,
}

impl Run {
    fn stat(&self, name: &str) -> u64 {
        self.stats[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name}: {}", self.stats))
    }

    fn warnings(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("tel [warn]"))
            .collect()
    }
}

fn client_command(endpoint: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "client_process",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    for name in ROUTE_VARIABLES {
        cmd.env_remove(name);
    }
    cmd.env_remove(netns::INNER)
        .env("TEL_NET_ENDPOINT", endpoint)
        .env("TEL_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn parse_run(stdout: String, stderr: String) -> Run {
    let stats = stdout
        .lines()
        // The harness may print its `test client_process ... ` before it on the same line.
        .find_map(|l| l.split_once("STATS ").map(|(_, json)| json))
        .map(|j| serde_json::from_str(j).unwrap())
        .unwrap_or_else(|| panic!("no STATS line:\n{stdout}\n{stderr}"));
    Run {
        stats,
        stderr,
        stdout,
    }
}

/// Runs the client process against `endpoint` with `env` and returns what it reported.
fn client(endpoint: &str, env: &[(&str, &str)]) -> Run {
    let output = client_command(endpoint, env).output().unwrap();
    parse_run(
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------------------------
// The collector side.

/// A TLS collector whose certificate also names the test hosts, and its CA in a file.
fn tls_collector() -> (Collector, PathBuf) {
    let collector = Collector::start_with(Options {
        tls: true,
        tls_names: vec![PROXIED.into(), DIRECT.into()],
        ..Options::default()
    })
    .unwrap();
    let ca = std::env::temp_dir().join(format!("tel-networks-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, collector.tls_ca_pem().unwrap()).unwrap();
    (collector, ca)
}

/// A CONNECT proxy that knows the test hosts as the collector's address.
fn proxy_to(collector: &Collector, credentials: Option<(&str, &str)>) -> ConnectProxy {
    let address = ([127, 0, 0, 1], collector.port()).into();
    ConnectProxy::start(ProxyOptions {
        credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        hosts: vec![(PROXIED.into(), address), (DIRECT.into(), address)],
        ..ProxyOptions::default()
    })
    .unwrap()
}

fn endpoint(host: &str, collector: &Collector) -> String {
    format!("https://{host}:{}/OneCollector/1.0/", collector.port())
}

fn delivered(run: &Run, n: u64) {
    assert_eq!(run.stat("sent"), n, "{}\n{}", run.stats, run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Route rules.

#[test]
fn upper_case_https_proxy_is_used() {
    netns::inside("upper_case_https_proxy_is_used", HOSTS, || {
        let (collector, ca) = tls_collector();
        let proxy = proxy_to(&collector, None);
        let run = client(
            &endpoint(PROXIED, &collector),
            &[
                ("HTTPS_PROXY", &proxy.url()),
                ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ],
        );
        delivered(&run, 1);
        assert_eq!(proxy.counts().tunnels, 1);
        assert_eq!(
            proxy.targets(),
            vec![format!("{PROXIED}:{}", collector.port())]
        );
        assert_eq!(collector.accepted_count(), 1);
    });
}

/// Over TLS inside a `CONNECT` tunnel, on one kept connection: each `200` carries a header line
/// holding a control character, which the HTTP client's parser would refuse. The lines are left
/// out under the parser (not in the tunnel's own answer), so both answers count and nothing is
/// sent twice.
#[test]
fn a_malformed_header_line_over_tls_in_a_tunnel_is_left_out() {
    netns::inside(
        "a_malformed_header_line_over_tls_in_a_tunnel_is_left_out",
        HOSTS,
        || {
            let (collector, ca) = tls_collector();
            collector.set_default(Some(Scripted::status(200).with_header("X-Odd", "a\u{1}b")));
            let proxy = proxy_to(&collector, None);
            let run = client(
                &endpoint(PROXIED, &collector),
                &[
                    ("HTTPS_PROXY", &proxy.url()),
                    ("SSL_CERT_FILE", ca.to_str().unwrap()),
                    ("TEL_NET_FLUSHES", "2"),
                ],
            );
            delivered(&run, 2);
            assert_eq!(run.stat("http_failures"), 0, "{}", run.stderr);
            assert_eq!(collector.request_count(), 2);
            assert_eq!(collector.accepted_count(), 2);
            assert_eq!(proxy.counts().tunnels, 1, "one kept connection");
        },
    );
}

#[test]
fn lower_case_https_proxy_comes_before_upper_case() {
    netns::inside(
        "lower_case_https_proxy_comes_before_upper_case",
        HOSTS,
        || {
            let (collector, ca) = tls_collector();
            let proxy = proxy_to(&collector, None);
            let run = client(
                &endpoint(PROXIED, &collector),
                &[
                    ("https_proxy", &proxy.url()),
                    ("HTTPS_PROXY", "http://127.0.0.1:9"),
                    ("SSL_CERT_FILE", ca.to_str().unwrap()),
                ],
            );
            delivered(&run, 1);
            assert_eq!(proxy.counts().tunnels, 1);
        },
    );
}

#[test]
fn all_proxy_is_used_without_an_https_proxy() {
    netns::inside("all_proxy_is_used_without_an_https_proxy", HOSTS, || {
        let (collector, ca) = tls_collector();
        let proxy = proxy_to(&collector, None);
        let run = client(
            &endpoint(PROXIED, &collector),
            &[
                ("ALL_PROXY", &proxy.url()),
                // For http:// requests only: never read for the https:// endpoint.
                ("http_proxy", "http://127.0.0.1:9"),
                ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ],
        );
        delivered(&run, 1);
        assert_eq!(proxy.counts().tunnels, 1);
    });
}

#[test]
fn no_proxy_sends_the_hosts_it_names_direct() {
    netns::inside("no_proxy_sends_the_hosts_it_names_direct", HOSTS, || {
        let (collector, ca) = tls_collector();
        let proxy = proxy_to(&collector, None);
        let ca = ca.to_str().unwrap();
        let port = collector.port().to_string();
        let named = [
            ".test".to_owned(),
            "example.com, direct.test".to_owned(),
            format!("direct.test:{port}"),
            "*".to_owned(),
        ];
        for list in &named {
            for var in ["NO_PROXY", "no_proxy"] {
                let run = client(
                    &endpoint(DIRECT, &collector),
                    &[
                        ("HTTPS_PROXY", &proxy.url()),
                        (var, list),
                        ("SSL_CERT_FILE", ca),
                    ],
                );
                delivered(&run, 1);
                assert_eq!(proxy.counts().connections, 0, "{var}={list}");
            }
        }
        // Entries that do not name the host: through the proxy.
        for list in ["example.com", "irect.test", "direct.test:1", "127.0.0.1"] {
            let before = proxy.counts().tunnels;
            let run = client(
                &endpoint(DIRECT, &collector),
                &[
                    ("HTTPS_PROXY", &proxy.url()),
                    ("NO_PROXY", list),
                    ("SSL_CERT_FILE", ca),
                ],
            );
            delivered(&run, 1);
            assert_eq!(proxy.counts().tunnels, before + 1, "NO_PROXY={list}");
        }
    });
}

#[test]
fn loopback_is_never_proxied() {
    netns::inside("loopback_is_never_proxied", HOSTS, || {
        let (collector, ca) = tls_collector();
        let proxy = proxy_to(&collector, None);
        for host in ["127.0.0.1", "localhost"] {
            let run = client(
                &endpoint(host, &collector),
                &[
                    ("HTTPS_PROXY", &proxy.url()),
                    ("https_proxy", &proxy.url()),
                    ("ALL_PROXY", &proxy.url()),
                    ("SSL_CERT_FILE", ca.to_str().unwrap()),
                ],
            );
            delivered(&run, 1);
        }
        assert_eq!(proxy.counts().connections, 0);
    });
}

/// `https://[::1]:port/`: an IPv6 literal over TLS is delivered, checked against the address
/// the certificate names, and (being loopback) never proxied.
#[test]
fn https_to_an_ipv6_literal_is_delivered() {
    netns::inside("https_to_an_ipv6_literal_is_delivered", HOSTS, || {
        let collector = Collector::start_with(Options {
            tls: true,
            ipv6: true,
            ..Options::default()
        })
        .unwrap();
        let ca = std::env::temp_dir().join(format!("tel-networks-ca6-{}.pem", std::process::id()));
        std::fs::write(&ca, collector.tls_ca_pem().unwrap()).unwrap();
        let proxy = proxy_to(&collector, None);
        assert!(collector.endpoint().starts_with("https://[::1]:"));
        let run = client(
            &collector.endpoint(),
            &[
                ("HTTPS_PROXY", &proxy.url()),
                ("SSL_CERT_FILE", ca.to_str().unwrap()),
            ],
        );
        delivered(&run, 1);
        assert_eq!(collector.accepted_count(), 1);
        assert_eq!(proxy.counts().connections, 0);
    });
}

// ---------------------------------------------------------------------------------------------
// Credentials, trust and the reasons given.

#[test]
fn proxy_credentials_are_decoded_sent_and_never_shown() {
    netns::inside(
        "proxy_credentials_are_decoded_sent_and_never_shown",
        HOSTS,
        || {
            let (collector, ca) = tls_collector();
            let proxy = proxy_to(&collector, Some(("tel user", "p@ss:w0rd")));
            let ca = ca.to_str().unwrap();
            let secret_url = format!("http://tel%20user:p%40ss%3Aw0rd@127.0.0.1:{}", proxy.port());
            let run = client(
                &endpoint(PROXIED, &collector),
                &[
                    ("HTTPS_PROXY", &secret_url),
                    ("SSL_CERT_FILE", ca),
                    ("TEL_LOG", "trace"),
                ],
            );
            delivered(&run, 1);
            assert_eq!(
                (proxy.counts().tunnels, proxy.counts().auth_refused),
                (1, 0)
            );
            let everything = format!("{}{}", run.stdout, run.stderr);
            assert!(everything.contains("with credentials"), "{everything}");
            for secret in ["p@ss", "p%40ss", "w0rd", "tel user", "tel%20user"] {
                assert!(
                    !everything.contains(secret),
                    "{secret} shown:\n{everything}"
                );
            }

            // Without them: 407, said once however many attempts, at warn level.
            let plain = proxy.url();
            let run = client(
                &endpoint(PROXIED, &collector),
                &[
                    ("HTTPS_PROXY", &plain),
                    ("SSL_CERT_FILE", ca),
                    ("TEL_NET_FLUSHES", "2"),
                    ("TEL_NET_FLUSH_MS", "1000"),
                ],
            );
            assert_eq!(run.stat("sent"), 0);
            assert!(run.stat("http_requests") >= 2, "{}", run.stats);
            assert!(proxy.counts().auth_refused >= 2);
            let warnings = run.warnings();
            assert_eq!(warnings.len(), 1, "{}", run.stderr);
            assert!(
                warnings[0].contains(&format!("proxy {plain} (from HTTPS_PROXY) answered 407")),
                "{}",
                warnings[0]
            );
            // With the wrong ones: 407, and the message says they were refused.
            let wrong = format!("http://tel%20user:nope@127.0.0.1:{}", proxy.port());
            let run = client(
                &endpoint(PROXIED, &collector),
                &[
                    ("HTTPS_PROXY", &wrong),
                    ("SSL_CERT_FILE", ca),
                    ("TEL_NET_FLUSH_MS", "1000"),
                ],
            );
            assert_eq!(run.stat("sent"), 0);
            assert!(
                run.stderr.contains("refused the credentials"),
                "{}",
                run.stderr
            );
            assert!(!run.stderr.contains("nope"), "{}", run.stderr);
        },
    );
}

#[test]
fn an_unknown_ca_is_refused_with_its_reason() {
    netns::inside("an_unknown_ca_is_refused_with_its_reason", HOSTS, || {
        let (collector, _ca) = tls_collector();
        // Another CA in SSL_CERT_FILE: the collector's is in no store the client reads.
        let (_other, other_ca) = {
            let other = Collector::start_with(Options {
                tls: true,
                ..Options::default()
            })
            .unwrap();
            let path =
                std::env::temp_dir().join(format!("tel-other-ca-{}.pem", std::process::id()));
            std::fs::write(&path, other.tls_ca_pem().unwrap()).unwrap();
            (other, path)
        };
        let run = client(
            &endpoint("127.0.0.1", &collector),
            &[
                ("SSL_CERT_FILE", other_ca.to_str().unwrap()),
                ("TEL_NET_FLUSHES", "2"),
                ("TEL_NET_FLUSH_MS", "1000"),
            ],
        );
        assert_eq!(run.stat("sent"), 0);
        assert!(run.stat("http_requests") >= 2);
        assert_eq!(collector.request_count(), 0, "the events never reached it");
        let counts = collector.tls_counts();
        assert_eq!(counts.handshakes, 0, "{counts:?}");
        assert!(counts.handshake_failures >= 1, "{counts:?}");
        let warnings = run.warnings();
        assert_eq!(warnings.len(), 1, "{}", run.stderr);
        assert!(
            warnings[0].contains("certificate is not trusted (unknown issuer)")
                && warnings[0].contains("SSL_CERT_FILE"),
            "{}",
            warnings[0]
        );
    });
}

#[test]
fn an_unresolvable_host_without_a_proxy_says_so() {
    netns::inside(
        "an_unresolvable_host_without_a_proxy_says_so",
        HOSTS,
        || {
            let run = client(
                "https://nowhere.test/OneCollector/1.0/",
                &[("TEL_NET_FLUSH_MS", "1000")],
            );
            assert_eq!(run.stat("sent"), 0);
            let warnings = run.warnings();
            assert_eq!(warnings.len(), 1, "{}", run.stderr);
            assert!(
                warnings[0].contains("nowhere.test cannot be resolved and no proxy is configured"),
                "{}",
                warnings[0]
            );
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Connection reuse.

/// A session of `flushes` flushes, then the collector's connection count.
fn http_session(collector: &Collector, flushes: usize, reuse: bool) -> tel::Snapshot {
    let mut config = Config::new(KEY).unwrap();
    config.endpoint = Endpoint::parse(&collector.endpoint()).unwrap();
    config.cache_path = CachePath::Disabled;
    config.flush_interval_ms = 600_000;
    config.connection_reuse = reuse;
    let client = Client::start(config).unwrap();
    for i in 0..flushes {
        client.log(&format!("Reuse.Event{i}"), None).unwrap();
        client.flush(WAIT).unwrap();
    }
    client.shutdown(Duration::from_secs(2)).unwrap();
    client.stats()
}

#[test]
fn ten_flushes_over_http_share_one_connection() {
    let collector = Collector::start().unwrap();
    let stats = http_session(&collector, 10, true);
    assert_eq!((stats.sent, stats.http_requests), (10, 10));
    assert_eq!(collector.connection_count(), 1);

    // Reuse off: a connection per request.
    let collector = Collector::start().unwrap();
    let stats = http_session(&collector, 10, false);
    assert_eq!(stats.sent, 10);
    assert_eq!(collector.connection_count(), 10);
}

/// The collector closes the connection while it is idle: the next request sees it closed,
/// opens another at once, and neither an event nor an attempt is lost to it.
#[test]
fn an_idle_connection_closed_by_the_collector_costs_nothing() {
    let collector = Collector::start().unwrap();
    let mut config = Config::new(KEY).unwrap();
    config.endpoint = Endpoint::parse(&collector.endpoint()).unwrap();
    config.cache_path = CachePath::Disabled;
    config.flush_interval_ms = 600_000;
    let client = Client::start(config).unwrap();
    for round in 0..3 {
        client.log("Idle.Event", None).unwrap();
        client.flush(WAIT).unwrap();
        assert!(collector.drop_connections(), "round {round}");
    }
    client.log("Idle.Event", None).unwrap();
    client.flush(WAIT).unwrap();
    let stats = client.stats();
    assert_eq!(stats.sent, 4);
    assert_eq!((stats.retries, stats.http_failures), (0, 0), "{stats:?}");
    assert_eq!(stats.http_requests, 4);
    assert_eq!(collector.connection_count(), 4);
    client.shutdown(Duration::from_secs(2)).unwrap();
}

#[test]
fn ten_flushes_over_tls_share_one_connection() {
    netns::inside("ten_flushes_over_tls_share_one_connection", HOSTS, || {
        let (collector, ca) = tls_collector();
        let ca = ca.to_str().unwrap();
        let run = client(
            &endpoint("127.0.0.1", &collector),
            &[("SSL_CERT_FILE", ca), ("TEL_NET_FLUSHES", "10")],
        );
        delivered(&run, 10);
        assert_eq!(run.stat("http_requests"), 10);
        let counts = collector.tls_counts();
        assert_eq!(
            (counts.connections, counts.handshakes),
            (1, 1),
            "{counts:?}"
        );

        // Through a CONNECT tunnel: one tunnel for the ten.
        let proxy = proxy_to(&collector, None);
        let run = client(
            &endpoint(PROXIED, &collector),
            &[
                ("HTTPS_PROXY", &proxy.url()),
                ("SSL_CERT_FILE", ca),
                ("TEL_NET_FLUSHES", "10"),
            ],
        );
        delivered(&run, 10);
        assert_eq!(proxy.counts().tunnels, 1);
        assert_eq!(collector.tls_counts().handshakes, 2);

        // Reuse off: a connection and a full handshake per request.
        let before = collector.tls_counts();
        let run = client(
            &endpoint("127.0.0.1", &collector),
            &[
                ("SSL_CERT_FILE", ca),
                ("TEL_NET_FLUSHES", "10"),
                ("TEL_NET_REUSE", "0"),
            ],
        );
        delivered(&run, 10);
        let after = collector.tls_counts();
        assert_eq!(after.connections - before.connections, 10);
        assert_eq!(after.resumed - before.resumed, 0, "{after:?}");
    });
}

/// Over TLS, the collector closes idle connections between flushes: each new connection
/// resumes the session (no full handshake), and nothing is retried.
#[test]
fn a_new_tls_connection_resumes_the_session() {
    netns::inside("a_new_tls_connection_resumes_the_session", HOSTS, || {
        let (collector, ca) = tls_collector();
        let mut child = client_command(
            &endpoint("127.0.0.1", &collector),
            &[
                ("SSL_CERT_FILE", ca.to_str().unwrap()),
                ("TEL_NET_FLUSHES", "3"),
                ("TEL_NET_STEP", "1"),
            ],
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        for step in 0..3 {
            let mut line = String::new();
            while !line.contains("FLUSHED") {
                line.clear();
                assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
                seen.push_str(&line);
            }
            if step < 2 {
                assert!(collector.drop_connections());
                writeln!(stdin, "next").unwrap();
            }
        }
        drop(stdin);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        seen.push_str(&rest);
        let output = child.wait_with_output().unwrap();
        let run = parse_run(seen, String::from_utf8_lossy(&output.stderr).into_owned());
        delivered(&run, 3);
        assert_eq!(
            (run.stat("retries"), run.stat("http_failures")),
            (0, 0),
            "{}",
            run.stats
        );
        let counts = collector.tls_counts();
        assert_eq!(
            (counts.connections, counts.handshakes, counts.resumed),
            (3, 3, 2),
            "{counts:?}"
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Endpoints on loopback, without a namespace.

/// A one-request-at-a-time HTTP collector on `[::1]`: answers 200 and counts the lines.
fn ipv6_collector() -> Option<(u16, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    let listener = std::net::TcpListener::bind("[::1]:0").ok()?;
    let port = listener.local_addr().unwrap().port();
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = lines.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let n = body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            count.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
            let answer = format!("{{\"acc\":{n}}}");
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    Some((port, lines))
}

/// An endpoint either works or is refused at init: any scheme case and `[::1]` deliver; a host
/// part that only looks like loopback is `TEL_ERR_INVALID_CONFIG`.
#[test]
fn endpoints_work_in_any_scheme_case_and_on_ipv6_loopback() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let port = c.port();
    for endpoint in [
        format!("HTTP://127.0.0.1:{port}/OneCollector/1.0/"),
        format!("Http://localhost:{port}/OneCollector/1.0/"),
    ] {
        let before = c.accepted_count();
        init_ok(&fast_config(&endpoint, None, json!({})));
        log_ok("Endpoint.Case", None);
        assert_eq!(flush(10_000), 0, "{endpoint}: {}", last_error());
        assert_eq!(shutdown(1000), 0);
        assert_eq!(c.accepted_count() - before, 1, "{endpoint}");
    }
    let (v6_port, lines) = ipv6_collector().expect("::1 is up");
    let endpoint = format!("http://[::1]:{v6_port}/OneCollector/1.0/");
    init_ok(&fast_config(
        &endpoint,
        None,
        json!({"compression": "none"}),
    ));
    log_ok("Endpoint.Ipv6", None);
    log_ok("Endpoint.Ipv6", None);
    assert_eq!(flush(10_000), 0, "{endpoint}: {}", last_error());
    assert_eq!(shutdown(1000), 0);
    assert_eq!(stat("sent"), 2);
    assert_eq!(lines.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A host part that only looks like loopback is refused at init.
    for endpoint in [
        format!("http://127.0.0.1#.example.com:{port}/"),
        format!("http://127.0.0.1:{port}#x/OneCollector/1.0/"),
        format!("http://127.0.0.1%2eexample.com:{port}/"),
    ] {
        assert_eq!(
            init(&fast_config(&endpoint, None, json!({}))),
            2,
            "{endpoint} was accepted"
        );
    }
}

/// Loopback endpoints never go through a proxy, whatever the proxy variables say (the HTTP
/// client would route `http://` through `http_proxy`; such requests take a direct path).
#[test]
fn loopback_endpoints_bypass_proxy_variables() {
    if child_role().as_deref() == Some("proxy-bypass") {
        let c = Collector::start().unwrap();
        c.push(Scripted::status(503));
        c.push(Scripted::fault(Fault::Reset));
        c.push(Scripted::fault(Fault::Garbage(
            b"nonsense\r\n\r\n".to_vec(),
        )));
        for mode in ["deflate", "gzip", "none"] {
            init_ok(&config(&c, None, json!({"compression": mode})));
            log_ok("Proxy.Bypass", Some(&format!("{{\"mode\":\"{mode}\"}}")));
            assert_eq!(flush(20_000), 0, "{mode}: {}", last_error());
            assert_eq!(shutdown(2000), 0);
            assert_conserved();
        }
        let acc = c.accepted();
        assert_eq!(acc.len(), 3, "{acc:?}");
        assert_eq!(
            c.request_count(),
            6,
            "three failures, then three deliveries"
        );
        assert!(c.requests().iter().all(|r| r.path == "/OneCollector/1.0/"));
        println!("CHILD-OK");
        return;
    }
    if child_role().is_some() {
        return;
    }
    let dead = "http://127.0.0.1:9".to_owned();
    let out = run_child(
        "loopback_endpoints_bypass_proxy_variables",
        &[
            ("TEL_TEST_ROLE", "proxy-bypass".into()),
            ("http_proxy", dead.clone()),
            ("HTTP_PROXY", dead.clone()),
            ("https_proxy", dead.clone()),
            ("HTTPS_PROXY", dead.clone()),
            ("ALL_PROXY", dead.clone()),
            ("all_proxy", dead),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("CHILD-OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
