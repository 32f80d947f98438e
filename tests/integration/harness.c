/*
 * harness — see harness.h. Everything here runs in the test process or in
 * children it forks; children never return into Criterion (they _exit).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

#ifndef SVCFS_BIN
#error "SVCFS_BIN (path of the svcfs daemon) must be defined"
#endif

#define DAEMON_START_MS 10000
#define DAEMON_STOP_MS	10000
#define RING		32

struct harness H;
static bool atexit_done;

/* The daemon under test: $SVCFS_BIN if set (to test another build), else the one built here. */
static const char *svcfs_bin(void)
{
	const char *env = getenv("SVCFS_BIN");

	return env && env[0] ? env : SVCFS_BIN;
}

static int wait_bounded(pid_t pid, int ms);

/* ---- small utilities ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* snprintf that fails the test instead of truncating. */
static void fmt_path(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fmt_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < size, "harness: path too long");
}

static char *ring_next(void)
{
	static char ring[RING][PATH_MAX];
	static unsigned next;

	return ring[next++ % RING];
}

static const char *vjoin(const char *base, const char *fmt, va_list ap)
{
	char *out = ring_next();
	char rel[PATH_MAX];

	vsnprintf(rel, sizeof(rel), fmt, ap);
	if (rel[0])
		fmt_path(out, PATH_MAX, "%s/%s", base, rel);
	else
		fmt_path(out, PATH_MAX, "%s", base);
	return out;
}

const char *h_b(const char *fmt, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, fmt);
	s = vjoin(H.backing, fmt, ap);
	va_end(ap);
	return s;
}

const char *h_m(const char *fmt, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, fmt);
	s = vjoin(H.mnt, fmt, ap);
	va_end(ap);
	return s;
}

const char *h_r(const char *fmt, ...)
{
	va_list ap;
	const char *s;

	va_start(ap, fmt);
	s = vjoin(H.root, fmt, ap);
	va_end(ap);
	return s;
}

/* PATH as an absolute path: relative ones are below BACKING. */
static void abs_path(const char *path, char *out)
{
	if (path[0] == '/')
		fmt_path(out, PATH_MAX, "%s", path);
	else
		fmt_path(out, PATH_MAX, "%s/%s", H.backing, path);
}

static void add_child(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_CHILDREN; i++) {
		if (H.children[i] == 0) {
			H.children[i] = pid;
			return;
		}
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	cr_assert_fail("harness: more than %d children", H_MAX_CHILDREN);
}

/* In a forked child: die with the parent, keep only fds 0-2 and KEEP (moved to 3). */
static int child_prepare(int keep, int deathsig)
{
	prctl(PR_SET_PDEATHSIG, deathsig);
	signal(SIGPIPE, SIG_IGN);
	if (keep >= 0) {
		if (keep != 3) {
			if (dup2(keep, 3) < 0)
				return -1;
		}
		fcntl(3, F_SETFD, FD_CLOEXEC);
		close_range(4, ~0u, 0);
		return 3;
	}
	close_range(3, ~0u, 0);
	return -1;
}

/* ---- mountinfo ---- */

/* Undo the octal escapes of /proc/self/mountinfo (\040 for a space...). */
static void unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

bool h_mounted(const char *mnt, char *ret_source, size_t size)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *fields[64], *save = NULL, *tok;
		int n = 0, dash = -1;

		for (tok = strtok_r(line, " \n", &save); tok && n < 64;
		     tok = strtok_r(NULL, " \n", &save)) {
			if (strcmp(tok, "-") == 0 && dash < 0)
				dash = n;
			fields[n++] = tok;
		}
		if (n < 5 || dash < 0 || dash + 2 >= n)
			continue;
		unescape(fields[4]);
		if (strcmp(fields[4], mnt) != 0 || strcmp(fields[dash + 1], "fuse.svcfs") != 0)
			continue;
		found = true;
		if (ret_source) {
			unescape(fields[dash + 2]);
			snprintf(ret_source, size, "%s", fields[dash + 2]);
		}
	}
	free(line);
	fclose(f);
	return found;
}

/* ---- fixture ---- */

void h_require_fuse(void)
{
	int fd;

	if (geteuid() != 0)
		cr_skip_test("integration tests need root (FUSE mounts, chown, setuid)");
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		cr_skip_test("cannot open /dev/fuse: %s", strerror(errno));
	close(fd);
}

static void atexit_teardown(void)
{
	h_teardown();
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw);

/*
 * Remove what a test process killed outright (a crash, a Criterion
 * timeout) left in /tmp: its daemon unmounted on its own (PR_SET_PDEATHSIG),
 * but nobody removed its directory. Only directories whose owner.pid names
 * a dead process are touched, so parallel runs are safe.
 */
static void sweep_stale(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX], mnt[PATH_MAX + 4], *owner;
		long pid;

		if (strncmp(de->d_name, "svcfs-it.", 9) != 0)
			continue;
		if (snprintf(path, sizeof(path), "/tmp/%s/owner.pid", de->d_name) >=
		    (int)sizeof(path))
			continue;
		owner = h_slurp(path);
		pid = owner ? strtol(owner, NULL, 10) : 0;
		free(owner);
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s", de->d_name);
		snprintf(mnt, sizeof(mnt), "%s/m", path);
		if (h_mounted(mnt, NULL, 0))
			umount2(mnt, MNT_DETACH);
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	}
	closedir(d);
}

/* ROOT/owner.pid: whose directory this is, for sweep_stale. Never fails the test. */
static void write_owner(void)
{
	char path[PATH_MAX], pid[32];
	int fd, n;

	if (snprintf(path, sizeof(path), "%s/owner.pid", H.root) >= (int)sizeof(path))
		return;
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, pid, (size_t)n);
		(void)w;
		close(fd);
	}
}

void h_setup(void)
{
	char tmpl[] = "/tmp/svcfs-it.XXXXXX";
	char real[PATH_MAX];
	const char *made, *resolved;
	int r;

	h_require_fuse();
	memset(&H, 0, sizeof(H));
	signal(SIGPIPE, SIG_IGN);
	if (!atexit_done) {
		atexit(atexit_teardown);
		atexit_done = true;
	}
	made = mkdtemp(tmpl);
	cr_assert_not_null(made, "mkdtemp: %s", strerror(errno));
	resolved = realpath(tmpl, real);
	cr_assert_not_null(resolved, "realpath %s: %s", tmpl, strerror(errno));
	snprintf(H.root, sizeof(H.root), "%s", real);
	H.ready = true; /* from here on, teardown removes the root */
	write_owner();
	sweep_stale();
	/* others must reach the mount for the permission tests */
	r = chmod(H.root, 0755);
	cr_assert_eq(r, 0, "chmod %s: %s", H.root, strerror(errno));
	fmt_path(H.backing, sizeof(H.backing), "%s/b", H.root);
	fmt_path(H.mnt, sizeof(H.mnt), "%s/m", H.root);
	fmt_path(H.errlog, sizeof(H.errlog), "%s/daemon.stderr", H.root);
	r = mkdir(H.backing, 0755);
	cr_assert_eq(r, 0, "mkdir %s: %s", H.backing, strerror(errno));
	r = mkdir(H.mnt, 0755);
	cr_assert_eq(r, 0, "mkdir %s: %s", H.mnt, strerror(errno));
}

void h_setup_mounted(void)
{
	h_setup();
	h_mount();
}

/* Reap the daemon if it exited. True if it is (still) running. */
static bool daemon_running(void)
{
	int st;
	pid_t r;

	if (!H.daemon)
		return false;
	r = waitpid(H.daemon, &st, WNOHANG);
	if (r == H.daemon) {
		H.daemon_status = st;
		H.daemon_reaped = true;
		H.daemon = 0;
		return false;
	}
	return true;
}

static void describe_status(int st, char *buf, size_t size)
{
	if (WIFEXITED(st))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, size, "killed by signal %d (%s)%s", WTERMSIG(st),
			 strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(buf, size, "wait status %#x", st);
}

void h_mount(void)
{
	h_mount_opts(NULL, NULL);
}

void h_mount_opts(const char *opts, const char *backing_arg)
{
	const char *argv[8];
	long long end;
	int n = 0, fd;
	pid_t pid;

	cr_assert(H.ready, "h_mount before h_setup");
	cr_assert_eq(H.daemon, 0, "daemon already running");
	argv[n++] = svcfs_bin();
	argv[n++] = "-f";
	if (opts) {
		argv[n++] = "-o";
		argv[n++] = opts;
	}
	argv[n++] = backing_arg ? backing_arg : H.backing;
	argv[n++] = H.mnt;
	argv[n] = NULL;

	fd = open(H.errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", H.errlog, strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		child_prepare(-1, SIGTERM);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	H.daemon = pid;
	H.daemon_reaped = false;
	end = now_ms() + DAEMON_START_MS;
	for (;;) {
		bool up = h_mounted(H.mnt, NULL, 0);
		if (up)
			break;
		if (!daemon_running()) {
			char why[128], *err = h_daemon_stderr();
			describe_status(H.daemon_status, why, sizeof(why));
			cr_log_error("daemon stderr:\n%s", err ? err : "");
			free(err);
			cr_assert_fail("svcfs exited before mounting (%s)", why);
		}
		if (now_ms() > end)
			cr_assert_fail("%s did not appear in mountinfo within %d ms", H.mnt,
				       DAEMON_START_MS);
		h_sleep_ms(H_POLL_MS);
	}
}

/* Wait for PID up to MS; returns its status or -1. */
static int wait_bounded(pid_t pid, int ms)
{
	long long end = now_ms() + ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		if (now_ms() > end)
			return -1;
		h_sleep_ms(H_POLL_MS);
	}
}

int h_daemon_stop(void)
{
	int st;

	if (!daemon_running())
		return H.daemon_reaped ? H.daemon_status : -1;
	kill(H.daemon, SIGTERM);
	st = wait_bounded(H.daemon, DAEMON_STOP_MS);
	if (st == -1) {
		fprintf(stderr, "harness: svcfs (pid %d) ignored SIGTERM for %d ms; killing it\n",
			(int)H.daemon, DAEMON_STOP_MS);
		kill(H.daemon, SIGKILL);
		waitpid(H.daemon, NULL, 0);
		H.daemon = 0;
		return -1;
	}
	H.daemon = 0;
	H.daemon_status = st;
	H.daemon_reaped = true;
	return st;
}

void h_assert_daemon_alive(void)
{
	char why[128], *err;

	if (daemon_running())
		return;
	if (!H.daemon_reaped)
		cr_assert_fail("the daemon was never started");
	describe_status(H.daemon_status, why, sizeof(why));
	err = h_daemon_stderr();
	cr_log_error("daemon stderr:\n%s", err ? err : "");
	free(err);
	cr_assert_fail("svcfs is no longer running (%s)", why);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void h_teardown(void)
{
	if (!H.ready)
		return;
	if (H.daemon) {
		int st = h_daemon_stop();
		if (st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
			char why[128];
			describe_status(st, why, sizeof(why));
			fprintf(stderr, "harness: svcfs ended with %s at teardown\n", why);
		}
	}
	if (H.daemon_reaped && WIFSIGNALED(H.daemon_status) &&
	    WTERMSIG(H.daemon_status) != SIGTERM && WTERMSIG(H.daemon_status) != SIGKILL) {
		char *err = h_daemon_stderr();
		fprintf(stderr, "harness: svcfs CRASHED (signal %d); its stderr:\n%s\n",
			WTERMSIG(H.daemon_status), err ? err : "");
		free(err);
	}
	for (int i = 0; i < 3 && h_mounted(H.mnt, NULL, 0); i++)
		umount2(H.mnt, MNT_DETACH);
	for (size_t i = 0; i < H_MAX_CHILDREN; i++) {
		if (H.children[i] > 0) {
			kill(H.children[i], SIGKILL);
			waitpid(H.children[i], NULL, 0);
			H.children[i] = 0;
		}
	}
	/* FTW_MOUNT: never descend into a mount that refused to go */
	nftw(H.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	H.ready = false;
}

int h_run_daemon(const char *const argv[], int timeout_ms, char **ret_err)
{
	return h_run_daemon_as(0, 0, argv, timeout_ms, ret_err);
}

void h_track(pid_t pid)
{
	add_child(pid);
}

int h_run_daemon_as(uid_t uid, gid_t gid, const char *const argv[], int timeout_ms, char **ret_err)
{
	char errpath[PATH_MAX], *args[32];
	int fd, st, n = 0;
	pid_t pid;

	cr_assert(H.ready, "h_run_daemon before h_setup");
	fmt_path(errpath, sizeof(errpath), "%s/run.stderr", H.root);
	args[n++] = (char *)svcfs_bin();
	for (size_t i = 1; argv[i] && n < 31; i++)
		args[n++] = (char *)argv[i];
	args[n] = NULL;
	fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", errpath, strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(fd, 2);
		child_prepare(-1, SIGTERM);
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			_exit(126);
		execv(args[0], args);
		_exit(127);
	}
	close(fd);
	st = wait_bounded(pid, timeout_ms);
	if (st == -1) {
		kill(pid, SIGTERM);
		if (wait_bounded(pid, DAEMON_STOP_MS) == -1) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	if (ret_err)
		*ret_err = h_slurp(errpath);
	return st;
}

/* ---- services ---- */

/* Bind FD to ABS, whatever its length: long paths through a short relative name. */
static int bind_any(int fd, const char *abs)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char dir[PATH_MAX], tmp[64];
	const char *base;
	char *slash;

	if (strlen(abs) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, abs);
		return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	snprintf(dir, sizeof(dir), "%s", abs);
	slash = strrchr(dir, '/');
	if (!slash)
		return -1;
	*slash = '\0';
	base = slash + 1;
	if (chdir(dir[0] ? dir : "/") < 0)
		return -1;
	if (strlen(base) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, base);
		return bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	}
	/* a hidden temp name (ignored by svcfs), then the real one */
	snprintf(tmp, sizeof(tmp), ".h-bind-%d", (int)getpid());
	strcpy(sa.sun_path, tmp);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return rename(tmp, base);
}

static void report(int fd, int err)
{
	ssize_t n = write(fd, &err, sizeof(err));
	(void)n;
	close(fd);
}

static void serve_forever(int fd, const char *greeting)
{
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		if (send(c, greeting, strlen(greeting), MSG_NOSIGNAL) < 0) {
			/* svcfs's one owner probe hangs up at once: fine */
		}
		close(c);
	}
	for (;;)
		pause();
}

static void service_child(const char *abs, const struct h_service_opts *o, int rep)
{
	int type = o->type ? o->type : SOCK_STREAM;
	bool listening = !o->no_listen && type != SOCK_DGRAM;
	sigset_t usr1;
	int fd;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind_any(fd, abs) < 0)
		goto fail;
	if (o->mode && chmod(abs, o->mode) < 0)
		goto fail;
	if (o->set_owner) {
		if (chown(abs, o->uid, o->gid) < 0 || setgroups(0, NULL) < 0 ||
		    setgid(o->gid) < 0 || setuid(o->uid) < 0)
			goto fail;
	}
	if (listening && !o->listen_on_usr1 && listen(fd, o->backlog ? o->backlog : 64) < 0)
		goto fail;
	report(rep, 0);
	if (listening && o->listen_on_usr1) {
		int sig;
		sigwait(&usr1, &sig);
		if (listen(fd, o->backlog ? o->backlog : 64) < 0)
			_exit(1);
	}
	if (listening && o->greeting)
		serve_forever(fd, o->greeting);
	for (;;)
		pause();
fail:
	report(rep, errno ? errno : EIO);
	_exit(1);
}

/* Read the child's report (0 or an errno) from FD, bounded. */
static int read_report(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int err = ETIMEDOUT;

	if (poll(&p, 1, ms) == 1) {
		ssize_t n = read(fd, &err, sizeof(err));
		if (n != (ssize_t)sizeof(err))
			err = ECHILD;
	}
	close(fd);
	return err;
}

pid_t h_service_start(const char *path, const struct h_service_opts *opts)
{
	struct h_service_opts none = {0};
	char abs[PATH_MAX];
	int p[2], err, r;
	pid_t pid;

	if (!opts)
		opts = &none;
	abs_path(path, abs);
	r = pipe2(p, O_CLOEXEC);
	cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int rep;
		close(p[0]);
		rep = child_prepare(p[1], SIGKILL);
		service_child(abs, opts, rep);
		_exit(1);
	}
	close(p[1]);
	add_child(pid);
	err = read_report(p[0], H_TIMEOUT_MS);
	cr_assert_eq(err, 0, "service %s did not start: %s", abs, strerror(err));
	return pid;
}

pid_t h_service(const char *path)
{
	struct h_service_opts o = {.greeting = "hello\n"};

	return h_service_start(path, &o);
}

pid_t h_services_many(const char *dir, const char *prefix, unsigned n)
{
	char absdir[PATH_MAX];
	int p[2], err, r;
	pid_t pid;

	abs_path(dir, absdir);
	r = pipe2(p, O_CLOEXEC);
	cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct rlimit rl = {n + 64, n + 64};
		int rep;
		close(p[0]);
		rep = child_prepare(p[1], SIGKILL);
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || chdir(absdir) < 0) {
			report(rep, errno);
			_exit(1);
		}
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s%04u.sock", prefix, i);
			if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    listen(fd, 64) < 0) {
				report(rep, errno);
				_exit(1);
			}
		}
		report(rep, 0);
		for (;;)
			pause();
	}
	close(p[1]);
	add_child(pid);
	err = read_report(p[0], 30000);
	cr_assert_eq(err, 0, "%u services in %s did not start: %s", n, absdir, strerror(err));
	return pid;
}

void h_kill(pid_t pid)
{
	for (size_t i = 0; i < H_MAX_CHILDREN; i++)
		if (H.children[i] == pid)
			H.children[i] = 0;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

pid_t h_spawn(void (*fn)(void *arg), void *arg)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_prepare(-1, SIGKILL);
		fn(arg);
		_exit(0);
	}
	add_child(pid);
	return pid;
}

int h_join(pid_t pid, int ms)
{
	int st = wait_bounded(pid, ms);

	for (size_t i = 0; i < H_MAX_CHILDREN; i++)
		if (H.children[i] == pid)
			H.children[i] = 0;
	if (st == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return st;
}

int h_connect_read(const char *path, int type, char *buf, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, pathfd = -1, r = 0;
	size_t len = 0;

	if (strlen(path) < sizeof(sa.sun_path)) {
		strcpy(sa.sun_path, path);
	} else {
		/* O_PATH follows the symlink; /proc/self/fd/N is short */
		pathfd = open(path, O_PATH | O_CLOEXEC);
		if (pathfd < 0)
			return -errno;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", pathfd);
	}
	fd = socket(AF_UNIX, (type ? type : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	{
		struct timeval tv = {5, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	while (len + 1 < size) {
		ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
out:
	if (fd >= 0)
		close(fd);
	if (pathfd >= 0)
		close(pathfd);
	return r;
}

/* ---- files ---- */

static void write_all(const char *path, int fd, const char *content)
{
	size_t len = strlen(content), off = 0;

	while (off < len) {
		ssize_t n = write(fd, content + off, len - off);
		cr_assert_gt(n, 0, "write %s: %s", path, strerror(errno));
		off += (size_t)n;
	}
}

static void write_atomic(const char *path, const char *content, bool owned, uid_t uid, gid_t gid)
{
	char abs[PATH_MAX], tmp[PATH_MAX + 32], *slash;
	int fd, r;

	abs_path(path, abs);
	slash = strrchr(abs, '/');
	cr_assert_not_null(slash);
	snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp%d", (int)(slash - abs), abs, slash + 1,
		 (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", tmp, strerror(errno));
	write_all(tmp, fd, content);
	close(fd);
	if (owned) {
		r = chown(tmp, uid, gid);
		cr_assert_eq(r, 0, "chown %s: %s", tmp, strerror(errno));
	}
	r = rename(tmp, abs);
	cr_assert_eq(r, 0, "rename %s: %s", abs, strerror(errno));
}

void h_write_atomic(const char *path, const char *content)
{
	write_atomic(path, content, false, 0, 0);
}

void h_write_atomic_owned(const char *path, const char *content, uid_t uid, gid_t gid)
{
	write_atomic(path, content, true, uid, gid);
}

void h_write_inplace(const char *path, const char *content)
{
	char abs[PATH_MAX];
	int fd;

	abs_path(path, abs);
	fd = open(abs, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", abs, strerror(errno));
	write_all(abs, fd, content);
	close(fd);
}

char *h_slurp(const char *path)
{
	size_t len = 0, cap = 4096;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	if (!buf)
		goto fail;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			char *p = realloc(buf, 2 * cap + 1);
			if (!p)
				goto fail;
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(fd);
	return buf;
fail : {
	int e = errno;
	free(buf);
	close(fd);
	errno = e;
	return NULL;
}
}

int h_count_lines(const char *file, const char *needle)
{
	char *s = h_slurp(file), *save = NULL;
	int n = 0;

	if (!s)
		return 0;
	for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strstr(l, needle))
			n++;
	free(s);
	return n;
}

char *h_daemon_stderr(void)
{
	return h_slurp(H.errlog);
}

json_object *h_json_file(const char *path)
{
	char *s = h_slurp(path);
	json_object *o;

	if (!s)
		return NULL;
	o = json_tokener_parse(s);
	free(s);
	return o;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int h_list(const char *path, char ***ret_names)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char **v = NULL;
	size_t n = 0, cap = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (n + 2 > cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			cr_assert_not_null(v);
		}
		v[n++] = strdup(de->d_name);
	}
	closedir(d);
	if (!v) {
		v = calloc(1, sizeof(*v));
		cr_assert_not_null(v);
	}
	qsort(v, n, sizeof(*v), cmp_str);
	v[n] = NULL;
	*ret_names = v;
	return (int)n;
}

void h_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

bool h_strv_contains(char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* ---- waits ---- */

bool h_wait_until(bool (*fn)(void *ctx), void *ctx, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		if (fn(ctx))
			return true;
		if (now_ms() > end)
			return false;
		h_sleep_ms(H_POLL_MS);
	}
}

static bool exists(void *ctx)
{
	struct stat st;
	return lstat(ctx, &st) == 0;
}

static bool gone(void *ctx)
{
	struct stat st;
	return lstat(ctx, &st) < 0 && errno == ENOENT;
}

bool h_wait_exists(const char *path)
{
	return h_wait_until(exists, (void *)path, H_TIMEOUT_MS);
}

bool h_wait_gone(const char *path)
{
	return h_wait_until(gone, (void *)path, H_TIMEOUT_MS);
}

struct content_ctx {
	const char *path, *want;
};

static bool content_is(void *ctx)
{
	struct content_ctx *c = ctx;
	char *s = h_slurp(c->path);
	bool ok = s && strcmp(s, c->want) == 0;

	free(s);
	return ok;
}

bool h_wait_content(const char *path, const char *want)
{
	return h_wait_until_content_ms(path, want, H_TIMEOUT_MS);
}

bool h_wait_until_content_ms(const char *path, const char *want, int timeout_ms)
{
	struct content_ctx c = {path, want};

	return h_wait_until(content_is, &c, timeout_ms);
}

bool h_wait_until_gone_ms(const char *path, int timeout_ms)
{
	return h_wait_until(gone, (void *)path, timeout_ms);
}

struct listed_ctx {
	const char *dir, *name;
	bool present;
};

static bool listed(void *ctx)
{
	struct listed_ctx *c = ctx;
	char **v = NULL;
	bool in;

	if (h_list(c->dir, &v) < 0)
		return false;
	in = h_strv_contains(v, c->name);
	h_strv_free(v);
	return in == c->present;
}

bool h_wait_listed(const char *dir, const char *name, bool present)
{
	struct listed_ctx c = {dir, name, present};

	return h_wait_until(listed, &c, H_TIMEOUT_MS);
}

struct count_ctx {
	const char *dir;
	size_t n;
};

static bool count_is(void *ctx)
{
	struct count_ctx *c = ctx;
	char **v = NULL;
	int n = h_list(c->dir, &v);

	h_strv_free(v);
	return n >= 0 && (size_t)n == c->n;
}

bool h_wait_count(const char *path, size_t n, int timeout_ms)
{
	struct count_ctx c = {path, n};

	return h_wait_until(count_is, &c, timeout_ms);
}

static bool log_has(void *ctx)
{
	return h_count_lines(H.errlog, ctx) > 0;
}

bool h_wait_log(const char *needle)
{
	return h_wait_until(log_has, (void *)needle, H_TIMEOUT_MS);
}

/* ---- as another user ---- */

int h_as_user(uid_t uid, gid_t gid, gid_t supp, int (*fn)(const void *arg), const void *arg)
{
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_prepare(-1, SIGKILL);
		if (setgroups(supp ? 1 : 0, &supp) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(255);
		_exit(fn(arg) & 0xff);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) == 255)
		return -1;
	return WEXITSTATUS(st);
}
