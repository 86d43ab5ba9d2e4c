//! `telctl send` against the emulator: one event through the library, and each outcome class
//! reported with its own exit status and the collector's reason.

mod support;

use support::{dead_endpoint, telctl, Run, TempDir, KEY, TENANT};
use tel_emulator::{Collector, Scripted};

fn send(cache: &TempDir, endpoint: &str, extra: &[&str], env: &[(&str, &str)]) -> Run {
    let mut args = vec!["send", "--ikey", KEY, "--endpoint", endpoint];
    args.extend_from_slice(extra);
    let run = telctl(cache.path(), &args, env);
    run.assert_no_full_key();
    run
}

#[test]
fn accepted_events_arrive_as_logged() {
    let collector = Collector::start().unwrap();
    let cache = TempDir::new("send-accepted");
    let run = send(
        &cache,
        &collector.endpoint(),
        &["App.Started", r#"{"mode":"build","ok":true}"#],
        &[],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("accepted"), "{}", run.stdout);
    let accepted = collector.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["name"], "App.Started");
    assert_eq!(accepted[0]["iKey"], format!("o:{TENANT}"));
    assert_eq!(
        accepted[0]["data"],
        serde_json::json!({"mode": "build", "ok": true})
    );

    let json = send(&cache, &collector.endpoint(), &["--json", "App.Again"], &[]);
    assert_eq!(json.code, 0);
    let report = json.json();
    assert_eq!(report["outcome"], "accepted");
    assert_eq!(report["stats"]["sent"], 1);
    assert_eq!(report["key"], format!("{TENANT}-***"));
    assert_eq!(collector.accepted()[1]["data"], serde_json::json!({}));
}

#[test]
fn a_retried_event_says_what_the_collector_answered_first() {
    let collector = Collector::start().unwrap();
    collector.push(Scripted::status(503).with_header("Collector-Error", "scripted outage"));
    let cache = TempDir::new("send-retried");
    let run = send(
        &cache,
        &collector.endpoint(),
        &["--json", "App.Retried"],
        &[],
    );
    assert_eq!(run.code, 5, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "accepted_after_retries");
    assert_eq!(report["stats"]["retries"], 1);
    assert_eq!(report["stats"]["sent"], 1);
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.contains("503") && reason.contains("scripted outage"),
        "{reason}"
    );
    assert_eq!(collector.accepted_count(), 1);
}

#[test]
fn a_rejection_carries_the_collectors_reason() {
    let collector = Collector::start().unwrap();
    collector.push(
        Scripted::status(400)
            .with_header("Collector-Error", "Scripted refusal of the event")
            .with_body(r#"{"acc":0,"rej":1}"#),
    );
    let cache = TempDir::new("send-rejected");
    let run = send(&cache, &collector.endpoint(), &["App.Refused"], &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let outcome = run
        .stdout
        .lines()
        .find(|l| l.starts_with("rejected"))
        .unwrap();
    assert!(
        outcome.contains("HTTP 400") && outcome.contains("Scripted refusal of the event"),
        "{outcome}"
    );
    assert!(outcome.contains(r#"{"acc":0,"rej":1}"#), "{outcome}");
    // Rejected events are not cached.
    assert!(!cache.path().join(format!("{TENANT}.cache")).exists());
}

#[test]
fn undeliverable_events_are_cached_or_dropped() {
    let collector = Collector::start().unwrap();
    collector.set_default(Some(
        Scripted::status(503).with_header("Collector-Error", "down for the test"),
    ));
    let cache = TempDir::new("send-cached");
    let run = send(
        &cache,
        &collector.endpoint(),
        &["--attempts", "1", "--json", "App.Cached"],
        &[],
    );
    assert_eq!(run.code, 4, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "cached");
    assert_eq!(report["stats"]["persisted"], 1);
    assert!(report["reason"]
        .as_str()
        .unwrap()
        .contains("down for the test"));
    let file = cache.path().join(format!("{TENANT}.cache"));
    assert_eq!(report["cache_path"], file.to_str().unwrap());
    let cached = std::fs::read_to_string(&file).unwrap();
    assert_eq!(cached.lines().count(), 1);
    assert!(cached.contains("\"name\":\"App.Cached\""));

    // Without a cache file, what is still undelivered at the deadline is dropped.
    let run = send(
        &cache,
        &dead_endpoint(),
        &["--no-cache", "--timeout", "0.5", "--json", "App.Dropped"],
        &[],
    );
    assert_eq!(run.code, 6, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "dropped");
    assert_eq!(report["stats"]["dropped_shutdown"], 1);
    assert_eq!(report["cache_path"], serde_json::Value::Null);
}

#[test]
fn a_kill_says_until_when_and_holds_for_the_next_process() {
    let collector = Collector::start().unwrap();
    collector.push(
        Scripted::status(401)
            .with_header("kill-tokens", format!("o:{TENANT}"))
            .with_header("kill-duration", "600"),
    );
    let cache = TempDir::new("send-killed");
    let before = tel::internals::clock::now_ms();
    let run = send(
        &cache,
        &collector.endpoint(),
        &["--json", "App.Killed"],
        &[],
    );
    assert_eq!(run.code, 3, "{run:?}");
    let report = run.json();
    assert_eq!(report["outcome"], "killed");
    let until = report["killed_until_ms"].as_u64().unwrap();
    assert!(until >= before + 600_000, "{report}");
    assert_eq!(
        report["killed_until"],
        tel::internals::clock::iso8601(until)
    );

    // The next process drops its event without a request.
    let next = send(&cache, &collector.endpoint(), &["App.StillKilled"], &[]);
    assert_eq!(next.code, 3, "{next:?}");
    assert!(
        next.stdout.contains(&tel::internals::clock::iso8601(until)),
        "{}",
        next.stdout
    );
    assert_eq!(collector.request_count(), 1);
}

#[test]
fn opt_out_and_usage_errors_have_their_own_status() {
    let collector = Collector::start().unwrap();
    let cache = TempDir::new("send-usage");
    let off = send(
        &cache,
        &collector.endpoint(),
        &["App.Off"],
        &[("TEL_DISABLE", "1")],
    );
    assert_eq!(off.code, 7, "{off:?}");
    assert!(off.stdout.contains("turned off"));
    for args in [
        vec!["ab"],
        vec!["App.Event", "[1,2]"],
        vec!["App.Event", "{not json"],
        vec!["--attempts", "0", "App.Event"],
        vec!["--timeout", "-1", "App.Event"],
        vec!["--timeout", "1e30", "App.Event"],
        vec!["--timeout", "NaN", "App.Event"],
    ] {
        let run = send(&cache, &collector.endpoint(), &args, &[]);
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    let bad_key = telctl(
        cache.path(),
        &[
            "send",
            "--ikey",
            "nodash",
            "--endpoint",
            &collector.endpoint(),
            "App.Event",
        ],
        &[],
    );
    assert_eq!(bad_key.code, 2);
    assert_eq!(collector.request_count(), 0);
}

/// `--no-cache --attempts N`: without a cache the library would keep the event in memory and
/// retry it for the whole `--timeout`; `send` ends the session after N failed attempts and
/// reports the event dropped.
#[test]
fn without_a_cache_attempts_are_honoured() {
    for attempts in [1u64, 2] {
        let collector = Collector::start().unwrap();
        collector.set_default(Some(
            Scripted::status(503).with_header("Collector-Error", "down for the test"),
        ));
        let cache = TempDir::new("send-no-cache-attempts");
        let run = send(
            &cache,
            &collector.endpoint(),
            &[
                "--no-cache",
                "--attempts",
                &attempts.to_string(),
                "--timeout",
                "60",
                "--json",
                "App.Dropped",
            ],
            &[],
        );
        assert_eq!(run.code, 6, "{run:?}");
        let report = run.json();
        assert_eq!(report["outcome"], "dropped");
        assert_eq!(report["stats"]["http_requests"], attempts, "{report}");
        assert_eq!(report["stats"]["dropped_shutdown"], 1, "{report}");
        assert!(report["reason"]
            .as_str()
            .unwrap()
            .contains("down for the test"));
        assert_eq!(collector.request_count() as u64, attempts);
    }
    let collector = Collector::start().unwrap();
    collector.set_default(Some(Scripted::status(503)));
    let cache = TempDir::new("send-no-cache-text");
    let run = send(
        &cache,
        &collector.endpoint(),
        &[
            "--no-cache",
            "--attempts",
            "1",
            "--timeout",
            "60",
            "App.Dropped",
        ],
        &[],
    );
    assert_eq!(run.code, 6, "{run:?}");
    assert!(
        run.stdout
            .contains("dropped: not delivered after 1 attempt (HTTP 503)"),
        "{}",
        run.stdout
    );
}

/// Refused properties are quoted in the message (cut at 64 characters, then the length of
/// the properties), with what is wrong and where; the parser's own message is not excerpted.
#[test]
fn a_properties_error_quotes_the_properties() {
    let collector = Collector::start().unwrap();
    let cache = TempDir::new("send-properties");
    let long_string = format!("\"{}\"", "x".repeat(100));
    let long_object = format!("{{\"a\":\"{}\" x}}", "y".repeat(100));
    let cases: [(&str, &[&str]); 4] = [
        (
            "[1,2]",
            &["must be a JSON object, not an array", "properties: [1,2]"],
        ),
        (
            &long_string,
            &[
                "not a string",
                "properties: \"xxxxxxxxxx",
                &format!("... ({} bytes)", long_string.len()),
            ],
        ),
        (
            r#"{"a":1,"#,
            &["EOF while parsing", r#"properties: {"a":1,"#],
        ),
        (
            &long_object,
            &[
                "expected `,` or `}` at line 1 column 109",
                "properties: {\"a\":\"yyyyyyyyyy",
                &format!("... ({} bytes)", long_object.len()),
            ],
        ),
    ];
    for (properties, expected) in cases {
        let run = send(
            &cache,
            &collector.endpoint(),
            &["App.Event", properties],
            &[],
        );
        assert_eq!(run.code, 2, "{properties}: {run:?}");
        for part in expected {
            assert!(run.stderr.contains(part), "{part:?} in {}", run.stderr);
        }
        assert!(run.stderr.len() < 400, "{}", run.stderr);
    }
    assert_eq!(collector.request_count(), 0);
}
