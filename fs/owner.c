/*
 * owner — see owner.h. /proc is read with *at() calls from a directory fd
 * of /proc/PID so that a reused PID cannot switch processes between two
 * reads of one check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "owner.h"
#include "probe.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif

#define TICK_NS 10000000ll /* USER_HZ = 100 */

/*
 * FN(CTX, inode) for each socket held in FDDIR (a /proc/PID/fd, consumed)
 * until FN returns non-zero; returns that, 0 at the end, or -errno.
 */
static int each_socket(int fddir, int (*fn)(void *ctx, uint32_t sock_ino), void *ctx)
{
	struct dirent *de;
	DIR *dp = fdopendir(fddir);
	int r = 0;

	if (!dp) {
		r = -errno;
		close(fddir);
		return r;
	}
	while (r == 0 && (de = readdir(dp))) {
		char link[64];
		unsigned long ino;
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		n = readlinkat(dirfd(dp), de->d_name, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (sscanf(link, "socket:[%lu]", &ino) == 1 && ino <= UINT32_MAX)
			r = fn(ctx, (uint32_t)ino);
	}
	closedir(dp);
	return r;
}

static int is_wanted(void *ctx, uint32_t sock_ino)
{
	return *(const uint32_t *)ctx == sock_ino;
}

/* 1 if directory FDDIR (a /proc/PID/fd, consumed) holds an fd on socket SOCK_INO. */
static int fd_dir_holds(int fddir, uint32_t sock_ino)
{
	return each_socket(fddir, is_wanted, &sock_ino);
}

static int open_proc_pid(pid_t pid)
{
	char path[32];
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld", (long)pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd;
}

static int holds_at(int procfd, uint32_t sock_ino)
{
	int fddir = openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fddir < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	return fd_dir_holds(fddir, sock_ino);
}

int owner_holds_socket(pid_t pid, uint32_t sock_ino)
{
	int procfd = open_proc_pid(pid), r;

	if (procfd < 0)
		return procfd;
	r = holds_at(procfd, sock_ino);
	close(procfd);
	return r;
}

int owner_find_holder(uint32_t sock_ino, pid_t *ret_pid)
{
	struct dirent *de;
	DIR *dp = opendir("/proc");
	int r = -ESRCH;

	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		int fd;
		if (*end || pid <= 0)
			continue;
		fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (holds_at(fd, sock_ino) == 1) {
			*ret_pid = (pid_t)pid;
			r = 0;
		}
		close(fd);
		if (r == 0)
			break;
	}
	closedir(dp);
	return r;
}

struct holders_add_ctx {
	struct holders *h;
	pid_t pid;
};

static int holders_add_one(void *ctx, uint32_t sock_ino)
{
	struct holders_add_ctx *c = ctx;
	struct holders *h = c->h;

	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 256;
		struct holder *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = (struct holder){sock_ino, c->pid};
	return 0;
}

/* Add the sockets held in FDDIR (a /proc/PID/fd, consumed) by PID to H. */
static int holders_add(struct holders *h, int fddir, pid_t pid)
{
	struct holders_add_ctx c = {h, pid};

	return each_socket(fddir, holders_add_one, &c);
}

static int holder_cmp(const void *a, const void *b)
{
	const struct holder *x = a, *y = b;

	if (x->sock_ino != y->sock_ino)
		return x->sock_ino < y->sock_ino ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

int owner_holders_load(struct holders *h)
{
	struct dirent *de;
	DIR *dp = opendir("/proc");
	size_t j = 0;
	int r = 0;

	h->n = 0;
	if (!dp)
		return -errno;
	while (r == 0 && (de = readdir(dp))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		int fd, fddir;

		if (*end || pid <= 0)
			continue;
		fd = openat(dirfd(dp), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				r = -errno;
			continue;
		}
		fddir = openat(fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fddir < 0 && (errno == EMFILE || errno == ENFILE))
			r = -errno;
		close(fd);
		if (fddir >= 0 && holders_add(h, fddir, (pid_t)pid) == -ENOMEM)
			r = -ENOMEM;
	}
	closedir(dp);
	if (r < 0) {
		h->n = 0;
		return r;
	}
	/* by socket, then pid; one entry per (socket, process) */
	qsort(h->v, h->n, sizeof(*h->v), holder_cmp);
	for (size_t i = 0; i < h->n; i++)
		if (j == 0 || holder_cmp(&h->v[j - 1], &h->v[i]) != 0)
			h->v[j++] = h->v[i];
	h->n = j;
	return 0;
}

/* Index of the first entry for SOCK_INO (or where it would be). */
static size_t holders_first(const struct holders *h, uint32_t sock_ino)
{
	size_t lo = 0, hi = h->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->v[mid].sock_ino < sock_ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

pid_t owner_holders_find(const struct holders *h, uint32_t sock_ino)
{
	size_t i = holders_first(h, sock_ino);

	return i < h->n && h->v[i].sock_ino == sock_ino ? h->v[i].pid : 0;
}

bool owner_holders_has(const struct holders *h, uint32_t sock_ino, pid_t pid)
{
	for (size_t i = holders_first(h, sock_ino); i < h->n && h->v[i].sock_ino == sock_ino; i++)
		if (h->v[i].pid == pid)
			return true;
	return false;
}

void owner_holders_free(struct holders *h)
{
	free(h->v);
	*h = (struct holders){0};
}

/* Start time in clock ticks since boot, from /proc/PID/stat field 22. */
static int start_ticks_at(int procfd, unsigned long long *ret)
{
	char buf[1024], *p;
	ssize_t n;
	int fd = openat(procfd, "stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/*
	 * The command name may hold spaces and ')': fields start after the
	 * last ')'. P starts at the space before field 3 (state); move it to
	 * the space before field 22 (starttime).
	 */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	*ret = strtoull(p + 1, NULL, 10);
	return 0;
}

static int start_time_at(int procfd, struct timespec *ret)
{
	unsigned long long ticks;
	struct timespec real, boot;
	long long start_ns;
	int r = start_ticks_at(procfd, &ticks);

	if (r < 0)
		return r;
	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	/* wall time of boot + time since boot at start */
	start_ns = (real.tv_sec - boot.tv_sec) * 1000000000ll + (real.tv_nsec - boot.tv_nsec) +
	           (long long)ticks * TICK_NS;
	ret->tv_sec = start_ns / 1000000000ll;
	ret->tv_nsec = start_ns % 1000000000ll;
	return 0;
}

int owner_start_time(pid_t pid, struct timespec *ret)
{
	int procfd = open_proc_pid(pid), r;

	if (procfd < 0)
		return procfd;
	r = start_time_at(procfd, ret);
	close(procfd);
	return r;
}

int owner_creds(pid_t pid, uid_t *ret_uid, gid_t *ret_gid)
{
	char path[64], line[256];
	unsigned long ruid, euid, rgid, egid;
	bool have_uid = false, have_gid = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Uid: %lu %lu", &ruid, &euid) == 2)
			have_uid = true;
		else if (sscanf(line, "Gid: %lu %lu", &rgid, &egid) == 2)
			have_gid = true;
	}
	fclose(f);
	if (!have_uid || !have_gid)
		return -EIO;
	*ret_uid = (uid_t)euid;
	*ret_gid = (gid_t)egid;
	return 0;
}

int owner_read_pidfile(int dirfd, const char *name, uid_t trusted_uid, pid_t *ret_pid)
{
	char buf[33], *end;
	struct stat st;
	ssize_t n;
	long pid;
	int fd, r = 0;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP ? -EINVAL : -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > 32) {
		r = -EINVAL;
		goto out;
	}
	if (st.st_uid != trusted_uid && st.st_uid != 0) {
		r = -EPERM;
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		r = n < 0 ? -errno : -EINVAL;
		goto out;
	}
	buf[n] = '\0';
	errno = 0;
	pid = strtol(buf, &end, 10);
	if (errno || end == buf || pid <= 0 || pid > 4194304 || (*end && strcmp(end, "\n") != 0)) {
		r = -EINVAL;
		goto out;
	}
	*ret_pid = (pid_t)pid;
out:
	close(fd);
	return r;
}

int owner_pidfd(pid_t pid)
{
	int fd = pidfd_open(pid, 0);

	if (fd < 0)
		return -errno;
	/* pidfds are close-on-exec by definition */
	return fd;
}

/* owner_verify_hint; SOCK_INO 0: the caller saw PID hold it (owner_verify_holder). */
static int verify(pid_t pid, uint32_t sock_ino, const struct timespec *created, int *ret_pidfd)
{
	struct timespec start;
	long long start_ns, created_ns;
	int procfd, pidfd = -1, r;

	if (pid <= 0)
		return -EINVAL;
	pidfd = owner_pidfd(pid);
	if (pidfd < 0)
		return pidfd;
	/* from here the pidfd pins the process: check that it is the right one */
	procfd = open_proc_pid(pid);
	if (procfd < 0) {
		r = procfd;
		goto out;
	}
	r = start_time_at(procfd, &start);
	if (r == 0) {
		start_ns = start.tv_sec * 1000000000ll + start.tv_nsec;
		created_ns = created->tv_sec * 1000000000ll + created->tv_nsec;
		if (start_ns > created_ns + TICK_NS)
			r = -ESTALE; /* a younger process: a reused PID */
	}
	if (r == 0 && sock_ino)
		r = holds_at(procfd, sock_ino) == 1 ? 0 : -ENOENT;
	close(procfd);
	/* the process may have died (and its PID been reused) during the checks */
	if (r == 0 && pidfd_send_signal(pidfd, 0, NULL, 0) < 0)
		r = -ESRCH;
out:
	if (r == 0)
		*ret_pidfd = pidfd;
	else
		close(pidfd);
	return r;
}

int owner_verify_hint(pid_t pid, uint32_t sock_ino, const struct timespec *created, int *ret_pidfd)
{
	return sock_ino ? verify(pid, sock_ino, created, ret_pidfd) : -EINVAL;
}

int owner_verify_holder(pid_t pid, const struct timespec *created, int *ret_pidfd)
{
	return verify(pid, 0, created, ret_pidfd);
}

int owner_from_connect(int dirfd, const char *file, int type, struct ucred *ret_cred,
                       int *ret_pidfd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd, pidfd = -1, r;

	fd = probe_connect_at(dirfd, file, type);
	if (fd < 0)
		return fd;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		r = -errno;
		goto out;
	}
	if (cred.pid <= 0) {
		r = -ENODATA;
		goto out;
	}
	len = sizeof(pidfd);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		pidfd = -1; /* older kernel */
	*ret_cred = cred;
	*ret_pidfd = pidfd;
	r = 0;
out:
	close(fd);
	return r;
}
