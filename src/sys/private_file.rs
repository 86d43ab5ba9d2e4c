//! The library's files on disk (the cache and its claims, the kill window, the device id), opened
//! and written one way:
//!
//! - **Opened without blocking, regular files only.** A FIFO or a device planted where a file is
//!   expected would block `open` (or every read) forever; it is opened non-blocking, found not to
//!   be a regular file, and refused, so the caller carries on without it.
//! - **Private.** Created 0600 (the folder 0700) and never through a symbolic link.
//! - **Replaced atomically.** A new content goes to a temporary file beside the destination, is
//!   `fsync`ed and renamed over it: a process killed at any instant leaves the old file or the
//!   new one, never a torn one.
//! - **No orphans.** A temporary file is named `<file>.<pid>.<random>.tmp`; one whose writer is
//!   gone (or is older than any write takes) is removed by [`remove_orphaned_temps`].

use crate::sys::platform;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// A temporary file older than this is orphaned whoever wrote it: a write takes milliseconds.
const STALE_TEMP: Duration = Duration::from_secs(600);

/// Opens `path` with `options` (which must come from [`options`]) and checks it is a regular file.
pub fn open(path: &Path, options: &OpenOptions) -> io::Result<File> {
    let f = options.open(path)?;
    if !f.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    platform::make_blocking(&f)?;
    Ok(f)
}

/// The options every private file is opened with: 0600, no symbolic link, non-blocking open.
pub fn options() -> OpenOptions {
    platform::private_open_options()
}

/// Opens an existing file for reading; `None` when there is none.
pub fn open_read(path: &Path) -> io::Result<Option<File>> {
    match open(path, options().read(true)) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What to do when the destination already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it (rename over it).
    Replace,
    /// Keep it: the first writer wins (a hard link never replaces).
    Keep,
}

/// Writes a new content of `dest` through a temporary file in the same folder, `fsync` and an
/// atomic rename (or, with [`Existing::Keep`], a hard link that never replaces). `fill` writes
/// the content. The folder is created (0700) if missing.
pub fn write(
    dest: &Path,
    existing: Existing,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = folder_of(dest);
    platform::create_private_dir(&dir)?;
    let tmp = temp_path(dest);
    let result = (|| {
        let f = open(&tmp, options().write(true).create_new(true))?;
        let mut out = io::BufWriter::with_capacity(64 * 1024, &f);
        fill(&mut out)?;
        out.flush()?;
        drop(out);
        f.sync_all()?;
        drop(f);
        match existing {
            Existing::Replace => platform::replace_file(&tmp, dest),
            Existing::Keep => match std::fs::hard_link(&tmp, dest) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            },
        }
    })();
    if result.is_err() || existing == Existing::Keep {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The folder a file lives in (`.` for a bare name).
pub fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `<dest>.<pid>.<random>.tmp`: the writer's process id tells whether it may still be writing.
fn temp_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(format!(
        ".{}.{}.tmp",
        std::process::id(),
        crate::sys::random::u64()
    ));
    PathBuf::from(name)
}

/// Removes the orphaned temporary files of the files named `names` in `dir`; returns how many.
///
/// A temporary of `exclusive` is orphaned whatever its name says: the caller holds the lock every
/// writer of that file holds while writing, so no one is writing it now. A temporary of the other
/// files is orphaned when the process named in it is gone, or when it is older than any write.
pub fn remove_orphaned_temps(dir: &Path, exclusive: &str, others: &[&str]) -> usize {
    let Ok(items) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for item in items.flatten() {
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".tmp") else {
            continue;
        };
        // The longest matching file name decides whose temporary it is (`F.kill` before `F`).
        let owner = std::iter::once(exclusive)
            .chain(others.iter().copied())
            .filter(|n| {
                stem.strip_prefix(n)
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| {
                        !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                    })
            })
            .max_by_key(|n| n.len());
        let Some(owner) = owner else { continue };
        let orphaned = owner == exclusive || {
            let fields: Vec<&str> = stem[owner.len() + 1..].split('.').collect();
            let writer_gone = match fields.as_slice() {
                [pid, _] => pid.parse().is_ok_and(|p| !platform::process_alive(p)),
                _ => false,
            };
            let stale = item
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            writer_gone || stale
        };
        if orphaned
            && item.file_type().is_ok_and(|t| t.is_file())
            && std::fs::remove_file(item.path()).is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tel-pf-{tag}-{}", crate::sys::random::u64()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_or_keeps() {
        let d = dir("write");
        let f = d.join("a");
        write(&f, Existing::Replace, |w: &mut dyn Write| {
            w.write_all(b"one")
        })
        .unwrap();
        write(&f, Existing::Keep, |w: &mut dyn Write| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        write(&f, Existing::Replace, |w: &mut dyn Write| {
            w.write_all(b"three")
        })
        .unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"three");
        assert_eq!(
            std::fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&f).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn orphans_go_live_writers_stay() {
        let d = dir("orphans");
        let me = std::process::id();
        let touch = |n: &str| std::fs::write(d.join(n), b"x").unwrap();
        touch("c.cache.123.456.tmp"); // the exclusive file's: orphaned under its lock
        touch("c.cache.789.tmp"); // an older naming: the same
        touch(&format!("c.cache.kill.{me}.1.tmp")); // a live writer
        touch("c.cache.kill.999999999.1.tmp"); // no such process
        touch(&format!("device-id.{me}.2.tmp"));
        touch("c.cache.claim-00ff.tmp.keep"); // not a temporary
        touch("c.cache.claim-00000000000000ff-critical.tmp"); // a critical-events file being named
        touch("other.1.2.tmp"); // not ours
        let removed = remove_orphaned_temps(&d, "c.cache", &["c.cache.kill", "device-id"]);
        let mut left: Vec<String> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![
            format!("c.cache.kill.{me}.1.tmp"),
            "c.cache.claim-00ff.tmp.keep".to_owned(),
            "c.cache.claim-00000000000000ff-critical.tmp".to_owned(),
            format!("device-id.{me}.2.tmp"),
            "other.1.2.tmp".to_owned(),
        ];
        want.sort();
        assert_eq!(left, want);
        assert_eq!(removed, 3);
        let _ = std::fs::remove_dir_all(d);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = dir("fifo");
        let p = d.join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_read(&p).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = open(&p, options().read(true).write(true).create(true)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let _ = std::fs::remove_dir_all(d);
    }
}
