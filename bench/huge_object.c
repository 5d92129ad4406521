/* huge_object.c - a billion-vector-sized FAISS file in seconds, and its check.
 *
 *   huge_object write STORE DIR NAME N [D] [EVERY]
 *       writes STORE/DIR/NAME (DIR is created) as an object holding an IndexFlatL2
 *       of N vectors of D floats (default 128): the 45-byte FAISS header, then
 *       N * D * 4 bytes of vectors that are zero except every EVERY-th chunk
 *       (default 1024), which holds a pattern: each aligned 8-byte word is its
 *       own offset, little-endian.  Zero chunks are written as holes without
 *       being hashed again, so 512 GB take seconds, not the hour a read of them
 *       would.
 *   huge_object check FILE N [D] [EVERY] [READS] [SEED]
 *       opens FILE (e.g. on a mount), checks its size and header, then preads
 *       READS (default 2000) ranges of 1 byte to 1 MiB at random offsets over the
 *       whole file and compares them with what write put there.
 *
 * Exit status 0 when all is well; 1 with a message naming what differed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/format.h"
#include "store/store.h"

#define HDR_LEN 45u
#define CS	FMT_CHUNK_DEFAULT

struct shape {
	uint64_t n, size, every;
	int d;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The 45-byte IndexFlatL2 header: fourcc, d, ntotal, two dummies, is_trained,
 * metric (1 = L2), then the length of the code vector in bytes. */
static void header(uint8_t out[HDR_LEN], const struct shape *s)
{
	memcpy(out, "IxF2", 4);
	fmt_put32(out + 4, (uint32_t)s->d);
	fmt_put64(out + 8, s->n);
	fmt_put64(out + 16, 1u << 20);
	fmt_put64(out + 24, 1u << 20);
	out[32] = 1;
	fmt_put32(out + 33, 1);
	fmt_put64(out + 37, s->n * (uint64_t)s->d * 4);
}

static bool chunk_has_data(const struct shape *s, uint64_t i)
{
	return i == 0 || i % s->every == 0;
}

/* The bytes [off, off + len) of the file. */
static void expected(const struct shape *s, uint8_t *dst, uint64_t off, size_t len)
{
	uint8_t hdr[HDR_LEN];

	header(hdr, s);
	for (size_t k = 0; k < len; k++) {
		uint64_t x = off + k;

		if (x < HDR_LEN)
			dst[k] = hdr[x];
		else if (x / CS != 0 && chunk_has_data(s, x / CS))
			dst[k] = (uint8_t)((x & ~7ull) >> (8 * (x & 7)));
		else
			dst[k] = 0;
	}
}

static int parse_shape(int argc, char **argv, int first, struct shape *s)
{
	s->n = argc > first ? strtoull(argv[first], NULL, 0) : 0;
	s->d = argc > first + 1 ? atoi(argv[first + 1]) : 128;
	s->every = argc > first + 2 ? strtoull(argv[first + 2], NULL, 0) : 1024;
	if (!s->n || s->d <= 0 || !s->every) {
		fprintf(stderr, "huge_object: N, D and EVERY must be positive numbers\n");
		return -1;
	}
	s->size = HDR_LEN + s->n * (uint64_t)s->d * 4;
	return 0;
}

static int mkdir_p(int root, const char *dir)
{
	char *p = strdup(dir), *q;
	int fd = dup(root), nfd;

	for (q = strtok(p, "/"); q && fd >= 0; q = strtok(NULL, "/")) {
		if (mkdirat(fd, q, 0755) && errno != EEXIST) {
			close(fd);
			fd = -1;
			break;
		}
		nfd = openat(fd, q, O_RDONLY | O_DIRECTORY);
		close(fd);
		fd = nfd;
	}
	free(p);
	return fd;
}

static int do_write(const char *stpath, const char *dir, const char *name, const struct shape *s)
{
	struct store_params p = {.chunk_size = CS, .level = 1};
	struct store *st = NULL;
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk hole = {0}, data = {0};
	struct store_writer *w = NULL;
	uint64_t nchunks = s->size / CS + (s->size % CS != 0);
	uint8_t *buf = calloc(1, CS);
	double t0 = now();
	int dfd = -1, ret;

	ret = store_open(stpath, 0, &st);
	if (ret || !cc || !buf) {
		fprintf(stderr, "huge_object: cannot open store %s: %s\n", stpath, strerror(-ret));
		return 1;
	}
	dfd = mkdir_p(store_root_fd(st), dir);
	ret = dfd < 0 ? -errno : store_chunk_encode(cc, buf, CS, 1, &hole);
	if (!ret)
		ret = store_writer_new(st, &p, &w);
	for (uint64_t i = 0; !ret && i < nchunks; i++) {
		size_t len = i == nchunks - 1 ? (size_t)(s->size - i * CS) : CS;

		if (len == CS && !chunk_has_data(s, i)) {
			ret = store_writer_append_chunk(w, &hole);
			continue;
		}
		expected(s, buf, i * CS, len);
		if (i == 0)
			store_writer_set_head(w, buf, len);
		ret = store_chunk_encode(cc, buf, len, 1, &data);
		if (!ret)
			ret = store_writer_append_chunk(w, &data);
	}
	if (!ret) {
		ret = store_writer_commit(w, dfd, name, 0644, NULL);
		w = NULL;
	}
	if (w)
		store_writer_abort(w);
	if (ret)
		fprintf(stderr, "huge_object: writing %s/%s failed: %s\n", dir, name,
			strerror(-ret));
	else
		printf("wrote %s/%s: %" PRIu64 " bytes (%" PRIu64 " vectors of d %d), %" PRIu64
		       " chunks, in %.2f s\n",
		       dir, name, s->size, s->n, s->d, nchunks, now() - t0);
	if (dfd >= 0)
		close(dfd);
	store_chunk_release(&hole);
	store_chunk_release(&data);
	store_cctx_free(cc);
	store_close(st);
	free(buf);
	return ret ? 1 : 0;
}

static uint64_t rnd(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int do_check(const char *path, const struct shape *s, int reads, uint64_t seed)
{
	size_t max = 1u << 20;
	uint8_t *got = malloc(max), *want = malloc(max);
	struct stat stb;
	double t0 = now(), t_open;
	uint64_t bytes = 0;
	int fd = open(path, O_RDONLY), bad = 0;

	if (fd < 0 || fstat(fd, &stb) || !got || !want) {
		fprintf(stderr, "huge_object: cannot open %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((uint64_t)stb.st_size != s->size) {
		fprintf(stderr, "huge_object: %s is %jd bytes, expected %" PRIu64 "\n", path,
			(intmax_t)stb.st_size, s->size);
		return 1;
	}
	if (pread(fd, got, HDR_LEN, 0) != HDR_LEN) {
		fprintf(stderr, "huge_object: cannot read the header of %s\n", path);
		return 1;
	}
	expected(s, want, 0, HDR_LEN);
	if (memcmp(got, want, HDR_LEN)) {
		fprintf(stderr, "huge_object: the FAISS header of %s differs\n", path);
		return 1;
	}
	t_open = now() - t0;
	t0 = now();
	for (int k = 0; k < reads && !bad; k++) {
		uint64_t r = rnd(&seed), off;
		size_t len = 1 + (size_t)(rnd(&seed) % max);
		ssize_t n;

		/* Half near a data chunk, so most compared bytes are not zeros. */
		if (k % 2)
			off = (r % (s->size / CS / s->every + 1)) * s->every * CS + r % (4 * CS);
		else
			off = r % s->size;
		if (off >= s->size)
			off = s->size - 1;
		if (len > s->size - off)
			len = (size_t)(s->size - off);
		n = pread(fd, got, len, (off_t)off);
		expected(s, want, off, len);
		if (n != (ssize_t)len || memcmp(got, want, len)) {
			fprintf(stderr,
				"huge_object: %s: %zu bytes at offset %" PRIu64 " differ "
				"(read returned %zd)\n",
				path, len, off, n);
			bad = 1;
		}
		bytes += len;
	}
	if (!bad)
		printf("checked %s: open + header %.1f ms; %d random reads (%.1f MiB) over "
		       "%" PRIu64 " bytes in %.2f s (%.2f ms per read)\n",
		       path, t_open * 1e3, reads, bytes / 1048576.0, s->size, now() - t0,
		       (now() - t0) * 1e3 / reads);
	close(fd);
	free(got);
	free(want);
	return bad;
}

int main(int argc, char **argv)
{
	struct shape s;

	if (argc >= 6 && !strcmp(argv[1], "write")) {
		if (parse_shape(argc, argv, 5, &s))
			return 2;
		return do_write(argv[2], argv[3], argv[4], &s);
	}
	if (argc >= 4 && !strcmp(argv[1], "check")) {
		if (parse_shape(argc, argv, 3, &s))
			return 2;
		return do_check(argv[2], &s, argc > 6 ? atoi(argv[6]) : 2000,
				argc > 7 ? strtoull(argv[7], NULL, 0) : 1);
	}
	fprintf(stderr, "usage: huge_object write STORE DIR NAME N [D] [EVERY]\n"
			"       huge_object check FILE N [D] [EVERY] [READS] [SEED]\n");
	return 2;
}
