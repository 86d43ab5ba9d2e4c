//! Reading a cache file line by line within a memory bound, and telling whose a line is.

use std::io::{self, BufRead};

/// How every line this library writes begins; a file whose first line does not is not a cache.
pub(super) const ENVELOPE_START: &[u8] = b"{\"ver\":\"4.0\"";

/// Whether the first line that is not empty begins as every line this library writes.
pub(super) fn starts_like_a_cache(reader: &mut impl BufRead) -> io::Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(true); // empty
        }
        let newlines = buf.iter().take_while(|b| **b == b'\n').count();
        if newlines == 0 {
            let n = buf.len().min(ENVELOPE_START.len());
            return Ok(buf[..n] == ENVELOPE_START[..n]);
        }
        reader.consume(newlines);
    }
}

/// Reads one line into `buf` (without its `\n`). `Some(true)`: the line fits `cap`; `Some(false)`:
/// it does not, and the rest of it was read past without being kept; `None`: end of file.
pub(super) fn read_capped_line(
    reader: &mut impl BufRead,
    cap: usize,
    buf: &mut Vec<u8>,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut any = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(fits));
        }
        any = true;
        let (line, used, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (&chunk[..i], i + 1, true),
            None => (chunk, chunk.len(), false),
        };
        if fits && buf.len() + line.len() <= cap {
            buf.extend_from_slice(line);
        } else if fits {
            fits = false;
            buf.clear();
            buf.shrink_to(64 * 1024);
        }
        reader.consume(used);
        if end {
            return Ok(Some(fits));
        }
    }
}

/// The envelope's `iKey`, read by parsing the line as one JSON object (values other than the
/// `iKey` are skipped without being converted, so a line with a number no double holds still
/// tells whose it is). `None`: not a JSON object with a string `iKey`.
pub(super) fn envelope_ikey(line: &str) -> Option<String> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Ikey;
    impl<'de> Visitor<'de> for Ikey {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an envelope")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut ikey = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "iKey" && ikey.is_none() {
                    ikey = Some(map.next_value::<String>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(ikey)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let ikey = de.deserialize_map(Ikey).ok()?;
    de.end().ok()?;
    ikey
}
