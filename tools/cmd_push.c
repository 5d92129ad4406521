/* cmd_push.c - `faissfs push STORE s3://BUCKET[/PREFIX] [options]`.
 *
 * Publishes a local store to an S3-compatible bucket for read-only nodes
 * (`faissfs mount s3://...`): objects the bucket lacks, then the superblock, then
 * the manifest (store/push.c).  The store is opened read-only.
 */
#include <stdio.h>
#include <unistd.h>

#include "cmd.h"
#include "store/store.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs push STORE s3://BUCKET[/PREFIX] [options]\n\n"
		"Publishes the store to an S3-compatible bucket, for nodes that mount it\n"
		"with 'faissfs mount s3://BUCKET[/PREFIX] MOUNTPOINT'.  Objects go first, named\n"
		"by their content (a re-push sends only the changed ones), the manifest last,\n"
		"so a node never sees half a version.  Plain files not compacted yet, symlinks\n"
		"and special files are refused before anything is sent.\n\n"
		"  --endpoint URL     the S3 endpoint, e.g. http://127.0.0.1:7480\n"
		"                     (default: $FAISSFS_S3_ENDPOINT, then $AWS_ENDPOINT_URL)\n"
		"  --cred-file PATH   an AWS credentials file (default: "
		"$AWS_SHARED_CREDENTIALS_FILE,\n"
		"                     then $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY)\n"
		"  --create-bucket    create the bucket if it does not exist\n"
		"  --progress         show a status line (default when stderr is a terminal)\n"
		"  --no-progress      do not\n"
		"  -h, --help         show this help\n");
}

int cmd_push(int argc, char *argv[])
{
	struct store_remote_opts ro = {0};
	struct store_push_opts po = {.progress = isatty(STDERR_FILENO)};
	struct store_push_stats stats;
	bool create = false;
	const struct cmd_opt opts[] = {
		{"endpoint", CMD_OPT_STR, &ro.endpoint, NULL, 0, 0, "give a URL"},
		{"cred-file", CMD_OPT_STR, &ro.cred_file, NULL, 0, 0, "give a file"},
		CMD_OPT_FLAG("create-bucket", &create),
		CMD_OPT_PROGRESS(&po.progress),
		{0},
	};
	const struct cmd_spec spec = {.name = "push",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 2,
				      .max_args = 2,
				      .args_error = "expected STORE and s3://BUCKET[/PREFIX]"};
	struct store *st = NULL;
	int first, r;

	if (!cmd_parse(&spec, argc, argv, &first, &r))
		return r;
	r = store_open(argv[first], STORE_RDONLY, &st);
	if (r < 0)
		return 1; /* logged with what to do */
	ro.url = argv[first + 1];
	ro.create_bucket = create;
	r = store_push(st, &ro, &po, &stats);
	store_close(st);
	if (r < 0)
		return 1;
	printf("pushed %s to %s: generation %llu%s, %llu files in %llu directories, %llu objects "
	       "uploaded (%.1f MiB), %llu already there, %.2f s\n",
	       argv[first], ro.url, (unsigned long long)stats.gen,
	       stats.unchanged ? " (unchanged)" : "",
	       (unsigned long long)stats.files, (unsigned long long)stats.dirs,
	       (unsigned long long)stats.uploaded, (double)stats.bytes_uploaded / 1048576.0,
	       (unsigned long long)stats.skipped, stats.seconds);
	return 0;
}
