//! Locks that outlive a panic: a connection thread that panics while holding one must not take
//! the collector (or the test reading its state) down with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, also after a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
