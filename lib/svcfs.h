/*
 * libsvcfs — register local services and find them, the svcfs way.
 *
 * A service is a Unix socket NAME.sock in a backing directory (groups are
 * subdirectories), with an optional JSON sidecar NAME.json and a lock file
 * NAME.lock held while it runs. The svcfs daemon mounts a view of that
 * directory in which only live services exist (svcfs(8), SPEC §2-§5).
 *
 * Services call svcfs_register(): it takes the name with the lock-file
 * pattern, replaces a dead predecessor's socket, binds, sets the socket's
 * mode, writes the sidecar atomically and listens.
 *
 * Clients open a directory with svcfs_open() — the svcfs mount (full
 * liveness: only live services are listed) or, degraded, a backing
 * directory (every socket file is listed, alive or not) — then list, look
 * up, connect by name, wait for a name, or watch for changes.
 *
 * libsvcfs sees this host's services, the ones it can connect to. Other
 * hosts' (svcfs -o etcd, SPEC §8) are on the mount as MOUNT/@HOST/[GROUP/]NAME
 * (no socket) and in MOUNT/.services.json as elements with a "host" member:
 * read them there; the client calls below skip them.
 *
 * Conventions: functions return 0 (or a non-negative value they document)
 * on success and a negative errno on failure; out-parameters named ret_* are
 * written only on success. Every file descriptor the library creates is
 * close-on-exec. The library never prints, never exits and never installs
 * signal handlers. Objects are not shared between threads without the
 * caller's locking; distinct objects may be used from distinct threads.
 *
 * Names: a service is named by its path below the directory without the
 * ".sock" suffix: "web", or "workers/w1" for service w1 in group workers.
 * Each component is 1-255 bytes, contains no '/' or NUL, does not start
 * with '.'; at most 8 groups deep. svcfs_register() also refuses control
 * characters; the client calls take any name svcfs shows (a socket file
 * may be called "a\nb"). Bad names give -EINVAL.
 *
 * Metadata is a json-c object (link with json-c; pkg-config svcfs does).
 */
#ifndef SVCFS_H
#define SVCFS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
const char *svcfs_version(void);

/* ---- default directories (SPEC §7) ---- */

/*
 * The backing directory services register in: $SVCFS_DIR if set and not
 * empty; else /run/svcfs for root; else $XDG_RUNTIME_DIR/svcfs when
 * XDG_RUNTIME_DIR is set; else /tmp/svcfs-UID, which is created (mode 0700)
 * when missing and refused (-EPERM) when it is not a directory owned by the
 * caller with no access for others. Only that last one is created here.
 * *ret_path is a new string (free it).
 */
int svcfs_default_dir(char **ret_path);

/*
 * The svcfs mount clients read: $SVCFS_MOUNT if set and not empty; else
 * /run/services for root; else $XDG_RUNTIME_DIR/services; else -ENOENT.
 * Nothing is checked or created. *ret_path is a new string (free it).
 */
int svcfs_default_mount(char **ret_path);

/* ---- services: register, update, unregister ---- */

typedef struct svcfs_service svcfs_service;

/* svcfs_register_opts.flags */
#define SVCFS_REGISTER_NONBLOCK 0x1u /* the socket fd is O_NONBLOCK */
#define SVCFS_REGISTER_ANY_MODE 0x2u /* allow world-writable modes (0666, 0777) */
#define SVCFS_REGISTER_NO_LISTEN                                                                   \
	0x4u /* stream/seqpacket: bind only; call svcfs_service_listen()                           \
	      */

/* All fields may be left zero for the default. */
struct svcfs_register_opts {
	const char *dir; /* backing directory; NULL: svcfs_default_dir(), created if missing */
	int type;        /* SOCK_STREAM (0 means stream), SOCK_SEQPACKET or SOCK_DGRAM */
	unsigned mode;   /* socket mode, 0: 0600; 0660 shares with the group */
	int backlog;     /* listen(2) backlog, 0: SOMAXCONN */
	const json_object *meta; /* sidecar object (not consumed), NULL: no sidecar */
	unsigned flags;          /* SVCFS_REGISTER_* */
};

/*
 * Register service NAME (may name a group, "workers/w1"; missing group
 * directories are created with mode 0755) in OPTS->dir (OPTS may be NULL):
 *   1. open NAME.lock (created 0600) and take flock(LOCK_EX|LOCK_NB) on it,
 *      making sure the locked file is still the one at that name;
 *   2. remove a dead predecessor's NAME.sock — only a socket file nobody
 *      listens on, and only under the lock;
 *   3. write the sidecar NAME.json atomically when OPTS->meta is given, or
 *      remove a stale one — before the socket exists, so the service
 *      appears with its metadata;
 *   4. create the socket, bind it to NAME.sock with OPTS->mode (never more
 *      permissive, not even for an instant: the umask cannot widen it),
 *      and listen.
 * The socket's path may be longer than sun_path allows.
 * Errors: -EADDRINUSE another process holds NAME (its lock, or a live
 * socket without one), -EEXIST NAME.sock exists and is not a socket,
 * -EINVAL bad name or options, -ENOENT OPTS->dir missing, -ENAMETOOLONG,
 * or the -errno of a failed system call. On failure nothing is left but
 * created group directories and NAME.lock.
 */
int svcfs_register(const char *name, const struct svcfs_register_opts *opts,
                   svcfs_service **ret_service);

/* The service's socket: accept(2) on it (recv for dgram). Owned by S. */
int svcfs_service_fd(const svcfs_service *s);
/* The absolute path of the socket file. Owned by S. */
const char *svcfs_service_path(const svcfs_service *s);
/*
 * NAME.lock, open and locked: the name is the service's while any process
 * holds this open file. Close-on-exec like every fd of the library; a
 * program that execs its server with the socket (svcfsctl register) clears
 * FD_CLOEXEC on it too, so the server holds the name. Owned by S.
 */
int svcfs_service_lock_fd(const svcfs_service *s);
/* listen(2) after SVCFS_REGISTER_NO_LISTEN: the service appears now. */
int svcfs_service_listen(svcfs_service *s);

/*
 * Replace the sidecar with META atomically (a temp file renamed over
 * NAME.json: readers see the old or the new object, never a mix); NULL
 * removes it. META must serialise to at most 64 KiB.
 */
int svcfs_service_set_meta(svcfs_service *s, const json_object *meta);

/*
 * Unregister: remove NAME.sock and NAME.json, close the socket, release the
 * lock (NAME.lock stays: deleting a lock file races the next holder), free
 * S. NULL-safe; returns NULL. A process that dies instead leaves a lock
 * nobody holds: svcfs sees the service gone at once and the next
 * svcfs_register() of NAME takes over.
 */
svcfs_service *svcfs_unregister(svcfs_service *s);

/* ---- clients: a directory of services ---- */

typedef struct svcfs_dir svcfs_dir;
typedef struct svcfs_info svcfs_info;

/*
 * Open PATH (NULL: svcfs_default_mount()) for discovery. An svcfs mount is
 * used with full liveness; any other directory is read as a backing
 * directory: every socket file is a service, alive or not (state
 * "unknown"), metadata from sidecars. Errors: -ENOENT, -ENOTDIR, -EACCES...
 */
int svcfs_open(const char *path, svcfs_dir **ret_dir);
/* NULL-safe; returns NULL. Watches opened on D must be freed first. */
svcfs_dir *svcfs_close(svcfs_dir *d);
/* True for an svcfs mount, false for a backing directory. */
bool svcfs_dir_is_mount(const svcfs_dir *d);
/* The path D was opened with (absolute). Owned by D. */
const char *svcfs_dir_path(const svcfs_dir *d);
/*
 * The daemon's own state (an svcfs mount only: -ENOTSUP otherwise), a new
 * json-c object: version, pid, backing, mountpoint, started, uptime,
 * services (live now), watch ("inotify"|"poll"), liveness
 * ("sock_diag"|"connect"), probe_interval, kept, counters since it started
 * (appeared, vanished, events, dumps, queries, connects, health_checks,
 * owner_exits, rescans) and, with several hosts (-o etcd), an "etcd"
 * object (host, endpoints, lease, ttl, publishing, published, mirror,
 * remote_services, revision...). Read from the mount root's
 * user.svcfs.status.
 */
int svcfs_dir_status(svcfs_dir *d, json_object **ret_status);

/*
 * Look NAME up: -ENOENT when it is not there (on a mount: not alive, or
 * another host's: a name below "@HOST/"). *ret_info is a new object
 * (svcfs_info_free).
 */
int svcfs_lookup(svcfs_dir *d, const char *name, svcfs_info **ret_info);

/*
 * Every service, groups included, sorted by name. On a mount this is one
 * consistent snapshot of this host's services: the elements of
 * .services.json with a "host" (another host's) and top-level groups named
 * "@..." are left out. *ret_list is a new array of *ret_count objects
 * (svcfs_list_free).
 */
int svcfs_list(svcfs_dir *d, svcfs_info ***ret_list, size_t *ret_count);
void svcfs_list_free(svcfs_info **list, size_t count);

/* Accessors; strings are owned by INFO and never NULL unless stated. */
const char *svcfs_info_name(const svcfs_info *info);   /* "workers/w1" */
const char *svcfs_info_socket(const svcfs_info *info); /* the socket's path (in BACKING) */
const char *svcfs_info_state(const svcfs_info *info); /* alive|busy|unhealthy|activatable|unknown */
pid_t svcfs_info_pid(const svcfs_info *info);         /* 0 when not known */
uid_t svcfs_info_uid(const svcfs_info *info);         /* (uid_t)-1 when not known */
gid_t svcfs_info_gid(const svcfs_info *info);         /* (gid_t)-1 when not known */
const char *svcfs_info_since(const svcfs_info *info); /* RFC 3339 UTC, "" when not known */
/*
 * The service's metadata: its sidecar object (plus a "port" from a -portN
 * token), without the keys that have accessors above (socket, pid, uid,
 * gid, state, since). Borrowed: valid while INFO is; an object, maybe empty.
 */
json_object *svcfs_info_meta(const svcfs_info *info);
svcfs_info *svcfs_info_free(svcfs_info *info); /* NULL-safe; returns NULL */

/* svcfs_connect() flags */
#define SVCFS_CONNECT_WAIT     0x1u /* wait (within the timeout) for NAME to appear */
#define SVCFS_CONNECT_NONBLOCK 0x2u /* the returned socket is O_NONBLOCK */

/*
 * Connect to service NAME within TIMEOUT_MS (< 0: no limit) and return the
 * connected socket (close it). The socket type (stream, seqpacket, dgram)
 * is found by trying. A service whose accept queue stays full until the
 * deadline gives -ETIMEDOUT; a name that is not there -ENOENT (unless
 * SVCFS_CONNECT_WAIT); a socket nobody listens on -ECONNREFUSED.
 */
int svcfs_connect(svcfs_dir *d, const char *name, int timeout_ms, unsigned flags);

/*
 * Wait until NAME is there (on a mount: alive), at most TIMEOUT_MS (< 0:
 * no limit; 0: just check). Returns 0, or -ETIMEDOUT. Uses inotify, not
 * polling. *ret_info (RET_INFO may be NULL) as from svcfs_lookup().
 */
int svcfs_wait(svcfs_dir *d, const char *name, int timeout_ms, svcfs_info **ret_info);

/* ---- clients: watching ---- */

typedef struct svcfs_watch svcfs_watch;

enum svcfs_event_type {
	SVCFS_EVENT_APPEARED = 1, /* NAME is there now (alive, on a mount) */
	SVCFS_EVENT_VANISHED = 2, /* NAME is gone */
	SVCFS_EVENT_CHANGED = 3,  /* NAME's metadata, state or owner changed: look it up again */
};

struct svcfs_event {
	enum svcfs_event_type type;
	const char *name; /* valid until the next svcfs_watch_next() or svcfs_watch_free() */
};

/* svcfs_watch_new() flags */
#define SVCFS_WATCH_EXISTING 0x1u /* first report every service present now as APPEARED */

/*
 * Watch D for services appearing, vanishing and changing. Events come in
 * the order they happened, per name always APPEARED (CHANGED...) VANISHED.
 * When the kernel's event queue overflows, the directory is read again and
 * the difference reported, so nothing is lost (a CHANGED may then be
 * reported for a service that did not change). On a mount, the top-level
 * directories named "@..." (other hosts', MOUNT/@HOST) are not watched:
 * their services are never reported.
 */
int svcfs_watch_new(svcfs_dir *d, unsigned flags, svcfs_watch **ret_watch);
/* An fd to poll(2)/epoll for POLLIN; then call svcfs_watch_next() until it returns 0. */
int svcfs_watch_fd(const svcfs_watch *w);
/*
 * Take the next event without blocking: 1 with *ret_event filled, 0 when
 * none is pending, or -errno.
 */
int svcfs_watch_next(svcfs_watch *w, struct svcfs_event *ret_event);
svcfs_watch *svcfs_watch_free(svcfs_watch *w); /* NULL-safe; returns NULL */

#ifdef __cplusplus
}
#endif
#endif /* SVCFS_H */
