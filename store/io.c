/* io.c - file I/O helpers the store's files share.
 *
 * Plain POSIX calls with the retries every caller needs (EINTR, short counts);
 * they know nothing of the format.
 */
#include <errno.h>
#include <unistd.h>

#include "store.h"

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
