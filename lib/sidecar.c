/*
 * Sidecar metadata (SPEC §2): NAME.json holds one JSON object of at most
 * SVCFS_SIDECAR_MAX bytes. Parsing is strict and bounded (size, depth,
 * top-level keys) so that a hostile or broken sidecar costs a log line and
 * nothing else. Reading never follows a symlink and never blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svcfs-internal.h"

static bool is_json_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/*
 * Length of the number at P (RFC 8259 §6), or 0 if it is malformed or runs
 * on into more number characters. json-c's strict mode takes "00", "-01",
 * "00.5", "1." and "1.e5", and keeps a double's text as it was read: "1."
 * would come out of meta.json and .services.json as it went in.
 */
static size_t number_len(const unsigned char *p, size_t len)
{
	size_t i = 0;

	if (i < len && p[i] == '-')
		i++;
	if (i < len && p[i] == '0') {
		i++;
	} else if (i < len && is_digit(p[i])) {
		while (i < len && is_digit(p[i]))
			i++;
	} else {
		return 0;
	}
	if (i < len && p[i] == '.') {
		if (++i == len || !is_digit(p[i]))
			return 0;
		while (i < len && is_digit(p[i]))
			i++;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		if (i == len || !is_digit(p[i]))
			return 0;
		while (i < len && is_digit(p[i]))
			i++;
	}
	if (i < len && strchr("0123456789+-.eE", p[i]))
		return 0;
	return i;
}

/*
 * What json-c's strict mode still lets through, caught in one pass: invalid
 * UTF-8, raw control characters in strings, malformed numbers, and anything
 * outside strings that strict JSON cannot hold there (single quotes, NaN,
 * Infinity, comments). Also measures the nesting depth, counting empty
 * containers. Returns NULL if the text passes, else the reason.
 */
static const char *lint(const char *buf, size_t len, bool *ret_too_deep)
{
	static const char outside[] = " \t\n\r{}[],:0123456789-+.eEtrufalsn";
	const unsigned char *p = (const unsigned char *)buf;
	bool in_string = false;
	int depth = 0;

	*ret_too_deep = false;
	for (size_t i = 0; i < len;) {
		unsigned char c = p[i];
		if (c >= 0x80) {
			size_t n = svcfs_utf8_seq_len(p + i, len - i);
			if (n == 0)
				return "invalid UTF-8";
			if (!in_string)
				return "not strict JSON";
			i += n;
			continue;
		}
		if (in_string) {
			if (c == '"')
				in_string = false;
			else if (c == '\\')
				i++;       /* the escaped character; json-c checks the escape */
			else if (c < 0x20) /* RFC 8259 §7; DEL needs no escape */
				return "control character in a string";
		} else if (c == '"') {
			in_string = true;
		} else if (c == '{' || c == '[') {
			if (++depth > SVCFS_SIDECAR_DEPTH) {
				*ret_too_deep = true;
				return "nested too deeply";
			}
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == '-' || is_digit(c)) {
			size_t n = number_len(p + i, len - i);
			if (n == 0)
				return "malformed number";
			i += n;
			continue;
		} else if (!strchr(outside, c)) {
			return "not strict JSON";
		}
		i++;
	}
	return NULL;
}

int svcfs_sidecar_parse(const char *buf, size_t len, json_object **ret_obj, const char **ret_why)
{
	json_tokener *tok = NULL;
	json_object *obj = NULL;
	enum json_tokener_error jerr;
	size_t end;
	int r;

	if (len > SVCFS_SIDECAR_MAX) {
		*ret_why = "larger than 64 KiB";
		return -EFBIG;
	}
	if (memchr(buf, '\0', len)) {
		*ret_why = "contains a NUL byte";
		return -EINVAL;
	}
	{
		bool too_deep;
		const char *why = lint(buf, len, &too_deep);
		if (why) {
			*ret_why = why;
			return too_deep ? -E2BIG : -EINVAL;
		}
	}
	/* lint() has bounded the depth; json-c's own limit is only a backstop */
	tok = json_tokener_new_ex(SVCFS_SIDECAR_DEPTH + 2);
	if (!tok) {
		*ret_why = "out of memory";
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	if (!obj) {
		size_t first = 0;

		while (first < len && is_json_space(buf[first]))
			first++;
		if (jerr == json_tokener_success ||
		    (first < len && buf[first] != '{' && buf[first] != '[')) {
			/* null, or a number/string/literal json-c waits to see the end of */
			*ret_why = "not a JSON object";
			r = -EINVAL;
		} else if (jerr == json_tokener_error_depth) {
			*ret_why = "nested too deeply";
			r = -E2BIG;
		} else if (jerr == json_tokener_continue) {
			*ret_why = "truncated JSON";
			r = -EINVAL;
		} else {
			*ret_why = json_tokener_error_desc(jerr);
			r = -EINVAL;
		}
		goto out;
	}
	end = json_tokener_get_parse_end(tok);
	while (end < len && is_json_space(buf[end]))
		end++;
	if (end != len) {
		*ret_why = "text after the JSON object";
		r = -EINVAL;
		goto out;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		*ret_why = "not a JSON object";
		r = -EINVAL;
		goto out;
	}
	if (json_object_object_length(obj) > SVCFS_SIDECAR_KEYS_MAX) {
		*ret_why = "more than 256 top-level keys";
		r = -E2BIG;
		goto out;
	}
	*ret_obj = obj;
	obj = NULL;
	r = 0;
out:
	json_object_put(obj);
	json_tokener_free(tok);
	return r;
}

int svcfs_sidecar_read(int dirfd, const char *name, uid_t trusted_uid, json_object **ret_obj,
                       struct stat *ret_st, const char **ret_why)
{
	char *buf = NULL;
	struct stat st;
	size_t len = 0;
	int fd, r;

	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		if (r == -ELOOP) {
			*ret_why = "is a symlink";
			return -EINVAL;
		}
		if (r ==
		    -ENXIO) { /* a socket (or a device without a driver): open() says so first */
			*ret_why = "not a regular file";
			return -EINVAL;
		}
		*ret_why = strerror(errno);
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		*ret_why = strerror(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		*ret_why = "not a regular file";
		r = -EINVAL;
		goto out;
	}
	if (st.st_uid != trusted_uid && st.st_uid != 0) {
		*ret_why = "owned by another user than the socket";
		r = -EPERM;
		goto out;
	}
	if (st.st_size > SVCFS_SIDECAR_MAX) {
		*ret_why = "larger than 64 KiB";
		r = -EFBIG;
		goto out;
	}
	/* one byte more than allowed, to see a file that grew since fstat */
	buf = malloc(SVCFS_SIDECAR_MAX + 1);
	if (!buf) {
		r = -ENOMEM;
		*ret_why = strerror(ENOMEM);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, SVCFS_SIDECAR_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			*ret_why = strerror(errno);
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > SVCFS_SIDECAR_MAX) {
			*ret_why = "larger than 64 KiB";
			r = -EFBIG;
			goto out;
		}
	}
	r = svcfs_sidecar_parse(buf, len, ret_obj, ret_why);
	if (r == 0 && ret_st)
		*ret_st = st;
out:
	free(buf);
	close(fd);
	return r;
}

json_object *svcfs_meta_merge(json_object *meta, const struct svcfs_tokens *tokens)
{
	json_object *out;

	if (meta) {
		out = NULL;
		if (json_object_deep_copy(meta, &out, NULL) < 0)
			return NULL;
	} else {
		out = json_object_new_object();
		if (!out)
			return NULL;
	}
	if (tokens->port && !json_object_object_get_ex(out, "port", NULL))
		json_object_object_add(out, "port", json_object_new_int64(tokens->port));
	return out;
}
