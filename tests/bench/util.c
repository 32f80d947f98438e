/*
 * The benchmarks' shared helpers (see util.h). Children are forked from the
 * bench's one thread; each sets itself up with bench_child_reset, so that
 * none outlives the bench. The svcfs daemon's life is start, wait for the
 * mount, stop: stop always ends with no daemon and no svcfs mount left at
 * MNT, forcing both when a clean SIGTERM does not do it.
 */
#include "svcfs-internal.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

volatile sig_atomic_t bench_got_stop;

/* ---- signals and time ---- */

static void on_stop(int sig)
{
	bench_got_stop = sig;
}

void bench_install_signals(void (*on_alarm)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop; /* no SA_RESTART: a blocking read returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (on_alarm) {
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double bench_ms_since(int64_t t0)
{
	return (double)(bench_now_ns() - t0) / 1e6;
}

void bench_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !bench_got_stop)
		;
}

/* ---- children ---- */

void bench_child_reset(pid_t parent, int deathsig)
{
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, deathsig);
	if (getppid() != parent)
		_exit(1);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
}

void bench_child_fds(int keep)
{
	if (keep == 3)
		fcntl(3, F_SETFD, 0);
	else if (dup2(keep, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0);
}

void bench_child_stdio(const char *log)
{
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
}

int bench_write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int bench_read_byte(int fd, char *c)
{
	ssize_t n;

	do
		n = read(fd, c, 1);
	while (n < 0 && errno == EINTR);
	return (int)n;
}

size_t bench_read_msg(int fd, char *buf, size_t len, unsigned timeout_ms)
{
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;
	size_t got = 0;

	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (got < len - 1 && !bench_got_stop && bench_now_ns() < end) {
		ssize_t r = read(fd, buf + got, len - 1 - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break;
		bench_sleep_ms(2);
	}
	buf[got] = '\0';
	return got;
}

bool bench_wait_pid_for(pid_t pid, unsigned ms, int *status)
{
	int64_t end = bench_now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (bench_now_ns() >= end)
			return false;
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
}

void bench_kill_and_reap(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	*pid = 0;
}

void bench_reap(pid_t *pid, unsigned ms)
{
	int status;

	if (*pid > 0 && !bench_wait_pid_for(*pid, ms, &status))
		bench_kill_and_reap(pid);
	*pid = 0;
}

/* ---- mounts, files, limits ---- */

bool bench_mounted(const char *path, const char *type)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX], t[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(sep + 3, "%63s", t) != 1)
			continue;
		svcfs_unescape_octal(mp);
		found = strcmp(mp, path) == 0 && strcmp(t, type) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static int rm_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void bench_rm_tree(const char *path)
{
	/* FTW_MOUNT: never into a mount that is still there */
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int bench_raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (rl.rlim_cur >= need)
		return 0;
	rl.rlim_cur = need;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* root may go up to fs.nr_open */
	return setrlimit(RLIMIT_NOFILE, &rl);
}

_Noreturn void bench_serve(const int *fds, unsigned n)
{
	struct epoll_event ev, evs[64];
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (ep < 0)
		for (;;)
			pause(); /* keep the sockets; connections stay queued */
	for (unsigned i = 0; i < n; i++) {
		ev.events = EPOLLIN;
		ev.data.fd = fds[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
	}
	for (;;) {
		int k = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < k; i++) {
			int c;

			while ((c = accept4(evs[i].data.fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
				close(c);
		}
	}
}

/* ---- the timed service child ---- */

_Noreturn static void service_main(const char *path, struct bench_service_shm *sh)
{
	struct sockaddr_un a;
	char c;
	int s;

	if (bench_read_byte(3, &c) != 1 || c != 'b')
		_exit(0);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		atomic_store(&sh->err, errno);
		_exit(1);
	}
	atomic_store(&sh->t0, bench_now_ns());
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		atomic_store(&sh->err, errno);
		_exit(1);
	}
	bench_read_byte(3, &c);
	unlink(path);
	close(s);
	_exit(0);
}

int bench_service_spawn(const char *path, struct bench_service_shm *sh, pid_t *ret_pid,
                        int *ret_ctl)
{
	pid_t parent = getpid(), pid;
	int p[2];

	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "%s: %s: too long for a socket address; use --dir\n", bench_prog,
		        path);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "%s: pipe: %s\n", bench_prog, strerror(errno));
		return -1;
	}
	atomic_store(&sh->t0, 0);
	atomic_store(&sh->err, 0);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", bench_prog, strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		bench_child_reset(parent, SIGKILL);
		bench_child_fds(p[0]);
		service_main(path, sh);
	}
	close(p[0]);
	*ret_pid = pid;
	*ret_ctl = p[1];
	return 0;
}

/* ---- the machine ---- */

int bench_check_svcfs(const char *svcfs)
{
	if (access(svcfs, X_OK) < 0) {
		fprintf(stderr, "%s: svcfs %s: %s\n", bench_prog, svcfs, strerror(errno));
		return -1;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		fprintf(stderr, "%s: /dev/fuse: %s\n", bench_prog, strerror(errno));
		return -1;
	}
	return 0;
}

void bench_svcfs_version(const char *svcfs, char *buf, size_t len)
{
	pid_t parent = getpid(), pid;
	int p[2], status;

	snprintf(buf, len, "?");
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		bench_child_reset(parent, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close_range(3, ~0u, 0);
		execl(svcfs, svcfs, "--version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (pid > 0) {
		bench_read_msg(p[0], buf, len, 5000);
		buf[strcspn(buf, "\n")] = '\0';
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!buf[0])
			snprintf(buf, len, "?");
	}
	close(p[0]);
}

void bench_proc_field(const char *path, const char *key, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	snprintf(buf, len, "?");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		const char *p;

		if (strncmp(line, key, strlen(key)) != 0)
			continue;
		p = strchr(line, ':');
		p = p ? p + 1 : line + strlen(key);
		p += strspn(p, " \t");
		snprintf(buf, len, "%s", p);
		buf[strcspn(buf, "\n")] = '\0';
		break;
	}
	free(line);
	fclose(f);
}

/* ---- the svcfs daemon ---- */

int bench_svcfs_start(const char *svcfs, const char *opts, bool debug, const char *backing,
                      const char *mnt, const char *log, pid_t *ret_pid)
{
	pid_t parent = getpid(), pid;
	const char *argv[10];
	int i = 0;

	argv[i++] = svcfs;
	argv[i++] = "-f";
	if (debug)
		argv[i++] = "-d";
	if (opts) {
		argv[i++] = "-o";
		argv[i++] = opts;
	}
	argv[i++] = backing;
	argv[i++] = mnt;
	argv[i] = NULL;
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", bench_prog, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		bench_child_reset(parent, SIGTERM); /* svcfs unmounts cleanly if the bench dies */
		bench_child_stdio(log);
		close_range(3, ~0u, 0);
		execv(svcfs, (char *const *)argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", svcfs, strerror(errno));
		_exit(127);
	}
	*ret_pid = pid;
	return 0;
}

int bench_svcfs_wait_mounted(pid_t *daemon, const char *mnt, unsigned timeout_ms, int *ret_status)
{
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	while (!bench_got_stop) {
		if (*daemon > 0 && waitpid(*daemon, ret_status, WNOHANG) == *daemon) {
			*daemon = 0;
			return 1;
		}
		if (bench_mounted(mnt, "fuse.svcfs"))
			return 0;
		if (bench_now_ns() > end)
			return 2;
		bench_sleep_ms(1);
	}
	return -1;
}

int bench_svcfs_stop(pid_t *daemon, const char *mnt, unsigned term_timeout_ms,
                     struct bench_svcfs_exit *ret)
{
	struct bench_svcfs_exit ex = {.status = 0};

	if (*daemon > 0) {
		int64_t t = bench_now_ns();

		kill(*daemon, SIGTERM);
		if (!bench_wait_pid_for(*daemon, term_timeout_ms, &ex.status)) {
			fprintf(stderr,
			        "%s: svcfs (pid %d) did not exit within %u ms of SIGTERM; "
			        "umount2(MNT_DETACH)\n",
			        bench_prog, (int)*daemon, term_timeout_ms);
			umount2(mnt, MNT_DETACH);
			ex.forced = true;
			if (!bench_wait_pid_for(*daemon, 2000, &ex.status)) {
				fprintf(stderr, "%s: svcfs still running; SIGKILL\n", bench_prog);
				kill(*daemon, SIGKILL);
				while (waitpid(*daemon, &ex.status, 0) < 0 && errno == EINTR)
					;
			}
		}
		ex.reaped = true;
		ex.ms = bench_ms_since(t);
		*daemon = 0;
	}
	if (mnt[0] && bench_mounted(mnt, "fuse.svcfs")) {
		fprintf(stderr, "%s: %s still mounted after svcfs exited; umount2(MNT_DETACH)\n",
		        bench_prog, mnt);
		umount2(mnt, MNT_DETACH);
		ex.detached = true;
	}
	if (ret)
		*ret = ex;
	if (ex.forced || ex.detached || !WIFEXITED(ex.status) || WEXITSTATUS(ex.status) != 0)
		return -1;
	return 0;
}

/* ---- logs and figures ---- */

void bench_print_log_tail(const char *what, const char *path, unsigned keep)
{
	char **lines = calloc(keep, sizeof(*lines));
	char *line = NULL;
	size_t cap = 0;
	unsigned long total = 0;
	FILE *f;

	if (!lines)
		return;
	if (!path[0] || !(f = fopen(path, "re"))) {
		free(lines);
		return;
	}
	while (getline(&line, &cap, f) > 0) {
		free(lines[total % keep]);
		lines[total % keep] = strdup(line);
		total++;
	}
	free(line);
	fclose(f);
	fprintf(stderr, "%s: last %lu of %lu lines of %s:\n", bench_prog,
	        total < keep ? total : keep, total, what);
	for (unsigned long i = total < keep ? 0 : total - keep; i < total; i++)
		fprintf(stderr, "  | %s", lines[i % keep] ? lines[i % keep] : "\n");
	for (unsigned i = 0; i < keep; i++)
		free(lines[i]);
	free(lines);
}

int bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

double bench_pct_us(const int64_t *v, unsigned n, double q)
{
	unsigned k;

	if (!n)
		return 0;
	k = (unsigned)((double)n * q + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1e3;
}

/* ---- options ---- */

int bench_parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "%s: %s: '%s' is not a number from %u to %u\n", bench_prog, opt, s,
		        min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* 1 when OPT is one of OPTS and set from ARG; 0 when it is none of them; -1
 * when ARG is not a number in its bounds (said). */
static int set_option(const struct bench_opt *opts, int opt, const char *arg)
{
	for (; opts->val; opts++) {
		if (opts->val != opt)
			continue;
		if (opts->num)
			return bench_parse_uint(opts->name, arg, opts->min, opts->max, opts->num) <
			               0
			           ? -1
			           : 1;
		if (opts->str)
			*opts->str = arg;
		if (opts->flag)
			*opts->flag = true;
		return 1;
	}
	return 0;
}

int bench_next_option(int argc, char **argv, const struct option *longopts,
                      const struct bench_opt *opts, void (*usage)(FILE *), int *ret_exit)
{
	int opt;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		int r;

		if (opt == 'h') {
			usage(stdout);
			*ret_exit = 0;
			return -1;
		}
		if (opt == '?') {
			usage(stderr);
			*ret_exit = 2;
			return -1;
		}
		r = set_option(opts, opt, optarg);
		if (r < 0) {
			*ret_exit = 2;
			return -1;
		}
		if (r == 0)
			return opt;
	}
	if (optind != argc) {
		usage(stderr);
		*ret_exit = 2;
		return -1;
	}
	return 0;
}
