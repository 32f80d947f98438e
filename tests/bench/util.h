/*
 * What the benchmarks share (svcfs-bench-latency with its D-Bus baseline,
 * svcfs-bench-tree, svcfs-bench-cluster): time, signals and a stop flag,
 * forked children that die with the bench, the timed service child, the
 * svcfs daemon's start, mount and stop, logs, percentiles, cleanup, and
 * option parsing. Messages start with bench_prog, which each program
 * defines; everything here runs in the bench's one thread.
 */
#ifndef SVCFS_BENCH_UTIL_H
#define SVCFS_BENCH_UTIL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>

/* The program's name, the prefix of every message: defined by each program. */
extern const char bench_prog[];

/* The signal (SIGINT, SIGTERM, SIGHUP) that asked the bench to stop, or 0. */
extern volatile sig_atomic_t bench_got_stop;

/* SIGINT, SIGTERM and SIGHUP set bench_got_stop, without SA_RESTART, so that
 * a blocking call returns EINTR; SIGALRM goes to ON_ALARM unless NULL;
 * SIGPIPE is ignored. */
void bench_install_signals(void (*on_alarm)(int));

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t bench_now_ns(void);
/* Milliseconds from T0 (a bench_now_ns value) to now. */
double bench_ms_since(int64_t t0);
/* Sleep MS; a signal cuts it short once bench_got_stop is set. */
void bench_sleep_ms(unsigned ms);

/* In a forked child: own process group (a terminal's ^C reaches the bench
 * only, which cleans up in order), DEATHSIG when the bench dies, default
 * signal dispositions. Exits if PARENT is already gone. */
void bench_child_reset(pid_t parent, int deathsig);
/* In a forked child: KEEP becomes fd 3, inherited across exec; every other
 * fd above 2 goes. */
void bench_child_fds(int keep);
/* In a forked child about to exec: stdout and stderr to LOG (created or
 * truncated), stdin from /dev/null. */
void bench_child_stdio(const char *log);

/* 0 once all LEN bytes are written, -1 otherwise. */
int bench_write_all(int fd, const char *buf, size_t len);
/* read() of one byte, retried on EINTR: 1, 0 at end of file, -1. */
int bench_read_byte(int fd, char *c);
/* What a child says on the pipe FD until end of file, TIMEOUT_MS or a stop,
 * NUL-terminated in BUF (LEN > 0); how many bytes. */
size_t bench_read_msg(int fd, char *buf, size_t len, unsigned timeout_ms);

/* waitpid with a deadline: true once PID is reaped (status in *STATUS). */
bool bench_wait_pid_for(pid_t pid, unsigned ms, int *status);
/* SIGKILL to *PID (when > 0), reap it, *PID = 0. */
void bench_kill_and_reap(pid_t *pid);
/* Reap *PID (when > 0), SIGKILLed if it has not exited within MS; *PID = 0. */
void bench_reap(pid_t *pid, unsigned ms);

/* What a service child of bench_service_spawn tells the bench; in memory
 * shared with it (mmap MAP_SHARED), read after the event. */
struct bench_service_shm {
	_Atomic int64_t t0; /* just before bind() */
	_Atomic int err;    /* errno of a failed socket, bind or listen */
};

/* Fork a service child for the socket PATH reporting to SH: it waits for
 * 'b' on the pipe *RET_CTL, then socket(), bind() (t0 just before), listen();
 * on anything more (or end of file) it removes the socket and exits. A crash
 * sample SIGKILLs it instead. 0, or -1 (said on stderr). */
int bench_service_spawn(const char *path, struct bench_service_shm *sh, pid_t *ret_pid,
                        int *ret_ctl);

/* Is PATH a mount point of TYPE ("fuse.svcfs")? Reads /proc, never PATH. */
bool bench_mounted(const char *path, const char *type);
/* rm -rf PATH, never into a mount that is still there. */
void bench_rm_tree(const char *path);
/* RLIMIT_NOFILE of this process at least NEED (root may raise the hard
 * limit): 0, or -1 with errno. */
int bench_raise_nofile(rlim_t need);
/* A helper's life once its listening sockets FDS are bound: accept and close
 * every connection (svcfs connects once to each service to learn its
 * owner), as a real server would, so that no queued connection lingers. */
_Noreturn void bench_serve(const int *fds, unsigned n);

/* SVCFS is executable and /dev/fuse usable: 0, or -1 (said on stderr). */
int bench_check_svcfs(const char *svcfs);
/* First line of `SVCFS --version` in BUF, "?" when there is none. */
void bench_svcfs_version(const char *svcfs, char *buf, size_t len);
/* The value after the colon of the first line of the file PATH that starts
 * with KEY ("" matches the first line, which is then taken whole), "?" when
 * there is none: "model name" of /proc/cpuinfo. */
void bench_proc_field(const char *path, const char *key, char *buf, size_t len);

/* Fork and exec `SVCFS -f [-d] [-o OPTS] BACKING MNT` (DEBUG: -d), its output
 * to LOG; if the bench dies, it gets SIGTERM and unmounts. 0 with the pid in
 * *RET_PID, or -1 (said on stderr). */
int bench_svcfs_start(const char *svcfs, const char *opts, bool debug, const char *backing,
                      const char *mnt, const char *log, pid_t *ret_pid);

/* Poll until MNT is an svcfs mount: 0. 1: *DAEMON exited first (reaped,
 * wait status in *RET_STATUS, *DAEMON = 0); 2: not mounted within
 * TIMEOUT_MS; -1: bench_got_stop. The caller says why. */
int bench_svcfs_wait_mounted(pid_t *daemon, const char *mnt, unsigned timeout_ms, int *ret_status);

/* How bench_svcfs_stop went. */
struct bench_svcfs_exit {
	bool reaped;   /* there was a daemon, and it is gone */
	int status;    /* its wait status */
	double ms;     /* SIGTERM -> reaped */
	bool forced;   /* not gone within the timeout: umount2(MNT_DETACH), SIGKILL if need be */
	bool detached; /* MNT still mounted after that: umount2(MNT_DETACH) */
};

/* SIGTERM to *DAEMON (when > 0), reaped within TERM_TIMEOUT_MS, else
 * umount2(MNT, MNT_DETACH) and after 2 s SIGKILL; *DAEMON = 0. Then MNT
 * (when not "") is detached if it is still an svcfs mount. 0, or -1 when
 * something had to be forced or the daemon's exit was not 0. RET may be
 * NULL. */
int bench_svcfs_stop(pid_t *daemon, const char *mnt, unsigned term_timeout_ms,
                     struct bench_svcfs_exit *ret);

/* The last KEEP (> 0) lines of the file PATH (nothing when it is "" or
 * cannot be opened) on stderr, after a line that names WHAT. */
void bench_print_log_tail(const char *what, const char *path, unsigned keep);

/* qsort comparison of two int64_t. */
int bench_cmp_i64(const void *a, const void *b);
/* The Q quantile (0.5: the median) of the N sorted nanosecond values V in
 * microseconds, by nearest rank; 0 when N is 0. */
double bench_pct_us(const int64_t *v, unsigned n, double q);

/* S as a number from MIN to MAX into *OUT: 0, or -1 (said on stderr, naming
 * the option OPT). */
int bench_parse_uint(const char *opt, const char *s, unsigned min, unsigned max, unsigned *out);

struct option; /* <getopt.h> */

/* An option of getopt_long that needs no code of its own: exactly one of
 * NUM, STR and FLAG is set. */
struct bench_opt {
	int val;          /* what getopt_long returns for it; 0 ends a table */
	const char *name; /* NUM: "--samples", for messages */
	unsigned min, max;
	unsigned *num;    /* the argument, a number from MIN to MAX */
	const char **str; /* the argument as it is */
	bool *flag;       /* set to true */
};

/* The next option of ARGV (getopt_long with LONGOPTS, and -h) that is none
 * of OPTS, for the caller to handle, its argument in optarg; those of OPTS
 * are set on the way. 0 after the last option. -1 when the program is to
 * exit with *RET_EXIT: 0 after -h (USAGE printed on stdout), 2 after a bad
 * option, a bad number or an operand (said on stderr). */
int bench_next_option(int argc, char **argv, const struct option *longopts,
                      const struct bench_opt *opts, void (*usage)(FILE *), int *ret_exit);

#endif
