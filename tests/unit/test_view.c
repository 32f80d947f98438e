/*
 * Unit tests for fs/view.c, the mount's inode tree without FUSE: creation
 * of groups and services, lookup/getattr/readdir, kernel reference counts
 * and forget, inode-number stability, the events view_service_set queues
 * (each with a control that shows no event when nothing changed), the
 * aggregate files, modes and xattrs.
 *
 * The notify callback records every event; flush() clears the record and
 * delivers what is queued, so each check sees the events of one step.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view.h"

#define ROOT VIEW_ROOT_INO

/* ---- recording notify callback ---- */

struct rec {
	enum view_event_kind kind;
	uint64_t parent, ino;
	char name[512];
};

#define REC_MAX 8192
static struct rec recs[REC_MAX];
static size_t nrecs;
static size_t notify_calls;

static void record(void *ctx, const struct view_event *ev, size_t n)
{
	(void)ctx;
	notify_calls++;
	for (size_t i = 0; i < n && nrecs < REC_MAX; i++) {
		struct rec *r = &recs[nrecs++];
		r->kind = ev[i].kind;
		r->parent = ev[i].parent;
		r->ino = ev[i].ino;
		snprintf(r->name, sizeof(r->name), "%s", ev[i].name ? ev[i].name : "");
	}
}

static struct view *v;

static void setup(void)
{
	nrecs = notify_calls = 0;
	v = view_new(0, 0, 0755, record, NULL);
	cr_assert_not_null(v);
}

static void teardown(void)
{
	v = view_free(v);
}

TestSuite(view, .init = setup, .fini = teardown);

/* Forget what was recorded, then deliver the queued events. */
static void flush(void)
{
	nrecs = notify_calls = 0;
	view_flush(v);
}

/* Number of recorded events of KIND about INO (0: any inode). */
static size_t count(enum view_event_kind kind, uint64_t ino)
{
	size_t n = 0;

	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].kind == kind && (ino == 0 || recs[i].ino == ino))
			n++;
	return n;
}

/* Number of recorded events about INO, any kind. */
static size_t count_ino(uint64_t ino)
{
	size_t n = 0;

	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].ino == ino)
			n++;
	return n;
}

static const char *kind_name(enum view_event_kind k)
{
	switch (k) {
	case VIEW_EV_ADDED:
		return "ADDED";
	case VIEW_EV_REMOVED:
		return "REMOVED";
	case VIEW_EV_MODIFIED:
		return "MODIFIED";
	case VIEW_EV_DIR_CHANGED:
		return "DIR_CHANGED";
	case VIEW_EV_FILE_REMOVED:
		return "FILE_REMOVED";
	case VIEW_EV_ATTRIB:
		return "ATTRIB";
	}
	return "?";
}

/* All recorded events as text, for failure messages. */
static const char *dump(void)
{
	static char text[4096];
	size_t len = 0;

	text[0] = '\0';
	for (size_t i = 0; i < nrecs; i++) {
		int n = snprintf(text + len, sizeof(text) - len,
				 "%s(parent %#llx, ino %#llx, '%.40s') ", kind_name(recs[i].kind),
				 (unsigned long long)recs[i].parent,
				 (unsigned long long)recs[i].ino, recs[i].name);
		if (n < 0 || (size_t)n >= sizeof(text) - len)
			break; /* cut */
		len += (size_t)n;
	}
	return nrecs ? text : "(none)";
}

/* ---- building services ---- */

static struct view_file_spec file(const char *name, const char *data)
{
	return (struct view_file_spec){name, data, strlen(data), false};
}

static struct view_file_spec link_to(const char *name, const char *target)
{
	return (struct view_file_spec){name, target, strlen(target), true};
}

struct svc_opts {
	mode_t mode;
	const char *entry; /* NULL: {"name":NAME} */
	const char *target;
};

static struct vnode *svc_set_ex(struct vnode *parent, struct vnode *node, const char *name,
				const struct view_file_spec *files, size_t n,
				const struct svc_opts *o, size_t *ret_dropped)
{
	char entry[600], target[600];
	struct view_service_spec spec;

	snprintf(entry, sizeof(entry), "{\"name\":\"%s\"}", name);
	snprintf(target, sizeof(target), "{\"targets\":[],\"labels\":{\"service\":\"%s\"}}", name);
	spec = (struct view_service_spec){
	    .uid = 1000,
	    .gid = 1001,
	    .mode = o && o->mode ? o->mode : 0750,
	    .files = files,
	    .nfiles = n,
	    .entry_json = o && o->entry ? o->entry : entry,
	    .target_json = o && o->target ? o->target : target,
	};
	return view_service_set(v, parent, node, name, &spec, ret_dropped);
}

static struct vnode *svc_set(struct vnode *parent, struct vnode *node, const char *name,
			     const struct view_file_spec *files, size_t n)
{
	return svc_set_ex(parent, node, name, files, n, NULL, NULL);
}

/* A service NAME with the usual files: socket, state "alive", version "1". */
static struct vnode *svc_simple(struct vnode *parent, const char *name)
{
	const struct view_file_spec files[] = {
	    link_to("socket", "/backing/x.sock"),
	    file("state", "alive\n"),
	    file("version", "1\n"),
	};
	struct vnode *n = svc_set(parent, NULL, name, files, 3);

	cr_assert_not_null(n, "cannot create service %s", name);
	return n;
}

/* ---- queries ---- */

struct dirent_rec {
	char name[512];
	struct stat st;
	uint64_t off;
};

struct listing {
	struct dirent_rec e[512];
	size_t n;
	size_t room; /* entries still accepted in this call */
};

static bool take_entry(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct listing *l = ctx;

	if (l->room == 0 || l->n == sizeof(l->e) / sizeof(l->e[0]))
		return false;
	l->room--;
	snprintf(l->e[l->n].name, sizeof(l->e[l->n].name), "%s", name);
	l->e[l->n].st = *st;
	l->e[l->n].off = next_off;
	l->n++;
	return true;
}

/* Read directory INO from OFF taking at most ROOM entries; returns the error. */
static int readdir_some(uint64_t ino, uint64_t off, bool plus, size_t room, struct listing *l)
{
	l->room = room;
	return view_readdir(v, ino, off, plus, take_entry, l);
}

/* The whole directory in one call. */
static void readdir_all(uint64_t ino, struct listing *l)
{
	int r;

	l->n = 0;
	r = readdir_some(ino, 0, false, (size_t)-1, l);
	cr_assert_eq(r, 0, "readdir %#llx: %d", (unsigned long long)ino, r);
}

static const struct dirent_rec *find_entry(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

/* The inode of NAME in directory DIR, through readdir (counts no reference). */
static uint64_t ino_of(uint64_t dir, const char *name)
{
	static struct listing l;
	const struct dirent_rec *e;

	readdir_all(dir, &l);
	e = find_entry(&l, name);
	cr_assert_not_null(e, "%s not listed in %#llx", name, (unsigned long long)dir);
	return e->st.st_ino;
}

struct data {
	char buf[65536];
	size_t len;
	int calls;
};

static void take_data(void *ctx, const char *data, size_t len)
{
	struct data *d = ctx;

	d->calls++;
	if (len > sizeof(d->buf) - 1)
		len = sizeof(d->buf) - 1;
	memcpy(d->buf, data, len);
	d->buf[len] = '\0';
	d->len = len;
}

static int read_file(uint64_t ino, uint64_t off, size_t size, struct data *d)
{
	memset(d, 0, sizeof(*d));
	return view_read(v, ino, off, size, take_data, d);
}

static int get_xattr(uint64_t ino, const char *name, struct data *d)
{
	memset(d, 0, sizeof(*d));
	return view_getxattr(v, ino, name, take_data, d);
}

/* The inode of the current version of aggregate ALIAS (VIEW_SERVICES_INO...). */
static uint64_t cur_ino(uint64_t alias)
{
	struct stat st;
	int r = view_getattr(v, alias, &st);

	cr_assert_eq(r, 0);
	return st.st_ino;
}

/* Render both aggregates so that the next change to them is clean → dirty. */
static void render_aggregates(void)
{
	struct stat st;
	int r1 = view_getattr(v, VIEW_SERVICES_INO, &st);
	int r2 = view_getattr(v, VIEW_TARGETS_INO, &st);

	cr_assert_eq(r1, 0);
	cr_assert_eq(r2, 0);
}

/* ---- root and groups ---- */

Test(view, root_attributes)
{
	struct view *w = view_new(10, 20, 040750, NULL, NULL);
	struct stat st;
	int r;

	cr_assert_not_null(w);
	r = view_getattr(w, ROOT, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, ROOT);
	cr_assert_eq(st.st_mode, S_IFDIR | 0750, "mode %o", st.st_mode);
	cr_assert_eq(st.st_uid, 10);
	cr_assert_eq(st.st_gid, 20);
	cr_assert_eq(st.st_nlink, 2);
	view_free(w);
}

Test(view, root_listing_when_empty)
{
	static struct listing l;

	readdir_all(ROOT, &l);
	cr_assert_eq(l.n, 4);
	cr_assert_str_eq(l.e[0].name, ".");
	cr_assert_str_eq(l.e[1].name, "..");
	cr_assert_str_eq(l.e[2].name, VIEW_SERVICES_NAME);
	cr_assert_str_eq(l.e[3].name, VIEW_TARGETS_NAME);
	cr_assert_eq(l.e[0].st.st_ino, ROOT);
	/* the current versions of the aggregates (the aliases never reach the kernel) */
	cr_assert_eq(l.e[2].st.st_ino, cur_ino(VIEW_SERVICES_INO));
	cr_assert_eq(l.e[3].st.st_ino, cur_ino(VIEW_TARGETS_INO));
	cr_assert_neq(l.e[2].st.st_ino, l.e[3].st.st_ino);
	cr_assert_neq(l.e[2].st.st_ino, VIEW_SERVICES_INO);
	for (size_t i = 1; i < l.n; i++)
		cr_assert_gt(l.e[i].off, l.e[i - 1].off, "offsets must increase");
}

Test(view, aggregates_looked_up_in_root)
{
	struct stat st;
	int r = view_lookup(v, ROOT, VIEW_SERVICES_NAME, 0, &st);

	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, cur_ino(VIEW_SERVICES_INO));
	cr_assert_eq(st.st_mode, S_IFREG | 0444, "mode %o", st.st_mode);
	r = view_lookup(v, ROOT, VIEW_TARGETS_NAME, 0, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, cur_ino(VIEW_TARGETS_INO));
	r = view_lookup(v, ROOT, "nothing", 0, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, group_added)
{
	struct vnode *g;
	struct stat st;
	uint64_t gino;
	int r;

	g = view_group_add(v, view_root(v), "workers", 1000, 1001, 0755);
	cr_assert_not_null(g);
	flush();
	cr_assert_eq(nrecs, 1, "events: %s", dump());
	cr_assert_eq(recs[0].kind, VIEW_EV_ADDED);
	cr_assert_eq(recs[0].parent, ROOT);
	cr_assert_str_eq(recs[0].name, "workers");
	gino = recs[0].ino;
	cr_assert_neq(gino, ROOT);
	cr_assert_neq(gino, VIEW_SERVICES_INO);
	cr_assert_neq(gino, VIEW_TARGETS_INO);

	r = view_lookup(v, ROOT, "workers", 0, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, gino);
	cr_assert_eq(st.st_mode, S_IFDIR | 0755);
	cr_assert_eq(st.st_uid, 1000);
	cr_assert_eq(st.st_gid, 1001);
	r = view_getattr(v, ROOT, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_nlink, 3, "root nlink counts the group");
}

Test(view, group_name_taken)
{
	struct vnode *g = view_group_add(v, view_root(v), "workers", 0, 0, 0755);
	struct vnode *again, *agg1, *agg2;

	cr_assert_not_null(g);
	flush();
	again = view_group_add(v, view_root(v), "workers", 0, 0, 0755);
	agg1 = view_group_add(v, view_root(v), VIEW_SERVICES_NAME, 0, 0, 0755);
	agg2 = view_group_add(v, view_root(v), VIEW_TARGETS_NAME, 0, 0, 0755);
	flush();
	cr_assert_null(again);
	cr_assert_null(agg1, "the aggregate names are taken in the root");
	cr_assert_null(agg2);
	cr_assert_eq(nrecs, 0, "events: %s", dump());
}

Test(view, nested_group_and_dotdot)
{
	struct vnode *g = view_group_add(v, view_root(v), "a", 0, 0, 0755);
	struct vnode *h;
	static struct listing l;
	uint64_t gino, hino;

	cr_assert_not_null(g);
	h = view_group_add(v, g, "b", 0, 0, 0755);
	cr_assert_not_null(h);
	gino = ino_of(ROOT, "a");
	hino = ino_of(gino, "b");
	readdir_all(hino, &l);
	cr_assert_eq(l.n, 2);
	cr_assert_eq(find_entry(&l, ".")->st.st_ino, hino);
	cr_assert_eq(find_entry(&l, "..")->st.st_ino, gino);
	readdir_all(gino, &l);
	cr_assert_eq(find_entry(&l, "..")->st.st_ino, ROOT);
}

Test(view, group_removed_only_when_empty)
{
	struct vnode *g = view_group_add(v, view_root(v), "grp", 0, 0, 0755);
	struct vnode *s;
	struct stat st;
	uint64_t gino;
	int r;

	cr_assert_not_null(g);
	s = svc_simple(g, "web");
	gino = ino_of(ROOT, "grp");
	flush();

	view_remove(v, g); /* not empty: nothing happens */
	flush();
	cr_assert_eq(nrecs, 0, "events: %s", dump());
	r = view_lookup(v, ROOT, "grp", 0, &st);
	cr_assert_eq(r, 0);
	view_forget(v, gino, 1);

	view_remove(v, s);
	view_remove(v, g);
	flush();
	cr_assert_eq(count(VIEW_EV_REMOVED, gino), 1, "events: %s", dump());
	r = view_lookup(v, ROOT, "grp", 0, &st);
	cr_assert_eq(r, -ENOENT);
}

/* ---- services ---- */

Test(view, service_created)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	struct stat st;
	struct data d;
	uint64_t sino, state, sock;
	int r;

	cr_assert_not_null(s);
	flush();
	cr_assert_eq(nrecs, 1, "a new service is one ADDED event: %s", dump());
	cr_assert_eq(recs[0].kind, VIEW_EV_ADDED);
	cr_assert_eq(recs[0].parent, ROOT);
	cr_assert_str_eq(recs[0].name, "web");
	sino = recs[0].ino;
	cr_assert_eq(view_service_count(v), 1);

	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, sino);
	cr_assert(S_ISDIR(st.st_mode));

	r = view_lookup(v, sino, "state", 0, &st);
	cr_assert_eq(r, 0);
	state = st.st_ino;
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(st.st_size, 6);
	r = read_file(state, 0, 4096, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "alive\n");

	r = view_lookup(v, sino, "socket", 0, &st);
	cr_assert_eq(r, 0);
	sock = st.st_ino;
	cr_assert(S_ISLNK(st.st_mode));
	memset(&d, 0, sizeof(d));
	r = view_readlink(v, sock, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "/backing/x.sock");

	r = view_lookup(v, sino, "nothing", 0, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, service_in_group)
{
	struct vnode *g = view_group_add(v, view_root(v), "workers", 0, 0, 0755);
	uint64_t gino, sino;
	struct stat st;
	int r;

	cr_assert_not_null(g);
	gino = ino_of(ROOT, "workers");
	flush();
	svc_simple(g, "w1");
	flush();
	cr_assert_eq(count(VIEW_EV_ADDED, 0), 1, "events: %s", dump());
	cr_assert_eq(recs[0].parent, gino);
	cr_assert_str_eq(recs[0].name, "w1");
	sino = recs[0].ino;
	r = view_lookup(v, gino, "w1", 0, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_ino, sino);
	r = view_lookup(v, ROOT, "w1", 0, &st);
	cr_assert_eq(r, -ENOENT, "a grouped service is not in the root");
}

Test(view, service_name_taken)
{
	const struct view_file_spec files[] = {file("state", "alive\n")};
	struct vnode *again;

	svc_simple(view_root(v), "web");
	flush();
	again = svc_set(view_root(v), NULL, "web", files, 1);
	flush();
	cr_assert_null(again);
	cr_assert_eq(nrecs, 0, "events: %s", dump());
	cr_assert_eq(view_service_count(v), 1);
}

Test(view, lookup_in_file_is_not_a_directory)
{
	struct stat st;
	uint64_t state;
	int r;

	svc_simple(view_root(v), "web");
	state = ino_of(ino_of(ROOT, "web"), "state");
	r = view_lookup(v, state, "x", 0, &st);
	cr_assert_eq(r, -ENOTDIR);
	r = view_lookup(v, 0x7777ull << VIEW_INO_SHIFT, "x", 0, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, read_ranges_and_errors)
{
	const struct view_file_spec files[] = {link_to("socket", "/b/web.sock"),
					       file("text", "0123456789\n")};
	struct data d;
	uint64_t sino, text, sock;
	int r;

	svc_set(view_root(v), NULL, "web", files, 2);
	sino = ino_of(ROOT, "web");
	text = ino_of(sino, "text");
	sock = ino_of(sino, "socket");

	r = read_file(text, 2, 3, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 3);
	cr_assert_str_eq(d.buf, "234");
	r = read_file(text, 8, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "89\n");
	r = read_file(text, 11, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0, "reading at the end gives nothing");
	r = read_file(text, 1000, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);

	r = read_file(sino, 0, 100, &d);
	cr_assert_eq(r, -EISDIR);
	r = read_file(sock, 0, 100, &d);
	cr_assert_eq(r, -EINVAL);
	memset(&d, 0, sizeof(d));
	r = view_readlink(v, text, take_data, &d);
	cr_assert_eq(r, -EINVAL);
	cr_assert_eq(d.calls, 0);
	r = read_file(sino | 77, 0, 100, &d);
	cr_assert_eq(r, -ENOENT);
}

/* ---- view_service_set diffing ---- */

static const struct view_file_spec base_files[] = {
    {"socket", "/b/web.sock", 11, true},
    {"state", "alive\n", 6, false},
    {"version", "1\n", 2, false},
};

/* web with base_files, aggregates rendered, all events so far delivered. */
static struct vnode *clean_service(void)
{
	struct vnode *s = svc_set(view_root(v), NULL, "web", base_files, 3);

	cr_assert_not_null(s);
	render_aggregates();
	flush();
	return s;
}

Test(view, unchanged_spec_gives_no_event)
{
	struct vnode *s = clean_service(), *again;
	struct view_file_spec copy[3];
	char state[] = "alive\n";

	/* the same content from other memory is still the same content */
	memcpy(copy, base_files, sizeof(copy));
	copy[1].data = state;
	again = svc_set(view_root(v), s, "web", copy, 3);
	cr_assert_eq(again, s);
	flush();
	cr_assert_eq(nrecs, 0, "unchanged spec: %s", dump());
	cr_assert_eq(notify_calls, 0, "notify called with nothing to say");
}

Test(view, changed_content_is_one_modified_event)
{
	struct vnode *s = clean_service();
	struct view_file_spec files[3];
	uint64_t sino = ino_of(ROOT, "web");
	uint64_t state = ino_of(sino, "state");
	uint64_t version = ino_of(sino, "version");
	struct data d;
	struct stat st;
	int r;

	memcpy(files, base_files, sizeof(files));
	files[1] = file("state", "busy\n");
	svc_set(view_root(v), s, "web", files, 3);
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, state), 1, "events: %s", dump());
	cr_assert_eq(nrecs, 1, "only the changed file: %s", dump());
	cr_assert_eq(ino_of(sino, "state"), state, "the file keeps its inode");
	cr_assert_eq(ino_of(sino, "version"), version);
	r = read_file(state, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "busy\n");
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_size, 5);
}

Test(view, same_length_change_is_modified)
{
	struct vnode *s = clean_service();
	struct view_file_spec files[3];
	uint64_t version = ino_of(ino_of(ROOT, "web"), "version");

	memcpy(files, base_files, sizeof(files));
	files[2] = file("version", "2\n");
	svc_set(view_root(v), s, "web", files, 3);
	flush();
	cr_assert_eq(nrecs, 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, version), 1, "events: %s", dump());
}

/* Set web's state file to TEXT (the other base files unchanged). */
static void set_state(struct vnode *s, const char *text)
{
	struct view_file_spec files[3];

	memcpy(files, base_files, sizeof(files));
	files[1] = file("state", text);
	cr_assert_eq(svc_set(view_root(v), s, "web", files, 3), s);
}

static void assert_reads(uint64_t ino, const char *want)
{
	struct data d;
	int r = read_file(ino, 0, sizeof(d.buf), &d);

	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, want, "read \"%s\", want \"%s\"", d.buf, want);
}

/*
 * A read serves the text whose size the kernel was last told (view.c,
 * "Contents and sizes"): the new text only once an attribute reply told
 * its size — else the kernel would cut it at the old one.
 */
Test(view, read_serves_the_size_told)
{
	struct vnode *s = clean_service();
	uint64_t sino = ino_of(ROOT, "web");
	uint64_t state = ino_of(sino, "state");
	struct listing *l = calloc(1, sizeof(*l));
	struct stat st;
	struct data d;
	int r;

	cr_assert_not_null(l);
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_size, 6);

	set_state(s, "unhealthy\n");
	assert_reads(state, "alive\n");
	/* a plain readdir gives the kernel no size */
	readdir_all(sino, l);
	assert_reads(state, "alive\n");
	/* xattrs are not cached by the kernel: always the current text */
	r = get_xattr(sino, "user.svcfs.state", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "unhealthy");
	/* getattr tells */
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_size, 10);
	assert_reads(state, "unhealthy\n");

	/* a lookup tells */
	set_state(s, "busy\n");
	assert_reads(state, "unhealthy\n");
	r = view_lookup(v, sino, "state", 1, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_size, 5);
	assert_reads(state, "busy\n");

	/* so does readdirplus; two changes before it: the last one counts */
	set_state(s, "alive\n");
	set_state(s, "activatable\n");
	assert_reads(state, "busy\n");
	l->n = 0;
	r = readdir_some(sino, 0, true, (size_t)-1, l);
	cr_assert_eq(r, 0);
	cr_assert_eq(find_entry(l, "state")->st.st_size, 12);
	assert_reads(state, "activatable\n");

	/* a change back to the told size is served at once */
	set_state(s, "alive\n");
	assert_reads(state, "activatable\n");
	set_state(s, "unhealthy\n");
	assert_reads(state, "activatable\n");
	set_state(s, "0123456789a\n");
	assert_reads(state, "0123456789a\n");
	free(l);
}

Test(view, read_serves_a_same_size_change_at_once)
{
	struct vnode *s = clean_service();
	uint64_t state = ino_of(ino_of(ROOT, "web"), "state");
	struct stat st;

	cr_assert_eq(view_getattr(v, state, &st), 0);
	set_state(s, "dying\n"); /* 6 bytes, as "alive\n" */
	assert_reads(state, "dying\n");
}

Test(view, read_of_a_file_never_told_is_current)
{
	struct vnode *s = clean_service();
	uint64_t state = ino_of(ino_of(ROOT, "web"), "state");

	set_state(s, "unhealthy\n");
	assert_reads(state, "unhealthy\n");
}

Test(view, symlink_target_change_is_modified)
{
	struct vnode *s = clean_service();
	struct view_file_spec files[3];
	uint64_t sock = ino_of(ino_of(ROOT, "web"), "socket");

	memcpy(files, base_files, sizeof(files));
	files[0] = link_to("socket", "/b/other.sock");
	svc_set(view_root(v), s, "web", files, 3);
	flush();
	cr_assert_eq(nrecs, 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, sock), 1, "events: %s", dump());
}

Test(view, new_key_is_dir_changed)
{
	struct vnode *s = clean_service();
	struct view_file_spec files[4];
	uint64_t sino = ino_of(ROOT, "web");
	struct stat st;
	struct data d;
	int r;

	memcpy(files, base_files, sizeof(base_files));
	files[3] = file("owner", "ops\n");
	svc_set(view_root(v), s, "web", files, 4);
	flush();
	cr_assert_eq(count(VIEW_EV_DIR_CHANGED, sino), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, 0), 0, "no file changed: %s", dump());
	cr_assert_eq(count(VIEW_EV_REMOVED, 0), 0, "events: %s", dump());
	cr_assert_eq(nrecs, 1, "events: %s", dump());
	r = view_lookup(v, sino, "owner", 0, &st);
	cr_assert_eq(r, 0);
	r = read_file(st.st_ino, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "ops\n");
}

Test(view, removed_key_is_removed_event)
{
	struct vnode *s = clean_service();
	uint64_t sino = ino_of(ROOT, "web");
	uint64_t version = ino_of(sino, "version");
	struct stat st;
	int r;

	svc_set(view_root(v), s, "web", base_files, 2);
	flush();
	cr_assert_eq(count(VIEW_EV_FILE_REMOVED, version), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_REMOVED, version), 0, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, 0), 0, "events: %s", dump());
	for (size_t i = 0; i < nrecs; i++) {
		if (recs[i].kind != VIEW_EV_FILE_REMOVED)
			continue;
		cr_assert_eq(recs[i].parent, sino);
		cr_assert_str_eq(recs[i].name, "version");
	}
	r = view_lookup(v, sino, "version", 0, &st);
	cr_assert_eq(r, -ENOENT);
	r = view_getattr(v, version, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, mode_change_is_attrib)
{
	struct vnode *s = clean_service();
	const struct svc_opts same = {.mode = 0750}, other = {.mode = 0755};
	uint64_t sino = ino_of(ROOT, "web");
	struct stat st;
	int r;

	svc_set_ex(view_root(v), s, "web", base_files, 3, &same, NULL);
	flush();
	cr_assert_eq(nrecs, 0, "same mode: %s", dump());

	svc_set_ex(view_root(v), s, "web", base_files, 3, &other, NULL);
	flush();
	cr_assert_eq(count(VIEW_EV_ATTRIB, sino), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, sino), 0, "no content changed: %s", dump());
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 0755);
}

Test(view, duplicate_names_in_spec_give_one_file)
{
	const struct view_file_spec files[] = {file("a", "1\n"), file("a", "2\n"),
					       file("b", "3\n")};
	static struct listing l;
	struct data d;
	uint64_t sino;
	int r;

	svc_set(view_root(v), NULL, "web", files, 3);
	sino = ino_of(ROOT, "web");
	readdir_all(sino, &l);
	cr_assert_eq(l.n, 4, ". .. a b");
	r = read_file(find_entry(&l, "a")->st.st_ino, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "1\n", "the first of a name wins");
}

/* ---- inode numbers ---- */

Test(view, file_slots_stable)
{
	const struct view_file_spec abc[] = {file("a", "A\n"), file("b", "B\n"), file("c", "C\n")};
	const struct view_file_spec ca[] = {file("c", "C\n"), file("a", "A\n")};
	const struct view_file_spec bca[] = {file("b", "B2\n"), file("c", "C\n"), file("a", "A\n")};
	struct vnode *s = svc_set(view_root(v), NULL, "web", abc, 3);
	static struct listing l;
	uint64_t sino, a, b, c, b2;
	struct stat st;
	struct data d;
	int r;

	cr_assert_not_null(s);
	sino = ino_of(ROOT, "web");
	a = ino_of(sino, "a");
	b = ino_of(sino, "b");
	c = ino_of(sino, "c");
	cr_assert(a != b && b != c && a != c);
	cr_assert_eq(a >> VIEW_INO_SHIFT, sino >> VIEW_INO_SHIFT, "files live in the dir's range");

	svc_set(view_root(v), s, "web", ca, 2);
	cr_assert_eq(ino_of(sino, "a"), a, "a kept its inode after b left and the order changed");
	cr_assert_eq(ino_of(sino, "c"), c);
	r = view_getattr(v, b, &st);
	cr_assert_eq(r, -ENOENT, "b's inode names nothing once b is gone");

	svc_set(view_root(v), s, "web", bca, 3);
	b2 = ino_of(sino, "b");
	cr_assert_eq(ino_of(sino, "a"), a);
	cr_assert_eq(ino_of(sino, "c"), c);
	cr_assert_neq(b2, a);
	cr_assert_neq(b2, c);
	r = read_file(b2, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "B2\n");
	/* an inode number never names a different file: the old b is not "a" or "c" */
	readdir_all(sino, &l);
	for (size_t i = 0; i < l.n; i++)
		if (l.e[i].st.st_ino == b)
			cr_assert_str_eq(l.e[i].name, "b", "inode %#llx now names %s",
					 (unsigned long long)b, l.e[i].name);
}

Test(view, recreated_service_gets_new_inode)
{
	const struct view_file_spec busy[] = {file("state", "busy\n")};
	struct vnode *s = svc_simple(view_root(v), "web");
	uint64_t old_sino, old_state, new_sino;
	struct stat st;
	struct data d;
	int r;

	r = view_lookup(v, ROOT, "web", 0, &st); /* the kernel keeps the old one */
	cr_assert_eq(r, 0);
	old_sino = st.st_ino;
	old_state = ino_of(old_sino, "state");
	view_remove(v, s);
	s = svc_set(view_root(v), NULL, "web", busy, 1);
	cr_assert_not_null(s);
	new_sino = ino_of(ROOT, "web");
	cr_assert_neq(new_sino, old_sino);
	cr_assert_neq(ino_of(new_sino, "state"), old_state);
	/* the old inode still names the old, removed directory and its file */
	r = view_getattr(v, old_sino, &st);
	cr_assert_eq(r, 0);
	r = read_file(old_state, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "alive\n");
}

Test(view, inodes_never_reused_across_services)
{
	uint64_t seen[50];

	for (int i = 0; i < 50; i++) {
		struct vnode *s = svc_simple(view_root(v), "web");
		seen[i] = ino_of(ROOT, "web");
		view_remove(v, s);
		for (int j = 0; j < i; j++)
			cr_assert_neq(seen[i], seen[j], "inode %#llx reused",
				      (unsigned long long)seen[i]);
	}
}

Test(view, slot_limit)
{
	static struct view_file_spec files[VIEW_SLOT_MAX + 1];
	static char names[VIEW_SLOT_MAX + 1][16];
	const struct view_file_spec other[] = {file("fresh", "x\n")};
	size_t dropped = 999;
	struct vnode *s;
	struct stat st;
	int r;

	for (size_t i = 0; i <= VIEW_SLOT_MAX; i++) {
		snprintf(names[i], sizeof(names[i]), "k%zu", i);
		files[i] = file(names[i], "v\n");
	}
	s = svc_set_ex(view_root(v), NULL, "web", files, VIEW_SLOT_MAX, NULL, &dropped);
	cr_assert_not_null(s);
	cr_assert_eq(dropped, 0);
	s = svc_set_ex(view_root(v), s, "web", files, VIEW_SLOT_MAX + 1, NULL, &dropped);
	cr_assert_not_null(s);
	cr_assert_eq(dropped, 1, "the 1024th file has no slot");
	r = view_lookup(v, ino_of(ROOT, "web"), names[VIEW_SLOT_MAX], 0, &st);
	cr_assert_eq(r, -ENOENT);
	/* slots are spent for the directory's life: a new name later gets none */
	s = svc_set_ex(view_root(v), s, "web", other, 1, NULL, &dropped);
	cr_assert_not_null(s);
	cr_assert_eq(dropped, 1);
}

/* ---- lookup counts and forget ---- */

Test(view, removed_unreferenced_service_is_gone)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	uint64_t sino = ino_of(ROOT, "web");
	uint64_t state = ino_of(sino, "state");
	struct stat st;
	int r;

	view_remove(v, s);
	flush();
	cr_assert_eq(count(VIEW_EV_REMOVED, sino), 1, "events: %s", dump());
	cr_assert_eq(recs[0].parent, ROOT);
	cr_assert_str_eq(recs[0].name, "web");
	cr_assert_eq(view_service_count(v), 0);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT);
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, -ENOENT);
	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, removed_service_lives_until_forgotten)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	static struct listing l;
	uint64_t sino;
	struct stat st;
	int r;

	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, 0);
	sino = st.st_ino;
	r = view_lookup(v, ROOT, "web", 0, &st); /* two references */
	cr_assert_eq(r, 0);
	view_remove(v, s);

	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, -ENOENT, "gone from its parent at once");
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0, "still referenced: getattr works");
	cr_assert(S_ISDIR(st.st_mode));
	r = view_lookup(v, sino, "state", 0, &st);
	cr_assert_eq(r, -ENOENT, "nothing new is looked up in a removed directory");
	readdir_all(sino, &l);
	cr_assert_eq(l.n, 2, "a removed directory lists only . and ..");

	view_forget(v, sino, 1);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0, "one reference left");
	view_forget(v, sino, 1);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT, "forgotten: gone");
}

Test(view, file_references_keep_the_directory)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	uint64_t sino, state;
	struct stat st;
	struct data d;
	int r;

	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, 0);
	sino = st.st_ino;
	r = view_lookup(v, sino, "state", 0, &st);
	cr_assert_eq(r, 0);
	state = st.st_ino;
	view_remove(v, s);

	view_forget(v, sino, 1);
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, 0, "the file is still referenced");
	r = read_file(state, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "alive\n");
	view_forget(v, state, 1);
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, -ENOENT);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, forget_while_linked_then_remove)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	uint64_t sino;
	struct stat st;
	int r;

	r = view_lookup(v, ROOT, "web", 0, &st);
	cr_assert_eq(r, 0);
	sino = st.st_ino;
	view_forget(v, sino, 5); /* more than held: clamps at zero */
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0, "linked nodes stay whatever the count");
	view_remove(v, s);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT);
	view_forget(v, sino, 1); /* a late forget for a freed node is harmless */
	view_forget(v, ROOT, 1);
	view_forget(v, VIEW_SERVICES_INO, 1);
	r = view_getattr(v, ROOT, &st);
	cr_assert_eq(r, 0);
}

Test(view, readdirplus_counts_references)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	static struct listing l;
	uint64_t sino = ino_of(ROOT, "web");
	struct stat st;
	int r;

	l.n = 0;
	r = readdir_some(ROOT, 0, true, (size_t)-1, &l);
	cr_assert_eq(r, 0);
	cr_assert_not_null(find_entry(&l, "web"));
	view_remove(v, s);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0, "readdirplus counted a reference");
	view_forget(v, sino, 1);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, plain_readdir_counts_nothing)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	static struct listing l;
	uint64_t sino = ino_of(ROOT, "web");
	struct stat st;
	int r;

	readdir_all(ROOT, &l);
	readdir_all(sino, &l);
	view_remove(v, s);
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, -ENOENT);
}

Test(view, readdirplus_refused_entry_not_counted)
{
	struct vnode *a = svc_simple(view_root(v), "a");
	struct vnode *b = svc_simple(view_root(v), "b");
	uint64_t aino = ino_of(ROOT, "a"), bino = ino_of(ROOT, "b");
	static struct listing l;
	struct stat st;
	int r;

	/* after ".", "..", and the two aggregates (offset 4): room for one */
	l.n = 0;
	r = readdir_some(ROOT, 4, true, 1, &l);
	cr_assert_eq(r, 0);
	cr_assert_eq(l.n, 1);
	cr_assert_str_eq(l.e[0].name, "a");
	view_remove(v, a);
	view_remove(v, b);
	r = view_getattr(v, aino, &st);
	cr_assert_eq(r, 0, "a was accepted and counted");
	r = view_getattr(v, bino, &st);
	cr_assert_eq(r, -ENOENT, "b was refused by the buffer and must not be counted");
}

Test(view, readdirplus_in_service_counts_files)
{
	struct vnode *s = svc_simple(view_root(v), "web");
	uint64_t sino = ino_of(ROOT, "web");
	uint64_t state = ino_of(sino, "state");
	static struct listing l;
	struct stat st;
	int r;

	l.n = 0;
	r = readdir_some(sino, 0, true, (size_t)-1, &l);
	cr_assert_eq(r, 0);
	cr_assert_eq(l.n, 5);
	view_remove(v, s);
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, 0);
	view_forget(v, state, 3); /* three files listed */
	r = view_getattr(v, state, &st);
	cr_assert_eq(r, -ENOENT);
}

/* ---- readdir offsets ---- */

/* Read all of INO in calls of ROOM entries, collecting into L. */
static void readdir_chunked(uint64_t ino, size_t room, struct listing *l)
{
	uint64_t off = 0;

	l->n = 0;
	for (int calls = 0; calls < 10000; calls++) {
		size_t before = l->n;
		int r = readdir_some(ino, off, false, room, l);
		cr_assert_eq(r, 0);
		if (l->n == before)
			return;
		for (size_t i = before + 1; i < l->n; i++)
			cr_assert_gt(l->e[i].off, l->e[i - 1].off);
		cr_assert_gt(l->e[before].off, off, "an entry at or before the resume offset");
		off = l->e[l->n - 1].off;
	}
	cr_assert_fail("readdir never ended");
}

static size_t times_listed(const struct listing *l, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			n++;
	return n;
}

Test(view, readdir_resumes_with_tiny_buffer)
{
	static struct listing l;
	char name[32];

	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "s%02d", i);
		svc_simple(view_root(v), name);
	}
	for (size_t room = 1; room <= 5; room++) {
		readdir_chunked(ROOT, room, &l);
		cr_assert_eq(l.n, 24, "room %zu: %zu entries", room, l.n);
		cr_assert_eq(times_listed(&l, "."), 1);
		cr_assert_eq(times_listed(&l, ".."), 1);
		cr_assert_eq(times_listed(&l, VIEW_SERVICES_NAME), 1);
		cr_assert_eq(times_listed(&l, VIEW_TARGETS_NAME), 1);
		for (int i = 0; i < 20; i++) {
			snprintf(name, sizeof(name), "s%02d", i);
			cr_assert_eq(times_listed(&l, name), 1, "room %zu: %s", room, name);
		}
	}
}

Test(view, readdir_service_dir_resumes)
{
	const struct view_file_spec files[] = {file("a", "1"), file("b", "2"), file("c", "3"),
					       file("d", "4"), file("e", "5")};
	static struct listing l;
	uint64_t sino;

	svc_set(view_root(v), NULL, "web", files, 5);
	sino = ino_of(ROOT, "web");
	for (size_t room = 1; room <= 3; room++) {
		readdir_chunked(sino, room, &l);
		cr_assert_eq(l.n, 7);
		for (size_t i = 0; i < 5; i++)
			cr_assert_eq(times_listed(&l, files[i].name), 1);
	}
}

/*
 * Between two readdir calls some entries go (seen and unseen ones) and some
 * come: every entry that stayed is listed exactly once.
 */
static void check_readdir_under_churn(int total, int first_room, int remove_every)
{
	struct vnode **nodes = calloc((size_t)total, sizeof(*nodes));
	bool *gone = calloc((size_t)total, sizeof(*gone));
	static struct listing l;
	char name[32];
	uint64_t off;
	int r;

	cr_assert_not_null(nodes);
	cr_assert_not_null(gone);
	for (int i = 0; i < total; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		nodes[i] = svc_simple(view_root(v), name);
	}
	l.n = 0;
	r = readdir_some(ROOT, 0, false, (size_t)first_room, &l);
	cr_assert_eq(r, 0);
	cr_assert_eq(l.n, (size_t)first_room);
	off = l.e[l.n - 1].off;

	for (int i = 0; i < total; i++) {
		if (i % remove_every == 0) {
			view_remove(v, nodes[i]);
			gone[i] = true;
		}
	}
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "new%d", i);
		svc_simple(view_root(v), name);
	}

	for (int calls = 0; calls < 10000; calls++) {
		size_t before = l.n;
		r = readdir_some(ROOT, off, false, 3, &l);
		cr_assert_eq(r, 0);
		if (l.n == before)
			break;
		off = l.e[l.n - 1].off;
	}
	for (int i = 0; i < total; i++) {
		snprintf(name, sizeof(name), "s%03d", i);
		if (!gone[i])
			cr_assert_eq(times_listed(&l, name), 1, "%s listed %zu times", name,
				     times_listed(&l, name));
		else
			cr_assert_leq(times_listed(&l, name), 1, "%s", name);
	}
	for (int i = 0; i < 10; i++) {
		snprintf(name, sizeof(name), "new%d", i);
		cr_assert_leq(times_listed(&l, name), 1, "%s", name);
	}
	cr_assert_eq(times_listed(&l, "."), 1);
	cr_assert_eq(times_listed(&l, ".."), 1);
	free(nodes);
	free(gone);
}

Test(view, readdir_survivors_once_under_churn)
{
	check_readdir_under_churn(20, 8, 3);
}

Test(view, readdir_survivors_once_across_compaction)
{
	/* 100 entries, 50 removed: enough holes to compact the order array */
	check_readdir_under_churn(100, 10, 2);
}

Test(view, readdir_service_files_under_churn)
{
	const struct view_file_spec abcde[] = {file("a", "1"), file("b", "2"), file("c", "3"),
					       file("d", "4"), file("e", "5")};
	const struct view_file_spec later[] = {file("a", "1"), file("c", "3"), file("e", "5"),
					       file("f", "6")};
	struct vnode *s = svc_set(view_root(v), NULL, "web", abcde, 5);
	static struct listing l;
	uint64_t sino = ino_of(ROOT, "web"), off;
	int r;

	l.n = 0;
	r = readdir_some(sino, 0, false, 3, &l); /* . .. a */
	cr_assert_eq(r, 0);
	cr_assert_eq(l.n, 3);
	off = l.e[2].off;
	svc_set(view_root(v), s, "web", later, 4);
	for (int calls = 0; calls < 100; calls++) {
		size_t before = l.n;
		r = readdir_some(sino, off, false, 1, &l);
		cr_assert_eq(r, 0);
		if (l.n == before)
			break;
		off = l.e[l.n - 1].off;
	}
	cr_assert_eq(times_listed(&l, "a"), 1);
	cr_assert_eq(times_listed(&l, "c"), 1);
	cr_assert_eq(times_listed(&l, "e"), 1);
	cr_assert_eq(times_listed(&l, "b"), 0);
	cr_assert_eq(times_listed(&l, "d"), 0);
	cr_assert_leq(times_listed(&l, "f"), 1);
}

Test(view, readdir_errors)
{
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t state;
	int r;

	cr_assert_not_null(l);
	svc_simple(view_root(v), "web");
	state = ino_of(ino_of(ROOT, "web"), "state");
	r = readdir_some(state, 0, false, 10, l);
	cr_assert_eq(r, -ENOTDIR);
	r = readdir_some(0x4242ull << VIEW_INO_SHIFT, 0, false, 10, l);
	cr_assert_eq(r, -ENOENT);
	cr_assert_eq(l->n, 0);
	free(l);
}

/* ---- aggregates ---- */

/* Read aggregate INO, check it is a JSON array ending in a newline; returns its length. */
static size_t check_aggregate(uint64_t ino, json_object **ret)
{
	struct data d;
	struct stat st;
	json_tokener *tok;
	json_object *arr;
	size_t n;
	int r;

	/* the kernel's order: the size first (reads serve what it was told) */
	r = view_getattr(v, ino, &st);
	cr_assert_eq(r, 0);
	r = read_file(ino, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, 0);
	cr_assert_gt(d.len, 0);
	cr_assert_eq(d.buf[d.len - 1], '\n', "must end in a newline: %s", d.buf);
	cr_assert_eq((size_t)st.st_size, d.len, "size %zu, read %zu", (size_t)st.st_size, d.len);
	tok = json_tokener_new();
	cr_assert_not_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	arr = json_tokener_parse_ex(tok, d.buf, (int)d.len - 1);
	cr_assert_not_null(arr, "not JSON: %s", d.buf);
	cr_assert_eq(json_tokener_get_parse_end(tok), d.len - 1, "text after the array: %s", d.buf);
	json_tokener_free(tok);
	cr_assert(json_object_is_type(arr, json_type_array), "not an array: %s", d.buf);
	n = json_object_array_length(arr);
	if (ret)
		*ret = arr;
	else
		json_object_put(arr);
	return n;
}

Test(view, aggregates_empty)
{
	size_t n1 = check_aggregate(VIEW_SERVICES_INO, NULL);
	size_t n2 = check_aggregate(VIEW_TARGETS_INO, NULL);
	struct data d;
	int r;

	cr_assert_eq(n1, 0);
	cr_assert_eq(n2, 0);
	r = read_file(VIEW_SERVICES_INO, 0, 100, &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "[]\n");
}

Test(view, aggregates_list_services)
{
	struct vnode *g = view_group_add(v, view_root(v), "grp", 0, 0, 0755);
	json_object *arr = NULL, *el, *name;
	size_t n;

	cr_assert_not_null(g);
	svc_simple(view_root(v), "a");
	svc_simple(g, "b");
	n = check_aggregate(VIEW_SERVICES_INO, &arr);
	cr_assert_eq(n, 2);
	el = json_object_array_get_idx(arr, 0);
	cr_assert(json_object_object_get_ex(el, "name", &name));
	cr_assert_str_eq(json_object_get_string(name), "a");
	el = json_object_array_get_idx(arr, 1);
	cr_assert(json_object_object_get_ex(el, "name", &name));
	cr_assert_str_eq(json_object_get_string(name), "b");
	json_object_put(arr);
	n = check_aggregate(VIEW_TARGETS_INO, NULL);
	cr_assert_eq(n, 2);
}

Test(view, aggregates_follow_removal)
{
	struct vnode *a = svc_simple(view_root(v), "a");
	json_object *arr = NULL, *name;
	size_t n;

	svc_simple(view_root(v), "b");
	n = check_aggregate(VIEW_SERVICES_INO, NULL);
	cr_assert_eq(n, 2);
	view_remove(v, a);
	n = check_aggregate(VIEW_SERVICES_INO, &arr);
	cr_assert_eq(n, 1);
	cr_assert(json_object_object_get_ex(json_object_array_get_idx(arr, 0), "name", &name));
	cr_assert_str_eq(json_object_get_string(name), "b");
	json_object_put(arr);
}

Test(view, aggregates_skip_missing_elements)
{
	const struct view_file_spec files[] = {file("state", "alive\n")};
	struct view_service_spec spec = {.uid = 0,
					 .gid = 0,
					 .mode = 0755,
					 .files = files,
					 .nfiles = 1,
					 .entry_json = NULL,
					 .target_json = NULL};
	struct vnode *s = view_service_set(v, view_root(v), NULL, "bare", &spec, NULL);
	size_t n;

	cr_assert_not_null(s);
	svc_simple(view_root(v), "full");
	n = check_aggregate(VIEW_SERVICES_INO, NULL);
	cr_assert_eq(n, 1);
	n = check_aggregate(VIEW_TARGETS_INO, NULL);
	cr_assert_eq(n, 1);
}

Test(view, aggregates_modified_on_clean_to_dirty_only)
{
	struct vnode *a;

	/* never rendered: nothing the kernel could have cached, no event */
	a = svc_simple(view_root(v), "a");
	flush();
	cr_assert_eq(count_ino(VIEW_SERVICES_INO), 0, "events: %s", dump());
	cr_assert_eq(count_ino(VIEW_TARGETS_INO), 0, "events: %s", dump());

	/* rendered, then a service comes: one MODIFIED for each */
	render_aggregates();
	svc_simple(view_root(v), "b");
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_TARGETS_INO), 1, "events: %s", dump());

	/* dirty already: a further change adds nothing */
	svc_simple(view_root(v), "c");
	flush();
	cr_assert_eq(count_ino(VIEW_SERVICES_INO), 0, "events: %s", dump());
	cr_assert_eq(count_ino(VIEW_TARGETS_INO), 0, "events: %s", dump());

	/* rendered again, a service goes: one each */
	render_aggregates();
	view_remove(v, a);
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_TARGETS_INO), 1, "events: %s", dump());
}

/*
 * A version of an aggregate never changes: a change makes a new one with
 * a new inode (the name moves to it), and the old one stays readable, as
 * it was, until the kernel forgets it.
 */
Test(view, aggregate_versions_never_change)
{
	struct stat st, st2;
	struct data d;
	uint64_t old;
	int r;

	svc_simple(view_root(v), "a");
	r = view_lookup(v, ROOT, VIEW_SERVICES_NAME, 0, &st);
	cr_assert_eq(r, 0);
	old = st.st_ino;
	flush();
	svc_simple(view_root(v), "b");
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 1, "events: %s", dump());
	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].ino == VIEW_SERVICES_INO)
			cr_assert_eq(recs[i].parent, old, "the event names the old version");

	r = read_file(old, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "[{\"name\":\"a\"}]\n");
	r = view_getattr(v, old, &st2);
	cr_assert_eq(r, 0);
	cr_assert_eq(st2.st_size, st.st_size);

	r = view_lookup(v, ROOT, VIEW_SERVICES_NAME, 0, &st);
	cr_assert_eq(r, 0);
	cr_assert_neq(st.st_ino, old, "a new version, a new inode");
	r = read_file(st.st_ino, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "[{\"name\":\"a\"},{\"name\":\"b\"}]\n");
	cr_assert_eq((size_t)st.st_size, d.len);

	/* the old one goes when forgotten; the current one stays */
	view_forget(v, old, 1);
	r = read_file(old, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, -ENOENT);
	r = view_getattr(v, old, &st2);
	cr_assert_eq(r, -ENOENT);
	view_forget(v, st.st_ino, 1);
	r = read_file(st.st_ino, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, 0);
	/* an aggregate has no xattrs and is no symlink */
	r = get_xattr(st.st_ino, "user.svcfs.state", &d);
	cr_assert_eq(r, -ENODATA);
	r = view_listxattr(v, st.st_ino, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);
	r = view_readlink(v, st.st_ino, take_data, &d);
	cr_assert_eq(r, -EINVAL);
}

/* A version the kernel never looked up is freed as soon as it is replaced. */
Test(view, aggregate_version_unknown_to_the_kernel_is_dropped)
{
	struct data d;
	uint64_t old;
	int r;

	old = cur_ino(VIEW_SERVICES_INO); /* getattr counts no reference */
	svc_simple(view_root(v), "a");
	flush();
	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].ino == VIEW_SERVICES_INO)
			cr_assert_eq(recs[i].parent, 0, "no old version to delete");
	r = read_file(old, 0, sizeof(d.buf), &d);
	cr_assert_eq(r, -ENOENT);
}

/* The ino of the directory NAME added (ADDED event) in the last flush. */
static uint64_t added_ino(const char *name)
{
	for (size_t i = 0; i < nrecs; i++)
		if (recs[i].kind == VIEW_EV_ADDED && strcmp(recs[i].name, name) == 0)
			return recs[i].ino;
	cr_assert_fail("no ADDED event for %s: %s", name, dump());
	return 0;
}

/*
 * In poke mode the aggregates list only what users can see: a service
 * waiting for its MKDIR poke is not in them; once poked (or settled) it is,
 * and the batch's MODIFIED comes after the ADDED.
 */
Test(view, aggregates_list_only_visible_services)
{
	struct stat st;
	json_object *arr;
	uint64_t b;
	int r;

	view_set_poker(v, 4242, 0);
	render_aggregates();
	svc_simple(view_root(v), "a");
	svc_simple(view_root(v), "b");
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 2, "events: %s", dump());
	b = added_ino("b");
	cr_assert_eq(check_aggregate(VIEW_SERVICES_INO, &arr), 0, "listed before its MKDIR");
	json_object_put(arr);

	r = view_poke_mkdir(v, ROOT, "a", &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(check_aggregate(VIEW_SERVICES_INO, &arr), 1);
	cr_assert_str_eq(json_object_get_string(
	                     json_object_object_get(json_object_array_get_idx(arr, 0), "name")),
	                 "a");
	json_object_put(arr);
	cr_assert_eq(check_aggregate(VIEW_TARGETS_INO, &arr), 1);
	json_object_put(arr);

	view_settle(v, b); /* a failed poke */
	cr_assert_eq(check_aggregate(VIEW_SERVICES_INO, &arr), 2);
	json_object_put(arr);
	cr_assert_eq(check_aggregate(VIEW_TARGETS_INO, &arr), 2);
	json_object_put(arr);
}

Test(view, aggregates_unchanged_service_no_event)
{
	struct vnode *s = clean_service();

	svc_set(view_root(v), s, "web", base_files, 3);
	flush();
	cr_assert_eq(count_ino(VIEW_SERVICES_INO), 0, "events: %s", dump());
	cr_assert_eq(count_ino(VIEW_TARGETS_INO), 0, "events: %s", dump());
}

Test(view, aggregates_modified_when_element_changes)
{
	struct vnode *s = clean_service();
	const struct svc_opts entry = {.entry = "{\"name\":\"web\",\"state\":\"busy\"}"};
	const struct svc_opts target = {.entry = entry.entry, .target = "{\"targets\":[\"x\"]}"};

	svc_set_ex(view_root(v), s, "web", base_files, 3, &entry, NULL);
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 1, "events: %s", dump());
	/* control: its .targets.json element did not change */
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_TARGETS_INO), 0, "events: %s", dump());
	cr_assert_eq(nrecs, 1, "no service file changed: %s", dump());

	render_aggregates();
	svc_set_ex(view_root(v), s, "web", base_files, 3, &target, NULL);
	flush();
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_TARGETS_INO), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, VIEW_SERVICES_INO), 0, "events: %s", dump());
}

Test(view, aggregates_mode_and_owner_from_root)
{
	struct view *w = view_new(7, 8, 0750, NULL, NULL);
	struct stat st;
	int r;

	cr_assert_not_null(w);
	r = view_getattr(w, VIEW_SERVICES_INO, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFREG | 0440, "mode %o", st.st_mode);
	cr_assert_eq(st.st_uid, 7);
	cr_assert_eq(st.st_gid, 8);
	cr_assert_eq(st.st_nlink, 1);
	view_free(w);
}

/* ---- attributes ---- */

Test(view, modes_of_service_files)
{
	const struct svc_opts o = {.mode = 0705};
	uint64_t sino;
	struct stat st;
	int r;

	svc_set_ex(view_root(v), NULL, "web", base_files, 3, &o, NULL);
	sino = ino_of(ROOT, "web");
	r = view_getattr(v, sino, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 0705, "dir mode %o", st.st_mode);
	cr_assert_eq(st.st_uid, 1000);
	cr_assert_eq(st.st_gid, 1001);
	r = view_getattr(v, ino_of(sino, "state"), &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFREG | 0404, "file mode %o", st.st_mode);
	cr_assert_eq(st.st_uid, 1000);
	cr_assert_eq(st.st_gid, 1001);
	cr_assert_eq(st.st_nlink, 1);
	r = view_getattr(v, ino_of(sino, "socket"), &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFLNK | 0777, "link mode %o", st.st_mode);
	cr_assert_eq(st.st_size, 11);
}

Test(view, modes_750)
{
	uint64_t sino;
	struct stat st;
	int r;

	svc_set(view_root(v), NULL, "web", base_files, 3);
	sino = ino_of(ROOT, "web");
	r = view_getattr(v, ino_of(sino, "version"), &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFREG | 0440, "file mode %o", st.st_mode);
}

Test(view, dir_set_attr_event_and_control)
{
	struct stat st;
	int r;

	render_aggregates();
	flush();
	view_dir_set_attr(v, view_root(v), 0, 0, 0755);
	flush();
	cr_assert_eq(nrecs, 0, "same attributes: %s", dump());

	view_dir_set_attr(v, view_root(v), 5, 6, 0700);
	flush();
	cr_assert_eq(count(VIEW_EV_ATTRIB, ROOT), 1, "events: %s", dump());
	cr_assert_eq(count(VIEW_EV_MODIFIED, ROOT), 0, "events: %s", dump());
	r = view_getattr(v, ROOT, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFDIR | 0700);
	cr_assert_eq(st.st_uid, 5);
	r = view_getattr(v, VIEW_SERVICES_INO, &st);
	cr_assert_eq(r, 0);
	cr_assert_eq(st.st_mode, S_IFREG | 0400, "aggregates follow the root");
}

/* ---- xattrs ---- */

Test(view, getxattr_is_content_without_newline)
{
	const struct view_file_spec files[] = {
	    link_to("socket", "/b/web.sock"),
	    file("state", "alive\n"),
	    file("multi", "a\nb\n"),
	    file("nonl", "x"),
	    file("empty", ""),
	    file("twonl", "y\n\n"),
	};
	uint64_t sino;
	struct data d;
	int r;

	svc_set(view_root(v), NULL, "web", files, 6);
	sino = ino_of(ROOT, "web");
	r = get_xattr(sino, "user.svcfs.state", &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 5);
	cr_assert_str_eq(d.buf, "alive");
	r = get_xattr(sino, "user.svcfs.multi", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "a\nb");
	r = get_xattr(sino, "user.svcfs.nonl", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "x");
	r = get_xattr(sino, "user.svcfs.empty", &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);
	cr_assert_eq(d.calls, 1);
	r = get_xattr(sino, "user.svcfs.twonl", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "y\n", "only the one trailing newline goes");
	r = get_xattr(sino, "user.svcfs.socket", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "/b/web.sock");
}

Test(view, getxattr_follows_changes)
{
	struct vnode *s = clean_service();
	struct view_file_spec files[3];
	uint64_t sino = ino_of(ROOT, "web");
	struct data d;
	int r;

	memcpy(files, base_files, sizeof(files));
	files[1] = file("state", "busy\n");
	svc_set(view_root(v), s, "web", files, 3);
	r = get_xattr(sino, "user.svcfs.state", &d);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(d.buf, "busy");
	svc_set(view_root(v), s, "web", files, 2);
	r = get_xattr(sino, "user.svcfs.version", &d);
	cr_assert_eq(r, -ENODATA, "a removed file is no xattr any more");
}

Test(view, getxattr_unknown_user_names)
{
	const char *names[] = {"user.svcfs.nothing", "user.svcfs.",	 "user.svcfs",
			       "user.state",	     "user.svcfs.STATE", "user.svcfs.state\n"};
	uint64_t sino;
	struct data d;

	svc_simple(view_root(v), "web");
	sino = ino_of(ROOT, "web");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = get_xattr(sino, names[i], &d);
		cr_assert_eq(r, -ENODATA, "'%s': %d", names[i], r);
		cr_assert_eq(d.calls, 0, "'%s': data given", names[i]);
	}
}

/* view.h: names outside user.* are -EOPNOTSUPP (the mount has none of them). */
Test(view, getxattr_other_namespaces)
{
	const char *names[] = {"trusted.svcfs.state",
			       "security.svcfs.state",
			       "security.selinux",
			       "system.posix_acl_access",
			       "state",
			       ""};
	uint64_t sino;
	struct data d;

	svc_simple(view_root(v), "web");
	sino = ino_of(ROOT, "web");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int r = get_xattr(sino, names[i], &d);
		cr_assert_eq(r, -EOPNOTSUPP, "'%s': %d", names[i], r);
		cr_assert_eq(d.calls, 0, "'%s': data given", names[i]);
	}
}

Test(view, getxattr_on_non_service_inodes)
{
	struct data d;
	uint64_t state;
	int r;

	svc_simple(view_root(v), "web");
	state = ino_of(ino_of(ROOT, "web"), "state");
	r = get_xattr(ROOT, "user.svcfs.state", &d);
	cr_assert_eq(r, -ENODATA);
	r = get_xattr(state, "user.svcfs.state", &d);
	cr_assert_eq(r, -ENODATA);
	r = get_xattr(VIEW_SERVICES_INO, "user.svcfs.state", &d);
	cr_assert_neq(r, 0);
	cr_assert_eq(d.calls, 0);
}

Test(view, listxattr_lists_every_file)
{
	const char expected[] = "user.svcfs.socket\0user.svcfs.state\0user.svcfs.version";
	uint64_t sino;
	struct data d = {0};
	int r;

	svc_simple(view_root(v), "web");
	sino = ino_of(ROOT, "web");
	r = view_listxattr(v, sino, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, sizeof(expected), "length %zu", d.len);
	cr_assert_eq(memcmp(d.buf, expected, sizeof(expected)), 0);
}

Test(view, listxattr_empty_elsewhere)
{
	struct data d = {0};
	int r;

	svc_simple(view_root(v), "web");
	r = view_listxattr(v, ROOT, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);
	memset(&d, 0, sizeof(d));
	r = view_listxattr(v, ino_of(ino_of(ROOT, "web"), "state"), take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);
	memset(&d, 0, sizeof(d));
	r = view_listxattr(v, VIEW_SERVICES_INO, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, 0);
	r = view_listxattr(v, 0x4242ull << VIEW_INO_SHIFT, take_data, &d);
	cr_assert_eq(r, -ENOENT);
}

Test(view, listxattr_skips_names_too_long_for_xattrs)
{
	static char longname[250];
	struct view_file_spec files[2];
	uint64_t sino;
	struct data d = {0};
	int r;

	memset(longname, 'n', sizeof(longname) - 1);
	files[0] = file("state", "alive\n");
	files[1] = file(longname, "v\n");
	svc_set(view_root(v), NULL, "web", files, 2);
	sino = ino_of(ROOT, "web");
	r = view_listxattr(v, sino, take_data, &d);
	cr_assert_eq(r, 0);
	cr_assert_eq(d.len, sizeof("user.svcfs.state"), "listed: %zu bytes", d.len);
	cr_assert_str_eq(d.buf, "user.svcfs.state");
}

/* ---- memory ---- */

/* A view with a group, a service in the root and one in the group, freed. */
static void view_cycle(void)
{
	const struct view_file_spec files[] = {{"state", "alive\n", 6, false}};
	const struct view_service_spec spec = {
	    .mode = 0755, .files = files, .nfiles = 1, .entry_json = "{}", .target_json = "{}"};
	struct view *w = view_new(0, 0, 0755, NULL, NULL);
	struct vnode *g, *a, *b;

	cr_assert_not_null(w);
	g = view_group_add(w, view_root(w), "g", 0, 0, 0755);
	a = view_service_set(w, view_root(w), NULL, "a", &spec, NULL);
	b = view_service_set(w, g, NULL, "b", &spec, NULL);
	cr_assert(g && a && b);
	view_flush(w);
	view_free(w);
}

/*
 * BUG: view_free frees every node but not the uthash tables of the
 * directories' children (root.children and each group's children), about
 * 576 bytes a directory. (Under SVCFS_SANITIZE LeakSanitizer reports the
 * same; mallinfo2 then reads 0 and this check passes.)
 */
Test(view, free_releases_everything)
{
	size_t before, after;

	view_cycle(); /* let the allocator settle */
	before = mallinfo2().uordblks;
	for (int i = 0; i < 200; i++)
		view_cycle();
	after = mallinfo2().uordblks;
	/* the old leak was ~1.2 KB a cycle; allocator noise is tens of bytes */
	cr_assert_lt(after > before ? after - before : 0, 16384,
		     "%zu bytes lost in 200 view_new/view_free cycles", after - before);
}
