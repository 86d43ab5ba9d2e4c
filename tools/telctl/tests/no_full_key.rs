//! The full instrumentation key never appears in `telctl` output, even when the collector
//! echoes it back in `Collector-Error` or in its body, with the library logging at trace level
//! (security promise of issue 9; the library's own log lines do carry it: docs/reliability.md,
//! finding 6; telctl masks what it prints).

mod support;

use support::{telctl, TempDir, KEY};
use tel_emulator::{Collector, Scripted};

#[test]
fn a_collector_echoing_the_key_does_not_get_it_printed() {
    let collector = Collector::start().unwrap();
    let cache = TempDir::new("echo-key");
    for json in [false, true] {
        collector.push(
            Scripted::status(401)
                .with_header("Collector-Error", format!("Invalid key {KEY}"))
                .with_body(format!("{{\"error\":\"bad key {KEY}\"}}")),
        );
        let mut args = vec!["send", "--ikey", KEY, "--endpoint"];
        let endpoint = collector.endpoint();
        args.push(&endpoint);
        if json {
            args.push("--json");
        }
        args.push("Echo.Event");
        let run = telctl(cache.path(), &args, &[("TEL_LOG", "trace")]);
        run.assert_no_full_key();
    }
}
