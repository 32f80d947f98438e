/*
 * locks — which files some process holds a lock on, read from /proc/locks
 * (the lock-file rule of SPEC §3.2). svcfs never takes a service's lock to
 * find out: a service starting with flock(LOCK_EX|LOCK_NB) must never fail
 * because of svcfs.
 */
#ifndef SVCFS_LOCKS_H
#define SVCFS_LOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct locks {
	struct lock_id {
		uint64_t dev; /* major << 32 | minor */
		uint64_t ino;
		pid_t pid; /* the holder as /proc/locks names it (who took the lock) */
	} * ids;           /* sorted by (dev, ino) */
	size_t n, cap;
};

/* Read /proc/locks: every lock held now (flock, POSIX, OFD), waiters excluded. */
int locks_load(struct locks *l);
bool locks_held(const struct locks *l, dev_t dev, ino_t ino);
/* A process holding a lock on (DEV, INO), or 0: an owner hint, never trusted alone. */
pid_t locks_holder(const struct locks *l, dev_t dev, ino_t ino);
void locks_free(struct locks *l);

#endif /* SVCFS_LOCKS_H */
