/* test_walk.c - store_walk(): sorted pre-order with depths, .faissfs skipped only
 * at the root, symlinks and FIFOs shown but never followed, STORE_WALK_SKIP, a
 * callback error stops the walk, store_walk_dir() on any directory, entries gone
 * during the walk (ERR_OPEN, ERR_STAT), and a start directory below the root
 * (refused through a symlink or with "." and ".." components). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_test.h"

struct seen {
	char text[2048];     /* "TYPE rel depth;" for each entry */
	const char *skip;    /* a directory to answer STORE_WALK_SKIP for */
	const char *stop_at; /* an entry to answer -EINTR for */
};

static int record(void *arg, const struct store_walk_entry *e)
{
	static const char *const names[] = {"F", "D", "O", "ES", "EO", "EL"};
	struct seen *s = arg;
	size_t at = strlen(s->text);

	snprintf(s->text + at, sizeof(s->text) - at, "%s %s %d;", names[e->type], e->rel, e->depth);
	if (e->type == STORE_WALK_FILE || e->type == STORE_WALK_DIR ||
	    e->type == STORE_WALK_OTHER) {
		assert_non_null(e->st);
		assert_true(e->dirfd >= 0);
		assert_string_equal(strrchr(e->rel, '/') ? strrchr(e->rel, '/') + 1 : e->rel,
				    e->name);
	}
	if (s->stop_at && !strcmp(e->rel, s->stop_at))
		return -EINTR;
	if (s->skip && !strcmp(e->rel, s->skip))
		return STORE_WALK_SKIP;
	return 0;
}

static char *tmp;
static struct store *st;

static void put(const char *rel)
{
	char path[600];
	FILE *f;

	snprintf(path, sizeof(path), "%s/store/%s", tmp, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(rel, f);
	fclose(f);
}

static void dir(const char *rel)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/store/%s", tmp, rel);
	assert_int_equal(mkdir(path, 0755), 0);
}

/* STORE: a/b/y, a/x, a/.faissfs (a plain file below the root), c, d -> a, p (FIFO). */
static int setup(void **state)
{
	struct store_params p;
	char path[600];

	(void)state;
	tmp = t_tmpdir();
	snprintf(path, sizeof(path), "%s/store", tmp);
	store_params_default(&p);
	assert_int_equal(store_create(path, &p), 0);
	assert_int_equal(store_open(path, STORE_RDONLY, &st), 0);
	dir("a");
	dir("a/b");
	put("a/b/y");
	put("a/x");
	put("a/.faissfs");
	put("c");
	snprintf(path, sizeof(path), "%s/store/d", tmp);
	assert_int_equal(symlink("a", path), 0);
	snprintf(path, sizeof(path), "%s/store/p", tmp);
	assert_int_equal(mkfifo(path, 0600), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_close(st);
	t_rm_rf(tmp);
	free(tmp);
	return 0;
}

static void test_whole_tree(void **state)
{
	struct seen s = {{0}};

	(void)state;
	assert_int_equal(store_walk(st, "", record, &s), 0);
	assert_string_equal(s.text, "D a 0;F a/.faissfs 1;D a/b 1;F a/b/y 2;F a/x 1;F c 0;"
				    "O d 0;O p 0;");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_walk(st, NULL, record, &s), 0);
	assert_string_equal(s.text, "D a 0;F a/.faissfs 1;D a/b 1;F a/b/y 2;F a/x 1;F c 0;"
				    "O d 0;O p 0;");
}

static void test_skip_and_stop(void **state)
{
	struct seen s = {.skip = "a/b"};

	(void)state;
	assert_int_equal(store_walk(st, "", record, &s), 0);
	assert_string_equal(s.text, "D a 0;F a/.faissfs 1;D a/b 1;F a/x 1;F c 0;O d 0;O p 0;");

	memset(&s, 0, sizeof(s));
	s.stop_at = "a/b/y";
	assert_int_equal(store_walk(st, "", record, &s), -EINTR);
	assert_string_equal(s.text, "D a 0;F a/.faissfs 1;D a/b 1;F a/b/y 2;");
}

static void test_start_below_root(void **state)
{
	struct seen s = {{0}};
	int r;

	(void)state;
	assert_int_equal(store_walk(st, "a", record, &s), 0);
	assert_string_equal(s.text, "F a/.faissfs 0;D a/b 0;F a/b/y 1;F a/x 0;");
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_walk(st, "a/b", record, &s), 0);
	assert_string_equal(s.text, "F a/b/y 0;");

	r = store_walk(st, "d", record, &s); /* a symlink to a */
	assert_true(r == -ELOOP || r == -ENOTDIR);
	assert_int_equal(store_walk(st, "c", record, &s), -ENOTDIR);
	assert_int_equal(store_walk(st, "nope", record, &s), -ENOENT);
	assert_int_equal(store_walk(st, "../store", record, &s), -EINVAL);
	assert_int_equal(store_walk(st, "a/../a", record, &s), -EINVAL);
	assert_int_equal(store_walk(st, "/a", record, &s), -EINVAL);
	assert_int_equal(store_walk(st, "a//b", record, &s), -EINVAL);
	assert_int_equal(store_walk(st, "a/b/", record, &s), -EINVAL);
	assert_string_equal(s.text, "F a/b/y 0;");
}

/* store_walk_dir() shows what store_walk() skips at the root. */
static void test_any_dir(void **state)
{
	struct seen s = {.skip = ".faissfs"};

	(void)state;
	assert_int_equal(store_walk_dir(store_root_fd(st), record, &s), 0);
	assert_string_equal(s.text, "D .faissfs 0;D a 0;F a/.faissfs 1;D a/b 1;F a/b/y 2;"
				    "F a/x 1;F c 0;O d 0;O p 0;");
	assert_int_equal(store_walk_dir(-1, record, &s), -EBADF);
}

/* Removes q/ and r when the walk shows q: the walk then cannot open q (ERR_OPEN)
 * nor examine r (ERR_STAT), and goes on. */
static int remove_on_q(void *arg, const struct store_walk_entry *e)
{
	if (e->type == STORE_WALK_DIR && !strcmp(e->rel, "q")) {
		assert_int_equal(unlinkat(e->dirfd, "q", AT_REMOVEDIR), 0);
		assert_int_equal(unlinkat(e->dirfd, "r", 0), 0);
	}
	if (e->type == STORE_WALK_ERR_OPEN)
		assert_non_null(e->st);
	if (e->type == STORE_WALK_ERR_STAT)
		assert_null(e->st);
	return record(arg, e);
}

static void test_gone_during_walk(void **state)
{
	struct seen s = {{0}};

	(void)state;
	dir("q");
	put("r");
	assert_int_equal(store_walk(st, "", remove_on_q, &s), 0);
	assert_string_equal(s.text, "D a 0;F a/.faissfs 1;D a/b 1;F a/b/y 2;F a/x 1;F c 0;"
				    "O d 0;O p 0;D q 0;EO q 0;ES r 0;");
}

/* store_open_parent(): the directory of a store path, never through a symlink. */
static void test_open_parent(void **state)
{
	const char *base = NULL;
	int fd;

	(void)state;
	fd = store_open_parent(st, "a/b/y", &base);
	assert_true(fd >= 0);
	assert_string_equal(base, "y");
	assert_int_equal(faccessat(fd, base, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	close(fd);
	fd = store_open_parent(st, "c", &base); /* at the root */
	assert_true(fd >= 0);
	assert_string_equal(base, "c");
	assert_int_equal(faccessat(fd, base, F_OK, AT_SYMLINK_NOFOLLOW), 0);
	close(fd);
	base = NULL;
	fd = store_open_parent(st, "d/x", &base); /* d is a symlink to a */
	assert_true(fd == -ELOOP || fd == -ENOTDIR);
	assert_int_equal(store_open_parent(st, "nope/x", &base), -ENOENT);
	assert_int_equal(store_open_parent(st, "a/../c", &base), -EINVAL);
	assert_int_equal(store_open_parent(st, "a/b/", &base), -EINVAL);
	assert_int_equal(store_open_parent(st, "/c", &base), -EINVAL);
	assert_int_equal(store_open_parent(st, "a/..", &base), -EINVAL);
	assert_null(base); /* set only on success */
}

/* store_walk_group(): the FAISSx layouts, as faissfs stat and the metrics group. */
static void test_group(void **state)
{
	static const char *cases[][3] = {
		{"acme/idx/index.faiss", "acme", "idx"},
		{"acme/idx/sub/x.json", "acme", "idx"},
		{"acme/old.faiss", "acme", "old"},
		{"old.faiss", STORE_TENANT_FLAT, "old"},
		{"old.tar.gz", STORE_TENANT_FLAT, "old.tar"},
		{".hidden", STORE_TENANT_FLAT, ".hidden"},
		{"noext", STORE_TENANT_FLAT, "noext"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *tenant = NULL, *index = NULL;

		assert_int_equal(store_walk_group(cases[i][0], &tenant, &index), 0);
		assert_string_equal(tenant, cases[i][1]);
		assert_string_equal(index, cases[i][2]);
		free(tenant);
		free(index);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_whole_tree),	 cmocka_unit_test(test_skip_and_stop),
		cmocka_unit_test(test_start_below_root), cmocka_unit_test(test_any_dir),
		cmocka_unit_test(test_gone_during_walk), cmocka_unit_test(test_group),
		cmocka_unit_test(test_open_parent),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
