/* See libtest.h. */
#include <string.h>

#include <criterion/criterion.h>

#include "libtest.h"

json_object *lt_parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	cr_assert_not_null(o, "bad JSON in the test: %s", text);
	return o;
}

svcfs_service *lt_reg_opts(const char *dir, const char *name, const char *meta, int type,
                           int backlog)
{
	struct svcfs_register_opts o = {.dir = dir, .type = type, .backlog = backlog};
	json_object *m = meta ? lt_parse(meta) : NULL;
	svcfs_service *s = NULL;
	int r;

	o.meta = m;
	r = svcfs_register(name, &o, &s);
	json_object_put(m);
	cr_assert_eq(r, 0, "svcfs_register %s in %s: %s", name, dir, strerror(-r));
	return s;
}

svcfs_service *lt_reg(const char *name, const char *meta)
{
	return lt_reg_opts(H.backing, name, meta, 0, 0);
}

svcfs_dir *lt_open_dir(const char *path)
{
	svcfs_dir *d = NULL;
	int r = svcfs_open(path, &d);

	cr_assert_eq(r, 0, "svcfs_open %s: %s", path, strerror(-r));
	return d;
}

struct lookup_ctx {
	svcfs_dir *d;
	const char *name;
};

static bool found(void *arg)
{
	struct lookup_ctx *c = arg;
	svcfs_info *i = NULL;
	bool ok = svcfs_lookup(c->d, c->name, &i) == 0 &&
	          (!svcfs_dir_is_mount(c->d) || svcfs_info_pid(i) > 0);

	svcfs_info_free(i);
	return ok;
}

bool lt_wait_found(svcfs_dir *d, const char *name)
{
	struct lookup_ctx c = {d, name};

	return h_wait_until(found, &c, H_TIMEOUT_MS);
}

struct count_ctx {
	svcfs_dir *d;
	size_t n;
};

static bool list_has_n(void *arg)
{
	struct count_ctx *c = arg;
	svcfs_info **v = NULL;
	size_t n = 0;
	bool ok = svcfs_list(c->d, &v, &n) == 0 && n == c->n;

	svcfs_list_free(v, n);
	return ok;
}

bool lt_wait_list_count(svcfs_dir *d, size_t n)
{
	struct count_ctx c = {d, n};

	return h_wait_until(list_has_n, &c, 2 * H_TIMEOUT_MS); /* churn on a loaded machine */
}
