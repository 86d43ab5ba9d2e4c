//! The cache within one process: a `cache_path` naming a file that is not a cache is left
//! alone; another tenant's entries survive this tenant's sessions; replay takes this tenant's
//! lines by a real parse and sets unsendable ones aside; orphaned temporary files go; eviction
//! by priority (with 0.1 cache lines read as normal); a line both in the cache and in a dead
//! claim is delivered once, and so is each entry two clients share; an unusable location still
//! lets events be sent, and a symlinked cache file is not followed. What spans processes is in
//! cache_processes.rs.

mod common;

use common::*;
use serde_json::{json, Value};
use std::process::Command;

// ---------------------------------------------------------------------------------------------
// What is not ours is left alone.

/// A `cache_path` naming a file that is not a cache: the file is left exactly as it was,
/// whether the session delivers everything or has to persist at shutdown.
#[test]
fn a_cache_path_naming_another_file_leaves_it_untouched() {
    let _s = serial();
    let dir = temp_dir("not-a-cache");
    let notes = dir.join("notes.txt");
    let text = "my notes, not a cache\nsecond line\n";
    let c = Collector::start().unwrap();
    for endpoint in [c.endpoint(), dead_endpoint()] {
        std::fs::write(&notes, text).unwrap();
        init_ok(&fast_config(&endpoint, Some(&notes), json!({})));
        for _ in 0..3 {
            log_ok("Not.A.Cache", None);
        }
        if endpoint == c.endpoint() {
            assert_eq!(flush(10_000), 0, "{}", last_error());
        }
        let _ = shutdown(1000);
        assert_conserved();
        assert_eq!(std::fs::read_to_string(&notes).unwrap(), text, "{endpoint}");
    }
    assert_eq!(c.accepted_count(), 3);
    // Nor does an opt-out session, which deletes the cache file.
    init_ok(&fast_config(
        &c.endpoint(),
        Some(&notes),
        json!({"enabled": false}),
    ));
    assert_eq!(shutdown(1000), 0);
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text, "opt-out");
}

/// Tenant B's session on a file that holds tenant A's entries: A's entries stay, and A's next
/// session delivers every one of them.
#[test]
fn another_tenants_entries_survive_a_session_of_this_tenant() {
    let _s = serial();
    let cache = temp_dir("two-tenants").join("shared.cache");
    cache_through_outage(OTHER_IKEY, &cache, 5, "Other.Tenant");
    let c = Collector::start().unwrap();
    init_ok(&fast_config(&c.endpoint(), Some(&cache), json!({})));
    log_ok("This.Tenant", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("replayed"), 0);
    assert_conserved();
    assert_eq!(names(&c.accepted()), vec!["This.Tenant"]);
    let left = read_lines(&cache);
    assert_eq!(left.len(), 5, "{left:?}");
    assert!(left
        .iter()
        .all(|l| l.contains(&format!("\"iKey\":\"o:{OTHER_TENANT}\""))));

    let other = Collector::start().unwrap();
    init_ok(&fast_config(
        &other.endpoint(),
        Some(&cache),
        json!({"ikey": OTHER_IKEY}),
    ));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(stat("replayed"), 5);
    assert_conserved();
    assert_eq!(data_i(&other.accepted()), vec![0, 1, 2, 3, 4]);
}

/// Replay takes this tenant's lines by a real parse, and sets unsendable lines aside.
#[test]
fn replay_takes_this_tenants_lines_by_parse_and_sets_bad_ones_aside() {
    let _s = serial();
    let cache = temp_dir("replay-checks").join("events.cache");
    cache_through_outage(IKEY, &cache, 4, "Good.Entry");
    let good = read_lines(&cache);
    assert_eq!(good.len(), 4);
    let first = &good[0];
    let data0 = "\"data\":{\"i\":0}";
    assert!(first.contains(data0), "{first}");
    let time = serde_json::from_str::<Value>(first).unwrap()["time"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another tenant's line whose data holds the text of this tenant's iKey.
    let foreign = format!(
        r#"{{"ver":"4.0","name":"Other.Tenant","time":"{time}","iKey":"o:{OTHER_TENANT}","data":{{"iKey":"o:{TENANT}"}}}}"#
    );
    // This tenant's lines that tel_log would never have accepted.
    let crlf = first.replace(data0, "\"data\":{\"i\":100}") + "\r";
    let huge_number = first.replace(
        data0,
        &format!("\"data\":{{\"i\":101,\"n\":1{}}}", "0".repeat(5000)),
    );
    let bad_name = first.replace("\"name\":\"Good.Entry\"", "\"name\":\"x\"");
    let mut file = String::new();
    for l in [
        &good[0],
        &foreign,
        &crlf,
        &good[1],
        &huge_number,
        &good[2],
        &bad_name,
        &good[3],
    ] {
        file.push_str(l);
        file.push('\n');
    }
    std::fs::write(&cache, file).unwrap();

    let c = Collector::start().unwrap();
    let capture = Capture::start();
    init_ok(&fast_config(&c.endpoint(), Some(&cache), json!({})));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    capture.stop();
    assert_conserved();
    let s = stats();
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2, 3], "{s}");
    assert!(
        c.requests().iter().all(|r| r.status == 200),
        "a request was refused: {:?}",
        c.requests()
            .iter()
            .map(|r| (r.status, r.collector_error.clone()))
            .collect::<Vec<_>>()
    );
    assert_eq!(s["sent"], 4, "{s}");
    assert_eq!(s["rejected"], 3, "unsendable lines are counted: {s}");
    assert_eq!(s["replayed"], 7, "{s}");
    assert_eq!(
        read_lines(&cache),
        vec![foreign],
        "the other tenant's line stays"
    );
}

/// Orphaned temporary files (of writers that are gone) are removed; a live writer's and files
/// that are not the library's stay.
#[test]
fn orphaned_temporary_files_are_removed() {
    let _s = serial();
    let dir = temp_dir("orphans");
    let cache = dir.join("events.cache");
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let me = std::process::id();
    let orphans = [
        "events.cache.1234567890.tmp".to_owned(), // a writer of an earlier version
        format!("events.cache.{dead}.42.tmp"),
        format!("events.cache.kill.{dead}.7.tmp"),
        format!("device-id.{dead}.9.tmp"),
    ];
    let keep = [
        format!("device-id.{me}.1.tmp"), // a writer that is alive
        "notes.tmp".to_owned(),          // not the library's
    ];
    for name in orphans.iter().chain(&keep) {
        std::fs::write(dir.join(name), vec![b'x'; 1 << 20]).unwrap();
    }
    let c = Collector::start().unwrap();
    init_ok(&fast_config(&c.endpoint(), Some(&cache), json!({})));
    log_ok("Orphans.Gone", None);
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_conserved();
    for name in &orphans {
        assert!(!dir.join(name).exists(), "{name} is left");
    }
    for name in &keep {
        assert!(dir.join(name).exists(), "{name} was removed");
    }
}

// ---------------------------------------------------------------------------------------------
// Priorities, claims and sharers.

#[test]
fn the_cache_evicts_lower_priorities_first_and_reads_0_1_lines_as_normal() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("prio-evict");
    let path = dir.join("events.cache");
    // Oldest first: critical and high entries are older than every normal (0.1-style) one.
    let mut text = String::new();
    for (seq, mark) in [
        (1, "  "),
        (2, " "),
        (3, ""),
        (4, ""),
        (5, " "),
        (6, ""),
        (7, ""),
    ] {
        text.push_str(&cached_line("Cached.Entry", "old", seq, mark));
        text.push('\n');
    }
    std::fs::write(&path, &text).unwrap();
    let line_len = text.lines().map(|l| l.len() + 1).max().unwrap() as u64;
    // Room for three entries: the critical and the two high ones stay.
    let client = TestClient::new(&config(
        &c,
        Some(&dir),
        json!({"cache_max_bytes": line_len * 3 + 2}),
    ));
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    let mut seqs: Vec<u64> = c
        .accepted()
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, [1, 2, 5]);
    assert_eq!(s["cache_evicted"], 4);
    // Marks never reach the wire.
    for r in c.requests() {
        for l in &r.lines {
            assert!(l.ends_with('}'), "{l:?}");
        }
    }
}

#[test]
fn a_line_both_in_the_cache_and_in_a_dead_claim_is_delivered_once() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("dup-claim");
    let line = cached_line("Twice.Written", "e1", 1, "  ");
    let other = cached_line("Once.Written", "e1", 2, "");
    std::fs::write(dir.join("events.cache"), format!("{line}\n{other}\n")).unwrap();
    std::fs::write(
        dir.join("events.cache.claim-0123456789abcdef"),
        format!("{line}\n"),
    )
    .unwrap();
    let client = TestClient::new(&config(&c, Some(&dir), json!({})));
    assert_eq!(client.flush(10_000), 0);
    let s = client.stats();
    assert_eq!(client.close(5000), 0);
    let mut got = names(&c.accepted());
    got.sort();
    assert_eq!(got, ["Once.Written", "Twice.Written"]);
    assert_eq!(s["replayed"], 2);
    assert_conserved_in(&s);
}

#[test]
fn two_clients_on_one_cache_deliver_each_entry_once() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("two-clients");
    fill_cache(&dir.join("events.cache"), "Shared.Entry", 400);
    let cfg = config(&c, Some(&dir), json!({"batch_max_events": 20}));
    let a = TestClient::new(&cfg);
    let b = TestClient::new(&cfg);
    assert_eq!(a.flush(10_000), 0, "{}", last_error());
    assert_eq!(b.flush(10_000), 0, "{}", last_error());
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(a.close(5000), 0);
    assert_eq!(b.close(5000), 0);
    let counts = seq_counts(&c.accepted());
    assert_eq!(counts.len(), 400, "every entry arrived");
    assert!(counts.values().all(|n| *n == 1), "no entry twice");
    assert_eq!(
        sa["replayed"].as_u64().unwrap() + sb["replayed"].as_u64().unwrap(),
        400
    );
    assert_conserved_in(&sa);
    assert_conserved_in(&sb);
}

// ---------------------------------------------------------------------------------------------
// Where the cache cannot be.

#[test]
fn an_unusable_cache_location_still_lets_events_be_sent() {
    let _s = serial();
    let base = temp_dir("unusable");
    let file = base.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let as_dir = base.join("is-a-dir");
    std::fs::create_dir_all(&as_dir).unwrap();
    for cache in [file.join("under-a-file.cache"), as_dir.clone()] {
        let c = Collector::start().unwrap();
        init_ok(
            &json!({"ikey": IKEY, "endpoint": c.endpoint(), "cache_path": cache, "flush_interval_ms": 10}),
        );
        log_ok("Unusable.Cache", None);
        assert_eq!(flush(5000), 0, "{}", last_error());
        assert_eq!(shutdown(2000), 0);
        assert_eq!(c.accepted_count(), 1, "{cache:?}");
        assert_conserved();
    }
    assert!(as_dir.is_dir());
}

#[cfg(unix)]
#[test]
fn a_symlinked_cache_file_is_not_followed() {
    let _s = serial();
    let base = temp_dir("symlink");
    let target = base.join("target.txt");
    std::fs::write(&target, "do not touch\n").unwrap();
    let cache = base.join("events.cache");
    std::os::unix::fs::symlink(&target, &cache).unwrap();
    init_ok(
        &json!({"ikey": IKEY, "endpoint": dead_endpoint(), "cache_path": cache, "retry_initial_ms": 10}),
    );
    log_ok("Symlink.Event", None);
    let _ = shutdown(500);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "do not touch\n");
    assert_conserved();
}
