#!/usr/bin/env bash
# The library's multi-threaded tests and the C stress programs under ThreadSanitizer and
# AddressSanitizer (LeakSanitizer included), on the stable toolchain: RUSTC_BOOTSTRAP=1 for
# -Zsanitizer and, for TSan, -Zbuild-std (std rebuilt instrumented; needs `rustup component add
# rust-src`). What runs is listed in tests/sanitize/sanitized.list. Any report, in the test
# process or in a child it starts, fails the run: every process writes its reports to
# $CARGO_TARGET_DIR/sanitizers/reports/ and the run passes only if that folder stays empty.
# Suppressions, each with its reason: tests/sanitize/{tsan,lsan}.supp. See docs/reliability.md.
#
#   scripts/sanitizers.sh                  # both sanitizers (test.sh runs one, then the other)
#   scripts/sanitizers.sh thread           # one of them: thread | address
#   SANITIZER_ROUNDS=5 SANITIZER_BUILD_STD=1 scripts/sanitizers.sh   # the longer run: every
#                                          # test 5 times, std rebuilt with ASan too
#
# Builds go to $CARGO_TARGET_DIR/sanitizers/<sanitizer>, apart from the normal build.
# Needs gcc and the rust-src component.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/target-dir.sh
. scripts/lib/target-dir.sh
# shellcheck source=lib/soname-links.sh
. scripts/lib/soname-links.sh
root=$target
triple=x86_64-unknown-linux-gnu
reports=$root/sanitizers/reports
rounds=${SANITIZER_ROUNDS:-1}
sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(thread address)
list=tests/sanitize/sanitized.list
unset TEL_DISABLE DO_NOT_TRACK TEL_LOG TEL_CACHE_DIR
step() { printf '\n==> [%s] %s\n' "$(date -u +%T)" "$*"; }
command -v cc >/dev/null || { echo "sanitizers.sh: cc is required" >&2; exit 1; }
sysroot=$(rustc --print sysroot)
[ -d "$sysroot/lib/rustlib/src/rust/library" ] || rustup component add rust-src

# The collector for the C programs: the normal (uninstrumented) telctl, built before
# RUSTC_BOOTSTRAP is set (cargo would otherwise rebuild the normal target folder).
step "build telctl"
cargo build --locked -p telctl
export RUSTC_BOOTSTRAP=1
telctl=$root/debug/telctl
serve_pid=
start_collector() {
  local fifo=$reports/../serve.fifo out=$reports/../serve.out
  rm -f "$fifo" "$out"
  mkfifo "$fifo"
  "$telctl" serve --quiet --exit-on-stdin-eof <"$fifo" >"$out" 2>&1 &
  serve_pid=$!
  exec 7>"$fifo"
  for _ in $(seq 100); do
    grep -q '^listening on ' "$out" 2>/dev/null && break
    sleep 0.1
  done
  endpoint=$(sed -n 's/^listening on \(http[^ ]*\).*/\1/p' "$out" | head -1)
  [ -n "$endpoint" ] || { echo "telctl serve did not start:"; cat "$out"; exit 1; }
}
cleanup() {
  exec 7>&- 2>/dev/null || true
  [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null || true
}
trap cleanup EXIT

# Reads the list: `tests` (name and per-sanitizer arguments) and `programs`.
tests=()
programs=()
while IFS= read -r line; do
  line=${line%%#*}
  read -r -a words <<<"$line"
  [ ${#words[@]} -gt 0 ] || continue
  case ${words[0]} in
    test) tests+=("${words[*]:1}") ;;
    c) programs+=("${words[*]:1}") ;;
    *) echo "$list: unknown line: $line" >&2; exit 2 ;;
  esac
done <"$list"

# The `$2:` section of a `test` entry ($1): sets `skip` (the word `off`), `opts` (words
# `name=value`: sanitizer options for this run) and `extra` (the rest: libtest arguments).
section_of() {
  local want=$2: section= w
  skip=
  opts=
  extra=()
  for w in $1; do
    case $w in
      tsan: | asan:) section=$w ;;
      *)
        [ "$section" = "$want" ] || continue
        case $w in
          off) skip=1 ;;
          [a-z]*=*) opts+=":$w" ;;
          *) extra+=("$w") ;;
        esac
        ;;
    esac
  done
}

# C programs: gcc instruments them, and they are linked with the sanitizer runtime rustc links
# into Rust executables (the one the library was instrumented for; gcc's own is older).
cc_san() { # OUT SANITIZER SHORT SOURCES... [LINK ARGS...]
  local out=$1 san=$2 short=$3 rt arg objs=() link=()
  shift 3
  rt=$(find "$sysroot/lib/rustlib/$triple/lib" -name "librustc-*_rt.$short.a" | head -1)
  local incs=() # every source's folder, for the headers beside it (e.g. the C tests' support)
  for arg in "$@"; do
    case $arg in *.c) incs+=(-I"$(dirname "$arg")") ;; esac
  done
  [ -f "$rt" ] || { echo "sanitizers.sh: no $short runtime in $sysroot" >&2; exit 1; }
  for arg in "$@"; do
    case $arg in
      *.c)
        cc -std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize="$san" -Wall -Wextra -Werror \
          -I"$repo/include" "${incs[@]}" -c "$arg" -o "$out.$(basename "$arg" .c).o"
        objs+=("$out.$(basename "$arg" .c).o")
        ;;
      *) link+=("$arg") ;;
    esac
  done
  cc -o "$out" "${objs[@]}" -Wl,--whole-archive "$rt" -Wl,--no-whole-archive \
    -Wl,--export-dynamic "${link[@]}" -lpthread -ldl -lm -lrt
}

# The words of a `test` entry's section ($2...) that no test of the binary $1 matches: a filter
# or `--skip` pattern left behind when a test was renamed or moved to another file.
stale_words() {
  local exe=$1 names w
  shift
  names=$("$exe" --list --format=terse 2>/dev/null | sed -n 's/: test$//p')
  for w in "$@"; do
    case $w in -*) continue ;; esac
    grep -qF -- "$w" <<<"$names" || printf ' %s' "$w"
  done
}

fail=0
run_checked() { # LABEL COMMAND... : runs it; a non-zero status or a new report fails
  local label=$1
  shift
  local before after
  before=$(find "$reports" -type f | wc -l)
  local rc=0
  "$@" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "FAILED: $label (status $rc)"
    fail=1
  fi
  after=$(find "$reports" -type f | wc -l)
  if [ "$after" -gt "$before" ]; then
    echo "FAILED: $label: $((after - before)) sanitizer report(s):"
    find "$reports" -type f -newer "$reports/.mark" -exec sh -c 'echo "--- $1"; head -c 20000 "$1"' _ {} \;
    fail=1
  fi
  touch "$reports/.mark"
}

for san in "${sanitizers[@]}"; do
  case $san in
    thread) short=tsan; code=66 ;;
    address) short=asan; code=67 ;;
    *) echo "sanitizers.sh: unknown sanitizer $san (thread | address)" >&2; exit 2 ;;
  esac
  dir=$root/sanitizers/$san
  rm -rf "$reports"
  mkdir -p "$reports"
  touch "$reports/.mark"
  export RUSTFLAGS="-Zsanitizer=$san -Cforce-frame-pointers=yes"
  export RUSTDOCFLAGS=$RUSTFLAGS
  # TSan needs std instrumented (its synchronisation would be invisible otherwise); ASan
  # works with the prebuilt std (allocations are intercepted either way), which saves a
  # build of std in CI; SANITIZER_BUILD_STD=1 rebuilds it for ASan too.
  build=(cargo --locked)
  if [ "$san" = thread ] || [ -n "${SANITIZER_BUILD_STD:-}" ]; then build+=(-Zbuild-std); fi
  names=()
  for entry in "${tests[@]}"; do
    name=${entry%% *}
    if [ -f "tests/$name.rs" ]; then names+=("$name"); else echo "note: tests/$name.rs absent, skipped"; fi
  done

  step "$san: build libtel and the test files"
  mkdir -p "$dir"
  json=$dir/tests.json
  selected=()
  for name in $(printf '%s\n' "${names[@]}" | sort -u); do selected+=(--test "$name"); done
  "${build[@]}" test --target "$triple" --target-dir "$dir" -p onecollector-tel --no-run \
    --message-format=json "${selected[@]}" >"$json"
  # The cdylib, built with the tests' features: libtel.so and its SONAME, links to it.
  lib=$dir/lib
  tel_soname_links "$dir/$triple/debug/deps" "$lib" || exit 1

  common="halt_on_error=1:exitcode=$code:log_path=$reports/$short:log_exe_name=1"
  if [ "$san" = thread ]; then
    export TSAN_OPTIONS="$common:second_deadlock_stack=1:suppressions=$repo/tests/sanitize/tsan.supp"
  else
    export ASAN_OPTIONS="$common:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1"
    export LSAN_OPTIONS="suppressions=$repo/tests/sanitize/lsan.supp:print_suppressions=0"
  fi

  step "$san: the set-up reports a finding, also in a child process"
  cc_san "$dir/canary" "$san" "$short" "$repo/tests/sanitize/canary.c"
  mode=race
  [ "$san" = thread ] || mode=uaf
  "$dir/canary" child "$mode" >/dev/null 2>&1 || true
  if [ -z "$(find "$reports" -type f -name "$short.canary*")" ]; then
    echo "FAILED: the $san canary's finding was not reported; the set-up cannot be trusted"
    exit 1
  fi
  rm -f "$reports"/*
  touch "$reports/.mark"

  for entry in "${tests[@]}"; do
    name=${entry%% *}
    [ -f "tests/$name.rs" ] || continue
    exe=$(sed -n "s/.*\"executable\":\"\\([^\"]*\\/deps\\/$name-[0-9a-f]*\\)\".*/\\1/p" "$json" | tail -1)
    [ -x "$exe" ] || { echo "FAILED: no test binary for $name"; fail=1; continue; }
    section_of "$entry" "$short"
    [ -z "$skip" ] || continue
    stale=$(stale_words "$exe" "${extra[@]}")
    if [ -n "$stale" ]; then
      echo "FAILED: $list: no test of tests/$name.rs matches$stale"
      fail=1
      continue
    fi
    for round in $(seq "$rounds"); do
      step "$san: tests/$name.rs${extra[*]:+ ${extra[*]}}${opts:+ (options $opts)} [round $round]"
      if [ "$san" = thread ]; then
        TSAN_OPTIONS=$TSAN_OPTIONS$opts run_checked "$san tests/$name.rs" timeout 1200 "$exe" "${extra[@]}"
      else
        ASAN_OPTIONS=$ASAN_OPTIONS$opts run_checked "$san tests/$name.rs" timeout 1200 "$exe" "${extra[@]}"
      fi
    done
  done

  if [ ${#programs[@]} -gt 0 ]; then
    [ -n "$serve_pid" ] || start_collector
    export TELCTL=$telctl
    for entry in "${programs[@]}"; do
      srcs=()
      args=()
      seen=
      for w in $entry; do
        if [ "$w" = -- ]; then seen=1; elif [ -n "$seen" ]; then args+=("${w//\{endpoint\}/$endpoint}"); else srcs+=("$w"); fi
      done
      if [ ! -f "${srcs[0]}" ]; then echo "note: ${srcs[0]} absent, skipped"; continue; fi
      prog=$dir/$(basename "${srcs[0]}" .c)
      cc_san "$prog" "$san" "$short" "${srcs[@]/#/$repo/}" -L"$lib" -ltel -Wl,-rpath,"$lib"
      for round in $(seq "$rounds"); do
        step "$san: ${srcs[0]} ${args[*]} [round $round]"
        run_checked "$san ${srcs[0]}" timeout 1200 "$prog" "${args[@]}"
      done
    done
  fi
done

if [ "$fail" != 0 ]; then
  echo "sanitizers.sh: FAILED (reports, if any, are in $reports)" >&2
  exit 1
fi
step "sanitizers: no findings"
