//! A local OneCollector for tests: it validates uploads as strictly as the real service
//! (the wire format of the project's protocol notes), answers as it does, records what it accepted, and
//! misbehaves on demand, down to the bytes on the wire.
//!
//! ```no_run
//! use std::time::Duration;
//! use tel_emulator::{Collector, Scripted};
//!
//! let collector = Collector::start().unwrap();
//! collector.push(Scripted::status(503).with_header("Retry-After", "1"));
//! // ... point the client at collector.endpoint() and log events ...
//! assert!(collector.wait_for_accepted(3, Duration::from_secs(10)));
//! ```
//!
//! The server is plain HTTP/1.1 on `std::net`, a thread per connection, so that faults can cut
//! a response anywhere. The same port serves a JSON control API under `/_emulator/` (see
//! [`control`]) for tests that run the collector as a process (`telctl serve`).
//!
//! Layout: [`validate`] (one envelope) and [`judge`] (one request) hold the protocol's rules
//! as pure functions; [`decode`] undoes Content-Encoding; `http` reads requests and writes
//! responses; [`script`] describes scripted answers and faults. `collector` (the Rust API and
//! the listener thread), `connection` (one client's requests), [`control`] and `fault` run
//! them, each through `shared`, the state their threads share, which imports none of them.
//! [`proxy`] is a CONNECT proxy for the tests of a client's proxy route; it and the TLS front
//! accept connections with `listener`. `sync` locks survive a panicking thread.

mod collector;
mod connection;
pub mod control;
pub mod decode;
mod fault;
mod http;
pub mod judge;
mod listener;
pub mod netns;
mod options;
pub mod proxy;
mod record;
pub mod script;
mod shared;
mod sync;
#[cfg(feature = "tls")]
mod tls;
pub mod validate;

pub use collector::Collector;
pub use judge::{judge_request, missing_optional_headers, Judgement, OPTIONAL_HEADERS};
pub use options::Options;
pub use proxy::{ConnectProxy, ProxyCounts, ProxyOptions};
pub use record::RecordedRequest;
pub use script::{Fault, Scripted};
#[cfg(feature = "tls")]
pub use tls::TlsCounts;
pub use validate::{
    check_ext, check_ext_value, envelope_ikey, is_valid_event_name, is_valid_local_id,
    is_valid_time, tenant_of, validate_envelope, EnvelopeError, Reach, Rejection, DOCUMENTED_EXT,
    LOCAL_ID_PREFIXES,
};

/// The path uploads go to (`/OneCollector/1.0` without the slash is accepted too).
pub const COLLECTOR_PATH: &str = "/OneCollector/1.0/";
