/*
 * lib/discover — the client calls of libsvcfs (svcfs_open, svcfs_lookup,
 * svcfs_list, svcfs_connect, svcfs_wait) on a real svcfs mount, where only
 * live services exist, and degraded on a plain backing directory, where
 * every socket file is a service in state "unknown" with its sidecars and
 * name tokens as metadata.
 *
 * Services are registered with svcfs_register() by the test process when
 * the test is about discovery; processes that must die (SIGKILL) come from
 * the harness. A service that appears "later" is registered by a helper
 * child only once the test process holds an inotify fd, that is once it
 * is already waiting: the wait is real, not a lookup that happened to come
 * late. Children report by exit status. Every wait is bounded and the
 * assertions are on final states; calls that could hang (a full accept
 * queue) run in a child joined with a bound.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <svcfs.h>

#include "harness.h"
#include "libtest.h"

#define SHORT_MS 200   /* the bound of calls that must time out */
#define JOIN_MS  20000 /* a helper child, all its own bounded waits included */
#define MANY     50

TestSuite(open, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);
TestSuite(lookup, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);
TestSuite(backing, .init = h_setup, .fini = h_teardown, .timeout = 60);
TestSuite(list, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);
TestSuite(connect, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);
TestSuite(wait, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);

/* Exit statuses of helper children. */
enum {
	CHILD_OK = 0,
	CHILD_NO_WAITER = 3, /* the test process never started waiting */
	CHILD_REGISTER = 4,
	CHILD_ACCEPT = 5,
	CHILD_SEND = 6,
	CHILD_OPEN = 7,
	CHILD_WRONG = 8, /* a call returned something else than expected */
};

/* ---- helpers ---- */

struct state_ctx {
	svcfs_dir *d;
	const char *name, *state;
};

static bool has_state(void *arg)
{
	struct state_ctx *c = arg;
	svcfs_info *i = NULL;
	bool ok =
	    svcfs_lookup(c->d, c->name, &i) == 0 && strcmp(svcfs_info_state(i), c->state) == 0;

	svcfs_info_free(i);
	return ok;
}

/* NAME's state is STATE, within a bound long enough for a few probe intervals. */
static bool wait_state(svcfs_dir *d, const char *name, const char *state)
{
	struct state_ctx c = {d, name, state};

	return h_wait_until(has_state, &c, 2 * H_TIMEOUT_MS);
}

static svcfs_info *lookup_ok(svcfs_dir *d, const char *name)
{
	svcfs_info *i = NULL;
	int r = svcfs_lookup(d, name, &i);

	cr_assert_eq(r, 0, "lookup %s in %s: %s", name, svcfs_dir_path(d), strerror(-r));
	cr_assert_str_eq(svcfs_info_name(i), name);
	return i;
}

static void assert_lookup_err(svcfs_dir *d, const char *name, int want)
{
	svcfs_info *sentinel = (svcfs_info *)&sentinel, *i = sentinel;
	int r = svcfs_lookup(d, name, &i);

	cr_assert_eq(r, want, "lookup '%s' in %s: %d (%s), want %d", name, svcfs_dir_path(d), r,
	             strerror(-r), want);
	cr_assert_eq(i, sentinel, "ret_info written on failure");
}

/* "since" is RFC 3339 UTC, "YYYY-MM-DDTHH:MM:SSZ". */
static bool is_rfc3339(const char *s)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);

	return end && *end == '\0';
}

/*
 * Accept on listening socket SFD the connection made by process PID:
 * svcfs's one owner probe may be queued before it. -1 if none came.
 */
static int accept_from(int sfd, pid_t pid)
{
	for (int k = 0; k < 8; k++) {
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		struct ucred uc;
		socklen_t len = sizeof(uc);
		int c;

		if (poll(&p, 1, H_TIMEOUT_MS) != 1)
			return -1;
		c = accept4(sfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return -1;
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &uc, &len) == 0 && uc.pid == pid)
			return c;
		close(c);
	}
	return -1;
}

/* Receive into BUF (SIZE bytes, NUL-terminated) within the harness bound; bytes or -1. */
static ssize_t recv_bounded(int fd, char *buf, size_t size)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, H_TIMEOUT_MS) != 1)
		return -1;
	n = recv(fd, buf, size - 1, MSG_DONTWAIT);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

static int sock_type(int fd)
{
	int type = -1;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -1;
	return type;
}

/*
 * Connect to NAME through D and exchange a message with service S (owned by
 * this process): "ping" to the service, for stream/seqpacket "pong" back.
 */
static void assert_exchange(svcfs_dir *d, const char *name, svcfs_service *s, int type)
{
	char buf[64];
	int fd, c = -1, got;
	ssize_t n;

	fd = svcfs_connect(d, name, H_TIMEOUT_MS, 0);
	cr_assert_geq(fd, 0, "connect %s in %s: %s", name, svcfs_dir_path(d), strerror(-fd));
	got = sock_type(fd);
	cr_assert_eq(got, type, "connected socket of type %d, want %d", got, type);
	n = send(fd, "ping", 4, MSG_NOSIGNAL);
	cr_assert_eq(n, 4, "send: %s", strerror(errno));
	if (type == SOCK_DGRAM) {
		n = recv_bounded(svcfs_service_fd(s), buf, sizeof(buf));
	} else {
		c = accept_from(svcfs_service_fd(s), getpid());
		cr_assert_geq(c, 0, "the service never saw our connection to %s", name);
		n = recv_bounded(c, buf, sizeof(buf));
	}
	cr_assert_eq(n, 4, "service received %zd bytes", n);
	cr_assert_str_eq(buf, "ping");
	if (c >= 0) {
		n = send(c, "pong", 4, MSG_NOSIGNAL);
		cr_assert_eq(n, 4);
		n = recv_bounded(fd, buf, sizeof(buf));
		cr_assert_eq(n, 4, "client received %zd bytes", n);
		cr_assert_str_eq(buf, "pong");
		close(c);
	}
	close(fd);
}

/* ---- helper children ---- */

/* Process PID holds an inotify fd: it is inside svcfs_wait (this suite opens no other). */
static bool holds_inotify(pid_t pid)
{
	char dir[64], link[PATH_MAX], target[64];
	struct dirent *de;
	DIR *d;
	bool yes = false;

	snprintf(dir, sizeof(dir), "/proc/%ld/fd", (long)pid);
	d = opendir(dir);
	if (!d)
		return false;
	while (!yes && (de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, de->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		yes = strcmp(target, "anon_inode:inotify") == 0;
	}
	closedir(d);
	return yes;
}

static bool parent_waiting(void *arg)
{
	return holds_inotify(*(pid_t *)arg);
}

struct later {
	pid_t parent;       /* the test process */
	char dir[PATH_MAX]; /* where to register */
	char name[512];
	bool serve; /* greet the parent's connection, then exit; else stay until killed */
};

/* Child: once the parent waits, register NAME; serve it or just keep it. */
static void later_service(void *arg)
{
	struct later *l = arg;
	struct svcfs_register_opts o = {.dir = l->dir};
	svcfs_service *s = NULL;
	int c;

	if (!h_wait_until(parent_waiting, &l->parent, H_TIMEOUT_MS))
		_exit(CHILD_NO_WAITER);
	if (svcfs_register(l->name, &o, &s) < 0)
		_exit(CHILD_REGISTER);
	if (!l->serve) {
		for (;;)
			pause();
	}
	c = accept_from(svcfs_service_fd(s), l->parent);
	if (c < 0)
		_exit(CHILD_ACCEPT);
	if (send(c, "hi\n", 3, MSG_NOSIGNAL) != 3)
		_exit(CHILD_SEND);
	close(c);
	svcfs_unregister(s);
	_exit(CHILD_OK);
}

static pid_t spawn_later(struct later *l, const char *dir, const char *name, bool serve)
{
	l->parent = getpid();
	snprintf(l->dir, sizeof(l->dir), "%s", dir);
	snprintf(l->name, sizeof(l->name), "%s", name);
	l->serve = serve;
	return h_spawn(later_service, l);
}

static void assert_child_ok(pid_t pid, const char *what)
{
	int st = h_join(pid, JOIN_MS);

	cr_assert(st != -1, "%s: the helper child did not end", what);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK, "%s: helper child status %#x", what,
	          st);
}

/* ---- svcfs_open ---- */

Test(open, detects_the_mount)
{
	char tmpl[] = "/dev/shm/svcfs-lib.XXXXXX";
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing), *t = NULL;
	const char *tmp = mkdtemp(tmpl);
	int r = -1;
	bool tmpfs_mount = true;

	if (tmp) {
		r = svcfs_open(tmp, &t);
		tmpfs_mount = svcfs_dir_is_mount(t);
		svcfs_close(t);
		rmdir(tmp);
	}
	cr_assert(svcfs_dir_is_mount(m), "%s is an svcfs mount", H.mnt);
	cr_assert_not(svcfs_dir_is_mount(b), "%s is a backing directory", H.backing);
	cr_assert_not_null(tmp, "mkdtemp in /dev/shm: %s", strerror(errno));
	cr_assert_eq(r, 0, "svcfs_open of a tmpfs dir: %s", strerror(-r));
	cr_assert_not(tmpfs_mount, "a tmpfs directory is not an svcfs mount");
	cr_assert_str_eq(svcfs_dir_path(m), H.mnt);
	cr_assert_str_eq(svcfs_dir_path(b), H.backing);
	svcfs_close(m);
	svcfs_close(b);
}

Test(open, path_is_absolute)
{
	svcfs_dir *m, *b, *l;
	int r;

	r = symlink(H.mnt, h_r("link"));
	cr_assert_eq(r, 0, "symlink: %s", strerror(errno));
	r = chdir(H.root);
	cr_assert_eq(r, 0);
	m = lt_open_dir("m");
	b = lt_open_dir("./b/../b/");
	l = lt_open_dir("link");
	r = chdir("/");
	cr_assert_eq(r, 0);
	cr_assert_str_eq(svcfs_dir_path(m), H.mnt);
	cr_assert_str_eq(svcfs_dir_path(b), H.backing);
	cr_assert_str_eq(svcfs_dir_path(l), H.mnt, "the path is resolved: %s", svcfs_dir_path(l));
	cr_assert(svcfs_dir_is_mount(m) && svcfs_dir_is_mount(l));
	cr_assert_not(svcfs_dir_is_mount(b));
	svcfs_close(m);
	svcfs_close(b);
	svcfs_close(l);
	l = svcfs_close(NULL);
	cr_assert_null(l);
}

Test(open, group_directory_of_the_mount)
{
	static const char *const want[] = {"a", "b", "sub/c"};
	svcfs_service *s[] = {lt_reg("top", NULL), lt_reg("grp/b", "{\"k\":1}"),
	                      lt_reg("grp/a", NULL), lt_reg("grp/sub/c", NULL),
	                      lt_reg("other/a", NULL)};
	svcfs_dir *root = lt_open_dir(H.mnt), *g, *gb;
	svcfs_info **v = NULL, *i;
	size_t n = 0;
	int r, fd;

	cr_assert(lt_wait_list_count(root, 5), "the 5 services did not appear on the mount");
	g = lt_open_dir(h_m("grp"));
	cr_assert(svcfs_dir_is_mount(g), "a group directory of the mount is on the mount");
	cr_assert_str_eq(svcfs_dir_path(g), h_m("grp"));
	r = svcfs_list(g, &v, &n);
	cr_assert_eq(r, 0, "list of MNT/grp: %s", strerror(-r));
	cr_assert_eq(n, 3, "MNT/grp lists %zu services", n);
	for (size_t k = 0; k < n; k++) {
		cr_assert_str_eq(svcfs_info_name(v[k]), want[k]);
		cr_assert_str_eq(svcfs_info_socket(v[k]), h_b("grp/%s.sock", want[k]));
		cr_assert_str_eq(svcfs_info_state(v[k]), "alive");
	}
	svcfs_list_free(v, n);

	/* the same names in the backing group */
	gb = lt_open_dir(h_b("grp"));
	r = svcfs_list(gb, &v, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 3);
	for (size_t k = 0; k < n; k++)
		cr_assert_str_eq(svcfs_info_name(v[k]), want[k]);
	svcfs_list_free(v, n);

	i = lookup_ok(g, "a");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("grp/a.sock"));
	svcfs_info_free(i);
	i = lookup_ok(g, "sub/c");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("grp/sub/c.sock"));
	svcfs_info_free(i);
	assert_lookup_err(g, "top", -ENOENT);
	fd = svcfs_connect(g, "b", H_TIMEOUT_MS, 0);
	cr_assert_geq(fd, 0, "connect b in MNT/grp: %s", strerror(-fd));
	close(fd);

	svcfs_close(gb);
	svcfs_close(g);
	svcfs_close(root);
	for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
		svcfs_unregister(s[k]);
}

/* As another user: svcfs_open of a directory that user cannot read (an errno, 0 if it opened). */
static int open_as_other(const void *arg)
{
	svcfs_dir *d = NULL;
	int r = svcfs_open(arg, &d);

	svcfs_close(d);
	return r < 0 ? -r : 0;
}

Test(open, errors)
{
	svcfs_dir *sentinel = (svcfs_dir *)&sentinel, *d = sentinel;
	int r_missing, r_file, r_null, fd, r;

	fd = open(h_r("file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	r_missing = svcfs_open(h_r("missing"), &d);
	cr_assert_eq(r_missing, -ENOENT, "missing path: %s", strerror(-r_missing));
	r_missing = svcfs_open(h_b("missing/deeper"), &d);
	cr_assert_eq(r_missing, -ENOENT, "missing parent: %s", strerror(-r_missing));
	r_file = svcfs_open(h_r("file"), &d);
	cr_assert_eq(r_file, -ENOTDIR, "a file: %s", strerror(-r_file));
	cr_assert_eq(d, sentinel, "ret_dir written on failure");
	r_null = svcfs_open(H.mnt, NULL);
	cr_assert_eq(r_null, -EINVAL);
	r = mkdir(h_r("private"), 0700);
	cr_assert_eq(r, 0);
	r = h_as_user(65534, 65534, 0, open_as_other, h_r("private"));
	cr_assert_eq(r, EACCES, "another user opening a 0700 dir: %d", r);
	r = h_as_user(65534, 65534, 0, open_as_other, H.backing);
	cr_assert_eq(r, 0, "another user opening a 0755 dir: %d", r);
}

Test(open, null_path_uses_svcfs_mount)
{
	svcfs_dir *d = NULL, *sentinel = (svcfs_dir *)&sentinel, *e = sentinel;
	int r, r_missing;

	setenv("SVCFS_MOUNT", H.mnt, 1);
	r = svcfs_open(NULL, &d);
	setenv("SVCFS_MOUNT", h_r("missing"), 1);
	r_missing = svcfs_open(NULL, &e);
	unsetenv("SVCFS_MOUNT");
	cr_assert_eq(r, 0, "svcfs_open(NULL) with SVCFS_MOUNT: %s", strerror(-r));
	cr_assert_str_eq(svcfs_dir_path(d), H.mnt);
	cr_assert(svcfs_dir_is_mount(d));
	cr_assert_eq(r_missing, -ENOENT, "SVCFS_MOUNT names a missing dir: %s",
	             strerror(-r_missing));
	cr_assert_eq(e, sentinel);
	svcfs_close(d);
}

/* ---- svcfs_lookup ---- */

/*
 * NAME's meta.json on the mount is INFO's metadata plus what svcfs found,
 * each found field equal to its accessor.
 */
static void assert_meta_json_matches(const char *name, const svcfs_info *i)
{
	json_object *shown = h_json_file(h_m("%s/meta.json", name)), *want;

	cr_assert_not_null(shown, "MNT/%s/meta.json is not JSON", name);
	want = NULL;
	json_object_deep_copy(svcfs_info_meta(i), &want, NULL);
	cr_assert_not_null(want);
	json_object_object_add(want, "socket", json_object_new_string(svcfs_info_socket(i)));
	json_object_object_add(want, "pid", json_object_new_int(svcfs_info_pid(i)));
	json_object_object_add(want, "uid", json_object_new_int64(svcfs_info_uid(i)));
	json_object_object_add(want, "gid", json_object_new_int64(svcfs_info_gid(i)));
	json_object_object_add(want, "state", json_object_new_string(svcfs_info_state(i)));
	json_object_object_add(want, "since", json_object_new_string(svcfs_info_since(i)));
	cr_assert(json_object_equal(want, shown), "MNT/%s/meta.json %s, from the info %s", name,
	          json_object_to_json_string(shown), json_object_to_json_string(want));
	json_object_put(want);
	json_object_put(shown);
}

/* File FILE of service NAME on the mount reads WANT and a newline. */
static void assert_view_file(const char *name, const char *file, const char *want)
{
	char *text = h_slurp(h_m("%s/%s", name, file));
	bool same = text && strlen(text) == strlen(want) + 1 &&
	            strncmp(text, want, strlen(want)) == 0 && text[strlen(want)] == '\n';

	cr_assert(same, "MNT/%s/%s reads '%s', the info says '%s'", name, file, text ? text : "",
	          want);
	free(text);
}

Test(lookup, on_the_mount_matches_the_view)
{
	/* "state" in the sidecar: what svcfs found wins, and the accessor has it */
	const char *sidecar = "{\"version\":\"1.2.3\",\"port\":8080,\"tags\":[\"a\",\"b\"],"
	                      "\"nested\":{\"k\":true},\"state\":\"bogus\"}";
	svcfs_service *web = lt_reg("web", sidecar), *gw = lt_reg("g/w-port7070", NULL);
	svcfs_dir *d = lt_open_dir(H.mnt);
	json_object *want;
	svcfs_info *i;
	char num[32];
	bool ok;

	ok = lt_wait_found(d, "web") && lt_wait_found(d, "g/w-port7070");
	cr_assert(ok, "web and g/w-port7070 did not appear with an owner");
	i = lookup_ok(d, "web");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("web.sock"));
	cr_assert_str_eq(svcfs_info_socket(i), svcfs_service_path(web));
	cr_assert_eq(svcfs_info_pid(i), getpid(), "pid %d, the registering process is %d",
	             (int)svcfs_info_pid(i), (int)getpid());
	cr_assert_eq(svcfs_info_uid(i), geteuid());
	cr_assert_eq(svcfs_info_gid(i), getegid());
	cr_assert_str_eq(svcfs_info_state(i), "alive");
	cr_assert(is_rfc3339(svcfs_info_since(i)), "since '%s'", svcfs_info_since(i));
	/* the metadata: the sidecar without the keys that have accessors */
	want = lt_parse(sidecar);
	json_object_object_del(want, "state");
	cr_assert(json_object_equal(want, svcfs_info_meta(i)), "meta %s, want %s",
	          json_object_to_json_string(svcfs_info_meta(i)), json_object_to_json_string(want));
	json_object_put(want);

	/* what the mount shows */
	snprintf(num, sizeof(num), "%d", (int)svcfs_info_pid(i));
	assert_view_file("web", "pid", num);
	snprintf(num, sizeof(num), "%u", (unsigned)svcfs_info_uid(i));
	assert_view_file("web", "uid", num);
	snprintf(num, sizeof(num), "%u", (unsigned)svcfs_info_gid(i));
	assert_view_file("web", "gid", num);
	assert_view_file("web", "state", svcfs_info_state(i));
	assert_view_file("web", "since", svcfs_info_since(i));
	assert_view_file("web", "version", "1.2.3");
	assert_meta_json_matches("web", i);
	svcfs_info_free(i);

	/* in a group, no sidecar: the port token is the metadata */
	i = lookup_ok(d, "g/w-port7070");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("g/w-port7070.sock"));
	cr_assert_eq(svcfs_info_pid(i), getpid());
	want = lt_parse("{\"port\":7070}");
	cr_assert(json_object_equal(want, svcfs_info_meta(i)), "meta %s",
	          json_object_to_json_string(svcfs_info_meta(i)));
	json_object_put(want);
	assert_meta_json_matches("g/w-port7070", i);
	svcfs_info_free(i);

	svcfs_close(d);
	svcfs_unregister(web);
	svcfs_unregister(gw);
}

Test(lookup, dead_service_is_gone_from_the_mount)
{
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	pid_t pid = h_service("dead.sock");
	svcfs_info *i;
	bool ok = lt_wait_found(m, "dead");

	cr_assert(ok, "MNT/dead did not appear");
	i = lookup_ok(m, "dead");
	cr_assert_eq(svcfs_info_pid(i), pid);
	svcfs_info_free(i);
	h_kill(pid);
	ok = h_wait_gone(h_m("dead"));
	cr_assert(ok, "MNT/dead is still there after SIGKILL");
	assert_lookup_err(m, "dead", -ENOENT);
	/* the backing directory still holds the socket file: no liveness there */
	i = lookup_ok(b, "dead");
	cr_assert_str_eq(svcfs_info_state(i), "unknown");
	svcfs_info_free(i);
	svcfs_close(m);
	svcfs_close(b);
}

Test(lookup, group_name_is_not_a_service)
{
	svcfs_service *s = lt_reg("grp/x", NULL), *deep = lt_reg("a/b/c", NULL);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	svcfs_info *i;
	bool ok = lt_wait_found(m, "grp/x") && lt_wait_found(m, "a/b/c");

	cr_assert(ok);
	assert_lookup_err(m, "grp", -ENOENT);
	assert_lookup_err(b, "grp", -ENOENT);
	assert_lookup_err(m, "a/b", -ENOENT);
	assert_lookup_err(b, "a/b", -ENOENT);
	assert_lookup_err(m, "grp/x/y", -ENOENT);
	assert_lookup_err(b, "grp/x/y", -ENOENT);
	assert_lookup_err(m, "nogroup/x", -ENOENT);
	assert_lookup_err(b, "nogroup/x", -ENOENT);
	i = lookup_ok(m, "a/b/c");
	svcfs_info_free(i);
	i = lookup_ok(b, "a/b/c");
	svcfs_info_free(i);
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
	svcfs_unregister(deep);
}

Test(lookup, bad_names)
{
	char long_comp[300], too_deep[64];
	const char *bad[] = {"",     "/abs",    "a//b", "..",      "g/.h",  "a/",
	                     "../x", ".hidden", "g/..", long_comp, too_deep};
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	svcfs_info *i = NULL;
	int r;

	memset(long_comp, 'x', 256);
	long_comp[256] = '\0';
	snprintf(too_deep, sizeof(too_deep), "1/2/3/4/5/6/7/8/9/x");
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_lookup_err(m, bad[k], -EINVAL);
		assert_lookup_err(b, bad[k], -EINVAL);
	}
	assert_lookup_err(m, NULL, -EINVAL);
	r = svcfs_lookup(NULL, "x", &i);
	cr_assert_eq(r, -EINVAL);
	r = svcfs_lookup(b, "x", NULL);
	cr_assert_eq(r, -EINVAL);
	/* the longest valid ones are fine, just absent */
	memset(long_comp, 'x', 255);
	long_comp[255] = '\0';
	assert_lookup_err(b, long_comp, -ENOENT);
	assert_lookup_err(m, long_comp, -ENOENT);
	assert_lookup_err(b, "1/2/3/4/5/6/7/8/x", -ENOENT);
	/* control characters: valid to look up (svcfs shows such sockets), just absent */
	assert_lookup_err(m, "x\n", -ENOENT);
	assert_lookup_err(b, "t\tb", -ENOENT);
	svcfs_close(m);
	svcfs_close(b);
}

/* Every name svcfs lists can be looked up and connected to, odd bytes included. */
Test(lookup, control_characters_in_names)
{
	static const char *const odd = "odd\x01name\nx";
	svcfs_dir *dirs[2] = {lt_open_dir(H.mnt), lt_open_dir(H.backing)};
	char path[64];
	bool ok;

	snprintf(path, sizeof(path), "%s.sock", odd);
	h_service(path);
	ok = lt_wait_found(dirs[0], odd);
	cr_assert(ok, "a socket named with control characters did not appear on the mount");
	for (int k = 0; k < 2; k++) {
		svcfs_info **v = NULL, *i = NULL;
		size_t n = 0;
		int r, fd;

		r = svcfs_list(dirs[k], &v, &n);
		cr_assert_eq(r, 0);
		cr_assert_eq(n, 1);
		cr_assert_str_eq(svcfs_info_name(v[0]), odd);
		svcfs_list_free(v, n);
		r = svcfs_lookup(dirs[k], odd, &i);
		cr_assert_eq(r, 0, "lookup in %s: %s", svcfs_dir_path(dirs[k]), strerror(-r));
		svcfs_info_free(i);
		fd = svcfs_connect(dirs[k], odd, 1000, 0);
		cr_assert_geq(fd, 0, "connect in %s: %s", svcfs_dir_path(dirs[k]), strerror(-fd));
		close(fd);
	}
	svcfs_close(dirs[0]);
	svcfs_close(dirs[1]);
}

/* ---- a backing directory, degraded ---- */

static void write_file(const char *path, const char *text)
{
	h_write_atomic(path, text);
}

Test(backing, plain_socket_fields)
{
	svcfs_service *s = lt_reg("plain", NULL);
	svcfs_dir *b = lt_open_dir(H.backing);
	svcfs_info *i = lookup_ok(b, "plain");
	json_object *empty = json_object_new_object();

	cr_assert_not(svcfs_dir_is_mount(b));
	cr_assert_str_eq(svcfs_info_socket(i), h_b("plain.sock"));
	cr_assert_str_eq(svcfs_info_state(i), "unknown");
	cr_assert_str_eq(svcfs_info_since(i), "");
	cr_assert_eq(svcfs_info_pid(i), 0);
	cr_assert_eq(svcfs_info_uid(i), geteuid());
	cr_assert_eq(svcfs_info_gid(i), getegid());
	cr_assert(json_object_equal(svcfs_info_meta(i), empty), "meta %s",
	          json_object_to_json_string(svcfs_info_meta(i)));
	json_object_put(empty);
	svcfs_info_free(i);
	svcfs_close(b);
	svcfs_unregister(s);
}

static pid_t pid_of(svcfs_dir *d, const char *name)
{
	svcfs_info *i = lookup_ok(d, name);
	pid_t pid = svcfs_info_pid(i);

	svcfs_info_free(i);
	return pid;
}

Test(backing, pid_from_sidecar_pidfile_or_token)
{
	svcfs_service *s[] = {
	    lt_reg("side-pid777", "{\"pid\":4242}"), /* the sidecar wins over all */
	    lt_reg("pidf-pid777", NULL),             /* NAME.pid wins over the token */
	    lt_reg("tok-pid777", NULL),
	    lt_reg("junk", NULL), /* a PID file that is no number */
	    lt_reg("g/inner-pid31", NULL),
	    lt_reg("strpid", "{\"pid\":\"55\"}"), /* not a number: ignored */
	};
	svcfs_dir *b;

	write_file(h_b("side-pid777.pid"), "4343\n");
	write_file(h_b("pidf-pid777.pid"), "4343\n");
	write_file(h_b("junk.pid"), "twelve\n");
	b = lt_open_dir(H.backing);
	cr_assert_eq(pid_of(b, "side-pid777"), 4242);
	cr_assert_eq(pid_of(b, "pidf-pid777"), 4343);
	cr_assert_eq(pid_of(b, "tok-pid777"), 777);
	cr_assert_eq(pid_of(b, "junk"), 0);
	cr_assert_eq(pid_of(b, "g/inner-pid31"), 31);
	cr_assert_eq(pid_of(b, "strpid"), 0);
	svcfs_close(b);
	for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
		svcfs_unregister(s[k]);
}

static void assert_meta(svcfs_dir *d, const char *name, const char *want_text)
{
	svcfs_info *i = lookup_ok(d, name);
	json_object *want = lt_parse(want_text);

	cr_assert(json_object_equal(svcfs_info_meta(i), want), "%s: meta %s, want %s", name,
	          json_object_to_json_string(svcfs_info_meta(i)), want_text);
	json_object_put(want);
	svcfs_info_free(i);
}

Test(backing, meta_from_sidecar_with_port_token)
{
	svcfs_service *s[] = {
	    lt_reg("worker-pid12345-port8080", "{\"a\":1}"),
	    lt_reg("x-port9090", "{\"port\":1}"), /* the sidecar's port wins */
	    lt_reg("y-port7", NULL),
	    lt_reg("z", "{\"list\":[1,2],\"o\":{\"p\":null}}"),
	};
	svcfs_dir *b = lt_open_dir(H.backing);

	assert_meta(b, "worker-pid12345-port8080", "{\"a\":1,\"port\":8080}");
	cr_assert_eq(pid_of(b, "worker-pid12345-port8080"), 12345);
	assert_meta(b, "x-port9090", "{\"port\":1}");
	assert_meta(b, "y-port7", "{\"port\":7}");
	assert_meta(b, "z", "{\"list\":[1,2],\"o\":{\"p\":null}}");
	/* a sidecar that is not valid JSON is no metadata */
	write_file(h_b("z.json"), "{\"broken\":");
	assert_meta(b, "z", "{}");
	svcfs_close(b);
	for (size_t k = 0; k < sizeof(s) / sizeof(s[0]); k++)
		svcfs_unregister(s[k]);
}

Test(backing, sidecars_of_another_user_are_ignored)
{
	const uid_t other = 65534, third = 65533;
	svcfs_service *mine = lt_reg("mine", "{\"pid\":4242}"), *theirs = lt_reg("theirs", NULL);
	svcfs_dir *b;
	int r;

	/* both sockets belong to OTHER; root's files are trusted, a third user's are not */
	r = lchown(h_b("mine.sock"), other, other);
	cr_assert_eq(r, 0, "chown: %s", strerror(errno));
	r = lchown(h_b("theirs.sock"), other, other);
	cr_assert_eq(r, 0);
	h_write_atomic_owned(h_b("theirs.pid"), "4343\n", third, third);
	h_write_atomic_owned(h_b("theirs.json"), "{\"pid\":4444,\"a\":1}", third, third);
	b = lt_open_dir(H.backing);
	cr_assert_eq(pid_of(b, "mine"), 4242, "a root-owned sidecar is trusted");
	cr_assert_eq(pid_of(b, "theirs"), 0, "a PID file of another user than the socket's");
	assert_meta(b, "theirs", "{}");
	/* the socket owner's own files count */
	h_write_atomic_owned(h_b("theirs.pid"), "4343\n", other, other);
	cr_assert_eq(pid_of(b, "theirs"), 4343);
	svcfs_close(b);
	svcfs_unregister(mine);
	svcfs_unregister(theirs);
}

Test(backing, symlinked_sockets)
{
	svcfs_service *real;
	svcfs_dir *b;
	svcfs_info *i, **v = NULL;
	size_t n = 0;
	int r, fd;

	r = mkdir(h_r("elsewhere"), 0755);
	cr_assert_eq(r, 0);
	real = lt_reg_opts(h_r("elsewhere"), "real", NULL, 0, 0);
	r = symlink(svcfs_service_path(real), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	r = symlink(svcfs_service_path(real), h_b("dock2"));
	cr_assert_eq(r, 0);
	r = symlink(h_r("nowhere.sock"), h_b("dangling.sock"));
	cr_assert_eq(r, 0);
	r = symlink(h_r("elsewhere"), h_b("dirlink.sock"));
	cr_assert_eq(r, 0);
	b = lt_open_dir(H.backing);

	i = lookup_ok(b, "docker");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("docker.sock"));
	svcfs_info_free(i);
	i = lookup_ok(b, "dock2");
	cr_assert_str_eq(svcfs_info_socket(i), h_b("dock2"));
	svcfs_info_free(i);
	assert_lookup_err(b, "dangling", -ENOENT);
	assert_lookup_err(b, "dirlink", -ENOENT);

	r = svcfs_list(b, &v, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 2, "%zu services listed", n);
	cr_assert_str_eq(svcfs_info_name(v[0]), "dock2");
	cr_assert_str_eq(svcfs_info_name(v[1]), "docker");
	svcfs_list_free(v, n);

	fd = svcfs_connect(b, "docker", H_TIMEOUT_MS, 0);
	cr_assert_geq(fd, 0, "connect through the symlink: %s", strerror(-fd));
	close(fd);
	svcfs_close(b);
	svcfs_unregister(real);
}

Test(backing, non_sockets_are_ignored)
{
	svcfs_service *s = lt_reg("real", NULL);
	svcfs_dir *b;
	svcfs_info **v = NULL;
	size_t n = 0;
	int r;

	write_file(h_b("fake.sock"), "not a socket\n");
	write_file(h_b("plainfile"), "x\n");
	write_file(h_b("orphan.json"), "{\"a\":1}\n");
	r = mkfifo(h_b("fifo.sock"), 0600);
	cr_assert_eq(r, 0);
	r = mkdir(h_b("emptygroup"), 0755);
	cr_assert_eq(r, 0);
	h_service(".hidden.sock");
	r = mkdir(h_b(".hid"), 0755);
	cr_assert_eq(r, 0);
	h_service(".hid/inside.sock");
	b = lt_open_dir(H.backing);
	assert_lookup_err(b, "fake", -ENOENT);
	assert_lookup_err(b, "fake.sock", -ENOENT);
	assert_lookup_err(b, "plainfile", -ENOENT);
	assert_lookup_err(b, "orphan", -ENOENT);
	assert_lookup_err(b, "fifo", -ENOENT);
	assert_lookup_err(b, "emptygroup", -ENOENT);
	r = svcfs_list(b, &v, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 1, "%zu services listed, want only 'real'", n);
	cr_assert_str_eq(svcfs_info_name(v[0]), "real");
	svcfs_list_free(v, n);
	svcfs_close(b);
	svcfs_unregister(s);
}

/* ---- svcfs_list ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

Test(list, sorted_complete_mount_equals_backing)
{
	svcfs_service *s[MANY];
	char *names[MANY];
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	svcfs_info **vm = NULL, **vb = NULL;
	size_t nm = 0, nb = 0;
	int rm, rb;
	bool ok;

	/* registered in reverse order of the names, some with sidecars, in groups */
	for (int k = MANY - 1; k >= 0; k--) {
		char name[64], meta[64];
		if (k < 20)
			snprintf(name, sizeof(name), "svc-%02d", k);
		else if (k < 35)
			snprintf(name, sizeof(name), "g1/w-%02d", k);
		else if (k < 45)
			snprintf(name, sizeof(name), "g1/g2/deep-%02d-port%d", k, 9000 + k);
		else
			snprintf(name, sizeof(name), "zz/last-%02d", k);
		snprintf(meta, sizeof(meta), "{\"n\":%d}", k);
		names[k] = strdup(name);
		cr_assert_not_null(names[k]);
		s[k] = lt_reg(name, k % 3 ? meta : NULL);
	}
	qsort(names, MANY, sizeof(names[0]), cmp_str);
	ok = lt_wait_list_count(m, MANY);
	cr_assert(ok, "the mount did not list %d services", MANY);
	rm = svcfs_list(m, &vm, &nm);
	rb = svcfs_list(b, &vb, &nb);
	cr_assert_eq(rm, 0, "list mount: %s", strerror(-rm));
	cr_assert_eq(rb, 0, "list backing: %s", strerror(-rb));
	cr_assert_eq(nm, MANY);
	cr_assert_eq(nb, MANY);
	for (size_t k = 0; k < MANY; k++) {
		cr_assert_str_eq(svcfs_info_name(vm[k]), names[k], "mount list #%zu", k);
		cr_assert_str_eq(svcfs_info_name(vb[k]), names[k], "backing list #%zu", k);
		cr_assert_str_eq(svcfs_info_socket(vm[k]), h_b("%s.sock", names[k]));
		cr_assert_str_eq(svcfs_info_socket(vb[k]), h_b("%s.sock", names[k]));
		cr_assert_eq(svcfs_info_uid(vm[k]), svcfs_info_uid(vb[k]));
		cr_assert_eq(svcfs_info_gid(vm[k]), svcfs_info_gid(vb[k]));
		cr_assert(json_object_equal(svcfs_info_meta(vm[k]), svcfs_info_meta(vb[k])),
		          "%s: meta %s on the mount, %s in the backing dir", names[k],
		          json_object_to_json_string(svcfs_info_meta(vm[k])),
		          json_object_to_json_string(svcfs_info_meta(vb[k])));
		cr_assert_str_eq(svcfs_info_state(vm[k]), "alive");
		cr_assert_str_eq(svcfs_info_state(vb[k]), "unknown");
		cr_assert(is_rfc3339(svcfs_info_since(vm[k])));
	}
	svcfs_list_free(vm, nm);
	svcfs_list_free(vb, nb);
	svcfs_close(m);
	svcfs_close(b);
	for (size_t k = 0; k < MANY; k++) {
		svcfs_unregister(s[k]);
		free(names[k]);
	}
}

Test(list, eight_groups_deep_and_no_deeper)
{
	const char *deep8 = "1/2/3/4/5/6/7/8/svc";
	svcfs_service *s = lt_reg(deep8, NULL);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	svcfs_info **v = NULL, *i;
	size_t n = 0;
	int r;
	bool ok;

	/* a ninth group is out of svcfs's reach: not listed, not a valid name */
	r = mkdir(h_b("1/2/3/4/5/6/7/8/9"), 0755);
	cr_assert_eq(r, 0);
	h_service("1/2/3/4/5/6/7/8/9/too-deep.sock");
	ok = lt_wait_found(m, deep8);
	cr_assert(ok, "%s did not appear on the mount", deep8);
	for (int k = 0; k < 2; k++) {
		svcfs_dir *d = k ? b : m;
		r = svcfs_list(d, &v, &n);
		cr_assert_eq(r, 0);
		cr_assert_eq(n, 1, "%zu services listed in %s", n, svcfs_dir_path(d));
		cr_assert_str_eq(svcfs_info_name(v[0]), deep8);
		svcfs_list_free(v, n);
		i = lookup_ok(d, deep8);
		svcfs_info_free(i);
		assert_lookup_err(d, "1/2/3/4/5/6/7/8/9/too-deep", -EINVAL);
	}
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
}

Test(list, dead_service_absent_on_mount_present_in_backing)
{
	svcfs_service *live = lt_reg("live", NULL);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	pid_t pid = h_service("dead.sock");
	svcfs_info **v = NULL;
	size_t n = 0;
	int r;
	bool ok = lt_wait_list_count(m, 2);

	cr_assert(ok, "live and dead did not both appear");
	h_kill(pid);
	ok = lt_wait_list_count(m, 1);
	cr_assert(ok, "dead is still listed on the mount after SIGKILL");
	r = svcfs_list(m, &v, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(svcfs_info_name(v[0]), "live");
	svcfs_list_free(v, n);
	r = svcfs_list(b, &v, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(svcfs_info_name(v[0]), "dead");
	cr_assert_str_eq(svcfs_info_name(v[1]), "live");
	cr_assert_str_eq(svcfs_info_state(v[0]), "unknown");
	svcfs_list_free(v, n);
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(live);
}

static size_t list_count(svcfs_dir *d)
{
	svcfs_info **v = NULL;
	size_t n = 0;
	int r = svcfs_list(d, &v, &n);

	cr_assert_eq(r, 0, "list of %s: %s", svcfs_dir_path(d), strerror(-r));
	svcfs_list_free(v, n);
	return n;
}

Test(list, again_on_the_same_handle)
{
	svcfs_service *s[] = {lt_reg("one", NULL), lt_reg("two", NULL), lt_reg("g/three", NULL)},
	              *four;
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	size_t n1, n2, n3;
	bool ok = lt_wait_list_count(m, 3);

	cr_assert(ok);
	for (int k = 0; k < 2; k++) {
		svcfs_dir *d = k ? b : m;
		n1 = list_count(d);
		n2 = list_count(d);
		cr_assert_eq(n1, 3, "first list of %s: %zu", svcfs_dir_path(d), n1);
		cr_assert_eq(n2, 3, "second list of %s: %zu", svcfs_dir_path(d), n2);
	}
	four = lt_reg("four", NULL);
	ok = lt_wait_list_count(m, 4);
	cr_assert(ok, "the mount did not list four");
	n3 = list_count(b);
	cr_assert_eq(n3, 4, "list of the backing dir after a fourth service: %zu", n3);
	svcfs_close(m);
	svcfs_close(b);
	for (size_t k = 0; k < 3; k++)
		svcfs_unregister(s[k]);
	svcfs_unregister(four);
}

static void assert_empty_list(svcfs_dir *d)
{
	svcfs_info **v = NULL;
	size_t n = 99;
	int r = svcfs_list(d, &v, &n);

	cr_assert_eq(r, 0, "list of empty %s: %s", svcfs_dir_path(d), strerror(-r));
	cr_assert_eq(n, 0);
	cr_assert_not_null(v, "an empty list is still an array to free");
	svcfs_list_free(v, n);
}

Test(list, empty_directory)
{
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing), *e;
	int r;

	assert_empty_list(m);
	assert_empty_list(b);
	/* files that are no services, and an empty group, leave it empty */
	r = mkdir(h_b("group"), 0755);
	cr_assert_eq(r, 0);
	h_write_atomic(h_b("notes.txt"), "x\n");
	assert_empty_list(b);
	assert_empty_list(m);
	e = lt_open_dir(h_b("group"));
	assert_empty_list(e);
	svcfs_close(e);
	svcfs_list_free(NULL, 0);
	svcfs_close(m);
	svcfs_close(b);
}

/* ---- svcfs_connect ---- */

Test(connect, exchanges_data_stream_seqpacket_dgram)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	static const char *const names[] = {"t-stream", "g/t-seqpacket", "t-dgram"};
	svcfs_service *s[3];
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);

	for (size_t k = 0; k < 3; k++)
		s[k] = lt_reg_opts(H.backing, names[k], NULL, types[k], 0);
	for (size_t k = 0; k < 3; k++) {
		bool ok = lt_wait_found(m, names[k]);
		cr_assert(ok, "%s did not appear", names[k]);
	}
	for (size_t k = 0; k < 3; k++) {
		assert_exchange(m, names[k], s[k], types[k]);
		assert_exchange(b, names[k], s[k], types[k]);
	}
	svcfs_close(m);
	svcfs_close(b);
	for (size_t k = 0; k < 3; k++)
		svcfs_unregister(s[k]);
}

static void assert_connect_err(svcfs_dir *d, const char *name, int timeout_ms, unsigned flags,
                               int want)
{
	int r = svcfs_connect(d, name, timeout_ms, flags);

	if (r >= 0)
		close(r);
	cr_assert_eq(r, want, "connect '%s' in %s (timeout %d, flags %#x): %d (%s), want %d", name,
	             svcfs_dir_path(d), timeout_ms, flags, r, strerror(r < 0 ? -r : 0), want);
}

Test(connect, absent_name_and_bad_arguments)
{
	svcfs_service *s = lt_reg("here", NULL);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	pid_t pid = h_service("dead.sock");
	bool ok = lt_wait_found(m, "here") && lt_wait_found(m, "dead");

	cr_assert(ok);
	h_kill(pid);
	ok = h_wait_gone(h_m("dead"));
	cr_assert(ok);
	for (int k = 0; k < 2; k++) {
		svcfs_dir *d = k ? b : m;
		assert_connect_err(d, "absent", SHORT_MS, 0, -ENOENT);
		assert_connect_err(d, "nogroup/absent", SHORT_MS, 0, -ENOENT);
		assert_connect_err(d, "here/below", SHORT_MS, 0, -ENOENT);
		assert_connect_err(d, "absent", 0, 0, -ENOENT);
		assert_connect_err(d, ".hidden", SHORT_MS, 0, -EINVAL);
		assert_connect_err(d, "", SHORT_MS, 0, -EINVAL);
		assert_connect_err(d, "here", SHORT_MS, 0x80, -EINVAL);
	}
	/* the dead one: gone on the mount, refused in the backing directory */
	assert_connect_err(m, "dead", SHORT_MS, 0, -ENOENT);
	assert_connect_err(b, "dead", SHORT_MS, 0, -ECONNREFUSED);
	assert_connect_err(NULL, "here", SHORT_MS, 0, -EINVAL);
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
}

/* Connect with SVCFS_CONNECT_WAIT to a service a child registers once we wait. */
static void connect_waits_in(const char *dirpath, const char *name)
{
	struct later l;
	svcfs_dir *d = lt_open_dir(dirpath);
	pid_t child = spawn_later(&l, H.backing, name, true);
	char buf[16];
	ssize_t n;
	int fd;

	fd = svcfs_connect(d, name, 3 * H_TIMEOUT_MS, SVCFS_CONNECT_WAIT);
	cr_assert_geq(fd, 0, "connect with WAIT to %s in %s: %s", name, dirpath, strerror(-fd));
	n = recv_bounded(fd, buf, sizeof(buf));
	cr_assert_eq(n, 3, "greeting of %zd bytes", n);
	cr_assert_str_eq(buf, "hi\n");
	close(fd);
	assert_child_ok(child, name);
	svcfs_close(d);
}

Test(connect, wait_for_a_later_service)
{
	connect_waits_in(H.mnt, "late-m");
	connect_waits_in(H.backing, "late-b");
	connect_waits_in(H.mnt, "newgroup/late-m");
	connect_waits_in(H.backing, "othergroup/late-b");
}

Test(connect, wait_times_out_when_nothing_comes)
{
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);

	assert_connect_err(m, "never", SHORT_MS, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	assert_connect_err(b, "never", SHORT_MS, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	assert_connect_err(m, "nogroup/never", SHORT_MS, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	assert_connect_err(b, "nogroup/never", SHORT_MS, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	assert_connect_err(m, "never", 0, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	assert_connect_err(b, "never", 0, SVCFS_CONNECT_WAIT, -ETIMEDOUT);
	svcfs_close(m);
	svcfs_close(b);
}

/* Accept (and close) every connection queued on listening socket SFD. */
static void accept_all(int sfd)
{
	for (int k = 0; k < 64; k++) {
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		int c = poll(&p, 1, 0) == 1 ? accept4(sfd, NULL, NULL, SOCK_CLOEXEC) : -1;
		if (c < 0)
			break;
		close(c);
	}
}

struct full_ctx {
	char dir[PATH_MAX];
	int timeout_ms;
	unsigned flags;
};

/* Child: svcfs_connect to "full" must give -ETIMEDOUT. */
static void connect_full(void *arg)
{
	struct full_ctx *c = arg;
	svcfs_dir *d = NULL;
	int r;

	if (svcfs_open(c->dir, &d) < 0)
		_exit(CHILD_OPEN);
	r = svcfs_connect(d, "full", c->timeout_ms, c->flags);
	_exit(r == -ETIMEDOUT ? CHILD_OK : CHILD_WRONG);
}

static void assert_full_times_out(const char *dir, int timeout_ms, unsigned flags)
{
	struct full_ctx c = {.timeout_ms = timeout_ms, .flags = flags};
	pid_t pid;
	int st;

	snprintf(c.dir, sizeof(c.dir), "%s", dir);
	pid = h_spawn(connect_full, &c);
	st = h_join(pid, JOIN_MS);
	cr_assert(st != -1, "connect to a full queue in %s (timeout %d) did not return", dir,
	          timeout_ms);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == CHILD_OK,
	          "connect to a full queue in %s (timeout %d, flags %#x): child status %#x", dir,
	          timeout_ms, flags, st);
}

Test(connect, full_accept_queue_times_out)
{
	svcfs_service *s = lt_reg_opts(H.backing, "full", NULL, SOCK_STREAM, 1);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	int fill[64], nfill = 0, fd, last_err = 0;
	bool ok = lt_wait_found(m, "full");

	cr_assert(ok, "full did not appear");
	/* fill the queue (svcfs's owner probe may hold a place in it already) */
	while (nfill < 64) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		int r;

		cr_assert_geq(c, 0);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", svcfs_service_path(s));
		r = connect(c, (struct sockaddr *)&a, sizeof(a));
		last_err = r < 0 ? errno : 0;
		if (r < 0) {
			close(c);
			break;
		}
		fill[nfill++] = c;
	}
	cr_assert_eq(last_err, EAGAIN, "filling the queue: %s after %d", strerror(last_err), nfill);

	assert_full_times_out(H.backing, 300, 0);
	assert_full_times_out(H.mnt, 300, 0);
	assert_full_times_out(H.backing, 0, 0);
	assert_full_times_out(H.mnt, 0, SVCFS_CONNECT_NONBLOCK);
	assert_full_times_out(H.mnt, 300, SVCFS_CONNECT_WAIT);
	ok = wait_state(m, "full", "busy");
	cr_assert(ok, "a service with a full accept queue is not busy on the mount");

	/* control: once the queue drains, the same connect succeeds */
	for (int k = 0; k < nfill; k++)
		close(fill[k]);
	accept_all(svcfs_service_fd(s));
	fd = svcfs_connect(m, "full", H_TIMEOUT_MS, 0);
	cr_assert_geq(fd, 0, "connect after the queue drained: %s", strerror(-fd));
	close(fd);
	accept_all(svcfs_service_fd(s));
	ok = wait_state(m, "full", "alive");
	cr_assert(ok, "busy stays after the queue drained");
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
}

Test(connect, nonblock_flag)
{
	svcfs_service *s = lt_reg("nb", NULL);
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	bool ok = lt_wait_found(m, "nb");

	cr_assert(ok);
	for (int k = 0; k < 2; k++) {
		svcfs_dir *d = k ? b : m;
		int fd = svcfs_connect(d, "nb", H_TIMEOUT_MS, SVCFS_CONNECT_NONBLOCK);
		int fl;

		cr_assert_geq(fd, 0, "connect NONBLOCK: %s", strerror(-fd));
		fl = fcntl(fd, F_GETFL);
		cr_assert(fl >= 0 && (fl & O_NONBLOCK), "O_NONBLOCK not set");
		close(fd);
		fd = svcfs_connect(d, "nb", H_TIMEOUT_MS, 0);
		cr_assert_geq(fd, 0);
		fl = fcntl(fd, F_GETFL);
		cr_assert(fl >= 0 && !(fl & O_NONBLOCK), "O_NONBLOCK set without the flag");
		fl = fcntl(fd, F_GETFD);
		cr_assert(fl >= 0 && (fl & FD_CLOEXEC), "the socket is not close-on-exec");
		close(fd);
	}
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
}

Test(connect, backing_path_longer_than_sun_path)
{
	char longname[251], group[160], longdir[151], deepdir[PATH_MAX];
	svcfs_service *s1, *s2, *s3;
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing), *dd;
	bool ok;
	int r;

	/* a 250-byte name: NAME.sock is the longest file name there is */
	memset(longname, 'n', 250);
	memcpy(longname, "long-", 5);
	longname[250] = '\0';
	/* a short name in a group whose path is long */
	memset(group, 'g', 120);
	snprintf(group + 120, sizeof(group) - 120, "/short");
	s1 = lt_reg(longname, NULL);
	s2 = lt_reg(group, NULL);
	cr_assert_gt(strlen(svcfs_service_path(s1)), 108);
	cr_assert_gt(strlen(svcfs_service_path(s2)), 108);
	/* a directory whose own path is long, opened directly */
	memset(longdir, 'd', 150);
	longdir[150] = '\0';
	snprintf(deepdir, sizeof(deepdir), "%s", h_r("%s", longdir));
	r = mkdir(deepdir, 0755);
	cr_assert_eq(r, 0);
	s3 = lt_reg_opts(deepdir, "svc", NULL, 0, 0);
	dd = lt_open_dir(deepdir);

	assert_exchange(b, longname, s1, SOCK_STREAM);
	assert_exchange(b, group, s2, SOCK_STREAM);
	assert_exchange(dd, "svc", s3, SOCK_STREAM);
	ok = lt_wait_found(m, longname) && lt_wait_found(m, group);
	cr_assert(ok, "the long names did not appear on the mount");
	assert_exchange(m, longname, s1, SOCK_STREAM);
	assert_exchange(m, group, s2, SOCK_STREAM);
	svcfs_close(dd);
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s1);
	svcfs_unregister(s2);
	svcfs_unregister(s3);
}

/* ---- svcfs_wait ---- */

Test(wait, present_returns_at_once)
{
	svcfs_service *s = lt_reg("here", "{\"v\":2}");
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	bool ok = lt_wait_found(m, "here");

	cr_assert(ok);
	for (int k = 0; k < 2; k++) {
		svcfs_dir *d = k ? b : m;
		svcfs_info *i = NULL;
		int r = svcfs_wait(d, "here", 0, &i);

		cr_assert_eq(r, 0, "wait (0 ms) for a present name: %s", strerror(-r));
		cr_assert_str_eq(svcfs_info_name(i), "here");
		cr_assert_str_eq(svcfs_info_socket(i), h_b("here.sock"));
		cr_assert_str_eq(svcfs_info_state(i), k ? "unknown" : "alive");
		svcfs_info_free(i);
		/* no limit: returns all the same, without waiting for anything */
		r = svcfs_wait(d, "here", -1, NULL);
		cr_assert_eq(r, 0);
	}
	svcfs_close(m);
	svcfs_close(b);
	svcfs_unregister(s);
}

/* svcfs_wait in DIRPATH for NAME, which a child registers once we wait. */
static void wait_for_later(const char *dirpath, const char *name)
{
	struct later l;
	svcfs_dir *d = lt_open_dir(dirpath);
	pid_t child = spawn_later(&l, H.backing, name, false);
	svcfs_info *i = NULL;
	int r, st;

	r = svcfs_wait(d, name, 3 * H_TIMEOUT_MS, &i);
	st = h_join(child, 0); /* still serving: killed; exited early: its status */
	cr_assert_eq(r, 0, "wait for %s in %s: %s (child status %#x)", name, dirpath, strerror(-r),
	             st);
	cr_assert_str_eq(svcfs_info_name(i), name);
	cr_assert_str_eq(svcfs_info_socket(i), h_b("%s.sock", name));
	cr_assert_str_eq(svcfs_info_state(i), svcfs_dir_is_mount(d) ? "alive" : "unknown");
	svcfs_info_free(i);
	svcfs_close(d);
}

Test(wait, for_a_later_service)
{
	wait_for_later(H.mnt, "later-m");
	wait_for_later(H.backing, "later-b");
}

Test(wait, in_a_group_created_later)
{
	struct stat st;
	int r = stat(h_b("newg"), &st);

	cr_assert(r < 0 && errno == ENOENT);
	wait_for_later(H.mnt, "newg/svc");
	wait_for_later(H.backing, "newg2/deeper/svc");
	wait_for_later(H.mnt, "newg3/a/b/svc");
	wait_for_later(H.backing, "newg4/svc");
}

Test(wait, times_out)
{
	svcfs_dir *m = lt_open_dir(H.mnt), *b = lt_open_dir(H.backing);
	pid_t pid = h_service("dead.sock");
	bool ok = lt_wait_found(m, "dead");

	cr_assert(ok);
	h_kill(pid);
	ok = h_wait_gone(h_m("dead"));
	cr_assert(ok);
	for (int k = 0; k < 2; k++) {
		static const int bounds[] = {0, 1, 50, SHORT_MS};
		svcfs_dir *d = k ? b : m;

		for (size_t j = 0; j < sizeof(bounds) / sizeof(bounds[0]); j++) {
			svcfs_info *sentinel = (svcfs_info *)&sentinel, *i = sentinel;
			int r = svcfs_wait(d, "never", bounds[j], &i);

			cr_assert_eq(r, -ETIMEDOUT, "wait %d ms in %s: %s", bounds[j],
			             svcfs_dir_path(d), strerror(-r));
			cr_assert_eq(i, sentinel, "ret_info written on a timeout");
			r = svcfs_wait(d, "nogroup/sub/never", bounds[j], NULL);
			cr_assert_eq(r, -ETIMEDOUT);
		}
	}
	/* dead: never alive on the mount again; its file stays in the backing directory */
	{
		int rm = svcfs_wait(m, "dead", SHORT_MS, NULL);
		int rb = svcfs_wait(b, "dead", SHORT_MS, NULL);
		int rbad = svcfs_wait(m, "../x", SHORT_MS, NULL);

		cr_assert_eq(rm, -ETIMEDOUT, "wait for a dead service on the mount: %s",
		             strerror(-rm));
		cr_assert_eq(rb, 0);
		cr_assert_eq(rbad, -EINVAL);
	}
	svcfs_close(m);
	svcfs_close(b);
}
