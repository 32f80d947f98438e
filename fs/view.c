/*
 * view — the mount's inode tree (see view.h for the inode-number scheme).
 *
 * Lifetimes: a directory node is "linked" while it is part of the tree. The
 * kernel holds references to inodes it has looked up (nlookup, counted per
 * directory node for the node and all its files); a node is freed only when
 * it is unlinked and the kernel has forgotten every reference, so a forget
 * or getattr for an inode that left the tree always finds its node.
 *
 * Locking: one mutex (view->lock) protects everything in struct view and
 * every node. The engine thread is the only writer; FUSE handler threads
 * take the lock for each query. Events are queued under the lock and
 * delivered by view_flush() after it is released, so a notify call (which
 * may wait on the kernel, which may wait on a handler) never runs while
 * the lock is held.
 *
 * Readdir offsets: "." is 1, ".." 2; in the root the aggregate files are 3
 * and 4; a group's children carry a sequence number (from 16 on) given when
 * they are linked and never reused in that directory; a service's files
 * are slot + 2. A directory keeps its children in an array ordered by
 * sequence number (removed ones leave a hole until compaction), so a
 * readdir resumes with a binary search and never skips or repeats an entry
 * that stayed in the directory. *
 * Contents and sizes: the kernel takes a file's size from our attribute
 * replies and its pages from our read replies, at different moments, and
 * copies a read out of the pages up to the size it holds. Were a read to
 * serve a new text while the kernel holds the old size, the reader would
 * get the new text cut at the old length (or padded with zeros) — and the
 * page stays cached so until the next change. So a file remembers whether
 * its text's size went to the kernel (told) and keeps the text it told
 * before (shown) while that size differs: reads serve what was told;
 * every attribute reply (lookup, getattr, readdirplus, setattr) tells the
 * current text. The change's invalidation (notify.c) then makes the
 * kernel ask for the attributes again. One race is left: two attribute
 * replies for one file in flight across a change, applied in the wrong
 * order (the kernel keeps the older and drops the newer by its
 * attr_version), leave the old size until the invalidation lands, and a
 * read in that window is cut. Serving the old text until the invalidation
 * landed was tried and is worse: under churn the new size is often applied
 * first, and a short read then shrinks the kernel's size for good. When the size does not change,
 * the kernel keeps its pages across the new attributes, so then the current text is served at once
 * (the size is right either way).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "svcfs-internal.h"
#include "view.h"

enum vnode_kind { VN_ROOT, VN_GROUP, VN_SERVICE };

/* Visibility of a directory in poke mode (see view.h). */
enum vnode_vis {
	VIS_LIVE,    /* visible to all */
	VIS_ADDING,  /* linked, invisible until the poker's MKDIR */
	VIS_LEAVING, /* out of the listing, visible to the poker until its RMDIR */
};

#define FIRST_CHILD_SEQ 16

/*
 * What a read serves must match the size the kernel holds (see "Contents
 * and sizes" above): SHOWN keeps the text whose size the kernel was last
 * told while that size differs from the current text's.
 */
struct text {
	char *data; /* NUL-terminated, len bytes */
	size_t len;
	bool told;   /* data's size went to the kernel in an attribute reply */
	char *shown; /* else the text it was told last, if its size differs */
	size_t shown_len;
};

struct vfile {
	char *name;
	struct text t;
	unsigned slot;
	bool link;
	struct timespec mtime;
};

struct dirslot {
	uint64_t seq;
	struct vnode *node; /* NULL: removed, awaiting compaction */
};

struct vnode {
	uint64_t id; /* inode = id << VIEW_INO_SHIFT; root: VIEW_ROOT_INO */
	enum vnode_kind kind;
	struct vnode *parent; /* NULL for the root and once unlinked */
	char *name;
	uint64_t nlookup; /* kernel references to this node and its files */
	bool linked;      /* in the tree (also while VIS_LEAVING) */
	enum vnode_vis vis;
	struct vnode *leaving;      /* dirs: children that are VIS_LEAVING */
	struct vnode *leaving_next; /* in parent->leaving */
	uid_t uid;
	gid_t gid;
	mode_t mode; /* permission bits */
	struct timespec mtime, ctime;
	UT_hash_handle hh; /* view->by_id */
	UT_hash_handle hn; /* parent->children, by name */
	uint64_t seq;      /* this node's readdir position in its parent */

	/* root and groups */
	struct vnode *children;
	struct dirslot *order;
	size_t norder, order_cap, nholes;
	uint64_t next_seq;
	unsigned nsubdirs;

	/* services */
	struct vfile *files; /* sorted by slot */
	size_t nfiles;
	unsigned next_slot;
	char *entry_json, *target_json;
	size_t entry_len, target_len;      /* their strlen */
	struct vnode *svc_prev, *svc_next; /* list of linked services */
};

/*
 * One version of an aggregate file. Its text never changes: a change makes
 * a new version with a new inode, and the name is moved to it (notify.c),
 * as a writer replacing a file with rename(2) would. A reader holding the
 * old one open reads one whole document however many reads it takes; the
 * version is freed once it is not current and the kernel forgot it.
 */
struct aggver {
	uint64_t id;      /* inode = id << VIEW_INO_SHIFT, from the nodes' counter */
	const char *name; /* its file name in the root */
	char *data;
	size_t len;
	struct timespec mtime;
	uint64_t nlookup;
	bool current;
	UT_hash_handle hh; /* view->aggvers */
};

struct aggregate {
	uint64_t alias; /* VIEW_SERVICES_INO or VIEW_TARGETS_INO */
	const char *name;
	struct aggver *cur; /* NULL while dirty: rendered at the next access */
	struct timespec mtime;
};

struct view {
	pthread_mutex_t lock;
	struct vnode root;
	struct vnode *by_id; /* every node but the root, linked or not */
	uint64_t next_id;
	struct vnode *svc_head, *svc_tail;
	size_t nservices;
	struct aggregate services, targets;
	struct aggver *aggvers; /* every version the kernel may still refer to */
	size_t nkept_nodes;     /* unlinked nodes the kernel has not forgotten */
	size_t nkept_aggvers;   /* versions not current the kernel has not forgotten */
	view_notify_fn *notify;
	void *notify_ctx;
	void (*wake)(void *ctx); /* set once before threads start */
	void *wake_ctx;
	pid_t poker;               /* engine thread id once in poke mode, else 0 */
	uid_t poker_uid;           /* the daemon's euid */
	struct view_event *events; /* queued for view_flush() */
	size_t nevents, events_cap;
	bool events_lost; /* an event could not be queued: flush invalidates the root */
};

static struct timespec now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static uint64_t node_ino(const struct vnode *n)
{
	return n->kind == VN_ROOT ? VIEW_ROOT_INO : n->id << VIEW_INO_SHIFT;
}

/* ---- events ---- */

static void queue_event(struct view *v, enum view_event_kind kind, uint64_t parent, uint64_t ino,
                        const char *name)
{
	struct view_event *ev;

	if (v->nevents == v->events_cap) {
		size_t cap = v->events_cap ? v->events_cap * 2 : 64;
		struct view_event *p = realloc(v->events, cap * sizeof(*p));
		if (!p) {
			v->events_lost = true;
			return;
		}
		v->events = p;
		v->events_cap = cap;
	}
	ev = &v->events[v->nevents];
	*ev = (struct view_event){.kind = kind, .parent = parent, .ino = ino};
	if (name) {
		ev->name = strdup(name);
		if (!ev->name) {
			v->events_lost = true;
			return;
		}
	}
	v->nevents++;
}

void view_flush(struct view *v)
{
	struct view_event *events;
	size_t n;
	bool lost;

	pthread_mutex_lock(&v->lock);
	events = v->events;
	n = v->nevents;
	lost = v->events_lost;
	v->events = NULL;
	v->nevents = v->events_cap = 0;
	v->events_lost = false;
	pthread_mutex_unlock(&v->lock);

	if (lost) {
		/* cannot say what changed: at least make the kernel re-read the root */
		struct view_event ev = {.kind = VIEW_EV_DIR_CHANGED, .ino = VIEW_ROOT_INO};
		if (v->notify)
			v->notify(v->notify_ctx, &ev, 1);
	}
	if (n && v->notify)
		v->notify(v->notify_ctx, events, n);
	for (size_t i = 0; i < n; i++)
		free(events[i].name);
	free(events);
}

void view_set_waker(struct view *v, void (*wake)(void *ctx), void *ctx)
{
	v->wake = wake;
	v->wake_ctx = ctx;
}

void view_write_refused(struct view *v, uint64_t ino)
{
	pthread_mutex_lock(&v->lock);
	queue_event(v, VIEW_EV_ATTRIB, 0, ino, NULL);
	pthread_mutex_unlock(&v->lock);
	if (v->wake)
		v->wake(v->wake_ctx);
}

/* ---- texts ---- */

/* Drop SHOWN once the current text has the same size: it is then as good. */
static void text_trim(struct text *t)
{
	if (t->shown && t->data && t->shown_len == t->len) {
		free(t->shown);
		t->shown = NULL;
	}
}

/* Make DATA (owned; NULL: to be rendered) the current text. */
static void text_replace(struct text *t, char *data, size_t len)
{
	if (t->told && t->data) {
		free(t->shown);
		t->shown = t->data;
		t->shown_len = t->len;
	} else {
		free(t->data);
	}
	t->data = data;
	t->len = data ? len : 0;
	t->told = false;
	text_trim(t);
}

/* The current text's size is going to the kernel (T->data is set). */
static void text_tell(struct text *t)
{
	free(t->shown);
	t->shown = NULL;
	t->told = true;
}

/* What a read serves: the text whose size the kernel holds. */
static void text_served(const struct text *t, const char **ret, size_t *ret_len)
{
	*ret = t->shown ? t->shown : t->data;
	*ret_len = t->shown ? t->shown_len : t->len;
}

static void text_free(struct text *t)
{
	free(t->data);
	free(t->shown);
	*t = (struct text){0};
}

#define AGG_SERVICES 1u
#define AGG_TARGETS  2u
#define AGG_BOTH     (AGG_SERVICES | AGG_TARGETS)

static uint64_t aggver_ino(const struct aggver *a)
{
	return a->id << VIEW_INO_SHIFT;
}

/* Free version A if it is neither current nor known to the kernel. Locked. */
static void aggver_release(struct view *v, struct aggver *a)
{
	if (a->current || a->nlookup > 0)
		return;
	HASH_DELETE(hh, v->aggvers, a);
	v->nkept_aggvers--;
	free(a->data);
	free(a);
}

/* The current version becomes an old one. Returns its inode if the kernel knows it, else 0. */
static uint64_t aggregate_retire(struct view *v, struct aggregate *agg)
{
	struct aggver *old = agg->cur;
	uint64_t ino;

	agg->mtime = now();
	if (!old)
		return 0;
	ino = old->nlookup > 0 ? aggver_ino(old) : 0;
	agg->cur = NULL;
	old->current = false;
	v->nkept_aggvers++; /* until released, now or at its last forget */
	aggver_release(v, old);
	return ino;
}

/* The aggregate files in WHICH (AGG_*) changed. Locked. */
static void aggregates_dirty(struct view *v, unsigned which)
{
	struct aggregate *aggs[] = {&v->services, &v->targets};

	for (int i = 0; i < 2; i++) {
		bool had = aggs[i]->cur != NULL;
		uint64_t old;

		if (!(which & (1u << i)))
			continue;
		old = aggregate_retire(v, aggs[i]);
		/*
		 * If no version was rendered since the last change, the kernel
		 * holds none: the event sent then still holds. Watchers, though,
		 * must hear of every change (SPEC §5): in poke mode each one is
		 * an event (notify.c sends one per batch). PARENT carries the
		 * old version's inode when the kernel knows it.
		 */
		if (had || v->poker)
			queue_event(v, VIEW_EV_MODIFIED, old, aggs[i]->alias, NULL);
	}
}

/*
 * A service became visible (its MKDIR poke): the aggregates, which list
 * only what users can see, change with it. No event of its own: the batch
 * that added the service carries the aggregates' MODIFIED, which notify.c
 * handles after the batch's pokes. Locked.
 */
static void aggregates_stale(struct view *v)
{
	aggregate_retire(v, &v->services);
	aggregate_retire(v, &v->targets);
}

/* The current version of AGG, rendered if needed; NULL on ENOMEM. Locked. */
static struct aggver *aggregate_current(struct view *v, struct aggregate *agg)
{
	bool services = agg == &v->services;
	size_t len = 3, pos = 1; /* "[" ... "]\n" */
	struct aggver *a;
	char *p;

	if (agg->cur)
		return agg->cur;
		/* what users can see: not a service whose MKDIR poke is pending */
#define AGG_ITEM(s) ((s)->vis == VIS_LIVE ? (services ? (s)->entry_json : (s)->target_json) : NULL)
#define AGG_LEN(s)  (services ? (s)->entry_len : (s)->target_len)
	/* sized first, then copied: one allocation (100 000 services make megabytes) */
	for (struct vnode *s = v->svc_head; s; s = s->svc_next)
		if (AGG_ITEM(s))
			len += AGG_LEN(s) + 1;
	a = calloc(1, sizeof(*a));
	p = malloc(len + 1);
	if (!a || !p) {
		free(a);
		free(p);
		return NULL;
	}
	p[0] = '[';
	for (struct vnode *s = v->svc_head; s; s = s->svc_next) {
		const char *item = AGG_ITEM(s);
		if (!item)
			continue;
		if (pos > 1)
			p[pos++] = ',';
		memcpy(p + pos, item, AGG_LEN(s));
		pos += AGG_LEN(s);
	}
#undef AGG_ITEM
#undef AGG_LEN
	memcpy(p + pos, "]\n", 3); /* with the NUL */
	a->data = p;
	a->len = pos + 2;
	a->id = v->next_id++;
	a->name = agg->name;
	a->mtime = agg->mtime;
	a->current = true;
	svcfs_hash_oom = false;
	HASH_ADD(hh, v->aggvers, id, sizeof(a->id), a);
	if (svcfs_hash_oom) {
		free(a->data);
		free(a);
		return NULL;
	}
	agg->cur = a;
	return a;
}

/*
 * The aggregate version of inode INO: an old or current version's inode,
 * or VIEW_SERVICES_INO / VIEW_TARGETS_INO for the current one (rendered).
 * NULL if INO is none of these, or on ENOMEM (*RET_ERR). Locked.
 */
static struct aggver *aggver_by_ino(struct view *v, uint64_t ino, int *ret_err)
{
	struct aggver *a = NULL;
	uint64_t id;

	*ret_err = -ENOENT;
	if (ino == VIEW_SERVICES_INO || ino == VIEW_TARGETS_INO) {
		a = aggregate_current(v, ino == VIEW_SERVICES_INO ? &v->services : &v->targets);
		if (!a)
			*ret_err = -ENOMEM;
		return a;
	}
	if (ino & VIEW_SLOT_MAX)
		return NULL;
	id = ino >> VIEW_INO_SHIFT;
	HASH_FIND(hh, v->aggvers, &id, sizeof(id), a);
	return a;
}

/* ---- nodes ---- */

static void file_free(struct vfile *f)
{
	free(f->name);
	text_free(&f->t);
}

static void node_free(struct vnode *n)
{
	for (size_t i = 0; i < n->nfiles; i++)
		file_free(&n->files[i]);
	free(n->files);
	free(n->order);
	free(n->entry_json);
	free(n->target_json);
	free(n->name);
	free(n);
}

/* Free N if nothing refers to it any more. Locked. */
static void node_release(struct view *v, struct vnode *n)
{
	if (n->kind == VN_ROOT || n->linked || n->nlookup > 0)
		return;
	HASH_DELETE(hh, v->by_id, n);
	v->nkept_nodes--;
	node_free(n);
}

static struct vnode *node_by_ino(struct view *v, uint64_t ino, unsigned *ret_slot)
{
	struct vnode *n;
	uint64_t id;

	if (ino == VIEW_ROOT_INO) {
		*ret_slot = 0;
		return &v->root;
	}
	id = ino >> VIEW_INO_SHIFT;
	HASH_FIND(hh, v->by_id, &id, sizeof(id), n);
	if (!n)
		return NULL;
	*ret_slot = (unsigned)(ino & VIEW_SLOT_MAX);
	return n;
}

static struct vfile *file_by_slot(struct vnode *n, unsigned slot)
{
	size_t lo = 0, hi = n->nfiles;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (n->files[mid].slot < slot)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n->nfiles && n->files[lo].slot == slot ? &n->files[lo] : NULL;
}

static struct vfile *file_by_name(struct vnode *n, const char *name)
{
	for (size_t i = 0; i < n->nfiles; i++)
		if (n->files[i].name && strcmp(n->files[i].name, name) == 0)
			return &n->files[i];
	return NULL;
}

/* u+w for what a non-root poker must be let to mkdir in / truncate. */
static mode_t poker_bits(const struct view *v, uid_t owner)
{
	return v->poker && v->poker_uid != 0 && owner == v->poker_uid ? 0200 : 0;
}

static void fill_dir_stat(const struct view *v, const struct vnode *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node_ino(n);
	st->st_mode = S_IFDIR | n->mode | (n->kind == VN_SERVICE ? 0 : poker_bits(v, n->uid));
	st->st_nlink = 2 + n->nsubdirs;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

/* TELL: the attributes go to the kernel (lookup, getattr, readdirplus, setattr). */
static void fill_file_stat(const struct view *v, const struct vnode *n, struct vfile *f,
                           struct stat *st, bool tell)
{
	if (tell)
		text_tell(&f->t);
	memset(st, 0, sizeof(*st));
	st->st_ino = node_ino(n) | f->slot;
	st->st_mode = f->link ? S_IFLNK | 0777 : S_IFREG | (n->mode & 0444) | poker_bits(v, n->uid);
	st->st_nlink = 1;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_size = (off_t)f->t.len;
	st->st_blocks = (blkcnt_t)((f->t.len + 511) / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = f->mtime;
	if (n->ctime.tv_sec > f->mtime.tv_sec ||
	    (n->ctime.tv_sec == f->mtime.tv_sec && n->ctime.tv_nsec > f->mtime.tv_nsec))
		st->st_ctim = n->ctime; /* owner or mode changed later */
}

static void fill_aggregate_stat(const struct view *v, const struct aggver *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = aggver_ino(a);
	st->st_mode = S_IFREG | (v->root.mode & 0444) | poker_bits(v, v->root.uid);
	st->st_nlink = 1;
	st->st_uid = v->root.uid;
	st->st_gid = v->root.gid;
	st->st_size = (off_t)a->len;
	st->st_blocks = (blkcnt_t)((a->len + 511) / 512);
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = a->mtime;
}

/* Stat of inode INO for the kernel, rendering an aggregate if needed. Locked. */
static int stat_ino(struct view *v, uint64_t ino, struct stat *st)
{
	struct aggver *a;
	struct vnode *n;
	struct vfile *f;
	unsigned slot;
	int r;

	n = node_by_ino(v, ino, &slot);
	if (!n) {
		a = aggver_by_ino(v, ino, &r);
		if (!a)
			return r;
		fill_aggregate_stat(v, a, st);
		return 0;
	}
	if (slot == 0) {
		fill_dir_stat(v, n, st);
		return 0;
	}
	f = file_by_slot(n, slot);
	if (!f)
		return -ENOENT;
	fill_file_stat(v, n, f, st, true);
	return 0;
}

/* ---- directory order ---- */

static bool order_append(struct vnode *dir, struct vnode *child)
{
	if (dir->norder == dir->order_cap) {
		size_t cap = dir->order_cap ? dir->order_cap * 2 : 8;
		struct dirslot *p = realloc(dir->order, cap * sizeof(*p));
		if (!p)
			return false;
		dir->order = p;
		dir->order_cap = cap;
	}
	child->seq = dir->next_seq++;
	dir->order[dir->norder++] = (struct dirslot){child->seq, child};
	return true;
}

/* Index of the first slot with seq > OFF. */
static size_t order_find_after(const struct vnode *dir, uint64_t off)
{
	size_t lo = 0, hi = dir->norder;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dir->order[mid].seq <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void order_remove(struct vnode *dir, struct vnode *child)
{
	size_t i = order_find_after(dir, child->seq - 1);
	size_t j = 0;

	if (i < dir->norder && dir->order[i].node == child) {
		dir->order[i].node = NULL;
		dir->nholes++;
	}
	if (dir->nholes < 32 || dir->nholes * 2 < dir->norder)
		return;
	for (i = 0; i < dir->norder; i++)
		if (dir->order[i].node)
			dir->order[j++] = dir->order[i];
	dir->norder = j;
	dir->nholes = 0;
}

/* ---- engine side ---- */

struct view *view_new(uid_t uid, gid_t gid, mode_t mode, view_notify_fn *notify, void *ctx)
{
	struct view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	pthread_mutex_init(&v->lock, NULL);
	v->root.kind = VN_ROOT;
	v->root.linked = true;
	v->root.uid = uid;
	v->root.gid = gid;
	v->root.mode = mode & 07777;
	v->root.mtime = v->root.ctime = now();
	v->root.next_seq = FIRST_CHILD_SEQ;
	v->services =
	    (struct aggregate){VIEW_SERVICES_INO, VIEW_SERVICES_NAME, NULL, v->root.mtime};
	v->targets = (struct aggregate){VIEW_TARGETS_INO, VIEW_TARGETS_NAME, NULL, v->root.mtime};
	v->next_id = 1;
	v->notify = notify;
	v->notify_ctx = ctx;
	return v;
}

struct view *view_free(struct view *v)
{
	struct vnode *n, *tmp;

	if (!v)
		return NULL;
	/* the children tables first: clearing one reads its first child */
	HASH_CLEAR(hn, v->root.children);
	HASH_ITER(hh, v->by_id, n, tmp) HASH_CLEAR(hn, n->children);
	HASH_ITER(hh, v->by_id, n, tmp)
	{
		HASH_DELETE(hh, v->by_id, n);
		node_free(n);
	}
	free(v->root.order);
	{
		struct aggver *a, *atmp;
		HASH_ITER(hh, v->aggvers, a, atmp)
		{
			HASH_DELETE(hh, v->aggvers, a);
			free(a->data);
			free(a);
		}
	}
	for (size_t i = 0; i < v->nevents; i++)
		free(v->events[i].name);
	free(v->events);
	pthread_mutex_destroy(&v->lock);
	free(v);
	return NULL;
}

struct vnode *view_root(struct view *v)
{
	return &v->root;
}

size_t view_service_count(struct view *v)
{
	size_t n;

	pthread_mutex_lock(&v->lock);
	n = v->nservices;
	pthread_mutex_unlock(&v->lock);
	return n;
}

void view_kept(struct view *v, size_t *ret_nodes, size_t *ret_versions)
{
	pthread_mutex_lock(&v->lock);
	*ret_nodes = v->nkept_nodes;
	*ret_versions = v->nkept_aggvers;
	pthread_mutex_unlock(&v->lock);
}

void view_dir_set_attr(struct view *v, struct vnode *dir, uid_t uid, gid_t gid, mode_t mode)
{
	pthread_mutex_lock(&v->lock);
	mode &= 07777;
	if (dir->uid != uid || dir->gid != gid || dir->mode != mode) {
		dir->uid = uid;
		dir->gid = gid;
		dir->mode = mode;
		dir->ctime = now();
		queue_event(v, VIEW_EV_ATTRIB, 0, node_ino(dir), NULL);
		if (dir->kind == VN_ROOT)
			aggregates_dirty(v, AGG_BOTH); /* they take the root's owner and mode */
	}
	pthread_mutex_unlock(&v->lock);
}

/* Create and link a directory node. Locked. */
static struct vnode *dir_link(struct view *v, struct vnode *parent, const char *name,
                              enum vnode_kind kind)
{
	struct vnode *n, *old;
	size_t len = strlen(name);

	HASH_FIND(hn, parent->children, name, len, old);
	if (old || (parent->kind == VN_ROOT && (strcmp(name, VIEW_SERVICES_NAME) == 0 ||
	                                        strcmp(name, VIEW_TARGETS_NAME) == 0)))
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	n->name = strdup(name);
	if (!n->name || !order_append(parent, n))
		goto fail;
	n->id = v->next_id++;
	n->kind = kind;
	n->parent = parent;
	n->linked = true;
	n->next_seq = FIRST_CHILD_SEQ;
	n->next_slot = 1;
	n->vis = v->poker ? VIS_ADDING : VIS_LIVE;
	n->mtime = n->ctime = now();
	svcfs_hash_oom = false;
	HASH_ADD(hh, v->by_id, id, sizeof(n->id), n);
	if (svcfs_hash_oom)
		goto fail_order;
	HASH_ADD_KEYPTR(hn, parent->children, n->name, len, n);
	if (svcfs_hash_oom) {
		HASH_DELETE(hh, v->by_id, n);
		goto fail_order;
	}
	if (kind == VN_GROUP || kind == VN_SERVICE)
		parent->nsubdirs++;
	parent->mtime = parent->ctime = n->mtime;
	queue_event(v, VIEW_EV_ADDED, node_ino(parent), node_ino(n), n->name);
	return n;
fail_order:
	parent->norder--;
fail:
	free(n->name);
	free(n);
	return NULL;
}

struct vnode *view_group_add(struct view *v, struct vnode *parent, const char *name, uid_t uid,
                             gid_t gid, mode_t mode)
{
	struct vnode *n;

	pthread_mutex_lock(&v->lock);
	n = dir_link(v, parent, name, VN_GROUP);
	if (n) {
		n->uid = uid;
		n->gid = gid;
		n->mode = mode & 07777;
	}
	pthread_mutex_unlock(&v->lock);
	return n;
}

/* Replace a file's content if it differs. Returns 1 if changed, 0 if not, -ENOMEM. */
static int file_set(struct vfile *f, const struct view_file_spec *spec, struct timespec ts)
{
	char *data;

	if (f->t.data && f->t.len == spec->len && f->link == spec->link &&
	    memcmp(f->t.data, spec->data, spec->len) == 0)
		return 0;
	data = malloc(spec->len + 1);
	if (!data)
		return -ENOMEM;
	memcpy(data, spec->data, spec->len);
	data[spec->len] = '\0';
	text_replace(&f->t, data, spec->len);
	f->link = spec->link;
	f->mtime = ts;
	return 1;
}

static bool str_equal(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Set a service's files from SPEC. Locked. */
static int service_files_set(struct view *v, struct vnode *n, const struct view_service_spec *spec,
                             bool fresh, size_t *ret_dropped)
{
	struct vfile *files;
	size_t nfiles = 0, dropped = 0;
	struct timespec ts = now();
	bool listing_changed = false;
	int r = 0;

	files = calloc(spec->nfiles ? spec->nfiles : 1, sizeof(*files));
	if (!files)
		return -ENOMEM;
	/* keep every surviving file (and its slot); new names get new slots */
	for (size_t i = 0; i < spec->nfiles; i++) {
		const struct view_file_spec *fs = &spec->files[i];
		struct vfile *old = file_by_name(n, fs->name);
		struct vfile *f = &files[nfiles];
		bool dup = false;

		for (size_t j = 0; j < nfiles; j++)
			dup = dup || strcmp(files[j].name, fs->name) == 0;
		if (dup)
			continue;
		if (old) {
			*f = *old;
			old->name = NULL; /* moved */
			old->t = (struct text){0};
			r = file_set(f, fs, ts);
			if (r < 0)
				goto fail;
			if (r > 0 && !fresh)
				queue_event(v, VIEW_EV_MODIFIED, 0, node_ino(n) | f->slot, NULL);
		} else {
			if (n->next_slot > VIEW_SLOT_MAX) {
				dropped++;
				continue;
			}
			f->name = strdup(fs->name);
			if (!f->name || file_set(f, fs, ts) < 0) {
				free(f->name);
				*f = (struct vfile){0};
				r = -ENOMEM;
				goto fail;
			}
			f->slot = n->next_slot++;
			listing_changed = true;
		}
		nfiles++;
	}
	/* files left behind in the old array are gone from the listing */
	for (size_t i = 0; i < n->nfiles; i++) {
		if (n->files[i].name) {
			if (!fresh)
				queue_event(v, VIEW_EV_FILE_REMOVED, node_ino(n),
				            node_ino(n) | n->files[i].slot, n->files[i].name);
			listing_changed = true;
		}
		file_free(&n->files[i]);
	}
	free(n->files);
	/* slots only grow, but a kept file may precede a new one: sort by slot */
	for (size_t i = 1; i < nfiles; i++) {
		struct vfile key = files[i];
		size_t j = i;
		while (j > 0 && files[j - 1].slot > key.slot) {
			files[j] = files[j - 1];
			j--;
		}
		files[j] = key;
	}
	n->files = files;
	n->nfiles = nfiles;
	if (listing_changed && !fresh) {
		n->mtime = n->ctime = ts;
		queue_event(v, VIEW_EV_DIR_CHANGED, 0, node_ino(n), NULL);
	}
	if (ret_dropped)
		*ret_dropped = dropped;
	return 0;
fail:
	/* put moved files back so the node stays whole */
	for (size_t i = 0; i < nfiles; i++) {
		struct vfile *old = NULL;
		for (size_t j = 0; j < n->nfiles && !old; j++)
			if (!n->files[j].name && n->files[j].slot == files[i].slot)
				old = &n->files[j];
		if (old)
			*old = files[i];
		else
			file_free(&files[i]);
	}
	free(files);
	return r;
}

static void service_list_add(struct view *v, struct vnode *n)
{
	n->svc_prev = v->svc_tail;
	n->svc_next = NULL;
	if (v->svc_tail)
		v->svc_tail->svc_next = n;
	else
		v->svc_head = n;
	v->svc_tail = n;
	v->nservices++;
}

static void service_list_remove(struct view *v, struct vnode *n)
{
	if (n->svc_prev)
		n->svc_prev->svc_next = n->svc_next;
	else
		v->svc_head = n->svc_next;
	if (n->svc_next)
		n->svc_next->svc_prev = n->svc_prev;
	else
		v->svc_tail = n->svc_prev;
	n->svc_prev = n->svc_next = NULL;
	v->nservices--;
}

static int replace_string(char **dst, const char *src, bool *changed)
{
	char *p;

	if (str_equal(*dst, src))
		return 0;
	p = src ? strdup(src) : NULL;
	if (src && !p)
		return -ENOMEM;
	free(*dst);
	*dst = p;
	*changed = true;
	return 0;
}

struct vnode *view_service_set(struct view *v, struct vnode *parent, struct vnode *node,
                               const char *name, const struct view_service_spec *spec,
                               size_t *ret_dropped)
{
	struct vnode *n = node;
	bool fresh = !node, agg_changed = false;
	mode_t mode = spec->mode & 07777;

	pthread_mutex_lock(&v->lock);
	if (fresh) {
		n = dir_link(v, parent, name, VN_SERVICE);
		if (!n)
			goto out;
		n->uid = spec->uid;
		n->gid = spec->gid;
		n->mode = mode;
		service_list_add(v, n);
		agg_changed = true;
	} else if (n->uid != spec->uid || n->gid != spec->gid || n->mode != mode) {
		n->uid = spec->uid;
		n->gid = spec->gid;
		n->mode = mode;
		n->ctime = now();
		queue_event(v, VIEW_EV_ATTRIB, 0, node_ino(n), NULL);
		for (size_t i = 0; i < n->nfiles; i++)
			queue_event(v, VIEW_EV_ATTRIB, 0, node_ino(n) | n->files[i].slot, NULL);
	}
	if (service_files_set(v, n, spec, fresh, ret_dropped) < 0 && fresh) {
		/* a service without its files would lie; undo */
		pthread_mutex_unlock(&v->lock);
		view_remove(v, n);
		return NULL;
	}
	{
		bool entry_changed = agg_changed, target_changed = agg_changed;
		/* on ENOMEM the old element stays, but both are rendered again */
		if (replace_string(&n->entry_json, spec->entry_json, &entry_changed) < 0)
			entry_changed = true;
		if (replace_string(&n->target_json, spec->target_json, &target_changed) < 0)
			target_changed = true;
		n->entry_len = n->entry_json ? strlen(n->entry_json) : 0;
		n->target_len = n->target_json ? strlen(n->target_json) : 0;
		aggregates_dirty(v, (entry_changed ? AGG_SERVICES : 0) |
		                        (target_changed ? AGG_TARGETS : 0));
	}
out:
	pthread_mutex_unlock(&v->lock);
	return n;
}

/* Take N out of the tree for good. Locked. */
static void node_unlink(struct view *v, struct vnode *n)
{
	n->linked = false;
	n->parent = NULL;
	v->nkept_nodes++; /* until released, now or at its last forget */
	node_release(v, n);
}

void view_remove(struct view *v, struct vnode *n)
{
	struct vnode *parent;

	pthread_mutex_lock(&v->lock);
	parent = n->parent;
	if (!n->linked || n->vis == VIS_LEAVING || !parent || n->children)
		goto out; /* groups are emptied by the engine first */
	HASH_DELETE(hn, parent->children, n);
	order_remove(parent, n);
	parent->nsubdirs--;
	parent->mtime = parent->ctime = now();
	queue_event(v, VIEW_EV_REMOVED, node_ino(parent), node_ino(n), n->name);
	if (n->kind == VN_SERVICE) {
		service_list_remove(v, n);
		aggregates_dirty(v, AGG_BOTH);
		/*
		 * Its files too: a process inside the directory (its cwd, an open
		 * file) would still reach them by their cached names otherwise.
		 */
		for (size_t i = 0; i < n->nfiles; i++)
			queue_event(v, VIEW_EV_FILE_REMOVED, node_ino(n),
			            node_ino(n) | n->files[i].slot, n->files[i].name);
	}
	if (v->poker && n->vis == VIS_LIVE) {
		/* the poker's RMDIR completes it, so that watchers see IN_DELETE */
		n->vis = VIS_LEAVING;
		n->leaving_next = parent->leaving;
		parent->leaving = n;
	} else {
		node_unlink(v, n); /* never seen by anyone: no event to give */
	}
out:
	pthread_mutex_unlock(&v->lock);
}

/* Take a leaving N off its parent's list and out of the tree. Locked. */
static void leaving_done(struct view *v, struct vnode *n)
{
	struct vnode *parent = n->parent;

	for (struct vnode **pp = &parent->leaving; *pp; pp = &(*pp)->leaving_next) {
		if (*pp == n) {
			*pp = n->leaving_next;
			break;
		}
	}
	n->leaving_next = NULL;
	node_unlink(v, n);
}

static struct vnode *leaving_find(struct vnode *dir, const char *name)
{
	for (struct vnode *n = dir->leaving; n; n = n->leaving_next)
		if (strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

/* ---- poke mode ---- */

void view_set_poker(struct view *v, pid_t poker, uid_t uid)
{
	pthread_mutex_lock(&v->lock);
	v->poker = poker;
	v->poker_uid = uid;
	pthread_mutex_unlock(&v->lock);
}

bool view_is_poker(struct view *v, pid_t caller)
{
	bool r;

	pthread_mutex_lock(&v->lock);
	r = v->poker && caller == v->poker;
	pthread_mutex_unlock(&v->lock);
	return r;
}

int view_poke_mkdir(struct view *v, uint64_t parent, const char *name, struct stat *ret_st)
{
	struct vnode *dir, *child = NULL;
	unsigned slot;
	int r = -ENOENT;

	pthread_mutex_lock(&v->lock);
	dir = node_by_ino(v, parent, &slot);
	if (dir && slot == 0)
		HASH_FIND(hn, dir->children, name, strlen(name), child);
	if (child && child->vis == VIS_ADDING) {
		child->vis = VIS_LIVE; /* visible from this reply on, to everyone */
		if (child->kind == VN_SERVICE)
			aggregates_stale(v);
		child->nlookup++;
		fill_dir_stat(v, child, ret_st);
		r = 0;
	} else if (child) {
		r = -EEXIST;
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

int view_poke_rmdir(struct view *v, uint64_t parent, const char *name)
{
	struct vnode *dir, *child = NULL;
	unsigned slot;
	int r = -ENOENT;

	pthread_mutex_lock(&v->lock);
	dir = node_by_ino(v, parent, &slot);
	if (dir && slot == 0)
		child = leaving_find(dir, name);
	if (child) {
		leaving_done(v, child);
		r = 0;
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

void view_settle(struct view *v, uint64_t ino)
{
	struct vnode *n;
	unsigned slot;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (n && slot == 0 && n->vis == VIS_ADDING) {
		n->vis = VIS_LIVE;
		if (n->kind == VN_SERVICE)
			aggregates_stale(v);
	} else if (n && slot == 0 && n->vis == VIS_LEAVING && n->linked)
		leaving_done(v, n);
	pthread_mutex_unlock(&v->lock);
}

/* Prepend "/NAME" (or "NAME" at the start) to the path being built backwards. */
static bool path_prepend(char *buf, size_t *pos, const char *name, bool slash)
{
	size_t len = strlen(name) + (slash ? 1 : 0);

	if (len > *pos)
		return false;
	*pos -= len;
	memcpy(buf + *pos, name, strlen(name));
	if (slash)
		buf[*pos + len - 1] = '/';
	return true;
}

int view_path(struct view *v, uint64_t ino, char *buf, size_t size, uint64_t *ret_size)
{
	struct vnode *n;
	struct vfile *f = NULL;
	size_t pos = size - 1;
	unsigned slot;
	int r = 0;

	if (size < 2)
		return -ENAMETOOLONG;
	buf[pos] = '\0';
	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (!n) {
		/* an aggregate: its name, whichever version the kernel finds there */
		struct aggver *a = aggver_by_ino(v, ino, &r);
		if (!a)
			goto out;
		r = 0;
		if (!path_prepend(buf, &pos, a->name, false))
			r = -ENAMETOOLONG;
		else if (ret_size)
			*ret_size = a->len;
		goto out;
	}
	if (!n || !n->linked || (slot && !(f = file_by_slot(n, slot)))) {
		r = -ENOENT;
		goto out;
	}
	if (f && !path_prepend(buf, &pos, f->name, false)) {
		r = -ENAMETOOLONG;
		goto out;
	}
	if (ret_size)
		*ret_size = f ? f->t.len : 0;
	for (bool last = !f; n && n->kind != VN_ROOT; n = n->parent, last = false) {
		if (!path_prepend(buf, &pos, n->name, !last)) {
			r = -ENAMETOOLONG;
			goto out;
		}
	}
	if (!n) {
		r = -ENOENT;
		goto out;
	}
	if (pos == size - 1)
		buf[--pos] = '.'; /* the root itself */
out:
	if (r == 0)
		memmove(buf, buf + pos, size - pos);
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* ---- FUSE side ---- */

int view_lookup(struct view *v, uint64_t parent, const char *name, pid_t caller,
                struct stat *ret_st)
{
	struct vnode *dir, *child = NULL;
	struct vfile *f;
	unsigned slot;
	bool poker;
	int r = -ENOENT;

	pthread_mutex_lock(&v->lock);
	poker = v->poker && caller == v->poker;
	dir = node_by_ino(v, parent, &slot);
	if (!dir || slot != 0) {
		r = dir ? -ENOTDIR : -ENOENT;
		goto out;
	}
	if (dir->kind == VN_ROOT &&
	    (strcmp(name, VIEW_SERVICES_NAME) == 0 || strcmp(name, VIEW_TARGETS_NAME) == 0)) {
		struct aggver *a = aggregate_current(
		    v, strcmp(name, VIEW_SERVICES_NAME) == 0 ? &v->services : &v->targets);
		r = -ENOMEM;
		if (a) {
			fill_aggregate_stat(v, a, ret_st);
			a->nlookup++;
			r = 0;
		}
	} else if (dir->kind == VN_SERVICE) {
		if (!dir->linked)
			goto out;
		f = file_by_name(dir, name);
		if (!f)
			goto out;
		fill_file_stat(v, dir, f, ret_st, true);
		dir->nlookup++;
		r = 0;
	} else {
		/* the poker sees a leaving entry until its RMDIR; nobody sees an adding one */
		if (poker)
			child = leaving_find(dir, name);
		if (!child)
			HASH_FIND(hn, dir->children, name, strlen(name), child);
		if (!child || child->vis == VIS_ADDING)
			goto out;
		fill_dir_stat(v, child, ret_st);
		child->nlookup++;
		r = 0;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

int view_getattr(struct view *v, uint64_t ino, struct stat *ret_st)
{
	int r;

	pthread_mutex_lock(&v->lock);
	r = stat_ino(v, ino, ret_st);
	pthread_mutex_unlock(&v->lock);
	return r;
}

void view_forget(struct view *v, uint64_t ino, uint64_t nlookup)
{
	struct vnode *n;
	unsigned slot;

	if (ino == VIEW_ROOT_INO || ino == VIEW_SERVICES_INO || ino == VIEW_TARGETS_INO)
		return; /* static, never freed */
	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (n) {
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		node_release(v, n);
	} else {
		int err;
		struct aggver *a = aggver_by_ino(v, ino, &err);
		if (a) {
			a->nlookup = a->nlookup > nlookup ? a->nlookup - nlookup : 0;
			aggver_release(v, a);
		}
	}
	pthread_mutex_unlock(&v->lock);
}

int view_readlink(struct view *v, uint64_t ino, view_data_fn *fn, void *ctx)
{
	struct vnode *n;
	struct vfile *f = NULL;
	unsigned slot;
	int r = -ENOENT;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (n && slot)
		f = file_by_slot(n, slot);
	if (!n && aggver_by_ino(v, ino, &r))
		r = -EINVAL; /* not a symlink */
	if (f) {
		r = f->link ? 0 : -EINVAL;
		if (r == 0)
			fn(ctx, f->t.data, f->t.len); /* a target's length is its reply's */
	}
	pthread_mutex_unlock(&v->lock);
	return r;
}

static void reply_range(const struct text *t, uint64_t off, size_t size, view_data_fn *fn,
                        void *ctx)
{
	const char *data;
	size_t len;

	text_served(t, &data, &len);
	if (off >= len)
		fn(ctx, data, 0);
	else
		fn(ctx, data + off, len - off < size ? len - off : size);
}

int view_read(struct view *v, uint64_t ino, uint64_t off, size_t size, view_data_fn *fn, void *ctx)
{
	struct vnode *n;
	struct vfile *f;
	unsigned slot;
	int r = 0;

	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (!n) {
		struct aggver *a = aggver_by_ino(v, ino, &r);
		if (a) {
			struct text t = {.data = a->data, .len = a->len};
			reply_range(&t, off, size, fn, ctx);
			r = 0;
		}
		goto out;
	}
	if (slot == 0) {
		r = -EISDIR;
		goto out;
	}
	f = file_by_slot(n, slot);
	if (!f)
		r = -ENOENT;
	else if (f->link)
		r = -EINVAL;
	else
		reply_range(&f->t, off, size, fn, ctx);
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

int view_readdir(struct view *v, uint64_t ino, uint64_t off, bool plus, view_dirent_fn *fn,
                 void *ctx)
{
	struct vnode *dir;
	struct stat st;
	unsigned slot;
	int r = 0;

	pthread_mutex_lock(&v->lock);
	dir = node_by_ino(v, ino, &slot);
	if (!dir || slot != 0) {
		r = dir ? -ENOTDIR : -ENOENT;
		goto out;
	}
	if (off < 1) {
		fill_dir_stat(v, dir, &st);
		if (!fn(ctx, ".", &st, 1))
			goto out;
	}
	if (off < 2) {
		fill_dir_stat(v, dir->parent ? dir->parent : dir, &st);
		if (!fn(ctx, "..", &st, 2))
			goto out;
	}
	if (dir->kind == VN_SERVICE) {
		if (!dir->linked)
			goto out; /* a removed directory reads as empty */
		for (size_t i = 0; i < dir->nfiles; i++) {
			struct vfile *f = &dir->files[i];
			if (f->slot + 2u <= off)
				continue;
			fill_file_stat(v, dir, f, &st, false);
			if (!fn(ctx, f->name, &st, f->slot + 2u))
				goto out;
			if (plus) { /* told only if it went into the reply */
				text_tell(&f->t);
				dir->nlookup++;
			}
		}
		goto out;
	}
	if (dir->kind == VN_ROOT) {
		struct aggregate *aggs[] = {&v->services, &v->targets};
		for (unsigned i = 0; i < 2; i++) {
			struct aggver *a;
			if (off >= 3 + i)
				continue;
			if (!(a = aggregate_current(v, aggs[i]))) {
				r = -ENOMEM;
				goto out;
			}
			fill_aggregate_stat(v, a, &st);
			if (!fn(ctx, aggs[i]->name, &st, 3 + i))
				goto out;
			if (plus)
				a->nlookup++;
		}
	}
	for (size_t i = order_find_after(dir, off); i < dir->norder; i++) {
		struct vnode *child = dir->order[i].node;
		if (!child || child->vis == VIS_ADDING)
			continue;
		fill_dir_stat(v, child, &st);
		if (!fn(ctx, child->name, &st, dir->order[i].seq))
			goto out;
		if (plus)
			child->nlookup++;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

/* The xattr value of a file: its content less the trailing newline. */
static void xattr_value(const struct vfile *f, const char **ret, size_t *ret_len)
{
	size_t len = f->t.len;

	if (!f->link && len > 0 && f->t.data[len - 1] == '\n')
		len--;
	*ret = f->t.data;
	*ret_len = len;
}

int view_getxattr(struct view *v, uint64_t ino, const char *name, view_data_fn *fn, void *ctx)
{
	const size_t plen = sizeof(VIEW_XATTR_PREFIX) - 1;
	struct vnode *n;
	struct vfile *f;
	unsigned slot;
	int r = -ENODATA;

	/*
	 * Only user.* exists here. Saying so (ENOTSUP) for security.*,
	 * system.* (ACLs) and trusted.* lets tools such as ls -l, which ask
	 * for them on every file, stop asking for the whole mount.
	 */
	if (strncmp(name, "user.", 5) != 0)
		return -EOPNOTSUPP;
	if (strncmp(name, VIEW_XATTR_PREFIX, plen) != 0)
		return -ENODATA;
	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (!n) {
		int err;
		if (!aggver_by_ino(v, ino, &err))
			r = err; /* an aggregate has none: ENODATA */
		goto out;
	}
	if (!n->linked) {
		r = -ENOENT; /* it vanished: as a lookup of it would say */
		goto out;
	}
	if (slot != 0 || n->kind != VN_SERVICE)
		goto out;
	f = file_by_name(n, name + plen);
	if (f) {
		const char *val;
		size_t len;
		xattr_value(f, &val, &len);
		fn(ctx, val, len);
		r = 0;
	}
out:
	pthread_mutex_unlock(&v->lock);
	return r;
}

int view_listxattr(struct view *v, uint64_t ino, view_data_fn *fn, void *ctx)
{
	const size_t plen = sizeof(VIEW_XATTR_PREFIX) - 1;
	struct svcfs_buf b;
	struct vnode *n;
	unsigned slot;
	int r = 0;

	svcfs_buf_init(&b);
	pthread_mutex_lock(&v->lock);
	n = node_by_ino(v, ino, &slot);
	if (!n && !aggver_by_ino(v, ino, &r))
		goto out;
	r = 0;
	if (n && slot == 0 && n->kind == VN_SERVICE && n->linked) {
		for (size_t i = 0; i < n->nfiles; i++) {
			/* xattr names are limited to 255 bytes; longer keys are files only */
			if (plen + strlen(n->files[i].name) > 255)
				continue;
			svcfs_buf_add(&b, VIEW_XATTR_PREFIX, plen);
			svcfs_buf_add(&b, n->files[i].name, strlen(n->files[i].name) + 1);
		}
	}
	if (b.failed) {
		r = -ENOMEM;
		goto out;
	}
	fn(ctx, b.data ? b.data : "", b.len);
out:
	pthread_mutex_unlock(&v->lock);
	svcfs_buf_free(&b);
	return r;
}
