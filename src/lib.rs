//! `onecollector-tel`: sends Common Schema 4.0 events to Microsoft's OneCollector service.
//!
//! A [`Client`] validates, stamps and enqueues each event on the caller's thread, and its own
//! worker thread batches, compresses and sends them, retries with backoff, honours the
//! collector's kill directives, and keeps what it could not deliver in a cache file that the
//! next process of the tenant replays. Its counters ([`Client::stats`]) say where every event
//! went. The same library is exposed to C through [`ffi`] (`include/tel.h`).
//!
//! ```
//! use std::time::Duration;
//! use tel::{Client, Config};
//!
//! # fn main() -> Result<(), tel::Error> {
//! # let collector = tel_emulator::Collector::start().unwrap();
//! // The full instrumentation key: `<tenant_token>-<rest>`.
//! let mut config = Config::new("YOUR_TENANT_TOKEN-YOUR-KEY")?;
//! // Without this line, events go to the OneCollector service. `telctl serve` runs a local
//! // collector and prints its address, e.g. "http://127.0.0.1:8080/OneCollector/1.0/".
//! config.endpoint = tel::config::Endpoint::parse(&collector.endpoint())?;
//! # config.cache_path = tel::CachePath::Disabled; // not the user's cache folder
//! let client = Client::start(config)?;
//! client.log("MyTool.Started", Some(r#"{"mode":"build","ok":true}"#))?;
//! // Delivers what is pending within 2 s, writes the rest to the cache file, stops the worker.
//! client.shutdown(Duration::from_secs(2))?;
//! let stats = client.stats();
//! assert_eq!((stats.logged, stats.sent), (1, 1));
//! assert!(stats.conserved());
//! # assert_eq!(collector.accepted()[0]["name"], "MyTool.Started");
//! # Ok(())
//! # }
//! ```
//!
//! The configuration keys and their defaults, the counters, the statuses of [`Error`], and the
//! rules that decide how a request reaches the collector (proxies, `NO_PROXY`, the Windows
//! settings, trust) are those of the ABI contract, `docs/abi.md` in the repository
//! (<https://github.com/onecollector-tel/onecollector-tel/blob/main/docs/abi.md>, its
//! "Networks" section for the route). `TEL_LOG=debug` prints every decision of the library on
//! stderr.
//!
//! ## Inside
//!
//! The crate is in layers, one folder each, and a file names only its own folder and the layers
//! below it: `ffi` (the C ABI) -> `api` (the Rust API: a client, the process-wide default
//! session, the purge) -> `worker` (the worker thread: queue, batches, replay, the executor of
//! the policy's decisions, critical events, delivery reports, counters) -> `policy` (what an
//! answer means, decided purely; backoff; the kill switch), `transport` (the HTTPS request, its
//! route), `cache` (the cache file, its claims) and `privacy`, side by side -> `model` (the
//! vocabulary: configuration, options, envelope, `ext`, keys, endpoint, status) -> `sys`
//! (platform, locks, fork, clock, randomness, diagnostics, private files). The threads, every
//! lock and the order they are taken in, what a forked child renews, and where each policy is
//! written down: `docs/architecture.md`
//! (<https://github.com/onecollector-tel/onecollector-tel/blob/main/docs/architecture.md>);
//! `tests/architecture.rs` checks the import rule on the source.
//!
//! The public surface is the Rust API (the modules [`client`], [`config`], [`stats`] and
//! [`status`]; at the root [`Client`], [`Config`], [`EventOptions`], [`Snapshot`], [`Status`],
//! [`Report`]) and the C ABI ([`ffi`]). Every other module is private to the crate, save
//! `internals`: it re-exports the few internal items the project's own tools (`telctl`),
//! benches, examples, tests and fuzz targets use, is hidden from the docs, is not part of the API and
//! may change in any release.

pub(crate) mod api;
pub(crate) mod cache;
pub mod ffi;
#[doc(hidden)]
pub mod internals;
pub(crate) mod model;
pub(crate) mod policy;
pub(crate) mod privacy;
pub(crate) mod sys;
pub(crate) mod transport;
pub(crate) mod worker;

/// A telemetry client: the Rust API the C ABI is a thin layer over.
pub mod client {
    pub use crate::api::client::*;
}

/// The configuration of a client: `tel_init`'s JSON object, its defaults and its validation.
pub mod config {
    pub use crate::model::config::*;
}

/// The counters of `tel_stats_json` and [`Client::stats`](crate::Client::stats): where every event went.
pub mod stats {
    pub use crate::worker::stats::*;
}

/// The status codes of the C ABI and the error type that carries them.
pub mod status {
    pub use crate::model::status::*;
}

pub use api::client::Client;
pub use model::config::{CachePath, Compression, Config};
pub use model::ext::SDK_VERSION;
pub use model::options::{EventOptions, Priority};
pub use model::status::{Error, Status};
pub use worker::delivery::{Callback as DeliveryCallback, Report};
pub use worker::stats::Outcome;
pub use worker::stats::Snapshot;
