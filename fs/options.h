/*
 * options — the svcfs -o options of SPEC §1, parsed and checked. FUSE's
 * own options are left in the argument list for libfuse.
 */
#ifndef SVCFS_OPTIONS_H
#define SVCFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define SVCFS_MAX_SERVICES_DEFAULT 100000ul

struct svcfs_options {
	double probe_interval; /* seconds between full liveness checks */
	unsigned probe_timeout_ms;
	double grace;	     /* seconds a refused socket is given */
	bool reap;	     /* delete stale socket files */
	double poll;	     /* > 0: rescan BACKING every POLL seconds, no inotify */
	unsigned long max_services;
	/* Several hosts (SPEC §8); etcd NULL: this host alone. Owned: options_free. */
	char *etcd;        /* endpoint URLs, comma-separated, in failover order */
	char *host;        /* this host's name in etcd and in other hosts' views */
	char *etcd_prefix; /* key prefix, ends with '/' */
	char *address;     /* what other hosts reach this host's TCP endpoints at */
	unsigned etcd_ttl; /* lease TTL, seconds */
};

#define SVCFS_ETCD_TTL_DEFAULT 5u
#define SVCFS_ETCD_TTL_MIN     2u
#define SVCFS_ETCD_TTL_MAX     3600u
#define SVCFS_ETCD_PREFIX      "/svcfs/"
#define SVCFS_HOST_MAX         254 /* "@HOST" is one file name */

struct fuse_args;

/*
 * Take the svcfs options out of ARGS into *RET and check them. On a bad
 * value returns -EINVAL with a message (naming the option and the reason)
 * in ERR.
 */
int options_parse(struct fuse_args *args, struct svcfs_options *ret, char *err, size_t errsize);

/* Free what options_parse allocated in O. */
void options_free(struct svcfs_options *o);

/*
 * A host name svcfs accepts (for host= and in etcd keys): 1-254 bytes, no
 * '/', no control character, not starting with '.'.
 */
bool options_host_ok(const char *host);

/* Help text for the svcfs options. */
void options_usage(void);

#endif /* SVCFS_OPTIONS_H */
