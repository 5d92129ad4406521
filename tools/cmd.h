/* cmd.h - the subcommands of the faissfs command-line tool.
 *
 * Each takes the arguments after the tool name (argv[0] is the subcommand) and
 * returns the process exit code: 0 success, 1 failure at run time (a message on
 * stderr says what and what to do), 2 usage error.
 */
#ifndef FAISSFS_TOOLS_CMD_H
#define FAISSFS_TOOLS_CMD_H

#include <stdio.h>

#define EXIT_USAGE 2

int cmd_init(int argc, char *argv[]);
int cmd_import(int argc, char *argv[]);
int cmd_export(int argc, char *argv[]);
int cmd_inspect(int argc, char *argv[]);
int cmd_stat(int argc, char *argv[]);
int cmd_set(int argc, char *argv[]);
int cmd_verify(int argc, char *argv[]);
int cmd_compact(int argc, char *argv[]);

/* Writes @s to @f as a JSON string, quoted and escaped. */
void cmd_json_str(FILE *f, const char *s);

/* Shared option parsing: "256K", "1M", "4096" -> bytes.  Returns 0 or -EINVAL. */
int cmd_parse_size(const char *s, unsigned long long *out);

#endif
