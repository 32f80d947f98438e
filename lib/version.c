/* The library's identity. */
#include "svcfs.h"

const char *svcfs_version(void)
{
	return SVCFS_VERSION;
}
