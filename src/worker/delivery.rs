//! Delivery reports (abi.md, "1.1: Delivery reports"): one JSON object per resolved group of
//! events, handed to the host's callback.
//!
//! Reports are recorded where events are resolved, often under a lock, and handed to the host
//! later by [`Delivery::emit`], which holds no lock of the library while the callback runs: the
//! callback may call `tel_*`, and a callback that blocks holds up nobody but its own thread.

use crate::sys::sync::{Condvar, Mutex};
use crate::worker::stats::Outcome;
use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A delivery callback of the Rust API: called with each report, on the library's threads.
pub type Callback = Arc<dyn Fn(&Report) + Send + Sync>;

/// The C ABI's callback as a [`Callback`]: the report as one NUL-terminated JSON object and the
/// host's `user_data`.
pub fn c_callback(
    f: extern "C" fn(report_json: *const c_char, user_data: *mut c_void),
    user_data: *mut c_void,
) -> Callback {
    // Kept as an integer: the host owns what it points to and promises it may be used from
    // any thread (abi.md: the callback runs on the library's threads).
    let user_data = user_data as usize;
    Arc::new(move |report: &Report| {
        if let Ok(text) = CString::new(report.to_json()) {
            f(text.as_ptr(), user_data as *mut c_void);
        }
    })
}

/// One resolved group of events (abi.md, "Delivery reports").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    pub events: u64,
    pub names: BTreeMap<String, u64>,
    /// The HTTP status that decided it, 0 when none.
    pub status: u16,
    /// One sentence a person can act on; never the full key.
    pub reason: String,
}

impl Report {
    /// A report of the events whose names `names` lists (one per event).
    pub fn new<'a>(
        outcome: Outcome,
        names: impl IntoIterator<Item = &'a str>,
        status: u16,
        reason: String,
    ) -> Report {
        let mut counts = BTreeMap::new();
        let mut n = 0;
        for name in names {
            *counts.entry(name.to_owned()).or_insert(0) += 1;
            n += 1;
        }
        Report {
            outcome,
            events: n,
            names: counts,
            status,
            reason,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::json!({
            "outcome": self.outcome.name(),
            "events": self.events,
            "names": self.names,
            "status": self.status,
            "reason": crate::sys::log::redact(&self.reason),
        })
        .to_string()
    }
}

thread_local! {
    /// The [`Delivery`] whose callback this thread is running (its address), 0 when none.
    static DELIVERING: Cell<usize> = const { Cell::new(0) };
}

/// What a closed client leaves for its last running callback to drop (the C ABI's
/// `tel_client`, which that callback may still call).
pub type KeepAlive = Box<dyn std::any::Any + Send>;

#[derive(Default)]
struct State {
    callback: Option<Callback>,
    /// Reports recorded and not yet handed over, oldest first.
    queued: VecDeque<Report>,
    /// Callbacks running now.
    running: usize,
    closed: bool,
    /// Dropped once the client is closed and no callback runs any more.
    keep: Vec<KeepAlive>,
}

/// One client's delivery callback and the reports waiting for it.
///
/// Once [`Delivery::close`] has run, the callback is never called again: every call checks
/// `closed` first. A call already running when the close gave up waiting goes on; whatever
/// the client left behind for it ([`Delivery::keep_while_running`]) is dropped when it returns.
#[derive(Default)]
pub struct Delivery {
    state: Mutex<State>,
    /// Mirrors `state.callback.is_some()`, so the hot paths skip building reports nobody reads.
    installed: AtomicBool,
    idle: Condvar,
}

impl Delivery {
    /// Installs (or with `None`, removes) the callback. Ignored once closed.
    pub fn set(&self, callback: Option<Callback>) {
        let mut s = self.state.lock();
        if s.closed {
            return;
        }
        let installed = callback.is_some();
        s.callback = callback;
        if !installed {
            s.queued.clear();
        }
        self.installed.store(installed, Ordering::Release);
    }

    pub fn installed(&self) -> bool {
        self.installed.load(Ordering::Acquire)
    }

    /// Records a report for the next [`Delivery::emit`]; `make` runs only when a callback is
    /// installed, so nothing is built for nobody.
    pub fn record(&self, make: impl FnOnce() -> Report) {
        if !self.installed() {
            return;
        }
        let report = make();
        if report.events == 0 {
            return;
        }
        let mut s = self.state.lock();
        if s.callback.is_some() && !s.closed {
            s.queued.push_back(report);
        }
    }

    /// Whether reports wait to be handed over.
    pub fn has_queued(&self) -> bool {
        !self.state.lock().queued.is_empty()
    }

    /// Hands the recorded reports to the callback, in order, on this thread, holding no lock
    /// of the library meanwhile. Call it where no library lock is held, from a thread that
    /// keeps the client's shared state alive (it may drop what
    /// [`Delivery::keep_while_running`] kept). Once the client is closed it stops, between two
    /// calls: the reports it had taken are dropped.
    pub fn emit(&self) {
        let me = self as *const Delivery as usize;
        loop {
            let reports = {
                let mut s = self.state.lock();
                if s.closed || s.callback.is_none() {
                    s.queued.clear();
                    return;
                }
                if s.queued.is_empty() {
                    return;
                }
                std::mem::take(&mut s.queued)
            };
            for report in reports {
                let callback = {
                    let mut s = self.state.lock();
                    let Some(callback) = s.callback.clone().filter(|_| !s.closed) else {
                        return;
                    };
                    s.running += 1;
                    callback
                };
                let outer = DELIVERING.with(|d| d.replace(me));
                callback(&report);
                DELIVERING.with(|d| d.set(outer));
                let left = {
                    let mut s = self.state.lock();
                    s.running -= 1;
                    if s.closed && s.running == 0 {
                        std::mem::take(&mut s.keep)
                    } else {
                        Vec::new()
                    }
                };
                self.idle.notify_all();
                drop(left);
            }
        }
    }

    /// True while this thread runs this client's callback (it must not close its own client).
    pub fn in_own_callback(&self) -> bool {
        DELIVERING.with(Cell::get) == self as *const Delivery as usize
    }

    /// No callback is called after this returns: removes the callback, drops the reports not
    /// yet handed over (emit them first), and waits until `by` for the calls running on other
    /// threads to return. True when none runs any more; a call still running past `by` is left
    /// to finish (abi.md: a callback never holds up a close or a shutdown).
    pub fn close(&self, by: Instant) -> bool {
        let mut s = self.state.lock();
        s.closed = true;
        s.callback = None;
        s.queued.clear();
        self.installed.store(false, Ordering::Release);
        if self.in_own_callback() {
            // This call cannot wait for itself.
            return false;
        }
        while s.running > 0 {
            if self.idle.wait_until(&mut s, by).timed_out() {
                break;
            }
        }
        s.running == 0
    }

    /// After [`Delivery::close`]: keeps `keep` until the calls still running have returned
    /// (the last one drops it); gives it back when none runs, for the caller to drop.
    pub fn keep_while_running(&self, keep: KeepAlive) -> Option<KeepAlive> {
        let mut s = self.state.lock();
        if s.closed && s.running > 0 {
            s.keep.push(keep);
            None
        } else {
            Some(keep)
        }
    }
}

/// The reason sentence of a collector's refusal: its `Collector-Error` and the `efi` reasons of
/// its body, when it gave them.
pub fn refusal_reason(what: &str, collector_error: Option<&str>, body: &[u8]) -> String {
    let mut reason = what.to_owned();
    if let Some(e) = collector_error.filter(|e| !e.trim().is_empty()) {
        // Redacted before it is cut short, so no cut can leave a prefix of the key behind.
        let e = crate::sys::log::redact(e);
        reason.push_str(&format!(
            "; Collector-Error: {}",
            crate::model::status::excerpt(&e)
        ));
    }
    let efi: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("efi").and_then(|e| e.as_object()).map(|m| {
                m.keys()
                    .map(|k| crate::model::status::excerpt(&crate::sys::log::redact(k)))
                    .collect()
            })
        })
        .unwrap_or_default();
    if !efi.is_empty() {
        reason.push_str(&format!("; efi: {}", efi.join(", ")));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::options::Priority;
    use crate::worker::queue::Event;
    use std::time::Instant;

    fn event(name: &str) -> Event {
        Event {
            line: format!("{{\"ver\":\"4.0\",\"name\":\"{name}\",\"time\":\"x\"}}"),
            ordinal: 0,
            enqueued: Instant::now(),
            priority: Priority::Normal,
            durable: None,
        }
    }

    #[test]
    fn report_json_counts_names() {
        let evs = [event("Aaaa.B"), event("Cccc"), event("Aaaa.B")];
        let r = Report::new(
            Outcome::Rejected,
            evs.iter().map(|e| e.name()),
            400,
            "refused".into(),
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"outcome":"rejected","events":3,"names":{"Aaaa.B":2,"Cccc":1},"status":400,"reason":"refused"})
        );
    }

    #[test]
    fn reasons_name_collector_error_and_efi() {
        let r = refusal_reason(
            "collector refused 2 events",
            Some("Invalid Tenant Token"),
            br#"{"acc":0,"efi":{"InvalidDeviceLocalId":[0,1]}}"#,
        );
        assert!(r.contains("Invalid Tenant Token") && r.contains("InvalidDeviceLocalId"));
    }
}
