//! The floor: what every other layer stands on and that names nothing above it.

pub(crate) mod clock;
pub(crate) mod fork;
pub(crate) mod log;
pub(crate) mod platform;
pub(crate) mod private_file;
pub(crate) mod random;
pub(crate) mod sync;
