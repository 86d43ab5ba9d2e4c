//! Requests in flight: up to `max_inflight_requests` batches on the wire at once, each posted by
//! a request thread of its own that does the HTTP exchange and nothing else. The answers come
//! back here and the worker applies them one at a time (`Worker::take_answers`), so every
//! decision, counter and report stays on the worker thread whatever order they arrive in.
//!
//! The batch a request carries stays in `held` with its `request` set: a shutdown or a kill that
//! takes the batches in hand takes it too, and its answer, arriving later, finds nothing to apply.

use crate::policy::decide::Answer;
use crate::sys::sync::Mutex;
use crate::transport::reply::NetworkError;
use crate::transport::Transport;
use crate::worker::batch::Encoded;
use crate::worker::shared::Shared;
use crate::worker::stats::Stats;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Answers that came back, by request, not yet applied by the worker.
type Answers = Mutex<Vec<(u64, Answer)>>;

pub struct Inflight {
    transport: Arc<Transport>,
    answers: Arc<Answers>,
    threads: Vec<(u64, JoinHandle<()>)>,
    next_request: u64,
    /// The last answer applied was a success: more than one request may go. The first request
    /// of the worker, and the first after a failure, goes alone.
    proven: bool,
}

impl Inflight {
    pub fn new(transport: Transport) -> Self {
        Inflight {
            transport: Arc::new(transport),
            answers: Arc::default(),
            threads: Vec::new(),
            next_request: 1,
            proven: false,
        }
    }

    /// Requests posted and not yet applied.
    pub fn count(&self) -> usize {
        self.threads.len()
    }

    /// How many more requests may go now.
    pub fn room(&self, shared: &Shared) -> usize {
        let limit = if self.proven {
            shared.config.max_inflight_requests
        } else {
            1
        };
        limit.saturating_sub(self.count())
    }

    /// An answer waits to be applied. Checked under the queue lock before the worker waits: a
    /// request thread stores its answer before it takes that lock to wake the worker.
    pub fn answered(&self) -> bool {
        !self.answers.lock().is_empty()
    }

    /// Posts `body` on a request thread; returns the request's number, for the batch.
    pub fn post(
        &mut self,
        shared: &Arc<Shared>,
        body: Encoded,
        time_delta_ms: Option<i64>,
        deadline: Option<Instant>,
    ) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        Stats::add(&shared.stats.http_requests, 1);
        let transport = self.transport.clone();
        let answers = self.answers.clone();
        let waker = shared.clone();
        let post = move || {
            let answer = transport.post(&body.payload, body.encoding, time_delta_ms, deadline);
            answers.lock().push((id, answer));
            waker.queue.wake_worker();
        };
        let spawned = std::thread::Builder::new()
            .name("tel-request".into())
            .spawn(post);
        match spawned {
            Ok(thread) => self.threads.push((id, thread)),
            Err(e) => {
                // Answered at once as a network failure: the policy backs off and retries.
                let why = format!("cannot start a request thread: {e}");
                self.answers.lock().push((id, Err(NetworkError(why))));
                self.threads.push((id, std::thread::spawn(|| {})));
            }
        }
        id
    }

    /// The answers that came back, in arrival order; their threads are joined (they have ended
    /// or are about to: the answer is their last act).
    pub fn take(&mut self) -> Vec<(u64, Answer)> {
        let answers = std::mem::take(&mut *self.answers.lock());
        for (id, _) in &answers {
            if let Some(i) = self.threads.iter().position(|(t, _)| t == id) {
                let (_, thread) = self.threads.swap_remove(i);
                let _ = thread.join();
            }
        }
        answers
    }

    /// Records whether the answer just applied was a success.
    pub fn applied(&mut self, success: bool) {
        self.proven = success;
    }

    /// At the end: the requests that have answered are joined; one still hanging is left to end
    /// on its own (at `http_timeout_ms` at the latest), holding nothing but the transport and
    /// its answer, which no one applies any more.
    pub fn end(&mut self) {
        let _ = self.take();
        for (_, thread) in self.threads.drain(..) {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}
