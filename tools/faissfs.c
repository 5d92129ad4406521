/* faissfs.c - the command-line front end: `faissfs <command> [options]`.
 *
 * Dispatches to the subcommands; the mount daemon lives in fuse/, the rest in
 * tools/cmd_*.c over the store API.  Exit codes: 0 ok, 1 failure, 2 usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "store/format.h"
#include "../fuse/mount.h"

#ifndef FAISSFS_VERSION
#define FAISSFS_VERSION "0.1.0"
#endif

struct command {
	const char *name;
	int (*run)(int argc, char *argv[]);
	const char *args;
	const char *help;
};

static const struct command commands[] = {
	{"mount", mnt_main, "STORE MOUNTPOINT [-f] [-o OPT,...]",
	 "serve STORE as a filesystem at MOUNTPOINT"},
	{"init", cmd_init, "STORE [--chunk-size N] [--level N]", "create an empty store"},
	{"import", cmd_import, "SRC STORE [--chunk-size N] [--level N] [--threads N]",
	 "copy a FAISSx data dir into a store (creates it if needed)"},
	{"export", cmd_export, "STORE DST", "write the store's files back out, byte-identical"},
	{"verify", cmd_verify, "STORE [--deep] [--repair] [--json]",
	 "check every object and chunk of a store; quarantine damaged ones"},
	{"inspect", cmd_inspect, "FILE... [--chunks]",
	 "show an object's header, FAISS info and chunk table"},
	{"stat", cmd_stat, "STORE|MOUNT [--json] [--bytes]",
	 "per tenant and index: FAISS type, d, ntotal, sizes, ratio (metadata only)"},
	{"set", cmd_set, "MOUNT [NAME [VALUE]]",
	 "show or change the runtime settings of a mount (cache_size, log_level...)"},
	{"compact", cmd_compact, "STORE [--threads N]",
	 "compress the store's plain files into objects, offline"},
	{"push", cmd_push, "STORE s3://BUCKET[/PREFIX] --endpoint URL [--cred-file F]",
	 "publish a store to an S3 bucket (only changed objects are sent)"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: faissfs <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n           %s\n", commands[i].name, commands[i].args,
			commands[i].help);
	fprintf(f,
		"\n  faissfs <command> --help   options of one command (or: faissfs help "
		"<command>)\n"
		"  faissfs [<command>] --version\n\n"
		"exit codes: 0 success, 1 failure (the message says what to do), 2 usage error\n");
}

/* True if @argv (a subcommand's arguments) asks for the version: "--version"
 * before any "--".  Every subcommand answers it the same way. */
static bool wants_version(int argc, char *argv[])
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--version"))
			return true;
	return false;
}

static int version(void)
{
	printf("faissfs %s (store format %d.%d)\n", FAISSFS_VERSION, FMT_VERSION_MAJOR,
	       FMT_VERSION_MINOR);
	return 0;
}

int main(int argc, char *argv[])
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help") && argc == 3) {
		/* `faissfs help CMD` is `faissfs CMD --help` */
		argv[1] = argv[2];
		argv[2] = "--help";
	} else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
		   !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return version();
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return wants_version(argc - 1, argv + 1)
				       ? version()
				       : commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "faissfs: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return EXIT_USAGE;
}
