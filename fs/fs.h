/*
 * The FUSE front end: handlers (ops.c) and cache invalidation (notify.c)
 * over the view. Only this part of svcfs includes libfuse.
 */
#ifndef SVCFS_FS_H
#define SVCFS_FS_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "stats.h"
#include "view.h"

/* What `svcfsctl status` shows besides the counters; fixed once mounted. */
struct svcfs_status_info {
	const char *backing;     /* absolute */
	double probe_interval;   /* seconds */
	double poll;             /* seconds; 0: inotify */
	bool sock_diag;          /* false: connect probes */
	struct timespec started; /* CLOCK_REALTIME at mount */
	struct cluster *cluster; /* -o etcd: its state is shown too; else NULL */
	struct remote *remote;   /* -o etcd: other hosts' services, not counted as ours */
};

struct svcfs_fs {
	struct view *view;
	struct fuse_session *se;
	const char *mountpoint;          /* absolute: pokes go through it */
	pthread_t loop_thread;           /* runs fuse_session_loop_mt */
	atomic_bool stop_requested;      /* a termination signal ended the loop */
	bool poking;                     /* engine thread only */
	pid_t poker_pid;                 /* the poker process (notify.c), 0: none */
	int poker_fd;                    /* its socket, while poker_pid > 0 */
	atomic_bool mounted;             /* notify calls only once the kernel is connected */
	bool no_open, no_opendir;        /* set in init, read-only afterwards */
	struct svcfs_stats *stats;       /* the engine's counters (pokes counted here too) */
	struct svcfs_status_info status; /* set before mounting, read-only afterwards */
};

extern const struct fuse_lowlevel_ops svcfs_ops;

/* view_notify_fn: turn view events into pokes and kernel cache invalidations. */
void notify_events(void *ctx, const struct view_event *events, size_t n);
/*
 * Fork the poker, the process that makes the pokes without holding a FUSE
 * descriptor (notify.c): after the fork into the background, before the
 * engine thread starts, while the process has a single thread. 0 or -errno
 * (then the engine thread pokes itself). poker_pid and poker_fd belong to
 * the engine thread while it runs.
 */
int notify_poker_start(struct svcfs_fs *fs);
/* After the engine thread has ended: the poker reads EOF, exits and is reaped. */
void notify_poker_stop(struct svcfs_fs *fs);
/* Called on the engine thread when it starts: make the poker (or itself) the view's poker. */
void notify_start(void *ctx);
/* Called on the engine thread after a termination signal: end the FUSE loop. */
void notify_stop(void *ctx);

#endif /* SVCFS_FS_H */
