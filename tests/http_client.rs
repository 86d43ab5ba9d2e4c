//! The HTTP client against raw loopback servers that answer exactly the bytes of each case:
//! interim answers, body-less answers, odd reason phrases, sub-second timeouts and endless
//! heads. Each case is one the library's earlier client (minreq 2) got wrong.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use tel::config::Endpoint;
use tel::internals::response::{HttpResponse, NetworkError};
use tel::internals::transport::Transport;
use tel::Config;

const KEY: &str = "rawsrv-0000-0000-0000-000000000000-0000";

/// Reads one request (head and `Content-Length` body) from `stream`.
fn read_request(stream: &mut TcpStream) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let body_len = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "the client left before its request was whole");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            break end + 4 + len;
        }
    };
    while got.len() < body_len {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
}

/// A server for one connection running `serve` after the request is read.
fn server(serve: impl FnOnce(TcpStream) + Send + 'static) -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        read_request(&mut stream);
        serve(stream);
    });
    (port, thread)
}

fn post(port: u16, http_timeout_ms: u64) -> Result<HttpResponse, NetworkError> {
    let mut config = Config::new(KEY).unwrap();
    config.endpoint =
        Endpoint::parse(&format!("http://127.0.0.1:{port}/OneCollector/1.0/")).unwrap();
    config.http_timeout_ms = http_timeout_ms;
    Transport::new(&config).post(b"{}", None, None, None)
}

/// `100 Continue` is an interim answer: the status is the one after it. (Taken as the final
/// answer, the batch was retried although accepted, and delivered again and again.)
#[test]
fn an_interim_100_continue_is_not_the_answer() {
    let (port, server) = server(|mut s| {
        s.write_all(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"acc\":1}",
        )
        .unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    let r = post(port, 5000).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"{\"acc\":1}"[..]));
    server.join().unwrap();
}

/// A `204` has no body: the answer is whole at its blank line, whether or not the server then
/// closes. (Waiting for the close held the request for the whole `http_timeout_ms`, and a
/// shutdown in that wait persisted events the collector had taken.)
#[test]
fn a_204_without_content_length_is_whole_at_its_head() {
    let (answered, wait) = mpsc::channel::<()>();
    let (held, result) = mpsc::channel::<bool>();
    let (port, server) = server(move |mut s| {
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        // The connection stays open until the client has its answer (or 10 s pass).
        let timed_out = wait.recv_timeout(Duration::from_secs(10)).is_err();
        held.send(timed_out).unwrap();
        drop(s);
    });
    let r = post(port, 30_000).unwrap();
    answered.send(()).unwrap();
    assert_eq!(r.status, 204);
    assert!(
        !result.recv().unwrap(),
        "the client waited for the server to close"
    );
    server.join().unwrap();
}

/// `http_timeout_ms` is milliseconds: a 50 ms budget ends the request long before the server
/// answers, 900 ms after it stopped waiting for the client to give up. (Whole seconds made a
/// 50 ms budget one second, and the answer arrived in time.)
#[test]
fn the_timeout_is_kept_in_milliseconds() {
    let (port, server) = server(|mut s| {
        s.set_read_timeout(Some(Duration::from_millis(900)))
            .unwrap();
        // Returns when the client gives up (end of stream) or after 900 ms.
        let _ = s.read(&mut [0u8; 1]);
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{\"acc\":1}");
    });
    let r = post(port, 50);
    assert!(r.is_err(), "answered {:?}", r.map(|r| r.status));
    server.join().unwrap();
}

/// The status code is the verdict, whatever the reason phrase says. (The earlier client
/// reported its own failures as a 503 with this phrase, and the phrase was taken for it.)
#[test]
fn a_reason_phrase_is_not_the_status() {
    let (port, server) = server(|mut s| {
        s.write_all(
            b"HTTP/1.1 200 Server did not provide a status line\r\nContent-Length: 9\r\n\r\n{\"acc\":1}",
        )
        .unwrap();
        let _ = s.read(&mut [0u8; 1]);
    });
    let r = post(port, 5000).unwrap();
    assert_eq!(r.status, 200);
    server.join().unwrap();
}

/// A first header line of 65,535 bytes ending in a bare LF, then headers without end:
/// the head cap stops the read. (It underflowed the earlier client's budget, which then read
/// headers without bound: 1.17 GB of memory.)
#[test]
fn an_endless_head_is_cut_at_its_cap() {
    const LIMIT: usize = 64 * 1024 * 1024;
    let (written, total) = mpsc::channel::<usize>();
    let (port, server) = server(move |mut s| {
        let mut sent = 0;
        let mut first = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
        // 65,535 bytes of header line, then its bare LF.
        first.resize(17 + 65_535, b'a');
        first.push(b'\n');
        let filler = b"X-Filler: 0123456789012345678901234567890123456789\r\n".repeat(1000);
        if s.write_all(&first).is_ok() {
            sent += first.len();
            while sent < LIMIT && s.write_all(&filler).is_ok() {
                sent += filler.len();
            }
        }
        written.send(sent).unwrap();
    });
    let r = post(port, 30_000);
    let error = r
        .map(|r| r.status)
        .expect_err("an endless head is no answer");
    assert!(error.0.contains("response head over the caps"), "{error:?}");
    // Whatever the socket buffers hold, the client stopped reading long before the limit.
    let sent = total.recv().unwrap();
    assert!(sent < 16 * 1024 * 1024, "the server wrote {sent} bytes");
    server.join().unwrap();
}
