#!/usr/bin/env bash
# Builds onecollector-tel for another Linux target and runs there what goes through the C ABI:
#
#   bash packaging/linux/cross-test.sh aarch64-unknown-linux-gnu    (under qemu-user)
#   bash packaging/linux/cross-test.sh x86_64-unknown-linux-musl    (natively, against musl)
#
# 1. The shipped library: `cargo zigbuild --profile dist` for the target (glibc 2.17's symbols
#    for aarch64, musl's libc.so for musl), the one the wheels and the NuGet package take from
#    <target>/<triple>/dist (built with the other two shipped Linux libraries, by the command
#    build-wheels.sh runs: a no-op when it built them already). Its dynamic
#    symbols must be exactly the functions of include/tel.h, its DT_NEEDED the C library's.
# 2. The library's integration tests that drive the C ABI, built for the target (debug) and run
#    there against the emulator, which they run in-process (built for the target too):
#    RUST_TESTS below. Under qemu a test's child processes (SIGKILL, a
#    second process reading the cache) are aarch64 programs too: the kernel starts them
#    through qemu-user's binfmt_misc entry, which this script registers when it is missing
#    (root only; Debian's qemu-user-binfmt ships the entry).
# 3. A C consumer: bindings/cpp/tests/c11_test.c and its collector client, compiled by the
#    target's C compiler and linked against the shipped library (with the link named by its
#    SONAME, libtel.so.1, beside it: the program records that name and the loader looks for
#    it), run against `telctl serve` (the emulator built for this machine: a program started
#    from the target's process).
# 4. CMake (aarch64): cmake/ configured with the cross compiler and TEL_CARGO_TARGET, its
#    cargo build (the debug build of step 2, so nothing is built twice) installed into a
#    prefix; packaging/linux/consumer, a project that knows only find_package(tel), is built
#    against it and run.
# 5. Python (aarch64): the manylinux aarch64 wheel of bindings/python/dist is unpacked and
#    bindings/python/tests/wheel_smoke.py runs in Debian's aarch64 Python 3.11 under qemu.
#    That Python is taken from Debian's arm64 packages (`apt-get download`, unpacked into
#    <target>/cross/aarch64-python, about 8 MB), with no installation: it needs the arm64
#    architecture in dpkg (`dpkg --add-architecture arm64 && apt-get update`, done by
#    .ci/run). Without it the step is skipped and says why. Not on musl: Debian has no musl
#    Python.
#
# Left out of step 2, and why: header (runs cbindgen on this machine's sources); of network,
# all but one test (network namespaces: unshare under qemu-user is not emulated); the fuzz_*
# property tests (pure parsing, the same code on every target, minutes under qemu); fork,
# security, audit, and the tests RUST_TESTS leaves out of the files it runs (long or
# timing-heavy stress runs: 100 MB inputs, the fault matrix, 80,000 tel_init calls, 40,000 keys,
# 256 MiB of cache; covered on x86-64); sanitize (x86-64 only).
#
# Skips (exit 0, saying so) when a tool or Rust target is missing; fails on any failure when
# they are there. Debian: apt-get install qemu-user qemu-user-binfmt gcc-aarch64-linux-gnu
# libc6-dev-arm64-cross musl-tools cmake; rustup target add aarch64-unknown-linux-gnu
# x86_64-unknown-linux-musl. Work files: <target>/cross/<triple>. Each step prints its time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"

triple=${1:-}
# A test file (tests/NAME.rs), whole, or only the tests named after `only:`, or all but those
# named after `skip:`.
RUST_TESTS=(
    delivery
    clients
    options
    "directives skip: retry_after_and_kill_duration_past_u64_are_capped"
    "purge skip: a_purge_deletes_this_tenants_entries_only"
    "cache skip: a_cache_path_naming_another_file_leaves_it_untouched \
another_tenants_entries_survive_a_session_of_this_tenant orphaned_temporary_files_are_removed \
replay_takes_this_tenants_lines_by_parse_and_sets_bad_ones_aside"
    "cache_processes skip: a_fifo_in_place_of_a_file_never_blocks \
an_overlong_line_is_read_past_in_bounded_memory no_claim_file_appears_while_another_process_holds_the_cache_lock"
    "critical only: a_critical_event_is_on_disk_when_the_call_returns_and_sent_at_once \
a_critical_event_survives_sigkill_right_after_the_call \
a_critical_event_is_delivered_exactly_once_when_the_process_lives_to_shutdown"
    "shutdown skip: init_shutdown_cycles_with_new_keys_keep_memory_flat \
init_shutdown_log_flush_race_from_many_threads many_sessions_leak_nothing \
rust_api_log_racing_shutdown_leaves_nothing_pending shutdown_zero_with_a_busy_worker_leaves_nothing_pending \
tel_log_during_shutdown"
    "logging only: a_logger_blocking_on_a_mutex_held_by_the_shutdown_caller_does_not_deadlock \
a_slow_logger_does_not_stretch_shutdown non_2xx_produces_one_debug_line_without_the_key \
the_persisted_line_reaches_stderr_before_the_process_exits"
    "boundary only: lifecycle_codes"
    "hostile_input only: invalid_configurations_name_their_problem invalid_events_get_their_status_and_a_message"
    "faults only: a_missing_status_line_is_a_network_failure_not_a_503"
    "network only: loopback_endpoints_bypass_proxy_variables"
)

skip() {
    echo "packaging/linux/cross-test.sh $triple: skipped: $*"
    exit 0
}

case $triple in
aarch64-unknown-linux-gnu)
    zig_triple=$triple.2.17
    cc=aarch64-linux-gnu-gcc
    sysroot=/usr/aarch64-linux-gnu
    need=(qemu-aarch64 "$cc" cmake)
    ;;
x86_64-unknown-linux-musl)
    zig_triple=$triple
    cc=musl-gcc
    need=("$cc")
    ;;
*)
    echo "usage: cross-test.sh aarch64-unknown-linux-gnu|x86_64-unknown-linux-musl" >&2
    exit 2
    ;;
esac
for tool in "${need[@]}"; do
    command -v "$tool" >/dev/null 2>&1 ||
        skip "no $tool (Debian: apt-get install qemu-user qemu-user-binfmt gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools cmake)"
done
[ -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ] ||
    skip "the Rust target $triple is not installed (rustup target add $triple)"
if [ -n "${sysroot:-}" ] && [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
    skip "no aarch64 C library in $sysroot (Debian: apt-get install libc6-dev-arm64-cross)"
fi

# shellcheck source=../../scripts/lib/zig.sh
. "$repo/scripts/lib/zig.sh"
# shellcheck source=../../scripts/lib/soname-links.sh
. "$repo/scripts/lib/soname-links.sh"

work=$target/cross/$triple
shipped=$target/$triple/dist
tests_dir=$target/$triple/debug
mkdir -p "$work"
# How the tests are built (debug, in the shared target folder):
# - aarch64: linked by the target's gcc, which also compiles ring's C, given only to these
#   cargo runs (the shipped build is zig's); CMake's cargo build below is the same build, so
#   it costs nothing. The test programs run under qemu-aarch64 (cargo's runner);
#   QEMU_LD_PREFIX is for their child processes, which the kernel hands to qemu through
#   binfmt_misc.
# - musl: linked by zig, as the shipped library is (Debian's musl-gcc has no musl libgcc_s,
#   which Rust's unwinder needs when linked dynamically; zig brings its own), run natively.
#   zig links the test programs statically against its own musl; the shipped libtel.so,
#   dynamically linked against the system's musl, is what the C consumer runs.
if [ "$triple" = aarch64-unknown-linux-gnu ]; then
    gcc_env=(env CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER="$cc" CC_aarch64_unknown_linux_gnu="$cc"
        AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar)
    test_cargo=("${gcc_env[@]}" CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot" cargo)
    test_triple=$triple
    export QEMU_LD_PREFIX=$sysroot
    run=(qemu-aarch64 -L "$sysroot")
else
    test_cargo=(env "PATH=$zig_venv/bin:$PATH" cargo-zigbuild)
    test_triple=$zig_triple
    run=()
fi
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# shellcheck source=../../scripts/lib/results.sh
. "$here/../../scripts/lib/results.sh"
started=$(date +%s)
step() { printf '\n==> %s: %s\n' "$triple" "$*"; last=$(date +%s); }

# Built with the other shipped Linux libraries, as build-wheels.sh builds them (scripts/lib/zig.sh):
# after it, nothing to do.
step "the shipped library: cargo zigbuild --profile dist --target ${zig_linux_targets[*]}"
status=0
zigbuild_linux_dist || status=$?
if [ $status -eq 0 ]; then
    python3 "$here/check_elf.py" "$triple" "$shipped/libtel.so" || status=$?
fi
result "shipped libtel.so: built, machine, exports = include/tel.h, system libraries only" $status
[ $status -eq 0 ] || exit 1

step "the emulator for this machine (telctl serve)"
(cd "$repo" && cargo build --locked -p telctl)
export TELCTL=$target/debug/telctl

if [ "$triple" = aarch64-unknown-linux-gnu ]; then
    step "binfmt_misc: the kernel starts aarch64 programs through qemu-user"
    status=0
    # A program that runs /bin/true's aarch64 twin: the C library's own loader, asked for
    # its version, is aarch64 code.
    if ! "$sysroot/lib/ld-linux-aarch64.so.1" --version >/dev/null 2>&1; then
        conf=/usr/lib/binfmt.d/qemu-aarch64.conf
        if [ "$(id -u)" = 0 ] && [ -f "$conf" ]; then
            [ -e /proc/sys/fs/binfmt_misc/register ] ||
                mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
            if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
                grep -v '^#' "$conf" >/proc/sys/fs/binfmt_misc/register || true
            fi
        fi
        "$sysroot/lib/ld-linux-aarch64.so.1" --version >/dev/null 2>&1 || {
            echo "cross-test.sh: this kernel does not start aarch64 programs; the tests that start" \
                "child processes need qemu-user's binfmt_misc entry (Debian: qemu-user-binfmt, as root)" >&2
            status=1
        }
    fi
    result "binfmt_misc entry for aarch64" $status
fi

test_files=()
for entry in "${RUST_TESTS[@]}"; do test_files+=("${entry%% *}"); done
step "the C ABI integration tests (${test_files[*]}), built for $triple"
status=0
test_args=()
for t in "${test_files[@]}"; do test_args+=(--test "$t"); done
(cd "$repo" && "${test_cargo[@]}" test --locked -p onecollector-tel --target "$test_triple" "${test_args[@]}" --no-run) || status=$?
result "rust: build the tests for $triple" $status
if [ $status -eq 0 ]; then
    for entry in "${RUST_TESTS[@]}"; do
        read -r -a words <<<"$entry"
        t=${words[0]}
        last=$(date +%s)
        status=0
        # libtest arguments: the names after `only:` as filters, those after `skip:` skipped.
        args=()
        mode=
        for w in "${words[@]:1}"; do
            case $w in
                only: | skip:) mode=$w ;;
                *) if [ "$mode" = skip: ]; then args+=(--skip "$w"); else args+=("$w"); fi ;;
            esac
        done
        (cd "$repo" && timeout 900 "${test_cargo[@]}" test --locked -q -p onecollector-tel --target "$test_triple" \
            --test "$t" -- "${args[@]}") || status=$?
        result "rust: tests/$t.rs" $status
    done
fi

step "C consumer: c11_test.c compiled by $cc, linked against the shipped libtel.so"
status=0
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$repo/Cargo.toml")
rm -rf "$work/c"
mkdir -p "$work/c"
cp "$shipped/libtel.so" "$work/c/"
tel_soname_links "$work/c" "$work/c"
cpp_tests=$repo/bindings/cpp/tests
"$cc" -std=c11 -Wall -Wextra -Werror -pedantic -O1 -D_POSIX_C_SOURCE=200809L \
    -DTEL_TEST_EXPECTED_VERSION="\"$version\"" -I"$repo/include" -I"$cpp_tests" \
    -o "$work/c/c11_test" "$cpp_tests/c11_test.c" "$cpp_tests/support/collector.c" \
    -L"$work/c" -ltel -Wl,-rpath,'$ORIGIN' -pthread || status=$?
[ $status -ne 0 ] || (cd "$work/c" && timeout 300 "${run[@]}" ./c11_test) || status=$?
result "c11: the C ABI from C, on $triple" $status

if [ "$triple" = x86_64-unknown-linux-musl ]; then
    # No musl Python here, but the musllinux wheel's own library (renamed C library and all)
    # runs the same C program.
    wheels=("$repo"/bindings/python/dist/onecollector_tel-*-py3-none-musllinux_*_x86_64.whl)
    if [ -f "${wheels[0]}" ] && [ -x "$work/c/c11_test" ]; then
        step "the musllinux wheel's libtel.so under the same C program"
        status=0
        rm -rf "$work/wheel"
        mkdir -p "$work/wheel"
        python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("onecollector_tel/libtel.so"))' \
            "${wheels[0]}" "$work/wheel/libtel.so"
        tel_soname_links "$work/wheel" "$work/wheel"
        cp "$work/c/c11_test" "$work/wheel/"
        (cd "$work/wheel" && timeout 300 ./c11_test) || status=$?
        result "c11: the C ABI through $(basename "${wheels[0]}")'s libtel.so" $status
    else
        echo "musllinux wheel: not built (bash bindings/python/build-wheels.sh); its library is not run"
    fi
fi

if [ "$triple" = aarch64-unknown-linux-gnu ]; then
    step "CMake: cmake/ cross-configured with $cc and TEL_CARGO_TARGET=$triple, a find_package consumer"
    status=0
    rm -rf "$work/cmake"
    toolchain=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 -DCMAKE_C_COMPILER="$cc"
        -DCMAKE_FIND_ROOT_PATH="$sysroot" -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER)
    {
        "${gcc_env[@]}" cmake -S "$repo/cmake" -B "$work/cmake/package" "${toolchain[@]}" \
            -DTEL_CARGO_TARGET="$triple" -DTEL_CARGO_PROFILE=dev &&
            "${gcc_env[@]}" cmake --build "$work/cmake/package" &&
            cmake --install "$work/cmake/package" --prefix "$work/cmake/prefix" &&
            cmake -S "$here/consumer" -B "$work/cmake/consumer" "${toolchain[@]}" \
                -DCMAKE_PREFIX_PATH="$work/cmake/prefix" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=BOTH \
                -DTEL_TEST_EXPECTED_VERSION="$version" -DCMAKE_BUILD_TYPE=Release &&
            cmake --build "$work/cmake/consumer"
    } >"$work/cmake.log" 2>&1 || { tail -n 40 "$work/cmake.log"; status=1; }
    if [ $status -eq 0 ]; then
        python3 "$here/check_elf.py" "$triple" --exe "$work/cmake/consumer/tel_consumer" || status=$?
        [ $status -ne 0 ] || (cd "$work/cmake/consumer" && LD_LIBRARY_PATH="$work/cmake/prefix/lib" \
            timeout 300 "${run[@]}" ./tel_consumer) || status=$?
    fi
    result "cmake: cross-build for $triple, find_package(tel) consumer runs" $status

    step "Python: the manylinux aarch64 wheel in Debian's aarch64 Python under qemu"
    wheels=("$repo"/bindings/python/dist/onecollector_tel-*-py3-none-*manylinux*_aarch64.whl)
    pyroot=$work/../aarch64-python
    if [ ! -f "${wheels[0]}" ]; then
        echo "python: skipped: no manylinux aarch64 wheel in bindings/python/dist (bash bindings/python/build-wheels.sh)"
    elif ! bash "$here/aarch64-python.sh" "$pyroot"; then
        echo "python: skipped: no aarch64 Python (see packaging/linux/aarch64-python.sh)"
    else
        status=0
        site=$work/python/site-packages
        rm -rf "$work/python"
        mkdir -p "$site"
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "${wheels[0]}" "$site"
        (cd "$work/python" && env -u TEL_LIBRARY PYTHONHOME="$pyroot/usr" PYTHONPATH="$site" \
            PYTHONDONTWRITEBYTECODE=1 timeout 300 qemu-aarch64 -L "$pyroot" \
            "$pyroot/usr/bin/python3.11" -c 'import platform, sys; print("aarch64 Python", sys.version.split()[0], platform.machine())' &&
            env -u TEL_LIBRARY PYTHONHOME="$pyroot/usr" PYTHONPATH="$site" PYTHONDONTWRITEBYTECODE=1 \
                timeout 300 qemu-aarch64 -L "$pyroot" "$pyroot/usr/bin/python3.11" \
                "$repo/bindings/python/tests/wheel_smoke.py") || status=$?
        result "python: $(basename "${wheels[0]}") imports and delivers under qemu" $status
    fi
fi

printf '\ncross-test.sh %s: %ss\n' "$triple" "$(($(date +%s) - started))"
results_end "$triple"
