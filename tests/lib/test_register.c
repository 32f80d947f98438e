/*
 * lib/register — the service side of libsvcfs (SPEC §7), for real: every
 * test registers services in a fresh mkdtemp directory and looks at what
 * the library left there with ordinary system calls (stat, flock, connect,
 * inotify), and runs its rivals as real forked processes: a second
 * instance, racers, a crashed predecessor, a plain bind+listen server that
 * knows nothing of the lock, a sidecar writer under a concurrent reader, a
 * watcher that stats every new file the moment it appears.
 *
 * Children never use cr_assert (a failed assertion in a child returns into
 * Criterion in the child): they end with an exit status, and kid_fail()
 * notes why in a page shared with the test, which shows it. Every child is
 * reaped by its test, or killed and reaped in .fini. Waits are bounded and
 * tests assert on the state reached, never on how long it took.
 *
 * The default-directory suite changes the environment and the credentials
 * in forked children (root is needed to become another user: skipped
 * otherwise) and removes the /tmp/svcfs-UID it may have created.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "svcfs.h"

#define KID_MS   5000 /* bound of every wait on a child */
#define MAX_KIDS 16
#define MSG_SIZE 1024        /* the shared page's first bytes: why a child failed */
#define SHM_SIZE (64 * 1024) /* shared with children: MSG_SIZE, then the test's own */

#define RACE_KIDS     8
#define RACE_ROUNDS   200
#define WATCH_BATCHES 30 /* the inotify watcher: batches of WATCH_BATCH services */
#define WATCH_BATCH   10
#define TAKEOVERS     10
#define META_READS    3000 /* set_meta under a concurrent reader: at least this many reads */
#define META_WRITES   200  /* ... while the writer replaced the sidecar at least this often */
#define META_BOUND_MS 30000
#define BIG_BLOB      60000 /* bytes of the big sidecar's string: ~60 KiB, under 64 KiB */
#define LONG_NAME     200
#define THREAD_NAMES  150

struct fixture {
	char dir[PATH_MAX];   /* the test's directory (mkdtemp, real path) */
	pid_t kids[MAX_KIDS]; /* children not reaped yet; 0: free slot */
	char user_tmp[64];    /* a /tmp/svcfs-UID the test may create: removed at teardown */
	char *msg;            /* shared with children: why one failed */
	void *shm;            /* shared with children, the test's own use */
};

static struct fixture T;

/* Stands for "not written": never dereferenced. */
static char sentinel_byte;
#define NOT_SET ((svcfs_service *)&sentinel_byte)

/* ---- fixture ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Remove PATH, whatever it is (a directory with everything below it). */
static void remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return;
	if (S_ISDIR(st.st_mode))
		nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else
		unlink(path);
}

static void fx_setup(void)
{
	char tmpl[] = "/tmp/svcfs-reg.XXXXXX", real[PATH_MAX];
	const char *made, *resolved;
	void *m;

	memset(&T, 0, sizeof(T));
	signal(SIGPIPE, SIG_IGN);
	umask(022);
	m = mmap(NULL, SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(m, MAP_FAILED, "mmap: %s", strerror(errno));
	T.msg = m;
	T.shm = (char *)m + MSG_SIZE;
	made = mkdtemp(tmpl);
	cr_assert_not_null(made, "mkdtemp: %s", strerror(errno));
	snprintf(T.dir, sizeof(T.dir), "%s", tmpl); /* removed at teardown from here on */
	resolved = realpath(tmpl, real);
	cr_assert_not_null(resolved, "realpath %s: %s", tmpl, strerror(errno));
	snprintf(T.dir, sizeof(T.dir), "%s", real);
}

static void fx_teardown(void)
{
	for (int i = 0; i < MAX_KIDS; i++) {
		if (T.kids[i] > 0) {
			/* not reaped yet, so the pid is still this child's */
			kill(T.kids[i], SIGKILL);
			waitpid(T.kids[i], NULL, 0);
			T.kids[i] = 0;
		}
	}
	if (chdir("/") < 0) {
		/* only to leave T.dir */
	}
	if (T.dir[0])
		remove_tree(T.dir);
	if (T.user_tmp[0])
		remove_tree(T.user_tmp);
	if (T.msg)
		munmap(T.msg, SHM_SIZE);
	memset(&T, 0, sizeof(T));
}

TestSuite(register, .init = fx_setup, .fini = fx_teardown, .timeout = 60);
TestSuite(dirs, .init = fx_setup, .fini = fx_teardown, .timeout = 60);

/* ---- children ---- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* In a child: say why it failed (the test shows it) and return CODE, its exit status. */
static int kid_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kid_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(T.msg, MSG_SIZE, fmt, ap);
	va_end(ap);
	return code;
}

/* Fork a child that runs FN(ARG) and exits with its result; it dies with the test process. */
static pid_t kid_spawn(int (*fn)(void *arg), void *arg)
{
	pid_t parent = getpid(), pid;
	int slot = -1;

	for (int i = 0; i < MAX_KIDS && slot < 0; i++)
		if (T.kids[i] == 0)
			slot = i;
	cr_assert_geq(slot, 0, "more than %d children", MAX_KIDS);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(125); /* the test died before prctl */
		_exit(fn(arg));
	}
	T.kids[slot] = pid;
	return pid;
}

/* Wait up to MS for child PID: its wait status, or -1 (then it was killed). Reaped either way. */
static int kid_join(pid_t pid, int ms)
{
	struct pollfd p = {.fd = pidfd_open(pid, 0), .events = POLLIN};
	long long end = now_ms() + ms;
	int st = -1, slot;

	for (slot = 0; slot < MAX_KIDS && T.kids[slot] != pid; slot++)
		;
	if (p.fd >= 0) {
		for (;;) {
			long long left = end - now_ms();
			int r = poll(&p, 1, left > 0 ? (int)left : 0);
			if (r >= 0 || errno != EINTR)
				break;
		}
		close(p.fd);
	}
	if (waitpid(pid, &st, WNOHANG) != pid) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		st = -1;
	}
	if (slot < MAX_KIDS)
		T.kids[slot] = 0;
	return st;
}

/* SIGKILL child PID and reap it. */
static void kid_kill(pid_t pid)
{
	kill(pid, SIGKILL);
	kid_join(pid, KID_MS);
}

static const char *status_str(int st)
{
	static char bufs[4][64];
	static unsigned n;
	char *b = bufs[n++ % 4];

	if (st == -1)
		snprintf(b, 64, "still running after %d ms (killed)", KID_MS);
	else if (WIFEXITED(st))
		snprintf(b, 64, "exit status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(b, 64, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(b, 64, "wait status %#x", (unsigned)st);
	return b;
}

static bool exited_with(int st, int code)
{
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == code;
}

/* Join child PID, which must exit 0. */
static void check_kid(pid_t pid, const char *what)
{
	int st = kid_join(pid, KID_MS);

	cr_assert(exited_with(st, 0), "%s: %s: %s", what, status_str(st), T.msg);
}

/* Read SIZE bytes from FD within MS: true if all came. */
static bool read_within(int fd, void *buf, size_t size, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	long long end = now_ms() + ms;
	size_t done = 0;

	while (done < size) {
		long long left = end - now_ms();
		ssize_t n;
		int r = poll(&p, 1, left > 0 ? (int)left : 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		n = read(fd, (char *)buf + done, size - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += (size_t)n;
	}
	return true;
}

/* Poll until *COUNTER reaches WANT, at most MS: true if it did. */
static bool wait_count(atomic_long *counter, long want, int ms)
{
	long long end = now_ms() + ms;

	while (atomic_load(counter) < want) {
		if (now_ms() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* ---- paths and files ---- */

/* T.dir/FMT..., in a ring of buffers (valid for the next 8 calls). */
static const char *tpath(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *tpath(const char *fmt, ...)
{
	static char bufs[8][PATH_MAX];
	static unsigned n;
	char *b = bufs[n++ % 8];
	size_t len = strlen(T.dir);
	va_list ap;

	memcpy(b, T.dir, len);
	b[len++] = '/';
	va_start(ap, fmt);
	vsnprintf(b + len, PATH_MAX - len, fmt, ap);
	va_end(ap);
	return b;
}

/* A name of LEN bytes: PREFIX, then 'x's. Ring of buffers (valid for the next 8 calls). */
static const char *long_name(const char *prefix, size_t len)
{
	static char bufs[8][NAME_MAX + 2];
	static unsigned n;
	char *b = bufs[n++ % 8];
	size_t plen = strlen(prefix);

	memcpy(b, prefix, plen);
	memset(b + plen, 'x', len - plen);
	b[len] = '\0';
	return b;
}

static int not_dots(const struct dirent *de)
{
	return strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
}

static int by_bytes(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/*
 * The entries of DIR but "." and "..", sorted and joined by spaces: hidden
 * temp files show. Ring of buffers (valid for the next 4 calls).
 */
static const char *listing(const char *dir)
{
	static char bufs[4][16384];
	static unsigned n;
	char *b = bufs[n++ % 4];
	struct dirent **ents;
	size_t len = 0;
	int count = scandir(dir, &ents, not_dots, by_bytes);

	if (count < 0) {
		snprintf(b, 16384, "<scandir %s: %s>", dir, strerror(errno));
		return b;
	}
	b[0] = '\0';
	for (int i = 0; i < count; i++) {
		int w = snprintf(b + len, 16384 - len, "%s%s", i ? " " : "", ents[i]->d_name);
		if (w > 0 && len + (size_t)w < 16384)
			len += (size_t)w;
		free(ents[i]);
	}
	free(ents);
	return b;
}

/* How many of DIR's entries are the library's temp files (".svcfs-..."). */
static int count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	cr_assert_not_null(d, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d)))
		n += strncmp(de->d_name, ".svcfs-", 7) == 0;
	closedir(d);
	return n;
}

/* DIR holds exactly WANT (as listing() shows it). */
static void check_listing(const char *dir, const char *want, const char *what)
{
	const char *got = listing(dir);

	cr_assert_str_eq(got, want, "%s%s%s holds \"%s\", expected \"%s\"", what, *what ? ": " : "",
	                 dir, got, want);
}

/* The permission bits of PATH (not followed), or -errno. */
static int mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 ? -errno : (int)(st.st_mode & 07777);
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) < 0 ? 0 : st.st_ino;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* The whole file at PATH as a new string (*RET_LEN its length), or NULL with errno set. */
static char *slurp(const char *path, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t n;

		if (cap - len < 4096) {
			char *nbuf = realloc(buf, cap + 65536);
			if (!nbuf) {
				free(buf);
				close(fd);
				errno = ENOMEM;
				return NULL;
			}
			buf = nbuf;
			cap += 65536;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			close(fd);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if (ret_len)
		*ret_len = len;
	return buf;
}

/* Write CONTENT to PATH (created or truncated). */
static void write_file(const char *path, const char *content, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t n;

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	n = write(fd, content, strlen(content));
	close(fd);
	cr_assert_eq(n, (ssize_t)strlen(content), "write %s", path);
}

/* PATH parsed (strictly) as one JSON value and nothing after it but white space; else NULL. */
static json_object *json_file(const char *path)
{
	size_t len, end;
	char *text = slurp(path, &len);
	json_tokener *tok;
	json_object *obj = NULL;

	if (!text)
		return NULL;
	tok = json_tokener_new();
	if (tok) {
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
		obj = json_tokener_parse_ex(tok, text, (int)len);
		end = json_tokener_get_parse_end(tok);
		while (obj && end < len &&
		       (text[end] == ' ' || text[end] == '\n' || text[end] == '\t' ||
		        text[end] == '\r'))
			end++;
		if (obj && end != len) {
			json_object_put(obj);
			obj = NULL;
		}
		json_tokener_free(tok);
	}
	free(text);
	return obj;
}

/* NAME.json at PATH holds exactly WANT. */
static void check_sidecar(const char *path, const json_object *want)
{
	json_object *got = json_file(path);
	bool same = got && json_object_equal(got, (json_object *)want);
	char *text = slurp(path, NULL);

	json_object_put(got);
	cr_assert(same, "%s holds %s, expected %s", path, text ? text : strerror(errno),
	          json_object_to_json_string((json_object *)want));
	free(text);
}

/* 1: someone holds an flock on PATH; 0: free (taken and released here); -errno. */
static int lock_state(const char *path)
{
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		r = 0;
	else
		r = errno == EWOULDBLOCK ? 1 : -errno;
	close(fd);
	return r;
}

/* ---- sockets ---- */

/*
 * A socket of TYPE connected to the socket file PATH (any length: a long
 * one through an O_PATH fd on it, /proc/self/fd/N), or -errno.
 */
static int connect_path(const char *path, int type, int flags)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, pathfd = -1, r;

	if (strlen(path) < sizeof(a.sun_path)) {
		memcpy(a.sun_path, path, strlen(path) + 1);
	} else {
		pathfd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pathfd < 0)
			return -errno;
		snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d", pathfd);
	}
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | flags, 0);
	if (fd < 0) {
		r = -errno;
	} else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		close(fd);
	} else {
		r = fd;
	}
	if (pathfd >= 0)
		close(pathfd);
	return r;
}

/* The same through the directory fd DIRFD: /proc/self/fd/DIRFD/NAME. */
static int connect_at(int dirfd, const char *name, int type)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd, n;

	n = snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

static int sock_int(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, opt, &v, &len) < 0 ? -errno : v;
}

/* The pid of the process that listens behind the connected socket FD, -1 if unknown. */
static pid_t peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ? -1 : cr.pid;
}

/* Bound reads: a test never hangs on a peer that does not answer. */
static void recv_timeout(int fd)
{
	struct timeval tv = {KID_MS / 1000, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/*
 * CLIENT, connected to the listening (or, dgram, bound) socket LFD, sends
 * "ping"; LFD's side gets it and (stream, seqpacket) answers "pong".
 * CLIENT is closed.
 */
static void check_exchange(int lfd, int client, int type)
{
	char buf[16] = "";
	ssize_t n;
	int a;

	recv_timeout(client);
	n = send(client, "ping", 4, MSG_NOSIGNAL);
	cr_assert_eq(n, 4, "client send: %s", strerror(errno));
	if (type == SOCK_DGRAM) {
		n = recv(lfd, buf, sizeof(buf), MSG_DONTWAIT);
		close(client);
		cr_assert(n == 4 && memcmp(buf, "ping", 4) == 0, "dgram service got %zd bytes", n);
		return;
	}
	a = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(a, 0, "accept: %s", strerror(errno));
	recv_timeout(a);
	n = recv(a, buf, sizeof(buf), 0);
	cr_assert(n == 4 && memcmp(buf, "ping", 4) == 0, "service got %zd bytes", n);
	n = send(a, "pong", 4, MSG_NOSIGNAL);
	cr_assert_eq(n, 4, "service send: %s", strerror(errno));
	memset(buf, 0, sizeof(buf));
	n = recv(client, buf, sizeof(buf), 0);
	close(a);
	close(client);
	cr_assert(n == 4 && memcmp(buf, "pong", 4) == 0, "client got %zd bytes", n);
}

/* A client of service S (of TYPE) exchanges data with it through its path. */
static void check_service_works(svcfs_service *s, int type)
{
	const char *path = svcfs_service_path(s);
	int c = connect_path(path, type, 0);

	cr_assert_geq(c, 0, "connect %s: %s", path, strerror(-c));
	check_exchange(svcfs_service_fd(s), c, type);
}

/* Connect to PATH and read what the server sends until EOF: "hello\n" from ours. */
static void check_greets(const char *path)
{
	char buf[16] = "";
	ssize_t n;
	int c = connect_path(path, SOCK_STREAM, 0);

	cr_assert_geq(c, 0, "connect %s: %s", path, strerror(-c));
	recv_timeout(c);
	n = recv(c, buf, sizeof(buf) - 1, MSG_WAITALL);
	close(c);
	cr_assert(n == 6 && strcmp(buf, "hello\n") == 0, "%s greeted with %zd bytes \"%s\"", path,
	          n, buf);
}

/* ---- the library ---- */

static struct svcfs_register_opts opts_in(const char *dir)
{
	struct svcfs_register_opts o = {.dir = dir};

	return o;
}

/* A sidecar object with a bit of everything. */
static json_object *meta_new(void)
{
	json_object *o = json_object_new_object(), *tags = json_object_new_array(),
	            *owner = json_object_new_object();

	json_object_array_add(tags, json_object_new_string("a"));
	json_object_array_add(tags, json_object_new_string("b/c"));
	json_object_object_add(owner, "team", json_object_new_string("infra"));
	json_object_object_add(owner, "weight", json_object_new_double(1.5));
	json_object_object_add(o, "port", json_object_new_int(8080));
	json_object_object_add(o, "proto", json_object_new_string("http"));
	json_object_object_add(o, "tags", tags);
	json_object_object_add(o, "owner", owner);
	return o;
}

/* {"blob": LEN times 'x'} */
static json_object *meta_blob(size_t len)
{
	json_object *o = json_object_new_object();
	char *blob = malloc(len + 1);

	cr_assert_not_null(blob);
	memset(blob, 'x', len);
	blob[len] = '\0';
	json_object_object_add(o, "blob", json_object_new_string_len(blob, (int)len));
	free(blob);
	return o;
}

static svcfs_service *register_ok(const char *name, const struct svcfs_register_opts *o)
{
	svcfs_service *s = NOT_SET;
	int r = svcfs_register(name, o, &s);

	cr_assert_eq(r, 0, "svcfs_register(%s): %s", name, strerror(-r));
	cr_assert(s && s != NOT_SET, "svcfs_register(%s): no service", name);
	return s;
}

/* svcfs_register must fail with ERR and leave *ret_service alone. */
static void check_refused(const char *name, const struct svcfs_register_opts *o, int err,
                          const char *what)
{
	svcfs_service *s = NOT_SET;
	int r = svcfs_register(name, o, &s);
	bool written = s != NOT_SET;

	if (r == 0 && written)
		svcfs_unregister(s);
	cr_assert_eq(r, err, "%s: svcfs_register returned %d (%s), expected %d (%s)", what, r,
	             strerror(-r), err, strerror(-err));
	cr_assert_not(written, "%s: ret_service written on failure", what);
}

/* ---- services run by children ---- */

/* A service registered by a child, greeting every client with "hello\n" until killed. */
struct holder {
	const char *name;
	struct svcfs_register_opts opts;
	int ready; /* write end: one byte once registered */
};

static int holder_main(void *arg)
{
	const struct holder *h = arg;
	svcfs_service *s;
	int r = svcfs_register(h->name, &h->opts, &s);

	if (r < 0)
		return kid_fail(2, "holder: svcfs_register(%s): %s", h->name, strerror(-r));
	if (write(h->ready, "r", 1) != 1)
		return kid_fail(3, "holder: write: %s", strerror(errno));
	for (;;) {
		int c = accept4(svcfs_service_fd(s), NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0) {
			send(c, "hello\n", 6, MSG_NOSIGNAL);
			close(c);
		}
	}
}

static pid_t holder_start(const char *name, const struct svcfs_register_opts *o)
{
	struct holder h = {.name = name, .opts = *o};
	int p[2], r = pipe2(p, O_CLOEXEC), c = 0;
	pid_t pid;
	bool ready;

	cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
	h.ready = p[1];
	pid = kid_spawn(holder_main, &h);
	close(p[1]);
	ready = read_within(p[0], &c, 1, KID_MS);
	close(p[0]);
	cr_assert(ready, "holder of %s did not register: %s", name, T.msg);
	return pid;
}

/*
 * A plain server that knows nothing of the lock: bind PATH (a long path
 * through a short name renamed into place) and listen (not dgram), then
 * greet every client with "hello\n" (dgram: take what comes).
 */
struct plain {
	const char *path;
	int type;
	int ready; /* write end: one byte once bound and listening */
};

static int plain_main(void *arg)
{
	const struct plain *p = arg;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	const char *base = strrchr(p->path, '/') + 1;
	char dir[PATH_MAX], tmp[64] = "";
	int fd = socket(AF_UNIX, p->type | SOCK_CLOEXEC, 0), dfd;

	snprintf(dir, sizeof(dir), "%.*s", (int)(base - 1 - p->path), p->path);
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || dfd < 0)
		return kid_fail(2, "plain: socket/open: %s", strerror(errno));
	if (strlen(p->path) < sizeof(a.sun_path)) {
		memcpy(a.sun_path, p->path, strlen(p->path) + 1);
	} else {
		snprintf(tmp, sizeof(tmp), "plain-%d.tmp", (int)getpid());
		snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", dfd, tmp);
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return kid_fail(3, "plain: bind %s: %s", a.sun_path, strerror(errno));
	if (tmp[0] && renameat(dfd, tmp, dfd, base) < 0)
		return kid_fail(4, "plain: rename: %s", strerror(errno));
	if (p->type != SOCK_DGRAM && listen(fd, 16) < 0)
		return kid_fail(5, "plain: listen: %s", strerror(errno));
	if (write(p->ready, "r", 1) != 1)
		return kid_fail(6, "plain: write: %s", strerror(errno));
	for (;;) {
		char buf[64];
		int c;

		if (p->type == SOCK_DGRAM) {
			if (recv(fd, buf, sizeof(buf), 0) < 0 && errno != EINTR)
				return kid_fail(7, "plain: recv: %s", strerror(errno));
			continue;
		}
		c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
		if (c >= 0) {
			send(c, "hello\n", 6, MSG_NOSIGNAL);
			close(c);
		}
	}
}

static pid_t plain_start(const char *path, int type)
{
	struct plain pl = {.path = path, .type = type};
	int p[2], r = pipe2(p, O_CLOEXEC), c = 0;
	pid_t pid;
	bool ready;

	cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
	pl.ready = p[1];
	pid = kid_spawn(plain_main, &pl);
	close(p[1]);
	ready = read_within(p[0], &c, 1, KID_MS);
	close(p[0]);
	cr_assert(ready, "plain server on %s did not start: %s", path, T.msg);
	return pid;
}

/* ==== success ==== */

Test(register, stream_listens_locks_and_writes_the_sidecar)
{
	int locked;
	json_object *meta = meta_new();
	struct svcfs_register_opts o = opts_in(T.dir);
	char pid[32], *lock_text;
	svcfs_service *s;
	int fd, fdflags, flflags;

	o.meta = meta;
	s = register_ok("web", &o);
	fd = svcfs_service_fd(s);
	cr_assert_geq(fd, 0);
	cr_assert_eq(sock_int(fd, SO_TYPE), SOCK_STREAM);
	cr_assert_eq(sock_int(fd, SO_ACCEPTCONN), 1, "the socket does not listen");
	fdflags = fcntl(fd, F_GETFD);
	flflags = fcntl(fd, F_GETFL);
	cr_assert(fdflags >= 0 && (fdflags & FD_CLOEXEC), "the socket is not close-on-exec");
	cr_assert(flflags >= 0 && !(flflags & O_NONBLOCK), "O_NONBLOCK without the flag");

	cr_assert_str_eq(svcfs_service_path(s), tpath("web.sock"));
	cr_assert(is_socket(tpath("web.sock")), "web.sock is not a socket");
	cr_assert_eq(mode_of(tpath("web.sock")), 0600, "web.sock mode %o",
	             (unsigned)mode_of(tpath("web.sock")));
	check_service_works(s, SOCK_STREAM);

	/* the lock: a regular file, held, with our pid in it for humans */
	cr_assert_eq(mode_of(tpath("web.lock")), 0600);
	locked = lock_state(tpath("web.lock"));
	cr_assert_eq(locked, 1, "web.lock is not held");
	lock_text = slurp(tpath("web.lock"), NULL);
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	cr_assert(lock_text && strcmp(lock_text, pid) == 0, "web.lock holds \"%s\"",
	          lock_text ? lock_text : "?");
	free(lock_text);

	check_sidecar(tpath("web.json"), meta);
	cr_assert_eq(mode_of(tpath("web.json")), 0600);
	check_listing(T.dir, "web.json web.lock web.sock", "");

	svcfs_unregister(s);
	json_object_put(meta);
}

Test(register, seqpacket_listens)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;

	o.type = SOCK_SEQPACKET;
	s = register_ok("seq", &o);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_TYPE), SOCK_SEQPACKET);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_ACCEPTCONN), 1);
	cr_assert(is_socket(tpath("seq.sock")));
	check_service_works(s, SOCK_SEQPACKET);
	/* control: a stream client cannot talk to it */
	{
		int c = connect_path(tpath("seq.sock"), SOCK_STREAM, 0);
		if (c >= 0)
			close(c);
		cr_assert_eq(c, -EPROTOTYPE, "stream connect to a seqpacket service: %d", c);
	}
	svcfs_unregister(s);
}

Test(register, dgram_is_bound)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	struct sockaddr_un a;
	socklen_t alen = sizeof(a);
	svcfs_service *s;
	int r;

	o.type = SOCK_DGRAM;
	s = register_ok("dg", &o);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_TYPE), SOCK_DGRAM);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_ACCEPTCONN), 0);
	r = getsockname(svcfs_service_fd(s), (struct sockaddr *)&a, &alen);
	cr_assert_eq(r, 0);
	cr_assert_gt(alen, offsetof(struct sockaddr_un, sun_path) + 1, "the socket is not bound");
	cr_assert(is_socket(tpath("dg.sock")));
	r = svcfs_service_listen(s); /* nothing to do for dgram */
	cr_assert_eq(r, 0);
	check_service_works(s, SOCK_DGRAM);
	svcfs_unregister(s);
}

Test(register, no_listen_until_listen)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;
	int c, r;

	o.flags = SVCFS_REGISTER_NO_LISTEN;
	s = register_ok("late", &o);
	cr_assert(is_socket(tpath("late.sock")), "bound: the file is there");
	cr_assert_eq(mode_of(tpath("late.sock")), 0600);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_ACCEPTCONN), 0);
	c = connect_path(tpath("late.sock"), SOCK_STREAM, 0);
	if (c >= 0)
		close(c);
	cr_assert_eq(c, -ECONNREFUSED, "connect before listen: %d", c);

	r = svcfs_service_listen(s);
	cr_assert_eq(r, 0, "svcfs_service_listen: %s", strerror(-r));
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_ACCEPTCONN), 1);
	check_service_works(s, SOCK_STREAM);
	r = svcfs_service_listen(s);
	cr_assert_eq(r, 0, "a second listen: %s", strerror(-r));
	svcfs_unregister(s);
}

Test(register, nonblock_flag)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;
	int a, e, flflags;

	o.flags = SVCFS_REGISTER_NONBLOCK;
	s = register_ok("nb", &o);
	flflags = fcntl(svcfs_service_fd(s), F_GETFL);
	cr_assert(flflags >= 0 && (flflags & O_NONBLOCK), "not O_NONBLOCK");
	a = accept(svcfs_service_fd(s), NULL, NULL);
	e = errno;
	cr_assert(a < 0 && (e == EAGAIN || e == EWOULDBLOCK), "accept with nobody waiting: %d", a);
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);
}

/* How many nonblocking clients PATH's accept queue takes, at most MAX. */
static int queue_takes(const char *path, int max)
{
	int fds[64], n = 0;

	cr_assert_leq(max, 64);
	while (n < max) {
		int c = connect_path(path, SOCK_STREAM, SOCK_NONBLOCK);
		if (c < 0) {
			cr_assert_eq(c, -EAGAIN, "connect: %s", strerror(-c));
			break;
		}
		fds[n++] = c;
	}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return n;
}

Test(register, backlog_is_used)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *small, *dflt;
	int took_small, took_dflt;

	o.backlog = 1;
	small = register_ok("small", &o);
	o.backlog = 0;
	dflt = register_ok("dflt", &o);
	took_small = queue_takes(tpath("small.sock"), 64);
	took_dflt = queue_takes(tpath("dflt.sock"), 64);
	cr_assert_lt(took_small, 8, "backlog 1 took %d clients", took_small);
	cr_assert_eq(took_dflt, 64, "default backlog (SOMAXCONN) took only %d clients", took_dflt);
	svcfs_unregister(small);
	svcfs_unregister(dflt);
}

Test(register, no_meta_no_sidecar_and_stale_one_removed)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;

	s = register_ok("plain", &o);
	check_listing(T.dir, "plain.lock plain.sock", "");
	svcfs_unregister(s);

	/* a sidecar left by a previous run is not this run's metadata */
	write_file(tpath("old.json"), "{\"port\": 1}\n", 0644);
	write_file(tpath("old.lock"), "12345\n", 0600);
	s = register_ok("old", &o);
	check_listing(T.dir, "old.lock old.sock plain.lock", "");
	svcfs_unregister(s);
}

Test(register, path_is_absolute)
{
	struct svcfs_register_opts o = opts_in("link");
	svcfs_service *s;
	const char *path;
	struct stat st;
	int r;

	r = mkdir(tpath("real"), 0755);
	cr_assert_eq(r, 0);
	r = symlink("real", tpath("link"));
	cr_assert_eq(r, 0);
	r = chdir(T.dir);
	cr_assert_eq(r, 0);
	s = register_ok("svc", &o); /* a relative directory, through a symlink */
	path = svcfs_service_path(s);
	cr_assert_eq(path[0], '/', "path %s is not absolute", path);
	cr_assert_str_eq(path, tpath("real/svc.sock"));
	r = stat(path, &st);
	cr_assert_eq(r, 0, "stat %s: %s", path, strerror(errno));
	cr_assert(S_ISSOCK(st.st_mode));
	r = chdir("/");
	cr_assert_eq(r, 0);
	check_service_works(s, SOCK_STREAM); /* the path works from anywhere */
	svcfs_unregister(s);
}

Test(register, groups_are_created)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	svcfs_service *s, *deep, *other;
	const char *deep_name = "1/2/3/4/5/6/7/8/leaf"; /* 8 groups: the most allowed */

	o.meta = meta;
	s = register_ok("g/h/name", &o);
	cr_assert_str_eq(svcfs_service_path(s), tpath("g/h/name.sock"));
	check_listing(T.dir, "g", "");
	check_listing(tpath("g"), "h", "");
	cr_assert_eq(mode_of(tpath("g")), 0755);
	cr_assert_eq(mode_of(tpath("g/h")), 0755);
	check_listing(tpath("g/h"), "name.json name.lock name.sock", "");
	locked = lock_state(tpath("g/h/name.lock"));
	cr_assert_eq(locked, 1);
	check_sidecar(tpath("g/h/name.json"), meta);
	check_service_works(s, SOCK_STREAM);

	other = register_ok("g/h/other", &o); /* existing groups are used as they are */
	check_listing(tpath("g/h"),
	              "name.json name.lock name.sock other.json other.lock other.sock", "");
	deep = register_ok(deep_name, &o);
	cr_assert(is_socket(tpath("%s.sock", deep_name)));
	check_service_works(deep, SOCK_STREAM);

	svcfs_unregister(other);
	svcfs_unregister(deep);
	svcfs_unregister(s);
	check_listing(tpath("g/h"), "name.lock other.lock", "");
	json_object_put(meta);
}

/* ==== modes ==== */

Test(register, default_mode_0600_even_with_umask_0)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	svcfs_service *s;

	umask(0);
	o.meta = meta;
	s = register_ok("svc", &o);
	cr_assert_eq(mode_of(tpath("svc.sock")), 0600, "socket mode %o",
	             (unsigned)mode_of(tpath("svc.sock")));
	cr_assert_eq(mode_of(tpath("svc.lock")), 0600);
	cr_assert_eq(mode_of(tpath("svc.json")), 0600);
	svcfs_unregister(s);
	json_object_put(meta);
}

Test(register, mode_0660_exact_under_any_umask)
{
	static const mode_t masks[] = {0, 022, 027, 077};
	json_object *meta = meta_new();

	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		struct svcfs_register_opts o = opts_in(T.dir);
		char name[32];
		svcfs_service *s;
		int sock, side, lock;

		snprintf(name, sizeof(name), "u%03o", (unsigned)masks[i]);
		umask(masks[i]);
		o.mode = 0660;
		o.meta = meta;
		s = register_ok(name, &o);
		sock = mode_of(tpath("%s.sock", name));
		side = mode_of(tpath("%s.json", name));
		lock = mode_of(tpath("%s.lock", name));
		svcfs_unregister(s);
		cr_assert_eq(sock, 0660, "umask %03o: socket %o", (unsigned)masks[i],
		             (unsigned)sock);
		cr_assert_eq(side, 0640, "umask %03o: sidecar %o", (unsigned)masks[i],
		             (unsigned)side);
		cr_assert_eq(lock, 0600, "umask %03o: lock %o", (unsigned)masks[i], (unsigned)lock);
	}
	umask(022);
	json_object_put(meta);
}

Test(register, world_writable_refused_unless_any_mode)
{
	static const unsigned refused[] = {0666, 0602, 0777, 0622};
	static const unsigned invalid[] = {01600, 04600, 02660, 010600};
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;
	char what[64];

	umask(0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		o.mode = refused[i];
		snprintf(what, sizeof(what), "mode %04o", refused[i]);
		check_refused("svc", &o, -EINVAL, what);
	}
	o.flags = SVCFS_REGISTER_ANY_MODE;
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		o.mode = invalid[i];
		snprintf(what, sizeof(what), "mode %04o (not permission bits)", invalid[i]);
		check_refused("svc", &o, -EINVAL, what);
	}
	check_listing(T.dir, "", "a refused mode left files");

	o.mode = 0666;
	s = register_ok("svc", &o);
	cr_assert_eq(mode_of(tpath("svc.sock")), 0666);
	svcfs_unregister(s);
	o.mode = 0777;
	s = register_ok("svc", &o);
	cr_assert_eq(mode_of(tpath("svc.sock")), 0777);
	svcfs_unregister(s);
	umask(022);
}

Test(register, sidecar_mode_follows_socket)
{
	static const struct {
		unsigned sock, side;
	} cases[] = {{0600, 0600}, {0640, 0640}, {0660, 0640}, {0604, 0604}, {0666, 0644}};
	json_object *meta = meta_new();

	umask(077); /* the umask may not narrow what the socket's mode asks for */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct svcfs_register_opts o = opts_in(T.dir);
		svcfs_service *s;
		int side, after;

		o.mode = cases[i].sock;
		o.flags = SVCFS_REGISTER_ANY_MODE;
		o.meta = meta;
		s = register_ok("svc", &o);
		side = mode_of(tpath("svc.json"));
		svcfs_service_set_meta(s, meta);
		after = mode_of(tpath("svc.json"));
		svcfs_unregister(s);
		cr_assert_eq(side, (int)cases[i].side, "socket %04o: sidecar %04o, expected %04o",
		             cases[i].sock, (unsigned)side, cases[i].side);
		cr_assert_eq(after, (int)cases[i].side, "socket %04o: set_meta gave %04o",
		             cases[i].sock, (unsigned)after);
	}
	umask(022);
	json_object_put(meta);
}

/*
 * A watcher stats every file created in (or renamed into) the directory
 * the moment inotify reports it, and counts those with a group or other
 * bit: with umask 0, a socket bound before its mode is narrowed would be
 * seen 0777 for an instant.
 */
struct watch_state {
	atomic_int ready, stop;
	atomic_long creates;      /* IN_CREATE of a name ending in ".sock" */
	atomic_long creates_seen; /* of those, stat'ed while still there */
	atomic_long files;        /* files stat'ed, of any kind */
	atomic_long wide;         /* of those, with a group or other bit */
	char wide_name[NAME_MAX + 1];
	unsigned wide_mode;
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static int watcher_main(void *arg)
{
	struct watch_state *w = arg;
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	int dfd = open(T.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));

	if (in < 0 || dfd < 0 || inotify_add_watch(in, T.dir, IN_CREATE | IN_MOVED_TO) < 0)
		return kid_fail(2, "watcher: inotify: %s", strerror(errno));
	atomic_store(&w->ready, 1);
	for (;;) {
		/* read before looking: every event made before stop is queued by now */
		bool stop = atomic_load(&w->stop);
		ssize_t n = read(in, buf, sizeof(buf));

		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = in, .events = POLLIN};
			if (stop)
				return 0;
			poll(&p, 1, 10);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kid_fail(3, "watcher: read: %s", strerror(errno));
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			struct stat st;
			int r;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW)
				return kid_fail(4, "watcher: inotify queue overflow");
			if (!ev->len)
				continue;
			r = fstatat(dfd, ev->name, &st, AT_SYMLINK_NOFOLLOW);
			if (r == 0) {
				atomic_fetch_add(&w->files, 1);
				if (st.st_mode & 077) {
					snprintf(w->wide_name, sizeof(w->wide_name), "%s",
					         ev->name);
					w->wide_mode = st.st_mode & 07777;
					atomic_fetch_add(&w->wide, 1);
				}
			}
			if ((ev->mask & IN_CREATE) && ends_with(ev->name, ".sock")) {
				if (r == 0)
					atomic_fetch_add(&w->creates_seen, 1);
				atomic_fetch_add(&w->creates, 1);
			}
		}
	}
}

Test(register, socket_never_wider_than_asked)
{
	struct watch_state *w = T.shm;
	struct svcfs_register_opts o = opts_in(T.dir);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	json_object *meta = meta_new();
	long expected = 0, shorts = 0;
	long long end;
	pid_t watcher;
	int ctl, r;
	bool seen;

	umask(0);
	watcher = kid_spawn(watcher_main, w);
	end = now_ms() + KID_MS;
	while (!atomic_load(&w->ready) && now_ms() < end)
		sleep_ms(1);
	cr_assert(atomic_load(&w->ready), "watcher did not start: %s", T.msg);

	/* control: a plain bind under umask 0 leaves the file 0777, and the watcher sees it */
	ctl = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", tpath("ctl.sock"));
	r = bind(ctl, (struct sockaddr *)&a, sizeof(a));
	cr_assert_eq(r, 0, "bind: %s", strerror(errno));
	seen = wait_count(&w->creates, ++expected, KID_MS);
	cr_assert(seen, "the watcher missed ctl.sock");
	cr_assert_eq(atomic_load(&w->wide), 1, "control: the watcher did not see a 0777 socket");
	cr_assert_str_eq(w->wide_name, "ctl.sock");
	close(ctl);
	unlink(tpath("ctl.sock"));

	/* half the names are too long for sun_path: bound elsewhere, then renamed */
	o.meta = meta;
	for (int b = 0; b < WATCH_BATCHES; b++) {
		svcfs_service *batch[WATCH_BATCH];

		for (int i = 0; i < WATCH_BATCH; i++) {
			char prefix[16];
			const char *name = prefix;

			snprintf(prefix, sizeof(prefix), "s%d-", i);
			if (i % 2)
				name = long_name(prefix, LONG_NAME);
			else
				shorts++;
			r = svcfs_register(name, &o, &batch[i]);
			cr_assert_eq(r, 0, "batch %d: svcfs_register(%s): %s", b, name,
			             strerror(-r));
			expected++;
		}
		/* keep them until the watcher has looked: it sees each short socket */
		seen = wait_count(&w->creates, expected, KID_MS);
		cr_assert(seen, "the watcher saw %ld socket creations of %ld",
		          atomic_load(&w->creates), expected);
		for (int i = 0; i < WATCH_BATCH; i++)
			svcfs_unregister(batch[i]);
	}
	atomic_store(&w->stop, 1);
	check_kid(watcher, "watcher");
	umask(022);

	cr_assert_eq(atomic_load(&w->creates), expected);
	cr_assert_geq(atomic_load(&w->creates_seen), shorts + 1,
	              "the watcher stat'ed only %ld new sockets", atomic_load(&w->creates_seen));
	cr_assert_eq(atomic_load(&w->wide), 1,
	             "%ld files were seen with group/other bits (last: %s, mode %04o; files seen: "
	             "%ld)",
	             atomic_load(&w->wide) - 1, w->wide_name, w->wide_mode, atomic_load(&w->files));
	json_object_put(meta);
}

/* ==== errors ==== */

Test(register, bad_names_einval)
{
	char nine[64], ctl[] = "bad\x01name", del[] = "bad\x7fname";
	const char *names[] = {
	    "",     ".hidden",   "a//b",      "../x", "./x", "g/../x", "g/.h/x", "a/",
	    "/abs", "tab\tname", "new\nline", ctl,    del,   nine,     NULL, /* a component of 256
	                                                                        bytes */
	    NULL, /* a group of 256 bytes */
	};
	struct svcfs_register_opts o = opts_in(T.dir);
	char long_group[NAME_MAX + 8];
	json_object *meta = meta_new();
	size_t n = sizeof(names) / sizeof(names[0]);

	snprintf(nine, sizeof(nine), "1/2/3/4/5/6/7/8/9/leaf"); /* 9 groups */
	names[n - 2] = long_name("c", NAME_MAX + 1);
	snprintf(long_group, sizeof(long_group), "%s/x", long_name("g", NAME_MAX + 1));
	names[n - 1] = long_group;
	o.meta = meta;
	for (size_t i = 0; i < n; i++) {
		char what[64];

		snprintf(what, sizeof(what), "name %zu \"%.20s\"", i, names[i]);
		check_refused(names[i], &o, -EINVAL, what);
	}
	check_refused(NULL, &o, -EINVAL, "NULL name");
	{
		int r = svcfs_register("good", &o, NULL);
		cr_assert_eq(r, -EINVAL, "NULL ret_service: %d", r);
	}
	check_listing(T.dir, "", "a refused name left files");
	json_object_put(meta);
}

Test(register, name_length_limits)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	char group_name[NAME_MAX + 8];
	const char *longest = long_name("n", NAME_MAX - 5); /* NAME.sock is 255 bytes */
	svcfs_service *s;

	s = register_ok(longest, &o);
	cr_assert(is_socket(tpath("%s.sock", longest)));
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);

	/* one more byte: NAME.sock cannot exist, nothing is created */
	check_refused(long_name("m", NAME_MAX - 4), &o, -ENAMETOOLONG, "a 251-byte name");
	{
		char want[NAME_MAX + 1];
		snprintf(want, sizeof(want), "%.250s.lock", longest);
		check_listing(T.dir, want, "after a refused 251-byte name");
	}

	/* a group may use all 255 bytes */
	snprintf(group_name, sizeof(group_name), "%s/x", long_name("g", NAME_MAX));
	s = register_ok(group_name, &o);
	cr_assert(is_socket(tpath("%s.sock", group_name)));
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);
}

Test(register, missing_or_bad_directory)
{
	struct svcfs_register_opts o = opts_in(tpath("nope"));
	int r;

	check_refused("svc", &o, -ENOENT, "missing directory");
	check_listing(T.dir, "", "the missing directory was created");

	write_file(tpath("file"), "x", 0644);
	o.dir = tpath("file");
	check_refused("svc", &o, -ENOTDIR, "a regular file as the directory");

	/* groups: a file, or a symlink, where a group should be */
	o.dir = T.dir;
	check_refused("file/svc", &o, -ENOTDIR, "a regular file as a group");
	r = mkdir(tpath("real"), 0755);
	cr_assert_eq(r, 0);
	r = symlink("real", tpath("lnk"));
	cr_assert_eq(r, 0);
	check_refused("lnk/svc", &o, -ENOTDIR, "a symlink as a group");
	check_listing(tpath("real"), "", "registered through a symlinked group");
	check_listing(T.dir, "file lnk real", "");
}

Test(register, sock_not_a_socket_eexist)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	char target[64] = "";
	ino_t ino;
	ssize_t n;
	char *text;
	int r;

	o.meta = meta;

	/* a regular file */
	write_file(tpath("f.sock"), "keep me\n", 0640);
	ino = ino_of(tpath("f.sock"));
	check_refused("f", &o, -EEXIST, "f.sock a regular file");
	text = slurp(tpath("f.sock"), NULL);
	cr_assert(text && strcmp(text, "keep me\n") == 0, "f.sock was changed");
	free(text);
	cr_assert_eq(ino_of(tpath("f.sock")), ino);
	cr_assert_eq(mode_of(tpath("f.sock")), 0640);
	locked = lock_state(tpath("f.lock"));
	cr_assert_eq(locked, 0, "the lock is still held after the failure");

	/* a symlink, dangling or not */
	r = symlink("elsewhere.sock", tpath("l.sock"));
	cr_assert_eq(r, 0);
	check_refused("l", &o, -EEXIST, "l.sock a dangling symlink");
	r = symlink("f.sock", tpath("m.sock"));
	cr_assert_eq(r, 0);
	check_refused("m", &o, -EEXIST, "m.sock a symlink to a file");
	n = readlink(tpath("l.sock"), target, sizeof(target) - 1);
	cr_assert(n > 0 && strcmp(target, "elsewhere.sock") == 0, "l.sock was changed");

	/* a directory */
	r = mkdir(tpath("d.sock"), 0755);
	cr_assert_eq(r, 0);
	check_refused("d", &o, -EEXIST, "d.sock a directory");

	/* a symlink as the lock file: never followed, the target never created */
	r = symlink("victim", tpath("k.lock"));
	cr_assert_eq(r, 0);
	check_refused("k", &o, -EEXIST, "k.lock a symlink");

	check_listing(T.dir, "d.lock d.sock f.lock f.sock k.lock l.lock l.sock m.lock m.sock",
	              "a failure left a socket, a sidecar or a temp file");
	check_listing(tpath("d.sock"), "", "");
	json_object_put(meta);
}

Test(register, live_socket_without_lock_eaddrinuse)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	svcfs_service *s;
	pid_t plain, dplain;
	ino_t ino;
	int c;
	ssize_t n;

	o.meta = meta;
	plain = plain_start(tpath("svc.sock"), SOCK_STREAM);
	ino = ino_of(tpath("svc.sock"));
	check_refused("svc", &o, -EADDRINUSE, "a live plain stream socket");
	cr_assert_eq(ino_of(tpath("svc.sock")), ino, "the live socket was replaced");
	check_greets(tpath("svc.sock"));
	check_listing(T.dir, "svc.lock svc.sock", "a failure left files");
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 0, "the lock is still held after the failure");

	dplain = plain_start(tpath("dg.sock"), SOCK_DGRAM);
	o.type = SOCK_DGRAM;
	check_refused("dg", &o, -EADDRINUSE, "a live plain dgram socket");
	c = connect_path(tpath("dg.sock"), SOCK_DGRAM, 0);
	cr_assert_geq(c, 0, "connect dg.sock: %s", strerror(-c));
	n = send(c, "x", 1, 0);
	close(c);
	cr_assert_eq(n, 1, "the dgram socket no longer works");

	/* control: once its server is gone the same socket file is taken over */
	kid_kill(plain);
	o.type = 0;
	s = register_ok("svc", &o);
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);
	kid_kill(dplain);
	json_object_put(meta);
}

Test(register, bad_options_einval)
{
	struct svcfs_register_opts o;
	json_object *arr = json_object_new_array(), *str = json_object_new_string("x"),
	            *num = json_object_new_int(1);

	o = opts_in(T.dir);
	o.type = SOCK_RAW;
	check_refused("svc", &o, -EINVAL, "type SOCK_RAW");
	o.type = 99;
	check_refused("svc", &o, -EINVAL, "type 99");
	o.type = -1;
	check_refused("svc", &o, -EINVAL, "type -1");
	o.type = SOCK_STREAM | SOCK_NONBLOCK;
	check_refused("svc", &o, -EINVAL, "type with SOCK_NONBLOCK");

	o = opts_in(T.dir);
	o.flags = 0x8;
	check_refused("svc", &o, -EINVAL, "flags 0x8");
	o.flags = 0x80000000u;
	check_refused("svc", &o, -EINVAL, "flags 0x80000000");

	o = opts_in(T.dir);
	o.backlog = -1;
	check_refused("svc", &o, -EINVAL, "backlog -1");

	o = opts_in(T.dir);
	o.meta = arr;
	check_refused("svc", &o, -EINVAL, "meta an array");
	o.meta = str;
	check_refused("svc", &o, -EINVAL, "meta a string");
	o.meta = num;
	check_refused("svc", &o, -EINVAL, "meta a number");

	check_listing(T.dir, "", "refused options left files");
	json_object_put(arr);
	json_object_put(str);
	json_object_put(num);
}

Test(register, bad_meta_refused)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *nan = json_object_new_object(), *utf = json_object_new_object();
	json_object *big = meta_blob(70 * 1024), *fits = meta_blob(60 * 1024);
	svcfs_service *s;

	json_object_object_add(nan, "x", json_object_new_double(NAN));
	json_object_object_add(utf, "x", json_object_new_string("\xff\xfe"));
	o.meta = nan;
	check_refused("svc", &o, -EINVAL, "meta with NaN");
	o.meta = utf;
	check_refused("svc", &o, -EINVAL, "meta with invalid UTF-8");
	o.meta = big;
	check_refused("svc", &o, -EFBIG, "meta of 70 KiB");
	check_listing(T.dir, "svc.lock", "refused metadata left files");
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 0, "the lock is still held after the failure");

	/* control: 60 KiB fits */
	o.meta = fits;
	s = register_ok("svc", &o);
	check_sidecar(tpath("svc.json"), fits);
	svcfs_unregister(s);
	json_object_put(nan);
	json_object_put(utf);
	json_object_put(big);
	json_object_put(fits);
}

/* Register "svc" with a BLOB-byte sidecar: 0 and the file's size in *RET_SIZE, or -errno. */
static int register_blob(size_t blob, off_t *ret_size)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_blob(blob);
	svcfs_service *s;
	struct stat st;
	int r;

	o.meta = meta;
	r = svcfs_register("svc", &o, &s);
	json_object_put(meta);
	if (r < 0)
		return r;
	r = stat(tpath("svc.json"), &st);
	svcfs_unregister(s);
	cr_assert_eq(r, 0, "stat svc.json: %s", strerror(errno));
	*ret_size = st.st_size;
	return 0;
}

/* The limit is the file's: whatever fits in 64 KiB is written, one byte more is refused. */
Test(register, sidecar_size_limit)
{
	size_t lo = 60 * 1024, hi = 70 * 1024; /* lo fits, hi does not */
	off_t size = 0;
	int r;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		r = register_blob(mid, &size);
		cr_assert(r == 0 || r == -EFBIG, "blob %zu: %s", mid, strerror(-r));
		if (r == 0)
			lo = mid;
		else
			hi = mid;
	}
	r = register_blob(lo, &size);
	cr_assert_eq(r, 0);
	cr_assert_leq(size, 64 * 1024, "a sidecar of %lld bytes was written", (long long)size);
	cr_assert_geq(size, 64 * 1024 - 1, "the largest sidecar accepted is %lld bytes",
	              (long long)size);
	r = register_blob(hi, &size);
	cr_assert_eq(r, -EFBIG);
	check_listing(T.dir, "svc.lock", "");
}

/* ==== already running, races, crashes ==== */

/* A second instance: "svc" is taken (-EADDRINUSE), "other" is not. */
static int second_main(void *arg)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s = NULL;
	int r;

	(void)arg;
	r = svcfs_register("svc", &o, &s);
	if (r != -EADDRINUSE)
		return kid_fail(2, "second svcfs_register(svc): %d (%s)", r, strerror(-r));
	if (s != NULL)
		return kid_fail(3, "ret_service written on failure");
	r = svcfs_register("other", &o, &s);
	if (r < 0)
		return kid_fail(4, "svcfs_register(other): %s", strerror(-r));
	svcfs_unregister(s);
	return 0;
}

Test(register, already_running_in_another_process)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	svcfs_service *s;
	ino_t ino;

	o.meta = meta;
	s = register_ok("svc", &o);
	ino = ino_of(tpath("svc.sock"));
	check_kid(kid_spawn(second_main, NULL), "second instance");
	/* the same process, a second time */
	check_refused("svc", &o, -EADDRINUSE, "second registration in the same process");

	cr_assert_eq(ino_of(tpath("svc.sock")), ino, "the first one's socket was replaced");
	check_sidecar(tpath("svc.json"), meta);
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 1);
	check_service_works(s, SOCK_STREAM);
	check_listing(T.dir, "other.lock svc.json svc.lock svc.sock", "");
	svcfs_unregister(s);
	json_object_put(meta);
}

Test(register, already_running_holder_keeps_working)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	ino_t ino;

	holder_start("svc", &o);
	ino = ino_of(tpath("svc.sock"));
	check_refused("svc", &o, -EADDRINUSE, "svc held by a child");
	cr_assert_eq(ino_of(tpath("svc.sock")), ino);
	check_greets(tpath("svc.sock"));
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 1);
}

struct racer {
	int start, start_w;     /* read end (EOF: go), write end (closed here) */
	int release, release_w; /* read end (EOF: the test has looked), write end */
	int won;                /* write end: the winner's pid */
	int idx;
	bool unregister; /* the winner unregisters before it exits (else it just exits) */
};

struct race_state {
	int err[RACE_KIDS]; /* a racer's unexpected error */
};

static int racer_main(void *arg)
{
	const struct racer *rc = arg;
	struct race_state *st = T.shm;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = json_object_new_object();
	pid_t self = getpid();
	svcfs_service *s;
	char c;
	int r;

	close(rc->start_w);
	close(rc->release_w);
	json_object_object_add(meta, "pid", json_object_new_int(self));
	o.meta = meta;
	while (read(rc->start, &c, 1) < 0 && errno == EINTR)
		;
	r = svcfs_register("svc", &o, &s);
	if (r == -EADDRINUSE)
		return 1;
	if (r < 0) {
		st->err[rc->idx] = -r;
		return 2;
	}
	if (write(rc->won, &self, sizeof(self)) != sizeof(self))
		return 3;
	for (;;) { /* EOF: the test has looked */
		ssize_t n = read(rc->release, &c, 1);
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	if (rc->unregister)
		svcfs_unregister(s);
	return 0; /* else the lock goes with the process, the socket file stays */
}

/*
 * RACE_KIDS processes, let go at once (EOF on a pipe), register the same
 * name, RACE_ROUNDS times: exactly one wins (exit 0), every other one gets
 * -EADDRINUSE (exit 1), and svc.sock is the winner's (SO_PEERCRED) with
 * its sidecar. Winners of odd rounds unregister, of even rounds just exit:
 * the next round's winner takes their dead socket over.
 */
Test(register, race_exactly_one_winner, .timeout = 120)
{
	struct race_state *rs = T.shm;

	for (int round = 0; round < RACE_ROUNDS; round++) {
		int start[2], release[2], won[2], status[RACE_KIDS], wins = 0, losses = 0;
		pid_t kids[RACE_KIDS], winner = 0, served_by = -1;
		json_object *side;
		bool got;
		int r = pipe2(start, O_CLOEXEC) | pipe2(release, O_CLOEXEC) | pipe2(won, O_CLOEXEC);
		int c;

		cr_assert_eq(r, 0, "pipe: %s", strerror(errno));
		memset(rs, 0, sizeof(*rs));
		for (int i = 0; i < RACE_KIDS; i++) {
			struct racer rc = {.start = start[0],
			                   .start_w = start[1],
			                   .release = release[0],
			                   .release_w = release[1],
			                   .won = won[1],
			                   .idx = i,
			                   .unregister = round % 2};
			kids[i] = kid_spawn(racer_main, &rc);
		}
		close(start[0]);
		close(release[0]);
		close(won[1]);
		close(start[1]); /* go */

		got = read_within(won[0], &winner, sizeof(winner), KID_MS);
		/* the losers end on their own; a second winner would wait to be killed */
		for (int i = 0; i < RACE_KIDS; i++)
			if (kids[i] != winner)
				status[i] = kid_join(kids[i], KID_MS);
		if (got) {
			c = connect_path(tpath("svc.sock"), SOCK_STREAM, 0);
			if (c >= 0) {
				served_by = peer_pid(c);
				close(c);
			}
		}
		side = json_file(tpath("svc.json"));
		close(release[1]); /* the winner may go */
		for (int i = 0; i < RACE_KIDS; i++)
			if (kids[i] == winner)
				status[i] = kid_join(kids[i], KID_MS);
		close(won[0]);

		for (int i = 0; i < RACE_KIDS; i++) {
			wins += exited_with(status[i], 0);
			losses += exited_with(status[i], 1);
			cr_assert(exited_with(status[i], 0) || exited_with(status[i], 1),
			          "round %d, racer %d: %s (error %d: %s)", round, i,
			          status_str(status[i]), rs->err[i], strerror(rs->err[i]));
		}
		cr_assert(got && wins == 1 && losses == RACE_KIDS - 1,
		          "round %d: %d winners, %d losers", round, wins, losses);
		cr_assert_eq(served_by, winner,
		             "round %d: svc.sock is served by %d, the winner is %d", round,
		             (int)served_by, (int)winner);
		{
			json_object *pid = NULL;
			bool ok = side && json_object_object_get_ex(side, "pid", &pid) &&
			          json_object_get_int(pid) == winner;
			json_object_put(side);
			cr_assert(ok, "round %d: svc.json is not the winner's", round);
		}
	}
	{
		const char *l = listing(T.dir);
		cr_assert(strcmp(l, "svc.lock") == 0 ||
		              strcmp(l, "svc.json svc.lock svc.sock") == 0,
		          "left: %s", l);
	}
}

/*
 * A SIGKILLed service leaves a socket file nobody listens on and a lock
 * nobody holds: the next registration takes the name on its first try.
 */
Test(register, crash_takeover)
{
	json_object *meta = json_object_new_object();
	struct svcfs_register_opts o = opts_in(T.dir);

	o.meta = meta;
	for (int i = 0; i < TAKEOVERS; i++) {
		struct svcfs_register_opts mine = opts_in(T.dir);
		json_object *gen = json_object_new_object();
		svcfs_service *s = NOT_SET;
		pid_t holder, served_by;
		int r, c, locked;

		json_object_object_add(meta, "gen", json_object_new_int(2 * i));
		json_object_object_add(gen, "gen", json_object_new_int(2 * i + 1));
		holder = holder_start("svc", &o);
		locked = lock_state(tpath("svc.lock"));
		cr_assert_eq(locked, 1, "control: the holder's lock is held");
		check_greets(tpath("svc.sock"));
		kid_kill(holder);

		/* what it left: a socket nobody listens on, a lock nobody holds */
		cr_assert(is_socket(tpath("svc.sock")));
		c = connect_path(tpath("svc.sock"), SOCK_STREAM, 0);
		if (c >= 0)
			close(c);
		cr_assert_eq(c, -ECONNREFUSED, "the dead socket: %d", c);

		mine.meta = gen;
		r = svcfs_register("svc", &mine, &s); /* first try */
		cr_assert_eq(r, 0, "takeover %d: %s", i, strerror(-r));
		c = connect_path(tpath("svc.sock"), SOCK_STREAM, 0);
		cr_assert_geq(c, 0, "connect to the new socket: %s", strerror(-c));
		served_by = peer_pid(c);
		check_exchange(svcfs_service_fd(s), c, SOCK_STREAM);
		cr_assert_eq(served_by, getpid(), "svc.sock is not the new one");
		check_sidecar(tpath("svc.json"), gen);
		svcfs_unregister(s);
		json_object_put(gen);
	}
	json_object_put(meta);
}

/* ==== long names ==== */

Test(register, long_paths_register_and_connect)
{
	struct svcfs_register_opts o;
	char deep[PATH_MAX];
	const char *lname = long_name("L", LONG_NAME);
	svcfs_service *s;
	int dfd, c, r;
	size_t plen;

	umask(077);
	/* the directory alone too long for sun_path: bound through /proc/self/fd/N/NAME */
	strcpy(deep, tpath("%s", long_name("d", 100)));
	r = mkdir(deep, 0755);
	cr_assert_eq(r, 0);
	o = opts_in(deep);
	o.mode = 0660;
	s = register_ok("svc", &o);
	plen = strlen(svcfs_service_path(s));
	cr_assert_gt(plen, sizeof(((struct sockaddr_un *)0)->sun_path));
	check_listing(deep, "svc.lock svc.sock", "");
	cr_assert_eq(mode_of(svcfs_service_path(s)), 0660);
	dfd = open(deep, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 0);
	c = connect_at(dfd, "svc.sock", SOCK_STREAM);
	close(dfd);
	cr_assert_geq(c, 0, "connect through /proc/self/fd/N/svc.sock: %s", strerror(-c));
	check_exchange(svcfs_service_fd(s), c, SOCK_STREAM);
	svcfs_unregister(s);

	/* a 200-byte name: not even /proc/self/fd/N/NAME fits */
	o = opts_in(T.dir);
	o.mode = 0660;
	s = register_ok(lname, &o);
	cr_assert_str_eq(svcfs_service_path(s), tpath("%s.sock", lname));
	cr_assert_eq(mode_of(svcfs_service_path(s)), 0660);
	cr_assert_eq(sock_int(svcfs_service_fd(s), SO_ACCEPTCONN), 1);
	{
		char want[2 * NAME_MAX + 64];
		snprintf(want, sizeof(want), "%s.lock %s.sock %s", lname, lname,
		         long_name("d", 100));
		check_listing(T.dir, want, "a temp file was left");
	}
	check_service_works(s, SOCK_STREAM); /* through an O_PATH fd: /proc/self/fd/N */
	svcfs_unregister(s);
	cr_assert_not(is_socket(tpath("%s.sock", lname)), "unregister left the long socket");
	umask(022);
}

Test(register, long_name_takeover_and_live_socket)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	const char *lname = long_name("L", LONG_NAME);
	char name[LONG_NAME + 1];
	svcfs_service *s;
	pid_t holder, plain;

	snprintf(name, sizeof(name), "%s", lname);
	holder = holder_start(name, &o);
	check_greets(tpath("%s.sock", name));
	kid_kill(holder);
	s = register_ok(name, &o); /* replaces the dead socket */
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);

	/* a live socket under a long name is not a dead one */
	plain = plain_start(tpath("%s.sock", name), SOCK_STREAM);
	check_refused(name, &o, -EADDRINUSE, "a live plain socket under a 200-byte name");
	check_greets(tpath("%s.sock", name));
	kid_kill(plain);
}

/*
 * A name too long for sun_path is bound under a hidden temp name, then
 * renamed: two threads of one process doing that at once (distinct
 * objects from distinct threads, which svcfs.h allows) must not pick the
 * same temp name and fail with a spurious -EADDRINUSE.
 */
struct namer {
	int id;
	int err; /* the first failure's -errno, 0 */
	int at;
};

static void *namer_main(void *arg)
{
	struct namer *n = arg;
	struct svcfs_register_opts o = opts_in(T.dir);

	for (int i = 0; i < THREAD_NAMES && !n->err; i++) {
		char prefix[32], name[LONG_NAME + 1];
		svcfs_service *s;
		int r;

		snprintf(prefix, sizeof(prefix), "t%d-%d-", n->id, i);
		memset(name, 'x', LONG_NAME);
		memcpy(name, prefix, strlen(prefix));
		name[LONG_NAME] = '\0';
		r = svcfs_register(name, &o, &s);
		if (r < 0) {
			n->err = r;
			n->at = i;
		} else {
			svcfs_unregister(s);
		}
	}
	return NULL;
}

Test(register, long_names_from_threads_at_once)
{
	struct namer n[2] = {{.id = 0}, {.id = 1}};
	pthread_t t[2];
	int r, temps;

	for (int i = 0; i < 2; i++) {
		r = pthread_create(&t[i], NULL, namer_main, &n[i]);
		cr_assert_eq(r, 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(n[i].err, 0, "thread %d, name %d: %s", i, n[i].at,
		             strerror(-n[i].err));
	temps = count_temps(T.dir);
	cr_assert_eq(temps, 0, "%d temp files were left", temps);
}

/* ==== set_meta ==== */

/* The sidecar of generation SEQ: odd ones carry a ~60 KiB string of one letter. */
static json_object *meta_seq(long seq)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "seq", json_object_new_int64(seq));
	if (seq % 2) {
		char *blob = malloc(BIG_BLOB + 1);
		if (!blob)
			return o;
		memset(blob, 'a' + (int)(seq % 26), BIG_BLOB);
		blob[BIG_BLOB] = '\0';
		json_object_object_add(o, "blob", json_object_new_string_len(blob, BIG_BLOB));
		free(blob);
	} else {
		json_object_object_add(o, "small", json_object_new_boolean(1));
	}
	return o;
}

struct meta_state {
	atomic_int ready, stop;
	atomic_long writes;
};

static int meta_writer_main(void *arg)
{
	struct meta_state *m = arg;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *first = meta_seq(0);
	svcfs_service *s;
	int r;

	o.meta = first;
	r = svcfs_register("svc", &o, &s);
	json_object_put(first);
	if (r < 0)
		return kid_fail(2, "writer: svcfs_register: %s", strerror(-r));
	atomic_store(&m->ready, 1);
	for (long seq = 1; !atomic_load(&m->stop); seq++) {
		json_object *meta = meta_seq(seq);
		r = svcfs_service_set_meta(s, meta);
		json_object_put(meta);
		if (r < 0)
			return kid_fail(3, "writer: set_meta %ld: %s", seq, strerror(-r));
		atomic_store(&m->writes, seq);
	}
	return 0; /* without unregistering: the sidecar stays */
}

Test(register, set_meta_is_atomic, .timeout = 90)
{
	struct meta_state *m = T.shm;
	long reads = 0, bigs = 0, smalls = 0, last = -1;
	long long end;
	pid_t writer = kid_spawn(meta_writer_main, m);

	end = now_ms() + KID_MS;
	while (!atomic_load(&m->ready) && now_ms() < end)
		sleep_ms(1);
	cr_assert(atomic_load(&m->ready), "writer did not register: %s", T.msg);

	end = now_ms() + META_BOUND_MS;
	while (now_ms() < end && (reads < META_READS || atomic_load(&m->writes) < META_WRITES ||
	                          bigs == 0 || smalls == 0)) {
		json_object *got = json_file(tpath("svc.json")), *want, *seq;
		long n = -1;
		bool same;

		if (got && json_object_object_get_ex(got, "seq", &seq))
			n = json_object_get_int64(seq);
		want = meta_seq(n);
		same = got && json_object_equal(got, want);
		json_object_put(got);
		json_object_put(want);
		cr_assert(same, "read %ld: svc.json is not one whole object written (seq %ld)",
		          reads, n);
		cr_assert_geq(n, last, "read %ld: seq %ld after %ld: an older sidecar came back",
		              reads, n, last);
		last = n;
		reads++;
		if (n % 2)
			bigs++;
		else
			smalls++;
	}
	atomic_store(&m->stop, 1);
	check_kid(writer, "writer");
	cr_assert_geq(reads, META_READS, "only %ld reads", reads);
	cr_assert_geq(atomic_load(&m->writes), META_WRITES, "only %ld writes",
	              atomic_load(&m->writes));
	cr_assert(bigs && smalls, "reads saw %ld big and %ld small sidecars", bigs, smalls);
	check_listing(T.dir, "svc.json svc.lock svc.sock", "a temp file was left");
}

Test(register, set_meta_null_and_invalid)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *a = meta_new(), *b = json_object_new_object();
	json_object *nan = json_object_new_object(), *arr = json_object_new_array();
	json_object *big = meta_blob(70 * 1024);
	svcfs_service *s;
	char *before, *after;
	ino_t ino;
	int r;

	json_object_object_add(b, "version", json_object_new_string("2"));
	json_object_object_add(nan, "x", json_object_new_double(NAN));
	umask(077);
	o.meta = a;
	o.mode = 0660;
	s = register_ok("svc", &o);
	check_sidecar(tpath("svc.json"), a);

	r = svcfs_service_set_meta(s, b);
	cr_assert_eq(r, 0, "set_meta: %s", strerror(-r));
	check_sidecar(tpath("svc.json"), b);
	cr_assert_eq(mode_of(tpath("svc.json")), 0640);

	/* refused: the previous sidecar stays, byte for byte */
	before = slurp(tpath("svc.json"), NULL);
	ino = ino_of(tpath("svc.json"));
	r = svcfs_service_set_meta(s, nan);
	cr_assert_eq(r, -EINVAL, "set_meta NaN: %d", r);
	r = svcfs_service_set_meta(s, arr);
	cr_assert_eq(r, -EINVAL, "set_meta an array: %d", r);
	r = svcfs_service_set_meta(s, big);
	cr_assert_eq(r, -EFBIG, "set_meta 70 KiB: %d", r);
	after = slurp(tpath("svc.json"), NULL);
	cr_assert(before && after && strcmp(before, after) == 0, "a refused set_meta changed it");
	cr_assert_eq(ino_of(tpath("svc.json")), ino);
	free(before);
	free(after);
	check_listing(T.dir, "svc.json svc.lock svc.sock", "a temp file was left");

	r = svcfs_service_set_meta(s, NULL);
	cr_assert_eq(r, 0, "set_meta NULL: %s", strerror(-r));
	check_listing(T.dir, "svc.lock svc.sock", "");
	r = svcfs_service_set_meta(s, NULL);
	cr_assert_eq(r, 0, "set_meta NULL without a sidecar: %s", strerror(-r));
	r = svcfs_service_set_meta(s, a);
	cr_assert_eq(r, 0);
	check_sidecar(tpath("svc.json"), a);
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);
	umask(022);
	json_object_put(a);
	json_object_put(b);
	json_object_put(nan);
	json_object_put(arr);
	json_object_put(big);
}

/* ==== unregister ==== */

Test(register, unregister_cleans_up_and_releases)
{
	int locked;
	struct svcfs_register_opts o = opts_in(T.dir);
	json_object *meta = meta_new();
	svcfs_service *s, *ret;
	int fd, flags, e, c;

	o.meta = meta;
	s = register_ok("svc", &o);
	fd = svcfs_service_fd(s);
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 1, "control: held while registered");
	ret = svcfs_unregister(s);
	flags = fcntl(fd, F_GETFD); /* nothing opened since */
	e = errno;
	cr_assert_null(ret);
	cr_assert(flags < 0 && e == EBADF, "the socket fd %d is still open", fd);
	check_listing(T.dir, "svc.lock", "");
	locked = lock_state(tpath("svc.lock"));
	cr_assert_eq(locked, 0, "the lock is still held");
	c = connect_path(tpath("svc.sock"), SOCK_STREAM, 0);
	cr_assert_eq(c, -ENOENT);

	/* the name is free again, in this process too */
	s = register_ok("svc", &o);
	check_service_works(s, SOCK_STREAM);
	svcfs_unregister(s);

	ret = svcfs_unregister(NULL);
	cr_assert_null(ret);
	json_object_put(meta);
}

Test(register, unregister_keeps_a_replaced_socket)
{
	struct svcfs_register_opts o = opts_in(T.dir);
	svcfs_service *s;
	pid_t plain;
	ino_t ino;

	s = register_ok("svc", &o);
	/* someone else's socket now: it is not ours to remove */
	unlink(tpath("svc.sock"));
	plain = plain_start(tpath("svc.sock"), SOCK_STREAM);
	ino = ino_of(tpath("svc.sock"));
	svcfs_unregister(s);
	cr_assert_eq(ino_of(tpath("svc.sock")), ino, "unregister removed someone else's socket");
	check_greets(tpath("svc.sock"));
	kid_kill(plain);
}

Test(register, null_service)
{
	json_object *meta = meta_new();
	int r;

	cr_assert_eq(svcfs_service_fd(NULL), -EINVAL);
	cr_assert_null(svcfs_service_path(NULL));
	r = svcfs_service_listen(NULL);
	cr_assert_eq(r, -EINVAL);
	r = svcfs_service_set_meta(NULL, meta);
	cr_assert_eq(r, -EINVAL);
	json_object_put(meta);
}

/* ==== default directories ==== */

/* A uid nobody uses here whose /tmp/svcfs-UID does not exist; that path is removed at teardown. */
static uid_t other_uid(void)
{
	uid_t base = 60000 + (uid_t)(getpid() % 4000);

	if (geteuid() != 0)
		cr_skip_test("needs root to become another user");
	for (uid_t u = base; u < base + 100; u++) {
		char path[64];
		struct stat st;

		snprintf(path, sizeof(path), "/tmp/svcfs-%u", (unsigned)u);
		if (lstat(path, &st) < 0 && errno == ENOENT) {
			snprintf(T.user_tmp, sizeof(T.user_tmp), "%s", path);
			return u;
		}
	}
	cr_assert_fail("no free /tmp/svcfs-UID");
	return 0;
}

/* In a child: become UID (its own group, no others). */
static int become(uid_t uid)
{
	if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
		return -errno;
	prctl(PR_SET_PDEATHSIG, SIGKILL); /* the change of credentials cleared it */
	return 0;
}

static void set_env(const char *var, const char *value)
{
	if (value)
		setenv(var, value, 1);
	else
		unsetenv(var);
}

/* One call of svcfs_default_dir or _mount, in a child with this environment and uid. */
struct env_case {
	const char *what;
	uid_t uid; /* 0: stay root */
	mode_t umask;
	const char *svcfs_dir, *xdg, *svcfs_mount; /* NULL: unset */
	bool mount;                                /* svcfs_default_mount */
	int want;                                  /* 0 or -errno */
	const char *want_path;
};

static int env_case_main(void *arg)
{
	const struct env_case *c = arg;
	char *path = (char *)&sentinel_byte;
	int r;

	set_env("SVCFS_DIR", c->svcfs_dir);
	set_env("XDG_RUNTIME_DIR", c->xdg);
	set_env("SVCFS_MOUNT", c->svcfs_mount);
	umask(c->umask);
	if (c->uid && (r = become(c->uid)) < 0)
		return kid_fail(2, "setresuid %u: %s", (unsigned)c->uid, strerror(-r));
	r = c->mount ? svcfs_default_mount(&path) : svcfs_default_dir(&path);
	if (r != c->want)
		return kid_fail(3, "returned %d (%s), expected %d", r, strerror(-r), c->want);
	if (r < 0)
		return path == (char *)&sentinel_byte ? 0 : kid_fail(4, "ret_path written");
	if (strcmp(path, c->want_path) != 0)
		return kid_fail(5, "got %s, expected %s", path, c->want_path);
	free(path);
	return 0;
}

static void check_env_case(const struct env_case *c)
{
	pid_t pid = kid_spawn(env_case_main, (void *)c);
	int st = kid_join(pid, KID_MS);

	cr_assert(exited_with(st, 0), "%s: %s: %s", c->what, status_str(st), T.msg);
}

Test(dirs, svcfs_dir_env_wins)
{
	uid_t u = other_uid();
	struct env_case cases[] = {
	    {"SVCFS_DIR, root", 0, 022, "/srv/here", "/x", NULL, false, 0, "/srv/here"},
	    {"SVCFS_DIR, user", u, 022, "/srv/here", "/x", NULL, false, 0, "/srv/here"},
	    {"empty SVCFS_DIR, root", 0, 022, "", NULL, NULL, false, 0, "/run/svcfs"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_env_case(&cases[i]);
	cr_assert_eq(mode_of(T.user_tmp), -ENOENT, "%s was created", T.user_tmp);
}

Test(dirs, root_gets_run_svcfs)
{
	struct env_case c = {"root", 0, 022, NULL, "/run/user/0", NULL, false, 0, "/run/svcfs"};

	if (geteuid() != 0)
		cr_skip_test("needs root");
	check_env_case(&c);
}

Test(dirs, user_gets_xdg_runtime_dir)
{
	uid_t u = other_uid();
	char want[PATH_MAX];
	struct env_case c = {"user with XDG_RUNTIME_DIR", u, 022, NULL, NULL, NULL, false, 0, want};
	const char *xdg = tpath("xdg");

	c.xdg = xdg;
	snprintf(want, sizeof(want), "%s/svcfs", xdg);
	check_env_case(&c);
	check_listing(T.dir, "", "it was created");
	cr_assert_eq(mode_of(T.user_tmp), -ENOENT, "%s was created", T.user_tmp);
}

Test(dirs, user_tmp_dir_created_0700)
{
	uid_t u = other_uid();
	struct env_case c = {
	    "user, no XDG_RUNTIME_DIR", u, 0777, NULL, NULL, NULL, false, 0, T.user_tmp};
	struct stat st;
	int r;

	check_env_case(&c); /* umask 0777: the mode is set, not left to the umask */
	r = lstat(T.user_tmp, &st);
	cr_assert_eq(r, 0, "%s: %s", T.user_tmp, strerror(errno));
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0700, "mode %o", (unsigned)(st.st_mode & 07777));
	cr_assert_eq(st.st_uid, u, "owned by %u", (unsigned)st.st_uid);

	c.what = "user, existing /tmp/svcfs-UID";
	c.umask = 0;
	check_env_case(&c);
	cr_assert_eq(mode_of(T.user_tmp), 0700);

	c.what = "user, empty XDG_RUNTIME_DIR";
	c.xdg = "";
	check_env_case(&c);
}

Test(dirs, user_tmp_dir_refused)
{
	uid_t u = other_uid();
	struct env_case c = {"", u, 022, NULL, NULL, NULL, false, -EPERM, NULL};
	const char *p = T.user_tmp;
	char link[PATH_MAX];
	ssize_t n;
	int r;

	/* another user's */
	r = mkdir(p, 0700);
	cr_assert_eq(r, 0);
	c.what = "owned by root";
	check_env_case(&c);
	r = chown(p, u + 1, u + 1);
	cr_assert_eq(r, 0);
	c.what = "owned by another user";
	check_env_case(&c);

	/* ours, but open to others */
	r = chown(p, u, u) | chmod(p, 0777);
	cr_assert_eq(r, 0);
	c.what = "mode 0777";
	check_env_case(&c);
	cr_assert_eq(mode_of(p), 0777, "a refused directory was changed");
	r = chmod(p, 0750);
	cr_assert_eq(r, 0);
	c.what = "mode 0750";
	check_env_case(&c);

	/* control: ours alone */
	r = chmod(p, 0700);
	cr_assert_eq(r, 0);
	c.what = "ours, 0700 (control)";
	c.want = 0;
	c.want_path = p;
	check_env_case(&c);
	rmdir(p);

	/* a symlink to a directory of ours, and a regular file */
	r = mkdir(tpath("real"), 0700);
	cr_assert_eq(r, 0);
	r = chown(tpath("real"), u, u) | symlink(tpath("real"), p);
	cr_assert_eq(r, 0);
	c.what = "a symlink";
	c.want = -EPERM;
	check_env_case(&c);
	n = readlink(p, link, sizeof(link) - 1);
	cr_assert_gt(n, 0, "the symlink was removed");
	unlink(p);
	write_file(p, "", 0600);
	r = chown(p, u, u);
	cr_assert_eq(r, 0);
	c.what = "a regular file";
	check_env_case(&c);
}

Test(dirs, default_mount)
{
	uid_t u = other_uid();
	char want[PATH_MAX];
	const char *xdg = tpath("xdg");
	struct env_case cases[] = {
	    {"SVCFS_MOUNT, root", 0, 022, NULL, "/x", "/mnt/here", true, 0, "/mnt/here"},
	    {"SVCFS_MOUNT, user", u, 022, NULL, "/x", "/mnt/here", true, 0, "/mnt/here"},
	    {"empty SVCFS_MOUNT, root", 0, 022, NULL, "/x", "", true, 0, "/run/services"},
	    {"root", 0, 022, NULL, NULL, NULL, true, 0, "/run/services"},
	    {"user with XDG_RUNTIME_DIR", u, 022, NULL, xdg, NULL, true, 0, want},
	    {"user without XDG_RUNTIME_DIR", u, 022, NULL, NULL, NULL, true, -ENOENT, NULL},
	    {"user, empty XDG_RUNTIME_DIR", u, 022, NULL, "", NULL, true, -ENOENT, NULL},
	};

	snprintf(want, sizeof(want), "%s/services", xdg);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_env_case(&cases[i]);
	check_listing(T.dir, "", "something was created");
	cr_assert_eq(mode_of(T.user_tmp), -ENOENT, "%s was created", T.user_tmp);
}

/* svcfs_register with no directory: the default one, created. */
struct default_reg {
	uid_t uid; /* 0: root */
	const char *svcfs_dir, *xdg;
	const char *want_path;
};

static int default_reg_main(void *arg)
{
	const struct default_reg *d = arg;
	svcfs_service *s;
	int r;

	set_env("SVCFS_DIR", d->svcfs_dir);
	set_env("XDG_RUNTIME_DIR", d->xdg);
	umask(022);
	if (d->uid && (r = become(d->uid)) < 0)
		return kid_fail(2, "setresuid: %s", strerror(-r));
	r = svcfs_register("svc", NULL, &s);
	if (r < 0)
		return kid_fail(3, "svcfs_register(svc, NULL): %s", strerror(-r));
	if (strcmp(svcfs_service_path(s), d->want_path) != 0)
		return kid_fail(4, "path %s, expected %s", svcfs_service_path(s), d->want_path);
	if (!is_socket(d->want_path))
		return kid_fail(5, "%s is not a socket", d->want_path);
	svcfs_unregister(s);
	return 0;
}

Test(dirs, register_without_a_directory)
{
	uid_t u = other_uid();
	struct default_reg root = {0, NULL, NULL, NULL}, user = {u, NULL, NULL, NULL};
	char want_root[PATH_MAX], want_user[PATH_MAX];
	struct stat st;
	int r;

	/* root, SVCFS_DIR missing: created */
	root.svcfs_dir = tpath("auto");
	snprintf(want_root, sizeof(want_root), "%s/svc.sock", root.svcfs_dir);
	root.want_path = want_root;
	check_kid(kid_spawn(default_reg_main, &root), "root, SVCFS_DIR");
	cr_assert_eq(mode_of(tpath("auto")), 0755);
	check_listing(tpath("auto"), "svc.lock", "");

	/* a user with XDG_RUNTIME_DIR: $XDG_RUNTIME_DIR/svcfs created 0700 */
	r = chmod(T.dir, 0755) | mkdir(tpath("xdg"), 0700) | chown(tpath("xdg"), u, u);
	cr_assert_eq(r, 0);
	user.xdg = tpath("xdg");
	snprintf(want_user, sizeof(want_user), "%s/svcfs/svc.sock", user.xdg);
	user.want_path = want_user;
	check_kid(kid_spawn(default_reg_main, &user), "user, XDG_RUNTIME_DIR");
	r = lstat(tpath("xdg/svcfs"), &st);
	cr_assert_eq(r, 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(st.st_uid, u);
	check_listing(tpath("xdg/svcfs"), "svc.lock", "");
	cr_assert_eq(mode_of(tpath("xdg/svcfs/svc.lock")), 0600);
}
