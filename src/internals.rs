//! Internal items the project's own tools (`telctl`), benches, tests, examples and fuzz targets
//! reach into. Not part of the API: hidden from the docs, never in `tel.h`, and any of it may
//! change or go in any release. A host program uses the crate root ([`crate::Client`],
//! [`crate::Config`], ...) or the C ABI.
//!
//! The modules themselves are `pub(crate)`; each submodule here re-exports only what code
//! outside the crate uses, so an item nothing uses is still reported as dead code.

pub mod backoff {
    pub use crate::backoff::MAX_RETRY_AFTER;
}

pub mod cache {
    pub use crate::cache::{Cache, CacheFiles};
}

pub mod clock {
    pub use crate::clock::{iso8601, now_ms, parse_http_date, parse_iso8601};
}

pub mod device {
    pub use crate::device::local_id;
}

pub mod envelope {
    pub use crate::envelope::{
        check_name, check_properties, envelope_time_ms, EnvelopeTemplate, MAX_DEPTH,
    };
}

pub mod ext {
    pub use crate::ext::{default_context, ExtOverrides, SessionExt, DOCUMENTED};
}

pub mod ikey {
    pub use crate::ikey::InstrumentationKey;
}

pub mod kill {
    pub use crate::kill::{parse_directive, KillSwitch, MAX_KILL_SECONDS};
}

pub mod logging {
    pub use crate::logging::set_callback;
}

pub mod platform {
    pub use crate::platform::{default_cache_dir, os_name, os_version};
}

pub mod privacy {
    pub use crate::privacy::audit::{AuditFile, AuditOutcome};
    pub use crate::privacy::identity::UserIdentity;
    pub use crate::privacy::scrub::{Detectors, Scrubber};
}

pub mod random {
    pub use crate::random::{u64, uuid4};
}

pub mod response {
    pub use crate::response::{
        classify, directives, parse_retry_after, refused_events, HttpResponse, NetworkError,
        Refused, Verdict,
    };
}

pub mod transport {
    pub use crate::transport::{encode, ndjson, Transport, MAX_RESPONSE_BODY};
}
