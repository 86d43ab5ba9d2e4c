#!/usr/bin/env python3
"""Checks a libtel.so built for another Linux target, with no tool for that target:

    python3 packaging/linux/check_elf.py TRIPLE LIBRARY      the shipped library
    python3 packaging/linux/check_elf.py TRIPLE --exe FILE   only the machine of a program

A library must be an ELF shared object for the target's machine whose dynamic symbol table
defines exactly the functions of include/tel.h, and whose DT_NEEDED entries name only the C
library of the target (glibc's libraries and libgcc_s.so.1, or musl's libc.so). The ELF reader
is the one bindings/python/tests/check_wheels.py uses for the wheels.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python" / "tests"))

from check_wheels import GLIBC_LIBRARIES, MUSL_LIBRARIES, elf_machine, elf_tables, header_functions  # noqa: E402

TARGETS = {
    "aarch64-unknown-linux-gnu": (183, "AArch64", GLIBC_LIBRARIES),
    "x86_64-unknown-linux-gnu": (62, "x86-64", GLIBC_LIBRARIES),
    "x86_64-unknown-linux-musl": (62, "x86-64", MUSL_LIBRARIES),
}


def main(argv):
    if len(argv) not in (3, 4) or argv[1] not in TARGETS or (len(argv) == 4 and argv[2] != "--exe"):
        raise SystemExit(__doc__)
    machine, machine_name, system = TARGETS[argv[1]]
    path = Path(argv[-1])
    data = path.read_bytes()
    if len(argv) == 4:
        found = elf_machine(data)
        if found != machine:
            raise SystemExit(f"check_elf.py: {path} is for machine {found}, not {machine_name}")
        print(f"check_elf.py: {path.name}: {machine_name} program")
        return 0
    try:
        found, exported, needed = elf_tables(data)
    except (ValueError, IndexError) as e:
        raise SystemExit(f"check_elf.py: {path}: {e}")
    problems = []
    if found != machine:
        problems.append(f"machine {found}, not {machine_name} ({machine})")
    abi = header_functions()
    if exported != abi:
        problems.append(f"exports differ from include/tel.h: missing {sorted(abi - exported)}, extra {sorted(exported - abi)}")
    foreign = [n for n in needed if n not in system]
    if foreign:
        problems.append(f"needs libraries that are not the system's: {foreign}")
    if problems:
        raise SystemExit(f"check_elf.py: {path}: " + "; ".join(problems))
    print(f"check_elf.py: {path}: {machine_name}, exports the {len(abi)} functions of include/tel.h, needs {', '.join(needed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
