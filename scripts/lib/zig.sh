# Sourced by the build scripts after target-dir.sh: defines `zigbuild ARGS...`, which runs
# `cargo zigbuild ARGS...` with zig and cargo-zigbuild (both from PyPI, packages ziglang and
# cargo-zigbuild), installed on first use into the virtual environment
# <target>/python/build-venv that bindings/python/build-wheels.sh shares. PATH is left alone.
#
# zig is the linker of every shipped build that is not for this machine's own glibc: the Linux
# libraries against an old glibc's symbol versions (x86_64-unknown-linux-gnu.2.17,
# aarch64-unknown-linux-gnu.2.17), against musl (x86_64-unknown-linux-musl), and tel.dll for
# Windows on Arm (aarch64-pc-windows-gnullvm, for which Debian has no mingw toolchain).
zig_venv=$target/python/build-venv
if ! [ -x "$zig_venv/bin/cargo-zigbuild" ] || ! [ -x "$zig_venv/bin/python-zig" ]; then
    [ -x "$zig_venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$zig_venv"
    "$zig_venv/bin/python" -m pip install --quiet --disable-pip-version-check "ziglang>=0.13" "cargo-zigbuild>=0.19" ||
        { echo "cannot install ziglang and cargo-zigbuild into $zig_venv" >&2; exit 1; }
fi
zigbuild() {
    (cd "$repo" && PATH="$zig_venv/bin:$PATH" cargo zigbuild "$@")
}

# musl: Rust links its musl targets statically by default, and then builds no cdylib. A shared
# library must use the C library of the process that loads it, so libtel.so for musl is built
# with crt-static off, against musl's libc.so (every musl build: the shipped one and the tests).
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS=${CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS:--C target-feature=-crt-static}

# The three shipped Linux libraries (dist profile): glibc 2.17's symbols for x86-64 and aarch64,
# musl for x86-64. Always built together, by this one command, by build-wheels.sh and by
# packaging/linux/cross-test.sh alike: their fat-LTO links (a core each) run side by side, and
# a second caller finds everything fresh (a cargo zigbuild of one target sets other
# environment variables than one of three, which would make cargo build them again).
zig_linux_targets=(x86_64-unknown-linux-gnu.2.17 aarch64-unknown-linux-gnu.2.17 x86_64-unknown-linux-musl)
zigbuild_linux_dist() {
    local t args=()
    for t in "${zig_linux_targets[@]}"; do args+=(--target "$t"); done
    zigbuild --profile dist --locked -p onecollector-tel "${args[@]}"
}
