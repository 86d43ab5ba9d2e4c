//! Running the real `telctl` binary the way a user or a script does, in a clean environment
//! with its own cache folder.

#![allow(dead_code)] // each test file uses its own part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const KEY: &str = "abc123-0000-4000-8000-00000000f00d";
pub const TENANT: &str = "abc123";

/// What one run of `telctl` produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The output must never show the full key, whatever the command did.
    pub fn assert_no_full_key(&self) -> &Self {
        assert!(
            !self.stdout.contains(KEY) && !self.stderr.contains(KEY),
            "the full key was printed:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        // Not a terminal: no colour codes.
        assert!(!self.stdout.contains('\x1b'), "{}", self.stdout);
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", self.stdout))
    }
}

/// A folder of its own under the system's temporary folder, removed at the end.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "telctl-test-{tag}-{}-{:016x}",
            std::process::id(),
            tel::internals::random::u64()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `telctl args` with stdin closed, the cache folder `cache_dir` (`TEL_CACHE_DIR`), and
/// none of the variables that change its behaviour unless `env` sets them.
pub fn telctl(cache_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_telctl"));
    command
        .args(args)
        .stdin(Stdio::null())
        .env("TEL_CACHE_DIR", cache_dir);
    for name in [
        "TEL_IKEY",
        "TEL_DISABLE",
        "DO_NOT_TRACK",
        "TEL_LOG",
        "NO_COLOR",
        "CLICOLOR",
        "CLICOLOR_FORCE",
    ] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().unwrap();
    Run {
        code: output.status.code().expect("telctl exited by a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A loopback endpoint where nothing listens (the port was free a moment ago).
pub fn dead_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/OneCollector/1.0/")
}
