/*
 * The D-Bus baseline of svcfs-bench-latency (SPEC §6): a private dbus-daemon,
 * a watcher connection subscribed to NameOwnerChanged, and one fresh client
 * process per sample that takes a well-known name. Built only when libdbus-1
 * is found (SVCFS_BENCH_DBUS); latency.c owns the figures, this module only
 * measures samples and cleans up after itself.
 */
#ifndef SVCFS_BENCH_DBUS_H
#define SVCFS_BENCH_DBUS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

enum bench_dbus_kind {
	BENCH_DBUS_APPEAR, /* RequestName -> NameOwnerChanged with the new owner */
	BENCH_DBUS_CRASH,  /* SIGKILL of the owner -> NameOwnerChanged, owner lost */
};

/* Start `dbus-daemon --session` listening on DIR/bus (DIR must exist and stay
 * until bench_dbus_stop), connect the watcher. STOP set means give up soon.
 * 0, or -1 with the reason in ERR. */
int bench_dbus_start(const char *dir, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* One sample named by INDEX: PAUSE_MS of quiet before the timed step.
 * 0: *ret_ns is the latency; 1: no signal within TIMEOUT_MS (reason in
 * ERR); -1: cannot go on (reason in ERR, empty when stopped). */
int bench_dbus_sample(enum bench_dbus_kind kind, unsigned index, unsigned pause_ms,
                      unsigned timeout_ms, int64_t *ret_ns, char *err, size_t errlen);

/* NameOwnerChanged signals for the bench's names that no sample waited for. */
unsigned bench_dbus_unexpected(void);

/* "libdbus 1.14.10, dbus-daemon 1.14.10" */
void bench_dbus_versions(char *buf, size_t len);

/* Kill the current client and the daemon, close the watcher. Safe to call
 * at any time and twice. */
void bench_dbus_stop(void);

#endif
