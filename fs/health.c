/* health — see health.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "health.h"
#include "probe.h"

bool health_path_ok(const char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/' || len > SVCFS_HEALTH_PATH_MAX)
		return false;
	for (const char *p = path; *p; p++)
		if (*p <= ' ' || *p >= 0x7f)
			return false; /* no spaces or controls: they would break the request line */
	return true;
}

int health_start(struct health *h, int dirfd, const char *file, int type, const char *path,
		 unsigned timeout_ms)
{
	char req[SVCFS_HEALTH_PATH_MAX + 64];
	int n, r;

	*h = (struct health){.fd = -1};
	clock_gettime(CLOCK_MONOTONIC, &h->deadline);
	h->deadline.tv_sec += timeout_ms / 1000;
	h->deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000l;
	if (h->deadline.tv_nsec >= 1000000000l) {
		h->deadline.tv_sec++;
		h->deadline.tv_nsec -= 1000000000l;
	}
	h->fd = probe_connect_at(dirfd, file, type);
	if (h->fd < 0) {
		r = h->fd;
		h->fd = -1;
		return r;
	}
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: localhost\r\nUser-Agent: svcfs\r\n\r\n",
		     path);
	/* a fresh socket's buffer takes a small request whole */
	if (send(h->fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
		r = errno ? -errno : -EIO;
		health_close(h);
		return r;
	}
	return 0;
}

int health_read(struct health *h)
{
	for (;;) {
		ssize_t n;
		unsigned code;
		char *eol;

		if (h->len == sizeof(h->buf) - 1)
			return 0; /* no status line in 127 bytes: not HTTP */
		n = recv(h->fd, h->buf + h->len, sizeof(h->buf) - 1 - h->len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -EAGAIN;
		if (n <= 0)
			return 0; /* closed before a status line */
		h->len += (size_t)n;
		h->buf[h->len] = '\0';
		eol = strchr(h->buf, '\n');
		if (!eol)
			continue;
		/* "HTTP/1.x NNN ..." */
		if (sscanf(h->buf, "HTTP/%*u.%*u %3u", &code) != 1)
			return 0;
		return code >= 200 && code <= 299;
	}
}

void health_close(struct health *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
}
