/* The control socket (docs/CONTROL.md): one JSON request per line, one JSON
 * answer per line, for the command table (command.c).
 *
 * Who may connect is decided by the peer's credentials (peercred.c), not by
 * the socket file's mode: the file is 0666 so that members of the three
 * telecare-* groups can reach it without sharing one group, and a peer with
 * no role gets one line saying so and is closed.
 *
 * Everything a client can make the daemon hold is bounded (docs/CONTROL.md,
 * "Bounds"): the number of clients (at the cap, the longest-idle client that
 * is not following, testing or waiting for an answer makes room), idle time,
 * bytes of requests buffered, bytes an `events --follow` reader may fall
 * behind. A client's requests run one at a time, one per loop iteration (a
 * deferred source), and its next request waits until the previous answer
 * has been written: answers stay in order and one client cannot
 * monopolise the loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telecared.h"
#include "telecare/control.h"
#include "telecare/timefmt.h"

#define CLIENTS_MAX      1000                 /* connected clients, at most */
#define FD_RESERVE       128                  /* descriptors kept for the broker, database, webhooks */
#define IDLE_TIMEOUT_S   60                   /* a client with nothing in progress this long is closed */
#define LINGER_S         2                    /* a client being closed, at most this long */
#define SWEEP_US         (1000000ULL)         /* how often idle and lingering clients are looked for */
#define ACCEPT_PAUSE_US  (250000ULL)          /* out of descriptors: accept again after this */
#define READ_CHUNK       (64u << 10)          /* bytes read from one client per loop iteration */
#define IN_SMALL         (64u << 10)          /* a request buffer this small needs no budget */
#define IN_TOTAL_MAX     (64u << 20)          /* request bytes buffered beyond IN_SMALL, all clients */
#define ANSWER_MAX       (32u << 20)          /* one answer */
#define FOLLOW_MAX       (1u << 20)           /* unsent bytes an events --follow reader may have */

struct client {
	struct client *prev, *next;
	struct manager *m;
	uint64_t serial;             /* for log lines: "control client #12" */
	int fd;
	sd_event_source *io, *defer;
	struct actor who;
	char *in;
	size_t in_len, in_cap;
	size_t scanned;              /* in[0..scanned) holds no newline */
	char *out;
	size_t out_len, out_off, out_cap;
	struct command_call *call;   /* the request whose answer is awaited */
	char call_cmd[32];           /* its command, for what follows the answer */
	json_t *call_args;
	bool follow;
	char *follow_device;         /* NULL: every device */
	char *test_device;           /* `device test` waiting on this device */
	bool eof;                    /* the client will send no more */
	bool closing;                /* close once the output is written (or LINGER_S passed) */
	bool linger;                 /* ...and the client has closed its end (refused at connect) */
	uint64_t last_active, closing_at;   /* CLOCK_MONOTONIC, us */
};

struct counts {
	uint64_t accepted, denied, evicted, refused, idle_closed, followers_dropped, accept_paused,
	         input_refused, requests;
};

struct control {
	int fd;
	char *path;
	bool bound;                  /* we created the file at path */
	dev_t dev;
	ino_t ino;
	sd_event_source *io, *sweep, *resume;
	struct client *clients;
	size_t n_clients, clients_max;
	size_t in_total;             /* sum of request buffers beyond IN_SMALL */
	uint64_t next_serial;
	struct counts count;
};

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static const char *client_label(const struct client *c, char *buf, size_t len)
{
	char who[160];
	snprintf(buf, len, "control client #%llu (%s)", (unsigned long long)c->serial,
	         actor_label(&c->who, who, sizeof(who)));
	return buf;
}

static size_t in_charge(size_t cap)
{
	return cap > IN_SMALL ? cap - IN_SMALL : 0;
}

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

static void client_free(struct client *c)
{
	struct manager *m = c->m;
	struct control *ctl = m->control;
	end_test(m, c);
	command_cancel(c->call);   /* an answer still waiting for its commit goes nowhere */
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl->n_clients--;
	ctl->in_total -= in_charge(c->in_cap);
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->defer);
	close(c->fd);
	if (c->in)
		explicit_bzero(c->in, c->in_len);   /* it may hold a password */
	free(c->in);
	free(c->out);
	free(c->follow_device);
	json_decref(c->call_args);
	free(c);
}

/* The end of the first complete line, or NULL. Each byte is looked at
 * once however slowly a long request trickles in. */
static char *find_line(struct client *c)
{
	char *nl = c->in_len > c->scanned ? memchr(c->in + c->scanned, '\n', c->in_len - c->scanned)
	                                  : NULL;
	c->scanned = nl ? (size_t)(nl - c->in) : c->in_len;
	return nl;
}

static bool has_line(struct client *c)
{
	return find_line(c) != NULL;
}

/* What the client's socket waits for, and whether its next request may run. */
static void client_update(struct client *c)
{
	bool pending = c->out_off < c->out_len;
	uint32_t ev = (c->eof ? 0 : EPOLLIN) | (pending ? EPOLLOUT : 0);
	sd_event_source_set_io_events(c->io, ev);
	if (!c->closing && !c->call && !pending && has_line(c))
		sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT);
}

static void start_closing(struct client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->closing_at = now_us();
	command_cancel(c->call);   /* inside command_run(), the caller cancels what it returns */
	c->call = NULL;
	end_test(c->m, c);
	c->follow = false;
}

/* Append one line; limit bounds the unsent bytes. -1 when it does not fit. */
static int client_append(struct client *c, const char *s, size_t n, size_t limit)
{
	if (c->out_len - c->out_off + n + 1 > limit)
		return -1;
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + n + 1 > c->out_cap) {
		if (c->out_off) {   /* reuse what was written before growing */
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
		}
		if (c->out_len + n + 1 > c->out_cap) {
			size_t ncap = (c->out_len + n + 1) * 2;
			char *nb = realloc(c->out, ncap);
			if (!nb)
				return -1;
			c->out = nb;
			c->out_cap = ncap;
		}
	}
	memcpy(c->out + c->out_len, s, n);
	c->out[c->out_len + n] = '\n';
	c->out_len += n + 1;
	return 0;
}

static int client_send(struct client *c, json_t *j, size_t limit)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (!s)
		return -1;
	int r = client_append(c, s, strlen(s), limit);
	free(s);
	return r;
}

static void send_error(struct client *c, const char *msg)
{
	json_t *a = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
	if (a)
		client_send(c, a, ANSWER_MAX);
	json_decref(a);
}

static int client_write(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0)
			return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
		c->out_off += (size_t)n;
		c->last_active = now_us();
	}
	return 0;
}

/* Written out, closed, or waiting: what a client is after any change.
 * Returns false when it was freed. */
static bool client_settle(struct client *c)
{
	if (client_write(c) < 0 ||
	    (c->closing && c->out_off == c->out_len && (c->eof || !c->linger)) ||
	    (c->eof && !c->call && c->out_off == c->out_len && !has_line(c) && !c->follow &&
	     !c->test_device)) {
		client_free(c);
		return false;
	}
	client_update(c);
	return true;
}

/* ---- requests ---- */

static void on_answer(struct manager *m, void *data, json_t *answer)
{
	struct client *c = data;
	(void)m;
	c->call = NULL;
	if (json_is_true(json_object_get(answer, "ok"))) {
		/* Streams: what follows the answer on this connection. */
		if (!strcmp(c->call_cmd, "device.test")) {
			end_test(c->m, c);
			c->test_device = strdup(json_string_value(json_object_get(c->call_args, "id")));
		} else if (!strcmp(c->call_cmd, "events") &&
		           json_is_true(json_object_get(c->call_args, "follow"))) {
			const char *dev = json_string_value(json_object_get(c->call_args, "device"));
			c->follow = true;
			free(c->follow_device);
			c->follow_device = dev ? strdup(dev) : NULL;
		}
	}
	json_decref(c->call_args);
	c->call_args = NULL;
	if (client_send(c, answer, ANSWER_MAX) < 0)
		send_error(c, "the answer is larger than 32 MiB or memory ran out; ask for less");
	json_decref(answer);
	c->last_active = now_us();
	/* Called from the command runner, maybe from inside the store's commit:
	 * freeing happens in the client's own callbacks, not here. */
	if (client_write(c) < 0)
		start_closing(c);
	client_update(c);
}

static void handle_line(struct client *c, char *line, size_t len)
{
	struct control *ctl = c->m->control;
	json_error_t jerr;
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	explicit_bzero(line, len);   /* a password must not linger in the buffer */
	ctl->count.requests++;
	if (!req || !json_is_object(req)) {
		json_decref(req);
		send_error(c, "a request is one JSON object on one line");
		return;
	}
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");
	snprintf(c->call_cmd, sizeof(c->call_cmd), "%s", cmd ? cmd : "");
	c->call_args = json_is_object(args) ? json_incref(args) : NULL;
	struct command_call *call = command_run(c->m, &c->who, cmd, args, on_answer, c);
	if (call && c->closing)
		command_cancel(call);   /* it was closed while the request ran */
	else
		c->call = call;         /* NULL: answered already; else after the commit or the hash */
	json_decref(req);
}

static int on_defer(sd_event_source *s, void *userdata)
{
	struct client *c = userdata;
	(void)s;
	char *nl = find_line(c);
	if (c->closing || c->call || !nl)
		return 0;
	size_t linelen = (size_t)(nl - c->in);
	handle_line(c, c->in, linelen);
	memmove(c->in, nl + 1, c->in_len - linelen - 1);
	c->in_len -= linelen + 1;
	c->scanned = 0;
	if (!c->in_len && c->in_cap > IN_SMALL) {
		/* a large request is done with: give its memory back */
		c->m->control->in_total -= in_charge(c->in_cap);
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
		c->scanned = 0;
	}
	client_settle(c);
	return 0;
}

/* Read once. Returns false when the client was freed. */
static bool client_read(struct client *c)
{
	struct control *ctl = c->m->control;
	char drop[4096];
	if (c->closing) {   /* being closed: its input is read and dropped */
		ssize_t n = recv(c->fd, drop, sizeof(drop), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			c->eof = true;
		return true;
	}
	if (c->in_cap - c->in_len < READ_CHUNK / 4) {
		size_t ncap = c->in_cap ? c->in_cap * 2 : 8192;
		while (ncap - c->in_len < READ_CHUNK / 4)
			ncap *= 2;
		size_t more = in_charge(ncap) - in_charge(c->in_cap);
		if (more && ctl->in_total + more > IN_TOTAL_MAX) {
			ctl->count.input_refused++;
			send_error(c, "too many large requests at once; try again");
			start_closing(c);
			return true;
		}
		char *nb = realloc(c->in, ncap);
		if (!nb) {
			send_error(c, "out of memory");
			start_closing(c);
			return true;
		}
		ctl->in_total += more;
		c->in = nb;
		c->in_cap = ncap;
	}
	size_t room = c->in_cap - c->in_len;
	ssize_t n = recv(c->fd, c->in + c->in_len, room < READ_CHUNK ? room : READ_CHUNK, 0);
	if (n == 0) {
		c->eof = true;
		return true;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR) {
			client_free(c);
			return false;
		}
		return true;
	}
	c->in_len += (size_t)n;
	c->last_active = now_us();
	/* A line over the limit, complete or not, is refused whole. */
	char *nl = find_line(c);
	size_t first = nl ? (size_t)(nl - c->in) : c->in_len;
	if (first > TC_CONTROL_LINE_MAX) {
		send_error(c, "request longer than 16 MiB");
		start_closing(c);
	}
	return true;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;
	(void)s;
	(void)fd;
	if ((revents & EPOLLIN) && !client_read(c))
		return 0;
	if ((revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN)) {
		client_free(c);
		return 0;
	}
	client_settle(c);
	return 0;
}

/* ---- connections ---- */

/* The client to close to make room: one that is only connected (not
 * following, testing or waiting for an answer), idle the longest; one that
 * is being closed anyway first. NULL when every client is busy. */
static struct client *evictable(struct control *ctl)
{
	struct client *best = NULL;
	for (struct client *c = ctl->clients; c; c = c->next) {
		if (c->closing)
			return c;
		if (c->call || c->follow || c->test_device || c->out_off < c->out_len)
			continue;
		if (!best || c->last_active < best->last_active)
			best = c;
	}
	return best;
}

static void refuse_fd(int fd, const char *msg)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "{\"ok\":false,\"error\":\"%s\"}\n", msg);
	if (send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing to do: it is closed next */
	}
	close(fd);
}

static int on_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct control *ctl = userdata;
	(void)s;
	(void)usec;
	sd_event_source_set_enabled(ctl->io, SD_EVENT_ON);
	return 0;
}

static void pause_accepting(struct manager *m, int err)
{
	struct control *ctl = m->control;
	static int64_t logged_at;
	ctl->count.accept_paused++;
	if (tc_now_ms() - logged_at > 10000) {
		logged_at = tc_now_ms();
		log_warning("control: cannot accept a connection (%s, %zu clients); pausing for %llu ms",
		            strerror(err), ctl->n_clients, (unsigned long long)(ACCEPT_PAUSE_US / 1000));
	}
	sd_event_source_set_enabled(ctl->io, SD_EVENT_OFF);
	if (!ctl->resume) {
		if (sd_event_add_time_relative(m->event, &ctl->resume, CLOCK_MONOTONIC, ACCEPT_PAUSE_US,
		                               0, on_resume, ctl) < 0) {
			sd_event_source_set_enabled(ctl->io, SD_EVENT_ON);   /* better spin than go deaf */
			return;
		}
	} else {
		sd_event_source_set_time_relative(ctl->resume, ACCEPT_PAUSE_US);
	}
	sd_event_source_set_enabled(ctl->resume, SD_EVENT_ONESHOT);
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct control *ctl = m->control;
	char label[200];
	(void)s;
	(void)revents;
	int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			pause_accepting(m, errno);
		else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warning("control: accept failed: %s", strerror(errno));
		return 0;
	}
	ctl->count.accepted++;
	if (ctl->n_clients >= ctl->clients_max) {
		struct client *old = evictable(ctl);
		if (!old) {
			ctl->count.refused++;
			refuse_fd(cfd, "too many control clients, all busy; try again");
			return 0;
		}
		if (!old->closing) {
			ctl->count.evicted++;
			log_info("control: %s closed to make room (idle longest, %zu clients)",
			         client_label(old, label, sizeof(label)), ctl->n_clients);
			send_error(old, "closed: too many control clients and this one was idle longest");
			client_write(old);
		}
		client_free(old);
	}
	struct client *c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->m = m;
	c->fd = cfd;
	c->serial = ++ctl->next_serial;
	c->last_active = now_us();
	if (sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, on_client, c) < 0 ||
	    sd_event_add_defer(m->event, &c->defer, on_defer, c) < 0 ||
	    sd_event_source_set_enabled(c->defer, SD_EVENT_OFF) < 0) {
		sd_event_source_disable_unref(c->io);
		sd_event_source_disable_unref(c->defer);
		free(c);
		close(cfd);
		return 0;
	}
	c->next = ctl->clients;
	if (c->next)
		c->next->prev = c;
	ctl->clients = c;
	ctl->n_clients++;
	if (peer_actor(cfd, &c->who) < 0 || c->who.role == ROLE_NONE) {
		char msg[300];
		ctl->count.denied++;
		actor_label(&c->who, label, sizeof(label));
		snprintf(msg, sizeof(msg), "permission denied: %s is in none of the groups "
		         "telecare-admin, telecare-dispatch, telecare-install", label);
		log_notice("control: %s", msg);
		send_error(c, msg);
		/* Kept open a moment, reading and dropping: a client that writes
		 * its request first still reads why. */
		start_closing(c);
		c->linger = true;
	}
	client_settle(c);
	return 0;
}

/* Idle clients and those being closed too long. */
static int on_sweep(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	struct control *ctl = m->control;
	uint64_t now = now_us();
	char label[200];
	(void)usec;
	for (struct client *c = ctl->clients, *next; c; c = next) {
		next = c->next;
		if (c->closing) {
			if (now - c->closing_at > LINGER_S * 1000000ULL)
				client_free(c);
			continue;
		}
		if (c->call || c->follow || c->test_device || c->out_off < c->out_len || has_line(c))
			continue;
		if (now - c->last_active > IDLE_TIMEOUT_S * 1000000ULL) {
			ctl->count.idle_closed++;
			log_info("control: %s closed after %d s idle", client_label(c, label, sizeof(label)),
			         IDLE_TIMEOUT_S);
			send_error(c, "closed: idle for 60 s");
			client_write(c);
			client_free(c);
		}
	}
	sd_event_source_set_time_relative(s, SWEEP_US);
	return 0;
}

/* ---- the socket ---- */

int control_open(struct manager *m, const char *path)
{
	struct control *ctl = calloc(1, sizeof(*ctl));
	int r;
	if (!ctl)
		return -ENOMEM;
	m->control = ctl;
	ctl->fd = -1;
	ctl->path = strdup(path);
	if (!ctl->path)
		return -ENOMEM;
	uint64_t files = fd_limit_raise();
	ctl->clients_max = CLIENTS_MAX;
	if (files && files < CLIENTS_MAX + 2 * FD_RESERVE)
		ctl->clients_max = files > 2 * FD_RESERVE ? files - 2 * FD_RESERVE : 16;
	if ((r = sockfile_listen(m->cfg, path, &ctl->fd, &ctl->dev, &ctl->ino)) < 0)
		return r;
	ctl->bound = true;
	if ((r = sd_event_add_io(m->event, &ctl->io, ctl->fd, EPOLLIN, on_accept, m)) < 0 ||
	    (r = sd_event_add_time_relative(m->event, &ctl->sweep, CLOCK_MONOTONIC, SWEEP_US, 0,
	                                    on_sweep, m)) < 0 ||
	    (r = sd_event_source_set_enabled(ctl->sweep, SD_EVENT_ON)) < 0)
		return r;
	return 0;
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
		client_free(ctl->clients);
	}
	sd_event_source_disable_unref(ctl->io);
	sd_event_source_disable_unref(ctl->sweep);
	sd_event_source_disable_unref(ctl->resume);
	if (ctl->fd >= 0)
		close(ctl->fd);
	if (ctl->bound)
		sockfile_remove(ctl->path, ctl->dev, ctl->ino);
	free(ctl->path);
	free(ctl);
	m->control = NULL;
}

json_t *control_status(const struct manager *m)
{
	const struct control *ctl = m->control;
	if (!ctl)
		return json_null();
	const struct counts *k = &ctl->count;
	return json_pack("{s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I,"
	                 " s:I}",
	                 "clients", (json_int_t)ctl->n_clients,
	                 "clients_max", (json_int_t)ctl->clients_max,
	                 "idle_timeout_s", IDLE_TIMEOUT_S,
	                 "follow_buffer_max", (json_int_t)FOLLOW_MAX,
	                 "input_buffered", (json_int_t)ctl->in_total,
	                 "requests", (json_int_t)k->requests,
	                 "accepted", (json_int_t)k->accepted, "denied", (json_int_t)k->denied,
	                 "evicted", (json_int_t)k->evicted, "refused", (json_int_t)k->refused,
	                 "idle_closed", (json_int_t)k->idle_closed,
	                 "followers_dropped", (json_int_t)k->followers_dropped,
	                 "accept_paused", (json_int_t)k->accept_paused,
	                 "input_refused", (json_int_t)k->input_refused,
	                 "password_hashes", (json_int_t)hash_jobs(m));
}

/* ---- streams: events --follow and device test ---- */

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
	char *line = NULL;
	size_t n = 0;
	char label[200];
	const char *dev = json_string_value(json_object_get(event, "device"));
	for (struct client *c = m->control->clients; c; c = c->next) {
		if (!c->follow || c->closing || (c->follow_device && (!dev || strcmp(c->follow_device, dev))))
			continue;
		if (!line) {   /* one text for every follower */
			json_t *j = json_pack("{s:O}", "event", event);
			line = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
			json_decref(j);
			if (!line)
				return;
			n = strlen(line);
		}
		if (client_append(c, line, n, FOLLOW_MAX) < 0) {
			client_write(c);   /* the socket may have room now */
			if (client_append(c, line, n, FOLLOW_MAX) == 0)
				goto sent;
			m->control->count.followers_dropped++;
			log_warning("control: %s dropped: its events --follow stream is more than %u bytes "
			            "behind", client_label(c, label, sizeof(label)), FOLLOW_MAX);
			static const char last[] = "{\"ok\":false,\"error\":\"disconnected: more than "
			                           "1 MiB of events --follow output unread\"}";
			client_append(c, last, sizeof(last) - 1, FOLLOW_MAX + sizeof(last));
			start_closing(c);
		}
sent:
		/* Freed, if at all, from its own callbacks: this runs inside the
		 * store's commit, maybe inside another client's request. */
		client_update(c);
	}
	free(line);
}

void control_device_test(struct manager *m, const char *device, const char *stage,
                         int64_t alarm, const char *detail)
{
	http_device_test(m, device, stage, alarm, detail);
	char at[TC_TIME_STRLEN];
	tc_time_format(tc_now_ms(), at, sizeof(at));
	for (struct client *c = m->control ? m->control->clients : NULL; c; c = c->next) {
		if (!c->test_device || strcmp(c->test_device, device) || c->closing)
			continue;
		json_t *line = json_pack("{s:s, s:s, s:s, s:o, s:o}", "stage", stage, "device", device,
		                         "at", at, "alarm", alarm >= 0 ? json_integer(alarm) : json_null(),
		                         "detail", json_str_or_null(detail));
		if (!line || client_send(c, line, ANSWER_MAX) < 0)
			start_closing(c);
		json_decref(line);
		if (!strcmp(stage, "alerted")) {
			end_test(m, c);
			/* the test is over: close once written */
			c->closing = true;
			c->closing_at = now_us();
		}
		client_update(c);
	}
}
