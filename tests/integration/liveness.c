/*
 * liveness — when a service exists in the mount (SPEC §3): svcfs reads
 * liveness from the kernel without disturbing the service (at most one
 * connection in its life, never the lock), a SIGKILLed owner vanishes
 * through its pidfd long before any probe interval, PID hints are never
 * trusted alone, lock files gate visibility, health checks set
 * `unhealthy`, `-o reap` cleans stale sockets safely, `-o ro` is refused.
 *
 * The services here are real processes driven through a command pipe
 * (srv_*): each command is one byte, answered once the server has done
 * it, so a test knows exactly what the service did and when. Bounds that
 * stand for "svcfs could only do this through the pidfd" use a
 * probe_interval of 60 s: vanishing within a few seconds then proves the
 * path without measuring latency.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(liveness, .init = h_setup, .fini = h_teardown, .timeout = 60);

#define SRV_MS        5000  /* bound of every answer from a server */
#define PIDFD_BOUND   10000 /* far below the 60 s interval used with it */
#define FEW_INTERVALS 1000  /* five intervals of 0.2 s */
#define SILENT_MAX    256

/* ---- a service driven through a command pipe ---- */

enum srv_mode {
	SRV_GREET,  /* accept, send "hello\n", close */
	SRV_HTTP,   /* accept, read a request, answer 200 or 500, close */
	SRV_SILENT, /* accept and never answer (connections kept open) */
};

struct srv_opts {
	int type; /* 0: SOCK_STREAM */
	enum srv_mode mode;
	bool bind_only;   /* listen only on command 'L' */
	const char *lock; /* lock file opened at start (taken on 'K', released on 'U') */
};

struct srv {
	pid_t pid;
	int cmd; /* write end: commands */
	int rep; /* read end: answers */
};

/* Command bytes: what the server does, then answers ('k' unless noted). */
#define CMD_LISTEN  'L' /* listen(2) */
#define CMD_CLOSE   'C' /* close the listening socket, keep running */
#define CMD_LOCK    'K' /* flock(LOCK_EX) on the lock file */
#define CMD_UNLOCK  'U' /* flock(LOCK_UN) */
#define CMD_HTTP500 'E' /* answer 500 from now on */
#define CMD_HTTP200 'O' /* answer 200 from now on */
#define CMD_COUNT   'Q' /* answer: int, connections accepted so far */
#define CMD_LASTREQ 'R' /* answer: 128 bytes, the last request line */
#define CMD_HOLDER  'H' /* fork a child that only holds the socket; answer: its pid_t */
#define CMD_FORK    'F' /* daemonize: fork a child that keeps serving, answer its pid_t, exit */

struct srv_state {
	int cmd, rep, lfd, lockfd, type;
	enum srv_mode mode;
	bool listening;
	int status; /* HTTP status to answer */
	int count;
	char last[128];
	int silent[SILENT_MAX];
	unsigned nsilent;
	pid_t tester;
};

static void put(int fd, const void *p, size_t n)
{
	ssize_t w = write(fd, p, n);
	(void)w;
}

static void serve_http(struct srv_state *s, int c)
{
	struct timeval tv = {1, 0};
	char req[1024], *eol;
	size_t len = 0;
	const char *resp;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1) {
		ssize_t n = recv(c, req + len, sizeof(req) - 1 - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[len] = '\0';
	if (len > 0) {
		eol = strpbrk(req, "\r\n");
		if (eol)
			*eol = '\0';
		snprintf(s->last, sizeof(s->last), "%.127s", req);
		resp = s->status == 200 ? "HTTP/1.0 200 OK\r\n\r\n"
		                        : "HTTP/1.0 500 Internal Server Error\r\n\r\n";
		send(c, resp, strlen(resp), MSG_NOSIGNAL);
	}
	close(c);
}

static void serve_one(struct srv_state *s)
{
	int c = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

	if (c < 0)
		return;
	s->count++;
	switch (s->mode) {
	case SRV_GREET:
		send(c, "hello\n", 6, MSG_NOSIGNAL);
		close(c);
		break;
	case SRV_HTTP:
		serve_http(s, c);
		break;
	case SRV_SILENT:
		if (s->nsilent == SILENT_MAX) {
			close(s->silent[0]);
			memmove(s->silent, s->silent + 1, (SILENT_MAX - 1) * sizeof(int));
			s->nsilent--;
		}
		s->silent[s->nsilent++] = c;
		break;
	}
}

/* The grandchild of CMD_FORK: wait to be reparented to the tester, then serve forever. */
static void forked_daemon(struct srv_state *s, pid_t parent)
{
	close(s->cmd);
	close(s->rep);
	while (getppid() == parent)
		h_sleep_ms(1);
	/* a subreaper (the test process) adopted us: die with it from now on */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != s->tester)
		_exit(0);
	for (;;)
		serve_one(s);
}

static void srv_command(struct srv_state *s, char c)
{
	char ok = 'k';
	pid_t child, self;

	switch (c) {
	case CMD_LISTEN:
		if (listen(s->lfd, 64) < 0)
			ok = 'e';
		s->listening = ok == 'k';
		break;
	case CMD_CLOSE:
		close(s->lfd);
		s->lfd = -1;
		s->listening = false;
		break;
	case CMD_LOCK:
		if (s->lockfd < 0 || flock(s->lockfd, LOCK_EX) < 0)
			ok = 'e';
		break;
	case CMD_UNLOCK:
		if (s->lockfd < 0 || flock(s->lockfd, LOCK_UN) < 0)
			ok = 'e';
		break;
	case CMD_HTTP500:
		s->status = 500;
		break;
	case CMD_HTTP200:
		s->status = 200;
		break;
	case CMD_COUNT:
		put(s->rep, &s->count, sizeof(s->count));
		return;
	case CMD_LASTREQ:
		put(s->rep, s->last, sizeof(s->last));
		return;
	case CMD_HOLDER:
		child = fork();
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(s->cmd);
			close(s->rep);
			for (;;)
				pause();
		}
		put(s->rep, &child, sizeof(child));
		return;
	case CMD_FORK:
		self = getpid();
		child = fork();
		if (child == 0)
			forked_daemon(s, self);
		put(s->rep, &child, sizeof(child));
		_exit(0);
	default:
		ok = 'e';
	}
	put(s->rep, &ok, 1);
}

static void srv_main(const char *abs, const struct srv_opts *o, struct srv_state *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char ok = 'k';

	s->type = o->type ? o->type : SOCK_STREAM;
	s->mode = o->mode;
	s->status = 200;
	s->lockfd = -1;
	s->tester = getppid();
	if (o->lock) {
		s->lockfd = open(o->lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (s->lockfd < 0)
			goto fail;
	}
	if (strlen(abs) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	strcpy(sa.sun_path, abs);
	s->lfd = socket(AF_UNIX, s->type | SOCK_CLOEXEC, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (s->type != SOCK_DGRAM && !o->bind_only) {
		if (listen(s->lfd, 64) < 0)
			goto fail;
		s->listening = true;
	}
	put(s->rep, &ok, 1);
	for (;;) {
		struct pollfd p[2] = {{.fd = s->cmd, .events = POLLIN},
		                      {.fd = s->lfd, .events = POLLIN}};
		nfds_t n = s->listening && s->type != SOCK_DGRAM ? 2 : 1;

		if (poll(p, n, -1) < 0)
			continue;
		if (p[0].revents) {
			char c;
			if (read(s->cmd, &c, 1) != 1)
				_exit(0);
			srv_command(s, c);
			continue;
		}
		if (n == 2 && (p[1].revents & POLLIN))
			serve_one(s);
	}
fail : {
	int err = errno ? errno : EIO;
	ok = 'e';
	put(s->rep, &ok, 1);
	put(s->rep, &err, sizeof(err));
	_exit(1);
}
}

/* Read exactly SIZE bytes from FD within SRV_MS. */
static bool read_bounded(int fd, void *buf, size_t size)
{
	size_t got = 0;

	while (got < size) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, SRV_MS) != 1)
			return false;
		n = read(fd, (char *)buf + got, size - got);
		if (n <= 0)
			return false;
		got += (size_t)n;
	}
	return true;
}

/* Start a server bound at PATH (relative: below BACKING). Returns once bound (and listening). */
static struct srv srv_start(const char *path, const struct srv_opts *o)
{
	struct srv_opts none = {0};
	char abs[PATH_MAX], ok = 0;
	int cp[2], rp[2], r;
	struct srv s;
	pid_t pid;

	if (!o)
		o = &none;
	snprintf(abs, sizeof(abs), "%s", path[0] == '/' ? path : h_b("%s", path));
	r = pipe2(cp, O_CLOEXEC);
	cr_assert_eq(r, 0);
	r = pipe2(rp, O_CLOEXEC);
	cr_assert_eq(r, 0);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		struct srv_state st = {0};
		int hi_cmd, hi_rep;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGPIPE, SIG_IGN);
		/* keep only the two pipe ends (3 and 4): no other test fd leaks into a service */
		hi_cmd = fcntl(cp[0], F_DUPFD, 100);
		hi_rep = fcntl(rp[1], F_DUPFD, 100);
		if (hi_cmd < 0 || hi_rep < 0 || dup2(hi_cmd, 3) < 0 || dup2(hi_rep, 4) < 0)
			_exit(1);
		close_range(5, ~0u, 0);
		st.cmd = 3;
		st.rep = 4;
		srv_main(abs, o, &st);
		_exit(1);
	}
	close(cp[0]);
	close(rp[1]);
	h_track(pid);
	s = (struct srv){.pid = pid, .cmd = cp[1], .rep = rp[0]};
	if (!read_bounded(s.rep, &ok, 1))
		cr_assert_fail("server %s did not report", abs);
	if (ok != 'k') {
		int err = 0;
		read_bounded(s.rep, &err, sizeof(err));
		cr_assert_fail("server %s did not start: %s", abs, strerror(err));
	}
	return s;
}

static void srv_send(const struct srv *s, char c)
{
	ssize_t n = write(s->cmd, &c, 1);

	cr_assert_eq(n, 1, "command %c to server %ld: %s", c, (long)s->pid, strerror(errno));
}

/* Send command C and wait for the server's 'k'. */
static void srv_do(const struct srv *s, char c)
{
	char ok = 0;
	bool got;

	srv_send(s, c);
	got = read_bounded(s->rep, &ok, 1);
	cr_assert(got, "server %ld did not answer command %c", (long)s->pid, c);
	cr_assert_eq(ok, 'k', "server %ld failed command %c", (long)s->pid, c);
}

static int srv_count(const struct srv *s)
{
	int n = -1;
	bool got;

	srv_send(s, CMD_COUNT);
	got = read_bounded(s->rep, &n, sizeof(n));
	cr_assert(got, "server %ld did not report its count", (long)s->pid);
	return n;
}

static pid_t srv_pid_answer(const struct srv *s, char c)
{
	pid_t p = -1;
	bool got;

	srv_send(s, c);
	got = read_bounded(s->rep, &p, sizeof(p));
	cr_assert(got && p > 0, "server %ld did not fork (command %c)", (long)s->pid, c);
	return p;
}

struct lastreq_ctx {
	const struct srv *s;
	const char *want;
	char got[128];
};

static bool lastreq_is(void *ctx)
{
	struct lastreq_ctx *c = ctx;
	bool got;

	srv_send(c->s, CMD_LASTREQ);
	got = read_bounded(c->s->rep, c->got, sizeof(c->got));
	c->got[sizeof(c->got) - 1] = '\0';
	return got && strcmp(c->got, c->want) == 0;
}

static void srv_kill(struct srv *s)
{
	h_kill(s->pid);
	close(s->cmd);
	close(s->rep);
	s->cmd = s->rep = -1;
}

/* ---- other processes ---- */

/* Fork a process that takes flock(LOCK_EX) on PATH and holds it until killed. */
static pid_t lock_holder(const char *path)
{
	int p[2], r;
	char ok = 0;
	pid_t pid;

	r = pipe2(p, O_CLOEXEC);
	cr_assert_eq(r, 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		ok = fd >= 0 && flock(fd, LOCK_EX) == 0 ? 'k' : 'e';
		put(p[1], &ok, 1);
		for (;;)
			pause();
	}
	close(p[1]);
	h_track(pid);
	read_bounded(p[0], &ok, 1);
	close(p[0]);
	cr_assert_eq(ok, 'k', "could not hold a lock on %s", path);
	return pid;
}

/* Fork `sleep 100` (a process that holds nothing), killed at teardown. */
static pid_t start_sleeper(void)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close_range(3, ~0u, 0);
		execlp("sleep", "sleep", "100", (char *)NULL);
		_exit(127);
	}
	h_track(pid);
	return pid;
}

/* ---- small helpers ---- */

static const char *pid_line(pid_t pid)
{
	static char buf[4][32];
	static unsigned next;
	char *b = buf[next++ % 4];

	snprintf(b, 32, "%ld\n", (long)pid);
	return b;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
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

static void make_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

	cr_assert_geq(fd, 0, "create %s: %s", path, strerror(errno));
	close(fd);
}

/* flock(LOCK_EX|LOCK_NB) on PATH through a fresh open: 0 or -errno. Released at once. */
static int try_lock(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		r = -errno;
	else
		flock(fd, LOCK_UN);
	close(fd);
	return r;
}

/* Lines of /proc/locks naming the file at PATH (any process, any lock type). */
static int locks_on(const char *path)
{
	char needle[64], line[256];
	struct stat st;
	int n = 0;
	FILE *f;

	if (stat(path, &st) < 0)
		return 0;
	snprintf(needle, sizeof(needle), " %02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev),
	         (unsigned long)st.st_ino);
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/* The daemon's stderr into the test's log, to explain a failure. */
static void log_daemon_stderr(void)
{
	char *err = h_daemon_stderr();
	siginfo_t si = {0};
	int r = H.daemon ? waitid(P_PID, (id_t)H.daemon, &si, WEXITED | WNOHANG | WNOWAIT) : -1;

	cr_log_error("svcfs stderr:\n%s", err ? err : "(none)");
	cr_log_error("still mounted: %s; daemon %ld: %s (code %d, status %d)",
	             h_mounted(H.mnt, NULL, 0) ? "yes" : "no", (long)H.daemon,
	             r == 0 && si.si_pid == 0 ? "running" : "ended", si.si_code, si.si_status);
	free(err);
}

/* Fail with WHAT, and the daemon's stderr in the log, unless OK. */
static void assert_or_log(bool ok, const char *what)
{
	if (!ok)
		log_daemon_stderr();
	cr_assert(ok, "%s", what);
}

/* ---- at most one connection ---- */

Test(liveness, at_most_one_connection_in_a_life)
{
	struct srv web;
	int n;

	h_mount_opts("probe_interval=0.2", NULL);
	web = srv_start("web.sock", NULL);
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web.pid)), "MNT/web/pid is '%s'",
	          show(h_m("web/pid")));
	/* ~50 intervals, with readers of the service's files now and then */
	for (int i = 0; i < 20; i++) {
		char *state = h_slurp(h_m("web/state"));
		if (!state)
			log_daemon_stderr();
		cr_assert_not_null(
		    state, "MNT/web vanished while its service listens (after %d ms)", i * 500);
		free(state);
		h_sleep_ms(500);
	}
	n = srv_count(&web);
	cr_log_info("svcfs connected %d time(s) in ~50 probe intervals", n);
	cr_assert_leq(n, 1, "svcfs connected %d times to a live service in ~50 intervals", n);
	h_assert_daemon_alive();
}

/* ---- listening, or not ---- */

Test(liveness, bound_but_not_listening_never_appears)
{
	struct srv_opts idle = {.bind_only = true};
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	srv_start("idle.sock", &idle);
	srv_start("plain.sock", NULL);
	cr_assert(h_wait_exists(h_m("plain/state")), "the listening neighbour did not appear");
	h_sleep_ms(FEW_INTERVALS);
	r = access(h_m("idle"), F_OK);
	cr_assert_eq(r, -1, "a socket that is bound but never listens appeared");
	cr_assert(h_wait_listed(H.mnt, "idle", false));
	h_assert_daemon_alive();
}

Test(liveness, appears_once_it_listens)
{
	struct srv_opts late_opts = {.bind_only = true};
	struct srv late;
	char buf[16];
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	srv_start("plain.sock", NULL);
	cr_assert(h_wait_exists(h_m("plain/state")));
	late = srv_start("late.sock", &late_opts);
	/* bound for 300 ms before it listens */
	h_sleep_ms(300);
	r = access(h_m("late"), F_OK);
	cr_assert_eq(r, -1, "visible before it listens");
	srv_do(&late, CMD_LISTEN);
	cr_assert(h_wait_exists(h_m("late/state")), "did not appear once it listened");
	cr_assert(h_wait_content(h_m("late/state"), "alive\n"));
	r = h_connect_read(h_m("late/socket"), SOCK_STREAM, buf, sizeof(buf));
	cr_assert_eq(r, 0, "connect through MNT/late/socket: %s", strerror(-r));
	cr_assert_str_eq(buf, "hello\n");
	h_assert_daemon_alive();
}

/* ---- the owner's exit ---- */

Test(liveness, sigkilled_owner_vanishes_through_its_pidfd)
{
	struct srv web, other;

	/* a 60 s interval: only the owner's pidfd can explain a vanish within seconds */
	h_mount_opts("probe_interval=60", NULL);
	web = srv_start("web.sock", NULL);
	other = srv_start("other.sock", NULL);
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web.pid)), "MNT/web/pid is '%s'",
	          show(h_m("web/pid")));
	cr_assert(h_wait_content(h_m("other/pid"), pid_line(other.pid)));
	srv_kill(&web);
	cr_assert(h_wait_until_gone_ms(h_m("web"), PIDFD_BOUND),
	          "MNT/web stayed %d ms after its owner was SIGKILLed (probe_interval=60)",
	          PIDFD_BOUND);
	cr_assert(h_wait_listed(H.mnt, "web", false));
	cr_assert(exists(h_m("other/state")), "the other service vanished too");
	cr_assert(exists(h_b("web.sock")), "the socket file itself went away: not the case tested");
	h_assert_daemon_alive();
}

Test(liveness, closed_listener_vanishes_while_its_process_runs)
{
	struct srv web;
	int r;

	h_mount_opts("probe_interval=0.2", NULL);
	web = srv_start("web.sock", NULL);
	cr_assert(h_wait_exists(h_m("web/state")));
	srv_do(&web, CMD_CLOSE);
	cr_assert(h_wait_gone(h_m("web")),
	          "MNT/web stayed after its process closed the listening socket");
	r = kill(web.pid, 0);
	cr_assert_eq(r, 0, "the service process is gone: not the case tested");
	cr_assert(exists(h_b("web.sock")), "the socket file went away: not the case tested");
	h_sleep_ms(FEW_INTERVALS);
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, -1, "MNT/web came back");
	h_assert_daemon_alive();
}

/*
 * A classic daemon: listen, fork, the parent exits and the child keeps
 * the socket. The owner's pidfd fires, but the kernel still lists the
 * socket: the entry stays (the same entry: same inode) and svcfs finds the
 * new holder. probe_interval=60 leaves only the pidfd path to find it.
 */
Test(liveness, listener_handed_to_a_forked_child_stays)
{
	struct stat before, after;
	struct srv web;
	char buf[16];
	pid_t child;
	int r, st;
	bool ok;

	r = prctl(PR_SET_CHILD_SUBREAPER, 1);
	cr_assert_eq(r, 0, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	h_mount_opts("probe_interval=60", NULL);
	web = srv_start("web.sock", NULL);
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web.pid)), "MNT/web/pid is '%s'",
	          show(h_m("web/pid")));
	r = stat(h_m("web"), &before);
	cr_assert_eq(r, 0);

	child = srv_pid_answer(&web, CMD_FORK);
	h_track(child);
	st = h_join(web.pid, SRV_MS);
	cr_assert(st != -1 && WIFEXITED(st), "the parent did not exit");

	ok = h_wait_until_content_ms(h_m("web/pid"), pid_line(child), PIDFD_BOUND);
	cr_assert(ok, "MNT/web/pid is '%s', expected the child %ld after the parent %ld exited",
	          show(h_m("web/pid")), (long)child, (long)web.pid);
	r = stat(h_m("web"), &after);
	cr_assert_eq(r, 0, "MNT/web vanished although the child still listens");
	cr_assert_eq(after.st_ino, before.st_ino,
	             "MNT/web is a new directory: the service vanished and came back");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	r = h_connect_read(h_m("web/socket"), SOCK_STREAM, buf, sizeof(buf));
	cr_assert_eq(r, 0, "connect: %s", strerror(-r));
	cr_assert_str_eq(buf, "hello\n");

	/* and the child's own exit is followed as well */
	h_kill(child);
	cr_assert(h_wait_until_gone_ms(h_m("web"), PIDFD_BOUND),
	          "MNT/web stayed after the child holding the socket was SIGKILLed");
	h_assert_daemon_alive();
}

Test(liveness, dgram_owner_found_and_followed)
{
	struct srv_opts dgram = {.type = SOCK_DGRAM};
	struct srv logs;

	h_mount_opts("probe_interval=60", NULL);
	logs = srv_start("logs.sock", &dgram);
	cr_assert(h_wait_exists(h_m("logs/state")), "a bound dgram socket did not appear");
	cr_assert(h_wait_content(h_m("logs/pid"), pid_line(logs.pid)),
	          "MNT/logs/pid is '%s', expected %ld (found through /proc)", show(h_m("logs/pid")),
	          (long)logs.pid);
	srv_kill(&logs);
	cr_assert(h_wait_until_gone_ms(h_m("logs"), PIDFD_BOUND),
	          "MNT/logs stayed %d ms after its owner was SIGKILLed (probe_interval=60)",
	          PIDFD_BOUND);
	h_assert_daemon_alive();
}

/* ---- PID hints are never trusted alone ---- */

/*
 * Bind in ROOT/stage, start a process, then move the socket into BACKING
 * beside a hint naming that process: svcfs first sees the socket with the
 * hint already there, and the hinted process is younger than the socket.
 */
static void stage_dir(void)
{
	int r = mkdir(h_r("stage"), 0755);

	cr_assert(r == 0 || errno == EEXIST, "mkdir stage: %s", strerror(errno));
}

static void move_in(const char *name)
{
	int r = rename(h_r("stage/%s", name), h_b("%s", name));

	cr_assert_eq(r, 0, "rename %s into BACKING: %s", name, strerror(errno));
}

Test(liveness, pidfile_naming_a_younger_process_is_ignored)
{
	struct srv web;
	pid_t younger;
	char pidtext[32];
	int r;

	h_mount_opts("probe_interval=60", NULL);
	stage_dir();
	web = srv_start(h_r("stage/web.sock"), NULL);
	h_sleep_ms(100); /* start times have a 10 ms resolution */
	younger = start_sleeper();
	snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)younger);
	h_write_atomic("web.pid", pidtext);
	move_in("web.sock");

	cr_assert(h_wait_exists(h_m("web/pid")), "MNT/web did not appear (or has no pid)");
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web.pid)),
	          "MNT/web/pid is '%s': expected the owner %ld, not the younger %ld of web.pid",
	          show(h_m("web/pid")), (long)web.pid, (long)younger);

	/* the owner dies; the PID in web.pid lives on and must not keep the service */
	srv_kill(&web);
	cr_assert(h_wait_until_gone_ms(h_m("web"), PIDFD_BOUND),
	          "MNT/web stayed after its owner was SIGKILLed (web.pid names a live process)");
	r = kill(younger, 0);
	cr_assert_eq(r, 0, "the process named in web.pid died: not the case tested");
	h_assert_daemon_alive();
}

/* The hinted process even holds the socket (forked after bind) but is younger than it. */
Test(liveness, pidfile_naming_a_younger_holder_is_ignored)
{
	struct srv web;
	pid_t holder;
	char pidtext[32];

	h_mount_opts("probe_interval=60", NULL);
	stage_dir();
	web = srv_start(h_r("stage/web.sock"), NULL);
	h_sleep_ms(100);
	holder = srv_pid_answer(&web, CMD_HOLDER);
	snprintf(pidtext, sizeof(pidtext), "%ld\n", (long)holder);
	h_write_atomic("web.pid", pidtext);
	move_in("web.sock");

	cr_assert(h_wait_exists(h_m("web/pid")), "MNT/web did not appear (or has no pid)");
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(web.pid)),
	          "MNT/web/pid is '%s': expected the listener %ld, not %ld (started after the "
	          "socket was bound)",
	          show(h_m("web/pid")), (long)web.pid, (long)holder);
	h_assert_daemon_alive();
}

Test(liveness, sidecar_pid_of_an_unrelated_process_is_ignored)
{
	struct srv api;
	pid_t older;
	char json[64];
	int r;

	h_mount_opts("probe_interval=60", NULL);
	stage_dir();
	older = start_sleeper(); /* alive and older than the socket, but holds nothing */
	h_sleep_ms(50);
	api = srv_start(h_r("stage/api.sock"), NULL);
	snprintf(json, sizeof(json), "{\"pid\": %ld}", (long)older);
	h_write_atomic("api.json", json);
	move_in("api.sock");

	cr_assert(h_wait_exists(h_m("api/pid")), "MNT/api did not appear (or has no pid)");
	cr_assert(h_wait_content(h_m("api/pid"), pid_line(api.pid)),
	          "MNT/api/pid is '%s': expected the owner %ld, not the sidecar's %ld",
	          show(h_m("api/pid")), (long)api.pid, (long)older);
	srv_kill(&api);
	cr_assert(h_wait_until_gone_ms(h_m("api"), PIDFD_BOUND),
	          "MNT/api stayed after its owner was SIGKILLed (the sidecar's pid is alive)");
	r = kill(older, 0);
	cr_assert_eq(r, 0);
	h_assert_daemon_alive();
}

/* ---- lock files ---- */

Test(liveness, lock_file_gates_visibility)
{
	struct srv_opts locked = {0};
	struct srv web;
	char lock[PATH_MAX], buf[16];
	int r;

	snprintf(lock, sizeof(lock), "%s", h_b("web.lock"));
	locked.lock = lock;
	h_mount_opts("probe_interval=0.2", NULL);
	make_file(lock);
	web = srv_start("web.sock", &locked);
	srv_start("plain.sock", NULL); /* control: no lock file, shown without any lock */
	assert_or_log(h_wait_exists(h_m("plain/state")),
	              "a service without a lock file did not appear");
	h_sleep_ms(FEW_INTERVALS);
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, -1, "web.lock exists and nobody holds it, yet MNT/web appeared");

	srv_do(&web, CMD_LOCK);
	cr_assert(h_wait_exists(h_m("web/state")), "MNT/web did not appear once web.lock was held");

	srv_do(&web, CMD_UNLOCK);
	cr_assert(h_wait_gone(h_m("web")), "MNT/web stayed after web.lock was released");
	/* still listening: only the lock decided */
	r = h_connect_read(h_b("web.sock"), SOCK_STREAM, buf, sizeof(buf));
	cr_assert_eq(r, 0, "the service stopped listening: not the case tested (%s)", strerror(-r));
	cr_assert(exists(lock), "web.lock was deleted");
	/* nobody holds it now: anyone can take it, whenever svcfs checks it */
	for (int i = 0; i < 100; i++) {
		r = try_lock(lock);
		cr_assert_eq(r, 0, "flock(LOCK_EX|LOCK_NB) on the free web.lock failed: %s",
		             strerror(-r));
		h_sleep_ms(10);
	}
	cr_assert(exists(h_m("plain/state")), "the control vanished");
	/* our own brief locks may have shown it for a moment; nobody holds it now */
	cr_assert(h_wait_gone(h_m("web")), "MNT/web is shown although nobody holds web.lock");
	h_sleep_ms(FEW_INTERVALS);
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, -1, "MNT/web came back without the lock");
	h_assert_daemon_alive();
}

/*
 * svcfs never takes the lock: while it checks lock files 100 times a
 * second, anyone may take flock(LOCK_EX|LOCK_NB) on a lock nobody holds,
 * and /proc/locks never shows a lock on it that we did not take.
 */
Test(liveness, svcfs_never_takes_the_lock)
{
	struct srv_opts locked = {0}, held_opts = {0};
	char lock[PATH_MAX], held_lock[PATH_MAX];
	struct srv held;
	int tries = 0, refused = 0, seen = 0, last = 0;
	struct timespec t0, t;

	snprintf(lock, sizeof(lock), "%s", h_b("web.lock"));
	snprintf(held_lock, sizeof(held_lock), "%s", h_b("held.lock"));
	locked.lock = lock;
	held_opts.lock = held_lock;
	make_file(lock);
	make_file(held_lock);
	h_mount_opts("probe_interval=0.01", NULL);
	srv_start("web.sock", &locked); /* never takes its lock */
	held = srv_start("held.sock", &held_opts);
	srv_do(&held, CMD_LOCK);
	assert_or_log(h_wait_exists(h_m("held/state")),
	              "the service holding its lock did not appear");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		int r = try_lock(lock), n = locks_on(lock);
		tries++;
		if (r < 0) {
			refused++;
			last = r;
		}
		if (n > 0)
			seen++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < 2000);
	cr_log_info("%d flock attempts on web.lock", tries);
	cr_assert_eq(refused, 0, "%d of %d flock(LOCK_EX|LOCK_NB) on a free web.lock failed (%s)",
	             refused, tries, strerror(-last));
	cr_assert_eq(seen, 0, "/proc/locks showed a lock on web.lock %d times (nobody holds it)",
	             seen);
	/* our own brief locks may have shown it for a moment; nobody holds it now */
	cr_assert(h_wait_gone(h_m("web")), "MNT/web is shown although nobody holds web.lock");
	cr_assert(exists(h_m("held/state")), "the service holding its lock vanished");
	h_assert_daemon_alive();
}

/* ---- health checks ---- */

Test(liveness, health_check_sets_unhealthy_and_back)
{
	struct srv_opts http = {.mode = SRV_HTTP};
	struct lastreq_ctx req;
	struct srv web;
	bool ok;

	h_mount_opts("probe_interval=0.2", NULL);
	h_write_atomic("web.json", "{\"health_check\": \"/healthz\"}");
	web = srv_start("web.sock", &http);
	cr_assert(h_wait_exists(h_m("web/state")), "MNT/web did not appear");

	req = (struct lastreq_ctx){.s = &web, .want = "GET /healthz HTTP/1.0"};
	ok = h_wait_until(lastreq_is, &req, SRV_MS);
	cr_assert(ok, "the service never got 'GET /healthz HTTP/1.0' (last request: '%s')",
	          req.got);
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"), "state is '%s' while answering 200",
	          show(h_m("web/state")));

	srv_do(&web, CMD_HTTP500);
	cr_assert(h_wait_content(h_m("web/state"), "unhealthy\n"),
	          "state is '%s' while the health check answers 500", show(h_m("web/state")));
	cr_assert(h_wait_listed(H.mnt, "web", true), "an unhealthy service must stay listed");

	srv_do(&web, CMD_HTTP200);
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"),
	          "state is '%s' after the health check answers 200 again", show(h_m("web/state")));
	h_assert_daemon_alive();
}

Test(liveness, health_check_timeout_is_unhealthy)
{
	struct srv_opts silent = {.mode = SRV_SILENT};
	struct srv web;

	h_mount_opts("probe_interval=0.2,probe_timeout=100", NULL);
	h_write_atomic("web.json", "{\"health_check\": \"/healthz\"}");
	web = srv_start("web.sock", &silent);
	cr_assert(h_wait_exists(h_m("web/state")), "MNT/web did not appear");
	cr_assert(h_wait_content(h_m("web/state"), "unhealthy\n"),
	          "state is '%s' for a service that never answers its health check",
	          show(h_m("web/state")));
	cr_assert_gt(srv_count(&web), 1, "no health check ever connected");
	cr_assert(h_wait_listed(H.mnt, "web", true), "an unhealthy service must stay listed");
	h_assert_daemon_alive();
}

/* ---- reap ---- */

/*
 * A service NAME with NAME.json and NAME.pid, seen in the mount, then
 * SIGKILLed. WITH_LOCK: it held NAME.lock (freed by its death).
 */
static void stale_service(const char *name, bool with_lock)
{
	char file[64], pid[32], lock[PATH_MAX];
	struct srv_opts o = {0};
	struct srv s;

	snprintf(lock, sizeof(lock), "%s", h_b("%s.lock", name));
	if (with_lock)
		o.lock = lock;
	snprintf(file, sizeof(file), "%s.sock", name);
	s = srv_start(file, &o);
	if (with_lock)
		srv_do(&s, CMD_LOCK);
	snprintf(file, sizeof(file), "%s.json", name);
	h_write_atomic(file, "{\"version\": \"1\"}");
	snprintf(file, sizeof(file), "%s.pid", name);
	snprintf(pid, sizeof(pid), "%ld\n", (long)s.pid);
	h_write_atomic(file, pid);
	assert_or_log(h_wait_content(h_m("%s/version", name), "1\n"), "a service did not appear");
	srv_kill(&s);
	cr_assert(h_wait_gone(h_m("%s", name)), "MNT/%s stayed after its owner was killed", name);
}

/* A live service with sidecars, to show reap spares it. */
static void live_service(const char *name)
{
	char file[64], pid[32];
	struct srv s;

	snprintf(file, sizeof(file), "%s.sock", name);
	s = srv_start(file, NULL);
	snprintf(file, sizeof(file), "%s.json", name);
	h_write_atomic(file, "{\"version\": \"1\"}");
	snprintf(file, sizeof(file), "%s.pid", name);
	snprintf(pid, sizeof(pid), "%ld\n", (long)s.pid);
	h_write_atomic(file, pid);
	assert_or_log(h_wait_content(h_m("%s/version", name), "1\n"), "a service did not appear");
}

static void assert_backing_has(const char *name, bool sock, bool json, bool pid, bool lock)
{
	cr_assert_eq(exists(h_b("%s.sock", name)), sock, "BACKING/%s.sock: %s", name,
	             sock ? "deleted" : "still there");
	cr_assert_eq(exists(h_b("%s.json", name)), json, "BACKING/%s.json: %s", name,
	             json ? "deleted" : "still there");
	cr_assert_eq(exists(h_b("%s.pid", name)), pid, "BACKING/%s.pid: %s", name,
	             pid ? "deleted" : "still there");
	cr_assert_eq(exists(h_b("%s.lock", name)), lock, "BACKING/%s.lock: %s", name,
	             lock ? "deleted" : "still there");
}

Test(liveness, reap_deletes_a_stale_socket_and_its_sidecars)
{
	h_mount_opts("reap,grace=0.2,probe_interval=0.2", NULL);
	live_service("live");
	stale_service("web", false);
	stale_service("api", true); /* its lock died with it */
	cr_assert(h_wait_gone(h_b("web.sock")), "the stale web.sock was not reaped");
	cr_assert(h_wait_gone(h_b("web.json")), "web.json of a reaped socket stayed");
	cr_assert(h_wait_gone(h_b("web.pid")), "web.pid of a reaped socket stayed");
	cr_assert(h_wait_gone(h_b("api.sock")), "the stale api.sock (free lock) was not reaped");
	cr_assert(h_wait_gone(h_b("api.json")));
	cr_assert(h_wait_gone(h_b("api.pid")));
	h_sleep_ms(FEW_INTERVALS);
	assert_backing_has("api", false, false, false, true);
	assert_backing_has("live", true, true, true, false);
	cr_assert(exists(h_m("live/state")), "the live service vanished");
	h_assert_daemon_alive();
}

Test(liveness, reap_spares_a_held_lock_and_never_deletes_locks)
{
	char lock[PATH_MAX];
	pid_t holder;
	int r;

	snprintf(lock, sizeof(lock), "%s", h_b("web.lock"));
	h_mount_opts("reap,grace=0.2,probe_interval=0.2", NULL);
	holder = lock_holder(lock); /* a restarting service, say */
	stale_service("web", false);
	h_sleep_ms(FEW_INTERVALS);
	assert_backing_has("web", true, true, true, true);

	/* nobody holds it any more: now it is reaped, but the lock file stays */
	h_kill(holder);
	cr_assert(h_wait_gone(h_b("web.sock")), "the stale web.sock was not reaped");
	cr_assert(h_wait_gone(h_b("web.json")));
	cr_assert(h_wait_gone(h_b("web.pid")));
	h_sleep_ms(FEW_INTERVALS);
	assert_backing_has("web", false, false, false, true);
	r = try_lock(lock);
	cr_assert_eq(r, 0, "svcfs kept web.lock locked after reaping (%s)", strerror(-r));
	h_assert_daemon_alive();
}

Test(liveness, no_reap_without_the_option)
{
	h_mount_opts("grace=0.2,probe_interval=0.2", NULL);
	stale_service("web", false);
	stale_service("other", true);
	h_sleep_ms(2 * FEW_INTERVALS);
	assert_backing_has("web", true, true, true, false);
	assert_backing_has("other", true, true, true, true);
	h_assert_daemon_alive();
}

/* ---- -o ro ---- */

/* NEEDLE in S as a word of its own (not inside "error", "probe"...). */
static bool has_word(const char *s, const char *needle)
{
	size_t n = strlen(needle);

	for (const char *p = s; (p = strstr(p, needle)); p++) {
		bool before = p == s || !((p[-1] >= 'a' && p[-1] <= 'z') ||
		                          (p[-1] >= 'A' && p[-1] <= 'Z') || p[-1] == '_');
		bool after =
		    !((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || p[n] == '_');
		if (before && after)
			return true;
	}
	return false;
}

Test(liveness, read_only_mount_is_refused)
{
	static const char *const opts[] = {"ro", "probe_interval=1,ro"};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *argv[] = {"svcfs", "-f", "-o", opts[i], H.backing, H.mnt, NULL};
		char *err = NULL;
		int st = h_run_daemon(argv, 10000, &err);

		cr_assert_neq(st, -1, "-o %s: svcfs did not exit (stderr: %s)", opts[i],
		              err ? err : "");
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2,
		          "-o %s: expected exit status 2 (stderr: %s)", opts[i], err ? err : "");
		cr_assert(!h_mounted(H.mnt, NULL, 0), "-o %s: something was mounted", opts[i]);
		cr_assert(err && has_word(err, "ro"), "-o %s: stderr does not mention ro:\n%s",
		          opts[i], err ? err : "");
		free(err);
	}
}

/* ---- out of file descriptors: degrade, then recover ---- */

/*
 * The daemon's soft RLIMIT_NOFILE lowered to what it holds (prlimit, as an
 * administrator's ulimit would): services still appear (sock_diag needs no
 * new descriptor), owners cannot be learnt, crashes are seen by interval,
 * one log line says so. The limit raised again: owners are found, crashes
 * are seen by pidfd again, one line says so, and the daemon exits 0.
 */
Test(liveness, out_of_descriptors_degrades_then_recovers)
{
	struct rlimit old, tight;
	pid_t a, b, c;
	char want[32];
	int held, r;

	h_mount_opts("probe_interval=0.3", NULL);
	r = prlimit(H.daemon, RLIMIT_NOFILE, NULL, &old);
	cr_assert_eq(r, 0, "prlimit: %s", strerror(errno));
	held = h_fd_count(H.daemon);
	cr_assert_gt(held, 0);
	tight = (struct rlimit){.rlim_cur = (rlim_t)held, .rlim_max = old.rlim_max};
	r = prlimit(H.daemon, RLIMIT_NOFILE, &tight, NULL);
	cr_assert_eq(r, 0, "prlimit: %s", strerror(errno));

	a = h_service("a.sock");
	b = h_service("b.sock");
	cr_assert(h_wait_exists(h_m("a/state")), "a service did not appear while short of fds");
	cr_assert(h_wait_exists(h_m("b/state")));
	cr_assert(h_wait_log("out of file descriptors"), "no log line about the shortage");
	cr_assert_eq(h_count_lines(H.errlog, "out of file descriptors"), 1,
	             "logged more than once");
	cr_assert(access(h_m("a/pid"), F_OK) < 0, "an owner found without a descriptor to find it");
	h_kill(a); /* no pidfd: the interval check sees it */
	cr_assert(h_wait_gone(h_m("a")), "a crash not seen while short of fds");
	h_assert_daemon_alive();

	r = prlimit(H.daemon, RLIMIT_NOFILE, &old, NULL);
	cr_assert_eq(r, 0, "prlimit: %s", strerror(errno));
	snprintf(want, sizeof(want), "%ld\n", (long)b);
	cr_assert(h_wait_content(h_m("b/pid"), want), "b's owner not found after the limit rose");
	cr_assert(h_wait_log("file descriptors available again"));
	c = h_service("c.sock");
	snprintf(want, sizeof(want), "%ld\n", (long)c);
	cr_assert(h_wait_content(h_m("c/pid"), want));
	h_kill(c);
	cr_assert(h_wait_gone(h_m("c")));
	h_assert_daemon_alive();
	cr_assert_eq(h_daemon_stop(), 0, "svcfs did not exit 0 after a shortage");
}
