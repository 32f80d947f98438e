/*
 * Unit tests for lib/name.c: the name rules of SPEC §2 (hidden names,
 * suffix split, safe sidecar keys as file names, -pidN/-portN tokens), the
 * service names libsvcfs takes, and which file is a service's socket.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
	check_tokens("rapid12", 0, 0);  /* "pid" inside a word */
	check_tokens("export80", 0, 0); /* "port" inside a word */
	check_tokens("pid12x", 0, 0);   /* digits not followed by a delimiter */
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

/* ---- names as libsvcfs takes them: "NAME" or "GROUP/.../NAME" ---- */

static int path_check(const char *name, size_t *ncomp)
{
	return svcfs_name_path_check(name, true, ncomp);
}

Test(name, path_check_accepts)
{
	char deep[64] = "a/b/c/d/e/f/g/h/name"; /* 8 groups */
	char longest[SVCFS_NAME_MAX + 1];
	size_t n = 0;
	int r;

	r = path_check("web", &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 1);
	r = path_check("workers/w-1.x", &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 2);
	r = path_check(deep, &n);
	cr_assert_eq(r, 0);
	cr_assert_eq(n, 9);
	memset(longest, 'x', SVCFS_NAME_MAX);
	longest[SVCFS_NAME_MAX] = '\0';
	r = path_check(longest, NULL);
	cr_assert_eq(r, 0);
	r = path_check("caf\xc3\xa9 space", NULL); /* UTF-8 and spaces are fine */
	cr_assert_eq(r, 0);
}

Test(name, path_check_refuses)
{
	static const char *const bad[] = {
	    "",          "/web",      "web/",    "a//b", ".hidden",
	    "g/.hidden", "..",        "../x",    "g/..", "a/b/c/d/e/f/g/h/i/name", /* 9 groups */
	    "new\nline", "tab\there", "del\x7f",
	};
	char toolong[SVCFS_NAME_MAX + 2];
	int r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = path_check(bad[i], NULL);
		cr_assert_eq(r, -EINVAL, "\"%s\" accepted", bad[i]);
	}
	r = path_check(NULL, NULL);
	cr_assert_eq(r, -EINVAL);
	memset(toolong, 'x', sizeof(toolong) - 1);
	toolong[sizeof(toolong) - 1] = '\0';
	r = path_check(toolong, NULL);
	cr_assert_eq(r, -EINVAL);
}

/* Not strict (looking up what svcfs shows): control characters pass, nothing else more. */
Test(name, path_check_lenient)
{
	static const char *const bad[] = {
	    "", "/web", "web/", "a//b", ".hidden", "g/.x", "..", "../x", "a/b/c/d/e/f/g/h/i/name"};
	int r;

	r = svcfs_name_path_check("new\nline", false, NULL);
	cr_assert_eq(r, 0);
	r = svcfs_name_path_check("g/tab\there\x7f", false, NULL);
	cr_assert_eq(r, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = svcfs_name_path_check(bad[i], false, NULL);
		cr_assert_eq(r, -EINVAL, "\"%s\" accepted", bad[i]);
	}
}

/* ---- which file is service NAME's socket (shared by daemon and library) ---- */

static char tmpdir[] = "/tmp/svcfs-unit-name.XXXXXX";
static int tmpfd = -1;

static void bind_at(const char *name)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int r;

	cr_assert_geq(fd, 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/%s", tmpdir, name);
	r = bind(fd, (struct sockaddr *)&a, sizeof(a));
	cr_assert_eq(r, 0, "bind %s: %s", a.sun_path, strerror(errno));
	close(fd); /* the file stays: a socket file is all the rule looks at */
}

static void sock_setup(void)
{
	cr_assert_not_null(mkdtemp(tmpdir));
	tmpfd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(tmpfd, 0);
}

static void sock_teardown(void)
{
	char cmd[sizeof(tmpdir) + 16];

	if (tmpfd >= 0)
		close(tmpfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", tmpdir);
}

static const char *socket_of(const char *name)
{
	static char buf[SVCFS_NAME_MAX + 1];
	const char *file = NULL;
	struct stat st;

	return svcfs_backing_socket(tmpfd, name, buf, &file, &st) == 0 ? file : NULL;
}

Test(name, backing_socket, .init = sock_setup, .fini = sock_teardown)
{
	const char *f;
	int r;

	bind_at("web.sock");
	bind_at("bare");
	bind_at("both.sock");
	bind_at("both");
	bind_at("x.sock.sock");
	r = symlinkat("web.sock", tmpfd, "link.sock");
	cr_assert_eq(r, 0);
	r = symlinkat("missing.sock", tmpfd, "dangling.sock");
	cr_assert_eq(r, 0);
	f = socket_of("web");
	cr_assert_str_eq(f ? f : "(none)", "web.sock");
	f = socket_of("bare");
	cr_assert_str_eq(f ? f : "(none)", "bare");
	f = socket_of("both");
	cr_assert_str_eq(f ? f : "(none)", "both.sock"); /* NAME.sock first */
	f = socket_of("link");
	cr_assert_str_eq(f ? f : "(none)", "link.sock"); /* a symlink to a socket counts */
	f = socket_of("x.sock");
	cr_assert_str_eq(f ? f : "(none)", "x.sock.sock");
	/* controls: nothing, a dangling link, and "NAME.sock" named without its suffix */
	cr_assert_null(socket_of("nothing"));
	cr_assert_null(socket_of("dangling"));
	cr_assert_null(socket_of("web.sock"), "web.sock is service web, not web.sock");
	r = mknodat(tmpfd, "fifo.sock", S_IFIFO | 0600, 0);
	cr_assert_eq(r, 0);
	cr_assert_null(socket_of("fifo"));
}
