//! A raw HTTP/1.1 client over TcpStream, and envelopes, for driving the collector byte by byte.
#![allow(dead_code)]

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::Compression;
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A full instrumentation key; its tenant token is `abc123`.
pub const KEY: &str = "abc123-0000-4000-8000-000000000001";
pub const IKEY: &str = "o:abc123";

/// Bounds every read, so that a test that would otherwise block fails instead.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const WAIT: Duration = Duration::from_secs(10);

/// A valid envelope line for `KEY`.
pub fn envelope(name: &str) -> String {
    format!(
        r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"{IKEY}","ext":{{"os":{{"name":"Linux","ver":"6.1"}},"device":{{"localId":"r:5b1f"}},"sdk":{{"ver":"tel-0.1.0","epoch":"e1","seq":1}}}},"data":{{"ok":true}}}}"#
    )
}

/// A valid envelope with one field replaced (a JSON pointer below the root) by `value`.
pub fn envelope_with(name: &str, pointer: &str, value: Value) -> String {
    let mut envelope: Value = serde_json::from_str(&envelope(name)).unwrap();
    let (parent, leaf) = pointer.rsplit_once('/').unwrap();
    envelope
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert(leaf.to_string(), value);
    envelope.to_string()
}

/// Lines joined with `\n`, with a trailing newline.
pub fn ndjson(lines: &[String]) -> Vec<u8> {
    let mut body = lines.join("\n");
    body.push('\n');
    body.into_bytes()
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// The headers the library sends with every upload.
pub fn upload_headers() -> Vec<(String, String)> {
    [
        ("Content-Type", "application/x-json-stream; charset=utf-8"),
        ("x-apikey", KEY),
        ("Client-Id", "NO_AUTH"),
        ("sdk-version", "tel-0.1.0"),
        ("Upload-Time", "1778123352345"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `upload_headers()` with `name` replaced by `value`, or removed when `value` is None.
pub fn headers_with(name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut headers = upload_headers();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    if let Some(value) = value {
        headers.push((name.to_string(), value.to_string()));
    }
    headers
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.text()))
    }

    pub fn collector_error(&self) -> Option<&str> {
        self.header("collector-error")
    }
}

pub struct Client {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Client { stream, reader }
    }

    /// Writes a request with a Content-Length body.
    pub fn send(&mut self, method: &str, path: &str, headers: &[(String, String)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        self.stream.write_all(head.as_bytes()).unwrap();
        self.stream.write_all(body).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads one response (Content-Length framed, or up to EOF without one).
    pub fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse::<usize>().unwrap());
        let mut body = Vec::new();
        match length {
            Some(n) => {
                body.resize(n, 0);
                self.reader.read_exact(&mut body)?;
            }
            None if status == 204 || (100..200).contains(&status) => {}
            None => {
                self.reader.read_to_end(&mut body)?;
            }
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Reply {
        self.send(method, path, headers, body);
        self.read_reply().unwrap()
    }

    /// Everything until the collector closes the connection.
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        self.reader.read_to_end(&mut all)?;
        Ok(all)
    }

    /// Whether the collector closed the connection cleanly (EOF) with nothing more sent.
    pub fn closed(&mut self) -> bool {
        matches!(self.reader.read(&mut [0u8; 1]), Ok(0))
    }
}

/// One request on a fresh connection.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Reply {
    Client::connect(port).request(method, path, headers, body)
}

/// An upload of `body` with the library's headers plus `extra` (replacing same-named ones).
pub fn upload_with(port: u16, extra: &[(&str, &str)], body: &[u8]) -> Reply {
    let mut headers = upload_headers();
    for (name, value) in extra {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        headers.push((name.to_string(), value.to_string()));
    }
    request(port, "POST", "/OneCollector/1.0/", &headers, body)
}

pub fn upload(port: u16, body: &[u8]) -> Reply {
    upload_with(port, &[], body)
}

/// A control API call.
pub fn control(port: u16, method: &str, action: &str, body: &str) -> Reply {
    request(
        port,
        method,
        &format!("/_emulator/{action}"),
        &[],
        body.as_bytes(),
    )
}

/// HTTPS to the collector's TLS front (`Options::tls`), one upload per connection.
#[cfg(feature = "tls")]
pub mod tls {
    use super::{envelope, ndjson, upload_headers, READ_TIMEOUT};
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::Arc;

    /// An upload of `body` as raw bytes, on a connection the server closes after it.
    pub fn upload_request(body: &[u8]) -> Vec<u8> {
        let mut req = format!("POST /OneCollector/1.0/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in upload_headers() {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    pub fn client(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
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

    /// A client whose only root is the collector's own CA.
    pub fn trusting(collector: &tel_emulator::Collector) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(collector.tls_certificate_der().unwrap().into())
            .unwrap();
        client(roots)
    }

    pub fn exchange(
        port: u16,
        config: Arc<rustls::ClientConfig>,
        host: &str,
    ) -> std::io::Result<String> {
        let name = rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap();
        let conn = rustls::ClientConnection::new(config, name).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port))?;
        tcp.set_read_timeout(Some(READ_TIMEOUT))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(&upload_request(&ndjson(&[envelope("Tls.Event")])))?;
        let mut reply = Vec::new();
        match tls.read_to_end(&mut reply) {
            Ok(_) => {}
            // Some servers close without close_notify; what was read stands.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
            Err(e) => return Err(e),
        }
        Ok(String::from_utf8_lossy(&reply).into_owned())
    }
}
