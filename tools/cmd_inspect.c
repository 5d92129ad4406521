/* cmd_inspect.c - `faissfs inspect FILE... [--chunks] [--json]`.
 *
 * Shows what a store object holds, read straight from disk: sizes, ratio, chunk
 * kinds, level and the FAISS header; --chunks lists the chunk table.  A FILE on a
 * faissfs mount is looked up in the store the mount serves (through the mount it
 * reads as its logical bytes).  --json prints one JSON object per FILE, one per
 * line.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "store/format.h"
#include "store/store.h"
#include "util/text.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs inspect FILE... [--chunks] [--json]\n\n"
		"Shows a store object's sizes, compression ratio, chunks and FAISS header.\n"
		"FILE is a file inside a store directory, or a file on a faissfs mount: then\n"
		"its object is read from the store the mount serves.\n\n"
		"  --chunks     list every chunk: index, logical offset, stored bytes, kind, hash\n"
		"  --json       one JSON object per FILE, one per line\n"
		"  -h, --help   show this help\n");
}

static const char *kind_str(int kind)
{
	switch (kind) {
	case FMT_CHUNK_HOLE:
		return "hole";
	case FMT_CHUNK_RAW:
		return "raw";
	case FMT_CHUNK_ZSTD:
		return "zstd";
	default:
		return "unknown";
	}
}

static void print_faiss(const struct store_faiss_info *f, bool json)
{
	if (json) {
		if (!f->valid) {
			printf("null");
			return;
		}
		printf("{\"type\":");
		text_json_file(stdout, store_faiss_type_name(f->fourcc));
		printf(",\"fourcc\":");
		text_json_file(stdout, f->fourcc);
		printf(",\"binary\":%s,\"d\":%" PRId32 ",\"ntotal\":%" PRId64 ",\"metric\":%" PRId32
		       ",\"is_trained\":%s",
		       f->binary ? "true" : "false", f->d, f->ntotal, f->metric,
		       f->is_trained ? "true" : "false");
		if (f->binary)
			printf(",\"code_size\":%" PRId32, f->code_size);
		printf("}");
		return;
	}
	if (!f->valid) {
		printf("  FAISS          not a FAISS index header\n");
		return;
	}
	printf("  FAISS          %s (%s)%s\n", store_faiss_type_name(f->fourcc), f->fourcc,
	       f->binary ? ", binary" : "");
	printf("  d              %" PRId32 "\n", f->d);
	printf("  ntotal         %" PRId64 "\n", f->ntotal);
	if (!f->binary)
		printf("  metric         %" PRId32 " (%s)\n", f->metric,
		       store_faiss_metric_name(f->metric) ? store_faiss_metric_name(f->metric)
							  : "unknown");
	else
		printf("  code size      %" PRId32 "\n", f->code_size);
	printf("  trained        %s\n", f->is_trained ? "yes" : "no");
}

/* @stored: where the object is in the store when @path is its view on a mount. */
static void print_object(const char *path, const char *stored, const struct store_object *o,
			 uint64_t disk, bool chunks, bool json)
{
	const struct store_object_info *in = store_object_info(o);
	uint64_t nkind[3] = {0};
	double ratio = in->stored ? (double)in->size / (double)in->stored : 0.0;

	for (uint64_t i = 0; i < in->nchunks; i++) {
		int k = store_object_chunk_kind(o, i);

		if (k >= 0 && k <= 2)
			nkind[k]++;
	}
	if (json) {
		printf("{\"file\":");
		text_json_file(stdout, path);
		if (stored) {
			printf(",\"stored_at\":");
			text_json_file(stdout, stored);
		}
		printf(",\"object\":true,\"size\":%" PRIu64 ",\"stored\":%" PRIu64
		       ",\"on_disk\":%" PRIu64 ",\"ratio\":%.4f,\"chunk_size\":%" PRIu32
		       ",\"level\":%d,\"chunks\":%" PRIu64 ",\"zstd\":%" PRIu64 ",\"raw\":%" PRIu64
		       ",\"hole\":%" PRIu64 ",\"faiss\":",
		       in->size, in->stored, disk, ratio, in->chunk_size, in->level, in->nchunks,
		       nkind[FMT_CHUNK_ZSTD], nkind[FMT_CHUNK_RAW], nkind[FMT_CHUNK_HOLE]);
		print_faiss(&in->faiss, true);
		if (chunks) {
			printf(",\"chunk_table\":[");
			for (uint64_t i = 0; i < in->nchunks; i++)
				printf("%s{\"index\":%" PRIu64 ",\"offset\":%" PRIu64
				       ",\"length\":%zu,\"stored\":%" PRIu32
				       ",\"kind\":\"%s\",\"hash\":\"%016" PRIx64 "\"}",
				       i ? "," : "", i, i * in->chunk_size,
				       store_object_chunk_len(o, i),
				       store_object_chunk_stored(o, i),
				       kind_str(store_object_chunk_kind(o, i)),
				       store_object_chunk_hash(o, i));
			printf("]");
		}
		printf("}\n");
		return;
	}
	printf("%s: faissfs object\n", path);
	if (stored)
		printf("  stored at      %s (the mount shows its logical bytes)\n", stored);
	printf("  logical size   %" PRIu64 " bytes (%.1f MiB)\n", in->size,
	       (double)in->size / 1048576.0);
	printf("  stored         %" PRIu64 " bytes in chunk frames, %" PRIu64 " bytes on disk\n",
	       in->stored, disk);
	printf("  ratio          %.2f\n", ratio);
	printf("  chunk size     %" PRIu32 " bytes\n", in->chunk_size);
	printf("  chunks         %" PRIu64 " (zstd %" PRIu64 ", raw %" PRIu64 ", hole %" PRIu64
	       ")\n",
	       in->nchunks, nkind[FMT_CHUNK_ZSTD], nkind[FMT_CHUNK_RAW], nkind[FMT_CHUNK_HOLE]);
	printf("  zstd level     %d\n", in->level);
	print_faiss(&in->faiss, false);
	if (!chunks)
		return;
	printf("  %10s %14s %10s %10s %-5s %s\n", "chunk", "offset", "length", "stored", "kind",
	       "xxh3-64");
	for (uint64_t i = 0; i < in->nchunks; i++)
		printf("  %10" PRIu64 " %14" PRIu64 " %10zu %10" PRIu32 " %-5s %016" PRIx64 "\n", i,
		       i * in->chunk_size, store_object_chunk_len(o, i),
		       store_object_chunk_stored(o, i), kind_str(store_object_chunk_kind(o, i)),
		       store_object_chunk_hash(o, i));
}

/* Inspects one file of a store, @path, shown as @shown (the path on a mount
 * the user gave, or @path).  Returns 0 or 1 (message printed). */
static int inspect_file(const char *shown, const char *path, bool chunks, bool json)
{
	const char *stored = strcmp(shown, path) ? path : NULL;
	struct store_object *o = NULL;
	uint64_t size;
	struct stat sb;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		fprintf(stderr, "faissfs inspect: cannot open %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (!S_ISREG(sb.st_mode)) {
		fprintf(stderr,
			"faissfs inspect: %s is not a regular file; give a file inside "
			"a store\n",
			shown);
		close(fd);
		return 1;
	}
	r = store_object_probe(fd, path, &size);
	if (r == 0) {
		if (json) {
			printf("{\"file\":");
			text_json_file(stdout, shown);
			if (stored) {
				printf(",\"stored_at\":");
				text_json_file(stdout, stored);
			}
			printf(",\"object\":false,\"size\":%lld}\n", (long long)sb.st_size);
		} else {
			printf("%s: plain file (not a faissfs object, served as it is%s), %lld "
			       "bytes\n",
			       shown, stored ? "; written through the mount, not compacted yet" : "",
			       (long long)sb.st_size);
		}
		close(fd);
		return 0;
	}
	if (r > 0)
		r = store_object_open_fd(fd, path, &o);
	close(fd);
	if (r < 0) {
		fprintf(stderr, "faissfs inspect: cannot read %s: %s%s\n", path, strerror(-r),
			r == -EUCLEAN ? " (the object is corrupt; import its source again)" : "");
		return 1;
	}
	print_object(shown, stored, o, (uint64_t)sb.st_size, chunks, json);
	store_object_free(o);
	return 0;
}

/* Inspects @path: a file of a store, or a file on a faissfs mount, whose
 * object is read from the store the mount serves (through the mount, the
 * file reads as its logical bytes).  Returns 0 or 1 (message printed). */
static int inspect_one(const char *path, bool chunks, bool json)
{
	char *store = NULL, *rel = NULL, *in_store = NULL;
	int r = cmd_on_mount(path, &store, &rel);

	if (r <= 0)
		return inspect_file(path, path, chunks, json);
	if (!strncmp(store, "s3://", 5)) {
		fprintf(stderr,
			"faissfs inspect: %s is on a mount of the remote store %s; inspect reads "
			"local stores: run it on the store that was pushed\n",
			path, store);
		r = 1;
	} else if (asprintf(&in_store, "%s/%s", store, rel) < 0) {
		fprintf(stderr, "faissfs inspect: out of memory\n");
		r = 1;
	} else
		r = inspect_file(path, in_store, chunks, json);
	free(in_store);
	free(store);
	free(rel);
	return r;
}

int cmd_inspect(int argc, char *argv[])
{
	bool chunks = false, json = false;
	const struct cmd_opt opts[] = {
		CMD_OPT_FLAG("chunks", &chunks),
		CMD_OPT_FLAG("json", &json),
		{0},
	};
	const struct cmd_spec spec = {.name = "inspect",
				      .usage = usage,
				      .opts = opts,
				      .min_args = 1,
				      .max_args = -1,
				      .args_error = "expected at least one FILE"};
	int first, rc;

	if (!cmd_parse(&spec, argc, argv, &first, &rc))
		return rc;
	rc = 0;
	for (int i = first; i < argc; i++) {
		if (!json && i > first)
			putchar('\n');
		if (inspect_one(argv[i], chunks, json))
			rc = 1;
	}
	return rc;
}
