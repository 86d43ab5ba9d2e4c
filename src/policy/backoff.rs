//! When to try again after a failure.

use crate::sys::random::Jitter;
use std::time::Duration;

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter: the `n`th consecutive failure (n >= 1) waits a uniform
/// time between `initial` and `min(max, initial * 2^(n-1))`. The floor at `initial` (instead of
/// zero) means a dead network never sees more than one request per `initial`.
pub fn delay(failures: u32, initial_ms: u64, max_ms: u64, jitter: &mut Jitter) -> Duration {
    let exp = failures.saturating_sub(1).min(40);
    let cap = initial_ms
        .saturating_mul(1u64 << exp)
        .min(max_ms)
        .max(initial_ms);
    Duration::from_millis(initial_ms + jitter.up_to(cap - initial_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds() {
        let mut j = Jitter::new();
        for n in 1..60 {
            let d = delay(n, 100, 5000, &mut j).as_millis() as u64;
            let cap = (100u64 << (n - 1).min(40)).min(5000);
            assert!((100..=cap.max(100)).contains(&d), "n={n} d={d}");
        }
    }
}
