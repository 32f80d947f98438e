/*
 * Pieces of libsvcfs shared with the daemon and the tools but not part of the
 * public ABI: the name rules and sidecar parsing of SPEC §2, and a small
 * growable text buffer for rendering JSON. No FUSE, no logging, no exit().
 */
#ifndef SVCFS_INTERNAL_H
#define SVCFS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <json-c/json.h>

/* ---- name rules (name.c) ---- */

/* Longest file name a backing directory (and the view) can hold. */
#define SVCFS_NAME_MAX 255

enum svcfs_suffix {
	SVCFS_SUFFIX_NONE = 0,
	SVCFS_SUFFIX_SOCK, /* NAME.sock: the socket */
	SVCFS_SUFFIX_JSON, /* NAME.json: metadata sidecar */
	SVCFS_SUFFIX_LOCK, /* NAME.lock: lock file */
	SVCFS_SUFFIX_PID,  /* NAME.pid:  PID file */
};

/* A name the daemon never looks at: empty, ".", "..", or starting with '.'. */
bool svcfs_name_hidden(const char *name);

/*
 * Split FILE into stem and known suffix. Returns the suffix kind and stores
 * the stem's length in *ret_stemlen (the whole length for SVCFS_SUFFIX_NONE).
 * A suffix with an empty stem (".sock") is no suffix.
 */
enum svcfs_suffix svcfs_name_split(const char *file, size_t *ret_stemlen);

/*
 * True if KEY (LEN bytes) may be a file name in a service directory: not
 * empty, at most SVCFS_NAME_MAX bytes, no '/', no NUL, no control character
 * (bytes < 0x20 and 0x7f), not starting with '.'.
 */
bool svcfs_name_safe_key(const char *key, size_t len);

/* Deepest group: BACKING/g1/.../g8/NAME.sock (SPEC §2). */
#define SVCFS_GROUP_DEPTH_MAX 8

/*
 * Check a service name as the library's API takes it: "NAME" or
 * "GROUP/.../NAME", at most SVCFS_GROUP_DEPTH_MAX groups, each component
 * 1-255 bytes without '/' and not hidden. STRICT (names a service is
 * registered under) also refuses control characters, as for safe keys
 * (above); without it any name svcfs shows is taken (a socket file may be
 * called "a\nb"), so that every listed name can be looked up. Returns 0 (and
 * the number of components in *ret_ncomp, which may be NULL) or -EINVAL.
 */
int svcfs_name_path_check(const char *name, bool strict, size_t *ret_ncomp);

/*
 * The socket file of service NAME in backing directory DIRFD (SPEC §2):
 * NAME.sock, else NAME itself (unless it ends in .sock), whichever is a
 * socket, following a symlink. *ret_file is BUF or NAME, *ret_st the
 * socket's stat. -ENOENT when neither is a socket.
 */
int svcfs_backing_socket(int dirfd, const char *name, char buf[SVCFS_NAME_MAX + 1],
                         const char **ret_file, struct stat *ret_st);

/* Undo /proc/self/mountinfo's octal escapes (\040 for a space ...) in place. */
void svcfs_unescape_octal(char *s);

/* File-name tokens of SPEC §2: "-pidN" and "-portN" (0 when absent). */
struct svcfs_tokens {
	long pid;
	long port;
};

/*
 * Read the tokens of a service name. A token is "pid" or "port" followed by
 * decimal digits, delimited by '-', '_', '.' or the ends of the name; the
 * first valid one of each kind wins; out-of-range values are ignored.
 */
void svcfs_name_tokens(const char *name, struct svcfs_tokens *ret);

/* ---- sidecars (sidecar.c) ---- */

#define SVCFS_SIDECAR_MAX      (64 * 1024) /* bytes in NAME.json */
#define SVCFS_SIDECAR_DEPTH    16          /* nesting of arrays/objects */
#define SVCFS_SIDECAR_KEYS_MAX 256         /* top-level keys */
#define SVCFS_PIDFILE_MAX      32          /* bytes in NAME.pid */

/*
 * Parse a sidecar: exactly one JSON object (strict JSON, valid UTF-8),
 * surrounding white space allowed, within the limits above.
 * On success *ret_obj holds a new reference. On failure returns -EINVAL
 * (malformed / not an object), -EFBIG (too large) or -E2BIG (too many keys,
 * too deep) and points *ret_why at a static reason.
 */
int svcfs_sidecar_parse(const char *buf, size_t len, json_object **ret_obj, const char **ret_why);

/*
 * Read and parse sidecar NAME in directory DIRFD without following a symlink
 * and without blocking (a FIFO is refused). It is trusted only when owned by
 * TRUSTED_UID or by root. Errors: -ENOENT (no such file, the common case),
 * -EPERM (untrusted owner), -EINVAL (not a regular file, malformed), -EFBIG,
 * -E2BIG, or another -errno from the system; *ret_why names the reason.
 * *ret_st (may be NULL) receives the file's stat on success.
 */
int svcfs_sidecar_read(int dirfd, const char *name, uid_t trusted_uid, json_object **ret_obj,
                       struct stat *ret_st, const char **ret_why);

/*
 * Merge file-name TOKENS into sidecar object META (may be NULL): the port
 * token sets "port" where the sidecar has none. (The pid token is an owner
 * hint for the daemon, not metadata.) Returns a new reference to
 * an object (a new empty one when both are empty), or NULL on ENOMEM.
 */
json_object *svcfs_meta_merge(json_object *meta, const struct svcfs_tokens *tokens);

/*
 * Length of the valid UTF-8 sequence at S (LEFT bytes available), or 0 if
 * it is not valid UTF-8 (overlong forms, surrogates and code points past
 * U+10FFFF are invalid).
 */
size_t svcfs_utf8_seq_len(const unsigned char *s, size_t left);

/* ---- growable text buffer (buf.c) ---- */

struct svcfs_buf {
	char *data; /* NUL-terminated when non-NULL */
	size_t len;
	size_t cap;
	bool failed; /* an allocation failed: contents are truncated */
};

void svcfs_buf_init(struct svcfs_buf *b);
void svcfs_buf_free(struct svcfs_buf *b);
void svcfs_buf_reset(struct svcfs_buf *b);
void svcfs_buf_add(struct svcfs_buf *b, const char *s, size_t len);
void svcfs_buf_adds(struct svcfs_buf *b, const char *s);
void svcfs_buf_addf(struct svcfs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append S (LEN bytes) as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
void svcfs_buf_add_json_string(struct svcfs_buf *b, const char *s, size_t len);
/* Hand the contents over (caller frees); the buffer is left empty. NULL if failed. */
char *svcfs_buf_steal(struct svcfs_buf *b, size_t *ret_len);

#endif /* SVCFS_INTERNAL_H */
