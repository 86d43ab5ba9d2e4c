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
//! The pipeline, one module each: [`ffi`] (the C ABI) -> `global` (the process-wide default
//! session) -> [`client`] (the Rust API; `options` parses per-event options) -> `queue` ->
//! `worker` (with its handle, the one owner of flush and shutdown) -> `envelope` -> `codec` ->
//! `transport` -> `response` (the policy) -> `kill` / `backoff` / `cache` (with `critical`,
//! the durable critical events, and `purge`). `batch` holds the batches in hand; `delivery`
//! hands reports to the host; `sync` and `fork` keep the locks safe across `fork`.
//!
//! The public surface is the Rust API (the modules [`client`], [`config`], [`stats`] and
//! [`status`]; at the root [`Client`], [`Config`], [`EventOptions`], [`Snapshot`], [`Status`],
//! [`Report`]) and the C ABI ([`ffi`]). Every other module is private to the crate, save
//! `internals`: it re-exports the few internal items the project's own tools (`telctl`),
//! benches, examples, tests and fuzz targets use, is hidden from the docs, is not part of the API and
//! may change in any release.

pub(crate) mod backoff;
pub(crate) mod batch;
pub(crate) mod cache;
pub mod client;
pub(crate) mod clock;
pub(crate) mod codec;
pub mod config;
pub(crate) mod critical;
pub(crate) mod delivery;
pub(crate) mod device;
pub(crate) mod endpoint;
pub(crate) mod envelope;
pub(crate) mod ext;
pub mod ffi;
pub(crate) mod fork;
pub(crate) mod global;
pub(crate) mod ikey;
#[doc(hidden)]
pub mod internals;
pub(crate) mod kill;
pub(crate) mod logging;
pub(crate) mod options;
pub(crate) mod platform;
pub(crate) mod priority;
pub(crate) mod privacy;
pub(crate) mod private_file;
pub(crate) mod purge;
pub(crate) mod queue;
pub(crate) mod random;
pub(crate) mod response;
pub mod stats;
pub mod status;
pub(crate) mod sync;
pub(crate) mod transport;
pub(crate) mod worker;

pub use client::Client;
pub use config::{CachePath, Compression, Config};
pub use delivery::{Callback as DeliveryCallback, Report};
pub use options::{EventOptions, Priority};
pub use stats::Outcome;
pub use stats::Snapshot;
pub use status::{Error, Status};

/// The library's name and version as the collector sees it (`sdk-version`, `ext.sdk.ver`).
pub const SDK_VERSION: &str = concat!("onecollector-tel-", env!("CARGO_PKG_VERSION"));
