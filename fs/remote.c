/*
 * remote — show other hosts' services (see remote.h).
 *
 * Each key PREFIX hosts/HOST/[GROUP/]NAME the mirror read becomes the
 * service directory @HOST/[GROUP/]NAME, rendered from its value (what the
 * other host's svcfs published: render_published) as a local service would
 * be, less the socket: host, pid, uid, gid, state, since, meta.json and the
 * sidecar keys, endpoints as that host is reached. @HOST and the groups
 * below it exist while they hold a service. A value that is not such an
 * object, or a name svcfs would not show, is skipped with one log line.
 * While the mirror cannot vouch for what it read (etcd cut off), every
 * remote service shows state "unknown".
 */
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cluster.h"
#include "hash.h"
#include "log.h"
#include "options.h"
#include "remote.h"
#include "render.h"
#include "svcfs-internal.h"
#include "view.h"

struct rdir {
	char *path; /* "" for @HOST itself, else "a/b" below it */
	struct vnode *vnode;
	struct rdir *parent;
	size_t nchildren;  /* services and groups below it */
	UT_hash_handle hh; /* rhost->dirs */
};

struct rsvc {
	char *path; /* "[GROUP/]NAME" */
	struct rdir *dir;
	json_object *doc;
	struct vnode *vnode; /* NULL: pending (its name or a group's taken, or a limit) */
	bool logged;         /* why it is pending was said */
	UT_hash_handle hh;   /* rhost->svcs */
};

struct rhost {
	char *name;
	struct rdir *dirs; /* by path, "" the host's own */
	struct rsvc *svcs;
	UT_hash_handle hh;
};

struct remote {
	struct view *view;
	uid_t uid;
	gid_t gid;
	struct rhost *hosts;
	atomic_size_t count; /* shown; read by the status from any thread */
	size_t pending;      /* known but not shown (see struct rsvc) */
	size_t max;          /* most shown (max_services) */
	bool max_logged;
	bool unknown;
};

struct remote *remote_new(struct view *view, uid_t uid, gid_t gid, size_t max)
{
	struct remote *r = calloc(1, sizeof(*r));

	if (r) {
		r->view = view;
		r->uid = uid;
		r->gid = gid;
		r->max = max;
	}
	return r;
}

size_t remote_count(struct remote *r)
{
	return atomic_load(&r->count);
}

/* Control characters of a name made harmless for a log line. */
static const char *shown(const char *s, char *buf, size_t size)
{
	snprintf(buf, size, "%s", s);
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}

/* ---- directories ---- */

static void dir_free(struct rhost *h, struct rdir *d)
{
	HASH_DELETE(hh, h->dirs, d);
	free(d->path);
	free(d);
}

/* One fewer child in D: remove it, and its parents, once empty. */
static void dir_release(struct remote *r, struct rhost *h, struct rdir *d)
{
	while (d && --d->nchildren == 0) {
		struct rdir *parent = d->parent;
		view_remove(r->view, d->vnode);
		dir_free(h, d);
		d = parent;
	}
}

/* The directory PATH ("" the host's own) of H, made with its parents. */
static struct rdir *dir_get(struct remote *r, struct rhost *h, const char *path)
{
	struct rdir *d, *parent = NULL;
	const char *slash = strrchr(path, '/');
	char *up = NULL, name[NAME_MAX + 2], why[300];

	HASH_FIND_STR(h->dirs, path, d);
	if (d)
		return d;
	if (path[0]) {
		up = slash ? strndup(path, (size_t)(slash - path)) : strdup("");
		if (!up || !(parent = dir_get(r, h, up))) {
			free(up);
			return NULL;
		}
		free(up);
		snprintf(name, sizeof(name), "%s", slash ? slash + 1 : path);
	} else {
		snprintf(name, sizeof(name), "%c%s", REMOTE_HOST_MARK, h->name);
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->path = strdup(path))) {
		free(d);
		goto fail;
	}
	svcfs_hash_oom = false;
	HASH_ADD_KEYPTR(hh, h->dirs, d->path, strlen(d->path), d);
	if (svcfs_hash_oom) {
		free(d->path);
		free(d);
		goto fail;
	}
	d->vnode = view_group_add(r->view, parent ? parent->vnode : view_root(r->view), name,
	                          r->uid, r->gid, 0555);
	if (!d->vnode) {
		/* said once per service by svc_place; tried again at every update */
		log_debug("@%s: %s: name taken (or out of memory)",
		          shown(h->name, why, sizeof(why)), name);
		dir_free(h, d);
		goto fail;
	}
	d->parent = parent;
	if (parent)
		parent->nchildren++;
	return d;
fail:
	if (parent && parent->nchildren == 0) {
		/* made for this one only */
		parent->nchildren = 1;
		dir_release(r, h, parent);
	}
	return NULL;
}

/* ---- services ---- */

static int64_t json_int(json_object *doc, const char *key, int64_t dflt)
{
	json_object *v;

	if (json_object_object_get_ex(doc, key, &v) && json_object_is_type(v, json_type_int))
		return json_object_get_int64(v);
	return dflt;
}

/* RFC 3339 UTC as render_time writes it; 0 if it is not that. */
static time_t parse_time(const char *s)
{
	struct tm tm = {0};
	const char *end;

	if (!s || !(end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)))
		return 0;
	return timegm(&tm);
}

/* Show (or update) S from its document. */
static int svc_show(struct remote *r, struct rhost *h, struct rsvc *s)
{
	json_object *meta = json_object_new_object(), *v, *endpoints = NULL;
	const char *slash = strrchr(s->path, '/');
	const char *state = "alive", *since = NULL;
	char group[PATH_MAX];
	struct render_output out;
	struct view_service_spec spec;
	struct vnode *n;
	int64_t pid = json_int(s->doc, "pid", 0), uid = json_int(s->doc, "uid", -1),
	        gid = json_int(s->doc, "gid", -1);

	if (!meta)
		return -ENOMEM;
	/* the sidecar's keys, endpoints as that host is reached */
	if (json_object_object_get_ex(s->doc, "meta", &v) &&
	    json_object_is_type(v, json_type_object)) {
		json_object_object_foreach(v, key, val)
		    json_object_object_add(meta, key, json_object_get(val));
	}
	if (json_object_object_get_ex(s->doc, "endpoints", &endpoints) &&
	    (json_object_is_type(endpoints, json_type_object) ||
	     json_object_is_type(endpoints, json_type_array)))
		json_object_object_add(meta, "endpoints", json_object_get(endpoints));
	if (json_object_object_get_ex(s->doc, "state", &v) &&
	    json_object_is_type(v, json_type_string) && json_object_get_string_len(v) > 0 &&
	    svcfs_name_safe_key(json_object_get_string(v), (size_t)json_object_get_string_len(v)))
		state = json_object_get_string(v);
	if (r->unknown)
		state = "unknown";
	if (json_object_object_get_ex(s->doc, "since", &v) &&
	    json_object_is_type(v, json_type_string))
		since = json_object_get_string(v);
	snprintf(group, sizeof(group), "%.*s", slash ? (int)(slash - s->path) : 0, s->path);
	{
		struct render_input in = {
		    .name = slash ? slash + 1 : s->path,
		    .group = group,
		    .socket = NULL,
		    .host = h->name,
		    .pid = pid > 0 && pid <= INT_MAX ? (pid_t)pid : 0,
		    .uid = uid >= 0 && uid <= UINT_MAX ? (uid_t)uid : (uid_t)-1,
		    .gid = gid >= 0 && gid <= UINT_MAX ? (gid_t)gid : (gid_t)-1,
		    .state = state,
		    .since = parse_time(since),
		    .meta = meta,
		};
		if (render_service(&in, &out) < 0) {
			json_object_put(meta);
			return -ENOMEM;
		}
	}
	spec = (struct view_service_spec){
	    .uid = r->uid,
	    .gid = r->gid,
	    .mode = 0555,
	    .files = out.files,
	    .nfiles = out.nfiles,
	    .entry_json = out.entry_json,
	    .target_json = out.target_json,
	};
	n = view_service_set(r->view, s->dir->vnode, s->vnode, slash ? slash + 1 : s->path, &spec,
	                     NULL);
	render_output_free(&out);
	json_object_put(meta);
	if (!n)
		return -ENOMEM;
	s->vnode = n;
	return 0;
}

static void svc_free(struct remote *r, struct rhost *h, struct rsvc *s)
{
	if (s->vnode) {
		view_remove(r->view, s->vnode);
		r->count--;
	} else {
		r->pending--;
	}
	if (s->dir)
		dir_release(r, h, s->dir);
	HASH_DELETE(hh, h->svcs, s);
	json_object_put(s->doc);
	free(s->path);
	free(s);
}

static void host_free(struct rhost *h)
{
	struct rdir *d, *tmp;

	HASH_ITER(hh, h->dirs, d, tmp)
	dir_free(h, d);
	free(h->name);
	free(h);
}

/*
 * Show S, or update it. One not shown yet (new, or pending) needs its
 * group directories and its name free: a remote host changing a service
 * into a group of the same name (or back) may send the two keys in either
 * order, and the second then waits here until the first has gone; every
 * remote_update tries the pending ones again.
 */
static void svc_place(struct remote *r, struct rhost *h, struct rsvc *s)
{
	char a[300], b[PATH_MAX];
	bool fresh = !s->vnode;

	if (fresh && r->count >= r->max) {
		if (!r->max_logged)
			log_warn(
			    "max_services=%zu reached by other hosts' services: @%s/%s and further "
			    "ones not shown",
			    r->max, shown(h->name, a, sizeof(a)), shown(s->path, b, sizeof(b)));
		r->max_logged = true;
		return;
	}
	if (!s->dir) {
		const char *slash = strrchr(s->path, '/');
		char *dirpath = slash ? strndup(s->path, (size_t)(slash - s->path)) : strdup("");
		s->dir = dirpath ? dir_get(r, h, dirpath) : NULL;
		free(dirpath);
		if (!s->dir)
			goto pending;
		s->dir->nchildren++;
	}
	if (svc_show(r, h, s) < 0) {
		if (!fresh)
			log_err("@%s/%s: out of memory, view not updated",
			        shown(h->name, a, sizeof(a)), shown(s->path, b, sizeof(b)));
		if (!fresh)
			return;
		/* no directory is kept for it alone while it waits */
		dir_release(r, h, s->dir);
		s->dir = NULL;
		goto pending;
	}
	if (fresh) {
		r->count++;
		r->pending--;
		log_info("@%s/%s: alive", shown(h->name, a, sizeof(a)),
		         shown(s->path, b, sizeof(b)));
	}
	return;
pending:
	if (!s->logged)
		log_debug("@%s/%s: name taken (or out of memory); shown once it is free",
		          shown(h->name, a, sizeof(a)), shown(s->path, b, sizeof(b)));
	s->logged = true;
}

/* A key of another host changed: VALUE its document, NULL gone. */
static void change(void *ctx, const char *host, const char *path, const char *value)
{
	struct remote *r = ctx;
	struct rhost *h;
	struct rsvc *s = NULL;
	json_object *doc = NULL;
	char a[300], b[PATH_MAX];
	enum json_tokener_error jerr;

	if (!options_host_ok(host) || svcfs_name_path_check(path, false, NULL) < 0) {
		if (value)
			log_debug("etcd: key of host '%s', service '%s' skipped: not a name svcfs "
			          "shows",
			          shown(host, a, sizeof(a)), shown(path, b, sizeof(b)));
		return;
	}
	HASH_FIND_STR(r->hosts, host, h);
	if (h)
		HASH_FIND_STR(h->svcs, path, s);
	if (value) {
		doc = json_tokener_parse_verbose(value, &jerr);
		if (!json_object_is_type(doc, json_type_object)) {
			log_warn("etcd: @%s/%s: not a service document; skipped",
			         shown(host, a, sizeof(a)), shown(path, b, sizeof(b)));
			json_object_put(doc);
			doc = NULL;
		}
	}
	if (!doc) {
		if (s) {
			if (s->vnode)
				log_info("@%s/%s: gone", shown(host, a, sizeof(a)),
				         shown(path, b, sizeof(b)));
			svc_free(r, h, s);
		}
		if (h && !h->svcs) {
			HASH_DELETE(hh, r->hosts, h);
			host_free(h);
		}
		return;
	}
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h || !(h->name = strdup(host))) {
			free(h);
			goto oom;
		}
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, r->hosts, h->name, strlen(h->name), h);
		if (svcfs_hash_oom) {
			free(h->name);
			free(h);
			goto oom;
		}
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s || !(s->path = strdup(path))) {
			free(s);
			goto oom_host;
		}
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, h->svcs, s->path, strlen(s->path), s);
		if (svcfs_hash_oom) {
			free(s->path);
			free(s);
			goto oom_host;
		}
		r->pending++; /* until placed */
	}
	json_object_put(s->doc);
	s->doc = doc;
	svc_place(r, h, s);
	return;
oom_host:
	if (!h->svcs) {
		HASH_DELETE(hh, r->hosts, h);
		host_free(h);
	}
oom:
	log_err("@%s/%s: out of memory, not shown", shown(host, a, sizeof(a)),
	        shown(path, b, sizeof(b)));
	json_object_put(doc);
}

void remote_update(struct remote *r, struct cluster *c)
{
	bool unknown = false, changed = false;
	struct rhost *h, *htmp;
	struct rsvc *s, *stmp;

	cluster_take(c, change, r, &unknown, &changed);
	r->unknown = unknown;
	if (!changed && r->pending == 0)
		return;
	HASH_ITER(hh, r->hosts, h, htmp)
	{
		HASH_ITER(hh, h->svcs, s, stmp)
		{
			if (!s->vnode)
				svc_place(r, h, s); /* a name may have been freed */
			else if (changed)
				svc_show(r, h, s); /* the state: unknown, or back */
		}
	}
}

struct remote *remote_free(struct remote *r)
{
	struct rhost *h, *htmp;
	struct rsvc *s, *stmp;

	if (!r)
		return NULL;
	HASH_ITER(hh, r->hosts, h, htmp)
	{
		HASH_ITER(hh, h->svcs, s, stmp)
		{
			HASH_DELETE(hh, h->svcs, s);
			json_object_put(s->doc);
			free(s->path);
			free(s);
		}
		HASH_DELETE(hh, r->hosts, h);
		host_free(h);
	}
	free(r);
	return NULL;
}
