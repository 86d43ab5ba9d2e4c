//! The library's diagnostics: a host callback (`tel_set_logger`) or the `TEL_LOG` stderr sink.
//!
//! No lock is held while the callback runs, so a callback may call back into `tel_*`.

use crate::sys::fork::ForkLocal;
use crate::sys::sync::{self, RwLock};
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Weak;

/// The levels the library writes at; the scale (abi.md) also has 1 error and 5 trace, which a
/// host or `TEL_LOG` may set as the most it wants, but no line is written at either.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The C callback type of `tel_set_logger`.
pub type LogFn = extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void);

#[derive(Clone, Copy)]
struct Callback {
    f: LogFn,
    max_level: i32,
    // Stored as an integer: the host owns what it points to and promises it may be used from any
    // thread (abi.md: the callback can run on any thread).
    user_data: usize,
}

/// What holds a secret no log line may carry (a session's configuration: its key).
pub trait Redact: Send + Sync {
    fn redact(&self, text: &str) -> String;
}

/// Everything a log line needs besides its text.
#[derive(Clone)]
struct LogState {
    callback: Option<Callback>,
    /// The stderr sink's level (`TEL_LOG`), -1 until read. Kept with the callback, so that a
    /// line that finds no callback is held to this level, never to the callback's.
    stderr_level: i32,
    /// The sessions whose keys are redacted from every line, whatever the line repeats (a
    /// collector's body or Collector-Error included). Held weakly: a session's entry goes once
    /// its configuration is gone, so the list does not grow with every key ever used.
    secrets: Vec<Weak<dyn Redact>>,
}

impl Default for LogState {
    fn default() -> Self {
        LogState {
            callback: None,
            stderr_level: -1,
            secrets: Vec::new(),
        }
    }
}

type StateSlot = RwLock<LogState>;
static STATE: ForkLocal<StateSlot> = ForkLocal::new(RwLock::new(LogState {
    callback: None,
    stderr_level: -1,
    secrets: Vec::new(),
}));
/// The highest level any sink wants; lets `enabled` answer without a lock.
static MAX_LEVEL: AtomicI32 = AtomicI32::new(-1);

/// Parses `TEL_LOG`: `error`..`trace` or the digits 1-5.
fn env_level() -> i32 {
    match std::env::var("TEL_LOG").ok().as_deref().map(str::trim) {
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "error" | "1" => 1,
            "warn" | "warning" | "2" => 2,
            "info" | "3" => 3,
            "debug" | "4" => 4,
            "trace" | "5" => 5,
            _ => 0,
        },
        None => 0,
    }
}

/// Installs (or with `None`, removes) the host callback. Without a callback the stderr sink
/// is used at the level `TEL_LOG` names, read now.
pub fn set_callback(f: Option<LogFn>, max_level: i32, user_data: *mut c_void) {
    let env = env_level();
    let mut state = STATE.get().write();
    state.callback = f.map(|f| Callback {
        f,
        max_level: max_level.clamp(0, 5),
        user_data: user_data as usize,
    });
    state.stderr_level = env;
    let level = match state.callback {
        Some(cb) => cb.max_level,
        None => env,
    };
    MAX_LEVEL.store(level, Ordering::Release);
}

/// Registers what holds a session's key: from now on, and while it lives, no log line carries
/// the key. Entries whose holder is gone are dropped here.
pub fn add_secret(holder: Weak<dyn Redact>) {
    let mut state = STATE.get().write();
    state.secrets.retain(|w| w.strong_count() > 0);
    state.secrets.push(holder);
}

fn max_level() -> i32 {
    let level = MAX_LEVEL.load(Ordering::Acquire);
    if level >= 0 {
        return level;
    }
    // First use without tel_set_logger: read TEL_LOG once.
    let level = env_level();
    let _ = MAX_LEVEL.compare_exchange(-1, level, Ordering::AcqRel, Ordering::Acquire);
    MAX_LEVEL.load(Ordering::Acquire)
}

/// The child's fork handler: a fresh, unlocked state that keeps the host's callback and keys.
#[cfg_attr(not(unix), allow(dead_code))] // fork handlers exist on Unix only
pub(crate) fn renew_in_child() {
    // Keep the host's callback and keys unless a parent thread was changing them at the fork.
    let copy = STATE
        .get()
        .try_read()
        .map(|s| s.clone())
        .unwrap_or_default();
    STATE.renew(RwLock::new(copy));
}

/// Re-reads `TEL_LOG` when no callback is installed (called by `tel_init`).
pub fn refresh_env() {
    let env = env_level();
    let mut state = STATE.get().write();
    state.stderr_level = env;
    if state.callback.is_none() {
        MAX_LEVEL.store(env, Ordering::Release);
    }
}

pub fn enabled(level: Level) -> bool {
    (level as i32) <= max_level()
}

thread_local! {
    /// The lines this thread logged while it held a library lock: a line is never handed to the
    /// host while a lock that `tel_*` needs is held (the callback may take a host lock that
    /// another thread holds while it waits in `tel_shutdown`). `sync` counts the locks, and
    /// runs [`write_deferred`] when the last one is released.
    static DEFERRED: std::cell::RefCell<Vec<(Level, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Held like a library lock: lines logged meanwhile wait until the thread's last hold ends.
pub(crate) struct Hold(sync::Hold);

/// Starts holding this thread's lines (see [`Hold`]).
pub(crate) fn hold() -> Hold {
    Hold(sync::hold())
}

impl Hold {
    /// Ends the hold; when it was the last one, writes the lines kept meanwhile before `by`
    /// when it can: to the stderr sink at once (it is not slow), to a host callback from a
    /// short-lived thread of their own that this one waits for until `by` (a slow logger then
    /// writes them after this call returned, but never holds it up).
    pub(crate) fn emit_by(self, by: std::time::Instant) {
        if !self.0.end_quietly() {
            return; // an outer hold writes them
        }
        let lines = take_deferred();
        if lines.is_empty() {
            return;
        }
        if STATE.get().read().callback.is_none() {
            write(lines);
            return;
        }
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("tel-log".into())
            .spawn(move || {
                write(lines);
                let _ = done.send(());
            });
        if spawned.is_ok() {
            let _ = finished.recv_timeout(by.saturating_duration_since(std::time::Instant::now()));
        }
    }
}

/// Run by `sync` when this thread's last hold ends: the lines kept meanwhile go out.
fn write_deferred() {
    write(take_deferred());
}

/// What `sync` runs when a thread's last hold ends.
static WRITE_DEFERRED: fn() = write_deferred;

fn take_deferred() -> Vec<(Level, String)> {
    DEFERRED
        .try_with(|d| d.try_borrow_mut().map(|mut d| std::mem::take(&mut *d)))
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default()
}

fn write(lines: Vec<(Level, String)>) {
    for (level, line) in lines {
        emit(level, &line);
    }
}

/// Keeps the line for later when this thread holds a library lock; true if it did.
fn deferred(level: Level, message: &str) -> bool {
    if !sync::held() {
        return false;
    }
    sync::on_last_release(&WRITE_DEFERRED);
    DEFERRED
        .try_with(|d| match d.try_borrow_mut() {
            Ok(mut d) => {
                d.push((level, message.to_owned()));
                true
            }
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// `text` with every registered full instrumentation key replaced by its redacted form.
pub fn redact(text: &str) -> String {
    redact_with(&STATE.get().read(), text)
}

fn redact_with(state: &LogState, text: &str) -> String {
    let mut text = text.to_owned();
    for holder in state.secrets.iter().filter_map(Weak::upgrade) {
        text = holder.redact(&text);
    }
    text
}

/// Emits one line. Newlines are flattened so every message is one line.
pub fn emit(level: Level, message: &str) {
    if !enabled(level) || deferred(level, message) {
        return;
    }
    let (callback, stderr_level, mut flat) = {
        let state = STATE.get().read();
        (
            state.callback,
            state.stderr_level,
            redact_with(&state, message),
        )
    };
    if flat.contains(['\n', '\r', '\0']) {
        flat = flat
            .chars()
            .map(|c| match c {
                '\n' | '\r' => ' ',
                '\0' => '?',
                c => c,
            })
            .collect();
    }
    match callback {
        Some(cb) => {
            if (level as i32) <= cb.max_level {
                if let Ok(c) = CString::new(flat) {
                    (cb.f)(level as i32, c.as_ptr(), cb.user_data as *mut c_void);
                }
            }
        }
        None => {
            // `enabled` may have read the level of a callback being removed just now.
            let stderr_level = if stderr_level < 0 {
                env_level()
            } else {
                stderr_level
            };
            if (level as i32) <= stderr_level {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "tel [{}] {}", level.name(), flat);
            }
        }
    }
}

/// `tel_log!(Level::Info, "format {}", args)`: formats only when the level is enabled.
macro_rules! tel_log {
    ($level:expr, $($arg:tt)*) => {
        if $crate::sys::log::enabled($level) {
            $crate::sys::log::emit($level, &format!($($arg)*));
        }
    };
}
pub(crate) use tel_log;
