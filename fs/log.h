/*
 * log — one line per message, to stderr in the foreground and to syslog
 * once daemonized. Thread-safe (each line is written with one call).
 */
#ifndef SVCFS_LOG_H
#define SVCFS_LOG_H

#include <stdbool.h>
#include <syslog.h>

void log_init(bool to_syslog, bool debug);
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif /* SVCFS_LOG_H */
