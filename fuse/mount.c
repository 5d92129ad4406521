/* mount.c - `faissfs mount STORE MOUNTPOINT [-f] [-d] [-o opt,...]`.
 *
 * Parses the options, checks STORE and MOUNTPOINT (each failure with a message
 * that says what to do), opens the store (superblock only; writable unless
 * -o ro, or read-only with a warning when the store's filesystem is), mounts,
 * daemonises unless -f, and serves with libfuse's multithreaded loop until
 * unmounted (fusermount3 -u) or signalled (SIGTERM, SIGINT, SIGHUP).
 * Readiness: without -f, `faissfs mount` returns only once the filesystem is
 * mounted; with -o ready_fd=N the daemon writes "ready\n" to fd N when the
 * kernel's first request (INIT) has been answered.  Under systemd (Type=notify,
 * NOTIFY_SOCKET set) the serving process sends READY=1 once mounted and
 * STOPPING=1 when the loop ends.
 */
#include "mnt.h"
#include "node.h"
#include "mount.h"
#include "control.h"
#include "write.h"
#include "preload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "cache/cache.h"
#include "store/store.h"

#define MNT_CACHE_MIN	(1ull << 20)
#define MNT_THREADS_MAX 1024u

void mnt_usage(void)
{
	printf("usage: faissfs mount STORE MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]\n"
	       "\n"
	       "Serves the faissfs store STORE (writable unless -o ro) as ordinary mmappable\n"
	       "files at MOUNTPOINT (an existing directory; what it holds is hidden while\n"
	       "mounted, with a warning).  Without -f it returns\n"
	       "once the filesystem is mounted and keeps serving in the background (logging\n"
	       "to syslog).\n"
	       "Unmount with: fusermount3 -u MOUNTPOINT\n"
	       "\n"
	       "  -f                 stay in the foreground, log to stderr\n"
	       "  -d                 debug: log level debug, libfuse request trace, foreground\n"
	       "  -h, --help         this text\n"
	       "\n"
	       "  -o cache_size=SIZE decompressed chunk cache, e.g. 512M, 2G (default 256M;\n"
	       "                     minimum 1M).  Hot data also stays in the kernel page cache,\n"
	       "                     so this only needs to cover what is being re-read.  auto:\n"
	       "                     a quarter of MemAvailable, halved under memory pressure\n"
	       "                     and grown back when it goes.\n"
	       "  -o log_level=LVL   error, warn, info (default) or debug\n"
	       "  -o log_file=PATH   append the log to PATH (reopened once moved away, as by\n"
	       "                     logrotate) instead of syslog in daemon mode, or of stderr\n"
	       "                     with -f\n"
	       "  -o ready_fd=N      write \"ready\\n\" to file descriptor N and close it once "
	       "the\n"
	       "                     filesystem is mounted and answering (for scripts and tests)\n"
	       "  -o threads=N       at most N request threads (default %u)\n"
	       "  -o readahead=N     decompress N chunks ahead of a sequential reader, on the\n"
	       "                     read-ahead workers (default %u; 0: off).  Random reads\n"
	       "                     never read ahead.\n"
	       "  -o drop_behind=on|off  drop a chunk from the cache once a sequential reader\n"
	       "                     has read all of it (default on): the kernel's page cache\n"
	       "                     holds those bytes, and the cache's memory is reused at\n"
	       "                     once.  off: keep it for a re-read after the page cache\n"
	       "                     let it go\n"
	       "  -o workers=N       read-ahead decompression threads (default: one per CPU;\n"
	       "                     for a remote store, s3_inflight)\n"
	       "  -o kernel_readahead=SIZE  the kernel's read-ahead window on the mount (default\n"
	       "                     1M, at most 1M; 0 keeps the kernel's, often 128K).  Raising\n"
	       "                     it needs root (it is /sys/class/bdi/<dev>/read_ahead_kb)\n"
	       "  -o allow_other     let other users access the mount (needs user_allow_other\n"
	       "                     in /etc/fuse.conf unless run as root)\n"
	       "  -o fsname=NAME     source name shown by mount/df (default faissfs:STORE)\n"
	       "  -o subtype=NAME    type shown as fuse.NAME (default faissfs)\n"
	       "  -o rw              writable (the default): create, write, truncate, rename,\n"
	       "                     unlink, mkdir, rmdir, chmod, chown, utimes, symlink,\n"
	       "                     link, mknod.  Written files are\n"
	       "                     plain files in the store, compressed once idle (see -o\n"
	       "                     compact).  A store on a read-only filesystem is served\n"
	       "                     read-only, with a warning\n"
	       "  -o ro              read-only: every change fails with EROFS\n"
	       "  -o compact=on|off  writable mounts: compress idle plain files into objects\n"
	       "                     in the background, including those of a data dir never\n"
	       "                     imported (default on)\n"
	       "  -o stage_max=SIZE  writable mounts: when more than SIZE of closed files wait\n"
	       "                     to be compacted, writes slow down, then wait (default 1G;\n"
	       "                     0: no limit)\n"
	       "  -o preload=N       after mounting, warm the cache with the N most opened\n"
	       "                     indices (counts kept in STORE/.faissfs/access by writable\n"
	       "                     mounts), in the background, up to half the cache; 0: off\n"
	       "                     (default)\n"
	       "  -o metrics=ADDR:PORT  also serve the Prometheus metrics at\n"
	       "                     http://ADDR:PORT/metrics (e.g. 127.0.0.1:9464; loopback\n"
	       "                     addresses only)\n"
	       "  -o metrics_allow_remote  let -o metrics bind a non-loopback address (the\n"
	       "                     endpoint has no authentication)\n"
	       "  -o metrics_max_series=N  at most N label sets per metric (default %u; 0: no\n"
	       "                     cap); the rest are counted in one series labelled\n"
	       "                     overflow=\"true\".  Series of removed tenants go away\n"
	       "\n"
	       "A remote store (STORE is s3://BUCKET[/PREFIX], published by faissfs push) is\n"
	       "always served read-only, from a local view and disk cache under cache_dir:\n"
	       "  -o endpoint=URL    the S3 endpoint, e.g. http://127.0.0.1:7480 (default:\n"
	       "                     $FAISSFS_S3_ENDPOINT, then $AWS_ENDPOINT_URL)\n"
	       "  -o cred_file=PATH  an AWS credentials file (default:\n"
	       "                     $AWS_SHARED_CREDENTIALS_FILE, then $AWS_ACCESS_KEY_ID and\n"
	       "                     $AWS_SECRET_ACCESS_KEY); keys never go on the command line\n"
	       "  -o cache_dir=PATH  the local view and frame cache (default\n"
	       "                     /var/cache/faissfs/BUCKET-HASH); one daemon per cache_dir\n"
	       "  -o disk_cache_size=SIZE  compressed frames kept on disk (default 4G; 0: none)\n"
	       "  -o poll_interval=SECONDS  check the bucket for a newly pushed version this\n"
	       "                     often (default 30; 0: never); new opens see it, open files\n"
	       "                     keep the version they opened\n"
	       "  -o s3_inflight=N   S3 requests in flight at once (default 16)\n"
	       "\n"
	       "  -o noexec, exec, noatime, sync, async, dirsync\n"
	       "                     generic mount flags, passed to the kernel (nosuid and\n"
	       "                     nodev are always set and accepted)\n"
	       "\n"
	       "Permissions are checked by the kernel (default_permissions).  With -o ro,\n"
	       "writes fail with EROFS.  Extended attributes user.faissfs.* and user.faiss.*\n"
	       "describe each object (getfattr -d FILE).  Metrics, stats and runtime settings\n"
	       "are in the hidden directory MOUNTPOINT/.faissfs/ (cat\n"
	       "MOUNTPOINT/.faissfs/stats).\n",
	       MNT_THREADS_DEFAULT, MNT_READAHEAD_DEFAULT, MNT_MAX_SERIES_DEFAULT);
}

/* --- options ---------------------------------------------------------------------- */

int mnt_parse_size(const char *s, unsigned long long *out)
{
	unsigned long long v, mul = 1;
	char *end;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1ull << 40;
		end++;
		break;
	default:
		break;
	}
	if (mul > 1 && end[0] == 'i' && end[1] == 'B')
		end += 2;
	else if (end[0] == 'B')
		end++;
	if (*end || v > ULLONG_MAX / mul)
		return -EINVAL;
	*out = v * mul;
	return 0;
}

/* What fuse_opt_parse() fills in: raw strings, checked afterwards. */
struct mnt_raw {
	char *cache_size;
	char *log_level;
	char *metrics;
	int metrics_allow_remote;
	char *metrics_max_series;
	char *ready_fd;
	char *threads;
	char *readahead;
	char *workers;
	char *kernel_ra;
	char *fsname;
	char *subtype;
	char *kernel_opts; /* generic mount flags for the kernel, "noexec,noatime" */
	char *compact;
	char *drop_behind;
	char *stage_max;
	char *preload;
	char *endpoint;
	char *cred_file;
	char *cache_dir;
	char *disk_cache_size;
	char *poll_interval;
	char *s3_inflight;
	char *log_file;
	int rw;
	int allow_other;
	int foreground;
	int debug;
	int help;
	char *store;
	char *mountpoint;
	int bad; /* an error was printed */
};

#define RAW(t, f, v)                                                                               \
	{                                                                                          \
		t, offsetof(struct mnt_raw, f), v                                                  \
	}

/* Generic mount flags collected into mnt_raw.kernel_opts for libfuse. */
#define MNT_KEY_KERNEL 1

static const struct fuse_opt mnt_opt_spec[] = {
	RAW("cache_size=%s", cache_size, 0),
	RAW("log_level=%s", log_level, 0),
	RAW("metrics=%s", metrics, 0),
	RAW("metrics_allow_remote", metrics_allow_remote, 1),
	RAW("metrics_max_series=%s", metrics_max_series, 0),
	RAW("ready_fd=%s", ready_fd, 0),
	RAW("threads=%s", threads, 0),
	RAW("readahead=%s", readahead, 0),
	RAW("workers=%s", workers, 0),
	RAW("kernel_readahead=%s", kernel_ra, 0),
	RAW("fsname=%s", fsname, 0),
	RAW("subtype=%s", subtype, 0),
	RAW("allow_other", allow_other, 1),
	RAW("rw", rw, 1),
	RAW("ro", rw, 0),
	RAW("compact=%s", compact, 0),
	RAW("drop_behind=%s", drop_behind, 0),
	RAW("stage_max=%s", stage_max, 0),
	RAW("preload=%s", preload, 0),
	RAW("endpoint=%s", endpoint, 0),
	RAW("cred_file=%s", cred_file, 0),
	RAW("cache_dir=%s", cache_dir, 0),
	RAW("disk_cache_size=%s", disk_cache_size, 0),
	RAW("poll_interval=%s", poll_interval, 0),
	RAW("s3_inflight=%s", s3_inflight, 0),
	RAW("log_file=%s", log_file, 0),
	RAW("-f", foreground, 1),
	RAW("-d", debug, 1),
	RAW("-h", help, 1),
	RAW("--help", help, 1),
	FUSE_OPT_KEY("noexec", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("exec", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("noatime", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("sync", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("async", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("dirsync", MNT_KEY_KERNEL),
	FUSE_OPT_KEY("nosuid", FUSE_OPT_KEY_DISCARD),		   /* always on */
	FUSE_OPT_KEY("nodev", FUSE_OPT_KEY_DISCARD),		   /* always on */
	FUSE_OPT_KEY("default_permissions", FUSE_OPT_KEY_DISCARD), /* always on */
	FUSE_OPT_END,
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mnt_raw *r = data;
	char **slot = NULL;

	(void)outargs;
	if (key == MNT_KEY_KERNEL)
		return fuse_opt_add_opt(&r->kernel_opts, arg) ? -1 : 0;
	if (key == FUSE_OPT_KEY_NONOPT) {
		if (!r->store)
			slot = &r->store;
		else if (!r->mountpoint)
			slot = &r->mountpoint;
		if (!slot) {
			fprintf(stderr,
				"faissfs mount: unexpected argument '%s' (usage: faissfs mount "
				"STORE MOUNTPOINT [options])\n",
				arg);
			r->bad = 1;
			return -1;
		}
		*slot = strdup(arg);
		return *slot ? 0 : -1;
	}
	fprintf(stderr, "faissfs mount: unknown option '%s' (see faissfs mount --help)\n", arg);
	r->bad = 1;
	return -1;
}

static void raw_release(struct mnt_raw *r)
{
	free(r->cache_size);
	free(r->log_level);
	free(r->metrics);
	free(r->metrics_max_series);
	free(r->ready_fd);
	free(r->threads);
	free(r->readahead);
	free(r->workers);
	free(r->kernel_ra);
	free(r->fsname);
	free(r->subtype);
	free(r->kernel_opts);
	free(r->compact);
	free(r->drop_behind);
	free(r->preload);
	free(r->endpoint);
	free(r->cred_file);
	free(r->cache_dir);
	free(r->disk_cache_size);
	free(r->poll_interval);
	free(r->s3_inflight);
	free(r->log_file);
	free(r->stage_max);
	free(r->store);
	free(r->mountpoint);
}

/* Parses a non-negative int option; prints the error.  Returns 0 or -EINVAL. */
static int parse_uint_opt(const char *name, const char *s, unsigned long min, unsigned long max,
			  unsigned long *out)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *s == '-' || *end || errno || v < min || v > max) {
		fprintf(stderr,
			"faissfs mount: bad value '%s' for -o %s (a number from %lu to %lu)\n", s,
			name, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Parses "on" or "off" (@s, NULL: not given, *out = @def) for -o @name. */
static int parse_onoff_opt(const char *name, const char *s, int def, int *out)
{
	if (!s) {
		*out = def;
		return 0;
	}
	if (strcmp(s, "on") && strcmp(s, "off")) {
		fprintf(stderr, "faissfs mount: bad value '%s' for -o %s (on or off)\n", s, name);
		return -EINVAL;
	}
	*out = !strcmp(s, "on");
	return 0;
}

void mnt_opts_release(struct mnt_opts *o)
{
	free(o->store);
	free(o->mountpoint);
	free(o->fsname);
	free(o->metrics);
	free(o->subtype);
	free(o->kernel_opts);
	free(o->endpoint);
	free(o->cred_file);
	free(o->cache_dir);
	free(o->log_file);
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
}

int mnt_opts_parse(int argc, char *argv[], struct mnt_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct mnt_raw r;
	unsigned long v;
	int rc = -EINVAL;

	memset(&r, 0, sizeof(r));
	r.rw = 1; /* writable unless -o ro */
	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->threads = MNT_THREADS_DEFAULT;
	o->readahead = MNT_READAHEAD_DEFAULT;
	o->kernel_ra_kb = MNT_KERNEL_RA_DEFAULT;
	o->cache_size = MNT_CACHE_DEFAULT;
	o->log_level = LOG_LVL_INFO;
	o->disk_cache_size = MNT_DISK_CACHE_DEFAULT;
	o->poll_interval = MNT_POLL_DEFAULT;
	o->metrics_max_series = MNT_MAX_SERIES_DEFAULT;

	if (fuse_opt_parse(&args, &r, mnt_opt_spec, opt_proc) != 0) {
		if (!r.bad)
			fprintf(stderr, "faissfs mount: cannot parse the options (see faissfs "
					"mount --help)\n");
		goto out;
	}
	o->help = r.help;
	if (o->help) {
		rc = 0;
		goto out;
	}
	o->foreground = r.foreground || r.debug;
	o->debug = r.debug;
	o->allow_other = r.allow_other;
	o->rw = r.rw;
	if (parse_onoff_opt("compact", r.compact, 1, &o->compact) < 0 ||
	    parse_onoff_opt("drop_behind", r.drop_behind, 1, &o->drop_behind) < 0)
		goto out;
	o->stage_max = MNT_STAGE_MAX_DEFAULT;
	if (r.stage_max && mnt_parse_size(r.stage_max, &o->stage_max) < 0) {
		fprintf(stderr,
			"faissfs mount: bad value '%s' for -o stage_max (a size, e.g. 512M or 4G; "
			"0: no limit)\n",
			r.stage_max);
		goto out;
	}
	if (r.debug)
		o->log_level = LOG_LVL_DEBUG;
	if (r.log_level && log_parse_level(r.log_level, &o->log_level) < 0) {
		fprintf(stderr,
			"faissfs mount: bad value '%s' for -o log_level (error, warn, info or "
			"debug)\n",
			r.log_level);
		goto out;
	}
	if (r.metrics) {
		if (mnt_http_check(r.metrics, r.metrics_allow_remote) < 0)
			goto out;
		o->metrics_allow_remote = r.metrics_allow_remote;
		o->metrics = r.metrics;
		r.metrics = NULL;
	}
	if (r.metrics_max_series) {
		if (parse_uint_opt("metrics_max_series", r.metrics_max_series, 0, 1000000, &v) < 0)
			goto out;
		o->metrics_max_series = (unsigned)v;
	}
	if (r.cache_size && !strcmp(r.cache_size, "auto")) {
		struct cache_pressure p;

		o->cache_auto = 1;
		o->cache_size = MNT_CACHE_DEFAULT;
		if (cache_auto_sample(&p) == 0)
			o->cache_size = cache_auto_budget(&p);
	} else if (r.cache_size) {
		if (mnt_parse_size(r.cache_size, &o->cache_size) < 0 ||
		    o->cache_size < MNT_CACHE_MIN) {
			fprintf(stderr,
				"faissfs mount: bad value '%s' for -o cache_size (a size of at "
				"least 1M, e.g. 256M or 2G)\n",
				r.cache_size);
			goto out;
		}
	}
	if (r.threads) {
		if (parse_uint_opt("threads", r.threads, 1, MNT_THREADS_MAX, &v) < 0)
			goto out;
		o->threads = (unsigned)v;
	}
	if (r.readahead) {
		if (parse_uint_opt("readahead", r.readahead, 0, 1024, &v) < 0)
			goto out;
		o->readahead = (unsigned)v;
	}
	if (r.workers) {
		if (parse_uint_opt("workers", r.workers, 1, MNT_THREADS_MAX, &v) < 0)
			goto out;
		o->workers = (unsigned)v;
	}
	if (r.kernel_ra) {
		unsigned long long ra;

		if (mnt_parse_size(r.kernel_ra, &ra) < 0 || ra > MNT_IO_MAX) {
			fprintf(stderr,
				"faissfs mount: bad value '%s' for -o kernel_readahead (a size up "
				"to 1M, e.g. 512K; 0 keeps the kernel's)\n",
				r.kernel_ra);
			goto out;
		}
		o->kernel_ra_kb = (unsigned)(ra / 1024);
	}
	if (r.preload) {
		if (parse_uint_opt("preload", r.preload, 0, MNT_PRELOAD_MAX, &v) < 0)
			goto out;
		o->preload = (unsigned)v;
	}
	if (r.disk_cache_size && mnt_parse_size(r.disk_cache_size, &o->disk_cache_size) < 0) {
		fprintf(stderr,
			"faissfs mount: bad value '%s' for -o disk_cache_size (a size, e.g. 20G; "
			"0: no disk cache)\n",
			r.disk_cache_size);
		goto out;
	}
	if (r.poll_interval) {
		if (parse_uint_opt("poll_interval", r.poll_interval, 0, 86400, &v) < 0)
			goto out;
		o->poll_interval = (unsigned)v;
	}
	if (r.s3_inflight) {
		if (parse_uint_opt("s3_inflight", r.s3_inflight, 1, 256, &v) < 0)
			goto out;
		o->s3_inflight = (unsigned)v;
	}
	if (r.ready_fd) {
		if (parse_uint_opt("ready_fd", r.ready_fd, 0, INT_MAX, &v) < 0)
			goto out;
		o->ready_fd = (int)v;
	}
	if (!r.store || !r.mountpoint) {
		fprintf(stderr,
			"faissfs mount: missing %s (usage: faissfs mount STORE "
			"MOUNTPOINT [options])\n",
			r.store ? "MOUNTPOINT" : "STORE and MOUNTPOINT");
		goto out;
	}
	if (!mnt_store_is_remote(r.store) &&
	    (r.endpoint || r.cred_file || r.cache_dir || r.disk_cache_size || r.poll_interval ||
	     r.s3_inflight)) {
		fprintf(stderr,
			"faissfs mount: -o endpoint, cred_file, cache_dir, disk_cache_size, "
			"poll_interval and s3_inflight are for remote stores (STORE "
			"s3://BUCKET[/PREFIX]); '%s' is a local store\n",
			r.store);
		goto out;
	}
	o->endpoint = r.endpoint;
	o->cred_file = r.cred_file;
	o->cache_dir = r.cache_dir;
	o->log_file = r.log_file;
	r.endpoint = r.cred_file = r.cache_dir = r.log_file = NULL;
	o->store = r.store;
	o->mountpoint = r.mountpoint;
	o->fsname = r.fsname;
	o->subtype = r.subtype;
	o->kernel_opts = r.kernel_opts;
	r.store = r.mountpoint = r.fsname = r.subtype = r.kernel_opts = NULL;
	rc = 0;
out:
	raw_release(&r);
	fuse_opt_free_args(&args);
	return rc;
}

/* --- checks before mounting --------------------------------------------------------- */

/* Whether the filesystem that holds the store at @path can be written.  No (a read-only
 * bind mount, a snapshot, read-only media): logs a warning and the mount is served
 * read-only, as mount(8) does with a write-protected device, instead of being refused.
 * Yes also when statvfs() fails: then store_open() reports the real error. */
static bool writable_fs(const char *path)
{
	struct statvfs sv;

	if (statvfs(path, &sv) != 0 || !(sv.f_flag & ST_RDONLY))
		return true;
	log_warn("%s: the store is on a read-only filesystem: mounting read-only, writes fail "
		 "with EROFS (remount that filesystem read-write and mount again to write, or "
		 "give -o ro to silence this)",
		 path);
	return false;
}

static int open_store(const char *path, bool rw, struct store **out)
{
	int rc = store_open(path, rw ? 0 : STORE_RDONLY, out);

	switch (-rc) {
	case 0:
		return 0;
	case ENOENT:
		fprintf(stderr,
			"faissfs mount: store '%s' does not exist (make one with: faissfs "
			"import DATA_DIR %s)\n",
			path, path);
		break;
	case ENOTDIR:
		fprintf(stderr,
			"faissfs mount: store '%s' is not a directory (give the store "
			"directory made by faissfs init or import)\n",
			path);
		break;
	case EMEDIUMTYPE:
		fprintf(stderr,
			"faissfs mount: '%s' is not a faissfs store (no .faissfs/superblock; "
			"make one with: faissfs import DATA_DIR STORE)\n",
			path);
		break;
	case EUCLEAN:
		fprintf(stderr,
			"faissfs mount: store '%s' has a corrupt superblock (see the message "
			"above; restore it from a backup or import the data again)\n",
			path);
		break;
	case EPROTONOSUPPORT:
		fprintf(stderr,
			"faissfs mount: store '%s' was made by a newer faissfs (upgrade "
			"faissfs to mount it)\n",
			path);
		break;
	default:
		fprintf(stderr, "faissfs mount: cannot open store '%s': %s\n", path, strerror(-rc));
		break;
	}
	return rc;
}

/* Refuses a mount point inside the store (or the store itself): the daemon would
 * walk into its own mount, and every request thread would wait on itself. */
static int mountpoint_in_store(const char *store_abs, const char *mnt)
{
	char *m = realpath(mnt, NULL);
	size_t n = store_abs ? strlen(store_abs) : 0;
	int rc = 0;

	if (m && n && !strncmp(m, store_abs, n) &&
	    (m[n] == '/' || m[n] == '\0' || (n == 1 && store_abs[0] == '/'))) {
		fprintf(stderr,
			"faissfs mount: the mount point '%s' is inside the store '%s': the "
			"daemon would serve its own mount to itself and hang; choose a mount "
			"point outside the store\n",
			mnt, store_abs);
		rc = -EINVAL;
	}
	free(m);
	return rc;
}

/* Connects to the bucket of the remote store o->store and brings its local view
 * up to date.  Each failure is explained (by the store layer's log lines and a
 * last line here). */
static int open_remote(const struct mnt_opts *o, struct store_remote **out)
{
	struct store_remote_opts ro = {
		.url = o->store,
		.endpoint = o->endpoint,
		.cred_file = o->cred_file,
		.cache_dir = o->cache_dir,
		.disk_cache_size = o->disk_cache_size,
		.max_inflight = o->s3_inflight,
	};
	struct store_remote_sync_stats ss;
	int rc;

	rc = store_remote_open(&ro, out);
	if (rc == 0) {
		rc = store_remote_sync(*out, NULL, NULL, &ss);
		if (rc == 0)
			log_info("%s: generation %llu, %llu entries, in the view %s", o->store,
				 (unsigned long long)ss.gen, (unsigned long long)ss.entries,
				 store_remote_view(*out));
	}
	if (rc < 0) {
		fprintf(stderr,
			"faissfs mount: cannot serve the remote store '%s' (see the "
			"message above)\n",
			o->store);
		store_remote_free(*out);
		*out = NULL;
	}
	return rc;
}

static int check_mountpoint(const char *mnt)
{
	struct stat st, pst;
	char *parent = NULL;
	int rc = -EINVAL;

	if (stat(mnt, &st) < 0) {
		rc = -errno;
		if (errno == ENOENT)
			fprintf(stderr,
				"faissfs mount: mount point '%s' does not exist (create it with: "
				"mkdir -p %s)\n",
				mnt, mnt);
		else if (errno == ENOTCONN)
			fprintf(stderr,
				"faissfs mount: '%s' is a FUSE mount whose daemon is gone "
				"(unmount it first: fusermount3 -u %s)\n",
				mnt, mnt);
		else
			fprintf(stderr, "faissfs mount: cannot use mount point '%s': %s\n", mnt,
				strerror(errno));
		return rc;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"faissfs mount: mount point '%s' is not a directory (give an empty "
			"directory)\n",
			mnt);
		return -ENOTDIR;
	}
	{
		DIR *d = opendir(mnt);
		struct dirent *de;
		bool empty = true;

		while (d && (de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
				empty = false;
				break;
			}
		if (d)
			closedir(d);
		if (!empty)
			fprintf(stderr,
				"faissfs mount: warning: the mount point '%s' is not empty: what "
				"it "
				"holds is hidden while the store is mounted there\n",
				mnt);
	}
	if (asprintf(&parent, "%s/..", mnt) < 0)
		return -ENOMEM;
	if (stat(parent, &pst) < 0) {
		rc = -errno;
		fprintf(stderr, "faissfs mount: cannot check the parent of '%s': %s\n", mnt,
			strerror(errno));
		goto out;
	}
	if (pst.st_dev != st.st_dev || pst.st_ino == st.st_ino) {
		fprintf(stderr,
			"faissfs mount: '%s' is already a mount point (unmount it first: "
			"fusermount3 -u %s)\n",
			mnt, mnt);
		rc = -EBUSY;
		goto out;
	}
	rc = 0;
out:
	free(parent);
	return rc;
}

/* The arguments for fuse_session_new(): our fixed mount options and the user's. */
static int session_args(const struct mnt_opts *o, bool rw, const char *store_abs,
			struct fuse_args *args)
{
	char *opts = NULL, *fsname = NULL, *subtype = NULL, maxr[32];
	int rc = -ENOMEM;

	if (asprintf(&fsname, "fsname=%s", o->fsname ? o->fsname : "") < 0)
		goto out;
	if (!o->fsname) {
		free(fsname);
		if (asprintf(&fsname, "fsname=faissfs:%s", store_abs) < 0) {
			fsname = NULL;
			goto out;
		}
	}
	if (asprintf(&subtype, "subtype=%s", o->subtype ? o->subtype : "faissfs") < 0) {
		subtype = NULL;
		goto out;
	}
	snprintf(maxr, sizeof(maxr), "max_read=%u", MNT_IO_MAX);
	if (fuse_opt_add_opt(&opts, rw ? "rw,default_permissions" : "ro,default_permissions") ||
	    fuse_opt_add_opt_escaped(&opts, fsname) || fuse_opt_add_opt_escaped(&opts, subtype) ||
	    fuse_opt_add_opt(&opts, maxr) ||
	    (o->allow_other && fuse_opt_add_opt(&opts, "allow_other")) ||
	    (o->kernel_opts && fuse_opt_add_opt(&opts, o->kernel_opts)))
		goto out;
	if (fuse_opt_add_arg(args, "faissfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts) || (o->debug && fuse_opt_add_arg(args, "-d")))
		goto out;
	rc = 0;
out:
	free(opts);
	free(fsname);
	free(subtype);
	return rc;
}

/* --- the daemon ------------------------------------------------------------------------ */

static int serve(struct fuse_session *se, unsigned threads)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	int rc;

	if (!cfg)
		return -ENOMEM;
	fuse_loop_cfg_set_max_threads(cfg, threads);
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	rc = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	/* > 0: the signal that ended the loop, a clean exit. */
	return rc > 0 ? 0 : rc;
}

/* Every open plain file holds an fd, and so does every object in use: lift the
 * soft limit on open files to the hard one, as far as we are allowed. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			log_debug("open file limit raised from %llu to %llu",
				  (unsigned long long)old, (unsigned long long)rl.rlim_cur);
	}
}

/* Goes to the background like fuse_daemonize(), but the parent returns only once
 * the child has written its own PID into the store lock (@lock_fd, whose flock the
 * child inherits), so whoever started us finds the daemon's PID there, never the
 * parent's.  Returns 0 in the child; the parent exits 0 once told, 1 if the child
 * died first.  Returns -1 with errno set if it cannot fork. */
static int daemonize(int lock_fd)
{
	int pipefd[2], nullfd;
	char ok = 0;
	pid_t pid;

	if (pipe(pipefd) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return -1;
	}
	if (pid > 0) {
		close(pipefd[1]);
		while (read(pipefd[0], &ok, 1) < 0 && errno == EINTR)
			;
		_exit(ok == 1 ? 0 : 1);
	}
	close(pipefd[0]);
	setsid();
	if (chdir("/") < 0) {
		/* "/" is always there; nothing in the daemon is relative */
	}
	store_lock_update_pid(lock_fd);
	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd >= 0) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		dup2(nullfd, STDERR_FILENO);
		if (nullfd > STDERR_FILENO)
			close(nullfd);
	}
	ok = 1;
	if (write(pipefd[1], &ok, 1) < 0) {
		/* the parent is gone: nobody is waiting */
	}
	close(pipefd[1]);
	return 0;
}

static int run(const struct mnt_opts *o)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se = NULL;
	struct fuse_lowlevel_ops ops;
	struct mnt_http *http = NULL;
	int http_fd = -1;
	struct mnt_fs fs;
	struct cache_autosize *autosize = NULL;
	struct cache_stats cs;
	struct mnt_ra_stats ras;
	unsigned workers;
	char *store_abs = NULL, *mnt_abs = NULL;
	bool signals = false, mounted = false, key = false;
	int rc, ret = 1, lock_fd = -1;

	memset(&fs, 0, sizeof(fs));
	pthread_mutex_init(&fs.hlock, NULL);
	fs.ready_fd = o->ready_fd;
	fs.kernel_ra_kb = o->kernel_ra_kb;
	fs.drop_behind = o->drop_behind;
	if (o->ready_fd >= 0 && fcntl(o->ready_fd, F_GETFD) < 0) {
		fprintf(stderr, "faissfs mount: -o ready_fd=%d is not an open file descriptor\n",
			o->ready_fd);
		goto out;
	}
	if (o->log_file) {
		rc = log_use_file(o->log_file);
		if (rc < 0) {
			fprintf(stderr,
				"faissfs mount: cannot open the log file '%s' (-o log_file): %s; "
				"give a writable path (its directory must exist)\n",
				o->log_file, strerror(-rc));
			goto out;
		}
	}
	raise_nofile();
	if (mnt_store_is_remote(o->store)) {
		if (open_remote(o, &fs.remote) < 0)
			goto out;
		fs.rw = false;
		if (open_store(store_remote_view(fs.remote), false, &fs.st) < 0)
			goto out;
		store_remote_attach(fs.st, fs.remote);
		store_abs = strdup(o->store);
	} else {
		fs.rw = o->rw && writable_fs(o->store);
		if (open_store(o->store, fs.rw, &fs.st) < 0)
			goto out;
		store_abs = realpath(o->store, NULL);
	}
	if (!fs.remote && mountpoint_in_store(store_abs, o->mountpoint) < 0)
		goto out;
	if (check_mountpoint(o->mountpoint) < 0)
		goto out;
	/* One daemon per store: a second one is refused, naming the first's PID.  After the
	 * checks, so that a refused mount leaves the store as it was. */
	lock_fd = store_lock(fs.st, NULL);
	if (lock_fd < 0) {
		fprintf(stderr, "faissfs mount: cannot use store '%s' (see the message above%s)\n",
			o->store,
			fs.remote ? "; give each mount of a remote store its own -o cache_dir"
				  : "");
		goto out;
	}
	/* Absolute: the daemon chdirs to / and unmounts by this path at exit. */
	mnt_abs = realpath(o->mountpoint, NULL);
	if (!mnt_abs) {
		fprintf(stderr, "faissfs mount: cannot resolve mount point '%s': %s\n",
			o->mountpoint, strerror(errno));
		goto out;
	}
	fs.mountpoint = mnt_abs;
	rc = cache_new(o->cache_size, &fs.cache);
	if (rc == 0)
		rc = mnt_table_new(store_root_fd(fs.st), &fs.tab);
	if (rc == 0) {
		rc = mnt_read_init(&fs);
		key = rc == 0;
	}
	if (rc == 0)
		rc = mnt_ctl_new(&fs, o, mnt_abs, &fs.ctl);
	if (rc == 0 && fs.rw)
		rc = mnt_wr_new(&fs.wr);
	if (rc == 0)
		rc = mnt_pre_new(&fs, o->preload, &fs.pre);
	if (rc == 0)
		rc = session_args(o, fs.rw, store_abs ? store_abs : o->store, &args);
	if (rc < 0) {
		fprintf(stderr, "faissfs mount: cannot set up: %s\n", strerror(-rc));
		goto out;
	}
	mnt_ops_outer(&ops); /* mnt_ops, timed, with MOUNTPOINT/.faissfs in front */
	se = fuse_session_new(&args, &ops, sizeof(ops), &fs);
	if (!se) {
		fprintf(stderr, "faissfs mount: cannot start a FUSE session (see the message "
				"above; is /dev/fuse there and fuse3 installed?)\n");
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		fprintf(stderr, "faissfs mount: cannot install signal handlers\n");
		goto out;
	}
	signals = true;
	if (o->metrics) {
		/* Bound now, so a busy port fails the mount. */
		http_fd = mnt_http_listen(o->metrics);
		if (http_fd < 0)
			goto out;
	}
	if (fuse_session_mount(se, mnt_abs) != 0) {
		fprintf(stderr,
			"faissfs mount: cannot mount at '%s' (see the message above; running "
			"as a user needs fusermount3 from the fuse3 package)\n",
			o->mountpoint);
		goto out;
	}
	mounted = true;
	if (!o->foreground) {
		/* The parent returns now, with the filesystem mounted. */
		if (daemonize(lock_fd) != 0) {
			fprintf(stderr, "faissfs mount: cannot go to the background: %s (try -f)\n",
				strerror(errno));
			goto out;
		}
		log_use_syslog("faissfs");
	}
	/* Threads only now: fuse_daemonize() forks. */
	if (fs.remote) {
		rc = store_remote_cache_open(fs.remote);
		if (rc < 0)
			log_warn("the disk cache of %s cannot be used (%s): every chunk is fetched "
				 "from the bucket",
				 o->store, strerror(-rc));
		rc = mnt_remote_start(&fs, se, fs.remote, o->poll_interval, &fs.poller);
		if (rc < 0) {
			log_error("cannot start the thread that polls %s: %s (try -o "
				  "poll_interval=0)",
				  o->store, strerror(-rc));
			goto out;
		}
	}
	/* A remote store's read-ahead workers mostly wait on the network: as many as
	 * requests may be in flight, so that they keep it busy. */
	workers = o->workers  ? o->workers
		  : fs.remote ? (o->s3_inflight ? o->s3_inflight : MNT_REMOTE_WORKERS)
			      : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
	rc = mnt_ra_new(fs.cache, workers ? workers : 1, o->readahead, &fs.ra);
	if (rc < 0) {
		log_error("cannot start the read-ahead workers: %s (try -o readahead=0)",
			  strerror(-rc));
		goto out;
	}
	if (o->cache_auto) {
		rc = cache_auto_start(fs.cache, o->cache_size, 1000, &autosize);
		if (rc < 0) {
			log_error("cannot start the cache_size=auto thread: %s (give a size)",
				  strerror(-rc));
			goto out;
		}
	}
	if (fs.rw && o->compact) {
		rc = mnt_cmp_new(fs.st, fs.wr, 0, MNT_COMPACT_IDLE_MS, &fs.cmp);
		if (rc < 0) {
			log_error("cannot start the compaction workers: %s (try -o compact=off)",
				  strerror(-rc));
			goto out;
		}
		mnt_cmp_set_limit(fs.cmp, o->stage_max);
		mnt_cmp_set_table(fs.cmp, fs.tab);
		mnt_cmp_scan(fs.cmp); /* plain files of a data dir never imported */
	}
	log_info("serving %s at %s, %s (cache %llu MiB, up to %u threads, read-ahead %u chunks "
		 "on %u workers)",
		 fs.remote ? o->store : store_path(fs.st), mnt_abs,
		 fs.rw ? "writable" : "read-only", o->cache_size >> 20, o->threads, o->readahead,
		 workers);
	/* No-ops unless started by systemd with Type=notify. */
	sd_notifyf(0, "READY=1\nSTATUS=serving %s at %s", store_path(fs.st), mnt_abs);
	/* After READY; it preloads only once INIT is answered (mnt_pre_ready()). */
	rc = mnt_pre_start(fs.pre);
	if (rc < 0)
		log_warn("cannot start the preload thread: %s; serving without preloading",
			 strerror(-rc));
	if (http_fd >= 0) {
		/* After the fork: the server's thread would not survive it. */
		if (mnt_http_start(fs.ctl, http_fd, &http) == 0)
			log_info("serving metrics at http://%s/metrics", o->metrics);
		http_fd = -1;
	}
	rc = serve(se, o->threads);
	sd_notify(0, "STOPPING=1");
	if (rc < 0)
		log_error("the FUSE loop failed: %s (unmount with: fusermount3 -u %s)",
			  strerror(-rc), mnt_abs);
	else
		ret = 0;
	cache_get_stats(fs.cache, &cs);
	log_info("unmounted %s (%llu inodes in use; cache: %llu hits, %llu misses, %llu "
		 "evictions, %llu dropped behind a sequential reader, %llu inserts into reused "
		 "memory, %llu failed fills)",
		 mnt_abs, (unsigned long long)mnt_table_count(fs.tab), (unsigned long long)cs.hits,
		 (unsigned long long)cs.misses, (unsigned long long)cs.evictions,
		 (unsigned long long)cs.dropped, (unsigned long long)cs.recycled,
		 (unsigned long long)cs.fill_errors);
	mnt_ra_get_stats(fs.ra, &ras);
	log_info("read-ahead: %llu reads of %llu MiB, %llu triggers, %llu chunks queued, %llu "
		 "dropped, %llu decompressed ahead (%llu got, %llu evicted unused), %llu failed",
		 (unsigned long long)ras.reads, (unsigned long long)(ras.read_bytes >> 20),
		 (unsigned long long)ras.triggers, (unsigned long long)ras.queued,
		 (unsigned long long)ras.dropped, (unsigned long long)ras.done,
		 (unsigned long long)cs.prefetch_hits, (unsigned long long)cs.prefetch_unused,
		 (unsigned long long)ras.failed);
out:
	mnt_cmp_free(fs.cmp); /* stops a compaction in flight; the file stays plain */
	fs.cmp = NULL;
	mnt_remote_stop(fs.poller); /* before the session goes: it sends notifications */
	fs.poller = NULL;
	mnt_http_stop(http);
	if (http_fd >= 0)
		close(http_fd);
	if (mounted)
		fuse_session_unmount(se);
	if (signals)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	/* Saves the access counts; before fs.ra, the cache and the store go. */
	mnt_pre_free(fs.pre);
	mnt_ra_free(fs.ra);    /* joins the workers: before the objects and the cache go */
	mnt_handles_free(&fs); /* what the kernel still had open: no request comes now */
	if (key)
		mnt_read_release(&fs);
	mnt_wr_free(fs.wr);
	mnt_table_free(fs.tab); /* puts the shared objects before the store closes */
	mnt_ctl_free(fs.ctl);
	cache_auto_stop(autosize);
	if (fs.cache)
		cache_free(fs.cache);
	store_unlock(lock_fd);
	store_close(fs.st);
	store_remote_free(fs.remote);
	if (fs.ready_fd >= 0)
		close(fs.ready_fd);
	free(store_abs);
	free(mnt_abs);
	pthread_mutex_destroy(&fs.hlock);
	return ret;
}

int mnt_main(int argc, char *argv[])
{
	struct mnt_opts o;
	int rc;

	if (mnt_opts_parse(argc, argv, &o) < 0) {
		mnt_opts_release(&o);
		return 2;
	}
	if (o.help) {
		mnt_usage();
		mnt_opts_release(&o);
		return 0;
	}
	log_set_level(o.log_level);
	rc = run(&o);
	mnt_opts_release(&o);
	return rc;
}
