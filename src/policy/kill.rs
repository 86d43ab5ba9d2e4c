//! The collector's kill switch: `kill-tokens` + `kill-duration` tell a tenant to stop sending.
//!
//! Peers keep the window in memory only, so every new process re-sends, gets refused again and
//! only then stops. Here the window is also written beside the cache file, and every process of
//! the tenant reads it before sending.

use crate::sys::log::{tel_log, Level};
use crate::sys::private_file::{self, Existing};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest window honoured; a longer directive is clamped, and a state file claiming more is
/// taken as corrupt.
pub const MAX_KILL_SECONDS: u64 = 7 * 86_400;
const MAX_TOKEN_BYTES: usize = 256;

/// The reason of the delivery report of every event a kill window drops.
pub const KILLED: &str =
    "dropped: the collector told this tenant to stop sending for a while (kill window)";

/// A kill directive read from a response: the tenants it names and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillDirective {
    pub tenants: Vec<String>,
    pub seconds: u64,
}

impl KillDirective {
    pub fn names(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == tenant)
    }
}

/// Parses `kill-tokens` and `kill-duration` (or `kill-duration-seconds`).
///
/// Entries are `o:<tenant>[:<scope>]`, comma-separated, whitespace-tolerant. Entries without
/// `o:`, with an empty tenant, longer than 256 bytes or holding control characters are ignored.
/// Every scope counts as a kill of the whole tenant. A duration that is absent, empty, zero,
/// negative or not an integer means no kill at all; one too large for any integer type is the
/// longest window, like any duration past [`MAX_KILL_SECONDS`].
pub fn parse_directive(tokens: Option<&str>, duration: Option<&str>) -> Option<KillDirective> {
    let duration = duration?.trim();
    if duration.is_empty() || !duration.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = duration
        .parse::<u64>()
        .unwrap_or(MAX_KILL_SECONDS)
        .min(MAX_KILL_SECONDS);
    if seconds == 0 {
        return None;
    }
    let tenants: Vec<String> = tokens?
        .split(',')
        .map(str::trim)
        .filter(|t| t.len() <= MAX_TOKEN_BYTES && !t.chars().any(char::is_control))
        .filter_map(|t| t.strip_prefix("o:"))
        .map(|rest| rest.split(':').next().unwrap_or(""))
        .filter(|tenant| !tenant.is_empty())
        .map(str::to_owned)
        .collect();
    if tenants.is_empty() {
        return None;
    }
    Some(KillDirective {
        tenants,
        seconds: seconds.min(MAX_KILL_SECONDS),
    })
}

/// The tenant's current window, shared by `tel_log` (which drops events inside it) and the worker.
#[derive(Debug)]
pub struct KillSwitch {
    until_ms: AtomicU64,
    state_file: Option<PathBuf>,
    tenant: String,
}

impl KillSwitch {
    /// Loads a persisted window, if any. A missing, corrupt or implausible file is ignored.
    pub fn load(tenant: &str, state_file: Option<PathBuf>) -> Self {
        let k = KillSwitch {
            until_ms: AtomicU64::new(0),
            state_file,
            tenant: tenant.to_owned(),
        };
        k.reload();
        k
    }

    /// Unix ms of the end of the window, 0 when none is active.
    pub fn until_ms(&self) -> u64 {
        let until = self.until_ms.load(Ordering::Relaxed);
        if until > crate::sys::clock::now_ms() {
            until
        } else {
            0
        }
    }

    pub fn active(&self) -> bool {
        self.until_ms() != 0
    }

    /// Re-reads the state file so a window recorded by another process is honoured here too.
    pub fn reload(&self) {
        let Some(path) = &self.state_file else { return };
        if let Some(until) = read_state(path, &self.tenant) {
            self.until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// Opens a window of `seconds` from now and records it beside the cache file.
    pub fn engage(&self, seconds: u64) -> u64 {
        let until = crate::sys::clock::now_ms() + seconds.min(MAX_KILL_SECONDS) * 1000;
        self.until_ms.fetch_max(until, Ordering::Relaxed);
        if let Some(path) = &self.state_file {
            if let Err(e) = write_state(path, &self.tenant, until) {
                tel_log!(
                    Level::Debug,
                    "kill window not persisted to {}: {e}",
                    path.display()
                );
            }
        }
        until
    }

    /// Forgets the window (in memory and on disk); used by `telctl cache clear`.
    pub fn clear(&self) {
        self.until_ms.store(0, Ordering::Relaxed);
        if let Some(path) = &self.state_file {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn read_state(path: &Path, tenant: &str) -> Option<u64> {
    let mut f = private_file::open_read(path).ok()??;
    let mut text = String::new();
    Read::by_ref(&mut f)
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("tenant")?.as_str()? != tenant {
        return None;
    }
    let until = v.get("until_ms")?.as_u64()?;
    let now = crate::sys::clock::now_ms();
    // Implausible: further away than any window we would ever write.
    (until > now && until <= now + (MAX_KILL_SECONDS + 60) * 1000).then_some(until)
}

fn write_state(path: &Path, tenant: &str, until_ms: u64) -> std::io::Result<()> {
    let body = serde_json::json!({"tenant": tenant, "until_ms": until_ms}).to_string();
    private_file::write(path, Existing::Replace, |out| {
        out.write_all(body.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tokens_and_durations() {
        let d = parse_directive(Some(" o:abc , o:def:all,x:zzz, o:, o::x"), Some("60")).unwrap();
        assert_eq!(d.tenants, vec!["abc", "def"]);
        assert_eq!(d.seconds, 60);
        assert!(d.names("def") && !d.names("zzz"));
        for dur in [
            None,
            Some(""),
            Some("0"),
            Some("-5"),
            Some("1.5"),
            Some("abc"),
        ] {
            assert_eq!(parse_directive(Some("o:abc"), dur), None, "{dur:?}");
        }
        let long = format!("o:{}", "a".repeat(300));
        for tokens in [
            None,
            Some(""),
            Some("abc"),
            Some("o:"),
            Some(long.as_str()),
            Some("o:a\u{7}b"),
        ] {
            assert_eq!(parse_directive(tokens, Some("10")), None, "{tokens:?}");
        }
        for huge in ["99999999999", "18446744073709551616", &"9".repeat(300)] {
            assert_eq!(
                parse_directive(Some("o:abc"), Some(huge)).unwrap().seconds,
                MAX_KILL_SECONDS,
                "{huge}"
            );
        }
    }

    #[test]
    fn window_persists_and_ignores_corrupt_state() {
        let dir = std::env::temp_dir().join(format!("tel-kill-{}", crate::sys::random::u64()));
        let file = dir.join("t.cache.kill");
        let k = KillSwitch::load("t", Some(file.clone()));
        assert!(!k.active());
        let until = k.engage(30);
        assert_eq!(KillSwitch::load("t", Some(file.clone())).until_ms(), until);
        assert_eq!(KillSwitch::load("other", Some(file.clone())).until_ms(), 0);
        std::fs::write(&file, "garbage").unwrap();
        assert_eq!(KillSwitch::load("t", Some(file.clone())).until_ms(), 0);
        std::fs::write(&file, r#"{"tenant":"t","until_ms":99999999999999}"#).unwrap();
        assert_eq!(KillSwitch::load("t", Some(file)).until_ms(), 0);
        let _ = std::fs::remove_dir_all(dir);
    }
}
