/* cmd_import.c - `faissfs import SRC STORE [options]`.
 *
 * Copies a FAISSx data dir into STORE, creating the store if needed.  When the
 * import refuses SRC before writing anything, a store this command just created
 * is removed again, so a failed first import leaves nothing behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "store/format.h"
#include "store/store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs import SRC STORE [--chunk-size SIZE] [--level N] [--threads N]\n"
		"                      [--progress|--no-progress]\n\n"
		"Copies the data dir SRC (every directory, regular file, symlink, FIFO, socket\n"
		"and device node) into STORE, creating the store if it does not exist.  Symlinks\n"
		"keep their target (never followed), hard links stay hard links.  Each file is\n"
		"compressed, read back and compared with SRC before it is published; SRC is never\n"
		"written.  Files already stored with identical bytes are skipped, so an\n"
		"interrupted import can be run again.\n\n"
		"  --chunk-size SIZE  bytes per chunk, a power of two from 4K to 16M\n"
		"                     (default: the store's; %uK for a new store)\n"
		"  --level N          zstd level 1..19 (default: the store's; %d for a new store)\n"
		"  --threads N        compression threads (default: all CPUs)\n"
		"  --progress         show a status line (default when stderr is a terminal)\n"
		"  --no-progress      do not\n"
		"  -h, --help         show this help\n",
		FMT_CHUNK_DEFAULT / 1024, FMT_LEVEL_DEFAULT);
}

/* True if @path does not exist or is an empty directory. */
static bool new_or_empty(const char *path)
{
	struct dirent *de;
	DIR *d = opendir(path);

	if (!d)
		return errno == ENOENT;
	while ((errno = 0, de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			break;
	closedir(d);
	return !de && !errno;
}

/* Undoes store_create() on a store that holds nothing yet; @rmroot: remove the
 * directory too (it did not exist before).  Best effort: leaves anything else. */
static void remove_new_store(const char *path, bool rmroot)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return;
	unlinkat(fd, FMT_META_DIR "/" FMT_TMP_DIR, AT_REMOVEDIR);
	unlinkat(fd, FMT_META_DIR "/" FMT_SUPERBLOCK_NAME, 0);
	unlinkat(fd, FMT_META_DIR, AT_REMOVEDIR);
	close(fd);
	if (rmroot)
		rmdir(path);
}

int cmd_import(int argc, char *argv[])
{
	struct store_import_opts io = {.progress = isatty(STDERR_FILENO)};
	struct store_import_stats stats;
	struct store_params p;
	bool set_chunk = false, set_level = false, created = false, existed;
	const struct cmd_opt opts[] = {
		CMD_OPT_CHUNK_SIZE(&p.chunk_size, &set_chunk),
		CMD_OPT_LEVEL(&p.level, &set_level),
		CMD_OPT_THREADS(&io.threads, 1024),
		CMD_OPT_PROGRESS(&io.progress),
		{0},
	};
	const struct cmd_spec spec = {.name = "import",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 2,
				      .max_args = 2,
				      .args_error = "expected SRC and STORE"};
	const char *src, *path;
	struct store *st = NULL;
	int first, r;

	if (!cmd_parse(&spec, argc, argv, &first, &r))
		return r;
	src = argv[first];
	path = argv[first + 1];

	/* SRC first: a failed import must not leave a new store behind. */
	{
		struct stat sst;

		if (stat(src, &sst) < 0 || !S_ISDIR(sst.st_mode)) {
			fprintf(stderr,
				"faissfs import: the data dir '%s' %s; give the FAISSx data "
				"directory to import (nothing was created)\n",
				src,
				stat(src, &sst) < 0
					? (errno == ENOENT ? "does not exist" : strerror(errno))
					: "is not a directory");
			return 1;
		}
	}
	existed = access(path, F_OK) == 0;
	if (new_or_empty(path)) {
		struct store_params np;

		store_params_default(&np);
		if (set_chunk)
			np.chunk_size = p.chunk_size;
		if (set_level)
			np.level = p.level;
		if (store_params_check(&np) < 0)
			return EXIT_USAGE;
		r = store_create(path, &np);
		if (r < 0) {
			fprintf(stderr,
				"faissfs import: cannot create the store %s: %s; give a "
				"path whose parent exists and is writable\n",
				path, strerror(-r));
			return 1;
		}
		created = true;
	}
	r = store_open(path, 0, &st);
	if (r < 0) {
		if (r == -EMEDIUMTYPE)
			fprintf(stderr,
				"faissfs import: %s is a non-empty directory that is not "
				"a store; run `faissfs init %s` first to make it one, or "
				"choose another STORE\n",
				path, path);
		if (created)
			remove_new_store(path, !existed);
		return 1;
	}
	if (set_chunk || set_level) {
		const struct store_params *d = store_default_params(st);

		if (!set_chunk)
			p.chunk_size = d->chunk_size;
		if (!set_level)
			p.level = d->level;
		if (store_params_check(&p) < 0) {
			store_close(st);
			return EXIT_USAGE;
		}
		io.params = &p;
	}
	r = store_import(st, src, &io, &stats);
	store_close(st);
	if (r < 0) {
		/* Removes only what store_create() made, and the directory only if
		 * empty: objects an interrupted import published stay. */
		if (created)
			remove_new_store(path, !existed);
		return 1;
	}
	printf("imported %s into %s: %llu files (%llu already stored), %llu directories, "
	       "%llu symlinks, %llu special files, %llu extra hard links, "
	       "%.1f MiB -> %.1f MiB stored (ratio %.2f) in %.1f s, %.1f MiB/s\n",
	       src, path, (unsigned long long)stats.files, (unsigned long long)stats.skipped,
	       (unsigned long long)stats.dirs, (unsigned long long)stats.symlinks,
	       (unsigned long long)stats.specials, (unsigned long long)stats.links,
	       (double)stats.logical_bytes / 1048576.0, (double)stats.stored_bytes / 1048576.0,
	       stats.stored_bytes ? (double)stats.logical_bytes / (double)stats.stored_bytes : 0.0,
	       stats.seconds,
	       stats.seconds > 0 ? (double)stats.logical_bytes / stats.seconds / 1048576.0 : 0.0);
	return 0;
}
