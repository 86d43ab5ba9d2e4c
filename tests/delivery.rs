//! Delivery through the C ABI, and the account of it: events reach the collector in Common
//! Schema 4.0 form with the protocol's headers, in every compression mode, in batches within
//! their bounds, from eight threads with nothing lost or sent twice; a full queue answers
//! `QUEUE_FULL` and a higher priority takes the place of the oldest lower one; opt-out sends
//! and writes nothing; the device id outlives the process; the counters add up after a flush
//! and a shutdown. Then the delivery reports: one per resolved group, adding up to the
//! counters; callbacks that call back into the library; none after close; the default
//! session's callback for later sessions; no full key in a reason; callbacks that block or
//! close each other never hold up a deadline.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::ffi::{c_char, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Events on the wire.

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

// ---------------------------------------------------------------------------------------------
// The queue: its bound and priorities.

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
fn a_higher_priority_takes_the_place_of_the_oldest_lower_one() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"queue_max_events": 5, "flush_interval_ms": 600_000, "batch_max_events": 100,
               "max_inflight_requests": 1}),
    ));
    // One event in flight, held by a collector that hangs, with one request allowed on the
    // wire: the worker takes nothing more from the queue meanwhile (a full queue would
    // otherwise go out at once, in a request of its own, to make room), and an event in flight
    // is never pushed out.
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    assert_eq!(client.log("Stuck.Event", Some(r#"{"i":0}"#)), 0);
    assert_eq!(client.flush(0), 7);
    assert!(c.wait_for_requests(1, WAIT));
    for i in 0..4 {
        let props = format!("{{\"i\":{i}}}");
        assert_eq!(client.log("Normal.Event", Some(&props)), 0);
    }
    assert_eq!(client.log("Normal.Event", Some(r#"{"i":99}"#)), 6, "full");
    let ex = |name: &str, i: u32, opts: &str| {
        client.log_ex(name, Some(&format!("{{\"i\":{i}}}")), Some(opts))
    };
    assert_eq!(ex("High.Event", 0, HIGH), 0);
    assert_eq!(ex("High.Event", 1, HIGH), 0);
    assert_eq!(client.stats()["dropped_evicted"], 2);
    // Critical without a cache: the highest priority all the same.
    assert_eq!(ex("Crit.Event", 0, CRITICAL), 0);
    assert_eq!(ex("High.Event", 2, HIGH), 0);
    // Only high and critical are queued: another high is refused, a critical evicts a high.
    assert_eq!(ex("High.Event", 3, HIGH), 6);
    assert_eq!(ex("Crit.Event", 1, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 2, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 3, CRITICAL), 0);
    assert_eq!(ex("Crit.Event", 4, CRITICAL), 6);
    c.release();
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_conserved_in(&s);
    assert_eq!(s["dropped_evicted"], 7);
    assert_eq!(s["dropped_queue_full"], 3);
    assert_eq!(s["logged"], 12);
    assert_eq!(s["sent"], 5);
    let mut got: Vec<(String, u64)> = c
        .accepted()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_owned();
            (name, e["data"]["i"].as_u64().unwrap())
        })
        .collect();
    got.sort();
    let crit = |i| ("Crit.Event".to_owned(), i);
    assert_eq!(
        got,
        [
            crit(0),
            crit(1),
            crit(2),
            crit(3),
            ("Stuck.Event".to_owned(), 0)
        ]
    );
    assert_eq!(client.close(5000), 0);
}

#[test]
fn without_priorities_nothing_is_evicted() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"queue_max_events": 3, "flush_interval_ms": 600_000}),
    ));
    // The full queue goes out at once; the collector holds that request, so the three stay
    // pending (an answer before the fourth call would make room).
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    for _ in 0..3 {
        assert_eq!(client.log("Normal.Event", None), 0);
    }
    assert_eq!(
        client.log_ex("Normal.Event", None, Some(r#"{"priority":"normal"}"#)),
        6
    );
    assert!(c.wait_for_requests(1, WAIT));
    c.release();
    // The released request is answered by a closed connection: the three are sent again.
    assert_eq!(client.flush(10_000), 0);
    assert_eq!(client.close(5000), 0);
    assert_eq!(c.accepted().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Opt-out, the device id, the counters.

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

// ---------------------------------------------------------------------------------------------
// Delivery reports.

/// What a callback saw; passed as `user_data`.
#[derive(Default)]
struct Sink {
    reports: parking_lot::Mutex<Vec<Value>>,
    /// Set once the client is closed: a report after it is a violation.
    closed: AtomicBool,
    late: AtomicUsize,
    /// Slows every call down by this many ms.
    delay_ms: AtomicUsize,
    /// A client the callback logs to and closes (its own), when set.
    own: parking_lot::Mutex<Option<usize>>,
    other: parking_lot::Mutex<Option<usize>>,
    codes: parking_lot::Mutex<Vec<(&'static str, i32)>>,
}

extern "C" fn collect(report: *const c_char, user_data: *mut c_void) {
    let sink = unsafe { &*(user_data as *const Sink) };
    if sink.closed.load(Ordering::SeqCst) {
        sink.late.fetch_add(1, Ordering::SeqCst);
    }
    let text = unsafe { CStr::from_ptr(report) }.to_str().unwrap();
    sink.reports
        .lock()
        .push(serde_json::from_str(text).unwrap());
    let delay = sink.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay as u64));
    }
    // Once: the event the callback logs gets a report of its own, and acting on that one too
    // would log to the other client a second time, depending on thread timing.
    let own = sink.own.lock().take();
    if let Some(own) = own {
        let own = own as *mut tel::ffi::tel_client;
        let mut codes = sink.codes.lock();
        codes.push(("own_close", unsafe { tel::ffi::tel_client_close(own, 0) }));
        let n = unsafe { tel::ffi::tel_client_stats_json(own, std::ptr::null_mut(), 0) };
        codes.push(("own_stats", (n > 0) as i32));
        let name = std::ffi::CString::new("From.Callback").unwrap();
        codes.push(("own_log", unsafe {
            tel::ffi::tel_client_log(own, name.as_ptr(), std::ptr::null())
        }));
        codes.push(("own_flush", unsafe {
            tel::ffi::tel_client_flush(own, 1000)
        }));
        if let Some(other) = *sink.other.lock() {
            codes.push(("other_log", unsafe {
                tel::ffi::tel_client_log(other as *mut _, name.as_ptr(), std::ptr::null())
            }));
            codes.push(("other_flush", unsafe {
                tel::ffi::tel_client_flush(other as *mut _, 5000)
            }));
        }
        codes.push(("global_log", unsafe {
            tel::ffi::tel_log(name.as_ptr(), std::ptr::null())
        }));
    }
}

fn install(client: &TestClient, sink: &Sink) {
    let rc = unsafe {
        tel::ffi::tel_client_set_delivery_callback(
            client.0,
            Some(collect),
            sink as *const Sink as *mut c_void,
        )
    };
    assert_eq!(rc, 0);
}

/// Per outcome: the sum of `events`, and the names with their counts.
fn totals(reports: &[Value]) -> HashMap<String, (u64, HashMap<String, u64>)> {
    let mut m: HashMap<String, (u64, HashMap<String, u64>)> = HashMap::new();
    for r in reports {
        let entry = m
            .entry(r["outcome"].as_str().unwrap().to_owned())
            .or_default();
        let events = r["events"].as_u64().unwrap();
        entry.0 += events;
        let mut named = 0;
        for (name, n) in r["names"].as_object().unwrap() {
            *entry.1.entry(name.clone()).or_default() += n.as_u64().unwrap();
            named += n.as_u64().unwrap();
        }
        assert_eq!(named, events, "names add up to events: {r}");
        assert!(r["status"].is_u64() && r["reason"].is_string(), "{r}");
    }
    m
}

fn assert_reports_match(stats: &Value, reports: &[Value]) {
    let t = totals(reports);
    for outcome in [
        "sent",
        "rejected",
        "dropped_killed",
        "persisted",
        "dropped_shutdown",
        "dropped_evicted",
        "dropped_consent",
    ] {
        let reported = t.get(outcome).map_or(0, |x| x.0);
        assert_eq!(
            reported,
            stats[outcome].as_u64().unwrap(),
            "{outcome}: {stats} {reports:?}"
        );
    }
}

#[test]
fn reports_add_up_to_the_counters() {
    let c = Collector::start().unwrap();
    let sink = Sink::default();
    let client = TestClient::new(&config(
        &c,
        None,
        json!({"queue_max_events": 3, "flush_interval_ms": 600_000, "max_inflight_requests": 1}),
    ));
    install(&client, &sink);
    for _ in 0..3 {
        assert_eq!(client.log("Sent.Event", None), 0);
    }
    assert_eq!(client.flush(5000), 0);
    // Refused as a whole, with a reason.
    c.push(Scripted::status(400).with_header("Collector-Error", "Invalid event format"));
    assert_eq!(client.log("Rejected.Event", None), 0);
    assert_eq!(client.log("Rejected.Event", None), 0);
    assert_eq!(client.flush(5000), 0);
    // One refused by index.
    c.push(
        Scripted::status(200).with_body(r#"{"acc":1,"rej":1,"efi":{"InvalidDeviceLocalId":[1]}}"#),
    );
    assert_eq!(client.log("Mixed.Good", None), 0);
    assert_eq!(client.log("Mixed.Bad", None), 0);
    assert_eq!(client.flush(5000), 0);
    // Evicted by a higher priority: one event held in flight by a hanging collector, with one
    // request allowed on the wire, keeps the worker from taking the queued ones (a full queue
    // would otherwise go out at once, in a second request).
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    let before = c.request_count();
    assert_eq!(client.log("Stuck.Event", None), 0);
    assert_eq!(client.flush(0), 7);
    assert!(c.wait_for_requests(before + 1, WAIT));
    for _ in 0..2 {
        assert_eq!(client.log("Evicted.Event", None), 0);
    }
    assert_eq!(
        client.log_ex("High.Event", None, Some(r#"{"priority":"high"}"#)),
        0
    );
    c.release();
    assert_eq!(client.flush(10_000), 0);
    let final_stats = client.stats();
    assert_conserved_in(&final_stats);
    assert_eq!(client.close(5000), 0);
    let reports = sink.reports.lock().clone();
    let t = totals(&reports);
    assert_eq!(t["sent"].0, 3 + 1 + 3);
    assert_eq!(t["rejected"].0, 3);
    assert_eq!(t["rejected"].1["Rejected.Event"], 2);
    assert_eq!(t["rejected"].1["Mixed.Bad"], 1);
    assert_eq!(t["dropped_evicted"].1["Evicted.Event"], 1);
    let whole = reports
        .iter()
        .find(|r| r["outcome"] == "rejected" && r["events"] == 2)
        .unwrap();
    assert_eq!(whole["status"], 400);
    assert!(
        whole["reason"]
            .as_str()
            .unwrap()
            .contains("Invalid event format"),
        "{whole}"
    );
    let by_index = reports
        .iter()
        .find(|r| r["names"].get("Mixed.Bad").is_some())
        .unwrap();
    assert!(
        by_index["reason"]
            .as_str()
            .unwrap()
            .contains("InvalidDeviceLocalId"),
        "{by_index}"
    );
    let evicted = reports
        .iter()
        .find(|r| r["outcome"] == "dropped_evicted")
        .unwrap();
    assert_eq!(evicted["status"], 0);
    assert_reports_match(&final_stats, &reports);
    assert_eq!(sink.late.load(Ordering::SeqCst), 0);
}

#[test]
fn persisted_and_dropped_at_shutdown_are_reported() {
    let sink = Sink::default();
    let dir = temp_dir("reports-persist");
    let mk = |cache: Value| {
        json!({"ikey": IKEY, "endpoint": dead_endpoint(), "retry_initial_ms": 10_000,
               "flush_interval_ms": 600_000, "cache_path": cache})
    };
    let a = TestClient::new(&mk(json!(dir.join("events.cache"))));
    let b = TestClient::new(&mk(Value::Null));
    install(&a, &sink);
    for _ in 0..4 {
        assert_eq!(a.log("Persisted.Event", None), 0);
    }
    let b_sink = Sink::default();
    install(&b, &b_sink);
    assert_eq!(b.log("Dropped.Event", None), 0);
    // Each close makes one attempt, refused at once, and then persists (or drops) the batch,
    // which backs off for 10 s, without waiting for its deadline: the deadline is not what is
    // tested, and none is reached. (With 200 ms, a machine slow enough to spend the deadline
    // on that attempt, as qemu-user under load does, rightly made the close answer TIMEOUT.)
    let close_ms = WAIT.as_millis() as u32;
    assert_eq!(a.close(close_ms), 0, "{}", last_error());
    assert_eq!(b.close(close_ms), 0, "{}", last_error());
    let ta = totals(&sink.reports.lock());
    assert_eq!(ta["persisted"].0, 4, "{ta:?}");
    let tb = totals(&b_sink.reports.lock());
    assert_eq!(tb["dropped_shutdown"].0, 1);
    assert_eq!(tb["dropped_shutdown"].1["Dropped.Event"], 1);
}

#[test]
fn a_callback_may_call_the_library_but_not_close_its_own_client() {
    let _s = serial(); // its callback calls tel_log on the default session: none may be live
    let c = Collector::start().unwrap();
    let c2 = Collector::start().unwrap();
    let sink = Box::leak(Box::<Sink>::default());
    let other = TestClient::new(&config(&c2, None, json!({})));
    let client = TestClient::new(&config(&c, None, json!({})));
    *sink.own.lock() = Some(client.0 as usize);
    *sink.other.lock() = Some(other.0 as usize);
    install(&client, sink);
    assert_eq!(client.log("First.Event", None), 0);
    assert_eq!(client.flush(5000), 0);
    assert!(
        c.wait_for_accepted(2, WAIT),
        "the event the callback logged went out too"
    );
    *sink.own.lock() = None;
    assert_eq!(client.flush(5000), 0);
    let codes = sink.codes.lock().clone();
    let code = |k: &str| codes.iter().find(|(n, _)| *n == k).unwrap().1;
    assert_eq!(code("own_close"), 1, "TEL_ERR_INVALID_ARGUMENT");
    assert_eq!(code("own_flush"), 7, "cannot wait for its own thread");
    assert_eq!(code("own_stats"), 1);
    assert_eq!(code("own_log"), 0);
    assert_eq!(code("other_log"), 0);
    assert_eq!(code("other_flush"), 0, "another client's flush may wait");
    assert_eq!(code("global_log"), 4, "no default session: as any caller");
    assert_eq!(
        client.close(5000),
        0,
        "the client was not closed by its callback"
    );
    assert_eq!(other.close(5000), 0);
    assert_eq!(names(&c2.accepted()), ["From.Callback"]);
}

#[test]
fn no_callback_after_close_returns() {
    let c = Collector::start().unwrap();
    let sink = Sink::default();
    sink.delay_ms.store(30, Ordering::SeqCst);
    let client = TestClient::new(&config(&c, None, json!({"batch_max_events": 1})));
    install(&client, &sink);
    for _ in 0..10 {
        assert_eq!(client.log("Slow.Report", None), 0);
    }
    assert_eq!(client.close(5000), 0);
    sink.closed.store(true, Ordering::SeqCst);
    let seen = sink.reports.lock().len();
    let sent: u64 = sink
        .reports
        .lock()
        .iter()
        .map(|r| r["events"].as_u64().unwrap())
        .sum();
    assert_eq!(sent, 10, "every report went out before close returned");
    // Give a late call every chance to show up.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(sink.reports.lock().len(), seen);
    assert_eq!(sink.late.load(Ordering::SeqCst), 0);
}

#[test]
fn the_default_sessions_callback_serves_later_sessions() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let sink = Box::leak(Box::<Sink>::default());
    let rc = tel::ffi::tel_set_delivery_callback(Some(collect), sink as *const Sink as *mut c_void);
    assert_eq!(rc, 0);
    for round in 0..2 {
        init_ok(&config(&c, None, json!({})));
        log_ok("Default.Report", None);
        assert_eq!(shutdown(5000), 0);
        let t = totals(&sink.reports.lock());
        assert_eq!(t["sent"].0, round + 1);
    }
    assert_eq!(
        tel::ffi::tel_set_delivery_callback(None, std::ptr::null_mut()),
        0
    );
    init_ok(&config(&c, None, json!({})));
    log_ok("Default.Unreported", None);
    assert_eq!(shutdown(5000), 0);
    assert_eq!(totals(&sink.reports.lock())["sent"].0, 2, "removed");
}

#[test]
fn a_reason_never_carries_the_full_key() {
    let c = Collector::start().unwrap();
    let sink = Sink::default();
    let client = TestClient::new(&config(&c, None, json!({})));
    install(&client, &sink);
    c.push(
        Scripted::status(401)
            .with_header("Collector-Error", format!("Invalid key {IKEY}"))
            .with_body(format!("{{\"efi\":{{\"{IKEY}\":\"all\"}}}}")),
    );
    assert_eq!(client.log("Key.Event", None), 0);
    assert_eq!(client.flush(5000), 0);
    assert_eq!(client.close(5000), 0);
    let reports = sink.reports.lock();
    let r = reports
        .iter()
        .find(|r| r["outcome"] == "rejected")
        .expect("rejected");
    assert_eq!(r["status"], 401);
    let text = r.to_string();
    assert!(!text.contains(IKEY), "{text}");
    assert!(!text.contains("0123-4567-89ab"), "{text}");
}

/// The kill-window tests take turns: the worker's sleep gate (below) is the whole process's.
static KILL_WINDOW: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Logs one event whose answer opens a kill window of 600 s for the tenant.
fn open_a_kill_window(c: &Collector, client: &TestClient) {
    c.push(
        Scripted::accept()
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "600"),
    );
    assert_eq!(client.log("Before.Kill", None), 0);
    assert_eq!(client.flush(5000), 0);
    assert!(client.stats()["killed_until_ms"].as_u64().unwrap() > 0);
}

/// Whether `sink` was told that the event `Inside.Kill` was dropped, within `WAIT`.
fn inside_kill_reported(sink: &Sink) -> bool {
    eventually(WAIT, || {
        totals(&sink.reports.lock())
            .get("dropped_killed")
            .is_some_and(|x| x.1.get("Inside.Kill") == Some(&1))
    })
}

#[test]
fn drops_inside_a_kill_window_are_reported_while_it_lasts() {
    let _k = KILL_WINDOW.lock();
    let c = Collector::start().unwrap();
    let sink = Sink::default();
    let client = TestClient::new(&config(&c, None, json!({})));
    install(&client, &sink);
    open_a_kill_window(&c, &client);
    assert_eq!(client.log("Inside.Kill", None), 0);
    assert!(
        inside_kill_reported(&sink),
        "no report inside the window: {:?}",
        totals(&sink.reports.lock())
    );
    let s = client.stats();
    assert_eq!(client.close(1000), 0);
    assert_reports_match(&s, &sink.reports.lock());
}

/// The same drop, reported by `tel_log` while the worker is on its way to sleep for the window:
/// past its hand-over of the reports, not yet asleep (held there by the debug builds'
/// `TEL_TEST_KILL_SLEEP_GATE`, as a loaded machine holds it up now and then). The wake-up for
/// that report must not be lost: the worker must not sleep through the window with it.
#[test]
fn a_drop_reported_while_the_worker_goes_to_sleep_for_a_kill_window_wakes_it() {
    let _k = KILL_WINDOW.lock();
    let dir = temp_dir("kill-sleep-gate");
    let gate = dir.join("gate");
    let entered = dir.join("gate.entered");
    std::fs::write(&gate, b"").unwrap();
    std::env::set_var("TEL_TEST_KILL_SLEEP_GATE", &gate);
    let c = Collector::start().unwrap();
    let sink = Sink::default();
    let client = TestClient::new(&config(&c, None, json!({})));
    install(&client, &sink);
    open_a_kill_window(&c, &client);
    assert!(
        eventually(WAIT, || entered.exists()),
        "the worker never reached its sleep for the window"
    );
    assert_eq!(client.log("Inside.Kill", None), 0);
    std::fs::remove_file(&gate).unwrap();
    std::env::remove_var("TEL_TEST_KILL_SLEEP_GATE");
    assert!(
        inside_kill_reported(&sink),
        "the worker slept through the window with the report: {:?}",
        totals(&sink.reports.lock())
    );
    let s = client.stats();
    assert_eq!(client.close(1000), 0);
    assert_reports_match(&s, &sink.reports.lock());
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Callbacks never hold up a deadline (a callback that blocks, two clients closing each other).

/// A delivery callback that waits at a gate the test opens, and then calls its own client.
#[derive(Default)]
struct Gated {
    calls: AtomicUsize,
    /// Calls that began after the test saw the close (or shutdown) return.
    late: AtomicUsize,
    closed: AtomicBool,
    open: parking_lot::Mutex<bool>,
    opened: parking_lot::Condvar,
    returned: AtomicUsize,
    /// The threads the callback ran on (Linux thread ids).
    threads: parking_lot::Mutex<Vec<i64>>,
    /// Its own client, called once the gate opens (it is closed by then).
    own: AtomicUsize,
    codes: parking_lot::Mutex<Vec<(&'static str, i64)>>,
}

impl Gated {
    fn open_gate(&self) {
        *self.open.lock() = true;
        self.opened.notify_all();
    }

    /// Waits until the callback has run on a thread.
    fn wait_for_a_call(&self) {
        assert!(
            eventually(WAIT, || self.calls.load(Ordering::SeqCst) > 0),
            "the callback was never called"
        );
    }

    /// Once the gate is open: waits until every thread the callback ran on has ended, so that
    /// a call after close would have shown by then.
    fn wait_for_its_threads_to_end(&self) {
        let threads = self.threads.lock().clone();
        assert!(
            eventually(WAIT, || threads
                .iter()
                .all(
                    |t| !std::path::Path::new(&format!("/proc/self/task/{t}")).exists()
                )),
            "the threads that ran the callback never ended: {threads:?}"
        );
    }
}

fn thread_id() -> i64 {
    unsafe { libc::syscall(libc::SYS_gettid) }
}

extern "C" fn gated(_report: *const c_char, user_data: *mut c_void) {
    let g = unsafe { &*(user_data as *const Gated) };
    g.calls.fetch_add(1, Ordering::SeqCst);
    if g.closed.load(Ordering::SeqCst) {
        g.late.fetch_add(1, Ordering::SeqCst);
    }
    let me = thread_id();
    {
        let mut threads = g.threads.lock();
        if !threads.contains(&me) {
            threads.push(me);
        }
    }
    let mut open = g.open.lock();
    while !*open {
        g.opened.wait(&mut open);
    }
    drop(open);
    let own = g.own.load(Ordering::SeqCst) as *mut tel::ffi::tel_client;
    if !own.is_null() {
        // Its client was closed meanwhile: the library's memory must still be there.
        let name = std::ffi::CString::new("After.Close").unwrap();
        let rc = unsafe { tel::ffi::tel_client_log(own, name.as_ptr(), std::ptr::null()) };
        let n = unsafe { tel::ffi::tel_client_stats_json(own, std::ptr::null_mut(), 0) };
        let mut codes = g.codes.lock();
        codes.push(("log", rc as i64));
        codes.push(("stats_len", n as i64));
    }
    g.returned.fetch_add(1, Ordering::SeqCst);
}

/// `tel_client_close(300)` while the client's delivery callback blocks and never returns on
/// its own: the close returns (the events were resolved before the deadline, so `TEL_OK`); the
/// callback, once let go, finds its client's memory still there (calls it: `NOT_INITIALIZED`)
/// and is never called again, although a report was still waiting behind the blocked one.
#[test]
fn close_returns_while_a_delivery_callback_blocks() {
    let c = Collector::start().unwrap();
    let g: &'static Gated = Box::leak(Box::default());
    let mut client = TestClient::new(&config(&c, None, json!({})));
    g.own.store(client.0 as usize, Ordering::SeqCst);
    let rc = unsafe {
        tel::ffi::tel_client_set_delivery_callback(
            client.0,
            Some(gated),
            g as *const Gated as *mut c_void,
        )
    };
    assert_eq!(rc, 0);
    // One answer, two reports: the sent event and the refused one.
    c.push(Scripted::status(200).with_body(r#"{"acc":1,"rej":1,"efi":{"InvalidData":[1]}}"#));
    assert_eq!(client.log("Blocked.Good", None), 0);
    assert_eq!(client.log("Blocked.Bad", None), 0);
    assert_eq!(client.flush(10_000), 0, "{}", last_error());
    g.wait_for_a_call();
    let stats = client.stats();
    assert_conserved_in(&stats);
    assert_eq!(stats["pending"], 0, "{stats}");
    // Closed below from another thread, not by the wrapper.
    let ptr = std::mem::replace(&mut client.0, std::ptr::null_mut()) as usize;
    let rc = within(
        "tel_client_close",
        Duration::from_secs(30),
        move || unsafe { tel::ffi::tel_client_close(ptr as *mut tel::ffi::tel_client, 300) },
    );
    g.closed.store(true, Ordering::SeqCst);
    assert_eq!(rc, 0, "only the callback is late");
    g.open_gate();
    assert!(eventually(WAIT, || g.returned.load(Ordering::SeqCst)
        >= g.calls.load(Ordering::SeqCst)));
    g.wait_for_its_threads_to_end();
    assert_eq!(
        g.late.load(Ordering::SeqCst),
        0,
        "called after close returned"
    );
    let codes = g.codes.lock().clone();
    assert!(codes.contains(&("log", 4)), "{codes:?}");
    assert!(
        codes.iter().any(|(k, n)| *k == "stats_len" && *n > 0),
        "{codes:?}"
    );
}

/// The same for the default session: `tel_shutdown(300)` returns while its delivery callback
/// blocks, and that callback is not called again once it is let go.
#[test]
fn shutdown_returns_while_the_default_sessions_callback_blocks() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let g: &'static Gated = Box::leak(Box::default());
    let rc = tel::ffi::tel_set_delivery_callback(Some(gated), g as *const Gated as *mut c_void);
    assert_eq!(rc, 0);
    c.push(Scripted::status(200).with_body(r#"{"acc":1,"rej":1,"efi":{"InvalidData":[1]}}"#));
    init_ok(&config(&c, None, json!({})));
    log_ok("Blocked.Good", None);
    log_ok("Blocked.Bad", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    g.wait_for_a_call();
    let rc = within("tel_shutdown", Duration::from_secs(30), || shutdown(300));
    g.closed.store(true, Ordering::SeqCst);
    let removed = tel::ffi::tel_set_delivery_callback(None, std::ptr::null_mut());
    assert_eq!(rc, 0, "only the callback is late");
    assert_eq!(removed, 0);
    let s = stats();
    assert_conserved_in(&s);
    assert_eq!(s["pending"], 0, "{s}");
    g.open_gate();
    assert!(eventually(WAIT, || g.returned.load(Ordering::SeqCst)
        >= g.calls.load(Ordering::SeqCst)));
    g.wait_for_its_threads_to_end();
    assert_eq!(
        g.late.load(Ordering::SeqCst),
        0,
        "called after tel_shutdown returned"
    );
}

/// Two clients whose delivery callbacks close each other, both at once: A's closes B while
/// B's closes A. Each close waits for the other's callback only until its deadline, so both
/// return; neither callback is called after its client's close returned.
#[derive(Default)]
struct Closer {
    entered: AtomicBool,
    peer: AtomicUsize,
    /// The client this callback closes.
    other: AtomicUsize,
    rc: parking_lot::Mutex<Option<i32>>,
    calls: AtomicUsize,
    late: AtomicBool,
    /// Set by the other client's callback once its close of this client returned.
    closed: AtomicBool,
    returned: AtomicBool,
    thread: AtomicUsize,
}

extern "C" fn closer(_report: *const c_char, user_data: *mut c_void) {
    let me = unsafe { &*(user_data as *const Closer) };
    me.calls.fetch_add(1, Ordering::SeqCst);
    if me.closed.load(Ordering::SeqCst) {
        me.late.store(true, Ordering::SeqCst);
    }
    me.thread.store(thread_id() as usize, Ordering::SeqCst);
    if me.entered.swap(true, Ordering::SeqCst) {
        return; // once
    }
    let peer = unsafe { &*(me.peer.load(Ordering::SeqCst) as *const Closer) };
    // Both callbacks run before either closes: the crossing the deadlock needs.
    if !eventually(WAIT, || peer.entered.load(Ordering::SeqCst)) {
        return;
    }
    let other = me.other.load(Ordering::SeqCst) as *mut tel::ffi::tel_client;
    let rc = unsafe { tel::ffi::tel_client_close(other, 300) };
    peer.closed.store(true, Ordering::SeqCst);
    *me.rc.lock() = Some(rc);
    me.returned.store(true, Ordering::SeqCst);
}

#[test]
fn two_clients_whose_callbacks_close_each_other_do_not_deadlock() {
    let (ca, cb) = (Collector::start().unwrap(), Collector::start().unwrap());
    let a: &'static Closer = Box::leak(Box::default());
    let b: &'static Closer = Box::leak(Box::default());
    let mut ka = TestClient::new(&config(&ca, None, json!({})));
    let mut kb = TestClient::new(&config(&cb, None, json!({})));
    // Each client is closed by the other's callback: the wrappers must not close them.
    let (pa, pb) = (
        std::mem::replace(&mut ka.0, std::ptr::null_mut()),
        std::mem::replace(&mut kb.0, std::ptr::null_mut()),
    );
    a.peer.store(b as *const Closer as usize, Ordering::SeqCst);
    b.peer.store(a as *const Closer as usize, Ordering::SeqCst);
    a.other.store(pb as usize, Ordering::SeqCst);
    b.other.store(pa as usize, Ordering::SeqCst);
    for (p, s) in [(pa, a), (pb, b)] {
        let rc = unsafe {
            tel::ffi::tel_client_set_delivery_callback(
                p,
                Some(closer),
                s as *const Closer as *mut c_void,
            )
        };
        assert_eq!(rc, 0);
    }
    let name = std::ffi::CString::new("Cross.Close").unwrap();
    for p in [pa, pb] {
        assert_eq!(
            unsafe { tel::ffi::tel_client_log(p, name.as_ptr(), std::ptr::null()) },
            0
        );
    }
    let (ra, rb) = within(
        "the crossed closes",
        Duration::from_secs(30),
        move || loop {
            let (ra, rb) = (*a.rc.lock(), *b.rc.lock());
            if let (Some(ra), Some(rb)) = (ra, rb) {
                return (ra, rb);
            }
            std::thread::sleep(Duration::from_millis(5));
        },
    );
    assert!(ra == 0 || ra == 7, "A's close of B: {ra}");
    assert!(rb == 0 || rb == 7, "B's close of A: {rb}");
    for s in [a, b] {
        let t = s.thread.load(Ordering::SeqCst);
        assert!(eventually(WAIT, || !std::path::Path::new(&format!(
            "/proc/self/task/{t}"
        ))
        .exists()));
        assert!(
            !s.late.load(Ordering::SeqCst),
            "a callback ran after its client's close returned"
        );
    }
    assert_eq!(ca.accepted_count() + cb.accepted_count(), 2);
}
