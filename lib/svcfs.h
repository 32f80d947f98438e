/*
 * libsvcfs — find and register local services through svcfs.
 *
 * Public API. Every function returns a negative errno on failure unless its
 * comment says otherwise; out-parameters named ret_* are written only on
 * success. The library never prints and never exits.
 */
#ifndef SVCFS_H
#define SVCFS_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library's version, "MAJOR.MINOR.PATCH". Never NULL. */
const char *svcfs_version(void);

#ifdef __cplusplus
}
#endif
#endif /* SVCFS_H */
