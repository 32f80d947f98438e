#!/usr/bin/env bash
# svcfsctl against a real mount: every subcommand, its exit status and its
# output as scripts read it; register -- CMD with a real socket-activated
# program (python3, stdlib: the socket arrives as fd 3 with LISTEN_FDS=1).
#   svcfsctl.sh SVCFS SVCFSCTL
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1 ctl=$2
py=/usr/bin/python3
b=$work/backing
m=$work/mnt
mkdir -p "$b" "$m"
export SVCFS_MOUNT=$m # the default mount for the clients
unset SVCFS_DIR

# A socket-activated echo server: checks what systemd would give it, says
# so in $work/NAME.env, then answers every client with "echo:" + its line.
cat >"$work/activated.py" <<'PY'
import os, socket, sys
name, out = sys.argv[1], sys.argv[2]
fd3 = socket.socket(fileno=3)
listening = fd3.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
with open(out + ".tmp", "w") as f:
    f.write("%s %s %s %d %s\n" % (os.environ.get("LISTEN_FDS"),
            os.environ.get("LISTEN_PID") == str(os.getpid()),
            os.environ.get("LISTEN_FDNAMES"), listening,
            os.environ.get("SVCFS_SOCKET")))
os.rename(out + ".tmp", out)
while True:
    c, _ = fd3.accept()
    try:
        c.sendall(b"echo:" + c.recv(100))
    except OSError:
        pass
    c.close()
PY

activated() { # activated NAME [register options...]: register NAME -- the echo server
	local name=$1
	shift
	"$ctl" -d "$b" register "$@" "$name" -- "$py" "$work/activated.py" "$name" "$work/${name//\//_}.env" &
	bg_pids+=($!)
}

# ---- usage ----
"$ctl" >/dev/null 2>&1
expect_eq "no command: usage error" 2 "$?"
out=$("$ctl" --help)
expect_eq "--help status" 0 "$?"
expect_match "--help lists the commands" "NAME -- CMD" "$out"
expect_match "--version" '^svcfsctl [0-9]+\.[0-9]+\.[0-9]+$' "$("$ctl" --version)"
err=$("$ctl" frobnicate 2>&1)
expect_eq "unknown command status" 2 "$?"
expect_match "unknown command named" "unknown command 'frobnicate'" "$err"
"$ctl" ls --bogus >/dev/null 2>&1
expect_eq "bad option status" 2 "$?"
err=$("$ctl" wait x --timeout soon 2>&1)
expect_eq "bad timeout status" 2 "$?"
expect_match "bad timeout named" "bad --timeout 'soon'" "$err"
err=$("$ctl" ls 2>&1)
expect_eq "default mount not mounted yet: status" 1 "$?"
expect_match "default mount not mounted yet: says so" "$m: not an svcfs mount" "$err"
err=$(SVCFS_MOUNT=$work/missing "$ctl" ls 2>&1)
expect_eq "default mount missing: status" 1 "$?"
expect_match "default mount missing: says where it looked" "$work/missing" "$err"
expect_eq "-d reads any directory" "" "$("$ctl" -d "$m" ls)"

"$svcfs" "$b" "$m" || { fail "mount"; finish; exit; }

# ---- register -- CMD, socket activation ----
activated web --meta version=1.2 --meta-json port=8080 --meta-json 'labels={"team":"db"}'
"$ctl" wait web --timeout 5
expect_eq "wait for a registered service" 0 "$?"
wait_for test -f "$work/web.env" || fail "the activated program did not start"
expect_eq "what the program got" "1 True web 1 $b/web.sock" "$(cat "$work/web.env")"
pid=$(cat "$m/web/pid")
expect_match "owner is the program itself (exec, no wrapper)" "python3 $work/activated.py web" \
	"$(tr '\0' ' ' </proc/"$pid"/cmdline)"
expect_eq "metadata from --meta" "1.2" "$(cat "$m/web/version")"
expect_eq "metadata from --meta-json" "8080" "$(cat "$m/web/port")"
expect_eq "socket mode" "600" "$(stat -c %a "$b/web.sock")"

err=$("$ctl" -d "$b" register web -- true 2>&1)
expect_eq "second instance status" 1 "$?"
expect_match "second instance says why" "cannot register web: the name is taken" "$err"
err=$("$ctl" -d "$b" register gone -- /nonexistent/program 2>&1)
expect_eq "missing program status" 127 "$?"
expect_match "missing program named" "cannot run /nonexistent/program" "$err"
test ! -e "$b/gone.sock" && ok || fail "a failed exec left gone.sock"
"$ctl" -d "$b" register web2 >/dev/null 2>&1
expect_eq "register without CMD" 2 "$?"
"$ctl" -d "$b" register --type bogus web2 -- true >/dev/null 2>&1
expect_eq "register --type bogus" 2 "$?"
"$ctl" -d "$b" register --meta novalue web2 -- true >/dev/null 2>&1
expect_eq "register --meta without =" 2 "$?"
"$ctl" -d "$b" register --meta-json 'k={bad' web2 -- true >/dev/null 2>&1
expect_eq "register --meta-json not JSON" 2 "$?"

# ---- ls, show ----
activated group/w1 --mode 0660
"$ctl" wait group/w1 --timeout 5 || fail "group/w1 did not appear"
expect_eq "ls" "group/w1
web" "$("$ctl" ls)"
out=$("$ctl" ls -l)
expect_match "ls -l header" '^STATE +PID +USER +SINCE +NAME$' "$(head -1 <<<"$out")"
expect_match "ls -l row" "^alive +$pid +root +[0-9T:-]+Z +web$" "$(grep ' web$' <<<"$out")"
json=$("$ctl" ls --json)
got=$("$py" -c 'import json,sys; a=json.loads(sys.argv[1]); print(len(a), a[1]["name"], a[1]["pid"], a[1]["meta"]["labels"]["team"], a[1]["socket"])' "$json")
expect_eq "ls --json" "2 web $pid db $b/web.sock" "$got"
out=$("$ctl" show web)
expect_match "show: state" "^state: alive$" "$out"
expect_match "show: pid" "^pid: $pid$" "$out"
expect_match "show: socket" "^socket: $b/web.sock$" "$out"
expect_match "show: a metadata key" '^labels: \{"team":"db"\}$' "$out"
got=$("$py" -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["name"], o["state"], o["meta"]["version"])' "$("$ctl" show --json web)")
expect_eq "show --json" "web alive 1.2" "$got"
err=$("$ctl" show nope 2>&1)
expect_eq "show of an absent service" 1 "$?"
expect_match "show says so" "nope: no such service" "$err"

# ---- connect ----
expect_eq "connect relays both ways" "echo:hi" "$(echo hi | "$ctl" connect web)"
expect_eq "connect --timeout, options after NAME" "echo:x" "$(printf x | "$ctl" connect group/w1 --timeout 2)"
err=$("$ctl" connect nope </dev/null 2>&1)
expect_eq "connect to an absent service" 1 "$?"
expect_match "connect says so" "nope: no such service" "$err"

# ---- status ----
out=$("$ctl" status)
expect_match "status: version and pid" "^svcfs [0-9.]+, pid [0-9]+" "$out"
expect_match "status: live count" "services: 2 live" "$out"
got=$("$py" -c 'import json,sys; o=json.loads(sys.argv[1]); print(o["services"], o["backing"], o["counters"]["appeared"] >= 2, o["counters"]["connects"])' "$("$ctl" status --json)")
expect_eq "status --json (no connect needed to find an owner)" "2 $b True 0" "$got"
err=$("$ctl" -d "$b" status 2>&1)
expect_eq "status of a plain directory" 1 "$?"
expect_match "status says why" "not an svcfs mount" "$err"

# ---- watch ----
"$ctl" watch --existing >"$work/watch.out" 2>&1 &
bg_pids+=($!)
"$ctl" watch --json >"$work/watch.json" 2>&1 &
bg_pids+=($!)
wait_for grep -q '^appeared web$' "$work/watch.out" || fail "watch --existing: web not reported"
sleep 0.2 # the --json watcher has read the directory by now (no --existing: nothing to show)
activated w3
"$ctl" wait w3 --timeout 5 || fail "w3 did not appear"
kill -9 "$(cat "$m/w3/pid")"
wait_for test ! -e "$m/w3" || fail "w3 did not vanish after SIGKILL"
wait_for grep -q '^vanished w3$' "$work/watch.out" || fail "watch: w3 vanishing not reported"
expect_eq "watch lines, in order" "appeared group/w1|appeared web|appeared w3|vanished w3" \
	"$({ head -2 "$work/watch.out" | sort; tail -n +3 "$work/watch.out"; } | paste -sd'|')"
wait_for grep -q '"event":"vanished","name":"w3"' "$work/watch.json" || fail "watch --json: no vanished"
got=$("$py" -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(e["event"] + ":" + e["name"] for e in ev), ev[0].get("state"), ev[0].get("pid", 0) > 0)' "$work/watch.json")
expect_eq "watch --json lines" "appeared:w3 vanished:w3 alive True" "$got"

# ---- wait ----
"$ctl" wait later --timeout 0.2 2>/dev/null
expect_eq "wait times out" 1 "$?"
("$ctl" wait later w4 --timeout 10; echo "status $?" >"$work/wait.out") &
bg_pids+=($!)
sleep 0.2
test ! -e "$work/wait.out" && ok || fail "wait returned before the services appeared"
activated later
activated w4
wait_for test -s "$work/wait.out" || fail "wait did not return"
expect_eq "wait for two later services" "status 0" "$(cat "$work/wait.out")"

# ---- names with odd bytes are printed escaped, one per line ----
start_service "$b/odd"$'\n'"name.sock"
"$ctl" wait "odd"$'\n'"name" --timeout 5 || fail "odd name did not appear"
expect_match "ls escapes a newline" '^odd\\nname$' "$("$ctl" ls)"

# ---- a backing directory: no liveness ----
kill -9 "$(cat "$m/later/pid")"
wait_for test ! -e "$m/later" || fail "later did not vanish"
out=$("$ctl" -d "$b" ls -l)
expect_match "backing dir lists the dead one, state unknown" "^unknown .* later$" "$out"

kill "${bg_pids[@]}" 2>/dev/null
wait 2>/dev/null
umount "$m" || fail "umount"
finish
