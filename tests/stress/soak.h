/*
 * soak — what the soak's processes share: one anonymous MAP_SHARED region
 * (mapped before the first fork, so every child has it at the same
 * address), the names, and the roles' entry points.
 *
 * Who writes what (every field is written by exactly one process):
 *   - slot[i] of a name: the worker that owns the name (i % workers). Its
 *     seq is odd while the worker is changing the name (registering,
 *     killing, unregistering) and even when the name is settled: state
 *     says alive or dead since since_ns (CLOCK_MONOTONIC, comparable
 *     across processes), how says by what. The checker reads seq before
 *     and after a listing: equal and even means the name was settled the
 *     whole time, so the listing must agree with it (past the bounds).
 *   - gen[i]: the sidecar generation last written and acknowledged by the
 *     holder (written by the owning worker).
 *   - the command (cmd_epoch, cmd_phase): the test process; ack[p]: child
 *     process p, once it has done what the phase asks.
 *   - snap_req: the test process; snap_ack[w] and snap_set[w]: watcher w,
 *     its reconstructed set of live names after draining its queue.
 *   - figs[p]: child process p (its counters and its first failures).
 *   - holder_pid[w]: worker w, the pids of its live holders (in the order
 *     of its own table; the test process reads them at rest).
 *
 * Children never use cr_assert: a failure is counted and described in
 * figs[p].fail, and the child's exit status says whether it failed.
 */
#ifndef SVCFS_SOAK_H
#define SVCFS_SOAK_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SOAK_NAMES_MAX 1000 /* names a soak can use (SVCFS_SOAK_SERVICES) */
#define SOAK_WORKERS   4    /* processes registering, crashing, unregistering */
#define SOAK_READERS   3    /* processes walking the mount */
#define SOAK_WATCHERS  2    /* 0: raw inotify, 1: libsvcfs svcfs_watch */
#define SOAK_PROCS     (SOAK_WORKERS + SOAK_READERS + SOAK_WATCHERS)
#define SOAK_FAIL_LEN  2048 /* text of a child's first failures */
#define SOAK_HOLDERS   64   /* holder processes of one worker at once, at most */

/* figs[] index of each role's first process */
#define SOAK_P_WORKER  0
#define SOAK_P_READER  SOAK_WORKERS
#define SOAK_P_WATCHER (SOAK_WORKERS + SOAK_READERS)

enum soak_state { SOAK_DEAD = 0, SOAK_ALIVE = 1 };

/* slot.how: how a name became what it is */
enum soak_how {
	SOAK_HOW_NEVER = 0, /* never registered */
	SOAK_HOW_LIB,       /* alive: svcfs_register */
	SOAK_HOW_PLAIN,     /* alive: plain bind + listen (sidecar, maybe NAME.pid) */
	SOAK_HOW_CRASH,     /* dead: its holder was SIGKILLed (and reaped) */
	SOAK_HOW_EXIT,      /* dead: unregistered (holder alive or exited cleanly) */
};

enum soak_phase {
	SOAK_PH_CHURN = 0, /* workers churn; readers and watchers run */
	SOAK_PH_FILL,      /* workers register every name of theirs, then ack */
	SOAK_PH_EMPTY,     /* workers end every holder (crash or clean exit), then ack */
	SOAK_PH_STOP,      /* everybody ends (workers kill what is left first) */
};

#define SOAK_HIST 8 /* the last transitions of a name, to explain a violation */

struct soak_event {
	int64_t t_ns;
	int32_t pid; /* the holder */
	int32_t state, how;
};

struct soak_slot {
	_Atomic uint32_t seq;
	_Atomic int state;
	_Atomic int how;
	_Atomic int64_t since_ns;
	_Atomic uint32_t gen;
	_Atomic uint32_t nhist;            /* transitions so far */
	struct soak_event hist[SOAK_HIST]; /* the last ones: hist[(nhist - 1) % SOAK_HIST] */
};

/* A child's counters; which ones mean something depends on its role. */
struct soak_figs {
	/* workers */
	_Atomic uint64_t ops;           /* churn actions */
	_Atomic uint64_t holders;       /* holder processes started */
	_Atomic uint64_t reg_lib;       /* names registered with svcfs_register */
	_Atomic uint64_t reg_plain;     /* names registered with plain bind + listen */
	_Atomic uint64_t reg_again;     /* of those, again in the same holder after unregistering */
	_Atomic uint64_t crashes;       /* holders SIGKILLed */
	_Atomic uint64_t crashed_names; /* names they held */
	_Atomic uint64_t crashes_early; /* holders SIGKILLed while registering */
	_Atomic uint64_t exits;         /* holders that unregistered everything and exited 0 */
	_Atomic uint64_t exited_names;  /* names they held */
	_Atomic uint64_t unregs;        /* single names unregistered by a running holder */
	_Atomic uint64_t meta_atomic;   /* sidecars rewritten (temp + rename, set_meta) */
	_Atomic uint64_t meta_inplace;  /* sidecars rewritten in place */
	_Atomic uint64_t live_holders;  /* holder processes alive now */
	/* readers */
	_Atomic uint64_t walks;         /* full walks of the mount */
	_Atomic uint64_t stats;         /* lstat/stat calls */
	_Atomic uint64_t reads;         /* files read (meta.json, state, ...) */
	_Atomic uint64_t xattr_lists;   /* listxattr calls */
	_Atomic uint64_t xattr_gets;    /* getxattr calls */
	_Atomic uint64_t connects;      /* connect() through MNT/NAME/socket */
	_Atomic uint64_t execs;         /* ls -laR / cat runs */
	_Atomic uint64_t vanished_errs; /* ENOENT/ENOTDIR (and friends, see reader.c) met */
	_Atomic uint64_t torn; /* reads cut or mixed by a change: each one a failure */
	_Atomic uint64_t bad;  /* failures (any role) */
	/* watchers */
	_Atomic uint64_t events;    /* inotify events / svcfs events taken */
	_Atomic uint64_t appeared;  /* IN_CREATE|IN_ISDIR / APPEARED */
	_Atomic uint64_t vanished;  /* IN_DELETE|IN_ISDIR / VANISHED */
	_Atomic uint64_t changed;   /* IN_MODIFY / CHANGED */
	_Atomic uint64_t overflows; /* IN_Q_OVERFLOW (then a rescan) */
	_Atomic uint64_t anomalies; /* an appear of a name present, a vanish of one absent */
	char fail[SOAK_FAIL_LEN];
	_Atomic unsigned fail_len;
};

struct soak_shared {
	char mnt[PATH_MAX];
	char backing[PATH_MAX];
	unsigned nnames;
	unsigned long long seed;
	uint64_t max_ops; /* per worker, 0: no bound but time */
	_Atomic uint32_t cmd_epoch;
	_Atomic int cmd_phase;
	_Atomic uint32_t ack[SOAK_PROCS];
	_Atomic uint32_t snap_req;
	_Atomic uint32_t snap_ack[SOAK_WATCHERS];
	_Atomic uint8_t snap_set[SOAK_WATCHERS][SOAK_NAMES_MAX];
	struct soak_slot slot[SOAK_NAMES_MAX];
	struct soak_figs figs[SOAK_PROCS];
	/* the pids of each worker's live holders (0: none), written by the worker */
	_Atomic int32_t holder_pid[SOAK_WORKERS][SOAK_HOLDERS];
};

extern struct soak_shared *S;

/* ---- names (soak.c) ----
 * Name i is "s%04u" in the group soak_group(i): the root for two names in
 * five, else g1, g2 or g3/deep (a group inside a group). The groups exist
 * in BACKING before the mount and never change.
 */
#define SOAK_NGROUPS 4
extern const char *const soak_groups[SOAK_NGROUPS]; /* "g1", "g2", "g3", "g3/deep" */
const char *soak_group(unsigned i);                 /* "" for the root */
/* "g1/s0002" or "s0000" into BUF. */
void soak_name(unsigned i, char *buf, size_t size);
/* The index of a relative name ("g1/s0002"), -1 if it is none of ours. */
int soak_index(const char *rel);
/* True if REL is one of the groups. */
bool soak_is_group(const char *rel);

/* snprintf into BUF; false (BUF then holds "") if it did not fit. */
bool soak_fmt(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int64_t soak_now_ns(void);
void soak_sleep_us(long us);
/* Count a failure of child P and append its description (the first ones fit). */
void soak_fail(unsigned p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The phase the test process asks for now, and its epoch. */
int soak_phase(uint32_t *ret_epoch);
/* Child P has done what epoch EPOCH asked. */
void soak_ack(unsigned p, uint32_t epoch);
/* xorshift64*: each child seeds its own from S->seed. */
uint64_t soak_rand(uint64_t *state);

/* ---- roles: each runs in its own process and returns its exit status ---- */
int soak_worker(unsigned w);  /* worker.c */
int soak_reader(unsigned r);  /* reader.c */
int soak_watcher(unsigned w); /* watcher.c: 0 raw inotify, 1 libsvcfs */

#endif /* SVCFS_SOAK_H */
