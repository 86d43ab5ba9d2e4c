//! The audit file shared by real processes (abi.md, "Audit file"): two processes appending at
//! once, with a rotation between them, leave only whole lines, and lose none.

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
