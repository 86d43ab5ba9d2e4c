//! Wall-clock time in the forms the protocol uses: Unix milliseconds, the envelope's
//! `YYYY-MM-DDTHH:MM:SS.sssZ`, and the HTTP-date of `Retry-After`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Days since 1970-01-01 to a civil (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A civil date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `2026-05-07T03:09:12.345Z` for a Unix-ms instant.
pub fn write_iso8601(out: &mut String, unix_ms: u64) {
    let secs = (unix_ms / 1000) as i64;
    let ms = (unix_ms % 1000) as u32;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400) as u32;
    let mut buf = [0u8; 24];
    let put = |buf: &mut [u8], at: usize, v: u32, width: usize| {
        let mut v = v;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(&mut buf, 0, y.clamp(0, 9999) as u32, 4);
    buf[4] = b'-';
    put(&mut buf, 5, mo, 2);
    buf[7] = b'-';
    put(&mut buf, 8, d, 2);
    buf[10] = b'T';
    put(&mut buf, 11, sod / 3600, 2);
    buf[13] = b':';
    put(&mut buf, 14, sod / 60 % 60, 2);
    buf[16] = b':';
    put(&mut buf, 17, sod % 60, 2);
    buf[19] = b'.';
    put(&mut buf, 20, ms, 3);
    buf[23] = b'Z';
    // Every byte written above is ASCII.
    out.push_str(std::str::from_utf8(&buf).unwrap_or_default());
}

pub fn iso8601(unix_ms: u64) -> String {
    let mut s = String::with_capacity(24);
    write_iso8601(&mut s, unix_ms);
    s
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

pub(crate) fn to_unix_ms(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> Option<u64> {
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if !(1970..=9999).contains(&y) || d == 0 || d > days_in_month || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s.min(59)) as i64;
    Some(secs as u64 * 1000 + ms as u64)
}

/// Parses the envelope's `YYYY-MM-DDTHH:MM:SS.sssZ` back to Unix ms.
pub fn parse_iso8601(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    // The envelope form is only ever written by this library: no leap second.
    let second = digits(&s[17..19]).filter(|s| *s < 60)?;
    to_unix_ms(
        digits(&s[0..4])? as i64,
        digits(&s[5..7])?,
        digits(&s[8..10])?,
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        second,
        digits(&s[20..23])?,
    )
}

/// Parses an HTTP-date to Unix ms, in any of the three forms RFC 9110 has a recipient accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`, what servers send), RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). `httpdate`
/// reads them, as strictly as the RFC writes them (a weekday that is not the date's is no date).
pub fn parse_http_date(s: &str) -> Option<u64> {
    let at = httpdate::parse_http_date(s).ok()?;
    at.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_778_123_352_345), "2026-05-07T03:09:12.345Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
        for t in [
            0u64,
            1,
            951_782_400_000,
            1_778_123_352_345,
            4_102_444_799_999,
        ] {
            assert_eq!(parse_iso8601(&iso8601(t)), Some(t));
        }
        assert_eq!(parse_iso8601("2026-02-30T00:00:00.000Z"), None);
        assert_eq!(parse_iso8601("2026-05-07T03:09:12Z"), None);
        assert_eq!(parse_iso8601("2000-01-01T00:00:60.000Z"), None);
    }

    #[test]
    fn parses_http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        // RFC 850 and asctime, which RFC 9110 has a recipient accept too.
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777_000)
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49 GMT"), None);
        assert_eq!(parse_http_date("soon"), None);
    }
}
