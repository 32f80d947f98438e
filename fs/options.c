/*
 * options — svcfs -o options. Values are taken as strings by fuse_opt and
 * checked here, so a bad value gets a message that names the option.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fuse_opt.h>

#include "options.h"

struct raw {
	char *probe_interval, *probe_timeout, *grace, *poll, *max_services;
	int reap, ro;
};

#define OPT(t, p) {t, offsetof(struct raw, p), 1}
static const struct fuse_opt opts[] = {
	{"probe_interval=%s", offsetof(struct raw, probe_interval), 0},
	{"probe_timeout=%s", offsetof(struct raw, probe_timeout), 0},
	{"grace=%s", offsetof(struct raw, grace), 0},
	{"poll=%s", offsetof(struct raw, poll), 0},
	{"max_services=%s", offsetof(struct raw, max_services), 0},
	OPT("reap", reap),
	OPT("ro", ro),
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

	if (fuse_opt_parse(args, &raw, opts, NULL) < 0) {
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
	*ret = o;
out:
	free(raw.probe_interval);
	free(raw.probe_timeout);
	free(raw.grace);
	free(raw.poll);
	free(raw.max_services);
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
	       "    -o max_services=N          most services shown (default 100000)\n");
}
