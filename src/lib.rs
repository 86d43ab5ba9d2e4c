//! `onecollector-tel`: sends Common Schema 4.0 events to Microsoft's OneCollector service.
//!
//! The pipeline, one module each: [`ffi`] (the C ABI) -> [`global`] (the process-wide
//! session) -> [`client`] (the Rust API) -> [`queue`] -> [`worker`] -> [`envelope`] ->
//! [`transport`] -> [`response`] (the policy) -> [`kill`] / [`backoff`] / [`cache`]. [`batch`]
//! holds the batches in hand; [`sync`] and [`fork`] keep the locks safe across `fork`.

pub mod backoff;
pub mod batch;
pub mod cache;
pub mod client;
pub mod clock;
pub mod config;
pub mod device;
pub mod endpoint;
pub mod envelope;
pub mod ext;
pub mod ffi;
pub mod fork;
pub mod global;
pub mod ikey;
pub mod kill;
pub mod logging;
pub mod platform;
pub mod private_file;
pub mod queue;
pub mod random;
pub mod response;
pub mod stats;
pub mod status;
pub mod sync;
pub mod transport;
pub mod worker;

pub use client::Client;
pub use config::{CachePath, Compression, Config};
pub use stats::Snapshot;
pub use status::{Error, Status};
