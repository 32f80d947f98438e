/*
 * liveness — the one place that decides whether a service is alive
 * (SPEC §3). The states of a record and what moves it:
 *
 *   probing      its socket file exists; the kernel lists no ready socket
 *                on it yet (bound, not listening: re-checked from 10 µs,
 *                doubling, so it appears as soon as it listens)
 *   alive/busy   sock_diag lists a listening (stream, seqpacket) or bound
 *                (dgram) socket on the file's (dev, inode), and NAME.lock,
 *                if present, is held by someone; busy while the accept
 *                queue is full; activatable when PID 1 holds it
 *   unhealthy    alive, but its health_check answered non-2xx or nothing
 *                within probe_timeout (still listed)
 *   stale        no socket bound to the file any more (it can never listen
 *                again: bind needs a new file); with -o reap the file is
 *                deleted after `grace`
 *   gone         the record's file was removed (table.c frees it)
 *
 * The owner of a ready socket is learnt once (a verified PID hint, else
 * one connect) and watched through a pidfd: its exit re-checks the socket
 * at once, which is how a SIGKILLed service vanishes without waiting for
 * an interval. Each interval (table_check_all) re-checks everything with
 * one sock_diag dump and starts the health checks.
 *
 * Only the engine thread runs this; the view does its own locking.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "owner.h"
#include "record.h"
#include "svcfs-internal.h"

#define RETRY_FIRST_NS      10000ll     /* 10 µs: SPEC §3.1 */
#define RETRY_MAX_NS        100000000ll /* then the interval check takes over */
#define OWNER_TRIES         3           /* connects for the owner's credentials, at most */
#define HEALTH_INFLIGHT_MAX 64          /* probes at once; the rest wait an interval */

static void hp_finish(struct engine *e, struct hprobe *hp);

/* ---- retries ---- */

void retry_cancel(struct engine *e, struct tsvc *s)
{
	if (!s->in_retry)
		return;
	if (s->rprev)
		s->rprev->rnext = s->rnext;
	else
		e->retry_head = s->rnext;
	if (s->rnext)
		s->rnext->rprev = s->rprev;
	s->rprev = s->rnext = NULL;
	s->in_retry = false;
}

static void retry_at(struct engine *e, struct tsvc *s, struct timespec when)
{
	retry_cancel(e, s);
	s->retry_at = when;
	s->rnext = e->retry_head;
	if (e->retry_head)
		e->retry_head->rprev = s;
	e->retry_head = s;
	s->in_retry = true;
}

/* Quick re-check with doubling backoff; gives up to the interval check. */
static void retry_backoff(struct engine *e, struct tsvc *s)
{
	if (s->retry_ns > RETRY_MAX_NS)
		return;
	s->retry_ns = s->retry_ns ? s->retry_ns * 2 : RETRY_FIRST_NS;
	if (s->retry_ns > RETRY_MAX_NS) {
		retry_cancel(e, s);
		return;
	}
	retry_at(e, s, ts_add_ns(mono_now(), s->retry_ns));
}

/*
 * S's socket was seen and is gone: no quick re-checks. A socket file never
 * listens again (a new bind needs a new file, which is a new record); the
 * interval check and inotify cover the rest.
 */
static void retry_spent(struct engine *e, struct tsvc *s)
{
	retry_cancel(e, s);
	s->retry_ns = RETRY_MAX_NS + 1;
}

struct timespec table_next_retry(struct engine *e)
{
	struct timespec best = {0, 0};

	for (struct tsvc *s = e->retry_head; s; s = s->rnext)
		if ((best.tv_sec == 0 && best.tv_nsec == 0) || ts_before(s->retry_at, best))
			best = s->retry_at;
	for (struct hprobe *hp = e->hp_live; hp; hp = hp->next)
		if ((best.tv_sec == 0 && best.tv_nsec == 0) || ts_before(hp->h.deadline, best))
			best = hp->h.deadline;
	return best;
}

/* ---- owner watches ---- */

static void pw_detach(struct engine *e, struct tsvc *s)
{
	struct pwatch *pw = s->pw;

	if (!pw)
		return;
	/* O(1): one owner may hold thousands of sockets */
	if (s->pw_prev)
		s->pw_prev->pw_next = s->pw_next;
	else
		pw->svcs = s->pw_next;
	if (s->pw_next)
		s->pw_next->pw_prev = s->pw_prev;
	s->pw = NULL;
	s->pw_next = s->pw_prev = NULL;
	if (!pw->svcs && !pw->dead) {
		/* nobody left to watch for: stop now, free after this epoll batch */
		HASH_DELETE(hh, e->pwatches, pw);
		epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, pw->pidfd, NULL);
		close(pw->pidfd);
		pw->pidfd = -1;
		pw->dead = true;
		pw->next_dead = e->pw_dead;
		e->pw_dead = pw;
	}
}

/* Watch PID (PIDFD, which we take over) as the owner of S. */
static void pw_attach(struct engine *e, struct tsvc *s, pid_t pid, int pidfd)
{
	struct pwatch *pw;

	pw_detach(e, s);
	HASH_FIND(hh, e->pwatches, &pid, sizeof(pid), pw);
	if (pw) {
		close(pidfd); /* one watch per process */
	} else {
		struct epoll_event ev = {.events = EPOLLIN};
		pw = calloc(1, sizeof(*pw));
		if (!pw) {
			close(pidfd);
			return;
		}
		pw->src.kind = SRC_OWNER;
		pw->pid = pid;
		pw->pidfd = pidfd;
		ev.data.ptr = pw;
		svcfs_hash_oom = false;
		HASH_ADD(hh, e->pwatches, pid, sizeof(pw->pid), pw);
		if (svcfs_hash_oom || epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, pidfd, &ev) < 0) {
			if (!svcfs_hash_oom)
				HASH_DELETE(hh, e->pwatches, pw);
			close(pidfd);
			free(pw);
			return; /* no watch: the interval check still finds the death */
		}
	}
	s->pw = pw;
	s->pw_prev = NULL;
	s->pw_next = pw->svcs;
	if (pw->svcs)
		pw->svcs->pw_prev = s;
	pw->svcs = s;
}

void table_free_dead_watches(struct engine *e)
{
	while (e->pw_dead) {
		struct pwatch *pw = e->pw_dead;
		e->pw_dead = pw->next_dead;
		free(pw);
	}
}

/* Drop what liveness keeps for S (owner watch, health probe, retries). */
void svc_forget_liveness(struct engine *e, struct tsvc *s)
{
	s->unhealthy = false;
	if (s->hp)
		hp_finish(e, s->hp);
	pw_detach(e, s);
}

/* ---- liveness ---- */

/* Take PID (with PIDFD) as S's owner: credentials from /proc, watch its exit. */
static void svc_own(struct engine *e, struct tsvc *s, pid_t pid, int pidfd)
{
	uid_t uid;
	gid_t gid;

	s->pid = pid;
	if (owner_creds(pid, &uid, &gid) == 0) {
		s->ouid = uid;
		s->ogid = gid;
	}
	pw_attach(e, s, pid, pidfd);
	s->dirty = true;
}

static pid_t svc_lock_holder(struct engine *e, struct tsvc *s);
static int engine_find_holder(struct engine *e, uint32_t sock_ino, pid_t *ret_pid);
static bool engine_saw_hold(struct engine *e, uint32_t sock_ino, pid_t pid);

/* A PID hint that the kernel confirms: alive, old enough, holding the socket. */
static bool svc_try_hint(struct engine *e, struct tsvc *s, long pid)
{
	int pidfd, r;

	if (pid <= 0 || pid > 4194304)
		return false;
	/*
	 * In the initial scan, the walk of /proc answers "does it hold the
	 * socket" for every service at once; reading the hinted process's
	 * descriptors for each made thousands of services in one process
	 * quadratic.
	 */
	if (e->quiet && s->sock_ino && engine_saw_hold(e, s->sock_ino, (pid_t)pid))
		r = owner_verify_holder((pid_t)pid, &s->created, &pidfd);
	else
		r = owner_verify_hint((pid_t)pid, s->sock_ino, &s->created, &pidfd);
	if (r < 0) {
		engine_fd_error(e, r);
		return false;
	}
	svc_own(e, s, (pid_t)pid, pidfd);
	return true;
}

/*
 * Find the process holding S's socket and watch it (SPEC §3.2): a PID hint
 * (sidecar "pid", NAME.pid, a -pidN token) verified through /proc, else one
 * connect in the service's life (SO_PEERCRED, SO_PEERPIDFD), else — for a
 * datagram socket, which has no listener to ask — a search of /proc.
 */
static void svc_find_owner(struct engine *e, struct tsvc *s)
{
	char file[NAME_MAX + 1];
	struct svcfs_tokens tokens;
	struct ucred cred;
	json_object *hint;
	unsigned fd_errors = e->fd_errors;
	pid_t pid;
	int pidfd, r;

	s->ouid = s->uid; /* until the owner is known: the file's owner */
	s->ogid = s->gid;
	if (!s->sock_ino) {
		s->owner_done = true; /* connect-probe mode: credentials by connecting */
		goto connect;
	}
	if (s->sidecar && json_object_object_get_ex(s->sidecar, "pid", &hint) &&
	    json_object_is_type(hint, json_type_int) &&
	    svc_try_hint(e, s, (long)json_object_get_int64(hint)))
		goto done;
	if (snprintf(file, sizeof(file), "%s.pid", s->name) < (int)sizeof(file)) {
		r = owner_read_pidfile(s->dir->fd, file, s->uid, &pid);
		if (r == 0 && svc_try_hint(e, s, pid))
			goto done;
		engine_fd_error(e, r);
	}
	svcfs_name_tokens(s->name, &tokens);
	if (tokens.pid && svc_try_hint(e, s, tokens.pid))
		goto done;
	/* libsvcfs services hold NAME.lock and the socket in one process */
	if ((pid = svc_lock_holder(e, s)) > 0 && svc_try_hint(e, s, pid))
		goto done;
	/*
	 * The initial scan meets every service at once: one walk of /proc
	 * names the holders of all their sockets (a hint, verified as any),
	 * where a connect each took 26 s for 100 000 services. Later, one
	 * service at a time, a connect is the cheaper question.
	 */
	if (e->quiet && s->sock_ino && s->type != SOCK_DGRAM &&
	    engine_find_holder(e, s->sock_ino, &pid) == 0 && svc_try_hint(e, s, pid))
		goto done;
	if (e->fd_errors != fd_errors)
		return; /* a hint failed for want of a descriptor: try again later */
	if (s->type == SOCK_DGRAM) {
		r = engine_find_holder(e, s->sock_ino, &pid);
		pidfd = r == 0 ? owner_pidfd(pid) : r;
		if (pidfd < 0 && engine_fd_error(e, pidfd))
			return;
		if (pidfd >= 0 && owner_holds_socket(pid, s->sock_ino) == 1)
			svc_own(e, s, pid, pidfd);
		else if (pidfd >= 0)
			close(pidfd);
		goto done;
	}
connect:
	/*
	 * A full queue would refuse us and our connection would only add to
	 * it: wait for a check where the service keeps up, and give up after
	 * a few tries rather than knock on its door every interval.
	 */
	if (s->busy)
		return;
	STATS_INC(&e->stats, connects);
	r = owner_from_connect(s->dir->fd, s->file, s->type ? s->type : SOCK_STREAM, &cred, &pidfd);
	if (r < 0 && engine_fd_error(e, r))
		return; /* the next rescan asks again */
	if (r == -EAGAIN && ++s->owner_tries < OWNER_TRIES)
		return;
	if (r == 0) {
		s->ouid = cred.uid;
		s->ogid = cred.gid;
		s->pid = cred.pid;
		if (pidfd < 0)
			pidfd = owner_pidfd(cred.pid);
		if (pidfd < 0 && engine_fd_error(e, pidfd))
			return; /* no watch possible now: the next rescan asks again */
		if (pidfd >= 0 && s->sock_ino)
			pw_attach(e, s, cred.pid, pidfd);
		else if (pidfd >= 0)
			close(pidfd); /* connect-probe mode follows by interval */
	}
done:
	s->owner_done = true;
	s->dirty = true;
}

/*
 * The owner of the services on PW exited. Its fds were closed before its
 * pidfd became readable, so asking the kernel for each socket now tells:
 * gone (the common crash) — vanish at once; still there (a daemon that
 * forked and let the parent exit) — find the new holder, or follow by
 * interval if none can be found.
 */
void table_owner_exited(struct engine *e, struct pwatch *pw)
{
	char name[PATH_MAX];

	if (pw->dead)
		return;
	STATS_INC(&e->stats, owner_exits);
	while (pw->svcs) {
		struct tsvc *s = pw->svcs;
		struct probe_sock ps;
		pid_t pid;
		int pidfd, r;

		pw_detach(e, s); /* may release PW: it stays allocated until the batch ends */
		r = s->sock_ino ? probe_query(e->probe, s->sock_ino, &ps) : -ENOENT;
		if (r < 0 && r != -ENOENT) {
			svc_check(e, s); /* no answer now: the ordinary check retries */
			continue;
		}
		if (r < 0 || ps.vfs_ino != (uint64_t)s->ino || !probe_sock_alive(&ps)) {
			s->sock_ino = 0;
			svc_vanish(e, s, "owner exited");
			retry_spent(e, s);
			continue;
		}
		if (engine_find_holder(e, s->sock_ino, &pid) == 0 &&
		    (pidfd = owner_pidfd(pid)) >= 0) {
			if (owner_holds_socket(pid, s->sock_ino) == 1) {
				log_info("%s: owner %ld exited, socket held by %ld",
				         display(s, name, sizeof(name)), (long)s->pid, (long)pid);
				svc_own(e, s, pid, pidfd);
			} else {
				close(pidfd);
			}
		}
		if (!s->pw) {
			s->pid = 0;
			s->dirty = true;
		}
		svc_publish(e, s);
	}
}

static void svc_set_alive(struct engine *e, struct tsvc *s, bool busy)
{
	struct stat st;

	/*
	 * Becoming alive: make sure the socket found on (dev, inode) is on
	 * this record's file. A removed file's inode number can be reused by
	 * a new socket before the removal's event is handled.
	 */
	if (!s->alive && (fstatat(s->dir->fd, s->file, &st, 0) < 0 || st.st_dev != s->dev ||
	                  st.st_ino != s->ino))
		return; /* the file's own event settles it */
	s->lost_at = (struct timespec){0, 0};
	retry_cancel(e, s);
	if (!s->alive) {
		s->alive = true;
		s->since = time(NULL);
		s->dirty = true;
	}
	if (s->busy != busy) {
		s->busy = busy;
		s->dirty = true;
	}
	if (!s->owner_done) {
		svc_find_owner(e, s);
		s->dirty = true;
	}
	svc_publish(e, s);
}

/* A visible service the probe cannot reach: gone once refused for `grace`. */
static void svc_refused(struct engine *e, struct tsvc *s)
{
	struct timespec now = mono_now(), end;

	if (!s->vnode) {
		s->alive = false;
		retry_backoff(e, s);
		return;
	}
	if (s->lost_at.tv_sec == 0 && s->lost_at.tv_nsec == 0)
		s->lost_at = now;
	end = ts_add_ns(s->lost_at, (long long)(e->opt.grace * 1e9));
	if (!ts_before(now, end))
		svc_vanish(e, s, "refused");
	else
		retry_at(e, s, end);
}

/*
 * What the kernel says of S's file: 1 ready, 0 bound but not ready, -1 no
 * socket bound to it, -2 no answer (try again). Uses the last dump when fresh, else asks for the
 * socket inode.
 */
static int kernel_state(struct engine *e, struct tsvc *s, struct probe_sock *ret)
{
	const struct probe_sock *found = NULL;
	struct probe_sock one;
	int r;

	if (e->dump_fresh)
		found = probe_find(e->probe, s->dev, s->ino);
	if (!found && s->sock_ino) {
		r = probe_query(e->probe, s->sock_ino, &one);
		if (r == 0 && one.vfs_ino == (uint64_t)s->ino)
			found = &one;
		else if (r < 0 && r != -ENOENT)
			return -2; /* the kernel could not be asked (netlink busy): no verdict */
	}
	if (!found)
		return -1;
	*ret = *found;
	return probe_sock_alive(found) ? 1 : 0;
}

/* ---- health checks ---- */

static void hp_finish(struct engine *e, struct hprobe *hp)
{
	for (struct hprobe **pp = &e->hp_live; *pp; pp = &(*pp)->next) {
		if (*pp == hp) {
			*pp = hp->next;
			break;
		}
	}
	epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, hp->h.fd, NULL);
	health_close(&hp->h);
	if (hp->s)
		hp->s->hp = NULL;
	hp->s = NULL;
	hp->next = e->hp_dead; /* an event for it may still be in this epoll batch */
	e->hp_dead = hp;
	e->hp_count--;
}

static void svc_health_result(struct engine *e, struct tsvc *s, bool healthy)
{
	char name[PATH_MAX];

	if (s->unhealthy == !healthy)
		return;
	s->unhealthy = !healthy;
	s->dirty = true;
	log_info("%s: %s", display(s, name, sizeof(name)), healthy ? "healthy again" : "unhealthy");
	if (s->vnode)
		svc_publish(e, s);
}

void svc_health_start(struct engine *e, struct tsvc *s)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct hprobe *hp;
	int r;

	if (!s->health_path || s->hp || !s->vnode || e->hp_count >= HEALTH_INFLIGHT_MAX)
		return;
	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return;
	hp->src.kind = SRC_HEALTH;
	STATS_INC(&e->stats, health_checks);
	r = health_start(&hp->h, s->dir->fd, s->file, s->type ? s->type : SOCK_STREAM,
	                 s->health_path, e->opt.probe_timeout_ms);
	if (r < 0) {
		free(hp);
		if (!engine_fd_error(e, r)) /* out of descriptors says nothing of the service */
			svc_health_result(e, s, false); /* refused or full: not healthy */
		return;
	}
	ev.data.ptr = hp;
	if (epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, hp->h.fd, &ev) < 0) {
		health_close(&hp->h);
		free(hp);
		return;
	}
	hp->s = s;
	s->hp = hp;
	hp->next = e->hp_live;
	e->hp_live = hp;
	e->hp_count++;
}

void table_health_ready(struct engine *e, struct hprobe *hp)
{
	struct tsvc *s = hp->s;
	int r;

	if (!s)
		return; /* finished earlier in this batch */
	r = health_read(&hp->h);
	if (r == -EAGAIN)
		return;
	hp_finish(e, hp);
	svc_health_result(e, s, r == 1);
}

/* Probes past their deadline count as unhealthy. */
static void health_expire(struct engine *e)
{
	struct timespec now = mono_now();
	struct hprobe *hp = e->hp_live;

	while (hp) {
		struct hprobe *next = hp->next;
		if (!ts_before(now, hp->h.deadline)) {
			struct tsvc *s = hp->s;
			hp_finish(e, hp);
			if (s)
				svc_health_result(e, s, false);
		}
		hp = next;
	}
}

void table_free_dead_probes(struct engine *e)
{
	while (e->hp_dead) {
		struct hprobe *hp = e->hp_dead;
		e->hp_dead = hp->next;
		free(hp);
	}
}

/* ---- the lock-file rule ---- */

/* /proc/locks as of this check (read at most once per check). False if unreadable. */
static bool engine_locks(struct engine *e)
{
	if (!e->locks_fresh) {
		if (locks_load(&e->locks) < 0)
			return false;
		e->locks_fresh = true;
	}
	return true;
}

/*
 * A process holding socket SOCK_INO (a hint: verify it), from one walk of
 * every /proc/PID/fd per batch — a rescan meeting thousands of datagram
 * sockets walks /proc once, not once per socket. A socket the walk missed
 * (bound since) gets one more walk per batch. -ESRCH if none holds it.
 */
static int engine_find_holder(struct engine *e, uint32_t sock_ino, pid_t *ret_pid)
{
	pid_t pid = 0;
	int r;

	if (e->holders_fresh)
		pid = owner_holders_find(&e->holders, sock_ino);
	if (!pid && (!e->holders_fresh || !e->holders_rewalked)) {
		e->holders_rewalked = e->holders_fresh;
		r = owner_holders_load(&e->holders);
		e->holders_fresh = r == 0;
		if (r < 0)
			return r == -ENOMEM ? owner_find_holder(sock_ino, ret_pid) : r;
		pid = owner_holders_find(&e->holders, sock_ino);
	}
	if (!pid)
		return -ESRCH;
	*ret_pid = pid;
	return 0;
}

/* PID held SOCK_INO at this batch's walk of /proc (walked now if need be). */
static bool engine_saw_hold(struct engine *e, uint32_t sock_ino, pid_t pid)
{
	pid_t any;

	if (!e->holders_fresh && engine_find_holder(e, sock_ino, &any) < 0)
		return false;
	return e->holders_fresh && owner_holders_has(&e->holders, sock_ino, pid);
}

/* Who holds NAME.lock according to /proc/locks, or 0. */
static pid_t svc_lock_holder(struct engine *e, struct tsvc *s)
{
	return s->has_lock && engine_locks(e) ? locks_holder(&e->locks, s->lock_dev, s->lock_ino)
	                                      : 0;
}

#define LOCKS_READS 3 /* reads of /proc/locks that must all miss a lock to call it released */

/*
 * False when NAME.lock exists and nobody holds a lock on it (SPEC §3.2).
 * /proc/locks is no snapshot: read while other locks come and go, it can
 * miss a lock held all along (measured: 2725 of 4777 reads missed some of
 * 100 held locks under churn). So "released" must be seen in LOCKS_READS
 * fresh reads in a row; one that shows the lock is enough to keep it.
 */
static bool svc_lock_ok(struct engine *e, struct tsvc *s)
{
	if (!s->has_lock || !engine_locks(e))
		return true; /* no lock file, or cannot tell: do not hide a service on a guess */
	for (int i = 0; i < LOCKS_READS; i++) {
		if (i > 0 && locks_load(&e->locks) < 0)
			return true;
		if (locks_held(&e->locks, s->lock_dev, s->lock_ino))
			return true;
	}
	return false;
}

/* ---- reap ---- */

/*
 * Delete a stale socket file and its .json and .pid (SPEC §3.4), but only
 * while holding NAME.lock ourselves when it exists, so that a service
 * restarting under its lock is never raced. Lock files are never deleted.
 * Returns true if the files were deleted (S is then freed).
 */
static bool svc_reap(struct engine *e, struct tsvc *s)
{
	char lock[NAME_MAX + 1], side[NAME_MAX + 1], name[PATH_MAX];
	struct probe_sock ps;
	struct stat st;
	int lfd = -1;
	bool done = false;

	if (snprintf(lock, sizeof(lock), "%s.lock", s->name) >= (int)sizeof(lock))
		lock[0] = '\0';
	if (lock[0]) {
		lfd = openat(s->dir->fd, lock, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (lfd < 0 && errno != ENOENT)
			return false;
		if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) < 0)
			goto out; /* someone holds it: a service is (re)starting */
	}
	/* under the lock: still the same file, and still nothing bound to it */
	if (fstatat(s->dir->fd, s->file, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_ino != s->ino ||
	    st.st_dev != s->dev || !S_ISSOCK(st.st_mode))
		goto out;
	if (probe_dump(e->probe) < 0 || probe_find(e->probe, st.st_dev, st.st_ino) ||
	    (s->sock_ino && probe_query(e->probe, s->sock_ino, &ps) == 0))
		goto out;
	e->dump_fresh = true;
	if (unlinkat(s->dir->fd, s->file, 0) == 0) {
		log_info("%s: reaped stale socket file", display(s, name, sizeof(name)));
		done = true;
	}
	for (int i = 0; i < 2; i++) {
		const char *suffix = i ? "pid" : "json";
		if (snprintf(side, sizeof(side), "%s.%s", s->name, suffix) < (int)sizeof(side))
			unlinkat(s->dir->fd, side, 0);
	}
out:
	if (lfd >= 0)
		close(lfd); /* releases our lock */
	if (done)
		svc_free(e, s, "reaped");
	return done;
}

/* No socket bound to S's file: it is stale; with -o reap, delete it after grace. */
static void svc_stale(struct engine *e, struct tsvc *s)
{
	struct timespec now = mono_now(), end;

	if (!e->opt.reap) {
		retry_backoff(e, s);
		return;
	}
	if (s->stale_since.tv_sec == 0 && s->stale_since.tv_nsec == 0)
		s->stale_since = now;
	end = ts_add_ns(s->stale_since, (long long)(e->opt.grace * 1e9));
	if (ts_before(now, end))
		retry_at(e, s, end);
	else
		svc_reap(e, s);
}

void svc_check(struct engine *e, struct tsvc *s)
{
	struct probe_sock ps;
	int r;

	if (probe_has_diag(e->probe)) {
		r = kernel_state(e, s, &ps);
		if (r == -2) {
			retry_at(e, s, ts_add_ns(mono_now(), 1000000)); /* in 1 ms */
			return;
		}
		if (r >= 0 && s->sock_ino && ps.sock_ino != s->sock_ino) {
			/*
			 * Another socket on a file with the same (dev, inode): the
			 * old one was unlinked and its inode number reused before we
			 * saw the delete. A new service, whatever the number says.
			 */
			svc_vanish(e, s, "socket replaced");
			s->since = 0;
			s->dirty = true;
			s->retry_ns = 0; /* a new socket: quick re-checks again */
		}
		if (r >= 0) {
			s->sock_ino = ps.sock_ino;
			s->type = ps.type;
		}
		if (r >= 0)
			s->stale_since = (struct timespec){0, 0};
		if (r > 0 && !svc_lock_ok(e, s)) {
			if (s->vnode)
				svc_vanish(e, s, "lock released");
		} else if (r > 0) {
			svc_set_alive(e, s, probe_sock_busy(&ps));
		} else if (r == 0) {
			if (s->vnode)
				svc_refused(e, s); /* was ready, is not: treat as refused */
			else
				retry_backoff(e, s);
		} else {
			if (s->sock_ino)
				retry_spent(e, s); /* it was seen, and is gone */
			s->sock_ino = 0;
			if (s->vnode)
				svc_vanish(e, s, "socket closed");
			svc_stale(e, s); /* may free S */
		}
		return;
	}
	STATS_INC(&e->stats, connects);
	r = probe_connect(s->dir->fd, s->file, s->type ? s->type : SOCK_STREAM);
	if ((r == 0 || r == -EAGAIN) && !svc_lock_ok(e, s)) {
		if (s->vnode)
			svc_vanish(e, s, "lock released");
	} else if (r == 0 || r == -EAGAIN) {
		svc_set_alive(e, s, r == -EAGAIN);
	} else {
		svc_refused(e, s);
	}
}

static void check_dir(struct engine *e, struct tdir *d)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;

	/*
	 * inotify sees BACKING, not where a symlink points: a directory with
	 * symlinks is read again (its services checked with it), so a link
	 * whose target starts listening later shows up, and one whose target
	 * goes away leaves.
	 */
	if (d->has_links) {
		table_scan_dir(e, d);
		return;
	}

	HASH_ITER(hh, d->svcs, s, ts)
	{
		/*
		 * inotify sees BACKING, not where a symlink points: a symlinked
		 * service is looked at afresh (target replaced, or gone).
		 */
		if (s->via_link)
			svc_evaluate(e, d, s->name);
		else
			svc_check(e, s);
	}
	HASH_ITER(hh, d->subdirs, sub, tsub) check_dir(e, sub);
}

struct health_due {
	struct tsvc **v;
	size_t n, cap;
};

static void health_collect(struct tdir *d, struct health_due *due)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;

	HASH_ITER(hh, d->svcs, s, ts)
	{
		if (!s->health_path || s->hp || !s->vnode)
			continue;
		if (due->n == due->cap) {
			size_t cap = due->cap ? due->cap * 2 : 64;
			struct tsvc **v = realloc(due->v, cap * sizeof(*v));
			if (!v)
				return;
			due->v = v;
			due->cap = cap;
		}
		due->v[due->n++] = s;
	}
	HASH_ITER(hh, d->subdirs, sub, tsub) health_collect(sub, due);
}

static int health_older_first(const void *a, const void *b)
{
	const struct tsvc *x = *(struct tsvc *const *)a, *y = *(struct tsvc *const *)b;

	return x->health_round < y->health_round ? -1 : x->health_round > y->health_round;
}

/*
 * Start this interval's health probes: at most HEALTH_INFLIGHT_MAX in
 * flight, the services probed longest ago first, so that every one gets
 * its turn however many ask for a check.
 */
static void health_start_round(struct engine *e)
{
	struct health_due due = {0};

	e->health_round++;
	health_collect(e->root, &due);
	if (due.n)
		qsort(due.v, due.n, sizeof(*due.v), health_older_first);
	for (size_t i = 0; i < due.n && e->hp_count < HEALTH_INFLIGHT_MAX; i++) {
		due.v[i]->health_round = e->health_round;
		svc_health_start(e, due.v[i]);
	}
	free(due.v);
}

void table_check_all(struct engine *e)
{
	int r;

	if (!e->root)
		return;
	if (e->unwatched || e->fd_short) {
		table_rescan(e); /* also checks every service */
	} else {
		r = probe_dump(e->probe);
		if (r < 0 && probe_has_diag(e->probe)) {
			log_warn("sock_diag dump failed: %s; checking services one by one",
			         strerror(-r));
		}
		e->dump_fresh = r == 0;
		check_dir(e, e->root);
		e->dump_fresh = false;
	}
	if (e->root)
		health_start_round(e);
}

void table_run_retries(struct engine *e)
{
	struct timespec now = mono_now();
	struct tsvc **due = NULL;
	size_t n = 0, cap = 0;
	bool need_dump = false;

	health_expire(e);
	for (struct tsvc *s = e->retry_head; s; s = s->rnext) {
		if (ts_before(now, s->retry_at))
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 16;
			struct tsvc **p = realloc(due, c * sizeof(*p));
			if (!p)
				break;
			due = p;
			cap = c;
		}
		due[n++] = s;
		need_dump = need_dump || !s->sock_ino;
	}
	if (need_dump && probe_dump(e->probe) == 0)
		e->dump_fresh = true;
	for (size_t i = 0; i < n; i++) {
		retry_cancel(e, due[i]);
		svc_check(e, due[i]);
	}
	e->dump_fresh = false;
	free(due);
}
