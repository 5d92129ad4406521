/* cmd_compact.c - `faissfs compact STORE [--threads N]`.
 *
 * Converts every plain file of a store (a data dir made a store by faissfs init,
 * or files written through a -o rw mount) into a compressed object, offline, as
 * a -o rw mount does in the background.  Takes the store's daemon lock, so it
 * refuses to run while the store is mounted.
 */
#include <stdio.h>

#include "cmd.h"
#include "fuse/mount.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: faissfs compact STORE [--threads N]\n\n"
		   "Compresses every plain file of STORE larger than 4 KiB into an object,\n"
		   "replacing it atomically (the bytes stay the same).  The store must not be\n"
		   "mounted: a -o rw mount compacts in the background itself.\n\n"
		   "  --threads N      compression threads (default: one per CPU)\n"
		   "  -h, --help       show this help\n");
}

int cmd_compact(int argc, char *argv[])
{
	unsigned threads = 0;
	const struct cmd_opt opts[] = {
		CMD_OPT_THREADS(&threads, 1024),
		{0},
	};
	const struct cmd_spec spec = {.name = "compact",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 1,
				      .max_args = 1,
				      .args_error = "expected STORE"};
	int first, r;

	if (!cmd_parse(&spec, argc, argv, &first, &r))
		return r;
	return mnt_compact_store(argv[first], threads) < 0 ? 1 : 0;
}
