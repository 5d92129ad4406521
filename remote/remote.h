/* remote.h - placeholder of the S3 client interface (the implementation lands from
 * the s3 branch). */
#ifndef FAISSFS_REMOTE_REMOTE_H
#define FAISSFS_REMOTE_REMOTE_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
struct remote_s3_config {
	const char *endpoint;
	const char *bucket;
	const char *region;
	const char *access_key;
	const char *secret_key;
	unsigned max_inflight;
	unsigned retries;
	unsigned timeout_ms;
};
int remote_creds_load(const char *cred_file, char **access_key, char **secret_key);
struct remote_s3;
int remote_s3_new(const struct remote_s3_config *c, struct remote_s3 **out);
void remote_s3_free(struct remote_s3 *s);
int remote_s3_check(struct remote_s3 *s);
ssize_t remote_s3_get_range(struct remote_s3 *s, const char *key, void *buf, size_t len, uint64_t off);
int remote_s3_get(struct remote_s3 *s, const char *key, const char *if_none_match, uint8_t **buf, size_t *len, char **etag);
int remote_s3_head(struct remote_s3 *s, const char *key, uint64_t *size, char **etag);
int remote_s3_put(struct remote_s3 *s, const char *key, const void *buf, size_t len);
int remote_s3_put_fd(struct remote_s3 *s, const char *key, int fd, uint64_t off, uint64_t len);
int remote_s3_delete(struct remote_s3 *s, const char *key);
int remote_s3_create_bucket(struct remote_s3 *s);
struct remote_s3_stats { uint64_t requests, retries, errors, bytes_in, bytes_out; unsigned inflight, inflight_max; };
void remote_s3_stats(struct remote_s3 *s, struct remote_s3_stats *out);
int remote_s3_url_parse(const char *url, char **bucket, char **prefix);
#endif
