//! The one process-wide session behind the C ABI (abi.md: `tel_init` starts it, `tel_shutdown`
//! ends it, and a new one may follow).

use crate::client::Client;
use crate::config::Config;
use crate::stats::Snapshot;
use crate::status::{Error, Result, Status};
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct Slot {
    client: Arc<Client>,
    /// The fork generation the session was started in; a child process does not own it.
    fork_gen: u64,
}

static SESSION: RwLock<Option<Slot>> = RwLock::new(None);
/// The last session, kept after `tel_shutdown` so its figures stay readable.
static LAST: Mutex<Option<Arc<Client>>> = Mutex::new(None);
static FORK_GEN: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn prepare() {
        // No thread may hold the session or logger lock across fork, or the child could never
        // take it. Always in this order; nothing else holds both.
        std::mem::forget(SESSION.write());
        crate::logging::lock_for_fork();
    }
    extern "C" fn parent() {
        // SAFETY: `prepare` left both locks held exclusively by this thread.
        unsafe {
            crate::logging::unlock_after_fork();
            SESSION.force_unlock_write();
        }
    }
    extern "C" fn child() {
        FORK_GEN.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `parent`; the child has only this thread.
        unsafe {
            crate::logging::unlock_after_fork();
            SESSION.force_unlock_write();
        }
    }
    ONCE.call_once(|| {
        // SAFETY: the handlers are async-signal-safe enough for fork: an atomic and an unlock.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
}
#[cfg(not(unix))]
fn watch_forks() {}

fn inherited(slot: &Slot) -> bool {
    slot.fork_gen != FORK_GEN.load(Ordering::Relaxed)
}

fn inherited_error() -> Error {
    Error::new(
        Status::NotInitialized,
        "the telemetry session belongs to the parent process (this process was forked): call tel_init here to start one",
    )
}

pub fn init(config_json: &str) -> Result<()> {
    if let Some(slot) = SESSION.read().as_ref() {
        if !inherited(slot) {
            return Err(Error::new(
                Status::AlreadyInitialized,
                "a telemetry session is already live: call tel_shutdown before tel_init",
            ));
        }
    }
    let config = Config::from_json(config_json)?;
    watch_forks();
    let client = Client::start(config)?;
    let mut slot = SESSION.write();
    if let Some(existing) = slot.take() {
        if !inherited(&existing) {
            *slot = Some(existing);
            drop(slot);
            let _ = client.shutdown(Duration::ZERO);
            return Err(Error::new(
                Status::AlreadyInitialized,
                "a telemetry session is already live: call tel_shutdown before tel_init",
            ));
        }
        // The parent's session: its threads do not exist here and its locks may be held.
        std::mem::forget(existing);
    }
    *slot = Some(Slot {
        client: Arc::new(client),
        fork_gen: FORK_GEN.load(Ordering::Relaxed),
    });
    drop(slot);
    *LAST.lock() = None;
    Ok(())
}

pub fn log(name: &str, properties: Option<&str>) -> Result<()> {
    let guard = SESSION.read();
    match guard.as_ref() {
        Some(slot) if !inherited(slot) => slot.client.log(name, properties),
        Some(_) => Err(inherited_error()),
        None => Err(Error::not_initialized()),
    }
}

pub fn flush(timeout: Duration) -> Result<()> {
    // Wait without holding the session lock, so shutdown and fork are never held up by it.
    let client = match SESSION.read().as_ref() {
        Some(slot) if !inherited(slot) => slot.client.clone(),
        Some(_) => return Err(inherited_error()),
        None => return Err(Error::not_initialized()),
    };
    client.flush(timeout)
}

pub fn shutdown(timeout: Duration) -> Result<()> {
    let taken = SESSION.write().take();
    let Some(slot) = taken else {
        return Err(Error::not_initialized());
    };
    if inherited(&slot) {
        std::mem::forget(slot);
        return Ok(());
    }
    let result = slot.client.shutdown(timeout);
    *LAST.lock() = Some(slot.client);
    result
}

pub fn stats() -> Snapshot {
    if let Some(slot) = SESSION.read().as_ref() {
        return slot.client.stats();
    }
    LAST.lock().as_ref().map(|c| c.stats()).unwrap_or_default()
}
