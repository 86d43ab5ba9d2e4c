//! The shutdown time budget. abi.md: `tel_shutdown(t)` returns within `t` plus 200 ms, even
//! when the collector hangs mid-request and whatever a callback does; these shares of the
//! 200 ms add up below it.

use std::time::Duration;

/// How long past its deadline a shutdown waits for the worker to end by itself before
/// taking over what it holds (it is then stuck in a request or in a callback).
pub const EXIT_GRACE: Duration = Duration::from_millis(40);
/// How long a shutdown that took over waits for another process's cache lock to persist.
pub const TAKEOVER_WRITE: Duration = Duration::from_millis(120);
/// How long past the deadline the worker's own last write waits for the cache lock.
pub const LAST_WRITE: Duration = Duration::from_millis(150);
/// The latest a shutdown or close returns past its deadline. What is left of the margin
/// goes to the delivery reports and log lines still being handed over, and to the
/// delivery callbacks still running: they are waited for until then, not longer.
pub const RETURN: Duration = Duration::from_millis(180);
