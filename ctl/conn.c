/* The socket: connecting, sending one request, reading the answer and
 * handing what follows it to stream.c. */

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "telecarectl.h"

#define ANSWER_MAX ((size_t)512 << 20)     /* sanity cap on one answer line */

int die_unreachable(const char *path, const char *what)
{
	fprintf(stderr, PROG ": cannot reach telecared at %s: %s\n", path, what);
	return TC_EXIT_UNREACHABLE;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a daemon that went away is exit 3, not SIGPIPE */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The line reader (telecarectl.h) */
int read_line(struct reader *r, char **line, size_t *linelen)
{
	for (;;) {
		char *nl = r->len > r->scan ? memchr(r->buf + r->scan, '\n', r->len - r->scan) : NULL;
		if (nl) {
			*line = r->buf + r->start;
			*linelen = (size_t)(nl - *line);
			*nl = '\0';
			r->start = r->scan = (size_t)(nl - r->buf) + 1;
			return RD_LINE;
		}
		r->scan = r->len;
		if (r->start > 0) {   /* the previous line was handed out: reclaim it */
			memmove(r->buf, r->buf + r->start, r->len - r->start);
			r->len -= r->start;
			r->scan -= r->start;
			r->start = 0;
		}
		if (r->cap - r->len < 4096) {
			size_t ncap = r->cap ? r->cap * 2 : 65536;
			char *nbuf = ncap <= ANSWER_MAX ? realloc(r->buf, ncap + 1) : NULL;
			if (!nbuf) {
				errno = EMSGSIZE;
				return RD_ERROR;
			}
			r->buf = nbuf;
			r->cap = ncap;
		}

		struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN },
		                       { .fd = r->sigfd, .events = POLLIN } };
		int n = poll(p, r->sigfd >= 0 ? 2 : 1, r->timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return RD_ERROR;
		}
		if (n == 0) {
			errno = ETIMEDOUT;
			return RD_ERROR;
		}
		if (r->sigfd >= 0 && (p[1].revents & POLLIN))
			return RD_SIGNAL;

		ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return RD_ERROR;
		}
		if (got == 0) {
			if (r->len > 0) {   /* a last line without its newline: take it */
				r->buf[r->len] = '\0';
				*line = r->buf;
				*linelen = r->len;
				r->start = r->scan = r->len;
				return RD_LINE;
			}
			return RD_EOF;
		}
		r->len += (size_t)got;
	}
}

/* The request line, wiped first when it carried a password. */
static void free_request(const struct call *c, char *req, size_t len)
{
	if (req && c->secret)
		explicit_bzero(req, len + 1);
	free(req);
}

int run(const struct options *o, struct call *c)
{
	int fd = -1, sigfd = -1, rc;
	char *req = NULL;
	size_t reqlen = 0;
	json_t *msg = NULL, *answer = NULL;
	struct reader r = { .fd = -1, .sigfd = -1 };

	msg = json_pack("{s:s}", TC_KEY_CMD, c->cmd->wire);
	if (json_object_size(c->args))   /* "args may be omitted when a command takes none" */
		json_object_set(msg, TC_KEY_ARGS, c->args);
	req = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!req) {
		fputs(PROG ": out of memory\n", stderr);
		return TC_EXIT_USAGE;
	}
	reqlen = strlen(req);
	if (reqlen + 1 > TC_CONTROL_LINE_MAX && c->path) {
		/* device import: the rows went into one request */
		size_t rows = json_array_size(json_object_get(c->args, TC_ARG_ROWS));
		fputs(PROG ": ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fprintf(stderr, ": %zu devices make a request of %zu bytes, and telecared takes at "
		        "most %d bytes in one request (about %zu devices like these); nothing "
		        "imported\n", rows, strlen(req) + 1, TC_CONTROL_LINE_MAX,
		        rows * TC_CONTROL_LINE_MAX / (strlen(req) + 1));
		free_request(c, req, reqlen);
		return TC_EXIT_USAGE;
	}
	if (reqlen + 1 > TC_CONTROL_LINE_MAX) {
		fprintf(stderr, PROG ": request too long (%zu bytes, at most %d)\n", reqlen + 1,
		        TC_CONTROL_LINE_MAX);
		free_request(c, req, reqlen);
		return TC_EXIT_USAGE;
	}

	if (c->follow || c->test) {
		/* Ctrl-C ends a follow normally (exit 0), a device test as a
		 * failure (exit 1): take the signals as a readable fd next to the
		 * socket instead of a handler and a flag. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	}

	fd = connect_socket(o->socket_path);
	if (fd < 0) {
		rc = die_unreachable(o->socket_path, strerror(errno));
		goto out;
	}
	req[reqlen] = '\n';   /* overwrites the NUL; send length-bounded */
	if (send_all(fd, req, reqlen + 1) < 0) {
		rc = die_unreachable(o->socket_path, strerror(errno));
		goto out;
	}

	r.fd = fd;
	r.sigfd = sigfd;
	r.timeout_ms = c->timeout_ms;
	char *line;
	size_t len;
	switch (read_line(&r, &line, &len)) {
	case RD_LINE:
		break;
	case RD_SIGNAL:
		if (c->test)
			fputs("test interrupted\n", stderr);
		rc = c->test ? TC_EXIT_REFUSED : TC_EXIT_OK;
		goto out;
	case RD_EOF:
		rc = die_unreachable(o->socket_path, "connection closed before an answer");
		goto out;
	default:
		rc = die_unreachable(o->socket_path,
		                     errno == ETIMEDOUT ? "no answer within 60 s" : strerror(errno));
		goto out;
	}

	json_error_t jerr;
	answer = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	const json_t *ok = json_object_get(answer, TC_KEY_OK);
	if (!json_is_boolean(ok)) {
		rc = die_unreachable(o->socket_path, "the answer is not a control protocol answer");
		goto out;
	}
	if (json_is_false(ok)) {
		fputs(PROG ": ", stderr);
		put_value(stderr, json_object_get(answer, TC_KEY_ERROR));
		fputc('\n', stderr);
		rc = TC_EXIT_REFUSED;
		goto out;
	}

	const json_t *data = json_object_get(answer, TC_KEY_DATA);
	if (!data)
		data = json_null();
	if (o->json && c->follow) {
		/* JSON Lines throughout: the batch, then the stream, one event each */
		size_t i;
		const json_t *ev;
		json_array_foreach(data, i, ev)
			print_json(ev, JSON_COMPACT);
	} else if (c->backup) {
		rc = do_backup(o, c, data);
		goto out;
	} else if (o->json && c->test) {
		print_json(data, JSON_COMPACT);   /* JSON Lines: this and the stages */
	} else if (o->json) {
		print_json(data, JSON_INDENT(2));
	} else {
		c->cmd->print(c, data);
	}
	rc = TC_EXIT_OK;
	if (c->follow) {
		fflush(stdout);
		rc = follow_events(o, c, &r);
	} else if (c->test) {
		fflush(stdout);
		rc = device_test_stream(o, c, &r);
	}

out:
	json_decref(answer);
	free(r.buf);
	free_request(c, req, reqlen);
	if (fd >= 0)
		close(fd);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}
