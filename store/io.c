/* io.c - file I/O helpers the store's files share.
 *
 * Plain POSIX calls with the retries every caller needs (EINTR, short counts);
 * they know nothing of the format.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "store_internal.h"

ssize_t store_pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break; /* end of file */
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int store_readlink_at(int dirfd, const char *name, off_t size, char **out)
{
	size_t cap = size > 0 && size < PATH_MAX ? (size_t)size + 1 : PATH_MAX;
	char *buf = malloc(cap);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	n = readlinkat(dirfd, name, buf, cap);
	if (n < 0) {
		free(buf);
		return -errno;
	}
	if ((size_t)n >= cap) { /* it grew since the lstat, or is longer than PATH_MAX */
		free(buf);
		return -ENAMETOOLONG;
	}
	buf[n] = '\0';
	*out = buf;
	return 0;
}
