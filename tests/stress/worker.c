/*
 * worker — the churn. Worker w owns the names i with i % SOAK_WORKERS == w
 * and changes them only through holders: processes it forks, each holding
 * a batch of 1..HOLDER_BATCH names, registered with svcfs_register (lock
 * file, sidecar, socket) or plainly (sidecar written by temp + rename,
 * sometimes a NAME.pid, then bind + listen), so that the holder is the
 * owner svcfs finds and watches. A holder accepts (and closes) whatever
 * connects, and obeys its worker over a socketpair, one request and one
 * reply at a time: rewrite a sidecar (atomically, or in place for a plain
 * one), unregister one name, register one again, or unregister everything
 * and exit 0. A crash is the worker SIGKILLing a holder (through its
 * pidfd), sometimes while it is still registering.
 *
 * The worker publishes each name's state in its slot (soak.h) around every
 * change: seq odd before it starts, state/how/since and seq even once the
 * change is complete — after listen() returned (alive), after the holder
 * was reaped (crashed, exited) or after the holder replied (unregistered).
 * The bounds the checker applies start from there.
 *
 * A plain registration removes a NAME.lock left by an earlier libsvcfs
 * holder of the name (nobody holds it: its holder is gone or unregistered
 * it): a lock file nobody holds hides the service (SPEC §3.2), which is
 * what a plain service taking over a libsvcfs name has to know.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <svcfs.h>

#include "soak.h"

#define HOLDER_BATCH    8     /* names per holder, at most */
#define REPLY_MS        30000 /* a holder answers within this (a loaded, sanitized machine) */
#define EARLY_KILL_1_IN 25    /* one holder in this many is killed while registering */
#define INPLACE_1_IN    4     /* one plain sidecar rewrite in this many is in place */
#define PAUSE_US_MAX    3000  /* between two churn actions: 0..this */

enum hop { OP_READY = 1, OP_META, OP_UNREG, OP_REG, OP_EXIT };

struct msg {
	int op;
	int k;                     /* the name's index in the holder's batch */
	int kind;                  /* OP_REG: SOAK_HOW_LIB or SOAK_HOW_PLAIN */
	int inplace;               /* OP_META: rewrite in place (plain only) */
	uint32_t gen;              /* OP_META, OP_REG: the sidecar's generation */
	int result;                /* reply: 0 or -errno */
	int results[HOLDER_BATCH]; /* OP_READY: each name's registration */
	char what[96];             /* reply: the step that failed */
};

struct hname {
	unsigned idx;
	int kind;      /* SOAK_HOW_LIB or SOAK_HOW_PLAIN */
	bool pidfile;  /* plain: writes NAME.pid */
	bool live;     /* registered now (or maybe: changing) */
	bool changing; /* its slot's seq is odd (slot_begin done, slot_end not yet) */
	uint32_t gen;  /* sidecar generation to write (registration) */
};

struct holder {
	pid_t pid;
	int pidfd;
	int ctl;
	unsigned n;
	struct hname names[HOLDER_BATCH];
};

struct worker {
	unsigned w, p; /* worker number, figs index */
	uint64_t rng;
	unsigned mine[SOAK_NAMES_MAX], nmine;
	int holder_of[SOAK_NAMES_MAX]; /* holder index of a name, -1: free (dead, no holder) */
	struct holder h[SOAK_HOLDERS];
	unsigned nh;
};

static struct soak_figs *F(struct worker *ws)
{
	return &S->figs[ws->p];
}

/* ---- slots ---- */

static void slot_begin(unsigned i)
{
	atomic_fetch_add(&S->slot[i].seq, 1); /* odd: changing */
}

static void slot_end(unsigned i, int state, int how, pid_t holder)
{
	struct soak_slot *s = &S->slot[i];
	int64_t now = soak_now_ns();
	uint32_t n = atomic_load(&s->nhist);

	s->hist[n % SOAK_HIST] = (struct soak_event){now, holder, state, how};
	atomic_store(&s->nhist, n + 1);
	atomic_store(&s->state, state);
	atomic_store(&s->how, how);
	atomic_store(&s->since_ns, now);
	atomic_fetch_add(&s->seq, 1); /* even: settled */
}

/* ---- the holder (a process of its own) ---- */

struct hsvc {
	svcfs_service *svc; /* libsvcfs */
	int fd;             /* the listening socket, -1 */
};

static json_object *make_meta(unsigned idx, uint32_t gen, int kind, unsigned w)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "gen", json_object_new_int64(gen));
	json_object_object_add(o, "kind",
	                       json_object_new_string(kind == SOAK_HOW_LIB ? "lib" : "plain"));
	json_object_object_add(o, "worker", json_object_new_int((int)w));
	json_object_object_add(o, "index", json_object_new_int((int)idx));
	return o;
}

/* BACKING/NAME.SUFFIX into BUF; -ENAMETOOLONG if it does not fit. */
static int bpath(char *buf, size_t size, unsigned idx, const char *suffix)
{
	char name[64];
	int n;

	soak_name(idx, name, sizeof(name));
	n = snprintf(buf, size, "%s/%s%s", S->backing, name, suffix);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int write_file(const char *path, const char *text, bool atomic)
{
	char tmp[PATH_MAX + 32];
	const char *slash = strrchr(path, '/');
	size_t len = strlen(text);
	int fd, r = 0;

	if (atomic) {
		/* hidden (ignored by svcfs) until renamed */
		snprintf(tmp, sizeof(tmp), "%.*s/.%s.tmp%d", (int)(slash - path), path, slash + 1,
		         (int)getpid());
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	} else {
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && atomic && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0 && atomic)
		unlink(tmp);
	return r;
}

static int write_meta(unsigned idx, uint32_t gen, int kind, unsigned w, bool atomic)
{
	char path[PATH_MAX];
	json_object *m = make_meta(idx, gen, kind, w);
	char *text;
	int r;

	if (!m)
		return -ENOMEM;
	r = bpath(path, sizeof(path), idx, ".json");
	if (r == 0) {
		text = strdup(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
		r = text ? write_file(path, text, atomic) : -ENOMEM;
		free(text);
	}
	json_object_put(m);
	return r;
}

static int unlink_opt(const char *path)
{
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

/* Register HN: libsvcfs, or plain. 0, or -errno with the failing step in WHAT. */
static int h_register(struct hsvc *hs, const struct hname *hn, unsigned w, char *what, size_t wsize)
{
	char name[64], path[PATH_MAX], text[32];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int r, fd;

	soak_name(hn->idx, name, sizeof(name));
	if (hn->kind == SOAK_HOW_LIB) {
		json_object *m = make_meta(hn->idx, hn->gen, hn->kind, w);
		struct svcfs_register_opts o = {
		    .dir = S->backing, .meta = m, .backlog = 64, .flags = SVCFS_REGISTER_NONBLOCK};
		r = m ? svcfs_register(name, &o, &hs->svc) : -ENOMEM;
		json_object_put(m);
		snprintf(what, wsize, "svcfs_register %s", name);
		if (r == 0)
			hs->fd = svcfs_service_fd(hs->svc);
		return r;
	}
	snprintf(what, wsize, "plain %s: lock file", name);
	if ((r = bpath(path, sizeof(path), hn->idx, ".lock")) < 0 || (r = unlink_opt(path)) < 0)
		return r;
	snprintf(what, wsize, "plain %s: sidecar", name);
	if ((r = write_meta(hn->idx, hn->gen, hn->kind, w, true)) < 0)
		return r;
	snprintf(what, wsize, "plain %s: pid file", name);
	if ((r = bpath(path, sizeof(path), hn->idx, ".pid")) < 0)
		return r;
	snprintf(text, sizeof(text), "%d\n", (int)getpid());
	r = hn->pidfile ? write_file(path, text, true) : unlink_opt(path);
	if (r < 0)
		return r;
	snprintf(what, wsize, "plain %s: socket", name);
	if ((r = bpath(path, sizeof(path), hn->idx, ".sock")) < 0)
		return r;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if ((r = unlink_opt(path)) < 0) /* a dead predecessor's socket file */
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	hs->fd = fd;
	return 0;
}

static int h_unregister(struct hsvc *hs, const struct hname *hn)
{
	char path[PATH_MAX];
	int r = 0;

	if (hs->svc) {
		hs->svc = svcfs_unregister(hs->svc);
		hs->fd = -1;
		return 0;
	}
	/* plain: the socket file first (gone from BACKING), then the socket, then the sidecars */
	if (bpath(path, sizeof(path), hn->idx, ".sock") == 0)
		r = unlink_opt(path);
	if (hs->fd >= 0)
		close(hs->fd);
	hs->fd = -1;
	if (bpath(path, sizeof(path), hn->idx, ".json") == 0 && r == 0)
		r = unlink_opt(path);
	if (bpath(path, sizeof(path), hn->idx, ".pid") == 0 && r == 0)
		r = unlink_opt(path);
	return r;
}

static void h_reply(int ctl, struct msg *m)
{
	if (send(ctl, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		_exit(3); /* the worker is gone */
}

static void h_accept_all(int fd)
{
	for (;;) {
		int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			return;
		close(c); /* svcfs's one owner probe, or a reader's connect */
	}
}

static void holder_main(struct holder *h, int ctl, unsigned w, pid_t parent)
{
	struct hsvc hs[HOLDER_BATCH];
	struct msg m = {.op = OP_READY};

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if (dup2(ctl, 3) < 0)
		_exit(1);
	close_range(4, ~0u, 0); /* the other holders' control sockets */
	ctl = 3;
	for (unsigned k = 0; k < h->n; k++) {
		hs[k] = (struct hsvc){.svc = NULL, .fd = -1};
		m.results[k] = h_register(&hs[k], &h->names[k], w, m.what, sizeof(m.what));
		h->names[k].live = m.results[k] == 0;
	}
	h_reply(ctl, &m);
	for (;;) {
		struct pollfd p[HOLDER_BATCH + 1];
		unsigned np = 0;
		ssize_t n;

		p[np++] = (struct pollfd){.fd = ctl, .events = POLLIN};
		for (unsigned k = 0; k < h->n; k++)
			if (hs[k].fd >= 0)
				p[np++] = (struct pollfd){.fd = hs[k].fd, .events = POLLIN};
		if (poll(p, np, -1) < 0)
			continue;
		for (unsigned i = 1; i < np; i++)
			if (p[i].revents)
				h_accept_all(p[i].fd);
		if (!p[0].revents)
			continue;
		n = recv(ctl, &m, sizeof(m), 0);
		if (n != (ssize_t)sizeof(m))
			_exit(n == 0 ? 0 : 3); /* worker gone */
		m.result = 0;
		m.what[0] = '\0';
		switch (m.op) {
		case OP_META: {
			struct hname *hn = &h->names[m.k];
			snprintf(m.what, sizeof(m.what), "rewrite sidecar of s%04u", hn->idx);
			if (hs[m.k].svc) {
				json_object *o = make_meta(hn->idx, m.gen, hn->kind, w);
				m.result = o ? svcfs_service_set_meta(hs[m.k].svc, o) : -ENOMEM;
				json_object_put(o);
			} else {
				m.result = write_meta(hn->idx, m.gen, hn->kind, w, !m.inplace);
			}
			break;
		}
		case OP_UNREG:
			snprintf(m.what, sizeof(m.what), "unregister s%04u", h->names[m.k].idx);
			m.result = h_unregister(&hs[m.k], &h->names[m.k]);
			h->names[m.k].live = false;
			break;
		case OP_REG:
			h->names[m.k].kind = m.kind;
			h->names[m.k].gen = m.gen;
			m.result = h_register(&hs[m.k], &h->names[m.k], w, m.what, sizeof(m.what));
			h->names[m.k].live = m.result == 0;
			break;
		case OP_EXIT:
			for (unsigned k = 0; k < h->n; k++) {
				int r = h->names[k].live ? h_unregister(&hs[k], &h->names[k]) : 0;
				if (r < 0 && m.result == 0) {
					m.result = r;
					snprintf(m.what, sizeof(m.what), "unregister s%04u at exit",
					         h->names[k].idx);
				}
			}
			h_reply(ctl, &m);
			_exit(m.result == 0 ? 0 : 2);
		default:
			_exit(4);
		}
		h_reply(ctl, &m);
	}
}

/* ---- the worker's side ---- */

static unsigned rnd(struct worker *ws, unsigned n)
{
	return n ? (unsigned)(soak_rand(&ws->rng) % n) : 0;
}

/* Wait (bounded) for the reply of holder H into M. */
static int h_wait_reply(struct worker *ws, struct holder *h, struct msg *m)
{
	struct pollfd p = {.fd = h->ctl, .events = POLLIN};
	int64_t end = soak_now_ns() + (int64_t)REPLY_MS * 1000000;
	ssize_t n;

	for (;;) {
		int left = (int)((end - soak_now_ns()) / 1000000);
		int r = poll(&p, 1, left > 0 ? left : 0);
		if (r > 0)
			break;
		if (r == 0) {
			soak_fail(ws->p, "holder %d did not answer within %d ms", (int)h->pid,
			          REPLY_MS);
			return -ETIMEDOUT;
		}
		if (errno != EINTR)
			return -errno;
	}
	n = recv(h->ctl, m, sizeof(*m), 0);
	if (n != (ssize_t)sizeof(*m)) {
		soak_fail(ws->p, "holder %d: no reply (%s)", (int)h->pid,
		          n == 0 ? "it ended" : strerror(errno));
		return -EPIPE;
	}
	return 0;
}

static int h_request(struct worker *ws, struct holder *h, struct msg *m)
{
	int op = m->op;

	if (send(h->ctl, m, sizeof(*m), MSG_NOSIGNAL) != (ssize_t)sizeof(*m)) {
		soak_fail(ws->p, "holder %d: send: %s", (int)h->pid, strerror(errno));
		return -EPIPE;
	}
	if (h_wait_reply(ws, h, m) < 0)
		return -EPIPE;
	if (m->op != op) {
		soak_fail(ws->p, "holder %d: reply %d to request %d", (int)h->pid, m->op, op);
		return -EPROTO;
	}
	return 0;
}

/* Forget holder HI (already reaped): its names become free. */
static void h_drop(struct worker *ws, unsigned hi)
{
	struct holder *h = &ws->h[hi];

	for (unsigned k = 0; k < h->n; k++)
		ws->holder_of[h->names[k].idx] = -1;
	close(h->ctl);
	if (h->pidfd >= 0)
		close(h->pidfd);
	atomic_fetch_sub(&F(ws)->live_holders, 1);
	ws->nh--;
	if (hi != ws->nh) {
		ws->h[hi] = ws->h[ws->nh];
		for (unsigned k = 0; k < ws->h[hi].n; k++)
			ws->holder_of[ws->h[hi].names[k].idx] = (int)hi;
	}
	atomic_store(&S->holder_pid[ws->w][hi], hi < ws->nh ? ws->h[hi].pid : 0);
	atomic_store(&S->holder_pid[ws->w][ws->nh], 0);
}

/* SIGKILL holder HI and reap it; its live names are dead (crashed) from then on. */
static void h_crash(struct worker *ws, unsigned hi, bool early)
{
	struct holder *h = &ws->h[hi];
	unsigned n = 0;

	for (unsigned k = 0; k < h->n; k++) {
		struct hname *hn = &h->names[k];
		if (!hn->live)
			continue;
		n++;
		if (!hn->changing)
			slot_begin(hn->idx);
		hn->changing = true;
	}
	if (h->pidfd >= 0)
		pidfd_send_signal(h->pidfd, SIGKILL, NULL, 0);
	else
		kill(h->pid, SIGKILL); /* our child, not reaped: the pid is still its own */
	waitpid(h->pid, NULL, 0);
	for (unsigned k = 0; k < h->n; k++)
		if (h->names[k].live)
			slot_end(h->names[k].idx, SOAK_DEAD, SOAK_HOW_CRASH, h->pid);
	/* (names neither live nor changing were dead already: their slots stay) */
	atomic_fetch_add(&F(ws)->crashes, 1);
	atomic_fetch_add(&F(ws)->crashed_names, n);
	if (early)
		atomic_fetch_add(&F(ws)->crashes_early, 1);
	h_drop(ws, hi);
}

/* Holder HI unregisters everything and exits 0; its names are dead (exited) once it is reaped. */
static void h_exit(struct worker *ws, unsigned hi)
{
	struct holder *h = &ws->h[hi];
	struct msg m = {.op = OP_EXIT};
	unsigned n = 0;
	int st = 0;

	for (unsigned k = 0; k < h->n; k++) {
		struct hname *hn = &h->names[k];
		if (!hn->live)
			continue;
		n++;
		slot_begin(hn->idx);
		hn->changing = true;
	}
	if (h_request(ws, h, &m) < 0) {
		h_crash(ws, hi, false); /* (its names end as crashed) */
		return;
	}
	if (m.result < 0)
		soak_fail(ws->p, "holder %d: %s: %s", (int)h->pid, m.what, strerror(-m.result));
	waitpid(h->pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		soak_fail(ws->p, "holder %d ended with status %#x after a clean exit", (int)h->pid,
		          st);
	for (unsigned k = 0; k < h->n; k++)
		if (h->names[k].live)
			slot_end(h->names[k].idx, SOAK_DEAD, SOAK_HOW_EXIT, h->pid);
	atomic_fetch_add(&F(ws)->exits, 1);
	atomic_fetch_add(&F(ws)->exited_names, n);
	h_drop(ws, hi);
}

static int pick_kind(struct worker *ws)
{
	return rnd(ws, 2) ? SOAK_HOW_LIB : SOAK_HOW_PLAIN;
}

static uint32_t next_gen(unsigned idx)
{
	return atomic_load(&S->slot[idx].gen) + 1;
}

/* A holder for the free names IDX[0..N): fork it, wait for its registrations. */
static void h_spawn_batch(struct worker *ws, const unsigned *idx, unsigned n, bool early_kill)
{
	int sv[2], mixed = rnd(ws, 3) == 0, kind = pick_kind(ws);
	pid_t parent = getpid();
	struct holder *h;
	struct msg m;

	if (ws->nh == SOAK_HOLDERS || n == 0)
		return;
	h = &ws->h[ws->nh];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		soak_fail(ws->p, "socketpair: %s", strerror(errno));
		return;
	}
	memset(h, 0, sizeof(*h));
	h->n = n;
	for (unsigned k = 0; k < n; k++) {
		struct hname *hn = &h->names[k];
		hn->idx = idx[k];
		hn->kind = mixed ? pick_kind(ws) : kind;
		hn->pidfile = hn->kind == SOAK_HOW_PLAIN && rnd(ws, 2);
		hn->gen = next_gen(idx[k]);
		hn->live = true; /* maybe: if it is killed now, its names count as crashed */
		hn->changing = true;
		slot_begin(idx[k]);
	}
	h->pid = fork();
	if (h->pid < 0) {
		soak_fail(ws->p, "fork: %s", strerror(errno));
		for (unsigned k = 0; k < n; k++)
			slot_end(idx[k], SOAK_DEAD, SOAK_HOW_EXIT, 0);
		close(sv[0]);
		close(sv[1]);
		return;
	}
	if (h->pid == 0) {
		close(sv[0]);
		holder_main(h, sv[1], ws->w, parent);
		_exit(0);
	}
	close(sv[1]);
	h->ctl = sv[0];
	h->pidfd = pidfd_open(h->pid, 0);
	for (unsigned k = 0; k < n; k++)
		ws->holder_of[idx[k]] = (int)ws->nh;
	atomic_store(&S->holder_pid[ws->w][ws->nh], h->pid);
	ws->nh++;
	atomic_fetch_add(&F(ws)->holders, 1);
	atomic_fetch_add(&F(ws)->live_holders, 1);
	if (early_kill) {
		/* somewhere in its registrations (or just after): every name counts as crashed */
		soak_sleep_us((long)rnd(ws, 3000));
		h_crash(ws, ws->nh - 1, true);
		return;
	}
	if (h_wait_reply(ws, h, &m) < 0 || m.op != OP_READY) {
		h_crash(ws, ws->nh - 1, false);
		return;
	}
	for (unsigned k = 0; k < n; k++) {
		struct hname *hn = &h->names[k];
		hn->changing = false;
		if (m.results[k] < 0) {
			soak_fail(ws->p, "holder %d: registering s%04u (%s): %s", (int)h->pid,
			          hn->idx, hn->kind == SOAK_HOW_LIB ? "libsvcfs" : "plain",
			          strerror(-m.results[k]));
			hn->live = false;
			slot_end(hn->idx, SOAK_DEAD, SOAK_HOW_EXIT, h->pid);
			continue;
		}
		atomic_store(&S->slot[hn->idx].gen, hn->gen);
		atomic_fetch_add(hn->kind == SOAK_HOW_LIB ? &F(ws)->reg_lib : &F(ws)->reg_plain, 1);
		slot_end(hn->idx, SOAK_ALIVE, hn->kind, h->pid);
	}
}

/* Start holders for up to MAX free names (all of them: MAX = 0). */
static void spawn_free(struct worker *ws, unsigned max, bool allow_early)
{
	unsigned batch[HOLDER_BATCH], n = 0, want, done = 0;
	unsigned start = rnd(ws, ws->nmine);

	want = 1 + rnd(ws, HOLDER_BATCH);
	for (unsigned j = 0; j < ws->nmine && ws->nh < SOAK_HOLDERS; j++) {
		unsigned idx = ws->mine[(start + j) % ws->nmine];
		if (ws->holder_of[idx] >= 0)
			continue;
		batch[n++] = idx;
		if (n == want || (max && done + n == max)) {
			h_spawn_batch(ws, batch, n, allow_early && rnd(ws, EARLY_KILL_1_IN) == 0);
			done += n;
			n = 0;
			want = 1 + rnd(ws, HOLDER_BATCH);
			if (max && done >= max)
				return;
		}
	}
	if (n)
		h_spawn_batch(ws, batch, n, allow_early && rnd(ws, EARLY_KILL_1_IN) == 0);
}

/* A name of holder HI with LIVE == live, at random; -1 if none. */
static int pick_name(struct worker *ws, unsigned hi, bool live)
{
	struct holder *h = &ws->h[hi];
	unsigned start = rnd(ws, h->n);

	for (unsigned j = 0; j < h->n; j++) {
		unsigned k = (start + j) % h->n;
		if (h->names[k].live == live)
			return (int)k;
	}
	return -1;
}

/* A holder having a name with LIVE == live, at random; -1 if none. */
static int pick_holder(struct worker *ws, bool live)
{
	unsigned start = rnd(ws, ws->nh ? ws->nh : 1);

	for (unsigned j = 0; j < ws->nh; j++) {
		unsigned hi = (start + j) % ws->nh;
		if (pick_name(ws, hi, live) >= 0)
			return (int)hi;
	}
	return -1;
}

static void do_meta(struct worker *ws)
{
	int hi = pick_holder(ws, true), k;
	struct hname *hn;
	struct msg m = {.op = OP_META};

	if (hi < 0)
		return;
	k = pick_name(ws, (unsigned)hi, true);
	hn = &ws->h[hi].names[k];
	m.k = k;
	m.gen = next_gen(hn->idx);
	m.inplace = hn->kind == SOAK_HOW_PLAIN && rnd(ws, INPLACE_1_IN) == 0;
	if (h_request(ws, &ws->h[hi], &m) < 0) {
		h_crash(ws, (unsigned)hi, false);
		return;
	}
	if (m.result < 0) {
		soak_fail(ws->p, "holder %d: %s: %s", (int)ws->h[hi].pid, m.what,
		          strerror(-m.result));
		return;
	}
	atomic_store(&S->slot[hn->idx].gen, m.gen);
	atomic_fetch_add(m.inplace ? &F(ws)->meta_inplace : &F(ws)->meta_atomic, 1);
}

static void do_unreg(struct worker *ws)
{
	int hi = pick_holder(ws, true), k;
	struct hname *hn;
	struct msg m = {.op = OP_UNREG};

	if (hi < 0)
		return;
	k = pick_name(ws, (unsigned)hi, true);
	hn = &ws->h[hi].names[k];
	m.k = k;
	slot_begin(hn->idx);
	hn->changing = true;
	if (h_request(ws, &ws->h[hi], &m) < 0) {
		h_crash(ws, (unsigned)hi, false);
		return;
	}
	if (m.result < 0)
		soak_fail(ws->p, "holder %d: %s: %s", (int)ws->h[hi].pid, m.what,
		          strerror(-m.result));
	hn->live = false;
	hn->changing = false;
	slot_end(hn->idx, SOAK_DEAD, SOAK_HOW_EXIT, ws->h[hi].pid);
	atomic_fetch_add(&F(ws)->unregs, 1);
}

/* Register name K of holder HI again, in that holder, after it unregistered it. */
static void do_reg_again(struct worker *ws, unsigned hi, unsigned k)
{
	struct hname *hn = &ws->h[hi].names[k];
	struct msg m = {.op = OP_REG};

	m.k = (int)k;
	m.kind = pick_kind(ws);
	m.gen = next_gen(hn->idx);
	slot_begin(hn->idx);
	hn->live = true; /* maybe: a crash now marks it dead either way */
	hn->changing = true;
	if (h_request(ws, &ws->h[hi], &m) < 0) {
		h_crash(ws, hi, false);
		return;
	}
	hn->changing = false;
	if (m.result < 0) {
		soak_fail(ws->p, "holder %d: %s: %s", (int)ws->h[hi].pid, m.what,
		          strerror(-m.result));
		hn->live = false;
		slot_end(hn->idx, SOAK_DEAD, SOAK_HOW_EXIT, ws->h[hi].pid);
		return;
	}
	hn->kind = m.kind;
	atomic_store(&S->slot[hn->idx].gen, m.gen);
	atomic_fetch_add(hn->kind == SOAK_HOW_LIB ? &F(ws)->reg_lib : &F(ws)->reg_plain, 1);
	atomic_fetch_add(&F(ws)->reg_again, 1);
	slot_end(hn->idx, SOAK_ALIVE, hn->kind, ws->h[hi].pid);
}

static unsigned live_names(struct worker *ws)
{
	unsigned n = 0;

	for (unsigned hi = 0; hi < ws->nh; hi++)
		for (unsigned k = 0; k < ws->h[hi].n; k++)
			n += ws->h[hi].names[k].live;
	return n;
}

/* One churn action. The live share drifts around one half: below it, grow; above, shrink. */
static void churn_step(struct worker *ws)
{
	unsigned live = live_names(ws);

	atomic_fetch_add(&F(ws)->ops, 1);
	if (rnd(ws, 100) < 25) {
		do_meta(ws);
		return;
	}
	if (rnd(ws, ws->nmine) >= live) {
		int hi = pick_holder(ws, false);
		if (hi >= 0 && rnd(ws, 3) == 0)
			do_reg_again(ws, (unsigned)hi,
			             (unsigned)pick_name(ws, (unsigned)hi, false));
		else
			spawn_free(ws, 1 + rnd(ws, HOLDER_BATCH), true);
		return;
	}
	if (ws->nh == 0)
		return;
	switch (rnd(ws, 10)) {
	case 0:
	case 1:
	case 2:
	case 3:
		h_crash(ws, rnd(ws, ws->nh), false);
		break;
	case 4:
	case 5:
	case 6:
		h_exit(ws, rnd(ws, ws->nh));
		break;
	default:
		do_unreg(ws);
		break;
	}
}

/* Every name of ours alive: the dead names of holders again, the free ones in new holders. */
static void fill(struct worker *ws)
{
	for (unsigned hi = 0; hi < ws->nh;) {
		struct holder *h = &ws->h[hi];
		pid_t pid = h->pid;
		for (unsigned k = 0; k < h->n && h->pid == pid; k++)
			if (!h->names[k].live)
				do_reg_again(ws, hi, k);
		if (h->pid == pid)
			hi++; /* else it crashed, and another holder took its place */
	}
	spawn_free(ws, 0, false);
}

/* Every holder ends: one in two crashes, the others exit cleanly. */
static void empty(struct worker *ws)
{
	while (ws->nh) {
		if (rnd(ws, 2))
			h_crash(ws, ws->nh - 1, false);
		else
			h_exit(ws, ws->nh - 1);
	}
}

int soak_worker(unsigned w)
{
	static struct worker ws; /* large: not on the stack */
	uint32_t done = 0, epoch;

	ws.w = w;
	ws.p = SOAK_P_WORKER + w;
	ws.rng = S->seed ^ (0x9e3779b97f4a7c15ull * (w + 1));
	for (unsigned i = 0; i < S->nnames; i++) {
		ws.holder_of[i] = -1;
		if (i % SOAK_WORKERS == w)
			ws.mine[ws.nmine++] = i;
	}
	for (;;) {
		int ph = soak_phase(&epoch);

		if (ph == SOAK_PH_STOP)
			break;
		if (epoch != done) {
			if (ph == SOAK_PH_FILL)
				fill(&ws);
			else if (ph == SOAK_PH_EMPTY)
				empty(&ws);
			done = epoch;
			soak_ack(ws.p, epoch);
		}
		if (ph != SOAK_PH_CHURN ||
		    (S->max_ops && atomic_load(&F(&ws)->ops) >= S->max_ops)) {
			soak_sleep_us(2000);
			continue;
		}
		churn_step(&ws);
		soak_sleep_us((long)rnd(&ws, PAUSE_US_MAX));
	}
	empty(&ws);
	return atomic_load(&F(&ws)->bad) ? 1 : 0;
}
