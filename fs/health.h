/*
 * health — the HTTP health check of SPEC §3.3, without blocking: connect
 * to the service's socket, send "GET PATH HTTP/1.0", read the status line.
 * A 2xx answer is healthy; anything else, or nothing within the timeout,
 * is not. The engine owns the probes and waits on health_fd() in its epoll.
 */
#ifndef SVCFS_HEALTH_H
#define SVCFS_HEALTH_H

#include <stdbool.h>
#include <time.h>

#define SVCFS_HEALTH_PATH_MAX 1024 /* bytes of a health_check path */

struct health {
	int fd;
	struct timespec deadline; /* CLOCK_MONOTONIC */
	char buf[128];		  /* the start of the answer */
	size_t len;
};

/*
 * Start a probe of socket file FILE in DIRFD (socket TYPE) for PATH.
 * Returns 0 (wait for health_fd() to be readable), or a negative errno
 * when it failed at once (which counts as unhealthy).
 */
int health_start(struct health *h, int dirfd, const char *file, int type, const char *path,
		 unsigned timeout_ms);
/* Read what arrived: 1 healthy, 0 unhealthy, -EAGAIN not decided yet. */
int health_read(struct health *h);
void health_close(struct health *h);
/* A usable health_check value: an absolute path of printable ASCII. */
bool health_path_ok(const char *path);

#endif /* SVCFS_HEALTH_H */
