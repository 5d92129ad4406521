/* filter.c - byte-plane filters: a chunk of 4-byte values rearranged so that
 * byte k of every value lies next to byte k of the others.
 *
 * FAISS files are mostly float32 (or int32) arrays.  The low mantissa bytes of a
 * float are close to random, the exponent byte and the top mantissa byte repeat a
 * lot: interleaved, zstd sees four bytes of mixed entropy and gains little; split
 * into planes, the repetitive planes compress well and the random ones are left
 * as raw literals (which is also why decoding them is fast).  The byte layout is
 * in format.h (enum fmt_filter) and FORMAT.md; the loops here are written in
 * blocks of 16 values so that the compiler vectorises them at -O2.
 */
#include "store_internal.h"

#include <string.h>

#define BLK 16 /* values per inner loop: one 16-byte vector per plane */

void store_planes4_layout(size_t len, unsigned phase, struct store_planes4 *pl)
{
	pl->head = phase < len ? phase : len;
	pl->nval = (len - pl->head) / 4;
	pl->tail = len - pl->head - 4 * pl->nval;
}

/* Whole values of @v (4 * n bytes) into the planes @p0..@p3 (n bytes each). */
static void split_values(const uint8_t *restrict v, size_t n, uint8_t *restrict p0,
			 uint8_t *restrict p1, uint8_t *restrict p2, uint8_t *restrict p3)
{
	size_t i = 0;

	for (; i + BLK <= n; i += BLK) {
		for (size_t j = 0; j < BLK; j++) {
			uint32_t x;

			memcpy(&x, v + 4 * (i + j), 4);
			p0[i + j] = (uint8_t)x;
			p1[i + j] = (uint8_t)(x >> 8);
			p2[i + j] = (uint8_t)(x >> 16);
			p3[i + j] = (uint8_t)(x >> 24);
		}
	}
	for (; i < n; i++) {
		p0[i] = v[4 * i];
		p1[i] = v[4 * i + 1];
		p2[i] = v[4 * i + 2];
		p3[i] = v[4 * i + 3];
	}
}

/* The inverse: planes @p0..@p3 (n bytes each) into 4 * n bytes at @v.  This is
 * on the read path of every filtered chunk: it must stay cheap next to zstd's
 * own decoding (about 10 GB/s on one core of the reference machine). */
static void join_values(const uint8_t *restrict p0, const uint8_t *restrict p1,
			const uint8_t *restrict p2, const uint8_t *restrict p3, size_t n,
			uint8_t *restrict v)
{
	size_t i = 0;

	for (; i + BLK <= n; i += BLK) {
		for (size_t j = 0; j < BLK; j++) {
			uint32_t x = (uint32_t)p0[i + j] | (uint32_t)p1[i + j] << 8 |
				     (uint32_t)p2[i + j] << 16 | (uint32_t)p3[i + j] << 24;

			memcpy(v + 4 * (i + j), &x, 4);
		}
	}
	for (; i < n; i++) {
		v[4 * i] = p0[i];
		v[4 * i + 1] = p1[i];
		v[4 * i + 2] = p2[i];
		v[4 * i + 3] = p3[i];
	}
}

void store_planes4_split(const uint8_t *in, size_t len, unsigned phase, uint8_t *out)
{
	struct store_planes4 pl;
	uint8_t *p0;
	size_t n;

	store_planes4_layout(len, phase, &pl);
	n = pl.nval;
	p0 = out + pl.head;
	memcpy(out, in, pl.head);
	split_values(in + pl.head, n, p0, p0 + n, p0 + 2 * n, p0 + 3 * n);
	memcpy(p0 + 4 * n, in + pl.head + 4 * n, pl.tail);
}

void store_planes4_join(const uint8_t *in, size_t len, unsigned phase, uint8_t *out)
{
	struct store_planes4 pl;
	const uint8_t *p0;
	size_t n;

	store_planes4_layout(len, phase, &pl);
	n = pl.nval;
	p0 = in + pl.head;
	memcpy(out, in, pl.head);
	join_values(p0, p0 + n, p0 + 2 * n, p0 + 3 * n, n, out + pl.head);
	memcpy(out + pl.head + 4 * n, p0 + 4 * n, pl.tail);
}

/* Counts, for each position mod 4, how often a byte equals the byte 4 before it;
 * the most repetitive position holds the values' top byte, so values start one
 * byte after it.  Four windows of 16 KiB spread over the chunk are enough and
 * keep this far below the cost of compressing. */
unsigned store_planes4_guess(const uint8_t *in, size_t len)
{
	const size_t win = 16 * 1024;
	size_t same[4] = {0, 0, 0, 0};
	unsigned best = 0;

	for (size_t w = 0; w < 4; w++) {
		size_t start = len > 4 * win ? w * (len / 4) : w * win;
		size_t end = start + win < len ? start + win : len;

		for (size_t i = start + 4; i < end; i++)
			same[i & 3] += in[i] == in[i - 4];
	}
	for (unsigned r = 1; r < 4; r++)
		if (same[r] > same[best])
			best = r;
	return (best + 1) & 3;
}
