/* faiss_header.c - recognising a FAISS 1.7.3 index from its first bytes.
 *
 * FAISS writes an index as a fourcc followed by a fixed header (little-endian,
 * packed).  Float indices: d i32, ntotal i64, two i64 unused, is_trained u8,
 * metric i32.  Binary indices ("IB.."): d i32, code_size i32, ntotal i64,
 * is_trained u8, metric i32.  IndexLattice ("IxLa") puts four i32 before its
 * float header.  Only the header is read: this is a label, never a validation of
 * the whole index.
 */
#include "store_internal.h"

#include <string.h>

struct faiss_type {
	char fourcc[5];
	const char *name;
};

/* Every index fourcc that FAISS 1.7.3 reads (faiss/impl/index_read.cpp). */
static const struct faiss_type float_types[] = {
	{"IxFI", "IndexFlatIP"},
	{"IxF2", "IndexFlatL2"},
	{"IxFl", "IndexFlat"},
	{"IxHE", "IndexLSH"},
	{"IxHe", "IndexLSH"},
	{"IxPQ", "IndexPQ"},
	{"IxPo", "IndexPQ"},
	{"IxPq", "IndexPQ"},
	{"IxRQ", "IndexResidualQuantizer"},
	{"IxRq", "IndexResidualQuantizer"},
	{"IxLS", "IndexLocalSearchQuantizer"},
	{"IxPR", "IndexProductResidualQuantizer"},
	{"IxPL", "IndexProductLocalSearchQuantizer"},
	{"ImRQ", "ResidualCoarseQuantizer"},
	{"ILfs", "IndexLocalSearchQuantizerFastScan"},
	{"IRfs", "IndexResidualQuantizerFastScan"},
	{"IPRf", "IndexProductResidualQuantizerFastScan"},
	{"IPLf", "IndexProductLocalSearchQuantizerFastScan"},
	{"IVLf", "IndexIVFLocalSearchQuantizerFastScan"},
	{"IVRf", "IndexIVFResidualQuantizerFastScan"},
	{"NPLf", "IndexIVFProductLocalSearchQuantizerFastScan"},
	{"NPRf", "IndexIVFProductResidualQuantizerFastScan"},
	{"IvFl", "IndexIVFFlat"},
	{"IvFL", "IndexIVFFlat"},
	{"IwFd", "IndexIVFFlatDedup"},
	{"IwFl", "IndexIVFFlat"},
	{"IxSQ", "IndexScalarQuantizer"},
	{"IxLa", "IndexLattice"},
	{"IvSQ", "IndexIVFScalarQuantizer"},
	{"IwSQ", "IndexIVFScalarQuantizer"},
	{"IwSq", "IndexIVFScalarQuantizer"},
	{"IwLS", "IndexIVFLocalSearchQuantizer"},
	{"IwRQ", "IndexIVFResidualQuantizer"},
	{"IwPL", "IndexIVFProductLocalSearchQuantizer"},
	{"IwPR", "IndexIVFProductResidualQuantizer"},
	{"IwSh", "IndexIVFSpectralHash"},
	{"IvPQ", "IndexIVFPQ"},
	{"IvQR", "IndexIVFPQR"},
	{"IwPQ", "IndexIVFPQ"},
	{"IwQR", "IndexIVFPQR"},
	{"IxPT", "IndexPreTransform"},
	{"Imiq", "MultiIndexQuantizer"},
	{"IxRF", "IndexRefine"},
	{"IxMp", "IndexIDMap"},
	{"IxM2", "IndexIDMap2"},
	{"Ix2L", "Index2Layer"},
	{"IHNf", "IndexHNSWFlat"},
	{"IHNp", "IndexHNSWPQ"},
	{"IHNs", "IndexHNSWSQ"},
	{"IHN2", "IndexHNSW2Level"},
	{"INSf", "IndexNSGFlat"},
	{"INSp", "IndexNSGPQ"},
	{"INSs", "IndexNSGSQ"},
	{"INNf", "IndexNNDescentFlat"},
	{"IPfs", "IndexPQFastScan"},
	{"IwPf", "IndexIVFPQFastScan"},
	{"IRMf", "IndexRowwiseMinMax"},
	{"IRMh", "IndexRowwiseMinMaxFP16"},
};

static const struct faiss_type binary_types[] = {
	{"IBxF", "IndexBinaryFlat"},	  {"IBwF", "IndexBinaryIVF"},
	{"IBFf", "IndexBinaryFromFloat"}, {"IBHf", "IndexBinaryHNSW"},
	{"IBMp", "IndexBinaryIDMap"},	  {"IBM2", "IndexBinaryIDMap2"},
	{"IBHh", "IndexBinaryHash"},	  {"IBHm", "IndexBinaryMultiHash"},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct faiss_type *lookup(const struct faiss_type *t, size_t n, const char *fourcc)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(t[i].fourcc, fourcc, 4) == 0)
			return &t[i];
	return NULL;
}

const char *store_faiss_type_name(const char *fourcc)
{
	const struct faiss_type *t;

	if (!fourcc || strnlen(fourcc, 5) != 4)
		return "unknown";
	t = lookup(float_types, N(float_types), fourcc);
	if (!t)
		t = lookup(binary_types, N(binary_types), fourcc);
	return t ? t->name : "unknown";
}

static bool metric_ok(int32_t m)
{
	return (m >= 0 && m <= 4) || (m >= 20 && m <= 22);
}

#define D_MAX (1 << 20)

void store_faiss_parse(const void *buf, size_t len, struct store_faiss_info *out)
{
	const uint8_t *p = buf;
	struct store_faiss_info fi = {0};
	size_t h; /* offset of the common header, after the fourcc and any prefix */

	memset(out, 0, sizeof(*out));
	if (!buf || len < 4)
		return;
	memcpy(fi.fourcc, p, 4);
	fi.fourcc[4] = '\0';
	if (lookup(binary_types, N(binary_types), fi.fourcc)) {
		/* d i32 @4, code_size i32 @8, ntotal i64 @12, is_trained u8 @20, metric @21 */
		if (len < 25)
			return;
		fi.binary = true;
		fi.d = (int32_t)fmt_get32(p + 4);
		fi.code_size = (int32_t)fmt_get32(p + 8);
		fi.ntotal = (int64_t)fmt_get64(p + 12);
		if (p[20] > 1)
			return;
		fi.is_trained = p[20];
		fi.metric = (int32_t)fmt_get32(p + 21);
		/* FAISS binary indices have d a multiple of 8 and code_size = d / 8. */
		if (fi.d <= 0 || fi.d > D_MAX || fi.d % 8 || fi.code_size != fi.d / 8)
			return;
	} else if (lookup(float_types, N(float_types), fi.fourcc)) {
		h = memcmp(fi.fourcc, "IxLa", 4) == 0 ? 4 + 16 : 4;
		/* d i32, ntotal i64, 2 x i64, is_trained u8, metric i32: 33 bytes */
		if (len < h + 33)
			return;
		fi.d = (int32_t)fmt_get32(p + h);
		fi.ntotal = (int64_t)fmt_get64(p + h + 4);
		if (p[h + 28] > 1)
			return;
		fi.is_trained = p[h + 28];
		fi.metric = (int32_t)fmt_get32(p + h + 29);
		if (fi.d <= 0 || fi.d > D_MAX)
			return;
	} else {
		return;
	}
	if (fi.ntotal < 0 || !metric_ok(fi.metric))
		return;
	fi.valid = true;
	*out = fi;
}

const char *store_faiss_metric_name(int32_t metric)
{
	switch (metric) {
	case 0:
		return "IP";
	case 1:
		return "L2";
	case 2:
		return "L1";
	case 3:
		return "Linf";
	case 4:
		return "Lp";
	case 20:
		return "Canberra";
	case 21:
		return "BrayCurtis";
	case 22:
		return "JensenShannon";
	case 23:
		return "Jaccard";
	default:
		return NULL;
	}
}
