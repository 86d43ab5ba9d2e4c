//! A CONNECT proxy on loopback, for the tests of the library's proxy route: it counts the
//! tunnels it opens and the requests it refuses, remembers each CONNECT target, can require
//! Basic credentials (407 without them), and can send a made-up host name to a loopback port
//! (so that a collector named `collector.test` is reachable only through it).

use crate::listener::AcceptLoop;
use crate::sync::lock;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most bytes of a CONNECT head read before the request is refused.
const MAX_HEAD: usize = 16 * 1024;

/// How a [`ConnectProxy`] is set up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// When set, the user name and password a CONNECT must carry as Basic
    /// `Proxy-Authorization`; others are answered 407.
    pub credentials: Option<(String, String)>,
    /// Host names (case ignored) sent to a fixed address instead of being resolved, whatever
    /// port the CONNECT names.
    pub hosts: Vec<(String, SocketAddr)>,
}

/// What a proxy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounts {
    /// TCP connections accepted.
    pub connections: u64,
    /// Tunnels opened (answered 200).
    pub tunnels: u64,
    /// CONNECTs answered 407 (credentials missing or wrong).
    pub auth_refused: u64,
    /// Other refusals: not a CONNECT (405), a target that cannot be reached (502).
    pub refused: u64,
}

struct ProxyShared {
    options: ProxyOptions,
    connections: AtomicU64,
    tunnels: AtomicU64,
    auth_refused: AtomicU64,
    refused: AtomicU64,
    /// `host:port` of every CONNECT, in arrival order.
    targets: Mutex<Vec<String>>,
}

/// A running CONNECT proxy. Dropping it closes the listener and every tunnel.
pub struct ConnectProxy {
    shared: Arc<ProxyShared>,
    accepting: AcceptLoop,
}

impl ConnectProxy {
    pub fn start(options: ProxyOptions) -> io::Result<ConnectProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))?;
        let shared = Arc::new(ProxyShared {
            options,
            connections: AtomicU64::new(0),
            tunnels: AtomicU64::new(0),
            auth_refused: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            targets: Mutex::new(Vec::new()),
        });
        let accepting = {
            let shared = Arc::clone(&shared);
            AcceptLoop::start(listener, "tel-emulator-proxy", move |stream| {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&shared);
                move || serve(&shared, stream)
            })?
        };
        Ok(ConnectProxy { shared, accepting })
    }

    pub fn port(&self) -> u16 {
        self.accepting.port()
    }

    /// `http://127.0.0.1:PORT`, the value of a proxy variable (add credentials as needed).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn counts(&self) -> ProxyCounts {
        let s = &self.shared;
        ProxyCounts {
            connections: s.connections.load(Ordering::SeqCst),
            tunnels: s.tunnels.load(Ordering::SeqCst),
            auth_refused: s.auth_refused.load(Ordering::SeqCst),
            refused: s.refused.load(Ordering::SeqCst),
        }
    }

    /// The `host:port` of every CONNECT so far.
    pub fn targets(&self) -> Vec<String> {
        lock(&self.shared.targets).clone()
    }
}

/// Reads the head up to the blank line; None when the client left or sent too much.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte: nothing past the head may be consumed, it belongs to the tunnel.
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD || stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

fn answer(stream: &mut TcpStream, status: &str, extra: &str) {
    let _ = stream.write_all(
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let _ = stream.shutdown(Shutdown::Write);
}

fn serve(shared: &ProxyShared, mut client: TcpStream) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "CONNECT" {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        answer(&mut client, "405 Method Not Allowed", "Allow: CONNECT\r\n");
        return;
    }
    lock(&shared.targets).push(target.to_owned());
    if let Some((user, password)) = &shared.options.credentials {
        let given = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization"))
            .and_then(|(_, v)| {
                let (scheme, b64) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("basic")
                    .then(|| base64_decode(b64.trim()))?
            });
        if given.as_deref() != Some(format!("{user}:{password}").as_bytes()) {
            shared.auth_refused.fetch_add(1, Ordering::SeqCst);
            answer(
                &mut client,
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"tel-emulator\"\r\n",
            );
            return;
        }
    }
    let Some(upstream) = connect_target(shared, target) else {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        answer(&mut client, "502 Bad Gateway", "");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    shared.tunnels.fetch_add(1, Ordering::SeqCst);
    tunnel(client, upstream);
}

fn connect_target(shared: &ProxyShared, target: &str) -> Option<TcpStream> {
    let (host, port) = target.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().ok()?;
    let mapped = shared
        .options
        .hosts
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(host))
        .map(|(_, addr)| *addr);
    let addrs: Vec<SocketAddr> = match mapped {
        Some(addr) => vec![addr],
        None => (host, port).to_socket_addrs().ok()?.collect(),
    };
    addrs
        .iter()
        .find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(5)).ok())
}

/// Copies both ways until either side ends; then both are closed.
fn tunnel(client: TcpStream, upstream: TcpStream) {
    let (Ok(mut client_read), Ok(mut upstream_write)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let forward = std::thread::Builder::new()
        .name("tel-emulator-proxy-up".into())
        .spawn(move || {
            let _ = io::copy(&mut client_read, &mut upstream_write);
            let _ = upstream_write.shutdown(Shutdown::Write);
        });
    let (mut upstream_read, mut client_write) = (upstream, client);
    let _ = io::copy(&mut upstream_read, &mut client_write);
    let _ = client_write.shutdown(Shutdown::Both);
    let _ = upstream_read.shutdown(Shutdown::Both);
    if let Ok(forward) = forward {
        let _ = forward.join();
    }
}

/// Standard base64 (with or without padding); None on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|c| *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_base64() {
        assert_eq!(super::base64_decode("dXNlcjpwQHNz").unwrap(), b"user:p@ss");
        assert_eq!(super::base64_decode("YQ==").unwrap(), b"a");
        assert!(super::base64_decode("a*b").is_none());
    }
}
