/*
 * locks — see locks.h. A /proc/locks line reads
 *   "1: FLOCK  ADVISORY  WRITE 1234 fe:00:10952835 0 EOF"
 * and a waiter's "1: -> FLOCK ..." (skipped: it holds nothing). The device
 * is MAJOR:MINOR in hex, the inode in decimal.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "locks.h"

static int cmp_id(const void *a, const void *b)
{
	const struct lock_id *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

int locks_load(struct locks *l)
{
	char line[256];
	FILE *f = fopen("/proc/locks", "re");

	l->n = 0;
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		long pid;
		char *p = strchr(line, ':'), *q;

		if (!p || strstr(line, "->"))
			continue;
		/* the field after the pid: MAJ:MIN:INO */
		p = strchr(p + 1, ':');
		while (p && p > line && p[-1] != ' ')
			p--;
		if (!p || sscanf(p, "%x:%x:%llu", &maj, &min, &ino) != 3)
			continue;
		/* the pid is the field before it */
		for (q = p - 1; q > line && q[-1] >= '0' && q[-1] <= '9'; q--)
			;
		pid = strtol(q, NULL, 10);
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct lock_id *ids = realloc(l->ids, cap * sizeof(*ids));
			if (!ids) {
				fclose(f);
				return -ENOMEM;
			}
			l->ids = ids;
			l->cap = cap;
		}
		l->ids[l->n++] = (struct lock_id){((uint64_t)maj << 32) | min, ino, (pid_t)pid};
	}
	fclose(f);
	if (l->n) /* qsort must not be given a NULL base, even for nothing */
		qsort(l->ids, l->n, sizeof(*l->ids), cmp_id);
	return 0;
}

bool locks_held(const struct locks *l, dev_t dev, ino_t ino)
{
	struct lock_id key = {((uint64_t)major(dev) << 32) | minor(dev), (uint64_t)ino, 0};

	return l->n && bsearch(&key, l->ids, l->n, sizeof(*l->ids), cmp_id) != NULL;
}

pid_t locks_holder(const struct locks *l, dev_t dev, ino_t ino)
{
	struct lock_id key = {((uint64_t)major(dev) << 32) | minor(dev), (uint64_t)ino, 0};
	const struct lock_id *hit;

	hit = l->n ? bsearch(&key, l->ids, l->n, sizeof(*l->ids), cmp_id) : NULL;
	return hit ? hit->pid : 0;
}

void locks_free(struct locks *l)
{
	free(l->ids);
	*l = (struct locks){0};
}
