#!/usr/bin/env bash
# The man pages: every docs/man page renders without a warning (groff -ww,
# and man(1) itself), has NAME, SYNOPSIS and DESCRIPTION, a NAME line that
# whatis/apropos can read, and a title that matches its file name; and
# `cmake --install` puts every page in MANDIR/manN by its section.
#   man.sh DOCS-MAN-DIR BUILD-DIR
. "$(dirname "$0")/lib.sh"
dir=$1
build=$2
command -v groff >/dev/null || { echo "SKIP: no groff"; exit 77; }

pages=("$dir"/*.[1-8])
[ -e "${pages[0]}" ] || { fail "no man pages in $dir"; finish; exit; }
for page in "${pages[@]}"; do
	name=$(basename "$page")
	out=$(groff -man -ww -z "$page" 2>&1); st=$?
	expect_eq "$name: groff status" 0 "$st"
	expect_eq "$name: groff warnings" "" "$out"
	if command -v man >/dev/null; then
		out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		expect_eq "$name: man warnings" "" "$out"
	fi
	for section in NAME SYNOPSIS DESCRIPTION; do
		grep -qx "\\.SH \"\\?$section\"\\?" "$page" && ok || fail "$name: no $section section"
	done
	# .TH TITLE SECTION: the file is TITLE.SECTION (title in capitals by custom)
	expect_eq "$name: .TH matches the file name" "$name" \
		"$(awk '$1 == ".TH" {print tolower($2) "." $3; exit}' "$page")"
	if command -v lexgrog >/dev/null; then
		expect_match "$name: whatis line" "^$page: \"${name%.*} \\\\?- " "$(lexgrog "$page" 2>&1)"
	fi
done

# cmake --install: every page, by section
prefix=$work/prefix
if cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
	mandir=$(find "$prefix" -type d -name man -path '*/share/man' | head -1)
	for page in "${pages[@]}"; do
		name=$(basename "$page")
		cmp -s "$page" "$mandir/man${name##*.}/$name" && ok ||
			fail "cmake --install: $name not in ${mandir:-MANDIR}/man${name##*.}"
	done
else
	fail "cmake --install: $(tail -3 "$work/install.log")"
fi
finish
