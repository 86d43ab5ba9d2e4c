//! The counters of `tel_stats_json` (abi.md, "Stats").
//!
//! Conservation, true at every quiet point:
//! `logged + replayed == sent + rejected + dropped_killed + dropped_shutdown + dropped_evicted +
//! dropped_consent + dropped_sampled + persisted + pending` (`dropped_evicted` stays 0 unless
//! priorities are used; the two ABI 1.2 counters stay 0 unless consent or sampling are used).
//! `pending` is the gauge of events held in memory; each resolution moves one event from
//! `pending` to exactly one outcome counter.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub enabled: AtomicBool,
    pub logged: AtomicU64,
    pub sent: AtomicU64,
    pub rejected: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_killed: AtomicU64,
    pub dropped_shutdown: AtomicU64,
    pub dropped_evicted: AtomicU64,
    pub replayed: AtomicU64,
    pub persisted: AtomicU64,
    pub cache_evicted: AtomicU64,
    pub pending: AtomicU64,
    pub retries: AtomicU64,
    pub http_requests: AtomicU64,
    pub http_failures: AtomicU64,
    pub killed_until_ms: AtomicU64,
    /// Critical events queued without being written to the cache file (`TEL_ERR_NOT_DURABLE`);
    /// not part of the conservation identity: they are counted in `logged` and resolved like
    /// any other.
    pub not_durable: AtomicU64,
    /// ABI 1.2: events dropped because consent was denied (or never given by shutdown).
    pub dropped_consent: AtomicU64,
    /// ABI 1.2: events sampled out at `tel_log*`.
    pub dropped_sampled: AtomicU64,
    /// ABI 1.2: replacements made by scrubbing (not in the identity).
    pub scrubbed: AtomicU64,
    /// ABI 1.2: the consent state (`TEL_CONSENT_*`: 0 unknown, 1 granted, 2 denied).
    pub consent: std::sync::atomic::AtomicU8,
    /// ABI 1.2: paused by the host.
    pub paused: AtomicBool,
}

/// Where a pending event ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    Rejected,
    DroppedKilled,
    DroppedShutdown,
    /// Pushed out of a full queue by an event of higher priority.
    DroppedEvicted,
    /// ABI 1.2: consent denied, or not given by shutdown.
    DroppedConsent,
    Persisted,
}

impl Outcome {
    /// The counter's name in `tel_stats_json`, also the report's `outcome`.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Sent => "sent",
            Outcome::Rejected => "rejected",
            Outcome::DroppedKilled => "dropped_killed",
            Outcome::DroppedShutdown => "dropped_shutdown",
            Outcome::DroppedEvicted => "dropped_evicted",
            Outcome::DroppedConsent => "dropped_consent",
            Outcome::Persisted => "persisted",
        }
    }
}

/// A plain copy of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub enabled: bool,
    pub logged: u64,
    pub sent: u64,
    pub rejected: u64,
    pub dropped_queue_full: u64,
    pub dropped_killed: u64,
    pub dropped_shutdown: u64,
    pub dropped_evicted: u64,
    pub replayed: u64,
    pub persisted: u64,
    pub cache_evicted: u64,
    pub pending: u64,
    pub retries: u64,
    pub http_requests: u64,
    pub http_failures: u64,
    pub killed_until_ms: u64,
    pub not_durable: u64,
    pub dropped_consent: u64,
    pub dropped_sampled: u64,
    pub scrubbed: u64,
    /// The consent state: 0 unknown, 1 granted, 2 denied (`TEL_CONSENT_*`).
    pub consent: u8,
    pub paused: bool,
}

impl Snapshot {
    /// The conservation law of abi.md.
    pub fn conserved(&self) -> bool {
        self.logged + self.replayed
            == self.sent
                + self.rejected
                + self.dropped_killed
                + self.dropped_shutdown
                + self.dropped_evicted
                + self.dropped_consent
                + self.dropped_sampled
                + self.persisted
                + self.pending
    }

    pub fn to_json(&self) -> String {
        format!(
            "{{\"enabled\":{},\"logged\":{},\"sent\":{},\"rejected\":{},\"dropped_queue_full\":{},\
\"dropped_killed\":{},\"dropped_shutdown\":{},\"dropped_evicted\":{},\"replayed\":{},\"persisted\":{},\"cache_evicted\":{},\
\"pending\":{},\"retries\":{},\"http_requests\":{},\"http_failures\":{},\"killed_until_ms\":{},\"not_durable\":{},\
\"dropped_consent\":{},\"dropped_sampled\":{},\"scrubbed\":{},\"consent\":\"{}\",\"paused\":{}}}",
            self.enabled,
            self.logged,
            self.sent,
            self.rejected,
            self.dropped_queue_full,
            self.dropped_killed,
            self.dropped_shutdown,
            self.dropped_evicted,
            self.replayed,
            self.persisted,
            self.cache_evicted,
            self.pending,
            self.retries,
            self.http_requests,
            self.http_failures,
            self.killed_until_ms,
            self.not_durable,
            self.dropped_consent,
            self.dropped_sampled,
            self.scrubbed,
            consent_name(self.consent),
            self.paused
        )
    }
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Moves `n` events out of `pending` into `outcome`.
    pub fn resolve(&self, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        let target = match outcome {
            Outcome::Sent => &self.sent,
            Outcome::Rejected => &self.rejected,
            Outcome::DroppedKilled => &self.dropped_killed,
            Outcome::DroppedShutdown => &self.dropped_shutdown,
            Outcome::DroppedEvicted => &self.dropped_evicted,
            Outcome::DroppedConsent => &self.dropped_consent,
            Outcome::Persisted => &self.persisted,
        };
        target.fetch_add(n, Relaxed);
        self.pending.fetch_sub(n, Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            enabled: self.enabled.load(Relaxed),
            logged: self.logged.load(Relaxed),
            sent: self.sent.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            dropped_queue_full: self.dropped_queue_full.load(Relaxed),
            dropped_killed: self.dropped_killed.load(Relaxed),
            dropped_shutdown: self.dropped_shutdown.load(Relaxed),
            dropped_evicted: self.dropped_evicted.load(Relaxed),
            replayed: self.replayed.load(Relaxed),
            persisted: self.persisted.load(Relaxed),
            cache_evicted: self.cache_evicted.load(Relaxed),
            pending: self.pending.load(Relaxed),
            retries: self.retries.load(Relaxed),
            http_requests: self.http_requests.load(Relaxed),
            http_failures: self.http_failures.load(Relaxed),
            killed_until_ms: self.killed_until_ms.load(Relaxed),
            not_durable: self.not_durable.load(Relaxed),
            dropped_consent: self.dropped_consent.load(Relaxed),
            dropped_sampled: self.dropped_sampled.load(Relaxed),
            scrubbed: self.scrubbed.load(Relaxed),
            consent: self.consent.load(Relaxed),
            paused: self.paused.load(Relaxed),
        }
    }
}

/// `TEL_CONSENT_UNKNOWN`: events wait in memory; nothing is sent or written.
pub const UNKNOWN: u8 = 0;
/// `TEL_CONSENT_GRANTED`.
pub const GRANTED: u8 = 1;
/// `TEL_CONSENT_DENIED`: events are dropped (`dropped_consent`).
pub const DENIED: u8 = 2;

/// The reason of a `dropped_consent` report.
pub const DENIED_REASON: &str =
    "dropped: the user denied consent to telemetry (tel_set_consent), so nothing is sent or kept";
/// The reason of a `dropped_consent` report for events still waiting for an answer at shutdown.
pub const UNANSWERED_REASON: &str =
    "dropped at shutdown: consent was still unknown (consent \"required\" and no answer recorded), so nothing could be sent or kept";

/// The consent state's name in `tel_stats_json`.
pub fn consent_name(state: u8) -> &'static str {
    match state {
        1 => "granted",
        2 => "denied",
        _ => "unknown",
    }
}

/// "1 event", "3 events".
pub(crate) fn count_events(n: u64) -> String {
    format!("{n} event{}", if n == 1 { "" } else { "s" })
}
