//! The on-disk cache: what a process could not deliver, for a later process to deliver.
//!
//! File format and locking protocol: see `docs/cache.md`. In short, `<name>.cache` holds one
//! envelope per line exactly as it would be sent; every read-modify-write happens under an OS
//! lock on `<name>.cache.lock` and replaces the file through a temporary file and an atomic
//! rename; replay moves entries into this session's own `<name>.cache.claim-<id>` file, which
//! the session keeps locked while it lives, so a dead session's claims are recognised (their
//! lock is free) and merged back by the next one.

mod claim;
mod lines;

use crate::logging::{tel_log, Level};
use crate::platform;
use crate::priority::Priority;
use crate::private_file::{self, Existing};
#[cfg(unix)]
pub(crate) use claim::close_claims_in_child;
use claim::Claim;
pub(crate) use claim::ClosedInForkedChild;
use lines::{envelope_ikey, read_capped_line, starts_like_a_cache, ENVELOPE_START};
use std::collections::HashSet;
use std::fs::TryLockError;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// How long the worker waits for another process's lock before giving up this round.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Lines of other tenants held while a file is rewritten: at most this, or `cache_max_bytes` if
/// larger; past it the file is left alone as unusable.
const MIN_FOREIGN_BUDGET: u64 = 4 << 20;

/// Files beside a cache file.
#[derive(Debug, Clone)]
pub struct CacheFiles {
    pub cache: PathBuf,
    pub lock: PathBuf,
    pub kill: PathBuf,
    pub dir: PathBuf,
}

impl CacheFiles {
    pub fn new(cache: PathBuf) -> Self {
        let sibling = |suffix: &str| {
            let mut s = cache.clone().into_os_string();
            s.push(suffix);
            PathBuf::from(s)
        };
        CacheFiles {
            lock: sibling(".lock"),
            kill: sibling(".kill"),
            dir: private_file::folder_of(&cache),
            cache,
        }
    }

    fn file_name(path: &Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn claim_prefix(&self) -> String {
        format!("{}.claim-", Self::file_name(&self.cache))
    }
}

/// What one call changed, for the counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub written: usize,
    pub evicted: usize,
    /// Entries of this tenant that fail the checks `tel_log` makes (size, name, JSON, numbers,
    /// a CR): taken out of the cache without being sent, and counted as replayed and rejected.
    pub rejected: usize,
}

/// The worker that uses a cache, as a shutdown may take over from it: once taken over it
/// stops waiting for the lock and reading, and writes nothing (the shutdown then gets the lock
/// at once and resolves what is left). A write, once begun, is waited for by the shutdown.
pub trait Owner: Send + Sync {
    /// A shutdown took over: stop, leave everything as it is.
    fn taken_over(&self) -> bool;
    /// Called under the cache lock before the first write; false when a shutdown took over
    /// (nothing is written then). Once it answered true, a shutdown waits for the owner.
    fn begin_write(&self) -> bool;
    /// Called under the cache lock as soon as a claim file is created, before anything is
    /// written to it: a shutdown that takes over later deletes it (see [`ClaimHandle`]). False
    /// when a shutdown took over already: the new file is deleted at once and nothing is
    /// claimed.
    fn adopt_claim(&self, claim: ClaimHandle) -> bool;
}

/// A session's claim file as a shutdown that takes over from a stuck worker needs it: the
/// worker's own descriptor (whose lock says the session is alive) and the file's path.
#[derive(Debug, Clone)]
pub struct ClaimHandle {
    file: Weak<std::fs::File>,
    path: PathBuf,
}

impl ClaimHandle {
    /// The claim, while the worker's descriptor is open.
    pub fn upgrade(&self) -> Option<TakenClaim> {
        self.file.upgrade().map(|file| TakenClaim {
            file,
            path: self.path.clone(),
        })
    }
}

/// A stuck worker's claim file, held open (so still locked) by a shutdown that took over.
#[derive(Debug)]
pub struct TakenClaim {
    file: Arc<std::fs::File>,
    path: PathBuf,
}

impl TakenClaim {
    /// Once every event the shutdown took over is resolved: the claim lists only entries that
    /// were in hand (now persisted, or counted as dropped), so it goes. It is emptied, then
    /// deleted while its lock is still held: no other process takes it for a dead session's
    /// claim meanwhile, and the worker, once taken over, never writes to it again. (Merged
    /// back by a later process, its entries would be taken up a second time.)
    pub fn delete(self) {
        if self.file.set_len(0).is_ok() {
            let _ = self.file.sync_data();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn taken_over() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "a shutdown took over: nothing written",
    )
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

/// An entry's line and its event time (0 when unreadable: such entries sort as oldest).
struct Entry {
    line: String,
    time_ms: u64,
    /// From the line's priority mark (see [`mark`]).
    priority: Priority,
}

impl Entry {
    fn new(line: String) -> Entry {
        Entry {
            time_ms: crate::envelope::envelope_time_ms(&line).unwrap_or(0),
            priority: unmark(&line).1,
            line,
        }
    }
}

/// The line of a cache entry with its priority: `high` adds one trailing space, `critical`
/// two; `normal` lines are the bare envelope, as 0.1 wrote every line. Trailing whitespace is
/// still one valid JSON object, so 0.1 readers keep (and send) marked lines as they are.
pub fn mark(line: &str, priority: Priority) -> String {
    // Room for the newline a file adds after it.
    let mut s = String::with_capacity(line.len() + 3);
    s.push_str(line);
    match priority {
        Priority::Normal => {}
        Priority::High => s.push(' '),
        Priority::Critical => s.push_str("  "),
    }
    s
}

/// The envelope of a cache line and the priority its mark says (see [`mark`]).
pub fn unmark(line: &str) -> (&str, Priority) {
    let bare = line.trim_end_matches(' ');
    let priority = match line.len() - bare.len() {
        0 => Priority::Normal,
        1 => Priority::High,
        _ => Priority::Critical,
    };
    (bare, priority)
}

/// What reading the cache file (and dead sessions' claims) found.
#[derive(Default)]
struct Contents {
    entries: Vec<Entry>,
    /// Bytes of `entries`, lines and newlines.
    entry_bytes: u64,
    /// Other tenants' lines, written back as they are.
    foreign: Vec<String>,
    foreign_bytes: u64,
    /// Entries evicted while reading, to keep memory within twice `cache_max_bytes`.
    evicted: usize,
    /// Lines dropped as unreadable (garbage, torn, overlong): no event is lost with them.
    skipped: usize,
}

/// What a line of a cache file is.
enum Class {
    Ours(Entry),
    Foreign(String),
    Garbage,
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

    /// Reads the cache file into `into`. A missing file is empty. A file that is not a regular
    /// file, or whose first line is not an envelope (a `cache_path` naming some other file), is
    /// an error and is left untouched: it is not ours to rewrite or delete.
    fn read_cache(&self, into: &mut Contents) -> io::Result<()> {
        let Some(f) = private_file::open_read(&self.files.cache)? else {
            return Ok(());
        };
        let mut reader = BufReader::with_capacity(64 * 1024, f);
        if !starts_like_a_cache(&mut reader)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is not a cache file (its first line is not a Common Schema 4.0 envelope); left untouched",
            ));
        }
        self.read_lines(reader, into)
    }

    /// Reads lines one at a time, holding at most one line (of at most `max_line` bytes) besides
    /// what it keeps; this tenant's entries past twice `max_bytes` are evicted as they come.
    fn read_lines(&self, mut reader: impl BufRead, into: &mut Contents) -> io::Result<()> {
        let foreign_budget = self.max_bytes.max(MIN_FOREIGN_BUDGET);
        let mut buf = Vec::new();
        while let Some(fits) = read_capped_line(&mut reader, self.max_line, &mut buf)? {
            if self.stopped() {
                return Err(taken_over());
            }
            if !fits {
                into.skipped += 1; // longer than any event may be
                continue;
            }
            if buf.is_empty() {
                continue;
            }
            match self.classify(&buf) {
                Class::Ours(entry) => {
                    into.entry_bytes += entry.line.len() as u64 + 1;
                    into.entries.push(entry);
                    if into.entry_bytes > self.max_bytes.saturating_mul(2) {
                        into.evicted += self.enforce_bound(&mut into.entries);
                        into.entry_bytes = bytes_of(&into.entries);
                    }
                }
                Class::Foreign(line) => {
                    into.foreign_bytes += line.len() as u64 + 1;
                    if into.foreign_bytes > foreign_budget {
                        return Err(io::Error::other(
                            "holds more lines of other tenants than the cache may hold; left as it is",
                        ));
                    }
                    into.foreign.push(line);
                }
                Class::Garbage => into.skipped += 1,
            }
        }
        Ok(())
    }

    /// Sorts a line: this tenant's entry, another tenant's, or garbage. The tenant is read from
    /// the envelope's `iKey` by a real parse (data that merely contains the text
    /// `"iKey":"o:<tenant>"` does not make a line this tenant's). Whether an entry may be sent
    /// is checked when it is claimed ([`Cache::check_entry`]).
    fn classify(&self, bytes: &[u8]) -> Class {
        // Every line this library writes begins so (which keeps the first line of every file
        // it writes recognisable); anything else is not an entry of any tenant.
        if !bytes.starts_with(ENVELOPE_START) {
            return Class::Garbage;
        }
        let Ok(line) = std::str::from_utf8(bytes) else {
            return Class::Garbage;
        };
        let Some(ikey) = envelope_ikey(line) else {
            // Not a JSON object with a string iKey (an unterminated last line: a torn write).
            return Class::Garbage;
        };
        if ikey != self.tenant_ikey {
            return Class::Foreign(line.to_owned());
        }
        Class::Ours(Entry::new(line.to_owned()))
    }

    /// The checks `tel_log` makes, on a cached line: its size, one line (no CR), valid JSON
    /// whose numbers a double can hold, version 4.0, a valid name, a readable time, an object
    /// as `data`. A line that fails them was never written by `tel_log`: sent, it would get the
    /// whole batch refused.
    fn check_entry(&self, line: &str) -> Result<(), String> {
        if line.len() > self.max_line {
            return Err(format!("longer than event_max_bytes ({})", self.max_line));
        }
        if line.contains('\r') {
            return Err("holds a carriage return".into());
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
        if v.get("ver").and_then(|v| v.as_str()) != Some("4.0") {
            return Err("not a Common Schema 4.0 envelope".into());
        }
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("");
        crate::envelope::check_name(name).map_err(|e| e.message)?;
        if !v.get("data").is_some_and(|d| d.is_object()) {
            return Err("its data is not a JSON object".into());
        }
        let time = v.get("time").and_then(|t| t.as_str()).unwrap_or("");
        crate::clock::parse_iso8601(time)
            .map(|_| ())
            .ok_or_else(|| "its time is unreadable".to_owned())
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

    /// Drops entries until the file fits `max_bytes`, lower priorities first and oldest first
    /// within a priority; returns how many went.
    fn enforce_bound(&self, entries: &mut Vec<Entry>) -> usize {
        let mut total: u64 = entries.iter().map(|e| e.line.len() as u64 + 1).sum();
        if total <= self.max_bytes {
            return 0;
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by_key(|&i| (entries[i].priority, entries[i].time_ms, i));
        let mut drop = vec![false; entries.len()];
        let mut evicted = 0;
        for i in order {
            if total <= self.max_bytes {
                break;
            }
            total -= entries[i].line.len() as u64 + 1;
            drop[i] = true;
            evicted += 1;
        }
        let mut i = 0;
        entries.retain(|_| {
            let keep = !drop[i];
            i += 1;
            keep
        });
        evicted
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
                remove_unnamed_claim(&path);
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
            if self.read_lines(reader, into).is_ok() {
                recovered.push(path);
            }
        }
        recovered
    }

    /// Appends `lines` (this session's undeliverable events, marked by [`mark`]), evicting past
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
            let evicted = contents.evicted + self.enforce_bound(&mut entries);
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
                let handle = ClaimHandle {
                    file: Arc::downgrade(&claim.file),
                    path: claim.path.clone(),
                };
                if self.owner.as_ref().is_some_and(|o| !o.adopt_claim(handle)) {
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
                    crate::device::FILE_NAME,
                ],
            );
            let mut contents = Contents::default();
            self.read_cache(&mut contents)?;
            let recovered = self.recover_dead_claims(Some(&claim.path), &mut contents);
            #[cfg(debug_assertions)]
            self.claim_gate();
            let now = crate::clock::now_ms();
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
            let before = entries.len();
            let oldest_allowed = now.saturating_sub(self.max_age_ms);
            entries.retain(|e| e.time_ms >= oldest_allowed);
            let mut change = Change {
                written: 0,
                evicted: contents.evicted + before - entries.len(),
                rejected: 0,
            };
            change.evicted += self.enforce_bound(&mut entries);
            let mut taken = Vec::new();
            let mut bytes = 0;
            let mut rest = Vec::with_capacity(entries.len());
            for e in entries {
                let fits = taken.len() < max_events
                    && (taken.is_empty() || bytes + e.line.len() < max_bytes);
                if fits && !skip(&e.line) {
                    if self.check_entry(&e.line).is_err() {
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

/// A critical-events file not yet under its claim name (`F.claim-<id>-critical.tmp`, see
/// `crate::critical`): never merged, and removed once its lock is free (its writer died before
/// naming it). It never holds the only copy of an entry: a new file is empty until named, and a
/// rewrite's copies stay in the old file until the new one is named.
fn remove_unnamed_claim(path: &Path) {
    let Ok(Some(f)) = private_file::open_read(path) else {
        return;
    };
    if f.try_lock().is_ok() {
        drop(f);
        let _ = std::fs::remove_file(path);
    }
}

fn bytes_of(entries: &[Entry]) -> u64 {
    entries.iter().map(|e| e.line.len() as u64 + 1).sum()
}

/// A cheap fingerprint of a line, to recognise entries this session put back.
pub fn fingerprint(line: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

pub type Fingerprints = HashSet<u64>;

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
