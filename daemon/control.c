/* The control socket (docs/CONTROL.md): one JSON request per line, one JSON
 * answer per line. Sockets are non-blocking with an output buffer per
 * client, so a slow or stuck telecarectl never stalls the loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "telecared.h"
#include "telecare/control.h"
#include "telecare/timefmt.h"

#define OUT_MAX (32u << 20)  /* a client this far behind is dropped */

struct client {
	struct client *next;
	struct manager *m;
	int fd;
	sd_event_source *io;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_off, out_cap;
	bool follow;
	char *follow_device;         /* NULL: every device */
	char *test_device;           /* `device test` waiting on this device */
	bool closing;                /* close once the output is written */
};

struct control {
	int fd;
	char *path;
	sd_event_source *io;
	struct client *clients;
};

static void end_test(struct manager *m, struct client *c)
{
	if (!c->test_device)
		return;
	struct device *d = device_get(m, c->test_device);
	if (d)
		d->testing = false;
	free(c->test_device);
	c->test_device = NULL;
}

static void client_free(struct manager *m, struct client *c)
{
	end_test(m, c);
	struct client **pp = &m->control->clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	sd_event_source_disable_unref(c->io);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c->follow_device);
	free(c);
}

static void client_update_events(struct client *c)
{
	uint32_t ev = (c->closing ? 0 : EPOLLIN) | (c->out_len > c->out_off ? EPOLLOUT : 0);
	sd_event_source_set_io_events(c->io, ev);
}

/* Append one line. Returns -1 if the client must be dropped. */
static int client_send(struct client *c, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (!s)
		return -1;
	size_t n = strlen(s);
	if (c->out_len - c->out_off + n + 1 > OUT_MAX) {
		free(s);
		return -1;
	}
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n + 1 > c->out_cap) {
		size_t ncap = (c->out_len + n + 1) * 2;
		char *nb = realloc(c->out, ncap);
		if (!nb) {
			free(s);
			return -1;
		}
		c->out = nb;
		c->out_cap = ncap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	free(s);
	client_update_events(c);
	return 0;
}

static json_t *error_answer(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static void handle_line(struct client *c, const char *line, size_t len)
{
	struct manager *m = c->m;
	json_error_t jerr;
	json_t *req = json_loadb(line, len, 0, &jerr), *answer;

	if (!req || !json_is_object(req)) {
		answer = error_answer("a request is one JSON object on one line");
	} else {
		/* Reads see every write queued so far; an answer to a write
		 * is sent only once that write is on disk. */
		store_flush(m);
		size_t before = store_pending(m);
		answer = api_dispatch(m, req);
		const char *err;
		/* Only a request that wrote something waits for the disk: status
		 * and the lists must answer while the store is failing. */
		if (store_pending(m) > before && store_flush(m) < 0 && store_ok(m, &err) == false) {
			json_decref(answer);
			char msg[512];
			snprintf(msg, sizeof(msg), "accepted but not yet on disk (%s); telecared keeps "
			         "retrying the write", err);
			answer = error_answer(msg);
		}
		json_t *args = json_object_get(req, "args");
		const char *cmd = json_string_value(json_object_get(req, "cmd"));
		if (json_is_true(json_object_get(answer, "ok")) && cmd && !strcmp(cmd, "device.test")) {
			/* the answer said "waiting"; the stages follow on this connection */
			end_test(m, c);
			c->test_device = strdup(json_string_value(json_object_get(args, "id")));
		} else if (json_is_true(json_object_get(answer, "ok")) &&
		    json_is_true(json_object_get(args, "follow"))) {
			c->follow = true;
			const char *dev = json_string_value(json_object_get(args, "device"));
			c->follow_device = dev ? strdup(dev) : NULL;
		}
	}
	if (client_send(c, answer) < 0)
		c->closing = true;
	json_decref(answer);
	json_decref(req);
}

static int client_write(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		c->out_off += (size_t)n;
	}
	return 0;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;
	struct manager *m = c->m;
	(void)s;

	if (revents & EPOLLIN) {
		if (c->in_cap - c->in_len < 4096) {
			size_t ncap = c->in_cap ? c->in_cap * 2 : 8192;
			char *nb = realloc(c->in, ncap);
			if (!nb) {
				client_free(m, c);
				return 0;
			}
			c->in = nb;
			c->in_cap = ncap;
		}
		ssize_t n = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_free(m, c);
			return 0;
		}
		if (n > 0)
			c->in_len += (size_t)n;
		char *nl;
		while (!c->closing && (nl = memchr(c->in, '\n', c->in_len))) {
			size_t linelen = (size_t)(nl - c->in);
			if (linelen > TC_CONTROL_LINE_MAX)
				break;
			handle_line(c, c->in, linelen);
			memmove(c->in, nl + 1, c->in_len - linelen - 1);
			c->in_len -= linelen + 1;
		}
		/* A line over the limit, complete or not, is refused whole. */
		nl = memchr(c->in, '\n', c->in_len);
		size_t pending = nl ? (size_t)(nl - c->in) : c->in_len;
		if (!c->closing && pending > TC_CONTROL_LINE_MAX) {
			json_t *a = error_answer("request longer than 16 MiB");
			client_send(c, a);
			json_decref(a);
			c->closing = true;
		}
	}
	if ((revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN)) {
		client_free(m, c);
		return 0;
	}
	if (client_write(c) < 0 || (c->closing && c->out_off == c->out_len)) {
		client_free(m, c);
		return 0;
	}
	client_update_events(c);
	return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	(void)s;
	(void)revents;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warning("control: accept failed: %s", strerror(errno));
		return 0;
	}
	struct client *c = calloc(1, sizeof(*c));
	if (!c || sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, on_client, c) < 0) {
		free(c);
		close(cfd);
		return 0;
	}
	c->m = m;
	c->fd = cfd;
	c->next = m->control->clients;
	m->control->clients = c;
	return 0;
}

int control_open(struct manager *m, const char *path)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	m->control = ctl;
	ctl->fd = -1;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("control: socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	ctl->path = strdup(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		return -errno;
	/* A socket left by a killed daemon: remove it only if nobody answers. */
	if (connect(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("control: %s is in use: another telecared is running", path);
		return -EADDRINUSE;
	}
	close(ctl->fd);
	unlink(path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	mode_t old = umask(0117);  /* srw-rw----: the daemon's user and group */
	int r = bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(ctl->fd, 64) < 0) {
		log_error("control: cannot listen on %s: %s", path, strerror(errno));
		return -errno;
	}
	return sd_event_add_io(m->event, &ctl->io, ctl->fd, EPOLLIN, on_accept, m);
}

void control_stop(struct manager *m)
{
	/* A clean stop takes no new requests; answers already waiting go out. */
	if (m->control && m->control->io)
		sd_event_source_set_enabled(m->control->io, SD_EVENT_OFF);
}

void control_close(struct manager *m)
{
	struct control *ctl = m->control;
	if (!ctl)
		return;
	while (ctl->clients) {
		client_write(ctl->clients);
		client_free(m, ctl->clients);
	}
	sd_event_source_disable_unref(ctl->io);
	if (ctl->fd >= 0) {
		close(ctl->fd);
		unlink(ctl->path);
	}
	free(ctl->path);
	free(ctl);
	m->control = NULL;
}

bool control_has_followers(const struct manager *m)
{
	for (struct client *c = m->control ? m->control->clients : NULL; c; c = c->next)
		if (c->follow && !c->closing)
			return true;
	return false;
}

void control_event_stored(struct manager *m, json_t *event)
{
	if (!m->control)
		return;
	for (struct client *c = m->control->clients, *next; c; c = next) {
		next = c->next;
		if (!c->follow || c->closing)
			continue;
		if (c->follow_device &&
		    strcmp(c->follow_device, json_string_value(json_object_get(event, "device"))))
			continue;
		json_t *line = json_pack("{s:O}", "event", event);
		if (client_send(c, line) < 0) {
			/* Not freed here: we may be inside this client's own request. */
			log_warning("control: dropping an events --follow client that does not keep up");
			c->closing = true;
			client_update_events(c);
		}
		json_decref(line);
	}
}

void control_device_test(struct manager *m, const char *device, const char *stage,
                         int64_t alarm, const char *detail)
{
	char at[TC_TIME_STRLEN];
	tc_time_format(tc_now_ms(), at, sizeof(at));
	for (struct client *c = m->control ? m->control->clients : NULL; c; c = c->next) {
		if (!c->test_device || strcmp(c->test_device, device) || c->closing)
			continue;
		json_t *line = json_pack("{s:s, s:s, s:s, s:o, s:o}", "stage", stage, "device", device,
		                         "at", at, "alarm", alarm >= 0 ? json_integer(alarm) : json_null(),
		                         "detail", json_str_or_null(detail));
		if (client_send(c, line) < 0)
			c->closing = true;
		json_decref(line);
		if (!strcmp(stage, "alerted")) {
			end_test(m, c);
			c->closing = true;   /* the test is over: close once written */
			client_update_events(c);
		}
	}
}
