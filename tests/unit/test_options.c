/*
 * Unit tests for fs/options.c: the svcfs -o options of SPEC §1 — their
 * defaults, valid and invalid values (-EINVAL with a message naming the
 * option), and FUSE's own options left in the argument list.
 */
#define FUSE_USE_VERSION 314
#include <criterion/criterion.h>
#include <errno.h>
#include <fuse_opt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "options.h"

static struct fuse_args args;
static char err[256];

static void setup(void)
{
	args = (struct fuse_args)FUSE_ARGS_INIT(0, NULL);
	memset(err, 0, sizeof(err));
}

static void teardown(void)
{
	fuse_opt_free_args(&args);
}

TestSuite(options, .init = setup, .fini = teardown);

/* Parse "svcfs ARGV… BACKING MOUNTPOINT"; the options land in *O. */
static int parse_argv(const char *const *argv, struct svcfs_options *o)
{
	int r = fuse_opt_add_arg(&args, "svcfs");

	cr_assert_eq(r, 0);
	for (size_t i = 0; argv[i]; i++) {
		r = fuse_opt_add_arg(&args, argv[i]);
		cr_assert_eq(r, 0);
	}
	r = fuse_opt_add_arg(&args, "/backing");
	cr_assert_eq(r, 0);
	r = fuse_opt_add_arg(&args, "/mnt");
	cr_assert_eq(r, 0);
	return options_parse(&args, o, err, sizeof(err));
}

/* Parse "-o OPTS". */
static int parse_o(const char *opts, struct svcfs_options *o)
{
	const char *argv[] = {"-o", opts, NULL};

	return parse_argv(argv, o);
}

/* The arguments left for libfuse, joined with spaces. */
static const char *left(void)
{
	static char text[1024];
	size_t len = 0;

	text[0] = '\0';
	for (int i = 0; i < args.argc; i++)
		len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", i ? " " : "",
					args.argv[i]);
	return text;
}

static bool close_to(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

static char poison_text[] = "poison";

static const struct svcfs_options poison = {
    .probe_interval = -7,
    .probe_timeout_ms = 7,
    .grace = -7,
    .reap = true,
    .poll = -7,
    .max_services = 7,
    .etcd = poison_text,
    .host = poison_text,
    .etcd_prefix = poison_text,
    .address = poison_text,
    .etcd_ttl = 7,
};

/* Field by field: the padding of a struct copy is not defined. */
static bool same_options(const struct svcfs_options *a, const struct svcfs_options *b)
{
	return a->probe_interval == b->probe_interval &&
	       a->probe_timeout_ms == b->probe_timeout_ms && a->grace == b->grace &&
	       a->reap == b->reap && a->poll == b->poll && a->max_services == b->max_services &&
	       a->etcd == b->etcd && a->host == b->host && a->etcd_prefix == b->etcd_prefix &&
	       a->address == b->address && a->etcd_ttl == b->etcd_ttl;
}

/* OPTS must be refused with a message naming NAME, leaving *ret alone. */
static void check_invalid(const char *opts, const char *name)
{
	struct svcfs_options o = poison;
	int r;

	setup();
	r = parse_o(opts, &o);
	cr_assert_eq(r, -EINVAL, "-o %s: got %d", opts, r);
	cr_assert_not_null(strstr(err, name), "-o %s: message '%s' does not name %s", opts, err,
			   name);
	cr_assert(same_options(&o, &poison), "-o %s: ret written on failure", opts);
	teardown();
}

Test(options, defaults)
{
	const char *argv[] = {NULL};
	struct svcfs_options o = poison;
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.probe_interval, 2.0));
	cr_assert_eq(o.probe_timeout_ms, 250);
	cr_assert(close_to(o.grace, 1.0));
	cr_assert_not(o.reap);
	cr_assert(close_to(o.poll, 0), "no polling by default");
	cr_assert_eq(o.max_services, SVCFS_MAX_SERVICES_DEFAULT);
	cr_assert_eq(o.max_services, 100000);
	cr_assert_str_eq(left(), "svcfs /backing /mnt");
}

Test(options, probe_interval_valid)
{
	struct svcfs_options o;
	int r = parse_o("probe_interval=0.5", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.probe_interval, 0.5));
	cr_assert_str_eq(left(), "svcfs /backing /mnt", "the option is taken out");
	teardown();
	setup();
	r = parse_o("probe_interval=3", &o);
	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.probe_interval, 3));
}

Test(options, probe_interval_invalid)
{
	check_invalid("probe_interval=0", "probe_interval");
	check_invalid("probe_interval=-1", "probe_interval");
	check_invalid("probe_interval=abc", "probe_interval");
	check_invalid("probe_interval=", "probe_interval");
	check_invalid("probe_interval=2s", "probe_interval");
	check_invalid("probe_interval=nan", "probe_interval");
	check_invalid("probe_interval=inf", "probe_interval");
	check_invalid("probe_interval=1e308000", "probe_interval");
}

Test(options, probe_timeout_valid)
{
	struct svcfs_options o;
	int r = parse_o("probe_timeout=1000", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(o.probe_timeout_ms, 1000);
}

Test(options, probe_timeout_invalid)
{
	check_invalid("probe_timeout=0", "probe_timeout");
	check_invalid("probe_timeout=-5", "probe_timeout");
	check_invalid("probe_timeout=1.5", "probe_timeout");
	check_invalid("probe_timeout=250ms", "probe_timeout");
	check_invalid("probe_timeout=", "probe_timeout");
	check_invalid("probe_timeout=x", "probe_timeout");
	check_invalid("probe_timeout=99999999999999999999999", "probe_timeout");
}

Test(options, grace_valid)
{
	struct svcfs_options o;
	int r = parse_o("grace=2.5", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.grace, 2.5));
	teardown();
	setup();
	r = parse_o("grace=0", &o);
	cr_assert_eq(r, 0, "grace=0 (no grace) is allowed: %s", err);
	cr_assert(close_to(o.grace, 0));
}

Test(options, grace_invalid)
{
	check_invalid("grace=-1", "grace");
	check_invalid("grace=x", "grace");
	check_invalid("grace=", "grace");
	check_invalid("grace=nan", "grace");
	check_invalid("grace=1d", "grace");
}

Test(options, poll_valid)
{
	struct svcfs_options o;
	int r = parse_o("poll=5", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.poll, 5));
	cr_assert_gt(o.poll, 0);
}

Test(options, poll_invalid)
{
	check_invalid("poll=0", "poll");
	check_invalid("poll=-2", "poll");
	check_invalid("poll=soon", "poll");
	check_invalid("poll=", "poll");
}

Test(options, max_services_valid)
{
	struct svcfs_options o;
	int r = parse_o("max_services=10", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(o.max_services, 10);
}

Test(options, max_services_invalid)
{
	check_invalid("max_services=0", "max_services");
	check_invalid("max_services=-1", "max_services");
	check_invalid("max_services=many", "max_services");
	check_invalid("max_services=1.5", "max_services");
	check_invalid("max_services=", "max_services");
	check_invalid("max_services=99999999999999999999999", "max_services");
	/* strtoul would wrap this to 1 */
	check_invalid("max_services=-18446744073709551615", "max_services");
	check_invalid("probe_timeout=-18446744073709551615", "probe_timeout");
}

/*
 * -o reap is either honoured or refused by name (SPEC §3.4 needs the lock
 * protocol); it is never silently dropped.
 */
Test(options, reap_honoured_or_refused)
{
	struct svcfs_options o = poison;
	int r;

	o.reap = false;
	r = parse_o("reap", &o);
	if (r == 0)
		cr_assert(o.reap, "-o reap accepted but not set");
	else
		cr_assert_eq(r, -EINVAL);
	if (r != 0)
		cr_assert_not_null(strstr(err, "reap"), "message '%s' does not name reap", err);
	cr_assert_null(strstr(left(), "reap"), "reap left for libfuse: %s", left());
}

Test(options, all_together)
{
	struct svcfs_options o;
	int r = parse_o("probe_interval=1.5,probe_timeout=100,grace=3,poll=10,max_services=5", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.probe_interval, 1.5));
	cr_assert_eq(o.probe_timeout_ms, 100);
	cr_assert(close_to(o.grace, 3));
	cr_assert(close_to(o.poll, 10));
	cr_assert_eq(o.max_services, 5);
	cr_assert_str_eq(left(), "svcfs /backing /mnt");
}

Test(options, last_value_wins)
{
	const char *argv[] = {"-o", "grace=3", "-o", "grace=4", NULL};
	struct svcfs_options o;
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.grace, 4));
}

Test(options, joined_o_form)
{
	const char *argv[] = {"-ograce=7", NULL};
	struct svcfs_options o;
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.grace, 7));
}

Test(options, unknown_options_left_for_fuse)
{
	const char *argv[] = {"-f", "-o", "allow_other,grace=2,foo=bar", "-d", NULL};
	struct svcfs_options o;
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert(close_to(o.grace, 2));
	/* libfuse gathers the -o options it keeps in front; order is its business */
	cr_assert_not_null(strstr(left(), "-o allow_other,foo=bar "), "left: %s", left());
	cr_assert_not_null(strstr(left(), " -f "), "left: %s", left());
	cr_assert_not_null(strstr(left(), " -d "), "left: %s", left());
	cr_assert_not_null(strstr(left(), " /backing /mnt"), "left: %s", left());
	cr_assert_null(strstr(left(), "grace"), "left: %s", left());
	cr_assert_eq(args.argc, 7, "left: %s", left());
}

Test(options, invalid_value_beside_fuse_options)
{
	check_invalid("allow_other,max_services=0,default_permissions", "max_services");
}

Test(options, first_bad_option_is_named)
{
	struct svcfs_options o = poison;
	int r = parse_o("grace=x,poll=y", &o);

	cr_assert_eq(r, -EINVAL);
	cr_assert(strstr(err, "grace") || strstr(err, "poll"), "message: %s", err);
	cr_assert_not_null(strstr(err, strstr(err, "grace") ? "'x'" : "'y'"),
			   "the message quotes the bad value: %s", err);
}

Test(options, message_fits_small_buffer)
{
	struct svcfs_options o = poison;
	char small[8];
	int r;

	memset(small, 'z', sizeof(small));
	r = fuse_opt_add_arg(&args, "svcfs");
	cr_assert_eq(r, 0);
	r = fuse_opt_add_arg(&args, "-oprobe_interval=bogus");
	cr_assert_eq(r, 0);
	r = options_parse(&args, &o, small, sizeof(small));
	cr_assert_eq(r, -EINVAL);
	cr_assert_eq(small[sizeof(small) - 1], '\0', "the message is cut and terminated");
}

/* ---- several hosts (SPEC §8): etcd, host, address, etcd_prefix, etcd_ttl ---- */

Test(options, no_etcd_by_default)
{
	const char *argv[] = {NULL};
	struct svcfs_options o = poison;
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_null(o.etcd, "this host alone without -o etcd");
	cr_assert_null(o.host);
	cr_assert_null(o.etcd_prefix);
	cr_assert_null(o.address);
	options_free(&o);
}

/* -o splits at commas: the URLs after the first continue the etcd= list. */
Test(options, etcd_list_continues_after_commas)
{
	struct svcfs_options o = {0};
	int r = parse_o("etcd=http://a:1,http://b:2,host=x", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "http://a:1,http://b:2");
	cr_assert_str_eq(o.host, "x");
	cr_assert_str_eq(o.address, "x", "the address defaults to the host name");
	cr_assert_str_eq(left(), "svcfs /backing /mnt", "no URL left for libfuse");
	options_free(&o);
}

Test(options, etcd_list_with_https_and_fuse_options)
{
	struct svcfs_options o = {0};
	int r = parse_o("allow_other,etcd=https://a:1,http://b:2,https://c:3,grace=2", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "https://a:1,http://b:2,https://c:3");
	cr_assert(close_to(o.grace, 2));
	cr_assert_str_eq(left(), "svcfs -o allow_other /backing /mnt");
	options_free(&o);
}

Test(options, etcd_in_separate_o_arguments)
{
	const char *argv[] = {"-o", "etcd=http://a:1",  "-o", "host=x", "-o", "etcd=http://b:2",
	                      "-o", "address=10.0.0.1", NULL};
	struct svcfs_options o = {0};
	int r = parse_argv(argv, &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "http://a:1,http://b:2", "every etcd= list counts");
	cr_assert_str_eq(o.host, "x");
	cr_assert_str_eq(o.address, "10.0.0.1");
	cr_assert_str_eq(left(), "svcfs /backing /mnt");
	options_free(&o);
}

/* a comma fuse_opt was told to keep ("\,") gives one token with both URLs */
Test(options, etcd_escaped_comma)
{
	struct svcfs_options o = {0};
	int r = parse_o("etcd=http://a:1\\,http://b:2,host=x", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "http://a:1,http://b:2");
	options_free(&o);
}

Test(options, etcd_defaults)
{
	char hostname[256] = "";
	struct svcfs_options o = {0};
	int r;

	cr_assert_eq(gethostname(hostname, sizeof(hostname) - 1), 0);
	r = parse_o("etcd=http://127.0.0.1:2379", &o);
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "http://127.0.0.1:2379");
	cr_assert_eq(o.etcd_ttl, 5);
	cr_assert_eq(o.etcd_ttl, SVCFS_ETCD_TTL_DEFAULT);
	cr_assert_str_eq(o.etcd_prefix, "/svcfs/");
	cr_assert_str_eq(o.host, hostname, "the host name defaults to gethostname");
	cr_assert_str_eq(o.address, hostname, "the address defaults to the host name");
	options_free(&o);
}

Test(options, etcd_values)
{
	struct svcfs_options o = {0};
	int r =
	    parse_o("etcd=http://e:1,host=web1,address=fd00::1,etcd_prefix=/x/y/,etcd_ttl=2", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.host, "web1");
	cr_assert_str_eq(o.address, "fd00::1");
	cr_assert_str_eq(o.etcd_prefix, "/x/y/", "a prefix ending in '/' is kept");
	cr_assert_eq(o.etcd_ttl, 2);
	options_free(&o);
	teardown();
	setup();
	r = parse_o("etcd=http://e:1,etcd_ttl=3600,etcd_prefix=/p", &o);
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(o.etcd_ttl, 3600);
	cr_assert_str_eq(o.etcd_prefix, "/p/", "a prefix gets its trailing '/'");
	options_free(&o);
	teardown();
	setup();
	r = parse_o("etcd=http://e:1,etcd_prefix=/", &o);
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd_prefix, "/");
	options_free(&o);
}

Test(options, etcd_ttl_invalid)
{
	check_invalid("etcd=http://e:1,etcd_ttl=1", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=0", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=3601", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=abc", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=2.5", "etcd_ttl");
	check_invalid("etcd=http://e:1,etcd_ttl=-5", "etcd_ttl");
}

Test(options, host_invalid)
{
	check_invalid("etcd=http://e:1,host=a/b", "host");
	check_invalid("etcd=http://e:1,host=.x", "host");
	check_invalid("etcd=http://e:1,host=", "host");
	check_invalid("etcd=http://e:1,host=a\tb", "host");
}

Test(options, host_length)
{
	char opts[512];
	int len = (int)strlen("etcd=http://e:1,host=");
	struct svcfs_options o = {0};
	int r;

	snprintf(opts, sizeof(opts), "etcd=http://e:1,host=%*s", SVCFS_HOST_MAX + 1, "");
	memset(opts + len, 'h', SVCFS_HOST_MAX + 1);
	check_invalid(opts, "host");
	/* one byte less is the longest name */
	opts[len + SVCFS_HOST_MAX] = '\0';
	setup();
	r = parse_o(opts, &o);
	cr_assert_eq(r, 0, "%s", err);
	cr_assert_eq(strlen(o.host), SVCFS_HOST_MAX);
	options_free(&o);
}

Test(options, host_ok)
{
	cr_assert(options_host_ok("web1"));
	cr_assert(options_host_ok("web1.example.com"));
	cr_assert_not(options_host_ok(""));
	cr_assert_not(options_host_ok(".web"));
	cr_assert_not(options_host_ok("a/b"));
	cr_assert_not(options_host_ok("a\nb"));
}

Test(options, etcd_invalid)
{
	check_invalid("etcd=", "etcd");
	check_invalid("etcd=ftp://x", "etcd");
	check_invalid("etcd=x:2379", "etcd");
	check_invalid("etcd=http://", "etcd");
	check_invalid("etcd=http://a:1,etcd=ftp://b", "etcd");
	/* an empty item, however it comes */
	check_invalid("etcd=http://a:1,etcd=", "etcd");
	check_invalid("etcd=http://a:1,etcd=,etcd=http://b:2", "etcd");
}

Test(options, etcd_shortest_urls)
{
	struct svcfs_options o = {0};
	int r = parse_o("etcd=http://a,https://b", &o);

	cr_assert_eq(r, 0, "%s", err);
	cr_assert_str_eq(o.etcd, "http://a,https://b");
	options_free(&o);
}

Test(options, etcd_too_many_urls)
{
	char list[1024] = "etcd=http://e:1";
	struct svcfs_options o = {0};

	for (int i = 2; i <= 16; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), ",http://e:%d", i);
	cr_assert_eq(parse_o(list, &o), 0, "16 URLs: %s", err);
	options_free(&o);
	teardown();
	snprintf(list + strlen(list), sizeof(list) - strlen(list), ",http://e:17");
	check_invalid(list, "etcd");
}

/* the etcd options are for several hosts: alone they are a mistake */
Test(options, cluster_options_need_etcd)
{
	check_invalid("host=x", "host");
	check_invalid("address=10.0.0.1", "address");
	check_invalid("etcd_prefix=/p/", "etcd_prefix");
	check_invalid("etcd_ttl=10", "etcd_ttl");
	check_invalid("grace=2,host=x", "etcd");
}

/* a URL with no etcd= before it */
Test(options, stray_url)
{
	check_invalid("http://x", "http://x");
	check_invalid("https://x:1,etcd=http://y:2", "https://x:1");
	check_invalid("etcd=http://a:1,allow_other,http://b:2", "http://b:2");
	check_invalid("host=h,http://x", "http://x");
	/* any option ends the list, svcfs's own as libfuse's */
	check_invalid("etcd=http://a:1,grace=2,http://b:2", "http://b:2");
	check_invalid("etcd=http://a:1,reap,http://b:2", "http://b:2");
	check_invalid("etcd=http://a:1,host=h,http://b:2", "http://b:2");
}

Test(options, address_invalid)
{
	check_invalid("etcd=http://e:1,address=a b", "address");
	check_invalid("etcd=http://e:1,address=", "address");
	check_invalid("etcd=http://e:1,address=a/b", "address");
	check_invalid("etcd=http://e:1,address=a\"b", "address");
}

Test(options, etcd_prefix_invalid)
{
	check_invalid("etcd=http://e:1,etcd_prefix=svcfs/", "etcd_prefix");
	check_invalid("etcd=http://e:1,etcd_prefix=", "etcd_prefix");
	check_invalid("etcd=http://e:1,etcd_prefix=/a\tb", "etcd_prefix");
}

Test(options, options_free_clears)
{
	struct svcfs_options o = {0};
	int r = parse_o("etcd=http://e:1,host=x", &o);

	cr_assert_eq(r, 0, "%s", err);
	options_free(&o);
	cr_assert_null(o.etcd);
	cr_assert_null(o.host);
	cr_assert_null(o.etcd_prefix);
	cr_assert_null(o.address);
	options_free(&o); /* twice: nothing left to free */
}
