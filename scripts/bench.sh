#!/bin/bash
# The benchmarks (issues 6 and 9): build telecared and the load generator
# with optimisation (RelWithDebInfo, in build-bench/), then run every scenario
# against a real mosquitto on a free 127.0.0.1 port, the real daemon and a
# real SQLite file on disk. Prints a table; writes build-bench/bench-results.json.
#
# Usage: scripts/bench.sh [--quick] [--repeat N] [--out FILE] [--profile] [--only LIST]
#   --quick     one repeat, shorter runs, smaller start-up database (CI): about
#               2 minutes for the first five scenarios, 1.5 for the mass events
#   (default)   three repeats, medians reported; about 9 + 3 x 4 minutes
#   --only mass the five mass-event scenarios (blackout, strangers, restart,
#               burst, flap); any comma-separated list of scenario names
# See docs/PERFORMANCE.md for what is measured and the results.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build

jobs=$(nproc)
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTELECARE_TESTS=OFF \
      -DTELECARE_BENCH=ON --no-warn-unused-cli >/dev/null
cmake --build build-bench -j"$jobs" >/dev/null
if [ ! -x build-bench/tests/bench/tc-loadgen ]; then
	# The top-level project does not build tests/bench: build it on its own.
	cmake -S tests/bench -B build-bench/bench-standalone -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-bench/bench-standalone -j"$jobs" >/dev/null
fi

# Debian's python3 (standard library only); another python3 on PATH may be a separate build.
exec /usr/bin/python3 tests/bench/run.py --build build-bench "$@"
