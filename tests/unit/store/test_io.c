/* test_io.c - store_pread_full(): whole reads, short reads only at the end of
 * the file, and the errors of pread(2) passed on (bad fd, a pipe). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "store_test.h"

static void test_regular_file(void **state)
{
	char *dir = t_tmpdir(), path[512];
	uint8_t data[10000], buf[10000];
	int fd;

	(void)state;
	t_fill_random(data, sizeof(data), 7);
	snprintf(path, sizeof(path), "%s/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));

	assert_int_equal(store_pread_full(fd, buf, sizeof(buf), 0), sizeof(buf));
	assert_memory_equal(buf, data, sizeof(data));
	/* short only at the end of the file */
	assert_int_equal(store_pread_full(fd, buf, 100, 9950), 50);
	assert_memory_equal(buf, data + 9950, 50);
	assert_int_equal(store_pread_full(fd, buf, 100, 10000), 0);
	assert_int_equal(store_pread_full(fd, buf, 100, 1 << 30), 0);
	assert_int_equal(store_pread_full(fd, buf, 0, 0), 0);
	close(fd);
	t_rm_rf(dir);
	free(dir);
}

static void test_errors(void **state)
{
	uint8_t buf[16];
	int p[2];

	(void)state;
	assert_int_equal(store_pread_full(-1, buf, sizeof(buf), 0), -EBADF);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(store_pread_full(p[0], buf, sizeof(buf), 0), -ESPIPE);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_regular_file),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
