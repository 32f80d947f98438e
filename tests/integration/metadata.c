/*
 * metadata — sidecars (SPEC §2, §4): keys as files, meta.json merged with
 * what svcfs found, unsafe keys, rewrites seen through the kernel's caches,
 * broken or untrusted sidecars ignored with one log line, file-name
 * tokens, and every file as a user.svcfs.* xattr of its directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(metadata, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);

static const char *pid_line(pid_t pid)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	return buf;
}

/* The files svcfs shows without any sidecar. */
static const char *const found_files[] = {"socket", "meta.json", "pid",	 "uid",
					  "gid",    "state",	 "since"};

static void assert_only_found_files(const char *dir)
{
	char **names = NULL;
	int n = h_list(dir, &names);

	cr_assert_eq(n, 7, "%s lists %d files, expected only what svcfs found", dir, n);
	for (size_t i = 0; i < 7; i++)
		cr_assert(h_strv_contains(names, found_files[i]), "%s has no %s", dir,
			  found_files[i]);
	h_strv_free(names);
}

static json_object *meta_of(const char *service)
{
	json_object *o = h_json_file(h_m("%s/meta.json", service));

	cr_assert_not_null(o, "%s/meta.json is not valid JSON", service);
	cr_assert(json_object_is_type(o, json_type_object), "meta.json is not an object");
	return o;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool has_key(json_object *o, const char *key)
{
	return json_object_object_get_ex(o, key, NULL);
}

static long long get_int(json_object *o, const char *key)
{
	json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/* A 256-byte key: too long for a file name. */
static char *key256(void)
{
	char *k = malloc(257);

	cr_assert_not_null(k);
	memset(k, 'k', 256);
	k[256] = '\0';
	return k;
}

Test(metadata, sidecar_keys_become_files)
{
	char *longkey = key256(), sidecar[2048];
	json_object *meta;
	pid_t pid;
	char **names = NULL;
	int n;

	snprintf(sidecar, sizeof(sidecar),
		 "{\"version\": \"1.2.3\", \"replicas\": 3, \"enabled\": true, \"ratio\": 0.5,"
		 " \"endpoints\": {\"http\": 8080}, \"tags\": [\"a\", \"b\"], \"nothing\": null,"
		 " \"motd\": \"two\\nlines\","
		 " \"pid\": 99, \"state\": \"dead\", \"socket\": \"/evil\", \"uid\": \"nobody\","
		 " \"gid\": 4242, \"since\": \"never\","
		 " \"a/b\": \"slash\", \".hidden\": \"dot\", \"ctl\\u0001x\": \"control\","
		 " \"%s\": \"long\"}",
		 longkey);
	h_write_atomic("web.json", sidecar);
	pid = h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web")));

	/* scalars as plain text, objects and arrays as compact JSON, each with a newline */
	cr_assert(h_wait_content(h_m("web/version"), "1.2.3\n"));
	cr_assert(h_wait_content(h_m("web/replicas"), "3\n"));
	cr_assert(h_wait_content(h_m("web/enabled"), "true\n"));
	cr_assert(h_wait_content(h_m("web/ratio"), "0.5\n"));
	cr_assert(h_wait_content(h_m("web/endpoints"), "{\"http\":8080}\n"));
	cr_assert(h_wait_content(h_m("web/tags"), "[\"a\",\"b\"]\n"));
	cr_assert(h_wait_content(h_m("web/motd"), "two\nlines\n"));

	/* what svcfs found wins */
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(pid)), "sidecar pid shadowed the owner");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"), "sidecar state shadowed state");
	cr_assert(h_wait_content(h_m("web/uid"), "0\n"), "sidecar uid shadowed uid");
	cr_assert(h_wait_content(h_m("web/gid"), "0\n"), "sidecar gid shadowed gid");

	/* unsafe keys are not files */
	n = h_list(h_m("web"), &names);
	cr_assert_gt(n, 0);
	cr_assert(!h_strv_contains(names, "a/b") && !h_strv_contains(names, "a"));
	cr_assert(!h_strv_contains(names, ".hidden"));
	cr_assert(!h_strv_contains(names, "ctl\001x"));
	cr_assert(!h_strv_contains(names, longkey));
	/* 7 found + version replicas enabled ratio endpoints tags nothing motd */
	cr_assert_eq(n, 15, "MNT/web lists %d files", n);
	h_strv_free(names);

	meta = meta_of("web");
	cr_assert_str_eq(get_str(meta, "version"), "1.2.3");
	cr_assert_eq(get_int(meta, "replicas"), 3);
	cr_assert(has_key(meta, "endpoints") && has_key(meta, "tags") && has_key(meta, "nothing"));
	cr_assert_eq(get_int(meta, "pid"), pid, "meta.json pid is not the owner's");
	cr_assert_str_eq(get_str(meta, "state"), "alive");
	cr_assert_str_eq(get_str(meta, "socket"), h_b("web.sock"));
	cr_assert_eq(get_int(meta, "uid"), 0);
	cr_assert_eq(get_int(meta, "gid"), 0);
	cr_assert_not_null(get_str(meta, "since"));
	cr_assert_str_neq(get_str(meta, "since"), "never");
	cr_assert_str_eq(get_str(meta, "a/b"), "slash", "unsafe keys must stay in meta.json");
	cr_assert_str_eq(get_str(meta, ".hidden"), "dot");
	cr_assert_str_eq(get_str(meta, "ctl\001x"), "control");
	cr_assert_str_eq(get_str(meta, longkey), "long");
	json_object_put(meta);
	free(longkey);
	h_assert_daemon_alive();
}

/* Read PATH N times (warm the kernel's caches) and check it reads WANT each time. */
static void warm(const char *path, const char *want, int n)
{
	for (int i = 0; i < n; i++) {
		char *s = h_slurp(path);
		struct stat st;
		int r = stat(path, &st);
		cr_assert_not_null(s, "read %s: %s", path, strerror(errno));
		cr_assert_str_eq(s, want);
		cr_assert_eq(r, 0);
		free(s);
	}
}

static bool meta_version_is(void *ctx)
{
	json_object *o = h_json_file(h_m("web/meta.json"));
	const char *v = o ? get_str(o, "version") : NULL;
	bool ok = v && strcmp(v, ctx) == 0;

	json_object_put(o);
	return ok;
}

Test(metadata, atomic_rewrite_seen_through_caches)
{
	char *since;

	h_write_atomic("web.json", "{\"version\": \"1\", \"old\": \"x\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	since = h_slurp(h_m("web/since"));
	cr_assert_not_null(since);
	warm(h_m("web/version"), "1\n", 20);
	warm(h_m("web/old"), "x\n", 5);

	/* longer value (the cached size must not cut it), a key gone, a key new */
	h_write_atomic("web.json", "{\"version\": \"2.0.0-beta.1\", \"new\": [1, 2]}");
	cr_assert(h_wait_content(h_m("web/version"), "2.0.0-beta.1\n"),
		  "a cached file did not show the rewritten sidecar");
	cr_assert(h_wait_content(h_m("web/new"), "[1,2]\n"));
	cr_assert(h_wait_gone(h_m("web/old")), "a key removed from the sidecar stayed");
	cr_assert(h_wait_listed(h_m("web"), "old", false));
	cr_assert(h_wait_listed(h_m("web"), "new", true));
	cr_assert(h_wait_until(meta_version_is, "2.0.0-beta.1", H_TIMEOUT_MS),
		  "meta.json did not follow the rewrite");
	/* the service did not become alive again: since stays */
	cr_assert(h_wait_content(h_m("web/since"), since), "a sidecar rewrite changed since");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	free(since);

	/* and back to a shorter value */
	warm(h_m("web/version"), "2.0.0-beta.1\n", 5);
	h_write_atomic("web.json", "{\"version\": \"3\"}");
	cr_assert(h_wait_content(h_m("web/version"), "3\n"));
	h_assert_daemon_alive();
}

Test(metadata, inplace_rewrite_seen)
{
	h_write_inplace("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	warm(h_m("web/version"), "1\n", 5);
	h_write_inplace("web.json", "{\"version\": \"22\"}");
	cr_assert(h_wait_content(h_m("web/version"), "22\n"));
	h_assert_daemon_alive();
}

Test(metadata, sidecar_added_and_removed_after_service)
{
	int r;

	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	assert_only_found_files(h_m("web"));
	h_write_atomic("web.json", "{\"version\": \"5\"}");
	cr_assert(h_wait_content(h_m("web/version"), "5\n"));
	r = unlink(h_b("web.json"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web/version")), "metadata stayed after the sidecar was removed");
	cr_assert(h_wait_listed(h_m("web"), "version", false));
	h_assert_daemon_alive();
}

/* The service appears without metadata and exactly one stderr line names the sidecar. */
static void assert_ignored_once(const char *sidecar_name)
{
	json_object *meta;
	int n;

	cr_assert(h_wait_exists(h_m("web/state")), "the service did not appear");
	cr_assert(h_wait_log(sidecar_name), "no stderr line names %s", sidecar_name);
	assert_only_found_files(h_m("web"));
	meta = meta_of("web");
	cr_assert(!has_key(meta, "version"), "ignored sidecar's keys in meta.json");
	json_object_put(meta);
	h_sleep_ms(1000); /* no repeats */
	n = h_count_lines(H.errlog, sidecar_name);
	if (n != 1) {
		char *err = h_daemon_stderr();
		cr_log_error("daemon stderr:\n%s", err ? err : "");
		free(err);
	}
	cr_assert_eq(n, 1, "%d stderr lines name %s, expected one", n, sidecar_name);
	h_assert_daemon_alive();
}

Test(metadata, malformed_sidecar_ignored_with_one_line)
{
	h_write_atomic("web.json", "{\"version\": \"1\", oops");
	h_service("web.sock");
	assert_ignored_once("web.json");
}

Test(metadata, non_object_sidecar_ignored_with_one_line)
{
	h_write_atomic("web.json", "[\"version\", \"1\"]");
	h_service("web.sock");
	assert_ignored_once("web.json");
}

Test(metadata, oversized_sidecar_ignored_with_one_line)
{
	size_t len = 70 * 1024;
	char *big = malloc(len + 64);
	int n;

	cr_assert_not_null(big);
	n = snprintf(big, 64, "{\"version\": \"1\", \"pad\": \"");
	memset(big + n, 'x', len);
	strcpy(big + n + len, "\"}");
	h_write_atomic("web.json", big);
	free(big);
	h_service("web.sock");
	assert_ignored_once("web.json");
}

Test(metadata, sidecar_of_another_user_ignored)
{
	h_write_atomic_owned("web.json", "{\"version\": \"evil\"}", 12345, 12345);
	h_service("web.sock");
	assert_ignored_once("web.json");
}

Test(metadata, sidecar_of_the_socket_owner_trusted)
{
	struct h_service_opts o = {
	    .greeting = "hello\n", .set_owner = true, .uid = 12345, .gid = 12345, .mode = 0666};

	h_write_atomic_owned("web.json", "{\"version\": \"mine\"}", 12345, 12345);
	h_write_atomic_owned("other.json", "{\"version\": \"theirs\"}", 23456, 23456);
	h_service_start("web.sock", &o);
	h_service_start("other.sock", &o);
	cr_assert(h_wait_content(h_m("web/version"), "mine\n"),
		  "the socket owner's sidecar was not trusted");
	cr_assert(h_wait_exists(h_m("other/state")));
	cr_assert(h_wait_log("other.json"), "no log line for a sidecar of a third user");
	assert_only_found_files(h_m("other"));
	h_assert_daemon_alive();
}

Test(metadata, fifo_sidecar_does_not_block)
{
	int r = mkfifo(h_b("web.json"), 0644);

	cr_assert_eq(r, 0);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	assert_only_found_files(h_m("web"));
	/* the daemon still follows BACKING */
	h_service("next.sock");
	cr_assert(h_wait_exists(h_m("next/state")), "the daemon stopped following BACKING");
	h_assert_daemon_alive();
}

Test(metadata, file_name_tokens)
{
	json_object *meta;
	pid_t pid = h_service("worker-pid12345-port8080.sock");

	cr_assert(h_wait_exists(h_m("worker-pid12345-port8080")),
		  "the service is not named after its file");
	cr_assert(h_wait_content(h_m("worker-pid12345-port8080/port"), "8080\n"));
	meta = meta_of("worker-pid12345-port8080");
	cr_assert_eq(get_int(meta, "port"), 8080, "meta.json has no \"port\":8080");
	cr_assert_eq(get_int(meta, "pid"), pid, "meta.json pid is not the listener's");
	json_object_put(meta);
	cr_assert(h_wait_content(h_m("worker-pid12345-port8080/pid"), pid_line(pid)));
	h_assert_daemon_alive();
}

Test(metadata, sidecar_wins_over_tokens)
{
	h_write_atomic("api-port9090.json", "{\"port\": 7070}");
	h_service("api-port9090.sock");
	cr_assert(h_wait_content(h_m("api-port9090/port"), "7070\n"));
	h_assert_daemon_alive();
}

/* ---- xattrs ---- */

static char *xattr_get(const char *path, const char *name)
{
	ssize_t n = getxattr(path, name, NULL, 0);
	char *buf;

	if (n < 0)
		return NULL;
	buf = calloc(1, (size_t)n + 1);
	cr_assert_not_null(buf);
	n = getxattr(path, name, buf, (size_t)n);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The xattr of a file is its content without the trailing newline. */
static void assert_xattr_is_file(const char *svc, const char *file)
{
	char name[300];
	char *x, *f;
	size_t fl;

	snprintf(name, sizeof(name), "user.svcfs.%s", file);
	x = xattr_get(h_m("%s", svc), name);
	cr_assert_not_null(x, "getxattr %s: %s", name, strerror(errno));
	f = h_slurp(h_m("%s/%s", svc, file));
	if (!f) {
		/* the socket symlink: its target */
		char buf[PATH_MAX];
		ssize_t n = readlink(h_m("%s/%s", svc, file), buf, sizeof(buf) - 1);
		cr_assert_gt(n, 0);
		buf[n] = '\0';
		f = strdup(buf);
	}
	/* the file's content less its trailing newline (README) */
	fl = strlen(f);
	if (fl > 0 && f[fl - 1] == '\n')
		f[fl - 1] = '\0';
	cr_assert_str_eq(x, f, "xattr %s = '%s', file holds '%s\\n'", name, x, f);
	free(x);
	free(f);
}

Test(metadata, xattrs)
{
	char **names = NULL, small[4], *list;
	ssize_t len, r;
	int n;

	h_write_atomic("web.json", "{\"version\": \"1.2.3\", \"endpoints\": {\"http\": 8080}}");
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/version")));

	/* listxattr: exactly user.svcfs.FILE for every file */
	n = h_list(h_m("web"), &names);
	cr_assert_eq(n, 9);
	len = listxattr(h_m("web"), NULL, 0);
	cr_assert_gt(len, 0, "listxattr size probe: %s", strerror(errno));
	list = calloc(1, (size_t)len + 1);
	cr_assert_not_null(list);
	r = listxattr(h_m("web"), list, (size_t)len);
	cr_assert_eq(r, len, "listxattr returned %zd, the size probe %zd", r, len);
	{
		int count = 0;
		for (char *p = list; p < list + r; p += strlen(p) + 1) {
			cr_assert(strncmp(p, "user.svcfs.", 11) == 0, "unexpected xattr %s", p);
			cr_assert(h_strv_contains(names, p + 11), "xattr %s has no file", p);
			count++;
		}
		cr_assert_eq(count, n, "%d xattrs for %d files", count, n);
	}
	free(list);
	r = listxattr(h_m("web"), small, sizeof(small));
	cr_assert(r == -1 && errno == ERANGE, "listxattr into 4 bytes: %zd (%s)", r,
		  strerror(errno));

	for (int i = 0; names[i]; i++)
		assert_xattr_is_file("web", names[i]);
	h_strv_free(names);

	/* size probe, too small a buffer, missing names */
	len = getxattr(h_m("web"), "user.svcfs.state", NULL, 0);
	cr_assert_eq(len, 5, "size probe of user.svcfs.state (\"alive\"): %zd", len);
	r = getxattr(h_m("web"), "user.svcfs.meta.json", small, sizeof(small));
	cr_assert(r == -1 && errno == ERANGE, "getxattr into 4 bytes: %zd (%s)", r,
		  strerror(errno));
	r = getxattr(h_m("web"), "user.svcfs.nope", small, sizeof(small));
	cr_assert(r == -1 && errno == ENODATA, "missing xattr: %zd (%s)", r, strerror(errno));
	r = getxattr(h_m("web"), "user.other", small, sizeof(small));
	cr_assert(r == -1 && errno == ENODATA, "foreign xattr: %zd (%s)", r, strerror(errno));
	h_assert_daemon_alive();
}

Test(metadata, xattr_follows_rewrite)
{
	char *x;

	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/version")));
	x = xattr_get(h_m("web"), "user.svcfs.version");
	cr_assert_not_null(x);
	free(x);
	h_write_atomic("web.json", "{\"version\": \"2\"}");
	cr_assert(h_wait_content(h_m("web/version"), "2\n"));
	x = xattr_get(h_m("web"), "user.svcfs.version");
	cr_assert_not_null(x);
	cr_assert_str_eq(x, "2", "user.svcfs.version did not follow the rewrite");
	free(x);
}

Test(metadata, getfattr_dump)
{
	char cmd[PATH_MAX + 64], *out;
	FILE *p;
	size_t len = 0, cap = 65536;
	int st;

	h_write_atomic("web.json", "{\"version\": \"1.2.3\"}");
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/version")));
	snprintf(cmd, sizeof(cmd), "getfattr -d -m - '%s' 2>&1", h_m("web"));
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	out = calloc(1, cap + 1);
	cr_assert_not_null(out);
	while (len < cap) {
		size_t n = fread(out + len, 1, cap - len, p);
		if (n == 0)
			break;
		len += n;
	}
	st = pclose(p);
	cr_assert_eq(st, 0, "getfattr failed:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.state=\"alive\""), "getfattr:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.version=\"1.2.3\""), "getfattr:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.uid=\"0\""), "getfattr:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.pid="), "getfattr:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.since="), "getfattr:\n%s", out);
	cr_assert_not_null(strstr(out, "user.svcfs.meta.json="), "getfattr:\n%s", out);
	{
		char want[PATH_MAX + 32];
		snprintf(want, sizeof(want), "user.svcfs.socket=\"%s\"", h_b("web.sock"));
		cr_assert_not_null(strstr(out, want), "getfattr:\n%s", out);
	}
	free(out);
	h_assert_daemon_alive();
}

Test(metadata, sidecar_loses_trust_when_chowned)
{
	int r;

	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	r = chown(h_b("web.json"), 23456, 23456);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web/version")),
		  "a sidecar chowned to another user is still trusted");
	cr_assert(h_wait_log("web.json"));
	h_assert_daemon_alive();
}

Test(metadata, sidecar_gains_trust_when_socket_chowned)
{
	int r;

	h_write_atomic_owned("web.json", "{\"version\": \"1\"}", 12345, 12345);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	assert_only_found_files(h_m("web"));
	r = chown(h_b("web.sock"), 12345, 12345);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_content(h_m("web/version"), "1\n"),
		  "the sidecar of the socket's new owner is not trusted");
	h_assert_daemon_alive();
}
