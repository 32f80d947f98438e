#!/usr/bin/env bash
# svcfs command line: help, version, and a clear error (naming the path or
# option and the reason) with the right exit status for every bad input.
. "$(dirname "$0")/lib.sh"
svcfs=$1

mkdir -p "$work/b" "$work/m"
touch "$work/file"

out=$("$svcfs" --version 2>&1); st=$?
expect_eq "--version status" 0 "$st"
expect_match "--version output" '^svcfs [0-9]+\.[0-9]+\.[0-9]+' "$out"

out=$("$svcfs" --help 2>&1); st=$?
expect_eq "--help status" 0 "$st"
expect_match "--help lists svcfs options" 'probe_interval=SECONDS' "$out"
expect_match "--help shows usage" 'BACKING MOUNTPOINT' "$out"
expect_match "--help lists the etcd options" 'etcd=URL' "$out"
expect_match "--help lists etcd_ttl" 'etcd_ttl=SECONDS' "$out"

# check ARGS... : expect exit STATUS and one stderr line matching REGEX, nothing mounted
check() {
	local what=$1 status=$2 regex=$3
	shift 3
	local err st
	err=$("$svcfs" "$@" 2>&1 >/dev/null); st=$?
	expect_eq "$what: exit status" "$status" "$st"
	expect_match "$what: message" "$regex" "$err"
	if findmnt -rn "$work/m" >/dev/null 2>&1; then
		fail "$what: something was mounted"
		umount -l "$work/m"
	else
		ok
	fi
}

check "no arguments" 2 'missing BACKING' 
check "no mountpoint" 2 'missing MOUNTPOINT' "$work/b"
check "missing BACKING" 1 "BACKING $work/nope: No such file or directory" "$work/nope" "$work/m"
check "BACKING is a file" 1 "BACKING $work/file: Not a directory" "$work/file" "$work/m"
check "missing MOUNTPOINT" 1 "MOUNTPOINT $work/nope: No such file or directory" "$work/b" "$work/nope"
check "MOUNTPOINT is a file" 1 "MOUNTPOINT $work/file: Not a directory" "$work/b" "$work/file"
mkdir -p "$work/b/inner"
check "MOUNTPOINT inside BACKING" 1 "must not be inside BACKING" "$work/b" "$work/b/inner"
check "unknown option" 2 "bogus" -o bogus "$work/b" "$work/m"
check "bad probe_interval" 2 "probe_interval: 'abc'" -o probe_interval=abc "$work/b" "$work/m"
check "negative grace" 2 "grace: '-1'" -o grace=-1 "$work/b" "$work/m"
check "zero max_services" 2 "max_services: '0'" -o max_services=0 "$work/b" "$work/m"
check "bad etcd_ttl" 2 "etcd_ttl: '1'" -o etcd=http://127.0.0.1:1,etcd_ttl=1 "$work/b" "$work/m"
check "etcd_ttl not a number" 2 "etcd_ttl: 'abc'" -o etcd=http://127.0.0.1:1,etcd_ttl=abc "$work/b" "$work/m"
check "empty etcd" 2 "-o etcd" -o etcd= "$work/b" "$work/m"
check "etcd not http" 2 "etcd: 'ftp://x'" -o etcd=ftp://x "$work/b" "$work/m"
check "bad host" 2 "host: 'a/b'" -o etcd=http://127.0.0.1:1,host=a/b "$work/b" "$work/m"
check "bad address" 2 "address: 'a b'" -o "etcd=http://127.0.0.1:1,address=a b" "$work/b" "$work/m"
check "bad etcd_prefix" 2 "etcd_prefix: 'x'" -o etcd=http://127.0.0.1:1,etcd_prefix=x "$work/b" "$work/m"
check "host without etcd" 2 "-o host needs -o etcd" -o host=h "$work/b" "$work/m"
check "a URL without etcd=" 2 "unexpected option 'http://127.0.0.1:1'" -o http://127.0.0.1:1 "$work/b" "$work/m"
check "read-only mount" 2 "-o ro is not supported" -o ro "$work/b" "$work/m"
check "single-threaded" 2 "-s is not supported" -s "$work/b" "$work/m"
check "three paths" 2 "unexpected argument .*x. after MOUNTPOINT" "$work/b" "$work/m" "$work/x"

if [ "$(id -u)" -ne 0 ]; then
	mkdir -p "$work/closed" && chmod 000 "$work/closed"
	check "unreadable BACKING" 1 "Permission denied" "$work/closed" "$work/m"
fi
finish
