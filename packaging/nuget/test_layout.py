#!/usr/bin/env python3
"""Opens a built OneCollector.Tel.Native nupkg and checks what NuGet and MSBuild rely on: the OPC
parts, the nuspec metadata (id, the crate's version, license, repository), the licence text
(LICENSE, the repository's), the native library slots, the headers and the MSBuild targets.

    python3 packaging/nuget/test_layout.py <path to .nupkg> [RID...]

Each library in runtimes/ must be for its slot's machine (read from its ELF, PE or Mach-O
header here, independently of pack.py), with musl's C library in linux-musl-x64 and glibc's in
the other Linux slots; each RID named must be in the package.
"""

import re
import struct
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGE_ID = "OneCollector.Tel.Native"
NUSPEC_NS = "{http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd}"
MSBUILD_NS = "{http://schemas.microsoft.com/developer/msbuild/2003}"
RELS_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
TYPES_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"


def crate_field(name):
    """A field of the root Cargo.toml, read here independently of pack.py."""
    import tomllib

    data = tomllib.loads((REPO / "Cargo.toml").read_text(encoding="utf-8"))
    return data["workspace"]["package"][name]


class Checks:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", file=sys.stderr)
        return ok


# slot: (format, machine); ELF e_machine, PE machine, Mach-O cputype.
SLOTS = {
    "runtimes/linux-x64/native/libtel.so": ("ELF", 62),
    "runtimes/linux-arm64/native/libtel.so": ("ELF", 183),
    "runtimes/linux-musl-x64/native/libtel.so": ("ELF", 62),
    "runtimes/win-x64/native/tel.dll": ("PE", 0x8664),
    "runtimes/win-arm64/native/tel.dll": ("PE", 0xAA64),
    "runtimes/osx-x64/native/libtel.dylib": ("Mach-O", 0x01000007),
    "runtimes/osx-arm64/native/libtel.dylib": ("Mach-O", 0x0100000C),
}


def machine_of(data):
    """(format, machine) from a library's first bytes."""
    if data[:4] == b"\x7fELF":
        return "ELF", struct.unpack_from("<H", data, 18)[0]
    if data[:2] == b"MZ":
        pe = struct.unpack_from("<I", data, 0x3C)[0]
        return "PE", struct.unpack_from("<H", data, pe + 4)[0]
    if data[:4] == b"\xcf\xfa\xed\xfe":
        return "Mach-O", struct.unpack_from("<I", data, 4)[0]
    return "unknown", None


def main(path, expected_rids=()):
    t = Checks()
    version = crate_field("version")
    nupkg = Path(path)
    t.check(nupkg.name == f"{PACKAGE_ID}.{version}.nupkg", f"file name {nupkg.name} carries the crate version {version}")

    with zipfile.ZipFile(nupkg) as z:
        t.check(z.testzip() is None, "every zip entry reads back (CRC)")
        names = z.namelist()
        read = z.read

        # --- OPC parts
        t.check(len(names) == len(set(names)), "no duplicate entries")
        t.check(all("\\" not in n and not n.startswith("/") and not n.endswith("/") for n in names),
                "entry names are relative, with forward slashes, files only")
        for required in ("[Content_Types].xml", "_rels/.rels", f"{PACKAGE_ID}.nuspec"):
            t.check(required in names, f"{required} is in the package")
        psmdcp = [n for n in names if re.fullmatch(r"package/services/metadata/core-properties/[0-9a-f]+\.psmdcp", n)]
        t.check(len(psmdcp) == 1, "one core-properties part")

        rels = ET.fromstring(read("_rels/.rels"))
        targets = {r.get("Type"): r.get("Target") for r in rels.iter(f"{RELS_NS}Relationship")}
        t.check(targets.get("http://schemas.microsoft.com/packaging/2010/07/manifest") == f"/{PACKAGE_ID}.nuspec",
                "_rels/.rels points at the nuspec as the manifest")
        core = targets.get("http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties")
        t.check(core is not None and core.lstrip("/") in names, "_rels/.rels points at the core-properties part")
        ids = [r.get("Id") for r in rels.iter(f"{RELS_NS}Relationship")]
        t.check(all(ids) and len(ids) == len(set(ids)), "relationship ids are unique")

        types = ET.fromstring(read("[Content_Types].xml"))
        defaults = {d.get("Extension").lower() for d in types.iter(f"{TYPES_NS}Default")}
        overrides = {o.get("PartName") for o in types.iter(f"{TYPES_NS}Override")}
        for name in names:
            if name == "[Content_Types].xml":
                continue
            base = name.rsplit("/", 1)[-1]
            typed = ("." in base and base.rsplit(".", 1)[1].lower() in defaults) or f"/{name}" in overrides
            t.check(typed, f"{name} has a content type")

        # --- nuspec metadata
        nuspec = ET.fromstring(read(f"{PACKAGE_ID}.nuspec"))
        t.check(nuspec.tag == f"{NUSPEC_NS}package", "the nuspec is in NuGet's namespace")
        meta = nuspec.find(f"{NUSPEC_NS}metadata")
        text = lambda tag: (meta.findtext(f"{NUSPEC_NS}{tag}") or "").strip()
        t.check(text("id") == PACKAGE_ID, f"id is {PACKAGE_ID}")
        t.check(text("version") == version, f"version {text('version')!r} is the crate's {version!r}")
        license_el = meta.find(f"{NUSPEC_NS}license")
        t.check(license_el is not None and license_el.get("type") == "expression", "license is an expression")
        t.check(license_el is not None and license_el.text == crate_field("license") == "MIT",
                "the license expression is the crate's, MIT")
        repo_el = meta.find(f"{NUSPEC_NS}repository")
        t.check(repo_el is not None and repo_el.get("url") == crate_field("repository"),
                "repository url is the crate's")
        t.check(repo_el is not None and repo_el.get("type") == "git", "repository type is git")
        t.check(text("projectUrl") == crate_field("repository"), "projectUrl is the repository")
        t.check(text("authors") != "" and text("description") != "", "authors and description are set")
        t.check(meta.find(f"{NUSPEC_NS}licenseUrl") is None, "no deprecated licenseUrl")
        t.check(nuspec.find(f"{NUSPEC_NS}files") is None, "the packaged nuspec has no <files>")
        t.check("$" not in read(f"{PACKAGE_ID}.nuspec").decode(), "no unreplaced $token$")

        props = ET.fromstring(read(psmdcp[0])) if psmdcp else None
        if props is not None:
            t.check(props.findtext("{http://purl.org/dc/elements/1.1/}identifier") == PACKAGE_ID,
                    "core properties name the id")
            t.check(props.findtext("{http://schemas.openxmlformats.org/package/2006/metadata/core-properties}version")
                    == version, "core properties carry the version")

        # --- content
        if t.check("LICENSE" in names, "LICENSE (the licence text) is in the package"):
            t.check(read("LICENSE") == (REPO / "LICENSE").read_bytes(), "LICENSE is the repository's")
        so = "runtimes/linux-x64/native/libtel.so"
        if t.check(so in names, f"{so} is in the package"):
            data = read(so)
            t.check(data[:4] == b"\x7fELF" and data[4] == 2 and int.from_bytes(data[16:18], "little") == 3,
                    "libtel.so is a 64-bit ELF shared object")
            for symbol in (b"tel_init", b"tel_log", b"tel_flush", b"tel_shutdown", b"tel_stats_json",
                           b"tel_last_error", b"tel_version", b"tel_set_logger",
                           # ABI 1.1, which the C++ wrapper's tel/client.hpp calls
                           b"tel_client_new", b"tel_client_log", b"tel_client_log_ex",
                           b"tel_client_flush", b"tel_client_stats_json", b"tel_client_close",
                           b"tel_log_ex", b"tel_set_delivery_callback",
                           b"tel_client_set_delivery_callback", b"tel_purge"):
                t.check(b"\0" + symbol + b"\0" in data, f"libtel.so names {symbol.decode()}")
        header = "build/native/include/tel.h"
        if t.check(header in names, f"{header} is in the package"):
            t.check(read(header) == (REPO / "include" / "tel.h").read_bytes(), "tel.h is the repository's")
            t.check(f'#define TEL_VERSION "{version}"'.encode() in read(header), "tel.h's TEL_VERSION is the crate's")
        for wrapper in ("tel.hpp", "value.hpp", "options.hpp", "client.hpp"):
            t.check(f"build/native/include/tel/{wrapper}" in names, f"tel/{wrapper} is in the package")
        for source in sorted((REPO / "bindings/cpp/include/tel").glob("*.hpp")):
            packaged = f"build/native/include/tel/{source.name}"
            t.check(packaged in names and read(packaged) == source.read_bytes(),
                    f"{packaged} is the repository's {source.name}")

        # Only the slots NuGet knows, each with the right file for its machine.
        for name in names:
            if name.startswith("runtimes/"):
                if t.check(name in SLOTS, f"{name} is a known runtime slot"):
                    t.check(machine_of(read(name)) == SLOTS[name], f"{name} is {SLOTS[name][0]} for machine {SLOTS[name][1]:#x}")
        for name in names:
            if name.startswith("runtimes/linux"):
                musl = b"\0libc.so\0" in read(name) or b"\0libc.musl-" in read(name)
                glibc = b"\0libc.so.6\0" in read(name)
                want = "musl" in name
                t.check((musl, glibc) == (want, not want), f"{name} needs {'musl' if want else 'glibc'}'s C library")
        for rid in expected_rids:
            t.check(any(n.startswith(f"runtimes/{rid}/native/") for n in names), f"runtimes/{rid} is in the package")
        for rid in ("win-x64", "win-arm64"):
            dll = f"runtimes/{rid}/native/tel.dll" in names
            lib = f"build/native/lib/{rid}/tel.lib" in names
            t.check(dll == lib, f"{rid}: tel.dll and its import library come together")
        allowed = re.compile(
            r"(_rels/\.rels|\[Content_Types\]\.xml|OneCollector\.Tel\.Native\.nuspec|package/services/.*|LICENSE"
            r"|runtimes/[^/]+/native/[^/]+|build/native/include/.*|build/native/lib/[^/]+/tel\.lib"
            r"|build/native/OneCollector\.Tel\.Native\.targets)")
        for name in names:
            t.check(allowed.fullmatch(name) is not None, f"{name} belongs in the layout")

        # --- MSBuild targets
        targets_name = f"build/native/{PACKAGE_ID}.targets"
        if t.check(targets_name in names, f"{targets_name} is in the package (named after the id)"):
            project = ET.fromstring(read(targets_name))
            t.check(project.tag == f"{MSBUILD_NS}Project", "the targets file is an MSBuild project")
            includes = [e.text for e in project.iter(f"{MSBUILD_NS}AdditionalIncludeDirectories")]
            props_text = {e.tag.replace(MSBUILD_NS, ""): e.text for e in project.iter() if e.text}
            t.check(props_text.get("TelNativeIncludeDir") == r"$(MSBuildThisFileDirectory)include" + "\\",
                    "the include folder is build/native/include")
            t.check(any(i and i.startswith("$(TelNativeIncludeDir)") for i in includes),
                    "ClCompile gets the include folder")
            deps = [e.text for e in project.iter(f"{MSBUILD_NS}AdditionalDependencies")]
            t.check(any(d and d.startswith("$(TelNativeImportLib)") for d in deps), "Link gets the import library")
            raw = read(targets_name).decode()
            t.check(r"lib\$(TelNativeRid)" in raw and "tel.lib" in raw and "tel.dll.lib" in raw,
                    "the import library is looked up as lib/<rid>/tel.lib or tel.dll.lib")
            t.check(r"runtimes\$(TelNativeRid)\native\tel.dll" in raw, "tel.dll is copied from its runtime slot")
            t.check("'$(Platform)' == 'x64'\">win-x64" in raw, "x64 projects use win-x64")

    print(f"nuget layout: {nupkg.name}: {len(names)} entries")
    print(f"{t.passed} passed, {t.failed} failed")
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2:]))
