/*
 * mount.fuse.svcfs — the mount(8) helper for svcfs.
 *
 *   mount.fuse.svcfs BACKING MOUNTPOINT [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t fuse.svcfs]
 *
 * mount(8) runs it for `mount -t fuse.svcfs`, for fstab lines of type
 * fuse.svcfs and for `mount -a` (mount(8), "EXTERNAL HELPERS"). It sorts
 * the options (the table below): those only mount(8), fstab and systemd
 * read are dropped, FUSE/kernel options and svcfs options go to the daemon,
 * `mkdir[=MODE]` is the helper's own, anything else is refused before
 * anything runs. Then it runs the daemon, which returns once the mount is
 * live and carries on in the background (logging to syslog), and turns the
 * daemon's exit status into mount(8)'s.
 *
 * Each judgement is made in one place: the helper judges option names, the
 * daemon judges svcfs option values and the paths (one line naming the
 * option or the path, exit 2 or 1), so no rule is written twice.
 *
 * Exit status, as mount(8)'s RETURN CODES:
 *   0  mounted (with -f: the options are good)
 *   1  incorrect invocation or a bad option (the daemon's exit 2)
 *   2  system error (out of memory)
 *   32 mount failure (the daemon's exit 1, a daemon that cannot be run or
 *      dies, a BACKING that cannot be created, a namespace that cannot be
 *      entered)
 *
 * Which daemon: $SVCFS_DAEMON if set (the tests run the build tree's
 * daemon this way), else SVCFS_DAEMON_PATH, fixed at build time. The helper
 * is not meant to be setuid: if it is, it drops to the caller's user first
 * and ignores $SVCFS_DAEMON (secure_getenv), so the bit gives nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SVCFS_DAEMON_PATH
#error "SVCFS_DAEMON_PATH must be defined: the installed svcfs daemon"
#endif
#ifndef SVCFS_VERSION
#define SVCFS_VERSION "unknown"
#endif

#define PROG "mount.fuse.svcfs"

/* mount(8)'s exit codes */
#define MOUNT_EX_OK      0
#define MOUNT_EX_USAGE   1
#define MOUNT_EX_SYSERR  2
#define MOUNT_EX_FAILURE 32

/* the daemon's exit codes (README, "Running it") */
#define SVCFS_EX_FAILURE 1
#define SVCFS_EX_USAGE   2

/* Mode of a BACKING created by `mkdir` without a mode. */
#define BACKING_MODE_ROOT 0755
#define BACKING_MODE_USER 0700

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

extern char **environ;

enum rule_kind {
	RULE_DROP,   /* mount(8)'s, fstab's, systemd's: nothing to svcfs */
	RULE_PASS,   /* FUSE and kernel options: the daemon takes them */
	RULE_SVCFS,  /* svcfs's own: passed on, the daemon checks the value */
	RULE_MKDIR,  /* the helper's own: create a missing BACKING */
	RULE_REFUSE, /* known, but not with svcfs: `why` says why */
};

enum rule_value {
	VAL_NONE,     /* name */
	VAL_REQUIRED, /* name=value */
	VAL_OPTIONAL, /* name or name=value */
	VAL_PREFIX,   /* any option starting with name */
};

struct rule {
	const char *name;
	enum rule_value value;
	enum rule_kind kind;
	const char *why;
};

/*
 * Every option the helper knows. A new svcfs option of the daemon needs a
 * line here too; until then it is refused as unknown (or dropped with -s).
 */
static const struct rule rules[] = {
    /* read by mount(8), fstab and systemd; mount(8) drops some itself */
    {"defaults", VAL_NONE, RULE_DROP, NULL},
    {"auto", VAL_NONE, RULE_DROP, NULL},
    {"noauto", VAL_NONE, RULE_DROP, NULL},
    {"user", VAL_OPTIONAL, RULE_DROP, NULL},
    {"nouser", VAL_NONE, RULE_DROP, NULL},
    {"users", VAL_NONE, RULE_DROP, NULL},
    {"nousers", VAL_NONE, RULE_DROP, NULL},
    {"owner", VAL_NONE, RULE_DROP, NULL},
    {"noowner", VAL_NONE, RULE_DROP, NULL},
    {"group", VAL_NONE, RULE_DROP, NULL},
    {"nogroup", VAL_NONE, RULE_DROP, NULL},
    {"_netdev", VAL_NONE, RULE_DROP, NULL},
    {"nofail", VAL_NONE, RULE_DROP, NULL},
    {"comment", VAL_REQUIRED, RULE_DROP, NULL},
    {"helper", VAL_REQUIRED, RULE_DROP, NULL},
    {"uhelper", VAL_REQUIRED, RULE_DROP, NULL},
    {"x-", VAL_PREFIX, RULE_DROP, NULL},
    {"X-", VAL_PREFIX, RULE_DROP, NULL},
    /* what every FUSE mount does anyway, and libfuse does not take */
    {"relatime", VAL_NONE, RULE_DROP, NULL},
    {"diratime", VAL_NONE, RULE_DROP, NULL},
    {"nostrictatime", VAL_NONE, RULE_DROP, NULL},
    {"nolazytime", VAL_NONE, RULE_DROP, NULL},
    {"symfollow", VAL_NONE, RULE_DROP, NULL},

    /* kernel mount flags libfuse passes on (`ro` the daemon refuses itself) */
    {"rw", VAL_NONE, RULE_PASS, NULL},
    {"ro", VAL_NONE, RULE_PASS, NULL},
    {"suid", VAL_NONE, RULE_PASS, NULL},
    {"nosuid", VAL_NONE, RULE_PASS, NULL},
    {"dev", VAL_NONE, RULE_PASS, NULL},
    {"nodev", VAL_NONE, RULE_PASS, NULL},
    {"exec", VAL_NONE, RULE_PASS, NULL},
    {"noexec", VAL_NONE, RULE_PASS, NULL},
    {"sync", VAL_NONE, RULE_PASS, NULL},
    {"async", VAL_NONE, RULE_PASS, NULL},
    {"dirsync", VAL_NONE, RULE_PASS, NULL},
    {"atime", VAL_NONE, RULE_PASS, NULL},
    {"noatime", VAL_NONE, RULE_PASS, NULL},
    {"context", VAL_REQUIRED, RULE_PASS, NULL},
    {"fscontext", VAL_REQUIRED, RULE_PASS, NULL},
    {"defcontext", VAL_REQUIRED, RULE_PASS, NULL},
    {"rootcontext", VAL_REQUIRED, RULE_PASS, NULL},
    /* FUSE */
    {"allow_other", VAL_NONE, RULE_PASS, NULL},
    {"allow_root", VAL_NONE, RULE_PASS, NULL},
    {"default_permissions", VAL_NONE, RULE_PASS, NULL},
    {"auto_unmount", VAL_NONE, RULE_PASS, NULL},
    {"max_threads", VAL_REQUIRED, RULE_PASS, NULL},
    {"max_idle_threads", VAL_REQUIRED, RULE_PASS, NULL},
    {"clone_fd", VAL_NONE, RULE_PASS, NULL},

    /* svcfs (SPEC §1) */
    {"probe_interval", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"probe_timeout", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"grace", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"reap", VAL_NONE, RULE_SVCFS, NULL},
    {"poll", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"max_services", VAL_REQUIRED, RULE_SVCFS, NULL},
    /* several hosts (SPEC §8) */
    {"etcd", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"host", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"address", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"etcd_prefix", VAL_REQUIRED, RULE_SVCFS, NULL},
    {"etcd_ttl", VAL_REQUIRED, RULE_SVCFS, NULL},
    /*
     * etcd=URL,URL: the list splits at its commas like every option list,
     * so the URLs after the first come as options of their own. Each goes
     * on as one, in its place; the daemon joins them to the etcd= before
     * (and refuses one with no etcd= before it).
     */
    {"http://", VAL_PREFIX, RULE_SVCFS, NULL},
    {"https://", VAL_PREFIX, RULE_SVCFS, NULL},

    {"mkdir", VAL_OPTIONAL, RULE_MKDIR, NULL},

    {"fsname", VAL_REQUIRED, RULE_REFUSE, "svcfs sets it to BACKING"},
    {"subtype", VAL_REQUIRED, RULE_REFUSE, "svcfs sets it (the type is fuse.svcfs)"},
    {"debug", VAL_NONE, RULE_REFUSE,
     "it keeps svcfs in the foreground; run svcfs -f -d BACKING MOUNTPOINT instead"},
    {"max_read", VAL_REQUIRED, RULE_REFUSE, "svcfs does not support it"},
    {"rootmode", VAL_REQUIRED, RULE_REFUSE, "FUSE sets it itself"},
    {"user_id", VAL_REQUIRED, RULE_REFUSE, "FUSE sets it itself"},
    {"group_id", VAL_REQUIRED, RULE_REFUSE, "FUSE sets it itself"},
    {"fd", VAL_REQUIRED, RULE_REFUSE, "FUSE sets it itself"},
    {"blkdev", VAL_NONE, RULE_REFUSE, "svcfs has no block device"},
    {"blksize", VAL_REQUIRED, RULE_REFUSE, "svcfs has no block device"},
    {"strictatime", VAL_NONE, RULE_REFUSE, "FUSE mounts do not support it"},
    {"norelatime", VAL_NONE, RULE_REFUSE, "FUSE mounts do not support it"},
    {"nodiratime", VAL_NONE, RULE_REFUSE, "FUSE mounts do not support it"},
    {"lazytime", VAL_NONE, RULE_REFUSE, "FUSE mounts do not support it"},
    {"nosymfollow", VAL_NONE, RULE_REFUSE, "FUSE mounts do not support it"},
    {"remount", VAL_NONE, RULE_REFUSE, "umount, then mount again"},
};

struct helper {
	const char *backing;
	const char *mountpoint;
	const char *ns;      /* -N: a namespace file or a PID; NULL: ours */
	const char **olists; /* the arguments of -o, taken once every flag is known (-s) */
	int nolists;
	bool fake, verbose, sloppy;
	bool mkdir;
	bool mkdir_mode_set;
	mode_t mkdir_mode;
	char *opts; /* the daemon's -o list, escaped for fuse_opt; NULL if empty */
	size_t opts_len;
};

static void usage(void)
{
	printf("usage: " PROG
	       " BACKING MOUNTPOINT [-sfnv] [-N NAMESPACE] [-o OPTIONS] [-t fuse.svcfs]\n"
	       "\n"
	       "Mount svcfs (the live services of the socket directory BACKING) on\n"
	       "MOUNTPOINT for mount(8): `mount -t fuse.svcfs BACKING MOUNTPOINT -o OPTIONS`\n"
	       "or an /etc/fstab line of type fuse.svcfs.\n"
	       "\n"
	       "  -o OPTIONS    FUSE, kernel and svcfs options (svcfs(8)), and\n"
	       "                mkdir[=MODE]: create a missing BACKING (0755 for root, else 0700)\n"
	       "  -f            fake: check the options, mount nothing\n"
	       "  -v            print the daemon's command line\n"
	       "  -s            sloppy: ignore options svcfs does not take (with a warning)\n"
	       "  -n            accepted (there is no /etc/mtab to write)\n"
	       "  -N NAMESPACE  mount in that mount namespace (a file such as\n"
	       "                /proc/PID/ns/mnt, or a PID)\n"
	       "  -t TYPE       fuse.svcfs\n"
	       "\n"
	       "Exit status: 0 mounted, 1 bad invocation or option, 2 system error,\n"
	       "32 mount failure. See mount.fuse.svcfs(8).\n");
}

/* The rule for OPT ("name" or "name=value"), NULL if none. */
static const struct rule *rule_find(const char *opt)
{
	size_t n = strcspn(opt, "=");

	for (size_t i = 0; i < ARRAY_SIZE(rules); i++) {
		const struct rule *r = &rules[i];
		size_t len = strlen(r->name);

		if (r->value == VAL_PREFIX ? strncmp(opt, r->name, len) == 0
		                           : len == n && strncmp(opt, r->name, n) == 0)
			return r;
	}
	return NULL;
}

/*
 * Next option of a comma-separated list at *P, NUL-terminated in place;
 * NULL at the end. Double quotes protect commas, as in libmount
 * (`context="a,b"`).
 */
static char *next_option(char **p)
{
	char *s = *p, *start = s;
	bool quoted = false;

	if (!s)
		return NULL;
	for (; *s; s++) {
		if (*s == '"')
			quoted = !quoted;
		else if (*s == ',' && !quoted)
			break;
	}
	if (*s) {
		*s = '\0';
		*p = s + 1;
	} else {
		*p = NULL;
	}
	return start;
}

/* Append OPT to the daemon's -o list, with ',' and '\' escaped as fuse_opt reads them. */
static int opts_add(struct helper *h, const char *opt)
{
	size_t need = h->opts_len + 2 * strlen(opt) + 2;
	char *buf = realloc(h->opts, need), *p;

	if (!buf)
		return -ENOMEM;
	h->opts = buf;
	p = buf + h->opts_len;
	if (h->opts_len)
		*p++ = ',';
	for (const char *s = opt; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	h->opts_len = (size_t)(p - buf);
	return 0;
}

/* mkdir=MODE: octal, at most 07777. */
static int parse_mode(const char *s, mode_t *ret)
{
	unsigned long v;
	char *end;

	if (!*s || strspn(s, "01234567") != strlen(s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 8);
	if (errno || *end || v > 07777)
		return -EINVAL;
	*ret = (mode_t)v;
	return 0;
}

/* One option of -o. Returns 0, or MOUNT_EX_* after saying why. */
static int option_take(struct helper *h, const char *opt)
{
	const struct rule *r;
	const char *eq = strchr(opt, '=');
	const char *why = NULL;

	if (!*opt)
		return 0; /* "a,,b" or a trailing comma: nothing */
	r = rule_find(opt);
	if (!r)
		why = "unknown option";
	else if (r->kind == RULE_REFUSE)
		why = r->why;
	if (why) {
		if (h->sloppy) {
			fprintf(stderr, PROG ": ignoring option '%s': %s\n", opt,
			        r ? r->why : "unknown option");
			return 0;
		}
		if (r)
			fprintf(stderr, PROG ": option '%s' is not supported: %s\n", opt, why);
		else
			fprintf(stderr, PROG ": unknown option '%s'\n", opt);
		return MOUNT_EX_USAGE;
	}
	if (r->value == VAL_NONE && eq) {
		fprintf(stderr, PROG ": option '%.*s' takes no value: '%s'\n", (int)(eq - opt), opt,
		        opt);
		return MOUNT_EX_USAGE;
	}
	if (r->value == VAL_REQUIRED && !eq) {
		fprintf(stderr, PROG ": option '%s' needs a value: %s=...\n", opt, opt);
		return MOUNT_EX_USAGE;
	}
	switch (r->kind) {
	case RULE_DROP:
		return 0;
	case RULE_MKDIR:
		h->mkdir = true;
		h->mkdir_mode_set = eq != NULL;
		if (eq && parse_mode(eq + 1, &h->mkdir_mode) < 0) {
			fprintf(stderr,
			        PROG
			        ": invalid value for mkdir: '%s' (expected an octal mode such as "
			        "0750)\n",
			        eq + 1);
			return MOUNT_EX_USAGE;
		}
		return 0;
	case RULE_PASS:
	case RULE_SVCFS:
		if (opts_add(h, opt) < 0) {
			fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
			return MOUNT_EX_SYSERR;
		}
		return 0;
	case RULE_REFUSE:
		break; /* handled above */
	}
	return 0;
}

/* The argument of -o: a comma-separated list. */
static int options_take(struct helper *h, const char *list)
{
	char *copy = strdup(list), *p = copy, *opt;
	int r = 0;

	if (!copy) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return MOUNT_EX_SYSERR;
	}
	while (r == 0 && (opt = next_option(&p)))
		r = option_take(h, opt);
	free(copy);
	return r;
}

static int type_check(const char *type)
{
	if (strcmp(type, "fuse.svcfs") == 0 || strcmp(type, "svcfs") == 0)
		return 0;
	fprintf(stderr, PROG ": unsupported type '%s' (expected fuse.svcfs)\n", type);
	return MOUNT_EX_USAGE;
}

/*
 * The command line, in mount(8)'s order or any other: flags may be
 * grouped (-fv), -o/-N/-t take the next argument or the rest of theirs.
 * Returns 0, -1 after --help/--version (exit 0), or MOUNT_EX_*.
 */
static int parse_args(int argc, char **argv, struct helper *h)
{
	const char *pos[2] = {NULL, NULL};
	int npos = 0, r;
	bool opts_done = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (opts_done || a[0] != '-' || !a[1]) {
			if (npos >= 2) {
				fprintf(stderr,
				        PROG ": unexpected argument '%s' after MOUNTPOINT\n", a);
				return MOUNT_EX_USAGE;
			}
			pos[npos++] = a;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage();
			return -1;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf(PROG " (svcfs %s)\n", SVCFS_VERSION);
			return -1;
		}
		for (const char *c = a + 1; *c; c++) {
			const char *val;

			switch (*c) {
			case 's':
				h->sloppy = true;
				continue;
			case 'f':
				h->fake = true;
				continue;
			case 'n':
				continue;
			case 'v':
				h->verbose = true;
				continue;
			case 'o':
			case 'N':
			case 't':
				break;
			default:
				fprintf(stderr, PROG ": unknown flag -%c\n", *c);
				return MOUNT_EX_USAGE;
			}
			val = c[1] ? c + 1 : (i + 1 < argc ? argv[++i] : NULL);
			if (!val) {
				fprintf(stderr, PROG ": -%c needs an argument\n", *c);
				return MOUNT_EX_USAGE;
			}
			if (*c == 't' && (r = type_check(val)) != 0)
				return r;
			if (*c == 'N')
				h->ns = val;
			if (*c == 'o')
				h->olists[h->nolists++] = val;
			break;
		}
	}
	if (npos < 2 || !*pos[0] || !*pos[1]) {
		fprintf(stderr, PROG ": %s\n",
		        npos < 2 ? "missing BACKING or MOUNTPOINT" : "empty BACKING or MOUNTPOINT");
		fprintf(stderr, "usage: " PROG " BACKING MOUNTPOINT [-sfnv] [-N NAMESPACE] "
		                "[-o OPTIONS] [-t fuse.svcfs] (see --help)\n");
		return MOUNT_EX_USAGE;
	}
	h->backing = pos[0];
	h->mountpoint = pos[1];
	return 0;
}

/* -N: a namespace file (mount(8) gives /proc/PID/fd/N) or a PID. */
static int namespace_enter(const char *ns)
{
	char path[32];
	const char *p = ns;
	size_t n = strlen(ns);
	int fd, r = 0;

	if (n > 0 && n <= 10 && strspn(ns, "0123456789") == n) {
		snprintf(path, sizeof(path), "/proc/%s/ns/mnt", ns);
		p = path;
	}
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else if (setns(fd, CLONE_NEWNS) < 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		fprintf(stderr, PROG ": cannot enter mount namespace %s: %s\n", ns, strerror(-r));
	return r;
}

/* chmod of the directory NAME in DFD, never through a symlink. */
static int dir_chmod(int dfd, const char *name, mode_t mode)
{
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) < 0)
		r = -errno;
	close(fd);
	return r;
}

/*
 * Create BACKING if it is missing: with exactly MODE whatever the umask
 * (mkdir(2) ignores the set-id bits: a chmod adds them), as the calling user, and never through a
 * symlink at its last component (mkdirat does not follow one, so a dangling symlink cannot make us
 * create a directory wherever it points). Parents must exist. An existing BACKING, or one we cannot
 * even look at, is left to the daemon to judge.
 */
static int backing_create(const struct helper *h, mode_t mode)
{
	char *copy = strdup(h->backing), *slash, *base;
	const char *parent;
	struct stat st;
	mode_t mask;
	int pfd = -1, r = 0;

	if (!copy) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return MOUNT_EX_SYSERR;
	}
	for (size_t n = strlen(copy); n > 1 && copy[n - 1] == '/'; n--)
		copy[n - 1] = '\0';
	slash = strrchr(copy, '/');
	if (!slash) {
		parent = ".";
		base = copy;
	} else if (slash == copy) {
		parent = "/";
		base = slash + 1;
	} else {
		*slash = '\0';
		parent = copy;
		base = slash + 1;
	}
	if (!*base)
		goto out; /* "/": it exists */
	pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0) {
		fprintf(stderr, PROG ": cannot create BACKING %s: %s: %s\n", h->backing, parent,
		        strerror(errno));
		r = MOUNT_EX_FAILURE;
		goto out;
	}
	if (fstatat(pfd, base, &st, 0) == 0 || errno != ENOENT)
		goto out;
	if (h->fake) {
		if (h->verbose)
			printf(PROG ": would create BACKING %s (mode %04o)\n", h->backing,
			       (unsigned)mode);
		goto out;
	}
	mask = umask(0);
	if (mkdirat(pfd, base, mode) < 0)
		r = -errno;
	umask(mask);
	if (r == 0 && (mode & (S_ISUID | S_ISGID)) && (r = dir_chmod(pfd, base, mode)) < 0) {
		fprintf(stderr, PROG ": cannot set the mode of BACKING %s: %s\n", h->backing,
		        strerror(-r));
		r = MOUNT_EX_FAILURE;
		goto out;
	}
	if (r == 0) {
		if (h->verbose)
			printf(PROG ": created BACKING %s (mode %04o)\n", h->backing,
			       (unsigned)mode);
		goto out;
	}
	if (r == -EEXIST && fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISLNK(st.st_mode)) {
		r = 0; /* made by someone else meanwhile */
		goto out;
	}
	if (r == -EEXIST)
		fprintf(stderr,
		        PROG
		        ": cannot create BACKING %s: it is a dangling symlink (not followed)\n",
		        h->backing);
	else
		fprintf(stderr, PROG ": cannot create BACKING %s: %s\n", h->backing, strerror(-r));
	r = MOUNT_EX_FAILURE;
out:
	if (pfd >= 0)
		close(pfd);
	free(copy);
	return r;
}

/* PATH as an argument the daemon cannot take for an option: "./-x" for "-x". */
static char *path_arg(const char *path)
{
	char *s;

	if (path[0] != '-')
		return strdup(path);
	if (asprintf(&s, "./%s", path) < 0)
		return NULL;
	return s;
}

/* ARG as a shell would need it, for -v. */
static void print_quoted(const char *arg)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                           "0123456789_@%+=:,./-";

	if (*arg && strspn(arg, safe) == strlen(arg)) {
		fputs(arg, stdout);
		return;
	}
	putchar('\'');
	for (const char *s = arg; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", stdout);
		else
			putchar(*s);
	}
	putchar('\'');
}

/* The daemon's exit status as mount(8)'s, with a line when the daemon could not say it. */
static int daemon_status(const char *daemon, int st)
{
	if (WIFEXITED(st)) {
		switch (WEXITSTATUS(st)) {
		case 0:
			return MOUNT_EX_OK;
		case SVCFS_EX_USAGE:
			return MOUNT_EX_USAGE; /* the daemon said which option */
		case SVCFS_EX_FAILURE:
			return MOUNT_EX_FAILURE; /* the daemon said which path, or why */
		default:
			fprintf(stderr, PROG ": %s exited with status %d\n", daemon,
			        WEXITSTATUS(st));
			return MOUNT_EX_FAILURE;
		}
	}
	fprintf(stderr, PROG ": %s was killed by signal %d (%s)\n", daemon, WTERMSIG(st),
	        strsignal(WTERMSIG(st)));
	return MOUNT_EX_FAILURE;
}

/*
 * Run the daemon and wait for it: without -f it forks once the mount is
 * live and its first process exits, so when waitpid returns the mount is
 * there (or the daemon said why not).
 */
static int daemon_run(const struct helper *h, const char *daemon)
{
	char *backing = path_arg(h->backing), *mountpoint = path_arg(h->mountpoint);
	char *argv[6];
	int argc = 0, st, r;
	pid_t pid;

	if (!backing || !mountpoint) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		r = MOUNT_EX_SYSERR;
		goto out;
	}
	argv[argc++] = (char *)daemon;
	if (h->opts) {
		argv[argc++] = "-o";
		argv[argc++] = h->opts;
	}
	argv[argc++] = backing;
	argv[argc++] = mountpoint;
	argv[argc] = NULL;
	if (h->verbose) {
		fputs(PROG ": running", stdout);
		for (int i = 0; i < argc; i++) {
			putchar(' ');
			print_quoted(argv[i]);
		}
		putchar('\n');
	}
	fflush(stdout);
	if (h->fake) {
		r = MOUNT_EX_OK;
		goto out;
	}
	/*
	 * The daemon outlives us: it keeps no descriptor of whoever ran
	 * mount(8) (a `$(mount ...)` would wait for it), and it is no main
	 * process of a service, whatever NOTIFY_SOCKET we were given.
	 */
	close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
	unsetenv("NOTIFY_SOCKET");
	r = posix_spawn(&pid, daemon, NULL, NULL, argv, environ);
	if (r != 0) {
		fprintf(stderr, PROG ": cannot run %s: %s\n", daemon, strerror(r));
		r = MOUNT_EX_FAILURE;
		goto out;
	}
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, PROG ": waiting for %s: %s\n", daemon, strerror(errno));
			r = MOUNT_EX_SYSERR;
			goto out;
		}
	}
	r = daemon_status(daemon, st);
out:
	free(backing);
	free(mountpoint);
	return r;
}

int main(int argc, char *argv[])
{
	struct helper h = {0};
	const char *daemon;
	int r;

	if (getauxval(AT_SECURE) && (setgid(getgid()) < 0 || setuid(getuid()) < 0)) {
		fprintf(stderr, PROG ": cannot drop privileges: %s\n", strerror(errno));
		return MOUNT_EX_SYSERR;
	}
	daemon = secure_getenv("SVCFS_DAEMON");
	if (!daemon || !*daemon)
		daemon = SVCFS_DAEMON_PATH;

	h.olists = calloc((size_t)argc, sizeof(*h.olists));
	if (!h.olists) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return MOUNT_EX_SYSERR;
	}
	r = parse_args(argc, argv, &h);
	if (r < 0) {
		r = MOUNT_EX_OK; /* --help, --version */
		goto out;
	}
	for (int i = 0; r == 0 && i < h.nolists; i++)
		r = options_take(&h, h.olists[i]);
	if (r != 0)
		goto out;
	if (h.ns && namespace_enter(h.ns) < 0) {
		r = MOUNT_EX_FAILURE;
		goto out;
	}
	if (h.mkdir) {
		mode_t mode = h.mkdir_mode_set ? h.mkdir_mode
		              : geteuid() == 0 ? BACKING_MODE_ROOT
		                               : BACKING_MODE_USER;
		if ((r = backing_create(&h, mode)) != 0)
			goto out;
	}
	r = daemon_run(&h, daemon);
out:
	free(h.olists);
	free(h.opts);
	return r;
}
