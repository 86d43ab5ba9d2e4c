//! The user's own paths (`user_path`): the home folder where it begins a path, and a path
//! segment that is the login name.

use super::scan::{before, Found};
use crate::privacy::identity::UserIdentity;

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
pub(super) fn user_path(s: &[u8], from: usize, who: &UserIdentity) -> Option<Found> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::detect::scan::every_match;

    fn unix() -> UserIdentity {
        UserIdentity::new(Some("/home/ann"), Some("ann"), false)
    }

    fn windows() -> UserIdentity {
        UserIdentity::new(Some(r"C:\Users\Ann"), Some("Ann"), true)
    }

    #[test]
    fn the_home_folder_where_it_begins_a_path() {
        let u = |s: &str| every_match(|b, from| user_path(b, from, &unix()), s);
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
        let u = |s: &str| every_match(|b, from| user_path(b, from, &unix()), s);
        assert_eq!(u("/srv/ann/x"), ["ann"]);
        assert_eq!(u("/srv/ann"), ["ann"]);
        assert_eq!(u(r"D:\ann\x"), ["ann"]);
        assert_eq!(u("/srv/ann/ann/"), ["ann", "ann"]);
        for none in ["ann", "/srv/anna", "/srv/xann/", "ann/x", "/srv/Ann/"] {
            assert_eq!(u(none), Vec::<String>::new(), "{none}");
        }
        let no_login = UserIdentity::new(Some("/home/ann"), None, false);
        assert_eq!(
            every_match(|b, from| user_path(b, from, &no_login), "/srv/ann/"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn windows_rules_ignore_case_and_slash_direction() {
        let w = |s: &str| every_match(|b, from| user_path(b, from, &windows()), s);
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
        assert_eq!(
            every_match(|b, from| user_path(b, from, &unix()), r"\home\ann"),
            ["ann"]
        );
    }
}
