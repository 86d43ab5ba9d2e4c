//! `fork()` safety. A child process has only the thread that called `fork`; any lock that another
//! parent thread held, or was waiting on, at that instant can never be taken safely in the child.
//! So the process-wide locks live in [`ForkLocal`] cells that the child replaces with fresh ones
//! before it runs any other code; the parent's session stays behind, untouched. The handler that
//! does so is the API's (`api::global::watch_fork`): it knows which cells there are.

use std::sync::atomic::{AtomicPtr, Ordering};

/// A value the child of a `fork` replaces with a fresh one (the old one is leaked on purpose:
/// other threads of the parent may have been using it).
pub struct ForkLocal<T: 'static> {
    initial: T,
    replaced: AtomicPtr<T>,
}

impl<T> ForkLocal<T> {
    pub const fn new(initial: T) -> Self {
        ForkLocal {
            initial,
            replaced: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    pub fn get(&self) -> &T {
        let p = self.replaced.load(Ordering::Acquire);
        if p.is_null() {
            &self.initial
        } else {
            // SAFETY: set once per fork from a leaked Box, never freed.
            unsafe { &*p }
        }
    }

    /// Installs `fresh`; called only from the child's fork handler.
    #[cfg_attr(not(unix), allow(dead_code))]
    pub(crate) fn renew(&self, fresh: T) {
        self.replaced
            .store(Box::into_raw(Box::new(fresh)), Ordering::Release);
    }
}
