//! Shared by the fuzz targets (tests/fuzz_*.rs): proptest settings, the checked-in corpus, and
//! the contract they check ([`oracle`], which the libFuzzer targets of fuzz/ check too). Each
//! of those files includes it as `#[path = "common/fuzz/mod.rs"] mod fuzz;`.
#![allow(dead_code)]

pub mod oracle;

use proptest::prelude::ProptestConfig;
use proptest::test_runner::FileFailurePersistence;

/// `PROPTEST_CASES` cases (else `default_cases`); failures persist in
/// `tests/fuzz-corpus/<target>.regressions`, replayed on every run.
pub fn settings(target: &'static str, default_cases: u32) -> ProptestConfig {
    let persisted: &'static str =
        Box::leak(format!("tests/fuzz-corpus/{target}.regressions").into_boxed_str());
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(persisted))),
        ..ProptestConfig::default()
    }
}

/// Every file of `tests/fuzz-corpus/<target>/`, as bytes.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target);
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus {}", dir.display());
    v
}
