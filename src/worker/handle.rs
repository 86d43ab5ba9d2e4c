//! The one owner of the protocol between a client and its worker: start it, wait for a flush,
//! shut it down. Nothing outside this file drives the worker through its shared fields.

use super::{on_worker_of, Shared, Worker};
use crate::status::{Error, Result, Status};
use crate::sync::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The shutdown time budget. abi.md: `tel_shutdown(t)` returns within `t` plus 200 ms, even
/// when the collector hangs mid-request; these three shares of the 200 ms add up below it.
pub mod budget {
    use std::time::Duration;

    /// How long past its deadline a shutdown waits for the worker to end by itself before
    /// taking over what it holds (it is then stuck in a request).
    pub const EXIT_GRACE: Duration = Duration::from_millis(40);
    /// How long a shutdown that took over waits for another process's cache lock to persist.
    pub const TAKEOVER_WRITE: Duration = Duration::from_millis(120);
    /// How long past the deadline the worker's own last write waits for the cache lock.
    pub const LAST_WRITE: Duration = Duration::from_millis(150);
}

/// A running worker thread and what it shares with the callers.
pub struct WorkerHandle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl WorkerHandle {
    /// Starts the worker; it begins replaying the cache at once.
    pub fn spawn(shared: Arc<Shared>) -> Result<WorkerHandle> {
        let w = Worker::new(shared.clone());
        let thread = std::thread::Builder::new()
            .name("tel-worker".into())
            .spawn(move || w.run())
            .map_err(|e| {
                Error::new(
                    Status::Internal,
                    format!("cannot start the worker thread: {e}"),
                )
            })?;
        Ok(WorkerHandle {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Waits until every event logged before the call, and every cache entry present at start,
    /// is resolved; else [`Status::Timeout`] after `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let shared = &self.shared;
        let target = {
            let mut q = shared.queue.state.lock();
            q.flush_upto = q.flush_upto.max(q.next_ordinal);
            q.flush_gen += 1;
            q.next_ordinal
        };
        shared.queue.wake.notify_one();
        let mut p = shared.progress.lock();
        loop {
            if (p.watermark >= target && p.replay_done) || p.exited {
                return Ok(());
            }
            if on_worker_of(shared) {
                return Err(Error::new(
                    Status::Timeout,
                    "a flush cannot wait from this client's own worker thread (a logger or delivery callback): the events stay queued",
                ));
            }
            if shared
                .progress_changed
                .wait_until(&mut p, deadline)
                .timed_out()
            {
                let undelivered = shared
                    .stats
                    .pending
                    .load(std::sync::atomic::Ordering::Relaxed);
                return Err(Error::new(
                    Status::Timeout,
                    format!(
                        "flush timed out after {} ms: {undelivered} events are still pending and stay queued for retry",
                        timeout.as_millis()
                    ),
                ));
            }
        }
    }

    /// Stops accepting events, delivers what it can within `timeout`, persists the rest and
    /// stops the worker. Returns within `timeout` plus [`budget`]'s margin even if a request
    /// hangs or a logger callback is slow; `pending` is 0 when it returns (unless it is called
    /// from the worker's own thread, where the worker finishes once the callback returns).
    ///
    /// Exactly one side resolves what is left: the worker, which marks itself `finishing`
    /// before it drains (the shutdown then waits for it: that is disk work only), or, when the
    /// worker is stuck past the deadline, this call, which marks it `abandoned` first.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        shared.queue.state.lock().shutdown_deadline = Some(deadline);
        shared.queue.wake.notify_all();
        if on_worker_of(shared) {
            drop(self.thread.lock().take()); // detach: it ends once the callback returns
            return Ok(());
        }
        let mut took_over = None;
        let mut wait_until = deadline + budget::EXIT_GRACE;
        loop {
            let mut p = shared.progress.lock();
            while !p.exited {
                if shared
                    .progress_changed
                    .wait_until(&mut p, wait_until)
                    .timed_out()
                {
                    break;
                }
            }
            if p.exited {
                break;
            }
            drop(p);
            if let Some(taken) = shared.take_over() {
                took_over = Some(taken);
                break;
            }
            // The worker is writing to disk (the rest, or the cache): wait for it.
            wait_until = Instant::now() + Duration::from_millis(10);
        }
        if let Some(taken) = took_over {
            // The worker is stuck in a request: take what it holds and leave it behind; it
            // touches nothing once it sees `abandoned`. This thread's log lines go out on
            // another thread, so that a slow logger cannot stretch the call.
            let lines = crate::logging::hold();
            let cache = shared.new_cache();
            shared.drain_and_persist(cache.as_ref(), Instant::now() + budget::TAKEOVER_WRITE);
            taken.release_claim();
            shared.delivery.emit();
            lines.emit_elsewhere();
            drop(self.thread.lock().take()); // detach
            return Err(Error::new(
                Status::Timeout,
                format!(
                    "shutdown reached its deadline of {} ms with a request still in flight: pending events were persisted",
                    timeout.as_millis()
                ),
            ));
        }
        shared.delivery.emit();
        let hit_deadline = shared.progress.lock().hit_deadline;
        self.join_by(deadline + budget::EXIT_GRACE);
        if hit_deadline {
            Err(Error::new(
                Status::Timeout,
                "shutdown reached its deadline: undelivered events were persisted to the cache",
            ))
        } else {
            Ok(())
        }
    }

    /// Joins the worker if it ends by `by` (it may still be writing its last log lines to a
    /// slow logger); else leaves it to end by itself.
    fn join_by(&self, by: Instant) {
        let shared = &self.shared;
        let mut p = shared.progress.lock();
        while !p.done {
            if shared.progress_changed.wait_until(&mut p, by).timed_out() {
                break;
            }
        }
        let done = p.done;
        drop(p);
        let thread = self.thread.lock().take();
        if let Some(t) = thread {
            if done {
                let _ = t.join();
            }
        }
    }
}
