/*
 * groups — subdirectories of BACKING are groups (SPEC §2, §4): mirrored as
 * directories of the mount, followed as they come and go, nested up to
 * depth 8.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(groups, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);

static void mkdir_b(const char *rel)
{
	int r = mkdir(h_b("%s", rel), 0755);

	cr_assert_eq(r, 0, "mkdir BACKING/%s: %s", rel, strerror(errno));
}

Test(groups, service_in_group)
{
	char link[PATH_MAX];
	ssize_t n;
	struct stat st;
	int r;

	mkdir_b("workers");
	h_service("workers/w1.sock");
	cr_assert(h_wait_exists(h_m("workers/w1/state")), "MNT/workers/w1 did not appear");
	r = stat(h_m("workers"), &st);
	cr_assert(r == 0 && S_ISDIR(st.st_mode));
	n = readlink(h_m("workers/w1/socket"), link, sizeof(link) - 1);
	cr_assert_gt(n, 0);
	link[n] = '\0';
	cr_assert_str_eq(link, h_b("workers/w1.sock"));
	r = access(h_m("w1"), F_OK);
	cr_assert_eq(r, -1, "a grouped service also appeared at the top level");
	h_assert_daemon_alive();
}

Test(groups, group_created_after_mount)
{
	mkdir_b("late");
	cr_assert(h_wait_exists(h_m("late")), "a group created after mount did not appear");
	h_service("late/svc.sock");
	cr_assert(h_wait_exists(h_m("late/svc/state")));
	cr_assert(h_wait_listed(h_m("late"), "svc", true));
	h_assert_daemon_alive();
}

Test(groups, group_removed)
{
	pid_t pid;
	int r;

	mkdir_b("g");
	pid = h_service("g/s.sock");
	cr_assert(h_wait_exists(h_m("g/s/state")));
	h_kill(pid);
	r = unlink(h_b("g/s.sock"));
	cr_assert_eq(r, 0);
	r = rmdir(h_b("g"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("g")), "MNT/g stayed after BACKING/g was removed");
	cr_assert(h_wait_listed(H.mnt, "g", false));
	h_assert_daemon_alive();
}

Test(groups, group_with_live_service_removed)
{
	int r;

	mkdir_b("g");
	h_service("g/s.sock"); /* stays alive, its file goes */
	cr_assert(h_wait_exists(h_m("g/s/state")));
	r = unlink(h_b("g/s.sock"));
	cr_assert_eq(r, 0);
	r = rmdir(h_b("g"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("g")));
	h_assert_daemon_alive();
}

Test(groups, group_renamed)
{
	int r;

	mkdir_b("old");
	h_service("old/s.sock");
	cr_assert(h_wait_exists(h_m("old/s/state")));
	r = rename(h_b("old"), h_b("new"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("new/s/state")), "the renamed group's service did not appear");
	cr_assert(h_wait_gone(h_m("old")), "the old group name stayed");
	h_assert_daemon_alive();
}

Test(groups, nested_groups)
{
	char link[PATH_MAX];
	ssize_t n;

	mkdir_b("a");
	mkdir_b("a/b");
	h_service("a/b/c.sock");
	h_service("a/top.sock");
	cr_assert(h_wait_exists(h_m("a/b/c/state")), "MNT/a/b/c did not appear");
	cr_assert(h_wait_exists(h_m("a/top/state")));
	n = readlink(h_m("a/b/c/socket"), link, sizeof(link) - 1);
	cr_assert_gt(n, 0);
	link[n] = '\0';
	cr_assert_str_eq(link, h_b("a/b/c.sock"));
	/* created after mount, nested at once */
	mkdir_b("x");
	mkdir_b("x/y");
	mkdir_b("x/y/z");
	h_service("x/y/z/deep.sock");
	cr_assert(h_wait_exists(h_m("x/y/z/deep/state")));
	h_assert_daemon_alive();
}

Test(groups, depth_limit_is_eight)
{
	char rel[64] = "";
	int r;

	/* BACKING/1/2/.../8 is a group of depth 8; 8/9 would be depth 9 */
	for (int i = 1; i <= 9; i++) {
		size_t l = strlen(rel);
		snprintf(rel + l, sizeof(rel) - l, "%s%d", l ? "/" : "", i);
		mkdir_b(rel);
	}
	h_service("1/2/3/4/5/6/7/8/at8.sock");
	h_service("1/2/3/4/5/6/7/8/9/at9.sock");
	cr_assert(h_wait_exists(h_m("1/2/3/4/5/6/7/8/at8/state")),
		  "a service in a group of depth 8 did not appear");
	h_sleep_ms(300);
	r = access(h_m("1/2/3/4/5/6/7/8/9"), F_OK);
	cr_assert_eq(r, -1, "a group of depth 9 appeared");
	h_assert_daemon_alive();
}

Test(groups, hidden_group_ignored)
{
	int r;

	mkdir_b(".private");
	h_service(".private/s.sock");
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control")));
	h_sleep_ms(200);
	r = access(h_m(".private"), F_OK);
	cr_assert_eq(r, -1, "a hidden directory became a group");
	h_assert_daemon_alive();
}

struct attrs_ctx {
	const char *path;
	struct stat st;
	int r;
};

/* PATH exists, 12345:12345, mode 0550: its attributes followed the chown and the chmod. */
static bool followed(void *ctx)
{
	struct attrs_ctx *c = ctx;

	c->r = stat(c->path, &c->st);
	return c->r == 0 && c->st.st_uid == 12345 && c->st.st_gid == 12345 &&
	       (c->st.st_mode & 07777) == 0550;
}

Test(groups, group_attributes_follow_backing)
{
	struct attrs_ctx c = {0};
	struct stat st;
	int r;

	mkdir_b("team");
	r = chown(h_b("team"), 12345, 12345);
	cr_assert_eq(r, 0);
	r = chmod(h_b("team"), 0750);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("team")));
	/* the group may show first as mkdir made it, then follow the chown and the chmod */
	c.path = h_m("team");
	h_wait_until(followed, &c, H_TIMEOUT_MS);
	cr_assert_eq(c.r, 0);
	st = c.st;
	cr_assert_eq(st.st_uid, 12345);
	cr_assert_eq(st.st_gid, 12345);
	cr_assert_eq(st.st_mode & 07777, 0550, "group mode %o, expected 0550 (read-only 0750)",
		     st.st_mode & 07777);
	h_assert_daemon_alive();
}

/*
 * A group directory and a service of the same name, BACKING/x/ and
 * BACKING/x.sock: observed (and documented here) — the group wins; the
 * service shows again once the group is gone.
 */
Test(groups, group_and_service_of_the_same_name)
{
	char **names = NULL;
	int n, r;

	h_service("x.sock");
	cr_assert(h_wait_exists(h_m("x/state")));
	mkdir_b("x");
	h_service("x/inner.sock");
	cr_assert(h_wait_exists(h_m("x/inner/state")), "the group x did not take the name");
	n = h_list(h_m("x"), &names);
	cr_assert_eq(n, 1, "MNT/x lists %d entries: the group should hold only inner", n);
	h_strv_free(names);
	r = access(h_m("x/state"), F_OK);
	cr_assert_eq(r, -1, "the service x still shows inside the group x");

	/* the group goes: the service x is back */
	r = unlink(h_b("x/inner.sock"));
	cr_assert_eq(r, 0);
	r = rmdir(h_b("x"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("x/state")),
		  "the service x did not return after its group left");
	h_assert_daemon_alive();
}

Test(groups, group_exists_before_its_service_of_the_same_name)
{
	int r;

	mkdir_b("y");
	cr_assert(h_wait_exists(h_m("y")));
	h_service("y.sock");
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control/state")));
	h_sleep_ms(200);
	r = access(h_m("y/state"), F_OK);
	cr_assert_eq(r, -1, "the service y shows inside the group y");
	h_assert_daemon_alive();
}

Test(groups, group_moved_in_with_live_services)
{
	int r;

	r = mkdir(h_r("outside"), 0755);
	cr_assert_eq(r, 0);
	r = mkdir(h_r("outside/sub"), 0755);
	cr_assert_eq(r, 0);
	h_service(h_r("outside/a.sock"));
	h_service(h_r("outside/sub/b.sock"));
	r = rename(h_r("outside"), h_b("moved"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("moved/a/state")),
		  "a group moved into BACKING was not scanned");
	cr_assert(h_wait_exists(h_m("moved/sub/b/state")));
	/* and out again */
	r = rename(h_b("moved"), h_r("outside"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("moved")), "a group moved out of BACKING stayed");
	h_assert_daemon_alive();
}

Test(groups, sidecar_in_group)
{
	int r = mkdir(h_b("g"), 0755);

	cr_assert_eq(r, 0);
	h_write_atomic("g/s.json", "{\"version\": \"7\"}");
	h_service("g/s.sock");
	cr_assert(h_wait_content(h_m("g/s/version"), "7\n"));
	h_write_atomic("g/s.json", "{\"version\": \"8\"}");
	cr_assert(h_wait_content(h_m("g/s/version"), "8\n"));
	h_assert_daemon_alive();
}

/* find(1) trusts st_nlink (2 + subdirectories) to skip leaves: it must be right. */
Test(groups, find_sees_every_service)
{
	char cmd[PATH_MAX + 64], out[64] = "";
	const char *const socks[] = {"top.sock",       "a/one.sock",	  "a/two.sock",
				     "a/b/three.sock", "a/b/c/four.sock", "d/five.sock"};
	size_t n = sizeof(socks) / sizeof(socks[0]);
	FILE *p;
	int r;

	mkdir_b("a");
	mkdir_b("a/b");
	mkdir_b("a/b/c");
	mkdir_b("d");
	mkdir_b("empty");
	for (size_t i = 0; i < n; i++)
		h_service(socks[i]);
	cr_assert(h_wait_exists(h_m("a/b/c/four/state")));
	cr_assert(h_wait_exists(h_m("d/five/state")));
	for (size_t i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s", socks[i]);
		name[strlen(name) - 5] = '\0';
		cr_assert(h_wait_exists(h_m("%s/state", name)), "%s did not appear", name);
	}
	snprintf(cmd, sizeof(cmd), "find '%s' -name state | wc -l", H.mnt);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	if (!fgets(out, sizeof(out), p))
		out[0] = '\0';
	r = pclose(p);
	cr_assert_eq(r, 0);
	cr_assert_eq(atoi(out), (int)n, "find saw %d services of %zu", atoi(out), n);
	h_assert_daemon_alive();
}
