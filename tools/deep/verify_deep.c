/* verify_deep.c - faissfs-verify-deep STORE [--json]: loads every FAISS index of a
 * store through the FAISS C API.
 *
 * Run by `faissfs verify --deep`, as its own program so that faissfs (which is
 * also the mount daemon) never links FAISS.  Each object whose trailer says it
 * is a FAISS index is decoded (every chunk checked) into a memory file and read
 * with faiss_read_index_fname() (faiss_read_index_binary_fname() for binary
 * indices); its d, ntotal and is_trained must match the trailer's.  Walks the
 * store like verify does: no symlink is followed, .faissfs/ is skipped.
 * Exit status 0 if every index loads and matches, 1 otherwise, 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <faiss/c_api/IndexBinary_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_io_c.h>

#include "store/store.h"
#include "util/log.h"
#include "util/text.h"

#define COPY_BUF (4u << 20)

struct deep {
	bool json;
	unsigned long indices, problems;
	struct store_dctx *dc;
	uint8_t *buf;
};

static void problem(struct deep *d, const char *path, const char *what)
{
	d->problems++;
	if (d->json) {
		printf("{\"path\":");
		text_json_file(stdout, path);
		printf(",\"chunk\":-1,\"offset\":-1,\"errno\":0,\"what\":");
		text_json_file(stdout, what);
		printf("}\n");
	} else
		printf("PROBLEM %s: deep: %s\n", path, what);
	fflush(stdout);
}

/* Decodes object @o into a new memfd.  Returns the fd or -errno. */
static int to_memfd(struct deep *d, const struct store_object *o)
{
	uint64_t size = store_object_info(o)->size, off = 0;
	int fd = memfd_create("faissfs-deep", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (off < size) {
		ssize_t n = store_object_pread(o, d->dc, d->buf, COPY_BUF, off);

		if (n <= 0 || pwrite(fd, d->buf, (size_t)n, (off_t)off) != n) {
			int rc = n < 0 ? (int)n : -EIO;

			close(fd);
			return rc;
		}
		off += (uint64_t)n;
	}
	return fd;
}

static void check_index(struct deep *d, const char *path, const struct store_object *o)
{
	const struct store_faiss_info *fi = &store_object_info(o)->faiss;
	char fname[64], what[512];
	int fd, dd, trained;
	int64_t ntotal;

	d->indices++;
	fd = to_memfd(d, o);
	if (fd < 0) {
		snprintf(what, sizeof(what), "cannot decode the object: %s", strerror(-fd));
		problem(d, path, what);
		return;
	}
	snprintf(fname, sizeof(fname), "/proc/self/fd/%d", fd);
	if (fi->binary) {
		FaissIndexBinary *ib = NULL;

		if (faiss_read_index_binary_fname(fname, 0, &ib) != 0 || !ib) {
			snprintf(what, sizeof(what), "FAISS cannot load it: %s",
				 faiss_get_last_error());
			problem(d, path, what);
			goto out;
		}
		dd = faiss_IndexBinary_d(ib);
		ntotal = faiss_IndexBinary_ntotal(ib);
		trained = faiss_IndexBinary_is_trained(ib);
		faiss_IndexBinary_free(ib);
	} else {
		FaissIndex *ix = NULL;

		if (faiss_read_index_fname(fname, 0, &ix) != 0 || !ix) {
			snprintf(what, sizeof(what), "FAISS cannot load it: %s",
				 faiss_get_last_error());
			problem(d, path, what);
			goto out;
		}
		dd = faiss_Index_d(ix);
		ntotal = faiss_Index_ntotal(ix);
		trained = faiss_Index_is_trained(ix);
		faiss_Index_free(ix);
	}
	if (dd != fi->d || ntotal != fi->ntotal || !!trained != fi->is_trained) {
		snprintf(what, sizeof(what),
			 "FAISS loads d %d, ntotal %" PRId64 ", trained %d but the metadata says "
			 "d %d, ntotal %" PRId64 ", trained %d",
			 dd, ntotal, trained, fi->d, fi->ntotal, fi->is_trained);
		problem(d, path, what);
	}
out:
	close(fd);
}

static void walk(struct deep *d, int dirfd, const char *rel)
{
	DIR *dir = fdopendir(dirfd);
	struct dirent *de;

	if (!dir) {
		close(dirfd);
		problem(d, rel, "cannot list the directory");
		return;
	}
	while ((de = readdir(dir))) {
		char path[PATH_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!*rel && store_name_reserved(de->d_name))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(path))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				walk(d, fd, path);
		} else if (S_ISREG(st.st_mode)) {
			struct store_object *o = NULL;

			if (store_object_openat(dirfd, de->d_name, path, &o) == 0) {
				if (store_object_info(o)->faiss.valid) {
					if (!d->json)
						fprintf(stderr, "deep: loading %s\n", path);
					check_index(d, path, o);
				}
				store_object_free(o);
			}
			/* Objects that do not open are verify's to report. */
		}
	}
	closedir(dir);
}

int main(int argc, char *argv[])
{
	struct deep d = {0};
	struct store *st = NULL;
	const char *path = NULL;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			d.json = true;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			path = NULL, argc = -1;
	}
	if (!path || argc < 0) {
		fprintf(stderr, "usage: faissfs-verify-deep STORE [--json] (run by faissfs verify "
				"--deep)\n");
		return 2;
	}
	log_set_level(LOG_LVL_WARN);
	if (store_open(path, STORE_RDONLY, &st))
		return 1;
	d.dc = store_dctx_new();
	d.buf = malloc(COPY_BUF);
	fd = openat(store_root_fd(st), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!d.dc || !d.buf || fd < 0) {
		fprintf(stderr, "faissfs-verify-deep: out of memory or cannot open %s\n", path);
		return 1;
	}
	walk(&d, fd, "");
	if (d.json)
		printf("{\"deep\":true,\"indices\":%lu,\"problems\":%lu}\n", d.indices, d.problems);
	else
		printf("%s: deep: %lu FAISS indices loaded with FAISS: %lu problem%s\n", path,
		       d.indices, d.problems, d.problems == 1 ? "" : "s");
	free(d.buf);
	store_dctx_free(d.dc);
	store_close(st);
	return d.problems ? 1 : 0;
}
