/*
 * table — the engine's records of BACKING, kept in step with its files.
 *
 * A tdir is a directory of BACKING (the root or a group, at most
 * SVCFS_GROUP_DEPTH_MAX deep), opened once and addressed by fd: every
 * access below it is an *at() call relative to that fd. A tsvc is a socket
 * file in a tdir, alive or not; it is shown in the view (tsvc->vnode) only
 * while the kernel says a socket is bound to that very file and ready.
 *
 * Whether a record is alive is liveness.c's business; this file finds the
 * socket files and their sidecars, keeps one record per service, and shows
 * or hides it in the view as liveness.c decides.
 *
 * Only the engine thread touches these records; the view does its own
 * locking.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "log.h"
#include "record.h"
#include "render.h"
#include "svcfs-internal.h"

#define WATCH_MASK                                                                                 \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB |        \
	 IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

/*
 * "group/name" or "name", for log lines; control characters become '?' so
 * that a file name cannot forge a log line.
 */
const char *display(const struct tsvc *s, char *buf, size_t size)
{
	if (s->dir->relpath[0])
		snprintf(buf, size, "%s/%s", s->dir->relpath, s->name);
	else
		snprintf(buf, size, "%s", s->name);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}

/* ---- showing and hiding ---- */

/* "group/name" or "name" as it is: the service's path in etcd. */
static const char *service_path(const struct tsvc *s, char *buf, size_t size)
{
	if (s->dir->relpath[0])
		snprintf(buf, size, "%s/%s", s->dir->relpath, s->name);
	else
		snprintf(buf, size, "%s", s->name);
	return buf;
}

static char *socket_path(struct engine *e, const struct tsvc *s)
{
	struct svcfs_buf b;

	svcfs_buf_init(&b);
	svcfs_buf_adds(&b, e->backing);
	if (strcmp(e->backing, "/") != 0)
		svcfs_buf_add(&b, "/", 1);
	if (s->dir->relpath[0]) {
		svcfs_buf_adds(&b, s->dir->relpath);
		svcfs_buf_add(&b, "/", 1);
	}
	svcfs_buf_adds(&b, s->file);
	return svcfs_buf_steal(&b, NULL);
}

/* The directory mode: r-x for exactly the classes that may connect (w on the socket). */
static mode_t service_mode(mode_t sock)
{
	return ((sock & S_IWUSR) ? 0500 : 0) | ((sock & S_IWGRP) ? 0050 : 0) |
	       ((sock & S_IWOTH) ? 0005 : 0);
}

void svc_publish(struct engine *e, struct tsvc *s)
{
	struct svcfs_tokens tokens;
	struct render_output out;
	struct view_service_spec spec;
	json_object *meta = NULL;
	char *sockpath = NULL, *published = NULL, name[PATH_MAX];
	struct vnode *n;
	size_t dropped = 0;
	bool fresh = !s->vnode;

	if (!s->dirty && s->vnode)
		return;
	if (fresh && e->nvisible >= e->opt.max_services) {
		if (!e->max_logged)
			log_warn("max_services=%lu reached: %s and further services not shown",
			         e->opt.max_services, display(s, name, sizeof(name)));
		e->max_logged = true;
		return;
	}
	svcfs_name_tokens(s->name, &tokens);
	meta = svcfs_meta_merge(s->sidecar, &tokens);
	sockpath = socket_path(e, s);
	if (!meta || !sockpath)
		goto oom;
	{
		struct render_input in = {
		    .name = s->name,
		    .group = s->dir->relpath,
		    .socket = sockpath,
		    .pid = s->pid,
		    .uid = s->ouid,
		    .gid = s->ogid,
		    .state = s->unhealthy  ? "unhealthy"
		             : s->pid == 1 ? "activatable"
		             : s->busy     ? "busy"
		                           : "alive",
		    .since = s->since,
		    .meta = meta,
		};
		if (render_service(&in, &out) < 0)
			goto oom;
		if (e->cluster) {
			published = render_published(&in, e->opt.host, e->opt.address);
			if (!published) {
				render_output_free(&out);
				goto oom;
			}
		}
	}
	spec = (struct view_service_spec){
	    .uid = s->uid,
	    .gid = s->gid,
	    .mode = service_mode(s->mode),
	    .files = out.files,
	    .nfiles = out.nfiles,
	    .entry_json = out.entry_json,
	    .target_json = out.target_json,
	};
	n = view_service_set(e->view, s->dir->vnode, s->vnode, s->name, &spec, &dropped);
	render_output_free(&out);
	if (!n)
		goto oom;
	if (dropped)
		log_warn("%s: %zu metadata keys not shown as files (too many in its life)",
		         display(s, name, sizeof(name)), dropped);
	if (fresh) {
		int prio = e->quiet ? LOG_DEBUG : LOG_INFO;
		e->nvisible++;
		STATS_INC(&e->stats, appeared);
		if (s->pid)
			log_msg(prio, "%s: alive (pid %ld)", display(s, name, sizeof(name)),
			        (long)s->pid);
		else
			log_msg(prio, "%s: alive", display(s, name, sizeof(name)));
	}
	s->vnode = n;
	s->dirty = false;
	if (published)
		cluster_publish(e->cluster, service_path(s, name, sizeof(name)), published);
	goto out;
oom:
	log_err("%s: out of memory, view not updated", display(s, name, sizeof(name)));
out:
	free(published);
	free(sockpath);
	json_object_put(meta);
}

void svc_vanish(struct engine *e, struct tsvc *s, const char *why)
{
	char name[PATH_MAX];

	if (s->vnode) {
		view_remove(e->view, s->vnode);
		s->vnode = NULL;
		if (e->cluster)
			cluster_publish(e->cluster, service_path(s, name, sizeof(name)), NULL);
		e->nvisible--;
		STATS_INC(&e->stats, vanished);
		log_msg(e->quiet ? LOG_DEBUG : LOG_INFO, "%s: gone (%s)",
		        display(s, name, sizeof(name)), why);
	}
	s->alive = s->busy = false;
	s->owner_done = false;
	s->owner_tries = 0;
	s->pid = 0;
	svc_forget_liveness(e, s);
	s->lost_at = (struct timespec){0, 0};
}

void svc_free(struct engine *e, struct tsvc *s, const char *why)
{
	svc_vanish(e, s, why);
	retry_cancel(e, s);
	HASH_DELETE(hh, s->dir->svcs, s);
	json_object_put(s->sidecar);
	free(s->health_path);
	free(s->name);
	free(s->file);
	free(s);
}

/* ---- sidecars ---- */

static bool same_file_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec &&
	       a->st_uid == b->st_uid;
}

/* Re-read NAME.json if it changed. Marks the service dirty when it did. */
static void svc_read_sidecar(struct engine *e, struct tsvc *s)
{
	char file[NAME_MAX + 1], name[PATH_MAX];
	json_object *obj = NULL;
	const char *why = NULL;
	struct stat st;
	int r;

	if (snprintf(file, sizeof(file), "%s.json", s->name) >= (int)sizeof(file) ||
	    fstatat(s->dir->fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (s->sidecar_known) {
			json_object_put(s->sidecar);
			s->sidecar = NULL;
			s->sidecar_known = false;
			s->dirty = true;
		}
		return;
	}
	/* the socket's owner is part of the trust check: re-read when it changes */
	st.st_uid ^= s->uid;
	if (s->sidecar_known && same_file_version(&st, &s->sidecar_st))
		return;
	s->sidecar_st = st;
	s->sidecar_known = true;
	s->dirty = true;
	r = svcfs_sidecar_read(s->dir->fd, file, s->uid, &obj, NULL, &why);
	if (engine_fd_error(e, r)) {
		s->sidecar_known = false; /* keep what we had; read it at the next rescan */
		return;
	}
	if (r < 0 && r != -ENOENT)
		log_warn("%s/%s.json: sidecar ignored: %s", e->backing,
		         display(s, name, sizeof(name)), why);
	json_object_put(s->sidecar);
	s->sidecar = r == 0 ? obj : NULL;
	free(s->health_path);
	s->health_path = NULL;
	if (s->sidecar && json_object_object_get_ex(s->sidecar, "health_check", &obj)) {
		const char *path = json_object_get_string(obj);
		if (json_object_is_type(obj, json_type_string) && health_path_ok(path))
			s->health_path = strdup(path);
		else
			log_warn("%s/%s.json: health_check ignored: not an absolute URL path",
			         e->backing, display(s, name, sizeof(name)));
	}
}

/* NAME.lock: present (and trusted) or not; the lock itself is looked at by svc_lock_ok. */
static void svc_read_lock(struct engine *e, struct tsvc *s)
{
	char file[NAME_MAX + 1], name[PATH_MAX];
	struct stat st;

	s->has_lock = false;
	if (snprintf(file, sizeof(file), "%s.lock", s->name) >= (int)sizeof(file) ||
	    fstatat(s->dir->fd, file, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
		return;
	if (st.st_uid != s->uid && st.st_uid != 0) {
		if (!s->lock_untrusted_logged)
			log_warn(
			    "%s/%s.lock: lock file ignored: owned by another user than the socket",
			    e->backing, display(s, name, sizeof(name)));
		s->lock_untrusted_logged = true;
		return;
	}
	s->lock_untrusted_logged = false;
	s->has_lock = true;
	s->lock_dev = st.st_dev;
	s->lock_ino = st.st_ino;
}

/* ---- evaluation of one name ---- */

/*
 * Bring the record of service NAME in D up to date with the files now in
 * BACKING: its socket (NAME.sock, else a socket named NAME), its sidecar,
 * and what the kernel says of it.
 */
/*
 * With -o etcd, names starting with '@' at the top of the mount are other
 * hosts' (remote.c): a group or service of BACKING so named is not shown
 * (one log line for the first).
 */
static bool host_name_reserved(struct engine *e, const struct tdir *parent, const char *name)
{
	if (!e->cluster || parent->parent || name[0] != '@')
		return false;
	if (!e->at_names_logged)
		log_warn("%s/%s: not shown: with -o etcd, names starting with '@' at the top are "
		         "other hosts'",
		         e->backing, name);
	e->at_names_logged = true;
	return true;
}

void svc_evaluate(struct engine *e, struct tdir *d, const char *name_in)
{
	char buf[NAME_MAX + 1], name[NAME_MAX + 1];
	const char *file = NULL;
	struct tdir *sub;
	struct tsvc *s;
	struct stat st;

	/* a copy: NAME_IN may be the record's own name, and the record may be freed below */
	if (svcfs_name_hidden(name_in) || strlen(name_in) > NAME_MAX ||
	    host_name_reserved(e, d, name_in))
		return;
	memcpy(name, name_in, strlen(name_in) + 1);
	HASH_FIND_STR(d->subdirs, name, sub);
	if (!sub && svcfs_backing_socket(d->fd, name, buf, &file, &st) < 0) /* a group wins */
		file = NULL;
	HASH_FIND_STR(d->svcs, name, s);
	if (s &&
	    (!file || s->dev != st.st_dev || s->ino != st.st_ino || strcmp(s->file, file) != 0)) {
		svc_free(e, s, file ? "socket file replaced" : "socket file removed");
		s = NULL;
	}
	if (!file)
		return;
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->name = strdup(name)) || !(s->file = strdup(file))) {
			if (s)
				free(s->name);
			free(s);
			log_err("%s: out of memory", name);
			return;
		}
		s->dir = d;
		s->dev = st.st_dev;
		s->ino = st.st_ino;
		s->created = st.st_mtim;
		s->uid = st.st_uid;
		s->gid = st.st_gid;
		s->mode = st.st_mode;
		s->dirty = true;
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, d->svcs, s->name, strlen(s->name), s);
		if (svcfs_hash_oom) {
			free(s->name);
			free(s->file);
			free(s);
			log_err("%s: out of memory", name);
			return;
		}
	}
	s->seen = true;
	{
		struct stat lst;
		s->via_link =
		    fstatat(d->fd, file, &lst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(lst.st_mode);
	}
	if (s->uid != st.st_uid || s->gid != st.st_gid || s->mode != st.st_mode) {
		s->uid = st.st_uid;
		s->gid = st.st_gid;
		s->mode = st.st_mode;
		s->dirty = true;
		if (s->type == SOCK_DGRAM || !s->pid) {
			s->ouid = s->uid; /* the file's owner stands for an unknown owner */
			s->ogid = s->gid;
		}
	}
	svc_read_sidecar(e, s);
	svc_read_lock(e, s);
	svc_check(e, s); /* the last use of S: it may be reaped */
}

/* Evaluate NAME unless this scan already did (SCANNING) and kept it. */
static void evaluate_once(struct engine *e, struct tdir *d, const char *name, bool scanning)
{
	struct tsvc *s;

	if (scanning) {
		HASH_FIND_STR(d->svcs, name, s);
		if (s && s->seen)
			return; /* NAME.sock and NAME.json both lead here */
	}
	svc_evaluate(e, d, name);
}

/*
 * Evaluate every service an event on file NAME may concern. During a scan
 * (SCANNING) each service is evaluated once, whichever of its files is met.
 */
static void evaluate_file(struct engine *e, struct tdir *d, const char *name, bool scanning)
{
	char stem[NAME_MAX + 1];
	size_t stemlen;
	enum svcfs_suffix k;

	if (svcfs_name_hidden(name))
		return;
	k = svcfs_name_split(name, &stemlen);
	if (k != SVCFS_SUFFIX_NONE && stemlen < sizeof(stem)) {
		memcpy(stem, name, stemlen);
		stem[stemlen] = '\0';
		evaluate_once(e, d, stem, scanning);
	}
	if (k != SVCFS_SUFFIX_SOCK)
		evaluate_once(e, d, name, scanning); /* a socket named exactly NAME */
}

/* ---- directories ---- */

static void dir_scan(struct engine *e, struct tdir *d);

static int dir_watch(struct engine *e, struct tdir *d)
{
	char path[64];

	if (e->inotify_fd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", d->fd);
	d->wd = inotify_add_watch(e->inotify_fd, path, WATCH_MASK);
	if (d->wd < 0) {
		int err = errno;
		if (!e->unwatched)
			log_warn("%s/%s: cannot watch (%s); rescanning every probe interval",
			         e->backing, d->relpath, strerror(err));
		e->unwatched = true;
		return -err;
	}
	svcfs_hash_oom = false;
	HASH_ADD(hw, e->by_wd, wd, sizeof(d->wd), d);
	if (svcfs_hash_oom) {
		inotify_rm_watch(e->inotify_fd, d->wd);
		d->wd = -1;
		e->unwatched = true;
		return -ENOMEM;
	}
	return 0;
}

static void dir_free(struct engine *e, struct tdir *d)
{
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;

	HASH_ITER(hh, d->subdirs, sub, tsub) dir_free(e, sub);
	HASH_ITER(hh, d->svcs, s, ts) svc_free(e, s, "group removed");
	if (d->wd >= 0) {
		HASH_DELETE(hw, e->by_wd, d);
		inotify_rm_watch(e->inotify_fd, d->wd); /* EINVAL if the kernel dropped it */
	}
	if (d->parent) {
		HASH_DELETE(hh, d->parent->subdirs, d);
		if (d->vnode)
			view_remove(e->view, d->vnode);
	}
	if (d->fd >= 0)
		close(d->fd);
	free(d->name);
	free(d->relpath);
	free(d);
}

static struct tdir *dir_new(struct tdir *parent, const char *name, int fd, const struct stat *st)
{
	struct tdir *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->fd = fd;
	d->wd = -1;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->parent = parent;
	d->depth = parent ? parent->depth + 1 : 0;
	d->name = strdup(name);
	if (parent && parent->relpath[0]) {
		size_t n = strlen(parent->relpath) + 1 + strlen(name) + 1;
		d->relpath = malloc(n);
		if (d->relpath)
			snprintf(d->relpath, n, "%s/%s", parent->relpath, name);
	} else {
		d->relpath = strdup(name);
	}
	if (!d->name || !d->relpath) {
		free(d->name);
		free(d->relpath);
		free(d);
		return NULL;
	}
	return d;
}

/* Add group NAME under PARENT, watch it and scan it. */
static void dir_add(struct engine *e, struct tdir *parent, const char *name)
{
	struct tdir *d;
	struct tsvc *clash;
	struct stat st;
	int fd;

	if (svcfs_name_hidden(name) || parent->depth >= SVCFS_GROUP_DEPTH_MAX ||
	    host_name_reserved(e, parent, name))
		return;
	fd = openat(parent->fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (engine_fd_error(e, errno))
			return; /* the next rescan adds it */
		if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP)
			log_warn("%s/%s%s%s: cannot open group: %s", e->backing, parent->relpath,
			         parent->relpath[0] ? "/" : "", name, strerror(errno));
		return;
	}
	if (fstat(fd, &st) < 0 || !(d = dir_new(parent, name, fd, &st))) {
		close(fd);
		return;
	}
	svcfs_hash_oom = false;
	HASH_ADD_KEYPTR(hh, parent->subdirs, d->name, strlen(d->name), d);
	if (svcfs_hash_oom) {
		d->parent = NULL;
		dir_free(e, d);
		return;
	}
	/* the group takes the name: a service of the same name leaves */
	HASH_FIND_STR(parent->svcs, name, clash);
	if (clash)
		svc_free(e, clash, "a group of the same name exists");
	d->vnode =
	    view_group_add(e->view, parent->vnode, name, st.st_uid, st.st_gid, st.st_mode & 0555);
	if (!d->vnode) {
		/* out of memory, or the name is another's: the next rescan tries again */
		log_err("%s/%s: group not shown (out of memory or name taken)", e->backing,
		        d->relpath);
		dir_free(e, d);
		return;
	}
	d->seen = true;
	dir_watch(e, d); /* watch first, then scan: nothing created in between is missed */
	dir_scan(e, d);
}

static void dir_remove_named(struct engine *e, struct tdir *parent, const char *name)
{
	struct tdir *d;

	HASH_FIND_STR(parent->subdirs, name, d);
	if (d)
		dir_free(e, d);
}

static void dir_update_attr(struct engine *e, struct tdir *d)
{
	struct stat st;

	if (fstat(d->fd, &st) == 0)
		view_dir_set_attr(e->view, d->vnode, st.st_uid, st.st_gid, st.st_mode & 0555);
}

/* Reconcile D (and its groups) with what is in BACKING now. */
static void dir_scan(struct engine *e, struct tdir *d)
{
	bool links = false;
	struct tdir *sub, *tsub;
	struct tsvc *s, *ts;
	struct dirent *de;
	DIR *dp;
	int fd;

	HASH_ITER(hh, d->svcs, s, ts) s->seen = false;
	HASH_ITER(hh, d->subdirs, sub, tsub) sub->seen = false;
	dir_update_attr(e, d);
	fd = openat(d->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dp = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dp) {
		if (!engine_fd_error(e, errno))
			log_warn("%s/%s: cannot read directory: %s", e->backing, d->relpath,
			         strerror(errno));
		if (fd >= 0)
			close(fd);
		/*
		 * Keep what we have rather than drop everything, but look at it:
		 * a service of ours can still die, and a known group be read.
		 */
		HASH_ITER(hh, d->svcs, s, ts) svc_evaluate(e, d, s->name);
		HASH_ITER(hh, d->subdirs, sub, tsub) dir_scan(e, sub);
		return;
	}
	while ((de = readdir(dp))) {
		unsigned char type = de->d_type;
		struct stat st;

		if (svcfs_name_hidden(de->d_name))
			continue;
		if (type == DT_UNKNOWN) {
			if (fstatat(d->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
		}
		if (type == DT_LNK)
			links = true;
		if (type == DT_DIR) {
			HASH_FIND_STR(d->subdirs, de->d_name, sub);
			if (sub && fstatat(d->fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    st.st_ino == sub->ino && st.st_dev == sub->dev) {
				sub->seen = true;
				dir_scan(e, sub);
			} else {
				if (sub)
					dir_free(e, sub); /* replaced */
				dir_add(e, d, de->d_name);
			}
			continue;
		}
		evaluate_file(e, d, de->d_name, true);
	}
	closedir(dp);
	d->has_links = links;
	HASH_ITER(hh, d->subdirs, sub, tsub) if (!sub->seen) dir_free(e, sub);
	HASH_ITER(hh, d->svcs, s, ts) if (!s->seen) svc_evaluate(e, d, s->name);
}

void table_scan_dir(struct engine *e, struct tdir *d)
{
	dir_scan(e, d);
}

/* ---- entry points for watch.c ---- */

int table_open_root(struct engine *e)
{
	struct tdir *d;
	struct stat st;
	int fd;

	fd = open(e->backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !(d = dir_new(NULL, "", fd, &st))) {
		int r = errno ? -errno : -ENOMEM;
		close(fd);
		return r;
	}
	d->vnode = view_root(e->view);
	e->root = d;
	e->unwatched = false;
	dir_watch(e, d);
	if (probe_dump(e->probe) == 0)
		e->dump_fresh = true;
	dir_scan(e, d);
	e->dump_fresh = false;
	return 0;
}

/*
 * BACKING removed while we hold it open: no IN_DELETE_SELF comes (the
 * kernel sends it when the inode goes, and our descriptor keeps it), but
 * its link count drops to 0 (an IN_ATTRIB on it; every interval looks too).
 */
bool table_root_deleted(struct engine *e)
{
	struct stat st;

	return e->root && fstat(e->root->fd, &st) == 0 && st.st_nlink == 0;
}

void table_close_root(struct engine *e)
{
	if (!e->root)
		return;
	dir_free(e, e->root);
	e->root = NULL;
}

bool engine_fd_error(struct engine *e, int err)
{
	struct rlimit rl;

	/* an errno of either sign, never a descriptor: callers pass failures only */
	if (err != EMFILE && err != -EMFILE && err != ENFILE && err != -ENFILE)
		return false;
	e->fd_short_seen = true;
	e->fd_errors++;
	if (!e->fd_short) {
		e->fd_short = true;
		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (err == EMFILE || err == -EMFILE))
			log_warn(
			    "out of file descriptors (limit %llu): groups, metadata and owners are "
			    "read again every probe interval, crashes seen by interval, until some "
			    "are free",
			    (unsigned long long)rl.rlim_cur);
		else
			log_warn(
			    "the system is out of file descriptors: groups, metadata and owners "
			    "are read again every probe interval, crashes seen by interval, until "
			    "some are free");
	}
	return true;
}

void table_rescan(struct engine *e)
{
	STATS_INC(&e->stats, rescans);
	if (!e->root)
		return;
	e->fd_short_seen = false;
	if (probe_dump(e->probe) == 0)
		e->dump_fresh = true;
	dir_scan(e, e->root);
	e->dump_fresh = false;
	if (e->fd_short && !e->fd_short_seen) {
		e->fd_short = false;
		log_info("file descriptors available again: following BACKING as before");
	}
}

struct tdir *table_dir_by_wd(struct engine *e, int wd)
{
	struct tdir *d;

	HASH_FIND(hw, e->by_wd, &wd, sizeof(wd), d);
	return d;
}

bool table_dir_is_root(struct engine *e, struct tdir *d)
{
	return d == e->root;
}

void table_dir_attr_changed(struct engine *e, struct tdir *d)
{
	dir_update_attr(e, d);
}

void table_dir_event(struct engine *e, struct tdir *d, uint32_t mask, const char *name)
{
	if (mask & IN_ISDIR) {
		if (svcfs_name_hidden(name))
			return;
		if (mask & (IN_DELETE | IN_MOVED_FROM))
			dir_remove_named(e, d, name);
		if (mask & (IN_CREATE | IN_MOVED_TO)) {
			dir_remove_named(e, d, name); /* a stale record of the same name */
			dir_add(e, d, name);
		}
		if (mask & IN_ATTRIB) {
			struct tdir *sub;
			HASH_FIND_STR(d->subdirs, name, sub);
			if (sub)
				dir_update_attr(e, sub);
		}
		svc_evaluate(e, d, name); /* a same-named service may leave or return */
		return;
	}
	if (mask & (IN_CREATE | IN_MOVED_TO)) {
		struct stat st;
		if (fstatat(d->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			d->has_links = true;
	}
	evaluate_file(e, d, name, false);
}

void table_free(struct engine *e)
{
	table_close_root(e);
	table_free_dead_probes(e);
	locks_free(&e->locks);
	owner_holders_free(&e->holders);
}
