/*
 * owner (fs/owner.c): finding the process that holds a socket, by one walk
 * of /proc (the holders table) and by the per-socket search. Real sockets,
 * real processes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "owner.h"

static uint32_t sock_ino(int fd)
{
	struct stat st;

	cr_assert_eq(fstat(fd, &st), 0);
	return (uint32_t)st.st_ino;
}

Test(owner, holders_table_names_the_holder_of_each_socket)
{
	struct holders h = {0};
	int sv[2], child_sv[2], go[2], ready[2];
	pid_t child;
	char c = 0;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, child_sv), 0);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		/* holds child_sv[1] only (the parent keeps none of it) */
		close(child_sv[0]);
		close(go[1]);
		if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(child_sv[1]);
	close(go[0]);
	cr_assert_eq(read(ready[0], &c, 1), 1); /* the child closed its end */
	cr_assert_eq(owner_holders_load(&h), 0);
	cr_assert_gt(h.n, 0);
	cr_assert_eq(owner_holders_find(&h, sock_ino(sv[0])), getpid());
	cr_assert_eq(owner_holders_find(&h, sock_ino(sv[1])), getpid());
	/* child_sv[0] is ours; its peer, child_sv[1], the child's (inode + 1 is not assumed) */
	cr_assert_eq(owner_holders_find(&h, sock_ino(child_sv[0])), getpid());
	for (size_t i = 1; i < h.n; i++)
		cr_assert(
		    h.v[i - 1].sock_ino < h.v[i].sock_ino ||
		        (h.v[i - 1].sock_ino == h.v[i].sock_ino && h.v[i - 1].pid < h.v[i].pid),
		    "sorted by socket then process, one entry per pair");
	/* every holder is known: the child inherited sv, and alone holds child_sv[1] */
	cr_assert(owner_holders_has(&h, sock_ino(sv[0]), getpid()));
	cr_assert(owner_holders_has(&h, sock_ino(sv[0]), child));
	cr_assert_not(owner_holders_has(&h, sock_ino(child_sv[0]), child));
	cr_assert_eq(owner_holders_find(&h, 0), 0);

	/* a socket created after the walk is not in it; the next walk has it */
	{
		int late = socket(AF_UNIX, SOCK_STREAM, 0);
		cr_assert_geq(late, 0);
		/* (its inode number may be one another process freed since: not ours) */
		cr_assert_neq(owner_holders_find(&h, sock_ino(late)), getpid());
		cr_assert_not(owner_holders_has(&h, sock_ino(late), getpid()));
		cr_assert_eq(owner_holders_load(&h), 0);
		cr_assert_eq(owner_holders_find(&h, sock_ino(late)), getpid());
		close(late);
	}
	cr_assert_eq(write(go[1], &c, 1), 1);
	waitpid(child, NULL, 0);
	owner_holders_free(&h);
	cr_assert_null(h.v);
	close(sv[0]);
	close(sv[1]);
	close(child_sv[0]);
}

Test(owner, holders_table_finds_a_socket_held_only_by_another_process)
{
	struct holders h = {0};
	int go[2], ready[2];
	uint32_t ino;
	pid_t child, pid = 0;
	char c = 0;

	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(pipe(ready), 0);
	child = fork();
	cr_assert_geq(child, 0);
	if (child == 0) {
		int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct stat st;
		uint32_t i;
		if (fd < 0 || fstat(fd, &st) < 0)
			_exit(1);
		i = (uint32_t)st.st_ino;
		if (write(ready[1], &i, sizeof(i)) != sizeof(i) || read(go[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	cr_assert_eq(read(ready[0], &ino, sizeof(ino)), (ssize_t)sizeof(ino));
	cr_assert_eq(owner_holders_load(&h), 0);
	cr_assert_eq(owner_holders_find(&h, ino), child);
	cr_assert_eq(owner_find_holder(ino, &pid), 0);
	cr_assert_eq(pid, child);
	cr_assert_eq(write(go[1], &c, 1), 1);
	waitpid(child, NULL, 0);
	cr_assert_eq(owner_find_holder(ino, &pid), -ESRCH, "gone with its holder");
	owner_holders_free(&h);
}
