#!/usr/bin/env bash
# Hardening checks beyond `cargo test` (which already runs the fault matrix, hostile-input,
# security and fuzz tests): the C ABI driven from C (tests/sanitize/abi_stress.c, and
# tests/hardening/*.c: a logger callback that takes a host mutex held by the thread calling
# tel_shutdown, and logging racing tel_shutdown over many sessions) under AddressSanitizer +
# UndefinedBehaviorSanitizer (LeakSanitizer included) and under valgrind memcheck, and a Rust
# stress test (`stress_for_valgrind` in tests/shutdown.rs) under valgrind memcheck. A few
# minutes on 2 cores after `cargo test`. See docs/reliability.md.
#
#   scripts/hardening.sh                  # what CI runs
#   HARDENING_FUZZ_CASES=100000 scripts/hardening.sh   # also the fuzz targets, that many cases each
#
# ThreadSanitizer is not run here but in scripts/sanitizers.sh, on the stable toolchain
# (RUSTC_BOOTSTRAP=1 for -Zsanitizer, std rebuilt instrumented with -Zbuild-std from the
# rust-src component): a TSan build of only the C side reports the uninstrumented library's
# atomics as races.
# Needs gcc (with libasan/libubsan) and valgrind (Debian: apt-get install -y gcc valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/target-dir.sh
. scripts/lib/target-dir.sh
# shellcheck source=lib/soname-links.sh
. scripts/lib/soname-links.sh
work=$target/hardening
mkdir -p "$work"
unset TEL_DISABLE DO_NOT_TRACK TEL_LOG TEL_CACHE_DIR
step() { printf '\n==> %s\n' "$*"; }
for tool in cc valgrind; do
  command -v "$tool" >/dev/null || { echo "hardening.sh: $tool is required" >&2; exit 1; }
done

step "build libtel (debug) and telctl"
cargo build --locked -p onecollector-tel -p telctl
lib=$work/lib # libtel.so and its SONAME, links to the debug build
tel_soname_links "$target/debug" "$lib"

step "start telctl serve"
rm -f "$work/serve.fifo" "$work/serve.out"
mkfifo "$work/serve.fifo"
"$target/debug/telctl" serve --quiet --exit-on-stdin-eof <"$work/serve.fifo" >"$work/serve.out" 2>&1 &
serve_pid=$!
exec 7>"$work/serve.fifo" # holding the pipe open keeps the emulator alive
cleanup() { exec 7>&- 2>/dev/null || true; kill "$serve_pid" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  sleep 0.1
done
endpoint=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$work/serve.out" | head -1)
[ -n "$endpoint" ] || { echo "telctl serve did not start:"; cat "$work/serve.out"; exit 1; }
echo "collector: $endpoint"

cflags=(-std=c11 -g -O1 -Wall -Wextra -Werror -I"$repo/include" "$repo/tests/sanitize/abi_stress.c"
  -L"$lib" -ltel -Wl,-rpath,"$lib" -lpthread)

step "C ABI stress under AddressSanitizer + UBSan (+ LeakSanitizer)"
cc -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
  -o "$work/abi_stress_asan" "${cflags[@]}"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 UBSAN_OPTIONS=print_stacktrace=1 \
  "$work/abi_stress_asan" "$endpoint" 200

vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
  --show-leak-kinds=definite --num-callers=30)
summary() { grep -E "ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable" "$1" | sed 's/^==[0-9]*== *//'; }

step "C ABI stress under valgrind memcheck"
cc -o "$work/abi_stress" "${cflags[@]}"
if ! "${vg[@]}" --log-file="$work/abi_stress.valgrind.log" "$work/abi_stress" "$endpoint" 40; then
  cat "$work/abi_stress.valgrind.log"; exit 1
fi
summary "$work/abi_stress.valgrind.log"

# The programs of tests/hardening start their own collector (TELCTL) with the C tests' support
# code, and each bounds its own run: callback_deadlock kills a round that deadlocks. Arguments
# plain and under valgrind (fewer sessions there: memcheck is some 50 times slower).
export TELCTL=$target/debug/telctl
support=$repo/bindings/cpp/tests/support
declare -A asan_args=([callback_deadlock]="60" [shutdown_race]="300 4")
declare -A valgrind_args=([callback_deadlock]="120" [shutdown_race]="20 4")
for program in callback_deadlock shutdown_race; do
  hflags=(-std=c11 -g -O1 -Wall -Wextra -Werror -I"$repo/include" -I"$support"
    "$repo/tests/hardening/$program.c" "$support/collector.c" -L"$lib" -ltel -Wl,-rpath,"$lib" -lpthread)
  read -r -a args <<<"${asan_args[$program]}"
  step "$program ${args[*]} under AddressSanitizer + UBSan (+ LeakSanitizer)"
  cc -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
    -o "$work/${program}_asan" "${hflags[@]}"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 UBSAN_OPTIONS=print_stacktrace=1 \
    "$work/${program}_asan" "${args[@]}"

  read -r -a args <<<"${valgrind_args[$program]}"
  step "$program ${args[*]} under valgrind memcheck"
  cc -o "$work/$program" "${hflags[@]}"
  rm -f "$work/$program".valgrind.*.log
  # %p: callback_deadlock runs each round in a forked child, which memcheck follows.
  if ! "${vg[@]}" --log-file="$work/$program.valgrind.%p.log" "$work/$program" "${args[@]}"; then
    cat "$work/$program".valgrind.*.log; exit 1
  fi
  # One log a process: the program and its forked rounds (the collector's fork before its
  # exec leaves a log without a summary).
  for log in $(grep -l "ERROR SUMMARY" "$work/$program".valgrind.*.log); do summary "$log"; done
done

step "Rust stress test under valgrind memcheck"
bin=$(cargo test --locked --test shutdown --no-run --message-format=json 2>/dev/null |
  sed -n 's/.*"executable":"\([^"]*shutdown-[^"]*\)".*/\1/p' | tail -1)
[ -x "$bin" ] || { echo "no shutdown test binary"; exit 1; }
if ! "${vg[@]}" --log-file="$work/stress.valgrind.log" "$bin" stress_for_valgrind --exact \
  --include-ignored --test-threads=1; then
  cat "$work/stress.valgrind.log"; exit 1
fi
summary "$work/stress.valgrind.log"

if [ -n "${HARDENING_FUZZ_CASES:-}" ]; then
  step "fuzz targets, $HARDENING_FUZZ_CASES cases each (release)"
  PROPTEST_CASES=$HARDENING_FUZZ_CASES cargo test --locked --release \
    --test fuzz_input --test fuzz_response --test fuzz_cache
fi
step "hardening checks passed"
