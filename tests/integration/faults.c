/*
 * faults — what svcfs does when things go wrong (README "When things go
 * wrong"): BACKING deleted and recreated, a group renamed, the daemon's
 * inotify queue overflowing, probe targets that never answer or cannot
 * accept, one process holding thousands of sockets, the daemon SIGKILLed
 * (a dead mount, and how to recover), readers stuck inside the mount while
 * services churn; and bad input: broken sidecars, odd names, symlinks that
 * loop or lead nowhere useful, files that only look like sockets, and every
 * call that would change the view.
 *
 * Each fault has a defined outcome that a test asserts on: the final state
 * after a bounded wait, never how long it took (figures are logged). What
 * other suites already cover is not repeated here:
 *   malformed, array, 70 KiB, other user's sidecar, a FIFO sidecar  metadata.c
 *   BACKING moved away and back                         cache.c
 *   group renamed (without events), hidden groups, depth groups.c
 *   a health check that times out (one service)         liveness.c
 *   newline, tab, non-UTF-8 names: valid JSON           aggregates.c
 *   hidden, dangling, self-looping, FIFO and file .sock,
 *   symlink to a socket or a directory, 250-byte names  services.c
 *   owner-only modes, other users' writes refused       access.c
 *   the refused changes' absence of events (a subset)   events.c
 *   SIGTERM with a shell inside the mount               daemon.c
 *   auto_unmount killed before any use                  tests/cli/systemd.sh
 * and tests/cli/faults.sh has what needs real users and real tools
 * (another user's 0600 socket; the dead mount's messages, umount -l).
 *
 * Helpers that run in other processes (servers, readers) report through a
 * shared anonymous mapping: h_spawn closes every inherited descriptor.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#define SETTLE_MS 600   /* three probe intervals of 0.2 s: late or repeated events show */
#define LONG_MS   90000 /* bound for work proportional to thousands of services */

/* ---- small helpers ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static void mkdir_b(const char *rel)
{
	int r = mkdir(h_b("%s", rel), 0755);

	cr_assert_eq(r, 0, "mkdir BACKING/%s: %s", rel, strerror(errno));
}

static const char *pid_line(pid_t pid)
{
	static char buf[4][32];
	static unsigned next;
	char *b = buf[next++ % 4];

	snprintf(b, 32, "%ld\n", (long)pid);
	return b;
}

/* The text of PATH for a message ("(absent)" if unreadable); static buffer. */
static const char *show(const char *path)
{
	static char buf[256];
	char *s = h_slurp(path);

	snprintf(buf, sizeof(buf), "%s", s ? s : "(absent)");
	free(s);
	return buf;
}

/* Write LEN bytes to PATH in place (O_TRUNC): NUL bytes and all. */
static void write_bytes(const char *path, const void *buf, size_t len)
{
	size_t off = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	while (off < len) {
		ssize_t n = write(fd, (const char *)buf + off, len - off);
		cr_assert_gt(n, 0, "write %s: %s", path, strerror(errno));
		off += (size_t)n;
	}
	close(fd);
}

/* Anonymous memory shared with the children forked from now on. */
static void *shared_new(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(p, MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 0, size);
	return p;
}

static bool flag_set(void *ctx)
{
	return atomic_load((_Atomic int *)ctx) != 0;
}

/* Wait (bounded) until *FLAG is non-zero; its value (0: never set). */
static int wait_flag(_Atomic int *flag, int ms)
{
	h_wait_until(flag_set, flag, ms);
	return atomic_load(flag);
}

/*
 * Run ARGV (a system tool) with stdout and stderr into ROOT/cmd.out;
 * wait up to 10 s. Its wait status, -1 if it had to be killed.
 */
static int run_cmd(const char *const argv[])
{
	pid_t parent = getpid(), pid;
	int fd;

	fd = open(h_r("cmd.out"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(126);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		close_range(3, ~0u, 0);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	h_track(pid);
	return h_join(pid, 10000);
}

/* PROG is in $PATH. */
static bool have_program(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

/* Names in .services.json, or -1 if it is not a JSON array. */
static int services_json_len(void)
{
	json_object *all = h_json_file(h_m(".services.json"));
	int n = -1;

	if (all && json_object_is_type(all, json_type_array))
		n = (int)json_object_array_length(all);
	json_object_put(all);
	return n;
}

/* The entry of .services.json named NAME (a new reference), or NULL. */
static json_object *services_json_entry(const char *name)
{
	json_object *all = h_json_file(h_m(".services.json")), *found = NULL;

	for (size_t i = 0; all && i < json_object_array_length(all); i++) {
		json_object *e = json_object_array_get_idx(all, i), *n = NULL;
		if (json_object_object_get_ex(e, "name", &n) &&
		    strcmp(json_object_get_string(n), name) == 0)
			found = json_object_get(e);
	}
	json_object_put(all);
	return found;
}

static bool has_entry(void *ctx)
{
	json_object *e = services_json_entry(ctx);

	json_object_put(e);
	return e != NULL;
}

/*
 * NAME's element of .services.json once it is there (NULL after the
 * bound). The file follows the tree within a batch: it is replaced after
 * the batch's directories appear (IN_MODIFY .services.json comes after
 * IN_CREATE NAME).
 */
static json_object *wait_services_json_entry(const char *name)
{
	if (!h_wait_until(has_entry, (void *)name, H_TIMEOUT_MS))
		return NULL;
	return services_json_entry(name);
}

/* The daemon's stderr into the test's log, to explain a failure. */
static void log_daemon_stderr(void)
{
	char *err = h_daemon_stderr();
	size_t len = err ? strlen(err) : 0;

	cr_log_error("svcfs stderr%s:\n%s", len > 6000 ? " (end)" : "",
	             err ? (len > 6000 ? err + len - 6000 : err) : "(none)");
	free(err);
}

static void assert_or_log(bool ok, const char *what)
{
	if (!ok)
		log_daemon_stderr();
	cr_assert(ok, "%s", what);
}

/* Lines of the daemon's stderr containing both A and B. */
static int log_lines_with(const char *a, const char *b)
{
	char *s = h_daemon_stderr(), *save = NULL;
	int n = 0;

	if (!s)
		return 0;
	for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, a) && (!b || strstr(l, b)))
			n++;
	free(s);
	return n;
}

/* The files svcfs shows for a service without (usable) sidecar. */
static const char *const found_files[] = {"socket", "meta.json", "pid",  "uid",
                                          "gid",    "state",     "since"};

/* DIR lists exactly the files svcfs found; false (and a log line) if not. */
static bool only_found_files(const char *dir)
{
	char **names = NULL;
	int n = h_list(dir, &names);
	bool ok = n == 7;

	for (size_t i = 0; ok && i < 7; i++)
		ok = h_strv_contains(names, found_files[i]);
	if (!ok) {
		cr_log_error("%s lists %d files:", dir, n);
		for (char **p = names; p && *p; p++)
			cr_log_error("  %s", *p);
	}
	h_strv_free(names);
	return ok;
}

/* ---- an inotify watcher on the mount, read on demand ---- */

#define CHANGES                                                                                    \
	(IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO |             \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_CLOSE_WRITE)
#define MAX_WATCH 8

struct wev {
	int wd;
	uint32_t mask;
	char name[NAME_MAX + 1];
};

static struct {
	int fd;
	struct wev *ev;
	size_t n, cap;
	bool overflow;
	int wds[MAX_WATCH];
	char paths[MAX_WATCH][PATH_MAX];
	unsigned nwatch;
} W = {.fd = -1};

static void w_open(void)
{
	W.fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	cr_assert_geq(W.fd, 0, "inotify_init1: %s", strerror(errno));
}

static void w_close(void)
{
	if (W.fd >= 0)
		close(W.fd);
	free(W.ev);
	memset(&W, 0, sizeof(W));
	W.fd = -1;
}

static int w_add(const char *path)
{
	int wd;

	if (W.fd < 0)
		w_open();
	wd = inotify_add_watch(W.fd, path, CHANGES);
	cr_assert_geq(wd, 0, "inotify_add_watch %s: %s", path, strerror(errno));
	cr_assert_lt(W.nwatch, MAX_WATCH);
	W.wds[W.nwatch] = wd;
	snprintf(W.paths[W.nwatch], PATH_MAX, "%s", path);
	W.nwatch++;
	return wd;
}

/* Read every event queued so far. */
static void w_drain(void)
{
	static char buf[64 * 1024] __attribute__((aligned(8)));

	if (W.fd < 0)
		return;
	for (;;) {
		ssize_t len = read(W.fd, buf, sizeof(buf));
		if (len <= 0)
			return;
		for (char *q = buf; q < buf + len;) {
			struct inotify_event *ie = (struct inotify_event *)q;
			if (ie->mask & IN_Q_OVERFLOW)
				W.overflow = true;
			if (W.n == W.cap) {
				W.cap = W.cap ? 2 * W.cap : 1024;
				W.ev = realloc(W.ev, W.cap * sizeof(*W.ev));
				cr_assert_not_null(W.ev);
			}
			W.ev[W.n].wd = ie->wd;
			W.ev[W.n].mask = ie->mask;
			snprintf(W.ev[W.n].name, sizeof(W.ev[W.n].name), "%s",
			         ie->len ? ie->name : "");
			W.n++;
			q += sizeof(*ie) + ie->len;
		}
	}
}

static size_t w_mark(void)
{
	w_drain();
	return W.n;
}

/* Events since FROM on WD (-1: any) with all bits of MASK (0: any), named NAME (NULL: any). */
static size_t w_count(size_t from, int wd, uint32_t mask, const char *name)
{
	size_t n = 0;

	w_drain();
	for (size_t i = from; i < W.n; i++)
		if ((wd < 0 || W.ev[i].wd == wd) && (W.ev[i].mask & mask) == mask &&
		    (!name || strcmp(W.ev[i].name, name) == 0))
			n++;
	return n;
}

/* Events since FROM with any bit of MASK. */
static size_t w_count_any(size_t from, uint32_t mask)
{
	size_t n = 0;

	w_drain();
	for (size_t i = from; i < W.n; i++)
		if (W.ev[i].mask & mask)
			n++;
	return n;
}

struct wwait {
	size_t from;
	int wd;
	uint32_t mask;
	const char *name;
};

static bool w_has(void *ctx)
{
	struct wwait *c = ctx;

	return w_count(c->from, c->wd, c->mask, c->name) > 0;
}

static bool w_wait(size_t from, int wd, uint32_t mask, const char *name)
{
	struct wwait c = {from, wd, mask, name};

	return h_wait_until(w_has, &c, H_TIMEOUT_MS);
}

static const char *w_path(int wd)
{
	for (unsigned i = 0; i < W.nwatch; i++)
		if (W.wds[i] == wd)
			return W.paths[i];
	return "?";
}

static void w_dump(size_t from, const char *why)
{
	w_drain();
	cr_log_error("%s: %zu event(s)", why, W.n > from ? W.n - from : 0);
	for (size_t i = from; i < W.n && i < from + 100; i++) {
		uint32_t m = W.ev[i].mask;
		cr_log_error("  %s: %s%s%s%s%s%s%s%s%s%s %s", w_path(W.ev[i].wd),
		             m & IN_CREATE ? "CREATE " : "", m & IN_DELETE ? "DELETE " : "",
		             m & IN_MODIFY ? "MODIFY " : "", m & IN_ATTRIB ? "ATTRIB " : "",
		             m & IN_MOVED_FROM ? "MOVED_FROM " : "",
		             m & IN_MOVED_TO ? "MOVED_TO " : "",
		             m & IN_DELETE_SELF ? "DELETE_SELF " : "",
		             m & IN_IGNORED ? "IGNORED " : "", m & IN_ISDIR ? "ISDIR " : "",
		             m & IN_CLOSE_WRITE ? "CLOSE_WRITE" : "", W.ev[i].name);
	}
}

/* Wait until no event arrived for SETTLE_MS (bounded): the pokes of a setup are over. */
static void w_settle(void)
{
	long long end = now_ms() + H_TIMEOUT_MS, quiet_since = now_ms();
	size_t last = w_mark();

	while (now_ms() - quiet_since < SETTLE_MS) {
		size_t n;
		h_sleep_ms(20);
		n = w_mark();
		if (n != last) {
			last = n;
			quiet_since = now_ms();
		}
		if (now_ms() > end) {
			w_dump(0, "never quiet");
			cr_assert_fail("events kept coming with nothing changing");
		}
	}
}

static void faults_init(void)
{
	h_setup();
}

static void faults_fini(void)
{
	w_close();
	if (H.daemon > 0)
		kill(H.daemon, SIGCONT); /* a test that failed while it had the daemon stopped */
	h_teardown();
}

TestSuite(faults, .init = faults_init, .fini = faults_fini, .timeout = 90);

/* =====================================================================
 * Faults
 * ===================================================================== */

/*
 * rm -rf BACKING while services listen in it: every service and group
 * leaves the view (one IN_DELETE each), the mount stays usable (an empty
 * root), one log line says BACKING is gone. BACKING made again: svcfs finds
 * it at a probe interval and follows it as before, without a remount. The
 * old services still listen on deleted files: they never come back.
 */
Test(faults, backing_deleted_and_recreated)
{
	struct stat st;
	size_t m0, m1;
	int root, r;

	h_mount_opts("probe_interval=0.2", NULL);
	mkdir_b("g");
	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	h_service("g/api.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	cr_assert(h_wait_exists(h_m("g/api/state")));
	root = w_add(H.mnt);
	w_settle();

	m0 = w_mark();
	r = unlink(h_b("web.sock")) | unlink(h_b("web.json")) | unlink(h_b("g/api.sock")) |
	    rmdir(h_b("g")) | rmdir(H.backing);
	cr_assert_eq(r, 0, "rm -rf BACKING: %s", strerror(errno));
	assert_or_log(h_wait_count(H.mnt, 2, H_TIMEOUT_MS),
	              "services stayed in the view after BACKING was deleted");
	cr_assert(w_wait(m0, root, IN_DELETE | IN_ISDIR, "web"), "no IN_DELETE web");
	cr_assert(w_wait(m0, root, IN_DELETE | IN_ISDIR, "g"), "no IN_DELETE g");
	cr_assert_eq(services_json_len(), 0, ".services.json is not [] without BACKING");
	assert_or_log(h_wait_log("deleted"), "no log line saying BACKING was deleted");
	r = stat(H.mnt, &st);
	cr_assert_eq(r, 0, "the mount root is not usable without BACKING: %s", strerror(errno));
	h_assert_daemon_alive();

	/* BACKING again, with new services: followed without a remount */
	m1 = w_mark();
	r = mkdir(H.backing, 0755);
	cr_assert_eq(r, 0);
	mkdir_b("g2");
	h_service("new.sock");
	h_service("g2/x.sock");
	assert_or_log(h_wait_content(h_m("new/state"), "alive\n"),
	              "a service in the recreated BACKING did not appear");
	cr_assert(h_wait_exists(h_m("g2/x/state")), "a group of the recreated BACKING is missing");
	cr_assert(w_wait(m1, root, IN_CREATE | IN_ISDIR, "new"), "no IN_CREATE new");
	cr_assert(w_wait(m1, root, IN_CREATE | IN_ISDIR, "g2"), "no IN_CREATE g2");
	cr_assert(h_wait_log("back; following it again"), "no log line saying BACKING is back");
	/* the old processes listen on deleted files: not services */
	h_sleep_ms(SETTLE_MS);
	cr_assert(!exists(h_m("web")) && !exists(h_m("g")),
	          "a service of the deleted BACKING came back");
	cr_assert_eq(services_json_len(), 2);
	/* and later changes are followed (the new directory is watched) */
	r = unlink(h_b("new.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("new")), "the recreated BACKING is not watched");
	h_assert_daemon_alive();
}

/*
 * The same, but BACKING is deleted and recreated (with new services)
 * while the daemon is stopped: it meets the deletion and the new
 * directory at once, and must end showing the new directory's services.
 */
Test(faults, backing_replaced_while_the_daemon_sleeps)
{
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("old.sock");
	cr_assert(h_wait_exists(h_m("old/state")));
	kill(H.daemon, SIGSTOP);
	r = unlink(h_b("old.sock")) | rmdir(H.backing) | mkdir(H.backing, 0755);
	if (r == 0)
		h_service("fresh.sock");
	kill(H.daemon, SIGCONT);
	cr_assert_eq(r, 0, "replace BACKING: %s", strerror(errno));
	assert_or_log(h_wait_content(h_m("fresh/state"), "alive\n"),
	              "the service of the replaced BACKING did not appear");
	cr_assert(h_wait_gone(h_m("old")));
	cr_assert(h_wait_count(H.mnt, 3, H_TIMEOUT_MS));
	r = unlink(h_b("fresh.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("fresh")), "the replaced BACKING is not watched");
	h_assert_daemon_alive();
}

/*
 * A group renamed in BACKING: its services move with it, keeping their
 * owners; watchers of the root see one IN_DELETE old and one IN_CREATE new
 * (a rename is shown as a group leaving and another arriving, not as a
 * move); watchers of the old group see its services deleted and the
 * directory itself go.
 */
Test(faults, group_renamed_with_events)
{
	pid_t a, b;
	size_t m0;
	int root, old, r;
	json_object *e, *g = NULL;

	h_mount_opts("probe_interval=0.2", NULL);
	mkdir_b("old");
	a = h_service("old/a.sock");
	b = h_service("old/b.sock");
	cr_assert(h_wait_content(h_m("old/a/pid"), pid_line(a)));
	cr_assert(h_wait_content(h_m("old/b/pid"), pid_line(b)));
	root = w_add(H.mnt);
	old = w_add(h_m("old"));
	w_settle();

	m0 = w_mark();
	r = rename(h_b("old"), h_b("new"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_content(h_m("new/a/pid"), pid_line(a)), "a did not move with its group");
	cr_assert(h_wait_content(h_m("new/b/pid"), pid_line(b)), "b did not move with its group");
	cr_assert(h_wait_gone(h_m("old")), "the old group name stayed");
	cr_assert(w_wait(m0, root, IN_DELETE | IN_ISDIR, "old"), "no IN_DELETE old");
	cr_assert(w_wait(m0, root, IN_CREATE | IN_ISDIR, "new"), "no IN_CREATE new");
	cr_assert(w_wait(m0, old, IN_DELETE_SELF, NULL), "watchers of MNT/old: no IN_DELETE_SELF");
	h_sleep_ms(SETTLE_MS);
	if (w_count(m0, root, IN_CREATE, NULL) != 1 || w_count(m0, root, IN_DELETE, NULL) != 1)
		w_dump(m0, "after the rename");
	cr_assert_eq(w_count(m0, root, IN_CREATE, NULL), 1, "IN_CREATE on MNT: only new");
	cr_assert_eq(w_count(m0, root, IN_DELETE, NULL), 1, "IN_DELETE on MNT: only old");
	cr_assert_eq(w_count(m0, root, IN_MOVED_FROM, NULL) + w_count(m0, root, IN_MOVED_TO, NULL),
	             0);
	cr_assert_eq(w_count(m0, old, IN_DELETE | IN_ISDIR, "a"), 1, "MNT/old: no IN_DELETE a");
	cr_assert_eq(w_count(m0, old, IN_DELETE | IN_ISDIR, "b"), 1, "MNT/old: no IN_DELETE b");
	cr_assert_eq(w_count(m0, -1, IN_Q_OVERFLOW, NULL), 0);
	e = services_json_entry("a");
	cr_assert_not_null(e);
	cr_assert(json_object_object_get_ex(e, "group", &g) &&
	              json_object_is_type(g, json_type_string) &&
	              strcmp(json_object_get_string(g), "new") == 0,
	          ".services.json: a is not in group new: %s", json_object_to_json_string(e));
	json_object_put(e);
	h_assert_daemon_alive();
}

/* ---- the daemon's inotify queue overflows ---- */

static unsigned read_max_queued(void)
{
	char *s = h_slurp("/proc/sys/fs/inotify/max_queued_events");
	unsigned v = s ? (unsigned)strtoul(s, NULL, 10) : 0;

	free(s);
	return v;
}

struct many_ctx {
	char dir[PATH_MAX];
	char prefix[32];
	unsigned n;
	unsigned dgram_every; /* every Nth socket is a datagram socket (0: none) */
	_Atomic int ready;    /* 1 all bound, else errno + 1000 */
};

/* In a child: N sockets DIR/PREFIX%04u.sock in this one process, then sleep. */
static void many_sockets(void *arg)
{
	struct many_ctx *c = arg;
	struct rlimit rl = {c->n + 64, c->n + 64};

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || chdir(c->dir) < 0) {
		atomic_store(&c->ready, 1000 + errno);
		_exit(1);
	}
	for (unsigned i = 0; i < c->n; i++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		bool dgram = c->dgram_every && i % c->dgram_every == 0;
		int fd = socket(AF_UNIX, (dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s%04u.sock", c->prefix, i);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    (!dgram && listen(fd, 64) < 0)) {
			atomic_store(&c->ready, 1000 + errno);
			_exit(1);
		}
	}
	atomic_store(&c->ready, 1);
	for (;;)
		pause();
}

/* Start many_sockets in DIR (below BACKING); returns its pid once all are bound. */
static pid_t start_many(struct many_ctx *c, const char *dir, const char *prefix, unsigned n,
                        unsigned dgram_every)
{
	pid_t pid;
	int st;

	snprintf(c->dir, sizeof(c->dir), "%s", h_b("%s", dir));
	snprintf(c->prefix, sizeof(c->prefix), "%s", prefix);
	c->n = n;
	c->dgram_every = dgram_every;
	atomic_store(&c->ready, 0);
	pid = h_spawn(many_sockets, c);
	st = wait_flag(&c->ready, LONG_MS);
	cr_assert_eq(st, 1, "%u sockets did not start: %s", n,
	             st > 1000 ? strerror(st - 1000) : "timeout");
	return pid;
}

/* Create N regular files BACKING/NAME%05u (2 inotify events each: create, close). */
static void flood_create(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		int fd = open(h_b("flood-%05u", i), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		cr_assert_geq(fd, 0, "create flood file %u: %s", i, strerror(errno));
		close(fd);
	}
}

/*
 * More events in BACKING than the daemon's inotify queue holds
 * (fs.inotify.max_queued_events, not changed here). The daemon is stopped
 * meanwhile, so the queue overflows for certain; the changes made after
 * the flood (a socket file removed, services started, a group made, a
 * sidecar rewritten) have no event of their own. probe_interval is 60 s:
 * only the rescan on IN_Q_OVERFLOW can make the view right. Then a second
 * storm (every flood file renamed, 2 events each) with the daemon running,
 * while services come and go: the view ends equal to BACKING either way.
 */
Test(faults, inotify_queue_overflow_rescans)
{
	struct many_ctx *many = shared_new(sizeof(*many));
	unsigned maxq = read_max_queued(), nflood;
	pid_t late[10], many_pid;
	size_t m0;
	int root, r;
	bool ok;

	if (maxq == 0 || maxq > 200000)
		cr_skip_test("fs.inotify.max_queued_events is %u: flooding it would take too long",
		             maxq);
	nflood = maxq; /* 2 events a file: twice the queue */
	h_mount_opts("probe_interval=60", NULL);
	many_pid = start_many(many, "", "s", 20, 0);
	h_write_atomic("side.json", "{\"version\": \"1\"}");
	h_service("side.sock");
	h_service("doomed.sock");
	assert_or_log(h_wait_count(H.mnt, 22 + 2, H_TIMEOUT_MS), "the services did not appear");
	cr_assert(h_wait_content(h_m("side/version"), "1\n"));
	root = w_add(H.mnt);
	w_settle();

	m0 = w_mark();
	kill(H.daemon, SIGSTOP);
	flood_create(nflood);
	/* what only a rescan can find: the queue is full, these events are lost */
	r = unlink(h_b("doomed.sock"));
	for (int i = 0; i < 5; i++)
		late[i] = h_service(h_b("late%d.sock", i));
	r |= mkdir(h_b("lg"), 0755);
	h_service("lg/inner.sock");
	h_write_atomic("side.json", "{\"version\": \"2\"}");
	kill(H.daemon, SIGCONT);
	cr_assert_eq(r, 0);

	assert_or_log(h_wait_log("inotify queue overflow"), "the daemon did not see the overflow");
	ok = h_wait_count(H.mnt, 20 + 1 + 5 + 1 + 2, 10000) && h_wait_gone(h_m("doomed"));
	assert_or_log(ok, "after the overflow the view is not BACKING");
	for (int i = 0; i < 5; i++)
		cr_assert(h_wait_content(h_m("late%d/pid", i), pid_line(late[i])),
		          "late%d missing after the overflow", i);
	cr_assert(h_wait_exists(h_m("lg/inner/state")), "lg/inner missing after the overflow");
	cr_assert(h_wait_content(h_m("side/version"), "2\n"),
	          "side's rewritten sidecar not seen after the overflow");
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "late%d", i);
		cr_assert(w_wait(m0, root, IN_CREATE | IN_ISDIR, name), "no IN_CREATE %s", name);
	}
	cr_assert(w_wait(m0, root, IN_DELETE | IN_ISDIR, "doomed"), "no IN_DELETE doomed");
	cr_assert(w_wait(m0, root, IN_CREATE | IN_ISDIR, "lg"), "no IN_CREATE lg");
	cr_assert(!W.overflow, "the test's own watcher overflowed");
	h_assert_daemon_alive();

	/* storm two, the daemon running: 2 events per rename, services coming and going */
	for (unsigned i = 0; i < nflood; i++) {
		r = rename(h_b("flood-%05u", i), h_b("moved-%05u", i));
		cr_assert_eq(r, 0, "rename flood file %u: %s", i, strerror(errno));
		if (i == nflood / 3)
			h_kill(many_pid); /* s0000..s0019 leave through their owner's pidfd */
		if (i == nflood / 2)
			r = unlink(h_b("side.sock"));
		if (i % (nflood / 5) == 0 && i / (nflood / 5) < 5)
			late[5 + i / (nflood / 5)] =
			    h_service(h_b("late%u.sock", 5 + i / (nflood / 5)));
		cr_assert_eq(r, 0);
	}
	ok = h_wait_count(H.mnt, 10 + 1 + 2, 10000);
	assert_or_log(ok, "after a rename storm with churn the view is not BACKING");
	for (int i = 0; i < 10; i++)
		cr_assert(h_wait_content(h_m("late%d/pid", i), pid_line(late[i])),
		          "late%d missing after the storm", i);
	cr_assert(h_wait_exists(h_m("lg/inner/state")));
	cr_assert_eq(services_json_len(), 11);
	h_assert_daemon_alive();
}

/* ---- probe targets that never answer, or cannot accept ---- */

#define STALL_LISTENERS 96
#define STALL_HELD      512
#define STALL_DRIBBLE   64

struct stall_ctx {
	char dir[PATH_MAX];
	unsigned nsilent, ndribble, nhealthy;
	_Atomic int ready;                      /* 1 listening, else errno + 1000 */
	_Atomic unsigned hits[STALL_LISTENERS]; /* connections accepted, per listener */
};

enum stall_kind { STALL_SILENT, STALL_DRIBBLE_KIND, STALL_HEALTHY };

static const char status_200[] = "HTTP/1.0 200 OK\r\n\r\n";

/*
 * In a child: listeners sNN.sock (accept, never write, keep the
 * connection), dNN.sock (write a 200 status line one byte every 40 ms:
 * complete long after any sane timeout) and okNN.sock (answer 200 at once).
 */
static void stall_servers(void *arg)
{
	struct stall_ctx *c = arg;
	struct rlimit rl = {4096, 4096};
	struct pollfd p[STALL_LISTENERS];
	enum stall_kind kind[STALL_LISTENERS];
	int held[STALL_HELD], drib[STALL_DRIBBLE];
	unsigned nheld = 0, ndrib = 0, n = 0, off[STALL_DRIBBLE];
	long long next = 0;

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || chdir(c->dir) < 0)
		goto fail;
	for (unsigned k = 0; k < 3; k++) {
		unsigned count = k == 0 ? c->nsilent : k == 1 ? c->ndribble : c->nhealthy;
		for (unsigned i = 0; i < count && n < STALL_LISTENERS; i++, n++) {
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s%02u.sock",
			         k == 0   ? "s"
			         : k == 1 ? "d"
			                  : "ok",
			         i);
			p[n].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			p[n].events = POLLIN;
			kind[n] = (enum stall_kind)k;
			if (p[n].fd < 0 || bind(p[n].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    listen(p[n].fd, 64) < 0)
				goto fail;
		}
	}
	atomic_store(&c->ready, 1);
	for (;;) {
		poll(p, n, 10);
		for (unsigned i = 0; i < n; i++) {
			int fd;
			if (!(p[i].revents & POLLIN))
				continue;
			while ((fd = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >=
			       0) {
				atomic_fetch_add(&c->hits[i], 1);
				if (kind[i] == STALL_HEALTHY) {
					send(fd, status_200, strlen(status_200), MSG_NOSIGNAL);
					close(fd);
				} else if (kind[i] == STALL_SILENT) {
					if (nheld == STALL_HELD) {
						close(held[0]);
						memmove(held, held + 1,
						        (STALL_HELD - 1) * sizeof(int));
						nheld--;
					}
					held[nheld++] = fd;
				} else {
					if (ndrib == STALL_DRIBBLE) {
						close(drib[0]);
						memmove(drib, drib + 1,
						        (STALL_DRIBBLE - 1) * sizeof(int));
						memmove(off, off + 1,
						        (STALL_DRIBBLE - 1) * sizeof(unsigned));
						ndrib--;
					}
					drib[ndrib] = fd;
					off[ndrib++] = 0;
				}
			}
		}
		if (now_ms() >= next) {
			next = now_ms() + 40;
			for (unsigned i = 0; i < ndrib; i++)
				if (off[i] < strlen(status_200) &&
				    send(drib[i], status_200 + off[i], 1, MSG_NOSIGNAL) == 1)
					off[i]++;
		}
	}
fail:
	atomic_store(&c->ready, 1000 + errno);
	_exit(1);
}

/*
 * Services with "health_check" whose servers accept and never answer (or
 * answer one byte at a time): each becomes `unhealthy` (one log line) and
 * stays listed; the ones that answer stay `alive`. There are more of them
 * than svcfs probes at once (64), and meanwhile other services appear and
 * vanish as usual: the daemon never waits on a service. Its descriptors
 * stay bounded (a probe's connection is closed at its deadline).
 */
Test(faults, health_check_never_answered)
{
	enum { NSILENT = 72, NDRIB = 4, NOK = 2 };
	struct stall_ctx *c = shared_new(sizeof(*c));
	int base, fds, st;
	long long t0;
	bool ok;

	h_mount_opts("probe_interval=0.2,probe_timeout=100", NULL);
	base = h_fd_count(H.daemon);
	for (unsigned i = 0; i < NSILENT; i++)
		h_write_atomic(h_b("s%02u.json", i), "{\"health_check\": \"/healthz\"}");
	for (unsigned i = 0; i < NDRIB; i++)
		h_write_atomic(h_b("d%02u.json", i), "{\"health_check\": \"/healthz\"}");
	for (unsigned i = 0; i < NOK; i++)
		h_write_atomic(h_b("ok%02u.json", i), "{\"health_check\": \"/healthz\"}");
	snprintf(c->dir, sizeof(c->dir), "%s", H.backing);
	c->nsilent = NSILENT;
	c->ndribble = NDRIB;
	c->nhealthy = NOK;
	h_spawn(stall_servers, c);
	st = wait_flag(&c->ready, H_TIMEOUT_MS);
	cr_assert_eq(st, 1, "the stalling servers did not start: %s",
	             st > 1000 ? strerror(st - 1000) : "timeout");
	t0 = now_ms();

	/* meanwhile, services come and go as always */
	for (int i = 0; i < 10; i++) {
		pid_t pid = h_service(h_b("churn%d.sock", i));
		ok = h_wait_exists(h_m("churn%d/state", i));
		assert_or_log(ok, "a service did not appear while health checks hang");
		h_kill(pid);
		ok = h_wait_gone(h_m("churn%d", i));
		assert_or_log(ok, "a killed service stayed while health checks hang");
	}
	/*
	 * Every service asking for a health check gets them (listener order:
	 * s, d, ok): more connections than svcfs's one owner connect.
	 */
	h_sleep_ms(1000); /* five probe intervals */
	for (unsigned i = 0; i < NSILENT + NDRIB + NOK; i++)
		cr_expect_gt(atomic_load(&c->hits[i]), 1,
		             "listener %u (%s%02u) never got a health check: starved by the others",
		             i,
		             i < NSILENT           ? "s"
		             : i < NSILENT + NDRIB ? "d"
		                                   : "ok",
		             i < NSILENT           ? i
		             : i < NSILENT + NDRIB ? i - NSILENT
		                                   : i - NSILENT - NDRIB);
	for (unsigned i = 0; i < NSILENT; i++)
		cr_assert(h_wait_content(h_m("s%02u/state", i), "unhealthy\n"),
		          "s%02u (accepts, never answers) is '%s', not unhealthy", i,
		          show(h_m("s%02u/state", i)));
	for (unsigned i = 0; i < NDRIB; i++)
		cr_assert(h_wait_content(h_m("d%02u/state", i), "unhealthy\n"),
		          "d%02u (answers a byte every 40 ms) is '%s', not unhealthy", i,
		          show(h_m("d%02u/state", i)));
	cr_log_info("figure: %u silent health checks all unhealthy %lld ms after the servers "
	            "listened (probe_timeout 100 ms, interval 0.2 s)",
	            NSILENT + NDRIB, now_ms() - t0);
	for (unsigned i = 0; i < NOK; i++)
		cr_assert(h_wait_content(h_m("ok%02u/state", i), "alive\n"),
		          "ok%02u (answers 200) is '%s'", i, show(h_m("ok%02u/state", i)));
	h_sleep_ms(1000); /* five more rounds of probes */
	fds = h_fd_count(H.daemon);
	cr_log_info("figure: daemon fds %d before, %d with %u hanging health checks", base, fds,
	            NSILENT + NDRIB);
	cr_assert_leq(fds, base + 64 + 16, "the daemon holds %d descriptors (%d at start)", fds,
	              base);
	/* still listed, each said once */
	cr_assert_eq(services_json_len(), NSILENT + NDRIB + NOK);
	cr_assert_eq(log_lines_with("s00: unhealthy", NULL), 1, "s00 unhealthy: not one log line");
	cr_assert(h_wait_content(h_m("s00/state"), "unhealthy\n"));
	h_assert_daemon_alive();
}

struct busy_ctx {
	char path[PATH_MAX];
	_Atomic int ready; /* 1 listening, else errno + 1000 */
	_Atomic int drain; /* set by the test: accept from now on */
	_Atomic int accepted;
};

/* In a child: listen with backlog 1 at PATH, accept nothing until told, then serve. */
static void busy_server(void *arg)
{
	struct busy_ctx *c = arg;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(c->path) >= sizeof(sa.sun_path)) {
		atomic_store(&c->ready, 1000 + ENAMETOOLONG);
		_exit(1);
	}
	memcpy(sa.sun_path, c->path, strlen(c->path) + 1);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1) < 0) {
		atomic_store(&c->ready, 1000 + errno);
		_exit(1);
	}
	atomic_store(&c->ready, 1);
	while (!atomic_load(&c->drain))
		h_sleep_ms(1);
	for (;;) {
		int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		atomic_fetch_add(&c->accepted, 1);
		send(cfd, "hello\n", 6, MSG_NOSIGNAL);
		close(cfd);
	}
}

/* A non-blocking connect to PATH: 0, or -errno (-EAGAIN: the accept queue is full). */
static int connect_nb(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), r = 0;

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path), "%s: too long for a socket address", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		r = -errno;
	*ret_fd = fd;
	return r;
}

/*
 * A service whose accept queue is already full when svcfs first sees it,
 * with no PID hint, so svcfs would have to connect to learn its owner. It
 * is shown at once as `busy`, owned (uid/gid) by its socket file's owner,
 * with no `pid` file: svcfs does not add a connection to a full queue. Once
 * the service keeps up, svcfs connects once, learns the owner (`pid`) and
 * the state is `alive`; the daemon never waited on it.
 */
Test(faults, busy_service_owner_learnt_once_it_keeps_up)
{
	struct busy_ctx *c = shared_new(sizeof(*c));
	int cl[3], r[3], st;
	pid_t pid;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("control0.sock");
	cr_assert(h_wait_exists(h_m("control0/state")));
	snprintf(c->path, sizeof(c->path), "%s", h_b("busy.sock"));

	kill(H.daemon, SIGSTOP); /* svcfs must not learn the owner before the queue is full */
	pid = h_spawn(busy_server, c);
	st = wait_flag(&c->ready, H_TIMEOUT_MS);
	for (int i = 0; i < 3; i++)
		r[i] = st == 1 ? connect_nb(c->path, &cl[i]) : (cl[i] = -1, -1);
	kill(H.daemon, SIGCONT);
	cr_assert_eq(st, 1, "the busy server did not start");
	cr_assert(r[0] == 0 && r[1] == 0 && r[2] == -EAGAIN,
	          "expected a full queue after two clients (backlog 1): %d %d %d", r[0], r[1],
	          r[2]);

	assert_or_log(h_wait_content(h_m("busy/state"), "busy\n"),
	              "a service with a full accept queue is not shown busy");
	h_service("control1.sock");
	cr_assert(h_wait_exists(h_m("control1/state")), "the daemon stopped following BACKING");
	h_sleep_ms(SETTLE_MS);
	cr_assert(!exists(h_m("busy/pid")), "pid '%s' learnt from a full queue?",
	          show(h_m("busy/pid")));
	cr_assert(h_wait_content(h_m("busy/uid"), "0\n"), "uid is not the socket file's owner");
	cr_assert_eq(atomic_load(&c->accepted), 0);

	atomic_store(&c->drain, 1);
	assert_or_log(h_wait_content(h_m("busy/state"), "alive\n"),
	              "the service stayed busy after it drained its queue");
	assert_or_log(h_wait_content(h_m("busy/pid"), pid_line(pid)),
	              "the owner was not learnt once the service kept up");
	h_sleep_ms(SETTLE_MS);
	/* the two clients, and svcfs's one connect in the service's life */
	cr_assert_eq(atomic_load(&c->accepted), 3, "the server accepted %d connections",
	             atomic_load(&c->accepted));
	for (int i = 0; i < 3; i++)
		close(cl[i]);
	h_kill(pid);
	cr_assert(h_wait_gone(h_m("busy")), "the killed busy service stayed");
	h_assert_daemon_alive();
}

/* ---- one process, thousands of sockets ---- */

struct owner_ctx {
	pid_t pid;
	int n, wrong;
};

/* .services.json lists C->n services, each owned by C->pid. */
static bool all_owned_by(void *ctx)
{
	struct owner_ctx *c = ctx;
	json_object *all = h_json_file(h_m(".services.json"));
	int n = 0, wrong = 0;

	for (size_t i = 0; all && i < json_object_array_length(all); i++) {
		json_object *pid = NULL;
		n++;
		if (!json_object_object_get_ex(json_object_array_get_idx(all, i), "pid", &pid) ||
		    json_object_get_int64(pid) != c->pid)
			wrong++;
	}
	json_object_put(all);
	c->wrong = wrong;
	return n == c->n && wrong == 0;
}

/*
 * 3000 sockets in one process, one in ten a datagram socket: all appear,
 * the process is found as the owner of every one, and the daemon holds one
 * pidfd for it, not one per socket (its descriptor count stays bounded).
 * SIGKILL of the process: every one of them leaves.
 */
Test(faults, thousands_of_sockets_in_one_process, .timeout = 240)
{
	enum { N = 3000, DGRAM_EVERY = 10 };
	struct many_ctx *many = shared_new(sizeof(*many));
	struct owner_ctx oc = {.n = N};
	long long t0, t_bound, t_shown, t_owned, t_kill, t_gone;
	int base, fds;
	bool ok;

	h_mount();
	base = h_fd_count(H.daemon);
	t0 = now_ms();
	oc.pid = start_many(many, "", "m", N, DGRAM_EVERY);
	t_bound = now_ms();
	ok = h_wait_count(H.mnt, N + 2, LONG_MS);
	t_shown = now_ms();
	assert_or_log(ok, "not all 3000 sockets of one process appeared");
	ok = h_wait_until(all_owned_by, &oc, LONG_MS);
	t_owned = now_ms();
	assert_or_log(ok, "the process was not found as the owner of every socket");
	cr_assert(h_wait_content(h_m("m0000/state"), "alive\n"), "a dgram socket is not alive");
	cr_assert(h_wait_content(h_m("m0001/pid"), pid_line(oc.pid)));
	fds = h_fd_count(H.daemon);
	cr_log_info("figure: daemon fds %d before, %d with %d sockets of one owner", base, fds, N);
	cr_assert_leq(fds, base + 16, "the daemon holds %d descriptors for one owner (%d before)",
	              fds, base);

	t_kill = now_ms();
	h_kill(oc.pid);
	ok = h_wait_count(H.mnt, 2, LONG_MS);
	t_gone = now_ms();
	assert_or_log(ok, "services of the killed process stayed");
	cr_assert_eq(services_json_len(), 0);
	cr_log_info("figure: %d sockets (%d dgram) bound in %lld ms; all shown %lld ms after, "
	            "all owners known after %lld ms; SIGKILL -> all gone in %lld ms",
	            N, N / DGRAM_EVERY, t_bound - t0, t_shown - t_bound, t_owned - t_bound,
	            t_gone - t_kill);
	fds = h_fd_count(H.daemon);
	cr_assert_leq(fds, base + 4, "the daemon keeps %d descriptors after the owner died (%d)",
	              fds, base);
	h_assert_daemon_alive();
}

/* ---- the daemon SIGKILLed ---- */

static void kill_daemon(void)
{
	int st;

	kill(H.daemon, SIGKILL); /* not reaped yet: the pid is still the daemon's */
	st = h_daemon_stop();    /* reaps it */
	cr_assert(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
	          "the daemon did not die of SIGKILL (status %#x)", st);
}

/* CALL fails with ENOTCONN. */
#define ASSERT_ENOTCONN(call, what)                                                                \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		cr_assert(r_ == -1 && e_ == ENOTCONN, "%s on the dead mount: %s", what,            \
		          r_ == -1 ? strerror(e_) : "success");                                    \
	} while (0)

/* CALL either succeeds (the kernel's cached answer) or fails with ENOTCONN; logged. */
#define CACHED_OR_ENOTCONN(call, what)                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		cr_log_info("dead mount, warm: %s: %s", what,                                      \
		            r_ >= 0 ? "answered from the cache" : strerror(e_));                   \
		cr_assert(r_ >= 0 || e_ == ENOTCONN, "%s on the dead mount: %s", what,             \
		          strerror(e_));                                                           \
	} while (0)

static long slurp_ok(const char *path)
{
	char *s = h_slurp(path);
	long r = s ? (long)strlen(s) : -1;

	free(s);
	return r;
}

static long list_ok(const char *path)
{
	char **names = NULL;
	int n = h_list(path, &names);

	h_strv_free(names);
	if (n < 0)
		errno = -n;
	return n < 0 ? -1 : n;
}

/*
 * The dead mount: whatever needs the daemon fails with ENOTCONN
 * ("Transport endpoint is not connected"): names never looked up, xattrs,
 * files never read. What the kernel has cached (entries, attributes,
 * listings, pages: svcfs caches them for a day) it may go on answering
 * alone: a stale view. Never another error, never a hang.
 */
static void assert_dead_mount(void)
{
	struct stat st;
	char buf[64];

	cr_assert(h_mounted(H.mnt, NULL, 0), "the dead mount is gone by itself");
	ASSERT_ENOTCONN(stat(h_m("nothere"), &st), "stat MNT/nothere");
	ASSERT_ENOTCONN(getxattr(h_m("web"), "user.svcfs.state", buf, sizeof(buf)),
	                "getxattr MNT/web");
	ASSERT_ENOTCONN(getxattr(H.mnt, "user.svcfs.status", buf, sizeof(buf)),
	                "getxattr MNT (svcfsctl status)");
	ASSERT_ENOTCONN(slurp_ok(h_m(".targets.json")), "cat MNT/.targets.json (never read)");
	CACHED_OR_ENOTCONN(stat(H.mnt, &st), "stat MNT");
	CACHED_OR_ENOTCONN(stat(h_m("web/state"), &st), "stat MNT/web/state");
	CACHED_OR_ENOTCONN(slurp_ok(h_m("web/state")), "cat MNT/web/state");
	CACHED_OR_ENOTCONN(list_ok(H.mnt), "ls MNT");
	CACHED_OR_ENOTCONN(readlink(h_m("web/socket"), buf, sizeof(buf)),
	                   "readlink MNT/web/socket");
}

/* The caches are warm: whatever the kernel could answer alone, it has. */
static void warm_up(void)
{
	for (int i = 0; i < 3; i++) {
		char **names = NULL;
		struct stat st;
		int r = h_list(H.mnt, &names);
		cr_assert_geq(r, 0);
		h_strv_free(names);
		free(h_slurp(h_m("web/state")));
		r = stat(h_m("web/state"), &st);
		cr_assert_eq(r, 0);
	}
}

/* After the dead mount is gone: MNT is the plain directory again; mount anew. */
static void assert_remount_shows(pid_t web)
{
	char **names = NULL;
	int n = h_list(H.mnt, &names);
	pid_t late;

	h_strv_free(names);
	cr_assert_eq(n, 0, "MNT is not the empty directory under the mount (%d entries)", n);
	late = h_service("late.sock"); /* started while nothing is mounted */
	h_mount();
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web)),
	          "the new mount does not show the service that ran throughout");
	cr_assert(h_wait_content(h_m("late/pid"), pid_line(late)),
	          "the new mount does not show a service started meanwhile");
	h_assert_daemon_alive();
}

/*
 * SIGKILL leaves a dead mount: every access (stat, ls, open, readlink,
 * getxattr; warm caches do not help) fails with ENOTCONN "Transport
 * endpoint is not connected" and a plain mount on top is refused by
 * nothing but confusing. Recovery: `umount -l MNT`, then mount again; the
 * services, which never noticed, are all there.
 */
Test(faults, killed_daemon_then_umount_lazy_and_mount_again)
{
	const char *const argv[] = {"umount", "-l", H.mnt, NULL};
	pid_t web;
	int st;

	if (!have_program("umount"))
		cr_skip_test("no umount(8)");
	h_mount();
	web = h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	warm_up();
	kill_daemon();
	assert_dead_mount();
	st = run_cmd(argv);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "umount -l: status %#x (%s)",
	          st, show(h_r("cmd.out")));
	cr_assert(!h_mounted(H.mnt, NULL, 0), "still mounted after umount -l");
	assert_remount_shows(web);
}

/* The same recovery as an ordinary user would do it: fusermount3 -uz. */
Test(faults, killed_daemon_then_fusermount3_uz_and_mount_again)
{
	const char *const argv[] = {"fusermount3", "-u", "-z", H.mnt, NULL};
	pid_t web;
	int st;

	if (!have_program("fusermount3"))
		cr_skip_test("no fusermount3");
	h_mount();
	web = h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	warm_up();
	kill_daemon();
	assert_dead_mount();
	st = run_cmd(argv);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "fusermount3 -uz: status %#x (%s)", st, show(h_r("cmd.out")));
	cr_assert(!h_mounted(H.mnt, NULL, 0), "still mounted after fusermount3 -uz");
	assert_remount_shows(web);
}

static bool unmounted(void *ctx)
{
	(void)ctx;
	return !h_mounted(H.mnt, NULL, 0);
}

/*
 * With -o auto_unmount the mount goes with the killed daemon: no dead
 * mount, nothing to undo, mount again at once. Twice: killed before
 * anyone used the mount, and killed after the mount was used (its root
 * looked up and listed, as any client does) — fusermount3 unmounts only
 * when opening the mount root fails with ENOTCONN, which the kernel's
 * caches must not prevent.
 */
Test(faults, killed_daemon_with_auto_unmount_leaves_no_dead_mount)
{
	struct stat st;
	pid_t web;
	bool ok;
	int r;

	if (!have_program("fusermount3"))
		cr_skip_test("no fusermount3 (auto_unmount needs it)");
	web = h_service("web.sock");
	h_mount_opts("auto_unmount", NULL);
	kill_daemon(); /* nobody used the mount */
	cr_assert(h_wait_until(unmounted, NULL, H_TIMEOUT_MS),
	          "auto_unmount: the dead mount stayed (killed before any use)");

	h_mount_opts("auto_unmount", NULL);
	cr_assert(h_wait_exists(h_m("web/state")));
	warm_up();
	kill_daemon();
	ok = h_wait_until(unmounted, NULL, H_TIMEOUT_MS);
	if (!ok)
		umount2(H.mnt,
		        MNT_DETACH); /* the test's own mount: fail once, not at teardown too */
	assert_or_log(ok, "auto_unmount: the dead mount stayed (killed after the mount was used)");
	r = stat(H.mnt, &st);
	cr_assert_eq(r, 0, "stat MNT after auto_unmount: %s", strerror(errno));
	assert_remount_shows(web);
}

/* ---- readers stuck inside the mount while services churn ---- */

enum { OP_STAT_CWD, OP_OPEN_REL, OP_LIST_CWD, OP_READ_FD, OP_SERVICES, NOPS };
/* EMPTY: a listing with nothing in it; ODD: read, but not what a reader may get */
enum { OUT_OK, OUT_EMPTY, OUT_ENOENT, OUT_ENOTCONN, OUT_OTHER, OUT_ODD, NOUTS };
enum { PH_LIVE, PH_VANISHING, PH_VANISHED, PH_STOPPING, PH_UNMOUNTED, PH_STOP };
#define NPHASES PH_STOP

static const char *const op_names[] = {"stat(\".\") in cwd", "open(\"state\") from cwd",
                                       "readdir(\".\") in cwd", "pread(open fd of state)",
                                       "read .services.json"};
static const char *const out_names[] = {"ok", "empty", "ENOENT", "ENOTCONN", "other error", "odd"};
static const char *const phase_names[] = {"live", "vanishing", "vanished", "stopping", "unmounted"};

struct readers {
	char dir[PATH_MAX], file[PATH_MAX], services[PATH_MAX];
	_Atomic int phase;
	_Atomic int started[3];
	_Atomic int ended[3];
	_Atomic unsigned count[NPHASES][NOPS][NOUTS];
	_Atomic int other_errno[NOPS];
	_Atomic int odd_saved;
	char odd[512]; /* the first read of .services.json that was not one JSON array */
	size_t odd_len;
};

static void tally(struct readers *rd, int phase, int op, int outcome, int err)
{
	if (outcome == OUT_OTHER)
		atomic_store(&rd->other_errno[op], err);
	atomic_fetch_add(&rd->count[phase][op][outcome], 1);
}

static int outcome_of(long r, int err)
{
	if (r >= 0)
		return OUT_OK;
	return err == ENOENT ? OUT_ENOENT : err == ENOTCONN ? OUT_ENOTCONN : OUT_OTHER;
}

/* A shell sitting in MNT/web: stat ".", open "state", list "." in a loop. */
static void reader_cwd(void *arg)
{
	struct readers *rd = arg;
	int p;

	if (chdir(rd->dir) < 0) {
		atomic_store(&rd->started[0], 1000 + errno);
		return;
	}
	atomic_store(&rd->started[0], 1);
	while ((p = atomic_load(&rd->phase)) != PH_STOP) {
		struct dirent *de;
		struct stat st;
		unsigned entries = 0;
		DIR *d;
		int r, fd, e;

		r = stat(".", &st);
		tally(rd, p, OP_STAT_CWD, outcome_of(r, errno), errno);
		fd = open("state", O_RDONLY | O_CLOEXEC);
		e = errno;
		tally(rd, p, OP_OPEN_REL, outcome_of(fd, e), e);
		if (fd >= 0)
			close(fd);
		d = opendir(".");
		if (!d) {
			e = errno;
			tally(rd, p, OP_LIST_CWD, outcome_of(-1, e), e);
		} else {
			errno = 0;
			while ((de = readdir(d)))
				if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
					entries++;
			e = errno;
			closedir(d);
			tally(rd, p, OP_LIST_CWD,
			      e         ? outcome_of(-1, e)
			      : entries ? OUT_OK
			                : OUT_EMPTY,
			      e);
		}
		h_sleep_ms(1);
	}
	atomic_store(&rd->ended[0], 1);
}

/* A program with MNT/web/state open, reading it again and again. */
static void reader_fd(void *arg)
{
	struct readers *rd = arg;
	int fd = open(rd->file, O_RDONLY | O_CLOEXEC), p;

	if (fd < 0) {
		atomic_store(&rd->started[1], 1000 + errno);
		return;
	}
	atomic_store(&rd->started[1], 1);
	while ((p = atomic_load(&rd->phase)) != PH_STOP) {
		char buf[64];
		ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
		int e = errno;

		if (n >= 0) {
			buf[n] = '\0';
			tally(rd, p, OP_READ_FD, strcmp(buf, "alive\n") == 0 ? OUT_OK : OUT_ODD, 0);
		} else {
			tally(rd, p, OP_READ_FD, outcome_of(-1, e), e);
		}
		h_sleep_ms(1);
	}
	close(fd);
	atomic_store(&rd->ended[1], 1);
}

/* A client reading .services.json in a loop: each read must be one whole JSON array. */
static void reader_services(void *arg)
{
	struct readers *rd = arg;
	int p;

	atomic_store(&rd->started[2], 1);
	while ((p = atomic_load(&rd->phase)) != PH_STOP) {
		char *s = h_slurp(rd->services);
		int e = errno;

		if (s) {
			json_object *o = json_tokener_parse(s);
			bool whole = o && json_object_is_type(o, json_type_array);
			if (!whole && p < PH_STOPPING && !atomic_exchange(&rd->odd_saved, 1)) {
				rd->odd_len = strlen(s);
				snprintf(rd->odd, sizeof(rd->odd), "%s", s);
			}
			tally(rd, p, OP_SERVICES, whole ? OUT_OK : OUT_ODD, 0);
			json_object_put(o);
			free(s);
		} else {
			tally(rd, p, OP_SERVICES, outcome_of(-1, e), e);
		}
	}
	atomic_store(&rd->ended[2], 1);
}

static unsigned tallied(struct readers *rd, int phase, int op, int out)
{
	return atomic_load(&rd->count[phase][op][out]);
}

/* Outcomes of OP in PHASE other than those in the bit set ALLOWED. */
static unsigned tallied_except(struct readers *rd, int phase, int op, unsigned allowed)
{
	unsigned n = 0;

	for (int o = 0; o < NOUTS; o++)
		if (!(allowed & (1u << o)))
			n += tallied(rd, phase, op, o);
	return n;
}

static void log_tally(struct readers *rd)
{
	for (int p = 0; p < NPHASES; p++)
		for (int op = 0; op < NOPS; op++) {
			char line[256];
			size_t len = 0;
			for (int o = 0; o < NOUTS; o++)
				if (tallied(rd, p, op, o))
					len += (size_t)snprintf(line + len, sizeof(line) - len,
					                        " %s=%u", out_names[o],
					                        tallied(rd, p, op, o));
			if (tallied(rd, p, op, OUT_OTHER))
				snprintf(line + len, sizeof(line) - len, " (last: %s)",
				         strerror(atomic_load(&rd->other_errno[op])));
			cr_log_info("readers, %s, %s:%s", phase_names[p], op_names[op],
			            len ? line : " none");
		}
	if (atomic_load(&rd->odd_saved))
		cr_log_error("a torn read of .services.json (%zu bytes): '%s'", rd->odd_len,
		             rd->odd);
}

#define BIT(o) (1u << (o))

/*
 * A shell with its cwd in MNT/web, a program with MNT/web/state open and a
 * client reading .services.json in a loop, while web vanishes and other
 * services come and go. Nobody hangs, the daemon survives, and:
 * - once web has vanished, the shell's directory is a deleted directory:
 *   stat(".") may still answer, but names in it are gone (open "state"
 *   fails with ENOENT) and it lists empty (or ENOENT) — never a stale
 *   "alive";
 * - the open file keeps reading what it read ("alive\n", like an open
 *   deleted file), or fails; never anything else;
 * - every read of .services.json is one whole JSON array, and it never
 *   fails while mounted;
 * - SIGTERM still unmounts (exit 0) with them inside; from then on their
 *   calls fail (ENOENT, ENOTCONN) or answer from what they hold.
 */
Test(faults, readers_stuck_in_a_vanishing_service)
{
	struct readers *rd = shared_new(sizeof(*rd));
	pid_t readers[3], churn[10];
	unsigned gone_by_name = BIT(OUT_ENOENT) | BIT(OUT_ENOTCONN);
	int st;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	snprintf(rd->dir, sizeof(rd->dir), "%s", h_m("web"));
	snprintf(rd->file, sizeof(rd->file), "%s", h_m("web/state"));
	snprintf(rd->services, sizeof(rd->services), "%s", h_m(".services.json"));
	readers[0] = h_spawn(reader_cwd, rd);
	readers[1] = h_spawn(reader_fd, rd);
	readers[2] = h_spawn(reader_services, rd);
	for (int i = 0; i < 3; i++) {
		st = wait_flag(&rd->started[i], H_TIMEOUT_MS);
		cr_assert_eq(st, 1, "reader %d did not start", i);
	}
	for (int i = 0; i < 5; i++) {
		churn[i] = h_service(h_b("c%d.sock", i));
		cr_assert(h_wait_exists(h_m("c%d/state", i)));
	}

	atomic_store(&rd->phase, PH_VANISHING);
	st = unlink(h_b("web.sock"));
	cr_assert_eq(st, 0);
	assert_or_log(h_wait_gone(h_m("web")), "web did not vanish with readers inside");
	for (int i = 0; i < 5; i++) {
		h_kill(churn[i]);
		churn[5 + i] = h_service(h_b("c%d.sock", 5 + i));
	}
	for (int i = 0; i < 5; i++) {
		cr_assert(h_wait_gone(h_m("c%d", i)), "c%d stayed with readers in the mount", i);
		cr_assert(h_wait_exists(h_m("c%d/state", 5 + i)));
	}
	h_sleep_ms(SETTLE_MS); /* every invalidation of the vanish is long done */
	atomic_store(&rd->phase, PH_VANISHED);
	h_sleep_ms(300);
	h_assert_daemon_alive();

	atomic_store(&rd->phase, PH_STOPPING);
	st = h_daemon_stop();
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "SIGTERM with readers inside: status %#x", st);
	cr_assert(!h_mounted(H.mnt, NULL, 0), "still mounted");
	atomic_store(&rd->phase, PH_UNMOUNTED);
	h_sleep_ms(200);
	atomic_store(&rd->phase, PH_STOP);
	for (int i = 0; i < 3; i++) {
		st = h_join(readers[i], H_TIMEOUT_MS);
		cr_assert(st != -1 && atomic_load(&rd->ended[i]), "reader %d hung", i);
	}
	log_tally(rd);

	/* live: everything works */
	for (int op = 0; op < NOPS; op++) {
		cr_assert_gt(tallied(rd, PH_LIVE, op, OUT_OK), 0, "live: %s never worked",
		             op_names[op]);
		cr_assert_eq(tallied_except(rd, PH_LIVE, op, BIT(OUT_OK)), 0,
		             "live: %s did not always work", op_names[op]);
	}
	/* .services.json: one whole array at every read while mounted */
	for (int p = PH_LIVE; p <= PH_VANISHED; p++)
		cr_expect_eq(tallied_except(rd, p, OP_SERVICES, BIT(OUT_OK)), 0,
		             "%s: %u reads of .services.json failed or were not one JSON array",
		             phase_names[p], tallied_except(rd, p, OP_SERVICES, BIT(OUT_OK)));
	/* the open file: what it read, or an error; never other content */
	for (int p = PH_LIVE; p <= PH_UNMOUNTED; p++)
		cr_expect_eq(tallied(rd, p, OP_READ_FD, OUT_ODD), 0,
		             "%s: the open file read something else", phase_names[p]);
	/* the deleted directory: its names are gone, its listing empty */
	for (int p = PH_VANISHED; p <= PH_UNMOUNTED; p += PH_UNMOUNTED - PH_VANISHED) {
		cr_expect_eq(tallied_except(rd, p, OP_OPEN_REL, gone_by_name), 0,
		             "%s: open(\"state\") from the cwd of a vanished service did not "
		             "fail with ENOENT (%u times it opened the stale file)",
		             phase_names[p], tallied(rd, p, OP_OPEN_REL, OUT_OK));
		cr_expect_eq(tallied_except(rd, p, OP_LIST_CWD, gone_by_name | BIT(OUT_EMPTY)), 0,
		             "%s: the cwd of a vanished service still lists its files",
		             phase_names[p]);
	}
}

/* =====================================================================
 * Bad input
 * ===================================================================== */

/* ---- sidecars ---- */

struct bad_sidecar {
	const char *name;   /* service NAME, sidecar NAME.json */
	const char *reason; /* what the log line says after "sidecar ignored: " ('|': or) */
};

/* Text of PREFIX, then C repeated N times, then SUFFIX. */
static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t lp = strlen(prefix), ls = strlen(suffix);
	char *s = malloc(lp + n + ls + 1);

	cr_assert_not_null(s);
	memcpy(s, prefix, lp);
	memset(s + lp, c, n);
	memcpy(s + lp + n, suffix, ls + 1);
	return s;
}

/* Write the broken sidecar of case NAME. */
static void write_bad_sidecar(const char *name)
{
	const char *path = h_b("%s.json", name);
	char *s = NULL;

	if (strcmp(name, "truncated") == 0) {
		h_write_atomic(path, "{\"version\": \"1\", \"na");
	} else if (strcmp(name, "empty") == 0) {
		h_write_atomic(path, "");
	} else if (strcmp(name, "sparse") == 0) {
		/* 100 MiB that take no room: svcfs must not read them */
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		int r = fd >= 0 ? ftruncate(fd, 100 << 20) : -1;
		cr_assert_eq(r, 0, "sparse sidecar: %s", strerror(errno));
		close(fd);
	} else if (strcmp(name, "deep17") == 0) {
		/* 17 levels, one more than allowed */
		char buf[256] = "";
		for (int i = 0; i < 17; i++)
			strcat(buf, "{\"a\":");
		strcat(buf, "1");
		for (int i = 0; i < 17; i++)
			strcat(buf, "}");
		h_write_atomic(path, buf);
	} else if (strcmp(name, "deep") == 0) {
		/* 60 000 open brackets: a parser that recursed would blow its stack */
		s = repeat("{\"a\":", '[', 60000, "");
		h_write_atomic(path, s);
	} else if (strcmp(name, "string") == 0) {
		h_write_atomic(path, "\"hello\"");
	} else if (strcmp(name, "number") == 0) {
		h_write_atomic(path, "42\n");
	} else if (strcmp(name, "null") == 0) {
		h_write_atomic(path, "null");
	} else if (strcmp(name, "nonutf8") == 0) {
		h_write_atomic(path, "{\"version\": \"caf\xe9\"}"); /* Latin-1 */
	} else if (strcmp(name, "overlong") == 0) {
		h_write_atomic(path, "{\"version\": \"\xc0\xaf\"}"); /* an overlong '/' */
	} else if (strcmp(name, "nul") == 0) {
		static const char nul[] = "{\"version\": \"1\0\", \"x\": 2}";
		write_bytes(path, nul, sizeof(nul) - 1);
	} else if (strcmp(name, "bom") == 0) {
		h_write_atomic(path, "\xef\xbb\xbf{\"version\": \"1\"}");
	} else if (strcmp(name, "trailing") == 0) {
		h_write_atomic(path, "{\"version\": \"1\"} {\"version\": \"2\"}");
	} else if (strcmp(name, "comment") == 0) {
		h_write_atomic(path, "{\"version\": \"1\" /* comment */}");
	} else if (strcmp(name, "quotes") == 0) {
		h_write_atomic(path, "{'version': '1'}");
	} else if (strcmp(name, "nan") == 0) {
		h_write_atomic(path, "{\"version\": NaN}");
	} else if (strcmp(name, "keys257") == 0) {
		char *b = malloc(257 * 16 + 4), *q = b;
		cr_assert_not_null(b);
		*q++ = '{';
		for (int i = 0; i < 257; i++)
			q += sprintf(q, "%s\"k%d\":1", i ? "," : "", i);
		strcpy(q, "}");
		h_write_atomic(path, b);
		free(b);
	} else if (strcmp(name, "fifo") == 0) {
		int r = mkfifo(path, 0644); /* a reader would block on it */
		cr_assert_eq(r, 0);
	} else if (strcmp(name, "dir") == 0) {
		int r = mkdir(path, 0755);
		cr_assert_eq(r, 0);
	} else if (strcmp(name, "link") == 0) {
		int r;
		h_write_atomic(h_r("good.json"), "{\"version\": \"1\"}");
		r = symlink(h_r("good.json"), path);
		cr_assert_eq(r, 0);
	} else if (strcmp(name, "owned") == 0) {
		h_write_atomic_owned(path, "{\"version\": \"1\"}", 12345, 12345);
	} else {
		cr_assert_fail("no such case %s", name);
	}
	free(s);
}

/* Log lines naming FILE that give one of the '|'-separated REASONS. */
static int log_lines_with_reason(const char *file, const char *reasons)
{
	char alt[128], *save = NULL;
	int n = 0;

	snprintf(alt, sizeof(alt), "%s", reasons);
	for (char *a = strtok_r(alt, "|", &save); a; a = strtok_r(NULL, "|", &save))
		n += log_lines_with(file, a);
	return n;
}

/*
 * Every kind of broken sidecar (README's table; malformed, an array, over
 * 64 KiB and another user's are also in the metadata suite): the service
 * still appears, without metadata (only the files svcfs found), and
 * exactly one log line names the file and the reason; the daemon carries
 * on.
 */
Test(faults, broken_sidecars_ignored_with_one_line)
{
	static const struct bad_sidecar cases[] = {
	    {"truncated", "truncated JSON"},
	    {"empty", "truncated JSON"},
	    {"sparse", "larger than 64 KiB"},
	    {"deep17", "nested too deeply"},
	    {"deep", "nested too deeply"},
	    {"string", "not a JSON object"},
	    {"number", "not a JSON object"},
	    {"null", "not a JSON object"},
	    {"nonutf8", "invalid UTF-8"},
	    {"overlong", "invalid UTF-8"},
	    {"nul", "contains a NUL byte"},
	    {"bom", "not strict JSON"},
	    {"trailing", "text after the JSON object|unexpected character"},
	    {"comment", "not strict JSON"},
	    {"nan", "not strict JSON"},
	    {"quotes", "not strict JSON"},
	    {"keys257", "more than 256 top-level keys"},
	    {"fifo", "not a regular file"},
	    {"dir", "not a regular file"},
	    {"link", "is a symlink"},
	    {"owned", "owned by another user than the socket"},
	};
	size_t n = sizeof(cases) / sizeof(cases[0]);
	char needle[PATH_MAX + 64];
	bool failed = false;

	h_mount_opts("probe_interval=0.2", NULL);
	for (size_t i = 0; i < n; i++) {
		write_bad_sidecar(cases[i].name);
		h_service(h_b("%s.sock", cases[i].name));
	}
	for (size_t i = 0; i < n; i++) {
		bool shown, logged, bare;
		snprintf(needle, sizeof(needle),
		         "%s: sidecar ignored: ", h_b("%s.json", cases[i].name));
		shown = h_wait_exists(h_m("%s/state", cases[i].name));
		logged = h_wait_log(needle);
		bare = only_found_files(h_m("%s", cases[i].name));
		cr_expect(shown, "%s: the service did not appear", cases[i].name);
		cr_expect(logged, "%s: no log line '%s...'", cases[i].name, needle);
		cr_expect(bare, "%s: metadata shown from a broken sidecar", cases[i].name);
		failed |= !shown || !logged || !bare;
	}
	h_sleep_ms(1000); /* five probe intervals: no repeats */
	for (size_t i = 0; i < n; i++) {
		int lines, with_reason;
		snprintf(needle, sizeof(needle), "%s", h_b("%s.json", cases[i].name));
		lines = log_lines_with(needle, NULL);
		with_reason = log_lines_with_reason(needle, cases[i].reason);
		cr_expect(lines == 1 && with_reason == 1,
		          "%s.json: %d log lines, %d with '%s' (expected one)", cases[i].name,
		          lines, with_reason, cases[i].reason);
		failed |= lines != 1 || with_reason != 1;
	}
	if (failed)
		log_daemon_stderr();
	h_write_atomic("good.json", "{\"version\": \"1\"}");
	h_service("good.sock");
	cr_assert(h_wait_content(h_m("good/version"), "1\n"),
	          "the daemon stopped reading sidecars");
	h_assert_daemon_alive();
}

/* In a child: rewrite PATH in place, stop half way, wait to be killed. */
static void half_writer(void *arg)
{
	const char *path = arg;
	static const char half[] = "{\"version\": \"2\", \"te";
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);

	if (fd < 0 || write(fd, half, sizeof(half) - 1) != (ssize_t)(sizeof(half) - 1))
		_exit(1);
	for (;;)
		pause();
}

static bool file_nonempty(void *ctx)
{
	struct stat st;

	return stat(ctx, &st) == 0 && st.st_size > 0;
}

/*
 * A sidecar written in place is read when its writer closes it (or when
 * anything else makes svcfs look at the service meanwhile): read half
 * written, it is ignored as a whole with one log line ("truncated JSON")
 * and the service shows no metadata; the completed file is picked up at
 * close. A writer killed half way leaves a cut-off file: the service keeps
 * running, without metadata (the old values are not kept), one more line.
 */
Test(faults, sidecar_cut_off_mid_write)
{
	static const char first[] = "{\"version\": \"1\", \"te", rest[] = "am\": \"core\"}";
	char path[PATH_MAX];
	pid_t writer;
	ssize_t w;
	int fd;

	h_mount_opts("probe_interval=0.2", NULL);
	snprintf(path, sizeof(path), "%s", h_b("web.json"));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	w = write(fd, first, sizeof(first) - 1);
	cr_assert_eq(w, (ssize_t)sizeof(first) - 1);
	h_service("web.sock"); /* svcfs looks at the service while the sidecar is half written */
	cr_assert(h_wait_exists(h_m("web/state")));
	cr_assert(h_wait_log("web.json: sidecar ignored: truncated JSON"),
	          "no log line for a half-written sidecar");
	cr_assert(only_found_files(h_m("web")));
	w = write(fd, rest, sizeof(rest) - 1);
	cr_assert_eq(w, (ssize_t)sizeof(rest) - 1);
	close(fd);
	cr_assert(h_wait_content(h_m("web/version"), "1\n"), "the completed sidecar was not read");
	cr_assert(h_wait_content(h_m("web/team"), "core\n"));

	writer = h_spawn(half_writer, path);
	cr_assert(h_wait_until(file_nonempty, path, H_TIMEOUT_MS));
	h_sleep_ms(SETTLE_MS);
	cr_assert(h_wait_content(h_m("web/version"), "1\n"),
	          "a sidecar being written was read before its writer closed it");
	h_kill(writer);
	cr_assert(h_wait_gone(h_m("web/version")), "metadata of a cut-off sidecar stayed");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"), "the service left with its sidecar");
	cr_assert(only_found_files(h_m("web")));
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(log_lines_with("web.json", NULL), 2,
	             "expected one log line per broken version of web.json");
	h_assert_daemon_alive();
}

/* ---- names ---- */

/*
 * Names with spaces, newlines, tabs, control characters, bytes that are
 * not UTF-8, glob and shell characters: each service appears under exactly
 * its name (readdir, inotify, its socket link), and in .services.json
 * under that name as JSON can hold it (each byte that is not UTF-8 as
 * U+FFFD); a newline in a name cannot forge a log line (logged as '?').
 */
Test(faults, odd_names_shown_exactly)
{
	static const char *const names[] = {
	    "with space",  " lead",           "trail ",           "new\nline",
	    "tab\tname",   "bad\xff\xfeutf8", "x\nforged: alive", "glob*?[",
	    "uni\xc3\xa9", "-dash",           "back\\slash",      "quo\"te",
	    "ctl\001x",    "del\x7f",         "semi;colon$(x)",
	};
	static const char *const json_names[sizeof(names) / sizeof(names[0])] = {
	    [5] = "bad\xef\xbf\xbd\xef\xbf\xbdutf8",
	};
	size_t n = sizeof(names) / sizeof(names[0]);
	pid_t pids[sizeof(names) / sizeof(names[0])];
	char **listed = NULL, link[PATH_MAX], *err, *save = NULL;
	size_t m0, m1;
	ssize_t len;
	int root, count;

	h_mount_opts("probe_interval=0.2", NULL);
	root = w_add(H.mnt);
	m0 = w_mark();
	for (size_t i = 0; i < n; i++)
		pids[i] = h_service(h_b("%s.sock", names[i]));
	for (size_t i = 0; i < n; i++) {
		json_object *e;
		cr_assert(h_wait_content(h_m("%s/state", names[i]), "alive\n"),
		          "service %zu did not appear under its name", i);
		cr_assert(w_wait(m0, root, IN_CREATE | IN_ISDIR, names[i]),
		          "no IN_CREATE with the exact name of service %zu", i);
		len = readlink(h_m("%s/socket", names[i]), link, sizeof(link) - 1);
		cr_assert_gt(len, 0);
		link[len] = '\0';
		cr_assert_str_eq(link, h_b("%s.sock", names[i]));
		e = wait_services_json_entry(json_names[i] ? json_names[i] : names[i]);
		cr_assert_not_null(e, ".services.json lacks service %zu", i);
		json_object_put(e);
	}
	count = h_list(H.mnt, &listed);
	cr_assert_eq(count, (int)n + 2);
	for (size_t i = 0; i < n; i++)
		cr_assert(h_strv_contains(listed, names[i]), "readdir lacks service %zu", i);
	h_strv_free(listed);

	/* the newline of a name does not start a log line of its own */
	err = h_daemon_stderr();
	cr_assert_not_null(err);
	for (char *l = strtok_r(err, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		cr_assert(!strstr(l, "forged") || strstr(l, "x?forged"),
		          "a service name forged a log line: '%s'", l);
	free(err);

	m1 = w_mark();
	h_kill(pids[3]); /* "new\nline" */
	cr_assert(h_wait_gone(h_m("%s", names[3])));
	cr_assert(w_wait(m1, root, IN_DELETE | IN_ISDIR, names[3]),
	          "no IN_DELETE with the exact name");
	h_assert_daemon_alive();
}

/*
 * A 255-byte name (the longest a file name can be), as a symlink without
 * .sock to a socket elsewhere (sun_path could never hold it): shown with
 * its whole name everywhere, and connect() through its socket link works.
 */
Test(faults, name_of_255_bytes_through_a_symlink)
{
	char name[256], link[PATH_MAX], buf[64], val[64];
	ssize_t len;
	size_t m0;
	pid_t pid;
	int root, r;
	json_object *e;

	memset(name, 'n', 255);
	memcpy(name, "n255-", 5);
	name[255] = '\0';
	h_mount_opts("probe_interval=0.2", NULL);
	root = w_add(H.mnt);
	m0 = w_mark();
	pid = h_service(h_r("short.sock"));
	r = symlink(h_r("short.sock"), h_b("%s", name));
	cr_assert_eq(r, 0, "symlink: %s", strerror(errno));
	assert_or_log(h_wait_content(h_m("%s/pid", name), pid_line(pid)),
	              "a service with a 255-byte name did not appear");
	cr_assert(w_wait(m0, root, IN_CREATE | IN_ISDIR, name),
	          "no IN_CREATE with the 255-byte name");
	len = readlink(h_m("%s/socket", name), link, sizeof(link) - 1);
	cr_assert_gt(len, 0);
	link[len] = '\0';
	cr_assert_str_eq(link, h_b("%s", name));
	r = h_connect_read(h_m("%s/socket", name), SOCK_STREAM, buf, sizeof(buf));
	cr_assert_eq(r, 0, "connect through the socket link: %s", strerror(-r));
	cr_assert_str_eq(buf, "hello\n");
	len = getxattr(h_m("%s", name), "user.svcfs.state", val, sizeof(val) - 1);
	cr_assert_eq(len, 5);
	e = wait_services_json_entry(name);
	cr_assert_not_null(e, ".services.json lacks the 255-byte name");
	json_object_put(e);
	r = unlink(h_b("%s", name));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("%s", name)));
	cr_assert(w_wait(m0, root, IN_DELETE | IN_ISDIR, name));
	h_assert_daemon_alive();
}

/*
 * Names that look like svcfs's own files: a service named "meta.json" or
 * "socket" is an ordinary service directory; a socket named
 * ".services.json.sock" is hidden (ignored), so the aggregate stays the
 * aggregate; a socket named x.json beside x.sock is a service "x.json" and,
 * not being a regular file, no sidecar of x (one log line saying so); a socket named
 * y.lock is a service "y.lock" and no lock file of y (y stays). Sidecar
 * keys named like found files are shadowed by them (in meta.json too);
 * keys that cannot be file names ("", ".", "..", "meta.json") are in
 * meta.json only.
 */
Test(faults, names_that_look_reserved)
{
	char link[PATH_MAX];
	json_object *meta, *v;
	ssize_t len;

	h_mount_opts("probe_interval=0.2", NULL);
	h_service("meta.json.sock");
	h_service("socket.sock");
	h_service(".services.json.sock");
	h_service("x.sock");
	h_service("x.json");
	h_service("y.sock");
	h_service("y.lock");
	h_write_atomic("k.json",
	               "{\"meta.json\": \"m\", \"socket\": \"/evil\", \"state\": \"dead\","
	               " \"\": \"empty\", \".\": \"dot\", \"..\": \"dotdot\","
	               " \"version\": \"1\"}");
	h_service("k.sock");

	cr_assert(h_wait_content(h_m("meta.json/state"), "alive\n"), "service meta.json missing");
	cr_assert(h_wait_content(h_m("socket/state"), "alive\n"), "service socket missing");
	cr_assert(h_wait_content(h_m("x.json/state"), "alive\n"), "service x.json missing");
	cr_assert(h_wait_content(h_m("x/state"), "alive\n"), "service x missing");
	cr_assert(h_wait_content(h_m("y.lock/state"), "alive\n"), "service y.lock missing");
	cr_assert(h_wait_content(h_m("y/state"), "alive\n"), "y hidden by a socket named y.lock");
	cr_assert(h_wait_content(h_m("k/version"), "1\n"));
	cr_assert(h_wait_count(H.mnt, 7 + 2, H_TIMEOUT_MS), "the root lists other entries");
	cr_assert_eq(services_json_len(), 7, ".services.json is not the aggregate of 7 services");
	cr_assert(h_wait_log("x.json: sidecar ignored"),
	          "no log line for the socket x.json as x's sidecar");
	cr_assert(only_found_files(h_m("x")));

	/* k: found files win, keys that cannot be files are in meta.json only */
	len = readlink(h_m("k/socket"), link, sizeof(link) - 1);
	cr_assert_gt(len, 0);
	link[len] = '\0';
	cr_assert_str_eq(link, h_b("k.sock"));
	cr_assert(h_wait_content(h_m("k/state"), "alive\n"));
	cr_assert(h_wait_count(h_m("k"), 8, H_TIMEOUT_MS), "k: not 7 found files + version");
	meta = h_json_file(h_m("k/meta.json"));
	cr_assert_not_null(meta, "k/meta.json is not JSON");
	cr_assert(json_object_object_get_ex(meta, "", &v) &&
	          strcmp(json_object_get_string(v), "empty") == 0);
	cr_assert(json_object_object_get_ex(meta, "..", &v));
	cr_assert(json_object_object_get_ex(meta, "socket", &v) &&
	          strcmp(json_object_get_string(v), h_b("k.sock")) == 0);
	cr_assert(json_object_object_get_ex(meta, "state", &v) &&
	          strcmp(json_object_get_string(v), "alive") == 0);
	cr_expect(json_object_object_get_ex(meta, "meta.json", &v) &&
	              strcmp(json_object_get_string(v), "m") == 0,
	          "the sidecar key \"meta.json\" is missing from meta.json: %s",
	          json_object_to_json_string(meta));
	json_object_put(meta);
	h_sleep_ms(SETTLE_MS);
	cr_assert_eq(log_lines_with("x.json: sidecar ignored", NULL), 1);
	cr_expect_eq(log_lines_with("x.json: sidecar ignored", "not a regular file"), 1,
	             "the log line for the socket x.json as a sidecar does not give the reason");
	h_assert_daemon_alive();
}

/* ---- symlinks ---- */

static void make_symlinks(const char *suffix)
{
	int r;

	/* a.sock -> b.sock -> a.sock */
	r = symlink(h_b("b%s.sock", suffix), h_b("a%s.sock", suffix));
	r |= symlink(h_b("a%s.sock", suffix), h_b("b%s.sock", suffix));
	/* outside BACKING, to things that are not sockets */
	r |= symlink(h_r("plain.txt"), h_b("tofile%s.sock", suffix));
	r |= symlink(h_r("fifo"), h_b("tofifo%s.sock", suffix));
	r |= symlink("/dev/null", h_b("todev%s.sock", suffix));
	r |= symlink(h_r("outside"), h_b("todir%s", suffix));
	/* to a live socket elsewhere, through a chain and relative */
	r |= symlink(h_r("l1"), h_b("chain%s.sock", suffix));
	r |= symlink("../real.sock", h_b("rel%s.sock", suffix));
	cr_assert_eq(r, 0, "symlink: %s", strerror(errno));
}

static void assert_symlink_view(const char *suffix)
{
	char **names = NULL;
	int n;

	cr_assert(h_wait_content(h_m("chain%s/state", suffix), "alive\n"),
	          "a chain of symlinks to a live socket is not a service");
	cr_assert(h_wait_content(h_m("rel%s/state", suffix), "alive\n"),
	          "a relative symlink to a live socket is not a service");
	n = h_list(H.mnt, &names);
	cr_assert_gt(n, 0);
	for (char **p = names; *p; p++)
		cr_assert(strncmp(*p, "chain", 5) == 0 || strncmp(*p, "rel", 3) == 0 ||
		              strcmp(*p, "control") == 0 || (*p)[0] == '.',
		          "'%s' is shown (a loop, a non-socket or a symlinked directory)", *p);
	h_strv_free(names);
}

/*
 * Symlinks in BACKING: a loop of two (a.sock -> b.sock -> a.sock), links
 * to a regular file, a FIFO or a device outside BACKING, and a symlinked
 * directory (with a live socket in it) are ignored without a log line; a
 * chain of symlinks or a relative one ending at a live socket outside
 * BACKING is a service. The same whether they exist at mount (scan) or
 * come later (inotify).
 */
Test(faults, symlink_loops_non_sockets_and_symlinked_groups)
{
	const char *const quiet[] = {"a.sock", "b.sock", "tofile", "tofifo", "todev", "todir"};
	char *err;
	int r, fd;

	fd = open(h_r("plain.txt"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	r = mkfifo(h_r("fifo"), 0644) | mkdir(h_r("outside"), 0755);
	cr_assert_eq(r, 0);
	h_service(h_r("outside/inner.sock"));
	h_service(h_r("real.sock"));
	r = symlink(h_r("l2"), h_r("l1")) | symlink(h_r("real.sock"), h_r("l2"));
	cr_assert_eq(r, 0);
	make_symlinks("");
	h_mount_opts("probe_interval=0.2", NULL); /* found by the scan */
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control/state")));
	assert_symlink_view("");
	cr_assert(!exists(h_m("todir")) && !exists(h_m("inner")),
	          "a symlinked directory became a group");
	make_symlinks("2"); /* found through inotify */
	assert_symlink_view("2");
	h_sleep_ms(SETTLE_MS);
	cr_assert(h_wait_count(H.mnt, 5 + 2, H_TIMEOUT_MS));
	err = h_daemon_stderr();
	cr_assert_not_null(err);
	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		cr_assert_null(strstr(err, quiet[i]), "a log line names %s:\n%s", quiet[i], err);
	free(err);
	h_assert_daemon_alive();
}

/*
 * A symlink made before its target exists (docker.sock ->
 * /var/run/docker.sock, made at boot before docker runs) dangles, and is
 * not a service; once a socket listens at the target it is one, without
 * anything changing in BACKING (found at a probe interval).
 */
Test(faults, symlink_whose_target_appears_later)
{
	pid_t pid;
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	r = symlink(h_r("later.sock"), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control/state")));
	h_sleep_ms(SETTLE_MS);
	cr_assert(!exists(h_m("docker")), "a dangling symlink is shown");
	pid = h_service(h_r("later.sock"));
	assert_or_log(h_wait_content(h_m("docker/pid"), pid_line(pid)),
	              "a symlink whose target started listening later never became a service");
	h_assert_daemon_alive();
}

/* ---- files that only look like services ---- */

/*
 * A directory named NAME.sock is a group named "NAME.sock" (a directory is
 * a group whatever its name; .sock is stripped from sockets only), and a
 * socket named plain NAME beside it is the service NAME. FIFOs and regular
 * files named NAME.sock are ignored (services.c, other_files_are_ignored).
 */
Test(faults, directory_named_like_a_socket_is_a_group)
{
	struct stat st;
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	mkdir_b("dir.sock");
	h_service("dir.sock/inner.sock");
	h_service("dir");
	cr_assert(h_wait_content(h_m("dir.sock/inner/state"), "alive\n"),
	          "a service inside a directory named dir.sock is missing");
	cr_assert(h_wait_content(h_m("dir/state"), "alive\n"),
	          "the socket named dir is not the service dir");
	r = stat(h_m("dir.sock"), &st);
	cr_assert(r == 0 && S_ISDIR(st.st_mode));
	cr_assert(!exists(h_m("dir.sock/state")), "the group dir.sock is shown as a service");
	cr_assert(h_wait_count(H.mnt, 2 + 2, H_TIMEOUT_MS));
	h_assert_daemon_alive();
}

/* ---- the view is read-only: every change refused, no event ---- */

struct attempt {
	const char *what;
	long r;
	int err;
};

static struct attempt tried[128];
static size_t ntried;

#define TRY(call, what_)                                                                           \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		cr_assert_lt(ntried, sizeof(tried) / sizeof(tried[0]));                            \
		tried[ntried++] = (struct attempt){.what = (what_), .r = r_, .err = e_};           \
	} while (0)

/* open(2) that closes what it opened: only the outcome matters. */
static int open_close(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags | O_CLOEXEC, mode);

	if (fd >= 0)
		close(fd);
	return fd;
}

static int bind_at(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), r, e;

	if (fd < 0)
		return -1;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	close(fd);
	errno = e;
	return r;
}

static int rename2(const char *from, const char *to, unsigned flags)
{
	return renameat2(AT_FDCWD, from, AT_FDCWD, to, flags);
}

/*
 * Root may open a file of the view for writing (the kernel does not ask
 * svcfs, which answers no OPEN); every write through it is refused.
 */
static void try_writes_through_fds(void)
{
	int fd = open(h_m("web/state"), O_WRONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		TRY((errno = e, -1L), "open MNT/web/state O_WRONLY");
	} else {
		TRY(write(fd, "dead\n", 5), "write MNT/web/state");
		TRY(pwrite(fd, "dead\n", 5, 0), "pwrite MNT/web/state");
		TRY(ftruncate(fd, 0), "ftruncate MNT/web/state");
		TRY(fallocate(fd, 0, 0, 4096), "fallocate MNT/web/state");
		close(fd);
	}
	fd = open(h_m("web/state"), O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd >= 0) {
		TRY(write(fd, "x", 1), "write MNT/web/state O_APPEND");
		close(fd);
	}
	fd = open(h_m(".services.json"), O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		TRY(write(fd, "[]\n", 3), "write MNT/.services.json");
		close(fd);
	}
}

/*
 * Every call that would change the view, as root, on the root, a service
 * directory, its files, its socket link, a group and the aggregates: each
 * fails with EACCES (EPERM where the kernel refuses before asking svcfs:
 * user.* xattrs on a symlink), nothing changes, the daemon lives, and
 * watchers of the root, the service and the group see no change event.
 * The one event there is: root's open(O_WRONLY) is let through by the
 * kernel, so its close is an IN_CLOSE_WRITE of that file.
 */
Test(faults, every_change_refused_without_events)
{
	struct timespec now2[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	struct stat st;
	char **before = NULL, **after = NULL;
	size_t m0, bad = 0, changes, closes, closes_expected;
	int nb, na, r;

	h_mount_opts("probe_interval=0.2", NULL);
	mkdir_b("g");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	cr_assert(h_wait_exists(h_m("g")));
	w_add(H.mnt);
	w_add(h_m("web"));
	w_add(h_m("g"));
	w_settle();
	nb = h_list(h_m("web"), &before);
	r = stat(h_m("web/state"), &st);
	cr_assert_eq(r, 0);
	m0 = w_mark();
	ntried = 0;

	TRY(mkdir(h_m("x"), 0755), "mkdir MNT/x");
	TRY(mkdir(h_m("web/x"), 0755), "mkdir MNT/web/x");
	TRY(mkdir(h_m("g/x"), 0755), "mkdir MNT/g/x");
	TRY(open_close(h_m("x"), O_WRONLY | O_CREAT, 0644), "open O_CREAT MNT/x");
	TRY(open_close(h_m("web/x"), O_WRONLY | O_CREAT, 0644), "open O_CREAT MNT/web/x");
	TRY(open_close(h_m("g/x"), O_RDWR | O_CREAT | O_EXCL, 0644), "open O_EXCL MNT/g/x");
	TRY(open_close(h_m("web/state"), O_WRONLY | O_TRUNC, 0), "open O_TRUNC MNT/web/state");
	TRY(mknod(h_m("x"), S_IFREG | 0644, 0), "mknod S_IFREG MNT/x");
	TRY(mknod(h_m("x"), S_IFIFO | 0644, 0), "mknod S_IFIFO MNT/x");
	TRY(mknod(h_m("web/x"), S_IFSOCK | 0644, 0), "mknod S_IFSOCK MNT/web/x");
	TRY(mknod(h_m("x"), S_IFCHR | 0644, makedev(1, 3)), "mknod S_IFCHR MNT/x");
	TRY(bind_at(h_m("s.sock")), "bind a socket at MNT/s.sock");
	TRY(symlink("web", h_m("x")), "symlink MNT/x");
	TRY(symlink("state", h_m("web/x")), "symlink MNT/web/x");
	TRY(link(h_m("web/state"), h_m("web/x")), "link MNT/web/state MNT/web/x");
	TRY(link(h_m("web/state"), h_m("x")), "link MNT/web/state MNT/x");
	TRY(unlink(h_m("web/state")), "unlink MNT/web/state");
	TRY(unlink(h_m("web/socket")), "unlink MNT/web/socket");
	TRY(unlink(h_m("web/meta.json")), "unlink MNT/web/meta.json");
	TRY(unlink(h_m(".services.json")), "unlink MNT/.services.json");
	TRY(unlink(h_m(".targets.json")), "unlink MNT/.targets.json");
	TRY(rmdir(h_m("web")), "rmdir MNT/web");
	TRY(rmdir(h_m("g")), "rmdir MNT/g");
	TRY(rename(h_m("web"), h_m("web2")), "rename MNT/web MNT/web2");
	TRY(rename(h_m("web"), h_m("g/web")), "rename MNT/web MNT/g/web");
	TRY(rename(h_m("g"), h_m("g2")), "rename MNT/g MNT/g2");
	TRY(rename(h_m("web/state"), h_m("web/pid")), "rename MNT/web/state over MNT/web/pid");
	TRY(rename(h_m(".services.json"), h_m("x")), "rename MNT/.services.json");
	TRY(rename2(h_m("web"), h_m("g"), RENAME_EXCHANGE), "renameat2 EXCHANGE web g");
	TRY(rename2(h_m("web"), h_m("web3"), RENAME_NOREPLACE), "renameat2 NOREPLACE web");
	TRY(truncate(h_m("web/state"), 0), "truncate MNT/web/state 0");
	TRY(truncate(h_m("web/state"), st.st_size), "truncate MNT/web/state to its size");
	TRY(truncate(h_m(".services.json"), 0), "truncate MNT/.services.json");
	TRY(chmod(H.mnt, 0777), "chmod MNT");
	TRY(chmod(h_m("web"), 0777), "chmod MNT/web");
	TRY(chmod(h_m("web/state"), 0666), "chmod MNT/web/state");
	TRY(chmod(h_m("g"), 0777), "chmod MNT/g");
	TRY(chown(H.mnt, 1, 1), "chown MNT");
	TRY(chown(h_m("web"), 1, 1), "chown MNT/web");
	TRY(chown(h_m("web/state"), 1, 1), "chown MNT/web/state");
	TRY(lchown(h_m("web/socket"), 1, 1), "lchown MNT/web/socket");
	TRY(chown(h_m("g"), 1, 1), "chown MNT/g");
	TRY(utimensat(AT_FDCWD, H.mnt, now2, 0), "touch MNT");
	TRY(utimensat(AT_FDCWD, h_m("web"), now2, 0), "touch MNT/web");
	TRY(utimensat(AT_FDCWD, h_m("web/state"), now2, 0), "touch MNT/web/state");
	TRY(utimensat(AT_FDCWD, h_m("web/socket"), now2, AT_SYMLINK_NOFOLLOW),
	    "touch -h MNT/web/socket");
	TRY(utimensat(AT_FDCWD, h_m("g"), now2, 0), "touch MNT/g");
	TRY(setxattr(H.mnt, "user.x", "1", 1, 0), "setxattr MNT user.x");
	TRY(setxattr(h_m("web"), "user.x", "1", 1, 0), "setxattr MNT/web user.x");
	TRY(setxattr(h_m("web"), "user.svcfs.state", "dead", 4, XATTR_REPLACE),
	    "setxattr MNT/web user.svcfs.state");
	TRY(setxattr(h_m("web"), "trusted.x", "1", 1, 0), "setxattr MNT/web trusted.x");
	TRY(setxattr(h_m("web/state"), "user.x", "1", 1, 0), "setxattr MNT/web/state user.x");
	TRY(lsetxattr(h_m("web/socket"), "user.x", "1", 1, 0), "lsetxattr MNT/web/socket user.x");
	TRY(setxattr(h_m("g"), "user.x", "1", 1, 0), "setxattr MNT/g user.x");
	TRY(removexattr(h_m("web"), "user.svcfs.state"), "removexattr MNT/web user.svcfs.state");
	TRY(removexattr(H.mnt, "user.svcfs.status"), "removexattr MNT user.svcfs.status");
	TRY(removexattr(h_m("web"), "user.none"), "removexattr MNT/web user.none");
	try_writes_through_fds();

	for (size_t i = 0; i < ntried; i++) {
		bool lsetxattr_link = strncmp(tried[i].what, "lsetxattr", 9) == 0;
		int want = lsetxattr_link ? EPERM : EACCES;
		cr_log_info("%s: %s", tried[i].what,
		            tried[i].r < 0 ? strerror(tried[i].err) : "SUCCESS");
		if (tried[i].r >= 0 || tried[i].err != want) {
			bad++;
			cr_log_error("%s: %s (expected %s)", tried[i].what,
			             tried[i].r < 0 ? strerror(tried[i].err) : "succeeded",
			             strerror(want));
		}
	}
	h_sleep_ms(SETTLE_MS);
	changes = w_count_any(m0, CHANGES & ~(uint32_t)IN_CLOSE_WRITE);
	closes = w_count_any(m0, IN_CLOSE_WRITE);
	closes_expected = w_count(m0, -1, IN_CLOSE_WRITE, "state") +
	                  w_count(m0, -1, IN_CLOSE_WRITE, ".services.json");
	if (changes || closes != closes_expected)
		w_dump(m0, "events after refused changes");
	cr_assert_eq(changes, 0, "refused changes gave inotify events");
	cr_assert_eq(closes, closes_expected, "IN_CLOSE_WRITE on a file nobody opened for writing");
	cr_assert_eq(bad, 0, "%zu of %zu changes were not refused as expected (see the log)", bad,
	             ntried);
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"), "web/state changed");
	na = h_list(h_m("web"), &after);
	cr_assert_eq(na, nb);
	for (int i = 0; i < nb; i++)
		cr_assert_str_eq(after[i], before[i]);
	h_strv_free(before);
	h_strv_free(after);
	cr_assert(h_wait_count(H.mnt, 2 + 2, H_TIMEOUT_MS), "the root lists something new");
	h_assert_daemon_alive();
}

/* ---- the aggregates read whole while services churn ---- */

struct churn_ctx {
	char dir[PATH_MAX];
	int ms;                /* how long to churn */
	_Atomic int done;      /* 1 finished, else errno + 1000 */
	_Atomic unsigned made; /* services made */
};

/* In a child: bind service after service in DIR, five alive at once, for MS. */
static void churner(void *arg)
{
	struct churn_ctx *c = arg;
	int fds[5] = {-1, -1, -1, -1, -1};
	long long end = now_ms() + c->ms;
	unsigned i = 0;

	if (chdir(c->dir) < 0) {
		atomic_store(&c->done, 1000 + errno);
		return;
	}
	for (; now_ms() < end; i++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		unsigned slot = i % 5;
		if (fds[slot] >= 0) {
			char old[32];
			snprintf(old, sizeof(old), "c%u.sock", i - 5);
			close(fds[slot]);
			unlink(old);
		}
		snprintf(sa.sun_path, sizeof(sa.sun_path), "c%u.sock", i);
		fds[slot] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[slot] < 0 || bind(fds[slot], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
		    listen(fds[slot], 8) < 0) {
			atomic_store(&c->done, 1000 + errno);
			return;
		}
		atomic_fetch_add(&c->made, 1);
		h_sleep_ms(2);
	}
	atomic_store(&c->done, 1);
	for (;;)
		pause();
}

struct agg_reader {
	char path[PATH_MAX];
	_Atomic int stop, started;
	_Atomic unsigned reads, torn, failed;
	json_type want; /* what every read must parse to */
	_Atomic int saved;
	char example[2048];
	size_t example_len;
};

/* In a child: read PATH whole, again and again; count reads that are not one JSON WANT. */
static void aggregate_reader(void *arg)
{
	struct agg_reader *r = arg;

	atomic_store(&r->started, 1);
	while (!atomic_load(&r->stop)) {
		char *s = h_slurp(r->path);
		json_object *o;

		if (!s) {
			atomic_fetch_add(&r->failed, 1);
			continue;
		}
		o = json_tokener_parse(s);
		if (!o || !json_object_is_type(o, r->want)) {
			atomic_fetch_add(&r->torn, 1);
			if (!atomic_exchange(&r->saved, 1)) {
				r->example_len = strlen(s);
				snprintf(r->example, sizeof(r->example), "%s", s);
			}
		}
		json_object_put(o);
		free(s);
		atomic_fetch_add(&r->reads, 1);
	}
}

/* In a child: rewrite the sidecar at PATH (atomically), short and long in turn. */
static void sidecar_flipper(void *arg)
{
	const char *path = arg;
	char tmp[PATH_MAX + 8], pad[300];

	memset(pad, 'x', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	for (unsigned i = 0;; i++) {
		FILE *f = fopen(tmp, "we");
		if (!f)
			_exit(1);
		if (i % 2)
			fprintf(f, "{\"version\": \"%u\", \"pad\": \"%s\"}", i, pad);
		else
			fprintf(f, "{\"version\": \"%u\"}", i);
		fclose(f);
		if (rename(tmp, path) < 0)
			_exit(1);
		h_sleep_ms(2);
	}
}

/*
 * .services.json and .targets.json change with every service that comes
 * or goes, a service's meta.json with every rewrite of its sidecar; a
 * reader must get one whole version at every read — never the new text
 * cut at the old length, or the old text at the new length — since
 * svcfs_list(), Prometheus and `jq` read them in one go. Services churn
 * (hundreds a second, five alive at a time) and a sidecar is rewritten,
 * short and long in turn, under three readers.
 */
Test(faults, aggregates_read_whole_while_services_churn)
{
	struct churn_ctx *c = shared_new(sizeof(*c));
	struct agg_reader *rd = shared_new(3 * sizeof(*rd));
	char sidecar[PATH_MAX];
	pid_t readers[3];
	int st;

	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("stable.json", "{\"version\": \"0\"}");
	h_service("stable.sock");
	cr_assert(h_wait_content(h_m("stable/version"), "0\n"));
	snprintf(rd[0].path, sizeof(rd[0].path), "%s", h_m(".services.json"));
	snprintf(rd[1].path, sizeof(rd[1].path), "%s", h_m(".targets.json"));
	snprintf(rd[2].path, sizeof(rd[2].path), "%s", h_m("stable/meta.json"));
	rd[0].want = rd[1].want = json_type_array;
	rd[2].want = json_type_object;
	for (int i = 0; i < 3; i++) {
		readers[i] = h_spawn(aggregate_reader, &rd[i]);
		st = wait_flag(&rd[i].started, H_TIMEOUT_MS);
		cr_assert_eq(st, 1, "reader %d did not start", i);
	}
	snprintf(sidecar, sizeof(sidecar), "%s", h_b("stable.json"));
	h_spawn(sidecar_flipper, sidecar);
	snprintf(c->dir, sizeof(c->dir), "%s", H.backing);
	c->ms = 4000;
	h_spawn(churner, c);
	st = wait_flag(&c->done, c->ms + LONG_MS);
	for (int i = 0; i < 3; i++) {
		atomic_store(&rd[i].stop, 1);
		h_join(readers[i], H_TIMEOUT_MS);
	}
	cr_assert_eq(st, 1, "the churner failed: %s", st > 1000 ? strerror(st - 1000) : "timeout");
	cr_log_info("figure: %u services made and removed in %d ms; %u + %u + %u reads",
	            atomic_load(&c->made), c->ms, atomic_load(&rd[0].reads),
	            atomic_load(&rd[1].reads), atomic_load(&rd[2].reads));
	for (int i = 0; i < 3; i++) {
		if (atomic_load(&rd[i].saved))
			cr_log_error("a torn read of %s (%zu bytes): '%s'", rd[i].path,
			             rd[i].example_len, rd[i].example);
		cr_expect_eq(atomic_load(&rd[i].torn), 0,
		             "%u of %u reads of %s were not one whole JSON %s",
		             atomic_load(&rd[i].torn), atomic_load(&rd[i].reads), rd[i].path,
		             json_type_to_name(rd[i].want));
		cr_expect_eq(atomic_load(&rd[i].failed), 0, "%u reads of %s failed",
		             atomic_load(&rd[i].failed), rd[i].path);
	}
	cr_assert_gt(atomic_load(&rd[0].reads), 100, "the readers hardly read");
	h_assert_daemon_alive();
}
