#!/usr/bin/env bash
# The mount as users meet it: started in the background like any FUSE
# filesystem, listed by findmnt as BACKING on MOUNTPOINT type fuse.svcfs,
# read with ls, cat, readlink, getfattr; taken down by umount or SIGTERM.
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1
b=$work/backing
m=$work/mnt
mkdir -p "$b/workers" "$m"

echo '{"version": "2.1", "labels": {"team": "db"}}' >"$b/db.json"
start_service "$b/db.sock"
start_service "$b/workers/w1-port9000.sock"

# background (daemonized) mount: the command returns once mounted
"$svcfs" "$b" "$m"
expect_eq "daemonized start status" 0 "$?"
expect_eq "findmnt source/type" "$b fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$m")"
wait_for test -d "$m/workers/w1-port9000" || fail "worker did not appear"

expect_eq "ls of the root" "db workers" "$(ls "$m" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "ls -a shows the aggregates" ".services.json .targets.json" \
	"$(ls -A "$m" | grep '^\.' | tr '\n' ' ' | sed 's/ $//')"
expect_eq "cat of a sidecar key" "2.1" "$(cat "$m/db/version")"
expect_eq "cat of state" "alive" "$(cat "$m/db/state")"
expect_eq "readlink socket" "$b/db.sock" "$(readlink "$m/db/socket")"
expect_eq "token port" "9000" "$(cat "$m/workers/w1-port9000/port")"
expect_eq "getfattr one" "2.1" "$(getfattr --only-values -n user.svcfs.version "$m/db")"
expect_match "getfattr -d lists state" 'user\.svcfs\.state="alive"' "$(getfattr -d -m - "$m/db" 2>/dev/null)"
expect_match "ls -l shows a symlink" '^l.* socket -> ' "$(ls -l "$m/db" | grep socket)"
got=$(/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(64).decode().strip())' "$m/db/socket")
expect_eq "connect through the symlink" "hello" "$got"

# read-only for users, even root
touch "$m/new" 2>/dev/null && fail "touch in the mount succeeded" || ok
mkdir "$m/dir" 2>/dev/null && fail "mkdir in the mount succeeded" || ok
rm -rf "$m/db" 2>/dev/null && fail "rm -rf of a service succeeded" || ok
echo x 2>/dev/null >"$m/db/state" && fail "write to state succeeded" || ok
setfattr -n user.x -v 1 "$m/db" 2>/dev/null && fail "setfattr succeeded" || ok
expect_eq "state unchanged" "alive" "$(cat "$m/db/state")"

# umount stops the daemon
pid=$(pgrep -f "svcfs $b $m" | head -1)
umount "$m"
expect_eq "umount status" 0 "$?"
wait_for sh -c "! kill -0 $pid" || fail "daemon $pid still running after umount"

# foreground + SIGTERM: clean unmount, exit 0
"$svcfs" -f "$b" "$m" 2>"$work/log" &
fpid=$!
bg_pids+=($fpid)
wait_for mountpoint -q "$m" || fail "foreground mount did not come up"
start_service "$b/late.sock"
wait_for test -d "$m/late" || fail "late service did not appear"
rm "$b/late.sock"
wait_for test ! -e "$m/late" || fail "late service did not vanish"
kill -TERM $fpid
wait $fpid
expect_eq "exit status after SIGTERM" 0 "$?"
mountpoint -q "$m" && fail "still mounted after SIGTERM" || ok
log=$(cat "$work/log")
expect_match "log: start-up summary" "$b mounted on $m \\(2 services\\)" "$log"
expect_match "log: a service appearing" '^svcfs: late: alive \(pid [0-9]+\)$' "$log"
expect_match "log: a service vanishing" '^svcfs: late: gone \(socket file removed\)$' "$log"
[ "$(grep -c . "$work/log")" = 4 ] && ok || fail "log: expected 4 lines, got: $log"
finish
