/*
 * The FUSE front end: handlers (ops.c) and cache invalidation (notify.c)
 * over the view. Only this part of svcfs includes libfuse.
 */
#ifndef SVCFS_FS_H
#define SVCFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "view.h"

struct svcfs_fs {
	struct view *view;
	struct fuse_session *se;
	atomic_bool mounted; /* notify calls only once the kernel is connected */
	bool no_open, no_opendir; /* set in init, read-only afterwards */
};

extern const struct fuse_lowlevel_ops svcfs_ops;

/* view_notify_fn: turn view events into kernel cache invalidations. */
void notify_events(void *ctx, const struct view_event *events, size_t n);

#endif /* SVCFS_FS_H */
