//! ABI 1.2: consent, common properties, pause and resume (abi.md, "1.2: consent, privacy and
//! control"), for the default session and for a client.

use super::boundary::{call, optional_str, required_str};
use super::client::{client_ref, tel_client};
use super::types::tel_status;
use crate::api::global;
use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Records the user's answer for the default session: `TEL_CONSENT_GRANTED` (the record is
/// written in the cache folder with the configured `consent_version`; what waits is sent and
/// the cache replayed) or `TEL_CONSENT_DENIED` (the record is written; every waiting event is
/// dropped and counted in `dropped_consent`; the tenant's undelivered cache entries and the
/// device-id file are deleted; later events are counted in `logged` and `dropped_consent`).
/// Returns `TEL_OK`, `TEL_ERR_INVALID_ARGUMENT` (any other state), `TEL_ERR_NOT_INITIALIZED`,
/// or `TEL_ERR_INTERNAL` (the purge could not delete a file; the answer holds all the same,
/// or a caught panic). Under opt-out it records nothing and returns `TEL_OK`. Thread-safe; a
/// callback may call it.
#[no_mangle]
pub extern "C" fn tel_set_consent(state: i32) -> tel_status {
    call(|| global::set_consent(state))
}

/// The default session's consent state: `TEL_CONSENT_UNKNOWN`, `_GRANTED` or `_DENIED`
/// (`_DENIED` under opt-out); -1 when there is no session (or on a caught panic). Never
/// blocks on I/O; a callback may call it.
#[no_mangle]
pub extern "C" fn tel_consent() -> i32 {
    catch_unwind(global::consent).unwrap_or(-1)
}

/// `tel_set_consent` for one client (its own state, record and cache). Returns as
/// `tel_set_consent` (`TEL_OK`, `TEL_ERR_INVALID_ARGUMENT` also for a NULL client,
/// `TEL_ERR_NOT_INITIALIZED` once closed, `TEL_ERR_INTERNAL`). A callback may call it.
///
/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn tel_client_set_consent(client: *mut tel_client, state: i32) -> tel_status {
    call(|| client_ref(client)?.set_consent(state))
}

/// `tel_consent` for one client; -1 for NULL (or on a caught panic). A callback may call it.
///
/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn tel_client_consent(client: *mut tel_client) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        client_ref(client).map_or(-1, |c| c.consent())
    }))
    .unwrap_or(-1)
}

/// Adds or replaces the common property `name` (1 to 100 bytes of UTF-8) with `value_json`
/// (one JSON value, `null` included, under the property checks), or removes it when
/// `value_json` is NULL, for the events the default session logs after the call returns.
/// Common properties are merged at the top level of each event's `data`; the event's own key
/// wins. Returns `TEL_OK`, `TEL_ERR_INVALID_ARGUMENT` (`name` NULL, not UTF-8),
/// `TEL_ERR_INVALID_EVENT` (a bad name or value, named), `TEL_ERR_NOT_INITIALIZED` or
/// `TEL_ERR_INTERNAL`. Thread-safe; a callback may call it.
///
/// # Safety
/// Each pointer must be NULL or a NUL-terminated string valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_set_property(
    name: *const c_char,
    value_json: *const c_char,
) -> tel_status {
    call(|| {
        let name = required_str(name, "name")?;
        let value = optional_str(value_json, "value_json")?;
        global::set_property(name, value)
    })
}

/// `tel_set_property` for one client. Returns as `tel_set_property` (a NULL client is
/// `TEL_ERR_INVALID_ARGUMENT`; `TEL_ERR_INTERNAL` on a caught panic). A callback may call it.
///
/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed; each string NULL
/// or NUL-terminated and valid for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn tel_client_set_property(
    client: *mut tel_client,
    name: *const c_char,
    value_json: *const c_char,
) -> tel_status {
    call(|| {
        let client = client_ref(client)?;
        let name = required_str(name, "name")?;
        let value = optional_str(value_json, "value_json")?;
        client.set_property(name, value)
    })
}

/// Pauses the default session: no request is made and no connection opened until `tel_resume`.
/// Events are accepted as usual; a batch that would be sent goes to the cache (`persisted`)
/// when one is usable, else waits in memory; nothing is replayed. `tel_flush` then persists
/// what is queued and returns `TEL_OK`; `tel_shutdown` persists without any network attempt.
/// Idempotent; not recorded on disk. Returns `TEL_OK`, `TEL_ERR_NOT_INITIALIZED` or
/// `TEL_ERR_INTERNAL`. Thread-safe; a callback may call it.
#[no_mangle]
pub extern "C" fn tel_pause() -> tel_status {
    call(|| global::set_paused(true))
}

/// Ends a pause: sending restarts at once, the cache (what the pause put there included) is
/// replayed. Idempotent. Returns as `tel_pause` (`TEL_OK`, `TEL_ERR_NOT_INITIALIZED`,
/// `TEL_ERR_INTERNAL`). Thread-safe; a callback may call it.
#[no_mangle]
pub extern "C" fn tel_resume() -> tel_status {
    call(|| global::set_paused(false))
}

/// `tel_pause` for one client. Returns as `tel_pause` (a NULL client is
/// `TEL_ERR_INVALID_ARGUMENT`; `TEL_ERR_INTERNAL` on a caught panic). A callback may call it.
///
/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn tel_client_pause(client: *mut tel_client) -> tel_status {
    call(|| client_ref(client)?.set_paused(true))
}

/// `tel_resume` for one client. Returns as `tel_resume` (a NULL client is
/// `TEL_ERR_INVALID_ARGUMENT`; `TEL_ERR_INTERNAL` on a caught panic). A callback may call it.
///
/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed.
#[no_mangle]
pub unsafe extern "C" fn tel_client_resume(client: *mut tel_client) -> tel_status {
    call(|| client_ref(client)?.set_paused(false))
}
