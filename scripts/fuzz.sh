#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer) of every parser that reads outside data: the fuzz/
# workspace, one target a parser (fuzz/fuzz_targets/*.rs). Each target starts from its seed
# corpus in the repository and runs for a bounded time; a crash, a failed assertion, a leak of
# time (a unit over 10 s) or memory (over 2 GB) fails the run and leaves the input in
# $CARGO_TARGET_DIR/fuzz/artifacts/<target>/. See docs/reliability.md.
#
#   scripts/fuzz.sh                          # every target, 60 s each (CI sets FUZZ_SECONDS)
#   FUZZ_SECONDS=3600 scripts/fuzz.sh        # the longer run: an hour a target
#   scripts/fuzz.sh response cache_file      # only these targets
#   scripts/fuzz.sh --replay FILE... TARGET  # run inputs through a target once (reproduce)
#
# Built on the stable toolchain with RUSTC_BOOTSTRAP=1 and the flags `cargo fuzz build
# --sanitizer none` passes (SanitizerCoverage, --cfg fuzzing, debug assertions, overflow
# checks), so nothing beyond cargo and a C++ compiler (for libFuzzer itself) is needed; with
# cargo-fuzz installed, `cd fuzz && cargo fuzz run <target>` runs the same targets. No
# AddressSanitizer here: the parsers are safe Rust, and scripts/sanitizers.sh runs the library
# under ASan; without it a target runs several times faster.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/target-dir.sh
. scripts/lib/target-dir.sh
work=$target/fuzz
seconds=${FUZZ_SECONDS:-60}

# target: seed folders (read, never written: new inputs go to $work/corpus/<target>).
declare -A seeds=(
  [config]="tests/fuzz-corpus/config"
  [properties]="tests/fuzz-corpus/properties tests/fuzz-corpus/name"
  [response]="fuzz/seeds/response"
  [cache_file]="tests/fuzz-corpus/cache"
  [kill_file]="fuzz/seeds/kill_file"
)
all=(config properties response cache_file kill_file)
# Targets added later run when their file exists (seeds under fuzz/seeds/<target>).
for f in fuzz/fuzz_targets/*.rs; do
  t=$(basename "$f" .rs)
  [ -n "${seeds[$t]:-}" ] && continue
  seeds[$t]="fuzz/seeds/$t"
  all+=("$t")
done

replay=()
if [ "${1:-}" = --replay ]; then
  shift
  while [ $# -gt 1 ]; do replay+=("$1"); shift; done
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions \
-Coverflow-checks -Cforce-frame-pointers=yes"
triple=x86_64-unknown-linux-gnu
echo "==> [$(date -u +%T)] build the fuzz targets"
# Not --locked: fuzz/Cargo.lock follows the library's dependencies, which change in the main
# workspace; cargo adds what is new and keeps every version already locked.
cargo build --release --manifest-path fuzz/Cargo.toml --target "$triple" \
  --target-dir "$work" --bins
bin=$work/$triple/release

if [ ${#replay[@]} -gt 0 ]; then
  exec "$bin/${targets[0]}" "${replay[@]}"
fi

failed=()
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
  dirs=()
  for d in ${seeds[$t]}; do
    [ -d "$d" ] && dirs+=("$d")
  done
  mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
  echo "==> [$(date -u +%T)] $t for ${seconds}s (seeds: ${dirs[*]:-none})"
  log=$work/$t.log
  if "$bin/$t" "$work/corpus/$t" "${dirs[@]}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/" \
    >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "    ok: $runs runs, $cov, corpus $(find "$work/corpus/$t" -type f | wc -l) files"
  else
    failed+=("$t")
    grep -v '^#[0-9]' "$log" | tail -40
    echo "    FAILED: input in $work/artifacts/$t/; reproduce with"
    echo "    scripts/fuzz.sh --replay $work/artifacts/$t/<file> $t"
    echo "    and add it as a regression test (tests/fuzz_*.rs) before fixing it."
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: findings in ${failed[*]}" >&2
  exit 1
fi
echo "==> fuzz targets passed"
