#!/usr/bin/env bash
# Run the integration suites with the daemon under valgrind memcheck.
#   tests/valgrind/run.sh [BUILD_DIR]     (default ./build: a normal build, not ASan)
#   SVCFS_VG_SUITES="services metadata"   only these suites (default: all of them)
#   SVCFS_VG_OPTS=--track-origins=yes     more valgrind options (svcfs-memcheck)
# Each suite runs as ctest runs it, with SVCFS_BIN pointing at svcfs-memcheck,
# so every daemon a test starts runs under memcheck and writes its own log.
# The run fails (exit 1) if a test fails — a daemon with a memcheck error
# exits 99, not 0, and the harness's teardown fails its test — or if any log
# shows an error: "ERROR SUMMARY" other than 0 errors, an error report in
# the log of a daemon a test killed outright, or a descriptor the daemon
# opened and left open at exit (--track-fds). The failing logs are printed.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$top/build}
daemon=$dir/fs/svcfs

# Suites of tests/integration, in the order they run.
all_suites=(services metadata groups aggregates access cache events daemon liveness faults)
# Tests that cannot pass under valgrind whatever the daemon does, and why.
declare -A skip=(
	# background_mode_and_umount looks for a process whose argv[0] is svcfs:
	# under valgrind it is memcheck. status_xattr_on_the_root counts an owner
	# exit seen through a pidfd, which needs the owner learnt before the
	# test's SIGKILL: under valgrind it often is not yet
	[daemon]="background_mode_and_umount|status_xattr_on_the_root"
	# valgrind 3.19 does not implement pidfd_open (ENOSYS): owners found
	# through /proc cannot be held; and valgrind keeps descriptors of its own,
	# so a descriptor limit set from outside no longer starves the daemon
	[liveness]="dgram_owner_found_and_followed|listener_handed_to_a_forked_child_stays|out_of_descriptors_degrades_then_recovers"
	# thousands_of_sockets_in_one_process wants a pidfd on the owner (no
	# pidfd_open: 2 minutes of retries, then it fails); a SIGKILLed daemon
	# under valgrind once took longer than the harness's 10 s to die
	# (and killed_daemon_then_umount_lazy_and_mount_again for the same reason)
	[faults]="thousands_of_sockets_in_one_process|killed_daemon_then_fusermount3_uz_and_mount_again|killed_daemon_then_umount_lazy_and_mount_again"
)

if ! command -v valgrind >/dev/null; then
	echo "valgrind: not installed (bash scripts/deps.sh)" >&2
	exit 1
fi
if [ ! -x "$daemon" ]; then
	echo "valgrind: no daemon at $daemon: build first (scripts/build.sh $dir)" >&2
	exit 1
fi
if grep -q __asan_init "$daemon"; then
	echo "valgrind: $daemon is a sanitizer build; valgrind needs a normal one" >&2
	exit 1
fi
suites=(${SVCFS_VG_SUITES:-${all_suites[*]}})

logs=$(mktemp -d /tmp/svcfs-valgrind.XXXXXX)
chmod 0755 "$logs"
export SVCFS_BIN=$top/tests/valgrind/svcfs-memcheck
export SVCFS_VG_DAEMON=$daemon

status=0
t0=$(date +%s)
for s in "${suites[@]}"; do
	bin=$dir/tests/integration/integration-$s
	args=(--jobs 1)
	[ -n "${skip[$s]:-}" ] && args+=(--filter "!($s/@(${skip[$s]}))")
	mkdir "$logs/$s"
	chmod 1777 "$logs/$s" # some tests run the daemon as another user
	start=$(date +%s)
	rc=0
	SVCFS_VG_LOGDIR=$logs/$s timeout -k 30 900 "$bin" "${args[@]}" >"$logs/$s.out" 2>&1 || rc=$?
	took=$(($(date +%s) - start))
	result=$(grep -o 'Tested: .*' "$logs/$s.out" | tail -1 || true)
	if [ "$rc" -eq 0 ]; then
		echo "valgrind: $s: ok in ${took}s (${result:-?})"
	else
		status=1
		echo "valgrind: $s: FAILED (exit $rc) in ${took}s (${result:-?}):" >&2
		grep -E '\[FAIL\]|Assertion Failed|TEARDOWN|exit status 99' -A3 "$logs/$s.out" |
			head -60 >&2 || true
	fi
done

# The logs: every one must be clean, whatever the tests said.
nlogs=0
killed=0
bad=()
for f in "$logs"/*/vg.*.log; do
	[ -e "$f" ] || continue
	nlogs=$((nlogs + 1))
	if grep -q 'ERROR SUMMARY:' "$f"; then
		grep -q 'ERROR SUMMARY: 0 errors' "$f" || bad+=("$f")
	else
		killed=$((killed + 1)) # SIGKILLed by its test: no summary, but no report either
		grep -qE '^==[0-9]+== +(at|by) 0x' "$f" && bad+=("$f")
	fi
	opened=$(grep -cE '^==[0-9]+== Open (file descriptor|AF_[A-Z0-9]+ socket) [0-9]+' "$f" || true)
	inherited=$(grep -c '<inherited from parent>' "$f" || true)
	[ "$opened" -gt "$inherited" ] && bad+=("$f")
done
unhandled=$(cat "$logs"/*/vg.*.log 2>/dev/null | grep -o 'unhandled [a-z0-9-]* syscall: [0-9]*' |
	sort | uniq -c | tr -s ' ' | paste -sd, || true)
echo "valgrind: $nlogs daemon logs ($killed killed by their test), ${#bad[@]} with errors," \
	"$(($(date +%s) - t0))s${unhandled:+; valgrind could not run these calls:$unhandled}"
if [ ${#bad[@]} -gt 0 ]; then
	status=1
	for f in $(printf '%s\n' "${bad[@]}" | sort -u | head -5); do
		echo "==== $f" >&2
		grep -vE '^==[0-9]+== *$' "$f" | head -80 >&2
	done
fi
if [ "$status" -eq 0 ]; then
	rm -rf "$logs"
else
	echo "valgrind: logs kept in $logs" >&2
fi
exit $status
