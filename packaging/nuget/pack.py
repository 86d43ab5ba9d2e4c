#!/usr/bin/env python3
"""Builds OneCollector.Tel.Native.<version>.nupkg: libtel for each platform built so far, tel.h,
the C++ wrapper (tel/tel.hpp and the headers it includes: tel/value.hpp, tel/options.hpp,
tel/client.hpp), the MSBuild targets and the licence text (LICENSE, at the package's root).

    python3 packaging/nuget/pack.py [--out DIR] [--linux-x64 PATH] [--win-x64 PATH] ...

The version, license, description and repository come from the root Cargo.toml and fill the
$tokens$ of OneCollector.Tel.Native.nuspec. The package is written here as NuGet's own packer
writes it (an OPC zip: the nuspec, [Content_Types].xml, _rels/.rels and a core-properties
part): Debian's `nuget` (2.8) predates the nuspec's <license> and <repository> elements, and no
newer packer is installable on Linux from the registries this project uses.

Where each platform's library is taken from, first found wins (cargo's `dist` profile, the one
packages are built with, e.g. `cargo build --profile dist -p onecollector-tel`):
  linux-x64       --linux-x64, $TEL_NUGET_LINUX_X64, <target>/x86_64-unknown-linux-gnu/dist
                  (the glibc 2.17 build of build-wheels.sh), <target>/dist (required)
  linux-arm64     --linux-arm64, $TEL_NUGET_LINUX_ARM64, <target>/aarch64-unknown-linux-gnu/dist
  linux-musl-x64  --linux-musl-x64, $TEL_NUGET_LINUX_MUSL_X64, <target>/x86_64-unknown-linux-musl/dist
  win-x64         --win-x64, $TEL_NUGET_WIN_X64, <target>/x86_64-pc-windows-gnu/dist,
                  <target>/x86_64-pc-windows-msvc/dist: tel.dll and its import library
                  (tel.dll.lib, tel.lib or libtel.dll.a), packaged as build/native/lib/win-x64/tel.lib
  win-arm64       --win-arm64, $TEL_NUGET_WIN_ARM64, <target>/aarch64-pc-windows-gnullvm/dist,
                  <target>/aarch64-pc-windows-msvc/dist: the same, for Arm64
  osx-x64         --osx-x64, $TEL_NUGET_OSX_X64, <target>/x86_64-apple-darwin/dist
  osx-arm64       --osx-arm64, $TEL_NUGET_OSX_ARM64, <target>/aarch64-apple-darwin/dist
Each may name the library file or its folder; a file is packaged under the name .NET loads
(libtel.so, tel.dll, libtel.dylib), whatever its own (an installed libtel.so.0.2.0, say).
<target> is $CARGO_TARGET_DIR, else <repo>/target.
Every file is checked for its platform before it is packaged: the machine of an ELF, PE or
Mach-O library (and of each member of a Windows import library), and for Linux the C library
it needs (glibc's libc.so.6, or musl's libc.so for linux-musl-x64), so a library can not land
in another platform's slot. --require RID,... fails unless each of those platforms was found.
$TEL_NUGET_EXTRA may name a folder laid out like the package (runtimes/..., build/...), whose
files are added as they are.
"""

import argparse
import hashlib
import struct
import os
import re
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGE_ID = "OneCollector.Tel.Native"

# Zip entries carry this date, so the same inputs give the same bytes.
FIXED_DATE = (2000, 1, 1, 0, 0, 0)


def crate_metadata(cargo_toml=REPO / "Cargo.toml"):
    """version, license, repository and description of the crate, from the root Cargo.toml."""
    text = cargo_toml.read_text(encoding="utf-8")
    try:
        import tomllib  # Python 3.11+

        data = tomllib.loads(text)
        workspace = data.get("workspace", {}).get("package", {})
        package = data.get("package", {})

        def field(name):
            value = package.get(name)
            if isinstance(value, dict) or value is None:  # `name.workspace = true`
                value = workspace.get(name)
            return value

        meta = {k: field(k) for k in ("version", "license", "repository", "description")}
    except ImportError:  # older Python: the simple `key = "value"` lines are enough
        meta = {}
        for key in ("version", "license", "repository", "description"):
            found = re.search(rf'^\s*{key}\s*=\s*"([^"]*)"', text, re.MULTILINE)
            meta[key] = found.group(1) if found else None
    missing = [k for k, v in meta.items() if not v]
    if missing:
        raise SystemExit(f"pack.py: {cargo_toml} has no {', '.join(missing)}")
    return meta


def target_dir():
    configured = os.environ.get("CARGO_TARGET_DIR")
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else REPO / path
    return REPO / "target"


# rid: (option, environment variable, cargo triple folders, library file names)
PLATFORMS = {
    "linux-x64": ("linux_x64", "TEL_NUGET_LINUX_X64", ["x86_64-unknown-linux-gnu/dist", "dist"], ["libtel.so"]),
    "linux-arm64": (
        "linux_arm64",
        "TEL_NUGET_LINUX_ARM64",
        ["aarch64-unknown-linux-gnu/dist"],
        ["libtel.so"],
    ),
    "linux-musl-x64": (
        "linux_musl_x64",
        "TEL_NUGET_LINUX_MUSL_X64",
        ["x86_64-unknown-linux-musl/dist"],
        ["libtel.so"],
    ),
    "win-x64": (
        "win_x64",
        "TEL_NUGET_WIN_X64",
        ["x86_64-pc-windows-gnu/dist", "x86_64-pc-windows-msvc/dist"],
        ["tel.dll"],
    ),
    "win-arm64": (
        "win_arm64",
        "TEL_NUGET_WIN_ARM64",
        ["aarch64-pc-windows-gnullvm/dist", "aarch64-pc-windows-msvc/dist"],
        ["tel.dll"],
    ),
    "osx-x64": ("osx_x64", "TEL_NUGET_OSX_X64", ["x86_64-apple-darwin/dist"], ["libtel.dylib"]),
    "osx-arm64": (
        "osx_arm64",
        "TEL_NUGET_OSX_ARM64",
        ["aarch64-apple-darwin/dist"],
        ["libtel.dylib"],
    ),
}

# What each platform's files must be: (format, machine, C library for ELF).
# ELF e_machine: 62 x86-64, 183 AArch64; PE/COFF machine: 0x8664 AMD64, 0xAA64 ARM64; Mach-O
# cputype: 0x01000007 x86-64, 0x0100000C arm64.
ARCHITECTURES = {
    "linux-x64": ("ELF", 62, "glibc"),
    "linux-arm64": ("ELF", 183, "glibc"),
    "linux-musl-x64": ("ELF", 62, "musl"),
    "win-x64": ("PE", 0x8664, None),
    "win-arm64": ("PE", 0xAA64, None),
    "osx-x64": ("Mach-O", 0x01000007, None),
    "osx-arm64": ("Mach-O", 0x0100000C, None),
}


def elf_needed(data):
    """The DT_NEEDED names of an ELF64 little-endian file."""
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    needed = []
    for _, sh_type, _, _, offset, size, link, _, _, _ in sections:
        if sh_type != 6:  # SHT_DYNAMIC
            continue
        strtab = sections[link][4]
        for at in range(offset, offset + size, 16):
            tag, value = struct.unpack_from("<qQ", data, at)
            if tag == 0:
                break
            if tag == 1:
                end = data.index(b"\0", strtab + value)
                needed.append(data[strtab + value : end].decode())
    return needed


def describe(data):
    """(format, machine, C library) of a library file; C library only for ELF."""
    if data[:4] == b"\x7fELF":
        if data[4] != 2 or data[5] != 1:
            return ("ELF (not 64-bit little-endian)", None, None)
        needed = elf_needed(data)
        libc = "glibc" if "libc.so.6" in needed else "musl" if any(n == "libc.so" or n.startswith("libc.musl-") for n in needed) else None
        return ("ELF", struct.unpack_from("<H", data, 18)[0], libc)
    if data[:2] == b"MZ":
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        if data[pe : pe + 4] == b"PE\0\0":
            return ("PE", struct.unpack_from("<H", data, pe + 4)[0], None)
    if data[:4] in (b"\xcf\xfa\xed\xfe",):  # MH_MAGIC_64, little-endian
        return ("Mach-O", struct.unpack_from("<I", data, 4)[0], None)
    return ("unknown", None, None)


def import_library_machines(data):
    """The machines of the members of a COFF import library (an ar archive): short import
    entries (MSVC's format, llvm-dlltool's) and COFF objects (GNU's format)."""
    if data[:8] != b"!<arch>\n":
        return {"not an archive"}
    machines = set()
    at = 8
    while at + 60 <= len(data):
        name = data[at : at + 16].decode("ascii", "replace").strip()
        size = int(data[at + 48 : at + 58].decode().strip())
        body = data[at + 60 : at + 60 + size]
        if name not in ("/", "//") and not name.startswith("/SYM") and len(body) >= 8:
            sig1, sig2 = struct.unpack_from("<HH", body, 0)
            if sig1 == 0 and sig2 == 0xFFFF:
                machines.add(struct.unpack_from("<H", body, 6)[0])
            else:
                machine = struct.unpack_from("<H", body, 0)[0]
                if machine:  # 0: IMAGE_FILE_MACHINE_UNKNOWN, e.g. a symbol-table member
                    machines.add(machine)
        at += 60 + size + (size & 1)
    return machines


def check_architecture(rid, path, implib=None):
    """Fails unless the file at `path` (and its import library) are for `rid`."""
    want_format, want_machine, want_libc = ARCHITECTURES[rid]
    kind, machine, libc = describe(path.read_bytes())
    if (kind, machine) != (want_format, want_machine):
        found = f"{kind} for machine {machine:#x}" if machine is not None else kind
        raise SystemExit(f"pack.py: {path} is {found}, not {want_format} for machine {want_machine:#x} ({rid})")
    if want_libc and libc != want_libc:
        raise SystemExit(f"pack.py: {path} needs {libc or 'no known C library'}, not {want_libc} ({rid})")
    if implib is not None:
        machines = import_library_machines(implib.read_bytes())
        if machines != {want_machine}:
            shown = ", ".join(m if isinstance(m, str) else f"{m:#x}" for m in sorted(machines, key=str))
            raise SystemExit(f"pack.py: {implib} is for machines {{{shown}}}, not {want_machine:#x} ({rid})")


# The import library of tel.dll, best first: cargo's MSVC name, a dlltool-made tel.lib, the
# GNU one (which MSVC's linker reads too). cargo's MSVC tel.lib is the *static* library, so it
# is taken only where no tel.dll.lib sits beside it.
IMPORT_LIBS = ["tel.dll.lib", "tel.lib", "libtel.dll.a"]


def locate(rid, given):
    """The library file of `rid`, or None when that platform was not built."""
    option, env, triples, names = PLATFORMS[rid]
    candidates = []
    explicit = given or os.environ.get(env)
    if explicit:
        candidates.append(Path(explicit))
    else:
        candidates.extend(target_dir() / t for t in triples)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        for name in names:
            if (candidate / name).is_file():
                return candidate / name
    if explicit:
        raise SystemExit(f"pack.py: no {' or '.join(names)} at {explicit} (for {rid})")
    return None


def stage(root, args):
    """Lays out the package's files under `root`; returns the platforms found."""
    found = []
    for rid, (option, _, _, names) in PLATFORMS.items():
        library = locate(rid, getattr(args, option))
        if library is None:
            continue
        implib = None
        if rid.startswith("win-"):
            implib = next((library.parent / n for n in IMPORT_LIBS if (library.parent / n).is_file()), None)
            if implib is None:
                raise SystemExit(f"pack.py: {library} has no import library beside it ({', '.join(IMPORT_LIBS)})")
        check_architecture(rid, library, implib)
        native = root / "runtimes" / rid / "native"
        native.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(library, native / names[0])
        if implib is not None:
            lib = root / "build" / "native" / "lib" / rid
            lib.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(implib, lib / "tel.lib")
        found.append(rid)
    if "linux-x64" not in found:
        raise SystemExit("pack.py: no linux-x64 libtel.so; build it (cargo build --profile dist -p onecollector-tel) or pass --linux-x64")

    # The MIT licence asks for its text, with the copyright line, in every copy.
    shutil.copyfile(REPO / "LICENSE", root / "LICENSE")

    include = root / "build" / "native" / "include"
    include.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "include" / "tel.h", include / "tel.h")
    shutil.copytree(REPO / "bindings" / "cpp" / "include" / "tel", include / "tel",
                    ignore=lambda folder, names: [n for n in names if not n.endswith(".hpp")])
    shutil.copyfile(HERE / f"{PACKAGE_ID}.targets", root / "build" / "native" / f"{PACKAGE_ID}.targets")

    extra = os.environ.get("TEL_NUGET_EXTRA")
    if extra:
        shutil.copytree(extra, root, dirs_exist_ok=True)
    return found


def render_nuspec(meta):
    text = (HERE / f"{PACKAGE_ID}.nuspec").read_text(encoding="utf-8")
    text = re.sub(r"\s*<!--.*?-->", "", text, flags=re.DOTALL)  # notes for maintainers only
    for key, value in meta.items():
        text = text.replace(f"${key}$", escape(value, {'"': "&quot;"}))
    leftover = re.search(r"\$[a-z]+\$", text)
    if leftover:
        raise SystemExit(f"pack.py: the nuspec token {leftover.group(0)} has no value")
    # The <files> section is for packers; NuGet drops it from the packaged manifest.
    return re.sub(r"\s*<files>.*?</files>", "", text, flags=re.DOTALL)


def content_types(names):
    extensions = sorted({n.rsplit(".", 1)[1].lower() for n in names if "." in n.rsplit("/", 1)[-1]})
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">',
        '  <Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml" />',
        '  <Default Extension="psmdcp" ContentType="application/vnd.openxmlformats-package.core-properties+xml" />',
    ]
    for ext in extensions:
        if ext not in ("rels", "psmdcp"):
            lines.append(f'  <Default Extension="{ext}" ContentType="application/octet" />')
    for name in sorted(n for n in names if "." not in n.rsplit("/", 1)[-1]):
        lines.append(f'  <Override PartName="/{name}" ContentType="application/octet" />')
    lines.append("</Types>")
    return "\n".join(lines) + "\n"


def relationships(nuspec_name, psmdcp_name, digest):
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
        f'  <Relationship Type="http://schemas.microsoft.com/packaging/2010/07/manifest" Target="/{nuspec_name}" Id="R{digest[:16].upper()}" />\n'
        f'  <Relationship Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="/{psmdcp_name}" Id="R{digest[16:32].upper()}" />\n'
        "</Relationships>\n"
    )


def core_properties(meta):
    e = escape
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<coreProperties xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns="http://schemas.openxmlformats.org/package/2006/metadata/core-properties">\n'
        "  <dc:creator>onecollector-tel contributors</dc:creator>\n"
        f"  <dc:description>{e(meta['description'])}</dc:description>\n"
        f"  <dc:identifier>{PACKAGE_ID}</dc:identifier>\n"
        f"  <version>{e(meta['version'])}</version>\n"
        "  <keywords>telemetry onecollector common-schema native c cpp</keywords>\n"
        "  <lastModifiedBy>onecollector-tel packaging/nuget/pack.py</lastModifiedBy>\n"
        "</coreProperties>\n"
    )


def write_package(root, meta, out_dir):
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    nuspec_name = f"{PACKAGE_ID}.nuspec"
    nuspec = render_nuspec(meta)
    digest = hashlib.sha256()
    digest.update(nuspec.encode())
    for name in files:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    digest = digest.hexdigest()
    psmdcp_name = f"package/services/metadata/core-properties/{digest[:32]}.psmdcp"

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{PACKAGE_ID}.{meta['version']}.nupkg"
    tmp = path.with_suffix(".nupkg.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:

        def add(name, data):
            info = zipfile.ZipInfo(name, FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)

        add("_rels/.rels", relationships(nuspec_name, psmdcp_name, digest))
        add(nuspec_name, nuspec)
        for name in files:
            add(name, (root / name).read_bytes())
        add(psmdcp_name, core_properties(meta))
        add("[Content_Types].xml", content_types(files + [nuspec_name]))
    os.replace(tmp, path)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=target_dir() / "nuget", help="output folder (default <target>/nuget)")
    for rid, (option, env, _, _) in PLATFORMS.items():
        parser.add_argument(f"--{rid}", dest=option, help=f"{rid} library file or folder (or ${env})")
    parser.add_argument("--require", default="", help="comma-separated platforms that must be found (e.g. all five built here)")
    args = parser.parse_args(argv)
    required = [r for r in args.require.split(",") if r]
    unknown = [r for r in required if r not in PLATFORMS]
    if unknown:
        parser.error(f"--require: unknown platforms {unknown}")

    meta = crate_metadata()
    with tempfile.TemporaryDirectory(prefix="tel-nuget-") as tmp:
        root = Path(tmp)
        found = stage(root, args)
        missing = [r for r in required if r not in found]
        if missing:
            raise SystemExit(f"pack.py: required platforms not built: {', '.join(missing)}")
        path = write_package(root, meta, args.out)
    print(f"{path} ({', '.join(found)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
