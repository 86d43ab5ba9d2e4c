//! Addresses: e-mail (`email`), IPv4 (`ipv4`) and IPv6 (`ipv6`).

use super::scan::{before, next_byte, next_run, Found};

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
pub(super) fn email(s: &[u8], from: usize) -> Option<Found> {
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

/// Four dot-separated numbers 0-255 (1 to 3 digits each), not touching a letter, digit or dot.
/// Such an address is a whole run of digits and dots, so each run is tested once.
pub(super) fn ipv4(s: &[u8], from: usize) -> Option<Found> {
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
pub(super) fn ipv6(s: &[u8], from: usize) -> Option<Found> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::detect::scan::every_match;

    #[test]
    fn emails() {
        let e = |s: &str| every_match(email, s);
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

    #[test]
    fn ipv4_addresses() {
        let v = |s: &str| every_match(ipv4, s);
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
        let v = |s: &str| every_match(ipv6, s);
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
}
