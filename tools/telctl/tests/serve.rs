//! `telctl serve` as a process, driven the way tests in other languages drive it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

const KEY: &str = "abc123-0000-4000-8000-000000000001";
const WAIT: Duration = Duration::from_secs(10);

struct Serve {
    child: Child,
    lines: Receiver<String>,
}

impl Serve {
    fn start(extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_telctl"))
            .args(["serve", "--port", "0", "--exit-on-stdin-eof"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        Serve { child, lines }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("a line from telctl serve")
    }

    /// Closes stdin and waits for the process to exit; the lines it printed meanwhile.
    fn close_stdin_and_wait(&mut self) -> (Vec<String>, std::process::ExitStatus) {
        drop(self.child.stdin.take());
        let mut rest = Vec::new();
        // Stdout reaches its end when the process exits.
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(line) => rest.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("telctl serve did not exit"),
            }
        }
        (rest, self.child.wait().unwrap())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request with `Connection: close`; the status and body of the answer.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn upload(port: u16, ikey: &str) -> (u16, String) {
    let envelope = format!(
        r#"{{"ver":"4.0","name":"Serve.Event","time":"2026-05-07T03:09:12.345Z","iKey":"{ikey}","data":{{}}}}"#
    );
    let headers = [
        ("Content-Type", "application/x-json-stream; charset=utf-8"),
        ("x-apikey", KEY),
        ("Client-Id", "NO_AUTH"),
        ("sdk-version", "tel-test"),
        ("Upload-Time", "1778123352345"),
    ];
    request(
        port,
        "POST",
        "/OneCollector/1.0/",
        &headers,
        &format!("{envelope}\n{envelope}\n"),
    )
}

fn port_of(first_line: &str) -> u16 {
    let endpoint = first_line
        .strip_prefix("listening on http://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"));
    let (port, path) = endpoint.split_once('/').unwrap();
    assert_eq!(path, "OneCollector/1.0/");
    port.parse().unwrap()
}

#[test]
fn serve_announces_its_endpoint_and_reports_each_request_without_the_key() {
    let serve = Serve::start(&[]);
    let port = port_of(&serve.next_line());

    assert_eq!(upload(port, "o:abc123"), (200, r#"{"acc":2}"#.to_string()));
    let line = serve.next_line();
    assert!(line.contains(" 200 ") && line.contains("acc=2"), "{line}");
    assert!(line.contains("key=abc123-***"), "{line}");
    assert!(line.contains("Serve.Event x2"), "{line}");
    assert!(!line.contains(KEY), "{line}");

    let (status, _) = upload(port, &format!("o:{KEY}"));
    assert_eq!(status, 401);
    let line = serve.next_line();
    assert!(
        line.contains(" 401 ") && line.contains("Invalid Tenant Token"),
        "{line}"
    );
    assert!(!line.contains(KEY), "{line}");

    // The control API is on the same port.
    let (status, _) = request(port, "POST", "/_emulator/script", &[], r#"{"status":503}"#);
    assert_eq!(status, 200);
    assert_eq!(upload(port, "o:abc123").0, 503);
    assert!(serve.next_line().contains(" 503 "));
    let (_, accepted) = request(port, "GET", "/_emulator/accepted", &[], "");
    let accepted: serde_json::Value = serde_json::from_str(&accepted).unwrap();
    assert_eq!(accepted.as_array().unwrap().len(), 2);
}

#[test]
fn serve_honours_ikey_and_quiet() {
    let serve = Serve::start(&["--ikey", "other-key", "--ikey", KEY, "--quiet"]);
    let port = port_of(&serve.next_line());
    assert_eq!(upload(port, "o:abc123").0, 200);
    let (status, _) = request(
        port,
        "GET",
        "/_emulator/wait?requests=1&timeout_ms=1",
        &[],
        "",
    );
    assert_eq!(status, 200);
    // Quiet: nothing more is printed, which the end of stdout at exit shows.
    let mut serve = serve;
    let (rest, _) = serve.close_stdin_and_wait();
    assert!(rest.is_empty(), "{rest:?}");
    // Not quiet: the same request is printed before the exit.
    let mut loud = Serve::start(&[]);
    let port = port_of(&loud.next_line());
    assert_eq!(upload(port, "o:abc123").0, 200);
    let (rest, _) = loud.close_stdin_and_wait();
    assert_eq!(rest.len(), 1, "{rest:?}");

    let strict = Serve::start(&["--ikey", "other-key"]);
    let port = port_of(&strict.next_line());
    assert_eq!(upload(port, "o:abc123").0, 401);
}

#[test]
fn serve_exits_when_stdin_closes() {
    let mut serve = Serve::start(&[]);
    port_of(&serve.next_line());
    let (rest, status) = serve.close_stdin_and_wait();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(status.success(), "{status}");
}
