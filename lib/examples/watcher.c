/*
 * svcfs-example-watcher — follow a directory of services.
 *
 *   svcfs-example-watcher [DIR]
 *
 * Opens DIR (default: the svcfs mount of svcfs_default_mount()), prints
 * every service there now, then one line per event as it happens:
 *   appeared NAME pid=PID state=STATE
 *   changed NAME pid=PID state=STATE
 *   vanished NAME
 * flushed per line, until SIGTERM/SIGINT.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <svcfs.h>

static void print(svcfs_dir *d, const char *what, const char *name)
{
	svcfs_info *info = NULL;

	if (svcfs_lookup(d, name, &info) == 0)
		printf("%s %s pid=%d state=%s\n", what, name, (int)svcfs_info_pid(info),
		       svcfs_info_state(info));
	else
		printf("%s %s\n", what, name); /* gone again already */
	svcfs_info_free(info);
}

int main(int argc, char **argv)
{
	static const char *const what[] = {"", "appeared", "vanished", "changed"};
	svcfs_watch *w = NULL;
	svcfs_dir *d = NULL;
	int r;

	r = svcfs_open(argc > 1 ? argv[1] : NULL, &d);
	if (r < 0) {
		fprintf(stderr, "%s: %s: %s\n", argv[0], argc > 1 ? argv[1] : "default mount",
		        strerror(-r));
		return 1;
	}
	r = svcfs_watch_new(d, SVCFS_WATCH_EXISTING, &w);
	if (r < 0) {
		fprintf(stderr, "%s: cannot watch %s: %s\n", argv[0], svcfs_dir_path(d),
		        strerror(-r));
		svcfs_close(d);
		return 1;
	}
	for (;;) {
		struct svcfs_event ev;
		struct pollfd p = {.fd = svcfs_watch_fd(w), .events = POLLIN};

		while ((r = svcfs_watch_next(w, &ev)) > 0) {
			if (ev.type == SVCFS_EVENT_VANISHED)
				printf("vanished %s\n", ev.name);
			else
				print(d, what[ev.type], ev.name);
			fflush(stdout);
		}
		if (r < 0) {
			fprintf(stderr, "%s: %s\n", argv[0], strerror(-r));
			break;
		}
		if (poll(&p, 1, -1) < 0 && errno != EINTR)
			break;
	}
	svcfs_watch_free(w);
	svcfs_close(d);
	return 1;
}
