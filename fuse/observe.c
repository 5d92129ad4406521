/* observe.c - the daemon's metrics: the hooks on the request paths, the store
 * walk behind the size gauges, and the Prometheus and stats renderings.
 *
 * Metrics are updated lock-free on the request paths (see the hooks in
 * control.h) and rendered on demand: when a control file is opened, or when the
 * HTTP endpoint is scraped.  Cache figures come from cache_get_stats() at that
 * moment.  The per-index size gauges come from a walk of the store (one
 * fstatat and one 64-byte header read per file, no decompression), cached for
 * USAGE_TTL_NS so frequent scrapes of a store with thousands of files stay
 * cheap; the walk runs in the thread that renders, never on a read path.
 *
 * Series of tenants no longer in the store are dropped after each walk (a
 * series still held by an open file waits for its release), and no family or
 * size gauge grows past -o metrics_max_series label sets: the rest share one
 * series labelled overflow="true".
 *
 * Locks: usage_lock (the cached walk), then a metrics family's own lock (taken
 * inside usage_lock only by the pruning; the open path takes a family's lock
 * alone).  No lock is held across a FUSE reply.
 */
#include "control.h"
#include "write.h"
#include "preload.h"
#include "node.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "store/format.h"
#include "store/store.h"

#define USAGE_TTL_NS   (10ull * 1000000000ull)
#define WALK_DEPTH_MAX 16
#define OVERFLOW_LABELS "overflow=\"true\""

static const char *const op_names[MNT_OP_COUNT] = {
	"lookup",      "forget",     "getattr", "setattr",  "open",	 "read",
	"write",       "flush",	     "release", "fsync",    "opendir",	 "readdir",
	"readdirplus", "releasedir", "statfs",	"getxattr", "listxattr", "other",
};

uint64_t mnt_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int mnt_ctl_new(struct mnt_fs *fs, const struct mnt_opts *o, const char *mountpoint,
		struct mnt_ctl **out)
{
	struct mnt_ctl *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->mountpoint = strdup(mountpoint ? mountpoint : "");
	if (!c->mountpoint) {
		free(c);
		return -ENOMEM;
	}
	c->store = realpath(store_path(fs->st), NULL);
	if (!c->store)
		c->store = strdup(store_path(fs->st));
	if (!c->store) {
		free(c->mountpoint);
		free(c);
		return -ENOMEM;
	}
	c->fs = fs;
	c->owner = getuid();
	c->group = getgid();
	clock_gettime(CLOCK_REALTIME, &c->started);
	c->level = store_default_params(fs->st)->level;
	c->compaction = fs->rw && o->compact;
	for (int i = 0; i < MNT_OP_COUNT; i++)
		metrics_hist_init(&c->op[i], &metrics_bounds_latency);
	metrics_hist_init(&c->chunk_fill, &metrics_bounds_latency);
	metrics_family_init(&c->first_read, &metrics_bounds_load);
	metrics_family_init(&c->load, &metrics_bounds_load);
	c->max_series = o->metrics_max_series;
	if (metrics_family_set_cap(&c->first_read, c->max_series, OVERFLOW_LABELS) < 0 ||
	    metrics_family_set_cap(&c->load, c->max_series, OVERFLOW_LABELS) < 0) {
		mnt_ctl_free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->usage_lock, NULL);
	*out = c;
	return 0;
}

static void usage_release(struct mnt_usage *u)
{
	for (size_t i = 0; i < u->n; i++) {
		free(u->rows[i].tenant);
		free(u->rows[i].index);
	}
	free(u->rows);
	memset(u, 0, sizeof(*u));
}

void mnt_ctl_free(struct mnt_ctl *c)
{
	if (!c)
		return;
	metrics_family_release(&c->first_read);
	metrics_family_release(&c->load);
	usage_release(&c->usage);
	pthread_mutex_destroy(&c->usage_lock);
	free(c->mountpoint);
	free(c->store);
	free(c);
}

/* --- hooks --------------------------------------------------------------------------- */

void mnt_ctl_op_done(struct mnt_ctl *c, enum mnt_op op, uint64_t t0)
{
	metrics_hist_observe(&c->op[op], mnt_now_ns() - t0);
}

void mnt_ctl_chunk_filled(struct mnt_ctl *c, const struct store_object *so, uint64_t idx,
			  uint64_t t0, int rc)
{
	if (rc < 0)
		return; /* counted by the error reply (mnt_ctl_error) */
	metrics_hist_observe(&c->chunk_fill, mnt_now_ns() - t0);
	/* Holes are never read from disk. */
	if (store_object_chunk_kind(so, idx) != FMT_CHUNK_HOLE)
		metrics_counter_add(&c->physical_read, store_object_chunk_stored(so, idx));
}

void mnt_ctl_error(struct mnt_ctl *c, int neg)
{
	if (neg == -EUCLEAN)
		metrics_counter_add(&c->checksum_errors, 1);
	else if (neg == -EIO)
		metrics_counter_add(&c->io_errors, 1);
}

/* The tenant of node @n: the top directory under the root, or STORE_TENANT_FLAT for
 * a file at the root.  Borrowed from the node (names are immutable). */
static const char *node_tenant(const struct mnt_node *n)
{
	const struct mnt_node *top = n;

	if (!n->parent || !n->parent->parent)
		return STORE_TENANT_FLAT;
	while (top->parent && top->parent->parent)
		top = top->parent;
	return top->name;
}

void mnt_ctl_open_begin(struct mnt_ctl *c, struct mnt_ctl_open *op, const struct mnt_node *n,
			const struct store_object_info *info)
{
	struct metrics_buf b = METRICS_BUF_INIT;

	memset(op, 0, sizeof(*op));
	op->t_open = mnt_now_ns();
	op->size = info->size;
	if (!info->faiss.valid)
		return;
	metrics_buf_printf(&b, "tenant=\"");
	metrics_buf_label_value(&b, node_tenant(n));
	metrics_buf_printf(&b, "\",type=\"");
	metrics_buf_label_value(&b, store_faiss_type_name(info->faiss.fourcc));
	metrics_buf_printf(&b, "\"");
	if (!b.err) {
		op->ctl = c;
		op->first_read = metrics_family_get(&c->first_read, node_tenant(n), b.p);
		op->load = metrics_family_get(&c->load, node_tenant(n), b.p);
	}
	metrics_buf_release(&b);
}

void mnt_ctl_open_end(struct mnt_ctl_open *op)
{
	if (!op->ctl)
		return;
	metrics_family_put(&op->ctl->first_read, op->first_read);
	metrics_family_put(&op->ctl->load, op->load);
	op->first_read = op->load = NULL;
	op->ctl = NULL;
}

void mnt_ctl_open_read(struct mnt_ctl *c, struct mnt_ctl_open *op, uint64_t bytes)
{
	uint64_t before, now;

	metrics_counter_add(&c->logical_read, bytes);
	if (!op->first_read || !bytes)
		return;
	now = mnt_now_ns();
	if (!atomic_exchange(&op->first_done, true))
		metrics_hist_observe(op->first_read, now - op->t_open);
	/* A whole-file load: the bytes served by this open reach the file's size
	 * (counted once, by the read that crosses it). */
	before = atomic_fetch_add(&op->served, bytes);
	if (before < op->size && before + bytes >= op->size && op->load)
		metrics_hist_observe(op->load, now - op->t_open);
}

void mnt_ctl_tree_changed(struct mnt_ctl *c)
{
	atomic_store(&c->usage_stale, true);
}

/* --- the store walk behind the size gauges ------------------------------------------- */

static int usage_add(struct mnt_usage *u, const char *tenant, const char *index, uint64_t logical,
		     uint64_t stored)
{
	struct mnt_usage_row *r;

	if (u->n == u->cap) {
		size_t nc = u->cap ? u->cap * 2 : 64;

		r = realloc(u->rows, nc * sizeof(*r));
		if (!r)
			return -ENOMEM;
		u->rows = r;
		u->cap = nc;
	}
	r = &u->rows[u->n];
	r->tenant = strdup(tenant);
	r->index = strdup(index);
	if (!r->tenant || !r->index) {
		free(r->tenant);
		free(r->index);
		return -ENOMEM;
	}
	r->files = 1;
	r->logical = logical;
	r->stored = stored;
	u->n++;
	return 0;
}

/* store_walk() callback: each regular file of the store is one row of @arg (a
 * struct mnt_usage) under the (tenant, index) of store_walk_group(), with its
 * logical size from its object header (a plain file's own size otherwise).
 * Directories deeper than WALK_DEPTH_MAX are left out, and whatever cannot be
 * examined is skipped: the gauges are a summary. */
static int usage_entry(void *arg, const struct store_walk_entry *e)
{
	struct mnt_usage *u = arg;
	uint64_t logical, lsize, stored, ssize;
	char *tenant = NULL, *index = NULL;
	int fd, rc;

	if (e->type == STORE_WALK_DIR)
		return e->depth >= WALK_DEPTH_MAX ? STORE_WALK_SKIP : 0;
	if (e->type != STORE_WALK_FILE)
		return 0;
	logical = stored = (uint64_t)e->st->st_size;
	fd = openat(e->dirfd, e->name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		if (store_object_probe_sizes(fd, e->rel, &lsize, &ssize) == 1) {
			logical = lsize;
			stored = ssize;
		}
		close(fd);
	}
	rc = store_walk_group(e->rel, &tenant, &index);
	if (rc == 0)
		rc = usage_add(u, tenant, index, logical, stored);
	free(tenant);
	free(index);
	return rc;
}

static int row_cmp(const void *a, const void *b)
{
	const struct mnt_usage_row *x = a, *y = b;
	int r = strcmp(x->tenant, y->tenant);

	return r ? r : strcmp(x->index, y->index);
}

/* Refreshes c->usage if older than USAGE_TTL_NS; caller holds usage_lock. */
static void usage_refresh(struct mnt_ctl *c)
{
	struct mnt_usage u = {0};
	uint64_t now = mnt_now_ns();
	size_t w = 0;
	int rc;

	if (!atomic_exchange(&c->usage_stale, false) && c->usage_at &&
	    now - c->usage_at < USAGE_TTL_NS)
		return;
	rc = store_walk(c->fs->st, "", usage_entry, &u);
	if (rc < 0) {
		log_warn("metrics: walking the store %s failed: %s (size gauges left as they "
			 "were)",
			 store_path(c->fs->st), strerror(-rc));
		usage_release(&u);
		return;
	}
	/* Merge the files of each index into one row. */
	if (u.n)
		qsort(u.rows, u.n, sizeof(*u.rows), row_cmp);
	for (size_t i = 0; i < u.n; i++) {
		if (w && !row_cmp(&u.rows[w - 1], &u.rows[i])) {
			u.rows[w - 1].files += u.rows[i].files;
			u.rows[w - 1].logical += u.rows[i].logical;
			u.rows[w - 1].stored += u.rows[i].stored;
			free(u.rows[i].tenant);
			free(u.rows[i].index);
			continue;
		}
		u.rows[w++] = u.rows[i];
	}
	u.n = w;
	usage_release(&c->usage);
	c->usage = u;
	c->usage_at = now;
}

/* --- rendering --------------------------------------------------------------------- */

static void write_counter(struct metrics_buf *b, const char *name, const char *help, uint64_t v)
{
	metrics_write_header(b, name, "counter", help);
	metrics_write_u64(b, name, NULL, v);
}

static void write_gauge(struct metrics_buf *b, const char *name, const char *help, uint64_t v)
{
	metrics_write_header(b, name, "gauge", help);
	metrics_write_u64(b, name, NULL, v);
}

static void index_labels(struct metrics_buf *lb, const struct mnt_usage_row *r)
{
	lb->len = 0;
	if (lb->p)
		lb->p[0] = '\0';
	metrics_buf_printf(lb, "tenant=\"");
	metrics_buf_label_value(lb, r->tenant);
	metrics_buf_printf(lb, "\",index=\"");
	metrics_buf_label_value(lb, r->index);
	metrics_buf_printf(lb, "\"");
}

/* metrics_family_prune() callback: true if tenant @key still has a row in the
 * walk @arg (a struct mnt_usage, sorted by tenant). */
static bool tenant_present(const char *key, void *arg)
{
	const struct mnt_usage *u = arg;
	size_t lo = 0, hi = u->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(u->rows[mid].tenant, key);

		if (!r)
			return true;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static void render_usage(struct mnt_ctl *c, struct metrics_buf *b)
{
	static const char *const names[3] = {"faissfs_index_logical_bytes",
					     "faissfs_index_stored_bytes", "faissfs_index_files"};
	static const char *const helps[3] = {
		"Logical (uncompressed) bytes of the files of one index, from object headers.",
		"Bytes the files of one index take in the store (object files as stored).",
		"Files of one index in the store.",
	};
	struct metrics_buf lb = METRICS_BUF_INIT;
	size_t shown;

	pthread_mutex_lock(&c->usage_lock);
	usage_refresh(c);
	/* Past the cap, the last rows are summed into one overflow series. */
	shown = c->usage.n;
	if (c->max_series && shown > c->max_series)
		shown = c->max_series - 1;
	for (int k = 0; k < 3; k++) {
		uint64_t rest = 0;

		metrics_write_header(b, names[k], "gauge", helps[k]);
		for (size_t i = 0; i < c->usage.n; i++) {
			const struct mnt_usage_row *r = &c->usage.rows[i];
			uint64_t v = k == 0 ? r->logical : k == 1 ? r->stored : r->files;

			if (i >= shown) {
				rest += v;
				continue;
			}
			index_labels(&lb, r);
			metrics_write_u64(b, names[k], lb.p, v);
		}
		if (shown < c->usage.n)
			metrics_write_u64(b, names[k], OVERFLOW_LABELS, rest);
	}
	write_counter(b, "faissfs_metrics_series_folded_total",
		      "Label sets past -o metrics_max_series, counted in the overflow series.",
		      metrics_family_folded(&c->first_read) + metrics_family_folded(&c->load));
	write_gauge(b, "faissfs_metrics_indices_folded",
		    "Indices past -o metrics_max_series, summed in the size gauges' overflow "
		    "series.",
		    c->usage.n - shown);
	pthread_mutex_unlock(&c->usage_lock);
	metrics_buf_release(&lb);
}

/* Metrics of a remote store's mount: S3 requests and the disk cache. */
static void render_remote(struct mnt_ctl *c, struct metrics_buf *b)
{
	struct store_remote_stats rs;

	if (!c->fs->remote)
		return;
	store_remote_stats(c->fs->remote, &rs);
	write_counter(b, "faissfs_remote_requests_total", "S3 requests sent (remote stores).",
		      rs.requests);
	write_counter(b, "faissfs_remote_retries_total",
		      "S3 requests sent again after a 5xx, a timeout or a connection error.",
		      rs.retries);
	write_counter(b, "faissfs_remote_errors_total", "S3 requests that failed for good.",
		      rs.errors);
	write_counter(b, "faissfs_remote_received_bytes_total", "Bytes received from S3.",
		      rs.bytes_in);
	write_gauge(b, "faissfs_remote_inflight_requests", "S3 requests in flight.", rs.inflight);
	write_counter(b, "faissfs_remote_disk_cache_hits_total",
		      "Chunk frames read from the local disk cache.", rs.disk_hits);
	write_counter(b, "faissfs_remote_disk_cache_misses_total",
		      "Chunk frames not in the local disk cache (fetched).", rs.disk_misses);
	write_counter(b, "faissfs_remote_disk_cache_damaged_total",
		      "Damaged frames found in the disk cache (dropped, fetched again).",
		      rs.disk_damaged);
	write_counter(b, "faissfs_remote_disk_cache_evictions_total",
		      "Frames evicted from the disk cache for its budget.", rs.disk_evictions);
	write_gauge(b, "faissfs_remote_disk_cache_bytes", "Bytes in the local disk cache.",
		    rs.disk_bytes);
	write_gauge(b, "faissfs_remote_generation", "Generation of the manifest served.",
		    rs.gen);
}

/* The remote store's lines of the stats file (text or JSON). */
static void render_remote_stats(struct mnt_ctl *c, struct metrics_buf *b, bool json)
{
	struct store_remote_stats rs;

	if (!c->fs->remote)
		return;
	store_remote_stats(c->fs->remote, &rs);
	if (json) {
		metrics_buf_printf(b,
				   ",\"remote\":{\"generation\":%" PRIu64 ",\"requests\":%" PRIu64
				   ",\"retries\":%" PRIu64 ",\"errors\":%" PRIu64
				   ",\"received_bytes\":%" PRIu64 ",\"disk_cache_hits\":%" PRIu64
				   ",\"disk_cache_misses\":%" PRIu64 ",\"disk_cache_damaged\":%" PRIu64
				   ",\"disk_cache_bytes\":%" PRIu64 "}",
				   rs.gen, rs.requests, rs.retries, rs.errors, rs.bytes_in,
				   rs.disk_hits, rs.disk_misses, rs.disk_damaged, rs.disk_bytes);
		return;
	}
	metrics_buf_printf(b,
			   "\nremote generation: %" PRIu64 "\n"
			   "remote requests: %" PRIu64 "\n"
			   "remote retries: %" PRIu64 "\n"
			   "remote errors: %" PRIu64 "\n"
			   "remote received bytes: %" PRIu64 "\n"
			   "remote disk cache hits: %" PRIu64 "\n"
			   "remote disk cache misses: %" PRIu64 "\n"
			   "remote disk cache damaged: %" PRIu64 "\n"
			   "remote disk cache bytes: %" PRIu64 "\n",
			   rs.gen, rs.requests, rs.retries, rs.errors, rs.bytes_in, rs.disk_hits,
			   rs.disk_misses, rs.disk_damaged, rs.disk_bytes);
}

/* Walks the store if due and drops the histograms of tenants gone from it. */
static void usage_prune(struct mnt_ctl *c)
{
	pthread_mutex_lock(&c->usage_lock);
	usage_refresh(c);
	if (c->usage_at) {
		metrics_family_prune(&c->first_read, tenant_present, &c->usage);
		metrics_family_prune(&c->load, tenant_present, &c->usage);
	}
	pthread_mutex_unlock(&c->usage_lock);
}

void mnt_ctl_render_metrics(struct mnt_ctl *c, struct metrics_buf *b)
{
	struct cache_stats cs;
	char lab[48];

	usage_prune(c);
	cache_get_stats(c->fs->cache, &cs);
	metrics_write_header(b, "faissfs_build_info", "gauge",
			     "Always 1; the version of the running daemon in a label.");
	metrics_write_u64(b, "faissfs_build_info", "version=\"" FAISSFS_VERSION "\"", 1);
	metrics_write_header(b, "faissfs_start_time_seconds", "gauge",
			     "When the mount started, seconds since the epoch.");
	metrics_write_u64(b, "faissfs_start_time_seconds", NULL, (uint64_t)c->started.tv_sec);

	metrics_write_header(b, "faissfs_fuse_request_duration_seconds", "histogram",
			     "Time to handle one FUSE request, by operation.");
	for (int i = 0; i < MNT_OP_COUNT; i++) {
		snprintf(lab, sizeof(lab), "op=\"%s\"", op_names[i]);
		metrics_write_hist(b, "faissfs_fuse_request_duration_seconds", lab, &c->op[i]);
	}
	metrics_write_family(b, "faissfs_index_first_read_seconds",
			     "Time from opening a FAISS index file to its first read answered.",
			     &c->first_read);
	metrics_write_family(b, "faissfs_index_load_seconds",
			     "Time from opening a FAISS index file until one open has read all "
			     "of its bytes.",
			     &c->load);
	metrics_write_header(b, "faissfs_chunk_decompress_seconds", "histogram",
			     "Time to read, decompress and verify one chunk on a cache miss.");
	metrics_write_hist(b, "faissfs_chunk_decompress_seconds", NULL, &c->chunk_fill);

	write_counter(b, "faissfs_cache_hits_total", "Chunk lookups served from the cache.",
		      cs.hits);
	write_counter(b, "faissfs_cache_misses_total",
		      "Chunk lookups that read and decompressed the chunk.", cs.misses);
	write_counter(b, "faissfs_cache_evictions_total",
		      "Chunks dropped from the cache to stay within its budget.", cs.evictions);
	write_counter(b, "faissfs_cache_fill_errors_total",
		      "Chunk reads that failed (corrupt or I/O error).", cs.fill_errors);
	write_gauge(b, "faissfs_cache_bytes", "Decompressed bytes held in the cache.", cs.bytes);
	write_gauge(b, "faissfs_cache_entries", "Chunks held in the cache.", cs.entries);
	write_gauge(b, "faissfs_cache_budget_bytes", "The cache's byte budget (cache_size).",
		    cs.budget);
	metrics_write_process(b);

	write_counter(b, "faissfs_read_logical_bytes_total",
		      "Bytes of index files served to readers (after decompression).",
		      metrics_counter_get(&c->logical_read));
	write_counter(b, "faissfs_read_physical_bytes_total",
		      "Bytes of compressed chunk frames read from the store on cache misses.",
		      metrics_counter_get(&c->physical_read));
	write_counter(b, "faissfs_checksum_errors_total",
		      "Requests failed because stored data is corrupt (checksum, frame or "
		      "header; EUCLEAN, EIO to the reader).",
		      metrics_counter_get(&c->checksum_errors));
	write_counter(b, "faissfs_io_errors_total",
		      "Requests failed by an I/O error reading the store (EIO).",
		      metrics_counter_get(&c->io_errors));
	write_gauge(b, "faissfs_inodes", "Inodes the kernel holds on the mount.",
		    mnt_table_count(c->fs->tab));
	if (c->fs->ra) {
		struct mnt_ra_stats ra;

		mnt_ra_get_stats(c->fs->ra, &ra);
		write_counter(b, "faissfs_readahead_triggers_total",
			      "Reads that queued chunks for read-ahead.", ra.triggers);
		write_counter(b, "faissfs_readahead_queued_chunks_total",
			      "Chunks queued for read-ahead.", ra.queued);
		write_counter(b, "faissfs_readahead_dropped_chunks_total",
			      "Chunks not queued for read-ahead: the queue was full.", ra.dropped);
		write_counter(b, "faissfs_readahead_done_chunks_total",
			      "Chunks decompressed ahead of readers.", ra.done);
		write_counter(b, "faissfs_readahead_failed_chunks_total",
			      "Read-ahead chunk fills that failed (not cached).", ra.failed);
	}
	if (c->fs->pre) {
		struct mnt_pre_stats ps;

		mnt_pre_get_stats(c->fs->pre, &ps);
		write_counter(b, "faissfs_preload_indices_total",
			      "Most used indices warmed into the cache after mount (-o preload).",
			      ps.indices);
		write_counter(b, "faissfs_preload_bytes_total",
			      "Decompressed bytes put in the cache by -o preload.", ps.bytes);
		write_counter(b, "faissfs_preload_pauses_total",
			      "Times -o preload waited for reads to stop before going on.",
			      ps.pauses);
		write_gauge(b, "faissfs_preload_running", "1 while -o preload warms the cache.",
			    ps.running);
		write_gauge(b, "faissfs_access_tracked_indices",
			    "Index files with an access count (STORE/.faissfs/access).",
			    ps.tracked);
	}
	if (c->fs->cmp) {
		struct mnt_cmp_stats cm;

		mnt_cmp_get_stats(c->fs->cmp, &cm);
		metrics_write_header(
			b, "faissfs_commit_seconds", "histogram",
			"Time from a written file's last close to its compressed object "
			"being published (rw mounts).");
		metrics_write_hist(b, "faissfs_commit_seconds", NULL,
				   mnt_cmp_commit_hist(c->fs->cmp));
		write_gauge(b, "faissfs_compaction_backlog_bytes",
			    "Bytes of closed files waiting to be compressed.", cm.backlog);
		write_counter(b, "faissfs_compaction_files_total",
			      "Files compressed into objects and published.", cm.compacted);
		write_counter(b, "faissfs_compaction_failures_total",
			      "Compactions given up (the file stays uncompressed).", cm.failed);
		write_counter(b, "faissfs_compaction_retries_total",
			      "Compactions put off because the file changed or was busy.",
			      cm.retried);
		write_counter(b, "faissfs_compaction_logical_bytes_total",
			      "Logical bytes of the files compacted.", cm.logical_bytes);
		write_counter(b, "faissfs_compaction_stored_bytes_total",
			      "Stored bytes of the objects compaction wrote.", cm.stored_bytes);
		write_counter(b, "faissfs_compaction_chunks_reused_total",
			      "Chunks copied unchanged from the previous version of a file.",
			      cm.chunks_reused);
		write_counter(b, "faissfs_compaction_chunks_encoded_total",
			      "Chunks compressed by compaction.", cm.chunks_encoded);
		write_counter(b, "faissfs_write_throttled_total",
			      "Writes slowed or made to wait by staging back-pressure.",
			      cm.throttled);
	}
	render_remote(c, b);
	render_usage(c, b);
}

/* Per-tenant totals of the usage rows (sorted by tenant). */
struct tenant_sum {
	const char *tenant;
	uint64_t indices, files, logical, stored;
};

static double ratio(uint64_t logical, uint64_t stored)
{
	return stored ? (double)logical / (double)stored : 0.0;
}

void mnt_ctl_render_stats(struct mnt_ctl *c, struct metrics_buf *b, bool json)
{
	struct cache_stats cs;
	struct timespec now;
	enum log_level lvl = log_get_level();
	static const char *const lvl_names[] = {"error", "warn", "info", "debug"};
	uint64_t lookups, up;
	bool first = true;

	cache_get_stats(c->fs->cache, &cs);
	clock_gettime(CLOCK_REALTIME, &now);
	up = (uint64_t)(now.tv_sec - c->started.tv_sec);
	lookups = cs.hits + cs.misses;
	if (json) {
		metrics_buf_printf(b, "{\"store\":");
		metrics_buf_json_str(b, c->store);
		metrics_buf_printf(b, ",\"mountpoint\":");
		metrics_buf_json_str(b, c->mountpoint);
		metrics_buf_printf(
			b,
			",\"uptime_seconds\":%" PRIu64 ",\"cache\":{\"bytes\":%" PRIu64
			",\"budget_bytes\":%" PRIu64 ",\"entries\":%" PRIu64 ",\"hits\":%" PRIu64
			",\"misses\":%" PRIu64 ",\"evictions\":%" PRIu64 ",\"fill_errors\":%" PRIu64
			"},\"read\":{\"logical_bytes\":%" PRIu64 ",\"physical_bytes\":%" PRIu64
			"},\"errors\":{\"checksum\":%" PRIu64 ",\"io\":%" PRIu64 "}",
			up, cs.bytes, cs.budget, cs.entries, cs.hits, cs.misses, cs.evictions,
			cs.fill_errors, metrics_counter_get(&c->logical_read),
			metrics_counter_get(&c->physical_read),
			metrics_counter_get(&c->checksum_errors),
			metrics_counter_get(&c->io_errors));
		metrics_buf_printf(b,
				   ",\"settings\":{\"cache_size\":%" PRIu64
				   ",\"log_level\":\"%s\",\"compression_level\":%d,"
				   "\"compaction\":%s}",
				   cs.budget, lvl_names[lvl], atomic_load(&c->level),
				   atomic_load(&c->compaction) ? "true" : "false");
		metrics_buf_printf(b, ",\"tenants\":[");
	} else {
		metrics_buf_printf(b,
				   "faissfs: %s mounted at %s (%s), up %" PRIu64 " s\n"
				   "cache:    %.1f MiB of %.1f MiB in %" PRIu64 " chunks; %" PRIu64
				   " hits, %" PRIu64 " misses (hit ratio %.3f), %" PRIu64
				   " evictions, %" PRIu64 " failed fills\n"
				   "read:     %" PRIu64 " bytes served, %" PRIu64
				   " compressed bytes read from the store\n"
				   "errors:   %" PRIu64 " corrupt data, %" PRIu64 " I/O\n"
				   "settings: cache_size=%" PRIu64
				   " log_level=%s compression_level=%d compaction=%s\n%s\n"
				   "%-24s %8s %8s %16s %16s %7s\n",
				   c->store, c->mountpoint, c->fs->rw ? "writable" : "read-only", up,
				   (double)cs.bytes / 1048576.0,
				   (double)cs.budget / 1048576.0, cs.entries, cs.hits, cs.misses,
				   lookups ? (double)cs.hits / (double)lookups : 0.0, cs.evictions,
				   cs.fill_errors, metrics_counter_get(&c->logical_read),
				   metrics_counter_get(&c->physical_read),
				   metrics_counter_get(&c->checksum_errors),
				   metrics_counter_get(&c->io_errors), cs.budget, lvl_names[lvl],
				   atomic_load(&c->level),
				   atomic_load(&c->compaction) ? "on" : "off",
				   c->fs->rw ? ""
					     : "          (compression_level and compaction act on "
					       "writable mounts only)\n",
				   "TENANT", "INDICES",
				   "FILES", "LOGICAL", "STORED", "RATIO");
	}
	pthread_mutex_lock(&c->usage_lock);
	usage_refresh(c);
	for (size_t i = 0; i < c->usage.n;) {
		struct tenant_sum t = {c->usage.rows[i].tenant, 0, 0, 0, 0};

		for (; i < c->usage.n && !strcmp(c->usage.rows[i].tenant, t.tenant); i++) {
			t.indices++;
			t.files += c->usage.rows[i].files;
			t.logical += c->usage.rows[i].logical;
			t.stored += c->usage.rows[i].stored;
		}
		if (json) {
			metrics_buf_printf(b, "%s{\"tenant\":", first ? "" : ",");
			metrics_buf_json_str(b, t.tenant);
			metrics_buf_printf(b,
					   ",\"indices\":%" PRIu64 ",\"files\":%" PRIu64
					   ",\"logical_bytes\":%" PRIu64
					   ",\"stored_bytes\":%" PRIu64 "}",
					   t.indices, t.files, t.logical, t.stored);
		} else {
			metrics_buf_printf(b,
					   "%-24s %8" PRIu64 " %8" PRIu64 " %16" PRIu64
					   " %16" PRIu64 " %7.2f\n",
					   t.tenant, t.indices, t.files, t.logical, t.stored,
					   ratio(t.logical, t.stored));
		}
		first = false;
	}
	pthread_mutex_unlock(&c->usage_lock);
	if (json)
		metrics_buf_printf(b, "]");
	render_remote_stats(c, b, json);
	if (json)
		metrics_buf_printf(b, "}\n");
}
