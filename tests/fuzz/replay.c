/*
 * A main() for a fuzz target where libFuzzer is not at hand (gcc, the
 * normal and sanitizer builds): runs LLVMFuzzerTestOneInput once on every
 * file named, or in a directory named, on the command line. ctest runs it
 * on the committed seed corpus, so every input that once broke something
 * is tried again by every build. A broken invariant aborts (see fuzz.h);
 * the last "replay: FILE" line names the input.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* Read all of PATH; NULL (errno set) on error. */
static uint8_t *slurp(const char *path, size_t *ret_len)
{
	size_t len = 0, cap = 4096;
	uint8_t *buf = malloc(cap), *p;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf)
		goto fail;
	for (;;) {
		ssize_t n;
		if (len == cap) {
			p = realloc(buf, cap * 2);
			if (!p)
				goto fail;
			buf = p;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*ret_len = len;
	return buf;
fail:
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int run_file(const char *path)
{
	size_t len;
	uint8_t *data;

	fprintf(stderr, "replay: %s\n", path);
	data = slurp(path, &len);
	if (!data) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int cmp_names(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int hidden(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	int files = 0, failed = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int a = 1; a < argc; a++) {
		struct dirent **names;
		struct stat st;
		int n;

		if (stat(argv[a], &st) < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[a], strerror(errno));
			failed++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			failed += run_file(argv[a]) < 0;
			files++;
			continue;
		}
		n = scandir(argv[a], &names, hidden, cmp_names);
		if (n < 0) {
			fprintf(stderr, "replay: %s: %s\n", argv[a], strerror(errno));
			failed++;
			continue;
		}
		for (int i = 0; i < n; i++) {
			char path[4096];
			snprintf(path, sizeof(path), "%s/%s", argv[a], names[i]->d_name);
			failed += run_file(path) < 0;
			files++;
			free(names[i]);
		}
		free(names);
	}
	printf("replay: %d inputs, %d unreadable\n", files, failed);
	return failed || files == 0 ? 1 : 0;
}
