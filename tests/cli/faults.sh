#!/usr/bin/env bash
# Faults seen with the real tools (README "When things go wrong"); the rest
# is in tests/integration/faults.c.
#
# 1. A socket of another user, mode 0600: the view grants no more than the
#    socket. Two throw-away users (like nonroot.sh): the socket's owner and
#    root read its service directory; another user gets "Permission
#    denied" for its files, its listing, its xattrs and its socket link,
#    as for connect() on the socket itself; it may see that the service
#    exists (stat, .services.json), as `ls -l BACKING` shows the socket.
# 2. The daemon SIGKILLed: the dead mount answers "Transport endpoint is
#    not connected" to what needs the daemon (ls -l, stat of a new name,
#    getfattr); `umount -l` takes it away and a new svcfs shows the
#    services, which never noticed.
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }
command -v getfattr >/dev/null || { echo "SKIP: no getfattr"; exit 77; }

owner=svcfs-fo-$$
other=svcfs-fx-$$
useradd -M -N -s /usr/sbin/nologin "$owner" || { echo "SKIP: cannot add a user"; exit 77; }
if ! useradd -M -N -s /usr/sbin/nologin "$other"; then
	userdel "$owner"
	echo "SKIP: cannot add a second user"
	exit 77
fi
restore() {
	pkill -KILL -u "$owner" 2>/dev/null
	pkill -KILL -u "$other" 2>/dev/null
	sleep 0.2
	userdel "$owner" 2>/dev/null
	userdel "$other" 2>/dev/null
	cleanup
}
trap restore EXIT
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$(id -g "$u")" --clear-groups "$@"; }

chmod 755 "$work"
cat >"$work/svc.py" <<'PY'
import os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], int(sys.argv[2], 8))
s.listen(4)
while True:
    c, _ = s.accept()
    c.close()
PY
cat >"$work/connect.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(e.strerror)
PY

# ---- 1. another user's socket, mode 0600 ----
b=$work/b
m=$work/m
mkdir -p "$b" "$m"
chmod 1777 "$b" # like /tmp: every user may bind here
"$svcfs" -f -o allow_other "$b" "$m" 2>"$work/log" &
bg_pids+=($!)
wait_for mountpoint -q "$m" || fail "not mounted: $(cat "$work/log")"
setpriv --reuid="$owner" --regid="$(id -g "$owner")" --clear-groups \
	/usr/bin/python3 "$work/svc.py" "$b/priv.sock" 0600 &
bg_pids+=($!)
wait_for test -e "$m/priv/state" || fail "the private service did not appear"
wait_for sh -c "[ \"\$(stat -c %a '$m/priv')\" = 500 ]" || true

expect_eq "MNT/priv: owner and mode" "$owner 500" "$(stat -c '%U %a' "$m/priv")"
expect_eq "MNT/priv/state: owner and mode" "$owner 400" "$(stat -c '%U %a' "$m/priv/state")"
expect_eq "root reads it" "alive" "$(cat "$m/priv/state")"
expect_eq "its owner reads it" "alive" "$(as "$owner" cat "$m/priv/state" 2>&1)"
expect_match "its owner lists it" "(^|$'\n')state($|$'\n')" "$(as "$owner" ls "$m/priv" 2>&1)"
expect_eq "its owner connects" "connected" "$(as "$owner" /usr/bin/python3 "$work/connect.py" "$b/priv.sock")"

# another user: no more than the socket gives
expect_eq "another user connects" "Permission denied" \
	"$(as "$other" /usr/bin/python3 "$work/connect.py" "$b/priv.sock")"
expect_match "another user: cat state" "Permission denied" \
	"$(as "$other" cat "$m/priv/state" 2>&1)"
expect_match "another user: cat meta.json" "Permission denied" \
	"$(as "$other" cat "$m/priv/meta.json" 2>&1)"
expect_match "another user: ls" "Permission denied" "$(as "$other" ls "$m/priv" 2>&1)"
expect_match "another user: getfattr" "Permission denied" \
	"$(as "$other" getfattr -d "$m/priv" 2>&1)"
expect_match "another user: readlink socket" "Permission denied" \
	"$(as "$other" readlink -v "$m/priv/socket" 2>&1)"
# what BACKING shows anyone (ls -l of the socket) the view shows too
expect_eq "another user: stat" "$owner 500" "$(as "$other" stat -c '%U %a' "$m/priv" 2>&1)"
expect_match "another user: .services.json lists it" '"name":"priv"' \
	"$(as "$other" cat "$m/.services.json" 2>&1)"

# ---- 2. the daemon SIGKILLed ----
b2=$work/b2
m2=$work/m2
mkdir -p "$b2" "$m2"
start_service "$b2/web.sock"
"$svcfs" -f "$b2" "$m2" 2>"$work/log2" &
daemon=$!
bg_pids+=($daemon)
wait_for test -e "$m2/web/state" || fail "web did not appear: $(cat "$work/log2")"
ls -l "$m2/web" >/dev/null 2>&1
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null
expect_eq "the dead mount stays" "fuse.svcfs" "$(findmnt -rn -o FSTYPE "$m2")"
expect_match "ls -l on the dead mount" "Transport endpoint is not connected" "$(ls -l "$m2" 2>&1)"
expect_match "stat of a new name" "Transport endpoint is not connected" \
	"$(stat "$m2/other" 2>&1)"
expect_match "getfattr of the root" "Transport endpoint is not connected" \
	"$(getfattr -n user.svcfs.status "$m2" 2>&1)"
umount -l "$m2"
expect_eq "umount -l" 0 "$?"
expect_eq "nothing mounted after umount -l" "" "$(findmnt -rn -o FSTYPE "$m2")"
expect_eq "the mount point is the empty directory again" "" "$(ls -A "$m2")"
"$svcfs" -f "$b2" "$m2" 2>>"$work/log2" &
daemon=$!
bg_pids+=($daemon)
wait_for test -e "$m2/web/state" || fail "mounted again, web did not appear: $(cat "$work/log2")"
expect_eq "mounted again: web" "alive" "$(cat "$m2/web/state" 2>&1)"
kill -TERM "$daemon"
wait "$daemon"
expect_eq "then SIGTERM: exit status" 0 "$?"

[ $fails -eq 0 ] || { echo "daemon logs:"; cat "$work/log" "$work/log2"; } >&2
finish
