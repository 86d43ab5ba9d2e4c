//! A telemetry session: the Rust API the C ABI is a thin layer over.

use crate::cache::{self, CacheFiles};
use crate::config::{CachePath, Config};
use crate::envelope::{check_name, check_properties, EnvelopeTemplate};
use crate::ext::SessionExt;
use crate::kill::KillSwitch;
use crate::logging::{self, tel_log, Level};
use crate::queue::Queue;
use crate::stats::{Outcome, Snapshot, Stats};
use crate::status::{Error, Result, Status};
use crate::sync::Mutex;
use crate::worker::{self, Held, Progress, Shared, Worker};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long past its deadline `shutdown` waits for the worker to exit by itself.
pub const EXIT_GRACE: Duration = Duration::from_millis(40);
/// Extra time `shutdown` may take past that to persist what a hung request holds (abi.md allows
/// 200 ms in all).
pub const SHUTDOWN_MARGIN: Duration = Duration::from_millis(120);

/// Whether the environment opts the user out: `TEL_DISABLE` set to anything but `0`/empty, or
/// `DO_NOT_TRACK=1`.
pub fn opted_out_by_environment() -> bool {
    let disable = std::env::var("TEL_DISABLE").unwrap_or_default();
    let dnt = std::env::var("DO_NOT_TRACK").unwrap_or_default();
    (!disable.is_empty() && disable != "0") || dnt.trim() == "1"
}

/// Where this configuration keeps its cache file, kill state and device id (None: nowhere).
pub fn cache_files(config: &Config) -> Option<CacheFiles> {
    match &config.cache_path {
        CachePath::Disabled => None,
        CachePath::File(p) => Some(CacheFiles::new(p.clone())),
        CachePath::Default => crate::platform::default_cache_dir()
            .map(|d| CacheFiles::new(d.join(format!("{}.cache", config.ikey.tenant())))),
    }
}

/// One telemetry session: a worker thread, its queue and its counters.
pub struct Client {
    config: Arc<Config>,
    stats: Arc<Stats>,
    /// None when opted out: every call is a no-op.
    live: Option<Live>,
    shut_down: AtomicBool,
}

struct Live {
    shared: Arc<Shared>,
    template: EnvelopeTemplate,
    seq: AtomicU64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Client {
    /// Starts a session. No network I/O happens here; the worker starts replaying the cache at
    /// once. With opt-out, the session does nothing and the cache file is deleted.
    pub fn start(config: Config) -> Result<Client> {
        logging::refresh_env();
        let config = Arc::new(config);
        logging::add_secret(Arc::downgrade(&config) as std::sync::Weak<dyn logging::Redact>);
        let stats = Arc::new(Stats::default());
        let files = cache_files(&config);
        if !config.enabled || opted_out_by_environment() {
            if let Some(f) = &files {
                cache::delete(f, config.ikey.tenant());
            }
            tel_log!(
                Level::Info,
                "telemetry is turned off (opt-out): nothing will be sent or written"
            );
            return Ok(Client {
                config,
                stats,
                live: None,
                shut_down: AtomicBool::new(false),
            });
        }
        stats.enabled.store(true, Ordering::Relaxed);
        let tenant = config.ikey.tenant().to_owned();
        let kill = Arc::new(KillSwitch::load(
            &tenant,
            files.as_ref().map(|f| f.kill.clone()),
        ));
        let epoch = crate::random::uuid4();
        let local_id = match config.ext.get("device", "localId") {
            Some(_) => String::new(), // the host's value overrides the default below
            None => crate::device::local_id(files.as_ref().map(|f| f.dir.as_path())),
        };
        let defaults = crate::ext::default_context(local_id, epoch.clone());
        let ext = SessionExt::new(&defaults, &config.ext);
        let template = EnvelopeTemplate::new(&config.ikey.envelope_ikey(), &ext);
        let shared = Arc::new(Shared {
            config: config.clone(),
            stats: stats.clone(),
            kill,
            queue: Queue::default(),
            held: Mutex::new(Held::default()),
            progress: Mutex::new(Progress::default()),
            progress_changed: Default::default(),
            cache_files: files,
            epoch_marker: format!("\"epoch\":\"{epoch}\""),
        });
        let w = Worker::new(shared.clone());
        let handle = std::thread::Builder::new()
            .name("tel-worker".into())
            .spawn(move || w.run())
            .map_err(|e| {
                Error::new(
                    Status::Internal,
                    format!("cannot start the worker thread: {e}"),
                )
            })?;
        Ok(Client {
            config,
            stats,
            live: Some(Live {
                shared,
                template,
                seq: AtomicU64::new(0),
                worker: Mutex::new(Some(handle)),
            }),
            shut_down: AtomicBool::new(false),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn enabled(&self) -> bool {
        self.live.is_some()
    }

    /// Validates, stamps and enqueues one event. Never blocks on I/O.
    ///
    /// `properties` must be a JSON object (None: `{}`). Inside a kill window the event is
    /// dropped, counted, and `Ok` is returned. A full queue answers [`Status::QueueFull`].
    pub fn log(&self, name: &str, properties: Option<&str>) -> Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        let cfg = &self.config;
        check_name(name)?;
        if let Some(p) = properties {
            // Refuse an oversized event before reading it (it could be 100 MB).
            if p.len() > cfg.event_max_bytes {
                return Err(too_large(
                    p.len() + live.template.overhead(),
                    cfg.event_max_bytes,
                ));
            }
            check_properties(p)?;
        }
        let now_ms = crate::clock::now_ms();
        let stats = &self.stats;
        if live.shared.kill.until_ms() > now_ms {
            Stats::add(&stats.logged, 1);
            Stats::add(&stats.dropped_killed, 1);
            return Ok(());
        }
        if stats.pending.fetch_add(1, Ordering::Relaxed) >= cfg.queue_max_events as u64 {
            stats.pending.fetch_sub(1, Ordering::Relaxed);
            Stats::add(&stats.dropped_queue_full, 1);
            return Err(Error::new(
                Status::QueueFull,
                format!(
                    "the in-memory queue holds queue_max_events ({}) events: this event was dropped",
                    cfg.queue_max_events
                ),
            ));
        }
        let seq = live.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let line = live.template.render(name, properties, now_ms, seq);
        if line.len() > cfg.event_max_bytes {
            stats.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(too_large(line.len(), cfg.event_max_bytes));
        }
        if !live
            .shared
            .queue
            .push(line, cfg.batch_max_events, cfg.batch_max_bytes)
        {
            // Shutdown drained the queue while this call was on its way.
            stats.pending.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::not_initialized());
        }
        Stats::add(&stats.logged, 1);
        Ok(())
    }

    /// Waits until every event logged before the call, and every cache entry present at start,
    /// is resolved; else [`Status::Timeout`] after `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        let deadline = Instant::now() + timeout;
        let shared = &live.shared;
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
            if worker::on_worker_thread() {
                return Err(Error::new(
                    Status::Timeout,
                    "tel_flush cannot wait from the library's own thread (a logger callback): the events stay queued",
                ));
            }
            if shared
                .progress_changed
                .wait_until(&mut p, deadline)
                .timed_out()
            {
                let undelivered = self.stats.pending.load(Ordering::Relaxed);
                return Err(Error::new(
                    Status::Timeout,
                    format!(
                        "tel_flush timed out after {} ms: {undelivered} events are still pending and stay queued for retry",
                        timeout.as_millis()
                    ),
                ));
            }
        }
    }

    /// Stops accepting events, delivers what it can within `timeout`, persists the rest and
    /// stops the worker. Returns within `timeout` plus a small margin even if a request hangs.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(Error::not_initialized());
        }
        let Some(live) = &self.live else {
            return Ok(());
        };
        let shared = &live.shared;
        let deadline = Instant::now() + timeout;
        shared.queue.state.lock().shutdown_deadline = Some(deadline);
        shared.queue.wake.notify_all();
        if worker::on_worker_thread() {
            // Called from a logger callback on the worker: it finishes when the callback returns.
            return Ok(());
        }
        // A worker that is not stuck in a request exits at once when the deadline passes; give it
        // a moment of the margin before taking over.
        let mut p = shared.progress.lock();
        while !p.exited {
            if shared
                .progress_changed
                .wait_until(&mut p, deadline + EXIT_GRACE)
                .timed_out()
            {
                break;
            }
        }
        let (exited, hit_deadline) = (p.exited, p.hit_deadline);
        drop(p);
        if exited {
            if let Some(h) = live.worker.lock().take() {
                let _ = h.join();
            }
            return if hit_deadline {
                Err(Error::new(
                    Status::Timeout,
                    "tel_shutdown reached its deadline: undelivered events were persisted to the cache",
                ))
            } else {
                Ok(())
            };
        }
        // The worker is stuck in a request: take over what it holds and leave it behind; it
        // touches nothing once it sees `abandoned`.
        let mut held = shared.held.lock();
        held.abandoned = true;
        let batches: Vec<_> = held.batches.drain(..).collect();
        drop(held);
        let queued = Queue::take_all(&mut shared.queue.state.lock());
        let lines: Vec<&str> = batches
            .iter()
            .flat_map(|b| b.events.iter())
            .chain(queued.iter())
            .map(|e| e.line.as_str())
            .collect();
        if shared.kill.active() {
            self.stats
                .resolve(Outcome::DroppedKilled, lines.len() as u64);
        } else {
            let cache = shared.new_cache();
            shared.persist_or_drop(cache.as_ref(), &lines, Instant::now() + SHUTDOWN_MARGIN);
        }
        drop(live.worker.lock().take()); // detach
        Err(Error::new(
            Status::Timeout,
            format!(
                "tel_shutdown reached its deadline of {} ms with a request still in flight: pending events were persisted",
                timeout.as_millis()
            ),
        ))
    }

    pub fn stats(&self) -> Snapshot {
        let mut s = self.stats.snapshot();
        if let Some(live) = &self.live {
            s.killed_until_ms = live.shared.kill.until_ms();
        }
        s
    }
}

fn too_large(size: usize, max: usize) -> Error {
    Error::event(format!(
        "event is {size} bytes serialized, above event_max_bytes ({max})"
    ))
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.shut_down.load(Ordering::Relaxed) {
            let _ = self.shutdown(Duration::from_secs(1));
        }
    }
}
