# Sourced by the scripts that link C programs against a libtel.so cargo built. On Linux the
# library has a SONAME (libtel.so.<abi-major>, see build.rs), which a program linked against it
# records and the loader then looks for; cargo leaves only libtel.so. tel_soname_links makes a
# folder holding both names, links to cargo's file, to link against (-L) and run from (rpath):
#
#   tel_soname_links <folder of cargo's libtel.so> <new folder>
tel_soname_links() {
  local from=$1 to=$2 soname
  [ -f "$from/libtel.so" ] || { echo "soname-links.sh: no $from/libtel.so" >&2; return 1; }
  soname=$(readelf -d "$from/libtel.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
  mkdir -p "$to"
  ln -sfn "$(cd "$from" && pwd)/libtel.so" "$to/libtel.so"
  if [ -n "$soname" ] && [ "$soname" != libtel.so ]; then
    ln -sfn "$(cd "$from" && pwd)/libtel.so" "$to/$soname"
  fi
}
