/*
 * services — which files of BACKING become service directories (SPEC §2)
 * and what a service directory holds (SPEC §4): the socket symlink one can
 * connect through, pid/uid/gid of the listener, state and since.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(services, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);

static char *read_link(const char *path)
{
	char buf[PATH_MAX];
	ssize_t n = readlink(path, buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

static char *pid_line(pid_t pid)
{
	static char buf[32];

	snprintf(buf, sizeof(buf), "%ld\n", (long)pid);
	return buf;
}

/*
 * Remount with a short probe interval, for what only the periodic check
 * can see: a bound of a few intervals stays short.
 */
static void remount_fast(void)
{
	h_daemon_stop();
	h_mount_opts("probe_interval=0.5", NULL);
}

/* The greeting of the service behind LINK, read through the mount. */
static void assert_connects(const char *link, int type)
{
	char buf[64];
	int r = h_connect_read(link, type, buf, sizeof(buf));

	cr_assert_eq(r, 0, "connect through %s: %s", link, strerror(-r));
	cr_assert_str_eq(buf, "hello\n", "greeting through %s", link);
}

Test(services, appears_with_socket_owner_state_since)
{
	time_t t0 = time(NULL), t1;
	pid_t pid = h_service("web.sock");
	struct stat st;
	struct tm tm = {0};
	char *link, *since, *end, **names = NULL;
	bool ok = h_wait_exists(h_m("web"));
	int n, r;

	cr_assert(ok, "MNT/web did not appear");
	r = stat(h_m("web"), &st);
	cr_assert_eq(r, 0);
	cr_assert(S_ISDIR(st.st_mode), "MNT/web is not a directory");

	link = read_link(h_m("web/socket"));
	cr_assert_not_null(link, "readlink MNT/web/socket: %s", strerror(errno));
	cr_assert_str_eq(link, h_b("web.sock"));
	free(link);
	assert_connects(h_m("web/socket"), SOCK_STREAM);

	cr_assert(h_wait_content(h_m("web/pid"), pid_line(pid)), "pid is not %ld", (long)pid);
	cr_assert(h_wait_content(h_m("web/uid"), "0\n"));
	cr_assert(h_wait_content(h_m("web/gid"), "0\n"));
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));

	since = h_slurp(h_m("web/since"));
	cr_assert_not_null(since, "read since: %s", strerror(errno));
	end = strptime(since, "%Y-%m-%dT%H:%M:%SZ", &tm);
	cr_assert(end && strcmp(end, "\n") == 0, "since is not RFC 3339 UTC: '%s'", since);
	t1 = time(NULL);
	cr_assert(timegm(&tm) >= t0 - 1 && timegm(&tm) <= t1 + 1,
		  "since %s is not between the service's start and now", since);
	free(since);

	/* no sidecar: exactly the files svcfs found */
	n = h_list(h_m("web"), &names);
	cr_assert_eq(n, 7, "MNT/web lists %d files", n);
	cr_assert(h_strv_contains(names, "socket") && h_strv_contains(names, "meta.json") &&
		  h_strv_contains(names, "pid") && h_strv_contains(names, "uid") &&
		  h_strv_contains(names, "gid") && h_strv_contains(names, "state") &&
		  h_strv_contains(names, "since"));
	h_strv_free(names);
	r = lstat(h_m("web/socket"), &st);
	cr_assert(r == 0 && S_ISLNK(st.st_mode), "socket is not a symlink");
	r = lstat(h_m("web/state"), &st);
	cr_assert(r == 0 && S_ISREG(st.st_mode) && st.st_size == 6, "state: not a 6-byte file");
	h_assert_daemon_alive();
}

Test(services, vanishes_when_socket_file_removed)
{
	int r;

	h_service("web.sock");
	h_service("other.sock");
	cr_assert(h_wait_exists(h_m("web")));
	cr_assert(h_wait_exists(h_m("other")));
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web")), "MNT/web stayed after its socket file was removed");
	cr_assert(h_wait_listed(H.mnt, "web", false));
	/* the process still listens on the unlinked socket: it must not come back */
	h_sleep_ms(500);
	r = access(h_m("web"), F_OK);
	cr_assert_eq(r, -1);
	cr_assert(h_wait_exists(h_m("other/state")), "the other service left too");
	h_assert_daemon_alive();
}

Test(services, replaced_socket_shows_new_owner)
{
	pid_t old = h_service("web.sock"), new;
	int r;

	cr_assert(h_wait_content(h_m("web/pid"), pid_line(old)));
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	new = h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(new)),
		  "pid did not change from %ld to %ld after the socket was replaced", (long)old,
		  (long)new);
	assert_connects(h_m("web/socket"), SOCK_STREAM);
	h_assert_daemon_alive();
}

Test(services, replaced_by_rename_shows_new_owner)
{
	pid_t old = h_service("web.sock"), new;
	int r;

	cr_assert(h_wait_content(h_m("web/pid"), pid_line(old)));
	/* the usual atomic restart: bind a hidden name, rename over the old socket */
	new = h_service(".web.sock.new");
	r = rename(h_b(".web.sock.new"), h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_content(h_m("web/pid"), pid_line(new)),
		  "pid did not change from %ld to %ld after rename", (long)old, (long)new);
	h_assert_daemon_alive();
}

Test(services, bound_but_not_listening_is_not_a_service)
{
	struct h_service_opts idle = {.no_listen = true};
	int r;

	h_service_start("idle.sock", &idle);
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control")), "the listening control did not appear");
	/* past the quick retries and one full probe interval (default 2 s) */
	h_sleep_ms(2500);
	r = access(h_m("idle"), F_OK);
	cr_assert_eq(r, -1, "a socket that never listens appeared");
	cr_assert(h_wait_listed(H.mnt, "idle", false));
	h_assert_daemon_alive();
}

Test(services, socket_that_listens_late_appears)
{
	struct h_service_opts late = {.listen_on_usr1 = true, .greeting = "hello\n"};
	pid_t pid = h_service_start("late.sock", &late);
	int r;

	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control")));
	r = access(h_m("late"), F_OK);
	cr_assert_eq(r, -1, "visible before it listens");
	kill(pid, SIGUSR1);
	cr_assert(h_wait_exists(h_m("late/state")), "did not appear once it listened");
	assert_connects(h_m("late/socket"), SOCK_STREAM);
	h_assert_daemon_alive();
}

Test(services, dgram_socket_appears)
{
	struct h_service_opts dgram = {.type = SOCK_DGRAM};

	h_service_start("logs.sock", &dgram);
	cr_assert(h_wait_exists(h_m("logs")), "a bound dgram socket did not appear");
	cr_assert(h_wait_content(h_m("logs/state"), "alive\n"));
	h_assert_daemon_alive();
}

Test(services, seqpacket_socket_appears)
{
	struct h_service_opts seq = {.type = SOCK_SEQPACKET, .greeting = "hello\n"};
	pid_t pid = h_service_start("seq.sock", &seq);

	cr_assert(h_wait_exists(h_m("seq")), "a listening seqpacket socket did not appear");
	cr_assert(h_wait_content(h_m("seq/pid"), pid_line(pid)));
	cr_assert(h_wait_content(h_m("seq/state"), "alive\n"));
	assert_connects(h_m("seq/socket"), SOCK_SEQPACKET);
	h_assert_daemon_alive();
}

Test(services, socket_without_suffix_is_named_by_its_file)
{
	h_service("plain");
	cr_assert(h_wait_exists(h_m("plain/socket")));
	assert_connects(h_m("plain/socket"), SOCK_STREAM);
	h_assert_daemon_alive();
}

/* X.sock wins over a socket named plain X. */
Test(services, suffixed_socket_wins_over_plain_name)
{
	pid_t suffixed = h_service("dup.sock");
	char want[32];

	h_service("dup");
	snprintf(want, sizeof(want), "%ld\n", (long)suffixed);
	cr_assert(h_wait_exists(h_m("dup/pid")));
	h_sleep_ms(200);
	cr_assert(h_wait_content(h_m("dup/pid"), want), "MNT/dup is not the dup.sock service");
	h_assert_daemon_alive();
}

Test(services, symlink_to_socket_elsewhere_is_a_service)
{
	pid_t pid;
	char *link;
	int r;

	r = mkdir(h_r("xyz"), 0755);
	cr_assert_eq(r, 0);
	pid = h_service(h_r("xyz/real.sock"));
	r = symlink(h_r("xyz/real.sock"), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("docker")), "a symlink to a live socket did not appear");
	link = read_link(h_m("docker/socket"));
	cr_assert_not_null(link);
	cr_assert_str_eq(link, h_b("docker.sock"));
	free(link);
	assert_connects(h_m("docker/socket"), SOCK_STREAM);
	cr_assert(h_wait_content(h_m("docker/pid"), pid_line(pid)));
	h_assert_daemon_alive();
}

Test(services, other_files_are_ignored)
{
	char **names = NULL;
	char *err;
	int n, r, fd;

	h_service(".hidden.sock"); /* a live socket, but hidden */
	r = symlink("/nonexistent/nothing.sock", h_b("dangling.sock"));
	cr_assert_eq(r, 0);
	fd = open(h_b("file.sock"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	close(fd);
	r = mkfifo(h_b("fifo.sock"), 0644);
	cr_assert_eq(r, 0);
	r = mkfifo(h_b("fifo"), 0644);
	cr_assert_eq(r, 0);
	r = symlink("loop.sock", h_b("loop.sock"));
	cr_assert_eq(r, 0);
	r = symlink(H.root, h_b("dirlink.sock"));
	cr_assert_eq(r, 0);
	r = symlink(H.root, h_b("dirlink"));
	cr_assert_eq(r, 0);
	h_write_atomic("notes.txt", "not a service\n");
	h_service("control.sock");
	cr_assert(h_wait_exists(h_m("control")));
	h_sleep_ms(300);

	n = h_list(H.mnt, &names);
	cr_assert_eq(n, 3,
		     "the root lists %d entries, expected .services.json .targets.json control", n);
	cr_assert(h_strv_contains(names, "control") && h_strv_contains(names, ".services.json") &&
		  h_strv_contains(names, ".targets.json"));
	h_strv_free(names);
	r = access(h_m(".hidden"), F_OK);
	cr_assert_eq(r, -1);

	/* ignored, never an error */
	err = h_daemon_stderr();
	cr_assert_not_null(err);
	cr_assert_null(strstr(err, "dangling"), "stderr mentions the dangling symlink:\n%s", err);
	cr_assert_null(strstr(err, "fifo"), "stderr mentions the FIFO:\n%s", err);
	cr_assert_null(strstr(err, "file.sock"), "stderr mentions the regular file:\n%s", err);
	cr_assert_null(strstr(err, "loop"), "stderr mentions the symlink loop:\n%s", err);
	cr_assert_null(strstr(err, "dirlink"), "stderr mentions the symlink to a directory:\n%s",
		       err);
	free(err);
	h_assert_daemon_alive();
}

/* A name of LEN bytes: "long-" then x's. */
static char *long_name(size_t len)
{
	char *s = malloc(len + 1);

	cr_assert_not_null(s);
	memset(s, 'x', len);
	memcpy(s, "long-", 5);
	s[len] = '\0';
	return s;
}

Test(services, name_longer_than_sun_path)
{
	char *name = long_name(250); /* 250 + ".sock": the longest file name */
	char *link;

	h_service(h_b("%s.sock", name));
	cr_assert(h_wait_exists(h_m("%s", name)), "a service with a 250-byte name did not appear");
	link = read_link(h_m("%s/socket", name));
	cr_assert_not_null(link);
	cr_assert_str_eq(link, h_b("%s.sock", name));
	free(link);
	assert_connects(h_m("%s/socket", name), SOCK_STREAM);
	free(name);
	h_assert_daemon_alive();
}

Test(services, long_name_through_symlink)
{
	char *name = long_name(200);
	int r;

	h_service(h_r("short.sock"));
	r = symlink(h_r("short.sock"), h_b("%s.sock", name));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("%s/state", name)));
	assert_connects(h_m("%s/socket", name), SOCK_STREAM);
	free(name);
	h_assert_daemon_alive();
}

Test(services, vanishes_when_owner_exits)
{
	pid_t pid = h_service("web.sock");

	cr_assert(h_wait_exists(h_m("web")));
	h_kill(pid);
	/* the socket file stays in BACKING; nobody listens any more */
	cr_assert(h_wait_gone(h_m("web")), "MNT/web stayed after its owner was killed");
	h_assert_daemon_alive();
}

/*
 * The target of a symlinked service is replaced (say, docker restarted:
 * the old daemon exits, a new one binds /var/run/docker.sock again). The
 * symlink in BACKING never changes, so no event comes from BACKING; the
 * service must still come back, owned by the new process.
 */
Test(services, symlinked_target_replaced)
{
	pid_t old, new;
	char want[32];
	bool ok;
	int r;

	remount_fast();

	r = mkdir(h_r("xyz"), 0755);
	cr_assert_eq(r, 0);
	old = h_service(h_r("xyz/real.sock"));
	r = symlink(h_r("xyz/real.sock"), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	snprintf(want, sizeof(want), "%ld\n", (long)old);
	cr_assert(h_wait_content(h_m("docker/pid"), want));
	h_kill(old);
	r = unlink(h_r("xyz/real.sock"));
	cr_assert_eq(r, 0);
	new = h_service(h_r("xyz/real.sock"));
	snprintf(want, sizeof(want), "%ld\n", (long)new);
	ok = h_wait_content(h_m("docker/pid"), want);
	cr_assert(ok, "the symlinked service did not come back with its new owner (MNT/docker %s)",
		  access(h_m("docker"), F_OK) == 0 ? "still shows the old owner" : "is gone");
	assert_connects(h_m("docker/socket"), SOCK_STREAM);
	h_assert_daemon_alive();
}

/*
 * The target of a symlinked service is removed while its process still
 * listens on the orphaned socket: the symlink now dangles, which SPEC §2
 * says is not a service, and connect() through MNT/docker/socket fails.
 */
Test(services, symlinked_target_removed)
{
	char buf[16];
	int r;

	remount_fast();

	r = mkdir(h_r("xyz"), 0755);
	cr_assert_eq(r, 0);
	h_service(h_r("xyz/real.sock"));
	r = symlink(h_r("xyz/real.sock"), h_b("docker.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_exists(h_m("docker/state")));
	r = unlink(h_r("xyz/real.sock"));
	cr_assert_eq(r, 0);
	r = h_connect_read(h_b("docker.sock"), SOCK_STREAM, buf, sizeof(buf));
	cr_assert_eq(r, -ENOENT, "the dangling symlink still connects?");
	cr_assert(h_wait_gone(h_m("docker")),
		  "a service whose symlink dangles stayed in the mount");
	h_assert_daemon_alive();
}

Test(services, poll_mode_follows_backing)
{
	int r;

	/* remount with -o poll: no inotify, BACKING is rescanned every 0.2 s */
	h_daemon_stop();
	h_mount_opts("poll=0.2", NULL);
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")), "poll mode did not find a new service");
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web")), "poll mode did not see the socket file go");
	h_assert_daemon_alive();
}

/*
 * A service restarts: the old process dies, the new one unlinks the stale
 * socket file and binds the same name. On ext4 the new file usually gets
 * the inode number the old one just freed. If svcfs handles the unlink
 * only after the new bind (a busy daemon; made certain here by stopping it
 * for the restart), the (dev, inode) it knows still matches, a socket is
 * listening there — and the entry must still be the new service, owned by
 * the new process, not the old record with a dead pid.
 */
Test(services, restart_reusing_the_inode_number)
{
	struct stat before, after;
	pid_t old, new;
	char want[32];
	bool ok;
	int r;

	remount_fast();

	old = h_service("web.sock");
	snprintf(want, sizeof(want), "%ld\n", (long)old);
	cr_assert(h_wait_content(h_m("web/pid"), want));
	r = stat(h_b("web.sock"), &before);
	cr_assert_eq(r, 0);

	kill(H.daemon, SIGSTOP);
	h_kill(old);
	r = unlink(h_b("web.sock"));
	new = h_service("web.sock");
	kill(H.daemon, SIGCONT);
	cr_assert_eq(r, 0);
	r = stat(h_b("web.sock"), &after);
	cr_assert_eq(r, 0);
	cr_log_info("inode before %lu, after %lu%s", (unsigned long)before.st_ino,
		    (unsigned long)after.st_ino, before.st_ino == after.st_ino ? " (reused)" : "");

	snprintf(want, sizeof(want), "%ld\n", (long)new);
	ok = h_wait_content(h_m("web/pid"), want);
	if (!ok) {
		char *pid = h_slurp(h_m("web/pid"));
		cr_log_error("MNT/web/pid reads '%s' (old owner %ld, new %ld)", pid ? pid : "?",
			     (long)old, (long)new);
		free(pid);
	}
	cr_assert(ok, "a restarted service kept the record of its dead predecessor%s",
		  before.st_ino == after.st_ino ? " (inode number reused)" : "");
	h_assert_daemon_alive();
}

/* BACKING itself longer than sun_path: svcfs must still reach the listener (its owner). */
Test(services, backing_path_longer_than_sun_path)
{
	char deep[PATH_MAX], want[32];
	size_t len;
	pid_t pid;
	int r;

	h_daemon_stop();
	snprintf(deep, sizeof(deep), "%s", H.root);
	while ((len = strlen(deep)) < 160) {
		snprintf(deep + len, sizeof(deep) - len, "/%s", "a-rather-long-directory-name");
		r = mkdir(deep, 0755);
		cr_assert_eq(r, 0, "mkdir %s: %s", deep, strerror(errno));
	}
	h_mount_opts(NULL, deep);
	pid = h_service(h_r("%s/web.sock", deep + strlen(H.root) + 1));
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	cr_assert(h_wait_content(h_m("web/pid"), want),
		  "with a %zu-byte BACKING the owner was not found", strlen(deep));
	assert_connects(h_m("web/socket"), SOCK_STREAM);
	h_assert_daemon_alive();
}
