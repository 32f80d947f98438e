/*
 * table — the engine's records of BACKING and the liveness rules.
 *
 * A tdir is a directory of BACKING (the root or a group, at most
 * SVCFS_GROUP_DEPTH_MAX deep), opened once and addressed by fd: every
 * access below it is an *at() call relative to that fd. A tsvc is a socket
 * file in a tdir, alive or not; it is shown in the view (tsvc->vnode) only
 * while the kernel says a socket is bound to that very file and ready.
 *
 * Liveness (SPEC §3): what the kernel's sock_diag lists is the truth. A
 * service is alive when a socket is listening (stream/seqpacket) or bound
 * (dgram) on its file's (dev, inode); a full queue makes it busy. A file
 * whose socket is bound but not yet listening is re-checked quickly (from
 * 10 µs, doubling) so it appears as soon as it listens. A socket that is no
 * longer listed is asked for once more by its socket inode (a dump racing
 * with socket churn may skip entries); if the kernel does not know it, it
 * is gone for good — a closed socket's file can never listen again — and
 * the service vanishes at once. Grace applies where the kernel cannot be
 * asked: in connect-probe mode, a refused socket vanishes only after it
 * has been refused for `grace` seconds.
 *
 * Only the engine thread touches these records; the view does its own
 * locking.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "engine.h"
#include "hash.h"
#include "health.h"
#include "log.h"
#include "owner.h"
#include "render.h"
#include "svcfs-internal.h"

#define RETRY_FIRST_NS 10000ll	       /* 10 µs: SPEC §3.1 */
#define OWNER_TRIES    3	       /* connects for the owner's credentials, at most */
#define RETRY_MAX_NS   100000000ll     /* then the interval check takes over */
#define WATCH_MASK                                                                                \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |       \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

struct tdir {
	struct tdir *parent;
	char *name;    /* "" for the root */
	char *relpath; /* "" for the root, else "a/b" */
	int fd;
	int wd; /* inotify watch, -1 if none */
	unsigned depth;
	dev_t dev;
	ino_t ino;
	struct vnode *vnode;
	struct tdir *subdirs; /* by name (hh) */
	struct tsvc *svcs;    /* by name (hh) */
	UT_hash_handle hh;    /* parent->subdirs */
	UT_hash_handle hw;    /* engine->by_wd */
	bool seen;
};

/*
 * An owner process being watched: one pidfd in the engine's epoll, shared
 * by every service whose listening socket that process holds. It becomes
 * readable the moment the process exits (its fds are closed by then).
 */
struct pwatch {
	struct evsrc src; /* SRC_OWNER: first, for the epoll dispatch */
	pid_t pid;
	int pidfd;
	struct tsvc *svcs; /* owned services, linked by tsvc->pw_next */
	bool dead;	   /* released: freed after the current epoll batch */
	struct pwatch *next_dead;
	UT_hash_handle hh; /* engine->pwatches, by pid */
};

/* A health check in flight (SPEC §3.3). */
struct hprobe {
	struct evsrc src; /* SRC_HEALTH: first, for the epoll dispatch */
	struct health h;
	struct tsvc *s; /* NULL once the service is gone */
	struct hprobe *next; /* engine->hp_live or engine->hp_dead */
};

#define HEALTH_INFLIGHT_MAX 64 /* probes at once; the rest wait an interval */

static void hp_finish(struct engine *e, struct hprobe *hp);

struct tsvc {
	struct tdir *dir;
	char *name;
	char *file; /* NAME.sock or NAME */
	dev_t dev;  /* the socket file (symlinks followed) */
	ino_t ino;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	bool via_link;	   /* FILE is a symlink: its target can change unseen */
	uint32_t sock_ino; /* the kernel's socket inode, 0 unknown */
	int type;	   /* SOCK_*, 0 unknown */
	bool alive, busy;
	bool dirty; /* what the view shows is out of date */
	time_t since;
	struct timespec lost_at; /* connect-probe mode: first refusal */
	pid_t pid;		 /* owner of the listening socket, 0 unknown */
	uid_t ouid;
	gid_t ogid;
	bool owner_done;
	unsigned owner_tries;	   /* connects that met a full queue */
	struct timespec created;   /* the socket file's mtime: when it was bound */
	struct pwatch *pw;	   /* watch on the owner, NULL if none */
	struct tsvc *pw_next;	   /* in pw->svcs */
	bool has_lock;		   /* NAME.lock exists (and is trusted) */
	dev_t lock_dev;
	ino_t lock_ino;
	bool lock_untrusted_logged;
	char *health_path;	   /* sidecar health_check, NULL if none */
	struct hprobe *hp;	   /* health probe in flight */
	bool unhealthy;
	struct timespec stale_since; /* no socket bound since (for reap), {0} if not stale */
	json_object *sidecar;
	struct stat sidecar_st; /* identity of the sidecar last read */
	bool sidecar_known;
	struct vnode *vnode;
	long long retry_ns;
	struct timespec retry_at;
	struct tsvc *rprev, *rnext; /* engine->retry_head */
	bool in_retry;
	bool seen;
	UT_hash_handle hh; /* dir->svcs */
};

static struct timespec mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static struct timespec ts_add_ns(struct timespec t, long long ns)
{
	t.tv_sec += ns / 1000000000ll;
	t.tv_nsec += ns % 1000000000ll;
	if (t.tv_nsec >= 1000000000l) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000l;
	}
	return t;
}

static bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/*
 * "group/name" or "name", for log lines; control characters become '?' so
 * that a file name cannot forge a log line.
 */
static const char *display(const struct tsvc *s, char *buf, size_t size)
{
	if (s->dir->relpath[0])
		snprintf(buf, size, "%s/%s", s->dir->relpath, s->name);
	else
		snprintf(buf, size, "%s", s->name);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}

/* ---- retries ---- */

static void retry_cancel(struct engine *e, struct tsvc *s)
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

/* ---- showing and hiding ---- */

static char *socket_path(struct engine *e, const struct tsvc *s)
{
	struct svcfs_buf b;

	svcfs_buf_init(&b);
	svcfs_buf_adds(&b, e->backing);
	if (strcmp(e->backing, "/") != 0)
		svcfs_buf_add(&b, "/", 1);
	if (s->dir->relpath[0]) {
		svcfs_buf_adds(&b, s->dir->relpath);
		svcfs_buf_add(&b, "/", 1);
	}
	svcfs_buf_adds(&b, s->file);
	return svcfs_buf_steal(&b, NULL);
}

/* The directory mode: r-x for exactly the classes that may connect (w on the socket). */
static mode_t service_mode(mode_t sock)
{
	return ((sock & S_IWUSR) ? 0500 : 0) | ((sock & S_IWGRP) ? 0050 : 0) |
	       ((sock & S_IWOTH) ? 0005 : 0);
}

static void svc_publish(struct engine *e, struct tsvc *s)
{
	struct svcfs_tokens tokens;
	struct render_output out;
	struct view_service_spec spec;
	json_object *meta = NULL;
	char *sockpath = NULL, name[PATH_MAX];
	struct vnode *n;
	size_t dropped = 0;
	bool fresh = !s->vnode;

	if (!s->dirty && s->vnode)
		return;
	if (fresh && e->nvisible >= e->opt.max_services) {
		if (!e->max_logged)
			log_warn("max_services=%lu reached: %s and further services not shown",
				 e->opt.max_services, display(s, name, sizeof(name)));
		e->max_logged = true;
		return;
	}
	svcfs_name_tokens(s->name, &tokens);
	meta = svcfs_meta_merge(s->sidecar, &tokens);
	sockpath = socket_path(e, s);
	if (!meta || !sockpath)
		goto oom;
	{
		struct render_input in = {
			.name = s->name,
			.group = s->dir->relpath,
			.socket = sockpath,
			.pid = s->pid,
			.uid = s->ouid,
			.gid = s->ogid,
			.state = s->unhealthy ? "unhealthy"
				 : s->pid == 1 ? "activatable"
				 : s->busy     ? "busy"
					       : "alive",
			.since = s->since,
			.meta = meta,
		};
		if (render_service(&in, &out) < 0)
			goto oom;
	}
	spec = (struct view_service_spec){
		.uid = s->uid,
		.gid = s->gid,
		.mode = service_mode(s->mode),
		.files = out.files,
		.nfiles = out.nfiles,
		.entry_json = out.entry_json,
		.target_json = out.target_json,
	};
	n = view_service_set(e->view, s->dir->vnode, s->vnode, s->name, &spec, &dropped);
	render_output_free(&out);
	if (!n)
		goto oom;
	if (dropped)
		log_warn("%s: %zu metadata keys not shown as files (too many in its life)",
			 display(s, name, sizeof(name)), dropped);
	if (fresh) {
		int prio = e->quiet ? LOG_DEBUG : LOG_INFO;
		e->nvisible++;
		if (s->pid)
			log_msg(prio, "%s: alive (pid %ld)", display(s, name, sizeof(name)),
				(long)s->pid);
		else
			log_msg(prio, "%s: alive", display(s, name, sizeof(name)));
	}
	s->vnode = n;
	s->dirty = false;
	goto out;
oom:
	log_err("%s: out of memory, view not updated", display(s, name, sizeof(name)));
out:
	free(sockpath);
	json_object_put(meta);
}

/* ---- owner watches ---- */

static void pw_detach(struct engine *e, struct tsvc *s)
{
	struct pwatch *pw = s->pw;

	if (!pw)
		return;
	for (struct tsvc **pp = &pw->svcs; *pp; pp = &(*pp)->pw_next) {
		if (*pp == s) {
			*pp = s->pw_next;
			break;
		}
	}
	s->pw = NULL;
	s->pw_next = NULL;
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
	s->pw_next = pw->svcs;
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

static void svc_vanish(struct engine *e, struct tsvc *s, const char *why)
{
	char name[PATH_MAX];

	if (s->vnode) {
		view_remove(e->view, s->vnode);
		s->vnode = NULL;
		e->nvisible--;
		log_msg(e->quiet ? LOG_DEBUG : LOG_INFO, "%s: gone (%s)",
			display(s, name, sizeof(name)), why);
	}
	s->alive = s->busy = false;
	s->owner_done = false;
	s->owner_tries = 0;
	s->pid = 0;
	s->unhealthy = false;
	if (s->hp)
		hp_finish(e, s->hp);
	pw_detach(e, s);
	s->lost_at = (struct timespec){0, 0};
}

static void svc_free(struct engine *e, struct tsvc *s, const char *why)
{
	svc_vanish(e, s, why);
	pw_detach(e, s);
	retry_cancel(e, s);
	HASH_DELETE(hh, s->dir->svcs, s);
	json_object_put(s->sidecar);
	free(s->health_path);
	free(s->name);
	free(s->file);
	free(s);
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

/* A PID hint that the kernel confirms: alive, old enough, holding the socket. */
static bool svc_try_hint(struct engine *e, struct tsvc *s, long pid)
{
	int pidfd;

	if (pid <= 0 || pid > 4194304 ||
	    owner_verify_hint((pid_t)pid, s->sock_ino, &s->created, &pidfd) < 0)
		return false;
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
	pid_t pid;
	int pidfd, r;

	s->ouid = s->uid; /* until the owner is known: the file's owner */
	s->ogid = s->gid;
	if (!s->sock_ino) {
		s->owner_done = true; /* connect-probe mode: credentials by connecting */
		goto connect;
	}
	if (s->sidecar && json_object_object_get_ex(s->sidecar, "pid", &hint) &&
	    json_object_is_type(hint, json_type_int) && svc_try_hint(e, s, (long)json_object_get_int64(hint)))
		goto done;
	if (snprintf(file, sizeof(file), "%s.pid", s->name) < (int)sizeof(file) &&
	    owner_read_pidfile(s->dir->fd, file, s->uid, &pid) == 0 && svc_try_hint(e, s, pid))
		goto done;
	svcfs_name_tokens(s->name, &tokens);
	if (tokens.pid && svc_try_hint(e, s, tokens.pid))
		goto done;
	if (s->type == SOCK_DGRAM) {
		if (owner_find_holder(s->sock_ino, &pid) == 0 && (pidfd = owner_pidfd(pid)) >= 0 &&
		    owner_holds_socket(pid, s->sock_ino) == 1)
			svc_own(e, s, pid, pidfd);
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
	r = owner_from_connect(s->dir->fd, s->file, s->type ? s->type : SOCK_STREAM, &cred,
			       &pidfd);
	if (r == -EAGAIN && ++s->owner_tries < OWNER_TRIES)
		return;
	if (r == 0) {
		s->ouid = cred.uid;
		s->ogid = cred.gid;
		s->pid = cred.pid;
		if (pidfd < 0)
			pidfd = owner_pidfd(cred.pid);
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
	while (pw->svcs) {
		struct tsvc *s = pw->svcs;
		struct probe_sock ps;
		pid_t pid;
		int pidfd;

		pw_detach(e, s); /* may release PW: it stays allocated until the batch ends */
		if (!s->sock_ino || probe_query(e->probe, s->sock_ino, &ps) < 0 ||
		    ps.vfs_ino != (uint64_t)s->ino || !probe_sock_alive(&ps)) {
			s->sock_ino = 0;
			svc_vanish(e, s, "owner exited");
			retry_backoff(e, s);
			continue;
		}
		if (owner_find_holder(s->sock_ino, &pid) == 0 && (pidfd = owner_pidfd(pid)) >= 0) {
			if (owner_holds_socket(pid, s->sock_ino) == 1) {
				log_info("%s: owner %ld exited, socket held by %ld", display(s, name, sizeof(name)),
					 (long)s->pid, (long)pid);
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
 * socket bound to it. Uses the last dump when fresh, else asks for the
 * socket inode.
 */
static int kernel_state(struct engine *e, struct tsvc *s, struct probe_sock *ret)
{
	const struct probe_sock *found = NULL;
	struct probe_sock one;

	if (e->dump_fresh)
		found = probe_find(e->probe, s->dev, s->ino);
	if (!found && s->sock_ino && probe_query(e->probe, s->sock_ino, &one) == 0 &&
	    one.vfs_ino == (uint64_t)s->ino)
		found = &one;
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

static void svc_health_start(struct engine *e, struct tsvc *s)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct hprobe *hp;

	if (!s->health_path || s->hp || !s->vnode || e->hp_count >= HEALTH_INFLIGHT_MAX)
		return;
	hp = calloc(1, sizeof(*hp));
	if (!hp)
		return;
	hp->src.kind = SRC_HEALTH;
	if (health_start(&hp->h, s->dir->fd, s->file, s->type ? s->type : SOCK_STREAM,
			 s->health_path, e->opt.probe_timeout_ms) < 0) {
		free(hp);
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

/* False when NAME.lock exists and nobody holds a lock on it (SPEC §3.2). */
static bool svc_lock_ok(struct engine *e, struct tsvc *s)
{
	if (!s->has_lock)
		return true;
	if (!e->locks_fresh) {
		if (locks_load(&e->locks) < 0)
			return true; /* cannot tell: do not hide a service on a guess */
		e->locks_fresh = true;
	}
	return locks_held(&e->locks, s->lock_dev, s->lock_ino);
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

static void svc_check(struct engine *e, struct tsvc *s)
{
	struct probe_sock ps;
	int r;

	if (probe_has_diag(e->probe)) {
		r = kernel_state(e, s, &ps);
		if (r >= 0 && s->sock_ino && ps.sock_ino != s->sock_ino) {
			/*
			 * Another socket on a file with the same (dev, inode): the
			 * old one was unlinked and its inode number reused before we
			 * saw the delete. A new service, whatever the number says.
			 */
			svc_vanish(e, s, "socket replaced");
			s->since = 0;
			s->dirty = true;
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
			s->sock_ino = 0;
			if (s->vnode)
				svc_vanish(e, s, "socket closed");
			svc_stale(e, s); /* may free S */
		}
		return;
	}
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

/* ---- sidecars ---- */

static bool same_file_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	       a->st_uid == b->st_uid;
}

/* Re-read NAME.json if it changed. Marks the service dirty when it did. */
static void svc_read_sidecar(struct engine *e, struct tsvc *s)
{
	char file[NAME_MAX + 1], name[PATH_MAX];
	json_object *obj = NULL;
	const char *why = NULL;
	struct stat st;
	int r;

	if (snprintf(file, sizeof(file), "%s.json", s->name) >= (int)sizeof(file) ||
	    fstatat(s->dir->fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (s->sidecar_known) {
			json_object_put(s->sidecar);
			s->sidecar = NULL;
			s->sidecar_known = false;
			s->dirty = true;
		}
		return;
	}
	/* the socket's owner is part of the trust check: re-read when it changes */
	st.st_uid ^= s->uid;
	if (s->sidecar_known && same_file_version(&st, &s->sidecar_st))
		return;
	s->sidecar_st = st;
	s->sidecar_known = true;
	s->dirty = true;
	r = svcfs_sidecar_read(s->dir->fd, file, s->uid, &obj, NULL, &why);
	if (r < 0 && r != -ENOENT)
		log_warn("%s/%s.json: sidecar ignored: %s", e->backing, display(s, name, sizeof(name)),
			 why);
	json_object_put(s->sidecar);
	s->sidecar = r == 0 ? obj : NULL;
	free(s->health_path);
	s->health_path = NULL;
	if (s->sidecar && json_object_object_get_ex(s->sidecar, "health_check", &obj)) {
		const char *path = json_object_get_string(obj);
		if (json_object_is_type(obj, json_type_string) && health_path_ok(path))
			s->health_path = strdup(path);
		else
			log_warn("%s/%s.json: health_check ignored: not an absolute URL path",
				 e->backing, display(s, name, sizeof(name)));
	}
}

/* NAME.lock: present (and trusted) or not; the lock itself is looked at by svc_lock_ok. */
static void svc_read_lock(struct engine *e, struct tsvc *s)
{
	char file[NAME_MAX + 1], name[PATH_MAX];
	struct stat st;

	s->has_lock = false;
	if (snprintf(file, sizeof(file), "%s.lock", s->name) >= (int)sizeof(file) ||
	    fstatat(s->dir->fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	if (st.st_uid != s->uid && st.st_uid != 0) {
		if (!s->lock_untrusted_logged)
			log_warn("%s/%s.lock: lock file ignored: owned by another user than the socket",
				 e->backing, display(s, name, sizeof(name)));
		s->lock_untrusted_logged = true;
		return;
	}
	s->lock_untrusted_logged = false;
	s->has_lock = true;
	s->lock_dev = st.st_dev;
	s->lock_ino = st.st_ino;
}

/* ---- evaluation of one name ---- */

/*
 * Bring the record of service NAME in D up to date with the files now in
 * BACKING: its socket (NAME.sock, else a socket named NAME), its sidecar,
 * and what the kernel says of it.
 */
static void svc_evaluate(struct engine *e, struct tdir *d, const char *name)
{
	char buf[NAME_MAX + 1];
	const char *file = NULL;
	struct tdir *sub;
	struct tsvc *s;
	struct stat st;
	size_t stemlen;

	if (svcfs_name_hidden(name) || strlen(name) > NAME_MAX)
		return;
	HASH_FIND_STR(d->subdirs, name, sub);
	if (!sub) { /* a group of the same name wins */
		if (snprintf(buf, sizeof(buf), "%s.sock", name) < (int)sizeof(buf) &&
		    fstatat(d->fd, buf, &st, 0) == 0 && S_ISSOCK(st.st_mode))
			file = buf;
		else if (svcfs_name_split(name, &stemlen) != SVCFS_SUFFIX_SOCK &&
			 fstatat(d->fd, name, &st, 0) == 0 && S_ISSOCK(st.st_mode))
			file = name;
	}
	HASH_FIND_STR(d->svcs, name, s);
	if (s && (!file || s->dev != st.st_dev || s->ino != st.st_ino ||
		  strcmp(s->file, file) != 0)) {
		svc_free(e, s, file ? "socket file replaced" : "socket file removed");
		s = NULL;
	}
	if (!file)
		return;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->name = strdup(name)) || !(s->file = strdup(file))) {
			if (s)
				free(s->name);
			free(s);
			log_err("%s: out of memory", name);
			return;
		}
		s->dir = d;
		s->dev = st.st_dev;
		s->ino = st.st_ino;
		s->created = st.st_mtim;
		s->uid = st.st_uid;
		s->gid = st.st_gid;
		s->mode = st.st_mode;
		s->dirty = true;
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, d->svcs, s->name, strlen(s->name), s);
		if (svcfs_hash_oom) {
			free(s->name);
			free(s->file);
			free(s);
			log_err("%s: out of memory", name);
			return;
		}
	}
	s->seen = true;
	{
		struct stat lst;
		s->via_link = fstatat(d->fd, file, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
			      S_ISLNK(lst.st_mode);
	}
	if (s->uid != st.st_uid || s->gid != st.st_gid || s->mode != st.st_mode) {
		s->uid = st.st_uid;
		s->gid = st.st_gid;
		s->mode = st.st_mode;
		s->dirty = true;
		if (s->type == SOCK_DGRAM || !s->pid) {
			s->ouid = s->uid; /* the file's owner stands for an unknown owner */
			s->ogid = s->gid;
		}
	}
	svc_read_sidecar(e, s);
	svc_read_lock(e, s);
	svc_check(e, s); /* the last use of S: it may be reaped */
}

/* Evaluate NAME unless this scan already did (SCANNING) and kept it. */
static void evaluate_once(struct engine *e, struct tdir *d, const char *name, bool scanning)
{
	struct tsvc *s;

	if (scanning) {
		HASH_FIND_STR(d->svcs, name, s);
		if (s && s->seen)
			return; /* NAME.sock and NAME.json both lead here */
	}
	svc_evaluate(e, d, name);
}

/*
 * Evaluate every service an event on file NAME may concern. During a scan
 * (SCANNING) each service is evaluated once, whichever of its files is met.
 */
static void evaluate_file(struct engine *e, struct tdir *d, const char *name, bool scanning)
{
	char stem[NAME_MAX + 1];
	size_t stemlen;
	enum svcfs_suffix k;

	if (svcfs_name_hidden(name))
		return;
	k = svcfs_name_split(name, &stemlen);
	if (k != SVCFS_SUFFIX_NONE && stemlen < sizeof(stem)) {
		memcpy(stem, name, stemlen);
		stem[stemlen] = '\0';
		evaluate_once(e, d, stem, scanning);
	}
	if (k != SVCFS_SUFFIX_SOCK)
		evaluate_once(e, d, name, scanning); /* a socket named exactly NAME */
}

/* ---- directories ---- */

static void dir_scan(struct engine *e, struct tdir *d);

static int dir_watch(struct engine *e, struct tdir *d)
{
	char path[64];

	if (e->inotify_fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->fd);
	d->wd = inotify_add_watch(e->inotify_fd, path, WATCH_MASK);
	if (d->wd < 0) {
		int err = errno;
		if (!e->unwatched)
			log_warn("%s/%s: cannot watch (%s); rescanning every probe interval",
				 e->backing, d->relpath, strerror(err));
		e->unwatched = true;
		return -err;
	}
	svcfs_hash_oom = false;
	HASH_ADD(hw, e->by_wd, wd, sizeof(d->wd), d);
	if (svcfs_hash_oom) {
		inotify_rm_watch(e->inotify_fd, d->wd);
		d->wd = -1;
		e->unwatched = true;
		return -ENOMEM;
	}
	return 0;
}

static void dir_free(struct engine *e, struct tdir *d)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;

	HASH_ITER(hh, d->subdirs, sub, tsub) dir_free(e, sub);
	HASH_ITER(hh, d->svcs, s, ts) svc_free(e, s, "group removed");
	if (d->wd >= 0) {
		HASH_DELETE(hw, e->by_wd, d);
		inotify_rm_watch(e->inotify_fd, d->wd); /* EINVAL if the kernel dropped it */
	}
	if (d->parent) {
		HASH_DELETE(hh, d->parent->subdirs, d);
		if (d->vnode)
			view_remove(e->view, d->vnode);
	}
	if (d->fd >= 0)
		close(d->fd);
	free(d->name);
	free(d->relpath);
	free(d);
}

static struct tdir *dir_new(struct tdir *parent, const char *name, int fd, const struct stat *st)
{
	struct tdir *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->fd = fd;
	d->wd = -1;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->parent = parent;
	d->depth = parent ? parent->depth + 1 : 0;
	d->name = strdup(name);
	if (parent && parent->relpath[0]) {
		size_t n = strlen(parent->relpath) + 1 + strlen(name) + 1;
		d->relpath = malloc(n);
		if (d->relpath)
			snprintf(d->relpath, n, "%s/%s", parent->relpath, name);
	} else {
		d->relpath = strdup(name);
	}
	if (!d->name || !d->relpath) {
		free(d->name);
		free(d->relpath);
		free(d);
		return NULL;
	}
	return d;
}

/* Add group NAME under PARENT, watch it and scan it. */
static void dir_add(struct engine *e, struct tdir *parent, const char *name)
{
	struct tdir *d;
	struct tsvc *clash;
	struct stat st;
	int fd;

	if (svcfs_name_hidden(name) || parent->depth >= SVCFS_GROUP_DEPTH_MAX)
		return;
	fd = openat(parent->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			log_warn("%s/%s%s%s: cannot open group: %s", e->backing, parent->relpath,
				 parent->relpath[0] ? "/" : "", name, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !(d = dir_new(parent, name, fd, &st))) {
		close(fd);
		return;
	}
	svcfs_hash_oom = false;
	HASH_ADD_KEYPTR(hh, parent->subdirs, d->name, strlen(d->name), d);
	if (svcfs_hash_oom) {
		d->parent = NULL;
		dir_free(e, d);
		return;
	}
	/* the group takes the name: a service of the same name leaves */
	HASH_FIND_STR(parent->svcs, name, clash);
	if (clash)
		svc_free(e, clash, "a group of the same name exists");
	d->vnode = view_group_add(e->view, parent->vnode, name, st.st_uid, st.st_gid,
				  st.st_mode & 0555);
	d->seen = true;
	dir_watch(e, d); /* watch first, then scan: nothing created in between is missed */
	dir_scan(e, d);
}

static void dir_remove_named(struct engine *e, struct tdir *parent, const char *name)
{
	struct tdir *d;

	HASH_FIND_STR(parent->subdirs, name, d);
	if (d)
		dir_free(e, d);
}

static void dir_update_attr(struct engine *e, struct tdir *d)
{
	struct stat st;

	if (fstat(d->fd, &st) == 0)
		view_dir_set_attr(e->view, d->vnode, st.st_uid, st.st_gid, st.st_mode & 0555);
}

/* Reconcile D (and its groups) with what is in BACKING now. */
static void dir_scan(struct engine *e, struct tdir *d)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;
	struct dirent *de;
	DIR *dp;
	int fd;

	HASH_ITER(hh, d->svcs, s, ts) s->seen = false;
	HASH_ITER(hh, d->subdirs, sub, tsub) sub->seen = false;
	dir_update_attr(e, d);
	fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		log_warn("%s/%s: cannot read directory: %s", e->backing, d->relpath,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return; /* keep what we have rather than drop everything */
	}
	while ((de = readdir(dp))) {
		unsigned char type = de->d_type;
		struct stat st;

		if (svcfs_name_hidden(de->d_name))
			continue;
		if (type == DT_UNKNOWN) {
			if (fstatat(d->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (type == DT_DIR) {
			HASH_FIND_STR(d->subdirs, de->d_name, sub);
			if (sub && fstatat(d->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_ino == sub->ino && st.st_dev == sub->dev) {
				sub->seen = true;
				dir_scan(e, sub);
			} else {
				if (sub)
					dir_free(e, sub); /* replaced */
				dir_add(e, d, de->d_name);
			}
			continue;
		}
		evaluate_file(e, d, de->d_name, true);
	}
	closedir(dp);
	HASH_ITER(hh, d->subdirs, sub, tsub) if (!sub->seen) dir_free(e, sub);
	HASH_ITER(hh, d->svcs, s, ts) if (!s->seen) svc_evaluate(e, d, s->name);
}

/* ---- entry points for watch.c ---- */

int table_open_root(struct engine *e)
{
	struct tdir *d;
	struct stat st;
	int fd;

	fd = open(e->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(d = dir_new(NULL, "", fd, &st))) {
		int r = errno ? -errno : -ENOMEM;
		close(fd);
		return r;
	}
	d->vnode = view_root(e->view);
	e->root = d;
	e->unwatched = false;
	dir_watch(e, d);
	if (probe_dump(e->probe) == 0)
		e->dump_fresh = true;
	dir_scan(e, d);
	e->dump_fresh = false;
	return 0;
}

void table_close_root(struct engine *e)
{
	if (!e->root)
		return;
	dir_free(e, e->root);
	e->root = NULL;
}

void table_rescan(struct engine *e)
{
	if (!e->root)
		return;
	if (probe_dump(e->probe) == 0)
		e->dump_fresh = true;
	dir_scan(e, e->root);
	e->dump_fresh = false;
}

struct tdir *table_dir_by_wd(struct engine *e, int wd)
{
	struct tdir *d;

	HASH_FIND(hw, e->by_wd, &wd, sizeof(wd), d);
	return d;
}

bool table_dir_is_root(struct engine *e, struct tdir *d)
{
	return d == e->root;
}

void table_dir_attr_changed(struct engine *e, struct tdir *d)
{
	dir_update_attr(e, d);
}

void table_dir_event(struct engine *e, struct tdir *d, uint32_t mask, const char *name)
{
	if (mask & IN_ISDIR) {
		if (svcfs_name_hidden(name))
			return;
		if (mask & (IN_DELETE | IN_MOVED_FROM))
			dir_remove_named(e, d, name);
		if (mask & (IN_CREATE | IN_MOVED_TO)) {
			dir_remove_named(e, d, name); /* a stale record of the same name */
			dir_add(e, d, name);
		}
		if (mask & IN_ATTRIB) {
			struct tdir *sub;
			HASH_FIND_STR(d->subdirs, name, sub);
			if (sub)
				dir_update_attr(e, sub);
		}
		svc_evaluate(e, d, name); /* a same-named service may leave or return */
		return;
	}
	evaluate_file(e, d, name, false);
}

static void check_dir(struct engine *e, struct tdir *d)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;

	HASH_ITER(hh, d->svcs, s, ts)
	{
		/*
		 * inotify sees BACKING, not where a symlink points: a symlinked
		 * service is looked at afresh (target replaced, or gone).
		 */
		svc_health_start(e, s); /* each interval, for services with health_check */
		if (s->via_link)
			svc_evaluate(e, d, s->name);
		else
			svc_check(e, s);
	}
	HASH_ITER(hh, d->subdirs, sub, tsub) check_dir(e, sub);
}

void table_check_all(struct engine *e)
{
	int r;

	if (!e->root)
		return;
	if (e->unwatched) {
		table_rescan(e); /* also checks every service */
		return;
	}
	r = probe_dump(e->probe);
	if (r < 0 && probe_has_diag(e->probe)) {
		log_warn("sock_diag dump failed: %s; checking services one by one", strerror(-r));
	}
	e->dump_fresh = r == 0;
	check_dir(e, e->root);
	e->dump_fresh = false;
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

void table_free(struct engine *e)
{
	table_close_root(e);
	table_free_dead_probes(e);
	locks_free(&e->locks);
}
