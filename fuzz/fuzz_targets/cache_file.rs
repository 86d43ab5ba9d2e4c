//! A cache file as another process (or a crash, or a hostile user) may have left it: any
//! bytes, read through `Cache::inspect`, then claimed and persisted back. The entries read are
//! lines of the file, in order, each an envelope of this tenant; a claim takes entries read
//! and leaves none of them behind; persisting them puts them back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tel::cache::{Cache, CacheFiles};

const TENANT: &str = "fuzztenant";

/// One folder per process, on tmpfs when there is one.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = ["/dev/shm"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let d = base.join(format!("tel-fuzz-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// The input's lines as the format of docs/cache.md delimits them (the last may lack its newline).
fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if data.ends_with(b"\n") || data.is_empty() {
        lines.pop();
    }
    lines
}

/// Whether `found` appears in `within` in the same order (each once).
fn in_order(found: &[String], within: &[&[u8]]) -> bool {
    let mut rest = within.iter();
    found
        .iter()
        .all(|f| rest.by_ref().any(|l| *l == f.as_bytes()))
}

/// What every entry read must be, whatever else the reader decides: one of the file's lines,
/// an envelope (`{"ver":"4.0"` first, as the library writes it) that is one JSON object naming
/// this tenant's iKey.
fn check_entry(line: &str) {
    assert!(line.starts_with("{\"ver\":\"4.0\""), "{line:.200}");
    assert!(!line.contains('\n'));
    serde_json::from_str::<serde::de::IgnoredAny>(line).expect("one JSON value");
    assert!(line.contains(&format!("\"o:{TENANT}\"")), "{line:.200}");
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("f.cache");
    std::fs::write(&path, data).unwrap();
    // No age limit and no size bound: this target is about reading, not eviction.
    let mut cache = Cache::new(
        CacheFiles::new(path.clone()),
        TENANT,
        u64::MAX,
        u64::MAX / 1000,
    );
    let read = match cache.inspect() {
        Ok(read) => read,
        Err(_) => {
            // Not a cache file (or more of other tenants than the cache may hold): refused, and
            // left exactly as it was, by the claim too.
            let _ = cache.claim(usize::MAX, usize::MAX, &|_| false);
            assert_eq!(std::fs::read(&path).unwrap(), data, "left untouched");
            cache.close();
            return;
        }
    };
    let input = lines(data);
    assert!(
        in_order(&read, &input),
        "entries are the file's lines, in order"
    );
    read.iter().for_each(|l| check_entry(l));

    // A claim takes what is sendable of them (it drops what tel_log would have refused) and
    // leaves none of it behind; persisting the claimed lines puts them back.
    let (claimed, _) = cache.claim(usize::MAX, usize::MAX, &|_| false).unwrap();
    assert!(in_order(
        &claimed,
        &read.iter().map(|l| l.as_bytes()).collect::<Vec<_>>()
    ));
    let left = cache.inspect().unwrap();
    assert!(
        claimed.iter().all(|c| !left.contains(c)),
        "claimed, so gone"
    );
    let lines: Vec<&str> = claimed.iter().map(String::as_str).collect();
    cache
        .persist(&lines, Instant::now() + Duration::from_secs(5))
        .unwrap();
    let back = cache.inspect().unwrap();
    assert!(
        claimed.iter().all(|c| back.contains(c)),
        "persisted, so back"
    );
    cache.close();
    let _ = std::fs::remove_file(&path);
});
