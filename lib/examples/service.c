/*
 * svcfs-example-service — a service registered the svcfs way.
 *
 *   svcfs-example-service [-d BACKING] NAME [KEY=VALUE...]
 *
 * Registers NAME (lock file, socket, sidecar with the KEY=VALUE pairs),
 * greets every client with "hello from NAME\n", and on SIGTERM or SIGINT
 * unregisters and exits 0. Prints its socket's path once registered.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <svcfs.h>

int main(int argc, char **argv)
{
	struct svcfs_register_opts opts = {0};
	svcfs_service *svc = NULL;
	json_object *meta;
	const char *name;
	sigset_t mask;
	int sfd, r, argi = 1;

	if (argc > 2 && strcmp(argv[1], "-d") == 0) {
		opts.dir = argv[2];
		argi = 3;
	}
	if (argi >= argc) {
		fprintf(stderr, "usage: %s [-d BACKING] NAME [KEY=VALUE...]\n", argv[0]);
		return 2;
	}
	name = argv[argi++];
	meta = json_object_new_object();
	for (; argi < argc; argi++) {
		char *eq = strchr(argv[argi], '=');
		if (!eq || eq == argv[argi]) {
			fprintf(stderr, "%s: %s: expected KEY=VALUE\n", argv[0], argv[argi]);
			return 2;
		}
		*eq = '\0';
		json_object_object_add(meta, argv[argi], json_object_new_string(eq + 1));
	}
	opts.meta = meta;

	/* signals through a signalfd: the loop below unregisters in order */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	r = svcfs_register(name, &opts, &svc);
	json_object_put(meta);
	if (r < 0) {
		fprintf(stderr, "%s: cannot register %s: %s\n", argv[0], name, strerror(-r));
		return 1;
	}
	printf("%s\n", svcfs_service_path(svc));
	fflush(stdout);

	for (;;) {
		struct pollfd p[2] = {{.fd = svcfs_service_fd(svc), .events = POLLIN},
		                      {.fd = sfd, .events = POLLIN}};
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents)
			break;
		if (p[0].revents) {
			int c = accept4(svcfs_service_fd(svc), NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0) {
				char msg[300];
				int n = snprintf(msg, sizeof(msg), "hello from %s\n", name);
				/* a client that left already must not kill us with SIGPIPE */
				send(c, msg, (size_t)n, MSG_NOSIGNAL);
				close(c);
			}
		}
	}
	svcfs_unregister(svc);
	return 0;
}
