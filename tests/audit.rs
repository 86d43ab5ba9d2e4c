//! The audit file (abi.md, "Audit file"): shared by real processes (two appending at once, with
//! a rotation between them, leave only whole lines and lose none), and through the C ABI (the
//! `audit_path` key and `TEL_AUDIT`: one line per answered event exactly as sent, private,
//! bounded and rotated).

mod common;

use common::{child_role, spawn_child};
use std::path::PathBuf;
use tel::internals::privacy::{AuditFile, AuditOutcome};

const RECORDS: usize = 2000;

/// The child side: `RECORDS` records of one event each, tagged with the writer's name.
#[test]
fn audit_writer_child() {
    if child_role().as_deref() != Some("audit-writer") {
        return;
    }
    let path = PathBuf::from(std::env::var("AUDIT_PATH").unwrap());
    let writer = std::env::var("AUDIT_WRITER").unwrap();
    let max: u64 = std::env::var("AUDIT_MAX").unwrap().parse().unwrap();
    let audit = AuditFile::open(path, max);
    for n in 0..RECORDS {
        let envelope = format!(
            r#"{{"ver":"4.0","name":"Audit.Writer","iKey":"o:abc","data":{{"writer":"{writer}","n":{n},"pad":"{}"}}}}"#,
            "x".repeat(100)
        );
        audit.record(AuditOutcome::Sent, 200, &[envelope]);
    }
}

#[test]
fn two_processes_share_the_file_through_a_rotation() {
    if child_role().is_some() {
        return;
    }
    let dir =
        std::env::temp_dir().join(format!("tel-audit-procs-{}", tel::internals::random::u64()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    // Each line is about 250 bytes: 2 x 2000 lines are about 1 MB, so a bound of 700 kB makes
    // exactly one rotation, and the second file stays below the bound.
    let max = 700_000u64;
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|w| {
            spawn_child(
                "audit_writer_child",
                &[
                    ("TEL_TEST_ROLE", "audit-writer".to_string()),
                    ("AUDIT_PATH", path.display().to_string()),
                    ("AUDIT_WRITER", w.to_string()),
                    ("AUDIT_MAX", max.to_string()),
                ],
            )
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let mut seen = std::collections::BTreeSet::new();
    for file in [dir.join("audit.jsonl.1"), path.clone()] {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with('\n'));
        assert!(
            text.len() as u64 <= max + 4096,
            "{} holds {} bytes",
            file.display(),
            text.len()
        );
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("a torn line in {} ({e}): {line}", file.display()));
            let data = &v["event"]["data"];
            let key = (
                data["writer"].as_str().unwrap().to_owned(),
                data["n"].as_u64().unwrap(),
            );
            assert!(seen.insert(key.clone()), "{key:?} twice");
        }
    }
    assert_eq!(
        seen.len(),
        2 * RECORDS,
        "every line is in the file or its predecessor"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// Through the C ABI (abi.md 1.2, "Audit file"): the `audit_path` key and `TEL_AUDIT`.

mod abi {
    use super::common::*;
    use serde_json::{json, Value};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn audit_lines(path: &Path) -> Vec<Value> {
        read_lines(path)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn one_line_per_answered_event_exactly_as_sent() {
        if child_role().is_some() {
            return;
        }
        let c = Collector::start().unwrap();
        let dir = temp_dir("audit-abi");
        let path = dir.join("audit.jsonl");
        let client = TestClient::new(&config(
            &c,
            None,
            json!({"audit_path": path.to_string_lossy()}),
        ));
        assert_eq!(client.log("Audit.One", Some(r#"{"n":1}"#)), 0);
        assert_eq!(client.log("Audit.Two", Some(r#"{"n":2}"#)), 0);
        assert_eq!(client.flush(10_000), 0);
        c.push(Scripted::status(400));
        assert_eq!(client.log("Audit.Refused", None), 0);
        assert_eq!(client.flush(10_000), 0);
        let s = client.stats();
        assert_eq!(
            (s["sent"].as_u64(), s["rejected"].as_u64()),
            (Some(2), Some(1)),
            "{s}"
        );
        let lines = audit_lines(&path);
        let summary: Vec<(String, u64, String)> = lines
            .iter()
            .map(|l| {
                (
                    l["outcome"].as_str().unwrap().to_owned(),
                    l["status"].as_u64().unwrap(),
                    l["event"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("sent".to_owned(), 200, "Audit.One".to_owned()),
                ("sent".to_owned(), 200, "Audit.Two".to_owned()),
                ("rejected".to_owned(), 400, "Audit.Refused".to_owned()),
            ]
        );
        assert!(lines.iter().all(|l| l["time_ms"].is_u64()));
        // Each envelope exactly as it went over the wire, byte for byte.
        let text = std::fs::read_to_string(&path).unwrap();
        for request in c.requests() {
            for line in &request.lines {
                assert!(text.contains(&format!("\"event\":{line}}}")), "{line}");
            }
        }
        assert!(!text.contains(IKEY));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(client.close(2000), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bounded_and_rotated() {
        if child_role().is_some() {
            return;
        }
        let c = Collector::start().unwrap();
        let dir = temp_dir("audit-rotate");
        let path = dir.join("audit.jsonl");
        let client = TestClient::new(&config(
            &c,
            None,
            json!({"audit_path": path.to_string_lossy(), "audit_max_bytes": 1024}),
        ));
        let pad = "x".repeat(200);
        for i in 0..20 {
            assert_eq!(
                client.log(
                    "Audit.Rotated",
                    Some(&format!("{{\"i\":{i},\"pad\":\"{pad}\"}}"))
                ),
                0
            );
            assert_eq!(client.flush(10_000), 0);
        }
        let rotated = dir.join("audit.jsonl.1");
        assert!(rotated.exists());
        for f in [&path, &rotated] {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len <= 1024 + 1024, "{} holds {len} bytes", f.display());
        }
        // The newest events are in the current file, whole.
        let last = audit_lines(&path);
        assert_eq!(last.last().unwrap()["event"]["data"]["i"], 19);
        assert_eq!(client.close(2000), 0);
        let (rc, _) = client_new(&config(&c, None, json!({"audit_max_bytes": 1023})));
        assert_eq!(rc, 2);
        assert!(last_error().contains("audit_max_bytes"), "{}", last_error());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tel_audit_names_the_file_for_any_host() {
        if child_role().is_some() {
            return;
        }
        let _s = serial();
        let c = Collector::start().unwrap();
        let dir = temp_dir("audit-env");
        let path = dir.join("from-env.jsonl");
        std::env::set_var("TEL_AUDIT", &path);
        init_ok(&config(&c, None, json!({})));
        std::env::remove_var("TEL_AUDIT");
        log_ok("Audit.Env", None);
        assert_eq!(flush(10_000), 0);
        assert_conserved();
        assert_eq!(shutdown(2000), 0);
        let lines = audit_lines(&path);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["event"]["name"], "Audit.Env");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
