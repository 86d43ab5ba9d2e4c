//! `tel_log_ex` / `tel_client_log_ex` options through the C ABI: the event's own time, per-event
//! `ext` (`dt`, `ex` and the session's fields), validation naming the key, and `ext.sdk.seq`
//! without gaps.

mod common;

use common::*;
use serde_json::json;

#[test]
fn time_and_ext_reach_the_envelope() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(
        &c,
        None,
        json!({"ext": {"app": {"ver": "1.0", "name": "host"}}}),
    ));
    let trace = "0123456789abcdef0123456789abcdef";
    let opts = json!({
        "time": "2026-12-01T09:30:00.125Z",
        "ext": {
            "dt": {"traceId": trace, "spanId": "0123456789abcdef", "traceFlags": 1},
            "ex": {"type": "System.Exception", "msg": "boom \"quoted\"", "stack": "at x\nat y"},
            "app": {"ver": "2.0"},
        }
    })
    .to_string();
    assert_eq!(
        log_ex("With.Options", Some(r#"{"a":1}"#), Some(&opts)),
        0,
        "{}",
        last_error()
    );
    assert_eq!(
        log_ex("Int.Time", None, Some(r#"{"time":1796117400125}"#)),
        0
    );
    assert_eq!(
        log_ex(
            "Whole.Second",
            None,
            Some(r#"{"time":"2026-12-01T09:30:00Z"}"#)
        ),
        0
    );
    assert_eq!(log_ex("Null.Options", None, None), 0);
    assert_eq!(log_ex("Empty.Options", None, Some("{}")), 0);
    assert_eq!(flush(5000), 0);
    // As sent (a collector that does not know `dt`/`ex` yet may refuse them).
    let acc = wire_envelopes(&c);
    assert_eq!(
        names(&acc),
        [
            "With.Options",
            "Int.Time",
            "Whole.Second",
            "Null.Options",
            "Empty.Options"
        ]
    );
    let e = &acc[0];
    assert_eq!(e["time"], "2026-12-01T09:30:00.125Z");
    assert_eq!(e["data"], json!({"a":1}));
    assert_eq!(
        e["ext"]["dt"],
        json!({"traceId": trace, "spanId": "0123456789abcdef", "traceFlags": 1})
    );
    assert_eq!(e["ext"]["ex"]["msg"], "boom \"quoted\"");
    assert_eq!(e["ext"]["ex"]["stack"], "at x\nat y");
    // Merged field by field over the session's ext.
    assert_eq!(e["ext"]["app"]["ver"], "2.0");
    assert_eq!(e["ext"]["app"]["name"], "host");
    assert!(e["ext"]["os"]["name"].is_string());
    assert_eq!(acc[1]["time"], "2026-12-01T09:30:00.125Z");
    assert_eq!(acc[2]["time"], "2026-12-01T09:30:00.000Z");
    // The other events keep the session's ext and the time of the call.
    assert!(acc[3]["ext"].get("dt").is_none());
    assert_eq!(acc[3]["ext"]["app"]["ver"], "1.0");
    let seqs: Vec<u64> = acc
        .iter()
        .map(|e| e["ext"]["sdk"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(shutdown(5000), 0);
    assert_conserved();
}

#[test]
fn bad_options_name_their_key() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({})));
    for (opts, word) in [
        (r#"{"colour":"red"}"#, "options.colour"),
        (r#"{"time":"yesterday"}"#, "options.time"),
        (r#"{"time":"2026-12-01T09:30:00+01:00"}"#, "options.time"),
        (r#"{"time":-5}"#, "options.time"),
        (r#"{"priority":"urgent"}"#, "options.priority"),
        (r#"{"priority":1}"#, "options.priority"),
        (r#"{"ext":{"sdk":{"seq":"1"}}}"#, "options.ext.sdk"),
        (
            r#"{"ext":{"dt":{"traceId":"XYZ"}}}"#,
            "options.ext.dt.traceId",
        ),
        (
            r#"{"ext":{"dt":{"spanId":"0123456789ABCDEF"}}}"#,
            "options.ext.dt.spanId",
        ),
        (
            r#"{"ext":{"dt":{"traceFlags":300}}}"#,
            "options.ext.dt.traceFlags",
        ),
        (r#"{"ext":{"ex":{"type":1}}}"#, "options.ext.ex.type"),
        (
            r#"{"ext":{"os":{"release":"x"}}}"#,
            "options.ext.os.release",
        ),
        ("[]", "JSON object"),
        ("not json", "JSON object"),
    ] {
        assert_eq!(log_ex("Some.Event", None, Some(opts)), 3, "{opts}");
        let msg = last_error();
        assert!(msg.contains(word), "{opts}: {msg}");
    }
    assert_eq!(stat("logged"), 0);
    assert_eq!(
        log_ex("abc", None, Some("{}")),
        3,
        "the name is still checked"
    );
    assert_eq!(shutdown(1000), 0);
    // Without a session, like tel_log.
    assert_eq!(log_ex("Some.Event", None, None), 4);
    assert_eq!(log_ex("Some.Event", None, Some("{}")), 4);
    let n = std::ffi::CString::new("Some.Event").unwrap();
    unsafe {
        assert_eq!(
            tel::ffi::tel_log_ex(std::ptr::null(), std::ptr::null(), std::ptr::null()),
            1
        );
        let bad = [0xffu8, 0];
        assert_eq!(
            tel::ffi::tel_log_ex(n.as_ptr(), std::ptr::null(), bad.as_ptr().cast()),
            1
        );
    }
}

#[test]
fn a_refused_event_leaves_no_gap_in_the_sequence() {
    let _s = serial();
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({"event_max_bytes": 1500})));
    log_ok("Seq.First", None);
    // Small enough to be read, too large once wrapped in its envelope.
    let props = format!("{{\"x\":\"{}\"}}", "y".repeat(1400));
    assert_eq!(log("Seq.TooLarge", Some(&props)), 3);
    assert!(last_error().contains("event_max_bytes"));
    let opts = json!({"ext": {"ex": {"stack": "s".repeat(1400)}}}).to_string();
    assert_eq!(log_ex("Seq.TooLarge", None, Some(&opts)), 3);
    log_ok("Seq.Second", None);
    assert_eq!(flush(5000), 0);
    let seqs: Vec<u64> = c
        .accepted()
        .iter()
        .map(|e| e["ext"]["sdk"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    assert_eq!(shutdown(5000), 0);
    assert_conserved();
}

#[test]
fn client_log_ex_takes_the_same_options() {
    let c = Collector::start().unwrap();
    let client = TestClient::new(&config(&c, None, json!({})));
    assert_eq!(
        client.log_ex("Client.Ex", None, Some(r#"{"time":0,"priority":"high"}"#)),
        0
    );
    assert_eq!(client.log_ex("Client.Ex", None, Some(r#"{"nope":1}"#)), 3);
    assert!(last_error().contains("options.nope"));
    assert_eq!(client.flush(5000), 0);
    assert_eq!(c.accepted()[0]["time"], "1970-01-01T00:00:00.000Z");
    assert_eq!(client.close(5000), 0);
}
