#!/usr/bin/env bash
# Install what is missing, build, and run every test: once in a normal
# build, once under AddressSanitizer + UndefinedBehaviorSanitizer; then
# the fuzz targets for a bounded time, and the integration suites with the
# daemon under valgrind memcheck.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh

# svcfs mounts that were there before (someone else's): not ours to blame
mounts_before=$(findmnt -rn -t fuse.svcfs -o TARGET 2>/dev/null | sort || true) # findmnt: 1 if none

status=0
run() {
	local name=$1 dir=$2
	shift 2
	echo "== $name build"
	bash scripts/build.sh "$dir" "$@"
	echo "== $name tests"
	ctest --test-dir "$dir" --output-on-failure --timeout 300 || status=1
}

run normal "$top/build"
# halt_on_error: a sanitizer report fails the test that triggered it
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
run "asan+ubsan" "$top/build-asan" -DSVCFS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug

# libFuzzer (clang) on the sidecar, name and JSON-string code: the seeds,
# then SVCFS_FUZZ_SECONDS (default 20) of fuzzing per target
echo "== fuzz"
bash tests/fuzz/run.sh "$top/build-fuzz" || status=1
# the integration suites again, the daemon under valgrind memcheck (normal build)
echo "== valgrind"
bash tests/valgrind/run.sh "$top/build" || status=1

# nothing may be left behind by the tests
left=$(comm -13 <(echo "$mounts_before") <(findmnt -rn -t fuse.svcfs -o TARGET 2>/dev/null | sort) | grep . || true)
if [ -n "$left" ]; then
	echo "test.sh: svcfs mounts left behind by the tests:" >&2
	echo "$left" >&2
	status=1
fi
exit $status
