/*
 * svcfs-bench-cluster — how fast a service that starts listening on one host
 * shows up in another host's svcfs view through etcd (SPEC §8), and how fast
 * a crashed one leaves it, as an inotify watcher of the other host's mount
 * sees it; beside what etcd itself costs on the same machine in the same
 * run. A benchmark: it prints figures and does not pass or fail; it exits
 * non-zero only when it could not measure.
 *
 * Setup: a three-member etcd cluster on loopback (data on /dev/shm by
 * default: etcd fsyncs every write; short heartbeats and elections, as in
 * the tests' cluster), and two svcfs daemons on this machine, "a" and "b",
 * each with its own BACKING and MOUNTPOINT and `-o etcd=URLS,host=...`. A
 * service "anchor" stays alive on a for the whole run, so that b's
 * MOUNTPOINT/@a exists and can be watched. One inotify fd watches a's
 * MOUNTPOINT and b's MOUNTPOINT/@a.
 *
 * Each round takes one sample of every figure, one at a time, with a pause
 * (--pause-ms) before each so that the daemons are idle when it starts:
 *
 *   appear    a pre-forked child (waiting on a pipe, so fork is not measured)
 *             does socket(), bind(), listen() on a's BACKING/sN.sock; t0 is
 *             taken in the child just before bind() and passed back through
 *             shared memory. local-appear ends when the read() of the watcher
 *             returns IN_CREATE|IN_ISDIR "sN" on a's mount, remote-appear when
 *             it returns the same on b's MOUNTPOINT/@a. Then
 *             stat(b's MOUNTPOINT/@a/sN) must succeed.
 *   crash     that child is SIGKILLed: t0 just before kill(); local-crash ends
 *             at IN_DELETE|IN_ISDIR "sN" on a's mount, remote-crash on b's
 *             @a. Then stat(b's @a/sN) must fail with ENOENT.
 *   etcd-put  the baseline, no svcfs: the bench's own etcd client (the
 *             svcfs-etcd library the daemons use, on the endpoint they use
 *             first) puts a key of the size of a's published record under
 *             a watched prefix: t0 before the call, t1 when the watch hands
 *             over the PUT event. etcd-put-rtt: the same put's own round trip
 *             (the call returned).
 *   etcd-del  the same key deleted, t1 at the watch's DELETE event.
 *
 * The summary gives each figure's median and p99 and, for remote figures,
 * their ratio to the etcd baseline of the same kind (appear to put, crash to
 * delete): what svcfs adds on top of what etcd costs.
 *
 * Cleanup, also on errors and SIGINT/SIGTERM/SIGHUP: SIGKILL to the children,
 * SIGTERM to both daemons (they revoke their leases while etcd still runs;
 * umount2(MNT_DETACH) if one does not exit within 30 s), SIGTERM to the etcd
 * members, rm -rf of the temporary directory. Children die with the bench
 * (PR_SET_PDEATHSIG) if it is killed outright.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "etcd.h"
#include "util.h"

#ifndef SVCFS_BIN
#error "SVCFS_BIN (path of the svcfs daemon) must be defined"
#endif

#define MEMBERS          3
#define ETCD_START_MS    20000
#define MOUNT_TIMEOUT_MS 10000
#define ANCHOR_MS        30000 /* a's anchor service visible on b */
#define TERM_TIMEOUT_MS  30000
#define CALL_TIMEOUT_MS  5000 /* one etcd client call */
#define MAX_MISSING      3    /* consecutive samples without their event: stop */
#define LOG_TAIL_LINES   20

enum fig {
	F_LOCAL_APPEAR,
	F_REMOTE_APPEAR,
	F_LOCAL_CRASH,
	F_REMOTE_CRASH,
	F_ETCD_PUT,
	F_ETCD_PUT_RTT,
	F_ETCD_DEL,
	NFIGS
};

struct figure {
	const char *key;
	const char *what;
	int ref; /* the etcd figure it is compared with, -1 */
	int64_t *ns;
	unsigned n;
	unsigned missing;    /* the timed event never came */
	unsigned check_fail; /* stat after the event disagreed with it */
};

static struct figure figs[NFIGS] = {
    [F_LOCAL_APPEAR] = {"local-appear", "listen on a -> IN_CREATE|IN_ISDIR on a's mount", -1},
    [F_REMOTE_APPEAR] = {"remote-appear", "listen on a -> IN_CREATE|IN_ISDIR on b's @a",
                         F_ETCD_PUT},
    [F_LOCAL_CRASH] = {"local-crash", "SIGKILL on a -> IN_DELETE|IN_ISDIR on a's mount", -1},
    [F_REMOTE_CRASH] = {"remote-crash", "SIGKILL on a -> IN_DELETE|IN_ISDIR on b's @a", F_ETCD_DEL},
    [F_ETCD_PUT] = {"etcd-put", "put -> the watch hands over the PUT event", -1},
    [F_ETCD_PUT_RTT] = {"etcd-put-rtt", "put -> the put call returns", -1},
    [F_ETCD_DEL] = {"etcd-del", "delete -> the watch hands over the DELETE", -1},
};

struct config {
	const char *svcfs;
	const char *etcd;
	const char *extra; /* more -o for both daemons, or NULL */
	const char *dir;
	unsigned rounds;
	unsigned pause_ms;
	unsigned timeout_ms;
};

struct member {
	char url[64], peer[64];
	char dir[PATH_MAX], log[PATH_MAX];
	pid_t pid;
};

struct node {
	const char *host;
	char backing[256], mnt[256], log[256];
	pid_t daemon;
};

/* Everything cleanup must undo. */
static struct {
	char top[192]; /* short: BACKING/NAME.sock must fit a sun_path */
	char urls[MEMBERS * 64];
	char prefix[64];
	struct member m[MEMBERS];
	struct node a, b;
	pid_t anchor, child;
	int anchor_ctl, ctl; /* control pipes of the anchor and the current child */
	int ifd, wd_a, wd_b;
	struct etcd *client;
	struct etcd_watch *watch;
} st = {.anchor_ctl = -1, .ctl = -1, .ifd = -1, .a = {.host = "a"}, .b = {.host = "b"}};

const char bench_prog[] = "svcfs-bench-cluster";

static struct bench_service_shm *shm; /* [0]: the current child, [1]: the anchor */
static bool verbose;

/* ---- logs and cleanup ---- */

/* The end of the log PATH of WHAT ("svcfs a"), on stderr. */
static void print_log_tail(const char *what, const char *path)
{
	char label[PATH_MAX + 64];

	snprintf(label, sizeof(label), "%s (%s)", what, path);
	bench_print_log_tail(label, path, LOG_TAIL_LINES);
}

static void show_logs(void)
{
	print_log_tail("svcfs a", st.a.log);
	print_log_tail("svcfs b", st.b.log);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static bool node_stop(struct node *n)
{
	if (!n->mnt[0])
		return true;
	return bench_svcfs_stop(&n->daemon, n->mnt, TERM_TIMEOUT_MS, NULL) == 0;
}

/* Undo everything. Safe to call twice. */
static void cleanup(void)
{
	bool ok = true;

	close_fd(&st.ifd);
	close_fd(&st.ctl);
	close_fd(&st.anchor_ctl);
	bench_kill_and_reap(&st.child);
	bench_kill_and_reap(&st.anchor);
	st.watch = etcd_watch_free(st.watch);
	st.client = etcd_free(st.client);
	/* the daemons first: they revoke their leases on SIGTERM */
	ok = node_stop(&st.b) && ok;
	ok = node_stop(&st.a) && ok;
	if (!ok)
		show_logs();
	for (int i = 0; i < MEMBERS; i++) {
		if (st.m[i].pid > 0)
			kill(st.m[i].pid, SIGTERM);
		bench_reap(&st.m[i].pid, 5000);
	}
	if (st.top[0])
		bench_rm_tree(st.top);
	st.top[0] = '\0';
	st.a.log[0] = st.b.log[0] = '\0';
}

static void cleanup_at_exit(void)
{
	cleanup();
}

/* ---- etcd ---- */

/* N distinct free loopback ports, held open together so none repeats. */
static int free_ports(int *ports, int n)
{
	int fds[2 * MEMBERS], ret = 0;

	for (int i = 0; i < n; i++)
		fds[i] = -1;
	for (int i = 0; i < n && ret == 0; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) < 0) {
			fprintf(stderr, "%s: a free port: %s\n", bench_prog, strerror(errno));
			ret = -1;
		} else {
			ports[i] = ntohs(a.sin_port);
		}
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return ret;
}

static int start_member(const struct config *c, int i, const char *cluster)
{
	struct member *m = &st.m[i];
	char name[16];
	pid_t parent = getpid(), pid;

	snprintf(name, sizeof(name), "m%d", i);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", bench_prog, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		bench_child_reset(parent, SIGKILL);
		bench_child_stdio(m->log);
		close_range(3, ~0u, 0);
		/* as the tests' cluster (tests/etcd/cluster.c): failures seen in under a second */
		execl(c->etcd, "etcd", "--name", name, "--data-dir", m->dir, "--listen-client-urls",
		      m->url, "--advertise-client-urls", m->url, "--listen-peer-urls", m->peer,
		      "--initial-advertise-peer-urls", m->peer, "--initial-cluster", cluster,
		      "--initial-cluster-state", "new", "--initial-cluster-token", "svcfs-bench",
		      "--heartbeat-interval", "50", "--election-timeout", "500", "--logger", "zap",
		      "--log-outputs", "stderr", (char *)NULL);
		dprintf(STDERR_FILENO, "exec %s: %s\n", c->etcd, strerror(errno));
		_exit(127);
	}
	m->pid = pid;
	return 0;
}

static bool member_ready(int i, unsigned timeout_ms)
{
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;
	struct etcd *e = etcd_new(st.m[i].url, 500);
	bool ok = false;

	if (!e)
		return false;
	while (!bench_got_stop && !ok) {
		struct etcd_kvs *kvs = NULL;
		int status;

		ok = etcd_range_prefix(e, "/ready-probe/", &kvs) == 0;
		etcd_kvs_free(kvs);
		if (ok || bench_now_ns() > end)
			break;
		if (waitpid(st.m[i].pid, &status, WNOHANG) == st.m[i].pid) {
			st.m[i].pid = 0;
			break;
		}
		bench_sleep_ms(50);
	}
	etcd_free(e);
	return ok;
}

static int start_cluster(const struct config *c)
{
	char cluster[MEMBERS * 96] = "";
	int ports[2 * MEMBERS];
	size_t ulen = 0, clen = 0;

	if (free_ports(ports, 2 * MEMBERS) < 0)
		return -1;
	for (int i = 0; i < MEMBERS; i++) {
		struct member *m = &st.m[i];

		snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", ports[2 * i]);
		snprintf(m->peer, sizeof(m->peer), "http://127.0.0.1:%d", ports[2 * i + 1]);
		snprintf(m->dir, sizeof(m->dir), "%s/e%d", st.top, i);
		snprintf(m->log, sizeof(m->log), "%s/e%d.log", st.top, i);
		ulen += (size_t)snprintf(st.urls + ulen, sizeof(st.urls) - ulen, "%s%s",
		                         i ? "," : "", m->url);
		clen += (size_t)snprintf(cluster + clen, sizeof(cluster) - clen, "%sm%d=%s",
		                         i ? "," : "", i, m->peer);
	}
	for (int i = 0; i < MEMBERS; i++)
		if (start_member(c, i, cluster) < 0)
			return -1;
	for (int i = 0; i < MEMBERS; i++) {
		if (!member_ready(i, ETCD_START_MS)) {
			if (!bench_got_stop) {
				fprintf(stderr, "%s: etcd member m%d (%s) did not come up\n",
				        bench_prog, i, st.m[i].url);
				print_log_tail("etcd", st.m[i].log);
			}
			return -1;
		}
	}
	return 0;
}

/* ---- processes ---- */

static int start_node(const struct config *c, struct node *n)
{
	char opts[1024], why[128];
	int status, r;

	snprintf(n->backing, sizeof(n->backing), "%s/%s", st.top, n->host);
	snprintf(n->mnt, sizeof(n->mnt), "%s/%s.m", st.top, n->host);
	snprintf(n->log, sizeof(n->log), "%s/svcfs-%s.log", st.top, n->host);
	if (mkdir(n->backing, 0755) < 0 || mkdir(n->mnt, 0755) < 0) {
		fprintf(stderr, "%s: mkdir in %s: %s\n", bench_prog, st.top, strerror(errno));
		return -1;
	}
	/* address: only written into the records, never connected to */
	r = snprintf(opts, sizeof(opts), "etcd=%s,host=%s,address=127.0.0.1,etcd_prefix=%s%s%s",
	             st.urls, n->host, st.prefix, c->extra ? "," : "", c->extra ? c->extra : "");
	if (r < 0 || (size_t)r >= sizeof(opts)) {
		fprintf(stderr, "%s: svcfs options too long\n", bench_prog);
		return -1;
	}
	if (bench_svcfs_start(c->svcfs, opts, false, n->backing, n->mnt, n->log, &n->daemon) < 0)
		return -1;
	switch (bench_svcfs_wait_mounted(&n->daemon, n->mnt, MOUNT_TIMEOUT_MS, &status)) {
	case 0:
		return 0;
	case 1:
		if (WIFEXITED(status))
			snprintf(why, sizeof(why), "exit %d", WEXITSTATUS(status));
		else
			snprintf(why, sizeof(why), "signal %d", WTERMSIG(status));
		fprintf(stderr, "%s: svcfs %s exited before mounting (%s); does it know etcd=?\n",
		        bench_prog, n->host, why);
		print_log_tail("svcfs", n->log);
		return -1;
	case 2:
		fprintf(stderr, "%s: %s not mounted %u ms after svcfs started\n", bench_prog,
		        n->mnt, MOUNT_TIMEOUT_MS);
		return -1;
	default:
		return -1;
	}
}

/* The anchor service on a, and b's view of it: b's @a exists from then on. */
static int start_anchor(void)
{
	char path[PATH_MAX], view[PATH_MAX];
	int64_t end = bench_now_ns() + (int64_t)ANCHOR_MS * 1000000;

	snprintf(path, sizeof(path), "%s/anchor.sock", st.a.backing);
	snprintf(view, sizeof(view), "%s/@a/anchor", st.b.mnt);
	if (bench_service_spawn(path, &shm[1], &st.anchor, &st.anchor_ctl) < 0 ||
	    bench_write_all(st.anchor_ctl, "b", 1) < 0)
		return -1;
	while (!bench_got_stop) {
		struct stat sb;

		if (stat(view, &sb) == 0)
			return 0;
		if (bench_now_ns() > end) {
			fprintf(stderr, "%s: %s did not appear within %u ms\n", bench_prog, view,
			        ANCHOR_MS);
			show_logs();
			return -1;
		}
		bench_sleep_ms(10);
	}
	return -1;
}

/* ---- the watcher ---- */

/* Discard whatever the watcher holds (events of earlier steps). */
static unsigned drain_events(void)
{
	_Alignas(struct inotify_event) char buf[4096];
	unsigned n = 0;
	int avail = 0;

	while (ioctl(st.ifd, FIONREAD, &avail) == 0 && avail > 0) {
		ssize_t len = read(st.ifd, buf, sizeof(buf));

		if (len <= 0)
			break;
		for (char *p = buf; p < buf + len; n++) {
			struct inotify_event *ev = (struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
		}
	}
	return n;
}

/*
 * Read the watcher until NAME has arrived with every bit of WANT on both
 * watches (a's mount, b's @a); the time each read() returned that event
 * goes to *T_A, *T_B. 0: both; 1: not both within TIMEOUT_MS; -1: stopped,
 * or a watch is gone (said).
 */
static int wait_both(const char *name, uint32_t want, unsigned timeout_ms, int64_t *t_a,
                     int64_t *t_b)
{
	_Alignas(struct inotify_event) char buf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)];
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	*t_a = *t_b = 0;
	while (!bench_got_stop && (!*t_a || !*t_b)) {
		int64_t left = (end - bench_now_ns()) / 1000000;
		struct pollfd p = {.fd = st.ifd, .events = POLLIN};
		ssize_t n;
		int64_t t;

		if (left <= 0)
			return 1;
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		n = read(st.ifd, buf, sizeof(buf));
		t = bench_now_ns();
		if (n <= 0)
			continue;
		for (char *q = buf; q < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)q;

			q += sizeof(*ev) + ev->len;
			if (ev->mask & (IN_IGNORED | IN_UNMOUNT | IN_Q_OVERFLOW)) {
				fprintf(stderr, "%s: watch %d: %s\n", bench_prog, ev->wd,
				        ev->mask & IN_Q_OVERFLOW ? "queue overflow"
				                                 : "the watch is gone");
				return -1;
			}
			if (!ev->len || (ev->mask & want) != want || strcmp(ev->name, name) != 0)
				continue;
			if (ev->wd == st.wd_a && !*t_a)
				*t_a = t;
			else if (ev->wd == st.wd_b && !*t_b)
				*t_b = t;
		}
	}
	return bench_got_stop ? -1 : 0;
}

/* ---- figures ---- */

static void add(enum fig f, int64_t ns)
{
	figs[f].ns[figs[f].n++] = ns;
}

/* A timed event that did not come; -1 once too many did in a row. */
static int missing(enum fig f, const char *name, unsigned *consecutive)
{
	figs[f].missing++;
	fprintf(stderr, "%s: %s sample %s: no event within the timeout\n", bench_prog, figs[f].key,
	        name);
	if (++*consecutive < MAX_MISSING)
		return 0;
	fprintf(stderr, "%s: %u samples in a row without their event; stopping\n", bench_prog,
	        *consecutive);
	show_logs();
	return -1;
}

/* One appear and one crash sample of sN. */
static int sample_svcfs(const struct config *c, unsigned i, unsigned *consecutive)
{
	char name[32], path[PATH_MAX], view[PATH_MAX];
	int64_t t0, ta, tb;
	struct stat sb;
	int r;

	snprintf(name, sizeof(name), "s%u", i);
	snprintf(path, sizeof(path), "%s/%s.sock", st.a.backing, name);
	snprintf(view, sizeof(view), "%s/@a/%s", st.b.mnt, name);
	if (bench_service_spawn(path, &shm[0], &st.child, &st.ctl) < 0)
		return -1;
	bench_sleep_ms(c->pause_ms);
	drain_events();
	if (bench_write_all(st.ctl, "b", 1) < 0)
		return -1;
	r = wait_both(name, IN_CREATE | IN_ISDIR, c->timeout_ms, &ta, &tb);
	if (r < 0)
		return -1;
	t0 = atomic_load(&shm[0].t0);
	if (atomic_load(&shm[0].err)) {
		fprintf(stderr, "%s: the service child failed: %s\n", bench_prog,
		        strerror(atomic_load(&shm[0].err)));
		return -1;
	}
	if (ta)
		add(F_LOCAL_APPEAR, ta - t0);
	else if (missing(F_LOCAL_APPEAR, name, consecutive) < 0)
		return -1;
	if (tb) {
		add(F_REMOTE_APPEAR, tb - t0);
		if (stat(view, &sb) < 0 || !S_ISDIR(sb.st_mode))
			figs[F_REMOTE_APPEAR].check_fail++;
	} else if (missing(F_REMOTE_APPEAR, name, consecutive) < 0) {
		return -1;
	}
	if (verbose)
		fprintf(stderr, "%s: %s appear local %.1f us, remote %.1f us\n", bench_prog, name,
		        ta ? (double)(ta - t0) / 1e3 : -1.0, tb ? (double)(tb - t0) / 1e3 : -1.0);
	if (!ta || !tb) {
		/* not a crash sample: let it go and wait for it to leave */
		bench_kill_and_reap(&st.child);
		close_fd(&st.ctl);
		unlink(path);
		bench_sleep_ms(c->timeout_ms);
		return 0;
	}

	bench_sleep_ms(c->pause_ms);
	drain_events();
	t0 = bench_now_ns();
	kill(st.child, SIGKILL);
	r = wait_both(name, IN_DELETE | IN_ISDIR, c->timeout_ms, &ta, &tb);
	bench_kill_and_reap(&st.child);
	close_fd(&st.ctl);
	unlink(path); /* the dead socket's file: no longer a service */
	if (r < 0)
		return -1;
	if (ta)
		add(F_LOCAL_CRASH, ta - t0);
	else if (missing(F_LOCAL_CRASH, name, consecutive) < 0)
		return -1;
	if (tb) {
		*consecutive = 0;
		add(F_REMOTE_CRASH, tb - t0);
		errno = 0;
		if (stat(view, &sb) == 0 || errno != ENOENT)
			figs[F_REMOTE_CRASH].check_fail++;
	} else if (missing(F_REMOTE_CRASH, name, consecutive) < 0) {
		return -1;
	}
	if (verbose)
		fprintf(stderr, "%s: %s crash local %.1f us, remote %.1f us\n", bench_prog, name,
		        ta ? (double)(ta - t0) / 1e3 : -1.0, tb ? (double)(tb - t0) / 1e3 : -1.0);
	return 0;
}

/* The next watch event of TYPE for KEY (NULL: any key); its time in *T1.
 * 0, 1 (timeout), -1. */
static int wait_watch(enum etcd_event_type type, const char *key, unsigned timeout_ms, int64_t *t1)
{
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	while (!bench_got_stop) {
		struct pollfd p = {.fd = etcd_watch_fd(st.watch), .events = POLLIN};
		struct etcd_event *ev = NULL;
		int64_t left;

		while (etcd_watch_next(st.watch, &ev) == 0) {
			int64_t t = bench_now_ns();
			bool match = ev->type == type &&
			             (!key || (ev->kv.key && strcmp(ev->kv.key, key) == 0));

			if (ev->type == ETCD_EV_COMPACTED) {
				fprintf(stderr, "%s: the baseline's watch was compacted\n",
				        bench_prog);
				etcd_event_free(ev);
				return -1;
			}
			etcd_event_free(ev);
			if (match) {
				*t1 = t;
				return 0;
			}
		}
		left = (end - bench_now_ns()) / 1000000;
		if (left <= 0)
			return 1;
		poll(&p, 1, (int)left);
	}
	return -1;
}

/* One etcd-put and one etcd-del sample: a value of SIZE bytes at a key of sN's. */
static int sample_etcd(const struct config *c, unsigned i, const char *value, size_t size,
                       unsigned *consecutive)
{
	char key[128];
	int64_t t0, t1 = 0, rtt;
	int r;

	snprintf(key, sizeof(key), "%sbaseline/s%u", st.prefix, i);
	bench_sleep_ms(c->pause_ms);
	t0 = bench_now_ns();
	r = etcd_put(st.client, key, value, size, 0, NULL);
	rtt = bench_now_ns() - t0;
	if (r < 0) {
		fprintf(stderr, "%s: etcd put %s: %s\n", bench_prog, key, etcd_errmsg(st.client));
		return -1;
	}
	add(F_ETCD_PUT_RTT, rtt);
	r = wait_watch(ETCD_EV_PUT, key, c->timeout_ms, &t1);
	if (r < 0)
		return -1;
	if (r == 0)
		add(F_ETCD_PUT, t1 - t0);
	else if (missing(F_ETCD_PUT, key, consecutive) < 0)
		return -1;

	bench_sleep_ms(c->pause_ms);
	t0 = bench_now_ns();
	r = etcd_delete(st.client, key, NULL);
	if (r < 0) {
		fprintf(stderr, "%s: etcd delete %s: %s\n", bench_prog, key,
		        etcd_errmsg(st.client));
		return -1;
	}
	r = wait_watch(ETCD_EV_DELETE, key, c->timeout_ms, &t1);
	if (r < 0)
		return -1;
	if (r == 0)
		add(F_ETCD_DEL, t1 - t0);
	else if (missing(F_ETCD_DEL, key, consecutive) < 0)
		return -1;
	return 0;
}

/* The size of a's published record of the anchor (the baseline puts as much). */
static size_t record_size(void)
{
	char key[128];
	struct etcd_kvs *kvs = NULL;
	size_t size = 256;

	snprintf(key, sizeof(key), "%shosts/a/anchor", st.prefix);
	if (etcd_range_prefix(st.client, key, &kvs) == 0)
		for (size_t i = 0; i < kvs->n; i++)
			if (strcmp(kvs->kv[i].key, key) == 0)
				size = kvs->kv[i].value_len;
	etcd_kvs_free(kvs);
	return size;
}

/* ---- report ---- */

static const char *fmt_us(double us, char *buf, size_t len)
{
	if (us >= 10000)
		snprintf(buf, len, "%.1f ms", us / 1000);
	else if (us >= 1000)
		snprintf(buf, len, "%.2f ms", us / 1000);
	else
		snprintf(buf, len, "%.0f us", us);
	return buf;
}

/* First line of `PROG --version`, "?" when there is none. */
static void first_line_of(const char *prog, char *buf, size_t len)
{
	char cmd[PATH_MAX + 32];
	FILE *p;

	snprintf(buf, len, "?");
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>&1", prog);
	p = popen(cmd, "r");
	if (!p)
		return;
	if (fgets(buf, (int)len, p))
		buf[strcspn(buf, "\n")] = '\0';
	pclose(p);
}

static void report(const struct config *c, size_t size)
{
	struct utsname u;
	cpu_set_t cpus;
	char version[128], etcd_version[128], cpu[128];
	int nproc = 0;

	uname(&u);
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
		nproc = CPU_COUNT(&cpus);
	bench_proc_field("/proc/cpuinfo", "model name", cpu, sizeof(cpu));
	bench_svcfs_version(c->svcfs, version, sizeof(version));
	first_line_of(c->etcd, etcd_version, sizeof(etcd_version));
	for (int f = 0; f < NFIGS; f++)
		qsort(figs[f].ns, figs[f].n, sizeof(int64_t), bench_cmp_i64);

	printf("svcfs-bench-cluster\n");
	printf("machine:  Linux %s %s, nproc %d, %s\n", u.release, u.machine, nproc, cpu);
	printf("versions: %s; %s\n", version, etcd_version);
	printf("etcd:     3 members on loopback, data in %s, heartbeat 50 ms, election 500 ms\n",
	       st.top);
	printf(
	    "svcfs:    two daemons, -o etcd=URLS,host=a|b,address=127.0.0.1,etcd_prefix=%s%s%s\n",
	    st.prefix, c->extra ? "," : "", c->extra ? c->extra : "");
	printf("setup:    %u rounds, one sample of every figure each, %u ms pause before each; "
	       "event timeout %u ms; baseline values of %zu bytes (a's record)\n\n",
	       c->rounds, c->pause_ms, c->timeout_ms, size);
	printf("%-14s %-50s %5s %10s %10s %16s\n", "figure", "from -> to", "n", "median", "p99",
	       "x etcd p50/p99");
	for (int f = 0; f < NFIGS; f++) {
		const struct figure *g = &figs[f], *ref = g->ref >= 0 ? &figs[g->ref] : NULL;
		char a[32], b[32], r[40] = "-";

		if (ref && g->n && ref->n)
			snprintf(
			    r, sizeof(r), "%.2fx / %.2fx",
			    bench_pct_us(g->ns, g->n, 0.5) / bench_pct_us(ref->ns, ref->n, 0.5),
			    bench_pct_us(g->ns, g->n, 0.99) / bench_pct_us(ref->ns, ref->n, 0.99));
		printf("%-14s %-50s %5u %10s %10s %16s\n", g->key, g->what, g->n,
		       g->n ? fmt_us(bench_pct_us(g->ns, g->n, 0.5), a, sizeof(a)) : "-",
		       g->n ? fmt_us(bench_pct_us(g->ns, g->n, 0.99), b, sizeof(b)) : "-", r);
	}
	printf("\n");
	for (int f = 0; f < NFIGS; f++)
		if (figs[f].missing || figs[f].check_fail)
			printf("%-14s missing events %u, stat disagreed after the event %u\n",
			       figs[f].key, figs[f].missing, figs[f].check_fail);
	if (figs[F_REMOTE_APPEAR].n && figs[F_LOCAL_APPEAR].n && figs[F_ETCD_PUT].n) {
		char a[32], b[32];
		double extra =
		    bench_pct_us(figs[F_REMOTE_APPEAR].ns, figs[F_REMOTE_APPEAR].n, 0.5) -
		    bench_pct_us(figs[F_LOCAL_APPEAR].ns, figs[F_LOCAL_APPEAR].n, 0.5);

		printf("remote-appear p50 - local-appear p50 = %s (etcd-put p50 alone: %s)\n",
		       fmt_us(extra, a, sizeof(a)),
		       fmt_us(bench_pct_us(figs[F_ETCD_PUT].ns, figs[F_ETCD_PUT].n, 0.5), b,
		              sizeof(b)));
	}
}

/* ---- main ---- */

static const char *default_etcd(void)
{
	static const char *const paths[] = {"/usr/bin/etcd", "/usr/local/bin/etcd"};
	const char *env = getenv("SVCFS_ETCD");

	if (env && *env)
		return env;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "usage: svcfs-bench-cluster [--svcfs PATH] [--etcd PATH] [--rounds N]\n"
	        "                           [--svcfs-opts OPTS] [--pause-ms MS] [--timeout-ms MS]\n"
	        "                           [--dir DIR] [--verbose]\n"
	        "  --svcfs PATH       daemon to measure (default %s)\n"
	        "  --etcd PATH        etcd binary (default $SVCFS_ETCD, /usr/bin/etcd)\n"
	        "  --rounds N         samples of every figure (default 200)\n"
	        "  --svcfs-opts OPTS  more -o options for both daemons (default: none)\n"
	        "  --pause-ms MS      idle time before each sample (default 20)\n"
	        "  --timeout-ms MS    how long to wait for an event (default 5000)\n"
	        "  --dir DIR          where the temporary directory goes (default /dev/shm,\n"
	        "                     else $TMPDIR or /tmp)\n"
	        "  --verbose          every sample on stderr\n"
	        "Needs root (or a FUSE-capable user), /dev/fuse and etcd (Debian: etcd-server).\n",
	        SVCFS_BIN);
}

static const char *default_dir(void)
{
	const char *tmp = getenv("TMPDIR");

	if (access("/dev/shm", W_OK) == 0)
		return "/dev/shm";
	return tmp && *tmp ? tmp : "/tmp";
}

static int make_top(const struct config *c)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/svcfs-bc.XXXXXX", c->dir);
	if (!mkdtemp(path)) {
		fprintf(stderr, "%s: mkdtemp %s: %s\n", bench_prog, path, strerror(errno));
		return -1;
	}
	if (strlen(path) + 24 >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "%s: %s: too long for socket addresses below it; use --dir\n",
		        bench_prog, path);
		rmdir(path);
		return -1;
	}
	memcpy(st.top, path, strlen(path) + 1);
	return 0;
}

static int run(const struct config *c)
{
	char *value;
	size_t size;
	unsigned consecutive = 0;

	if (make_top(c) < 0 || start_cluster(c) < 0)
		return -1;
	snprintf(st.prefix, sizeof(st.prefix), "/bench-%ld/", (long)getpid());
	if (start_node(c, &st.a) < 0 || start_node(c, &st.b) < 0 || start_anchor() < 0)
		return -1;
	st.ifd = inotify_init1(IN_CLOEXEC);
	if (st.ifd < 0)
		return -1;
	st.wd_a = inotify_add_watch(st.ifd, st.a.mnt, IN_CREATE | IN_DELETE | IN_ONLYDIR);
	{
		char at[PATH_MAX];

		snprintf(at, sizeof(at), "%s/@a", st.b.mnt);
		st.wd_b = inotify_add_watch(st.ifd, at, IN_CREATE | IN_DELETE | IN_ONLYDIR);
		if (st.wd_a < 0 || st.wd_b < 0) {
			fprintf(stderr, "%s: inotify on %s and %s: %s\n", bench_prog, st.a.mnt, at,
			        strerror(errno));
			return -1;
		}
	}
	/* the baseline's client starts with the endpoint the daemons use first */
	st.client = etcd_new(st.urls, CALL_TIMEOUT_MS);
	if (!st.client)
		return -1;
	{
		char prefix[96];

		snprintf(prefix, sizeof(prefix), "%sbaseline/", st.prefix);
		st.watch = etcd_watch_new(st.client, prefix, 0, 0);
		if (!st.watch) {
			fprintf(stderr, "%s: etcd watch: %s\n", bench_prog, etcd_errmsg(st.client));
			return -1;
		}
	}
	size = record_size();
	value = malloc(size + 1);
	if (!value)
		return -1;
	memset(value, 'x', size);
	value[size] = '\0';
	/* the watch's first event says it is connected */
	{
		int64_t t;

		wait_watch(ETCD_EV_CREATED, NULL, 2000, &t);
	}
	for (unsigned i = 0; i < c->rounds && !bench_got_stop; i++) {
		if (sample_svcfs(c, i, &consecutive) < 0 ||
		    sample_etcd(c, i, value, size, &consecutive) < 0) {
			free(value);
			return -1;
		}
	}
	free(value);
	if (bench_got_stop)
		return -1;
	report(c, size);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"svcfs", required_argument, NULL, 'b'},
	    {"etcd", required_argument, NULL, 'e'},
	    {"rounds", required_argument, NULL, 'R'},
	    {"svcfs-opts", required_argument, NULL, 'o'},
	    {"pause-ms", required_argument, NULL, 'p'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"dir", required_argument, NULL, 'd'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct config c = {
	    .svcfs = SVCFS_BIN,
	    .etcd = default_etcd(),
	    .rounds = 200,
	    .pause_ms = 20,
	    .timeout_ms = 5000,
	    .dir = default_dir(),
	};
	const struct bench_opt opts[] = {
	    {.val = 'R', .name = "--rounds", .min = 1, .max = 1000000, .num = &c.rounds},
	    {.val = 'p', .name = "--pause-ms", .min = 0, .max = 60000, .num = &c.pause_ms},
	    {.val = 't', .name = "--timeout-ms", .min = 1, .max = 3600000, .num = &c.timeout_ms},
	    {.val = 'b', .str = &c.svcfs},
	    {.val = 'e', .str = &c.etcd},
	    {.val = 'o', .str = &c.extra},
	    {.val = 'd', .str = &c.dir},
	    {.val = 'v', .flag = &verbose},
	    {.val = 0},
	};
	int opt, opt_exit, rc;

	while ((opt = bench_next_option(argc, argv, longopts, opts, usage, &opt_exit)) > 0)
		;
	if (opt < 0)
		return opt_exit;
	if (!c.etcd || access(c.etcd, X_OK) != 0) {
		fprintf(stderr, "%s: no etcd binary (Debian: etcd-server; or --etcd PATH)\n",
		        bench_prog);
		return 1;
	}
	if (bench_check_svcfs(c.svcfs) < 0)
		return 1;
	shm =
	    mmap(NULL, 2 * sizeof(*shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shm == MAP_FAILED) {
		fprintf(stderr, "%s: mmap: %s\n", bench_prog, strerror(errno));
		return 1;
	}
	for (int f = 0; f < NFIGS; f++) {
		figs[f].ns = calloc(c.rounds, sizeof(*figs[f].ns));
		if (!figs[f].ns) {
			fprintf(stderr, "%s: out of memory\n", bench_prog);
			return 1;
		}
	}
	bench_install_signals(NULL);
	atexit(cleanup_at_exit);
	rc = run(&c) < 0 ? 1 : 0;
	cleanup();
	if (bench_got_stop) {
		fprintf(stderr, "%s: interrupted by signal %d; cleaned up\n", bench_prog,
		        (int)bench_got_stop);
		rc = 130;
	}
	for (int f = 0; f < NFIGS; f++)
		free(figs[f].ns);
	return rc;
}
