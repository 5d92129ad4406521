/* cmd_init.c - `faissfs init STORE [--chunk-size SIZE] [--level N]`.
 *
 * Makes STORE an empty store (or turns an existing directory into one: its files
 * become plain files of the store) with the given defaults for new objects.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "store/format.h"
#include "store/store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs init STORE [--chunk-size SIZE] [--level N]\n\n"
		"Creates an empty faissfs store at STORE.  The directory may exist and hold\n"
		"files: they are served as plain files, and a writable mount compresses them.\n\n"
		"  --chunk-size SIZE  bytes per chunk of new objects, a power of two from 4K to\n"
		"                     16M (default %uK)\n"
		"  --level N          zstd level of new objects, 1..19 (default %d)\n"
		"  -h, --help         show this help\n",
		FMT_CHUNK_DEFAULT / 1024, FMT_LEVEL_DEFAULT);
}

int cmd_init(int argc, char *argv[])
{
	struct store_params p;
	const struct cmd_opt opts[] = {
		CMD_OPT_CHUNK_SIZE(&p.chunk_size, NULL),
		CMD_OPT_LEVEL(&p.level, NULL),
		{0},
	};
	const struct cmd_spec spec = {.name = "init",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 1,
				      .max_args = 1,
				      .args_error = "expected one STORE path"};
	int first, r;

	store_params_default(&p);
	if (!cmd_parse(&spec, argc, argv, &first, &r))
		return r;
	if (store_params_check(&p) < 0)
		return EXIT_USAGE;
	r = store_create(argv[first], &p);
	if (r < 0) {
		fprintf(stderr, "faissfs init: cannot create a store at %s: %s%s\n", argv[first],
			strerror(-r),
			r == -EEXIST ? " (it is a store already; use it as it is)" : "");
		return 1;
	}
	printf("created store %s (chunk size %u, level %d)\n", argv[first], p.chunk_size, p.level);
	return 0;
}
