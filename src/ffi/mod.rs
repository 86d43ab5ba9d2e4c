//! The C ABI of abi.md: each function is a thin shell around the default session (the crate's
//! `global` module) or a [`Client`](crate::Client).

mod boundary;
mod client;
mod types;

mod control;

pub use client::{
    tel_client, tel_client_close, tel_client_flush, tel_client_log, tel_client_log_ex,
    tel_client_new, tel_client_set_delivery_callback, tel_client_stats_json,
};
pub use control::{
    tel_client_consent, tel_client_pause, tel_client_resume, tel_client_set_consent,
    tel_client_set_property, tel_consent, tel_pause, tel_resume, tel_set_consent, tel_set_property,
};

pub use types::{
    tel_delivery_fn, tel_log_fn, tel_status, TEL_CONSENT_DENIED, TEL_CONSENT_GRANTED,
    TEL_CONSENT_UNKNOWN, TEL_ERR_ALREADY_INITIALIZED, TEL_ERR_INTERNAL, TEL_ERR_INVALID_ARGUMENT,
    TEL_ERR_INVALID_CONFIG, TEL_ERR_INVALID_EVENT, TEL_ERR_NOT_DURABLE, TEL_ERR_NOT_INITIALIZED,
    TEL_ERR_QUEUE_FULL, TEL_ERR_TIMEOUT, TEL_LOG_DEBUG, TEL_LOG_ERROR, TEL_LOG_INFO, TEL_LOG_OFF,
    TEL_LOG_TRACE, TEL_LOG_WARN, TEL_OK,
};

use crate::api::global;
use crate::sys::log;
use boundary::{call, call_size, fill_buffer, optional_str, required_str};
use std::ffi::{c_char, c_void};
use std::time::Duration;

/// Starts the process-wide session from a JSON configuration object (abi.md, "Configuration").
///
/// `config_json` is borrowed for the call only. Returns `TEL_OK`, `TEL_ERR_INVALID_ARGUMENT`
/// (NULL or not UTF-8), `TEL_ERR_INVALID_CONFIG` (the message names the offending key or field),
/// `TEL_ERR_ALREADY_INITIALIZED` or `TEL_ERR_INTERNAL` (the worker thread could not start, or a
/// caught panic). Does no network I/O; reads small state files (device id,
/// kill window) and starts the worker thread, which replays the on-disk cache in the
/// background. With opt-out (`enabled:false`, `TEL_DISABLE`, `DO_NOT_TRACK=1`) it returns
/// `TEL_OK`, deletes the cache file, and the session does nothing. Thread-safe. A callback may
/// call it.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_init(config_json: *const c_char) -> tel_status {
    call(|| global::init(required_str(config_json, "config_json")?))
}

/// Logs one event: `name` (4-100 characters of `[A-Za-z0-9_.]`, starting and ending with a
/// letter or digit) and `properties_json`, a JSON object (NULL means `{}`). Both are borrowed
/// for the call only.
///
/// Never blocks on I/O: validates, stamps the time, enqueues and returns. Returns `TEL_OK`
/// (also when a kill window or opt-out drops the event), `TEL_ERR_INVALID_ARGUMENT`,
/// `TEL_ERR_INVALID_EVENT`, `TEL_ERR_QUEUE_FULL` (the event was dropped and counted),
/// `TEL_ERR_NOT_INITIALIZED` or `TEL_ERR_INTERNAL` (a caught panic). Thread-safe. A callback
/// may call it.
///
/// # Safety
/// Each pointer must be NULL or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_log(
    name: *const c_char,
    properties_json: *const c_char,
) -> tel_status {
    call(|| {
        let name = required_str(name, "name")?;
        let props = optional_str(properties_json, "properties_json")?;
        global::log(name, props)
    })
}

/// Blocks until every event logged before the call, and every cache entry present at
/// `tel_init`, is resolved (accepted, rejected, dropped for a named reason, or persisted back to
/// the cache), or until `timeout_ms` passes: then `TEL_ERR_TIMEOUT`, and what is left stays
/// queued for retry. Returns `TEL_ERR_NOT_INITIALIZED` without a session, `TEL_ERR_INTERNAL`
/// on a caught panic. Thread-safe. A callback may call it, but one running on the default
/// session's own worker thread cannot wait for it: `TEL_ERR_TIMEOUT` at once, events kept.
#[no_mangle]
pub extern "C" fn tel_flush(timeout_ms: u32) -> tel_status {
    call(|| global::flush(Duration::from_millis(timeout_ms.into())))
}

/// Ends the session: stops accepting events, tries to deliver what is pending within
/// `timeout_ms`, persists what is left to the cache file and stops the worker. Blocks, and
/// returns within `timeout_ms` plus a small margin even when the collector hangs mid-request.
/// `pending` is 0 once it returns. Returns `TEL_OK`, `TEL_ERR_TIMEOUT` (the deadline was
/// reached; the rest was persisted), `TEL_ERR_NOT_INITIALIZED` or `TEL_ERR_INTERNAL` (a caught
/// panic). The session's stats stay readable until the next `tel_init`; its delivery reports
/// are over when it returns. Thread-safe. A callback may call it; from the session's own worker
/// thread it returns `TEL_OK` at once and the session ends when the callback returns. A logger
/// or delivery callback that blocks or is slow does not hold it up: a delivery callback still
/// running at the deadline plus the margin is not waited for (the status tells about the
/// events, not about it) and is not called again; its `user_data` must stay valid until it
/// returns.
#[no_mangle]
pub extern "C" fn tel_shutdown(timeout_ms: u32) -> tel_status {
    call(|| global::shutdown(Duration::from_millis(timeout_ms.into())))
}

/// Writes the counters as one JSON object into `buf` like `snprintf`: at most `buf_len` bytes
/// including the terminating NUL, nothing when `buf` is NULL or `buf_len` is 0. Returns the
/// length of the whole text, excluding the NUL (call with NULL first to size the buffer).
/// Thread-safe; never blocks on I/O; a callback may call it. A caught panic (`TEL_ERR_INTERNAL`
/// elsewhere) returns 0.
///
/// # Safety
/// `buf` must be NULL or writable for `buf_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tel_stats_json(buf: *mut c_char, buf_len: usize) -> usize {
    call_size(|| fill_buffer(&global::stats().to_json(), buf, buf_len))
}

/// Writes the message of the most recent non-OK status returned on this thread into `buf`, as
/// `tel_stats_json` does; an empty string when there is none. Later `TEL_OK` returns do not
/// clear it. Returns the length of the whole message, excluding the NUL (0 on a caught panic).
/// A callback may call it (it reads the callback thread's own last error).
///
/// # Safety
/// `buf` must be NULL or writable for `buf_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tel_last_error(buf: *mut c_char, buf_len: usize) -> usize {
    call_size(|| fill_buffer(&boundary::last_error(), buf, buf_len))
}

/// The library's version, e.g. "0.2.0": a static NUL-terminated string owned by the library;
/// never free it. Cannot fail; a callback may call it.
#[no_mangle]
pub extern "C" fn tel_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Routes the library's log lines to `callback` for levels up to `max_level` (0 off, 1 error,
/// 2 warn, 3 info, 4 debug, 5 trace). `user_data` is passed back untouched. A NULL callback
/// restores the default sink: stderr when the environment variable `TEL_LOG` names a level,
/// silent otherwise. May be called at any time, before `tel_init` too. No lock of the library
/// is held while the callback runs (lines logged while one is held wait until it is released),
/// so the callback may call any `tel_*` function (the limits: `tel_flush` from the worker's
/// thread returns `TEL_ERR_TIMEOUT` at once; a client's `tel_client_close` from its own worker
/// thread is refused). `user_data` must stay valid until a later `tel_set_logger` replaces the
/// callback and every call already running has returned (the library does not wait for them).
/// A level above 5 means 5, below 0 means 0. Returns `TEL_OK`, or `TEL_ERR_INTERNAL` on a caught
/// panic.
#[no_mangle]
pub extern "C" fn tel_set_logger(
    callback: tel_log_fn,
    max_level: i32,
    user_data: *mut c_void,
) -> tel_status {
    call(|| {
        log::set_callback(callback, max_level, user_data);
        Ok(())
    })
}

/// `tel_log` with per-event options (ABI 1.1): `options_json` is NULL, `{}` (both: exactly
/// `tel_log`) or a JSON object of `time` (RFC 3339 UTC ending in `Z`, or integer Unix ms),
/// `priority` (`"normal"`, `"high"`, `"critical"`) and `ext` (per-event Common Schema fields,
/// `dt` and `ex` included; `sdk` refused). All strings are borrowed for the call only. Returns
/// as `tel_log` (`TEL_OK`, `TEL_ERR_INVALID_ARGUMENT`, `TEL_ERR_INVALID_EVENT`,
/// `TEL_ERR_QUEUE_FULL`, `TEL_ERR_NOT_INITIALIZED`, `TEL_ERR_INTERNAL`); a bad option is
/// `TEL_ERR_INVALID_EVENT` with a message naming the key. A higher
/// priority takes the place of the oldest lower one in a full queue; a `critical` event is in
/// the cache folder before this returns and is sent at once. When a cache is configured but the
/// critical event could not be written to it (disk full...), it is queued and sent all the
/// same and the call returns `TEL_ERR_NOT_DURABLE`. May be called from a callback.
///
/// # Safety
/// Each pointer must be NULL or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_log_ex(
    name: *const c_char,
    properties_json: *const c_char,
    options_json: *const c_char,
) -> tel_status {
    call(|| {
        let name = required_str(name, "name")?;
        let props = optional_str(properties_json, "properties_json")?;
        let options = optional_str(options_json, "options_json")?;
        global::log_ex(name, props, options)
    })
}

/// Installs `callback` as the default session's delivery callback, for the live session and
/// every later one (NULL removes it); see `tel_delivery_fn` for the report. It runs on the
/// library's threads, never while a lock of the library is held, and may call any `tel_*`
/// function (`tel_flush` from it returns `TEL_ERR_TIMEOUT` at once: it cannot wait for its own
/// thread). After `tel_shutdown` returns, that session's reports are over. `user_data` is passed
/// back untouched and must stay valid while the callback is installed, until `tel_shutdown` of
/// the sessions that used it has returned, and until a call still running then has returned
/// (the library never uses it afterwards). May be called at any time, before `tel_init` too.
/// Returns `TEL_OK` or `TEL_ERR_INTERNAL`.
#[no_mangle]
pub extern "C" fn tel_set_delivery_callback(
    callback: tel_delivery_fn,
    user_data: *mut c_void,
) -> tel_status {
    call(|| {
        global::set_delivery_callback(
            callback.map(|f| crate::worker::delivery::c_callback(f, user_data)),
        );
        Ok(())
    })
}

/// Deletes every undelivered event of a configuration (consent revoked): the cache file that
/// `config_json` names (or the tenant's default one) and the entries sessions claimed from it,
/// live ones in other processes included. Starts no session and does no network I/O; keeps the
/// device id and the kill window. `ikey` is required; other keys are validated as by `tel_init`.
/// Returns `TEL_OK` (also when there was nothing to delete), `TEL_ERR_INVALID_ARGUMENT`,
/// `TEL_ERR_INVALID_CONFIG` or `TEL_ERR_INTERNAL` (a file could not be deleted, or another
/// process held the cache lock for 2 s). May be called from a callback.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_purge(config_json: *const c_char) -> tel_status {
    call(|| {
        let config =
            crate::model::config::Config::from_json(required_str(config_json, "config_json")?)?;
        crate::api::client::check_privacy(&config)?;
        crate::api::purge::purge(&config)
    })
}
