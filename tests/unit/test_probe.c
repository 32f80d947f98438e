/*
 * probe (fs/probe.c): the sock_diag table follows the namespace's socket
 * count both ways — it grows for a crowd of bound sockets and gives the
 * memory back once they are gone. Real sockets, in a fresh network
 * namespace so that nobody else's sockets count.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sched.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "probe.h"

#define CROWD 6000

Test(probe, table_grows_with_sockets_and_shrinks_when_they_go)
{
	static int fds[CROWD];
	char dir[] = "/tmp/svcfs-probe.XXXXXX";
	struct rlimit rl = {CROWD + 64, CROWD + 64};
	struct probe *p;
	size_t small, big, after;

	if (unshare(CLONE_NEWNET) < 0)
		cr_skip_test("no new network namespace: %s", strerror(errno));
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0, "RLIMIT_NOFILE: %s", strerror(errno));
	p = probe_new(NULL);
	cr_assert_not_null(p);
	if (!probe_has_diag(p))
		cr_skip_test("no sock_diag for Unix sockets");
	cr_assert_eq(probe_dump(p), 0);
	small = probe_table_bytes(p);
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	for (int i = 0; i < CROWD; i++) {
		/* bound to files: the table holds sockets that have one */
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%d", dir, i);
		fds[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s",
		             sa.sun_path, strerror(errno));
		cr_assert_eq(listen(fds[i], 1), 0);
	}
	cr_assert_eq(probe_dump(p), 0);
	big = probe_table_bytes(p);
	cr_assert_gt(big, small, "grown for %d sockets: %zu -> %zu bytes", CROWD, small, big);
	for (int i = 0; i < CROWD; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/%d", dir, i);
		close(fds[i]);
		unlink(path);
	}
	rmdir(dir);
	cr_assert_eq(probe_dump(p), 0); /* sees them gone */
	cr_assert_eq(probe_dump(p), 0); /* sized for what it saw */
	after = probe_table_bytes(p);
	cr_assert_lt(after, big / 4, "memory back once they are gone: %zu -> %zu bytes", big,
	             after);
	probe_free(p);
}
