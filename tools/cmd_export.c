/* cmd_export.c - `faissfs export STORE DST [--progress|--no-progress]`.
 *
 * Writes every file of STORE to DST (new or empty), byte-identical, with modes and
 * mtimes.  The store is opened read-only.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "store/store.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: faissfs export STORE DST [--progress|--no-progress]\n\n"
		   "Writes the store's files out to DST (a new path or an empty directory),\n"
		   "byte-identical, with their modes and mtimes.\n\n"
		   "  --progress       show a status line (default when stderr is a terminal)\n"
		   "  --no-progress    do not\n"
		   "  -h, --help       show this help\n");
}

int cmd_export(int argc, char *argv[])
{
	static const struct option opts[] = {
		{"progress", no_argument, NULL, 'p'},
		{"no-progress", no_argument, NULL, 'P'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	bool progress = isatty(STDERR_FILENO);
	struct store *st = NULL;
	int c, r;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			progress = true;
			break;
		case 'P':
			progress = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "faissfs export: expected STORE and DST\n\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	r = store_open(argv[optind], STORE_RDONLY, &st);
	if (r < 0)
		return 1; /* logged with what to do */
	r = store_export(st, argv[optind + 1], progress);
	store_close(st);
	return r < 0 ? 1 : 0;
}
