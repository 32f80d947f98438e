#!/usr/bin/env bash
# Install what building, running and testing svcfs needs on Debian 12, if missing.
set -euo pipefail

pkgs=(build-essential cmake pkg-config fuse3 libfuse3-dev libjson-c-dev uthash-dev
      libcriterion-dev attr inotify-tools python3 util-linux procps
      clang libclang-rt-dev llvm # libFuzzer targets (tests/fuzz), symbolised reports
      valgrind                   # the integration suites under memcheck (tests/valgrind)
      dbus-daemon libdbus-1-dev  # the D-Bus baseline of the benchmarks (tests/bench)
      etcd-server libcurl4-openssl-dev) # the etcd client of multi-host (fs/etcd.c, tests/etcd)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
