#!/usr/bin/env bash
# svcfs through mount(8): the build's mount.fuse.svcfs, installed as
# /sbin/mount.fuse.svcfs for the length of the test, makes `mount -t
# fuse.svcfs`, fstab lines (`mount -T FSTAB -a`, `mount -T FSTAB MOUNTPOINT`)
# and `umount` work, sorts the options (drops fstab's and systemd's, passes
# FUSE's and svcfs's, the URLs of an etcd= list each as an option of its own,
# refuses the rest with a line naming the option),
# answers with mount(8)'s exit codes, creates a missing BACKING only with
# `mkdir`, mounts nothing with -f, and mounts in another namespace with -N.
#   mount.sh SVCFS MOUNT.FUSE.SVCFS
. "$(dirname "$0")/lib.sh"
skip_unless_fuse
svcfs=$1
helper_build=$2
for tool in mount umount findmnt unshare nsenter setpriv flock; do
	command -v $tool >/dev/null || { echo "SKIP: no $tool"; exit 77; }
done
mount --help 2>&1 | grep -q -- --fstab || { echo "SKIP: mount(8) without -T/--fstab"; exit 77; }

helper=/sbin/mount.fuse.svcfs
saved=/sbin/.mount.fuse.svcfs.saved-by-svcfs-test
ns_pids=()

# One run at a time: the helper is installed system-wide.
lockdir=/run/lock; [ -d "$lockdir" ] || lockdir=/tmp
exec 9>"$lockdir/svcfs-test-mount-helper.lock"
flock 9

restore() {
	local p m
	# mounts in the namespaces of -N first, then the namespaces' holders
	for p in "${ns_pids[@]}"; do
		for m in $(nsenter -t "$p" -m findmnt -rn -t fuse.svcfs -o TARGET 2>/dev/null |
			grep "^$work/" || true); do
			nsenter -t "$p" -m umount -l "$m" 2>/dev/null
		done
		kill -9 "$p" 2>/dev/null
	done
	rm -f "$helper"
	[ -e "$saved" ] || [ -L "$saved" ] && mv -f "$saved" "$helper"
	cleanup
}
trap restore EXIT

# A helper saved by a run that was killed before it could restore it.
if [ -e "$saved" ] || [ -L "$saved" ]; then
	mv -f "$saved" "$helper"
fi
if [ -e "$helper" ] || [ -L "$helper" ]; then
	mv "$helper" "$saved" || { echo "SKIP: cannot move $helper aside"; exit 77; }
fi
install -m 0755 "$helper_build" "$helper" || { echo "SKIP: cannot install $helper"; exit 77; }
export SVCFS_DAEMON=$svcfs
unset NOTIFY_SOCKET

# The longer waits of a loaded machine (ASan, parallel tests): a bound on a
# failure, not a timed assertion.
wait_long() {
	local i
	for i in $(seq 3000); do
		"$@" 2>/dev/null && return 0
		sleep 0.01
	done
	return 1
}

# The daemon serving BACKING on MOUNTPOINT (its last two arguments), if any.
daemon_pid() {
	local p
	for p in $(pgrep -x "$(basename "$svcfs")"); do
		[ "$( { tr '\0' '\n' <"/proc/$p/cmdline" | tail -2 | tr '\n' ' '; } 2>/dev/null)" = "$1 $2 " ] &&
			[ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$svcfs")" ] &&
			echo "$p" && return 0
	done
	return 1
}

# PID has exited: gone, or a zombie (the daemon is a child of PID 1, which
# reaps in its own time).
exited() {
	local st
	st=$(ps -o stat= -p "$1")
	[ -z "$st" ] || [ "${st:0:1}" = Z ]
}

mounted() { findmnt -rn "$1" >/dev/null 2>&1; }

# nothing_mounted WHAT MOUNTPOINT
nothing_mounted() {
	if mounted "$2"; then
		fail "$1: something was mounted on $2"
		umount -l "$2"
	else
		ok
	fi
}

b=$work/backing
m=$work/mnt
mkdir -p "$b" "$m"
start_service "$b/db.sock"

# --- mount -t fuse.svcfs, then umount -----------------------------------
out=$(mount -t fuse.svcfs "$b" "$m" -o probe_interval=1,allow_other 2>&1); st=$?
expect_eq "mount -t fuse.svcfs: status" 0 "$st"
expect_eq "mount -t fuse.svcfs: silent" "" "$out"
expect_eq "findmnt source and type" "$b fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$m")"
expect_match "allow_other reached the kernel" '(^|,)allow_other(,|$)' "$(findmnt -rn -o OPTIONS "$m")"
expect_eq "a service there before the mount" "alive" "$(cat "$m/db/state" 2>&1)"
start_service "$b/web.sock"
wait_long test -d "$m/web" && ok || fail "a service started after the mount did not appear"
pid=$(daemon_pid "$b" "$m")
expect_match "the daemon runs in the background" '^[0-9]+$' "$pid"
expect_eq "the daemon has its own session" "$pid" "$(ps -o sid= -p "$pid" | tr -d ' ')"
out=$(umount "$m" 2>&1); st=$?
expect_eq "umount: status" 0 "$st"
mounted "$m" && fail "still mounted after umount" || ok
if [ -n "$pid" ]; then
	wait_long exited "$pid" && ok || fail "daemon $pid still running after umount"
fi

# -v: the daemon's command line
out=$(mount -v -t fuse.svcfs "$b" "$m" -o noatime,probe_interval=1,x-svcfs.test=1 2>&1); st=$?
expect_eq "mount -v: status" 0 "$st"
expect_match "mount -v prints the daemon's command line" \
	"^mount\\.fuse\\.svcfs: running $svcfs -o [^ ]*probe_interval=1 $b $m\$" "$out"
expect_match "noatime reached the kernel" '(^|,)noatime(,|$)' "$(findmnt -rn -o OPTIONS "$m")"
umount "$m"

# --- several hosts: etcd=URL,URL ------------------------------------------
# The list splits at its commas like any option list: each URL goes on as an
# option of its own and the daemon joins it to the etcd= before. Nothing
# listens on those ports: etcd down costs nothing local.
status_of() {
	/usr/bin/python3 -c 'import os, sys; print(os.getxattr(sys.argv[1], "user.svcfs.status").decode())' "$1" 2>&1
}
urls='http://127.0.0.1:1,http://127.0.0.1:2'
out=$(mount -v -t fuse.svcfs "$b" "$m" -o "etcd=$urls,host=h1,probe_interval=1" 2>&1); st=$?
expect_eq "two etcd URLs: status" 0 "$st"
expect_match "two etcd URLs: each URL passed on as it is" \
	"^mount\\.fuse\\.svcfs: running $svcfs -o (rw,)?etcd=http://127\\.0\\.0\\.1:1,http://127\\.0\\.0\\.1:2,host=h1,probe_interval=1 $b $m\$" "$out"
status=$(status_of "$m")
expect_match "two etcd URLs: the daemon has both" \
	'"etcd":\{"host":"h1","endpoints":"http://127\.0\.0\.1:1,http://127\.0\.0\.1:2"' "$status"
expect_eq "etcd down: local services are served" "alive" "$(cat "$m/db/state" 2>&1)"
umount "$m"
mkdir -p "$work/m4"
echo "$b  $work/m4  fuse.svcfs  defaults,nofail,etcd=$urls,https://127.0.0.1:3,host=h2,etcd_ttl=3,etcd_prefix=/t,address=10.0.0.9  0 0" \
	>"$work/fstab-etcd"
out=$(mount -T "$work/fstab-etcd" "$work/m4" 2>&1); st=$?
expect_eq "fstab with two etcd URLs: status" 0 "$st"
status=$(status_of "$work/m4")
expect_match "fstab with etcd URLs: the daemon has them all" \
	'"etcd":\{"host":"h2","endpoints":"http://127\.0\.0\.1:1,http://127\.0\.0\.1:2,https://127\.0\.0\.1:3"' "$status"
expect_match "fstab with etcd URLs: etcd_ttl" '"ttl":3,' "$status"
umount "$work/m4" 2>/dev/null

# --- fstab: mount -a, mount MOUNTPOINT ------------------------------------
mkdir -p "$work/m1" "$work/m2" "$work/m3"
cat >"$work/fstab" <<EOF
# svcfs test fstab
$b  $work/m1  fuse.svcfs  defaults,allow_other  0 0
$b  $work/m2  fuse.svcfs  defaults,nofail,_netdev,x-systemd.requires=svcfs-test.service,x-systemd.mount-timeout=30,comment=svcfs-test,probe_interval=0.5  0 0
$b  $work/m3  fuse.svcfs  noauto,user,x-systemd.automount,x-systemd.idle-timeout=60  0 0
EOF
out=$(mount -T "$work/fstab" -a 2>&1); st=$?
expect_eq "mount -a: status" 0 "$st"
expect_eq "mount -a: silent" "" "$out"
expect_eq "mount -a: the defaults line" "$b fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$work/m1")"
expect_eq "mount -a: the nofail,_netdev,x-systemd line" "$b fuse.svcfs" \
	"$(findmnt -rn -o SOURCE,FSTYPE "$work/m2")"
nothing_mounted "mount -a: the noauto line" "$work/m3"
expect_eq "a service in the fstab mount" "alive" "$(cat "$work/m1/db/state" 2>&1)"
out=$(mount -T "$work/fstab" -a 2>&1); st=$?
expect_eq "mount -a again: status" 0 "$st"
expect_eq "mount -a again mounts nothing twice" 2 \
	"$(findmnt -rn -t fuse.svcfs -o TARGET | grep -c "^$work/m[123]$")"
out=$(mount -T "$work/fstab" "$work/m3" 2>&1); st=$?
expect_eq "mount MOUNTPOINT of a noauto line: status" 0 "$st"
expect_eq "mount MOUNTPOINT of a noauto line" "$b fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$work/m3")"
expect_match "user implies noexec" '(^|,)noexec(,|$)' "$(findmnt -rn -o OPTIONS "$work/m3")"
for i in 1 2 3; do
	pid=$(daemon_pid "$b" "$work/m$i") || fail "no daemon serving $work/m$i"
	umount "$work/m$i" || fail "umount $work/m$i"
	[ -n "$pid" ] && { wait_long exited "$pid" && ok || fail "daemon of m$i still running"; }
done

# --- bad options: mount(8)'s 1, a line naming the option, nothing mounted --
# check WHAT STATUS REGEX MOUNT-ARGS...
check() {
	local what=$1 status=$2 regex=$3 err st
	shift 3
	err=$(mount "$@" 2>&1 >/dev/null); st=$?
	expect_eq "$what: status" "$status" "$st"
	expect_match "$what: message" "$regex" "$err"
	expect_eq "$what: one line" 1 "$(printf '%s\n' "$err" | grep -c .)"
	nothing_mounted "$what" "$m"
}
check "bad svcfs value" 1 "probe_interval: 'abc'" -t fuse.svcfs "$b" "$m" -o probe_interval=abc
check "negative grace" 1 "grace: '-1'" -t fuse.svcfs "$b" "$m" -o allow_other,grace=-1
check "unknown option" 1 "unknown option 'bogus'" -t fuse.svcfs "$b" "$m" -o bogus
check "flag with a value" 1 "option 'reap' takes no value" -t fuse.svcfs "$b" "$m" -o reap=yes
check "svcfs option without its value" 1 "option 'poll' needs a value" -t fuse.svcfs "$b" "$m" -o poll
check "fsname" 1 "option 'fsname=x' is not supported" -t fuse.svcfs "$b" "$m" -o fsname=x
check "debug" 1 "option 'debug' is not supported: .*svcfs -f -d" -t fuse.svcfs "$b" "$m" -o debug
check "nosymfollow" 1 "option 'nosymfollow' is not supported" -t fuse.svcfs "$b" "$m" -o nosymfollow
check "read-only" 1 "-o ro is not supported" -t fuse.svcfs -o ro "$b" "$m"
check "bad mkdir mode" 1 "invalid value for mkdir: '999'" -t fuse.svcfs "$b" "$m" -o mkdir=999
check "bad etcd_ttl" 1 "etcd_ttl: '1'" -t fuse.svcfs "$b" "$m" -o etcd=http://127.0.0.1:1,etcd_ttl=1
check "bad etcd URL" 1 "etcd: 'ftp://x'" -t fuse.svcfs "$b" "$m" -o etcd=ftp://x
check "host without etcd" 1 "-o host needs -o etcd" -t fuse.svcfs "$b" "$m" -o host=h
check "a URL without etcd=" 1 "unexpected option 'http://127.0.0.1:1'" \
	-t fuse.svcfs "$b" "$m" -o http://127.0.0.1:1
check "etcd without its value" 1 "option 'etcd' needs a value" -t fuse.svcfs "$b" "$m" -o etcd
# mount failures: 32
check "missing MOUNTPOINT" 32 "MOUNTPOINT $work/nope: No such file or directory" \
	-t fuse.svcfs "$b" "$work/nope"
check "missing BACKING" 32 "BACKING $work/new: No such file or directory" \
	-t fuse.svcfs "$work/new" "$m"
test -e "$work/new" && fail "BACKING created without mkdir" || ok

# -s (sloppy): an unknown option is dropped with a warning
out=$(mount -s -t fuse.svcfs "$b" "$m" -o bogus,probe_interval=1 2>&1); st=$?
expect_eq "sloppy: status" 0 "$st"
expect_match "sloppy: warning" "ignoring option 'bogus'" "$out"
mounted "$m" && ok || fail "sloppy: nothing mounted"
umount "$m" 2>/dev/null

# --- mkdir: create a missing BACKING ---------------------------------------
out=$( (umask 077 && mount -t fuse.svcfs "$work/new" "$m" -o mkdir,probe_interval=1) 2>&1); st=$?
expect_eq "mkdir: status" 0 "$st"
expect_eq "mkdir: root's BACKING is 0755 whatever the umask" "755 root" "$(stat -c '%a %U' "$work/new" 2>&1)"
expect_eq "mkdir: mounted" "$work/new fuse.svcfs" "$(findmnt -rn -o SOURCE,FSTYPE "$m")"
umount "$m"
out=$(mount -t fuse.svcfs "$work/new" "$m" -o mkdir=0700 2>&1); st=$?
expect_eq "mkdir on an existing BACKING: status" 0 "$st"
expect_eq "mkdir leaves an existing BACKING alone" "755" "$(stat -c %a "$work/new")"
umount "$m"
out=$(mount -t fuse.svcfs "$work/new2" "$m" -o mkdir=2750 2>&1); st=$?
expect_eq "mkdir=MODE: status" 0 "$st"
expect_eq "mkdir=MODE: the mode" "2750" "$(stat -c %a "$work/new2" 2>&1)"
umount "$m"
ln -s "$work/elsewhere" "$work/dangling"
check "mkdir through a dangling symlink" 32 "BACKING $work/dangling: it is a dangling symlink" \
	-t fuse.svcfs "$work/dangling" "$m" -o mkdir
test -e "$work/elsewhere" && fail "mkdir followed a dangling symlink" || ok
check "mkdir without a parent" 32 "cannot create BACKING $work/no/such: $work/no" \
	-t fuse.svcfs "$work/no/such" "$m" -o mkdir
# an ordinary user gets 0700 (the daemon stands in: no mount needed to see the mode)
chmod 755 "$work"
mkdir -m 1777 "$work/pub"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env SVCFS_DAEMON=/bin/true \
	"$helper" "$work/pub/mine" "$m" -o mkdir 2>&1); st=$?
expect_eq "mkdir as a user: status" 0 "$st"
expect_eq "mkdir as a user: 0700, the user's" "700 65534" "$(stat -c '%a %u' "$work/pub/mine" 2>&1)"

# --- -f (fake): check the options, do nothing ------------------------------
out=$("$helper" "$b" "$m" -f -o allow_other,probe_interval=1 2>&1); st=$?
expect_eq "fake: status" 0 "$st"
nothing_mounted "fake" "$m"
out=$("$helper" "$work/fake" "$m" -fv -o mkdir,nofail,x-systemd.automount,comment=x,allow_other 2>&1); st=$?
expect_eq "fake -v: status" 0 "$st"
expect_match "fake -v: what it would create" "would create BACKING $work/fake \\(mode 0755\\)" "$out"
expect_match "fake -v: fstab and systemd options dropped" \
	"running $svcfs -o allow_other $work/fake $m\$" "$out"
test -e "$work/fake" && fail "fake created BACKING" || ok
nothing_mounted "fake with mkdir" "$m"
out=$("$helper" "$b" "$m" -f -o bogus 2>&1); st=$?
expect_eq "fake still checks the options" 1 "$st"
out=$(mount -f -t fuse.svcfs "$b" "$m" 2>&1); st=$?
expect_eq "mount -f: status" 0 "$st"
nothing_mounted "mount -f" "$m"

# --- the daemon that runs -------------------------------------------------
out=$(SVCFS_DAEMON=$work/none "$helper" "$b" "$m" 2>&1); st=$?
expect_eq "a daemon that cannot be run: status" 32 "$st"
expect_match "a daemon that cannot be run: message" "cannot run $work/none: No such file" "$out"
if ! findmnt -rn -T "$work" -o OPTIONS | grep -qE '(^|,)nosuid(,|$)'; then
	# setuid: $SVCFS_DAEMON is ignored and the helper runs as its caller
	install -m 4755 "$helper_build" "$work/suid-helper"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups env SVCFS_DAEMON=/bin/true \
		"$work/suid-helper" "$work/pub/suid" "$m" -fv -o mkdir 2>&1)
	expect_match "setuid: SVCFS_DAEMON ignored" "running /[^ ]*/svcfs $work/pub/suid" "$out"
	expect_match "setuid: runs as the caller" "would create BACKING $work/pub/suid \\(mode 0700\\)" "$out"
	rm -f "$work/suid-helper"
fi

# --- -N: another mount namespace --------------------------------------------
unshare -m --propagation private sleep infinity &
ns=$!
disown $ns
ns_pids+=($ns)
other_ns() { [ "$(readlink /proc/$ns/ns/mnt)" != "$(readlink /proc/$$/ns/mnt)" ]; }
wait_long other_ns || fail "unshare made no namespace"
out=$(mount -N "$ns" -t fuse.svcfs "$b" "$m" 2>&1); st=$?
expect_eq "mount -N: status" 0 "$st"
nothing_mounted "mount -N: not in our namespace" "$m"
expect_eq "mount -N: in that namespace" "$b fuse.svcfs" \
	"$(nsenter -t "$ns" -m findmnt -rn -o SOURCE,FSTYPE "$m")"
pid=$(daemon_pid "$b" "$m") || fail "no daemon serving $m in that namespace"
nsenter -t "$ns" -m umount "$m"
expect_eq "umount in that namespace" 0 "$?"
[ -n "$pid" ] && { wait_long exited "$pid" && ok || fail "daemon of -N still running"; }

finish
