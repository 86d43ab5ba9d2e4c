//! Helpers shared by the integration tests, and the one place for them: the C ABI called as a
//! C host would call it, a lock that serialises tests (the session is process-wide), temporary
//! folders and cache files; child processes ([`children`]); the test process's own figures, a
//! capturing logger and deadlines ([`process`]). The fuzz targets' settings, corpus and
//! contract are in `fuzz/`, which only the `fuzz_*` files include (as `mod fuzz`), so that the
//! other test binaries do not compile them.
//!
//! Each test binary runs its tests on several threads. A test takes [`serial`] when it uses
//! the default session or sets anything process-wide (the logger, the default session's
//! delivery callback, an environment variable), and every test of a binary whose tests read
//! process-wide figures (memory, threads, descriptors) or capture log lines takes it too.
//! Tests that use only their own clients, collectors and folders may run side by side.
#![allow(dead_code)]

pub mod children;
pub mod process;

#[allow(unused_imports)]
pub use children::*;
#[allow(unused_imports)]
pub use process::*;

use parking_lot::{Mutex, MutexGuard};
use serde_json::{json, Value};
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tel::ffi;

#[allow(unused_imports)]
pub use tel_emulator::{Collector, Fault, Scripted};

pub const IKEY: &str = "0123456789abcdef0123456789abcdef-0123-4567-89ab-cdef01234567-0001";
pub const TENANT: &str = "0123456789abcdef0123456789abcdef";
/// The `tel_log_ex` options of a high and of a critical event.
pub const HIGH: &str = r#"{"priority":"high"}"#;
pub const CRITICAL: &str = r#"{"priority":"critical"}"#;
/// Another tenant's key, for cache files shared with [`IKEY`]'s tenant.
pub const OTHER_IKEY: &str = "othertenant0-aaaa-bbbb-cccc";
pub const OTHER_TENANT: &str = "othertenant0";

static SERIAL: Mutex<()> = Mutex::new(());

/// One test at a time owns the process-wide session; the guard also shuts down a session a
/// failing test left behind.
pub struct Serial(#[allow(dead_code)] MutexGuard<'static, ()>);

pub fn serial() -> Serial {
    let g = SERIAL.lock();
    let _ = ffi::tel_shutdown(0);
    Serial(g)
}

impl Drop for Serial {
    fn drop(&mut self) {
        let _ = ffi::tel_shutdown(0);
    }
}

pub fn init(config: &Value) -> i32 {
    init_raw(config.to_string().as_bytes())
}

pub fn init_ok(config: &Value) {
    let rc = init(config);
    assert_eq!(rc, 0, "tel_init: {}", last_error());
}

pub fn log(name: &str, props: Option<&str>) -> i32 {
    log_raw(name.as_bytes(), props.map(str::as_bytes))
}

/// `tel_init` with bytes that may not be UTF-8 (no NUL among them).
pub fn init_raw(bytes: &[u8]) -> i32 {
    let c = CString::new(bytes).unwrap();
    unsafe { ffi::tel_init(c.as_ptr()) }
}

/// `tel_log` with bytes that may not be UTF-8 (no NUL among them).
pub fn log_raw(name: &[u8], props: Option<&[u8]>) -> i32 {
    let n = CString::new(name).unwrap();
    let p = props.map(|p| CString::new(p).unwrap());
    unsafe {
        ffi::tel_log(
            n.as_ptr(),
            p.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
        )
    }
}

pub fn purge(config: &Value) -> i32 {
    let c = CString::new(config.to_string()).unwrap();
    unsafe { ffi::tel_purge(c.as_ptr()) }
}

pub fn log_ok(name: &str, props: Option<&str>) {
    let rc = log(name, props);
    assert_eq!(rc, 0, "tel_log: {}", last_error());
}

pub fn flush(ms: u32) -> i32 {
    ffi::tel_flush(ms)
}

pub fn shutdown(ms: u32) -> i32 {
    ffi::tel_shutdown(ms)
}

pub fn last_error() -> String {
    let n = unsafe { ffi::tel_last_error(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    unsafe { ffi::tel_last_error(buf.as_mut_ptr().cast(), buf.len()) };
    CStr::from_bytes_until_nul(&buf)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

pub fn stats() -> Value {
    let n = unsafe { ffi::tel_stats_json(std::ptr::null_mut(), 0) };
    let mut buf = vec![0u8; n + 1];
    let m = unsafe { ffi::tel_stats_json(buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(n, m);
    serde_json::from_slice(&buf[..n]).unwrap()
}

pub fn stat(name: &str) -> u64 {
    stats()[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// The conservation law of abi.md.
pub fn assert_conserved() {
    assert_conserved_in(&stats());
}

/// A fresh private folder under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tel-test-{tag}-{}-{}",
        std::process::id(),
        tel::internals::random::u64()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `config` with the keys of `extra` set over it.
pub fn merged(mut config: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    config
}

/// An endpoint on loopback where nothing listens: every request fails at once (an outage).
pub fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}/OneCollector/1.0/", closed_port())
}

/// A configuration that talks to `collector`, with fast timings and a cache file in `dir`
/// (or none), merged with `extra`.
pub fn config(collector: &Collector, dir: Option<&Path>, extra: Value) -> Value {
    let c = json!({
        "ikey": IKEY,
        "endpoint": collector.endpoint(),
        "flush_interval_ms": 50,
        "retry_initial_ms": 50,
        "retry_max_ms": 200,
        "http_timeout_ms": 5000,
        "cache_path": dir.map(|d| d.join("events.cache").to_string_lossy().into_owned()),
    });
    merged(c, extra)
}

/// A configuration for `endpoint` with faster timings than [`config`] (a retry after 20 ms,
/// at most 100 ms apart) and the cache file `cache` (or none), merged with `extra`.
pub fn fast_config(endpoint: &str, cache: Option<&Path>, extra: Value) -> Value {
    let c = json!({
        "ikey": IKEY,
        "endpoint": endpoint,
        "cache_path": cache,
        "flush_interval_ms": 20,
        "retry_initial_ms": 20,
        "retry_max_ms": 100,
        "http_timeout_ms": 5000,
    });
    merged(c, extra)
}

/// Leaves `n` events named `name` (properties `{"i":0}`, `{"i":1}`, ...) of the key `ikey` in
/// the cache file `cache`, through a session of this process that shut down during an outage.
pub fn cache_through_outage(ikey: &str, cache: &Path, n: usize, name: &str) {
    init_ok(&fast_config(
        &dead_endpoint(),
        Some(cache),
        json!({"ikey": ikey}),
    ));
    for i in 0..n {
        log_ok(name, Some(&format!("{{\"i\":{i}}}")));
    }
    let _ = shutdown(2000);
    assert_eq!(stat("persisted"), n as u64, "{}", stats());
    assert_conserved();
}

pub fn names(envelopes: &[Value]) -> Vec<String> {
    envelopes
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

pub const WAIT: Duration = Duration::from_secs(20);

pub fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .map(|s| s.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

// ABI 1.1: clients, per-event options, delivery reports.

/// An open `tel_client`, closed (with 5 s) when dropped unless `close` was called.
pub struct TestClient(pub *mut ffi::tel_client);

unsafe impl Send for TestClient {}
unsafe impl Sync for TestClient {}

impl TestClient {
    pub fn new(config: &Value) -> TestClient {
        let (rc, c) = client_new(config);
        assert_eq!(rc, 0, "tel_client_new: {}", last_error());
        c.unwrap()
    }

    pub fn log(&self, name: &str, props: Option<&str>) -> i32 {
        self.log_ex(name, props, None)
    }

    pub fn log_ex(&self, name: &str, props: Option<&str>, options: Option<&str>) -> i32 {
        let n = CString::new(name).unwrap();
        let p = props.map(|p| CString::new(p).unwrap());
        let o = options.map(|o| CString::new(o).unwrap());
        unsafe {
            ffi::tel_client_log_ex(
                self.0,
                n.as_ptr(),
                p.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
                o.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
            )
        }
    }

    pub fn flush(&self, ms: u32) -> i32 {
        unsafe { ffi::tel_client_flush(self.0, ms) }
    }

    pub fn stats(&self) -> Value {
        let n = unsafe { ffi::tel_client_stats_json(self.0, std::ptr::null_mut(), 0) };
        let mut buf = vec![0u8; n + 1];
        unsafe { ffi::tel_client_stats_json(self.0, buf.as_mut_ptr().cast(), buf.len()) };
        serde_json::from_slice(&buf[..n]).unwrap()
    }

    pub fn close(mut self, ms: u32) -> i32 {
        let p = std::mem::replace(&mut self.0, std::ptr::null_mut());
        unsafe { ffi::tel_client_close(p, ms) }
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        if !self.0.is_null() {
            unsafe { ffi::tel_client_close(self.0, 5000) };
        }
    }
}

pub fn client_new(config: &Value) -> (i32, Option<TestClient>) {
    let c = CString::new(config.to_string()).unwrap();
    let mut out: *mut ffi::tel_client = std::ptr::null_mut();
    let rc = unsafe { ffi::tel_client_new(c.as_ptr(), &mut out) };
    (rc, (!out.is_null()).then_some(TestClient(out)))
}

pub fn log_ex(name: &str, props: Option<&str>, options: Option<&str>) -> i32 {
    let n = CString::new(name).unwrap();
    let p = props.map(|p| CString::new(p).unwrap());
    let o = options.map(|o| CString::new(o).unwrap());
    unsafe {
        ffi::tel_log_ex(
            n.as_ptr(),
            p.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            o.as_ref().map_or(std::ptr::null(), |o| o.as_ptr()),
        )
    }
}

/// The conservation law of abi.md 1.2 on a stats object (`dropped_consent` and
/// `dropped_sampled` included).
pub fn assert_conserved_in(s: &Value) {
    assert!(snapshot_of(s).conserved(), "conservation broken: {s}");
}

/// A stats object (`tel_stats_json`, `Client::stats`) read back as the library's snapshot.
pub fn snapshot_of(s: &Value) -> tel::Snapshot {
    let g = |k: &str| {
        s[k].as_u64()
            .unwrap_or_else(|| panic!("no counter {k} in {s}"))
    };
    tel::Snapshot {
        enabled: s["enabled"]
            .as_bool()
            .unwrap_or_else(|| panic!("no flag enabled in {s}")),
        logged: g("logged"),
        sent: g("sent"),
        rejected: g("rejected"),
        dropped_queue_full: g("dropped_queue_full"),
        dropped_killed: g("dropped_killed"),
        dropped_shutdown: g("dropped_shutdown"),
        dropped_evicted: g("dropped_evicted"),
        replayed: g("replayed"),
        persisted: g("persisted"),
        cache_evicted: g("cache_evicted"),
        pending: g("pending"),
        retries: g("retries"),
        http_requests: g("http_requests"),
        http_failures: g("http_failures"),
        killed_until_ms: g("killed_until_ms"),
        not_durable: g("not_durable"),
        dropped_consent: g("dropped_consent"),
        dropped_sampled: g("dropped_sampled"),
        scrubbed: g("scrubbed"),
        consent: match s["consent"].as_str() {
            Some("unknown") => 0,
            Some("granted") => 1,
            Some("denied") => 2,
            _ => panic!("no consent state in {s}"),
        },
        paused: s["paused"]
            .as_bool()
            .unwrap_or_else(|| panic!("no flag paused in {s}")),
    }
}

/// A cache line as a process of this tenant would have written it (epoch `epoch`, sequence
/// `seq`, time now), with `mark` appended (`""`, `" "` high, `"  "` critical).
pub fn cached_line(name: &str, epoch: &str, seq: u64, mark: &str) -> String {
    format!(
        "{{\"ver\":\"4.0\",\"name\":\"{name}\",\"time\":\"{}\",\"iKey\":\"o:{TENANT}\",\"ext\":{{\"sdk\":{{\"ver\":\"t\",\"epoch\":\"{epoch}\",\"seq\":{seq}}}}},\"data\":{{\"seq\":{seq}}}}}{mark}",
        tel::internals::clock::iso8601(tel::internals::clock::now_ms())
    )
}

/// Writes `n` entries named `name` into the cache file `path`.
pub fn fill_cache(path: &Path, name: &str, n: u64) {
    let epoch = format!("fill-{}", tel::internals::random::u64());
    let mut text = String::new();
    for i in 1..=n {
        text.push_str(&cached_line(name, &epoch, i, ""));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The paths in `dir` whose file name passes `keep`.
pub fn files_named(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| keep(&p.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// The sessions' claim files in `dir`.
pub fn claim_files(dir: &Path) -> Vec<PathBuf> {
    files_named(dir, |name| name.contains(".claim-"))
}

/// Polls `cond` until it holds or `timeout` passes (for effects with no event to wait on,
/// such as a detached thread ending); whether it held.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `data.i` of each envelope, sorted.
pub fn data_i(envelopes: &[Value]) -> Vec<u64> {
    let mut v: Vec<u64> = envelopes
        .iter()
        .map(|e| e["data"]["i"].as_u64().unwrap())
        .collect();
    v.sort_unstable();
    v
}

/// How many times each `data.seq` arrived.
pub fn seq_counts(envelopes: &[Value]) -> std::collections::HashMap<u64, usize> {
    let mut m = std::collections::HashMap::new();
    for e in envelopes {
        *m.entry(e["data"]["seq"].as_u64().unwrap()).or_insert(0) += 1;
    }
    m
}

/// Every envelope as it went over the wire, accepted or not, in order.
pub fn wire_envelopes(c: &Collector) -> Vec<Value> {
    c.requests()
        .iter()
        .flat_map(|r| r.lines.iter().map(|l| serde_json::from_str(l).unwrap()))
        .collect()
}

// ABI 1.2: consent, common properties, pause and resume.

pub const CONSENT_UNKNOWN: i32 = 0;
pub const CONSENT_GRANTED: i32 = 1;
pub const CONSENT_DENIED: i32 = 2;

pub fn set_consent(state: i32) -> i32 {
    ffi::tel_set_consent(state)
}

pub fn consent() -> i32 {
    ffi::tel_consent()
}

/// `tel_set_property`; `None` removes the property.
pub fn set_property(name: &str, value_json: Option<&str>) -> i32 {
    let n = CString::new(name).unwrap();
    let v = value_json.map(|v| CString::new(v).unwrap());
    unsafe {
        ffi::tel_set_property(
            n.as_ptr(),
            v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
        )
    }
}

pub fn pause() -> i32 {
    ffi::tel_pause()
}

pub fn resume() -> i32 {
    ffi::tel_resume()
}

impl TestClient {
    pub fn set_consent(&self, state: i32) -> i32 {
        unsafe { ffi::tel_client_set_consent(self.0, state) }
    }

    pub fn consent(&self) -> i32 {
        unsafe { ffi::tel_client_consent(self.0) }
    }

    /// `tel_client_set_property`; `None` removes the property.
    pub fn set_property(&self, name: &str, value_json: Option<&str>) -> i32 {
        let n = CString::new(name).unwrap();
        let v = value_json.map(|v| CString::new(v).unwrap());
        unsafe {
            ffi::tel_client_set_property(
                self.0,
                n.as_ptr(),
                v.as_ref().map_or(std::ptr::null(), |v| v.as_ptr()),
            )
        }
    }

    pub fn pause(&self) -> i32 {
        unsafe { ffi::tel_client_pause(self.0) }
    }

    pub fn resume(&self) -> i32 {
        unsafe { ffi::tel_client_resume(self.0) }
    }

    /// Installs a delivery callback that collects every report into `reports` (which must
    /// outlive the client).
    pub fn collect_reports(&self, reports: &Reports) {
        let rc = unsafe {
            ffi::tel_client_set_delivery_callback(
                self.0,
                Some(collect_report),
                reports as *const Reports as *mut std::ffi::c_void,
            )
        };
        assert_eq!(rc, 0);
    }
}

/// The delivery reports a client's callback received.
#[derive(Default)]
pub struct Reports(pub Mutex<Vec<Value>>);

impl Reports {
    /// The sum of `events` over the reports of `outcome`.
    pub fn events(&self, outcome: &str) -> u64 {
        self.0
            .lock()
            .iter()
            .filter(|r| r["outcome"] == outcome)
            .map(|r| r["events"].as_u64().unwrap())
            .sum()
    }
}

extern "C" fn collect_report(report: *const std::ffi::c_char, user: *mut std::ffi::c_void) {
    let reports = unsafe { &*(user as *const Reports) };
    let text = unsafe { CStr::from_ptr(report) }.to_string_lossy();
    reports.0.lock().push(serde_json::from_str(&text).unwrap());
}

/// The files in `dir`, by name, sorted (what a session left on disk).
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
