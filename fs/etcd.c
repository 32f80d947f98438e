/*
 * etcd — the etcd v3 JSON-gateway client (see etcd.h for the contract).
 *
 * What the 3.4 gateway does, as found by trying it (and what this file
 * relies on):
 *  - bytes (keys, values) are base64 in JSON; int64 fields are JSON strings
 *    ("revision":"7"), numbers are accepted in requests;
 *  - zero fields are left out: a PUT event has no "type", a keepalive of a
 *    lost lease answers {"result":{"header":...,"ID":"..."}} with no TTL, a
 *    range with nothing in it has no "kvs";
 *  - unary errors are {"error":"...","message":"...","code":N} (N a gRPC
 *    code) with an HTTP status to match; errors inside a stream are
 *    {"error":{"grpc_code":N,"message":"...",...}};
 *  - streaming calls (lease keepalive, watch) answer {"result":{...}}; the
 *    keepalive takes one POST per renewal; the watch stays open and sends
 *    one object per response, each followed by a newline (not relied on);
 *  - a watch from a compacted revision answers created, then
 *    {"canceled":true,"compact_revision":"N"} and stays open: we close it.
 *
 * Locks: the client (struct etcd) has none, one thread uses it. A watch's
 * queue (head, tail, count) is protected by its lock; everything else in
 * a watch belongs to its thread, except stop (atomic) and the fd.
 */
#include "etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define ETCD_JSON_DEPTH  32
#define ETCD_MSG_MAX     1024
#define ETCD_BACKOFF_MIN 100  /* ms before the first retry of a watch */
#define ETCD_BACKOFF_MAX 3000 /* ms, the longest wait between retries */
#define ETCD_STABLE_MS   1000 /* a watch up that long resets the backoff */

struct etcd_buf {
	char *data;
	size_t len;
	size_t cap;
};

struct etcd {
	char *urls[ETCD_ENDPOINTS_MAX];
	size_t n;
	size_t cur; /* the endpoint the next call starts with */
	int timeout_ms;
	CURL *curl; /* reused: keeps the connection to the current endpoint */
	struct curl_slist *headers;
	struct etcd_buf reply;
	char msg[ETCD_MSG_MAX];
};

/* Time */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_base64_encode(const void *data, size_t len, char **ret, size_t *ret_len)
{
	const unsigned char *in = data;
	size_t out_len, o = 0;
	char *out;

	if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
		return -EOVERFLOW;
	out_len = (len + 2) / 3 * 4;
	out = malloc(out_len + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = left > 1 ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	*ret = out;
	if (ret_len)
		*ret_len = o;
	return 0;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int etcd_base64_decode(const char *text, size_t len, char **ret, size_t *ret_len)
{
	size_t pad = 0, o = 0;
	char *out;

	if (len % 4 != 0)
		return -EINVAL;
	if (len > 0 && text[len - 1] == '=')
		pad = len > 1 && text[len - 2] == '=' ? 2 : 1;
	out = malloc(len / 4 * 3 + 1);
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		uint32_t v = 0;
		int n = last ? 4 - (int)pad : 4;

		for (int j = 0; j < 4; j++) {
			int d = j < n ? b64_value(text[i + j]) : 0;

			if (d < 0) {
				free(out);
				return -EINVAL;
			}
			v = v << 6 | (uint32_t)d;
		}
		/* The bits a padded group leaves over must be zero (canonical). */
		if ((n == 2 && (v & 0xffff)) || (n == 3 && (v & 0xff))) {
			free(out);
			return -EINVAL;
		}
		out[o++] = (char)(v >> 16);
		if (n > 2)
			out[o++] = (char)(v >> 8 & 0xff);
		if (n > 3)
			out[o++] = (char)(v & 0xff);
	}
	out[o] = '\0';
	*ret = out;
	if (ret_len)
		*ret_len = o;
	return 0;
}

int etcd_prefix_end(const char *prefix, size_t len, char **ret, size_t *ret_len)
{
	char *end = malloc(len + 1);
	size_t n = len;

	if (!end)
		return -ENOMEM;
	memcpy(end, prefix, len);
	while (n > 0 && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (n == 0) {
		/* No key is greater than every key with this prefix: to the end. */
		end[0] = '\0';
		*ret = end;
		*ret_len = 1;
		return 0;
	}
	end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
	end[n] = '\0';
	*ret = end;
	*ret_len = n;
	return 0;
}

/* JSON helpers */

static int json_i64(struct json_object *o, const char *name, int64_t *ret)
{
	struct json_object *v;
	const char *s;
	char *endp;
	long long x;

	if (!json_object_object_get_ex(o, name, &v) || !v) {
		*ret = 0;
		return 0;
	}
	if (json_object_is_type(v, json_type_int)) {
		*ret = json_object_get_int64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(v);
	errno = 0;
	x = strtoll(s, &endp, 10);
	if (errno || endp == s || *endp)
		return -EBADMSG;
	*ret = x;
	return 0;
}

static bool json_bool_field(struct json_object *o, const char *name)
{
	struct json_object *v;

	return json_object_object_get_ex(o, name, &v) && json_object_get_boolean(v);
}

static int json_add_b64(struct json_object *o, const char *name, const char *data, size_t len)
{
	struct json_object *s;
	char *text;
	size_t text_len;
	int r;

	r = etcd_base64_encode(data, len, &text, &text_len);
	if (r < 0)
		return r;
	s = json_object_new_string_len(text, (int)text_len);
	free(text);
	if (!s || json_object_object_add(o, name, s) < 0) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

static int json_add_i64(struct json_object *o, const char *name, int64_t v)
{
	struct json_object *n = json_object_new_int64(v);

	if (!n || json_object_object_add(o, name, n) < 0) {
		json_object_put(n);
		return -ENOMEM;
	}
	return 0;
}

static int json_add_bool(struct json_object *o, const char *name, bool v)
{
	struct json_object *b = json_object_new_boolean(v);

	if (!b || json_object_object_add(o, name, b) < 0) {
		json_object_put(b);
		return -ENOMEM;
	}
	return 0;
}

static int b64_field(struct json_object *o, const char *name, char **ret, size_t *ret_len)
{
	struct json_object *v;
	const char *s = "";
	size_t len = 0;
	int r;

	if (json_object_object_get_ex(o, name, &v) && v) {
		if (!json_object_is_type(v, json_type_string))
			return -EBADMSG;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
	}
	r = etcd_base64_decode(s, len, ret, ret_len);
	return r == -EINVAL ? -EBADMSG : r;
}

static void kv_clear(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int kv_parse(struct json_object *o, struct etcd_kv *ret)
{
	struct etcd_kv kv = {0};
	int r;

	if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "key", NULL))
		return -EBADMSG;
	r = b64_field(o, "key", &kv.key, &kv.key_len);
	if (r < 0)
		goto out;
	r = b64_field(o, "value", &kv.value, &kv.value_len);
	if (r < 0)
		goto out;
	r = json_i64(o, "create_revision", &kv.create_revision);
	if (r == 0)
		r = json_i64(o, "mod_revision", &kv.mod_revision);
	if (r == 0)
		r = json_i64(o, "version", &kv.version);
	if (r == 0)
		r = json_i64(o, "lease", &kv.lease);
out:
	if (r < 0)
		kv_clear(&kv);
	else
		*ret = kv;
	return r;
}

static int header_revision(struct json_object *o, int64_t *ret)
{
	struct json_object *h;

	if (!json_object_object_get_ex(o, "header", &h) ||
	    !json_object_is_type(h, json_type_object)) {
		*ret = 0;
		return 0;
	}
	return json_i64(h, "revision", ret);
}

/* Errors */

static int errno_from_grpc(int64_t code)
{
	switch (code) {
	case 1: /* Canceled */
		return -ECANCELED;
	case 3: /* InvalidArgument */
	case 9: /* FailedPrecondition */
		return -EINVAL;
	case 4: /* DeadlineExceeded */
		return -ETIMEDOUT;
	case 5: /* NotFound */
		return -ENOENT;
	case 6: /* AlreadyExists */
		return -EEXIST;
	case 7:  /* PermissionDenied */
	case 16: /* Unauthenticated */
		return -EACCES;
	case 8: /* ResourceExhausted */
		return -ENOSPC;
	case 10: /* Aborted */
	case 14: /* Unavailable: no leader, leader changed, request timed out */
		return -EAGAIN;
	case 11: /* OutOfRange: revision compacted */
		return -ERANGE;
	case 12: /* Unimplemented */
		return -ENOSYS;
	default:
		return -EIO;
	}
}

static int errno_from_http(long status)
{
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 503:
		return -EAGAIN;
	case 504:
		return -ETIMEDOUT;
	default:
		return -EIO;
	}
}

/* An error object, unary ({"error":"...","message":"...","code":N}) or
 * streamed ({"error":{"grpc_code":N,"message":"..."}}): its errno, or 0. */
static int error_from_json(struct json_object *o, char *msg, size_t msg_size)
{
	struct json_object *e, *m = NULL, *where = o;
	int64_t code = 0;

	if (!json_object_object_get_ex(o, "error", &e) || !e)
		return 0;
	if (json_object_is_type(e, json_type_object)) {
		where = e;
		if (json_i64(e, "grpc_code", &code) < 0)
			code = 2;
	} else if (json_i64(o, "code", &code) < 0) {
		code = 2;
	}
	if (!json_object_object_get_ex(where, "message", &m) || !m)
		m = json_object_is_type(e, json_type_string) ? e : NULL;
	snprintf(msg, msg_size, "%s", m ? json_object_get_string(m) : "etcd error");
	return code ? errno_from_grpc(code) : -EIO;
}

int etcd_parse_reply(long status, const char *body, size_t len, struct json_object **ret, char *msg,
                     size_t msg_size)
{
	struct json_tokener *tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
	struct json_object *o = NULL;
	int r;

	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	if (len <= INT_MAX)
		o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		if (status != 200) {
			r = errno_from_http(status);
			snprintf(msg, msg_size, "HTTP status %ld", status);
		} else {
			r = -EBADMSG;
			snprintf(msg, msg_size, "answer is not a JSON object (%zu bytes)", len);
		}
		goto out;
	}
	r = error_from_json(o, msg, msg_size);
	if (r == 0 && status != 200) {
		r = errno_from_http(status);
		snprintf(msg, msg_size, "HTTP status %ld", status);
	}
	if (r == 0) {
		*ret = o;
		o = NULL;
	}
out:
	json_object_put(o);
	json_tokener_free(tok);
	return r;
}

int etcd_parse_range(struct json_object *reply, struct etcd_kvs *kvs, bool *ret_more)
{
	struct json_object *arr;
	int64_t rev;
	size_t n;
	int r;

	r = header_revision(reply, &rev);
	if (r < 0)
		return r;
	if (kvs->revision == 0)
		kvs->revision = rev;
	if (json_object_object_get_ex(reply, "kvs", &arr) && arr) {
		struct etcd_kv *grown;

		if (!json_object_is_type(arr, json_type_array))
			return -EBADMSG;
		n = json_object_array_length(arr);
		if (n > ETCD_RANGE_MAX || kvs->n + n > ETCD_RANGE_MAX)
			return -EMSGSIZE;
		grown = realloc(kvs->kv, (kvs->n + n) * sizeof(*grown) + 1);
		if (!grown)
			return -ENOMEM;
		kvs->kv = grown;
		for (size_t i = 0; i < n; i++) {
			r = kv_parse(json_object_array_get_idx(arr, i), &kvs->kv[kvs->n]);
			if (r < 0)
				return r;
			kvs->n++;
		}
	}
	*ret_more = json_bool_field(reply, "more");
	return 0;
}

/* The client */

static int endpoints_parse(const char *urls, char **out, size_t *ret_n)
{
	const char *p = urls;
	size_t n = 0;

	while (*p) {
		size_t len = strcspn(p, ",");

		if (len == 0 || len >= ETCD_URL_MAX || n == ETCD_ENDPOINTS_MAX)
			goto fail;
		/* Paths are appended: no trailing slash. */
		while (len > 0 && p[len - 1] == '/')
			len--;
		out[n] = strndup(p, len);
		if (!out[n])
			goto fail;
		n++;
		p += strcspn(p, ",");
		if (*p == ',')
			p++;
	}
	if (n == 0)
		return -EINVAL;
	*ret_n = n;
	return 0;
fail:
	while (n > 0)
		free(out[--n]);
	return -EINVAL;
}

static struct curl_slist *request_headers(void)
{
	static const char *const lines[] = {
	    "Content-Type: application/json",
	    "Expect:", /* no 100-continue round trip for larger puts */
	    "Grpc-Metadata-Hasleader: true",
	};
	struct curl_slist *list = NULL;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct curl_slist *l = curl_slist_append(list, lines[i]);

		if (!l) {
			curl_slist_free_all(list);
			return NULL;
		}
		list = l;
	}
	return list;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct etcd *etcd_new(const char *urls, int timeout_ms)
{
	struct etcd *c;

	if (!urls || timeout_ms <= 0)
		return NULL;
	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->timeout_ms = timeout_ms;
	if (endpoints_parse(urls, c->urls, &c->n) < 0) {
		free(c);
		return NULL;
	}
	c->curl = curl_easy_init();
	c->headers = request_headers();
	if (!c->curl || !c->headers)
		return etcd_free(c);
	return c;
}

struct etcd *etcd_free(struct etcd *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n; i++)
		free(c->urls[i]);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	free(c->reply.data);
	free(c);
	return NULL;
}

const char *etcd_errmsg(const struct etcd *c)
{
	return c->msg;
}

const char *etcd_endpoint(const struct etcd *c)
{
	return c->urls[c->cur];
}

static size_t reply_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_buf *b = arg;
	size_t len = size * nmemb;

	if (len > ETCD_RESPONSE_MAX - b->len)
		return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *grown;

		while (cap < b->len + len + 1)
			cap *= 2;
		grown = realloc(b->data, cap);
		if (!grown)
			return 0;
		b->data = grown;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* A transport error: the endpoint may be down, another may answer. */
static int errno_from_curl(CURLcode rc, bool *ret_failover)
{
	*ret_failover = true;
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		*ret_failover = false;
		return -ENOMEM;
	case CURLE_WRITE_ERROR: /* our bound */
		*ret_failover = false;
		return -EMSGSIZE;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* POST BODY to PATH, moving along the endpoints on transport errors and
 * "unavailable" answers, within the call's time budget. */
static int request(struct etcd *c, const char *path, struct json_object *body,
                   struct json_object **ret)
{
	const char *payload = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
	int64_t deadline = now_ms() + c->timeout_ms;
	char url[ETCD_URL_MAX + 64], why[ETCD_MSG_MAX / 2];
	int r = -ECONNREFUSED;

	if (!payload)
		return -ENOMEM;
	snprintf(c->msg, sizeof(c->msg), "etcd: no endpoint tried");
	for (size_t tries = 0; tries < c->n; tries++) {
		int64_t left = deadline - now_ms();
		bool failover = true;
		long status = 0;
		CURLcode rc;
		int err;

		if (left <= 0) {
			if (r == -ECONNREFUSED)
				r = -ETIMEDOUT;
			break;
		}
		snprintf(url, sizeof(url), "%s%s", c->urls[c->cur], path);
		c->reply.len = 0;
		curl_easy_reset(c->curl);
		curl_easy_setopt(c->curl, CURLOPT_URL, url);
		curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
		curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, reply_write);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->reply);
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, (long)left);
		/* A dead host must not take the whole budget from the others. */
		curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS,
		                 (long)(left / (int64_t)(c->n - tries)) + 1);
		rc = curl_easy_perform(c->curl);
		if (rc != CURLE_OK) {
			err = errno_from_curl(rc, &failover);
			if (rc == CURLE_OPERATION_TIMEDOUT)
				snprintf(why, sizeof(why), "no answer within the call's %d ms",
				         c->timeout_ms);
			else
				snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
		} else {
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
			err = etcd_parse_reply(status, c->reply.data ? c->reply.data : "",
			                       c->reply.len, ret, why, sizeof(why));
			failover = err == -EAGAIN;
		}
		if (err == 0)
			return 0;
		/* Keep the most telling error: one that was answered beats a refusal. */
		if (r == -ECONNREFUSED || err != -ECONNREFUSED) {
			r = err;
			snprintf(c->msg, sizeof(c->msg), "etcd %s%s: %s%s", c->urls[c->cur], path,
			         why, tries > 0 ? " (after trying other endpoints)" : "");
		}
		if (!failover)
			return r;
		c->cur = (c->cur + 1) % c->n;
	}
	if (r == -ETIMEDOUT && strstr(c->msg, "etcd: no endpoint") == c->msg)
		snprintf(c->msg, sizeof(c->msg), "etcd %s: out of time", path);
	return r;
}

/* The reply of a streaming call made once: its "result". */
static int stream_result(struct json_object *reply, struct json_object **ret)
{
	struct json_object *res;

	if (!json_object_object_get_ex(reply, "result", &res) ||
	    !json_object_is_type(res, json_type_object))
		return -EBADMSG;
	*ret = res;
	return 0;
}

int etcd_lease_grant(struct etcd *c, int64_t ttl, int64_t *ret_id)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int64_t id = 0;
	int r = -ENOMEM;

	if (!req || json_add_i64(req, "TTL", ttl) < 0)
		goto out;
	r = request(c, "/v3/lease/grant", req, &reply);
	if (r < 0)
		goto out;
	r = json_i64(reply, "ID", &id);
	if (r == 0 && id == 0)
		r = -EBADMSG;
	if (r < 0) {
		snprintf(c->msg, sizeof(c->msg), "etcd lease grant: no lease ID in the answer");
		goto out;
	}
	*ret_id = id;
out:
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_lease_keepalive(struct etcd *c, int64_t id, int64_t *ret_ttl)
{
	struct json_object *req = json_object_new_object(), *reply = NULL, *res;
	int64_t ttl = 0;
	int r = -ENOMEM;

	if (!req || json_add_i64(req, "ID", id) < 0)
		goto out;
	r = request(c, "/v3/lease/keepalive", req, &reply);
	if (r < 0)
		goto out;
	r = stream_result(reply, &res);
	if (r == 0)
		r = json_i64(res, "TTL", &ttl);
	if (r < 0) {
		snprintf(c->msg, sizeof(c->msg), "etcd lease keepalive: unexpected answer");
		goto out;
	}
	*ret_ttl = ttl > 0 ? ttl : 0;
out:
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_lease_revoke(struct etcd *c, int64_t id)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int r = -ENOMEM;

	if (req && json_add_i64(req, "ID", id) == 0)
		r = request(c, "/v3/lease/revoke", req, &reply);
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_put(struct etcd *c, const char *key, const void *value, size_t value_len, int64_t lease,
             int64_t *ret_revision)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int64_t rev = 0;
	int r = -ENOMEM;

	if (!req || json_add_b64(req, "key", key, strlen(key)) < 0 ||
	    json_add_b64(req, "value", value, value_len) < 0 ||
	    (lease && json_add_i64(req, "lease", lease) < 0))
		goto out;
	r = request(c, "/v3/kv/put", req, &reply);
	if (r < 0)
		goto out;
	r = header_revision(reply, &rev);
	if (r < 0) {
		snprintf(c->msg, sizeof(c->msg), "etcd put: bad header in the answer");
		goto out;
	}
	if (ret_revision)
		*ret_revision = rev;
out:
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_delete(struct etcd *c, const char *key, int64_t *ret_revision)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int64_t rev = 0, deleted = 0;
	int r = -ENOMEM;

	if (!req || json_add_b64(req, "key", key, strlen(key)) < 0)
		goto out;
	r = request(c, "/v3/kv/deleterange", req, &reply);
	if (r < 0)
		goto out;
	r = header_revision(reply, &rev);
	if (r == 0)
		r = json_i64(reply, "deleted", &deleted);
	if (r < 0) {
		snprintf(c->msg, sizeof(c->msg), "etcd delete: unexpected answer");
		goto out;
	}
	if (ret_revision)
		*ret_revision = rev;
	r = (int)deleted;
out:
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_txn(struct etcd *c, const struct etcd_op *ops, size_t n, int64_t lease,
             int64_t *ret_revision)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	struct json_object *success = json_object_new_array();
	int64_t rev = 0;
	int r = -ENOMEM;

	if (n == 0 || n > ETCD_TXN_MAX) {
		snprintf(c->msg, sizeof(c->msg), "etcd txn: %zu operations (1 to %d)", n,
		         ETCD_TXN_MAX);
		r = -EINVAL;
		goto out;
	}
	if (!req || !success)
		goto out;
	for (size_t i = 0; i < n; i++) {
		struct json_object *op = json_object_new_object(), *body = json_object_new_object();
		bool ok = op && body && json_add_b64(body, "key", ops[i].key, strlen(ops[i].key)) == 0;

		if (ok && !ops[i].del)
			ok = json_add_b64(body, "value", (const char *)ops[i].value, ops[i].value_len) == 0 &&
			     (!lease || json_add_i64(body, "lease", lease) == 0);
		if (ok && json_object_object_add(op, ops[i].del ? "request_delete_range"
		                                                : "request_put",
		                                 body) == 0) {
			body = NULL;
			ok = json_object_array_add(success, op) == 0;
			if (ok)
				op = NULL;
		} else {
			ok = false;
		}
		json_object_put(body);
		json_object_put(op);
		if (!ok)
			goto out;
	}
	if (json_object_object_add(req, "success", success) < 0)
		goto out;
	success = NULL;
	r = request(c, "/v3/kv/txn", req, &reply);
	if (r < 0)
		goto out;
	r = header_revision(reply, &rev);
	if (r < 0) {
		snprintf(c->msg, sizeof(c->msg), "etcd txn: bad header in the answer");
		goto out;
	}
	if (ret_revision)
		*ret_revision = rev;
out:
	json_object_put(success);
	json_object_put(req);
	json_object_put(reply);
	return r;
}

int etcd_compact(struct etcd *c, int64_t revision)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int r = -ENOMEM;

	if (req && json_add_i64(req, "revision", revision) == 0 &&
	    json_add_bool(req, "physical", true) == 0)
		r = request(c, "/v3/kv/compaction", req, &reply);
	json_object_put(req);
	json_object_put(reply);
	return r;
}

struct etcd_kvs *etcd_kvs_free(struct etcd_kvs *kvs)
{
	if (!kvs)
		return NULL;
	for (size_t i = 0; i < kvs->n; i++)
		kv_clear(&kvs->kv[i]);
	free(kvs->kv);
	free(kvs);
	return NULL;
}

/* One range over [KEY, END) at REV (0: now), appended to KVS. */
static int range_page(struct etcd *c, const char *key, size_t key_len, const char *end,
                      size_t end_len, int64_t rev, struct etcd_kvs *kvs, bool *ret_more)
{
	struct json_object *req = json_object_new_object(), *reply = NULL;
	int r = -ENOMEM;

	if (!req || json_add_b64(req, "key", key, key_len) < 0 ||
	    json_add_b64(req, "range_end", end, end_len) < 0 ||
	    json_add_i64(req, "limit", ETCD_RANGE_PAGE) < 0 ||
	    (rev && json_add_i64(req, "revision", rev) < 0))
		goto out;
	r = request(c, "/v3/kv/range", req, &reply);
	if (r < 0)
		goto out;
	r = etcd_parse_range(reply, kvs, ret_more);
	if (r < 0)
		snprintf(c->msg, sizeof(c->msg), "etcd range: unexpected answer (%s)",
		         strerror(-r));
out:
	json_object_put(req);
	json_object_put(reply);
	return r;
}

static int range_all(struct etcd *c, const char *prefix, struct etcd_kvs *kvs)
{
	char *end = NULL, *key = NULL;
	size_t end_len, key_len = strlen(prefix);
	bool more = true;
	int r;

	r = etcd_prefix_end(prefix, key_len, &end, &end_len);
	if (r < 0)
		return r;
	key = strdup(prefix);
	if (!key) {
		r = -ENOMEM;
		goto out;
	}
	while (more) {
		const struct etcd_kv *last;

		r = range_page(c, key, key_len, end, end_len, kvs->revision, kvs, &more);
		if (r < 0 || !more || kvs->n == 0)
			break;
		/* The next page starts just after the last key: last key + "\0". */
		last = &kvs->kv[kvs->n - 1];
		free(key);
		key = malloc(last->key_len + 1);
		if (!key) {
			r = -ENOMEM;
			break;
		}
		memcpy(key, last->key, last->key_len);
		key[last->key_len] = '\0';
		key_len = last->key_len + 1;
	}
out:
	free(key);
	free(end);
	return r;
}

int etcd_range_prefix(struct etcd *c, const char *prefix, struct etcd_kvs **ret_kvs)
{
	int r = -ERANGE;

	/* Pages are read at the first page's revision; a compaction between
	 * pages makes that revision unreadable: start again (a few times). */
	for (int attempt = 0; attempt < 3 && r == -ERANGE; attempt++) {
		struct etcd_kvs *kvs = calloc(1, sizeof(*kvs));

		if (!kvs)
			return -ENOMEM;
		r = range_all(c, prefix, kvs);
		if (r == 0) {
			*ret_kvs = kvs;
			return 0;
		}
		etcd_kvs_free(kvs);
	}
	return r;
}

/* The watch stream parser */

struct etcd_stream {
	struct json_tokener *tok;
	size_t object_bytes; /* fed into the object being parsed */
};

struct etcd_stream *etcd_stream_new(void)
{
	struct etcd_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->tok = json_tokener_new_ex(ETCD_JSON_DEPTH);
	if (!s->tok) {
		free(s);
		return NULL;
	}
	json_tokener_set_flags(s->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	return s;
}

struct etcd_stream *etcd_stream_free(struct etcd_stream *s)
{
	if (!s)
		return NULL;
	json_tokener_free(s->tok);
	free(s);
	return NULL;
}

void etcd_stream_reset(struct etcd_stream *s)
{
	json_tokener_reset(s->tok);
	s->object_bytes = 0;
}

struct etcd_event *etcd_event_free(struct etcd_event *ev)
{
	if (!ev)
		return NULL;
	kv_clear(&ev->kv);
	free(ev->msg);
	free(ev);
	return NULL;
}

static int emit_simple(enum etcd_event_type type, int64_t rev, etcd_emit_fn emit, void *arg)
{
	struct etcd_event *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return -ENOMEM;
	ev->type = type;
	ev->revision = rev;
	return emit(ev, arg);
}

static int emit_events(struct json_object *events, etcd_emit_fn emit, void *arg, char *msg,
                       size_t msg_size)
{
	size_t n = json_object_array_length(events);

	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(events, i), *t, *kv;
		struct etcd_event *ev;
		int r;

		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "kv", &kv)) {
			snprintf(msg, msg_size, "watch event without kv");
			return -EBADMSG;
		}
		ev = calloc(1, sizeof(*ev));
		if (!ev)
			return -ENOMEM;
		ev->type = ETCD_EV_PUT;
		if (json_object_object_get_ex(e, "type", &t) && t) {
			const char *name = json_object_get_string(t);

			if (strcmp(name, "DELETE") == 0 || strcmp(name, "1") == 0) {
				ev->type = ETCD_EV_DELETE;
			} else if (strcmp(name, "PUT") != 0 && strcmp(name, "0") != 0) {
				snprintf(msg, msg_size, "watch event of unknown type %.40s", name);
				etcd_event_free(ev);
				return -EBADMSG;
			}
		}
		r = kv_parse(kv, &ev->kv);
		if (r < 0) {
			snprintf(msg, msg_size, "watch event with a bad kv");
			etcd_event_free(ev);
			return r;
		}
		ev->revision = ev->kv.mod_revision;
		r = emit(ev, arg);
		if (r)
			return r;
	}
	return 0;
}

/* One complete object of the stream. */
static int stream_object(struct json_object *o, etcd_emit_fn emit, void *arg, char *msg,
                         size_t msg_size)
{
	struct json_object *res, *events = NULL;
	int64_t rev, compact;
	int r;

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(msg, msg_size, "watch stream: not a JSON object");
		return -EBADMSG;
	}
	r = error_from_json(o, msg, msg_size);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "result", &res) ||
	    !json_object_is_type(res, json_type_object)) {
		snprintf(msg, msg_size, "watch stream: object without result");
		return -EBADMSG;
	}
	if (header_revision(res, &rev) < 0 || json_i64(res, "compact_revision", &compact) < 0) {
		snprintf(msg, msg_size, "watch stream: bad revision");
		return -EBADMSG;
	}
	if (json_object_object_get_ex(res, "events", &events) && events &&
	    !json_object_is_type(events, json_type_array)) {
		snprintf(msg, msg_size, "watch stream: events is not an array");
		return -EBADMSG;
	}
	if (json_bool_field(res, "canceled")) {
		struct json_object *why;

		if (compact > 0)
			return emit_simple(ETCD_EV_COMPACTED, compact, emit, arg);
		snprintf(msg, msg_size, "watch canceled: %s",
		         json_object_object_get_ex(res, "cancel_reason", &why)
		             ? json_object_get_string(why)
		             : "no reason given");
		return -ECANCELED;
	}
	if (json_bool_field(res, "created"))
		return emit_simple(ETCD_EV_CREATED, rev, emit, arg);
	if (!events || json_object_array_length(events) == 0)
		return emit_simple(ETCD_EV_PROGRESS, rev, emit, arg);
	return emit_events(events, emit, arg, msg, msg_size);
}

int etcd_stream_feed(struct etcd_stream *s, const char *data, size_t len, etcd_emit_fn emit,
                     void *arg, char *msg, size_t msg_size)
{
	while (len > 0) {
		int chunk = len > INT_MAX ? INT_MAX : (int)len;
		struct json_object *o = json_tokener_parse_ex(s->tok, data, chunk);
		enum json_tokener_error jerr = json_tokener_get_error(s->tok);
		size_t used;
		int r;

		if (jerr == json_tokener_continue) {
			s->object_bytes += (size_t)chunk;
			if (s->object_bytes > ETCD_RESPONSE_MAX) {
				snprintf(msg, msg_size, "watch stream: object over %d bytes",
				         ETCD_RESPONSE_MAX);
				return -EMSGSIZE;
			}
			data += chunk;
			len -= (size_t)chunk;
			continue;
		}
		if (jerr != json_tokener_success || !o) {
			snprintf(msg, msg_size, "watch stream: %s",
			         jerr != json_tokener_success ? json_tokener_error_desc(jerr)
			                                      : "null object");
			json_object_put(o);
			return -EBADMSG;
		}
		used = json_tokener_get_parse_end(s->tok);
		s->object_bytes = 0;
		data += used;
		len -= used;
		r = stream_object(o, emit, arg, msg, msg_size);
		json_object_put(o);
		if (r)
			return r;
		/* Whitespace between objects would leave the tokener waiting on
		 * nothing; skip it so that a stream ending here is complete. */
		while (len > 0 &&
		       (*data == '\n' || *data == '\r' || *data == ' ' || *data == '\t')) {
			data++;
			len--;
		}
	}
	return 0;
}

/* The watch */

struct etcd_watch {
	char *urls[ETCD_ENDPOINTS_MAX];
	size_t n;
	int timeout_ms;
	int idle_s;
	char *request; /* the create_request body, rebuilt on each connect */
	char *prefix;

	/* The thread's own */
	size_t cur;
	int64_t next_rev; /* where a reconnect resumes; 0: from now */
	CURL *curl;
	CURLM *multi;
	struct curl_slist *headers;
	struct etcd_stream *stream;
	bool done;         /* compacted: the watch has ended */
	bool down;         /* DISCONNECTED sent, CREATED not since */
	bool paused;       /* the queue is full: reading stopped */
	int64_t last_data; /* when the stream last sent something (now_ms) */
	int err;           /* why the stream stopped, when we stopped it */
	char msg[ETCD_MSG_MAX];

	pthread_t thread;
	bool started;
	atomic_bool stop;
	int fd; /* eventfd: readable while the queue is not empty */

	pthread_mutex_t lock;
	struct etcd_queued *head, *tail; /* lock */
	size_t count;                    /* lock */
};

struct etcd_queued {
	struct etcd_event *ev;
	struct etcd_queued *next;
};

static int queue_push(struct etcd_watch *w, struct etcd_event *ev)
{
	struct etcd_queued *q = malloc(sizeof(*q));

	if (!q) {
		etcd_event_free(ev);
		return -ENOMEM;
	}
	q->ev = ev;
	q->next = NULL;
	pthread_mutex_lock(&w->lock);
	if (w->tail)
		w->tail->next = q;
	else
		w->head = q;
	w->tail = q;
	if (w->count++ == 0) {
		uint64_t one = 1;

		if (write(w->fd, &one, sizeof(one)) < 0) {
			/* eventfd cannot overflow at 1: nothing to do */
		}
	}
	pthread_mutex_unlock(&w->lock);
	return 0;
}

int etcd_watch_next(struct etcd_watch *w, struct etcd_event **ret_event)
{
	struct etcd_queued *q;
	bool wake = false;

	pthread_mutex_lock(&w->lock);
	q = w->head;
	if (!q) {
		pthread_mutex_unlock(&w->lock);
		return -EAGAIN;
	}
	w->head = q->next;
	if (!w->head)
		w->tail = NULL;
	if (--w->count == 0) {
		uint64_t v;

		if (read(w->fd, &v, sizeof(v)) < 0) {
			/* already reset */
		}
	}
	wake = w->count == ETCD_WATCH_QUEUE_MAX / 2;
	pthread_mutex_unlock(&w->lock);
	if (wake)
		curl_multi_wakeup(w->multi); /* the thread may be paused on a full queue */
	*ret_event = q->ev;
	free(q);
	return 0;
}

int etcd_watch_fd(const struct etcd_watch *w)
{
	return w->fd;
}

static size_t queue_count(struct etcd_watch *w)
{
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->count;
	pthread_mutex_unlock(&w->lock);
	return n;
}

static int watch_emit(struct etcd_event *ev, void *arg)
{
	struct etcd_watch *w = arg;

	switch (ev->type) {
	case ETCD_EV_PUT:
	case ETCD_EV_DELETE:
	case ETCD_EV_PROGRESS:
		/* Everything up to this revision has been delivered. */
		if (ev->revision + 1 > w->next_rev)
			w->next_rev = ev->revision + 1;
		break;
	case ETCD_EV_CREATED:
		/* Watching "from now" means from after the creation's revision;
		 * otherwise it says nothing of what has been sent. */
		if (w->next_rev == 0)
			w->next_rev = ev->revision + 1;
		w->down = false;
		break;
	case ETCD_EV_COMPACTED:
		w->done = true;
		break;
	case ETCD_EV_DISCONNECTED:
		break;
	}
	if (queue_push(w, ev) < 0)
		return -ENOMEM;
	return w->done ? 1 : 0;
}

static size_t watch_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct etcd_watch *w = arg;
	size_t len = size * nmemb;
	int r;

	w->last_data = now_ms();
	if (queue_count(w) >= ETCD_WATCH_QUEUE_MAX) {
		/* Back-pressure: the data stays with curl until we resume. */
		w->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	r = etcd_stream_feed(w->stream, data, len, watch_emit, w, w->msg, sizeof(w->msg));
	if (r) {
		w->err = r < 0 ? r : 0;
		return 0; /* abort the transfer */
	}
	return len;
}

static int watch_request(struct etcd_watch *w)
{
	struct json_object *req = json_object_new_object(), *create = json_object_new_object();
	size_t plen = strlen(w->prefix), end_len;
	char *end = NULL;
	int r = -ENOMEM;

	if (!req || !create)
		goto out;
	r = etcd_prefix_end(w->prefix, plen, &end, &end_len);
	if (r < 0)
		goto out;
	r = -ENOMEM;
	if (json_add_b64(create, "key", w->prefix, plen) < 0 ||
	    json_add_b64(create, "range_end", end, end_len) < 0 ||
	    (w->next_rev && json_add_i64(create, "start_revision", w->next_rev) < 0) ||
	    json_add_bool(create, "progress_notify", true) < 0)
		goto out;
	if (json_object_object_add(req, "create_request", create) < 0)
		goto out;
	create = NULL;
	free(w->request);
	w->request = strdup(json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN));
	r = w->request ? 0 : -ENOMEM;
out:
	free(end);
	json_object_put(create);
	json_object_put(req);
	return r;
}

/* One connection of the watch, until it ends, fails or we stop. */
static int watch_connect(struct etcd_watch *w)
{
	char url[ETCD_URL_MAX + 16];
	CURLcode rc = CURLE_OK;
	int running = 1, r;
	bool failover;

	w->err = 0;
	w->msg[0] = '\0';
	etcd_stream_reset(w->stream);
	r = watch_request(w);
	if (r < 0) {
		snprintf(w->msg, sizeof(w->msg), "watch: no memory for the request");
		return r;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", w->urls[w->cur]);
	curl_easy_reset(w->curl);
	curl_easy_setopt(w->curl, CURLOPT_URL, url);
	curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, w->headers);
	curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, w->request);
	curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)w->timeout_ms);
	curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_multi_add_handle(w->multi, w->curl);
	w->last_data = now_ms();
	while (running && !atomic_load(&w->stop)) {
		CURLMsg *m;
		int left;

		if (w->paused && queue_count(w) < ETCD_WATCH_QUEUE_MAX / 2) {
			w->paused = false;
			w->last_data = now_ms(); /* silence while paused was ours */
			curl_easy_pause(w->curl, CURLPAUSE_CONT);
		}
		curl_multi_perform(w->multi, &running);
		while ((m = curl_multi_info_read(w->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				rc = m->data.result;
		if (running)
			curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
		/* Not curl's low-speed limit: that averages over several seconds
		 * and notices silence only idle_s + ~5 s late. */
		if (running && w->idle_s > 0 && !w->paused &&
		    now_ms() - w->last_data > (int64_t)w->idle_s * 1000) {
			w->err = -ETIMEDOUT;
			snprintf(w->msg, sizeof(w->msg), "watch %s: nothing received for %d s", url,
			         w->idle_s);
			break;
		}
	}
	curl_multi_remove_handle(w->multi, w->curl);
	if (atomic_load(&w->stop) || w->done)
		return 0;
	if (w->err < 0)
		return w->err;
	if (rc == CURLE_OK) {
		snprintf(w->msg, sizeof(w->msg), "watch %s: stream closed", url);
		return -ECONNRESET;
	}
	r = errno_from_curl(rc, &failover);
	snprintf(w->msg, sizeof(w->msg), "watch %s: %s", url, curl_easy_strerror(rc));
	return r;
}

static void *watch_thread(void *arg)
{
	struct etcd_watch *w = arg;
	int backoff = 0;

	while (!atomic_load(&w->stop) && !w->done) {
		int64_t started;
		int r;

		if (backoff > 0)
			curl_multi_poll(w->multi, NULL, 0, backoff, NULL); /* woken by free */
		if (atomic_load(&w->stop))
			break;
		started = now_ms();
		r = watch_connect(w);
		if (atomic_load(&w->stop) || w->done)
			break;
		if (!w->down) {
			struct etcd_event *ev = calloc(1, sizeof(*ev));

			if (ev) {
				ev->type = ETCD_EV_DISCONNECTED;
				ev->err = r < 0 ? r : -ECONNRESET;
				ev->msg = strdup(w->msg);
				if (queue_push(w, ev) == 0)
					w->down = true;
			}
		}
		if (now_ms() - started >= ETCD_STABLE_MS)
			backoff = ETCD_BACKOFF_MIN;
		else
			backoff = backoff ? backoff * 2 : ETCD_BACKOFF_MIN;
		if (backoff > ETCD_BACKOFF_MAX)
			backoff = ETCD_BACKOFF_MAX;
		w->cur = (w->cur + 1) % w->n;
	}
	return NULL;
}

struct etcd_watch *etcd_watch_new(struct etcd *c, const char *prefix, int64_t start_revision,
                                  int idle_s)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->fd = -1;
	pthread_mutex_init(&w->lock, NULL);
	atomic_init(&w->stop, false);
	for (size_t i = 0; i < c->n; i++) {
		w->urls[i] = strdup(c->urls[i]);
		if (!w->urls[i])
			return etcd_watch_free(w);
		w->n++;
	}
	w->cur = c->cur;
	w->timeout_ms = c->timeout_ms;
	w->idle_s = idle_s;
	w->next_rev = start_revision > 0 ? start_revision : 0;
	w->prefix = strdup(prefix);
	w->curl = curl_easy_init();
	w->multi = curl_multi_init();
	w->headers = request_headers();
	w->stream = etcd_stream_new();
	w->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!w->prefix || !w->curl || !w->multi || !w->headers || !w->stream || w->fd < 0)
		return etcd_watch_free(w);
	if (pthread_create(&w->thread, NULL, watch_thread, w) != 0)
		return etcd_watch_free(w);
	w->started = true;
	return w;
}

struct etcd_watch *etcd_watch_free(struct etcd_watch *w)
{
	struct etcd_queued *q;

	if (!w)
		return NULL;
	if (w->started) {
		atomic_store(&w->stop, true);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
	}
	while ((q = w->head)) {
		w->head = q->next;
		etcd_event_free(q->ev);
		free(q);
	}
	if (w->multi)
		curl_multi_cleanup(w->multi);
	if (w->curl)
		curl_easy_cleanup(w->curl);
	curl_slist_free_all(w->headers);
	etcd_stream_free(w->stream);
	if (w->fd >= 0)
		close(w->fd);
	for (size_t i = 0; i < w->n; i++)
		free(w->urls[i]);
	free(w->request);
	free(w->prefix);
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}
