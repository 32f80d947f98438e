/*
 * cluster — three etcd members on loopback for the integration tests (see
 * cluster.h).
 */
#include "etcd_cluster.h"

#include <criterion/criterion.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "etcd.h"

struct cluster CL;
static pid_t owner;       /* the process that set the cluster up: only it tears down */
static pid_t guard;       /* removes CL.root if the test process dies outright */
static int guard_fd = -1; /* its pipe: EOF tells it to act */

const char *cluster_etcd(void)
{
	static const char *const paths[] = {"/usr/bin/etcd", "/usr/local/bin/etcd"};
	const char *env = getenv("SVCFS_ETCD");

	if (env && access(env, X_OK) == 0)
		return env;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* N distinct free loopback ports, held open together so none repeats. */
static void free_ports(int *ports, int n)
{
	int fds[2 * CLUSTER_SIZE];

	cr_assert_leq(n, 2 * CLUSTER_SIZE);
	for (int i = 0; i < n; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET,
		                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof(a);
		int r;

		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0, "socket: %s", strerror(errno));
		r = bind(fds[i], (struct sockaddr *)&a, sizeof(a));
		cr_assert_eq(r, 0, "bind: %s", strerror(errno));
		r = getsockname(fds[i], (struct sockaddr *)&a, &len);
		cr_assert_eq(r, 0, "getsockname: %s", strerror(errno));
		ports[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

static void start_member(int i, bool fresh)
{
	struct member *m = &CL.m[i];
	char cluster[CLUSTER_SIZE * 96] = "";
	char progress[32];
	const char *etcd = cluster_etcd();
	pid_t pid;

	for (int j = 0; j < CLUSTER_SIZE; j++) {
		size_t len = strlen(cluster);

		snprintf(cluster + len, sizeof(cluster) - len, "%s%s=%s", j ? "," : "",
		         CL.m[j].name, CL.m[j].peer);
	}
	snprintf(progress, sizeof(progress), "%ds", CLUSTER_PROGRESS_S);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(m->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != owner)
			_exit(127);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Short heartbeats and elections: failures are seen in under a second. */
		execl(etcd, "etcd", "--name", m->name, "--data-dir", m->dir, "--listen-client-urls",
		      m->url, "--advertise-client-urls", m->url, "--listen-peer-urls", m->peer,
		      "--initial-advertise-peer-urls", m->peer, "--initial-cluster", cluster,
		      "--initial-cluster-state", fresh ? "new" : "existing",
		      "--initial-cluster-token", "svcfs-test", "--heartbeat-interval", "50",
		      "--election-timeout", "500", "--experimental-watch-progress-notify-interval",
		      progress, "--logger", "zap", "--log-outputs", "stderr", (char *)NULL);
		_exit(127);
	}
	m->pid = pid;
}

static void print_log(const struct member *m)
{
	char line[512];
	FILE *f = fopen(m->log, "re");
	int n = 0;

	if (!f)
		return;
	fprintf(stderr, "--- %s (%s) log, last lines:\n", m->name, m->log);
	while (fgets(line, sizeof(line), f))
		n++;
	rewind(f);
	for (int i = 0; fgets(line, sizeof(line), f); i++)
		if (i >= n - 15)
			fputs(line, stderr);
	fclose(f);
}

bool cluster_member_ready(int i, int timeout_ms)
{
	struct timespec ts;
	struct etcd *c = etcd_new(CL.m[i].url, 500);
	bool ok = false;
	long long deadline;

	if (!c)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + timeout_ms;
	for (;;) {
		struct etcd_kvs *kvs = NULL;
		int r = etcd_range_prefix(c, "/ready-probe/", &kvs);

		etcd_kvs_free(kvs);
		if (r == 0) {
			ok = true;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= deadline)
			break;
		usleep(50 * 1000);
	}
	etcd_free(c);
	return ok;
}

static void at_exit(void)
{
	cluster_destroy();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_tree(const char *root)
{
	nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A child that outlives a crashed test process (no .fini, no atexit) and
 * removes the temp dir once the members, killed by PDEATHSIG, are gone. */
static void start_guard(void)
{
	int p[2];
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		char c;

		close(p[1]);
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		while (read(p[0], &c, 1) != 0 && errno == EINTR)
			;
		for (int i = 0; i < 10; i++) {
			remove_tree(CL.root);
			if (access(CL.root, F_OK) != 0)
				break;
			usleep(100 * 1000);
		}
		_exit(0);
	}
	close(p[0]);
	guard = pid;
	guard_fd = p[1];
}

void cluster_setup(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	int ports[2 * CLUSTER_SIZE];
	char root[sizeof(CL.root)];
	size_t len = 0;

	if (!cluster_etcd())
		cr_skip_test("etcd is not installed (Debian: etcd-server; or set SVCFS_ETCD)");
	owner = getpid();
	atexit(at_exit);
	snprintf(CL.root, sizeof(CL.root), "%s/svcfs-etcd-XXXXXX", base);
	cr_assert_not_null(mkdtemp(CL.root), "mkdtemp: %s", strerror(errno));
	start_guard();
	memcpy(root, CL.root, sizeof(root));
	free_ports(ports, 2 * CLUSTER_SIZE);
	for (int i = 0; i < CLUSTER_SIZE; i++) {
		struct member *m = &CL.m[i];

		snprintf(m->name, sizeof(m->name), "m%d", i);
		snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%d", ports[2 * i]);
		snprintf(m->peer, sizeof(m->peer), "http://127.0.0.1:%d", ports[2 * i + 1]);
		/* from a copy: the same object as M for the compiler (-Wrestrict) */
		snprintf(m->dir, sizeof(m->dir), "%s/m%d", root, i);
		snprintf(m->log, sizeof(m->log), "%s/m%d.log", root, i);
		len += (size_t)snprintf(CL.urls + len, sizeof(CL.urls) - len, "%s%s", i ? "," : "",
		                        m->url);
	}
	for (int i = 0; i < CLUSTER_SIZE; i++)
		start_member(i, true);
	for (int i = 0; i < CLUSTER_SIZE; i++) {
		bool ready = cluster_member_ready(i, CLUSTER_START_MS);

		if (!ready)
			print_log(&CL.m[i]);
		cr_assert(ready, "etcd member %s (%s) did not come up", CL.m[i].name, CL.m[i].url);
	}
}

void cluster_kill(int i)
{
	struct member *m = &CL.m[i];

	if (m->pid <= 0)
		return;
	kill(m->pid, SIGKILL);
	while (waitpid(m->pid, NULL, 0) < 0 && errno == EINTR)
		;
	m->pid = 0;
}

void cluster_signal(int i, int sig)
{
	cr_assert_gt(CL.m[i].pid, 0, "member %d not running", i);
	kill(CL.m[i].pid, sig);
}

void cluster_restart(int i)
{
	cr_assert_eq(CL.m[i].pid, 0, "member %d still running", i);
	start_member(i, false);
}

static size_t collect(char *data, size_t size, size_t nmemb, void *arg)
{
	char *buf = arg;
	size_t len = strlen(buf), n = size * nmemb;

	if (len + n >= 4096)
		return 0;
	memcpy(buf + len, data, n);
	buf[len + n] = '\0';
	return n;
}

/* Member I's status: its own ID and its leader's (0: none), or false. */
static bool member_status(int i, unsigned long long *ret_id, unsigned long long *ret_leader)
{
	char url[96], body[4096] = "";
	struct json_object *o, *h, *v;
	CURL *curl = curl_easy_init();
	bool ok = false;
	CURLcode rc;

	if (!curl)
		return false;
	snprintf(url, sizeof(url), "%s/v3/maintenance/status", CL.m[i].url);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 500L);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	rc = curl_easy_perform(curl);
	curl_easy_cleanup(curl);
	if (rc != CURLE_OK)
		return false;
	o = json_tokener_parse(body);
	if (o && json_object_object_get_ex(o, "header", &h) &&
	    json_object_object_get_ex(h, "member_id", &v)) {
		*ret_id = strtoull(json_object_get_string(v), NULL, 10);
		*ret_leader = json_object_object_get_ex(o, "leader", &v)
		                  ? strtoull(json_object_get_string(v), NULL, 10)
		                  : 0;
		ok = true;
	}
	json_object_put(o);
	return ok;
}

int cluster_leader(void)
{
	struct timespec ts;
	long long deadline;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + CLUSTER_START_MS;
	for (;;) {
		unsigned long long ids[CLUSTER_SIZE] = {0}, leader = 0, id, lead;

		for (int i = 0; i < CLUSTER_SIZE; i++)
			if (CL.m[i].pid > 0 && member_status(i, &id, &lead)) {
				ids[i] = id;
				if (lead)
					leader = lead;
			}
		for (int i = 0; leader && i < CLUSTER_SIZE; i++)
			if (ids[i] == leader)
				return i;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 >= deadline)
			return -1;
		usleep(50 * 1000);
	}
}

int cluster_member_of(const char *url)
{
	for (int i = 0; i < CLUSTER_SIZE; i++)
		if (strcmp(CL.m[i].url, url) == 0)
			return i;
	return -1;
}

void cluster_destroy(void)
{
	if (owner != getpid())
		return;
	for (int i = 0; i < CLUSTER_SIZE; i++)
		cluster_kill(i);
	if (CL.root[0]) {
		remove_tree(CL.root);
		CL.root[0] = '\0';
	}
	if (guard > 0) {
		close(guard_fd);
		guard_fd = -1;
		while (waitpid(guard, NULL, 0) < 0 && errno == EINTR)
			;
		guard = 0;
	}
}
