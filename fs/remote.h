/*
 * remote — other hosts' services in the view (SPEC §8): MOUNTPOINT/@HOST/
 * [GROUP/]NAME/, from what the cluster's mirror read in etcd. Engine thread
 * only; the view does the pokes, so watchers get the same inotify events
 * as for local services.
 */
#ifndef SVCFS_REMOTE_H
#define SVCFS_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct view;
struct cluster;
struct remote;

/* Directories and files take UID:GID, mode 0555/0444; at most MAX services shown. */
struct remote *remote_new(struct view *view, uid_t uid, gid_t gid, size_t max);
/* Frees the records only: the view goes with the daemon. */
struct remote *remote_free(struct remote *r);
/* Take what changed in etcd from C and show it. */
void remote_update(struct remote *r, struct cluster *c);
/* Services of other hosts shown (any thread). */
size_t remote_count(struct remote *r);

/* The prefix of a host's directory: "@HOST". */
#define REMOTE_HOST_MARK '@'

#endif /* SVCFS_REMOTE_H */
