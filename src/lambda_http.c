/* SPDX-License-Identifier: Apache-2.0 */
/* The Lambda Runtime API's default transport (see lambda_http.h): HTTP/1.1 over one keep-alive
 * TCP connection to the local runtime endpoint, with libc only. The runtime API is a loopback
 * peer that speaks plain HTTP/1.1 (no TLS, no redirects, no proxies), so this is all the client
 * it needs; keeping libcurl and its ~30 libraries out of the runtime loop takes about 3 ms off
 * every cold start (docs/cloudformation.md, "Tests and figures").
 *
 * Requests go out with one sendmsg (head and body without copying the body); responses may have
 * a Content-Length, a chunked body or a body that ends when the connection closes. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lambda_http.h"

#define MAX_LINE 8192 /* one status, header or chunk-size line */
#define MAX_HEAD ((size_t)64 * 1024) /* all header lines of one response */

struct lambda_http {
	char *host; /* owned, without [] */
	char *port; /* owned */
	char *authority; /* owned: host:port as given, for the Host header */
	int fd; /* -1 while not connected */
	bool reused; /* fd has carried a complete exchange: the peer may have closed it since */
	bool got; /* bytes of the current response arrived */
	size_t off, end; /* unread input is buf[off, end) */
	char buf[65536];
};

int lambda_http_new(const char *api, struct lambda_http **ret, struct kilt_error *err)
{
	const char *colon = api ? strrchr(api, ':') : NULL;
	if (!colon || colon == api || !colon[1] || strlen(colon + 1) > 5 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strtol(colon + 1, NULL, 10) < 1 || strtol(colon + 1, NULL, 10) > 65535)
		return kilt_error_setf(err, -EINVAL,
				       "AWS_LAMBDA_RUNTIME_API: expected host:port, got \"%.64s\"",
				       api ? api : "");
	const char *host = api;
	size_t host_len = (size_t)(colon - api);
	if (host[0] == '[') {
		if (host_len < 3 || host[host_len - 1] != ']')
			return kilt_error_setf(
				err, -EINVAL,
				"AWS_LAMBDA_RUNTIME_API: expected [address]:port, got "
				"\"%.64s\"",
				api);
		host++;
		host_len -= 2;
	}
	struct lambda_http *h = xcalloc(1, sizeof(*h));
	h->host = xstrndup(host, host_len);
	h->port = xstrdup(colon + 1);
	h->authority = xstrdup(api);
	h->fd = -1;
	*ret = h;
	return 0;
}

static void disconnect(struct lambda_http *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->reused = false;
	h->off = h->end = 0;
}

void lambda_http_free(struct lambda_http *h)
{
	if (!h)
		return;
	disconnect(h);
	free(h->host);
	free(h->port);
	free(h->authority);
	free(h);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events`; deadline 0 waits for ever. Returns 0 or a negative errno
 * (-ETIMEDOUT). Errors and hang-ups count as ready: the next read or write reports them. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int timeout = -1;
		if (deadline) {
			int64_t left = deadline - mono_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, timeout);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_api(struct lambda_http *h)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	/* "localhost" needs no resolver (the zip may run where /etc/hosts is missing). */
	const char *host = strcasecmp(h->host, "localhost") == 0 ? "127.0.0.1" : h->host;
	int rc = getaddrinfo(host, h->port, &hints, &res);
	if (rc != 0)
		return rc == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
	int e = ECONNREFUSED;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			h->fd = fd;
			break;
		}
		e = errno;
		close(fd);
	}
	freeaddrinfo(res);
	return h->fd >= 0 ? 0 : -e;
}

/* Writes every byte of iov[0..n) (modified on the way). */
static int send_all(struct lambda_http *h, struct iovec *iov, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
		ssize_t w = sendmsg(h->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			int r = wait_fd(h->fd, POLLOUT, deadline);
			if (r < 0)
				return r;
			continue;
		}
		size_t done = (size_t)w;
		while (n > 0 && done >= iov->iov_len) {
			done -= iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
	return 0;
}

/* Reads more input after the unread bytes. Returns the count read, 0 at end of stream, or a
 * negative errno. */
static int fill(struct lambda_http *h, int64_t deadline)
{
	if (h->off == h->end) {
		h->off = h->end = 0;
	} else if (h->off > 0 && h->end == sizeof(h->buf)) {
		memmove(h->buf, h->buf + h->off, h->end - h->off);
		h->end -= h->off;
		h->off = 0;
	}
	for (;;) {
		if (deadline) {
			int r = wait_fd(h->fd, POLLIN, deadline);
			if (r < 0)
				return r;
		}
		ssize_t n = recv(h->fd, h->buf + h->end, sizeof(h->buf) - h->end, 0);
		if (n >= 0) {
			h->end += (size_t)n;
			if (n > 0)
				h->got = true;
			return (int)n;
		}
		if (errno != EINTR)
			return -errno;
	}
}

/* One line without its "\r\n" (or "\n"), pointing into the input buffer: valid until the next
 * read. -EPIPE when the stream ends first, -EPROTO when the line is too long. */
static int read_line(struct lambda_http *h, int64_t deadline, const char **ret, size_t *ret_len)
{
	for (;;) {
		const char *start = h->buf + h->off;
		const char *nl = memchr(start, '\n', h->end - h->off);
		if (nl) {
			size_t len = (size_t)(nl - start);
			if (len > 0 && start[len - 1] == '\r')
				len--;
			h->off = (size_t)(nl - h->buf) + 1;
			*ret = start;
			*ret_len = len;
			return 0;
		}
		if (h->end - h->off >= MAX_LINE)
			return -EPROTO;
		int r = fill(h, deadline);
		if (r < 0)
			return r;
		if (r == 0)
			return -EPIPE;
	}
}

/* Moves n body bytes into resp->body; once the body is over its maximum, the rest is read and
 * dropped so the connection stays usable. */
static int read_bytes(struct lambda_http *h, size_t n, struct lambda_response *resp,
		      int64_t deadline)
{
	while (n > 0) {
		if (h->off == h->end) {
			int r = fill(h, deadline);
			if (r < 0)
				return r;
			if (r == 0)
				return -EPIPE;
		}
		size_t take = h->end - h->off < n ? h->end - h->off : n;
		if (!resp->too_big && kbuf_add(&resp->body, h->buf + h->off, take) < 0) {
			resp->too_big = true;
			kbuf_done(&resp->body);
		}
		h->off += take;
		n -= take;
	}
	return 0;
}

/* A header's value when the line is "<name>: value"; NULL otherwise. */
static const char *header_is(const char *line, size_t len, const char *name, size_t *ret_len)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
		return NULL;
	const char *v = line + nl + 1;
	const char *end = line + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*ret_len = (size_t)(end - v);
	return v;
}

/* Whether the comma-separated list value[0..len) has the token (case-insensitive). */
static bool has_token(const char *value, size_t len, const char *token)
{
	size_t tl = strlen(token);
	for (size_t i = 0; i + tl <= len; i++) {
		if (strncasecmp(value + i, token, tl) != 0)
			continue;
		bool start = i == 0 || value[i - 1] == ',' || value[i - 1] == ' ';
		bool stop = i + tl == len || value[i + tl] == ',' || value[i + tl] == ' ' ||
			    value[i + tl] == ';';
		if (start && stop)
			return true;
	}
	return false;
}

/* Parses a decimal or hex size with nothing else (hex: up to ';' or blanks). */
static int parse_size(const char *s, size_t len, int base, size_t *ret)
{
	char tmp[32];
	if (len == 0 || len >= sizeof(tmp))
		return -EPROTO;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (base == 16)
		tmp[strcspn(tmp, "; \t")] = '\0';
	const char *digits = base == 16 ? "0123456789abcdefABCDEF" : "0123456789";
	if (!tmp[0] || strspn(tmp, digits) != strlen(tmp))
		return -EPROTO;
	errno = 0;
	unsigned long long v = strtoull(tmp, NULL, base);
	if (errno || v > SIZE_MAX / 2)
		return -EPROTO;
	*ret = (size_t)v;
	return 0;
}

static int read_chunked(struct lambda_http *h, struct lambda_response *resp, int64_t deadline)
{
	for (;;) {
		const char *line;
		size_t len, size;
		int r = read_line(h, deadline, &line, &len);
		if (r < 0)
			return r;
		r = parse_size(line, len, 16, &size);
		if (r < 0)
			return r;
		if (size == 0)
			break;
		r = read_bytes(h, size, resp, deadline);
		if (r < 0)
			return r;
		r = read_line(h, deadline, &line, &len);
		if (r < 0)
			return r;
		if (len != 0)
			return -EPROTO;
	}
	/* Trailer lines, up to the empty line. */
	for (size_t total = 0;;) {
		const char *line;
		size_t len;
		int r = read_line(h, deadline, &line, &len);
		if (r < 0)
			return r;
		if (len == 0)
			return 0;
		total += len;
		if (total > MAX_HEAD)
			return -EPROTO;
	}
}

/* Reads one response (skipping 1xx ones). ret_close: the connection cannot carry another. */
static int read_response(struct lambda_http *h, struct lambda_response *resp, int64_t deadline,
			 bool *ret_close)
{
	for (;;) {
		const char *line;
		size_t len;
		int r = read_line(h, deadline, &line, &len);
		if (r < 0)
			return r;
		/* "HTTP/1.x NNN reason" */
		if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
		    strspn(line + 9, "0123456789") < 3 || (len > 12 && line[12] != ' '))
			return -EPROTO;
		bool http10 = line[7] == '0';
		long status = strtol(line + 9, NULL, 10);
		bool chunked = false, close_after = http10, have_length = false;
		size_t length = 0, head = 0;
		for (;;) {
			r = read_line(h, deadline, &line, &len);
			if (r < 0)
				return r;
			if (len == 0)
				break;
			head += len;
			if (head > MAX_HEAD)
				return -EPROTO;
			size_t vl;
			const char *v;
			if ((v = header_is(line, len, "Content-Length", &vl))) {
				size_t n;
				if (parse_size(v, vl, 10, &n) < 0 || (have_length && n != length))
					return -EPROTO;
				length = n;
				have_length = true;
			} else if ((v = header_is(line, len, "Transfer-Encoding", &vl))) {
				chunked = has_token(v, vl, "chunked");
				if (!chunked)
					return -EPROTO; /* no other coding is asked for or expected */
			} else if ((v = header_is(line, len, "Connection", &vl))) {
				if (has_token(v, vl, "close"))
					close_after = true;
				else if (has_token(v, vl, "keep-alive"))
					close_after = false;
			}
			if (status >= 200 && resp->on_header)
				resp->on_header(resp->userdata, line, len);
		}
		if (status == 101 || status < 100)
			return -EPROTO;
		if (status < 200)
			continue;
		resp->status = status;
		*ret_close = close_after;
		if (status == 204 || status == 304)
			return 0;
		if (chunked)
			return read_chunked(h, resp, deadline);
		if (have_length)
			return read_bytes(h, length, resp, deadline);
		/* No length: the body ends with the connection. */
		*ret_close = true;
		for (;;) {
			if (h->off < h->end) {
				r = read_bytes(h, h->end - h->off, resp, deadline);
				if (r < 0)
					return r;
			}
			r = fill(h, deadline);
			if (r < 0)
				return r;
			if (r == 0)
				return 0;
		}
	}
}

static const char *describe(int r)
{
	switch (r) {
	case -ETIMEDOUT:
		return "timed out";
	case -EPIPE:
		return "the connection was closed before the response ended";
	case -EPROTO:
		return "malformed HTTP response";
	case -EHOSTUNREACH:
		return "cannot resolve the host";
	default:
		return strerror(-r);
	}
}

int lambda_http_request(struct lambda_http *h, const char *method, const char *path,
			const char *headers, const char *body, size_t len, int timeout_ms,
			struct lambda_response *resp, struct kilt_error *err)
{
	int64_t deadline = timeout_ms > 0 ? mono_ms() + timeout_ms : 0;
	struct kbuf head;
	kbuf_init(&head, SIZE_MAX / 2);
	kbuf_printf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kilt/%s\r\n", method, path,
		    h->authority, KILT_VERSION);
	if (body)
		kbuf_printf(&head, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
			    len);
	if (headers)
		kbuf_adds(&head, headers);
	kbuf_adds(&head, "\r\n");
	int r = 0;
	for (int attempt = 0;; attempt++) {
		bool reused = h->fd >= 0 && h->reused;
		if (h->fd < 0) {
			r = connect_api(h);
			if (r < 0)
				break;
		}
		h->got = false;
		resp->status = 0;
		struct iovec iov[2] = {
			{ .iov_base = head.data, .iov_len = head.len },
			{ .iov_base = (void *)(uintptr_t)body, .iov_len = body ? len : 0 },
		};
		r = send_all(h, iov, body ? 2 : 1, deadline);
		bool close_after = false;
		/* A peer that refuses a request may answer and close before reading all of it:
		 * its answer is still worth reading. */
		if (r == 0 || r == -EPIPE || r == -ECONNRESET) {
			bool sent = r == 0;
			int r2 = read_response(h, resp, deadline, &close_after);
			if (sent || r2 == 0)
				r = r2;
			if (!sent)
				close_after = true;
		}
		if (r == 0) {
			if (close_after)
				disconnect(h);
			else
				h->reused = true;
			break;
		}
		bool stale = reused && !h->got && attempt == 0 &&
			     (r == -EPIPE || r == -ECONNRESET || r == -ECONNABORTED);
		disconnect(h);
		if (!stale)
			break;
	}
	kbuf_done(&head);
	if (r < 0)
		return kilt_error_setf(err, -EIO, "%s %s: %s", method, path, describe(r));
	return 0;
}
