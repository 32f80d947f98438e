/*
 * daemon — the command line and the mount itself (SPEC §1): bad paths and
 * options give one clear line and a non-zero exit with nothing mounted;
 * SIGTERM/SIGINT unmount and exit 0; mount(8) shows BACKING (its real
 * path) as the source of a fuse.svcfs mount; the root's user.svcfs.status
 * tells the daemon's state; READY=1 and STOPPING=1 reach $NOTIFY_SOCKET.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(daemon, .init = h_setup, .fini = h_teardown, .timeout = 60);

#define RUN_MS 10000

/* Non-empty lines of S. */
static int count_lines(const char *s)
{
	int n = 0;
	bool empty = true;

	for (; s && *s; s++) {
		if (*s == '\n') {
			n += !empty;
			empty = true;
		} else {
			empty = false;
		}
	}
	return n + !empty;
}

/* Run svcfs with ARGV; expect exit status WANT (-1: any non-zero) and nothing mounted. */
static char *run_failing(const char *const argv[], int want)
{
	char *err = NULL;
	int st = h_run_daemon(argv, RUN_MS, &err);

	cr_assert_neq(st, -1, "svcfs did not exit (stderr: %s)", err ? err : "");
	cr_assert(WIFEXITED(st), "svcfs died of signal %d", WTERMSIG(st));
	if (want < 0)
		cr_assert_neq(WEXITSTATUS(st), 0, "svcfs exited 0 (stderr: %s)", err ? err : "");
	else
		cr_assert_eq(WEXITSTATUS(st), want, "exit status %d, expected %d (stderr: %s)",
		             WEXITSTATUS(st), want, err ? err : "");
	cr_assert(!h_mounted(H.mnt, NULL, 0), "something was mounted on %s", H.mnt);
	cr_assert_not_null(err);
	return err;
}

static void assert_one_line_naming(const char *err, const char *path, const char *reason)
{
	cr_assert_eq(count_lines(err), 1, "expected one stderr line, got:\n%s", err);
	cr_assert_not_null(strstr(err, path), "stderr does not name %s:\n%s", path, err);
	cr_assert_not_null(strstr(err, reason), "stderr does not say '%s':\n%s", reason, err);
}

Test(daemon, missing_backing)
{
	const char *missing = h_r("no-such-dir");
	const char *argv[] = {"svcfs", "-f", missing, H.mnt, NULL};
	char *err = run_failing(argv, -1);

	assert_one_line_naming(err, missing, "No such file or directory");
	free(err);
}

Test(daemon, backing_is_a_file)
{
	const char *file = h_r("plain-file");
	const char *argv[] = {"svcfs", "-f", file, H.mnt, NULL};
	char *err;

	h_write_atomic(file, "x\n");
	err = run_failing(argv, -1);
	assert_one_line_naming(err, file, "Not a directory");
	free(err);
}

Test(daemon, missing_mountpoint)
{
	const char *missing = h_r("no-such-mnt");
	const char *argv[] = {"svcfs", "-f", H.backing, missing, NULL};
	char *err = run_failing(argv, -1);

	assert_one_line_naming(err, missing, "No such file or directory");
	free(err);
}

Test(daemon, mountpoint_is_a_file)
{
	const char *file = h_r("plain-file");
	const char *argv[] = {"svcfs", "-f", H.backing, file, NULL};
	char *err;

	h_write_atomic(file, "x\n");
	err = run_failing(argv, -1);
	cr_assert(!h_mounted(file, NULL, 0));
	assert_one_line_naming(err, file, "Not a directory");
	free(err);
}

Test(daemon, mountpoint_inside_backing_refused)
{
	const char *inner = h_b("view");
	const char *argv[] = {"svcfs", "-f", H.backing, inner, NULL};
	char *err;
	int r = mkdir(inner, 0755);

	cr_assert_eq(r, 0);
	err = run_failing(argv, -1);
	cr_assert(!h_mounted(inner, NULL, 0), "mounted inside BACKING");
	cr_assert_eq(count_lines(err), 1, "expected one stderr line, got:\n%s", err);
	free(err);
}

Test(daemon, unknown_option)
{
	const char *argv[] = {"svcfs", "-f", "-o", "bogus", H.backing, H.mnt, NULL};
	char *err = run_failing(argv, 2);

	cr_assert_not_null(strstr(err, "bogus"), "the message does not name the option:\n%s", err);
	free(err);
}

Test(daemon, bad_option_values)
{
	static const char *const bad[][2] = {
	    {"probe_interval=abc", "probe_interval"},
	    {"probe_interval=", "probe_interval"},
	    {"probe_interval=-1", "probe_interval"},
	    {"probe_timeout=1.5x", "probe_timeout"},
	    {"grace=soon", "grace"},
	    {"max_services=0", "max_services"},
	    {"max_services=-5", "max_services"},
	    {"poll=never", "poll"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[] = {"svcfs", "-f", "-o", bad[i][0], H.backing, H.mnt, NULL};
		char *err = run_failing(argv, 2);
		cr_assert_not_null(strstr(err, bad[i][1]),
		                   "-o %s: the message does not name %s:\n%s", bad[i][0], bad[i][1],
		                   err);
		cr_assert_eq(count_lines(err), 1, "-o %s: expected one line:\n%s", bad[i][0], err);
		free(err);
	}
}

Test(daemon, missing_arguments)
{
	const char *none[] = {"svcfs", NULL};
	const char *one[] = {"svcfs", "-f", H.backing, NULL};
	char *err = run_failing(none, 2);

	cr_assert_gt(count_lines(err), 0, "no message without arguments");
	free(err);
	err = run_failing(one, 2);
	cr_assert_not_null(strstr(err, "MOUNTPOINT"), "no message without MOUNTPOINT:\n%s", err);
	free(err);
}

Test(daemon, extra_argument)
{
	const char *argv[] = {"svcfs", "-f", H.backing, H.mnt, h_r("extra"), NULL};
	char *err = run_failing(argv, 2);

	cr_assert_gt(count_lines(err), 0, "no message for an extra argument");
	free(err);
}

Test(daemon, backing_without_permission)
{
	const char *argv[] = {"svcfs", "-f", H.backing, H.mnt, NULL};
	char *err = NULL;
	int st, r = chmod(H.backing, 0700);

	cr_assert_eq(r, 0);
	/* as another user: the check happens before any mount is attempted */
	st = h_run_daemon_as(23456, 23456, argv, RUN_MS, &err);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 126,
	          "status %#x (stderr: %s)", st, err ? err : "");
	cr_assert(!h_mounted(H.mnt, NULL, 0));
	cr_assert_not_null(err);
	assert_one_line_naming(err, H.backing, "Permission denied");
	free(err);
}

Test(daemon, help_and_version_exit_zero)
{
	const char *help[] = {"svcfs", "--help", NULL};
	const char *version[] = {"svcfs", "--version", NULL};
	char *err = NULL;
	int st = h_run_daemon(help, RUN_MS, &err);

	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "--help: status %#x", st);
	free(err);
	st = h_run_daemon(version, RUN_MS, &err);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "--version: status %#x", st);
	free(err);
}

/* The pid of a process running the daemon on MNT, or 0. */
static pid_t find_daemon(const char *mnt)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	cr_assert_not_null(d);
	while (!found && (de = readdir(d))) {
		char path[64], buf[8192];
		ssize_t n;
		int fd;
		bool has_mnt = false, is_svcfs = false;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/cmdline", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *a = buf; a < buf + n; a += strlen(a) + 1) {
			const char *base = strrchr(a, '/');
			if (a == buf && strcmp(base ? base + 1 : a, "svcfs") == 0)
				is_svcfs = true;
			if (strcmp(a, mnt) == 0)
				has_mnt = true;
		}
		if (is_svcfs && has_mnt)
			found = (pid_t)atoi(de->d_name);
	}
	closedir(d);
	return found;
}

/* PID has exited (gone, or a zombie waiting for init). */
static bool exited(void *ctx)
{
	pid_t pid = *(pid_t *)ctx;
	char path[64], buf[512];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	return strstr(buf, ") Z ") != NULL || strstr(buf, ") X ") != NULL;
}

Test(daemon, background_mode_and_umount)
{
	const char *argv[] = {"svcfs", H.backing, H.mnt, NULL};
	char *err = NULL;
	pid_t bg;
	int st, r;

	h_service("web.sock");
	st = h_run_daemon(argv, RUN_MS, &err);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	          "without -f: status %#x (stderr: %s)", st, err ? err : "");
	free(err);
	cr_assert(h_mounted(H.mnt, NULL, 0), "not mounted when svcfs returned");
	bg = find_daemon(H.mnt);
	cr_assert_gt(bg, 0, "no svcfs process serves %s", H.mnt);
	h_track(bg);
	cr_assert(h_wait_exists(h_m("web/state")));
	/* umount stops it */
	r = umount(H.mnt);
	cr_assert_eq(r, 0, "umount: %s", strerror(errno));
	cr_assert(h_wait_until(exited, &bg, H_TIMEOUT_MS), "svcfs still runs after umount");
	cr_assert(!h_mounted(H.mnt, NULL, 0));
}

static void assert_stops_cleanly(int sig)
{
	int st;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	kill(H.daemon, sig);
	for (int i = 0; i < 5000 && H.daemon; i++) {
		pid_t r = waitpid(H.daemon, &st, WNOHANG);
		if (r == H.daemon) {
			H.daemon = 0; /* reaped here: teardown has nothing to stop */
			break;
		}
		h_sleep_ms(H_POLL_MS);
	}
	cr_assert_eq(H.daemon, 0, "svcfs still runs after signal %d", sig);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "signal %d: exit status %#x, expected 0",
	          sig, st);
	cr_assert(!h_mounted(H.mnt, NULL, 0), "still mounted after signal %d", sig);
}

Test(daemon, sigterm_unmounts_and_exits_zero)
{
	assert_stops_cleanly(SIGTERM);
}

Test(daemon, sigint_unmounts_and_exits_zero)
{
	assert_stops_cleanly(SIGINT);
}

Test(daemon, sigterm_with_the_mount_busy)
{
	pid_t child;
	int st, r;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* a shell sitting in the mount */
		if (chdir(h_m("web")) < 0)
			_exit(1);
		pause();
		_exit(0);
	}
	h_sleep_ms(100);
	kill(H.daemon, SIGTERM);
	for (int i = 0; i < 5000 && H.daemon; i++) {
		if (waitpid(H.daemon, &st, WNOHANG) == H.daemon)
			H.daemon = 0;
		else
			h_sleep_ms(H_POLL_MS);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	cr_assert_eq(H.daemon, 0, "svcfs still runs after SIGTERM with a busy mount");
	r = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	cr_assert_eq(r, 0, "exit status %#x", st);
	cr_assert(!h_mounted(H.mnt, NULL, 0), "a busy mount stayed after SIGTERM");
}

Test(daemon, mountinfo_shows_backing_and_type)
{
	char source[PATH_MAX];
	bool up;

	h_mount();
	up = h_mounted(H.mnt, source, sizeof(source));
	cr_assert(up, "no fuse.svcfs mount on %s", H.mnt);
	cr_assert_str_eq(source, H.backing, "mount source is not BACKING");
	h_assert_daemon_alive();
}

Test(daemon, source_is_the_real_path_of_backing)
{
	char source[PATH_MAX], link[PATH_MAX];
	char arg[PATH_MAX + 8];
	ssize_t n;
	bool up;
	int r;

	/* BACKING named through a symlink, with a trailing "/." */
	r = symlink(H.backing, h_r("alias"));
	cr_assert_eq(r, 0);
	snprintf(arg, sizeof(arg), "%s/.", h_r("alias"));
	h_mount_opts(NULL, arg);
	up = h_mounted(H.mnt, source, sizeof(source));
	cr_assert(up);
	cr_assert_str_eq(source, H.backing);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/socket")));
	n = readlink(h_m("web/socket"), link, sizeof(link) - 1);
	cr_assert_gt(n, 0);
	link[n] = '\0';
	cr_assert_str_eq(link, h_b("web.sock"), "the socket link does not use the real path");
	h_assert_daemon_alive();
}

Test(daemon, backing_with_comma_and_space)
{
	char source[PATH_MAX];
	const char *odd = h_r("my back,dir");
	bool up;
	int r = mkdir(odd, 0755);

	cr_assert_eq(r, 0);
	h_mount_opts(NULL, odd);
	up = h_mounted(H.mnt, source, sizeof(source));
	cr_assert(up, "not mounted");
	cr_assert_str_eq(source, odd, "the source of a BACKING with ',' and ' ' is mangled");
	h_service(h_r("my back,dir/web.sock"));
	cr_assert(h_wait_exists(h_m("web/state")));
	h_assert_daemon_alive();
}

Test(daemon, relative_paths)
{
	char source[PATH_MAX];
	bool up;
	int r = chdir(H.root);

	cr_assert_eq(r, 0);
	h_mount_opts(NULL, "b");
	up = h_mounted(H.mnt, source, sizeof(source));
	cr_assert(up);
	cr_assert_str_eq(source, H.backing, "a relative BACKING is not shown as its real path");
	h_assert_daemon_alive();
}

/* ---- the daemon's own state, and readiness for a service manager ---- */

/* The root's user.svcfs.status, parsed; NULL if unreadable. */
static json_object *status_of(const char *mnt)
{
	char buf[65536];
	ssize_t n = getxattr(mnt, "user.svcfs.status", buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return json_tokener_parse(buf);
}

static int64_t status_int(json_object *st, const char *group, const char *key)
{
	json_object *g = st, *v = NULL;

	if (group && !json_object_object_get_ex(st, group, &g))
		return -1;
	return json_object_object_get_ex(g, key, &v) ? json_object_get_int64(v) : -1;
}

Test(daemon, status_xattr_on_the_root)
{
	json_object *st, *v;
	char list[256];
	ssize_t n;
	pid_t svc;

	h_mount();
	st = status_of(H.mnt);
	cr_assert_not_null(st, "no user.svcfs.status on the root: %s", strerror(errno));
	cr_assert_eq(status_int(st, NULL, "pid"), H.daemon);
	cr_assert_eq(status_int(st, NULL, "services"), 0);
	cr_assert(json_object_object_get_ex(st, "backing", &v));
	cr_assert_str_eq(json_object_get_string(v), H.backing);
	cr_assert(json_object_object_get_ex(st, "mountpoint", &v));
	cr_assert_str_eq(json_object_get_string(v), H.mnt);
	cr_assert(json_object_object_get_ex(st, "liveness", &v));
	cr_assert_str_eq(json_object_get_string(v), "sock_diag");
	cr_assert_eq(status_int(st, "counters", "appeared"), 0);
	json_object_put(st);

	/* made at each request: it follows what happens */
	svc = h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web")));
	h_kill(svc);
	cr_assert(h_wait_gone(h_m("web")));
	st = status_of(H.mnt);
	cr_assert_not_null(st);
	cr_assert_eq(status_int(st, "counters", "appeared"), 1);
	cr_assert_eq(status_int(st, "counters", "vanished"), 1);
	cr_assert_eq(status_int(st, "counters", "owner_exits"), 1, "the SIGKILL was seen by pidfd");
	cr_assert_geq(status_int(st, "counters", "events"), 2,
	              "a mkdir and an rmdir poke at least");
	cr_assert_eq(status_int(st, NULL, "services"), 0);
	json_object_put(st);

	/* listed on the root only (getfattr -d shows it), absent from a service */
	n = listxattr(H.mnt, list, sizeof(list));
	cr_assert(n == (ssize_t)sizeof("user.svcfs.status") &&
	              memcmp(list, "user.svcfs.status", (size_t)n) == 0,
	          "root's xattr list: %zd bytes", n);
	svc = h_service("db.sock");
	cr_assert(h_wait_exists(h_m("db")));
	n = getxattr(h_m("db"), "user.svcfs.status", list, sizeof(list));
	cr_assert_eq(n, -1);
	cr_assert_eq(errno, ENODATA);
}

/* A datagram socket standing in for systemd's notify socket. */
static int notify_listener(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r;

	cr_assert_geq(fd, 0);
	cr_assert_lt(strlen(path), sizeof(sa.sun_path), "%s: too long for a socket", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	cr_assert_eq(r, 0, "bind %s: %s", path, strerror(errno));
	return fd;
}

/* The next datagram within the bound, as a string ("" if none came). */
static const char *notify_next(int fd, char *buf, size_t size)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n = 0;

	if (poll(&p, 1, H_TIMEOUT_MS) == 1)
		n = recv(fd, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

Test(daemon, notify_socket_ready_then_stopping)
{
	char path[PATH_MAX], buf[64];
	const char *msg;
	struct pollfd p;
	int fd, st;

	snprintf(path, sizeof(path), "%s", h_r("notify"));
	fd = notify_listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	h_mount(); /* returns once the mount is live */
	unsetenv("NOTIFY_SOCKET");
	msg = notify_next(fd, buf, sizeof(buf));
	cr_assert_str_eq(msg, "READY=1");
	/* control: nothing more while it runs */
	p = (struct pollfd){.fd = fd, .events = POLLIN};
	cr_assert_eq(poll(&p, 1, 200), 0, "a second message while running");
	st = h_daemon_stop();
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	msg = notify_next(fd, buf, sizeof(buf));
	cr_assert_str_eq(msg, "STOPPING=1");
	close(fd);
}

/*
 * A daemon SIGKILLed leaves its mount dead (ENOTCONN). Mounting svcfs there
 * again detaches the dead one first (one line says so) and works — as
 * `umount -l` then mount would — so restarts need no manual step.
 */
Test(daemon, dead_mount_is_replaced)
{
	struct statfs sfs;
	struct pollfd p;
	char *err;
	pid_t dead;
	int r, e;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web")));
	dead = H.daemon;
	kill(dead, SIGKILL);
	p = (struct pollfd){.fd = H.daemon_fd, .events = POLLIN};
	r = poll(&p, 1, H_TIMEOUT_MS); /* bounded: readable once it is dead */
	cr_assert_eq(r, 1, "svcfs did not die of SIGKILL within %d ms", H_TIMEOUT_MS);
	r = waitpid(dead, NULL, WNOHANG);
	cr_assert_eq(r, dead);
	H.daemon = 0;            /* reaped here */
	r = statfs(H.mnt, &sfs); /* (stat may be answered from the kernel's cache) */
	e = errno;
	cr_assert(r < 0 && e == ENOTCONN, "a dead mount: statfs gave %d (%s)", r, strerror(e));
	cr_assert(h_mounted(H.mnt, NULL, 0), "the dead mount is not listed any more");

	h_mount(); /* returns at once: the dead mount is listed until replaced */
	cr_assert(h_wait_exists(h_m("web/state")), "the new mount does not show the live service");
	r = statfs(H.mnt, &sfs);
	cr_assert_eq(r, 0, "statfs of the new mount: %s", strerror(errno));
	err = h_daemon_stderr();
	cr_assert(err && strstr(err, "the svcfs mounted there is gone"),
	          "no line about the dead mount: %s", err ? err : "");
	free(err);
}

#define CHURN_SOCKETS 16
#define KILL_ROUNDS   30
#define DIE_MS        2000

/*
 * Forever: services bound in BACKING and removed again in turn, a step
 * every millisecond, so that the daemon pokes its mount at any moment.
 */
static void churn(void *arg)
{
	int fds[CHURN_SOCKETS];

	(void)arg;
	for (int i = 0; i < CHURN_SOCKETS; i++)
		fds[i] = -1;
	for (unsigned n = 0;; n++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		unsigned i = n % CHURN_SOCKETS;

		if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/c%02u.sock", H.backing, i) >=
		    (int)sizeof(sa.sun_path))
			_exit(1); /* /tmp/svcfs-it.XXXXXX/b: never */
		if (fds[i] >= 0) {
			unlink(sa.sun_path);
			close(fds[i]);
			fds[i] = -1;
		} else {
			fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fds[i] >= 0 && (bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			                    listen(fds[i], 8) < 0)) {
				close(fds[i]);
				fds[i] = -1;
			}
		}
		h_sleep_ms(1);
	}
}

/*
 * SIGKILL always ends the daemon, even with a poke in flight. A poke is a
 * system call on the mount itself, and one that a FUSE worker has read is
 * waited for through any signal: made from the engine thread, it kept a
 * killed daemon in the kernel for good (its connection never aborted, the
 * mount dead). Services come and go without pause while the daemon is
 * killed, round after round, each at another moment; the teardown then
 * finds no process left (the poker dies with the daemon).
 */
Test(daemon, sigkill_with_pokes_in_flight)
{
	h_spawn(churn, NULL);
	for (int round = 0; round < KILL_ROUNDS; round++) {
		struct pollfd p;
		pid_t dead;
		int r;

		h_mount();
		h_sleep_ms(5 + (round % 10) * 4); /* pokes under way by now */
		dead = H.daemon;
		kill(dead, SIGKILL);
		p = (struct pollfd){.fd = H.daemon_fd, .events = POLLIN};
		r = poll(&p, 1, DIE_MS);
		cr_assert_eq(r, 1, "round %d: svcfs did not die of SIGKILL within %d ms", round,
		             DIE_MS);
		r = waitpid(dead, NULL, 0);
		cr_assert_eq(r, dead);
		close(H.daemon_fd);
		H.daemon_fd = -1;
		H.daemon = 0; /* reaped here */
		r = umount2(H.mnt, MNT_DETACH);
		cr_assert_eq(r, 0, "round %d: umount2 of the dead mount: %s", round,
		             strerror(errno));
	}
}

/* Directories kept only for the kernel's references, from user.svcfs.status. */
static int64_t kept_dirs(void)
{
	json_object *st = status_of(H.mnt);
	int64_t n = st ? status_int(st, "kept", "dirs") : -1;

	json_object_put(st);
	return n;
}

static bool nothing_kept(void *ctx)
{
	(void)ctx;
	return kept_dirs() == 0;
}

/*
 * A vanished service's node stays while the kernel refers to it (a file
 * held open inside it) and is freed at its last forget: the status counts
 * it, and counts it no more once the file is closed. Every reference that
 * lookups, readdirplus (ls -l) and the mkdir poke gave is forgotten; a
 * count that did not balance would keep the node for good.
 */
Test(daemon, vanished_node_freed_at_last_forget)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	pid_t svc;
	int fd;

	h_mount();
	svc = h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web")));
	/* references of every kind: lookups, a readdirplus of both levels */
	d = opendir(h_m("web"));
	cr_assert_not_null(d, "opendir: %s", strerror(errno));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			cr_assert_eq(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
	closedir(d);
	d = opendir(H.mnt);
	cr_assert_not_null(d, "opendir: %s", strerror(errno));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			cr_assert_eq(fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
	closedir(d);
	fd = open(h_m("web/state"), O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open web/state: %s", strerror(errno));
	cr_assert_eq(kept_dirs(), 0, "a live service is not kept, it is in the tree");

	h_kill(svc);
	cr_assert(h_wait_gone(h_m("web")));
	cr_assert_eq(kept_dirs(), 1, "the open file keeps its directory's node");
	close(fd);
	cr_assert(h_wait_until(nothing_kept, NULL, H_TIMEOUT_MS),
	          "node still kept %d ms after its last file closed (%lld)", H_TIMEOUT_MS,
	          (long long)kept_dirs());
}
