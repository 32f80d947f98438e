#!/usr/bin/env bash
# The libsvcfs examples (lib/examples) against a real mount: the service
# registers with the lock-file pattern and is seen alive with its metadata,
# a second instance is refused, the watcher reports what happens, and the
# same watcher reads a backing directory directly (no liveness).
#   examples.sh SVCFS EXAMPLE-SERVICE EXAMPLE-WATCHER
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1 service=$2 watcher=$3
b=$work/backing
m=$work/mnt
mkdir -p "$b" "$m"

"$svcfs" "$b" "$m" || { fail "mount"; finish; exit; }

"$watcher" "$m" >"$work/watch.out" 2>&1 &
bg_pids+=($!)
"$watcher" "$b" >"$work/watch-backing.out" 2>&1 &
bg_pids+=($!)
sleep 0.2 # both watchers have read their directory (nothing there yet)

"$service" -d "$b" web version=1.2 >"$work/web.out" &
web=$!
bg_pids+=($web)
wait_for test -d "$m/web" || fail "web did not appear"
expect_eq "registration prints the socket" "$b/web.sock" "$(cat "$work/web.out")"
expect_eq "metadata from the sidecar" "1.2" "$(cat "$m/web/version")"
expect_eq "owner found" "$web" "$(cat "$m/web/pid")"
expect_eq "state" "alive" "$(cat "$m/web/state")"
got=$(/usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(64).decode().strip())' "$m/web/socket")
expect_eq "connect through the mount" "hello from web" "$got"
expect_eq "socket mode" "600" "$(stat -c %a "$b/web.sock")"

err=$("$service" -d "$b" web 2>&1)
expect_eq "second instance exit status" 1 "$?"
expect_match "second instance says why" "cannot register web: Address already in use" "$err"
test -d "$m/web" && ok || fail "first instance lost its name"

# a group, and a crash
"$service" -d "$b" group/w1 >/dev/null &
w1=$!
bg_pids+=($w1)
wait_for test -d "$m/group/w1" || fail "group/w1 did not appear"
kill -9 "$w1"
wait_for test ! -e "$m/group/w1" || fail "group/w1 did not vanish after SIGKILL"

# a clean exit removes socket and sidecar, keeps the lock file
kill -TERM "$web"
wait "$web"
expect_eq "service exit status" 0 "$?"
wait_for test ! -e "$m/web" || fail "web did not vanish"
test ! -e "$b/web.sock" && test ! -e "$b/web.json" && ok || fail "unregister left files: $(ls "$b")"
test -f "$b/web.lock" && ok || fail "lock file removed"

# the next instance takes over the crashed one's name at once
"$service" -d "$b" group/w1 >/dev/null &
bg_pids+=($!)
wait_for test -d "$m/group/w1" || fail "group/w1 not taken over after a crash"

wait_for grep -q "^vanished web$" "$work/watch.out" || fail "watcher missed web vanishing"
wait_for grep -q "^appeared group/w1 " "$work/watch-backing.out" || fail "backing watcher missed group/w1"
expect_eq "mount watcher, in order" \
	"appeared web|appeared group/w1|vanished group/w1|vanished web|appeared group/w1" \
	"$(sed -E 's/ pid=.*//' "$work/watch.out" | head -5 | paste -sd'|')"
expect_match "mount watcher shows owner and state" "^appeared web pid=$web state=alive$" "$(cat "$work/watch.out")"
expect_match "backing watcher: no liveness" "^appeared web pid=0 state=unknown$" "$(cat "$work/watch-backing.out")"

kill "${bg_pids[@]}" 2>/dev/null
wait 2>/dev/null
umount "$m" || fail "umount"
finish
