//! Durable `critical` events (abi.md, "Priority"): each one is appended to this session's own
//! critical-events file before `tel_log_ex` returns, and stays there until it is resolved.
//!
//! The file is a claim file of the cache (`F.claim-<16 hex>-critical`, see docs/cache.md): the
//! session holds its OS lock while it lives, so if the process dies (even by SIGKILL right after
//! the call) the next process using the cache merges it back and delivers the events. At
//! shutdown it keeps exactly the critical events still unresolved and is released for the next
//! process (that is how they are persisted: never also written to the cache file, so never
//! twice), or deleted when there are none.
//!
//! **Entries.** Each append is an entry with an id, which its event carries
//! ([`crate::worker::queue::Event::durable`]); resolving the event removes exactly that entry, whichever
//! file holds it by then. A purge deletes the file under the session: its entries are gone with
//! it (their events are still sent by this session, no longer durable), and the next append
//! starts a new file.
//!
//! **Bounded.** A resolved entry stays in the file until the worker rewrites it
//! ([`CriticalLog::maintain`], after each round of resolutions, never on a caller's thread):
//! the file is emptied once nothing in it is unresolved, and rewritten once its resolved
//! entries weigh more than [`REWRITE_DEAD_BYTES`] and more than the unresolved ones. A rewrite
//! creates a new file under a temporary name, locks it, fills it with the unresolved entries,
//! renames it to a new claim name and only then deletes the old file: a crash in between leaves
//! both (duplicates, which the next process's claim takes as one), never neither.
//!
//! **Locks.** `disk` serialises the writers of the file: callers' appends (an append, then its
//! push into the queue, under it) and the worker's rewrite. `entries`, what is unresolved, is
//! touched by resolutions without disk I/O. Order: the cache lock (a rewrite only, never
//! waited for by the worker), then `disk`, then the queue lock or `entries`. Plain `tel_log`
//! takes none of them, and no append waits for the cache lock or another process.

use crate::cache::critical_file::{write_at, EntryId, LiveFile, Unnamed};
use crate::cache::entry::mark;
use crate::cache::files::CacheFiles;
use crate::cache::Cache;
use crate::model::priority::Priority;
use crate::sys::sync::Mutex;
use crate::worker::queue::Pushed;
use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Resolved entries (bytes) past which the worker rewrites the file, when they also outweigh
/// the unresolved ones. Bounds what a SIGKILL makes the next process send again: about 60
/// typical events.
pub const REWRITE_DEAD_BYTES: u64 = 16 * 1024;

/// What became of a critical event's append.
#[derive(Debug)]
pub enum Durability {
    /// In the file.
    Written,
    /// In the file, after appends that failed (the warning said so; now it holds again).
    WrittenAgain,
    /// Not in the file (disk full, the folder unwritable...): the event is sent all the same
    /// but would not survive the process. `first`: the first such failure in a row.
    NotWritten { error: io::Error, first: bool },
}

/// The session's critical-events file and what it holds.
#[derive(Debug, Default)]
pub struct CriticalLog {
    disk: Mutex<Disk>,
    entries: Mutex<Entries>,
    /// Entries were resolved since the worker last looked at the file.
    resolved_some: AtomicBool,
    /// The last append failed (one warning for a run of failures).
    failing: AtomicBool,
}

#[derive(Debug, Default)]
struct Disk {
    file: Option<LiveFile>,
    /// Bytes in `file`.
    len: u64,
    /// A failed write could not be cut back: the next line starts on a fresh line.
    torn: bool,
    /// The id of the last entry appended (ids count from 1).
    next_id: u64,
    /// The session's end took the file: nothing is appended or rewritten any more.
    closed: bool,
}

#[derive(Debug, Default)]
struct Entries {
    /// The unresolved entries of the file by id from `first` on, each line as written (marked,
    /// with its newline); `None` once resolved. Ids come in order, so this is a queue: resolved
    /// entries leave it from the front.
    lines: VecDeque<Option<String>>,
    first: u64,
    /// How many are unresolved, and their bytes.
    count: usize,
    bytes: u64,
}

impl Entries {
    /// `id` is the next id of the session: one above every id inserted before.
    fn insert(&mut self, id: u64, line: String) {
        if self.lines.is_empty() {
            self.first = id;
        }
        debug_assert_eq!(id, self.first + self.lines.len() as u64);
        self.bytes += line.len() as u64;
        self.count += 1;
        self.lines.push_back(Some(line));
    }

    fn remove(&mut self, id: u64) {
        let Some(i) = id.checked_sub(self.first) else {
            return;
        };
        if let Some(line) = self.lines.get_mut(i as usize).and_then(Option::take) {
            self.bytes -= line.len() as u64;
            self.count -= 1;
            while self.lines.front().is_some_and(Option::is_none) {
                self.lines.pop_front();
                self.first += 1;
            }
        }
    }

    fn contains(&self, id: u64) -> bool {
        id.checked_sub(self.first)
            .and_then(|i| self.lines.get(i as usize))
            .is_some_and(Option::is_some)
    }

    fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The unresolved lines from `id` on, in order.
    fn from(&self, id: u64) -> impl Iterator<Item = &String> {
        let skip = id.saturating_sub(self.first) as usize;
        self.lines.iter().skip(skip).flatten()
    }

    fn clear(&mut self) {
        self.lines.clear();
        self.count = 0;
        self.bytes = 0;
    }
}

impl Disk {
    /// Appends one event as a new entry; returns its id and the file's length before it.
    fn append(
        &mut self,
        files: &CacheFiles,
        line: &str,
        entries: &Mutex<Entries>,
    ) -> io::Result<(EntryId, u64)> {
        if self.file.as_ref().is_some_and(|f| !f.usable()) {
            // Deleted by a purge: its entries were purged with it (their events are still sent
            // by this session, no longer durable).
            self.file = None;
            entries.lock().clear();
        }
        if self.file.is_none() {
            self.file = Some(LiveFile::create(files)?);
            self.len = 0;
            self.torn = false;
        }
        #[cfg(debug_assertions)]
        test_gate();
        let mut entry = mark(line, Priority::Critical);
        entry.push('\n');
        let before = self.len;
        let file = &self.file.as_ref().expect("opened above").file;
        // One write at the end (no `fsync`: it survives the death of the process, which is
        // what the contract asks; a power cut is another matter).
        let written = if self.torn {
            write_at(file, format!("\n{entry}").as_bytes(), before)
        } else {
            write_at(file, entry.as_bytes(), before)
        };
        if let Err(e) = written {
            self.cut_back(before);
            return Err(e);
        }
        self.len += entry.len() as u64 + u64::from(self.torn);
        self.torn = false;
        self.next_id += 1;
        entries.lock().insert(self.next_id, entry);
        let id = EntryId::new(self.next_id).expect("ids count from 1");
        Ok((id, before))
    }

    /// Cuts the file back to `len` bytes: a failed write leaves no part of its line, a refused
    /// event no line at all. Should that fail too, the next append starts on a fresh line (the
    /// reader skips a partial line, and the next entry stays whole).
    fn cut_back(&mut self, len: u64) {
        let Some(f) = &self.file else {
            return;
        };
        match f.file.set_len(len) {
            Ok(()) => self.len = len,
            Err(_) => {
                self.torn = true;
                self.len = f.file.metadata().map_or(len, |m| m.len());
            }
        }
    }
}

/// What a rewrite starts from: the unresolved entries at one instant.
struct Snapshot {
    content: Vec<u8>,
    /// Entries with this id or above were appended after the snapshot.
    upto: u64,
    of: PathBuf,
}

impl CriticalLog {
    /// Appends a critical event's `line`, then calls `push` with it and the entry that holds
    /// it (`None` when it could not be written: it is queued without the durability). A push
    /// that refuses the event takes its entry out of the file again, so a refused event is
    /// never delivered by a later process. Runs on the caller's thread; waits for nothing but
    /// this file (another critical append, the worker renaming a rewrite).
    pub fn log(
        &self,
        files: &CacheFiles,
        line: String,
        push: impl FnOnce(String, Option<EntryId>) -> Pushed,
    ) -> (Pushed, Durability) {
        let mut disk = self.disk.lock();
        if disk.closed {
            // Shutdown has begun: the push refuses it.
            return (push(line, None), Durability::Written);
        }
        match disk.append(files, &line, &self.entries) {
            Ok((id, before)) => {
                let pushed = push(line, Some(id));
                if !matches!(pushed, Pushed::Queued { .. }) {
                    self.entries.lock().remove(id.get());
                    disk.cut_back(before);
                }
                let durability = if self.failing.swap(false, Ordering::Relaxed) {
                    Durability::WrittenAgain
                } else {
                    Durability::Written
                };
                (pushed, durability)
            }
            Err(error) => {
                let first = !self.failing.swap(true, Ordering::Relaxed);
                (push(line, None), Durability::NotWritten { error, first })
            }
        }
    }

    /// Resolved events: their entries are no longer needed (the worker rewrites the file).
    pub fn resolved(&self, ids: impl Iterator<Item = EntryId>) {
        let mut entries = self.entries.lock();
        let mut any = false;
        for id in ids {
            entries.remove(id.get());
            any = true;
        }
        drop(entries);
        if any {
            self.resolved_some.store(true, Ordering::Release);
        }
    }

    /// The worker, after a round of resolutions: empties the file once nothing in it is
    /// unresolved, and rewrites it once resolved entries outweigh [`REWRITE_DEAD_BYTES`] and
    /// the unresolved ones. Never waits for another process: while one holds the cache lock,
    /// the rewrite waits for a later round.
    pub fn maintain(&self, cache: &Cache) {
        if !self.resolved_some.swap(false, Ordering::AcqRel) {
            return;
        }
        let Some(snapshot) = self.due(REWRITE_DEAD_BYTES, false) else {
            return;
        };
        if self
            .rewrite(cache, snapshot, Instant::now(), false)
            .is_err()
        {
            self.resolved_some.store(true, Ordering::Release); // next round
        }
    }

    /// Whether the file needs a rewrite (resolved entries of at least `min_dead` bytes, and
    /// as many as the unresolved ones); empties or forgets it at once where that is enough.
    fn due(&self, min_dead: u64, at_close: bool) -> Option<Snapshot> {
        let mut disk = self.disk.lock();
        if disk.closed != at_close {
            return None;
        }
        let f = disk.file.as_ref()?;
        let entries = self.entries.lock();
        if entries.is_empty() {
            if disk.len > 0 && f.file.set_len(0).is_ok() {
                disk.len = 0;
                disk.torn = false;
            }
            return None;
        }
        let dead = disk.len.saturating_sub(entries.bytes);
        if dead == 0 || dead < min_dead || (dead < entries.bytes && !at_close) {
            return None;
        }
        if !f.usable() {
            // Purged: so were its entries.
            drop(entries);
            disk.file = None;
            self.entries.lock().clear();
            return None;
        }
        let mut content = Vec::with_capacity(entries.bytes as usize);
        for line in entries.from(0) {
            content.extend_from_slice(line.as_bytes());
        }
        Some(Snapshot {
            content,
            upto: disk.next_id + 1,
            of: f.path.clone(),
        })
    }

    /// Replaces the file by one holding exactly the unresolved entries, under the cache lock
    /// (waited for until `lock_by` at most): a purge, which holds it, then never sees the old
    /// file deleted and the new one not yet named, and nothing purged comes back.
    fn rewrite(
        &self,
        cache: &Cache,
        snapshot: Snapshot,
        lock_by: Instant,
        at_close: bool,
    ) -> io::Result<()> {
        cache.locked(lock_by, || {
            let new = Unnamed::create(cache.files(), &snapshot.content)?;
            let mut disk = self.disk.lock();
            let current = disk.file.as_ref().filter(|f| f.path == snapshot.of);
            if disk.closed != at_close || current.is_none() {
                // The session's end came first: nothing to rewrite now.
                new.discard();
                return Ok(());
            }
            if current.is_some_and(|f| !f.usable()) {
                // A purge came first: its entries went with it.
                new.discard();
                disk.file = None;
                self.entries.lock().clear();
                return Ok(());
            }
            // Appended since the snapshot, and unresolved.
            let entries = self.entries.lock();
            let mut more = Vec::new();
            for line in entries.from(snapshot.upto) {
                more.extend_from_slice(line.as_bytes());
            }
            drop(entries);
            if let Err(e) = new.append(&more) {
                new.discard();
                return Err(e);
            }
            let new = new.name()?;
            let old = disk.file.replace(new);
            disk.len = (snapshot.content.len() + more.len()) as u64;
            disk.torn = false;
            if let Some(old) = old {
                old.delete();
            }
            Ok(())
        })
    }

    /// The session's end (the worker's, or a shutdown's that took over), first step: no more
    /// appends or rewrites. Waits for an append in progress (whose push is then refused).
    pub fn close(&self) {
        let mut disk = self.disk.lock();
        disk.closed = true;
        if disk.file.as_ref().is_some_and(|f| !f.usable()) {
            // Purged: so were its entries.
            disk.file = None;
            self.entries.lock().clear();
        }
    }

    /// Whether the file holds `id`, unresolved (after [`CriticalLog::close`]).
    pub fn holds(&self, id: EntryId) -> bool {
        self.entries.lock().contains(id.get())
    }

    /// The session's end, last step: the file keeps exactly the entries still unresolved
    /// (rewritten when it also holds resolved ones, waiting for the cache lock until `lock_by`)
    /// and is released for the next process, or deleted when none is left. Should the rewrite
    /// fail, the file is released as it is: its resolved entries would be sent again, none of
    /// the others is lost.
    pub fn release(&self, cache: Option<&Cache>, lock_by: Instant) {
        if let (Some(cache), Some(snapshot)) = (cache, self.due(0, true)) {
            let _ = self.rewrite(cache, snapshot, lock_by, true);
        }
        let mut disk = self.disk.lock();
        let empty = self.entries.lock().is_empty();
        if let Some(f) = disk.file.take() {
            if empty {
                f.delete();
            }
        }
    }

    /// The session's end inside a kill window: every entry is dropped, the file deleted.
    pub fn discard(&self) {
        self.entries.lock().clear();
        if let Some(f) = self.disk.lock().file.take() {
            f.delete();
        }
    }
}

/// Debug builds only, for tests: while the file that `TEL_TEST_CRITICAL_GATE` names exists, an
/// append waits before its write (as one on a slow or stuck disk would), having created
/// `<that file>.entered`.
#[cfg(debug_assertions)]
fn test_gate() {
    if let Some(gate) = std::env::var_os("TEL_TEST_CRITICAL_GATE") {
        let gate = PathBuf::from(gate);
        if gate.exists() {
            let mut entered = gate.clone().into_os_string();
            entered.push(".entered");
            let _ = std::fs::write(entered, b"");
            while gate.exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_leave_from_the_front_in_any_order() {
        let mut e = Entries::default();
        for id in 5..10 {
            e.insert(id, format!("line {id}\n"));
        }
        assert_eq!(e.bytes, 35);
        e.remove(7);
        e.remove(7); // twice: no effect
        e.remove(3); // never held
        assert!(!e.contains(7) && e.contains(5) && e.contains(9));
        assert_eq!(
            e.lines.len(),
            5,
            "a resolved entry in the middle waits for the front"
        );
        e.remove(5);
        e.remove(6);
        assert_eq!((e.first, e.lines.len(), e.count), (8, 2, 2));
        let rest: Vec<&String> = e.from(9).collect();
        assert_eq!(rest, ["line 9\n"]);
        e.remove(8);
        e.remove(9);
        assert!(e.is_empty() && e.lines.is_empty());
        assert_eq!(e.bytes, 0);
        e.insert(12, "again\n".into());
        assert!(e.contains(12) && !e.contains(9));
        e.clear();
        assert!(!e.contains(12));
        e.insert(13, "after a purge\n".into());
        assert_eq!(e.from(0).count(), 1);
    }
}
