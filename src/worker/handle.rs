//! The one owner of the protocol between a client and its worker: start it, wait for a flush,
//! shut it down. Nothing outside this file drives the worker through its shared fields.

use super::budget;
use super::shared::Shared;
use super::{on_worker_of, Worker};
use crate::model::status::{Error, Result, Status};
use crate::sys::log::{tel_log, Level};
use crate::sys::sync::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
        let (target, gate_target) = {
            let mut q = shared.queue.state.lock();
            q.flush_upto = q.flush_upto.max(q.next_ordinal);
            q.flush_gen += 1;
            (q.next_ordinal, q.gate_gen)
        };
        shared.queue.wake.notify_one();
        let mut p = shared.progress.lock();
        loop {
            // Progress published before the worker acted on an earlier pause, resume or
            // consent change says nothing about this flush.
            let current = p.gate_seen >= gate_target;
            if (current && p.watermark >= target && p.replay_done) || p.exited {
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
    /// hangs or a logger or delivery callback is slow or never returns; `pending` is 0 when it
    /// returns (unless it is called from the worker's own thread, where the worker finishes
    /// once the callback returns).
    ///
    /// Exactly one side resolves what is left: the worker, which marks itself `finishing`
    /// before it drains (the shutdown then waits for it: that is disk work only), or, when the
    /// worker is stuck past the deadline (in a request, or in a callback), this call, which
    /// marks it `abandoned` first. The status tells about the events: [`Status::Timeout`] when
    /// some were still pending at the deadline (and were persisted), else `Ok`, also when a
    /// callback is what ran late.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        let return_by = deadline + budget::RETURN;
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
            // The worker is stuck in a request or a callback: take what it holds and leave it
            // behind; it touches nothing once it sees `abandoned`. This thread's log lines and
            // reports go out before it returns when they can within the margin (see
            // `log::Hold::emit_by`, `deliver_by`).
            let lines = crate::sys::log::hold();
            let cache = shared.new_cache();
            let resolved =
                shared.drain_and_persist(cache.as_ref(), Instant::now() + budget::TAKEOVER_WRITE);
            taken.release_claim();
            deliver_by(shared, return_by);
            lines.emit_by(return_by);
            drop(self.thread.lock().take()); // detach
            return if resolved > 0 {
                Err(Error::new(
                    Status::Timeout,
                    format!(
                        "shutdown reached its deadline of {} ms with the worker still busy (in a request or a callback): pending events were persisted",
                        timeout.as_millis()
                    ),
                ))
            } else {
                Ok(())
            };
        }
        let hit_deadline = shared.progress.lock().hit_deadline;
        // The worker hands over its last reports and log lines after it announced its end.
        self.join_by(return_by);
        if shared.delivery.has_queued() {
            deliver_by(shared, return_by);
        }
        if hit_deadline {
            Err(Error::new(
                Status::Timeout,
                "shutdown reached its deadline: undelivered events were persisted to the cache",
            ))
        } else {
            Ok(())
        }
    }

    /// Joins the worker if it ends by `by` (it may still be handing its last reports and log
    /// lines to a slow callback); else leaves it to end by itself.
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

/// Hands the reports waiting in `shared`'s delivery to the callback on a thread of their own
/// and waits for it until `by`: a callback that is slow or never returns cannot hold the caller
/// past its deadline. Reports not handed over by then are dropped when the client closes.
fn deliver_by(shared: &Arc<Shared>, by: Instant) {
    if !shared.delivery.has_queued() {
        return;
    }
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let for_thread = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("tel-delivery".into())
        .spawn(move || {
            // Holds the shared state: what a closed client left for its last callback may be
            // dropped here.
            for_thread.delivery.emit();
            let _ = done.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = finished.recv_timeout(by.saturating_duration_since(Instant::now()));
        }
        Err(e) => tel_log!(
            Level::Debug,
            "delivery reports not handed over: no thread for them ({e})"
        ),
    }
}
