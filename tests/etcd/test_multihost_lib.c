/*
 * multihost_lib — libsvcfs and svcfsctl on a mount that also shows other
 * hosts' services (SPEC §7, §8). libsvcfs is about this host's services (it
 * connects to them): another host's service, MNT/@HOST/[GROUP/]NAME on the
 * mount and an element with "host" (and "socket": null) in .services.json,
 * is neither listed, nor found, nor reported by a watch.
 *
 * Two real daemons on a fresh three-member etcd cluster (two_hosts.c): a is
 * the harness's (H.backing, H.mnt, host=a), b is two_hosts.c's (ROOT/b2,
 * ROOT/m2, host=b); each test uses its own key prefix. Every check is made on b's
 * mount, with a's service "web" showing there as @a/web and b's own "db".
 * Each "not seen" check has its control: b's own service is seen by the
 * same call, and @a/web is really on b's mount (and in its .services.json)
 * while the call is made.
 *
 * Teardown: the services, then two_hosts_teardown: b, then a (both must
 * exit 0 on SIGTERM, while etcd still answers), the cluster, the harness.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>
#include <svcfs.h>

#include "etcd_cluster.h"
#include "harness.h"
#include "two_hosts.h"

#ifndef SVCFSCTL_BIN
#error "SVCFSCTL_BIN (path of svcfsctl) must be defined"
#endif

#define REMOTE_MS 10000 /* a's service shown on b's mount through etcd */
#define SETTLE_MS 1000  /* after the awaited state: a wrong event would show by then */
#define EV_MAX    64

static svcfs_service *web, *db; /* a's "web" (in H.backing), b's "db" */
static svcfs_dir *dir_b;        /* b's mount */
static svcfs_watch *watch_b;

static const char *bin(const char *env_name, const char *built)
{
	const char *env = getenv(env_name);

	return env && env[0] ? env : built;
}

/* ---- fixture ---- */

static void teardown(void)
{
	watch_b = svcfs_watch_free(watch_b);
	dir_b = svcfs_close(dir_b);
	web = svcfs_unregister(web);
	db = svcfs_unregister(db);
	two_hosts_teardown();
}

TestSuite(multihost_lib, .init = two_hosts_setup, .fini = teardown, .timeout = 90);

/* ---- helpers ---- */

static svcfs_service *reg(const char *dirpath, const char *name)
{
	struct svcfs_register_opts o = {.dir = dirpath};
	svcfs_service *s = NULL;
	int r = svcfs_register(name, &o, &s);

	cr_assert_eq(r, 0, "svcfs_register %s in %s: %s", name, dirpath, strerror(-r));
	return s;
}

static bool exists_fn(void *ctx)
{
	struct stat st;

	return stat(ctx, &st) == 0;
}

/* Wait until a's web shows on b's mount, in the tree and in .services.json. */
static bool services_has_remote_web(void *ctx)
{
	json_object *arr = h_json_file(mb(".services.json")), *v;
	bool found = false;

	(void)ctx;
	for (size_t k = 0; arr && json_object_is_type(arr, json_type_array) &&
	                   k < json_object_array_length(arr) && !found;
	     k++) {
		json_object *e = json_object_array_get_idx(arr, k);

		found = json_object_object_get_ex(e, "host", &v) &&
		        strcmp(json_object_get_string(v), "a") == 0 &&
		        json_object_object_get_ex(e, "name", &v) &&
		        strcmp(json_object_get_string(v), "web") == 0;
	}
	json_object_put(arr);
	return found;
}

static void wait_remote_web(void)
{
	bool shown = h_wait_until(exists_fn, (void *)mb("@a/web/meta.json"), REMOTE_MS);
	bool listed = shown && h_wait_until(services_has_remote_web, NULL, REMOTE_MS);

	if (!listed)
		two_hosts_show_logs();
	cr_assert(shown, "a's web never showed as %s", mb("@a/web"));
	cr_assert(listed, "a's web never listed (with \"host\":\"a\") in b's .services.json");
}

static void wait_local_db(void)
{
	bool shown = h_wait_until(exists_fn, (void *)mb("db/pid"), H_TIMEOUT_MS);

	cr_assert(shown, "b's db never showed on b's mount");
}

/* Both daemons, a's web and b's db, each seen on b's mount. */
static void start_web_and_db(void)
{
	two_hosts_start_both(CL.urls, NULL);
	web = reg(H.backing, "web");
	db = reg(B.backing, "db");
	wait_local_db();
	wait_remote_web();
}

/* ---- svcfs_list, svcfs_lookup, svcfs_wait ---- */

Test(multihost_lib, list_and_lookup_see_local_only)
{
	svcfs_info **list = NULL, *info = NULL;
	size_t n = 0;
	int r;

	start_web_and_db();

	r = svcfs_open(B.mnt, &dir_b);
	cr_assert_eq(r, 0, "svcfs_open %s: %s", B.mnt, strerror(-r));
	cr_assert(svcfs_dir_is_mount(dir_b));
	r = svcfs_list(dir_b, &list, &n);
	cr_assert_eq(r, 0, "svcfs_list on b: %s", strerror(-r));
	for (size_t k = 0; k < n; k++)
		cr_log_info("listed: %s (socket '%s')", svcfs_info_name(list[k]),
		            svcfs_info_socket(list[k]));
	cr_expect_eq(n, 1, "b lists %zu services, want only its own db", n);
	if (n >= 1) {
		cr_expect_str_eq(svcfs_info_name(list[0]), "db");
		cr_expect_str_eq(svcfs_info_socket(list[0]), svcfs_service_path(db));
	}
	svcfs_list_free(list, n);

	/* the control: b's own service is found */
	r = svcfs_lookup(dir_b, "db", &info);
	cr_expect_eq(r, 0, "lookup db on b: %s", strerror(-r));
	info = svcfs_info_free(info);
	/* a's, though on b's mount, is not this host's */
	r = svcfs_lookup(dir_b, "@a/web", &info);
	cr_expect_eq(r, -ENOENT, "lookup @a/web on b: %d (%s), want -ENOENT", r,
	             r < 0 ? strerror(-r) : "found");
	info = svcfs_info_free(info);
	r = svcfs_wait(dir_b, "@a/web", 0, NULL);
	cr_expect_eq(r, -ETIMEDOUT, "wait @a/web on b: %d, want -ETIMEDOUT", r);
	r = svcfs_connect(dir_b, "@a/web", 0, 0);
	cr_expect_eq(r, -ENOENT, "connect @a/web on b: %d, want -ENOENT", r);
	if (r >= 0)
		close(r);
	/* the tree is still there: the checks above did not pass for want of it */
	cr_assert(exists_fn((void *)mb("@a/web/meta.json")), "@a/web left b's mount meanwhile");
}

/* ---- svcfs_watch ---- */

struct evlog {
	char line[EV_MAX][300];
	size_t n;
};

/* Take events from W for MS, or until "appeared UNTIL" (UNTIL may be NULL). */
static void collect(svcfs_watch *w, struct evlog *log, int ms, const char *until)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		struct pollfd p = {.fd = svcfs_watch_fd(w), .events = POLLIN};
		struct svcfs_event ev;
		long long left;
		int r;

		while ((r = svcfs_watch_next(w, &ev)) > 0) {
			static const char *const names[] = {"", "appeared", "vanished", "changed"};
			bool done =
			    until && ev.type == SVCFS_EVENT_APPEARED && strcmp(ev.name, until) == 0;

			if (log->n < EV_MAX)
				snprintf(log->line[log->n++], sizeof(log->line[0]), "%s %s",
				         names[ev.type], ev.name);
			if (done)
				return;
		}
		cr_assert_geq(r, 0, "svcfs_watch_next: %s", strerror(-r));
		left = end - h_now_ms();
		if (left <= 0)
			return;
		poll(&p, 1, (int)left);
	}
}

static bool log_has(const struct evlog *log, const char *line)
{
	for (size_t k = 0; k < log->n; k++)
		if (strcmp(log->line[k], line) == 0)
			return true;
	return false;
}

/* Any event about a name below '@' (another host's). */
static const char *log_remote(const struct evlog *log)
{
	for (size_t k = 0; k < log->n; k++) {
		const char *name = strchr(log->line[k], ' ');
		if (name && name[1] == '@')
			return log->line[k];
	}
	return NULL;
}

static void log_dump(const struct evlog *log)
{
	for (size_t k = 0; k < log->n; k++)
		cr_log_info("event: %s", log->line[k]);
}

Test(multihost_lib, watch_reports_local_only)
{
	struct evlog log = {0};
	const char *bad;
	int r;

	two_hosts_start_both(CL.urls, NULL);
	r = svcfs_open(B.mnt, &dir_b);
	cr_assert_eq(r, 0, "svcfs_open %s: %s", B.mnt, strerror(-r));
	r = svcfs_watch_new(dir_b, 0, &watch_b);
	cr_assert_eq(r, 0, "svcfs_watch_new on b: %s", strerror(-r));

	/* the control: b's own service appears */
	db = reg(B.backing, "db");
	collect(watch_b, &log, H_TIMEOUT_MS, "db");
	log_dump(&log);
	cr_assert(log_has(&log, "appeared db"), "the watch on b never reported db");

	/* a's service shows on b's mount as @a/web (IN_CREATE of @a): not reported */
	web = reg(H.backing, "web");
	wait_remote_web();
	collect(watch_b, &log, SETTLE_MS, NULL);
	log_dump(&log);
	bad = log_remote(&log);
	cr_expect_null(bad, "the watch on b reported another host's service: %s", bad);

	/* and a watch started now does not count it among the existing ones */
	{
		struct evlog existing = {0};
		svcfs_watch *w2 = NULL;

		r = svcfs_watch_new(dir_b, SVCFS_WATCH_EXISTING, &w2);
		cr_assert_eq(r, 0, "svcfs_watch_new (existing) on b: %s", strerror(-r));
		collect(w2, &existing, SETTLE_MS, NULL);
		svcfs_watch_free(w2);
		log_dump(&existing);
		cr_expect(log_has(&existing, "appeared db"), "existing: db not reported");
		bad = log_remote(&existing);
		cr_expect_null(bad, "existing: another host's service reported: %s", bad);
		cr_expect_eq(existing.n, 1, "existing: %zu events, want 1", existing.n);
	}

	/* a's service going away: still nothing about it */
	web = svcfs_unregister(web);
	{
		bool gone = h_wait_until_gone_ms(mb("@a/web"), REMOTE_MS);
		cr_assert(gone, "@a/web still on b's mount after a's web left");
	}
	collect(watch_b, &log, SETTLE_MS, NULL);
	bad = log_remote(&log);
	cr_expect_null(bad, "the watch on b reported another host's service: %s", bad);
}

/* ---- svcfsctl ---- */

/* Run svcfsctl -d B.mnt ARGS; its stdout (a new string) and exit status. */
static char *ctl(const char *args, int *ret_status)
{
	char cmd[PATH_MAX * 2 + 256], *out = NULL;
	size_t len = 0;
	FILE *p, *mem;
	int c, st;

	snprintf(cmd, sizeof(cmd), "'%s' -d '%s' %s", bin("SVCFSCTL_BIN", SVCFSCTL_BIN), B.mnt,
	         args);
	mem = open_memstream(&out, &len);
	cr_assert_not_null(mem);
	p = popen(cmd, "re");
	cr_assert_not_null(p, "popen %s: %s", cmd, strerror(errno));
	while ((c = fgetc(p)) != EOF)
		fputc(c, mem);
	st = pclose(p);
	fclose(mem);
	*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	cr_log_info("%s -> %d:\n%s", cmd, *ret_status, out);
	return out;
}

Test(multihost_lib, svcfsctl_sees_local_only)
{
	json_object *arr;
	char *out;
	int st;

	start_web_and_db();

	out = ctl("ls", &st);
	cr_expect_eq(st, 0, "svcfsctl ls exited %d", st);
	cr_expect_str_eq(out, "db\n");
	free(out);

	out = ctl("ls --json", &st);
	cr_expect_eq(st, 0, "svcfsctl ls --json exited %d", st);
	arr = json_tokener_parse(out);
	cr_expect(json_object_is_type(arr, json_type_array) && json_object_array_length(arr) == 1,
	          "svcfsctl ls --json: %s", out);
	json_object_put(arr);
	free(out);

	out = ctl("show db", &st);
	cr_expect_eq(st, 0, "svcfsctl show db exited %d", st);
	free(out);
	out = ctl("show @a/web 2>/dev/null", &st);
	cr_expect_eq(st, 1, "svcfsctl show @a/web exited %d, want 1 (no such service)", st);
	free(out);

	/* status tells about etcd */
	out = ctl("status", &st);
	cr_expect_eq(st, 0, "svcfsctl status exited %d", st);
	cr_expect(strstr(out, "etcd: host b") != NULL, "status says nothing of etcd:\n%s", out);
	cr_expect(strstr(out, "1 remote service") != NULL, "status: no remote count:\n%s", out);
	free(out);
}
