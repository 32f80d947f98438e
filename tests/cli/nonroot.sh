#!/usr/bin/env bash
# svcfs run by an ordinary user (through fusermount3), SPEC §5: the daemon
# drives its own mount, so its pokes must pass the kernel's permission
# checks without root. The root and group directories and the files of the
# user's own services carry u+w for the daemon's user (the handlers still
# refuse every write but the daemon's own pokes): watchers see IN_CREATE,
# IN_MODIFY and IN_DELETE, and the user still cannot write anything.
#
# Needs root to set up: a throw-away user, and /dev/fuse at Debian's usual
# mode 0666 (libfuse opens it before falling back to fusermount3); both are
# restored at the end.
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: no setpriv"; exit 77; }

user=svcfs-test-$$
useradd -M -N -s /usr/sbin/nologin "$user" || { echo "SKIP: cannot add a user"; exit 77; }
fuse_mode=$(stat -c %a /dev/fuse)
restore() {
	chmod "$fuse_mode" /dev/fuse
	pkill -u "$user" 2>/dev/null
	sleep 0.2
	userdel "$user" 2>/dev/null
	cleanup
}
trap restore EXIT
chmod 666 /dev/fuse
asu=(setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups)
as_user() { "${asu[@]}" "$@"; }
# background commands run "${asu[@]}" directly, so that $! is the program itself

chmod 755 "$work"
b=$work/b
m=$work/m
mkdir -p "$b" "$m"
chown "$user" "$b" "$m"

"${asu[@]}" "$svcfs" -f ${SVCFS_DEBUG:+-d} "$b" "$m" 2>"$work/log" &
bg_pids+=($!)
wait_for as_user mountpoint -q "$m" || fail "the user's mount did not come up: $(cat "$work/log")"

"${asu[@]}" inotifywait -m -q "$m" >"$work/events" 2>&1 &
bg_pids+=($!)
sleep 0.3

cat >"$work/svc.py" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(4)
time.sleep(3600)
PY
"${asu[@]}" /usr/bin/python3 "$work/svc.py" "$b/web.sock" &
svc=$!
bg_pids+=($svc)
wait_for as_user test -d "$m/web" || fail "the user's service did not appear"
expect_eq "state, read by the user" "alive" "$(as_user cat "$m/web/state")"

# the user may not write, even where the mode bits let the kernel through
as_user sh -c "echo x > '$m/web/state'" 2>/dev/null && fail "the user wrote to state" || ok
as_user mkdir "$m/new" 2>/dev/null && fail "the user made a directory" || ok
expect_eq "state unchanged" "alive" "$(as_user cat "$m/web/state")"

kill -9 $svc
wait_for as_user test ! -e "$m/web" || fail "the killed service stayed"
sleep 0.3
events=$(grep -E 'CREATE|DELETE|MODIFY' "$work/events")
expect_match "IN_CREATE for the service" "^$m/ CREATE,ISDIR web\$" "$events"
expect_match "IN_DELETE for the service" "^$m/ DELETE,ISDIR web\$" "$events"
expect_match "IN_MODIFY for .services.json" "^$m/ MODIFY .services.json\$" "$events"
expect_eq "no event from the refused writes" 0 "$(grep -c ' new$' "$work/events")"

[ $fails -eq 0 ] || { echo "daemon log:"; cat "$work/log"; echo "events:"; cat "$work/events"; } >&2
as_user fusermount3 -u "$m" || fail "fusermount3 -u failed"
finish
