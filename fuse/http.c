/* http.c - the optional HTTP endpoint: GET /metrics for Prometheus.
 *
 * -o metrics=ADDR:PORT serves the same text as MOUNT/.faissfs/metrics with
 * libmicrohttpd, from one thread of its own.  Loopback addresses only, unless
 * -o metrics_allow_remote says otherwise (the endpoint has no authentication).
 * The socket is bound before the daemon forks, so a busy port fails the mount
 * with a message; libmicrohttpd takes it over after the fork (its thread would
 * not survive one).
 */
#include "control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

struct mnt_http {
	struct MHD_Daemon *d;
	struct mnt_ctl *ctl; /* borrowed */
};

/* Parses ADDR:PORT into @ss.  Returns 0 or -EINVAL. */
static int parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *h = host;
	unsigned long port;
	size_t hl;
	char *end;

	memset(ss, 0, sizeof(*ss));
	colon = strrchr(spec, ':');
	if (!colon || colon == spec)
		return -EINVAL;
	hl = (size_t)(colon - spec);
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535)
		return -EINVAL;
	if (!strcmp(host, "localhost"))
		h = "127.0.0.1";
	if (host[0] == '[') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		if (hl < 3 || host[hl - 1] != ']')
			return -EINVAL;
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return -EINVAL;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, h, &a4->sin_addr) != 1)
			return -EINVAL;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
	}
	return 0;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

int mnt_http_check(const char *spec, bool allow_remote)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (parse_addr(spec, &ss, &len) < 0) {
		fprintf(stderr,
			"faissfs mount: bad value '%s' for -o metrics (ADDR:PORT with a numeric "
			"address, e.g. 127.0.0.1:9464 or [::1]:9464)\n",
			spec);
		return -EINVAL;
	}
	if (!allow_remote && !is_loopback(&ss)) {
		fprintf(stderr,
			"faissfs mount: -o metrics=%s is not a loopback address; the endpoint has "
			"no authentication (add -o metrics_allow_remote to serve it anyway)\n",
			spec);
		return -EINVAL;
	}
	return 0;
}

int mnt_http_listen(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc;

	if (parse_addr(spec, &ss, &len) < 0)
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 16) < 0)
		goto fail;
	return fd;
fail:
	rc = -errno;
	fprintf(stderr,
		"faissfs mount: cannot serve metrics on %s: %s (pick another port with -o "
		"metrics=ADDR:PORT)\n",
		spec, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	static const char not_found[] = "not found: the metrics are at /metrics\n";
	struct mnt_http *h = cls;
	struct metrics_buf b = METRICS_BUF_INIT;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *text;
	size_t len;

	(void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		if (resp)
			MHD_add_response_header(resp, "Allow", "GET, HEAD");
	} else if (strcmp(url, "/metrics")) {
		resp = MHD_create_response_from_buffer(sizeof(not_found) - 1, (void *)not_found,
						       MHD_RESPMEM_PERSISTENT);
		status = MHD_HTTP_NOT_FOUND;
	} else {
		mnt_ctl_render_metrics(h->ctl, &b);
		text = metrics_buf_take(&b, &len);
		if (!text)
			return MHD_NO; /* out of memory: drop the connection */
		resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (!resp)
			free(text);
		else
			MHD_add_response_header(resp, "Content-Type",
						"text/plain; version=0.0.4; charset=utf-8");
	}
	if (!resp)
		return MHD_NO;
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int mnt_http_start(struct mnt_ctl *c, int fd, struct mnt_http **out)
{
	struct mnt_http *h = calloc(1, sizeof(*h));

	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->ctl = c;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, h,
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)30, MHD_OPTION_END);
	if (!h->d) {
		log_error("cannot start the metrics HTTP endpoint (libmicrohttpd failed); the "
			  "metrics stay readable at MOUNT/.faissfs/metrics");
		close(fd);
		free(h);
		return -EIO;
	}
	*out = h;
	return 0;
}

void mnt_http_stop(struct mnt_http *h)
{
	if (!h)
		return;
	MHD_stop_daemon(h->d); /* closes the listening socket */
	free(h);
}
