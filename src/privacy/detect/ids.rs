//! Identifiers and secrets: GUIDs (`guid`) and long tokens (`token`).

use super::scan::{before, next_byte, next_run, Found};

/// 8-4-4-4-12 hex digits, not touching a letter or digit (a GUID-shaped part of a longer hex
/// run is not one).
pub(super) fn guid(s: &[u8], from: usize) -> Option<Found> {
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
pub(super) fn token(s: &[u8], from: usize) -> Option<Found> {
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
    use crate::privacy::detect::scan::every_match;

    #[test]
    fn guids() {
        let g = |s: &str| every_match(guid, s);
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
        let t = |s: &str| every_match(token, s);
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
        assert_eq!(token(s.as_bytes(), 5), None);
    }
}
