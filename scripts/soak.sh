#!/usr/bin/env bash
# Soak test (not part of CI): the library at a steady rate against a collector that faults at
# random, printing RSS, open descriptors, threads and the conservation balance as it goes.
#   scripts/soak.sh [SECONDS=600] [EVENTS_PER_SECOND=1000] [REPORT_EVERY_S=10] [SESSION_S=20]
# Sessions last SESSION_S on average; after each tel_shutdown, pending must be 0 and the balance
# exact. The logger blocks at random and another process holds the cache lock at random.
# Exits non-zero when a counter does not balance, the shutdown deadline was missed, or the
# second session did not deliver what the first persisted. Linux only (reads /proc/self).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
rate="${2:-1000}"
report="${3:-10}"
session="${4:-20}"
cargo build --release --example soak >&2
exe="${CARGO_TARGET_DIR:-target}/release/examples/soak"
exec "$exe" --seconds "$seconds" --rate "$rate" --report "$report" --session "$session"
