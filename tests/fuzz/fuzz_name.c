/*
 * libFuzzer target for the name rules (lib/name.c): every backing file name
 * goes through them, and any local user chooses those names.
 *
 * Each function is compared with an oracle written from its documented
 * contract (svcfs-internal.h, README "What counts as a service"), and the
 * functions with one another:
 * - svcfs_name_split: stem length <= length, a suffix only after a
 *   non-empty stem, and the suffix really there;
 * - svcfs_name_tokens: pid and port in range, equal to a token-by-token
 *   reading of the name (fields between '-', '_', '.');
 * - svcfs_name_safe_key: the rule as written; a safe key is a valid
 *   one-component service name (strict and lenient);
 * - svcfs_name_path_check: component by component, strict ok => lenient ok
 *   with the same count; *ret_ncomp untouched on failure;
 * - svcfs_name_hidden.
 * The input is used twice: as LEN bytes (safe_key) and up to its first NUL
 * as a C string (everything else).
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "svcfs-internal.h"

#define PID_MAX  4194304L
#define PORT_MAX 65535L

static bool ref_safe_key(const char *key, size_t len)
{
	if (len < 1 || len > 255 || key[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c == '/' || c == 0x7f || c <= 0x1f)
			return false;
	}
	return true;
}

/* One component of a service name, as path_check takes it. */
static bool ref_component_ok(const char *comp, size_t len, bool strict)
{
	if (strict)
		return ref_safe_key(comp, len);
	return len >= 1 && len <= 255 && comp[0] != '.';
}

/* -EINVAL, or 0 and the number of components. */
static int ref_path_check(const char *name, bool strict, size_t *ret_ncomp)
{
	size_t n = 0, start = 0, len = strlen(name);

	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '/')
			continue;
		if (!ref_component_ok(name + start, i - start, strict))
			return -EINVAL;
		n++;
		start = i + 1;
	}
	if (n > 9) /* NAME below at most 8 groups */
		return -EINVAL;
	*ret_ncomp = n;
	return 0;
}

/*
 * The value of field FIELD (LEN bytes) if it is KEY followed by one or more
 * digits, in [1, MAX]; else 0.
 */
static long ref_token(const char *field, size_t len, const char *key, long max)
{
	size_t kl = strlen(key);
	long v = 0;

	if (len <= kl || memcmp(field, key, kl) != 0)
		return 0;
	for (size_t i = kl; i < len; i++) {
		if (field[i] < '0' || field[i] > '9')
			return 0;
		if (v <= max) /* past max it stays past max */
			v = v * 10 + (field[i] - '0');
	}
	return v >= 1 && v <= max ? v : 0;
}

static void ref_tokens(const char *name, struct svcfs_tokens *ret)
{
	size_t len = strlen(name), start = 0;

	ret->pid = ret->port = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && name[i] != '-' && name[i] != '_' && name[i] != '.')
			continue;
		if (!ret->pid)
			ret->pid = ref_token(name + start, i - start, "pid", PID_MAX);
		if (!ret->port)
			ret->port = ref_token(name + start, i - start, "port", PORT_MAX);
		start = i + 1;
	}
}

static void check_split(const char *name)
{
	static const struct {
		const char *text;
		enum svcfs_suffix kind;
	} suffixes[] = {
	    {".sock", SVCFS_SUFFIX_SOCK},
	    {".json", SVCFS_SUFFIX_JSON},
	    {".lock", SVCFS_SUFFIX_LOCK},
	    {".pid", SVCFS_SUFFIX_PID},
	};
	size_t len = strlen(name), stem = (size_t)-1;
	enum svcfs_suffix kind = svcfs_name_split(name, &stem), want = SVCFS_SUFFIX_NONE;
	size_t want_stem = len;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = strlen(suffixes[i].text);
		if (len > sl && strcmp(name + len - sl, suffixes[i].text) == 0) {
			want = suffixes[i].kind;
			want_stem = len - sl;
		}
	}
	CHECK(stem <= len, "stem %zu of a %zu-byte name", stem, len);
	CHECK(kind == want && stem == want_stem, "split gave %d/%zu, want %d/%zu", (int)kind, stem,
	      (int)want, want_stem);
	CHECK(kind == SVCFS_SUFFIX_NONE || stem >= 1, "suffix with an empty stem");
}

static void check_tokens(const char *name)
{
	struct svcfs_tokens got, want;

	svcfs_name_tokens(name, &got);
	ref_tokens(name, &want);
	CHECK(got.pid >= 0 && got.pid <= PID_MAX, "pid %ld", got.pid);
	CHECK(got.port >= 0 && got.port <= PORT_MAX, "port %ld", got.port);
	CHECK(got.pid == want.pid && got.port == want.port, "tokens pid %ld port %ld, want %ld %ld",
	      got.pid, got.port, want.pid, want.port);
}

static void check_path(const char *name)
{
	size_t strict_n = 12345, lenient_n = 12345, want_n = 0;
	int strict = svcfs_name_path_check(name, true, &strict_n);
	int lenient = svcfs_name_path_check(name, false, &lenient_n);
	int want;

	CHECK(svcfs_name_path_check(name, true, NULL) == strict,
	      "NULL ret_ncomp changes the answer");
	CHECK(strict == 0 || strict == -EINVAL, "strict %d", strict);
	CHECK(lenient == 0 || lenient == -EINVAL, "lenient %d", lenient);
	CHECK(strict != 0 || lenient == 0, "strict ok but lenient refuses");
	CHECK(strict == 0 || strict_n == 12345, "ret_ncomp written on failure");
	CHECK(lenient == 0 || lenient_n == 12345, "ret_ncomp written on failure");
	if (strict == 0 && lenient == 0)
		CHECK(strict_n == lenient_n, "strict %zu components, lenient %zu", strict_n,
		      lenient_n);

	want = ref_path_check(name, true, &want_n);
	CHECK(strict == want && (want != 0 || strict_n == want_n),
	      "strict check %d (%zu), want %d (%zu)", strict, strict_n, want, want_n);
	want = ref_path_check(name, false, &want_n);
	CHECK(lenient == want && (want != 0 || lenient_n == want_n),
	      "lenient check %d (%zu), want %d (%zu)", lenient, lenient_n, want, want_n);
	if (lenient == 0)
		CHECK(lenient_n >= 1 && lenient_n <= SVCFS_GROUP_DEPTH_MAX + 1, "%zu components",
		      lenient_n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = malloc(size + 1);
	bool safe;

	CHECK(name != NULL, "malloc");
	memcpy(name, data, size);
	name[size] = '\0';

	/* LEN bytes, NULs and all */
	safe = svcfs_name_safe_key((const char *)data, size);
	CHECK(safe == ref_safe_key((const char *)data, size), "safe_key says %d", (int)safe);
	if (safe) {
		size_t n = 0;
		CHECK(strlen(name) == size, "a safe key with a NUL");
		CHECK(svcfs_name_path_check(name, true, &n) == 0 && n == 1,
		      "safe key, not a strict one-component name");
		CHECK(svcfs_name_path_check(name, false, &n) == 0 && n == 1,
		      "safe key, not a lenient one-component name");
		CHECK(!svcfs_name_hidden(name), "safe key is hidden");
	}

	/* the C string */
	CHECK(svcfs_name_hidden(name) == (name[0] == '\0' || name[0] == '.'), "hidden");
	check_split(name);
	check_tokens(name);
	check_path(name);
	free(name);
	return 0;
}
