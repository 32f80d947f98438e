/*
 * render — turn a live service into the text the mount shows.
 *
 * Every file holds text ending in a newline: a scalar as plain text, an
 * object or array as compact JSON. What svcfs found (socket, pid, uid, gid,
 * state, since) is authoritative and wins over sidecar keys of the same
 * name; sidecar keys that are not safe file names stay in meta.json only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "svcfs-internal.h"

static const char *const reserved[] = {"socket", "meta.json", "pid",  "uid",
                                       "gid",    "state",     "since"};

bool render_reserved_name(const char *name)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		if (strcmp(name, reserved[i]) == 0)
			return true;
	return false;
}

bool render_label_name_ok(const char *name)
{
	if (!name[0] || (name[0] == '_' && name[1] == '_'))
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
		if (!alpha && !(p != name && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

void render_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, size, "1970-01-01T00:00:00Z");
}

static const char *json_text(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                             JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Keep S (from a svcfs_buf) for a file spec. Returns false on ENOMEM. */
static bool keep(struct render_output *out, struct svcfs_buf *b, const char *name, bool link)
{
	size_t len;
	char *s = svcfs_buf_steal(b, &len);
	char **st;

	if (!s)
		return false;
	st = realloc(out->storage, (out->nstorage + 1) * sizeof(*st));
	if (!st) {
		free(s);
		return false;
	}
	out->storage = st;
	out->storage[out->nstorage++] = s;
	out->files[out->nfiles++] = (struct view_file_spec){name, s, len, link};
	return true;
}

/* A value as a file's text: strings raw, everything else as JSON. */
static void add_value_text(struct svcfs_buf *b, json_object *val)
{
	if (json_object_is_type(val, json_type_string))
		svcfs_buf_add(b, json_object_get_string(val),
		              (size_t)json_object_get_string_len(val));
	else
		svcfs_buf_adds(b, json_text(val));
	svcfs_buf_add(b, "\n", 1);
}

/* The found fields, as "key":value pairs after a leading comma when needed.
 * ENTRY: an element of .services.json (socket and pid always there). */
static void add_found_fields(struct svcfs_buf *b, const struct render_input *in, bool comma,
                             bool entry)
{
	char since[32];

	render_time(in->since, since, sizeof(since));
	if (comma)
		svcfs_buf_add(b, ",", 1);
	if (in->host) {
		svcfs_buf_adds(b, "\"host\":");
		svcfs_buf_add_json_string(b, in->host, strlen(in->host));
		if (entry)
			svcfs_buf_adds(b, ",\"socket\":null");
	} else {
		svcfs_buf_adds(b, "\"socket\":");
		svcfs_buf_add_json_string(b, in->socket, strlen(in->socket));
	}
	if (in->pid > 0)
		svcfs_buf_addf(b, ",\"pid\":%ld", (long)in->pid);
	else if (entry)
		svcfs_buf_adds(b, ",\"pid\":null");
	svcfs_buf_addf(b, ",\"uid\":%lu,\"gid\":%lu,\"state\":", (unsigned long)in->uid,
	               (unsigned long)in->gid);
	svcfs_buf_add_json_string(b, in->state, strlen(in->state));
	svcfs_buf_addf(b, ",\"since\":\"%s\"", since);
}

/* A key what svcfs found wins over: the reserved names, and "host" remotely. */
static bool found_key(const struct render_input *in, const char *key)
{
	return render_reserved_name(key) || (in->host && strcmp(key, "host") == 0);
}

static void render_meta_json(struct svcfs_buf *b, const struct render_input *in)
{
	bool comma = false;

	svcfs_buf_add(b, "{", 1);
	if (in->meta) {
		json_object_object_foreach(in->meta, key, val)
		{
			/* what svcfs found wins; a key "meta.json" is only no file */
			if (found_key(in, key) && strcmp(key, "meta.json") != 0)
				continue;
			if (comma)
				svcfs_buf_add(b, ",", 1);
			svcfs_buf_add_json_string(b, key, strlen(key));
			svcfs_buf_add(b, ":", 1);
			svcfs_buf_adds(b, json_text(val));
			comma = true;
		}
	}
	add_found_fields(b, in, comma, false);
	svcfs_buf_add(b, "}\n", 2);
}

static void render_entry(struct svcfs_buf *b, const struct render_input *in)
{
	svcfs_buf_adds(b, "{\"name\":");
	svcfs_buf_add_json_string(b, in->name, strlen(in->name));
	svcfs_buf_adds(b, ",\"group\":");
	if (in->group[0])
		svcfs_buf_add_json_string(b, in->group, strlen(in->group));
	else
		svcfs_buf_adds(b, "null");
	add_found_fields(b, in, true, true);
	svcfs_buf_adds(b, ",\"meta\":");
	svcfs_buf_adds(b, in->meta ? json_text(in->meta) : "{}");
	svcfs_buf_add(b, "}", 1);
}

/* One target from an endpoint value: a port number or a "host:port" string. */
static bool add_target(struct svcfs_buf *b, json_object *val, bool comma)
{
	if (json_object_is_type(val, json_type_int)) {
		int64_t port = json_object_get_int64(val);
		if (port < 1 || port > 65535)
			return false;
		svcfs_buf_addf(b, "%s\"localhost:%lld\"", comma ? "," : "", (long long)port);
		return true;
	}
	if (json_object_is_type(val, json_type_string) && json_object_get_string_len(val) > 0) {
		if (comma)
			svcfs_buf_add(b, ",", 1);
		svcfs_buf_add_json_string(b, json_object_get_string(val),
		                          (size_t)json_object_get_string_len(val));
		return true;
	}
	return false;
}

static void add_label(struct svcfs_buf *b, const char *name, const char *value, size_t len)
{
	svcfs_buf_add(b, ",", 1);
	svcfs_buf_add_json_string(b, name, strlen(name));
	svcfs_buf_add(b, ":", 1);
	svcfs_buf_add_json_string(b, value, len);
}

static void render_target(struct svcfs_buf *b, const struct render_input *in)
{
	json_object *endpoints = NULL, *port = NULL, *job = NULL, *labels = NULL, *tags = NULL;
	bool any = false;

	if (in->meta) {
		json_object_object_get_ex(in->meta, "endpoints", &endpoints);
		json_object_object_get_ex(in->meta, "port", &port);
		json_object_object_get_ex(in->meta, "job", &job);
		json_object_object_get_ex(in->meta, "labels", &labels);
		json_object_object_get_ex(in->meta, "tags", &tags);
	}
	svcfs_buf_adds(b, "{\"targets\":[");
	if (json_object_is_type(endpoints, json_type_object)) {
		json_object_object_foreach(endpoints, k, v)
		{
			(void)k;
			any = add_target(b, v, any) || any;
		}
	} else if (json_object_is_type(endpoints, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(endpoints); i++)
			any = add_target(b, json_object_array_get_idx(endpoints, i), any) || any;
	}
	if (!any && port && !in->host)
		any = add_target(b, port, false);
	if (!any && !in->host) {
		svcfs_buf_adds(b, "\"unix://");
		/* the path as a JSON string, without its quotes */
		struct svcfs_buf q;
		svcfs_buf_init(&q);
		svcfs_buf_add_json_string(&q, in->socket, strlen(in->socket));
		if (q.data && q.len >= 2)
			svcfs_buf_add(b, q.data + 1, q.len - 2);
		b->failed = b->failed || q.failed;
		svcfs_buf_free(&q);
		svcfs_buf_add(b, "\"", 1);
	}
	svcfs_buf_adds(b, "],\"labels\":{\"job\":");
	if (json_object_is_type(job, json_type_string) && json_object_get_string_len(job) > 0)
		svcfs_buf_add_json_string(b, json_object_get_string(job),
		                          (size_t)json_object_get_string_len(job));
	else if (in->group[0])
		svcfs_buf_add_json_string(b, in->group, strlen(in->group));
	else
		svcfs_buf_add_json_string(b, in->name, strlen(in->name));
	add_label(b, "service", in->name, strlen(in->name));
	if (in->group[0])
		add_label(b, "group", in->group, strlen(in->group));
	if (in->host)
		add_label(b, "host", in->host, strlen(in->host));
	if (json_object_is_type(labels, json_type_object)) {
		json_object_object_foreach(labels, k, v)
		{
			const char *s;
			if (!render_label_name_ok(k) || strcmp(k, "job") == 0 ||
			    strcmp(k, "service") == 0 || strcmp(k, "group") == 0 ||
			    (in->host && strcmp(k, "host") == 0) || strcmp(k, "tags") == 0 ||
			    json_object_is_type(v, json_type_object) ||
			    json_object_is_type(v, json_type_array) ||
			    json_object_is_type(v, json_type_null))
				continue;
			s = json_object_get_string(v);
			add_label(b, k, s, strlen(s));
		}
	}
	if (json_object_is_type(tags, json_type_array)) {
		/* like Consul's __meta_consul_tags: ",a,b," so a regex can match ",a," */
		struct svcfs_buf t;
		svcfs_buf_init(&t);
		svcfs_buf_add(&t, ",", 1);
		for (size_t i = 0; i < json_object_array_length(tags); i++) {
			json_object *tag = json_object_array_get_idx(tags, i);
			if (!json_object_is_type(tag, json_type_string))
				continue;
			svcfs_buf_add(&t, json_object_get_string(tag),
			              (size_t)json_object_get_string_len(tag));
			svcfs_buf_add(&t, ",", 1);
		}
		if (t.len > 1)
			add_label(b, "tags", t.data, t.len);
		b->failed = b->failed || t.failed;
		svcfs_buf_free(&t);
	}
	svcfs_buf_adds(b, "}}");
}

int render_service(const struct render_input *in, struct render_output *out)
{
	size_t nkeys = in->meta ? (size_t)json_object_object_length(in->meta) : 0;
	struct svcfs_buf b;

	*out = (struct render_output){0};
	svcfs_buf_init(&b);
	out->files = calloc(7 + nkeys, sizeof(*out->files));
	if (!out->files)
		goto fail;

	if (in->host) {
		/* another host's service: nothing to connect to here */
		svcfs_buf_addf(&b, "%s\n", in->host);
		if (!keep(out, &b, "host", false))
			goto fail;
	} else {
		svcfs_buf_adds(&b, in->socket);
		if (!keep(out, &b, "socket", true))
			goto fail;
	}
	render_meta_json(&b, in);
	if (!keep(out, &b, "meta.json", false))
		goto fail;
	if (in->pid > 0) {
		svcfs_buf_addf(&b, "%ld\n", (long)in->pid);
		if (!keep(out, &b, "pid", false))
			goto fail;
	}
	svcfs_buf_addf(&b, "%lu\n", (unsigned long)in->uid);
	if (!keep(out, &b, "uid", false))
		goto fail;
	svcfs_buf_addf(&b, "%lu\n", (unsigned long)in->gid);
	if (!keep(out, &b, "gid", false))
		goto fail;
	svcfs_buf_addf(&b, "%s\n", in->state);
	if (!keep(out, &b, "state", false))
		goto fail;
	{
		char since[32];
		render_time(in->since, since, sizeof(since));
		svcfs_buf_addf(&b, "%s\n", since);
		if (!keep(out, &b, "since", false))
			goto fail;
	}
	if (in->meta) {
		json_object_object_foreach(in->meta, key, val)
		{
			if (found_key(in, key) || !svcfs_name_safe_key(key, strlen(key)))
				continue;
			add_value_text(&b, val);
			/* the key string lives in in->meta, which outlives the view update */
			if (!keep(out, &b, key, false))
				goto fail;
		}
	}

	render_entry(&b, in);
	out->entry_json = svcfs_buf_steal(&b, NULL);
	render_target(&b, in);
	out->target_json = svcfs_buf_steal(&b, NULL);
	if (!out->entry_json || !out->target_json)
		goto fail;
	return 0;
fail:
	svcfs_buf_free(&b);
	render_output_free(out);
	return -ENOMEM;
}

void render_output_free(struct render_output *out)
{
	for (size_t i = 0; i < out->nstorage; i++)
		free(out->storage[i]);
	free(out->storage);
	free(out->files);
	free(out->entry_json);
	free(out->target_json);
	*out = (struct render_output){0};
}

/* "ADDRESS:PORT", an IPv6 address in brackets. */
static json_object *addressed(const char *address, const char *port, size_t len)
{
	struct svcfs_buf b;
	json_object *o;

	svcfs_buf_init(&b);
	if (strchr(address, ':') && address[0] != '[')
		svcfs_buf_addf(&b, "[%s]:", address);
	else
		svcfs_buf_addf(&b, "%s:", address);
	svcfs_buf_add(&b, port, len);
	o = b.failed || !b.data ? NULL : json_object_new_string_len(b.data, (int)b.len);
	svcfs_buf_free(&b);
	return o;
}

/* One endpoint as another host reaches it; NULL if it is no endpoint. */
static json_object *endpoint_for(json_object *val, const char *address)
{
	static const char *const local[] = {
	    "localhost:", "127.0.0.1:", "[::1]:", "0.0.0.0:", "[::]:"};
	char port[16];

	if (json_object_is_type(val, json_type_int)) {
		int64_t p = json_object_get_int64(val);
		if (p < 1 || p > 65535)
			return NULL;
		snprintf(port, sizeof(port), "%lld", (long long)p);
		return addressed(address, port, strlen(port));
	}
	if (!json_object_is_type(val, json_type_string) || json_object_get_string_len(val) == 0)
		return NULL;
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		const char *s = json_object_get_string(val);
		size_t n = strlen(local[i]);
		if (strncmp(s, local[i], n) == 0 && s[n])
			return addressed(address, s + n, strlen(s + n));
	}
	return json_object_get(val);
}

json_object *render_endpoints(json_object *meta, const char *address)
{
	json_object *endpoints = NULL, *port = NULL, *out = NULL;

	if (!meta)
		return NULL;
	json_object_object_get_ex(meta, "endpoints", &endpoints);
	json_object_object_get_ex(meta, "port", &port);
	if (json_object_is_type(endpoints, json_type_object)) {
		out = json_object_new_object();
		json_object_object_foreach(endpoints, k, v)
		{
			json_object *e = endpoint_for(v, address);
			if (e && out)
				json_object_object_add(out, k, e);
			else
				json_object_put(e);
		}
	} else if (json_object_is_type(endpoints, json_type_array)) {
		out = json_object_new_array();
		for (size_t i = 0; out && i < json_object_array_length(endpoints); i++) {
			json_object *e =
			    endpoint_for(json_object_array_get_idx(endpoints, i), address);
			if (e)
				json_object_array_add(out, e);
		}
	}
	if (out &&
	    ((json_object_is_type(out, json_type_object) && json_object_object_length(out) == 0) ||
	     (json_object_is_type(out, json_type_array) && json_object_array_length(out) == 0))) {
		/* none usable: as for the local targets, "port" then */
		json_object_put(out);
		out = NULL;
	}
	if (!out && port) {
		json_object *e = endpoint_for(port, address);
		if (e) {
			out = json_object_new_array();
			if (out)
				json_object_array_add(out, e);
			else
				json_object_put(e);
		}
	}
	return out;
}

/* O as JSON, DFLT when it is NULL; json-c out of memory fails B. */
static void add_json(struct svcfs_buf *b, json_object *o, const char *dflt)
{
	const char *t = o ? json_text(o) : dflt;

	if (t)
		svcfs_buf_adds(b, t);
	else
		b->failed = true;
}

char *render_published(const struct render_input *in, const char *host, const char *address)
{
	json_object *endpoints = render_endpoints(in->meta, address);
	struct svcfs_buf b;
	char since[32];

	render_time(in->since, since, sizeof(since));
	svcfs_buf_init(&b);
	svcfs_buf_adds(&b, "{\"host\":");
	svcfs_buf_add_json_string(&b, host, strlen(host));
	svcfs_buf_adds(&b, ",\"name\":");
	svcfs_buf_add_json_string(&b, in->name, strlen(in->name));
	svcfs_buf_adds(&b, ",\"group\":");
	if (in->group[0])
		svcfs_buf_add_json_string(&b, in->group, strlen(in->group));
	else
		svcfs_buf_adds(&b, "null");
	svcfs_buf_adds(&b, ",\"endpoints\":");
	add_json(&b, endpoints, "null");
	svcfs_buf_adds(&b, ",\"meta\":");
	add_json(&b, in->meta, "{}");
	svcfs_buf_adds(&b, ",\"state\":");
	svcfs_buf_add_json_string(&b, in->state, strlen(in->state));
	svcfs_buf_addf(&b, ",\"since\":\"%s\"", since);
	if (in->pid > 0)
		svcfs_buf_addf(&b, ",\"pid\":%ld", (long)in->pid);
	else
		svcfs_buf_adds(&b, ",\"pid\":null");
	svcfs_buf_addf(&b, ",\"uid\":%lu,\"gid\":%lu}", (unsigned long)in->uid,
	               (unsigned long)in->gid);
	json_object_put(endpoints);
	return svcfs_buf_steal(&b, NULL);
}
