//! Reading a cache file line by line within a memory bound, and telling whose a line is.

use super::bound::{bytes_of, evict_to};
use super::entry::Entry;
use super::owner::{taken_over, Owner};
use crate::sys::private_file;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

/// Lines of other tenants held while a file is rewritten: at most this, or `cache_max_bytes` if
/// larger; past it the file is left alone as unusable.
const MIN_FOREIGN_BUDGET: u64 = 4 << 20;

/// What reading the cache file (and dead sessions' claims) found.
#[derive(Default)]
pub(super) struct Contents {
    pub(super) entries: Vec<Entry>,
    /// Bytes of `entries`, lines and newlines.
    pub(super) entry_bytes: u64,
    /// Other tenants' lines, written back as they are.
    pub(super) foreign: Vec<String>,
    pub(super) foreign_bytes: u64,
    /// Entries evicted while reading, to keep memory within twice `cache_max_bytes`.
    pub(super) evicted: usize,
    /// Lines dropped as unreadable (garbage, torn, overlong): no event is lost with them.
    pub(super) skipped: usize,
}

/// What a line of a cache file is.
enum Class {
    Ours(Entry),
    Foreign(String),
    Garbage,
}

/// How a session reads a cache file (or a dead session's claim): whose lines are its entries,
/// the longest line kept, the memory bound, and who may stop it.
pub(super) struct Reader<'a> {
    /// `o:<tenant>`, the envelope iKey of this tenant's lines.
    pub(super) tenant_ikey: &'a str,
    pub(super) max_line: usize,
    pub(super) max_bytes: u64,
    pub(super) owner: Option<&'a dyn Owner>,
}

impl Reader<'_> {
    /// Reads the cache file into `into`. A missing file is empty. A file that is not a regular
    /// file, or whose first line is not an envelope (a `cache_path` naming some other file), is
    /// an error and is left untouched: it is not ours to rewrite or delete.
    pub(super) fn read_file(&self, path: &Path, into: &mut Contents) -> io::Result<()> {
        let Some(f) = private_file::open_read(path)? else {
            return Ok(());
        };
        let mut reader = BufReader::with_capacity(64 * 1024, f);
        if !starts_like_a_cache(&mut reader)? {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "is not a cache file (its first line is not a Common Schema 4.0 envelope); left untouched",
            ));
        }
        self.read_lines(reader, into)
    }

    /// Reads lines one at a time, holding at most one line (of at most `max_line` bytes) besides
    /// what it keeps; this tenant's entries past twice `max_bytes` are evicted as they come.
    pub(super) fn read_lines(
        &self,
        mut reader: impl BufRead,
        into: &mut Contents,
    ) -> io::Result<()> {
        let foreign_budget = self.max_bytes.max(MIN_FOREIGN_BUDGET);
        let mut buf = Vec::new();
        while let Some(fits) = read_capped_line(&mut reader, self.max_line, &mut buf)? {
            if self.owner.is_some_and(|o| o.taken_over()) {
                return Err(taken_over());
            }
            if !fits {
                into.skipped += 1; // longer than any event may be
                continue;
            }
            if buf.is_empty() {
                continue;
            }
            match self.classify(&buf) {
                Class::Ours(entry) => {
                    into.entry_bytes += entry.line.len() as u64 + 1;
                    into.entries.push(entry);
                    if into.entry_bytes > self.max_bytes.saturating_mul(2) {
                        into.evicted += evict_to(self.max_bytes, &mut into.entries);
                        into.entry_bytes = bytes_of(&into.entries);
                    }
                }
                Class::Foreign(line) => {
                    into.foreign_bytes += line.len() as u64 + 1;
                    if into.foreign_bytes > foreign_budget {
                        return Err(io::Error::other(
                            "holds more lines of other tenants than the cache may hold; left as it is",
                        ));
                    }
                    into.foreign.push(line);
                }
                Class::Garbage => into.skipped += 1,
            }
        }
        Ok(())
    }

    /// Sorts a line: this tenant's entry, another tenant's, or garbage. The tenant is read from
    /// the envelope's `iKey` by a real parse (data that merely contains the text
    /// `"iKey":"o:<tenant>"` does not make a line this tenant's). Whether an entry may be sent
    /// is checked when it is claimed (`model::envelope::check_line`).
    fn classify(&self, bytes: &[u8]) -> Class {
        // Every line this library writes begins so (which keeps the first line of every file
        // it writes recognisable); anything else is not an entry of any tenant.
        if !bytes.starts_with(ENVELOPE_START) {
            return Class::Garbage;
        }
        let Ok(line) = std::str::from_utf8(bytes) else {
            return Class::Garbage;
        };
        let Some(ikey) = envelope_ikey(line) else {
            // Not a JSON object with a string iKey (an unterminated last line: a torn write).
            return Class::Garbage;
        };
        if ikey != self.tenant_ikey {
            return Class::Foreign(line.to_owned());
        }
        Class::Ours(Entry::new(line.to_owned()))
    }
}

/// How every line this library writes begins; a file whose first line does not is not a cache.
const ENVELOPE_START: &[u8] = b"{\"ver\":\"4.0\"";

/// Whether the first line that is not empty begins as every line this library writes.
fn starts_like_a_cache(reader: &mut impl BufRead) -> io::Result<bool> {
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
fn read_capped_line(
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
fn envelope_ikey(line: &str) -> Option<String> {
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
