/* The SIA DC-09 receiver's sockets (SPEC 2.8, docs/SOURCES.md): for each
 * sia-dc09 source a TCP and a UDP listener on the same port, on the loop.
 *
 * TCP: panels keep their connection open between messages; one closed
 * after idle_timeout without a byte from its panel. At most
 * max_connections at once: one more is accepted and closed at once (counted
 * as refused, logged), so the panel turns to its backup path instead of
 * waiting in the backlog. Frames are cut out of the stream
 * (tc_dc09_frame_next, at most 1024 bytes each), one receive per callback.
 * Replies go out in the order the messages came, whether a reply is ready at
 * once (NAK, DUH) or after its commit (ACK): each message takes the next of
 * DC09_SLOTS reply slots, and reading stops while all are taken.
 *
 * UDP: one datagram, one frame, the reply to its sender; at most
 * UDP_WAITING_MAX datagrams wait for their commit, more are dropped unanswered
 * (counted; the panel retries).
 *
 * A reply that comes after the commit finds its connection by id, never by a
 * pointer: the connection may have closed meanwhile. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include "dc09.h"
#include "telecare/timefmt.h"

#define DC09_SLOTS      8                       /* replies a connection waits for at once */
#define IN_CAP          (2 * TC_DC09_FRAME_MAX) /* a whole frame after any noise */
#define OUT_CAP         (2 * TC_DC09_REPLY_MAX)
#define ACCEPT_SLICE    64                      /* connections accepted per callback */
#define READS_PER_SLICE 4                       /* receives per connection per callback */
#define UDP_SLICE       64                      /* datagrams read per callback */
#define UDP_WAITING_MAX 4096
#define SWEEP_US        1000000ULL              /* idle connections looked for every second */
#define LOG_WINDOW_MS   10000
#define LOG_BURST       20

struct slot {
	bool ready;
	uint16_t len;
	char b[TC_DC09_REPLY_MAX];
};

struct dc09_conn {
	struct dc09_conn *prev, *next;
	struct dc09_src *src;
	uint64_t id;
	int fd;
	sd_event_source *io, *kick;
	char peer[64];
	int64_t last_in;             /* boottime ms of the last byte received */
	bool eof;                    /* the panel closed its side: answer what waits, then close */
	bool dead;                   /* close at the next chance outside a reply */
	uint32_t r_first, r_next;    /* reply slots taken: [r_first, r_next) */
	struct slot slot[DC09_SLOTS];
	size_t in_len, out_len, out_off;
	char in[IN_CAP], out[OUT_CAP];
};

void dc09_log(struct dc09_src *s, int prio, const char *fmt, ...)
{
	int64_t now = tc_mono_ms();
	if (now - s->log_from >= LOG_WINDOW_MS) {
		if (s->log_skipped)
			log_full(LOG_NOTICE, NULL, 0, NULL, "source %s: %llu more lines like these not logged",
			         s->cfg->name, (unsigned long long)s->log_skipped);
		s->log_from = now;
		s->log_n = 0;
		s->log_skipped = 0;
	}
	if (s->log_n >= LOG_BURST) {
		s->log_skipped++;
		return;
	}
	s->log_n++;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_full(prio, NULL, 0, NULL, "%s", line);
}

static void conn_key(uint64_t id, char *buf, size_t len)
{
	snprintf(buf, len, "%llx", (unsigned long long)id);
}

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
		port = ntohs(s4->sin_port);
		snprintf(out, len, "%s:%u", a, port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
		port = ntohs(s6->sin6_port);
		snprintf(out, len, "[%s]:%u", a, port);
	} else {
		snprintf(out, len, "?");
	}
}

/* ---- connections ---- */

static void conn_free(struct dc09_conn *c)
{
	struct dc09_src *s = c->src;
	char key[24];
	conn_key(c->id, key, sizeof(key));
	map_del(&s->dc->conns, key);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->kick);
	close(c->fd);
	free(c);
}

static void conn_events(struct dc09_conn *c)
{
	bool room = c->r_next - c->r_first < DC09_SLOTS;
	uint32_t ev = (!c->eof && room && !c->src->m->shutting_down ? EPOLLIN : 0) |
	              (c->out_len > c->out_off ? EPOLLOUT : 0) | EPOLLET;
	sd_event_source_set_io_events(c->io, ev);
}

/* Come back to c outside of the reply being given (kick). */
static void conn_kick(struct dc09_conn *c)
{
	sd_event_source_set_enabled(c->kick, SD_EVENT_ONESHOT);
}

/* Ready replies, in order, into the output; the output to the socket. Never
 * frees c (it may run inside a reply): a broken connection is marked dead. */
static void conn_flush(struct dc09_conn *c)
{
	while (c->r_first != c->r_next) {
		struct slot *sl = &c->slot[c->r_first % DC09_SLOTS];
		if (!sl->ready)
			break;
		if (c->out_off && c->out_off == c->out_len)
			c->out_off = c->out_len = 0;
		if (c->out_len + sl->len > OUT_CAP) {
			memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
			c->out_len -= c->out_off;
			c->out_off = 0;
			if (c->out_len + sl->len > OUT_CAP)
				break;   /* the panel does not read: wait for EPOLLOUT */
		}
		memcpy(c->out + c->out_len, sl->b, sl->len);
		c->out_len += sl->len;
		sl->ready = false;
		c->r_first++;
	}
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				c->dead = true;
			break;
		}
		c->out_off += (size_t)n;
	}
}

/* Cut frames out of what was received, while reply slots are free. */
static void conn_parse(struct dc09_conn *c)
{
	struct dc09_src *s = c->src;
	struct dc09_origin o = { .conn = c->id };
	size_t pos = 0;
	snprintf(o.text, sizeof(o.text), "%s", c->peer);
	while (!c->dead && c->r_next - c->r_first < DC09_SLOTS && pos < c->in_len) {
		size_t skip = 0, flen = 0;
		enum tc_dc09_scan r = tc_dc09_frame_next(c->in + pos, c->in_len - pos, &skip, &flen);
		if (r == TC_DC09_NEED_MORE) {
			pos += skip;
			break;
		}
		o.slot = c->r_next++;
		s->st.frames_tcp++;
		if (r == TC_DC09_TOO_LONG) {
			pos += skip;
			dc09_refuse(s, &o, TC_DC09_E_LENGTH, NULL, "no CR within 1024 bytes of the LF");
			continue;
		}
		dc09_frame(s, &o, c->in + pos + skip, flen);
		pos += skip + flen;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
}

/* 1 when c is done and was freed. */
static int conn_settle(struct dc09_conn *c)
{
	if (c->dead || (c->eof && c->r_first == c->r_next && c->out_off == c->out_len)) {
		conn_free(c);
		return 1;
	}
	conn_events(c);
	return 0;
}

/* Read and answer: at most READS_PER_SLICE receives, then the rest waits
 * for the kick. The socket is edge-triggered (a thousand busy connections
 * must not each be polled again for every message handled), so what is not
 * read now is read only because we come back: the kick, or EPOLLIN set again
 * once reply slots are free (which re-arms the edge). */
static void conn_work(struct dc09_conn *c)
{
	bool drained = false;
	for (int k = 0; k < READS_PER_SLICE && !c->eof && !c->dead &&
	                c->r_next - c->r_first < DC09_SLOTS; k++) {
		ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAP - c->in_len, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			c->last_in = tc_mono_ms();
			conn_parse(c);
		} else if (n == 0) {
			c->eof = true;
		} else if (errno == EAGAIN) {
			drained = true;
		} else if (errno != EINTR) {
			c->dead = true;
		}
		if (drained)
			break;
	}
	conn_flush(c);
	if (conn_settle(c))
		return;
	if (!drained && !c->eof && c->r_next - c->r_first < DC09_SLOTS)
		conn_kick(c);   /* more may wait in the socket: another slice, later */
}

static int on_conn(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct dc09_conn *c = userdata;
	(void)es;
	(void)fd;
	if ((revents & (EPOLLHUP | EPOLLERR)) && c->r_next - c->r_first >= DC09_SLOTS)
		c->dead = true;   /* gone while we could not read: its replies are lost */
	conn_work(c);
	return 0;
}

/* After a reply freed slots (or marked c dead) from inside another callback,
 * or a slice left more to read. */
static int on_kick(sd_event_source *es, void *userdata)
{
	struct dc09_conn *c = userdata;
	(void)es;
	if (!c->dead && !c->eof)
		conn_parse(c);
	conn_work(c);
	return 0;
}

void dc09_send(struct dc09_src *s, const struct dc09_origin *o, const char *frame, size_t len)
{
	if (!o->conn) {
		if (len && sendto(s->udp_fd, frame, len, MSG_DONTWAIT | MSG_NOSIGNAL,
		                  (const struct sockaddr *)&o->peer, o->peerlen) < 0)
			s->st.replies_lost++;
		return;
	}
	char key[24];
	conn_key(o->conn, key, sizeof(key));
	struct dc09_conn *c = map_get(&s->dc->conns, key);
	if (!c || c->dead || o->slot - c->r_first >= c->r_next - c->r_first) {
		if (len)
			s->st.replies_lost++;
		return;
	}
	bool full = c->r_next - c->r_first >= DC09_SLOTS;
	struct slot *sl = &c->slot[o->slot % DC09_SLOTS];
	sl->ready = true;
	sl->len = (uint16_t)len;
	memcpy(sl->b, frame, len);
	conn_flush(c);
	/* Slots freed with frames still unread, or a broken connection: carry
	 * on outside this reply (it may run inside a commit). */
	if (c->dead || (full && c->r_next - c->r_first < DC09_SLOTS) || c->eof)
		conn_kick(c);
	else
		conn_events(c);
}

static int conn_new(struct dc09_src *s, int fd, const struct sockaddr_storage *peer)
{
	struct dc09 *dc = s->dc;
	struct dc09_conn *c = calloc(1, sizeof(*c));
	char key[24];
	if (!c)
		return -ENOMEM;
	c->src = s;
	c->fd = fd;
	c->id = ++dc->next_id;
	c->last_in = tc_mono_ms();
	peer_text(peer, c->peer, sizeof(c->peer));
	conn_key(c->id, key, sizeof(key));
	int r = sd_event_add_io(s->m->event, &c->io, fd, EPOLLIN | EPOLLET, on_conn, c);
	if (r >= 0)
		r = sd_event_add_defer(s->m->event, &c->kick, on_kick, c);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->kick, SD_EVENT_OFF);
	if (r >= 0 && map_put(&dc->conns, key, c) < 0)
		r = -ENOMEM;
	if (r < 0) {
		sd_event_source_disable_unref(c->io);
		sd_event_source_disable_unref(c->kick);
		free(c);
		return r;
	}
	/* replies are small and go out at once */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->next = s->conns;
	if (c->next)
		c->next->prev = c;
	s->conns = c;
	s->n_conns++;
	return 0;
}

static int on_accept_again(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct dc09_src *s = userdata;
	(void)es;
	(void)usec;
	sd_event_source_set_enabled(s->tcp_io, SD_EVENT_ON);
	return 0;
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct dc09_src *s = userdata;
	(void)es;
	(void)revents;
	for (int k = 0; k < ACCEPT_SLICE && !s->m->shutting_down; k++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		char text[64];
		int cfd = accept4(fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The connection stays in the backlog: pause a second
				 * rather than spin on it. */
				dc09_log(s, LOG_ERR, "source %s: cannot accept a DC-09 connection: %s",
				         s->cfg->name, strerror(errno));
				sd_event_source_set_enabled(s->tcp_io, SD_EVENT_OFF);
				sd_event_source_set_time_relative(s->accept_again, 1000000);
				sd_event_source_set_enabled(s->accept_again, SD_EVENT_ONESHOT);
				break;
			}
			continue;   /* ECONNABORTED and the like: that one is gone */
		}
		peer_text(&peer, text, sizeof(text));
		if (s->n_conns >= (size_t)s->cfg->max_connections) {
			s->st.refused++;
			dc09_log(s, LOG_WARNING, "source %s: connection from %s refused: %zu connections "
			         "open, max_connections is %d", s->cfg->name, text, s->n_conns,
			         s->cfg->max_connections);
			close(cfd);
			continue;
		}
		int r = conn_new(s, cfd, &peer);
		if (r < 0) {
			dc09_log(s, LOG_ERR, "source %s: connection from %s dropped: %s", s->cfg->name,
			         text, strerror(-r));
			close(cfd);
			continue;
		}
		s->st.accepted++;
	}
	return 0;
}

/* ---- UDP ---- */

static int on_udp(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct dc09_src *s = userdata;
	char buf[TC_DC09_FRAME_MAX + 1];
	(void)es;
	(void)revents;
	for (int k = 0; k < UDP_SLICE && !s->m->shutting_down; k++) {
		struct dc09_origin o = { .conn = 0 };
		o.peerlen = sizeof(o.peer);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&o.peer,
		                     &o.peerlen);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				dc09_log(s, LOG_ERR, "source %s: UDP: %s", s->cfg->name, strerror(errno));
			break;
		}
		peer_text(&o.peer, o.text, sizeof(o.text));
		s->st.frames_udp++;
		if ((size_t)n > TC_DC09_FRAME_MAX) {
			dc09_refuse(s, &o, TC_DC09_E_LENGTH, NULL, "a datagram over 1024 bytes");
			continue;
		}
		size_t skip = 0, flen = 0;
		enum tc_dc09_scan r = tc_dc09_frame_next(buf, (size_t)n, &skip, &flen);
		if (r != TC_DC09_FRAME) {
			dc09_refuse(s, &o, r == TC_DC09_TOO_LONG ? TC_DC09_E_LENGTH : TC_DC09_E_FORMAT, NULL,
			            "no LF ... CR frame in the datagram");
			continue;
		}
		if (s->udp_waiting >= UDP_WAITING_MAX) {
			s->st.udp_dropped++;
			dc09_log(s, LOG_WARNING, "source %s: %zu UDP messages wait for the database: "
			         "one from %s dropped unanswered", s->cfg->name, s->udp_waiting, o.text);
			continue;
		}
		dc09_frame(s, &o, buf + skip, flen);
	}
	return 0;
}

/* ---- listeners ---- */

static int listen_on(struct dc09_src *s, int type)
{
	struct sockaddr_storage ss;
	const char *what = type == SOCK_STREAM ? "TCP" : "UDP";
	if (tc_parse_listen(s->cfg->listen, &ss) < 0) {
		log_error("source %s: listen %s is not ADDRESS:PORT", s->cfg->name, s->cfg->listen);
		return -EINVAL;
	}
	int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || (type == SOCK_STREAM &&
	               setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                                              : sizeof(struct sockaddr_in)) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 1024) < 0)) {
		int e = errno;
		log_error("source %s: cannot listen on %s (%s): %s", s->cfg->name, s->cfg->listen, what,
		          strerror(e));
		if (fd >= 0)
			close(fd);
		return -e;
	}
	if (type == SOCK_STREAM)
		s->tcp_fd = fd;
	else
		s->udp_fd = fd;
	int r = sd_event_add_io(s->m->event, type == SOCK_STREAM ? &s->tcp_io : &s->udp_io, fd,
	                        EPOLLIN, type == SOCK_STREAM ? on_accept : on_udp, s);
	if (r < 0)
		log_error("source %s: cannot watch %s (%s): %s", s->cfg->name, s->cfg->listen, what,
		          strerror(-r));
	return r;
}

/* Idle connections closed; old no-timestamp messages forgotten. */
static int on_sweep(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct dc09 *dc = userdata;
	int64_t now = tc_mono_ms();
	(void)usec;
	for (size_t i = 0; i < dc->n_src; i++) {
		struct dc09_src *s = &dc->src[i];
		for (struct dc09_conn *c = s->conns, *next; c; c = next) {
			next = c->next;
			if (now - c->last_in < s->cfg->idle_ms)
				continue;
			s->st.idle_closed++;
			if (c->r_first != c->r_next)
				s->st.replies_lost += c->r_next - c->r_first;
			conn_free(c);
		}
	}
	if (dc->recent.len && now - dc->pruned_at >= 60000) {
		dc09_recent_prune(dc, tc_now_ms());
		dc->pruned_at = now;
	}
	sd_event_source_set_time_relative(es, SWEEP_US);
	return 0;
}

/* Enough file descriptors for every connection the sources allow. */
static void raise_fd_limit(struct dc09 *dc)
{
	struct rlimit rl;
	rlim_t want = 256;
	for (size_t i = 0; i < dc->n_src; i++)
		want += (rlim_t)dc->src[i].cfg->max_connections;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < want)
		log_warning("DC-09: %llu file descriptors allowed (RLIMIT_NOFILE), max_connections "
		            "needs %llu: connections past the limit are refused",
		            (unsigned long long)rl.rlim_cur, (unsigned long long)want);
}

int dc09_init(struct manager *m)
{
	size_t n = 0;
	char err[512];
	for (size_t i = 0; i < m->cfg->n_sources; i++)
		n += m->cfg->sources[i]->format == TC_SRC_SIA_DC09;
	if (!n)
		return 0;
	struct dc09 *dc = calloc(1, sizeof(*dc));
	if (!dc || !(dc->src = calloc(n, sizeof(*dc->src))) || !(dc->msg = malloc(sizeof(*dc->msg)))) {
		if (dc)
			free(dc->src);
		free(dc);
		return -ENOMEM;
	}
	m->dc09 = dc;
	for (size_t i = 0; i < m->cfg->n_sources; i++) {
		const struct tc_source *cfg = m->cfg->sources[i];
		if (cfg->format != TC_SRC_SIA_DC09)
			continue;
		struct dc09_src *s = &dc->src[dc->n_src++];
		*s = (struct dc09_src){ .m = m, .dc = dc, .cfg = cfg, .tcp_fd = -1, .udp_fd = -1 };
		if (cfg->keys && dc09_keys_load(cfg->keys, &s->keys, err, sizeof(err)) < 0) {
			log_error("source %s: %s", cfg->name, err);
			return -EINVAL;
		}
	}
	raise_fd_limit(dc);
	for (size_t i = 0; i < dc->n_src; i++) {
		struct dc09_src *s = &dc->src[i];
		int r = listen_on(s, SOCK_STREAM);
		if (r >= 0)
			r = listen_on(s, SOCK_DGRAM);
		if (r >= 0)
			r = sd_event_add_time_relative(m->event, &s->accept_again, CLOCK_BOOTTIME, 1000000,
			                               0, on_accept_again, s);
		if (r >= 0)
			r = sd_event_source_set_enabled(s->accept_again, SD_EVENT_OFF);
		if (r < 0)
			return r;
		log_notice("source %s: DC-09 receiver on %s (TCP and UDP), %zu account keys%s",
		           s->cfg->name, s->cfg->listen, s->keys.n, s->cfg->max_age_ms || s->cfg->max_lead_ms
		           ? "" : ", no timestamp window");
	}
	int r = sd_event_add_time_relative(m->event, &dc->sweep, CLOCK_BOOTTIME, SWEEP_US, 0,
	                                   on_sweep, dc);
	if (r >= 0)
		r = sd_event_source_set_enabled(dc->sweep, SD_EVENT_ON);
	return r < 0 ? r : 0;
}

void dc09_free(struct manager *m)
{
	struct dc09 *dc = m->dc09;
	if (!dc)
		return;
	for (size_t i = 0; i < dc->n_src; i++) {
		struct dc09_src *s = &dc->src[i];
		while (s->conns)
			conn_free(s->conns);
		sd_event_source_disable_unref(s->tcp_io);
		sd_event_source_disable_unref(s->udp_io);
		sd_event_source_disable_unref(s->accept_again);
		if (s->tcp_fd >= 0)
			close(s->tcp_fd);
		if (s->udp_fd >= 0)
			close(s->udp_fd);
		tc_dc09_keys_clear(&s->keys);
	}
	sd_event_source_disable_unref(dc->sweep);
	map_free(&dc->conns);
	map_free(&dc->recent);
	map_free(&dc->unmapped_pending);
	free(dc->msg);
	free(dc->src);
	free(dc);
	m->dc09 = NULL;
}

void dc09_reload(struct manager *m)
{
	char err[512];
	for (size_t i = 0; m->dc09 && i < m->dc09->n_src; i++) {
		struct dc09_src *s = &m->dc09->src[i];
		struct tc_dc09_keys k = { 0 };
		if (!s->cfg->keys)
			continue;
		if (dc09_keys_load(s->cfg->keys, &k, err, sizeof(err)) < 0) {
			log_error("reload: source %s: %s; the keys read before stay in use", s->cfg->name,
			          err);
			continue;
		}
		tc_dc09_keys_clear(&s->keys);
		s->keys = k;
		log_notice("reload: source %s: %zu account keys", s->cfg->name, k.n);
	}
}

int dc09_check_config(const struct config *c, FILE *err)
{
	char msg[512];
	int bad = 0;
	for (size_t i = 0; i < c->n_sources; i++) {
		const struct tc_source *src = c->sources[i];
		struct tc_dc09_keys k = { 0 };
		if (src->format != TC_SRC_SIA_DC09 || !src->keys)
			continue;
		if (dc09_keys_load(src->keys, &k, msg, sizeof(msg)) < 0) {
			fprintf(err, "telecared: %s: [source %s] %s\n", c->file ? c->file : "defaults",
			        src->name, msg);
			bad = 1;
		}
		tc_dc09_keys_clear(&k);
	}
	return bad;
}

static json_t *stats_json(struct manager *m, struct dc09_src *s)
{
	static const char *const nak[NAK__COUNT] = {
		[NAK_CRC] = "crc", [NAK_LENGTH] = "length", [NAK_FORMAT] = "format", [NAK_KEY] = "key",
		[NAK_DECRYPT] = "decrypt", [NAK_TIME] = "time", [NAK_STORE] = "store",
	};
	const struct dc09_stats *st = &s->st;
	json_t *naks = json_object();
	for (int i = 0; i < NAK__COUNT; i++)
		json_object_set_new(naks, nak[i], json_integer((json_int_t)st->nak[i]));
	size_t polling = 0;
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		const struct device *d = v;
		polling += d->last_poll && d->source && !strcmp(d->source, s->cfg->name);
	}
	/* ACK, NAK and DUH by reason (SPEC 2.8): what a panel was told, and why */
	return json_pack("{s:s, s:I, s:{s:I, s:I}, s:{s:I, s:o, s:{s:I}}, s:{s:I, s:I, s:I, s:I, s:I},"
	                 " s:o, s:I, s:{s:I, s:i, s:I, s:I, s:I}, s:I, s:I}",
	                 "listen", s->cfg->listen, "keys", (json_int_t)s->keys.n,
	                 "frames", "tcp", (json_int_t)st->frames_tcp, "udp", (json_int_t)st->frames_udp,
	                 "replies", "ACK", (json_int_t)st->ack, "NAK", naks,
	                 "DUH", "id", (json_int_t)st->duh,
	                 "messages", "events", (json_int_t)st->events,
	                 "duplicates", (json_int_t)st->duplicates,
	                 "unmapped", (json_int_t)st->unmapped,
	                 "unregistered", (json_int_t)st->unregistered,
	                 "polls", (json_int_t)st->polls,
	                 "last_poll", json_time_or_null(st->last_poll),
	                 "polling_devices", (json_int_t)polling,
	                 "connections", "open", (json_int_t)s->n_conns,
	                 "max", s->cfg->max_connections, "accepted", (json_int_t)st->accepted,
	                 "refused", (json_int_t)st->refused, "idle_closed", (json_int_t)st->idle_closed,
	                 "replies_lost", (json_int_t)st->replies_lost,
	                 "udp_dropped", (json_int_t)st->udp_dropped);
}

json_t *dc09_status(struct manager *m)
{
	json_t *o = json_object();
	for (size_t i = 0; m->dc09 && i < m->dc09->n_src; i++)
		json_object_set_new(o, m->dc09->src[i].cfg->name, stats_json(m, &m->dc09->src[i]));
	return o;
}
