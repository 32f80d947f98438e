/*
 * What libsvcfs's own modules share and nobody else sees: the directory
 * handle of the client side, and small fd-relative helpers. Not installed.
 */
#ifndef SVCFS_PRIVATE_H
#define SVCFS_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "svcfs-internal.h"
#include "svcfs.h"

/* "/proc/self/fd/N/" + a name: how a path of any length is reached by fd. */
#define SVCFS_PROC_FD_FMT "/proc/self/fd/%d/%s"

struct svcfs_dir {
	int fd;       /* the directory opened (O_DIRECTORY) */
	char *path;   /* its absolute path */
	bool mount;   /* an svcfs mount (or a directory below its root) */
	int rootfd;   /* mount: the mount's root, where .services.json is; -1 if unknown */
	char *prefix; /* with rootfd: where fd is below the root ("", or "g/h/") */
};

/*
 * Open the directory holding NAME's last component below BASEFD: walk the
 * groups of NAME (never following symlinks), creating missing ones (mode
 * 0755) when CREATE. *ret_fd is a new fd (or a dup of BASEFD) and
 * *ret_last points into NAME. NAME must have passed svcfs_name_path_check.
 */
int svcfs_open_parent(int basefd, const char *name, bool create, int *ret_fd,
                      const char **ret_last);

/* Read a whole small file NAME below DIRFD into a new NUL-terminated string. */
int svcfs_read_file_at(int dirfd, const char *name, size_t max, char **ret_text, size_t *ret_len);

/* Milliseconds on CLOCK_MONOTONIC. */
static inline int64_t svcfs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline TIMEOUT_MS from now; -1 (none) when TIMEOUT_MS < 0. */
static inline int64_t svcfs_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : svcfs_now_ms() + timeout_ms;
}

/* Milliseconds left until DEADLINE, never negative; -1 (none) stays -1. */
static inline int svcfs_left_ms(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - svcfs_now_ms();
	return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* A new string "A/B" (or B alone when A is empty); NULL on ENOMEM. */
char *svcfs_path_join(const char *a, const char *b);

#endif /* SVCFS_PRIVATE_H */
