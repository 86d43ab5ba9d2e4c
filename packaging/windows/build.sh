#!/usr/bin/env bash
# Cross-builds tel.dll for 64-bit Windows (x86_64-pc-windows-gnu) on Linux, makes its import
# libraries and checks its export table against include/tel.h:
#
#   bash packaging/windows/build.sh
#
# Needs: rustup target add x86_64-pc-windows-gnu; Debian's gcc-mingw-w64-x86-64 (the linker)
# and binutils-mingw-w64-x86-64 (objdump); llvm-dlltool (Debian's llvm) for tel.lib, else
# mingw's dlltool. Builds with cargo's `dist` profile (the one for what ships) and leaves in
# <target>/x86_64-pc-windows-gnu/dist/, where packaging/nuget/pack.py looks for them:
#
#   tel.dll        the library; imports system DLLs only (no mingw runtime DLL to ship)
#   libtel.dll.a   its import library for mingw (GNU ld), made by cargo
#   tel.lib        its import library for MSVC's link.exe and lld-link, made from tel.def
#   tel.def        the exports: exactly the functions include/tel.h declares
#
# <target> is $CARGO_TARGET_DIR, else <repo>/target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"
triple=x86_64-pc-windows-gnu
out=$target/$triple/dist

fail() { echo "build.sh: $*" >&2; exit 1; }

# The mingw toolchain by its full name, whatever the distribution's default linker setting.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}
export CC_x86_64_pc_windows_gnu=${CC_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-gcc}
export AR_x86_64_pc_windows_gnu=${AR_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-ar}

(cd "$repo" && cargo build --profile dist --locked -p onecollector-tel --target "$triple")
[ -f "$out/tel.dll" ] || fail "cargo left no $out/tel.dll"

# The ABI's functions, from the header: `<type> tel_name(...);` at the start of a line.
header_functions() {
    grep -E '^[A-Za-z_][A-Za-z0-9_ ]*[ *]tel_[a-z_]+\(' "$repo/include/tel.h" |
        grep -v '^typedef' | sed -E 's/^.*[ *](tel_[a-z_]+)\(.*$/\1/' | sort
}

# The names in a PE file's export table.
dll_exports() {
    x86_64-w64-mingw32-objdump -p "$1" |
        sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' |
        sed -n -E 's/^[[:space:]]*\[[[:space:]]*[0-9]+\][[:space:]]+([^[:space:]]+)$/\1/p' | sort
}

# The functions an import library provides (each has its __imp_ pointer).
implib_functions() {
    x86_64-w64-mingw32-nm "$1" 2>/dev/null | sed -n -E 's/^.* [IT] __imp_(.+)$/\1/p' | sort -u
}

expected=$(header_functions)
[ -n "$expected" ] || fail "no function declarations found in include/tel.h"

{
    echo "; The exports of tel.dll: the functions of include/tel.h (written by packaging/windows/build.sh)."
    echo "LIBRARY tel.dll"
    echo "EXPORTS"
    sed 's/^/    /' <<<"$expected"
} >"$out/tel.def"

rm -f "$out/tel.lib"
if command -v llvm-dlltool >/dev/null 2>&1; then
    # The short import format of MSVC's own lib.exe.
    llvm-dlltool -m i386:x86-64 -d "$out/tel.def" -D tel.dll -l "$out/tel.lib"
else
    x86_64-w64-mingw32-dlltool --input-def "$out/tel.def" --dllname tel.dll --output-lib "$out/tel.lib"
fi

# --- checks
status=0
check_list() { # what, actual
    if [ "$2" != "$expected" ]; then
        echo "build.sh: $1 differs from include/tel.h:" >&2
        diff <(echo "$expected") <(echo "$2") >&2 || true
        status=1
    fi
}
check_list "the export table of tel.dll" "$(dll_exports "$out/tel.dll")"
check_list "the import library libtel.dll.a" "$(implib_functions "$out/libtel.dll.a")"
check_list "the import library tel.lib" "$(implib_functions "$out/tel.lib")"

x86_64-w64-mingw32-objdump -f "$out/tel.dll" | grep -q 'file format pei-x86-64' ||
    { echo "build.sh: tel.dll is not a PE32+ x86-64 file" >&2; status=1; }
# Only DLLs every Windows has: nothing of the mingw runtime (libgcc_s, libwinpthread) to ship.
imports=$(x86_64-w64-mingw32-objdump -p "$out/tel.dll" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -u)
unexpected=$(grep -viE '^(kernel32|ntdll|advapi32|bcrypt|bcryptprimitives|crypt32|userenv|winhttp|ws2_32|msvcrt|api-ms-win-[a-z0-9-]+)\.dll$' <<<"$imports" || true)
if [ -n "$unexpected" ]; then
    echo "build.sh: tel.dll imports DLLs a Windows machine may lack: $unexpected" >&2
    status=1
fi
[ $status -eq 0 ] || exit 1

count=$(wc -l <<<"$expected")
echo "build.sh: $out/tel.dll exports exactly the $count functions of include/tel.h" \
    "($(tr '\n' ' ' <<<"$expected"| sed 's/ $//'))"
echo "build.sh: import libraries $out/libtel.dll.a (mingw) and $out/tel.lib (MSVC); imports: $(tr '\n' ' ' <<<"$imports")"
