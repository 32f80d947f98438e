/*
 * etcd — a small client for the etcd v3 JSON gateway (etcd 3.4: /v3/...),
 * the groundwork of multi-host svcfs (issue 8). It knows etcd, not svcfs:
 * keys and values are bytes, leases are numbers.
 *
 * Endpoints: a comma-separated list of base URLs tried in order. The client
 * sticks to the endpoint that last answered; a connection error, a timeout
 * or an "unavailable" answer (a member without a leader) moves it to the
 * next one within the same call, once round the list, inside the call's
 * time budget. Every request carries `Grpc-Metadata-Hasleader: true`, so a
 * member that has lost its quorum says so at once instead of hanging.
 *
 * Errors: calls return 0 (or a count) or a negative errno; etcd_errmsg()
 * then holds one line for the log naming the endpoint and the reason.
 *   -ECONNREFUSED  no endpoint could be reached
 *   -ETIMEDOUT     the time budget ran out (or etcd's own deadline did)
 *   -EAGAIN        reached, but unavailable (no leader: quorum lost)
 *   -ENOENT        no such lease
 *   -ERANGE        the revision asked for has been compacted
 *   -EBADMSG       an answer that is not the JSON etcd sends
 *   -EMSGSIZE      an answer larger than ETCD_RESPONSE_MAX
 *   -EINVAL, -EACCES, -ENOSPC, -EIO  other etcd errors (bad request,
 *                  permission, quota, anything else)
 *
 * Watch: a dedicated thread per watch owns its curl handle, reads the
 * chunked stream and queues decoded events; an eventfd is readable exactly
 * while the queue is not empty, so an event loop adds that one fd to its
 * epoll set and calls etcd_watch_next() until -EAGAIN. A thread was chosen
 * over exposing curl's multi-socket fds because the caller then needs no
 * curl timer handling and the reconnect logic (next endpoint, backoff,
 * resume from the last revision) stays in this file. The watch resumes by
 * itself after a disconnect from the revision after the last one it
 * delivered; what it cannot repair it reports: ETCD_EV_COMPACTED ends the
 * watch and the caller must range again and start a new watch.
 *
 * Threads: a struct etcd is used by one thread at a time. A watch may be
 * created from it and then lives on its own (it copies the endpoints).
 */
#ifndef SVCFS_ETCD_H
#define SVCFS_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_ENDPOINTS_MAX   16                 /* URLs in one list */
#define ETCD_URL_MAX         512                /* bytes in one URL */
#define ETCD_RESPONSE_MAX    (32 * 1024 * 1024) /* one unary answer or one watch object */
#define ETCD_RANGE_PAGE      250                /* keys asked for per range request: 250 values of
                                                   64 KiB (a sidecar at most) fit ETCD_RESPONSE_MAX */
#define ETCD_RANGE_MAX       1000000            /* keys in one range_prefix result */
#define ETCD_WATCH_QUEUE_MAX 100000             /* events queued and not yet taken */

struct etcd;

/* One key-value pair. KEY and VALUE are NUL-terminated for convenience but
 * may hold NUL bytes: their lengths are what counts. */
struct etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
};

struct etcd_kvs {
	int64_t revision; /* the store's revision the range was read at */
	size_t n;
	struct etcd_kv *kv;
};

/* URLS: "http://h1:2379,http://h2:2379"; TIMEOUT_MS: budget of one call. NULL on
 * a bad list (none, too many, too long) or no memory. */
struct etcd *etcd_new(const char *urls, int timeout_ms);
struct etcd *etcd_free(struct etcd *c);
/* The last error, one line for the log ("" before any). */
const char *etcd_errmsg(const struct etcd *c);
/* The endpoint the next call starts with. */
const char *etcd_endpoint(const struct etcd *c);

int etcd_lease_grant(struct etcd *c, int64_t ttl, int64_t *ret_id);
/* RET_TTL: the lease's remaining TTL; 0 means the lease is lost (expired or
 * revoked): grant a new one and put everything again. */
int etcd_lease_keepalive(struct etcd *c, int64_t id, int64_t *ret_ttl);
/* -ENOENT if the lease is already gone. Its keys are deleted with it. */
int etcd_lease_revoke(struct etcd *c, int64_t id);
/* LEASE 0: no lease. RET_REVISION (may be NULL): the revision of the put. */
int etcd_put(struct etcd *c, const char *key, const void *value, size_t value_len, int64_t lease,
             int64_t *ret_revision);
/* Returns the number of keys deleted (0 or 1). */
int etcd_delete(struct etcd *c, const char *key, int64_t *ret_revision);
/* One operation of a transaction: put KEY = VALUE, or (DEL) delete KEY. */
struct etcd_op {
	const char *key;
	const void *value;
	size_t value_len;
	bool del;
};
#define ETCD_TXN_MAX 128 /* etcd's default --max-txn-ops */
/* Apply OPS (at most ETCD_TXN_MAX, each key once) in one transaction, puts
 * under LEASE (0: none): all of them or, on an error, none. */
int etcd_txn(struct etcd *c, const struct etcd_op *ops, size_t n, int64_t lease,
             int64_t *ret_revision);
/* Every key starting with PREFIX, read at one revision (in pages). */
int etcd_range_prefix(struct etcd *c, const char *prefix, struct etcd_kvs **ret_kvs);
/* Compact the history up to REVISION (for tests and tools). */
int etcd_compact(struct etcd *c, int64_t revision);
struct etcd_kvs *etcd_kvs_free(struct etcd_kvs *kvs);

/* Watch */
enum etcd_event_type {
	ETCD_EV_PUT,          /* kv, revision = kv.mod_revision */
	ETCD_EV_DELETE,       /* kv.key only, revision = kv.mod_revision */
	ETCD_EV_PROGRESS,     /* nothing changed up to revision (a heartbeat) */
	ETCD_EV_CREATED,      /* (re)connected at revision (the store's, not a promise) */
	ETCD_EV_DISCONNECTED, /* lost; retrying. err, msg say why. Once per outage. */
	ETCD_EV_COMPACTED,    /* revision = compact_revision; the watch has ended */
};

struct etcd_event {
	enum etcd_event_type type;
	int64_t revision;
	struct etcd_kv kv;
	int err;   /* DISCONNECTED: negative errno as above */
	char *msg; /* DISCONNECTED: for the log */
};

struct etcd_watch;

/* Watch every key starting with PREFIX from START_REVISION (0: from now).
 * IDLE_S > 0: a stream silent that long (to within a second) is dropped and
 * resumed on the next endpoint. Progress notifications are the heartbeat that
 * keeps a quiet stream alive: make IDLE_S longer than the members'
 * --experimental-watch-progress-notify-interval (10 min unless set). Without
 * it, a member that hangs with its connection open is never noticed. */
struct etcd_watch *etcd_watch_new(struct etcd *c, const char *prefix, int64_t start_revision,
                                  int idle_s);
/* Stops the thread (promptly: it is woken) and frees what is queued. */
struct etcd_watch *etcd_watch_free(struct etcd_watch *w);
/* Readable (level) while events wait. */
int etcd_watch_fd(const struct etcd_watch *w);
/* The next event (the caller frees it), or -EAGAIN when none waits. */
int etcd_watch_next(struct etcd_watch *w, struct etcd_event **ret_event);
struct etcd_event *etcd_event_free(struct etcd_event *ev);

/* Building blocks, exposed for the unit tests. */
/* Base64 with the standard alphabet and padding (what Go's encoding/json uses
 * for bytes). Results are malloc'ed and NUL-terminated. */
int etcd_base64_encode(const void *data, size_t len, char **ret, size_t *ret_len);
/* Strict: -EINVAL on a bad character, length or padding. */
int etcd_base64_decode(const char *text, size_t len, char **ret, size_t *ret_len);
/* The smallest key greater than every key with PREFIX; "\0" (len 1) when
 * there is none (then every key from PREFIX on). */
int etcd_prefix_end(const char *prefix, size_t len, char **ret, size_t *ret_len);

/* The answer of a unary call: HTTP STATUS and BODY. Checks for an error
 * object and returns the parsed object (the caller puts it) or a negative
 * errno with MSG (MSG_SIZE bytes) set. */
struct json_object;
int etcd_parse_reply(long status, const char *body, size_t len, struct json_object **ret, char *msg,
                     size_t msg_size);
int etcd_parse_range(struct json_object *reply, struct etcd_kvs *kvs, bool *ret_more);

/* The watch stream: JSON objects fed in arbitrary pieces. Each complete object
 * gives events to EMIT (which takes ownership; nonzero stops the feed). */
typedef int (*etcd_emit_fn)(struct etcd_event *ev, void *arg);
struct etcd_stream;
struct etcd_stream *etcd_stream_new(void);
struct etcd_stream *etcd_stream_free(struct etcd_stream *s);
/* 0, or -EBADMSG (not JSON, not a watch response, an error object: MSG says),
 * -EMSGSIZE, -ENOMEM, or EMIT's nonzero return. After an error the stream
 * must be reset (a new connection). */
int etcd_stream_feed(struct etcd_stream *s, const char *data, size_t len, etcd_emit_fn emit,
                     void *arg, char *msg, size_t msg_size);
void etcd_stream_reset(struct etcd_stream *s);

#endif /* SVCFS_ETCD_H */
