/*
 * stats — what the daemon has done since it started, for `svcfsctl status`
 * (the mount root's user.svcfs.status xattr). Counters only grow. Written by
 * the engine thread (pokes are counted there too), read by any FUSE
 * thread: relaxed atomics, since no reader needs them consistent with each
 * other.
 */
#ifndef SVCFS_STATS_H
#define SVCFS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

struct svcfs_stats {
	_Atomic uint64_t dumps;         /* sock_diag dumps (every Unix socket of the namespace) */
	_Atomic uint64_t queries;       /* sock_diag queries of one socket */
	_Atomic uint64_t connects;      /* connects to services: owner lookups, connect probes */
	_Atomic uint64_t health_checks; /* health-check requests sent */
	_Atomic uint64_t appeared;      /* services that entered the mount */
	_Atomic uint64_t vanished;      /* services that left it */
	_Atomic uint64_t owner_exits;   /* owner processes whose pidfd woke the engine */
	_Atomic uint64_t rescans; /* BACKING read again (queue overflow, back after removal) */
	_Atomic uint64_t events;  /* inotify events made on the mount (pokes) */
};

#define STATS_INC(st, field) atomic_fetch_add_explicit(&(st)->field, 1, memory_order_relaxed)
#define STATS_GET(st, field) atomic_load_explicit(&(st)->field, memory_order_relaxed)

#endif /* SVCFS_STATS_H */
