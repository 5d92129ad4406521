/* test_verify.c - store_verify() and the daemon lock.
 *
 * A store with objects, a plain file and a FAISS index verifies clean on one
 * thread and on several; each kind of damage (a flipped chunk byte, bytes after
 * the trailer, a FAISS header that disagrees with the trailer, a broken header)
 * is reported with its file, chunk and offset; repair moves exactly the damaged
 * objects to .faissfs/quarantine/ and removes idle temp files; symlinks and FIFOs
 * are valid entries, counted by kind; a hard-linked object is checked once.  store_lock() excludes
 * a second holder and names the first.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store_test.h"
#include "util/log.h"

#define SZ (300 * 1024 + 123)

struct seen {
	int n;
	char path[8][256];
	int64_t chunk[8], offset[8];
};

static void record(void *arg, const struct store_verify_problem *p)
{
	struct seen *s = arg;

	if (s->n < 8) {
		snprintf(s->path[s->n], sizeof(s->path[0]), "%s", p->path);
		s->chunk[s->n] = p->chunk;
		s->offset[s->n] = p->offset;
	}
	s->n++;
}

struct fixture {
	char *dir;
	struct store *st;
	struct store_params p;
};

/* A store with a.bin, sub/b.bin (objects), plain.txt and sub/flat.faiss. */
static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t *buf = malloc(SZ);
	char path[512];
	int sfd;

	log_set_level(LOG_LVL_ERROR);
	assert_non_null(f);
	assert_non_null(buf);
	f->dir = t_tmpdir();
	f->p.chunk_size = 16 * 1024;
	f->p.level = 3;
	assert_int_equal(store_create(f->dir, &f->p), 0);
	assert_int_equal(store_open(f->dir, 0, &f->st), 0);
	t_fill_mixed(buf, SZ, 7);
	assert_int_equal(t_write_object(f->st, &f->p, "a.bin", buf, SZ, 5000), 0);
	snprintf(path, sizeof(path), "%s/sub", f->dir);
	assert_int_equal(mkdir(path, 0755), 0);
	sfd = openat(store_root_fd(f->st), "sub", O_RDONLY | O_DIRECTORY);
	assert_true(sfd >= 0);
	{
		struct store_writer *w;

		t_fill_random(buf, SZ, 8);
		assert_int_equal(store_writer_new(f->st, &f->p, &w), 0);
		assert_int_equal(store_writer_write(w, buf, SZ), 0);
		assert_int_equal(store_writer_commit(w, sfd, "b.bin", 0644, NULL), 0);
	}
	{
		const char *data = getenv("FAISSFS_TEST_DATA");
		size_t len = 0;
		uint8_t *idx;
		struct store_writer *w;

		snprintf(path, sizeof(path), "%s/faiss/flat_l2.faiss", data ? data : "tests/data");
		idx = t_read_file(path, &len);
		assert_non_null(idx);
		assert_int_equal(store_writer_new(f->st, &f->p, &w), 0);
		assert_int_equal(store_writer_write(w, idx, len), 0);
		assert_int_equal(store_writer_commit(w, sfd, "flat.faiss", 0644, NULL), 0);
		free(idx);
	}
	close(sfd);
	snprintf(path, sizeof(path), "%s/plain.txt", f->dir);
	assert_int_equal(t_write_file(path, "hello\n", 6), 0);
	free(buf);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	t_rm_rf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static int verify(struct fixture *f, unsigned threads, bool repair, struct seen *s,
		  struct store_verify_stats *stats)
{
	struct store_verify_opts o = {0};

	memset(s, 0, sizeof(*s));
	o.threads = threads;
	o.repair = repair;
	o.report = record;
	o.arg = s;
	return store_verify(f->st, &o, stats);
}

static void flip(struct fixture *f, const char *rel, off_t off)
{
	char path[512];
	uint8_t b;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, rel);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_clean(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st1, st2;
	struct seen s;

	assert_int_equal(verify(f, 1, false, &s, &st1), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(st1.objects, 3);
	assert_int_equal(st1.plain, 1);
	assert_int_equal(st1.dirs, 1);
	assert_int_equal(st1.problems, 0);
	assert_true(st1.chunks >= 2 * (SZ / (16 * 1024)));
	assert_int_equal(verify(f, 2, false, &s, &st2), 0);
	assert_int_equal(st2.chunks, st1.chunks);
	assert_int_equal(st2.logical_bytes, st1.logical_bytes);
}

static void test_chunk_flip(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct store_object *o;
	struct seen s;
	uint64_t off;

	/* The middle of chunk 5's frame of b.bin (random data: raw chunks). */
	assert_int_equal(store_object_openat(store_root_fd(f->st), "sub/b.bin", NULL, &o), 0);
	off = 64;
	for (int i = 0; i < 5; i++)
		off += store_object_chunk_stored(o, (uint64_t)i);
	store_object_free(o);
	flip(f, "sub/b.bin", (off_t)off + 100);
	assert_int_equal(verify(f, 2, false, &s, &st), -EUCLEAN);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path[0], "sub/b.bin");
	assert_int_equal(s.chunk[0], 5);
	assert_int_equal(s.offset[0], (int64_t)off);
}

static void test_hole_frame_flip(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct store_object *o;
	struct seen s;
	uint64_t off = 64, i = 0, n;

	/* The first hole of a.bin (t_fill_mixed makes zero pages). */
	assert_int_equal(store_object_openat(store_root_fd(f->st), "a.bin", NULL, &o), 0);
	n = store_object_info(o)->nchunks;
	for (; i < n && store_object_chunk_kind(o, i) != FMT_CHUNK_HOLE; i++)
		off += store_object_chunk_stored(o, i);
	store_object_free(o);
	assert_true(i < n);
	flip(f, "a.bin", (off_t)off + 6);
	assert_int_equal(verify(f, 2, false, &s, &st), -EUCLEAN);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.chunk[0], (int64_t)i);
	assert_int_equal(s.offset[0], (int64_t)off);
}

static void test_trailing_bytes_and_header(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct seen s;
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/a.bin", f->dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "junk", 4), 4);
	close(fd);
	flip(f, "sub/flat.faiss", 30); /* header: checksum mismatch */
	assert_int_equal(verify(f, 2, false, &s, &st), -EUCLEAN);
	assert_int_equal(s.n, 2);
	assert_int_equal(st.objects, 2); /* flat.faiss no longer opens */
}

static void test_faiss_mismatch(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct store_writer *w;
	struct store_chunk c = {0};
	struct store_cctx *cc = store_cctx_new();
	uint8_t *idx, head[64];
	const char *data = getenv("FAISSFS_TEST_DATA");
	char path[512];
	size_t len = 0;
	struct seen s;

	snprintf(path, sizeof(path), "%s/faiss/flat_l2.faiss", data ? data : "tests/data");
	idx = t_read_file(path, &len);
	assert_non_null(idx);
	assert_true(len <= 16 * 1024 && len >= 64);
	/* The chunk holds the index; the head given for the trailer says ntotal + 1. */
	memcpy(head, idx, 64);
	fmt_put64(head + 8, fmt_get64(idx + 8) + 1);
	assert_int_equal(store_writer_new(f->st, &f->p, &w), 0);
	assert_int_equal(store_chunk_encode(cc, idx, len, 3, &c), 0);
	assert_int_equal(store_writer_append_chunk(w, &c), 0);
	store_writer_set_head(w, head, 64);
	assert_int_equal(store_writer_commit(w, store_root_fd(f->st), "liar.faiss", 0644, NULL), 0);
	assert_int_equal(verify(f, 1, false, &s, &st), -EUCLEAN);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.path[0], "liar.faiss");
	assert_int_equal(s.chunk[0], 0);
	assert_int_equal(s.offset[0], 64);
	store_chunk_release(&c);
	store_cctx_free(cc);
	free(idx);
}

static void test_repair(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct timeval old[2] = {{1000000, 0}, {1000000, 0}};
	struct seen s;
	struct stat sb;
	char path[1024];

	struct store_object *o;
	uint64_t off = 64, i = 0;

	/* The first chunk that is not a hole (holes are never read). */
	assert_int_equal(store_object_openat(store_root_fd(f->st), "a.bin", NULL, &o), 0);
	for (; store_object_chunk_kind(o, i) == FMT_CHUNK_HOLE; i++)
		off += store_object_chunk_stored(o, i);
	store_object_free(o);
	flip(f, "a.bin", (off_t)off + 10);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/left.tmp", f->dir);
	assert_int_equal(t_write_file(path, "x", 1), 0);
	assert_int_equal(utimes(path, old), 0);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/young.tmp", f->dir);
	assert_int_equal(t_write_file(path, "x", 1), 0);
	assert_int_equal(verify(f, 2, true, &s, &st), -EUCLEAN);
	assert_int_equal(st.quarantined, 1);
	assert_int_equal(st.tmp_removed, 1);
	snprintf(path, sizeof(path), "%s/a.bin", f->dir);
	assert_int_equal(lstat(path, &sb), -1);
	snprintf(path, sizeof(path), "%s/.faissfs/tmp/young.tmp", f->dir);
	assert_int_equal(lstat(path, &sb), 0); /* a writer may still own it */
	assert_int_equal(verify(f, 2, false, &s, &st), 0);
	assert_int_equal(st.objects, 2);
}

static void test_repair_needs_rw(void **state)
{
	struct fixture *f = *state;
	struct store *ro;
	struct store_verify_opts o = {0};

	assert_int_equal(store_open(f->dir, STORE_RDONLY, &ro), 0);
	o.repair = true;
	assert_int_equal(store_verify(ro, &o, NULL), -EROFS);
	store_close(ro);
}

static void test_links_and_specials(void **state)
{
	struct fixture *f = *state;
	struct store_verify_stats st;
	struct seen s;
	char path[512], from[512];

	snprintf(path, sizeof(path), "%s/link", f->dir);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/sub/fifo", f->dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/dirlink", f->dir);
	assert_int_equal(symlink("/etc", path), 0);
	snprintf(path, sizeof(path), "%s/dangling", f->dir);
	assert_int_equal(symlink("no/such/file", path), 0);
	snprintf(from, sizeof(from), "%s/a.bin", f->dir);
	snprintf(path, sizeof(path), "%s/sub/a-again.bin", f->dir);
	assert_int_equal(link(from, path), 0);
	snprintf(path, sizeof(path), "%s/zz.bin", f->dir);
	assert_int_equal(link(from, path), 0);
	assert_int_equal(verify(f, 2, false, &s, &st), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(st.symlinks, 3);
	assert_int_equal(st.special, 1);
	assert_int_equal(st.links, 2);
	assert_int_equal(st.objects, 3); /* a.bin once, not three times */
	assert_int_equal(st.files, 4);

	/* damage shows once, under the first name */
	flip(f, "zz.bin", 30); /* header: checksum mismatch */
	assert_int_equal(verify(f, 2, false, &s, &st), -EUCLEAN);
	assert_true(s.n >= 1);
	for (int i = 0; i < s.n && i < 8; i++)
		assert_string_equal(s.path[i], "a.bin");
}

static void test_lock(void **state)
{
	struct fixture *f = *state;
	struct store *other;
	pid_t holder = -1;
	char buf[32] = {0}, path[512];
	int a, b, fd;

	a = store_lock(f->st, NULL);
	assert_true(a >= 0);
	snprintf(path, sizeof(path), "%s/.faissfs/lock", f->dir);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	close(fd);
	assert_int_equal(atol(buf), getpid());
	assert_int_equal(store_open(f->dir, STORE_RDONLY, &other), 0);
	b = store_lock(other, &holder);
	assert_int_equal(b, -EBUSY);
	assert_int_equal(holder, getpid());
	store_unlock(a);
	b = store_lock(other, &holder);
	assert_true(b >= 0);
	store_unlock(b);
	store_close(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunk_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hole_frame_flip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailing_bytes_and_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_faiss_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_repair_needs_rw, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_and_specials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
