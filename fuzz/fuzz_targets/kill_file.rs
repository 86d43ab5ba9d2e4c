//! The kill window a process records beside the cache file, as any bytes: `KillSwitch::load`
//! honours exactly a JSON object naming this tenant with an `until_ms` in the future and no
//! further than the longest window; anything else (corrupt, another tenant, implausible) is
//! ignored.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onecollector_tel_fuzz::scratch_file;
use tel::kill::{KillSwitch, MAX_KILL_SECONDS};

const TENANT: &str = "fuzztenant";

/// The window an independent reading of the file gives, if any.
fn expected(data: &[u8], now: u64) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_slice(&data[..data.len().min(4096)]).ok()?;
    (v.get("tenant")?.as_str()? == TENANT).then_some(())?;
    let until = v.get("until_ms")?.as_u64()?;
    (until > now && until <= now + (MAX_KILL_SECONDS + 60) * 1000).then_some(until)
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("f.cache.kill");
    std::fs::write(&path, data).unwrap();
    let before = tel::clock::now_ms();
    let k = KillSwitch::load(TENANT, Some(path));
    let until = k.until_ms();
    let after = tel::clock::now_ms();
    if until != 0 {
        assert!(until > before && until <= after + (MAX_KILL_SECONDS + 60) * 1000);
    }
    // Only where the clock's movement during the load cannot change the answer.
    let (a, b) = (expected(data, before), expected(data, after));
    if a == b {
        assert_eq!(until, a.unwrap_or(0), "{:?}", String::from_utf8_lossy(data));
    }
});
