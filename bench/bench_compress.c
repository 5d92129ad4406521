/* bench_compress.c - what the byte-plane filter buys on FAISS files, measured in
 * one run: per index file, each chunk compressed alone, the stored ratio of
 * plain zstd against faissfs's chunk encoder, compression and decompression
 * speed on one core, and what the writer's choices (phase guess against trying
 * every phase, level 1 against 3) cost.  Prints markdown tables.
 *
 *   build/bench/bench_compress [-c CHUNK_SIZE] [-r REPS] [FILE|DIR ...]
 *
 * Compression: the fastest of REPS (default 3) passes over the file.
 * Decompression: plain zstd and faissfs decode each chunk in turn, 2 * REPS + 1
 * times, the fastest of each counts (the same chunk, the same cache state).
 *
 * Default input: /var/tmp/faissfs-bench/data/types (bench/gen_bench_data.py),
 * files in the order of the README table.  Figures are only comparable within
 * one run: on a shared machine, run it when it is quiet.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "store/store_internal.h"

#define DEFAULT_DIR "/var/tmp/faissfs-bench/data/types"

static const char *const default_types[] = {"Flat", "IVFFlat", "IVFPQ",	     "IVF-SQ8",	 "HNSWFlat",
					    "PQ",   "SQ8",     "BinaryFlat", "BinaryIVF"};

struct input {
	char name[64];
	uint8_t *data;
	size_t len;
};

/* One way of storing the chunks, and what it gave. */
struct result {
	uint64_t stored;
	uint64_t filtered; /* chunks */
	double comp_s;	   /* best compression pass */
	double dec_s;	   /* best decompression pass */
};

struct frames {
	uint8_t **f;
	uint32_t *len;
	uint8_t *filter;
	uint8_t *kind;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int read_input(const char *path, struct input *in)
{
	FILE *f = fopen(path, "rb");
	const char *base = strrchr(path, '/');
	long n;

	if (!f) {
		fprintf(stderr,
			"bench_compress: %s: %s (make the data with "
			"bench/gen_bench_data.py, see bench/bench.sh)\n",
			path, strerror(errno));
		return -1;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	in->len = (size_t)n;
	in->data = malloc(in->len ? in->len : 1);
	if (!in->data || fread(in->data, 1, in->len, f) != in->len) {
		fprintf(stderr, "bench_compress: cannot read %s\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	snprintf(in->name, sizeof(in->name), "%s", base ? base + 1 : path);
	if (strlen(in->name) > 6 && !strcmp(in->name + strlen(in->name) - 6, ".faiss"))
		in->name[strlen(in->name) - 6] = 0;
	return 0;
}

static size_t nchunks(const struct input *in, size_t cs)
{
	return (in->len + cs - 1) / cs;
}

static size_t chunk_len(const struct input *in, size_t cs, size_t i)
{
	return in->len - i * cs < cs ? in->len - i * cs : cs;
}

static void frames_free(struct frames *fr, size_t n)
{
	for (size_t i = 0; fr->f && i < n; i++)
		free(fr->f[i]);
	free(fr->f);
	free(fr->len);
	free(fr->filter);
	free(fr->kind);
}

/* Plain zstd at @level, each chunk alone, every frame kept in @fr as zstd wrote
 * it.  The fastest of @reps passes counts. */
static void run_zstd(const struct input *in, size_t cs, int level, int reps, struct result *r,
		     struct frames *fr)
{
	ZSTD_CCtx *zc = ZSTD_createCCtx();
	size_t n = nchunks(in, cs), bound = ZSTD_compressBound(cs);

	ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, level);
	fr->f = calloc(n, sizeof(*fr->f));
	fr->len = calloc(n, sizeof(*fr->len));
	memset(r, 0, sizeof(*r));
	for (int rep = 0; rep < reps; rep++) {
		double t = now();

		r->stored = 0;
		for (size_t i = 0; i < n; i++) {
			if (!fr->f[i])
				fr->f[i] = malloc(bound);
			fr->len[i] = (uint32_t)ZSTD_compress2(
				zc, fr->f[i], bound, in->data + i * cs, chunk_len(in, cs, i));
			r->stored += fr->len[i];
		}
		t = now() - t;
		if (!rep || t < r->comp_s)
			r->comp_s = t;
	}
	ZSTD_freeCCtx(zc);
}

/* faissfs's encoder (store_chunk_encode: holes, 1/8 rule, filters per @search),
 * the fastest of @reps passes; the frames are kept in @fr unless it is NULL.
 * Returns 0 or -1. */
static int run_faissfs(const struct input *in, size_t cs, int level,
		       enum store_filter_search search, int reps, struct result *r,
		       struct frames *fr)
{
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	size_t n = nchunks(in, cs);
	int ret = 0;

	if (fr) {
		fr->f = calloc(n, sizeof(*fr->f));
		fr->len = calloc(n, sizeof(*fr->len));
		fr->filter = calloc(n, 1);
		fr->kind = calloc(n, 1);
	}
	store_cctx_set_filters(cc, search);
	memset(r, 0, sizeof(*r));
	for (int rep = 0; rep < reps && !ret; rep++) {
		double t = now();

		r->stored = r->filtered = 0;
		for (size_t i = 0; i < n; i++) {
			if (store_chunk_encode(cc, in->data + i * cs, chunk_len(in, cs, i), level,
					       &c)) {
				fprintf(stderr, "bench_compress: %s: encoding failed\n", in->name);
				ret = -1;
				break;
			}
			r->stored += c.stored_len;
			r->filtered += c.filter != FMT_FILTER_NONE;
			if (rep == 0 && fr) {
				fr->f[i] = malloc(c.stored_len);
				memcpy(fr->f[i], c.data, c.stored_len);
				fr->len[i] = c.stored_len;
				fr->filter[i] = c.filter;
				fr->kind[i] = c.kind;
			}
		}
		t = now() - t;
		if (!rep || t < r->comp_s)
			r->comp_s = t;
	}
	store_chunk_release(&c);
	store_cctx_free(cc);
	return ret;
}

/* Decodes every chunk from the plain zstd frames @fz and from faissfs's frames
 * @ff (with the un-filter; holes are a memset, as in the reader), the two one
 * after the other on the same chunk, @reps times; the fastest time of each
 * chunk counts, which keeps a busy machine's hiccups out of the comparison.
 * faissfs's bytes are checked against the input.  Returns 0 or -1. */
static int decode_compare(const struct input *in, size_t cs, const struct frames *fz,
			  const struct frames *ff, int reps, struct result *rz, struct result *rf)
{
	ZSTD_DCtx *zd = ZSTD_createDCtx();
	struct store_dctx *dc = store_dctx_new();
	uint8_t *out = malloc(cs);
	const char *bad = NULL;
	int ret = 0;

	rz->dec_s = rf->dec_s = 0;
	for (size_t i = 0; i < nchunks(in, cs) && !ret; i++) {
		size_t len = chunk_len(in, cs, i);
		double bz = 0, bf = 0, t;

		for (int rep = 0; rep < reps && !ret; rep++) {
			t = now();
			ZSTD_decompressDCtx(zd, out, len, fz->f[i], fz->len[i]);
			t = now() - t;
			bz = !rep || t < bz ? t : bz;
			t = now();
			if (ff->kind[i] == FMT_CHUNK_HOLE)
				memset(out, 0, len);
			else
				ret = store_chunk_decode(dc, ff->filter[i], ff->f[i], ff->len[i],
							 out, len, &bad);
			t = now() - t;
			bf = !rep || t < bf ? t : bf;
		}
		if (!ret && memcmp(out, in->data + i * cs, len))
			ret = -1;
		rz->dec_s += bz;
		rf->dec_s += bf;
	}
	if (ret)
		fprintf(stderr, "bench_compress: %s: decoding failed (%s)\n", in->name,
			bad ? bad : "wrong bytes");
	free(out);
	ZSTD_freeDCtx(zd);
	store_dctx_free(dc);
	return ret;
}

static double ratio(const struct input *in, const struct result *r)
{
	return r->stored ? (double)in->len / (double)r->stored : 0;
}

static double mbs(const struct input *in, double s)
{
	return s > 0 ? (double)in->len / 1e6 / s : 0;
}

static int add_path(const char *path, struct input **ins, size_t *nin)
{
	DIR *d = opendir(path);
	struct dirent *de;

	if (!d) {
		*ins = realloc(*ins, (*nin + 1) * sizeof(**ins));
		if (read_input(path, &(*ins)[*nin]))
			return -1;
		(*nin)++;
		return 0;
	}
	/* A directory: the default types first, in table order, if present. */
	for (size_t k = 0; k < sizeof(default_types) / sizeof(default_types[0]); k++) {
		char p[4096];

		snprintf(p, sizeof(p), "%s/%s.faiss", path, default_types[k]);
		if (access(p, R_OK) == 0 && add_path(p, ins, nin))
			return -1;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		bool known = false;

		for (size_t k = 0; k < sizeof(default_types) / sizeof(default_types[0]); k++)
			if (l == strlen(default_types[k]) + 6 &&
			    !strncmp(de->d_name, default_types[k], l - 6))
				known = true;
		if (known || l < 7 || strcmp(de->d_name + l - 6, ".faiss"))
			continue;
		char p[4096];

		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (add_path(p, ins, nin))
			return -1;
	}
	closedir(d);
	return 0;
}

/* The "all" row: every file together, as one store of them would be. */
static void print_total(const struct input *ins, size_t nin, size_t cs, const struct result *z1,
			const struct result *z3, const struct result *v10, const struct result *g1)
{
	struct result t[4] = {0};
	const struct result *r[4] = {z1, z3, v10, g1};
	struct input all = {.len = 0};
	uint64_t n = 0, filtered = 0;

	for (size_t i = 0; i < nin; i++) {
		all.len += ins[i].len;
		n += nchunks(&ins[i], cs);
		filtered += g1[i].filtered;
		for (int k = 0; k < 4; k++) {
			t[k].stored += r[k][i].stored;
			t[k].comp_s += r[k][i].comp_s;
			t[k].dec_s += r[k][i].dec_s;
		}
	}
	printf("| **all** | %.1f | %.3f | %.3f | %.3f | **%.3f** | %.0f%% | %.0f | %.0f | %.0f | "
	       "%.0f |\n",
	       (double)all.len / 1048576, ratio(&all, &t[0]), ratio(&all, &t[1]),
	       ratio(&all, &t[2]), ratio(&all, &t[3]), 100.0 * (double)filtered / (double)n,
	       mbs(&all, t[0].comp_s), mbs(&all, t[3].comp_s), mbs(&all, t[0].dec_s),
	       mbs(&all, t[3].dec_s));
}

int main(int argc, char **argv)
{
	size_t cs = FMT_CHUNK_DEFAULT, nin = 0;
	int reps = 3, opt, level = FMT_LEVEL_DEFAULT;
	struct input *ins = NULL;
	struct result *z1, *z3, *v10, *g1, *a1, *g3;
	int ret = 0;

	while ((opt = getopt(argc, argv, "c:r:h")) != -1) {
		switch (opt) {
		case 'c':
			cs = strtoul(optarg, NULL, 0);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-c CHUNK_SIZE] [-r REPS] [FILE|DIR ...]\n"
				"default input: " DEFAULT_DIR "\n",
				argv[0]);
			return 2;
		}
	}
	if (cs < FMT_CHUNK_MIN || cs > FMT_CHUNK_MAX || (cs & (cs - 1)) || reps < 1) {
		fprintf(stderr,
			"bench_compress: chunk size must be a power of two from %u to %u, "
			"reps >= 1\n",
			FMT_CHUNK_MIN, FMT_CHUNK_MAX);
		return 2;
	}
	if (optind == argc)
		ret = add_path(DEFAULT_DIR, &ins, &nin);
	for (int i = optind; i < argc && !ret; i++)
		ret = add_path(argv[i], &ins, &nin);
	if (ret || !nin) {
		if (!nin)
			fprintf(stderr, "bench_compress: no .faiss files found (make them with "
					"bench/gen_bench_data.py)\n");
		return 1;
	}
	z1 = calloc(nin, sizeof(*z1));
	z3 = calloc(nin, sizeof(*z3));
	v10 = calloc(nin, sizeof(*v10));
	g1 = calloc(nin, sizeof(*g1));
	a1 = calloc(nin, sizeof(*a1));
	g3 = calloc(nin, sizeof(*g3));
	for (size_t i = 0; i < nin && !ret; i++) {
		struct frames fz = {0}, ff = {0};
		size_t n = nchunks(&ins[i], cs);

		fprintf(stderr, "bench_compress: %s (%.1f MiB)...\n", ins[i].name,
			(double)ins[i].len / 1048576);
		run_zstd(&ins[i], cs, 3, 1, &z3[i], &fz);
		frames_free(&fz, n);
		memset(&fz, 0, sizeof(fz));
		run_zstd(&ins[i], cs, level, reps, &z1[i], &fz);
		ret = run_faissfs(&ins[i], cs, level, STORE_FILTERS_GUESS, reps, &g1[i], &ff);
		if (!ret)
			ret = decode_compare(&ins[i], cs, &fz, &ff, 2 * reps + 1, &z1[i], &g1[i]);
		frames_free(&fz, n);
		frames_free(&ff, n);
		if (!ret)
			ret = run_faissfs(&ins[i], cs, 3, STORE_FILTERS_OFF, 1, &v10[i], NULL);
		if (!ret)
			ret = run_faissfs(&ins[i], cs, level, STORE_FILTERS_ALL, 1, &a1[i], NULL);
		if (!ret)
			ret = run_faissfs(&ins[i], cs, 3, STORE_FILTERS_GUESS, 1, &g3[i], NULL);
	}
	if (ret)
		return 1;

	printf("Chunk size %zu KiB, each chunk compressed alone, one core; ratio = logical / "
	       "stored bytes.\nzstd -N: plain ZSTD_compress2 per chunk at level N (frames kept "
	       "whatever their size).\nfaissfs 1.0: level 3, no filter, raw unless 1/8 saved.  "
	       "faissfs: level %d, byte planes when smaller, same 1/8 rule.\nMB/s: logical "
	       "bytes; decompression of faissfs includes the un-filter.\n\n",
	       cs / 1024, level);
	printf("| Index | MiB | zstd -%d | zstd -3 | faissfs 1.0 | **faissfs** | filtered chunks | "
	       "comp MB/s zstd -%d | comp MB/s faissfs | dec MB/s zstd -%d | dec MB/s faissfs "
	       "|\n",
	       level, level, level);
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t i = 0; i < nin; i++) {
		size_t n = nchunks(&ins[i], cs);

		printf("| %s | %.1f | %.3f | %.3f | %.3f | **%.3f** | %.0f%% | %.0f | %.0f | %.0f "
		       "| "
		       "%.0f |\n",
		       ins[i].name, (double)ins[i].len / 1048576, ratio(&ins[i], &z1[i]),
		       ratio(&ins[i], &z3[i]), ratio(&ins[i], &v10[i]), ratio(&ins[i], &g1[i]),
		       100.0 * (double)g1[i].filtered / (double)n, mbs(&ins[i], z1[i].comp_s),
		       mbs(&ins[i], g1[i].comp_s), mbs(&ins[i], z1[i].dec_s),
		       mbs(&ins[i], g1[i].dec_s));
	}
	print_total(ins, nin, cs, z1, z3, v10, g1);

	printf("\nThe writer's choices (ratio, compression MB/s):\n\n");
	printf("| Index | planes at guessed phase, L%d | every phase tried, L%d | guessed phase, "
	       "L3 |\n",
	       level, level);
	printf("|---|---:|---:|---:|\n");
	for (size_t i = 0; i < nin; i++)
		printf("| %s | %.3f (%.0f) | %.3f (%.0f) | %.3f (%.0f) |\n", ins[i].name,
		       ratio(&ins[i], &g1[i]), mbs(&ins[i], g1[i].comp_s), ratio(&ins[i], &a1[i]),
		       mbs(&ins[i], a1[i].comp_s), ratio(&ins[i], &g3[i]),
		       mbs(&ins[i], g3[i].comp_s));

	printf("\nTargets:\n");
	for (size_t i = 0; i < nin; i++) {
		double want = 0, got = ratio(&ins[i], &g1[i]);
		double dec = z1[i].dec_s > 0 ? g1[i].dec_s / z1[i].dec_s : 0;

		if (!strcmp(ins[i].name, "Flat") || !strcmp(ins[i].name, "IVFFlat"))
			want = 1.15;
		else if (!strcmp(ins[i].name, "HNSWFlat"))
			want = 1.40;
		if (want > 0)
			printf("- %s ratio %.3f, target >= %.2f: %s\n", ins[i].name, got, want,
			       got >= want ? "met" : "MISSED");
		/* Identical frames measure up to 3% apart from one run to the next. */
		if (dec <= 1.0)
			printf("- %s decompression time %.2fx that of zstd -%d: met\n", ins[i].name,
			       dec, level);
		else if (dec <= 1.03)
			printf("- %s decompression time %.2fx that of zstd -%d: equal within the "
			       "noise (3%%)\n",
			       ins[i].name, dec, level);
		else
			printf("- %s decompression time %.2fx that of zstd -%d: MISSED by %.0f%%\n",
			       ins[i].name, dec, level, 100 * (dec - 1));
	}
	for (size_t i = 0; i < nin; i++)
		free(ins[i].data);
	free(ins);
	free(z1);
	free(z3);
	free(v10);
	free(g1);
	free(a1);
	free(g3);
	return 0;
}
