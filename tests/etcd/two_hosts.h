/*
 * two_hosts — the fixture of the suites that run two real svcfs daemons,
 * "a" and "b", through one etcd cluster (SPEC §8). Daemon a is the
 * harness's (H.backing, H.mnt, H.errlog); daemon b, B, is started here from
 * the same binary (ROOT/b2, ROOT/m2, ROOT/b.stderr). Both take their etcd
 * options from two_hosts_opts, under the test's own key prefix, on a fresh
 * three-member cluster (etcd_cluster.c).
 *
 * Teardown order: the suite's own state first, then b, then a (both must
 * exit 0 on SIGTERM, while etcd still answers their lease revocation), then
 * the cluster, then the harness's teardown, which must find nothing left:
 * it would count the etcd members, children of the test process, as left
 * behind.
 */
#ifndef SVCFS_TEST_ETCD_TWO_HOSTS_H
#define SVCFS_TEST_ETCD_TWO_HOSTS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#define ADDR_A "192.0.2.1" /* TEST-NET-1: never reached, only written */
#define ADDR_B "192.0.2.2"

/* The second daemon (the first is the harness's). */
struct host_b {
	char backing[PATH_MAX];
	char mnt[PATH_MAX];
	char errlog[PATH_MAX];
	pid_t pid; /* 0: not running, or reaped */
	int pidfd; /* -1 */
	int status;
	bool reaped;
};

extern struct host_b B;

/* This test's etcd_prefix, ends with '/'. */
extern char two_hosts_prefix[160];

/* ---- fixture ---- */

/* After h_setup: B's directories made, the test's prefix chosen. */
void two_hosts_paths(void);
/* h_setup, two_hosts_paths, then the cluster (skips without etcd). For .init. */
void two_hosts_setup(void);
/* SIGTERM b if it runs; a failure to exit 0 is logged as a TEARDOWN error. */
void two_hosts_stop_b(void);
/* b, then a (as two_hosts_stop_b), the cluster, the harness. For .fini,
 * after the suite's own state. */
void two_hosts_teardown(void);

/* ---- the daemons ---- */

/* -o for host HOST at ADDR with the etcd endpoints URLS and the test's
 * prefix; EXTRA (may be NULL) appended. Ring of 4 static buffers. */
const char *two_hosts_opts(const char *host, const char *addr, const char *urls, const char *extra);
/* a (h_mount_opts) and b, both mounted, with two_hosts_opts(URLS, EXTRA). */
void two_hosts_start_both(const char *urls, const char *extra);
/* Both daemons' stderr (the end of it) in the test's log. */
void two_hosts_show_logs(void);

/* Start b with -o OPTS and wait until its mount is live; fails the test
 * (with b's stderr) if b exits first or does not mount in time. */
void b_start(const char *opts);
/* Reap b if it exited; true while it runs. */
bool b_running(void);
/* Wait up to MS for b to end; its wait status or -1. */
int b_wait(int ms);
/*
 * SIGTERM b and wait; if it does not end, SIGKILL it and abort its mount.
 * Returns its wait status after SIGTERM, -1 if it had to be killed.
 */
int b_stop(void);

/* B's MNT/... formatted (ring of 16 static buffers), as h_m is H's. */
const char *mb(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* SVCFS_TEST_ETCD_TWO_HOSTS_H */
