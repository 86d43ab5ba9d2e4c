# cmake -DREADELF=... -DLIBDIR=... -DREAL_NAME=... -DSONAME=... -DCONSUMER=... -P CheckSoname.cmake
#
# The Linux install layout of the shared library: LIBDIR holds the file REAL_NAME
# (libtel.so.<version>), whose SONAME is SONAME (libtel.so.<abi-major>); SONAME is a link to it,
# and libtel.so a link to SONAME. CONSUMER, a program linked through the CMake package, records
# SONAME, and no other name of the library, as a needed library.
foreach(var READELF LIBDIR REAL_NAME SONAME CONSUMER)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "CheckSoname.cmake: ${var} is required")
    endif()
endforeach()
include("${CMAKE_CURRENT_LIST_DIR}/ElfNames.cmake")

set(file "${LIBDIR}/${REAL_NAME}")
if(NOT EXISTS "${file}" OR IS_SYMLINK "${file}")
    message(FATAL_ERROR "${file} is not a file")
endif()
tel_elf_dynamic("${READELF}" "${file}" SONAME soname)
if(NOT soname STREQUAL SONAME)
    message(FATAL_ERROR "the SONAME of ${file} is '${soname}', not ${SONAME}")
endif()

function(check_link link expected)
    if(NOT IS_SYMLINK "${LIBDIR}/${link}")
        message(FATAL_ERROR "${LIBDIR}/${link} is not a symbolic link")
    endif()
    file(READ_SYMLINK "${LIBDIR}/${link}" points_to)
    if(NOT points_to STREQUAL expected)
        message(FATAL_ERROR "${LIBDIR}/${link} points to '${points_to}', not ${expected}")
    endif()
endfunction()
check_link("${SONAME}" "${REAL_NAME}")
check_link("libtel.so" "${SONAME}")

tel_elf_dynamic("${READELF}" "${CONSUMER}" NEEDED needed)
list(FILTER needed INCLUDE REGEX "^libtel")
if(NOT needed STREQUAL SONAME)
    message(FATAL_ERROR "${CONSUMER} needs '${needed}', not ${SONAME} alone")
endif()
message(STATUS "${REAL_NAME}: SONAME ${soname}; ${SONAME} -> ${REAL_NAME}; libtel.so -> ${SONAME}; "
    "a consumer needs ${needed}")
