# cmake -DPKG_CONFIG=... -DPCDIR=... -DVERSION=... -DSOURCE=... -DBINARY=... -DC_COMPILER=...
#       -DREADELF=... -DSONAME=... -P PkgConfigConsumer.cmake
#
# Builds a C program as a project without CMake would, from the installed tel.pc alone:
#   cc -std=c11 SOURCE -o BINARY $(pkg-config --cflags --libs tel)
# with pkg-config looking in PCDIR only. Checks the file (pkg-config --validate), the version
# it gives (the crate's, VERSION), and that the program records SONAME as its needed library.
foreach(var PKG_CONFIG PCDIR VERSION SOURCE BINARY C_COMPILER READELF SONAME)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "PkgConfigConsumer.cmake: ${var} is required")
    endif()
endforeach()
include("${CMAKE_CURRENT_LIST_DIR}/ElfNames.cmake")

# Only the installed file: nothing of the machine's own pkg-config folders.
set(ENV{PKG_CONFIG_LIBDIR} "${PCDIR}")
unset(ENV{PKG_CONFIG_PATH})
unset(ENV{PKG_CONFIG_SYSROOT_DIR})

function(pkg_config out_var)
    execute_process(COMMAND "${PKG_CONFIG}" ${ARGN} tel
        OUTPUT_VARIABLE out ERROR_VARIABLE errors RESULT_VARIABLE status
        OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "pkg-config ${ARGN} tel (in ${PCDIR}) failed: ${errors}")
    endif()
    set(${out_var} "${out}" PARENT_SCOPE)
endfunction()

if(NOT EXISTS "${PCDIR}/tel.pc")
    message(FATAL_ERROR "the package installed no ${PCDIR}/tel.pc")
endif()
pkg_config(ignored --validate)
pkg_config(modversion --modversion)
if(NOT modversion STREQUAL VERSION)
    message(FATAL_ERROR "tel.pc gives version '${modversion}', the crate is ${VERSION}")
endif()
pkg_config(cflags --cflags)
pkg_config(libs --libs)
message(STATUS "pkg-config --cflags --libs tel: ${cflags} ${libs}")
separate_arguments(cflags UNIX_COMMAND "${cflags}")
separate_arguments(libs UNIX_COMMAND "${libs}")

get_filename_component(out_dir "${BINARY}" DIRECTORY)
file(MAKE_DIRECTORY "${out_dir}")
file(REMOVE "${BINARY}")
execute_process(COMMAND "${C_COMPILER}" -std=c11 -Wall -Wextra -Werror ${cflags} "${SOURCE}"
        -o "${BINARY}" ${libs}
    RESULT_VARIABLE status)
if(NOT status EQUAL 0)
    message(FATAL_ERROR "compiling ${SOURCE} with the flags of tel.pc failed")
endif()

tel_elf_dynamic("${READELF}" "${BINARY}" NEEDED needed)
list(FILTER needed INCLUDE REGEX "^libtel")
if(NOT needed STREQUAL SONAME)
    message(FATAL_ERROR "${BINARY} needs '${needed}', not ${SONAME} alone")
endif()
message(STATUS "${BINARY} built through tel.pc ${modversion}; it needs ${needed}")
