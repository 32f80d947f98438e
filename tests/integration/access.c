/*
 * access — modes and the read-only view (SPEC §4). A service directory and
 * its files take the socket's owner and group and are readable for exactly
 * the classes that may connect; the kernel enforces it (default_permissions,
 * allow_other only when asked). Whatever would change the view fails with
 * EACCES or EROFS, never succeeds and never takes the daemon down.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(access, .init = h_setup, .fini = h_teardown, .timeout = 60);

#define OTHER_UID 23456
#define OWNER_UID 12345

struct stat_ctx {
	const char *path;
	uid_t uid;
	gid_t gid;
	mode_t mode;
	struct stat st;
	int r, err;
};

static bool stat_is(void *ctx)
{
	struct stat_ctx *c = ctx;

	c->r = lstat(c->path, &c->st);
	c->err = errno;
	return c->r == 0 && c->st.st_uid == c->uid && c->st.st_gid == c->gid &&
	       (c->st.st_mode & 07777) == c->mode;
}

/*
 * PATH shows UID:GID and MODE. A service's socket is bound, then chmodded
 * and chowned: the view may show it for a moment as bound (root, umask
 * mode) before it follows. Wait for the final state, then assert on it.
 */
static void assert_stat(const char *path, uid_t uid, gid_t gid, mode_t mode)
{
	struct stat_ctx c = {.path = path, .uid = uid, .gid = gid, .mode = mode};

	h_wait_until(stat_is, &c, H_TIMEOUT_MS);
	cr_assert_eq(c.r, 0, "stat %s: %s", path, strerror(c.err));
	cr_assert_eq(c.st.st_uid, uid, "%s: uid %u, expected %u", path, c.st.st_uid, uid);
	cr_assert_eq(c.st.st_gid, gid, "%s: gid %u, expected %u", path, c.st.st_gid, gid);
	cr_assert_eq(c.st.st_mode & 07777, mode, "%s: mode %o, expected %o", path,
		     c.st.st_mode & 07777, mode);
}

static void start_private_and_public(void)
{
	struct h_service_opts priv = {.greeting = "hello\n",
				      .mode = 0660,
				      .set_owner = true,
				      .uid = OWNER_UID,
				      .gid = OWNER_UID};
	struct h_service_opts pub = {.greeting = "hello\n", .mode = 0666};

	h_service_start("priv.sock", &priv);
	h_service_start("pub.sock", &pub);
	cr_assert(h_wait_exists(h_m("priv/state")));
	cr_assert(h_wait_exists(h_m("pub/state")));
	/* the permission checks below need the final owners and modes */
	assert_stat(h_m("priv"), OWNER_UID, OWNER_UID, 0550);
	assert_stat(h_m("priv/state"), OWNER_UID, OWNER_UID, 0440);
	assert_stat(h_m("pub"), 0, 0, 0555);
	assert_stat(h_m("pub/state"), 0, 0, 0444);
}

/* As another user: 0 if PATH reads "alive\n", else the errno. */
static int read_state(const void *arg)
{
	char *s = h_slurp(arg);
	int r;

	if (!s)
		return errno;
	r = strcmp(s, "alive\n") == 0 ? 0 : 200;
	free(s);
	return r;
}

static int open_dir(const void *arg)
{
	DIR *d = opendir(arg);

	if (!d)
		return errno;
	closedir(d);
	return 0;
}

static int stat_path(const void *arg)
{
	struct stat st;

	return stat(arg, &st) < 0 ? errno : 0;
}

Test(access, modes_follow_the_socket)
{
	h_mount_opts("allow_other", NULL);
	start_private_and_public();

	assert_stat(h_m("priv"), OWNER_UID, OWNER_UID, 0550);
	assert_stat(h_m("priv/state"), OWNER_UID, OWNER_UID, 0440);
	assert_stat(h_m("priv/meta.json"), OWNER_UID, OWNER_UID, 0440);
	assert_stat(h_m("pub"), 0, 0, 0555);
	assert_stat(h_m("pub/state"), 0, 0, 0444);
	/* the listener runs as its owner */
	cr_assert(h_wait_content(h_m("priv/uid"), "12345\n"));
	cr_assert(h_wait_content(h_m("priv/gid"), "12345\n"));
	h_assert_daemon_alive();
}

Test(access, kernel_enforces_modes)
{
	int r;

	h_mount_opts("allow_other", NULL);
	start_private_and_public();

	r = h_as_user(OTHER_UID, OTHER_UID, 0, read_state, h_m("priv/state"));
	cr_assert_eq(r, EACCES, "another user reading a 0660 service: %d (%s)", r,
		     r > 0 ? strerror(r) : "");
	r = h_as_user(OTHER_UID, OTHER_UID, 0, open_dir, h_m("priv"));
	cr_assert_eq(r, EACCES, "another user listing a 0660 service: %d", r);
	r = h_as_user(OTHER_UID, OTHER_UID, 0, read_state, h_m("pub/state"));
	cr_assert_eq(r, 0, "another user cannot read a 0666 service: %d (%s)", r,
		     r > 0 ? strerror(r) : "");
	/* the group may connect, so it may read */
	r = h_as_user(OTHER_UID, OTHER_UID, OWNER_UID, read_state, h_m("priv/state"));
	cr_assert_eq(r, 0, "a member of the socket's group cannot read: %d", r);
	r = h_as_user(OWNER_UID, OWNER_UID, 0, read_state, h_m("priv/state"));
	cr_assert_eq(r, 0, "the socket's owner cannot read: %d", r);
	h_assert_daemon_alive();
}

Test(access, owner_only_socket)
{
	struct h_service_opts o = {
	    .mode = 0600, .set_owner = true, .uid = OWNER_UID, .gid = OWNER_UID};
	int r;

	h_mount_opts("allow_other", NULL);
	h_service_start("mine.sock", &o);
	cr_assert(h_wait_exists(h_m("mine/state")));
	assert_stat(h_m("mine"), OWNER_UID, OWNER_UID, 0500);
	assert_stat(h_m("mine/state"), OWNER_UID, OWNER_UID, 0400);
	r = h_as_user(OTHER_UID, OTHER_UID, OWNER_UID, read_state, h_m("mine/state"));
	cr_assert_eq(r, EACCES, "a group member read an owner-only service: %d", r);
	h_assert_daemon_alive();
}

Test(access, mode_change_seen_through_cache)
{
	struct stat st;
	int r;

	h_mount_opts("allow_other", NULL);
	h_service_start("svc.sock", &(struct h_service_opts){.mode = 0666});
	cr_assert(h_wait_exists(h_m("svc/state")));
	for (int i = 0; i < 10; i++) {
		r = stat(h_m("svc"), &st);
		cr_assert_eq(r, 0);
		cr_assert_eq(st.st_mode & 07777, 0555);
	}
	r = h_as_user(OTHER_UID, OTHER_UID, 0, read_state, h_m("svc/state"));
	cr_assert_eq(r, 0);

	r = chmod(h_b("svc.sock"), 0600);
	cr_assert_eq(r, 0);
	for (int i = 0; i < H_TIMEOUT_MS / 10; i++) {
		r = stat(h_m("svc"), &st);
		cr_assert_eq(r, 0);
		if ((st.st_mode & 07777) == 0500)
			break;
		h_sleep_ms(10);
	}
	cr_assert_eq(st.st_mode & 07777, 0500, "mode stayed %o after chmod 0600 of the socket",
		     st.st_mode & 07777);
	r = h_as_user(OTHER_UID, OTHER_UID, 0, read_state, h_m("svc/state"));
	cr_assert_eq(r, EACCES, "another user still reads after chmod 0600: %d", r);
	h_assert_daemon_alive();
}

Test(access, allow_other_is_not_forced)
{
	int r;

	h_mount();
	h_service_start("pub.sock", &(struct h_service_opts){.mode = 0666});
	cr_assert(h_wait_exists(h_m("pub/state")));
	r = h_as_user(OTHER_UID, OTHER_UID, 0, stat_path, h_m("pub"));
	cr_assert_eq(r, EACCES, "without allow_other another user reached the mount: %d", r);
	h_assert_daemon_alive();
}

/* ---- read-only ---- */

#define DENIED(call, what)                                                                         \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		int e_ = errno;                                                                    \
		cr_expect(r_ == -1 && (e_ == EACCES || e_ == EROFS),                               \
			  "%s: returned %ld (%s), expected EACCES or EROFS", what, r_,             \
			  strerror(e_));                                                           \
	} while (0)

Test(access, view_is_read_only)
{
	struct timespec times[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
	int fd, r;

	h_mount();
	h_service("web.sock");
	r = mkdir(h_b("grp"), 0755);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("web/state")));
	cr_assert(h_wait_exists(h_m("grp")));

	DENIED(mkdir(h_m("newdir"), 0755), "mkdir MNT/newdir");
	DENIED(mkdir(h_m("web/newdir"), 0755), "mkdir MNT/web/newdir");
	DENIED(open(h_m("newfile"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644), "create MNT/newfile");
	DENIED(open(h_m("web/newfile"), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644),
	       "create MNT/web/newfile");
	DENIED(mkfifo(h_m("fifo"), 0644), "mkfifo MNT/fifo");
	DENIED(symlink("web", h_m("lnk")), "symlink MNT/lnk");
	DENIED(link(h_m("web/state"), h_m("web/state2")), "link MNT/web/state");
	DENIED(unlink(h_m("web/state")), "unlink MNT/web/state");
	DENIED(unlink(h_m("web/socket")), "unlink MNT/web/socket");
	DENIED(unlink(h_m(".services.json")), "unlink MNT/.services.json");
	DENIED(rmdir(h_m("web")), "rmdir MNT/web");
	DENIED(rmdir(h_m("grp")), "rmdir MNT/grp (an empty group)");
	DENIED(rename(h_m("web"), h_m("web2")), "rename MNT/web");
	DENIED(rename(h_m("web/state"), h_m("web/state2")), "rename MNT/web/state");
	DENIED(rename(h_m("web"), h_m("grp/web")), "rename MNT/web into a group");
	DENIED(truncate(h_m("web/state"), 0), "truncate MNT/web/state");
	DENIED(chmod(h_m("web"), 0777), "chmod MNT/web");
	DENIED(chmod(h_m("web/state"), 0666), "chmod MNT/web/state");
	DENIED(chown(h_m("web/state"), 1, 1), "chown MNT/web/state");
	DENIED(utimensat(AT_FDCWD, h_m("web/state"), times, 0), "utimensat MNT/web/state");
	DENIED(setxattr(h_m("web"), "user.svcfs.state", "dead", 4, 0), "setxattr user.svcfs.state");
	DENIED(setxattr(h_m("web"), "user.new", "x", 1, 0), "setxattr user.new");
	DENIED(removexattr(h_m("web"), "user.svcfs.state"), "removexattr user.svcfs.state");

	/* writing: refused at open or at write, never accepted */
	fd = open(h_m("web/state"), O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		cr_expect(e == EACCES || e == EROFS, "open O_WRONLY: %s", strerror(e));
	} else {
		DENIED(write(fd, "dead\n", 5), "write to MNT/web/state");
		DENIED(pwrite(fd, "dead\n", 5, 0), "pwrite to MNT/web/state");
		DENIED(fallocate(fd, 0, 0, 4096), "fallocate MNT/web/state");
		close(fd);
	}
	fd = open(h_m(".services.json"), O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		DENIED(write(fd, "[]\n", 3), "write to MNT/.services.json");
		close(fd);
	}

	/* nothing changed, the daemon lives */
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	cr_assert(h_wait_exists(h_m("web/socket")));
	cr_assert(h_wait_gone(h_m("newdir")));
	cr_assert(h_wait_gone(h_m("newfile")));
	cr_assert(h_wait_gone(h_m("web2")));
	h_assert_daemon_alive();
	h_service("after.sock");
	cr_assert(h_wait_exists(h_m("after/state")), "the daemon stopped following BACKING");
}

/*
 * `: > MNT/web/state` as root. The kernel negotiates atomic O_TRUNC and,
 * as svcfs answers OPEN with ENOSYS (no_open), truncates on its own
 * without asking the daemon: unless the daemon declines atomic O_TRUNC
 * (so that the kernel sends a SETATTR it refuses), this open succeeds.
 */
Test(access, open_with_o_trunc_is_refused)
{
	char *s;
	int fd, e;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	fd = open(h_m("web/state"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	e = errno;
	if (fd >= 0)
		close(fd);
	s = h_slurp(h_m("web/state"));
	cr_expect_not_null(s);
	cr_expect_str_eq(s ? s : "", "alive\n", "the content changed");
	free(s);
	h_assert_daemon_alive();
	cr_assert_lt(fd, 0, "open(O_WRONLY|O_CREAT|O_TRUNC) of MNT/web/state succeeded");
	cr_assert(e == EACCES || e == EROFS, "open O_TRUNC: %s", strerror(e));
}

/*
 * Root opens a file read-write (svcfs answers OPEN with ENOSYS, so the
 * kernel never asks) and writes through a shared mapping. msync reports
 * the daemon's EACCES, but the pages the kernel keeps must not go on
 * showing what root wrote: every reader must still read the daemon's text.
 */
Test(access, shared_mapping_cannot_change_content)
{
	char *p, *s;
	int fd, r;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	fd = open(h_m("web/state"), O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = errno;
		cr_assert(r == EACCES || r == EROFS, "open O_RDWR: %s", strerror(r));
		return; /* refused at open: nothing can be written */
	}
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p != MAP_FAILED) {
		memcpy(p, "dead\n", 5);
		r = msync(p, 4096, MS_SYNC);
		cr_expect_eq(r, -1, "msync of a written mapping succeeded");
		munmap(p, 4096);
	}
	close(fd);
	/*
	 * The refused WRITE makes the daemon drop those pages; it cannot do it
	 * inside the handler (writeback holds the page), so a reader may see
	 * the bytes for a moment (README): what matters is that they go.
	 */
	s = h_slurp(h_m("web/state"));
	cr_assert_not_null(s);
	free(s);
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"),
		  "the content written through mmap stayed visible");
	h_assert_daemon_alive();
}

/*
 * The root of the mount takes BACKING's owner and mode less write bits
 * (README). A chmod of BACKING after mount must show, or an admin who
 * closes BACKING (0700) leaves the view open to everyone.
 */
Test(access, root_follows_backing_mode)
{
	struct stat st;
	bool ok = false;
	int r;

	h_mount_opts("allow_other,probe_interval=0.5", NULL);
	r = stat(H.mnt, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode & 07777, 0555);
	r = chmod(H.backing, 0700);
	cr_assert_eq(r, 0);
	for (int i = 0; i < 500 && !ok; i++) { /* up to 5 s: ten probe intervals */
		r = stat(H.mnt, &st);
		cr_assert_eq(r, 0);
		ok = (st.st_mode & 07777) == 0500;
		if (!ok)
			h_sleep_ms(10);
	}
	cr_assert(ok, "MNT stays mode %o after chmod 0700 BACKING", st.st_mode & 07777);
	r = h_as_user(OTHER_UID, OTHER_UID, 0, open_dir, H.mnt);
	cr_assert_eq(r, EACCES, "another user still lists MNT after chmod 0700 BACKING: %d", r);
	h_assert_daemon_alive();
}

static int try_writes(const void *arg)
{
	(void)arg;
	if (mkdir(h_m("x"), 0755) == 0 || errno != EACCES)
		return 1;
	if (unlink(h_m("pub/state")) == 0 || errno != EACCES)
		return 2;
	if (open(h_m("pub/state"), O_WRONLY | O_CLOEXEC) >= 0 || errno != EACCES)
		return 3;
	if (rename(h_m("pub"), h_m("pub2")) == 0 || errno != EACCES)
		return 4;
	return 0;
}

Test(access, read_only_for_other_users)
{
	int r;

	h_mount_opts("allow_other", NULL);
	h_service_start("pub.sock", &(struct h_service_opts){.mode = 0666});
	cr_assert(h_wait_exists(h_m("pub/state")));
	r = h_as_user(OTHER_UID, OTHER_UID, 0, try_writes, NULL);
	cr_assert_eq(r, 0, "a change by another user was not refused with EACCES (step %d)", r);
	h_assert_daemon_alive();
}
