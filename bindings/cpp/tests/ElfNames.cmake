# tel_elf_dynamic(<readelf> <file> <SONAME|NEEDED> <out-var>): the library names of that kind
# in the dynamic section of an ELF file, as `readelf -d` prints them.
function(tel_elf_dynamic readelf file kind out_var)
    execute_process(COMMAND "${readelf}" -d "${file}"
        OUTPUT_VARIABLE dynamic ERROR_VARIABLE errors RESULT_VARIABLE status)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "readelf -d ${file} failed: ${errors}")
    endif()
    string(REGEX MATCHALL "\\(${kind}\\)[^\n]*\\[[^]\n]*\\]" lines "${dynamic}")
    set(names)
    foreach(line IN LISTS lines)
        string(REGEX REPLACE ".*\\[([^]]*)\\]$" "\\1" name "${line}")
        list(APPEND names "${name}")
    endforeach()
    set(${out_var} "${names}" PARENT_SCOPE)
endfunction()
