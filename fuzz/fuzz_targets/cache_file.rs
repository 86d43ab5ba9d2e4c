//! A cache file as another process (or a crash, or a hostile user) may have left it: any
//! bytes, read through `Cache::inspect`, then claimed and persisted back. The entries read are
//! exactly the lines an independent reading of the format accepts, in order; a claim takes
//! them all and leaves no entry behind; persisting them back restores them.
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

/// The format of docs/cache.md, read independently: one envelope a line; a line counts when it
/// is UTF-8, starts with `{"ver":"4.0"`, names this tenant's iKey and is one JSON value.
fn expected(data: &[u8]) -> Vec<String> {
    let ikey = format!("\"iKey\":\"o:{TENANT}\"");
    let mut lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    if data.ends_with(b"\n") || data.is_empty() {
        lines.pop();
    }
    lines
        .into_iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| l.starts_with("{\"ver\":\"4.0\"") && l.contains(&ikey))
        .filter(|l| serde_json::from_str::<serde::de::IgnoredAny>(l).is_ok())
        .map(str::to_owned)
        .collect()
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
    let want = expected(data);
    let read = cache.inspect().expect("a regular file always reads");
    assert_eq!(read, want);

    let (claimed, change) = cache.claim(usize::MAX, usize::MAX, &|_| false).unwrap();
    assert_eq!(claimed, want);
    assert_eq!(change.evicted, 0);
    assert!(
        cache.inspect().unwrap().is_empty(),
        "a claim leaves nothing behind"
    );

    let lines: Vec<&str> = claimed.iter().map(String::as_str).collect();
    cache
        .persist(&lines, Instant::now() + Duration::from_secs(5))
        .unwrap();
    assert_eq!(cache.inspect().unwrap(), want);
    cache.close();
    let _ = std::fs::remove_file(&path);
});
