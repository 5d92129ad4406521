/* cmd_opts.c - the command-line parsing every subcommand shares (cmd_parse()).
 *
 * A command gives its options as a table (struct cmd_opt) and the number of its
 * positional arguments (struct cmd_spec); the getopt_long loop, -h/--help, the
 * message for a bad value and for a wrong number of arguments, and the exit codes
 * live here once.  Limits: long options only (plus -h), at most OPTS_MAX of them.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cmd.h"

#define OPTS_MAX 16
#define VAL_BASE 256 /* getopt_long's value for opts[i] is VAL_BASE + i */

int cmd_parse_size(const char *s, unsigned long long *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	case 't':
	case 'T':
		v <<= 40;
		end++;
		break;
	default:
		break;
	}
	if (*end == 'i' && end[1] == 'B')
		end += 2;
	else if (*end == 'B')
		end++;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A whole decimal number in lo..hi.  Returns 0 or -EINVAL. */
static int parse_number(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Stores the value @arg of option @o.  Returns 0, or -EINVAL if it is bad (the
 * caller says so). */
static int set_value(const struct cmd_opt *o, const char *arg)
{
	unsigned long long size;
	long long v;

	switch (o->type) {
	case CMD_OPT_TRUE:
	case CMD_OPT_FALSE:
		*(bool *)o->dst = o->type == CMD_OPT_TRUE;
		break;
	case CMD_OPT_SIZE:
		if (cmd_parse_size(arg, &size) < 0 || size < (unsigned long long)o->lo ||
		    size > (unsigned long long)o->hi)
			return -EINVAL;
		*(uint32_t *)o->dst = (uint32_t)size;
		break;
	case CMD_OPT_INT:
		if (parse_number(arg, o->lo, o->hi, &v) < 0)
			return -EINVAL;
		*(int *)o->dst = (int)v;
		break;
	case CMD_OPT_UINT:
		if (parse_number(arg, o->lo, o->hi, &v) < 0)
			return -EINVAL;
		*(unsigned *)o->dst = (unsigned)v;
		break;
	case CMD_OPT_STR:
		if (!*arg)
			return -EINVAL;
		*(const char **)o->dst = arg;
		break;
	case CMD_OPT_END:
		assert(0);
		return -EINVAL;
	}
	if (o->seen)
		*o->seen = true;
	return 0;
}

static void bad_value(const struct cmd_spec *spec, const struct cmd_opt *o, const char *arg)
{
	if (o->hint)
		fprintf(stderr, "faissfs %s: bad --%s '%s': %s\n", spec->name, o->name, arg,
			o->hint);
	else
		fprintf(stderr, "faissfs %s: bad --%s '%s': give a number from %lld to %lld\n",
			spec->name, o->name, arg, o->lo, o->hi);
}

bool cmd_parse(const struct cmd_spec *spec, int argc, char *argv[], int *first, int *exit_code)
{
	struct option lopts[OPTS_MAX + 2] = {{0}};
	int n = 0, c, nargs;

	for (; spec->opts && spec->opts[n].type != CMD_OPT_END && n < OPTS_MAX; n++) {
		const struct cmd_opt *o = &spec->opts[n];

		lopts[n].name = o->name;
		lopts[n].has_arg = o->type == CMD_OPT_TRUE || o->type == CMD_OPT_FALSE
					   ? no_argument
					   : required_argument;
		lopts[n].val = VAL_BASE + n;
	}
	assert(!spec->opts || spec->opts[n].type == CMD_OPT_END); /* raise OPTS_MAX */
	lopts[n].name = "help";
	lopts[n].val = 'h';

	optind = 1;
	while ((c = getopt_long(argc, argv, spec->options_first ? "+h" : "h", lopts, NULL)) != -1) {
		const struct cmd_opt *o;

		if (c == 'h') {
			spec->usage(stdout);
			*exit_code = 0;
			return false;
		}
		if (c < VAL_BASE || c >= VAL_BASE + n)
			goto usage; /* getopt_long said what is wrong */
		o = &spec->opts[c - VAL_BASE];
		if (set_value(o, optarg) < 0) {
			bad_value(spec, o, optarg);
			*exit_code = EXIT_USAGE;
			return false;
		}
	}
	nargs = argc - optind;
	if (nargs < spec->min_args || (spec->max_args >= 0 && nargs > spec->max_args)) {
		if (spec->args_error)
			fprintf(stderr, "faissfs %s: %s\n\n", spec->name, spec->args_error);
		goto usage;
	}
	*first = optind;
	return true;
usage:
	spec->usage(stderr);
	*exit_code = EXIT_USAGE;
	return false;
}
