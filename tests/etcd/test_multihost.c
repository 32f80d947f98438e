/*
 * multihost — several hosts through etcd (SPEC §8, issue 8), end to end:
 * two real svcfs daemons, "a" and "b", each with its own BACKING and
 * MOUNTPOINT, publishing into and mirroring from a real three-member etcd
 * cluster on loopback (cluster.c), started fresh for every test (several
 * tests kill members). Each test also uses its own key prefix.
 *
 * What is checked: a service on one host shows up in the other's view as
 * MNT/@HOST/[GROUP/]NAME/ with the same metadata files (endpoints carrying
 * the host's address, no socket link), in .services.json and .targets.json,
 * and in etcd under PREFIX hosts/HOST/...; the same inotify events as local
 * services; a dead service leaves at once, a SIGKILLed host within the lease
 * TTL, a SIGTERMed one at once (its lease revoked); a killed leader changes
 * nothing; a lost quorum turns remote states "unknown" and costs nothing
 * local, and once etcd is back the states return and what changed locally
 * meanwhile is published; a member that hangs is left (README "Faults").
 * Also: endpoints as other hosts reach them (every documented form), values
 * svcfs found winning over the sidecar's, a host started late, a host
 * restarted before its old lease expired, the defaults of host=, address=
 * and etcd_prefix=. Options without etcd=, or out of range, exit 2 naming
 * the option; an etcd that cannot be reached (refused, or silent) costs the
 * local view nothing.
 *
 * Daemon a is the harness's (H.backing, H.mnt); daemon b is two_hosts.c's
 * (ROOT/b2, ROOT/m2, ROOT/b.stderr), as is the teardown's order: b, then a
 * (both must exit 0 on SIGTERM), then the cluster, then the harness.
 *
 * Waits are bounded and tests assert on final states; the bounds say what
 * the contract allows (the lease TTL for a dead host), never how fast it was.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <json-c/json.h>

#include "etcd_cluster.h"
#include "etcd.h"
#include "harness.h"
#include "two_hosts.h"

#define STOP_MS    10000 /* SIGTERM -> exited (the harness's bound) */
#define SETTLE_MS  1000  /* after the awaited event: duplicates would show */
#define RESTORE_MS 15000 /* etcd back (members answering) -> views repaired */
#define LEADER_MS  10000 /* a killed leader: election and failover, then the change */
#define RUN_MS     5000  /* a daemon refusing its options exits within this */
#define CALL_MS    2000  /* one etcd client call */
#define EV_MAX     1024

static struct etcd *C;   /* a client of the test's own, to look at the keys */
static int stopped = -1; /* a member SIGSTOPped by the test: SIGCONT at teardown */

/* ---- inotify: one fd, every event kept ---- */

struct ev {
	int wd;
	uint32_t mask;
	char name[256];
};

static struct {
	int fd;
	struct ev ev[EV_MAX];
	size_t n;
	bool overflow;
} W = {.fd = -1};

/* Fail with both daemons' stderr in the log. OK must be a stored value. */
#define MUST(ok, ...)                                                                              \
	do {                                                                                       \
		if (!(ok)) {                                                                       \
			two_hosts_show_logs();                                                     \
			cr_assert_fail(__VA_ARGS__);                                               \
		}                                                                                  \
	} while (0)

static void w_init(void)
{
	W.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	cr_assert_geq(W.fd, 0, "inotify_init1: %s", strerror(errno));
	W.n = 0;
	W.overflow = false;
}

static int w_add(const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(W.fd, path, mask);

	cr_assert_geq(wd, 0, "inotify_add_watch %s: %s", path, strerror(errno));
	return wd;
}

/* Take what is queued, waiting up to MS for it. */
static void w_pump(int ms)
{
	_Alignas(struct inotify_event) char buf[64 * 1024];
	struct pollfd p = {.fd = W.fd, .events = POLLIN};

	if (poll(&p, 1, ms) <= 0)
		return;
	for (;;) {
		ssize_t len = read(W.fd, buf, sizeof(buf));

		if (len <= 0)
			return;
		for (char *q = buf; q < buf + len;) {
			struct inotify_event *ie = (struct inotify_event *)q;

			q += sizeof(*ie) + ie->len;
			if (ie->mask & IN_Q_OVERFLOW)
				W.overflow = true;
			if (W.n == EV_MAX) {
				W.overflow = true;
				continue;
			}
			W.ev[W.n].wd = ie->wd;
			W.ev[W.n].mask = ie->mask;
			snprintf(W.ev[W.n].name, sizeof(W.ev[W.n].name), "%s",
			         ie->len ? ie->name : "");
			W.n++;
		}
	}
}

/* Events on WD named NAME with every bit of MASK. */
static size_t w_count(int wd, uint32_t mask, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < W.n; i++)
		if (W.ev[i].wd == wd && (W.ev[i].mask & mask) == mask &&
		    strcmp(W.ev[i].name, name) == 0)
			n++;
	return n;
}

/* Wait up to MS until there are at least N such events. */
static bool w_wait_n(int wd, uint32_t mask, const char *name, size_t n, int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		long long left;

		if (w_count(wd, mask, name) >= n)
			return true;
		left = end - h_now_ms();
		if (left <= 0)
			return false;
		w_pump((int)(left < 50 ? left : 50));
	}
}

/* Every event so far, for a failure's message. */
static void w_dump(void)
{
	char line[8192] = "";
	size_t len = 0;

	for (size_t i = 0; i < W.n && len < sizeof(line) - 64; i++)
		len += (size_t)snprintf(line + len, sizeof(line) - len, " [wd %d %#x %s]",
		                        W.ev[i].wd, W.ev[i].mask, W.ev[i].name);
	cr_log_error("inotify events so far (%zu%s):%s", W.n, W.overflow ? ", overflow" : "", line);
}

/* ---- the daemons ---- */

/* SIGKILL a (the harness's daemon) and detach its dead mount. */
static void a_kill(void)
{
	int st;

	kill(H.daemon, SIGKILL); /* not reaped yet: the pid is still the daemon's */
	st = h_daemon_stop();    /* reaps it */
	cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	          "daemon a did not die of SIGKILL (status %#x)", st);
	umount2(H.mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
}

/* ---- fixture ---- */

static void setup(void)
{
	two_hosts_setup();
	C = etcd_new(CL.urls, CALL_MS);
	cr_assert_not_null(C);
}

static void teardown(void)
{
	if (W.fd >= 0)
		close(W.fd);
	W.fd = -1;
	C = etcd_free(C);
	if (stopped >= 0 && CL.m[stopped].pid > 0)
		kill(CL.m[stopped].pid, SIGCONT);
	stopped = -1;
	two_hosts_teardown();
}

TestSuite(multihost, .init = setup, .fini = teardown, .timeout = 90);

/* ---- paths ---- */

/* B's BACKING/... */
static const char *bb(const char *name)
{
	static char ring[8][PATH_MAX];
	static unsigned next;
	char *out = ring[next++ % 8];
	int n = snprintf(out, PATH_MAX, "%s/%s", B.backing, name);

	cr_assert(n > 0 && n < PATH_MAX, "path too long");
	return out;
}

/* ---- JSON ---- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool jnull(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && v == NULL;
}

static bool jint_is(json_object *o, const char *key, long long want)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) &&
	       json_object_get_int64(v) == want;
}

static bool str_is(const char *s, const char *want)
{
	return s && strcmp(s, want) == 0;
}

/* The element of the array at PATH (.services.json) for HOST/GROUP/NAME,
 * GROUP NULL for the top level. A new reference, or NULL. */
static json_object *services_find(const char *path, const char *host, const char *group,
                                  const char *name)
{
	json_object *arr = h_json_file(path), *found = NULL;

	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return NULL;
	}
	for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		if (str_is(jstr(e, "name"), name) && str_is(jstr(e, "host"), host) &&
		    (group ? str_is(jstr(e, "group"), group) : jnull(e, "group")))
			found = json_object_get(e);
	}
	json_object_put(arr);
	return found;
}

/* The group of the file_sd document at PATH whose labels have HOST and SERVICE. */
static json_object *targets_find(const char *path, const char *host, const char *service)
{
	json_object *arr = h_json_file(path), *found = NULL;

	if (!arr || !json_object_is_type(arr, json_type_array)) {
		json_object_put(arr);
		return NULL;
	}
	for (size_t i = 0; i < json_object_array_length(arr) && !found; i++) {
		json_object *g = json_object_array_get_idx(arr, i), *labels;

		if (json_object_object_get_ex(g, "labels", &labels) &&
		    str_is(jstr(labels, "host"), host) && str_is(jstr(labels, "service"), service))
			found = json_object_get(g);
	}
	json_object_put(arr);
	return found;
}

static bool array_has_string(json_object *arr, const char *s)
{
	if (!json_object_is_type(arr, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *v = json_object_array_get_idx(arr, i);

		if (json_object_is_type(v, json_type_string) &&
		    strcmp(json_object_get_string(v), s) == 0)
			return true;
	}
	return false;
}

struct listed_ctx {
	const char *path, *host, *group, *name;
};

static bool services_listed(void *ctx)
{
	struct listed_ctx *c = ctx;
	json_object *e = services_find(c->path, c->host, c->group, c->name);

	json_object_put(e);
	return e != NULL;
}

static bool targets_listed(void *ctx)
{
	struct listed_ctx *c = ctx;
	json_object *e = targets_find(c->path, c->host, c->name);

	json_object_put(e);
	return e != NULL;
}

/* ---- etcd, as the test sees it ---- */

/* The value of KEY (below the test's prefix) parsed, or NULL when absent. */
static json_object *etcd_value(const char *rel, int64_t *ret_lease)
{
	char key[512];
	struct etcd_kvs *kvs = NULL;
	json_object *o = NULL;
	int r;

	snprintf(key, sizeof(key), "%s%s", two_hosts_prefix, rel);
	r = etcd_range_prefix(C, key, &kvs);
	cr_assert_eq(r, 0, "range %s: %d %s", key, r, etcd_errmsg(C));
	for (size_t i = 0; i < kvs->n; i++)
		if (strcmp(kvs->kv[i].key, key) == 0) {
			o = json_tokener_parse(kvs->kv[i].value);
			cr_assert_not_null(o, "%s: not JSON: %s", key, kvs->kv[i].value);
			if (ret_lease)
				*ret_lease = kvs->kv[i].lease;
		}
	etcd_kvs_free(kvs);
	return o;
}

/* Keys below the test's prefix + REL. */
static size_t etcd_count(const char *rel)
{
	char key[512];
	struct etcd_kvs *kvs = NULL;
	size_t n;
	int r;

	snprintf(key, sizeof(key), "%s%s", two_hosts_prefix, rel);
	r = etcd_range_prefix(C, key, &kvs);
	cr_assert_eq(r, 0, "range %s: %d %s", key, r, etcd_errmsg(C));
	n = kvs->n;
	etcd_kvs_free(kvs);
	return n;
}

/* ---- waits ---- */

struct lines_ctx {
	const char *file, *needle;
	int more_than;
};

static bool lines_grew(void *ctx)
{
	struct lines_ctx *c = ctx;

	return h_count_lines(c->file, c->needle) > c->more_than;
}

static bool has_at_entry(const char *dir)
{
	char **names = NULL;
	bool found = false;

	if (h_list(dir, &names) < 0)
		return false;
	for (size_t i = 0; names[i]; i++)
		if (names[i][0] == '@')
			found = true;
	h_strv_free(names);
	return found;
}

static char *slurp_trim_nl(const char *path)
{
	char *s = h_slurp(path);
	size_t len = s ? strlen(s) : 0;

	if (len && s[len - 1] == '\n')
		s[len - 1] = '\0';
	return s;
}

/* ---- 1. a service on a, seen from b ---- */

Test(multihost, remote_service_shows_metadata_lists_and_targets)
{
	struct listed_ctx lc = {.path = mb(".services.json"), .host = "a", .name = "web"};
	struct listed_ctx tc = {.path = mb(".targets.json"), .host = "a", .name = "web"};
	json_object *e, *v, *meta, *eps;
	struct stat st;
	char want[64], *s, *local;
	int64_t lease = 0;
	pid_t web;
	bool ok;
	int r, e_;

	two_hosts_start_both(CL.urls, NULL);
	h_write_atomic(h_b("web.json"),
	               "{\"version\":\"1.2.3\",\"job\":\"webjob\","
	               "\"endpoints\":{\"http\":8080,\"admin\":\"localhost:9090\"},"
	               "\"labels\":{\"team\":\"core\"}}");
	web = h_service("web.sock");
	h_service(bb("bsvc.sock"));

	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	ok = h_wait_content(h_m("@b/bsvc/state"), "alive\n");
	MUST(ok, "MNT_A/@b/bsvc/state never read \"alive\" (the other direction)");

	/* the directories: read-only, no socket link */
	r = stat(mb("@a"), &st);
	cr_assert(r == 0 && S_ISDIR(st.st_mode), "MNT_B/@a is not a directory");
	r = stat(mb("@a/web"), &st);
	cr_assert(r == 0 && S_ISDIR(st.st_mode), "MNT_B/@a/web is not a directory");
	cr_assert_eq(st.st_mode & 07777, 0555, "MNT_B/@a/web mode %o", st.st_mode & 07777);
	errno = 0;
	r = lstat(mb("@a/web/socket"), &st);
	e_ = errno;
	cr_assert(r < 0 && e_ == ENOENT, "MNT_B/@a/web/socket: %s; remote services have none",
	          r == 0 ? "exists" : strerror(e_));

	/* the files */
	snprintf(want, sizeof(want), "%d\n", (int)web);
	cr_assert(h_wait_content(mb("@a/web/host"), "a\n"));
	cr_assert(h_wait_content(mb("@a/web/pid"), want), "@a/web/pid is not the service's pid");
	cr_assert(h_wait_content(mb("@a/web/uid"), "0\n"));
	cr_assert(h_wait_content(mb("@a/web/gid"), "0\n"));
	cr_assert(h_wait_content(mb("@a/web/version"), "1.2.3\n"));
	cr_assert(h_wait_content(mb("@a/web/job"), "webjob\n"));
	s = slurp_trim_nl(mb("@a/web/since"));
	cr_assert(s && strlen(s) >= 20 && s[4] == '-' && s[10] == 'T', "since: '%s'", s ? s : "");
	local = slurp_trim_nl(h_m("web/since"));
	cr_assert(local && strcmp(s, local) == 0, "since on b '%s', on a '%s'", s,
	          local ? local : "");
	free(local);
	free(s);
	eps = h_json_file(mb("@a/web/endpoints"));
	cr_assert_not_null(eps, "@a/web/endpoints is not JSON");
	cr_assert(str_is(jstr(eps, "http"), ADDR_A ":8080"), "endpoints: %s",
	          json_object_to_json_string(eps));
	cr_assert(str_is(jstr(eps, "admin"), ADDR_A ":9090"), "endpoints: %s",
	          json_object_to_json_string(eps));
	json_object_put(eps);

	meta = h_json_file(mb("@a/web/meta.json"));
	cr_assert_not_null(meta, "@a/web/meta.json is not JSON");
	cr_assert(str_is(jstr(meta, "version"), "1.2.3"), "%s", json_object_to_json_string(meta));
	cr_assert(str_is(jstr(meta, "job"), "webjob"));
	cr_assert(str_is(jstr(meta, "host"), "a"), "%s", json_object_to_json_string(meta));
	cr_assert(str_is(jstr(meta, "state"), "alive"));
	cr_assert(jint_is(meta, "pid", web), "%s", json_object_to_json_string(meta));
	cr_assert(jint_is(meta, "uid", 0) && jint_is(meta, "gid", 0));
	cr_assert_not_null(jstr(meta, "since"));
	cr_assert(json_object_object_get_ex(meta, "labels", &v) && str_is(jstr(v, "team"), "core"));
	cr_assert(json_object_object_get_ex(meta, "endpoints", &v) &&
	              str_is(jstr(v, "http"), ADDR_A ":8080"),
	          "meta.json endpoints not addressed: %s", json_object_to_json_string(meta));
	json_object_put(meta);

	/* .services.json and .targets.json of b */
	ok = h_wait_until(services_listed, &lc, H_TIMEOUT_MS);
	MUST(ok, "MNT_B/.services.json never listed a's web with host \"a\"");
	e = services_find(lc.path, "a", NULL, "web");
	cr_assert_not_null(e);
	cr_assert(jnull(e, "socket"), "remote socket not null: %s", json_object_to_json_string(e));
	cr_assert(str_is(jstr(e, "state"), "alive"));
	cr_assert(jint_is(e, "pid", web));
	cr_assert(json_object_object_get_ex(e, "meta", &v) && str_is(jstr(v, "version"), "1.2.3"),
	          "%s", json_object_to_json_string(e));
	json_object_put(e);

	ok = h_wait_until(targets_listed, &tc, H_TIMEOUT_MS);
	MUST(ok, "MNT_B/.targets.json never had a group labelled host=a service=web");
	e = targets_find(tc.path, "a", "web");
	cr_assert_not_null(e);
	cr_assert(json_object_object_get_ex(e, "targets", &v));
	cr_assert(array_has_string(v, ADDR_A ":8080") && array_has_string(v, ADDR_A ":9090"),
	          "targets: %s", json_object_to_json_string(e));
	cr_assert_eq(json_object_array_length(v), 2, "%s", json_object_to_json_string(e));
	cr_assert(json_object_object_get_ex(e, "labels", &v));
	cr_assert(str_is(jstr(v, "job"), "webjob") && str_is(jstr(v, "team"), "core"), "%s",
	          json_object_to_json_string(e));
	json_object_put(e);

	/* the key a published */
	v = etcd_value("hosts/a/web", &lease);
	cr_assert_not_null(v, "no key %shosts/a/web", two_hosts_prefix);
	cr_assert_neq(lease, 0, "the key has no lease");
	cr_assert(str_is(jstr(v, "host"), "a") && str_is(jstr(v, "name"), "web"), "%s",
	          json_object_to_json_string(v));
	cr_assert(jnull(v, "group"), "%s", json_object_to_json_string(v));
	cr_assert(str_is(jstr(v, "state"), "alive") && jstr(v, "since"));
	cr_assert(jint_is(v, "pid", web) && jint_is(v, "uid", 0) && jint_is(v, "gid", 0));
	cr_assert(json_object_object_get_ex(v, "endpoints", &eps) &&
	              str_is(jstr(eps, "http"), ADDR_A ":8080") &&
	              str_is(jstr(eps, "admin"), ADDR_A ":9090"),
	          "%s", json_object_to_json_string(v));
	cr_assert(json_object_object_get_ex(v, "meta", &meta) &&
	              str_is(jstr(meta, "version"), "1.2.3"),
	          "%s", json_object_to_json_string(v));
	json_object_put(v);
	v = etcd_value("hosts/b/bsvc", &lease);
	cr_assert_not_null(v, "no key %shosts/b/bsvc", two_hosts_prefix);
	cr_assert(jnull(v, "endpoints"), "no endpoints in the sidecar: null, got %s",
	          json_object_to_json_string(v));
	json_object_put(v);

	/* controls: nobody shows itself; remote services only below @HOST */
	r = access(h_m("@a"), F_OK);
	cr_assert(r != 0, "MNT_A/@a exists: a host never shows itself");
	r = access(mb("@b"), F_OK);
	cr_assert(r != 0, "MNT_B/@b exists: a host never shows itself");
	r = access(mb("web"), F_OK);
	cr_assert(r != 0, "MNT_B/web exists: a's service leaked into b's own view");
	ok = h_wait_content(mb("bsvc/state"), "alive\n");
	cr_assert(ok, "b's own service is not in b's view");
}

/* ---- 2. events ---- */

Test(multihost, remote_events_create_modify_delete)
{
	int wroot, wa, wweb;
	pid_t first, web;
	bool ok;

	two_hosts_start_both(CL.urls, NULL);
	w_init();
	wroot = w_add(B.mnt, IN_CREATE | IN_DELETE | IN_MODIFY);

	/* the host directory comes with a's first service */
	first = h_service("first.sock");
	ok = w_wait_n(wroot, IN_CREATE | IN_ISDIR, "@a", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	MUST(ok, "no IN_CREATE|IN_ISDIR @a on MNT_B");
	ok = h_wait_exists(mb("@a/first/state"));
	MUST(ok, "MNT_B/@a/first never appeared");
	wa = w_add(mb("@a"), IN_CREATE | IN_DELETE | IN_MODIFY | IN_DELETE_SELF);

	h_write_atomic(h_b("web.json"), "{\"version\":\"1\"}");
	web = h_service("web.sock");
	ok = w_wait_n(wa, IN_CREATE | IN_ISDIR, "web", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	MUST(ok, "no IN_CREATE|IN_ISDIR web on MNT_B/@a");
	cr_assert(h_wait_content(mb("@a/web/version"), "1\n"));
	ok = w_wait_n(wroot, IN_MODIFY, ".services.json", 1, H_TIMEOUT_MS);
	cr_assert(ok, "no IN_MODIFY .services.json on MNT_B for a remote service");

	/* a changed sidecar: IN_MODIFY on the file, in the service directory */
	wweb = w_add(mb("@a/web"), IN_MODIFY | IN_CREATE | IN_DELETE);
	h_write_atomic(h_b("web.json"), "{\"version\":\"2\"}");
	ok = h_wait_content(mb("@a/web/version"), "2\n");
	MUST(ok, "MNT_B/@a/web/version never read 2 after the sidecar changed on a");
	ok = w_wait_n(wweb, IN_MODIFY, "version", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	cr_assert(ok, "no IN_MODIFY version in MNT_B/@a/web");

	/* controls: one create each, no delete yet */
	w_pump(SETTLE_MS);
	cr_assert_eq(w_count(wroot, IN_CREATE | IN_ISDIR, "@a"), 1, "IN_CREATE @a not once");
	cr_assert_eq(w_count(wa, IN_CREATE | IN_ISDIR, "web"), 1, "IN_CREATE web not once");
	cr_assert_eq(w_count(wa, IN_DELETE, "web"), 0, "IN_DELETE web before any death");
	cr_assert_eq(w_count(wa, IN_DELETE, "first"), 0, "IN_DELETE first before any death");
	cr_assert_eq(w_count(wroot, IN_DELETE, "@a"), 0);

	/* a dead service leaves b's view at once (a's lease lives on) */
	h_kill(web);
	ok = w_wait_n(wa, IN_DELETE | IN_ISDIR, "web", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	MUST(ok, "no IN_DELETE|IN_ISDIR web on MNT_B/@a after the service was SIGKILLed");
	cr_assert(h_wait_gone(mb("@a/web")), "MNT_B/@a/web still there after IN_DELETE");
	cr_assert_eq(etcd_count("hosts/a/web"), 0, "a's key for web was not deleted");
	cr_assert(access(mb("@a/first"), F_OK) == 0, "the other service went too");

	/* the last one: the host directory goes */
	h_kill(first);
	ok = h_wait_gone(mb("@a"));
	MUST(ok, "MNT_B/@a still there with no service left on a");
	ok = w_wait_n(wroot, IN_DELETE | IN_ISDIR, "@a", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	cr_assert(ok, "no IN_DELETE|IN_ISDIR @a on MNT_B");
	cr_assert(w_wait_n(wa, IN_DELETE | IN_ISDIR, "first", 1, H_TIMEOUT_MS));

	w_pump(SETTLE_MS);
	cr_assert(!W.overflow);
	cr_assert_eq(w_count(wa, IN_DELETE | IN_ISDIR, "web"), 1, "IN_DELETE web not once");
	cr_assert_eq(w_count(wroot, IN_DELETE | IN_ISDIR, "@a"), 1, "IN_DELETE @a not once");
	cr_assert_eq(w_count(wroot, IN_CREATE | IN_ISDIR, "@a"), 1, "@a created again");
}

/* ---- 3. groups ---- */

Test(multihost, remote_groups)
{
	struct listed_ctx lc = {
	    .path = mb(".services.json"), .host = "a", .group = "workers", .name = "w1"};
	json_object *v, *e;
	pid_t w1;
	bool ok;
	int r;

	r = mkdir(h_b("workers"), 0755);
	cr_assert_eq(r, 0);
	r = mkdir(h_b("workers/eu"), 0755);
	cr_assert_eq(r, 0);
	two_hosts_start_both(CL.urls, NULL);
	h_write_atomic(h_b("workers/w1.json"), "{\"role\":\"batch\"}");
	w1 = h_service("workers/w1.sock");
	h_service("workers/eu/w2.sock");
	h_service("w1.sock"); /* the same name at the top level: another service */

	ok = h_wait_content(mb("@a/workers/w1/state"), "alive\n");
	MUST(ok, "MNT_B/@a/workers/w1/state never read \"alive\"");
	cr_assert(h_wait_content(mb("@a/workers/w1/role"), "batch\n"));
	cr_assert(h_wait_content(mb("@a/w1/state"), "alive\n"), "top-level w1 missing on b");
	r = access(mb("@a/w1/role"), F_OK);
	cr_assert(r != 0, "the group's sidecar leaked to the top-level w1");
	ok = h_wait_content(mb("@a/workers/eu/w2/state"), "alive\n");
	MUST(ok, "MNT_B/@a/workers/eu/w2 (a nested group) never appeared");

	ok = h_wait_until(services_listed, &lc, H_TIMEOUT_MS);
	MUST(ok, "MNT_B/.services.json never listed w1 with group workers, host a");
	e = services_find(lc.path, "a", "workers", "w1");
	cr_assert(jint_is(e, "pid", w1));
	json_object_put(e);

	v = etcd_value("hosts/a/workers/w1", NULL);
	cr_assert_not_null(v, "no key %shosts/a/workers/w1", two_hosts_prefix);
	cr_assert(str_is(jstr(v, "group"), "workers") && str_is(jstr(v, "name"), "w1"), "%s",
	          json_object_to_json_string(v));
	json_object_put(v);

	h_kill(w1);
	ok = h_wait_gone(mb("@a/workers/w1"));
	MUST(ok, "MNT_B/@a/workers/w1 still there after its service died");
	cr_assert(access(mb("@a/w1"), F_OK) == 0, "the top-level w1 went with the group's");
}

/* ---- names that change kind, written straight into etcd ---- */

/* A document as svcfs publishes it, for host z (no daemon: the test's client). */
static void z_put(const char *path, const char *name, const char *group)
{
	char key[512], doc[512];
	int r;

	snprintf(key, sizeof(key), "%shosts/z/%s", two_hosts_prefix, path);
	snprintf(doc, sizeof(doc),
	         "{\"host\":\"z\",\"name\":\"%s\",\"group\":%s%s%s,\"endpoints\":null,\"meta\":{},"
	         "\"state\":\"alive\",\"since\":\"2026-11-27T00:00:00Z\",\"pid\":1,\"uid\":0,"
	         "\"gid\":0}",
	         name, group ? "\"" : "", group ? group : "null", group ? "\"" : "");
	r = etcd_put(C, key, doc, strlen(doc), 0, NULL);
	cr_assert_eq(r, 0, "put %s: %s", key, etcd_errmsg(C));
}

/* One transaction: delete DEL, put PUT (NAME in GROUP); in that order, or the other. */
static void z_swap(const char *del, const char *put, const char *name, const char *group,
                   bool put_first)
{
	char dkey[512], pkey[512], doc[512];
	struct etcd_op ops[2];
	int r;

	snprintf(dkey, sizeof(dkey), "%shosts/z/%s", two_hosts_prefix, del);
	snprintf(pkey, sizeof(pkey), "%shosts/z/%s", two_hosts_prefix, put);
	snprintf(doc, sizeof(doc),
	         "{\"host\":\"z\",\"name\":\"%s\",\"group\":%s%s%s,\"endpoints\":null,\"meta\":{},"
	         "\"state\":\"alive\",\"since\":\"2026-11-27T00:00:00Z\",\"pid\":2,\"uid\":0,"
	         "\"gid\":0}",
	         name, group ? "\"" : "", group ? group : "null", group ? "\"" : "");
	ops[put_first ? 1 : 0] = (struct etcd_op){dkey, NULL, 0, true};
	ops[put_first ? 0 : 1] = (struct etcd_op){pkey, doc, strlen(doc), false};
	r = etcd_txn(C, ops, 2, 0, NULL);
	cr_assert_eq(r, 0, "txn: %s", etcd_errmsg(C));
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * A remote name that changes from service to group and back within one
 * revision, the two keys in either order: b must end with what etcd holds,
 * whichever comes first (a service cannot take a group's name until the
 * group has gone, nor a group a service's).
 */
Test(multihost, remote_name_changes_kind_in_one_revision)
{
	bool ok;

	two_hosts_start_both(CL.urls, NULL);
	for (int put_first = 0; put_first < 2; put_first++) {
		/* service web -> group web holding api */
		z_put("web", "web", NULL);
		ok = h_wait_content(mb("@z/web/state"), "alive\n");
		MUST(ok, "MNT_B/@z/web never appeared");
		z_swap("web", "web/api", "api", "web", put_first);
		ok = h_wait_content(mb("@z/web/api/state"), "alive\n");
		MUST(ok, "service web -> group web/api (%s first): @z/web/api never appeared",
		     put_first ? "put" : "delete");
		cr_assert(access(mb("@z/web/state"), F_OK) != 0, "web is still a service");

		/* group web -> service web */
		z_swap("web/api", "web", "web", NULL, put_first);
		ok = h_wait_content(mb("@z/web/state"), "alive\n");
		MUST(ok, "group web -> service web (%s first): @z/web/state never read alive",
		     put_first ? "put" : "delete");
		cr_assert(access(mb("@z/web/api"), F_OK) != 0, "web/api is still there");

		/* clean for the next round */
		{
			char key[512];
			snprintf(key, sizeof(key), "%shosts/z/web", two_hosts_prefix);
			cr_assert_geq(etcd_delete(C, key, NULL), 0);
		}
		ok = h_wait_gone(mb("@z"));
		MUST(ok, "MNT_B/@z stayed after its last service went");
	}
	h_assert_daemon_alive();
	cr_assert(b_running());
}

/* ---- local names starting with '@' ---- */

Test(multihost, local_at_names_not_shown_with_etcd)
{
	bool ok;

	two_hosts_start_both(CL.urls, NULL);
	h_service("web.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web never appeared");

	/* on b: a group named like the host a, with a service in it, and a service "@x" */
	cr_assert_eq(mkdir(bb("@a"), 0755), 0);
	h_service(bb("@a/x.sock"));
	h_service(bb("@x.sock"));
	h_service(bb("plain.sock")); /* a control: b still follows its BACKING */
	ok = h_wait_content(mb("plain/state"), "alive\n");
	MUST(ok, "MNT_B/plain never appeared");

	cr_assert(b_running(), "b died of a local group named @a");
	cr_assert(is_dir(mb("@a/web")), "a's web left b's view");
	cr_assert(access(mb("@a/x"), F_OK) != 0, "b's own @a/x shown under host a");
	cr_assert(access(mb("@x"), F_OK) != 0, "b's own @x shown");
	cr_assert_gt(h_count_lines(B.errlog, "names starting with '@'"), 0,
	             "no log line for the local @ names");
}

/* ---- sidecars near their 64 KiB bound: every one published ---- */

Test(multihost, big_sidecars_all_published, .timeout = 120)
{
	enum { N = 40, SIZE = 60000 };
	char *doc = malloc(SIZE + 32);
	char name[64];
	bool ok;

	cr_assert_not_null(doc);
	/* 40 values of 60 KB: more than etcd takes in one request (1.5 MiB) */
	memcpy(doc, "{\"blob\":\"", 9);
	memset(doc + 9, 'x', SIZE);
	strcpy(doc + 9 + SIZE, "\"}");
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "big%04d.json", i);
		h_write_atomic(h_b("%s", name), doc);
	}
	free(doc);
	/* bound before a starts: its first scan queues all of them at once */
	h_services_many(".", "big", N);
	two_hosts_start_both(CL.urls, NULL);
	ok = h_wait_count(mb("@a"), N, 30000);
	MUST(ok, "b does not show all %d services with big sidecars", N);
	ok = h_wait_content(mb("@a/big0000/state"), "alive\n");
	MUST(ok, "@a/big0000/state");
	{
		struct stat st;
		cr_assert_eq(stat(mb("@a/big%04d/blob", N - 1), &st), 0);
		cr_assert_eq(st.st_size, SIZE + 1, "the sidecar's text, whole");
	}
	cr_assert_eq(etcd_count("hosts/a/"), (size_t)N);
}

/* ---- other hosts' services and max_services; the status counts ours ---- */

Test(multihost, remote_services_limited_by_max_services_apart)
{
	char *status;
	json_object *st, *v;
	bool ok;

	h_mount_opts(two_hosts_opts("a", ADDR_A, CL.urls, NULL), NULL);
	b_start(two_hosts_opts("b", ADDR_B, CL.urls, "max_services=3"));
	h_services_many(".", "s", 5);
	h_service(bb("mine.sock"));
	ok = h_wait_content(mb("mine/state"), "alive\n");
	MUST(ok, "MNT_B/mine never appeared");
	/* counted apart from b's own: other hosts never crowd out local services */
	ok = h_wait_count(mb("@a"), 3, H_TIMEOUT_MS);
	MUST(ok, "b should show 3 of a's 5 services (max_services=3)");
	h_sleep_ms(SETTLE_MS);
	cr_assert(h_wait_count(mb("@a"), 3, 0), "more than max_services shown");
	cr_assert_gt(h_count_lines(B.errlog, "max_services=3 reached by other hosts"), 0);

	/* the status: "services" are b's own, the others in "etcd" */
	status = NULL;
	{
		char buf[8192];
		ssize_t n = getxattr(B.mnt, "user.svcfs.status", buf, sizeof(buf) - 1);
		cr_assert_gt(n, 0, "status xattr: %s", strerror(errno));
		buf[n] = '\0';
		status = strdup(buf);
	}
	st = json_tokener_parse(status);
	cr_assert_not_null(st, "%s", status);
	cr_assert(json_object_object_get_ex(st, "services", &v) && json_object_get_int(v) == 1,
	          "status services: %s", status);
	cr_assert(json_object_object_get_ex(st, "etcd", &v) &&
	              json_object_is_type(v, json_type_object),
	          "%s", status);
	json_object_put(st);
	free(status);
}

/* ---- 4. a host SIGKILLed: its services leave within the lease TTL ---- */

#define SHORT_TTL     2
#define SHORT_TTL_OPT "etcd_ttl=2"

Test(multihost, killed_host_leaves_within_ttl)
{
	bool ok;
	int r;

	two_hosts_start_both(CL.urls, SHORT_TTL_OPT);
	h_service("web.sock");
	h_service("db.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	cr_assert(h_wait_exists(mb("@a/db")));

	/* control: the lease is kept alive well past its TTL */
	h_sleep_ms((2 * SHORT_TTL + 1) * 1000);
	r = access(mb("@a/web"), F_OK);
	MUST(r == 0, "MNT_B/@a/web left while a was alive (lease not kept alive?)");
	cr_assert_eq(etcd_count("hosts/a/"), 2);

	a_kill();
	ok = h_wait_until_gone_ms(mb("@a"), (SHORT_TTL + 2) * 1000);
	MUST(ok, "MNT_B/@a still there %d s after a was SIGKILLed (etcd_ttl=%d)", SHORT_TTL + 2,
	     SHORT_TTL);
	cr_assert_eq(etcd_count("hosts/a/"), 0, "a's keys outlived its lease");
	h_service(bb("mine.sock"));
	ok = h_wait_content(mb("mine/state"), "alive\n");
	cr_assert(ok, "b's own view stopped working");
}

/* ---- 5. a host SIGTERMed: its lease is revoked, its services leave at once ---- */

Test(multihost, stopped_host_leaves_at_once)
{
	int64_t lease = 0;
	json_object *v;
	bool ok;
	int st;

	/* a TTL far above the bound: only the revocation can meet it */
	two_hosts_start_both(CL.urls, "etcd_ttl=30");
	h_service("web.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	v = etcd_value("hosts/a/web", &lease);
	cr_assert_not_null(v);
	json_object_put(v);

	st = h_daemon_stop();
	MUST(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	     "daemon a did not exit 0 on SIGTERM (status %#x)", st);
	/* revoked before it exited, not left to expire */
	cr_assert_eq(etcd_count("hosts/a/"), 0, "a's keys still in etcd after it exited");
	ok = h_wait_until_gone_ms(mb("@a"), 3000);
	MUST(ok, "MNT_B/@a still there 3 s after a stopped (its TTL is 30 s)");
}

/* ---- 6. the leader killed ---- */

Test(multihost, leader_killed)
{
	char urls[sizeof(CL.urls)];
	int leader = cluster_leader();
	pid_t web;
	size_t len;
	bool ok;

	cr_assert_geq(leader, 0, "no leader");
	/* the leader first in the daemons' list: it is also the member they talk to */
	len = (size_t)snprintf(urls, sizeof(urls), "%s", CL.m[leader].url);
	for (int i = 0; i < CLUSTER_SIZE; i++)
		if (i != leader)
			len += (size_t)snprintf(urls + len, sizeof(urls) - len, ",%s", CL.m[i].url);
	two_hosts_start_both(urls, NULL);
	web = h_service("web.sock");
	h_service(bb("bweb.sock"));
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	ok = h_wait_content(h_m("@b/bweb/state"), "alive\n");
	MUST(ok, "MNT_A/@b/bweb/state never read \"alive\"");

	cluster_kill(leader);
	h_service("after.sock");
	ok = h_wait_until_content_ms(mb("@a/after/state"), "alive\n", LEADER_MS);
	MUST(ok, "a service started on a after the leader (m%d) was killed never showed on b",
	     leader);
	h_kill(web);
	ok = h_wait_until_gone_ms(mb("@a/web"), LEADER_MS);
	MUST(ok, "a service killed on a after the leader was killed stayed on b");
	ok = h_wait_content(mb("@a/after/state"), "alive\n");
	cr_assert(ok, "@a/after is not alive");
	ok = h_wait_content(h_m("@b/bweb/state"), "alive\n");
	cr_assert(ok, "MNT_A/@b/bweb not alive after the election");
	h_assert_daemon_alive();
	cr_assert(b_running(), "daemon b died");
}

/* ---- 7. the quorum lost, then back ---- */

Test(multihost, quorum_lost_then_back)
{
	struct lines_ctx lines = {.file = B.errlog, .needle = "etcd"};
	json_object *meta;
	pid_t bweb;
	bool ok;
	int r, wweb;

	two_hosts_start_both(CL.urls, NULL);
	h_service("web.sock");
	bweb = h_service(bb("bweb.sock"));
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	ok = h_wait_content(h_m("@b/bweb/state"), "alive\n");
	MUST(ok, "MNT_A/@b/bweb/state never read \"alive\"");
	lines.more_than = h_count_lines(B.errlog, "etcd");
	w_init();
	wweb = w_add(mb("@a/web"), IN_MODIFY);

	/* two of three: m0 is the member both daemons talk to first */
	cluster_kill(0);
	cluster_kill(1);
	ok = h_wait_content(mb("@a/web/state"), "unknown\n");
	MUST(ok, "MNT_B/@a/web/state never read \"unknown\" with the quorum lost");
	ok = w_wait_n(wweb, IN_MODIFY, "state", 1, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	cr_assert(ok, "no IN_MODIFY state in MNT_B/@a/web when it turned unknown");
	meta = h_json_file(mb("@a/web/meta.json"));
	cr_assert(meta && str_is(jstr(meta, "state"), "unknown"), "meta.json: %s",
	          meta ? json_object_to_json_string(meta) : "unreadable");
	json_object_put(meta);
	ok = h_wait_until(lines_grew, &lines, H_TIMEOUT_MS);
	MUST(ok, "daemon b logged no line naming etcd when the quorum was lost");

	/* local views go on as before */
	h_service(bb("local.sock"));
	ok = h_wait_content(mb("local/state"), "alive\n");
	MUST(ok, "a service started on b during the outage never showed in b's own view");
	h_kill(bweb);
	ok = h_wait_gone(mb("bweb"));
	MUST(ok, "a service killed on b during the outage stayed in b's own view");
	h_service("alocal.sock");
	ok = h_wait_content(h_m("alocal/state"), "alive\n");
	MUST(ok, "a service started on a during the outage never showed in a's own view");
	r = access(mb("@a/web"), F_OK);
	cr_assert_eq(r, 0, "remote entries must stay while etcd is unavailable");

	/* back */
	cluster_restart(0);
	cluster_restart(1);
	ok = cluster_member_ready(0, CLUSTER_START_MS) && cluster_member_ready(1, CLUSTER_START_MS);
	cr_assert(ok, "the members did not come back");
	ok = h_wait_until_content_ms(mb("@a/web/state"), "alive\n", RESTORE_MS);
	MUST(ok, "MNT_B/@a/web/state not back to \"alive\" %d ms after etcd came back", RESTORE_MS);
	ok = w_wait_n(wweb, IN_MODIFY, "state", 2, H_TIMEOUT_MS);
	if (!ok)
		w_dump();
	cr_assert(ok, "no IN_MODIFY state in MNT_B/@a/web when it turned alive again");
	ok = h_wait_until_content_ms(h_m("@b/local/state"), "alive\n", RESTORE_MS);
	MUST(ok, "b's service started during the outage never showed on a (no reconcile)");
	ok = h_wait_until_gone_ms(h_m("@b/bweb"), RESTORE_MS);
	MUST(ok, "b's service killed during the outage stayed on a (no reconcile)");
	ok = h_wait_until_content_ms(mb("@a/alocal/state"), "alive\n", RESTORE_MS);
	MUST(ok, "a's service started during the outage never showed on b (no reconcile)");
	cr_assert_eq(etcd_count("hosts/b/bweb"), 0, "b's dead service still in etcd");
	h_assert_daemon_alive();
	cr_assert(b_running(), "daemon b died");
}

/* ---- endpoints as the other hosts reach them; what svcfs found wins ---- */

Test(multihost, endpoints_addressed_and_found_values_win)
{
	json_object *eps, *g, *v, *meta;
	char want[32];
	pid_t web;
	bool ok;
	int r;

	two_hosts_start_both(CL.urls, NULL);
	/* an array; a number, a loopback address, a name that is no loopback */
	h_write_atomic(
	    h_b("web.json"),
	    "{\"endpoints\":[8080,\"127.0.0.1:81\",\"localhost:82\",\"db.example:5432\"],"
	    "\"host\":\"evil\",\"pid\":1,\"state\":\"dead\",\".hidden\":1,\"a/b\":2}");
	web = h_service("web.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\" (a sidecar state must not win)");
	cr_assert(h_wait_content(mb("@a/web/host"), "a\n"), "the sidecar's host won");
	snprintf(want, sizeof(want), "%d\n", (int)web);
	cr_assert(h_wait_content(mb("@a/web/pid"), want), "the sidecar's pid won");
	/* keys that are no safe file names: in meta.json only */
	r = access(mb("@a/web/.hidden"), F_OK);
	cr_assert(r != 0, "a file for the sidecar key .hidden");
	meta = h_json_file(mb("@a/web/meta.json"));
	cr_assert(meta && jint_is(meta, ".hidden", 1) && jint_is(meta, "a/b", 2), "meta.json: %s",
	          meta ? json_object_to_json_string(meta) : "unreadable");
	json_object_put(meta);
	eps = h_json_file(mb("@a/web/endpoints"));
	cr_assert(json_object_is_type(eps, json_type_array), "endpoints: not an array");
	cr_assert_eq(json_object_array_length(eps), 4, "%s", json_object_to_json_string(eps));
	cr_assert(
	    str_is(json_object_get_string(json_object_array_get_idx(eps, 0)), ADDR_A ":8080") &&
	        str_is(json_object_get_string(json_object_array_get_idx(eps, 1)), ADDR_A ":81") &&
	        str_is(json_object_get_string(json_object_array_get_idx(eps, 2)), ADDR_A ":82") &&
	        str_is(json_object_get_string(json_object_array_get_idx(eps, 3)),
	               "db.example:5432"),
	    "endpoints: %s", json_object_to_json_string(eps));
	json_object_put(eps);

	g = targets_find(mb(".targets.json"), "a", "web");
	cr_assert_not_null(g, "no target group for a's web on b");
	cr_assert(json_object_object_get_ex(g, "targets", &v));
	cr_assert(array_has_string(v, ADDR_A ":8080") && array_has_string(v, "db.example:5432"),
	          "%s", json_object_to_json_string(g));
	json_object_put(g);

	/* no endpoints at all: no target (no unix:// path another host cannot reach) */
	h_service(bb("plain.sock"));
	ok = h_wait_content(h_m("@b/plain/state"), "alive\n");
	MUST(ok, "MNT_A/@b/plain never appeared");
	g = targets_find(h_m(".targets.json"), "b", "plain");
	cr_assert_not_null(g, "no target group for b's plain on a");
	cr_assert(json_object_object_get_ex(g, "targets", &v) &&
	              json_object_is_type(v, json_type_array) && json_object_array_length(v) == 0,
	          "targets of a remote service without endpoints: %s",
	          json_object_to_json_string(g));
	json_object_put(g);
}

/* ---- a host that starts late sees what the others published before ---- */

Test(multihost, late_host_sees_what_was_published)
{
	char opts[1024];
	bool ok;
	int r;

	r = mkdir(h_b("workers"), 0755);
	cr_assert_eq(r, 0);
	snprintf(opts, sizeof(opts), "%s", two_hosts_opts("a", ADDR_A, CL.urls, NULL));
	h_mount_opts(opts, NULL);
	h_service("web.sock");
	h_service("workers/w1.sock");
	ok = h_wait_exists(h_m("workers/w1/state"));
	cr_assert(ok);
	/* published: the keys are there before b starts */
	for (int i = 0; i < H_TIMEOUT_MS / 10 && etcd_count("hosts/a/") < 2; i++)
		h_sleep_ms(10);
	cr_assert_eq(etcd_count("hosts/a/"), 2, "a did not publish both services");

	b_start(two_hosts_opts("b", ADDR_B, CL.urls, NULL));
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "b, started after a published, never showed @a/web");
	ok = h_wait_content(mb("@a/workers/w1/state"), "alive\n");
	MUST(ok, "b, started after a published, never showed @a/workers/w1");
}

/* ---- a host SIGKILLed and started again at once, with the same name ---- */

#define RESTART_TTL     3
#define RESTART_TTL_OPT "etcd_ttl=3"

Test(multihost, host_restarted_keeps_its_services_past_the_old_lease)
{
	char opts[1024];
	int64_t lease1 = 0, lease2 = 0;
	json_object *v;
	pid_t old;
	bool ok;
	int r;

	snprintf(opts, sizeof(opts), "%s", two_hosts_opts("a", ADDR_A, CL.urls, RESTART_TTL_OPT));
	two_hosts_start_both(CL.urls, RESTART_TTL_OPT);
	h_service("web.sock");
	old = h_service("old.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");
	cr_assert(h_wait_exists(mb("@a/old")));
	v = etcd_value("hosts/a/web", &lease1);
	json_object_put(v);

	a_kill();
	h_kill(old); /* dies while a is down */
	h_mount_opts(opts, NULL);
	ok = h_wait_content(h_m("web/state"), "alive\n");
	cr_assert(ok, "a's web not in a's view after the restart");
	for (int i = 0; i < H_TIMEOUT_MS / 10; i++) {
		v = etcd_value("hosts/a/web", &lease2);
		json_object_put(v);
		if (lease2 && lease2 != lease1)
			break;
		h_sleep_ms(10);
	}
	cr_assert(lease2 && lease2 != lease1, "a's web not published again under a new lease");

	/* the old lease expires: web, put again under the new one, must stay */
	h_sleep_ms((RESTART_TTL + 2) * 1000);
	r = access(mb("@a/web"), F_OK);
	MUST(r == 0, "MNT_B/@a/web left when a's previous lease expired, a running again");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	cr_assert(ok, "MNT_B/@a/web is not alive");
	/* and what died meanwhile has gone, by now at the latest */
	ok = h_wait_gone(mb("@a/old"));
	MUST(ok, "MNT_B/@a/old (dead while a was down) still there after the old lease's TTL");
	cr_assert_eq(etcd_count("hosts/a/old"), 0);
}

/* ---- defaults: host the machine's name, address the host, prefix /svcfs/ ---- */

Test(multihost, defaults)
{
	char opts[1024], host[256] = "", key[512], want[300], path[PATH_MAX];
	struct etcd_kvs *kvs = NULL;
	json_object *eps = NULL;
	bool ok;
	int r;

	r = gethostname(host, sizeof(host) - 1);
	cr_assert_eq(r, 0);
	/* the cluster is the test's own: the default prefix touches nobody */
	snprintf(opts, sizeof(opts), "etcd=%s", CL.urls);
	h_mount_opts(opts, NULL);
	snprintf(opts, sizeof(opts), "etcd=%s,host=b", CL.urls);
	b_start(opts);
	h_write_atomic(h_b("web.json"), "{\"endpoints\":{\"http\":8080}}");
	h_service("web.sock");

	snprintf(path, sizeof(path), "@%s/web/state", host);
	ok = h_wait_content(mb("%s", path), "alive\n");
	MUST(ok, "MNT_B/%s never read \"alive\" (host= defaults to the hostname)", path);
	snprintf(path, sizeof(path), "@%s/web/endpoints", host);
	eps = h_json_file(mb("%s", path));
	snprintf(want, sizeof(want), "%s:8080", host);
	cr_assert(eps && str_is(jstr(eps, "http"), want),
	          "address= defaults to the host name: endpoints %s",
	          eps ? json_object_to_json_string(eps) : "unreadable");
	json_object_put(eps);
	snprintf(key, sizeof(key), "/svcfs/hosts/%s/web", host);
	r = etcd_range_prefix(C, key, &kvs);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	cr_assert_eq(kvs->n, 1, "no key %s (etcd_prefix defaults to /svcfs/)", key);
	etcd_kvs_free(kvs);
}

/* ---- a member that hangs (SIGSTOP: connections open, no answer) ---- */

/*
 * Beyond a member that dies: one that hangs. Calls move on at the end of
 * their time budget; the mirror's watch hears nothing at all, and leaves
 * the member once it has been silent for 3 TTLs, at least 10 s (README,
 * "Faults"; the test cluster sends progress notifications every second, so
 * a healthy stream is never that silent). With etcd_ttl=2: 10 s, so
 * HUNG_MS leaves 5 s for the reconnection and the change.
 */
#define HUNG_TTL_OPT "etcd_ttl=2"
#define HUNG_MS      15000

Test(multihost, hung_member)
{
	pid_t web;
	bool ok;

	/* CL.urls: m0 first, the member both daemons talk to */
	two_hosts_start_both(CL.urls, HUNG_TTL_OPT);
	web = h_service("web.sock");
	ok = h_wait_content(mb("@a/web/state"), "alive\n");
	MUST(ok, "MNT_B/@a/web/state never read \"alive\"");

	cluster_signal(0, SIGSTOP);
	stopped = 0;
	h_service("after.sock");
	h_kill(web);
	ok = h_wait_until_content_ms(mb("@a/after/state"), "alive\n", HUNG_MS);
	MUST(ok, "with m0 hung, a service started on a never showed on b within %d ms", HUNG_MS);
	ok = h_wait_until_gone_ms(mb("@a/web"), HUNG_MS);
	MUST(ok, "with m0 hung, a service killed on a stayed on b for %d ms", HUNG_MS);
	h_service("local.sock");
	ok = h_wait_content(h_m("local/state"), "alive\n");
	cr_assert(ok, "a's own view stopped working with m0 hung");
}

/* ---- 8, 9: no cluster ---- */

static void setup_alone(void)
{
	h_setup();
	two_hosts_paths();
}

static void teardown_alone(void)
{
	two_hosts_stop_b();
	h_teardown();
}

TestSuite(multihost_alone, .init = setup_alone, .fini = teardown_alone, .timeout = 60);

Test(multihost_alone, bad_options_exit_2_naming_the_option)
{
	static const struct {
		const char *opts, *name;
	} bad[] = {
	    {"etcd=http://127.0.0.1:1,etcd_ttl=1", "etcd_ttl"},
	    {"etcd=http://127.0.0.1:1,etcd_ttl=0", "etcd_ttl"},
	    {"host=a", "host"},
	    {"etcd_prefix=/x/", "etcd_prefix"},
	    {"etcd_ttl=5", "etcd_ttl"},
	    {"address=10.0.0.1", "address"},
	    {"etcd=", "etcd"},
	    {"etcd=http://127.0.0.1:1,host=a/b", "host"},
	    {"etcd=http://127.0.0.1:1,etcd_ttl=3601", "etcd_ttl"},
	    {"etcd=ftp://127.0.0.1:1", "etcd"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = {"svcfs", "-f", "-o", bad[i].opts, H.backing, H.mnt, NULL};
		char *err = NULL;
		int st = h_run_daemon(argv, RUN_MS, &err);
		bool mounted = h_mounted(H.mnt, NULL, 0);

		cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2,
		          "-o %s: wait status %#x, expected exit 2 (stderr: %s)", bad[i].opts, st,
		          err ? err : "");
		cr_assert(!mounted, "-o %s: something was mounted", bad[i].opts);
		cr_assert(err && strstr(err, bad[i].name),
		          "-o %s: the message does not name %s: %s", bad[i].opts, bad[i].name,
		          err ? err : "");
		free(err);
	}
}

/* Local services come and go in MNT whatever etcd does. */
static void assert_local_view_works(void)
{
	pid_t web;
	bool ok;

	web = h_service("web.sock");
	ok = h_wait_content(h_m("web/state"), "alive\n");
	MUST(ok, "MNT/web/state never read \"alive\" with etcd unreachable");
	h_kill(web);
	ok = h_wait_gone(h_m("web"));
	MUST(ok, "MNT/web stayed after its service was SIGKILLed, etcd unreachable");
	cr_assert(!has_at_entry(H.mnt), "an @HOST entry without any etcd");
	h_assert_daemon_alive();
}

Test(multihost_alone, etcd_refused_at_start_costs_nothing_local)
{
	h_mount_opts("etcd=http://127.0.0.1:1,host=solo,etcd_prefix=/t-refused/", NULL);
	assert_local_view_works();
}

/* An endpoint that accepts connections and never answers (a hung member). */
Test(multihost_alone, etcd_silent_at_start_costs_nothing_local)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	char opts[256];
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), r;

	cr_assert_geq(fd, 0);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	cr_assert_eq(r, 0, "bind: %s", strerror(errno));
	r = listen(fd, 64);
	cr_assert_eq(r, 0);
	r = getsockname(fd, (struct sockaddr *)&sa, &len);
	cr_assert_eq(r, 0);
	snprintf(opts, sizeof(opts), "etcd=http://127.0.0.1:%d,host=solo,etcd_prefix=/t-silent/",
	         ntohs(sa.sin_port));
	h_mount_opts(opts, NULL);
	assert_local_view_works();
	/* the teardown's SIGTERM must still be enough, with etcd silent */
	r = h_daemon_stop();
	MUST(r != -1 && WIFEXITED(r) && WEXITSTATUS(r) == 0,
	     "daemon did not exit 0 within %d ms of SIGTERM with etcd silent (status %#x)", STOP_MS,
	     r);
	close(fd);
}
