//! The batches in hand: events taken from the queue (or the cache) and not yet resolved, with
//! their request body encoded once.

use crate::model::config::Compression;
use crate::transport::codec::{encode, ndjson};
use crate::worker::queue::Event;
use std::collections::VecDeque;
use std::sync::Arc;

/// Events taken from the queue (or the cache) and not yet resolved.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Event>,
    pub attempts: u32,
    /// Entries claimed from the cache file.
    pub replayed: bool,
    /// The request body, encoded once and reused by retries.
    pub body: Option<Encoded>,
    /// The request carrying it now (see [`crate::worker::inflight`]), `None` when not on the wire.
    pub request: Option<u64>,
}

impl Batch {
    pub fn new(events: Vec<Event>, replayed: bool) -> Self {
        Batch {
            events,
            attempts: 0,
            replayed,
            body: None,
            request: None,
        }
    }

    pub fn encode(&mut self, compression: Compression) -> Encoded {
        if let Some(body) = &self.body {
            return body.clone();
        }
        let raw = ndjson(self.events.iter().map(|e| e.line.as_str()));
        let (payload, encoding) = encode(&raw, compression);
        let body = Encoded {
            payload: Arc::new(payload),
            encoding,
        };
        self.body = Some(body.clone());
        body
    }
}

/// The `request` of a batch in hand being written to the cache (a spill): not sendable, and
/// taken by a shutdown that takes over meanwhile like any batch in hand.
pub const SPILLING: u64 = u64::MAX;

/// A compressed request body and its `Content-Encoding`.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub payload: Arc<Vec<u8>>,
    pub encoding: Option<&'static str>,
}

/// The batches the worker is sending or backing off on. Shared so that a shutdown whose
/// deadline passes while a request hangs can persist them itself.
#[derive(Debug, Default)]
pub struct Held {
    pub batches: VecDeque<Batch>,
    /// Set by a shutdown that gave up waiting: the worker must not touch anything any more.
    pub abandoned: bool,
    /// Set by the worker when it starts its end (drain and persist): a shutdown then waits for
    /// it rather than taking over, so the two never split the events between them.
    pub finishing: bool,
    /// Set by the worker while it writes the cache (a claim, or a batch put back): disk work
    /// under the cache lock, which a shutdown waits for rather than taking over (it would wait
    /// for that same lock). A write begins only if no shutdown took over.
    pub committing: bool,
}
