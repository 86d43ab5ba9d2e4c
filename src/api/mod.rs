//! The Rust API: a client, the process-wide default session behind the C ABI, and the purge.

pub(crate) mod client;
pub(crate) mod global;
pub(crate) mod purge;
