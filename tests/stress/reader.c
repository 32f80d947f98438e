/*
 * reader — what users do to the mount while it churns, in a loop until the
 * phase is STOP:
 *   reader 0: walks (readdir of the root and the groups), lstat of every
 *             entry and every file of every service, read of every file
 *             (meta.json must parse as a JSON object, state must be a
 *             state), readlink of socket, listxattr + getxattr of each;
 *   reader 1: the same walk, plus connect() through MNT/NAME/socket, and
 *             .services.json / .targets.json parsed (a JSON array);
 *   reader 2: runs the real tools: `ls -laR MNT`, and `cat` of the
 *             meta.json and state files of the services it saw listed;
 *             every line of their stderr must be about an entry that
 *             vanished.
 *
 * An entry can vanish between any two calls: ENOENT and ENOTDIR are what a
 * vanished entry gives (counted, not failures); ECONNREFUSED is what a
 * connect to a socket whose owner just died gives. Every other error, a
 * meta.json that is not a JSON object, a state that is no state, a socket
 * link that does not point into BACKING, an entry in the mount that is
 * none of our names — is a failure.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <json-c/json.h>

#include "soak.h"

#define FILE_MAX   (128 * 1024) /* a service's file: the sidecar is at most 64 KiB */
#define XLIST_MAX  (64 * 1024)
#define CAT_MAX    24 /* services per cat run */
#define STDERR_MAX (256 * 1024)
#define PAUSE_US   2000 /* between two walks */

struct reader {
	unsigned r, p;
	char *buf;   /* FILE_MAX */
	char *xlist; /* XLIST_MAX */
	char cat[CAT_MAX][64];
	unsigned ncat;
};

static struct soak_figs *F(struct reader *rd)
{
	return &S->figs[rd->p];
}

static bool vanished(int err)
{
	return err == ENOENT || err == ENOTDIR;
}

/* ERR from OP on PATH: a vanished entry (counted) or a failure. */
static void met(struct reader *rd, int err, const char *op, const char *path)
{
	if (vanished(err))
		atomic_fetch_add(&F(rd)->vanished_errs, 1);
	else
		soak_fail(rd->p, "%s %s: %s", op, path, strerror(err));
}

/* Read FD whole into rd->buf (NUL-terminated). Length, or -errno. */
static ssize_t read_all(struct reader *rd, int fd)
{
	size_t len = 0;

	for (;;) {
		ssize_t n = read(fd, rd->buf + len, FILE_MAX - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == FILE_MAX - 1)
			return -EFBIG;
	}
	rd->buf[len] = '\0';
	return (ssize_t)len;
}

static bool is_state(const char *s)
{
	return strcmp(s, "alive\n") == 0 || strcmp(s, "busy\n") == 0 ||
	       strcmp(s, "unhealthy\n") == 0 || strcmp(s, "activatable\n") == 0;
}

/* A read that got a text cut or mixed by a change racing it: counted, and a failure. */
#define TORN(rd, ...)                                                                              \
	do {                                                                                       \
		atomic_fetch_add(&F(rd)->torn, 1);                                                 \
		soak_fail((rd)->p, __VA_ARGS__);                                                   \
	} while (0)

/* Check what FILE of service REL holds (rd->buf, LEN bytes). */
static void check_content(struct reader *rd, const char *rel, const char *file, ssize_t len)
{
	if (strcmp(file, "meta.json") == 0) {
		json_object *o = json_tokener_parse(rd->buf);
		bool ok = o && json_object_is_type(o, json_type_object);
		json_object_put(o);
		if (!ok)
			TORN(rd, "%s/meta.json is not a JSON object (%zd bytes): %.200s", rel, len,
			     rd->buf);
	} else if (strcmp(file, "state") == 0) {
		if (!is_state(rd->buf))
			soak_fail(rd->p, "%s/state reads '%.40s'", rel, rd->buf);
	} else if (len == 0 || rd->buf[len - 1] != '\n') {
		TORN(rd, "%s/%s does not end with a newline (%zd bytes)", rel, file, len);
	}
}

static void check_xattrs(struct reader *rd, const char *path)
{
	ssize_t n = listxattr(path, rd->xlist, XLIST_MAX);

	atomic_fetch_add(&F(rd)->xattr_lists, 1);
	if (n < 0) {
		met(rd, errno, "listxattr", path);
		return;
	}
	for (char *a = rd->xlist; a < rd->xlist + n; a += strlen(a) + 1) {
		ssize_t v = getxattr(path, a, rd->buf, FILE_MAX);
		atomic_fetch_add(&F(rd)->xattr_gets, 1);
		if (v < 0) {
			char what[300];
			int err = errno;
			snprintf(what, sizeof(what), "getxattr %s", a);
			met(rd, err, what, path);
			return;
		}
	}
}

static void try_connect(struct reader *rd, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		soak_fail(rd->p, "socket: %s", strerror(errno));
		return;
	}
	atomic_fetch_add(&F(rd)->connects, 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno == ECONNREFUSED)
			atomic_fetch_add(&F(rd)->vanished_errs, 1);
		else
			met(rd, errno, "connect", path);
	}
	close(fd);
}

/* Everything in the service directory MNT/REL. */
static void visit_service(struct reader *rd, const char *rel)
{
	char path[PATH_MAX], fpath[PATH_MAX + 256], link[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int dfd;

	soak_fmt(path, sizeof(path), "%s/%s", S->mnt, rel);
	atomic_fetch_add(&F(rd)->stats, 1);
	if (lstat(path, &st) < 0) {
		met(rd, errno, "lstat", path);
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		soak_fail(rd->p, "%s is not a directory (mode %o)", path, st.st_mode);
		return;
	}
	dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		met(rd, errno, "open", path);
		return;
	}
	d = fdopendir(dfd);
	if (!d) {
		soak_fail(rd->p, "fdopendir %s: %s", path, strerror(errno));
		close(dfd);
		return;
	}
	for (;;) {
		ssize_t len;
		int fd;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				met(rd, errno, "readdir", path);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		snprintf(fpath, sizeof(fpath), "%s/%s", path, de->d_name);
		atomic_fetch_add(&F(rd)->stats, 1);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			met(rd, errno, "fstatat", fpath);
			continue;
		}
		if (S_ISLNK(st.st_mode)) {
			char want[PATH_MAX + 64];
			ssize_t n = readlinkat(dfd, de->d_name, link, sizeof(link) - 1);
			if (n < 0) {
				met(rd, errno, "readlink", fpath);
				continue;
			}
			link[n] = '\0';
			soak_fmt(want, sizeof(want), "%s/%s.sock", S->backing, rel);
			if (strcmp(de->d_name, "socket") != 0 || strcmp(link, want) != 0)
				soak_fail(rd->p, "%s -> %s (expected %s)", fpath, link, want);
			else if (rd->r == 1)
				try_connect(rd, fpath);
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			soak_fail(rd->p, "%s: unexpected mode %o", fpath, st.st_mode);
			continue;
		}
		fd = openat(dfd, de->d_name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			met(rd, errno, "open", fpath);
			continue;
		}
		len = read_all(rd, fd);
		close(fd);
		atomic_fetch_add(&F(rd)->reads, 1);
		if (len < 0) {
			met(rd, (int)-len, "read", fpath);
			continue;
		}
		check_content(rd, rel, de->d_name, len);
	}
	closedir(d);
	if (rd->r == 0)
		check_xattrs(rd, path);
}

/* An aggregate (.services.json, .targets.json): a JSON array. */
static void read_aggregate(struct reader *rd, const char *file)
{
	char path[PATH_MAX];
	json_object *o;
	ssize_t len;
	int fd;

	soak_fmt(path, sizeof(path), "%s/%s", S->mnt, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		soak_fail(rd->p, "open %s: %s", path, strerror(errno));
		return;
	}
	len = read_all(rd, fd);
	close(fd);
	atomic_fetch_add(&F(rd)->reads, 1);
	if (len < 0) {
		soak_fail(rd->p, "read %s: %s", path, strerror((int)-len));
		return;
	}
	o = json_tokener_parse(rd->buf);
	if (!o || !json_object_is_type(o, json_type_array))
		TORN(rd, "%s is not a JSON array (%zd bytes)", path, len);
	json_object_put(o);
}

/* Walk the group REL ("" for the root): services visited, groups walked. */
static void walk(struct reader *rd, const char *rel)
{
	char path[PATH_MAX], child[PATH_MAX];
	struct dirent *de;
	DIR *d;

	soak_fmt(path, sizeof(path), "%s%s%s", S->mnt, rel[0] ? "/" : "", rel);
	d = opendir(path);
	if (!d) {
		soak_fail(rd->p, "opendir %s: %s", path, strerror(errno)); /* groups never go */
		return;
	}
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				soak_fail(rd->p, "readdir %s: %s", path, strerror(errno));
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] == '.') {
			if (rd->r == 1 && !rel[0])
				read_aggregate(rd, de->d_name);
			continue;
		}
		snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
		if (soak_is_group(child)) {
			walk(rd, child);
		} else if (soak_index(child) < 0) {
			soak_fail(rd->p, "%s/%s: none of our names", S->mnt, child);
		} else if (rd->r == 2) {
			if (rd->ncat < CAT_MAX)
				soak_fmt(rd->cat[rd->ncat++], sizeof(rd->cat[0]), "%s", child);
		} else {
			visit_service(rd, child);
		}
	}
	closedir(d);
}

/* stderr lines of a tool that are not about a vanished entry: failures. */
static void check_tool_stderr(struct reader *rd, const char *tool, char *text)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		size_t len = strlen(line);
		static const char *const ok[] = {": No such file or directory",
		                                 ": Not a directory"};
		bool fine = false;
		for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			size_t l = strlen(ok[i]);
			fine = fine || (len >= l && strcmp(line + len - l, ok[i]) == 0);
		}
		if (fine)
			atomic_fetch_add(&F(rd)->vanished_errs, 1);
		else
			soak_fail(rd->p, "%s: %.300s", tool, line);
	}
}

/* Run ARGV with stdout to /dev/null; its stderr checked. */
static void run_tool(struct reader *rd, char *const argv[])
{
	char *err = rd->buf;
	size_t len = 0;
	int p[2], st;
	pid_t pid, parent = getpid();

	if (pipe2(p, O_CLOEXEC) < 0) {
		soak_fail(rd->p, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid < 0) {
		soak_fail(rd->p, "fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent || null < 0 || dup2(null, 1) < 0 || dup2(p[1], 2) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n = read(p[0], err + len, STDERR_MAX - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == STDERR_MAX - 1)
			break;
	}
	err[len] = '\0';
	close(p[0]);
	waitpid(pid, &st, 0);
	atomic_fetch_add(&F(rd)->execs, 1);
	/* ls: 1 and 2 for entries it could not reach; cat: 1 */
	if (!WIFEXITED(st) || WEXITSTATUS(st) > 2)
		soak_fail(rd->p, "%s ended with status %#x", argv[0], st);
	check_tool_stderr(rd, argv[0], err);
}

static void tools(struct reader *rd, uint64_t round)
{
	static char files[2 * CAT_MAX][PATH_MAX];
	char *argv[2 * CAT_MAX + 2];
	unsigned n = 0;

	if (round % 3 == 0) {
		char *ls[] = {"ls", "-laR", S->mnt, NULL};
		run_tool(rd, ls);
		return;
	}
	rd->ncat = 0;
	walk(rd, ""); /* the names to cat */
	argv[n++] = "cat";
	for (unsigned i = 0; i < rd->ncat; i++) {
		soak_fmt(files[2 * i], PATH_MAX, "%s/%s/meta.json", S->mnt, rd->cat[i]);
		soak_fmt(files[2 * i + 1], PATH_MAX, "%s/%s/state", S->mnt, rd->cat[i]);
		argv[n++] = files[2 * i];
		argv[n++] = files[2 * i + 1];
	}
	argv[n] = NULL;
	if (n > 1)
		run_tool(rd, argv);
}

int soak_reader(unsigned r)
{
	static struct reader rd;
	uint64_t round = 0;

	rd.r = r;
	rd.p = SOAK_P_READER + r;
	rd.buf = malloc(STDERR_MAX > FILE_MAX ? STDERR_MAX : FILE_MAX);
	rd.xlist = malloc(XLIST_MAX);
	if (!rd.buf || !rd.xlist) {
		soak_fail(rd.p, "out of memory");
		return 1;
	}
	while (soak_phase(NULL) != SOAK_PH_STOP) {
		if (r == 2)
			tools(&rd, round);
		else
			walk(&rd, "");
		round++;
		atomic_fetch_add(&F(&rd)->walks, 1);
		soak_sleep_us(PAUSE_US);
	}
	free(rd.buf);
	free(rd.xlist);
	return atomic_load(&F(&rd)->bad) ? 1 : 0;
}
