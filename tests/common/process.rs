//! The test process itself: figures from /proc (memory, threads, descriptors), a logger that
//! captures the library's lines, and deadlines.
//!
//! The figures and the logger are process-wide: a test that reads them or installs the logger
//! takes [`serial`](super::serial), and so does every other test of its binary that runs the
//! library in-process (its threads, memory and lines would show in the figures).

use parking_lot::Mutex;
use std::ffi::{c_char, c_void, CStr};
use std::time::{Duration, Instant};

/// A field of /proc/self/status in kB (or a count), 0 where there is no /proc.
pub fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn rss_kb() -> u64 {
    proc_status("VmRSS")
}

pub fn threads() -> u64 {
    proc_status("Threads")
}

/// Threads of the library: its worker, and the helper threads its HTTP client starts, which
/// inherit the worker's name. (The process's own thread count also moves with the test
/// harness's threads, so leak checks count these.)
pub fn library_threads() -> u64 {
    std::fs::read_dir("/proc/self/task").map_or(0, |d| {
        d.flatten()
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|c| c.trim_end() == "tel-worker")
            })
            .count() as u64
    })
}

/// Open descriptors other than pipes (which the harness's child processes come and go with):
/// sockets, files, the things a leak would leave.
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| {
        d.flatten()
            .filter(|e| {
                std::fs::read_link(e.path())
                    .is_ok_and(|t| !t.to_string_lossy().starts_with("pipe:"))
            })
            .count() as u64
    })
}

/// Resets the peak RSS (`VmHWM`) to the current RSS (Linux: `5` to /proc/self/clear_refs), so
/// that [`peak_rss_kb`] measures from now on. False where that is not possible.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn peak_rss_kb() -> u64 {
    proc_status("VmHWM")
}

/// Runs `f` and returns its result with how long it took.
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

/// Asserts that a call promised to return within `promised` did, with the ABI's 200 ms margin
/// and a generous allowance for a loaded machine (2 s in all).
pub fn assert_within(what: &str, took: Duration, promised: Duration) {
    assert!(
        took < promised + Duration::from_secs(2),
        "{what} took {took:?}, promised {promised:?} (+200 ms)"
    );
}

/// Every line the library logged while a [`Capture`] was installed.
static LINES: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

extern "C" fn capture_sink(level: i32, msg: *const c_char, _: *mut c_void) {
    let m = unsafe { CStr::from_ptr(msg) }
        .to_string_lossy()
        .into_owned();
    LINES.lock().push((level, m));
}

/// Installs a logger that records every line up to trace; removes it when dropped.
pub struct Capture;

impl Capture {
    pub fn start() -> Capture {
        Capture::up_to(5)
    }

    /// Records the lines up to `max_level` (`tel_set_logger`'s levels: 1 error ... 5 trace).
    pub fn up_to(max_level: i32) -> Capture {
        LINES.lock().clear();
        assert_eq!(
            tel::ffi::tel_set_logger(Some(capture_sink), max_level, std::ptr::null_mut()),
            0
        );
        Capture
    }

    pub fn lines(&self) -> Vec<(i32, String)> {
        LINES.lock().clone()
    }

    /// Whether a line recorded so far contains `needle`.
    pub fn has(&self, needle: &str) -> bool {
        LINES.lock().iter().any(|(_, l)| l.contains(needle))
    }

    /// Removes the logger (which must succeed) and returns the text of the lines recorded.
    pub fn stop(self) -> Vec<String> {
        assert_eq!(tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut()), 0);
        LINES.lock().iter().map(|(_, l)| l.clone()).collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        tel::ffi::tel_set_logger(None, 0, std::ptr::null_mut());
    }
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `f` on its own thread and fails the test if it has not returned within `limit`: a
/// deadlock shows as a failure, not as a test run that never ends.
pub fn within<R: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> R + Send + 'static,
) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("within-{what}"))
        .spawn(move || {
            let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(Ok(r)) => r,
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("{what} did not finish within {limit:?}: deadlock or hang"),
    }
}
