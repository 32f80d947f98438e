/*
 * Directories: the defaults of SPEC §7 (where services register, where
 * clients look), and walking a service name's groups below a directory fd
 * without ever following a symlink.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "private.h"

static const char *env_nonempty(const char *var)
{
	const char *v = secure_getenv(var);

	return v && *v ? v : NULL;
}

/*
 * /tmp/svcfs-UID: shared /tmp, so the directory must be ours alone. Made
 * 0700 if we create it; refused if it is a symlink, not a directory, owned
 * by someone else or open to others. O_PATH: looking needs no permission
 * on the directory itself, so another user's private directory is refused
 * as not ours (not EACCES), and ours is fixed even if the umask left us no
 * access to it.
 */
static int private_tmp_dir(const char *path)
{
	struct stat st;
	char proc[32];
	bool created = false;
	int fd, r = 0;

	if (mkdir(path, 0700) == 0)
		created = true;
	else if (errno != EEXIST)
		return -errno;
	fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR ? -EPERM : -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd); /* fchmod() refuses O_PATH */
	if (fstat(fd, &st) < 0)
		r = -errno;
	else if (st.st_uid != geteuid())
		r = -EPERM;
	else if (created && chmod(proc, 0700) < 0) /* the umask may have taken bits */
		r = -errno;
	else if (!created && (st.st_mode & 077))
		r = -EPERM;
	close(fd);
	return r;
}

int svcfs_default_dir(char **ret_path)
{
	const char *v;
	char *path;
	int r;

	if ((v = env_nonempty("SVCFS_DIR")))
		path = strdup(v);
	else if (geteuid() == 0)
		path = strdup("/run/svcfs");
	else if ((v = env_nonempty("XDG_RUNTIME_DIR")))
		path = svcfs_path_join(v, "svcfs");
	else if (asprintf(&path, "/tmp/svcfs-%u", (unsigned)geteuid()) < 0)
		path = NULL;
	else if ((r = private_tmp_dir(path)) < 0) {
		free(path);
		return r;
	}
	if (!path)
		return -ENOMEM;
	*ret_path = path;
	return 0;
}

int svcfs_default_mount(char **ret_path)
{
	const char *v;
	char *path;

	if ((v = env_nonempty("SVCFS_MOUNT")))
		path = strdup(v);
	else if (geteuid() == 0)
		path = strdup("/run/services");
	else if ((v = env_nonempty("XDG_RUNTIME_DIR")))
		path = svcfs_path_join(v, "services");
	else
		return -ENOENT;
	if (!path)
		return -ENOMEM;
	*ret_path = path;
	return 0;
}

char *svcfs_path_join(const char *a, const char *b)
{
	char *s;
	size_t la = strlen(a), lb = strlen(b);

	if (la == 0)
		return strdup(b);
	s = malloc(la + 1 + lb + 1);
	if (!s)
		return NULL;
	memcpy(s, a, la);
	s[la] = '/';
	memcpy(s + la + 1, b, lb + 1);
	return s;
}

int svcfs_open_parent(int basefd, const char *name, bool create, int *ret_fd, const char **ret_last)
{
	char comp[NAME_MAX + 1];
	const char *p = name, *slash;
	int fd, r;

	fd = fcntl(basefd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return -errno;
	while ((slash = strchr(p, '/'))) {
		size_t len = (size_t)(slash - p);
		int next;

		if (len > NAME_MAX) {
			r = -ENAMETOOLONG;
			goto fail;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			bool made = mkdirat(fd, comp, 0755) == 0;
			struct stat st;

			if (!made && errno != EEXIST) {
				r = -errno;
				goto fail;
			}
			next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			/* the umask may narrow a new group, but its owner must be able to use it */
			if (made && next >= 0 && fstat(next, &st) == 0 &&
			    (st.st_mode & 0700) != 0700)
				fchmod(next, (st.st_mode & 07777) | 0700);
		}
		if (next < 0) {
			r = errno == ELOOP ? -ENOTDIR : -errno;
			goto fail;
		}
		close(fd);
		fd = next;
		p = slash + 1;
	}
	*ret_fd = fd;
	*ret_last = p;
	return 0;
fail:
	close(fd);
	return r;
}

int svcfs_read_file_at(int dirfd, const char *name, size_t max, char **ret_text, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n;

		if (len == cap) { /* full: grow, up to one byte past MAX to see it is too big */
			size_t ncap = cap ? cap * 2 : 256;
			char *nbuf;

			if (ncap > max + 1)
				ncap = max + 1;
			nbuf = realloc(buf, ncap + 1); /* + the NUL */
			if (!nbuf) {
				r = -ENOMEM;
				goto out;
			}
			buf = nbuf;
			cap = ncap;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			r = -EFBIG;
			goto out;
		}
	}
	buf = buf ? buf : malloc(1);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	buf[len] = '\0';
	*ret_text = buf;
	if (ret_len)
		*ret_len = len;
	buf = NULL;
	r = 0;
out:
	free(buf);
	close(fd);
	return r;
}
