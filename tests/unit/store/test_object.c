/* test_object.c - objects written with store_writer_* read back identically:
 * sizes around chunk boundaries, random preads, whole-file zstd decoding,
 * append_chunk, filtered chunks and their feature bit, finish/publish/discard,
 * replacement, modes and mtimes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/mount.h>
#include <zstd.h>

#include "store_test.h"
#include "store_internal.h"

struct fx {
	char *dir;
	struct store *st;
	struct store_dctx *dc;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	fx->dir = t_tmpdir();
	if (store_create(fx->dir, NULL) || store_open(fx->dir, 0, &fx->st))
		return -1;
	fx->dc = store_dctx_new();
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	store_dctx_free(fx->dc);
	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

/* Checks object @name holds @data: info, every chunk, random preads, and that
 * the whole file decodes with ZSTD_decompress to @data. */
static void check_object(struct fx *fx, const char *name, const uint8_t *data, size_t len,
			 uint32_t cs)
{
	struct store_object *o;
	const struct store_object_info *info;
	uint8_t *buf = malloc(len + 100), *file;
	size_t flen = 0;
	char path[512];
	uint64_t seed = len, lsize;
	int fd;

	assert_int_equal(store_object_openat(store_root_fd(fx->st), name, name, &o), 0);
	info = store_object_info(o);
	assert_true(info->size == len);
	assert_int_equal(info->chunk_size, cs);
	assert_true(info->nchunks == (len + cs - 1) / cs);

	/* whole */
	memset(buf, 0x55, len + 100);
	assert_int_equal(store_object_pread(o, fx->dc, buf, len + 100, 0), (ssize_t)len);
	assert_memory_equal(buf, data, len);
	/* past EOF */
	assert_int_equal(store_object_pread(o, fx->dc, buf, 10, len), 0);
	assert_int_equal(store_object_pread(o, fx->dc, buf, 10, len + 5), 0);
	/* random ranges */
	for (int i = 0; len && i < 200; i++) {
		uint64_t off = t_rand_next(&seed) % len;
		size_t n = (size_t)(t_rand_next(&seed) % (2 * cs + 3)) + 1;
		size_t want = n < len - off ? n : (size_t)(len - off);

		assert_int_equal(store_object_pread(o, fx->dc, buf, n, off), (ssize_t)want);
		assert_memory_equal(buf, data + off, want);
	}
	/* chunk by chunk */
	for (uint64_t i = 0; i < info->nchunks; i++) {
		size_t clen = store_object_chunk_len(o, i);

		assert_int_equal(store_object_read_chunk(o, i, fx->dc, buf), 0);
		assert_memory_equal(buf, data + i * cs, clen);
		assert_true(store_object_chunk_kind(o, i) >= 0);
		assert_true(store_object_chunk_stored(o, i) > 0);
	}
	assert_int_equal(store_object_read_chunk(o, info->nchunks, fx->dc, buf), -EINVAL);
	store_object_free(o);

	/* The object is a valid zstd stream of the logical bytes, or of the filtered
	 * bytes when the header says some chunk is filtered. */
	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	file = t_read_file(path, &flen);
	assert_non_null(file);
	assert_true(ZSTD_decompress(buf, len + 100, file, flen) == len);
	if (!(fmt_get32(file + 20) & FMT_OBJ_INCOMPAT_FILTER))
		assert_memory_equal(buf, data, len);
	assert_int_equal(fmt_get16(file + 18), FMT_OBJ_VERSION_MINOR);
	free(file);

	fd = open(path, O_RDONLY);
	assert_int_equal(store_object_probe(fd, name, &lsize), 1);
	assert_true(lsize == len);
	close(fd);
	free(buf);
}

static void test_sizes(void **state)
{
	struct fx *fx = *state;
	uint32_t css[] = {4096, 65536, 262144};

	for (size_t c = 0; c < 3; c++) {
		uint32_t cs = css[c];
		struct store_params p = {.chunk_size = cs, .level = 3};
		size_t sizes[] = {0, 1, cs - 1, cs, cs + 1, 5 * cs + 77, 8 * cs};
		size_t steps[] = {1 << 20, 1000, 4096};

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t len = sizes[i];
			uint8_t *data = malloc(len ? len : 1);

			t_fill_mixed(data, len, len + cs);
			for (size_t s = 0; s < 3; s++) {
				assert_int_equal(
					t_write_object(fx->st, &p, "obj", data, len, steps[s]), 0);
				check_object(fx, "obj", data, len, cs);
			}
			free(data);
		}
	}
}

/* The largest chunk size, around one chunk boundary. */
static void test_big_chunk(void **state)
{
	struct fx *fx = *state;
	struct store_params p = {.chunk_size = FMT_CHUNK_MAX, .level = 1};
	size_t len = FMT_CHUNK_MAX + 4097;
	uint8_t *data = malloc(len);

	t_fill_mixed(data, len, 99);
	assert_int_equal(t_write_object(fx->st, &p, "big", data, len, 3 << 20), 0);
	check_object(fx, "big", data, len, FMT_CHUNK_MAX);
	free(data);
}

/* `zstd -d` prints the logical file. */
static void test_zstd_cli(void **state)
{
	struct fx *fx = *state;
	size_t len = 300000, olen;
	uint8_t *data = malloc(len), *out;
	char cmd[1024], path[512];

	t_fill_mixed(data, len, 7);
	assert_int_equal(t_write_object(fx->st, NULL, "cli", data, len, len), 0);
	snprintf(cmd, sizeof(cmd), "zstd -q -d -c < '%s/cli' > '%s/cli.out' 2>/dev/null", fx->dir,
		 fx->dir);
	if (system(cmd) != 0) {
		free(data);
		skip();
	}
	snprintf(path, sizeof(path), "%s/cli.out", fx->dir);
	out = t_read_file(path, &olen);
	assert_int_equal(olen, len);
	assert_memory_equal(out, data, len);
	free(out);
	free(data);
}

static void test_append_chunk(void **state)
{
	struct fx *fx = *state;
	struct store_params p = {.chunk_size = 8192, .level = 1};
	size_t len = 8192 * 5 + 100;
	uint8_t *data = malloc(len);
	struct store_cctx *cc = store_cctx_new();
	struct store_chunk c = {0};
	struct store_writer *w;
	struct store_object *o;

	t_fill_mixed(data, len, 3);
	memcpy(data, "IxF2", 4); /* a FAISS header: d=8, ntotal=5, L2 */
	memset(data + 4, 0, 33);
	data[4] = 8;
	data[8] = 5;
	data[32] = 1;
	data[33] = 1;
	assert_int_equal(store_writer_new(fx->st, &p, &w), 0);
	assert_int_equal(store_writer_write(w, data, 10) == 0, 1);
	store_writer_abort(w);

	assert_int_equal(store_writer_new(fx->st, &p, &w), 0);
	store_writer_set_head(w, data, 64);
	for (size_t off = 0; off < len; off += 8192) {
		size_t n = len - off < 8192 ? len - off : 8192;

		assert_int_equal(store_chunk_encode(cc, data + off, n, 1, &c), 0);
		assert_int_equal(store_writer_append_chunk(w, &c), 0);
	}
	/* no chunk after a short one; no mixing with write() */
	assert_int_equal(store_writer_append_chunk(w, &c), -EINVAL);
	assert_int_equal(store_writer_write(w, data, 1), -EINVAL);
	assert_int_equal(store_writer_commit(w, store_root_fd(fx->st), "app", 0640, NULL), 0);
	check_object(fx, "app", data, len, 8192);

	assert_int_equal(store_object_openat(store_root_fd(fx->st), "app", "app", &o), 0);
	assert_true(store_object_info(o)->faiss.valid);
	assert_string_equal(store_object_info(o)->faiss.fourcc, "IxF2");
	assert_int_equal(store_object_info(o)->faiss.d, 8);
	assert_int_equal(store_object_info(o)->faiss.ntotal, 5);
	assert_int_equal(store_object_info(o)->level, 1);
	store_object_free(o);
	store_chunk_release(&c);
	store_cctx_free(cc);
	free(data);
}

/* Float32 vectors starting at byte 45, as in an IndexFlat file. */
static void fill_floats(uint8_t *p, size_t len, uint64_t seed)
{
	t_fill_text(p, len < 45 ? len : 45, seed);
	for (size_t off = 45; off + 4 <= len; off += 4) {
		float f = (float)((int64_t)(t_rand_next(&seed) % 2001) - 1000) / 8192.0f;

		memcpy(p + off, &f, 4);
	}
	if (len > 45)
		memset(p + len - (len - 45) % 4, 0x7f, (len - 45) % 4);
}

/* Float data gets filtered chunks and the feature bit; the writer's choice reads
 * back through every path; text alone keeps the bit clear (checked by
 * check_object's zstd decoding in the other tests). */
static void test_filtered_object(void **state)
{
	struct fx *fx = *state;
	uint32_t css[] = {4096, 65536, 262144};

	for (size_t c = 0; c < 3; c++) {
		uint32_t cs = css[c];
		struct store_params p = {.chunk_size = cs, .level = 1};
		size_t len = 6 * cs + 4099; /* the last chunk ends mid-value */
		uint8_t *data = malloc(len), *file;
		struct store_object *o;
		uint64_t nfilt = 0;
		char path[512];
		size_t flen;

		fill_floats(data, len, cs);
		memset(data + 2 * cs, 0, cs); /* a hole among them */
		assert_int_equal(t_write_object(fx->st, &p, "vec", data, len, 10007), 0);
		check_object(fx, "vec", data, len, cs);
		assert_int_equal(store_object_openat(store_root_fd(fx->st), "vec", "vec", &o), 0);
		assert_int_equal(store_object_chunk_kind(o, 2), FMT_CHUNK_HOLE);
		for (uint64_t i = 0; i < store_object_info(o)->nchunks; i++) {
			struct fmt_chunk_rec r;

			assert_int_equal(store_object_rec(o, i, &r), 0);
			nfilt += r.filter != FMT_FILTER_NONE;
		}
		assert_true(nfilt >= 5);
		store_object_free(o);
		snprintf(path, sizeof(path), "%s/vec", fx->dir);
		file = t_read_file(path, &flen);
		assert_int_equal(fmt_get32(file + 20), FMT_OBJ_INCOMPAT_FILTER);
		free(file);
		free(data);
	}
}

static void test_finish_publish_discard(void **state)
{
	struct fx *fx = *state;
	struct store_writer *w;
	char *tmpname = NULL, path[512];
	struct timespec mt = {.tv_sec = 1000000000, .tv_nsec = 123};
	struct store_object *o;
	struct stat sb;
	uint8_t data[5000];

	t_fill_text(data, sizeof(data), 1);
	assert_int_equal(store_writer_new(fx->st, NULL, &w), 0);
	assert_int_equal(store_writer_write(w, data, sizeof(data)), 0);
	assert_int_equal(store_writer_finish(w, &tmpname), 0);
	/* The finished temp object can be opened and checked. */
	assert_int_equal(store_object_openat(store_tmp_fd(fx->st), tmpname, "tmp", &o), 0);
	assert_true(store_object_info(o)->size == sizeof(data));
	store_object_free(o);
	assert_int_equal(
		store_publish_tmp(fx->st, tmpname, store_root_fd(fx->st), "pub", 0600, &mt), 0);
	snprintf(path, sizeof(path), "%s/pub", fx->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	assert_int_equal(sb.st_mtim.tv_sec, mt.tv_sec);
	assert_int_equal(sb.st_mtim.tv_nsec, mt.tv_nsec);
	assert_int_equal(fstatat(store_tmp_fd(fx->st), tmpname, &sb, 0), -1);
	free(tmpname);

	assert_int_equal(store_writer_new(fx->st, NULL, &w), 0);
	assert_int_equal(store_writer_finish(w, &tmpname), 0);
	store_discard_tmp(fx->st, tmpname);
	assert_int_equal(fstatat(store_tmp_fd(fx->st), tmpname, &sb, 0), -1);
	free(tmpname);
}

/* Commit replaces an existing file; identical content gives the same id. */
static void test_replace_and_id(void **state)
{
	struct fx *fx = *state;
	uint8_t a[10000], b[10000];
	struct store_object *o1, *o2, *o3;
	uint64_t id1[2], id2[2], id3[2];

	t_fill_mixed(a, sizeof(a), 1);
	t_fill_mixed(b, sizeof(b), 2);
	assert_int_equal(t_write_object(fx->st, NULL, "r", a, sizeof(a), 777), 0);
	assert_int_equal(t_write_object(fx->st, NULL, "r2", a, sizeof(a), 10000), 0);
	check_object(fx, "r", a, sizeof(a), FMT_CHUNK_DEFAULT);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "r", NULL, &o1), 0);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "r2", NULL, &o2), 0);
	store_object_id(o1, id1);
	store_object_id(o2, id2);
	assert_memory_equal(id1, id2, sizeof(id1));
	assert_int_equal(t_write_object(fx->st, NULL, "r", b, sizeof(b), 10000), 0);
	check_object(fx, "r", b, sizeof(b), FMT_CHUNK_DEFAULT);
	/* The old object stays readable through its open fd. */
	assert_int_equal(store_object_pread(o1, fx->dc, b, 100, 0), 100);
	assert_memory_equal(b, a, 100);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "r", NULL, &o3), 0);
	store_object_id(o3, id3);
	assert_memory_not_equal(id1, id3, sizeof(id1));
	store_object_free(o1);
	store_object_free(o2);
	store_object_free(o3);
}

/* A plain file is not an object; a read-only store has no writers. */
static void test_plain_and_rdonly(void **state)
{
	struct fx *fx = *state;
	struct store *ro;
	struct store_writer *w;
	struct store_object *o;
	char path[512];
	uint64_t sz;
	int fd;

	snprintf(path, sizeof(path), "%s/plain.json", fx->dir);
	assert_int_equal(t_write_file(path, "{\"a\": 1}\n", 9), 0);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "plain.json", NULL, &o),
			 -EMEDIUMTYPE);
	fd = open(path, O_RDONLY);
	assert_int_equal(store_object_probe(fd, "plain.json", &sz), 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/empty", fx->dir);
	assert_int_equal(t_write_file(path, "", 0), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(store_object_probe(fd, "empty", &sz), 0);
	close(fd);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "missing", NULL, &o), -ENOENT);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), ".faissfs", NULL, &o), -EISDIR);
	snprintf(path, sizeof(path), "%s/fifo", fx->dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "fifo", NULL, &o),
			 -EMEDIUMTYPE);
	snprintf(path, sizeof(path), "%s/link", fx->dir);
	assert_int_equal(symlink("plain.json", path), 0);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "link", NULL, &o), -ELOOP);

	assert_int_equal(store_open(fx->dir, STORE_RDONLY, &ro), 0);
	assert_int_equal(store_writer_new(ro, NULL, &w), -EROFS);
	assert_int_equal(store_tmp_fd(ro), -1);
	store_close(ro);
}

/* A full filesystem (a 256 KiB tmpfs, when we may mount): the writer fails with
 * ENOSPC, leaves no temp file and the old object intact. */
static void test_enospc(void **state)
{
	struct fx *fx = *state;
	char mnt[600];
	struct store *st;
	struct store_dctx *dc = store_dctx_new();
	struct store_object *o;
	size_t len = 1 << 20;
	uint8_t *data = malloc(len), small[1000], back[1000];
	DIR *d;
	struct dirent *de;
	int ret, ntmp = 0;

	snprintf(mnt, sizeof(mnt), "%s/full", fx->dir);
	assert_int_equal(mkdir(mnt, 0700), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") != 0) {
		free(data);
		store_dctx_free(dc);
		skip();
	}
	assert_int_equal(store_create(mnt, NULL), 0);
	assert_int_equal(store_open(mnt, 0, &st), 0);
	t_fill_text(small, sizeof(small), 5);
	assert_int_equal(t_write_object(st, NULL, "x", small, sizeof(small), 1000), 0);
	t_fill_random(data, len, 6);
	ret = t_write_object(st, NULL, "x", data, len, 4096);
	d = fdopendir(dup(store_tmp_fd(st)));
	while ((de = readdir(d)))
		ntmp += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(store_object_openat(store_root_fd(st), "x", "x", &o), 0);
	assert_int_equal(store_object_pread(o, dc, back, sizeof(back), 0), sizeof(back));
	store_object_free(o);
	store_close(st);
	umount2(mnt, MNT_DETACH);
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(ntmp, 0);
	assert_memory_equal(back, small, sizeof(small));
	store_dctx_free(dc);
	free(data);
}

static void test_bad_params(void **state)
{
	struct fx *fx = *state;
	struct store_writer *w;
	struct store_params bad[] = {{4095, 3}, {3 * 4096, 3}, {32u << 20, 3},
				     {4096, 0}, {4096, -1},    {4096, 20}};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(store_params_check(&bad[i]), -EINVAL);
		assert_int_equal(store_writer_new(fx->st, &bad[i], &w), -EINVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zstd_cli, setup, teardown),
		cmocka_unit_test_setup_teardown(test_append_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_filtered_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_finish_publish_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plain_and_rdonly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enospc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_params, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
