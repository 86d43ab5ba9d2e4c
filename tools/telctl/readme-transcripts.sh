#!/usr/bin/env bash
# Writes the transcripts of tools/telctl/README.md: runs the commands they show, in one session
# against one `telctl serve`, and puts what they print into the README (see the header of
# tools/telctl/tests/readme.rs). `cargo test -p telctl --test readme` checks them.
set -euo pipefail
cd "$(dirname "$0")/../.."
TELCTL_README_WRITE=1 cargo test --locked -p telctl --test readme -- --exact \
  the_readme_transcripts_are_what_the_commands_print --nocapture
git --no-pager diff --stat -- tools/telctl/README.md || true
