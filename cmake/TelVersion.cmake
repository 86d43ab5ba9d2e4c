# The crate version is the one version of onecollector-tel: read it from the root Cargo.toml
# (`[workspace.package] version = "..."`) instead of repeating it here.
#
#   tel_read_crate_version(<Cargo.toml> <out-var>)
#
# sets <out-var> to the full version ("0.1.0", "0.2.0-beta.1") and <out-var>_NUMERIC to its
# MAJOR.MINOR.PATCH part, the form CMake's project() and version files accept.
function(tel_read_crate_version cargo_toml out_var)
    if(NOT EXISTS "${cargo_toml}")
        message(FATAL_ERROR "tel: ${cargo_toml} not found; cannot read the crate version")
    endif()
    file(STRINGS "${cargo_toml}" lines)
    set(section "")
    set(version "")
    foreach(line IN LISTS lines)
        if(line MATCHES "^[ \t]*\\[([^]]+)\\]")
            set(section "${CMAKE_MATCH_1}")
        elseif(line MATCHES "^[ \t]*version[ \t]*=[ \t]*\"([^\"]+)\"")
            # The workspace's version wins; a [package] version is the fallback for a crate
            # that does not inherit it.
            if(section STREQUAL "workspace.package")
                set(version "${CMAKE_MATCH_1}")
                break()
            elseif(section STREQUAL "package" AND version STREQUAL "")
                set(version "${CMAKE_MATCH_1}")
            endif()
        endif()
    endforeach()
    if(NOT version MATCHES "^([0-9]+\\.[0-9]+\\.[0-9]+)")
        message(FATAL_ERROR "tel: no usable version in ${cargo_toml} (found \"${version}\")")
    endif()
    set(${out_var} "${version}" PARENT_SCOPE)
    set(${out_var}_NUMERIC "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

# The major level of the C ABI, `abi-major` in the root Cargo.toml's [package.metadata.tel]
# (build.rs reads the same line): the SONAME of the Linux library is libtel.so.<abi-major>.
#
#   tel_read_abi_major(<Cargo.toml> <out-var>)
function(tel_read_abi_major cargo_toml out_var)
    file(STRINGS "${cargo_toml}" lines)
    set(section "")
    set(major "")
    foreach(line IN LISTS lines)
        if(line MATCHES "^[ \t]*\\[([^]]+)\\]")
            set(section "${CMAKE_MATCH_1}")
        elseif(section STREQUAL "package.metadata.tel"
                AND line MATCHES "^[ \t]*abi-major[ \t]*=[ \t]*([0-9]+)")
            set(major "${CMAKE_MATCH_1}")
            break()
        endif()
    endforeach()
    if(major STREQUAL "")
        message(FATAL_ERROR "tel: no `abi-major = <number>` in [package.metadata.tel] of ${cargo_toml}")
    endif()
    set(${out_var} "${major}" PARENT_SCOPE)
endfunction()
