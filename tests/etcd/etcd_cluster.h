/*
 * etcd_cluster — a real etcd cluster of three members on loopback for the
 * client's integration tests: random free ports, data dirs below one temp
 * dir (on /dev/shm when there is one: etcd fsyncs every write), members
 * that can be killed and started again on the same data.
 *
 * The members are children of the test process with PR_SET_PDEATHSIG, so a
 * test that dies outright takes them with it, and a guard child removes the
 * temp dir then (it waits for EOF on a pipe only the test process holds).
 * Normally cluster_destroy (the suite's .fini, and an atexit handler if .fini
 * never runs) kills and reaps the members and removes the temp dir. Each
 * member's output goes to its own log file, printed when a member fails to
 * come up.
 */
#ifndef SVCFS_TEST_ETCD_ETCD_CLUSTER_H
#define SVCFS_TEST_ETCD_ETCD_CLUSTER_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#define CLUSTER_SIZE       3
#define CLUSTER_START_MS   15000 /* bound for members to elect a leader and answer */
#define CLUSTER_PROGRESS_S 1     /* the members' watch progress-notify interval */

struct member {
	char name[16];
	char url[64]; /* client URL */
	char peer[64];
	char dir[PATH_MAX];
	char log[PATH_MAX];
	pid_t pid; /* 0: not running */
};

struct cluster {
	char root[256];               /* removed at destroy */
	char urls[CLUSTER_SIZE * 64]; /* every client URL, comma-separated */
	struct member m[CLUSTER_SIZE];
};

extern struct cluster CL;

/* Path of the etcd binary, or NULL when it is not installed. */
const char *cluster_etcd(void);
/* Skip the test (with a reason) without etcd; else start all three and wait
 * until each answers a linearizable read. Fails the test on error. */
void cluster_setup(void);
/* Kill every member, remove the temp dir. Idempotent. */
void cluster_destroy(void);
/* SIGKILL member I and reap it. */
void cluster_kill(int i);
/* Send SIG to member I (SIGSTOP: a member that hangs without closing). */
void cluster_signal(int i, int sig);
/* Start member I again on its data. */
void cluster_restart(int i);
/* Wait until member I answers a linearizable read within TIMEOUT_MS. */
bool cluster_member_ready(int i, int timeout_ms);
/* The member that leads (as the members' status says), or -1 when none does
 * within CLUSTER_START_MS. */
int cluster_leader(void);
/* The member whose client URL is URL, or -1. */
int cluster_member_of(const char *url);

#endif /* SVCFS_TEST_ETCD_ETCD_CLUSTER_H */
