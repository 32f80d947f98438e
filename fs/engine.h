/*
 * engine — follows BACKING and keeps the view equal to the set of live
 * services. table.c keeps the records (backing directories and socket
 * files, record.h) in step with the files; liveness.c decides whether each
 * is alive; watch.c runs the engine thread (epoll over inotify, timers,
 * owner pidfds, health probes, signals) and feeds events to both.
 *
 * Everything here belongs to the engine thread, except engine_start,
 * engine_request_stop, engine_stopped and engine_stop.
 */
#ifndef SVCFS_ENGINE_H
#define SVCFS_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "locks.h"
#include "options.h"
#include "owner.h"
#include "probe.h"
#include "stats.h"
#include "view.h"

/* What an epoll event's data.ptr points at (beyond the fixed tags). */
enum evsrc_kind { SRC_OWNER = 1, SRC_HEALTH };
struct evsrc {
	enum evsrc_kind kind;
};

struct tdir;
struct tsvc;
struct pwatch;
struct cluster;
struct remote;

struct engine {
	struct svcfs_options opt;
	char *backing; /* absolute path of BACKING */
	struct view *view;
	struct probe *probe;
	struct tdir *root;  /* NULL while BACKING is gone */
	struct tdir *by_wd; /* watched directories by inotify watch */
	int inotify_fd;     /* -1 in poll mode */
	int epoll_fd, interval_fd, retry_fd, poll_fd, stop_fd, wake_fd;
	bool unwatched;     /* some directory has no inotify watch: rescan each interval */
	bool fd_short;      /* a call met EMFILE/ENFILE: rescan each interval until one does not */
	bool fd_short_seen; /* ... met again during the rescan in hand */
	unsigned fd_errors; /* EMFILE/ENFILE met so far (only grows) */
	bool dump_fresh;    /* the probe's table is from this batch */
	struct tsvc *retry_head; /* services waiting for a quick re-check */
	struct pwatch *pwatches; /* owner processes watched by pidfd, by pid */
	struct pwatch *pw_dead;  /* released watches, freed after each epoll batch */
	struct hprobe *hp_live;  /* health probes in flight */
	struct hprobe *hp_dead;  /* finished ones, freed after each epoll batch */
	size_t hp_count;
	uint64_t health_round;  /* intervals counted, for health probes in turn */
	struct locks locks;     /* held locks, from /proc/locks */
	bool locks_fresh;       /* read in this batch */
	struct holders holders; /* who holds which socket, from /proc */
	bool holders_fresh;     /* walked in this batch */
	bool holders_rewalked;  /* ... and walked again for a socket it lacked */
	size_t nvisible;
	bool max_logged;
	bool quiet; /* initial scan: one summary line instead of one per service */
	pthread_t thread;
	bool running;
	atomic_bool done;            /* set by the thread as it leaves its loop */
	void (*on_start)(void *ctx); /* run first on the engine thread */
	void *on_start_ctx;
	void (*on_stop)(void *ctx); /* run on the engine thread after SIGTERM/INT/HUP */
	void *on_stop_ctx;
	int signal_fd;
	struct cluster *cluster; /* several hosts (-o etcd): publisher and mirror, else NULL */
	struct remote *remote;   /* other hosts' services in the view */
	bool at_names_logged;    /* a local '@NAME' at the top was not shown (-o etcd) */
	struct svcfs_stats stats; /* see stats.h */
};

/* Open BACKING, scan it and fill the view. Errors are logged. */
int engine_init(struct engine *e, const char *backing, const struct svcfs_options *opt,
                struct view *view);
/* Start following changes in a thread (after any fork). */
int engine_start(struct engine *e);
/* Ask the thread to stop; it finishes the poke or batch in hand first. */
void engine_request_stop(struct engine *e);
/* True once the thread has left its loop (it no longer needs the mount served). */
bool engine_stopped(struct engine *e);
/* Stop the thread (waiting for it) and free everything but the view. */
void engine_stop(struct engine *e);

/* ---- table.c and liveness.c, for watch.c ---- */
int table_open_root(struct engine *e);
void table_close_root(struct engine *e);
/* BACKING (held open) has been removed: its link count is 0. */
bool table_root_deleted(struct engine *e);
void table_rescan(struct engine *e);
void table_dir_event(struct engine *e, struct tdir *d, uint32_t mask, const char *name);
void table_check_all(struct engine *e);
void table_run_retries(struct engine *e);
/* Earliest pending retry, or {0,0}. */
struct timespec table_next_retry(struct engine *e);
struct tdir *table_dir_by_wd(struct engine *e, int wd);
bool table_dir_is_root(struct engine *e, struct tdir *d);
/* The directory's own owner or mode changed. */
void table_dir_attr_changed(struct engine *e, struct tdir *d);
void table_free(struct engine *e);
/* An owner's pidfd became readable. */
void table_owner_exited(struct engine *e, struct pwatch *pw);
/* A health probe's socket became readable. */
void table_health_ready(struct engine *e, struct hprobe *hp);
/* Free the watches released during this epoll batch. */
void table_free_dead_watches(struct engine *e);
/* Free the health probes finished during this epoll batch. */
void table_free_dead_probes(struct engine *e);

#endif /* SVCFS_ENGINE_H */
