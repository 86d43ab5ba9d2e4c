//! The on-disk cache: what a process could not deliver, for a later process to deliver.
//!
//! File format and locking protocol: see `docs/cache.md`. In short, `<name>.cache` holds one
//! envelope per line exactly as it would be sent; every read-modify-write happens under an OS
//! lock on `<name>.cache.lock` and replaces the file through a temporary file and an atomic
//! rename; replay moves entries into this session's own `<name>.cache.claim-<id>` file, which
//! the session keeps locked while it lives, so a dead session's claims are recognised (their
//! lock is free) and merged back by the next one.

use crate::logging::{tel_log, Level};
use crate::platform;
use crate::priority::Priority;
use std::collections::HashSet;
use std::fs::{File, TryLockError};
use std::io::{self, BufRead, BufReader, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long the worker waits for another process's lock before giving up this round.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// Longest line read back; anything longer is skipped as garbage.
const MAX_LINE: usize = 64 * 1024 * 1024;

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
        let dir = match cache.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        CacheFiles {
            lock: sibling(".lock"),
            kill: sibling(".kill"),
            dir,
            cache,
        }
    }

    pub(crate) fn claim_prefix(&self) -> String {
        format!(
            "{}.claim-",
            self.cache
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        )
    }
}

/// What one call changed, for the counters.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Change {
    pub written: usize,
    pub evicted: usize,
}

/// A session's handle on its tenant's cache file.
pub struct Cache {
    files: CacheFiles,
    tenant_ikey: String,
    max_bytes: u64,
    max_age_ms: u64,
    claim: Option<(PathBuf, File)>,
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
    let mut s = String::with_capacity(line.len() + 2);
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

impl Cache {
    pub fn new(files: CacheFiles, tenant: &str, max_bytes: u64, max_age_s: u64) -> Self {
        Cache {
            files,
            tenant_ikey: format!("\"iKey\":\"o:{tenant}\""),
            max_bytes,
            max_age_ms: max_age_s.saturating_mul(1000),
            claim: None,
            warned: AtomicBool::new(false),
        }
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
        let lock = platform::private_open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.files.lock)?;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
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

    /// Reads the usable entries of a file. Torn lines, garbage, invalid UTF-8 and envelopes of
    /// another tenant are skipped; a missing file is empty; a directory in its place is an error.
    fn read_entries(&self, path: &Path) -> io::Result<(Vec<Entry>, usize)> {
        let f = match platform::private_open_options().read(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(e),
        };
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("not a regular file"));
        }
        let mut reader = BufReader::new(f);
        let mut entries = Vec::new();
        let mut skipped = 0;
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = reader
                .by_ref()
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut buf)?;
            if n == 0 {
                break;
            }
            let complete = buf.last() == Some(&b'\n');
            if complete {
                buf.pop();
            } else if n > MAX_LINE {
                // Skip the rest of an overlong line.
                let mut sink = Vec::new();
                reader.read_until(b'\n', &mut sink)?;
                skipped += 1;
                continue;
            }
            match self.usable(&buf) {
                Some(entry) => entries.push(entry),
                None if buf.is_empty() => {}
                None => skipped += 1,
            }
        }
        Ok((entries, skipped))
    }

    fn usable(&self, bytes: &[u8]) -> Option<Entry> {
        let line = std::str::from_utf8(bytes).ok()?;
        if !line.starts_with("{\"ver\":\"4.0\"") || !line.contains(&self.tenant_ikey) {
            return None;
        }
        serde_json::from_str::<serde::de::IgnoredAny>(line).ok()?;
        Some(Entry::new(line.to_owned()))
    }

    /// Writes `entries` as the new content of `path` through a temporary file and a rename.
    fn write_entries(&self, path: &Path, entries: &[Entry]) -> io::Result<()> {
        if entries.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let mut tmp = path.to_path_buf().into_os_string();
        tmp.push(format!(".{}.tmp", crate::random::u64()));
        let tmp = PathBuf::from(tmp);
        let result = (|| {
            let mut f = platform::private_open_options()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            let mut out = Vec::with_capacity(entries.iter().map(|e| e.line.len() + 1).sum());
            for e in entries {
                out.extend_from_slice(e.line.as_bytes());
                out.push(b'\n');
            }
            f.write_all(&out)?;
            f.sync_all()?;
            drop(f);
            platform::replace_file(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
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
    /// `entries`; returns the claim files to delete once the cache is written.
    fn recover_dead_claims(&self, entries: &mut Vec<Entry>) -> Vec<PathBuf> {
        let prefix = self.files.claim_prefix();
        let ours = self.claim.as_ref().map(|(p, _)| p.clone());
        let mut recovered = Vec::new();
        let Ok(dir) = std::fs::read_dir(&self.files.dir) else {
            return recovered;
        };
        for item in dir.flatten() {
            let name = item.file_name();
            let name = name.to_string_lossy();
            if !name.starts_with(&prefix) || name.ends_with(".tmp") {
                continue;
            }
            let path = item.path();
            if Some(&path) == ours.as_ref() {
                continue;
            }
            let Ok(f) = platform::private_open_options().read(true).open(&path) else {
                continue;
            };
            if f.try_lock().is_err() {
                continue; // its session is alive
            }
            // Release before reading: Windows enforces the lock against the read through the
            // other handle. The cache lock held here keeps every other process out meanwhile.
            let _ = f.unlock();
            drop(f);
            // Only a claim that was read goes away; one that cannot be read stays for later.
            if let Ok((mut lines, _)) = self.read_entries(&path) {
                entries.append(&mut lines);
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
            let (mut entries, _) = self.read_entries(&self.files.cache)?;
            // A line already there is not written twice (a shutdown that took over from a
            // worker writing the same batch).
            let present: HashSet<&str> = entries.iter().map(|e| e.line.as_str()).collect();
            let new: Vec<Entry> = lines
                .iter()
                .filter(|l| !present.contains(**l))
                .map(|l| Entry::new((*l).to_owned()))
                .collect();
            entries.extend(new);
            let evicted = self.enforce_bound(&mut entries);
            self.write_entries(&self.files.cache, &entries)?;
            Ok(Change {
                written: lines.len(),
                evicted,
            })
        });
        if let Err(e) = &r {
            self.note_failure("not written", e);
        }
        r
    }

    /// Moves up to `max_events` entries (and `max_bytes` bytes) that `skip` does not exclude
    /// from the cache into this session's claim file, after merging dead sessions' claims back
    /// and dropping expired entries. Returns the claimed lines and how many entries expired or
    /// were evicted.
    pub fn claim(
        &mut self,
        max_events: usize,
        max_bytes: usize,
        skip: &dyn Fn(&str) -> bool,
    ) -> io::Result<(Vec<String>, Change)> {
        self.ensure_claim_file()?;
        let deadline = Instant::now() + LOCK_WAIT;
        let r = self.locked(deadline, || {
            let (mut entries, skipped) = self.read_entries(&self.files.cache)?;
            let recovered = self.recover_dead_claims(&mut entries);
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
            let now = crate::clock::now_ms();
            let before = entries.len();
            let oldest_allowed = now.saturating_sub(self.max_age_ms);
            entries.retain(|e| e.time_ms >= oldest_allowed);
            let mut change = Change {
                written: 0,
                evicted: before - entries.len(),
            };
            change.evicted += self.enforce_bound(&mut entries);
            let mut taken = Vec::new();
            let mut bytes = 0;
            let mut rest = Vec::with_capacity(entries.len());
            for e in entries {
                let fits = taken.len() < max_events
                    && (taken.is_empty() || bytes + e.line.len() < max_bytes);
                if fits && !skip(&e.line) {
                    bytes += e.line.len() + 1;
                    taken.push(e);
                } else {
                    rest.push(e);
                }
            }
            let changed =
                !taken.is_empty() || change.evicted > 0 || skipped > 0 || !recovered.is_empty();
            if !taken.is_empty() {
                // Claim first, then remove from the cache: a crash in between duplicates
                // entries, never loses them.
                let (path, _) = self.claim.as_ref().expect("claim file opened above");
                self.write_claim(path, &taken)?;
            }
            if changed {
                self.write_entries(&self.files.cache, &rest)?;
            }
            for path in recovered {
                let _ = std::fs::remove_file(path);
            }
            Ok((taken.into_iter().map(|e| e.line).collect(), change))
        });
        if let Err(e) = &r {
            self.note_failure("not replayed", e);
        }
        r
    }

    fn ensure_claim_file(&mut self) -> io::Result<()> {
        if self.claim.is_some() {
            return Ok(());
        }
        platform::create_private_dir(&self.files.dir)?;
        let mut name = self.files.cache.clone().into_os_string();
        name.push(format!(".claim-{:016x}", crate::random::u64()));
        let path = PathBuf::from(name);
        let f = platform::private_open_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Held for the session's lifetime: a free lock means its owner is gone.
        f.lock()?;
        self.claim = Some((path, f));
        Ok(())
    }

    fn write_claim(&self, _path: &Path, entries: &[Entry]) -> io::Result<()> {
        let (_, f) = self.claim.as_ref().expect("claim file open");
        let mut f = f;
        f.set_len(0)?;
        f.rewind()?;
        let mut out = Vec::new();
        for e in entries {
            out.extend_from_slice(e.line.as_bytes());
            out.push(b'\n');
        }
        f.write_all(&out)?;
        f.sync_data()
    }

    /// The claimed entries are resolved (delivered, rejected, dropped or persisted back).
    pub fn release_claim(&self) {
        if let Some((_, f)) = &self.claim {
            let _ = f.set_len(0);
        }
    }

    /// Deletes every entry of the tenant (a kill window); returns their lines.
    pub fn purge(&self) -> io::Result<Vec<String>> {
        let deadline = Instant::now() + LOCK_WAIT;
        self.release_claim();
        self.locked(deadline, || {
            let (mut entries, _) = self.read_entries(&self.files.cache)?;
            let recovered = self.recover_dead_claims(&mut entries);
            self.write_entries(&self.files.cache, &[])?;
            for path in recovered {
                let _ = std::fs::remove_file(path);
            }
            Ok(entries.into_iter().map(|e| e.line).collect())
        })
    }

    /// Ends the session's use of the cache: its (empty) claim file goes away. A cache dropped
    /// without `close` leaves its claim file for the next process to merge back (a worker that
    /// a timed-out shutdown left behind does that: at worst its batch is delivered twice).
    pub fn close(&mut self) {
        if let Some((path, f)) = self.claim.take() {
            let _ = f.set_len(0);
            drop(f);
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
                .is_some_and(|(_, f)| f.metadata().is_ok_and(|m| m.nlink() == 0));
            if purged {
                self.claim = None;
            }
        }
    }

    /// Counts entries and bytes without changing anything (for diagnostics).
    pub fn inspect(&self) -> io::Result<Vec<String>> {
        Ok(self
            .read_entries(&self.files.cache)?
            .0
            .into_iter()
            .map(|e| e.line)
            .collect())
    }
}

/// A cheap fingerprint of a line, to recognise entries this session put back.
pub fn fingerprint(line: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

pub type Fingerprints = HashSet<u64>;

/// Deletes a tenant's cache file (opt-out).
pub fn delete(files: &CacheFiles) {
    let _ = std::fs::remove_file(&files.cache);
}
