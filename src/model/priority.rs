//! How much an event matters when room runs out (abi.md, "Priority"): a leaf type shared by
//! the options, the queue and the cache.

/// How much an event matters when room runs out (abi.md, "Priority").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    #[default]
    Normal = 0,
    High = 1,
    /// Also durable: in the cache file before `tel_log_ex` returns, sent at once.
    Critical = 2,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }
}
