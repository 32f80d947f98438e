/*
 * Unit tests for lib/sidecar.c: strict, bounded parsing of NAME.json
 * (size, depth, keys, UTF-8, NUL, one object and nothing after it), safe
 * reading (no symlink, no blocking on a FIFO, owner check, size check) and
 * the merge of file-name tokens into the metadata.
 *
 * Each test that touches files gets a fresh mkdtemp directory, removed in
 * .fini.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcfs-internal.h"

/* ---- helpers ---- */

/* Stands for "not written": never dereferenced. */
static char sentinel_byte;
#define SENTINEL ((json_object *)&sentinel_byte)

/* Parse the NUL-terminated S; returns the error and keeps the object in *ret. */
static int parse(const char *s, json_object **ret, const char **ret_why)
{
	return svcfs_sidecar_parse(s, strlen(s), ret, ret_why);
}

/* S must be refused with ERR, leaving the out-param alone and giving a reason. */
static void check_refused(const char *s, size_t len, int err, const char *what)
{
	json_object *obj = SENTINEL;
	const char *why = NULL;
	int r = svcfs_sidecar_parse(s, len, &obj, &why);
	bool written = obj != SENTINEL;

	if (written)
		json_object_put(obj); /* accepted after all: do not leak it */
	cr_assert_eq(r, err, "%s: got %d (%s), expected %d", what, r, why ? why : "-", err);
	cr_assert_not(written, "%s: ret_obj written on failure", what);
	cr_assert_not_null(why, "%s: no reason given", what);
}

static void check_refused_str(const char *s, int err, const char *what)
{
	check_refused(s, strlen(s), err, what);
}

static void check_accepted(const char *s, size_t len, const char *what)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r = svcfs_sidecar_parse(s, len, &obj, &why);

	cr_assert_eq(r, 0, "%s: refused with %d (%s)", what, r, why ? why : "-");
	cr_assert(json_object_is_type(obj, json_type_object), "%s: not an object", what);
	json_object_put(obj);
}

/* {"a": OPEN^n INNER CLOSE^n}: 1 + n (+1 when INNER is a container) levels. */
static char *nested(int n, const char *open, const char *inner, const char *close)
{
	size_t cap = 16 + (size_t)n * (strlen(open) + strlen(close)) + strlen(inner);
	char *s = malloc(cap);

	cr_assert_not_null(s);
	strcpy(s, "{\"a\":");
	for (int i = 0; i < n; i++)
		strcat(s, open);
	strcat(s, inner);
	for (int i = 0; i < n; i++)
		strcat(s, close);
	strcat(s, "}");
	return s;
}

/* An object with N keys "k0".."kN-1". */
static char *object_with_keys(int n)
{
	char *s = malloc(16 + (size_t)n * 16);
	size_t len = 0;

	cr_assert_not_null(s);
	s[len++] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)sprintf(s + len, "%s\"k%d\":%d", i ? "," : "", i, i);
	s[len++] = '}';
	s[len] = '\0';
	return s;
}

/* A valid object of exactly LEN bytes: {"a":"xxx…"} */
static char *object_of_size(size_t len)
{
	char *s = malloc(len + 1);

	cr_assert_not_null(s);
	cr_assert_geq(len, 8);
	memcpy(s, "{\"a\":\"", 6);
	memset(s + 6, 'x', len - 8);
	memcpy(s + len - 2, "\"}", 2);
	s[len] = '\0';
	return s;
}

/* ---- parse: accepted input ---- */

Test(sidecar_parse, object)
{
	json_object *obj = NULL, *v = NULL;
	const char *why = NULL;
	int r = parse("{\"version\":\"1.2.3\",\"port\":8080,\"x\":{\"y\":[1,2]}}", &obj, &why);

	cr_assert_eq(r, 0, "refused: %s", why);
	cr_assert(json_object_object_get_ex(obj, "version", &v));
	cr_assert_str_eq(json_object_get_string(v), "1.2.3");
	cr_assert(json_object_object_get_ex(obj, "port", &v));
	cr_assert_eq(json_object_get_int(v), 8080);
	cr_assert_eq(json_object_object_length(obj), 3);
	json_object_put(obj);
}

Test(sidecar_parse, surrounding_white_space)
{
	check_accepted(" \t\r\n{}\n\n", 8, "white space around");
	check_accepted("{\"a\":1}\n", 8, "trailing newline");
}

Test(sidecar_parse, valid_utf8)
{
	const char *s = "{\"\xc3\xa9t\xc3\xa9\":\"\xe2\x82\xac \xf0\x9f\x98\x80\"}";

	check_accepted(s, strlen(s), "multibyte UTF-8");
}

Test(sidecar_parse, only_len_bytes_are_read)
{
	/* what follows LEN is not part of the sidecar */
	check_accepted("{\"a\":1}garbage", 7, "len stops before garbage");
}

/* ---- parse: not one object ---- */

Test(sidecar_parse, empty_and_blank)
{
	check_refused("", 0, -EINVAL, "empty");
	check_refused_str("   \n", -EINVAL, "blank");
}

Test(sidecar_parse, truncated)
{
	check_refused_str("{", -EINVAL, "open brace");
	check_refused_str("{\"a\":", -EINVAL, "missing value");
	check_refused_str("{\"a\":\"x", -EINVAL, "open string");
}

Test(sidecar_parse, non_object)
{
	check_refused_str("[]", -EINVAL, "array");
	check_refused_str("[1,2]", -EINVAL, "array of numbers");
	check_refused_str("\"s\"", -EINVAL, "string");
	check_refused_str("1", -EINVAL, "number");
	check_refused_str("1.5 ", -EINVAL, "number with space");
	check_refused_str("true", -EINVAL, "boolean");
	check_refused_str("null", -EINVAL, "null");
	check_refused_str("null\n", -EINVAL, "null with newline");
}

Test(sidecar_parse, trailing_text)
{
	check_refused_str("{} x", -EINVAL, "word after");
	check_refused_str("{}{}", -EINVAL, "two objects");
	check_refused_str("{}\n{}", -EINVAL, "two objects on two lines");
	check_refused_str("{},", -EINVAL, "comma after");
	check_refused_str("{}]", -EINVAL, "bracket after");
}

Test(sidecar_parse, nul_byte)
{
	check_refused("{}\0", 3, -EINVAL, "NUL after the object");
	check_refused("{\"a\":\"x\0y\"}", 11, -EINVAL, "NUL inside a string");
	check_refused("\0{}", 3, -EINVAL, "NUL before the object");
}

/* ---- parse: strict JSON ---- */

Test(sidecar_parse, strict_rejects_common_extensions)
{
	check_refused_str("{\"a\":1,}", -EINVAL, "trailing comma");
	check_refused_str("{/*c*/\"a\":1}", -EINVAL, "comment");
	check_refused_str("{\"a\":1}//c", -EINVAL, "line comment");
	check_refused_str("{a:1}", -EINVAL, "unquoted key");
	check_refused_str("{\"a\":'x'}", -EINVAL, "single-quoted value");
	check_refused_str("{\"a\":01}", -EINVAL, "leading zero");
	check_refused_str("{\"a\":0x10}", -EINVAL, "hex number");
	check_refused_str("{\"a\":TRUE}", -EINVAL, "upper-case literal");
	check_refused_str("{\"a\":\"\\q\"}", -EINVAL, "bad escape");
	check_refused_str("\xef\xbb\xbf{}", -EINVAL, "byte order mark");
}

/* BUG: json-c's strict mode still takes a single-quoted key. */
Test(sidecar_parse, strict_rejects_single_quoted_key)
{
	check_refused_str("{'a':1}", -EINVAL, "single-quoted key");
}

/*
 * BUG: NaN and Infinity are not JSON; accepted, they come out of
 * json_object_to_json_string as bare NaN/Infinity and make meta.json and
 * .services.json invalid JSON.
 */
Test(sidecar_parse, strict_rejects_nan_and_infinity)
{
	check_refused_str("{\"a\":NaN}", -EINVAL, "NaN");
	check_refused_str("{\"a\":Infinity}", -EINVAL, "Infinity");
	check_refused_str("{\"a\":-Infinity}", -EINVAL, "-Infinity");
}

/* BUG: RFC 8259 §7: control characters must be escaped inside strings. */
Test(sidecar_parse, strict_rejects_raw_control_characters_in_strings)
{
	check_refused_str("{\"a\":\"x\x01y\"}", -EINVAL, "raw U+0001 in a value");
	check_refused_str("{\"a\":\"x\ty\"}", -EINVAL, "raw tab in a value");
	check_refused_str("{\"a\x1f\":1}", -EINVAL, "raw U+001F in a key");
}

/* ---- parse: UTF-8 ---- */

Test(sidecar_parse, invalid_utf8_bytes)
{
	check_refused_str("{\"a\":\"\xff\"}", -EINVAL, "0xff");
	check_refused_str("{\"a\":\"\x80\"}", -EINVAL, "lone continuation byte");
	check_refused_str("{\"a\":\"\xc3\"}", -EINVAL, "truncated sequence");
	check_refused_str("{\"\xfe\":1}", -EINVAL, "invalid byte in a key");
}

/*
 * BUG: json-c's UTF-8 check only looks at the byte pattern: overlong forms,
 * UTF-16 surrogates and code points past U+10FFFF pass, and reach meta.json
 * and .services.json unchanged (json-c writes them back raw).
 */
Test(sidecar_parse, invalid_utf8_overlong)
{
	check_refused_str("{\"a\":\"\xc0\x80\"}", -EINVAL, "overlong NUL C0 80");
	check_refused_str("{\"a\":\"\xc0\xaf\"}", -EINVAL, "overlong '/' C0 AF");
	check_refused_str("{\"a\":\"\xe0\x80\xaf\"}", -EINVAL, "overlong '/' E0 80 AF");
}

Test(sidecar_parse, invalid_utf8_surrogate)
{
	check_refused_str("{\"a\":\"\xed\xa0\x80\"}", -EINVAL, "U+D800 as UTF-8");
	check_refused_str("{\"a\":\"\xed\xbf\xbf\"}", -EINVAL, "U+DFFF as UTF-8");
}

Test(sidecar_parse, invalid_utf8_beyond_max)
{
	check_refused_str("{\"a\":\"\xf4\x90\x80\x80\"}", -EINVAL, "U+110000");
	check_refused_str("{\"a\":\"\xf5\x80\x80\x80\"}", -EINVAL, "lead byte F5");
}

/* ---- parse: limits ---- */

Test(sidecar_parse, size_limit)
{
	char *ok = object_of_size(SVCFS_SIDECAR_MAX);
	char *big = object_of_size(SVCFS_SIDECAR_MAX + 1);

	check_accepted(ok, SVCFS_SIDECAR_MAX, "exactly 64 KiB");
	check_refused(big, SVCFS_SIDECAR_MAX + 1, -EFBIG, "64 KiB + 1");
	free(ok);
	free(big);
}

Test(sidecar_parse, size_limit_counts_white_space)
{
	char *s = malloc(SVCFS_SIDECAR_MAX + 2);

	cr_assert_not_null(s);
	memcpy(s, "{}", 2);
	memset(s + 2, ' ', SVCFS_SIDECAR_MAX - 1);
	check_refused(s, SVCFS_SIDECAR_MAX + 1, -EFBIG, "{} and white space past 64 KiB");
	free(s);
}

Test(sidecar_parse, depth_limit_scalar_inside)
{
	/* {"a":[[…[1]…]]}: the object and n arrays are n + 1 levels */
	char *ok = nested(SVCFS_SIDECAR_DEPTH - 1, "[", "1", "]");
	char *deep = nested(SVCFS_SIDECAR_DEPTH, "[", "1", "]");
	char *ok_obj = nested(SVCFS_SIDECAR_DEPTH - 1, "{\"b\":", "1", "}");
	char *deep_obj = nested(SVCFS_SIDECAR_DEPTH, "{\"b\":", "1", "}");

	check_accepted(ok, strlen(ok), "16 levels of arrays");
	check_refused_str(deep, -E2BIG, "17 levels of arrays");
	check_accepted(ok_obj, strlen(ok_obj), "16 levels of objects");
	check_refused_str(deep_obj, -E2BIG, "17 levels of objects");
	free(ok);
	free(deep);
	free(ok_obj);
	free(deep_obj);
}

/*
 * BUG: an empty innermost container is not counted: 17 levels whose last
 * is [] or {} are accepted, one more than SVCFS_SIDECAR_DEPTH.
 */
Test(sidecar_parse, depth_limit_empty_container_inside)
{
	char *ok = nested(SVCFS_SIDECAR_DEPTH - 2, "[", "[]", "]");
	char *deep = nested(SVCFS_SIDECAR_DEPTH - 1, "[", "[]", "]");
	char *deep_obj = nested(SVCFS_SIDECAR_DEPTH - 1, "{\"b\":", "{}", "}");

	check_accepted(ok, strlen(ok), "16 levels, the last an empty array");
	check_refused_str(deep, -E2BIG, "17 levels, the last an empty array");
	check_refused_str(deep_obj, -E2BIG, "17 levels, the last an empty object");
	free(ok);
	free(deep);
	free(deep_obj);
}

Test(sidecar_parse, keys_limit)
{
	char *ok = object_with_keys(SVCFS_SIDECAR_KEYS_MAX);
	char *many = object_with_keys(SVCFS_SIDECAR_KEYS_MAX + 1);

	check_accepted(ok, strlen(ok), "256 keys");
	check_refused_str(many, -E2BIG, "257 keys");
	free(ok);
	free(many);
}

Test(sidecar_parse, keys_limit_is_top_level_only)
{
	/* 300 keys one level down are fine: only top-level keys become files */
	char *inner = object_with_keys(300);
	char *s = malloc(strlen(inner) + 16);

	cr_assert_not_null(s);
	sprintf(s, "{\"x\":%s}", inner);
	check_accepted(s, strlen(s), "300 nested keys");
	free(inner);
	free(s);
}

/* ---- read ---- */

static char tmpdir[64];
static int dirfd_ = -1;

static void dir_setup(void)
{
	strcpy(tmpdir, "/tmp/svcfs-unit-sidecar-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	dirfd_ = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dirfd_, 0);
}

static void dir_teardown(void)
{
	DIR *d;
	struct dirent *de;

	if (dirfd_ < 0)
		return;
	d = fdopendir(dup(dirfd_));
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd_, de->d_name, 0);
	if (d)
		closedir(d);
	close(dirfd_);
	dirfd_ = -1;
	rmdir(tmpdir);
}

TestSuite(sidecar_read, .init = dir_setup, .fini = dir_teardown, .timeout = 10);

static void write_file(const char *name, const void *data, size_t len, uid_t uid)
{
	int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ssize_t n;

	cr_assert_geq(fd, 0, "create %s: %s", name, strerror(errno));
	n = write(fd, data, len);
	cr_assert_eq(n, (ssize_t)len);
	if (uid != 0) {
		int r = fchown(fd, uid, uid);
		cr_assert_eq(r, 0, "fchown: %s", strerror(errno));
	}
	close(fd);
}

static void write_str(const char *name, const char *data, uid_t uid)
{
	write_file(name, data, strlen(data), uid);
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to give a file to another user");
}

static void check_read_refused(const char *name, uid_t trusted, int err, const char *what)
{
	json_object *obj = SENTINEL;
	struct stat st = {.st_ino = 4242};
	const char *why = NULL;
	int r = svcfs_sidecar_read(dirfd_, name, trusted, &obj, &st, &why);
	bool written = obj != SENTINEL;

	if (written)
		json_object_put(obj);
	cr_assert_eq(r, err, "%s: got %d (%s), expected %d", what, r, why ? why : "-", err);
	cr_assert_not(written, "%s: ret_obj written on failure", what);
	cr_assert_eq(st.st_ino, 4242, "%s: ret_st written on failure", what);
	cr_assert_not_null(why, "%s: no reason", what);
}

Test(sidecar_read, regular_file)
{
	json_object *obj = NULL, *v = NULL;
	struct stat st = {0}, ref;
	const char *why = NULL;
	int r;

	write_str("web.json", "{\"version\":\"2\"}\n", 0);
	r = svcfs_sidecar_read(dirfd_, "web.json", 1000, &obj, &st, &why);
	cr_assert_eq(r, 0, "refused: %s", why);
	cr_assert(json_object_object_get_ex(obj, "version", &v));
	cr_assert_str_eq(json_object_get_string(v), "2");
	r = fstatat(dirfd_, "web.json", &ref, 0);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, ref.st_ino, "ret_st is the file's stat");
	cr_assert_eq(st.st_size, ref.st_size);
	json_object_put(obj);
}

Test(sidecar_read, ret_st_may_be_null)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r;

	write_str("web.json", "{}", 0);
	r = svcfs_sidecar_read(dirfd_, "web.json", 0, &obj, NULL, &why);
	cr_assert_eq(r, 0, "refused: %s", why);
	json_object_put(obj);
}

Test(sidecar_read, missing)
{
	check_read_refused("nope.json", 0, -ENOENT, "missing file");
}

Test(sidecar_read, symlink_refused)
{
	int r;

	write_str("real.json", "{\"a\":1}", 0);
	r = symlinkat("real.json", dirfd_, "web.json");
	cr_assert_eq(r, 0);
	check_read_refused("web.json", 0, -EINVAL, "symlink to a valid sidecar");
}

Test(sidecar_read, dangling_symlink_refused)
{
	int r = symlinkat("/nonexistent/x.json", dirfd_, "web.json");

	cr_assert_eq(r, 0);
	check_read_refused("web.json", 0, -EINVAL, "dangling symlink");
}

/* A FIFO with no writer would block open(2) and read(2): the timeout catches that. */
Test(sidecar_read, fifo_refused_without_blocking)
{
	int r = mkfifoat(dirfd_, "web.json", 0644);

	cr_assert_eq(r, 0, "mkfifo: %s", strerror(errno));
	check_read_refused("web.json", 0, -EINVAL, "FIFO");
}

Test(sidecar_read, directory_refused)
{
	int r = mkdirat(dirfd_, "web.json", 0755);

	cr_assert_eq(r, 0);
	check_read_refused("web.json", 0, -EINVAL, "directory");
	unlinkat(dirfd_, "web.json", AT_REMOVEDIR);
}

Test(sidecar_read, owned_by_another_user_refused)
{
	need_root();
	write_str("web.json", "{\"a\":1}", 12345);
	check_read_refused("web.json", 1000, -EPERM, "owned by uid 12345, socket by 1000");
	check_read_refused("web.json", 0, -EPERM, "owned by uid 12345, socket by root");
}

Test(sidecar_read, owned_by_socket_owner_accepted)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r;

	need_root();
	write_str("web.json", "{\"a\":1}", 12345);
	r = svcfs_sidecar_read(dirfd_, "web.json", 12345, &obj, NULL, &why);
	cr_assert_eq(r, 0, "refused: %s", why);
	json_object_put(obj);
}

Test(sidecar_read, owned_by_root_accepted)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r;

	need_root();
	write_str("web.json", "{\"a\":1}", 0);
	r = svcfs_sidecar_read(dirfd_, "web.json", 12345, &obj, NULL, &why);
	cr_assert_eq(r, 0, "refused: %s", why);
	json_object_put(obj);
}

Test(sidecar_read, too_large)
{
	char *big = object_of_size(SVCFS_SIDECAR_MAX + 1);

	write_file("web.json", big, SVCFS_SIDECAR_MAX + 1, 0);
	check_read_refused("web.json", 0, -EFBIG, "64 KiB + 1");
	free(big);
}

Test(sidecar_read, sparse_huge_file_refused)
{
	int fd = openat(dirfd_, "web.json", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	int r;

	cr_assert_geq(fd, 0);
	r = ftruncate(fd, (off_t)1 << 40);
	close(fd);
	cr_assert_eq(r, 0);
	check_read_refused("web.json", 0, -EFBIG, "1 TiB sparse file");
}

Test(sidecar_read, exactly_max_accepted)
{
	char *ok = object_of_size(SVCFS_SIDECAR_MAX);
	json_object *obj = NULL;
	const char *why = NULL;
	int r;

	write_file("web.json", ok, SVCFS_SIDECAR_MAX, 0);
	r = svcfs_sidecar_read(dirfd_, "web.json", 0, &obj, NULL, &why);
	cr_assert_eq(r, 0, "refused: %s", why);
	json_object_put(obj);
	free(ok);
}

Test(sidecar_read, malformed)
{
	write_str("web.json", "{\"a\":", 0);
	check_read_refused("web.json", 0, -EINVAL, "truncated JSON");
	write_str("web.json", "[1]", 0);
	check_read_refused("web.json", 0, -EINVAL, "array");
	write_str("web.json", "", 0);
	check_read_refused("web.json", 0, -EINVAL, "empty file");
}

Test(sidecar_read, limits_apply)
{
	char *many = object_with_keys(SVCFS_SIDECAR_KEYS_MAX + 1);

	write_str("web.json", many, 0);
	check_read_refused("web.json", 0, -E2BIG, "257 keys");
	free(many);
}

/* ---- meta merge ---- */

static json_object *parse_ok(const char *s)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r = parse(s, &obj, &why);

	cr_assert_eq(r, 0, "%s: %s", s, why);
	return obj;
}

Test(meta_merge, no_sidecar_no_tokens_is_empty_object)
{
	struct svcfs_tokens t = {0, 0};
	json_object *m = svcfs_meta_merge(NULL, &t);

	cr_assert_not_null(m);
	cr_assert(json_object_is_type(m, json_type_object));
	cr_assert_eq(json_object_object_length(m), 0);
	json_object_put(m);
}

Test(meta_merge, port_token_without_sidecar)
{
	struct svcfs_tokens t = {0, 8080};
	json_object *m = svcfs_meta_merge(NULL, &t), *v = NULL;

	cr_assert_not_null(m);
	cr_assert(json_object_object_get_ex(m, "port", &v));
	cr_assert(json_object_is_type(v, json_type_int));
	cr_assert_eq(json_object_get_int64(v), 8080);
	json_object_put(m);
}

Test(meta_merge, sidecar_wins_over_token)
{
	struct svcfs_tokens t = {0, 8080};
	json_object *side = parse_ok("{\"port\":\"9090\",\"x\":1}");
	json_object *m = svcfs_meta_merge(side, &t), *v = NULL;

	cr_assert_not_null(m);
	cr_assert(json_object_object_get_ex(m, "port", &v));
	cr_assert(json_object_is_type(v, json_type_string));
	cr_assert_str_eq(json_object_get_string(v), "9090");
	cr_assert_eq(json_object_object_length(m), 2);
	json_object_put(m);
	json_object_put(side);
}

Test(meta_merge, sidecar_is_copied_not_changed)
{
	struct svcfs_tokens t = {0, 8080};
	json_object *side = parse_ok("{\"x\":{\"y\":1}}");
	json_object *m = svcfs_meta_merge(side, &t), *v = NULL;

	cr_assert_not_null(m);
	cr_assert_neq(m, side, "a new object, not the sidecar itself");
	cr_assert_not(json_object_object_get_ex(side, "port", NULL), "the sidecar was changed");
	cr_assert(json_object_object_get_ex(m, "x", &v));
	json_object_object_add(v, "z", json_object_new_int(2));
	cr_assert_str_eq(json_object_to_json_string_ext(side, JSON_C_TO_STRING_PLAIN),
			 "{\"x\":{\"y\":1}}",
			 "a deep copy: changing the result left the sidecar alone");
	json_object_put(m);
	json_object_put(side);
}

Test(meta_merge, no_token_sidecar_kept)
{
	struct svcfs_tokens t = {0, 0};
	json_object *side = parse_ok("{\"a\":[1,2],\"b\":\"c\"}");
	json_object *m = svcfs_meta_merge(side, &t);

	cr_assert_not_null(m);
	cr_assert(json_object_equal(m, side));
	json_object_put(m);
	json_object_put(side);
}
