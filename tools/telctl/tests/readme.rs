//! The transcripts of tools/telctl/README.md are the output of the commands they show, run by
//! this test, so they cannot go stale.
//!
//! Each transcript block is preceded by a comment `<!-- transcript: N -->` (or `N serve`, or
//! `N accepted.ndjson`): N is its place in one session that runs the blocks in that order,
//! against one `telctl serve --record accepted.ndjson`, with the environment the README
//! describes (`TEL_CACHE_DIR`, `TEL_IKEY`). A commands block has its `$` lines run as written
//! (`sh -c`, from the session's folder, `telctl` this build); a `serve` block shows the serve's
//! output so far (its first requests, the README's own `[...]` line, then from the first
//! `App.Started` on); an `accepted.ndjson` block the last three lines of the record.
//!
//! `cargo test -p telctl --test readme` compares the README with a fresh session, with the
//! parts that differ from run to run made equal (times, ids, ports, durations, sizes, the
//! kernel version); anything else, the version of the library included, must match.
//! `TELCTL_README_WRITE=1` (see `tools/telctl/readme-transcripts.sh`) writes the fresh output
//! into the README instead, with the serve's port shown as 48080 and the session's folder as
//! /tmp/tel-readme/run, as the README's setup says.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::TempDir;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
const PORT_SHOWN: &str = "127.0.0.1:48080";
const RUN_DIR_SHOWN: &str = "/tmp/tel-readme/run";
const KEY: &str = "abc123-0000-4000-8000-000000000001";
const WRITE: &str = "TELCTL_README_WRITE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commands,
    Serve,
    Record,
}

/// One transcript block: the lines between its fences (`open` and `close` are their indexes).
#[derive(Debug)]
struct Block {
    step: u32,
    kind: Kind,
    open: usize,
    close: usize,
}

fn blocks(lines: &[&str]) -> Vec<Block> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(directive) = lines[i]
            .trim()
            .strip_prefix("<!-- transcript:")
            .and_then(|d| d.strip_suffix("-->"))
        else {
            i += 1;
            continue;
        };
        let mut words = directive.split_whitespace();
        let step: u32 = words
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("README line {}: no step number", i + 1));
        let kind = match words.next() {
            None => Kind::Commands,
            Some("serve") => Kind::Serve,
            Some("accepted.ndjson") => Kind::Record,
            Some(other) => panic!("README line {}: unknown transcript kind {other}", i + 1),
        };
        let open = (i + 1..lines.len())
            .find(|&j| lines[j].starts_with("```"))
            .unwrap_or_else(|| panic!("README line {}: no block follows", i + 1));
        assert_eq!(lines[open], "```text", "README line {}", open + 1);
        let close = (open + 1..lines.len())
            .find(|&j| lines[j] == "```")
            .unwrap_or_else(|| panic!("README line {}: the block is not closed", open + 1));
        found.push(Block {
            step,
            kind,
            open,
            close,
        });
        i = close + 1;
    }
    found
}

/// The session: its folder, `telctl serve` and where its output goes.
struct Session {
    dir: TempDir,
    bin: PathBuf,
    serve: Child,
    port: u16,
}

impl Session {
    fn start() -> Session {
        let dir = TempDir::new("readme");
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_telctl"));
        let out = std::fs::File::create(dir.path().join("serve.out")).unwrap();
        let serve = Command::new(&bin)
            .args(["serve", "--port", "0", "--record", "accepted.ndjson"])
            .arg("--exit-on-stdin-eof")
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut session = Session {
            dir,
            bin,
            serve,
            port: 0,
        };
        let first = session.wait_for(|text| text.contains('\n'));
        let endpoint = first
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("listening on http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("telctl serve said {first:?}"));
        session.port = endpoint.split('/').next().unwrap().parse().unwrap();
        session
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The serve's output once `done` says it is complete (10 s at most).
    fn wait_for(&self, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(self.path().join("serve.out")).unwrap_or_default();
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "telctl serve printed {text:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs one `$` line as written; its output with the exit status as the README shows it.
    fn run(&self, command: &str) -> String {
        let real = command.replace(PORT_SHOWN, &format!("127.0.0.1:{}", self.port));
        let mut path = self.bin.parent().unwrap().as_os_str().to_owned();
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("exec 2>&1; {real}"))
            .current_dir(self.path())
            .stdin(Stdio::null())
            .env("PATH", path)
            .env("TEL_CACHE_DIR", self.path().join("cache"))
            .env("TEL_IKEY", KEY);
        for name in [
            "TEL_LOG",
            "TEL_DISABLE",
            "DO_NOT_TRACK",
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
            "COLUMNS",
        ] {
            sh.env_remove(name);
        }
        let output = sh.output().unwrap();
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if command.starts_with("telctl ") {
            text.push_str(&format!("[exit {}]\n", output.status.code().unwrap_or(-1)));
        }
        text
    }

    /// The serve's output once it has printed every request the collector received.
    fn serve_output(&self) -> String {
        let requests = control_stats(self.port)["requests"].as_u64().unwrap();
        let summary = format!("= {requests} request");
        self.wait_for(|text| text.lines().any(|l| l.starts_with(&summary)))
    }

    /// As the README shows it: the serve's port as 48080, the session's folder as the one the
    /// README's setup names.
    fn shown(&self, text: &str) -> String {
        text.replace(
            &format!("127.0.0.1:{}", self.port),
            PORT_SHOWN.trim_end_matches('/'),
        )
        .replace(self.path().to_str().unwrap(), RUN_DIR_SHOWN)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.serve.stdin.take());
        let _ = self.serve.wait();
    }
}

/// `GET /_emulator/stats` of the serve.
fn control_stats(port: u16) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET /_emulator/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap()
}

/// The block's new body, from the session at this point.
fn produce(session: &Session, kind: Kind, old: &[&str]) -> String {
    match kind {
        Kind::Commands => {
            let mut out = String::new();
            for command in old.iter().filter_map(|l| l.strip_prefix("$ ")) {
                out.push_str(&format!("$ {command}\n"));
                out.push_str(&session.run(command));
            }
            out
        }
        Kind::Record => {
            let record = std::fs::read_to_string(session.path().join("accepted.ndjson")).unwrap();
            let lines: Vec<&str> = record.lines().collect();
            lines[lines.len().saturating_sub(3)..]
                .iter()
                .map(|l| format!("{l}\n"))
                .collect()
        }
        Kind::Serve => {
            // The listening line and the first two requests (three lines each), the README's
            // own line for what is left out, then everything from the first `send` on.
            let text = session.serve_output();
            let lines: Vec<&str> = text.lines().collect();
            let mut out: Vec<&str> = lines.iter().take(7).copied().collect();
            out.extend(old.iter().filter(|l| l.starts_with("[...")));
            let from = lines
                .iter()
                .position(|l| l.contains("names=[App.Started]"))
                .expect("the serve shows the first send");
            out.extend(&lines[from..]);
            out.iter().map(|l| format!("{l}\n")).collect()
        }
    }
}

#[test]
fn the_readme_transcripts_are_what_the_commands_print() {
    let readme = std::fs::read_to_string(README).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let found = blocks(&lines);
    assert!(found.len() >= 10, "{found:?}");
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by_key(|&i| found[i].step);

    let session = Session::start();
    let mut produced = vec![String::new(); found.len()];
    for i in order {
        let block = &found[i];
        let old = &lines[block.open + 1..block.close];
        produced[i] = session.shown(&produce(&session, block.kind, old));
    }

    if std::env::var_os(WRITE).is_some_and(|v| v == "1") {
        let mut out = String::new();
        let mut next = 0;
        for (block, body) in found.iter().zip(&produced) {
            for line in &lines[next..=block.open] {
                out.push_str(line);
                out.push('\n');
            }
            out.push_str(body);
            next = block.close;
        }
        for line in &lines[next..] {
            out.push_str(line);
            out.push('\n');
        }
        std::fs::write(README, out).unwrap();
        eprintln!("{README}: {} transcripts written", found.len());
        return;
    }

    let mut stale = Vec::new();
    for (block, body) in found.iter().zip(&produced) {
        let old: String = lines[block.open + 1..block.close]
            .iter()
            .map(|l| format!("{l}\n"))
            .collect();
        let (want, got) = (normalize(&old), normalize(body));
        if want != got {
            let first = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
            stale.push(format!(
                "README line {} (transcript {}), line {} of the block:\n  README: {:?}\n  now:    {:?}",
                block.open + 1,
                block.step,
                first + 1,
                want.lines().nth(first).unwrap_or("(end)"),
                got.lines().nth(first).unwrap_or("(end)"),
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "tools/telctl/README.md is stale; run tools/telctl/readme-transcripts.sh to write what \
         the commands print now:\n{}",
        stale.join("\n")
    );
}

/// `text` with what differs from one run to the next made equal: times, ids, the ports and
/// folders of `telctl demo`, durations, backoff delays, sizes and the kernel version.
fn normalize(text: &str) -> String {
    let mut text = replace_shape(text, "dddd-dd-ddTdd:dd:dd.dddZ", "<time>");
    text = replace_shape(&text, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", "<uuid>");
    for prefix in ["127.0.0.1:", "telctl-demo-", "again in ", "\"bytes\":"] {
        text = replace_number_after(&text, prefix);
    }
    text = replace_value_after(&text, "\"os\":{\"name\":\"Linux\",\"ver\":\"");
    text = replace_sizes(&text);
    replace_durations(&text)
}

/// Every run of `text` of `shape`'s form (`d` a digit, `x` a lower-case hex digit, anything
/// else itself) replaced by `with`.
fn replace_shape(text: &str, shape: &str, with: &str) -> String {
    let fits = |window: &[u8]| {
        window.iter().zip(shape.bytes()).all(|(&c, s)| match s {
            b'd' => c.is_ascii_digit(),
            b'x' => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
            s => c == s,
        })
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if i + shape.len() <= bytes.len() && fits(&bytes[i..i + shape.len()]) {
            out.push_str(with);
            i += shape.len();
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The digits following each `prefix` replaced by `N`.
fn replace_number_after(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        out.push_str(&rest[..at + prefix.len()]);
        if digits > 0 {
            out.push('N');
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The JSON string value following each `prefix` (which ends with its opening quote) replaced.
fn replace_value_after(text: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        let after = &rest[at + prefix.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&rest[..at + prefix.len()]);
        out.push_str("<value>");
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// `791 B`, `1.5 KiB`: the number replaced (the envelope's length follows the kernel version).
fn replace_sizes(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let words: Vec<&str> = line.split(' ').collect();
        let mut rebuilt = Vec::with_capacity(words.len());
        for (i, word) in words.iter().enumerate() {
            let unit = words.get(i + 1).map(|w| w.trim_end());
            let number = !word.is_empty() && word.chars().all(|c| c.is_ascii_digit() || c == '.');
            if number && matches!(unit, Some("B" | "KiB" | "MiB")) {
                rebuilt.push("N");
            } else {
                rebuilt.push(word);
            }
        }
        out.push_str(&rebuilt.join(" "));
    }
    out
}

/// `(0 s ago)`, `(in 59 min)`, `(in 1 h 5 min)`: how far an instant is from now.
fn replace_durations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find(')') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inside = &after[..close];
        let bare = inside.trim_start_matches("in ").trim_end_matches(" ago");
        let is_duration = !bare.is_empty()
            && bare.starts_with(|c: char| c.is_ascii_digit())
            && bare.split(' ').all(|w| {
                w.chars().all(|c| c.is_ascii_digit()) || matches!(w, "s" | "min" | "h" | "d")
            });
        if is_duration {
            out.push_str("(<when>)");
        } else {
            out.push('(');
            out.push_str(inside);
            out.push(')');
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_normalisation_keeps_what_must_match() {
    let a = r#"time=2026-11-28T05:03:11.313Z sesId":"dcd8ddc2-82d7-4b87-b3a5-d007f1a26745" http://127.0.0.1:34763/ "os":{"name":"Linux","ver":"6.18"} 2 in 791 B (0 s ago) (in 59 min) again in 1000 ms sdk-version="onecollector-tel-0.1.0" (os error 111)"#;
    let b = r#"time=2026-12-06T01:00:00.000Z sesId":"00000000-0000-4000-8000-000000000000" http://127.0.0.1:4/ "os":{"name":"Linux","ver":"6.1.0-28"} 2 in 801 B (3 s ago) (in 1 h 5 min) again in 1107 ms sdk-version="onecollector-tel-0.1.0" (os error 111)"#;
    assert_eq!(normalize(a), normalize(b));
    // The version of the library is not normalised: a transcript of another version is stale.
    assert_ne!(
        normalize(a),
        normalize(&b.replace("tel-0.1.0", "tel-0.2.0"))
    );
    assert_ne!(normalize("3 entries"), normalize("2 entries"));
    assert_ne!(normalize("(os error 111)"), normalize("(os error 110)"));
}
