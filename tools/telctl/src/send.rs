//! `telctl send`: one event through the library itself (`tel::Client`, the code path every host
//! program takes), then where it went: accepted, rejected with the collector's reason, accepted
//! after retries, cached for a later process, dropped, or killed until when.
//!
//! The outcome comes from the session's counters; the collector's reason from the library's
//! own log lines (one debug line per non-2xx answer, one info line per decision), captured
//! through its logger callback.

use crate::term::{self, Color, Out};
use clap::Args;
use serde_json::{json, Value};
use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tel::config::{Endpoint, DEFAULT_ENDPOINT};
use tel::{CachePath, Client, Config, Snapshot, Status};

pub const EXIT_HELP: &str = "Exit status: 0 accepted; 1 rejected by the collector; 2 usage error \
(bad key, endpoint, name or properties); 3 dropped by a kill window; 4 not delivered, kept in \
the cache file for a later process; 5 accepted after retries; 6 not delivered and not kept \
(--no-cache or an unusable cache); 7 telemetry turned off (TEL_DISABLE, DO_NOT_TRACK); 8 the \
library could not run.";

/// Where the event went, most serious first when a session resolved several events (the
/// library replays the tenant's cache in the same session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
    Killed,
    Cached,
    Retried,
    Dropped,
    TurnedOff,
}

impl Outcome {
    fn of(s: &Snapshot) -> Outcome {
        if !s.enabled {
            Outcome::TurnedOff
        } else if s.dropped_killed > 0 {
            Outcome::Killed
        } else if s.rejected > 0 {
            Outcome::Rejected
        } else if s.persisted > 0 {
            Outcome::Cached
        } else if s.dropped_shutdown > 0 || s.sent == 0 {
            Outcome::Dropped
        } else if s.retries > 0 {
            Outcome::Retried
        } else {
            Outcome::Accepted
        }
    }

    fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Killed => "killed",
            Outcome::Cached => "cached",
            Outcome::Retried => "accepted_after_retries",
            Outcome::Dropped => "dropped",
            Outcome::TurnedOff => "turned_off",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Outcome::Accepted => 0,
            Outcome::Rejected => 1,
            Outcome::Killed => 3,
            Outcome::Cached => 4,
            Outcome::Retried => 5,
            Outcome::Dropped => 6,
            Outcome::TurnedOff => 7,
        }
    }
}

const EXIT_USAGE: u8 = 2;
const EXIT_LIBRARY: u8 = 8;

#[derive(Args)]
pub struct SendArgs {
    /// Full instrumentation key `<tenant>-<rest>` (or the TEL_IKEY environment variable).
    /// Shown as `<tenant>-***` only.
    #[arg(long, value_name = "KEY", env = "TEL_IKEY", hide_env_values = true)]
    ikey: String,
    /// Collector URL: https://, or http:// to a loopback host (e.g. `telctl serve`).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Cache file; default: the library's default cache file of the tenant. The library
    /// replays what it holds in the same session.
    #[arg(long, value_name = "FILE")]
    cache_path: Option<PathBuf>,
    /// No cache file (`cache_path: null`): an undelivered event is dropped.
    #[arg(long, conflicts_with = "cache_path")]
    no_cache: bool,
    /// Seconds to wait for delivery; what is still undelivered then goes to the cache.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    timeout: f64,
    /// Attempts before an undelivered event goes to the cache (`retry_max_attempts`), or,
    /// with --no-cache, is dropped.
    #[arg(long, value_name = "N", default_value_t = 6)]
    attempts: u32,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
    /// Event name: 4 to 100 of [A-Za-z0-9_.], starting and ending with a letter or digit.
    name: String,
    /// The event's properties, a JSON object (default `{}`).
    #[arg(value_name = "PROPERTIES_JSON")]
    properties: Option<String>,
}

/// The library's log lines of this session, and whether they are printed as they come.
struct Capture {
    lines: Vec<(i32, String)>,
    live: Option<Out>,
}

static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);

/// Bumped by every log line and delivery report of the session: something may have changed.
static CHANGES: (Mutex<u64>, Condvar) = (Mutex::new(0), Condvar::new());

fn changed() {
    let (count, signal) = &CHANGES;
    *count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    signal.notify_all();
}

extern "C" fn capture(level: i32, message: *const c_char, _user_data: *mut c_void) {
    if message.is_null() {
        return;
    }
    // SAFETY: the library passes a NUL-terminated string that lives for the duration of the call.
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    let mut capture = CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(capture) = capture.as_mut() {
        if let Some(out) = &capture.live {
            out.line(&out.paint(
                Color::Dim,
                &format!("  tel {}: {message}", level_name(level)),
            ));
        }
        capture.lines.push((level, message));
    }
    drop(capture);
    changed();
}

fn level_name(level: i32) -> &'static str {
    match level {
        1 => "error",
        2 => "warn",
        3 => "info",
        4 => "debug",
        _ => "trace",
    }
}

pub fn run(args: SendArgs) -> ExitCode {
    let mut config = match Config::new(&args.ikey) {
        Ok(config) => config,
        Err(e) => {
            term::error("send", None, &e.message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let key = config.ikey.clone();
    let usage = |message: &str| {
        term::error("send", Some(&key), message);
        ExitCode::from(EXIT_USAGE)
    };
    match Endpoint::parse(&args.endpoint) {
        Ok(endpoint) => config.endpoint = endpoint,
        Err(e) => return usage(&e.message),
    }
    if !(args.timeout > 0.0 && args.timeout <= 86_400.0) {
        return usage("--timeout must be a number of seconds above 0, at most 86400");
    }
    if args.attempts == 0 {
        return usage("--attempts must be at least 1");
    }
    config.cache_path = match (&args.cache_path, args.no_cache) {
        (_, true) => CachePath::Disabled,
        (Some(path), false) => CachePath::File(path.clone()),
        (None, false) => CachePath::Default,
    };
    config.retry_max_attempts = args.attempts;
    // The library checks these again in `log`; checking first spares a session (and a cache
    // replay) for a command line that cannot succeed.
    let checked = tel::internals::envelope::check_name(&args.name).and_then(|()| {
        args.properties
            .as_deref()
            .map_or(Ok(()), tel::internals::envelope::check_properties)
    });
    if let Err(e) = checked {
        return usage(&e.message);
    }
    let cache_file = tel::client::cache_files(&config).map(|f| f.cache);
    let out = Out::stdout().redacting(&key);

    if !args.json {
        out.line(&format!(
            "telctl send: event {} for tenant o:{} (key {}) to {}, through the library",
            args.name,
            key.tenant(),
            key.redacted(),
            config.endpoint.url
        ));
    }
    *CAPTURE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Capture {
        lines: Vec::new(),
        live: (!args.json).then(|| Out::stdout().redacting(&key)),
    });
    tel::internals::logging::set_callback(Some(capture), 4, std::ptr::null_mut());
    let delivered = deliver(config, &args);
    tel::internals::logging::set_callback(None, 0, std::ptr::null_mut());
    let lines = CAPTURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .map(|c| c.lines)
        .unwrap_or_default();
    let stats = match delivered {
        Ok(stats) => stats,
        Err(e) if matches!(e.status, Status::InvalidEvent | Status::InvalidConfig) => {
            return usage(&e.message)
        }
        Err(e) => {
            term::error("send", Some(&key), &e.message);
            return ExitCode::from(EXIT_LIBRARY);
        }
    };

    let outcome = Outcome::of(&stats);
    let reason = reason(&lines);
    if args.json {
        out.json(&json!({
            "event": args.name,
            "tenant": format!("o:{}", key.tenant()),
            "key": key.redacted(),
            "endpoint": args.endpoint,
            "cache_path": cache_file,
            "outcome": outcome.name(),
            "exit_code": outcome.exit_code(),
            "reason": reason,
            "killed_until_ms": stats.killed_until_ms,
            "killed_until": (stats.killed_until_ms > 0).then(|| tel::internals::clock::iso8601(stats.killed_until_ms)),
            "stats": serde_json::from_str::<Value>(&stats.to_json()).unwrap_or_default(),
            "log": lines.iter().map(|(level, message)| json!({"level": level_name(*level), "message": message})).collect::<Vec<_>>(),
        }));
    } else {
        report(
            &out,
            outcome,
            &stats,
            reason.as_deref(),
            cache_file.as_deref(),
        );
    }
    ExitCode::from(outcome.exit_code())
}

/// Starts a session, logs the event, waits for it, shuts down; the session's counters.
fn deliver(config: Config, args: &SendArgs) -> Result<Snapshot, tel::Error> {
    let client = Client::start(config)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    if args.no_cache {
        client.set_delivery_callback(Some(Arc::new(|_: &tel::Report| changed())));
        client.log(&args.name, args.properties.as_deref())?;
        wait_resolved_or_tried(&client, args.attempts, timeout);
    } else {
        client.log(&args.name, args.properties.as_deref())?;
        // A timeout is an outcome, not an error: the shutdown below persists what is left.
        let _ = client.flush(timeout);
    }
    // What is still undelivered is persisted, or with --no-cache dropped and counted.
    let _ = client.shutdown(Duration::from_secs(2));
    Ok(client.stats())
}

/// Waits until the event is resolved, until `attempts` attempts have failed, or `timeout`.
///
/// Without a cache file the library keeps an event it could not deliver in memory and tries
/// it again for as long as the session lasts (`retry_max_attempts` is when it goes to the
/// cache), so a flush would retry for the whole `--timeout`. Each failed attempt counts one
/// `retries` (there is no replay without a cache: they are all this event's), and the library
/// logs a line for it, which wakes this wait.
fn wait_resolved_or_tried(client: &Client, attempts: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let (count, signal) = &CHANGES;
    let mut seen = count.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let stats = client.stats();
        if stats.pending == 0 || stats.retries >= u64::from(attempts) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        seen = signal
            .wait_timeout(seen, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// The collector's last word on this session, from the library's log lines: its answer to a
/// refused request, the events it refused in an accepted one, or why no answer came.
fn reason(lines: &[(i32, String)]) -> Option<String> {
    let last = lines.iter().rev().find_map(|(_, message)| {
        ["collector answered ", "request to the collector failed: "]
            .iter()
            .find_map(|prefix| message.strip_prefix(prefix))
            .map(str::to_string)
            .or_else(|| {
                message
                    .starts_with("collector refused ")
                    .then(|| message.clone())
            })
    })?;
    // The debug line names every part even when empty; the report leaves the empty ones out.
    let trimmed = last
        .strip_suffix("; body: ")
        .unwrap_or(&last)
        .replace("; Collector-Error: (none)", "");
    Some(trimmed)
}

fn report(
    out: &Out,
    outcome: Outcome,
    stats: &Snapshot,
    reason: Option<&str>,
    cache_file: Option<&std::path::Path>,
) {
    let reason = reason.unwrap_or("no reason given");
    let cache = cache_file.map_or_else(|| "-".to_string(), |f| f.display().to_string());
    let (color, text) = match outcome {
        Outcome::Accepted => (Color::Green, "accepted: the collector took the event".to_string()),
        Outcome::Retried => (
            Color::Green,
            format!(
                "accepted after {}: the collector first answered {reason}",
                term::plural(stats.retries, "retry", "retries")
            ),
        ),
        Outcome::Rejected => (
            Color::Red,
            format!("rejected: the collector answered {reason}; the event is not retried and not cached"),
        ),
        Outcome::Cached => (
            Color::Yellow,
            format!(
                "cached: not delivered ({reason}); the event waits in {cache} for the next process of the tenant (see `telctl cache show --path {cache}`)"
            ),
        ),
        Outcome::Dropped => (
            Color::Red,
            format!(
                "dropped: not delivered after {} ({reason}) and no usable cache file to keep it",
                term::plural(stats.http_requests, "attempt", "attempts")
            ),
        ),
        Outcome::Killed => (
            Color::Red,
            format!(
                "killed: the collector told the tenant to stop sending until {}; the event was dropped, not sent or cached (the window is recorded beside {cache})",
                term::instant(stats.killed_until_ms)
            ),
        ),
        Outcome::TurnedOff => (
            Color::Yellow,
            "turned off: TEL_DISABLE or DO_NOT_TRACK opts out, so the library sent and wrote nothing (and deleted the cache file)".to_string(),
        ),
    };
    out.line(&out.paint(color, &text));
    if outcome == Outcome::Accepted && stats.killed_until_ms > 0 {
        out.line(&out.paint(
            Color::Yellow,
            &format!(
                "then the collector told the tenant to stop sending until {}",
                term::instant(stats.killed_until_ms)
            ),
        ));
    }
    if stats.replayed > 0 {
        out.line(&format!(
            "the session also replayed {} from the cache: the counters cover them too",
            term::plural(stats.replayed, "cached entry", "cached entries")
        ));
    }
    out.line(&format!(
        "counters: logged={} replayed={} sent={} rejected={} retries={} persisted={} dropped_killed={} dropped_shutdown={} http_requests={}",
        stats.logged,
        stats.replayed,
        stats.sent,
        stats.rejected,
        stats.retries,
        stats.persisted,
        stats.dropped_killed,
        stats.dropped_shutdown,
        stats.http_requests
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_serious_outcome_wins() {
        let base = Snapshot {
            enabled: true,
            logged: 1,
            sent: 1,
            ..Snapshot::default()
        };
        assert_eq!(Outcome::of(&base), Outcome::Accepted);
        let retried = Snapshot { retries: 2, ..base };
        assert_eq!(Outcome::of(&retried), Outcome::Retried);
        let killed = Snapshot {
            sent: 0,
            dropped_killed: 1,
            ..retried
        };
        assert_eq!(Outcome::of(&killed), Outcome::Killed);
        let cached = Snapshot {
            sent: 0,
            persisted: 1,
            ..retried
        };
        assert_eq!(Outcome::of(&cached), Outcome::Cached);
        let off = Snapshot {
            enabled: false,
            ..Snapshot::default()
        };
        assert_eq!(Outcome::of(&off), Outcome::TurnedOff);
    }

    #[test]
    fn the_reason_is_the_collectors_last_word() {
        let lines = vec![
            (
                4,
                "collector answered HTTP 503; Collector-Error: busy; body: ".to_string(),
            ),
            (
                3,
                "backing off: 1 events will be tried again in 900 ms".to_string(),
            ),
            (
                4,
                "request to the collector failed: Connection refused".to_string(),
            ),
            (
                3,
                "1 undelivered events written to the cache file".to_string(),
            ),
        ];
        assert_eq!(reason(&lines).as_deref(), Some("Connection refused"));
        assert_eq!(
            reason(&lines[..2]).as_deref(),
            Some("HTTP 503; Collector-Error: busy")
        );
        let bare = [(
            4,
            "collector answered HTTP 503; Collector-Error: (none); body: {\"acc\":0}".to_string(),
        )];
        assert_eq!(
            reason(&bare).as_deref(),
            Some("HTTP 503; body: {\"acc\":0}")
        );
        assert_eq!(reason(&lines[1..2]), None);
    }
}
