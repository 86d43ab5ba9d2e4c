//! The running collector: its options, the listener thread, and the state that the connection
//! threads, the control API and the Rust API share.

use crate::connection;
use crate::record::RecordedRequest;
use crate::script::Scripted;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a [`Collector`] is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// When set, the only `x-apikey` values accepted; others get 401.
    pub api_keys: Option<Vec<String>>,
    /// Bound on a body once decompressed (413 beyond). Default 3 MiB.
    pub max_body_bytes: usize,
    /// Bound on a body as received (413 beyond, and the connection is closed). Default 10 MiB.
    pub max_raw_body_bytes: usize,
    /// Port on 127.0.0.1 (on `::1` with `ipv6`); 0 picks a free one.
    pub port: u16,
    /// Listen on the IPv6 loopback `[::1]` instead of 127.0.0.1 (the TLS certificate names
    /// `::1` too), for clients given an IPv6 literal.
    pub ipv6: bool,
    /// A file to which accepted envelopes are appended, one JSON line each.
    pub record: Option<PathBuf>,
    /// Serve HTTPS with a certificate signed by a CA made at start (feature `tls`): no client
    /// trusts it unless given the CA ([`Collector::tls_certificate_der`],
    /// [`Collector::tls_ca_pem`]). The endpoint is `https://`.
    pub tls: bool,
    /// With `tls`: host names (or addresses) the server certificate names besides `localhost`
    /// and `127.0.0.1`, for clients that reach it under another name (through a proxy, or a
    /// hosts file in a network namespace).
    pub tls_names: Vec<String>,
    /// Keep every request and accepted envelope for inspection (the default). Off, only the
    /// counts are kept: for benchmarks and long runs, whose memory would otherwise grow.
    pub keep_records: bool,
    /// A round-trip time to play, as if the collector were far away (zero: none). Each new
    /// connection waits it once (the TCP handshake), each handshake flight of the TLS server
    /// once more (one for TLS 1.3, two for a full TLS 1.2 handshake), and each answer on the
    /// collector path once. Connections wait in parallel: it adds latency, not load.
    pub rtt: Duration,
    /// A sink, not a collector: every POST to the collector path is answered 200 `{}` without
    /// being decoded, parsed or checked, and only counted (in [`Collector::request_count`]);
    /// scripts do not apply and nothing is accepted or recorded. For measuring a client's own
    /// limit, which a strict collector would hide. Off by default.
    pub sink: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            api_keys: None,
            max_body_bytes: 3 * 1024 * 1024,
            max_raw_body_bytes: 10 * 1024 * 1024,
            port: 0,
            ipv6: false,
            record: None,
            tls: false,
            tls_names: Vec::new(),
            keep_records: true,
            rtt: Duration::ZERO,
            sink: false,
        }
    }
}

/// How long the collector waits for dropped connection threads before leaving them behind.
const DROP_GRACE: Duration = Duration::from_secs(2);

/// A local OneCollector on 127.0.0.1 (or `::1`). Dropping it stops the listener, ends every connection
/// (hangs included) and waits a little for their threads.
pub struct Collector {
    shared: Arc<Shared>,
    address: SocketAddr,
    listener_thread: Option<JoinHandle<()>>,
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsFront>,
}

impl Collector {
    /// Starts a collector with the default [`Options`] on a free port.
    pub fn start() -> io::Result<Collector> {
        Collector::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> io::Result<Collector> {
        let record_file = match &options.record {
            Some(path) => Some(OpenOptions::new().create(true).append(true).open(path)?),
            None => None,
        };
        #[cfg(not(feature = "tls"))]
        if options.tls {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "Options::tls needs tel-emulator's `tls` feature",
            ));
        }
        // With TLS the given port is the HTTPS one; the plain collector behind it takes any.
        let plain_port = if options.tls { 0 } else { options.port };
        let loopback: IpAddr = match options.ipv6 {
            true => Ipv6Addr::LOCALHOST.into(),
            false => Ipv4Addr::LOCALHOST.into(),
        };
        let listener = TcpListener::bind((loopback, plain_port))?;
        let address = listener.local_addr()?;
        #[cfg(feature = "tls")]
        let tls = match options.tls {
            true => Some(crate::tls::TlsFront::start(
                loopback,
                options.port,
                address,
                &options.tls_names,
                options.rtt,
            )?),
            false => None,
        };
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State {
                record_file,
                ..State::default()
            }),
            changed: Condvar::new(),
        });
        let listener_thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tel-emulator-listener".into())
                .spawn(move || accept_loop(listener, shared))?
        };
        Ok(Collector {
            shared,
            address,
            listener_thread: Some(listener_thread),
            #[cfg(feature = "tls")]
            tls,
        })
    }

    /// The port clients use (the HTTPS one with [`Options::tls`]).
    pub fn port(&self) -> u16 {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            return tls.port();
        }
        self.address.port()
    }

    /// `http://127.0.0.1:PORT/OneCollector/1.0/` (`https://` with [`Options::tls`],
    /// `[::1]` with [`Options::ipv6`]).
    pub fn endpoint(&self) -> String {
        let scheme = if self.shared.options.tls {
            "https"
        } else {
            "http"
        };
        let host = if self.shared.options.ipv6 {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        format!("{scheme}://{host}:{}/OneCollector/1.0/", self.port())
    }

    /// With [`Options::tls`]: the CA certificate (DER) that signed the server's, for a client
    /// that should trust it.
    #[cfg(feature = "tls")]
    pub fn tls_certificate_der(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().map(|t| t.ca_der().to_vec())
    }

    /// With [`Options::tls`]: the CA certificate as PEM (for `SSL_CERT_FILE`).
    #[cfg(feature = "tls")]
    pub fn tls_ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|t| t.ca_pem().to_owned())
    }

    /// With [`Options::tls`]: connections, completed handshakes and failed ones so far.
    #[cfg(feature = "tls")]
    pub fn tls_counts(&self) -> crate::tls::TlsCounts {
        self.tls.as_ref().map(|t| t.counts()).unwrap_or_default()
    }

    /// Queues a scripted answer for the next request(s).
    pub fn push(&self, scripted: Scripted) {
        self.shared.lock().script.push_back(scripted);
    }

    /// The answer used while the script is empty; `None`: normal judgement.
    pub fn set_default(&self, scripted: Option<Scripted>) {
        self.shared.lock().default = scripted;
    }

    /// Ends every hang in progress, closing those connections.
    pub fn release(&self) {
        self.shared.release();
    }

    /// Every request that reached the collector path, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// TCP connections the collector accepted since it started (over TLS, each TLS connection
    /// is relayed on one of these).
    pub fn connection_count(&self) -> u64 {
        self.shared.lock().next_connection
    }

    pub fn request_count(&self) -> usize {
        self.shared.lock().requests_total
    }

    /// Accepted envelopes, in order.
    pub fn accepted(&self) -> Vec<Value> {
        self.shared.lock().accepted.clone()
    }

    pub fn accepted_count(&self) -> usize {
        self.shared.lock().accepted_total
    }

    /// Waits until at least `n` envelopes were accepted; false on timeout.
    pub fn wait_for_accepted(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.accepted_total >= n)
    }

    /// Waits until at least `n` requests were recorded; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, |s| s.requests_total >= n)
    }

    /// Closes every open connection, as a collector does with idle ones after its keep-alive
    /// timeout, and waits (up to 2 s) until their threads are gone; whether they all are.
    /// Over TLS the front then closes each client's side with a close_notify.
    pub fn drop_connections(&self) -> bool {
        for connection in self.shared.lock().connections.values() {
            let _ = connection.shutdown(Shutdown::Both);
        }
        self.shared.wait(DROP_GRACE, |s| s.connections.is_empty())
    }

    /// Clears the records, the script and the default answer.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// A channel receiving a copy of every request recorded from now on.
    pub fn watch(&self) -> Receiver<RecordedRequest> {
        let (sender, receiver) = mpsc::channel();
        self.on_request(move |request| {
            let _ = sender.send(request.clone());
        });
        receiver
    }

    /// Calls `hook` with every request recorded from now on, on the connection's thread, after
    /// the request is recorded and before it is answered. The hook must not block for long; it
    /// may call the collector.
    pub fn on_request(&self, hook: impl Fn(&RecordedRequest) + Send + Sync + 'static) {
        self.shared.lock().hooks.push(Arc::new(hook));
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        #[cfg(feature = "tls")]
        drop(self.tls.take());
        {
            let mut state = self.shared.lock();
            state.stopping = true;
            for connection in state.connections.values() {
                let _ = connection.shutdown(Shutdown::Both);
            }
        }
        self.shared.changed.notify_all();
        // Wakes the listener out of accept(); it then sees `stopping`.
        let woke = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok();
        if let Some(thread) = self.listener_thread.take() {
            if woke {
                let _ = thread.join();
            }
        }
        self.shared.wait(DROP_GRACE, |s| s.connections.is_empty());
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.lock().stopping {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            // Out of descriptors and the like: back off briefly rather than spin.
            Err(_) => {
                shared.pause(Duration::from_millis(10));
                continue;
            }
        };
        let Some(id) = shared.register(&stream) else {
            continue;
        };
        let worker = Arc::clone(&shared);
        let spawned = std::thread::Builder::new()
            .name("tel-emulator-conn".into())
            .spawn(move || {
                connection::serve(&worker, stream);
                worker.unregister(id);
            });
        if spawned.is_err() {
            shared.unregister(id);
        }
    }
}

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
    next_connection: u64,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking connection thread must not take the collector down with it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, stream: &TcpStream) -> Option<u64> {
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

    fn unregister(&self, id: u64) {
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

    /// Waits until `done` holds, at most `timeout`; whether it holds.
    fn wait(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
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
