/*
 * aggregates — MNT/.services.json and MNT/.targets.json (SPEC §4): valid
 * JSON (strict, UTF-8) whatever the names, one element per live service
 * with the documented fields, kept current through the kernel's caches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "harness.h"

TestSuite(aggregates, .init = h_setup_mounted, .fini = h_teardown, .timeout = 60);

/* Parse PATH as strict JSON with valid UTF-8; NULL if it is not. */
static json_object *strict_json(const char *path)
{
	char *s = h_slurp(path);
	json_tokener *tok;
	json_object *o;

	if (!s)
		return NULL;
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, s, (int)strlen(s));
	/* the text ends with a newline; nothing but white space follows the value */
	if (o && (json_tokener_get_parse_end(tok) < strlen(s) - 1 || s[strlen(s) - 1] != '\n')) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	free(s);
	return o;
}

struct count_ctx {
	const char *path;
	size_t n;
};

static bool array_len_is(void *ctx)
{
	struct count_ctx *c = ctx;
	json_object *o = strict_json(c->path);
	bool ok =
	    o && json_object_is_type(o, json_type_array) && json_object_array_length(o) == c->n;

	json_object_put(o);
	return ok;
}

static bool wait_array_len(const char *path, size_t n)
{
	struct count_ctx c = {path, n};

	return h_wait_until(array_len_is, &c, H_TIMEOUT_MS);
}

static json_object *field(json_object *o, const char *key)
{
	json_object *v = NULL;

	json_object_object_get_ex(o, key, &v);
	return v;
}

static const char *str_field(json_object *o, const char *key)
{
	json_object *v = field(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* The element of ARR whose KEY (within SUB, if not NULL) is VALUE. */
static json_object *find(json_object *arr, const char *sub, const char *key, const char *value)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		json_object *where = sub ? field(e, sub) : e;
		const char *v = where ? str_field(where, key) : NULL;
		if (v && strcmp(v, value) == 0)
			return e;
	}
	return NULL;
}

Test(aggregates, empty_mount)
{
	json_object *s = strict_json(h_m(".services.json"));
	json_object *t = strict_json(h_m(".targets.json"));

	cr_assert_not_null(s, ".services.json is not valid JSON");
	cr_assert_not_null(t, ".targets.json is not valid JSON");
	cr_assert(json_object_is_type(s, json_type_array) && json_object_array_length(s) == 0);
	cr_assert(json_object_is_type(t, json_type_array) && json_object_array_length(t) == 0);
	json_object_put(s);
	json_object_put(t);
}

Test(aggregates, services_json_fields)
{
	static const char *const keys[] = {"name", "group", "socket", "pid", "uid",
					   "gid",  "state", "since",  "meta"};
	json_object *arr, *web, *plain, *w1, *meta;
	pid_t webpid;
	char *since;
	int r;

	h_write_atomic("web.json", "{\"version\": \"1.2.3\", \"pid\": 99}");
	webpid = h_service("web.sock");
	h_service("plain.sock");
	r = mkdir(h_b("workers"), 0755);
	cr_assert_eq(r, 0);
	h_service("workers/w1.sock");
	cr_assert(wait_array_len(h_m(".services.json"), 3),
		  ".services.json does not list the 3 services");

	arr = strict_json(h_m(".services.json"));
	cr_assert_not_null(arr);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			cr_assert(json_object_object_get_ex(e, keys[k], NULL),
				  "element %zu has no \"%s\": %s", i, keys[k],
				  json_object_to_json_string(e));
		cr_assert_str_eq(str_field(e, "state"), "alive");
		cr_assert(json_object_is_type(field(e, "meta"), json_type_object));
	}
	web = find(arr, NULL, "name", "web");
	plain = find(arr, NULL, "name", "plain");
	w1 = find(arr, NULL, "name", "w1");
	cr_assert(web && plain && w1, "services missing: %s", json_object_to_json_string(arr));

	cr_assert(json_object_is_type(field(web, "group"), json_type_null),
		  "a top-level service's group is not null");
	cr_assert_str_eq(str_field(w1, "group"), "workers");
	cr_assert_str_eq(str_field(web, "socket"), h_b("web.sock"));
	cr_assert_str_eq(str_field(w1, "socket"), h_b("workers/w1.sock"));
	cr_assert_eq(json_object_get_int64(field(web, "pid")), webpid,
		     "the entry's pid is not the listener's");
	cr_assert_eq(json_object_get_int64(field(web, "uid")), 0);
	cr_assert_eq(json_object_get_int64(field(web, "gid")), 0);
	since = h_slurp(h_m("web/since"));
	cr_assert_not_null(since);
	since[strcspn(since, "\n")] = '\0';
	cr_assert_str_eq(str_field(web, "since"), since, "since differs from MNT/web/since");
	free(since);
	meta = field(web, "meta");
	cr_assert_str_eq(str_field(meta, "version"), "1.2.3");
	json_object_put(arr);
	h_assert_daemon_alive();
}

static bool has_name(void *ctx)
{
	const char **c = ctx; /* {name, "1"/"0"} */
	json_object *arr = strict_json(h_m(".services.json"));
	bool in = arr && json_object_is_type(arr, json_type_array) &&
		  find(arr, NULL, "name", c[0]) != NULL;

	json_object_put(arr);
	return arr && in == (c[1][0] == '1');
}

static bool wait_listed_in_services(const char *name, bool present)
{
	const char *ctx[2] = {name, present ? "1" : "0"};

	return h_wait_until(has_name, ctx, H_TIMEOUT_MS);
}

static bool web_version_is(void *ctx)
{
	json_object *arr = strict_json(h_m(".services.json"));
	json_object *web = arr ? find(arr, NULL, "name", "web") : NULL;
	const char *v = web ? str_field(field(web, "meta"), "version") : NULL;
	bool ok = v && strcmp(v, ctx) == 0;

	json_object_put(arr);
	return ok;
}

Test(aggregates, services_json_follows_changes)
{
	int r;

	h_write_atomic("web.json", "{\"version\": \"1\"}");
	h_service("web.sock");
	h_service("gone.sock");
	cr_assert(wait_array_len(h_m(".services.json"), 2));
	for (int i = 0; i < 10; i++) { /* warm */
		char *s = h_slurp(h_m(".services.json"));
		cr_assert_not_null(s);
		free(s);
	}
	h_service("new.sock");
	cr_assert(wait_listed_in_services("new", true), "a new service did not show");
	r = unlink(h_b("gone.sock"));
	cr_assert_eq(r, 0);
	cr_assert(wait_listed_in_services("gone", false), "a vanished service stayed");
	h_write_atomic("web.json", "{\"version\": \"2-longer\"}");
	cr_assert(h_wait_until(web_version_is, "2-longer", H_TIMEOUT_MS),
		  "a sidecar rewrite did not show in .services.json");
	cr_assert(wait_array_len(h_m(".services.json"), 2));
	h_assert_daemon_alive();
}

static bool valid_label_name(const char *s)
{
	if (!s[0] || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
		      (*s >= '0' && *s <= '9')))
			return false;
	return true;
}

static bool targets_contain(json_object *group, const char *target)
{
	json_object *t = field(group, "targets");

	for (size_t i = 0; t && i < json_object_array_length(t); i++)
		if (strcmp(json_object_get_string(json_object_array_get_idx(t, i)), target) == 0)
			return true;
	return false;
}

Test(aggregates, targets_json_file_sd)
{
	json_object *arr, *web, *plain, *w1, *labels;
	char unix_target[PATH_MAX + 16];
	int r;

	h_write_atomic("web.json", "{\"endpoints\": {\"http\": 8080, \"admin\": 8081},"
				   " \"job\": \"frontend\", \"labels\": {\"env\": \"prod\"},"
				   " \"tags\": [\"a\", \"b\"]}");
	h_service("web.sock");
	h_service("plain.sock");
	r = mkdir(h_b("workers"), 0755);
	cr_assert_eq(r, 0);
	h_service("workers/w1.sock");
	cr_assert(wait_array_len(h_m(".targets.json"), 3), ".targets.json does not hold 3 groups");
	arr = strict_json(h_m(".targets.json"));
	cr_assert_not_null(arr);

	/* file_sd: [{"targets": [strings], "labels": {name: string}}] */
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *g = json_object_array_get_idx(arr, i), *t = field(g, "targets");
		cr_assert(json_object_is_type(t, json_type_array) &&
			      json_object_array_length(t) > 0,
			  "group without targets: %s", json_object_to_json_string(g));
		for (size_t k = 0; k < json_object_array_length(t); k++)
			cr_assert(
			    json_object_is_type(json_object_array_get_idx(t, k), json_type_string));
		labels = field(g, "labels");
		cr_assert(json_object_is_type(labels, json_type_object));
		json_object_object_foreach(labels, k, v)
		{
			cr_assert(valid_label_name(k), "invalid label name %s", k);
			cr_assert(json_object_is_type(v, json_type_string),
				  "label %s is not a string", k);
		}
	}
	web = find(arr, "labels", "service", "web");
	plain = find(arr, "labels", "service", "plain");
	w1 = find(arr, "labels", "service", "w1");
	cr_assert(web && plain && w1, "groups missing: %s", json_object_to_json_string(arr));

	cr_assert(targets_contain(web, "localhost:8080") && targets_contain(web, "localhost:8081"),
		  "endpoints are not localhost:PORT: %s", json_object_to_json_string(web));
	cr_assert_eq(json_object_array_length(field(web, "targets")), 2);
	cr_assert_str_eq(str_field(field(web, "labels"), "job"), "frontend");
	cr_assert_str_eq(str_field(field(web, "labels"), "env"), "prod");
	cr_assert_not_null(str_field(field(web, "labels"), "tags"), "tags are not a label");
	cr_assert_not_null(strstr(str_field(field(web, "labels"), "tags"), "a"));

	snprintf(unix_target, sizeof(unix_target), "unix://%s", h_b("plain.sock"));
	cr_assert(targets_contain(plain, unix_target), "no endpoints: expected %s, got %s",
		  unix_target, json_object_to_json_string(plain));
	cr_assert_str_eq(str_field(field(plain, "labels"), "job"), "plain");

	cr_assert_str_eq(str_field(field(w1, "labels"), "job"), "workers",
			 "job of a grouped service is not its group");
	json_object_put(arr);
	h_assert_daemon_alive();
}

Test(aggregates, json_stays_valid_with_odd_names)
{
	static const char *const names[] = {"quo\"te",	  "back\\slash",     "new\nline",
					    "tab\tname",  "bad\xff\xfeutf8", "ctl\001x",
					    "uni\xc3\xa9"};
	size_t n = sizeof(names) / sizeof(names[0]);
	json_object *t;

	for (size_t i = 0; i < n; i++)
		h_service(h_b("%s.sock", names[i]));
	cr_assert(wait_array_len(h_m(".services.json"), n),
		  ".services.json is not valid JSON with %zu services", n);
	/* .targets.json follows in the same batch */
	cr_assert(wait_array_len(h_m(".targets.json"), n),
		  ".targets.json is not valid JSON with %zu services", n);
	t = strict_json(h_m(".targets.json"));
	cr_assert_not_null(t, ".targets.json is not valid JSON");
	cr_assert_eq(json_object_array_length(t), n);
	json_object_put(t);
	for (size_t i = 0; i < n; i++) {
		json_object *meta = h_json_file(h_m("%s/meta.json", names[i]));
		cr_assert_not_null(meta, "meta.json of %zu is not valid JSON", i);
		json_object_put(meta);
	}
	h_assert_daemon_alive();
}
