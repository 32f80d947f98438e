/*
 * ops — the FUSE low-level handlers: a thin layer over the view.
 *
 * Each handler replies exactly once. Lookup counts rise in the view on
 * every entry reply (lookup, readdirplus) and fall in forget. The view is
 * read-only to users: every call that would change it is refused with
 * EACCES, and the kernel enforces the modes (default_permissions).
 *
 * Cache timeouts live here, in one place. The daemon is the only writer
 * of the view, so the kernel may keep entries, attributes, page cache and
 * readdir cache for a day: notify.c invalidates exactly what changed
 * (inval_inode for contents, attributes and listings, notify_delete for
 * entries that leave) as the engine changes the view.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "fs.h"
#include "remote.h"
#include "svcfs-internal.h"

/* Entry and attribute timeout: kept correct by notify.c's invalidations. */
#define SVCFS_TTL 86400.0

/* The root's one xattr: the daemon's state for svcfsctl status. */
#define STATUS_XATTR "user.svcfs.status"

static struct view *req_view(fuse_req_t req)
{
	return ((struct svcfs_fs *)fuse_req_userdata(req))->view;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct svcfs_fs *fs = userdata;

	/*
	 * No OPEN/OPENDIR round trips: the kernel then keeps page and readdir
	 * caches across opens (SPEC §6). Without the capability, op_open and
	 * op_opendir answer themselves with the same caching flags.
	 */
	fs->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	fs->no_opendir = (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0;
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	/* we invalidate explicitly; no attribute checks on every read */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* O_TRUNC must reach us as a SETATTR, which is refused */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	conn->want &= ~(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
}

static void reply_entry(fuse_req_t req, const struct stat *st)
{
	struct fuse_entry_param e = {
	    .ino = st->st_ino,
	    .attr = *st,
	    .attr_timeout = SVCFS_TTL,
	    .entry_timeout = SVCFS_TTL,
	};
	fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct stat st;
	int r = view_lookup(req_view(req), parent, name, fuse_req_ctx(req)->pid, &st);

	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	reply_entry(req, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	view_forget(req_view(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		view_forget(req_view(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int r = view_getattr(req_view(req), ino, &st);

	(void)fi;
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st, SVCFS_TTL);
}

static void reply_readlink(void *ctx, const char *data, size_t len)
{
	(void)len; /* view data is NUL-terminated */
	fuse_reply_readlink(ctx, data);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	int r = view_readlink(req_view(req), ino, reply_readlink, req);

	if (r < 0)
		fuse_reply_err(req, -r);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct svcfs_fs *fs = fuse_req_userdata(req);

	(void)ino;
	if (fs->no_open)
		return (void)fuse_reply_err(req, ENOSYS);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EACCES);
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct svcfs_fs *fs = fuse_req_userdata(req);

	(void)ino;
	if (fs->no_opendir)
		return (void)fuse_reply_err(req, ENOSYS);
	fi->keep_cache = 1;
	fi->cache_readdir = 1;
	fuse_reply_open(req, fi);
}

static void reply_data(void *ctx, const char *data, size_t len)
{
	fuse_reply_buf(ctx, data, len);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	int r;

	(void)fi;
	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	r = view_read(req_view(req), ino, (uint64_t)off, size, reply_data, req);
	if (r < 0)
		fuse_reply_err(req, -r);
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, len;
	bool plus;
};

static bool add_dirent(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct dirbuf *db = ctx;
	size_t need;

	if (db->plus) {
		struct fuse_entry_param e = {
		    .ino = st->st_ino,
		    .attr = *st,
		    .attr_timeout = SVCFS_TTL,
		    .entry_timeout = SVCFS_TTL,
		};
		/* "." and ".." are not looked up by the kernel: no reference */
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			e.ino = 0;
		need = fuse_add_direntry_plus(db->req, db->buf + db->len, db->size - db->len, name,
		                              &e, (off_t)next_off);
	} else {
		need = fuse_add_direntry(db->req, db->buf + db->len, db->size - db->len, name, st,
		                         (off_t)next_off);
	}
	if (need > db->size - db->len)
		return false;
	db->len += need;
	return true;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf db = {.req = req, .size = size, .plus = plus};
	int r;

	if (off < 0)
		return (void)fuse_reply_err(req, EINVAL);
	db.buf = malloc(size ? size : 1);
	if (!db.buf)
		return (void)fuse_reply_err(req, ENOMEM);
	r = view_readdir(req_view(req), ino, (uint64_t)off, plus, add_dirent, &db);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, db.buf, db.len);
	free(db.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

struct xattr_reply {
	fuse_req_t req;
	size_t size;
};

/* size 0 asks for the length; a short buffer is ERANGE (getxattr(2)). */
static void reply_xattr(void *ctx, const char *data, size_t len)
{
	struct xattr_reply *x = ctx;

	if (x->size == 0)
		fuse_reply_xattr(x->req, len);
	else if (len > x->size)
		fuse_reply_err(x->req, ERANGE);
	else
		fuse_reply_buf(x->req, data, len);
}

/*
 * The daemon's own state, as JSON, in the root's user.svcfs.status (what
 * `svcfsctl status` reads): made at each request, never cached by the
 * kernel (xattrs are not).
 */
static char *status_json(struct svcfs_fs *fs, size_t *ret_len)
{
	const struct svcfs_status_info *si = &fs->status;
	const struct svcfs_stats *st = fs->stats;
	struct svcfs_buf b;
	struct timespec now;
	char started[32];
	struct tm tm;
	size_t kept_nodes, kept_versions, services = view_service_count(fs->view);
	size_t remote = si->remote ? remote_count(si->remote) : 0;

	view_kept(fs->view, &kept_nodes, &kept_versions);
	/* this host's own; other hosts' are counted in "etcd" (read apart: clamp) */
	services = services > remote ? services - remote : 0;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&si->started.tv_sec, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm);
	svcfs_buf_init(&b);
	svcfs_buf_addf(&b, "{\"version\":\"%s\",\"pid\":%ld,\"backing\":", SVCFS_VERSION,
	               (long)getpid());
	svcfs_buf_add_json_string(&b, si->backing, strlen(si->backing));
	svcfs_buf_adds(&b, ",\"mountpoint\":");
	svcfs_buf_add_json_string(&b, fs->mountpoint, strlen(fs->mountpoint));
	svcfs_buf_addf(&b,
	               ",\"started\":\"%s\",\"uptime\":%.3f,\"services\":%zu,"
	               "\"watch\":\"%s\",\"liveness\":\"%s\",\"probe_interval\":%g",
	               started,
	               (double)(now.tv_sec - si->started.tv_sec) +
	                   (now.tv_nsec - si->started.tv_nsec) / 1e9,
	               services, si->poll > 0 ? "poll" : "inotify",
	               si->sock_diag ? "sock_diag" : "connect", si->probe_interval);
	/* left the view, kept until the kernel forgets them (view_kept) */
	svcfs_buf_addf(&b, ",\"kept\":{\"dirs\":%zu,\"aggregate_versions\":%zu}", kept_nodes,
	               kept_versions);
	if (si->cluster) {
		/* several hosts: the publisher's and the mirror's state */
		char *cs = cluster_status_json(si->cluster);
		svcfs_buf_adds(&b, ",\"etcd\":");
		svcfs_buf_adds(&b, cs ? cs : "null");
		free(cs);
	}
	svcfs_buf_addf(&b,
	               ",\"counters\":{\"appeared\":%" PRIu64 ",\"vanished\":%" PRIu64
	               ",\"events\":%" PRIu64 ",\"dumps\":%" PRIu64 ",\"queries\":%" PRIu64
	               ",\"connects\":%" PRIu64 ",\"health_checks\":%" PRIu64
	               ",\"owner_exits\":%" PRIu64 ",\"rescans\":%" PRIu64 "}}\n",
	               STATS_GET(st, appeared), STATS_GET(st, vanished), STATS_GET(st, events),
	               STATS_GET(st, dumps), STATS_GET(st, queries), STATS_GET(st, connects),
	               STATS_GET(st, health_checks), STATS_GET(st, owner_exits),
	               STATS_GET(st, rescans));
	return svcfs_buf_steal(&b, ret_len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct svcfs_fs *fs = fuse_req_userdata(req);
	struct xattr_reply x = {req, size};
	int r;

	if (ino == FUSE_ROOT_ID && fs->stats && strcmp(name, STATUS_XATTR) == 0) {
		size_t len;
		char *text = status_json(fs, &len);
		if (!text)
			return (void)fuse_reply_err(req, ENOMEM);
		reply_xattr(&x, text, len);
		free(text);
		return;
	}
	r = view_getxattr(req_view(req), ino, name, reply_xattr, &x);
	if (r < 0)
		fuse_reply_err(req, -r);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct svcfs_fs *fs = fuse_req_userdata(req);
	struct xattr_reply x = {req, size};
	int r;

	if (ino == FUSE_ROOT_ID && fs->stats) { /* the root has this one only */
		reply_xattr(&x, STATUS_XATTR, sizeof(STATUS_XATTR));
		return;
	}
	r = view_listxattr(req_view(req), ino, reply_xattr, &x);
	if (r < 0)
		fuse_reply_err(req, -r);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv = {
	    .f_bsize = 4096,
	    .f_frsize = 4096,
	    .f_files = view_service_count(req_view(req)),
	    .f_namemax = 255,
	};

	(void)ino;
	fuse_reply_statfs(req, &sv);
}

/* ---- everything that would change the view: refused ---- */

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	(void)parent, (void)name, (void)mode, (void)rdev;
	fuse_reply_err(req, EACCES);
}

/*
 * mkdir, rmdir and setattr come from the engine thread's pokes (poke mode,
 * view.h): the kernel then tells inotify watchers. Everyone else is refused.
 */
static bool from_poker(fuse_req_t req)
{
	return view_is_poker(req_view(req), fuse_req_ctx(req)->pid);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct stat st;
	int r;

	(void)mode;
	if (!from_poker(req))
		return (void)fuse_reply_err(req, EACCES);
	r = view_poke_mkdir(req_view(req), parent, name, &st);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	reply_entry(req, &st);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	if (!from_poker(req))
		return (void)fuse_reply_err(req, EACCES);
	fuse_reply_err(req, -view_poke_rmdir(req_view(req), parent, name));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	(void)parent, (void)name;
	fuse_reply_err(req, EACCES);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link, (void)parent, (void)name;
	fuse_reply_err(req, EACCES);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	(void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
	fuse_reply_err(req, EACCES);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino, (void)newparent, (void)newname;
	fuse_reply_err(req, EACCES);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct stat st;
	int r;

	(void)attr, (void)to_set, (void)fi;
	if (!from_poker(req))
		return (void)fuse_reply_err(req, EACCES);
	/* a poke: nothing changes but the kernel's view of what already did */
	r = view_getattr(req_view(req), ino, &st);
	if (r < 0)
		return (void)fuse_reply_err(req, -r);
	fuse_reply_attr(req, &st, SVCFS_TTL);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	(void)buf, (void)size, (void)off, (void)fi;
	/* root may have written through a shared mapping: drop those pages */
	view_write_refused(req_view(req), ino);
	fuse_reply_err(req, EACCES);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	(void)parent, (void)name, (void)mode, (void)fi;
	fuse_reply_err(req, EACCES);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
	(void)ino, (void)name, (void)value, (void)size, (void)flags;
	fuse_reply_err(req, EACCES);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino, (void)name;
	fuse_reply_err(req, EACCES);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
	(void)ino, (void)mode, (void)offset, (void)length, (void)fi;
	fuse_reply_err(req, EACCES);
}

const struct fuse_lowlevel_ops svcfs_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .opendir = op_opendir,
    .read = op_read,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .statfs = op_statfs,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .setattr = op_setattr,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};
