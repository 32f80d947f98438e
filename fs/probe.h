/*
 * probe — what the kernel knows about Unix sockets (SPEC §3.1), read
 * without touching the services: one socket-diagnostics dump lists every
 * bound Unix socket with its state, queue lengths and the (dev, inode) of
 * the file it is bound to; a single socket can then be asked for by its
 * socket inode. Connecting is left for the two things only a connect can
 * tell: the listener's credentials (once in a service's life) and, where
 * sock_diag is missing, whether anyone listens at all.
 *
 * Used by the engine thread only; no locking.
 */
#ifndef SVCFS_PROBE_H
#define SVCFS_PROBE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Socket states as unix_diag reports them (the TCP state numbers). */
#define PROBE_STATE_CLOSE  7 /* bound (dgram), or bound but not listening */
#define PROBE_STATE_LISTEN 10

struct probe_sock {
	uint64_t vfs_dev; /* the kernel's internal dev_t: major << 20 | minor */
	uint64_t vfs_ino;
	uint32_t sock_ino;
	uint8_t type;  /* SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET */
	uint8_t state; /* PROBE_STATE_* */
	uint32_t rq;   /* LISTEN: connections waiting in the accept queue */
	uint32_t wq;   /* LISTEN: the backlog */
};

struct probe;

/* Open the probe. Without sock_diag it still works, in connect-probe mode. */
struct svcfs_stats;
/* STATS (may be NULL) counts dumps and queries. */
struct probe *probe_new(struct svcfs_stats *stats);
struct probe *probe_free(struct probe *p);
bool probe_has_diag(const struct probe *p);

/* Refresh the table of bound sockets with one dump. */
int probe_dump(struct probe *p);
/* The socket bound to the file with stat ST_DEV/ST_INO in the last dump, or NULL. */
const struct probe_sock *probe_find(const struct probe *p, dev_t st_dev, ino_t st_ino);
/* Bytes the table of the last dump holds (it follows the namespace's socket count). */
size_t probe_table_bytes(const struct probe *p);
/* Ask for one socket by its socket inode: 0, or -ENOENT when it is gone. */
int probe_query(struct probe *p, uint32_t sock_ino, struct probe_sock *ret);

/* Alive as sock_diag sees it: listening (stream/seqpacket) or bound (dgram). */
bool probe_sock_alive(const struct probe_sock *s);
/* Listening with a full accept queue. */
bool probe_sock_busy(const struct probe_sock *s);

/*
 * Connect a new non-blocking socket of TYPE to socket file FILE in DIRFD,
 * whatever the length of its path (through /proc/self/fd; a symlink is
 * followed to the real socket). Returns the connected fd or -errno
 * (-EAGAIN: its queue is full).
 */
int probe_connect_at(int dirfd, const char *file, int type);

/*
 * The fallback probe without sock_diag: 0 when something listens (or is
 * bound, for dgram), -EAGAIN when it listens with a full queue,
 * -ECONNREFUSED when nothing does, another -errno otherwise.
 */
int probe_connect(int dirfd, const char *file, int type);

#endif /* SVCFS_PROBE_H */
