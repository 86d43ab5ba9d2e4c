//! The C boundary itself: NULL and invalid UTF-8 in every pointer argument, whatever the state
//! of the session; snprintf-style buffers; the per-thread last error; the status each call
//! answers before, during and after a session; the version string.

mod common;

use common::*;
use serde_json::json;
use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};
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
fn null_in_every_pointer_argument() {
    let _s = serial();
    let c = Collector::start().unwrap();
    for live in [false, true] {
        if live {
            init_ok(&config(&c, None, json!({})));
        }
        unsafe {
            assert_eq!(ffi::tel_init(null()), 1);
            assert!(last_error().contains("config_json is NULL"));
            assert_eq!(ffi::tel_log(null(), null()), 1);
            let props = CString::new("{}").unwrap();
            assert_eq!(ffi::tel_log(null(), props.as_ptr()), 1);
            let name = CString::new("Null.Props").unwrap();
            // NULL properties mean `{}`.
            assert_eq!(
                ffi::tel_log(name.as_ptr(), null()),
                if live { 0 } else { 4 }
            );
            // snprintf rules: NULL or zero-length buffers are not written, the length is told.
            let n = ffi::tel_stats_json(null_mut(), 0);
            assert!(n > 0);
            assert_eq!(ffi::tel_stats_json(null_mut(), 4096), n);
            let mut one = [0x55u8; 4];
            assert_eq!(ffi::tel_stats_json(one.as_mut_ptr().cast(), 0), n);
            assert_eq!(one, [0x55; 4], "a zero-length buffer is not touched");
            assert_eq!(ffi::tel_stats_json(one.as_mut_ptr().cast(), 1), n);
            assert_eq!(
                one,
                [0, 0x55, 0x55, 0x55],
                "a 1-byte buffer gets the NUL only"
            );
            let m = ffi::tel_last_error(null_mut(), 0);
            assert_eq!(ffi::tel_last_error(null_mut(), 100), m);
            assert!(!ffi::tel_version().is_null());
            // A NULL callback restores the default sink; user data may be NULL.
            assert_eq!(ffi::tel_set_logger(None, 5, null_mut()), 0);
            assert_eq!(ffi::tel_set_logger(None, 0, null_mut()), 0);
            // Levels outside 0-5 are clamped or refused, never trusted.
            for level in [6, -1, i32::MIN, i32::MAX] {
                assert!([0, 1].contains(&ffi::tel_set_logger(None, level, null_mut())));
            }
            assert_eq!(ffi::tel_set_logger(None, 0, null_mut()), 0);
        }
    }
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted_count(), 1);
    assert_eq!(c.accepted()[0]["data"], json!({}));
}

#[test]
fn invalid_utf8_is_an_invalid_argument() {
    let _s = serial();
    let c = Collector::start().unwrap();
    let bad: [&[u8]; 6] = [
        b"\xff\xfe",
        b"Name\x80",
        b"\xc0\xafName",         // overlong '/'
        b"Nam\xed\xa0\x80e",     // a UTF-16 surrogate
        b"Name\xf4\x90\x80\x80", // above U+10FFFF
        b"Name\xe2\x82",         // truncated sequence
    ];
    for b in bad {
        assert_eq!(init_raw(b), 1, "{b:?}");
        assert!(last_error().contains("UTF-8"), "{}", last_error());
    }
    init_ok(&config(&c, None, json!({})));
    for b in bad {
        assert_eq!(log_raw(b, None), 1, "{b:?}");
        assert_eq!(log_raw(b"Good.Name", Some(b)), 1, "{b:?}");
        let mut props = b"{\"k\":\"".to_vec();
        props.extend_from_slice(b);
        props.extend_from_slice(b"\"}");
        assert_eq!(log_raw(b"Good.Name", Some(&props)), 1, "{b:?}");
    }
    // Valid UTF-8 that is not a valid event name is an invalid event, not an argument error.
    assert_eq!(log("Ünïcödé.Name", None), 3);
    assert_eq!(log("Name\u{200b}Zero", None), 3);
    // Non-ASCII inside properties is fine and arrives intact.
    log_ok("Utf8.Props", Some(r#"{"s":"żółć 🦀 \u0000 \ud83e\udd80"}"#));
    assert_eq!(flush(5000), 0);
    assert_eq!(c.accepted()[0]["data"]["s"], "żółć 🦀 \u{0} 🦀");
    assert_eq!(stat("logged"), 1);
    assert_conserved();
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
        "dropped_consent",
        "dropped_sampled",
        "scrubbed",
        "consent",
        "paused",
    ] {
        assert!(s.get(key).is_some(), "stats lack {key}: {s}");
    }
    assert_eq!(s.as_object().unwrap().len(), 22);
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
fn lifecycle_codes() {
    let _s = serial();
    let c = Collector::start().unwrap();
    assert_eq!(log("Before.Init", None), 4);
    assert!(last_error().contains("tel_init"));
    assert_eq!(flush(10), 4);
    assert_eq!(shutdown(10), 4);
    init_ok(&config(&c, None, json!({})));
    assert_eq!(init(&config(&c, None, json!({}))), 5);
    log_ok("During.Session", None);
    assert_eq!(shutdown(5000), 0);
    assert_eq!(log("After.Shutdown", None), 4);
    assert_eq!(stat("sent"), 1, "stats of the last session stay readable");
    init_ok(&config(&c, None, json!({})));
    assert_eq!(stat("sent"), 0, "a new session starts its counters at zero");
    log_ok("Second.Session", None);
    assert_eq!(flush(5000), 0);
    assert_eq!(names(&c.accepted()), ["During.Session", "Second.Session"]);
}

#[test]
fn version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(ffi::tel_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}
