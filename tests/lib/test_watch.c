/*
 * lib/watch — svcfs_watch_new/fd/next/free on a real svcfs mount (a service
 * is alive: appears when it listens, vanishes when its owner dies) and on a
 * plain backing directory (a service is a socket file).
 *
 * Every event a test takes goes into a log (struct evlog). Tests wait for
 * one event with a bound, and at the end replay the whole log: per name the
 * events must read APPEARED (CHANGED...) VANISHED, again and again, and the
 * names left present must be exactly what svcfs_list() says is there. "It
 * notifies" checks have controls: actions that must give no event (hidden
 * files, unrelated files, lock files, a watch without SVCFS_WATCH_EXISTING)
 * are followed by a quiet period and then by a real change whose event
 * must be the first one seen, which proves the watch was live all along.
 *
 * The overflow test floods a backing directory with more inotify events
 * than the kernel queues (fs.inotify.max_queued_events, not changed here)
 * while the watch is not read. A second inotify fd of ours watching a
 * subset of the same events overflows too: that proves the watch's queue
 * (the same events and more, the same limit) did. The replay then shows
 * that the rescan restored the true set.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <svcfs.h>

#include "harness.h"
#include "libtest.h"

#define QUIET_MS     400 /* a control: long enough for a wrong event to show */
#define CHURN_EACH   50  /* services per process in the mount churn */
#define PRE_N        100 /* services there before the overflow burst */
#define TMPG_N       50  /* services in a group created and removed by the burst */
#define RAW_BUF      (256 * 1024)
#define QUEUED_FILE  "/proc/sys/fs/inotify/max_queued_events"
#define QUEUED_LIMIT 65536 /* above this the burst would be too long: skip */

TestSuite(watch_mount, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);
TestSuite(watch_backing, .init = h_setup, .fini = h_teardown, .timeout = 60);

/* ---- the event log ---- */

struct ev {
	enum svcfs_event_type type;
	char *name;
};

struct evlog {
	struct ev *v;
	size_t n, cap;
};

static const char *type_name(enum svcfs_event_type t)
{
	return t == SVCFS_EVENT_APPEARED   ? "APPEARED"
	       : t == SVCFS_EVENT_VANISHED ? "VANISHED"
	       : t == SVCFS_EVENT_CHANGED  ? "CHANGED"
	                                   : "?";
}

static void log_add(struct evlog *l, enum svcfs_event_type type, const char *name)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct ev *v = realloc(l->v, cap * sizeof(*v));

		cr_assert_not_null(v);
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].type = type;
	l->v[l->n].name = strdup(name);
	cr_assert_not_null(l->v[l->n].name);
	l->n++;
}

static void log_free(struct evlog *l)
{
	for (size_t k = 0; k < l->n; k++)
		free(l->v[k].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

/* Take every event pending now into LOG. Returns how many. */
static size_t drain(svcfs_watch *w, struct evlog *l)
{
	struct svcfs_event e;
	size_t n = 0;
	int r;

	while ((r = svcfs_watch_next(w, &e)) > 0) {
		cr_assert(e.type == SVCFS_EVENT_APPEARED || e.type == SVCFS_EVENT_VANISHED ||
		              e.type == SVCFS_EVENT_CHANGED,
		          "event of type %d", (int)e.type);
		cr_assert_not_null(e.name);
		log_add(l, e.type, e.name);
		n++;
	}
	cr_assert_eq(r, 0, "svcfs_watch_next: %s", strerror(-r));
	return n;
}

/* Index of event TYPE NAME in LOG at or after FROM, or -1. */
static long log_find(const struct evlog *l, size_t from, enum svcfs_event_type type,
                     const char *name)
{
	for (size_t k = from; k < l->n; k++)
		if (l->v[k].type == type && strcmp(l->v[k].name, name) == 0)
			return (long)k;
	return -1;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait on the watch's fd until LOG has event TYPE NAME at or after FROM (bounded). */
static bool wait_event(svcfs_watch *w, struct evlog *l, size_t from, enum svcfs_event_type type,
                       const char *name)
{
	long long end = now_ms() + H_TIMEOUT_MS;

	for (;;) {
		struct pollfd p = {.fd = svcfs_watch_fd(w), .events = POLLIN};
		long long left;

		drain(w, l);
		if (log_find(l, from, type, name) >= 0)
			return true;
		left = end - now_ms();
		if (left <= 0)
			return false;
		poll(&p, 1, (int)left);
	}
}

static void assert_event(svcfs_watch *w, struct evlog *l, size_t from, enum svcfs_event_type type,
                         const char *name)
{
	bool ok = wait_event(w, l, from, type, name);

	cr_assert(ok, "no %s %s", type_name(type), name);
}

/* Take events for MS milliseconds: a quiet period. Returns how many came. */
static size_t settle(svcfs_watch *w, struct evlog *l, int ms)
{
	long long end = now_ms() + ms;
	size_t before = l->n;

	for (;;) {
		struct pollfd p = {.fd = svcfs_watch_fd(w), .events = POLLIN};
		long long left;

		drain(w, l);
		left = end - now_ms();
		if (left <= 0)
			return l->n - before;
		poll(&p, 1, (int)left);
	}
}

/* Fail with the events of LOG from FROM on, if there are any. */
static void assert_no_events(const struct evlog *l, size_t from, const char *when)
{
	cr_assert_eq(l->n, from, "%s: %zu unexpected events, the first %s %s", when, l->n - from,
	             l->n > from ? type_name(l->v[from].type) : "",
	             l->n > from ? l->v[from].name : "");
}

/* The types of NAME's events in LOG, one letter each: "ACCV". */
static void seq_of(const struct evlog *l, const char *name, char *buf, size_t size)
{
	size_t n = 0;

	for (size_t k = 0; k < l->n && n + 1 < size; k++)
		if (strcmp(l->v[k].name, name) == 0)
			buf[n++] = type_name(l->v[k].type)[0];
	buf[n] = '\0';
}

/* ---- replaying a log ---- */

struct seen {
	char *name;
	bool present;
};

struct replay {
	void *root; /* tsearch tree of struct seen */
	size_t present;
	char bad[600]; /* the first event out of order, "" if none */
};

static int seen_cmp(const void *a, const void *b)
{
	return strcmp(((const struct seen *)a)->name, ((const struct seen *)b)->name);
}

static void seen_free(void *p)
{
	struct seen *e = p;

	free(e->name);
	free(e);
}

static struct seen *replay_seen(struct replay *r, const char *name)
{
	struct seen key = {.name = (char *)name}, *e, **slot;

	slot = tfind(&key, &r->root, seen_cmp);
	if (slot)
		return *slot;
	e = calloc(1, sizeof(*e));
	cr_assert_not_null(e);
	e->name = strdup(name);
	cr_assert_not_null(e->name);
	slot = tsearch(e, &r->root, seen_cmp);
	cr_assert(slot && *slot == e);
	return e;
}

/*
 * Apply LOG: APPEARED adds a name, VANISHED removes it. An APPEARED for a
 * present name, or a CHANGED or VANISHED for an absent one, breaks the
 * per-name order: the first is kept in R->bad.
 */
static void replay_log(struct replay *r, const struct evlog *l)
{
	for (size_t k = 0; k < l->n; k++) {
		struct seen *e = replay_seen(r, l->v[k].name);
		bool wrong = l->v[k].type == SVCFS_EVENT_APPEARED ? e->present : !e->present;

		if (wrong && !r->bad[0])
			snprintf(r->bad, sizeof(r->bad), "event #%zu %s %s while %s", k,
			         type_name(l->v[k].type), e->name,
			         e->present ? "present" : "absent");
		if (l->v[k].type == SVCFS_EVENT_APPEARED && !e->present) {
			e->present = true;
			r->present++;
		} else if (l->v[k].type == SVCFS_EVENT_VANISHED && e->present) {
			e->present = false;
			r->present--;
		}
	}
}

static void replay_free(struct replay *r)
{
	tdestroy(r->root, seen_free);
	r->root = NULL;
}

/*
 * True if the set LOG leaves equals svcfs_list(D); else WHY says what
 * differs. Fails the test on an event out of order.
 */
static bool log_matches_list(const struct evlog *l, svcfs_dir *d, char *why, size_t size)
{
	struct replay r = {0};
	svcfs_info **v = NULL;
	size_t n = 0;
	int rc;
	bool same;

	replay_log(&r, l);
	cr_assert(!r.bad[0], "per-name order broken: %s", r.bad);
	rc = svcfs_list(d, &v, &n);
	cr_assert_eq(rc, 0, "svcfs_list: %s", strerror(-rc));
	same = n == r.present;
	snprintf(why, size, "the events leave %zu services, svcfs_list has %zu", r.present, n);
	for (size_t k = 0; same && k < n; k++) {
		struct seen key = {.name = (char *)svcfs_info_name(v[k])}, **e;

		e = tfind(&key, &r.root, seen_cmp);
		if (!e || !(*e)->present) {
			snprintf(why, size, "%s is listed, but the events leave it absent",
			         key.name);
			same = false;
		}
	}
	svcfs_list_free(v, n);
	replay_free(&r);
	return same;
}

struct match_ctx {
	svcfs_watch *w;
	struct evlog *l;
	svcfs_dir *d;
	char why[600];
};

static bool drained_matches(void *arg)
{
	struct match_ctx *c = arg;

	drain(c->w, c->l);
	return log_matches_list(c->l, c->d, c->why, sizeof(c->why));
}

/* Take events until the set they leave equals svcfs_list (bounded). */
static void assert_log_reaches_list(svcfs_watch *w, struct evlog *l, svcfs_dir *d)
{
	struct match_ctx c = {w, l, d, ""};
	bool ok = h_wait_until(drained_matches, &c, 2 * H_TIMEOUT_MS);

	cr_assert(ok, "after %zu events: %s", l->n, c.why);
}

/* ---- helpers ---- */

static void set_meta(svcfs_service *s, const char *meta)
{
	json_object *m = lt_parse(meta);
	int r = svcfs_service_set_meta(s, m);

	json_object_put(m);
	cr_assert_eq(r, 0, "set_meta: %s", strerror(-r));
}

static svcfs_watch *watch(svcfs_dir *d, unsigned flags)
{
	svcfs_watch *w = NULL;
	int r = svcfs_watch_new(d, flags, &w);

	cr_assert_eq(r, 0, "svcfs_watch_new: %s", strerror(-r));
	return w;
}

/* ---- appeared, changed, vanished ---- */

/*
 * Register, change and unregister services in D (the mount or BACKING
 * itself), at the top and in a group that does not exist when the watch
 * starts; the events follow, in order, and nothing after.
 */
static void register_change_unregister(const char *dirpath)
{
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	const char *names[] = {"a", "g/b", "g/h/c"};
	svcfs_service *s[3];
	char seq[64];
	size_t mark;

	for (size_t k = 0; k < 3; k++) {
		mark = l.n;
		s[k] = lt_reg(names[k], "{\"v\":1}");
		assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, names[k]);
	}
	for (size_t k = 0; k < 3; k++) {
		mark = l.n;
		set_meta(s[k], "{\"v\":2}");
		assert_event(w, &l, mark, SVCFS_EVENT_CHANGED, names[k]);
	}
	for (size_t k = 0; k < 3; k++) {
		mark = l.n;
		svcfs_unregister(s[k]);
		assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, names[k]);
	}
	/* control: nothing is left to report */
	mark = l.n;
	settle(w, &l, QUIET_MS);
	assert_no_events(&l, mark, "after the last unregister");
	for (size_t k = 0; k < 3; k++) {
		seq_of(&l, names[k], seq, sizeof(seq));
		cr_assert(seq[0] == 'A' && strspn(seq + 1, "C") == strlen(seq) - 2 &&
		              seq[strlen(seq) - 1] == 'V' && strchr(seq, 'C'),
		          "%s: events %s, want A C... V", names[k], seq);
	}
	for (size_t k = 0; k < l.n; k++)
		cr_assert(strcmp(l.v[k].name, "g") != 0 && strcmp(l.v[k].name, "g/h") != 0,
		          "a group reported as a service: %s %s", type_name(l.v[k].type),
		          l.v[k].name);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
}

Test(watch_mount, register_set_meta_unregister)
{
	register_change_unregister(H.mnt);
}

Test(watch_backing, register_set_meta_unregister)
{
	register_change_unregister(H.backing);
}

Test(watch_backing, sidecar_pidfile_and_socket_changes)
{
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	svcfs_service *s = lt_reg("svc", NULL);
	size_t mark = 0;
	int r;

	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "svc");
	/* a sidecar written in place, then removed; a PID file */
	mark = l.n;
	h_write_inplace(h_b("svc.json"), "{\"x\":1}\n");
	assert_event(w, &l, mark, SVCFS_EVENT_CHANGED, "svc");
	mark = l.n;
	r = unlink(h_b("svc.json"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_CHANGED, "svc");
	mark = l.n;
	h_write_atomic(h_b("svc.pid"), "123\n");
	assert_event(w, &l, mark, SVCFS_EVENT_CHANGED, "svc");
	/* the socket replaced by another one: a change, not a vanish */
	mark = l.n;
	r = rename(h_b("svc.sock"), h_r("old.sock"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "svc");
	h_service("svc.sock");
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "svc");
	mark = l.n;
	h_service(h_r("new.sock"));
	r = rename(h_r("new.sock"), h_b("svc.sock"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_CHANGED, "svc");
	mark = l.n;
	settle(w, &l, QUIET_MS);
	for (size_t k = mark; k < l.n; k++)
		cr_assert_eq(l.v[k].type, SVCFS_EVENT_CHANGED, "%s %s after the replacement",
		             type_name(l.v[k].type), l.v[k].name);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(s);
}

Test(watch_backing, group_removed)
{
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	size_t mark = 0;
	int r;

	r = mkdir(h_b("rm"), 0755);
	cr_assert_eq(r, 0);
	r = mkdir(h_b("rm/sub"), 0755);
	cr_assert_eq(r, 0);
	h_service("rm/x.sock");
	h_service("rm/sub/y.sock");
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "rm/x");
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "rm/sub/y");
	/* the whole group moves away: everything below it vanishes */
	mark = l.n;
	r = rename(h_b("rm"), h_r("moved"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "rm/x");
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "rm/sub/y");
	/* and back under another name: everything appears there */
	mark = l.n;
	r = rename(h_r("moved"), h_b("back"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "back/x");
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "back/sub/y");
	settle(w, &l, QUIET_MS);
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
}

/* A watch of a group directory: names relative to it, other groups unseen. */
static void group_directory(const char *dirpath)
{
	svcfs_service *first = lt_reg("grp/first", NULL), *x, *y, *outside;
	svcfs_dir *d, *root = lt_open_dir(dirpath);
	svcfs_watch *w;
	struct evlog l = {0};
	char path[PATH_MAX];
	size_t mark;
	bool ok = lt_wait_found(root, "grp/first");

	cr_assert(ok);
	snprintf(path, sizeof(path), "%s/grp", dirpath);
	d = lt_open_dir(path);
	w = watch(d, SVCFS_WATCH_EXISTING);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "first");
	outside = lt_reg("elsewhere", NULL);
	x = lt_reg("grp/x", NULL);
	y = lt_reg("grp/sub/y", NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "x");
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "sub/y");
	mark = l.n;
	svcfs_unregister(x);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "x");
	settle(w, &l, QUIET_MS);
	cr_assert_lt(log_find(&l, 0, SVCFS_EVENT_APPEARED, "elsewhere"), 0,
	             "a service outside the group");
	cr_assert_lt(log_find(&l, 0, SVCFS_EVENT_APPEARED, "grp/x"), 0, "a name not relative");
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_close(root);
	svcfs_unregister(y);
	svcfs_unregister(outside);
	svcfs_unregister(first);
}

Test(watch_mount, group_directory)
{
	group_directory(H.mnt);
}

Test(watch_backing, group_directory)
{
	group_directory(H.backing);
}

/* Services eight groups deep are watched; a ninth group is beyond svcfs. */
static void depth_limit(const char *dirpath)
{
	const char *deep8 = "1/2/3/4/5/6/7/8/svc";
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	svcfs_service *s, *marker;
	int r;

	s = lt_reg(deep8, NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, deep8);
	r = mkdir(h_b("1/2/3/4/5/6/7/8/9"), 0755);
	cr_assert_eq(r, 0);
	h_service("1/2/3/4/5/6/7/8/9/too-deep.sock");
	marker = lt_reg("1/2/3/4/5/6/7/8/marker", NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "1/2/3/4/5/6/7/8/marker");
	settle(w, &l, QUIET_MS);
	for (size_t k = 0; k < l.n; k++)
		cr_assert(strstr(l.v[k].name, "too-deep") == NULL && strcmp(l.v[k].name, "1") != 0,
		          "%s %s", type_name(l.v[k].type), l.v[k].name);
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(marker);
	svcfs_unregister(s);
}

Test(watch_mount, eight_groups_deep_and_no_deeper)
{
	depth_limit(H.mnt);
}

Test(watch_backing, eight_groups_deep_and_no_deeper)
{
	depth_limit(H.backing);
}

/*
 * A group that exists only for a moment while the watch is not read: when
 * its IN_CREATE is read, it is gone; it must not be reported as a service.
 */
Test(watch_mount, short_lived_group_is_no_service)
{
	svcfs_dir *d = lt_open_dir(H.mnt);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	svcfs_service *marker;
	bool ok;
	int r;

	r = mkdir(h_b("blink"), 0755);
	cr_assert_eq(r, 0);
	ok = h_wait_exists(h_m("blink"));
	cr_assert(ok, "an empty group did not appear on the mount");
	r = rmdir(h_b("blink"));
	cr_assert_eq(r, 0);
	ok = h_wait_gone(h_m("blink"));
	cr_assert(ok);
	marker = lt_reg("marker", NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "marker");
	settle(w, &l, QUIET_MS);
	for (size_t k = 0; k < l.n; k++)
		cr_assert_str_neq(l.v[k].name, "blink", "the group reported: %s blink",
		                  type_name(l.v[k].type));
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(marker);
}

Test(watch_backing, symlinked_sockets)
{
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	size_t mark;
	int r;

	h_service(h_r("real.sock"));
	r = symlink(h_r("real.sock"), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	r = symlink(h_r("real.sock"), h_b("bare"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "docker");
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "bare");
	mark = l.n;
	r = unlink(h_b("docker.sock"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "docker");
	/* a dangling one is nothing */
	mark = l.n;
	r = symlink(h_r("nowhere.sock"), h_b("dangling.sock"));
	cr_assert_eq(r, 0);
	settle(w, &l, QUIET_MS);
	assert_no_events(&l, mark, "a dangling symlink");
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
}

Test(watch_mount, sigkill_of_the_owner_vanishes)
{
	svcfs_dir *d = lt_open_dir(H.mnt);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	pid_t k1, k2;
	size_t mark;
	int r;

	r = mkdir(h_b("g"), 0755);
	cr_assert_eq(r, 0);
	k1 = h_service("k.sock");
	k2 = h_service("g/k2.sock");
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "k");
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "g/k2");
	mark = l.n;
	h_kill(k1);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "k");
	h_kill(k2);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "g/k2");
	mark = l.n;
	settle(w, &l, QUIET_MS);
	assert_no_events(&l, mark, "after both owners died");
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
}

Test(watch_backing, sigkill_leaves_the_socket_file)
{
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	pid_t k = h_service("k.sock");
	size_t mark;
	int r;

	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "k");
	/* a backing directory has no liveness: the socket file stays, so does k */
	mark = l.n;
	h_kill(k);
	settle(w, &l, QUIET_MS);
	assert_no_events(&l, mark, "after SIGKILL (the file is still there)");
	assert_log_reaches_list(w, &l, d);
	r = unlink(h_b("k.sock"));
	cr_assert_eq(r, 0);
	assert_event(w, &l, mark, SVCFS_EVENT_VANISHED, "k");
	assert_log_reaches_list(w, &l, d);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
}

/* ---- SVCFS_WATCH_EXISTING ---- */

static void existing_first(const char *dirpath)
{
	static const char *const before[] = {"e1", "g/e2", "g/h/e3"};
	svcfs_service *s[3], *fresh;
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *with, *without;
	struct evlog lw = {0}, lo = {0};
	char seq[16];

	for (size_t k = 0; k < 3; k++) {
		bool ok;
		s[k] = lt_reg(before[k], NULL);
		ok = lt_wait_found(d, before[k]);
		cr_assert(ok, "%s did not appear in %s", before[k], dirpath);
	}
	with = watch(d, SVCFS_WATCH_EXISTING);
	without = watch(d, 0);
	fresh = lt_reg("fresh", NULL);
	assert_event(with, &lw, 0, SVCFS_EVENT_APPEARED, "fresh");
	assert_event(without, &lo, 0, SVCFS_EVENT_APPEARED, "fresh");
	settle(with, &lw, QUIET_MS);
	settle(without, &lo, QUIET_MS);

	/* with the flag: the three existing ones first, each once */
	cr_assert_geq(lw.n, 4, "%zu events", lw.n);
	for (size_t k = 0; k < 3; k++) {
		cr_assert_eq(lw.v[k].type, SVCFS_EVENT_APPEARED);
		cr_assert(strcmp(lw.v[k].name, "fresh") != 0,
		          "fresh reported before the existing services");
		seq_of(&lw, before[k], seq, sizeof(seq));
		cr_assert(seq[0] == 'A' && !strchr(seq + 1, 'A') && !strchr(seq, 'V'),
		          "%s: events %s", before[k], seq);
	}
	/* control, without: only the new one */
	for (size_t k = 0; k < lo.n; k++)
		cr_assert_str_eq(lo.v[k].name, "fresh", "existing %s reported without the flag",
		                 lo.v[k].name);
	log_free(&lw);
	log_free(&lo);
	svcfs_watch_free(with);
	svcfs_watch_free(without);
	svcfs_close(d);
	for (size_t k = 0; k < 3; k++)
		svcfs_unregister(s[k]);
	svcfs_unregister(fresh);
}

Test(watch_mount, existing_reported_first)
{
	existing_first(H.mnt);
}

Test(watch_backing, existing_reported_first)
{
	existing_first(H.backing);
}

/* ---- order per name ---- */

/*
 * One name registered and unregistered many times while nobody reads,
 * then a marker: whatever was coalesced, the name's events alternate
 * APPEARED ... VANISHED and end absent, as it is.
 */
static void flapping_name(const char *dirpath)
{
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	svcfs_service *marker;
	char seq[256];

	for (int k = 0; k < 30; k++) {
		svcfs_service *s = lt_reg(k % 2 ? "g/flap" : "flap", k % 3 ? "{\"k\":1}" : NULL);
		if (k % 4 == 0)
			set_meta(s, "{\"k\":2}");
		svcfs_unregister(s);
	}
	marker = lt_reg("marker", NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "marker");
	settle(w, &l, QUIET_MS);
	assert_log_reaches_list(w, &l, d);
	seq_of(&l, "flap", seq, sizeof(seq));
	cr_assert(!seq[0] || seq[strlen(seq) - 1] == 'V', "flap: events %s end present", seq);
	seq_of(&l, "g/flap", seq, sizeof(seq));
	cr_assert(!seq[0] || seq[strlen(seq) - 1] == 'V', "g/flap: events %s end present", seq);
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(marker);
}

Test(watch_mount, order_per_name)
{
	flapping_name(H.mnt);
}

Test(watch_backing, order_per_name)
{
	flapping_name(H.backing);
}

/* ---- what is no event ---- */

/*
 * Files that are no services, and writes to a service's lock file, give no
 * event; then a real service appears and its APPEARED is the first event.
 */
static void unrelated_files(const char *dirpath)
{
	svcfs_service *svc = lt_reg("svc", NULL), *real;
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *w;
	struct evlog l = {0};
	bool ok = lt_wait_found(d, "svc");
	int r;

	cr_assert(ok);
	w = watch(d, 0);
	h_write_inplace(h_b("notes.txt"), "x\n");
	h_write_atomic(h_b("other.txt"), "y\n");
	h_write_inplace(h_b("x.lock"), "");
	h_write_inplace(h_b("svc.lock"), "4242\n"); /* the lock of a live service */
	h_write_atomic(h_b("orphan.json"), "{\"a\":1}\n");
	h_write_inplace(h_b("fake.sock"), "not a socket\n");
	r = mkfifo(h_b("fifo.sock"), 0600);
	cr_assert_eq(r, 0);
	r = symlink(h_r("nowhere.sock"), h_b("dangling.sock"));
	cr_assert_eq(r, 0);
	h_service(".hidden.sock");
	r = mkdir(h_b(".hid"), 0755);
	cr_assert_eq(r, 0);
	h_service(".hid/inside.sock");
	r = mkdir(h_b("emptygroup"), 0755);
	cr_assert_eq(r, 0);
	h_write_inplace(h_b("emptygroup/readme"), "z\n");
	r = unlink(h_b("notes.txt"));
	cr_assert_eq(r, 0);
	settle(w, &l, QUIET_MS);
	assert_no_events(&l, 0, "files that are no services");

	/* positive control: the watch was live all along */
	real = lt_reg("real", NULL);
	assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, "real");
	cr_assert_eq(l.v[0].type, SVCFS_EVENT_APPEARED);
	cr_assert_str_eq(l.v[0].name, "real");
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(real);
	svcfs_unregister(svc);
}

Test(watch_mount, no_event_for_unrelated_files)
{
	unrelated_files(H.mnt);
}

Test(watch_backing, no_event_for_unrelated_files)
{
	unrelated_files(H.backing);
}

/* ---- the fd ---- */

static bool readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static int next_event(svcfs_watch *w, struct svcfs_event *e)
{
	int r = svcfs_watch_next(w, e);

	cr_assert_geq(r, 0, "svcfs_watch_next: %s", strerror(-r));
	return r;
}

/* The fd polls readable when an event is pending; svcfs_watch_next gives 0 when none is. */
static void fd_polls(const char *dirpath)
{
	svcfs_service *old = lt_reg("old", NULL), *s;
	svcfs_dir *d = lt_open_dir(dirpath);
	svcfs_watch *w, *we;
	struct svcfs_event e;
	bool ok = lt_wait_found(d, "old"), mount = svcfs_dir_is_mount(d);
	int fd, r;

	cr_assert(ok);
	w = watch(d, 0);
	fd = svcfs_watch_fd(w);
	cr_assert_geq(fd, 0);
	r = fcntl(fd, F_GETFD);
	cr_assert(r >= 0 && (r & FD_CLOEXEC), "the watch fd is not close-on-exec");
	cr_assert_eq(svcfs_watch_fd(w), fd, "the fd is the same on every call");
	/* nothing happened: nothing pending, not readable */
	r = next_event(w, &e);
	cr_assert_eq(r, 0, "an event with nothing happening: %s", r ? e.name : "");
	ok = readable(fd, 0);
	cr_assert_not(ok, "readable with nothing pending");

	s = lt_reg("p", NULL);
	ok = readable(fd, H_TIMEOUT_MS);
	cr_assert(ok, "the fd did not become readable when p appeared");
	r = next_event(w, &e);
	cr_assert_eq(r, 1);
	cr_assert_eq(e.type, SVCFS_EVENT_APPEARED);
	cr_assert_str_eq(e.name, "p");
	while (next_event(w, &e) == 1)
		; /* on a mount, p's files may change as svcfs learns its owner */
	r = next_event(w, &e);
	cr_assert_eq(r, 0, "still an event after svcfs_watch_next returned 0");
	ok = !mount && readable(fd, 0);
	cr_assert_not(ok, "readable once everything was taken");

	/* with SVCFS_WATCH_EXISTING the existing ones are pending at once */
	we = watch(d, SVCFS_WATCH_EXISTING);
	ok = readable(svcfs_watch_fd(we), 0);
	cr_assert(ok, "events are pending (the existing services) but the fd is not readable");
	r = next_event(we, &e);
	cr_assert_eq(r, 1);
	cr_assert_eq(e.type, SVCFS_EVENT_APPEARED);
	while (next_event(we, &e) == 1)
		;
	ok = !mount && readable(svcfs_watch_fd(we), 0);
	cr_assert_not(ok, "readable once all was taken");

	svcfs_watch_free(we);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(s);
	svcfs_unregister(old);
}

Test(watch_mount, fd_polls_readable_when_pending)
{
	fd_polls(H.mnt);
}

Test(watch_backing, fd_polls_readable_when_pending)
{
	fd_polls(H.backing);
}

Test(watch_backing, bad_arguments)
{
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *sentinel = (svcfs_watch *)&sentinel, *w = sentinel;
	struct svcfs_event e;
	int r;

	r = svcfs_watch_new(NULL, 0, &w);
	cr_assert_eq(r, -EINVAL);
	r = svcfs_watch_new(d, 0x80, &w);
	cr_assert_eq(r, -EINVAL);
	r = svcfs_watch_new(d, 0, NULL);
	cr_assert_eq(r, -EINVAL);
	cr_assert_eq(w, sentinel, "ret_watch written on failure");
	r = svcfs_watch_fd(NULL);
	cr_assert_lt(r, 0);
	r = svcfs_watch_next(NULL, &e);
	cr_assert_eq(r, -EINVAL);
	w = watch(d, 0);
	r = svcfs_watch_next(w, NULL);
	cr_assert_eq(r, -EINVAL);
	w = svcfs_watch_free(w);
	cr_assert_null(w);
	w = svcfs_watch_free(NULL);
	cr_assert_null(w);
	svcfs_close(d);
}

/* ---- overflow and churn ---- */

static unsigned max_queued_events(void)
{
	char *text = h_slurp(QUEUED_FILE);
	unsigned long v = text ? strtoul(text, NULL, 10) : 0;

	free(text);
	return v ? (unsigned)v : 16384;
}

/* Read all of inotify fd FD; true if the kernel's queue overflowed. */
static bool raw_overflowed(int fd)
{
	char *buf = malloc(RAW_BUF);
	bool overflow = false;
	ssize_t n;

	cr_assert_not_null(buf);
	while ((n = read(fd, buf, RAW_BUF)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ie = (const struct inotify_event *)p;
			overflow = overflow || (ie->mask & IN_Q_OVERFLOW);
			p += sizeof(*ie) + ie->len;
		}
	}
	free(buf);
	return overflow;
}

Test(watch_backing, overflow_is_recovered_by_a_rescan, .timeout = 150)
{
	unsigned queued = max_queued_events(), n;
	svcfs_service **live, *pre[PRE_N], *tmpg[TMPG_N], *after;
	svcfs_dir *d = lt_open_dir(H.backing);
	svcfs_watch *w;
	struct evlog l = {0};
	size_t nlive = 0, mark;
	int raw, wd, r;
	bool overflow;

	if (queued > QUEUED_LIMIT)
		cr_skip_test("max_queued_events is %u: a burst to overflow it would be too long",
		             queued);
	/*
	 * Per service about 5 raw events to register (lock, temp sidecar
	 * created and renamed, socket), 3 to rewrite the sidecar, 2 to
	 * unregister: N = queued/4 services make well over twice the queue.
	 */
	n = queued / 4;
	live = calloc(n, sizeof(*live));
	cr_assert_not_null(live);
	for (unsigned k = 0; k < PRE_N; k++) {
		char name[32];
		snprintf(name, sizeof(name), "pre-%03u", k);
		pre[k] = lt_reg(name, NULL);
	}
	w = watch(d, SVCFS_WATCH_EXISTING);
	raw = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	cr_assert_geq(raw, 0);
	wd = inotify_add_watch(raw, H.backing, IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO);
	cr_assert_geq(wd, 0);

	/* the burst: nobody reads either fd meanwhile */
	for (unsigned k = 0; k < TMPG_N; k++) {
		char name[32];
		snprintf(name, sizeof(name), "tmpg/t-%02u", k);
		tmpg[k] = lt_reg(name, "{\"t\":1}");
	}
	for (unsigned k = 0; k < n; k++) {
		char name[32];
		svcfs_service *s;
		snprintf(name, sizeof(name), k % 10 == 0 ? "grp/s-%05u" : "s-%05u", k);
		s = lt_reg(name, "{\"gen\":1}");
		set_meta(s, "{\"gen\":2}");
		if (k % 3)
			svcfs_unregister(s); /* two in three go again */
		else
			live[nlive++] = s;
		if (k == n / 2) {
			/* half way: the group goes, and half the services that were there before */
			for (unsigned j = 0; j < TMPG_N; j++) {
				char lock[64];
				snprintf(lock, sizeof(lock), "tmpg/t-%02u.lock", j);
				svcfs_unregister(tmpg[j]);
				r = unlink(h_b("%s", lock));
				cr_assert_eq(r, 0);
			}
			r = rmdir(h_b("tmpg"));
			cr_assert_eq(r, 0, "rmdir tmpg: %s", strerror(errno));
			for (unsigned j = 0; j < PRE_N; j += 2)
				pre[j] = svcfs_unregister(pre[j]);
		}
	}
	overflow = raw_overflowed(raw);
	close(raw);
	cr_assert(overflow, "%u services did not overflow a queue of %u events", n, queued);

	/* now read: the events must rebuild the true set */
	drain(w, &l);
	assert_log_reaches_list(w, &l, d);
	/* and the watch goes on after its rescan */
	mark = l.n;
	after = lt_reg("after", NULL);
	assert_event(w, &l, mark, SVCFS_EVENT_APPEARED, "after");
	assert_log_reaches_list(w, &l, d);
	cr_assert_lt(log_find(&l, 0, SVCFS_EVENT_APPEARED, "tmpg"), 0, "a group as a service");

	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	svcfs_unregister(after);
	for (size_t k = 0; k < nlive; k++)
		svcfs_unregister(live[k]);
	for (unsigned k = 0; k < PRE_N; k++)
		svcfs_unregister(pre[k]);
	free(live);
}

/*
 * 200 services appear on the mount, in the root and in a group made after
 * the watch started; half of them are SIGKILLed. The first half of the
 * churn is read as it goes (each killed one was reported, so it must be
 * reported gone), the second only at the end (a service that came and
 * went unread was never seen: no event). The events must leave exactly
 * svcfs_list, and no survivor may ever have been reported gone.
 */
Test(watch_mount, churn_matches_list, .timeout = 90)
{
	static const char *const survivors[] = {"a", "g/d"};
	svcfs_dir *d = lt_open_dir(H.mnt);
	svcfs_watch *w = watch(d, 0);
	struct evlog l = {0};
	pid_t a, b, c, e;
	bool ok;
	int r;

	a = h_services_many("", "a", CHURN_EACH);
	drain(w, &l);
	b = h_services_many("", "b", CHURN_EACH);
	for (unsigned k = 0; k < 2 * CHURN_EACH; k++) {
		char name[32];
		snprintf(name, sizeof(name), "%s%04u", k < CHURN_EACH ? "a" : "b", k % CHURN_EACH);
		assert_event(w, &l, 0, SVCFS_EVENT_APPEARED, name);
	}
	h_kill(b);
	drain(w, &l);
	/* unread from here on */
	r = mkdir(h_b("g"), 0755);
	cr_assert_eq(r, 0);
	c = h_services_many("g", "c", CHURN_EACH);
	e = h_services_many("g", "d", CHURN_EACH);
	ok = lt_wait_list_count(d, 3 * CHURN_EACH);
	cr_assert(ok, "the group's %d services did not all appear", 2 * CHURN_EACH);
	h_kill(c);
	ok = lt_wait_list_count(d, 2 * CHURN_EACH);
	cr_assert(ok, "the %d killed services did not all vanish", 2 * CHURN_EACH);
	assert_log_reaches_list(w, &l, d);
	for (size_t s = 0; s < 2; s++) {
		for (unsigned k = 0; k < CHURN_EACH; k++) {
			char name[32], seq[64];
			snprintf(name, sizeof(name), "%s%04u", survivors[s], k);
			seq_of(&l, name, seq, sizeof(seq));
			cr_assert(seq[0] == 'A' && !strchr(seq, 'V'), "survivor %s: events %s",
			          name, seq);
		}
	}
	for (unsigned k = 0; k < CHURN_EACH; k++) {
		char name[32], seq[64];
		snprintf(name, sizeof(name), "b%04u", k);
		seq_of(&l, name, seq, sizeof(seq));
		cr_assert(seq[0] == 'A' && seq[strlen(seq) - 1] == 'V', "killed %s: events %s",
		          name, seq);
	}
	log_free(&l);
	svcfs_watch_free(w);
	svcfs_close(d);
	h_kill(a);
	h_kill(e);
}
