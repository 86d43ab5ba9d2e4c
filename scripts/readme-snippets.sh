#!/usr/bin/env bash
# The README's code snippets, compiled and run exactly as written, so that they cannot drift:
# every ```c, ```cpp, ```python and ```rust block of README.md, and the version of its ```toml
# dependency line.
#
# The snippets name no endpoint: they send to the default collector,
# https://mobile.events.data.microsoft.com/OneCollector/1.0/. So each one runs in its own network
# and mount namespaces (`unshare --net --mount`, as root, as CI runs), where only loopback is up
# and /etc/hosts sends that name to 127.0.0.1, where `telctl serve --tls` answers on port 443
# with a certificate for the name, signed by the CA that SSL_CERT_FILE names. Nothing leaves
# the machine. Each program must exit 0 with nothing on stderr, and the emulator must have
# accepted at least one event from it, each named in the snippet. Then each program is built
# again with its placeholder key replaced by a malformed one (the old README's
# `<tenant>-<rest-of-key>`): it must exit non-zero and print the library's reason.
#
# Needs cc, c++ (C++17), python3, rustc (the toolchain cargo uses), unshare and ip.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/target-dir.sh
. scripts/lib/target-dir.sh
# shellcheck source=lib/soname-links.sh
. scripts/lib/soname-links.sh
work=$target/readme-snippets
host=mobile.events.data.microsoft.com
malformed='<tenant>-<rest-of-key>'
say() { printf '==> %s\n' "$*"; }
fail() { printf 'readme-snippets.sh: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" != --inside ]; then
  for tool in cc c++ python3 rustc unshare ip; do
    command -v "$tool" >/dev/null || fail "$tool is required"
  done
  say "build libtel (debug) and telctl"
  cargo build --locked -p onecollector-tel -p telctl
  rm -rf "$work"
  mkdir -p "$work"

  say "extract the snippets of README.md"
  python3 - README.md "$work" <<'EOF'
import re, sys
readme, work = sys.argv[1], sys.argv[2]
kinds = {"c": "c", "cpp": "cpp", "python": "py", "rust": "rs", "toml": "toml"}
blocks, lang, lines = [], None, []
for line in open(readme, encoding="utf-8"):
    if lang is None:
        m = re.match(r"^```(\w+)\s*$", line)
        if m and m.group(1) in kinds:
            lang, lines = m.group(1), []
    elif line.startswith("```"):
        blocks.append((lang, "".join(lines)))
        lang = None
    else:
        lines.append(line)
if lang is not None:
    sys.exit(f"{readme}: a ```{lang} block is not closed")
for n, (lang, text) in enumerate(blocks, 1):
    with open(f"{work}/snippet{n}.{kinds[lang]}", "w", encoding="utf-8") as f:
        f.write(text)
print(" ".join(f"snippet{n}.{kinds[lang]}" for n, (lang, _) in enumerate(blocks, 1)))
EOF
  for lang in c cpp py rs toml; do
    compgen -G "$work/*.$lang" >/dev/null || fail "README.md has no \`\`\`$lang snippet"
  done

  # The dependency line names the crate's version (major.minor, or major from 1.0 on).
  version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
  case $version in 0.*) want=${version%.*} ;; *) want=${version%%.*} ;; esac
  for toml in "$work"/*.toml; do
    grep -qx "onecollector-tel = \"$want\"" "$toml" ||
      fail "README.md's dependency line is not onecollector-tel = \"$want\" (the crate is $version): $(cat "$toml")"
  done

  lib=$target/debug
  # libtel.so and its SONAME (libtel.so.1), links to the debug build, for -ltel and the rpath.
  tel_soname_links "$lib" "$work/lib"
  cflags=(-I"$PWD/include" -L"$work/lib" -ltel -Wl,-rpath,"$work/lib")
  build() { # build SOURCE OUTPUT
    case $1 in
      *.c) cc -std=c11 -Wall -Wextra -Werror -o "$2" "$1" "${cflags[@]}" ;;
      *.cpp) c++ -std=c++17 -Wall -Wextra -Werror -I"$PWD/bindings/cpp/include" -o "$2" "$1" "${cflags[@]}" -lpthread ;;
      *.rs) rustc --edition 2021 -D warnings -L dependency="$lib/deps" --extern tel="$lib/libtel.rlib" -o "$2" "$1" ;;
      *.py) cp "$1" "$2" ;;
    esac
  }
  for src in "$work"/*.c "$work"/*.cpp "$work"/*.rs "$work"/*.py; do
    name=$(basename "$src")
    say "compile $name"
    grep -q 'TENANT_TOKEN-[A-Z-]*' "$src" || fail "$name has no placeholder key (..._TENANT_TOKEN-...)"
    build "$src" "$src.run" || fail "$name does not compile as written"
    sed -E "s/[A-Z_]*TENANT_TOKEN-[A-Z-]*/$malformed/" "$src" >"$work/bad-$name"
    build "$work/bad-$name" "$work/bad-$name.run" || fail "bad-$name does not compile"
  done
  say "run them in a network namespace where $host is the emulator"
  exec unshare --net --mount -- bash "$0" --inside
fi

# Inside the namespaces.
ip link set lo up
printf '127.0.0.1 localhost %s\n::1 localhost\n' "$host" >"$work/hosts"
mount --bind "$work/hosts" /etc/hosts
unset TEL_DISABLE DO_NOT_TRACK TEL_LOG TEL_IKEY MYTOOL_TELEMETRY_ENDPOINT SSL_CERT_DIR
export SSL_CERT_FILE=$work/ca.pem TEL_LIBRARY=$target/debug/libtel.so PYTHONPATH=$PWD/bindings/python/src

record=$work/accepted.ndjson
: >"$record"
mkfifo "$work/serve.fifo"
"$target/debug/telctl" serve --port 443 --tls --tls-name "$host" --ca-file "$SSL_CERT_FILE" \
  --record "$record" --quiet --exit-on-stdin-eof <"$work/serve.fifo" >"$work/serve.out" 2>&1 &
serve_pid=$!
exec 7>"$work/serve.fifo" # held open: the emulator lives as long as this script
trap 'exec 7>&-; wait "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q '^ca file: ' "$work/serve.out" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^ca file: ' "$work/serve.out" || fail "telctl serve did not start: $(cat "$work/serve.out")"

run() { # run PROGRAM CACHE_DIR [ENV...]: exit status in $code, stderr in $err
  local program=$1 cache=$2
  shift 2
  mkdir -p "$cache"
  code=0
  case $program in
    *.py.run) env TEL_CACHE_DIR="$cache" "$@" timeout 120 python3 "$program" >"$work/out" 2>"$work/err" || code=$? ;;
    *) env TEL_CACHE_DIR="$cache" "$@" timeout 120 "$program" >"$work/out" 2>"$work/err" || code=$? ;;
  esac
  err=$(cat "$work/err")
}

# check_accepted SNIPPET BEFORE: the lines of the record after BEFORE came from SNIPPET.
check_accepted() {
  local src=$1 before=$2 names name
  names=$(tail -n +"$((before + 1))" "$record" | python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["name"])')
  [ -n "$names" ] || fail "$(basename "$src"): the collector accepted no event"
  for name in $names; do
    grep -qF "\"$name\"" "$src" || fail "$(basename "$src"): the collector accepted $name, which it does not log"
  done
  echo "   accepted: $(echo "$names" | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}')"
}

for program in "$work"/snippet*.run; do
  src=${program%.run}
  name=$(basename "$src")
  say "$name, as written"
  before=$(wc -l <"$record")
  run "$program" "$work/cache-$name"
  [ "$code" -eq 0 ] || fail "$name exited with $code: $err"
  [ -z "$err" ] || fail "$name printed on stderr: $err"
  check_accepted "$src" "$before"
  if [ "${name##*.}" = rs ] && grep -q MYTOOL_TELEMETRY_ENDPOINT "$src"; then
    say "$name, pointed at a collector by MYTOOL_TELEMETRY_ENDPOINT, as its comment says"
    before=$(wc -l <"$record")
    run "$program" "$work/cache-$name-env" MYTOOL_TELEMETRY_ENDPOINT=https://127.0.0.1/OneCollector/1.0/
    [ "$code" -eq 0 ] || fail "$name exited with $code: $err"
    check_accepted "$src" "$before"
  fi
  say "$name with the malformed key $malformed"
  before=$(wc -l <"$record")
  run "$work/bad-$name.run" "$work/cache-bad-$name"
  [ "$code" -ne 0 ] || fail "bad-$name exited with 0"
  case $err in
    *"telemetry is off: "*ikey*) echo "   printed: $err" ;;
    *) fail "bad-$name did not print the reason (exit $code): $err" ;;
  esac
  [ "$(wc -l <"$record")" -eq "$before" ] || fail "bad-$name sent events"
done
say "every snippet of README.md works as written"
