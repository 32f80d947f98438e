/*
 * options — svcfs -o options. Values are taken as strings by fuse_opt and
 * checked here, so a bad value gets a message that names the option.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fuse_opt.h>

#include "options.h"
#include "svcfs-internal.h"

struct raw {
	char *probe_interval, *probe_timeout, *grace, *poll, *max_services;
	char *host, *etcd_prefix, *etcd_ttl, *address;
	int reap, ro;
	struct svcfs_buf etcd; /* every etcd= list, and the URLs continuing it */
	bool etcd_given;
	bool etcd_open; /* the last option was etcd= or a URL continuing it */
	char *stray;    /* a URL with no etcd= before it */
};

enum { KEY_ETCD = 1, KEY_CLOSE };

#define OPT(t, p) {t, offsetof(struct raw, p), 1}
static const struct fuse_opt opts[] = {
	{"probe_interval=%s", offsetof(struct raw, probe_interval), 0},
	{"probe_timeout=%s", offsetof(struct raw, probe_timeout), 0},
	{"grace=%s", offsetof(struct raw, grace), 0},
	{"poll=%s", offsetof(struct raw, poll), 0},
	{"max_services=%s", offsetof(struct raw, max_services), 0},
	{"host=%s", offsetof(struct raw, host), 0},
	{"etcd_prefix=%s", offsetof(struct raw, etcd_prefix), 0},
	{"etcd_ttl=%s", offsetof(struct raw, etcd_ttl), 0},
	{"address=%s", offsetof(struct raw, address), 0},
	FUSE_OPT_KEY("etcd=", KEY_ETCD),
	OPT("reap", reap),
	OPT("ro", ro),
	/* fuse_opt runs every template that matches: these end an etcd= list */
	FUSE_OPT_KEY("probe_interval=", KEY_CLOSE),
	FUSE_OPT_KEY("probe_timeout=", KEY_CLOSE),
	FUSE_OPT_KEY("grace=", KEY_CLOSE),
	FUSE_OPT_KEY("poll=", KEY_CLOSE),
	FUSE_OPT_KEY("max_services=", KEY_CLOSE),
	FUSE_OPT_KEY("host=", KEY_CLOSE),
	FUSE_OPT_KEY("etcd_prefix=", KEY_CLOSE),
	FUSE_OPT_KEY("etcd_ttl=", KEY_CLOSE),
	FUSE_OPT_KEY("address=", KEY_CLOSE),
	FUSE_OPT_KEY("reap", KEY_CLOSE),
	FUSE_OPT_KEY("ro", KEY_CLOSE),
	FUSE_OPT_END,
};

/* Seconds: a decimal number in [MIN, MAX]. */
static int parse_seconds(const char *name, const char *s, double min, double max, double *ret,
			 char *err, size_t errsize)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
		snprintf(err, errsize,
			 "invalid value for -o %s: '%s' (expected seconds from %g to %g)", name, s,
			 min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static int parse_count(const char *name, const char *s, unsigned long min, unsigned long max,
		       unsigned long *ret, char *err, size_t errsize)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		snprintf(err, errsize, "invalid value for -o %s: '%s' (expected %lu to %lu)", name,
			 s, min, max);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static bool is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

/*
 * etcd=URL[,URL...]: -o splits at commas, so the URLs after the first come
 * as options of their own. A URL continues the etcd= list before it.
 */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *raw = data;

	(void)outargs;
	if (key == KEY_ETCD) {
		if (raw->etcd.len)
			svcfs_buf_add(&raw->etcd, ",", 1);
		svcfs_buf_adds(&raw->etcd, arg + strlen("etcd="));
		raw->etcd_given = raw->etcd_open = true;
		return 0;
	}
	if (key == KEY_CLOSE) {
		raw->etcd_open = false;
		return 0;
	}
	if (key == FUSE_OPT_KEY_OPT && is_url(arg)) {
		if (!raw->etcd_open) {
			if (!raw->stray)
				raw->stray = strdup(arg);
			return 0;
		}
		svcfs_buf_add(&raw->etcd, ",", 1);
		svcfs_buf_adds(&raw->etcd, arg);
		return 0;
	}
	if (key == FUSE_OPT_KEY_OPT)
		raw->etcd_open = false;
	return 1; /* libfuse's, or an argument */
}

bool options_host_ok(const char *host)
{
	size_t len = strlen(host);
	return len <= SVCFS_HOST_MAX && svcfs_name_safe_key(host, len);
}

/* The etcd options: each URL http(s)://..., a host name, a prefix /.../. */
static int parse_cluster(struct raw *raw, struct svcfs_options *o, char *err, size_t errsize)
{
	const char *needs = raw->host          ? "host"
	                    : raw->etcd_prefix ? "etcd_prefix"
	                    : raw->etcd_ttl    ? "etcd_ttl"
	                    : raw->address     ? "address"
	                                       : NULL;
	unsigned long ttl = SVCFS_ETCD_TTL_DEFAULT;
	char hostname[256];
	int r;

	if (raw->stray) {
		snprintf(err, errsize, "unexpected option '%s' (an etcd URL goes after -o etcd=)",
		         raw->stray);
		return -EINVAL;
	}
	if (!raw->etcd_given) {
		if (needs) {
			snprintf(err, errsize, "-o %s needs -o etcd=URL (it is for several hosts)",
			         needs);
			return -EINVAL;
		}
		return 0;
	}
	if (raw->etcd.failed) {
		snprintf(err, errsize, "-o etcd: out of memory");
		return -ENOMEM;
	}
	{
		/* each URL: http(s)://HOST..., the list within the client's bounds */
		char *list = raw->etcd.data ? raw->etcd.data : "", *url;
		char *copy = strdup(list), *rest = copy;
		size_t n = 0;
		bool bad = !copy;

		/* strsep, not strtok: an empty item ("etcd=" twice, ",,") is bad */
		while (!bad && (url = strsep(&rest, ",")) != NULL) {
			n++;
			bad = !is_url(url) || !url[strncmp(url, "https://", 8) == 0 ? 8 : 7] ||
			      strlen(url) >= 512;
			if (bad)
				snprintf(err, errsize,
				         "invalid value for -o etcd: '%s' (expected http://HOST:PORT, "
				         "several separated by commas)",
				         url);
		}
		free(copy);
		if (!bad && (n == 0 || n > 16)) {
			snprintf(err, errsize,
			         "invalid value for -o etcd: '%s' (expected 1 to 16 URLs "
			         "http://HOST:PORT separated by commas)",
			         list);
			bad = true;
		}
		if (bad)
			return -EINVAL;
	}
	if (raw->etcd_ttl && (r = parse_count("etcd_ttl", raw->etcd_ttl, SVCFS_ETCD_TTL_MIN,
	                                      SVCFS_ETCD_TTL_MAX, &ttl, err, errsize)) < 0)
		return r;
	o->etcd_ttl = (unsigned)ttl;
	if (!raw->host) {
		if (gethostname(hostname, sizeof(hostname)) < 0) {
			snprintf(err, errsize, "cannot read this host's name (%s): give -o host=NAME",
			         strerror(errno));
			return -EINVAL;
		}
		hostname[sizeof(hostname) - 1] = '\0';
	}
	if (!options_host_ok(raw->host ? raw->host : hostname)) {
		snprintf(err, errsize,
		         "invalid value for -o host: '%s' (expected 1 to %d bytes, no '/', no control "
		         "character, not starting with '.')",
		         raw->host ? raw->host : hostname, SVCFS_HOST_MAX);
		return -EINVAL;
	}
	if (raw->etcd_prefix &&
	    (raw->etcd_prefix[0] != '/' || strlen(raw->etcd_prefix) > 200 ||
	     strpbrk(raw->etcd_prefix, "\n\r\t"))) {
		snprintf(err, errsize,
		         "invalid value for -o etcd_prefix: '%s' (expected a key prefix starting with "
		         "'/', at most 200 bytes)",
		         raw->etcd_prefix);
		return -EINVAL;
	}
	if (raw->address && (!raw->address[0] || strlen(raw->address) > 253 ||
	                     strpbrk(raw->address, "/ \t\n\"\\"))) {
		snprintf(err, errsize,
		         "invalid value for -o address: '%s' (expected a host name or IP address)",
		         raw->address);
		return -EINVAL;
	}
	o->etcd = svcfs_buf_steal(&raw->etcd, NULL);
	o->host = strdup(raw->host ? raw->host : hostname);
	o->address = strdup(raw->address ? raw->address : o->host ? o->host : "");
	{
		const char *p = raw->etcd_prefix ? raw->etcd_prefix : SVCFS_ETCD_PREFIX;
		size_t len = strlen(p);
		o->etcd_prefix = malloc(len + 2);
		if (o->etcd_prefix) {
			memcpy(o->etcd_prefix, p, len + 1);
			if (p[len - 1] != '/')
				strcpy(o->etcd_prefix + len, "/");
		}
	}
	if (!o->etcd || !o->host || !o->address || !o->etcd_prefix) {
		snprintf(err, errsize, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

void options_free(struct svcfs_options *o)
{
	free(o->etcd);
	free(o->host);
	free(o->etcd_prefix);
	free(o->address);
	o->etcd = o->host = o->etcd_prefix = o->address = NULL;
}

int options_parse(struct fuse_args *args, struct svcfs_options *ret, char *err, size_t errsize)
{
	struct raw raw = {0};
	struct svcfs_options o = {
		.probe_interval = 2.0,
		.probe_timeout_ms = 250,
		.grace = 1.0,
		.poll = 0,
		.max_services = SVCFS_MAX_SERVICES_DEFAULT,
	};
	unsigned long ms;
	int r = 0;

	svcfs_buf_init(&raw.etcd);
	if (fuse_opt_parse(args, &raw, opts, opt_proc) < 0) {
		snprintf(err, errsize, "cannot parse options");
		return -EINVAL;
	}
	o.reap = raw.reap;
	if (raw.ro) {
		snprintf(err, errsize,
			 "-o ro is not supported: the view is read-only to users already, and a "
			 "read-only mount cannot carry inotify events");
		r = -EINVAL;
		goto out;
	}
	if (raw.probe_interval &&
	    (r = parse_seconds("probe_interval", raw.probe_interval, 0.01, 86400,
			       &o.probe_interval, err, errsize)) < 0)
		goto out;
	if (raw.probe_timeout) {
		if ((r = parse_count("probe_timeout", raw.probe_timeout, 1, 60000, &ms, err,
				     errsize)) < 0)
			goto out;
		o.probe_timeout_ms = (unsigned)ms;
	}
	if (raw.grace &&
	    (r = parse_seconds("grace", raw.grace, 0, 86400, &o.grace, err, errsize)) < 0)
		goto out;
	if (raw.poll && (r = parse_seconds("poll", raw.poll, 0.01, 86400, &o.poll, err, errsize)) < 0)
		goto out;
	if (raw.max_services &&
	    (r = parse_count("max_services", raw.max_services, 1, 10000000, &o.max_services, err,
			     errsize)) < 0)
		goto out;
	if ((r = parse_cluster(&raw, &o, err, errsize)) < 0) {
		options_free(&o);
		goto out;
	}
	*ret = o;
out:
	free(raw.probe_interval);
	free(raw.probe_timeout);
	free(raw.grace);
	free(raw.poll);
	free(raw.max_services);
	free(raw.host);
	free(raw.etcd_prefix);
	free(raw.etcd_ttl);
	free(raw.address);
	free(raw.stray);
	svcfs_buf_free(&raw.etcd);
	return r;
}

void options_usage(void)
{
	printf("svcfs options:\n"
	       "    -o probe_interval=SECONDS  full liveness check interval (default 2)\n"
	       "    -o probe_timeout=MS        timeout of a connect/health probe (default 250)\n"
	       "    -o grace=SECONDS           time a refused socket is given (default 1)\n"

	       "    -o reap                    delete stale socket files (and their .json, .pid)\n"
	       "    -o poll=SECONDS            rescan BACKING by polling instead of inotify\n"
	       "    -o max_services=N          most services shown (default 100000)\n"
	       "  several hosts (etcd):\n"
	       "    -o etcd=URL[,URL...]       publish and mirror services through etcd\n"
	       "    -o host=NAME               this host's name (default: its hostname)\n"
	       "    -o address=ADDR            where other hosts reach its TCP endpoints\n"
	       "                               (default: the host name)\n"
	       "    -o etcd_prefix=PREFIX      key prefix (default /svcfs/)\n"
	       "    -o etcd_ttl=SECONDS        lease TTL: how long a dead host stays listed\n"
	       "                               (default 5, at least 2)\n");
}
