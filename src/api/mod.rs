//! The Rust API: a client (its ABI 1.2 controls in `control`, its common properties in
//! `properties`), the process-wide default session behind the C ABI, and the purge.

pub(crate) mod client;
pub(crate) mod control;
pub(crate) mod global;
pub(crate) mod properties;
pub(crate) mod purge;
