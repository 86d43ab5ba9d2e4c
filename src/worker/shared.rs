//! What the worker shares with the callers' threads, and the two things both sides do with it:
//! resolving events (counters, critical-events file, delivery reports, all in one place) and,
//! at shutdown, draining and persisting what is left.

use crate::cache::claim::{ClaimHandle, TakenClaim};
use crate::cache::entry::mark;
use crate::cache::files::CacheFiles;
use crate::cache::owner::Owner;
use crate::cache::Cache;
use crate::model::config::Config;
use crate::policy::kill::{KillSwitch, KILLED};
use crate::sys::log::{tel_log, Level};
use crate::sys::sync::{Condvar, Mutex};
use crate::worker::batch::Held;
use crate::worker::critical::CriticalLog;
use crate::worker::delivery::{Delivery, Report};
use crate::worker::queue::{Event, Queue};
use crate::worker::stats::{count_events, Outcome, Stats};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What `tel_flush` and `tel_shutdown` wait on.
#[derive(Debug, Default)]
pub struct Progress {
    /// Every logged event with an ordinal below this is resolved.
    pub watermark: u64,
    /// The cache entries present at start are resolved (or persistence is off).
    pub replay_done: bool,
    /// The last `gate_gen` the worker acted on (see `gate`).
    pub gate_seen: u64,
    /// Everything is resolved and reported; the worker touches nothing any more.
    pub exited: bool,
    /// The worker stopped because the shutdown deadline passed with work left.
    pub hit_deadline: bool,
    /// The worker thread is about to end (its last log lines are written).
    pub done: bool,
}

pub struct Shared {
    pub config: Arc<Config>,
    pub stats: Arc<Stats>,
    pub kill: Arc<KillSwitch>,
    pub queue: Queue,
    pub held: Mutex<Held>,
    pub progress: Mutex<Progress>,
    pub progress_changed: Condvar,
    pub cache_files: Option<CacheFiles>,
    /// This session's `ext.sdk.epoch` marker; its own persisted entries are not replayed by it.
    pub epoch_marker: String,
    pub delivery: Delivery,
    /// The critical-events file (created at the first critical event). Its locks are taken
    /// before the queue lock when both are needed (see [`crate::worker::critical`]).
    pub critical: CriticalLog,
    /// `held.abandoned`, readable without the lock: the worker's cache work checks it as it goes.
    pub taken_over: AtomicBool,
    /// The worker's claim file, for a shutdown that takes over (see [`TakenOver`]).
    pub claim_file: Mutex<Option<ClaimHandle>>,
    /// ABI 1.2: the audit file (`audit_path`, else `TEL_AUDIT`), written when an answer is
    /// applied.
    pub audit: Option<crate::privacy::audit::AuditFile>,
}

impl Owner for Shared {
    fn taken_over(&self) -> bool {
        self.taken_over.load(Ordering::Acquire)
    }

    fn begin_write(&self) -> bool {
        let mut held = self.held.lock();
        if held.abandoned {
            return false;
        }
        held.committing = true;
        true
    }

    fn adopt_claim(&self, claim: ClaimHandle) -> bool {
        let held = self.held.lock();
        if held.abandoned {
            return false;
        }
        *self.claim_file.lock() = Some(claim);
        true
    }
}

impl Shared {
    pub fn new_cache(&self) -> Option<Cache> {
        self.cache_files.as_ref().map(|f| {
            Cache::new(
                f.clone(),
                self.config.ikey.tenant(),
                self.config.cache_max_bytes,
                self.config.cache_max_age_s,
            )
            .with_event_max_bytes(self.config.event_max_bytes)
        })
    }

    /// The one place events leave `pending`: the counter of `outcome`, the critical-events file
    /// (a resolved critical event no longer needs it) and the delivery report.
    pub fn resolve(
        &self,
        outcome: Outcome,
        events: &[&Event],
        status: u16,
        reason: impl FnOnce() -> String,
    ) {
        if events.is_empty() {
            return;
        }
        self.stats.resolve(outcome, events.len() as u64);
        if events.iter().any(|e| e.durable.is_some()) {
            self.critical
                .resolved(events.iter().filter_map(|e| e.durable));
        }
        self.delivery
            .record(|| Report::new(outcome, events.iter().map(|e| e.name()), status, reason()));
    }

    /// Shutdown, once, by whoever owns the end (the worker, or a shutdown that stopped waiting
    /// for a worker stuck in a request): takes every event still held or queued and resolves
    /// it. Inside a kill window they are dropped (`dropped_killed`); otherwise the critical ones
    /// stay in the critical-events file for the next process and the rest go to the cache file
    /// (`persisted`), or are counted in `dropped_shutdown` when that is impossible. `write_by`
    /// bounds the wait for another process's cache lock. Returns how many were resolved.
    pub fn drain_and_persist(&self, cache: Option<&Cache>, write_by: Instant) -> usize {
        let batches: Vec<_> = self.held.lock().batches.drain(..).collect();
        let queued = Queue::take_all(&mut self.queue.state.lock());
        let events: Vec<&Event> = batches
            .iter()
            .flat_map(|b| b.events.iter())
            .chain(queued.iter())
            .collect();
        let n = events.len();
        // No append from now on; one in progress is finished (its push refused) first.
        self.critical.close();
        let consent = self.consent();
        if consent != crate::worker::stats::GRANTED {
            // Nothing is written without consent (abi.md 1.2, "Consent").
            let reason = if consent == crate::worker::stats::DENIED {
                crate::worker::stats::DENIED_REASON
            } else {
                crate::worker::stats::UNANSWERED_REASON
            };
            self.resolve(Outcome::DroppedConsent, &events, 0, || reason.to_owned());
            self.critical.discard();
            return n;
        }
        if self.kill.active() {
            self.resolve(Outcome::DroppedKilled, &events, 0, || KILLED.to_owned());
            self.critical.discard();
            return n;
        }
        // The critical events whose entries the file holds stay there for the next process;
        // the rest (critical ones whose append failed or was purged included) go to the cache.
        let (kept, to_cache): (Vec<&Event>, Vec<&Event>) = events
            .iter()
            .partition(|e| e.durable.is_some_and(|id| self.critical.holds(id)));
        self.critical.release(cache, write_by);
        self.resolve(Outcome::Persisted, &kept, 0, || {
            "undelivered at shutdown: kept in the cache for the next process".to_owned()
        });
        self.persist_or_drop(cache, &to_cache, write_by);
        n
    }

    /// Resolves `events` that could not be delivered: into the cache if it is usable, else
    /// counted as `dropped_shutdown`.
    pub fn persist_or_drop(&self, cache: Option<&Cache>, events: &[&Event], deadline: Instant) {
        let n = events.len() as u64;
        if n == 0 {
            return;
        }
        let lines: Vec<String> = events.iter().map(|e| mark(&e.line, e.priority)).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let written = cache.map(|c| c.persist(&refs, deadline));
        match written {
            Some(Ok(change)) => {
                self.resolve(Outcome::Persisted, events, 0, || {
                    "undelivered: kept in the cache file for a later process".to_owned()
                });
                Stats::add(&self.stats.cache_evicted, change.evicted as u64);
                tel_log!(
                    Level::Info,
                    "{} undelivered: written to the cache file",
                    count_events(n)
                );
            }
            Some(Err(e)) => {
                let why =
                    format!("undelivered at shutdown and dropped: the cache is unusable ({e})");
                self.resolve(Outcome::DroppedShutdown, events, 0, || why);
                tel_log!(
                    Level::Info,
                    "{} undelivered: dropped, the cache is unusable ({e})",
                    count_events(n)
                );
            }
            None => {
                self.resolve(Outcome::DroppedShutdown, events, 0, || {
                    "undelivered at shutdown and dropped: persistence is disabled (cache_path is null)"
                        .to_owned()
                });
                tel_log!(
                    Level::Info,
                    "{} undelivered: dropped, persistence is disabled",
                    count_events(n)
                );
            }
        }
    }
}

impl Shared {
    /// Who owns the end: a shutdown takes over from a worker stuck past the deadline, unless the
    /// worker is writing to disk (its end, or the cache), which the shutdown waits for instead.
    pub fn take_over(&self) -> Option<TakenOver> {
        let mut held = self.held.lock();
        if held.finishing || held.abandoned || held.committing {
            return None;
        }
        held.abandoned = true;
        self.taken_over.store(true, Ordering::Release);
        // Taken while the worker cannot have ended (it ends only once it sees `abandoned`), so
        // its claim stays open and locked until the shutdown has resolved what it lists. A claim
        // file the worker creates from now on is refused (see `adopt_claim`).
        Some(TakenOver {
            claim: self
                .claim_file
                .lock()
                .as_ref()
                .and_then(ClaimHandle::upgrade),
        })
    }
}

/// What a shutdown took over from a stuck worker besides the events: its claim file.
pub struct TakenOver {
    claim: Option<TakenClaim>,
}

impl TakenOver {
    /// Once every event in hand is resolved: the worker's claim file goes (see
    /// [`TakenClaim::delete`]), so that no empty claim file stays behind either.
    pub fn release_claim(self) {
        if let Some(claim) = self.claim {
            claim.delete();
        }
    }
}
