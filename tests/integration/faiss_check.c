/* faiss_check.c - reads a FAISS index through the FAISS C API twice, from its original
 * on plain disk and from a copy (typically through a faissfs mount), searches both
 * with the same queries and requires identical ids and distances, bit for bit.
 *
 * The copy is read once with io_flags 0 (plain reads) and once with IO_FLAG_MMAP,
 * which makes FAISS mmap() the file for IVF inverted lists (other types ignore it).
 *
 * usage: faiss_check [-b] QUERIES K ORIGINAL COPY
 *   -b       binary index (faiss_read_index_binary_fname); QUERIES is raw bytes,
 *            nq * d/8 of them; otherwise QUERIES is .fvecs (int32 d, then d floats)
 * Exit status 0 if every comparison holds, 1 otherwise (each difference on stderr),
 * 2 on usage errors.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/IndexBinary_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>

/* faiss::IO_FLAG_MMAP (index_io.h): IO_FLAG_SKIP_IVF_DATA | 0x646f0000.  The C API
 * header's FAISS_IO_FLAG_MMAP (1) is not that value, so we spell it out. */
#define CHECK_IO_FLAG_MMAP (0x646f0000 | 8)

struct queries {
	void *data;
	size_t bytes;
	int d; /* float queries only */
	long nq;
};

/* One index, float or binary, and what a search of it returned. */
struct loaded {
	FaissIndex *f;
	FaissIndexBinary *b;
	idx_t ntotal;
	int d;
	idx_t *labels;
	void *dist; /* float or int32_t, nq * k */
};

static int read_file(const char *path, struct queries *q)
{
	FILE *f = fopen(path, "rb");
	long n;

	if (!f) {
		fprintf(stderr, "faiss_check: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "faiss_check: cannot size %s: %s\n", path, strerror(errno));
		fclose(f);
		return -1;
	}
	q->bytes = (size_t)n;
	q->data = malloc(q->bytes ? q->bytes : 1);
	if (!q->data || fread(q->data, 1, q->bytes, f) != q->bytes) {
		fprintf(stderr, "faiss_check: cannot read %s\n", path);
		fclose(f);
		return -1;
	}
	fclose(f);
	return 0;
}

/* Turns .fvecs rows (int32 d + d floats) into a dense nq x d float array in place. */
static int unpack_fvecs(struct queries *q, const char *path)
{
	int32_t d;
	size_t row;
	float *dst = q->data;

	if (q->bytes < 4) {
		fprintf(stderr, "faiss_check: %s is not .fvecs (too short)\n", path);
		return -1;
	}
	memcpy(&d, q->data, 4);
	row = 4 + 4 * (size_t)d;
	if (d <= 0 || q->bytes % row) {
		fprintf(stderr, "faiss_check: %s is not .fvecs (d=%d, %zu bytes)\n", path, d,
			q->bytes);
		return -1;
	}
	q->d = d;
	q->nq = (long)(q->bytes / row);
	for (long i = 0; i < q->nq; i++)
		memmove(dst + i * d, (char *)q->data + i * row + 4, 4 * (size_t)d);
	return 0;
}

static void loaded_free(struct loaded *l)
{
	faiss_Index_free(l->f);
	faiss_IndexBinary_free(l->b);
	free(l->labels);
	free(l->dist);
	memset(l, 0, sizeof(*l));
}

/* Reads @path with @flags and searches @q, @k results each.  Returns 0 or -1 (logged). */
static int load_and_search(const char *path, int flags, bool binary, const struct queries *q, int k,
			   struct loaded *l)
{
	const char *what = "read";
	size_t n = (size_t)q->nq * (size_t)k;
	int err;

	memset(l, 0, sizeof(*l));
	if (binary)
		err = faiss_read_index_binary_fname(path, flags, &l->b);
	else
		err = faiss_read_index_fname(path, flags, &l->f);
	if (err)
		goto fail;
	l->labels = calloc(n, sizeof(idx_t));
	l->dist = calloc(n, 4);
	if (!l->labels || !l->dist) {
		fprintf(stderr, "faiss_check: out of memory\n");
		return -1;
	}
	what = "search";
	if (binary) {
		l->d = faiss_IndexBinary_d(l->b);
		l->ntotal = faiss_IndexBinary_ntotal(l->b);
		if ((size_t)l->d / 8 * (size_t)q->nq != q->bytes) {
			fprintf(stderr, "faiss_check: %zu query bytes do not fit d=%d\n", q->bytes,
				l->d);
			return -1;
		}
		err = faiss_IndexBinary_search(l->b, q->nq, q->data, k, l->dist, l->labels);
	} else {
		l->d = faiss_Index_d(l->f);
		l->ntotal = faiss_Index_ntotal(l->f);
		if (l->d != q->d) {
			fprintf(stderr, "faiss_check: index d=%d, queries d=%d\n", l->d, q->d);
			return -1;
		}
		err = faiss_Index_search(l->f, q->nq, q->data, k, l->dist, l->labels);
	}
	if (err)
		goto fail;
	return 0;
fail:
	fprintf(stderr, "faiss_check: %s of %s (io_flags 0x%x) failed: %s\n", what, path, flags,
		faiss_get_last_error());
	return -1;
}

int main(int argc, char *argv[])
{
	static const int flag_list[] = {0, CHECK_IO_FLAG_MMAP};
	struct queries q = {0};
	struct loaded orig = {0}, copy = {0};
	const char *qpath, *opath, *cpath;
	bool binary = false;
	int argi = 1, k, rc = 1;

	if (argc > 1 && !strcmp(argv[1], "-b")) {
		binary = true;
		argi++;
	}
	if (argc - argi != 4) {
		fprintf(stderr, "usage: faiss_check [-b] QUERIES K ORIGINAL COPY\n");
		return 2;
	}
	qpath = argv[argi];
	k = atoi(argv[argi + 1]);
	opath = argv[argi + 2];
	cpath = argv[argi + 3];
	if (k <= 0) {
		fprintf(stderr, "faiss_check: K must be > 0\n");
		return 2;
	}
	if (read_file(qpath, &q))
		goto out;
	if (!binary && unpack_fvecs(&q, qpath))
		goto out;
	if (binary) {
		/* Read the original first to learn the code size. */
		FaissIndexBinary *b = NULL;

		if (faiss_read_index_binary_fname(opath, 0, &b)) {
			fprintf(stderr, "faiss_check: read of %s failed: %s\n", opath,
				faiss_get_last_error());
			goto out;
		}
		q.nq = (long)(q.bytes / ((size_t)faiss_IndexBinary_d(b) / 8));
		faiss_IndexBinary_free(b);
	}
	if (load_and_search(opath, 0, binary, &q, k, &orig))
		goto out;

	rc = 0;
	for (size_t i = 0; i < sizeof(flag_list) / sizeof(flag_list[0]); i++) {
		int flags = flag_list[i];
		size_t n = (size_t)q.nq * (size_t)k;

		if (load_and_search(cpath, flags, binary, &q, k, &copy)) {
			rc = 1;
			continue;
		}
		if (copy.d != orig.d || copy.ntotal != orig.ntotal) {
			fprintf(stderr,
				"faiss_check: %s io_flags 0x%x: d %d ntotal %lld, original "
				"d %d ntotal %lld\n",
				cpath, flags, copy.d, (long long)copy.ntotal, orig.d,
				(long long)orig.ntotal);
			rc = 1;
		} else if (memcmp(copy.labels, orig.labels, n * sizeof(idx_t))) {
			fprintf(stderr,
				"faiss_check: %s io_flags 0x%x: ids differ from the original\n",
				cpath, flags);
			rc = 1;
		} else if (memcmp(copy.dist, orig.dist, n * 4)) {
			fprintf(stderr,
				"faiss_check: %s io_flags 0x%x: distances differ from the "
				"original\n",
				cpath, flags);
			rc = 1;
		} else {
			printf("faiss_check: ok %s io_flags=0x%x d=%d ntotal=%lld nq=%ld k=%d "
			       "first id %lld\n",
			       cpath, flags, copy.d, (long long)copy.ntotal, q.nq, k,
			       (long long)copy.labels[0]);
		}
		loaded_free(&copy);
	}
out:
	loaded_free(&orig);
	loaded_free(&copy);
	free(q.data);
	return rc;
}
