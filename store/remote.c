/* remote.c - a store kept in an S3 bucket (`faissfs push` publishes it), served
 * read-only from a local view (FORMAT.md section 8).
 *
 * The bucket holds the objects, named by identity, and a manifest of the tree,
 * written last.  A node keeps under its cache directory:
 *   CACHE/view/    a store directory (the bucket's superblock) whose files are
 *                  112-byte reference files: the daemon walks, looks up and stats
 *                  it exactly as a local store, with no network;
 *   CACHE/frames/  compressed chunk frames and trailers fetched before
 *                  (remote/dcache.h: byte budget, checksummed, kept across restarts).
 * Opening a reference file (store_object_open()) gives an object whose bytes
 * come from the remote byte source below: the trailer and each chunk frame from
 * the disk cache, else by one ranged GET, then kept there.
 *
 * store_remote_sync() fetches the manifest (a conditional GET: unchanged costs
 * one request) and brings the view to it: reference files replaced by rename
 * (an open object keeps reading the version it opened: objects are never
 * overwritten in the bucket), names gone removed.  Threads: a struct
 * store_remote may be used by any number of threads for reads; sync runs on one
 * thread at a time (the mount, then the poll thread).
 */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "remote/dcache.h"
#include "remote/remote.h"
#include "util/log.h"

struct store_remote {
	struct remote_s3 *s3;	  /* thread-safe itself */
	struct remote_dcache *dc; /* thread-safe itself */
	char *url;		  /* "s3://BUCKET/PREFIX", for log lines */
	char *prefix;		  /* "" or "PREFIX/" */
	char *view;		  /* CACHE/view */
	char *frames;		  /* CACHE/frames: the disk cache, opened by
				     store_remote_cache_open() */
	uint64_t disk_cache_size;
	/* Touched by store_remote_sync() only (one thread at a time). */
	char *etag; /* of the manifest the view was last brought to */
	uint64_t gen;
};

/* --- keys ----------------------------------------------------------------------- */

static void obj_key(const struct store_remote *r, const char *hex, char *buf, size_t size)
{
	snprintf(buf, size, "%s" FMT_REMOTE_OBJ_DIR "/%s", r->prefix, hex);
}

/* --- the remote byte source ---------------------------------------------------- */

struct rsrc {
	struct store_remote *r; /* borrowed: outlives every object opened from it */
	char hex[FMT_ID_HEX + 1];
	char key[PATH_MAX];
	uint8_t header[FMT_OBJ_HEADER_SIZE];
};

static void frame_name(const struct rsrc *s, uint64_t off, char *buf, size_t size)
{
	snprintf(buf, size, "%s.%" PRIu64, s->hex, off);
}

static ssize_t rsrc_pread(void *arg, void *buf, size_t len, uint64_t off, enum store_src_what what)
{
	struct rsrc *s = arg;
	char name[FMT_ID_HEX + 24];
	ssize_t n;

	if (what == STORE_SRC_HEADER) {
		/* The reference file carries it: no request. */
		if (off >= FMT_OBJ_HEADER_SIZE)
			return 0;
		n = (ssize_t)(len < FMT_OBJ_HEADER_SIZE - off ? len : FMT_OBJ_HEADER_SIZE - off);
		memcpy(buf, s->header + off, (size_t)n);
		return n;
	}
	frame_name(s, off, name, sizeof(name));
	if (s->r->dc) {
		n = remote_dcache_get(s->r->dc, name, buf, len);
		if (n == (ssize_t)len)
			return n;
	}
	n = remote_s3_get_range(s->r->s3, s->key, buf, len, off);
	if (n == (ssize_t)len && s->r->dc)
		remote_dcache_put(s->r->dc, name, buf, len); /* best effort */
	return n;
}

static void rsrc_invalidate(void *arg, uint64_t off, size_t len)
{
	struct rsrc *s = arg;
	char name[FMT_ID_HEX + 24];

	(void)len;
	frame_name(s, off, name, sizeof(name));
	if (s->r->dc)
		remote_dcache_drop(s->r->dc, name);
}

static void rsrc_release(void *arg)
{
	free(arg);
}

static const struct store_source_ops remote_source = {
	.name = "s3",
	.pread = rsrc_pread,
	.invalidate = rsrc_invalidate,
	.release = rsrc_release,
};

int store_object_open(const struct store *st, int fd, const char *logname,
		      struct store_object **out)
{
	uint8_t buf[FMT_REF_SIZE];
	struct fmt_object_header h;
	struct fmt_ref ref;
	struct rsrc *s;
	ssize_t n;
	int ret;

	n = store_pread_full(fd, buf, sizeof(buf), 0);
	if (n < 0)
		return (int)n;
	if (!store_ref_is_ref(buf, (size_t)n))
		return store_object_open_fd(fd, logname, out);
	if (!st || !st->remote) {
		log_error("%s: a reference to a remote object, in a store not served from its "
			  "bucket - mount the s3:// URL it was pushed to instead",
			  logname);
		return -EREMOTE;
	}
	ret = store_ref_parse(buf, (size_t)n, logname, &ref, &h);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->r = st->remote;
	store_id_hex(ref.id, s->hex);
	obj_key(st->remote, s->hex, s->key, sizeof(s->key));
	memcpy(s->header, ref.header, FMT_OBJ_HEADER_SIZE);
	return store_object_open_source(&remote_source, s, ref.stored_size, logname, out);
}

/* --- opening ------------------------------------------------------------------- */

void store_remote_free(struct store_remote *r)
{
	if (!r)
		return;
	remote_dcache_close(r->dc);
	remote_s3_free(r->s3);
	free(r->url);
	free(r->prefix);
	free(r->view);
	free(r->frames);
	free(r->etag);
	free(r);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The default cache directory of @url at @endpoint: /var/cache/faissfs/ + a name
 * made of the bucket and a hash of the whole address, so two stores never share. */
static int default_cache_dir(const char *endpoint, const char *url, const char *bucket, char *buf,
			     size_t size)
{
	char key[PATH_MAX * 2];
	int n;

	snprintf(key, sizeof(key), "%s %s", endpoint, url);
	n = snprintf(buf, size, "/var/cache/faissfs/%.64s-%016" PRIx64, bucket,
		     XXH3_64bits(key, strlen(key)));
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int store_remote_open(const struct store_remote_opts *o, struct store_remote **out)
{
	struct store_remote *r = NULL;
	struct remote_s3_config cfg = { 0 };
	char *bucket = NULL, *prefix = NULL, *ak = NULL, *sk = NULL;
	char dir[PATH_MAX], sub[PATH_MAX + 16];
	const char *endpoint = o->endpoint;
	int ret;

	ret = remote_s3_url_parse(o->url, &bucket, &prefix);
	if (ret) {
		log_error("'%s' is not an S3 store URL: write s3://BUCKET or s3://BUCKET/PREFIX",
			  o->url);
		goto out;
	}
	if (!endpoint || !*endpoint)
		endpoint = getenv("FAISSFS_S3_ENDPOINT");
	if (!endpoint || !*endpoint)
		endpoint = getenv("AWS_ENDPOINT_URL");
	if (!endpoint || !*endpoint) {
		log_error("%s: no S3 endpoint: give -o endpoint=http://HOST:PORT (or set "
			  "FAISSFS_S3_ENDPOINT)",
			  o->url);
		ret = -EINVAL;
		goto out;
	}
	ret = remote_creds_load(o->cred_file, &ak, &sk);
	if (ret) {
		if (ret == -ENOENT)
			log_error("%s: no S3 credentials: give -o cred_file=PATH (an AWS "
				  "credentials file) or set AWS_ACCESS_KEY_ID and "
				  "AWS_SECRET_ACCESS_KEY",
				  o->url);
		goto out;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		ret = -ENOMEM;
		goto out;
	}
	r->url = strdup(o->url);
	r->prefix = malloc(strlen(prefix) + 2);
	if (!r->url || !r->prefix) {
		ret = -ENOMEM;
		goto out;
	}
	strcpy(r->prefix, prefix);
	if (*prefix)
		strcat(r->prefix, "/");
	cfg.endpoint = endpoint;
	cfg.bucket = bucket;
	cfg.access_key = ak;
	cfg.secret_key = sk;
	cfg.max_inflight = o->max_inflight;
	ret = remote_s3_new(&cfg, &r->s3);
	if (ret)
		goto out;
	if (o->create_bucket) {
		ret = remote_s3_create_bucket(r->s3);
		if (ret)
			goto out;
	}
	ret = remote_s3_check(r->s3);
	if (ret)
		goto out;
	if (o->read_only_view)
		goto done; /* push: no cache, no view */
	if (o->cache_dir && *o->cache_dir) {
		if (strlen(o->cache_dir) >= sizeof(dir)) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		strcpy(dir, o->cache_dir);
	} else {
		ret = default_cache_dir(endpoint, o->url, bucket, dir, sizeof(dir));
		if (ret)
			goto out;
	}
	ret = mkdir_p(dir, 0700);
	if (ret) {
		log_error("cannot create the cache directory %s: %s - give -o cache_dir=PATH "
			  "on a writable local filesystem",
			  dir, strerror(-ret));
		goto out;
	}
	r->disk_cache_size = o->disk_cache_size;
	snprintf(sub, sizeof(sub), "%s/frames", dir);
	r->frames = strdup(sub);
	snprintf(sub, sizeof(sub), "%s/view", dir);
	r->view = strdup(sub);
	if (!r->view || !r->frames) {
		ret = -ENOMEM;
		goto out;
	}
done:
	*out = r;
	r = NULL;
out:
	store_remote_free(r);
	free(bucket);
	free(prefix);
	if (sk)
		explicit_bzero(sk, strlen(sk));
	free(ak);
	free(sk);
	return ret;
}

int store_remote_cache_open(struct store_remote *r)
{
	if (r->dc || !r->frames)
		return 0;
	return remote_dcache_open(r->frames, r->disk_cache_size, &r->dc);
}

const char *store_remote_view(const struct store_remote *r)
{
	return r->view;
}

const char *store_remote_url(const struct store_remote *r)
{
	return r->url;
}

uint64_t store_remote_gen(const struct store_remote *r)
{
	return r->gen;
}

struct remote_s3 *store_remote_s3(const struct store_remote *r)
{
	return r->s3;
}

const char *store_remote_prefix(const struct store_remote *r)
{
	return r->prefix;
}

void store_remote_attach(struct store *st, struct store_remote *r)
{
	st->remote = r;
}

void store_remote_stats(const struct store_remote *r, struct store_remote_stats *out)
{
	struct remote_s3_stats s3;
	struct remote_dcache_stats dc = { 0 };

	remote_s3_stats(r->s3, &s3);
	if (r->dc)
		remote_dcache_stats(r->dc, &dc);
	out->requests = s3.requests;
	out->retries = s3.retries;
	out->errors = s3.errors;
	out->bytes_in = s3.bytes_in;
	out->inflight = s3.inflight;
	out->inflight_max = s3.inflight_max;
	out->disk_hits = dc.hits;
	out->disk_misses = dc.misses;
	out->disk_damaged = dc.damaged;
	out->disk_bytes = dc.bytes;
	out->disk_evictions = dc.evictions;
	out->gen = r->gen;
}

int store_remote_sync(struct store_remote *r, store_remote_changed_fn fn, void *arg,
		      struct store_remote_sync_stats *stats)
{
	struct store_remote_sync_io io = {
		.s3 = r->s3, .prefix = r->prefix, .url = r->url, .view = r->view,
		.etag = &r->etag, .gen = &r->gen,
	};

	return store_remote_sync_view(&io, fn, arg, stats);
}
