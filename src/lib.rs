//! `onecollector-tel`: sends Common Schema 4.0 events to Microsoft's OneCollector service.
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
