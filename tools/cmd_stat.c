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
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#define TENANT_FLAT "-"
#define DEPTH_MAX   16

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

/* Adds file @name (in @dirfd, path components @comp[0..depth)) to @l. */
static int add_file(struct stat_list *l, char *const comp[], int depth, int dirfd, const char *name,
		    const struct stat *st)
{
	struct store_object *o = NULL;
	struct stat_file *f;
	char stem[NAME_MAX + 1], path[PATH_MAX], *dot;
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
	snprintf(stem, sizeof(stem), "%s", name);
	dot = strrchr(stem, '.');
	if (depth < 2 && dot && dot != stem)
		*dot = '\0';
	f->tenant = strdup(depth >= 1 ? comp[0] : TENANT_FLAT);
	f->index = strdup(depth >= 2 ? comp[1] : stem);
	f->name = strdup(name);
	if (!f->tenant || !f->index || !f->name) {
		free(f->tenant);
		free(f->index);
		free(f->name);
		return -ENOMEM;
	}
	f->mtime = st->st_mtim;
	f->logical = f->stored = (uint64_t)st->st_size;
	/* The path under the store names the file in the store's log lines. */
	if (depth >= 2)
		snprintf(path, sizeof(path), "%s/%s/%s", comp[0], comp[1], name);
	else if (depth == 1)
		snprintf(path, sizeof(path), "%s/%s", comp[0], name);
	else
		snprintf(path, sizeof(path), "%s", name);
	rc = store_object_openat(dirfd, name, path, &o);
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

static int walk(struct stat_list *l, int fd, char *comp[], int depth)
{
	DIR *d = fdopendir(fd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		close(fd);
		return -errno;
	}
	while (!rc && (de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (depth == 0 && store_name_reserved(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			rc = add_file(l, comp, depth, dirfd(d), de->d_name, &st);
		} else if (S_ISDIR(st.st_mode) && depth < DEPTH_MAX) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (sub < 0) {
				fprintf(stderr,
					"faissfs stat: cannot read directory %s: %s (skipped)\n",
					de->d_name, strerror(errno));
				continue;
			}
			comp[depth] = de->d_name;
			rc = walk(l, sub, comp, depth + 1);
		}
	}
	closedir(d);
	return rc;
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
		cmd_json_str(stdout, r->head->tenant);
		printf(",\"index\":");
		cmd_json_str(stdout, r->head->index);
		if (fi->valid)
			printf(",\"type\":\"%s\",\"fourcc\":\"%s\",\"d\":%" PRId32
			       ",\"ntotal\":%" PRId64,
			       store_faiss_type_name(fi->fourcc), fi->fourcc, fi->d, fi->ntotal);
		else
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

/* The store behind @path: @path itself if it has a superblock, else the one a
 * faissfs mount at @path names in .faissfs/store.  Caller frees. */
static char *find_store(const char *path)
{
	char buf[PATH_MAX + 2], *p;
	struct stat st;
	size_t n;
	FILE *f;

	if (asprintf(&p, "%s/.faissfs/superblock", path) < 0)
		return NULL;
	if (stat(p, &st) == 0) {
		free(p);
		return strdup(path);
	}
	free(p);
	if (asprintf(&p, "%s/.faissfs/store", path) < 0)
		return NULL;
	f = fopen(p, "r");
	free(p);
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return n ? strdup(buf) : NULL;
}

int cmd_stat(int argc, char *argv[])
{
	struct stat_list l = {0};
	struct store *st = NULL;
	struct stat_row total = {0};
	char *store = NULL, *comp[DEPTH_MAX + 1];
	bool json = false, bytes = false, first_row = true;
	const struct cmd_opt opts[] = {
		CMD_OPT_FLAG("json", &json),
		CMD_OPT_FLAG("bytes", &bytes),
		{0},
	};
	const struct cmd_spec spec = {
		.name = "stat", .usage = usage, .opts = opts, .min_args = 1, .max_args = 1};
	int first, fd, rc, ret = 1;
	uint64_t nidx = 0;

	if (!cmd_parse(&spec, argc, argv, &first, &rc))
		return rc;
	store = find_store(argv[first]);
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
	fd = openat(store_root_fd(st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : walk(&l, fd, comp, 0);
	if (rc < 0) {
		fprintf(stderr, "faissfs stat: cannot read store '%s': %s\n", store, strerror(-rc));
		goto out;
	}
	if (l.n)
		qsort(l.f, l.n, sizeof(*l.f), file_cmp);

	if (json) {
		printf("{\"store\":");
		cmd_json_str(stdout, store);
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
