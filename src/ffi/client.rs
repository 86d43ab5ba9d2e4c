//! ABI 1.1: independent clients (abi.md, "Clients"). Each function is a thin shell around
//! [`crate::Client`]; the opaque `tel_client` owns one reference to it.

use super::boundary::{call, call_size, fill_buffer, optional_str, required_str};
use super::types::{tel_delivery_fn, tel_status};
use crate::api::client::Client;
use crate::model::config::Config;
use crate::model::options::EventOptions;
use crate::model::status::{Error, Result};
use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

/// An independent client: its own tenant, endpoint, worker, queue, counters and cache file.
/// Opaque; made by `tel_client_new`, freed by `tel_client_close`.
#[allow(non_camel_case_types)]
pub struct tel_client {
    client: Arc<Client>,
}

/// # Safety
/// `client` must be NULL or a pointer from `tel_client_new` not yet closed.
pub(super) unsafe fn client_ref<'a>(client: *mut tel_client) -> Result<&'a Client> {
    client
        .as_ref()
        .map(|c| &*c.client)
        .ok_or_else(|| Error::argument("client is NULL"))
}

/// Starts a new client from a JSON configuration object (the same keys as `tel_init`) and
/// stores it in `*out` on `TEL_OK` (`*out` is untouched on failure). Any number of clients
/// live side by side, with or without the default session; two of them (or a client and
/// another process) may share a `cache_path` and still deliver each entry once.
///
/// Returns `TEL_OK` (also under opt-out, with a client that does nothing but must still be
/// closed), `TEL_ERR_INVALID_ARGUMENT` (`config_json` or `out` NULL, not UTF-8),
/// `TEL_ERR_INVALID_CONFIG` (the message names the key) or `TEL_ERR_INTERNAL` (the worker
/// thread could not start, or a caught panic). No network I/O. May be called from a callback.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string valid for the call; `out` must be NULL
/// or writable.
#[no_mangle]
pub unsafe extern "C" fn tel_client_new(
    config_json: *const c_char,
    out: *mut *mut tel_client,
) -> tel_status {
    call(|| {
        let text = required_str(config_json, "config_json")?;
        if out.is_null() {
            return Err(Error::argument("out is NULL"));
        }
        let config = Config::from_json(text)?;
        crate::api::global::watch_fork();
        let client = Client::start(config)?;
        let boxed = Box::new(tel_client {
            client: Arc::new(client),
        });
        *out = Box::into_raw(boxed);
        Ok(())
    })
}

/// `tel_log` on `client`. Returns `TEL_OK`, `TEL_ERR_INVALID_ARGUMENT` (`client` or `name`
/// NULL, not UTF-8), `TEL_ERR_INVALID_EVENT`, `TEL_ERR_QUEUE_FULL`, `TEL_ERR_NOT_INITIALIZED`
/// (during its close) or `TEL_ERR_INTERNAL` (a caught panic). Never blocks on I/O. May be called
/// from a callback.
///
/// # Safety
/// `client` must be NULL or a live client; the strings as for `tel_log`.
#[no_mangle]
pub unsafe extern "C" fn tel_client_log(
    client: *mut tel_client,
    name: *const c_char,
    properties_json: *const c_char,
) -> tel_status {
    call(|| {
        let client = client_ref(client)?;
        let name = required_str(name, "name")?;
        let props = optional_str(properties_json, "properties_json")?;
        client.log(name, props)
    })
}

/// `tel_log_ex` on `client`: `options_json` (NULL or `{}`: as `tel_client_log`) sets the event's
/// `time`, `priority` and per-event `ext` (abi.md, "Per-event options"). Returns as
/// `tel_client_log` (`TEL_OK`, `TEL_ERR_INVALID_ARGUMENT`, `TEL_ERR_INVALID_EVENT`,
/// `TEL_ERR_QUEUE_FULL`, `TEL_ERR_NOT_INITIALIZED`, `TEL_ERR_INTERNAL`); a bad option is
/// `TEL_ERR_INVALID_EVENT` naming the key. A `critical`
/// event with a cache is appended to the cache folder before the call returns (a small write,
/// no fsync); when that write fails (disk full...), the event is queued and sent all the same
/// and the call returns `TEL_ERR_NOT_DURABLE`. May be called from a callback.
///
/// # Safety
/// `client` must be NULL or a live client; each string NULL or NUL-terminated and valid for the
/// call.
#[no_mangle]
pub unsafe extern "C" fn tel_client_log_ex(
    client: *mut tel_client,
    name: *const c_char,
    properties_json: *const c_char,
    options_json: *const c_char,
) -> tel_status {
    call(|| {
        let client = client_ref(client)?;
        let name = required_str(name, "name")?;
        let props = optional_str(properties_json, "properties_json")?;
        match optional_str(options_json, "options_json")? {
            None => client.log(name, props),
            Some(o) => client.log_ex(name, props, &EventOptions::from_json(o)?),
        }
    })
}

/// `tel_flush` on `client`. Returns `TEL_OK`, `TEL_ERR_TIMEOUT`, `TEL_ERR_INVALID_ARGUMENT`
/// (NULL), `TEL_ERR_NOT_INITIALIZED` (during its close) or `TEL_ERR_INTERNAL`. From a callback
/// running on this client's own worker it cannot wait and returns `TEL_ERR_TIMEOUT` at once.
///
/// # Safety
/// `client` must be NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn tel_client_flush(client: *mut tel_client, timeout_ms: u32) -> tel_status {
    call(|| client_ref(client)?.flush(Duration::from_millis(timeout_ms.into())))
}

/// `tel_stats_json` for `client`, `snprintf`-style. A NULL `client` writes nothing and returns 0,
/// as does a caught panic. May be called from a callback.
///
/// # Safety
/// `client` must be NULL or a live client; `buf` NULL or writable for `buf_len` bytes.
#[no_mangle]
pub unsafe extern "C" fn tel_client_stats_json(
    client: *mut tel_client,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    call_size(|| match client_ref(client) {
        Ok(c) => fill_buffer(&c.stats().to_json(), buf, buf_len),
        Err(_) => 0,
    })
}

/// `tel_shutdown` for `client`, then frees it: the pointer is invalid after the call, whatever
/// it returns (except `TEL_ERR_INVALID_ARGUMENT`). After it returns, the client's delivery
/// callback is never called again. Returns `TEL_OK`, `TEL_ERR_TIMEOUT` (the deadline came with
/// events pending: they were persisted), `TEL_ERR_INVALID_ARGUMENT` (NULL, or called from this
/// client's own delivery callback or worker thread: the client stays open) or
/// `TEL_ERR_INTERNAL` (a caught panic; the client is freed all the same). Returns within
/// `timeout_ms` plus 200 ms whatever the callbacks do: a delivery callback of this client still
/// running then is not waited for (the status says nothing about it); it is not called again,
/// and the client's memory stays until it returns, so that it may still call the client
/// (`tel_client_log*` and `tel_client_flush` answer `TEL_ERR_NOT_INITIALIZED`). Its `user_data`
/// must stay valid until it returns; the library never uses it afterwards.
///
/// # Safety
/// `client` must be NULL or a live client, not used by any other thread during or after this call
/// (its own delivery callback still running excepted).
#[no_mangle]
pub unsafe extern "C" fn tel_client_close(client: *mut tel_client, timeout_ms: u32) -> tel_status {
    call(|| {
        let c = client_ref(client)?;
        if c.in_own_callback() || c.on_own_worker() {
            return Err(Error::argument(
                "a client cannot be closed from its own callback: close it from another thread once the callback has returned",
            ));
        }
        let owned = Box::from_raw(client);
        let shared = owned.client.clone();
        let result = shared.close(Duration::from_millis(timeout_ms.into()));
        // A callback still running may call the client: it is freed when that callback returns.
        drop(shared.keep_while_callbacks_run(owned));
        result
    })
}

/// Installs `callback` as `client`'s delivery callback (NULL removes it): it receives one JSON
/// report per resolved group of events (abi.md, "Delivery reports"), on the library's threads,
/// never while a lock of the library is held. It may call any `tel_*` function except
/// `tel_client_close` on this client (refused with `TEL_ERR_INVALID_ARGUMENT`); a `tel_*_flush`
/// of this client from it returns `TEL_ERR_TIMEOUT` at once. `report_json` is valid only during
/// the call. `user_data` is passed back untouched and must stay valid until `tel_client_close`
/// returns and a call still running then has returned (or until a later call replaces the
/// callback and any call in progress has returned); the library never uses it afterwards.
/// Returns `TEL_OK`, `TEL_ERR_INVALID_ARGUMENT` (NULL client) or `TEL_ERR_INTERNAL`.
///
/// # Safety
/// `client` must be NULL or a live client; `callback` must be safe to call from any thread.
#[no_mangle]
pub unsafe extern "C" fn tel_client_set_delivery_callback(
    client: *mut tel_client,
    callback: tel_delivery_fn,
    user_data: *mut c_void,
) -> tel_status {
    call(|| {
        let c = client_ref(client)?;
        c.set_delivery_callback(
            callback.map(|f| crate::worker::delivery::c_callback(f, user_data)),
        );
        Ok(())
    })
}
