/* setting.c - the client side of runtime settings: `faissfs set`.
 *
 * Opens MOUNTPOINT/.faissfs/NAME read-only and hands the value to the daemon
 * with the MNT_IOC_SET ioctl (control.c answers it).  A write would be the
 * natural interface, but the kernel refuses every write on a read-only mount
 * before the daemon sees it; an ioctl reaches the daemon, which checks the
 * caller's uid itself.
 */
#include "mount.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mnt_set(const char *mnt, const char *name, const char *value)
{
	struct mnt_set_arg arg;
	char *path = NULL;
	int fd, rc = 0;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))
		return -ENOENT;
	if (strlen(value) >= sizeof(arg.value))
		return -ENAMETOOLONG;
	memset(&arg, 0, sizeof(arg));
	memcpy(arg.value, value, strlen(value));
	if (asprintf(&path, "%s/.faissfs/%s", mnt, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, MNT_IOC_SET, &arg) < 0)
		rc = -errno;
	close(fd);
	return rc;
}
