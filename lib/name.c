/*
 * Name rules of SPEC §2: which backing file names the daemon looks at, how a
 * file name splits into a service stem and a sidecar suffix, which sidecar
 * keys can become file names in the view, and the -pidN/-portN tokens.
 * Pure functions: no I/O, no allocation.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "svcfs-internal.h"

#define PID_TOKEN_MAX  4194304L /* PID_MAX_LIMIT on 64-bit Linux */
#define PORT_TOKEN_MAX 65535L

bool svcfs_name_hidden(const char *name)
{
	return name[0] == '\0' || name[0] == '.';
}

enum svcfs_suffix svcfs_name_split(const char *file, size_t *ret_stemlen)
{
	static const struct {
		const char *text;
		size_t len;
		enum svcfs_suffix kind;
	} suffixes[] = {
	    {".sock", 5, SVCFS_SUFFIX_SOCK},
	    {".json", 5, SVCFS_SUFFIX_JSON},
	    {".lock", 5, SVCFS_SUFFIX_LOCK},
	    {".pid", 4, SVCFS_SUFFIX_PID},
	};
	size_t len = strlen(file);

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		size_t sl = suffixes[i].len;
		if (len > sl && memcmp(file + len - sl, suffixes[i].text, sl) == 0) {
			*ret_stemlen = len - sl;
			return suffixes[i].kind;
		}
	}
	*ret_stemlen = len;
	return SVCFS_SUFFIX_NONE;
}

bool svcfs_name_safe_key(const char *key, size_t len)
{
	if (len == 0 || len > SVCFS_NAME_MAX || key[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)key[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

static bool is_token_delim(char c)
{
	return c == '-' || c == '_' || c == '.';
}

/*
 * If a token KEY followed by digits starts at P and ends at a delimiter or
 * the end of the name, return its value in [1, max]; else 0.
 */
static long token_value(const char *p, const char *key, size_t keylen, long max)
{
	long v = 0;
	size_t i;

	if (strncmp(p, key, keylen) != 0)
		return 0;
	p += keylen;
	for (i = 0; p[i] >= '0' && p[i] <= '9'; i++) {
		if (v > max)
			return 0; /* keep consuming would overflow; already out of range */
		v = v * 10 + (p[i] - '0');
	}
	if (i == 0 || (p[i] != '\0' && !is_token_delim(p[i])))
		return 0;
	return v >= 1 && v <= max ? v : 0;
}

void svcfs_name_tokens(const char *name, struct svcfs_tokens *ret)
{
	struct svcfs_tokens t = {0, 0};

	for (const char *p = name; *p; p++) {
		if (p != name && !is_token_delim(p[-1]))
			continue;
		if (!t.pid)
			t.pid = token_value(p, "pid", 3, PID_TOKEN_MAX);
		if (!t.port)
			t.port = token_value(p, "port", 4, PORT_TOKEN_MAX);
	}
	*ret = t;
}

int svcfs_name_path_check(const char *name, bool strict, size_t *ret_ncomp)
{
	size_t ncomp = 0;

	if (!name || !*name)
		return -EINVAL;
	for (const char *p = name;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (strict ? !svcfs_name_safe_key(p, len)
		           : len == 0 || len > SVCFS_NAME_MAX || p[0] == '.')
			return -EINVAL;
		if (++ncomp > SVCFS_GROUP_DEPTH_MAX + 1)
			return -EINVAL;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (ret_ncomp)
		*ret_ncomp = ncomp;
	return 0;
}

int svcfs_backing_socket(int dirfd, const char *name, char buf[SVCFS_NAME_MAX + 1],
                         const char **ret_file, struct stat *ret_st)
{
	struct stat st;
	size_t stemlen;

	if (snprintf(buf, SVCFS_NAME_MAX + 1, "%s.sock", name) <= SVCFS_NAME_MAX &&
	    fstatat(dirfd, buf, &st, 0) == 0 && S_ISSOCK(st.st_mode)) {
		*ret_file = buf;
	} else if (svcfs_name_split(name, &stemlen) != SVCFS_SUFFIX_SOCK &&
	           fstatat(dirfd, name, &st, 0) == 0 && S_ISSOCK(st.st_mode)) {
		*ret_file = name;
	} else {
		return -ENOENT;
	}
	*ret_st = st;
	return 0;
}

void svcfs_unescape_octal(char *s)
{
	char *w = s;

	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}
