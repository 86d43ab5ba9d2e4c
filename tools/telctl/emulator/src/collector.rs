//! The running collector: the Rust API of the emulator, and its listener thread. What the
//! threads of a collector share is in `shared`.

use crate::connection;
use crate::options::Options;
use crate::record::RecordedRequest;
use crate::script::Scripted;
use crate::shared::Shared;
use serde_json::Value;
use std::fs::OpenOptions;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

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
        let shared = Arc::new(Shared::new(options, record_file));
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
        self.shared.on_request(hook);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        #[cfg(feature = "tls")]
        drop(self.tls.take());
        self.shared.stop();
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
