//! Child processes: this test binary run again for one of its tests, in a role
//! (`TEL_TEST_ROLE`), for what spans processes (a SIGKILL, a lock or a cache another process
//! holds, what the next process reads). The child side of a test checks [`child_role`]; the
//! parent starts it with [`run_child`], [`run_child_within`], [`spawn_child`] or a [`Kid`].
//!
//! A child never inherits the debug builds' gates (`TEL_TEST_CLAIM_GATE`,
//! `TEL_TEST_CRITICAL_GATE`, `TEL_TEST_KILL_SLEEP_GATE`) from a test running beside the one that
//! starts it; a test that wants a gate in its child passes it in `env`.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Variables a child gets only from the `env` it is given.
const NOT_INHERITED: &[&str] = &[
    "TEL_TEST_CLAIM_GATE",
    "TEL_TEST_CRITICAL_GATE",
    "TEL_TEST_KILL_SLEEP_GATE",
];

/// This binary, to run its test `test` alone (ignored or not), with `env`.
fn command(test: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        test,
        "--exact",
        "--nocapture",
        "--test-threads=1",
        "--include-ignored",
    ]);
    for name in NOT_INHERITED {
        cmd.env_remove(name);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the test named `test` of this test binary in a child process with `env`, and returns
/// its output.
pub fn run_child(test: &str, env: &[(&str, String)]) -> Output {
    command(test, env).output().unwrap()
}

/// Starts the test `test` in a child process with `env`, its standard output piped.
pub fn spawn_child(test: &str, env: &[(&str, String)]) -> Child {
    command(test, env).stdout(Stdio::piped()).spawn().unwrap()
}

/// Runs the test `test` as a child process with `env` (and without `TEL_LOG`, unless `env` sets
/// it), killing it past `limit`; returns its output and whether it finished in time.
pub fn run_child_within(test: &str, env: &[(&str, String)], limit: Duration) -> (Output, bool) {
    let mut cmd = command(test, &[]);
    cmd.env_remove("TEL_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let reader = |mut from: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = from.read_to_end(&mut v);
            v
        })
    };
    let out = reader(Box::new(child.stdout.take().unwrap()));
    let err = reader(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut in_time = true;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            in_time = false;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (output, in_time)
}

/// The environment of a child in `role`, with `extra` variables.
pub fn role_env<'a>(role: &str, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut env = vec![("TEL_TEST_ROLE", role.to_owned())];
    env.extend_from_slice(extra);
    env
}

/// Runs the test `test` as a child process in `role` (see [`role_env`]) and returns its output
/// once it has succeeded within `limit`.
pub fn run_role_ok(test: &str, role: &str, extra: &[(&str, String)], limit: Duration) -> Output {
    let (out, in_time) = run_child_within(test, &role_env(role, extra), limit);
    assert!(in_time && out.status.success(), "{}", describe(&out));
    out
}

/// The role a child process was started for (`TEL_TEST_ROLE`), if any.
pub fn child_role() -> Option<String> {
    std::env::var("TEL_TEST_ROLE").ok()
}

/// The configuration a child was handed in `TEL_TEST_CONFIG`.
pub fn child_config() -> Value {
    serde_json::from_str(&std::env::var("TEL_TEST_CONFIG").unwrap()).unwrap()
}

/// The value a child printed as `KEY=value` (the first one may follow the harness's
/// "test NAME ... " on the same line).
pub fn printed(out: &Output, key: &str) -> Option<String> {
    value_in(String::from_utf8_lossy(&out.stdout).lines(), key)
}

fn value_in<'a>(mut lines: impl Iterator<Item = &'a str>, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    lines.find_map(|l| l.split(&prefix).nth(1).map(|v| v.trim().to_owned()))
}

/// The stats a child that succeeded printed as `STATS=<json>`.
pub fn printed_stats(out: &Output) -> Value {
    assert!(out.status.success(), "the child failed: {}", describe(out));
    let json = printed(out, "STATS").unwrap_or_else(|| panic!("no stats: {}", describe(out)));
    serde_json::from_str(&json).unwrap()
}

/// A child's status and output, for a failure message.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The child side's end: prints `READY` and waits to be killed.
pub fn ready_until_killed() -> ! {
    println!("READY");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

/// The child side of a test that needs another process to hold the cache lock (as one
/// mid-write would): takes the lock of the file `TEL_TEST_LOCK` names, then
/// [`ready_until_killed`].
pub fn hold_the_cache_lock() -> ! {
    let lock = std::env::var("TEL_TEST_LOCK").unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)
        .unwrap();
    f.lock().unwrap();
    ready_until_killed()
}

/// The child side's end in the fork tests: forks a grandchild that lives on (it pauses until
/// it is killed), prints its pid as `GRANDCHILD`, then `READY`, and waits to be killed.
///
/// `READY` waits until the grandchild has run: the fork handlers run in the new process
/// before `fork` returns there, and a process the scheduler has not run yet still shares the
/// parent's descriptors (and their locks). The test checks what the handlers did, not whether
/// the grandchild was scheduled before the parent died.
#[cfg(unix)]
pub fn fork_until_killed() -> ! {
    let mut pipe = [0; 2];
    // SAFETY: two descriptors into a local array.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: the grandchild only makes async-signal-safe calls (write, pause).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: one byte from a static buffer into the pipe.
        unsafe { libc::write(pipe[1], b"r".as_ptr().cast(), 1) };
        loop {
            // SAFETY: async-signal-safe.
            unsafe { libc::pause() };
        }
    }
    let mut byte = 0u8;
    // SAFETY: closing this process's write end; reading one byte into a local.
    let n = unsafe {
        libc::close(pipe[1]);
        libc::read(pipe[0], (&mut byte as *mut u8).cast(), 1)
    };
    assert_eq!(n, 1, "the grandchild never ran");
    println!("GRANDCHILD={pid}");
    ready_until_killed()
}

/// A child process in a role, talked to through its standard input and output while it runs;
/// killed when dropped, so that a test that fails leaves no child behind.
pub struct Kid {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    printed: Vec<String>,
}

impl Kid {
    /// Starts the test `test` in `role` with `env` (without `TEL_LOG`, unless `env` sets it).
    pub fn start(test: &str, role: &str, env: &[(&str, String)]) -> Kid {
        let mut cmd = command(test, &[]);
        cmd.env_remove("TEL_LOG")
            .env("TEL_TEST_ROLE", role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        Kid {
            stdin: child.stdin.take(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            child,
            printed: Vec::new(),
        }
    }

    /// Reads what the child prints until a line ending with `marker`.
    pub fn until(&mut self, marker: &str) {
        loop {
            let mut line = String::new();
            if self.stdout.read_line(&mut line).unwrap() == 0 {
                let _ = self.child.wait();
                panic!("the child ended before {marker}: {:#?}", self.printed);
            }
            let line = line.trim_end().to_owned();
            let done = line.ends_with(marker);
            self.printed.push(line);
            if done {
                return;
            }
        }
    }

    /// Every line the child printed so far.
    pub fn printed(&self) -> &[String] {
        &self.printed
    }

    /// The value printed as `KEY=value`.
    pub fn value(&self, key: &str) -> String {
        value_in(self.printed.iter().map(String::as_str), key)
            .unwrap_or_else(|| panic!("no {key} in {:#?}", self.printed))
    }

    /// Writes `line` to the child's standard input.
    pub fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    /// SIGKILL, and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
