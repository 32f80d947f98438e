/*
 * watch — the engine thread: one epoll over the inotify descriptor, the
 * probe-interval timer, the quick-retry timer, the poll timer (-o poll) and
 * a stop eventfd. Each wake-up handles everything that is ready, then
 * delivers the view's queued events (cache invalidations) once.
 *
 * inotify events are read in batches; a batch is handled after one fresh
 * sock_diag dump, so a burst of new sockets costs one dump, not one each.
 * IN_Q_OVERFLOW means events were lost: rescan and reconcile everything.
 * If BACKING itself is deleted or moved away, every service leaves the view
 * and the root is looked for again at each probe interval.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "cluster.h"
#include "engine.h"
#include "log.h"
#include "remote.h"

#define INOTIFY_BUF (64 * 1024)

/* epoll tags; any other value is a struct pwatch * (an owner's pidfd) */
enum {
	EV_INOTIFY = 1,
	EV_INTERVAL,
	EV_RETRY,
	EV_POLL,
	EV_STOP,
	EV_WAKE,
	EV_SIGNAL,
	EV_CLUSTER,
	EV_TAG_MAX
};

static int arm_periodic(int fd, double seconds)
{
	struct itimerspec it;
	long long ns = (long long)(seconds * 1e9);

	it.it_interval.tv_sec = ns / 1000000000ll;
	it.it_interval.tv_nsec = ns % 1000000000ll;
	it.it_value = it.it_interval;
	return timerfd_settime(fd, 0, &it, NULL);
}

static void drain(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n;
}

static void arm_retry(struct engine *e)
{
	struct itimerspec it = {0};

	it.it_value = table_next_retry(e);
	/* {0,0} disarms; an absolute time in the past fires at once */
	timerfd_settime(e->retry_fd, TFD_TIMER_ABSTIME, &it, NULL);
}

static void root_lost(struct engine *e, const char *why)
{
	log_err("%s: %s; all services hidden until it is back", e->backing, why);
	table_close_root(e);
}

static void handle_inotify(struct engine *e)
{
	char *buf = malloc(INOTIFY_BUF);
	bool dumped = false;

	if (!buf) {
		log_err("out of memory reading inotify events; rescanning");
		table_rescan(e);
		return;
	}
	for (;;) {
		ssize_t n = read(e->inotify_fd, buf, INOTIFY_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (!dumped) {
			/* one dump serves the whole batch */
			e->dump_fresh = probe_dump(e->probe) == 0;
			dumped = true;
		}
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			struct tdir *d;

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				log_warn("inotify queue overflow; rescanning %s", e->backing);
				table_rescan(e);
				continue;
			}
			d = table_dir_by_wd(e, ev->wd);
			if (!d || (ev->mask & IN_IGNORED))
				continue;
			if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
				/* a group's parent reports it too; only the root matters here */
				if (table_dir_is_root(e, d))
					root_lost(e, ev->mask & IN_DELETE_SELF ? "deleted"
					                                       : "moved away");
				if (!e->root)
					break;
				continue;
			}
			if (ev->len > 0) {
				table_dir_event(e, d, ev->mask, ev->name);
			} else if (ev->mask & IN_ATTRIB) {
				if (table_dir_is_root(e, d) && table_root_deleted(e)) {
					root_lost(e, "deleted");
					break;
				}
				table_dir_attr_changed(e, d); /* chmod/chown of the directory */
			}
		}
	}
	e->dump_fresh = false;
	free(buf);
}

/* The probe-interval tick: check every service; look for a lost root. */
static void handle_interval(struct engine *e)
{
	if (table_root_deleted(e))
		root_lost(e, "deleted");
	if (!e->root) {
		if (table_open_root(e) == 0)
			log_info("%s: back; following it again", e->backing);
		return;
	}
	table_check_all(e);
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	struct epoll_event evs[8];
	bool signalled = false;

	if (e->on_start)
		e->on_start(e->on_start_ctx);

	for (;;) {
		int n = epoll_wait(e->epoll_fd, evs, 8, -1);
		bool stop = false;

		e->locks_fresh = false; /* /proc/locks is read at most once a batch */
		e->holders_fresh = e->holders_rewalked = false; /* /proc/PID/fd likewise */
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 >= EV_TAG_MAX) {
				struct evsrc *src = evs[i].data.ptr;
				if (src->kind == SRC_OWNER)
					table_owner_exited(e, evs[i].data.ptr);
				else
					table_health_ready(e, evs[i].data.ptr);
				continue;
			}
			switch (evs[i].data.u64) {
			case EV_INOTIFY:
				handle_inotify(e);
				break;
			case EV_INTERVAL:
				drain(e->interval_fd);
				handle_interval(e);
				break;
			case EV_RETRY:
				drain(e->retry_fd);
				table_run_retries(e);
				break;
			case EV_POLL:
				drain(e->poll_fd);
				if (e->root)
					table_rescan(e);
				break;
			case EV_STOP:
				stop = true;
				break;
			case EV_WAKE:
				drain(e->wake_fd); /* events queued elsewhere: flushed below */
				break;
			case EV_CLUSTER:
				remote_update(e->remote, e->cluster); /* other hosts' changes */
				break;
			case EV_SIGNAL: {
				struct signalfd_siginfo si;
				ssize_t got = read(e->signal_fd, &si, sizeof(si));
				(void)got; /* any of them means: unmount */
				stop = signalled = true;
				break;
			}
			}
		}
		table_free_dead_watches(e);
		table_free_dead_probes(e);
		if (signalled)
			break; /* no more pokes: the loop is about to stop serving them */
		view_flush(e->view);
		if (stop)
			break;
		arm_retry(e);
	}
	if (signalled && e->cluster) {
		/* this host's services leave every other host now, while the mount is
		 * still served (after the loop ends, requests would wait for it) */
		cluster_stop(e->cluster, true);
	}
	atomic_store(&e->done, true);
	if (signalled && e->on_stop)
		e->on_stop(e->on_stop_ctx);
	return NULL;
}

static void engine_wake(void *ctx)
{
	struct engine *e = ctx;
	uint64_t one = 1;
	ssize_t n = write(e->wake_fd, &one, sizeof(one));
	(void)n; /* a full counter already means "wake up" */
}

static int add_fd(struct engine *e, int fd, uint32_t tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};
	return epoll_ctl(e->epoll_fd, EPOLL_CTL_ADD, fd, &ev);
}

int engine_init(struct engine *e, const char *backing, const struct svcfs_options *opt,
                struct view *view)
{
	int r;

	memset(e, 0, sizeof(*e));
	e->inotify_fd = e->epoll_fd = e->interval_fd = e->retry_fd = e->poll_fd = e->stop_fd =
	    e->wake_fd = e->signal_fd = -1;
	e->opt = *opt;
	e->view = view;
	e->backing = strdup(backing);
	e->probe = probe_new(&e->stats);
	if (!e->backing || !e->probe)
		return -ENOMEM;
	if (!probe_has_diag(e->probe))
		log_warn(
		    "sock_diag (NETLINK_SOCK_DIAG) unavailable: probing services by connecting");
	if (opt->poll <= 0) {
		e->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (e->inotify_fd < 0)
			log_warn("inotify unavailable (%s): rescanning every probe interval",
			         strerror(errno));
	}
	e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	e->interval_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->retry_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	e->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	e->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (e->epoll_fd < 0 || e->interval_fd < 0 || e->retry_fd < 0 || e->stop_fd < 0 ||
	    e->wake_fd < 0)
		return -errno;
	if (opt->poll > 0) {
		e->poll_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (e->poll_fd < 0 || arm_periodic(e->poll_fd, opt->poll) < 0 ||
		    add_fd(e, e->poll_fd, EV_POLL) < 0)
			return -errno;
	}
	if ((e->inotify_fd >= 0 && add_fd(e, e->inotify_fd, EV_INOTIFY) < 0) ||
	    add_fd(e, e->interval_fd, EV_INTERVAL) < 0 || add_fd(e, e->retry_fd, EV_RETRY) < 0 ||
	    add_fd(e, e->stop_fd, EV_STOP) < 0 || add_fd(e, e->wake_fd, EV_WAKE) < 0 ||
	    arm_periodic(e->interval_fd, opt->probe_interval) < 0)
		return -errno;
	if (opt->etcd) {
		struct cluster_config cc = {
		    .urls = opt->etcd,
		    .host = opt->host,
		    .prefix = opt->etcd_prefix,
		    .ttl = opt->etcd_ttl,
		};
		e->cluster = cluster_new(&cc);
		e->remote = remote_new(view, geteuid(), getegid(), opt->max_services);
		if (!e->cluster || !e->remote)
			return -ENOMEM;
		if (add_fd(e, cluster_fd(e->cluster), EV_CLUSTER) < 0)
			return -errno;
	}
	view_set_waker(view, engine_wake, e);
	e->quiet = true;
	r = table_open_root(e);
	e->quiet = false;
	if (r < 0)
		return r;
	if (e->inotify_fd < 0)
		e->unwatched =
		    opt->poll <= 0; /* no inotify and no poll timer: rescan per interval */
	return 0;
}

int engine_start(struct engine *e)
{
	sigset_t block, old;
	int r;

	arm_retry(e);
	/*
	 * Termination signals belong to the FUSE loop's thread (libfuse's
	 * handlers end the loop from there); the engine thread never takes them.
	 */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	/* they arrive through this signalfd (the caller keeps them blocked everywhere) */
	e->signal_fd = signalfd(-1, &block, SFD_NONBLOCK | SFD_CLOEXEC);
	if (e->signal_fd < 0 || add_fd(e, e->signal_fd, EV_SIGNAL) < 0)
		return -errno;
	pthread_sigmask(SIG_BLOCK, &block, &old);
	/* the cluster's threads first (they never take the signals either): the
	 * engine thread, once running, may need them */
	r = e->cluster ? -cluster_start(e->cluster) : 0;
	if (r == 0)
		r = pthread_create(&e->thread, NULL, engine_main, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		return -r;
	e->running = true;
	return 0;
}

void engine_request_stop(struct engine *e)
{
	uint64_t one = 1;
	ssize_t n;

	if (e->stop_fd >= 0) {
		n = write(e->stop_fd, &one, sizeof(one));
		(void)n;
	}
}

bool engine_stopped(struct engine *e)
{
	return !e->running || atomic_load(&e->done);
}

void engine_stop(struct engine *e)
{
	if (e->cluster) {
		/* this host's services leave every other host at once */
		cluster_stop(e->cluster, true);
	}
	if (e->running) {
		engine_request_stop(e);
		pthread_join(e->thread, NULL);
		e->running = false;
	}
	e->cluster = cluster_free(e->cluster);
	e->remote = remote_free(e->remote);
	e->quiet = true; /* shutting down is not every service going away */
	table_free(e);
	table_free_dead_watches(e);
	if (e->view)
		view_set_waker(e->view, NULL, NULL);
	int *fds[] = {&e->inotify_fd, &e->epoll_fd, &e->interval_fd, &e->retry_fd,
	              &e->poll_fd,    &e->stop_fd,  &e->wake_fd,     &e->signal_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
	e->probe = probe_free(e->probe);
	free(e->backing);
	e->backing = NULL;
}
