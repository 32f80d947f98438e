#!/usr/bin/env bash
# Run every benchmark of tests/bench and print their tables (SPEC §6): what
# svcfs does beside its baselines, measured in the same run. Not a test:
# nothing passes or fails on a figure. As root (it mounts FUSE and tmpfs).
#   scripts/bench.sh [BUILD_DIR] [-- options for svcfs-bench-latency]
# The figures depend on the machine and on what else runs on it: run it on
# an otherwise idle machine. About 10 minutes on 2 vCPUs (and about one more
# for the cluster bench, when etcd is installed).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/build-bench
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
	dir=$1
	shift
fi
[ "${1:-}" = "--" ] && shift
if [ "$(id -u)" -ne 0 ]; then
	echo "bench.sh: run as root (the benchmarks mount FUSE and tmpfs)" >&2
	exit 1
fi
bash "$top/scripts/deps.sh"
bash "$top/scripts/build.sh" "$dir" >/dev/null
echo "== svcfs-bench-latency (event latency: svcfs, D-Bus, plain inotify, a 1 s poller) =="
"$dir/tests/bench/svcfs-bench-latency" "$@"
if [ -x "$dir/tests/bench/svcfs-bench-tree" ]; then
	echo
	echo "== svcfs-bench-tree (walks against tmpfs, churn, memory and CPU) =="
	"$dir/tests/bench/svcfs-bench-tree"
fi
if [ -x "$dir/tests/bench/svcfs-bench-cluster" ]; then
	echo
	echo "== svcfs-bench-cluster (two hosts through etcd: remote appear and crash, beside etcd's put and delete) =="
	if [ -n "${SVCFS_ETCD:-}" ] || command -v etcd >/dev/null; then
		"$dir/tests/bench/svcfs-bench-cluster"
	else
		echo "skipped: etcd is not installed (Debian: etcd-server; or set SVCFS_ETCD)"
	fi
fi
