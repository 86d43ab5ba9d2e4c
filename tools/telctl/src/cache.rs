//! `telctl cache show` and `telctl cache clear`: what waits in a tenant's cache file (see
//! docs/cache.md), and deleting it with the kill state.
//!
//! The file is located as the library locates it and read with the library's reader, which
//! takes no lock and changes nothing. `clear` deletes under the cache lock, as the library's
//! own kill purge does, so a process persisting or replaying at the same moment is not torn.

use crate::term::{self, Color, Out};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{self, BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tel::internals::cache::{Cache, CacheFiles};
use tel::internals::ikey::InstrumentationKey;
use tel::internals::kill::KillSwitch;

pub const SHOW_EXIT_HELP: &str =
    "Exit status: 0 shown (also when there is no cache file); 1 a cache file could not be read; 2 usage error.";
pub const CLEAR_EXIT_HELP: &str = "Exit status: 0 cleared (or nothing to clear); 1 not cleared \
(declined, or the cache lock or a file could not be taken); 2 usage error, or no --yes while \
standard input is not a terminal.";

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Where the cache file is, how many entries and bytes it holds, the oldest and newest
    /// event time, event names with counts, and the kill window if one is active.
    #[command(after_help = SHOW_EXIT_HELP)]
    Show(ShowArgs),
    /// Delete the cached entries and the kill state, after a confirmation (or --yes).
    #[command(after_help = CLEAR_EXIT_HELP)]
    Clear(ClearArgs),
}

/// Which cache file: `--path`, or the tenant's default file (`--ikey`), or every cache file in
/// the default folder (`TEL_CACHE_DIR`, else the per-user cache folder + `tel`).
#[derive(Args)]
pub struct Which {
    /// A cache file, as given to the library's `cache_path`.
    #[arg(long, value_name = "P", conflicts_with = "ikey")]
    path: Option<PathBuf>,
    /// The full instrumentation key (or TEL_IKEY): its tenant's default cache file.
    #[arg(long, value_name = "KEY", env = "TEL_IKEY", hide_env_values = true)]
    ikey: Option<String>,
}

#[derive(Args)]
pub struct ShowArgs {
    #[command(flatten)]
    which: Which,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ClearArgs {
    #[command(flatten)]
    which: Which,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;

pub fn run(command: CacheCommand) -> ExitCode {
    match command {
        CacheCommand::Show(args) => show(args),
        CacheCommand::Clear(args) => clear(args),
    }
}

/// A cache file to look at, with the tenant whose entries count (None: read from the entries,
/// see [`Contents::tenant`]).
struct Target {
    files: CacheFiles,
    tenant: Option<String>,
}

/// The cache files selected by `which`.
struct Selection {
    targets: Vec<Target>,
    /// The key to mask in output, when one was given.
    key: Option<InstrumentationKey>,
    /// The default folder, when it was searched.
    folder: Option<PathBuf>,
}

fn select(which: &Which) -> Result<Selection, String> {
    if let Some(path) = &which.path {
        return Ok(Selection {
            targets: vec![Target {
                files: CacheFiles::new(path.clone()),
                tenant: None,
            }],
            key: None,
            folder: None,
        });
    }
    let no_folder = "no default cache folder on this system: set TEL_CACHE_DIR or give --path";
    if let Some(ikey) = &which.ikey {
        let config = tel::Config::new(ikey).map_err(|e| e.message)?;
        let files = tel::client::cache_files(&config).ok_or(no_folder)?;
        return Ok(Selection {
            targets: vec![Target {
                files,
                tenant: Some(config.ikey.tenant().to_string()),
            }],
            key: Some(config.ikey),
            folder: None,
        });
    }
    let dir = tel::internals::platform::default_cache_dir().ok_or(no_folder)?;
    let names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    // A cache file, or what a tenant has beside one that is gone: a kill window, claims.
    let mut found: Vec<PathBuf> = names
        .iter()
        .filter_map(|name| {
            let end = name
                .find(".cache.kill")
                .or_else(|| name.find(".cache.claim-"));
            let base = match end {
                Some(end) => &name[..end + ".cache".len()],
                None => name.strip_suffix(".cache").map(|_| name.as_str())?,
            };
            Some(dir.join(base))
        })
        .collect();
    found.sort();
    found.dedup();
    Ok(Selection {
        targets: found
            .into_iter()
            .map(|p| Target {
                files: CacheFiles::new(p),
                tenant: None,
            })
            .collect(),
        key: None,
        folder: Some(dir),
    })
}

/// What a cache file holds, as the library would replay it.
struct Contents {
    exists: bool,
    /// The tenant token: the key's (`--ikey`), else the one the entries' envelope `iKey`
    /// names, else the one the kill state beside the file records; None when nothing says.
    /// Never taken from the file's name, which is any name `cache_path` was given.
    tenant: Option<String>,
    entries: Vec<String>,
    file_bytes: u64,
    /// Lines the library skips: unreadable, torn, or of another tenant.
    skipped: usize,
    /// Entries in claim files of sessions that are replaying them right now.
    claimed: usize,
    killed_until_ms: u64,
}

fn inspect(target: &Target) -> io::Result<Contents> {
    let files = &target.files;
    let raw = match std::fs::read(&files.cache) {
        Ok(raw) => Some(raw),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let lines: Vec<&[u8]> = raw
        .as_deref()
        .unwrap_or_default()
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let tenant = target
        .tenant
        .clone()
        .or_else(|| most_common_tenant(&lines))
        .or_else(|| kill_file_tenant(&files.kill));
    let (entries, killed_until_ms) = match &tenant {
        Some(tenant) => (
            Cache::new(files.clone(), tenant, u64::MAX, u64::MAX).inspect()?,
            KillSwitch::load(tenant, Some(files.kill.clone())).until_ms(),
        ),
        // No entry the library could replay names a tenant, and no kill state either.
        None => (Vec::new(), 0),
    };
    Ok(Contents {
        exists: raw.is_some(),
        skipped: lines.len().saturating_sub(entries.len()),
        file_bytes: raw.map_or(0, |r| r.len() as u64),
        claimed: claimed_entries(files),
        killed_until_ms,
        tenant,
        entries,
    })
}

/// The tenant most entries belong to (a file given by `--path` says nothing else about it).
fn most_common_tenant(lines: &[&[u8]]) -> Option<String> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines {
        let Ok(envelope) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        if let Some(tenant) = envelope["iKey"].as_str().and_then(|k| k.strip_prefix("o:")) {
            *counts.entry(tenant.to_string()).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(tenant, _)| tenant)
}

fn kill_file_tenant(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let state: Value = serde_json::from_str(&text).ok()?;
    state["tenant"].as_str().map(str::to_string)
}

/// Lines in the `<cache>.claim-*` files beside the cache: entries live sessions are replaying
/// (or a dead session left, for the next one to take back).
fn claimed_entries(files: &CacheFiles) -> usize {
    let Some(name) = files.cache.file_name() else {
        return 0;
    };
    let prefix = format!("{}.claim-", name.to_string_lossy());
    let Ok(dir) = std::fs::read_dir(&files.dir) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && !name.ends_with(".tmp")
        })
        .filter_map(|e| std::fs::read(e.path()).ok())
        .map(|bytes| {
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum()
}

/// Event names with counts (most frequent first), oldest and newest event time.
fn summarize(entries: &[String]) -> (Vec<(String, usize)>, Option<u64>, Option<u64>) {
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let (mut oldest, mut newest): (Option<u64>, Option<u64>) = (None, None);
    for line in entries {
        let name = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| v["name"].as_str().map(str::to_string))
            .unwrap_or_else(|| "?".to_string());
        *names.entry(name).or_default() += 1;
        if let Some(t) = tel::internals::envelope::envelope_time_ms(line) {
            oldest = Some(oldest.map_or(t, |o| o.min(t)));
            newest = Some(newest.map_or(t, |n| n.max(t)));
        }
    }
    let mut names: Vec<(String, usize)> = names.into_iter().collect();
    names.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    (names, oldest, newest)
}

fn contents_json(target: &Target, c: &Contents) -> Value {
    let (names, oldest, newest) = summarize(&c.entries);
    json!({
        "path": target.files.cache,
        "exists": c.exists,
        "tenant": c.tenant.as_ref().map(|t| format!("o:{t}")),
        "entries": c.entries.len(),
        "bytes": c.file_bytes,
        "oldest_ms": oldest,
        "oldest": oldest.map(tel::internals::clock::iso8601),
        "newest_ms": newest,
        "newest": newest.map(tel::internals::clock::iso8601),
        "names": names.iter().map(|(n, count)| json!({"name": n, "count": count})).collect::<Vec<_>>(),
        "skipped_lines": c.skipped,
        "claimed_by_sessions": c.claimed,
        "kill": (c.killed_until_ms > 0).then(|| json!({
            "until_ms": c.killed_until_ms,
            "until": tel::internals::clock::iso8601(c.killed_until_ms),
            "state_file": target.files.kill,
        })),
    })
}

fn print_contents(out: &Out, target: &Target, c: &Contents) {
    let (names, oldest, newest) = summarize(&c.entries);
    let row = |label: &str, value: String| out.line(&format!("  {label:<13}{value}"));
    out.line(&out.paint(
        Color::Bold,
        &format!("cache file   {}", target.files.cache.display()),
    ));
    row(
        "tenant",
        match &c.tenant {
            Some(tenant) => format!("o:{tenant}"),
            None => "unknown (no entry names one)".to_string(),
        },
    );
    if !c.exists {
        row("entries", "none (the file does not exist)".to_string());
    } else {
        row(
            "entries",
            format!("{} in {}", c.entries.len(), term::bytes(c.file_bytes)),
        );
    }
    if let (Some(oldest), Some(newest)) = (oldest, newest) {
        row("oldest event", term::instant(oldest));
        row("newest event", term::instant(newest));
    }
    if !names.is_empty() {
        let listed: Vec<String> = names
            .iter()
            .map(|(n, count)| format!("{n} x{count}"))
            .collect();
        row("events", listed.join(", "));
    }
    if c.skipped > 0 {
        row(
            "skipped",
            format!(
                "{} (unreadable, torn, or of another tenant)",
                term::plural(c.skipped as u64, "line", "lines")
            ),
        );
    }
    if c.claimed > 0 {
        row(
            "replaying",
            format!(
                "{} in claim files of running (or dead) sessions",
                term::plural(c.claimed as u64, "entry", "entries")
            ),
        );
    }
    if c.killed_until_ms > 0 {
        row(
            "kill window",
            out.paint(
                Color::Red,
                &format!(
                    "active until {}, recorded in {}: no request for the tenant until then",
                    term::instant(c.killed_until_ms),
                    target.files.kill.display()
                ),
            ),
        );
    } else {
        row("kill window", "none".to_string());
    }
}

fn show(args: ShowArgs) -> ExitCode {
    let selection = match select(&args.which) {
        Ok(selection) => selection,
        Err(message) => {
            term::error("cache show", None, &message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let key = selection.key.as_ref();
    let out = output(key);
    let mut code = 0;
    let mut shown = Vec::new();
    for (i, target) in selection.targets.iter().enumerate() {
        match inspect(target) {
            Ok(contents) if args.json => shown.push(contents_json(target, &contents)),
            Ok(contents) => {
                if i > 0 {
                    out.line("");
                }
                print_contents(&out, target, &contents);
            }
            Err(e) => {
                term::error(
                    "cache show",
                    key,
                    &format!("cannot read {}: {e}", target.files.cache.display()),
                );
                code = EXIT_FAILED;
            }
        }
    }
    if args.json {
        out.json(&json!({ "folder": selection.folder, "caches": shown, "exit_code": code }));
    } else if let (Some(folder), true) = (&selection.folder, selection.targets.is_empty()) {
        out.line(&format!(
            "no cache file in {} (the default folder)",
            folder.display()
        ));
    }
    ExitCode::from(code)
}

fn output(key: Option<&InstrumentationKey>) -> Out {
    match key {
        Some(key) => Out::stdout().redacting(key),
        None => Out::stdout(),
    }
}

fn clear(args: ClearArgs) -> ExitCode {
    let selection = match select(&args.which) {
        Ok(selection) => selection,
        Err(message) => {
            term::error("cache clear", None, &message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let key = selection.key.as_ref();
    let out = output(key);
    let mut planned = Vec::new();
    for target in &selection.targets {
        match inspect(target) {
            Ok(contents) => planned.push((target, contents)),
            Err(e) => {
                term::error(
                    "cache clear",
                    key,
                    &format!("cannot read {}: {e}", target.files.cache.display()),
                );
                return ExitCode::from(EXIT_FAILED);
            }
        }
    }
    let anything = planned
        .iter()
        .any(|(_, c)| c.exists || c.killed_until_ms > 0 || c.claimed > 0);
    if anything && !args.yes && !confirm(&out, key, &planned) {
        return ExitCode::from(if io::stdin().is_terminal() {
            EXIT_FAILED
        } else {
            EXIT_USAGE
        });
    }

    let mut code = 0;
    let mut cleared = Vec::new();
    for (target, contents) in &planned {
        match clear_one(target, contents) {
            Ok(deleted) => {
                if !args.json {
                    out.line(&format!(
                        "{}: {} deleted{}",
                        target.files.cache.display(),
                        term::plural(deleted as u64, "entry", "entries"),
                        if contents.killed_until_ms > 0 {
                            ", kill window forgotten"
                        } else {
                            ""
                        }
                    ));
                }
                cleared.push(json!({
                    "path": target.files.cache,
                    "deleted": deleted,
                    "kill_cleared": contents.killed_until_ms > 0,
                }));
            }
            Err(e) => {
                term::error(
                    "cache clear",
                    key,
                    &format!("{} not cleared: {e}", target.files.cache.display()),
                );
                code = EXIT_FAILED;
            }
        }
    }
    if args.json {
        out.json(&json!({ "cleared": cleared, "exit_code": code }));
    } else if planned.is_empty() {
        out.line("nothing to clear: no cache file");
    }
    ExitCode::from(code)
}

/// Asks on the terminal; refuses outright when standard input is not one.
fn confirm(out: &Out, key: Option<&InstrumentationKey>, planned: &[(&Target, Contents)]) -> bool {
    if !io::stdin().is_terminal() {
        term::error(
            "cache clear",
            key,
            "refusing to delete without --yes: standard input is not a terminal",
        );
        return false;
    }
    for (target, contents) in planned {
        out.line(&format!(
            "{}: {}, kill window {}",
            target.files.cache.display(),
            term::plural(contents.entries.len() as u64, "entry", "entries"),
            if contents.killed_until_ms > 0 {
                format!(
                    "until {}",
                    tel::internals::clock::iso8601(contents.killed_until_ms)
                )
            } else {
                "none".to_string()
            }
        ));
    }
    out.partial("Delete these entries and the kill state? [y/N] ");
    let mut answer = String::new();
    let _ = io::stdin().lock().read_line(&mut answer);
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes {
        out.line("Nothing deleted.");
    }
    yes
}

/// Deletes the entries (under the cache lock, taking back dead sessions' claims too) and the
/// kill state; how many entries went.
fn clear_one(target: &Target, contents: &Contents) -> io::Result<usize> {
    let mut deleted = 0;
    // Without a tenant there is nothing the library would replay or honour to delete.
    let Some(tenant) = &contents.tenant else {
        return Ok(0);
    };
    // The purge creates the folder and lock file it locks: not worth doing for a file that is
    // not there.
    if contents.exists || contents.claimed > 0 {
        let cache = Cache::new(target.files.clone(), tenant, u64::MAX, u64::MAX);
        deleted = cache.purge()?.len();
    }
    KillSwitch::load(tenant, Some(target.files.kill.clone())).clear();
    Ok(deleted)
}
