#!/usr/bin/env bash
# Tests the Python binding end to end, on the wheels that are published:
#   1. builds the emulator (`cargo build -p telctl`);
#   2. builds the five wheels with build-wheels.sh (manylinux x86_64 and aarch64 and musllinux
#      x86_64, repaired by auditwheel; win_amd64 and win_arm64 with the cross-built tel.dll) and
#      checks them (tests/check_wheels.py): tags, contents, each library's machine, exports
#      (exactly the ABI) and imports (system libraries only), auditwheel's verdict on the
#      manylinux x86_64 one, pip's acceptance of each Windows wheel for its platform;
#   3. installs the manylinux wheel into a virtual environment with the test dependencies and
#      runs pytest against `telctl serve` with TEL_LIBRARY unset, so the bundled library is the
#      one tested;
#   4. installs it into a fresh virtual environment with no Rust toolchain on PATH and runs a
#      smoke test there.
# Exits non-zero if any step fails. Honours CARGO_TARGET_DIR (default: <repo>/target), where
# the virtual environments are kept too; PYTHON names the interpreter to use.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PYTHON="${PYTHON:-python3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
mkdir -p "$CARGO_TARGET_DIR"
CARGO_TARGET_DIR="$(cd "$CARGO_TARGET_DIR" && pwd)"
export TELCTL="${TELCTL:-$CARGO_TARGET_DIR/debug/telctl}"
VENV="$CARGO_TARGET_DIR/python/venv"
WHEEL_VENV="$CARGO_TARGET_DIR/python/wheel-venv"
DIST="$HERE/dist"
unset TEL_LIBRARY

step() { printf '\n== %s\n' "$*"; }
die() { printf 'run-tests.sh: %s\n' "$*" >&2; exit 1; }

step "cargo build -p telctl"
(cd "$REPO" && cargo build --locked -p telctl) || die "cargo build failed"

step "bash build-wheels.sh"
bash "$HERE/build-wheels.sh" || die "build-wheels.sh failed"
linux=("$DIST"/onecollector_tel-*-py3-none-manylinux*_x86_64.whl)
aarch64=("$DIST"/onecollector_tel-*-py3-none-manylinux*_aarch64.whl)
musl=("$DIST"/onecollector_tel-*-py3-none-musllinux_*_x86_64.whl)
windows=("$DIST"/onecollector_tel-*-py3-none-win_amd64.whl)
windows_arm64=("$DIST"/onecollector_tel-*-py3-none-win_arm64.whl)
for kind in linux aarch64 musl windows windows_arm64; do
    declare -n found=$kind
    [ "${#found[@]}" -eq 1 ] && [ -f "${found[0]}" ] || die "expected one $kind wheel in $DIST"
    unset -n found
done

step "check the five wheels"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "cannot create $VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pytest>=7" "opentelemetry-sdk>=1.39" \
    || die "cannot install the test dependencies"
"$VENV/bin/python" "$HERE/tests/check_wheels.py" "${linux[0]}" "${aarch64[0]}" "${musl[0]}" "${windows[0]}" \
    "${windows_arm64[0]}" || die "the wheels are not right"
build_venv="$CARGO_TARGET_DIR/python/build-venv"
PATH="$build_venv/bin:$PATH" "$build_venv/bin/auditwheel" show "${linux[0]}" >"$CARGO_TARGET_DIR/python/auditwheel-check.txt" \
    || die "auditwheel cannot read ${linux[0]}"
tags=$(basename "${linux[0]}" .whl | sed -E 's/^.*-py3-none-//')
verdict=$(tr '\n' ' ' <"$CARGO_TARGET_DIR/python/auditwheel-check.txt" |
    grep -oE 'consistent with the following platform tag: "[^"]+"' | sed -E 's/.*"([^"]+)"/\1/')
case ".$tags." in
    *".$verdict."*) [ -n "$verdict" ] ;;
    *) false ;;
esac || { cat "$CARGO_TARGET_DIR/python/auditwheel-check.txt"; die "auditwheel does not find $(basename "${linux[0]}") consistent with its tags"; }
echo "auditwheel: $(basename "${linux[0]}") is consistent with $verdict"
win_target="$CARGO_TARGET_DIR/python/win-install"
rm -rf "$win_target"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --only-binary :all: \
    --platform win_amd64 --python-version 3.9 --target "$win_target" "${windows[0]}" \
    || die "pip does not install $(basename "${windows[0]}") for win_amd64"
[ -f "$win_target/onecollector_tel/tel.dll" ] || die "the win_amd64 install has no onecollector_tel/tel.dll"
echo "pip installs $(basename "${windows[0]}") for win_amd64 (Python 3.9)"
# Python on Windows on Arm (native Arm64 builds from 3.11 on), Linux aarch64, musl: each wheel
# is one pip accepts for its platform.
other_target="$CARGO_TARGET_DIR/python/platform-install"
for pair in "win_arm64:3.11:${windows_arm64[0]}" "manylinux_2_17_aarch64:3.9:${aarch64[0]}" \
    "musllinux_1_2_x86_64:3.9:${musl[0]}"; do
    plat=${pair%%:*} rest=${pair#*:}
    pyver=${rest%%:*} wheel=${rest#*:}
    rm -rf "$other_target"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-index --only-binary :all: \
        --platform "$plat" --python-version "$pyver" --target "$other_target" "$wheel" \
        || die "pip does not install $(basename "$wheel") for $plat"
    [ -n "$(find "$other_target/onecollector_tel" -name 'libtel.so' -o -name 'tel.dll')" ] ||
        die "the $plat install has no library in onecollector_tel/"
    echo "pip installs $(basename "$wheel") for $plat (Python $pyver)"
done
if command -v x86_64-w64-mingw32-objdump >/dev/null 2>&1; then
    exports=$(x86_64-w64-mingw32-objdump -p "$win_target/onecollector_tel/tel.dll" | grep -cE '^\s*\[\s*[0-9]+\] tel_')
    [ "$exports" -ge 8 ] || die "the bundled tel.dll exports $exports tel_* functions"
    echo "the bundled tel.dll exports $exports tel_* functions"
fi

step "pytest (the manylinux wheel, telctl serve at $TELCTL)"
# --force-reinstall: the version does not change between two builds of the same tree.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps "${linux[0]}" \
    || die "pip install ${linux[0]} failed"
(cd "$HERE" && "$VENV/bin/python" -m pytest -p no:cacheprovider tests)
pytest_status=$?

step "install the wheel into a fresh $WHEEL_VENV without the Rust toolchain, smoke test"
rm -rf "$WHEEL_VENV"
"$PYTHON" -m venv "$WHEEL_VENV" || die "cannot create $WHEEL_VENV"
no_rust_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '/\.cargo/' -e '/\.rustup/' | paste -sd: -)"
PATH="$WHEEL_VENV/bin:$no_rust_path" CARGO=/nonexistent/cargo \
    "$WHEEL_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary :all: --no-index "${linux[0]}" \
    || die "installing the wheel failed"
(cd "$CARGO_TARGET_DIR" && PATH="$WHEEL_VENV/bin:$no_rust_path" "$WHEEL_VENV/bin/python" "$HERE/tests/wheel_smoke.py")
smoke_status=$?

step "summary"
echo "pytest: exit status $pytest_status; wheel smoke test: exit status $smoke_status"
[ "$pytest_status" -eq 0 ] && [ "$smoke_status" -eq 0 ]
