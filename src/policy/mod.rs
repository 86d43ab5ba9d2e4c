//! The policy: what an answer of the collector means ([`answer`]), what the worker does about
//! it ([`decide`]: pure, from the answer and the worker's state to a decision), when to try
//! again ([`backoff`]) and the kill switch ([`kill`]).

pub(crate) mod answer;
pub(crate) mod backoff;
pub(crate) mod decide;
pub(crate) mod kill;
