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

const struct mnt_setting mnt_settings[] = {
	{"cache_size", "a size of at least 1M, e.g. 512M or 2G", "the chunk cache's budget"},
	{"log_level", "error, warn, info or debug", "the daemon's log level"},
	{"readahead", "a number of chunks from 0 to 1024 (0: off)",
	 "chunks decompressed ahead of a sequential reader"},
	{"compression_level", "a zstd level from 1 to 19",
	 "the level of the objects compaction writes next (writable mounts)"},
	{"compaction", "on or off", "pause or resume background compaction (writable mounts)"},
};
const unsigned mnt_nsettings = sizeof(mnt_settings) / sizeof(mnt_settings[0]);

const struct mnt_setting *mnt_setting_find(const char *name)
{
	for (unsigned i = 0; i < mnt_nsettings; i++)
		if (!strcmp(mnt_settings[i].name, name))
			return &mnt_settings[i];
	return NULL;
}

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
