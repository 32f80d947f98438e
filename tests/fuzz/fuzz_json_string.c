/*
 * libFuzzer target for svcfs_buf_add_json_string and svcfs_utf8_seq_len
 * (lib/buf.c): every name, socket path and metadata string the daemon
 * shows in meta.json, .services.json and .targets.json goes through them.
 *
 * Checks:
 * - svcfs_utf8_seq_len agrees at every offset with the table of
 *   well-formed UTF-8 (fuzz.h);
 * - the output is exactly one strict JSON string: json-c (strict, UTF-8
 *   validated) parses all of it, and the string it reads back is valid
 *   UTF-8 and equals the input with each byte that does not start a valid
 *   sequence replaced by U+FFFD — so equals the input when the input was
 *   valid UTF-8 (NUL bytes included);
 * - appending keeps what was in the buffer before, and the buffer's length
 *   and terminating NUL are right.
 */
#include <stdbool.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "svcfs-internal.h"

static const char prefix[] = "[1,";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svcfs_buf b, want;
	json_tokener *tok;
	json_object *o;
	const char *text;
	size_t len;

	for (size_t i = 0; i < size; i++) {
		size_t got = svcfs_utf8_seq_len(data + i, size - i);
		size_t ref = ref_utf8_len(data + i, size - i);
		CHECK(got == ref, "utf8_seq_len at %zu: %zu, want %zu", i, got, ref);
	}

	/* the expected string: the input, invalid bytes as U+FFFD */
	svcfs_buf_init(&want);
	for (size_t i = 0; i < size;) {
		size_t n = ref_utf8_len(data + i, size - i);
		if (n == 0) {
			svcfs_buf_add(&want, "\xef\xbf\xbd", 3);
			i++;
		} else {
			svcfs_buf_add(&want, (const char *)data + i, n);
			i += n;
		}
	}
	CHECK(!want.failed, "out of memory");

	/* inside an array, after something already in the buffer */
	svcfs_buf_init(&b);
	svcfs_buf_adds(&b, prefix);
	svcfs_buf_add_json_string(&b, (const char *)data, size);
	svcfs_buf_add(&b, "]", 1);
	CHECK(!b.failed, "out of memory");
	CHECK(b.len == strlen(b.data), "length %zu, %zu before the first NUL", b.len,
	      strlen(b.data));
	CHECK(memcmp(b.data, prefix, sizeof(prefix) - 1) == 0, "prefix overwritten");

	tok = json_tokener_new();
	CHECK(tok != NULL, "json_tokener_new");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, b.data, (int)b.len);
	CHECK(o != NULL, "json-c refuses the output (%s): %.300s",
	      json_tokener_error_desc(json_tokener_get_error(tok)), b.data);
	CHECK(json_tokener_get_parse_end(tok) == b.len, "text after the array: %.300s", b.data);
	CHECK(json_object_is_type(o, json_type_array) && json_object_array_length(o) == 2,
	      "not [1, string]: %.300s", b.data);
	{
		json_object *s = json_object_array_get_idx(o, 1);
		CHECK(json_object_is_type(s, json_type_string), "not a string: %.300s", b.data);
		text = json_object_get_string(s);
		len = (size_t)json_object_get_string_len(s);
	}
	CHECK(len == want.len && memcmp(text, want.data ? want.data : "", len) == 0,
	      "read back %zu bytes, want %zu: %.300s", len, want.len, b.data);
	for (size_t i = 0; i < len;) {
		size_t n = ref_utf8_len((const unsigned char *)text + i, len - i);
		CHECK(n > 0, "read back invalid UTF-8 at %zu", i);
		i += n;
	}
	/* no raw control characters: a file of it is also fine for a terminal */
	for (size_t i = 0; i < b.len; i++)
		CHECK((unsigned char)b.data[i] >= 0x20 && b.data[i] != 0x7f,
		      "raw control character 0x%02x in the output", (unsigned char)b.data[i]);

	json_object_put(o);
	json_tokener_free(tok);
	svcfs_buf_free(&b);
	svcfs_buf_free(&want);
	return 0;
}
