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

// ---------------------------------------------------------------------------------------------
// A burst spilled to the cache instead of refused.

/// Queue bound of the spill tests: the worker spills past 75 events held in memory (queued, in
/// flight, awaiting retry), down to 50.
const QUEUE: usize = 100;

fn spill_config(endpoint: &str, cache: &std::path::Path) -> serde_json::Value {
    json!({
        "ikey": IKEY,
        "endpoint": endpoint,
        "cache_path": cache,
        "batch_max_events": BATCH,
        "queue_max_events": QUEUE,
        "max_inflight_requests": 1,
        "flush_interval_ms": 60_000,
        "retry_initial_ms": 50,
        "retry_max_ms": 200,
        "http_timeout_ms": 60_000,
    })
}

/// Logs `n` events named `Spill` with `i` from `from`.
fn log_spill(from: usize, n: usize) {
    for i in from..from + n {
        log_ok("Spill", Some(&format!("{{\"i\":{i}}}")));
    }
}

/// With one request on the wire and unanswered: logs 101 events into a queue of 100, waiting
/// for the spill after the first 76. Without the spill the last one would be refused.
fn burst_with_one_request_unanswered(request_sent: impl Fn() -> bool) {
    log_spill(0, BATCH);
    assert!(eventually(WAIT, &request_sent), "the first request went");
    // 10 on the wire and 66 queued: 76 held, past the mark with the last call.
    log_spill(BATCH, 66);
    assert!(
        eventually(WAIT, || stat("persisted") == 26),
        "spilled down to half: {}",
        stats()
    );
    log_spill(BATCH + 66, 25); // 75 held: room for all of them, and no spill
    assert_eq!(stat("dropped_queue_full"), 0);
    assert_eq!(stat("persisted"), 26);
}

#[test]
fn a_spilled_burst_is_replayed_by_its_own_session_once() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("spill-own");
    let cache = dir.join("events.cache");
    c.push(Scripted::accept().held());
    init_ok(&spill_config(&c.endpoint(), &cache));
    burst_with_one_request_unanswered(|| c.request_count() == 1);
    c.release();
    assert_eq!(flush(20_000), 0, "{}", last_error());
    let seen = delivered(&c);
    assert_eq!(seen.len(), 101, "{}", stats());
    assert!(
        seen.values().all(|n| *n == 1),
        "delivered once each: {seen:?}"
    );
    assert_eq!(stat("replayed"), 26);
    assert_eq!(stat("sent"), 101);
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    assert!(read_lines(&cache).is_empty(), "nothing left in the cache");
}

/// The child: a burst while the collector hangs, then a shutdown; prints its stats.
#[test]
fn child_spilling_burst() {
    if child_role().as_deref() != Some("spill") {
        return;
    }
    init_ok(&child_config());
    burst_with_one_request_unanswered(|| stat("http_requests") == 1);
    let rc = shutdown(300);
    println!("SHUTDOWN={rc}");
    println!("STATS={}", stats());
}

#[test]
fn a_burst_spilled_by_one_process_is_delivered_once_by_the_next() {
    let _s = serial();
    let hang = Collector::start().unwrap();
    hang.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let dir = temp_dir("spill-processes");
    let cache = dir.join("events.cache");
    let config = spill_config(&hang.endpoint(), &cache);
    let out = run_role_ok(
        "child_spilling_burst",
        "spill",
        &[("TEL_TEST_CONFIG", config.to_string())],
        WAIT,
    );
    let s = printed_stats(&out);
    assert_eq!(s["dropped_queue_full"], 0, "{s}");
    assert_eq!(
        s["persisted"], 101,
        "spilled, and the rest at shutdown: {s}"
    );
    assert_conserved_in(&s);
    hang.release();
    let lines = read_lines(&cache);
    assert_eq!(lines.len(), 101, "each event written once");
    // The next process delivers them.
    let c = Collector::start().unwrap();
    init_ok(&spill_config(&c.endpoint(), &cache));
    assert_eq!(flush(20_000), 0, "{}", last_error());
    let seen = delivered(&c);
    assert_eq!(seen.len(), 101);
    assert!(
        seen.values().all(|n| *n == 1),
        "delivered once each: {seen:?}"
    );
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("replayed"), 101);
    assert_conserved();
    assert!(read_lines(&cache).is_empty());
}
