//! The string tokens of a JSON text, found without parsing it, and their escapes: where the
//! scrubber looks, and how it reads and writes back what it replaced.

/// A string token of a JSON text: its quotes' positions, and whether it holds an escape.
pub(super) struct StringToken {
    pub(super) open: usize,
    pub(super) close: usize,
    pub(super) escaped: bool,
}

/// The string tokens of a JSON text, in order, found in one SIMD pass over its quotes and
/// backslashes. An unterminated last token is not one; a backslash outside a string (not
/// JSON) is ignored.
pub(super) struct StringTokens<'a> {
    text: &'a [u8],
    specials: memchr::Memchr2<'a>,
}

impl<'a> StringTokens<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        StringTokens {
            text,
            specials: memchr::memchr2_iter(b'"', b'\\', text),
        }
    }
}

impl Iterator for StringTokens<'_> {
    type Item = StringToken;

    fn next(&mut self) -> Option<StringToken> {
        let open = loop {
            let p = self.specials.next()?;
            if self.text[p] == b'"' {
                break p;
            }
        };
        let mut escaped = false;
        loop {
            let p = self.specials.next()?;
            if self.text[p] == b'"' {
                return Some(StringToken {
                    open,
                    close: p,
                    escaped,
                });
            }
            escaped = true;
            // The escaped character is not special: a quote or backslash right after is the
            // next item of the search, and is skipped.
            if matches!(self.text.get(p + 1), Some(b'"' | b'\\')) {
                self.specials.next();
            }
        }
    }
}

/// The string tokens that hold a position of `hot` (sorted), in a text without backslashes:
/// there every quote is a token's, so the parity of the quotes before a position tells
/// whether it is inside a string, without walking every token.
pub(super) fn tokens_around(b: &[u8], hot: &[usize]) -> Vec<StringToken> {
    let mut tokens: Vec<StringToken> = Vec::new();
    let (mut counted_to, mut quotes) = (0, 0);
    for &h in hot {
        if tokens.last().is_some_and(|t| h < t.close) {
            continue; // in the token just taken
        }
        quotes += memchr::memchr_iter(b'"', &b[counted_to..h]).count();
        counted_to = h;
        if quotes % 2 == 0 {
            continue; // between tokens
        }
        let open = memchr::memrchr(b'"', &b[..h]);
        let close = memchr::memchr(b'"', &b[h..]).map(|p| h + p);
        if let (Some(open), Some(close)) = (open, close) {
            tokens.push(StringToken {
                open,
                close,
                escaped: false,
            });
        }
    }
    tokens
}

/// Whether the string token that ended just before `i` is an object key: in JSON, a string
/// followed by `:` is one, and a value string never is.
pub(super) fn is_key(b: &[u8], i: usize) -> bool {
    b[i..]
        .iter()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        .is_some_and(|&c| c == b':')
}

/// The text of a JSON string token's content (between its quotes). A lone surrogate (`\ud800`
/// alone), which no Rust string can hold, becomes U+FFFD; an invalid escape is kept as written.
pub(super) fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(p) = rest.find('\\') {
        out.push_str(&rest[..p]);
        let esc = &rest[p..];
        let mut taken = 2;
        match esc.as_bytes().get(1) {
            Some(b'"') => out.push('"'),
            Some(b'\\') => out.push('\\'),
            Some(b'/') => out.push('/'),
            Some(b'b') => out.push('\u{8}'),
            Some(b'f') => out.push('\u{c}'),
            Some(b'n') => out.push('\n'),
            Some(b'r') => out.push('\r'),
            Some(b't') => out.push('\t'),
            Some(b'u') => match hex4(esc, 2) {
                Some(hi @ 0xD800..=0xDBFF) => match (esc.get(6..8), hex4(esc, 8)) {
                    (Some("\\u"), Some(lo @ 0xDC00..=0xDFFF)) => {
                        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                        out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                        taken = 12;
                    }
                    _ => {
                        out.push('\u{FFFD}');
                        taken = 6;
                    }
                },
                Some(u) => {
                    out.push(char::from_u32(u).unwrap_or('\u{FFFD}'));
                    taken = 6;
                }
                None => {
                    out.push('\\');
                    taken = 1;
                }
            },
            _ => {
                out.push('\\');
                taken = 1;
            }
        }
        rest = &esc[taken.min(esc.len())..];
    }
    out.push_str(rest);
    out
}

fn hex4(s: &str, at: usize) -> Option<u32> {
    let digits = s.get(at..at + 4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// `text` as the content of a JSON string token: quotes, backslashes and control characters
/// escaped, everything else as it is.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_and_escape_round_trip() {
        for t in [
            "plain",
            "q\"b\\s/",
            "\n\r\t\u{8}\u{c}\u{1}\u{1f}",
            "é\u{1F600}\u{2028}",
        ] {
            assert_eq!(unescape(&escape(t)), t);
            let token = format!("\"{}\"", escape(t));
            assert_eq!(serde_json::from_str::<String>(&token).unwrap(), t);
        }
        assert_eq!(unescape(r"\x\u12"), r"\x\u12", "invalid escapes are kept");
        assert_eq!(unescape(r"\udc00\ud800x"), "\u{FFFD}\u{FFFD}x");
    }
}
