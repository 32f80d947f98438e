/*
 * Unit tests for fs/render.c: the files of a service directory, meta.json,
 * the service's elements of .services.json and .targets.json, label names
 * and the time format. Every JSON text is parsed back with json-c.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"
#include "svcfs-internal.h"

static struct render_output out;
static json_object *meta;

static void setup(void)
{
	memset(&out, 0, sizeof(out));
	meta = NULL;
}

static void teardown(void)
{
	render_output_free(&out);
	json_object_put(meta);
}

TestSuite(render, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static json_object *sidecar(const char *text)
{
	json_object *obj = NULL;
	const char *why = NULL;
	int r = svcfs_sidecar_parse(text, strlen(text), &obj, &why);

	cr_assert_eq(r, 0, "bad test sidecar %s: %s", text, why);
	return obj;
}

static struct render_input input(void)
{
	return (struct render_input){
	    .name = "web",
	    .group = "",
	    .socket = "/run/svcfs/web.sock",
	    .pid = 4242,
	    .uid = 1000,
	    .gid = 1001,
	    .state = "alive",
	    .since = 1795757337, /* 2026-11-27T05:28:57Z */
	    .meta = meta,
	};
}

/* Render IN into the suite's output, with META (a sidecar text, or NULL). */
static void render(struct render_input in, const char *meta_text)
{
	int r;

	if (meta_text) {
		meta = sidecar(meta_text);
		in.meta = meta;
	}
	r = render_service(&in, &out);
	cr_assert_eq(r, 0, "render_service: %d", r);
}

static size_t times_present(const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < out.nfiles; i++)
		if (strcmp(out.files[i].name, name) == 0)
			n++;
	return n;
}

static const struct view_file_spec *find_file(const char *name)
{
	for (size_t i = 0; i < out.nfiles; i++)
		if (strcmp(out.files[i].name, name) == 0)
			return &out.files[i];
	return NULL;
}

/* File NAME exists once, is a regular file and holds exactly TEXT. */
static void check_file(const char *name, const char *text)
{
	const struct view_file_spec *f = find_file(name);

	cr_assert_not_null(f, "no file %s", name);
	cr_assert_eq(times_present(name), 1, "file %s given twice", name);
	cr_assert_not(f->link, "%s is a symlink", name);
	cr_assert_eq(f->len, strlen(text), "%s: length %zu, expected %zu", name, f->len,
		     strlen(text));
	cr_assert_eq(memcmp(f->data, text, f->len), 0, "%s: '%.*s', expected '%s'", name,
		     (int)f->len, f->data, text);
}

/* Parse exactly LEN bytes of TEXT as strict JSON (a new reference). */
static json_object *parse_json(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o;

	cr_assert_not_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	cr_assert_not_null(o, "not JSON: %.*s", (int)len, text);
	cr_assert_eq(json_tokener_get_parse_end(tok), len, "text after the JSON: %.*s", (int)len,
		     text);
	json_tokener_free(tok);
	return o;
}

/* meta.json: valid JSON object ending in exactly one newline. */
static json_object *meta_json(void)
{
	const struct view_file_spec *f = find_file("meta.json");
	json_object *o;

	cr_assert_not_null(f);
	cr_assert_gt(f->len, 1);
	cr_assert_eq(f->data[f->len - 1], '\n', "meta.json must end in a newline");
	cr_assert_neq(f->data[f->len - 2], '\n', "meta.json ends in one newline");
	o = parse_json(f->data, f->len - 1);
	cr_assert(json_object_is_type(o, json_type_object));
	return o;
}

static json_object *entry_json(void)
{
	cr_assert_not_null(out.entry_json);
	return parse_json(out.entry_json, strlen(out.entry_json));
}

static json_object *target_json(void)
{
	json_object *o;

	cr_assert_not_null(out.target_json);
	o = parse_json(out.target_json, strlen(out.target_json));
	cr_assert(json_object_is_type(o, json_type_object));
	return o;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;

	cr_assert(json_object_object_get_ex(o, key, &v), "no key %s in %s", key,
		  json_object_to_json_string(o));
	return v;
}

static const char *get_str(json_object *o, const char *key)
{
	json_object *v = get(o, key);

	cr_assert(json_object_is_type(v, json_type_string), "%s is not a string", key);
	return json_object_get_string(v);
}

/* The targets of a target element, joined with spaces. */
static const char *targets(json_object *t)
{
	static char text[1024];
	json_object *arr = get(t, "targets");
	size_t len = 0;

	cr_assert(json_object_is_type(arr, json_type_array));
	text[0] = '\0';
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		cr_assert(json_object_is_type(e, json_type_string), "a target is not a string");
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", i ? " " : "",
					json_object_get_string(e));
	}
	return text;
}

/* ---- files ---- */

Test(render, found_files)
{
	const struct view_file_spec *sock;

	render(input(), NULL);
	sock = find_file("socket");
	cr_assert_not_null(sock);
	cr_assert(sock->link, "socket is a symlink");
	cr_assert_eq(sock->len, strlen("/run/svcfs/web.sock"));
	cr_assert_eq(memcmp(sock->data, "/run/svcfs/web.sock", sock->len), 0);
	check_file("pid", "4242\n");
	check_file("uid", "1000\n");
	check_file("gid", "1001\n");
	check_file("state", "alive\n");
	check_file("since", "2026-11-27T05:28:57Z\n");
	cr_assert_not_null(find_file("meta.json"));
	cr_assert_eq(out.nfiles, 7, "%zu files", out.nfiles);
}

Test(render, unknown_pid_has_no_file)
{
	struct render_input in = input();
	json_object *m, *e;

	in.pid = 0;
	render(in, NULL);
	cr_assert_null(find_file("pid"));
	cr_assert_eq(out.nfiles, 6);
	m = meta_json();
	cr_assert_not(json_object_object_get_ex(m, "pid", NULL), "meta.json without a pid");
	json_object_put(m);
	e = entry_json();
	cr_assert(json_object_is_type(get(e, "pid"), json_type_null), ".services.json: pid null");
	json_object_put(e);
}

Test(render, scalar_and_structured_values)
{
	render(input(), "{\"version\":\"1.2.3\",\"n\":5,\"f\":1.5,\"yes\":true,\"no\":false,"
			"\"nothing\":null,\"empty\":\"\",\"lines\":\"a\\nb\","
			"\"obj\":{\"a\":[1,2],\"b\":\"x/y\"},\"arr\":[1,\"x\",null]}");
	check_file("version", "1.2.3\n");
	check_file("n", "5\n");
	check_file("f", "1.5\n");
	check_file("yes", "true\n");
	check_file("no", "false\n");
	check_file("nothing", "null\n");
	check_file("empty", "\n");
	check_file("lines", "a\nb\n");
	check_file("obj", "{\"a\":[1,2],\"b\":\"x/y\"}\n");
	check_file("arr", "[1,\"x\",null]\n");
}

Test(render, structured_files_are_json)
{
	const struct view_file_spec *f;
	json_object *o;

	render(input(), "{\"obj\":{\"s\":\"q\\\"uote\\u0001\",\"u\":\"\\u00e9\"}}");
	f = find_file("obj");
	cr_assert_not_null(f);
	cr_assert_eq(f->data[f->len - 1], '\n');
	o = parse_json(f->data, f->len - 1);
	cr_assert_str_eq(get_str(o, "s"), "q\"uote\x01");
	cr_assert_str_eq(get_str(o, "u"), "\xc3\xa9");
	json_object_put(o);
}

Test(render, found_fields_win_over_sidecar)
{
	json_object *m;

	render(input(), "{\"pid\":\"x\",\"uid\":0,\"gid\":0,\"state\":\"dead\","
			"\"since\":\"never\",\"socket\":\"/evil\",\"meta.json\":\"{}\",\"v\":1}");
	check_file("pid", "4242\n");
	check_file("uid", "1000\n");
	check_file("gid", "1001\n");
	check_file("state", "alive\n");
	check_file("since", "2026-11-27T05:28:57Z\n");
	cr_assert_eq(times_present("socket"), 1);
	cr_assert(find_file("socket")->link);
	cr_assert_eq(times_present("meta.json"), 1);
	check_file("v", "1\n");
	cr_assert_eq(out.nfiles, 8);

	m = meta_json();
	cr_assert(json_object_is_type(get(m, "pid"), json_type_int));
	cr_assert_eq(json_object_get_int(get(m, "pid")), 4242);
	cr_assert_eq(json_object_get_int(get(m, "uid")), 1000);
	cr_assert_eq(json_object_get_int(get(m, "gid")), 1001);
	cr_assert_str_eq(get_str(m, "state"), "alive");
	cr_assert_str_eq(get_str(m, "since"), "2026-11-27T05:28:57Z");
	cr_assert_str_eq(get_str(m, "socket"), "/run/svcfs/web.sock");
	cr_assert_eq(json_object_get_int(get(m, "v")), 1);
	json_object_put(m);
}

Test(render, meta_json_has_no_duplicate_keys)
{
	const struct view_file_spec *f;
	char *copy, *p;
	size_t npid = 0;

	render(input(), "{\"pid\":\"x\",\"state\":\"dead\"}");
	f = find_file("meta.json");
	cr_assert_not_null(f);
	copy = strndup(f->data, f->len);
	cr_assert_not_null(copy);
	for (p = copy; (p = strstr(p, "\"pid\"")); p++)
		npid++;
	cr_assert_eq(npid, 1, "\"pid\" appears %zu times in %s", npid, copy);
	cr_assert_null(strstr(copy, "dead"), "the sidecar's state leaked: %s", copy);
	free(copy);
}

Test(render, unsafe_keys_only_in_meta_json)
{
	char longkey[SVCFS_NAME_MAX + 2], okkey[SVCFS_NAME_MAX + 1];
	char text[1024];
	json_object *m;

	memset(longkey, 'L', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	memset(okkey, 'K', sizeof(okkey) - 1);
	okkey[sizeof(okkey) - 1] = '\0';
	snprintf(text, sizeof(text),
		 "{\"a/b\":1,\".hidden\":2,\"ctl\\u0001\":3,\"tab\\t\":4,\"\":5,\"%s\":6,"
		 "\"%s\":7,\"..\":8,\"fine\":9}",
		 longkey, okkey);
	render(input(), text);

	cr_assert_null(find_file("a/b"));
	cr_assert_null(find_file(".hidden"));
	cr_assert_null(find_file("ctl\x01"));
	cr_assert_null(find_file("tab\t"));
	cr_assert_null(find_file(""));
	cr_assert_null(find_file(longkey), "a 256-byte key is no file");
	cr_assert_null(find_file(".."));
	check_file(okkey, "7\n");
	check_file("fine", "9\n");
	cr_assert_eq(out.nfiles, 7 + 2);

	m = meta_json();
	cr_assert_eq(json_object_get_int(get(m, "a/b")), 1);
	cr_assert_eq(json_object_get_int(get(m, ".hidden")), 2);
	cr_assert_eq(json_object_get_int(get(m, "ctl\x01")), 3);
	cr_assert_eq(json_object_get_int(get(m, "tab\t")), 4);
	cr_assert_eq(json_object_get_int(get(m, "")), 5);
	cr_assert_eq(json_object_get_int(get(m, longkey)), 6);
	cr_assert_eq(json_object_get_int(get(m, okkey)), 7);
	cr_assert_eq(json_object_get_int(get(m, "..")), 8);
	json_object_put(m);
}

Test(render, meta_json_is_json_ending_in_newline)
{
	json_object *m;

	render(input(), "{\"x\":{\"y\":[true,null,\"\\\"\"]},\"s\":\"\\u00e9\\n\"}");
	m = meta_json();
	cr_assert_eq(json_object_object_length(m), 2 + 6);
	cr_assert_str_eq(get_str(m, "s"), "\xc3\xa9\n");
	json_object_put(m);
}

Test(render, meta_json_without_sidecar)
{
	json_object *m;

	render(input(), NULL);
	m = meta_json();
	cr_assert_eq(json_object_object_length(m), 6, "socket pid uid gid state since");
	json_object_put(m);
}

Test(render, odd_characters_stay_valid_json)
{
	struct render_input in = input();
	json_object *m, *e, *t;

	in.name = "we\"b\\x";
	in.group = "g\"1/\xc3\xa9";
	in.socket = "/run/s\"v\\c\nfs/we\"b.sock";
	in.state = "al\"ive";
	render(in, "{\"k\\\"ey\":\"v\"}");
	m = meta_json();
	cr_assert_str_eq(get_str(m, "socket"), "/run/s\"v\\c\nfs/we\"b.sock");
	cr_assert_str_eq(get_str(m, "state"), "al\"ive");
	json_object_put(m);
	e = entry_json();
	cr_assert_str_eq(get_str(e, "name"), "we\"b\\x");
	cr_assert_str_eq(get_str(e, "group"), "g\"1/\xc3\xa9");
	cr_assert_str_eq(get_str(e, "socket"), "/run/s\"v\\c\nfs/we\"b.sock");
	json_object_put(e);
	t = target_json();
	cr_assert_str_eq(targets(t), "unix:///run/s\"v\\c\nfs/we\"b.sock");
	cr_assert_str_eq(get_str(get(t, "labels"), "service"), "we\"b\\x");
	json_object_put(t);
}

Test(render, file_storage_survives_until_free)
{
	struct render_input in = input();
	char name[] = "web";

	in.name = name;
	render(in, "{\"k\":\"v\"}");
	name[0] = 'X'; /* the input may change; the output is its own */
	check_file("k", "v\n");
	cr_assert_not_null(strstr(out.entry_json, "\"web\""));
}

/* ---- .services.json element ---- */

Test(render, entry_fields)
{
	struct render_input in = input();
	json_object *e, *m;

	in.group = "a/b";
	render(in, "{\"version\":\"2\",\"pid\":\"x\"}");
	e = entry_json();
	cr_assert_str_eq(get_str(e, "name"), "web");
	cr_assert_str_eq(get_str(e, "group"), "a/b");
	cr_assert_str_eq(get_str(e, "socket"), "/run/svcfs/web.sock");
	cr_assert_eq(json_object_get_int(get(e, "pid")), 4242);
	cr_assert_eq(json_object_get_int(get(e, "uid")), 1000);
	cr_assert_eq(json_object_get_int(get(e, "gid")), 1001);
	cr_assert_str_eq(get_str(e, "state"), "alive");
	cr_assert_str_eq(get_str(e, "since"), "2026-11-27T05:28:57Z");
	m = get(e, "meta");
	cr_assert(json_object_is_type(m, json_type_object));
	cr_assert_str_eq(get_str(m, "version"), "2");
	json_object_put(e);
}

Test(render, entry_top_level_group_is_null)
{
	json_object *e;

	render(input(), NULL);
	e = entry_json();
	cr_assert(json_object_is_type(get(e, "group"), json_type_null));
	cr_assert(json_object_is_type(get(e, "meta"), json_type_object));
	cr_assert_eq(json_object_object_length(get(e, "meta")), 0);
	json_object_put(e);
}

/* ---- .targets.json element ---- */

Test(render, target_unix_socket_by_default)
{
	json_object *t;

	render(input(), NULL);
	t = target_json();
	cr_assert_str_eq(targets(t), "unix:///run/svcfs/web.sock");
	json_object_put(t);
}

Test(render, target_from_endpoints_object)
{
	json_object *t;

	render(input(), "{\"endpoints\":{\"http\":8080,\"grpc\":\"10.0.0.1:9090\"},\"port\":1}");
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:8080 10.0.0.1:9090");
	json_object_put(t);
}

Test(render, target_from_endpoints_array)
{
	json_object *t;

	render(input(), "{\"endpoints\":[8080,\"h:1\"]}");
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:8080 h:1");
	json_object_put(t);
}

Test(render, target_invalid_endpoints_fall_back_to_port)
{
	json_object *t;

	render(input(), "{\"endpoints\":{\"a\":0,\"b\":65536,\"c\":1.5,\"d\":\"\",\"e\":true,"
			"\"f\":null,\"g\":[80],\"h\":-1},\"port\":8081}");
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:8081");
	json_object_put(t);
}

Test(render, target_port_bounds)
{
	json_object *t;

	render(input(), "{\"endpoints\":[1,65535]}");
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:1 localhost:65535");
	json_object_put(t);
}

Test(render, target_from_port)
{
	json_object *t;

	render(input(), "{\"port\":8080}");
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:8080");
	json_object_put(t);
}

Test(render, target_from_port_token)
{
	struct svcfs_tokens tok;
	struct render_input in = input();
	json_object *t;
	int r;

	in.name = "worker-pid12345-port8080";
	svcfs_name_tokens(in.name, &tok);
	meta = svcfs_meta_merge(NULL, &tok);
	cr_assert_not_null(meta);
	in.meta = meta;
	r = render_service(&in, &out);
	cr_assert_eq(r, 0);
	t = target_json();
	cr_assert_str_eq(targets(t), "localhost:8080");
	json_object_put(t);
}

Test(render, target_invalid_port_falls_back_to_socket)
{
	json_object *t;

	render(input(), "{\"port\":70000,\"endpoints\":[]}");
	t = target_json();
	cr_assert_str_eq(targets(t), "unix:///run/svcfs/web.sock");
	json_object_put(t);
}

/* ---- labels ---- */

static json_object *labels_of(json_object *t)
{
	json_object *l = get(t, "labels");

	cr_assert(json_object_is_type(l, json_type_object));
	json_object_object_foreach(l, k, val) {
		cr_assert(json_object_is_type(val, json_type_string), "label %s is not a string",
			  k);
		cr_assert(render_label_name_ok(k), "label name %s is not valid", k);
	}
	return l;
}

Test(render, labels_default_job_is_name)
{
	json_object *t, *l;

	render(input(), NULL);
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "job"), "web");
	cr_assert_str_eq(get_str(l, "service"), "web");
	cr_assert_not(json_object_object_get_ex(l, "group", NULL), "no group at the top level");
	cr_assert_eq(json_object_object_length(l), 2);
	json_object_put(t);
}

Test(render, labels_job_is_group)
{
	struct render_input in = input();
	json_object *t, *l;

	in.group = "workers";
	render(in, NULL);
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "job"), "workers");
	cr_assert_str_eq(get_str(l, "group"), "workers");
	cr_assert_str_eq(get_str(l, "service"), "web");
	json_object_put(t);
}

Test(render, labels_job_from_sidecar)
{
	struct render_input in = input();
	json_object *t, *l;

	in.group = "workers";
	render(in, "{\"job\":\"api\"}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "job"), "api");
	json_object_put(t);
}

Test(render, labels_job_must_be_a_nonempty_string)
{
	json_object *t, *l;

	render(input(), "{\"job\":42}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "job"), "web");
	json_object_put(t);
	render_output_free(&out);
	json_object_put(meta);
	meta = NULL;
	render(input(), "{\"job\":\"\"}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "job"), "web");
	json_object_put(t);
}

Test(render, labels_from_sidecar)
{
	json_object *t, *l;

	render(input(), "{\"labels\":{\"env\":\"prod\",\"n\":3,\"b\":true,\"_x\":\"u\","
			"\"bad-name\":\"x\",\"__meta\":\"y\",\"9a\":\"z\",\"a.b\":\"w\","
			"\"job\":\"override\",\"service\":\"o\",\"group\":\"o\",\"tags\":\"o\","
			"\"obj\":{},\"arr\":[],\"nul\":null}}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "env"), "prod");
	cr_assert_str_eq(get_str(l, "n"), "3");
	cr_assert_str_eq(get_str(l, "b"), "true");
	cr_assert_str_eq(get_str(l, "_x"), "u");
	cr_assert_str_eq(get_str(l, "job"), "web", "labels do not override job");
	cr_assert_str_eq(get_str(l, "service"), "web");
	cr_assert_not(json_object_object_get_ex(l, "bad-name", NULL));
	cr_assert_not(json_object_object_get_ex(l, "__meta", NULL));
	cr_assert_not(json_object_object_get_ex(l, "9a", NULL));
	cr_assert_not(json_object_object_get_ex(l, "a.b", NULL));
	cr_assert_not(json_object_object_get_ex(l, "group", NULL));
	cr_assert_not(json_object_object_get_ex(l, "tags", NULL));
	cr_assert_not(json_object_object_get_ex(l, "obj", NULL));
	cr_assert_not(json_object_object_get_ex(l, "arr", NULL));
	cr_assert_not(json_object_object_get_ex(l, "nul", NULL));
	cr_assert_eq(json_object_object_length(l), 2 + 4);
	json_object_put(t);
}

Test(render, labels_tags)
{
	json_object *t, *l;

	render(input(), "{\"tags\":[\"a\",\"b\",1,null,\"c\"]}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "tags"), ",a,b,c,");
	json_object_put(t);
}

Test(render, labels_no_tags_when_empty)
{
	json_object *t, *l;

	render(input(), "{\"tags\":[1,{}]}");
	t = target_json();
	l = labels_of(t);
	cr_assert_not(json_object_object_get_ex(l, "tags", NULL));
	json_object_put(t);
}

Test(render, labels_ignore_non_object)
{
	json_object *t, *l;

	render(input(), "{\"labels\":[\"env\"],\"tags\":\"a,b\"}");
	t = target_json();
	l = labels_of(t);
	cr_assert_eq(json_object_object_length(l), 2);
	json_object_put(t);
}

/* ---- small functions ---- */

Test(render, label_names)
{
	const char *good[] = {"a", "A", "_", "_a", "a1", "A_b9", "job", "a__b"};
	const char *bad[] = {"", "1a", "9", "__a", "a-b", "a.b", "a b", "\xc3\xa9", "a/b"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert(render_label_name_ok(good[i]), "'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(render_label_name_ok(bad[i]), "'%s' accepted", bad[i]);
	cr_assert_not(render_label_name_ok("__"), "names starting with __ are reserved");
}

Test(render, reserved_names)
{
	const char *reserved[] = {"socket", "meta.json", "pid", "uid", "gid", "state", "since"};

	for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
		cr_assert(render_reserved_name(reserved[i]), "%s", reserved[i]);
	cr_assert_not(render_reserved_name("version"));
	cr_assert_not(render_reserved_name("meta"));
	cr_assert_not(render_reserved_name("PID"));
}

Test(render, time_format)
{
	char buf[32];

	render_time(0, buf, sizeof(buf));
	cr_assert_str_eq(buf, "1970-01-01T00:00:00Z");
	render_time(1795757337, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2026-11-27T05:28:57Z");
	render_time(951782400, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2000-02-29T00:00:00Z");
}

Test(render, time_fits_21_bytes)
{
	char buf[21];

	memset(buf, 'x', sizeof(buf));
	render_time(1795757337, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2026-11-27T05:28:57Z");
}

/* ---- several hosts (SPEC §8): what a host publishes, endpoints from afar ---- */

/* render_endpoints of the sidecar TEXT at ADDRESS, as compact JSON ("NULL" for none). */
static const char *endpoints_of(const char *text, const char *address)
{
	static char result[1024];
	json_object *e;

	json_object_put(meta);
	meta = text ? sidecar(text) : NULL;
	e = render_endpoints(meta, address);
	snprintf(result, sizeof(result), "%s",
	         e ? json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN |
	                                                   JSON_C_TO_STRING_NOSLASHESCAPE)
	           : "NULL");
	json_object_put(e);
	return result;
}

Test(render, endpoints_object_local_addresses_become_the_address)
{
	const char *e = endpoints_of("{\"endpoints\":{\"http\":8080,\"a\":\"localhost:9090\","
	                             "\"b\":\"127.0.0.1:1\",\"c\":\"[::1]:2\",\"d\":\"0.0.0.0:3\","
	                             "\"e\":\"[::]:4\",\"db\":\"db.example:5432\"}}",
	                             "10.0.0.5");

	cr_assert_str_eq(e, "{\"http\":\"10.0.0.5:8080\",\"a\":\"10.0.0.5:9090\","
	                    "\"b\":\"10.0.0.5:1\",\"c\":\"10.0.0.5:2\",\"d\":\"10.0.0.5:3\","
	                    "\"e\":\"10.0.0.5:4\",\"db\":\"db.example:5432\"}");
}

Test(render, endpoints_bad_ports_dropped)
{
	cr_assert_str_eq(endpoints_of("{\"endpoints\":{\"a\":0,\"b\":70000,\"c\":-1,\"d\":1.5,"
	                              "\"e\":\"\",\"f\":null,\"g\":[80],\"ok\":65535}}",
	                              "h"),
	                 "{\"ok\":\"h:65535\"}");
	cr_assert_str_eq(endpoints_of("{\"endpoints\":[0,70000,1,true]}", "h"), "[\"h:1\"]");
}

Test(render, endpoints_array)
{
	cr_assert_str_eq(
	    endpoints_of("{\"endpoints\":[8080,\"localhost:1\",\"x.example:2\"]}", "web1"),
	    "[\"web1:8080\",\"web1:1\",\"x.example:2\"]");
}

Test(render, endpoints_port_fallback)
{
	cr_assert_str_eq(endpoints_of("{\"port\":8080}", "web1"), "[\"web1:8080\"]");
	cr_assert_str_eq(endpoints_of("{\"port\":\"localhost:81\"}", "web1"), "[\"web1:81\"]");
	/* endpoints win over port */
	cr_assert_str_eq(endpoints_of("{\"endpoints\":[1],\"port\":8080}", "web1"), "[\"web1:1\"]");
	/* ... unless none of them is usable: then port, as for local targets */
	cr_assert_str_eq(endpoints_of("{\"endpoints\":[],\"port\":8080}", "web1"),
	                 "[\"web1:8080\"]");
	cr_assert_str_eq(endpoints_of("{\"endpoints\":{\"a\":0},\"port\":8080}", "web1"),
	                 "[\"web1:8080\"]");
	cr_assert_str_eq(endpoints_of("{\"endpoints\":{\"a\":0}}", "web1"), "NULL");
}

Test(render, endpoints_none)
{
	cr_assert_str_eq(endpoints_of(NULL, "h"), "NULL");
	cr_assert_str_eq(endpoints_of("{}", "h"), "NULL");
	cr_assert_str_eq(endpoints_of("{\"version\":\"1\"}", "h"), "NULL");
	cr_assert_str_eq(endpoints_of("{\"port\":0}", "h"), "NULL");
	cr_assert_str_eq(endpoints_of("{\"port\":70000}", "h"), "NULL");
	cr_assert_str_eq(endpoints_of("{\"endpoints\":\"localhost:1\"}", "h"), "NULL");
}

Test(render, endpoints_ipv6_address_in_brackets)
{
	cr_assert_str_eq(endpoints_of("{\"port\":8080}", "fd00::1"), "[\"[fd00::1]:8080\"]");
	cr_assert_str_eq(endpoints_of("{\"endpoints\":{\"a\":\"localhost:9\"}}", "fd00::1"),
	                 "{\"a\":\"[fd00::1]:9\"}");
	cr_assert_str_eq(endpoints_of("{\"port\":8080}", "[fd00::1]"), "[\"[fd00::1]:8080\"]",
	                 "an address in brackets already gets none more");
	cr_assert_str_eq(endpoints_of("{\"port\":8080}", "10.1.2.3"), "[\"10.1.2.3:8080\"]");
}

/* render_published of IN, parsed back. */
static json_object *published(const struct render_input *in, const char *host, const char *address)
{
	char *text = render_published(in, host, address);
	json_object *o;

	cr_assert_not_null(text);
	o = parse_json(text, strlen(text));
	free(text);
	cr_assert(json_object_is_type(o, json_type_object));
	return o;
}

Test(render, published_fields)
{
	struct render_input in = input();
	json_object *p, *m;

	meta = sidecar("{\"version\":\"2\",\"endpoints\":{\"http\":8080}}");
	in.meta = meta;
	in.group = "a/b";
	p = published(&in, "web1", "10.0.0.5");
	cr_assert_str_eq(get_str(p, "host"), "web1");
	cr_assert_str_eq(get_str(p, "name"), "web");
	cr_assert_str_eq(get_str(p, "group"), "a/b");
	cr_assert_str_eq(get_str(get(p, "endpoints"), "http"), "10.0.0.5:8080");
	m = get(p, "meta");
	cr_assert(json_object_is_type(m, json_type_object));
	cr_assert_str_eq(get_str(m, "version"), "2");
	cr_assert_eq(json_object_get_int(get(get(m, "endpoints"), "http")), 8080,
	             "meta is the sidecar as it is");
	cr_assert_str_eq(get_str(p, "state"), "alive");
	cr_assert_str_eq(get_str(p, "since"), "2026-11-27T05:28:57Z");
	cr_assert(json_object_is_type(get(p, "pid"), json_type_int));
	cr_assert_eq(json_object_get_int(get(p, "pid")), 4242);
	cr_assert_eq(json_object_get_int(get(p, "uid")), 1000);
	cr_assert_eq(json_object_get_int(get(p, "gid")), 1001);
	cr_assert_not(json_object_object_get_ex(p, "socket", NULL), "no local path published");
	cr_assert_eq(json_object_object_length(p), 10);
	json_object_put(p);
}

Test(render, published_top_level_without_meta)
{
	struct render_input in = input();
	json_object *p;

	in.pid = 0;
	in.since = 0;
	in.state = "busy";
	p = published(&in, "h\"1", "h");
	cr_assert_str_eq(get_str(p, "host"), "h\"1");
	cr_assert(json_object_is_type(get(p, "group"), json_type_null));
	cr_assert(json_object_is_type(get(p, "endpoints"), json_type_null));
	cr_assert(json_object_is_type(get(p, "meta"), json_type_object));
	cr_assert_eq(json_object_object_length(get(p, "meta")), 0);
	cr_assert(json_object_is_type(get(p, "pid"), json_type_null), "pid unknown: null");
	cr_assert_str_eq(get_str(p, "state"), "busy");
	cr_assert_str_eq(get_str(p, "since"), "1970-01-01T00:00:00Z");
	json_object_put(p);
}

/* Another host's service: in.host set, no socket. */
static struct render_input remote_input(void)
{
	struct render_input in = input();

	in.socket = NULL;
	in.host = "b";
	return in;
}

Test(render, remote_files)
{
	const struct view_file_spec *f;

	render(remote_input(), "{\"v\":1}");
	cr_assert_null(find_file("socket"), "nothing to connect to on this host");
	f = find_file("host");
	cr_assert_not_null(f);
	cr_assert_not(f->link);
	check_file("host", "b\n");
	check_file("pid", "4242\n");
	check_file("uid", "1000\n");
	check_file("gid", "1001\n");
	check_file("state", "alive\n");
	check_file("since", "2026-11-27T05:28:57Z\n");
	check_file("v", "1\n");
	cr_assert_not_null(find_file("meta.json"));
	cr_assert_eq(out.nfiles, 8, "%zu files", out.nfiles);
}

/* a local service's sidecar may say "host": that is a file like any key */
Test(render, local_sidecar_host_is_a_key)
{
	json_object *m;

	render(input(), "{\"host\":\"x\"}");
	check_file("host", "x\n");
	m = meta_json();
	cr_assert_str_eq(get_str(m, "host"), "x");
	json_object_put(m);
}

Test(render, remote_host_wins_over_sidecar)
{
	json_object *m;

	render(remote_input(), "{\"host\":\"evil\",\"socket\":\"/evil\",\"pid\":1,\"k\":\"v\"}");
	check_file("host", "b\n");
	cr_assert_null(find_file("socket"), "a sidecar key socket is no file either");
	check_file("pid", "4242\n");
	check_file("k", "v\n");
	m = meta_json();
	cr_assert_str_eq(get_str(m, "host"), "b");
	cr_assert_not(json_object_object_get_ex(m, "socket", NULL), "no socket in meta.json");
	cr_assert_eq(json_object_get_int(get(m, "pid")), 4242);
	cr_assert_str_eq(get_str(m, "k"), "v");
	json_object_put(m);
}

Test(render, remote_entry)
{
	json_object *e;

	render(remote_input(), NULL);
	e = entry_json();
	cr_assert(json_object_is_type(get(e, "socket"), json_type_null));
	cr_assert_str_eq(get_str(e, "host"), "b");
	cr_assert_str_eq(get_str(e, "name"), "web");
	cr_assert_eq(json_object_get_int(get(e, "pid")), 4242);
	json_object_put(e);
}

Test(render, remote_targets_from_endpoints_only)
{
	json_object *t, *l;

	render(remote_input(),
	       "{\"endpoints\":{\"http\":\"b.example:8080\",\"g\":\"10.0.0.2:9\"},\"port\":1}");
	t = target_json();
	cr_assert_str_eq(targets(t), "b.example:8080 10.0.0.2:9");
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "host"), "b");
	json_object_put(t);
}

Test(render, remote_without_endpoints_has_no_targets)
{
	json_object *t, *l;

	render(remote_input(), "{\"port\":8080,\"labels\":{\"host\":\"evil\",\"env\":\"prod\"}}");
	t = target_json();
	cr_assert_str_eq(targets(t), "", "no unix:// nor localhost target for another host");
	cr_assert_eq(json_object_array_length(get(t, "targets")), 0);
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "host"), "b", "a sidecar label does not shadow the host");
	cr_assert_str_eq(get_str(l, "env"), "prod");
	cr_assert_str_eq(get_str(l, "service"), "web");
	json_object_put(t);
}

/* locally a "host" label is the sidecar's own */
Test(render, local_host_label_from_sidecar)
{
	json_object *t, *l;

	render(input(), "{\"labels\":{\"host\":\"x\"}}");
	t = target_json();
	l = labels_of(t);
	cr_assert_str_eq(get_str(l, "host"), "x");
	json_object_put(t);
}
