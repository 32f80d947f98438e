/*
 * Unit tests for fs/etcd.c without a server: base64, the end of a prefix
 * range, unary answers (errors, malformed JSON) and the watch stream fed in
 * pieces (objects split anywhere, several in one piece, garbage).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"

/* base64 */

static void check_roundtrip(const char *plain, size_t len, const char *encoded)
{
	char *text = NULL, *back = NULL;
	size_t text_len = 0, back_len = 0;
	int r;

	r = etcd_base64_encode(plain, len, &text, &text_len);
	cr_assert_eq(r, 0);
	cr_assert_str_eq(text, encoded);
	cr_assert_eq(text_len, strlen(encoded));
	r = etcd_base64_decode(text, text_len, &back, &back_len);
	cr_assert_eq(r, 0);
	cr_assert_eq(back_len, len);
	cr_assert_eq(memcmp(back, plain, len), 0);
	cr_assert_eq(back[len], '\0');
	free(text);
	free(back);
}

Test(base64, rfc4648_vectors)
{
	check_roundtrip("", 0, "");
	check_roundtrip("f", 1, "Zg==");
	check_roundtrip("fo", 2, "Zm8=");
	check_roundtrip("foo", 3, "Zm9v");
	check_roundtrip("foob", 4, "Zm9vYg==");
	check_roundtrip("fooba", 5, "Zm9vYmE=");
	check_roundtrip("foobar", 6, "Zm9vYmFy");
}

Test(base64, binary_bytes_and_high_alphabet)
{
	const char bin[] = {'\0', '\xff', '\xfe', '\x00', '\x10', '\x83'};

	check_roundtrip(bin, sizeof(bin), "AP/+ABCD");
	check_roundtrip("\xfb\xff", 2, "+/8=");
}

Test(base64, all_byte_values_roundtrip)
{
	char all[256], *text = NULL, *back = NULL;
	size_t text_len, back_len;
	int r;

	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	for (size_t len = 0; len <= sizeof(all); len++) {
		r = etcd_base64_encode(all, len, &text, &text_len);
		cr_assert_eq(r, 0);
		cr_assert_eq(text_len, (len + 2) / 3 * 4);
		r = etcd_base64_decode(text, text_len, &back, &back_len);
		cr_assert_eq(r, 0);
		cr_assert_eq(back_len, len);
		cr_assert_eq(memcmp(back, all, len), 0);
		free(text);
		free(back);
	}
}

Test(base64, rejects_malformed)
{
	static const char *const bad[] = {
	    "Zg=",                    /* length not a multiple of 4 */
	    "Zg",                     /* unpadded */
	    "Zm9v!A==",               /* not in the alphabet */
	    "Zm9v\nYg==", "Z===",     /* three pads */
	    "====",       "Zg==Zm8=", /* padding inside */
	    "Zh==",                   /* leftover bits not zero */
	    "Zm9=",                   /* leftover bits not zero */
	    "Zm-v",                   /* URL alphabet */
	    "Zm_v",
	};
	char *out = (char *)0x1;
	size_t out_len = 77;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = etcd_base64_decode(bad[i], strlen(bad[i]), &out, &out_len);

		cr_assert_eq(r, -EINVAL, "\"%s\" accepted", bad[i]);
		cr_assert_eq(out, (char *)0x1, "ret_ written on failure");
		cr_assert_eq(out_len, 77);
	}
}

/* prefix_end */

static void check_end(const char *prefix, size_t len, const char *want, size_t want_len)
{
	char *end = NULL;
	size_t end_len = 0;
	int r = etcd_prefix_end(prefix, len, &end, &end_len);

	cr_assert_eq(r, 0);
	cr_assert_eq(end_len, want_len);
	cr_assert_eq(memcmp(end, want, want_len), 0);
	free(end);
}

Test(prefix, end_increments_last_byte)
{
	check_end("/svcfs/hosts/", 13, "/svcfs/hosts0", 13);
	check_end("a", 1, "b", 1);
}

Test(prefix, end_skips_trailing_ff)
{
	check_end("a\xff\xff", 3, "b", 1);
	check_end("\xff", 1, "\0", 1);
	check_end("", 0, "\0", 1);
}

/* unary answers */

static int parse(long status, const char *body, struct json_object **o, char *msg)
{
	return etcd_parse_reply(status, body, strlen(body), o, msg, 256);
}

Test(reply, ok_object_is_returned)
{
	struct json_object *o = NULL;
	char msg[256] = "";
	int r = parse(200, "{\"header\":{\"revision\":\"7\"},\"deleted\":\"1\"}", &o, msg);

	cr_assert_eq(r, 0);
	cr_assert_not_null(o);
	json_object_put(o);
}

Test(reply, grpc_errors_map_to_errno_with_message)
{
	static const struct {
		long status;
		const char *body;
		int err;
		const char *msg;
	} cases[] = {
	    {404,
	     "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: "
	     "requested lease not found\",\"code\":5}",
	     -ENOENT, "etcdserver: requested lease not found"},
	    {503,
	     "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no "
	     "leader\",\"code\":14}",
	     -EAGAIN, "etcdserver: no leader"},
	    {400, "{\"error\":\"x\",\"message\":\"invalid character\",\"code\":3}", -EINVAL,
	     "invalid character"},
	    {400, "{\"error\":\"mvcc: required revision has been compacted\",\"code\":11}", -ERANGE,
	     "mvcc: required revision has been compacted"},
	    {504, "{\"error\":\"context deadline exceeded\",\"code\":4}", -ETIMEDOUT,
	     "context deadline exceeded"},
	    /* an error object even under 200 */
	    {200, "{\"error\":\"etcdserver: too many requests\",\"code\":8}", -ENOSPC,
	     "etcdserver: too many requests"},
	    /* a stream-style error object */
	    {200,
	     "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"etcdserver: no "
	     "leader\"}}",
	     -EAGAIN, "etcdserver: no leader"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct json_object *o = NULL;
		char msg[256] = "";
		int r = parse(cases[i].status, cases[i].body, &o, msg);

		cr_assert_eq(r, cases[i].err, "case %zu: %d", i, r);
		cr_assert_null(o);
		cr_assert_str_eq(msg, cases[i].msg);
	}
}

Test(reply, malformed_json_is_ebadmsg)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "{\"header\":",
	    "not json",
	    "[1,2]",
	    "\"str\"",
	    "{\"a\":1} trailing",
	    "{\"a\":tru}",
	    "{\"a\":1}{\"b\":2}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct json_object *o = NULL;
		char msg[256] = "";
		int r = parse(200, bad[i], &o, msg);

		cr_assert_eq(r, -EBADMSG, "\"%s\": %d", bad[i], r);
		cr_assert_null(o);
		cr_assert_neq(msg[0], '\0');
	}
}

Test(reply, non_json_error_page_maps_http_status)
{
	struct json_object *o = NULL;
	char msg[256] = "";
	int r;

	r = parse(503, "<html>Service Unavailable</html>", &o, msg);
	cr_assert_eq(r, -EAGAIN);
	r = parse(502, "bad gateway", &o, msg);
	cr_assert_eq(r, -EIO);
	cr_assert_str_eq(msg, "HTTP status 502");
	/* Control: the same body under 200 is a bad message, not an HTTP error. */
	r = parse(200, "bad gateway", &o, msg);
	cr_assert_eq(r, -EBADMSG);
}

Test(reply, range_kvs_decoded)
{
	const char *body =
	    "{\"header\":{\"cluster_id\":\"1\",\"revision\":\"12\"},\"kvs\":["
	    "{\"key\":\"L3N2Y2ZzL2E=\",\"create_revision\":\"3\",\"mod_revision\":\"9\","
	    "\"version\":\"2\",\"value\":\"AGI=\",\"lease\":\"7587869395738092293\"},"
	    "{\"key\":\"L3N2Y2ZzL2I=\",\"mod_revision\":\"10\"}],\"more\":true,\"count\":\"5\"}";
	struct etcd_kvs kvs = {0};
	struct json_object *o = NULL;
	char msg[256];
	bool more = false;
	int r = parse(200, body, &o, msg);

	cr_assert_eq(r, 0);
	r = etcd_parse_range(o, &kvs, &more);
	cr_assert_eq(r, 0);
	cr_assert(more);
	cr_assert_eq(kvs.revision, 12);
	cr_assert_eq(kvs.n, 2);
	cr_assert_str_eq(kvs.kv[0].key, "/svcfs/a");
	cr_assert_eq(kvs.kv[0].value_len, 2);
	cr_assert_eq(memcmp(kvs.kv[0].value, "\0b", 2), 0);
	cr_assert_eq(kvs.kv[0].create_revision, 3);
	cr_assert_eq(kvs.kv[0].mod_revision, 9);
	cr_assert_eq(kvs.kv[0].version, 2);
	cr_assert_eq(kvs.kv[0].lease, 7587869395738092293LL);
	/* Zero fields are left out by the gateway: empty value, no lease. */
	cr_assert_str_eq(kvs.kv[1].key, "/svcfs/b");
	cr_assert_eq(kvs.kv[1].value_len, 0);
	cr_assert_str_eq(kvs.kv[1].value, "");
	cr_assert_eq(kvs.kv[1].lease, 0);
	json_object_put(o);
	for (size_t i = 0; i < kvs.n; i++) {
		free(kvs.kv[i].key);
		free(kvs.kv[i].value);
	}
	free(kvs.kv);
}

Test(reply, range_empty_and_bad_fields)
{
	static const char *const bad[] = {
	    "{\"kvs\":{}}",                                     /* not an array */
	    "{\"kvs\":[{\"value\":\"YQ==\"}]}",                 /* no key */
	    "{\"kvs\":[{\"key\":\"a\"}]}",                      /* bad base64 */
	    "{\"kvs\":[{\"key\":\"YQ==\",\"version\":\"x\"}]}", /* not a number */
	    "{\"header\":{\"revision\":true}}",
	};
	struct etcd_kvs kvs = {0};
	bool more = true;
	struct json_object *o = json_tokener_parse("{\"header\":{\"revision\":\"4\"}}");
	int r = etcd_parse_range(o, &kvs, &more);

	cr_assert_eq(r, 0);
	cr_assert_eq(kvs.n, 0);
	cr_assert_eq(kvs.revision, 4);
	cr_assert_not(more);
	json_object_put(o);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct etcd_kvs k = {0};

		o = json_tokener_parse(bad[i]);
		cr_assert_not_null(o);
		r = etcd_parse_range(o, &k, &more);
		cr_assert_eq(r, -EBADMSG, "%s: %d", bad[i], r);
		json_object_put(o);
		for (size_t j = 0; j < k.n; j++) {
			free(k.kv[j].key);
			free(k.kv[j].value);
		}
		free(k.kv);
	}
}

/* The watch stream */

#define MAX_EVENTS 64

struct sink {
	struct etcd_event *ev[MAX_EVENTS];
	size_t n;
};

static int collect(struct etcd_event *ev, void *arg)
{
	struct sink *s = arg;

	cr_assert_lt(s->n, MAX_EVENTS);
	s->ev[s->n++] = ev;
	return 0;
}

static void sink_clear(struct sink *s)
{
	for (size_t i = 0; i < s->n; i++)
		etcd_event_free(s->ev[i]);
	s->n = 0;
}

/* As the 3.4 gateway sends them (captured), one per line. */
static const char stream_text[] =
    "{\"result\":{\"header\":{\"cluster_id\":\"32\",\"revision\":\"3\",\"raft_term\":\"2\"},"
    "\"created\":true}}\n"
    "{\"result\":{\"header\":{\"revision\":\"3\"},\"events\":["
    "{\"kv\":{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
    "\"value\":\"YmFy\",\"lease\":\"2324035653213904647\"}},"
    "{\"type\":\"DELETE\",\"kv\":{\"key\":\"Zm9v\",\"mod_revision\":\"3\"},"
    "\"prev_kv\":{\"key\":\"Zm9v\",\"value\":\"YmFy\"}}]}}\n"
    "{\"result\":{\"header\":{\"revision\":\"9\"}}}\n"
    "{\"result\":{\"header\":{\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"4\"}}"
    "\n";

static void check_stream_events(struct sink *s)
{
	cr_assert_eq(s->n, 5);
	cr_assert_eq(s->ev[0]->type, ETCD_EV_CREATED);
	cr_assert_eq(s->ev[0]->revision, 3);
	cr_assert_eq(s->ev[1]->type, ETCD_EV_PUT);
	cr_assert_eq(s->ev[1]->revision, 2);
	cr_assert_str_eq(s->ev[1]->kv.key, "foo");
	cr_assert_str_eq(s->ev[1]->kv.value, "bar");
	cr_assert_eq(s->ev[1]->kv.lease, 2324035653213904647LL);
	cr_assert_eq(s->ev[2]->type, ETCD_EV_DELETE);
	cr_assert_eq(s->ev[2]->revision, 3);
	cr_assert_str_eq(s->ev[2]->kv.key, "foo");
	cr_assert_eq(s->ev[3]->type, ETCD_EV_PROGRESS);
	cr_assert_eq(s->ev[3]->revision, 9);
	cr_assert_eq(s->ev[4]->type, ETCD_EV_COMPACTED);
	cr_assert_eq(s->ev[4]->revision, 4);
}

Test(stream, whole_stream_at_once)
{
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";
	int r =
	    etcd_stream_feed(st, stream_text, strlen(stream_text), collect, &s, msg, sizeof(msg));

	cr_assert_eq(r, 0, "%s", msg);
	check_stream_events(&s);
	sink_clear(&s);
	etcd_stream_free(st);
}

Test(stream, split_at_every_offset)
{
	size_t len = strlen(stream_text);

	for (size_t cut = 1; cut < len; cut++) {
		struct etcd_stream *st = etcd_stream_new();
		struct sink s = {0};
		char msg[256] = "";
		int r = etcd_stream_feed(st, stream_text, cut, collect, &s, msg, sizeof(msg));

		cr_assert_eq(r, 0, "cut %zu: %s", cut, msg);
		r = etcd_stream_feed(st, stream_text + cut, len - cut, collect, &s, msg,
		                     sizeof(msg));
		cr_assert_eq(r, 0, "cut %zu: %s", cut, msg);
		check_stream_events(&s);
		sink_clear(&s);
		etcd_stream_free(st);
	}
}

Test(stream, one_byte_at_a_time)
{
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";

	for (size_t i = 0; stream_text[i]; i++) {
		int r = etcd_stream_feed(st, stream_text + i, 1, collect, &s, msg, sizeof(msg));

		cr_assert_eq(r, 0, "byte %zu: %s", i, msg);
	}
	check_stream_events(&s);
	sink_clear(&s);
	etcd_stream_free(st);
}

Test(stream, objects_without_newlines_between)
{
	const char *text = "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}"
	                   "{\"result\":{\"header\":{\"revision\":\"6\"}}}";
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";
	int r = etcd_stream_feed(st, text, strlen(text), collect, &s, msg, sizeof(msg));

	cr_assert_eq(r, 0, "%s", msg);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.ev[1]->type, ETCD_EV_PROGRESS);
	cr_assert_eq(s.ev[1]->revision, 6);
	sink_clear(&s);
	etcd_stream_free(st);
}

Test(stream, incomplete_object_emits_nothing)
{
	const char *text = "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":tr";
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";
	int r = etcd_stream_feed(st, text, strlen(text), collect, &s, msg, sizeof(msg));

	cr_assert_eq(r, 0);
	cr_assert_eq(s.n, 0);
	/* After a reset (a new connection) the half object is forgotten. */
	etcd_stream_reset(st);
	r = etcd_stream_feed(st, stream_text, strlen(stream_text), collect, &s, msg, sizeof(msg));
	cr_assert_eq(r, 0, "%s", msg);
	check_stream_events(&s);
	sink_clear(&s);
	etcd_stream_free(st);
}

Test(stream, malformed_is_ebadmsg_after_the_good_objects)
{
	static const char *const bad[] = {
	    "garbage\n",
	    "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n}\n",
	    "[1]",
	    "{\"header\":{}}",                                /* no result */
	    "{\"result\":{\"events\":{}}}",                   /* events not an array */
	    "{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}", /* event without kv */
	    "{\"result\":{\"events\":[{\"type\":\"BOOM\",\"kv\":{\"key\":\"YQ==\"}}]}}",
	    "{\"result\":{\"header\":{\"revision\":\"x\"}}}",
	    "{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!!!\"}}]}}",
	    "null",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct etcd_stream *st = etcd_stream_new();
		struct sink s = {0};
		char msg[256] = "";
		int r = etcd_stream_feed(st, bad[i], strlen(bad[i]), collect, &s, msg, sizeof(msg));

		/* "null" is only known bad once it is complete: give it an end. */
		if (r == 0)
			r = etcd_stream_feed(st, " ", 1, collect, &s, msg, sizeof(msg));
		cr_assert_eq(r, -EBADMSG, "case %zu (%s): %d", i, bad[i], r);
		cr_assert_neq(msg[0], '\0');
		sink_clear(&s);
		etcd_stream_free(st);
	}
}

Test(stream, error_object_and_cancel_are_errors)
{
	const char *no_leader = "{\"error\":{\"grpc_code\":14,\"http_code\":503,"
	                        "\"message\":\"etcdserver: no leader\",\"http_status\":\"Service "
	                        "Unavailable\"}}\n";
	const char *canceled = "{\"result\":{\"canceled\":true,\"cancel_reason\":\"permission "
	                       "denied\"}}\n";
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";
	int r = etcd_stream_feed(st, no_leader, strlen(no_leader), collect, &s, msg, sizeof(msg));

	cr_assert_eq(r, -EAGAIN);
	cr_assert_str_eq(msg, "etcdserver: no leader");
	etcd_stream_reset(st);
	r = etcd_stream_feed(st, canceled, strlen(canceled), collect, &s, msg, sizeof(msg));
	cr_assert_eq(r, -ECANCELED);
	cr_assert_str_eq(msg, "watch canceled: permission denied");
	cr_assert_eq(s.n, 0);
	etcd_stream_free(st);
}

static int stop_after_first(struct etcd_event *ev, void *arg)
{
	struct sink *s = arg;

	s->ev[s->n++] = ev;
	return 1;
}

Test(stream, emit_can_stop_the_feed)
{
	struct etcd_stream *st = etcd_stream_new();
	struct sink s = {0};
	char msg[256] = "";
	int r = etcd_stream_feed(st, stream_text, strlen(stream_text), stop_after_first, &s, msg,
	                         sizeof(msg));

	cr_assert_eq(r, 1);
	cr_assert_eq(s.n, 1);
	sink_clear(&s);
	etcd_stream_free(st);
}
