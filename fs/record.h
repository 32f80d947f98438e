/*
 * record — the engine's records of BACKING, shared by table.c (which keeps
 * them in step with the files) and liveness.c (which decides, from what
 * the kernel says, whether each one is alive). Engine thread only.
 */
#ifndef SVCFS_RECORD_H
#define SVCFS_RECORD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include "engine.h"
#include "hash.h"
#include "health.h"

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
	bool has_links; /* holds symlinks: read again every interval (see check_dir) */
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
	bool dead;         /* released: freed after the current epoll batch */
	struct pwatch *next_dead;
	UT_hash_handle hh; /* engine->pwatches, by pid */
};

/* A health check in flight (SPEC §3.3). */
struct hprobe {
	struct evsrc src; /* SRC_HEALTH: first, for the epoll dispatch */
	struct health h;
	struct tsvc *s;      /* NULL once the service is gone */
	struct hprobe *next; /* engine->hp_live or engine->hp_dead */
};

struct tsvc {
	struct tdir *dir;
	char *name;
	char *file; /* NAME.sock or NAME */
	dev_t dev;  /* the socket file (symlinks followed) */
	ino_t ino;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	bool via_link;     /* FILE is a symlink: its target can change unseen */
	uint32_t sock_ino; /* the kernel's socket inode, 0 unknown */
	int type;          /* SOCK_*, 0 unknown */
	bool alive, busy;
	bool dirty; /* what the view shows is out of date */
	time_t since;
	struct timespec lost_at; /* connect-probe mode: first refusal */
	pid_t pid;               /* owner of the listening socket, 0 unknown */
	uid_t ouid;
	gid_t ogid;
	bool owner_done;
	unsigned owner_tries;           /* connects that met a full queue */
	struct timespec created;        /* the socket file's mtime: when it was bound */
	struct pwatch *pw;              /* watch on the owner, NULL if none */
	struct tsvc *pw_next, *pw_prev; /* in pw->svcs */
	bool has_lock;                  /* NAME.lock exists (and is trusted) */
	dev_t lock_dev;
	ino_t lock_ino;
	bool lock_untrusted_logged;
	char *health_path;     /* sidecar health_check, NULL if none */
	struct hprobe *hp;     /* health probe in flight */
	uint64_t health_round; /* the interval its last probe started in (round-robin) */
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

static inline struct timespec mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static inline struct timespec ts_add_ns(struct timespec t, long long ns)
{
	t.tv_sec += ns / 1000000000ll;
	t.tv_nsec += ns % 1000000000ll;
	if (t.tv_nsec >= 1000000000l) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000l;
	}
	return t;
}

static inline bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/* "group/name" or "name" for log lines, control characters made harmless. */
const char *display(const struct tsvc *s, char *buf, size_t size);

/*
 * ERR (an errno, either sign) is EMFILE or ENFILE: note the shortage (one
 * log line per episode) and return true. Whatever needed the descriptor is
 * left to the rescans the shortage triggers each interval; the first rescan
 * that meets none ends the episode.
 */
bool engine_fd_error(struct engine *e, int err);

/* table.c: showing and forgetting */
void svc_publish(struct engine *e, struct tsvc *s);
void svc_vanish(struct engine *e, struct tsvc *s, const char *why);
void svc_free(struct engine *e, struct tsvc *s, const char *why);
void svc_evaluate(struct engine *e, struct tdir *d, const char *name);
/* Read directory D (and its groups) again, checking every service in it. */
void table_scan_dir(struct engine *e, struct tdir *d);

/* liveness.c: the state machine */
void svc_check(struct engine *e, struct tsvc *s);
void svc_health_start(struct engine *e, struct tsvc *s);
void svc_forget_liveness(struct engine *e, struct tsvc *s);
void retry_cancel(struct engine *e, struct tsvc *s);

#endif /* SVCFS_RECORD_H */
