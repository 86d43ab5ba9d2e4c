//! `telctl audit PATH`: the audit file (the library's `audit_path`, or `TEL_AUDIT`) for a
//! person: one line per event the collector answered, with when, what it answered, the event's
//! name and its data as sent. `--follow` keeps reading as lines are appended, across rotations.

use crate::term::{self, Color, Out};
use clap::Args;
use serde_json::Value;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

pub const EXIT_HELP: &str =
    "Exit status: 0 shown; 1 the file could not be read (without --follow, \
also when it does not exist); 2 usage error. Lines that are not audit records are skipped and \
counted on standard error.";

#[derive(Args)]
pub struct AuditArgs {
    /// The audit file.
    path: PathBuf,
    /// Only events of this exact name.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Keep reading as lines are appended (and after the file is rotated to PATH.1), until
    /// interrupted. A file that does not exist yet is waited for.
    #[arg(long, short = 'f')]
    follow: bool,
}

/// How often `--follow` looks for new lines.
const POLL: Duration = Duration::from_millis(200);

pub fn run(args: AuditArgs) -> ExitCode {
    let out = Out::stdout();
    let mut viewer = Viewer {
        out,
        name: args.name,
        skipped: 0,
    };
    let code = if args.follow {
        viewer.follow(&args.path)
    } else {
        viewer.show(&args.path)
    };
    if viewer.skipped > 0 {
        term::error(
            "audit",
            None,
            &format!(
                "{} skipped: not audit records",
                term::plural(viewer.skipped, "line", "lines")
            ),
        );
    }
    code
}

struct Viewer {
    out: Out,
    name: Option<String>,
    skipped: u64,
}

impl Viewer {
    fn show(&mut self, path: &Path) -> ExitCode {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                term::error(
                    "audit",
                    None,
                    &format!("cannot read {}: {e}", path.display()),
                );
                return ExitCode::from(1);
            }
        };
        let mut reader = BufReader::new(file);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) => return ExitCode::SUCCESS,
                Ok(_) => self.print(line.trim_end_matches(['\n', '\r'])),
                Err(e) => {
                    term::error(
                        "audit",
                        None,
                        &format!("cannot read {}: {e}", path.display()),
                    );
                    return ExitCode::from(1);
                }
            }
        }
    }

    /// Prints what is there, then what is appended. A rotation (the path naming another file)
    /// is noticed by the file's identity; the old file is read to its end first, as a writer
    /// may have appended to it just before the rename.
    fn follow(&mut self, path: &Path) -> ExitCode {
        let mut current: Option<(File, Identity, u64)> = None;
        let mut partial = Vec::new();
        loop {
            if let Some((file, _, offset)) = current.as_mut() {
                if let Err(e) = self.read_appended(file, offset, &mut partial) {
                    term::error(
                        "audit",
                        None,
                        &format!("cannot read {}: {e}", path.display()),
                    );
                    return ExitCode::from(1);
                }
            }
            let now = std::fs::metadata(path).ok().map(|m| identity(&m));
            let replaced = match (&current, now) {
                (None, Some(_)) => true,
                (Some((_, seen, offset)), Some(now)) => now.id != seen.id || now.len < *offset,
                (_, None) => false,
            };
            if replaced {
                if let Some((mut file, _, mut offset)) = current.take() {
                    // The last lines of the old file, now PATH.1.
                    let _ = self.read_appended(&mut file, &mut offset, &mut partial);
                }
                partial.clear();
                if let Ok(file) = File::open(path) {
                    if let Ok(m) = file.metadata() {
                        current = Some((file, identity(&m), 0));
                        continue; // read it at once
                    }
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// Prints the whole lines appended to `file` since `offset`; a line still being written
    /// waits in `partial`.
    fn read_appended(
        &mut self,
        file: &mut File,
        offset: &mut u64,
        partial: &mut Vec<u8>,
    ) -> io::Result<()> {
        file.seek(SeekFrom::Start(*offset))?;
        let mut reader = BufReader::new(&mut *file);
        loop {
            let n = reader.read_until(b'\n', partial)?;
            if n == 0 {
                return Ok(());
            }
            *offset += n as u64;
            if partial.last() == Some(&b'\n') {
                let line = String::from_utf8_lossy(partial).into_owned();
                self.print(line.trim_end_matches(['\n', '\r']));
                partial.clear();
            }
        }
    }

    fn print(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        let Some(record) = Record::parse(line) else {
            self.skipped += 1;
            return;
        };
        if self.name.as_deref().is_some_and(|n| n != record.name) {
            return;
        }
        let outcome = match record.outcome.as_str() {
            "sent" => self.out.paint(Color::Green, "sent    "),
            "rejected" => self.out.paint(Color::Red, "rejected"),
            other => format!("{other:<8}"),
        };
        self.out.line(&format!(
            "{}  {outcome} {:>3}  {:<30} {}",
            tel::internals::clock::iso8601(record.time_ms),
            record.status,
            record.name,
            record.data
        ));
    }
}

/// One line of the audit file.
struct Record {
    time_ms: u64,
    outcome: String,
    status: u64,
    name: String,
    /// The event's `data`, compact, as it was sent.
    data: String,
}

impl Record {
    fn parse(line: &str) -> Option<Record> {
        let v: Value = serde_json::from_str(line).ok()?;
        let event = v.get("event")?;
        Some(Record {
            time_ms: v.get("time_ms")?.as_u64()?,
            outcome: v.get("outcome")?.as_str()?.to_owned(),
            status: v.get("status")?.as_u64()?,
            name: event.get("name")?.as_str()?.to_owned(),
            // As sent: key order and all.
            data: crate::live::raw_member(line, "event")
                .and_then(|e| crate::live::raw_member(e, "data"))
                .map_or_else(
                    || {
                        event
                            .get("data")
                            .map_or_else(|| "{}".to_owned(), Value::to_string)
                    },
                    str::to_owned,
                ),
        })
    }
}

/// What tells a file from the one that replaced it at the same path.
#[derive(Clone, Copy, Debug)]
struct Identity {
    id: (u64, u64),
    len: u64,
}

fn identity(m: &std::fs::Metadata) -> Identity {
    #[cfg(unix)]
    let id = {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    };
    #[cfg(not(unix))]
    let id = (
        m.created()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as u64),
        0,
    );
    Identity { id, len: m.len() }
}
