//! The vocabulary: what a configuration, an event's options, an envelope, its `ext` fields, an
//! instrumentation key, an endpoint, a priority and a status are. Pure values and their
//! checks, with no thread, no file and no network of their own.

pub(crate) mod config;
pub(crate) mod endpoint;
pub(crate) mod envelope;
pub(crate) mod ext;
pub(crate) mod ikey;
pub(crate) mod options;
pub(crate) mod priority;
pub(crate) mod status;
