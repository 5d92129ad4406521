/* test_text.c - util/text: UTF-8 checks, JSON strings and label values from byte names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/text.h"

struct out {
	char buf[256];
	size_t len;
};

static void sink(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	assert_true(o->len + n < sizeof(o->buf));
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static const char *json(const char *s)
{
	static struct out o;

	o.len = 0;
	o.buf[0] = '\0';
	text_json(s, sink, &o);
	return o.buf;
}

static const char *label(const char *s)
{
	static struct out o;

	o.len = 0;
	o.buf[0] = '\0';
	text_label(s, sink, &o);
	return o.buf;
}

static void test_utf8_len(void **state)
{
	(void)state;
	assert_int_equal(text_utf8_len("a"), 1);
	assert_int_equal(text_utf8_len(""), 0);
	assert_int_equal(text_utf8_len("\xc3\xa9"), 2);	     /* é */
	assert_int_equal(text_utf8_len("\xe2\x82\xac"), 3);     /* € */
	assert_int_equal(text_utf8_len("\xf0\x9f\x98\x80"), 4); /* an emoji */
	assert_int_equal(text_utf8_len("\xe9"), 0);		     /* Latin-1 é */
	assert_int_equal(text_utf8_len("\x80"), 0);		     /* a lone continuation */
	assert_int_equal(text_utf8_len("\xc0\xaf"), 0);	     /* overlong '/' */
	assert_int_equal(text_utf8_len("\xe0\x80\xaf"), 0);     /* overlong, 3 bytes */
	assert_int_equal(text_utf8_len("\xed\xa0\x80"), 0);     /* a surrogate */
	assert_int_equal(text_utf8_len("\xf4\x90\x80\x80"), 0); /* past U+10FFFF */
	assert_int_equal(text_utf8_len("\xe2\x82"), 0);	     /* truncated at the NUL */
	assert_true(text_utf8_valid("tenant-\xc3\xa9"));
	assert_false(text_utf8_valid("tenant-\xe9"));
}

static void test_json(void **state)
{
	(void)state;
	assert_string_equal(json("plain"), "\"plain\"");
	assert_string_equal(json("a\"b\\c"), "\"a\\\"b\\\\c\"");
	assert_string_equal(json("l1\nl2\tx\r\x01\x7f"), "\"l1\\nl2\\tx\\r\\u0001\\u007f\"");
	assert_string_equal(json("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
	/* Each invalid byte is one replacement; what follows is kept. */
	assert_string_equal(json("caf\xe9!"), "\"caf\\ufffd!\"");
	assert_string_equal(json("\xe2\x82x"), "\"\\ufffd\\ufffdx\"");
	assert_string_equal(json(""), "\"\"");
}

static void test_label(void **state)
{
	(void)state;
	assert_string_equal(label("t\"\\\n"), "t\\\"\\\\\\n");
	assert_string_equal(label("\xff" "a"), "\xef\xbf\xbd" "a");
	assert_string_equal(label("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
	/* A tab passes: the text format allows any UTF-8 in label values. */
	assert_string_equal(label("a\tb"), "a\tb");
}

static void test_file(void **state)
{
	char *p = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&p, &n);

	(void)state;
	assert_non_null(f);
	text_json_file(f, "x\xe9");
	fclose(f);
	assert_string_equal(p, "\"x\\ufffd\"");
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_len),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_label),
		cmocka_unit_test(test_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
