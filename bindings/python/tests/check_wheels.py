"""Checks the two wheels build-wheels.sh writes (run by run-tests.sh):

    python tests/check_wheels.py <manylinux wheel> <win_amd64 wheel>

Both: tagged ``py3-none-<platform>`` (ctypes needs no Python ABI) and not pure, every file's
hash matching its RECORD line, the same Python files, ``py.typed``, the repository's LICENSE in
``.dist-info/licenses/`` and named by METADATA with the MIT licence expression, one library and
only the platform's: ``libtel.so``, an x86-64 ELF shared object, in the manylinux wheel;
``tel.dll``, a PE32+ x86-64 DLL, in the win_amd64 one.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import re
import struct
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

PACKAGE = "onecollector_tel"
REPO = Path(__file__).resolve().parents[3]
LIBRARIES = {"libtel.so", "libtel.dylib", "tel.dll"}


def fail(message: str) -> None:
    raise SystemExit(f"check_wheels.py: {message}")


def check_record(wheel: zipfile.ZipFile, name: str) -> None:
    records = [n for n in wheel.namelist() if n.endswith(".dist-info/RECORD")]
    if len(records) != 1:
        fail(f"{name}: expected one RECORD, found {records}")
    listed = set()
    for row in csv.reader(io.StringIO(wheel.read(records[0]).decode("utf-8"))):
        path, digest = row[0], row[1]
        listed.add(path)
        if path == records[0]:
            continue
        algorithm, _, expected = digest.partition("=")
        actual = base64.urlsafe_b64encode(hashlib.new(algorithm, wheel.read(path)).digest()).rstrip(b"=").decode()
        if actual != expected:
            fail(f"{name}: the hash of {path} does not match its RECORD line")
    unlisted = {n for n in wheel.namelist() if not n.endswith("/")} - listed
    if unlisted:
        fail(f"{name}: files missing from RECORD: {sorted(unlisted)}")


def check_tags(wheel: zipfile.ZipFile, name: str, platform: str) -> None:
    (wheel_file,) = [n for n in wheel.namelist() if n.endswith(".dist-info/WHEEL")]
    text = wheel.read(wheel_file).decode("utf-8")
    tags = re.findall(r"^Tag: (\S+)$", text, re.M)
    if not tags or any(not re.fullmatch(rf"py3-none-{platform}", tag) for tag in tags):
        fail(f"{name}: tags {tags} are not all py3-none-{platform}")
    if "Root-Is-Purelib: false" not in text:
        fail(f"{name}: the wheel says it is pure Python")
    file_tags = Path(name).stem.split("-", 2)[2]
    for tag in file_tags.split("-")[-1].split("."):
        if not re.fullmatch(platform, tag):
            fail(f"{name}: platform tag {tag} in the file name is not {platform}")


def check_license(wheel: zipfile.ZipFile, name: str) -> None:
    """The licence text ships in the wheel (PEP 639: .dist-info/licenses/), named by METADATA."""
    found = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n)]
    if len(found) != 1:
        fail(f"{name}: expected one .dist-info/licenses/LICENSE, found {found}")
    if wheel.read(found[0]) != (REPO / "LICENSE").read_bytes():
        fail(f"{name}: {found[0]} is not the repository's LICENSE")
    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    text = wheel.read(metadata).decode("utf-8")
    for line in ("License-Expression: MIT", "License-File: LICENSE"):
        if not re.search(rf"^{re.escape(line)}$", text, re.M):
            fail(f"{name}: METADATA lacks '{line}'")


def libraries(wheel: zipfile.ZipFile) -> List[str]:
    return [n for n in wheel.namelist() if n.rsplit("/", 1)[-1] in LIBRARIES]


def python_files(wheel: zipfile.ZipFile) -> Dict[str, bytes]:
    return {n: wheel.read(n) for n in wheel.namelist() if n.startswith(f"{PACKAGE}/") and n.endswith((".py", ".typed"))}


def main(linux_path: str, windows_path: str) -> int:
    linux = zipfile.ZipFile(linux_path)
    windows = zipfile.ZipFile(windows_path)

    check_tags(linux, linux_path, r"manylinux(_2_[0-9]+|1|2010|2014)_x86_64")
    check_tags(windows, windows_path, r"win_amd64")
    for wheel, path in ((linux, linux_path), (windows, windows_path)):
        check_record(wheel, path)
        check_license(wheel, path)

    if libraries(linux) != [f"{PACKAGE}/libtel.so"]:
        fail(f"{linux_path}: libraries {libraries(linux)}, expected {PACKAGE}/libtel.so alone")
    elf = linux.read(f"{PACKAGE}/libtel.so")
    # ELF, 64-bit, little-endian, a shared object (ET_DYN) for x86-64 (EM_X86_64 = 62).
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1 or struct.unpack_from("<HH", elf, 16) != (3, 62):
        fail(f"{linux_path}: libtel.so is not an x86-64 ELF shared object")

    if libraries(windows) != [f"{PACKAGE}/tel.dll"]:
        fail(f"{windows_path}: libraries {libraries(windows)}, expected {PACKAGE}/tel.dll alone")
    dll = windows.read(f"{PACKAGE}/tel.dll")
    if dll[:2] != b"MZ":
        fail(f"{windows_path}: tel.dll is not a PE file")
    pe = struct.unpack_from("<I", dll, 0x3C)[0]
    machine = struct.unpack_from("<H", dll, pe + 4)[0]
    characteristics = struct.unpack_from("<H", dll, pe + 22)[0]
    optional_magic = struct.unpack_from("<H", dll, pe + 24)[0]
    # "PE\0\0", IMAGE_FILE_MACHINE_AMD64, IMAGE_FILE_DLL, PE32+.
    if dll[pe : pe + 4] != b"PE\0\0" or machine != 0x8664 or not characteristics & 0x2000 or optional_magic != 0x20B:
        fail(f"{windows_path}: tel.dll is not a PE32+ x86-64 DLL")

    if python_files(linux) != python_files(windows):
        fail("the two wheels hold different Python files")
    if f"{PACKAGE}/py.typed" not in python_files(linux):
        fail("py.typed is missing")

    print(
        f"check_wheels.py: ok: {Path(linux_path).name} (libtel.so, {len(elf)} bytes), "
        f"{Path(windows_path).name} (tel.dll, {len(dll)} bytes), {len(python_files(linux))} Python files each"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
