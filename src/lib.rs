//! `onecollector-tel`: sends Common Schema 4.0 events to Microsoft's OneCollector service.
//!
//! The pipeline, one module each: [`ffi`] (the C ABI) -> `global` (the process-wide default
//! session) -> [`client`] (the Rust API; `options` parses per-event options) -> `queue` ->
//! `worker` (with its handle, the one owner of flush and shutdown) -> [`envelope`] ->
//! `codec` -> [`transport`] -> [`response`] (the policy) -> [`kill`] / [`backoff`] /
//! [`cache`] (with `critical`, the durable critical events, and `purge`). `batch` holds the
//! batches in hand; `delivery` hands reports to the host; `sync` and `fork` keep the locks
//! safe across `fork`.
//!
//! The public surface is the Rust API ([`Client`], [`Config`], [`EventOptions`], [`Snapshot`],
//! [`Status`], [`Report`]) and the C ABI ([`ffi`]). The other `pub` modules are internals the
//! project's own tools (`telctl`), benches and tests reach into; they are hidden from the docs
//! and may change in any release.

#[doc(hidden)]
pub mod backoff;
pub(crate) mod batch;
#[doc(hidden)]
pub mod cache;
pub mod client;
#[doc(hidden)]
pub mod clock;
pub(crate) mod codec;
pub mod config;
pub(crate) mod critical;
pub(crate) mod delivery;
#[doc(hidden)]
pub mod device;
pub(crate) mod endpoint;
#[doc(hidden)]
pub mod envelope;
#[doc(hidden)]
pub mod ext;
pub mod ffi;
pub(crate) mod fork;
pub(crate) mod global;
#[doc(hidden)]
pub mod ikey;
#[doc(hidden)]
pub mod internals;
#[doc(hidden)]
pub mod kill;
#[doc(hidden)]
pub mod logging;
#[doc(hidden)]
pub mod options;
#[doc(hidden)]
pub mod platform;
pub(crate) mod priority;
pub(crate) mod private_file;
pub(crate) mod purge;
pub(crate) mod queue;
#[doc(hidden)]
pub mod random;
#[doc(hidden)]
pub mod response;
pub mod stats;
pub mod status;
pub(crate) mod sync;
#[doc(hidden)]
pub mod transport;
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
