#!/usr/bin/env bash
# The systemd units: generated with the installed daemon's path, accepted by
# `systemd-analyze verify` (system units, and the user unit with --user),
# installed by `cmake --install` where systemd looks under the prefix. Then,
# with root and /dev/fuse, the system unit's ExecStart= run as systemd runs
# it (Type=notify): READY=1 once the mount is live, STOPPING=1 and exit 0 on
# SIGTERM, and no dead mount left when svcfs is killed (auto_unmount) — the
# control without auto_unmount shows the dead mount it prevents.
#   systemd.sh SVCFS BUILD-DIR INSTALL-BINDIR
. "$(dirname "$0")/lib.sh"
svcfs=$1
build=$2
bindir=$3
units=$build/packaging/systemd
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }

# --- generated with the installed daemon's path -----------------------------
for u in system/svcfs.service user/svcfs.service; do
	expect_match "$u: ExecStart runs the installed daemon" "^$bindir/svcfs -f " \
		"$(sed -n 's/^ExecStart=//p' "$units/$u")"
done
test -f "$units/run-services.mount" && ok || fail "run-services.mount not in the build tree"

# --- cmake --install puts them where systemd looks ---------------------------
prefix=$work/prefix
if cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
	for f in lib/systemd/system/svcfs.service lib/systemd/user/svcfs.service \
		share/doc/svcfs/examples/run-services.mount sbin/mount.fuse.svcfs; do
		test -f "$prefix/$f" && ok || fail "cmake --install: no $f"
	done
	cmp -s "$prefix/lib/systemd/system/svcfs.service" "$units/system/svcfs.service" && ok ||
		fail "the installed system unit is not the generated one"
	test -e "$prefix/lib/systemd/system/run-services.mount" &&
		fail "run-services.mount installed as a unit (it is an example)" || ok
else
	fail "cmake --install: $(tail -3 "$work/install.log")"
fi

# --- systemd-analyze verify, on copies that run the build's daemon -----------
# (the installed path may not exist yet; verify checks ExecStart= binaries)
mkdir -p "$work/system" "$work/user" "$work/xdg"
chmod 700 "$work/xdg"
for u in system/svcfs.service user/svcfs.service; do
	sed "s#$bindir/svcfs#$svcfs#" "$units/$u" >"$work/$u"
done
cp "$units/run-services.mount" "$work/system/"

# Documentation=man:... is checked too: against the pages just installed
manpath=$prefix/share/man
[ -d "$manpath/man8" ] || fail "no man pages installed in $manpath"

# verify_ok WHAT [--user] UNIT...: status 0 and not a word (warnings included)
verify_ok() {
	local what=$1 out st
	shift
	out=$(cd "$work" && XDG_RUNTIME_DIR=$work/xdg MANPATH=$manpath systemd-analyze "$@" 2>&1)
	st=$?
	expect_eq "$what: status" 0 "$st"
	expect_eq "$what: no warnings" "" "$out"
}
verify_ok "system service" verify system/svcfs.service
verify_ok "mount unit" verify system/run-services.mount
verify_ok "user service" --user verify user/svcfs.service

# control: verify does complain about what it should
sed 's#^ExecStart=[^ ]*#ExecStart=/nonexistent/svcfs#; s#^Type=#Tpye=#' \
	"$work/system/svcfs.service" >"$work/system/broken.service"
out=$(cd "$work" && MANPATH=$manpath systemd-analyze verify system/broken.service 2>&1)
expect_match "control: a missing daemon is reported" "/nonexistent/svcfs" "$out"
expect_match "control: an unknown key is reported" "Tpye" "$out"

# --- the system unit's ExecStart=, run as systemd runs it ---------------------
if [ "$(id -u)" -ne 0 ] || ! [ -c /dev/fuse ]; then
	echo "SKIP (part): running ExecStart= needs root and /dev/fuse"
	finish
	exit
fi
run=$work/run # stands in for /run: RuntimeDirectory=svcfs, ExecStartPre=mkdir
mkdir -p "$run/svcfs" "$run/services"
exec_start=$(sed -n 's/^ExecStart=//p' "$work/system/svcfs.service" |
	sed "s#/run/svcfs#$run/svcfs#; s#/run/services#$run/services#")
read -ra cmd <<<"$exec_start"
expect_eq "ExecStart= is the build's daemon" "$svcfs" "${cmd[0]}"
m=$run/services
mounted() { findmnt -rn "$1" >/dev/null 2>&1; }

# A service manager's end of NOTIFY_SOCKET: one line per datagram.
/usr/bin/python3 - "$work/notify.sock" "$work/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    while True:
        log.write(s.recv(4096).decode() + "\n")
        log.flush()
PY
bg_pids+=($!)
wait_for test -S "$work/notify.sock" || fail "no notify socket"
: >"$work/notify.log"

# start ARGS...: the daemon as systemd starts it, $daemon its pid
start() {
	NOTIFY_SOCKET=$work/notify.sock "$@" 2>>"$work/daemon.log" &
	daemon=$!
	bg_pids+=($daemon)
}

start "${cmd[@]}"
wait_for grep -qx READY=1 "$work/notify.log" || fail "no READY=1: $(cat "$work/daemon.log")"
# READY=1 is sent after the mount: it is there when systemd hears it
expect_eq "mounted when READY=1 arrives" "$run/svcfs fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$m")"
expect_match "allow_other, as the unit says" '(^|,)allow_other(,|$)' "$(findmnt -rn -o OPTIONS "$m")"
kill -TERM "$daemon"
wait "$daemon"
expect_eq "exit status after SIGTERM (systemctl stop)" 0 "$?"
expect_eq "notifications" "READY=1 STOPPING=1" "$(grep . "$work/notify.log" | tr '\n' ' ' | sed 's/ $//')"
mounted "$m" && fail "still mounted after SIGTERM" || ok
expect_eq "RuntimeDirectoryPreserve: BACKING kept" "yes" "$(test -d "$run/svcfs" && echo yes)"

# killed (a crash): auto_unmount takes the mount away, so a restart can mount
: >"$work/notify.log"
start "${cmd[@]}"
wait_for grep -qx READY=1 "$work/notify.log" || fail "no READY=1 the second time"
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null
wait_for sh -c "! findmnt -rn '$m' >/dev/null" && ok || fail "auto_unmount: the dead mount stayed"
start "${cmd[@]}"
wait_for mounted "$m" && ok || fail "Restart=on-failure would not mount again: $(tail -1 "$work/daemon.log")"
kill -TERM "$daemon"
wait "$daemon"

# control: without auto_unmount the killed daemon leaves a dead mount
ctl=()
for a in "${cmd[@]}"; do ctl+=("${a//,auto_unmount/}"); done
start "${ctl[@]}"
wait_for mounted "$m" || fail "control: not mounted"
kill -KILL "$daemon"
wait "$daemon" 2>/dev/null
sleep 0.2
mounted "$m" && ok || fail "control: without auto_unmount the mount went too"
umount -l "$m" 2>/dev/null
finish
