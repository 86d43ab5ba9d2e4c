#!/usr/bin/env python3
"""The Windows half of the NuGet package: opens a built OneCollector.Tel.Native nupkg and checks
that it carries the tel.dll and tel.lib that packaging/windows/build.sh made (byte for byte), for
x64 and, when given, Arm64, that each tel.dll's export table is exactly the functions of
include/tel.h for its machine, and that the package's MSBuild .targets, evaluated as MSBuild
would for an x64 and an ARM64 project, link that import library and copy that DLL (the paths it
computes name files that are in the package); and for projects that name a RuntimeIdentifier or
none (on a Linux machine), that it copies the library of that platform.

    python3 packaging/windows/tests/check_nuget.py NUPKG TEL_DLL TEL_LIB [ARM64_DLL ARM64_LIB]
"""

import re
import struct
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PACKAGE_ID = "OneCollector.Tel.Native"
MSBUILD_NS = "{http://schemas.microsoft.com/developer/msbuild/2003}"


def header_functions():
    text = (REPO / "include" / "tel.h").read_text(encoding="utf-8")
    return sorted(
        set(re.findall(r"^(?!typedef)[A-Za-z_][A-Za-z0-9_ ]*[ *](tel_[a-z_]+)\(", text, re.MULTILINE))
    )


def pe_exports(data, want_machine=0x8664):
    """The names in a PE32+ file's export table, read from the bytes (no tool needed)."""
    pe = struct.unpack_from("<I", data, 0x3C)[0]
    assert data[pe : pe + 4] == b"PE\0\0", "not a PE file"
    machine, sections, _, _, _, optional_size, _ = struct.unpack_from("<HHIIIHH", data, pe + 4)
    assert machine == want_machine, f"machine {machine:#x} is not {want_machine:#x}"
    optional = pe + 24
    assert struct.unpack_from("<H", data, optional)[0] == 0x20B, "not PE32+"
    export_rva, _ = struct.unpack_from("<II", data, optional + 112)
    table = optional + optional_size
    spans = [struct.unpack_from("<IIII", data, table + 40 * i + 8) for i in range(sections)]

    def offset(rva):
        for vsize, vaddr, rawsize, rawptr in spans:
            if vaddr <= rva < vaddr + max(vsize, rawsize):
                return rva - vaddr + rawptr
        raise ValueError(f"rva {rva:#x} is in no section")

    if export_rva == 0:
        return []
    d = offset(export_rva)
    count, names_rva = struct.unpack_from("<I", data, d + 24)[0], struct.unpack_from("<I", data, d + 32)[0]
    names = []
    for i in range(count):
        at = offset(struct.unpack_from("<I", data, offset(names_rva) + 4 * i)[0])
        names.append(data[at : data.index(b"\0", at)].decode("ascii"))
    return sorted(names)


def evaluate_targets(xml_text, platform, this_dir, runtime_identifier="", host=("Windows", "X64")):
    """The properties of the .targets file as MSBuild evaluates them for `platform` (and a
    RuntimeIdentifier) on a `host` (operating system, architecture): the property groups in
    order, each property's Condition honoured. Only the forms a property file of this kind uses
    are understood: '...' == '...', != and Exists(), joined with `and` / `or`, in parentheses;
    the property functions $([MSBuild]::IsOSPlatform('...')),
    $([System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture) and
    $(Property.StartsWith('...'))."""
    props = {"Platform": platform, "MSBuildThisFileDirectory": this_dir, "RuntimeIdentifier": runtime_identifier}

    def expand(text):
        text = re.sub(r"\$\(\[MSBuild\]::IsOSPlatform\('(\w+)'\)\)",
                      lambda m: str(m.group(1).lower() == host[0].lower()), text or "")
        text = text.replace("$([System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture)", host[1])
        text = re.sub(r"\$\((\w+)\.StartsWith\('([^']*)'\)\)",
                      lambda m: str(props.get(m.group(1), "").startswith(m.group(2))), text)
        return re.sub(r"\$\((\w+)\)", lambda m: props.get(m.group(1), ""), text)

    def condition(text):
        if text is None:
            return True
        expr = expand(text)
        expr = re.sub(r"Exists\('([^']*)'\)", lambda m: repr(exists(m.group(1))), expr)
        expr = re.sub(r"'([^']*)'", lambda m: repr(m.group(1)), expr)
        if not re.fullmatch(r"[\s\w'\"\\/.:()=!$-]*", expr):
            raise ValueError(f"condition not understood: {text}")
        return bool(eval(expr, {"__builtins__": {}}, {"True": True, "False": False}))

    root = ET.fromstring(xml_text)
    for group in root.iter(f"{MSBUILD_NS}PropertyGroup"):
        if not condition(group.get("Condition")):
            continue
        for prop in group:
            if condition(prop.get("Condition")):
                props[prop.tag.replace(MSBUILD_NS, "")] = expand(prop.text)
    return props, root


PACKAGE_FILES = set()


def exists(windows_path):
    """Whether a path the .targets computes (rooted at the package) names a packaged file."""
    return package_path(windows_path) in PACKAGE_FILES


def package_path(windows_path):
    """A path computed by the .targets (from build\\native\\) as a name inside the package."""
    parts = []
    for part in re.split(r"[\\/]+", windows_path):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def main(nupkg, dll_path, lib_path, arm64_dll_path=None, arm64_lib_path=None):
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: {what}", file=sys.stderr)
        return ok

    functions = header_functions()
    # abi.md: 8 functions of 1.0, 10 more of 1.1 and 10 more of 1.2.
    check(len(functions) == 28, f"include/tel.h declares the 28 functions of abi.md ({functions})")
    built_dll = Path(dll_path).read_bytes()
    built_lib = Path(lib_path).read_bytes()
    check(pe_exports(built_dll) == functions, "the built tel.dll exports exactly the header's functions")

    with zipfile.ZipFile(nupkg) as z:
        names = set(z.namelist())
        PACKAGE_FILES.update(names)
        dll = "runtimes/win-x64/native/tel.dll"
        lib = "build/native/lib/win-x64/tel.lib"
        so = "runtimes/linux-x64/native/libtel.so"
        check(so in names, f"{so}: the Linux library is in the package too")
        if check(dll in names, f"{dll} is in the package"):
            check(z.read(dll) == built_dll, f"{dll} is the tel.dll build.sh made")
            check(pe_exports(z.read(dll)) == functions, f"{dll} exports exactly the header's functions")
        if check(lib in names, f"{lib} is in the package"):
            check(z.read(lib) == built_lib, f"{lib} is the tel.lib build.sh made (MSVC import library)")
            check(z.read(lib)[:8] == b"!<arch>\n", f"{lib} is an archive (import library)")

        targets_name = f"build/native/{PACKAGE_ID}.targets"
        if check(targets_name in names, f"{targets_name} is in the package"):
            text = z.read(targets_name).decode("utf-8")
            props, root = evaluate_targets(text, "x64", "build\\native\\")
            check(props.get("TelNativeRid") == "win-x64", "an x64 project resolves to win-x64")
            check(package_path(props.get("TelNativeDll", "")) == dll,
                  f"the .targets copies {dll} (it computes {props.get('TelNativeDll')})")
            check(package_path(props.get("TelNativeImportLib", "")) == lib,
                  f"the .targets links {lib} (it computes {props.get('TelNativeImportLib')})")
            include = package_path(props.get("TelNativeIncludeDir", ""))
            check(f"{include}/tel.h" in names, f"the .targets' include folder holds tel.h ({include})")
            links = [e.text for e in root.iter(f"{MSBUILD_NS}AdditionalDependencies")]
            check(any(l and "$(TelNativeImportLib)" in l for l in links),
                  "Link.AdditionalDependencies names the import library")
            copies = [c.get("SourceFiles") for c in root.iter(f"{MSBUILD_NS}Copy")]
            check("$(TelNativeDll)" in copies, "a Copy task puts tel.dll next to the program")
            check("$(TelNativeSharedObject)" in copies, "a Copy task puts libtel.so next to the program")

            # Projects that are not Visual C++ ones: by RuntimeIdentifier, else by the machine.
            for rid, host in (("linux-x64", ("Linux", "X64")), ("linux-arm64", ("Linux", "X64")),
                              ("linux-musl-x64", ("Linux", "X64")), ("", ("Linux", "Arm64")),
                              ("", ("Linux", "X64")), ("win-arm64", ("Windows", "X64")),
                              ("", ("Windows", "Arm64"))):
                props, _ = evaluate_targets(text, "", "build\\native\\", rid, host)
                want = rid or f"{host[0].lower().replace('windows', 'win')}-{host[1].lower()}"
                check(props.get("TelNativeRid") == want,
                      f"RuntimeIdentifier {rid!r} on {host} resolves to {want} (got {props.get('TelNativeRid')})")
                library = props.get("TelNativeDll" if want.startswith("win-") else "TelNativeSharedObject", "")
                check(package_path(library) in names, f"{want}: the .targets copies {package_path(library)}, which is in the package")

        if arm64_dll_path:
            built = Path(arm64_dll_path).read_bytes()
            dll = "runtimes/win-arm64/native/tel.dll"
            lib = "build/native/lib/win-arm64/tel.lib"
            check(pe_exports(built, 0xAA64) == functions, "the built Arm64 tel.dll exports exactly the header's functions")
            if check(dll in names, f"{dll} is in the package"):
                check(z.read(dll) == built, f"{dll} is the Arm64 tel.dll build.sh made")
            if check(lib in names, f"{lib} is in the package"):
                check(z.read(lib) == Path(arm64_lib_path).read_bytes(), f"{lib} is the Arm64 tel.lib build.sh made")
            if targets_name in names:
                props, _ = evaluate_targets(z.read(targets_name).decode("utf-8"), "ARM64", "build\\native\\")
                check(props.get("TelNativeRid") == "win-arm64", "an ARM64 project resolves to win-arm64")
                check(package_path(props.get("TelNativeDll", "")) == dll, f"the .targets copies {dll} for ARM64")
                check(package_path(props.get("TelNativeImportLib", "")) == lib, f"the .targets links {lib} for ARM64")

    print(f"nuget (windows): {Path(nupkg).name}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) not in (4, 6):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
