//! The core path through the C ABI: envelopes on the wire, validation, lifecycle, batching,
//! concurrency, deadlines, the queue bound, opt-out, the device id and the counters.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn events_arrive_in_common_schema_4_form_with_the_protocol_headers() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"ext": {"app": {"ver": "1.2.3"}}})));
    log_ok(
        "Test.Event1",
        Some(r#"{"action":"build","ok":true,"n":[1,{"x":null}]}"#),
    );
    log_ok("Test.Event2", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    let acc = c.accepted();
    assert_eq!(names(&acc), ["Test.Event1", "Test.Event2"]);
    let e = &acc[0];
    assert_eq!(e["ver"], "4.0");
    assert_eq!(e["iKey"], format!("o:{TENANT}"));
    assert!(tel::internals::clock::parse_iso8601(e["time"].as_str().unwrap()).is_some());
    assert_eq!(
        e["data"],
        json!({"action":"build","ok":true,"n":[1,{"x":null}]})
    );
    assert_eq!(acc[1]["data"], json!({}));
    let ext = &e["ext"];
    assert_eq!(ext["app"]["ver"], "1.2.3");
    assert!(ext["app"]["sesId"].as_str().unwrap().len() >= 32);
    assert!(ext["device"]["localId"].as_str().unwrap().starts_with("r:"));
    assert!(ext["os"]["name"].is_string() && ext["os"]["ver"].is_string());
    assert_eq!(ext["sdk"]["seq"], 1);
    assert_eq!(acc[1]["ext"]["sdk"]["seq"], 2);
    assert_eq!(ext["sdk"]["epoch"], acc[1]["ext"]["sdk"]["epoch"]);

    let req = &c.requests()[0];
    assert_eq!(
        req.header("content-type"),
        Some("application/x-json-stream; charset=utf-8")
    );
    assert_eq!(req.header("x-apikey"), Some(IKEY));
    assert_eq!(req.header("client-id"), Some("NO_AUTH"));
    assert!(req
        .header("sdk-version")
        .unwrap()
        .starts_with("onecollector-tel-"));
    assert!(req.header("upload-time").unwrap().parse::<u64>().is_ok());
    assert_eq!(req.header("content-encoding"), Some("deflate"));
    assert_eq!(req.lines.len(), 2, "one envelope per line");
    // The regression behind the original exporter's 401s: the full key never enters a body.
    for r in c.requests() {
        assert!(!String::from_utf8_lossy(&r.body).contains(IKEY));
        assert!(!r.full_key_in_body);
    }
    assert_eq!(shutdown(5000), 0);
    assert_conserved();
}

#[test]
fn invalid_configurations_name_their_problem() {
    let _s = serial();
    let cases = [
        (json!({}), "ikey"),
        (json!({"ikey": ""}), "ikey"),
        (json!({"ikey": "nodash"}), "ikey"),
        (json!({"ikey": "-abc"}), "tenant"),
        (json!({"ikey": 5}), "ikey"),
        (json!({"ikey": IKEY, "colour": "red"}), "colour"),
        (json!({"ikey": IKEY, "endpoint": ""}), "endpoint"),
        (
            json!({"ikey": IKEY, "endpoint": "http://example.com/"}),
            "loopback",
        ),
        (json!({"ikey": IKEY, "endpoint": "ftp://x/"}), "https://"),
        (
            json!({"ikey": IKEY, "ext": {"os": {"release": "x"}}}),
            "ext.os.release",
        ),
        (
            json!({"ikey": IKEY, "ext": {"app": {"initTs": "x"}}}),
            "ext.app.initTs",
        ),
        (
            json!({"ikey": IKEY, "ext": {"sdk": {"ver": "x"}}}),
            "ext.sdk",
        ),
        (
            json!({"ikey": IKEY, "ext": {"device": {"localId": "deadbeef"}}}),
            "scope prefix",
        ),
        (
            json!({"ikey": IKEY, "batch_max_events": 0}),
            "batch_max_events",
        ),
        (
            json!({"ikey": IKEY, "queue_max_events": -1}),
            "queue_max_events",
        ),
        (
            json!({"ikey": IKEY, "http_timeout_ms": "10"}),
            "http_timeout_ms",
        ),
        (json!({"ikey": IKEY, "compression": "zstd"}), "compression"),
        (json!({"ikey": IKEY, "enabled": "yes"}), "enabled"),
        (
            json!({"ikey": IKEY, "retry_initial_ms": 500, "retry_max_ms": 100}),
            "retry_max_ms",
        ),
        (json!([]), "object"),
    ];
    for (cfg, word) in cases {
        assert_eq!(init(&cfg), 2, "{cfg} should be TEL_ERR_INVALID_CONFIG");
        let msg = last_error();
        assert!(
            msg.contains(word),
            "{cfg}: message {msg:?} should name {word:?}"
        );
        assert!(!msg.contains("0123-4567"), "the key leaked into {msg:?}");
    }
    let bad_json = std::ffi::CString::new("{not json").unwrap();
    assert_eq!(unsafe { tel::ffi::tel_init(bad_json.as_ptr()) }, 2);
}

#[test]
fn invalid_events_get_their_status_and_a_message() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"event_max_bytes": 2000})));
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(3000));
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(300), "]".repeat(300));
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("abc", None, "4 to 100"),
        ("_abc", None, "start and end"),
        ("abc.", None, "start and end"),
        ("has space", None, "only letters"),
        ("Event", Some("[1,2]"), "JSON object"),
        ("Event", Some("\"s\""), "JSON object"),
        ("Event", Some("{\"a\":"), "JSON object"),
        ("Event", Some(big.as_str()), "event_max_bytes"),
        ("Event", Some(deep.as_str()), "levels deep"),
    ];
    let long_name = "a".repeat(101);
    for (name, props, word) in cases
        .iter()
        .copied()
        .chain([(long_name.as_str(), None, "4 to 100")])
    {
        assert_eq!(log(name, props), 3, "{name} {props:?}");
        assert!(last_error().contains(word), "{name}: {}", last_error());
    }
    assert_eq!(stat("logged"), 0);
    assert_eq!(flush(5000), 0);
    assert_eq!(c.request_count(), 0, "an empty flush sends nothing");
}

#[test]
fn lifecycle_codes() {
    let _s = serial();
    let c = Collector::start().unwrap();
    assert_eq!(log("Before.Init", None), 4);
    assert!(last_error().contains("tel_init"));
    assert_eq!(flush(10), 4);
    assert_eq!(shutdown(10), 4);
    init_ok(&config(&c, None, json!({})));
    assert_eq!(init(&config(&c, None, json!({}))), 5);
    log_ok("During.Session", None);
    assert_eq!(shutdown(5000), 0);
    assert_eq!(log("After.Shutdown", None), 4);
    assert_eq!(stat("sent"), 1, "stats of the last session stay readable");
    init_ok(&config(&c, None, json!({})));
    assert_eq!(stat("sent"), 0, "a new session starts its counters at zero");
    log_ok("Second.Session", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(names(&c.accepted()), ["During.Session", "Second.Session"]);
}

#[test]
fn every_compression_mode_is_accepted() {
    let _s = serial();
    for (mode, header) in [
        ("deflate", Some("deflate")),
        ("gzip", Some("gzip")),
        ("none", None),
    ] {
        let c = Collector::start().unwrap();
        init_ok(&config(&c, None, json!({"compression": mode})));
        log_ok(
            "Compressed.Event",
            Some(&format!("{{\"mode\":\"{mode}\"}}")),
        );
        assert_eq!(flush(5000), 0, "{mode}: {}", last_error());
        assert_eq!(shutdown(5000), 0);
        let r = &c.requests()[0];
        assert_eq!(r.header("content-encoding"), header, "{mode}");
        assert_eq!(c.accepted()[0]["data"]["mode"], mode);
    }
}

#[test]
fn batches_respect_event_and_byte_limits() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(
        &c,
        None,
        json!({"batch_max_events": 10, "batch_max_bytes": 4096, "flush_interval_ms": 60000}),
    ));
    for i in 0..25 {
        log_ok("Batch.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    // Two full batches go without waiting for the interval (which is a minute here).
    assert!(c.wait_for_accepted(20, WAIT));
    assert_eq!(flush(5000), 0);
    let sizes: Vec<usize> = c.requests().iter().map(|r| r.lines.len()).collect();
    assert_eq!(sizes, [10, 10, 5]);
    let pad = "p".repeat(900);
    for _ in 0..9 {
        log_ok("Batch.Large", Some(&format!("{{\"pad\":\"{pad}\"}}")));
    }
    assert_eq!(flush(5000), 0);
    for r in &c.requests()[3..] {
        assert!(r.body.len() <= 4096, "a request of {} bytes", r.body.len());
        assert!(r.lines.len() < 9);
    }
    assert_eq!(c.accepted_count(), 34);
    assert_conserved();
}

#[test]
fn eight_threads_lose_and_duplicate_nothing() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"queue_max_events": 100_000})));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..2500 {
                    log_ok("Thread.Event", Some(&format!("{{\"t\":{t},\"i\":{i}}}")));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(flush(60_000), 0, "{}", last_error());
    let acc = c.accepted();
    assert_eq!(acc.len(), 20_000);
    let unique: HashSet<(u64, u64)> = acc
        .iter()
        .map(|e| {
            (
                e["data"]["t"].as_u64().unwrap(),
                e["data"]["i"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(unique.len(), 20_000, "duplicates arrived");
    let seqs: HashSet<u64> = acc
        .iter()
        .map(|e| e["ext"]["sdk"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 20_000);
    assert_eq!(stat("sent"), 20_000);
    assert_conserved();
}

#[test]
fn a_hanging_collector_blocks_neither_log_nor_shutdown() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("hang");
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    init_ok(&config(&c, Some(&dir), json!({"http_timeout_ms": 60_000})));
    log_ok("Hang.First", None);
    assert!(c.wait_for_requests(1, WAIT), "the worker posted");
    // The worker is stuck in a request now; logging still just enqueues.
    for i in 0..1000 {
        log_ok("Hang.More", Some(&format!("{{\"i\":{i}}}")));
    }
    assert_eq!(flush(100), 7, "flush reports its deadline");
    let started = Instant::now();
    let rc = shutdown(300);
    let took = started.elapsed();
    assert_eq!(rc, 7, "{}", last_error());
    assert!(
        took < Duration::from_millis(300 + 200 + 1500),
        "tel_shutdown(300) took {took:?} with the collector hanging"
    );
    // What was pending went to the cache.
    assert_eq!(stat("persisted"), 1001);
    assert_eq!(stat("pending"), 0);
    assert_conserved();
    assert_eq!(read_lines(&dir.join("events.cache")).len(), 1001);
    c.release();
}

#[test]
fn a_full_queue_answers_queue_full_and_counts() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    init_ok(&config(
        &c,
        None,
        json!({"queue_max_events": 50, "http_timeout_ms": 60_000}),
    ));
    let mut full = 0;
    for _ in 0..80 {
        match log("Queue.Event", None) {
            0 => {}
            6 => full += 1,
            rc => panic!("unexpected {rc}"),
        }
    }
    assert_eq!(full, 30);
    assert!(last_error().contains("queue_max_events"));
    assert_eq!(stat("logged"), 50);
    assert_eq!(stat("dropped_queue_full"), 30);
    assert_eq!(shutdown(100), 7);
    assert_eq!(
        stat("dropped_shutdown"),
        50,
        "no cache: what was pending is counted as dropped"
    );
    assert_conserved();
    c.release();
}

#[test]
fn opt_out_sends_and_writes_nothing() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("optout");
    let cache = dir.join("events.cache");
    let old = format!(
        r#"{{"ver":"4.0","name":"Old.Entry","time":"2026-01-01T00:00:00.000Z","iKey":"o:{TENANT}","data":{{}}}}"#
    );
    std::fs::write(&cache, old + "\n").unwrap();
    init_ok(&config(&c, Some(&dir), json!({"enabled": false})));
    for _ in 0..10 {
        log_ok("OptOut.Event", None);
    }
    assert_eq!(log("OptOut.Event", None), 0);
    assert_eq!(flush(1000), 0);
    let s = stats();
    assert_eq!(s["enabled"], false);
    assert_eq!(s["logged"], 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(c.request_count(), 0);
    assert!(!cache.exists(), "opt-out deletes the cache file");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "opt-out wrote {left:?}");
}

#[test]
fn opt_out_by_environment() {
    // Run in child processes: the environment is process-wide.
    if let Some(role) = child_role() {
        if role == "optout-env" {
            let c = Collector::start().unwrap();
            let dir = temp_dir("optout-env");
            init_ok(&config(&c, Some(&dir), json!({})));
            log_ok("Env.OptOut", None);
            assert_eq!(shutdown(1000), 0);
            assert_eq!(c.request_count(), 0);
            assert_eq!(stats()["enabled"], false);
            assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
            println!("CHILD-OK");
        }
        return;
    }
    for env in [("TEL_DISABLE", "1"), ("DO_NOT_TRACK", "1")] {
        let out = run_child(
            "opt_out_by_environment",
            &[
                ("TEL_TEST_ROLE", "optout-env".into()),
                (env.0, env.1.into()),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("CHILD-OK"),
            "{env:?}: {text}"
        );
    }
}

#[test]
fn device_local_id_survives_a_process_restart() {
    if child_role().as_deref() == Some("device-id") {
        let c = Collector::start().unwrap();
        let dir = std::path::PathBuf::from(std::env::var("TEL_TEST_DIR").unwrap());
        init_ok(&config(&c, Some(&dir), json!({})));
        log_ok("Device.Id", None);
        assert_eq!(flush(5000), 0);
        println!(
            "LOCAL-ID={}",
            c.accepted()[0]["ext"]["device"]["localId"]
                .as_str()
                .unwrap()
        );
        assert_eq!(shutdown(1000), 0);
        return;
    }
    if child_role().is_some() {
        return;
    }
    let dir = temp_dir("device");
    let id = || {
        let out = run_child(
            "device_local_id_survives_a_process_restart",
            &[
                ("TEL_TEST_ROLE", "device-id".into()),
                ("TEL_TEST_DIR", dir.to_string_lossy().into_owned()),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        text.split("LOCAL-ID=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| {
                panic!(
                    "child printed no id: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
            .to_owned()
    };
    let first = id();
    let second = id();
    assert!(first.starts_with("r:") && first.len() == 38, "{first}");
    assert_eq!(first, second);
}

#[test]
fn non_2xx_produces_one_debug_line_without_the_key() {
    let _s = serial();
    static LINES: parking_lot::Mutex<Vec<(i32, String)>> = parking_lot::Mutex::new(Vec::new());
    extern "C" fn sink(level: i32, msg: *const std::ffi::c_char, _: *mut std::ffi::c_void) {
        let m = unsafe { std::ffi::CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        LINES.lock().push((level, m));
    }
    LINES.lock().clear();
    assert_eq!(
        tel::ffi::tel_set_logger(Some(sink), 5, std::ptr::null_mut()),
        0
    );
    let c = Collector::start().unwrap();
    let body = format!("{{\"reason\":\"{}\"}}\nsecond line", "z".repeat(400));
    c.push(
        Scripted::status(403)
            .with_header("Collector-Error", "Tenant is not allowed")
            .with_body(&body),
    );
    init_ok(&config(&c, None, json!({})));
    log_ok("Debug.Line", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut()), 0);
    let lines = LINES.lock().clone();
    let debug: Vec<&String> = lines
        .iter()
        .filter(|(l, m)| *l == 4 && m.contains("HTTP 403"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(debug.len(), 1, "{lines:?}");
    assert!(debug[0].contains("Tenant is not allowed"));
    let excerpt = debug[0].split("body: ").nth(1).unwrap();
    assert_eq!(
        excerpt.len(),
        200,
        "the body excerpt is capped at 200 bytes"
    );
    assert!(!debug[0].contains('\n'));
    assert!(
        lines.iter().any(|(l, m)| *l == 3 && m.contains("rejected")),
        "{lines:?}"
    );
    for (_, m) in &lines {
        assert!(
            !m.contains(IKEY),
            "the full key leaked into a log line: {m}"
        );
    }
    assert_eq!(stat("rejected"), 1);
    assert_conserved();
}

#[test]
fn conservation_holds_after_flush_and_after_shutdown() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("conserve");
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 2})));
    c.push(Scripted::status(200).with_body(r#"{"acc":1,"rej":1,"efi":{"X":[1]}}"#));
    log_ok("Conserve.One", None);
    log_ok("Conserve.Two", None);
    assert_eq!(flush(5000), 0);
    assert_conserved();
    assert_eq!((stat("sent"), stat("rejected")), (1, 1));
    c.set_default(Some(Scripted::status(503)));
    log_ok("Conserve.Three", None);
    assert_eq!(
        flush(10_000),
        0,
        "retries ran out: the batch is persisted, which resolves it"
    );
    assert_conserved();
    assert_eq!(stat("persisted"), 1);
    log_ok("Conserve.Four", None);
    let _ = shutdown(2000);
    assert_conserved();
    let s: Value = stats();
    assert_eq!(s["logged"], 4);
    assert_eq!(s["pending"], 0);
}

#[test]
fn a_queue_filled_as_the_session_starts_is_flushed() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("fullstart");
    for _ in 0..5 {
        init_ok(&config(
            &c,
            Some(&dir),
            json!({"queue_max_events": 2, "flush_interval_ms": 600_000}),
        ));
        log_ok("Full.AtStart", None);
        log_ok("Full.AtStart", None);
        assert_eq!(flush(5000), 0, "{}", last_error());
        assert_eq!(shutdown(1000), 0);
    }
    assert_eq!(c.accepted_count(), 10);
}

#[test]
fn a_missing_status_line_is_a_network_failure_not_a_503() {
    let _s = serial();
    static LINES: parking_lot::Mutex<Vec<String>> = parking_lot::Mutex::new(Vec::new());
    extern "C" fn sink(_: i32, msg: *const std::ffi::c_char, _: *mut std::ffi::c_void) {
        let m = unsafe { std::ffi::CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        LINES.lock().push(m);
    }
    LINES.lock().clear();
    tel::ffi::tel_set_logger(Some(sink), 4, std::ptr::null_mut());
    let c = Collector::start().unwrap();
    c.push(Scripted::fault(Fault::Garbage(
        b"not http at all\r\n\r\n".to_vec(),
    )));
    init_ok(&config(&c, None, json!({})));
    log_ok("Garbage.Status", None);
    assert_eq!(flush(10_000), 0);
    tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut());
    let lines = LINES.lock().clone();
    assert!(!lines.iter().any(|l| l.contains("HTTP 503")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("no HTTP status line")),
        "{lines:?}"
    );
    assert_eq!(c.accepted_count(), 1, "retried and delivered");
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
