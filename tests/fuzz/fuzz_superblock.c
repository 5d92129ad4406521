/* fuzz_superblock.c - libFuzzer target for the superblock reader (store_open()).
 *
 * The input becomes STORE/.faissfs/superblock of a private temp store, opened
 * read-only and read-write (which also takes the daemon lock).  An input longer
 * than 64 bytes gets its checksum (bytes 56..63) fixed first so the checks behind
 * it are reached; exactly 64 bytes or fewer are used as they are.  Any result but
 * a crash or a sanitizer report is fine.  Built by -DFAISSFS_FUZZ=ON (clang);
 * run by scripts/fuzz.sh.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "store/format.h"
#include "store/store.h"
#include "util/log.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

static char sb_dir[64];

/* Removes what the target made (at exit). */
static void sb_cleanup(void)
{
	static const char *const names[] = {"superblock", "lock", "tmp", ""};
	char path[128];

	if (!sb_dir[0])
		return;
	for (int i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", sb_dir, FMT_META_DIR, names[i]);
		remove(path);
	}
	remove(sb_dir);
}

/* A private store directory with an empty .faissfs/ (once per process). */
static int sb_setup(void)
{
	char meta[96];

	if (sb_dir[0])
		return 0;
	atexit(sb_cleanup);
	snprintf(sb_dir, sizeof(sb_dir), "/tmp/faissfs-fuzz-sb.XXXXXX");
	if (!mkdtemp(sb_dir)) {
		sb_dir[0] = '\0';
		return -1;
	}
	snprintf(meta, sizeof(meta), "%s/%s", sb_dir, FMT_META_DIR);
	return mkdir(meta, 0700);
}

int FUZZ_ENTRY(const uint8_t *data, size_t size);

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	uint8_t sb[64 + 16];
	size_t n = size < sizeof(sb) ? size : sizeof(sb);
	char path[128];
	struct store *st = NULL;
	int fd;

	log_set_level((enum log_level) - 1);
	if (sb_setup())
		return 0;
	memcpy(sb, data, n);
	if (n > 64)
		fmt_put64(sb + 56, XXH3_64bits(sb, 56));
	snprintf(path, sizeof(path), "%s/%s/%s", sb_dir, FMT_META_DIR, FMT_SUPERBLOCK_NAME);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (write(fd, sb, n) != (ssize_t)n) {
		close(fd);
		return 0;
	}
	close(fd);
	if (store_open(sb_dir, STORE_RDONLY, &st) == 0) {
		(void)store_default_params(st);
		store_close(st);
	}
	if (store_open(sb_dir, 0, &st) == 0) {
		int lk = store_lock(st, NULL);

		store_unlock(lk);
		store_close(st);
	}
	return 0;
}
