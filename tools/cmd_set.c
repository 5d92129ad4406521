/* cmd_set.c - `faissfs set MOUNT [NAME VALUE]`: runtime settings of a mount.
 *
 * With NAME and VALUE, changes that setting of the running daemon at once (see
 * mnt_set()); with MOUNT alone, prints every setting as NAME=VALUE.  Only the
 * mount's owner (or root) may change settings.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "../fuse/mount.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faissfs set MOUNT [NAME [VALUE]]\n\n"
		"Changes a runtime setting of the faissfs mount at MOUNT, at once (no remount);\n"
		"with NAME alone, prints that setting; with MOUNT alone, prints every setting.\n"
		"Only the mount's owner or root may change settings.  Settings (files of\n"
		"MOUNT/.faissfs/):\n");
	for (unsigned i = 0; i < mnt_nsettings; i++)
		fprintf(f, "  %-18s %s\n  %-18s (%s)\n", mnt_settings[i].name,
			mnt_settings[i].what, "", mnt_settings[i].accepts);
	fprintf(f, "\n  -h, --help   show this help\n");
}

/* Prints setting @name of the mount @mnt as NAME=VALUE (@bare: VALUE alone).
 * Returns 0 or 1 (said why). */
static int show_one(const char *mnt, const char *name, bool bare)
{
	char path[4096], val[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/.faissfs/%s", mnt, name);
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "faissfs set: cannot read %s: %s (is %s a faissfs mount?)\n", path,
			strerror(errno), mnt);
		return 1;
	}
	n = fread(val, 1, sizeof(val) - 1, f);
	fclose(f);
	val[n] = '\0';
	while (n && val[n - 1] == '\n')
		val[--n] = '\0';
	if (bare)
		printf("%s\n", val);
	else
		printf("%s=%s\n", name, val);
	return 0;
}

static void list_names(FILE *f)
{
	for (unsigned i = 0; i < mnt_nsettings; i++)
		fprintf(f, "%s%s", i ? ", " : "", mnt_settings[i].name);
}

int cmd_set(int argc, char *argv[])
{
	const struct cmd_spec spec = {
		.name = "set", .usage = usage, .min_args = 1, .max_args = 3, .options_first = true};
	const char *mnt, *name, *value;
	int first, rc;

	if (!cmd_parse(&spec, argc, argv, &first, &rc))
		return rc;
	mnt = argv[first];
	if (argc - first == 1) {
		for (unsigned i = 0; i < mnt_nsettings; i++)
			if (show_one(mnt, mnt_settings[i].name, false))
				return 1;
		return 0;
	}
	name = argv[first + 1];
	if (!mnt_setting_find(name)) {
		fprintf(stderr, "faissfs set: %s is not a setting (settings: ", name);
		list_names(stderr);
		fprintf(stderr, ")\n");
		return EXIT_USAGE;
	}
	if (argc - first == 2)
		return show_one(mnt, name, true);
	value = argv[first + 2];
	rc = mnt_set(mnt, name, value);
	switch (-rc) {
	case 0:
		return 0;
	case EINVAL:
		fprintf(stderr, "faissfs set: '%s' is not a valid value for %s: give %s\n", value,
			name, mnt_setting_find(name)->accepts);
		break;
	case EACCES:
		fprintf(stderr,
			"faissfs set: permission denied: only the owner of the mount at %s (or "
			"root) may change its settings\n",
			mnt);
		break;
	case ENOENT:
	case EPERM:
		fprintf(stderr, "faissfs set: %s is not a setting of %s (settings: ", name, mnt);
		list_names(stderr);
		fprintf(stderr, "; is it a faissfs mount?)\n");
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
