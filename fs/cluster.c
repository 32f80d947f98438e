/*
 * cluster — publish this host's services into etcd and mirror the other
 * hosts' (see cluster.h). Each thread talks to etcd through its own client
 * (etcd.c). The publisher's state has its own lock (pub_lock), the mirror's
 * its own (mir_lock); the engine takes each only for a moment — never
 * while etcd is called, and never while it works on the view.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "etcd.h"
#include "hash.h"
#include "log.h"
#include "svcfs-internal.h"

#define UNKNOWN_AFTER_MS 1000 /* cut off that long: remote entries are "unknown" */
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   2000
#define CALL_MAX_MS      2000  /* budget of one etcd call */
#define REVOKE_MS        1000  /* budget of the lease revoke at a clean stop */
#define LATE_RESYNC_MS   10000 /* a write that failed may land this late (etcd's own timeouts) */
#define BATCH_BYTES                                                                                \
	(768 * 1024) /* of keys and values in one transaction:                                     \
	                base64 and JSON stay under etcd's 1.5 MiB */

/* A key this host wants published (or deleted: value NULL). */
struct pubkey {
	char *path;  /* "[GROUP/]NAME" */
	char *value; /* NULL: to delete */
	uint64_t gen;
	bool queued;
	bool same;           /* etcd holds this value under our lease (pub_compare) */
	struct pubkey *next; /* c->qhead */
	UT_hash_handle hh;   /* c->pub */
};

/* Another host's key, as the mirror last read it. */
struct rkey {
	char *key;   /* after PREFIX hosts/: "HOST/[GROUP/]NAME" */
	char *value; /* NULL: gone, freed once taken */
	bool dirty;
	bool seen;         /* in the range being applied */
	struct rkey *next; /* c->dirty_head */
	UT_hash_handle hh; /* c->remote */
};

struct cluster {
	char *urls, *host;
	char *hosts_prefix; /* PREFIX hosts/ */
	char *own_prefix;   /* PREFIX hosts/HOST/ */
	unsigned ttl;
	int ka_ms; /* keepalive interval: TTL/3 */
	int call_ms;

	/* publisher (pub_lock) */
	pthread_mutex_t pub_lock;
	pthread_cond_t cond; /* the publisher waits on it (CLOCK_MONOTONIC) */
	bool stop, revoke;
	struct pubkey *pub;
	struct pubkey *qhead, *qtail;
	size_t npub; /* keys with a value */
	bool resync; /* compare etcd with what we want, fix what differs */
	int64_t lease;
	bool pub_failing;
	uint64_t puts, deletes, leases, resyncs, skipped;

	/* mirror (mir_lock) */
	pthread_mutex_t mir_lock;
	struct rkey *remote;
	struct rkey *dirty_head, *dirty_tail; /* in the order they changed */
	size_t nremote;
	bool unknown, unknown_taken;
	bool mirror_up;
	int64_t revision;
	uint64_t compactions;

	int fd;      /* eventfd: changes wait for the engine */
	int stop_fd; /* eventfd: wakes the mirror's poll */
	pthread_t pub_thread, mirror_thread;
	bool pub_started, mirror_started;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *concat3(const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
	char *s = malloc(la + lb + lc + 1);

	if (s) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb);
		memcpy(s + la + lb, c, lc + 1);
	}
	return s;
}

struct cluster *cluster_new(const struct cluster_config *cfg)
{
	struct cluster *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	struct etcd *probe;

	if (!c)
		return NULL;
	c->fd = c->stop_fd = -1;
	pthread_mutex_init(&c->pub_lock, NULL);
	pthread_mutex_init(&c->mir_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->ttl = cfg->ttl;
	c->ka_ms = (int)(cfg->ttl * 1000 / 3);
	c->call_ms = c->ka_ms < CALL_MAX_MS ? c->ka_ms : CALL_MAX_MS;
	c->urls = strdup(cfg->urls);
	c->host = strdup(cfg->host);
	c->hosts_prefix = concat3(cfg->prefix, "hosts/", "");
	c->own_prefix = concat3(cfg->prefix, "hosts/", cfg->host);
	if (c->own_prefix) {
		char *p = concat3(c->own_prefix, "/", "");
		free(c->own_prefix);
		c->own_prefix = p;
	}
	c->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	c->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!c->urls || !c->host || !c->hosts_prefix || !c->own_prefix || c->fd < 0 ||
	    c->stop_fd < 0)
		return cluster_free(c);
	probe = etcd_new(c->urls, c->call_ms); /* checks the list */
	if (!probe)
		return cluster_free(c);
	etcd_free(probe);
	return c;
}

/* ---- publisher (everything below with pub_lock held, unless said) ---- */

static void queue_push(struct cluster *c, struct pubkey *k, bool front)
{
	if (k->queued)
		return;
	k->queued = true;
	k->next = NULL;
	if (!c->qhead) {
		c->qhead = c->qtail = k;
	} else if (front) {
		k->next = c->qhead;
		c->qhead = k;
	} else {
		c->qtail->next = k;
		c->qtail = k;
	}
}

static struct pubkey *queue_pop(struct cluster *c)
{
	struct pubkey *k = c->qhead;

	if (k) {
		c->qhead = k->next;
		if (!c->qhead)
			c->qtail = NULL;
		k->queued = false;
		k->next = NULL;
	}
	return k;
}

/* A key to want, made if new; NULL on ENOMEM. */
static struct pubkey *pub_get(struct cluster *c, const char *path)
{
	struct pubkey *k;

	HASH_FIND_STR(c->pub, path, k);
	if (k)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->path = strdup(path))) {
		free(k);
		return NULL;
	}
	svcfs_hash_oom = false;
	HASH_ADD_KEYPTR(hh, c->pub, k->path, strlen(k->path), k);
	if (svcfs_hash_oom) {
		free(k->path);
		free(k);
		return NULL;
	}
	return k;
}

/* Publisher thread only: forget K (not queued, not wanted). */
static void pub_drop(struct cluster *c, struct pubkey *k)
{
	HASH_DELETE(hh, c->pub, k);
	free(k->path);
	free(k->value);
	free(k);
}

void cluster_publish(struct cluster *c, const char *path, const char *value)
{
	struct pubkey *k;
	char *copy = NULL;

	pthread_mutex_lock(&c->pub_lock);
	HASH_FIND_STR(c->pub, path, k);
	if (k && value && k->value && strcmp(k->value, value) == 0)
		goto out; /* nothing new (a chmod, say): no write */
	if (!k && !value)
		goto out; /* never published */
	if (value && (!(copy = strdup(value)) || (!k && !(k = pub_get(c, path))))) {
		log_err("etcd: out of memory publishing %s", path);
		free(copy);
		goto out;
	}
	if (!k->value && copy)
		c->npub++;
	else if (k->value && !copy)
		c->npub--;
	free(k->value);
	k->value = copy;
	k->gen++;
	queue_push(c, k, false);
	pthread_cond_signal(&c->cond);
out:
	pthread_mutex_unlock(&c->pub_lock);
}

/* Wait until DEADLINE (ms, monotonic) or a signal. */
static void pub_wait(struct cluster *c, int64_t deadline)
{
	struct timespec ts;

	ts.tv_sec = deadline / 1000;
	ts.tv_nsec = (deadline % 1000) * 1000000;
	pthread_cond_timedwait(&c->cond, &c->pub_lock, &ts);
}

struct pubstate {
	struct etcd *ec;
	int backoff;
	int64_t retry_at;       /* etcd failed: nothing before then */
	int64_t ka_at;          /* next keepalive */
	int64_t resync_at;      /* a resync that failed for its own reasons: not before then */
	int64_t late_resync_at; /* one more resync, for writes that land late; 0 none */
	size_t batch_max;       /* operations in one transaction (halved on a refusal) */
};

/* Errors that say "this request", not "etcd": retrying it as it is cannot help. */
static bool refused(int r)
{
	return r == -EINVAL || r == -ENOSPC || r == -EMSGSIZE || r == -EACCES;
}

/*
 * A call failed because of etcd (unreachable, no leader, timed out): retry
 * later, then compare everything, and once more after a write may have
 * landed late. Deletes waiting are dropped: the comparison deletes every
 * key of ours that is not wanted, so a long outage keeps no list of them.
 */
static void pub_failed(struct cluster *c, struct pubstate *ps, const char *what)
{
	int max = c->ka_ms < BACKOFF_MAX_MS ? c->ka_ms : BACKOFF_MAX_MS;
	struct pubkey *k, *keep = NULL, **tail = &keep;

	ps->backoff = ps->backoff ? ps->backoff * 2 : BACKOFF_MIN_MS;
	if (ps->backoff > max)
		ps->backoff = max;
	ps->retry_at = now_ms() + ps->backoff;
	ps->late_resync_at = now_ms() + LATE_RESYNC_MS;
	c->resync = true;
	while ((k = queue_pop(c))) {
		if (k->value) {
			k->queued = true;
			*tail = k;
			tail = &k->next;
		} else {
			pub_drop(c, k);
		}
	}
	c->qhead = keep;
	c->qtail = NULL;
	for (k = keep; k; k = k->next)
		c->qtail = k;
	if (!c->pub_failing)
		log_warn("etcd: cannot %s (%s); retrying, local services are not affected", what,
		         etcd_errmsg(ps->ec));
	c->pub_failing = true;
}

static void pub_ok(struct cluster *c, struct pubstate *ps)
{
	if (c->pub_failing)
		log_info("etcd: publishing again through %s", etcd_endpoint(ps->ec));
	c->pub_failing = false;
	ps->backoff = 0;
}

/* Queue every wanted key whose etcd copy differs, and a delete for each
 * key of ours in etcd that is not wanted. */
static void pub_compare(struct cluster *c, const struct etcd_kvs *kvs)
{
	size_t plen = strlen(c->own_prefix);
	struct pubkey *k, *tmp;

	HASH_ITER(hh, c->pub, k, tmp)
	k->same = false;
	for (size_t i = 0; i < kvs->n; i++) {
		const struct etcd_kv *kv = &kvs->kv[i];
		/* keys and values are NUL-terminated (etcd.h); one with a NUL is not ours */
		if (kv->key_len <= plen || strlen(kv->key) != kv->key_len)
			continue;
		HASH_FIND_STR(c->pub, kv->key + plen, k);
		if (k && k->value)
			k->same = kv->lease == c->lease && kv->value_len == strlen(k->value) &&
			          memcmp(kv->value, k->value, kv->value_len) == 0;
		else if (!k && (k = pub_get(c, kv->key + plen)))
			queue_push(c, k, false); /* value NULL: delete it */
	}
	HASH_ITER(hh, c->pub, k, tmp)
	{
		if (k->value && !k->same)
			queue_push(c, k, false);
	}
}

/*
 * Send queued keys in one transaction: at most batch_max operations and
 * BATCH_BYTES (at least one), so that a burst (the start, a resync) costs
 * one request per batch and a single change one request. A transaction
 * etcd refuses as such (too large, say) is split in halves down to single
 * keys; a single key refused is skipped (logged) until the next resync.
 */
static void pub_send(struct cluster *c, struct pubstate *ps)
{
	struct pubkey *batch[ETCD_TXN_MAX];
	struct etcd_op ops[ETCD_TXN_MAX];
	uint64_t gens[ETCD_TXN_MAX];
	size_t n = 0, plen = strlen(c->own_prefix), nput = 0, bytes = 0;
	int64_t lease = c->lease;
	int r = 0;

	while (n < ps->batch_max && c->qhead) {
		struct pubkey *k = c->qhead;
		size_t len = strlen(k->path), vlen = k->value ? strlen(k->value) : 0;
		char *key, *value;

		if (n > 0 && bytes + plen + len + vlen > BATCH_BYTES)
			break;
		queue_pop(c);
		key = malloc(plen + len + 1);
		value = k->value ? strdup(k->value) : NULL;
		if (!key || (k->value && !value)) {
			free(key);
			free(value);
			queue_push(c, k, true);
			r = -ENOMEM;
			break;
		}
		memcpy(key, c->own_prefix, plen);
		memcpy(key + plen, k->path, len + 1);
		batch[n] = k;
		gens[n] = k->gen;
		ops[n] = (struct etcd_op){key, value, vlen, !value};
		nput += value != NULL;
		bytes += plen + len + vlen;
		n++;
	}
	if (n > 0) {
		pthread_mutex_unlock(&c->pub_lock);
		r = n == 1 ? (ops[0].del ? etcd_delete(ps->ec, ops[0].key, NULL)
		                         : etcd_put(ps->ec, ops[0].key, ops[0].value,
		                                    ops[0].value_len, lease, NULL))
		           : etcd_txn(ps->ec, ops, n, lease, NULL);
		pthread_mutex_lock(&c->pub_lock);
	}
	for (size_t i = n; i-- > 0;) {
		struct pubkey *k = batch[i];
		free((char *)ops[i].key);
		free((void *)ops[i].value);
		if (r < 0 && !(refused(r) && n == 1))
			queue_push(c, k, true); /* in their order, ahead of the rest */
		else if (r >= 0 && ops[i].del && k->gen == gens[i] && !k->queued)
			pub_drop(c, k);
	}
	if (r < 0 && refused(r)) {
		if (n > 1) {
			ps->batch_max = n / 2;
			log_debug("etcd: a transaction of %zu keys refused (%s); halving", n,
			          etcd_errmsg(ps->ec));
		} else if (n == 1) {
			if (c->skipped++ % 1000 == 0)
				log_warn("etcd: %s refused (%s); skipped until the next resync "
				         "(%llu so far)",
				         batch[0]->path, etcd_errmsg(ps->ec),
				         (unsigned long long)c->skipped);
			if (!batch[0]->queued && !batch[0]->value)
				pub_drop(c, batch[0]);
		}
		return;
	}
	if (r < 0) {
		pub_failed(c, ps, r == -ENOMEM ? "publish (out of memory)" : "publish services");
		return;
	}
	ps->batch_max = ps->batch_max * 2 > ETCD_TXN_MAX ? ETCD_TXN_MAX : ps->batch_max * 2;
	c->puts += nput;
	c->deletes += n - nput;
	pub_ok(c, ps);
}

/* Compare etcd with what we want (one range of our own keys). */
static void pub_resync(struct cluster *c, struct pubstate *ps)
{
	struct etcd_kvs *kvs = NULL;
	int r;

	pthread_mutex_unlock(&c->pub_lock);
	r = etcd_range_prefix(ps->ec, c->own_prefix, &kvs);
	pthread_mutex_lock(&c->pub_lock);
	if (r < 0 && refused(r)) {
		/* not etcd's health: keep sending, try again later */
		log_warn("etcd: cannot read this host's keys (%s); compared again later",
		         etcd_errmsg(ps->ec));
		ps->resync_at = now_ms() + 3 * c->ka_ms;
		return;
	}
	if (r < 0) {
		pub_failed(c, ps, "read this host's keys");
		return;
	}
	c->resync = false;
	c->resyncs++;
	pub_compare(c, kvs);
	etcd_kvs_free(kvs);
}

static void *pub_main(void *arg)
{
	struct cluster *c = arg;
	struct pubstate ps = {.ec = etcd_new(c->urls, c->call_ms), .batch_max = ETCD_TXN_MAX};

	pthread_mutex_lock(&c->pub_lock);
	while (!c->stop && ps.ec) {
		int64_t now = now_ms(), wake;

		if (ps.retry_at > now) {
			pub_wait(c, ps.retry_at);
			continue;
		}
		if (ps.late_resync_at && now >= ps.late_resync_at) {
			ps.late_resync_at = 0;
			c->resync = true;
		}
		if (!c->lease) {
			int64_t id = 0;
			int r;

			pthread_mutex_unlock(&c->pub_lock);
			r = etcd_lease_grant(ps.ec, c->ttl, &id);
			pthread_mutex_lock(&c->pub_lock);
			if (r < 0) {
				pub_failed(c, &ps, "get a lease");
				continue;
			}
			c->lease = id;
			c->leases++;
			c->resync = true;
			ps.resync_at = 0;
			ps.ka_at = now_ms() + c->ka_ms;
			pub_ok(c, &ps);
			continue;
		}
		if (now >= ps.ka_at) {
			int64_t lease = c->lease, ttl = 0;
			int r;

			pthread_mutex_unlock(&c->pub_lock);
			r = etcd_lease_keepalive(ps.ec, lease, &ttl);
			pthread_mutex_lock(&c->pub_lock);
			if (r < 0 && r != -ENOENT) {
				pub_failed(c, &ps, "keep the lease alive");
				continue;
			}
			if (r == -ENOENT || ttl <= 0) {
				log_warn(
				    "etcd: lease %llx lost; publishing every service again under "
				    "a new one",
				    (unsigned long long)lease);
				c->lease = 0;
				continue;
			}
			ps.ka_at = now_ms() + c->ka_ms;
			pub_ok(c, &ps);
			continue;
		}
		if (c->resync && now >= ps.resync_at) {
			pub_resync(c, &ps);
			continue;
		}
		if (c->qhead) {
			pub_send(c, &ps);
			continue;
		}
		wake = ps.ka_at;
		if (ps.late_resync_at && ps.late_resync_at < wake)
			wake = ps.late_resync_at;
		if (c->resync && ps.resync_at > now && ps.resync_at < wake)
			wake = ps.resync_at;
		pub_wait(c, wake);
	}
	if (ps.ec && c->revoke && c->lease) {
		int64_t lease = c->lease;
		struct etcd *rc = etcd_new(c->urls, REVOKE_MS);

		pthread_mutex_unlock(&c->pub_lock);
		if (rc && etcd_lease_revoke(rc, lease) < 0)
			log_warn("etcd: cannot revoke lease %llx (%s): this host's services leave "
			         "other hosts within %u s",
			         (unsigned long long)lease, etcd_errmsg(rc), c->ttl);
		etcd_free(rc);
		pthread_mutex_lock(&c->pub_lock);
		c->lease = 0;
	}
	if (!ps.ec)
		log_err("etcd: out of memory: this host's services are not published");
	pthread_mutex_unlock(&c->pub_lock);
	etcd_free(ps.ec);
	return NULL;
}

/* ---- mirror (everything below with mir_lock held, unless said) ---- */

static void wake_engine(struct cluster *c)
{
	uint64_t one = 1;
	ssize_t n = write(c->fd, &one, sizeof(one));
	(void)n; /* a full counter already means "readable" */
}

static void mark_dirty(struct cluster *c, struct rkey *k)
{
	if (k->dirty)
		return;
	k->dirty = true;
	k->next = NULL;
	if (c->dirty_tail)
		c->dirty_tail->next = k;
	else
		c->dirty_head = k;
	c->dirty_tail = k;
	wake_engine(c);
}

/* KEY (after PREFIX hosts/) now has VALUE (NULL: gone). */
static void remote_set(struct cluster *c, const char *key, size_t key_len, const char *value,
                       size_t value_len)
{
	struct rkey *k;
	char *copy = NULL;

	HASH_FIND(hh, c->remote, key, key_len, k);
	if (k && value && k->value && strlen(k->value) == value_len &&
	    memcmp(k->value, value, value_len) == 0) {
		k->seen = true;
		return; /* unchanged */
	}
	if (!k && !value)
		return;
	if (value && !(copy = strndup(value, value_len)))
		goto oom;
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k || !(k->key = strndup(key, key_len))) {
			free(k);
			goto oom;
		}
		svcfs_hash_oom = false;
		HASH_ADD_KEYPTR(hh, c->remote, k->key, key_len, k);
		if (svcfs_hash_oom) {
			free(k->key);
			free(k);
			goto oom;
		}
	}
	if (!k->value && copy)
		c->nremote++;
	else if (k->value && !copy)
		c->nremote--;
	free(k->value);
	k->value = copy;
	k->seen = true;
	mark_dirty(c, k);
	return;
oom:
	free(copy);
	log_err("etcd: out of memory mirroring other hosts");
}

/* Another host's key: after PREFIX hosts/, not ours, no NUL. */
static bool remote_key(struct cluster *c, const char *key, size_t len, const char **ret,
                       size_t *ret_len)
{
	size_t hp = strlen(c->hosts_prefix), op = strlen(c->own_prefix);

	if (len <= hp || memcmp(key, c->hosts_prefix, hp) != 0 || memchr(key, '\0', len))
		return false;
	if (len >= op && memcmp(key, c->own_prefix, op) == 0)
		return false;
	*ret = key + hp;
	*ret_len = len - hp;
	return true;
}

/* The range KVS is the whole truth now. */
static void mirror_apply_range(struct cluster *c, const struct etcd_kvs *kvs)
{
	struct rkey *k, *tmp;

	HASH_ITER(hh, c->remote, k, tmp)
	k->seen = false;
	for (size_t i = 0; i < kvs->n; i++) {
		const char *key;
		size_t len;
		if (remote_key(c, kvs->kv[i].key, kvs->kv[i].key_len, &key, &len))
			remote_set(c, key, len, kvs->kv[i].value, kvs->kv[i].value_len);
	}
	HASH_ITER(hh, c->remote, k, tmp)
	{
		if (!k->seen && k->value)
			remote_set(c, k->key, strlen(k->key), NULL, 0);
	}
	c->revision = kvs->revision;
}

static void mirror_up(struct cluster *c)
{
	c->mirror_up = true;
	if (c->unknown) {
		c->unknown = false;
		log_info("etcd: reached again; other hosts' services are current");
		wake_engine(c);
	}
}

/* Cut off since DOWN_SINCE: the remote entries are unknown once that is long. */
static void mirror_down(struct cluster *c, int64_t down_since, const char *why)
{
	c->mirror_up = false;
	if (!c->unknown && now_ms() - down_since >= UNKNOWN_AFTER_MS) {
		c->unknown = true;
		log_warn(
		    "etcd: cut off (%s); %zu services of other hosts shown as unknown until it "
		    "answers",
		    why, c->nremote);
		wake_engine(c);
	}
}

/* Wait up to MS (-1: forever) for the stop eventfd or FD. True: stop. */
static bool mirror_wait(struct cluster *c, int fd, int ms)
{
	struct pollfd p[2] = {{.fd = c->stop_fd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
	int r = poll(p, fd >= 0 ? 2 : 1, ms);
	(void)r;
	return (p[0].revents & POLLIN) != 0;
}

/* 3 TTLs, at least 10 s: a hung member is left about as soon as its lease
 * holders' keys would expire, and a quiet cluster costs one reconnect then. */
static int watch_idle_s(const struct cluster *c)
{
	return c->ttl * 3 < 10 ? 10 : (int)(c->ttl * 3);
}

/* Follow W until it is compacted (false) or we stop (true). */
static bool mirror_follow(struct cluster *c, struct etcd_watch *w)
{
	int64_t down_since = 0;
	bool compacted = false, stop = false;

	while (!stop && !compacted) {
		int ms = -1;
		struct etcd_event *ev;

		pthread_mutex_lock(&c->mir_lock);
		if (down_since) {
			mirror_down(c, down_since, "no member with a leader answers the watch");
			if (!c->unknown) {
				int64_t left = down_since + UNKNOWN_AFTER_MS - now_ms();
				ms = left > 0 ? (int)left : 0;
			}
		}
		pthread_mutex_unlock(&c->mir_lock);
		stop = mirror_wait(c, etcd_watch_fd(w), ms);
		while (!stop && etcd_watch_next(w, &ev) == 0) {
			const char *key;
			size_t len;

			pthread_mutex_lock(&c->mir_lock);
			switch (ev->type) {
			case ETCD_EV_PUT:
			case ETCD_EV_DELETE:
				if (remote_key(c, ev->kv.key, ev->kv.key_len, &key, &len))
					remote_set(c, key, len,
					           ev->type == ETCD_EV_PUT ? ev->kv.value : NULL,
					           ev->kv.value_len);
				c->revision = ev->revision;
				break;
			case ETCD_EV_PROGRESS:
				c->revision = ev->revision;
				break;
			case ETCD_EV_CREATED:
				down_since = 0;
				mirror_up(c);
				break;
			case ETCD_EV_DISCONNECTED:
				c->mirror_up = false;
				if (!down_since)
					down_since = now_ms();
				log_debug("etcd: %s", ev->msg ? ev->msg : "watch lost");
				break;
			case ETCD_EV_COMPACTED:
				compacted = true;
				c->compactions++;
				log_info(
				    "etcd: history compacted past revision %lld; reading other "
				    "hosts' services again",
				    (long long)ev->revision);
				break;
			}
			pthread_mutex_unlock(&c->mir_lock);
			etcd_event_free(ev);
		}
	}
	return stop;
}

static void *mirror_main(void *arg)
{
	struct cluster *c = arg;
	struct etcd *ec = etcd_new(c->urls, CALL_MAX_MS);
	int64_t down_since = 0;
	int backoff = 0;
	bool stop = false;

	if (!ec) {
		log_err("etcd: out of memory: other hosts are not mirrored");
		return NULL;
	}
	while (!stop) {
		struct etcd_kvs *kvs = NULL;
		struct etcd_watch *w;
		int64_t rev, started = now_ms();
		int r = etcd_range_prefix(ec, c->hosts_prefix, &kvs);

		pthread_mutex_lock(&c->mir_lock);
		if (r < 0) {
			if (!down_since)
				down_since = started; /* cut off from when we asked */
			mirror_down(c, down_since, etcd_errmsg(ec));
			pthread_mutex_unlock(&c->mir_lock);
			backoff = backoff ? backoff * 2 : BACKOFF_MIN_MS;
			if (backoff > BACKOFF_MAX_MS)
				backoff = BACKOFF_MAX_MS;
			stop = mirror_wait(c, -1, backoff);
			continue;
		}
		backoff = 0;
		down_since = 0;
		mirror_apply_range(c, kvs);
		mirror_up(c);
		rev = kvs->revision;
		pthread_mutex_unlock(&c->mir_lock);
		etcd_kvs_free(kvs);

		/* A member that hangs with its connection open sends nothing, not even
		 * progress notifications (every 10 min by default): a stream quiet
		 * that long is resumed on the next member, from where it was. */
		w = etcd_watch_new(ec, c->hosts_prefix, rev + 1, watch_idle_s(c));
		if (!w) {
			log_err("etcd: cannot start a watch: out of memory");
			stop = mirror_wait(c, -1, BACKOFF_MAX_MS);
			continue;
		}
		stop = mirror_follow(c, w);
		etcd_watch_free(w);
	}
	etcd_free(ec);
	return NULL;
}

/* ---- engine side ---- */

int cluster_fd(const struct cluster *c)
{
	return c->fd;
}

struct change {
	char *key; /* "HOST/PATH" */
	char *value;
};

void cluster_take(struct cluster *c, cluster_change_fn *fn, void *ctx, bool *ret_unknown,
                  bool *ret_unknown_changed)
{
	struct change *list = NULL;
	struct rkey *k, *next;
	size_t n = 0, cap = 0;
	uint64_t v;
	ssize_t got;

	/* take the changes as they are now, then work on them without the lock */
	pthread_mutex_lock(&c->mir_lock);
	got = read(c->fd, &v, sizeof(v));
	(void)got;
	for (k = c->dirty_head; k; k = next) {
		char *key = NULL, *value = NULL;

		next = k->next;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct change *l = realloc(list, ncap * sizeof(*l));
			if (!l)
				break; /* the rest stays dirty: taken next time */
			list = l;
			cap = ncap;
		}
		if (k->value && (!(key = strdup(k->key)) || !(value = strdup(k->value)))) {
			free(key);
			free(value);
			break;
		}
		k->dirty = false;
		c->dirty_head = next;
		if (!k->value) {
			/* gone: the key goes to the engine with it */
			HASH_DELETE(hh, c->remote, k);
			key = k->key;
			free(k);
		}
		list[n++] = (struct change){key, value};
	}
	if (!c->dirty_head)
		c->dirty_tail = NULL;
	else
		wake_engine(c); /* out of memory: come back for the rest */
	*ret_unknown = c->unknown;
	*ret_unknown_changed = c->unknown != c->unknown_taken;
	c->unknown_taken = c->unknown;
	pthread_mutex_unlock(&c->mir_lock);

	for (size_t i = 0; i < n; i++) {
		char *slash = strchr(list[i].key, '/');
		if (slash && slash[1]) {
			*slash = '\0';
			fn(ctx, list[i].key, slash + 1, list[i].value);
		}
		free(list[i].key);
		free(list[i].value);
	}
	free(list);
}

char *cluster_status_json(struct cluster *c)
{
	struct svcfs_buf b;

	svcfs_buf_init(&b);
	svcfs_buf_adds(&b, "{\"host\":");
	svcfs_buf_add_json_string(&b, c->host, strlen(c->host));
	svcfs_buf_adds(&b, ",\"endpoints\":");
	svcfs_buf_add_json_string(&b, c->urls, strlen(c->urls));
	pthread_mutex_lock(&c->pub_lock);
	svcfs_buf_addf(&b,
	               ",\"lease\":%lld,\"ttl\":%u,\"publishing\":%s,\"published\":%zu,"
	               "\"puts\":%llu,\"deletes\":%llu,\"leases\":%llu,\"resyncs\":%llu,"
	               "\"skipped\":%llu",
	               (long long)c->lease, c->ttl, c->pub_failing ? "\"failing\"" : "\"ok\"",
	               c->npub, (unsigned long long)c->puts, (unsigned long long)c->deletes,
	               (unsigned long long)c->leases, (unsigned long long)c->resyncs,
	               (unsigned long long)c->skipped);
	pthread_mutex_unlock(&c->pub_lock);
	pthread_mutex_lock(&c->mir_lock);
	svcfs_buf_addf(&b,
	               ",\"mirror\":\"%s\",\"remote_services\":%zu,\"revision\":%lld,"
	               "\"compactions\":%llu}",
	               c->unknown     ? "unknown"
	               : c->mirror_up ? "current"
	                              : "connecting",
	               c->nremote, (long long)c->revision, (unsigned long long)c->compactions);
	pthread_mutex_unlock(&c->mir_lock);
	return svcfs_buf_steal(&b, NULL);
}

/* ---- life ---- */

int cluster_start(struct cluster *c)
{
	int r = pthread_create(&c->pub_thread, NULL, pub_main, c);

	if (r)
		return -r;
	c->pub_started = true;
	r = pthread_create(&c->mirror_thread, NULL, mirror_main, c);
	if (r)
		return -r;
	c->mirror_started = true;
	return 0;
}

void cluster_stop(struct cluster *c, bool revoke)
{
	uint64_t one = 1;
	ssize_t n;

	pthread_mutex_lock(&c->pub_lock);
	c->stop = true;
	c->revoke = revoke;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->pub_lock);
	n = write(c->stop_fd, &one, sizeof(one));
	(void)n;
	if (c->pub_started)
		pthread_join(c->pub_thread, NULL);
	if (c->mirror_started)
		pthread_join(c->mirror_thread, NULL);
	c->pub_started = c->mirror_started = false;
}

struct cluster *cluster_free(struct cluster *c)
{
	struct pubkey *p, *ptmp;
	struct rkey *k, *ktmp;

	if (!c)
		return NULL;
	cluster_stop(c, false);
	HASH_ITER(hh, c->pub, p, ptmp)
	pub_drop(c, p);
	HASH_ITER(hh, c->remote, k, ktmp)
	{
		HASH_DELETE(hh, c->remote, k);
		free(k->key);
		free(k->value);
		free(k);
	}
	if (c->fd >= 0)
		close(c->fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->pub_lock);
	pthread_mutex_destroy(&c->mir_lock);
	free(c->urls);
	free(c->host);
	free(c->hosts_prefix);
	free(c->own_prefix);
	free(c);
	return NULL;
}
