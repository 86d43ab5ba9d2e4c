#!/usr/bin/env bash
# The C/C++ side's test command, from nothing to a verified NuGet package:
#
#   1. cargo builds libtel (the dist profile, as packages are built) and telctl, the collector
#      emulator the tests run;
#   2. the CMake package (cmake/) is configured afresh with its defaults, built (cargo driven
#      from CMake) and installed into <target>/cpp/prefix (on Linux: libtel.so.<version>, the
#      libtel.so.<abi-major> and libtel.so links, tel.pc);
#   3. the tests (bindings/cpp/tests) are configured from that prefix with find_package(tel) and
#      built: the C11 test (-Wall -Wextra -Werror -pedantic), the C++ wrapper tests, their
#      AddressSanitizer + UBSan builds;
#   4. ctest runs them all, each test against its own `telctl serve`: plain, asan, valgrind
#      memcheck, the examples built as a consumer of the prefix, the installed library's SONAME
#      and links and a C program built through tel.pc, the nupkg and its layout test.
#
# <target> is $CARGO_TARGET_DIR, else <repo>/target. Needs cargo, cmake, a C and C++ compiler,
# valgrind, python3, pkg-config and readelf (Debian: apt-get install -y cmake g++ valgrind
# python3 pkg-config; readelf comes with binutils).
# Extra arguments go to ctest, e.g. `-L plain` or `-R cpp.escaping`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"
work=$target/cpp
prefix=$work/prefix
jobs=$(nproc 2>/dev/null || echo 2)
started=$(date +%s)

# The tests need a session that sends: opt-out variables of the environment would silence it.
unset TEL_DISABLE DO_NOT_TRACK TEL_LOG TEL_CACHE_DIR

step() { printf '\n==> %s\n' "$*"; }

missing=()
for tool in cargo cmake cc c++ valgrind python3 pkg-config readelf; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "run-tests.sh: missing ${missing[*]} (Debian: apt-get install -y cmake g++ valgrind python3 pkg-config;" \
        ".ci/run installs them)" >&2
    exit 1
fi

step "cargo build --profile dist -p onecollector-tel; cargo build -p telctl"
cargo build --profile dist -p onecollector-tel
cargo build -p telctl
telctl=$target/debug/telctl

step "CMake package: configure, build (cargo driven), install into $prefix"
# Afresh, so that the package's defaults are what is tested, not a cache of an earlier run.
rm -f "$work/package/CMakeCache.txt"
cmake -S "$repo/cmake" -B "$work/package" -DCMAKE_BUILD_TYPE=Release
cmake --build "$work/package"
rm -rf "$prefix"
cmake --install "$work/package" --prefix "$prefix"

step "tests: configure from the installed package, build"
cmake -S "$here/tests" -B "$work/tests" -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_PREFIX_PATH="$prefix" -DTELCTL="$telctl"
cmake --build "$work/tests" --parallel "$jobs"

step "ctest"
rm -rf "$work/tests/valgrind"/*.log
status=0
ctest --test-dir "$work/tests" --output-on-failure --parallel "$jobs" "$@" || status=$?

if compgen -G "$work/tests/valgrind/*.log" >/dev/null; then
    step "valgrind memcheck"
    for log in "$work/tests/valgrind"/*.log; do
        errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
        lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1)
        reachable=$(sed -n 's/.*still reachable: \([0-9,]*\) bytes.*/\1/p' "$log" | tail -1)
        printf '%-28s errors: %-3s definitely lost: %-6s still reachable: %s bytes\n' \
            "$(basename "$log" .log)" "${errors:-?}" "${lost:-0}" "${reachable:-0}"
    done
fi
if compgen -G "$work/tests/nuget/*.nupkg" >/dev/null; then
    step "NuGet package"
    ls -l "$work/tests/nuget/"*.nupkg
fi

printf '\nrun-tests.sh: %s in %ss\n' "$([ $status -eq 0 ] && echo passed || echo FAILED)" \
    "$(($(date +%s) - started))"
exit $status
