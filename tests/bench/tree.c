/*
 * svcfs-bench-tree — what walking a big svcfs mount costs against the same
 * tree on tmpfs, how fast services may come and go with the view still
 * right at the end, and what the daemon costs in memory and CPU (SPEC §6).
 * A benchmark: it prints figures beside their baselines and SPEC targets and
 * does not pass or fail; it exits non-zero only when it could not measure.
 *
 * Walks, for each --sizes N (services bound by helper processes, as few as
 * RLIMIT_NOFILE allows, each with a small sidecar sNNNNNN.json; a helper accepts and
 * closes every connection as a real server would):
 *
 *   ls       opendir/readdir of the mount root + fstatat(AT_SYMLINK_NOFOLLOW)
 *            of every entry not starting with '.' (what `ls -l` does), and one
 *            exec of `ls -l ROOT >/dev/null`
 *   cat      readdir of the root + open/read/close of every NAME/meta.json
 *   stat     readdir of the root + readdir of every service directory and
 *            fstatat of each of its files
 *
 * Each cold figure is the first walk after a fresh mount (the daemon is
 * restarted; the services stay; drop_caches before it); warm is the median
 * of --passes walks after it. The baseline is the same tree on a tmpfs the
 * bench mounts: every directory and file of the mount copied with the same
 * bytes (symlinks as symlinks), walked the same way. drop_caches does not
 * evict tmpfs (its pages and dentries are the data), so cold tmpfs is about
 * warm tmpfs: the cold ratio compares with a tree that is never cold.
 *
 * Churn: --churn N services registered (socket/bind/listen) and vanished by
 * --workers processes as fast as they can, in two ways: "close" (each worker
 * keeps a window of 32 live sockets, then close + unlink of the oldest) and
 * "kill" (each worker forks holders that bind 50 sockets each and are
 * SIGKILLed once listening; their socket files stay). Meanwhile --churn-live
 * long-lived services stay. Timed from the start until the listing of the
 * mount root is exactly the long-lived set; baseline: the same operations on
 * a directory without svcfs.
 *
 * Resources: the daemon's VmRSS with 0 services and with each size (idle,
 * after start, and after the walks), and its utime+stime over --cpu-seconds
 * with --cpu-services idle services at the default probe interval.
 *
 * --requests runs the daemon with -d and counts the FUSE requests of each
 * walk in its log (timings are then not representative).
 *
 * Cleanup, also on errors and SIGINT/SIGTERM/SIGHUP: SIGTERM to the daemon
 * (umount2(MNT_DETACH) if it has not exited within 30 s), SIGKILL to every
 * child, the tmpfs unmounted, rm -rf of the temporary directory. Children die
 * with the bench (PR_SET_PDEATHSIG) if it is killed outright.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "util.h"

#ifndef SVCFS_BIN
#error "SVCFS_BIN (path of the svcfs daemon) must be defined"
#endif

#define PROG             "svcfs-bench-tree"
#define TERM_TIMEOUT_MS  30000
#define CHURN_TIMEOUT_MS 120000
#define CHURN_WINDOW     32 /* live sockets per "close" worker */
#define CHURN_BATCH      50 /* sockets per "kill" holder */
#define MAX_SIZES        8
#define MAX_WORKERS      64
#define MAX_HELPERS      64
#define MAX_ROWS         128
#define MAX_OPS          64 /* FUSE opcodes counted with --requests */
#define STATUS_XATTR     "user.svcfs.status"

struct config {
	const char *svcfs;
	const char *svcfs_opts;
	const char *dir;
	unsigned sizes[MAX_SIZES];
	unsigned nsizes;
	unsigned passes;
	unsigned churn, churn_live, workers;
	unsigned cpu_services, cpu_seconds;
	unsigned visible_timeout_s;
	bool requests;
	bool no_churn;
};

/* Everything cleanup must undo. */
static struct {
	char top[192];
	char backing[256]; /* BACKING of the current daemon */
	char mnt[256];
	char log[256];
	char tmpfs[256];
	bool tmpfs_mounted;
	pid_t daemon;
	pid_t helpers[MAX_HELPERS];
	pid_t workers[MAX_WORKERS];
} st;

const char bench_prog[] = PROG;

static char cmdline[1024];

/* ---- small helpers ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (bench_write_all(fd, "3\n", 2) < 0)
		fprintf(stderr, PROG ": drop_caches: %s\n", strerror(errno));
	close(fd);
}

/* ---- cleanup ---- */

static void print_log_tail(void)
{
	char cmd[PATH_MAX + 32];

	if (!st.log[0] || access(st.log, R_OK) < 0)
		return;
	fprintf(stderr, PROG ": last lines of the daemon's log (%s):\n", st.log);
	fflush(stderr);
	snprintf(cmd, sizeof(cmd), "tail -n 15 '%s' >&2", st.log);
	if (system(cmd) != 0)
		fprintf(stderr, "  (tail failed)\n");
}

/* SIGTERM to the daemon, wait, fall back to umount2(MNT_DETACH) and SIGKILL. */
static int stop_daemon(bool show_log)
{
	int ret = bench_svcfs_stop(&st.daemon, st.mnt, TERM_TIMEOUT_MS, NULL);

	if (show_log || ret < 0)
		print_log_tail();
	return ret;
}

static void kill_workers(void)
{
	for (unsigned i = 0; i < MAX_WORKERS; i++)
		bench_kill_and_reap(&st.workers[i]);
}

static void kill_helpers(void)
{
	for (unsigned i = 0; i < MAX_HELPERS; i++)
		bench_kill_and_reap(&st.helpers[i]);
}

static void unmount_tmpfs(void)
{
	if (st.tmpfs_mounted) {
		if (umount2(st.tmpfs, MNT_DETACH) < 0)
			fprintf(stderr, PROG ": umount %s: %s\n", st.tmpfs, strerror(errno));
		st.tmpfs_mounted = false;
	}
	if (st.tmpfs[0])
		rmdir(st.tmpfs);
	st.tmpfs[0] = '\0';
}

/* After a figure on BACKING and MNT: the daemon stopped (its log shown when
 * the figure FAILED), the helpers killed, both directories removed (unless
 * the bench is stopping: cleanup_all removes everything). */
static void end_figure(const char *backing, const char *mnt, bool failed)
{
	stop_daemon(failed && !bench_got_stop);
	kill_helpers();
	if (!bench_got_stop) {
		bench_rm_tree(backing);
		rmdir(mnt);
	}
}

static void cleanup_all(void)
{
	kill_workers();
	stop_daemon(false);
	kill_helpers();
	unmount_tmpfs();
	if (st.top[0])
		bench_rm_tree(st.top);
	st.top[0] = '\0';
}

/* ---- processes ---- */

static int fill_addr(struct sockaddr_un *a, const char *dir, char prefix, unsigned i)
{
	char path[PATH_MAX];
	int len = snprintf(path, sizeof(path), "%s/%c%06u.sock", dir, prefix, i);

	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	if (len < 0 || (size_t)len >= sizeof(a->sun_path))
		return -1;
	memcpy(a->sun_path, path, (size_t)len + 1);
	return 0;
}

/*
 * One process binding listening sockets DIR/PNNNNNN.sock for NNNNNN from
 * FIRST to FIRST+N-1, each with a sidecar PNNNNNN.json written first (a
 * service writes its metadata before it listens), into st.helpers[SLOT].
 */
static int spawn_helper(const char *dir, char prefix, unsigned first, unsigned n, unsigned slot)
{
	pid_t parent = getpid(), pid;
	char msg[512];
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror(PROG ": pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror(PROG ": fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		int *fds = calloc(n ? n : 1, sizeof(*fds));
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		bench_child_reset(parent, SIGKILL);
		close(p[0]);
		if (!fds || dfd < 0) {
			dprintf(p[1], "%s: %s", dir, fds ? strerror(errno) : "out of memory");
			_exit(1);
		}
		if (bench_raise_nofile((rlim_t)n + 64) < 0) {
			dprintf(p[1], "setrlimit(RLIMIT_NOFILE, %u): %s", n + 64, strerror(errno));
			_exit(1);
		}
		for (unsigned i = first; i < first + n; i++) {
			struct sockaddr_un a;
			char name[32], json[160];
			int s, fd, len;

			snprintf(name, sizeof(name), "%c%06u.json", prefix, i);
			len = snprintf(json, sizeof(json),
			               "{\"version\":\"1.2.%u\",\"port\":%u,\"job\":\"bench\","
			               "\"tags\":[\"bench\",\"tree\"]}\n",
			               i, 10000 + i % 50000);
			fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0 || bench_write_all(fd, json, (size_t)len) < 0) {
				dprintf(p[1], "sidecar %s: %s", name, strerror(errno));
				_exit(1);
			}
			close(fd);
			if (fill_addr(&a, dir, prefix, i) < 0) {
				dprintf(p[1], "%s: too long for a socket address", dir);
				_exit(1);
			}
			s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
			if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
			    listen(s, 64) < 0) {
				dprintf(p[1], "service %u of %u (%s): %s", i + 1, n, a.sun_path,
				        strerror(errno));
				_exit(1);
			}
			fds[i - first] = s;
		}
		close(dfd);
		dprintf(p[1], "ok");
		close(p[1]);
		bench_serve(fds, n);
	}
	close(p[1]);
	st.helpers[slot] = pid;
	bench_read_msg(p[0], msg, sizeof(msg), 600000);
	close(p[0]);
	if (strcmp(msg, "ok") != 0) {
		if (!bench_got_stop)
			fprintf(stderr, PROG ": binding %u services: %s\n", n,
			        msg[0] ? msg : "no answer from the helper");
		return -1;
	}
	return 0;
}

/*
 * N services in as few helpers as RLIMIT_NOFILE allows: the hard limit
 * bounds each process (raising it needs CAP_SYS_RESOURCE, which root may
 * lack in a container). *ret_ms: how long the binding took.
 */
static int spawn_helpers(const char *dir, char prefix, unsigned n, double *ret_ms,
                         unsigned *ret_helpers)
{
	struct rlimit rl;
	unsigned per = 1000000, slot = 0;
	int64_t t0 = bench_now_ns();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY &&
	    rl.rlim_max < 1000064)
		per = rl.rlim_max > 1064 ? (unsigned)rl.rlim_max - 64 : 1000;
	for (unsigned first = 0; first < n; first += per, slot++) {
		if (slot == MAX_HELPERS) {
			fprintf(stderr, PROG ": %u services need more than %d helpers of %u\n", n,
			        MAX_HELPERS, per);
			return -1;
		}
		if (spawn_helper(dir, prefix, first, n - first < per ? n - first : per, slot) < 0)
			return -1;
	}
	if (ret_ms)
		*ret_ms = bench_ms_since(t0);
	if (ret_helpers)
		*ret_helpers = slot;
	return 0;
}

/* The daemon exited with STATUS (reaped): say so, with its log. */
static void report_exit(int status)
{
	fprintf(stderr, PROG ": svcfs exited (status 0x%x)\n", status);
	print_log_tail();
}

static bool daemon_died(void)
{
	int status;

	if (st.daemon > 0 && waitpid(st.daemon, &status, WNOHANG) == st.daemon) {
		st.daemon = 0;
		report_exit(status);
		return true;
	}
	return false;
}

/* The daemon's service count, from the root's status xattr: no readdir, so
 * nothing of the tree gets into the kernel's caches. -1: unknown. */
static long status_services(const char *mnt)
{
	char buf[4096];
	ssize_t n = getxattr(mnt, STATUS_XATTR, buf, sizeof(buf) - 1);
	const char *p;

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, "\"services\":");
	return p ? strtol(p + 11, NULL, 10) : -1;
}

/* Start svcfs on BACKING, wait for the mount and N services; ms to each. */
static int mount_svcfs(const struct config *c, const char *backing, const char *mnt, unsigned n,
                       double *ret_mount_ms, double *ret_visible_ms)
{
	int64_t t0 = bench_now_ns(), end;
	long seen = -1;
	int status;

	snprintf(st.backing, sizeof(st.backing), "%s", backing);
	snprintf(st.mnt, sizeof(st.mnt), "%s", mnt);
	snprintf(st.log, sizeof(st.log), "%s/svcfs.log", st.top);
	if (bench_svcfs_start(c->svcfs, c->svcfs_opts, c->requests, backing, mnt, st.log,
	                      &st.daemon) < 0)
		return -1;
	switch (bench_svcfs_wait_mounted(&st.daemon, mnt, c->visible_timeout_s * 1000, &status)) {
	case 0:
		break;
	case 1:
		report_exit(status);
		return -1;
	case 2:
		fprintf(stderr, PROG ": %s not mounted %u s after svcfs started\n", mnt,
		        c->visible_timeout_s);
		return -1;
	default:
		return -1;
	}
	if (ret_mount_ms)
		*ret_mount_ms = bench_ms_since(t0);
	end = t0 + (int64_t)c->visible_timeout_s * 1000000000;
	while ((seen = status_services(mnt)) != (long)n) {
		if (bench_got_stop || daemon_died())
			return -1;
		if (bench_now_ns() > end) {
			fprintf(stderr, PROG ": svcfs shows %ld of %u services after %u s\n", seen,
			        n, c->visible_timeout_s);
			return -1;
		}
		bench_sleep_ms(10);
	}
	if (ret_visible_ms)
		*ret_visible_ms = bench_ms_since(t0);
	return 0;
}

/* ---- /proc ---- */

static long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (!(f = fopen(path, "re")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* utime + stime of every thread, in clock ticks. */
static long long proc_cpu_ticks(pid_t pid)
{
	char path[64], buf[2048];
	unsigned long long ut, stm;
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* fields after "(comm) ": state is field 3, utime 14, stime 15 */
	if (!(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stm) != 2)
		return -1;
	return (long long)(ut + stm);
}

/* ---- request counting (--requests) ---- */

struct reqcount {
	char name[MAX_OPS][24];
	unsigned long n[MAX_OPS];
	unsigned nops;
	unsigned long total;
};

static long log_size(void)
{
	struct stat sb;

	return st.log[0] && stat(st.log, &sb) == 0 ? (long)sb.st_size : 0;
}

/* Count "unique: N, opcode: NAME (K)" lines of the daemon's -d log from FROM. */
static void count_requests(long from, struct reqcount *rc)
{
	FILE *f = fopen(st.log, "re");
	char *line = NULL;
	size_t cap = 0;

	memset(rc, 0, sizeof(*rc));
	if (!f)
		return;
	fseek(f, from, SEEK_SET);
	while (getline(&line, &cap, f) > 0) {
		const char *p = strstr(line, "opcode: ");
		char op[24];
		unsigned i;

		if (strncmp(line, "unique: ", 8) != 0 || !p || sscanf(p + 8, "%23s", op) != 1)
			continue;
		for (i = 0; i < rc->nops && strcmp(rc->name[i], op) != 0; i++)
			;
		if (i == rc->nops) {
			if (rc->nops == MAX_OPS)
				continue;
			snprintf(rc->name[rc->nops++], sizeof(rc->name[0]), "%s", op);
		}
		rc->n[i]++;
		rc->total++;
	}
	free(line);
	fclose(f);
}

static void print_requests(const char *what, long from)
{
	struct reqcount rc;

	usleep(200000); /* the log is written after each reply */
	count_requests(from, &rc);
	printf("  requests %-40s %6lu:", what, rc.total);
	for (unsigned i = 0; i < rc.nops; i++)
		printf(" %s %lu", rc.name[i], rc.n[i]);
	printf("\n");
	fflush(stdout);
}

/* ---- walks ---- */

struct walk_result {
	unsigned long entries; /* services seen */
	unsigned long files;   /* stat walk: files; cat walk: bytes */
	int err;
};

/* Names of ROOT not starting with '.', through CB(rootfd, name). */
static int for_each_service(const char *root, void (*cb)(int, const char *, struct walk_result *),
                            struct walk_result *res)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		res->err = errno;
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((e = readdir(d)) && !bench_got_stop) {
		if (e->d_name[0] == '.')
			continue;
		res->entries++;
		cb(dirfd(d), e->d_name, res);
	}
	closedir(d);
	return 0;
}

static void ls_one(int dfd, const char *name, struct walk_result *res)
{
	struct stat sb;

	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0 && !res->err)
		res->err = errno;
}

static void cat_one(int dfd, const char *name, struct walk_result *res)
{
	char path[NAME_MAX + 16], buf[65536];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/meta.json", name);
	if ((fd = openat(dfd, path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (!res->err)
			res->err = errno;
		return;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		res->files += (unsigned long)n;
	if (n < 0 && !res->err)
		res->err = errno;
	close(fd);
}

static void stat_one(int dfd, const char *name, struct walk_result *res)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	struct stat sb;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (!res->err)
			res->err = errno;
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 && !res->err)
			res->err = errno;
		res->files++;
	}
	closedir(d);
}

/* `ls -l ROOT >/dev/null`, exec'd. */
static int exec_ls(const char *root, struct walk_result *res)
{
	pid_t parent = getpid(), pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

		bench_child_reset(parent, SIGKILL);
		dup2(fd, STDOUT_FILENO);
		close_range(3, ~0u, 0);
		execlp("ls", "ls", "-l", root, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		res->err = EIO;
	res->entries = 1;
	return 0;
}

enum walk_kind { WALK_LS, WALK_LS_EXEC, WALK_CAT, WALK_STAT, WALK_KINDS };

static const struct {
	const char *key, *what;
	double warm_target, cold_target;
} walks[WALK_KINDS] = {
    [WALK_LS] = {"ls", "ls -l root (readdir+lstat, in-process)", 1.5, 3},
    [WALK_LS_EXEC] = {"ls-exec", "ls -l root (exec `ls -l >/dev/null`)", 1.5, 3},
    [WALK_CAT] = {"cat", "cat every NAME/meta.json", 1.5, 12},
    [WALK_STAT] = {"stat", "stat every file of every service", 2.5, 12},
};

/* One timed walk; ms, or a negative value if it could not be done. */
static double walk_once(enum walk_kind k, const char *root, unsigned expect)
{
	struct walk_result res = {0};
	int64_t t0 = bench_now_ns();
	double ms;

	switch (k) {
	case WALK_LS:
		for_each_service(root, ls_one, &res);
		break;
	case WALK_LS_EXEC:
		exec_ls(root, &res);
		break;
	case WALK_CAT:
		for_each_service(root, cat_one, &res);
		break;
	case WALK_STAT:
		for_each_service(root, stat_one, &res);
		break;
	default:
		break;
	}
	ms = bench_ms_since(t0);
	if (bench_got_stop)
		return -1;
	if (res.err || (k != WALK_LS_EXEC && res.entries != expect)) {
		fprintf(stderr, PROG ": walk %s of %s: %lu of %u services%s%s\n", walks[k].key,
		        root, res.entries, expect, res.err ? ", first error: " : "",
		        res.err ? strerror(res.err) : "");
		return -1;
	}
	return ms;
}

/* Cold walk (caller arranges the fresh mount), then the median of PASSES warm ones. */
static int walk_cold_warm(const struct config *c, enum walk_kind k, const char *root, unsigned n,
                          bool count, double *ret_cold, double *ret_warm)
{
	double v[16];
	unsigned passes = k == WALK_LS_EXEC ? 1 : c->passes;
	long from;
	char what[96];

	drop_caches();
	from = log_size();
	if ((*ret_cold = walk_once(k, root, n)) < 0)
		return -1;
	if (count) {
		snprintf(what, sizeof(what), "%s cold @%u", walks[k].key, n);
		print_requests(what, from);
	}
	for (unsigned i = 0; i < passes; i++) {
		from = log_size();
		if ((v[i] = walk_once(k, root, n)) < 0)
			return -1;
		if (count && i == 0) {
			snprintf(what, sizeof(what), "%s warm @%u", walks[k].key, n);
			print_requests(what, from);
		}
	}
	*ret_warm = median(v, passes);
	return 0;
}

/* ---- the tmpfs copy ---- */

static int copy_file(int sfd, int dfd, const char *name, const struct stat *sb)
{
	char buf[65536 + 1], link[PATH_MAX];
	ssize_t n;
	int in, out, ret = 0;

	if (S_ISLNK(sb->st_mode)) {
		n = readlinkat(sfd, name, link, sizeof(link) - 1);
		if (n < 0)
			return -errno;
		link[n] = '\0';
		return symlinkat(link, dfd, name) < 0 ? -errno : 0;
	}
	if ((in = openat(sfd, name, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, sb->st_mode & 07777);
	if (out < 0) {
		ret = -errno;
		close(in);
		return ret;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (bench_write_all(out, buf, (size_t)n) < 0) {
			ret = -errno;
			break;
		}
	if (n < 0)
		ret = -errno;
	close(in);
	close(out);
	return ret;
}

/* Every directory and file of the mount MNT into the directory DST. */
static int copy_tree(const char *mnt, const char *dst)
{
	int sroot = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int droot = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *e;
	int ret = 0;
	DIR *d;

	if (sroot < 0 || droot < 0 || !(d = fdopendir(sroot))) {
		ret = -errno;
		goto out;
	}
	sroot = -1;
	while (!ret && (e = readdir(d)) && !bench_got_stop) {
		struct stat sb;
		int s, t;
		DIR *sd;
		struct dirent *f;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
			ret = -errno;
			break;
		}
		if (!S_ISDIR(sb.st_mode)) {
			ret = copy_file(dirfd(d), droot, e->d_name, &sb);
			continue;
		}
		/* made writable while filling, its mode set after */
		if (mkdirat(droot, e->d_name, 0700) < 0 ||
		    (s = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			ret = -errno;
			break;
		}
		if ((t = openat(droot, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    !(sd = fdopendir(s))) {
			ret = -errno;
			close(s);
			if (t >= 0)
				close(t);
			break;
		}
		while (!ret && (f = readdir(sd))) {
			struct stat fsb;

			if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
				continue;
			if (fstatat(dirfd(sd), f->d_name, &fsb, AT_SYMLINK_NOFOLLOW) < 0)
				ret = -errno;
			else
				ret = copy_file(dirfd(sd), t, f->d_name, &fsb);
		}
		closedir(sd);
		if (!ret && fchmod(t, sb.st_mode & 07777) < 0)
			ret = -errno;
		close(t);
	}
	closedir(d);
out:
	if (sroot >= 0)
		close(sroot);
	if (droot >= 0)
		close(droot);
	return ret;
}

/* ---- the table ---- */

struct row {
	char figure[96];
	double svcfs, base; /* < 0: not measured */
	char unit[16];
	char target[48];
	double limit; /* ratio target (0: none, see target) */
};

static struct row rows[MAX_ROWS];
static unsigned nrows;
static char notes[8192];

static struct row *add_row(const char *unit, double svcfs, double base, const char *target,
                           double limit, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static struct row *add_row(const char *unit, double svcfs, double base, const char *target,
                           double limit, const char *fmt, ...)
{
	struct row *r;
	va_list ap;

	if (nrows == MAX_ROWS)
		return NULL;
	r = &rows[nrows++];
	va_start(ap, fmt);
	vsnprintf(r->figure, sizeof(r->figure), fmt, ap);
	va_end(ap);
	r->svcfs = svcfs;
	r->base = base;
	r->limit = limit;
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	snprintf(r->target, sizeof(r->target), "%s", target ? target : "");
	return r;
}

static void add_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void add_note(const char *fmt, ...)
{
	size_t len = strlen(notes);
	va_list ap;

	if (len >= sizeof(notes) - 2)
		return;
	va_start(ap, fmt);
	vsnprintf(notes + len, sizeof(notes) - len, fmt, ap);
	va_end(ap);
	len = strlen(notes);
	if (len < sizeof(notes) - 1) {
		notes[len] = '\n';
		notes[len + 1] = '\0';
	}
}

static void fmt_value(char *buf, size_t len, double v, const char *unit)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else if (v >= 1000)
		snprintf(buf, len, "%.0f %s", v, unit);
	else if (v >= 10)
		snprintf(buf, len, "%.1f %s", v, unit);
	else
		snprintf(buf, len, "%.2f %s", v, unit);
}

static void print_table(void)
{
	printf("%-58s %14s %14s %8s  %s\n", "figure", "svcfs", "baseline", "ratio", "SPEC target");
	for (unsigned i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		char a[32], b[32], ratio[32] = "-", verdict[16] = "";

		fmt_value(a, sizeof(a), r->svcfs, r->unit);
		fmt_value(b, sizeof(b), r->base, r->unit);
		if (r->svcfs >= 0 && r->base > 0) {
			double q = r->svcfs / r->base;

			snprintf(ratio, sizeof(ratio), "%.2fx", q);
			if (r->limit > 0)
				snprintf(verdict, sizeof(verdict), " %s",
				         q <= r->limit ? "(met)" : "(missed)");
		}
		printf("%-58s %14s %14s %8s  %s%s\n", r->figure, a, b, ratio, r->target, verdict);
	}
}

/* ---- figures ---- */

static int mount_tmpfs(void)
{
	snprintf(st.tmpfs, sizeof(st.tmpfs), "%s/t", st.top);
	if (mkdir(st.tmpfs, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": mkdir %s: %s\n", st.tmpfs, strerror(errno));
		return -1;
	}
	if (mount("svcfs-bench", st.tmpfs, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
		fprintf(stderr, PROG ": mount -t tmpfs %s: %s\n", st.tmpfs, strerror(errno));
		return -1;
	}
	st.tmpfs_mounted = true;
	return 0;
}

struct size_result {
	double bind_ms, mount_ms, visible_ms;
	unsigned helpers;
	long rss_start_kib, rss_walked_kib;
	double cold[WALK_KINDS], warm[WALK_KINDS];
	double tcold[WALK_KINDS], twarm[WALK_KINDS];
	double cpu_pct;
};

/* Fresh mount of the size's BACKING: the daemon restarted, the services kept. */
static int remount(const struct config *c, const char *backing, const char *mnt, unsigned n,
                   struct size_result *r)
{
	double mount_ms, visible_ms;

	if (stop_daemon(false) < 0)
		return -1;
	if (mount_svcfs(c, backing, mnt, n, &mount_ms, &visible_ms) < 0)
		return -1;
	if (r->visible_ms <= 0) {
		r->mount_ms = mount_ms;
		r->visible_ms = visible_ms;
	}
	return 0;
}

static int run_size(const struct config *c, unsigned n, struct size_result *r)
{
	char backing[300], mnt[300];
	int ret = -1;

	memset(r, 0, sizeof(*r));
	r->cpu_pct = -1;
	for (unsigned k = 0; k < WALK_KINDS; k++)
		r->cold[k] = r->warm[k] = r->tcold[k] = r->twarm[k] = -1;
	snprintf(backing, sizeof(backing), "%s/b%u", st.top, n);
	snprintf(mnt, sizeof(mnt), "%s/m%u", st.top, n);
	if (mkdir(backing, 0755) < 0 || mkdir(mnt, 0755) < 0) {
		fprintf(stderr, PROG ": mkdir %s: %s\n", backing, strerror(errno));
		return -1;
	}
	fprintf(stderr, PROG ": %u services: binding...\n", n);
	if (spawn_helpers(backing, 's', n, &r->bind_ms, &r->helpers) < 0)
		goto out;
	fprintf(stderr, PROG ": %u services bound by %u helpers in %.0f ms; walking...\n", n,
	        r->helpers, r->bind_ms);

	/* each cold figure on a fresh mount */
	for (unsigned k = 0; k < WALK_KINDS && !bench_got_stop; k++) {
		if (remount(c, backing, mnt, n, r) < 0)
			goto out;
		if (k == 0) {
			bench_sleep_ms(1000);
			r->rss_start_kib = proc_rss_kib(st.daemon);
		}
		if (walk_cold_warm(c, k, mnt, n, c->requests, &r->cold[k], &r->warm[k]) < 0)
			goto out;
	}
	if (bench_got_stop)
		goto out;
	/* the last mount has every file looked up */
	r->rss_walked_kib = proc_rss_kib(st.daemon);
	if (n == c->cpu_services && c->cpu_seconds) {
		long long t0, t1;
		int64_t w0;

		fprintf(stderr, PROG ": %u idle services: daemon CPU over %u s...\n", n,
		        c->cpu_seconds);
		bench_sleep_ms(2000);
		w0 = bench_now_ns();
		t0 = proc_cpu_ticks(st.daemon);
		bench_sleep_ms(c->cpu_seconds * 1000);
		t1 = proc_cpu_ticks(st.daemon);
		if (bench_got_stop)
			goto out;
		if (t0 >= 0 && t1 >= t0)
			r->cpu_pct = 100.0 * (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) /
			             ((double)(bench_now_ns() - w0) / 1e9);
	}

	/* baseline: the same tree on tmpfs */
	fprintf(stderr, PROG ": %u services: copying the tree to tmpfs...\n", n);
	if (mount_tmpfs() < 0)
		goto out;
	{
		int64_t t0 = bench_now_ns();
		int e = copy_tree(mnt, st.tmpfs);

		if (e < 0) {
			fprintf(stderr, PROG ": copying %s to %s: %s\n", mnt, st.tmpfs,
			        strerror(-e));
			goto out;
		}
		fprintf(stderr, PROG ": copied in %.0f ms\n", bench_ms_since(t0));
	}
	if (stop_daemon(false) < 0)
		goto out;
	for (unsigned k = 0; k < WALK_KINDS && !bench_got_stop; k++)
		if (walk_cold_warm(c, k, st.tmpfs, n, false, &r->tcold[k], &r->twarm[k]) < 0)
			goto out;
	ret = bench_got_stop ? -1 : 0;
out:
	unmount_tmpfs();
	end_figure(backing, mnt, ret < 0);
	return ret;
}

static long rss_empty(const struct config *c)
{
	char backing[300], mnt[300];
	long kib = -1;

	snprintf(backing, sizeof(backing), "%s/b0", st.top);
	snprintf(mnt, sizeof(mnt), "%s/m0", st.top);
	if (mkdir(backing, 0755) < 0 || mkdir(mnt, 0755) < 0)
		return -1;
	if (mount_svcfs(c, backing, mnt, 0, NULL, NULL) == 0) {
		bench_sleep_ms(1000);
		kib = proc_rss_kib(st.daemon);
	}
	stop_daemon(kib < 0 && !bench_got_stop);
	rmdir(backing);
	rmdir(mnt);
	return kib;
}

/* ---- churn ---- */

enum churn_mode { CHURN_CLOSE, CHURN_KILL };

/* A "kill" holder: bind COUNT sockets from FIRST (step STEP), say so, wait to be killed. */
static _Noreturn void holder_main(const char *dir, unsigned first, unsigned step, unsigned count,
                                  unsigned total, int ready)
{
	for (unsigned j = 0, i = first; j < count && i < total; j++, i += step) {
		struct sockaddr_un a;
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (s < 0 || fill_addr(&a, dir, 'k', i) < 0 ||
		    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0)
			_exit(1);
	}
	if (bench_write_all(ready, "r", 1) < 0)
		_exit(1);
	for (;;)
		pause();
}

static int churn_worker(enum churn_mode mode, const char *dir, unsigned k, unsigned w,
                        unsigned total)
{
	if (mode == CHURN_CLOSE) {
		int fds[CHURN_WINDOW];
		unsigned ids[CHURN_WINDOW], head = 0, live = 0;

		for (unsigned i = k; i < total || live; i += w) {
			struct sockaddr_un a;

			if (live == CHURN_WINDOW || (i >= total && live)) {
				unsigned o = head;

				close(fds[o]);
				fill_addr(&a, dir, 'c', ids[o]);
				if (unlink(a.sun_path) < 0)
					return -1;
				head = (head + 1) % CHURN_WINDOW;
				live--;
			}
			if (i >= total)
				continue;
			int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (s < 0 || fill_addr(&a, dir, 'c', i) < 0 ||
			    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0)
				return -1;
			fds[(head + live) % CHURN_WINDOW] = s;
			ids[(head + live) % CHURN_WINDOW] = i;
			live++;
		}
		return 0;
	}
	/* kill: holders of CHURN_BATCH sockets each, SIGKILLed once listening */
	for (unsigned i = k; i < total; i += w * CHURN_BATCH) {
		pid_t me = getpid(), pid;
		int p[2], status;
		char ch;

		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			bench_child_reset(me, SIGKILL);
			close(p[0]);
			holder_main(dir, i, w, CHURN_BATCH, total, p[1]);
		}
		close(p[1]);
		if (read(p[0], &ch, 1) != 1) {
			close(p[0]);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		close(p[0]);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return 0;
}

/* Root listing of MNT is exactly the long-lived p* set of size LIVE. */
static bool view_is(const char *mnt, unsigned live, unsigned *ret_seen)
{
	DIR *d = opendir(mnt);
	struct dirent *e;
	unsigned n = 0, other = 0;

	if (!d)
		return false;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (e->d_name[0] == 'p' && strlen(e->d_name) == 7)
			n++;
		else
			other++;
	}
	closedir(d);
	*ret_seen = n + other;
	return n == live && other == 0;
}

struct churn_result {
	double ops_ms;     /* workers started → all exited */
	double correct_ms; /* workers started → view correct (mounted) */
	bool correct, stable;
};

static int run_churn(const struct config *c, enum churn_mode mode, bool mounted,
                     struct churn_result *r)
{
	char backing[300], mnt[300];
	int start[2] = {-1, -1}, ret = -1;
	unsigned w = c->workers, seen = 0;
	int64_t t0, end;

	memset(r, 0, sizeof(*r));
	snprintf(backing, sizeof(backing), "%s/c%d%d", st.top, (int)mode, (int)mounted);
	snprintf(mnt, sizeof(mnt), "%s/cm%d", st.top, (int)mode);
	if (mkdir(backing, 0755) < 0 || (mounted && mkdir(mnt, 0755) < 0)) {
		fprintf(stderr, PROG ": mkdir %s: %s\n", backing, strerror(errno));
		return -1;
	}
	if (mounted) {
		if (c->churn_live && spawn_helpers(backing, 'p', c->churn_live, NULL, NULL) < 0)
			goto out;
		if (mount_svcfs(c, backing, mnt, c->churn_live, NULL, NULL) < 0)
			goto out;
	}
	if (pipe2(start, O_CLOEXEC) < 0)
		goto out;
	for (unsigned k = 0; k < w; k++) {
		pid_t parent = getpid(), pid = fork();
		char ch;

		if (pid < 0) {
			perror(PROG ": fork");
			goto out;
		}
		if (pid == 0) {
			bench_child_reset(parent, SIGKILL);
			close(start[1]);
			if (read(start[0], &ch, 1) != 1)
				_exit(1);
			if (churn_worker(mode, backing, k, w, c->churn) < 0) {
				fprintf(stderr, PROG ": churn worker %u: %s\n", k, strerror(errno));
				_exit(1);
			}
			_exit(0);
		}
		st.workers[k] = pid;
	}
	close(start[0]);
	start[0] = -1;
	bench_sleep_ms(100);
	t0 = bench_now_ns();
	for (unsigned k = 0; k < w; k++)
		if (bench_write_all(start[1], "g", 1) < 0)
			goto out;
	for (unsigned k = 0; k < w; k++) {
		int status;

		while (waitpid(st.workers[k], &status, 0) < 0 && errno == EINTR && !bench_got_stop)
			;
		st.workers[k] = 0;
		if (bench_got_stop)
			goto out;
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, PROG ": churn worker %u failed\n", k);
			goto out;
		}
	}
	r->ops_ms = bench_ms_since(t0);
	if (!mounted) {
		ret = 0;
		goto out;
	}
	end = t0 + (int64_t)CHURN_TIMEOUT_MS * 1000000;
	while (!(r->correct = view_is(mnt, c->churn_live, &seen))) {
		if (bench_got_stop || daemon_died())
			goto out;
		if (bench_now_ns() > end) {
			add_note(
			    "churn %s: the view still showed %u services (%u expected) %u s after "
			    "the start",
			    mode == CHURN_CLOSE ? "close" : "kill", seen, c->churn_live,
			    CHURN_TIMEOUT_MS / 1000);
			break;
		}
		bench_sleep_ms(2);
	}
	r->correct_ms = bench_ms_since(t0);
	if (r->correct) {
		bench_sleep_ms(1000);
		r->stable = view_is(mnt, c->churn_live, &seen);
		if (!r->stable)
			add_note(
			    "churn %s: the view was right after %.0f ms, then showed %u services "
			    "1 s later",
			    mode == CHURN_CLOSE ? "close" : "kill", r->correct_ms, seen);
	}
	ret = 0;
out:
	if (start[0] >= 0)
		close(start[0]);
	if (start[1] >= 0)
		close(start[1]);
	kill_workers();
	end_figure(backing, mnt, mounted && ret < 0);
	return ret;
}

/* ---- header ---- */

static void print_header(const struct config *c)
{
	struct utsname u;
	char cpu[256], mem[64], version[128], load[128];

	uname(&u);
	bench_proc_field("/proc/cpuinfo", "model name", cpu, sizeof(cpu));
	bench_proc_field("/proc/meminfo", "MemTotal", mem, sizeof(mem));
	bench_proc_field("/proc/loadavg", "", load, sizeof(load));
	bench_svcfs_version(c->svcfs, version, sizeof(version));
	printf(PROG "\n");
	printf("command: %s\n", cmdline);
	printf("machine: Linux %s %s, nproc %ld, %s, RAM %s, load average %s\n", u.release,
	       u.machine, sysconf(_SC_NPROCESSORS_ONLN), cpu, mem, load);
	printf("svcfs:   %s (%s), run as: svcfs -f%s%s%s BACKING MOUNTPOINT\n", c->svcfs, version,
	       c->requests ? " -d" : "", c->svcfs_opts ? " -o " : "",
	       c->svcfs_opts ? c->svcfs_opts : "");
	printf("walks:   cold = first walk after a fresh mount (drop_caches before); warm = median "
	       "of %u walks after it (ls exec: 1); temporary directories in %s\n\n",
	       c->passes, c->dir);
	fflush(stdout);
}

/* ---- main ---- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: " PROG " [--sizes N,N,...] [--passes N] [--churn N] [--churn-live N]\n"
	    "                        [--workers N] [--cpu-services N] [--cpu-seconds S]\n"
	    "                        [--no-churn] [--requests] [--svcfs PATH] [--svcfs-opts OPTS]\n"
	    "                        [--dir DIR] [--visible-timeout S]\n"
	    "  --sizes N,...        services per walk figure (default 1000,10000,100000)\n"
	    "  --passes N           warm walks, the median is shown (default 3)\n"
	    "  --churn N            services registered and vanished per churn figure "
	    "(default 20000)\n"
	    "  --churn-live N       long-lived services during churn (default 1000)\n"
	    "  --workers N          churn worker processes (default 4)\n"
	    "  --cpu-services N     idle services for the CPU figure, one of --sizes "
	    "(default 10000)\n"
	    "  --cpu-seconds S      how long the CPU figure watches (default 30; 0: skip)\n"
	    "  --no-churn           skip the churn figures\n"
	    "  --requests           run svcfs with -d and count the FUSE requests of each walk\n"
	    "                       (timings are then not representative)\n"
	    "  --svcfs PATH         daemon to measure (default %s)\n"
	    "  --svcfs-opts OPTS    passed to svcfs as -o OPTS\n"
	    "  --dir DIR            parent of the temporary directory (default /dev/shm, else "
	    "/tmp)\n"
	    "  --visible-timeout S  how long to wait for the services to show (default 600)\n"
	    "Needs root (tmpfs, drop_caches, RLIMIT_NOFILE) and /dev/fuse.\n",
	    SVCFS_BIN);
}

static int parse_sizes(const char *arg, struct config *c)
{
	char buf[256], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", arg);
	c->nsizes = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (c->nsizes == MAX_SIZES) {
			fprintf(stderr, PROG ": --sizes: at most %d sizes\n", MAX_SIZES);
			return -1;
		}
		if (bench_parse_uint("--sizes", tok, 1, 900000, &c->sizes[c->nsizes++]) < 0)
			return -1;
	}
	return c->nsizes ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"sizes", required_argument, NULL, 'S'},
	    {"passes", required_argument, NULL, 'P'},
	    {"churn", required_argument, NULL, 'c'},
	    {"churn-live", required_argument, NULL, 'l'},
	    {"workers", required_argument, NULL, 'w'},
	    {"cpu-services", required_argument, NULL, 'C'},
	    {"cpu-seconds", required_argument, NULL, 'T'},
	    {"no-churn", no_argument, NULL, 'n'},
	    {"requests", no_argument, NULL, 'r'},
	    {"svcfs", required_argument, NULL, 'b'},
	    {"svcfs-opts", required_argument, NULL, 'o'},
	    {"dir", required_argument, NULL, 'd'},
	    {"visible-timeout", required_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config c = {
	    .svcfs = SVCFS_BIN,
	    /* tmpfs, as /run is: a BACKING on a disk with online discard here
	     * took 19 s to bind 100 000 services and as long to remove */
	    .dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
	    .sizes = {1000, 10000, 100000},
	    .nsizes = 3,
	    .passes = 3,
	    .churn = 20000,
	    .churn_live = 1000,
	    .workers = 4,
	    .cpu_services = 10000,
	    .cpu_seconds = 30,
	    .visible_timeout_s = 600,
	};
	const struct bench_opt opts[] = {
	    {.val = 'P', .name = "--passes", .min = 1, .max = 15, .num = &c.passes},
	    {.val = 'c', .name = "--churn", .min = 1, .max = 10000000, .num = &c.churn},
	    {.val = 'l', .name = "--churn-live", .min = 0, .max = 100000, .num = &c.churn_live},
	    {.val = 'w', .name = "--workers", .min = 1, .max = MAX_WORKERS, .num = &c.workers},
	    {.val = 'C', .name = "--cpu-services", .min = 0, .max = 900000, .num = &c.cpu_services},
	    {.val = 'T', .name = "--cpu-seconds", .min = 0, .max = 3600, .num = &c.cpu_seconds},
	    {.val = 'V',
	     .name = "--visible-timeout",
	     .min = 1,
	     .max = 86400,
	     .num = &c.visible_timeout_s},
	    {.val = 'b', .str = &c.svcfs},
	    {.val = 'o', .str = &c.svcfs_opts},
	    {.val = 'd', .str = &c.dir},
	    {.val = 'n', .flag = &c.no_churn},
	    {.val = 'r', .flag = &c.requests},
	    {.val = 0},
	};
	struct size_result res[MAX_SIZES];
	bool have[MAX_SIZES] = {false};
	char path[PATH_MAX];
	long rss0;
	int opt, opt_exit, rc = 0;
	size_t len = 0;

	for (int i = 0; i < argc && len < sizeof(cmdline) - 1; i++)
		len += (size_t)snprintf(cmdline + len, sizeof(cmdline) - len, "%s%s", i ? " " : "",
		                        argv[i]);
	while ((opt = bench_next_option(argc, argv, longopts, opts, usage, &opt_exit)) > 0)
		if (opt == 'S' && parse_sizes(optarg, &c) < 0)
			return 2;
	if (opt < 0)
		return opt_exit;
	if (bench_check_svcfs(c.svcfs) < 0)
		return 1;
	snprintf(path, sizeof(path), "%s/svcfs-tree.XXXXXX", c.dir);
	if (strlen(path) >= sizeof(st.top) || !mkdtemp(path)) {
		fprintf(stderr, PROG ": mkdtemp %s: %s\n", path,
		        strlen(path) >= sizeof(st.top) ? "too long; use --dir" : strerror(errno));
		return 1;
	}
	memcpy(st.top, path, strlen(path) + 1);
	bench_install_signals(NULL);
	atexit(cleanup_all);
	print_header(&c);

	rss0 = rss_empty(&c);
	for (unsigned i = 0; i < c.nsizes && !bench_got_stop; i++) {
		if (run_size(&c, c.sizes[i], &res[i]) < 0) {
			rc = 1;
			if (!bench_got_stop)
				fprintf(stderr, PROG ": the walks at %u services are incomplete\n",
				        c.sizes[i]);
			continue;
		}
		have[i] = true;
	}

	struct churn_result ch[2][2];
	bool churn_ok[2] = {false, false};
	for (int m = 0; m < 2 && !c.no_churn && !bench_got_stop; m++) {
		fprintf(stderr, PROG ": churn (%s), %u services...\n", m ? "kill" : "close",
		        c.churn);
		churn_ok[m] = run_churn(&c, (enum churn_mode)m, true, &ch[m][1]) == 0 &&
		              run_churn(&c, (enum churn_mode)m, false, &ch[m][0]) == 0;
		if (!churn_ok[m] && !bench_got_stop)
			rc = 1;
	}
	if (bench_got_stop) {
		cleanup_all();
		fprintf(stderr, PROG ": interrupted by signal %d; cleaned up\n",
		        (int)bench_got_stop);
		return 130;
	}

	/* the table */
	for (unsigned i = 0; i < c.nsizes; i++) {
		const struct size_result *r = &res[i];
		unsigned n = c.sizes[i];

		if (!have[i])
			continue;
		for (unsigned k = 0; k < WALK_KINDS; k++) {
			char t[48];

			snprintf(t, sizeof(t), "warm <= %.1fx tmpfs", walks[k].warm_target);
			add_row("ms", r->warm[k], r->twarm[k], t, walks[k].warm_target,
			        "%s, warm @%u", walks[k].what, n);
			snprintf(t, sizeof(t), "cold <= %.0fx tmpfs", walks[k].cold_target);
			add_row("ms", r->cold[k], r->tcold[k], t, walks[k].cold_target,
			        "%s, cold @%u", walks[k].what, n);
		}
		add_note(
		    "@%u: %u services bound (with sidecars) by %u helper processes in %.0f ms; "
		    "svcfs mounted %.0f ms and showed all of them %.0f ms after it started",
		    n, n, r->helpers, r->bind_ms, r->mount_ms, r->visible_ms);
	}
	if (rss0 > 0)
		add_row("KiB", (double)rss0, -1, "(reference)", 0, "daemon RSS, 0 services");
	for (unsigned i = 0; i < c.nsizes; i++) {
		const struct size_result *r = &res[i];
		unsigned n = c.sizes[i];
		bool at100k = n >= 100000;

		if (!have[i])
			continue;
		add_row("KiB", (double)r->rss_start_kib, -1, "", 0,
		        "daemon RSS @%u, idle after start", n);
		add_row("KiB", (double)r->rss_walked_kib, -1, "", 0,
		        "daemon RSS @%u, after the walks (all looked up)", n);
		if (rss0 > 0) {
			add_row("B", (double)(r->rss_start_kib - rss0) * 1024 / n, -1,
			        at100k ? "<= 2048 B/service @100000" : "(2 KiB @100000)", 0,
			        "  bytes per service above 0 services @%u, idle", n);
			add_row("B", (double)(r->rss_walked_kib - rss0) * 1024 / n, -1, "", 0,
			        "  bytes per service above 0 services @%u, walked", n);
		}
		if (r->cpu_pct >= 0)
			add_row("%", r->cpu_pct, -1, "<= 2% of one core", 0,
			        "daemon CPU, %u idle services, %u s, default interval", n,
			        c.cpu_seconds);
	}
	for (int m = 0; m < 2 && !c.no_churn; m++) {
		const char *what = m ? "kill (SIGKILL holders)" : "close+unlink";

		if (!churn_ok[m])
			continue;
		add_row("/s", ch[m][1].correct ? c.churn / (ch[m][1].correct_ms / 1e3) : 0,
		        c.churn / (ch[m][0].ops_ms / 1e3), ">= 5000 services/s", 0,
		        "churn %s: services/s until view correct", what);
		add_row("/s", c.churn / (ch[m][1].ops_ms / 1e3), c.churn / (ch[m][0].ops_ms / 1e3),
		        "", 0, "  churn %s: services/s of the workers alone", what);
		add_note("churn %s: %u services by %u workers with %u long-lived; operations took "
		         "%.0f ms (%.0f ms without svcfs), view %s %.0f ms after the start%s",
		         what, c.churn, c.workers, c.churn_live, ch[m][1].ops_ms, ch[m][0].ops_ms,
		         ch[m][1].correct ? "exactly the long-lived set" : "NOT right",
		         ch[m][1].correct_ms, ch[m][1].stable ? ", still so 1 s later" : "");
	}
	print_table();
	printf("\nnotes:\n%s", notes);
	printf("tmpfs: drop_caches does not evict tmpfs (its pages and dentries are the data): "
	       "cold tmpfs is about warm tmpfs.\n");
	printf("ratios with no verdict have no SPEC target of that form.\n");
	return rc;
}
