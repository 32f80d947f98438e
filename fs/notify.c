/*
 * notify — view events to what the kernel must hear: pokes through the
 * mount (so inotify watchers see them, SPEC §5) and cache invalidations.
 *
 * Runs on the engine thread, after the view lock is released (view_flush),
 * never inside a handler: an invalidation may wait for the kernel's inode
 * lock, which a handler in progress may hold while it waits for the view;
 * a poke is an ordinary system call served by the FUSE loop's other
 * threads.
 *
 *   ADDED         mkdir through the mount (IN_CREATE); fallback: the
 *                 parent's listing is invalidated
 *   REMOVED       rmdir through the mount (IN_DELETE); fallback:
 *                 notify_delete and the parent's listing
 *   FILE_REMOVED  notify_delete and the parent's listing
 *   MODIFIED      the file's pages and attributes, then truncate to its
 *                 size through the mount (IN_MODIFY, no data written);
 *                 for an aggregate, its entry is moved to the new version
 *                 (replace_aggregate; both aggregates) before the truncate
 *   ATTRIB        the inode's attributes (and pages)
 *   DIR_CHANGED   the directory's listing and attributes
 *
 * The aggregates' MODIFIED come last in a batch, after every poke of it:
 * they list only what users can see, and a service becomes visible in its
 * MKDIR poke (view.h), so their text changes during the batch.
 *
 * Before poke mode starts (the engine thread's first moment) only the
 * invalidations happen. A batch often touches one inode many times; each
 * is invalidated, and each file truncated, once per batch. -ENOENT
 * (nothing cached) is the common, harmless answer to an invalidation.
 *
 * The pokes themselves are made by the poker, a child process that holds
 * no FUSE descriptor, at the engine thread's request (see "the poker"
 * below): a poke a FUSE worker has read is waited for even through
 * SIGKILL, and made from the engine thread it would keep a killed daemon
 * alive for ever.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

struct seen {
	uint64_t *inos;
	size_t n, cap;
};

/* True the first time INO is offered to this set in this batch. */
static bool first_time(struct seen *s, uint64_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->inos[i] == ino)
			return false;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint64_t *p = realloc(s->inos, cap * sizeof(*p));
		if (!p)
			return true; /* doing it twice is only slower */
		s->inos = p;
		s->cap = cap;
	}
	s->inos[s->n++] = ino;
	return true;
}

static void check(int r, const char *what, uint64_t ino)
{
	if (r < 0 && r != -ENOENT)
		log_debug("%s of inode %llu: %s", what, (unsigned long long)ino, strerror(-r));
}

static void inval_inode(struct fuse_session *se, struct seen *seen, uint64_t ino)
{
	if (first_time(seen, ino))
		check(fuse_lowlevel_notify_inval_inode(se, ino, 0, 0), "inval_inode", ino);
}

/*
 * The poker. A poke is a system call on this very mount, and once a FUSE
 * worker has read its request the kernel waits for the answer without
 * heeding any signal, SIGKILL included (fs/fuse/dev.c, request_wait_answer).
 * Made from the engine thread, a daemon killed at that moment never ended:
 * the thread waited for an answer only the dead workers could give, so the
 * process never exited, its /dev/fuse descriptor was never closed and the
 * kernel never aborted the connection — a D-state daemon for good.
 *
 * So the pokes are made by a child forked for it, which holds nothing but
 * its end of a SOCK_SEQPACKET socket pair (and stderr): no FUSE descriptor.
 * The engine thread sends it {op, size, path} and waits for the errno in
 * recv(2), which SIGKILL does end. A killed daemon then exits, its last
 * /dev/fuse descriptor closes, the kernel aborts the connection, the
 * child's call fails with ENOTCONN and PR_SET_PDEATHSIG kills it. On a
 * clean stop it reads EOF, exits, and is reaped (notify_poker_stop).
 * It is single-threaded, so its pid is the thread id the handlers see in
 * fuse_req_ctx() (view_set_poker). If it cannot be started or dies, one
 * line is logged and the engine thread pokes itself, as before.
 *
 * Pokes go through the mountpoint's path each time: a descriptor held on
 * the mount would make a user's umount fail with EBUSY.
 */
enum poke_op { POKE_MKDIR, POKE_RMDIR, POKE_TRUNCATE };

#define POKE_BATCH_MAX 2 /* the two aggregates' truncates go in one request */

struct poke {
	enum poke_op op;
	const char *path; /* absolute, shorter than PATH_MAX (mount_path) */
	uint64_t size;    /* POKE_TRUNCATE's length */
	int ret;          /* 0 or -errno, once made */
};

/*
 * On the socket, a request is POKE_BATCH_MAX records at most, each a
 * struct poke_rec and LEN bytes of path (its NUL included), padded to 8;
 * the answer is an int32_t errno (0: done) per record, in order.
 */
struct poke_rec {
	uint32_t op;
	uint32_t len;
	uint64_t size;
};

#define POKE_REQ_MAX (POKE_BATCH_MAX * (sizeof(struct poke_rec) + PATH_MAX + 8))

/* OP on PATH, here: 0 or -errno. */
static int poke_here(enum poke_op op, const char *path, uint64_t size)
{
	int r;

	switch (op) {
	case POKE_MKDIR:
		r = mkdir(path, 0555);
		break;
	case POKE_RMDIR:
		r = rmdir(path);
		break;
	case POKE_TRUNCATE:
		r = size > (uint64_t)INT64_MAX ? (errno = EINVAL, -1) : truncate(path, (off_t)size);
		break;
	default:
		r = (errno = EINVAL, -1);
		break;
	}
	return r < 0 ? -errno : 0;
}

/* The poker's end: nothing left open (valgrind's --track-fds checks it too). */
static _Noreturn void poker_exit(int fd, int status)
{
	close(fd);
	_exit(status);
}

/* The poker's life: serve requests on FD until EOF. */
static _Noreturn void poker_main(int fd)
{
	static char buf[POKE_REQ_MAX];

	for (;;) {
		int32_t err[POKE_BATCH_MAX];
		size_t k = 0, off = 0;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			poker_exit(fd, 0); /* EOF: the daemon is stopping (or gone) */
		while (k < POKE_BATCH_MAX && off + sizeof(struct poke_rec) <= (size_t)n) {
			struct poke_rec rec;

			memcpy(&rec, buf + off, sizeof(rec));
			off += sizeof(rec);
			if (rec.len == 0 || rec.len > (size_t)n - off || buf[off + rec.len - 1])
				poker_exit(fd, 1); /* never: the engine thread then pokes itself */
			err[k++] = -poke_here((enum poke_op)rec.op, buf + off, rec.size);
			off += (rec.len + 7) & ~7u;
		}
		if (k == 0)
			poker_exit(fd, 1);
		if (send(fd, err, k * sizeof(err[0]), MSG_NOSIGNAL) !=
		    (ssize_t)(k * sizeof(err[0])))
			poker_exit(fd, 0);
	}
}

int notify_poker_start(struct svcfs_fs *fs)
{
	pid_t parent = getpid(), pid;
	int sv[2], r;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pid = fork();
	if (pid < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		sigset_t all;

		/* the daemon's end (EOF) or its death ends it, not a signal to the
		 * group (systemd's SIGTERM to every process of the unit, say) */
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		/* 0, 1 and 2 were open before the FUSE device (libfuse sees to it) */
		if (dup2(sv[1], 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0); /* the FUSE device and the guard's pipe above all */
		close(0);
		close(1);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
			poker_exit(3, 0); /* the daemon died before the death signal was armed */
		prctl(PR_SET_NAME, "svcfs-poker");
		if (chdir("/") < 0)
			poker_exit(3, 1);
		poker_main(3);
	}
	close(sv[1]);
	fs->poker_fd = sv[0];
	fs->poker_pid = pid;
	return 0;
}

/* Close the poker's socket and reap it; KILL: it may be alive and must go. */
static void poker_end(struct svcfs_fs *fs, bool kill_it)
{
	if (fs->poker_pid <= 0)
		return;
	close(fs->poker_fd);
	if (kill_it)
		kill(fs->poker_pid, SIGKILL); /* ours until reaped: the pid is still its */
	while (waitpid(fs->poker_pid, NULL, 0) < 0 && errno == EINTR)
		;
	fs->poker_fd = -1;
	fs->poker_pid = 0;
}

void notify_poker_stop(struct svcfs_fs *fs)
{
	poker_end(fs, false); /* no poke in flight: it reads EOF and exits */
}

/*
 * The N pokes P (N <= POKE_BATCH_MAX) by the poker, in one round trip:
 * each one's ret set. 0, or -errno if the poker could not be asked or
 * did not answer (-EPIPE: it is gone); then no ret is set.
 */
static int poker_call(struct svcfs_fs *fs, struct poke *p, size_t n)
{
	char buf[POKE_REQ_MAX];
	int32_t err[POKE_BATCH_MAX];
	size_t off = 0;
	ssize_t got;

	for (size_t i = 0; i < n; i++) {
		struct poke_rec rec = {
		    .op = p[i].op, .len = (uint32_t)strlen(p[i].path) + 1, .size = p[i].size};
		size_t padded = (rec.len + 7) & ~7u;

		memcpy(buf + off, &rec, sizeof(rec));
		off += sizeof(rec);
		memcpy(buf + off, p[i].path, rec.len);
		memset(buf + off + rec.len, 0, padded - rec.len);
		off += padded;
	}
	do
		got = send(fs->poker_fd, buf, off, MSG_NOSIGNAL);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	do
		got = recv(fs->poker_fd, err, sizeof(err), 0); /* SIGKILL ends this wait */
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if (got != (ssize_t)(n * sizeof(err[0])))
		return -EPIPE; /* EOF: it died */
	for (size_t i = 0; i < n; i++)
		p[i].ret = -err[i];
	return 0;
}

/* The N pokes P through the mount, by the poker or else here: each one's ret set. */
static void poke_all(struct svcfs_fs *fs, struct poke *p, size_t n)
{
	int r;

	if (n == 0)
		return;
	if (fs->poker_pid > 0) {
		r = poker_call(fs, p, n);
		if (r == 0)
			return;
		/* events are never lost: the engine thread pokes from now on */
		log_warn("the poker process %d is gone (%s): poking from the engine thread",
		         (int)fs->poker_pid, strerror(-r));
		poker_end(fs, true);
		view_set_poker(fs->view, gettid(), geteuid());
	}
	for (size_t i = 0; i < n; i++)
		p[i].ret = poke_here(p[i].op, p[i].path, p[i].size);
}

void notify_start(void *ctx)
{
	struct svcfs_fs *fs = ctx;

	view_set_poker(fs->view, fs->poker_pid > 0 ? fs->poker_pid : gettid(), geteuid());
	fs->poking = true;
}

void notify_stop(void *ctx)
{
	struct svcfs_fs *fs = ctx;

	atomic_store(&fs->mounted, false);
	atomic_store(&fs->stop_requested, true);
	fuse_session_exit(fs->se);
	pthread_kill(fs->loop_thread, SIGUSR1); /* interrupts the loop's wait */
}

/* MOUNTPOINT/relative path of INO into BUF (and the file's size). */
static bool mount_path(struct svcfs_fs *fs, uint64_t ino, char *buf, size_t size,
                       uint64_t *ret_size)
{
	char rel[PATH_MAX];

	return fs->poking && view_path(fs->view, ino, rel, sizeof(rel), ret_size) == 0 &&
	       snprintf(buf, size, "%s/%s", fs->mountpoint, rel) < (int)size;
}

/* mkdir/rmdir of INO through the mount. Returns false if it could not be done. */
static bool poke_dir(struct svcfs_fs *fs, uint64_t ino, bool add)
{
	char path[PATH_MAX];
	struct poke p;

	if (!mount_path(fs, ino, path, sizeof(path), NULL))
		return false;
	p = (struct poke){.op = add ? POKE_MKDIR : POKE_RMDIR, .path = path};
	poke_all(fs, &p, 1);
	if (p.ret < 0) {
		log_debug("%s poke of %s: %s", add ? "mkdir" : "rmdir", path, strerror(-p.ret));
		return false;
	}
	if (fs->stats)
		STATS_INC(fs->stats, events);
	return true;
}

/*
 * truncate the N files INOS (N <= POKE_BATCH_MAX) to their own sizes
 * through the mount: IN_MODIFY, nothing written. One round trip to the
 * poker for all.
 */
static void poke_modify(struct svcfs_fs *fs, const uint64_t *inos, size_t n)
{
	char paths[POKE_BATCH_MAX][PATH_MAX];
	struct poke p[POKE_BATCH_MAX];
	size_t k = 0;

	for (size_t i = 0; i < n && k < POKE_BATCH_MAX; i++) {
		p[k] = (struct poke){.op = POKE_TRUNCATE, .path = paths[k]};
		if (mount_path(fs, inos[i], paths[k], sizeof(paths[k]), &p[k].size))
			k++;
	}
	poke_all(fs, p, k);
	for (size_t i = 0; i < k; i++) {
		if (p[i].ret < 0)
			log_debug("truncate poke of %s: %s", p[i].path, strerror(-p[i].ret));
		else if (fs->stats)
			STATS_INC(fs->stats, events);
	}
}

static bool is_aggregate_change(const struct view_event *ev)
{
	return ev->kind == VIEW_EV_MODIFIED &&
	       (ev->ino == VIEW_SERVICES_INO || ev->ino == VIEW_TARGETS_INO);
}

/*
 * An aggregate changed: its name moves to a new version (view.c), as if
 * renamed over. When the kernel knows the old version, its entry is
 * deleted (watchers of that file get IN_DELETE_SELF, as after rename(2):
 * watch the directory to follow every change); the next lookup finds the
 * new version, and the poke that follows gives watchers of the root
 * IN_MODIFY — one, once the new text is in place.
 */
static void replace_aggregate(struct svcfs_fs *fs, const struct view_event *ev)
{
	const char *name = ev->ino == VIEW_SERVICES_INO ? VIEW_SERVICES_NAME : VIEW_TARGETS_NAME;

	if (ev->parent)
		check(fuse_lowlevel_notify_delete(fs->se, VIEW_ROOT_INO, ev->parent, name,
		                                  strlen(name)),
		      "notify_delete", ev->parent);
	else
		check(fuse_lowlevel_notify_inval_entry(fs->se, VIEW_ROOT_INO, name, strlen(name)),
		      "inval_entry", ev->ino);
}

static void handle(struct svcfs_fs *fs, const struct view_event *ev, struct seen *invalidated,
                   struct seen *truncated)
{
	switch (ev->kind) {
	case VIEW_EV_ADDED:
		if (!poke_dir(fs, ev->ino, true)) {
			view_settle(fs->view, ev->ino);
			inval_inode(fs->se, invalidated, ev->parent);
		}
		break;
	case VIEW_EV_REMOVED:
		if (poke_dir(fs, ev->ino, false))
			break;
		view_settle(fs->view, ev->ino);
		__attribute__((fallthrough)); /* forget it the quiet way */
	case VIEW_EV_FILE_REMOVED:
		check(fuse_lowlevel_notify_delete(fs->se, ev->parent, ev->ino, ev->name,
		                                  strlen(ev->name)),
		      "notify_delete", ev->ino);
		inval_inode(fs->se, invalidated, ev->parent);
		break;
	case VIEW_EV_MODIFIED:
		/* pages first, so that a watcher woken by the poke reads the new text */
		if (!is_aggregate_change(ev))
			inval_inode(fs->se, invalidated, ev->ino);
		if (first_time(truncated, ev->ino))
			poke_modify(fs, &ev->ino, 1);
		break;
	case VIEW_EV_ATTRIB:
	case VIEW_EV_DIR_CHANGED:
		inval_inode(fs->se, invalidated, ev->ino);
		break;
	}
	/* bound the linear searches on huge batches (a rescan) */
	if (invalidated->n > 4096)
		invalidated->n = 0;
	if (truncated->n > 4096)
		truncated->n = 0;
}

void notify_events(void *ctx, const struct view_event *events, size_t n)
{
	struct svcfs_fs *fs = ctx;
	struct seen invalidated = {0}, truncated = {0};
	uint64_t aggregates[POKE_BATCH_MAX];
	size_t naggregates = 0;

	if (!atomic_load(&fs->mounted))
		return; /* nothing can be cached before the mount */
	for (size_t i = 0; i < n && atomic_load(&fs->mounted); i++)
		if (!is_aggregate_change(&events[i]))
			handle(fs, &events[i], &invalidated, &truncated);
	/* both aggregates replaced before either is poked: woken by one, read both */
	for (size_t i = 0; i < n && atomic_load(&fs->mounted); i++)
		if (is_aggregate_change(&events[i]))
			replace_aggregate(fs, &events[i]);
	/* then poked together (two inodes at most, 2 and 3): one round trip */
	for (size_t i = 0; i < n && naggregates < POKE_BATCH_MAX; i++)
		if (is_aggregate_change(&events[i]) && first_time(&truncated, events[i].ino))
			aggregates[naggregates++] = events[i].ino;
	if (atomic_load(&fs->mounted))
		poke_modify(fs, aggregates, naggregates);
	free(invalidated.inos);
	free(truncated.inos);
}
