"""Checks the wheels build-wheels.sh writes (run by run-tests.sh):

    python tests/check_wheels.py WHEEL...

The platform each wheel is for is read from its file name, and each is checked for it: tagged
``py3-none-<platform>`` (ctypes needs no Python ABI) and not pure, every file's hash matching its
RECORD line, the same Python files in every wheel, ``py.typed``, the repository's LICENSE in
``.dist-info/licenses/`` and named by METADATA with the MIT licence expression, and one library,
the platform's alone:

- ``manylinux*_x86_64``, ``manylinux*_aarch64``, ``musllinux_*_x86_64``: ``libtel.so``, a 64-bit
  little-endian ELF shared object for that machine (x86-64, AArch64), whose dynamic symbol table
  defines exactly the functions of ``include/tel.h`` and whose ``DT_NEEDED`` entries name only
  the C library of its kind (glibc's libraries and ``libgcc_s.so.1``; musl's ``libc.so``);
- ``win_amd64``, ``win_arm64``: ``tel.dll``, a PE32+ DLL for that machine (AMD64, ARM64), whose
  export table names exactly the functions of ``include/tel.h`` and whose import table names
  only DLLs that every Windows 10 has.

The ELF and PE tables are read here, with no tool, so the check runs wherever Python does.
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
from typing import Dict, List, NamedTuple, Optional, Set, Tuple

PACKAGE = "onecollector_tel"
REPO = Path(__file__).resolve().parents[3]
LIBRARIES = {"libtel.so", "libtel.dylib", "tel.dll"}
HEADER = Path(__file__).resolve().parents[3] / "include" / "tel.h"

# What a library may need from the system.
GLIBC_LIBRARIES = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
    "libgcc_s.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1",
}
MUSL_LIBRARIES = {"libc.so", "libc.musl-x86_64.so.1"}
WINDOWS_DLLS = re.compile(
    r"(kernel32|ntdll|advapi32|bcrypt|bcryptprimitives|crypt32|userenv|winhttp|ws2_32|msvcrt"
    r"|api-ms-win-[a-z0-9-]+)\.dll",
    re.IGNORECASE,
)


class Platform(NamedTuple):
    tag: str  # a regular expression for each platform tag of the wheel
    library: str
    kind: str  # "elf" or "pe"
    machine: int  # e_machine or the PE machine
    machine_name: str
    system: Set[str]  # the libraries it may need (ELF)


PLATFORMS = {
    "manylinux_x86_64": Platform(r"manylinux(_2_[0-9]+|1|2010|2014)_x86_64", "libtel.so", "elf", 62, "x86-64", GLIBC_LIBRARIES),
    "manylinux_aarch64": Platform(r"manylinux(_2_[0-9]+|2014)_aarch64", "libtel.so", "elf", 183, "AArch64", GLIBC_LIBRARIES),
    "musllinux_x86_64": Platform(r"musllinux_1_[0-9]+_x86_64", "libtel.so", "elf", 62, "x86-64", MUSL_LIBRARIES),
    "win_amd64": Platform(r"win_amd64", "tel.dll", "pe", 0x8664, "AMD64", set()),
    "win_arm64": Platform(r"win_arm64", "tel.dll", "pe", 0xAA64, "ARM64", set()),
}


def fail(message: str) -> None:
    raise SystemExit(f"check_wheels.py: {message}")


def header_functions() -> Set[str]:
    """The ABI: every function include/tel.h declares."""
    text = HEADER.read_text(encoding="utf-8")
    return {
        m.group(1)
        for line in text.splitlines()
        if not line.startswith("typedef")
        for m in [re.match(r"^[A-Za-z_][A-Za-z0-9_ ]*[ *](tel_[a-z_]+)\(", line)]
        if m
    }


def platform_of(path: str) -> Platform:
    tags = Path(path).stem.split("-")[-1].split(".")
    for platform in PLATFORMS.values():
        if all(re.fullmatch(platform.tag, t) for t in tags):
            return platform
    fail(f"{path}: no known platform for the tags {tags}")
    raise AssertionError


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


# ---- ELF (64-bit, little-endian) -------------------------------------------------------------


def elf_machine(data: bytes) -> int:
    """The e_machine of an ELF64 LE file (a program or a library)."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    return struct.unpack_from("<H", data, 18)[0]


def elf_tables(data: bytes) -> Tuple[int, Set[str], List[str]]:
    """(e_machine, the defined global symbols of .dynsym, the DT_NEEDED names) of an ELF64 LE
    shared object; raises ValueError when it is not one."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type != 3:
        raise ValueError(f"not a shared object (e_type {e_type})")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]

    def strings(index: int):
        base = sections[index][4]
        return lambda off: data[base + off : data.index(b"\0", base + off)].decode("utf-8", "replace")

    exported: Set[str] = set()
    needed: List[str] = []
    for _name, sh_type, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
        if sh_type == 11:  # SHT_DYNSYM
            name_of = strings(link)
            for off in range(offset + entsize, offset + size, entsize):  # entry 0 is null
                st_name, st_info, st_other, st_shndx = struct.unpack_from("<IBBH", data, off)
                bind, visibility = st_info >> 4, st_other & 3
                if st_shndx != 0 and bind in (1, 2) and visibility in (0, 3):  # defined, global/weak, default/protected
                    exported.add(name_of(st_name))
        elif sh_type == 6:  # SHT_DYNAMIC
            name_of = strings(link)
            for off in range(offset, offset + size, 16):
                tag, value = struct.unpack_from("<qQ", data, off)
                if tag == 0:
                    break
                if tag == 1:  # DT_NEEDED
                    needed.append(name_of(value))
    return e_machine, exported, needed


# ---- PE32+ -----------------------------------------------------------------------------------


def pe_tables(data: bytes) -> Tuple[int, Set[str], List[str]]:
    """(machine, the export table's names, the imported DLLs) of a PE32+ DLL; raises ValueError
    when it is not one."""
    if data[:2] != b"MZ":
        raise ValueError("not a PE file (no MZ header)")
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    if data[pe : pe + 4] != b"PE\0\0":
        raise ValueError("not a PE file (no PE signature)")
    machine, nsections = struct.unpack_from("<HH", data, pe + 4)
    optional_size, characteristics = struct.unpack_from("<HH", data, pe + 20)
    optional = pe + 24
    if struct.unpack_from("<H", data, optional)[0] != 0x20B:
        raise ValueError("not PE32+")
    if not characteristics & 0x2000:
        raise ValueError("not a DLL (IMAGE_FILE_DLL unset)")
    directories = optional + 112
    export_rva = struct.unpack_from("<I", data, directories)[0]
    import_rva = struct.unpack_from("<I", data, directories + 8)[0]
    sections = [struct.unpack_from("<8sIIII", data, optional + optional_size + 40 * i) for i in range(nsections)]

    def offset(rva: int) -> int:
        for _name, vsize, vaddr, rawsize, rawptr in sections:
            if vaddr <= rva < vaddr + max(vsize, rawsize):
                return rawptr + rva - vaddr
        raise ValueError(f"RVA {rva:#x} is in no section")

    def cstring(rva: int) -> str:
        start = offset(rva)
        return data[start : data.index(b"\0", start)].decode("ascii", "replace")

    exported: Set[str] = set()
    if export_rva:
        base = offset(export_rva)
        count, names_rva = struct.unpack_from("<I", data, base + 24)[0], struct.unpack_from("<I", data, base + 32)[0]
        for i in range(count):
            exported.add(cstring(struct.unpack_from("<I", data, offset(names_rva) + 4 * i)[0]))
    imported: List[str] = []
    if import_rva:
        at = offset(import_rva)
        while True:
            lookup, _stamp, _chain, name_rva, thunk = struct.unpack_from("<IIIII", data, at)
            if not (lookup or name_rva or thunk):
                break
            imported.append(cstring(name_rva))
            at += 20
    return machine, exported, imported


def check_library(path: str, platform: Platform, data: bytes, abi: Set[str]) -> str:
    try:
        machine, exported, needed = (elf_tables if platform.kind == "elf" else pe_tables)(data)
    except (ValueError, struct.error, IndexError) as e:
        fail(f"{path}: {platform.library} cannot be read as {platform.kind.upper()}: {e}")
        raise AssertionError
    if machine != platform.machine:
        fail(f"{path}: {platform.library} is for machine {machine:#x}, not {platform.machine_name} ({platform.machine:#x})")
    if exported != abi:
        fail(
            f"{path}: {platform.library} exports differ from include/tel.h: "
            f"missing {sorted(abi - exported)}, extra {sorted(exported - abi)}"
        )
    if platform.kind == "elf":
        foreign = [n for n in needed if n not in platform.system]
    else:
        foreign = [n for n in needed if not WINDOWS_DLLS.fullmatch(n)]
    if foreign:
        fail(f"{path}: {platform.library} needs libraries that are not the system's: {foreign}")
    return f"{platform.machine_name}, {len(exported)} exports, needs {', '.join(needed)}"


def main(paths: List[str]) -> int:
    abi = header_functions()
    if len(abi) < 8:
        fail(f"found only {sorted(abi)} in {HEADER}")
    reference: Optional[Dict[str, bytes]] = None
    for path in paths:
        platform = platform_of(path)
        wheel = zipfile.ZipFile(path)
        check_tags(wheel, path, platform.tag)
        check_record(wheel, path)
        check_license(wheel, path)
        if libraries(wheel) != [f"{PACKAGE}/{platform.library}"]:
            fail(f"{path}: libraries {libraries(wheel)}, expected {PACKAGE}/{platform.library} alone")
        data = wheel.read(f"{PACKAGE}/{platform.library}")
        what = check_library(path, platform, data, abi)
        files = python_files(wheel)
        if f"{PACKAGE}/py.typed" not in files:
            fail(f"{path}: py.typed is missing")
        if reference is None:
            reference = files
        elif files != reference:
            fail(f"{path} holds other Python files than {paths[0]}")
        print(f"check_wheels.py: ok: {Path(path).name}: {platform.library} ({len(data)} bytes, {what})")
    print(f"check_wheels.py: {len(paths)} wheels, {len(reference or {})} Python files each")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    sys.exit(main(sys.argv[1:]))
