//! The bounded hand-off between `tel_log` (any thread) and the worker.
//!
//! `tel_log` holds the lock only to push one event; the worker holds it only to take a batch or
//! to wait. Neither holds it across network or disk I/O.

use crate::sync::{Condvar, Mutex};
use std::collections::VecDeque;
use std::time::Instant;

/// One serialised envelope waiting to be sent.
#[derive(Debug, Clone)]
pub struct Event {
    pub line: String,
    /// Position in the order of `tel_log` calls; `u64::MAX` for entries replayed from the cache.
    pub ordinal: u64,
    pub enqueued: Instant,
}

impl Event {
    pub(crate) const REPLAYED: u64 = u64::MAX;
}

#[derive(Debug, Default)]
pub struct QueueState {
    pub events: VecDeque<Event>,
    pub bytes: usize,
    /// Ordinal of the next event `tel_log` pushes.
    pub next_ordinal: u64,
    /// `tel_flush` asks for every event with an ordinal below this to be sent now, without
    /// waiting for the flush interval.
    pub flush_upto: u64,
    /// Bumped by each `tel_flush`: one attempt may skip the current backoff.
    pub flush_gen: u64,
    /// Set by `tel_shutdown`: deliver what can be delivered by then, persist the rest, stop.
    pub shutdown_deadline: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct Queue {
    pub state: Mutex<QueueState>,
    /// Wakes the worker.
    pub wake: Condvar,
}

impl Queue {
    /// Pushes one event; wakes the worker when the queue was empty (it starts the flush timer)
    /// or a batch is full.
    /// Returns false (and keeps nothing) once shutdown has begun.
    pub fn push(&self, line: String, batch_max_events: usize, batch_max_bytes: usize) -> bool {
        let enqueued = Instant::now();
        let mut q = self.state.lock();
        if q.shutdown_deadline.is_some() {
            return false;
        }
        let ordinal = q.next_ordinal;
        q.next_ordinal += 1;
        q.bytes += line.len() + 1;
        q.events.push_back(Event {
            line,
            ordinal,
            enqueued,
        });
        let n = q.events.len();
        let wake = n == 1 || n == batch_max_events || q.bytes >= batch_max_bytes;
        drop(q);
        if wake {
            self.wake.notify_one();
        }
        true
    }

    /// Takes up to one batch from the front of the queue.
    pub fn take_batch(q: &mut QueueState, max_events: usize, max_bytes: usize) -> Vec<Event> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        while let Some(front) = q.events.front() {
            let size = front.line.len() + 1;
            if !batch.is_empty() && (batch.len() >= max_events || bytes + size > max_bytes) {
                break;
            }
            bytes += size;
            q.bytes -= size;
            batch.push(q.events.pop_front().expect("front exists"));
        }
        batch
    }

    /// Takes everything (kill, shutdown).
    pub fn take_all(q: &mut QueueState) -> Vec<Event> {
        q.bytes = 0;
        q.events.drain(..).collect()
    }
}
