//! The policy: what an answer of the collector means, when to try again, and the kill switch.

pub(crate) mod answer;
pub(crate) mod backoff;
pub(crate) mod kill;
