//! The audit file (abi.md, "Audit file"): one line per event a collector answered,
//! `{"time_ms": T, "outcome": "sent"|"rejected", "status": S, "event": <the envelope as sent>}`.
//!
//! - **Whole lines, several processes.** The file is opened for appending and each write holds
//!   whole lines only (one line, or several whole ones up to 64 KiB), so lines of processes
//!   sharing the file never interleave.
//! - **Private.** Created 0600 (a looser file of ours is made 0600), never through a symbolic
//!   link, a regular file only (`private_file`).
//! - **Bounded.** Before a write would take the file past `max_bytes`, the file is renamed to
//!   `<path>.1` (replacing it) and a new one begins. Two processes that find it full at once
//!   both take the lock file `<path>.lock` and look again: only the first renames, the second
//!   finds the new, small file. A process that opened the old file just before it was renamed
//!   appends its line there, in `<path>.1`: nothing is lost.
//! - **Never in the way.** Nothing is opened until the first record; a failure is logged once
//!   (warn) and never reaches the caller or changes what is delivered or counted.

use crate::sys::log::{tel_log, Level};
use crate::sys::{platform, private_file};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// `audit_max_bytes`'s default (the configuration's, which the tests check it equals).
#[cfg(test)]
pub const DEFAULT_MAX_BYTES: u64 = 8_388_608;

/// What the collector did with the events of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    Sent,
    Rejected,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            AuditOutcome::Sent => "sent",
            AuditOutcome::Rejected => "rejected",
        }
    }
}

/// Most bytes one write holds (unless a single line is longer).
const WRITE_MAX: usize = 64 * 1024;

/// An audit file: where, and how large it may grow before it rotates.
#[derive(Debug)]
pub struct AuditFile {
    path: PathBuf,
    rotated: PathBuf,
    lock: PathBuf,
    max_bytes: u64,
    /// A failure was logged: later ones are not.
    warned: AtomicBool,
}

impl AuditFile {
    /// The audit file at `path`, rotated past `max_bytes`. Touches nothing on disk.
    pub fn open(path: impl Into<PathBuf>, max_bytes: u64) -> AuditFile {
        let path = path.into();
        let with = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        AuditFile {
            rotated: with(".1"),
            lock: with(".lock"),
            path,
            max_bytes,
            warned: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per envelope of `events` (each exactly as sent, one line of JSON),
    /// answered with `outcome` and HTTP `status`, stamped with the time now. Never fails: a
    /// failure is logged once.
    pub fn record<S: AsRef<str>>(&self, outcome: AuditOutcome, status: u16, events: &[S]) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.append(outcome, status, events) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tel_log!(
                    Level::Warn,
                    "audit file {}: {e}; events are delivered and counted as usual (further audit errors are not logged)",
                    self.path.display()
                );
            }
        }
    }

    fn append<S: AsRef<str>>(
        &self,
        outcome: AuditOutcome,
        status: u16,
        events: &[S],
    ) -> io::Result<()> {
        let head = format!(
            "{{\"time_ms\":{},\"outcome\":\"{}\",\"status\":{status},\"event\":",
            crate::sys::clock::now_ms(),
            outcome.as_str()
        );
        let mut file = self.open_file()?;
        let mut chunk = Vec::with_capacity(WRITE_MAX.min(events.len() * 512));
        for event in events {
            let event = event.as_ref();
            let line_len = head.len() + event.len() + 2;
            if !chunk.is_empty() && chunk.len() + line_len > WRITE_MAX {
                file = self.write_chunk(file, &chunk)?;
                chunk.clear();
            }
            chunk.extend_from_slice(head.as_bytes());
            // An envelope is one line; should one hold a line break, it must not split the
            // record (JSON allows whitespace there, and nowhere else a raw one).
            chunk.extend(
                event
                    .bytes()
                    .map(|b| if b == b'\n' || b == b'\r' { b' ' } else { b }),
            );
            chunk.extend_from_slice(b"}\n");
        }
        self.write_chunk(file, &chunk)?;
        Ok(())
    }

    fn open_file(&self) -> io::Result<File> {
        let folder = private_file::folder_of(&self.path);
        if !folder.exists() {
            platform::create_private_dir(&folder)?;
        }
        let file = private_file::open(
            &self.path,
            private_file::options().append(true).create(true),
        )?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = file.metadata()?.permissions().mode();
            if mode & 0o077 != 0 {
                // Someone else's file keeps its mode (the call fails); ours becomes private.
                let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
            }
        }
        Ok(file)
    }

    /// Writes `chunk` (whole lines) with one write, rotating first when it would take the file
    /// past the bound; returns the file to go on with.
    fn write_chunk(&self, mut file: File, chunk: &[u8]) -> io::Result<File> {
        let size = file.metadata()?.len();
        if size > 0 && size + chunk.len() as u64 > self.max_bytes {
            self.rotate(chunk.len() as u64)?;
            file = self.open_file()?;
        }
        let written = file.write(chunk)?;
        if written != chunk.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("only {written} of {} bytes written", chunk.len()),
            ));
        }
        Ok(file)
    }

    /// Renames the file to `<path>.1`, unless another process did so meanwhile: the decision
    /// is taken again under the lock, on the file the path names now.
    fn rotate(&self, incoming: u64) -> io::Result<()> {
        let lock = private_file::open(
            &self.lock,
            private_file::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        lock.lock()?;
        let result = match std::fs::symlink_metadata(&self.path) {
            Ok(m) if m.len() > 0 && m.len() + incoming > self.max_bytes => {
                platform::replace_file(&self.path, &self.rotated)
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        let _ = lock.unlock();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_bound_is_the_configuration_s() {
        let c = crate::model::config::Config::new("YOUR_TENANT_TOKEN-YOUR-KEY").unwrap();
        assert_eq!(c.audit_max_bytes, DEFAULT_MAX_BYTES);
    }
    use serde_json::Value;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tel-audit-{tag}-{}", crate::sys::random::u64()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn envelope(name: &str, n: usize) -> String {
        format!(
            r#"{{"ver":"4.0","name":"{name}","time":"2026-05-07T03:09:12.345Z","iKey":"o:abc","ext":{{"sdk":{{"seq":{n}}}}},"data":{{"n":{n},"s":"x y"}}}}"#
        )
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .map(|s| s.lines().map(str::to_owned).collect())
            .unwrap_or_default()
    }

    #[test]
    fn one_line_per_event_with_the_envelope_as_sent() {
        let d = dir("lines");
        let audit = AuditFile::open(d.join("sub").join("audit.jsonl"), DEFAULT_MAX_BYTES);
        assert!(!audit.path().exists(), "nothing before the first record");
        let before = crate::sys::clock::now_ms();
        audit.record(
            AuditOutcome::Sent,
            200,
            &[envelope("App.A", 1), envelope("App.B", 2)],
        );
        audit.record(AuditOutcome::Rejected, 400, &[envelope("App.C", 3)]);
        audit.record::<String>(AuditOutcome::Sent, 200, &[]);
        let got = lines(audit.path());
        assert_eq!(got.len(), 3);
        for (line, (name, outcome, status, n)) in got.iter().zip([
            ("App.A", "sent", 200, 1),
            ("App.B", "sent", 200, 2),
            ("App.C", "rejected", 400, 3),
        ]) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["outcome"], outcome);
            assert_eq!(v["status"], status);
            let t = v["time_ms"].as_u64().unwrap();
            assert!(t >= before && t <= crate::sys::clock::now_ms());
            // The envelope's own bytes, not a re-serialisation.
            let exact = format!(",\"event\":{}}}", envelope(name, n));
            assert!(line.ends_with(&exact), "{line}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(audit.path()), 0o600);
            assert_eq!(mode(&d.join("sub")), 0o700);
        }
        let _ = std::fs::remove_dir_all(d);
    }

    #[cfg(unix)]
    #[test]
    fn an_existing_file_is_made_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = dir("mode");
        let path = d.join("audit");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        AuditFile::open(&path, DEFAULT_MAX_BYTES).record(AuditOutcome::Sent, 200, &["{}"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let _ = std::fs::remove_dir_all(d);
    }

    #[cfg(unix)]
    #[test]
    fn no_symbolic_link_is_followed() {
        let d = dir("link");
        let target = d.join("target");
        std::fs::write(&target, "mine\n").unwrap();
        let link = d.join("audit");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        AuditFile::open(&link, DEFAULT_MAX_BYTES).record(AuditOutcome::Sent, 200, &["{}"]);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn rotation_keeps_one_previous_file() {
        let d = dir("rotate");
        let path = d.join("audit");
        let line_len = {
            let probe = AuditFile::open(d.join("probe"), DEFAULT_MAX_BYTES);
            probe.record(AuditOutcome::Sent, 200, &[envelope("App.Rotate", 100)]);
            std::fs::metadata(probe.path()).unwrap().len()
        };
        // Room for three lines a file.
        let audit = AuditFile::open(&path, line_len * 3);
        for n in 100..108 {
            audit.record(AuditOutcome::Sent, 200, &[envelope("App.Rotate", n)]);
        }
        let seq = |l: &String| {
            serde_json::from_str::<Value>(l).unwrap()["event"]["data"]["n"]
                .as_u64()
                .unwrap()
        };
        let current: Vec<u64> = lines(&path).iter().map(seq).collect();
        let previous: Vec<u64> = lines(&d.join("audit.1")).iter().map(seq).collect();
        assert_eq!(previous, [103, 104, 105], "the older .1 was replaced");
        assert_eq!(current, [106, 107]);
        assert!(std::fs::metadata(&path).unwrap().len() <= line_len * 3);
        // A batch larger than the bound still goes out whole, into a file of its own.
        let big: Vec<String> = (200..210).map(|n| envelope("App.Rotate", n)).collect();
        audit.record(AuditOutcome::Sent, 200, &big);
        assert_eq!(lines(&path).len(), 10);
        let _ = std::fs::remove_dir_all(d);
    }

    static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    extern "C" fn collect(_level: i32, message: *const std::ffi::c_char, _: *mut std::ffi::c_void) {
        // SAFETY: the library passes a NUL-terminated line valid for the call.
        let line = unsafe { std::ffi::CStr::from_ptr(message) }
            .to_string_lossy()
            .into_owned();
        LOGGED.lock().unwrap().push(line);
    }

    #[test]
    fn a_failing_write_is_logged_once_and_goes_no_further() {
        let d = dir("fail");
        // A folder where the file should be: every open fails.
        let path = d.join("audit-is-a-folder");
        std::fs::create_dir_all(&path).unwrap();
        crate::sys::log::set_callback(Some(collect), 2, std::ptr::null_mut());
        let audit = AuditFile::open(&path, DEFAULT_MAX_BYTES);
        for _ in 0..3 {
            audit.record(AuditOutcome::Sent, 200, &["{}"]);
        }
        crate::sys::log::set_callback(None, 0, std::ptr::null_mut());
        let name = path.display().to_string();
        let ours: Vec<String> = LOGGED
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&name))
            .cloned()
            .collect();
        assert_eq!(ours.len(), 1, "{ours:?}");
        assert!(ours[0].contains("audit file"), "{}", ours[0]);
        let _ = std::fs::remove_dir_all(d);
    }
}
