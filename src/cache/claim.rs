//! This session's claim file: the entries it took up for replay, locked while it lives.

use super::entry::Entry;
use super::files::CacheFiles;
use crate::sys::private_file;
use std::fs::{File, TryLockError};
use std::io::{self, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

/// This session's claim file, locked while the session lives: a free lock means its owner is
/// gone. Its descriptor is closed in a forked child (see [`close_claims_in_child`]), so a child
/// never keeps a dead parent's claim locked.
pub(super) struct Claim {
    /// First, so that it is dropped (unregistered) before the file is closed.
    _fork: ClosedInForkedChild,
    pub(super) path: PathBuf,
    /// Shared (never duplicated: a `dup` would keep the lock) with a shutdown that takes over
    /// from the worker, which empties it.
    pub(super) file: Arc<File>,
}

impl Claim {
    /// Creates and locks a new claim file; called with the cache lock held.
    pub(super) fn create(files: &CacheFiles) -> io::Result<Claim> {
        let mut name = files.cache.clone().into_os_string();
        name.push(format!(".claim-{:016x}", crate::sys::random::u64()));
        let path = PathBuf::from(name);
        let file = private_file::open(
            &path,
            private_file::options()
                .read(true)
                .write(true)
                .create_new(true),
        )?;
        if let Err(e) = file.try_lock() {
            let _ = std::fs::remove_file(&path);
            return Err(match e {
                TryLockError::Error(e) => e,
                TryLockError::WouldBlock => io::Error::other("a new claim file is locked"),
            });
        }
        let _fork = ClosedInForkedChild::new(&file);
        Ok(Claim {
            _fork,
            path,
            file: Arc::new(file),
        })
    }

    /// What a shutdown that takes over needs of it (see [`ClaimHandle`]).
    pub(super) fn handle(&self) -> ClaimHandle {
        ClaimHandle {
            file: Arc::downgrade(&self.file),
            path: self.path.clone(),
        }
    }

    pub(super) fn write(&self, entries: &[Entry]) -> io::Result<()> {
        let mut f = &*self.file;
        f.set_len(0)?;
        f.rewind()?;
        let mut out = io::BufWriter::with_capacity(64 * 1024, f);
        for e in entries {
            out.write_all(e.line.as_bytes())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        drop(out);
        self.file.sync_data()
    }
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

/// A descriptor whose lock says "this session is alive" (a claim file, a critical-events file):
/// a forked child closes it, for as long as this guard lives.
#[derive(Debug)]
pub(crate) struct ClosedInForkedChild(Option<usize>);

impl ClosedInForkedChild {
    pub(crate) fn new(file: &File) -> Self {
        ClosedInForkedChild(child_closes::register(file))
    }
}

impl Drop for ClosedInForkedChild {
    fn drop(&mut self) {
        child_closes::unregister(self.0);
    }
}

/// Descriptors a forked child must close: the claim files of the parent's sessions. A lock
/// taken with `flock` belongs to the open file description, which `fork` shares; a child that
/// kept it would keep a dead parent's claim looking alive, and its entries unreplayed.
#[cfg(unix)]
mod child_closes {
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    const SLOTS: usize = 256;
    #[allow(clippy::declare_interior_mutable_const)]
    const FREE: AtomicI32 = AtomicI32::new(-1);
    /// Lock-free: the fork handler may not take a lock another thread held at the fork.
    static FDS: [AtomicI32; SLOTS] = [FREE; SLOTS];

    pub fn register(file: &std::fs::File) -> Option<usize> {
        let fd = file.as_raw_fd();
        (0..SLOTS).find(|&i| {
            FDS[i]
                .compare_exchange(-1, fd, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }

    pub fn unregister(slot: Option<usize>) {
        if let Some(i) = slot {
            FDS[i].store(-1, Ordering::Release);
        }
    }

    /// In the child of a `fork`: closes them all (async-signal-safe: atomics and `close`).
    pub fn close_all() {
        for slot in &FDS {
            let fd = slot.swap(-1, Ordering::AcqRel);
            if fd >= 0 {
                // SAFETY: the descriptor belongs to a session of the parent, which the child
                // never uses (its sessions are left behind, never dropped).
                unsafe { libc::close(fd) };
            }
        }
    }
}

#[cfg(not(unix))]
mod child_closes {
    pub fn register(_: &std::fs::File) -> Option<usize> {
        None
    }
    pub fn unregister(_: Option<usize>) {}
}

/// Called by the child's fork handler: the parent's claim files are not the child's to hold.
#[cfg(unix)]
pub(crate) fn close_claims_in_child() {
    child_closes::close_all();
}
