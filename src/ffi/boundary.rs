//! The plumbing every exported function goes through: panics caught, pointers and UTF-8
//! checked, the thread's last error recorded, buffers filled `snprintf`-style.

use crate::model::status::{Error, Result, Status};
use std::cell::RefCell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Runs `f`, turning its error or panic into a status and recording the message.
pub fn call(f: impl FnOnce() -> Result<()>) -> i32 {
    let outcome = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Error::new(
            Status::Internal,
            format!("internal error (caught panic: {what}); the library stays usable"),
        ))
    });
    match outcome {
        Ok(()) => Status::Ok as i32,
        Err(e) => {
            set_last_error(&e.message);
            e.status as i32
        }
    }
}

pub fn set_last_error(message: &str) {
    let _ = LAST_ERROR.try_with(|m| {
        if let Ok(mut m) = m.try_borrow_mut() {
            m.clear();
            m.push_str(message);
        }
    });
}

pub fn last_error() -> String {
    LAST_ERROR
        .try_with(|m| m.borrow().clone())
        .unwrap_or_default()
}

/// A required C string argument: non-NULL and UTF-8.
///
/// # Safety
/// `ptr` must be NULL or point to a NUL-terminated string that stays valid for the call.
pub unsafe fn required_str<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::argument(format!("{what} is NULL")));
    }
    CStr::from_ptr(ptr)
        .to_str()
        .map_err(|e| Error::argument(format!("{what} is not valid UTF-8: {e}")))
}

/// An optional C string argument: NULL means absent.
///
/// # Safety
/// As [`required_str`].
pub unsafe fn optional_str<'a>(ptr: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        Ok(None)
    } else {
        required_str(ptr, what).map(Some)
    }
}

/// Copies `text` into `buf` as `snprintf` would: at most `len` bytes including the NUL,
/// nothing when `buf` is NULL or `len` is 0. Returns the length the whole text needs.
///
/// # Safety
/// `buf` must be NULL or valid for `len` bytes of writes.
pub unsafe fn fill_buffer(text: &str, buf: *mut c_char, len: usize) -> usize {
    let bytes = text.as_bytes();
    if !buf.is_null() && len > 0 {
        let n = bytes.len().min(len - 1);
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    bytes.len()
}

/// Runs a function that returns a size, answering 0 if it panics.
pub fn call_size(f: impl FnOnce() -> usize) -> usize {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(0)
}
