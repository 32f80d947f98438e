#!/usr/bin/env bash
# cmake --install gives what a C programmer needs: svcfs.h, libsvcfs.so.0
# exporting exactly the functions of svcfs.h, libsvcfs.a, and a pkg-config
# file with which a program builds and runs, shared and static.
#   install.sh BUILD-DIR
. "$(dirname "$0")/lib.sh"
build=$1
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 ||
	{ fail "cmake --install: $(tail -3 "$work/install.log")"; finish; exit; }
pc=$(find "$prefix" -name svcfs.pc)
libdir=$(dirname "$(dirname "$pc")")
test -f "$prefix/include/svcfs.h" && ok || fail "svcfs.h not installed"
test -e "$libdir/libsvcfs.so.0" && ok || fail "libsvcfs.so.0 not installed"
test -f "$libdir/libsvcfs.a" && ok || fail "libsvcfs.a not installed"
test -x "$prefix/bin/svcfs" && ok || fail "svcfs not installed"

# the ABI is the header: every function of svcfs.h exported, nothing else
want=$(grep -oE 'svcfs_[a-z_]+\(' "$prefix/include/svcfs.h" | tr -d '(' | sort -u)
have=$(nm -D --defined-only "$libdir/libsvcfs.so.0" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u)
expect_eq "exported symbols = svcfs.h" "$want" "$have"

cat >"$work/prog.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <svcfs.h>
int main(int argc, char **argv)
{
	svcfs_service *s;
	svcfs_dir *d;
	svcfs_info *i;
	struct svcfs_register_opts o = {.dir = argv[1]};
	int r = svcfs_register("p", &o, &s);
	if (r < 0 || svcfs_open(argv[1], &d) < 0 || svcfs_lookup(d, "p", &i) < 0)
		return 1;
	printf("%s %s %s\n", svcfs_version(), svcfs_info_name(i), svcfs_info_state(i));
	svcfs_info_free(i);
	svcfs_close(d);
	svcfs_unregister(s);
	return strcmp(argv[2], svcfs_version()) != 0;
}
C
# a sanitized build installs a sanitized library: its users are built the same way
cflags=(-Wall -Werror)
grep -q '^SVCFS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && cflags+=(-fsanitize=address,undefined)
export PKG_CONFIG_PATH=$libdir/pkgconfig
version=$(pkg-config --modversion svcfs)
expect_match "pkg-config version" '^[0-9]+\.[0-9]+\.[0-9]+$' "$version"
mkdir -p "$work/d"
# shellcheck disable=SC2046
if cc "${cflags[@]}" -o "$work/prog" "$work/prog.c" $(pkg-config --cflags --libs svcfs) 2>"$work/cc.log"; then
	expect_eq "shared: runs" "$version p unknown" "$(LD_LIBRARY_PATH=$libdir "$work/prog" "$work/d" "$version")"
else
	fail "build with pkg-config: $(cat "$work/cc.log")"
fi
# shellcheck disable=SC2046
if cc "${cflags[@]}" -o "$work/prog-static" "$work/prog.c" $(pkg-config --cflags svcfs) \
	"$libdir/libsvcfs.a" $(pkg-config --libs json-c) 2>"$work/cc.log"; then
	expect_eq "static: no libsvcfs.so needed" "" "$(ldd "$work/prog-static" | grep libsvcfs)"
	expect_eq "static: runs" "$version p unknown" "$("$work/prog-static" "$work/d" "$version")"
else
	fail "static build: $(cat "$work/cc.log")"
fi
finish
