//! The background thread (this file: its loop): batches events, replays the cache, posts,
//! has the policy decide on each answer and carries the decision out, honours kill windows and
//! backoff, and persists what is left at shutdown.
//!
//! Beside the loop: `handle` (the one owner of the protocol between a client and its worker:
//! start, flush, shutdown), `shared` (what the worker shares with the callers' threads),
//! `queue`, `batch` (the batches in hand), `inflight` (the requests on the wire), `replay` (the worker's side of the cache),
//! `execute` (carrying out the policy's decisions), `critical` (the durable critical events),
//! `delivery` (reports to the host), `stats` (the counters) and `budget` (the shutdown's time).

pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod critical;
pub(crate) mod delivery;
mod execute;
pub(crate) mod gate;
pub(crate) mod handle;
mod inflight;
pub(crate) mod queue;
mod replay;
pub(crate) mod shared;
mod spill;
pub(crate) mod stats;

use crate::policy::decide::{decide, Retry, State};
use crate::sys::random::Jitter;
use crate::transport::Transport;
use crate::worker::batch::Batch;
use crate::worker::execute::{carry_out, drop_all_killed, Pacing};
use crate::worker::inflight::Inflight;
use crate::worker::queue::Queue;
use crate::worker::replay::Replay;
use crate::worker::shared::Shared;
use crate::worker::spill::Spill;
use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

thread_local! {
    /// The [`Shared`] (its address) of the worker running on this thread, 0 elsewhere.
    static ON_WORKER: Cell<usize> = const { Cell::new(0) };
}

/// True on the worker of `shared` (a logger or delivery callback running there must not wait
/// for that worker).
pub fn on_worker_of(shared: &Shared) -> bool {
    ON_WORKER.with(Cell::get) == shared as *const Shared as usize
}

enum Step {
    Send,
    Replay,
    Continue,
    Exit,
}

pub struct Worker {
    shared: Arc<Shared>,
    inflight: Inflight,
    spill: Spill,
    replay: Replay,
    pacing: Pacing,
    jitter: Jitter,
    /// Flush generation whose request to skip the backoff has been served.
    flush_gen_served: u64,
    /// The gate was closed by a pause at the last look (a resume takes the cache up again).
    was_paused: bool,
    /// A spill to the cache failed while paused: the events wait in memory until `resume`.
    spill_failed: bool,
    /// A denial stopped the replay (once).
    replay_stopped_for_consent: bool,
    /// The gate as read at the start of the current step (and published with the progress).
    gate: gate::GateView,
}

impl Worker {
    pub fn new(shared: Arc<Shared>) -> Self {
        let cache = shared.new_cache().map(|c| c.owned_by(shared.clone()));
        Worker {
            inflight: Inflight::new(Transport::new(&*shared.config)),
            spill: Spill::default(),
            replay: Replay::new(cache),
            pacing: Pacing::default(),
            jitter: Jitter::new(),
            flush_gen_served: 0,
            was_paused: false,
            spill_failed: false,
            replay_stopped_for_consent: false,
            gate: shared.gate_view(),
            shared,
        }
    }

    pub fn run(mut self) {
        ON_WORKER.with(|w| w.set(Arc::as_ptr(&self.shared) as usize));
        self.publish_progress();
        loop {
            if self.shared.held.lock().abandoned {
                return;
            }
            if self.take_answers() {
                // Before any wait: a flush learns at once what the answers resolved.
                self.publish_progress();
                self.shared.delivery.emit();
            }
            // Only with consent granted: under unknown consent nothing is written.
            if self.gate.consent == gate::GRANTED && self.spill.due(&self.shared, &self.replay) {
                self.spill.run(&self.shared, &mut self.replay);
                self.publish_progress();
            }
            let step = self.next_step();
            match step {
                Step::Send => self.send_front(),
                Step::Replay => self.replay.chunk(&self.shared),
                Step::Continue => {}
                Step::Exit => break,
            }
            self.publish_progress();
            // The critical-events file shrinks here, off the callers' threads.
            if let Some(cache) = &self.replay.cache {
                self.shared.critical.maintain(cache);
            }
            // Here no lock of the library is held: the host's callback may do anything.
            self.shared.delivery.emit();
        }
        self.finish();
    }

    /// Decides what to do next, waiting (on the queue's condition variable) when nothing is due.
    fn next_step(&mut self) -> Step {
        let now = Instant::now();
        let killed = self.shared.kill.active();
        if killed {
            drop_all_killed(&self.shared, &mut self.replay, false);
            // A flush may have asked before this wait began: tell it now what is resolved.
            self.publish_progress();
            #[cfg(debug_assertions)]
            kill_sleep_gate();
        }
        if let Some(step) = self.gated_step(now) {
            return step;
        }
        let sendable = self
            .shared
            .held
            .lock()
            .batches
            .iter()
            .any(|b| b.request.is_none());
        let mut q = self.shared.queue.state.lock();
        let shutdown = q.shutdown_deadline;
        if let Some(deadline) = shutdown {
            if now >= deadline || killed {
                return Step::Exit;
            }
        }
        // Stored before its thread takes this lock to wake us: not lost if checked here.
        if self.inflight.answered() {
            return Step::Continue;
        }
        if killed {
            // A drop that `tel_log` reported since this thread last handed the reports over
            // goes out now, not after the window. `Queue::wake_worker` takes this lock before
            // it wakes this thread, and it is held from this check into the wait: its wake-up
            // cannot fall in between and be lost.
            if self.shared.delivery.has_queued() {
                return Step::Continue;
            }
            let until = Duration::from_millis(
                self.shared
                    .kill
                    .until_ms()
                    .saturating_sub(crate::sys::clock::now_ms()),
            );
            let wake = shutdown.map_or(now + until, |d| d.min(now + until));
            self.shared.queue.wake.wait_until(&mut q, wake);
            return Step::Continue;
        }
        let in_flight = self.inflight.count();
        if self.inflight.room(&self.shared) == 0 {
            // Every request allowed is on the wire: wait for an answer (or the deadline).
            match shutdown {
                Some(deadline) => {
                    self.shared.queue.wake.wait_until(&mut q, deadline);
                }
                None => self.shared.queue.wake.wait(&mut q),
            }
            return Step::Continue;
        }
        if sendable {
            let floor = self.pacing.retry_after_until.filter(|t| *t > now);
            let skip_backoff = shutdown.is_none() && q.flush_gen != self.flush_gen_served;
            let ready_at = if skip_backoff {
                floor
            } else {
                floor.max(self.pacing.backoff_until.filter(|t| *t > now))
            };
            match ready_at {
                None => {
                    if skip_backoff {
                        self.flush_gen_served = q.flush_gen;
                    }
                    return Step::Send;
                }
                // At shutdown a batch that is backing off is not tried again: it is persisted,
                // once the requests still on the wire have answered (or the deadline passed).
                Some(_) if shutdown.is_some() && in_flight == 0 => return Step::Exit,
                Some(at) => {
                    let at = shutdown.map_or(at, |d| d.min(at));
                    self.shared.queue.wake.wait_until(&mut q, at);
                    return Step::Continue;
                }
            }
        }
        // Cache entries take room in memory like logged events; when memory is full of logged
        // events, those are sent first and the replay waits. A shutdown does not stop the
        // replay: the entries present at start are this session's work, and a short-lived
        // process (init, log, shutdown) must drain the cache too.
        let room = self.replay.room(&self.shared);
        if self.replay.pending() && room > 0 {
            return Step::Replay;
        }
        let Some(front) = q.events.front() else {
            match shutdown {
                Some(_) if in_flight == 0 => return Step::Exit,
                Some(deadline) => {
                    self.shared.queue.wake.wait_until(&mut q, deadline);
                }
                None => self.shared.queue.wake.wait(&mut q),
            }
            return Step::Continue;
        };
        let cfg = &self.shared.config;
        let due_at = front.enqueued + Duration::from_millis(cfg.flush_interval_ms);
        let due = shutdown.is_some()
            || room == 0
            || front.ordinal < q.flush_upto
            || q.events.len() >= cfg.batch_max_events
            || q.bytes >= cfg.batch_max_bytes
            || due_at <= now;
        if !due {
            self.shared.queue.wake.wait_until(&mut q, due_at);
            return Step::Continue;
        }
        // Taken and put in hand under both locks (the queue's, then `held`'s; nothing takes
        // them the other way round): a shutdown that takes over finds each event in one or
        // the other, never in between.
        let mut held = self.shared.held.lock();
        if held.abandoned {
            return Step::Continue;
        }
        let events = Queue::take_batch(&mut q, cfg.batch_max_events, cfg.batch_max_bytes);
        held.batches.push_back(Batch::new(events, false));
        Step::Send
    }

    /// The gate (abi.md 1.2): with consent unknown or denied, or while paused, nothing is sent
    /// or replayed. Denied: what waits is dropped. Paused: what would be sent goes to the cache
    /// file when one is usable. At shutdown the worker exits, and `finish` drops (consent) or
    /// persists (paused) the rest without any request. None: the gate is open.
    fn gated_step(&mut self, now: Instant) -> Option<Step> {
        let view = self.shared.gate_view();
        // A change is acted on in this step, and published right after it (no wait first):
        // a flush that began after the change waits for that.
        let changed = view.gen != self.gate.gen;
        self.gate = view;
        let consent = view.consent;
        if view.open() {
            if self.was_paused {
                self.was_paused = false;
                self.spill_failed = false;
                self.replay.resume();
            }
            return changed.then_some(Step::Continue);
        }
        if consent == gate::DENIED {
            self.shared.drop_for_consent(gate::DENIED_REASON);
            if !self.replay_stopped_for_consent {
                self.replay_stopped_for_consent = true;
                self.replay.stop();
            }
        }
        let spilling =
            consent == gate::GRANTED && self.replay.cache.is_some() && !self.spill_failed;
        // Batches on the wire are left to their answers; the rest can go to the cache.
        let held_any = self
            .shared
            .held
            .lock()
            .batches
            .iter()
            .any(|b| b.request.is_none());
        let mut q = self.shared.queue.state.lock();
        if q.shutdown_deadline.is_some() {
            return Some(Step::Exit);
        }
        // Stored before its thread takes this lock to wake us: not lost if checked here.
        if self.inflight.answered() {
            return Some(Step::Continue);
        }
        if consent == gate::GRANTED {
            self.was_paused = true;
        }
        // A report recorded by a caller goes out now (see the kill window's wait).
        if self.shared.delivery.has_queued() {
            return Some(Step::Continue);
        }
        if spilling {
            let cfg = &self.shared.config;
            let due_at = q.events.front().map(|f| {
                (
                    f.enqueued + Duration::from_millis(cfg.flush_interval_ms),
                    f.ordinal,
                )
            });
            let due = held_any
                || q.events.len() >= cfg.batch_max_events
                || q.bytes >= cfg.batch_max_bytes
                || due_at.is_some_and(|(at, ordinal)| at <= now || ordinal < q.flush_upto);
            if due {
                drop(q);
                if !self.replay.spill(&self.shared) {
                    self.spill_failed = true;
                }
                return Some(Step::Continue);
            }
            if changed {
                return Some(Step::Continue);
            }
            if let Some((at, _)) = due_at {
                self.shared.queue.wake.wait_until(&mut q, at);
                return Some(Step::Continue);
            }
        }
        if !changed {
            self.shared.queue.wake.wait(&mut q);
        }
        Some(Step::Continue)
    }

    /// Puts the first batch in hand that is not on the wire on a request thread.
    fn send_front(&mut self) {
        let compression = self.shared.config.compression;
        // Another process may have been told to stop since this one started.
        self.shared.kill.reload();
        if self.shared.kill.active() {
            drop_all_killed(&self.shared, &mut self.replay, false);
            return;
        }
        let deadline = self.shared.queue.state.lock().shutdown_deadline;
        let mut held = self.shared.held.lock();
        let Some(batch) = held.batches.iter_mut().find(|b| b.request.is_none()) else {
            return;
        };
        let body = batch.encode(compression);
        let id = self
            .inflight
            .post(&self.shared, body, self.pacing.time_delta_ms, deadline);
        batch.request = Some(id);
    }

    /// Applies the answers that came back, one at a time, in the order they arrived. The batch
    /// answered is brought to the front, where the executor expects the batch just sent; one a
    /// kill or a shutdown already took is gone, and its answer is left unapplied.
    /// Returns whether there were any.
    fn take_answers(&mut self) -> bool {
        let answers = self.inflight.take();
        let any = !answers.is_empty();
        for (id, answer) in answers {
            let (events, attempts) = {
                let mut held = self.shared.held.lock();
                if held.abandoned {
                    return any;
                }
                let Some(at) = held.batches.iter().position(|b| b.request == Some(id)) else {
                    continue;
                };
                let mut batch = held.batches.remove(at).expect("found above");
                batch.request = None;
                let info = (batch.events.len(), batch.attempts);
                held.batches.push_front(batch);
                info
            };
            let cfg = &self.shared.config;
            let state = State {
                tenant: cfg.ikey.tenant(),
                now_ms: crate::sys::clock::now_ms(),
                events,
                attempts,
                failures: self.pacing.failures,
                retry: Retry {
                    initial_ms: cfg.retry_initial_ms,
                    max_ms: cfg.retry_max_ms,
                    max_attempts: cfg.retry_max_attempts,
                },
                cache_usable: self.replay.cache.is_some(),
                jitter: self.jitter.up_to(u64::MAX),
            };
            let decision = decide(&answer, &state);
            let success = !decision.session.failed;
            carry_out(
                &self.shared,
                &mut self.pacing,
                &mut self.replay,
                &answer,
                decision,
                Instant::now(),
            );
            self.inflight.applied(success && self.pacing.failures == 0);
        }
        any
    }

    /// Tells `tel_flush` how far delivery has come.
    fn publish_progress(&self) {
        let held_min = self
            .shared
            .held
            .lock()
            .batches
            .iter()
            .flat_map(|b| b.events.iter())
            .map(|e| e.ordinal)
            .min();
        let queue_front = {
            let q = self.shared.queue.state.lock();
            q.events.front().map_or(q.next_ordinal, |e| e.ordinal)
        };
        let mut watermark = held_min.map_or(queue_front, |h| h.min(queue_front));
        // Behind a closed gate, what cannot go anywhere stays pending and a flush is over
        // (abi.md 1.2): nothing is replayed, and without a usable cache nothing is written.
        let gated = !self.gate.open();
        if gated
            && (self.gate.consent != gate::GRANTED
                || self.replay.cache.is_none()
                || self.spill_failed)
        {
            watermark = self.shared.queue.state.lock().next_ordinal;
        }
        let mut p = self.shared.progress.lock();
        p.watermark = watermark;
        p.replay_done = self.replay.done() || gated;
        p.gate_seen = self.gate.gen;
        drop(p);
        self.shared.progress_changed.notify_all();
    }

    /// Shutdown: whatever is still pending goes to the cache (or is counted as dropped) and
    /// the end is announced: the counters are final. Then the reports go out and the log lines
    /// are written, which the shutdown waits for within its margin only, so that a slow or
    /// blocking callback (delivery or logger) never holds up `tel_shutdown`.
    fn finish(mut self) {
        let lines = crate::sys::log::hold();
        let deadline = self
            .shared
            .queue
            .state
            .lock()
            .shutdown_deadline
            .unwrap_or_else(Instant::now);
        let hit_deadline = Instant::now() >= deadline;
        // What is still on the wire stays in hand and is persisted with the rest; late
        // answers are not applied.
        self.inflight.end();
        {
            let mut held = self.shared.held.lock();
            if held.abandoned {
                return;
            }
            held.finishing = true;
        }
        // Past the deadline, allow the margin abi.md grants for the last write.
        let write_by = deadline.max(Instant::now()) + budget::LAST_WRITE;
        let resolved = self
            .shared
            .drain_and_persist(self.replay.cache.as_ref(), write_by);
        if let Some(c) = self.replay.cache.as_mut() {
            c.close();
        }
        let mut p = self.shared.progress.lock();
        p.exited = true;
        p.hit_deadline = hit_deadline && resolved > 0;
        p.replay_done = true;
        drop(p);
        self.shared.progress_changed.notify_all();
        self.shared.delivery.emit();
        drop(lines);
        self.shared.progress.lock().done = true;
        self.shared.progress_changed.notify_all();
    }
}

/// Debug builds only, for tests: while the file that `TEL_TEST_KILL_SLEEP_GATE` names exists, a
/// worker inside a kill window waits here, between handing over the reports and going to sleep
/// for the window (as a descheduled thread on a loaded machine would), having created
/// `<that file>.entered`.
#[cfg(debug_assertions)]
fn kill_sleep_gate() {
    if let Some(gate) = std::env::var_os("TEL_TEST_KILL_SLEEP_GATE") {
        let gate = std::path::PathBuf::from(gate);
        if gate.exists() {
            let mut entered = gate.clone().into_os_string();
            entered.push(".entered");
            let _ = std::fs::write(entered, b"");
            while gate.exists() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
