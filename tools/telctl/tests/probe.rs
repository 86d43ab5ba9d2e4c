//! `telctl probe` against the emulator: its verdicts are what the emulator answered (judged or
//! scripted), it stops at a kill, and it never prints the full key.

mod support;

use serde_json::Value;
use support::{dead_endpoint, telctl, Run, TempDir, KEY, TENANT};
use tel_emulator::{Collector, Scripted};

fn probe(collector_endpoint: &str, cache: &TempDir, json: bool) -> Run {
    let mut args = vec!["probe", "--ikey", KEY, "--endpoint", collector_endpoint];
    if json {
        args.push("--json");
    }
    let run = telctl(cache.path(), &args, &[]);
    run.assert_no_full_key();
    run
}

fn rows(run: &Run) -> Vec<Value> {
    run.json()["rows"].as_array().cloned().unwrap_or_default()
}

fn index_of(rows: &[Value], id: &str) -> usize {
    rows.iter()
        .position(|r| r["row"] == id)
        .unwrap_or_else(|| panic!("no row {id}"))
}

#[test]
fn every_row_gets_the_verdict_the_emulator_answered() {
    let collector = Collector::start().unwrap();
    let cache = TempDir::new("probe-clean");
    let run = probe(&collector.endpoint(), &cache, true);
    assert_eq!(run.code, 0, "{run:?}");
    let rows = rows(&run);
    let requests = collector.requests();
    assert_eq!(requests.len(), rows.len(), "one request per row");
    assert!(rows.len() >= 16, "{rows:?}");
    for (row, request) in rows.iter().zip(&requests) {
        assert_eq!(row["status"], request.status, "{row}");
        assert_eq!(
            row["collector_error"],
            serde_json::json!(request.collector_error),
            "{row}"
        );
        assert_eq!(row["as_expected"], true, "{row}");
        let accepted = request.accepted == 1;
        assert_eq!(row["outcome"] == "accepted", accepted, "{row}");
        // Every row is one event, sent with the full key in the header.
        assert_eq!(request.lines.len(), 1, "{row}");
        assert_eq!(request.header("x-apikey"), Some(KEY));
        // ... and in no body but the row that shows that very mistake.
        assert_eq!(
            request.full_key_in_body,
            row["row"] == "ikey-full-key",
            "{row}"
        );
    }
    let expect = |id: &str, status: u64, outcome: &str| {
        let row = &rows[index_of(&rows, id)];
        assert_eq!(row["status"], status, "{row}");
        assert_eq!(row["outcome"], outcome, "{row}");
    };
    expect("minimal", 200, "accepted");
    expect("default-context", 200, "accepted");
    expect("ikey-full-key", 401, "rejected");
    expect("undocumented-field", 400, "rejected");
    expect("bad-device-local-id", 400, "rejected");
    expect("content-type-json", 415, "rejected");
    expect("compression-none", 200, "accepted");
    expect("compression-gzip", 200, "accepted");
    let bad_id = &rows[index_of(&rows, "bad-device-local-id")];
    assert_eq!(bad_id["efi"], serde_json::json!(["InvalidDeviceLocalId"]));
    assert_eq!(
        requests[index_of(&rows, "compression-gzip")].header("content-encoding"),
        Some("gzip")
    );
    assert_eq!(
        requests[index_of(&rows, "compression-none")].header("content-encoding"),
        None
    );
    for ext in ["app", "os", "device", "user", "loc", "net", "cloud", "sdk"] {
        let i = index_of(&rows, &format!("ext.{ext}"));
        let envelope: Value = serde_json::from_str(&requests[i].lines[0]).unwrap();
        let extensions: Vec<&String> = envelope["ext"].as_object().unwrap().keys().collect();
        assert_eq!(extensions, [ext], "row ext.{ext} adds that extension alone");
    }

    // The table: a line per row with its status and verdict, and the warning up front.
    let table = probe(&collector.endpoint(), &cache, false);
    assert_eq!(table.code, 0, "{table:?}");
    assert!(table.stdout.contains("real events"), "{}", table.stdout);
    assert!(table.stdout.contains(&format!("key {TENANT}-***")));
    // The route it took and what came of TLS.
    assert!(
        table
            .stdout
            .contains("Route: direct (loopback endpoint, never proxied)."),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("TLS: not used (plain http"),
        "{}",
        table.stdout
    );
    for row in &rows {
        let id = row["row"].as_str().unwrap();
        let line = table
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no line for {id}:\n{}", table.stdout));
        assert!(line.contains(&row["status"].to_string()), "{line}");
        let verdict = if row["outcome"] == "accepted" {
            "accepted"
        } else {
            "rejected as expected"
        };
        assert!(line.contains(verdict), "{line}");
    }
    assert!(table.stdout.contains("Invalid Tenant Token"));
    assert!(table.stdout.contains("ext.os.release is not a documented"));
}

#[test]
fn answers_other_than_documented_are_flagged_and_exit_1() {
    let layout = {
        let collector = Collector::start().unwrap();
        rows(&probe(
            &collector.endpoint(),
            &TempDir::new("probe-layout"),
            true,
        ))
    };
    let collector = Collector::start().unwrap();
    let undocumented = index_of(&layout, "undocumented-field");
    // minimal: 503; ext.app: a 200 whose efi refuses the event; undocumented-field: accepted.
    collector.push(Scripted::status(503).with_header("Collector-Error", "scripted outage"));
    collector
        .push(Scripted::status(200).with_body(r#"{"acc":0,"rej":1,"efi":{"InvalidData":[0]}}"#));
    for _ in 2..undocumented {
        collector.push(Scripted::accept());
    }
    collector.push(Scripted::status(200).with_body(r#"{"acc":1}"#));

    let cache = TempDir::new("probe-unexpected");
    let run = probe(&collector.endpoint(), &cache, true);
    assert_eq!(run.code, 1, "{run:?}");
    let rows = rows(&run);
    assert_eq!(rows.len(), layout.len(), "every row is still sent");
    let row = |id: &str| rows[index_of(&rows, id)].clone();
    assert_eq!(row("minimal")["outcome"], "retryable");
    assert_eq!(row("minimal")["collector_error"], "scripted outage");
    assert_eq!(row("minimal")["as_expected"], false);
    assert_eq!(row("ext.app")["outcome"], "rejected");
    assert_eq!(row("ext.app")["efi"], serde_json::json!(["InvalidData"]));
    assert_eq!(row("ext.app")["as_expected"], false);
    assert_eq!(row("undocumented-field")["outcome"], "accepted");
    assert_eq!(row("undocumented-field")["as_expected"], false);
    let unexpected = rows.iter().filter(|r| r["as_expected"] == false).count();
    assert_eq!(unexpected, 3, "{rows:?}");

    collector.push(Scripted::status(503));
    let table = probe(&collector.endpoint(), &cache, false);
    assert_eq!(table.code, 1);
    let minimal = table
        .stdout
        .lines()
        .find(|l| l.starts_with("minimal "))
        .unwrap();
    assert!(
        minimal.contains("503") && minimal.contains("UNEXPECTED"),
        "{minimal}"
    );
}

#[test]
fn a_kill_stops_the_probe_at_once_and_keeps_it_stopped() {
    let collector = Collector::start().unwrap();
    // A kill of another tenant is not ours; the third answer kills ours.
    collector.push(
        Scripted::accept()
            .with_header("kill-tokens", "o:someoneelse")
            .with_header("kill-duration", "3600"),
    );
    collector.push(Scripted::accept());
    collector.push(
        Scripted::status(401)
            .with_header("kill-tokens", format!("o:{TENANT}:all"))
            .with_header("kill-duration", "3600"),
    );
    let cache = TempDir::new("probe-kill");
    let run = probe(&collector.endpoint(), &cache, true);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(collector.request_count(), 3, "no request after the kill");
    let report = run.json();
    assert_eq!(report["rows"].as_array().unwrap().len(), 3);
    assert_eq!(report["stopped"]["reason"], "killed");
    assert_eq!(report["stopped"]["seconds"], 3600);
    let kill_file = cache.path().join(format!("{TENANT}.cache.kill"));
    assert!(
        kill_file.is_file(),
        "the window is recorded where the library reads it"
    );

    // Inside the window the probe sends nothing at all, and says so.
    let again = probe(&collector.endpoint(), &cache, false);
    assert_eq!(again.code, 3, "{again:?}");
    assert!(
        again.stdout.contains("stop sending until"),
        "{}",
        again.stdout
    );
    assert_eq!(collector.request_count(), 3);
    // The library honours the same window: `send` drops its event without a request.
    let send = telctl(
        cache.path(),
        &[
            "send",
            "--ikey",
            KEY,
            "--endpoint",
            &collector.endpoint(),
            "Probe.After",
        ],
        &[],
    );
    assert_eq!(send.code, 3, "{send:?}");
    assert_eq!(collector.request_count(), 3);

    // Forgetting the window lets the probe run again.
    let clear = telctl(
        cache.path(),
        &["cache", "clear", "--ikey", KEY, "--yes"],
        &[],
    );
    assert_eq!(clear.code, 0, "{clear:?}");
    assert!(!kill_file.exists());
    let third = probe(&collector.endpoint(), &cache, true);
    assert_eq!(third.code, 0, "{third:?}");
}

#[test]
fn an_unreachable_collector_stops_the_probe_with_exit_4() {
    let cache = TempDir::new("probe-dead");
    let run = probe(&dead_endpoint(), &cache, true);
    assert_eq!(run.code, 4, "{run:?}");
    let report = run.json();
    assert_eq!(report["stopped"]["reason"], "network");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["outcome"], "network failure");
    assert!(rows[0]["network_error"].as_str().is_some());
}

#[test]
fn usage_errors_exit_2_before_anything_is_sent() {
    let cache = TempDir::new("probe-usage");
    let collector = Collector::start().unwrap();
    for args in [
        vec![
            "probe",
            "--ikey",
            "nodash",
            "--endpoint",
            "http://127.0.0.1:9/",
        ],
        vec!["probe", "--ikey", KEY, "--endpoint", "http://example.com/"],
        vec!["probe", "--endpoint", "http://127.0.0.1:9/"],
        vec!["probe", "--ikey", KEY, "--bogus"],
    ] {
        let run = telctl(cache.path(), &args, &[]);
        run.assert_no_full_key();
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
    }
    // The key may come from the environment instead of the command line.
    let run = telctl(
        cache.path(),
        &["probe", "--endpoint", &collector.endpoint(), "--json"],
        &[("TEL_IKEY", KEY)],
    );
    run.assert_no_full_key();
    assert_eq!(run.code, 0, "{run:?}");
    let help = telctl(cache.path(), &["probe", "--help"], &[("TEL_IKEY", KEY)]);
    help.assert_no_full_key();
    assert_eq!(help.code, 0);
    for row in rows(&run) {
        assert!(
            help.stdout.contains(row["row"].as_str().unwrap()),
            "matrix in --help"
        );
    }
}

/// In a network namespace: the probe goes where the library goes (here through a CONNECT proxy
/// with credentials, named by `HTTPS_PROXY`, to a TLS collector known only to the proxy), and
/// says so: the route, without the credentials, and the TLS verdict; then, with a CA that did
/// not sign the collector's certificate, why no TLS session was made.
#[test]
fn probe_prints_its_route_and_tls_verdict() {
    use tel_emulator::{netns, ConnectProxy, Options, ProxyOptions};
    netns::inside("probe_prints_its_route_and_tls_verdict", "", || {
        let collector = Collector::start_with(Options {
            tls: true,
            tls_names: vec!["collector.test".into()],
            ..Options::default()
        })
        .unwrap();
        let proxy = ConnectProxy::start(ProxyOptions {
            credentials: Some(("probe".into(), "s3cr:t".into())),
            hosts: vec![(
                "collector.test".into(),
                ([127, 0, 0, 1], collector.port()).into(),
            )],
            ..ProxyOptions::default()
        })
        .unwrap();
        let cache = TempDir::new("probe-route");
        let ca = cache.path().join("ca.pem");
        std::fs::write(&ca, collector.tls_ca_pem().unwrap()).unwrap();
        let endpoint = format!(
            "https://collector.test:{}/OneCollector/1.0/",
            collector.port()
        );
        let proxy_url = format!("http://probe:s3cr%3At@127.0.0.1:{}", proxy.port());
        let ca_path = ca.to_str().unwrap().to_owned();
        let env = |ca: &str| {
            vec![
                ("HTTPS_PROXY", proxy_url.clone()),
                ("https_proxy", String::new()),
                ("NO_PROXY", String::new()),
                ("no_proxy", String::new()),
                ("SSL_CERT_FILE", ca.to_owned()),
            ]
        };
        let run = |env: Vec<(&'static str, String)>| {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let args = ["probe", "--ikey", KEY, "--endpoint", &endpoint];
            telctl(cache.path(), &args, &env)
        };
        let trusted = run(env(&ca_path));
        assert_eq!(trusted.code, 0, "{trusted:?}");
        let route = format!(
            "Route: through the proxy http://127.0.0.1:{} (with credentials) from HTTPS_PROXY.",
            proxy.port()
        );
        assert!(trusted.stdout.contains(&route), "{}", trusted.stdout);
        assert!(
            trusted
                .stdout
                .contains("TLS: the collector's certificate is trusted"),
            "{}",
            trusted.stdout
        );
        assert!(!format!("{trusted:?}").contains("s3cr"));
        assert_eq!(proxy.counts().tunnels, 1, "one tunnel for every row");

        let other = Collector::start_with(Options {
            tls: true,
            ..Options::default()
        })
        .unwrap();
        let other_ca = cache.path().join("other-ca.pem");
        std::fs::write(&other_ca, other.tls_ca_pem().unwrap()).unwrap();
        let refused = run(env(other_ca.to_str().unwrap()));
        assert_eq!(refused.code, 4, "{refused:?}");
        assert!(
            refused.stdout.contains(
                "TLS: no session was made: the collector's certificate is not trusted (unknown issuer)"
            ),
            "{}",
            refused.stdout
        );
        assert!(
            refused.stdout.contains("SSL_CERT_FILE"),
            "{}",
            refused.stdout
        );
    });
}
