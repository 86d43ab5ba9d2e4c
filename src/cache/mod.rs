//! The on-disk cache: what a process could not deliver, for a later process to deliver.
//!
//! File format and locking protocol: see `docs/cache.md`. In short, `<name>.cache` holds one
//! envelope per line exactly as it would be sent; every read-modify-write happens under an OS
//! lock on `<name>.cache.lock` and replaces the file through a temporary file and an atomic
//! rename; replay moves entries into this session's own `<name>.cache.claim-<id>` file, which
//! the session keeps locked while it lives, so a dead session's claims are recognised (their
//! lock is free) and merged back by the next one.
//!
//! Here, [`Cache`]: the lock, the rewrites, the claim, the purge. Beside it, one concern each:
//! `files` (the names beside a cache file), `entry` (a line and its priority mark), `lines`
//! (reading a file within a memory bound, telling whose a line is), `bound` (what a file may
//! hold), `claim` (this session's claim file, and what a shutdown takes over of it), `owner`
//! (the worker a shutdown may take over from), `critical_file` (the cache's side of the
//! critical-events files) and `device` (the device id file).

mod bound;
pub(crate) mod claim;
pub(crate) mod consent;
pub(crate) mod critical_file;
pub(crate) mod device;
pub(crate) mod entry;
pub(crate) mod files;
mod lines;
pub(crate) mod owner;

use crate::model::envelope::check_line;
use crate::sys::log::{tel_log, Level};
use crate::sys::platform;
use crate::sys::private_file::{self, Existing};
use bound::{evict_to, expire};
use claim::{Claim, ClosedInForkedChild};
use entry::{unmark, Entry};
use files::CacheFiles;
use lines::{Contents, Reader};
use owner::{taken_over, Owner};
use std::collections::HashSet;
use std::fs::TryLockError;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the worker waits for another process's lock before giving up this round.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// What one call changed, for the counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub written: usize,
    pub evicted: usize,
    /// Entries of this tenant that fail the checks `tel_log` makes (size, name, JSON, numbers,
    /// a CR): taken out of the cache without being sent, and counted as replayed and rejected.
    pub rejected: usize,
}

/// A session's handle on its tenant's cache file.
pub struct Cache {
    files: CacheFiles,
    tenant_ikey: String,
    max_bytes: u64,
    max_age_ms: u64,
    /// Longest line read back: `event_max_bytes`, as for `tel_log`.
    max_line: usize,
    claim: Option<Claim>,
    owner: Option<Arc<dyn Owner>>,
    /// Logged once: the first failure of each kind is worth a debug line, not every retry.
    warned: AtomicBool,
}

impl Cache {
    pub fn new(files: CacheFiles, tenant: &str, max_bytes: u64, max_age_s: u64) -> Self {
        Cache {
            files,
            tenant_ikey: format!("o:{tenant}"),
            max_bytes,
            max_age_ms: max_age_s.saturating_mul(1000),
            max_line: 1_000_000,
            claim: None,
            owner: None,
            warned: AtomicBool::new(false),
        }
    }

    /// The worker's cache: a shutdown that takes over from `owner` stops it (see [`Owner`]).
    pub fn owned_by(mut self, owner: Arc<dyn Owner>) -> Self {
        self.owner = Some(owner);
        self
    }

    fn stopped(&self) -> bool {
        self.owner.as_ref().is_some_and(|o| o.taken_over())
    }

    fn begin_write(&self) -> io::Result<()> {
        match &self.owner {
            Some(o) if !o.begin_write() => Err(taken_over()),
            _ => Ok(()),
        }
    }

    /// Sets the longest line read back (the session's `event_max_bytes`; 1,000,000 unless set).
    pub fn with_event_max_bytes(mut self, max_line: usize) -> Self {
        self.max_line = max_line;
        self
    }

    pub fn files(&self) -> &CacheFiles {
        &self.files
    }

    fn note_failure(&self, what: &str, e: &io::Error) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tel_log!(
                Level::Debug,
                "cache {} at {}: {e} (further cache errors are not logged)",
                what,
                self.files.cache.display()
            );
        }
    }

    /// How this session reads a cache file or a dead session's claim.
    fn reader(&self) -> Reader<'_> {
        Reader {
            tenant_ikey: &self.tenant_ikey,
            max_line: self.max_line,
            max_bytes: self.max_bytes,
            owner: self.owner.as_deref(),
        }
    }

    /// Reads the cache file into `into` (see [`Reader::read_file`]).
    fn read_cache(&self, into: &mut Contents) -> io::Result<()> {
        self.reader().read_file(&self.files.cache, into)
    }

    /// Runs `f` holding the cache lock, waiting for it at most until `deadline`.
    pub(crate) fn locked<R>(
        &self,
        deadline: Instant,
        f: impl FnOnce() -> io::Result<R>,
    ) -> io::Result<R> {
        platform::create_private_dir(&self.files.dir)?;
        let lock = private_file::open(
            &self.files.lock,
            private_file::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false),
        )?;
        // A child forked while the lock is held must not keep it after this process is gone.
        let _fork = ClosedInForkedChild::new(&lock);
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if self.stopped() => return Err(taken_over()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "another process holds the cache lock",
                    ))
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
        }
        let r = f();
        let _ = lock.unlock();
        r
    }

    /// Writes the new content of the cache file: other tenants' lines as they were, then
    /// `entries`. Nothing left: the file goes away.
    fn write_cache(&self, foreign: &[String], entries: &[Entry]) -> io::Result<()> {
        let lines: Vec<&str> = foreign
            .iter()
            .map(String::as_str)
            .chain(entries.iter().map(|e| e.line.as_str()))
            .collect();
        if lines.is_empty() {
            return match std::fs::remove_file(&self.files.cache) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        private_file::write(&self.files.cache, Existing::Replace, |out| {
            for l in &lines {
                out.write_all(l.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Ok(())
        })
    }

    /// Merges the claims of sessions that died (their claim file's lock is free) back into
    /// `into`; returns the claim files to delete once the cache is written.
    fn recover_dead_claims(&self, own: Option<&Path>, into: &mut Contents) -> Vec<PathBuf> {
        let prefix = self.files.claim_prefix();
        let mut recovered = Vec::new();
        let Ok(dir) = std::fs::read_dir(&self.files.dir) else {
            return recovered;
        };
        for item in dir.flatten() {
            let name = item.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(&prefix) {
                continue;
            }
            let path = item.path();
            if name.ends_with(".tmp") {
                critical_file::remove_unnamed_claim(&path);
                continue;
            }
            if Some(path.as_path()) == own {
                continue;
            }
            // Never a FIFO or a device: such a "claim" is left alone.
            let Ok(Some(f)) = private_file::open_read(&path) else {
                continue;
            };
            if f.try_lock().is_err() {
                continue; // its session is alive
            }
            // Release before reading: Windows enforces the lock against the read through the
            // other handle. The cache lock held here keeps every other process out meanwhile.
            let _ = f.unlock();
            // Only a claim that was read goes away; one that cannot be read stays for later.
            let reader = BufReader::with_capacity(64 * 1024, f);
            if self.reader().read_lines(reader, into).is_ok() {
                recovered.push(path);
            }
        }
        recovered
    }

    /// Appends `lines` (this session's undeliverable events, marked by [`mark`](entry::mark)), evicting past
    /// `max_bytes` (lower priorities first, then the oldest). Waits for the lock until `deadline` at most.
    pub fn persist(&self, lines: &[&str], deadline: Instant) -> io::Result<Change> {
        if lines.is_empty() {
            return Ok(Change::default());
        }
        let r = self.locked(deadline, || {
            let mut contents = Contents::default();
            self.read_cache(&mut contents)?;
            let mut entries = contents.entries;
            // A line already there is not written twice (a shutdown that took over from a
            // worker writing the same batch).
            let present: HashSet<&str> = entries.iter().map(|e| e.line.as_str()).collect();
            let new: Vec<Entry> = lines
                .iter()
                .filter(|l| !present.contains(**l))
                .map(|l| Entry::new((*l).to_owned()))
                .collect();
            entries.extend(new);
            let evicted = contents.evicted + evict_to(self.max_bytes, &mut entries);
            self.begin_write()?;
            self.write_cache(&contents.foreign, &entries)?;
            Ok(Change {
                written: lines.len(),
                evicted,
                rejected: 0,
            })
        });
        match &r {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => self.note_failure("not written", e),
            _ => {}
        }
        r
    }

    /// Moves up to `max_events` entries (and `max_bytes` bytes) that `skip` does not exclude
    /// from the cache into this session's claim file, after merging dead sessions' claims back
    /// and dropping expired entries. Returns the claimed lines and how many entries expired or
    /// were evicted, and how many were set aside as unsendable (see [`Change::rejected`]).
    pub fn claim(
        &mut self,
        max_events: usize,
        max_bytes: usize,
        skip: &dyn Fn(&str) -> bool,
    ) -> io::Result<(Vec<String>, Change)> {
        let deadline = Instant::now() + LOCK_WAIT;
        // The claim file is created and locked under the cache lock: no other process can see
        // it unlocked, take it for a dead session's and delete it.
        // Out of `self` while the lock is held, and put back whatever happens.
        let mut held = self.claim.take();
        let r = self.locked(deadline, || {
            if held.is_none() {
                let claim = Claim::create(&self.files)?;
                if self
                    .owner
                    .as_ref()
                    .is_some_and(|o| !o.adopt_claim(claim.handle()))
                {
                    let _ = std::fs::remove_file(&claim.path);
                    return Err(taken_over());
                }
                held = Some(claim);
            }
            let claim = held.as_ref().expect("created above");
            private_file::remove_orphaned_temps(
                &self.files.dir,
                &CacheFiles::file_name(&self.files.cache),
                &[
                    &CacheFiles::file_name(&self.files.kill),
                    crate::cache::device::FILE_NAME,
                ],
            );
            let mut contents = Contents::default();
            self.read_cache(&mut contents)?;
            let recovered = self.recover_dead_claims(Some(&claim.path), &mut contents);
            #[cfg(debug_assertions)]
            self.claim_gate();
            let now = crate::sys::clock::now_ms();
            let mut entries = std::mem::take(&mut contents.entries);
            if !recovered.is_empty() {
                // A line both in the cache and in a dead claim (written back by a shutdown
                // that took over from a worker stuck in a request) is one entry, sent once.
                let mut seen = HashSet::new();
                let keep: Vec<bool> = entries
                    .iter()
                    .map(|e| seen.insert(unmark(&e.line).0))
                    .collect();
                let mut i = 0;
                entries.retain(|_| {
                    i += 1;
                    keep[i - 1]
                });
            }
            let mut change = Change {
                written: 0,
                evicted: contents.evicted + expire(now, self.max_age_ms, &mut entries),
                rejected: 0,
            };
            change.evicted += evict_to(self.max_bytes, &mut entries);
            let mut taken = Vec::new();
            let mut bytes = 0;
            let mut rest = Vec::with_capacity(entries.len());
            for e in entries {
                let fits = taken.len() < max_events
                    && (taken.is_empty() || bytes + e.line.len() < max_bytes);
                if fits && !skip(&e.line) {
                    if check_line(&e.line, self.max_line).is_err() {
                        change.rejected += 1; // set aside: out of the cache, never sent
                        continue;
                    }
                    bytes += e.line.len() + 1;
                    taken.push(e);
                } else {
                    rest.push(e);
                }
            }
            let changed = !taken.is_empty()
                || change.evicted > 0
                || change.rejected > 0
                || contents.skipped > 0
                || !recovered.is_empty();
            if changed {
                self.begin_write()?;
            }
            if !taken.is_empty() {
                // Claim first, then remove from the cache: a crash in between duplicates
                // entries, never loses them.
                claim.write(&taken)?;
            }
            if changed {
                self.write_cache(&contents.foreign, &rest)?;
            }
            for path in recovered {
                let _ = std::fs::remove_file(path);
            }
            Ok((taken.into_iter().map(|e| e.line).collect(), change))
        });
        self.claim = held;
        match &r {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.note_failure("not replayed", e)
            }
            _ => {}
        }
        r
    }

    /// Debug builds only, for tests: while the file that `TEL_TEST_CLAIM_GATE` names exists, a
    /// claim waits with the cache lock held, as one reading a large cache on a loaded machine
    /// does (and like that reading, it stops when a shutdown took over).
    #[cfg(debug_assertions)]
    fn claim_gate(&self) {
        if let Some(gate) = std::env::var_os("TEL_TEST_CLAIM_GATE") {
            while Path::new(&gate).exists() && !self.stopped() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The claimed entries are resolved (delivered, rejected, dropped or persisted back).
    pub fn release_claim(&self) {
        if let Some(c) = &self.claim {
            let _ = c.file.set_len(0);
        }
    }

    /// Deletes every entry of the tenant (a kill window); returns their lines.
    pub fn purge(&self) -> io::Result<Vec<String>> {
        let deadline = Instant::now() + LOCK_WAIT;
        self.release_claim();
        self.locked(deadline, || {
            let mut contents = Contents::default();
            self.read_cache(&mut contents)?;
            let own = self.claim.as_ref().map(|c| c.path.as_path());
            let recovered = self.recover_dead_claims(own, &mut contents);
            self.write_cache(&contents.foreign, &[])?;
            for path in recovered {
                let _ = std::fs::remove_file(path);
            }
            Ok(contents.entries.into_iter().map(|e| e.line).collect())
        })
    }

    /// Deletes this tenant's entries of the cache file, keeping other tenants' lines; a file
    /// that is not a cache is not touched. Called with the cache lock held (`tel_purge`).
    pub(crate) fn delete_entries_locked(&self) -> io::Result<()> {
        let mut contents = Contents::default();
        match self.read_cache(&mut contents) {
            Ok(()) => self.write_cache(&contents.foreign, &[]),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(()), // not a cache
            Err(e) => Err(e),
        }
    }

    /// Ends the session's use of the cache: its (empty) claim file goes away. A cache dropped
    /// without `close` leaves its claim file for the next process to merge back (a worker that
    /// a timed-out shutdown left behind does that: at worst its batch is delivered twice).
    pub fn close(&mut self) {
        if let Some(c) = self.claim.take() {
            let _ = c.file.set_len(0);
            let path = c.path.clone();
            drop(c);
            let _ = std::fs::remove_file(path);
        }
    }

    /// After `tel_purge` deleted this session's claim file, the next claim needs a new one:
    /// entries written to the deleted file would be lost with the process.
    pub fn forget_purged_claim(&mut self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let purged = self
                .claim
                .as_ref()
                .is_some_and(|c| c.file.metadata().is_ok_and(|m| m.nlink() == 0));
            if purged {
                self.claim = None;
            }
        }
    }

    /// This tenant's entries, without changing anything (for diagnostics).
    pub fn inspect(&self) -> io::Result<Vec<String>> {
        let mut contents = Contents::default();
        self.read_cache(&mut contents)?;
        Ok(contents.entries.into_iter().map(|e| e.line).collect())
    }
}

/// Deletes a tenant's cache file (opt-out), writing nothing else. A file that is not a cache is
/// not touched; one that also holds other tenants' lines keeps them (rewritten under the lock).
pub fn delete(files: &CacheFiles, tenant: &str) {
    let cache = Cache::new(files.clone(), tenant, u64::MAX, u64::MAX);
    let mut contents = Contents::default();
    match cache.read_cache(&mut contents) {
        Ok(()) if !contents.foreign.is_empty() => {
            let _ = cache.purge();
        }
        Ok(()) => {
            let _ = std::fs::remove_file(&files.cache);
        }
        Err(_) => {}
    }
}
