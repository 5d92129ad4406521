/* superblock.c - creating and opening a store: params, the superblock, tmp/.
 *
 * The superblock (format.h, struct fmt_superblock) is the only file a store needs;
 * it is written to a temp name, fsynced and renamed into place, so a crash leaves
 * either no store or a whole one.  Opening reads it and nothing else.  After
 * creation it is rewritten only to add a feature bit (store_feature_links()), the
 * same way, so a crash leaves the old superblock or the new one.
 */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/log.h"

#define LEVEL_MIN 1
#define LEVEL_MAX 19
/* Temp objects older than this are left over from a crash and removed on open. */
#define TMP_STALE_SEC (24 * 3600)

void store_params_default(struct store_params *p)
{
	p->chunk_size = FMT_CHUNK_DEFAULT;
	p->level = FMT_LEVEL_DEFAULT;
}

static bool chunk_size_ok(uint32_t cs)
{
	return cs >= FMT_CHUNK_MIN && cs <= FMT_CHUNK_MAX && (cs & (cs - 1)) == 0;
}

int store_params_check(const struct store_params *p)
{
	if (!chunk_size_ok(p->chunk_size)) {
		log_error("chunk size %u is invalid: use a power of two from %u (4K) to %u (16M)",
			  p->chunk_size, FMT_CHUNK_MIN, FMT_CHUNK_MAX);
		return -EINVAL;
	}
	if (p->level < LEVEL_MIN || p->level > LEVEL_MAX) {
		log_error("zstd level %d is invalid: use a level from %d to %d", p->level,
			  LEVEL_MIN, LEVEL_MAX);
		return -EINVAL;
	}
	return 0;
}

bool store_name_reserved(const char *name)
{
	return strcmp(name, FMT_META_DIR) == 0;
}

static void sb_encode(uint8_t out[64], const struct store_params *p, const uint8_t uuid[16],
		      uint64_t created)
{
	memset(out, 0, 64);
	memcpy(out, FMT_SB_MAGIC, 8);
	fmt_put16(out + 8, FMT_VERSION_MAJOR);
	fmt_put16(out + 10, FMT_VERSION_MINOR);
	fmt_put32(out + 12, 0);
	fmt_put32(out + 16, 0);
	fmt_put32(out + 20, 0);
	fmt_put32(out + 24, p->chunk_size);
	fmt_put32(out + 28, (uint32_t)p->level);
	memcpy(out + 32, uuid, 16);
	fmt_put64(out + 48, created);
	fmt_put64(out + 56, XXH3_64bits(out, 56));
}

/* mkdir -p @path (0755).  Returns 0 or -errno. */
static int mkdir_p(const char *path)
{
	char *tmp = strdup(path);
	int ret = 0;

	if (!tmp)
		return -ENOMEM;
	for (char *p = tmp + 1;; p++) {
		bool end = *p == '\0';

		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) && errno != EEXIST) {
			ret = -errno;
			break;
		}
		if (end)
			break;
		*p = '/';
	}
	free(tmp);
	return ret;
}

/* Replaces .faissfs/superblock in @meta by the 64 bytes @sb: written to a temp
 * name of this call's own (pid and a sequence number: concurrent callers never
 * share one), fsynced, renamed over the superblock, then @meta fsynced.  A crash
 * leaves the old superblock or the new one.  Returns 0 or -errno (not logged);
 * on failure the temp file is removed. */
static int sb_write(int meta, const uint8_t sb[64])
{
	static atomic_uint seq;
	char tmpname[80];
	int fd, ret;

	snprintf(tmpname, sizeof(tmpname), "%s.new.%ld.%u", FMT_SUPERBLOCK_NAME, (long)getpid(),
		 atomic_fetch_add(&seq, 1));
	fd = openat(meta, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	ret = store_write_all(fd, sb, 64);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(meta, tmpname, meta, FMT_SUPERBLOCK_NAME))
		ret = -errno;
	if (ret) {
		unlinkat(meta, tmpname, 0);
		return ret;
	}
	return fsync(meta) ? -errno : 0;
}

int store_create(const char *path, const struct store_params *p)
{
	struct store_params defp;
	uint8_t sb[64], uuid[16];
	int root = -1, meta = -1, ret;
	struct stat stb;

	if (!p) {
		store_params_default(&defp);
		p = &defp;
	}
	ret = store_params_check(p);
	if (ret)
		return ret;
	ret = mkdir_p(path);
	if (ret) {
		log_error("%s: cannot create the store directory: %s", path, strerror(-ret));
		return ret;
	}
	root = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0) {
		ret = -errno;
		log_error("%s: cannot open the store directory: %s", path, strerror(-ret));
		return ret;
	}
	if (mkdirat(root, FMT_META_DIR, 0755) && errno != EEXIST) {
		ret = -errno;
		log_error("%s: cannot create %s/: %s", path, FMT_META_DIR, strerror(-ret));
		goto out;
	}
	meta = openat(root, FMT_META_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (meta < 0) {
		ret = -errno;
		log_error("%s: cannot open %s/: %s", path, FMT_META_DIR, strerror(-ret));
		goto out;
	}
	if (fstatat(meta, FMT_SUPERBLOCK_NAME, &stb, AT_SYMLINK_NOFOLLOW) == 0) {
		log_error("%s: already a faissfs store (it has %s/%s): use it as it is", path,
			  FMT_META_DIR, FMT_SUPERBLOCK_NAME);
		ret = -EEXIST;
		goto out;
	}
	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid)) {
		ret = -errno;
		log_error("%s: no random bytes for the store uuid: %s", path, strerror(-ret));
		goto out;
	}
	sb_encode(sb, p, uuid, (uint64_t)time(NULL));
	ret = sb_write(meta, sb);
	if (ret)
		goto fail_io;
	if (mkdirat(meta, FMT_TMP_DIR, 0700) && errno != EEXIST) {
		ret = -errno;
		goto fail_io;
	}
	fsync(root);
	ret = 0;
	goto out;

fail_io:
	log_error("%s: cannot write the superblock: %s (check the space and permissions there)",
		  path, strerror(-ret));
out:
	if (meta >= 0)
		close(meta);
	close(root);
	return ret;
}

/* Decodes and checks the superblock @sb (@n bytes read) of the store @path. */
static int sb_check(const uint8_t *sb, ssize_t n, const char *path, int flags, struct store *st)
{
	uint16_t major, minor;
	uint32_t incompat, ro_compat;

	if (n < 64) {
		log_error("%s: superblock is truncated (%zd of 64 bytes): the store is damaged; "
			  "restore %s/%s from a backup or re-import the data",
			  path, n, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
		return -EUCLEAN;
	}
	if (memcmp(sb, FMT_SB_MAGIC, 8) != 0) {
		log_error("%s: %s/%s has no FFSSTORE magic: the store is damaged; restore it "
			  "from a backup or re-import the data",
			  path, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
		return -EUCLEAN;
	}
	major = fmt_get16(sb + 8);
	minor = fmt_get16(sb + 10);
	if (major > FMT_VERSION_MAJOR) {
		log_error("%s: format %u.%u is newer than this faissfs supports (%u.%u): "
			  "upgrade faissfs",
			  path, major, minor, FMT_VERSION_MAJOR, FMT_VERSION_MINOR);
		return -EPROTONOSUPPORT;
	}
	if (fmt_get64(sb + 56) != XXH3_64bits(sb, 56)) {
		log_error("%s: superblock checksum mismatch: the store is damaged; restore "
			  "%s/%s from a backup or re-import the data",
			  path, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
		return -EUCLEAN;
	}
	if (major < 1) {
		log_error("%s: superblock has format version %u.%u, which never existed: the "
			  "store is damaged; re-import the data",
			  path, major, minor);
		return -EUCLEAN;
	}
	incompat = fmt_get32(sb + 12);
	ro_compat = fmt_get32(sb + 16);
	if (incompat & ~FMT_SB_INCOMPAT_KNOWN) {
		log_error("%s: store uses features unknown to this faissfs (incompat 0x%x): "
			  "upgrade faissfs",
			  path, incompat & ~FMT_SB_INCOMPAT_KNOWN);
		return -EPROTONOSUPPORT;
	}
	if ((ro_compat & ~FMT_SB_RO_COMPAT_KNOWN) && !(flags & STORE_RDONLY)) {
		log_error("%s: store uses features this faissfs can only read (ro_compat 0x%x): "
			  "open it read-only or upgrade faissfs",
			  path, ro_compat & ~FMT_SB_RO_COMPAT_KNOWN);
		return -EPROTONOSUPPORT;
	}
	st->params.chunk_size = fmt_get32(sb + 24);
	st->params.level = (int32_t)fmt_get32(sb + 28);
	if (!chunk_size_ok(st->params.chunk_size) || st->params.level < LEVEL_MIN ||
	    st->params.level > LEVEL_MAX) {
		log_error("%s: superblock has an invalid chunk size %u or level %d: the store is "
			  "damaged; restore %s/%s from a backup or re-import the data",
			  path, st->params.chunk_size, st->params.level, FMT_META_DIR,
			  FMT_SUPERBLOCK_NAME);
		return -EUCLEAN;
	}
	memcpy(st->uuid, sb + 32, 16);
	atomic_store(&st->ro_compat, ro_compat);
	return 0;
}

/* Removes temp objects, and the symlinks, nodes and hard links import makes in
 * tmp/ before renaming them into place, left by a crash (changed longer than
 * TMP_STALE_SEC ago: st_mtime, or st_ctime for a hard link, whose mtime is its
 * file's);
 * younger ones may belong to a writer that is still running. */
static void tmp_cleanup(int tmp_fd)
{
	int fd = dup(tmp_fd);
	DIR *d;
	struct dirent *de;
	time_t now = time(NULL);

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat stb;

		if (de->d_name[0] == '.')
			continue;
		if (fstatat(tmp_fd, de->d_name, &stb, AT_SYMLINK_NOFOLLOW) || S_ISDIR(stb.st_mode))
			continue;
		/* A hard link keeps the old mtime of its file: judged by its ctime. */
		if (now - (stb.st_nlink > 1 ? stb.st_ctime : stb.st_mtime) > TMP_STALE_SEC &&
		    unlinkat(tmp_fd, de->d_name, 0) == 0)
			log_info("removed a stale temp object %s/%s/%s", FMT_META_DIR, FMT_TMP_DIR,
				 de->d_name);
	}
	closedir(d);
}

const char *store_open_strerror(int err)
{
	switch (-err) {
	case ENOENT:
		return "does not exist";
	case ENOTDIR:
		return "is not a directory";
	case EMEDIUMTYPE:
		return "is not a faissfs store (no .faissfs/superblock: make one with faissfs "
		       "init or faissfs import)";
	case EUCLEAN:
		return "has a corrupt superblock";
	case EPROTONOSUPPORT:
		return "was made by a newer faissfs (upgrade faissfs)";
	case EACCES:
		return "cannot be read (permission denied)";
	default:
		return strerror(-err);
	}
}

int store_open(const char *path, int flags, struct store **out)
{
	struct store *st;
	uint8_t sb[64];
	ssize_t n;
	int fd = -1, ret;

	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->root_fd = st->meta_fd = st->tmp_fd = -1;
	st->flags = flags;
	st->path = strdup(path);
	if (!st->path) {
		ret = -ENOMEM;
		goto fail;
	}
	st->root_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (st->root_fd < 0) {
		ret = -errno;
		if ((flags & STORE_QUIET) && (ret == -ENOENT || ret == -ENOTDIR))
			goto fail;
		if (ret == -ENOENT)
			log_error("%s: no such directory: give the path of a faissfs store", path);
		else if (ret == -ENOTDIR)
			log_error("%s: not a directory: give the path of a faissfs store", path);
		else
			log_error("%s: cannot open the store: %s", path, strerror(-ret));
		goto fail;
	}
	st->meta_fd =
		openat(st->root_fd, FMT_META_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->meta_fd >= 0)
		fd = openat(st->meta_fd, FMT_SUPERBLOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (st->meta_fd < 0 || fd < 0) {
		ret = -errno;
		if ((ret == -ENOENT || ret == -ENOTDIR) && (flags & STORE_QUIET)) {
			ret = -EMEDIUMTYPE;
		} else if (ret == -ENOENT || ret == -ENOTDIR) {
			log_error(
				"%s: not a faissfs store (no %s/%s): create one with `faissfs init "
				"DIR` or `faissfs import SRC DIR`",
				path, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
			ret = -EMEDIUMTYPE;
		} else {
			log_error("%s: cannot open %s/%s: %s", path, FMT_META_DIR,
				  FMT_SUPERBLOCK_NAME, strerror(-ret));
		}
		goto fail;
	}
	n = store_pread_full(fd, sb, sizeof(sb), 0);
	if (n < 0) {
		ret = (int)n;
		log_error("%s: cannot read %s/%s: %s", path, FMT_META_DIR, FMT_SUPERBLOCK_NAME,
			  strerror(-ret));
		goto fail;
	}
	ret = sb_check(sb, n, path, flags, st);
	if (ret)
		goto fail;
	if (!(flags & STORE_RDONLY)) {
		if (mkdirat(st->meta_fd, FMT_TMP_DIR, 0700) && errno != EEXIST) {
			ret = -errno;
			log_error("%s: cannot create %s/%s/: %s (open the store read-only, or fix "
				  "the permissions)",
				  path, FMT_META_DIR, FMT_TMP_DIR, strerror(-ret));
			goto fail;
		}
		st->tmp_fd = openat(st->meta_fd, FMT_TMP_DIR,
				    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (st->tmp_fd < 0) {
			ret = -errno;
			log_error("%s: cannot open %s/%s/: %s", path, FMT_META_DIR, FMT_TMP_DIR,
				  strerror(-ret));
			goto fail;
		}
		tmp_cleanup(st->tmp_fd);
	}
	close(fd);
	*out = st;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	store_close(st);
	return ret;
}

/* Reads the superblock of @st again and checks that it is still whole (magic,
 * major version, checksum): another process may have rewritten it since open. */
static int sb_reread(struct store *st, uint8_t sb[64])
{
	int fd = openat(st->meta_fd, FMT_SUPERBLOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = store_pread_full(fd, sb, 64, 0);
	close(fd);
	if (n < 0)
		return (int)n;
	if (n < 64 || memcmp(sb, FMT_SB_MAGIC, 8) || fmt_get16(sb + 8) != FMT_VERSION_MAJOR ||
	    fmt_get64(sb + 56) != XXH3_64bits(sb, 56)) {
		log_error("%s: %s/%s changed on disk and is no longer a valid superblock: the "
			  "store is damaged; restore it from a backup",
			  st->path, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
		return -EUCLEAN;
	}
	return 0;
}

int store_feature_links(struct store *st)
{
	uint8_t sb[64];
	uint32_t ro;
	int ret;

	if (atomic_load(&st->ro_compat) & FMT_SB_RO_COMPAT_LINKS)
		return 0;
	if (st->flags & STORE_RDONLY)
		return -EROFS;
	/* From the disk, not from memory: keep whatever another writer set. */
	ret = sb_reread(st, sb);
	if (ret)
		goto fail;
	ro = fmt_get32(sb + 16);
	if (!(ro & FMT_SB_RO_COMPAT_LINKS)) {
		/* Concurrent callers (threads or processes) compute the same bytes
		 * from the same old superblock, each renames its own temp file: the
		 * last rename wins, with the same result. */
		fmt_put32(sb + 16, ro | FMT_SB_RO_COMPAT_LINKS);
		if (fmt_get16(sb + 10) < FMT_SB_MINOR_LINKS)
			fmt_put16(sb + 10, FMT_SB_MINOR_LINKS);
		fmt_put64(sb + 56, XXH3_64bits(sb, 56));
		ret = sb_write(st->meta_fd, sb);
		if (ret)
			goto fail;
	}
	atomic_fetch_or(&st->ro_compat, ro | FMT_SB_RO_COMPAT_LINKS);
	return 0;
fail:
	if (ret != -EUCLEAN)
		log_error("%s: cannot mark the store as holding links (%s/%s): %s; check the "
			  "space and permissions there",
			  st->path, FMT_META_DIR, FMT_SUPERBLOCK_NAME, strerror(-ret));
	return ret;
}

bool store_has_links(const struct store *st)
{
	return atomic_load(&st->ro_compat) & FMT_SB_RO_COMPAT_LINKS;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->tmp_fd >= 0)
		close(st->tmp_fd);
	if (st->meta_fd >= 0)
		close(st->meta_fd);
	if (st->root_fd >= 0)
		close(st->root_fd);
	free(st->path);
	free(st);
}

int store_root_fd(const struct store *st)
{
	return st->root_fd;
}

int store_tmp_fd(const struct store *st)
{
	return st->tmp_fd;
}

const char *store_path(const struct store *st)
{
	return st->path;
}

const struct store_params *store_default_params(const struct store *st)
{
	return &st->params;
}

/* --- the daemon lock ------------------------------------------------------------ */

#define LOCK_NAME "lock" /* STORE/.faissfs/lock: flock(2) + the holder's PID */

/* The PID of the lock's holder, or 0 if unknown: the one written in the lock
 * file if it is alive, else the one /proc/locks gives for the inode @lst (the
 * process that took the flock; a daemon on a read-only store cannot write its
 * PID, and a stale file must not name a process long gone). */
static pid_t lock_holder(const struct store *st, const struct stat *lst)
{
	char buf[256];
	ssize_t n;
	int fd = openat(st->meta_fd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	long pid = 0;
	FILE *f;

	if (fd >= 0) {
		n = store_pread_full(fd, buf, sizeof(buf) - 1, 0);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			pid = strtol(buf, NULL, 10);
		}
		if (pid > 0 && pid <= INT32_MAX && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
			return (pid_t)pid;
	}
	f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	while (fgets(buf, sizeof(buf), f)) {
		unsigned int maj, min;
		unsigned long ino;
		int lpid;

		if (sscanf(buf, "%*d: FLOCK %*s %*s %d %x:%x:%lu", &lpid, &maj, &min, &ino) == 4 &&
		    ino == lst->st_ino && makedev(maj, min) == lst->st_dev && lpid > 0 &&
		    kill(lpid, 0) == 0) {
			fclose(f);
			return lpid;
		}
	}
	fclose(f);
	return 0;
}

int store_lock_holder(const struct store *st, pid_t *holder)
{
	struct stat lst;
	int fd = openat(st->meta_fd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* A shared lock conflicts with the daemon's exclusive one only. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		*holder = fstat(fd, &lst) == 0 ? lock_holder(st, &lst) : 0;
		ret = 1;
	} else {
		ret = -errno;
	}
	close(fd);
	return ret;
}

void store_lock_update_pid(int fd)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	/* Best effort: the flock is what excludes; the PID only names the holder. */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n)
		return;
}

int store_lock(const struct store *st, pid_t *holder)
{
	bool writable = true;
	pid_t pid;
	int fd, ret;

	fd = openat(st->meta_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 && (errno == EROFS || errno == EACCES || errno == EPERM)) {
		/* Read-only: lock the file if it exists (it names its holder), else
		 * the .faissfs directory itself. */
		writable = false;
		fd = openat(st->meta_fd, LOCK_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			fd = openat(st->meta_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0) {
		ret = -errno;
		log_error("%s: cannot open %s/%s: %s (check the permissions of the store)",
			  st->path, FMT_META_DIR, LOCK_NAME, strerror(-ret));
		return ret;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		struct stat lst;

		ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (ret != -EBUSY) {
			close(fd);
			log_error("%s: cannot lock %s/%s: %s", st->path, FMT_META_DIR, LOCK_NAME,
				  strerror(-ret));
			return ret;
		}
		pid = fstat(fd, &lst) == 0 ? lock_holder(st, &lst) : 0;
		close(fd);
		if (pid > 0)
			log_error("%s: the store is in use by another faissfs daemon (PID %ld, see "
				  "%s/%s): unmount that one first",
				  st->path, (long)pid, FMT_META_DIR, LOCK_NAME);
		else
			log_error("%s: the store is in use by another faissfs daemon (its PID is "
				  "unknown): unmount that one first",
				  st->path);
		if (holder)
			*holder = pid;
		return -EBUSY;
	}
	if (writable)
		store_lock_update_pid(fd);
	return fd;
}

void store_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
