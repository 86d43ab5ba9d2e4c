//! What every detector scans with: a match, the next byte, the byte before, the next run.

/// One match: the bytes `start..end` of the string are replaced by `marker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) marker: &'static str,
}

/// The position of the next `byte` at or after `from`.
pub(crate) fn next_byte(s: &[u8], from: usize, byte: u8) -> Option<usize> {
    memchr::memchr(byte, s.get(from..)?).map(|p| from + p)
}

pub(super) fn before(s: &[u8], i: usize) -> Option<u8> {
    i.checked_sub(1).map(|j| s[j])
}

/// The maximal run at or after `from` of bytes for which `member` holds, starting with a byte
/// for which `first` holds; `(start, end)`.
pub(super) fn next_run(
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

/// Every match `find` makes in `s`, from its start, as the texts they cover (for the tests).
#[cfg(test)]
pub(super) fn every_match(find: impl Fn(&[u8], usize) -> Option<Found>, s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(f) = find(b, from) {
        assert!(f.end > f.start && f.start >= from, "in {s:?}: {f:?}");
        out.push(s[f.start..f.end].to_owned());
        from = f.end;
    }
    out
}
