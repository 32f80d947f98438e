/*
 * Watching a directory of services: inotify turned into appeared /
 * vanished / changed events for names, with nothing lost.
 *
 * The watcher keeps the set of services it has reported (KNOWN) and emits
 * only transitions of that set, so a service is always APPEARED, then
 * maybe CHANGED, then VANISHED, whatever order or duplication inotify
 * delivers. When the kernel's queue overflows (IN_Q_OVERFLOW) the tree is
 * read again: new names APPEARED, missing ones VANISHED, survivors CHANGED
 * (their changes may have been among the lost events).
 *
 * On an svcfs mount a service is a directory: IN_CREATE/IN_DELETE of it in
 * its parent are appear/vanish (the daemon makes the kernel send them, SPEC
 * §5) and IN_MODIFY of its files, watched in the service directory, is a
 * change. A directory is a service when it holds a regular file meta.json;
 * else it is a group, watched and read in turn. A top-level directory whose
 * name starts with '@' is another host's (MOUNT/@HOST, SPEC §8): libsvcfs
 * is about this host's services (discover.c), so it is neither watched nor
 * read, and nothing in it is reported.
 *
 * On a backing directory a service is a socket file found the way svcfs
 * finds it (svcfs_backing_socket); its sidecars changing (NAME.json,
 * NAME.pid, NAME.lock written or removed) or its socket being replaced is
 * a change. No liveness: a socket appears when it is bound.
 *
 * Groups are watched to SVCFS_GROUP_DEPTH_MAX deep, each directory added
 * to inotify before it is read, so no entry can slip between.
 *
 * The fd callers poll is an epoll set of the inotify fd and an eventfd
 * that is signalled while events are queued here: the existing services
 * of SVCFS_WATCH_EXISTING, or what one read of inotify gave beyond the
 * event taken, are pending without inotify having anything to read, and
 * the fd must poll readable all the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "private.h"

#define READ_BUF (64 * 1024)

#define MASK_DIR                                                                                   \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ONLYDIR)
#define MASK_BACKING (MASK_DIR | IN_CLOSE_WRITE)
#define MASK_SERVICE (IN_MODIFY | IN_ONLYDIR) /* a service directory on a mount */
#define REMOTE_MARK  '@' /* MOUNT/@HOST: another host's services (as discover.c) */

struct wdir {
	int wd;
	char *rel; /* below the watched directory: "" for itself, "g", "g/h", or a service's name */
	bool service;      /* mount: a service directory (its files change) */
	unsigned depth;    /* groups below the watched directory */
	UT_hash_handle hh; /* watch->dirs, by wd */
};

struct known {
	char *name;
	unsigned gen;         /* watch->gen when last seen by a scan */
	bool changed_pending; /* its APPEARED or a CHANGED is queued: no CHANGED needed */
	UT_hash_handle hh;    /* watch->known, by name */
};

struct qevent {
	enum svcfs_event_type type;
	char *name;
};

struct svcfs_watch {
	svcfs_dir *d;
	int ifd;
	int efd;      /* eventfd: readable while q holds events */
	int epfd;     /* epoll of ifd and efd: what svcfs_watch_fd() gives */
	bool pending; /* efd is signalled */
	struct wdir *dirs;
	struct known *known;
	unsigned gen;
	struct qevent *q; /* pending events: q[head..tail) */
	size_t head, tail, cap;
	char *cur; /* the name of the event last returned */
	char *buf; /* READ_BUF bytes for read(2) of the inotify fd */
};

/* ---- the queue and the known set ---- */

static struct known *known_find(svcfs_watch *w, const char *name)
{
	struct known *k;

	HASH_FIND_STR(w->known, name, k);
	return k;
}

static int queue_push(svcfs_watch *w, enum svcfs_event_type type, const char *name)
{
	char *copy;

	if (w->tail == w->cap) {
		if (w->head > 0) { /* slide the pending events to the front */
			memmove(w->q, w->q + w->head, (w->tail - w->head) * sizeof(*w->q));
			w->tail -= w->head;
			w->head = 0;
		}
		if (w->tail == w->cap) {
			size_t ncap = w->cap ? w->cap * 2 : 64;
			struct qevent *nq = realloc(w->q, ncap * sizeof(*nq));
			if (!nq)
				return -ENOMEM;
			w->q = nq;
			w->cap = ncap;
		}
	}
	copy = strdup(name);
	if (!copy)
		return -ENOMEM;
	w->q[w->tail++] = (struct qevent){type, copy};
	return 0;
}

/* NAME is there now. */
static int saw_service(svcfs_watch *w, const char *name, bool changed, bool emit)
{
	struct known *k = known_find(w, name);

	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k || !(k->name = strdup(name))) {
			free(k);
			return -ENOMEM;
		}
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, w->known, k->name, strlen(k->name), k);
		if (svcfs_hash_oom) {
			free(k->name);
			free(k);
			return -ENOMEM;
		}
		k->gen = w->gen;
		if (!emit)
			return 0;
		/* until APPEARED is taken, a lookup will see any change anyway */
		k->changed_pending = true;
		return queue_push(w, SVCFS_EVENT_APPEARED, name);
	}
	k->gen = w->gen;
	if (!changed || k->changed_pending)
		return 0;
	k->changed_pending = true;
	return queue_push(w, SVCFS_EVENT_CHANGED, name);
}

static int forget(svcfs_watch *w, struct known *k)
{
	int r = queue_push(w, SVCFS_EVENT_VANISHED, k->name);

	HASH_DEL(w->known, k);
	free(k->name);
	free(k);
	return r;
}

/* NAME is gone; with GROUP, everything below it too (a group removed). */
static int lost(svcfs_watch *w, const char *name, bool group)
{
	struct known *k, *tmp;
	size_t len = strlen(name);
	int r = 0;

	if ((k = known_find(w, name)))
		r = forget(w, k);
	if (!group)
		return r;
	HASH_ITER(hh, w->known, k, tmp)
	{
		if (strncmp(k->name, name, len) == 0 && k->name[len] == '/' && r == 0)
			r = forget(w, k);
	}
	return r;
}

/* ---- directories ---- */

static struct wdir *wdir_find(svcfs_watch *w, int wd)
{
	struct wdir *x;

	HASH_FIND_INT(w->dirs, &wd, x);
	return x;
}

static void wdir_free(svcfs_watch *w, struct wdir *x)
{
	HASH_DEL(w->dirs, x);
	free(x->rel);
	free(x);
}

/* Watch directory REL. -ENOENT if it is gone already. */
static int watch_dir(svcfs_watch *w, const char *rel, bool service, unsigned depth)
{
	char path[PATH_MAX + 32];
	struct wdir *x;
	uint32_t mask = service ? MASK_SERVICE : w->d->mount ? MASK_DIR : MASK_BACKING;
	int n, wd;

	n = snprintf(path, sizeof(path), SVCFS_PROC_FD_FMT, w->d->fd, rel);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	wd = inotify_add_watch(w->ifd, path, mask);
	if (wd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	x = wdir_find(w, wd);
	if (x && strcmp(x->rel, rel) == 0) {
		x->service = service;
		return 0;
	}
	if (x) /* the same directory under a new name (renamed): take the new one */
		wdir_free(w, x);
	x = calloc(1, sizeof(*x));
	if (!x || !(x->rel = strdup(rel))) {
		free(x);
		inotify_rm_watch(w->ifd, wd);
		return -ENOMEM;
	}
	x->wd = wd;
	x->service = service;
	x->depth = depth;
	svcfs_hash_oom = false;
	HASH_ADD_INT(w->dirs, wd, x);
	if (svcfs_hash_oom) {
		free(x->rel);
		free(x);
		inotify_rm_watch(w->ifd, wd);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Mount: is entry NAME of directory REL another host's (below MOUNT/@HOST)?
 * The first component below the mount's root tells: the watched
 * directory's group prefix, else REL's, else NAME's. Unknown where the
 * root is (a bind mount of a group): false.
 */
static bool remote_entry(const svcfs_watch *w, const char *rel, const char *name)
{
	const char *p = w->d->prefix;

	if (!w->d->mount || !p)
		return false;
	return (*p ? p[0] : *rel ? rel[0] : name[0]) == REMOTE_MARK;
}

/* REL for fstatat() below the watched directory ("" is the directory itself). */
static const char *at_path(const char *rel)
{
	return *rel ? rel : ".";
}

/* Mount: 1 if directory REL is a service, 0 a group, -ENOENT gone. */
static int mount_classify(svcfs_watch *w, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/meta.json", rel) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if (fstatat(w->d->fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return S_ISREG(st.st_mode);
	if (errno != ENOENT && errno != ENOTDIR)
		return -errno;
	if (fstatat(w->d->fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -ENOENT;
}

/* Backing: is service NAME (in directory REL, last component STEM) there now? */
static bool backing_present(svcfs_watch *w, const char *rel, const char *stem)
{
	char buf[SVCFS_NAME_MAX + 1];
	const char *file;
	struct stat st;
	int dfd;
	bool present;

	dfd = openat(w->d->fd, at_path(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return false;
	present = svcfs_backing_socket(dfd, stem, buf, &file, &st) == 0 &&
	          !(fstatat(dfd, stem, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode));
	close(dfd);
	return present;
}

/* Backing: service STEM in directory REL may have changed (CHANGED: its files did). */
static int backing_evaluate(svcfs_watch *w, const char *rel, const char *stem, bool changed,
                            bool emit)
{
	char *name = svcfs_path_join(rel, stem);
	int r = 0;

	if (!name)
		return -ENOMEM;
	if (svcfs_name_path_check(name, false, NULL) < 0)
		goto out; /* not a name svcfs shows (a control character, say) */
	if (backing_present(w, rel, stem))
		r = saw_service(w, name, changed, emit);
	else
		r = lost(w, name, false);
out:
	free(name);
	return r;
}

static int scan(svcfs_watch *w, const char *rel, unsigned depth, bool emit, bool rescan);

/* A directory REL appeared (or is met by a scan). */
static int mount_dir_seen(svcfs_watch *w, const char *rel, unsigned depth, bool emit, bool rescan)
{
	int c = mount_classify(w, rel);

	if (c == -ENOENT)
		return 0;
	if (c < 0)
		return c;
	if (c == 1) {
		int r = watch_dir(w, rel, true, depth);
		if (r < 0 && r != -ENOENT)
			return r;
		return saw_service(w, rel, rescan, emit);
	}
	if (depth >= SVCFS_GROUP_DEPTH_MAX)
		return 0;
	return scan(w, rel, depth + 1, emit, rescan);
}

/* A file STEM... in directory REL of a backing tree, met by a scan. */
static int backing_file_seen(svcfs_watch *w, const char *rel, const char *file, bool emit,
                             bool rescan)
{
	char stem[SVCFS_NAME_MAX + 1];
	size_t stemlen;
	enum svcfs_suffix k = svcfs_name_split(file, &stemlen);

	if (k != SVCFS_SUFFIX_NONE && k != SVCFS_SUFFIX_SOCK)
		stemlen = strlen(file); /* a socket named NAME.json is a service of that name */
	memcpy(stem, file, stemlen);
	stem[stemlen] = '\0';
	return backing_evaluate(w, rel, stem, rescan, emit);
}

/*
 * Watch directory REL (DEPTH groups deep) and read it: every service in it
 * is seen (EMIT: report new ones; RESCAN: report survivors as changed).
 */
static int scan(svcfs_watch *w, const char *rel, unsigned depth, bool emit, bool rescan)
{
	struct dirent *de;
	DIR *dir;
	int dfd, r;

	r = watch_dir(w, rel, false, depth);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	dfd = openat(w->d->fd, at_path(rel), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	while (r == 0 && (errno = 0, de = readdir(dir))) {
		struct stat st;
		char *sub;

		if (svcfs_name_hidden(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile: its event follows */
		if (S_ISDIR(st.st_mode)) {
			if (remote_entry(w, rel, de->d_name))
				continue;
			sub = svcfs_path_join(rel, de->d_name);
			if (!sub) {
				r = -ENOMEM;
				break;
			}
			if (w->d->mount)
				r = mount_dir_seen(w, sub, depth, emit, rescan);
			else if (depth < SVCFS_GROUP_DEPTH_MAX)
				r = scan(w, sub, depth + 1, emit, rescan);
			free(sub);
		} else if (!w->d->mount) {
			r = backing_file_seen(w, rel, de->d_name, emit, rescan);
		}
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(dir);
	return r;
}

/* Read everything again and report the difference (after an overflow). */
static int rescan(svcfs_watch *w)
{
	struct known *k, *tmp;
	int r;

	w->gen++;
	r = scan(w, "", 0, true, true);
	if (r < 0)
		return r;
	HASH_ITER(hh, w->known, k, tmp)
	{
		if (k->gen != w->gen && (r = forget(w, k)) < 0)
			return r;
	}
	return 0;
}

/* ---- inotify events ---- */

static int on_mount_event(svcfs_watch *w, struct wdir *x, const struct inotify_event *ev)
{
	char *rel;
	int r = 0;

	if (x->service) {
		if (ev->mask & IN_MODIFY)
			return known_find(w, x->rel) ? saw_service(w, x->rel, true, true) : 0;
		return 0;
	}
	if (!ev->len || !(ev->mask & IN_ISDIR) || svcfs_name_hidden(ev->name) ||
	    remote_entry(w, x->rel, ev->name))
		return 0;
	rel = svcfs_path_join(x->rel, ev->name);
	if (!rel)
		return -ENOMEM;
	if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
		/*
		 * A directory gone before we could look may have been a service or
		 * a group (any group is, to a watch read late): nothing tells
		 * which, so nothing is reported, as for a socket gone from a
		 * backing directory. The watch reports what it saw.
		 */
		r = mount_dir_seen(w, rel, x->depth, true, false);
	} else if (ev->mask & (IN_DELETE | IN_MOVED_FROM)) {
		r = lost(w, rel, true);
	}
	free(rel);
	return r;
}

static int on_backing_event(svcfs_watch *w, struct wdir *x, const struct inotify_event *ev)
{
	char stem[SVCFS_NAME_MAX + 1];
	size_t stemlen;
	enum svcfs_suffix k;
	bool arrived = ev->mask & (IN_CREATE | IN_MOVED_TO);
	char *rel;
	int r = 0;

	if (!ev->len || svcfs_name_hidden(ev->name))
		return 0;
	if (ev->mask & IN_ISDIR) {
		rel = svcfs_path_join(x->rel, ev->name);
		if (!rel)
			return -ENOMEM;
		if (arrived && x->depth < SVCFS_GROUP_DEPTH_MAX)
			r = scan(w, rel, x->depth + 1, true, false);
		else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
			r = lost(w, rel, true);
		/* a service of the same name as the group: the group wins */
		if (r == 0)
			r = backing_evaluate(w, x->rel, ev->name, false, true);
		free(rel);
		return r;
	}
	k = svcfs_name_split(ev->name, &stemlen);
	memcpy(stem, ev->name, stemlen);
	stem[stemlen] = '\0';
	switch (k) {
	case SVCFS_SUFFIX_SOCK:
		/* a socket bound or replaced: appears, or changed (a new owner) */
		return backing_evaluate(w, x->rel, stem, arrived, true);
	case SVCFS_SUFFIX_NONE:
		return backing_evaluate(w, x->rel, stem, arrived, true);
	case SVCFS_SUFFIX_LOCK:
		return 0; /* opening it is not a change, and who holds it inotify cannot tell */
	default:
		/* NAME.json/.pid: a change once written (not when just created) */
		if (ev->mask & IN_CREATE)
			return 0;
		rel = svcfs_path_join(x->rel, stem);
		if (!rel)
			return -ENOMEM;
		if (known_find(w, rel))
			r = backing_evaluate(w, x->rel, stem, true, true);
		free(rel);
		/* and a socket named exactly like that file */
		if (r == 0)
			r = backing_evaluate(w, x->rel, ev->name, arrived, true);
		return r;
	}
}

static int on_event(svcfs_watch *w, const struct inotify_event *ev)
{
	struct wdir *x;

	if (ev->mask & IN_Q_OVERFLOW)
		return rescan(w);
	x = wdir_find(w, ev->wd);
	if (!x)
		return 0;
	if (ev->mask & IN_IGNORED) {
		wdir_free(w, x);
		return 0;
	}
	return w->d->mount ? on_mount_event(w, x, ev) : on_backing_event(w, x, ev);
}

/* Read what inotify has and turn it into events. */
static int pump(svcfs_watch *w)
{
	for (;;) {
		ssize_t n = read(w->ifd, w->buf, READ_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		for (char *p = w->buf; p < w->buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			int r = on_event(w, ev);
			if (r < 0)
				return r;
			p += sizeof(*ev) + ev->len;
		}
	}
}

/*
 * Make the eventfd readable exactly while events are queued. Its counter
 * only goes between 0 and 1, so neither the write nor the read can fail.
 */
static void sync_pending(svcfs_watch *w)
{
	bool queued = w->head < w->tail;
	uint64_t v = 1;

	if (queued != w->pending &&
	    (queued ? write(w->efd, &v, sizeof(v)) : read(w->efd, &v, sizeof(v))) == sizeof(v))
		w->pending = queued;
}

/* ---- API ---- */

int svcfs_watch_new(svcfs_dir *d, unsigned flags, svcfs_watch **ret_watch)
{
	struct epoll_event ev = {.events = EPOLLIN};
	svcfs_watch *w;
	int r;

	if (!d || !ret_watch || (flags & ~SVCFS_WATCH_EXISTING))
		return -EINVAL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->d = d;
	w->efd = w->epfd = -1;
	w->buf = malloc(READ_BUF);
	w->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (!w->buf || w->ifd < 0) {
		r = w->buf ? -errno : -ENOMEM;
		goto fail;
	}
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->efd < 0 || w->epfd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->ifd, &ev) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->efd, &ev) < 0) {
		r = -errno;
		goto fail;
	}
	r = scan(w, "", 0, flags & SVCFS_WATCH_EXISTING, false);
	if (r < 0)
		goto fail;
	sync_pending(w);
	*ret_watch = w;
	return 0;
fail:
	svcfs_watch_free(w);
	return r;
}

int svcfs_watch_fd(const svcfs_watch *w)
{
	return w ? w->epfd : -EINVAL;
}

int svcfs_watch_next(svcfs_watch *w, struct svcfs_event *ret_event)
{
	struct qevent e;
	struct known *k;
	int r;

	if (!w || !ret_event)
		return -EINVAL;
	free(w->cur);
	w->cur = NULL;
	if (w->head == w->tail) {
		w->head = w->tail = 0;
		r = pump(w);
		sync_pending(w);
		if (r < 0)
			return r;
		if (w->head == w->tail)
			return 0;
	}
	e = w->q[w->head++];
	if (e.type != SVCFS_EVENT_VANISHED && (k = known_find(w, e.name)))
		k->changed_pending = false;
	w->cur = e.name;
	ret_event->type = e.type;
	ret_event->name = e.name;
	sync_pending(w);
	return 1;
}

svcfs_watch *svcfs_watch_free(svcfs_watch *w)
{
	struct known *k, *ktmp;
	struct wdir *x, *xtmp;

	if (!w)
		return NULL;
	HASH_ITER(hh, w->known, k, ktmp)
	{
		HASH_DEL(w->known, k);
		free(k->name);
		free(k);
	}
	HASH_ITER(hh, w->dirs, x, xtmp)
	{
		wdir_free(w, x);
	}
	for (size_t i = w->head; i < w->tail; i++)
		free(w->q[i].name);
	free(w->q);
	free(w->cur);
	free(w->buf);
	if (w->ifd >= 0)
		close(w->ifd);
	if (w->efd >= 0)
		close(w->efd);
	if (w->epfd >= 0)
		close(w->epfd);
	free(w);
	return NULL;
}
