//! The six detectors of abi.md's Scrubbing table, each a scanner over one string that finds
//! its next match. They are written by hand rather than with a regex engine: their boundaries
//! ("not touching a letter, digit or dot") are look-around, which the `regex` crate lacks, and
//! each is a few lines of byte scanning that rejects a string at the cost of one `memchr`.
//!
//! Everything they look at is ASCII, so every match starts and ends on a character boundary of
//! the UTF-8 text; a byte of a non-ASCII character is never a letter, digit or separator here.

use super::identity::UserIdentity;

/// One detector of the table; the discriminant is its place in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Detector {
    Email = 0,
    UserPath = 1,
    Ipv4 = 2,
    Ipv6 = 3,
    Guid = 4,
    Token = 5,
}

impl Detector {
    /// Every detector, in the table's order: the order they run in.
    pub(crate) const ALL: [Detector; 6] = [
        Detector::Email,
        Detector::UserPath,
        Detector::Ipv4,
        Detector::Ipv6,
        Detector::Guid,
        Detector::Token,
    ];

    /// The name `scrub` configures it by.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Detector::Email => "email",
            Detector::UserPath => "user_path",
            Detector::Ipv4 => "ipv4",
            Detector::Ipv6 => "ipv6",
            Detector::Guid => "guid",
            Detector::Token => "token",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Detector> {
        Detector::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// One match: the bytes `start..end` of the string are replaced by `marker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) marker: &'static str,
}

/// What `detector` finds first in `s` at or after byte `from`. Boundaries are read in the
/// whole of `s`, also before `from`.
pub(crate) fn find(detector: Detector, s: &[u8], from: usize, who: &UserIdentity) -> Option<Found> {
    match detector {
        Detector::Email => email(s, from),
        Detector::UserPath => user_path(s, from, who),
        Detector::Ipv4 => ipv4(s, from),
        Detector::Ipv6 => ipv6(s, from),
        Detector::Guid => guid(s, from),
        Detector::Token => token(s, from),
    }
}

/// The position of the next `byte` at or after `from`.
pub(crate) fn next_byte(s: &[u8], from: usize, byte: u8) -> Option<usize> {
    memchr::memchr(byte, s.get(from..)?).map(|p| from + p)
}

fn before(s: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| s[j])
}

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// `local@domain.tld`: the local part is the run of `[A-Za-z0-9._%+-]` before the `@` (not
/// reaching back before `from`, into an earlier match); the domain is labels of
/// `[A-Za-z0-9-]` joined by single dots, at least two of them, up to and including the last
/// label that is two or more letters (`a@b.co.uk`; `a@host.local1` is no address).
fn email(s: &[u8], from: usize) -> Option<Found> {
    let mut at_from = from;
    while let Some(at) = next_byte(s, at_from, b'@') {
        at_from = at + 1;
        let mut start = at;
        while start > from && is_local(s[start - 1]) {
            start -= 1;
        }
        if start == at {
            continue;
        }
        // Walk the labels after the `@`; remember where the last letters-only label ended.
        let mut end = None;
        let mut i = at + 1;
        let mut labels = 0;
        loop {
            let label_start = i;
            while i < s.len() && is_label(s[i]) {
                i += 1;
            }
            if i == label_start {
                break;
            }
            labels += 1;
            let letters = s[label_start..i].iter().all(u8::is_ascii_alphabetic);
            if labels >= 2 && letters && i - label_start >= 2 {
                end = Some(i);
            }
            if i + 1 < s.len() && s[i] == b'.' && is_label(s[i + 1]) {
                i += 1;
            } else {
                break;
            }
        }
        if let Some(end) = end {
            return Some(Found {
                start,
                end,
                marker: "<email>",
            });
        }
    }
    None
}

fn is_separator(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

/// Whether `s[i..]` begins with `needle`: exactly, or under Windows rules ASCII case-insensitive
/// with `/` and `\` alike (`needle` is then lower case with `\` separators).
fn starts_with_at(s: &[u8], i: usize, needle: &[u8], windows: bool) -> bool {
    let Some(hay) = s.get(i..i + needle.len()) else {
        return false;
    };
    if !windows {
        return hay == needle;
    }
    hay.iter().zip(needle).all(|(&h, &n)| {
        let h = if h == b'/' { b'\\' } else { h };
        h.to_ascii_lowercase() == n
    })
}

/// The home folder where it begins a path (not preceded by a letter, digit, `/`, `\`, `.`,
/// `_` or `-`; followed by a separator or the end) becomes `<home>`; a path segment equal to
/// the login name (after a separator, before a separator or the end) becomes `<user>`.
fn user_path(s: &[u8], from: usize, who: &UserIdentity) -> Option<Found> {
    let w = who.windows;
    let ends_segment = |i: usize| i == s.len() || is_separator(s[i]);
    let home = who.home.as_deref().and_then(|home| {
        let home = home.as_bytes();
        occurrences(s, from, home, w)
            .find(|&i| {
                let starts_path = !before(s, i).is_some_and(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'\\' | b'.' | b'_' | b'-')
                });
                starts_path && ends_segment(i + home.len())
            })
            .map(|i| Found {
                start: i,
                end: i + home.len(),
                marker: "<home>",
            })
    });
    let login = who.login.as_deref().and_then(|login| {
        let login = login.as_bytes();
        occurrences(s, from, login, w)
            .take_while(|&i| home.is_none_or(|h| i < h.start))
            .find(|&i| before(s, i).is_some_and(is_separator) && ends_segment(i + login.len()))
            .map(|i| Found {
                start: i,
                end: i + login.len(),
                marker: "<user>",
            })
    });
    login.or(home)
}

/// The positions at or after `from` where `needle` begins in `s` (see [`starts_with_at`]).
fn occurrences<'a>(
    s: &'a [u8],
    from: usize,
    needle: &'a [u8],
    windows: bool,
) -> impl Iterator<Item = usize> + 'a {
    let first = needle.first().copied().unwrap_or(0);
    let (a, b) = match (windows, first) {
        (false, _) => (first, first),
        (true, b'\\') => (b'\\', b'/'),
        (true, c) => (c.to_ascii_lowercase(), c.to_ascii_uppercase()),
    };
    let rest = s.get(from..).unwrap_or_default();
    memchr::memchr2_iter(a, b, rest)
        .map(move |p| p + from)
        .filter(move |&i| !needle.is_empty() && starts_with_at(s, i, needle, windows))
}

/// The maximal run at or after `from` of bytes for which `member` holds, starting with a byte
/// for which `first` holds; `(start, end)`.
fn next_run(
    s: &[u8],
    from: usize,
    first: impl Fn(u8) -> bool,
    member: impl Fn(u8) -> bool,
) -> Option<(usize, usize)> {
    let start = from + s.get(from..)?.iter().position(|&b| first(b))?;
    let len = s[start..]
        .iter()
        .position(|&b| !member(b))
        .unwrap_or(s.len() - start);
    Some((start, start + len))
}

/// Four dot-separated numbers 0-255 (1 to 3 digits each), not touching a letter, digit or dot.
/// Such an address is a whole run of digits and dots, so each run is tested once.
fn ipv4(s: &[u8], from: usize) -> Option<Found> {
    let mut i = from;
    while let Some((start, end)) = next_run(
        s,
        i,
        |b| b.is_ascii_digit() || b == b'.',
        |b| b.is_ascii_digit() || b == b'.',
    ) {
        i = end;
        let free = |b: Option<u8>| !b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'.');
        if !free(before(s, start)) || !free(s.get(end).copied()) {
            continue;
        }
        let run = &s[start..end];
        let mut parts = 0;
        let valid = run.split(|&b| b == b'.').all(|part| {
            parts += 1;
            (1..=3).contains(&part.len())
                && part.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 255
        });
        if valid && parts == 4 {
            return Some(Found {
                start,
                end,
                marker: "<ipv4>",
            });
        }
    }
    None
}

/// Eight colon-separated groups of 1-4 hex digits, or a form with one `::` and one to seven
/// groups; not touching a letter, digit, colon or dot. Such an address is a whole run of hex
/// digits and colons, so each run is tested once (`10:11:12` and `std::vector` are none).
fn ipv6(s: &[u8], from: usize) -> Option<Found> {
    let mut i = from;
    while let Some(colon) = next_byte(s, i, b':') {
        // The run of hex digits and colons around this colon.
        let mut start = colon;
        while start > i && (s[start - 1].is_ascii_hexdigit() || s[start - 1] == b':') {
            start -= 1;
        }
        let end = colon
            + s[colon..]
                .iter()
                .position(|&b| !(b.is_ascii_hexdigit() || b == b':'))
                .unwrap_or(s.len() - colon);
        i = end;
        let free =
            |b: Option<u8>| !b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b':' || b == b'.');
        if free(before(s, start)) && free(s.get(end).copied()) && is_ipv6(&s[start..end]) {
            return Some(Found {
                start,
                end,
                marker: "<ipv6>",
            });
        }
    }
    None
}

fn is_ipv6(run: &[u8]) -> bool {
    let groups = |part: &[u8]| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let mut n = 0;
        for g in part.split(|&b| b == b':') {
            if !(1..=4).contains(&g.len()) {
                return None;
            }
            n += 1;
        }
        Some(n)
    };
    match run.windows(2).position(|w| w == b"::") {
        None => groups(run) == Some(8),
        Some(p) => {
            let (left, right) = (&run[..p], &run[p + 2..]);
            match (groups(left), groups(right)) {
                (Some(l), Some(r)) => (1..=7).contains(&(l + r)),
                _ => false,
            }
        }
    }
}

/// 8-4-4-4-12 hex digits, not touching a letter or digit (a GUID-shaped part of a longer hex
/// run is not one).
fn guid(s: &[u8], from: usize) -> Option<Found> {
    const LEN: usize = 36;
    let mut i = from;
    while let Some(dash) = next_byte(s, i, b'-') {
        i = dash + 1;
        // The first dash of a GUID is its ninth byte.
        let Some(start) = dash.checked_sub(8).filter(|&st| st >= from) else {
            continue;
        };
        // Too short here, too short at every later dash.
        let candidate = s.get(start..start + LEN)?;
        let shaped = candidate.iter().enumerate().all(|(k, &b)| match k {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
        let free = |b: Option<u8>| !b.is_some_and(|b| b.is_ascii_alphanumeric());
        if shaped && free(before(s, start)) && free(s.get(start + LEN).copied()) {
            return Some(Found {
                start,
                end: start + LEN,
                marker: "<guid>",
            });
        }
    }
    None
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// 24 or more of `[A-Za-z0-9_-]` holding at least one digit, not touching another of them:
/// a whole run of those bytes.
fn token(s: &[u8], from: usize) -> Option<Found> {
    let mut i = from;
    // A run that began before `from` is not this call's to take.
    while i < s.len() && i > 0 && is_token(s[i - 1]) && is_token(s[i]) {
        i += 1;
    }
    while let Some((start, end)) = next_run(s, i, is_token, is_token) {
        i = end;
        if end - start >= 24 && s[start..end].iter().any(u8::is_ascii_digit) {
            return Some(Found {
                start,
                end,
                marker: "<token>",
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every match of `d` in `s`, as the texts it covers.
    fn matches(d: Detector, s: &str, who: &UserIdentity) -> Vec<String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut from = 0;
        while let Some(f) = find(d, b, from, who) {
            assert!(f.end > f.start && f.start >= from, "{d:?} in {s:?}: {f:?}");
            out.push(s[f.start..f.end].to_owned());
            from = f.end;
        }
        out
    }

    fn nobody() -> UserIdentity {
        UserIdentity::default()
    }

    fn all(d: Detector, s: &str) -> Vec<String> {
        matches(d, s, &nobody())
    }

    #[test]
    fn names_in_the_tables_order() {
        let names: Vec<&str> = Detector::ALL.iter().map(|d| d.name()).collect();
        assert_eq!(
            names,
            ["email", "user_path", "ipv4", "ipv6", "guid", "token"]
        );
        for d in Detector::ALL {
            assert_eq!(Detector::from_name(d.name()), Some(d));
            assert_eq!(
                d as usize,
                Detector::ALL.iter().position(|x| *x == d).unwrap()
            );
        }
        assert_eq!(Detector::from_name("Email"), None);
    }

    #[test]
    fn emails() {
        let e = |s: &str| all(Detector::Email, s);
        assert_eq!(
            e("mail ann.lee+tag@mail.example.co.uk now"),
            ["ann.lee+tag@mail.example.co.uk"]
        );
        assert_eq!(e("a_b%c-d@x-y.org"), ["a_b%c-d@x-y.org"]);
        assert_eq!(e("a@b.cc"), ["a@b.cc"]);
        assert_eq!(e("<a@b.cc>, (c@d.ee)."), ["a@b.cc", "c@d.ee"]);
        assert_eq!(
            e("ann@example.com."),
            ["ann@example.com"],
            "a sentence's full stop"
        );
        assert_eq!(e("ann@example.com.1x"), ["ann@example.com"]);
        assert_eq!(e("a@b@c.de"), ["b@c.de"]);
        assert_eq!(
            e("a@b.de@c.fg"),
            ["a@b.de"],
            "the second has no local part left"
        );
        for none in [
            "@example.com",
            "ann@",
            "ann@example",
            "ann@example.c",
            "ann@host.local1",
            "ann@.com",
            "ann@example..com",
            "ann@-.x",
            "no at sign",
            "ann @example.com",
        ] {
            assert_eq!(e(none), Vec::<String>::new(), "{none}");
        }
        assert_eq!(
            e("ann@example.com-x"),
            Vec::<String>::new(),
            "the last label is not letters"
        );
        assert_eq!(e("ann@EXAMPLE.COM"), ["ann@EXAMPLE.COM"]);
        assert_eq!(
            e("é@example.com"),
            Vec::<String>::new(),
            "no ASCII local part"
        );
        assert_eq!(e("xé.y@example.com"), [".y@example.com"]);
    }

    fn unix() -> UserIdentity {
        UserIdentity::new(Some("/home/ann"), Some("ann"), false)
    }

    fn windows() -> UserIdentity {
        UserIdentity::new(Some(r"C:\Users\Ann"), Some("Ann"), true)
    }

    #[test]
    fn the_home_folder_where_it_begins_a_path() {
        let u = |s: &str| matches(Detector::UserPath, s, &unix());
        assert_eq!(u("/home/ann"), ["/home/ann"]);
        assert_eq!(u("/home/ann/src/x.rs"), ["/home/ann"]);
        assert_eq!(
            u("at /home/ann/x and /home/ann"),
            ["/home/ann", "/home/ann"]
        );
        // abi.md: followed by a separator or the end, nothing else (a quote ends no path).
        assert_eq!(u("'/home/ann'"), Vec::<String>::new());
        assert_eq!(u("~:/home/ann\\x"), ["/home/ann"]);
        // Not where it continues a word or another path.
        for (s, why) in [
            ("x/home/ann/y", "a letter"),
            ("9/home/ann", "a digit"),
            ("/data/home/ann2", "another path, and no segment ann"),
            ("./home/annex", "a dot, and not a whole segment"),
            ("_/home/annex", "an underscore"),
            ("-/home/annex", "a dash"),
            ("/home/annex/y", "not followed by a separator"),
            ("/home/an", "shorter"),
            ("/HOME/ANNA", "case matters on Unix"),
        ] {
            assert!(!u(s).contains(&"/home/ann".to_owned()), "{s}: {why}");
        }
        assert_eq!(
            u("//home/ann"),
            ["ann"],
            "preceded by a slash: only the login segment"
        );
    }

    #[test]
    fn login_segments() {
        let u = |s: &str| matches(Detector::UserPath, s, &unix());
        assert_eq!(u("/srv/ann/x"), ["ann"]);
        assert_eq!(u("/srv/ann"), ["ann"]);
        assert_eq!(u(r"D:\ann\x"), ["ann"]);
        assert_eq!(u("/srv/ann/ann/"), ["ann", "ann"]);
        for none in ["ann", "/srv/anna", "/srv/xann/", "ann/x", "/srv/Ann/"] {
            assert_eq!(u(none), Vec::<String>::new(), "{none}");
        }
        let no_login = UserIdentity::new(Some("/home/ann"), None, false);
        assert_eq!(
            matches(Detector::UserPath, "/srv/ann/", &no_login),
            Vec::<String>::new()
        );
    }

    #[test]
    fn windows_rules_ignore_case_and_slash_direction() {
        let w = |s: &str| matches(Detector::UserPath, s, &windows());
        assert_eq!(w(r"C:\Users\Ann\AppData"), [r"C:\Users\Ann"]);
        assert_eq!(w("c:/users/ann/AppData"), ["c:/users/ann"]);
        assert_eq!(w(r"C:/Users\ANN"), [r"C:/Users\ANN"]);
        assert_eq!(w(r"D:\Backup\ANN\x"), ["ANN"]);
        assert_eq!(
            w(r"XC:\Users\Ann"),
            ["Ann"],
            "preceded by a letter: only the segment"
        );
        // A Unix identity does not mix the separators.
        assert_eq!(matches(Detector::UserPath, r"\home\ann", &unix()), ["ann"]);
    }

    #[test]
    fn ipv4_addresses() {
        let v = |s: &str| all(Detector::Ipv4, s);
        assert_eq!(
            v("from 10.0.0.1 to 255.255.255.255"),
            ["10.0.0.1", "255.255.255.255"]
        );
        assert_eq!(v("(192.168.001.010)"), ["192.168.001.010"]);
        assert_eq!(v("1.2.3.4:443"), ["1.2.3.4"]);
        assert_eq!(v("1.2.3.4/24"), ["1.2.3.4"]);
        for none in [
            "1.2.3.4.5",
            "v1.2.3.4",
            "1.2.3.4a",
            ".1.2.3.4",
            "1.2.3.4.",
            "1.2.3",
            "256.1.1.1",
            "1.2.3.1000",
            "1..2.3",
            "1.2.3.4.5.6.7.8",
            "01.2.3.4x",
            "1.2.3.04.5",
        ] {
            assert_eq!(v(none), Vec::<String>::new(), "{none}");
        }
        assert_eq!(v("version 1.2.3.4.5 then 8.8.8.8"), ["8.8.8.8"]);
    }

    #[test]
    fn ipv6_addresses() {
        let v = |s: &str| all(Detector::Ipv6, s);
        assert_eq!(v("2001:db8:0:0:0:0:2:1"), ["2001:db8:0:0:0:0:2:1"]);
        assert_eq!(v("[2001:db8::1]:443"), ["2001:db8::1"]);
        assert_eq!(v("::1 and fe80:: and ::ffff"), ["::1", "fe80::", "::ffff"]);
        assert_eq!(v("1:2:3:4:5:6::7"), ["1:2:3:4:5:6::7"]);
        assert_eq!(v("fe80::1%eth0"), ["fe80::1"]);
        for none in [
            "10:11:12",
            "std::vector",
            "::",
            ":::1",
            "1::2::3",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7::8",
            "12345::1",
            "a::b.c",
            "x::1",
            "::1x",
            "1.::2",
            "g::1",
            "12:30:45",
            "2026-05-07T03:09:12.345Z",
            "::1:",
            ":1::2",
        ] {
            assert_eq!(v(none), Vec::<String>::new(), "{none}");
        }
    }

    #[test]
    fn guids() {
        let g = |s: &str| all(Detector::Guid, s);
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(g(id), [id]);
        assert_eq!(
            g(&format!("{{{}}}", id.to_uppercase())),
            [id.to_uppercase()]
        );
        assert_eq!(g(&format!("id={id}-{id}")), [id, id]);
        for none in [
            format!("a{id}"),
            format!("{id}0"),
            format!("ab{id}cd"),
            "0f8fad5b-d9cb-469f-a165-70867728950".to_owned(),
            "0f8fad5bd9cb-469f-a165-70867728950e".to_owned(),
            "0f8fad5g-d9cb-469f-a165-70867728950e".to_owned(),
        ] {
            assert_eq!(g(&none), Vec::<String>::new(), "{none}");
        }
    }

    #[test]
    fn tokens() {
        let t = |s: &str| all(Detector::Token, s);
        let t24 = "abcdefghijklmnopqrstuvw1";
        assert_eq!(t24.len(), 24);
        assert_eq!(t(t24), [t24]);
        assert_eq!(t(&format!("key={t24};")), [t24]);
        assert_eq!(
            t("ghp_0123456789abcdefghijABCDEFGHIJ-_xyz"),
            ["ghp_0123456789abcdefghijABCDEFGHIJ-_xyz"]
        );
        assert_eq!(t(&t24[1..]), Vec::<String>::new(), "23 characters");
        assert_eq!(
            t("abcdefghijklmnopqrstuvwx"),
            Vec::<String>::new(),
            "24 without a digit"
        );
        assert_eq!(t(&format!("{t24}/{t24}")), [t24, t24]);
        assert_eq!(
            t(&format!("é{t24}é")),
            [t24],
            "non-ASCII is not a token byte"
        );
        // A run that began before `from` is not taken from its middle.
        let s = format!("{t24}{t24}");
        assert_eq!(find(Detector::Token, s.as_bytes(), 5, &nobody()), None);
    }
}
