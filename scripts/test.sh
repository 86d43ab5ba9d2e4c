#!/usr/bin/env bash
# Runs every test of the project: Rust (library, emulator, telctl), formatting and lints, the
# header check, then the Python binding and the C/C++ side when their scripts exist.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==== %s ====\n' "$*"; }

step "rustfmt"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
step "cargo test (workspace)"
cargo test --workspace --locked

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

step "all tests passed"
