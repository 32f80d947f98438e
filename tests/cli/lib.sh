# Shared helpers for the command-line tests: assertions that say what was
# expected, and a work area that is cleaned up (mounts, processes, files)
# however the test ends.
set -uo pipefail

fails=0
passes=0
work=$(mktemp -d /tmp/svcfs-cli.XXXXXX)
bg_pids=()

cleanup() {
	local m
	for m in $(findmnt -rn -t fuse.svcfs -o TARGET 2>/dev/null | grep "^$work/" || true); do
		umount -l "$m" 2>/dev/null || true
	done
	[ ${#bg_pids[@]} -gt 0 ] && kill -9 "${bg_pids[@]}" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

ok() { passes=$((passes + 1)); }
fail() {
	fails=$((fails + 1))
	echo "FAIL: $*" >&2
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then ok; else fail "$1: expected '$2', got '$3'"; fi
}

# expect_match WHAT REGEX TEXT
expect_match() {
	if printf '%s' "$3" | grep -qE -- "$2"; then ok; else fail "$1: '$3' does not match /$2/"; fi
}

# wait_for CMD...: retry for up to 5 s
wait_for() {
	local i
	for i in $(seq 500); do
		"$@" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}

skip_unless_fuse() {
	if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/fuse ]; then
		echo "SKIP: needs root and /dev/fuse"
		exit 77
	fi
}

# A listening Unix socket service at PATH (python3, stdlib only).
start_service() {
	/usr/bin/python3 - "$1" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(16)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b"hello\n")
    except OSError:
        pass
    c.close()
PY
	bg_pids+=($!)
	wait_for test -S "$1"
}

finish() {
	echo "$passes passed, $fails failed"
	[ "$fails" -eq 0 ]
}
