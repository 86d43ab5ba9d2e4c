#!/usr/bin/env bash
# Runs every test of the project: Rust (library, emulator, telctl), formatting and lints, the
# header check, then the Python binding and the C/C++ side when their scripts exist. Ends with
# a table of each step's duration (also when a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Each step is timed from its `step` line to the next one (or the end).
step_names=()
step_seconds=()
step_name=
step_started=0
end_step() {
  [ -n "$step_name" ] || return 0
  step_names+=("$step_name")
  step_seconds+=($(($(date +%s) - step_started)))
  step_name=
}
step() {
  end_step
  step_name=$*
  step_started=$(date +%s)
  printf '\n==== %s ====\n' "$*"
}
durations() {
  local status=$? i total=0 failed=
  [ $status -eq 0 ] || failed=$step_name
  end_step
  printf '\n==== durations ====\n'
  for i in "${!step_names[@]}"; do
    total=$((total + step_seconds[i]))
    printf '%-64s %4dm %02ds%s\n' "${step_names[i]}" $((step_seconds[i] / 60)) $((step_seconds[i] % 60)) \
      "$([ -n "$failed" ] && [ "$i" -eq $((${#step_names[@]} - 1)) ] && echo "  FAILED")"
  done
  printf '%-64s %4dm %02ds\n' "total" $((total / 60)) $((total % 60))
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

step "ThreadSanitizer and AddressSanitizer (scripts/sanitizers.sh)"
bash scripts/sanitizers.sh
step "libFuzzer targets, ${FUZZ_SECONDS:=20} s each (scripts/fuzz.sh)"
FUZZ_SECONDS=$FUZZ_SECONDS bash scripts/fuzz.sh

# README quickstarts: every C, C++, Python and Rust snippet of README.md compiled and run as
# written, against the emulator in a network namespace (scripts/readme-snippets.sh).
step "README snippets (scripts/readme-snippets.sh)"
bash scripts/readme-snippets.sh

for part in bindings/python/run-tests.sh bindings/cpp/run-tests.sh packaging/windows/run-tests.sh; do
  if [ -x "$part" ]; then
    step "$part"
    "$part"
  fi
done
# The other Linux targets, then the NuGet package with every runtime the steps above built.
for triple in aarch64-unknown-linux-gnu x86_64-unknown-linux-musl; do
  step "packaging/linux/cross-test.sh $triple"
  bash packaging/linux/cross-test.sh "$triple"
done
step "NuGet: OneCollector.Tel.Native with its five runtimes"
rids=linux-x64,linux-arm64,linux-musl-x64,win-x64,win-arm64
nupkg=$(python3 packaging/nuget/pack.py --require "$rids" | cut -d' ' -f1)
python3 packaging/nuget/test_layout.py "$nupkg" ${rids//,/ }

end_step
printf '\n==== all tests passed ====\n'
