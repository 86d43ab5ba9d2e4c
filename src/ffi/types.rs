//! The types and constants of the C ABI: the status codes, the log levels and the callbacks.

use std::ffi::{c_char, c_void};

/// A status code (abi.md, "Status codes"); 0 is success.
#[allow(non_camel_case_types)]
pub type tel_status = i32;

/// Success; also an event dropped by opt-out or by a kill window.
pub const TEL_OK: tel_status = 0;
/// A required pointer is NULL, or a string is not valid UTF-8.
pub const TEL_ERR_INVALID_ARGUMENT: tel_status = 1;
/// `tel_init` rejected the configuration (unknown key, bad iKey, bad endpoint, undocumented ext field, ...).
pub const TEL_ERR_INVALID_CONFIG: tel_status = 2;
/// `tel_log` rejected the event: bad name, properties not a JSON object, event too large.
pub const TEL_ERR_INVALID_EVENT: tel_status = 3;
/// Called before `tel_init` or after `tel_shutdown`.
pub const TEL_ERR_NOT_INITIALIZED: tel_status = 4;
/// `tel_init` while a session is live.
pub const TEL_ERR_ALREADY_INITIALIZED: tel_status = 5;
/// The in-memory queue is full; this event was dropped and counted.
pub const TEL_ERR_QUEUE_FULL: tel_status = 6;
/// `tel_flush`/`tel_shutdown` hit its deadline; what was not delivered stays queued (flush) or was persisted (shutdown).
pub const TEL_ERR_TIMEOUT: tel_status = 7;
/// An unexpected failure, including a caught panic; the library stays usable.
pub const TEL_ERR_INTERNAL: tel_status = 8;
/// ABI 1.1: a `critical` event (`tel_log_ex`) was queued and will be sent, but could not be
/// written to the cache file (disk full, the cache folder unwritable...): it would not survive
/// the end of the process. Counted in `logged` like any queued event, and in `not_durable`.
pub const TEL_ERR_NOT_DURABLE: tel_status = 9;

/// ABI 1.2 consent states (`tel_set_consent`, `tel_consent`): no answer recorded yet (events
/// wait in memory; nothing is sent or written).
pub const TEL_CONSENT_UNKNOWN: i32 = 0;
/// The user agreed: events are sent and kept as usual.
pub const TEL_CONSENT_GRANTED: i32 = 1;
/// The user refused: events are dropped (`dropped_consent`); nothing is sent or written.
pub const TEL_CONSENT_DENIED: i32 = 2;

/// Log levels of `tel_set_logger`.
pub const TEL_LOG_OFF: i32 = 0;
pub const TEL_LOG_ERROR: i32 = 1;
pub const TEL_LOG_WARN: i32 = 2;
pub const TEL_LOG_INFO: i32 = 3;
pub const TEL_LOG_DEBUG: i32 = 4;
pub const TEL_LOG_TRACE: i32 = 5;

/// The logger callback: `level` (1 error .. 5 trace), a NUL-terminated one-line `message` that
/// is valid only during the call, and the `user_data` given to `tel_set_logger`. It can run on
/// any thread, the library's worker included, and may itself call `tel_*` functions.
#[allow(non_camel_case_types)]
pub type tel_log_fn =
    Option<extern "C" fn(level: i32, message: *const c_char, user_data: *mut c_void)>;

/// The delivery callback (ABI 1.1): `report_json` is one NUL-terminated JSON object, valid only
/// during the call: `outcome` (`sent`, `rejected`, `dropped_killed`, `persisted`,
/// `dropped_shutdown`, `dropped_evicted`, and since ABI 1.2 `dropped_consent`), `events`, `names` (event name -> count), `status` (the
/// HTTP status that decided it, 0 when none) and `reason`. `user_data` is the pointer given
/// when it was installed. A call still running when `tel_shutdown` or `tel_client_close`
/// returns is not waited for: it runs to its end, and is the last one.
#[allow(non_camel_case_types)]
pub type tel_delivery_fn =
    Option<extern "C" fn(report_json: *const c_char, user_data: *mut c_void)>;
