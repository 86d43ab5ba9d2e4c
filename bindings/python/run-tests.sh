#!/usr/bin/env bash
# Tests the Python binding end to end:
#   1. builds the library and the emulator (`cargo build -p onecollector-tel -p telctl`);
#   2. installs the package from source (`pip install bindings/python`, which compiles the
#      library with setuptools-rust and bundles it) into a virtual environment with the test
#      dependencies, and runs pytest against `telctl serve` with TEL_LIBRARY unset, so the
#      bundled library is the one tested;
#   3. builds the wheel with `python -m build --wheel`, installs it into a fresh virtual
#      environment with no Rust toolchain on PATH, and runs a smoke test there.
# Exits non-zero if any step fails. Honours CARGO_TARGET_DIR (default: <repo>/target), where
# the virtual environments and the wheel are kept too; PYTHON names the interpreter to use.
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
DIST="$CARGO_TARGET_DIR/python/dist"
unset TEL_LIBRARY

step() { printf '\n== %s\n' "$*"; }
die() { printf 'run-tests.sh: %s\n' "$*" >&2; exit 1; }

step "cargo build -p onecollector-tel -p telctl"
(cd "$REPO" && cargo build -p onecollector-tel -p telctl) || die "cargo build failed"

step "install the package from source into $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV" || die "cannot create $VENV"
fi
"$VENV/bin/python" -m pip install --quiet "pytest>=7" "opentelemetry-sdk>=1.39" build \
    || die "cannot install the test dependencies"
# --force-reinstall: the version does not change between two builds of the same tree.
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$HERE" \
    || die "pip install $HERE failed"

step "pytest (bundled library, telctl serve at $TELCTL)"
(cd "$HERE" && "$VENV/bin/python" -m pytest -p no:cacheprovider tests)
pytest_status=$?

step "python -m build --wheel"
rm -rf "$DIST"
"$VENV/bin/python" -m build --wheel --outdir "$DIST" "$HERE" >"$CARGO_TARGET_DIR/python/build-wheel.log" 2>&1 \
    || { tail -n 40 "$CARGO_TARGET_DIR/python/build-wheel.log"; die "building the wheel failed"; }
wheels=("$DIST"/*.whl)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || die "expected one wheel in $DIST"
wheel="${wheels[0]}"
echo "built $(basename "$wheel")"
case "$(basename "$wheel")" in
    *-py3-none-any.whl) die "the wheel is not a platform wheel" ;;
    *-py3-none-*.whl) ;;
    *) die "unexpected wheel tag: $(basename "$wheel")" ;;
esac
"$VENV/bin/python" - "$wheel" <<'PY' || die "the wheel does not contain the library"
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
bundled = [n for n in names if n in ("onecollector_tel/libtel.so", "onecollector_tel/libtel.dylib", "onecollector_tel/tel.dll")]
print("bundled:", ", ".join(bundled))
sys.exit(0 if bundled else 1)
PY

step "install the wheel into a fresh $WHEEL_VENV without the Rust toolchain, smoke test"
rm -rf "$WHEEL_VENV"
"$PYTHON" -m venv "$WHEEL_VENV" || die "cannot create $WHEEL_VENV"
no_rust_path="$(printf '%s' "$PATH" | tr ':' '\n' | grep -v -e '/\.cargo/' -e '/\.rustup/' | paste -sd: -)"
PATH="$WHEEL_VENV/bin:$no_rust_path" CARGO=/nonexistent/cargo \
    "$WHEEL_VENV/bin/python" -m pip install --quiet --only-binary :all: --no-index "$wheel" \
    || die "installing the wheel failed"
(cd "$CARGO_TARGET_DIR" && PATH="$WHEEL_VENV/bin:$no_rust_path" "$WHEEL_VENV/bin/python" "$HERE/tests/wheel_smoke.py")
smoke_status=$?

step "summary"
echo "pytest: exit status $pytest_status; wheel smoke test: exit status $smoke_status"
[ "$pytest_status" -eq 0 ] && [ "$smoke_status" -eq 0 ]
