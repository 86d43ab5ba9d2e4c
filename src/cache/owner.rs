//! The worker that owns a cache, as a shutdown may take over from it.

use super::claim::ClaimHandle;
use std::io;

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

/// The error of a cache call that stopped because a shutdown took over.
pub(super) fn taken_over() -> io::Error {
    io::Error::new(
        io::ErrorKind::Interrupted,
        "a shutdown took over: nothing written",
    )
}
