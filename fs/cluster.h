/*
 * cluster — this host's side of several hosts sharing one etcd (SPEC §8).
 *
 * Two threads of its own, so that etcd never holds up the engine:
 *
 *  - the publisher keeps etcd equal to what the engine wants published:
 *    one key PREFIX hosts/HOST/[GROUP/]NAME per live local service, all
 *    under one lease, kept alive every TTL/3. The engine only records what
 *    it wants (cluster_publish); the thread puts and deletes. Whenever a
 *    call fails (a timed-out write may still be applied later) or the lease
 *    is lost, it later puts everything again and deletes this host's keys
 *    it no longer wants: etcd down costs nothing local, and etcd back is
 *    reconciled.
 *
 *  - the mirror reads every other host's keys (one range, then a watch from
 *    the revision after it; a fresh range when the history it needs has
 *    been compacted) into a table, and marks what changed. The engine takes
 *    the changes when cluster_fd() is readable (cluster_take) and shows
 *    them under MOUNTPOINT/@HOST (remote.c).
 *
 * When the mirror has been cut off from etcd for UNKNOWN_AFTER (its watch
 * down, no member with a leader answering), the remote entries are
 * "unknown": they keep their last state but cannot vouch for it.
 */
#ifndef SVCFS_CLUSTER_H
#define SVCFS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cluster_config {
	const char *urls;   /* comma-separated endpoints */
	const char *host;   /* this host's name */
	const char *prefix; /* ends with '/' */
	unsigned ttl;       /* lease TTL, seconds */
};

struct cluster;

/* Copies what it needs from CFG. NULL on ENOMEM or a bad endpoint list. */
struct cluster *cluster_new(const struct cluster_config *cfg);
/* Start both threads (after any fork). 0 or a negative errno. */
int cluster_start(struct cluster *c);
/* Stop both threads; REVOKE: revoke the lease first, so that every host
 * sees this one's services leave at once (a clean stop). */
void cluster_stop(struct cluster *c, bool revoke);
struct cluster *cluster_free(struct cluster *c);

/* ---- engine thread ---- */

/* Publish PATH ("[GROUP/]NAME") with VALUE, or (VALUE NULL) delete it. */
void cluster_publish(struct cluster *c, const char *path, const char *value);

/* Readable (level) while changes of other hosts' services wait. */
int cluster_fd(const struct cluster *c);

/*
 * Take the waiting changes: FN(CTX, HOST, PATH, VALUE) for each changed
 * key of another host, VALUE its current value or NULL (gone). Keys that are
 * not PREFIX hosts/HOST/PATH are skipped. *RET_UNKNOWN: whether the remote
 * entries can be vouched for now; *RET_UNKNOWN_CHANGED: whether that
 * changed since the last take.
 */
typedef void cluster_change_fn(void *ctx, const char *host, const char *path, const char *value);
void cluster_take(struct cluster *c, cluster_change_fn *fn, void *ctx, bool *ret_unknown,
                  bool *ret_unknown_changed);

/* For the status file: a JSON object (the caller frees it), NULL on ENOMEM. */
char *cluster_status_json(struct cluster *c);

#endif /* SVCFS_CLUSTER_H */
