/*
 * Unit tests for lib/name.c: the name rules of SPEC §2 (hidden names,
 * suffix split, safe sidecar keys as file names, -pidN/-portN tokens).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "svcfs-internal.h"

Test(name, hidden)
{
	cr_assert(svcfs_name_hidden(""));
	cr_assert(svcfs_name_hidden("."));
	cr_assert(svcfs_name_hidden(".."));
	cr_assert(svcfs_name_hidden(".web.sock"));
	cr_assert_not(svcfs_name_hidden("web.sock"));
	cr_assert_not(svcfs_name_hidden("a.b"));
	cr_assert_not(svcfs_name_hidden("-"));
}

static void check_split(const char *file, enum svcfs_suffix kind, size_t stemlen)
{
	size_t got = (size_t)-1;
	enum svcfs_suffix k = svcfs_name_split(file, &got);

	cr_assert_eq(k, kind, "split(\"%s\"): kind %d, expected %d", file, k, kind);
	cr_assert_eq(got, stemlen, "split(\"%s\"): stem %zu, expected %zu", file, got, stemlen);
}

Test(name, split_known_suffixes)
{
	check_split("web.sock", SVCFS_SUFFIX_SOCK, 3);
	check_split("web.json", SVCFS_SUFFIX_JSON, 3);
	check_split("web.lock", SVCFS_SUFFIX_LOCK, 3);
	check_split("web.pid", SVCFS_SUFFIX_PID, 3);
	check_split("x.pid", SVCFS_SUFFIX_PID, 1);
	check_split("worker-pid12345-port8080.sock", SVCFS_SUFFIX_SOCK, 24);
}

Test(name, split_only_last_suffix)
{
	check_split("web.sock.json", SVCFS_SUFFIX_JSON, 8);
	check_split("web.json.sock", SVCFS_SUFFIX_SOCK, 8);
	check_split("a.b.c.lock", SVCFS_SUFFIX_LOCK, 5);
}

Test(name, split_no_suffix)
{
	check_split("web", SVCFS_SUFFIX_NONE, 3);
	check_split("web.Sock", SVCFS_SUFFIX_NONE, 8);
	check_split("web.sockx", SVCFS_SUFFIX_NONE, 9);
	check_split("websock", SVCFS_SUFFIX_NONE, 7);
	check_split("", SVCFS_SUFFIX_NONE, 0);
}

Test(name, split_empty_stem_is_no_suffix)
{
	check_split(".sock", SVCFS_SUFFIX_NONE, 5);
	check_split(".json", SVCFS_SUFFIX_NONE, 5);
	check_split(".lock", SVCFS_SUFFIX_NONE, 5);
	check_split(".pid", SVCFS_SUFFIX_NONE, 4);
}

static bool safe(const char *key)
{
	return svcfs_name_safe_key(key, strlen(key));
}

Test(name, safe_key_accepts_ordinary_names)
{
	cr_assert(safe("a"));
	cr_assert(safe("version"));
	cr_assert(safe("a.b"));
	cr_assert(safe("a..b"));
	cr_assert(safe("-"));
	cr_assert(safe("with space"));
	cr_assert(safe("\xc3\xa9t\xc3\xa9")); /* UTF-8 "été" */
}

Test(name, safe_key_refuses_unsafe_names)
{
	cr_assert_not(safe(""));
	cr_assert_not(safe("."));
	cr_assert_not(safe(".."));
	cr_assert_not(safe(".hidden"));
	cr_assert_not(safe("a/b"));
	cr_assert_not(safe("/"));
	cr_assert_not(safe("a\tb"));
	cr_assert_not(safe("a\nb"));
	cr_assert_not(safe("\x01"));
	cr_assert_not(safe("a\x1f"));
	cr_assert_not(safe("a\x7f"));
}

Test(name, safe_key_refuses_embedded_nul)
{
	cr_assert_not(svcfs_name_safe_key("a\0b", 3));
}

Test(name, safe_key_length_limit)
{
	char key[SVCFS_NAME_MAX + 2];

	memset(key, 'k', sizeof(key) - 1);
	key[SVCFS_NAME_MAX + 1] = '\0';
	cr_assert(svcfs_name_safe_key(key, SVCFS_NAME_MAX), "255 bytes must be allowed");
	cr_assert_not(svcfs_name_safe_key(key, SVCFS_NAME_MAX + 1), "256 bytes must be refused");
}

static void check_tokens(const char *name, long pid, long port)
{
	struct svcfs_tokens t = {-1, -1};

	svcfs_name_tokens(name, &t);
	cr_assert_eq(t.pid, pid, "tokens(\"%s\"): pid %ld, expected %ld", name, t.pid, pid);
	cr_assert_eq(t.port, port, "tokens(\"%s\"): port %ld, expected %ld", name, t.port, port);
}

Test(name, tokens_spec_example)
{
	check_tokens("worker-pid12345-port8080", 12345, 8080);
}

Test(name, tokens_delimiters_and_ends)
{
	check_tokens("pid7", 7, 0);
	check_tokens("port9", 0, 9);
	check_tokens("x_pid7.port9", 7, 9);
	check_tokens("port80-pid1", 1, 80);
	check_tokens("web.port8080", 0, 8080);
}

Test(name, tokens_none)
{
	check_tokens("web", 0, 0);
	check_tokens("", 0, 0);
	check_tokens("pid", 0, 0);
	check_tokens("port-", 0, 0);
	check_tokens("pid-port", 0, 0);
}

Test(name, tokens_must_be_delimited)
{
	check_tokens("rapid12", 0, 0);	/* "pid" inside a word */
	check_tokens("export80", 0, 0); /* "port" inside a word */
	check_tokens("pid12x", 0, 0);	/* digits not followed by a delimiter */
	check_tokens("port80abc-x", 0, 0);
	check_tokens("pidx12", 0, 0);
}

Test(name, tokens_range)
{
	check_tokens("pid0-port0", 0, 0);
	check_tokens("port1", 0, 1);
	check_tokens("port65535", 0, 65535);
	check_tokens("port65536", 0, 0);
	check_tokens("pid4194304", 4194304, 0);
	check_tokens("pid4194305", 0, 0);
	check_tokens("pid99999999999999999999999999-port99999999999999999999", 0, 0);
}

Test(name, tokens_first_valid_wins)
{
	check_tokens("pid5-pid6", 5, 0);
	check_tokens("pid0-pid6", 6, 0);
	check_tokens("pidx-pid6", 6, 0);
	check_tokens("port70000-port8080-port9090", 0, 8080);
}
