//! The library's locks: `std::sync` underneath, with the panic-free, guard-in-place API the rest
//! of the code uses.
//!
//! Why std rather than parking_lot: parking_lot parks threads in one process-wide table of
//! buckets guarded by word locks. A `fork` taken while another thread of the parent held one of
//! those bucket locks leaves it held for ever in the child, and the child's own session then hangs
//! on its first contended lock. std's futex-based locks keep all their state in the lock itself,
//! and the child gets fresh locks of its own (see `fork`).
//!
//! A poisoned lock is used as it is: every critical section here leaves its data consistent
//! before anything that could panic, and a telemetry library must not turn one panic into many.
//!
//! Each thread counts the library locks it holds ([`Hold`]): `log` keeps the lines a thread
//! logs meanwhile and writes them when the last one is released (a host's logger may take a
//! host lock that another thread holds while it waits in `tel_shutdown`). This module knows
//! nothing of log lines: `log` registers what to run then ([`on_last_release`]).

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::PoisonError;
use std::time::Instant;

thread_local! {
    /// The holds of this thread: library locks held, and explicit [`hold`]s.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// Run on a thread whose last hold just ended; set by `log`.
static ON_LAST_RELEASE: AtomicPtr<fn()> = AtomicPtr::new(std::ptr::null_mut());

/// Sets what runs on a thread when its last hold ends (`log` writes the lines it kept).
pub fn on_last_release(hook: &'static fn()) {
    ON_LAST_RELEASE.store((hook as *const fn()).cast_mut(), Ordering::Release);
}

/// Whether this thread holds a library lock (or an explicit [`hold`]) now.
pub fn held() -> bool {
    HELD.try_with(|h| h.get() > 0).unwrap_or(false)
}

/// One hold of this thread, ended when it is dropped. Not `Send`: it counts for the thread
/// that took it.
pub struct Hold(PhantomData<*const ()>);

/// Counts one hold of this thread until the returned [`Hold`] is dropped.
pub fn hold() -> Hold {
    let _ = HELD.try_with(|h| h.set(h.get() + 1));
    Hold(PhantomData)
}

impl Hold {
    /// Ends the hold without running the hook; true when it was the thread's last one (what
    /// the hook would have handled is then the caller's to handle).
    pub fn end_quietly(self) -> bool {
        let last = release();
        std::mem::forget(self);
        last
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if release() {
            let hook = ON_LAST_RELEASE.load(Ordering::Acquire);
            if !hook.is_null() {
                // SAFETY: only ever set from a `&'static fn()` (see `on_last_release`).
                unsafe { (*hook)() };
            }
        }
    }
}

/// Ends one hold of this thread; true when none is left.
fn release() -> bool {
    HELD.try_with(|h| {
        let n = h.get().saturating_sub(1);
        h.set(n);
        n == 0
    })
    .unwrap_or(false)
}

pub struct Mutex<T>(std::sync::Mutex<T>);

/// A held [`Mutex`]. The inner guard is only `None` for the instant a [`Condvar`] waits. The
/// fields drop in order: the lock is released before the hold ends (and before the lines
/// kept meanwhile are written).
pub struct MutexGuard<'a, T>(
    Option<std::sync::MutexGuard<'a, T>>,
    #[allow(dead_code)] Hold,
);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        let hold = hold();
        MutexGuard(
            Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)),
            hold,
        )
    }

    /// The lock if it is free now (fork handlers peek with it).
    #[cfg_attr(not(unix), allow(dead_code))] // fork handlers exist on Unix only
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(g) => Some(MutexGuard(Some(g), hold())),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                Some(MutexGuard(Some(p.into_inner()), hold()))
            }
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mutex")
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.0.as_ref().expect("guard present outside a wait")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("guard present outside a wait")
    }
}

pub struct RwLock<T>(std::sync::RwLock<T>);

impl<T> RwLock<T> {
    pub const fn new(value: T) -> Self {
        RwLock(std::sync::RwLock::new(value))
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, T> {
        self.0.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, T> {
        self.0.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// A read if no writer holds the lock now (fork handlers peek with it).
    #[cfg_attr(not(unix), allow(dead_code))]
    pub fn try_read(&self) -> Option<std::sync::RwLockReadGuard<'_, T>> {
        match self.0.try_read() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Whether a wait ended because its deadline passed.
#[derive(Debug, Clone, Copy)]
pub struct WaitTimeout(bool);

impl WaitTimeout {
    pub fn timed_out(self) -> bool {
        self.0
    }
}

#[derive(Debug, Default)]
pub struct Condvar(std::sync::Condvar);

impl Condvar {
    pub fn notify_one(&self) {
        self.0.notify_one();
    }

    pub fn notify_all(&self) {
        self.0.notify_all();
    }

    /// Waits for a notification, releasing the lock meanwhile.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        let inner = guard.0.take().expect("guard present");
        guard.0 = Some(self.0.wait(inner).unwrap_or_else(PoisonError::into_inner));
    }

    /// Waits for a notification or until `deadline`, releasing the lock meanwhile.
    pub fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) -> WaitTimeout {
        let timeout = deadline.saturating_duration_since(Instant::now());
        let inner = guard.0.take().expect("guard present");
        let (inner, result) = self
            .0
            .wait_timeout(inner, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        guard.0 = Some(inner);
        WaitTimeout(result.timed_out())
    }
}
