/* log — see log.h. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static bool use_syslog;
static bool show_debug;

void log_init(bool to_syslog, bool debug)
{
	use_syslog = to_syslog;
	show_debug = debug;
	if (to_syslog)
		openlog("svcfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	int n;

	if (prio == LOG_DEBUG && !show_debug)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (use_syslog) {
		syslog(prio, "%s", line);
		return;
	}
	/* one write per line so that threads do not interleave */
	{
		char out[1100];
		int m = snprintf(out, sizeof(out), "svcfs: %s\n", line);
		if (m > 0) {
			ssize_t w = write(STDERR_FILENO, out, (size_t)m < sizeof(out) ? (size_t)m : sizeof(out) - 1);
			(void)w;
		}
	}
}
