# Sourced by the scripts that link C programs against a libtel.so cargo built. On Linux the
# library has a SONAME (libtel.so.<abi-major>, see build.rs), which a program linked against it
# records and the loader then looks for; cargo leaves only libtel.so. tel_soname_links gives a
# folder both names, to link against (-L) and run from (rpath):
#
#   tel_soname_links <folder of a libtel.so> <folder>
#
# makes <folder>/libtel.so and <folder>/<its SONAME> links to the library; when both folders
# are the same, only the SONAME link is added, beside the file.
tel_soname_links() {
  local from to soname
  [ -f "$1/libtel.so" ] || { echo "soname-links.sh: no $1/libtel.so" >&2; return 1; }
  mkdir -p "$2"
  from=$(cd "$1" && pwd -P)
  to=$(cd "$2" && pwd -P)
  # readelf reads the ELF files of every machine, a cross-built library's too.
  soname=$(readelf -d "$from/libtel.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
  if [ "$from" != "$to" ]; then
    ln -sfn "$from/libtel.so" "$to/libtel.so"
  fi
  if [ -n "$soname" ] && [ "$soname" != libtel.so ]; then
    ln -sfn libtel.so "$to/$soname"
  fi
}
