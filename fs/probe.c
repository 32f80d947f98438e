/*
 * probe — sock_diag (NETLINK_SOCK_DIAG, unix_diag) and the rare connect.
 *
 * The dump result is kept in an open-addressing table keyed by the bound
 * file's (dev, inode) and rebuilt by each dump. Note the device encoding:
 * unix_diag reports the superblock's s_dev as the kernel keeps it
 * internally (MKDEV: major << 20 | minor; measured here: 254:0 is
 * 0x0fe00000), which is neither glibc's st_dev nor new_encode_dev(), so
 * stat results are converted before they are looked up.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "probe.h"
#include "stats.h"

#define DUMP_BUF_SIZE (64 * 1024)

struct probe {
	int nl;                   /* NETLINK_SOCK_DIAG socket, -1 without sock_diag */
	uint32_t seq;             /* netlink sequence numbers */
	struct probe_sock *slots; /* open addressing; vfs_ino == 0 is empty */
	size_t cap;               /* power of two */
	size_t count;
	char *buf;
	struct svcfs_stats *stats; /* may be NULL */
};

static uint64_t encode_dev(dev_t dev)
{
	return ((uint64_t)major(dev) << 20) | (minor(dev) & 0xfffff);
}

static size_t slot_of(const struct probe *p, uint64_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ (dev << 32) ^ dev) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 17) & (p->cap - 1);
}

static int table_reserve(struct probe *p, size_t n)
{
	size_t cap = 1024;

	while (cap < n * 2)
		cap *= 2;
	if (cap > p->cap) {
		struct probe_sock *s = calloc(cap, sizeof(*s));
		if (!s)
			return -ENOMEM;
		free(p->slots);
		p->slots = s;
		p->cap = cap;
	}
	return 0;
}

static int table_insert(struct probe *p, const struct probe_sock *s)
{
	size_t i;

	if ((p->count + 1) * 2 > p->cap) {
		/* grow: re-insert everything */
		struct probe_sock *old = p->slots;
		size_t oldcap = p->cap;
		p->slots = NULL;
		p->cap = 0;
		if (table_reserve(p, (p->count + 1) * 2) < 0) {
			p->slots = old;
			p->cap = oldcap;
			return -ENOMEM;
		}
		p->count = 0;
		for (size_t j = 0; j < oldcap; j++)
			if (old[j].vfs_ino)
				table_insert(p, &old[j]);
		free(old);
	}
	for (i = slot_of(p, s->vfs_dev, s->vfs_ino);; i = (i + 1) & (p->cap - 1)) {
		if (!p->slots[i].vfs_ino) {
			p->slots[i] = *s;
			p->count++;
			return 0;
		}
		if (p->slots[i].vfs_ino == s->vfs_ino && p->slots[i].vfs_dev == s->vfs_dev) {
			/* two sockets on one file cannot be; keep the listening one */
			if (s->state == PROBE_STATE_LISTEN)
				p->slots[i] = *s;
			return 0;
		}
	}
}

struct probe *probe_new(struct svcfs_stats *stats)
{
	struct probe *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->stats = stats;
	p->buf = malloc(DUMP_BUF_SIZE);
	if (!p->buf || table_reserve(p, 512) < 0)
		return probe_free(p);
	p->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (p->nl >= 0 && probe_dump(p) < 0) {
		close(p->nl);
		p->nl = -1;
	}
	return p;
}

struct probe *probe_free(struct probe *p)
{
	if (!p)
		return NULL;
	if (p->nl >= 0)
		close(p->nl);
	free(p->slots);
	free(p->buf);
	free(p);
	return NULL;
}

bool probe_has_diag(const struct probe *p)
{
	return p->nl >= 0;
}

static int send_request(struct probe *p, uint32_t sock_ino, bool dump)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req req;
	} msg = {
	    .nlh = {.nlmsg_len = sizeof(msg),
	            .nlmsg_type = SOCK_DIAG_BY_FAMILY,
	            .nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0),
	            .nlmsg_seq = ++p->seq},
	    .req = {.sdiag_family = AF_UNIX,
	            .udiag_states = (1u << PROBE_STATE_LISTEN) | (1u << PROBE_STATE_CLOSE),
	            .udiag_ino = sock_ino,
	            .udiag_show = UDIAG_SHOW_VFS | UDIAG_SHOW_RQLEN,
	            .udiag_cookie = {dump ? 0 : ~0u, dump ? 0 : ~0u}},
	};
	struct sockaddr_nl nladdr = {.nl_family = AF_NETLINK};

	for (;;) {
		ssize_t n =
		    sendto(p->nl, &msg, sizeof(msg), 0, (struct sockaddr *)&nladdr, sizeof(nladdr));
		if (n == (ssize_t)sizeof(msg))
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? -errno : -EIO;
	}
}

/* Decode one unix_diag message. Returns false when it has no bound file. */
static bool decode(const struct nlmsghdr *h, struct probe_sock *ret)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*m));
	struct probe_sock s = {0};
	bool has_vfs = false;

	if (len < 0)
		return false;
	s.sock_ino = m->udiag_ino;
	s.type = m->udiag_type;
	s.state = m->udiag_state;
	for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == UNIX_DIAG_VFS &&
		    (size_t)RTA_PAYLOAD(a) >= sizeof(struct unix_diag_vfs)) {
			const struct unix_diag_vfs *vfs = RTA_DATA(a);
			s.vfs_ino = vfs->udiag_vfs_ino;
			s.vfs_dev = vfs->udiag_vfs_dev;
			has_vfs = s.vfs_ino != 0;
		} else if (a->rta_type == UNIX_DIAG_RQLEN &&
		           (size_t)RTA_PAYLOAD(a) >= sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *rq = RTA_DATA(a);
			s.rq = rq->udiag_rqueue;
			s.wq = rq->udiag_wqueue;
		}
	}
	*ret = s;
	return has_vfs;
}

/*
 * Read replies to request p->seq. For each socket message call FN (if not
 * NULL) or store it in *ONE. Returns 0 at the end of the answer.
 */
static int receive(struct probe *p, bool dump, struct probe_sock *one)
{
	for (;;) {
		ssize_t n = recv(p->nl, p->buf, DUMP_BUF_SIZE, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		for (struct nlmsghdr *h = (struct nlmsghdr *)p->buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			struct probe_sock s = {0};
			bool bound;
			if (h->nlmsg_seq != p->seq)
				continue; /* a late answer to an earlier request */
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error ? e->error : -EIO;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
				continue;
			bound = decode(h, &s);
			if (dump && bound) {
				if (table_insert(p, &s) < 0)
					return -ENOMEM;
			} else if (!dump) {
				*one = s;
				return 0;
			}
		}
	}
}

int probe_dump(struct probe *p)
{
	int r;

	if (p->nl < 0)
		return -EOPNOTSUPP;
	/*
	 * The table holds every Unix socket of the network namespace, not only
	 * BACKING's, and is cleared (so resident) on every dump: once a crowd
	 * of sockets is gone, give its memory back.
	 */
	if (p->cap > 1024 && p->count * 8 < p->cap) {
		struct probe_sock *old = p->slots;
		size_t oldcap = p->cap;
		p->slots = NULL;
		p->cap = 0;
		if (table_reserve(p, p->count * 2) < 0) {
			p->slots = old;
			p->cap = oldcap;
		} else {
			free(old);
		}
	}
	memset(p->slots, 0, p->cap * sizeof(*p->slots));
	p->count = 0;
	if (p->stats)
		STATS_INC(p->stats, dumps);
	r = send_request(p, 0, true);
	if (r < 0)
		return r;
	return receive(p, true, NULL);
}

size_t probe_table_bytes(const struct probe *p)
{
	return p->cap * sizeof(*p->slots);
}

const struct probe_sock *probe_find(const struct probe *p, dev_t st_dev, ino_t st_ino)
{
	uint64_t dev = encode_dev(st_dev);

	if (!p->slots || st_ino == 0)
		return NULL;
	for (size_t i = slot_of(p, dev, st_ino);; i = (i + 1) & (p->cap - 1)) {
		const struct probe_sock *s = &p->slots[i];
		if (!s->vfs_ino)
			return NULL;
		if (s->vfs_ino == st_ino && s->vfs_dev == dev)
			return s;
	}
}

int probe_query(struct probe *p, uint32_t sock_ino, struct probe_sock *ret)
{
	struct probe_sock s = {0};
	int r;

	if (p->nl < 0)
		return -EOPNOTSUPP;
	if (p->stats)
		STATS_INC(p->stats, queries);
	r = send_request(p, sock_ino, false);
	if (r < 0)
		return r;
	r = receive(p, false, &s);
	if (r < 0)
		return r;
	if (s.sock_ino != sock_ino)
		return -ENOENT;
	*ret = s;
	return 0;
}

bool probe_sock_alive(const struct probe_sock *s)
{
	if (s->type == SOCK_DGRAM)
		return s->state == PROBE_STATE_CLOSE || s->state == PROBE_STATE_LISTEN;
	return s->state == PROBE_STATE_LISTEN;
}

/*
 * Full the way the kernel decides it: a connect is refused once the queue
 * holds more than the backlog (unix_recvq_full: qlen > max_ack_backlog), so
 * a listener with backlog N takes N + 1 pending clients. For a listener,
 * unix_diag's rqueue is that queue length and wqueue the backlog.
 */
bool probe_sock_busy(const struct probe_sock *s)
{
	return s->type != SOCK_DGRAM && s->state == PROBE_STATE_LISTEN && s->rq > s->wq;
}

int probe_connect_at(int dirfd, const char *file, int type)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int path = -1, fd = -1, r;

	/*
	 * Through /proc/self/fd the address is short whatever the file's
	 * path length; O_PATH follows a symlink to the real socket.
	 */
	path = openat(dirfd, file, O_PATH | O_CLOEXEC);
	if (path < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", path);
	fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = errno == EPROTOTYPE ? -EPROTOTYPE : -errno;
		close(fd);
		goto out;
	}
	r = fd;
out:
	close(path);
	return r;
}

int probe_connect(int dirfd, const char *file, int type)
{
	int fd = probe_connect_at(dirfd, file, type);

	if (fd == -EPROTOTYPE) {
		/* the other kind of socket: try the other types */
		static const int types[] = {SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM};
		for (size_t i = 0; i < 3 && fd == -EPROTOTYPE; i++)
			if (types[i] != type)
				fd = probe_connect_at(dirfd, file, types[i]);
	}
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}
