#!/bin/bash
# Build and run every test: unit tests (cmocka) and integration tests (a real
# mosquitto, the real daemon, a real SQLite file) under AddressSanitizer +
# UndefinedBehaviorSanitizer, a short run of each fuzzer, the suites again in
# a normal build, and the crash and fault drills.
#
# Usage: scripts/test.sh [--quick]   (--quick: the normal build's suites only)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

run_suite() {   # build dir, extra cmake args...
	local dir=$1; shift
	echo "=== build ($dir) ==="
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DTELECARE_TESTS=ON "$@" >/dev/null
	cmake --build "$dir" -j"$(nproc)"
	echo "=== unit tests ($dir) ==="
	ctest --test-dir "$dir" --output-on-failure
	echo "=== integration tests ($dir) ==="
	# Debian's python3 sees Debian's pytest and paho-mqtt; another python3 on PATH may not.
	TELECARE_BUILD="$PWD/$dir" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
	echo "=== browser tests: the console in headless Chromium ($dir) ==="
	TELECARE_BUILD="$PWD/$dir" /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/browser
}

if [ "${1:-}" != --quick ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	run_suite build-asan -DTELECARE_SANITIZE=ON
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi
if [ "${1:-}" != --quick ]; then
	echo "=== fuzzers, ${FUZZ_SECONDS:-15} s each ==="
	tests/fuzz/run.sh "${FUZZ_SECONDS:-15}"
fi

run_suite build

if [ "${1:-}" != --quick ]; then
	# kill -9 rounds, broker SIGKILL, a full disk (mounts a tmpfs: needs root), floods
	echo "=== crash and fault drills (build) ==="
	TELECARE_BUILD="$PWD/build" tests/chaos/run.sh
fi
