/*
 * A growable NUL-terminated text buffer for rendering. Allocation failure is
 * sticky (b->failed) so callers can append freely and check once at the end.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svcfs-internal.h"

void svcfs_buf_init(struct svcfs_buf *b)
{
	*b = (struct svcfs_buf){0};
}

void svcfs_buf_free(struct svcfs_buf *b)
{
	free(b->data);
	svcfs_buf_init(b);
}

void svcfs_buf_reset(struct svcfs_buf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = '\0';
}

static bool reserve(struct svcfs_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->failed)
		return false;
	if (extra > SIZE_MAX - b->len - 1)
		goto fail;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto fail;
	b->data = p;
	b->cap = cap;
	return true;
fail:
	b->failed = true;
	return false;
}

void svcfs_buf_add(struct svcfs_buf *b, const char *s, size_t len)
{
	if (!reserve(b, len))
		return;
	memcpy(b->data + b->len, s, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void svcfs_buf_adds(struct svcfs_buf *b, const char *s)
{
	svcfs_buf_add(b, s, strlen(s));
}

void svcfs_buf_addf(struct svcfs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

size_t svcfs_utf8_seq_len(const unsigned char *s, size_t left)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > left)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void svcfs_buf_add_json_string(struct svcfs_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	svcfs_buf_add(b, "\"", 1);
	while (i < len) {
		size_t run = i;
		/* copy the longest run that needs no escaping in one go */
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		svcfs_buf_add(b, s + i, run - i);
		i = run;
		if (i >= len)
			break;
		switch (p[i]) {
		case '"':
			svcfs_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			svcfs_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			svcfs_buf_add(b, "\\n", 2);
			break;
		case '\t':
			svcfs_buf_add(b, "\\t", 2);
			break;
		case '\r':
			svcfs_buf_add(b, "\\r", 2);
			break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f) {
				svcfs_buf_addf(b, "\\u%04x", p[i]);
			} else {
				size_t n = svcfs_utf8_seq_len(p + i, len - i);
				if (n == 0) {
					svcfs_buf_add(b, "\\ufffd", 6);
					n = 1;
				} else {
					svcfs_buf_add(b, s + i, n);
				}
				i += n;
				continue;
			}
		}
		i++;
	}
	svcfs_buf_add(b, "\"", 1);
}

char *svcfs_buf_steal(struct svcfs_buf *b, size_t *ret_len)
{
	char *p;

	if (b->failed || !reserve(b, 0)) {
		svcfs_buf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0'; /* also when nothing was ever added */
	p = b->data;
	if (ret_len)
		*ret_len = b->len;
	svcfs_buf_init(b);
	return p;
}
