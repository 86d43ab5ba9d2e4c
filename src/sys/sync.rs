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

use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;
use std::time::Instant;

pub struct Mutex<T>(std::sync::Mutex<T>);

/// A held [`Mutex`]. The inner guard is only `None` for the instant a [`Condvar`] waits.
/// While any is held, this thread's log lines wait (see [`crate::sys::log::hold`]); the fields
/// drop in order, so the lock is released before they are written.
pub struct MutexGuard<'a, T>(
    Option<std::sync::MutexGuard<'a, T>>,
    #[allow(dead_code)] crate::sys::log::Hold,
);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    pub fn lock(&self) -> MutexGuard<'_, T> {
        let hold = crate::sys::log::hold();
        MutexGuard(
            Some(self.0.lock().unwrap_or_else(PoisonError::into_inner)),
            hold,
        )
    }

    /// The lock if it is free now (fork handlers peek with it).
    #[cfg_attr(not(unix), allow(dead_code))] // fork handlers exist on Unix only
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.0.try_lock() {
            Ok(g) => Some(MutexGuard(Some(g), crate::sys::log::hold())),
            Err(std::sync::TryLockError::Poisoned(p)) => {
                Some(MutexGuard(Some(p.into_inner()), crate::sys::log::hold()))
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
