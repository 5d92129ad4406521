/* cmd_set.c - `faissfs set MOUNT [NAME VALUE]`: runtime settings of a mount.
 *
 * With NAME and VALUE, changes that setting of the running daemon at once (see
 * mnt_set()); with MOUNT alone, prints every setting as NAME=VALUE.  Only the
 * mount's owner (or root) may change settings.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "../fuse/mount.h"

static const char *const settings[] = {"cache_size", "log_level", "compression_level",
				       "compaction"};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs set MOUNT [NAME VALUE]\n\n"
		"Changes a runtime setting of the faissfs mount at MOUNT, at once (no remount);\n"
		"with MOUNT alone, prints every setting.  Only the mount's owner or root may\n"
		"change settings.  Settings (files of MOUNT/.faissfs/):\n"
		"  cache_size         chunk cache budget, e.g. 512M (at least 1M)\n"
		"  log_level          error, warn, info or debug\n"
		"  compression_level  zstd level 1..19 for new objects (no effect until the\n"
		"                     mount is writable)\n"
		"  compaction         on or off (no effect until the mount is writable)\n\n"
		"  -h, --help   show this help\n");
}

static int show(const char *mnt)
{
	char path[4096], val[128];

	for (size_t i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "%s/.faissfs/%s", mnt, settings[i]);
		f = fopen(path, "r");
		if (!f) {
			fprintf(stderr,
				"faissfs set: cannot read %s: %s (is %s a faissfs mount?)\n", path,
				strerror(errno), mnt);
			return 1;
		}
		n = fread(val, 1, sizeof(val) - 1, f);
		fclose(f);
		val[n] = '\0';
		printf("%s=%s", settings[i], val);
		if (!n || val[n - 1] != '\n')
			putchar('\n');
	}
	return 0;
}

int cmd_set(int argc, char *argv[])
{
	const struct cmd_spec spec = {
		.name = "set", .usage = usage, .min_args = 1, .max_args = 3, .options_first = true};
	const char *mnt, *name, *value;
	int first, rc;

	if (!cmd_parse(&spec, argc, argv, &first, &rc))
		return rc;
	if (argc - first == 1)
		return show(argv[first]);
	if (argc - first != 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	mnt = argv[first];
	name = argv[first + 1];
	value = argv[first + 2];
	rc = mnt_set(mnt, name, value);
	switch (-rc) {
	case 0:
		return 0;
	case EINVAL:
		fprintf(stderr,
			"faissfs set: '%s' is not a valid value for %s (see faissfs set --help; "
			"the daemon's log says what it accepts)\n",
			value, name);
		break;
	case EACCES:
		fprintf(stderr,
			"faissfs set: permission denied: only the owner of the mount at %s (or "
			"root) may change its settings\n",
			mnt);
		break;
	case ENOENT:
	case EPERM:
		fprintf(stderr,
			"faissfs set: %s is not a setting of %s (settings: cache_size, log_level, "
			"compression_level, compaction)\n",
			name, mnt);
		break;
	case ENOTTY:
		fprintf(stderr, "faissfs set: %s is not a faissfs mount\n", mnt);
		break;
	case ENAMETOOLONG:
		fprintf(stderr, "faissfs set: the value is too long (at most %d bytes)\n",
			MNT_SET_VALUE_MAX - 1);
		break;
	default:
		fprintf(stderr, "faissfs set: cannot set %s on %s: %s\n", name, mnt, strerror(-rc));
		break;
	}
	return 1;
}
