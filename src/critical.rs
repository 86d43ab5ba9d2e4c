//! Durable `critical` events (abi.md, "Priority"): each one is appended to this session's own
//! critical-events file before `tel_log_ex` returns.
//!
//! The file is a claim file of the cache (`F.claim-<16 hex>-critical`, see docs/cache.md): the
//! session holds its OS lock while it lives, so if the process dies (even by SIGKILL right after
//! the call) the next process using the cache merges it back and delivers the events. While the
//! session lives, the file is emptied whenever every event in it is resolved; at shutdown it is
//! rewritten with exactly the critical events still unresolved and left for the next process
//! (that is how they are persisted: never also written to the cache file, so never twice).

use crate::cache::{mark, Cache, ClosedInForkedChild};
use crate::platform;
use crate::priority::Priority;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the first critical event of a session waits for the cache lock to create the file.
const CREATE_LOCK_WAIT: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct CriticalLog {
    /// A forked child closes the file: it must not keep this session looking alive. (First,
    /// so that it is dropped before the file is closed.)
    _fork: ClosedInForkedChild,
    path: PathBuf,
    file: File,
    /// Events appended and not yet resolved.
    outstanding: usize,
}

impl CriticalLog {
    /// Creates and locks a new critical-events file, under the cache lock so that no other
    /// process can take it for a dead session's claim between its creation and its lock.
    pub fn create(cache: &Cache) -> io::Result<CriticalLog> {
        let files = cache.files().clone();
        cache.locked(Instant::now() + CREATE_LOCK_WAIT, || {
            let mut name = files.cache.clone().into_os_string();
            name.push(format!(".claim-{:016x}-critical", crate::random::u64()));
            let path = PathBuf::from(name);
            let file = platform::private_open_options()
                .append(true)
                .create_new(true)
                .open(&path)?;
            // Held for the session's lifetime: a free lock means its owner is gone.
            file.lock()?;
            Ok(CriticalLog {
                _fork: ClosedInForkedChild::new(&file),
                path,
                file,
                outstanding: 0,
            })
        })
    }

    /// False once the file was deleted under the session (`tel_purge`): a new one is needed.
    #[cfg(unix)]
    pub fn usable(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map(|m| m.nlink() > 0).unwrap_or(false)
    }

    /// Windows refuses to delete a file that is open, so it is never deleted under us.
    #[cfg(not(unix))]
    pub fn usable(&self) -> bool {
        true
    }

    /// Appends one event (one `write`, no `fsync`: it survives the death of the process, which
    /// is what the contract asks; a power cut is another matter).
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        let mut out = mark(line, Priority::Critical);
        out.push('\n');
        (&self.file).write_all(out.as_bytes())?;
        self.outstanding += 1;
        Ok(())
    }

    /// `n` of the appended events are resolved; once none is left the file is emptied.
    pub fn resolved(&mut self, n: usize) {
        self.outstanding = self.outstanding.saturating_sub(n);
        if self.outstanding == 0 {
            let _ = self.file.set_len(0);
        }
    }

    /// Shutdown: the file keeps exactly `lines` (the critical events still unresolved) and is
    /// released for the next process, or deleted when there are none. Fails when the file can no
    /// longer hold them (deleted by a purge, disk full): the caller then persists them itself.
    pub fn keep_and_release(self, lines: &[&str]) -> io::Result<()> {
        if lines.is_empty() {
            let _ = self.file.set_len(0);
            let _ = std::fs::remove_file(&self.path);
            return Ok(());
        }
        if !self.usable() {
            return Err(io::Error::other("the critical-events file was deleted"));
        }
        self.file.set_len(0)?;
        let mut out = Vec::new();
        for l in lines {
            out.extend_from_slice(mark(l, Priority::Critical).as_bytes());
            out.push(b'\n');
        }
        let r = (&self.file).write_all(&out);
        if r.is_err() {
            let _ = self.file.set_len(0);
        }
        r
    }

    /// Releases the file without keeping anything (nothing critical is left).
    pub fn discard(self) {
        let _ = self.file.set_len(0);
        let _ = std::fs::remove_file(&self.path);
    }
}
