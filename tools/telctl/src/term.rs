//! What every subcommand prints through: colours only on a terminal and never under `NO_COLOR`,
//! and the full instrumentation key masked in every line, whatever produced the text.

use serde_json::Value;
use std::io::{self, IsTerminal, Write};
use tel::internals::ikey::InstrumentationKey;

/// Colours used by the subcommands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Green,
    Red,
    Yellow,
    Dim,
    Bold,
}

impl Color {
    fn code(self) -> &'static str {
        match self {
            Color::Green => "32",
            Color::Red => "31",
            Color::Yellow => "33",
            Color::Dim => "2",
            Color::Bold => "1",
        }
    }
}

/// Colours on a terminal only, and never when `NO_COLOR` is set to anything non-empty
/// (<https://no-color.org>).
fn colors(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Standard output as the subcommands use it.
pub struct Out {
    color: bool,
    terminal: bool,
    key: Option<InstrumentationKey>,
}

impl Out {
    /// Standard output; colours when it is a terminal and `NO_COLOR` is unset or empty.
    pub fn stdout() -> Out {
        let terminal = io::stdout().is_terminal();
        Out {
            color: colors(terminal, std::env::var_os("NO_COLOR")),
            terminal,
            key: None,
        }
    }

    /// Masks `key` (as `<tenant>-***`) in everything printed from now on.
    pub fn redacting(mut self, key: &InstrumentationKey) -> Out {
        self.key = Some(key.clone());
        self
    }

    /// Whether standard output is a terminal (for progress lines rewritten in place).
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// `text` in `color` when colours are on.
    pub fn paint(&self, color: Color, text: &str) -> String {
        if self.color {
            format!("\x1b[{}m{text}\x1b[0m", color.code())
        } else {
            text.to_string()
        }
    }

    /// `text` with the full key masked.
    pub fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => redact(key, text),
            None => text.to_string(),
        }
    }

    /// One line, key masked, flushed at once (progress must show as it happens). A closed
    /// stdout is ignored: the work goes on and the exit status still tells the outcome.
    pub fn line(&self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{}", self.redact(text)).and_then(|()| out.flush());
    }

    /// Text without a line end (a progress line to be replaced by [`Out::replace_line`]).
    pub fn partial(&self, text: &str) {
        let mut out = io::stdout().lock();
        let _ = write!(out, "{}", self.redact(text)).and_then(|()| out.flush());
    }

    /// Replaces the current terminal line (printed with [`Out::partial`]) by `text`.
    pub fn replace_line(&self, text: &str) {
        self.partial("\r\x1b[2K");
        self.line(text);
    }

    /// A JSON document on one line, key masked.
    pub fn json(&self, value: &Value) {
        self.line(&value.to_string());
    }
}

/// `text` with every occurrence of the full key masked, also in its JSON-escaped form (a key may
/// hold `"` or `\`, which JSON output escapes).
pub fn redact(key: &InstrumentationKey, text: &str) -> String {
    // The JSON-escaped form first: masking a start of the key would leave the rest of it.
    let escaped = serde_json::to_string(key.header_value()).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    let text = if !escaped.is_empty() && text.contains(escaped) {
        text.replace(escaped, &key.redacted())
    } else {
        text.to_owned()
    };
    key.redact_in(&text)
}

/// A message on standard error for `telctl <command>`, key masked when one is known.
pub fn error(command: &str, key: Option<&InstrumentationKey>, message: &str) {
    let message = match key {
        Some(key) => redact(key, message),
        None => message.to_string(),
    };
    let _ = writeln!(io::stderr(), "telctl {command}: {message}");
}

/// `1 entry` / `3 entries`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// A Unix-ms instant as the envelope writes time, with how far it is from now.
pub fn instant(unix_ms: u64) -> String {
    let now = tel::internals::clock::now_ms();
    let relative = if unix_ms >= now {
        format!("in {}", duration((unix_ms - now) / 1000))
    } else {
        format!("{} ago", duration((now - unix_ms) / 1000))
    };
    format!("{} ({relative})", tel::internals::clock::iso8601(unix_ms))
}

/// `42 s`, `7 min`, `3 h 5 min`, `2 d 4 h`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} s"),
        120..=3599 => format!("{} min", seconds / 60),
        3600..=86_399 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn bytes(n: u64) -> String {
    match n {
        0..=1023 => format!("{n} B"),
        1024..=1_048_575 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

/// `text` cut to `max` characters, with `…` when cut.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_key_is_masked_plain_and_json_escaped() {
        let key = InstrumentationKey::parse(r#"abc123-se"cr\et"#).unwrap();
        let json = serde_json::json!({ "k": key.header_value() }).to_string();
        assert!(json.contains(r#"se\"cr\\et"#), "{json}");
        let masked = redact(&key, &json);
        assert_eq!(masked, r#"{"k":"abc123-***"}"#);
        assert_eq!(redact(&key, "key abc123-se\"cr\\et!"), "key abc123-***!");
    }

    #[test]
    fn colours_need_a_terminal_and_no_no_color() {
        assert!(colors(true, None));
        assert!(colors(true, Some("".into())));
        assert!(!colors(true, Some("1".into())));
        assert!(!colors(false, None));
    }

    #[test]
    fn sizes_durations_and_excerpts_read_naturally() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(duration(59), "59 s");
        assert_eq!(duration(3600 + 300), "1 h 5 min");
        assert_eq!(plural(1, "entry", "entries"), "1 entry");
        assert_eq!(plural(2, "entry", "entries"), "2 entries");
        assert_eq!(excerpt("abcdef", 4), "abc…");
        assert_eq!(excerpt("abc", 4), "abc");
    }
}
