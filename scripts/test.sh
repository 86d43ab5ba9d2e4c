#!/usr/bin/env bash
# Runs every test of the project: Rust (library, emulator, telctl), formatting and lints, the
# header check, then the Python binding and the C/C++ side when their scripts exist. Ends with
# a table of each step's duration and of the disk it leaves used (also when a step fails).
#
# Disk: with TEL_TEST_PRUNE=1 (the default when CI is set) each step deletes the build outputs
# only it uses once it has passed (the sanitizer and fuzz builds, the C++ and Wine work folders,
# the cross builds' intermediate files), keeping the shared debug build and the shipped
# libraries the later steps take. The table gives the target folder after each step, the
# largest it was during the step, and the free space left; the run's peak is printed last.
# TEL_TEST_MIN_FREE_MB (default 4000, CI's need with pruning plus a margin) is checked first.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
target=$CARGO_TARGET_DIR
prune=${TEL_TEST_PRUNE:-${CI:+1}}
if [ -n "${CI:-}" ]; then
  # A fresh clone is built once: incremental compilation's caches (a second copy of every
  # workspace crate's intermediate state) would cost disk and buy nothing.
  export CARGO_INCREMENTAL=0
fi

# Disk use, in kB: the target folder (measured at each step's end and before each pruning)
# and the caches the run fills outside it.
mkdir -p "$target"
du_kb() { du -skx "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
free_mb() { df -Pm "$target" | awk 'NR == 2 {print $4}'; }
peak_kb=0
peak_step=
step_peak_kb=0
measure() { # -> target_kb; raises the step's and the run's peak
  target_kb=$(du_kb "$target")
  [ "$target_kb" -le "$step_peak_kb" ] || step_peak_kb=$target_kb
  if [ "$target_kb" -gt "$peak_kb" ]; then peak_kb=$target_kb; peak_step=$step_name; fi
}
caches_kb() { du_kb "${CARGO_HOME:-$HOME/.cargo}/registry" "${CARGO_HOME:-$HOME/.cargo}/git" "$HOME/.cache"; }
mb() { echo "$((($1 + 1023) / 1024)) MB"; }
# Deletes build outputs of a step that has passed (TEL_TEST_PRUNE=1), measuring first.
prune_dirs() {
  [ -n "$prune" ] || return 0
  measure
  local d
  for d in "$@"; do
    [ -e "$d" ] || continue
    echo "test.sh: pruning ${d#"$target"/} ($(mb "$(du_kb "$d")"))"
    rm -rf "$d"
  done
}
# A cargo profile folder whose libraries later steps take: keeps them, deletes the rest.
prune_build() {
  local d
  for d in "$@"; do
    prune_dirs "$d/deps" "$d/build" "$d/.fingerprint" "$d/incremental" "$d/examples"
  done
}

min_free=${TEL_TEST_MIN_FREE_MB:-4000}
free=$(free_mb)
echo "test.sh: $free MB free for $target; target folder $(mb "$(du_kb "$target")"), caches $(mb "$(caches_kb)")"
if [ "$free" -lt "$min_free" ]; then
  echo "test.sh: only $free MB free on the disk of $target; the run needs about $min_free MB" \
    "(TEL_TEST_MIN_FREE_MB; see the disk column of README.md's durations table)" >&2
  exit 1
fi

# Each step is timed from its `step` line to the next one (or the end).
step_names=()
step_seconds=()
step_disk=()
step_name=
step_started=0
end_step() {
  [ -n "$step_name" ] || return 0
  measure
  step_names+=("$step_name")
  step_seconds+=($(($(date +%s) - step_started)))
  step_disk+=("$(printf '%6d %6d %6d' $(((target_kb + 1023) / 1024)) $(((step_peak_kb + 1023) / 1024)) "$(free_mb)")")
  echo "test.sh: target folder $(mb "$target_kb") after \"$step_name\" (largest during it $(mb "$step_peak_kb")):" \
    "$(du -skx "$target"/* 2>/dev/null | sort -rn | head -n 6 | awk '{n = split($2, p, "/"); printf "%s %d MB, ", p[n], ($1 + 1023) / 1024}')"
  step_name=
}
step() {
  end_step
  step_name=$*
  step_started=$(date +%s)
  step_peak_kb=0
  printf '\n==== [%s] %s ====\n' "$(date -u +%T)" "$*"
}
durations() {
  local status=$? i total=0 failed=
  [ $status -eq 0 ] || failed=$step_name
  end_step
  printf '\n==== durations (disk in MB: the target folder at the end of the step, its largest during it, free) ====\n'
  printf '%-64s %8s %6s %6s %6s\n' step time target peak free
  for i in "${!step_names[@]}"; do
    total=$((total + step_seconds[i]))
    printf '%-64s %4dm %02ds %s%s\n' "${step_names[i]}" $((step_seconds[i] / 60)) $((step_seconds[i] % 60)) \
      "${step_disk[i]}" "$([ -n "$failed" ] && [ "$i" -eq $((${#step_names[@]} - 1)) ] && echo "  FAILED")"
  done
  printf '%-64s %4dm %02ds\n' "total" $((total / 60)) $((total % 60))
  printf 'peak disk: target folder %s (during "%s"); caches outside it (~/.cargo registry, ~/.cache) %s; pruning %s\n' \
    "$(mb "$peak_kb")" "$peak_step" "$(mb "$(caches_kb)")" "$([ -n "$prune" ] && echo on || echo off)"
  printf 'load average: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
  exit $status
}
trap durations EXIT

step "rustfmt"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test (workspace)"
cargo test --workspace --locked

step "the crate ships LICENSE (cargo package --list)"
crate_files=$(cargo package --list --locked --allow-dirty -p onecollector-tel)
grep -qx LICENSE <<<"$crate_files" ||
  { echo "test.sh: LICENSE is not among the files of the onecollector-tel package" >&2; exit 1; }
echo "LICENSE is one of the $(wc -l <<<"$crate_files") files of the onecollector-tel package"

step "hardening: fuzz corpora, sanitizers, valgrind"
bash scripts/hardening.sh
prune_dirs "$target/hardening"

step "ThreadSanitizer and AddressSanitizer (scripts/sanitizers.sh)"
# One sanitizer at a time: each one's build (std and every dependency instrumented, 1.2 to
# 1.5 GB) is deleted once it passed, before the next one's.
for sanitizer in thread address; do
  bash scripts/sanitizers.sh "$sanitizer"
  prune_dirs "$target/sanitizers"
done
step "libFuzzer targets, ${FUZZ_SECONDS:=10} s each (scripts/fuzz.sh)"
FUZZ_SECONDS=$FUZZ_SECONDS bash scripts/fuzz.sh
prune_dirs "$target/fuzz"

# README quickstarts: every C, C++, Python and Rust snippet of README.md compiled and run as
# written, against the emulator in a network namespace (scripts/readme-snippets.sh).
step "README snippets (scripts/readme-snippets.sh)"
bash scripts/readme-snippets.sh
prune_dirs "$target/readme-snippets"

for part in bindings/python/run-tests.sh bindings/cpp/run-tests.sh packaging/windows/run-tests.sh; do
  if [ -x "$part" ]; then
    step "$part"
    "$part"
    case $part in
      # The shipped Linux builds (and the host's dist folder, which holds their build
      # scripts) stay whole until the cross tests, whose shipped build is then a no-op.
      bindings/python/*)
        prune_dirs "$target"/python/{wheels,venv,wheel-venv,win-install,platform-install} ;;
      bindings/cpp/*) prune_dirs "$target/cpp" ;;
      # The Windows libraries stay for the NuGet package, without what built them.
      packaging/windows/*)
        prune_dirs "$target/windows-tests" "$target/x86_64-pc-windows-gnu/debug"
        prune_build "$target/x86_64-pc-windows-gnu/dist" "$target/aarch64-pc-windows-gnullvm/dist" ;;
    esac
  fi
done
# The other Linux targets, then the NuGet package with every runtime the steps above built.
for triple in aarch64-unknown-linux-gnu x86_64-unknown-linux-musl; do
  step "packaging/linux/cross-test.sh $triple"
  bash packaging/linux/cross-test.sh "$triple"
  prune_dirs "$target/$triple/debug" "$target/cross/$triple"
done
prune_build "$target"/{x86_64-unknown-linux-gnu,aarch64-unknown-linux-gnu,x86_64-unknown-linux-musl}/dist "$target/dist"
step "NuGet: OneCollector.Tel.Native with its five runtimes"
rids=linux-x64,linux-arm64,linux-musl-x64,win-x64,win-arm64
nupkg=$(python3 packaging/nuget/pack.py --require "$rids" | cut -d' ' -f1)
python3 packaging/nuget/test_layout.py "$nupkg" ${rids//,/ }

end_step
printf '\n==== all tests passed ====\n'
