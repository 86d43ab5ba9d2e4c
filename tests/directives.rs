//! The collector's directives through the C ABI: kill windows, status classes and retries,
//! Retry-After, partial rejections, 413 splits, clock skew, and a dead network's request rate.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn kill_for(tenant: &str, seconds: &str) -> Scripted {
    Scripted::accept()
        .with_header("kill-tokens", format!("o:{tenant}"))
        .with_header("kill-duration", seconds)
}

#[test]
fn a_kill_for_our_tenant_stops_requests_and_drops_instead_of_caching() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("kill");
    let cache = dir.join("events.cache");
    // A refused request that carries the kill: its batch must be dropped, not cached.
    c.push(
        Scripted::status(401)
            .with_header("kill-tokens", format!("o:{TENANT}:all"))
            .with_header("kill-duration", "600"),
    );
    init_ok(&config(&c, Some(&dir), json!({})));
    log_ok("Kill.First", None);
    assert_eq!(flush(5000), 0);
    let until = stat("killed_until_ms");
    let now = tel::internals::clock::now_ms();
    assert!(
        until > now + 590_000 && until <= now + 600_000,
        "window {until} vs now {now}"
    );
    for _ in 0..5 {
        log_ok("Kill.During", None); // TEL_OK, but dropped
    }
    assert_eq!(flush(1000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(c.request_count(), 1, "no request inside the window");
    assert_eq!(stat("dropped_killed"), 6);
    assert_eq!(stat("persisted"), 0);
    assert!(
        read_lines(&cache).is_empty(),
        "a killed batch is never cached"
    );
    assert!(
        dir.join("events.cache.kill").exists(),
        "the window is persisted"
    );
    assert_conserved();
}

#[test]
fn a_kill_purges_what_is_queued_and_cached() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("kill-purge");
    // Leave 3 entries in the cache from a "previous process".
    c.set_default(Some(Scripted::status(503)));
    init_ok(&config(&c, Some(&dir), json!({"retry_max_attempts": 1})));
    for _ in 0..3 {
        log_ok("Kill.Cached", None);
    }
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(read_lines(&dir.join("events.cache")).len(), 3);
    // Next session: the replay request is answered with a kill.
    c.reset();
    c.push(
        Scripted::status(503)
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "600"),
    );
    init_ok(&config(&c, Some(&dir), json!({})));
    log_ok("Kill.New", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(
        c.request_count(),
        1,
        "a replay that triggers a kill sends no second request"
    );
    assert_eq!(stat("replayed"), 3);
    assert_eq!(stat("dropped_killed"), 4);
    assert!(read_lines(&dir.join("events.cache")).is_empty());
    assert_conserved();
}

#[test]
fn a_kill_for_another_tenant_changes_nothing() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(kill_for("someoneelse", "600"));
    init_ok(&config(&c, None, json!({})));
    log_ok("Other.One", None);
    assert_eq!(flush(5000), 0);
    log_ok("Other.Two", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted_count(), 2);
    assert_eq!(stat("killed_until_ms"), 0);
    assert_eq!(stat("dropped_killed"), 0);
    assert_conserved();
}

#[test]
fn unusable_durations_and_malformed_tokens_are_ignored() {
    let _s = serial();
    let ours = format!("o:{TENANT}");
    let long = format!("o:{}", "a".repeat(300));
    let mut cases: Vec<(String, Option<&str>)> = ["", "0", "-5", "abc", "1.5", " "]
        .iter()
        .map(|d| (ours.clone(), Some(*d)))
        .collect();
    cases.push((ours.clone(), None));
    for bad in [
        TENANT.to_owned(),
        "o:".to_owned(),
        long,
        format!("x:{TENANT}"),
        ",,".to_owned(),
    ] {
        cases.push((bad, Some("600")));
    }
    for (tokens, duration) in cases {
        let c = Collector::start().unwrap();
        let mut s = Scripted::accept().with_header("kill-tokens", &tokens);
        if let Some(d) = duration {
            s = s.with_header("kill-duration", d);
        }
        c.push(s);
        init_ok(&config(&c, None, json!({})));
        log_ok("Ignored.One", None);
        assert_eq!(flush(5000), 0);
        log_ok("Ignored.Two", None);
        assert_eq!(flush(5000), 0);
        assert_eq!(shutdown(1000), 0);
        assert_eq!(c.accepted_count(), 2, "{tokens:?} {duration:?} killed");
        assert_eq!(stat("dropped_killed"), 0);
    }
}

#[test]
fn kill_duration_seconds_is_read_too_and_the_window_expires() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(
        Scripted::accept()
            .with_header("kill-tokens", format!(" o:other , o:{TENANT}:Some.Event "))
            .with_header("kill-duration-seconds", "1"),
    );
    init_ok(&config(&c, None, json!({})));
    log_ok("Expire.Before", None);
    assert_eq!(flush(5000), 0);
    let until = stat("killed_until_ms");
    assert!(until > 0);
    log_ok("Expire.During", None);
    assert_eq!(stat("dropped_killed"), 1);
    // Let the one-second window pass (time itself is what is tested here).
    let now = tel::internals::clock::now_ms();
    std::thread::sleep(Duration::from_millis(until.saturating_sub(now) + 50));
    assert_eq!(stat("killed_until_ms"), 0);
    log_ok("Expire.After", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(names(&c.accepted()), ["Expire.Before", "Expire.After"]);
    assert_conserved();
}

#[test]
fn a_second_process_started_inside_the_window_sends_nothing() {
    if let Some(role) = child_role() {
        if role == "inside-window" {
            let port: u16 = std::env::var("TEL_TEST_PORT").unwrap().parse().unwrap();
            let dir = std::path::PathBuf::from(std::env::var("TEL_TEST_DIR").unwrap());
            let endpoint = format!("http://127.0.0.1:{port}/OneCollector/1.0/");
            init_ok(
                &json!({"ikey": IKEY, "endpoint": endpoint, "flush_interval_ms": 10,
                "cache_path": dir.join("events.cache")}),
            );
            assert!(stat("killed_until_ms") > 0);
            for _ in 0..10 {
                log_ok("Second.Process", None);
            }
            assert_eq!(flush(2000), 0);
            assert_eq!(shutdown(2000), 0);
            assert_eq!(stat("dropped_killed"), 10);
            println!("CHILD-OK");
        }
        return;
    }
    let _s = serial();
    let c = Collector::start().unwrap();
    let dir = temp_dir("kill-process");
    c.push(kill_for(TENANT, "600"));
    init_ok(&config(&c, Some(&dir), json!({})));
    log_ok("First.Process", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    assert_eq!(c.request_count(), 1);
    let out = run_child(
        "a_second_process_started_inside_the_window_sends_nothing",
        &[
            ("TEL_TEST_ROLE", "inside-window".into()),
            ("TEL_TEST_PORT", c.port().to_string()),
            ("TEL_TEST_DIR", dir.to_string_lossy().into_owned()),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("CHILD-OK"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        c.request_count(),
        1,
        "the second process sent a request inside the window"
    );
}

#[test]
fn transient_failures_are_retried_and_delivered_exactly_once() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for s in [
        Scripted::status(503),
        Scripted::status(500),
        Scripted::status(408),
        Scripted::status(429),
        Scripted::fault(Fault::Reset),
    ] {
        c.push(s);
    }
    init_ok(&config(&c, None, json!({"retry_max_attempts": 10})));
    for i in 0..20 {
        log_ok("Retry.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    assert_eq!(flush(20_000), 0, "{}", last_error());
    let acc = c.accepted();
    let mut seen: Vec<u64> = acc
        .iter()
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<_>>(), "each event exactly once");
    assert_eq!(c.request_count(), 6);
    assert_eq!(stat("retries"), 5);
    assert_eq!(stat("http_failures"), 5);
    assert_eq!(stat("http_requests"), 6);
    assert_eq!(stat("sent"), 20);
    assert_conserved();
}

#[test]
fn retry_after_is_a_floor_on_the_next_attempt() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(Scripted::status(503).with_header("Retry-After", "2"));
    init_ok(&config(&c, None, json!({})));
    log_ok("RetryAfter.Event", None);
    assert_eq!(flush(20_000), 0);
    let r = c.requests();
    assert_eq!(r.len(), 2);
    let gap = r[1].received_at_ms - r[0].received_at_ms;
    assert!(gap >= 2000, "retried after {gap} ms despite Retry-After: 2");
    assert_conserved();
}

#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let _s = serial();
    let c = Collector::start().unwrap();
    // An HTTP-date in the past: retry at once (the floor is zero), not an error.
    c.push(Scripted::status(503).with_header("Retry-After", "Sun, 06 Nov 1994 08:49:37 GMT"));
    init_ok(&config(&c, None, json!({})));
    log_ok("RetryAfter.Date", None);
    assert_eq!(flush(20_000), 0);
    assert_eq!(c.accepted_count(), 1);
}

#[test]
fn permanent_refusals_are_rejected_once_and_not_cached() {
    let _s = serial();
    for status in [400, 401, 403, 404, 415] {
        let c = Collector::start().unwrap();
        let dir = temp_dir("reject");
        c.push(Scripted::status(status).with_header("Collector-Error", "nope"));
        init_ok(&config(&c, Some(&dir), json!({})));
        log_ok("Reject.One", None);
        log_ok("Reject.Two", None);
        assert_eq!(flush(5000), 0);
        assert_eq!(shutdown(1000), 0);
        assert_eq!(c.request_count(), 1, "{status} was retried");
        assert_eq!(stat("rejected"), 2, "{status}");
        assert_eq!(stat("persisted"), 0);
        assert!(
            read_lines(&dir.join("events.cache")).is_empty(),
            "{status} was cached"
        );
        assert_conserved();
    }
}

#[test]
fn a_partial_efi_counts_sent_and_rejected_by_index() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(
        Scripted::status(200)
            .with_body(r#"{"acc":3,"rej":2,"efi":{"InvalidDeviceLocalId":[1,3],"Other":[3,99]}}"#),
    );
    c.push(Scripted::status(200).with_body(r#"{"acc":0,"rej":2,"efi":{"Whatever":"all"}}"#));
    init_ok(&config(&c, None, json!({"flush_interval_ms": 60_000})));
    for _ in 0..5 {
        log_ok("Partial.Event", None);
    }
    assert_eq!(flush(5000), 0);
    assert_eq!((stat("sent"), stat("rejected")), (3, 2));
    log_ok("Partial.All", None);
    log_ok("Partial.All", None);
    assert_eq!(flush(5000), 0);
    assert_eq!((stat("sent"), stat("rejected")), (3, 4));
    assert_conserved();
}

#[test]
fn a_413_splits_the_batch_and_delivers_everything() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(Scripted::status(413));
    c.push(Scripted::status(413));
    init_ok(&config(&c, None, json!({"flush_interval_ms": 60_000})));
    for i in 0..8 {
        log_ok("Split.Event", Some(&format!("{{\"i\":{i}}}")));
    }
    assert_eq!(flush(10_000), 0);
    let mut sizes: Vec<usize> = c.requests().iter().map(|r| r.lines.len()).collect();
    // 8 refused, its first half refused, that half's first half accepted: each after a
    // failure, so alone. The last two halves then go together (several requests in flight),
    // in either order.
    assert_eq!(sizes[..3], [8, 4, 2], "{sizes:?}");
    sizes[3..].sort_unstable();
    assert_eq!(sizes[3..], [2, 4], "{sizes:?}");
    assert_eq!(c.accepted_count(), 8);
    assert_eq!(stat("sent"), 8);
    // A single event that still gets 413 is rejected.
    c.push(Scripted::status(413));
    log_ok("Split.Single", None);
    assert_eq!(flush(10_000), 0);
    assert_eq!(stat("rejected"), 1);
    assert_conserved();
}

#[test]
fn time_delta_millis_is_echoed() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.push(Scripted::accept().with_header("time-delta-millis", "-1234"));
    init_ok(&config(&c, None, json!({})));
    log_ok("Skew.One", None);
    assert_eq!(flush(5000), 0);
    log_ok("Skew.Two", None);
    assert_eq!(flush(5000), 0);
    let r = c.requests();
    assert_eq!(r[0].header("time-delta-to-apply-millis"), None);
    assert_eq!(r[1].header("time-delta-to-apply-millis"), Some("-1234"));
}

#[test]
fn a_dead_network_is_not_hammered() {
    let _s = serial();
    let c = Collector::start().unwrap();
    c.set_default(Some(Scripted::status(503)));
    // 100 ms initial, doubling to 400 ms: over 2 s at most 1 + 2000/100 requests even if every
    // jittered delay were the shortest; a busy loop would make hundreds.
    init_ok(&config(
        &c,
        None,
        json!({"retry_initial_ms": 100, "retry_max_ms": 400, "retry_max_attempts": 1000, "batch_max_events": 1}),
    ));
    for _ in 0..50 {
        log_ok("Down.Event", None);
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let n = c.request_count();
    let elapsed = start.elapsed().as_millis() as usize;
    assert!(n >= 2, "it did retry ({n})");
    assert!(n <= 1 + elapsed / 100 + 1, "{n} requests in {elapsed} ms");
    assert_eq!(flush(100), 7);
    assert_conserved();
}

/// `Retry-After` and `kill-duration` past 2^64 are capped (at an hour and at seven days), not
/// ignored.
#[test]
fn retry_after_and_kill_duration_past_u64_are_capped() {
    let _s = serial();
    let huge = "18446744073709551616"; // 2^64
    let c = Collector::start().unwrap();
    c.push(Scripted::status(503).with_header("Retry-After", huge));
    let capture = Capture::start();
    init_ok(&fast_config(&c.endpoint(), None, json!({})));
    log_ok("Retry.After", None);
    assert!(
        eventually(Duration::from_secs(20), || capture.has("backing off")),
        "the worker backed off"
    );
    let _ = shutdown(0);
    let lines = capture.stop();
    let wait_ms: u64 = lines
        .iter()
        .find_map(|l| {
            let rest = l.split(" tried again in ").nth(1)?;
            rest.split(" ms").next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no backoff line in {lines:?}"));
    assert!(
        wait_ms >= 3_600_000,
        "Retry-After 2^64 must be capped at one hour, the wait was {wait_ms} ms"
    );

    let k = Collector::start().unwrap();
    k.push(kill_for(TENANT, huge));
    init_ok(&fast_config(&k.endpoint(), None, json!({})));
    log_ok("Kill.Duration", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    let until = stat("killed_until_ms");
    assert_eq!(shutdown(1000), 0);
    assert!(until > 0, "kill-duration 2^64 must open the longest window");
}
