//! A telemetry client (abi.md: the default session is one client among others): the Rust API
//! the C ABI is a thin layer over.

use crate::api::properties::CommonProperties;
use crate::cache;
use crate::cache::files::CacheFiles;
use crate::model::config::Config;
use crate::model::envelope::{check_name, check_properties, EnvelopeTemplate};
use crate::model::ext::SessionExt;
use crate::model::options::EventOptions;
use crate::model::priority::Priority;
use crate::model::status::{Error, Result, Status};
use crate::policy::kill::KillSwitch;
use crate::privacy::sample::SampleRates;
use crate::privacy::scrub::{Detectors, Scrubber};
use crate::sys::log::{self, tel_log, Level};
use crate::sys::sync::Mutex;
use crate::worker::batch::Held;
use crate::worker::critical::Durability;
use crate::worker::delivery::{Callback, Delivery, KeepAlive, Report};
use crate::worker::gate::{self, Admit};
use crate::worker::handle::WorkerHandle;
use crate::worker::queue::{Bounds, Pushed, Queue};
use crate::worker::shared::{Progress, Shared};
use crate::worker::stats::{Outcome, Snapshot, Stats};
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Whether the environment opts the user out: `TEL_DISABLE` set to anything but `0`/empty, or
/// `DO_NOT_TRACK=1`.
pub fn opted_out_by_environment() -> bool {
    let disable = std::env::var("TEL_DISABLE").unwrap_or_default();
    let dnt = std::env::var("DO_NOT_TRACK").unwrap_or_default();
    (!disable.is_empty() && disable != "0") || dnt.trim() == "1"
}

/// Where this configuration keeps its cache file, kill state and device id (None: nowhere).
pub fn cache_files(config: &Config) -> Option<CacheFiles> {
    CacheFiles::of(config)
}

/// The ABI 1.2 keys the privacy layer reads (`scrub`, `sample`), checked: every bad value is
/// `TEL_ERR_INVALID_CONFIG` naming the key. `tel_init`, `tel_client_new` and `tel_purge` check
/// them alike.
pub fn check_privacy(config: &Config) -> Result<(Detectors, Option<SampleRates>)> {
    let detectors = match &config.scrub {
        None => Detectors::default(),
        Some(v) => Detectors::from_json(v)?,
    };
    let sample = config
        .sample
        .as_ref()
        .map(SampleRates::from_json)
        .transpose()?;
    Ok((detectors, sample))
}

/// One telemetry client: a worker thread, its queue, its counters and its cache file.
///
/// Any number of clients may live side by side, each with its own key, endpoint and cache file
/// (the C ABI's default session is one of them). [`Client::log`] never blocks on I/O;
/// [`Client::flush`] waits for delivery; [`Client::shutdown`] (or dropping the client, with a
/// 1 s deadline) delivers what it can and persists the rest.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
/// use tel::{Client, Config, EventOptions, Outcome, Report};
///
/// # fn main() -> Result<(), tel::Error> {
/// # let collector = tel_emulator::Collector::start().unwrap();
/// # let dir = std::env::temp_dir().join(format!("tel-doc-client-{}", std::process::id()));
/// let mut config = Config::new("YOUR_TENANT_TOKEN-YOUR-KEY")?;
/// // A local collector, as `telctl serve` prints it.
/// config.endpoint = tel::config::Endpoint::parse(&collector.endpoint())?;
/// // Where undelivered events wait for the next process (default: the user's cache folder).
/// config.cache_path = tel::CachePath::File(dir.join("my-tool.cache"));
/// let client = Client::start(config)?;
///
/// // Where each event went, reported on the library's threads.
/// let reports: Arc<Mutex<Vec<Report>>> = Arc::default();
/// let sink = reports.clone();
/// client.set_delivery_callback(Some(Arc::new(move |r: &Report| sink.lock().unwrap().push(r.clone()))));
///
/// client.log("MyTool.Started", Some(r#"{"mode":"build"}"#))?;
/// let high = EventOptions::from_json(r#"{"priority":"high"}"#)?;
/// client.log_ex("MyTool.Finished", Some(r#"{"duration_ms":1234}"#), &high)?;
/// // A refused event is an error naming the problem, and nothing is queued.
/// let refused = client.log("x", None).unwrap_err();
/// assert_eq!(refused.status, tel::Status::InvalidEvent);
///
/// client.flush(Duration::from_secs(5))?; // both events resolved
/// assert_eq!(client.stats().sent, 2);
/// client.close(Duration::from_secs(2))?; // shutdown, then no callback runs any more
/// let reports = reports.lock().unwrap();
/// assert!(reports.iter().all(|r| r.outcome == Outcome::Sent));
/// assert_eq!(reports.iter().map(|r| r.events).sum::<u64>(), 2);
/// # let _ = std::fs::remove_dir_all(&dir);
/// # Ok(())
/// # }
/// ```
pub struct Client {
    pub(super) config: Arc<Config>,
    stats: Arc<Stats>,
    /// None when opted out: every call is a no-op.
    pub(super) live: Option<Live>,
    pub(super) shut_down: AtomicBool,
}

pub(super) struct Live {
    pub(super) worker: WorkerHandle,
    template: EnvelopeTemplate,
    ext: SessionExt,
    seq: AtomicU64,
    /// ABI 1.2: the detectors of `scrub` (off when `[]`).
    scrubber: Scrubber,
    /// ABI 1.2: `sample`, None when not configured.
    sample: Option<SampleRates>,
    /// `ext.device.localId` as sent: what sampling decides on.
    device_id: String,
    /// The id to write in the cache folder at a grant (None: the host gave its own, or it is
    /// written already).
    pub(super) device_file_id: Mutex<Option<String>>,
    /// ABI 1.2: the common properties; `has_properties` spares `tel_log` the lock when none.
    pub(super) properties: crate::sys::sync::RwLock<CommonProperties>,
    pub(super) has_properties: AtomicBool,
}

impl Client {
    /// Starts a client. No network I/O happens here; the worker starts replaying the cache at
    /// once. With opt-out, the client does nothing and the cache file is deleted.
    pub fn start(config: Config) -> Result<Client> {
        log::refresh_env();
        let (detectors, sample) = check_privacy(&config)?;
        let config = Arc::new(config);
        log::add_secret(Arc::downgrade(&config) as std::sync::Weak<dyn log::Redact>);
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
        let epoch = crate::sys::random::uuid4();
        let consent = gate::consent_at_start(&config, files.as_ref());
        stats.consent.store(consent, Ordering::Relaxed);
        let dir = files.as_ref().map(|f| f.dir.as_path());
        let (local_id, device_id, device_file_id) = match config.ext.get("device", "localId") {
            // The host's value overrides the default below.
            Some(given) => (String::new(), given.to_owned(), None),
            // Without consent the id stays in memory (one another process wrote is adopted)
            // until a grant writes it.
            None if consent != gate::GRANTED => {
                let id = dir
                    .and_then(crate::cache::device::existing)
                    .unwrap_or_else(|| format!("r:{}", crate::sys::random::uuid4()));
                (id.clone(), id.clone(), Some(id))
            }
            None => {
                let id = crate::cache::device::local_id(dir);
                (id.clone(), id, None)
            }
        };
        let audit = config
            .audit_path
            .clone()
            .or_else(|| {
                std::env::var_os("TEL_AUDIT")
                    .filter(|v| !v.is_empty())
                    .map(Into::into)
            })
            .map(|p| crate::privacy::audit::AuditFile::open(p, config.audit_max_bytes));
        let properties = CommonProperties::new(&config.properties);
        let has_properties = AtomicBool::new(!properties.items.is_empty());
        let defaults = crate::model::ext::default_context(local_id, epoch.clone());
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
            delivery: Delivery::default(),
            critical: Default::default(),
            taken_over: Default::default(),
            claim_file: Mutex::default(),
            audit,
        });
        let worker = WorkerHandle::spawn(shared)?;
        Ok(Client {
            config,
            stats,
            live: Some(Live {
                worker,
                template,
                ext,
                seq: AtomicU64::new(0),
                scrubber: Scrubber::new(detectors),
                sample,
                device_id,
                device_file_id: Mutex::new(device_file_id),
                properties: crate::sys::sync::RwLock::new(properties),
                has_properties,
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
        self.log_ex(name, properties, &EventOptions::default())
    }

    /// [`Client::log`] with per-event options (abi.md, "Per-event options"): the event's own
    /// time, its priority (a full queue makes room by evicting a lower one; a `critical` event
    /// is in the cache file before this returns and is sent at once) and its own `ext` fields.
    pub fn log_ex(
        &self,
        name: &str,
        properties: Option<&str>,
        options: &EventOptions,
    ) -> Result<()> {
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
        let now_ms = crate::sys::clock::now_ms();
        let stats = &self.stats;
        let shared = live.worker.shared();
        if shared.kill.until_ms() > now_ms {
            self.dropped_at_log(
                shared,
                name,
                &stats.dropped_killed,
                Outcome::DroppedKilled,
                crate::policy::kill::KILLED,
            );
            return Ok(());
        }
        // Consent and sampling, decided in one place (abi.md 1.2).
        match shared.admit(
            live.sample.as_ref(),
            &live.device_id,
            name,
            options.priority,
        ) {
            Admit::Queue => {}
            Admit::DropConsent => {
                self.dropped_at_log(
                    shared,
                    name,
                    &stats.dropped_consent,
                    Outcome::DroppedConsent,
                    gate::DENIED_REASON,
                );
                return Ok(());
            }
            Admit::DropSampled => {
                // Counted, never queued, reported to no callback (abi.md 1.2, "Sampling").
                Stats::add(&stats.logged, 1);
                Stats::add(&stats.dropped_sampled, 1);
                return Ok(());
            }
        }
        let merged = if live.has_properties.load(Ordering::Relaxed) {
            Some(live.properties.read().merge(properties)?)
        } else {
            None
        };
        let properties = merged.as_deref().or(properties);
        let (properties, mut replaced) = match properties {
            Some(p) => {
                let (text, n) = live.scrubber.scrub_json(p);
                (Some(text), n)
            }
            None => (None, 0),
        };
        let properties = properties.as_deref();
        let mut ext_fields = Cow::Borrowed(&options.ext[..]);
        if !live.scrubber.is_off() {
            for i in 0..ext_fields.len() {
                let f = &ext_fields[i];
                if f.ext == "ex" && (f.field == "msg" || f.field == "stack") {
                    if let (Cow::Owned(text), n) = live.scrubber.scrub_json(&f.json) {
                        ext_fields.to_mut()[i].json = text;
                        replaced += n;
                    }
                }
            }
        }
        if replaced > 0 {
            Stats::add(&stats.scrubbed, replaced);
        }
        let time_ms = options.time_ms.unwrap_or(now_ms);
        let ext_prefix = (!ext_fields.is_empty()).then(|| live.ext.json_prefix_with(&ext_fields));
        // The size is known before the sequence number is taken: a refused event leaves no
        // gap in `ext.sdk.seq` (the backend would read one as a lost event).
        let next_seq = live.seq.load(Ordering::Relaxed) + 1;
        let size = live
            .template
            .rendered_len(name, properties, next_seq, ext_prefix.as_deref());
        if size > cfg.event_max_bytes {
            return Err(too_large(size, cfg.event_max_bytes));
        }
        let seq = live.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let line = match &ext_prefix {
            None => live.template.render(name, properties, time_ms, seq),
            Some(prefix) => live
                .template
                .render_with_ext(name, properties, time_ms, seq, prefix),
        };
        let bounds = Bounds {
            batch_max_events: cfg.batch_max_events,
            batch_max_bytes: cfg.batch_max_bytes,
            queue_max_events: cfg.queue_max_events,
        };
        match &shared.cache_files {
            // A critical event with a cache is written to its file first (abi.md, "Priority").
            // Nothing is written before consent is granted (abi.md 1.2): it waits in memory.
            Some(files)
                if options.priority == Priority::Critical && shared.consent() == gate::GRANTED =>
            {
                log_critical(shared, files, line, bounds)
            }
            _ => queued(
                shared,
                shared
                    .queue
                    .push(line, options.priority, bounds, stats, None),
            ),
        }
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
        if live.worker.shared().consent() == gate::UNKNOWN {
            // Nothing can be sent until the host records an answer: the events stay pending.
            return Ok(());
        }
        live.worker.flush(timeout)
    }

    /// Stops accepting events, delivers what it can within `timeout`, persists the rest and
    /// stops the worker. Returns within `timeout` plus a small margin even if a request hangs;
    /// `pending` is 0 once it returns.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return Err(Error::not_initialized());
        }
        let Some(live) = &self.live else {
            return Ok(());
        };
        live.worker.shutdown(timeout)
    }

    /// Installs (or with `None`, removes) the delivery callback (abi.md, "Delivery reports").
    pub fn set_delivery_callback(&self, callback: Option<Callback>) {
        if let Some(live) = &self.live {
            live.worker.shared().delivery.set(callback);
        }
    }

    /// True while this thread runs this client's own delivery callback.
    pub fn in_own_callback(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.worker.shared().delivery.in_own_callback())
    }

    /// True on this client's own worker thread (a callback running there).
    pub fn on_own_worker(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| crate::worker::on_worker_of(l.worker.shared()))
    }

    /// Shutdown, then no callback of this client is ever called again. Returns within
    /// `timeout` plus the margin whatever the callbacks do: a delivery callback still running
    /// then is not waited for any longer (it runs to its end, and is not called again).
    pub fn close(&self, timeout: Duration) -> Result<()> {
        let by = Instant::now() + timeout + crate::worker::budget::RETURN;
        let result = match self.shutdown(timeout) {
            Err(e) if e.status == Status::NotInitialized => Ok(()),
            r => r,
        };
        if let Some(live) = &self.live {
            live.worker.shared().delivery.close(by);
        }
        result
    }

    /// After [`Client::close`]: keeps `keep` (what a delivery callback still running may reach
    /// this client through) until that callback returns; gives it back when none runs.
    pub fn keep_while_callbacks_run(&self, keep: KeepAlive) -> Option<KeepAlive> {
        match &self.live {
            Some(live) => live.worker.shared().delivery.keep_while_running(keep),
            None => Some(keep),
        }
    }

    /// Counts an event dropped at `tel_log*` (kill window, consent denied) in `logged` and
    /// `counter`, and reports it.
    fn dropped_at_log(
        &self,
        shared: &Shared,
        name: &str,
        counter: &AtomicU64,
        outcome: Outcome,
        reason: &str,
    ) {
        Stats::add(&self.stats.logged, 1);
        Stats::add(counter, 1);
        shared
            .delivery
            .record(|| Report::new(outcome, [name], 0, reason.to_owned()));
        if shared.delivery.installed() {
            // Reports go out from the worker, which may be asleep (a kill window, the gate).
            shared.queue.wake_worker();
        }
    }

    pub fn stats(&self) -> Snapshot {
        let mut s = self.stats.snapshot();
        if let Some(live) = &self.live {
            s.killed_until_ms = live.worker.shared().kill.until_ms();
        }
        s
    }
}

/// What a push came to, as the call's result (the push-out it made is reported).
fn queued(shared: &Shared, pushed: Pushed) -> Result<()> {
    let cfg = &shared.config;
    match pushed {
        Pushed::Queued { evicted: None } => Ok(()),
        Pushed::Queued { evicted: Some(e) } => {
            shared.delivery.record(|| {
                Report::new(
                    Outcome::DroppedEvicted,
                    [e.name()],
                    0,
                    format!(
                        "dropped: the in-memory queue was full (queue_max_events {}) and an event of higher priority took its place",
                        cfg.queue_max_events
                    ),
                )
            });
            Ok(())
        }
        Pushed::Full => Err(Error::new(
            Status::QueueFull,
            format!(
                "the in-memory queue holds queue_max_events ({}) events of this priority or higher: this event was dropped",
                cfg.queue_max_events
            ),
        )),
        // Shutdown began while this call was on its way.
        Pushed::Closed => Err(Error::not_initialized()),
    }
}

/// A critical event with a cache: written to the session's critical-events file, then pushed
/// (see [`crate::worker::critical::CriticalLog::log`]). Out of line: `tel_log`'s path stays as short.
#[inline(never)]
fn log_critical(shared: &Shared, files: &CacheFiles, line: String, bounds: Bounds) -> Result<()> {
    let stats = &shared.stats;
    let (pushed, durability) = shared.critical.log(files, line, |line, durable| {
        shared
            .queue
            .push(line, Priority::Critical, bounds, stats, durable)
    });
    queued(shared, pushed)?;
    not_durable(stats, durability)
}

/// A queued critical event's durability: the status when its append failed (counted in
/// `not_durable`; the first failure of a run, and the recovery after it, are logged).
fn not_durable(stats: &Stats, durability: Durability) -> Result<()> {
    match durability {
        Durability::Written => Ok(()),
        Durability::WrittenAgain => {
            tel_log!(
                Level::Info,
                "critical events are written to the cache file again"
            );
            Ok(())
        }
        Durability::NotWritten { error, first } => {
            Stats::add(&stats.not_durable, 1);
            if first {
                tel_log!(
                    Level::Warn,
                    "critical event not written to the cache file ({error}): it is sent, but would be lost if the process ended first; this and later failures are counted in not_durable"
                );
            }
            Err(Error::new(
                Status::NotDurable,
                format!(
                    "critical event queued and will be sent, but not written to the cache file ({error}): it would not survive the end of the process"
                ),
            ))
        }
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
