//! When to try again after a failure.

use std::time::Duration;

/// Longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Exponential backoff with full jitter: the `n`th consecutive failure (n >= 1) waits a uniform
/// time between `initial` and `min(max, initial * 2^(n-1))`. The floor at `initial` (instead of
/// zero) means a dead network never sees more than one request per `initial`. `draw` is a
/// uniform random number (any `u64`): the jitter is taken from it, so the result is a function
/// of its arguments.
pub fn delay(failures: u32, initial_ms: u64, max_ms: u64, draw: u64) -> Duration {
    let exp = failures.saturating_sub(1).min(40);
    let cap = initial_ms
        .saturating_mul(1u64 << exp)
        .min(max_ms)
        .max(initial_ms);
    let span = cap - initial_ms;
    let jitter = match span.checked_add(1) {
        Some(n) => draw % n,
        None => draw,
    };
    Duration::from_millis(initial_ms + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_within_bounds() {
        for n in 1..60 {
            let d = delay(n, 100, 5000, crate::sys::random::u64()).as_millis() as u64;
            let cap = (100u64 << (n - 1).min(40)).min(5000);
            assert!((100..=cap.max(100)).contains(&d), "n={n} d={d}");
        }
    }

    #[test]
    fn the_draw_spans_the_whole_range() {
        // The third failure in a row: between 100 and 400 ms, both ends included.
        assert_eq!(delay(3, 100, 5000, 0), Duration::from_millis(100));
        assert_eq!(delay(3, 100, 5000, 300), Duration::from_millis(400));
        assert_eq!(delay(3, 100, 5000, 301), Duration::from_millis(100));
        assert_eq!(
            delay(1, 100, 50, 7),
            Duration::from_millis(100),
            "never below initial"
        );
    }
}
