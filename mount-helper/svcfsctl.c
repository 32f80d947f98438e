/*
 * svcfsctl — services from the shell, on libsvcfs.
 *
 *   svcfsctl [-d DIR] ls [-l] [--json]
 *   svcfsctl [-d DIR] show [--json] NAME
 *   svcfsctl [-d DIR] watch [--json] [--existing]
 *   svcfsctl [-d DIR] wait [--timeout SECONDS] NAME...
 *   svcfsctl [-d DIR] connect [--timeout SECONDS] [--wait] NAME
 *   svcfsctl [-d DIR] register [OPTIONS] NAME -- CMD [ARG...]
 *   svcfsctl [-d DIR] status [--json]
 *
 * DIR is the svcfs mount the clients read (default: svcfs_default_mount(),
 * $SVCFS_MOUNT) — or any backing directory, read without liveness — and,
 * for register, the backing directory the service registers in (default:
 * svcfs_default_dir(), $SVCFS_DIR).
 *
 * register execs CMD as systemd socket activation would: the socket as fd
 * 3, LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES; NAME.lock stays open in CMD
 * (one more inherited fd, not announced) so the name is CMD's for its life
 * and svcfs knows CMD as the owner without ever connecting to it.
 *
 * Options may follow the command's arguments (GNU getopt order), except
 * for register, whose options end at NAME so that CMD keeps its own.
 *
 * Exit status: 0 done, 1 failed (no such service, timed out, refused...),
 * 2 bad usage. Output that scripts read is one record per line, flushed
 * per line; names are printed with control characters escaped (\n, \xHH)
 * in text and as JSON strings with --json.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pwd.h>
#include <grp.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <svcfs.h>

#define EXIT_USAGE 2
#define RELAY_BUF  65536

static const char *prog = "svcfsctl";
static const char *dir_arg; /* -d DIR */

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "usage: %s [-d DIR] COMMAND [ARGS]\n"
	    "\n"
	    "  ls [-l] [--json]                 list the live services\n"
	    "  show [--json] NAME               one service: state, owner, socket, metadata\n"
	    "  watch [--json] [--existing]      one line per service appearing, changing, "
	    "vanishing\n"
	    "  wait [--timeout S] NAME...       exit 0 once every NAME is there, 1 on timeout\n"
	    "  connect [--timeout S] [--wait] NAME\n"
	    "                                   relay stdin/stdout to the service's socket\n"
	    "  register [--meta K=V]... [--meta-json K=JSON]... [--type stream|seqpacket|dgram]\n"
	    "           [--mode MODE] [--backlog N] NAME -- CMD [ARG...]\n"
	    "                                   take NAME and exec CMD with its socket as fd 3\n"
	    "                                   (LISTEN_FDS=1, systemd socket activation)\n"
	    "  status [--json]                  the svcfs daemon: services, probes, events\n"
	    "\n"
	    "  -d, --dir DIR   the svcfs mount to read (default $SVCFS_MOUNT, /run/services,\n"
	    "                  $XDG_RUNTIME_DIR/services), or a backing directory (no liveness);\n"
	    "                  for register: the backing directory (default $SVCFS_DIR,\n"
	    "                  /run/svcfs, $XDG_RUNTIME_DIR/svcfs, /tmp/svcfs-UID)\n"
	    "  -h, --help      this text\n"
	    "      --version   the version\n"
	    "\n"
	    "Exit status: 0 done, 1 failed, 2 bad usage. See svcfsctl(1).\n",
	    prog);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", prog);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return EXIT_USAGE;
}

/* A name for a text line: control characters and backslashes escaped. */
static void put_name(FILE *out, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\')
			fputs("\\\\", out);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c == '\t')
			fputs("\\t", out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
}

/* A timeout in seconds (decimals allowed) as milliseconds; -1 if none was given. */
static int parse_timeout(const char *arg, int *ret_ms)
{
	char *end;
	double s;

	errno = 0;
	s = strtod(arg, &end);
	if (errno || end == arg || *end || !isfinite(s) || s < 0 || s > INT_MAX / 1000.0)
		return -EINVAL;
	*ret_ms = (int)ceil(s * 1000);
	return 0;
}

/* ---- opening ---- */

static int open_dir(svcfs_dir **ret)
{
	char *def = NULL;
	int r;

	r = svcfs_open(dir_arg, ret);
	if (r < 0) {
		if (!dir_arg && svcfs_default_mount(&def) == 0) {
			fprintf(stderr, "%s: %s: %s (is svcfs mounted there? use -d DIR)\n", prog,
			        def, strerror(-r));
			free(def);
		} else if (!dir_arg) {
			fprintf(stderr, "%s: no default mount (set $SVCFS_MOUNT or use -d DIR)\n",
			        prog);
		} else {
			fprintf(stderr, "%s: %s: %s\n", prog, dir_arg, strerror(-r));
		}
		return r;
	}
	/* the default place without svcfs on it: say so rather than list nothing */
	if (!dir_arg && !svcfs_dir_is_mount(*ret)) {
		fprintf(
		    stderr,
		    "%s: %s: not an svcfs mount (is svcfs running? -d DIR reads any directory)\n",
		    prog, svcfs_dir_path(*ret));
		*ret = svcfs_close(*ret);
		return -ENOTSUP;
	}
	return 0;
}

static void service_error(const char *name, int r)
{
	fprintf(stderr, "%s: ", prog);
	put_name(stderr, name);
	if (r == -ENOENT)
		fprintf(stderr, ": no such service\n");
	else if (r == -EINVAL)
		fprintf(stderr, ": not a service name\n");
	else
		fprintf(stderr, ": %s\n", strerror(-r));
}

/* ---- output of services ---- */

static json_object *info_json(const svcfs_info *i, const char *event)
{
	json_object *o = json_object_new_object();

	if (event)
		json_object_object_add(o, "event", json_object_new_string(event));
	json_object_object_add(o, "name", json_object_new_string(svcfs_info_name(i)));
	json_object_object_add(o, "state", json_object_new_string(svcfs_info_state(i)));
	json_object_object_add(o, "pid",
	                       svcfs_info_pid(i) ? json_object_new_int(svcfs_info_pid(i)) : NULL);
	json_object_object_add(
	    o, "uid",
	    svcfs_info_uid(i) != (uid_t)-1 ? json_object_new_int64(svcfs_info_uid(i)) : NULL);
	json_object_object_add(
	    o, "gid",
	    svcfs_info_gid(i) != (gid_t)-1 ? json_object_new_int64(svcfs_info_gid(i)) : NULL);
	json_object_object_add(
	    o, "since", *svcfs_info_since(i) ? json_object_new_string(svcfs_info_since(i)) : NULL);
	json_object_object_add(o, "socket", json_object_new_string(svcfs_info_socket(i)));
	json_object_object_add(o, "meta", json_object_get(svcfs_info_meta(i)));
	return o;
}

static void put_json_line(json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
	                                           JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
}

static const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd *pw = uid == (uid_t)-1 ? NULL : getpwuid(uid);

	if (uid == (uid_t)-1)
		snprintf(buf, size, "-");
	else if (pw)
		snprintf(buf, size, "%s", pw->pw_name);
	else
		snprintf(buf, size, "%u", (unsigned)uid);
	return buf;
}

/* ---- ls ---- */

static int cmd_ls(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	bool lng = false, json = false;
	svcfs_info **list = NULL;
	size_t n = 0;
	svcfs_dir *d;
	int c, r;

	while ((c = getopt_long(argc, argv, "l", opts, NULL)) != -1) {
		if (c == 'l')
			lng = true;
		else if (c == 'j')
			json = true;
		else
			return usage_error("ls: bad option%s", "");
	}
	if (optind < argc)
		return usage_error("ls: unexpected argument '%s'", argv[optind]);
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	r = svcfs_list(d, &list, &n);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, svcfs_dir_path(d), strerror(-r));
		svcfs_close(d);
		return EXIT_FAILURE;
	}
	if (json) {
		json_object *a = json_object_new_array();
		for (size_t k = 0; k < n; k++)
			json_object_array_add(a, info_json(list[k], NULL));
		put_json_line(a);
		json_object_put(a);
	} else {
		if (lng && n)
			printf("%-11s %7s %-10s %-20s %s\n", "STATE", "PID", "USER", "SINCE",
			       "NAME");
		for (size_t k = 0; k < n; k++) {
			const svcfs_info *i = list[k];
			char user[64], pid[16];

			if (lng) {
				snprintf(pid, sizeof(pid), "%ld", (long)svcfs_info_pid(i));
				printf("%-11s %7s %-10s %-20s ", svcfs_info_state(i),
				       svcfs_info_pid(i) ? pid : "-",
				       user_name(svcfs_info_uid(i), user, sizeof(user)),
				       *svcfs_info_since(i) ? svcfs_info_since(i) : "-");
			}
			put_name(stdout, svcfs_info_name(i));
			putchar('\n');
		}
	}
	svcfs_list_free(list, n);
	svcfs_close(d);
	return fflush(stdout) == 0 ? 0 : EXIT_FAILURE;
}

/* ---- show ---- */

static void put_value(const char *key, json_object *v)
{
	printf("%s: %s\n", key,
	       json_object_is_type(v, json_type_string)
	           ? json_object_get_string(v)
	           : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
	                                                   JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int cmd_show(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	bool json = false;
	svcfs_info *i = NULL;
	svcfs_dir *d;
	char buf[64];
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else
			return usage_error("show: bad option%s", "");
	}
	if (optind + 1 != argc)
		return usage_error("show: %s", optind == argc ? "NAME missing" : "one NAME only");
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	r = svcfs_lookup(d, argv[optind], &i);
	if (r < 0) {
		service_error(argv[optind], r);
		svcfs_close(d);
		return EXIT_FAILURE;
	}
	if (json) {
		json_object *o = info_json(i, NULL);
		put_json_line(o);
		json_object_put(o);
	} else {
		printf("name: ");
		put_name(stdout, svcfs_info_name(i));
		printf("\nstate: %s\n", svcfs_info_state(i));
		if (svcfs_info_pid(i))
			printf("pid: %ld\n", (long)svcfs_info_pid(i));
		if (svcfs_info_uid(i) != (uid_t)-1)
			printf("uid: %u (%s)\n", (unsigned)svcfs_info_uid(i),
			       user_name(svcfs_info_uid(i), buf, sizeof(buf)));
		if (svcfs_info_gid(i) != (gid_t)-1)
			printf("gid: %u\n", (unsigned)svcfs_info_gid(i));
		if (*svcfs_info_since(i))
			printf("since: %s\n", svcfs_info_since(i));
		if (*svcfs_info_socket(i))
			printf("socket: %s\n", svcfs_info_socket(i));
		json_object_object_foreach(svcfs_info_meta(i), key, val) put_value(key, val);
	}
	svcfs_info_free(i);
	svcfs_close(d);
	return fflush(stdout) == 0 ? 0 : EXIT_FAILURE;
}

/* ---- watch ---- */

static int cmd_watch(int argc, char **argv)
{
	static const char *const names[] = {"", "appeared", "vanished", "changed"};
	static const struct option opts[] = {
	    {"json", no_argument, NULL, 'j'}, {"existing", no_argument, NULL, 'e'}, {0}};
	bool json = false;
	unsigned flags = 0;
	svcfs_watch *w = NULL;
	svcfs_dir *d;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else if (c == 'e')
			flags |= SVCFS_WATCH_EXISTING;
		else
			return usage_error("watch: bad option%s", "");
	}
	if (optind < argc)
		return usage_error("watch: unexpected argument '%s'", argv[optind]);
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	r = svcfs_watch_new(d, flags, &w);
	if (r < 0) {
		fprintf(stderr, "%s: cannot watch %s: %s\n", prog, svcfs_dir_path(d), strerror(-r));
		svcfs_close(d);
		return EXIT_FAILURE;
	}
	for (;;) {
		struct pollfd p = {.fd = svcfs_watch_fd(w), .events = POLLIN};
		struct svcfs_event ev;

		while ((r = svcfs_watch_next(w, &ev)) > 0) {
			svcfs_info *i = NULL;

			if (json) {
				json_object *o;
				if (ev.type != SVCFS_EVENT_VANISHED &&
				    svcfs_lookup(d, ev.name, &i) == 0) {
					o = info_json(i, names[ev.type]);
				} else {
					o = json_object_new_object();
					json_object_object_add(
					    o, "event", json_object_new_string(names[ev.type]));
					json_object_object_add(o, "name",
					                       json_object_new_string(ev.name));
				}
				put_json_line(o);
				json_object_put(o);
				svcfs_info_free(i);
			} else {
				printf("%s ", names[ev.type]);
				put_name(stdout, ev.name);
				putchar('\n');
			}
			if (fflush(stdout) != 0) { /* the reader went away */
				r = 0;
				goto out;
			}
		}
		if (r < 0) {
			fprintf(stderr, "%s: watching %s: %s\n", prog, svcfs_dir_path(d),
			        strerror(-r));
			break;
		}
		if (poll(&p, 1, -1) < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
	}
out:
	svcfs_watch_free(w);
	svcfs_close(d);
	return r < 0 ? EXIT_FAILURE : 0;
}

/* ---- wait ---- */

static int cmd_wait(int argc, char **argv)
{
	static const struct option opts[] = {{"timeout", required_argument, NULL, 't'}, {0}};
	int timeout_ms = -1, c, r = 0;
	struct timespec start, now;
	svcfs_dir *d;

	while ((c = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
		if (c == 't' && parse_timeout(optarg, &timeout_ms) == 0)
			continue;
		return c == 't' ? usage_error("wait: bad --timeout '%s' (seconds)", optarg)
		                : usage_error("wait: bad option%s", "");
	}
	if (optind == argc)
		return usage_error("wait: NAME missing%s", "");
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (int k = optind; k < argc && r == 0; k++) {
		int left = timeout_ms;

		if (timeout_ms >= 0) {
			long spent;
			clock_gettime(CLOCK_MONOTONIC, &now);
			spent = (now.tv_sec - start.tv_sec) * 1000 +
			        (now.tv_nsec - start.tv_nsec) / 1000000;
			left = spent >= timeout_ms ? 0 : timeout_ms - (int)spent;
		}
		r = svcfs_wait(d, argv[k], left, NULL);
		if (r == -ETIMEDOUT) {
			fprintf(stderr, "%s: timed out waiting for ", prog);
			put_name(stderr, argv[k]);
			fputc('\n', stderr);
		} else if (r < 0) {
			service_error(argv[k], r);
		}
	}
	svcfs_close(d);
	return r < 0 ? EXIT_FAILURE : 0;
}

/* ---- connect ---- */

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * stdin -> socket, socket -> stdout until the service closes. At the end of
 * stdin a stream is shut down for writing (the service sees EOF) and the
 * relay goes on until the service closes too; a packet socket keeps one
 * message per read.
 */
static int relay(int sock)
{
	char *buf = malloc(RELAY_BUF);
	bool in_open = true;
	int type = SOCK_STREAM, r = 0;
	socklen_t tl = sizeof(type);

	if (!buf)
		return -ENOMEM;
	getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &tl);
	for (;;) {
		struct pollfd p[2] = {{.fd = sock, .events = POLLIN},
		                      {.fd = in_open ? STDIN_FILENO : -1, .events = POLLIN}};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[0].revents) {
			n = recv(sock, buf, RELAY_BUF, 0);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0) {
				r = -errno;
				break;
			}
			if (n == 0 && type != SOCK_DGRAM)
				break; /* the service closed */
			if ((r = write_all(STDOUT_FILENO, buf, (size_t)n)) < 0)
				break;
		}
		if (in_open && p[1].revents) {
			n = read(STDIN_FILENO, buf, RELAY_BUF);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n < 0) {
				r = -errno;
				break;
			}
			if (n == 0) {
				in_open = false;
				if (type == SOCK_DGRAM)
					break; /* nothing more to send, and no end to wait for */
				shutdown(sock, SHUT_WR);
				continue;
			}
			if (type == SOCK_STREAM) {
				r = write_all(sock, buf, (size_t)n);
			} else if (send(sock, buf, (size_t)n, MSG_NOSIGNAL) < 0) {
				r = -errno;
			}
			if (r < 0)
				break;
		}
	}
	free(buf);
	return r;
}

static int cmd_connect(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"timeout", required_argument, NULL, 't'}, {"wait", no_argument, NULL, 'w'}, {0}};
	int timeout_ms = -1, c, fd, r;
	unsigned flags = 0;
	svcfs_dir *d;

	while ((c = getopt_long(argc, argv, "t:w", opts, NULL)) != -1) {
		if (c == 't' && parse_timeout(optarg, &timeout_ms) == 0)
			continue;
		if (c == 'w') {
			flags |= SVCFS_CONNECT_WAIT;
			continue;
		}
		return c == 't' ? usage_error("connect: bad --timeout '%s' (seconds)", optarg)
		                : usage_error("connect: bad option%s", "");
	}
	if (optind + 1 != argc)
		return usage_error("connect: %s",
		                   optind == argc ? "NAME missing" : "one NAME only");
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	fd = svcfs_connect(d, argv[optind], timeout_ms, flags);
	svcfs_close(d);
	if (fd < 0) {
		service_error(argv[optind], fd);
		return EXIT_FAILURE;
	}
	r = relay(fd);
	close(fd);
	if (r < 0 && r != -EPIPE) {
		fprintf(stderr, "%s: %s: %s\n", prog, argv[optind], strerror(-r));
		return EXIT_FAILURE;
	}
	return 0;
}

/* ---- register ---- */

static int add_meta(json_object *meta, const char *arg, bool is_json)
{
	const char *eq = strchr(arg, '=');
	json_object *v;
	char *key;

	if (!eq || eq == arg)
		return -EINVAL;
	if (is_json) {
		/* the whole text, its NUL included so that a number ends, must be one value */
		size_t len = strlen(eq + 1);
		json_tokener *tok = json_tokener_new();
		enum json_tokener_error err = json_tokener_error_parse_eof;

		v = NULL;
		if (tok) {
			v = json_tokener_parse_ex(tok, eq + 1, (int)len + 1);
			err = json_tokener_get_error(tok);
			if (err == json_tokener_success && json_tokener_get_parse_end(tok) < len)
				err = json_tokener_error_parse_unexpected;
			json_tokener_free(tok);
		}
		if (err != json_tokener_success) {
			json_object_put(v);
			return -EINVAL;
		}
	} else {
		v = json_object_new_string(eq + 1);
	}
	key = strndup(arg, (size_t)(eq - arg));
	if (!key) {
		json_object_put(v);
		return -ENOMEM;
	}
	json_object_object_add(meta, key, v);
	free(key);
	return 0;
}

/* Give fd FROM the number TO, open across exec. */
static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0) < 0 ? -errno : 0;
	return dup2(from, to) < 0 ? -errno : 0; /* dup2 leaves TO open across exec */
}

static int cmd_register(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"meta", required_argument, NULL, 'm'},    {"meta-json", required_argument, NULL, 'J'},
	    {"type", required_argument, NULL, 't'},    {"mode", required_argument, NULL, 'M'},
	    {"backlog", required_argument, NULL, 'b'}, {0}};
	struct svcfs_register_opts o = {.dir = dir_arg};
	json_object *meta = json_object_new_object();
	svcfs_service *s = NULL;
	const char *name, *base;
	char pid[32];
	int c, r, lockfd, status = EXIT_USAGE;

	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		char *end;
		long v;

		switch (c) {
		case 'm':
		case 'J':
			if (add_meta(meta, optarg, c == 'J') < 0) {
				status = usage_error(
				    c == 'm' ? "register: bad --meta '%s' (KEY=VALUE)"
				             : "register: bad --meta-json '%s' (KEY=JSON)",
				    optarg);
				goto out;
			}
			break;
		case 't':
			o.type = strcmp(optarg, "stream") == 0      ? SOCK_STREAM
			         : strcmp(optarg, "seqpacket") == 0 ? SOCK_SEQPACKET
			         : strcmp(optarg, "dgram") == 0     ? SOCK_DGRAM
			                                            : -1;
			if (o.type < 0) {
				status = usage_error(
				    "register: bad --type '%s' (stream, seqpacket or dgram)",
				    optarg);
				goto out;
			}
			break;
		case 'M':
			errno = 0;
			v = strtol(optarg, &end, 8);
			if (errno || end == optarg || *end || v <= 0 || v > 0777) {
				status = usage_error("register: bad --mode '%s' (octal, e.g. 0660)",
				                     optarg);
				goto out;
			}
			o.mode = (unsigned)v;
			if (v & 0002)
				o.flags |= SVCFS_REGISTER_ANY_MODE; /* asked for in so many words */
			break;
		case 'b':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > INT_MAX) {
				status = usage_error("register: bad --backlog '%s'", optarg);
				goto out;
			}
			o.backlog = (int)v;
			break;
		default:
			status = usage_error("register: bad option%s", "");
			goto out;
		}
	}
	if (optind >= argc) {
		status = usage_error("register: NAME missing%s", "");
		goto out;
	}
	name = argv[optind++];
	if (optind < argc && strcmp(argv[optind], "--") == 0)
		optind++;
	if (optind >= argc) {
		status = usage_error("register: CMD missing (register NAME -- CMD [ARG...])%s", "");
		goto out;
	}
	if (json_object_object_length(meta) > 0)
		o.meta = meta;

	r = svcfs_register(name, &o, &s);
	if (r < 0) {
		fprintf(stderr, "%s: cannot register ", prog);
		put_name(stderr, name);
		fprintf(stderr, ": %s\n",
		        r == -EADDRINUSE ? "the name is taken (already running)" : strerror(-r));
		status = EXIT_FAILURE;
		goto out;
	}
	/* the lock must not sit on fd 3, where the socket goes */
	lockfd = svcfs_service_lock_fd(s);
	if (lockfd == 3 || lockfd < 0) {
		lockfd = fcntl(lockfd, F_DUPFD, 4);
		if (lockfd < 0) {
			r = -errno;
			goto fail;
		}
	} else if ((r = move_fd(lockfd, lockfd)) < 0) {
		goto fail;
	}
	if ((r = move_fd(svcfs_service_fd(s), 3)) < 0)
		goto fail;
	base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	if (setenv("LISTEN_FDS", "1", 1) < 0 || setenv("LISTEN_PID", pid, 1) < 0 ||
	    setenv("LISTEN_FDNAMES", base, 1) < 0 ||
	    setenv("SVCFS_SOCKET", svcfs_service_path(s), 1) < 0) {
		r = -errno;
		goto fail;
	}
	json_object_put(meta);
	meta = NULL;
	execvp(argv[optind], argv + optind);
	r = -errno;
	fprintf(stderr, "%s: cannot run %s: %s\n", prog, argv[optind], strerror(-r));
	svcfs_unregister(s);
	return r == -ENOENT ? 127 : 126; /* as a shell says it */
fail:
	fprintf(stderr, "%s: cannot hand the socket over: %s\n", prog, strerror(-r));
	svcfs_unregister(s);
	status = EXIT_FAILURE;
out:
	json_object_put(meta);
	return status;
}

/* ---- status ---- */

static uint64_t counter(json_object *st, const char *key)
{
	json_object *c, *v;

	if (!json_object_object_get_ex(st, "counters", &c) ||
	    !json_object_object_get_ex(c, key, &v))
		return 0;
	return (uint64_t)json_object_get_int64(v);
}

static const char *field(json_object *st, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(st, key, &v) ? json_object_get_string(v) : "?";
}

/*
 * Several hosts (svcfs -o etcd): the publisher's and the mirror's state,
 * from the status's "etcd" object (null: the daemon could not tell).
 */
static void put_etcd(json_object *etcd)
{
	json_object *lease;
	char id[32];

	if (!json_object_is_type(etcd, json_type_object)) {
		printf("etcd: state not available\n");
		return;
	}
	if (json_object_object_get_ex(etcd, "lease", &lease) && json_object_get_int64(lease) > 0)
		snprintf(id, sizeof(id), "%" PRIx64, (uint64_t)json_object_get_int64(lease));
	else
		snprintf(id, sizeof(id), "none");
	/* the lease in hex, as etcdctl shows it */
	printf("etcd: host %s via %s; lease %s, TTL %ss\n", field(etcd, "host"),
	       field(etcd, "endpoints"), id, field(etcd, "ttl"));
	printf("etcd publisher: %s, %s services published; %s puts, %s deletes, %s leases "
	       "granted, %s resyncs\n",
	       field(etcd, "publishing"), field(etcd, "published"), field(etcd, "puts"),
	       field(etcd, "deletes"), field(etcd, "leases"), field(etcd, "resyncs"));
	printf("etcd mirror: %s at revision %s, %s remote services shown, %s compactions "
	       "met\n",
	       field(etcd, "mirror"), field(etcd, "revision"), field(etcd, "remote_services"),
	       field(etcd, "compactions"));
}

static int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {{"json", no_argument, NULL, 'j'}, {0}};
	json_object *st = NULL, *up, *kept, *etcd;
	bool json = false;
	svcfs_dir *d;
	long secs;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'j')
			json = true;
		else
			return usage_error("status: bad option%s", "");
	}
	if (optind < argc)
		return usage_error("status: unexpected argument '%s'", argv[optind]);
	if (open_dir(&d) < 0)
		return EXIT_FAILURE;
	r = svcfs_dir_status(d, &st);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, svcfs_dir_path(d),
		        r == -ENOTSUP ? "not an svcfs mount" : strerror(-r));
		svcfs_close(d);
		return EXIT_FAILURE;
	}
	if (json) {
		put_json_line(st);
	} else {
		secs = json_object_object_get_ex(st, "uptime", &up)
		           ? (long)json_object_get_double(up)
		           : 0;
		printf("svcfs %s, pid %s, up %ldd %02ld:%02ld:%02ld (since %s)\n",
		       field(st, "version"), field(st, "pid"), secs / 86400, secs / 3600 % 24,
		       secs / 60 % 60, secs % 60, field(st, "started"));
		printf("%s on %s: watched by %s, liveness from %s, probe interval %ss\n",
		       field(st, "backing"), field(st, "mountpoint"), field(st, "watch"),
		       field(st, "liveness"), field(st, "probe_interval"));
		printf("services: %s live; %" PRIu64 " appeared, %" PRIu64 " vanished, %" PRIu64
		       " owner exits seen\n",
		       field(st, "services"), counter(st, "appeared"), counter(st, "vanished"),
		       counter(st, "owner_exits"));
		printf("probes: %" PRIu64 " sock_diag dumps, %" PRIu64 " queries, %" PRIu64
		       " connects, %" PRIu64 " health checks, %" PRIu64 " rescans\n",
		       counter(st, "dumps"), counter(st, "queries"), counter(st, "connects"),
		       counter(st, "health_checks"), counter(st, "rescans"));
		printf("events: %" PRIu64 " inotify events made on the mount\n",
		       counter(st, "events"));
		if (json_object_object_get_ex(st, "kept", &kept))
			printf("kept for the kernel: %s directories, %s old versions of "
			       ".services.json/.targets.json\n",
			       field(kept, "dirs"), field(kept, "aggregate_versions"));
		if (json_object_object_get_ex(st, "etcd", &etcd))
			put_etcd(etcd);
	}
	json_object_put(st);
	svcfs_close(d);
	return fflush(stdout) == 0 ? 0 : EXIT_FAILURE;
}

/* ---- main ---- */

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {{"ls", cmd_ls},        {"show", cmd_show},       {"watch", cmd_watch},
	            {"wait", cmd_wait},    {"connect", cmd_connect}, {"register", cmd_register},
	            {"status", cmd_status}};
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {0}};
	int c;

	while ((c = getopt_long(argc, argv, "+d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("svcfsctl %s\n", svcfs_version());
			return 0;
		default:
			fprintf(stderr, "Try '%s --help'.\n", prog);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("COMMAND missing%s", "");
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(argv[optind], cmds[k].name) == 0) {
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;

			optind = 0; /* getopt starts over: the command's own options */
			return cmds[k].fn(sub_argc, sub_argv);
		}
	}
	return usage_error("unknown command '%s'", argv[optind]);
}
