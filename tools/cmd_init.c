/* cmd_init.c - `faissfs init STORE [--chunk-size SIZE] [--level N]`.
 *
 * Makes STORE an empty store (or turns an existing directory into one: its files
 * become plain files of the store) with the given defaults for new objects.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "store/format.h"
#include "store/store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs init STORE [--chunk-size SIZE] [--level N]\n\n"
		"Creates an empty faissfs store at STORE (the directory may exist).\n\n"
		"  --chunk-size SIZE  bytes per chunk of new objects, a power of two from 4K to\n"
		"                     16M (default %uK)\n"
		"  --level N          zstd level of new objects, 1..19 (default %d)\n"
		"  -h, --help         show this help\n",
		FMT_CHUNK_DEFAULT / 1024, FMT_LEVEL_DEFAULT);
}

int cmd_init(int argc, char *argv[])
{
	static const struct option opts[] = {
		{"chunk-size", required_argument, NULL, 'c'},
		{"level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct store_params p;
	unsigned long long size;
	char *end;
	long lvl;
	int c, r;

	store_params_default(&p);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (cmd_parse_size(optarg, &size) < 0 || size > UINT32_MAX) {
				fprintf(stderr,
					"faissfs init: bad --chunk-size '%s': give a power of "
					"two from 4K to 16M, e.g. 256K\n",
					optarg);
				return EXIT_USAGE;
			}
			p.chunk_size = (uint32_t)size;
			break;
		case 'l':
			errno = 0;
			lvl = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || lvl < INT_MIN || lvl > INT_MAX) {
				fprintf(stderr,
					"faissfs init: bad --level '%s': give a number from 1 "
					"to 19\n",
					optarg);
				return EXIT_USAGE;
			}
			p.level = (int)lvl;
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
		fprintf(stderr, "faissfs init: expected one STORE path\n\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (store_params_check(&p) < 0)
		return EXIT_USAGE;
	r = store_create(argv[optind], &p);
	if (r < 0) {
		fprintf(stderr, "faissfs init: cannot create a store at %s: %s%s\n", argv[optind],
			strerror(-r),
			r == -EEXIST ? " (it is a store already; use it as it is)" : "");
		return 1;
	}
	printf("created store %s (chunk size %u, level %d)\n", argv[optind], p.chunk_size, p.level);
	return 0;
}
