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
};

struct fuse_args;

/*
 * Take the svcfs options out of ARGS into *RET and check them. On a bad
 * value returns -EINVAL with a message (naming the option and the reason)
 * in ERR.
 */
int options_parse(struct fuse_args *args, struct svcfs_options *ret, char *err, size_t errsize);

/* Help text for the svcfs options. */
void options_usage(void);

#endif /* SVCFS_OPTIONS_H */
