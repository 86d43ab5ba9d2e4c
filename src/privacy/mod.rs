//! The privacy features of ABI 1.2 that stand on their own: scrubbing personal data out of
//! string values ([`scrub`], with its detectors in `detect` and the user's identity in
//! `identity`), population sampling ([`sample`]) and the audit file ([`audit`]).
//!
//! Each is a building block with its own tests: the client scrubs and samples at `tel_log*`
//! (`api::client`), checks `scrub` and `sample` with the configuration, and the worker writes
//! the audit file when it applies an answer (`worker::execute`).

pub(crate) mod audit;
pub(crate) mod detect;
pub(crate) mod identity;
pub(crate) mod sample;
pub(crate) mod scrub;
