/* capi_smoke.c - proves that faiss_capi (FAISS's C API over the system libfaiss.a)
 * links and works: builds an index with faiss_index_factory, adds vectors, writes
 * it with faiss_write_index_fname, reads it back with faiss_read_index_fname and
 * checks that both answer a search identically.
 *
 * usage: capi_smoke DIR   (writes DIR/capi_smoke.faiss)
 * Exit status 0 on success, 1 with a message on stderr otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#define D  16
#define NB 500
#define NQ 5
#define K  4

static int fail(const char *what)
{
	const char *msg = faiss_get_last_error();

	fprintf(stderr, "capi_smoke: %s failed: %s\n", what, msg ? msg : "(no FAISS message)");
	return 1;
}

/* Deterministic pseudo-random floats in [0, 1). */
static float next_float(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (float)((*s >> 40) & 0xffffff) / (float)(1 << 24);
}

int main(int argc, char *argv[])
{
	static float xb[NB * D], xq[NQ * D];
	float dist_a[NQ * K], dist_b[NQ * K];
	idx_t lab_a[NQ * K], lab_b[NQ * K];
	FaissIndex *a = NULL, *b = NULL;
	char path[4096];
	uint64_t seed = 1234;
	int rc = 1;

	if (argc != 2) {
		fprintf(stderr, "usage: capi_smoke DIR\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/capi_smoke.faiss", argv[1]);
	for (int i = 0; i < NB * D; i++)
		xb[i] = next_float(&seed);
	for (int i = 0; i < NQ * D; i++)
		xq[i] = next_float(&seed);

	if (faiss_index_factory(&a, D, "IVF4,Flat", METRIC_L2)) {
		rc = fail("faiss_index_factory(IVF4,Flat)");
		goto out;
	}
	if (faiss_Index_train(a, NB, xb)) {
		rc = fail("faiss_Index_train");
		goto out;
	}
	if (faiss_Index_add(a, NB, xb)) {
		rc = fail("faiss_Index_add");
		goto out;
	}
	if (faiss_write_index_fname(a, path)) {
		rc = fail("faiss_write_index_fname");
		goto out;
	}
	if (faiss_read_index_fname(path, 0, &b)) {
		rc = fail("faiss_read_index_fname");
		goto out;
	}
	if (faiss_Index_ntotal(b) != NB || faiss_Index_d(b) != D) {
		fprintf(stderr, "capi_smoke: read back ntotal %lld d %d, wrote %d %d\n",
			(long long)faiss_Index_ntotal(b), faiss_Index_d(b), NB, D);
		goto out;
	}
	if (faiss_Index_search(a, NQ, xq, K, dist_a, lab_a) ||
	    faiss_Index_search(b, NQ, xq, K, dist_b, lab_b)) {
		rc = fail("faiss_Index_search");
		goto out;
	}
	if (memcmp(lab_a, lab_b, sizeof(lab_a)) || memcmp(dist_a, dist_b, sizeof(dist_a))) {
		fprintf(stderr, "capi_smoke: the index read back answers differently\n");
		goto out;
	}
	printf("capi_smoke: ok (IVF4,Flat d=%d ntotal=%d written, read back, %d searches equal)\n",
	       D, NB, NQ);
	rc = 0;
out:
	faiss_Index_free(a); /* NULL is fine */
	faiss_Index_free(b);
	return rc;
}
