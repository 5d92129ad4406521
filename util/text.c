/* text.c - JSON strings and Prometheus label values from byte names (text.h). */
#include "text.h"

#include <stdint.h>
#include <string.h>

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD in UTF-8 */

size_t text_utf8_len(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	uint32_t cp;
	size_t n;

	if (u[0] < 0x80)
		return u[0] ? 1 : 0;
	if (u[0] >= 0xc2 && u[0] <= 0xdf)
		n = 2, cp = u[0] & 0x1f;
	else if (u[0] >= 0xe0 && u[0] <= 0xef)
		n = 3, cp = u[0] & 0x0f;
	else if (u[0] >= 0xf0 && u[0] <= 0xf4)
		n = 4, cp = u[0] & 0x07;
	else
		return 0; /* a continuation byte, 0xc0/0xc1 (overlong) or past U+10FFFF */
	for (size_t i = 1; i < n; i++) {
		if ((u[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL of a truncated sequence */
		cp = cp << 6 | (u[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0; /* overlong, out of range or a surrogate */
	return n;
}

int text_utf8_valid(const char *s)
{
	size_t n;

	while (*s) {
		n = text_utf8_len(s);
		if (!n)
			return 0;
		s += n;
	}
	return 1;
}

/* Writes @s through @out: runs of bytes that need nothing in one piece, and
 * @esc(byte) for the others (which returns the escape, or NULL for as is). */
static void escape(const char *s, const char *(*esc)(unsigned char ch, char buf[8]), text_sink *out,
		   void *arg, const char *bad)
{
	const char *run = s;
	char buf[8];

	while (*s) {
		size_t n = text_utf8_len(s);
		const char *e;

		if (!n)
			e = bad;
		else if (n > 1 || !(e = esc((unsigned char)*s, buf))) {
			s += n;
			continue;
		}
		if (s > run)
			out(arg, run, (size_t)(s - run));
		out(arg, e, strlen(e));
		s += n ? n : 1;
		run = s;
	}
	if (s > run)
		out(arg, run, (size_t)(s - run));
}

static const char *json_esc(unsigned char ch, char buf[8])
{
	static const char hex[] = "0123456789abcdef";

	switch (ch) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	case '\r':
		return "\\r";
	}
	if (ch >= 0x20 && ch != 0x7f)
		return NULL;
	buf[0] = '\\', buf[1] = 'u', buf[2] = '0', buf[3] = '0';
	buf[4] = hex[ch >> 4], buf[5] = hex[ch & 15], buf[6] = '\0';
	return buf;
}

static const char *label_esc(unsigned char ch, char buf[8])
{
	(void)buf;
	if (ch == '"')
		return "\\\"";
	if (ch == '\\')
		return "\\\\";
	if (ch == '\n')
		return "\\n";
	return NULL;
}

void text_json(const char *s, text_sink *out, void *arg)
{
	out(arg, "\"", 1);
	escape(s, json_esc, out, arg, "\\ufffd");
	out(arg, "\"", 1);
}

void text_label(const char *s, text_sink *out, void *arg)
{
	escape(s, label_esc, out, arg, replacement);
}

static void file_sink(void *arg, const char *p, size_t n)
{
	fwrite(p, 1, n, arg);
}

void text_json_file(FILE *f, const char *s)
{
	text_json(s, file_sink, f);
}
