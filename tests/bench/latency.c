/*
 * svcfs-bench-latency — how fast a service that starts listening shows up in
 * an svcfs mount, and how fast a crashed one leaves it, as an inotify watcher
 * of the mount sees it (SPEC §5, §6), beside what the alternatives give on
 * the same machine in the same run: D-Bus, a plain inotify watch of BACKING,
 * and a client polling BACKING every second. A benchmark: it prints figures
 * and their ratios and does not pass or fail; it exits non-zero only when it
 * could not measure.
 *
 * Each figure is measured in its own temporary BACKING (and MOUNTPOINT, with
 * its own `svcfs -f`; or its own dbus-daemon), one sample at a time, with a
 * pause before each sample so that the daemon is idle when it starts. Events
 * the bench did not wait for are counted and the first few named
 * ("unexpected events"):
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
 *   dbus-appear, dbus-crash
 *             a private dbus-daemon: RequestName -> NameOwnerChanged, and
 *             SIGKILL of the owner -> NameOwnerChanged (owner lost); see
 *             dbus.c. Built when libdbus-1 is found, else "not built".
 *   poll-appear, poll-crash
 *             no svcfs: the bench itself is a naive discoverer that every
 *             second (--poll-interval-ms) reads BACKING and connect()s to
 *             every socket in it. Services bind at uniformly random moments
 *             of a tick (up to 25 at a time, so a sample costs no full
 *             second); appear ends at the first connect() that succeeds,
 *             crash (SIGKILL at a random moment after that) at the first
 *             that is refused.
 *
 * Figures run in --rounds (3) rounds: each round measures every figure in
 * turn with its share of the samples (and its own daemon), so that other
 * load on the machine, which comes and goes, weighs on all figures alike.
 *
 * The summary gives each figure's median and p99, its ratio to D-Bus's
 * figure of the same kind (appear to RequestName, crash to owner lost) and,
 * for appear figures, to the plain inotify baseline; then the SPEC §6
 * targets for svcfs: p50 at most half of D-Bus's, p99 at most 500 us.
 *
 * --services N[,N...] (default 0,10000) measures appear and crash once for
 * each N, with N background services (bgNNNNN.sock, one helper process,
 * RLIMIT_NOFILE raised, which accepts and closes every connection as a real
 * server would) bound in BACKING before svcfs starts; measuring begins once
 * all of them are visible in the mount. The other figures have none.
 *
 * svcfs reads liveness from sock_diag dumps, which walk every Unix socket of
 * the network namespace, not only BACKING's: the header says how many there
 * were. --netns measures in a new, empty network namespace instead.
 *
 * Cleanup, also on errors and SIGINT/SIGTERM/SIGHUP: SIGTERM to the daemon
 * (umount2(MNT_DETACH) if it does not exit within 30 s) and to dbus-daemon,
 * SIGKILL to the children, rm -rf of the temporary directory. Children die with the bench
 * (PR_SET_PDEATHSIG) if it is killed outright.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
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

#include "util.h"
#ifdef SVCFS_BENCH_DBUS
#include "dbus.h"
#endif

#ifndef SVCFS_BIN
#error "SVCFS_BIN (path of the svcfs daemon) must be defined"
#endif

#define MOUNT_TIMEOUT_MS        10000
#define VISIBLE_TIMEOUT_MS      120000
#define TERM_TIMEOUT_MS         30000
#define MAX_CONSECUTIVE_MISSING 3
#define LOG_TAIL_LINES          20
#define LOG_VERBOSE_LINES       4000
#define MAX_SERVICE_COUNTS      4 /* --services N,N,... */
#define MAX_FIGURES             (2 * MAX_SERVICE_COUNTS + 5)
#define POLL_BATCH              25    /* poll figures: services measured at once */
#define TARGET_RATIO            0.5   /* SPEC §6: p50 at most half of D-Bus's */
#define TARGET_P99_US           500.0 /* SPEC §6: p99 at most 0.5 ms */

/* Which figures to run (--figures). */
enum {
	RUN_SVCFS = 1 << 0,
	RUN_DBUS = 1 << 1,
	RUN_INOTIFY = 1 << 2,
	RUN_POLL = 1 << 3,
};

enum kind {
	K_APPEAR,      /* svcfs: bind -> IN_CREATE on the mount */
	K_CRASH,       /* svcfs: SIGKILL -> IN_DELETE on the mount */
	K_INOTIFY,     /* bind -> IN_CREATE on BACKING */
	K_DBUS_APPEAR, /* RequestName -> NameOwnerChanged */
	K_DBUS_CRASH,  /* SIGKILL -> NameOwnerChanged, owner lost */
	K_POLL_APPEAR, /* bind -> a 1 s poller's connect() succeeds */
	K_POLL_CRASH,  /* SIGKILL -> a 1 s poller's connect() is refused */
};

struct config {
	const char *svcfs;
	const char *svcfs_opts; /* value of -o, or NULL */
	const char *dir;        /* parent of the temporary directories */
	unsigned samples;
	unsigned services[MAX_SERVICE_COUNTS]; /* background services, one run each */
	unsigned nservices;
	unsigned poll_samples;
	unsigned poll_interval_ms;
	unsigned run;    /* RUN_* */
	unsigned rounds; /* every figure in turn, samples / rounds each time */
	unsigned pause_ms;
	unsigned timeout_ms;
	bool json;
	bool netns; /* measure in a new network namespace */
};

struct figure {
	const char *key;
	const char *what;
	enum kind kind;
	unsigned services;   /* background services */
	int64_t *ns;         /* latencies collected */
	unsigned n;          /* how many */
	unsigned missing;    /* timed event never came within the timeout */
	unsigned check_fail; /* stat after the event disagreed with it */
	unsigned setup_fail; /* untimed step failed (crash: no IN_CREATE; others: no IN_DELETE) */
	unsigned stray;      /* unrelated events read from the watcher */
	char stray_first[3][256]; /* the first few of them */
	unsigned owner_unknown;   /* crash: VIEW/pid missing or not the owner's pid */
	bool ran;
	bool not_built; /* D-Bus figures without libdbus-1 */
	bool failed;    /* a round could not measure: no further rounds */
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

/* Everything cleanup must undo. */
static struct {
	char top[192]; /* short: BACKING/NAME.sock must fit a sun_path */
	char backing[256];
	char mnt[256];
	char log[256];
	pid_t daemon, helper, child;
	int ctl;                   /* write end of the current child's control pipe */
	int ifd;                   /* the inotify watcher */
	pid_t batch[POLL_BATCH];   /* poll figures: the services of a batch */
	int batch_ctl[POLL_BATCH]; /* their control pipes, valid while batch[i] > 0 */
} st = {.ctl = -1, .ifd = -1};

const char bench_prog[] = "svcfs-bench-latency";

static struct bench_service_shm *shm; /* POLL_BATCH slots; shm[0] for the single child */
static volatile sig_atomic_t got_alarm;
static bool verbose;

/* ---- small helpers ---- */

static void on_alarm(int sig)
{
	(void)sig;
	got_alarm = 1;
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

/* ---- cleanup ---- */

/* Undo everything the current figure set up. Safe to call twice. */
static void cleanup(struct figure *f, bool show_log)
{
	struct bench_svcfs_exit ex;

	watchdog_disarm();
	if (st.ifd >= 0)
		close(st.ifd);
	st.ifd = -1;
	if (st.ctl >= 0)
		close(st.ctl);
	st.ctl = -1;
	bench_kill_and_reap(&st.child);
	for (unsigned i = 0; i < POLL_BATCH; i++) {
		if (st.batch[i] > 0)
			close(st.batch_ctl[i]);
		bench_kill_and_reap(&st.batch[i]);
	}
#ifdef SVCFS_BENCH_DBUS
	bench_dbus_stop();
#endif
	bench_svcfs_stop(&st.daemon, st.mnt, TERM_TIMEOUT_MS, &ex);
	if (ex.reaped && (ex.forced || !WIFEXITED(ex.status) || WEXITSTATUS(ex.status) != 0))
		show_log = true;
	if (f && ex.reaped) {
		f->daemon_exited = true;
		f->daemon_status = ex.status;
		f->shutdown_ms = ex.ms;
		f->umount_fallback = ex.forced;
	}
	if (f && ex.detached)
		f->umount_fallback = true;
	bench_kill_and_reap(&st.helper);
	if (show_log)
		bench_print_log_tail("the daemon's log", st.log,
		                     verbose ? LOG_VERBOSE_LINES : LOG_TAIL_LINES);
	if (st.top[0])
		bench_rm_tree(st.top);
	st.top[0] = st.backing[0] = st.mnt[0] = st.log[0] = '\0';
}

static void cleanup_at_exit(void)
{
	cleanup(NULL, false);
}

/* ---- processes ---- */

static int spawn_service(const char *path)
{
	return bench_service_spawn(path, &shm[0], &st.child, &st.ctl);
}

/* Ask the current child to remove its socket and exit; reap it. */
static void finish_service(void)
{
	if (st.ctl >= 0) {
		bench_write_all(st.ctl, "q", 1);
		close(st.ctl);
		st.ctl = -1;
	}
	bench_reap(&st.child, 2000);
}

/* One process binding N listening sockets BACKING/bgNNNNN.sock. */
static int spawn_helper(unsigned n)
{
	pid_t parent = getpid(), pid;
	char msg[512];
	size_t got;
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
		rlim_t need = (rlim_t)n + 64;
		int *fds;

		bench_child_reset(parent, SIGKILL);
		bench_child_fds(p[1]);
		fds = calloc(n ? n : 1, sizeof(*fds));
		if (!fds) {
			dprintf(3, "out of memory");
			_exit(1);
		}
		if (bench_raise_nofile(need) < 0) {
			dprintf(3, "setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)need,
			        strerror(errno));
			_exit(1);
		}
		for (unsigned i = 0; i < n; i++) {
			struct sockaddr_un a;
			int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

			memset(&a, 0, sizeof(a));
			a.sun_family = AF_UNIX;
			if (snprintf(a.sun_path, sizeof(a.sun_path), "%s/bg%05u.sock", st.backing,
			             i) >= (int)sizeof(a.sun_path)) {
				fprintf(stderr, "bench: %s: path too long for a socket\n",
				        st.backing);
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
		bench_serve(fds, n);
	}
	close(p[1]);
	st.helper = pid;
	got = bench_read_msg(p[0], msg, sizeof(msg), 60000);
	close(p[0]);
	if (strcmp(msg, "ok") != 0) {
		if (!bench_got_stop)
			fprintf(stderr, "svcfs-bench-latency: binding %u background services: %s\n",
			        n, got ? msg : "no answer from the helper within 60 s");
		return -1;
	}
	return 0;
}

static int start_daemon(const struct config *c)
{
	return bench_svcfs_start(c->svcfs, c->svcfs_opts, false, st.backing, st.mnt, st.log,
	                         &st.daemon);
}

static int wait_mounted(void)
{
	char why[128];
	int status;

	switch (bench_svcfs_wait_mounted(&st.daemon, st.mnt, MOUNT_TIMEOUT_MS, &status)) {
	case 0:
		return 0;
	case 1:
		describe_status(status, why, sizeof(why));
		fprintf(stderr, "svcfs-bench-latency: svcfs exited before mounting (%s)\n", why);
		return -1;
	case 2:
		fprintf(stderr, "svcfs-bench-latency: %s not mounted %u ms after svcfs started\n",
		        st.mnt, MOUNT_TIMEOUT_MS);
		return -1;
	default:
		return -1;
	}
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
	int64_t end = bench_now_ns() + (int64_t)VISIBLE_TIMEOUT_MS * 1000000;
	long seen = 0;
	int status;

	while (!bench_got_stop) {
		seen = count_background();
		if (seen >= (long)n)
			return 0;
		if (waitpid(st.daemon, &status, WNOHANG) == st.daemon) {
			char why[128];

			describe_status(status, why, sizeof(why));
			fprintf(stderr,
			        "svcfs-bench-latency: svcfs died (%s) while %ld of %u background "
			        "services were visible\n",
			        why, seen, n);
			st.daemon = 0;
			return -1;
		}
		if (bench_now_ns() > end) {
			fprintf(stderr,
			        "svcfs-bench-latency: only %ld of %u background services visible "
			        "in %s after %u ms\n",
			        seen, n, st.mnt, VISIBLE_TIMEOUT_MS);
			return -1;
		}
		bench_sleep_ms(50);
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
	    {IN_CREATE, "IN_CREATE"},   {IN_DELETE, "IN_DELETE"},
	    {IN_ISDIR, "IN_ISDIR"},     {IN_MODIFY, "IN_MODIFY"},
	    {IN_ATTRIB, "IN_ATTRIB"},   {IN_Q_OVERFLOW, "IN_Q_OVERFLOW"},
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
		int64_t t = bench_now_ns();

		if (n < 0 && errno == EINTR) {
			if (bench_got_stop) {
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
				fprintf(stderr,
				        "svcfs-bench-latency: the watch on %s is gone (%s)\n",
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

/* The figure's temporary directory, st.top, with BACKING in it. */
static int make_top(const struct config *c)
{
	char path[PATH_MAX];

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
		fprintf(stderr,
		        "svcfs-bench-latency: %s is too long for a socket address; use --dir\n",
		        st.backing);
		return -1;
	}
	return 0;
}

static int setup(const struct config *c, struct figure *f, bool mount)
{
	const char *watched;
	int64_t t;

	if (make_top(c) < 0)
		return -1;
	if (f->services && spawn_helper(f->services) < 0)
		return -1;
	if (mount) {
		snprintf(st.mnt, sizeof(st.mnt), "%s/m", st.top);
		snprintf(st.log, sizeof(st.log), "%s/svcfs.log", st.top);
		if (mkdir(st.mnt, 0755) < 0) {
			fprintf(stderr, "svcfs-bench-latency: mkdir %s: %s\n", st.mnt,
			        strerror(errno));
			return -1;
		}
		f->mounted = true;
		t = bench_now_ns();
		if (start_daemon(c) < 0 || wait_mounted() < 0)
			return -1;
		f->mount_ms = bench_ms_since(t);
		if (f->services && wait_background_visible(f->services) < 0)
			return -1;
		f->bg_visible_ms = bench_ms_since(t);
	}
	watched = mount ? st.mnt : st.backing;
	st.ifd = inotify_init1(IN_CLOEXEC);
	if (st.ifd < 0 ||
	    inotify_add_watch(st.ifd, watched, IN_CREATE | IN_DELETE | IN_ONLYDIR) < 0) {
		fprintf(stderr, "svcfs-bench-latency: inotify on %s: %s\n", watched,
		        strerror(errno));
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
		fprintf(stderr, "svcfs-bench-latency: the service child failed: %s\n",
		        strerror(err));
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
		         "stopped after %u consecutive missing events (daemon alive)",
		         *consecutive);
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

	for (unsigned i = 0; i < c->samples && !bench_got_stop; i++) {
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
		bench_sleep_ms(c->pause_ms);
		drain_events(f, "before a bind");
		if (bench_write_all(st.ctl, "b", 1) < 0)
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
				fprintf(stderr, "svcfs-bench-latency: %s %s %.1f us\n", f->key,
				        name, (double)f->ns[f->n - 1] / 1e3);
			if (mount) {
				snprintf(view, sizeof(view), "%s/%s", st.mnt, name);
				errno = 0;
				if (stat(view, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
					f->check_fail++;
					fprintf(
					    stderr,
					    "svcfs-bench-latency: after IN_CREATE, stat %s: %s\n",
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
			fprintf(stderr,
			        "svcfs-bench-latency: %s sample %s: no IN_DELETE within %u ms "
			        "after the socket was removed\n",
			        f->key, name, c->timeout_ms);
		}
	}
	return bench_got_stop ? -1 : 0;
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

	for (unsigned i = 0; i < c->samples && !bench_got_stop; i++) {
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
		if (bench_write_all(st.ctl, "b", 1) < 0)
			return -1;
		r = wait_event(name, IN_CREATE | IN_ISDIR, c->timeout_ms, NULL, f);
		if (r < 0)
			return -1;
		if (r > 0) {
			/* not a crash sample: the service never appeared */
			f->setup_fail++;
			fprintf(stderr,
			        "svcfs-bench-latency: crash sample %s: the service never "
			        "appeared (no IN_CREATE within %u ms)\n",
			        name, c->timeout_ms);
			bench_kill_and_reap(&st.child);
			close(st.ctl);
			st.ctl = -1;
			unlink(path);
			if (++consecutive >= MAX_CONSECUTIVE_MISSING) {
				snprintf(f->note, sizeof(f->note),
				         "stopped: %u services in a row never appeared",
				         consecutive);
				return -1;
			}
			continue;
		}
		if (check_owner(view, st.child) < 0)
			f->owner_unknown++;
		bench_sleep_ms(c->pause_ms); /* the daemon settles */
		drain_events(f, "before a kill");
		t0 = bench_now_ns();
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
				fprintf(stderr, "svcfs-bench-latency: %s %s %.1f us\n", f->key,
				        name, (double)f->ns[f->n - 1] / 1e3);
			errno = 0;
			if (stat(view, &sb) == 0 || errno != ENOENT) {
				f->check_fail++;
				fprintf(stderr,
				        "svcfs-bench-latency: after IN_DELETE, stat %s: %s\n", view,
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
	return bench_got_stop ? -1 : 0;
}

/* dbus-appear / dbus-crash: see dbus.c. */
static int run_dbus(const struct config *c, struct figure *f)
{
#ifdef SVCFS_BENCH_DBUS
	enum bench_dbus_kind kind = f->kind == K_DBUS_CRASH ? BENCH_DBUS_CRASH : BENCH_DBUS_APPEAR;
	unsigned consecutive = 0;
	char err[512];

	if (make_top(c) < 0)
		return -1;
	if (bench_dbus_start(st.top, &bench_got_stop, err, sizeof(err)) < 0) {
		snprintf(f->note, sizeof(f->note), "D-Bus: %.480s", err);
		fprintf(stderr, "svcfs-bench-latency: %s\n", f->note);
		return -1;
	}
	for (unsigned i = 0; i < c->samples && !bench_got_stop; i++) {
		int64_t ns = 0;
		int r =
		    bench_dbus_sample(kind, i, c->pause_ms, c->timeout_ms, &ns, err, sizeof(err));

		if (r < 0) {
			if (err[0]) {
				snprintf(f->note, sizeof(f->note), "D-Bus: %.480s", err);
				fprintf(stderr, "svcfs-bench-latency: %s\n", f->note);
			}
			return -1;
		}
		if (r > 0) {
			f->missing++;
			fprintf(stderr, "svcfs-bench-latency: %s: %s\n", f->key, err);
			if (++consecutive >= MAX_CONSECUTIVE_MISSING) {
				snprintf(f->note, sizeof(f->note),
				         "stopped after %u consecutive missing signals",
				         consecutive);
				return -1;
			}
			continue;
		}
		consecutive = 0;
		f->ns[f->n++] = ns;
		if (verbose)
			fprintf(stderr, "svcfs-bench-latency: %s %u %.1f us\n", f->key, i,
			        (double)ns / 1e3);
	}
	f->stray = bench_dbus_unexpected();
	return bench_got_stop ? -1 : 0;
#else
	(void)c;
	f->ran = false;
	f->not_built = true;
	return 0;
#endif
}

/* ---- the polling discoverer ---- */

enum poll_state { P_IDLE, P_BIND_AT, P_BOUND, P_KILL_AT, P_KILLED, P_DONE };

struct poll_slot {
	enum poll_state state;
	unsigned index; /* the service is pINDEX */
	int64_t at;     /* P_BIND_AT, P_KILL_AT: when to act */
	int64_t t_kill;
};

/* Uniform in [0, span). */
static int64_t random_ns(int64_t span)
{
	return (int64_t)(drand48() * (double)span);
}

static void sleep_until(int64_t t)
{
	struct timespec ts = {.tv_sec = t / 1000000000, .tv_nsec = t % 1000000000};

	if (t > bench_now_ns())
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL); /* EINTR: fine */
}

/* Can a client connect to BACKING/NAME? What a naive discoverer asks. */
static bool poll_connects(const char *name)
{
	struct sockaddr_un a;
	bool alive;
	int s;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", st.backing, name) >=
	    (int)sizeof(a.sun_path))
		return false;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return false;
	/* EAGAIN: listening with a full accept queue, alive */
	alive = connect(s, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EAGAIN;
	close(s);
	return alive;
}

/* One tick of the discoverer: readdir BACKING, connect() to every socket. */
static void poll_scan(struct poll_slot *slots, unsigned k, unsigned base, struct figure *fa,
                      struct figure *fc, int64_t period)
{
	DIR *d = opendir(st.backing);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		unsigned idx;
		char tail[8];
		bool alive;
		int64_t t;

		if (len < 6 || strcmp(e->d_name + len - 5, ".sock") != 0)
			continue;
		alive = poll_connects(e->d_name);
		t = bench_now_ns();
		if (sscanf(e->d_name, "p%u%7s", &idx, tail) != 2 || strcmp(tail, ".sock") != 0 ||
		    idx < base || idx - base >= k)
			continue;
		struct poll_slot *sl = &slots[idx - base];
		if (sl->state == P_BOUND && alive) {
			fa->ns[fa->n++] = t - atomic_load(&shm[idx - base].t0);
			sl->state = P_KILL_AT;
			sl->at = t + random_ns(period);
		} else if (sl->state == P_KILLED && !alive) {
			fc->ns[fc->n++] = t - sl->t_kill;
			sl->state = P_DONE;
		}
	}
	closedir(d);
}

static void poll_batch_end(unsigned k, unsigned base)
{
	for (unsigned i = 0; i < k; i++) {
		char name[32], path[PATH_MAX];

		if (st.batch[i] > 0)
			close(st.batch_ctl[i]);
		bench_kill_and_reap(&st.batch[i]);
		snprintf(name, sizeof(name), "p%u", base + i);
		service_path(path, sizeof(path), name);
		unlink(path);
	}
}

/* poll-appear and poll-crash, measured together in batches. */
static int run_poll(const struct config *c, struct figure *fa, struct figure *fc)
{
	int64_t period = (int64_t)c->poll_interval_ms * 1000000;
	int64_t next_tick;
	struct poll_slot slots[POLL_BATCH];

	if (make_top(c) < 0)
		return -1;
	srand48((long)bench_now_ns() ^ (long)getpid());
	next_tick = bench_now_ns() + period;
	for (unsigned base = 0; base < c->poll_samples && !bench_got_stop;) {
		unsigned k =
		    c->poll_samples - base < POLL_BATCH ? c->poll_samples - base : POLL_BATCH;
		int64_t start, deadline;
		unsigned left = k;

		for (unsigned i = 0; i < k; i++) {
			char name[32], path[PATH_MAX];

			snprintf(name, sizeof(name), "p%u", base + i);
			service_path(path, sizeof(path), name);
			slots[i] = (struct poll_slot){.state = P_BIND_AT, .index = base + i};
			if (bench_service_spawn(path, &shm[i], &st.batch[i], &st.batch_ctl[i]) < 0)
				return -1;
		}
		bench_sleep_ms(c->pause_ms);
		start = bench_now_ns();
		for (unsigned i = 0; i < k; i++)
			slots[i].at = start + random_ns(period);
		/* bind window, detection, kill window, detection, and the timeout */
		deadline = start + 6 * period + (int64_t)c->timeout_ms * 1000000;
		while (left && !bench_got_stop) {
			int64_t next = next_tick, now;

			for (unsigned i = 0; i < k; i++)
				if ((slots[i].state == P_BIND_AT || slots[i].state == P_KILL_AT) &&
				    slots[i].at < next)
					next = slots[i].at;
			if (next > deadline)
				next = deadline;
			sleep_until(next);
			now = bench_now_ns();
			for (unsigned i = 0; i < k; i++) {
				struct poll_slot *sl = &slots[i];

				if (sl->state == P_BIND_AT && sl->at <= now) {
					if (bench_write_all(st.batch_ctl[i], "b", 1) < 0)
						return -1;
					sl->state = P_BOUND;
				} else if (sl->state == P_KILL_AT && sl->at <= now) {
					sl->t_kill = bench_now_ns();
					kill(st.batch[i], SIGKILL);
					sl->state = P_KILLED;
				}
			}
			if (next_tick <= now) {
				poll_scan(slots, k, base, fa, fc, period);
				while (next_tick <= bench_now_ns())
					next_tick += period;
			}
			left = 0;
			for (unsigned i = 0; i < k; i++)
				left += slots[i].state != P_DONE;
			if (left && bench_now_ns() >= deadline) {
				for (unsigned i = 0; i < k; i++) {
					int err = atomic_load(&shm[i].err);

					if (slots[i].state <= P_BOUND)
						fa->missing++;
					if (slots[i].state != P_DONE)
						fc->missing++;
					if (slots[i].state != P_DONE)
						fprintf(stderr,
						        "svcfs-bench-latency: poll sample p%u: not "
						        "seen %s in time%s%s\n",
						        slots[i].index,
						        slots[i].state <= P_BOUND ? "alive"
						                                  : "gone",
						        err ? "; the service child failed: " : "",
						        err ? strerror(err) : "");
				}
				break;
			}
		}
		poll_batch_end(k, base);
		base += k;
	}
	return bench_got_stop ? -1 : 0;
}

/* One round of F (and PAIR, measured with it): C's samples go to F's array,
 * which holds every round's. */
static int run_figure(const struct config *c, struct figure *f, struct figure *pair)
{
	int r;

	f->ran = true;
	switch (f->kind) {
	case K_APPEAR:
	case K_INOTIFY:
		r = setup(c, f, f->kind == K_APPEAR);
		if (r == 0)
			r = run_appear(c, f, f->kind == K_APPEAR);
		break;
	case K_CRASH:
		r = setup(c, f, true);
		if (r == 0)
			r = run_crash(c, f);
		break;
	case K_DBUS_APPEAR:
	case K_DBUS_CRASH:
		r = run_dbus(c, f);
		break;
	case K_POLL_APPEAR:
		pair->ran = true;
		r = run_poll(c, f, pair);
		break;
	default:
		r = 0;
		break;
	}
	cleanup(f, (r < 0 && !bench_got_stop) || verbose);
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

static const char *fs_name(const char *path, char *buf, size_t len)
{
	struct statfs sf;

	if (statfs(path, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC:
		return "tmpfs";
	case EXT4_SUPER_MAGIC:
		return "ext4";
	case BTRFS_SUPER_MAGIC:
		return "btrfs";
	case XFS_SUPER_MAGIC:
		return "xfs";
	case OVERLAYFS_SUPER_MAGIC:
		return "overlayfs";
	default:
		snprintf(buf, len, "f_type 0x%lx", (unsigned long)sf.f_type);
		return buf;
	}
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

static bool is_appear(enum kind k)
{
	return k == K_APPEAR || k == K_INOTIFY || k == K_DBUS_APPEAR || k == K_POLL_APPEAR;
}

static const struct figure *find_kind(const struct figure *figs, size_t nfigs, enum kind k)
{
	for (size_t i = 0; i < nfigs; i++)
		if (figs[i].kind == k && figs[i].n)
			return &figs[i];
	return NULL;
}

/* What F is compared with: D-Bus's figure of the same kind, and for appear
 * figures the plain inotify watch. NULL where there is none. */
static const struct figure *ref_dbus(const struct figure *figs, size_t nfigs,
                                     const struct figure *f)
{
	const struct figure *r =
	    find_kind(figs, nfigs, is_appear(f->kind) ? K_DBUS_APPEAR : K_DBUS_CRASH);

	return r == f ? NULL : r;
}

static const struct figure *ref_inotify(const struct figure *figs, size_t nfigs,
                                        const struct figure *f)
{
	const struct figure *r = is_appear(f->kind) ? find_kind(figs, nfigs, K_INOTIFY) : NULL;

	return r == f ? NULL : r;
}

static void figure_label(const struct figure *f, char *buf, size_t len)
{
	switch (f->kind) {
	case K_APPEAR:
	case K_CRASH:
		snprintf(buf, len, "svcfs %s, %u bg", f->kind == K_APPEAR ? "appear" : "crash",
		         f->services);
		break;
	case K_INOTIFY:
		snprintf(buf, len, "inotify appear");
		break;
	case K_DBUS_APPEAR:
		snprintf(buf, len, "D-Bus appear");
		break;
	case K_DBUS_CRASH:
		snprintf(buf, len, "D-Bus crash");
		break;
	case K_POLL_APPEAR:
		snprintf(buf, len, "poll appear");
		break;
	case K_POLL_CRASH:
		snprintf(buf, len, "poll crash");
		break;
	}
}

/* Microseconds, or milliseconds from 10 ms up. */
static const char *fmt_us(double us, char *buf, size_t len)
{
	if (us >= 10000)
		snprintf(buf, len, "%.1f ms", us / 1e3);
	else
		snprintf(buf, len, "%.1f us", us);
	return buf;
}

/* "0.80x / 1.20x": p50 and p99 of F over REF's. */
static const char *fmt_ratio(const struct figure *f, const struct figure *ref, char *buf,
                             size_t len)
{
	if (!ref || !f->n || !ref->n)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.2fx / %.2fx",
		         bench_pct_us(f->ns, f->n, 0.5) / bench_pct_us(ref->ns, ref->n, 0.5),
		         bench_pct_us(f->ns, f->n, 0.99) / bench_pct_us(ref->ns, ref->n, 0.99));
	return buf;
}

static void json_ratio(const char *key, const struct figure *f, const struct figure *ref)
{
	if (!ref || !f->n || !ref->n)
		return;
	printf(",\"%s_p50\":%.3f,\"%s_p99\":%.3f", key,
	       bench_pct_us(f->ns, f->n, 0.5) / bench_pct_us(ref->ns, ref->n, 0.5), key,
	       bench_pct_us(f->ns, f->n, 0.99) / bench_pct_us(ref->ns, ref->n, 0.99));
}

static void report_json(const struct config *c, const struct figure *figs, size_t nfigs,
                        const struct machine_load *ml, const char *opts, const char *version,
                        const char *dbus_version, const char *cpu, const char *fs)
{
	struct utsname u;
	cpu_set_t cpus;
	char why[128];
	int nproc = 0;

	uname(&u);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		nproc = CPU_COUNT(&cpus);
	printf("{\"machine\":{\"kernel\":");
	json_str(u.release);
	printf(",\"arch\":");
	json_str(u.machine);
	printf(",\"cpu\":");
	json_str(cpu);
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
	printf("},\"dbus\":");
	json_str(dbus_version);
	printf(",\"dir\":");
	json_str(c->dir);
	printf(",\"dir_fs\":");
	json_str(fs);
	printf(",\"samples\":%u,\"rounds\":%u,\"poll_samples\":%u,\"poll_interval_ms\":%u,\"pause_"
	       "ms\":%u,"
	       "\"timeout_ms\":%u,\"figures\":[",
	       c->samples, c->rounds, c->poll_samples, c->poll_interval_ms, c->pause_ms,
	       c->timeout_ms);
	for (size_t i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];

		printf("%s{\"figure\":\"%s\",\"services\":%u,\"what\":", i ? "," : "", f->key,
		       f->services);
		json_str(f->what);
		printf(",\"ran\":%s,\"built\":%s,\"samples\":%u,\"missing\":%u,"
		       "\"check_failures\":%u,\"setup_failures\":%u,\"unexpected_events\":%u,"
		       "\"owner_unknown\":%u",
		       f->ran ? "true" : "false", f->not_built ? "false" : "true", f->n, f->missing,
		       f->check_fail, f->setup_fail, f->stray, f->owner_unknown);
		if (f->stray) {
			printf(",\"unexpected_first\":[");
			for (unsigned k = 0; k < f->stray && k < 3 && f->stray_first[k][0]; k++) {
				printf("%s", k ? "," : "");
				json_str(f->stray_first[k]);
			}
			printf("]");
		}
		if (f->n)
			printf(",\"min_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
			       "\"max_us\":%.1f",
			       bench_pct_us(f->ns, f->n, 0), bench_pct_us(f->ns, f->n, 0.5),
			       bench_pct_us(f->ns, f->n, 0.9), bench_pct_us(f->ns, f->n, 0.99),
			       bench_pct_us(f->ns, f->n, 1));
		json_ratio("vs_dbus", f, ref_dbus(figs, nfigs, f));
		json_ratio("vs_inotify", f, ref_inotify(figs, nfigs, f));
		if (f->mounted && f->ran) {
			printf(",\"mount_ms\":%.1f", f->mount_ms);
			if (f->services)
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
}

/* The per-figure checks and counters under the table. */
static void report_details(const struct figure *f)
{
	char why[128];

	if (f->not_built) {
		printf("%-14s not built (libdbus-1 not found when the bench was configured)\n",
		       f->key);
		return;
	}
	if (!f->ran) {
		printf("%-14s not run\n", f->key);
		return;
	}
	printf("%-14s", f->key);
	if (f->mounted)
		printf(" %u bg;", f->services);
	printf(" missing events %u", f->missing);
	if (f->kind == K_APPEAR || f->kind == K_INOTIFY || f->kind == K_CRASH)
		printf(", %s %u/%u",
		       f->kind == K_CRASH ? "gone (ENOENT) after event" : "visible after event",
		       f->n - f->check_fail, f->n);
	if (f->setup_fail)
		printf(", untimed step failed %u", f->setup_fail);
	if (f->kind == K_CRASH)
		printf(", owner pid shown before the kill %u/%u",
		       f->n + f->missing - f->owner_unknown, f->n + f->missing);
	if (f->kind != K_POLL_APPEAR && f->kind != K_POLL_CRASH) {
		printf(", unexpected events %u", f->stray);
		for (unsigned k = 0; k < f->stray && k < 3 && f->stray_first[k][0]; k++)
			printf("%s%s", k ? "; " : " (", f->stray_first[k]);
		if (f->stray && f->stray_first[0][0])
			printf("%s)", f->stray > 3 ? "; ..." : "");
	}
	if (f->mounted)
		printf(", mounted %.0f ms after svcfs started", f->mount_ms);
	if (f->mounted && f->services)
		printf(", all %u background services visible after %.0f ms", f->services,
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

/* SPEC §6: svcfs's p50 at most half of D-Bus's, p99 at most 500 us. */
static void report_targets(const struct figure *figs, size_t nfigs)
{
	printf("\nSPEC §6 targets for svcfs: p50 <= %.2fx D-Bus's in this run, p99 <= %.0f us\n",
	       TARGET_RATIO, TARGET_P99_US);
	for (size_t i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i], *d = ref_dbus(figs, nfigs, f);
		char label[64], a[32], b[32], e[32];
		double p50, p99;

		if ((f->kind != K_APPEAR && f->kind != K_CRASH) || !f->n)
			continue;
		figure_label(f, label, sizeof(label));
		p50 = bench_pct_us(f->ns, f->n, 0.5);
		p99 = bench_pct_us(f->ns, f->n, 0.99);
		printf("  %-22s p50 %s", label, fmt_us(p50, a, sizeof(a)));
		if (d) {
			double dp50 = bench_pct_us(d->ns, d->n, 0.5);

			printf(" = %.2fx D-Bus's %s (target %s): %s", p50 / dp50,
			       fmt_us(dp50, b, sizeof(b)),
			       fmt_us(dp50 * TARGET_RATIO, e, sizeof(e)),
			       p50 <= dp50 * TARGET_RATIO ? "met" : "MISSED");
		} else {
			printf(" (no D-Bus figure in this run)");
		}
		printf("; p99 %s: %s\n", fmt_us(p99, a, sizeof(a)),
		       p99 <= TARGET_P99_US ? "met" : "MISSED");
	}
}

static void report(const struct config *c, struct figure *figs, size_t nfigs,
                   const struct machine_load *ml)
{
	struct utsname u;
	cpu_set_t cpus;
	char opts[512], version[128], dbus_version[128], cpu[128], fsbuf[64], counts[64] = "";
	const char *fs = fs_name(c->dir, fsbuf, sizeof(fsbuf));
	int nproc = 0;

	uname(&u);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		nproc = CPU_COUNT(&cpus);
	bench_proc_field("/proc/cpuinfo", "model name", cpu, sizeof(cpu));
	bench_svcfs_version(c->svcfs, version, sizeof(version));
#ifdef SVCFS_BENCH_DBUS
	bench_dbus_versions(dbus_version, sizeof(dbus_version));
#else
	snprintf(dbus_version, sizeof(dbus_version), "D-Bus: not built");
#endif
	snprintf(opts, sizeof(opts), "-f%s%s", c->svcfs_opts ? " -o " : "",
	         c->svcfs_opts ? c->svcfs_opts : "");
	for (unsigned i = 0; i < c->nservices; i++)
		snprintf(counts + strlen(counts), sizeof(counts) - strlen(counts), "%s%u",
		         i ? (i + 1 == c->nservices ? " and " : ", ") : "", c->services[i]);
	for (size_t i = 0; i < nfigs; i++)
		qsort(figs[i].ns, figs[i].n, sizeof(int64_t), bench_cmp_i64);

	if (c->json) {
		report_json(c, figs, nfigs, ml, opts, version, dbus_version, cpu, fs);
		return;
	}

	printf("svcfs-bench-latency\n");
	printf("machine:  Linux %s %s, nproc %d, %s\n", u.release, u.machine, nproc, cpu);
	printf("load:     load average %s at start, %s at end; CPUs %.0f%% busy during the run "
	       "(all processes)\n",
	       ml->loadavg_start, ml->loadavg_end, ml->busy_pct);
	printf("versions: %s; %s\n", version, dbus_version);
	printf("netns:    %s; %ld Unix sockets in it before the run (%ld listening), not counting "
	       "the background services\n",
	       c->netns ? "a new network namespace (--netns)" : "the host's network namespace",
	       ml->unix_all, ml->unix_listening);
	printf("svcfs:    %s, run as: svcfs %s BACKING MOUNTPOINT%s\n", c->svcfs, opts,
	       c->svcfs_opts ? "" : " (every -o option at its default)");
	printf("setup:    %u samples per figure (poll: %u, %u at a time, every %u ms) in %u "
	       "round%s of every figure in turn, each round with its own daemon; sequential, "
	       "%u ms pause before each; svcfs with %s background services, the others with "
	       "none; temporary directories in %s (%s); event timeout %u ms\n\n",
	       c->samples, c->poll_samples, POLL_BATCH, c->poll_interval_ms, c->rounds,
	       c->rounds == 1 ? "" : "s", c->pause_ms, counts, c->dir, fs, c->timeout_ms);

	printf("%-22s %-46s %5s %10s %10s %18s %18s\n", "figure", "from -> to", "n", "median",
	       "p99", "x D-Bus p50/p99", "x inotify p50/p99");
	for (size_t i = 0; i < nfigs; i++) {
		const struct figure *f = &figs[i];
		char label[64], a[32], b[32], r1[40], r2[40];

		figure_label(f, label, sizeof(label));
		if (!f->n) {
			printf("%-22s %-46s %5u %10s %10s %18s %18s\n", label, f->what, 0u,
			       f->not_built ? "not built" : "-", "-", "-", "-");
		} else {
			printf("%-22s %-46s %5u %10s %10s %18s %18s\n", label, f->what, f->n,
			       fmt_us(bench_pct_us(f->ns, f->n, 0.5), a, sizeof(a)),
			       fmt_us(bench_pct_us(f->ns, f->n, 0.99), b, sizeof(b)),
			       fmt_ratio(f, ref_dbus(figs, nfigs, f), r1, sizeof(r1)),
			       fmt_ratio(f, ref_inotify(figs, nfigs, f), r2, sizeof(r2)));
		}
		if (f->kind == K_INOTIFY)
			printf("%-22s %-46s %5s %10s %10s %18s %18s\n", "inotify crash",
			       "SIGKILL -> (a plain directory shows nothing)", "-", "never",
			       "never", "-", "-");
	}
	printf("\n");
	for (size_t i = 0; i < nfigs; i++)
		report_details(&figs[i]);
	report_targets(figs, nfigs);
}

/* ---- main ---- */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: svcfs-bench-latency [--svcfs PATH] [--samples N] [--services N[,N...]]\n"
	    "                           [--figures LIST] [--rounds N]\n"
	    "                           [--poll-samples N] [--poll-interval-ms MS]\n"
	    "                           [--json] [--svcfs-opts OPTS] [--pause-ms MS]\n"
	    "                           [--timeout-ms MS] [--dir DIR] [--netns] [--verbose]\n"
	    "  --svcfs PATH          daemon to measure (default %s)\n"
	    "  --samples N           samples per figure (default 300)\n"
	    "  --services N[,N...]   svcfs appear and crash once for each number of background\n"
	    "                        services bound before measuring (default 0,10000; at most "
	    "%d)\n"
	    "  --figures LIST        any of svcfs,dbus,inotify,poll (default: all)\n"
	    "  --poll-samples N      samples of the polling discoverer (default 100)\n"
	    "  --poll-interval-ms MS its interval (default 1000)\n"
	    "  --json                one JSON object instead of the table\n"
	    "  --svcfs-opts OPTS     passed to svcfs as -o OPTS (default: none)\n"
	    "  --pause-ms MS         idle time before each sample (default 10)\n"
	    "  --timeout-ms MS       how long to wait for an event (default 5000)\n"
	    "  --dir DIR             where the temporary directories go (default $TMPDIR or /tmp)\n"
	    "  --netns               run everything in a new network namespace, so that the "
	    "host's\n"
	    "                        other Unix sockets are not in svcfs's sock_diag dumps\n"
	    "  --verbose             every sample and every unrelated event on stderr\n"
	    "Needs root (or a FUSE-capable user) and /dev/fuse; dbus-daemon for the D-Bus "
	    "figures.\n",
	    SVCFS_BIN, MAX_SERVICE_COUNTS);
}

static int parse_services(const char *s, struct config *c)
{
	char buf[256], *save = NULL;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		goto bad;
	c->nservices = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (c->nservices == MAX_SERVICE_COUNTS)
			goto bad;
		if (bench_parse_uint("--services", tok, 0, 1000000, &c->services[c->nservices++]) <
		    0)
			return -1;
	}
	if (c->nservices)
		return 0;
bad:
	fprintf(stderr, "svcfs-bench-latency: --services: '%s' is not a list of up to %d numbers\n",
	        s, MAX_SERVICE_COUNTS);
	return -1;
}

static int parse_figures(const char *s, unsigned *ret)
{
	static const struct {
		const char *name;
		unsigned bit;
	} groups[] = {
	    {"svcfs", RUN_SVCFS}, {"dbus", RUN_DBUS}, {"inotify", RUN_INOTIFY}, {"poll", RUN_POLL}};
	char buf[256], *save = NULL;
	unsigned run = 0;

	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t g;

		for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
			if (strcmp(tok, groups[g].name) == 0)
				break;
		if (g == sizeof(groups) / sizeof(groups[0])) {
			fprintf(stderr,
			        "svcfs-bench-latency: --figures: '%s' is none of "
			        "svcfs, dbus, inotify, poll\n",
			        tok);
			return -1;
		}
		run |= groups[g].bit;
	}
	if (!run) {
		fprintf(stderr, "svcfs-bench-latency: --figures: empty\n");
		return -1;
	}
	*ret = run;
	return 0;
}

/* The figures of this run, in the order they are measured: D-Bus and the
 * inotify baseline right after svcfs without background services. */
static size_t plan_figures(const struct config *c, struct figure *figs)
{
	size_t n = 0;

	for (unsigned i = 0; i < c->nservices; i++) {
		if (c->run & RUN_SVCFS) {
			figs[n++] = (struct figure){
			    .key = "appear",
			    .kind = K_APPEAR,
			    .services = c->services[i],
			    .what = "listen -> entry + IN_CREATE|IN_ISDIR on mount"};
			figs[n++] =
			    (struct figure){.key = "crash",
			                    .kind = K_CRASH,
			                    .services = c->services[i],
			                    .what = "SIGKILL -> entry gone + IN_DELETE|IN_ISDIR"};
		}
		if (i > 0)
			continue;
		if (c->run & RUN_DBUS) {
			figs[n++] =
			    (struct figure){.key = "dbus-appear",
			                    .kind = K_DBUS_APPEAR,
			                    .what = "RequestName -> NameOwnerChanged (owner)"};
			figs[n++] =
			    (struct figure){.key = "dbus-crash",
			                    .kind = K_DBUS_CRASH,
			                    .what = "SIGKILL -> NameOwnerChanged (owner lost)"};
		}
		if (c->run & RUN_INOTIFY)
			figs[n++] =
			    (struct figure){.key = "baseline",
			                    .kind = K_INOTIFY,
			                    .what = "listen -> IN_CREATE on BACKING, no svcfs"};
	}
	if (c->run & RUN_POLL) {
		figs[n++] = (struct figure){.key = "poll-appear",
		                            .kind = K_POLL_APPEAR,
		                            .what = "listen -> readdir+connect every 1 s succeeds"};
		figs[n++] = (struct figure){.key = "poll-crash",
		                            .kind = K_POLL_CRASH,
		                            .what = "SIGKILL -> readdir+connect every 1 s refused"};
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"svcfs", required_argument, NULL, 'b'},
	    {"samples", required_argument, NULL, 'n'},
	    {"services", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},
	    {"svcfs-opts", required_argument, NULL, 'o'},
	    {"pause-ms", required_argument, NULL, 'p'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"dir", required_argument, NULL, 'd'},
	    {"netns", no_argument, NULL, 'N'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"figures", required_argument, NULL, 'F'},
	    {"poll-samples", required_argument, NULL, 'P'},
	    {"poll-interval-ms", required_argument, NULL, 'I'},
	    {"rounds", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config c = {
	    .svcfs = SVCFS_BIN,
	    .samples = 300,
	    .services = {0, 10000},
	    .nservices = 2,
	    .poll_samples = 100,
	    .poll_interval_ms = 1000,
	    .run = RUN_SVCFS | RUN_DBUS | RUN_INOTIFY | RUN_POLL,
	    .rounds = 3,
	    .pause_ms = 10,
	    .timeout_ms = 5000,
	    .dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
	};
	const struct bench_opt opts[] = {
	    {.val = 'n', .name = "--samples", .min = 1, .max = 10000000, .num = &c.samples},
	    {.val = 'P',
	     .name = "--poll-samples",
	     .min = 1,
	     .max = 1000000,
	     .num = &c.poll_samples},
	    {.val = 'R', .name = "--rounds", .min = 1, .max = 1000, .num = &c.rounds},
	    {.val = 'I',
	     .name = "--poll-interval-ms",
	     .min = 1,
	     .max = 60000,
	     .num = &c.poll_interval_ms},
	    {.val = 'p', .name = "--pause-ms", .min = 0, .max = 60000, .num = &c.pause_ms},
	    {.val = 't', .name = "--timeout-ms", .min = 1, .max = 3600000, .num = &c.timeout_ms},
	    {.val = 'b', .str = &c.svcfs},
	    {.val = 'o', .str = &c.svcfs_opts},
	    {.val = 'd', .str = &c.dir},
	    {.val = 'j', .flag = &c.json},
	    {.val = 'N', .flag = &c.netns},
	    {.val = 'v', .flag = &verbose},
	    {.val = 0},
	};
	struct figure figs[MAX_FIGURES];
	size_t nfigs;
	struct machine_load ml;
	unsigned long long busy0, total0, busy1, total1;
	int opt, opt_exit, rc_exit = 0;

	while ((opt = bench_next_option(argc, argv, longopts, opts, usage, &opt_exit)) > 0) {
		if (opt == 's' && parse_services(optarg, &c) < 0)
			return 2;
		if (opt == 'F' && parse_figures(optarg, &c.run) < 0)
			return 2;
	}
	if (opt < 0)
		return opt_exit;
	nfigs = plan_figures(&c, figs);
	if (bench_check_svcfs(c.svcfs) < 0)
		return 1;
	shm = mmap(NULL, POLL_BATCH * sizeof(*shm), PROT_READ | PROT_WRITE,
	           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		perror("svcfs-bench-latency: mmap");
		return 1;
	}
	if (c.netns && unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "svcfs-bench-latency: unshare(CLONE_NEWNET): %s\n",
		        strerror(errno));
		return 1;
	}
	unix_sockets(&ml.unix_all, &ml.unix_listening);
	bench_install_signals(on_alarm);
	atexit(cleanup_at_exit);
	loadavg(ml.loadavg_start, sizeof(ml.loadavg_start));
	cpu_times(&busy0, &total0);

	for (size_t i = 0; i < nfigs; i++) {
		size_t cap = c.samples > c.poll_samples ? c.samples : c.poll_samples;

		figs[i].ns = calloc(cap, sizeof(*figs[i].ns));
		if (!figs[i].ns) {
			perror("svcfs-bench-latency: calloc");
			return 1;
		}
	}
	/* Rounds: every figure in turn, a share of its samples each time, so
	 * that a change in the machine's load weighs on all of them alike. */
	for (unsigned round = 0; round < c.rounds && !bench_got_stop; round++) {
		struct config rc = c;

		rc.samples = c.samples / c.rounds + (round < c.samples % c.rounds);
		rc.poll_samples = c.poll_samples / c.rounds + (round < c.poll_samples % c.rounds);
		for (size_t i = 0; i < nfigs && !bench_got_stop; i++) {
			struct figure *pair = figs[i].kind == K_POLL_APPEAR ? &figs[i + 1] : NULL;
			unsigned want =
			    figs[i].kind == K_POLL_APPEAR ? rc.poll_samples : rc.samples;

			if (figs[i].kind == K_POLL_CRASH || figs[i].failed || !want)
				continue; /* poll-crash: measured with poll-appear */
			if (run_figure(&rc, &figs[i], pair) < 0) {
				rc_exit = 1;
				figs[i].failed = true;
				if (bench_got_stop)
					break;
				fprintf(stderr,
				        "svcfs-bench-latency: figure %s incomplete (%u samples); "
				        "not run again\n",
				        figs[i].key, figs[i].n);
			}
		}
	}
	if (bench_got_stop) {
		cleanup(NULL, false);
		fprintf(stderr, "svcfs-bench-latency: interrupted by signal %d; cleaned up\n",
		        (int)bench_got_stop);
		return 130;
	}
	loadavg(ml.loadavg_end, sizeof(ml.loadavg_end));
	cpu_times(&busy1, &total1);
	ml.busy_pct =
	    total1 > total0 ? 100.0 * (double)(busy1 - busy0) / (double)(total1 - total0) : 0;
	report(&c, figs, nfigs, &ml);
	for (size_t i = 0; i < nfigs; i++)
		free(figs[i].ns);
	return rc_exit;
}
