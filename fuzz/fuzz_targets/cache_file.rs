//! A cache file as another process (or a crash, or a hostile user) may have left it: any
//! bytes, read through `Cache::inspect`, then claimed and persisted back. A file whose first
//! line does not begin as an envelope is not a cache: every call refuses it and leaves it as it
//! is. Otherwise the entries read are lines of the file, in order, each this tenant's; a claim
//! takes them all (less those it sets aside as unsendable, which it counts) and leaves no entry
//! behind; persisting the claimed ones back restores them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onecollector_tel_fuzz::scratch_file;
use std::time::{Duration, Instant};
use tel::cache::{Cache, CacheFiles};

const TENANT: &str = "fuzztenant";
const START: &str = "{\"ver\":\"4.0\"";

/// docs/cache.md, read independently: the first line that is not empty decides whether the
/// file is a cache at all.
fn is_a_cache(data: &[u8]) -> bool {
    // From the first byte that is not a newline: a complete first line must begin as an
    // envelope; only a file that ends within those first bytes (a torn write) may be shorter.
    let Some(from) = data.iter().position(|b| *b != b'\n') else {
        return true;
    };
    let rest = &data[from..];
    let n = rest.len().min(START.len());
    rest[..n] == START.as_bytes()[..n]
}

/// Whether `line` may be one of this tenant's entries: it begins as an envelope, and when it
/// parses as a JSON value, its `iKey` is this tenant's.
fn may_be_ours(line: &str) -> bool {
    line.starts_with(START)
        && serde_json::from_str::<serde_json::Value>(line)
            .map_or(true, |v| v["iKey"] == format!("o:{TENANT}"))
        // serde_json's Value keeps the last of duplicate keys, the reader the first iKey.
        || line.matches("\"iKey\"").count() > 1
}

fuzz_target!(|data: &[u8]| {
    let path = scratch_file("f.cache");
    std::fs::write(&path, data).unwrap();
    // No age limit and no size bound: this target is about reading, not eviction.
    let mut cache = Cache::new(
        CacheFiles::new(path.clone()),
        TENANT,
        u64::MAX,
        u64::MAX / 1000,
    );
    if !is_a_cache(data) {
        assert!(cache.inspect().is_err(), "not a cache");
        assert!(cache.claim(usize::MAX, usize::MAX, &|_| false).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), data, "left untouched");
        cache.close();
        let _ = std::fs::remove_file(&path);
        return;
    }
    let read = cache.inspect().expect("a cache file reads");
    let text = String::from_utf8_lossy(data);
    let mut rest = text.as_ref();
    for line in &read {
        assert!(may_be_ours(line), "{line:?}");
        let at = rest
            .find(line.as_str())
            .expect("a line of the file, in order");
        rest = &rest[at + line.len()..];
    }

    let (claimed, change) = cache.claim(usize::MAX, usize::MAX, &|_| false).unwrap();
    assert_eq!(change.evicted, 0);
    assert_eq!(claimed.len() + change.rejected, read.len());
    let mut it = read.iter();
    for line in &claimed {
        assert!(
            it.any(|r| r == line),
            "claimed in order, from what was read"
        );
    }
    assert!(
        cache.inspect().unwrap().is_empty(),
        "a claim leaves nothing behind"
    );

    let lines: Vec<&str> = claimed.iter().map(String::as_str).collect();
    cache
        .persist(&lines, Instant::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(cache.inspect().unwrap(), claimed);
    cache.close();
    let _ = std::fs::remove_file(&path);
});
