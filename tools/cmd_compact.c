/* cmd_compact.c - `faissfs compact STORE [--threads N]`.
 *
 * Converts every plain file of a store (a data dir made a store by faissfs init,
 * or files written through a -o rw mount) into a compressed object, offline, as
 * a -o rw mount does in the background.  Takes the store's daemon lock, so it
 * refuses to run while the store is mounted.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	static const struct option opts[] = {
		{"threads", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	unsigned long threads = 0;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			threads = strtoul(optarg, &end, 10);
			if (!*optarg || *end || threads < 1 || threads > 1024) {
				fprintf(stderr,
					"faissfs compact: bad --threads '%s' (a number from 1 to "
					"1024)\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "faissfs compact: expected STORE\n\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	return mnt_compact_store(argv[optind], (unsigned)threads) < 0 ? 1 : 0;
}
