/* cmd.h - the subcommands of the faissfs command-line tool.
 *
 * Each takes the arguments after the tool name (argv[0] is the subcommand) and
 * returns the process exit code: 0 success, 1 failure at run time (a message on
 * stderr says what and what to do), 2 usage error.
 */
#ifndef FAISSFS_TOOLS_CMD_H
#define FAISSFS_TOOLS_CMD_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
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
int cmd_push(int argc, char *argv[]);

/* --- stores behind paths (mountpath.c) */

/* The store behind @path: @path itself if it has a superblock, else the store
 * a faissfs mount rooted at @path serves.  NULL if neither.  Caller frees. */
char *cmd_find_store(const char *path);

/* If @path is a file on a faissfs mount, sets *store (what the mount serves:
 * a directory or s3://...) and *rel (@path under the mount's root) and returns
 * 1; returns 0 if it is not, or -errno (the path cannot be resolved).  Caller
 * frees both. */
int cmd_on_mount(const char *path, char **store, char **rel);

/* --- option parsing (cmd_opts.c) ------------------------------------------------
 * Each command describes its options in a table of struct cmd_opt and its
 * positional arguments in a struct cmd_spec; cmd_parse() runs getopt_long over
 * them, so every command answers -h/--help, bad values and wrong argument counts
 * with the same messages and exit codes.
 */

/* "256K", "1M", "4096" -> bytes.  Returns 0 or -EINVAL. */
int cmd_parse_size(const char *s, unsigned long long *out);

enum cmd_opt_type {
	CMD_OPT_END = 0, /* ends a table */
	CMD_OPT_TRUE,	 /* no value: *(bool *)dst = true */
	CMD_OPT_FALSE,	 /* no value: *(bool *)dst = false ("--no-progress") */
	CMD_OPT_SIZE,	 /* SIZE as cmd_parse_size() reads it, lo..hi: *(uint32_t *)dst */
	CMD_OPT_INT,	 /* a decimal number lo..hi: *(int *)dst */
	CMD_OPT_UINT,	 /* a decimal number lo..hi (lo >= 0): *(unsigned *)dst */
	CMD_OPT_STR,	 /* a non-empty string: *(const char **)dst (borrowed argv) */
};

/* One long option.  @dst (and @seen, if not NULL: set true when the option is
 * given) are borrowed for the cmd_parse() call. */
struct cmd_opt {
	const char *name; /* without the leading "--" */
	enum cmd_opt_type type;
	void *dst;
	bool *seen;
	long long lo, hi; /* accepted range of SIZE, INT and UINT values */
	const char *hint; /* what to give instead of a bad value; NULL: "give a number
			     from lo to hi" */
};

/* The common options, as table entries. */
/* clang-format off */
#define CMD_OPT_CHUNK_SIZE(dst, seen) \
	{"chunk-size", CMD_OPT_SIZE, (dst), (seen), 0, UINT32_MAX, \
	 "give a power of two from 4K to 16M, e.g. 256K"}
#define CMD_OPT_LEVEL(dst, seen) \
	{"level", CMD_OPT_INT, (dst), (seen), INT_MIN, INT_MAX, "give a number from 1 to 19"}
#define CMD_OPT_THREADS(dst, max) {"threads", CMD_OPT_UINT, (dst), NULL, 1, (max), NULL}
#define CMD_OPT_FLAG(name, dst)   {(name), CMD_OPT_TRUE, (dst), NULL, 0, 0, NULL}
#define CMD_OPT_PROGRESS(dst) \
	CMD_OPT_FLAG("progress", (dst)), {"no-progress", CMD_OPT_FALSE, (dst), NULL, 0, 0, NULL}
/* clang-format on */

/* A command's command line. */
struct cmd_spec {
	const char *name;	    /* "import": messages start "faissfs import: " */
	void (*usage)(FILE *f);	    /* the --help text */
	const struct cmd_opt *opts; /* ends with a CMD_OPT_END entry */
	int min_args, max_args;	    /* positional arguments; max_args < 0: no limit */
	const char *args_error;	    /* said before the usage when their number is wrong
				       ("expected SRC and STORE"); NULL: the usage alone */
	bool options_first;	    /* options only before the first argument, so a
				       value like "-1" after it is an argument */
};

/* Parses @argv (argv[0] is the command) by @spec: sets the destination of each
 * option given, in order.  Returns true, with *first the index of the first
 * positional argument, if the command is to run; false, with *exit_code set, if it
 * is not: 0 after -h/--help (usage on stdout), EXIT_USAGE after an unknown option,
 * a bad value or a wrong number of arguments (a message and the usage on stderr;
 * the first problem stops the parse). */
bool cmd_parse(const struct cmd_spec *spec, int argc, char *argv[], int *first, int *exit_code);

#endif
