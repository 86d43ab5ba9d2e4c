//! Spilling a burst to the cache instead of refusing it: with a usable cache, when more than
//! three quarters of `queue_max_events` are held in memory (queued, in flight, awaiting retry),
//! the worker moves the oldest queued events (critical ones excepted: they have their own file)
//! to the cache, down to half, counted in `persisted`. They are replayed by this session once the network catches up (see
//! `Replay::spilled`), or by the next one. `tel_log` itself never writes: it only wakes the
//! worker as the queue passes the mark.

use crate::cache::entry::mark;
use crate::model::priority::Priority;
use crate::sys::log::{tel_log, Level};
use crate::worker::batch::{Batch, SPILLING};
use crate::worker::queue::{spill_mark, Event, Queue};
use crate::worker::replay::Replay;
use crate::worker::shared::Shared;
use crate::worker::stats::{count_events, Outcome, Stats};
use std::time::{Duration, Instant};

/// After a failed write, no spill before this long: the queue fills and `tel_log` refuses, as
/// without a cache, rather than the worker retrying the disk in a loop.
const AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Spill {
    failed_until: Option<Instant>,
}

impl Spill {
    /// Whether a spill is due now.
    pub fn due(&self, shared: &Shared, replay: &Replay) -> bool {
        if replay.cache.is_none() || self.failed_until.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        let q = shared.queue.state.lock();
        q.shutdown_deadline.is_none()
            && !q.events.is_empty()
            && pending(shared) > spill_mark(shared.config.queue_max_events)
            && !shared.kill.active()
    }

    /// Moves the oldest queued events (critical ones excepted) to the cache, until half of
    /// `queue_max_events` are held in memory or none is queued (the rest is on the wire).
    pub fn run(&mut self, shared: &Shared, replay: &mut Replay) {
        let cfg = &shared.config;
        let target = cfg.queue_max_events / 2;
        let lines: Vec<String> = {
            // Taken and put in hand under both locks (the queue's, then `held`'s, as the
            // worker takes a batch): a shutdown that takes over finds each event in one or the
            // other, never in between.
            let mut q = shared.queue.state.lock();
            let mut held = shared.held.lock();
            if held.abandoned {
                return;
            }
            let excess = pending(shared).saturating_sub(target).min(q.events.len());
            if excess == 0 {
                return;
            }
            let mut taken = Queue::take_batch(&mut q, excess, usize::MAX);
            // Critical events stay queued, in their order, at the front.
            let kept: Vec<Event> = extract_critical(&mut taken);
            for e in kept.into_iter().rev() {
                q.bytes += e.line.len() + 1;
                q.events.push_front(e);
            }
            if taken.is_empty() {
                // Nothing but critical events: nothing to move; look again later.
                self.failed_until = Some(Instant::now() + AFTER_FAILURE);
                return;
            }
            let lines = taken.iter().map(|e| mark(&e.line, e.priority)).collect();
            let mut batch = Batch::new(taken, false);
            batch.request = Some(SPILLING);
            held.batches.push_back(batch);
            lines
        };
        let Some(cache) = replay.cache.as_ref() else {
            return;
        };
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let written = cache.persist(&refs, Instant::now() + Duration::from_secs(2));
        let mut held = shared.held.lock();
        held.committing = false;
        if held.abandoned {
            return; // the shutdown resolved them
        }
        let Some(at) = held
            .batches
            .iter()
            .position(|b| b.request == Some(SPILLING))
        else {
            return; // a kill took them
        };
        let batch = held.batches.remove(at).expect("found above");
        drop(held);
        let n = batch.events.len() as u64;
        match written {
            Ok(change) => {
                let refs: Vec<&Event> = batch.events.iter().collect();
                shared.resolve(Outcome::Persisted, &refs, 0, || {
                    "the queue was filling faster than the collector took events: written to the cache file, to be sent from there".to_owned()
                });
                Stats::add(&shared.stats.cache_evicted, change.evicted as u64);
                replay.spilled(&lines);
                tel_log!(
                    Level::Info,
                    "{} moved from the full queue to the cache file, to be sent from there",
                    count_events(n)
                );
            }
            Err(e) => {
                // Back to the front of the queue, in their order; tel_log refuses when it is full.
                let mut q = shared.queue.state.lock();
                for e in batch.events.into_iter().rev() {
                    q.bytes += e.line.len() + 1;
                    q.events.push_front(e);
                }
                drop(q);
                self.failed_until = Some(Instant::now() + AFTER_FAILURE);
                tel_log!(
                    Level::Info,
                    "cannot move {} from the full queue to the cache file ({e}): they stay queued",
                    count_events(n)
                );
            }
        }
    }
}

/// Events held in memory: queued, in flight, awaiting retry.
fn pending(shared: &Shared) -> usize {
    shared
        .stats
        .pending
        .load(std::sync::atomic::Ordering::Relaxed) as usize
}

/// Removes the critical events from `events`, returning them in order.
fn extract_critical(events: &mut Vec<Event>) -> Vec<Event> {
    let (critical, rest): (Vec<Event>, Vec<Event>) = std::mem::take(events)
        .into_iter()
        .partition(|e| e.priority == Priority::Critical);
    *events = rest;
    critical
}
