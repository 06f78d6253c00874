#!/bin/bash
# Build the libFuzzer harnesses with clang and run each for a while on a copy
# of its seed corpus. Fails when a fuzzer finds a crash, a leak, undefined
# behaviour or a broken invariant; the reproducer is left in the artifacts dir.
#
# Usage: tests/fuzz/run.sh [SECONDS] [FUZZER...]
#   SECONDS   per fuzzer (default 20, or $FUZZ_SECONDS)
#   FUZZER    fuzz_event, fuzz_config, fuzz_time, fuzz_source, fuzz_dc09, fuzz_csv (default: all)
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_WORK_DIR (default a
# temporary directory, kept when something is found), FUZZ_JOBS,
# FUZZ_KEEP_GOING=1 (run in libFuzzer's fork mode and go on after a crash, to
# collect every distinct one in the time given; the run still fails).
set -euo pipefail
cd "$(dirname "$0")/../.."

secs=${1:-${FUZZ_SECONDS:-20}}
[ $# -gt 0 ] && shift
fuzzers=("$@")
[ ${#fuzzers[@]} -eq 0 ] && fuzzers=(fuzz_event fuzz_config fuzz_time fuzz_source fuzz_dc09 fuzz_csv)
build=${FUZZ_BUILD_DIR:-build-fuzz}
work=${FUZZ_WORK_DIR:-$(mktemp -d /tmp/telecare-fuzz.XXXXXX)}
mkdir -p "$work"

echo "=== build ($build) ==="
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	-DTELECARE_FUZZ=ON -DTELECARE_TESTS=OFF >/dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-$(nproc)}" --target "${fuzzers[@]}"

failed=()
for f in "${fuzzers[@]}"; do
	bin=$build/tests/fuzz/$f
	corpus=$work/$f/corpus
	artifacts=$work/$f/artifacts/
	rm -rf "$corpus" "$artifacts"
	mkdir -p "$corpus" "$artifacts"
	cp tests/fuzz/corpus/"$f"/* "$corpus"/
	extra=()
	[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
	[ -f tests/fuzz/"$f".dict ] && extra+=(-dict=tests/fuzz/"$f".dict)
	echo "=== $f: ${secs}s ==="
	if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1 \
	   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	   "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
	          -print_final_stats=1 -artifact_prefix="$artifacts" "${extra[@]}" "$corpus" \
	          >"$work/$f/log" 2>&1 && [ -z "$(ls -A "$artifacts")" ]; then
		grep -E '^stat::number_of_executed_units|^Done ' "$work/$f/log" | tail -2 || true
	else
		echo "!!! $f failed; log $work/$f/log, reproducer(s):"
		ls -1 "$artifacts" | sed "s|^|    $artifacts|"
		tail -40 "$work/$f/log"
		failed+=("$f")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]} (work dir $work kept)"
	exit 1
fi
[ -z "${FUZZ_WORK_DIR:-}" ] && rm -rf "$work"
echo "all fuzzers ran ${secs}s without finding anything"
