//! What one answer of the collector means for the worker: for the batch it answered, and for
//! every request after it. [`decide`] is pure: it reads the answer and the worker's [`State`]
//! and returns a [`Decision`]; the worker carries it out (counters, reports, log lines, the
//! backoff, the kill window, the cache).
//!
//! The two halves of a [`Decision`] are kept apart so that several requests may one day be in
//! flight: [`Fate`] concerns the answered batch alone, [`Effects`] (a failure, the backoff,
//! `Retry-After`, a kill, the clock offset) apply to the session whichever batch carried them.

use super::answer::{classify_at, directives, Refused, Verdict};
use super::backoff;
use crate::transport::reply::{HttpResponse, NetworkError};
use std::time::Duration;

/// An attempt as the transport ends it: the collector's response, or why none came.
pub type Answer = Result<HttpResponse, NetworkError>;

/// The retry settings of the configuration (`retry_initial_ms`, `retry_max_ms`,
/// `retry_max_attempts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub initial_ms: u64,
    pub max_ms: u64,
    pub max_attempts: u32,
}

/// What [`decide`] reads besides the answer. It has no clock and no generator of its own: the
/// worker passes the time and a random draw.
#[derive(Debug, Clone, Copy)]
pub struct State<'a> {
    /// This session's tenant token: a kill directive that names it stops the session.
    pub tenant: &'a str,
    /// Unix ms now, which a `Retry-After` given as an HTTP-date is counted from.
    pub now_ms: u64,
    /// Events in the answered batch.
    pub events: usize,
    /// Attempts at the answered batch before this one.
    pub attempts: u32,
    /// Failed attempts in a row before this one, whatever their batch: the backoff is the
    /// network's, not the batch's.
    pub failures: u32,
    pub retry: Retry,
    /// Whether a batch whose attempts ran out can go to the cache file.
    pub cache_usable: bool,
    /// A uniform random number, for the backoff's jitter.
    pub jitter: u64,
}

/// What one answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What becomes of the events of the answered batch.
    pub batch: Fate,
    /// What applies from now on to every request, whichever batch it carries.
    pub session: Effects,
}

/// What becomes of the events of the answered batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// A 2xx: delivered (`sent`), save the events the body's `efi` names, which are rejected.
    Delivered(Refused),
    /// Refused for good: rejected, not retried, not cached (the same bytes would be refused
    /// again, by this process or the next).
    Rejected,
    /// A 413 on several events: sent again as two requests, the first `at` events and the rest.
    Split { at: usize },
    /// A 413 on a single event: rejected, as it can be made no smaller.
    TooLarge,
    /// Tried again once the backoff has passed; `attempts` made so far. `exhausted`: no attempt
    /// is left, but there is no usable cache either, so the batch stays in memory and keeps
    /// being tried.
    Retry { attempts: u32, exhausted: bool },
    /// Its `attempts` ran out: written to the cache file for a later process.
    Persist { attempts: u32 },
    /// The answer told this tenant to stop: dropped with every event held, queued or cached
    /// (see [`Effects::kill_seconds`]), never cached, as a later process would be refused too.
    Killed,
}

/// What an answer says about the session, whichever batch it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Not a 2xx (a network failure included): counted in `http_failures`.
    pub failed: bool,
    /// `time-delta-millis`: sent back from now on as `time-delta-to-apply-millis`.
    pub time_delta_ms: Option<i64>,
    /// `kill-tokens` named this tenant: nothing is sent for this many seconds, by this process
    /// or any other of the tenant.
    pub kill_seconds: Option<u64>,
    pub backoff: Backoff,
}

/// What an answer does to the wait before the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backoff {
    /// Unchanged: a refusal, a split or a kill says nothing about the network.
    Keep,
    /// A delivery: the network works; the count of failures and the backoff start over. A
    /// `Retry-After` floor still running stays.
    Reset,
    /// A failure, the `failures`th in a row: no request before `wait` has passed (a flush may
    /// skip it), nor before `retry_after`, the collector's own floor (a flush may not).
    Wait {
        failures: u32,
        wait: Duration,
        retry_after: Option<Duration>,
    },
}

/// The policy after an attempt: the status class (see
/// [`classify`](super::answer::classify): what a 503 is), then what follows from it.
///
/// - **A delivery** (2xx): the batch is sent, save what `efi` refuses; the backoff starts over.
/// - **A failure worth retrying** (408, 429, 5xx, 1xx, 3xx, no answer at all): one more
///   failure in a row; the next request waits [`backoff::delay`] (exponential, full jitter),
///   and at least the `Retry-After` the collector gave. The batch is tried again until it has
///   had `retry_max_attempts` attempts; then it goes to the cache file for a later process, or,
///   without a usable cache, stays in memory and keeps being tried.
/// - **A 413**: the batch is split in two halves sent on their own; a single event is rejected.
/// - **Any other 4xx**: the batch is rejected, not retried, not cached.
/// - **A kill directive** naming this tenant, whatever the status: the session stops for its
///   window; a delivered batch stays delivered, any other is dropped with everything else.
///   A directive naming other tenants only is ignored.
/// - `time-delta-millis`, whatever the status, is echoed from then on.
pub fn decide(answer: &Answer, state: &State) -> Decision {
    let directives = answer.as_ref().map(directives).unwrap_or_default();
    let kill_seconds = directives
        .kill
        .filter(|k| k.names(state.tenant))
        .map(|k| k.seconds);
    let verdict = classify_at(answer, state.now_ms);
    let failed = !matches!(verdict, Verdict::Accepted(_));
    let (batch, backoff) = match verdict {
        Verdict::Accepted(refused) => (Fate::Delivered(refused), Backoff::Reset),
        _ if kill_seconds.is_some() => (Fate::Killed, Backoff::Keep),
        Verdict::Rejected => (Fate::Rejected, Backoff::Keep),
        Verdict::Split if state.events > 1 => (
            Fate::Split {
                at: state.events / 2,
            },
            Backoff::Keep,
        ),
        Verdict::Split => (Fate::TooLarge, Backoff::Keep),
        Verdict::Retry { retry_after } => {
            let failures = state.failures.saturating_add(1);
            let attempts = state.attempts.saturating_add(1);
            let r = state.retry;
            let backoff = backoff::delay(failures, r.initial_ms, r.max_ms, state.jitter);
            let wait = retry_after.map_or(backoff, |floor| backoff.max(floor));
            let out_of_attempts = attempts >= r.max_attempts;
            let fate = if out_of_attempts && state.cache_usable {
                Fate::Persist { attempts }
            } else {
                Fate::Retry {
                    attempts,
                    exhausted: out_of_attempts,
                }
            };
            let backoff = Backoff::Wait {
                failures,
                wait,
                retry_after,
            };
            (fate, backoff)
        }
    };
    Decision {
        batch,
        session: Effects {
            failed,
            time_delta_ms: directives.time_delta_ms,
            kill_seconds,
            backoff,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT.
    const NOW_MS: u64 = 784_111_777_000;

    fn state() -> State<'static> {
        State {
            tenant: "mytenant",
            now_ms: NOW_MS,
            events: 4,
            attempts: 0,
            failures: 0,
            retry: Retry {
                initial_ms: 100,
                max_ms: 5_000,
                max_attempts: 3,
            },
            cache_usable: true,
            jitter: 0,
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        Ok(HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        })
    }

    fn no_answer() -> Answer {
        Err(NetworkError("connection reset".into()))
    }

    fn decision(batch: Fate, failed: bool, backoff: Backoff) -> Decision {
        Decision {
            batch,
            session: Effects {
                failed,
                time_delta_ms: None,
                kill_seconds: None,
                backoff,
            },
        }
    }

    fn delivered(refused: Refused) -> Decision {
        decision(Fate::Delivered(refused), false, Backoff::Reset)
    }

    fn kept(batch: Fate) -> Decision {
        decision(batch, true, Backoff::Keep)
    }

    /// The first failure of a fresh batch: attempt 1, a wait of `ms`.
    fn retried(ms: u64, retry_after: Option<u64>) -> Decision {
        decision(
            Fate::Retry {
                attempts: 1,
                exhausted: false,
            },
            true,
            Backoff::Wait {
                failures: 1,
                wait: Duration::from_millis(ms),
                retry_after: retry_after.map(Duration::from_secs),
            },
        )
    }

    fn with(d: Decision, f: impl FnOnce(&mut Effects)) -> Decision {
        let mut d = d;
        f(&mut d.session);
        d
    }

    fn killed(d: Decision, seconds: u64) -> Decision {
        with(d, |e| e.kill_seconds = Some(seconds))
    }

    #[test]
    fn every_answer_decided() {
        const KILL_US: &[(&str, &str)] = &[
            ("kill-tokens", "o:other, o:mytenant:all"),
            ("kill-duration", "60"),
        ];
        const KILL_OTHERS: &[(&str, &str)] = &[
            ("kill-tokens", "o:other,o:mytenant2"),
            ("kill-duration", "60"),
        ];
        let at_now = |s: State<'static>| s;
        let last_attempt = |s: State<'static>| State { attempts: 2, ..s };
        let wait = |failures: u32, ms: u64, retry_after: Option<u64>| Backoff::Wait {
            failures,
            wait: Duration::from_millis(ms),
            retry_after: retry_after.map(Duration::from_secs),
        };
        type Case = (
            &'static str,
            Answer,
            fn(State<'static>) -> State<'static>,
            Decision,
        );
        let cases: Vec<Case> = vec![
            ("1xx", answer(100, &[], ""), at_now, retried(100, None)),
            (
                "2xx",
                answer(200, &[], r#"{"acc":4}"#),
                at_now,
                delivered(Refused::None),
            ),
            (
                "2xx, no body",
                answer(204, &[], ""),
                at_now,
                delivered(Refused::None),
            ),
            (
                "2xx with efi by index",
                answer(200, &[], r#"{"acc":2,"rej":2,"efi":{"InvalidName":[3,1]}}"#),
                at_now,
                delivered(Refused::Some(vec![1, 3])),
            ),
            (
                "2xx with efi all",
                answer(200, &[], r#"{"acc":0,"rej":4,"efi":{"X":"all"}}"#),
                at_now,
                delivered(Refused::All),
            ),
            (
                "3xx",
                answer(307, &[("Location", "https://elsewhere/")], ""),
                at_now,
                retried(100, None),
            ),
            ("408", answer(408, &[], ""), at_now, retried(100, None)),
            (
                "413, several events",
                answer(413, &[], ""),
                at_now,
                kept(Fate::Split { at: 2 }),
            ),
            (
                "413, one event",
                answer(413, &[], ""),
                |s| State { events: 1, ..s },
                kept(Fate::TooLarge),
            ),
            (
                "413, three events",
                answer(413, &[], ""),
                |s| State { events: 3, ..s },
                kept(Fate::Split { at: 1 }),
            ),
            ("429", answer(429, &[], ""), at_now, retried(100, None)),
            ("400", answer(400, &[], ""), at_now, kept(Fate::Rejected)),
            (
                "401",
                answer(401, &[("Collector-Error", "InvalidIKey")], ""),
                at_now,
                kept(Fate::Rejected),
            ),
            ("499", answer(499, &[], ""), at_now, kept(Fate::Rejected)),
            ("500", answer(500, &[], ""), at_now, retried(100, None)),
            ("503", answer(503, &[], ""), at_now, retried(100, None)),
            ("no answer", no_answer(), at_now, retried(100, None)),
            (
                "503, the third failure in a row, the draw at its top",
                answer(503, &[], ""),
                |s| State {
                    failures: 2,
                    jitter: 300,
                    ..s
                },
                decision(
                    Fate::Retry {
                        attempts: 1,
                        exhausted: false,
                    },
                    true,
                    wait(3, 400, None),
                ),
            ),
            (
                "503 past retry_max_ms",
                answer(503, &[], ""),
                |s| State {
                    failures: 30,
                    jitter: u64::MAX,
                    ..s
                },
                decision(
                    Fate::Retry {
                        attempts: 1,
                        exhausted: false,
                    },
                    true,
                    wait(31, 100 + u64::MAX % 4_901, None),
                ),
            ),
            (
                "2xx naming this tenant in kill-tokens",
                answer(200, KILL_US, ""),
                at_now,
                killed(delivered(Refused::None), 60),
            ),
            (
                "503 naming this tenant",
                answer(503, KILL_US, ""),
                at_now,
                killed(kept(Fate::Killed), 60),
            ),
            (
                "400 naming this tenant",
                answer(400, KILL_US, ""),
                at_now,
                killed(kept(Fate::Killed), 60),
            ),
            (
                "413 naming this tenant",
                answer(413, KILL_US, ""),
                at_now,
                killed(kept(Fate::Killed), 60),
            ),
            (
                "503 naming other tenants",
                answer(503, KILL_OTHERS, ""),
                at_now,
                retried(100, None),
            ),
            (
                "2xx naming other tenants",
                answer(200, KILL_OTHERS, ""),
                at_now,
                delivered(Refused::None),
            ),
            (
                "a kill directive without a duration is none",
                answer(503, &[("kill-tokens", "o:mytenant")], ""),
                at_now,
                retried(100, None),
            ),
            (
                "Retry-After in seconds",
                answer(503, &[("Retry-After", "30")], ""),
                at_now,
                retried(30_000, Some(30)),
            ),
            (
                "Retry-After below the backoff",
                answer(429, &[("Retry-After", "0")], ""),
                at_now,
                retried(100, Some(0)),
            ),
            (
                "Retry-After past an hour",
                answer(503, &[("Retry-After", "7200")], ""),
                at_now,
                retried(3_600_000, Some(3_600)),
            ),
            (
                "Retry-After as an IMF-fixdate",
                answer(503, &[("Retry-After", "Sun, 06 Nov 1994 08:50:07 GMT")], ""),
                at_now,
                retried(30_000, Some(30)),
            ),
            (
                "Retry-After as an RFC 850 date",
                answer(
                    503,
                    &[("Retry-After", "Sunday, 06-Nov-94 08:50:07 GMT")],
                    "",
                ),
                at_now,
                retried(30_000, Some(30)),
            ),
            (
                "Retry-After as an asctime date",
                answer(503, &[("Retry-After", "Sun Nov  6 08:50:07 1994")], ""),
                at_now,
                retried(30_000, Some(30)),
            ),
            (
                "Retry-After as a date past",
                answer(503, &[("Retry-After", "Sun, 06 Nov 1994 08:49:07 GMT")], ""),
                at_now,
                retried(100, Some(0)),
            ),
            (
                "Retry-After unreadable",
                answer(503, &[("Retry-After", "soon")], ""),
                at_now,
                retried(100, None),
            ),
            (
                "Retry-After on a 2xx is no floor",
                answer(200, &[("Retry-After", "30")], ""),
                at_now,
                delivered(Refused::None),
            ),
            (
                "time-delta-millis on a 2xx",
                answer(200, &[("time-delta-millis", "-1234")], ""),
                at_now,
                with(delivered(Refused::None), |e| e.time_delta_ms = Some(-1234)),
            ),
            (
                "time-delta-millis on a 503",
                answer(503, &[("time-delta-millis", " 86400000 ")], ""),
                at_now,
                with(retried(100, None), |e| e.time_delta_ms = Some(86_400_000)),
            ),
            (
                "the last attempt, with a usable cache",
                answer(503, &[], ""),
                last_attempt,
                decision(Fate::Persist { attempts: 3 }, true, wait(1, 100, None)),
            ),
            (
                "the last attempt, without a usable cache",
                answer(503, &[], ""),
                |s| State {
                    attempts: 2,
                    cache_usable: false,
                    ..s
                },
                decision(
                    Fate::Retry {
                        attempts: 3,
                        exhausted: true,
                    },
                    true,
                    wait(1, 100, None),
                ),
            ),
            (
                "past the last attempt, without a usable cache",
                no_answer(),
                |s| State {
                    attempts: 7,
                    failures: 7,
                    cache_usable: false,
                    ..s
                },
                decision(
                    Fate::Retry {
                        attempts: 8,
                        exhausted: true,
                    },
                    true,
                    wait(8, 100, None),
                ),
            ),
            (
                "the last attempt, and a kill",
                answer(503, KILL_US, ""),
                last_attempt,
                killed(kept(Fate::Killed), 60),
            ),
            (
                "the last attempt, delivered",
                answer(200, &[], ""),
                last_attempt,
                delivered(Refused::None),
            ),
        ];
        for (name, answer, state_of, want) in cases {
            let s = state_of(state());
            assert_eq!(decide(&answer, &s), want, "{name}");
        }
    }

    /// Every status from 100 to 599 is decided, and by its class alone.
    #[test]
    fn every_status_falls_in_its_class() {
        for status in 100..=599u16 {
            let d = decide(&answer(status, &[], ""), &state());
            let fate = match status {
                200..=299 => Fate::Delivered(Refused::None),
                413 => Fate::Split { at: 2 },
                408 | 429 | 100..=199 | 300..=399 | 500..=599 => Fate::Retry {
                    attempts: 1,
                    exhausted: false,
                },
                _ => Fate::Rejected,
            };
            assert_eq!(d.batch, fate, "HTTP {status}");
            assert_eq!(
                d.session.failed,
                !(200..300).contains(&status),
                "HTTP {status}"
            );
        }
    }
}
