/* text.h - names as text for machines: JSON strings and Prometheus label values.
 *
 * File names are bytes; JSON and the Prometheus text format are UTF-8.  Both
 * writers pass valid UTF-8 through, escape what the format needs escaped, and
 * write each byte that is not part of a valid UTF-8 sequence (a Latin-1 name,
 * a truncated sequence, an overlong form, a surrogate) as U+FFFD, the
 * replacement character, so the output is always valid.  The replacement is
 * lossy: two names that differ only in invalid bytes look alike; tools that
 * need the bytes use the path itself.
 */
#ifndef FAISSFS_UTIL_TEXT_H
#define FAISSFS_UTIL_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Receives the output in pieces; @p is valid only during the call. */
typedef void text_sink(void *arg, const char *p, size_t n);

/* Length of the valid UTF-8 sequence at @s (1..4), or 0 if the byte at @s does
 * not start one (or @s is at its NUL). */
size_t text_utf8_len(const char *s);

/* True if all of @s is valid UTF-8. */
int text_utf8_valid(const char *s);

/* Writes @s as a JSON string, quotes included: '"', '\' and control characters
 * escaped (\n, \t, \u00XX), invalid bytes as \ufffd. */
void text_json(const char *s, text_sink *out, void *arg);

/* Writes @s as the inside of a Prometheus label value (no quotes): '\', '"'
 * and newline escaped, invalid bytes as U+FFFD. */
void text_label(const char *s, text_sink *out, void *arg);

/* text_json() to a stdio stream. */
void text_json_file(FILE *f, const char *s);

#endif
