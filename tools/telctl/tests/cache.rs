//! `telctl cache show` and `clear` on caches written by real `telctl send` processes.

mod support;

use support::{dead_endpoint, telctl, Run, TempDir, KEY, TENANT};
use tel_emulator::{Collector, Scripted};

/// A `telctl send` that cannot reach the collector: its event ends in the cache.
fn send_undeliverable(cache: &TempDir, extra: &[&str]) -> Run {
    let endpoint = dead_endpoint();
    let mut args = vec![
        "send",
        "--ikey",
        KEY,
        "--endpoint",
        &endpoint,
        "--attempts",
        "1",
    ];
    args.extend_from_slice(extra);
    let run = telctl(cache.path(), &args, &[]);
    run.assert_no_full_key();
    assert_eq!(run.code, 4, "the event is cached: {run:?}");
    run
}

fn show(cache: &TempDir, args: &[&str]) -> Run {
    let mut all = vec!["cache", "show"];
    all.extend_from_slice(args);
    let run = telctl(cache.path(), &all, &[]);
    run.assert_no_full_key();
    run
}

#[test]
fn show_reads_what_real_processes_left_in_the_cache() {
    let dir = TempDir::new("cache-show");
    let file = dir.path().join("app").join("events.cache");
    let file_arg = file.to_str().unwrap();
    send_undeliverable(
        &dir,
        &["--cache-path", file_arg, "Tool.Build", r#"{"n":1}"#],
    );
    send_undeliverable(
        &dir,
        &["--cache-path", file_arg, "Tool.Build", r#"{"n":2}"#],
    );
    send_undeliverable(&dir, &["--cache-path", file_arg, "Tool.Test"]);

    let run = show(&dir, &["--path", file_arg, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    let report = run.json();
    let cache = &report["caches"][0];
    assert_eq!(cache["path"], file_arg);
    assert_eq!(cache["exists"], true);
    assert_eq!(cache["tenant"], format!("o:{TENANT}"));
    assert_eq!(cache["entries"], 3);
    assert_eq!(cache["bytes"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(
        cache["names"],
        serde_json::json!([{"name": "Tool.Build", "count": 2}, {"name": "Tool.Test", "count": 1}])
    );
    let (oldest, newest) = (
        cache["oldest_ms"].as_u64().unwrap(),
        cache["newest_ms"].as_u64().unwrap(),
    );
    assert!(oldest <= newest);
    // The times are the events' own, as the cache file holds them.
    let times: Vec<u64> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| tel::internals::envelope::envelope_time_ms(l).unwrap())
        .collect();
    assert_eq!(Some(&oldest), times.iter().min());
    assert_eq!(Some(&newest), times.iter().max());
    assert_eq!(cache["kill"], serde_json::Value::Null);

    let text = show(&dir, &["--path", file_arg]);
    assert_eq!(text.code, 0);
    assert!(text.stdout.contains(file_arg), "{}", text.stdout);
    assert!(
        text.stdout.contains("Tool.Build x2, Tool.Test x1"),
        "{}",
        text.stdout
    );
    assert!(text
        .stdout
        .contains(&tel::internals::clock::iso8601(oldest)));
    assert!(text
        .stdout
        .lines()
        .any(|l| l.contains("kill window") && l.contains("none")));
}

#[test]
fn the_default_cache_is_found_from_the_key_or_the_folder() {
    let dir = TempDir::new("cache-default");
    send_undeliverable(&dir, &["Tool.Default"]);
    let expected = dir.path().join(format!("{TENANT}.cache"));
    assert!(expected.is_file());

    let by_key = show(&dir, &["--ikey", KEY, "--json"]);
    assert_eq!(by_key.code, 0, "{by_key:?}");
    assert_eq!(
        by_key.json()["caches"][0]["path"],
        expected.to_str().unwrap()
    );
    assert_eq!(by_key.json()["caches"][0]["entries"], 1);

    let by_folder = show(&dir, &["--json"]);
    assert_eq!(by_folder.code, 0);
    let caches = by_folder.json()["caches"].as_array().cloned().unwrap();
    assert_eq!(caches.len(), 1);
    assert_eq!(caches[0]["path"], expected.to_str().unwrap());

    // A later process of the tenant replays the entry: the cache empties.
    let collector = Collector::start().unwrap();
    let replay = telctl(
        dir.path(),
        &[
            "send",
            "--ikey",
            KEY,
            "--endpoint",
            &collector.endpoint(),
            "Tool.Next",
        ],
        &[],
    );
    assert_eq!(replay.code, 0, "{replay:?}");
    assert!(
        replay.stdout.contains("replayed 1 cached entry"),
        "{}",
        replay.stdout
    );
    let names: Vec<String> = collector
        .accepted()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Tool.Default", "Tool.Next"]);
    assert_eq!(
        show(&dir, &["--ikey", KEY, "--json"]).json()["caches"][0]["entries"],
        0
    );
}

#[test]
fn show_reports_an_active_kill_window_and_clear_forgets_it() {
    let dir = TempDir::new("cache-kill");
    send_undeliverable(&dir, &["Tool.Cached"]);
    let collector = Collector::start().unwrap();
    collector.push(
        Scripted::status(401)
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "900"),
    );
    let killed = telctl(
        dir.path(),
        &[
            "send",
            "--ikey",
            KEY,
            "--endpoint",
            &collector.endpoint(),
            "--json",
            "Tool.Killed",
        ],
        &[],
    );
    assert_eq!(killed.code, 3, "{killed:?}");
    let until = killed.json()["killed_until_ms"].as_u64().unwrap();

    let report = show(&dir, &["--ikey", KEY, "--json"]).json();
    assert_eq!(report["caches"][0]["kill"]["until_ms"], until);
    // The kill purged the cached entry.
    assert_eq!(report["caches"][0]["entries"], 0);
    let text = show(&dir, &["--ikey", KEY]);
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("kill window"))
        .unwrap();
    assert!(
        line.contains(&tel::internals::clock::iso8601(until)),
        "{line}"
    );

    let kill_file = dir.path().join(format!("{TENANT}.cache.kill"));
    assert!(kill_file.is_file());
    let cleared = telctl(dir.path(), &["cache", "clear", "--ikey", KEY, "--yes"], &[]);
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert!(
        cleared.stdout.contains("kill window forgotten"),
        "{}",
        cleared.stdout
    );
    assert!(!kill_file.exists());
    assert_eq!(
        show(&dir, &["--ikey", KEY, "--json"]).json()["caches"][0]["kill"],
        serde_json::Value::Null
    );
}

#[test]
fn clear_wants_a_confirmation_and_then_deletes_under_the_lock() {
    let dir = TempDir::new("cache-clear");
    let file = dir.path().join("c.cache");
    let file_arg = file.to_str().unwrap();
    send_undeliverable(&dir, &["--cache-path", file_arg, "Tool.One"]);
    send_undeliverable(&dir, &["--cache-path", file_arg, "Tool.Two"]);

    // Standard input is not a terminal: no prompt, no deletion, a usage error.
    let refused = telctl(dir.path(), &["cache", "clear", "--path", file_arg], &[]);
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 2);

    // Another process holds the cache lock: clear waits, then gives up without deleting.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join("c.cache.lock"))
        .unwrap();
    lock.lock().unwrap();
    let blocked = telctl(
        dir.path(),
        &["cache", "clear", "--path", file_arg, "--yes"],
        &[],
    );
    assert_eq!(blocked.code, 1, "{blocked:?}");
    assert!(blocked.stderr.contains("not cleared"), "{}", blocked.stderr);
    assert!(file.is_file());
    lock.unlock().unwrap();

    let cleared = telctl(
        dir.path(),
        &["cache", "clear", "--path", file_arg, "--yes", "--json"],
        &[],
    );
    assert_eq!(cleared.code, 0, "{cleared:?}");
    assert_eq!(cleared.json()["cleared"][0]["deleted"], 2);
    assert!(!file.exists());
    let empty = show(&dir, &["--path", file_arg, "--json"]).json();
    assert_eq!(empty["caches"][0]["exists"], false);
    assert_eq!(empty["caches"][0]["entries"], 0);

    // Nothing left: clearing again needs no confirmation and succeeds.
    let again = telctl(dir.path(), &["cache", "clear", "--path", file_arg], &[]);
    assert_eq!(again.code, 0, "{again:?}");
}

/// The tenant comes from the entries' envelope `iKey` (or the kill state the library wrote),
/// never from the file's name: `cache_path` may be any name, and a name that looks like a
/// tenant token says nothing.
#[test]
fn show_reads_the_tenant_from_the_entries_or_says_it_is_unknown() {
    let dir = TempDir::new("cache-tenant");
    // Entries of abc123 in a file named after another tenant.
    let misleading = dir.path().join("zzz999.cache");
    let misleading_arg = misleading.to_str().unwrap();
    send_undeliverable(&dir, &["--cache-path", misleading_arg, "Tool.Named"]);
    let run = show(&dir, &["--path", misleading_arg, "--json"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["caches"][0]["tenant"], format!("o:{TENANT}"));
    assert_eq!(run.json()["caches"][0]["entries"], 1);

    // A file whose lines name no tenant, and a file that does not exist: unknown.
    let torn = dir.path().join("def456.cache");
    std::fs::write(&torn, "{\"ver\":\"4.0\",\"name\":\"Tool.Torn\"\n").unwrap();
    let missing = dir.path().join("ghi789.cache");
    for (file, exists) in [(&torn, true), (&missing, false)] {
        let arg = file.to_str().unwrap();
        let json = show(&dir, &["--path", arg, "--json"]);
        assert_eq!(json.code, 0, "{json:?}");
        let cache = &json.json()["caches"][0];
        assert_eq!(cache["tenant"], serde_json::Value::Null, "{cache}");
        assert_eq!(cache["exists"], exists, "{cache}");
        assert_eq!(cache["entries"], 0, "{cache}");
        let text = show(&dir, &["--path", arg]);
        let tenant_line = text
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("tenant"))
            .unwrap_or_else(|| panic!("{}", text.stdout));
        assert!(
            tenant_line.contains("unknown") && !tenant_line.contains("o:"),
            "{tenant_line}"
        );
    }
    // The torn line is one the library would skip.
    assert_eq!(
        show(&dir, &["--path", torn.to_str().unwrap(), "--json"]).json()["caches"][0]
            ["skipped_lines"],
        1
    );
    // `clear` deletes nothing it cannot attribute to a tenant.
    let clear = telctl(
        dir.path(),
        &["cache", "clear", "--yes", "--path", torn.to_str().unwrap()],
        &[],
    );
    assert_eq!(clear.code, 0, "{clear:?}");
    assert!(torn.is_file());
}
