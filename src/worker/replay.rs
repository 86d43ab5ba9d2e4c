//! The worker's side of the on-disk cache: taking entries up for replay within the memory
//! bound, and writing back a batch whose attempts ran out.

use super::{count_events, Batch, Event, Worker};
use crate::logging::{tel_log, Level};
use crate::stats::{Outcome, Stats};
use std::time::{Duration, Instant};

impl Worker {
    /// How many cache entries may be taken up now without passing `queue_max_events`.
    pub(super) fn replay_room(&self) -> usize {
        let cfg = &self.shared.config;
        let pending = self
            .shared
            .stats
            .pending
            .load(std::sync::atomic::Ordering::Relaxed) as usize;
        cfg.queue_max_events
            .saturating_sub(pending)
            .min(cfg.batch_max_events)
    }

    /// Claims the next chunk of cache entries, within the memory bound.
    pub(super) fn replay_chunk(&mut self) {
        let cfg = self.shared.config.clone();
        let room = self.replay_room();
        let Some(cache) = self.cache.as_mut() else {
            self.replay_pending = false;
            return;
        };
        let marker = &self.shared.epoch_marker;
        let put_back = &self.put_back;
        let skip = |line: &str| {
            line.contains(marker.as_str()) || put_back.contains(&crate::cache::fingerprint(line))
        };
        match cache.claim(room, cfg.batch_max_bytes, &skip) {
            Ok((lines, change)) => {
                Stats::add(&self.shared.stats.cache_evicted, change.evicted as u64);
                if change.rejected > 0 {
                    // Taken up like every entry, and resolved at once: never sent.
                    let n = change.rejected as u64;
                    Stats::add(&self.shared.stats.replayed, n);
                    Stats::add(&self.shared.stats.pending, n);
                    self.shared.stats.resolve(Outcome::Rejected, n);
                    tel_log!(
                        Level::Info,
                        "{} in the cache fail the checks tel_log makes (size, name, JSON, numbers, a CR): rejected, not sent",
                        count_events(n)
                    );
                }
                if change.evicted > 0 {
                    tel_log!(
                        Level::Info,
                        "{} dropped from the cache: older than cache_max_age_s or over cache_max_bytes",
                        count_events(change.evicted as u64)
                    );
                }
                if lines.is_empty() {
                    self.replay_pending = false;
                    return;
                }
                let n = lines.len();
                Stats::add(&self.shared.stats.replayed, n as u64);
                Stats::add(&self.shared.stats.pending, n as u64);
                self.claimed_outstanding += n;
                let now = Instant::now();
                let events = lines
                    .into_iter()
                    .map(|line| Event {
                        line,
                        ordinal: Event::REPLAYED,
                        enqueued: now,
                    })
                    .collect();
                self.shared
                    .held
                    .lock()
                    .batches
                    .push_back(Batch::new(events, true));
                tel_log!(
                    Level::Debug,
                    "replaying {} from the cache",
                    count_events(n as u64)
                );
            }
            Err(_) => {
                // Logged once by the cache; an unusable cache must not stop delivery.
                self.replay_pending = false;
            }
        }
    }

    /// A batch whose attempts ran out goes to the cache file for a later process.
    pub(super) fn persist_exhausted(&mut self, batch: Batch) {
        let n = batch.events.len();
        let lines: Vec<&str> = batch.events.iter().map(|e| e.line.as_str()).collect();
        let cache = self.cache.as_ref().expect("checked by caller");
        match cache.persist(&lines, Instant::now() + Duration::from_secs(2)) {
            Ok(change) => {
                self.shared.stats.resolve(Outcome::Persisted, n as u64);
                Stats::add(&self.shared.stats.cache_evicted, change.evicted as u64);
                self.put_back
                    .extend(lines.iter().map(|l| crate::cache::fingerprint(l)));
                tel_log!(
                    Level::Info,
                    "{} undeliverable after {} attempts: written to the cache file for a later process",
                    count_events(n as u64),
                    batch.attempts
                );
                if batch.replayed {
                    self.resolved_claimed(n);
                }
            }
            Err(_) => {
                // Keep it in memory and keep trying at the longest backoff.
                self.shared.held.lock().batches.push_front(batch);
            }
        }
    }

    pub(super) fn resolved_claimed(&mut self, n: usize) {
        self.claimed_outstanding = self.claimed_outstanding.saturating_sub(n);
        if self.claimed_outstanding == 0 {
            if let Some(c) = &self.cache {
                c.release_claim();
            }
        }
    }
}
