//! Carrying out a [`Decision`] of the policy (`policy::decide`): the events resolved and
//! reported, the log lines, the counters, the backoff, a split, a batch persisted, a kill.
//! What to do is decided there; this file only does it.

use crate::policy::decide::{Answer, Backoff, Decision, Effects, Fate};
use crate::policy::kill::KILLED;
use crate::privacy::audit::AuditOutcome;
use crate::sys::log::{tel_log, Level};
use crate::worker::batch::Batch;
use crate::worker::delivery::{refusal_reason, Report};
use crate::worker::queue::{Event, Queue};
use crate::worker::replay::Replay;
use crate::worker::shared::Shared;
use crate::worker::stats::{count_events, Outcome, Stats};
use std::time::Instant;

/// What the answers so far say about sending, whichever batch they answered.
#[derive(Debug, Default)]
pub struct Pacing {
    /// Failed attempts in a row, whatever the batch: the backoff is the network's.
    pub failures: u32,
    /// No request before this (a flush may skip it).
    pub backoff_until: Option<Instant>,
    /// The collector's `Retry-After`: not skipped by a flush.
    pub retry_after_until: Option<Instant>,
    /// `time-delta-millis`, echoed in every request as `time-delta-to-apply-millis`.
    pub time_delta_ms: Option<i64>,
}

impl Pacing {
    fn apply(&mut self, backoff: &Backoff, now: Instant) {
        match backoff {
            Backoff::Keep => {}
            Backoff::Reset => {
                self.failures = 0;
                self.backoff_until = None;
            }
            Backoff::Wait {
                failures,
                wait,
                retry_after,
            } => {
                self.failures = *failures;
                self.backoff_until = Some(now + *wait);
                if let Some(floor) = retry_after {
                    self.retry_after_until = Some(now + *floor);
                }
            }
        }
    }
}

/// Carries out `decision`, made on `answer` for the front batch (the one just sent), at `now`.
/// Nothing is done to a batch a shutdown has taken over.
pub fn carry_out(
    shared: &Shared,
    pacing: &mut Pacing,
    replay: &mut Replay,
    answer: &Answer,
    decision: Decision,
    now: Instant,
) {
    let Decision {
        batch: fate,
        session,
    } = decision;
    if let Some(delta) = session.time_delta_ms {
        pacing.time_delta_ms = Some(delta);
    }
    match answer {
        Ok(r) if !(200..300).contains(&r.status) => tel_log!(
            Level::Debug,
            "collector answered HTTP {}; Collector-Error: {}; body: {}",
            r.status,
            r.collector_error().unwrap_or("(none)"),
            r.body_excerpt()
        ),
        Ok(_) => {}
        Err(e) => tel_log!(Level::Debug, "request to the collector failed: {}", e.0),
    }
    if session.failed {
        Stats::add(&shared.stats.http_failures, 1);
    }
    let mut held = shared.held.lock();
    if held.abandoned {
        return;
    }
    let Some(mut batch) = held.batches.pop_front() else {
        return;
    };
    pacing.apply(&session.backoff, now);
    let n = batch.events.len();
    let status = answer.as_ref().map_or(0, |r| r.status);
    let refusal = |what: String| {
        let r = answer.as_ref().ok();
        refusal_reason(
            &what,
            r.and_then(|r| r.collector_error()),
            r.map_or(&[][..], |r| &r.body[..]),
        )
    };
    // Claimed cache entries this resolves, and whether the batch goes to the cache file.
    let mut resolved_claimed = 0;
    let mut persist = false;
    // The audit file's lines (abi.md 1.2): each event the collector answered, as sent.
    let audit = shared.audit.as_ref();
    let mut audited: Vec<(AuditOutcome, Vec<String>)> = Vec::new();
    let mut audit_lines = |outcome: AuditOutcome, events: &[&Event]| {
        if audit.is_some() && !events.is_empty() {
            audited.push((outcome, events.iter().map(|e| e.line.clone()).collect()));
        }
    };
    match fate {
        Fate::Delivered(refused) => {
            let mut good: Vec<&Event> = Vec::with_capacity(n);
            let mut bad: Vec<&Event> = Vec::new();
            for (i, e) in batch.events.iter().enumerate() {
                if refused.includes(i) {
                    bad.push(e);
                } else {
                    good.push(e);
                }
            }
            audit_lines(AuditOutcome::Sent, &good);
            audit_lines(AuditOutcome::Rejected, &bad);
            shared.resolve(Outcome::Sent, &good, status, || {
                format!("accepted by the collector (HTTP {status})")
            });
            shared.resolve(Outcome::Rejected, &bad, status, || {
                refusal(format!(
                    "the collector accepted the request but refused these events (HTTP {status}); they are not retried"
                ))
            });
            if !bad.is_empty() {
                tel_log!(
                    Level::Info,
                    "collector refused {} of {} (indices {refused}): {}",
                    bad.len(),
                    count_events(n as u64),
                    answer
                        .as_ref()
                        .map(|r| r.body_excerpt())
                        .unwrap_or_default()
                );
            }
            if batch.replayed {
                resolved_claimed = n;
            }
        }
        Fate::Rejected => {
            let all: Vec<&Event> = batch.events.iter().collect();
            audit_lines(AuditOutcome::Rejected, &all);
            shared.resolve(Outcome::Rejected, &all, status, || {
                refusal(format!(
                    "the collector refused the request with HTTP {status}: not retried, not cached"
                ))
            });
            let r = answer.as_ref().ok();
            tel_log!(
                Level::Info,
                "collector rejected {} with HTTP {} ({}): not retried, not cached",
                count_events(n as u64),
                status,
                r.and_then(|r| r.collector_error())
                    .unwrap_or("no Collector-Error")
            );
            if batch.replayed {
                resolved_claimed = n;
            }
        }
        Fate::Split { at } => {
            let second = batch.events.split_off(at);
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
        }
        Fate::TooLarge => {
            audit_lines(AuditOutcome::Rejected, &[&batch.events[0]]);
            shared.resolve(Outcome::Rejected, &[&batch.events[0]], status, || {
                refusal("the collector answered 413 (too large) for this single event".to_owned())
            });
            tel_log!(
                Level::Info,
                "collector answered 413 for a single event of {} bytes: rejected",
                batch.events[0].line.len()
            );
            if batch.replayed {
                resolved_claimed = 1;
            }
        }
        Fate::Retry {
            attempts,
            exhausted,
        } => {
            batch.attempts = attempts;
            Stats::add(&shared.stats.retries, 1);
            let attempt = if exhausted {
                format!("attempt {attempts} failed; no usable cache, so they stay in memory")
            } else {
                let max = shared.config.retry_max_attempts;
                format!("attempt {attempts} of {max} failed")
            };
            tel_log!(
                Level::Info,
                "backing off: {} will be tried again in {} ms ({attempt})",
                count_events(n as u64),
                waited(&session).as_millis()
            );
            // Without a usable cache the batch stays in memory and keeps being retried.
            held.batches.push_front(batch);
        }
        Fate::Persist { attempts } => {
            batch.attempts = attempts;
            // Stays in hand while it is written: a shutdown taking over meanwhile persists it
            // too, and the cache never holds a line twice.
            held.batches.push_front(batch);
            persist = true;
        }
        // Dropped with everything else by the kill below.
        Fate::Killed => held.batches.push_front(batch),
    }
    drop(held);
    if let Some(audit) = audit {
        for (outcome, lines) in &audited {
            audit.record(*outcome, status, lines);
        }
    }
    if persist {
        replay.persist_exhausted(shared);
    }
    if resolved_claimed > 0 {
        replay.resolved_claimed(resolved_claimed);
    }
    if let Some(seconds) = session.kill_seconds {
        kill(shared, replay, seconds);
    }
}

/// The wait a failure set, for the log line.
fn waited(session: &Effects) -> std::time::Duration {
    match session.backoff {
        Backoff::Wait { wait, .. } => wait,
        _ => std::time::Duration::ZERO,
    }
}

/// Our tenant was named in `kill-tokens`: stop everything for the window. The batch in hand
/// is dropped, not cached: a cached batch would only be refused again by the next process
/// started inside the window.
fn kill(shared: &Shared, replay: &mut Replay, seconds: u64) {
    let until = shared.kill.engage(seconds);
    let dropped = drop_all_killed(shared, replay, true);
    tel_log!(
        Level::Info,
        "collector told tenant o:{} to stop sending for {seconds} s (until {}): {} dropped, no request until then",
        shared.config.ikey.tenant(),
        crate::sys::clock::iso8601(until),
        count_events(dropped)
    );
}

/// Inside a kill window: drops what is held and queued (and, when `purge_cache`, the tenant's
/// cache entries), and claims nothing more from the cache. Returns how many events went.
pub fn drop_all_killed(shared: &Shared, replay: &mut Replay, purge_cache: bool) -> u64 {
    let stats = &shared.stats;
    let held: Vec<Batch> = shared.held.lock().batches.drain(..).collect();
    let queued = Queue::take_all(&mut shared.queue.state.lock());
    let events: Vec<&Event> = held
        .iter()
        .flat_map(|b| b.events.iter())
        .chain(queued.iter())
        .collect();
    let mut n = events.len() as u64;
    shared.resolve(Outcome::DroppedKilled, &events, 0, || KILLED.to_owned());
    replay.stop();
    let cache = replay.cache.as_ref().filter(|_| purge_cache);
    if let Some(Ok(purged)) = cache.map(|c| c.purge()) {
        Stats::add(&stats.replayed, purged.len() as u64);
        Stats::add(&stats.dropped_killed, purged.len() as u64);
        n += purged.len() as u64;
        shared.delivery.record(|| {
            Report::new(
                Outcome::DroppedKilled,
                purged
                    .iter()
                    .map(|l| crate::model::envelope::envelope_name(l)),
                0,
                KILLED.to_owned(),
            )
        });
    }
    n
}
