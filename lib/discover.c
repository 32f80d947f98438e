/*
 * The client side: open a directory of services, list, look up, connect,
 * wait.
 *
 * Two kinds of directory. On an svcfs mount (found through the mount
 * table: fstype fuse.svcfs) the daemon has done the liveness work: a
 * service directory exists only while the service is alive, lookups read
 * its files, a list reads the root's .services.json (one consistent
 * snapshot; filtered by group when a group directory was opened). Any
 * other directory is read as a backing directory, the way the daemon reads
 * it (svcfs_backing_socket), without liveness: every socket file is a
 * service, in state "unknown", its sidecar and tokens as metadata.
 *
 * On a mount the library sees this host's services only: another host's
 * (SPEC §8) are shown as MOUNT/@HOST/[GROUP/]NAME, with no socket to
 * connect to, and in .services.json as elements with a "host" member. So a
 * name whose first component below the mount's root starts with '@' is
 * never found, listed or connected to, and elements with "host" are not
 * listed (remote_name; watch.c skips the same directories).
 *
 * Waiting is inotify on the deepest existing directory of the name,
 * re-armed as groups appear; never a polling loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "private.h"

#define FUSE_SUPER_MAGIC  0x65735546
#define META_READ_MAX     (1024 * 1024) /* meta.json on a mount: sidecar + what svcfs adds */
#define SERVICES_READ_MAX (1024L * 1024 * 1024) /* .services.json: 100 000 big services fit */
#define SMALL_READ_MAX    4096                  /* pid, uid, state ... */
#define CONNECT_RETRY_MS  10                    /* a listed service refused: starting or dying */
#define SVCFS_REMOTE_MARK '@' /* MOUNT/@HOST: another host's services (the daemon's remote.h) */

struct svcfs_info {
	char *name;
	char *socket;
	char *state;
	char *since;
	pid_t pid;
	uid_t uid;
	gid_t gid;
	json_object *meta;
};

/* ---- opening ---- */

/*
 * Is FD on an svcfs mount? Then *ret_mountpoint is where its root is (a
 * new string; NULL when the mount is a bind of a subdirectory).
 */
static int svcfs_mount_of(int fd, bool *ret_mount, char **ret_mountpoint)
{
	struct statfs sfs;
	struct statx stx;
	char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	*ret_mount = false;
	*ret_mountpoint = NULL;
	if (fstatfs(fd, &sfs) < 0)
		return -errno;
	if (sfs.f_type != FUSE_SUPER_MAGIC)
		return 0;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0 || !(stx.stx_mask & STATX_MNT_ID))
		return 0; /* no way to tell which mount: treat as a plain directory */
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		unsigned long long id;
		char root[PATH_MAX], point[PATH_MAX], *sep;
		char fstype[64];

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		if (sscanf(line, "%llu %*u %*s %4095s %4095s", &id, root, point) != 3 ||
		    id != stx.stx_mnt_id)
			continue;
		sep = strstr(line, " - ");
		if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 ||
		    strcmp(fstype, "fuse.svcfs") != 0)
			break;
		*ret_mount = true;
		if (strcmp(root, "/") == 0) {
			svcfs_unescape_octal(point);
			*ret_mountpoint = strdup(point);
			if (!*ret_mountpoint)
				r = -ENOMEM;
		}
		break;
	}
	free(line);
	fclose(f);
	return r;
}

int svcfs_open(const char *path, svcfs_dir **ret_dir)
{
	char *defpath = NULL, *point = NULL;
	svcfs_dir *d;
	int r;

	if (!ret_dir)
		return -EINVAL;
	if (!path) {
		r = svcfs_default_mount(&defpath);
		if (r < 0)
			return r;
		path = defpath;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		free(defpath);
		return -ENOMEM;
	}
	d->rootfd = -1;
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->fd < 0) {
		r = -errno;
		goto fail;
	}
	d->path = realpath(path, NULL);
	if (!d->path) {
		r = -errno;
		goto fail;
	}
	r = svcfs_mount_of(d->fd, &d->mount, &point);
	if (r < 0)
		goto fail;
	if (d->mount && point) {
		size_t lp = strlen(point);
		const char *rel = NULL;

		/* the opened directory below the mount's root: its services' group prefix */
		if (strcmp(point, "/") == 0)
			rel = d->path + 1;
		else if (strncmp(d->path, point, lp) == 0 &&
		         (d->path[lp] == '\0' || d->path[lp] == '/'))
			rel = d->path + lp + (d->path[lp] == '/');
		if (rel) {
			d->prefix = *rel ? svcfs_path_join(rel, "") : strdup("");
			if (!d->prefix) {
				r = -ENOMEM;
				goto fail;
			}
			d->rootfd = open(point, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (d->rootfd < 0) {
				r = -errno;
				goto fail;
			}
		}
	}
	free(point);
	free(defpath);
	*ret_dir = d;
	return 0;
fail:
	free(point);
	free(defpath);
	svcfs_close(d);
	return r;
}

svcfs_dir *svcfs_close(svcfs_dir *d)
{
	if (!d)
		return NULL;
	if (d->fd >= 0)
		close(d->fd);
	if (d->rootfd >= 0)
		close(d->rootfd);
	free(d->path);
	free(d->prefix);
	free(d);
	return NULL;
}

bool svcfs_dir_is_mount(const svcfs_dir *d)
{
	return d && d->mount;
}

const char *svcfs_dir_path(const svcfs_dir *d)
{
	return d ? d->path : NULL;
}

#define STATUS_XATTR "user.svcfs.status"
#define STATUS_MAX   65536

int svcfs_dir_status(svcfs_dir *d, json_object **ret_status)
{
	json_object *o;
	char *buf;
	ssize_t n;

	if (!d || !ret_status)
		return -EINVAL;
	if (!d->mount)
		return -ENOTSUP;
	if (d->rootfd < 0)
		return -ENOTSUP; /* the root is out of reach */
	buf = malloc(STATUS_MAX + 1);
	if (!buf)
		return -ENOMEM;
	n = fgetxattr(d->rootfd, STATUS_XATTR, buf, STATUS_MAX);
	if (n < 0) {
		int r = errno == ENODATA ? -ENOTSUP : -errno; /* an svcfs too old to tell */
		free(buf);
		return r;
	}
	buf[n] = '\0';
	o = json_tokener_parse(buf);
	free(buf);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EIO;
	}
	*ret_status = o;
	return 0;
}

/*
 * Is NAME below D, on a mount, another host's (MOUNT/@HOST/...)? Its first
 * component below the mount's root tells: D's own group prefix, else NAME's.
 * Unknown where the root is (a bind mount of a group): not told, false.
 */
static bool remote_name(const svcfs_dir *d, const char *name)
{
	if (!d->mount || !d->prefix)
		return false;
	return (*d->prefix ? d->prefix[0] : name[0]) == SVCFS_REMOTE_MARK;
}

/* ---- info ---- */

svcfs_info *svcfs_info_free(svcfs_info *i)
{
	if (!i)
		return NULL;
	free(i->name);
	free(i->socket);
	free(i->state);
	free(i->since);
	json_object_put(i->meta);
	free(i);
	return NULL;
}

static svcfs_info *info_new(const char *name)
{
	svcfs_info *i = calloc(1, sizeof(*i));

	if (!i)
		return NULL;
	i->uid = (uid_t)-1;
	i->gid = (gid_t)-1;
	i->name = strdup(name);
	if (!i->name)
		return svcfs_info_free(i);
	return i;
}

/* Fill the strings left NULL with "" and META with {}: accessors never return NULL. */
static int info_complete(svcfs_info *i)
{
	char **strs[] = {&i->socket, &i->state, &i->since};

	for (size_t k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		if (!*strs[k] && !(*strs[k] = strdup("")))
			return -ENOMEM;
	if (!i->meta && !(i->meta = json_object_new_object()))
		return -ENOMEM;
	return 0;
}

const char *svcfs_info_name(const svcfs_info *i)
{
	return i->name;
}
const char *svcfs_info_socket(const svcfs_info *i)
{
	return i->socket;
}
const char *svcfs_info_state(const svcfs_info *i)
{
	return i->state;
}
const char *svcfs_info_since(const svcfs_info *i)
{
	return i->since;
}
pid_t svcfs_info_pid(const svcfs_info *i)
{
	return i->pid;
}
uid_t svcfs_info_uid(const svcfs_info *i)
{
	return i->uid;
}
gid_t svcfs_info_gid(const svcfs_info *i)
{
	return i->gid;
}
json_object *svcfs_info_meta(const svcfs_info *i)
{
	return i->meta;
}

/*
 * The keys svcfs owns in meta.json (what it found wins over the sidecar):
 * they have their own accessors, so the metadata object leaves them out,
 * the same whether it came from meta.json or from .services.json.
 */
static void meta_strip(json_object *meta)
{
	static const char *const owned[] = {"socket", "pid", "uid", "gid", "state", "since"};

	for (size_t k = 0; k < sizeof(owned) / sizeof(owned[0]); k++)
		json_object_object_del(meta, owned[k]);
}

/* A decimal number in [0, MAX] from TEXT (white space around it allowed); -1 if none. */
static long long parse_id(const char *text, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || end == text || v < 0 || v > max)
		return -1;
	while (*end == ' ' || *end == '\n' || *end == '\t')
		end++;
	return *end ? -1 : v;
}

/* ---- looking up on a mount ---- */

/* A one-line file of a service directory, its newline dropped. -ENOENT if absent. */
static int read_line_at(int dirfd, const char *file, char **ret)
{
	char *text;
	size_t len;
	int r;

	r = svcfs_read_file_at(dirfd, file, SMALL_READ_MAX, &text, &len);
	if (r < 0)
		return r;
	if (len && text[len - 1] == '\n')
		text[len - 1] = '\0';
	*ret = text;
	return 0;
}

static int read_id_at(int dirfd, const char *file, long long max, long long *ret)
{
	char *text;
	int r;

	r = read_line_at(dirfd, file, &text);
	if (r < 0)
		return r == -ENOENT ? 0 : r; /* not known */
	*ret = parse_id(text, max);
	free(text);
	return 0;
}

/*
 * Service directory NAME on a mount. Its meta.json, a regular file, tells
 * a service from a group; a file that vanishes while we read means the
 * service did: -ENOENT.
 */
static int mount_lookup(svcfs_dir *d, const char *name, svcfs_info **ret)
{
	svcfs_info *i = NULL;
	const char *last;
	char *text = NULL, link[PATH_MAX];
	long long v;
	size_t len;
	ssize_t n;
	int pfd = -1, sfd = -1, r;

	if (remote_name(d, name))
		return -ENOENT; /* another host's: nothing here to connect to */
	r = svcfs_open_parent(d->fd, name, false, &pfd, &last);
	if (r < 0)
		goto out;
	sfd = openat(pfd, last, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sfd < 0) {
		r = errno == ENOTDIR || errno == ELOOP ? -ENOENT : -errno;
		goto out;
	}
	i = info_new(name);
	if (!i) {
		r = -ENOMEM;
		goto out;
	}
	r = svcfs_read_file_at(sfd, "meta.json", META_READ_MAX, &text, &len);
	if (r == -ELOOP || r == -EISDIR || r == -ENXIO)
		r = -ENOENT; /* not a service: a group (holding something named meta.json) */
	if (r < 0)
		goto out;
	i->meta = json_tokener_parse(text);
	if (!json_object_is_type(i->meta, json_type_object)) {
		r = -EIO; /* svcfs always writes an object */
		goto out;
	}
	meta_strip(i->meta);
	n = readlinkat(sfd, "socket", link, sizeof(link) - 1);
	if (n >= 0) {
		link[n] = '\0';
		i->socket = strdup(link);
		if (!i->socket) {
			r = -ENOMEM;
			goto out;
		}
	} else if (errno != ENOENT) {
		r = -errno;
		goto out;
	}
	v = 0;
	if ((r = read_id_at(sfd, "pid", INT32_MAX, &v)) < 0)
		goto out;
	i->pid = v > 0 ? (pid_t)v : 0;
	v = -1;
	if ((r = read_id_at(sfd, "uid", UINT32_MAX - 1, &v)) < 0)
		goto out;
	i->uid = (uid_t)v;
	v = -1;
	if ((r = read_id_at(sfd, "gid", UINT32_MAX - 1, &v)) < 0)
		goto out;
	i->gid = (gid_t)v;
	if ((r = read_line_at(sfd, "state", &i->state)) < 0 && r != -ENOENT)
		goto out;
	if ((r = read_line_at(sfd, "since", &i->since)) < 0 && r != -ENOENT)
		goto out;
	r = info_complete(i);
	if (r < 0)
		goto out;
	*ret = i;
	i = NULL;
out:
	svcfs_info_free(i);
	free(text);
	if (sfd >= 0)
		close(sfd);
	if (pfd >= 0)
		close(pfd);
	return r == -ENOTDIR ? -ENOENT : r;
}

/* ---- looking up in a backing directory ---- */

/*
 * The PID in PID file NAME below DIRFD, trusted like a sidecar (SPEC §2):
 * only a regular file owned by TRUSTED_UID (the socket's owner) or root.
 * 0 when it is absent, untrusted or holds no PID.
 */
static pid_t read_pidfile(int dirfd, const char *name, uid_t trusted_uid)
{
	char buf[SVCFS_PIDFILE_MAX + 1];
	struct stat st;
	ssize_t n = -1;
	long long v;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= SVCFS_PIDFILE_MAX &&
	    (st.st_uid == trusted_uid || st.st_uid == 0))
		n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = parse_id(buf, INT32_MAX);
	return v > 0 ? (pid_t)v : 0;
}

/*
 * What the files say about the service whose socket is FILE (stat ST) in
 * directory PFD, unverified: no liveness, pid from the sidecar, NAME.pid
 * or the name's token. NAME is the full name, STEM its last component.
 */
static int backing_info(svcfs_dir *d, int pfd, const char *name, const char *stem, const char *file,
                        const struct stat *st, svcfs_info **ret)
{
	char side[NAME_MAX + 1], *rel = NULL;
	struct svcfs_tokens tokens;
	json_object *sidecar = NULL, *pidv;
	const char *why;
	svcfs_info *i;
	int r;

	i = info_new(name);
	if (!i)
		return -ENOMEM;
	svcfs_name_tokens(stem, &tokens);
	/* FILE is NAME's last component, maybe with .sock: replace the stem */
	rel = malloc(strlen(name) - strlen(stem) + strlen(file) + 1);
	if (!rel) {
		r = -ENOMEM;
		goto out;
	}
	sprintf(rel, "%.*s%s", (int)(strlen(name) - strlen(stem)), name, file);
	i->socket = svcfs_path_join(d->path, rel);
	i->state = strdup("unknown");
	if (!i->socket || !i->state) {
		r = -ENOMEM;
		goto out;
	}
	i->uid = st->st_uid;
	i->gid = st->st_gid;
	if (snprintf(side, sizeof(side), "%s.json", stem) < (int)sizeof(side))
		svcfs_sidecar_read(pfd, side, st->st_uid, &sidecar, NULL,
		                   &why); /* bad: no metadata */
	if (json_object_object_get_ex(sidecar, "pid", &pidv) &&
	    json_object_is_type(pidv, json_type_int) && json_object_get_int64(pidv) > 0 &&
	    json_object_get_int64(pidv) <= INT32_MAX)
		i->pid = (pid_t)json_object_get_int64(pidv);
	if (!i->pid && snprintf(side, sizeof(side), "%s.pid", stem) < (int)sizeof(side))
		i->pid = read_pidfile(pfd, side, st->st_uid);
	if (!i->pid)
		i->pid = (pid_t)tokens.pid;
	i->meta = svcfs_meta_merge(sidecar, &tokens);
	if (!i->meta) {
		r = -ENOMEM;
		goto out;
	}
	meta_strip(i->meta);
	r = info_complete(i);
	if (r < 0)
		goto out;
	*ret = i;
	i = NULL;
out:
	json_object_put(sidecar);
	free(rel);
	svcfs_info_free(i);
	return r;
}

static int backing_lookup(svcfs_dir *d, const char *name, svcfs_info **ret)
{
	char buf[SVCFS_NAME_MAX + 1];
	const char *last, *file;
	struct stat st;
	int pfd, r;

	r = svcfs_open_parent(d->fd, name, false, &pfd, &last);
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	/* a group of the same name wins, as in svcfs */
	if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		r = -ENOENT;
	else
		r = svcfs_backing_socket(pfd, last, buf, &file, &st);
	if (r == 0)
		r = backing_info(d, pfd, name, last, file, &st, ret);
	close(pfd);
	return r;
}

int svcfs_lookup(svcfs_dir *d, const char *name, svcfs_info **ret_info)
{
	if (!d || !ret_info || svcfs_name_path_check(name, false, NULL) < 0)
		return -EINVAL;
	return d->mount ? mount_lookup(d, name, ret_info) : backing_lookup(d, name, ret_info);
}

/* ---- listing ---- */

struct list {
	svcfs_info **v;
	size_t n, cap;
};

static int list_add(struct list *l, svcfs_info *i)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		svcfs_info **nv = realloc(l->v, ncap * sizeof(*nv));
		if (!nv) {
			svcfs_info_free(i);
			return -ENOMEM;
		}
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = i;
	return 0;
}

void svcfs_list_free(svcfs_info **list, size_t count)
{
	for (size_t k = 0; list && k < count; k++)
		svcfs_info_free(list[k]);
	free(list);
}

static int info_cmp(const void *a, const void *b)
{
	return strcmp((*(svcfs_info *const *)a)->name, (*(svcfs_info *const *)b)->name);
}

static char *json_strdup(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return strdup("");
	return strdup(json_object_get_string(v));
}

static long long json_id(json_object *o, const char *key, long long none, long long max)
{
	json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return none;
	x = json_object_get_int64(v);
	return x < 0 || x > max ? none : x;
}

/* One element of .services.json, if it lies below D's prefix. */
static int mount_list_entry(svcfs_dir *d, json_object *e, struct list *l)
{
	json_object *jname, *jgroup, *jmeta;
	const char *name, *group;
	char *full;
	svcfs_info *i;
	size_t lp = strlen(d->prefix);
	int r;

	if (json_object_object_get_ex(e, "host", NULL))
		return 0; /* another host's service (MOUNT/@HOST/...): "socket" is null */
	if (!json_object_object_get_ex(e, "name", &jname) ||
	    !json_object_is_type(jname, json_type_string))
		return 0;
	name = json_object_get_string(jname);
	group = json_object_object_get_ex(e, "group", &jgroup) &&
	                json_object_is_type(jgroup, json_type_string)
	            ? json_object_get_string(jgroup)
	            : "";
	full = svcfs_path_join(group, name);
	if (!full)
		return -ENOMEM;
	if (strncmp(full, d->prefix, lp) != 0 || full[0] == SVCFS_REMOTE_MARK) {
		free(full); /* not below D, or a top-level group that lookups would not find */
		return 0;
	}
	i = info_new(full + lp);
	free(full);
	if (!i)
		return -ENOMEM;
	i->socket = json_strdup(e, "socket");
	i->state = json_strdup(e, "state");
	i->since = json_strdup(e, "since");
	i->pid = (pid_t)json_id(e, "pid", 0, INT32_MAX);
	i->uid = (uid_t)json_id(e, "uid", -1, UINT32_MAX - 1);
	i->gid = (gid_t)json_id(e, "gid", -1, UINT32_MAX - 1);
	if (json_object_object_get_ex(e, "meta", &jmeta) &&
	    json_object_is_type(jmeta, json_type_object)) {
		i->meta = json_object_get(jmeta);
		meta_strip(i->meta); /* .services.json is ours alone: edit in place */
	}
	r = info_complete(i);
	if (r < 0 || !i->socket || !i->state || !i->since) {
		svcfs_info_free(i);
		return -ENOMEM;
	}
	return list_add(l, i);
}

static int mount_list(svcfs_dir *d, struct list *l)
{
	json_tokener *tok = NULL;
	json_object *all = NULL;
	char *text = NULL;
	size_t len;
	int r;

	if (d->rootfd < 0)
		return -ENOTSUP; /* the mount's root is out of reach (a bind mount of a group) */
	r = svcfs_read_file_at(d->rootfd, ".services.json", SERVICES_READ_MAX, &text, &len);
	if (r < 0)
		goto out;
	tok = json_tokener_new_ex(64);
	if (!tok) {
		r = -ENOMEM;
		goto out;
	}
	all = json_tokener_parse_ex(tok, text, (int)len);
	if (!json_object_is_type(all, json_type_array)) {
		r = -EIO;
		goto out;
	}
	for (size_t k = 0; k < json_object_array_length(all); k++) {
		json_object *e = json_object_array_get_idx(all, k);
		if (json_object_is_type(e, json_type_object) && (r = mount_list_entry(d, e, l)) < 0)
			goto out;
	}
	r = 0;
out:
	json_object_put(all);
	if (tok)
		json_tokener_free(tok);
	free(text);
	return r;
}

/* Every socket below directory FD (relative path REL, DEPTH groups deep). */
static int backing_walk(svcfs_dir *d, int fd, const char *rel, unsigned depth, struct list *l)
{
	struct dirent *de;
	DIR *dir;
	int dfd, r = 0;

	/* a new open file, not a dup of FD: readdir must start at the beginning each time */
	dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	dir = fdopendir(dfd);
	if (!dir) {
		close(dfd);
		return -errno;
	}
	while (r == 0 && (errno = 0, de = readdir(dir))) {
		char buf[SVCFS_NAME_MAX + 1], stem[SVCFS_NAME_MAX + 1], *name = NULL;
		const char *file;
		struct stat st;
		svcfs_info *i = NULL;
		size_t stemlen;

		if (svcfs_name_hidden(de->d_name))
			continue;
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode)) {
			int sub;
			if (depth >= SVCFS_GROUP_DEPTH_MAX)
				continue;
			sub =
			    openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			name = svcfs_path_join(rel, de->d_name);
			if (sub >= 0 && name)
				r = backing_walk(d, sub, name, depth + 1, l);
			else if (!name)
				r = -ENOMEM;
			if (sub >= 0)
				close(sub);
			free(name);
			continue;
		}
		/* each service once, under its name: NAME.sock, or NAME that is a socket */
		if (svcfs_name_split(de->d_name, &stemlen) == SVCFS_SUFFIX_SOCK) {
			memcpy(stem, de->d_name, stemlen);
			stem[stemlen] = '\0';
		} else {
			snprintf(stem, sizeof(stem), "%s", de->d_name);
		}
		if (svcfs_backing_socket(fd, stem, buf, &file, &st) < 0 ||
		    strcmp(file, de->d_name) != 0)
			continue; /* not a socket, or the service is NAME.sock, met on its own */
		if (fstatat(fd, stem, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			continue; /* a group of the same name wins */
		svcfs_backing_socket(fd, stem, buf, &file, &st);
		name = svcfs_path_join(rel, stem);
		if (!name) {
			r = -ENOMEM;
			break;
		}
		r = backing_info(d, fd, name, stem, file, &st, &i);
		free(name);
		if (r == 0)
			r = list_add(l, i);
		else if (r == -ENOENT)
			r = 0;
	}
	if (r == 0 && errno)
		r = -errno;
	closedir(dir);
	return r;
}

int svcfs_list(svcfs_dir *d, svcfs_info ***ret_list, size_t *ret_count)
{
	struct list l = {0};
	int r;

	if (!d || !ret_list || !ret_count)
		return -EINVAL;
	r = d->mount ? mount_list(d, &l) : backing_walk(d, d->fd, "", 0, &l);
	if (r < 0) {
		svcfs_list_free(l.v, l.n);
		return r;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), info_cmp);
	*ret_list = l.v ? l.v : calloc(1, sizeof(*l.v));
	if (!*ret_list)
		return -ENOMEM;
	*ret_count = l.n;
	return 0;
}

/* ---- connecting ---- */

/*
 * The socket file of NAME, as a path connect() takes (through /proc for any
 * length). *ret_pfd is the fd that path goes through: close it after the
 * connect.
 */
static int socket_addr(svcfs_dir *d, const char *name, int *ret_pfd, struct sockaddr_un *ret_addr,
                       socklen_t *ret_len)
{
	char buf[SVCFS_NAME_MAX + 1], sock[SVCFS_NAME_MAX + 16];
	const char *last, *file;
	struct stat st;
	int pfd, r, n;

	if (remote_name(d, name))
		return -ENOENT; /* another host's: no socket here */
	r = svcfs_open_parent(d->fd, name, false, &pfd, &last);
	if (r < 0)
		return r == -ENOTDIR ? -ENOENT : r;
	if (d->mount) {
		n = snprintf(sock, sizeof(sock), "%s/socket", last);
		if (fstatat(pfd, sock, &st, 0) < 0) {
			r = errno == ENOTDIR ? -ENOENT : -errno;
			goto fail;
		}
		file = sock;
	} else {
		r = svcfs_backing_socket(pfd, last, buf, &file, &st);
		if (r < 0)
			goto fail;
	}
	ret_addr->sun_family = AF_UNIX;
	n = snprintf(ret_addr->sun_path, sizeof(ret_addr->sun_path), SVCFS_PROC_FD_FMT, pfd, file);
	if (n < 0 || (size_t)n >= sizeof(ret_addr->sun_path)) {
		/* a long name: the socket file itself by an O_PATH fd, symlinks followed */
		int sfd = openat(pfd, file, O_PATH | O_CLOEXEC);

		if (sfd < 0) {
			r = errno == ENOTDIR ? -ENOENT : -errno;
			goto fail;
		}
		close(pfd);
		pfd = sfd;
		n = snprintf(ret_addr->sun_path, sizeof(ret_addr->sun_path), "/proc/self/fd/%d",
		             pfd);
	}
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	*ret_pfd = pfd;
	return 0;
fail:
	close(pfd);
	return r;
}

static int connect_once(svcfs_dir *d, const char *name, int64_t deadline, unsigned flags)
{
	static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
	struct sockaddr_un a;
	socklen_t alen = 0;
	int pfd = -1, fd = -1, r;

	r = socket_addr(d, name, &pfd, &a, &alen);
	if (r < 0)
		return r;
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		int left = svcfs_left_ms(deadline);
		struct timeval tv = {0};

		fd = socket(AF_UNIX, types[k] | SOCK_CLOEXEC | (left == 0 ? SOCK_NONBLOCK : 0), 0);
		if (fd < 0) {
			r = -errno;
			goto out;
		}
		/* a full accept queue blocks connect() for SO_SNDTIMEO at most */
		if (left > 0) {
			tv.tv_sec = left / 1000;
			tv.tv_usec = (left % 1000) * 1000;
			if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
				r = -errno;
				goto out;
			}
		}
		while ((r = connect(fd, (struct sockaddr *)&a, alen)) < 0 && errno == EINTR &&
		       svcfs_left_ms(deadline) != 0)
			;
		if (r == 0)
			break;
		r = errno == EAGAIN || errno == EINPROGRESS || errno == EINTR ? -ETIMEDOUT : -errno;
		close(fd);
		fd = -1;
		if (r != -EPROTOTYPE)
			goto out;
	}
	if (fd < 0)
		goto out;
	{
		struct timeval zero = {0};
		int fl = fcntl(fd, F_GETFL);

		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &zero, sizeof(zero)) < 0 || fl < 0 ||
		    fcntl(fd, F_SETFL,
		          (flags & SVCFS_CONNECT_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK) <
		        0) {
			r = -errno;
			goto out;
		}
	}
	r = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	close(pfd);
	return r;
}

int svcfs_connect(svcfs_dir *d, const char *name, int timeout_ms, unsigned flags)
{
	int64_t deadline = svcfs_deadline(timeout_ms);
	int r;

	if (!d || svcfs_name_path_check(name, false, NULL) < 0 ||
	    (flags & ~(SVCFS_CONNECT_WAIT | SVCFS_CONNECT_NONBLOCK)))
		return -EINVAL;
	for (;;) {
		int left;

		if (flags & SVCFS_CONNECT_WAIT) {
			r = svcfs_wait(d, name, svcfs_left_ms(deadline), NULL);
			if (r < 0)
				return r;
		}
		r = connect_once(d, name, deadline, flags);
		if (r >= 0 || !(flags & SVCFS_CONNECT_WAIT) || (r != -ECONNREFUSED && r != -ENOENT))
			return r;
		/* listed but refused: starting (bound, not yet listening) or just died */
		left = svcfs_left_ms(deadline);
		if (left == 0)
			return -ETIMEDOUT;
		poll(NULL, 0, left < 0 || left > CONNECT_RETRY_MS ? CONNECT_RETRY_MS : left);
	}
}

/* ---- waiting ---- */

/*
 * Watch the deepest directory of NAME that exists (D's own, a group's, on
 * a mount the service's parent): the next step of NAME appears there.
 */
static int watch_deepest(svcfs_dir *d, int ifd, const char *name)
{
	char path[PATH_MAX + 32];
	const uint32_t mask =
	    IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
	size_t end = 0;
	int wd = -1;

	/* each prefix of NAME that ends before a '/': "", "g", "g/h" */
	for (;;) {
		const char *slash;
		int n =
		    snprintf(path, sizeof(path), "/proc/self/fd/%d/%.*s", d->fd, (int)end, name);

		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		int w = inotify_add_watch(ifd, path, mask);
		if (w < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				break;
			return -errno;
		}
		wd = w;
		slash = strchr(name + end + (end ? 1 : 0), '/');
		if (!slash)
			break;
		end = (size_t)(slash - name);
	}
	return wd < 0 ? -ENOENT : 0;
}

int svcfs_wait(svcfs_dir *d, const char *name, int timeout_ms, svcfs_info **ret_info)
{
	int64_t deadline = svcfs_deadline(timeout_ms);
	svcfs_info *i = NULL;
	int ifd = -1, r;

	if (!d || svcfs_name_path_check(name, false, NULL) < 0)
		return -EINVAL;
	for (;;) {
		char drain[4096];
		struct pollfd p;
		int left;

		r = svcfs_lookup(d, name, &i);
		if (r != -ENOENT)
			break;
		if (ifd < 0) {
			/* watch first, then look again: nothing can slip in between */
			ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
			if (ifd < 0) {
				r = -errno;
				break;
			}
			r = watch_deepest(d, ifd, name);
			if (r < 0)
				break;
			continue;
		}
		left = svcfs_left_ms(deadline);
		if (left == 0) {
			r = -ETIMEDOUT;
			break;
		}
		p = (struct pollfd){.fd = ifd, .events = POLLIN};
		r = poll(&p, 1, left);
		if (r < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		while (read(ifd, drain, sizeof(drain)) > 0)
			;
		/* a group may have appeared: watch one step deeper */
		r = watch_deepest(d, ifd, name);
		if (r < 0)
			break;
	}
	if (ifd >= 0)
		close(ifd);
	if (r == 0 && ret_info)
		*ret_info = i;
	else
		svcfs_info_free(i);
	return r;
}
