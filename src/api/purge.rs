//! `tel_purge` (abi.md, "Purge"): consent revoked, so every undelivered event of a
//! configuration is deleted, without a session and without network I/O.

use crate::cache::Cache;
use crate::model::config::Config;
use crate::model::status::{Error, Result, Status};
use std::io;
use std::time::{Duration, Instant};

/// How long a purge waits for another process's cache lock.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Deletes the cache file of `config` and every claim taken from it (live sessions' claims
/// included: their events are deleted too, and they go on working). The device id and the kill
/// window stay: a purge is no way around a kill. Nothing to delete is success.
pub fn purge(config: &Config) -> Result<()> {
    let Some(files) = crate::cache::files::CacheFiles::of(config) else {
        return Ok(()); // cache_path: null
    };
    if !files.dir.is_dir() {
        return Ok(());
    }
    let cache = Cache::new(files.clone(), config.ikey.tenant(), 0, 0);
    let prefix = files.claim_prefix();
    let result = cache.locked(Instant::now() + LOCK_WAIT, || {
        // This tenant's entries; other tenants' lines stay, and a file that is not a cache
        // (a cache_path naming some other file) is not touched.
        cache.delete_entries_locked()?;
        for item in std::fs::read_dir(&files.dir)?.flatten() {
            if item.file_name().to_string_lossy().starts_with(&prefix) {
                let path = item.path();
                if let Err(e) = remove(&path) {
                    // Windows cannot delete a file a live session holds open; that claim stays
                    // with its session (see docs/abi.md).
                    if !held_by_a_live_session(&path) {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    });
    result.map_err(|e| {
        Error::new(
            Status::Internal,
            format!(
                "tel_purge could not delete the cache at {}: {e}",
                files.cache.display()
            ),
        )
    })
}

fn remove(path: &std::path::Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// True when another session holds the claim file's lock (it is alive).
fn held_by_a_live_session(path: &std::path::Path) -> bool {
    match crate::sys::platform::private_open_options()
        .read(true)
        .open(path)
    {
        Ok(f) => matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        // Windows refuses even to open a file a live session holds with a sharing lock.
        Err(e) => e.kind() == io::ErrorKind::PermissionDenied,
    }
}
