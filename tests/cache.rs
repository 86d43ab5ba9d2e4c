//! The on-disk cache, with real processes: outages survive the process, replays are shared
//! without duplicates, SIGKILL loses nothing, garbage is skipped, the file stays bounded.

mod common;

use common::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The child side: start a session from `TEL_TEST_CONFIG`, log `TEL_TEST_EVENTS` events named
/// `TEL_TEST_NAME`, optionally flush, then end as `TEL_TEST_END` says, printing the stats.
#[test]
fn child_session() {
    if child_role().as_deref() != Some("session") {
        return;
    }
    let env = |k: &str| std::env::var(k).ok();
    let config: Value = serde_json::from_str(&env("TEL_TEST_CONFIG").unwrap()).unwrap();
    init_ok(&config);
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
        Some("hang") => {
            println!("READY");
            loop {
                std::thread::park();
            }
        }
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
    let out = run_child("child_session", &child_env(config, events, extra));
    parse_stats(&out)
}

fn parse_stats(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = text
        .split("STATS=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("no stats in {text}"));
    serde_json::from_str(json).unwrap()
}

/// A port where nothing listens: every request fails to connect (an outage).
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
fn cache_through_outage(cache: &Path, n: usize, name: &str) -> Value {
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

#[test]
fn an_outage_is_delivered_by_the_next_process() {
    if child_role().is_some() {
        return;
    }
    let (dir, cache) = fresh_cache("outage");
    cache_through_outage(&cache, 30, "Outage.Event");
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
fn two_processes_replaying_the_same_entries_deliver_each_once() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("shared");
    for k in 0..4 {
        cache_through_outage(&cache, 50, &format!("Shared.Batch{k}"));
    }
    assert_eq!(read_lines(&cache).len(), 200);
    let c = Collector::start().unwrap();
    let config = session_config(&c.endpoint(), &cache, json!({"batch_max_events": 10}));
    let env = child_env(&config, 0, &[("TEL_TEST_FLUSH_MS", "20000")]);
    let a = spawn_child("child_session", &env);
    let b = spawn_child("child_session", &env);
    let sa = parse_stats(&a.wait_with_output().unwrap());
    let sb = parse_stats(&b.wait_with_output().unwrap());
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
    cache_through_outage(&cache, 40, "Killed.Replay");
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
    let claims: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".claim-"))
        .collect();
    assert_eq!(claims.len(), 1);
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

#[test]
fn exiting_without_shutdown_keeps_what_was_cached() {
    if child_role().is_some() {
        return;
    }
    let (_dir, cache) = fresh_cache("noshutdown");
    cache_through_outage(&cache, 20, "Exit.Cached");
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
    cache_through_outage(&cache, 6, "Good.Entry");
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
    cache_through_outage(&cache, 5, "Old.Entry");
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
