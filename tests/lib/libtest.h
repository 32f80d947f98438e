/*
 * What the libsvcfs suites share: calls that fail the test with the
 * library's reason instead of returning it, and a bounded wait for a name.
 * On top of the integration harness (harness.h): H.backing, H.mnt.
 */
#ifndef SVCFS_LIBTEST_H
#define SVCFS_LIBTEST_H

#include <stdbool.h>

#include <svcfs.h>

#include "harness.h"

/* JSON TEXT as an object (a new reference); fails the test if it is not JSON. */
json_object *lt_parse(const char *text);
/* Register NAME in DIR with sidecar META (JSON text or NULL), TYPE and BACKLOG (0: default). */
svcfs_service *lt_reg_opts(const char *dir, const char *name, const char *meta, int type,
                           int backlog);
/* Register NAME in H.backing with sidecar META (JSON text or NULL). */
svcfs_service *lt_reg(const char *name, const char *meta);
/* svcfs_open(PATH). */
svcfs_dir *lt_open_dir(const char *path);
/* Wait (H_TIMEOUT_MS) until NAME is in D — on a mount with its owner known, so every field is
 * final. */
bool lt_wait_found(svcfs_dir *d, const char *name);
/* Wait (2 H_TIMEOUT_MS) until svcfs_list of D counts N services (on a mount: .services.json caught
 * up). */
bool lt_wait_list_count(svcfs_dir *d, size_t n);

#endif /* SVCFS_LIBTEST_H */
