#!/bin/sh
# Crash and fault drills (issue 6): kill -9 rounds, broker SIGKILL, a full
# database filesystem (needs root: it mounts a tmpfs), a flood from one
# device. Each drill prints what it measured; CHAOS_OUT=FILE also gets a JSON
# summary of every drill.
#
#   tests/chaos/run.sh [pytest args]          # from anywhere
#   TELECARE_BUILD=/path/to/build CHAOS_SCALE=10 tests/chaos/run.sh
#
# TELECARE_BUILD  where telecared and telecarectl are (default <repo>/build)
# CHAOS_SCALE     1 (default, a few minutes) ... 10 (a long run)
# CHAOS_SEED      fixes the random moments of the kill drills
# CHAOS_OUT       file for the JSON summary
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${TELECARE_BUILD:=$repo/build}"
export TELECARE_BUILD
cd "$repo"
exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/chaos "$@"
