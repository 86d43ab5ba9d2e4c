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
        self.wait_for_exit()
    }

    /// Sends `signal` (`INT`, `TERM`) with kill(1) and waits for the process to exit; the
    /// lines it printed meanwhile. Standard input stays open.
    fn signal_and_wait(&mut self, signal: &str) -> (Vec<String>, std::process::ExitStatus) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal} failed");
        self.wait_for_exit()
    }

    fn wait_for_exit(&mut self) -> (Vec<String>, std::process::ExitStatus) {
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
    upload_lines(port, &[&envelope, &envelope])
}

/// One upload of these envelopes, with the key and the headers the collector wants.
fn upload_lines(port: u16, lines: &[&str]) -> (u16, String) {
    let headers = [
        ("Content-Type", "application/x-json-stream; charset=utf-8"),
        ("x-apikey", KEY),
        ("Client-Id", "NO_AUTH"),
        ("sdk-version", "tel-test"),
        ("Upload-Time", "1778123352345"),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    request(port, "POST", "/OneCollector/1.0/", &headers, &body)
}

/// An envelope of tenant abc123 with this name, data and `ext.device.localId`.
fn event(name: &str, data: &str, local_id: &str) -> String {
    format!(
        r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc123","ext":{{"device":{{"localId":"{local_id}"}}}},"data":{data}}}"#
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
    let (line, events, _) = request_block(&serve, 2);
    assert!(line.contains(" 200 ") && line.contains("acc=2"), "{line}");
    assert!(line.contains("key=abc123-***"), "{line}");
    assert!(line.contains("Serve.Event x2"), "{line}");
    assert!(!line.contains(KEY), "{line}");
    assert!(
        events.iter().all(|e| e.starts_with("  + Serve.Event")),
        "{events:?}"
    );

    let (status, _) = upload(port, &format!("o:{KEY}"));
    assert_eq!(status, 401);
    let (line, events, _) = request_block(&serve, 2);
    assert!(
        line.contains(" 401 ") && line.contains("Invalid Tenant Token"),
        "{line}"
    );
    assert!(!line.contains(KEY), "{line}");
    assert!(!events.concat().contains(KEY), "{events:?}");

    // The control API is on the same port.
    let (status, _) = request(port, "POST", "/_emulator/script", &[], r#"{"status":503}"#);
    assert_eq!(status, 200);
    assert_eq!(upload(port, "o:abc123").0, 503);
    assert!(request_block(&serve, 2).0.contains(" 503 "));
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
    // Not quiet: the same request is printed before the exit: its line, one line per event,
    // the summary.
    let mut loud = Serve::start(&[]);
    let port = port_of(&loud.next_line());
    assert_eq!(upload(port, "o:abc123").0, 200);
    let (rest, _) = loud.close_stdin_and_wait();
    assert_eq!(rest.len(), 4, "{rest:?}");

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

    // The CA file of --tls goes too.
    let mut serve = Serve::start(&["--tls"]);
    serve.next_line();
    let ca = serve.next_line().replace("ca file: ", "");
    assert!(std::path::Path::new(&ca).is_file(), "{ca}");
    let (_, status) = serve.close_stdin_and_wait();
    assert!(status.success(), "{status}");
    assert!(!std::path::Path::new(&ca).exists(), "{ca} is left");
}

/// The lines printed for one request: its line, one per event, the summary.
fn request_block(serve: &Serve, events: usize) -> (String, Vec<String>, String) {
    let head = serve.next_line();
    let lines = (0..events).map(|_| serve.next_line()).collect();
    (head, lines, serve.next_line())
}

#[test]
fn serve_shows_each_event_as_it_arrives_with_rejections_and_a_summary() {
    let serve = Serve::start(&[]);
    let port = port_of(&serve.next_line());

    let good = event("App.Started", r#"{"ok":true,"mode":"build"}"#, "r:1");
    let bad = event("App.BadDevice", "{}", "deadbeef");
    let (status, body) = upload_lines(port, &[&good, &bad]);
    assert_eq!(status, 200, "{body}");
    let (head, events, summary) = request_block(&serve, 2);
    assert!(
        head.contains(" 200 ") && head.contains("acc=1 rej=1"),
        "{head}"
    );
    assert!(events[0].starts_with("  + App.Started"), "{events:?}");
    assert!(events[0].contains("2026-05-07T03:09:12.345Z"), "{events:?}");
    assert!(
        events[0].contains(r#"{"ok":true,"mode":"build"}"#),
        "{events:?}"
    );
    assert!(events[1].starts_with("  x App.BadDevice"), "{events:?}");
    assert!(events[1].contains("InvalidDeviceLocalId"), "{events:?}");
    assert!(
        summary.contains("1 request: 1 accepted, 1 not accepted"),
        "{summary}"
    );

    // A request refused as a whole: each event with the collector's reason.
    let (status, _) = upload(port, &format!("o:{KEY}"));
    assert_eq!(status, 401);
    let (head, events, summary) = request_block(&serve, 2);
    assert!(
        !head.contains(KEY) && head.contains("key=abc123-***"),
        "{head}"
    );
    for line in &events {
        assert!(
            line.contains("Invalid Tenant Token") && !line.contains(KEY),
            "{line}"
        );
    }
    assert!(
        summary.contains("2 requests: 1 accepted, 3 not accepted"),
        "{summary}"
    );
    assert!(
        summary.contains("200 x1") && summary.contains("401 x1"),
        "{summary}"
    );

    // A scripted outage is not a judgement: shown as not accepted, with the status.
    let (status, _) = request(port, "POST", "/_emulator/script", &[], r#"{"status":503}"#);
    assert_eq!(status, 200);
    assert_eq!(upload_lines(port, &[&good]).0, 503);
    let (_, events, summary) = request_block(&serve, 1);
    assert!(events[0].contains("not accepted: HTTP 503"), "{events:?}");
    assert!(summary.contains("503 x1"), "{summary}");
    // Not a terminal: no colour codes anywhere.
    assert!(!events.concat().contains('\x1b') && !summary.contains('\x1b'));
}

#[test]
fn serve_records_exactly_the_accepted_envelopes() {
    let dir = std::env::temp_dir().join(format!("telctl-serve-record-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let record = dir.join("accepted.ndjson");
    let _ = std::fs::remove_file(&record);
    let serve = Serve::start(&["--record", record.to_str().unwrap()]);
    let port = port_of(&serve.next_line());

    let a = event("Rec.First", r#"{"i":1}"#, "r:1");
    let b = event("Rec.Second", r#"{"i":2,"list":[{"x":null}]}"#, "r:2");
    let refused = event("Rec.Refused", "{}", "nohex");
    let c = event("Rec.Third", r#"{"i":3}"#, "r:3");
    // Accepted whole; partly accepted; refused whole (wrong iKey); answered by a script.
    assert_eq!(upload_lines(port, &[&a, &b]).0, 200);
    request_block(&serve, 2);
    assert_eq!(upload_lines(port, &[&refused, &c]).0, 200);
    request_block(&serve, 2);
    assert_eq!(upload(port, &format!("o:{KEY}")).0, 401);
    request_block(&serve, 2);
    request(port, "POST", "/_emulator/script", &[], r#"{"status":503}"#);
    assert_eq!(upload_lines(port, &[&a]).0, 503);
    // The last request's summary line is printed after its record was written.
    request_block(&serve, 1);

    let recorded = std::fs::read_to_string(&record).unwrap();
    let recorded: Vec<&str> = recorded.lines().collect();
    assert_eq!(recorded, [a.as_str(), b.as_str(), c.as_str()]);
    let (_, accepted) = request(port, "GET", "/_emulator/accepted", &[], "");
    let accepted: Vec<serde_json::Value> = serde_json::from_str(&accepted).unwrap();
    let from_file: Vec<serde_json::Value> = recorded
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(from_file, accepted);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_accepts_a_request_with_only_content_type_and_key_and_says_what_it_lacks() {
    let serve = Serve::start(&[]);
    let port = port_of(&serve.next_line());
    let good = event("Minimal.Event", r#"{"ok":true}"#, "r:1");
    let body = format!("{good}\n");
    let minimal = [
        ("Content-Type", "application/x-json-stream; charset=utf-8"),
        ("x-apikey", KEY),
    ];
    let (status, answer) = request(port, "POST", "/OneCollector/1.0/", &minimal, &body);
    assert_eq!((status, answer.as_str()), (200, r#"{"acc":1}"#));
    let (head, events, _) = request_block(&serve, 1);
    assert!(
        head.contains(" 200 ") && head.contains("lacks=[Client-Id, sdk-version, Upload-Time]"),
        "{head}"
    );
    assert!(events[0].starts_with("  + Minimal.Event"), "{events:?}");

    // The library's full set of headers: nothing noted.
    assert_eq!(upload_lines(port, &[&good]).0, 200);
    let (head, _, _) = request_block(&serve, 1);
    assert!(!head.contains("lacks="), "{head}");

    // Present but malformed: refused, naming the header.
    let malformed = [
        ("Content-Type", "application/x-json-stream"),
        ("x-apikey", KEY),
        ("Upload-Time", "1778123352"),
    ];
    let (status, _) = request(port, "POST", "/OneCollector/1.0/", &malformed, &body);
    assert_eq!(status, 400);
    let (head, _, _) = request_block(&serve, 1);
    assert!(
        head.contains("Invalid Upload-Time header")
            && head.contains("lacks=[Client-Id, sdk-version]"),
        "{head}"
    );
}

#[test]
fn serve_judges_trace_context_and_exception_extensions() {
    let serve = Serve::start(&[]);
    let port = port_of(&serve.next_line());
    let with_ext = |name: &str, ext: &str| {
        format!(
            r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc123","ext":{ext},"data":{{}}}}"#
        )
    };
    let traced = with_ext(
        "Traced.Event",
        r#"{"dt":{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","traceFlags":1}}"#,
    );
    let failed = with_ext(
        "Failed.Event",
        r#"{"ex":{"type":"IOException","msg":"disk full","stack":"at A.B()"}}"#,
    );
    assert_eq!(
        upload_lines(port, &[&traced, &failed]),
        (200, r#"{"acc":2}"#.to_string())
    );
    request_block(&serve, 2);

    let bad_span = with_ext("Bad.Span", r#"{"dt":{"spanId":"B7AD6B7169203331"}}"#);
    let (status, answer) = upload_lines(port, &[&traced, &bad_span]);
    assert_eq!(
        (status, answer.as_str()),
        (400, r#"{"acc":0,"efi":{"InvalidEventFormat":"all"}}"#)
    );
    let (head, events, _) = request_block(&serve, 2);
    assert!(
        head.contains("ext.dt.spanId must be 16 lowercase hex digits"),
        "{head}"
    );
    assert!(events.iter().all(|e| e.starts_with("  x ")), "{events:?}");

    let bad_stack = with_ext("Bad.Stack", r#"{"ex":{"stack":["at A.B()"]}}"#);
    assert_eq!(upload_lines(port, &[&bad_stack]).0, 400);
    let (head, _, _) = request_block(&serve, 1);
    assert!(head.contains("ext.ex.stack must be a string"), "{head}");
}

#[test]
fn serve_plays_a_far_collector_with_rtt_ms() {
    // A lower bound only: the delay is added on purpose, so it cannot come out shorter.
    let serve = Serve::start(&["--rtt-ms", "200", "--quiet"]);
    let port = port_of(&serve.next_line());
    let start = std::time::Instant::now();
    let good = event("Far.Event", "{}", "r:1");
    assert_eq!(upload_lines(port, &[&good]).0, 200);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "connect + answer: {took:?}"
    );
}

/// `--tls`: the second line names the CA file; the library trusts the emulator through
/// `SSL_CERT_FILE` pointing at it (here `telctl send`, over HTTPS to 127.0.0.1), and refuses it
/// without.
#[test]
fn serve_tls_prints_its_ca_file_which_makes_the_library_trust_it() {
    let dir = std::env::temp_dir().join(format!("telctl-serve-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    let serve = Serve::start(&[
        "--tls",
        "--tls-name",
        "collector.test",
        "--ca-file",
        ca.to_str().unwrap(),
    ]);
    let first = serve.next_line();
    let endpoint = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{first}"))
        .to_owned();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    assert_eq!(serve.next_line(), format!("ca file: {}", ca.display()));
    let pem = std::fs::read_to_string(&ca).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");

    let send = |ssl_cert_file: Option<&std::path::Path>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_telctl"));
        command
            .args(["send", "--ikey", KEY, "--endpoint", &endpoint, "--no-cache"])
            .args(["--attempts", "1", "--timeout", "5", "Serve.TlsEvent"])
            .env_remove("SSL_CERT_DIR")
            .env_remove("TEL_LOG")
            .stdin(Stdio::null());
        match ssl_cert_file {
            Some(file) => command.env("SSL_CERT_FILE", file),
            // A file without the emulator's CA: the system store alone never has it.
            None => command.env("SSL_CERT_FILE", dir.join("none.pem")),
        };
        command.output().unwrap()
    };
    std::fs::write(dir.join("none.pem"), "").unwrap();
    let trusted = send(Some(&ca));
    assert!(
        trusted.status.success(),
        "{}{}",
        String::from_utf8_lossy(&trusted.stdout),
        String::from_utf8_lossy(&trusted.stderr)
    );
    let (line, _, _) = request_block(&serve, 1);
    assert!(line.contains(" 200 ") && line.contains("acc=1"), "{line}");
    let refused = send(None);
    assert!(!refused.status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Ctrl-C (SIGINT) and SIGTERM end `serve` with exit status 0 and a last line saying what it
/// received, and the CA file it wrote in the temporary folder for `--tls` is gone.
#[test]
fn serve_ends_on_sigint_and_sigterm_with_a_summary_and_removes_its_ca_file() {
    for signal in ["INT", "TERM"] {
        let mut serve = Serve::start(&["--tls"]);
        let first = serve.next_line();
        assert!(
            first.starts_with("listening on https://127.0.0.1:"),
            "{first}"
        );
        let ca = serve
            .next_line()
            .strip_prefix("ca file: ")
            .map(std::path::PathBuf::from)
            .expect("the CA file line");
        assert!(ca.is_file(), "{}", ca.display());
        let (rest, status) = serve.signal_and_wait(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}: {status:?} {rest:?}");
        assert_eq!(
            rest.last().map(String::as_str),
            Some("telctl serve: interrupted; received 0 requests, accepted 0 events"),
            "SIG{signal}: {rest:?}"
        );
        assert!(!ca.exists(), "SIG{signal} left {}", ca.display());
    }

    // The summary counts what came in.
    let mut serve = Serve::start(&[]);
    let port = port_of(&serve.next_line());
    let (status, _) = upload(port, "o:abc123");
    assert_eq!(status, 200);
    let (rest, status) = serve.signal_and_wait("INT");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert_eq!(
        rest.last().map(String::as_str),
        Some("telctl serve: interrupted; received 1 request, accepted 2 events"),
        "{rest:?}"
    );
}
