//! Internal items the project's own tools (`telctl`), benches, tests, examples and fuzz targets
//! reach into. Not part of the API: hidden from the docs, never in `tel.h`, and any of it may
//! change or go in any release. A host program uses the crate root ([`crate::Client`],
//! [`crate::Config`], ...) or the C ABI.
//!
//! The modules themselves are `pub(crate)`; each submodule here re-exports only what code
//! outside the crate uses, so an item nothing uses is still reported as dead code.

pub mod backoff {
    pub use crate::policy::backoff::MAX_RETRY_AFTER;
}

pub mod cache {
    pub use crate::cache::files::CacheFiles;
    pub use crate::cache::Cache;
}

pub mod clock {
    pub use crate::sys::clock::{iso8601, now_ms, parse_http_date, parse_iso8601};
}

pub mod device {
    pub use crate::cache::device::local_id;
}

pub mod envelope {
    pub use crate::model::envelope::{
        check_name, check_properties, envelope_time_ms, EnvelopeTemplate, MAX_DEPTH,
    };
}

pub mod ext {
    pub use crate::model::ext::{default_context, ExtOverrides, SessionExt, DOCUMENTED};
}

pub mod ikey {
    pub use crate::model::ikey::InstrumentationKey;
}

pub mod kill {
    pub use crate::policy::kill::{parse_directive, KillSwitch, MAX_KILL_SECONDS};
}

pub mod logging {
    pub use crate::sys::log::set_callback;
}

pub mod platform {
    pub use crate::sys::platform::{default_cache_dir, os_name, os_version};
}

pub mod privacy {
    pub use crate::privacy::audit::{AuditFile, AuditOutcome};
    pub use crate::privacy::identity::UserIdentity;
    pub use crate::privacy::scrub::{Detectors, Scrubber};
}

pub mod random {
    pub use crate::sys::random::{u64, uuid4};
}

pub mod response {
    pub use crate::policy::answer::{
        classify, directives, parse_retry_after, refused_events, Refused, Verdict,
    };
    pub use crate::transport::reply::{HttpResponse, NetworkError};
}

pub mod transport {
    pub use crate::transport::codec::{encode, ndjson};
    pub use crate::transport::reply::MAX_RESPONSE_BODY;
    pub use crate::transport::Transport;
}
