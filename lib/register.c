/*
 * Registering a service (SPEC §7): the lock-file pattern, done so that two
 * instances racing for a name cannot both win and a crashed one never
 * blocks its successor.
 *
 *   NAME.lock  flock(LOCK_EX) held for the service's life. The lock is what
 *              owns the name: whoever holds it may replace NAME.sock and
 *              NAME.json; nobody else touches them. The file is never
 *              deleted (a deleted lock file lets two holders lock two
 *              different files), and its pid is written into it for humans.
 *   NAME.json  written to a hidden temp file and renamed into place, so
 *              readers (svcfs among them) see a whole object or none.
 *   NAME.sock  bound with its final mode already on the socket inode: the
 *              kernel creates the file with (that mode & ~umask), never more,
 *              and a chmod then adds back what the umask took.
 *
 * Order: lock, clear the dead predecessor's socket, sidecar, bind, listen.
 * The sidecar goes first so that the service appears (svcfs shows it once
 * it listens) with its metadata.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "private.h"

#define LOCK_RETRIES 16 /* lock file replaced under us this many times: give up */
#define TEMP_TRIES   32 /* random temp names taken by others this many times: give up */

struct svcfs_service {
	int dirfd;  /* the directory holding NAME.* */
	int lockfd; /* NAME.lock, flock'ed */
	int fd;     /* the socket */
	int type;   /* SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM */
	int backlog;
	mode_t mode; /* of the socket; the sidecar gets its read bits */
	bool listening;
	dev_t dev; /* the socket file we bound: only that one is removed */
	ino_t ino;
	char *stem; /* last component of the name */
	char *path; /* absolute path of NAME.sock */
};

static void suffixed(char *buf, size_t size, const char *stem, const char *suffix)
{
	snprintf(buf, size, "%s%s", stem, suffix);
}

/* Take NAME.lock: the file at that name must still be the one locked. */
static int take_lock(int dirfd, const char *stem, int *ret_fd)
{
	char lock[NAME_MAX + 1];

	suffixed(lock, sizeof(lock), stem, ".lock");
	for (int i = 0; i < LOCK_RETRIES; i++) {
		struct stat held, now;
		char pid[32];
		int fd, n;

		/* created here: exactly 0600, whatever the umask (we must open it again) */
		fd = openat(dirfd, lock, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 && fchmod(fd, 0600) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (fd < 0 && errno == EEXIST)
			fd = openat(dirfd, lock, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return errno == ELOOP ? -EEXIST : errno == ENOENT ? -EAGAIN : -errno;
		if (fstat(fd, &held) < 0) {
			int r = -errno;
			close(fd);
			return r;
		}
		if (!S_ISREG(held.st_mode)) { /* a FIFO, say: not a lock file */
			close(fd);
			return -EEXIST;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int r = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
			close(fd);
			return r;
		}
		/* someone may have replaced the file between our open and our lock */
		if (fstatat(dirfd, lock, &now, AT_SYMLINK_NOFOLLOW) < 0 ||
		    now.st_dev != held.st_dev || now.st_ino != held.st_ino) {
			close(fd);
			continue;
		}
		n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
		if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) < 0) {
			/* the pid is for humans only */
		}
		*ret_fd = fd;
		return 0;
	}
	return -EAGAIN;
}

/*
 * Where a name below DIRFD can be bound or connected: ABSDIR/NAME when that
 * fits sun_path, else through /proc/self/fd/DIRFD/NAME. -ENAMETOOLONG if
 * neither fits.
 */
static int sockaddr_at(int dirfd, const char *absdir, const char *name, struct sockaddr_un *ret,
                       socklen_t *ret_len)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int n = -1;

	if (absdir)
		n = snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", absdir, name);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		n = snprintf(a.sun_path, sizeof(a.sun_path), SVCFS_PROC_FD_FMT, dirfd, name);
	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	*ret = a;
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	return 0;
}

/*
 * Is anyone behind the socket file NAME? Tries each socket type; a live
 * peer of any type is 1, a socket nobody is bound to 0.
 */
static int socket_live(int dirfd, const char *name)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	socklen_t alen;
	int pathfd = -1, r;

	r = sockaddr_at(dirfd, NULL, name, &a, &alen);
	if (r == -ENAMETOOLONG) {
		/* too long even below /proc/self/fd/DIRFD: through an fd on the file itself */
		int n;

		pathfd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pathfd < 0)
			return -errno;
		n = snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d", pathfd);
		alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
		r = 0;
	}
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		if (fd < 0) {
			r = -errno;
			goto out;
		}
		r = connect(fd, (struct sockaddr *)&a, alen);
		r = r == 0 ? 0 : errno;
		close(fd);
		if (r == 0 || r == EAGAIN || r == EINPROGRESS) {
			r = 1; /* accepted, or listening with a full queue */
			goto out;
		}
		if (r == ECONNREFUSED) {
			r = 0;
			goto out;
		}
		if (r != EPROTOTYPE) {
			r = -r;
			goto out;
		}
	}
	r = 0;
out:
	if (pathfd >= 0)
		close(pathfd);
	return r;
}

/* Clear NAME.sock for us: absent, or a dead socket (removed). */
static int clear_socket(int dirfd, const char *sock)
{
	struct stat st;
	int r;

	if (fstatat(dirfd, sock, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST; /* a symlink, a file, a directory: not ours to remove */
	r = socket_live(dirfd, sock);
	if (r < 0)
		return r;
	if (r > 0)
		return -EADDRINUSE; /* served by someone who does not use the lock */
	if (unlinkat(dirfd, sock, 0) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* The sidecar's text for META: checked against what svcfs will accept. */
static int sidecar_text(const json_object *meta, char **ret_text, size_t *ret_len)
{
	json_object *check = NULL;
	const char *text, *why;
	size_t len;
	char *copy;
	int r;

	if (!json_object_is_type(meta, json_type_object))
		return -EINVAL;
	text = json_object_to_json_string_length(
	    (json_object *)meta, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (!text)
		return -ENOMEM;
	if (len + 1 > SVCFS_SIDECAR_MAX)
		return -EFBIG;
	/* e.g. NaN, or a string that is not UTF-8: svcfs would refuse the file */
	r = svcfs_sidecar_parse(text, len, &check, &why);
	json_object_put(check);
	if (r < 0)
		return r == -EFBIG ? -EFBIG : -EINVAL;
	copy = malloc(len + 2);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, text, len);
	copy[len] = '\n';
	copy[len + 1] = '\0';
	*ret_text = copy;
	*ret_len = len + 1;
	return 0;
}

/*
 * A hidden temp name ".svcfs-XXXXXXXX.SUFFIX", random: another process or
 * thread making one in the same directory at the same time picks another
 * (callers retry, TEMP_TRIES times, on the rare collision).
 */
static void temp_name(char *buf, size_t size, const char *suffix, int attempt)
{
	unsigned long rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) < 0)
		rnd = (unsigned long)svcfs_now_ms() * 2654435761u + (unsigned long)attempt;
	snprintf(buf, size, ".svcfs-%08lx.%s", rnd & 0xffffffffUL, suffix);
}

/* Write TEXT to NAME below DIRFD with MODE, atomically (hidden temp + rename). */
static int write_atomic(int dirfd, const char *name, const char *text, size_t len, mode_t mode)
{
	char tmp[32];
	int fd = -1, r = 0;

	for (int i = 0; i < TEMP_TRIES && fd < 0; i++) {
		temp_name(tmp, sizeof(tmp), "tmp", i);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	for (size_t done = 0; done < len;) {
		ssize_t n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		done += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
out:
	close(fd);
	if (r < 0)
		unlinkat(dirfd, tmp, 0);
	return r;
}

static mode_t sidecar_mode(mode_t sock_mode)
{
	return 0600 | (sock_mode & 0060 ? 0040 : 0) | (sock_mode & 0006 ? 0004 : 0);
}

static int set_meta(svcfs_service *s, const json_object *meta)
{
	char side[NAME_MAX + 1], *text = NULL;
	size_t len;
	int r;

	suffixed(side, sizeof(side), s->stem, ".json");
	if (!meta) {
		if (unlinkat(s->dirfd, side, 0) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	r = sidecar_text(meta, &text, &len);
	if (r < 0)
		return r;
	r = write_atomic(s->dirfd, side, text, len, sidecar_mode(s->mode));
	free(text);
	return r;
}

int svcfs_service_set_meta(svcfs_service *s, const json_object *meta)
{
	if (!s)
		return -EINVAL;
	return set_meta(s, meta);
}

static int check_opts(const struct svcfs_register_opts *o, int *ret_type, mode_t *ret_mode)
{
	int type = o->type ? o->type : SOCK_STREAM;
	unsigned mode = o->mode ? o->mode : 0600;

	if (type != SOCK_STREAM && type != SOCK_SEQPACKET && type != SOCK_DGRAM)
		return -EINVAL;
	if (mode & ~0777u)
		return -EINVAL;
	if ((mode & 0002) && !(o->flags & SVCFS_REGISTER_ANY_MODE))
		return -EINVAL;
	if (o->flags &
	    ~(SVCFS_REGISTER_NONBLOCK | SVCFS_REGISTER_ANY_MODE | SVCFS_REGISTER_NO_LISTEN))
		return -EINVAL;
	if (o->backlog < 0)
		return -EINVAL;
	if (o->meta && !json_object_is_type(o->meta, json_type_object))
		return -EINVAL;
	*ret_type = type;
	*ret_mode = mode;
	return 0;
}

/* Open the backing directory: OPTS->dir, or the default (created if missing). */
static int open_base(const char *dir, char **ret_abs, int *ret_fd)
{
	char *path = NULL, *abs = NULL;
	int fd = -1, r;

	if (dir) {
		path = strdup(dir);
		if (!path)
			return -ENOMEM;
	} else {
		r = svcfs_default_dir(&path);
		if (r < 0)
			return r;
		if (mkdir(path, geteuid() == 0 ? 0755 : 0700) < 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	abs = realpath(path, NULL);
	if (!abs) {
		r = -errno;
		goto out;
	}
	*ret_abs = abs;
	*ret_fd = fd;
	fd = -1;
	r = 0;
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

/* Bind S->fd to NAME.sock below S->dirfd with S->mode. */
static int bind_socket(svcfs_service *s, const char *absdir, const char *sock)
{
	struct sockaddr_un a;
	socklen_t alen;
	struct stat st;
	char tmp[32] = "";
	int r;

	/* the mode of the file bind() creates is this inode's mode less the umask */
	if (fchmod(s->fd, s->mode) < 0)
		return -errno;
	r = sockaddr_at(s->dirfd, absdir, sock, &a, &alen);
	if (r == -ENAMETOOLONG) {
		/* a name too long for any sun_path: bind a random short one, then rename it */
		for (int i = 0; i < TEMP_TRIES; i++) {
			temp_name(tmp, sizeof(tmp), "sock", i);
			r = sockaddr_at(s->dirfd, absdir, tmp, &a, &alen);
			if (r < 0)
				return r;
			if (bind(s->fd, (struct sockaddr *)&a, alen) == 0)
				break;
			if (errno != EADDRINUSE)
				return -errno;
			r = -EEXIST; /* someone else's temp name: try another */
		}
	} else if (r == 0 && bind(s->fd, (struct sockaddr *)&a, alen) < 0) {
		r = -errno;
	}
	if (r < 0)
		return r;
	if (tmp[0] && renameat(s->dirfd, tmp, s->dirfd, sock) < 0) {
		r = -errno;
		unlinkat(s->dirfd, tmp, 0);
		return r;
	}
	if (fstatat(s->dirfd, sock, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode))
		return -EIO;
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	/* add back what the umask took; the file was never more open than this */
	if (fchmodat(s->dirfd, sock, s->mode, 0) < 0) {
		r = -errno;
		unlinkat(s->dirfd, sock, 0);
		return r;
	}
	return 0;
}

static void service_free(svcfs_service *s)
{
	if (s->fd >= 0)
		close(s->fd);
	if (s->lockfd >= 0)
		close(s->lockfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->stem);
	free(s->path);
	free(s);
}

/* Remove NAME.sock if it is still the socket we bound. */
static void remove_socket(svcfs_service *s)
{
	char sock[NAME_MAX + 1];
	struct stat st;

	if (!s->ino)
		return;
	suffixed(sock, sizeof(sock), s->stem, ".sock");
	if (fstatat(s->dirfd, sock, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == s->dev &&
	    st.st_ino == s->ino)
		unlinkat(s->dirfd, sock, 0);
}

int svcfs_register(const char *name, const struct svcfs_register_opts *opts,
                   svcfs_service **ret_service)
{
	static const struct svcfs_register_opts defaults;
	char sock[NAME_MAX + 1], *absdir = NULL, *absparent = NULL;
	const char *last;
	svcfs_service *s = NULL;
	bool wrote_meta = false;
	int basefd = -1, r;

	if (!opts)
		opts = &defaults;
	if (!ret_service || svcfs_name_path_check(name, true, NULL) < 0)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->dirfd = s->lockfd = s->fd = -1;
	r = check_opts(opts, &s->type, &s->mode);
	if (r < 0)
		goto fail;
	s->backlog = opts->backlog ? opts->backlog : SOMAXCONN;
	r = open_base(opts->dir, &absdir, &basefd);
	if (r < 0)
		goto fail;
	r = svcfs_open_parent(basefd, name, true, &s->dirfd, &last);
	if (r < 0)
		goto fail;
	if (strlen(last) + strlen(".sock") > NAME_MAX) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	s->stem = strdup(last);
	s->path = malloc(strlen(absdir) + 1 + strlen(name) + strlen(".sock") + 1);
	if (!s->stem || !s->path) {
		r = -ENOMEM;
		goto fail;
	}
	sprintf(s->path, "%s/%s.sock", absdir, name);
	absparent = strndup(s->path, strlen(s->path) - strlen(last) - strlen(".sock") - 1);
	if (!absparent) {
		r = -ENOMEM;
		goto fail;
	}
	suffixed(sock, sizeof(sock), s->stem, ".sock");

	r = take_lock(s->dirfd, s->stem, &s->lockfd);
	if (r < 0)
		goto fail;
	r = clear_socket(s->dirfd, sock);
	if (r < 0)
		goto fail;
	r = set_meta(s, opts->meta);
	if (r < 0)
		goto fail;
	wrote_meta = opts->meta != NULL;
	s->fd = socket(AF_UNIX,
	               s->type | SOCK_CLOEXEC |
	                   (opts->flags & SVCFS_REGISTER_NONBLOCK ? SOCK_NONBLOCK : 0),
	               0);
	if (s->fd < 0) {
		r = -errno;
		goto fail;
	}
	r = bind_socket(s, absparent, sock);
	if (r < 0)
		goto fail;
	if (!(opts->flags & SVCFS_REGISTER_NO_LISTEN)) {
		r = svcfs_service_listen(s);
		if (r < 0)
			goto fail;
	}
	*ret_service = s;
	s = NULL;
	r = 0;
	goto out;
fail:
	if (s) {
		remove_socket(s);
		if (wrote_meta)
			set_meta(s, NULL);
		service_free(s);
	}
out:
	if (basefd >= 0)
		close(basefd);
	free(absdir);
	free(absparent);
	return r;
}

int svcfs_service_listen(svcfs_service *s)
{
	if (!s)
		return -EINVAL;
	if (s->type == SOCK_DGRAM || s->listening)
		return 0;
	if (listen(s->fd, s->backlog) < 0)
		return -errno;
	s->listening = true;
	return 0;
}

int svcfs_service_fd(const svcfs_service *s)
{
	return s ? s->fd : -EINVAL;
}

int svcfs_service_lock_fd(const svcfs_service *s)
{
	return s ? s->lockfd : -EINVAL;
}

const char *svcfs_service_path(const svcfs_service *s)
{
	return s ? s->path : NULL;
}

svcfs_service *svcfs_unregister(svcfs_service *s)
{
	if (!s)
		return NULL;
	/* the socket first: the service is gone the moment its file is */
	remove_socket(s);
	set_meta(s, NULL);
	close(s->fd);
	s->fd = -1;
	if (ftruncate(s->lockfd, 0) < 0) {
		/* the pid in it was for humans only */
	}
	/* also for children that share the lock's open file */
	flock(s->lockfd, LOCK_UN);
	service_free(s);
	return NULL;
}
