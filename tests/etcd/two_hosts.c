/*
 * two_hosts — daemon b beside the harness's daemon a, both on one etcd
 * cluster (see two_hosts.h). B is held like H's daemon: by its pid until it
 * is reaped, and by a pidfd, so that a signal never reaches a process that
 * took over its pid. Waits are bounded; teardown stops b before a and both
 * before the cluster.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "etcd_cluster.h"
#include "harness.h"
#include "two_hosts.h"

#define START_MS 10000 /* b mounted after start */
#define STOP_MS  10000 /* SIGTERM -> exited (the harness's bound too) */
#define KILL_MS  5000
#define LOG_TAIL 3000

struct host_b B = {.pidfd = -1};
char two_hosts_prefix[160];

/* The end of a daemon's stderr in the test's log. */
static void log_tail(const char *who, const char *path)
{
	char *s = h_slurp(path);
	size_t len = s ? strlen(s) : 0;

	cr_log_error("daemon %s stderr%s:\n%s", who, len > LOG_TAIL ? " (end)" : "",
	             s ? (len > LOG_TAIL ? s + len - LOG_TAIL : s) : "(none)");
	free(s);
}

void two_hosts_show_logs(void)
{
	log_tail("a", H.errlog);
	if (B.errlog[0])
		log_tail("b", B.errlog);
}

/* ---- daemon b ---- */

bool b_running(void)
{
	pid_t r;

	if (!B.pid)
		return false;
	r = waitpid(B.pid, &B.status, WNOHANG);
	if (r == 0)
		return true;
	B.reaped = r == B.pid;
	B.pid = 0;
	if (B.pidfd >= 0)
		close(B.pidfd);
	B.pidfd = -1;
	return false;
}

void b_start(const char *opts)
{
	long long end;

	cr_assert_eq(B.pid, 0, "daemon b already running");
	B.pid = h_daemon_start(opts, B.backing, B.mnt, B.errlog);
	B.pidfd = pidfd_open(B.pid, 0);
	B.reaped = false;
	end = h_now_ms() + START_MS;
	for (;;) {
		bool up = h_mounted(B.mnt, NULL, 0);

		if (up)
			return;
		if (!b_running()) {
			log_tail("b", B.errlog);
			cr_assert_fail("daemon b exited before mounting (wait status %#x)",
			               B.status);
		}
		if (h_now_ms() > end) {
			log_tail("b", B.errlog);
			cr_assert_fail("%s not mounted within %d ms", B.mnt, START_MS);
		}
		h_sleep_ms(H_POLL_MS);
	}
}

int b_wait(int ms)
{
	long long end = h_now_ms() + ms;

	for (;;) {
		if (!b_running())
			return B.reaped ? B.status : -1;
		if (h_now_ms() > end)
			return -1;
		h_sleep_ms(H_POLL_MS);
	}
}

int b_stop(void)
{
	int st;

	if (!b_running())
		return B.reaped ? B.status : -1;
	pidfd_send_signal(B.pidfd, SIGTERM, NULL, 0);
	st = b_wait(STOP_MS);
	if (st != -1)
		return st;
	pidfd_send_signal(B.pidfd, SIGKILL, NULL, 0);
	umount2(B.mnt, MNT_FORCE); /* a daemon stuck on its own mount */
	b_wait(KILL_MS);
	umount2(B.mnt, MNT_DETACH | UMOUNT_NOFOLLOW);
	return -1;
}

const char *mb(const char *fmt, ...)
{
	static char ring[16][PATH_MAX];
	static unsigned next;
	char *out = ring[next++ % 16], rel[PATH_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	n = snprintf(out, PATH_MAX, "%s/%s", B.mnt, rel);
	cr_assert(n > 0 && n < PATH_MAX, "path too long");
	return out;
}

/* ---- both ---- */

const char *two_hosts_opts(const char *host, const char *addr, const char *urls, const char *extra)
{
	static char buf[4][1024];
	static unsigned next;
	char *out = buf[next++ % 4];
	int n = snprintf(out, sizeof(buf[0]), "etcd=%s,host=%s,address=%s,etcd_prefix=%s%s%s", urls,
	                 host, addr, two_hosts_prefix, extra ? "," : "", extra ? extra : "");

	cr_assert(n > 0 && (size_t)n < sizeof(buf[0]), "options too long");
	return out;
}

void two_hosts_start_both(const char *urls, const char *extra)
{
	h_mount_opts(two_hosts_opts("a", ADDR_A, urls, extra), NULL);
	b_start(two_hosts_opts("b", ADDR_B, urls, extra));
}

/* ---- fixture ---- */

void two_hosts_paths(void)
{
	int r;

	snprintf(B.backing, sizeof(B.backing), "%s", h_r("b2"));
	snprintf(B.mnt, sizeof(B.mnt), "%s", h_r("m2"));
	snprintf(B.errlog, sizeof(B.errlog), "%s", h_r("b.stderr"));
	r = mkdir(B.backing, 0755);
	cr_assert_eq(r, 0, "mkdir %s: %s", B.backing, strerror(errno));
	r = mkdir(B.mnt, 0755);
	cr_assert_eq(r, 0, "mkdir %s: %s", B.mnt, strerror(errno));
	snprintf(two_hosts_prefix, sizeof(two_hosts_prefix), "/t-%s-%ld/",
	         criterion_current_test ? criterion_current_test->name : "x", (long)getpid());
}

void two_hosts_setup(void)
{
	h_setup();
	two_hosts_paths();
	cluster_setup();
}

/* A daemon that did not exit 0 on SIGTERM fails the run (an error in .fini). */
static void check_stop(const char *who, int st, const char *log)
{
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return;
	cr_log_error("TEARDOWN: daemon %s %s on SIGTERM (wait status %#x)", who,
	             st == -1 ? "did not exit within the bound" : "did not exit 0", st);
	log_tail(who, log);
}

void two_hosts_stop_b(void)
{
	if (B.pid)
		check_stop("b", b_stop(), B.errlog);
}

void two_hosts_teardown(void)
{
	/* daemons first, while etcd still answers their lease revocation */
	two_hosts_stop_b();
	if (H.ready && H.daemon)
		check_stop("a", h_daemon_stop(), H.errlog);
	/* then the members: the harness would see them as left behind */
	cluster_destroy();
	h_teardown();
}
