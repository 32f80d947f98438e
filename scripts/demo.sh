#!/usr/bin/env bash
# Quick-start demo: install what is missing, build, mount a live discovery
# view of a temporary socket directory with a few real services, and show
# what users see. Everything is cleaned up at the end; with --keep the mount
# and the services stay up and the script prints how to take them down.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash "$top/scripts/deps.sh"
bash "$top/scripts/build.sh" "$top/build" >/dev/null
svcfs=$top/build/fs/svcfs
py=/usr/bin/python3

work=$(mktemp -d /tmp/svcfs-demo.XXXXXX)
backing=$work/backing
mnt=$work/services
mkdir -p "$backing/workers" "$mnt"
pids=()

cleanup() {
	if [ $keep -eq 0 ]; then
		[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
		wait 2>/dev/null || true
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
		rm -rf "$work"
	fi
}
trap cleanup EXIT

# A tiny service: bind a Unix socket, listen, greet every client.
cat >"$work/service.py" <<'PY'
import os, socket, sys
path, greeting = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.sendall(greeting.encode() + b"\n")
    except OSError:  # a client that left early (svcfs's one-time owner query does)
        pass
    c.close()
PY

start() { # start PATH GREETING
	setsid "$py" "$work/service.py" "$1" "$2" </dev/null >/dev/null 2>&1 &
	pids+=($!)
	disown $!   # no "Killed" notice from the shell when the demo crashes one
}

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
show() { say "$*"; "$@"; }

echo '{"version": "1.4.2", "endpoints": {"http": 8080}, "labels": {"team": "web"}, "tags": ["frontend"]}' >"$backing/web.json.tmp"
mv "$backing/web.json.tmp" "$backing/web.json"
start "$backing/web.sock" "hello from web"
start "$backing/workers/worker-1.sock" "worker 1 at your service"
start "$backing/workers/worker-2.sock" "worker 2 at your service"
touch "$backing/not-a-service.sock"         # a regular file: ignored
for _ in $(seq 100); do [ -S "$backing/workers/worker-2.sock" ] && break; sleep 0.05; done

show "$svcfs" -o probe_interval=0.5 "$backing" "$mnt"
for _ in $(seq 100); do [ -d "$mnt/workers/worker-2" ] && break; sleep 0.05; done

# a watcher on libsvcfs follows the mount from here on (shown at the end)
setsid "$top/build/lib/examples/svcfs-example-watcher" "$mnt" >"$work/watch.log" 2>&1 </dev/null &
pids+=($!)
disown $!
say "svcfs-example-service -d $backing api version=2.0 &   # a service registered with libsvcfs"
setsid "$top/build/lib/examples/svcfs-example-service" -d "$backing" api version=2.0 </dev/null >/dev/null 2>&1 &
pids+=($!)
disown $!
for _ in $(seq 100); do [ -d "$mnt/api" ] && break; sleep 0.05; done
show ls "$backing"
show findmnt -n "$mnt"
show ls -l "$mnt"
show ls -l "$mnt/web"
show cat "$mnt/web/meta.json"
show cat "$mnt/web/version" "$mnt/web/state" "$mnt/web/pid"
show getfattr -d -m - "$mnt/web"
say "$py -c 'connect to $mnt/web/socket'"
"$py" -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(s.recv(100).decode(), end='')" "$mnt/web/socket"
show cat "$mnt/.targets.json"
ctl=$top/build/mount-helper/svcfsctl
say "svcfsctl -d $mnt ls -l   # the same through libsvcfs"
"$ctl" -d "$mnt" ls -l
say "svcfsctl -d $mnt status"
"$ctl" -d "$mnt" status

say "kill -9 <worker-2>   # a crash: its entry vanishes by itself"
kill -9 "${pids[2]}"  # worker-2
for _ in $(seq 100); do [ -d "$mnt/workers/worker-2" ] || break; sleep 0.05; done
show ls "$mnt/workers"
say "cat watch.log   # what the libsvcfs watcher saw"
for _ in $(seq 100); do grep -q '^vanished workers/worker-2' "$work/watch.log" && break; sleep 0.05; done
cat "$work/watch.log"

if [ $keep -eq 1 ]; then
	cat <<MSG

The demo stays up. Explore $mnt, then take it down with:
    umount $mnt; kill ${pids[*]}; rm -rf $work
MSG
else
	say "umount $mnt   # done; the demo cleans up after itself (run with --keep to explore)"
fi
