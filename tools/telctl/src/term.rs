//! What every subcommand prints through: colours as the conventions say (a terminal, and not
//! `NO_COLOR`; `CLICOLOR=0` off, `CLICOLOR_FORCE` on even when piped; on Windows consoles too,
//! through anstream), and the full instrumentation key masked in every line, whatever produced
//! the text.

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Effects, Style};
use serde_json::Value;
use std::cell::Cell;
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
    fn style(self) -> Style {
        match self {
            Color::Green => AnsiColor::Green.on_default(),
            Color::Red => AnsiColor::Red.on_default(),
            Color::Yellow => AnsiColor::Yellow.on_default(),
            Color::Dim => Style::new().effects(Effects::DIMMED),
            Color::Bold => Style::new().effects(Effects::BOLD),
        }
    }
}

/// Standard output as the subcommands use it.
pub struct Out {
    /// anstream's reading of the environment and the stream: `Never`, or how to colour.
    choice: ColorChoice,
    terminal: bool,
    key: Option<InstrumentationKey>,
    /// Characters shown by the text written since the last line end, for [`Out::replace_line`].
    shown: Cell<usize>,
}

impl Out {
    /// Standard output, coloured as anstream decides for it: `NO_COLOR` (set and not empty)
    /// turns colours off, `CLICOLOR_FORCE` on even off a terminal, `CLICOLOR=0` off; otherwise a
    /// terminal (not `TERM=dumb`) gets them.
    pub fn stdout() -> Out {
        let stdout = io::stdout();
        Out {
            choice: AutoStream::choice(&stdout),
            terminal: stdout.is_terminal(),
            key: None,
            shown: Cell::new(0),
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
        if self.choice == ColorChoice::Never {
            return text.to_string();
        }
        let style = color.style();
        format!("{style}{text}{style:#}")
    }

    /// Writes `text` (masked) to standard output and flushes it (progress must show as it
    /// happens), through anstream, which turns the colours into what the stream takes: escape
    /// codes, Windows console calls, or nothing. A closed stdout is ignored: the work goes on
    /// and the exit status still tells the outcome.
    fn write(&self, text: &str, line_end: bool) {
        let text = self.redact(text);
        let mut out = AutoStream::new(io::stdout().lock(), self.choice);
        let end = if line_end { "\n" } else { "" };
        let _ = write!(out, "{text}{end}").and_then(|()| out.flush());
        let after = text.rsplit('\n').next().unwrap_or_default();
        let shown = anstream::adapter::strip_str(after)
            .to_string()
            .chars()
            .count();
        match (line_end, text.contains('\n')) {
            (true, _) => self.shown.set(0),
            (false, true) => self.shown.set(shown),
            (false, false) => self.shown.set(self.shown.get() + shown),
        }
    }

    /// `text` with the full key masked.
    pub fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => redact(key, text),
            None => text.to_string(),
        }
    }

    /// One line, key masked, flushed at once.
    pub fn line(&self, text: &str) {
        self.write(text, true);
    }

    /// Text without a line end (a progress line to be replaced by [`Out::replace_line`]).
    pub fn partial(&self, text: &str) {
        self.write(text, false);
    }

    /// Blanks the current terminal line (printed with [`Out::partial`]) and returns to its
    /// start: spaces over what it showed, which every terminal and console takes.
    pub fn clear_line(&self) {
        let shown = self.shown.get();
        if shown > 0 {
            self.partial(&format!("\r{}\r", " ".repeat(shown)));
            self.shown.set(0);
        }
    }

    /// Replaces the current terminal line (printed with [`Out::partial`]) by `text`.
    pub fn replace_line(&self, text: &str) {
        self.clear_line();
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
    fn paint_styles_only_when_colours_are_on() {
        let out = |choice| Out {
            choice,
            terminal: false,
            key: None,
            shown: Cell::new(0),
        };
        assert_eq!(out(ColorChoice::Never).paint(Color::Red, "x"), "x");
        assert_eq!(
            out(ColorChoice::Always).paint(Color::Red, "x"),
            "\x1b[31mx\x1b[0m"
        );
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
