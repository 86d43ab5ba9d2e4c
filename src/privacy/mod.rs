//! The privacy features of ABI 1.2 that stand on their own: scrubbing personal data out of
//! string values ([`scrub`], with its detectors in `detect` and the user's identity in
//! `identity`), population sampling ([`sample`]) and the audit file ([`audit`]).
//!
//! Each is a building block with its own tests; the client, the configuration and the worker
//! call them once ABI 1.2 is wired in.

// Not wired into the client, the configuration or the worker yet: until then only tests,
// benches and tools reach these items, so the compiler would call most of them unused.
#![allow(dead_code)]

pub(crate) mod audit;
pub(crate) mod detect;
pub(crate) mod identity;
pub(crate) mod sample;
pub(crate) mod scrub;
