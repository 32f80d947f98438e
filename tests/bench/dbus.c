/*
 * The D-Bus baseline of svcfs-bench-latency: what the best-known local
 * discovery mechanism costs on this machine, measured the way latency.c
 * measures svcfs.
 *
 * A private `dbus-daemon --session --nofork` (Debian's session.conf, listening
 * on DIR/bus) runs as a child of the bench, dying with it (PR_SET_PDEATHSIG).
 * The watcher is one connection with an AddMatch on NameOwnerChanged for the
 * bench's names only (arg0namespace), read with blocking
 * dbus_connection_read_write(), as a client waiting for a service would.
 *
 * Per sample, a fresh client process connects and registers (Hello), says
 * it is ready over its control socket and waits; after the pause the bench
 * tells it to go:
 *   appear  t0 in the client just before RequestName (shared memory), t1 when
 *           the watcher pops NameOwnerChanged(NAME, "", owner). The client
 *           then disconnects (owner lost awaited, not timed).
 *   crash   once the name is owned and after the pause, t0 just before
 *           kill(SIGKILL), t1 when the watcher pops NameOwnerChanged(NAME,
 *           owner, "").
 * Only one client exists at a time, so the bus is idle when a sample starts.
 */
#include "dbus.h"
#include "util.h"

#include <dbus/dbus.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define BD_PREFIX           "org.svcfs.bench"
#define BD_START_TIMEOUT_MS 10000
#define BD_SLICE_MS         100 /* longest blocking read: how soon a stop is seen */
#define BD_TERM_TIMEOUT_MS  2000

/* Written by the client, read by the bench after the event. */
struct bd_shared {
	_Atomic int64_t t0;
	_Atomic int reply; /* RequestName's reply, or -1 when it failed */
};

/* Everything bench_dbus_stop undoes. */
static struct {
	pid_t daemon, client;
	int ctl; /* the bench's end of the client's control socket */
	DBusConnection *watch;
	char address[512];
	volatile sig_atomic_t *stop;
	unsigned unexpected;
	struct bd_shared *shm;
} bd = {.ctl = -1};

static bool stopped(void)
{
	return bd.stop && *bd.stop;
}

static void client_done(bool kill_it)
{
	if (bd.ctl >= 0)
		close(bd.ctl); /* EOF: the client disconnects and exits */
	bd.ctl = -1;
	if (bd.client > 0 && kill_it)
		kill(bd.client, SIGKILL);
	bench_reap(&bd.client, BD_TERM_TIMEOUT_MS);
}

/* ---- the daemon ---- */

static int spawn_daemon(const char *dir, char *err, size_t errlen)
{
	char listen_opt[600], log[512], line[sizeof(bd.address)];
	int64_t end = bench_now_ns() + (int64_t)BD_START_TIMEOUT_MS * 1000000;
	pid_t parent = getpid();
	size_t got = 0;
	int p[2];

	if (snprintf(listen_opt, sizeof(listen_opt), "--address=unix:path=%s/bus", dir) >=
	        (int)sizeof(listen_opt) ||
	    snprintf(log, sizeof(log), "%s/dbus-daemon.log", dir) >= (int)sizeof(log)) {
		snprintf(err, errlen, "%s: path too long", dir);
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	bd.daemon = fork();
	if (bd.daemon < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		bd.daemon = 0;
		return -1;
	}
	if (bd.daemon == 0) {
		bench_child_reset(parent, SIGKILL);
		bench_child_stdio(log);
		bench_child_fds(p[1]);
		execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile",
		       listen_opt, "--print-address=3", (char *)NULL);
		dprintf(STDERR_FILENO, "exec dbus-daemon: %s\n", strerror(errno));
		_exit(127);
	}
	close(p[1]);
	/* The address, one line, once the daemon listens. */
	while (got < sizeof(line) - 1 && !memchr(line, '\n', got)) {
		struct pollfd pfd = {.fd = p[0], .events = POLLIN};
		int64_t left = end - bench_now_ns();
		ssize_t n;

		if (stopped() || left <= 0)
			break;
		if (poll(&pfd, 1,
		         left > BD_SLICE_MS * 1000000LL ? BD_SLICE_MS
		                                        : (int)(left / 1000000) + 1) <= 0)
			continue;
		n = read(p[0], line + got, sizeof(line) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(p[0]);
	line[got] = '\0';
	line[strcspn(line, "\n")] = '\0';
	if (!line[0]) {
		FILE *f = fopen(log, "re");
		char why[256] = "";

		if (f) {
			if (!fgets(why, sizeof(why), f))
				why[0] = '\0';
			fclose(f);
			why[strcspn(why, "\n")] = '\0';
		}
		snprintf(err, errlen, "dbus-daemon printed no address within %d ms%s%s",
		         BD_START_TIMEOUT_MS, why[0] ? ": " : "", why);
		return -1;
	}
	memcpy(bd.address, line, strlen(line) + 1);
	return 0;
}

/* ---- the watcher ---- */

/* 1: NAME's owner changed the awaited way (gained, or lost when LOST);
 * 0: anything else (a NameOwnerChanged of the bench's names is counted). */
static int classify(DBusMessage *m, const char *name, bool lost)
{
	const char *n = NULL, *old_owner = NULL, *new_owner = NULL;
	DBusError e;

	if (!dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged"))
		return 0;
	dbus_error_init(&e);
	if (!dbus_message_get_args(m, &e, DBUS_TYPE_STRING, &n, DBUS_TYPE_STRING, &old_owner,
	                           DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID)) {
		dbus_error_free(&e);
		return 0;
	}
	if (name && strcmp(n, name) == 0 && (lost ? !new_owner[0] : new_owner[0] != '\0'))
		return 1;
	if (strncmp(n, BD_PREFIX ".", sizeof(BD_PREFIX)) == 0)
		bd.unexpected++;
	return 0;
}

/* Throw away what the watcher holds (signals of earlier steps). */
static void drain(void)
{
	DBusMessage *m;

	dbus_connection_read_write(bd.watch, 0);
	while ((m = dbus_connection_pop_message(bd.watch))) {
		classify(m, NULL, false);
		dbus_message_unref(m);
	}
}

/* Block until the awaited NameOwnerChanged of NAME; *t1 when it was popped.
 * 0 found, 1 not within TIMEOUT_MS, -1 stopped or disconnected. */
static int wait_owner(const char *name, bool lost, unsigned timeout_ms, int64_t *t1, char *err,
                      size_t errlen)
{
	int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		DBusMessage *m;
		int64_t left;

		while ((m = dbus_connection_pop_message(bd.watch))) {
			int64_t t = bench_now_ns();
			int r = classify(m, name, lost);

			dbus_message_unref(m);
			if (r) {
				if (t1)
					*t1 = t;
				return 0;
			}
		}
		if (stopped())
			return -1;
		left = end - bench_now_ns();
		if (left <= 0) {
			snprintf(err, errlen, "no NameOwnerChanged (%s) for %s within %u ms",
			         lost ? "owner lost" : "new owner", name, timeout_ms);
			return 1;
		}
		if (!dbus_connection_read_write(bd.watch, left > BD_SLICE_MS * 1000000LL
		                                              ? BD_SLICE_MS
		                                              : (int)(left / 1000000) + 1)) {
			snprintf(err, errlen, "the watcher's connection to the bus is gone");
			return -1;
		}
	}
}

static int connect_watcher(char *err, size_t errlen)
{
	DBusError e;

	dbus_error_init(&e);
	bd.watch = dbus_connection_open_private(bd.address, &e);
	if (bd.watch) {
		dbus_connection_set_exit_on_disconnect(bd.watch, FALSE);
		if (dbus_bus_register(bd.watch, &e))
			dbus_bus_add_match(bd.watch,
			                   "type='signal',sender='" DBUS_SERVICE_DBUS "',"
			                   "interface='" DBUS_INTERFACE_DBUS "',"
			                   "member='NameOwnerChanged',arg0namespace='" BD_PREFIX
			                   "'",
			                   &e);
	}
	if (dbus_error_is_set(&e)) {
		snprintf(err, errlen, "watcher on %s: %s", bd.address, e.message);
		dbus_error_free(&e);
		return -1;
	}
	drain(); /* NameAcquired of its own unique name */
	return 0;
}

/* ---- the client ---- */

static _Noreturn void client_main(const char *name)
{
	DBusConnection *conn;
	DBusError e;
	char c;
	int r;

	dbus_error_init(&e);
	conn = dbus_connection_open_private(bd.address, &e);
	if (!conn || !dbus_bus_register(conn, &e)) {
		dprintf(3, "e%s", dbus_error_is_set(&e) ? e.message : "cannot connect");
		_exit(1);
	}
	if (bench_write_all(3, "r", 1) < 0 || bench_read_byte(3, &c) != 1 || c != 'b')
		_exit(0);
	atomic_store(&bd.shm->t0, bench_now_ns());
	r = dbus_bus_request_name(conn, name, DBUS_NAME_FLAG_DO_NOT_QUEUE, &e);
	atomic_store(&bd.shm->reply, r);
	bench_read_byte(3, &c); /* anything, or EOF: done */
	dbus_connection_close(conn);
	dbus_connection_unref(conn);
	_exit(0);
}

/* A connected client, waiting for 'b'. */
static int spawn_client(const char *name, unsigned timeout_ms, char *err, size_t errlen)
{
	pid_t parent = getpid();
	char msg[256];
	ssize_t n;
	int sv[2];
	struct pollfd pfd;

	atomic_store(&bd.shm->t0, 0);
	atomic_store(&bd.shm->reply, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	bd.client = fork();
	if (bd.client < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		bd.client = 0;
		return -1;
	}
	if (bd.client == 0) {
		bench_child_reset(parent, SIGKILL);
		bench_child_fds(sv[1]);
		client_main(name);
	}
	close(sv[1]);
	bd.ctl = sv[0];
	pfd = (struct pollfd){.fd = bd.ctl, .events = POLLIN};
	for (int64_t end = bench_now_ns() + (int64_t)timeout_ms * 1000000;;) {
		int64_t left = end - bench_now_ns();

		if (stopped()) {
			err[0] = '\0';
			return -1;
		}
		if (left <= 0) {
			snprintf(err, errlen, "client for %s not connected within %u ms", name,
			         timeout_ms);
			return -1;
		}
		if (poll(&pfd, 1,
		         left > BD_SLICE_MS * 1000000LL ? BD_SLICE_MS : (int)(left / 1000000) + 1) >
		    0)
			break;
	}
	n = read(bd.ctl, msg, sizeof(msg) - 1);
	if (n == 1 && msg[0] == 'r')
		return 0;
	msg[n > 0 ? n : 0] = '\0';
	snprintf(err, errlen, "client for %s: %s", name, n > 1 ? msg + 1 : "exited");
	return -1;
}

/* ---- the interface ---- */

int bench_dbus_start(const char *dir, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
	bd.stop = stop;
	bd.unexpected = 0;
	if (!bd.shm) {
		void *p = mmap(NULL, sizeof(*bd.shm), PROT_READ | PROT_WRITE,
		               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED) {
			snprintf(err, errlen, "mmap: %s", strerror(errno));
			return -1;
		}
		bd.shm = p;
	}
	if (spawn_daemon(dir, err, errlen) < 0 || connect_watcher(err, errlen) < 0) {
		bench_dbus_stop();
		return -1;
	}
	return 0;
}

int bench_dbus_sample(enum bench_dbus_kind kind, unsigned index, unsigned pause_ms,
                      unsigned timeout_ms, int64_t *ret_ns, char *err, size_t errlen)
{
	char name[64];
	int64_t t0, t1 = 0;
	int r;

	err[0] = '\0';
	snprintf(name, sizeof(name), "%s.%c%u", BD_PREFIX, kind == BENCH_DBUS_APPEAR ? 'a' : 'c',
	         index);
	if (spawn_client(name, timeout_ms, err, errlen) < 0) {
		client_done(true);
		return -1;
	}
	if (kind == BENCH_DBUS_APPEAR)
		bench_sleep_ms(pause_ms);
	drain();
	if (bench_write_all(bd.ctl, "b", 1) < 0) {
		snprintf(err, errlen, "client for %s: %s", name, strerror(errno));
		client_done(true);
		return -1;
	}
	r = wait_owner(name, false, timeout_ms, &t1, err, errlen);
	if (r != 0) {
		int reply = atomic_load(&bd.shm->reply);

		if (r > 0 && reply != 0 && reply != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
			snprintf(err + strlen(err), errlen - strlen(err),
			         " (RequestName replied %d)", reply);
		client_done(true);
		return r;
	}
	if (kind == BENCH_DBUS_APPEAR) {
		*ret_ns = t1 - atomic_load(&bd.shm->t0);
		client_done(false);
		/* untimed: the name goes with the connection */
		r = wait_owner(name, true, timeout_ms, NULL, err, errlen);
		return r < 0 ? -1 : 0;
	}
	bench_sleep_ms(pause_ms);
	drain();
	t0 = bench_now_ns();
	kill(bd.client, SIGKILL);
	r = wait_owner(name, true, timeout_ms, &t1, err, errlen);
	client_done(true);
	if (r == 0)
		*ret_ns = t1 - t0;
	return r;
}

unsigned bench_dbus_unexpected(void)
{
	return bd.unexpected;
}

void bench_dbus_versions(char *buf, size_t len)
{
	char line[256] = "", *v;
	int major, minor, micro;
	FILE *f;

	dbus_get_version(&major, &minor, &micro);
	f = popen("dbus-daemon --version 2>/dev/null", "re");
	if (f) {
		if (!fgets(line, sizeof(line), f))
			line[0] = '\0';
		pclose(f);
	}
	line[strcspn(line, "\n")] = '\0';
	v = strrchr(line, ' ');
	snprintf(buf, len, "libdbus %d.%d.%d, dbus-daemon %s", major, minor, micro,
	         v ? v + 1 : "?");
}

void bench_dbus_stop(void)
{
	client_done(true);
	if (bd.watch) {
		dbus_connection_close(bd.watch);
		dbus_connection_unref(bd.watch);
		bd.watch = NULL;
	}
	if (bd.daemon > 0) {
		kill(bd.daemon, SIGTERM);
		bench_reap(&bd.daemon, BD_TERM_TIMEOUT_MS);
	}
	bd.address[0] = '\0';
}
