/* test_import.c - store_import(): both FAISSx layouts and odd sizes round-trip
 * through import and export byte for byte with modes and mtimes; symlinks, FIFOs,
 * sockets, devices and hard links are stored as themselves and come back out as
 * such; a second import skips everything without rewriting; a changed file alone
 * is re-imported; bad input is refused before the store is touched; threads do
 * not change the bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <sys/sysmacros.h>
#include <sys/time.h>

#include "store_test.h"

#define CS 4096u /* small chunk size: many chunks from small files */

struct fixture {
	char *tmp;
	char src[512], store[512], dst[512];
};

static char *join(const char *a, const char *b)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", a, b) > 0);
	return p;
}

static void set_time(const char *path, time_t sec, long nsec)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {sec, nsec}};

	assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void put(const char *root, const char *rel, const void *buf, size_t len, mode_t mode,
		time_t sec)
{
	char *p = join(root, rel);

	assert_int_equal(t_write_file(p, buf, len), 0);
	assert_int_equal(chmod(p, mode), 0);
	set_time(p, sec, 123456789);
	free(p);
}

static void mkd(const char *root, const char *rel)
{
	char *p = join(root, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static void dir_attrs(const char *root, const char *rel, mode_t mode, time_t sec)
{
	char *p = join(root, rel);

	assert_int_equal(chmod(p, mode), 0);
	set_time(p, sec, 5000);
	free(p);
}

/* Copies a real FAISS index from the test data when there is one, else random. */
static void put_index(const char *root, const char *rel, const char *dataname, time_t sec)
{
	const char *data = getenv("FAISSFS_TEST_DATA");
	uint8_t *buf = NULL;
	size_t len = 0;

	if (data) {
		char *p = NULL;

		assert_true(asprintf(&p, "%s/faiss/%s", data, dataname) > 0);
		buf = t_read_file(p, &len);
		free(p);
	}
	if (!buf) {
		len = 3 * CS + 17;
		buf = malloc(len);
		assert_non_null(buf);
		t_fill_mixed(buf, len, 7);
	}
	put(root, rel, buf, len, 0644, sec);
	free(buf);
}

/* SRC with the tenant layout, the flat layout and odd sizes. */
static void make_src(const char *src)
{
	static const char meta[] = "{\"dimension\": 64, \"metric\": \"L2\"}\n";
	size_t big = 9 * CS + 123;
	uint8_t *buf = malloc(big);
	char *p;
	int fd;

	assert_non_null(buf);
	assert_int_equal(mkdir(src, 0755), 0);
	mkd(src, "tenant-a");
	mkd(src, "tenant-a/idx1");
	mkd(src, "tenant-a/idx2");
	mkd(src, "tenant-b");
	mkd(src, "tenant-b/empty-dir");
	put_index(src, "tenant-a/idx1/index.faiss", "flat_l2.faiss", 1600000001);
	put(src, "tenant-a/idx1/metadata.json", meta, sizeof(meta) - 1, 0640, 1600000002);
	t_fill_text(buf, 2 * CS + 5, 3);
	put(src, "tenant-a/idx1/vectors.json", buf, 2 * CS + 5, 0600, 1600000003);
	t_fill_mixed(buf, big, 11);
	put(src, "tenant-a/idx2/index.faiss", buf, big, 0644, 1600000004);
	put(src, "tenant-a/idx2/metadata.json", "", 0, 0644, 1600000005);
	put(src, "tenant-a/idx2/vectors.json", "x", 1, 0755, 1600000006);
	t_fill_random(buf, big, 13);
	put(src, "old.faiss", buf, big, 0644, 1600000007);
	put(src, "old.json", meta, sizeof(meta) - 1, 0644, 1600000008);
	put(src, "README", "odd file\n", 9, 0444, 1600000009);

	/* sparse: a hole of several chunks, then data */
	p = join(src, "tenant-b/sparse.faiss");
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "tail", 4, 6 * CS + 100), 4);
	close(fd);
	set_time(p, 1600000010, 0);
	free(p);
	put(src, "tenant-b/zeros", (const uint8_t[CS]){0}, CS, 0644, 1600000011);

	dir_attrs(src, "tenant-a/idx1", 0750, 1500000001);
	dir_attrs(src, "tenant-a/idx2", 0700, 1500000002);
	dir_attrs(src, "tenant-a", 0755, 1500000003);
	dir_attrs(src, "tenant-b/empty-dir", 0711, 1500000004);
	dir_attrs(src, "tenant-b", 0755, 1500000005);
	free(buf);
}

#define NFILES 11
#define NDIRS  5

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_params p;

	assert_non_null(f);
	f->tmp = t_tmpdir();
	snprintf(f->src, sizeof(f->src), "%s/src", f->tmp);
	snprintf(f->store, sizeof(f->store), "%s/store", f->tmp);
	snprintf(f->dst, sizeof(f->dst), "%s/dst", f->tmp);
	make_src(f->src);
	store_params_default(&p);
	p.chunk_size = CS;
	assert_int_equal(store_create(f->store, &p), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	t_rm_rf(f->tmp);
	free(f->tmp);
	free(f);
	return 0;
}

static int do_import(const char *src, const char *store, unsigned threads,
		     struct store_import_stats *stats)
{
	struct store_import_opts o = {.threads = threads};
	struct store *st = NULL;
	int r = store_open(store, 0, &st);

	assert_int_equal(r, 0);
	r = store_import(st, src, &o, stats);
	store_close(st);
	return r;
}

static int do_export(const char *store, const char *dst)
{
	struct store *st = NULL;
	int r = store_open(store, STORE_RDONLY, &st);

	assert_int_equal(r, 0);
	r = store_export(st, dst, false);
	store_close(st);
	return r;
}

/* Checks that every entry under @a/@rel is in @b with the same bytes, mode, mtime;
 * returns the number of entries. */
static int compare_tree(const char *a, const char *b, const char *rel)
{
	char *pa = join(a, rel), *pb = join(b, rel);
	DIR *d = opendir(pa);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		struct stat sa, sb;
		char *r2, *fa, *fb;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		r2 = join(rel, de->d_name);
		fa = join(a, r2);
		fb = join(b, r2);
		assert_int_equal(lstat(fa, &sa), 0);
		if (lstat(fb, &sb) != 0)
			fail_msg("%s is missing", fb);
		assert_int_equal(sa.st_mode, sb.st_mode);
		if (S_ISDIR(sa.st_mode)) {
			n += compare_tree(a, b, r2);
		} else if (S_ISLNK(sa.st_mode)) {
			char ta[512] = {0}, tb[512] = {0};

			assert_true(readlink(fa, ta, sizeof(ta) - 1) > 0);
			assert_true(readlink(fb, tb, sizeof(tb) - 1) > 0);
			assert_string_equal(ta, tb);
			assert_int_equal(sa.st_uid, sb.st_uid);
			assert_int_equal(sa.st_gid, sb.st_gid);
		} else if (!S_ISREG(sa.st_mode)) {
			assert_int_equal(sa.st_rdev, sb.st_rdev);
			assert_int_equal(sa.st_uid, sb.st_uid);
			assert_int_equal(sa.st_gid, sb.st_gid);
		} else {
			size_t la, lb;
			uint8_t *ba = t_read_file(fa, &la), *bb = t_read_file(fb, &lb);

			assert_non_null(ba);
			assert_non_null(bb);
			assert_int_equal(la, lb);
			assert_memory_equal(ba, bb, la);
			free(ba);
			free(bb);
		}
		assert_int_equal(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
		assert_int_equal(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
		n++;
		free(r2);
		free(fa);
		free(fb);
	}
	closedir(d);
	free(pa);
	free(pb);
	return n;
}

/* Inode numbers of every store file, in a fixed order. */
struct inodes {
	char name[NFILES + NDIRS + 4][128];
	ino_t ino[NFILES + NDIRS + 4];
	int n;
};

static int ino_cb_count;
static struct inodes *ino_cb_out;
static size_t ino_cb_skip;

static int ino_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || strstr(path, "/" FMT_META_DIR "/"))
		return 0;
	assert_true(ino_cb_count < (int)(sizeof(ino_cb_out->ino) / sizeof(ino_cb_out->ino[0])));
	snprintf(ino_cb_out->name[ino_cb_count], 128, "%s", path + ino_cb_skip);
	ino_cb_out->ino[ino_cb_count++] = sb->st_ino;
	return 0;
}

static void get_inodes(const char *store, struct inodes *out)
{
	memset(out, 0, sizeof(*out));
	ino_cb_out = out;
	ino_cb_count = 0;
	ino_cb_skip = strlen(store);
	assert_int_equal(nftw(store, ino_cb, 16, FTW_PHYS), 0);
	out->n = ino_cb_count;
}

static ino_t ino_of(const struct inodes *in, const char *rel)
{
	for (int i = 0; i < in->n; i++)
		if (!strcmp(in->name[i] + 1, rel))
			return in->ino[i];
	fail_msg("%s not in the store", rel);
	return 0;
}

static void test_round_trip(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	char *meta;

	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(s.files, NFILES);
	assert_int_equal(s.dirs, NDIRS);
	assert_int_equal(s.skipped, 0);
	assert_true(s.stored_bytes > 0);

	/* the store mirrors SRC (objects instead of files, same modes and mtimes) */
	meta = join(f->store, FMT_META_DIR);
	assert_int_equal(access(meta, F_OK), 0);
	free(meta);

	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(compare_tree(f->src, f->dst, "."), NFILES + NDIRS);
	assert_int_equal(compare_tree(f->dst, f->src, "."), NFILES + NDIRS);
}

static void test_rerun_skips(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	struct inodes before, after;
	char *p;

	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	get_inodes(f->store, &before);
	assert_int_equal(before.n, NFILES);

	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(s.files, NFILES);
	assert_int_equal(s.skipped, NFILES);
	get_inodes(f->store, &after);
	assert_int_equal(after.n, NFILES);
	for (int i = 0; i < before.n; i++)
		assert_int_equal(ino_of(&after, before.name[i] + 1), before.ino[i]);

	/* new content, same size: only that file is imported again */
	p = join(f->src, "tenant-a/idx1/metadata.json");
	assert_int_equal(t_write_file(p, "{\"dimension\": 32, \"metric\": \"IP\"}\n", 35), 0);
	free(p);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(s.skipped, NFILES - 1);
	get_inodes(f->store, &after);
	for (int i = 0; i < before.n; i++) {
		const char *rel = before.name[i] + 1;

		if (!strcmp(rel, "tenant-a/idx1/metadata.json"))
			assert_int_not_equal(ino_of(&after, rel), before.ino[i]);
		else
			assert_int_equal(ino_of(&after, rel), before.ino[i]);
	}

	/* mode and mtime only: skipped, but the store follows */
	p = join(f->src, "old.json");
	assert_int_equal(chmod(p, 0600), 0);
	set_time(p, 1700000000, 42);
	free(p);
	assert_int_equal(do_import(f->src, f->store, 1, &s), 0);
	assert_int_equal(s.skipped, NFILES);
	get_inodes(f->store, &after);
	assert_int_equal(ino_of(&after, "old.json"), ino_of(&before, "old.json"));

	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(compare_tree(f->src, f->dst, "."), NFILES + NDIRS);
}

/* Lists the store's entries (names at every depth) into one string. */
static void list_store(const char *dir, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d))) {
		struct stat sb;
		char *p;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		p = join(dir, de->d_name);
		assert_int_equal(lstat(p, &sb), 0);
		snprintf(out + strlen(out), cap - strlen(out), "%s:%lu:%ld.%ld,", p,
			 (unsigned long)sb.st_ino, (long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
		if (S_ISDIR(sb.st_mode))
			list_store(p, out, cap);
		free(p);
	}
	closedir(d);
}

static void expect_refused(struct fixture *f)
{
	static char before[16384], after[16384];
	struct store_import_stats s;

	before[0] = after[0] = 0;
	list_store(f->store, before, sizeof(before));
	assert_int_equal(do_import(f->src, f->store, 2, &s), -EINVAL);
	list_store(f->store, after, sizeof(after));
	assert_string_equal(before, after);
}

static void lstat_of(const char *root, const char *rel, struct stat *sb)
{
	char *p = join(root, rel);

	if (lstat(p, sb) != 0)
		fail_msg("%s: %s", p, strerror(errno));
	free(p);
}

static void mk_link(const char *root, const char *target, const char *rel)
{
	char *p = join(root, rel);
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1400000000, .tv_nsec = 7}};

	assert_int_equal(symlink(target, p), 0);
	assert_int_equal(utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW), 0);
	free(p);
}

static void mk_node(const char *root, const char *rel, mode_t mode, dev_t rdev)
{
	char *p = join(root, rel);

	assert_int_equal(mknod(p, mode, rdev), 0);
	assert_int_equal(chmod(p, mode & 07777), 0);
	set_time(p, 1400000001, 3);
	free(p);
}

static void hard_link(const char *root, const char *from, const char *to)
{
	char *a = join(root, from), *b = join(root, to);

	assert_int_equal(link(a, b), 0);
	free(a);
	free(b);
}

/* Symlinks (relative, absolute, dangling, to a directory), a FIFO, a socket, a
 * character device (as root), a hard-linked pair and a triple across directories:
 * stored natively, the feature bit set, a re-import keeps every inode, and export
 * gives them back with the same types, targets, modes, mtimes and link groups. */
static void test_links_round_trip(void **state)
{
	struct fixture *f = *state;
	bool root = geteuid() == 0;
	struct store_import_stats s;
	struct stat a, b, c, x;
	struct store *st;
	char buf[64] = {0};
	char *p;

	mk_link(f->src, "index.faiss", "tenant-a/idx1/rel.faiss");
	mk_link(f->src, "/etc/hostname", "tenant-a/abs");
	mk_link(f->src, "../nowhere/at/all", "tenant-b/dangling");
	mk_link(f->src, "../tenant-a", "tenant-b/dirlink");
	mk_node(f->src, "tenant-b/pipe", S_IFIFO | 0640, 0);
	mk_node(f->src, "tenant-b/sock", S_IFSOCK | 0755, 0);
	if (root)
		mk_node(f->src, "tenant-b/null", S_IFCHR | 0666, makedev(1, 3));
	hard_link(f->src, "tenant-a/idx1/index.faiss", "tenant-a/idx1/twin.faiss");
	hard_link(f->src, "tenant-b/zeros", "tenant-a/zeros2");
	hard_link(f->src, "tenant-b/zeros", "tenant-a/idx2/zeros3");
	dir_attrs(f->src, "tenant-a/idx1", 0750, 1500000001);
	dir_attrs(f->src, "tenant-a/idx2", 0700, 1500000002);
	dir_attrs(f->src, "tenant-a", 0755, 1500000003);
	dir_attrs(f->src, "tenant-b", 0755, 1500000005);

	assert_int_equal(store_open(f->store, 0, &st), 0);
	assert_false(store_has_links(st));
	store_close(st);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(s.files, NFILES);
	assert_int_equal(s.symlinks, 4);
	assert_int_equal(s.specials, root ? 3 : 2);
	assert_int_equal(s.links, 3);
	assert_int_equal(store_open(f->store, 0, &st), 0);
	assert_true(store_has_links(st));
	store_close(st);

	/* in the store, natively */
	lstat_of(f->store, "tenant-a/idx1/rel.faiss", &x);
	assert_true(S_ISLNK(x.st_mode));
	p = join(f->store, "tenant-b/dangling");
	assert_int_equal(readlink(p, buf, sizeof(buf) - 1), 17);
	assert_string_equal(buf, "../nowhere/at/all");
	free(p);
	assert_int_equal(x.st_mtim.tv_sec, 1400000000);
	lstat_of(f->store, "tenant-b/pipe", &x);
	assert_true(S_ISFIFO(x.st_mode));
	assert_int_equal(x.st_mode & 07777, 0640);
	lstat_of(f->store, "tenant-b/sock", &x);
	assert_true(S_ISSOCK(x.st_mode));
	lstat_of(f->store, "tenant-a/idx1/index.faiss", &a);
	lstat_of(f->store, "tenant-a/idx1/twin.faiss", &b);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	lstat_of(f->store, "tenant-b/zeros", &a);
	lstat_of(f->store, "tenant-a/zeros2", &b);
	lstat_of(f->store, "tenant-a/idx2/zeros3", &c);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_nlink, 3);

	/* again: nothing rewritten, the links kept */
	assert_int_equal(do_import(f->src, f->store, 1, &s), 0);
	assert_int_equal(s.skipped, NFILES);
	assert_int_equal(s.links, 3);
	lstat_of(f->store, "tenant-a/zeros2", &x);
	assert_int_equal(x.st_ino, a.st_ino);
	assert_int_equal(x.st_nlink, 3);

	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(compare_tree(f->src, f->dst, "."),
			 NFILES + NDIRS + 4 + (root ? 3 : 2) + 3);
	lstat_of(f->dst, "tenant-a/idx1/index.faiss", &a);
	lstat_of(f->dst, "tenant-a/idx1/twin.faiss", &b);
	assert_int_equal(a.st_ino, b.st_ino);
	assert_int_equal(a.st_nlink, 2);
	lstat_of(f->dst, "tenant-b/zeros", &a);
	lstat_of(f->dst, "tenant-a/idx2/zeros3", &c);
	assert_int_equal(a.st_ino, c.st_ino);
	assert_int_equal(a.st_nlink, 3);
	if (root) {
		lstat_of(f->dst, "tenant-b/null", &x);
		assert_true(S_ISCHR(x.st_mode));
		assert_int_equal(x.st_rdev, makedev(1, 3));
	}
}

/* A symlink that replaced a file in SRC replaces the object in the store (and the
 * other way round) on the next import. */
static void test_link_replaces_file(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	struct stat x;
	char *p = join(f->src, "tenant-a/idx1/index.faiss");

	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(symlink("somewhere-else", p), 0);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	assert_int_equal(s.symlinks, 1);
	lstat_of(f->store, "tenant-a/idx1/index.faiss", &x);
	assert_true(S_ISLNK(x.st_mode));
	assert_int_equal(unlink(p), 0);
	put(f->src, "tenant-a/idx1/index.faiss", "new bytes", 9, 0644, 1600000000);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	lstat_of(f->store, "tenant-a/idx1/index.faiss", &x);
	assert_true(S_ISREG(x.st_mode));
	free(p);
}

static void test_refuses_reserved_and_unreadable(void **state)
{
	struct fixture *f = *state;
	char *p = join(f->src, FMT_META_DIR);

	assert_int_equal(mkdir(p, 0755), 0);
	expect_refused(f);
	assert_int_equal(rmdir(p), 0);
	free(p);

	if (geteuid() != 0) { /* root reads everything */
		p = join(f->src, "old.json");
		assert_int_equal(chmod(p, 0), 0);
		expect_refused(f);
		free(p);
	}
}

static void test_refuses_overlap(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	struct store_params p;
	char *inner = join(f->src, "tenant-b/store");
	char *src2 = join(f->store, "data");

	/* STORE inside SRC */
	store_params_default(&p);
	assert_int_equal(store_create(inner, &p), 0);
	assert_int_equal(do_import(f->src, inner, 1, &s), -EINVAL);
	t_rm_rf(inner);

	/* SRC inside STORE, and SRC == STORE */
	assert_int_equal(mkdir(src2, 0755), 0);
	assert_int_equal(do_import(src2, f->store, 1, &s), -EINVAL);
	assert_int_equal(do_import(f->store, f->store, 1, &s), -EINVAL);
	free(inner);
	free(src2);
}

/* Objects written with 1 and with 3 threads are the same bytes. */
static void test_threads_same_bytes(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	struct store_params p;
	char *store2 = join(f->tmp, "store2");
	static const char *const files[] = {
		"tenant-a/idx2/index.faiss",   "old.faiss",
		"tenant-b/sparse.faiss",       "tenant-a/idx1/vectors.json",
		"tenant-a/idx2/metadata.json",
	};

	store_params_default(&p);
	p.chunk_size = CS;
	assert_int_equal(store_create(store2, &p), 0);
	assert_int_equal(do_import(f->src, f->store, 1, &s), 0);
	assert_int_equal(do_import(f->src, store2, 3, &s), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char *a = join(f->store, files[i]), *b = join(store2, files[i]);
		struct store_object *oa = NULL, *ob = NULL;
		size_t la, lb;
		uint8_t *ba, *bb;

		assert_int_equal(store_object_openat(AT_FDCWD, a, a, &oa), 0);
		assert_int_equal(store_object_openat(AT_FDCWD, b, b, &ob), 0);
		assert_int_equal(store_object_info(oa)->nchunks, store_object_info(ob)->nchunks);
		for (uint64_t c = 0; c < store_object_info(oa)->nchunks; c++) {
			assert_true(store_object_chunk_hash(oa, c) ==
				    store_object_chunk_hash(ob, c));
			assert_int_equal(store_object_chunk_kind(oa, c),
					 store_object_chunk_kind(ob, c));
		}
		store_object_free(oa);
		store_object_free(ob);
		ba = t_read_file(a, &la);
		bb = t_read_file(b, &lb);
		assert_int_equal(la, lb);
		assert_memory_equal(ba, bb, la);
		free(ba);
		free(bb);
		free(a);
		free(b);
	}
	t_rm_rf(store2);
	free(store2);
}

/* Import with explicit params different from the store's defaults. */
static void test_params(void **state)
{
	struct fixture *f = *state;
	struct store_params p = {.chunk_size = 16384, .level = 9};
	struct store_import_opts o = {.threads = 2, .params = &p};
	struct store_import_stats s;
	struct store_object *ob = NULL;
	struct store *st = NULL;
	char *obj = join(f->store, "old.faiss");

	assert_int_equal(store_open(f->store, 0, &st), 0);
	assert_int_equal(store_import(st, f->src, &o, &s), 0);
	assert_int_equal(s.skipped, 0);
	assert_int_equal(store_object_openat(AT_FDCWD, obj, obj, &ob), 0);
	assert_int_equal(store_object_info(ob)->chunk_size, 16384);
	assert_int_equal(store_object_info(ob)->level, 9);
	store_object_free(ob);
	/* same params again: all skipped; store defaults now: all different chunk size */
	assert_int_equal(store_import(st, f->src, &o, &s), 0);
	assert_int_equal(s.skipped, NFILES);
	store_close(st);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	/* files of one chunk or less compare equal at any chunk size only if the chunk
	 * size matches; every file is re-imported */
	assert_int_equal(s.skipped, 0);
	free(obj);
	assert_int_equal(do_export(f->store, f->dst), 0);
	assert_int_equal(compare_tree(f->src, f->dst, "."), NFILES + NDIRS);
}

/* A sparse source (data, holes, data across a chunk edge, data at the end) is
 * read hole-aware and comes back byte for byte, its holes as hole chunks. */
static void test_sparse_source(void **state)
{
	struct fixture *f = *state;
	struct store_import_stats s;
	struct store_object *ob = NULL;
	struct store_dctx *dc = store_dctx_new();
	char *path = join(f->src, "sparse.faiss"), *obj = join(f->store, "sparse.faiss");
	const size_t size = 48u << 20;
	const uint64_t at[] = {5000, (20u << 20) - 100, size - 10};
	uint8_t *want, *got = malloc(size), text[300];
	size_t len;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_non_null(got);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	for (int i = 0; i < 3; i++) {
		t_fill_text(text, sizeof(text), (uint64_t)i);
		assert_int_equal(pwrite(fd, text, i == 2 ? 10 : sizeof(text), (off_t)at[i]),
				 i == 2 ? 10 : (ssize_t)sizeof(text));
	}
	close(fd);
	assert_int_equal(do_import(f->src, f->store, 2, &s), 0);
	want = t_read_file(path, &len);
	assert_int_equal(len, size);
	assert_int_equal(store_object_openat(AT_FDCWD, obj, obj, &ob), 0);
	assert_int_equal(store_object_pread(ob, dc, got, size, 0), (ssize_t)size);
	assert_memory_equal(got, want, size);
	assert_int_equal(store_object_chunk_kind(ob, (30u << 20) / CS), FMT_CHUNK_HOLE);
	assert_int_not_equal(store_object_chunk_kind(ob, at[1] / CS + 1), FMT_CHUNK_HOLE);
	store_object_free(ob);
	store_dctx_free(dc);
	free(want);
	free(got);
	free(path);
	free(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rerun_skips, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link_replaces_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refuses_reserved_and_unreadable, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_refuses_overlap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_same_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_source, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
