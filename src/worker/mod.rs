//! The background thread: batches events, replays the cache, posts, applies the response
//! policy, honours kill windows and backoff, and persists what is left at shutdown.

mod handle;
mod replay;
mod shared;

pub use crate::batch::{Batch, Held};
pub use handle::{budget, WorkerHandle};
pub use shared::{Progress, Shared};

use crate::backoff;
use crate::cache::Cache;
use crate::cache::Fingerprints;
use crate::logging::{tel_log, Level};
use crate::queue::{Event, Queue};
use crate::random::Jitter;
use crate::response::{classify, directives, HttpResponse, NetworkError, Refused, Verdict};
use crate::stats::{Outcome, Stats};
use crate::transport::Transport;
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

/// Whether a full batch waits in the queue behind the one being sent.
fn next_batch_waiting(shared: &Shared) -> bool {
    let cfg = &shared.config;
    if shared.held.lock().batches.len() != 1 {
        return false;
    }
    let q = shared.queue.state.lock();
    q.shutdown_deadline.is_none()
        && (q.events.len() >= cfg.batch_max_events || q.bytes >= cfg.batch_max_bytes)
}

/// Takes the next full batch from the queue and encodes it, behind the batch in flight. Runs on
/// the worker while the request thread waits for the collector. The held lock is kept from the
/// take to the push so that a shutdown taking over never misses these events.
fn prepare_next_batch(shared: &Shared) {
    let cfg = &shared.config;
    let mut held = shared.held.lock();
    if held.abandoned || held.batches.len() != 1 {
        return;
    }
    let events = {
        let mut q = shared.queue.state.lock();
        if q.events.len() < cfg.batch_max_events && q.bytes < cfg.batch_max_bytes {
            return;
        }
        Queue::take_batch(&mut q, cfg.batch_max_events, cfg.batch_max_bytes)
    };
    let mut batch = Batch::new(events, false);
    batch.encode(cfg.compression);
    held.batches.push_back(batch);
}

/// "1 event", "3 events".
pub fn count_events(n: u64) -> String {
    format!("{n} event{}", if n == 1 { "" } else { "s" })
}

enum Step {
    Send,
    Replay,
    Continue,
    Exit,
}

pub struct Worker {
    shared: Arc<Shared>,
    transport: Transport,
    cache: Option<Cache>,
    jitter: Jitter,
    /// Consecutive failed attempts, whatever the batch: the backoff is the network's.
    failures: u32,
    backoff_until: Option<Instant>,
    /// The collector's `Retry-After`: not skipped by a flush.
    retry_after_until: Option<Instant>,
    time_delta_ms: Option<i64>,
    replay_pending: bool,
    /// Claimed cache entries not yet resolved; the claim file is emptied when it reaches 0.
    claimed_outstanding: usize,
    put_back: Fingerprints,
    /// Flush generation whose request to skip the backoff has been served.
    flush_gen_served: u64,
}

impl Worker {
    pub fn new(shared: Arc<Shared>) -> Self {
        let cache = shared.new_cache().map(|c| c.owned_by(shared.clone()));
        let replay_pending = cache.is_some();
        Worker {
            transport: Transport::new(&shared.config),
            cache,
            jitter: Jitter::new(),
            failures: 0,
            backoff_until: None,
            retry_after_until: None,
            time_delta_ms: None,
            replay_pending,
            claimed_outstanding: 0,
            put_back: Fingerprints::new(),
            flush_gen_served: 0,
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
            let step = self.next_step();
            match step {
                Step::Send => self.send_front(),
                Step::Replay => self.replay_chunk(),
                Step::Continue => {}
                Step::Exit => break,
            }
            self.publish_progress();
            // The critical-events file shrinks here, off the callers' threads.
            if let Some(cache) = &self.cache {
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
            self.drop_all_killed(false);
            self.replay_pending = false;
            // A flush may have asked before this wait began: tell it now what is resolved.
            self.publish_progress();
            #[cfg(debug_assertions)]
            kill_sleep_gate();
        }
        let held_empty = self.shared.held.lock().batches.is_empty();
        let mut q = self.shared.queue.state.lock();
        let shutdown = q.shutdown_deadline;
        if let Some(deadline) = shutdown {
            if now >= deadline || killed {
                return Step::Exit;
            }
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
                    .saturating_sub(crate::clock::now_ms()),
            );
            let wake = shutdown.map_or(now + until, |d| d.min(now + until));
            self.shared.queue.wake.wait_until(&mut q, wake);
            return Step::Continue;
        }
        if !held_empty {
            let floor = self.retry_after_until.filter(|t| *t > now);
            let skip_backoff = shutdown.is_none() && q.flush_gen != self.flush_gen_served;
            let ready_at = if skip_backoff {
                floor
            } else {
                floor.max(self.backoff_until.filter(|t| *t > now))
            };
            match ready_at {
                None => {
                    if skip_backoff {
                        self.flush_gen_served = q.flush_gen;
                    }
                    return Step::Send;
                }
                // At shutdown a batch that is backing off is not tried again: it is persisted.
                Some(_) if shutdown.is_some() => return Step::Exit,
                Some(at) => {
                    self.shared.queue.wake.wait_until(&mut q, at);
                    return Step::Continue;
                }
            }
        }
        // Cache entries take room in memory like logged events; when memory is full of logged
        // events, those are sent first and the replay waits. A shutdown does not stop the
        // replay: the entries present at start are this session's work, and a short-lived
        // process (init, log, shutdown) must drain the cache too.
        let room = self.replay_room();
        if self.replay_pending && room > 0 {
            return Step::Replay;
        }
        let Some(front) = q.events.front() else {
            if shutdown.is_some() {
                return Step::Exit;
            }
            self.shared.queue.wake.wait(&mut q);
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
        let events = Queue::take_batch(&mut q, cfg.batch_max_events, cfg.batch_max_bytes);
        drop(q);
        self.shared
            .held
            .lock()
            .batches
            .push_back(Batch::new(events, false));
        Step::Send
    }

    fn send_front(&mut self) {
        let compression = self.shared.config.compression;
        let body = {
            let mut held = self.shared.held.lock();
            let Some(batch) = held.batches.front_mut() else {
                return;
            };
            batch.encode(compression)
        };
        // Another process may have been told to stop since this one started.
        self.shared.kill.reload();
        if self.shared.kill.active() {
            self.drop_all_killed(false);
            return;
        }
        let deadline = self.shared.queue.state.lock().shutdown_deadline;
        Stats::add(&self.shared.stats.http_requests, 1);
        let post = || {
            self.transport
                .post(&body.payload, body.encoding, self.time_delta_ms, deadline)
        };
        // With a full batch already waiting, encode it while this request is in flight: the
        // collector's work and ours overlap instead of taking turns.
        let result = if next_batch_waiting(&self.shared) {
            std::thread::scope(|scope| {
                let request = scope.spawn(post);
                prepare_next_batch(&self.shared);
                request
                    .join()
                    .unwrap_or_else(|_| Err(NetworkError("the request thread panicked".into())))
            })
        } else {
            post()
        };
        self.apply(result);
    }

    /// Applies the response policy of [`crate::response::classify`] to the front batch.
    fn apply(&mut self, result: Result<HttpResponse, NetworkError>) {
        let now = Instant::now();
        let cfg = self.shared.config.clone();
        let mut kill_seconds = None;
        match &result {
            Ok(r) => {
                let d = directives(r);
                if let Some(delta) = d.time_delta_ms {
                    self.time_delta_ms = Some(delta);
                }
                if let Some(kill) = d.kill {
                    if kill.names(cfg.ikey.tenant()) {
                        kill_seconds = Some(kill.seconds);
                    }
                }
                if !(200..300).contains(&r.status) {
                    tel_log!(
                        Level::Debug,
                        "collector answered HTTP {}; Collector-Error: {}; body: {}",
                        r.status,
                        r.collector_error().unwrap_or("(none)"),
                        r.body_excerpt()
                    );
                }
            }
            Err(e) => tel_log!(Level::Debug, "request to the collector failed: {}", e.0),
        }
        let verdict = classify(&result);
        let stats = &self.shared.stats;
        if !matches!(verdict, Verdict::Accepted(_)) {
            Stats::add(&stats.http_failures, 1);
        }
        let mut held = self.shared.held.lock();
        if held.abandoned {
            return;
        }
        let Some(mut batch) = held.batches.pop_front() else {
            return;
        };
        let n = batch.events.len();
        let status = result.as_ref().map_or(0, |r| r.status);
        let refusal = |what: String| {
            let r = result.as_ref().ok();
            crate::delivery::refusal_reason(
                &what,
                r.and_then(|r| r.collector_error()),
                r.map_or(&[][..], |r| &r.body[..]),
            )
        };
        let mut release_claim = 0;
        let mut to_persist = false;
        match verdict {
            Verdict::Accepted(refused) => {
                let rejected = refused.count(n);
                let is_refused = |i: usize| match &refused {
                    Refused::None => false,
                    Refused::All => true,
                    Refused::Some(v) => v.contains(&i),
                };
                let mut good: Vec<&Event> = Vec::with_capacity(n);
                let mut bad: Vec<&Event> = Vec::new();
                for (i, e) in batch.events.iter().enumerate() {
                    if is_refused(i) {
                        bad.push(e);
                    } else {
                        good.push(e);
                    }
                }
                self.shared.resolve(Outcome::Sent, &good, status, || {
                    format!("accepted by the collector (HTTP {status})")
                });
                self.shared.resolve(Outcome::Rejected, &bad, status, || {
                    refusal(format!(
                        "the collector accepted the request but refused these events (HTTP {status}); they are not retried"
                    ))
                });
                if rejected > 0 {
                    let what = match &refused {
                        Refused::All => "all".to_owned(),
                        Refused::Some(i) => format!("{i:?}"),
                        Refused::None => String::new(),
                    };
                    tel_log!(
                        Level::Info,
                        "collector refused {rejected} of {} (indices {what}): {}",
                        count_events(n as u64),
                        result
                            .as_ref()
                            .map(|r| r.body_excerpt())
                            .unwrap_or_default()
                    );
                }
                self.failures = 0;
                self.backoff_until = None;
                if batch.replayed {
                    release_claim = n;
                }
            }
            Verdict::Rejected if kill_seconds.is_none() => {
                let all: Vec<&Event> = batch.events.iter().collect();
                self.shared.resolve(Outcome::Rejected, &all, status, || {
                    refusal(format!(
                        "the collector refused the request with HTTP {status}: not retried, not cached"
                    ))
                });
                let r = result.as_ref().ok();
                tel_log!(
                    Level::Info,
                    "collector rejected {} with HTTP {} ({}): not retried, not cached",
                    count_events(n as u64),
                    r.map_or(0, |r| r.status),
                    r.and_then(|r| r.collector_error())
                        .unwrap_or("no Collector-Error")
                );
                if batch.replayed {
                    release_claim = n;
                }
            }
            Verdict::Split if kill_seconds.is_none() => {
                if n > 1 {
                    let second = batch.events.split_off(n / 2);
                    tel_log!(
                        Level::Info,
                        "collector answered 413 for {}: sending them as two requests of {} and {}",
                        count_events(n as u64),
                        batch.events.len(),
                        second.len()
                    );
                    held.batches.push_front(Batch::new(second, batch.replayed));
                    held.batches
                        .push_front(Batch::new(batch.events, batch.replayed));
                } else {
                    self.shared
                        .resolve(Outcome::Rejected, &[&batch.events[0]], status, || {
                            refusal(
                                "the collector answered 413 (too large) for this single event"
                                    .to_owned(),
                            )
                        });
                    tel_log!(
                        Level::Info,
                        "collector answered 413 for a single event of {} bytes: rejected",
                        batch.events[0].line.len()
                    );
                    if batch.replayed {
                        release_claim = 1;
                    }
                }
            }
            Verdict::Retry { retry_after } if kill_seconds.is_none() => {
                self.failures += 1;
                batch.attempts += 1;
                let mut wait = backoff::delay(
                    self.failures,
                    cfg.retry_initial_ms,
                    cfg.retry_max_ms,
                    &mut self.jitter,
                );
                if let Some(ra) = retry_after {
                    self.retry_after_until = Some(now + ra);
                    wait = wait.max(ra);
                }
                self.backoff_until = Some(now + wait);
                if batch.attempts >= cfg.retry_max_attempts && self.cache.is_some() {
                    // Stays in hand while it is written: a shutdown taking over meanwhile
                    // persists it too, and the cache never holds a line twice.
                    held.batches.push_front(batch);
                    to_persist = true;
                } else {
                    Stats::add(&stats.retries, 1);
                    let attempt = if batch.attempts >= cfg.retry_max_attempts {
                        format!(
                            "attempt {} failed; no usable cache, so they stay in memory",
                            batch.attempts
                        )
                    } else {
                        format!(
                            "attempt {} of {} failed",
                            batch.attempts, cfg.retry_max_attempts
                        )
                    };
                    tel_log!(
                        Level::Info,
                        "backing off: {} will be tried again in {} ms ({attempt})",
                        count_events(n as u64),
                        wait.as_millis()
                    );
                    // Without a usable cache the batch stays in memory and keeps being retried.
                    held.batches.push_front(batch);
                }
            }
            // A kill directive on a refused request: the batch in hand goes with the rest.
            _ => held.batches.push_front(batch),
        }
        drop(held);
        if to_persist {
            self.persist_exhausted();
        }
        if release_claim > 0 {
            self.resolved_claimed(release_claim);
        }
        if let Some(seconds) = kill_seconds {
            self.kill(seconds);
        }
    }

    /// Our tenant was named in `kill-tokens`: stop everything for the window. The batch in hand
    /// is dropped, not cached: a cached batch would only be refused again by the next process
    /// started inside the window.
    fn kill(&mut self, seconds: u64) {
        let until = self.shared.kill.engage(seconds);
        let dropped = self.drop_all_killed(true);
        tel_log!(
            Level::Info,
            "collector told tenant o:{} to stop sending for {seconds} s (until {}): {} dropped, no request until then",
            self.shared.config.ikey.tenant(),
            crate::clock::iso8601(until),
            count_events(dropped)
        );
        self.replay_pending = false;
    }

    /// Drops what is held and queued (and, when `purge_cache`, the tenant's cache entries).
    fn drop_all_killed(&mut self, purge_cache: bool) -> u64 {
        let stats = &self.shared.stats;
        let held: Vec<Batch> = self.shared.held.lock().batches.drain(..).collect();
        let queued = Queue::take_all(&mut self.shared.queue.state.lock());
        let events: Vec<&Event> = held
            .iter()
            .flat_map(|b| b.events.iter())
            .chain(queued.iter())
            .collect();
        let mut n = events.len() as u64;
        self.shared
            .resolve(Outcome::DroppedKilled, &events, 0, kill_reason);
        self.claimed_outstanding = 0;
        if let Some(cache) = &self.cache {
            cache.release_claim();
            if purge_cache {
                if let Ok(purged) = cache.purge() {
                    Stats::add(&stats.replayed, purged.len() as u64);
                    Stats::add(&stats.dropped_killed, purged.len() as u64);
                    n += purged.len() as u64;
                    self.shared.delivery.record(|| {
                        crate::delivery::Report::new(
                            Outcome::DroppedKilled,
                            purged.iter().map(|l| crate::envelope::envelope_name(l)),
                            0,
                            kill_reason(),
                        )
                    });
                }
            }
        }
        n
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
        let watermark = held_min.map_or(queue_front, |h| h.min(queue_front));
        let mut p = self.shared.progress.lock();
        p.watermark = watermark;
        p.replay_done = !self.replay_pending && self.claimed_outstanding == 0;
        drop(p);
        self.shared.progress_changed.notify_all();
    }

    /// Shutdown: whatever is still pending goes to the cache (or is counted as dropped) and
    /// the end is announced: the counters are final. Then the reports go out and the log lines
    /// are written, which the shutdown waits for within its margin only, so that a slow or
    /// blocking callback (delivery or logger) never holds up `tel_shutdown`.
    fn finish(mut self) {
        let lines = crate::logging::hold();
        let deadline = self
            .shared
            .queue
            .state
            .lock()
            .shutdown_deadline
            .unwrap_or_else(Instant::now);
        let hit_deadline = Instant::now() >= deadline;
        {
            let mut held = self.shared.held.lock();
            if held.abandoned {
                return;
            }
            held.finishing = true;
        }
        // Past the deadline, allow the margin abi.md grants for the last write.
        let write_by = deadline.max(Instant::now()) + budget::LAST_WRITE;
        let resolved = self.shared.drain_and_persist(self.cache.as_ref(), write_by);
        if let Some(c) = self.cache.as_mut() {
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

fn kill_reason() -> String {
    "dropped: the collector told this tenant to stop sending for a while (kill window)".to_owned()
}
