/*
 * svcfs-bench-latency — how fast a service that starts listening shows up in
 * an svcfs mount, and how fast a crashed one leaves it, as an inotify watcher
 * of the mount sees it (SPEC §5, §6). A benchmark: it prints figures and does
 * not pass or fail; it exits non-zero only when it could not measure.
 *
 * Each figure is measured in its own temporary BACKING (and MOUNTPOINT, with
 * its own `svcfs -f`), one sample at a time, with a pause before each sample
 * so that the daemon is idle when it starts. Events the bench did not wait
 * for are counted and the first few named ("unexpected events"):
 *
 *   appear    a pre-forked child (waiting on a pipe, so fork is not measured)
 *             does socket(), bind(), listen() on BACKING/sN.sock. t0 is taken
 *             in the child just before bind() and passed back through shared
 *             memory; t1 when the bench's blocking read() of an inotify watch
 *             on MOUNTPOINT returns IN_CREATE|IN_ISDIR "sN". Then
 *             stat(MOUNTPOINT/sN) must succeed. The child then removes its
 *             socket and exits (IN_DELETE awaited, not timed).
 *   crash     the owner of a visible sN (MOUNTPOINT/sN/pid names it) is
 *             SIGKILLed: t0 just before kill(), t1 at IN_DELETE|IN_ISDIR "sN".
 *             Then stat(MOUNTPOINT/sN) must fail with ENOENT. The stale
 *             socket files stay until the figure ends.
 *   baseline  no svcfs: the same bind, watched by inotify on BACKING itself
 *             (IN_CREATE "sN.sock") — what a plain directory gives; it never
 *             reports a crash.
 *
 * --services N binds N background services (bgNNNNN.sock, one helper process,
 * RLIMIT_NOFILE raised, which accepts and closes every connection as a real
 * server would) in every BACKING before svcfs starts; measuring begins once
 * all of them are visible in the mount.
 *
 * svcfs reads liveness from sock_diag dumps, which walk every Unix socket of
 * the network namespace, not only BACKING's: the header says how many there
 * were. --netns measures in a new, empty network namespace instead.
 *
 * Cleanup, also on errors and SIGINT/SIGTERM/SIGHUP: SIGTERM to the daemon
 * (umount2(MNT_DETACH) if it does not exit within 30 s), SIGKILL to the
 * children, rm -rf of the temporary directory. Children die with the bench
 * (PR_SET_PDEATHSIG) if it is killed outright.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SVCFS_BIN
#error "SVCFS_BIN (path of the svcfs daemon) must be defined"
#endif

#define MOUNT_TIMEOUT_MS 10000
#define VISIBLE_TIMEOUT_MS 120000
#define TERM_TIMEOUT_MS 30000
#define MAX_CONSECUTIVE_MISSING 3
#define LOG_TAIL_LINES 20
#define LOG_VERBOSE_LINES 4000

struct config {
	const char *svcfs;
	const char *svcfs_opts; /* value of -o, or NULL */
	const char *dir;	/* parent of the temporary directories */
	unsigned samples;
	unsigned services;
	unsigned pause_ms;
	unsigned timeout_ms;
	bool json;
	bool netns; /* measure in a new network namespace */
};

struct figure {
	const char *key;
	const char *what;
	int64_t *ns;	     /* latencies collected */
	unsigned n;	     /* how many */
	unsigned missing;    /* timed event never came within the timeout */
	unsigned check_fail; /* stat after the event disagreed with it */
	unsigned setup_fail; /* untimed step failed (crash: no IN_CREATE; others: no IN_DELETE) */
	unsigned stray;	     /* unrelated events read from the watcher */
	char stray_first[3][256]; /* the first few of them */
	unsigned owner_unknown; /* crash: VIEW/pid missing or not the owner's pid */
	bool ran;
	/* mounted figures: the daemon of this figure */
	bool mounted;
	double mount_ms;      /* svcfs started → mounted */
	double bg_visible_ms; /* svcfs started → every background service visible */
	int daemon_status;    /* wait status */
	bool daemon_exited;
	double shutdown_ms;
	bool umount_fallback;
	char note[512];
};

/* Written by a service child, read by the bench after the event. */
struct shared {
	_Atomic int64_t t0;
	_Atomic int err;
};

/* Everything cleanup must undo. */
static struct {
	char top[192]; /* short: BACKING/NAME.sock must fit a sun_path */
	char backing[256];
	char mnt[256];
	char log[256];
	pid_t daemon, helper, child;
	int ctl; /* write end of the current child's control pipe */
	int ifd; /* the inotify watcher */
} st = {.ctl = -1, .ifd = -1};

static struct shared *shm;
static volatile sig_atomic_t got_stop, got_alarm;
static bool verbose;

/* ---- small helpers ---- */

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !got_stop)
		;
}

static void on_stop(int sig)
{
	got_stop = sig;
}

static void on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop; /* no SA_RESTART: a blocking read returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Interrupt blocking calls after MS, then every 100 ms (a signal that lands
 * just before a read() blocks is followed by another one). */
static void watchdog_arm(unsigned ms)
{
	struct itimerval it = {
		.it_value = {.tv_sec = ms / 1000, .tv_usec = (long)(ms % 1000) * 1000},
		.it_interval = {.tv_sec = 0, .tv_usec = 100000},
	};

	got_alarm = 0;
	setitimer(ITIMER_REAL, &it, NULL);
}

static void watchdog_disarm(void)
{
	struct itimerval it;

	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	got_alarm = 0;
}

/* In a forked child: own process group (a terminal's ^C goes to the bench
 * only, which cleans up in order), die with the bench, default signals. */
static void child_reset(pid_t parent, int deathsig)
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

/* Keep only fds 0-2 and KEEP, which becomes fd 3. */
static void child_fds(int keep)
{
	if (keep != 3 && dup2(keep, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0);
}

static int write_byte(int fd, char c)
{
	ssize_t n;

	do
		n = write(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? 0 : -1;
}

static int read_byte(int fd, char *c)
{
	ssize_t n;

	do
		n = read(fd, c, 1);
	while (n < 0 && errno == EINTR);
	return (int)n;
}

/* waitpid with a deadline; true when PID has been reaped (status in *status). */
static bool wait_pid_for(pid_t pid, unsigned ms, int *status)
{
	int64_t end = now_ns() + (int64_t)ms * 1000000;

	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (now_ns() >= end)
			return false;
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
}

static void kill_and_reap(pid_t *pid)
{
	int status;

	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	*pid = 0;
}

static void describe_status(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)%s", WTERMSIG(status),
			 strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
	else
		snprintf(buf, len, "wait status 0x%x", status);
}

/* ---- mount table ---- */

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

/* Is PATH a mount point of type fuse.svcfs? Reads /proc, never touches PATH. */
static bool svcfs_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char mp[PATH_MAX], type[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(sep + 3, "%63s", type) != 1)
			continue;
		unescape(mp);
		found = strcmp(mp, path) == 0 && strcmp(type, "fuse.svcfs") == 0;
	}
	free(line);
	fclose(f);
	return found;
}

/* ---- temporary directory ---- */

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

static void print_log_tail(void)
{
	FILE *f;
	unsigned keep = verbose ? LOG_VERBOSE_LINES : LOG_TAIL_LINES;
	char **lines = calloc(keep, sizeof(*lines));
	char *line = NULL;
	size_t cap = 0;
	unsigned long total = 0;

	if (!lines)
		return;
	if (!st.log[0] || !(f = fopen(st.log, "re"))) {
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
	fprintf(stderr, "svcfs-bench-latency: last %lu of %lu lines of the daemon's log:\n",
		total < keep ? total : keep, total);
	for (unsigned long i = total < keep ? 0 : total - keep; i < total; i++)
		fprintf(stderr, "  | %s", lines[i % keep] ? lines[i % keep] : "\n");
	for (unsigned i = 0; i < keep; i++)
		free(lines[i]);
	free(lines);
}

/* Undo everything the current figure set up. Safe to call twice. */
static void cleanup(struct figure *f, bool show_log)
{
	int status;

	watchdog_disarm();
	if (st.ifd >= 0)
		close(st.ifd);
	st.ifd = -1;
	if (st.ctl >= 0)
		close(st.ctl);
	st.ctl = -1;
	kill_and_reap(&st.child);
	if (st.daemon > 0) {
		int64_t t = now_ns();
		bool fallback = false;

		kill(st.daemon, SIGTERM);
		if (!wait_pid_for(st.daemon, TERM_TIMEOUT_MS, &status)) {
			fprintf(stderr,
				"svcfs-bench-latency: svcfs (pid %d) did not exit within %u ms of "
				"SIGTERM; umount2(MNT_DETACH)\n",
				(int)st.daemon, TERM_TIMEOUT_MS);
			umount2(st.mnt, MNT_DETACH);
			fallback = true;
			if (!wait_pid_for(st.daemon, 2000, &status)) {
				fprintf(stderr, "svcfs-bench-latency: svcfs still running; SIGKILL\n");
				kill(st.daemon, SIGKILL);
				while (waitpid(st.daemon, &status, 0) < 0 && errno == EINTR)
					;
			}
			show_log = true;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			show_log = true;
		if (f) {
			f->daemon_exited = true;
			f->daemon_status = status;
			f->shutdown_ms = (double)(now_ns() - t) / 1e6;
			f->umount_fallback = fallback;
		}
		st.daemon = 0;
	}
	if (st.mnt[0] && svcfs_mounted(st.mnt)) {
		fprintf(stderr, "svcfs-bench-latency: %s still mounted after svcfs exited; "
				"umount2(MNT_DETACH)\n", st.mnt);
		umount2(st.mnt, MNT_DETACH);
		if (f)
			f->umount_fallback = true;
	}
	kill_and_reap(&st.helper);
	if (show_log)
		print_log_tail();
	if (st.top[0])
		nftw(st.top, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	st.top[0] = st.backing[0] = st.mnt[0] = st.log[0] = '\0';
}

static void cleanup_at_exit(void)
{
	cleanup(NULL, false);
}

/* ---- processes ---- */

/* The service child: wait for 'b', then socket/bind/listen on PATH with t0
 * just before bind(); wait again; on anything (or EOF) remove the socket and
 * exit. A crash sample SIGKILLs it instead. */
static void service_main(const char *path)
{
	struct sockaddr_un a;
	char c;
	int s;

	if (read_byte(3, &c) != 1 || c != 'b')
		_exit(0);
	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	memcpy(a.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		atomic_store(&shm->err, errno);
		_exit(1);
	}
	atomic_store(&shm->t0, now_ns());
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 16) < 0) {
		atomic_store(&shm->err, errno);
		_exit(1);
	}
	read_byte(3, &c);
	unlink(path);
	close(s);
	_exit(0);
}

static int spawn_service(const char *path)
{
	pid_t parent = getpid(), pid;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("svcfs-bench-latency: pipe");
		return -1;
	}
	atomic_store(&shm->t0, 0);
	atomic_store(&shm->err, 0);
	pid = fork();
	if (pid < 0) {
		perror("svcfs-bench-latency: fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		child_reset(parent, SIGKILL);
		child_fds(p[0]);
		service_main(path);
	}
	close(p[0]);
	st.child = pid;
	st.ctl = p[1];
	return 0;
}

/* Ask the current child to remove its socket and exit; reap it. */
static void finish_service(void)
{
	int status;

	if (st.ctl >= 0) {
		write_byte(st.ctl, 'q');
		close(st.ctl);
		st.ctl = -1;
	}
	if (st.child > 0 && !wait_pid_for(st.child, 2000, &status))
		kill_and_reap(&st.child);
	st.child = 0;
}

/* The helper's life after binding: accept and close every connection (svcfs
 * connects once to each service to learn its owner), as a real server would,
 * so that no queued connection lingers and grows the kernel's socket table
 * that every sock_diag dump walks. */
static _Noreturn void helper_serve(const int *fds, unsigned n)
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

/* One process binding N listening sockets BACKING/bgNNNNN.sock. */
static int spawn_helper(unsigned n)
{
	pid_t parent = getpid(), pid;
	char msg[512];
	size_t got = 0;
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("svcfs-bench-latency: pipe");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		perror("svcfs-bench-latency: fork");
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct rlimit rl;
		rlim_t need = (rlim_t)n + 64;
		int *fds;

		child_reset(parent, SIGKILL);
		child_fds(p[1]);
		fds = calloc(n ? n : 1, sizeof(*fds));
		if (!fds) {
			dprintf(3, "out of memory");
			_exit(1);
		}
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
			rl.rlim_cur = need;
			if (rl.rlim_max < need)
				rl.rlim_max = need;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
				dprintf(3, "setrlimit(RLIMIT_NOFILE, %llu): %s",
					(unsigned long long)need, strerror(errno));
				_exit(1);
			}
		}
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr_un a;
			int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

			memset(&a, 0, sizeof(a));
			a.sun_family = AF_UNIX;
			if (snprintf(a.sun_path, sizeof(a.sun_path), "%s/bg%05u.sock", st.backing, i) >=
			    (int)sizeof(a.sun_path)) {
				fprintf(stderr, "bench: %s: path too long for a socket\n", st.backing);
				_exit(1);
			}
			if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
			    listen(s, 64) < 0) {
				dprintf(3, "background service %u of %u (%s): %s", i + 1, n,
					a.sun_path, strerror(errno));
				_exit(1);
			}
			fds[i] = s;
		}
		dprintf(3, "ok");
		close(3);
		helper_serve(fds, n);
	}
	close(p[1]);
	st.helper = pid;
	watchdog_arm(60000);
	while (got < sizeof(msg) - 1) {
		ssize_t r = read(p[0], msg + got, sizeof(msg) - 1 - got);
		if (r < 0 && errno == EINTR && !got_stop && !got_alarm)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	watchdog_disarm();
	close(p[0]);
	msg[got] = '\0';
	if (strcmp(msg, "ok") != 0) {
		if (!got_stop)
			fprintf(stderr, "svcfs-bench-latency: binding %u background services: %s\n",
				n, got ? msg : "no answer from the helper within 60 s");
		return -1;
	}
	return 0;
}

static int start_daemon(const struct config *c)
{
	pid_t parent = getpid(), pid;
	const char *argv[8];
	int i = 0;

	argv[i++] = c->svcfs;
	argv[i++] = "-f";
	if (c->svcfs_opts) {
		argv[i++] = "-o";
		argv[i++] = c->svcfs_opts;
	}
	argv[i++] = st.backing;
	argv[i++] = st.mnt;
	argv[i] = NULL;
	pid = fork();
	if (pid < 0) {
		perror("svcfs-bench-latency: fork");
		return -1;
	}
	if (pid == 0) {
		int fd;

		/* SIGTERM if the bench dies: svcfs unmounts cleanly */
		child_reset(parent, SIGTERM);
		fd = open(st.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, STDOUT_FILENO);
			dup2(fd, STDERR_FILENO);
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		close_range(3, ~0u, 0);
		execv(c->svcfs, (char *const *)argv);
		dprintf(STDERR_FILENO, "exec %s: %s\n", c->svcfs, strerror(errno));
		_exit(127);
	}
	st.daemon = pid;
	return 0;
}

static int wait_mounted(void)
{
	int64_t end = now_ns() + (int64_t)MOUNT_TIMEOUT_MS * 1000000;
	int status;

	while (!got_stop) {
		if (waitpid(st.daemon, &status, WNOHANG) == st.daemon) {
			char why[128];

			describe_status(status, why, sizeof(why));
			fprintf(stderr, "svcfs-bench-latency: svcfs exited before mounting (%s)\n",
				why);
			st.daemon = 0;
			return -1;
		}
		if (svcfs_mounted(st.mnt))
			return 0;
		if (now_ns() > end) {
			fprintf(stderr, "svcfs-bench-latency: %s not mounted %u ms after svcfs started\n",
				st.mnt, MOUNT_TIMEOUT_MS);
			return -1;
		}
		sleep_ms(1);
	}
	return -1;
}

/* Entries of the mount's root named bg*. */
static long count_background(void)
{
	DIR *d = opendir(st.mnt);
	struct dirent *e;
	long n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "bg", 2) == 0)
			n++;
	closedir(d);
	return n;
}

static int wait_background_visible(unsigned n)
{
	int64_t end = now_ns() + (int64_t)VISIBLE_TIMEOUT_MS * 1000000;
	long seen = 0;
	int status;

	while (!got_stop) {
		seen = count_background();
		if (seen >= (long)n)
			return 0;
		if (waitpid(st.daemon, &status, WNOHANG) == st.daemon) {
			char why[128];

			describe_status(status, why, sizeof(why));
			fprintf(stderr, "svcfs-bench-latency: svcfs died (%s) while %ld of %u background "
					"services were visible\n", why, seen, n);
			st.daemon = 0;
			return -1;
		}
		if (now_ns() > end) {
			fprintf(stderr, "svcfs-bench-latency: only %ld of %u background services visible "
					"in %s after %u ms\n", seen, n, st.mnt, VISIBLE_TIMEOUT_MS);
			return -1;
		}
		sleep_ms(50);
	}
	return -1;
}

/* ---- the watcher ---- */

/* An event nobody waited for: count it, keep the first few, show it with --verbose. */
static void note_stray(struct figure *f, const char *when, const struct inotify_event *ev)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {
		{IN_CREATE, "IN_CREATE"}, {IN_DELETE, "IN_DELETE"}, {IN_ISDIR, "IN_ISDIR"},
		{IN_MODIFY, "IN_MODIFY"}, {IN_ATTRIB, "IN_ATTRIB"}, {IN_Q_OVERFLOW, "IN_Q_OVERFLOW"},
		{IN_IGNORED, "IN_IGNORED"}, {IN_UNMOUNT, "IN_UNMOUNT"},
	};
	char mask[128] = "", desc[256];

	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (ev->mask & bits[i].bit)
			snprintf(mask + strlen(mask), sizeof(mask) - strlen(mask), "%s%s",
				 mask[0] ? "|" : "", bits[i].name);
	if (snprintf(desc, sizeof(desc), "%s \"%.32s\" %s", mask[0] ? mask : "?",
		     ev->len ? ev->name : "", when) >= (int)sizeof(desc))
		desc[sizeof(desc) - 1] = '\0'; /* a shortened description is fine */
	if (f->stray < sizeof(f->stray_first) / sizeof(f->stray_first[0]))
		memcpy(f->stray_first[f->stray], desc, sizeof(desc));
	f->stray++;
	if (verbose)
		fprintf(stderr, "svcfs-bench-latency: %s: unexpected event %s\n", f->key, desc);
}

/* Discard whatever the watcher holds (events of earlier steps). */
static void drain_events(struct figure *f, const char *when)
{
	_Alignas(struct inotify_event) char buf[4096];
	int avail = 0;

	while (ioctl(st.ifd, FIONREAD, &avail) == 0 && avail > 0) {
		ssize_t n = read(st.ifd, buf, sizeof(buf));
		if (n <= 0)
			break;
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			note_stray(f, when, ev);
		}
	}
}

/*
 * Blocking reads of the watcher until NAME arrives with every bit of WANT;
 * *t1 is the time that read() returned. 0: found; 1: not within TIMEOUT_MS;
 * -1: stopped by a signal or the watch is gone (message printed).
 */
static int wait_event(const char *name, uint32_t want, unsigned timeout_ms, int64_t *t1,
		      struct figure *f)
{
	_Alignas(struct inotify_event) char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)];
	int ret = 1;

	watchdog_arm(timeout_ms);
	for (;;) {
		ssize_t n = read(st.ifd, buf, sizeof(buf));
		int64_t t = now_ns();

		if (n < 0 && errno == EINTR) {
			if (got_stop) {
				ret = -1;
				break;
			}
			if (got_alarm)
				break;
			continue;
		}
		if (n <= 0) {
			fprintf(stderr, "svcfs-bench-latency: read(inotify): %s\n",
				n < 0 ? strerror(errno) : "end of file");
			ret = -1;
			break;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & (IN_IGNORED | IN_UNMOUNT)) {
				fprintf(stderr, "svcfs-bench-latency: the watch on %s is gone (%s)\n",
					st.mnt[0] ? st.mnt : st.backing,
					ev->mask & IN_UNMOUNT ? "unmounted" : "IN_IGNORED");
				ret = -1;
			} else if (ev->mask & IN_Q_OVERFLOW) {
				fprintf(stderr, "svcfs-bench-latency: inotify queue overflow\n");
				ret = -1;
			} else if (ret == 1 && ev->len && (ev->mask & want) == want &&
				   strcmp(ev->name, name) == 0) {
				if (t1)
					*t1 = t;
				ret = 0;
			} else {
				char when[80];

				snprintf(when, sizeof(when), "while waiting for \"%.32s\"", name);
				note_stray(f, when, ev);
			}
		}
		if (ret != 1)
			break;
	}
	watchdog_disarm();
	return ret;
}

/* ---- figures ---- */

static int setup(const struct config *c, struct figure *f, bool mount)
{
	char path[PATH_MAX];
	const char *watched;
	int64_t t;

	snprintf(path, sizeof(path), "%s/svcfs-bench.XXXXXX", c->dir);
	if (!mkdtemp(path)) {
		fprintf(stderr, "svcfs-bench-latency: mkdtemp %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (strlen(path) >= sizeof(st.top)) {
		fprintf(stderr, "svcfs-bench-latency: %s: path too long; use --dir\n", path);
		rmdir(path);
		return -1;
	}
	memcpy(st.top, path, strlen(path) + 1);
	snprintf(st.backing, sizeof(st.backing), "%s/b", st.top);
	if (mkdir(st.backing, 0755) < 0) {
		fprintf(stderr, "svcfs-bench-latency: mkdir %s: %s\n", st.backing, strerror(errno));
		return -1;
	}
	if (strlen(st.backing) + 20 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "svcfs-bench-latency: %s is too long for a socket address; use --dir\n",
			st.backing);
		return -1;
	}
	if (c->services && spawn_helper(c->services) < 0)
		return -1;
	if (mount) {
		snprintf(st.mnt, sizeof(st.mnt), "%s/m", st.top);
		snprintf(st.log, sizeof(st.log), "%s/svcfs.log", st.top);
		if (mkdir(st.mnt, 0755) < 0) {
			fprintf(stderr, "svcfs-bench-latency: mkdir %s: %s\n", st.mnt, strerror(errno));
			return -1;
		}
		f->mounted = true;
		t = now_ns();
		if (start_daemon(c) < 0 || wait_mounted() < 0)
			return -1;
		f->mount_ms = (double)(now_ns() - t) / 1e6;
		if (c->services && wait_background_visible(c->services) < 0)
			return -1;
		f->bg_visible_ms = (double)(now_ns() - t) / 1e6;
	}
	watched = mount ? st.mnt : st.backing;
	st.ifd = inotify_init1(IN_CLOEXEC);
	if (st.ifd < 0 || inotify_add_watch(st.ifd, watched, IN_CREATE | IN_DELETE | IN_ONLYDIR) < 0) {
		fprintf(stderr, "svcfs-bench-latency: inotify on %s: %s\n", watched, strerror(errno));
		return -1;
	}
	return 0;
}

/* After a timed event did not come: explain, and say whether to go on. */
static int after_missing(const struct config *c, struct figure *f, const char *name,
			 const char *event, unsigned *consecutive)
{
	int status, err = atomic_load(&shm->err);

	f->missing++;
	fprintf(stderr, "svcfs-bench-latency: %s sample %s: no %s within %u ms\n", f->key, name,
		event, c->timeout_ms);
	if (err) {
		fprintf(stderr, "svcfs-bench-latency: the service child failed: %s\n", strerror(err));
		return -1;
	}
	if (st.daemon > 0 && waitpid(st.daemon, &status, WNOHANG) == st.daemon) {
		char why[128];

		describe_status(status, why, sizeof(why));
		snprintf(f->note, sizeof(f->note), "svcfs died during the figure (%s)", why);
		fprintf(stderr, "svcfs-bench-latency: %s\n", f->note);
		st.daemon = 0;
		return -1;
	}
	if (++*consecutive >= MAX_CONSECUTIVE_MISSING) {
		snprintf(f->note, sizeof(f->note),
			 "stopped after %u consecutive missing events (daemon alive)", *consecutive);
		fprintf(stderr, "svcfs-bench-latency: %s: %s\n", f->key, f->note);
		return -1;
	}
	return 0;
}

static void service_path(char *path, size_t len, const char *name)
{
	snprintf(path, len, "%s/%s.sock", st.backing, name);
}

/* appear / baseline: bind → IN_CREATE. */
static int run_appear(const struct config *c, struct figure *f, bool mount)
{
	unsigned consecutive = 0;

	for (unsigned i = 0; i < c->samples && !got_stop; i++) {
		char name[32], event_name[40], path[PATH_MAX], view[PATH_MAX];
		uint32_t want = mount ? IN_CREATE | IN_ISDIR : IN_CREATE;
		int64_t t1 = 0;
		struct stat sb;
		int r;

		snprintf(name, sizeof(name), "s%u", i);
		snprintf(event_name, sizeof(event_name), mount ? "%s" : "%s.sock", name);
		service_path(path, sizeof(path), name);
		if (spawn_service(path) < 0)
			return -1;
		sleep_ms(c->pause_ms);
		drain_events(f, "before a bind");
		if (write_byte(st.ctl, 'b') < 0)
			return -1;
		r = wait_event(event_name, want, c->timeout_ms, &t1, f);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (after_missing(c, f, name, mount ? "IN_CREATE|IN_ISDIR" : "IN_CREATE",
					  &consecutive) < 0)
				return -1;
		} else {
			consecutive = 0;
			f->ns[f->n++] = t1 - atomic_load(&shm->t0);
			if (verbose)
				fprintf(stderr, "svcfs-bench-latency: %s %s %.1f us\n", f->key, name,
					(double)f->ns[f->n - 1] / 1e3);
			if (mount) {
				snprintf(view, sizeof(view), "%s/%s", st.mnt, name);
				errno = 0;
				if (stat(view, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
					f->check_fail++;
					fprintf(stderr, "svcfs-bench-latency: after IN_CREATE, stat %s: %s\n",
						view, errno ? strerror(errno) : "not a directory");
				}
			} else if (lstat(path, &sb) < 0 || !S_ISSOCK(sb.st_mode)) {
				f->check_fail++;
			}
		}
		/* untimed: the child removes its socket and exits */
		finish_service();
		r = wait_event(event_name, mount ? IN_DELETE | IN_ISDIR : IN_DELETE, c->timeout_ms,
			       NULL, f);
		if (r < 0)
			return -1;
		if (r > 0) {
			f->setup_fail++;
			fprintf(stderr, "svcfs-bench-latency: %s sample %s: no IN_DELETE within %u ms "
					"after the socket was removed\n", f->key, name, c->timeout_ms);
		}
	}
	return got_stop ? -1 : 0;
}

/* VIEW/pid must name PID (svcfs knows the owner, so it can watch it). */
static int check_owner(const char *view, pid_t pid)
{
	char path[PATH_MAX + 8], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/pid", view);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "svcfs-bench-latency: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || (buf[n] = '\0', atol(buf) != (long)pid)) {
		fprintf(stderr, "svcfs-bench-latency: %s: '%s', the owner is %d\n", path,
			n > 0 ? buf : "", (int)pid);
		return -1;
	}
	return 0;
}

/* crash: visible service, SIGKILL its owner → IN_DELETE. */
static int run_crash(const struct config *c, struct figure *f)
{
	unsigned consecutive = 0;

	for (unsigned i = 0; i < c->samples && !got_stop; i++) {
		char name[32], path[PATH_MAX], view[PATH_MAX];
		int64_t t0, t1 = 0;
		struct stat sb;
		int r, status;

		snprintf(name, sizeof(name), "s%u", i);
		service_path(path, sizeof(path), name);
		snprintf(view, sizeof(view), "%s/%s", st.mnt, name);
		if (spawn_service(path) < 0)
			return -1;
		drain_events(f, "before a bind");
		if (write_byte(st.ctl, 'b') < 0)
			return -1;
		r = wait_event(name, IN_CREATE | IN_ISDIR, c->timeout_ms, NULL, f);
		if (r < 0)
			return -1;
		if (r > 0) {
			/* not a crash sample: the service never appeared */
			f->setup_fail++;
			fprintf(stderr, "svcfs-bench-latency: crash sample %s: the service never "
					"appeared (no IN_CREATE within %u ms)\n", name, c->timeout_ms);
			kill_and_reap(&st.child);
			close(st.ctl);
			st.ctl = -1;
			unlink(path);
			if (++consecutive >= MAX_CONSECUTIVE_MISSING) {
				snprintf(f->note, sizeof(f->note),
					 "stopped: %u services in a row never appeared", consecutive);
				return -1;
			}
			continue;
		}
		if (check_owner(view, st.child) < 0)
			f->owner_unknown++;
		sleep_ms(c->pause_ms); /* the daemon settles */
		drain_events(f, "before a kill");
		t0 = now_ns();
		kill(st.child, SIGKILL);
		r = wait_event(name, IN_DELETE | IN_ISDIR, c->timeout_ms, &t1, f);
		if (r < 0)
			return -1;
		if (r > 0) {
			if (after_missing(c, f, name, "IN_DELETE|IN_ISDIR", &consecutive) < 0)
				return -1;
		} else {
			consecutive = 0;
			f->ns[f->n++] = t1 - t0;
			if (verbose)
				fprintf(stderr, "svcfs-bench-latency: %s %s %.1f us\n", f->key, name,
					(double)f->ns[f->n - 1] / 1e3);
			errno = 0;
			if (stat(view, &sb) == 0 || errno != ENOENT) {
				f->check_fail++;
				fprintf(stderr, "svcfs-bench-latency: after IN_DELETE, stat %s: %s\n", view,
					errno ? strerror(errno) : "still there");
			}
		}
		while (waitpid(st.child, &status, 0) < 0 && errno == EINTR)
			;
		st.child = 0;
		close(st.ctl);
		st.ctl = -1;
		/* The stale socket file stays until the figure ends, as a crashed
		 * service's does. Removing it at once makes svcfs 0.1.0 show the dead
		 * service again for a moment (IN_CREATE, IN_DELETE) in about half the
		 * samples, which would land in the next sample. */
	}
	return got_stop ? -1 : 0;
}

static int run_figure(const struct config *c, struct figure *f)
{
	bool mount = strcmp(f->key, "baseline") != 0;
	int r;

	f->ns = calloc(c->samples ? c->samples : 1, sizeof(*f->ns));
	if (!f->ns)
		return -1;
	f->ran = true;
	r = setup(c, f, mount);
	if (r == 0)
		r = strcmp(f->key, "crash") == 0 ? run_crash(c, f) : run_appear(c, f, mount);
	cleanup(f, (r < 0 && !got_stop) || verbose);
	return r;
}

/* ---- report ---- */

/* Busy and total jiffies of every CPU so far (/proc/stat). */
static void cpu_times(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[10] = {0};
	FILE *f = fopen("/proc/stat", "re");

	*busy = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
		   &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 4) {
		for (int i = 0; i < 8; i++) /* guest time is already in user */
			*total += v[i];
		*busy = *total - v[3] - v[4]; /* less idle and iowait */
	}
	fclose(f);
}

static void loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "re");

	snprintf(buf, len, "?");
	if (f) {
		double a, b, c;
		if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
			snprintf(buf, len, "%.2f %.2f %.2f", a, b, c);
		fclose(f);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank. */
static double pct_us(const int64_t *v, unsigned n, double q)
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

static const char *fs_name(const char *path, char *buf, size_t len)
{
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC: return "tmpfs";
	case EXT4_SUPER_MAGIC: return "ext4";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case XFS_SUPER_MAGIC: return "xfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	default:
		snprintf(buf, len, "f_type 0x%lx", (unsigned long)sf.f_type);
		return buf;
	}
}

/* First line of `svcfs --version`. */
static void svcfs_version(const char *bin, char *buf, size_t len)
{
	pid_t parent = getpid(), pid;
	size_t got = 0;
	int p[2], status;

	snprintf(buf, len, "?");
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid = fork();
	if (pid == 0) {
		child_reset(parent, SIGKILL);
		dup2(p[1], STDOUT_FILENO);
		dup2(p[1], STDERR_FILENO);
		close_range(3, ~0u, 0);
		execl(bin, bin, "--version", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	if (pid > 0) {
		while (got < len - 1) {
			ssize_t r = read(p[0], buf + got, len - 1 - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		buf[got] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (!got)
			snprintf(buf, len, "?");
	}
	close(p[0]);
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

/* Unix sockets in this network namespace (what a sock_diag dump walks). */
static void unix_sockets(long *all, long *listening)
{
	FILE *f = fopen("/proc/net/unix", "re");
	char *line = NULL;
	size_t cap = 0;
	bool header = true;

	*all = *listening = -1;
	if (!f)
		return;
	*all = *listening = 0;
	while (getline(&line, &cap, f) > 0) {
		unsigned long flags;

		if (header) {
			header = false;
			continue;
		}
		(*all)++;
		/* Num RefCount Protocol Flags ...: __SO_ACCEPTCON (1 << 16) is listening */
		if (sscanf(line, "%*s %*s %*s %lx", &flags) == 1 && (flags & 0x10000))
			(*listening)++;
	}
	free(line);
	fclose(f);
}

struct machine_load {
	long unix_all, unix_listening;
	char loadavg_start[64], loadavg_end[64];
	double busy_pct; /* every CPU, every process (the bench's own included) */
};

static void report(const struct config *c, struct figure *figs, size_t nfigs,
		   const struct machine_load *ml)
{
	struct utsname u;
	cpu_set_t cpus;
	char opts[512], version[128], fsbuf[64], why[128];
	const char *fs = fs_name(c->dir, fsbuf, sizeof(fsbuf));
	int nproc = 0;

	uname(&u);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		nproc = CPU_COUNT(&cpus);
	svcfs_version(c->svcfs, version, sizeof(version));
	snprintf(opts, sizeof(opts), "-f%s%s", c->svcfs_opts ? " -o " : "",
		 c->svcfs_opts ? c->svcfs_opts : "");
	for (size_t i = 0; i < nfigs; i++)
		qsort(figs[i].ns, figs[i].n, sizeof(int64_t), cmp_i64);

	if (c->json) {
		printf("{\"machine\":{\"kernel\":");
		json_str(u.release);
		printf(",\"arch\":");
		json_str(u.machine);
		printf(",\"nproc\":%d,\"loadavg_start\":\"%s\",\"loadavg_end\":\"%s\","
		       "\"cpu_busy_pct\":%.1f,\"netns\":%s,\"unix_sockets\":%ld,"
		       "\"unix_listening\":%ld},\"svcfs\":{\"path\":",
		       nproc, ml->loadavg_start, ml->loadavg_end, ml->busy_pct,
		       c->netns ? "\"new\"" : "\"host\"", ml->unix_all, ml->unix_listening);
		json_str(c->svcfs);
		printf(",\"version\":");
		json_str(version);
		printf(",\"options\":");
		json_str(opts);
		printf("},\"dir\":");
		json_str(c->dir);
		printf(",\"dir_fs\":");
		json_str(fs);
		printf(",\"samples\":%u,\"services\":%u,\"pause_ms\":%u,\"timeout_ms\":%u,\"figures\":[",
		       c->samples, c->services, c->pause_ms, c->timeout_ms);
		for (size_t i = 0; i < nfigs; i++) {
			const struct figure *f = &figs[i];

			printf("%s{\"figure\":\"%s\",\"what\":", i ? "," : "", f->key);
			json_str(f->what);
			printf(",\"ran\":%s,\"samples\":%u,\"missing\":%u,\"check_failures\":%u,"
			       "\"setup_failures\":%u,\"unexpected_events\":%u,\"owner_unknown\":%u",
			       f->ran ? "true" : "false", f->n, f->missing, f->check_fail,
			       f->setup_fail, f->stray, f->owner_unknown);
			if (f->stray) {
				printf(",\"unexpected_first\":[");
				for (unsigned k = 0; k < f->stray && k < 3; k++) {
					printf("%s", k ? "," : "");
					json_str(f->stray_first[k]);
				}
				printf("]");
			}
			if (f->n)
				printf(",\"min_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
				       "\"max_us\":%.1f",
				       pct_us(f->ns, f->n, 0), pct_us(f->ns, f->n, 0.5),
				       pct_us(f->ns, f->n, 0.9), pct_us(f->ns, f->n, 0.99),
				       pct_us(f->ns, f->n, 1));
			if (f->mounted && f->ran) {
				printf(",\"mount_ms\":%.1f", f->mount_ms);
				if (c->services)
					printf(",\"background_visible_ms\":%.1f", f->bg_visible_ms);
				if (f->daemon_exited) {
					describe_status(f->daemon_status, why, sizeof(why));
					printf(",\"daemon_exit\":");
					json_str(why);
					printf(",\"shutdown_ms\":%.1f,\"umount_fallback\":%s",
					       f->shutdown_ms, f->umount_fallback ? "true" : "false");
				}
			}
			if (f->note[0]) {
				printf(",\"note\":");
				json_str(f->note);
			}
			printf("}");
		}
		printf("]}\n");
		return;
	}

	printf("svcfs-bench-latency\n");
	printf("machine: Linux %s %s, nproc %d; load average %s at start, %s at end; "
	       "CPUs %.0f%% busy during the run (all processes)\n",
	       u.release, u.machine, nproc, ml->loadavg_start, ml->loadavg_end, ml->busy_pct);
	printf("netns:   %s; %ld Unix sockets in it before the run (%ld listening), not counting "
	       "the background services\n",
	       c->netns ? "a new network namespace (--netns)" : "the host's network namespace",
	       ml->unix_all, ml->unix_listening);
	printf("svcfs:   %s (%s), run as: svcfs %s BACKING MOUNTPOINT%s\n", c->svcfs, version, opts,
	       c->svcfs_opts ? "" : " (every -o option at its default)");
	printf("setup:   %u samples per figure, sequential, %u ms pause before each; %u background "
	       "services; temporary directories in %s (%s); event timeout %u ms\n\n",
	       c->samples, c->pause_ms, c->services, c->dir, fs, c->timeout_ms);
	printf("%-48s %7s %9s %9s %9s %9s\n", "figure (latency in microseconds)", "samples", "p50",
	       "p90", "p99", "max");
	for (size_t i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];
		char label[64];

		snprintf(label, sizeof(label), "%-8s %s", f->key, f->what);
		if (!f->n) {
			printf("%-48s %7u %9s %9s %9s %9s\n", label, 0u, "-", "-", "-", "-");
			continue;
		}
		printf("%-48s %7u %9.1f %9.1f %9.1f %9.1f\n", label, f->n, pct_us(f->ns, f->n, 0.5),
		       pct_us(f->ns, f->n, 0.9), pct_us(f->ns, f->n, 0.99), pct_us(f->ns, f->n, 1));
	}
	printf("\n");
	for (size_t i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];

		if (!f->ran) {
			printf("%-8s not run\n", f->key);
			continue;
		}
		printf("%-8s missing events %u, %s %u/%u", f->key, f->missing,
		       strcmp(f->key, "crash") == 0 ? "gone (ENOENT) after event"
						     : "visible after event",
		       f->n - f->check_fail, f->n);
		if (f->setup_fail)
			printf(", untimed step failed %u", f->setup_fail);
		if (strcmp(f->key, "crash") == 0)
			printf(", owner pid shown before the kill %u/%u", f->n + f->missing - f->owner_unknown,
			       f->n + f->missing);
		printf(", unexpected events %u", f->stray);
		for (unsigned k = 0; k < f->stray && k < 3; k++)
			printf("%s%s", k ? "; " : " (", f->stray_first[k]);
		if (f->stray)
			printf("%s)", f->stray > 3 ? "; ..." : "");
		if (f->mounted)
			printf(", mounted %.0f ms after svcfs started", f->mount_ms);
		if (f->mounted && c->services)
			printf(", all %u background services visible after %.0f ms", c->services,
			       f->bg_visible_ms);
		if (f->mounted && f->daemon_exited) {
			describe_status(f->daemon_status, why, sizeof(why));
			printf(", svcfs %s %.0f ms after SIGTERM%s", why, f->shutdown_ms,
			       f->umount_fallback ? " (umount2 MNT_DETACH needed)" : "");
		}
		if (f->note[0])
			printf("; %s", f->note);
		printf("\n");
	}
}

/* ---- main ---- */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: svcfs-bench-latency [--svcfs PATH] [--samples N] [--services N] [--json]\n"
		"                           [--svcfs-opts OPTS] [--pause-ms MS] [--timeout-ms MS] [--dir DIR]\n"
		"                           [--netns] [--verbose]\n"
		"  --svcfs PATH       daemon to measure (default %s)\n"
		"  --samples N        samples per figure (default 200)\n"
		"  --services N       background services bound before measuring (default 0)\n"
		"  --json             one JSON object instead of the table\n"
		"  --svcfs-opts OPTS  passed to svcfs as -o OPTS (default: none)\n"
		"  --pause-ms MS      idle time before each sample (default 10)\n"
		"  --timeout-ms MS    how long to wait for an event (default 5000)\n"
		"  --dir DIR          where the temporary BACKING/MOUNTPOINT go (default $TMPDIR or /tmp)\n"
		"  --netns            run everything in a new network namespace, so that the host's\n"
		"                     other Unix sockets are not in svcfs's sock_diag dumps\n"
		"  --verbose          every sample and every unrelated event on stderr\n"
		"Needs root (or a FUSE-capable user) and /dev/fuse.\n",
		SVCFS_BIN);
}

static int parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		fprintf(stderr, "svcfs-bench-latency: %s: '%s' is not a number from %u to %u\n", opt, s,
			min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"svcfs", required_argument, NULL, 'b'},   {"samples", required_argument, NULL, 'n'},
		{"services", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"svcfs-opts", required_argument, NULL, 'o'}, {"pause-ms", required_argument, NULL, 'p'},
		{"timeout-ms", required_argument, NULL, 't'}, {"dir", required_argument, NULL, 'd'},
		{"netns", no_argument, NULL, 'N'},	     {"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},	     {NULL, 0, NULL, 0},
	};
	struct config c = {
		.svcfs = SVCFS_BIN,
		.samples = 200,
		.pause_ms = 10,
		.timeout_ms = 5000,
		.dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
	};
	struct figure figs[] = {
		{.key = "appear", .what = "bind -> IN_CREATE|IN_ISDIR on mount"},
		{.key = "crash", .what = "SIGKILL -> IN_DELETE|IN_ISDIR on mount"},
		{.key = "baseline", .what = "bind -> IN_CREATE on BACKING, no svcfs"},
	};
	size_t nfigs = sizeof(figs) / sizeof(figs[0]);
	struct machine_load ml;
	unsigned long long busy0, total0, busy1, total1;
	int opt, rc = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'b': c.svcfs = optarg; break;
		case 'n':
			if (parse_uint("--samples", optarg, 1, 10000000, &c.samples) < 0)
				return 2;
			break;
		case 's':
			if (parse_uint("--services", optarg, 0, 1000000, &c.services) < 0)
				return 2;
			break;
		case 'j': c.json = true; break;
		case 'o': c.svcfs_opts = optarg; break;
		case 'p':
			if (parse_uint("--pause-ms", optarg, 0, 60000, &c.pause_ms) < 0)
				return 2;
			break;
		case 't':
			if (parse_uint("--timeout-ms", optarg, 1, 3600000, &c.timeout_ms) < 0)
				return 2;
			break;
		case 'd': c.dir = optarg; break;
		case 'N': c.netns = true; break;
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (access(c.svcfs, X_OK) < 0) {
		fprintf(stderr, "svcfs-bench-latency: svcfs %s: %s\n", c.svcfs, strerror(errno));
		return 1;
	}
	if (access("/dev/fuse", R_OK | W_OK) < 0) {
		fprintf(stderr, "svcfs-bench-latency: /dev/fuse: %s\n", strerror(errno));
		return 1;
	}
	shm = mmap(NULL, sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("svcfs-bench-latency: mmap");
		return 1;
	}
	if (c.netns && unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "svcfs-bench-latency: unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return 1;
	}
	unix_sockets(&ml.unix_all, &ml.unix_listening);
	install_signals();
	atexit(cleanup_at_exit);
	loadavg(ml.loadavg_start, sizeof(ml.loadavg_start));
	cpu_times(&busy0, &total0);

	for (size_t i = 0; i < nfigs && !got_stop; i++) {
		if (run_figure(&c, &figs[i]) < 0) {
			rc = 1;
			if (got_stop)
				break;
			fprintf(stderr, "svcfs-bench-latency: figure %s incomplete (%u samples)\n",
				figs[i].key, figs[i].n);
		}
	}
	if (got_stop) {
		cleanup(NULL, false);
		fprintf(stderr, "svcfs-bench-latency: interrupted by signal %d; cleaned up\n",
			(int)got_stop);
		return 130;
	}
	loadavg(ml.loadavg_end, sizeof(ml.loadavg_end));
	cpu_times(&busy1, &total1);
	ml.busy_pct = total1 > total0 ? 100.0 * (double)(busy1 - busy0) / (double)(total1 - total0) : 0;
	report(&c, figs, nfigs, &ml);
	for (size_t i = 0; i < nfigs; i++)
		free(figs[i].ns);
	return rc;
}
