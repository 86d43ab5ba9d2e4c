//! The gate of ABI 1.2 (abi.md, "Consent", "Pause and resume", "Sampling"): every decision of
//! whether an event may be queued, sent, written or replayed is taken here, once.
//!
//! - At `tel_log*`, [`Shared::admit`]: denied consent drops the event (`dropped_consent`), a
//!   sampling rate may drop it (`dropped_sampled`), else it is queued.
//! - In the worker, [`GateView`]: requests and replay need consent granted and no pause.
//!
//! A change of consent or pause is a command to the worker, ordered like a flush: the state and
//! a generation (`gate_gen`) change together under the queue lock, and a flush waits until the
//! worker has acted on every generation issued before it. So `tel_flush` after `tel_resume` or
//! `tel_set_consent` sees their effect, never the state before them.

use crate::cache::entry::mark;
use crate::cache::files::CacheFiles;
use crate::model::config::Config;
use crate::model::priority::Priority;
use crate::privacy::sample::SampleRates;
use crate::worker::batch::{Batch, Held, SPILLING};
use crate::worker::queue::{Event, Queue};
use crate::worker::shared::Shared;
use crate::worker::stats::Outcome;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;

pub use crate::worker::stats::{DENIED, DENIED_REASON, GRANTED, UNKNOWN};

/// The consent state a client starts in (abi.md 1.2, "Consent"): the record's, when it was
/// written for this `consent_version` or a later one; else granted, or unknown under
/// `consent: "required"`.
pub fn consent_at_start(config: &Config, files: Option<&CacheFiles>) -> u8 {
    let record = files.and_then(|f| crate::cache::consent::read(&f.dir));
    match record {
        Some(r) if r.version >= config.consent_version => {
            if r.granted {
                GRANTED
            } else {
                DENIED
            }
        }
        _ if config.consent_required => UNKNOWN,
        _ => GRANTED,
    }
}

/// What the gate decides for an event at `tel_log*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Queue,
    /// Consent denied: counted in `logged` and `dropped_consent`, reported.
    DropConsent,
    /// Sampled out: counted in `logged` and `dropped_sampled`, reported to no callback.
    DropSampled,
}

/// The gate as the worker saw it at the start of a step: one consistent reading of the
/// consent state, the pause and their generation.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateView {
    pub gen: u64,
    pub consent: u8,
    pub paused: bool,
}

impl GateView {
    /// Requests and replay may happen: consent granted and not paused.
    pub fn open(&self) -> bool {
        self.consent == GRANTED && !self.paused
    }
}

impl Shared {
    pub fn consent(&self) -> u8 {
        self.stats.consent.load(Ordering::Acquire)
    }

    pub fn paused(&self) -> bool {
        self.stats.paused.load(Ordering::Acquire)
    }

    /// The decision for one event at `tel_log*`: consent first, then sampling (a pure function
    /// of the device id and the event's name; critical events are never sampled out).
    pub fn admit(
        &self,
        sample: Option<&SampleRates>,
        device_id: &str,
        name: &str,
        priority: Priority,
    ) -> Admit {
        if self.consent() == DENIED {
            return Admit::DropConsent;
        }
        match sample {
            Some(rates) if priority != Priority::Critical && !rates.keeps(device_id, name) => {
                Admit::DropSampled
            }
            _ => Admit::Queue,
        }
    }

    /// Records a new consent state, as a command the worker acts on before a later flush
    /// returns.
    pub fn set_consent_state(&self, state: u8) {
        let mut q = self.queue.state.lock();
        self.stats.consent.store(state, Ordering::Release);
        q.gate_gen += 1;
        drop(q);
        self.queue.wake.notify_one();
    }

    /// Pauses or resumes, as a command the worker acts on before a later flush returns; true
    /// when the state changed.
    pub fn set_paused(&self, paused: bool) -> bool {
        let mut q = self.queue.state.lock();
        let changed = self.stats.paused.swap(paused, Ordering::AcqRel) != paused;
        if changed {
            q.gate_gen += 1;
        }
        drop(q);
        if changed {
            self.queue.wake.notify_one();
        }
        changed
    }

    /// The gate's state and generation, read together.
    pub fn gate_view(&self) -> GateView {
        let q = self.queue.state.lock();
        GateView {
            gen: q.gate_gen,
            consent: self.consent(),
            paused: self.paused(),
        }
    }

    /// Every event not on the wire, taken out of the batches in hand (the oldest) and then the
    /// queue, under both locks (the queue's, then `held`'s, as the worker takes a batch); None
    /// once a shutdown has taken over. `then` runs with `held` still locked, so that what it
    /// does with them is done before a shutdown can take over.
    fn take_unsent<T>(&self, then: impl FnOnce(Vec<Event>, &mut Held) -> T) -> Option<T> {
        let mut q = self.queue.state.lock();
        let mut held = self.held.lock();
        if held.abandoned {
            return None;
        }
        let (on_wire, unsent): (VecDeque<Batch>, VecDeque<Batch>) =
            std::mem::take(&mut held.batches)
                .into_iter()
                .partition(|b| b.request.is_some());
        held.batches = on_wire;
        let events: Vec<Event> = unsent
            .into_iter()
            .flat_map(|b| b.events)
            .chain(Queue::take_all(&mut q))
            .collect();
        drop(q);
        Some(then(events, &mut held))
    }

    /// Paused: every event not on the wire is gathered into one batch in hand marked
    /// [`SPILLING`], to be written to the cache. Returns its lines (as written) and how many
    /// of its events were taken up from the cache; None when nothing waits or after a takeover.
    pub fn gather_for_cache(&self) -> Option<(Vec<String>, usize)> {
        self.take_unsent(|events, held| {
            if events.is_empty() {
                return None;
            }
            let lines = events.iter().map(|e| mark(&e.line, e.priority)).collect();
            let replayed = events
                .iter()
                .filter(|e| e.ordinal == Event::REPLAYED)
                .count();
            let mut batch = Batch::new(events, false);
            batch.request = Some(SPILLING);
            held.batches.push_back(batch);
            Some((lines, replayed))
        })
        .flatten()
    }

    /// Consent denied: every event held or queued is dropped (`dropped_consent`). Returns how
    /// many.
    pub fn drop_for_consent(&self, reason: &'static str) -> usize {
        self.take_unsent(|events, _held| {
            let refs: Vec<&Event> = events.iter().collect();
            self.resolve(Outcome::DroppedConsent, &refs, 0, || reason.to_owned());
            refs.len()
        })
        .unwrap_or(0)
    }
}
