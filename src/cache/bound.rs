//! What a cache file may hold: `cache_max_bytes` of entries (lower priorities and the oldest
//! go first) no older than `cache_max_age_s`.

use super::entry::Entry;

/// Drops entries until they fit `max_bytes` (lines and newlines), lower priorities first and
/// oldest first within a priority; returns how many went.
pub(super) fn evict_to(max_bytes: u64, entries: &mut Vec<Entry>) -> usize {
    let mut total = bytes_of(entries);
    if total <= max_bytes {
        return 0;
    }
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by_key(|&i| (entries[i].priority, entries[i].time_ms, i));
    let mut drop = vec![false; entries.len()];
    let mut evicted = 0;
    for i in order {
        if total <= max_bytes {
            break;
        }
        total -= entries[i].line.len() as u64 + 1;
        drop[i] = true;
        evicted += 1;
    }
    let mut i = 0;
    entries.retain(|_| {
        let keep = !drop[i];
        i += 1;
        keep
    });
    evicted
}

/// Drops the entries whose event time is before `now_ms - max_age_ms`; returns how many went.
pub(super) fn expire(now_ms: u64, max_age_ms: u64, entries: &mut Vec<Entry>) -> usize {
    let before = entries.len();
    let oldest_allowed = now_ms.saturating_sub(max_age_ms);
    entries.retain(|e| e.time_ms >= oldest_allowed);
    before - entries.len()
}

/// The bytes `entries` take in a file, lines and newlines.
pub(super) fn bytes_of(entries: &[Entry]) -> u64 {
    entries.iter().map(|e| e.line.len() as u64 + 1).sum()
}
