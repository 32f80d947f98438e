/*
 * cache — the kernel keeps entries, attributes, pages and listings of the
 * mount for a long time; every change in BACKING must still show. Each
 * test warms the caches first (repeated stat/cat/readdir), then changes
 * BACKING and waits for the new state. Also: a thousand services, cold
 * (first access after mount) and warm, and the max_services bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(cache, .init = h_setup, .fini = h_teardown, .timeout = 90);

static void warm_stat(const char *path, int n)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		int r = stat(path, &st);
		cr_assert_eq(r, 0, "stat %s: %s", path, strerror(errno));
	}
}

static void warm_list(const char *dir, int n)
{
	for (int i = 0; i < n; i++) {
		char **names = NULL;
		int r = h_list(dir, &names);
		cr_assert_geq(r, 0, "readdir %s: %s", dir, strerror(-r));
		h_strv_free(names);
	}
}

static void warm_read(const char *path, int n)
{
	for (int i = 0; i < n; i++) {
		char *s = h_slurp(path);
		cr_assert_not_null(s, "read %s: %s", path, strerror(errno));
		free(s);
	}
}

Test(cache, vanished_service_lookup_fails)
{
	struct stat st;
	int r;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	warm_stat(h_m("web"), 50);
	warm_stat(h_m("web/state"), 50);
	warm_read(h_m("web/state"), 20);
	warm_list(h_m("web"), 5);
	warm_list(H.mnt, 5);
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web")), "a cached service directory stayed");
	r = stat(h_m("web/state"), &st);
	cr_assert_eq(r, -1, "a file of a vanished service can still be looked up");
	cr_assert_eq(errno, ENOENT);
	cr_assert(h_wait_listed(H.mnt, "web", false), "the cached listing still names it");
	h_assert_daemon_alive();
}

Test(cache, open_file_of_vanished_service)
{
	FILE *f;
	char buf[16];
	int r;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	f = fopen(h_m("web/state"), "re");
	cr_assert_not_null(f);
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web")));
	/* what it reads is not specified; the daemon must simply survive */
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/state"), "alive\n"));
	h_assert_daemon_alive();
}

Test(cache, new_service_appears_in_listed_directories)
{
	int r;

	h_mount();
	r = mkdir(h_b("grp"), 0755);
	cr_assert_eq(r, 0);
	h_service("first.sock");
	h_service("grp/first.sock");
	cr_assert(h_wait_exists(h_m("first/state")));
	cr_assert(h_wait_exists(h_m("grp/first/state")));
	warm_list(H.mnt, 20);
	warm_list(h_m("grp"), 20);
	warm_stat(h_m("grp"), 20);

	h_service("second.sock");
	h_service("grp/second.sock");
	cr_assert(h_wait_listed(H.mnt, "second", true), "a listed root did not show a new service");
	cr_assert(h_wait_listed(h_m("grp"), "second", true),
		  "a listed group did not show a new service");
	r = mkdir(h_b("grp2"), 0755);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_listed(H.mnt, "grp2", true), "a listed root did not show a new group");
	h_assert_daemon_alive();
}

Test(cache, missing_name_then_created)
{
	struct stat st;

	h_mount();
	for (int i = 0; i < 50; i++) {
		int r = stat(h_m("later"), &st);
		cr_assert_eq(r, -1);
	}
	h_service("later.sock");
	cr_assert(h_wait_exists(h_m("later/state")),
		  "a name looked up while missing never appeared");
	h_assert_daemon_alive();
}

Test(cache, service_returns_under_the_same_name)
{
	char want[32];
	pid_t pid;
	int r;

	h_mount();
	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	warm_read(h_m("web/version"), 10);
	warm_read(h_m("web/pid"), 10);
	r = unlink(h_b("web.sock"));
	cr_assert_eq(r, 0);
	cr_assert(h_wait_gone(h_m("web")));
	h_write_atomic("web.json", "{\"version\": \"2\"}");
	pid = h_service("web.sock");
	snprintf(want, sizeof(want), "%ld\n", (long)pid);
	cr_assert(h_wait_content(h_m("web/version"), "2\n"), "the old metadata came back");
	cr_assert(h_wait_content(h_m("web/pid"), want), "the old pid came back");
	h_assert_daemon_alive();
}

Test(cache, sidecar_rewrite_after_warm_stat)
{
	struct stat st;
	int r;

	h_mount();
	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	cr_assert(h_wait_content(h_m("web/version"), "1\n"));
	warm_stat(h_m("web/version"), 50);
	warm_read(h_m("web/version"), 20);
	warm_read(h_m("web/meta.json"), 20);
	h_write_atomic("web.json", "{\"version\": \"10.20.30\"}");
	cr_assert(h_wait_content(h_m("web/version"), "10.20.30\n"));
	r = stat(h_m("web/version"), &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_size, 9, "the cached size stayed %lld", (long long)st.st_size);
	h_assert_daemon_alive();
}

/* ---- many services ---- */

#define MANY 1000

static void assert_many_listed(void)
{
	char **names = NULL;
	int n = h_list(H.mnt, &names);

	cr_assert_eq(n, MANY + 2, "the root lists %d entries, expected %d services + 2", n, MANY);
	cr_assert(h_strv_contains(names, ".services.json") &&
		  h_strv_contains(names, ".targets.json"));
	for (unsigned i = 0; i < MANY; i++) {
		char name[32];
		snprintf(name, sizeof(name), "svc-%04u", i);
		cr_assert(h_strv_contains(names, name), "%s is not listed", name);
	}
	h_strv_free(names);
}

static void assert_many_stat(void)
{
	for (unsigned i = 0; i < MANY; i++) {
		struct stat st;
		int r = stat(h_m("svc-%04u", i), &st);
		cr_assert_eq(r, 0, "stat svc-%04u: %s", i, strerror(errno));
		cr_assert(S_ISDIR(st.st_mode));
		r = stat(h_m("svc-%04u/state", i), &st);
		cr_assert_eq(r, 0, "stat svc-%04u/state: %s", i, strerror(errno));
	}
}

Test(cache, thousand_services_cold_and_warm)
{
	json_object *all;

	h_services_many("", "svc-", MANY);
	h_mount();
	cr_assert(h_wait_count(H.mnt, MANY + 2, 30000), "the root never listed %d services", MANY);
	assert_many_listed(); /* cold */
	assert_many_stat();
	assert_many_listed(); /* warm */
	assert_many_stat();
	all = h_json_file(h_m(".services.json"));
	cr_assert_not_null(all);
	cr_assert_eq(json_object_array_length(all), MANY);
	json_object_put(all);
	h_assert_daemon_alive();
}

Test(cache, thousand_services_come_and_go)
{
	h_mount();
	warm_list(H.mnt, 3);
	h_services_many("", "svc-", MANY);
	cr_assert(h_wait_count(H.mnt, MANY + 2, 30000),
		  "the root never listed %d services created after mount", MANY);
	assert_many_listed();
	assert_many_stat();
	for (unsigned i = 0; i < MANY; i++) {
		int r = unlink(h_b("svc-%04u.sock", i));
		cr_assert_eq(r, 0);
	}
	cr_assert(h_wait_count(H.mnt, 2, 30000), "services stayed after their files were removed");
	h_assert_daemon_alive();
}

Test(cache, max_services_bounds_the_view)
{
	char **names = NULL;
	int n, r;

	h_mount_opts("max_services=2", NULL);
	h_service("a.sock");
	h_service("b.sock");
	h_service("c.sock");
	cr_assert(h_wait_log("max_services"), "no log line when max_services is reached");
	cr_assert(h_wait_count(H.mnt, 4, H_TIMEOUT_MS), "not exactly 2 services shown");
	n = h_list(H.mnt, &names);
	cr_assert_eq(n, 4);
	/* make room: the hidden one shows */
	{
		const char *shown = h_strv_contains(names, "a") ? "a" : "b";
		const char *hidden = !h_strv_contains(names, "a")   ? "a"
				     : !h_strv_contains(names, "b") ? "b"
								    : "c";
		r = unlink(h_b("%s.sock", shown));
		cr_assert_eq(r, 0);
		cr_assert(h_wait_exists(h_m("%s/state", hidden)),
			  "the hidden service did not show once there was room");
	}
	h_strv_free(names);
	cr_assert(h_wait_count(H.mnt, 4, H_TIMEOUT_MS));
	h_assert_daemon_alive();
}

/* ---- churn under readers ---- */

#define CHURN_MS 3000
#define CHURN_N	 40

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Bind CHURN_N sockets, remove them all, again and again. */
static void churn(void *arg)
{
	long long end = mono_ms() + CHURN_MS;
	int fds[CHURN_N];

	(void)arg;
	if (chdir(H.backing) < 0)
		_exit(1);
	while (mono_ms() < end) {
		for (int i = 0; i < CHURN_N; i++) {
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			snprintf(sa.sun_path, sizeof(sa.sun_path), "c-%02d.sock", i);
			fds[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
			    listen(fds[i], 16) < 0)
				_exit(2);
			if (i % 4 == 0) {
				char json[32];
				snprintf(json, sizeof(json), "c-%02d.json", i);
				int fd = open(json, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
				if (fd >= 0) {
					ssize_t w = write(fd, "{\"k\": 1}", 8);
					(void)w;
					close(fd);
				}
			}
		}
		for (int i = 0; i < CHURN_N; i++) {
			char name[32];
			snprintf(name, sizeof(name), "c-%02d.sock", i);
			unlink(name);
			close(fds[i]);
		}
	}
}

/* Walk the mount as a user would, ignoring the errors churn causes. */
static void reader(void *arg)
{
	long long end = mono_ms() + CHURN_MS;
	char buf[256];

	(void)arg;
	while (mono_ms() < end) {
		char **names = NULL;
		if (h_list(H.mnt, &names) < 0)
			continue;
		for (char **p = names; *p; p++) {
			char path[PATH_MAX], state[PATH_MAX];
			struct stat st;
			if (snprintf(path, sizeof(path), "%s/%s", H.mnt, *p) >= (int)sizeof(path) ||
			    snprintf(state, sizeof(state), "%s/state", path) >= (int)sizeof(state))
				continue;
			if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
			free(h_slurp(state));
			if (getxattr(path, "user.svcfs.pid", buf, sizeof(buf)) < 0) {
				/* gone meanwhile */
			}
			if (listxattr(path, buf, sizeof(buf)) < 0) {
				/* gone meanwhile, or a long list */
			}
		}
		h_strv_free(names);
		free(h_slurp(h_m(".services.json")));
	}
}

Test(cache, churn_under_readers_ends_correct)
{
	pid_t readers[3], churner;
	json_object *all;
	int st;

	h_mount();
	h_service("stable.sock");
	cr_assert(h_wait_exists(h_m("stable/state")));
	for (int i = 0; i < 3; i++)
		readers[i] = h_spawn(reader, NULL);
	churner = h_spawn(churn, NULL);
	st = h_join(churner, CHURN_MS + 20000);
	cr_assert(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the churner failed: %#x", st);
	for (int i = 0; i < 3; i++) {
		st = h_join(readers[i], CHURN_MS + 20000);
		cr_assert(st != -1, "a reader hung on the mount");
	}
	h_assert_daemon_alive();
	cr_assert(h_wait_count(H.mnt, 3, 10000), "churned services stayed in the mount");
	cr_assert(h_wait_content(h_m("stable/state"), "alive\n"));
	all = h_json_file(h_m(".services.json"));
	cr_assert_not_null(all);
	cr_assert_eq(json_object_array_length(all), 1, ".services.json: %s",
		     json_object_to_json_string(all));
	json_object_put(all);
}

Test(cache, backing_moved_away_and_back)
{
	char away[PATH_MAX];
	int r;

	h_mount();
	h_service("web.sock");
	cr_assert(h_wait_exists(h_m("web/state")));
	snprintf(away, sizeof(away), "%s", h_r("away"));
	r = rename(H.backing, away);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_count(H.mnt, 2, H_TIMEOUT_MS), "services stayed after BACKING moved away");
	r = rename(away, H.backing);
	cr_assert_eq(r, 0);
	cr_assert(h_wait_until_content_ms(h_m("web/state"), "alive\n", 8000),
		  "services did not return with BACKING");
	h_assert_daemon_alive();
}

/* ---- a listing in progress while entries come and go ---- */

struct dirent64_raw {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* Read at most about MAXNAMES entries of FD into NAMES (counts per name). Returns false at the end.
 */
static bool read_some(int fd, unsigned *seen, unsigned n, unsigned *other, int maxcalls)
{
	char buf[1024];

	for (int c = 0; c < maxcalls; c++) {
		long got = syscall(SYS_getdents64, fd, buf, sizeof(buf));
		cr_assert_geq(got, 0, "getdents64: %s", strerror(errno));
		if (got == 0)
			return false;
		for (long off = 0; off < got;) {
			struct dirent64_raw *d = (struct dirent64_raw *)(buf + off);
			unsigned i;
			if (sscanf(d->d_name, "r-%4u", &i) == 1 && i < n)
				seen[i]++;
			else
				(*other)++;
			off += d->d_reclen;
		}
	}
	return true;
}

Test(cache, readdir_resumes_across_removals)
{
	enum { N = 300 };
	unsigned seen[N] = {0}, other = 0;
	bool more;
	int fd;

	h_mount();
	h_services_many("", "r-", N);
	cr_assert(h_wait_count(H.mnt, N + 2, 30000));
	fd = open(H.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	more = read_some(fd, seen, N, &other, 3); /* a few small reads: about 60 entries */
	cr_assert(more, "the whole listing fit in three 1 KiB reads?");
	for (unsigned i = 0; i < N; i += 2) {
		int r = unlink(h_b("r-%04u.sock", i));
		cr_assert_eq(r, 0);
	}
	cr_assert(h_wait_count(H.mnt, N / 2 + 2, 10000));
	while (read_some(fd, seen, N, &other, 1))
		;
	close(fd);
	for (unsigned i = 0; i < N; i++) {
		cr_assert_leq(seen[i], 1, "r-%04u listed %u times in one pass", i, seen[i]);
		if (i % 2)
			cr_assert_eq(seen[i], 1, "r-%04u stayed in the directory but was skipped",
				     i);
	}
	cr_assert_eq(other, 4, "'.', '..' and the aggregates: %u other entries", other);
	h_assert_daemon_alive();
}
