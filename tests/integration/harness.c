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
#include <sys/pidfd.h>
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
#define DAEMON_STOP_MS  10000
#define KILL_MS         5000 /* after SIGKILL (and a FUSE abort): then it is stuck in the kernel */
#define GRACE_MS        2000 /* for processes that die with a killed parent (PDEATHSIG) */
#define RING            32
#define MAX_PROBLEMS    16

struct harness H;
static bool atexit_done;

/* What teardown found left behind; reported (the test fails) once all is cleaned up. */
static char problems[MAX_PROBLEMS][512];
static int nproblems;

/* The daemon under test: $SVCFS_BIN if set (to test another build), else the one built here. */
static const char *svcfs_bin(void)
{
	const char *env = getenv("SVCFS_BIN");

	return env && env[0] ? env : SVCFS_BIN;
}

static int wait_bounded(pid_t pid, int ms);
static void describe_status(int st, char *buf, size_t size);

/* ---- small utilities ---- */

long long h_now_ms(void)
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

static void problem(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void problem(const char *fmt, ...)
{
	va_list ap;

	if (nproblems == MAX_PROBLEMS)
		return;
	va_start(ap, fmt);
	vsnprintf(problems[nproblems++], sizeof(problems[0]), fmt, ap);
	va_end(ap);
}

/* ---- processes ----
 *
 * Every process the harness starts or is told about is held by a pidfd
 * from the moment it is known: signals go through the pidfd, so a process
 * that ended (and whose pid the system gave to someone else, possibly
 * another test's daemon: pid_max is often 32768) is never signalled by
 * mistake.
 */

/* True if the process of pidfd FD is a child of ours (not reaped yet). */
static bool is_our_child(int fd)
{
	siginfo_t si = {0};

	return fd >= 0 && waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

/* True if the process of pidfd FD has ended (a zombie counts), waiting up to MS. */
static bool pidfd_ended(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	long long end = h_now_ms() + ms;

	for (;;) {
		int left = (int)(end - h_now_ms());
		int r = poll(&p, 1, left > 0 ? left : 0);
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

/*
 * SIGKILL the process of FD (PID) and wait up to MS for it to end; reap it
 * if it is our child. False if it is still there: stuck in the kernel.
 */
static bool kill_and_reap(int fd, pid_t pid, int ms)
{
	if (fd < 0)
		return true; /* it was gone before we could hold it */
	if (is_our_child(fd)) {
		pidfd_send_signal(fd, SIGKILL, NULL, 0);
		return wait_bounded(pid, ms) != -1;
	}
	if (pidfd_send_signal(fd, SIGKILL, NULL, 0) < 0 && errno == ESRCH)
		return true;
	return pidfd_ended(fd, ms);
}

static int child_slot(pid_t pid)
{
	for (int i = 0; i < H_MAX_CHILDREN; i++)
		if (pid > 0 && H.children[i] == pid)
			return i;
	return -1;
}

static void drop_slot(int i)
{
	if (H.child_fds[i] >= 0)
		close(H.child_fds[i]);
	H.children[i] = 0;
	H.child_fds[i] = -1;
}

/* Hold PID (and a pidfd on it) so that teardown kills it. */
static void add_child(pid_t pid)
{
	int fd = pidfd_open(pid, 0);

	if (fd < 0 && errno != ESRCH)
		cr_log_warn("harness: pidfd_open %d: %s", (int)pid, strerror(errno));
	for (size_t i = 0; i < H_MAX_CHILDREN; i++) {
		if (H.children[i] == 0) {
			H.children[i] = pid;
			H.child_fds[i] = fd;
			return;
		}
	}
	kill_and_reap(fd, pid, KILL_MS);
	if (fd >= 0)
		close(fd);
	cr_assert_fail("harness: more than %d children", H_MAX_CHILDREN);
}

/*
 * In a forked child: die with the parent (PARENT, the pid before fork),
 * keep only fds 0-2 and KEEP (moved to 3). The death signal is tied to
 * the forking thread, and credentials changes clear it: see rearm_deathsig.
 */
static int child_prepare(int keep, int deathsig, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent)
		_exit(1); /* the test process died before prctl: nobody would kill us */
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

/* After setuid/setgid in a child: the kernel cleared the death signal; set it again. */
static void rearm_deathsig(int deathsig, pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent)
		_exit(1);
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

struct mount_ent {
	const char *point, *fstype, *source;
	unsigned maj, min;
};

/* Call FN(ENT, CTX) for every mount of /proc/self/mountinfo until it returns true. */
static void for_each_mount(bool (*fn)(const struct mount_ent *ent, void *ctx), void *ctx)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		char *fields[64], *save = NULL, *tok;
		struct mount_ent ent;
		int n = 0, dash = -1;

		for (tok = strtok_r(line, " \n", &save); tok && n < 64;
		     tok = strtok_r(NULL, " \n", &save)) {
			if (strcmp(tok, "-") == 0 && dash < 0)
				dash = n;
			fields[n++] = tok;
		}
		if (n < 5 || dash < 0 || dash + 2 >= n)
			continue;
		if (sscanf(fields[2], "%u:%u", &ent.maj, &ent.min) != 2)
			continue;
		unescape(fields[4]);
		unescape(fields[dash + 2]);
		ent.point = fields[4];
		ent.fstype = fields[dash + 1];
		ent.source = fields[dash + 2];
		if (fn(&ent, ctx))
			break;
	}
	free(line);
	fclose(f);
}

struct mounted_ctx {
	const char *mnt;
	char *source;
	size_t size;
	bool found;
	unsigned maj, min;
};

static bool mounted_at(const struct mount_ent *ent, void *ctx)
{
	struct mounted_ctx *c = ctx;

	if (strcmp(ent->point, c->mnt) != 0 || strcmp(ent->fstype, "fuse.svcfs") != 0)
		return false;
	c->found = true;
	c->maj = ent->maj;
	c->min = ent->min;
	if (c->source)
		snprintf(c->source, c->size, "%s", ent->source);
	return true;
}

bool h_mounted(const char *mnt, char *ret_source, size_t size)
{
	struct mounted_ctx c = {.mnt = mnt, .source = ret_source, .size = size};

	for_each_mount(mounted_at, &c);
	return c.found;
}

/*
 * Abort the FUSE connection of the mount at MNT, without touching the
 * mount itself (a hung daemon would hang us too): every request waiting
 * for the daemon fails, so that a daemon stuck on its own mount can die
 * and whoever waits on the mount is released. Then detach it.
 */
static void abort_and_detach(const char *mnt, unsigned maj, unsigned min)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", (maj << 20) | min);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t w = write(fd, "1", 1);
		(void)w;
		close(fd);
	} else {
		umount2(mnt, MNT_FORCE); /* aborts the connection too (fusectl not mounted) */
	}
	umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
}

struct below_ctx {
	const char *dir;
	const char *except; /* this mountpoint is left alone (may be NULL) */
	bool record;
	int n;
};

static bool detach_below(const struct mount_ent *ent, void *ctx)
{
	struct below_ctx *c = ctx;
	size_t len = strlen(c->dir);

	if (strncmp(ent->point, c->dir, len) != 0 || (ent->point[len] != '/' && ent->point[len]))
		return false;
	if (c->except && strcmp(ent->point, c->except) == 0)
		return false;
	if (c->record) {
		char why[128] = "";
		if (strcmp(ent->point, H.mnt) == 0 && H.daemon_reaped) {
			strcpy(why, "; its daemon had ended: ");
			describe_status(H.daemon_status, why + strlen(why),
			                sizeof(why) - strlen(why));
		}
		problem("%s was still mounted (%s from %s%s)", ent->point, ent->fstype, ent->source,
		        why);
	}
	abort_and_detach(ent->point, ent->maj, ent->min);
	c->n++;
	return false;
}

/* Abort and detach every mount at or below DIR but EXCEPT; RECORD: as teardown problems. */
static int detach_mounts_below(const char *dir, const char *except, bool record)
{
	int total = 0;

	/* mounts stacked on one another show one at a time */
	for (int pass = 0; pass < 8; pass++) {
		struct below_ctx c = {dir, except, record, 0};
		for_each_mount(detach_below, &c);
		if (c.n == 0)
			break;
		total += c.n;
		record = false; /* a stack is one problem */
	}
	return total;
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

static void teardown(bool report);

/* A test process that exits without .fini (exit() in the test) still cleans up. */
static void atexit_teardown(void)
{
	teardown(false);
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
		char path[PATH_MAX], *owner;
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
		detach_mounts_below(path, NULL, false);
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	}
	closedir(d);
}

/*
 * ROOT/owner.pid: whose directory this is, for sweep_stale; written
 * beside and renamed, so that it is never seen half written. Never fails
 * the test.
 */
static void write_owner(void)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], pid[32];
	int fd, n;

	if (snprintf(path, sizeof(path), "%s/owner.pid", H.root) >= (int)sizeof(path))
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		ssize_t w = write(fd, pid, (size_t)n);
		close(fd);
		if (w == n)
			rename(tmp, path);
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
	H.owner = getpid();
	H.daemon_fd = -1;
	for (size_t i = 0; i < H_MAX_CHILDREN; i++)
		H.child_fds[i] = -1;
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

static void daemon_forget(void)
{
	if (H.daemon_fd >= 0)
		close(H.daemon_fd);
	H.daemon_fd = -1;
	H.daemon = 0;
}

/* Reap the daemon if it exited. True if it is (still) running. */
static bool daemon_running(void)
{
	int st;
	pid_t r;

	if (!H.daemon) {
		daemon_forget(); /* a test reaped it itself and cleared H.daemon */
		return false;
	}
	r = waitpid(H.daemon, &st, WNOHANG);
	if (r == H.daemon) {
		H.daemon_status = st;
		H.daemon_reaped = true;
		daemon_forget();
		return false;
	}
	if (r < 0) {
		/* reaped behind our back: its pid may already be someone else's */
		daemon_forget();
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

/*
 * Fork and exec svcfs -f [-o OPTS] BACKING MNT, stdin from /dev/null, stdout
 * and stderr appended to ERRLOG; it gets SIGTERM (and unmounts) when the
 * test process dies. Its pid; it is not waited for.
 */
static pid_t daemon_spawn(const char *opts, const char *backing, const char *mnt,
                          const char *errlog)
{
	const char *argv[8];
	int n = 0, fd;
	pid_t pid, parent = getpid();

	argv[n++] = svcfs_bin();
	argv[n++] = "-f";
	if (opts) {
		argv[n++] = "-o";
		argv[n++] = opts;
	}
	argv[n++] = backing;
	argv[n++] = mnt;
	argv[n] = NULL;

	fd = open(errlog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0, "open %s: %s", errlog, strerror(errno));
	/*
	 * The daemon's death signal follows the thread that forks it: from any
	 * other thread, the daemon would be SIGTERMed when that thread ends.
	 */
	cr_assert_eq(gettid(), getpid(),
	             "svcfs started from a thread other than the test's main thread");
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		child_prepare(-1, SIGTERM, parent);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(fd);
	return pid;
}

void h_mount_opts(const char *opts, const char *backing_arg)
{
	long long end;
	pid_t pid;

	cr_assert(H.ready, "h_mount before h_setup");
	cr_assert_eq(H.daemon, 0, "daemon already running");
	pid = daemon_spawn(opts, backing_arg ? backing_arg : H.backing, H.mnt, H.errlog);
	H.daemon = pid;
	H.daemon_fd = pidfd_open(pid, 0);
	H.daemon_reaped = false;
	end = h_now_ms() + DAEMON_START_MS;
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
		if (h_now_ms() > end)
			cr_assert_fail("%s did not appear in mountinfo within %d ms", H.mnt,
			               DAEMON_START_MS);
		h_sleep_ms(H_POLL_MS);
	}
}

pid_t h_daemon_start(const char *opts, const char *backing, const char *mnt, const char *errlog)
{
	pid_t pid;

	cr_assert(H.ready, "h_daemon_start before h_setup");
	pid = daemon_spawn(opts, backing, mnt, errlog);
	h_track(pid);
	return pid;
}

/* Wait for PID up to MS; returns its status or -1. */
static int wait_bounded(pid_t pid, int ms)
{
	long long end = h_now_ms() + ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		if (r < 0)
			return -1;
		if (h_now_ms() > end)
			return -1;
		h_sleep_ms(H_POLL_MS);
	}
}

/* Send SIG to the daemon through its pidfd (never to a pid that may have been reused). */
static void daemon_signal(int sig)
{
	if (H.daemon_fd >= 0)
		pidfd_send_signal(H.daemon_fd, sig, NULL, 0);
	else if (H.daemon)
		kill(H.daemon, sig); /* not reaped yet: the pid is still ours */
}

/*
 * SIGTERM the daemon and wait. If it does not end within DAEMON_STOP_MS:
 * SIGKILL it and abort its FUSE connection (a daemon blocked on a request
 * to its own mount, or on the kernel's inode lock, cannot die otherwise),
 * and *IGNORED is set. Returns the wait status after SIGTERM, -1 if it
 * had to be killed (or could not even be reaped: then H.daemon stays set).
 */
static int daemon_stop(bool *ignored)
{
	struct mounted_ctx m = {.mnt = H.mnt};
	int st;

	if (!daemon_running())
		return H.daemon_reaped ? H.daemon_status : -1;
	daemon_signal(SIGTERM);
	st = wait_bounded(H.daemon, DAEMON_STOP_MS);
	if (st != -1) {
		daemon_forget();
		H.daemon_status = st;
		H.daemon_reaped = true;
		return st;
	}
	if (ignored)
		*ignored = true;
	fprintf(stderr, "harness: svcfs (pid %d) ignored SIGTERM for %d ms; killing it\n",
	        (int)H.daemon, DAEMON_STOP_MS);
	daemon_signal(SIGKILL);
	for_each_mount(mounted_at, &m);
	if (m.found)
		abort_and_detach(H.mnt, m.maj, m.min);
	st = wait_bounded(H.daemon, KILL_MS);
	if (st == -1) {
		fprintf(stderr, "harness: svcfs (pid %d) survived SIGKILL for %d ms\n",
		        (int)H.daemon, KILL_MS);
		return -1;
	}
	daemon_forget();
	H.daemon_status = st;
	H.daemon_reaped = true;
	return -1;
}

int h_daemon_stop(void)
{
	return daemon_stop(NULL);
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

/* ---- what teardown must not leave ---- */

struct proc_info {
	pid_t pid, ppid, sid;
	char state;
	char comm[32];
};

static bool read_proc(pid_t pid, struct proc_info *pi)
{
	char path[64], buf[1024], *close_paren;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	close_paren = strrchr(buf, ')');
	if (!close_paren)
		return false;
	pi->pid = pid;
	snprintf(pi->comm, sizeof(pi->comm), "%.*s", (int)(close_paren - strchr(buf, '(') - 1),
	         strchr(buf, '(') + 1);
	return sscanf(close_paren + 2, "%c %d %*d %d", &pi->state, &pi->ppid, &pi->sid) == 3;
}

/* Some argument of PID's command line lies at or below DIR. */
static bool cmdline_below(pid_t pid, const char *dir)
{
	char path[64], buf[4096];
	size_t len = strlen(dir);
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	for (char *a = buf; a < buf + n; a += strlen(a) + 1)
		if (strncmp(a, dir, len) == 0 && (a[len] == '\0' || a[len] == '/'))
			return true;
	return false;
}

#define MAX_LEFT 64

/*
 * Processes this test left running: our children, members of our session
 * (Criterion gives every test process a session of its own) and any
 * process whose command line names something below ROOT (a daemonized
 * svcfs). Zombie children are reaped on the way. Returns how many.
 */
static int find_left(struct proc_info *left, int max)
{
	pid_t self = getpid();
	bool leader = getsid(0) == self;
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max) {
		struct proc_info pi;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == self || !read_proc((pid_t)pid, &pi))
			continue;
		if (pi.state == 'Z' || pi.state == 'X') {
			if (pi.ppid == self)
				waitpid((pid_t)pid, NULL, WNOHANG);
			continue;
		}
		if (pi.ppid == self || (leader && pi.sid == self) || cmdline_below(pi.pid, H.root))
			left[n++] = pi;
	}
	closedir(d);
	return n;
}

/* Kill what the test left running; each one is a problem (after GRACE_MS for those that are dying).
 */
static void kill_left(void)
{
	struct proc_info left[MAX_LEFT];
	long long end = h_now_ms() + GRACE_MS;
	int n;

	while ((n = find_left(left, MAX_LEFT)) > 0 && h_now_ms() < end)
		h_sleep_ms(10);
	for (int i = 0; i < n; i++) {
		int fd;
		if (left[i].pid == H.daemon)
			continue; /* already reported: it survived SIGKILL */
		fd = pidfd_open(left[i].pid, 0);
		problem("process %d (%s, state %c) was still running", (int)left[i].pid,
		        left[i].comm, left[i].state);
		if (fd >= 0 && !kill_and_reap(fd, left[i].pid, KILL_MS))
			problem("process %d (%s) survived SIGKILL", (int)left[i].pid, left[i].comm);
		if (fd >= 0)
			close(fd);
	}
}

/* The end of the daemon's stderr into the test's log. */
static void log_daemon_stderr(bool report)
{
	char *err = h_daemon_stderr();
	size_t len = err ? strlen(err) : 0;
	const char *tail = len > 4000 ? err + len - 4000 : (err ? err : "");

	if (report)
		cr_log_error("daemon stderr%s:\n%s", len > 4000 ? " (end)" : "", tail);
	else
		fprintf(stderr, "harness: daemon stderr%s:\n%s\n", len > 4000 ? " (end)" : "",
		        tail);
	free(err);
}

/*
 * Stop the daemon, kill every process and detach every mount the test
 * left, remove ROOT; then check that nothing is left. Anything that was
 * (a daemon that needed SIGKILL or crashed, a process still running, a
 * mount still there) fails the test when REPORT (Criterion's .fini), or is
 * printed (atexit). Only the process that ran h_setup does any of this: a
 * forked child that ends up here (an assertion in a child returns into
 * Criterion, exit() runs atexit handlers) must not tear down its parent's
 * test.
 */
static void teardown(bool report)
{
	bool ignored = false, show_err = false;
	char why[128];

	if (!H.ready || getpid() != H.owner)
		return;
	nproblems = 0;

	/* 1. the daemon: SIGTERM must be enough, and it must exit 0 */
	if (daemon_running()) {
		int st = daemon_stop(&ignored);
		if (ignored) {
			problem("svcfs did not exit within %d ms of SIGTERM%s", DAEMON_STOP_MS,
			        H.daemon ? "; it even survived SIGKILL" : " (killed)");
			show_err = true;
		} else if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !WIFSIGNALED(st)) {
			describe_status(st, why, sizeof(why));
			problem("svcfs ended with %s on SIGTERM (expected exit status 0)", why);
			show_err = true;
		} else if (WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) {
			problem("svcfs was killed by SIGTERM at teardown: it had no handler yet");
		}
	}
	if (H.daemon_reaped && WIFSIGNALED(H.daemon_status) &&
	    WTERMSIG(H.daemon_status) != SIGTERM && WTERMSIG(H.daemon_status) != SIGKILL) {
		describe_status(H.daemon_status, why, sizeof(why));
		problem("svcfs CRASHED (%s)", why);
		show_err = true;
	}
	if (show_err)
		log_daemon_stderr(report);

	/* 2. the processes the harness started or was given (h_track) */
	for (int i = 0; i < H_MAX_CHILDREN; i++) {
		if (H.children[i] <= 0)
			continue;
		if (!kill_and_reap(H.child_fds[i], H.children[i], KILL_MS))
			problem("process %d survived SIGKILL", (int)H.children[i]);
		drop_slot(i);
	}

	/* 3. anything else still running: the test forked it and did not say so */
	kill_left();

	/* 4. mounts: the daemon unmounts MNT itself when it ends on SIGTERM */
	detach_mounts_below(H.root, NULL, true);

	/* 5. files; FTW_MOUNT: never descend into a mount that refused to go */
	nftw(H.root, rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (access(H.root, F_OK) == 0)
		problem("%s could not be removed", H.root);
	H.ready = false;

	/*
	 * Criterion has decided pass or fail before .fini runs: an assertion
	 * here is printed but does not fail the test. An error message does
	 * fail the run (its exit status, which is what ctest checks).
	 */
	for (int i = 0; i < nproblems; i++) {
		if (report)
			cr_log_error("TEARDOWN FAILED for %s::%s: %s",
			             criterion_current_test ? criterion_current_test->category
			                                    : "?",
			             criterion_current_test ? criterion_current_test->name : "?",
			             problems[i]);
		else
			fprintf(stderr, "harness: teardown (atexit): %s\n", problems[i]);
	}
	nproblems = 0;
}

void h_teardown(void)
{
	teardown(true);
}

int h_run_daemon(const char *const argv[], int timeout_ms, char **ret_err)
{
	return h_run_daemon_as(0, 0, argv, timeout_ms, ret_err);
}

/*
 * PID is held by a pidfd from now on: it is killed at teardown only if it
 * is still that process. (Between the caller learning PID and this call
 * the process could end and its pid be reused: track it at once.)
 */
void h_track(pid_t pid)
{
	cr_assert_gt(pid, 0, "h_track(%d)", (int)pid);
	add_child(pid);
}

int h_run_daemon_as(uid_t uid, gid_t gid, const char *const argv[], int timeout_ms, char **ret_err)
{
	char errpath[PATH_MAX], *args[32];
	int fd, st, n = 0;
	pid_t pid, parent = getpid();

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
		child_prepare(-1, SIGTERM, parent);
		if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
			_exit(126);
		if (uid != 0)
			rearm_deathsig(SIGTERM, parent);
		execv(args[0], args);
		_exit(127);
	}
	close(fd);
	st = wait_bounded(pid, timeout_ms);
	if (st == -1) {
		/* the pid is ours until we reap it: plain kill() is safe here */
		kill(pid, SIGTERM);
		if (wait_bounded(pid, DAEMON_STOP_MS) == -1) {
			kill(pid, SIGKILL);
			if (wait_bounded(pid, KILL_MS) == -1) {
				/* stuck on its own mount: abort the connections it may hold */
				detach_mounts_below(H.root, daemon_running() ? H.mnt : NULL, false);
				if (wait_bounded(pid, KILL_MS) == -1)
					add_child(pid); /* teardown reports it */
			}
		}
		/* what it mounted stays mounted when it is killed */
		detach_mounts_below(H.root, daemon_running() ? H.mnt : NULL, false);
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

static void service_child(const char *abs, const struct h_service_opts *o, int rep, pid_t parent)
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
		rearm_deathsig(SIGKILL, parent);
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
	pid_t pid, parent = getpid();

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
		rep = child_prepare(p[1], SIGKILL, parent);
		service_child(abs, opts, rep, parent);
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
	pid_t pid, parent = getpid();

	abs_path(dir, absdir);
	r = pipe2(p, O_CLOEXEC);
	cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct rlimit rl = {n + 64, n + 64};
		int rep;
		close(p[0]);
		rep = child_prepare(p[1], SIGKILL, parent);
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
	int i = child_slot(pid);

	if (i < 0) {
		/* not ours to track: the caller vouches for PID */
		kill(pid, SIGKILL);
		wait_bounded(pid, KILL_MS);
		return;
	}
	if (!kill_and_reap(H.child_fds[i], pid, KILL_MS)) {
		cr_log_warn("harness: process %d survived SIGKILL for %d ms", (int)pid, KILL_MS);
		return; /* still held: teardown tries again and reports it */
	}
	drop_slot(i);
}

pid_t h_spawn(void (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_prepare(-1, SIGKILL, parent);
		fn(arg);
		_exit(0);
	}
	add_child(pid);
	return pid;
}

int h_join(pid_t pid, int ms)
{
	int st = wait_bounded(pid, ms);
	int i = child_slot(pid);

	if (st == -1 && i >= 0) {
		if (!kill_and_reap(H.child_fds[i], pid, KILL_MS))
			return -1; /* still held: teardown reports it */
	} else if (st == -1) {
		kill(pid, SIGKILL);
		wait_bounded(pid, KILL_MS);
	}
	if (i >= 0)
		drop_slot(i);
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
	long long end = h_now_ms() + timeout_ms;

	for (;;) {
		if (fn(ctx))
			return true;
		if (h_now_ms() > end)
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
	pid_t parent = getpid();
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		child_prepare(-1, SIGKILL, parent);
		if (setgroups(supp ? 1 : 0, &supp) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(255);
		rearm_deathsig(SIGKILL, parent);
		_exit(fn(arg) & 0xff);
	}
	add_child(pid);
	st = h_join(pid, 6 * H_TIMEOUT_MS);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) == 255)
		return -1;
	return WEXITSTATUS(st);
}

int h_fd_count(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%ld/fd", (long)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}
