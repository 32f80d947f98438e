/*
 * Integration tests of fs/etcd.c against a real three-member etcd cluster on
 * loopback (cluster.c), fresh for every test: leases, keys, ranges, the
 * watch, and the faults the multi-host daemon must live through — a member
 * dying, the quorum lost and regained, history compacted under a watch.
 * Skipped with a reason when etcd is not installed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "etcd_cluster.h"
#include "etcd.h"

#define CALL_TIMEOUT_MS 2000
#define WAIT_MS         8000 /* bound of waits for events */

static struct etcd *C;
static struct etcd_watch *W;

static void setup(void)
{
	cluster_setup();
	C = etcd_new(CL.urls, CALL_TIMEOUT_MS);
	cr_assert_not_null(C);
}

static void teardown(void)
{
	W = etcd_watch_free(W);
	C = etcd_free(C);
	cluster_destroy();
}

TestSuite(client, .init = setup, .fini = teardown, .timeout = 50);

static long long ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int64_t put(const char *key, const char *value, int64_t lease)
{
	int64_t rev = 0;
	int r = etcd_put(C, key, value, strlen(value), lease, &rev);

	cr_assert_eq(r, 0, "put %s: %d %s", key, r, etcd_errmsg(C));
	cr_assert_gt(rev, 0);
	return rev;
}

static struct etcd_kvs *range(const char *prefix)
{
	struct etcd_kvs *kvs = NULL;
	int r = etcd_range_prefix(C, prefix, &kvs);

	cr_assert_eq(r, 0, "range %s: %d %s", prefix, r, etcd_errmsg(C));
	return kvs;
}

static size_t count(const char *prefix)
{
	struct etcd_kvs *kvs = range(prefix);
	size_t n = kvs->n;

	etcd_kvs_free(kvs);
	return n;
}

/* The next watch event of a type in MASK (others are dropped), or NULL
 * after TIMEOUT_MS. */
#define BIT(t) (1u << (t))
static struct etcd_event *next_event(unsigned mask, int timeout_ms)
{
	long long deadline = ms_now() + timeout_ms;

	for (;;) {
		struct etcd_event *ev = NULL;
		struct pollfd p = {.fd = etcd_watch_fd(W), .events = POLLIN};
		long long left;

		while (etcd_watch_next(W, &ev) == 0) {
			if (mask & BIT(ev->type))
				return ev;
			etcd_event_free(ev);
		}
		left = deadline - ms_now();
		if (left <= 0)
			return NULL;
		poll(&p, 1, (int)left);
	}
}

Test(client, lease_put_range_delete)
{
	struct etcd_kvs *kvs;
	int64_t lease = 0, ttl = 0, rev1, rev2, rev3 = 0;
	int r;

	r = etcd_lease_grant(C, 5, &lease);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	cr_assert_neq(lease, 0);
	r = etcd_lease_keepalive(C, lease, &ttl);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	cr_assert(ttl >= 4 && ttl <= 5, "ttl %lld", (long long)ttl);

	rev1 = put("/t/hosts/a/web", "{\"n\":1}", lease);
	rev2 = put("/t/hosts/a/db", "", 0);
	put("/t/other", "x", 0); /* control: outside the prefix */
	cr_assert_gt(rev2, rev1);

	kvs = range("/t/hosts/");
	cr_assert_eq(kvs->n, 2);
	cr_assert_geq(kvs->revision, rev2);
	cr_assert_str_eq(kvs->kv[0].key, "/t/hosts/a/db"); /* sorted by key */
	cr_assert_eq(kvs->kv[0].value_len, 0);
	cr_assert_eq(kvs->kv[0].lease, 0);
	cr_assert_str_eq(kvs->kv[1].key, "/t/hosts/a/web");
	cr_assert_str_eq(kvs->kv[1].value, "{\"n\":1}");
	cr_assert_eq(kvs->kv[1].lease, lease);
	cr_assert_eq(kvs->kv[1].mod_revision, rev1);
	etcd_kvs_free(kvs);

	r = etcd_delete(C, "/t/hosts/a/web", &rev3);
	cr_assert_eq(r, 1, "%d %s", r, etcd_errmsg(C));
	cr_assert_gt(rev3, rev2);
	r = etcd_delete(C, "/t/hosts/a/web", NULL);
	cr_assert_eq(r, 0, "a second delete deletes nothing");
	cr_assert_eq(count("/t/hosts/"), 1);

	r = etcd_lease_revoke(C, lease);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	r = etcd_lease_revoke(C, lease);
	cr_assert_eq(r, -ENOENT, "%d", r);
	cr_assert(strstr(etcd_errmsg(C), "lease not found"), "%s", etcd_errmsg(C));
	r = etcd_lease_keepalive(C, lease, &ttl);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	cr_assert_eq(ttl, 0, "a revoked lease is lost");
}

Test(client, txn_puts_and_deletes_at_once)
{
	struct etcd_op ops[ETCD_TXN_MAX];
	char keys[ETCD_TXN_MAX][32];
	struct etcd_kvs *kvs;
	int64_t lease = 0, rev = 0;
	int r;

	r = etcd_lease_grant(C, 5, &lease);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	put("/txn/gone", "x", 0);
	for (int i = 0; i < ETCD_TXN_MAX - 1; i++) {
		snprintf(keys[i], sizeof(keys[i]), "/txn/k%03d", i);
		ops[i] = (struct etcd_op){keys[i], "v", 1, false};
	}
	ops[ETCD_TXN_MAX - 1] = (struct etcd_op){"/txn/gone", NULL, 0, true};
	r = etcd_txn(C, ops, ETCD_TXN_MAX, lease, &rev);
	cr_assert_eq(r, 0, "txn: %d %s", r, etcd_errmsg(C));
	kvs = range("/txn/");
	cr_assert_eq(kvs->n, ETCD_TXN_MAX - 1, "%zu keys", kvs->n);
	for (size_t i = 0; i < kvs->n; i++) {
		cr_assert_eq(kvs->kv[i].lease, lease);
		cr_assert_eq(kvs->kv[i].mod_revision, rev, "one revision for all");
		cr_assert_str_eq(kvs->kv[i].value, "v");
	}
	etcd_kvs_free(kvs);
	/* more than etcd takes in one: refused before anything is sent */
	r = etcd_txn(C, ops, ETCD_TXN_MAX + 1, lease, NULL);
	cr_assert_eq(r, -EINVAL);
	/* a revoked lease: the whole transaction fails, nothing is applied */
	cr_assert_eq(etcd_lease_revoke(C, lease), 0);
	ops[0] = (struct etcd_op){"/txn/late", "v", 1, false};
	r = etcd_txn(C, ops, 1, lease, NULL);
	cr_assert_lt(r, 0, "a put under a revoked lease must fail");
	cr_assert_eq(count("/txn/"), 0, "the lease's keys went with it, and nothing was added");
}

Test(client, range_reads_every_page)
{
	/* More keys than one page (ETCD_RANGE_PAGE): put them in one request
	 * each would take long, so values are small and the count just above. */
	char key[64];
	struct etcd_kvs *kvs;
	int n = ETCD_RANGE_PAGE + 5;

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "/p/k%05d", i);
		put(key, "v", 0);
	}
	put("/p0", "control", 0); /* the first key after the prefix range */
	kvs = range("/p/");
	cr_assert_eq(kvs->n, (size_t)n);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "/p/k%05d", i);
		cr_assert_str_eq(kvs->kv[i].key, key);
	}
	etcd_kvs_free(kvs);
}

Test(client, expired_lease_deletes_its_keys)
{
	int64_t lease = 0, ttl = -1;
	long long deadline;
	int r;

	r = etcd_lease_grant(C, 2, &lease);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	put("/e/leased", "1", lease);
	put("/e/kept", "1", 0); /* control: no lease, stays */
	cr_assert_eq(count("/e/"), 2);
	deadline = ms_now() + 6000;
	while (count("/e/") != 1 && ms_now() < deadline)
		usleep(100 * 1000);
	cr_assert_eq(count("/e/"), 1, "the leased key outlived its lease");
	r = etcd_lease_keepalive(C, lease, &ttl);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));
	cr_assert_eq(ttl, 0, "keepalive of an expired lease must say lost");
	r = etcd_put(C, "/e/again", "1", 1, lease, NULL);
	cr_assert_eq(r, -ENOENT, "put under a lost lease: %d", r);
}

Test(client, watch_sees_put_delete_and_progress)
{
	struct etcd_kvs *kvs = range("/w/");
	struct etcd_event *ev;
	int64_t r1, r2, r3;
	unsigned changes = BIT(ETCD_EV_PUT) | BIT(ETCD_EV_DELETE);

	W = etcd_watch_new(C, "/w/", kvs->revision + 1, 0);
	etcd_kvs_free(kvs);
	cr_assert_not_null(W);
	ev = next_event(BIT(ETCD_EV_CREATED), WAIT_MS);
	cr_assert_not_null(ev, "no created");
	etcd_event_free(ev);

	put("/wx", "control", 0); /* outside the prefix: no event */
	r1 = put("/w/a", "1", 0);
	r2 = put("/w/b", "2", 0);
	cr_assert_eq(etcd_delete(C, "/w/a", &r3), 1);

	ev = next_event(changes, WAIT_MS);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->type, ETCD_EV_PUT);
	cr_assert_str_eq(ev->kv.key, "/w/a");
	cr_assert_str_eq(ev->kv.value, "1");
	cr_assert_eq(ev->revision, r1);
	etcd_event_free(ev);
	ev = next_event(changes, WAIT_MS);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->type, ETCD_EV_PUT);
	cr_assert_str_eq(ev->kv.key, "/w/b");
	cr_assert_eq(ev->revision, r2);
	etcd_event_free(ev);
	ev = next_event(changes, WAIT_MS);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->type, ETCD_EV_DELETE);
	cr_assert_str_eq(ev->kv.key, "/w/a");
	cr_assert_eq(ev->revision, r3);
	etcd_event_free(ev);

	/* The members send progress every CLUSTER_PROGRESS_S: a heartbeat at
	 * or after the last change, and no change event in between. */
	ev = next_event(changes | BIT(ETCD_EV_PROGRESS), (CLUSTER_PROGRESS_S + 3) * 1000);
	cr_assert_not_null(ev, "no progress notification");
	cr_assert_eq(ev->type, ETCD_EV_PROGRESS, "unexpected event %d", ev->type);
	cr_assert_geq(ev->revision, r3);
	etcd_event_free(ev);
}

/* A client whose endpoint list starts with member FIRST. */
static struct etcd *client_starting_at(int first)
{
	char urls[sizeof(CL.urls)];
	size_t len = 0;
	struct etcd *c;

	for (int k = 0; k < CLUSTER_SIZE; k++)
		len += (size_t)snprintf(urls + len, sizeof(urls) - len, "%s%s", k ? "," : "",
		                        CL.m[(first + k) % CLUSTER_SIZE].url);
	c = etcd_new(urls, CALL_TIMEOUT_MS);
	cr_assert_not_null(c);
	return c;
}

/* Kill VICTIM under a client and a watch both using it; the next call
 * moves to another member. Returns that call's result; *RET_REV its revision. */
static int kill_under_client(int victim, int64_t *ret_rev)
{
	struct etcd_event *ev;
	long long t0, took;
	int r;

	C = etcd_free(C);
	C = client_starting_at(victim);
	put("/f/before", "1", 0);
	cr_assert_eq(cluster_member_of(etcd_endpoint(C)), victim);
	W = etcd_watch_new(C, "/f/", 0, 0); /* starts on the same member */
	cr_assert_not_null(W);
	ev = next_event(BIT(ETCD_EV_CREATED), WAIT_MS);
	cr_assert_not_null(ev);
	etcd_event_free(ev);

	cluster_kill(victim);
	t0 = ms_now();
	r = etcd_put(C, "/f/after", "2", 1, 0, ret_rev);
	took = ms_now() - t0;
	cr_log_info("first put after the member died: %d after %lld ms: %s", r, took,
	            r ? etcd_errmsg(C) : "");
	cr_assert_leq(took, CALL_TIMEOUT_MS + 500, "took %lld ms", took);
	cr_assert_neq(cluster_member_of(etcd_endpoint(C)), victim, "still on the dead member");
	return r;
}

/* The watch notices, moves to another member, resumes: nothing lost, nothing
 * replayed. */
static void check_watch_resumed(int64_t rev)
{
	struct etcd_event *ev = next_event(BIT(ETCD_EV_DISCONNECTED), WAIT_MS);

	cr_assert_not_null(ev, "the watch did not notice");
	cr_assert_lt(ev->err, 0);
	cr_assert_not_null(ev->msg);
	ev = etcd_event_free(ev);
	/* A put that timed out may still have been applied: then it comes first. */
	do {
		ev = etcd_event_free(ev);
		ev = next_event(BIT(ETCD_EV_PUT), WAIT_MS);
		cr_assert_not_null(ev, "the put made while disconnected was lost");
		cr_assert_str_eq(ev->kv.key, "/f/after");
	} while (ev->revision < rev);
	cr_assert_eq(ev->revision, rev);
	etcd_event_free(ev);
	/* Control: the put from before the watch is not replayed. */
	ev = next_event(BIT(ETCD_EV_PUT) | BIT(ETCD_EV_DELETE), 500);
	cr_assert_null(ev, "unexpected event on %s", ev ? ev->kv.key : "");
}

Test(client, follower_death_fails_over)
{
	int leader = cluster_leader(), r;
	int64_t rev = 0;

	cr_assert_geq(leader, 0, "no leader");
	/* A follower: the cluster keeps its leader, the call must just work. */
	r = kill_under_client((leader + 1) % CLUSTER_SIZE, &rev);
	cr_assert_eq(r, 0, "put after a follower died: %d %s", r, etcd_errmsg(C));
	check_watch_resumed(rev);
}

Test(client, leader_death_fails_over_and_recovers)
{
	int leader = cluster_leader(), r;
	int64_t rev = 0;
	long long t0;

	cr_assert_geq(leader, 0, "no leader");
	/* Writes in flight through the old leader are lost with it: the member
	 * holds them until etcd's own request timeout (7 s here), so the first
	 * call may run out of budget, or meet "no leader" during the election. */
	r = kill_under_client(leader, &rev);
	cr_assert(r == 0 || r == -ETIMEDOUT || r == -EAGAIN, "%d %s", r, etcd_errmsg(C));
	t0 = ms_now();
	while (r != 0 && ms_now() - t0 < WAIT_MS) {
		r = etcd_put(C, "/f/after", "2", 1, 0, &rev);
		if (r != 0)
			usleep(100 * 1000);
	}
	cr_assert_eq(r, 0, "no recovery after the leader died: %s", etcd_errmsg(C));
	check_watch_resumed(rev);
}

Test(client, silent_member_dropped_by_idle_timeout)
{
	struct etcd_event *ev;
	struct etcd *other;
	int quiet = cluster_member_of(etcd_endpoint(C)), r;
	int64_t rev = 0;
	long long t0;

	/* Progress every CLUSTER_PROGRESS_S keeps a 2 s idle bound satisfied. */
	W = etcd_watch_new(C, "/i/", 0, CLUSTER_PROGRESS_S + 1);
	cr_assert_not_null(W);
	ev = next_event(BIT(ETCD_EV_CREATED), WAIT_MS);
	cr_assert_not_null(ev);
	etcd_event_free(ev);
	ev = next_event(BIT(ETCD_EV_DISCONNECTED), 3000);
	cr_assert_null(ev, "dropped while the member was sending progress: %s", ev ? ev->msg : "");

	/* A member that hangs with its connections open sends nothing at all. */
	cluster_signal(quiet, SIGSTOP);
	other = etcd_new(CL.m[(quiet + 1) % CLUSTER_SIZE].url, CALL_TIMEOUT_MS);
	cr_assert_not_null(other);
	t0 = ms_now();
	do /* the stopped member may have been the leader: an election first */
		r = etcd_put(other, "/i/k", "1", 1, 0, &rev);
	while (r != 0 && ms_now() - t0 < WAIT_MS);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(other));
	cr_log_info("put through another member after %lld ms", ms_now() - t0);
	etcd_free(other);
	ev = next_event(BIT(ETCD_EV_DISCONNECTED), WAIT_MS);
	cr_assert_not_null(ev, "the silent stream was not dropped");
	cr_log_info("silent member: after %lld ms: %d %s", ms_now() - t0, ev->err, ev->msg);
	etcd_event_free(ev);
	ev = next_event(BIT(ETCD_EV_PUT), WAIT_MS);
	cr_assert_not_null(ev, "no resume on another member");
	cr_assert_str_eq(ev->kv.key, "/i/k");
	cr_assert_eq(ev->revision, rev);
	cr_log_info("resumed after %lld ms", ms_now() - t0);
	etcd_event_free(ev);
	cluster_signal(quiet, SIGCONT);
}

Test(client, quorum_lost_then_regained)
{
	struct etcd_event *ev;
	int keep, r;
	int64_t rev = 0;
	long long t0, took;

	put("/q/a", "1", 0);
	keep = cluster_member_of(etcd_endpoint(C));
	W = etcd_watch_new(C, "/q/", 0, 0);
	cr_assert_not_null(W);
	ev = next_event(BIT(ETCD_EV_CREATED), WAIT_MS);
	cr_assert_not_null(ev);
	etcd_event_free(ev);
	for (int i = 0; i < CLUSTER_SIZE; i++)
		if (i != keep)
			cluster_kill(i);

	/* At once the survivor may still believe in its leader: the write
	 * waits for a quorum that never comes, until the budget runs out. */
	t0 = ms_now();
	r = etcd_put(C, "/q/b", "2", 1, 0, NULL);
	took = ms_now() - t0;
	cr_assert(r == -EAGAIN || r == -ETIMEDOUT, "put without quorum: %d %s", r, etcd_errmsg(C));
	cr_assert_leq(took, CALL_TIMEOUT_MS + 500, "took %lld ms", took);
	cr_assert_neq(etcd_errmsg(C)[0], '\0');
	cr_log_info("without quorum, first call: %d after %lld ms: %s", r, took, etcd_errmsg(C));
	/* Once it knows (an election timeout later), it says so at once. */
	usleep(1000 * 1000);
	t0 = ms_now();
	r = etcd_put(C, "/q/b", "2", 1, 0, NULL);
	took = ms_now() - t0;
	cr_log_info("without quorum, later call: %d after %lld ms: %s", r, took, etcd_errmsg(C));
	cr_assert_eq(r, -EAGAIN, "%d %s", r, etcd_errmsg(C));
	cr_assert(strstr(etcd_errmsg(C), "no leader"), "%s", etcd_errmsg(C));
	cr_assert_lt(took, CALL_TIMEOUT_MS / 2);
	/* The watch asked for a leader too: it is dropped. */
	ev = next_event(BIT(ETCD_EV_DISCONNECTED), WAIT_MS);
	cr_assert_not_null(ev, "the watch did not notice the lost quorum");
	cr_log_info("watch: %d %s", ev->err, ev->msg);
	etcd_event_free(ev);

	for (int i = 0; i < CLUSTER_SIZE; i++)
		if (i != keep)
			cluster_restart(i);
	t0 = ms_now();
	do {
		r = etcd_put(C, "/q/b", "2", 1, 0, &rev);
		if (r != 0)
			usleep(100 * 1000);
	} while (r != 0 && ms_now() - t0 < CLUSTER_START_MS);
	cr_assert_eq(r, 0, "no recovery: %s", etcd_errmsg(C));
	cr_assert_eq(count("/q/"), 2);
	/* The watch is back and resumes where it was: the put is there. The
	 * first put, timed out, may have been committed once the quorum came
	 * back (it waited in the survivor's log): then it comes first. */
	ev = NULL;
	do {
		ev = etcd_event_free(ev);
		ev = next_event(BIT(ETCD_EV_PUT), WAIT_MS);
		cr_assert_not_null(ev, "the watch did not come back");
		cr_assert_str_eq(ev->kv.key, "/q/b");
	} while (ev->revision < rev);
	cr_assert_eq(ev->revision, rev);
	etcd_event_free(ev);
}

Test(client, compaction_ends_the_watch)
{
	struct etcd_event *ev;
	int64_t first, last = 0;
	int r;

	first = put("/c/k", "0", 0);
	for (int i = 1; i < 5; i++)
		last = put("/c/k", "n", 0);
	r = etcd_compact(C, last);
	cr_assert_eq(r, 0, "%s", etcd_errmsg(C));

	/* Control: from the compaction's revision on, the history is there. */
	W = etcd_watch_new(C, "/c/", last, 0);
	ev = next_event(BIT(ETCD_EV_PUT) | BIT(ETCD_EV_COMPACTED), WAIT_MS);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->type, ETCD_EV_PUT);
	cr_assert_eq(ev->revision, last);
	etcd_event_free(ev);
	W = etcd_watch_free(W);

	/* From before it, the watch reports the compaction and ends. */
	W = etcd_watch_new(C, "/c/", first, 0);
	ev = next_event(BIT(ETCD_EV_PUT) | BIT(ETCD_EV_COMPACTED), WAIT_MS);
	cr_assert_not_null(ev);
	cr_assert_eq(ev->type, ETCD_EV_COMPACTED);
	cr_assert_eq(ev->revision, last);
	etcd_event_free(ev);
	put("/c/k", "after", 0);
	ev = next_event(~0u, 1000);
	cr_assert_null(ev, "event %d after the watch ended", ev ? (int)ev->type : -1);
}
