/*
 * owner — which process holds a service's listening socket, and a pidfd
 * that becomes readable the moment it exits (SPEC §3.2).
 *
 * A PID is never trusted alone: a hint (sidecar "pid", NAME.pid, a -pidN
 * token) counts only if that process is alive, started no later than the
 * socket file was created, and /proc/PID/fd shows it holding the socket
 * inode the kernel reported. Pure queries of /proc; no state, no locks.
 */
#ifndef SVCFS_OWNER_H
#define SVCFS_OWNER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

/* 1 if PID has an fd on socket inode SOCK_INO, 0 if not, -errno (-ESRCH: no such process). */
int owner_holds_socket(pid_t pid, uint32_t sock_ino);

/* Find a process holding socket inode SOCK_INO by scanning /proc. -ESRCH if none. */
int owner_find_holder(uint32_t sock_ino, pid_t *ret_pid);

/*
 * Every socket some process holds, and one such process, from one walk of
 * /proc: for finding the holders of many sockets at once (a hint, to be
 * verified like any other).
 */
struct holders {
	struct holder {
		uint32_t sock_ino;
		pid_t pid;
	} * v; /* sorted by sock_ino then pid, one entry per (socket, process) */
	size_t n, cap;
};

int owner_holders_load(struct holders *h);
/* A process that held SOCK_INO at the walk (the lowest pid), or 0. */
pid_t owner_holders_find(const struct holders *h, uint32_t sock_ino);
/* PID held SOCK_INO at the walk. */
bool owner_holders_has(const struct holders *h, uint32_t sock_ino, pid_t pid);
void owner_holders_free(struct holders *h);

/* Wall-clock start time of PID (10 ms resolution). */
int owner_start_time(pid_t pid, struct timespec *ret);

/*
 * Verify a PID hint: alive, started no later than CREATED (the socket
 * file's creation; one clock tick of slack), holding SOCK_INO. On success
 * returns 0 and a pidfd for it in *ret_pidfd (checked again after the
 * pidfd was opened, so the pidfd names the very process that was checked).
 */
int owner_verify_hint(pid_t pid, uint32_t sock_ino, const struct timespec *created, int *ret_pidfd);
/*
 * The same for a PID the caller saw hold the socket after CREATED (a walk
 * of /proc): the pidfd is checked to name that process, without reading
 * its descriptors again (thousands of sockets in one process made that
 * quadratic).
 */
int owner_verify_holder(pid_t pid, const struct timespec *created, int *ret_pidfd);

/*
 * One connect to socket file FILE in DIRFD (the one connect in a
 * service's life): the listener's credentials and, where the kernel has
 * SO_PEERPIDFD, a pidfd of the listening process (-1 otherwise: then the
 * caller opens one from the PID, which the hint rules above guard).
 */
int owner_from_connect(int dirfd, const char *file, int type, struct ucred *ret_cred,
                       int *ret_pidfd);

/* Effective uid and gid of PID, from /proc/PID/status. */
int owner_creds(pid_t pid, uid_t *ret_uid, gid_t *ret_gid);

/*
 * Read a PID file NAME in DIRFD: a decimal PID and a newline, owned by
 * TRUSTED_UID or root, not a symlink, at most 32 bytes. -ENOENT if absent.
 */
int owner_read_pidfile(int dirfd, const char *name, uid_t trusted_uid, pid_t *ret_pid);

/* Open a pidfd for PID (close-on-exec). */
int owner_pidfd(pid_t pid);

#endif /* SVCFS_OWNER_H */
