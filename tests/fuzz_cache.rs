//! Property-based fuzzing of the cache file reader: files of arbitrary lines (garbage, torn
//! writes, invalid UTF-8, other tenants' envelopes, CR/LF, NUL) mixed with valid envelopes go
//! through `Cache::inspect`, `Cache::claim` and `Cache::persist`. Valid entries come back
//! exactly, in order; garbage is skipped without an error; nothing panics. A file whose first
//! line does not begin as an envelope is not a cache: every call refuses it and leaves it as it is.
//!
//! `PROPTEST_CASES` random cases (128 by default: each touches the disk), the checked-in corpus
//! `tests/fuzz-corpus/cache/` replayed every run (each file is a cache file), failures persisted
//! to `tests/fuzz-corpus/fuzz_cache.regressions`.

#[path = "common/fuzz/mod.rs"]
mod fuzz;

use proptest::prelude::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tel::internals::cache::{Cache, CacheFiles};

const TENANT: &str = "fuzztenant";

fn settings() -> ProptestConfig {
    fuzz::settings("fuzz_cache", 128)
}

fn valid(i: usize) -> String {
    format!(
        r#"{{"ver":"4.0","name":"Fuzz.Event","time":"{}","iKey":"o:{TENANT}","data":{{"i":{i},"s":"a\"b\\c"}}}}"#,
        tel::internals::clock::iso8601(tel::internals::clock::now_ms())
    )
}

#[derive(Debug, Clone)]
enum Line {
    Valid,
    Garbage(Vec<u8>),
}

fn garbage() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..80),
        ".{0,60}".prop_map(String::into_bytes),
        // Another tenant's envelope, a torn one, a wrong version, a bad time, CR at the end.
        Just(br#"{"ver":"4.0","name":"X.Y1","time":"2026-01-01T00:00:00.000Z","iKey":"o:other","data":{}}"#.to_vec()),
        Just(br#"{"ver":"4.0","name":"X.Y1","time":"2026-01-01T00:00:00.000Z","iKey":"o:fuzztenant","da"#.to_vec()),
        Just(br#"{"ver":"3.0","iKey":"o:fuzztenant"}"#.to_vec()),
        Just(br#"{"ver":"4.0","iKey":"o:fuzztenant","time":"yesterday"} trailing"#.to_vec()),
        Just(b"{\"ver\":\"4.0\",\"iKey\":\"o:fuzztenant\"\x00}".to_vec()),
        Just(b"{\"ver\":\"4.0\",\"iKey\":\"o:fuzztenant\",\"x\":\"\xff\"}".to_vec()),
    ]
}

fn lines() -> impl Strategy<Value = Vec<Line>> {
    prop::collection::vec(
        prop_oneof![
            2 => Just(Line::Valid),
            3 => garbage().prop_map(Line::Garbage),
        ],
        0..30,
    )
}

struct TempCache {
    dir: PathBuf,
    cache: Cache,
}

impl TempCache {
    fn new() -> TempCache {
        let dir = std::env::temp_dir().join(format!(
            "tel-fuzz-cache-{}-{}",
            std::process::id(),
            tel::internals::random::u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let files = CacheFiles::new(dir.join("f.cache"));
        let cache = Cache::new(files, TENANT, 64 << 20, 86_400);
        TempCache { dir, cache }
    }
    fn path(&self) -> PathBuf {
        self.dir.join("f.cache")
    }
}

impl Drop for TempCache {
    fn drop(&mut self) {
        self.cache.close();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `lines` as a cache file (the last one torn when `torn`), and checks what the cache
/// makes of it.
fn check_file(lines: &[Line], torn: bool) {
    let t = TempCache::new();
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        match l {
            Line::Valid => {
                let v = valid(i);
                bytes.extend_from_slice(v.as_bytes());
                expected.push(v);
            }
            Line::Garbage(g) => bytes.extend_from_slice(g),
        }
        bytes.push(b'\n');
    }
    if torn {
        bytes.extend_from_slice(br#"{"ver":"4.0","name":"Torn.Line","time":"#);
    }
    std::fs::write(t.path(), &bytes).unwrap();
    let first = bytes.split(|b| *b == b'\n').find(|l| !l.is_empty());
    if first.is_some_and(|l| !l.starts_with(&br#"{"ver":"4.0""#[..l.len().min(12)])) {
        check_not_a_cache(t, &bytes);
    } else {
        check_cache(t, expected);
    }
}

fn check_not_a_cache(mut t: TempCache, bytes: &[u8]) {
    assert!(t.cache.inspect().is_err(), "inspect");
    let extra = valid(1_000_000);
    let deadline = Instant::now() + Duration::from_secs(5);
    assert!(t.cache.persist(&[extra.as_str()], deadline).is_err());
    assert!(t.cache.claim(10_000, 64 << 20, &|_| false).is_err());
    assert_eq!(std::fs::read(t.path()).unwrap(), bytes, "left untouched");
}

fn check_cache(mut t: TempCache, expected: Vec<String>) {
    let seen = t.cache.inspect().expect("a regular file is readable");
    assert_eq!(seen, expected, "inspect");
    // Persisting keeps the valid entries and appends.
    let extra = valid(1_000_000);
    let deadline = Instant::now() + Duration::from_secs(5);
    t.cache.persist(&[extra.as_str()], deadline).unwrap();
    let mut with_extra = expected.clone();
    with_extra.push(extra);
    assert_eq!(t.cache.inspect().unwrap(), with_extra, "persist");
    // Claiming takes them all, in order, and leaves nothing behind.
    let (claimed, change) = t.cache.claim(10_000, 64 << 20, &|_| false).unwrap();
    assert_eq!(claimed, with_extra, "claim");
    assert_eq!(change.evicted, 0);
    assert!(t.cache.inspect().unwrap().is_empty());
    t.cache.release_claim();
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn cache_files_of_mixed_lines(lines in lines(), torn in any::<bool>()) {
        check_file(&lines, torn);
    }
}

#[test]
fn cache_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus/cache");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for path in files {
        let t = TempCache::new();
        std::fs::copy(&path, t.path()).unwrap();
        // Corpus files hold no valid entry of this tenant (their times are old or their
        // tenant is another): every line must be skipped quietly.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // A file that does not begin as a cache is refused as a whole.
            let Ok(seen) = t.cache.inspect() else { return };
            assert!(
                seen.iter().all(|l| l.contains(TENANT)),
                "{}: {seen:?}",
                path.display()
            );
        }));
        assert!(r.is_ok(), "{}", path.display());
    }
}
