/* test_node.c - the mount's inode table over a real store directory, and the
 * mount command's option parsing.
 *
 * Inode table: stable inode numbers for repeated lookups, lookup counts and
 * forgets (parents kept alive by children), name checks, hidden and refused
 * entries, logical sizes of objects and plain files, refresh after a file is
 * replaced, the shared open object, and table growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mnt.h"
#include "node.h"
#include "store/store.h"
#include "tests/unit/store/store_test.h"

struct fx {
	char dir[64];
	struct store *st;
	struct mnt_table *t;
	struct mnt_node *root;
};

static void write_file(int dirfd, const char *name, const void *buf, size_t len)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

/* Writes an object of @len bytes (a pattern) as @name in @dirfd. */
static void write_object(struct fx *fx, int dirfd, const char *name, size_t len)
{
	struct store_params p;
	struct store_writer *w;
	uint8_t *buf = malloc(len);

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + i / 4096);
	store_params_default(&p);
	p.chunk_size = 4096;
	assert_int_equal(store_writer_new(fx->st, &p, &w), 0);
	assert_int_equal(store_writer_write(w, buf, len), 0);
	assert_int_equal(store_writer_commit(w, dirfd, name, 0644, NULL), 0);
	free(buf);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	int rootfd;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_node.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	if (store_create(fx->dir, NULL) || store_open(fx->dir, 0, &fx->st))
		return -1;
	rootfd = store_root_fd(fx->st);
	if (mkdirat(rootfd, "a", 0755) || symlinkat("a", rootfd, "link") ||
	    mkfifoat(rootfd, "fifo", 0644))
		return -1;
	write_file(rootfd, "plain", "hello", 5);
	if (mnt_table_new(rootfd, &fx->t))
		return -1;
	fx->root = mnt_node_get(fx->t, FUSE_ROOT_ID);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	mnt_table_free(fx->t);
	store_close(fx->st);
	t_rm_rf(fx->dir);
	free(fx);
	return 0;
}

static void test_root(void **state)
{
	struct fx *fx = *state;
	struct stat attr;

	assert_non_null(fx->root);
	assert_true(fx->root->is_dir);
	assert_int_equal(mnt_node_stat(fx->t, fx->root, &attr), 0);
	assert_true(S_ISDIR(attr.st_mode));
	assert_int_equal(attr.st_ino, FUSE_ROOT_ID);
	assert_int_equal(attr.st_nlink, 3); /* 2 + "a"; the hidden .faissfs not counted */
	assert_int_equal(mnt_table_count(fx->t), 1);
	assert_null(mnt_node_get(fx->t, 12345));
}

static void test_lookup_same_ino(void **state)
{
	struct fx *fx = *state;
	struct mnt_node *a, *a2, *f;
	struct stat attr;
	uint64_t fino;

	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a", &attr, &a), 0);
	assert_true(S_ISDIR(attr.st_mode));
	assert_int_equal(attr.st_ino, a->ino);
	assert_int_equal(attr.st_nlink, 2);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a", &attr, &a2), 0);
	assert_ptr_equal(a, a2);
	assert_int_equal(a->nlookup, 2);
	assert_ptr_equal(mnt_node_get(fx->t, a->ino), a);
	assert_int_equal(mnt_node_peek(fx->t, fx->root, "a"), a->ino);

	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &f), 0);
	assert_true(S_ISREG(attr.st_mode));
	assert_int_equal(attr.st_size, 5);
	assert_int_equal(attr.st_nlink, 1);
	assert_int_not_equal(f->ino, a->ino);
	assert_int_equal(mnt_table_count(fx->t), 3);

	fino = f->ino;
	mnt_node_forget(fx->t, f, 1);
	assert_null(mnt_node_get(fx->t, fino));
	mnt_node_forget(fx->t, a, 1);
	assert_ptr_equal(mnt_node_get(fx->t, a->ino), a);
	mnt_node_forget(fx->t, a, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
	assert_int_equal(mnt_node_peek(fx->t, fx->root, "a"), 0);
}

static void test_bad_names(void **state)
{
	struct fx *fx = *state;
	struct mnt_node *n, *f;
	struct stat attr;
	char longname[NAME_MAX + 2];

	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "..", &attr, &n), -EINVAL);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, ".", &attr, &n), -EINVAL);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a/b", &attr, &n), -EINVAL);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "", &attr, &n), -ENOENT);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, longname, &attr, &n), -ENAMETOOLONG);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "missing", &attr, &n), -ENOENT);
	/* Hidden: the store's metadata. */
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, ".faissfs", &attr, &n), -ENOENT);
	/* A file is no directory. */
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &f), 0);
	assert_int_equal(mnt_node_lookup(fx->t, f, "x", &attr, &n), -ENOTDIR);
	mnt_node_forget(fx->t, f, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* Symlinks and FIFOs are nodes of their own type; readlink gives the target. */
static void test_symlink_fifo(void **state)
{
	struct fx *fx = *state;
	struct mnt_node *l, *f;
	struct stat attr;
	char buf[16];

	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "link", &attr, &l), 0);
	assert_true(S_ISLNK(attr.st_mode));
	assert_int_equal(attr.st_size, 1);
	assert_int_equal(mnt_node_readlink(l, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "a");
	assert_int_equal(mnt_node_readlink(l, buf, 1), -ENAMETOOLONG);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "fifo", &attr, &f), 0);
	assert_true(S_ISFIFO(attr.st_mode));
	assert_int_equal(mnt_node_readlink(f, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(mnt_node_stat(fx->t, f, &attr), 0);
	assert_true(S_ISFIFO(attr.st_mode));
	assert_int_equal(mnt_node_open_file(f, &attr), -ESTALE); /* never a FIFO opened as a file */
	/* The name now holds another type: the node is stale. */
	assert_int_equal(unlinkat(store_root_fd(fx->st), "fifo", 0), 0);
	write_file(store_root_fd(fx->st), "fifo", "x", 1);
	assert_int_equal(mnt_node_stat(fx->t, f, &attr), -ESTALE);
	mnt_node_forget(fx->t, l, 1);
	mnt_node_forget(fx->t, f, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* Names of one file (hard links) are one node; when the name the node goes by is
 * removed, another name the kernel looked up takes over. */
static void test_hard_links(void **state)
{
	struct fx *fx = *state;
	int rootfd = store_root_fd(fx->st), fd;
	struct mnt_node *a, *p1, *p2, *p3;
	struct stat attr, st;

	assert_int_equal(linkat(rootfd, "plain", rootfd, "a/second", 0), 0);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &p1), 0);
	assert_int_equal(attr.st_nlink, 2);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a", &attr, &a), 0);
	assert_int_equal(mnt_node_lookup(fx->t, a, "second", &attr, &p2), 0);
	assert_ptr_equal(p1, p2);
	assert_int_equal(attr.st_ino, p1->ino);
	assert_int_equal(p1->nlookup, 2);

	/* "plain" goes (as mnt_w_unlink does it): the node answers as a/second. */
	assert_int_equal(unlinkat(rootfd, "plain", 0), 0);
	mnt_node_unlinked(fx->t, fx->root, "plain");
	assert_ptr_equal(p1->parent, a);
	assert_string_equal(p1->name, "second");
	assert_int_equal(mnt_node_stat(fx->t, p1, &attr), 0);
	assert_int_equal(attr.st_nlink, 1);
	fd = mnt_node_open_file(p1, &st);
	assert_true(fd >= 0);
	close(fd);
	/* A new file under the old name is another node. */
	write_file(rootfd, "plain", "other", 5);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &p3), 0);
	assert_ptr_not_equal(p3, p1);
	mnt_node_forget(fx->t, p3, 1);
	mnt_node_forget(fx->t, p1, 2);
	mnt_node_forget(fx->t, a, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* A child keeps its parent alive after the parent's lookups are forgotten. */
static void test_child_holds_parent(void **state)
{
	struct fx *fx = *state;
	struct mnt_node *a, *f;
	struct stat attr;
	uint64_t aino, fino;
	int afd = openat(store_root_fd(fx->st), "a", O_RDONLY | O_DIRECTORY);

	assert_true(afd >= 0);
	write_file(afd, "f", "0123456789", 10);
	close(afd);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a", &attr, &a), 0);
	assert_int_equal(mnt_node_lookup(fx->t, a, "f", &attr, &f), 0);
	assert_int_equal(attr.st_size, 10);
	aino = a->ino;
	fino = f->ino;
	mnt_node_forget(fx->t, a, 1);
	assert_ptr_equal(mnt_node_get(fx->t, aino), a); /* held by f */
	assert_int_equal(mnt_node_stat(fx->t, f, &attr), 0);
	assert_int_equal(attr.st_ino, fino);
	/* The kernel may forget more than it has: clamped, logged. */
	mnt_node_forget(fx->t, f, 5);
	assert_null(mnt_node_get(fx->t, fino));
	assert_null(mnt_node_get(fx->t, aino));
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* A replaced file gets a new node; the old one lives on for its lookups.  A
 * file changed in place is re-probed. */
static void test_replaced(void **state)
{
	struct fx *fx = *state;
	int rootfd = store_root_fd(fx->st);
	struct mnt_node *f, *g;
	struct stat attr;

	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &f), 0);
	assert_int_equal(attr.st_size, 5);
	write_file(rootfd, "plain", "hello world", 11); /* same inode, new size */
	assert_int_equal(mnt_node_stat(fx->t, f, &attr), 0);
	assert_int_equal(attr.st_size, 11);
	assert_int_equal(attr.st_ino, f->ino);

	write_file(rootfd, "plain.new", "bye", 3);
	assert_int_equal(renameat(rootfd, "plain.new", rootfd, "plain"), 0);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &g), 0);
	assert_ptr_not_equal(f, g);
	assert_int_equal(attr.st_size, 3);
	assert_ptr_equal(mnt_node_get(fx->t, f->ino), f);
	assert_int_equal(mnt_node_peek(fx->t, fx->root, "plain"), g->ino);
	mnt_node_forget(fx->t, f, 1);
	mnt_node_forget(fx->t, g, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* Objects: logical size at lookup, st_blocks of the store file, one shared
 * open object per identity, a new one after replacement. */
static void test_object(void **state)
{
	struct fx *fx = *state;
	int rootfd = store_root_fd(fx->st);
	struct mnt_obj *o1 = NULL, *o2 = NULL, *o3 = NULL;
	struct mnt_node *n, *p;
	struct stat attr, st, sst;
	int fd;

	write_object(fx, rootfd, "obj", 100000);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "obj", &attr, &n), 0);
	assert_int_equal(attr.st_size, 100000);
	assert_int_equal(fstatat(rootfd, "obj", &sst, 0), 0);
	assert_int_equal(attr.st_blocks, sst.st_blocks);
	assert_int_equal(n->kind, MNT_KIND_OBJECT);

	fd = mnt_node_open_file(n, &st);
	assert_true(fd >= 0);
	assert_int_equal(mnt_node_object(NULL, n, fd, &st, &o1), 1);
	assert_int_equal(mnt_node_object(NULL, n, fd, &st, &o2), 1);
	assert_ptr_equal(o1, o2);
	close(fd);

	write_object(fx, rootfd, "obj", 5000); /* replaced by rename */
	assert_int_equal(mnt_node_stat(fx->t, n, &attr), 0);
	assert_int_equal(attr.st_size, 5000);
	fd = mnt_node_open_file(n, &st);
	assert_true(fd >= 0);
	assert_int_equal(mnt_node_object(NULL, n, fd, &st, &o3), 1);
	assert_ptr_not_equal(o1, o3);
	assert_true(store_object_info(o3->so)->size == 5000);
	/* The old object stays usable by whoever holds it. */
	assert_true(store_object_info(o1->so)->size == 100000);
	close(fd);
	assert_ptr_equal(n->obj, o3);
	mnt_node_object_put(n, o1); /* replaced: just dropped */
	mnt_node_object_put(n, o2);
	assert_ptr_equal(n->obj, o3);
	mnt_node_object_put(n, o3); /* last user: the node lets go */
	assert_null(n->obj);

	/* Shared while in use; let go only by the last user. */
	fd = mnt_node_open_file(n, &st);
	assert_int_equal(mnt_node_object(NULL, n, fd, &st, &o1), 1);
	assert_int_equal(mnt_node_object(NULL, n, fd, &st, &o2), 1);
	close(fd);
	assert_ptr_equal(o1, o2);
	mnt_node_object_put(n, o1);
	assert_ptr_equal(n->obj, o2);
	mnt_node_object_put(n, o2);
	assert_null(n->obj);
	mnt_node_object_put(n, NULL);

	/* A plain file is no object. */
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "plain", &attr, &p), 0);
	fd = mnt_node_open_file(p, &st);
	assert_true(fd >= 0);
	assert_int_equal(mnt_node_object(NULL, p, fd, &st, &o1), 0);
	close(fd);
	assert_int_equal(mnt_node_open_file(fx->root, &st), -EISDIR);

	/* A corrupt header is a data error. */
	fd = openat(rootfd, "obj", O_WRONLY);
	assert_int_equal(pwrite(fd, "XXXX", 4, 20), 4);
	close(fd);
	assert_int_equal(mnt_node_stat(fx->t, n, &attr), -EUCLEAN);
	mnt_node_forget(fx->t, n, 1);
	mnt_node_forget(fx->t, p, 1);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* Many entries: distinct numbers, all found again after the tables grow. */
static void test_many(void **state)
{
	struct fx *fx = *state;
	int afd = openat(store_root_fd(fx->st), "a", O_RDONLY | O_DIRECTORY);
	enum { N = 700 };
	struct mnt_node *a, *nodes[N];
	struct stat attr;
	char name[32];

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		write_file(afd, name, name, strlen(name));
	}
	close(afd);
	assert_int_equal(mnt_node_lookup(fx->t, fx->root, "a", &attr, &a), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		assert_int_equal(mnt_node_lookup(fx->t, a, name, &attr, &nodes[i]), 0);
		assert_int_equal(attr.st_size, (off_t)strlen(name));
	}
	for (int i = 0; i < N; i++) {
		struct mnt_node *again;

		snprintf(name, sizeof(name), "f%d", i);
		assert_ptr_equal(mnt_node_get(fx->t, nodes[i]->ino), nodes[i]);
		assert_int_equal(mnt_node_lookup(fx->t, a, name, &attr, &again), 0);
		assert_ptr_equal(again, nodes[i]);
		if (i)
			assert_true(nodes[i]->ino != nodes[i - 1]->ino);
	}
	assert_int_equal(mnt_table_count(fx->t), N + 2);
	mnt_node_forget(fx->t, a, 1);
	for (int i = 0; i < N; i++)
		mnt_node_forget(fx->t, nodes[i], 2);
	assert_int_equal(mnt_table_count(fx->t), 1);
}

/* --- options ----------------------------------------------------------------------- */

static int parse(struct mnt_opts *o, const char *line)
{
	char *copy = strdup(line), *argv[32], *save = NULL;
	int argc = 0, rc;

	for (char *tok = strtok_r(copy, " ", &save); tok && argc < 31;
	     tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	rc = mnt_opts_parse(argc, argv, o);
	free(copy);
	return rc;
}

static void test_parse_size(void **state)
{
	unsigned long long v = 7;

	(void)state;
	assert_int_equal(mnt_parse_size("4096", &v), 0);
	assert_true(v == 4096);
	assert_int_equal(mnt_parse_size("64K", &v), 0);
	assert_true(v == 65536);
	assert_int_equal(mnt_parse_size("256M", &v), 0);
	assert_true(v == 256ull << 20);
	assert_int_equal(mnt_parse_size("2GiB", &v), 0);
	assert_true(v == 2ull << 30);
	assert_int_equal(mnt_parse_size("1g", &v), 0);
	assert_true(v == 1ull << 30);
	v = 7;
	assert_int_equal(mnt_parse_size("", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("-1M", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("M", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("12Q", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("1MM", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("99999999999999999999", &v), -EINVAL);
	assert_int_equal(mnt_parse_size("20000000T", &v), -EINVAL);
	assert_true(v == 7); /* untouched on failure */
}

static void test_opts(void **state)
{
	struct mnt_opts o;

	(void)state;
	assert_int_equal(parse(&o, "mount S M"), 0);
	assert_string_equal(o.store, "S");
	assert_string_equal(o.mountpoint, "M");
	assert_false(o.foreground);
	assert_true(o.cache_size == MNT_CACHE_DEFAULT);
	assert_int_equal(o.threads, MNT_THREADS_DEFAULT);
	assert_int_equal(o.ready_fd, -1);
	assert_int_equal(o.log_level, LOG_LVL_INFO);
	mnt_opts_release(&o);

	assert_int_equal(parse(&o, "mount -f S -o cache_size=1G,threads=3 M -o "
				   "ready_fd=5,log_level=warn,ro,allow_other,fsname=x,subtype=y"),
			 0);
	assert_true(o.foreground);
	assert_true(o.cache_size == 1ull << 30);
	assert_int_equal(o.threads, 3);
	assert_int_equal(o.ready_fd, 5);
	assert_int_equal(o.log_level, LOG_LVL_WARN);
	assert_true(o.allow_other);
	assert_string_equal(o.fsname, "x");
	assert_string_equal(o.subtype, "y");
	mnt_opts_release(&o);

	assert_int_equal(parse(&o, "mount -d S M"), 0);
	assert_true(o.foreground);
	assert_true(o.debug);
	assert_int_equal(o.log_level, LOG_LVL_DEBUG);
	mnt_opts_release(&o);

	assert_int_equal(parse(&o, "mount --help"), 0);
	assert_true(o.help);
	mnt_opts_release(&o);

	assert_int_equal(parse(&o, "mount S M -o bogus"), -EINVAL);
	mnt_opts_release(&o);
	/* -o rw: the writable mount; -o compact takes on or off. */
	assert_int_equal(parse(&o, "mount S M -o rw,compact=off"), 0);
	assert_true(o.rw);
	assert_false(o.compact);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o rw,ro"), 0);
	assert_false(o.rw);
	assert_true(o.compact);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o compact=maybe"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -x"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M N"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o cache_size=10K"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o threads=0"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o ready_fd=-1"), -EINVAL);
	mnt_opts_release(&o);
	assert_int_equal(parse(&o, "mount S M -o log_level=loud"), -EINVAL);
	mnt_opts_release(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_same_ino, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_fifo, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_holds_parent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test(test_parse_size),
		cmocka_unit_test(test_opts),
	};

	log_set_level(LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
