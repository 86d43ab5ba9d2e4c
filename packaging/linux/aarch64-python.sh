#!/usr/bin/env bash
# Lays out Debian's aarch64 Python 3.11 in a folder, for qemu-user (cross-test.sh step 5):
#
#   bash packaging/linux/aarch64-python.sh DIR
#
# The arm64 packages of the interpreter, its standard library and the C libraries they load
# (the C library itself, libffi for ctypes, zlib, expat, libcrypt, OpenSSL for hashlib/ssl)
# are fetched with `apt-get download` and unpacked into DIR with `dpkg-deb -x`: nothing is
# installed, this machine's own Python is untouched. `qemu-aarch64 -L DIR DIR/usr/bin/python3.11`
# then runs it. About 8 MB. A whole debootstrap'd system would work too, but is twenty times
# larger and needs its second stage run under qemu.
#
# Needs the arm64 architecture in dpkg's list (`dpkg --add-architecture arm64 && apt-get
# update`, as .ci/run does). Exits 0 when DIR holds a Python that starts (done before, or now),
# 1 when it cannot be had, saying why.
set -euo pipefail
dir=${1:?usage: aarch64-python.sh DIR}
python=$dir/usr/bin/python3.11
packages=(libc6 libgcc-s1 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
    libffi8 zlib1g libexpat1 libcrypt1 libssl3 libbz2-1.0 liblzma5 libuuid1)

starts() { [ -x "$python" ] && timeout 120 qemu-aarch64 -L "$dir" "$python" -c 'import ctypes, json, urllib.request' 2>/dev/null; }
starts && exit 0

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    echo "aarch64-python.sh: dpkg has no arm64 architecture (as root: dpkg --add-architecture arm64 && apt-get update)" >&2
    exit 1
fi
debs=$(mktemp -d)
trap 'rm -rf "$debs"' EXIT
if ! (cd "$debs" && apt-get download -q "${packages[@]/%/:arm64}" >/dev/null); then
    echo "aarch64-python.sh: apt-get download of the arm64 packages failed (apt-get update?)" >&2
    exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
for deb in "$debs"/*.deb; do
    dpkg-deb -x "$deb" "$dir"
done
# Debian 12 keeps /lib and /usr/lib apart in the packages (merged only by the installed
# system's symlinks): the loader is looked up in DIR/lib.
if starts; then
    echo "aarch64-python.sh: $("$python" --version 2>/dev/null || qemu-aarch64 -L "$dir" "$python" --version) in $dir"
else
    echo "aarch64-python.sh: the unpacked Python in $dir does not start under qemu-aarch64" >&2
    exit 1
fi
