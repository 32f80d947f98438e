/*
 * notify — view events to kernel cache invalidations.
 *
 * Runs on the engine thread, after the view lock is released (view_flush),
 * never inside a handler: an invalidation may wait for the kernel's inode
 * lock, which a handler in progress may hold while it waits for the view.
 *
 *   ADDED        the parent's listing and attributes (readdir cache, mtime)
 *   REMOVED      the entry itself (notify_delete) and the parent's listing
 *   MODIFIED     the inode's attributes and page cache
 *   DIR_CHANGED  the directory's listing and attributes
 *
 * A batch often touches one directory many times; each inode is
 * invalidated once per batch. -ENOENT (nothing cached) is the common,
 * harmless answer.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "log.h"

struct seen {
	uint64_t *inos;
	size_t n, cap;
};

/* True the first time INO is offered in this batch. */
static bool first_time(struct seen *s, uint64_t ino)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->inos[i] == ino)
			return false;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		uint64_t *p = realloc(s->inos, cap * sizeof(*p));
		if (!p)
			return true; /* invalidating twice is only slower */
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

void notify_events(void *ctx, const struct view_event *events, size_t n)
{
	struct svcfs_fs *fs = ctx;
	struct seen seen = {0};

	if (!atomic_load(&fs->mounted))
		return; /* nothing can be cached before the mount */
	/* A batch may be large (a rescan): the linear "seen" set stays small per directory. */
	for (size_t i = 0; i < n; i++) {
		const struct view_event *ev = &events[i];
		switch (ev->kind) {
		case VIEW_EV_ADDED:
			inval_inode(fs->se, &seen, ev->parent);
			break;
		case VIEW_EV_REMOVED:
			check(fuse_lowlevel_notify_delete(fs->se, ev->parent, ev->ino, ev->name,
							  strlen(ev->name)),
			      "notify_delete", ev->ino);
			inval_inode(fs->se, &seen, ev->parent);
			break;
		case VIEW_EV_MODIFIED:
		case VIEW_EV_DIR_CHANGED:
			inval_inode(fs->se, &seen, ev->ino);
			break;
		}
		if (seen.n > 4096)
			seen.n = 0; /* bound the linear search on huge batches */
	}
	free(seen.inos);
}
