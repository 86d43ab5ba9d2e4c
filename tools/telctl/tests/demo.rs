//! `telctl demo`, the README's first command, runs end to end and shows each step happen.

mod support;

use support::{telctl, TempDir};

#[test]
fn demo_shows_delivery_retry_replay_and_kill() {
    let dir = TempDir::new("demo");
    let run = telctl(dir.path(), &["demo"], &[]);
    run.assert_no_full_key();
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    for step in ["1. Delivery", "2. Retry", "3. Cache", "4. Kill"] {
        assert!(out.contains(step), "{step} missing:\n{out}");
    }
    let counters: Vec<&str> = out.lines().filter(|l| l.contains("counters:")).collect();
    assert_eq!(counters.len(), 5, "{out}");
    assert!(
        counters[1].contains("retries=1"),
        "a retry happened: {}",
        counters[1]
    );
    assert!(
        counters[2].contains("persisted=1"),
        "the cache was written: {}",
        counters[2]
    );
    assert!(
        out.contains("replayed 1 entry from the cache file"),
        "{out}"
    );
    assert!(counters[3].contains("replayed=1") && counters[3].contains("sent=1"));
    assert!(
        counters[4].contains("dropped_killed=3"),
        "a kill dropped events: {}",
        counters[4]
    );
    assert!(
        out.contains("received Demo.Cached"),
        "the cached event arrived later"
    );
    assert!(
        !out.contains("received Demo.DuringKill"),
        "nothing is sent inside the window"
    );
}
