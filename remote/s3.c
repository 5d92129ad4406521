/* s3.c - a small S3 client over libcurl: path-style URLs, AWS SigV4 signing by
 * curl (CURLOPT_AWS_SIGV4, with an unsigned payload), easy handles pooled so
 * connections are reused, a counting limit on requests in flight, and retries with
 * jittered exponential backoff on 5xx, 429, timeouts and connection errors.  4xx
 * answers are final.  Every function is thread-safe.  Secrets are kept only in
 * the struct and in curl's handles; they never reach a log line or a URL.
 */
#include "remote.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define S3_POOL_MAX 64

struct remote_s3 {
	char *endpoint, *bucket, *region, *userpwd, *sigv4;
	unsigned max_inflight, retries, timeout_ms;
	bool verbose; /* $FAISSFS_S3_VERBOSE: curl's trace on stderr (secrets shown!) */

	pthread_mutex_t lock;	   /* protects the fields below */
	pthread_cond_t cond;	   /* a slot in flight became free */
	CURL *pool[S3_POOL_MAX];   /* idle easy handles (connections kept) */
	unsigned npool;
	unsigned inflight, inflight_max;

	atomic_uint_fast64_t requests, retried, errors, bytes_in, bytes_out;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}

/* --- a request ------------------------------------------------------------------- */

struct body_in { /* what a PUT sends */
	const uint8_t *buf;
	int fd;
	uint64_t off, len, pos;
	int err;
};

struct body_out { /* where a GET's bytes go */
	uint8_t *buf; /* fixed (ranged GET) or grown (whole object) */
	size_t cap, len;
	bool grow;
	bool overflow;
	char err[256]; /* the start of an error body, for the S3 error code */
	size_t errlen;
	long status; /* of this attempt, looked up at its first body bytes */
	CURL *c;     /* the handle of this attempt */
};

struct hdrs {
	char etag[128];
	uint64_t length;
	bool has_length;
};

static size_t write_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct body_out *o = arg;
	size_t len = sz * n;

	if (o->status == 0)
		curl_easy_getinfo(o->c, CURLINFO_RESPONSE_CODE, &o->status);
	if (o->status >= 300) {
		size_t room = sizeof(o->err) - 1 - o->errlen;
		size_t k = len < room ? len : room;

		memcpy(o->err + o->errlen, p, k);
		o->errlen += k;
		o->err[o->errlen] = '\0';
		return len;
	}
	if (o->len + len > o->cap) {
		if (!o->grow) {
			o->overflow = true;
			return 0;
		}
		size_t cap = o->cap ? o->cap : 65536;

		while (cap < o->len + len)
			cap *= 2;
		uint8_t *nb = realloc(o->buf, cap);

		if (!nb)
			return 0;
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, len);
	o->len += len;
	return len;
}

static size_t read_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct body_in *in = arg;
	size_t want = sz * n;
	uint64_t left = in->len - in->pos;
	ssize_t got;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (in->buf) {
		memcpy(p, in->buf + in->pos, want);
		got = (ssize_t)want;
	} else {
		do
			got = pread(in->fd, p, want, (off_t)(in->off + in->pos));
		while (got < 0 && errno == EINTR);
		if (got <= 0) {
			in->err = got < 0 ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	in->pos += (uint64_t)got;
	return (size_t)got;
}

static size_t header_cb(char *p, size_t sz, size_t n, void *arg)
{
	struct hdrs *h = arg;
	size_t len = sz * n;

	if (len > 5 && !strncasecmp(p, "ETag:", 5)) {
		const char *v = p + 5;
		size_t vl;

		while (*v == ' ')
			v++;
		vl = len - (size_t)(v - p);
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(h->etag)) {
			memcpy(h->etag, v, vl);
			h->etag[vl] = '\0';
		}
	} else if (len > 15 && !strncasecmp(p, "Content-Length:", 15)) {
		h->length = strtoull(p + 15, NULL, 10);
		h->has_length = true;
	}
	return len;
}

static CURL *handle_get(struct remote_s3 *s)
{
	CURL *c = NULL;

	pthread_mutex_lock(&s->lock);
	while (s->inflight >= s->max_inflight)
		pthread_cond_wait(&s->cond, &s->lock);
	s->inflight++;
	if (s->inflight > s->inflight_max)
		s->inflight_max = s->inflight;
	if (s->npool)
		c = s->pool[--s->npool];
	pthread_mutex_unlock(&s->lock);
	if (!c)
		c = curl_easy_init();
	return c;
}

static void handle_put(struct remote_s3 *s, CURL *c)
{
	pthread_mutex_lock(&s->lock);
	s->inflight--;
	if (c && s->npool < S3_POOL_MAX) {
		s->pool[s->npool++] = c;
		c = NULL;
	}
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	if (c)
		curl_easy_cleanup(c);
}

/* Appends @key to @url URL-encoded, '/' kept. */
static int url_of(const struct remote_s3 *s, const char *key, char *url, size_t size)
{
	size_t n = (size_t)snprintf(url, size, "%s/%s", s->endpoint, s->bucket);

	if (n >= size)
		return -ENAMETOOLONG;
	if (key) {
		if (n + 1 >= size)
			return -ENAMETOOLONG;
		url[n++] = '/';
		for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
			bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);

			if (n + 4 >= size)
				return -ENAMETOOLONG;
			if (plain)
				url[n++] = (char)*p;
			else
				n += (size_t)snprintf(url + n, 4, "%%%02X", *p);
		}
	}
	url[n] = '\0';
	return 0;
}

static bool transient(CURLcode cc, long status)
{
	if (cc == CURLE_OK)
		return status >= 500 || status == 429;
	return cc == CURLE_COULDNT_CONNECT || cc == CURLE_OPERATION_TIMEDOUT ||
	       cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
	       cc == CURLE_PARTIAL_FILE || cc == CURLE_COULDNT_RESOLVE_HOST;
}

static void backoff(unsigned attempt)
{
	unsigned ms = 50u << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	ms = ms / 2 + (unsigned)(rand() % (int)(ms / 2 + 1)); /* jitter */
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

enum method { M_GET, M_HEAD, M_PUT, M_DELETE };

struct req {
	enum method m;
	const char *key;	   /* NULL: the bucket */
	uint64_t range_off, range_len; /* range_len 0: whole */
	const char *if_none_match;
	struct body_in *in;
	struct body_out *out;
	struct hdrs *h;
	CURLcode cc; /* the last attempt's */
};

/* Runs @r with retries.  Returns the HTTP status (> 0) or -1 after a transport
 * failure (r->cc says which). */
static long request(struct remote_s3 *s, struct req *r)
{
	char url[4096], range[64], inm[192];
	struct body_out scratch = {0};
	struct curl_slist *hl = NULL;
	long status = -1;
	CURL *c;

	if (url_of(s, r->key, url, sizeof(url)))
		return -1;
	hl = curl_slist_append(hl, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	if (r->range_len) {
		snprintf(range, sizeof(range), "Range: bytes=%" PRIu64 "-%" PRIu64, r->range_off,
			 r->range_off + r->range_len - 1);
		hl = curl_slist_append(hl, range);
	}
	if (r->if_none_match) {
		snprintf(inm, sizeof(inm), "If-None-Match: %s", r->if_none_match);
		hl = curl_slist_append(hl, inm);
	}
	/* No "Expect:" override: curl 7.88 signs an empty header it is given, and
	 * radosgw then refuses the signature. */
	if (!r->out)
		r->out = &scratch;
	for (unsigned attempt = 0;; attempt++) {
		c = handle_get(s);
		if (!c) {
			handle_put(s, NULL);
			r->cc = CURLE_OUT_OF_MEMORY;
			break;
		}
		curl_easy_reset(c);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
		curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		if (s->verbose)
			curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, r->h);
		r->out->len = 0;
		r->out->errlen = 0;
		r->out->err[0] = '\0';
		r->out->overflow = false;
		r->out->status = 0;
		r->out->c = c;
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, r->out);
		memset(r->h, 0, sizeof(*r->h));
		switch (r->m) {
		case M_HEAD:
			curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
			break;
		case M_DELETE:
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
			break;
		case M_PUT:
			r->in->pos = 0;
			r->in->err = 0;
			curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
			curl_easy_setopt(c, CURLOPT_READDATA, r->in);
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->in->len);
			break;
		case M_GET:
			break;
		}
		r->cc = curl_easy_perform(c);
		status = -1;
		if (r->cc == CURLE_OK || r->cc == CURLE_WRITE_ERROR)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		atomic_fetch_add(&s->requests, 1);
		if (status >= 200 && status < 300)
			atomic_fetch_add(&s->bytes_in, r->out->len);
		if (r->in && r->cc == CURLE_OK)
			atomic_fetch_add(&s->bytes_out, r->in->len);
		handle_put(s, c);
		if (!transient(r->cc, status) || attempt >= s->retries)
			break;
		atomic_fetch_add(&s->retried, 1);
		backoff(attempt);
	}
	curl_slist_free_all(hl);
	if (status < 0 || status >= 400)
		atomic_fetch_add(&s->errors, 1);
	if (r->out == &scratch)
		r->out = NULL;
	return r->cc == CURLE_OK ? status : -1;
}

/* --- errors ------------------------------------------------------------------------ */

/* The S3 error code in an error body ("NoSuchBucket"), or "". */
static void s3_code(const struct body_out *o, char *code, size_t size)
{
	const char *p = o ? strstr(o->err, "<Code>") : NULL, *e;

	code[0] = '\0';
	if (!p)
		return;
	p += 6;
	e = strstr(p, "</Code>");
	if (e && (size_t)(e - p) < size) {
		memcpy(code, p, (size_t)(e - p));
		code[e - p] = '\0';
	}
}

/* Maps the outcome of @r (status from request()) to 0 or -errno, logging what is
 * wrong and what to do.  @what names the request for the log ("GET key"). */
static int outcome(struct remote_s3 *s, const struct req *r, long status, const char *what)
{
	char code[64];

	if (status >= 200 && status < 300)
		return 0;
	if (status == 304)
		return -EALREADY;
	if (status < 0) {
		log_error("S3 %s at %s failed: %s - is the S3 service (radosgw) running there? "
			  "check -o endpoint",
			  what, s->endpoint, curl_easy_strerror(r->cc));
		return r->cc == CURLE_COULDNT_CONNECT || r->cc == CURLE_COULDNT_RESOLVE_HOST ||
				       r->cc == CURLE_OPERATION_TIMEDOUT
			       ? -EHOSTUNREACH
			       : -EIO;
	}
	s3_code(r->out, code, sizeof(code));
	if (status == 404 && !strcmp(code, "NoSuchBucket")) {
		log_error("S3 %s: the bucket '%s' does not exist at %s - create it (faissfs "
			  "push --create-bucket) or check the URL",
			  what, s->bucket, s->endpoint);
		return -ENOENT;
	}
	if (status == 404)
		return -ENOENT; /* callers say what a missing key means */
	if (status == 403 || status == 401) {
		log_error("S3 %s: access denied by %s (%s) - check the keys in the credentials "
			  "file (-o cred_file) and the user's rights on bucket '%s'",
			  what, s->endpoint, code[0] ? code : "403", s->bucket);
		return -EACCES;
	}
	if (status == 416)
		return -ERANGE;
	log_error("S3 %s at %s: HTTP %ld %s%s", what, s->endpoint, status, code,
		  status >= 500 ? " after retries - the S3 service is failing; try again later" : "");
	return -EIO;
}

/* --- the API ------------------------------------------------------------------------ */

int remote_s3_new(const struct remote_s3_config *c, struct remote_s3 **out)
{
	struct remote_s3 *s;
	size_t n;

	if (!c->endpoint || !c->bucket || !c->access_key || !c->secret_key)
		return -EINVAL;
	pthread_once(&curl_once, curl_init_once);
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->endpoint = strdup(c->endpoint);
	s->bucket = strdup(c->bucket);
	s->region = strdup(c->region ? c->region : "us-east-1");
	if (s->endpoint) {
		n = strlen(s->endpoint);
		while (n && s->endpoint[n - 1] == '/')
			s->endpoint[--n] = '\0';
	}
	if (asprintf(&s->userpwd, "%s:%s", c->access_key, c->secret_key) < 0)
		s->userpwd = NULL;
	if (asprintf(&s->sigv4, "aws:amz:%s:s3", s->region ? s->region : "us-east-1") < 0)
		s->sigv4 = NULL;
	s->verbose = getenv("FAISSFS_S3_VERBOSE") != NULL;
	s->max_inflight = c->max_inflight ? c->max_inflight : 16;
	s->retries = c->retries ? c->retries : 4;
	s->timeout_ms = c->timeout_ms ? c->timeout_ms : 10000;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	if (!s->endpoint || !s->bucket || !s->region || !s->userpwd || !s->sigv4) {
		remote_s3_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void remote_s3_free(struct remote_s3 *s)
{
	if (!s)
		return;
	for (unsigned i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	if (s->userpwd)
		explicit_bzero(s->userpwd, strlen(s->userpwd));
	free(s->userpwd);
	free(s->endpoint);
	free(s->bucket);
	free(s->region);
	free(s->sigv4);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

int remote_s3_check(struct remote_s3 *s)
{
	struct hdrs h;
	struct body_out o = {0};
	struct req r = {.m = M_HEAD, .h = &h, .out = &o};
	long st = request(s, &r);
	int ret;

	/* A HEAD has no body: a 404 is a missing bucket here. */
	if (st == 404) {
		log_error("the bucket '%s' does not exist at %s - create it (faissfs push "
			  "--create-bucket) or check the URL",
			  s->bucket, s->endpoint);
		return -ENOENT;
	}
	if (st == 403) {
		log_error("access to bucket '%s' at %s was denied - check the keys in the "
			  "credentials file (-o cred_file) and the user's rights",
			  s->bucket, s->endpoint);
		return -EACCES;
	}
	ret = outcome(s, &r, st, "HEAD of the bucket");
	return ret == -EIO && st < 0 ? -EHOSTUNREACH : ret;
}

ssize_t remote_s3_get_range(struct remote_s3 *s, const char *key, void *buf, size_t len,
			    uint64_t off)
{
	struct hdrs h;
	struct body_out o = {.buf = buf, .cap = len};
	struct req r = {.m = M_GET, .key = key, .range_off = off, .range_len = len, .h = &h,
			.out = &o};
	char what[512];
	long st;
	int ret;

	if (!len)
		return 0;
	st = request(s, &r);
	if (st == 416)
		return 0; /* past the end */
	snprintf(what, sizeof(what), "GET %s [%" PRIu64 ", +%zu)", key, off, len);
	ret = outcome(s, &r, st, what);
	if (ret == -EHOSTUNREACH)
		ret = -EIO;
	if (ret)
		return ret;
	if (o.overflow || (st == 200 && o.len > len)) {
		log_error("S3 %s: the server sent more than asked for", what);
		return -EIO;
	}
	return (ssize_t)o.len;
}

int remote_s3_get(struct remote_s3 *s, const char *key, const char *if_none_match,
		  uint8_t **buf, size_t *len, char **etag)
{
	struct hdrs h;
	struct body_out o = {.grow = true};
	struct req r = {.m = M_GET, .key = key, .if_none_match = if_none_match, .h = &h,
			.out = &o};
	char what[512];
	long st = request(s, &r);
	int ret;

	snprintf(what, sizeof(what), "GET %s", key);
	ret = outcome(s, &r, st, what);
	if (ret) {
		free(o.buf);
		return ret;
	}
	if (etag) {
		*etag = h.etag[0] ? strdup(h.etag) : NULL;
	}
	if (!o.buf) {
		o.buf = malloc(1);
		if (!o.buf)
			return -ENOMEM;
	}
	*buf = o.buf;
	*len = o.len;
	return 0;
}

int remote_s3_head(struct remote_s3 *s, const char *key, uint64_t *size, char **etag)
{
	struct hdrs h;
	struct req r = {.m = M_HEAD, .key = key, .h = &h};
	char what[512];
	long st = request(s, &r);
	int ret;

	snprintf(what, sizeof(what), "HEAD %s", key);
	ret = outcome(s, &r, st, what);
	if (ret)
		return ret;
	if (size)
		*size = h.length;
	if (etag)
		*etag = h.etag[0] ? strdup(h.etag) : NULL;
	return 0;
}

static int put(struct remote_s3 *s, const char *key, struct body_in *in)
{
	struct hdrs h;
	struct req r = {.m = M_PUT, .key = key, .in = in, .h = &h};
	char what[512];
	long st = request(s, &r);

	if (in->err)
		return -in->err;
	snprintf(what, sizeof(what), "PUT %s", key);
	return outcome(s, &r, st, what);
}

int remote_s3_put(struct remote_s3 *s, const char *key, const void *buf, size_t len)
{
	struct body_in in = {.buf = buf, .fd = -1, .len = len};

	return put(s, key, &in);
}

int remote_s3_put_fd(struct remote_s3 *s, const char *key, int fd, uint64_t off, uint64_t len)
{
	struct body_in in = {.fd = fd, .off = off, .len = len};

	return put(s, key, &in);
}

int remote_s3_delete(struct remote_s3 *s, const char *key)
{
	struct hdrs h;
	struct req r = {.m = M_DELETE, .key = key, .h = &h};
	char what[512];
	long st = request(s, &r);

	snprintf(what, sizeof(what), "DELETE %s", key);
	return outcome(s, &r, st, what);
}

int remote_s3_create_bucket(struct remote_s3 *s)
{
	struct hdrs h;
	struct body_in in = {.buf = (const uint8_t *)"", .fd = -1, .len = 0};
	struct body_out o = {0};
	struct req r = {.m = M_PUT, .in = &in, .h = &h, .out = &o};
	char code[64];
	long st = request(s, &r);

	if (st == 409) {
		s3_code(&o, code, sizeof(code));
		if (!strcmp(code, "BucketAlreadyOwnedByYou"))
			return 0;
	}
	return outcome(s, &r, st, "PUT of the bucket");
}

void remote_s3_stats(struct remote_s3 *s, struct remote_s3_stats *out)
{
	out->requests = atomic_load(&s->requests);
	out->retries = atomic_load(&s->retried);
	out->errors = atomic_load(&s->errors);
	out->bytes_in = atomic_load(&s->bytes_in);
	out->bytes_out = atomic_load(&s->bytes_out);
	pthread_mutex_lock(&s->lock);
	out->inflight = s->inflight;
	out->inflight_max = s->inflight_max;
	pthread_mutex_unlock(&s->lock);
}

int remote_s3_url_parse(const char *url, char **bucket, char **prefix)
{
	const char *b, *slash;
	size_t bl, pl;

	if (strncmp(url, "s3://", 5))
		return -EINVAL;
	b = url + 5;
	slash = strchr(b, '/');
	bl = slash ? (size_t)(slash - b) : strlen(b);
	if (bl < 3 || bl > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl)
		return -EINVAL;
	pl = slash ? strlen(slash + 1) : 0;
	while (pl && slash[pl] == '/')
		pl--;
	*bucket = strndup(b, bl);
	*prefix = strndup(slash ? slash + 1 : "", pl);
	if (!*bucket || !*prefix) {
		free(*bucket);
		free(*prefix);
		return -ENOMEM;
	}
	return 0;
}
