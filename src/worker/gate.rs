//! The gate of ABI 1.2 (abi.md, "Consent", "Pause and resume"): the consent state and the
//! pause, which the worker consults before any send, cache write or replay. The state lives in
//! the counters (`consent`, `paused` in `tel_stats_json`), so what the stats say is what holds.

use crate::worker::batch::Batch;
use crate::worker::queue::{Event, Queue};
use crate::worker::shared::Shared;
use crate::worker::stats::Outcome;
use std::sync::atomic::Ordering;

pub use crate::worker::stats::{DENIED, DENIED_REASON, GRANTED, UNKNOWN};

impl Shared {
    pub fn consent(&self) -> u8 {
        self.stats.consent.load(Ordering::Acquire)
    }

    pub fn set_consent_state(&self, state: u8) {
        self.stats.consent.store(state, Ordering::Release);
        self.queue.wake_worker();
    }

    pub fn paused(&self) -> bool {
        self.stats.paused.load(Ordering::Acquire)
    }

    /// Pauses or resumes; true when the state changed.
    pub fn set_paused(&self, paused: bool) -> bool {
        let changed = self.stats.paused.swap(paused, Ordering::AcqRel) != paused;
        if changed {
            self.queue.wake_worker();
        }
        changed
    }

    /// Requests may be made: consent granted and not paused.
    pub fn may_send(&self) -> bool {
        self.consent() == GRANTED && !self.paused()
    }

    /// Every event held or queued, taken out (held batches first: they are the oldest).
    pub fn take_everything(&self) -> Vec<Event> {
        let held: Vec<Batch> = self.held.lock().batches.drain(..).collect();
        let queued = Queue::take_all(&mut self.queue.state.lock());
        held.into_iter()
            .flat_map(|b| b.events)
            .chain(queued)
            .collect()
    }

    /// Consent denied: every event held or queued is dropped (`dropped_consent`). Returns how
    /// many.
    pub fn drop_for_consent(&self, reason: &'static str) -> usize {
        let events = self.take_everything();
        let refs: Vec<&Event> = events.iter().collect();
        self.resolve(Outcome::DroppedConsent, &refs, 0, || reason.to_owned());
        refs.len()
    }
}
