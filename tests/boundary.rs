//! The C boundary itself: NULL and invalid UTF-8 arguments, snprintf-style buffers, the
//! per-thread last error, the version string and the logger's levels.

mod common;

use common::*;
use serde_json::json;
use std::ffi::{c_char, CStr};
use tel::ffi;

#[test]
fn null_and_invalid_utf8_are_invalid_arguments_whatever_the_state() {
    let _s = serial();
    let bad: &[u8] = b"Bad\xff\xfeName\0";
    let bad_ptr = bad.as_ptr() as *const c_char;
    let name = c"Valid.Name";
    for live in [false, true] {
        let c = Collector::start().unwrap();
        if live {
            init_ok(&config(&c, None, json!({})));
        }
        assert_eq!(
            unsafe { ffi::tel_log(std::ptr::null(), std::ptr::null()) },
            1
        );
        assert!(last_error().contains("name is NULL"));
        assert_eq!(unsafe { ffi::tel_log(bad_ptr, std::ptr::null()) }, 1);
        assert!(last_error().contains("UTF-8"));
        assert_eq!(unsafe { ffi::tel_log(name.as_ptr(), bad_ptr) }, 1);
        assert!(last_error().contains("properties_json"));
        assert_eq!(unsafe { ffi::tel_init(std::ptr::null()) }, 1);
        assert_eq!(unsafe { ffi::tel_init(bad_ptr) }, 1);
        if live {
            assert_eq!(shutdown(1000), 0);
            assert_eq!(stat("logged"), 0);
        }
    }
}

#[test]
fn buffers_follow_snprintf() {
    let _s = serial();
    let c = Collector::start().unwrap();
    assert_eq!(init(&json!({"ikey": "bad"})), 2);
    let full = last_error();
    let n = unsafe { ffi::tel_last_error(std::ptr::null_mut(), 0) };
    assert_eq!(n, full.len());
    let mut buf = [0x55u8; 8];
    assert_eq!(
        unsafe { ffi::tel_last_error(buf.as_mut_ptr().cast(), 8) },
        full.len()
    );
    assert_eq!(&buf[..7], &full.as_bytes()[..7]);
    assert_eq!(buf[7], 0, "the text is NUL-terminated within buf_len");
    let mut one = [0x55u8; 1];
    unsafe { ffi::tel_last_error(one.as_mut_ptr().cast(), 1) };
    assert_eq!(one[0], 0);
    let mut untouched = [0x55u8; 4];
    unsafe { ffi::tel_last_error(untouched.as_mut_ptr().cast(), 0) };
    assert_eq!(untouched, [0x55; 4], "buf_len 0 writes nothing");

    init_ok(&config(&c, None, json!({})));
    let n = unsafe { ffi::tel_stats_json(std::ptr::null_mut(), 0) };
    let mut small = vec![0x55u8; 10];
    assert_eq!(
        unsafe { ffi::tel_stats_json(small.as_mut_ptr().cast(), 10) },
        n
    );
    assert_eq!(small[9], 0);
    let s = stats();
    for key in [
        "enabled",
        "logged",
        "sent",
        "rejected",
        "dropped_queue_full",
        "dropped_killed",
        "dropped_shutdown",
        "dropped_evicted",
        "replayed",
        "persisted",
        "cache_evicted",
        "pending",
        "retries",
        "http_requests",
        "http_failures",
        "killed_until_ms",
        "not_durable",
    ] {
        assert!(s.get(key).is_some(), "stats lack {key}: {s}");
    }
    assert_eq!(s.as_object().unwrap().len(), 17);
}

#[test]
fn the_last_error_is_per_thread_and_survives_ok_returns() {
    let _s = serial();
    assert_eq!(log("Not.Initialized", None), 4);
    let here = last_error();
    assert!(!here.is_empty());
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread has no error");
    let c = Collector::start().unwrap();
    init_ok(&config(&c, None, json!({})));
    assert_eq!(last_error(), here, "TEL_OK does not clear the last error");
}

#[test]
fn version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(ffi::tel_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn logger_levels_filter_and_clamp() {
    let _s = serial();
    static SEEN: parking_lot::Mutex<Vec<i32>> = parking_lot::Mutex::new(Vec::new());
    extern "C" fn sink(level: i32, _: *const c_char, _: *mut std::ffi::c_void) {
        SEEN.lock().push(level);
    }
    let c = Collector::start().unwrap();
    c.push(Scripted::status(400));
    SEEN.lock().clear();
    assert_eq!(ffi::tel_set_logger(Some(sink), 3, std::ptr::null_mut()), 0);
    init_ok(&config(&c, None, json!({})));
    log_ok("Logger.Levels", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(shutdown(1000), 0);
    let seen = SEEN.lock().clone();
    assert!(seen.contains(&3), "the rejection's info line: {seen:?}");
    assert!(
        seen.iter().all(|l| *l <= 3),
        "nothing above max_level: {seen:?}"
    );
    assert_eq!(ffi::tel_set_logger(Some(sink), 99, std::ptr::null_mut()), 0);
    assert_eq!(ffi::tel_set_logger(None, -3, std::ptr::null_mut()), 0);
}
