/* cmd_stat.c - `faissfs stat STORE|MOUNT [--json] [--bytes]`.
 *
 * One row per tenant and index: FAISS type, d, ntotal, logical size, stored
 * size, ratio, chunks, files and last write, read from metadata only (each
 * object's header and trailer; no chunk is read or decompressed), so it stays
 * fast on stores with thousands of indices.  Files group into indices as in
 * the FAISSx layouts: TENANT/INDEX/FILE -> (TENANT, INDEX); the flat layout's
 * FILE at the store root -> ("-", FILE without extension); the daemon's size
 * gauges (fuse/control.c) group the same way.
 * MOUNT: a faissfs mount point; its store is named in MOUNT/.faissfs/store.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "store/store.h"
#include "util/log.h"
#include "util/text.h"

#define DEPTH_MAX 16

/* One file of the store, as its metadata describes it. */
struct stat_file {
	char *tenant, *index, *name;
	uint64_t logical, stored, chunks;
	struct timespec mtime;
	struct store_faiss_info faiss; /* valid: false for plain files */
	bool bad;		       /* its header or trailer is damaged */
};

struct stat_list {
	size_t n, cap;
	struct stat_file *f;
	uint64_t damaged;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: faissfs stat STORE|MOUNT [--json] [--bytes]\n\n"
		   "One line per tenant and index: FAISS type, d, ntotal, logical and stored\n"
		   "size, compression ratio, chunks, files and last write.  Reads object\n"
		   "metadata only (never decompresses).  MOUNT is a faissfs mount point.\n\n"
		   "  --json       one JSON document: {\"store\":..., \"indices\":[...], "
		   "\"total\":...}\n"
		   "  --bytes      sizes in bytes in the table (default: K/M/G/T)\n"
		   "  -h, --help   show this help\n");
}

static void list_release(struct stat_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->f[i].tenant);
		free(l->f[i].index);
		free(l->f[i].name);
	}
	free(l->f);
}

/* Adds the regular file @e to @l, grouped by the layouts of the file comment. */
static int add_file(struct stat_list *l, const struct store_walk_entry *e)
{
	struct store_object *o = NULL;
	struct stat_file *f;
	int rc;

	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct stat_file *nf = realloc(l->f, nc * sizeof(*nf));

		if (!nf)
			return -ENOMEM;
		l->f = nf;
		l->cap = nc;
	}
	f = &l->f[l->n];
	memset(f, 0, sizeof(*f));
	f->name = strdup(e->name);
	if (!f->name || store_walk_group(e->rel, &f->tenant, &f->index) < 0) {
		free(f->name);
		return -ENOMEM;
	}
	f->mtime = e->st->st_mtim;
	f->logical = f->stored = (uint64_t)e->st->st_size;
	rc = store_object_openat(e->dirfd, e->name, e->rel, &o);
	if (rc == 0) {
		const struct store_object_info *info = store_object_info(o);

		f->logical = info->size;
		f->chunks = info->nchunks;
		f->faiss = info->faiss;
		store_object_free(o);
	} else if (rc != -EMEDIUMTYPE) {
		/* Logged by the store with what is wrong; counted, listed as plain. */
		f->bad = true;
		l->damaged++;
	}
	l->n++;
	return 0;
}

/* store_walk() callback: every regular file goes into the list @arg (a struct
 * stat_list).  Directories deeper than DEPTH_MAX are left out; special files and
 * entries gone since the listing are not counted; a directory that cannot be
 * opened is skipped with a message. */
static int add_entry(void *arg, const struct store_walk_entry *e)
{
	switch (e->type) {
	case STORE_WALK_FILE:
		return add_file(arg, e);
	case STORE_WALK_DIR:
		return e->depth >= DEPTH_MAX ? STORE_WALK_SKIP : 0;
	case STORE_WALK_ERR_OPEN:
		fprintf(stderr, "faissfs stat: cannot read directory %s: %s (skipped)\n", e->name,
			strerror(-e->err));
		return 0;
	default:
		return 0;
	}
}

/* Files sorted by tenant, index, then FAISS files first and "index.faiss" before
 * others, so the first file of a group is the one whose FAISS header we show. */
static int file_cmp(const void *a, const void *b)
{
	const struct stat_file *x = a, *y = b;
	int r = strcmp(x->tenant, y->tenant);

	if (!r)
		r = strcmp(x->index, y->index);
	if (!r)
		r = (int)y->faiss.valid - (int)x->faiss.valid;
	if (!r)
		r = (int)!strcmp(y->name, "index.faiss") - (int)!strcmp(x->name, "index.faiss");
	if (!r)
		r = strcmp(x->name, y->name);
	return r;
}

struct stat_row {
	const struct stat_file *head; /* FAISS info from here */
	uint64_t files, logical, stored, chunks;
	struct timespec mtime;
};

static void row_add(struct stat_row *r, const struct stat_file *f)
{
	r->files++;
	r->logical += f->logical;
	r->stored += f->stored;
	r->chunks += f->chunks;
	if (f->mtime.tv_sec > r->mtime.tv_sec ||
	    (f->mtime.tv_sec == r->mtime.tv_sec && f->mtime.tv_nsec > r->mtime.tv_nsec))
		r->mtime = f->mtime;
}

static void human(char *buf, size_t size, uint64_t v, bool bytes)
{
	static const char units[] = "KMGTPE";
	double x = (double)v;
	int u = -1;

	if (bytes || v < 1024) {
		snprintf(buf, size, "%" PRIu64, v);
		return;
	}
	while (x >= 1024.0 && u < 5) {
		x /= 1024.0;
		u++;
	}
	snprintf(buf, size, "%.1f%c", x, units[u]);
}

static void iso_time(char *buf, size_t size, const struct timespec *t)
{
	struct tm tm;

	gmtime_r(&t->tv_sec, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static double ratio(uint64_t logical, uint64_t stored)
{
	return stored ? (double)logical / (double)stored : 0.0;
}

static void print_row(const struct stat_row *r, bool json, bool bytes, bool first)
{
	const struct store_faiss_info *fi = &r->head->faiss;
	char lb[32], sb[32], tb[32];

	iso_time(tb, sizeof(tb), &r->mtime);
	if (json) {
		printf("%s\n  {\"tenant\":", first ? "" : ",");
		text_json_file(stdout, r->head->tenant);
		printf(",\"index\":");
		text_json_file(stdout, r->head->index);
		if (fi->valid) {
			printf(",\"type\":");
			text_json_file(stdout, store_faiss_type_name(fi->fourcc));
			printf(",\"fourcc\":");
			text_json_file(stdout, fi->fourcc);
			printf(",\"d\":%" PRId32 ",\"ntotal\":%" PRId64, fi->d, fi->ntotal);
		} else
			printf(",\"type\":null,\"fourcc\":null,\"d\":null,\"ntotal\":null");
		printf(",\"logical_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
		       ",\"ratio\":%.4f,\"chunks\":%" PRIu64 ",\"files\":%" PRIu64
		       ",\"last_write\":\"%s\"}",
		       r->logical, r->stored, ratio(r->logical, r->stored), r->chunks, r->files,
		       tb);
		return;
	}
	human(lb, sizeof(lb), r->logical, bytes);
	human(sb, sizeof(sb), r->stored, bytes);
	if (fi->valid)
		printf("%-16s %-20s %-22s %6" PRId32 " %10" PRId64, r->head->tenant, r->head->index,
		       store_faiss_type_name(fi->fourcc), fi->d, fi->ntotal);
	else
		printf("%-16s %-20s %-22s %6s %10s", r->head->tenant, r->head->index, "-", "-",
		       "-");
	printf(" %12s %12s %6.2f %7" PRIu64 " %5" PRIu64 "  %s\n", lb, sb,
	       ratio(r->logical, r->stored), r->chunks, r->files, tb);
}

int cmd_stat(int argc, char *argv[])
{
	struct stat_list l = {0};
	struct store *st = NULL;
	struct stat_row total = {0};
	char *store = NULL;
	bool json = false, bytes = false, first_row = true;
	const struct cmd_opt opts[] = {
		CMD_OPT_FLAG("json", &json),
		CMD_OPT_FLAG("bytes", &bytes),
		{0},
	};
	const struct cmd_spec spec = {
		.name = "stat", .usage = usage, .opts = opts, .min_args = 1, .max_args = 1};
	int first, rc, ret = 1;
	uint64_t nidx = 0;

	if (!cmd_parse(&spec, argc, argv, &first, &rc))
		return rc;
	store = cmd_find_store(argv[first]);
	if (!store) {
		fprintf(stderr,
			"faissfs stat: '%s' is neither a faissfs store nor a faissfs mount (give "
			"the store directory or the mount point)\n",
			argv[first]);
		return 1;
	}
	rc = store_open(store, STORE_RDONLY, &st);
	if (rc < 0) {
		fprintf(stderr,
			"faissfs stat: cannot open store '%s': %s (see the message above)\n", store,
			strerror(-rc));
		goto out;
	}
	rc = store_walk(st, "", add_entry, &l);
	if (rc < 0) {
		fprintf(stderr, "faissfs stat: cannot read store '%s': %s\n", store, strerror(-rc));
		goto out;
	}
	if (l.n)
		qsort(l.f, l.n, sizeof(*l.f), file_cmp);

	if (json) {
		printf("{\"store\":");
		text_json_file(stdout, store);
		printf(",\"indices\":[");
	} else {
		printf("%-16s %-20s %-22s %6s %10s %12s %12s %6s %7s %5s  %s\n", "TENANT", "INDEX",
		       "TYPE", "D", "NTOTAL", "LOGICAL", "STORED", "RATIO", "CHUNKS", "FILES",
		       "LAST WRITE (UTC)");
	}
	for (size_t i = 0; i < l.n;) {
		struct stat_row r = {&l.f[i], 0, 0, 0, 0, {0, 0}};

		for (; i < l.n && !strcmp(l.f[i].tenant, r.head->tenant) &&
		       !strcmp(l.f[i].index, r.head->index);
		     i++)
			row_add(&r, &l.f[i]);
		print_row(&r, json, bytes, first_row);
		first_row = false;
		nidx++;
		total.files += r.files;
		total.logical += r.logical;
		total.stored += r.stored;
		total.chunks += r.chunks;
	}
	if (json) {
		printf("\n],\"total\":{\"indices\":%" PRIu64 ",\"files\":%" PRIu64
		       ",\"logical_bytes\":%" PRIu64 ",\"stored_bytes\":%" PRIu64
		       ",\"ratio\":%.4f,\"chunks\":%" PRIu64 ",\"damaged\":%" PRIu64 "}}\n",
		       nidx, total.files, total.logical, total.stored,
		       ratio(total.logical, total.stored), total.chunks, l.damaged);
	} else {
		char lb[32], sb[32];

		human(lb, sizeof(lb), total.logical, bytes);
		human(sb, sizeof(sb), total.stored, bytes);
		printf("%-16s %-20s %-22s %6s %10s %12s %12s %6.2f %7" PRIu64 " %5" PRIu64 "\n",
		       "TOTAL", "", "", "", "", lb, sb, ratio(total.logical, total.stored),
		       total.chunks, total.files);
	}
	if (l.damaged) {
		fprintf(stderr,
			"faissfs stat: %" PRIu64 " damaged object(s), counted as plain files (see "
			"the messages above; check with: faissfs verify %s)\n",
			l.damaged, store);
		goto out;
	}
	ret = 0;
out:
	list_release(&l);
	store_close(st);
	free(store);
	return ret;
}
