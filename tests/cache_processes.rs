//! The cache across real processes (this binary again, in a role), so that what one process
//! leaves is what the next one reads: an outage delivered by the next process, garbage and torn
//! lines skipped, the size and age bounds, where the cache goes by default; processes sharing
//! one cache deliver each entry once, a process killed mid-replay loses nothing, one that exits
//! without shutting down keeps what was cached, and while another process holds the cache lock
//! no claim file appears; a 256 MiB line is read past in bounded memory, and a FIFO in place of
//! a file never blocks a process.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// A session in a process of its own.

/// The child side: start a session from `TEL_TEST_CONFIG`, log `TEL_TEST_EVENTS` events named
/// `TEL_TEST_NAME`, optionally flush, then end as `TEL_TEST_END` says, printing the stats.
#[test]
fn child_session() {
    if child_role().as_deref() != Some("session") {
        return;
    }
    let env = |k: &str| std::env::var(k).ok();
    init_ok(&child_config());
    let n: usize = env("TEL_TEST_EVENTS").map_or(0, |v| v.parse().unwrap());
    let name = env("TEL_TEST_NAME").unwrap_or_else(|| "Cache.Event".into());
    for i in 0..n {
        log_ok(
            &name,
            Some(&format!("{{\"i\":{i},\"pid\":{}}}", std::process::id())),
        );
    }
    if let Some(ms) = env("TEL_TEST_FLUSH_MS") {
        let rc = flush(ms.parse().unwrap());
        println!("FLUSH={rc}");
    }
    match env("TEL_TEST_END").as_deref() {
        Some("exit") => {
            println!("STATS={}", stats());
            std::process::exit(0)
        }
        Some("hang") => ready_until_killed(),
        _ => {
            let rc = shutdown(2000);
            println!("SHUTDOWN={rc}");
            println!("STATS={}", stats());
        }
    }
}

fn child_env(
    config: &Value,
    events: usize,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("TEL_TEST_ROLE", "session".to_owned()),
        ("TEL_TEST_CONFIG", config.to_string()),
        ("TEL_TEST_EVENTS", events.to_string()),
    ];
    for (k, v) in extra {
        env.push((*k, v.to_string()));
    }
    env
}

fn run_session(config: &Value, events: usize, extra: &[(&'static str, &str)]) -> Value {
    printed_stats(&run_child(
        "child_session",
        &child_env(config, events, extra),
    ))
}

/// A configuration for `endpoint` with the cache file `cache` and fast timings, merged with
/// `extra`.
fn session_config(endpoint: &str, cache: &Path, extra: Value) -> Value {
    let c = json!({
        "ikey": IKEY,
        "endpoint": endpoint,
        "cache_path": cache,
        "flush_interval_ms": 20,
        "retry_initial_ms": 50,
        "retry_max_ms": 100,
        "http_timeout_ms": 5000,
    });
    merged(c, extra)
}

/// Leaves `n` events in the cache file through a process that shut down during an outage.
fn persisted_by_a_process(cache: &Path, n: usize, name: &str) -> Value {
    let s = run_session(
        &session_config(&dead_endpoint(), cache, json!({})),
        n,
        &[("TEL_TEST_NAME", name)],
    );
    // What it replayed from earlier outages went back to the cache with its own events.
    assert_eq!(
        s["persisted"].as_u64().unwrap(),
        n as u64 + s["replayed"].as_u64().unwrap(),
        "{s}"
    );
    s
}

fn fresh_cache(tag: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag).join("nested");
    let cache = dir.join("tenant.cache");
    (dir, cache)
}

// ---------------------------------------------------------------------------------------------
// The next process.

#[test]
fn an_outage_is_delivered_by_the_next_process() {
    if child_role().is_some() {
        return;
    }
    let (dir, cache) = fresh_cache("outage");
    persisted_by_a_process(&cache, 30, "Outage.Event");
    assert_eq!(read_lines(&cache).len(), 30);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache), 0o600, "cache file mode");
        assert_eq!(mode(&dir), 0o700, "cache folder mode");
    }
    let content = std::fs::read_to_string(&cache).unwrap();
    assert!(!content.contains(IKEY), "the full key was written to disk");
    let c = Collector::start().unwrap();
    let s = run_session(
        &session_config(&c.endpoint(), &cache, json!({})),
        0,
        &[("TEL_TEST_FLUSH_MS", "10000")],
    );
    assert_eq!(s["replayed"], 30);
    assert_eq!(s["sent"], 30);
    assert_eq!(data_i(&c.accepted()), (0..30).collect::<Vec<_>>());
    assert!(
        read_lines(&cache).is_empty(),
        "delivered entries leave the file"
    );
    // The original time is kept: the envelopes are sent exactly as cached.
    let cached: Vec<Value> = content
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cached[0]["time"], c.accepted()[0]["time"]);
}

#[test]
fn exiting_without_shutdown_keeps_what_was_cached() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("noshutdown");
    persisted_by_a_process(&cache, 20, "Exit.Cached");
    // A process that starts (and so begins replaying) and exits at once without tel_shutdown,
    // while the collector is down.
    let s = run_session(
        &session_config(&dead_endpoint(), &cache, json!({})),
        5,
        &[("TEL_TEST_END", "exit")],
    );
    assert_eq!(s["logged"], 5);
    let c = Collector::start().unwrap();
    run_session(
        &session_config(&c.endpoint(), &cache, json!({})),
        0,
        &[("TEL_TEST_FLUSH_MS", "10000")],
    );
    let names = names(&c.accepted());
    let cached = names.iter().filter(|n| *n == "Exit.Cached").count();
    assert!(
        cached >= 20,
        "only {cached} of the 20 cached entries arrived"
    );
}

#[test]
fn garbage_and_torn_lines_are_skipped() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("garbage");
    persisted_by_a_process(&cache, 6, "Good.Entry");
    let good = std::fs::read(&cache).unwrap();
    let lines: Vec<&[u8]> = good
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut mixed = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        mixed.extend_from_slice(l);
        mixed.push(b'\n');
        match i {
            0 => mixed.extend_from_slice(b"this is not json\n"),
            1 => mixed.extend_from_slice(b"\xff\xfe\xfd invalid utf-8\n"),
            2 => mixed.extend_from_slice(b"\n\n"),
            3 => mixed.extend_from_slice(
                b"{\"ver\":\"4.0\",\"name\":\"Other.Tenant\",\"iKey\":\"o:someone\"}\n",
            ),
            4 => mixed.extend_from_slice(b"[1,2,3]\n"),
            _ => {}
        }
    }
    mixed.extend_from_slice(&lines[0][..lines[0].len() / 2]); // a torn last line
    std::fs::write(&cache, mixed).unwrap();
    let c = Collector::start().unwrap();
    let s = run_session(
        &session_config(&c.endpoint(), &cache, json!({})),
        0,
        &[("TEL_TEST_FLUSH_MS", "10000")],
    );
    assert_eq!(s["replayed"], 6);
    assert_eq!(data_i(&c.accepted()), (0..6).collect::<Vec<_>>());
    assert_eq!(c.requests().iter().filter(|r| r.status != 200).count(), 0);
}

#[test]
fn the_file_stays_within_cache_max_bytes_and_counts_evictions() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("bounded");
    let max = 6000u64;
    let mut evicted = 0;
    for round in 0..4 {
        let s = run_session(
            &session_config(&dead_endpoint(), &cache, json!({"cache_max_bytes": max})),
            10,
            &[("TEL_TEST_NAME", &format!("Bounded.Round{round}"))],
        );
        evicted += s["cache_evicted"].as_u64().unwrap();
        let size = std::fs::metadata(&cache).unwrap().len();
        assert!(size <= max, "round {round}: {size} bytes > {max}");
    }
    assert!(evicted > 0, "evictions are counted");
    // The oldest went first: the last round is all there.
    let lines = read_lines(&cache);
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("Bounded.Round3"))
            .count(),
        10
    );
    assert!(!lines.iter().any(|l| l.contains("Bounded.Round0")));
}

#[test]
fn expired_entries_are_not_sent() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("expired");
    persisted_by_a_process(&cache, 5, "Old.Entry");
    // Age three of them by two days.
    let aged: Vec<String> = read_lines(&cache)
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            if i < 3 {
                let t = tel::internals::envelope::envelope_time_ms(&l).unwrap();
                l.replace(
                    &tel::internals::clock::iso8601(t),
                    &tel::internals::clock::iso8601(t - 2 * 86_400_000),
                )
            } else {
                l
            }
        })
        .collect();
    std::fs::write(&cache, aged.join("\n") + "\n").unwrap();
    let c = Collector::start().unwrap();
    let s = run_session(
        &session_config(&c.endpoint(), &cache, json!({"cache_max_age_s": 86_400})),
        0,
        &[("TEL_TEST_FLUSH_MS", "10000")],
    );
    assert_eq!(s["cache_evicted"], 3);
    assert_eq!(s["replayed"], 2);
    assert_eq!(data_i(&c.accepted()), [3, 4]);
    assert!(read_lines(&cache).is_empty());
}

#[test]
fn a_null_cache_path_writes_nothing() {
    if child_role().is_some() {
        return;
    }
    let home = temp_dir("nullcache");
    let mut config = session_config(&dead_endpoint(), Path::new("unused"), json!({}));
    config["cache_path"] = Value::Null;
    let s = run_session(
        &config,
        5,
        &[
            ("TEL_CACHE_DIR", home.to_str().unwrap()),
            ("XDG_CACHE_HOME", home.to_str().unwrap()),
            ("HOME", home.to_str().unwrap()),
        ],
    );
    assert_eq!(s["dropped_shutdown"], 5);
    assert_eq!(s["persisted"], 0);
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        0,
        "something was written"
    );
}

#[test]
fn the_default_cache_folder_follows_tel_cache_dir() {
    if child_role().is_some() {
        return;
    }
    let home = temp_dir("defaultdir");
    let mut config = session_config(&dead_endpoint(), Path::new("unused"), json!({}));
    config.as_object_mut().unwrap().remove("cache_path");
    run_session(&config, 3, &[("TEL_CACHE_DIR", home.to_str().unwrap())]);
    assert_eq!(read_lines(&home.join(format!("{TENANT}.cache"))).len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Processes sharing one cache.

#[test]
fn two_processes_replaying_the_same_entries_deliver_each_once() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("shared");
    for k in 0..4 {
        persisted_by_a_process(&cache, 50, &format!("Shared.Batch{k}"));
    }
    assert_eq!(read_lines(&cache).len(), 200);
    let c = Collector::start().unwrap();
    let config = session_config(&c.endpoint(), &cache, json!({"batch_max_events": 10}));
    let env = child_env(&config, 0, &[("TEL_TEST_FLUSH_MS", "20000")]);
    let a = spawn_child("child_session", &env);
    let b = spawn_child("child_session", &env);
    let sa = printed_stats(&a.wait_with_output().unwrap());
    let sb = printed_stats(&b.wait_with_output().unwrap());
    let acc = c.accepted();
    let mut seen: HashMap<(String, u64), usize> = HashMap::new();
    for e in &acc {
        *seen
            .entry((
                e["name"].as_str().unwrap().to_owned(),
                e["data"]["i"].as_u64().unwrap(),
            ))
            .or_default() += 1;
    }
    assert_eq!(seen.len(), 200, "every entry delivered");
    assert!(seen.values().all(|n| *n == 1), "an entry was sent twice");
    assert_eq!(
        sa["replayed"].as_u64().unwrap() + sb["replayed"].as_u64().unwrap(),
        200
    );
    assert!(read_lines(&cache).is_empty());
}

#[test]
fn a_process_killed_while_its_replay_hangs_loses_nothing() {
    if child_role().is_some() {
        return;
    }
    let (dir, cache) = fresh_cache("sigkill");
    persisted_by_a_process(&cache, 40, "Killed.Replay");
    let c = Collector::start().unwrap();
    c.set_default(Some(Scripted::fault(Fault::HangBeforeHeaders)));
    let config = session_config(&c.endpoint(), &cache, json!({"http_timeout_ms": 60_000}));
    let mut child = spawn_child(
        "child_session",
        &child_env(&config, 0, &[("TEL_TEST_END", "hang")]),
    );
    assert!(
        c.wait_for_requests(1, WAIT),
        "the replay request reached the collector"
    );
    // The entries now sit in the child's claim file.
    assert_eq!(claim_files(&dir).len(), 1);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    c.set_default(None);
    c.release();
    let before = c.accepted_count();
    let s = run_session(
        &session_config(&c.endpoint(), &cache, json!({})),
        0,
        &[("TEL_TEST_FLUSH_MS", "10000")],
    );
    assert_eq!(
        s["replayed"], 40,
        "the dead process's claim was recovered: {s}"
    );
    let acc = c.accepted();
    let mut count: HashMap<u64, usize> = HashMap::new();
    for e in &acc[before..] {
        *count.entry(e["data"]["i"].as_u64().unwrap()).or_default() += 1;
    }
    assert_eq!(count.len(), 40, "every entry delivered");
    assert!(count.values().all(|n| *n <= 2));
    assert!(read_lines(&cache).is_empty());
}

/// The child side: a client on `TEL_TEST_CONFIG` that flushes, closes and prints its stats.
#[test]
fn child_client() {
    if child_role().as_deref() != Some("client") {
        return;
    }
    let config: Value = serde_json::from_str(&std::env::var("TEL_TEST_CONFIG").unwrap()).unwrap();
    let a = TestClient::new(&config);
    let b = TestClient::new(&config);
    let fa = a.flush(20_000);
    let fb = b.flush(20_000);
    println!("STATS={}", a.stats());
    println!("STATS={}", b.stats());
    assert_eq!((fa, fb), (0, 0));
    assert_eq!(a.close(5000), 0);
    assert_eq!(b.close(5000), 0);
}

#[test]
fn two_processes_with_two_clients_each_deliver_each_entry_once() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("two-procs-clients");
    fill_cache(&dir.join("events.cache"), "Shared.Entry", 1000);
    let cfg = config(&c, Some(&dir), json!({"batch_max_events": 25}));
    let env = [
        ("TEL_TEST_ROLE", "client".to_owned()),
        ("TEL_TEST_CONFIG", cfg.to_string()),
    ];
    let kids: Vec<_> = (0..2).map(|_| spawn_child("child_client", &env)).collect();
    let mut replayed = 0;
    for k in kids {
        let out = k.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        for part in text.split("STATS=").skip(1) {
            let s: Value = serde_json::from_str(part.lines().next().unwrap()).unwrap();
            assert_conserved_in(&s);
            replayed += s["replayed"].as_u64().unwrap();
        }
    }
    let counts = seq_counts(&c.accepted());
    assert_eq!(counts.len(), 1000, "every entry arrived");
    assert!(counts.values().all(|n| *n == 1), "no entry twice");
    assert_eq!(replayed, 1000);
}

/// The child side: holds the cache lock (as another process mid-write would) until killed.
#[test]
fn child_holding_the_cache_lock() {
    if child_role().as_deref() == Some("hold-lock") {
        hold_the_cache_lock()
    }
}

/// While another process holds the cache lock, no claim file appears: one that did could be
/// taken for a dead session's (its lock not yet taken) and deleted by that process, and with
/// it the entries the session then claims.
#[test]
fn no_claim_file_appears_while_another_process_holds_the_cache_lock() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let dir = temp_dir("claim-race");
    let cache = dir.join("events.cache");
    cache_through_outage(IKEY, &cache, 3, "Claim.Race");
    let mut holder = Kid::start(
        "child_holding_the_cache_lock",
        "hold-lock",
        &[("TEL_TEST_LOCK", format!("{}.lock", cache.display()))],
    );
    holder.until("READY");

    let c = Collector::start().unwrap();
    let capture = Capture::start();
    init_ok(&fast_config(&c.endpoint(), Some(&cache), json!({})));
    let mut seen = Vec::new();
    let gave_up = eventually(Duration::from_secs(20), || {
        seen.extend(claim_files(&dir));
        capture.has("another process holds the cache lock")
    });
    seen.extend(claim_files(&dir));
    holder.kill();
    assert!(gave_up, "the worker waited for the lock and gave up");
    assert!(
        seen.is_empty(),
        "claim files appeared under another process's lock: {seen:?}"
    );
    assert_eq!(shutdown(2000), 0);
    capture.stop();
    assert_conserved();

    // The entries are all still there for the next session.
    init_ok(&fast_config(&c.endpoint(), Some(&cache), json!({})));
    assert_eq!(flush(10_000), 0, "{}", last_error());
    assert_eq!(shutdown(2000), 0);
    assert_eq!(data_i(&c.accepted()), vec![0, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Reading the cache is bounded and never blocks (Linux: the figures come from /proc).

/// The child side: a session on `TEL_TEST_CONFIG`'s cache; prints the peak RSS growth.
#[cfg(target_os = "linux")]
#[test]
fn child_reading_a_big_cache() {
    if child_role().as_deref() != Some("big-cache") {
        return;
    }
    let config = child_config();
    assert!(reset_peak_rss());
    let before = peak_rss_kb();
    init_ok(&config);
    println!("FLUSH={}", flush(60_000));
    println!("HWM_GROWTH_KB={}", peak_rss_kb().saturating_sub(before));
    println!("SHUTDOWN={}", shutdown(2000));
    println!("STATS={}", stats());
}

/// A cache file with a 256 MiB line (a hole of NULs) between two entries: the line is read
/// past without being kept, and both entries are delivered.
#[cfg(target_os = "linux")]
#[test]
fn an_overlong_line_is_read_past_in_bounded_memory() {
    if child_role().is_some() {
        return;
    }
    let _s = serial();
    let cache = temp_dir("big-cache").join("events.cache");
    cache_through_outage(IKEY, &cache, 2, "Big.Cache");
    let lines = read_lines(&cache);
    {
        let mut f = std::fs::File::create(&cache).unwrap();
        writeln!(f, "{}", lines[0]).unwrap();
        let at = f.metadata().unwrap().len();
        f.set_len(at + (256 << 20)).unwrap();
        use std::io::Seek;
        f.seek(std::io::SeekFrom::End(0)).unwrap();
        writeln!(f, "\n{}", lines[1]).unwrap();
    }
    let c = Collector::start().unwrap();
    let config = fast_config(&c.endpoint(), Some(&cache), json!({}));
    let out = run_role_ok(
        "child_reading_a_big_cache",
        "big-cache",
        &[("TEL_TEST_CONFIG", config.to_string())],
        Duration::from_secs(120),
    );
    let growth: u64 = printed(&out, "HWM_GROWTH_KB").unwrap().parse().unwrap();
    assert!(
        growth < 48 * 1024,
        "peak RSS grew by {growth} kB reading the cache"
    );
    assert_eq!(printed(&out, "FLUSH").as_deref(), Some("0"));
    assert_eq!(data_i(&c.accepted()), vec![0, 1]);
}

#[cfg(target_os = "linux")]
fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// The child side: a FIFO in place of the file `TEL_TEST_FIFO` names; the session must start,
/// deliver, and leave no thread behind.
#[cfg(target_os = "linux")]
#[test]
fn child_with_a_fifo() {
    if child_role().as_deref() != Some("fifo") {
        return;
    }
    let env = |k: &str| std::env::var(k).unwrap();
    let dir = PathBuf::from(env("TEL_TEST_DIR"));
    mkfifo(&dir.join(env("TEL_TEST_FIFO")));
    let threads_before = threads();
    init_ok(&fast_config(
        &env("TEL_TEST_ENDPOINT"),
        Some(&dir.join("events.cache")),
        json!({}),
    ));
    for _ in 0..3 {
        log_ok("Fifo.Event", None);
    }
    println!("FLUSH={}", flush(10_000));
    println!("SHUTDOWN={}", shutdown(1000));
    println!("THREADS_LEFT={}", threads() as i64 - threads_before as i64);
    println!("STATS={}", stats());
}

#[cfg(target_os = "linux")]
#[test]
fn a_fifo_in_place_of_a_file_never_blocks() {
    if child_role().is_some() {
        return;
    }
    let c = Collector::start().unwrap();
    for fifo in [
        "events.cache",
        "events.cache.kill",
        "device-id",
        "events.cache.lock",
    ] {
        let dir = temp_dir("fifo");
        let before = c.accepted_count();
        let (out, in_time) = run_child_within(
            "child_with_a_fifo",
            &role_env(
                "fifo",
                &[
                    ("TEL_TEST_DIR", dir.display().to_string()),
                    ("TEL_TEST_FIFO", fifo.to_owned()),
                    ("TEL_TEST_ENDPOINT", c.endpoint()),
                ],
            ),
            Duration::from_secs(30),
        );
        assert!(in_time, "{fifo}: the process hung\n{}", describe(&out));
        assert!(out.status.success(), "{fifo}: {}", describe(&out));
        assert_eq!(printed(&out, "FLUSH").as_deref(), Some("0"), "{fifo}");
        assert_eq!(printed(&out, "SHUTDOWN").as_deref(), Some("0"), "{fifo}");
        assert_eq!(
            printed(&out, "THREADS_LEFT").as_deref(),
            Some("0"),
            "{fifo}: the worker outlived tel_shutdown"
        );
        assert_eq!(c.accepted_count() - before, 3, "{fifo}");
    }
}
