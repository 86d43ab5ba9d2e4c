//! A cache entry: one envelope per line, exactly as it would be sent, marked with its priority.

use crate::model::priority::Priority;
use std::collections::HashSet;

/// An entry's line and its event time (0 when unreadable: such entries sort as oldest).
pub(super) struct Entry {
    pub(super) line: String,
    pub(super) time_ms: u64,
    /// From the line's priority mark (see [`mark`]).
    pub(super) priority: Priority,
}

impl Entry {
    pub(super) fn new(line: String) -> Entry {
        Entry {
            time_ms: crate::model::envelope::envelope_time_ms(&line).unwrap_or(0),
            priority: unmark(&line).1,
            line,
        }
    }
}

/// The line of a cache entry with its priority: `high` adds one trailing space, `critical`
/// two; `normal` lines are the bare envelope, as 0.1 wrote every line. Trailing whitespace is
/// still one valid JSON object, so 0.1 readers keep (and send) marked lines as they are.
pub fn mark(line: &str, priority: Priority) -> String {
    // Room for the newline a file adds after it.
    let mut s = String::with_capacity(line.len() + 3);
    s.push_str(line);
    match priority {
        Priority::Normal => {}
        Priority::High => s.push(' '),
        Priority::Critical => s.push_str("  "),
    }
    s
}

/// The envelope of a cache line and the priority its mark says (see [`mark`]).
pub fn unmark(line: &str) -> (&str, Priority) {
    let bare = line.trim_end_matches(' ');
    let priority = match line.len() - bare.len() {
        0 => Priority::Normal,
        1 => Priority::High,
        _ => Priority::Critical,
    };
    (bare, priority)
}

/// A cheap fingerprint of a line, to recognise entries this session put back.
pub fn fingerprint(line: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    line.hash(&mut h);
    h.finish()
}

pub type Fingerprints = HashSet<u64>;
