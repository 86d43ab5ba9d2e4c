#!/usr/bin/env bash
# Cross-builds tel.dll on Linux for 64-bit Windows on x86-64 (x86_64-pc-windows-gnu, linked by
# mingw-w64) and on Arm64 (aarch64-pc-windows-gnullvm, linked by zig through cargo-zigbuild:
# Debian has no Arm64 mingw toolchain), makes their import libraries and checks each DLL's
# machine, export table and imports:
#
#   bash packaging/windows/build.sh [TRIPLE...]     (default: both)
#
# Needs: rustup target add x86_64-pc-windows-gnu aarch64-pc-windows-gnullvm; Debian's
# gcc-mingw-w64-x86-64 (the x86-64 linker) and binutils-mingw-w64-x86-64 (objdump); llvm
# (llvm-dlltool for tel.lib, llvm-readobj and llvm-nm for the Arm64 checks). zig and
# cargo-zigbuild come from PyPI (scripts/lib/zig.sh installs them). Builds with cargo's `dist`
# profile (the one for what ships) and leaves in <target>/<triple>/dist/, where
# packaging/nuget/pack.py and the wheels take them from:
#
#   tel.dll        the library; imports system DLLs only (no mingw or LLVM runtime DLL to ship)
#   libtel.dll.a   its import library for mingw and clang (GNU ld, lld), made by cargo
#   tel.lib        its import library for MSVC's link.exe and lld-link, made from tel.def
#   tel.def        the exports: exactly the functions include/tel.h declares
#
# Wine runs the x86-64 DLL (run-tests.sh); nothing here runs the Arm64 one (see README.md).
# <target> is $CARGO_TARGET_DIR, else <repo>/target.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../scripts/lib/target-dir.sh
. "$here/../../scripts/lib/target-dir.sh"
# shellcheck source=../../scripts/lib/zig.sh
. "$repo/scripts/lib/zig.sh"

fail() { echo "build.sh: $*" >&2; exit 1; }

# The mingw toolchain by its full name, whatever the distribution's default linker setting.
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER:-x86_64-w64-mingw32-gcc}
export CC_x86_64_pc_windows_gnu=${CC_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-gcc}
export AR_x86_64_pc_windows_gnu=${AR_x86_64_pc_windows_gnu:-x86_64-w64-mingw32-ar}

# The ABI's functions, from the header: `<type> tel_name(...);` at the start of a line.
header_functions() {
    grep -E '^[A-Za-z_][A-Za-z0-9_ ]*[ *]tel_[a-z_]+\(' "$repo/include/tel.h" |
        grep -v '^typedef' | sed -E 's/^.*[ *](tel_[a-z_]+)\(.*$/\1/' | sort
}

expected=$(header_functions)
[ -n "$expected" ] || fail "no function declarations found in include/tel.h"

# Per machine: the names in a PE file's export table, its imported DLLs, its file format, and
# the functions an import library provides (each has its __imp_ pointer). mingw's binutils for
# x86-64; LLVM's tools, which read Arm64 COFF, for Arm64.
dll_exports() { # triple dll
    case $1 in
    x86_64-*)
        x86_64-w64-mingw32-objdump -p "$2" |
            sed -n '/^\[Ordinal\/Name Pointer\] Table/,/^$/p' |
            sed -n -E 's/^[[:space:]]*\[[[:space:]]*[0-9]+\][[:space:]]+([^[:space:]]+)$/\1/p' | sort
        ;;
    *) llvm-readobj --coff-exports "$2" | sed -n -E 's/^[[:space:]]*Name: (.+)$/\1/p' | sort ;;
    esac
}
dll_imports() { # triple dll
    case $1 in
    x86_64-*) x86_64-w64-mingw32-objdump -p "$2" | sed -n 's/^[[:space:]]*DLL Name: //p' | sort -u ;;
    *) llvm-readobj --coff-imports "$2" | sed -n -E 's/^[[:space:]]*Name: (.+\.dll)$/\1/Ip' | sort -u ;;
    esac
}
dll_machine() { # triple dll
    case $1 in
    x86_64-*) x86_64-w64-mingw32-objdump -f "$2" | sed -n 's/.*file format //p' ;;
    *) llvm-readobj --file-headers "$2" | sed -n -E 's/^[[:space:]]*Machine: ([A-Z0-9_]+).*/\1/p' ;;
    esac
}
implib_functions() { # triple library
    case $1 in
    x86_64-*) x86_64-w64-mingw32-nm "$2" 2>/dev/null ;;
    *) llvm-nm "$2" 2>/dev/null ;;
    esac | sed -n -E 's/^.* [IT] __imp_(.+)$/\1/p' | sort -u
}

# Builds tel.dll for `triple`, writes tel.def and tel.lib beside it, and checks all three
# files against include/tel.h.
build() { # triple
    local triple=$1 out machine want_machine dlltool_machine imports unexpected count status=0
    out=$target/$triple/dist
    mkdir -p "$out"
    {
        echo "; The exports of tel.dll: the functions of include/tel.h (written by packaging/windows/build.sh)."
        echo "LIBRARY tel.dll"
        echo "EXPORTS"
        sed 's/^/    /' <<<"$expected"
    } >"$out/tel.def.new"
    cmp -s "$out/tel.def.new" "$out/tel.def" 2>/dev/null && rm "$out/tel.def.new" || mv "$out/tel.def.new" "$out/tel.def"
    case $triple in
    x86_64-pc-windows-gnu)
        (cd "$repo" && cargo build --profile dist --locked -p onecollector-tel --target "$triple")
        want_machine=pei-x86-64 dlltool_machine=i386:x86-64
        ;;
    aarch64-pc-windows-gnullvm)
        # cargo-zigbuild drops the export list rustc hands the linker, and without one the
        # linker exports every symbol; tel.def, given as an input, restores exactly the ABI.
        CARGO_TARGET_AARCH64_PC_WINDOWS_GNULLVM_RUSTFLAGS="-C link-arg=$out/tel.def" \
            zigbuild --profile dist --locked -p onecollector-tel --target "$triple"
        want_machine=IMAGE_FILE_MACHINE_ARM64 dlltool_machine=arm64
        ;;
    *) fail "unknown target $triple (x86_64-pc-windows-gnu or aarch64-pc-windows-gnullvm)" ;;
    esac
    [ -f "$out/tel.dll" ] || fail "cargo left no $out/tel.dll"

    rm -f "$out/tel.lib"
    if command -v llvm-dlltool >/dev/null 2>&1; then
        # The short import format of MSVC's own lib.exe.
        llvm-dlltool -m "$dlltool_machine" -d "$out/tel.def" -D tel.dll -l "$out/tel.lib"
    elif [ "$triple" = x86_64-pc-windows-gnu ]; then
        x86_64-w64-mingw32-dlltool --input-def "$out/tel.def" --dllname tel.dll --output-lib "$out/tel.lib"
    else
        fail "tel.lib for $triple needs llvm-dlltool (Debian: apt-get install llvm)"
    fi

    # --- checks
    check_list() { # what, actual
        if [ "$2" != "$expected" ]; then
            echo "build.sh: $triple: $1 differs from include/tel.h:" >&2
            diff <(echo "$expected") <(echo "$2") >&2 || true
            status=1
        fi
    }
    check_list "the export table of tel.dll" "$(dll_exports "$triple" "$out/tel.dll")"
    check_list "the import library libtel.dll.a" "$(implib_functions "$triple" "$out/libtel.dll.a")"
    check_list "the import library tel.lib" "$(implib_functions "$triple" "$out/tel.lib")"
    # The import library's machine too: a tel.lib for the wrong machine links nothing.
    for lib in libtel.dll.a tel.lib; do
        case $triple:$(llvm-objdump -a "$out/$lib" 2>/dev/null | sed -n 's/.*file format //p' | sort -u | tr '\n' ' ') in
        x86_64-*:*x86-64* | aarch64-*:*arm64* | *:) ;; # (no llvm-objdump: not checked)
        *) echo "build.sh: $triple: $lib is for another machine" >&2; status=1 ;;
        esac
    done

    machine=$(dll_machine "$triple" "$out/tel.dll")
    [ "$machine" = "$want_machine" ] ||
        { echo "build.sh: $triple: tel.dll is $machine, not $want_machine" >&2; status=1; }
    # Only DLLs every Windows has: nothing of the mingw or LLVM runtimes (libgcc_s,
    # libwinpthread, libunwind, libc++) to ship.
    imports=$(dll_imports "$triple" "$out/tel.dll")
    [ -n "$imports" ] || { echo "build.sh: $triple: no imports read from tel.dll" >&2; status=1; }
    unexpected=$(grep -viE '^(kernel32|ntdll|advapi32|bcrypt|bcryptprimitives|crypt32|userenv|winhttp|ws2_32|msvcrt|api-ms-win-[a-z0-9-]+)\.dll$' <<<"$imports" || true)
    if [ -n "$unexpected" ]; then
        echo "build.sh: $triple: tel.dll imports DLLs a Windows machine may lack: $unexpected" >&2
        status=1
    fi
    [ $status -eq 0 ] || exit 1

    count=$(wc -l <<<"$expected")
    echo "build.sh: $out/tel.dll ($machine) exports exactly the $count functions of include/tel.h" \
        "($(tr '\n' ' ' <<<"$expected" | sed 's/ $//'))"
    echo "build.sh: import libraries $out/libtel.dll.a (mingw, clang) and $out/tel.lib (MSVC); imports: $(tr '\n' ' ' <<<"$imports")"
}

[ $# -gt 0 ] || set -- x86_64-pc-windows-gnu aarch64-pc-windows-gnullvm
for triple in "$@"; do
    started=$(date +%s)
    build "$triple"
    echo "build.sh: $triple: $(($(date +%s) - started)) s"
done
