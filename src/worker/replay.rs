//! The worker's side of the on-disk cache: taking entries up for replay within the memory
//! bound, writing back a batch whose attempts ran out, and releasing the claim once what it
//! lists is resolved.

use crate::cache::entry::{fingerprint, mark, unmark, Fingerprints};
use crate::cache::Cache;
use crate::sys::log::{tel_log, Level};
use crate::worker::batch::{Batch, SPILLING};
use crate::worker::queue::Event;
use crate::worker::shared::Shared;
use crate::worker::stats::{count_events, Outcome, Stats};
use std::time::{Duration, Instant};

/// The session's cache and how far its replay has come.
pub struct Replay {
    /// None without a usable cache (`cache_path: null`, or no folder for it).
    pub cache: Option<Cache>,
    /// Entries present at start may still be waiting to be claimed.
    pending: bool,
    /// Claimed cache entries not yet resolved; the claim file is emptied when it reaches 0.
    claimed_outstanding: usize,
    /// Lines this session wrote back (a batch whose attempts ran out): not claimed again by it.
    put_back: Fingerprints,
    /// Lines this session wrote to the cache itself, moved from a full queue (see
    /// `worker::spill`) or written while paused (ABI 1.2): claimed again by it, although they
    /// carry its epoch.
    spilled: Fingerprints,
}

impl Replay {
    pub fn new(cache: Option<Cache>) -> Self {
        Replay {
            pending: cache.is_some(),
            cache,
            claimed_outstanding: 0,
            put_back: Fingerprints::new(),
            spilled: Fingerprints::new(),
        }
    }

    /// Whether entries may still be waiting to be claimed.
    pub fn pending(&self) -> bool {
        self.pending
    }

    /// Every entry present at start is resolved (or there is no cache).
    pub fn done(&self) -> bool {
        !self.pending && self.claimed_outstanding == 0
    }

    /// A kill window: nothing more is claimed, and what was claimed is dropped with the rest.
    pub fn stop(&mut self) {
        self.pending = false;
        self.claimed_outstanding = 0;
        if let Some(cache) = &self.cache {
            cache.release_claim();
        }
    }

    /// Claims the next chunk of cache entries, within the memory bound.
    pub fn chunk(&mut self, shared: &Shared) {
        let cfg = shared.config.clone();
        let room = self.room(shared);
        let Some(cache) = self.cache.as_mut() else {
            self.pending = false;
            return;
        };
        cache.forget_purged_claim();
        let marker = &shared.epoch_marker;
        let put_back = &self.put_back;
        let spilled = &self.spilled;
        let skip = |line: &str| {
            let own = line.contains(marker.as_str());
            if !own && put_back.is_empty() {
                return false;
            }
            let f = fingerprint(line);
            (own && !spilled.contains(&f)) || put_back.contains(&f)
        };
        let claimed = cache.claim(room, cfg.batch_max_bytes, &skip);
        let (lines, change) = match claimed {
            Ok(claimed) => {
                for line in &claimed.0 {
                    self.spilled.remove(&fingerprint(line));
                }
                claimed
            }
            Err(_) => {
                // Logged once by the cache; an unusable cache must not stop delivery.
                shared.held.lock().committing = false;
                self.pending = false;
                return;
            }
        };
        let n = lines.len();
        let now = Instant::now();
        let events: Vec<Event> = lines
            .iter()
            .map(|line| {
                let (bare, priority) = unmark(line);
                Event {
                    line: bare.to_owned(),
                    ordinal: Event::REPLAYED,
                    enqueued: now,
                    priority,
                    durable: None,
                }
            })
            .collect();
        {
            // What the claim wrote is counted and in hand before a shutdown may take over (it
            // waits while `committing`): the counters are final once `tel_shutdown` returns.
            let mut held = shared.held.lock();
            held.committing = false;
            if held.abandoned {
                // Taken over before the claim wrote anything: nothing changed on disk.
                return;
            }
            let stats = &shared.stats;
            Stats::add(&stats.cache_evicted, change.evicted as u64);
            if change.rejected > 0 {
                // Taken up like every entry, and resolved at once: never sent.
                let r = change.rejected as u64;
                Stats::add(&stats.replayed, r);
                Stats::add(&stats.pending, r);
                stats.resolve(Outcome::Rejected, r);
            }
            if n > 0 {
                Stats::add(&stats.replayed, n as u64);
                Stats::add(&stats.pending, n as u64);
                held.batches.push_back(Batch::new(events, true));
            }
        }
        if change.rejected > 0 {
            tel_log!(
                Level::Info,
                "{} in the cache fail the checks tel_log makes (size, name, JSON, numbers, a CR): rejected, not sent",
                count_events(change.rejected as u64)
            );
        }
        if change.evicted > 0 {
            tel_log!(
                Level::Info,
                "{} dropped from the cache: older than cache_max_age_s or over cache_max_bytes",
                count_events(change.evicted as u64)
            );
        }
        if n == 0 {
            self.pending = false;
            // Spilled entries not found any more were evicted (counted above).
            self.spilled.clear();
            return;
        }
        self.claimed_outstanding += n;
        tel_log!(
            Level::Debug,
            "replaying {} from the cache",
            count_events(n as u64)
        );
    }

    /// `lines` (as written) were moved from a full queue to the cache: to be claimed again, and
    /// until then `tel_flush` waits for them.
    pub fn spilled(&mut self, lines: &[String]) {
        self.spilled.extend(lines.iter().map(|l| fingerprint(l)));
        self.pending = true;
    }

    /// The front batch ran out of attempts: it goes to the cache file for a later process. It
    /// stays in hand while it is written (a shutdown taking over persists it instead).
    pub fn persist_exhausted(&mut self, shared: &Shared) {
        let Some((lines, attempts)) = shared.held.lock().batches.front().map(|b| {
            let lines: Vec<String> = b.events.iter().map(|e| mark(&e.line, e.priority)).collect();
            (lines, b.attempts)
        }) else {
            return;
        };
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let Some(cache) = self.cache.as_ref() else {
            return;
        };
        let written = cache.persist(&refs, Instant::now() + Duration::from_secs(2));
        let batch = {
            // Resolved under the lock a shutdown takes over with: it waits while `committing`,
            // so what was written is counted before `tel_shutdown` returns.
            let mut held = shared.held.lock();
            held.committing = false;
            let Ok(change) = written else {
                // Keep it in memory and keep trying at the longest backoff.
                return;
            };
            if held.abandoned {
                return; // the shutdown resolved it
            }
            let batch = held
                .batches
                .pop_front()
                .expect("the front batch stays in hand");
            let events: Vec<&Event> = batch.events.iter().collect();
            shared.resolve(Outcome::Persisted, &events, 0, || {
                format!(
                    "undeliverable after {attempts} attempts: written to the cache file for a later process"
                )
            });
            Stats::add(&shared.stats.cache_evicted, change.evicted as u64);
            batch
        };
        let n = batch.events.len();
        self.put_back.extend(lines.iter().map(|l| fingerprint(l)));
        tel_log!(
            Level::Info,
            "{} undeliverable after {} attempts: written to the cache file for a later process",
            count_events(n as u64),
            attempts
        );
        if batch.replayed {
            self.resolved_claimed(n);
        }
    }

    /// While paused (ABI 1.2): everything in hand and not on the wire, and everything queued,
    /// goes to the cache file instead of the network (`persisted`), to be taken up again after
    /// `resume`. True when it was written (or nothing waited); on failure, or without a cache,
    /// the events stay in memory.
    pub fn spill(&mut self, shared: &Shared) -> bool {
        let Some(cache) = self.cache.as_ref() else {
            return false;
        };
        let Some((lines, replayed)) = shared.gather_for_cache() else {
            return true;
        };
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let written = cache.persist(&refs, Instant::now() + Duration::from_secs(2));
        let mut held = shared.held.lock();
        held.committing = false;
        if held.abandoned {
            return false; // the shutdown resolved them
        }
        let Some(at) = held
            .batches
            .iter()
            .position(|b| b.request == Some(SPILLING))
        else {
            return false; // a kill took them
        };
        let Ok(change) = written else {
            // In hand as a batch like any other, sent after `resume`.
            held.batches[at].request = None;
            return false;
        };
        let batch = held.batches.remove(at).expect("found above");
        let events: Vec<&Event> = batch.events.iter().collect();
        shared.resolve(Outcome::Persisted, &events, 0, || {
            "paused (tel_pause): written to the cache file, sent after resume".to_owned()
        });
        Stats::add(&shared.stats.cache_evicted, change.evicted as u64);
        drop(held);
        self.spilled.extend(lines.iter().map(|l| fingerprint(l)));
        self.pending = true;
        if replayed > 0 {
            self.resolved_claimed(replayed);
        }
        true
    }

    /// After `resume`: the cache is looked at again (what was spilled while paused included).
    pub fn resume(&mut self) {
        if self.cache.is_some() {
            self.pending = true;
        }
    }

    /// `n` claimed entries are resolved; the claim file is emptied once none is left.
    pub fn resolved_claimed(&mut self, n: usize) {
        self.claimed_outstanding = self.claimed_outstanding.saturating_sub(n);
        if self.claimed_outstanding == 0 {
            if let Some(c) = &self.cache {
                c.release_claim();
            }
        }
    }
}

impl Replay {
    /// How many cache entries may be taken up now: within `queue_max_events`, and while this
    /// session's spilled entries are outstanding, within half of it (so that taking them up
    /// does not refill the queue it spilled).
    pub fn room(&self, shared: &Shared) -> usize {
        let room = room(shared);
        if self.spilled.is_empty() {
            return room;
        }
        let pending = shared
            .stats
            .pending
            .load(std::sync::atomic::Ordering::Relaxed) as usize;
        room.min((shared.config.queue_max_events / 2).saturating_sub(pending))
    }
}

/// How many cache entries may be taken up now without passing `queue_max_events`.
pub fn room(shared: &Shared) -> usize {
    let cfg = &shared.config;
    let pending = shared
        .stats
        .pending
        .load(std::sync::atomic::Ordering::Relaxed) as usize;
    cfg.queue_max_events
        .saturating_sub(pending)
        .min(cfg.batch_max_events)
}
