/*
 * render — the text of a service directory (SPEC §4): its files, its
 * element of .services.json and of .targets.json, from what the engine
 * found and the service's metadata. Pure: no I/O, no locks.
 */
#ifndef SVCFS_RENDER_H
#define SVCFS_RENDER_H

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "view.h"

struct render_input {
	const char *name;
	const char *group;  /* "" at the top level, else "a/b" */
	const char *socket; /* absolute path of the socket file in BACKING; NULL remote */
	const char *host;   /* another host's service (SPEC §8): its name; NULL local */
	pid_t pid;	    /* owner of the listening socket; 0 unknown */
	uid_t uid;	    /* owner's credentials (file owner when pid unknown) */
	gid_t gid;
	const char *state; /* "alive", "busy", ... */
	time_t since;
	json_object *meta; /* sidecar merged with file-name tokens; may be NULL */
};

/* Files whose names belong to what svcfs found; sidecar keys never shadow them. */
bool render_reserved_name(const char *name);

struct render_output {
	struct view_file_spec *files;
	size_t nfiles;
	char *entry_json;
	char *target_json;
	char **storage; /* the strings the file specs point to */
	size_t nstorage;
};

/* Fill OUT (free it with render_output_free). Returns 0 or -ENOMEM. */
int render_service(const struct render_input *in, struct render_output *out);
void render_output_free(struct render_output *out);

/*
 * What this host publishes in etcd for a live service (SPEC §8): one JSON
 * object {host, name, group, endpoints, meta, state, since, pid, uid, gid},
 * endpoints as other hosts reach them (render_endpoints). NULL on ENOMEM.
 */
char *render_published(const struct render_input *in, const char *host, const char *address);

/*
 * The sidecar's endpoints (an object or array of port numbers and
 * "host:port" strings; else its "port") as seen from another host: a port N
 * and "localhost:N", "127.0.0.1:N", "[::1]:N", "0.0.0.0:N", "[::]:N" become
 * "ADDRESS:N"; other strings stay. NULL when there are none.
 */
json_object *render_endpoints(json_object *meta, const char *address);

/* A Prometheus label name: [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__". */
bool render_label_name_ok(const char *name);

/* RFC 3339 UTC ("2026-11-27T05:28:57Z") into BUF (at least 21 bytes). */
void render_time(time_t t, char *buf, size_t size);

#endif /* SVCFS_RENDER_H */
