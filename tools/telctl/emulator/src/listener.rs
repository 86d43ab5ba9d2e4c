//! The accept loop of the emulator's side servers (the CONNECT proxy, the TLS front): a thread
//! that accepts on a loopback listener and serves each connection on a thread of its own, and
//! stops, closing every connection still open, when it is dropped.

use crate::sync::lock;
use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The connections accepted and not yet served to the end, shut down when the loop stops.
#[derive(Default)]
struct Open {
    stopping: AtomicBool,
    streams: Mutex<HashMap<u64, TcpStream>>,
    next: AtomicU64,
}

/// A running accept loop. Dropping it stops the loop and shuts down every open connection.
pub(crate) struct AcceptLoop {
    address: SocketAddr,
    open: Arc<Open>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Accepts on `listener` in a thread named `name`. For each connection, `accepted` runs
    /// on that thread and returns the work that serves the connection on a thread of its own
    /// (named `name-conn`).
    pub(crate) fn start<S>(
        listener: TcpListener,
        name: &str,
        mut accepted: impl FnMut(TcpStream) -> S + Send + 'static,
    ) -> io::Result<AcceptLoop>
    where
        S: FnOnce() + Send + 'static,
    {
        let address = listener.local_addr()?;
        let open = Arc::new(Open::default());
        let thread = {
            let open = Arc::clone(&open);
            let connection_name = format!("{name}-conn");
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if open.stopping.load(Ordering::SeqCst) {
                            return;
                        }
                        let Ok(stream) = stream else {
                            std::thread::sleep(Duration::from_millis(10));
                            continue;
                        };
                        let id = open.next.fetch_add(1, Ordering::SeqCst);
                        if let Ok(clone) = stream.try_clone() {
                            lock(&open.streams).insert(id, clone);
                        }
                        let serve = accepted(stream);
                        let worker = Arc::clone(&open);
                        let spawned = std::thread::Builder::new()
                            .name(connection_name.clone())
                            .spawn(move || {
                                serve();
                                lock(&worker.streams).remove(&id);
                            });
                        if spawned.is_err() {
                            lock(&open.streams).remove(&id);
                        }
                    }
                })?
        };
        Ok(AcceptLoop {
            address,
            open,
            thread: Some(thread),
        })
    }

    pub(crate) fn port(&self) -> u16 {
        self.address.port()
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.open.stopping.store(true, Ordering::SeqCst);
        for stream in lock(&self.open.streams).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        // Wakes the loop out of accept(); it then sees `stopping`.
        let woke = TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok();
        if let Some(thread) = self.thread.take() {
            if woke {
                let _ = thread.join();
            }
        }
    }
}
