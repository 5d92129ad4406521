/* mount.h - `faissfs mount STORE MOUNTPOINT [options]`: the FUSE daemon.
 *
 * The one public header of fuse/.  Everything else in fuse/ is private to it.
 * The daemon links store/ and cache/, never FAISS.
 */
#ifndef FAISSFS_FUSE_MOUNT_H
#define FAISSFS_FUSE_MOUNT_H

/* Runs the mount command; argv[0] is "mount".  Parses options, opens the store,
 * mounts, daemonises unless -f, serves until unmounted.
 * Returns the process exit code: 0 after a clean unmount, 1 on a runtime error,
 * 2 on a usage error (each with a message on stderr). */
int mnt_main(int argc, char *argv[]);

/* Prints the mount options for --help. */
void mnt_usage(void);

#endif
