//! What the threads of a running collector share: its options, the script, the records and
//! counts, the open connections, and the condition that signals every change. The collector,
//! its connections, the control API and the faults all work through it; it imports none of them.

use crate::options::Options;
use crate::record::RecordedRequest;
use crate::script::Scripted;
use crate::sync::lock;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What every thread of a collector shares.
pub(crate) struct Shared {
    pub options: Options,
    state: Mutex<State>,
    /// Signalled on every change: a record, a release, a reset, a closed connection, stopping.
    changed: Condvar,
}

type RequestHook = Arc<dyn Fn(&RecordedRequest) + Send + Sync>;

#[derive(Default)]
pub(crate) struct State {
    pub script: VecDeque<Scripted>,
    pub default: Option<Scripted>,
    pub requests: Vec<RecordedRequest>,
    pub accepted: Vec<Value>,
    /// Counts since the last reset, kept whether or not the records are.
    pub requests_total: usize,
    pub accepted_total: usize,
    pub rejected_total: usize,
    record_file: Option<File>,
    hooks: Vec<RequestHook>,
    /// Bumped by every release; a hang lasts while it is unchanged.
    release_generation: u64,
    pub hanging: usize,
    pub stopping: bool,
    /// Open connections, to shut them down when stopping.
    pub connections: HashMap<u64, TcpStream>,
    /// The last connection's id: the number of connections accepted since the start.
    pub next_connection: u64,
}

impl Shared {
    pub fn new(options: Options, record_file: Option<File>) -> Shared {
        Shared {
            options,
            state: Mutex::new(State {
                record_file,
                ..State::default()
            }),
            changed: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the collector down with it.
        lock(&self.state)
    }

    /// Counts a connection accepted on `stream` among the open ones; its id, or None once the
    /// collector stops.
    pub fn register(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let mut state = self.lock();
        if state.stopping {
            return None;
        }
        state.next_connection += 1;
        let id = state.next_connection;
        state.connections.insert(id, clone);
        Some(id)
    }

    pub fn unregister(&self, id: u64) {
        self.lock().connections.remove(&id);
        self.changed.notify_all();
    }

    /// The answer for the next collector request: the script's head, else the default.
    pub fn next_answer(&self) -> Option<Scripted> {
        let mut state = self.lock();
        match state.script.front_mut() {
            Some(head) if head.times > 1 => {
                head.times -= 1;
                Some(head.clone())
            }
            Some(_) => state.script.pop_front(),
            None => state.default.clone(),
        }
    }

    /// Records a request and the envelopes accepted from it (with their lines). Returns the
    /// release generation at that moment, so that a hang that follows ends at the next release
    /// even if it comes before the hang begins.
    pub fn record(&self, request: RecordedRequest, accepted: Vec<(String, Value)>) -> u64 {
        let mut state = self.lock();
        if let Some(file) = state.record_file.as_mut() {
            let mut lines = String::new();
            for (line, _) in &accepted {
                lines.push_str(line);
                lines.push('\n');
            }
            if let Err(e) = file.write_all(lines.as_bytes()).and_then(|()| file.flush()) {
                eprintln!("tel-emulator: cannot append to the record file: {e}");
            }
        }
        state.requests_total += 1;
        state.accepted_total += accepted.len();
        state.rejected_total += request.rejected;
        let hooks = state.hooks.clone();
        let copy = (!hooks.is_empty()).then(|| request.clone());
        if self.options.keep_records {
            state
                .accepted
                .extend(accepted.into_iter().map(|(_, envelope)| envelope));
            state.requests.push(request);
        }
        let generation = state.release_generation;
        drop(state);
        self.changed.notify_all();
        if let Some(request) = copy {
            for hook in &hooks {
                hook(&request);
            }
        }
        generation
    }

    /// Counts a request taken by [`Options::sink`].
    pub fn sunk(&self) {
        self.lock().requests_total += 1;
        self.changed.notify_all();
    }

    pub fn release(&self) {
        self.lock().release_generation += 1;
        self.changed.notify_all();
    }

    pub fn reset(&self) {
        let mut state = self.lock();
        state.script.clear();
        state.default = None;
        state.requests.clear();
        state.accepted.clear();
        state.requests_total = 0;
        state.accepted_total = 0;
        state.rejected_total = 0;
        drop(state);
        self.changed.notify_all();
    }

    /// Blocks while no release came after `generation` and the collector runs.
    pub fn hang(&self, generation: u64) {
        let mut state = self.lock();
        state.hanging += 1;
        while !state.stopping && state.release_generation == generation {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.hanging -= 1;
    }

    /// Waits `duration`; false, early, when the collector stops.
    pub fn pause(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = self.lock();
        loop {
            if state.stopping {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            state = self
                .changed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Waits until `done` holds, at most `timeout`, and not past the collector's stop;
    /// whether it holds.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        self.wait(timeout, |state| done(state) || state.stopping);
        done(&self.lock())
    }

    /// Calls `hook` with every request recorded from now on.
    pub fn on_request(&self, hook: impl Fn(&RecordedRequest) + Send + Sync + 'static) {
        self.lock().hooks.push(Arc::new(hook));
    }

    /// Stops: hangs and pauses end, and no connection is registered any more; the open ones
    /// are shut down.
    pub fn stop(&self) {
        let mut state = self.lock();
        state.stopping = true;
        for connection in state.connections.values() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        drop(state);
        self.changed.notify_all();
    }

    /// Waits until `done` holds, at most `timeout`; whether it holds.
    pub fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.lock();
        loop {
            if done(&state) {
                return true;
            }
            let now = Instant::now();
            let left = match deadline {
                Some(deadline) if now >= deadline => return false,
                Some(deadline) => deadline - now,
                None => Duration::from_secs(3600),
            };
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
