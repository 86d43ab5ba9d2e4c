//! The configuration `tel_init` reads (`Config::from_json`): any text. An acceptance is a
//! configuration the contract allows; a refusal is `TEL_ERR_INVALID_CONFIG` with a short
//! message that never carries the full key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onecollector_tel_fuzz::oracle::{check_config, full_key_in};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return; // tel_init refuses invalid UTF-8 before parsing
    };
    check_config(text, full_key_in(text).as_deref());
});
