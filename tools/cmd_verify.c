/* cmd_verify.c - `faissfs verify STORE [--deep] [--repair] [--json] [--threads N]`.
 *
 * Checks a whole store from disk (store_verify(): superblock, every object's
 * header, trailer, layout and chunks, FAISS headers) and prints each problem
 * with its file, chunk and offset.  --deep then loads every FAISS index through
 * the FAISS C API in a separate program, faissfs-verify-deep, so that this tool
 * (which is also the mount daemon) never links FAISS.  Exit 0 if the store is
 * sound, 1 on any problem (or a check that could not run), 2 on usage errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd.h"
#include "store/store.h"
#include "util/text.h"

#define DEEP_NAME "faissfs-verify-deep"

static bool have_deep(void);

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs verify STORE [--deep] [--repair] [--json] [--threads N]\n\n"
		"Checks every byte of a store: the superblock, each object's header and\n"
		"trailer, every chunk (decoded and compared with its checksum), each object's\n"
		"length and FAISS header against its metadata.  Prints each problem with the\n"
		"file, chunk and offset; exit status 1 if there is any.\n\n"
		"  --deep        also load every FAISS index with FAISS (needs %s,\n"
		"                built with -DFAISSFS_WITH_FAISS=ON: %s)\n"
		"  --repair      move damaged objects to STORE/.faissfs/quarantine/<time>/ (never\n"
		"                deletes) and remove leftovers of interrupted writes in "
		".faissfs/tmp\n"
		"  --json        one JSON object per problem on stdout, then a summary object\n"
		"  --threads N   checking threads (default: one per CPU)\n"
		"  -h, --help    show this help\n",
		DEEP_NAME,
		have_deep() ? "installed here"
			    : "not installed here, so --deep exits with status 2");
}

struct out {
	bool json;
};

static void report(void *arg, const struct store_verify_problem *p)
{
	const struct out *o = arg;

	if (o->json) {
		printf("{\"path\":");
		text_json_file(stdout, p->path);
		printf(",\"chunk\":%" PRId64 ",\"offset\":%" PRId64 ",\"errno\":%d,\"what\":",
		       p->chunk, p->offset, -p->err);
		text_json_file(stdout, p->what);
		printf("}\n");
		fflush(stdout);
		return;
	}
	printf("PROBLEM %s", p->path);
	if (p->chunk >= 0)
		printf(": chunk %" PRId64, p->chunk);
	if (p->offset >= 0)
		printf("%s offset %" PRId64, p->chunk >= 0 ? " at" : ": at", p->offset);
	printf(": %s\n", p->what);
	fflush(stdout);
}

/* Finds faissfs-verify-deep next to this program or in ../libexec/faissfs/.
 * Returns a malloc()ed path or NULL. */
static char *find_deep(void)
{
	char self[PATH_MAX], *slash, *path = NULL;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	const char *env = getenv("FAISSFS_VERIFY_DEEP");

	if (env && *env)
		return access(env, X_OK) == 0 ? strdup(env) : NULL;
	if (n <= 0)
		return NULL;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	if (asprintf(&path, "%s/%s", self, DEEP_NAME) >= 0 && access(path, X_OK) == 0)
		return path;
	free(path);
	if (asprintf(&path, "%s/../libexec/faissfs/%s", self, DEEP_NAME) >= 0 &&
	    access(path, X_OK) == 0)
		return path;
	free(path);
	return NULL;
}

static bool have_deep(void)
{
	char *prog = find_deep();

	free(prog);
	return prog != NULL;
}

/* Runs the deep check.  Returns its exit status, or 1 if it cannot run. */
static int run_deep(const char *store, bool json)
{
	char *prog = find_deep();
	pid_t pid;
	int status;

	if (!prog) {
		fprintf(stderr,
			"faissfs verify: --deep is unavailable: %s was not found next to "
			"faissfs or in ../libexec/faissfs (build with -DFAISSFS_WITH_FAISS=ON, "
			"or set FAISSFS_VERIFY_DEEP to its path)\n",
			DEEP_NAME);
		return 1;
	}
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "faissfs verify: cannot start %s: %s\n", prog, strerror(errno));
		free(prog);
		return 1;
	}
	if (pid == 0) {
		if (json)
			execl(prog, prog, "--json", store, (char *)NULL);
		else
			execl(prog, prog, store, (char *)NULL);
		fprintf(stderr, "faissfs verify: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	free(prog);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) == 0 ? 0 : 1;
	fprintf(stderr,
		"faissfs verify: %s died (signal %d): an index made FAISS crash; "
		"the lines above name the last index it loaded\n",
		DEEP_NAME, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
	return 1;
}

int cmd_verify(int argc, char *argv[])
{
	struct store_verify_opts vo = {0};
	struct store_verify_stats s = {0};
	struct store *st = NULL;
	struct out out = {0};
	bool deep = false;
	const struct cmd_opt opts[] = {
		CMD_OPT_FLAG("deep", &deep),
		CMD_OPT_FLAG("repair", &vo.repair),
		CMD_OPT_FLAG("json", &out.json),
		CMD_OPT_THREADS(&vo.threads, 64),
		{0},
	};
	const struct cmd_spec spec = {
		.name = "verify", .usage = usage, .opts = opts, .min_args = 1, .max_args = 1};
	int first, ret, rc = 1;

	if (!cmd_parse(&spec, argc, argv, &first, &ret))
		return ret;
	if (deep && !have_deep()) {
		fprintf(stderr,
			"faissfs verify: --deep is not available in this installation: it needs "
			"%s, which links FAISS's C API and is built only with "
			"-DFAISSFS_WITH_FAISS=ON (the Debian package does not include it); "
			"run faissfs verify without --deep, or set FAISSFS_VERIFY_DEEP to its "
			"path\n",
			DEEP_NAME);
		return EXIT_USAGE;
	}
	vo.progress = !out.json && isatty(STDERR_FILENO);
	vo.report = report;
	vo.arg = &out;
	ret = store_open(argv[first], STORE_QUIET | (vo.repair ? 0 : STORE_RDONLY), &st);
	if (ret) {
		/* A damaged superblock is a problem of the store; a path that is no store
		 * at all is not: it is said as such, not reported as damage. */
		if (ret == -EUCLEAN || ret == -EPROTONOSUPPORT) {
			if (out.json)
				printf("{\"path\":\".faissfs/superblock\",\"chunk\":-1,"
				       "\"offset\":0,\"errno\":%d,\"what\":\"%s\"}\n",
				       -ret,
				       ret == -EUCLEAN ? "the superblock is corrupt"
						       : "made by a newer faissfs");
			else
				printf("PROBLEM .faissfs/superblock: %s\n",
				       ret == -EUCLEAN ? "the superblock is corrupt"
						       : "made by a newer faissfs");
		} else {
			fprintf(stderr, "faissfs verify: '%s' %s\n", argv[first],
				store_open_strerror(ret));
		}
		return 1;
	}
	ret = store_verify(st, &vo, &s);
	store_close(st);
	if (ret && ret != -EUCLEAN)
		return 1;
	if (out.json) {
		printf("{\"summary\":true,\"files\":%" PRIu64 ",\"objects\":%" PRIu64
		       ",\"plain\":%" PRIu64 ",\"dirs\":%" PRIu64 ",\"symlinks\":%" PRIu64
		       ",\"special\":%" PRIu64 ",\"links\":%" PRIu64 ",\"skipped\":%" PRIu64
		       ",\"chunks\":%" PRIu64 ",\"logical_bytes\":%" PRIu64
		       ",\"stored_bytes\":%" PRIu64 ",\"problems\":%" PRIu64
		       ",\"quarantined\":%" PRIu64 ",\"tmp_removed\":%" PRIu64
		       ",\"seconds\":%.3f}\n",
		       s.files, s.objects, s.plain, s.dirs, s.symlinks, s.special, s.links,
		       s.skipped, s.chunks, s.logical_bytes, s.stored_bytes, s.problems,
		       s.quarantined, s.tmp_removed, s.seconds);
	} else {
		printf("%s: %" PRIu64 " objects, %" PRIu64 " plain files, %" PRIu64 " chunks "
		       "(%.1f MiB) checked in %.2f s: %" PRIu64 " problem%s",
		       argv[first], s.objects, s.plain, s.chunks,
		       (double)s.logical_bytes / 1048576.0, s.seconds, s.problems,
		       s.problems == 1 ? "" : "s");
		if (s.symlinks || s.special || s.links)
			printf("; %" PRIu64 " symlinks, %" PRIu64 " special files, %" PRIu64
			       " extra hard links",
			       s.symlinks, s.special, s.links);
		if (vo.repair)
			printf(", %" PRIu64 " quarantined, %" PRIu64 " temp files removed",
			       s.quarantined, s.tmp_removed);
		printf("\n");
		if (s.problems && !vo.repair)
			printf("restore the damaged files from their source and re-import them, or "
			       "run `faissfs verify --repair %s` to move them aside\n",
			       argv[first]);
	}
	rc = s.problems ? 1 : 0;
	if (deep && run_deep(argv[first], out.json) != 0)
		rc = 1;
	return rc;
}
