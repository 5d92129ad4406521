/* test_creds.c - S3 credentials from a file ([default], else the first section)
 * or the AWS_ variables, malformed files refused; s3:// URLs parsed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "remote/remote.h"

static char *write_tmp(const char *text)
{
	char *p = strdup("/tmp/ffs-creds.XXXXXX");
	int fd = mkstemp(p);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return p;
}

static void check_file(const char *text, int want, const char *ak, const char *sk)
{
	char *p = write_tmp(text), *a = NULL, *s = NULL;

	assert_int_equal(remote_creds_load(p, &a, &s), want);
	if (want == 0) {
		assert_string_equal(a, ak);
		assert_string_equal(s, sk);
	}
	free(a);
	free(s);
	unlink(p);
	free(p);
}

static void test_files(void **state)
{
	(void)state;
	check_file("[default]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n", 0, "AK1",
		   "SK1");
	check_file("# comment\n[other]\naws_access_key_id=AK2\naws_secret_access_key=SK2\n"
		   "[default]\n aws_access_key_id = AK3 \naws_secret_access_key = SK3\n",
		   0, "AK3", "SK3");
	check_file("[first]\naws_access_key_id=AK4\naws_secret_access_key=SK4\n[second]\n"
		   "aws_access_key_id=AK5\naws_secret_access_key=SK5\n",
		   0, "AK4", "SK4");
	check_file("[default]\naws_access_key_id = AK1\n", -EINVAL, NULL, NULL);
	check_file("[default\naws_access_key_id = AK1\n", -EINVAL, NULL, NULL);
	check_file("[default]\njust words\n", -EINVAL, NULL, NULL);
	check_file("", -EINVAL, NULL, NULL);
}

static void test_missing_and_env(void **state)
{
	char *a = NULL, *s = NULL;

	(void)state;
	assert_int_equal(remote_creds_load("/nonexistent/creds", &a, &s), -ENOENT);
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	assert_int_equal(remote_creds_load(NULL, &a, &s), -ENOENT);
	setenv("AWS_ACCESS_KEY_ID", "ENVAK", 1);
	assert_int_equal(remote_creds_load(NULL, &a, &s), -ENOENT); /* no secret */
	setenv("AWS_SECRET_ACCESS_KEY", "ENVSK", 1);
	assert_int_equal(remote_creds_load(NULL, &a, &s), 0);
	assert_string_equal(a, "ENVAK");
	assert_string_equal(s, "ENVSK");
	free(a);
	free(s);
}

static void test_url_parse(void **state)
{
	char *b, *p;

	(void)state;
	assert_int_equal(remote_s3_url_parse("s3://bucket", &b, &p), 0);
	assert_string_equal(b, "bucket");
	assert_string_equal(p, "");
	free(b);
	free(p);
	assert_int_equal(remote_s3_url_parse("s3://my-bucket.1/a/b//", &b, &p), 0);
	assert_string_equal(b, "my-bucket.1");
	assert_string_equal(p, "a/b");
	free(b);
	free(p);
	assert_int_equal(remote_s3_url_parse("http://bucket/x", &b, &p), -EINVAL);
	assert_int_equal(remote_s3_url_parse("s3://", &b, &p), -EINVAL);
	assert_int_equal(remote_s3_url_parse("s3://ab", &b, &p), -EINVAL);
	assert_int_equal(remote_s3_url_parse("s3://Upper/x", &b, &p), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_missing_and_env),
		cmocka_unit_test(test_url_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
