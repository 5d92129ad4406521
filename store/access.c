/* access.c - per-index access counts in STORE/.faissfs/access (FORMAT.md, section 7).
 *
 * A mount counts how often each index file is opened and keeps the counts here, so
 * that a later mount can warm the most used indices into its cache (-o preload).
 * The file is advisory: it is small text (at most STORE_ACCESS_MAX records), it is
 * replaced whole by a rename (never fsynced: a crash loses at most the last counts),
 * and a reader that finds it damaged reports -EUCLEAN, which callers log and ignore.
 * Nothing here holds state between calls; store/ has no threads.
 */
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

#define ACCESS_MAGIC "faissfs-access 1"
#define ACCESS_END   "end"

bool store_access_path_ok(const char *path)
{
	const char *p = path, *slash;
	size_t len;

	if (!*path || strlen(path) >= PATH_MAX || strpbrk(path, "\t\n"))
		return false;
	for (;;) {
		slash = strchr(p, '/');
		len = slash ? (size_t)(slash - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2)) ||
		    len > NAME_MAX)
			return false;
		if (p == path && len == strlen(FMT_META_DIR) && !strncmp(p, FMT_META_DIR, len))
			return false;
		if (!slash)
			return true;
		p = slash + 1;
	}
}

void store_access_free(struct store_access *recs, size_t n)
{
	if (!recs)
		return;
	for (size_t i = 0; i < n; i++)
		free(recs[i].path);
	free(recs);
}

/* Parses one "COUNT<TAB>PATH" line (newline stripped) into @r.  Returns 0, -EINVAL
 * (malformed) or -ENOMEM. */
static int parse_record(char *line, struct store_access *r)
{
	char *tab = strchr(line, '\t'), *end;
	unsigned long long v;

	if (!tab || tab == line || line[0] < '0' || line[0] > '9')
		return -EINVAL;
	*tab = '\0';
	errno = 0;
	v = strtoull(line, &end, 10);
	if (errno || *end || v == 0 || !store_access_path_ok(tab + 1))
		return -EINVAL;
	r->path = strdup(tab + 1);
	if (!r->path)
		return -ENOMEM;
	r->count = v;
	return 0;
}

ssize_t store_access_load(const struct store *st, struct store_access **out)
{
	struct store_access *recs = NULL;
	char *line = NULL;
	size_t cap = 0, n = 0, lineno = 0;
	uint64_t offset = 0;
	bool ended = false;
	ssize_t len, ret;
	FILE *f = NULL;
	int fd;

	fd = openat(st->meta_fd, FMT_ACCESS_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "r");
	if (!f) {
		ret = -errno;
		close(fd);
		return ret;
	}
	recs = calloc(STORE_ACCESS_MAX, sizeof(*recs));
	if (!recs) {
		ret = -ENOMEM;
		goto out;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		const char *what = NULL;

		lineno++;
		if (line[len - 1] != '\n')
			what = "a line without its newline (the file was cut short)";
		else
			line[len - 1] = '\0';
		if (what) {
			/* reported below */
		} else if (ended) {
			what = "data after the end line";
		} else if (lineno == 1) {
			if (strcmp(line, ACCESS_MAGIC))
				what = "not an access file (bad first line)";
		} else if (!strcmp(line, ACCESS_END)) {
			ended = true;
		} else if (n == STORE_ACCESS_MAX) {
			what = "too many records (more than the limit a save writes)";
		} else {
			ret = parse_record(line, &recs[n]);
			if (ret == -ENOMEM)
				goto out;
			if (ret)
				what = "a malformed record (want COUNT<TAB>PATH)";
			else
				n++;
		}
		if (what) {
			log_warn("%s/%s/%s: line %zu (offset %" PRIu64
				 "): %s; the access counts are "
				 "ignored (the next save replaces the file)",
				 st->path, FMT_META_DIR, FMT_ACCESS_NAME, lineno, offset, what);
			ret = -EUCLEAN;
			goto out;
		}
		offset += (uint64_t)len;
	}
	if (ferror(f)) {
		ret = -EIO;
		goto out;
	}
	if (!ended) {
		log_warn("%s/%s/%s: no end line at offset %" PRIu64 " (the file was cut short); "
			 "the access counts are ignored (the next save replaces the file)",
			 st->path, FMT_META_DIR, FMT_ACCESS_NAME, offset);
		ret = -EUCLEAN;
		goto out;
	}
	*out = recs;
	recs = NULL;
	ret = (ssize_t)n;
out:
	store_access_free(recs, n);
	free(line);
	fclose(f);
	return ret;
}

int store_access_save(struct store *st, const struct store_access *recs, size_t n)
{
	char tmpname[64];
	FILE *f = NULL;
	int fd, ret = 0;

	if (st->flags & STORE_RDONLY)
		return -EROFS;
	if (n > STORE_ACCESS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!recs[i].count || !store_access_path_ok(recs[i].path))
			return -EINVAL;
	/* One name: one daemon per store (its lock) writes the file; a leftover of a crash
	 * is truncated by the next save. */
	snprintf(tmpname, sizeof(tmpname), "%s.new", FMT_ACCESS_NAME);
	fd = openat(st->meta_fd, tmpname, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		    0644);
	if (fd < 0) {
		ret = -errno;
		goto fail;
	}
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		goto fail_unlink;
	}
	fprintf(f, "%s\n", ACCESS_MAGIC);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%" PRIu64 "\t%s\n", recs[i].count, recs[i].path);
	fprintf(f, "%s\n", ACCESS_END);
	if (ferror(f))
		ret = -EIO;
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		goto fail_unlink;
	if (renameat(st->meta_fd, tmpname, st->meta_fd, FMT_ACCESS_NAME)) {
		ret = -errno;
		goto fail_unlink;
	}
	return 0;
fail_unlink:
	unlinkat(st->meta_fd, tmpname, 0);
fail:
	log_warn("%s/%s/%s: cannot save the access counts: %s (check the space and permissions "
		 "there; the counts are kept in memory)",
		 st->path, FMT_META_DIR, FMT_ACCESS_NAME, strerror(-ret));
	return ret;
}
