#!/usr/bin/env bash
# Build the libFuzzer targets with clang and run each for a bounded time.
#   tests/fuzz/run.sh [BUILD_DIR]        (default: ./build-fuzz)
#   SVCFS_FUZZ_SECONDS=N                 fuzzing time per target (default 20)
# Each target first runs every input of its seed corpus (tests/fuzz/corpus/T),
# then mutates them for N seconds under ASan+UBSan+LeakSanitizer, new inputs
# going to a scratch corpus (the committed one is never written). Exit 1 if
# any target crashes, leaks, hangs (10 s per input), breaks an invariant, or
# cannot be built or run. A failing input is kept in BUILD_DIR/fuzz-artifacts/;
# the report says how to replay it and how to keep it as a regression seed.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$top/build-fuzz}
secs=${SVCFS_FUZZ_SECONDS:-20}
targets=(sidecar name json_string)

echo "fuzz: building in $dir (clang, -DSVCFS_FUZZ=ON)"
CC=clang cmake -S "$top" -B "$dir" -DSVCFS_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

artifacts=$dir/fuzz-artifacts
mkdir -p "$artifacts"
scratch=$(mktemp -d /tmp/svcfs-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# a leak or a sanitizer report must stop the run with the input that caused it
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
	seeds=$top/tests/fuzz/corpus/$t
	log=$scratch/$t.log
	mkdir "$scratch/$t"
	start=$(date +%s)
	rc=0
	"$dir/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len=8192 -dict="$top/tests/fuzz/$t.dict" -print_final_stats=1 \
		-artifact_prefix="$artifacts/$t-" "$scratch/$t" "$seeds" >"$log" 2>&1 || rc=$?
	took=$(($(date +%s) - start))
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
	nseeds=$(find "$seeds" -type f | wc -l)
	if [ "$rc" -eq 0 ]; then
		echo "fuzz: $t: ok: ${runs:-?} inputs in ${took}s (${rate:-?}/s), $nseeds seeds, $cov"
		continue
	fi
	status=1
	echo "fuzz: $t: FAILED (exit $rc) after ${took}s; the report:" >&2
	grep -v '^INFO:\|^#[0-9]' "$log" | tail -60 >&2
	art=$(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log" | tail -1)
	if [ -n "$art" ]; then
		echo "fuzz: $t: the input is $art" >&2
		echo "fuzz:   replay it:   $dir/tests/fuzz/fuzz_$t $art" >&2
		echo "fuzz:   once fixed, keep it: cp $art $seeds/regress-WHAT" >&2
	fi
done
exit $status
