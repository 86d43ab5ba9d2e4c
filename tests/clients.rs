//! ABI 1.1 clients through the C ABI: side by side with the default session and with each
//! other (each its own key, counters and sequence), the boundary (NULL), opt-out, closing
//! right away, and eight threads logging to two clients. (Two clients sharing one cache:
//! cache.rs and cache_processes.rs.)

mod common;

use common::*;
use serde_json::json;
use std::ffi::CString;

const SECOND_IKEY: &str = "feedfacefeedfacefeedfacefeedface-0123-4567-89ab-cdef01234567-0002";

#[test]
fn clients_live_side_by_side_with_the_default_session() {
    let _s = serial();
    let (c1, c2, c3) = (
        Collector::start().unwrap(),
        Collector::start().unwrap(),
        Collector::start().unwrap(),
    );
    init_ok(&config(&c1, None, json!({})));
    let a = TestClient::new(&config(&c2, None, json!({"ext": {"app": {"ver": "2.0"}}})));
    let b = TestClient::new(&config(&c3, None, json!({"ikey": SECOND_IKEY})));
    log_ok("Default.Event", None);
    assert_eq!(a.log("Client.A", Some(r#"{"k":1}"#)), 0);
    assert_eq!(a.log("Client.A", None), 0);
    assert_eq!(b.log("Client.B", None), 0);
    assert_eq!(flush(5000), 0);
    assert_eq!(a.flush(5000), 0, "{}", last_error());
    assert_eq!(b.flush(5000), 0);
    assert_eq!(names(&c1.accepted()), ["Default.Event"]);
    assert_eq!(names(&c2.accepted()), ["Client.A", "Client.A"]);
    assert_eq!(names(&c3.accepted()), ["Client.B"]);
    assert_eq!(c2.accepted()[0]["ext"]["app"]["ver"], "2.0");
    assert_eq!(
        c3.accepted()[0]["iKey"],
        "o:feedfacefeedfacefeedfacefeedface"
    );
    assert_eq!(
        c3.requests()[0].header("x-apikey"),
        Some(SECOND_IKEY),
        "each client sends under its own key"
    );
    // Each has its own counters and sequence.
    assert_eq!(a.stats()["sent"], 2);
    assert_eq!(b.stats()["sent"], 1);
    assert_eq!(stat("sent"), 1);
    assert_eq!(c2.accepted()[1]["ext"]["sdk"]["seq"], 2);
    assert_eq!(c3.accepted()[0]["ext"]["sdk"]["seq"], 1);
    assert_conserved_in(&a.stats());
    assert_eq!(a.close(5000), 0);
    assert_eq!(b.close(5000), 0);
    // Closing clients leaves the default session alone.
    log_ok("Default.After", None);
    assert_eq!(shutdown(5000), 0);
    assert_eq!(names(&c1.accepted()), ["Default.Event", "Default.After"]);
    assert_conserved();
}

#[test]
fn null_and_bad_arguments() {
    let c = Collector::start().unwrap();
    let cfg = CString::new(config(&c, None, json!({})).to_string()).unwrap();
    let mut out: *mut tel::ffi::tel_client = std::ptr::null_mut();
    let name = CString::new("Some.Event").unwrap();
    unsafe {
        assert_eq!(tel::ffi::tel_client_new(std::ptr::null(), &mut out), 1);
        assert_eq!(
            tel::ffi::tel_client_new(cfg.as_ptr(), std::ptr::null_mut()),
            1
        );
        assert!(out.is_null());
        let bad = CString::new(r#"{"ikey":"nodash"}"#).unwrap();
        assert_eq!(tel::ffi::tel_client_new(bad.as_ptr(), &mut out), 2);
        assert!(last_error().contains("ikey"));
        assert!(out.is_null(), "*out is untouched on failure");
        let null = std::ptr::null_mut();
        assert_eq!(
            tel::ffi::tel_client_log(null, name.as_ptr(), std::ptr::null()),
            1
        );
        assert!(last_error().contains("client"));
        assert_eq!(
            tel::ffi::tel_client_log_ex(null, name.as_ptr(), std::ptr::null(), std::ptr::null()),
            1
        );
        assert_eq!(tel::ffi::tel_client_flush(null, 10), 1);
        assert_eq!(tel::ffi::tel_client_close(null, 10), 1);
        assert_eq!(
            tel::ffi::tel_client_set_delivery_callback(null, None, null.cast()),
            1
        );
        let mut buf = [7u8; 16];
        assert_eq!(
            tel::ffi::tel_client_stats_json(null, buf.as_mut_ptr().cast(), buf.len()),
            0
        );
        assert_eq!(buf, [7u8; 16], "nothing written for a NULL client");
    }
    let client = TestClient::new(&config(&c, None, json!({})));
    unsafe {
        assert_eq!(
            tel::ffi::tel_client_log(client.0, std::ptr::null(), std::ptr::null()),
            1
        );
    }
    assert_eq!(client.log("abc", None), 3);
    assert_eq!(client.log("Event.Ok", Some("[1]")), 3);
    assert_eq!(client.stats()["logged"], 0);
    assert_eq!(client.close(1000), 0);
}

#[test]
fn an_opted_out_client_is_a_no_op_to_close() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("client-optout");
    let cache = dir.join("events.cache");
    std::fs::write(&cache, cached_line("Old.Event", "e", 1, "") + "\n").unwrap();
    let client = TestClient::new(&config(&c, Some(&dir), json!({"enabled": false})));
    assert!(!cache.exists(), "opt-out deletes the cache file");
    assert_eq!(client.log("Some.Event", None), 0);
    assert_eq!(
        client.log_ex("Some.Event", None, Some(r#"{"priority":"critical"}"#)),
        0
    );
    assert_eq!(client.flush(100), 0);
    let s = client.stats();
    assert_eq!(s["enabled"], false);
    assert_eq!(s["logged"], 0);
    assert_eq!(client.close(100), 0);
    assert_eq!(c.request_count(), 0);
    assert!(!cache.exists());
}

#[test]
fn closing_right_away_delivers_what_was_logged() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, None, json!({"flush_interval_ms": 60_000})));
    for _ in 0..10 {
        assert_eq!(client.log("Close.Event", None), 0);
    }
    assert_eq!(client.close(5000), 0);
    assert_eq!(c.accepted().len(), 10);
}

#[test]
fn threads_logging_to_two_clients_lose_and_duplicate_nothing() {
    let (c1, c2) = (Collector::start().unwrap(), Collector::start().unwrap());
    let a = std::sync::Arc::new(TestClient::new(&config(
        &c1,
        None,
        json!({"queue_max_events": 100_000}),
    )));
    let b = std::sync::Arc::new(TestClient::new(&config(
        &c2,
        None,
        json!({"queue_max_events": 100_000}),
    )));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let props = format!("{{\"t\":{t},\"i\":{i}}}");
                    let target = if (t + i) % 2 == 0 { &a } else { &b };
                    assert_eq!(target.log("Threaded.Event", Some(&props)), 0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(a.flush(20_000), 0);
    assert_eq!(b.flush(20_000), 0);
    for (client, c) in [(&a, &c1), (&b, &c2)] {
        let s = client.stats();
        assert_conserved_in(&s);
        assert_eq!(s["sent"], 4000);
        let mut seen = std::collections::HashSet::new();
        for e in c.accepted() {
            assert!(
                seen.insert((e["data"]["t"].as_u64(), e["data"]["i"].as_u64())),
                "twice: {e}"
            );
        }
        assert_eq!(seen.len(), 4000);
    }
}
