//! `src/sys/platform/windows.rs` compiled on its own, for its `#[cfg(test)]` tests (see Cargo.toml).
#![cfg(windows)]

#[path = "../../../src/sys/platform/windows.rs"]
pub mod windows;
