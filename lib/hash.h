/*
 * uthash, configured so that running out of memory is an error the caller
 * sees (svcfs_hash_oom set, item not added) instead of an exit(). Each
 * translation unit has its own flag: clear it, add, test it.
 */
#ifndef SVCFS_HASH_H
#define SVCFS_HASH_H

#include <stdbool.h>

static _Thread_local bool svcfs_hash_oom __attribute__((unused));

#define HASH_NONFATAL_OOM        1
#define uthash_nonfatal_oom(obj) ((void)(obj), svcfs_hash_oom = true)
#include <uthash.h>

#endif /* SVCFS_HASH_H */
