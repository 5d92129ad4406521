/* cmd_export.c - `faissfs export STORE DST [--progress|--no-progress]`.
 *
 * Writes every file of STORE to DST (new or empty), byte-identical, with modes and
 * mtimes.  The store is opened read-only.
 */
#include <stdio.h>
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
	bool progress = isatty(STDERR_FILENO);
	const struct cmd_opt opts[] = {
		CMD_OPT_PROGRESS(&progress),
		{0},
	};
	const struct cmd_spec spec = {.name = "export",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 2,
				      .max_args = 2,
				      .args_error = "expected STORE and DST"};
	struct store *st = NULL;
	int first, r;

	if (!cmd_parse(&spec, argc, argv, &first, &r))
		return r;
	r = store_open(argv[first], STORE_RDONLY, &st);
	if (r < 0)
		return 1; /* logged with what to do */
	r = store_export(st, argv[first + 1], progress);
	store_close(st);
	return r < 0 ? 1 : 0;
}
