//! The bounded hand-off between `tel_log` (any thread) and the worker.
//!
//! `tel_log` holds the lock only to push one event; the worker holds it only to take a batch or
//! to wait. Neither holds it across network or disk I/O (a critical event is written to its
//! file before its push, see [`crate::worker::critical`]).

use crate::cache::critical_file::EntryId;
use crate::model::priority::Priority;
use crate::sys::sync::{Condvar, Mutex};
use crate::worker::stats::Stats;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// One serialised envelope waiting to be sent.
#[derive(Debug, Clone)]
pub struct Event {
    pub line: String,
    /// Position in the order of `tel_log` calls; `u64::MAX` for entries replayed from the cache.
    pub ordinal: u64,
    pub enqueued: Instant,
    pub priority: Priority,
    /// The entry of this session's critical-events file that holds it, until it is resolved
    /// (`None`: not durable).
    pub durable: Option<EntryId>,
}

impl Event {
    pub(crate) const REPLAYED: u64 = u64::MAX;

    /// The event's name, read back from its envelope.
    pub fn name(&self) -> &str {
        crate::model::envelope::envelope_name(&self.line)
    }
}

/// The bounds a push honours.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub batch_max_events: usize,
    pub batch_max_bytes: usize,
    /// Events held in memory (queued, in flight, awaiting retry): the `pending` gauge.
    pub queue_max_events: usize,
}

/// What became of a push.
#[derive(Debug)]
pub enum Pushed {
    /// Queued; counted in `logged` and `pending`. When the queue was full, `evicted` is the
    /// lower-priority event it replaced (already counted in `dropped_evicted`).
    Queued { evicted: Option<Event> },
    /// The queue is full of events of this priority or higher: dropped, counted in
    /// `dropped_queue_full`.
    Full,
    /// Shutdown has begun: nothing kept, nothing counted.
    Closed,
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
    /// Bumped by each change of consent or pause (see `gate`): a flush waits until the worker
    /// has acted on the generation current when it began.
    pub gate_gen: u64,
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
    /// Pushes one event, counting it (`logged`, `pending`) under the queue lock, so that once
    /// shutdown has drained the queue no push can still move `pending`.
    ///
    /// When `pending` is at `queue_max_events`, the event takes the place of the oldest queued
    /// (not in flight) event of the lowest priority below its own, or is refused. `durable`:
    /// the critical-events entry already written for it (whose writer takes it out again when
    /// the push is refused). A critical event is due at once.
    /// Wakes the worker when the queue was empty (it starts the flush timer), a batch is full,
    /// or the event is critical.
    pub fn push(
        &self,
        line: String,
        priority: Priority,
        bounds: Bounds,
        stats: &Stats,
        durable: Option<EntryId>,
    ) -> Pushed {
        let enqueued = Instant::now();
        let mut q = self.state.lock();
        if q.shutdown_deadline.is_some() {
            return Pushed::Closed;
        }
        let mut evicted = None;
        let mut filled = false;
        let mut past_spill_mark = false;
        if stats.pending.load(Ordering::Relaxed) >= bounds.queue_max_events as u64 {
            let victim = q
                .events
                .iter()
                .enumerate()
                .filter(|(_, e)| e.priority < priority)
                .min_by_key(|(i, e)| (e.priority, *i))
                .map(|(i, _)| i);
            let Some(i) = victim else {
                Stats::add(&stats.dropped_queue_full, 1);
                return Pushed::Full;
            };
            let e = q.events.remove(i).expect("index found above");
            q.bytes -= e.line.len() + 1;
            // The new event takes its place in `pending`.
            Stats::add(&stats.dropped_evicted, 1);
            evicted = Some(e);
        } else {
            Stats::add(&stats.pending, 1);
            let pending = stats.pending.load(Ordering::Relaxed);
            filled = pending >= bounds.queue_max_events as u64;
            past_spill_mark = pending == spill_mark(bounds.queue_max_events) as u64 + 1;
        }
        Stats::add(&stats.logged, 1);
        let ordinal = q.next_ordinal;
        q.next_ordinal += 1;
        q.bytes += line.len() + 1;
        q.events.push_back(Event {
            line,
            ordinal,
            enqueued,
            priority,
            durable,
        });
        let critical = priority == Priority::Critical;
        if critical {
            q.flush_upto = q.next_ordinal;
        }
        let n = q.events.len();
        // A push-out is reported by the worker: wake it for that too. Memory just filled up:
        // the worker sends at once to make room, so it must not sleep until the interval.
        let wake = n == 1
            || filled
            || n == bounds.batch_max_events
            || q.bytes >= bounds.batch_max_bytes
            || critical
            || evicted.is_some()
            || past_spill_mark;
        drop(q);
        if wake {
            self.wake.notify_one();
        }
        Pushed::Queued { evicted }
    }

    /// Wakes the worker without pushing anything (a report recorded by a caller waits for it).
    /// Takes the lock first: the worker looks for such reports under it before it sleeps, so a
    /// report recorded before this call is either seen there or woken for, never slept through.
    pub fn wake_worker(&self) {
        drop(self.state.lock());
        self.wake.notify_one();
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

/// The number of events held in memory (queued, in flight, awaiting retry: `pending`) above
/// which the worker moves queued events to the cache (three quarters of `queue_max_events`; see
/// `worker::spill`). `tel_log` wakes the worker as it passes it.
pub fn spill_mark(queue_max_events: usize) -> usize {
    queue_max_events - queue_max_events / 4
}
