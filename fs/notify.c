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
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
 * Pokes go through the mountpoint's path each time: a descriptor held on
 * the mount would make a user's umount fail with EBUSY.
 */
void notify_start(void *ctx)
{
	struct svcfs_fs *fs = ctx;

	view_set_poker(fs->view, gettid(), geteuid());
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
	int r;

	if (!mount_path(fs, ino, path, sizeof(path), NULL))
		return false;
	r = add ? mkdir(path, 0555) : rmdir(path);
	if (r < 0) {
		log_debug("%s poke of %s: %s", add ? "mkdir" : "rmdir", path, strerror(errno));
		return false;
	}
	if (fs->stats)
		STATS_INC(fs->stats, events);
	return true;
}

/* truncate INO to its own size through the mount: IN_MODIFY, nothing written. */
static void poke_modify(struct svcfs_fs *fs, uint64_t ino)
{
	char path[PATH_MAX];
	uint64_t size;

	if (!mount_path(fs, ino, path, sizeof(path), &size))
		return;
	if (truncate(path, (off_t)size) < 0)
		log_debug("truncate poke of %s: %s", path, strerror(errno));
	else if (fs->stats)
		STATS_INC(fs->stats, events);
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
			poke_modify(fs, ev->ino);
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

	if (!atomic_load(&fs->mounted))
		return; /* nothing can be cached before the mount */
	for (size_t i = 0; i < n && atomic_load(&fs->mounted); i++)
		if (!is_aggregate_change(&events[i]))
			handle(fs, &events[i], &invalidated, &truncated);
	invalidated.n = 0; /* what was invalidated so far came before the pokes */
	/* both aggregates replaced before either is poked: woken by one, read both */
	for (size_t i = 0; i < n && atomic_load(&fs->mounted); i++)
		if (is_aggregate_change(&events[i]))
			replace_aggregate(fs, &events[i]);
	for (size_t i = 0; i < n && atomic_load(&fs->mounted); i++)
		if (is_aggregate_change(&events[i]))
			handle(fs, &events[i], &invalidated, &truncated);
	free(invalidated.inos);
	free(truncated.inos);
}
