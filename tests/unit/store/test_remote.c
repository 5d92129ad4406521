/* test_remote.c - the pieces of remote stores that need no network: objects read
 * through a byte source held in memory (identical bytes to the local read), a
 * source that fails or damages its bytes on purpose (errors, never wrong bytes,
 * one fetch again after invalidate), reference files (build, parse, every damaged
 * field refused, probe sizes), and manifests (round trip, damaged documents,
 * bad paths, entries before their directory, a newer format). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store_test.h"
#include "store_internal.h"

#include <xxhash.h>

#define LEN (5 * 65536 + 1234)

struct fx {
	char *dir;
	struct store *st;
	struct store_dctx *dc;
	uint8_t *data;
	uint8_t *obj; /* the object's stored bytes */
	size_t objlen;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct store_params p = {.chunk_size = 65536, .level = 1};
	char path[PATH_MAX];

	fx->dir = t_tmpdir();
	if (store_create(fx->dir, NULL) || store_open(fx->dir, 0, &fx->st))
		return -1;
	fx->dc = store_dctx_new();
	fx->data = malloc(LEN);
	t_fill_mixed(fx->data, LEN, 7);
	if (t_write_object(fx->st, &p, "obj", fx->data, LEN, 10000))
		return -1;
	snprintf(path, sizeof(path), "%s/obj", fx->dir);
	fx->obj = t_read_file(path, &fx->objlen);
	*state = fx;
	return fx->obj ? 0 : -1;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	store_dctx_free(fx->dc);
	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx->dir);
	free(fx->data);
	free(fx->obj);
	free(fx);
	return 0;
}

/* A source over a buffer: can fail from a given read on, or flip a byte of frame
 * reads until invalidated. */
struct mem_src {
	const uint8_t *buf;
	size_t len;
	int reads;
	int fail_after; /* -1: never */
	bool damage;	/* flip a byte of every frame read while set */
	int invalidated;
	bool released;
};

static ssize_t mem_pread(void *arg, void *buf, size_t len, uint64_t off, enum store_src_what what)
{
	struct mem_src *m = arg;

	if (m->fail_after >= 0 && m->reads++ >= m->fail_after)
		return -EIO;
	if (off >= m->len)
		return 0;
	if (len > m->len - off)
		len = (size_t)(m->len - off);
	memcpy(buf, m->buf + off, len);
	if (m->damage && what == STORE_SRC_FRAME && len > 10)
		((uint8_t *)buf)[len / 2] ^= 0x40;
	return (ssize_t)len;
}

static void mem_invalidate(void *arg, uint64_t off, size_t len)
{
	struct mem_src *m = arg;

	(void)off;
	(void)len;
	m->invalidated++;
	m->damage = false; /* the next fetch is good */
}

static void mem_release(void *arg)
{
	((struct mem_src *)arg)->released = true;
}

static const struct store_source_ops mem_ops = {
	.name = "memory", .pread = mem_pread, .invalidate = mem_invalidate, .release = mem_release,
};

static void test_source_reads_like_local(void **state)
{
	struct fx *fx = *state;
	struct mem_src m = {.buf = fx->obj, .len = fx->objlen, .fail_after = -1};
	struct store_object *o, *lo;
	uint8_t *buf = malloc(LEN);
	uint64_t id[2], lid[2];

	assert_int_equal(store_object_open_source(&mem_ops, &m, fx->objlen, "mem", &o), 0);
	assert_int_equal(store_object_openat(store_root_fd(fx->st), "obj", NULL, &lo), 0);
	assert_int_equal(store_object_pread(o, fx->dc, buf, LEN, 0), LEN);
	assert_memory_equal(buf, fx->data, LEN);
	assert_int_equal(store_object_pread(o, fx->dc, buf, 3000, 65536 - 1000), 3000);
	assert_memory_equal(buf, fx->data + 65536 - 1000, 3000);
	store_object_id(o, id);
	store_object_id(lo, lid);
	assert_memory_equal(id, lid, sizeof(id));
	assert_int_equal(store_object_info(o)->size, LEN);
	store_object_free(o);
	assert_true(m.released);
	store_object_free(lo);
	free(buf);
}

static void test_source_errors(void **state)
{
	struct fx *fx = *state;
	struct mem_src m = {.buf = fx->obj, .len = fx->objlen, .fail_after = 0};
	struct store_object *o = NULL;
	uint8_t *buf = malloc(LEN);

	/* Failing at the header: the error comes back, the source is released. */
	assert_int_equal(store_object_open_source(&mem_ops, &m, fx->objlen, "mem", &o), -EIO);
	assert_null(o);
	assert_true(m.released);
	/* Failing after open: the chunk read fails, it does not make up bytes. */
	m = (struct mem_src){.buf = fx->obj, .len = fx->objlen, .fail_after = 2};
	assert_int_equal(store_object_open_source(&mem_ops, &m, fx->objlen, "mem", &o), 0);
	assert_int_equal(store_object_read_chunk(o, 0, fx->dc, buf), -EIO);
	store_object_free(o);
	/* A truncated source: the trailer cannot be read. */
	m = (struct mem_src){.buf = fx->obj, .len = fx->objlen - 100, .fail_after = -1};
	assert_int_equal(store_object_open_source(&mem_ops, &m, fx->objlen, "mem", &o), -EUCLEAN);
	free(buf);
}

static void test_source_damaged_copy_fetched_again(void **state)
{
	struct fx *fx = *state;
	struct mem_src m = {.buf = fx->obj, .len = fx->objlen, .fail_after = -1};
	struct store_object *o;
	uint8_t *buf = malloc(65536);

	assert_int_equal(store_object_open_source(&mem_ops, &m, fx->objlen, "mem", &o), 0);
	for (uint64_t i = 0; i < store_object_info(o)->nchunks; i++) {
		if (store_object_chunk_kind(o, i) != FMT_CHUNK_ZSTD &&
		    store_object_chunk_kind(o, i) != FMT_CHUNK_RAW)
			continue;
		m.damage = true;
		m.invalidated = 0;
		assert_int_equal(store_object_read_chunk(o, i, fx->dc, buf), 0);
		assert_int_equal(m.invalidated, 1);
		assert_memory_equal(buf, fx->data + i * 65536, store_object_chunk_len(o, i));
	}
	/* Damaged every time (the bucket's own copy): -EUCLEAN after one retry. */
	m.damage = true;
	m.invalidated = 0;
	{
		const struct store_source_ops stubborn = {.name = "memory", .pread = mem_pread,
							  .invalidate = NULL};
		struct store_object *o2;

		m.released = false;
		assert_int_equal(store_object_open_source(&stubborn, &m, fx->objlen, "mem", &o2), 0);
		assert_int_equal(store_object_read_chunk(o2, 1, fx->dc, buf), -EUCLEAN);
		store_object_free(o2);
		assert_false(m.released); /* no release op */
	}
	store_object_free(o);
	free(buf);
}

static void test_ref_round_trip(void **state)
{
	struct fx *fx = *state;
	struct store_object *lo;
	uint8_t ref[FMT_REF_SIZE], bad[FMT_REF_SIZE];
	struct fmt_ref r;
	struct fmt_object_header h;
	uint64_t id[2], lsize = 0, ssize = 0;
	char path[PATH_MAX], hex[FMT_ID_HEX + 1];
	int fd;

	assert_int_equal(store_object_openat(store_root_fd(fx->st), "obj", NULL, &lo), 0);
	store_object_id(lo, id);
	store_ref_build(ref, id, fx->objlen, fx->obj);
	assert_true(store_ref_is_ref(ref, sizeof(ref)));
	assert_int_equal(store_ref_parse(ref, sizeof(ref), "ref", &r, &h), 0);
	assert_int_equal(r.stored_size, fx->objlen);
	assert_int_equal(h.logical_size, LEN);
	store_id_hex(id, hex);
	assert_int_equal(strlen(hex), 32);
	/* Every byte flipped is refused (checksum, magic, or the header inside). */
	for (size_t i = 0; i < FMT_REF_SIZE; i++) {
		memcpy(bad, ref, sizeof(ref));
		bad[i] ^= 0x01;
		assert_int_not_equal(store_ref_parse(bad, sizeof(bad), "ref", &r, &h), 0);
	}
	assert_int_equal(store_ref_parse(ref, sizeof(ref) - 1, "ref", &r, &h), -EUCLEAN);
	/* Probing a reference file gives the sizes it names; opening it without a
	 * remote store is -EREMOTE, and store_object_open_fd() says -EREMOTE too. */
	snprintf(path, sizeof(path), "%s/ref", fx->dir);
	assert_int_equal(t_write_file(path, ref, sizeof(ref)), 0);
	fd = open(path, O_RDONLY);
	assert_int_equal(store_object_probe_sizes(fd, "ref", &lsize, &ssize), 1);
	assert_int_equal(lsize, LEN);
	assert_int_equal(ssize, fx->objlen);
	{
		struct store_object *o;

		assert_int_equal(store_object_open(fx->st, fd, "ref", &o), -EREMOTE);
		assert_int_equal(store_object_open_fd(fd, "ref", &o), -EREMOTE);
	}
	close(fd);
	store_object_free(lo);
}

static void add(struct store_manifest *m, const char *path, bool dir, uint64_t id0)
{
	struct store_manifest_entry e = {.path = (char *)path, .mode = dir ? 040755 : 0100644,
					 .mtime_sec = 1700000000 + (int64_t)id0, .mtime_nsec = 5,
					 .size = dir ? 0 : 1000 + id0, .stored = dir ? 0 : 500,
					 .dir = dir, .id = {id0, ~id0}};

	memset(e.header, (int)id0, sizeof(e.header));
	assert_int_equal(store_manifest_add(m, &e), 0);
}

static void test_manifest_round_trip(void **state)
{
	struct store_manifest m = {.gen = 7, .created = 1234}, d;
	uint8_t *buf;
	size_t len;

	(void)state;
	add(&m, "acme", true, 0);
	add(&m, "acme/idx", true, 0);
	add(&m, "acme/idx/index.faiss", false, 3);
	add(&m, "legacy.faiss", false, 4);
	assert_int_equal(store_manifest_encode(&m, &buf, &len), 0);
	assert_int_equal(store_manifest_decode(buf, len, "t", &d), 0);
	assert_int_equal(d.gen, 7);
	assert_int_equal(d.created, 1234);
	assert_int_equal(d.n, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(d.e[i].path, m.e[i].path);
		assert_int_equal(d.e[i].mode, m.e[i].mode);
		assert_int_equal(d.e[i].mtime_sec, m.e[i].mtime_sec);
		assert_int_equal(d.e[i].dir, m.e[i].dir);
		if (m.e[i].dir)
			continue;
		assert_int_equal(d.e[i].size, m.e[i].size);
		assert_int_equal(d.e[i].stored, m.e[i].stored);
		assert_int_equal(d.e[i].id[0], m.e[i].id[0]);
		assert_int_equal(d.e[i].id[1], m.e[i].id[1]);
		assert_memory_equal(d.e[i].header, m.e[i].header, FMT_OBJ_HEADER_SIZE);
	}
	/* Every truncation is refused, never half read. */
	for (size_t cut = 0; cut < len; cut++) {
		struct store_manifest x;

		assert_int_not_equal(store_manifest_decode(buf, cut, "t", &x), 0);
	}
	free(buf);
	store_manifest_release(&d);
	store_manifest_release(&m);
}

static int encode_one(const char *path, bool dir_first, uint8_t **buf, size_t *len)
{
	struct store_manifest m = {.gen = 1};
	int ret;

	if (dir_first)
		add(&m, "a", true, 0);
	add(&m, path, false, 1);
	ret = store_manifest_encode(&m, buf, len);
	store_manifest_release(&m);
	return ret;
}

static void test_manifest_refuses_bad_paths(void **state)
{
	static const char *const bad[] = {"../etc/passwd", "a/../../x", "/abs", "a//b", "./x",
					  ".faissfs/superblock", "a/.", "a/"};
	struct store_manifest d;
	uint8_t *buf;
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(encode_one(bad[i], true, &buf, &len), 0);
		assert_int_equal(store_manifest_decode(buf, len, "t", &d), -EUCLEAN);
		free(buf);
	}
	/* An entry whose directory has not come yet. */
	assert_int_equal(encode_one("b/file", true, &buf, &len), 0);
	assert_int_equal(store_manifest_decode(buf, len, "t", &d), -EUCLEAN);
	free(buf);
	assert_int_equal(encode_one("a/file", true, &buf, &len), 0);
	assert_int_equal(store_manifest_decode(buf, len, "t", &d), 0);
	store_manifest_release(&d);
	free(buf);
}

static void test_manifest_newer_format(void **state)
{
	/* {"format": 99, "gen": 1, "entries": []} */
	static const uint8_t doc[] = {0x83, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 99,  0xa3,
				      'g',  'e',  'n', 1,   0xa7, 'e', 'n', 't', 'r', 'i',
				      'e',  's',  0x90};
	static const uint8_t notmap[] = {0x93, 1, 2, 3};
	struct store_manifest d;

	(void)state;
	assert_int_equal(store_manifest_decode(doc, sizeof(doc), "t", &d), -EPROTONOSUPPORT);
	assert_int_equal(store_manifest_decode(notmap, sizeof(notmap), "t", &d), -EUCLEAN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_source_reads_like_local, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_source_damaged_copy_fetched_again, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ref_round_trip, setup, teardown),
		cmocka_unit_test(test_manifest_round_trip),
		cmocka_unit_test(test_manifest_refuses_bad_paths),
		cmocka_unit_test(test_manifest_newer_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
