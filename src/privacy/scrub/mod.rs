//! Scrubbing (abi.md, "Scrubbing"): the detectors named by `scrub` replace what they match in
//! string values by a marker, before anything is stored or sent.
//!
//! - **Where.** [`Scrubber::scrub_json`] rewrites every string value of a JSON text, nested
//!   ones too, and never an object key; [`Scrubber::scrub_str`] takes one plain string
//!   (`ext.ex.msg`, `ext.ex.stack`).
//! - **Order.** The detectors run in the table's order (`email`, `user_path`, `ipv4`, `ipv6`,
//!   `guid`, `token`), whatever the order of the configured list: an email's domain is gone
//!   before `token` looks, a GUID before `token` would take it whole.
//! - **Until nothing matches.** A replacement can free a neighbour that a boundary rule held
//!   back (`1.2.3.4/opt/home` with the home `/opt/home`: once the address is `<ipv4>`, no
//!   digit touches the home folder any more). So a string whose pass replaced something is
//!   passed over again until no detector matches: what leaves is free of every configured
//!   detector's matches, and scrubbing it again changes nothing.
//! - **Escapes.** A string token with escapes (`\/`, `\u0040`, `\\` in a Windows path) is
//!   decoded before the detectors see it and written back escaped, only when something
//!   matched; a string where nothing matched keeps its bytes as they were.
//! - **Cost.** A text is first tested for what any match needs (an `@` for `email`, the
//!   user's name for `user_path`, ...); most events have none of it and are returned borrowed
//!   after one `memchr` per needle, without walking the JSON.
//! - **Who.** `user_path` reads `HOME`/`USERPROFILE` and the login name once, when the
//!   scrubber is built (see `identity`).
//!
//! Here, the [`Scrubber`]; beside it `detectors` (the `scrub` configuration value), `json` (the
//! string tokens of a JSON text and their escapes) and `needle` (a word searched for in whole
//! texts).

mod detectors;
mod json;
mod needle;

use super::detect::{self, Detector};
use super::identity::UserIdentity;
pub use detectors::Detectors;
use json::{escape, is_key, tokens_around, unescape, StringToken, StringTokens};
use needle::Needle;
use std::borrow::Cow;

/// A text after scrubbing (borrowed when nothing matched) and the number of replacements.
pub type Scrubbed<'a> = (Cow<'a, str>, u64);

/// More passes than any text needs (each pass that changes something removes a byte no marker
/// holds, or a login segment no marker makes); a bound all the same.
const MAX_PASSES: usize = 8;

/// The configured detectors, with the user's identity read once.
#[derive(Debug, Clone)]
pub struct Scrubber {
    detectors: Detectors,
    who: UserIdentity,
    /// What a text must hold for `user_path` to match in it: the last part of the home folder
    /// and the login name (lower case under Windows rules).
    user_needles: Vec<Needle>,
    /// A needle holds a character JSON escapes (`"`, `\\`, a control character): then a raw
    /// text can hold it escaped, and strings with escapes are always looked at.
    needles_escaped: bool,
}

impl Scrubber {
    /// A scrubber for `detectors`; with `user_path` among them, the home folder and login name
    /// are read from the environment now.
    pub fn new(detectors: Detectors) -> Scrubber {
        let who = if detectors.contains(Detector::UserPath) {
            UserIdentity::from_environment()
        } else {
            UserIdentity::default()
        };
        Scrubber::with_identity(detectors, who)
    }

    /// A scrubber with a given identity (tests and benchmarks).
    pub fn with_identity(detectors: Detectors, who: UserIdentity) -> Scrubber {
        let last_part = who
            .home
            .as_deref()
            .and_then(|h| h.rsplit(['/', '\\']).next());
        let mut words: Vec<&str> = [last_part, who.login.as_deref()]
            .into_iter()
            .flatten()
            .filter(|w| !w.is_empty())
            .collect();
        words.dedup();
        let user_needles = words.iter().map(|w| Needle::new(w, who.windows)).collect();
        let needles_escaped = words
            .iter()
            .any(|w| w.chars().any(|c| c == '"' || c == '\\' || c < ' '));
        Scrubber {
            detectors,
            user_needles,
            needles_escaped,
            who,
        }
    }

    pub fn detectors(&self) -> Detectors {
        self.detectors
    }

    pub fn is_off(&self) -> bool {
        self.detectors.is_empty()
    }

    /// `json` (a JSON text, the event's properties) with every string value scrubbed; object
    /// keys are left as they are. Returned borrowed, with 0, when nothing matched. A text that
    /// is not valid JSON is scrubbed as far as its string tokens can be told apart, never
    /// made invalid by it.
    pub fn scrub_json<'a>(&self, json: &'a str) -> Scrubbed<'a> {
        if self.is_off() {
            return (Cow::Borrowed(json), 0);
        }
        let b = json.as_bytes();
        let backslash = memchr::memchr(b'\\', b).is_some();
        // `\u` escapes can spell anything a detector looks for, so a string with escapes is
        // always looked at then; other escapes hide nothing a quick test looks for (`\/` and
        // `\\` are separators, which no needle holds; none of them is a digit, `.`, `:` or `-`).
        let hidden = backslash
            && (self.needles_escaped
                || memchr::memchr_iter(b'\\', b).any(|i| b.get(i + 1) == Some(&b'u')));
        // Where `email` and `user_path` could match: each '@', each occurrence of the user's
        // name. Most events have none, and need nothing more.
        let mut hot: Vec<usize> = Vec::new();
        if self.detectors.contains(Detector::Email) {
            hot.extend(memchr::memchr_iter(b'@', b));
        }
        if self.detectors.contains(Detector::UserPath) {
            for needle in &self.user_needles {
                needle.positions_into(b, &mut hot);
            }
            hot.sort_unstable();
        }
        let others = self.detectors.any_but(Detectors::default());
        if hot.is_empty() && !hidden && !others {
            return (Cow::Borrowed(json), 0);
        }
        let candidates = if others || backslash {
            self.candidates_by_walking(b, &hot, hidden, others)
        } else {
            tokens_around(b, &hot)
        };
        let mut out: Option<String> = None;
        let mut copied = 0;
        let mut total = 0;
        for token in candidates {
            let (open, close) = (token.open, token.close);
            if is_key(b, close + 1) {
                continue;
            }
            let raw = &json[open + 1..close];
            let replaced = if token.escaped {
                let decoded = unescape(raw);
                self.scrub_text(&decoded)
                    .map(|(text, n)| (escape(&text), n))
            } else {
                // No escape: the token is the value, and the markers need none.
                self.scrub_text(raw)
            };
            if let Some((text, n)) = replaced {
                let o = out.get_or_insert_with(|| String::with_capacity(json.len() + 16));
                o.push_str(&json[copied..open + 1]);
                o.push_str(&text);
                copied = close;
                total += n;
            }
        }
        match out {
            Some(mut o) => {
                o.push_str(&json[copied..]);
                (Cow::Owned(o), total)
            }
            None => (Cow::Borrowed(json), 0),
        }
    }

    /// The string tokens worth scrubbing, found by walking them all: those holding a `hot`
    /// position, those with escapes when escapes may hide something, and those where the
    /// detectors besides `email` and `user_path` may match.
    fn candidates_by_walking(
        &self,
        b: &[u8],
        hot: &[usize],
        hidden: bool,
        others: bool,
    ) -> Vec<StringToken> {
        let mut hot = hot.iter().copied().peekable();
        StringTokens::new(b)
            .filter(|t| {
                while hot.next_if(|&h| h <= t.open).is_some() {}
                let is_hot = hot.peek().is_some_and(|&h| h < t.close);
                !is_key(b, t.close + 1)
                    && (is_hot
                        || (hidden && t.escaped)
                        || (others && self.others_may_match(&b[t.open + 1..t.close])))
            })
            .collect()
    }

    /// False when none of `ipv4`, `ipv6`, `guid` and `token` that are configured can match in
    /// the string token `raw` (escapes included, see [`Scrubber::scrub_json`]): one pass that
    /// counts what their matches need.
    fn others_may_match(&self, raw: &[u8]) -> bool {
        let (mut dots, mut colons, mut dashes, mut digits) = (0u32, 0u32, 0u32, 0u32);
        let (mut run, mut longest_run) = (0usize, 0usize);
        for &c in raw {
            let class = BYTE_CLASS[usize::from(c)];
            dots += u32::from(class & DOT != 0);
            colons += u32::from(class & COLON != 0);
            dashes += u32::from(class & DASH != 0);
            digits += u32::from(class & DIGIT != 0);
            run = if class & TOKEN != 0 { run + 1 } else { 0 };
            longest_run = longest_run.max(run);
        }
        let on = |d| self.detectors.contains(d);
        (on(Detector::Ipv4) && dots >= 3 && digits >= 4)
            || (on(Detector::Ipv6) && colons >= 2)
            || (on(Detector::Guid) && dashes >= 4 && raw.len() >= 36)
            || (on(Detector::Token) && longest_run >= 24 && digits > 0)
    }

    /// One plain string (not JSON) scrubbed: `ext.ex.msg`, `ext.ex.stack`.
    pub fn scrub_str<'a>(&self, text: &'a str) -> Scrubbed<'a> {
        match self.scrub_text(text) {
            Some((scrubbed, n)) => (Cow::Owned(scrubbed), n),
            None => (Cow::Borrowed(text), 0),
        }
    }

    /// The detectors in order, over and over until none matches; None when none ever did.
    fn scrub_text(&self, text: &str) -> Option<(String, u64)> {
        let mut current: Option<String> = None;
        let mut total = 0;
        for _ in 0..MAX_PASSES {
            let mut changed = false;
            for d in self.detectors.iter() {
                let s = current.as_deref().unwrap_or(text);
                if !self.may_match(d, s.as_bytes()) {
                    continue;
                }
                if let Some((replaced, n)) = replace_all(s, d, &self.who) {
                    current = Some(replaced);
                    total += n;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        current.map(|s| (s, total))
    }

    /// False when `d` cannot match anywhere in `s`: what every match of it holds is absent.
    fn may_match(&self, d: Detector, s: &[u8]) -> bool {
        match d {
            Detector::Email => memchr(b'@', s),
            Detector::UserPath => self.user_needles.iter().any(|n| n.is_in(s)),
            Detector::Ipv4 => memchr(b'.', s),
            Detector::Ipv6 => memchr(b':', s),
            Detector::Guid => memchr(b'-', s),
            Detector::Token => s.len() >= 24,
        }
    }
}

const DOT: u8 = 1;
const COLON: u8 = 2;
const DASH: u8 = 4;
const DIGIT: u8 = 8;
/// `[A-Za-z0-9_-]`, what `token` is made of.
const TOKEN: u8 = 16;

/// What each byte is, for [`Scrubber::others_may_match`]'s counting without branches.
const BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'.' => DOT,
            b':' => COLON,
            b'-' => DASH | TOKEN,
            b'0'..=b'9' => DIGIT | TOKEN,
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => TOKEN,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Every match of `d` in `s` replaced by its marker; None when there is none.
fn replace_all(s: &str, d: Detector, who: &UserIdentity) -> Option<(String, u64)> {
    let b = s.as_bytes();
    let mut found = detect::find(d, b, 0, who)?;
    let mut out = String::with_capacity(s.len() + 8);
    let mut copied = 0;
    let mut n = 0;
    loop {
        out.push_str(&s[copied..found.start]);
        out.push_str(found.marker);
        copied = found.end;
        n += 1;
        match detect::find(d, b, found.end, who) {
            Some(next) => found = next,
            None => break,
        }
    }
    out.push_str(&s[copied..]);
    Some((out, n))
}

fn memchr(byte: u8, s: &[u8]) -> bool {
    memchr::memchr(byte, s).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn unix() -> UserIdentity {
        UserIdentity::new(Some("/home/ann"), Some("ann"), false)
    }

    fn scrubber(names: &[&str]) -> Scrubber {
        let detectors = Detectors::from_json(&json!(names)).unwrap();
        Scrubber::with_identity(detectors, unix())
    }

    fn all() -> Scrubber {
        Scrubber::with_identity(Detectors::ALL, unix())
    }

    fn text(s: &Scrubber, t: &str) -> (String, u64) {
        let (out, n) = s.scrub_str(t);
        (out.into_owned(), n)
    }

    #[test]
    fn every_row_of_the_table_with_its_marker() {
        let s = all();
        for (input, output) in [
            ("mail ann.lee@example.com!", "mail <email>!"),
            ("/home/ann/.config/x", "<home>/.config/x"),
            ("/srv/ann/x", "/srv/<user>/x"),
            ("host 10.1.2.3 up", "host <ipv4> up"),
            ("peer [2001:db8::7]:443", "peer [<ipv6>]:443"),
            ("id 0f8fad5b-d9cb-469f-a165-70867728950e.", "id <guid>."),
            ("key ghp_abcdefghijklmnopqrst0123", "key <token>"),
        ] {
            assert_eq!(text(&s, input), (output.to_owned(), 1), "{input}");
        }
    }

    #[test]
    fn only_the_configured_detectors_run() {
        let input = "ann@example.com 10.1.2.3 /home/ann";
        assert_eq!(
            text(&scrubber(&["ipv4"]), input).0,
            "ann@example.com <ipv4> /home/ann"
        );
        assert_eq!(text(&scrubber(&[]), input), (input.to_owned(), 0));
        let default = Scrubber::with_identity(Detectors::default(), unix());
        assert_eq!(text(&default, input).0, "<email> 10.1.2.3 <home>");
    }

    #[test]
    fn the_tables_order_whatever_the_lists() {
        // A GUID is a 36-byte run of token bytes with digits: `guid` runs first and marks it.
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        for names in [["guid", "token"], ["token", "guid"]] {
            assert_eq!(text(&scrubber(&names), id).0, "<guid>");
        }
        // An email's local part can be a token: `email` runs first.
        let mail = "abcdefghijklmnopqrstuvwxyz0123@example.com";
        for names in [["email", "token"], ["token", "email"]] {
            assert_eq!(text(&scrubber(&names), mail).0, "<email>");
        }
        assert_eq!(text(&scrubber(&["token"]), mail).0, "<token>@example.com");
    }

    #[test]
    fn boundary_cases_of_abi_md() {
        let s = all();
        for same in [
            "10:11:12",
            "std::vector<int>",
            "version 1.2.3.4.5",
            "abcdefghijklmnopqrstuvw",
            "abcdefghijklmnopqrstuvwx",
            "/data/home/annex",
        ] {
            assert_eq!(text(&s, same), (same.to_owned(), 0), "{same}");
        }
        // A home folder preceded by a letter is no home folder; its last part is a segment.
        assert_eq!(text(&s, "x/home/ann").0, "x/home/<user>");
        let elsewhere = Scrubber::with_identity(
            Detectors::ALL,
            UserIdentity::new(Some("/home/ann"), Some("bob"), false),
        );
        assert_eq!(
            text(&elsewhere, "x/home/ann/y"),
            ("x/home/ann/y".to_owned(), 0)
        );
        assert_eq!(
            text(&s, "abcdefghijklmnopqrstuv12").0,
            "<token>",
            "24 with a digit"
        );
        assert_eq!(text(&s, "abcdefghijklmnopqrstu12").1, 0, "23 with a digit");
        // A GUID inside a longer hex run is no GUID; the run is a token.
        let run = "ab0f8fad5b-d9cb-469f-a165-70867728950eff";
        assert_eq!(text(&scrubber(&["guid"]), run).1, 0);
        assert_eq!(text(&s, run).0, "<token>");
    }

    #[test]
    fn a_replacement_frees_what_its_neighbour_held_back() {
        // The home folder /opt/home, touched by the address's digit until that is replaced.
        let who = UserIdentity::new(Some("/opt/home"), None, false);
        let s = Scrubber::with_identity(Detectors::ALL, who);
        assert_eq!(
            text(&s, "1.2.3.4/opt/home/x"),
            ("<ipv4><home>/x".to_owned(), 2)
        );
        let (once, _) = text(&s, "1.2.3.4/opt/home/x");
        assert_eq!(text(&s, &once), (once.clone(), 0));
        // The hex run hides the GUID and is a token; once it is `<token>`, the address before
        // it touches nothing and is one.
        let s = all();
        let run = "2001:db8::10f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(text(&s, run), ("<ipv6><token>".to_owned(), 2));
    }

    fn scrub_json(s: &Scrubber, j: &str) -> (String, u64) {
        let (out, n) = s.scrub_json(j);
        (out.into_owned(), n)
    }

    #[test]
    fn string_values_nested_or_not_never_keys() {
        let s = all();
        let input = r#"{"ann@example.com":"ann@example.com","a":[1,"10.0.0.1",{"b":{"/home/ann":"/home/ann/x"}}],"n":1.5,"t":true,"z":null}"#;
        let (out, n) = scrub_json(&s, input);
        assert_eq!(
            out,
            r#"{"ann@example.com":"<email>","a":[1,"<ipv4>",{"b":{"/home/ann":"<home>/x"}}],"n":1.5,"t":true,"z":null}"#
        );
        assert_eq!(n, 3);
        // Whitespace between a key and its colon still makes it a key.
        let spaced = "{ \"ann@example.com\" \n : \"x\" , \"k\" : [ \"ann@example.com\" ] }";
        assert_eq!(
            scrub_json(&s, spaced).0,
            "{ \"ann@example.com\" \n : \"x\" , \"k\" : [ \"<email>\" ] }"
        );
    }

    #[test]
    fn nothing_matched_is_borrowed() {
        let s = Scrubber::with_identity(Detectors::default(), unix());
        let input = r#"{"model_path":"C:/Users/someone/models/x.onnx","n":1}"#;
        let (out, n) = s.scrub_json(input);
        assert!(matches!(out, Cow::Borrowed(_)));
        assert_eq!(n, 0);
        // The fast test passes (an @ in a key), the walk finds nothing: still borrowed.
        let (out, n) = s.scrub_json(r#"{"a@b.cc":"x","ann":"no path"}"#);
        assert!(matches!(out, Cow::Borrowed(_)) && n == 0);
        let off = Scrubber::with_identity(Detectors::NONE, unix());
        assert!(matches!(
            off.scrub_json(r#"{"a":"ann@example.com"}"#).0,
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn escapes_inside_string_tokens() {
        let s = all();
        for (input, output) in [
            // An escaped slash in a home folder, an escaped @ in an email.
            (r#"{"p":"\/home\/ann\/x"}"#, r#"{"p":"<home>/x"}"#),
            (r#"{"e":"ann\u0040example.com"}"#, r#"{"e":"<email>"}"#),
            (r#"{"e":"\u0061nn@example.com"}"#, r#"{"e":"<email>"}"#),
            // What the value keeps of its escapes is written escaped again.
            (
                r#"{"m":"\"ann@example.com\"\n\ttab\\"}"#,
                r#"{"m":"\"<email>\"\n\ttab\\"}"#,
            ),
            (
                r#"{"m":"10.0.0.1 \u0001 \ud83d\ude00"}"#,
                "{\"m\":\"<ipv4> \\u0001 \u{1F600}\"}",
            ),
            // A Windows path: JSON doubles its backslashes.
            (r#"{"p":"D:\\ann\\x"}"#, r#"{"p":"D:\\<user>\\x"}"#),
            // An escaped quote does not end the token.
            (
                r#"{"q":"say \"hi\" to ann@example.com"}"#,
                r#"{"q":"say \"hi\" to <email>"}"#,
            ),
            (
                r#"{"q":"\\","r":"ann@example.com"}"#,
                r#"{"q":"\\","r":"<email>"}"#,
            ),
        ] {
            let (out, _) = scrub_json(&s, input);
            assert_eq!(out, output, "{input}");
            let v: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert!(v.is_object());
        }
        // Nothing matched: the token's own escapes stay as written.
        let kept = r#"{"a":"\u0041\/b"}"#;
        assert_eq!(scrub_json(&s, kept), (kept.to_owned(), 0));
        // A lone surrogate (serde_json refuses it, so it cannot come from a checked event)
        // does not stop the rest of the string from being scrubbed.
        let lone = r#"{"a":"\ud800 ann@example.com"}"#;
        assert_eq!(scrub_json(&s, lone).0, "{\"a\":\"\u{FFFD} <email>\"}");
    }

    #[test]
    fn windows_paths_in_json() {
        let who = UserIdentity::new(Some(r"C:\Users\Ann"), Some("Ann"), true);
        let s = Scrubber::with_identity(Detectors::default(), who);
        let (out, n) = scrub_json(
            &s,
            r#"{"a":"C:\\Users\\Ann\\AppData","b":"c:/users/ANN/x","c":"E:\\Data\\ann\\y"}"#,
        );
        assert_eq!(
            out,
            r#"{"a":"<home>\\AppData","b":"<home>/x","c":"E:\\Data\\<user>\\y"}"#
        );
        assert_eq!(n, 3);
    }

    #[test]
    fn invalid_json_is_never_made_worse() {
        let s = all();
        for input in [
            "",
            "{",
            "{\"a\":\"ann@example.com",
            "\"ann@example.com\"",
            "[\"\\\"]",
        ] {
            let (out, _) = scrub_json(&s, input);
            assert!(out.len() <= input.len() + 8, "{input} -> {out}");
        }
        assert_eq!(scrub_json(&s, "\"ann@example.com\"").0, "\"<email>\"");
    }
}
