//! The security promises, each a test: certificates are verified; clear-text HTTP goes to
//! loopback only and redirects are never followed; the full instrumentation key appears in no
//! log line, file or error message, nor does a key cut short by an excerpt; cache and state
//! files are private; response bodies and headers are read up to fixed caps; nothing is written
//! outside the cache folder; a planted symlink or foreign file is never written through.

mod common;

use common::*;
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tel_emulator::Options;

/// Every file under `dir`, recursively (symlinks not followed).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn assert_no_key_in_files(dir: &Path) {
    let files = files_under(dir);
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(IKEY),
            "the full key is in {}",
            f.display()
        );
    }
}

#[test]
fn an_untrusted_certificate_never_gets_the_events() {
    let _s = serial();
    let capture = Capture::start();
    let tls = Collector::start_with(Options {
        tls: true,
        ..Options::default()
    })
    .unwrap();
    // The certificate names both hosts: only trust is missing.
    for host in ["127.0.0.1", "localhost"] {
        let endpoint = format!("https://{host}:{}/OneCollector/1.0/", tls.port());
        init_ok(&json!({
            "ikey": IKEY, "endpoint": endpoint, "cache_path": null,
            "flush_interval_ms": 10, "retry_initial_ms": 10, "retry_max_ms": 20,
            "http_timeout_ms": 2000,
        }));
        log_ok("Tls.Secret", Some(r#"{"secret":"do not send in clear"}"#));
        assert_eq!(flush(500), 7, "{host}: never delivered");
        assert_eq!(shutdown(0), 7);
        assert_conserved();
        let s = stats();
        assert_eq!(s["sent"], 0, "{host}: {s}");
        assert!(s["http_failures"].as_u64().unwrap() >= 1, "{host}: {s}");
    }
    let counts = tls.tls_counts();
    assert!(counts.connections >= 2, "{counts:?}");
    assert_eq!(counts.handshakes, 0, "a handshake completed: {counts:?}");
    assert_eq!(tls.request_count(), 0);
    // The reason is there for whoever reads the debug log.
    let lines = capture.lines();
    assert!(
        lines.iter().any(|(l, m)| *l == 4
            && m.contains("request to the collector failed")
            && m.to_ascii_lowercase().contains("certificate")),
        "{lines:?}"
    );
}

#[test]
fn clear_text_http_is_refused_except_to_loopback() {
    let _s = serial();
    for endpoint in [
        "http://example.com/",
        "HTTP://example.com/",
        "http://10.0.0.1/",
        "http://192.168.1.1:8080/",
        "http://[::2]/",
        "http://[::ffff:10.0.0.1]/",
        "http://0.0.0.0/",
        "http://localhost.example.com/",
        "http://127.0.0.1.example.com/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://017700000001/",
        "http://127.0.0.1@example.com/",
        "http://user:pw@127.0.0.1/",
        "ftp://127.0.0.1/",
        "file:///etc/passwd",
        "//127.0.0.1/",
        "127.0.0.1:80",
    ] {
        let rc = init(&json!({"ikey": IKEY, "endpoint": endpoint, "cache_path": null}));
        assert_eq!(rc, 2, "{endpoint} was accepted");
        assert!(!last_error().contains(IKEY));
    }
    for endpoint in [
        "http://127.0.0.1:1/",
        "http://127.255.255.254/",
        "http://localhost/",
        "HTTP://LOCALHOST:9/x",
        "http://[::1]:80/",
        "https://example.com/",
    ] {
        let rc = init(&json!({"ikey": IKEY, "endpoint": endpoint, "cache_path": null}));
        assert_eq!(rc, 0, "{endpoint}: {}", last_error());
        assert_eq!(shutdown(1000), 0);
    }
}

#[test]
fn redirects_are_never_followed_so_the_key_goes_nowhere_else() {
    let _s = serial();
    let elsewhere = Collector::start().unwrap();
    let c = Collector::start().unwrap();
    for status in [301, 302, 303, 307, 308] {
        c.push(Scripted::status(status).with_header("Location", elsewhere.endpoint()));
    }
    init_ok(&config(
        &c,
        None,
        json!({"retry_initial_ms": 1, "retry_max_ms": 2}),
    ));
    log_ok("Redirect.Event", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(
        elsewhere.request_count(),
        0,
        "the request followed a redirect"
    );
    assert_eq!(
        c.request_count(),
        6,
        "five redirects retried, then accepted"
    );
    assert_eq!(stat("sent"), 1);
    assert_eq!(shutdown(1000), 0);
}

/// A full session through every path that produces text or files (retries, refusals, partial
/// rejections, a cache write, a kill window, invalid calls, timeouts), logging at trace level:
/// the full key is in the `x-apikey` header and nowhere else.
#[test]
fn the_full_key_is_in_no_log_line_file_or_error_message() {
    let _s = serial();
    let capture = Capture::start();
    let c = Collector::start().unwrap();
    let dir = temp_dir("no-key");
    let cache_dir = dir.join("nested").join("cache");
    let cfg = json!({
        "ikey": IKEY, "endpoint": c.endpoint(),
        "cache_path": cache_dir.join("events.cache").to_string_lossy(),
        "flush_interval_ms": 10, "retry_initial_ms": 10, "retry_max_ms": 20,
        "retry_max_attempts": 2, "queue_max_events": 5,
    });
    let mut errors = Vec::new();
    init_ok(&cfg);
    errors.push((init(&cfg), last_error()));
    c.push(Scripted::status(503).with_header("Retry-After", "0"));
    c.push(Scripted::status(400).with_header("Collector-Error", "Bad things"));
    c.push(Scripted::status(200).with_body(r#"{"acc":0,"rej":1,"efi":{"X":[0]}}"#));
    for i in 0..3 {
        log_ok("Key.Event", Some(&format!("{{\"i\":{i}}}")));
        assert_eq!(flush(5000), 0);
    }
    c.set_default(Some(Scripted::status(503)));
    log_ok("Key.Cached", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("persisted"), 1);
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    for _ in 0..8 {
        let rc = log("Key.Full", None);
        if rc != 0 {
            errors.push((rc, last_error()));
        }
    }
    assert!(errors.iter().any(|(rc, _)| *rc == 6), "the queue filled");
    assert_eq!(flush(50), 7);
    errors.push((7, last_error()));
    assert_eq!(shutdown(100), 7);
    errors.push((7, last_error()));
    c.release();
    c.set_default(Some(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "60"),
    ));
    init_ok(&cfg);
    assert_eq!(flush(5000), 0);
    assert!(stat("killed_until_ms") > 0);
    for (name, props) in [
        ("abc", None),
        ("Bad.Props", Some("[1]")),
        ("Ok.Name", Some("{")),
    ] {
        errors.push((log(name, props), last_error()));
    }
    assert_eq!(shutdown(1000), 0);
    errors.push((log("After.End", None), last_error()));
    errors.push((init(&json!({"ikey": IKEY, "bogus": IKEY})), last_error()));
    let lines = capture.lines();
    drop(capture);
    assert!(lines.len() >= 10, "{lines:?}");
    for (_, m) in &lines {
        assert!(!m.contains(IKEY), "the full key is in a log line: {m}");
    }
    for (rc, msg) in &errors {
        assert_ne!(*rc, 0, "{msg}");
        assert!(
            !msg.contains(IKEY),
            "the full key is in an error message: {msg}"
        );
    }
    assert_no_key_in_files(&dir);
    // In the requests, only the header carries it.
    for r in c.requests() {
        assert_eq!(r.header("x-apikey"), Some(IKEY));
        assert!(!r.full_key_in_body);
    }
}

/// The log lines of the session above, checked on their own so that a failure names the line.
#[test]
fn the_full_key_is_in_no_log_line() {
    let _s = serial();
    let capture = Capture::start();
    let c = Collector::start().unwrap();
    c.push(Scripted::status(503).with_body("try later"));
    c.push(Scripted::status(401).with_header("Collector-Error", "Invalid Tenant Token"));
    c.push(Scripted::fault(Fault::Reset));
    c.push(Scripted::status(200).with_body(r#"{"acc":0,"efi":{"X":"all"}}"#));
    c.push(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "1"),
    );
    init_ok(&config(
        &c,
        None,
        json!({"retry_initial_ms": 1, "retry_max_ms": 2}),
    ));
    for i in 0..5 {
        log_ok("Key.Line", Some(&format!("{{\"i\":{i}}}")));
        let _ = flush(5000);
    }
    let _ = shutdown(1000);
    let lines = capture.lines();
    assert!(lines.len() >= 5, "{lines:?}");
    for (_, m) in &lines {
        assert!(!m.contains(IKEY), "the full key is in a log line: {m}");
    }
}

/// A collector (or anything on the path) that echoes the key back in `Collector-Error` or in
/// its body must not get it into the debug line that reports the refusal.
#[test]
fn a_collector_echoing_the_key_does_not_get_it_into_a_log_line() {
    let _s = serial();
    let capture = Capture::start();
    let c = Collector::start().unwrap();
    c.push(
        Scripted::status(401)
            .with_header("Collector-Error", format!("Invalid key {IKEY}"))
            .with_body(format!("{{\"error\":\"bad key {IKEY}\"}}")),
    );
    init_ok(&config(&c, None, json!({})));
    log_ok("Echo.Event", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    let lines = capture.lines();
    assert!(
        lines.iter().any(|(_, m)| m.contains("HTTP 401")),
        "{lines:?}"
    );
    for (_, m) in &lines {
        assert!(!m.contains(IKEY), "the full key is in a log line: {m}");
    }
}

/// The key given by mistake in another field (or in the endpoint) is echoed by the message
/// that refuses the field: the library knows the key by then and could redact it
/// (`InstrumentationKey::redact_in` exists for that and is used nowhere).
#[test]
fn an_error_message_never_echoes_the_key_given_in_another_field() {
    let _s = serial();
    for cfg in [
        json!({"ikey": IKEY, "compression": IKEY}),
        json!({"ikey": IKEY, "endpoint": IKEY}),
        json!({"ikey": IKEY, "endpoint": format!("http://example.com/?k={IKEY}")}),
        json!({"ikey": IKEY, "batch_max_events": IKEY}),
        json!({"ikey": IKEY, "ext": {"device": {"localId": IKEY}}}),
    ] {
        assert_eq!(init(&cfg), 2);
        let msg = last_error();
        assert!(
            !msg.contains(IKEY),
            "the full key is in an error message: {msg}"
        );
    }
}

/// The secret part of the key (after the tenant token and its `-`).
fn secret() -> &'static str {
    &IKEY[TENANT.len() + 1..]
}

/// No part of the key's secret: neither `<tenant>-` followed by its first character, nor six of
/// its first characters alone (abi.md: "nor does a key cut short").
fn shows_secret(text: &str) -> bool {
    let s = secret();
    text.contains(&s[..6]) || text.contains(&format!("{TENANT}-{}", &s[..1]))
}

/// The key, or a key cut short, given where a caller's text is quoted back: as an event name,
/// as properties that are not an object, as an unknown option key, as an `ext` extension or
/// field name, as the `priority` value. The message of the refusal never holds it, through the
/// C ABI (`tel_last_error`, default session and client) and through the Rust API (`Error`).
#[test]
fn an_event_or_option_error_never_echoes_the_key() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let s = secret();
    let forms = [
        IKEY.to_owned(),
        format!("{TENANT}-{}", &s[..1]),
        format!("{TENANT}-{}", &s[..5]),
        format!("{TENANT}-{}", &s[..12]),
        s[..6].to_owned(),
        s.to_owned(),
        // Long enough that the 64-character quote cuts the key short.
        format!("{}{IKEY}", "x".repeat(30)),
        format!("{}{IKEY}", "x".repeat(10)),
    ];
    let json_str = |t: &str| serde_json::Value::String(t.to_owned()).to_string();
    let mut cases: Vec<(String, Option<String>, Option<String>)> = Vec::new();
    for k in &forms {
        let q = json_str(k);
        cases.push((k.clone(), None, None));
        cases.push((format!("Name.{k}"), None, None));
        cases.push(("Props.Event".into(), Some(q.clone()), None));
        cases.push(("Props.Event".into(), Some(format!("[{q}]")), None));
        cases.push(("Opt.Event".into(), None, Some(format!("{{{q}:1}}"))));
        cases.push((
            "Opt.Event".into(),
            None,
            Some(format!(r#"{{"ext":{{{q}:{{}}}}}}"#)),
        ));
        cases.push((
            "Opt.Event".into(),
            None,
            Some(format!(r#"{{"ext":{{"dt":{{{q}:"x"}}}}}}"#)),
        ));
        cases.push((
            "Opt.Event".into(),
            None,
            Some(format!(r#"{{"ext":{{"app":{{{q}:"x"}}}}}}"#)),
        ));
        cases.push((
            "Opt.Event".into(),
            None,
            Some(format!(r#"{{"priority":{q}}}"#)),
        ));
    }
    init_ok(&config(&c, None, json!({})));
    let client = TestClient::new(&config(&c, None, json!({})));
    let rust = tel::Client::start(
        tel::Config::from_json(&config(&c, None, json!({})).to_string()).unwrap(),
    )
    .unwrap();
    let mut leaks = Vec::new();
    for (name, props, options) in &cases {
        let what = format!("name {name:?}, properties {props:?}, options {options:?}");
        let rc = log_ex(name, props.as_deref(), options.as_deref());
        assert!(rc == 1 || rc == 3, "{what}: {rc}");
        let mut messages = vec![("tel_log_ex", last_error())];
        let rc = client.log_ex(name, props.as_deref(), options.as_deref());
        assert!(rc == 1 || rc == 3, "{what}: {rc}");
        messages.push(("tel_client_log_ex", last_error()));
        let e = match options {
            None => rust.log(name, props.as_deref()),
            Some(o) => tel::EventOptions::from_json(o)
                .and_then(|o| rust.log_ex(name, props.as_deref(), &o)),
        }
        .unwrap_err();
        messages.push(("Client::log_ex", e.to_string()));
        for (call, m) in messages {
            if shows_secret(&m) {
                leaks.push(format!("{call}: {m}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} messages show part of the key:\n{}",
        leaks.len(),
        cases.len() * 3,
        leaks.join("\n")
    );
    assert_eq!(client.close(1000), 0);
    rust.close(Duration::from_secs(1)).unwrap();
    assert_eq!(shutdown(1000), 0);
    assert_eq!(c.request_count(), 0, "every event was refused");
}

/// Redaction is not defeated by truncation: a 200-byte body excerpt, or the 64-character
/// excerpt of a configuration error, that ends inside the key's secret part shows none of it.
#[test]
fn a_key_cut_short_by_an_excerpt_is_still_redacted() {
    let _s = serial();
    let c = Collector::start().unwrap();
    // The 200-byte body excerpt ends inside the key's secret part.
    let body = format!("{}{IKEY} and more", "x".repeat(150));
    c.push(Scripted::status(503).with_body(body));
    let capture = Capture::start();
    init_ok(&fast_config(&c.endpoint(), None, json!({})));
    log_ok("Redact.Body", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(1000), 0);
    let lines = capture.stop();
    assert!(lines.iter().any(|l| l.contains("503")), "{lines:?}");
    for l in &lines {
        assert!(!shows_secret(l), "a log line shows part of the key: {l}");
    }
    // The 64-character excerpt of a configuration error ends inside the key.
    for (key, value) in [
        ("endpoint", format!("ftp://{IKEY}")),
        ("compression", format!("x{IKEY}")),
    ] {
        let mut cfg = json!({"ikey": IKEY});
        cfg[key] = json!(value);
        assert_eq!(init(&cfg), 2);
        assert!(
            !shows_secret(&last_error()),
            "{key}: the error shows part of the key: {}",
            last_error()
        );
    }
}

#[test]
fn cache_and_state_files_are_0600_in_a_0700_folder() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let root = temp_dir("modes");
    let dir = root.join("a").join("b");
    // A permissive umask must not loosen anything.
    let old_umask = unsafe { libc::umask(0) };
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 1})));
    c.set_default(Some(Scripted::status(503)));
    log_ok("Mode.Event", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("persisted"), 1);
    // A replaying session holds a claim file; a kill leaves the kill state.
    assert_eq!(shutdown(1000), 0);
    c.set_default(Some(Scripted::status(503)));
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 1})));
    assert!(eventually(Duration::from_secs(10), || stat("replayed") >= 1));
    let during: Vec<PathBuf> = files_under(&dir);
    c.set_default(Some(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "60"),
    ));
    log_ok("Mode.Kill", None);
    assert_eq!(flush(10_000), 0);
    assert!(stat("killed_until_ms") > 0);
    assert_eq!(shutdown(1000), 0);
    unsafe { libc::umask(old_umask) };
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    for d in [root.join("a"), dir.clone()] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    let mut all = files_under(&dir);
    all.extend(during.into_iter().filter(|p| p.exists()));
    let names: Vec<String> = all
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "events.cache.kill"), "{names:?}");
    assert!(names.iter().any(|n| n == "device-id"), "{names:?}");
    assert!(names.iter().any(|n| n == "events.cache.lock"), "{names:?}");
    for f in &all {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

/// Bodies are read up to 64 KiB and no further: an `efi` past that point is never seen (so the
/// events count as sent), one before it is. Heads are read up to 64 KiB and 128 header lines
/// (the HTTP client's bound): 100 headers pass, 10,000 are a failure, retried.
#[test]
fn response_bodies_and_headers_are_read_up_to_fixed_caps() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let body = |pad: usize| format!(r#"{{"pad":"{}","efi":{{"X":"all"}}}}"#, "p".repeat(pad));
    assert_eq!(tel::internals::transport::MAX_RESPONSE_BODY, 64 * 1024);
    c.push(Scripted::status(200).with_body(body(60 * 1024)));
    c.push(Scripted::status(200).with_body(body(70 * 1024)));
    init_ok(&config(
        &c,
        None,
        json!({"batch_max_events": 1, "flush_interval_ms": 0}),
    ));
    log_ok("Cap.Under", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(
        (stat("sent"), stat("rejected")),
        (0, 1),
        "60 KiB body read whole"
    );
    log_ok("Cap.Over", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(
        (stat("sent"), stat("rejected")),
        (1, 1),
        "70 KiB body cut at 64 KiB"
    );
    c.push(Scripted::fault(Fault::ManyHeaders(100)));
    log_ok("Cap.Headers", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("sent"), 2, "100 headers fit");
    c.push(Scripted::fault(Fault::ManyHeaders(10_000)));
    log_ok("Cap.TooManyHeaders", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(stat("sent"), 3);
    assert_eq!(stat("retries"), 1, "10,000 headers: refused and retried");
    assert_eq!(shutdown(1000), 0);
    assert_conserved();
}

/// In a child process whose HOME, XDG_CACHE_HOME, TMPDIR and working directory are empty
/// folders of a sandbox: a session with the default cache path and one with an explicit path,
/// through persistence, replay and a kill, write under their cache folders and nowhere else.
#[test]
fn nothing_is_written_outside_the_cache_folder() {
    if child_role().as_deref() == Some("sandbox") {
        let c = Collector::start().unwrap();
        let explicit = PathBuf::from(std::env::var("TEL_TEST_EXPLICIT").unwrap());
        for cache_path in [json!(explicit.to_string_lossy()), json!(null)] {
            let mut cfg = json!({
                "ikey": IKEY, "endpoint": c.endpoint(), "flush_interval_ms": 10,
                "retry_initial_ms": 10, "retry_max_ms": 20, "retry_max_attempts": 1,
            });
            if cache_path.is_string() {
                cfg["cache_path"] = cache_path;
            }
            c.set_default(Some(Scripted::status(503)));
            init_ok(&cfg);
            log_ok("Sandbox.Event", None);
            assert_eq!(flush(5000), 0);
            assert_eq!(shutdown(1000), 0);
            c.set_default(Some(
                Scripted::accept()
                    .with_header("kill-tokens", format!("o:{TENANT}"))
                    .with_header("kill-duration", "5"),
            ));
            init_ok(&cfg);
            assert_eq!(flush(5000), 0);
            assert_eq!(shutdown(1000), 0);
        }
        println!("SANDBOX-OK");
        return;
    }
    if child_role().is_some() {
        return;
    }
    let sandbox = temp_dir("sandbox");
    let (home, xdg, tmp, cwd) = (
        sandbox.join("home"),
        sandbox.join("xdg"),
        sandbox.join("tmp"),
        sandbox.join("cwd"),
    );
    for d in [&home, &xdg, &tmp, &cwd] {
        std::fs::create_dir_all(d).unwrap();
    }
    let explicit_dir = sandbox.join("explicit");
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "nothing_is_written_outside_the_cache_folder",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(&cwd)
        .env("TEL_TEST_ROLE", "sandbox")
        .env("TEL_TEST_EXPLICIT", explicit_dir.join("events.cache"))
        .env("HOME", &home)
        .env("XDG_CACHE_HOME", &xdg)
        .env("TMPDIR", &tmp)
        .env_remove("TEL_CACHE_DIR")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SANDBOX-OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let default_dir = xdg.join("tel");
    for f in files_under(&sandbox) {
        assert!(
            f.starts_with(&explicit_dir) || f.starts_with(&default_dir),
            "written outside the cache folders: {}",
            f.display()
        );
    }
    assert!(files_under(&explicit_dir).len() >= 2);
    assert!(files_under(&default_dir).len() >= 2);
    assert_no_key_in_files(&sandbox);
}

/// Symbolic links planted in place of the cache file, its lock, its kill state and the device
/// id, pointing at files outside the folder: none of those files is written, and the events
/// are still counted (persisted elsewhere or dropped, never lost silently).
#[test]
fn planted_symlinks_are_never_written_through() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let root = temp_dir("symlinks");
    let outside = root.join("outside");
    let dir = root.join("cache");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victims: Vec<(PathBuf, PathBuf)> = [
        "events.cache",
        "events.cache.lock",
        "events.cache.kill",
        "device-id",
    ]
    .iter()
    .map(|name| {
        let victim = outside.join(format!("victim-{name}"));
        std::fs::write(&victim, b"precious\n").unwrap();
        let link = dir.join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        (link, victim)
    })
    .collect();
    c.set_default(Some(Scripted::status(503)));
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 1})));
    for _ in 0..3 {
        log_ok("Symlink.Event", None);
    }
    // The cache is unusable (its lock is a symlink): the batch stays in memory, retried.
    assert_eq!(flush(1000), 7);
    c.set_default(Some(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "5"),
    ));
    log_ok("Symlink.Kill", None);
    assert_eq!(flush(5000), 0);
    log_ok("Symlink.Killed", None);
    assert_eq!(shutdown(1000), 0);
    assert_conserved();
    for (link, victim) in &victims {
        assert_eq!(
            std::fs::read(victim).unwrap(),
            b"precious\n",
            "{} was written through {}",
            victim.display(),
            link.display()
        );
    }
    let s = stats();
    assert_eq!(s["logged"], 5, "{s}");
}

/// A cache file planted in the folder by another user (as root the test can make one) is
/// never written in place: the library replaces it by a file of its own, 0600, owned by the
/// current user.
#[test]
fn a_cache_file_planted_by_another_user_is_not_written_in_place() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("foreign");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let cache = dir.join("events.cache");
    // A cache-looking file (a file that is not a cache is never touched at all).
    let planted_line = br#"{"ver":"4.0","name":"Planted.Line","time":"2026-01-01T00:00:00.000Z","iKey":"o:someoneelse","data":{}}
"#;
    std::fs::write(&cache, planted_line).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o666)).unwrap();
    // nobody:nogroup; without the privilege the file is simply ours, and 0666.
    let chowned = unsafe {
        let p = std::ffi::CString::new(cache.to_string_lossy().as_bytes()).unwrap();
        libc::chown(p.as_ptr(), 65534, 65534) == 0
    };
    // A second name keeps the planted inode alive (its number cannot be reused) and readable.
    let keep = temp_dir("foreign-keep").join("planted");
    std::fs::hard_link(&cache, &keep).unwrap();
    let planted = std::fs::metadata(&cache).unwrap();
    c.set_default(Some(Scripted::status(503)));
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 1})));
    log_ok("Foreign.Event", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_conserved();
    let now = std::fs::metadata(&cache).unwrap();
    assert_ne!(
        now.ino(),
        planted.ino(),
        "the planted file is still the cache file"
    );
    assert_eq!(
        std::fs::read(&keep).unwrap(),
        planted_line,
        "the planted file was written in place"
    );
    assert_eq!(
        read_lines(&cache).len(),
        2,
        "the event went to a file of its own (with the other tenant's line kept)"
    );
    assert_eq!(now.mode() & 0o777, 0o600);
    assert_eq!(now.uid(), unsafe { libc::geteuid() });
    if chowned {
        assert_eq!(planted.uid(), 65534);
    }
}
