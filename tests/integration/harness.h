/*
 * harness — what every integration suite needs to test svcfs through a real
 * mount: a fresh BACKING and MOUNTPOINT per test, the daemon started and
 * stopped, services (processes holding Unix sockets bound in BACKING),
 * sidecar writers and bounded waits.
 *
 * Every test runs in its own process (Criterion). The fixture state is one
 * global, H. Teardown (h_teardown, the suites' .fini) stops the daemon
 * (SIGTERM; SIGKILL and a FUSE abort if that is not enough), kills every
 * process the harness started or was given (h_track), then every other
 * process the test left (its children, its session, anything naming the
 * test's directory), detaches every mount below the test's directory and
 * removes it; then it checks: a daemon that ignored SIGTERM, crashed or did
 * not exit 0, a process still running or a mount still there fails the
 * test, with what was found. An atexit() handler does the same (printing
 * instead) if .fini never runs; only the process that ran h_setup tears
 * down, never a forked child. Children carry PR_SET_PDEATHSIG (set again
 * after a change of credentials, which clears it) so that a test process
 * that dies outright takes them with it (the daemon gets SIGTERM and
 * unmounts).
 *
 * Processes are held by pidfds: a process that ended is never signalled by
 * its old pid, which the system may have given to another process (another
 * test's daemon, say) in the meantime.
 *
 * Waits poll every H_POLL_MS up to a bound and return whether the state was
 * reached: tests assert on the final state, never on how long it took.
 * Assertions with side effects are avoided: call, store, then assert.
 */
#ifndef SVCFS_TEST_HARNESS_H
#define SVCFS_TEST_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#define H_TIMEOUT_MS   5000 /* default bound of every wait */
#define H_POLL_MS      2
#define H_MAX_CHILDREN 64

struct harness {
	char root[PATH_MAX];    /* mkdtemp: everything below is removed at teardown */
	char backing[PATH_MAX]; /* root/b (real path) */
	char mnt[PATH_MAX];     /* root/m (real path) */
	char errlog[PATH_MAX];  /* the daemon's stderr */
	pid_t daemon;           /* 0: not running (or reaped) */
	int daemon_status;      /* wait status once reaped */
	bool daemon_reaped;
	pid_t children[H_MAX_CHILDREN]; /* services; 0: free slot */
	bool ready;                     /* h_setup completed */
	pid_t owner;                    /* the test process (ran h_setup): only it tears down */
	int daemon_fd;                  /* pidfd of daemon, -1 */
	int child_fds[H_MAX_CHILDREN];  /* pidfds of children[], -1 */
};

extern struct harness H;

/* ---- fixture ---- */

/* Skip (cr_skip_test) unless root with a usable /dev/fuse. Call before anything else. */
void h_require_fuse(void);
/* Temp dirs only (no daemon). Skips when FUSE is not usable. */
void h_setup(void);
/* h_setup, then mount with default options. For .init. */
void h_setup_mounted(void);
/*
 * Stop everything and remove the temp dirs, then fail the test if anything
 * was left behind or did not stop cleanly (see above). Idempotent. For .fini.
 */
void h_teardown(void);

/*
 * Start the daemon: svcfs -f [-o OPTS] BACKING MNT, stderr to H.errlog, and
 * wait until the mount is live. OPTS may be NULL. BACKING_ARG (NULL:
 * H.backing) is the BACKING argument as given on the command line.
 * Fails the test if the daemon exits or the mount does not appear.
 */
void h_mount_opts(const char *opts, const char *backing_arg);
void h_mount(void);
/*
 * Start another daemon beside H's (a second host, say): svcfs -f [-o OPTS]
 * BACKING MNT, started as H's is (stdout and stderr appended to ERRLOG, it
 * gets SIGTERM when the test process dies) and tracked (h_track). Returns
 * its pid at once, without waiting for the mount; the caller reaps it.
 * Fails the test on error.
 */
pid_t h_daemon_start(const char *opts, const char *backing, const char *mnt, const char *errlog);
/*
 * SIGTERM the daemon and wait (bounded). Returns its wait status, -1 on
 * timeout (then it was SIGKILLed and its FUSE connection aborted).
 */
int h_daemon_stop(void);
/* Fail the test (with the daemon's stderr) if the daemon is no longer running. */
void h_assert_daemon_alive(void);

/* Descriptors process PID holds (entries of /proc/PID/fd), -1 if unreadable. */
int h_fd_count(pid_t pid);

/* True if MNT is a mountpoint of type fuse.svcfs; its source into RET_SOURCE (may be NULL). */
bool h_mounted(const char *mnt, char *ret_source, size_t size);

/*
 * Run the daemon with ARGV (argv[0] is replaced by the binary) and wait up to
 * TIMEOUT_MS for it to exit; a daemon still running then is killed and
 * the mounts it left below the test's directory detached. Returns the wait
 * status (-1: it had to be killed); *RET_ERR (may be NULL) receives its
 * stderr (free it).
 */
int h_run_daemon(const char *const argv[], int timeout_ms, char **ret_err);
/* The same with the credentials UID/GID (uid 0: as root). */
int h_run_daemon_as(uid_t uid, gid_t gid, const char *const argv[], int timeout_ms, char **ret_err);
/*
 * Kill PID (SIGKILL) at teardown if it still runs: for processes that are
 * not our children, or that the harness did not start. PID is held by a
 * pidfd from this call on: call it as soon as PID is known.
 */
void h_track(pid_t pid);

/* ---- paths (ring of static buffers: valid for the next 32 calls) ---- */

/* BACKING/... and MNT/... formatted. */
const char *h_b(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *h_m(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* ROOT/... (the test's temp dir, outside BACKING). */
const char *h_r(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- services ---- */

struct h_service_opts {
	int type;             /* SOCK_STREAM (0 means stream), SOCK_SEQPACKET, SOCK_DGRAM */
	bool no_listen;       /* bind only: never listen */
	int backlog;          /* 0: 64 */
	const char *greeting; /* stream/seqpacket: accept forever, send this, close */
	mode_t mode;          /* chmod the socket file after bind (0: leave it) */
	bool set_owner;       /* chown the socket to uid:gid, then become uid:gid */
	uid_t uid;
	gid_t gid;
	bool listen_on_usr1; /* bind, then listen only when sent SIGUSR1 */
};

/*
 * Fork a service bound at PATH (absolute, or relative to BACKING; any
 * length: long paths are bound through a short relative name). Returns
 * once it is bound and (unless no_listen) listening. Fails the test on error.
 */
pid_t h_service_start(const char *path, const struct h_service_opts *opts);
/* A stream service at PATH that greets every client with "hello\n". */
pid_t h_service(const char *path);
/* N listening stream sockets DIR/PREFIX%04u.sock (DIR relative to BACKING) in one process. */
pid_t h_services_many(const char *dir, const char *prefix, unsigned n);
/* SIGKILL a child (or a tracked process) and reap it. */
void h_kill(pid_t pid);
/*
 * Fork a helper running FN(ARG), then _exit(0); killed at teardown if still
 * running. FN must not use cr_assert: a failed assertion in a child returns
 * into Criterion in the child (report with the exit status instead).
 */
pid_t h_spawn(void (*fn)(void *arg), void *arg);
/* Wait up to MS for a child of h_spawn; its wait status, or -1 (then it is killed). */
int h_join(pid_t pid, int ms);

/* Connect to the socket at PATH (any length), read until EOF or SIZE-1 bytes. 0 or -errno. */
int h_connect_read(const char *path, int type, char *buf, size_t size);

/* ---- files ---- */

/* Write PATH atomically: a hidden temp file beside it, then rename. */
void h_write_atomic(const char *path, const char *content);
/* Same, the temp file chowned to UID:GID before the rename. */
void h_write_atomic_owned(const char *path, const char *content, uid_t uid, gid_t gid);
/* Write PATH in place (O_TRUNC, then write). */
void h_write_inplace(const char *path, const char *content);
/* Whole file into a new string, or NULL with errno set. */
char *h_slurp(const char *path);
/* Number of lines of FILE containing NEEDLE. */
int h_count_lines(const char *file, const char *needle);
/* The daemon's stderr so far (free it). */
char *h_daemon_stderr(void);
/* Parse the JSON file at PATH; NULL if unreadable or invalid. */
json_object *h_json_file(const char *path);
/* Names in directory PATH but "." and "..", sorted, NULL-terminated (h_strv_free). -1 on error. */
int h_list(const char *path, char ***ret_names);
void h_strv_free(char **v);
bool h_strv_contains(char *const *v, const char *s);

/* ---- waits (true when reached within the bound) ---- */

bool h_wait_exists(const char *path);
bool h_wait_gone(const char *path);
/* PATH reads exactly WANT. */
bool h_wait_content(const char *path, const char *want);
/* The same with another bound, for changes only a periodic check can see. */
bool h_wait_until_content_ms(const char *path, const char *want, int timeout_ms);
bool h_wait_until_gone_ms(const char *path, int timeout_ms);
/* NAME is (PRESENT) or is not in the readdir listing of DIR. */
bool h_wait_listed(const char *dir, const char *name, bool present);
/* Directory PATH lists exactly N entries (besides "." and ".."). */
bool h_wait_count(const char *path, size_t n, int timeout_ms);
/* Some line of the daemon's stderr contains NEEDLE. */
bool h_wait_log(const char *needle);
/* Generic: poll FN(CTX) until true or TIMEOUT_MS. */
bool h_wait_until(bool (*fn)(void *ctx), void *ctx, int timeout_ms);
/* Sleep MS milliseconds (for "it does not appear" checks only). */
void h_sleep_ms(int ms);
/* CLOCK_MONOTONIC in milliseconds, for the bounds of a test's own waits. */
long long h_now_ms(void);

/* ---- as another user ---- */

/*
 * Run FN(ARG) in a child with credentials UID/GID (supplementary groups:
 * SUPP, may be 0 for none). Returns FN's result (an errno value or 0),
 * or -1 if the child failed otherwise.
 */
int h_as_user(uid_t uid, gid_t gid, gid_t supp, int (*fn)(const void *arg), const void *arg);

#endif /* SVCFS_TEST_HARNESS_H */
