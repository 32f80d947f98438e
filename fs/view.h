/*
 * view — the tree of inodes the mount shows (SPEC §4), independent of FUSE.
 *
 * The engine thread is the only writer: it adds and removes group and
 * service directories and sets a service's rendered files. FUSE handlers
 * read through the view_* query calls. Every call takes the view lock
 * itself; callbacks passed to queries run with the lock held and must not
 * call back into the view. Changes are queued as view events and delivered
 * by view_flush(), outside the lock, to the notify function given at
 * creation (the FUSE front end turns them into cache invalidations).
 */
#ifndef SVCFS_VIEW_H
#define SVCFS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Inode numbers. The root is 1. Every other directory gets an id from a
 * counter that never repeats; its inode is id << VIEW_INO_SHIFT and the
 * files inside a service directory are that inode | slot, slot in
 * [1, VIEW_SLOT_MAX]. A file keeps its slot for the directory's life, so
 * an inode number always names the same file and numbers are never reused
 * while the daemon runs. Each version of an aggregate file (its text never
 * changes; a change is a new version the name moves to, as with rename(2))
 * takes an id from the same counter: inode id << VIEW_INO_SHIFT. The
 * kernel never sees 2 and 3: they name "the current version" of
 * .services.json and .targets.json in events, view_path and queries.
 */
#define VIEW_INO_SHIFT    10
#define VIEW_SLOT_MAX     ((1u << VIEW_INO_SHIFT) - 1)
#define VIEW_ROOT_INO     1
#define VIEW_SERVICES_INO 2
#define VIEW_TARGETS_INO  3

#define VIEW_SERVICES_NAME ".services.json"
#define VIEW_TARGETS_NAME  ".targets.json"

enum view_event_kind {
	VIEW_EV_ADDED,        /* directory NAME (inode INO) appeared in directory PARENT */
	VIEW_EV_REMOVED,      /* directory NAME (inode INO) left directory PARENT */
	VIEW_EV_FILE_REMOVED, /* file NAME (inode INO) left service directory PARENT */
	VIEW_EV_MODIFIED,     /* file INO's content changed; for an aggregate (INO 2 or 3),
	                         PARENT is the old version's inode if the kernel knows it */
	VIEW_EV_ATTRIB,       /* INO's attributes changed (or its pages must go) */
	VIEW_EV_DIR_CHANGED,  /* directory INO's listing changed */
};

struct view_event {
	enum view_event_kind kind;
	uint64_t parent;
	uint64_t ino;
	char *name; /* ADDED/REMOVED only; owned by the event queue */
};

typedef void view_notify_fn(void *ctx, const struct view_event *events, size_t n);

struct view;
struct vnode; /* a directory: root, group or service */

struct view_file_spec {
	const char *name;
	const char *data; /* content; for a symlink, its target */
	size_t len;
	bool link;
};

struct view_service_spec {
	uid_t uid; /* owner of the directory and its files */
	gid_t gid;
	mode_t mode; /* permission bits of the directory; files get them less x */
	const struct view_file_spec *files;
	size_t nfiles;
	const char *entry_json;  /* this service's element of .services.json */
	const char *target_json; /* its element of .targets.json */
};

struct view *view_new(uid_t uid, gid_t gid, mode_t mode, view_notify_fn *notify, void *ctx);
struct view *view_free(struct view *v);

/* ---- engine side (one writer thread) ---- */

struct vnode *view_root(struct view *v);
/* Root or group directory attributes, from the backing directory. */
void view_dir_set_attr(struct view *v, struct vnode *dir, uid_t uid, gid_t gid, mode_t mode);
/* Add a group directory NAME under PARENT. NULL on ENOMEM or a taken name. */
struct vnode *view_group_add(struct view *v, struct vnode *parent, const char *name, uid_t uid,
                             gid_t gid, mode_t mode);
/*
 * Create (NODE == NULL) or update service directory NAME under PARENT with
 * SPEC. Returns the node, NULL on ENOMEM or a taken name. Files beyond
 * VIEW_SLOT_MAX slots in the directory's life are left out; *ret_dropped
 * (may be NULL) counts them.
 */
struct vnode *view_service_set(struct view *v, struct vnode *parent, struct vnode *node,
                               const char *name, const struct view_service_spec *spec,
                               size_t *ret_dropped);
/* Unlink an empty group or a service directory. The node is freed once the kernel forgets it. */
void view_remove(struct view *v, struct vnode *node);
/* Deliver queued events; call without holding anything the notify function may need. */
void view_flush(struct view *v);

/*
 * Poke mode (SPEC §5). The kernel tells inotify watchers only about what
 * goes through the VFS, so the engine makes every change happen
 * through the mount itself: mkdir for a directory that appears, rmdir for
 * one that leaves, truncate (to its size) for a file whose content changed.
 * From view_set_poker() on, a new directory is invisible to everyone until
 * the poker's MKDIR for it arrives (view_poke_mkdir), and a leaving one
 * stays visible to the poker alone until its RMDIR (view_poke_rmdir). If a
 * poke fails, view_settle() completes the change without an event.
 * POKER is the thread id the pokes come from (the poker process's pid,
 * notify.c, or the engine thread's gettid), UID the daemon's euid: when not
 * root, directories and files owned by it get u+w so that the kernel lets
 * its pokes through (the handlers still refuse everyone else).
 */
void view_set_poker(struct view *v, pid_t poker, uid_t uid);
bool view_is_poker(struct view *v, pid_t caller);
int view_poke_mkdir(struct view *v, uint64_t parent, const char *name, struct stat *ret_st);
int view_poke_rmdir(struct view *v, uint64_t parent, const char *name);
/* Finish a pending appearance or removal of INO without a poke. */
void view_settle(struct view *v, uint64_t ino);
/*
 * Path of INO relative to the mount root into BUF (and its size in
 * *RET_SIZE, for files). Works for leaving directories too. -ENAMETOOLONG,
 * -ENOENT.
 */
int view_path(struct view *v, uint64_t ino, char *buf, size_t size, uint64_t *ret_size);
/*
 * WAKE(CTX) is called (from any thread) when events were queued outside
 * the engine thread and view_flush() should run soon.
 */
void view_set_waker(struct view *v, void (*wake)(void *ctx), void *ctx);
/* Number of services currently linked. */
size_t view_service_count(struct view *v);
/*
 * What is kept only because the kernel still refers to it: directories
 * that left the tree (with their files) and old aggregate versions.
 */
void view_kept(struct view *v, size_t *ret_nodes, size_t *ret_versions);

/* ---- FUSE side (any thread) ---- */

/*
 * Lookup NAME in PARENT for CALLER (a thread id; see poke mode): fills
 * *ret_st and counts one kernel reference.
 */
int view_lookup(struct view *v, uint64_t parent, const char *name, pid_t caller,
                struct stat *ret_st);
int view_getattr(struct view *v, uint64_t ino, struct stat *ret_st);
void view_forget(struct view *v, uint64_t ino, uint64_t nlookup);

/* Called with the lock held: DATA stays valid until it returns. */
typedef void view_data_fn(void *ctx, const char *data, size_t len);
int view_readlink(struct view *v, uint64_t ino, view_data_fn *fn, void *ctx);
int view_read(struct view *v, uint64_t ino, uint64_t off, size_t size, view_data_fn *fn, void *ctx);

/*
 * Directory entries from offset OFF on. FN returns false when its buffer is
 * full; the entry it refused is not counted. With PLUS each accepted entry
 * other than "." and ".." counts one kernel reference (readdirplus).
 */
typedef bool view_dirent_fn(void *ctx, const char *name, const struct stat *st, uint64_t next_off);
int view_readdir(struct view *v, uint64_t ino, uint64_t off, bool plus, view_dirent_fn *fn,
                 void *ctx);

/*
 * A user's write to INO was refused, but the kernel may already hold the
 * pages it changed (a shared writable mapping): queue their invalidation
 * and wake the engine. Safe inside a FUSE handler (it does not notify).
 */
void view_write_refused(struct view *v, uint64_t ino);

/*
 * Extended attributes user.svcfs.FILE of a service directory. Other user.*
 * names are -ENODATA; other namespaces -EOPNOTSUPP (there are none here).
 */
#define VIEW_XATTR_PREFIX "user.svcfs."
int view_getxattr(struct view *v, uint64_t ino, const char *name, view_data_fn *fn, void *ctx);
int view_listxattr(struct view *v, uint64_t ino, view_data_fn *fn, void *ctx);

#endif /* SVCFS_VIEW_H */
