//! Several requests in flight (`max_inflight_requests`), through the C ABI against the
//! emulator: their answers are held back until released, so the tests see them overlap and
//! choose in which state each answer finds the others.

mod common;

use common::*;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Events per batch in these tests: `BATCH` events make one request.
const BATCH: usize = 10;

fn inflight_config(
    c: &Collector,
    dir: Option<&std::path::Path>,
    extra: serde_json::Value,
) -> serde_json::Value {
    config(
        c,
        dir,
        merged(
            json!({"batch_max_events": BATCH, "max_inflight_requests": 4, "flush_interval_ms": 60_000}),
            extra,
        ),
    )
}

/// The first request goes alone: one batch, answered, opens the way for several.
fn warm_up(c: &Collector) {
    for i in 0..BATCH {
        log_ok("Warm", Some(&format!("{{\"i\":{i}}}")));
    }
    assert_eq!(flush(5000), 0, "{}", last_error());
    assert_eq!(c.request_count(), 1);
}

/// Logs `batches` full batches named `Burst.<b>` (properties `{"i":n}`).
fn log_batches(batches: usize) {
    for b in 0..batches {
        for i in 0..BATCH {
            log_ok(&format!("Burst.{b}"), Some(&format!("{{\"i\":{i}}}")));
        }
    }
}

/// How often each (name, i) reached the collector.
fn delivered(c: &Collector) -> HashMap<(String, u64), usize> {
    let mut seen = HashMap::new();
    for e in c.accepted() {
        let name = e["name"].as_str().unwrap_or_default().to_owned();
        let i = e["data"]["i"].as_u64().unwrap_or(u64::MAX);
        *seen.entry((name, i)).or_insert(0) += 1;
    }
    seen
}

#[test]
fn several_requests_are_on_the_wire_before_any_is_answered() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&inflight_config(&c, None, json!({})));
    warm_up(&c);
    c.push(Scripted::accept().held().times(4));
    log_batches(4);
    // Four requests arrive while none of them has been answered.
    assert!(
        c.wait_for_requests(5, WAIT),
        "only {} requests arrived while the first held one waited",
        c.request_count()
    );
    c.release();
    assert_eq!(flush(10_000), 0, "{}", last_error());
    let seen = delivered(&c);
    assert_eq!(seen.len(), 5 * BATCH);
    assert!(
        seen.values().all(|n| *n == 1),
        "delivered once each: {seen:?}"
    );
    assert_eq!(c.request_count(), 5);
    assert_eq!(stat("sent"), (5 * BATCH) as u64);
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    // Each in its own connection: the first, kept, and three more at most.
    assert!(
        c.connection_count() <= 4,
        "{} connections",
        c.connection_count()
    );
}

#[test]
fn one_request_at_a_time_when_configured_so() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&inflight_config(
        &c,
        None,
        json!({"max_inflight_requests": 1}),
    ));
    warm_up(&c);
    c.push(Scripted::accept().held());
    log_batches(2);
    assert!(c.wait_for_requests(2, WAIT));
    // The second batch is ready; with one request allowed it waits for the answer.
    assert_eq!(
        flush(200),
        7,
        "the flush cannot finish while the answer is held"
    );
    assert_eq!(
        c.request_count(),
        2,
        "a second request went while one was held"
    );
    c.release();
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(c.request_count(), 3);
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
}

#[test]
fn a_kill_in_one_answer_stops_the_others_and_drops_what_it_covers() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("inflight-kill");
    init_ok(&inflight_config(&c, Some(&dir), json!({})));
    warm_up(&c);
    c.push(Scripted::accept().held());
    c.push(
        Scripted::status(401)
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "600")
            .held(),
    );
    c.push(Scripted::accept().held().times(2));
    log_batches(4);
    assert!(
        c.wait_for_requests(5, WAIT),
        "{} requests",
        c.request_count()
    );
    c.release();
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert!(stat("killed_until_ms") > 0, "the kill is in force");
    // The killed batch is dropped; the others are either delivered or dropped by the kill.
    let sent = stat("sent");
    let killed = stat("dropped_killed");
    assert!(killed >= BATCH as u64, "dropped_killed {killed}");
    assert_eq!(sent + killed, (5 * BATCH) as u64);
    for _ in 0..3 {
        log_ok("After.Kill", None);
    }
    assert_eq!(flush(2000), 0);
    assert_eq!(c.request_count(), 5, "no request inside the window");
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("dropped_killed"), killed + 3);
    assert_eq!(stat("persisted"), 0, "nothing killed is cached");
    assert!(read_lines(&dir.join("events.cache")).is_empty());
    assert_conserved();
}

#[test]
fn a_503_with_retry_after_in_one_answer_backs_off_and_delivers_everything_once() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&inflight_config(&c, None, json!({})));
    warm_up(&c);
    c.push(Scripted::accept().held());
    c.push(Scripted::status(503).with_header("Retry-After", "1").held());
    c.push(Scripted::accept().held().times(2));
    log_batches(4);
    assert!(
        c.wait_for_requests(5, WAIT),
        "{} requests",
        c.request_count()
    );
    let released_ms = tel::internals::clock::now_ms();
    c.release();
    assert_eq!(flush(10_000), 0, "{}", last_error());
    let seen = delivered(&c);
    assert_eq!(seen.len(), 5 * BATCH);
    assert!(
        seen.values().all(|n| *n == 1),
        "delivered once each: {seen:?}"
    );
    assert_eq!(stat("retries"), 1);
    let requests = c.requests();
    assert_eq!(requests.len(), 6, "the refused batch is sent once more");
    // The retry waited for the collector's Retry-After, which came after the release.
    assert!(
        requests[5].received_at_ms >= released_ms + 1000,
        "retried {} ms after the release",
        requests[5].received_at_ms as i64 - released_ms as i64
    );
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
}

#[test]
fn a_shutdown_with_every_request_hanging_keeps_its_deadline_and_persists_each_batch_once() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("inflight-hang");
    init_ok(&inflight_config(
        &c,
        Some(&dir),
        json!({"http_timeout_ms": 60_000}),
    ));
    warm_up(&c);
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    log_batches(4);
    assert!(
        c.wait_for_requests(5, WAIT),
        "{} requests",
        c.request_count()
    );
    let started = Instant::now();
    let rc = shutdown(300);
    let took = started.elapsed();
    assert_eq!(rc, 7, "{}", last_error());
    assert!(
        took < Duration::from_millis(300 + 200 + 1500),
        "tel_shutdown(300) took {took:?} with four requests hanging"
    );
    assert_eq!(stat("persisted"), (4 * BATCH) as u64);
    assert_eq!(stat("pending"), 0);
    assert_conserved();
    let lines = read_lines(&dir.join("events.cache"));
    assert_eq!(lines.len(), 4 * BATCH, "each batch written once");
    let mut unique = lines.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), lines.len(), "no line twice");
    c.release();
}
