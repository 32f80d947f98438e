/*
 * events — inotify on the mount (SPEC §5): watching MNT works like
 * watching a real directory. A service that becomes alive gives exactly
 * one IN_CREATE|IN_ISDIR on its parent, one that vanishes exactly one
 * IN_DELETE|IN_ISDIR, a changed file IN_MODIFY (watchers of the service
 * directory see it), and .services.json/.targets.json IN_MODIFY whenever
 * they change. Nothing changing means no events at all: every test has a
 * quiet control, and a spurious event is a failure. Users cannot change
 * the view (EACCES), so they cannot cause events either.
 *
 * A watcher thread (struct watcher) reads one inotify fd into a list of
 * events; tests wait for an event with a bound, then let a few probe
 * intervals pass before counting, so duplicates would be seen.
 * IN_Q_OVERFLOW fails the test: counts would be meaningless.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define SETTLE_MS 600  /* three probe intervals of 0.2 s: late duplicates would show */
#define AGG_MS    2000 /* bound for aggregate events, once the view has settled */
#define QUIET_MS  1500 /* a quiet control: seven intervals of 0.2 s */
#define CHURN_N   100
#define CHURN_WIN 8 /* services alive at once in the churn */
#define MAX_WATCH 16
#define READ_BUF  (256 * 1024)

/* Everything but access/open/close-nowrite: what a change would produce. */
#define CHANGES                                                                                    \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |             \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE)

struct event {
	int wd;
	uint32_t mask;
	char name[256];
};

struct watcher {
	int fd;
	int stop[2];
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* protects events, n, cap, overflow */
	struct event *events;
	size_t n, cap;
	bool overflow;
	int wds[MAX_WATCH];
	char paths[MAX_WATCH][PATH_MAX];
	unsigned nwatch;
};

static struct watcher W;

static void *watch_thread(void *arg)
{
	struct watcher *w = arg;
	char *buf = malloc(READ_BUF);

	if (!buf)
		return NULL;
	for (;;) {
		struct pollfd p[2] = {{.fd = w->fd, .events = POLLIN},
				      {.fd = w->stop[0], .events = POLLIN}};
		ssize_t len;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		len = read(w->fd, buf, READ_BUF);
		if (len <= 0)
			continue;
		pthread_mutex_lock(&w->lock);
		for (char *q = buf; q < buf + len;) {
			struct inotify_event *ie = (struct inotify_event *)q;
			if (ie->mask & IN_Q_OVERFLOW)
				w->overflow = true;
			if (w->n == w->cap) {
				size_t cap = w->cap ? 2 * w->cap : 1024;
				struct event *v = realloc(w->events, cap * sizeof(*v));
				if (!v) {
					w->overflow = true;
					break;
				}
				w->events = v;
				w->cap = cap;
			}
			w->events[w->n].wd = ie->wd;
			w->events[w->n].mask = ie->mask;
			snprintf(w->events[w->n].name, sizeof(w->events[w->n].name), "%s",
				 ie->len ? ie->name : "");
			w->n++;
			q += sizeof(*ie) + ie->len;
		}
		pthread_mutex_unlock(&w->lock);
	}
	free(buf);
	return NULL;
}

static void w_start(struct watcher *w)
{
	int r;

	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	cr_assert_geq(w->fd, 0, "inotify_init1: %s", strerror(errno));
	r = pipe2(w->stop, O_CLOEXEC);
	cr_assert_eq(r, 0);
	r = pthread_create(&w->thread, NULL, watch_thread, w);
	cr_assert_eq(r, 0, "pthread_create: %s", strerror(r));
	w->running = true;
}

static void w_stop(struct watcher *w)
{
	ssize_t n;

	if (!w->running)
		return;
	n = write(w->stop[1], "x", 1);
	(void)n;
	pthread_join(w->thread, NULL);
	close(w->fd);
	close(w->stop[0]);
	close(w->stop[1]);
	free(w->events);
	pthread_mutex_destroy(&w->lock);
	w->running = false;
}

/* Watch PATH for every change; returns the wd. */
static int w_add(struct watcher *w, const char *path)
{
	int wd = inotify_add_watch(w->fd, path, CHANGES);

	cr_assert_geq(wd, 0, "inotify_add_watch %s: %s", path, strerror(errno));
	cr_assert_lt(w->nwatch, MAX_WATCH);
	w->wds[w->nwatch] = wd;
	snprintf(w->paths[w->nwatch], PATH_MAX, "%s", path);
	w->nwatch++;
	return wd;
}

static const char *w_path(const struct watcher *w, int wd)
{
	for (unsigned i = 0; i < w->nwatch; i++)
		if (w->wds[i] == wd)
			return w->paths[i];
	return "?";
}

static size_t w_mark(struct watcher *w)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->n;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool mask_matches(uint32_t have, uint32_t want)
{
	return want == 0 ? true : (have & want) == want;
}

/* Events from index FROM on watch WD (-1: any) having all bits of MASK (0: any), named NAME (NULL:
 * any). */
static size_t w_count(struct watcher *w, size_t from, int wd, uint32_t mask, const char *name)
{
	size_t n = 0;

	pthread_mutex_lock(&w->lock);
	for (size_t i = from; i < w->n; i++) {
		const struct event *e = &w->events[i];
		if ((wd < 0 || e->wd == wd) && mask_matches(e->mask, mask) &&
		    (!name || strcmp(e->name, name) == 0))
			n++;
	}
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* Index of the first such event at or after FROM, or -1. */
static long w_find(struct watcher *w, size_t from, int wd, uint32_t mask, const char *name)
{
	long found = -1;

	pthread_mutex_lock(&w->lock);
	for (size_t i = from; i < w->n && found < 0; i++) {
		const struct event *e = &w->events[i];
		if ((wd < 0 || e->wd == wd) && mask_matches(e->mask, mask) &&
		    (!name || strcmp(e->name, name) == 0))
			found = (long)i;
	}
	pthread_mutex_unlock(&w->lock);
	return found;
}

static void mask_text(uint32_t m, char *buf, size_t size)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {
	    {IN_CREATE, "CREATE"},
	    {IN_DELETE, "DELETE"},
	    {IN_MODIFY, "MODIFY"},
	    {IN_ATTRIB, "ATTRIB"},
	    {IN_MOVED_FROM, "MOVED_FROM"},
	    {IN_MOVED_TO, "MOVED_TO"},
	    {IN_DELETE_SELF, "DELETE_SELF"},
	    {IN_MOVE_SELF, "MOVE_SELF"},
	    {IN_CLOSE_WRITE, "CLOSE_WRITE"},
	    {IN_IGNORED, "IGNORED"},
	    {IN_ISDIR, "ISDIR"},
	    {IN_Q_OVERFLOW, "Q_OVERFLOW"},
	    {IN_UNMOUNT, "UNMOUNT"},
	};
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((m & names[i].bit) && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "|" : "",
						names[i].name);
}

/* Every event from FROM on, one line each, into the test's log. */
static void w_dump(struct watcher *w, size_t from, const char *why)
{
	pthread_mutex_lock(&w->lock);
	cr_log_error("%s: %zu event(s)", why, w->n > from ? w->n - from : 0);
	for (size_t i = from; i < w->n && i < from + 200; i++) {
		char m[160];
		mask_text(w->events[i].mask, m, sizeof(m));
		cr_log_error("  [%zu] %s: %s %s", i, w_path(w, w->events[i].wd), m,
			     w->events[i].name);
	}
	pthread_mutex_unlock(&w->lock);
}

static void w_assert_no_overflow(struct watcher *w)
{
	bool over;

	pthread_mutex_lock(&w->lock);
	over = w->overflow;
	pthread_mutex_unlock(&w->lock);
	cr_assert(!over, "the inotify queue overflowed (IN_Q_OVERFLOW): events were lost, counts "
			 "are meaningless; raise fs.inotify.max_queued_events or read faster");
}

struct wait_ctx {
	struct watcher *w;
	size_t from;
	int wd;
	uint32_t mask;
	const char *name;
	size_t n;
};

static bool has_events(void *ctx)
{
	struct wait_ctx *c = ctx;

	return w_count(c->w, c->from, c->wd, c->mask, c->name) >= c->n;
}

/* Wait (bounded) until at least N such events arrived since FROM. */
static bool w_wait_n(struct watcher *w, size_t from, int wd, uint32_t mask, const char *name,
		     size_t n, int ms)
{
	struct wait_ctx c = {w, from, wd, mask, name, n};

	return h_wait_until(has_events, &c, ms);
}

static bool w_wait(struct watcher *w, size_t from, int wd, uint32_t mask, const char *name)
{
	return w_wait_n(w, from, wd, mask, name, 1, H_TIMEOUT_MS);
}

/*
 * Wait until no event arrived for SETTLE_MS: what came before the watches
 * were all in place (the last pokes of an appearance, say) is over. A view
 * that never stops sending events fails here.
 */
static void w_settle(struct watcher *w)
{
	long long end = now_ms() + H_TIMEOUT_MS, since = now_ms();
	size_t last = w_mark(w);

	for (;;) {
		size_t n;
		h_sleep_ms(20);
		n = w_mark(w);
		if (n != last) {
			last = n;
			since = now_ms();
		}
		if (now_ms() - since >= SETTLE_MS)
			return;
		if (now_ms() > end) {
			w_dump(w, 0, "never quiet");
			cr_assert_fail("events kept coming for %d ms with nothing changing",
				       H_TIMEOUT_MS);
		}
	}
}

/* Fail, with the events seen, if anything at all arrived since FROM. */
static void w_assert_quiet(struct watcher *w, size_t from, const char *what)
{
	size_t n = w_count(w, from, -1, 0, NULL);

	if (n) {
		char *err = h_daemon_stderr();
		w_dump(w, from, what);
		cr_log_error("svcfs stderr:\n%s", err ? err : "(none)");
		free(err);
	}
	cr_assert_eq(n, 0, "%s: %zu spurious event(s) (see the log)", what, n);
}

/*
 * Both aggregate files changed since FROM (WHY says why): checked once the
 * view settled, with cr_expect so that the rest of the test still runs.
 */
static void expect_aggregates_modified(size_t from, int root, const char *why)
{
	bool services = w_wait_n(&W, from, root, IN_MODIFY, ".services.json", 1, AGG_MS);
	bool targets = w_wait_n(&W, from, root, IN_MODIFY, ".targets.json", 1, AGG_MS);

	cr_expect(services, "no IN_MODIFY .services.json when %s", why);
	cr_expect(targets, "no IN_MODIFY .targets.json when %s", why);
}

/*
 * Aggregate NAME (in MNT) got IN_MODIFY since FROM exactly if its text
 * changed from BEFORE: an event for an unchanged file is spurious.
 */
static void expect_modified_iff_changed(size_t from, int root, const char *name, const char *before)
{
	char *now = h_slurp(h_m("%s", name));
	bool changed = !now || strcmp(now, before) != 0;
	size_t n = w_count(&W, from, root, IN_MODIFY, name);

	if (changed)
		cr_expect_gt(n, 0, "%s changed without IN_MODIFY", name);
	else
		cr_expect_eq(n, 0, "%zu IN_MODIFY on %s, whose content did not change", n, name);
	free(now);
}

/* .services.json lists (PRESENT) or does not list a service named NAME. */
static void expect_services_json_lists(const char *name, bool present)
{
	json_object *all = h_json_file(h_m(".services.json"));
	bool found = false;

	cr_assert_not_null(all, ".services.json is not valid JSON");
	for (size_t i = 0; i < json_object_array_length(all); i++) {
		json_object *n = NULL;
		if (json_object_object_get_ex(json_object_array_get_idx(all, i), "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			found = true;
	}
	cr_expect_eq(found, present, ".services.json %s %s: %s", present ? "lacks" : "still lists",
		     name, json_object_to_json_string(all));
	json_object_put(all);
}

static void events_init(void)
{
	h_setup();
	w_start(&W);
}

static void events_fini(void)
{
	w_stop(&W);
	h_teardown();
}

TestSuite(events, .init = events_init, .fini = events_fini, .timeout = 60);

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* Non-blocking connects to PATH, kept open (to fill an accept queue). */
static void connect_clients(const char *path, int n, int *fds)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0);
		if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EAGAIN)
			cr_assert_fail("connect %s: %s", path, strerror(errno));
	}
}

/* ---- appear, vanish ---- */

Test(events, appear_and_vanish)
{
	size_t m0, m1;
	pid_t pid;
	int root, r;
	long at;

	h_mount_opts("probe_interval=0.2", NULL);
	root = w_add(&W, H.mnt);

	/* control: nothing happens, nothing is reported */
	m0 = w_mark(&W);
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m0, "an idle empty mount");

	pid = h_service("web.sock");
	cr_assert(w_wait(&W, m0, root, IN_CREATE | IN_ISDIR, "web"),
		  "no IN_CREATE|IN_ISDIR web on MNT after the service started listening");
	/* the entry is visible by the time its event can be read */
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, 0, "IN_CREATE web was delivered before MNT/web was visible");
	cr_assert(h_wait_exists(h_m("web/state")));
	h_sleep_ms(SETTLE_MS);
	expect_aggregates_modified(m0, root, "a service appeared");
	expect_services_json_lists("web", true);
	w_assert_no_overflow(&W);
	if (w_count(&W, m0, root, IN_CREATE, "web") != 1 || w_count(&W, m0, -1, IN_DELETE, NULL))
		w_dump(&W, m0, "after appear");
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE | IN_ISDIR, "web"), 1,
		     "expected exactly one IN_CREATE|IN_ISDIR web");
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, "web"), 1);
	cr_assert_eq(w_count(&W, m0, -1, IN_DELETE, NULL), 0, "an IN_DELETE while appearing");
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, NULL), 1,
		     "IN_CREATE for something other than web");

	m1 = w_mark(&W);
	h_kill(pid);
	cr_assert(w_wait(&W, m1, root, IN_DELETE | IN_ISDIR, "web"),
		  "no IN_DELETE|IN_ISDIR web on MNT after the owner was SIGKILLed");
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, -1, "IN_DELETE web was delivered while MNT/web was still visible");
	h_sleep_ms(SETTLE_MS);
	expect_aggregates_modified(m1, root, "a service vanished");
	expect_services_json_lists("web", false);
	w_assert_no_overflow(&W);
	at = w_find(&W, m1, root, IN_DELETE, "web");
	if (w_count(&W, m1, root, IN_DELETE, "web") != 1 || w_count(&W, m1, -1, IN_CREATE, NULL))
		w_dump(&W, m1, "after vanish");
	cr_assert_eq(w_count(&W, m1, root, IN_DELETE | IN_ISDIR, "web"), 1,
		     "expected exactly one IN_DELETE|IN_ISDIR web");
	cr_assert_eq(w_count(&W, m1, root, IN_DELETE, "web"), 1);
	cr_assert_eq(w_count(&W, m1, -1, IN_CREATE, NULL), 0, "an IN_CREATE while vanishing");
	cr_assert_geq(at, 0);

	/* quiet again */
	m1 = w_mark(&W);
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m1, "an idle mount after the vanish");
	h_assert_daemon_alive();
}

/* ---- content changes ---- */

static const char *const found_files[] = {"socket", "pid", "uid", "gid", "state", "since"};

Test(events, sidecar_rewrite_modifies_its_files)
{
	size_t m0;
	int svc, root;
	char *text;

	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("web.json", "{\"version\": \"1\", \"team\": \"core\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	svc = w_add(&W, h_m("web"));
	root = w_add(&W, H.mnt);
	w_settle(&W);

	/* control: nothing changes */
	m0 = w_mark(&W);
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m0, "a live service, nothing changing");

	/* control: the same sidecar written again changes no file */
	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"1\", \"team\": \"core\"}");
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m0, "the sidecar rewritten with the same content");

	/* a real change: version only */
	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"2\", \"team\": \"core\"}");
	cr_assert(w_wait(&W, m0, svc, IN_MODIFY, "meta.json"),
		  "a watcher of MNT/web saw no IN_MODIFY meta.json after the sidecar changed");
	/* a watcher that reads on the event reads the new text */
	text = h_slurp(h_m("web/meta.json"));
	cr_assert(text && strstr(text, "\"version\":\"2\""),
		  "meta.json read on its IN_MODIFY is stale: %s", text ? text : "(unreadable)");
	free(text);
	cr_assert(w_wait(&W, m0, svc, IN_MODIFY, "version"), "no IN_MODIFY version");
	text = h_slurp(h_m("web/version"));
	cr_assert(text && strcmp(text, "2\n") == 0, "version read on its IN_MODIFY: '%s'",
		  text ? text : "(unreadable)");
	free(text);
	h_sleep_ms(SETTLE_MS);
	cr_expect(w_wait_n(&W, m0, root, IN_MODIFY, ".services.json", 1, AGG_MS),
		  "no IN_MODIFY .services.json after a sidecar change");
	w_assert_no_overflow(&W);
	for (size_t i = 0; i < sizeof(found_files) / sizeof(found_files[0]); i++) {
		size_t n = w_count(&W, m0, svc, 0, found_files[i]);
		if (n)
			w_dump(&W, m0, "after the sidecar change");
		cr_assert_eq(n, 0, "%zu event(s) on %s, whose content did not change", n,
			     found_files[i]);
	}
	cr_assert_eq(w_count(&W, m0, svc, 0, "team"), 0, "an event on team, which did not change");
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, NULL) +
			 w_count(&W, m0, root, IN_DELETE, NULL),
		     0, "the service left or came back on a sidecar change");
	h_assert_daemon_alive();
}

/*
 * A key added to the sidecar is a new file of the service directory, a
 * key removed a file that goes: like a real directory, IN_CREATE and
 * IN_DELETE for watchers of the service directory.
 */
Test(events, sidecar_key_files_come_and_go_as_meta_json_modify)
{
	size_t m0;
	int svc;

	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	svc = w_add(&W, h_m("web"));
	w_settle(&W);
	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"1\", \"team\": \"core\"}");
	cr_assert(h_wait_content(h_m("web/team"), "core\n"));
	cr_assert(w_wait(&W, m0, svc, IN_MODIFY, "meta.json"), "no IN_MODIFY meta.json");
	h_sleep_ms(SETTLE_MS);
	if (w_count(&W, m0, svc, 0, "version"))
		w_dump(&W, m0, "after a key was added");
	cr_assert_eq(w_count(&W, m0, svc, 0, "version"), 0,
		     "an event on version, which did not change");
	/*
	 * A key file coming or going is told as IN_MODIFY meta.json (README):
	 * svcfs does not poke files into existence. No other event may claim
	 * a change that did not happen.
	 */
	cr_assert_eq(w_count(&W, m0, svc, IN_DELETE, "team"), 0, "IN_DELETE team while it appeared");

	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"1\"}");
	cr_assert(h_wait_gone(h_m("web/team")));
	cr_assert(w_wait(&W, m0, svc, IN_MODIFY, "meta.json"), "no IN_MODIFY meta.json");
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(w_count(&W, m0, svc, IN_CREATE, "team"), 0, "IN_CREATE team while it went");
	h_assert_daemon_alive();
}

/*
 * .targets.json holds targets and labels only: a sidecar change that
 * touches neither leaves its text as it was, and an IN_MODIFY would make
 * every Prometheus watching it reload for nothing. Control: a label
 * change modifies it.
 */
Test(events, targets_json_modified_only_when_it_changes)
{
	size_t m0;
	int root;
	char *before, *text;

	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("web.json", "{\"version\": \"1\", \"labels\": {\"tier\": \"a\"}}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	root = w_add(&W, H.mnt);
	w_settle(&W);

	before = h_slurp(h_m(".targets.json"));
	cr_assert_not_null(before);
	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"2\", \"labels\": {\"tier\": \"a\"}}");
	cr_assert(h_wait_content(h_m("web/version"), "2\n"));
	cr_assert(w_wait(&W, m0, root, IN_MODIFY, ".services.json"),
		  "no IN_MODIFY .services.json after a sidecar change");
	h_sleep_ms(SETTLE_MS);
	expect_modified_iff_changed(m0, root, ".targets.json", before);
	free(before);

	before = h_slurp(h_m(".targets.json"));
	cr_assert_not_null(before);
	m0 = w_mark(&W);
	h_write_atomic("web.json", "{\"version\": \"2\", \"labels\": {\"tier\": \"b\"}}");
	cr_assert(w_wait(&W, m0, root, IN_MODIFY, ".services.json"));
	text = h_slurp(h_m(".targets.json"));
	cr_assert(text && strstr(text, "\"tier\":\"b\""), "the label is not in .targets.json: %s",
		  text ? text : "(unreadable)");
	free(text);
	h_sleep_ms(SETTLE_MS);
	expect_modified_iff_changed(m0, root, ".targets.json", before);
	free(before);
	h_assert_daemon_alive();
}

Test(events, state_change_modifies_state)
{
	struct h_service_opts slow = {.backlog = 4}; /* listens, never accepts */
	int fds[5], svc, root;
	size_t m0;
	pid_t pid;
	char want[32], *text;
	bool ok;

	h_mount_opts("probe_interval=0.2", NULL);
	pid = h_service_start("web.sock", &slow);
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	cr_assert(h_wait_content(h_m("web/pid"), want)); /* its one owner connect is done */
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	svc = w_add(&W, h_m("web"));
	root = w_add(&W, H.mnt);
	w_settle(&W);

	m0 = w_mark(&W);
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m0, "a live service, nothing changing");

	/* fill its accept queue (the kernel takes backlog + 1): busy */
	m0 = w_mark(&W);
	connect_clients(h_b("web.sock"), 5, fds);
	ok = w_wait(&W, m0, svc, IN_MODIFY, "state");
	text = h_slurp(h_m("web/state"));
	cr_assert(ok, "no IN_MODIFY state when the service became busy (state reads '%s')",
		  text ? text : "(unreadable)");
	cr_assert(text && strcmp(text, "busy\n") == 0, "state read on its IN_MODIFY: '%s'",
		  text ? text : "(unreadable)");
	free(text);
	h_sleep_ms(SETTLE_MS);
	cr_expect(w_wait_n(&W, m0, root, IN_MODIFY, ".services.json", 1, AGG_MS),
		  "no IN_MODIFY .services.json when the state changed");
	if (w_count(&W, m0, svc, IN_MODIFY, "state") != 1)
		w_dump(&W, m0, "after busy");
	cr_assert_eq(w_count(&W, m0, svc, IN_MODIFY, "state"), 1,
		     "expected one IN_MODIFY state for one change");
	cr_assert_eq(w_count(&W, m0, svc, 0, "pid") + w_count(&W, m0, svc, 0, "since"), 0,
		     "events on pid/since, which did not change");

	for (int i = 0; i < 5; i++)
		close(fds[i]);
	h_assert_daemon_alive();
}

/* ---- quiet ---- */

Test(events, nothing_changes_nothing_reported)
{
	size_t m0;
	int r;

	r = mkdir(h_b("g"), 0755);
	cr_assert_eq(r, 0);
	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("web.json", "{\"version\": \"1\", \"endpoints\": {\"http\": 8080}}");
	h_service("web.sock");
	h_service("g/api.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	cr_assert(h_wait_exists(h_m("g/api/state")));
	w_add(&W, H.mnt);
	w_add(&W, h_m("web"));
	w_add(&W, h_m("g"));
	w_add(&W, h_m("g/api"));
	w_settle(&W);

	m0 = w_mark(&W);
	/* readers walk the whole view meanwhile: reading is no change */
	for (int i = 0; i < 10; i++) {
		char **names = NULL;
		int n = h_list(h_m("web"), &names);
		cr_assert_geq(n, 0);
		for (char **p = names; *p; p++) {
			struct stat st;
			char *s = h_slurp(h_m("web/%s", *p));
			free(s);
			r = lstat(h_m("web/%s", *p), &st);
			cr_assert_eq(r, 0);
		}
		h_strv_free(names);
		free(h_slurp(h_m(".services.json")));
		free(h_slurp(h_m(".targets.json")));
		free(h_slurp(h_m("g/api/state")));
		h_sleep_ms(QUIET_MS / 10);
	}
	h_sleep_ms(SETTLE_MS);
	w_assert_no_overflow(&W);
	w_assert_quiet(&W, m0, "a mount where nothing changes, read by users");
	h_assert_daemon_alive();
}

/* ---- groups ---- */

Test(events, service_in_a_group)
{
	size_t m0, m1;
	int root, g, r;
	pid_t pid;

	r = mkdir(h_b("g"), 0755);
	cr_assert_eq(r, 0);
	h_mount_opts("probe_interval=0.2", NULL);
	cr_assert(h_wait_exists(h_m("g")));
	root = w_add(&W, H.mnt);
	g = w_add(&W, h_m("g"));
	w_settle(&W);

	m0 = w_mark(&W);
	h_sleep_ms(QUIET_MS);
	w_assert_quiet(&W, m0, "an idle mount with an empty group");

	pid = h_service("g/api.sock");
	cr_assert(w_wait(&W, m0, g, IN_CREATE | IN_ISDIR, "api"),
		  "no IN_CREATE|IN_ISDIR api on MNT/g after g/api.sock started listening");
	r = access(h_m("g/api"), F_OK);
	cr_assert_eq(r, 0, "IN_CREATE api was delivered before MNT/g/api was visible");
	h_sleep_ms(SETTLE_MS);
	expect_aggregates_modified(m0, root, "a grouped service appeared");
	if (w_count(&W, m0, g, IN_CREATE, "api") != 1 || w_count(&W, m0, root, IN_CREATE, NULL))
		w_dump(&W, m0, "after a grouped service appeared");
	cr_assert_eq(w_count(&W, m0, g, IN_CREATE | IN_ISDIR, "api"), 1);
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, NULL), 0,
		     "an IN_CREATE on MNT itself for a service of the group");

	m1 = w_mark(&W);
	h_kill(pid);
	cr_assert(w_wait(&W, m1, g, IN_DELETE | IN_ISDIR, "api"),
		  "no IN_DELETE|IN_ISDIR api on MNT/g after the owner was SIGKILLed");
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(w_count(&W, m1, g, IN_DELETE, "api"), 1);
	cr_assert_eq(w_count(&W, m1, root, IN_DELETE, NULL), 0,
		     "an IN_DELETE on MNT itself (the group stays)");
	cr_assert(exists(h_m("g")), "the group left with its last service");
	h_assert_daemon_alive();
}

/* A group directory appearing in BACKING appears in the mount like a directory: with events. */
/* A socket file removed from BACKING: the same single IN_DELETE. */
Test(events, socket_file_removed)
{
	size_t m0;
	int root, r;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	root = w_add(&W, H.mnt);
	w_settle(&W);
	m0 = w_mark(&W);
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(w_wait(&W, m0, root, IN_DELETE | IN_ISDIR, "web"),
		  "no IN_DELETE|IN_ISDIR web after web.sock was removed");
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(w_count(&W, m0, root, IN_DELETE, "web"), 1);
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, NULL), 0,
		     "the service came back although its process listens on an unlinked file");
	h_assert_daemon_alive();
}

Test(events, group_directory_comes_and_goes)
{
	size_t m0, m1;
	int root, r;

	h_mount_opts("probe_interval=0.2", NULL);
	root = w_add(&W, H.mnt);
	m0 = w_mark(&W);
	r = mkdir(h_b("g"), 0755);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("g")), "the group did not appear");
	cr_assert(w_wait(&W, m0, root, IN_CREATE | IN_ISDIR, "g"),
		  "MNT/g appeared without IN_CREATE|IN_ISDIR g on MNT");
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, "g"), 1);

	m1 = w_mark(&W);
	r = rmdir(h_b("g"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("g")), "the group did not go");
	cr_assert(w_wait(&W, m1, root, IN_DELETE | IN_ISDIR, "g"),
		  "MNT/g went without IN_DELETE|IN_ISDIR g on MNT");
	h_assert_daemon_alive();
}

/* ---- churn ---- */

Test(events, churn_every_service_created_then_deleted)
{
	pid_t pids[CHURN_N];
	char name[32];
	size_t m0;
	json_object *services;
	int root;
	bool ok;

	h_mount_opts(NULL, NULL);
	root = w_add(&W, H.mnt);
	m0 = w_mark(&W);
	for (int i = 0; i < CHURN_N + CHURN_WIN; i++) {
		if (i < CHURN_N) {
			struct h_service_opts o = {0};
			snprintf(name, sizeof(name), "c%03d.sock", i);
			pids[i] = h_service_start(name, &o);
		}
		if (i >= CHURN_WIN) {
			int k = i - CHURN_WIN;
			ok = h_wait_exists(h_m("c%03d", k));
			cr_assert(ok, "c%03d did not appear", k);
			h_kill(pids[k]);
		}
	}
	/* every one is gone from the mount */
	ok = h_wait_count(H.mnt, 2, 20000);
	if (!ok) {
		char **names = NULL;
		int n = h_list(H.mnt, &names);
		cr_log_error("MNT still lists %d entries, first: %s", n,
			     n > 0 ? names[0] : "(none)");
		h_strv_free(names);
	}
	cr_assert(ok, "the mount still lists killed services");
	services = h_json_file(h_m(".services.json"));
	cr_assert_not_null(services);
	cr_assert_eq(json_object_array_length(services), 0, ".services.json is not empty: %s",
		     json_object_to_json_string(services));
	json_object_put(services);

	ok = w_wait_n(&W, m0, root, IN_DELETE | IN_ISDIR, NULL, CHURN_N, 10000);
	w_assert_no_overflow(&W);
	h_sleep_ms(SETTLE_MS);
	if (!ok)
		w_dump(&W, m0, "churn");
	cr_assert(ok, "only %zu IN_DELETE for %d services",
		  w_count(&W, m0, root, IN_DELETE | IN_ISDIR, NULL), CHURN_N);
	for (int i = 0; i < CHURN_N; i++) {
		long c, d;
		size_t nc, nd;
		snprintf(name, sizeof(name), "c%03d", i);
		nc = w_count(&W, m0, root, IN_CREATE | IN_ISDIR, name);
		nd = w_count(&W, m0, root, IN_DELETE | IN_ISDIR, name);
		c = w_find(&W, m0, root, IN_CREATE | IN_ISDIR, name);
		d = w_find(&W, m0, root, IN_DELETE | IN_ISDIR, name);
		cr_assert(nc == 1 && nd == 1,
			  "%s: %zu IN_CREATE and %zu IN_DELETE, expected one each", name, nc, nd);
		cr_assert_lt(c, d, "%s: IN_DELETE (event %ld) before IN_CREATE (event %ld)", name,
			     d, c);
	}
	cr_assert_eq(w_count(&W, m0, root, IN_CREATE, NULL), CHURN_N, "unexpected IN_CREATE");
	h_assert_daemon_alive();
}

/* ---- users cannot change the view ---- */

Test(events, users_cannot_change_the_mount)
{
	struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct stat st;
	size_t m0;
	int r, fd;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	w_add(&W, H.mnt);
	w_add(&W, h_m("web"));
	w_settle(&W);
	r = stat(h_m("web/state"), &st);
	cr_assert_eq(r, 0);

	m0 = w_mark(&W);
	r = mkdir(h_m("x"), 0755);
	cr_assert(r == -1 && errno == EACCES, "mkdir MNT/x: %s", r ? strerror(errno) : "success");
	r = mkdir(h_m("web2"), 0755);
	cr_assert(r == -1 && errno == EACCES, "mkdir MNT/web2: %s",
		  r ? strerror(errno) : "success");
	r = rmdir(h_m("web"));
	cr_assert(r == -1 && errno == EACCES, "rmdir MNT/web: %s", r ? strerror(errno) : "success");
	fd = open(h_m("new"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644); /* touch */
	cr_assert(fd == -1 && errno == EACCES, "touch MNT/new: %s",
		  fd < 0 ? strerror(errno) : "success");
	r = utimensat(AT_FDCWD, h_m("web/state"), times, 0); /* touch of a file */
	cr_assert(r == -1 && errno == EACCES, "touch MNT/web/state: %s",
		  r ? strerror(errno) : "success");
	r = utimensat(AT_FDCWD, h_m("web"), times, 0);
	cr_assert(r == -1 && errno == EACCES, "touch MNT/web: %s", r ? strerror(errno) : "success");
	/* the very call svcfs pokes itself with */
	r = truncate(h_m("web/state"), st.st_size);
	cr_assert(r == -1 && errno == EACCES, "truncate MNT/web/state to its size: %s",
		  r ? strerror(errno) : "success");
	r = unlink(h_m("web/state"));
	cr_assert(r == -1 && errno == EACCES, "unlink MNT/web/state: %s",
		  r ? strerror(errno) : "success");
	r = rename(h_m("web"), h_m("web3"));
	cr_assert(r == -1 && errno == EACCES, "rename MNT/web: %s",
		  r ? strerror(errno) : "success");
	h_sleep_ms(SETTLE_MS);
	w_assert_quiet(&W, m0, "refused user changes");
	cr_assert(exists(h_m("web/state")), "MNT/web went away");
	r = access(h_m("x"), F_OK);
	cr_assert_eq(r, -1, "MNT/x exists");
	h_assert_daemon_alive();
}
