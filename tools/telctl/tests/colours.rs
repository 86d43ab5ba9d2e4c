//! telctl's colours follow the conventions, as anstream reads them: none in piped output, none
//! under `NO_COLOR` (set and not empty) whatever else is set, and `CLICOLOR_FORCE` colours even
//! piped output. `telctl audit` colours each outcome, so its listing shows which it is.

mod support;

use support::{telctl, TempDir};
use tel::internals::privacy::{AuditFile, AuditOutcome};

/// An audit file of one sent and one rejected event, in its own folder.
fn audit_file() -> (TempDir, String) {
    let dir = TempDir::new("colours");
    let path = dir.path().join("audit.jsonl");
    let audit = AuditFile::open(&path, 1 << 20);
    let envelope = |name: &str| {
        format!(
            r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc123","data":{{}}}}"#
        )
    };
    audit.record(AuditOutcome::Sent, 200, &[envelope("App.Sent")]);
    audit.record(AuditOutcome::Rejected, 400, &[envelope("App.Refused")]);
    let path = path.to_str().unwrap().to_owned();
    (dir, path)
}

#[test]
fn piped_or_no_color_output_has_no_escape_codes_and_clicolor_force_has_them() {
    let (dir, file) = audit_file();
    // `telctl audit FILE` with `env`: its stdout.
    let audit_listing = |env: &[(&str, &str)]| {
        let run = telctl(dir.path(), &["audit", &file], env);
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(run.stdout.lines().count(), 2, "{run:?}");
        run.stdout
    };
    let plain = audit_listing(&[]);
    assert!(!plain.contains('\x1b'), "piped: {plain:?}");
    for env in [
        &[("NO_COLOR", "1")][..],
        &[("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")],
        &[("CLICOLOR", "1")],
        &[
            ("CLICOLOR_FORCE", "1"),
            ("CLICOLOR", "0"),
            ("NO_COLOR", "yes"),
        ],
    ] {
        let listing = audit_listing(env);
        assert!(!listing.contains('\x1b'), "{env:?}: {listing:?}");
        assert_eq!(listing, plain, "{env:?}");
    }
    for env in [
        &[("CLICOLOR_FORCE", "1")][..],
        // An empty NO_COLOR is no request (no-color.org).
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")],
    ] {
        let forced = audit_listing(env);
        assert!(forced.contains("\x1b[32msent"), "{env:?}: {forced:?}");
        assert!(forced.contains("\x1b[31mrejected"), "{env:?}: {forced:?}");
        let stripped = anstream::adapter::strip_str(&forced).to_string();
        assert_eq!(
            stripped, plain,
            "{env:?}: the same text once the codes are gone"
        );
    }
}
