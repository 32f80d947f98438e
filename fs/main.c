/*
 * svcfs — mount a live discovery view of a socket directory.
 *
 *   svcfs [FUSE options] [-o svcfs options] BACKING MOUNTPOINT
 *
 * Start-up order matters: arguments and paths are checked first (one
 * clear line and exit 2 for usage, 1 for a bad path), then BACKING is
 * scanned so the first `ls` after mount already shows every live service,
 * then the mount, then (in the background case) the fork, then the poker
 * process (notify.c: it must be the daemon's child, and forked while
 * there is one thread), and only then the engine thread, since threads do
 * not survive fork.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "fs.h"
#include "log.h"
#include "options.h"
#include "svcfs-internal.h"

#define EXIT_USAGE 2

extern char **environ;

struct cli {
	char *backing;
	char *mountpoint; /* ours, so that a bad one gets svcfs's message, not libfuse's */
	int nonopts;
	char *extra;       /* the first argument after MOUNTPOINT: an error */
	bool auto_unmount; /* -o auto_unmount (also left for libfuse) */
};

enum { KEY_AUTO_UNMOUNT = 1 };

static const struct fuse_opt cli_opts[] = {
    FUSE_OPT_KEY("auto_unmount", KEY_AUTO_UNMOUNT),
    FUSE_OPT_END,
};

static int cli_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cli *cli = data;

	(void)outargs;
	if (key == KEY_AUTO_UNMOUNT) {
		cli->auto_unmount = true;
		return 1; /* libfuse's too */
	}
	if (key != FUSE_OPT_KEY_NONOPT)
		return 1;
	if (++cli->nonopts <= 2) {
		char **dst = cli->nonopts == 1 ? &cli->backing : &cli->mountpoint;
		*dst = strdup(arg);
		return *dst ? 0 : -1;
	}
	if (!cli->extra)
		cli->extra = strdup(arg);
	return 0;
}

/*
 * Tell a service manager how we are (sd_notify(3)'s protocol, without
 * libsystemd): one datagram to $NOTIFY_SOCKET, a path or, with a leading
 * '@', an abstract name. systemd's Type=notify then starts the units that
 * need the mount only once it is live. Nothing is set: nothing is sent.
 */
static void service_manager_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@') ||
	    (len = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		log_debug("NOTIFY_SOCKET %s: %s", path, strerror(errno));
	close(fd);
}

/*
 * Descriptors: svcfs keeps one per group and one per owner process (a
 * pidfd), so thousands of services want more than the usual soft limit of
 * 1024. Take what the hard limit allows, as programs that never use
 * select() should. Whatever is left short is handled as it comes (the
 * engine rescans each interval until descriptors are free again).
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY ? 1 << 20 : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_debug("cannot raise the descriptor limit: %s", strerror(errno));
}

/*
 * libfuse ends its worker threads with pthread_cancel(), which loads
 * libgcc_s at its first use — an open() that fails (and glibc aborts) when
 * every descriptor is taken. Load it now, while there are some.
 */
static void preload_unwinder(void)
{
	if (!dlopen("libgcc_s.so.1", RTLD_NOW | RTLD_NODELETE))
		log_debug("cannot preload libgcc_s: %s", dlerror());
}

static void usage(const char *prog)
{
	printf("usage: %s [options] BACKING MOUNTPOINT\n\n"
	       "Mount a live view of the Unix sockets in BACKING at MOUNTPOINT: one\n"
	       "directory per service that is alive right now.\n\n",
	       prog);
	options_usage();
	printf("\nFUSE options:\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

/* fsname=VALUE with the commas and backslashes of VALUE escaped for libfuse. */
static char *fsname_option(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(sizeof("-ofsname=,subtype=svcfs,default_permissions") + 2 * n);
	char *p = out;

	if (!out)
		return NULL;
	p += sprintf(p, "-ofsname=");
	for (const char *s = path; *s; s++) {
		if (*s == ',' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	strcpy(p, ",subtype=svcfs,default_permissions");
	return out;
}

/* True if path A is B or lies below it. */
static bool path_within(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* Is an svcfs mount on absolute path PATH (the top one, per /proc/self/mountinfo)? */
static bool svcfs_mounted_on(const char *path)
{
	char *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (getline(&line, &cap, f) > 0) {
		char point[PATH_MAX], fstype[64];
		const char *sep = strstr(line, " - ");

		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER */
		if (!sep || sscanf(line, "%*u %*u %*s %*s %4095s", point) != 1 ||
		    sscanf(sep + 3, "%63s", fstype) != 1)
			continue;
		svcfs_unescape_octal(point);
		if (strcmp(point, path) == 0)
			found =
			    strcmp(fstype, "fuse.svcfs") == 0; /* the last one listed is on top */
	}
	free(line);
	fclose(f);
	return found;
}

/*
 * MOUNTPOINT answers ENOTCONN: a FUSE mount whose daemon is gone. If it is
 * an svcfs mount, detach it (lazily: processes still inside keep their
 * dead view) so that this svcfs can take its place, as `umount -l` then
 * mount would; any other kind of mount is not ours to touch. Returns 0 if
 * detached.
 */
static int replace_dead_mount(const char *mountpoint)
{
	char parent[PATH_MAX], abs[PATH_MAX], *copy, *slash;
	const char *base;
	int r = -1, st;
	pid_t pid;

	copy = strdup(mountpoint);
	if (!copy)
		return -1;
	while (strlen(copy) > 1 && copy[strlen(copy) - 1] == '/')
		copy[strlen(copy) - 1] = '\0';
	slash = strrchr(copy, '/');
	base = slash ? slash + 1 : copy;
	if (slash)
		*slash = '\0';
	if (!realpath(slash ? (copy[0] ? copy : "/") : ".", parent) ||
	    snprintf(abs, sizeof(abs), "%s/%s", strcmp(parent, "/") ? parent : "", base) >=
	        (int)sizeof(abs) ||
	    !svcfs_mounted_on(abs))
		goto out;
	fprintf(stderr,
	        "svcfs: MOUNTPOINT %s: the svcfs mounted there is gone (%s); detaching it\n",
	        mountpoint, strerror(ENOTCONN));
	if (geteuid() == 0) {
		r = umount2(abs, MNT_DETACH);
	} else {
		/* an ordinary user unmounts through fusermount3, as libfuse does */
		char *const argv[] = {"fusermount3", "-u", "-z", "--", abs, NULL};
		if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) == 0 &&
		    waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
			r = 0;
	}
out:
	free(copy);
	return r;
}

/*
 * -o auto_unmount, kept: fusermount3's own guard unmounts a dead mount only
 * if opening its root fails, but svcfs lets the kernel cache the root for a
 * day and asks for no OPENDIR, so once the mount was used the open works on
 * the dead connection and the mount stays — answering stale "alive" from
 * the cache. So svcfs keeps a guard of its own: a child holding nothing but
 * the read end of a pipe. When the daemon dies the pipe ends; if the mount
 * is then dead (statfs: ENOTCONN), the guard detaches it. On a clean exit
 * the daemon unmounts first, closes the pipe and reaps the guard.
 */
static pid_t start_unmount_guard(const char *mountpoint, int *ret_fd)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		struct statfs sfs;
		char c;
		sigset_t all;

		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL); /* only the daemon's death ends it */
		if (dup2(p[0], 3) < 0)
			_exit(1);
		close_range(4, ~0U, 0); /* above all the FUSE device: its closing is the death */
		if (chdir("/") < 0)
			_exit(1);
		while (read(3, &c, 1) < 0 && errno == EINTR)
			;
		/* ECONNABORTED: our statfs was pending when the connection was aborted */
		/*
		 * ECONNABORTED: our statfs was pending when the connection was
		 * aborted. Tried a few times: fusermount3's own guard may be busy
		 * with the same mount at the same moment.
		 */
		for (int tries = 0; tries < 20; tries++) {
			if (!(statfs(mountpoint, &sfs) < 0 &&
			      (errno == ENOTCONN || errno == ECONNABORTED) &&
			      svcfs_mounted_on(mountpoint)))
				break;
			if (geteuid() == 0) {
				umount2(mountpoint, MNT_DETACH);
			} else {
				char *const argv[] = {"fusermount3",      "-u", "-z", "--",
				                      (char *)mountpoint, NULL};
				execvp(argv[0], argv);
				_exit(1);
			}
			poll(NULL, 0, 50);
		}
		close(3);
		_exit(0);
	}
	close(p[0]);
	*ret_fd = p[1];
	return pid;
}

static void stop_unmount_guard(pid_t pid, int fd)
{
	if (pid <= 0)
		return;
	close(fd); /* the mount is gone already: the guard finds nothing to do */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static int check_paths(const char *backing, const char *mountpoint, char *real_backing,
                       char *real_mnt, struct stat *ret_st)
{
	struct statfs sfs;
	struct stat st;

	if (!realpath(backing, real_backing) || stat(real_backing, &st) < 0) {
		fprintf(stderr, "svcfs: BACKING %s: %s\n", backing, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "svcfs: BACKING %s: %s\n", backing, strerror(ENOTDIR));
		return -1;
	}
	if (access(real_backing, R_OK | X_OK) < 0) {
		fprintf(stderr, "svcfs: BACKING %s: %s\n", backing, strerror(errno));
		return -1;
	}
	*ret_st = st;
	/*
	 * statfs, not stat: the kernel may answer stat from its cache even when
	 * the daemon behind the mount is gone; statfs always asks it.
	 */
	if (statfs(mountpoint, &sfs) < 0 && (errno == ENOTCONN || errno == ECONNABORTED))
		replace_dead_mount(mountpoint); /* then look again */
	if (!realpath(mountpoint, real_mnt) || stat(real_mnt, &st) < 0) {
		fprintf(stderr, "svcfs: MOUNTPOINT %s: %s\n", mountpoint, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "svcfs: MOUNTPOINT %s: %s\n", mountpoint, strerror(ENOTDIR));
		return -1;
	}
	if (path_within(real_mnt, real_backing) || path_within(real_backing, real_mnt)) {
		fprintf(stderr,
		        "svcfs: MOUNTPOINT %s: must not be inside BACKING %s or contain it\n",
		        mountpoint, backing);
		return -1;
	}
	return 0;
}

/* SIGUSR1 only interrupts the FUSE loop's wait (see notify_stop). */
static void wake_handler(int sig)
{
	(void)sig;
}

/*
 * Stop the engine thread. While the mount is still up it may be waiting
 * for a poke (a mkdir on this very mount, by the poker or by itself) that
 * only a FUSE handler can answer, and the FUSE loop has ended: serve
 * requests here until the thread is out.
 */
static void stop_engine(struct engine *e, struct fuse_session *se)
{
	struct fuse_buf buf = {0};
	int fd = se ? fuse_session_fd(se) : -1;

	engine_request_stop(e);
	while (fd >= 0 && !engine_stopped(e)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int n = poll(&p, 1, 10);
		if (n <= 0)
			continue;
		n = fuse_session_receive_buf(se, &buf);
		if (n > 0)
			fuse_session_process_buf(se, &buf);
		else if (n < 0 && n != -EINTR && n != -EAGAIN)
			break; /* the connection is gone: nothing can wait on it any more */
	}
	free(buf.mem);
	engine_stop(e);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = {0};
	struct fuse_loop_config *loop = NULL;
	struct svcfs_options opt = {0};
	struct svcfs_fs fs = {0};
	struct engine engine = {0};
	struct cli cli = {0};
	char real_backing[PATH_MAX], real_mnt[PATH_MAX], err[256], *fsname = NULL;
	struct stat bst;
	bool engine_ready = false, mounted = false;
	pid_t guard = 0;
	int guard_fd = -1;
	int ret = EXIT_USAGE, r;

#ifdef M_ARENA_MAX
	/*
	 * One malloc arena for every thread. glibc would give the engine
	 * thread and each FUSE worker a heap of its own, each with its own
	 * high-water mark and holes: under churn (records made on one
	 * thread, aggregates rendered and freed on others) the daemon's RSS
	 * then crept while what it held stayed flat — the soak measured
	 * +0.8 to +1.5 MB in 60 s with an arena per thread, +0.3 to +0.45 MB
	 * with one. The handlers serialize on the view lock anyway, and small
	 * blocks come from each thread's own cache without the arena lock.
	 */
	mallopt(M_ARENA_MAX, 1);
#endif
	/*
	 * Termination signals go to the engine thread (a signalfd): it stops
	 * poking the mount first and only then ends the FUSE loop, since the
	 * loop drops requests it reads after it was told to exit — a poke in
	 * flight would then never be answered. Blocked from the start, so one
	 * that arrives while mounting waits for the engine instead of killing
	 * the daemon with its mount still up.
	 */
	{
		struct sigaction sa = {.sa_handler = wake_handler}; /* no SA_RESTART */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGTERM);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGHUP);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		signal(SIGPIPE, SIG_IGN);
		sigaction(SIGUSR1, &sa, NULL);
	}
	if (fuse_opt_parse(&args, &cli, cli_opts, cli_proc) < 0)
		goto out;
	if (options_parse(&args, &opt, err, sizeof(err)) < 0) {
		fprintf(stderr, "svcfs: %s\n", err);
		goto out;
	}
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out; /* libfuse said why */
	if (cmd.show_help) {
		usage(argv[0]);
		ret = 0;
		goto out;
	}
	if (cmd.show_version) {
		printf("svcfs %s (libfuse %s)\n", SVCFS_VERSION, fuse_pkgversion());
		ret = 0;
		goto out;
	}
	if (cli.extra) {
		fprintf(stderr, "svcfs: unexpected argument '%s' after MOUNTPOINT\n", cli.extra);
		goto out;
	}
	if (!cli.backing || !cli.mountpoint) {
		fprintf(stderr, "svcfs: %s\nusage: %s [options] BACKING MOUNTPOINT (see --help)\n",
		        cli.backing ? "missing MOUNTPOINT" : "missing BACKING and MOUNTPOINT",
		        argv[0]);
		goto out;
	}
	if (cmd.singlethread) {
		fprintf(stderr,
		        "svcfs: -s is not supported: svcfs needs the multi-threaded loop\n");
		goto out;
	}
	ret = EXIT_FAILURE;
	if (check_paths(cli.backing, cli.mountpoint, real_backing, real_mnt, &bst) < 0)
		goto out;
	fsname = fsname_option(real_backing);
	if (!fsname || fuse_opt_add_arg(&args, fsname) < 0)
		goto out;

	log_init(false, cmd.debug);
	raise_fd_limit();
	preload_unwinder();
	fs.view = view_new(bst.st_uid, bst.st_gid, bst.st_mode & 0555, notify_events, &fs);
	if (!fs.view)
		goto out;
	fs.mountpoint = real_mnt; /* absolute: the daemon chdirs to / */
	r = engine_init(&engine, real_backing, &opt, fs.view);
	engine.on_start = notify_start;
	engine.on_start_ctx = &fs;
	engine_ready = true;
	if (r < 0) {
		fprintf(stderr, "svcfs: BACKING %s: %s\n", cli.backing, strerror(-r));
		goto out;
	}
	view_flush(fs.view); /* nothing is cached yet: the initial scan's events go nowhere */
	fs.stats = &engine.stats;
	fs.status = (struct svcfs_status_info){
	    .backing = engine.backing,
	    .probe_interval = opt.probe_interval,
	    .poll = opt.poll,
	    .sock_diag = probe_has_diag(engine.probe),
	    .cluster = engine.cluster,
	    .remote = engine.remote,
	};
	clock_gettime(CLOCK_REALTIME, &fs.status.started);

	fs.se = fuse_session_new(&args, &svcfs_ops, sizeof(svcfs_ops), &fs);
	if (!fs.se) {
		ret = EXIT_USAGE; /* libfuse printed the unknown option */
		goto out;
	}
	/*
	 * The guard comes before the mount: a daemon killed the instant the
	 * mount appears must find it watching (it holds no FUSE descriptor).
	 */
	if (cli.auto_unmount && (guard = start_unmount_guard(real_mnt, &guard_fd)) < 0)
		log_warn("auto_unmount: cannot start the guard: %s", strerror(errno));
	if (fuse_session_mount(fs.se, real_mnt) != 0)
		goto out;
	mounted = true;
	if (fuse_daemonize(cmd.foreground) != 0)
		goto out;
	if (!cmd.foreground)
		log_init(true, cmd.debug);
	fs.loop_thread = pthread_self();
	engine.on_stop = notify_stop;
	engine.on_stop_ctx = &fs;
	atomic_store(&fs.mounted, true);
	/* after the fork into the background (its parent must be the daemon),
	 * before any thread: the poker keeps only its socket of what is open */
	if ((r = notify_poker_start(&fs)) < 0)
		log_warn("cannot start the poker process (%s): poking from the engine thread",
		         strerror(-r));
	if ((r = engine_start(&engine)) < 0) {
		log_err("cannot start the engine thread: %s", strerror(-r));
		goto out;
	}
	log_info("%s mounted on %s (%zu services)", real_backing, cli.mountpoint,
	         view_service_count(fs.view));

	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out;
	fuse_loop_cfg_set_clone_fd(loop, cmd.clone_fd);
	if (cmd.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, cmd.max_idle_threads);
	fuse_loop_cfg_set_max_threads(loop, cmd.max_threads);
	service_manager_notify("READY=1"); /* mounted, served from the next instant */
	r = fuse_session_loop_mt(fs.se, loop);
	service_manager_notify("STOPPING=1");
	/* ended by SIGTERM/SIGINT/SIGHUP (the loop then reports the interruption) or umount */
	ret = (r == 0 || atomic_load(&fs.stop_requested)) ? 0 : EXIT_FAILURE;
	if (ret == 0)
		log_info("unmounting %s", cli.mountpoint);
out:
	if (engine_ready) {
		atomic_store(&fs.mounted, false); /* no new pokes or notifications */
		stop_engine(&engine, mounted ? fs.se : NULL);
	}
	notify_poker_stop(&fs); /* no poke in flight once the engine thread is out */
	if (mounted)
		fuse_session_unmount(fs.se);
	stop_unmount_guard(guard, guard_fd);
	if (fs.se)
		fuse_session_destroy(fs.se);
	fuse_loop_cfg_destroy(loop);
	view_free(fs.view);
	free(fsname);
	free(cli.backing);
	free(cli.mountpoint);
	free(cli.extra);
	options_free(&opt);
	fuse_opt_free_args(&args);
	return ret;
}
