#!/usr/bin/env bash
# Install what is missing, build, and run every test: once in a normal
# build, once under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash scripts/deps.sh

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

# nothing may be left behind
if findmnt -rn -t fuse.svcfs >/dev/null 2>&1; then
	echo "test.sh: svcfs mounts left behind:" >&2
	findmnt -rn -t fuse.svcfs >&2
	status=1
fi
exit $status
