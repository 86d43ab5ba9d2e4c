//! The one process-wide session behind the C ABI (abi.md: `tel_init` starts it, `tel_shutdown`
//! ends it, and a new one may follow).

use crate::api::client::Client;
use crate::model::config::Config;
use crate::model::options::EventOptions;
use crate::model::status::{Error, Result, Status};
use crate::sys::fork::ForkLocal;
use crate::sys::sync::{Mutex, RwLock};
use crate::worker::delivery::Callback;
use crate::worker::stats::Snapshot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

type SessionSlot = RwLock<Option<Arc<Client>>>;
type LastSlot = Mutex<Option<Arc<Client>>>;

static SESSION: ForkLocal<SessionSlot> = ForkLocal::new(RwLock::new(None));
/// The last session, kept after `tel_shutdown` so its figures stay readable.
static LAST: ForkLocal<LastSlot> = ForkLocal::new(Mutex::new(None));
/// The delivery callback of the default session, for this one and the later ones.
static DELIVERY: ForkLocal<Mutex<Option<Callback>>> = ForkLocal::new(Mutex::new(None));
/// Set in a forked child whose parent had a live session: that session stays the parent's.
static INHERITED: AtomicBool = AtomicBool::new(false);

/// The child's fork handler: fresh, unlocked slots; the parent's session is left behind.
#[cfg_attr(not(unix), allow(dead_code))] // fork handlers exist on Unix only
pub(crate) fn renew_in_child() {
    // A lock a parent thread held for writing at the fork cannot be read: assume a session.
    let had_session = SESSION.get().try_read().is_none_or(|s| s.is_some());
    INHERITED.store(had_session, Ordering::Relaxed);
    SESSION.renew(RwLock::new(None));
    LAST.renew(Mutex::new(None));
    let callback = DELIVERY.get().try_lock().and_then(|c| c.clone());
    DELIVERY.renew(Mutex::new(callback));
}

/// Registers the handler a forked child runs before any other code (once, at the first
/// `tel_init` or `tel_client_new`): the parent's claim and critical-events files are closed
/// (their locks say the parent's sessions are alive), and the log state and the session slots
/// are renewed, unlocked, the parent's session left behind.
#[cfg(unix)]
pub fn watch_fork() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn child() {
        crate::cache::claim::close_claims_in_child();
        crate::sys::log::renew_in_child();
        renew_in_child();
    }
    ONCE.call_once(|| {
        // SAFETY: registering a handler; it only allocates fresh cells in the single-threaded child.
        unsafe { libc::pthread_atfork(None, None, Some(child)) };
    });
}

#[cfg(not(unix))]
pub fn watch_fork() {}

fn not_initialized() -> Error {
    if INHERITED.load(Ordering::Relaxed) {
        Error::new(
            Status::NotInitialized,
            "the telemetry session belongs to the parent process (this process was forked): call tel_init here to start one",
        )
    } else {
        Error::not_initialized()
    }
}

fn already_initialized() -> Error {
    Error::new(
        Status::AlreadyInitialized,
        "a telemetry session is already live: call tel_shutdown before tel_init",
    )
}

thread_local! {
    /// Set while this thread is inside `init`: a logger callback that calls `tel_init` again
    /// (the opt-out line is logged during `init`) would otherwise recurse without end.
    static INITIALIZING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Clears [`INITIALIZING`] however `init` ends.
struct InitGuard;

impl Drop for InitGuard {
    fn drop(&mut self) {
        INITIALIZING.with(|i| i.set(false));
    }
}

pub fn init(config_json: &str) -> Result<()> {
    if INITIALIZING.with(|i| i.replace(true)) {
        return Err(Error::new(
            Status::AlreadyInitialized,
            "tel_init was called while tel_init runs on this thread (from the logger callback): refused",
        ));
    }
    let _guard = InitGuard;
    if SESSION.get().read().is_some() {
        return Err(already_initialized());
    }
    let config = Config::from_json(config_json)?;
    watch_fork();
    let client = Client::start(config)?;
    let mut slot = SESSION.get().write();
    if slot.is_some() {
        drop(slot);
        let _ = client.shutdown(Duration::ZERO);
        return Err(already_initialized());
    }
    client.set_delivery_callback(DELIVERY.get().lock().clone());
    *slot = Some(Arc::new(client));
    drop(slot);
    INHERITED.store(false, Ordering::Relaxed);
    *LAST.get().lock() = None;
    Ok(())
}

pub fn log(name: &str, properties: Option<&str>) -> Result<()> {
    // A line logged meanwhile waits until the session lock is released: the logger may call
    // tel_shutdown, which takes it for writing.
    let _lines = crate::sys::log::hold();
    let session = SESSION.get().read();
    let result = match session.as_ref() {
        Some(client) => client.log(name, properties),
        None => Err(not_initialized()),
    };
    drop(session);
    result
}

/// `tel_log_ex`: `options_json` None (or `{}`) is `tel_log`.
pub fn log_ex(name: &str, properties: Option<&str>, options_json: Option<&str>) -> Result<()> {
    let _lines = crate::sys::log::hold(); // as in `log`
    let session = SESSION.get().read();
    let result = match session.as_ref() {
        Some(client) => match options_json {
            None => client.log(name, properties),
            Some(o) => EventOptions::from_json(o)
                .and_then(|options| client.log_ex(name, properties, &options)),
        },
        None => Err(not_initialized()),
    };
    drop(session);
    result
}

/// Installs the default session's delivery callback, for the live session and later ones.
pub fn set_delivery_callback(callback: Option<Callback>) {
    let session = SESSION.get().read();
    *DELIVERY.get().lock() = callback.clone();
    if let Some(client) = session.as_ref() {
        client.set_delivery_callback(callback);
    }
}

pub fn flush(timeout: Duration) -> Result<()> {
    // Wait without holding the session lock, so shutdown and fork are never held up by it.
    let client = match SESSION.get().read().as_ref() {
        Some(client) => client.clone(),
        None => return Err(not_initialized()),
    };
    client.flush(timeout)
}

pub fn shutdown(timeout: Duration) -> Result<()> {
    let taken = SESSION.get().write().take();
    let Some(client) = taken else {
        // In a forked child, ending the parent's session is not this process's business.
        if INHERITED.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        return Err(not_initialized());
    };
    let result = client.close(timeout);
    *LAST.get().lock() = Some(client);
    result
}

pub fn stats() -> Snapshot {
    if let Some(client) = SESSION.get().read().as_ref() {
        return client.stats();
    }
    LAST.get()
        .lock()
        .as_ref()
        .map(|c| c.stats())
        .unwrap_or_default()
}

/// The live session, cloned out of its slot: the call then runs without the session lock.
fn session() -> Result<Arc<Client>> {
    match SESSION.get().read().as_ref() {
        Some(client) => Ok(client.clone()),
        None => Err(not_initialized()),
    }
}

/// `tel_consent`: -1 without a session.
pub fn consent() -> i32 {
    session().map_or(-1, |c| c.consent())
}

pub fn set_consent(state: i32) -> Result<()> {
    session()?.set_consent(state)
}

pub fn set_property(name: &str, value_json: Option<&str>) -> Result<()> {
    session()?.set_property(name, value_json)
}

pub fn set_paused(paused: bool) -> Result<()> {
    session()?.set_paused(paused)
}
