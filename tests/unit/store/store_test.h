/* store_test.h - helpers shared by the store unit tests: temp dirs, data
 * generators, writing an object from a buffer.  Header-only; each test is one
 * executable.
 */
#ifndef FAISSFS_TESTS_STORE_TEST_H
#define FAISSFS_TESTS_STORE_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "store/format.h"

static inline uint64_t t_rand_next(uint64_t *s)
{
	/* splitmix64: deterministic, good enough to defeat compression */
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Random (incompressible) bytes. */
static inline void t_fill_random(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t v = 0;

	for (size_t i = 0; i < len; i++) {
		if (i % 8 == 0)
			v = t_rand_next(&seed);
		p[i] = (uint8_t)(v >> (8 * (i % 8)));
	}
}

/* Compressible bytes: text-like, low entropy. */
static inline void t_fill_text(void *buf, size_t len, uint64_t seed)
{
	static const char words[] = "vector index faiss chunk zstd store tenant ";
	uint8_t *p = buf;

	for (size_t i = 0; i < len; i++) {
		if (i % 97 == 0)
			t_rand_next(&seed);
		p[i] = (uint8_t)words[(i + (seed & 7)) % (sizeof(words) - 1)];
	}
}

/* Mix of kinds: per 4 KiB page, zeros, text or random. */
static inline void t_fill_mixed(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;

	for (size_t off = 0; off < len; off += 4096) {
		size_t n = len - off < 4096 ? len - off : 4096;
		uint64_t k = t_rand_next(&seed) % 3;

		if (k == 0)
			memset(p + off, 0, n);
		else if (k == 1)
			t_fill_text(p + off, n, seed);
		else
			t_fill_random(p + off, n, seed);
	}
}

static int t_rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static inline void t_rm_rf(const char *path)
{
	nftw(path, t_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes a fresh temp dir; caller frees and removes it with t_rm_rf(). */
static inline char *t_tmpdir(void)
{
	char *d = strdup("/tmp/ffs-store-test.XXXXXX");

	if (!d || !mkdtemp(d))
		abort();
	return d;
}

/* Reads the whole file @path; *len set; caller frees. */
static inline uint8_t *t_read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		return NULL;
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (buf && pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		buf = NULL;
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static inline int t_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, buf, len) != (ssize_t)len)
		ret = -EIO;
	close(fd);
	return ret;
}

/* Writes @len bytes of @data as object @name at the store root, fed in pieces of
 * @step bytes.  Returns store_writer_* errors. */
static inline int t_write_object(struct store *st, const struct store_params *p, const char *name,
				 const void *data, size_t len, size_t step)
{
	struct store_writer *w;
	const uint8_t *d = data;
	int ret = store_writer_new(st, p, &w);

	if (ret)
		return ret;
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;

		ret = store_writer_write(w, d + off, n);
		if (ret) {
			store_writer_abort(w);
			return ret;
		}
	}
	return store_writer_commit(w, store_root_fd(st), name, 0644, NULL);
}

#endif
