/* mount.h - `faissfs mount STORE MOUNTPOINT [options]`: the FUSE daemon.
 *
 * The one public header of fuse/.  Everything else in fuse/ is private to it.
 * The daemon links store/ and cache/, never FAISS.
 */
#ifndef FAISSFS_FUSE_MOUNT_H
#define FAISSFS_FUSE_MOUNT_H

#include <sys/ioctl.h>

/* Runs the mount command; argv[0] is "mount".  Parses options, opens the store,
 * mounts, daemonises unless -f, serves until unmounted.
 * Returns the process exit code: 0 after a clean unmount, 1 on a runtime error,
 * 2 on a usage error (each with a message on stderr). */
int mnt_main(int argc, char *argv[]);

/* `faissfs compact`: converts every plain file of the store at @path into an
 * object, on @threads threads (0: one per CPU), with the store's daemon lock
 * held.  Prints a summary on stdout and every problem on stderr.  Returns 0, or
 * -errno (-EBUSY: mounted) when it could not run or a file failed. */
int mnt_compact_store(const char *path, unsigned threads);

/* Prints the mount options for --help. */
void mnt_usage(void);

/* --- runtime settings of a running mount (faissfs set) ------------------------- */

#define MNT_SET_VALUE_MAX 64

/* The argument of MNT_IOC_SET: a NUL-terminated value. */
struct mnt_set_arg {
	char value[MNT_SET_VALUE_MAX];
};

/* ioctl on an open MOUNTPOINT/.faissfs/NAME file: sets that setting.  An ioctl,
 * not a write, because the mount is read-only to the kernel. */
#define MNT_IOC_SET _IOW('F', 0x53, struct mnt_set_arg)

/* The runtime settings, in the order `faissfs set MOUNT` lists them: the one
 * table the daemon's checks, the tool's help and its messages come from. */
struct mnt_setting {
	const char *name;    /* a file of MOUNTPOINT/.faissfs/ */
	const char *accepts; /* the values accepted, for people */
	const char *what;    /* what it sets */
};
extern const struct mnt_setting mnt_settings[];
extern const unsigned mnt_nsettings;

/* The setting called @name, or NULL. */
const struct mnt_setting *mnt_setting_find(const char *name);

/* Sets @name (a file of MOUNTPOINT/.faissfs/) of the mount at @mnt to @value; it
 * takes effect at once.  Returns 0; -EINVAL a bad value (the daemon logs what it
 * accepts); -EACCES not the mount's owner (or root); -ENOENT no such setting or
 * not a faissfs mount; -EPERM a read-only file; -ENOTTY not a faissfs mount;
 * -ENAMETOOLONG a value of MNT_SET_VALUE_MAX bytes or more; -errno. */
int mnt_set(const char *mnt, const char *name, const char *value);

#endif
