/*
 * libFuzzer target for svcfs_sidecar_parse (lib/sidecar.c), the one parser
 * that reads what any local user may write into a backing directory.
 *
 * Beside "no crash, no leak, no undefined behaviour" it checks:
 * - against an independent RFC 8259 recogniser (below): the parser accepts
 *   exactly the texts that are strict JSON, a JSON object at the top, at most
 *   SVCFS_SIDECAR_MAX bytes and SVCFS_SIDECAR_DEPTH levels deep (with at most
 *   SVCFS_SIDECAR_KEYS_MAX distinct top-level keys), and fails with the
 *   documented error otherwise;
 * - on success: an object within the limits whose strings and keys are
 *   valid UTF-8; json-c's serialisations (the daemon's compact one, the
 *   pretty one libsvcfs writes sidecars with) are strict JSON, parse back to
 *   an equal object and, when they fit, are accepted again by the parser;
 * - on failure: a reason (*ret_why) is set, *ret_obj is untouched.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "svcfs-internal.h"

/* Deeper than this the recogniser stops recursing: only "refused" is checked. */
#define REF_DEPTH_CAP 256

/* ---- an RFC 8259 recogniser, written from the grammar ---- */

struct ref {
	const unsigned char *p;
	size_t len, i;
	int depth, max_depth;
	bool capped; /* gave up at REF_DEPTH_CAP */
};

static bool ref_value(struct ref *r);

static void ref_ws(struct ref *r)
{
	while (r->i < r->len && (r->p[r->i] == ' ' || r->p[r->i] == '\t' || r->p[r->i] == '\n' ||
	                         r->p[r->i] == '\r'))
		r->i++;
}

static bool ref_eat(struct ref *r, char c)
{
	if (r->i < r->len && r->p[r->i] == (unsigned char)c) {
		r->i++;
		return true;
	}
	return false;
}

static bool ref_literal(struct ref *r, const char *word)
{
	size_t n = strlen(word);

	if (r->len - r->i < n || memcmp(r->p + r->i, word, n) != 0)
		return false;
	r->i += n;
	return true;
}

static bool ref_is_digit(const struct ref *r)
{
	return r->i < r->len && r->p[r->i] >= '0' && r->p[r->i] <= '9';
}

static bool ref_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* number = [ minus ] int [ frac ] [ exp ] */
static bool ref_number(struct ref *r)
{
	ref_eat(r, '-');
	if (ref_eat(r, '0')) {
		/* no leading zeros */
	} else if (ref_is_digit(r) && r->p[r->i] != '0') {
		while (ref_is_digit(r))
			r->i++;
	} else {
		return false;
	}
	if (ref_eat(r, '.')) {
		if (!ref_is_digit(r))
			return false;
		while (ref_is_digit(r))
			r->i++;
	}
	if (ref_eat(r, 'e') || ref_eat(r, 'E')) {
		if (!ref_eat(r, '+'))
			ref_eat(r, '-');
		if (!ref_is_digit(r))
			return false;
		while (ref_is_digit(r))
			r->i++;
	}
	return true;
}

/* string = quotation-mark *char quotation-mark, the text being valid UTF-8 */
static bool ref_string(struct ref *r)
{
	if (!ref_eat(r, '"'))
		return false;
	while (r->i < r->len) {
		unsigned char c = r->p[r->i];
		if (c == '"') {
			r->i++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (r->i + 1 >= r->len)
				return false;
			c = r->p[r->i + 1];
			if (c == 'u') {
				if (r->len - r->i < 6)
					return false;
				for (size_t k = 2; k < 6; k++)
					if (!ref_is_hex(r->p[r->i + k]))
						return false;
				r->i += 6;
			} else if (strchr("\"\\/bfnrt", c) && c) {
				r->i += 2;
			} else {
				return false;
			}
			continue;
		}
		{
			size_t n = ref_utf8_len(r->p + r->i, r->len - r->i);
			if (n == 0)
				return false;
			r->i += n;
		}
	}
	return false;
}

static bool ref_enter(struct ref *r)
{
	if (++r->depth > REF_DEPTH_CAP) {
		r->capped = true;
		return false;
	}
	if (r->depth > r->max_depth)
		r->max_depth = r->depth;
	return true;
}

static bool ref_object(struct ref *r)
{
	if (!ref_eat(r, '{') || !ref_enter(r))
		return false;
	ref_ws(r);
	if (!ref_eat(r, '}')) {
		do {
			ref_ws(r);
			if (!ref_string(r))
				return false;
			ref_ws(r);
			if (!ref_eat(r, ':') || !ref_value(r))
				return false;
		} while (ref_eat(r, ','));
		if (!ref_eat(r, '}'))
			return false;
	}
	r->depth--;
	return true;
}

static bool ref_array(struct ref *r)
{
	if (!ref_eat(r, '[') || !ref_enter(r))
		return false;
	ref_ws(r);
	if (!ref_eat(r, ']')) {
		do {
			if (!ref_value(r))
				return false;
		} while (ref_eat(r, ','));
		if (!ref_eat(r, ']'))
			return false;
	}
	r->depth--;
	return true;
}

/* value with the white space around it */
static bool ref_value(struct ref *r)
{
	bool ok;

	ref_ws(r);
	if (r->i >= r->len)
		return false;
	switch (r->p[r->i]) {
	case '{':
		ok = ref_object(r);
		break;
	case '[':
		ok = ref_array(r);
		break;
	case '"':
		ok = ref_string(r);
		break;
	case 't':
		ok = ref_literal(r, "true");
		break;
	case 'f':
		ok = ref_literal(r, "false");
		break;
	case 'n':
		ok = ref_literal(r, "null");
		break;
	default:
		ok = ref_number(r);
	}
	ref_ws(r);
	return ok;
}

enum verdict { NOT_JSON, NOT_OBJECT, JSON_OBJECT, UNKNOWN };

/* What RFC 8259 says of TEXT; *ret_depth: its nesting depth (containers, empty ones too). */
static enum verdict ref_judge(const unsigned char *text, size_t len, int *ret_depth)
{
	struct ref r = {.p = text, .len = len};
	bool ok;
	size_t first;

	ref_ws(&r);
	first = r.i;
	ok = ref_value(&r) && r.i == len;
	*ret_depth = r.max_depth;
	if (r.capped)
		return UNKNOWN;
	if (!ok)
		return NOT_JSON;
	return text[first] == '{' ? JSON_OBJECT : NOT_OBJECT;
}

/* ---- checks on a parsed object ---- */

static bool utf8_valid(const char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = ref_utf8_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/* Depth of O counted as the parser counts it (an object or array is one level). */
static int walk(json_object *o)
{
	int deepest = 0;

	switch (json_object_get_type(o)) {
	case json_type_object: {
		json_object_object_foreach(o, key, val)
		{
			int d;
			CHECK(utf8_valid(key, strlen(key)), "key not UTF-8");
			d = walk(val);
			if (d > deepest)
				deepest = d;
		}
		return deepest + 1;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			int d = walk(json_object_array_get_idx(o, i));
			if (d > deepest)
				deepest = d;
		}
		return deepest + 1;
	case json_type_string:
		CHECK(utf8_valid(json_object_get_string(o), (size_t)json_object_get_string_len(o)),
		      "string not UTF-8");
		return 0;
	default:
		return 0;
	}
}

/* json-c's text for OBJ (FLAGS) is strict JSON, parses back equal, and svcfs takes it again. */
static void check_round_trip(json_object *obj, int flags)
{
	json_tokener *tok;
	json_object *back, *again = NULL;
	const char *text, *why = NULL;
	size_t len;
	int depth, r;

	text = json_object_to_json_string_length(obj, flags, &len);
	CHECK(text != NULL, "serialisation failed");
	CHECK(ref_judge((const unsigned char *)text, len, &depth) == JSON_OBJECT,
	      "json-c wrote what is not a strict JSON object: %.200s", text);
	tok = json_tokener_new();
	CHECK(tok != NULL, "json_tokener_new");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	back = json_tokener_parse_ex(tok, text, (int)len);
	CHECK(back != NULL, "json-c cannot read its own text back: %s: %.200s",
	      json_tokener_error_desc(json_tokener_get_error(tok)), text);
	CHECK(json_object_equal(obj, back), "round trip changed the object: %.200s", text);
	json_object_put(back);
	json_tokener_free(tok);

	/* what libsvcfs writes (lib/register.c) must be what svcfs reads */
	if (len + 1 <= SVCFS_SIDECAR_MAX) {
		r = svcfs_sidecar_parse(text, len, &again, &why);
		CHECK(r == 0, "svcfs refuses json-c's text of an object it accepted (%s): %.200s",
		      why ? why : "?", text);
		CHECK(json_object_equal(obj, again), "second parse differs");
		json_object_put(again);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char sentinel; /* never dereferenced */
	json_object *const untouched = (json_object *)&sentinel;
	json_object *obj = untouched;
	const char *why = NULL;
	enum verdict v;
	int depth, r;

	r = svcfs_sidecar_parse((const char *)data, size, &obj, &why);
	v = ref_judge(data, size, &depth);

	if (r == 0) {
		CHECK(obj != NULL && obj != untouched, "success without an object");
		CHECK(json_object_is_type(obj, json_type_object), "success with a non-object");
		CHECK(size <= SVCFS_SIDECAR_MAX, "accepted %zu bytes", size);
		CHECK(v == JSON_OBJECT, "accepted what RFC 8259 refuses (verdict %d)", (int)v);
		CHECK(depth <= SVCFS_SIDECAR_DEPTH, "accepted depth %d", depth);
		CHECK(walk(obj) <= SVCFS_SIDECAR_DEPTH, "object deeper than the limit");
		CHECK(json_object_object_length(obj) <= SVCFS_SIDECAR_KEYS_MAX, "too many keys");
		check_round_trip(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		check_round_trip(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
		check_round_trip(obj, JSON_C_TO_STRING_SPACED);
		json_object_put(obj);
		return 0;
	}

	CHECK(obj == untouched, "*ret_obj written on failure");
	CHECK(why != NULL && why[0] != '\0', "failure %d without a reason", r);
	CHECK(r == -EINVAL || r == -EFBIG || r == -E2BIG, "unexpected error %d (%s)", r, why);
	if (size > SVCFS_SIDECAR_MAX) {
		CHECK(r == -EFBIG, "%zu bytes refused with %d (%s), not -EFBIG", size, r, why);
		return 0;
	}
	CHECK(r != -EFBIG, "-EFBIG for %zu bytes (%s)", size, why);
	if (v == JSON_OBJECT && depth > SVCFS_SIDECAR_DEPTH)
		CHECK(r == -E2BIG, "depth %d refused with %d (%s), not -E2BIG", depth, r, why);
	else if (v == JSON_OBJECT)
		CHECK(r == -E2BIG && strcmp(why, "more than 256 top-level keys") == 0,
		      "strict JSON object (depth %d) refused: %d (%s)", depth, r, why);
	return 0;
}
