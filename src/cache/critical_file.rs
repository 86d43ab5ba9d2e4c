//! The cache's side of the critical-events files (docs/cache.md): a session's file of durable
//! critical events is one of its claim files, `F.claim-<16 hex>-critical`, locked while the
//! session lives. It is created and filled under a temporary name (`.tmp`) and only then given
//! its claim name, so no other process ever merges a file that is not yet whole; a `.tmp` file
//! whose lock is free is its dead writer's, and goes. What the file holds, and when it is
//! rewritten, is the worker's (`worker::critical`).

use super::claim::ClosedInForkedChild;
use super::files::CacheFiles;
use crate::sys::{platform, private_file};
use std::fs::{File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Which entry of the critical-events file holds an event; unique within a session.
pub type EntryId = std::num::NonZeroU64;

/// A critical-events file under its claim name, locked for the session's lifetime.
#[derive(Debug)]
pub(crate) struct LiveFile {
    /// A forked child closes the file: it must not keep this session looking alive. (First,
    /// so that it is dropped before the file is closed.)
    _fork: ClosedInForkedChild,
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

impl LiveFile {
    /// False once the file was deleted under the session (`tel_purge`).
    #[cfg(unix)]
    pub(crate) fn usable(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        self.file.metadata().map(|m| m.nlink() > 0).unwrap_or(false)
    }

    /// Windows refuses to delete a file that is open, so it is never deleted under us.
    #[cfg(not(unix))]
    pub(crate) fn usable(&self) -> bool {
        true
    }

    /// A new, empty critical-events file. No cache lock is needed: the file is locked before
    /// it takes its claim name (see [`Unnamed`]), so no other process ever sees it unlocked.
    pub(crate) fn create(files: &CacheFiles) -> io::Result<LiveFile> {
        let mut last = None;
        for _ in 0..3 {
            match Unnamed::create(files, &[]).and_then(Unnamed::name) {
                Ok(f) => return Ok(f),
                // A purge removed it between its creation and its name: try another.
                Err(e) if e.kind() == io::ErrorKind::NotFound => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no critical-events file could be created")))
    }

    /// Deletes the file (its entries are resolved or persisted elsewhere).
    pub(crate) fn delete(self) {
        let _ = self.file.set_len(0);
        let path = self.path.clone();
        drop(self); // Windows deletes no open file
        let _ = std::fs::remove_file(path);
    }
}

/// A new critical-events file, locked, under a temporary name (`<claim name>.tmp`) that the
/// cache's recovery of dead claims never merges: once its lock is free, such a file is removed
/// (it never holds the only copy of an entry). [`Unnamed::name`] gives it its claim name.
pub(crate) struct Unnamed {
    live: LiveFile,
    claim_path: PathBuf,
}

impl Unnamed {
    pub(crate) fn create(files: &CacheFiles, content: &[u8]) -> io::Result<Unnamed> {
        platform::create_private_dir(&files.dir)?;
        for _ in 0..3 {
            let mut name = files.cache.clone().into_os_string();
            name.push(format!(
                ".claim-{:016x}-critical",
                crate::sys::random::u64()
            ));
            let claim_path = PathBuf::from(&name);
            name.push(".tmp");
            let path = PathBuf::from(name);
            let file = match private_file::open(
                &path,
                // Not `append`: Windows refuses `set_len` on an append-only handle. Each write
                // goes where the writer says (see `Disk::append`).
                private_file::options()
                    .read(true)
                    .write(true)
                    .create_new(true),
            ) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                r => r?,
            };
            match file.try_lock() {
                Ok(()) => {}
                // Another process's recovery opened it in that instant, found it unlocked and
                // removes it: take another name.
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => {
                    let _ = std::fs::remove_file(&path);
                    return Err(e);
                }
            }
            let unnamed = Unnamed {
                live: LiveFile {
                    _fork: ClosedInForkedChild::new(&file),
                    path,
                    file,
                },
                claim_path,
            };
            if !content.is_empty() {
                if let Err(e) = unnamed.append(content) {
                    unnamed.discard();
                    return Err(e);
                }
            }
            return Ok(unnamed);
        }
        Err(io::Error::other("no free name for a critical-events file"))
    }

    pub(crate) fn append(&self, bytes: &[u8]) -> io::Result<()> {
        (&self.live.file).write_all(bytes)
    }

    /// Renames it to its claim name: from now on it is merged back if the process dies. (The
    /// lock belongs to the open file and survives the rename.) Fails with `NotFound` when a
    /// purge removed it first.
    pub(crate) fn name(self) -> io::Result<LiveFile> {
        let Unnamed {
            mut live,
            claim_path,
        } = self;
        match std::fs::rename(&live.path, &claim_path) {
            Ok(()) => {
                live.path = claim_path;
                Ok(live)
            }
            Err(e) => {
                live.delete();
                Err(e)
            }
        }
    }

    pub(crate) fn discard(self) {
        self.live.delete();
    }
}

/// Writes all of `bytes` at `offset` (the file is not opened for appending: see
/// [`Unnamed::create`]), in one system call when it fits.
#[cfg(unix)]
pub(crate) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(bytes, offset)
}

#[cfg(windows)]
pub(crate) fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !bytes.is_empty() {
        match file.seek_write(bytes, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A critical-events file not yet under its claim name (`F.claim-<id>-critical.tmp`, see
/// `worker::critical`): never merged, and removed once its lock is free (its writer died before
/// naming it). It never holds the only copy of an entry: a new file is empty until named, and a
/// rewrite's copies stay in the old file until the new one is named.
pub(super) fn remove_unnamed_claim(path: &Path) {
    let Ok(Some(f)) = private_file::open_read(path) else {
        return;
    };
    if f.try_lock().is_ok() {
        drop(f);
        let _ = std::fs::remove_file(path);
    }
}
