/*
 * watcher — follow the mount through inotify and rebuild the set of live
 * names from the events alone; the test process compares that set with
 * the listing at each checkpoint (soak.h: snap_req/snap_ack/snap_set).
 *
 *   watcher 0: raw inotify on the root and on every group directory:
 *              IN_CREATE|IN_ISDIR adds a name, IN_DELETE|IN_ISDIR removes
 *              it. An IN_CREATE of a name already there, an IN_DELETE of a
 *              name not there, an event about a group (they never change)
 *              or about something that is none of our names is an
 *              anomaly. IN_Q_OVERFLOW: the set is read again from the
 *              directories (then the queued events may repeat what the
 *              reading saw, so until the next checkpoint repeats are
 *              counted, not failures).
 *   watcher 1: libsvcfs, svcfs_watch on the mount: APPEARED adds,
 *              VANISHED removes; APPEARED of a name there or VANISHED of
 *              one not there is an anomaly (the library promises
 *              transitions of the set it reported).
 *
 * At a checkpoint request the watcher drains what is queued, publishes its
 * set and acknowledges. It runs until the phase is STOP.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <svcfs.h>

#include "soak.h"

#define READ_BUF (256 * 1024)
#define POLL_MS  20
#define DIR_MASK                                                                                   \
	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ONLYDIR)

struct watcher {
	unsigned w, p;
	uint8_t set[SOAK_NAMES_MAX];
	bool repeats_ok; /* an overflow since the last checkpoint */
	/* raw */
	int ifd;
	int wds[SOAK_NGROUPS + 1];
	const char *rels[SOAK_NGROUPS + 1]; /* "" for the root */
	char *buf;
	/* libsvcfs */
	svcfs_dir *d;
	svcfs_watch *sw;
};

static struct soak_figs *F(struct watcher *wt)
{
	return &S->figs[wt->p];
}

/* An event that should not have come: counted, and described (the first ones). */
#define ANOMALY(wt, ...)                                                                           \
	do {                                                                                       \
		atomic_fetch_add(&F(wt)->anomalies, 1);                                            \
		soak_fail((wt)->p, __VA_ARGS__);                                                   \
	} while (0)

static void appear(struct watcher *wt, const char *rel)
{
	int i = soak_index(rel);

	atomic_fetch_add(&F(wt)->appeared, 1);
	if (i < 0)
		ANOMALY(wt, "appeared: %s is none of our names", rel);
	else if (wt->set[i] && !wt->repeats_ok)
		ANOMALY(wt, "appeared: %s, which was there already", rel);
	else
		wt->set[i] = 1;
}

static void vanish(struct watcher *wt, const char *rel)
{
	int i = soak_index(rel);

	atomic_fetch_add(&F(wt)->vanished, 1);
	if (i < 0)
		ANOMALY(wt, "vanished: %s is none of our names", rel);
	else if (!wt->set[i] && !wt->repeats_ok)
		ANOMALY(wt, "vanished: %s, which was not there", rel);
	else
		wt->set[i] = 0;
}

/* The set, read again from the directories (after an overflow, and at the start). */
static void rescan(struct watcher *wt)
{
	memset(wt->set, 0, sizeof(wt->set));
	for (unsigned g = 0; g <= SOAK_NGROUPS; g++) {
		char path[PATH_MAX], rel[PATH_MAX];
		struct dirent *de;
		DIR *d;

		soak_fmt(path, sizeof(path), "%s%s%s", S->mnt, wt->rels[g][0] ? "/" : "",
		         wt->rels[g]);
		d = opendir(path);
		if (!d) {
			soak_fail(wt->p, "opendir %s: %s", path, strerror(errno));
			continue;
		}
		while ((de = readdir(d))) {
			int i;
			if (de->d_name[0] == '.')
				continue;
			snprintf(rel, sizeof(rel), "%s%s%s", wt->rels[g], wt->rels[g][0] ? "/" : "",
			         de->d_name);
			if (soak_is_group(rel))
				continue;
			i = soak_index(rel);
			if (i >= 0)
				wt->set[i] = 1;
		}
		closedir(d);
	}
}

static int raw_start(struct watcher *wt)
{
	wt->buf = malloc(READ_BUF);
	wt->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (!wt->buf || wt->ifd < 0) {
		soak_fail(wt->p, "inotify_init1: %s", strerror(errno));
		return -1;
	}
	wt->rels[0] = "";
	for (unsigned g = 0; g < SOAK_NGROUPS; g++)
		wt->rels[g + 1] = soak_groups[g];
	for (unsigned g = 0; g <= SOAK_NGROUPS; g++) {
		char path[PATH_MAX];
		soak_fmt(path, sizeof(path), "%s%s%s", S->mnt, wt->rels[g][0] ? "/" : "",
		         wt->rels[g]);
		wt->wds[g] = inotify_add_watch(wt->ifd, path, DIR_MASK);
		if (wt->wds[g] < 0) {
			soak_fail(wt->p, "inotify_add_watch %s: %s", path, strerror(errno));
			return -1;
		}
	}
	rescan(wt); /* watches first, then the reading: nothing slips between */
	return 0;
}

static const char *raw_dir(struct watcher *wt, int wd)
{
	for (unsigned g = 0; g <= SOAK_NGROUPS; g++)
		if (wt->wds[g] == wd)
			return wt->rels[g];
	return NULL;
}

static void raw_event(struct watcher *wt, const struct inotify_event *ie)
{
	char rel[PATH_MAX];
	const char *dir;

	atomic_fetch_add(&F(wt)->events, 1);
	if (ie->mask & IN_Q_OVERFLOW) {
		atomic_fetch_add(&F(wt)->overflows, 1);
		wt->repeats_ok = true;
		rescan(wt);
		return;
	}
	dir = raw_dir(wt, ie->wd);
	if (!dir || (ie->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT))) {
		char what[64];
		snprintf(what, sizeof(what), "wd %d mask %#x", ie->wd, (unsigned)ie->mask);
		ANOMALY(wt, "a watched group went away: %s", what);
		return;
	}
	snprintf(rel, sizeof(rel), "%s%s%s", dir, dir[0] ? "/" : "", ie->len ? ie->name : "");
	if (soak_is_group(rel)) {
		ANOMALY(wt, "an event about the group %s (groups never change)", rel);
		return;
	}
	if ((ie->mask & IN_CREATE) && (ie->mask & IN_ISDIR))
		appear(wt, rel);
	else if ((ie->mask & IN_DELETE) && (ie->mask & IN_ISDIR))
		vanish(wt, rel);
	else
		ANOMALY(wt, "unexpected event about %s", rel);
}

/* Take everything queued now. */
static void raw_drain(struct watcher *wt)
{
	for (;;) {
		ssize_t len = read(wt->ifd, wt->buf, READ_BUF);
		if (len < 0 && errno == EINTR)
			continue;
		if (len <= 0) {
			if (len < 0 && errno != EAGAIN)
				soak_fail(wt->p, "read inotify: %s", strerror(errno));
			return;
		}
		for (char *q = wt->buf; q < wt->buf + len;) {
			const struct inotify_event *ie = (const struct inotify_event *)q;
			raw_event(wt, ie);
			q += sizeof(*ie) + ie->len;
		}
	}
}

static int lib_start(struct watcher *wt)
{
	int r = svcfs_open(S->mnt, &wt->d);

	if (r == 0)
		r = svcfs_watch_new(wt->d, SVCFS_WATCH_EXISTING, &wt->sw);
	if (r < 0) {
		soak_fail(wt->p, "svcfs_open/svcfs_watch_new %s: %s", S->mnt, strerror(-r));
		return -1;
	}
	return 0;
}

static void lib_drain(struct watcher *wt)
{
	struct svcfs_event ev;
	int r;

	while ((r = svcfs_watch_next(wt->sw, &ev)) > 0) {
		atomic_fetch_add(&F(wt)->events, 1);
		if (ev.type == SVCFS_EVENT_APPEARED)
			appear(wt, ev.name);
		else if (ev.type == SVCFS_EVENT_VANISHED)
			vanish(wt, ev.name);
		else if (ev.type == SVCFS_EVENT_CHANGED)
			atomic_fetch_add(&F(wt)->changed, 1);
		else
			ANOMALY(wt, "an event of unknown type about %s", ev.name);
	}
	if (r < 0)
		soak_fail(wt->p, "svcfs_watch_next: %s", strerror(-r));
}

static void drain(struct watcher *wt)
{
	if (wt->w == 0)
		raw_drain(wt);
	else
		lib_drain(wt);
}

int soak_watcher(unsigned w)
{
	static struct watcher wt;
	uint32_t served = 0;
	int r;

	wt.w = w;
	wt.p = SOAK_P_WATCHER + w;
	wt.ifd = -1;
	r = w == 0 ? raw_start(&wt) : lib_start(&wt);
	soak_ack(wt.p, 1); /* watching: the workers may start */
	if (r < 0)
		return 1;
	while (soak_phase(NULL) != SOAK_PH_STOP) {
		struct pollfd p = {.fd = w == 0 ? wt.ifd : svcfs_watch_fd(wt.sw), .events = POLLIN};
		uint32_t req;

		if (poll(&p, 1, POLL_MS) > 0)
			drain(&wt);
		req = atomic_load(&S->snap_req);
		if (req != served) {
			drain(&wt);
			for (unsigned i = 0; i < S->nnames; i++)
				atomic_store(&S->snap_set[w][i], wt.set[i]);
			wt.repeats_ok = false;
			served = req;
			atomic_store(&S->snap_ack[w], req);
		}
	}
	if (wt.ifd >= 0)
		close(wt.ifd);
	free(wt.buf);
	svcfs_watch_free(wt.sw);
	svcfs_close(wt.d);
	return atomic_load(&F(&wt)->bad) ? 1 : 0;
}
