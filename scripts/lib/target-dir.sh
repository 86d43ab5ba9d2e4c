# Sourced by the build and test scripts: sets `repo` (the checkout) and `target`, the one cargo
# target folder every build shares: $CARGO_TARGET_DIR (a relative one is taken from the
# checkout), else <repo>/target. Exports CARGO_TARGET_DIR as that absolute path.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
case $target in /*) ;; *) target=$repo/$target ;; esac
export CARGO_TARGET_DIR=$target
