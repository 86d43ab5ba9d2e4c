//! A direct HTTP/1.1 POST, for plain-`http://` (loopback) endpoints while a proxy variable is set.
//!
//! minreq routes every `http://` request through `http_proxy` (or `ALL_PROXY`) when one is set,
//! and has no way to say "not this one"; loopback endpoints never go through a proxy, so those
//! requests take this small path instead, with the same caps and deadline.

use super::{MAX_RESPONSE_BODY, MAX_RESPONSE_HEADERS};
use crate::response::{HttpResponse, NetworkError};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Whether minreq would send an `http://` request through a proxy.
pub(super) fn http_proxy_is_set() -> bool {
    ["http_proxy", "all_proxy", "ALL_PROXY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

fn timeout(what: &str) -> NetworkError {
    NetworkError(format!("the request timed out ({what})"))
}

fn left(deadline: Instant, what: &str) -> Result<Duration, NetworkError> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(timeout(what))
    } else {
        Ok(d)
    }
}

fn io(e: std::io::Error) -> NetworkError {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => timeout("no answer"),
        _ => NetworkError(e.to_string()),
    }
}

/// POSTs `payload` to the `http://` `url` with `headers`, finishing by `deadline`.
pub(super) fn post(
    url: &str,
    headers: &[(&str, String)],
    payload: &[u8],
    deadline: Instant,
) -> Result<HttpResponse, NetworkError> {
    let rest = url
        .get(7..)
        .filter(|_| url[..7].eq_ignore_ascii_case("http://"));
    let rest = rest.ok_or_else(|| NetworkError(format!("not an http:// URL: {url}")))?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse::<u16>().unwrap_or(80)),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| NetworkError(e.to_string()))?;
    let mut last = NetworkError(format!("{host} has no address"));
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline, "connect")?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = io(e),
        }
    }
    let mut stream = stream.ok_or(last)?;
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        payload.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .set_write_timeout(Some(left(deadline, "send")?))
        .map_err(io)?;
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(payload).map_err(io)?;
    read(&mut stream, deadline)
}

/// Reads a whole response (the request asked the server to close), within the caps.
fn read(stream: &mut TcpStream, deadline: Instant) -> Result<HttpResponse, NetworkError> {
    let cap = MAX_RESPONSE_HEADERS + MAX_RESPONSE_BODY + 1024;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(left(deadline, "answer")?))
            .map_err(io)?;
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() >= cap || complete(&buf) {
            break; // what is past the caps is left unread
        }
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .filter(|e| *e <= MAX_RESPONSE_HEADERS)
        .ok_or_else(|| {
            NetworkError("the collector sent no complete HTTP head within the cap".into())
        })?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| NetworkError("the collector sent no HTTP status line".into()))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw = &buf[end + 4..];
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let mut body = if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(raw)
    } else {
        let declared = header("content-length").and_then(|v| v.parse::<usize>().ok());
        raw[..declared.unwrap_or(raw.len()).min(raw.len())].to_vec()
    };
    body.truncate(MAX_RESPONSE_BODY);
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Whether `buf` holds a whole response: the server may keep the connection open after all.
fn complete(buf: &[u8]) -> bool {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.windows(5).any(|w| w == b"0\r\n\r\n");
    }
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|len| body.len() >= len)
}

/// The data of a chunked body, as far as it is complete.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|s| *s > 0) else {
            break;
        };
        let data = &raw[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || out.len() >= MAX_RESPONSE_BODY {
            break;
        }
        raw = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_when_a_response_is_whole() {
        assert!(super::complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
        ));
        assert!(!super::complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab"
        ));
        assert!(super::complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
        ));
        assert!(!super::complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
        ));
    }

    /// A server that answers but keeps the connection open: the answer is read without
    /// waiting for the deadline (which would turn a delivered batch into a retried one).
    #[test]
    fn a_whole_answer_is_taken_without_waiting_for_the_close() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut b = [0u8; 4096];
            while !got.ends_with(b"body") {
                let n = s.read(&mut b).unwrap();
                got.extend_from_slice(&b[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"acc\":1}")
                .unwrap();
            let _ = wait.recv_timeout(std::time::Duration::from_secs(30));
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let url = format!("http://127.0.0.1:{port}/OneCollector/1.0/");
        let r = super::post(&url, &[("x-test", "1".into())], b"body", deadline);
        let _ = done.send(());
        server.join().unwrap();
        let r = r.expect("the answer, not a timeout");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"{\"acc\":1}");
    }

    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk(b"3\r\nabc\r\n2;x=1\r\nde\r\n0\r\n\r\n"),
            b"abcde"
        );
        assert_eq!(super::dechunk(b"5\r\nab"), b"ab");
        assert_eq!(super::dechunk(b"zz\r\n"), b"");
    }
}
