/* GET /api/stream: Server-Sent Events (docs/HTTP.md). Every change the
 * console shows live (an alarm's summary, a timeline row, the gateway's
 * health, a device test's stages) becomes one numbered event, kept in a ring
 * for Last-Event-ID and appended to the buffer of every stream allowed to
 * see it. A stream with nothing to send is a suspended connection; one that
 * falls more than STREAM_BUF_MAX behind is dropped (its browser reconnects
 * and resumes). Nothing here waits for a reader. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "telecare/timefmt.h"

struct stream {
	struct stream *next;
	struct http *h;
	struct MHD_Connection *conn;
	char session[48];
	enum role role;
	char worker[TC_DEVICE_ID_MAX + 1];
	char *buf;
	size_t len, cap;
	bool suspended, dead;
};

size_t streams_count(const struct http *h)
{
	size_t n = 0;
	for (const struct stream *st = h->streams; st; st = st->next)
		n++;
	return n;
}

static void wake(struct stream *st)
{
	if (st->suspended) {
		st->suspended = false;
		MHD_resume_connection(st->conn);
		http_run_later(st->h);
	}
}

static void push(struct stream *st, const char *text, size_t n)
{
	if (st->dead)
		return;
	if (st->len + n > STREAM_BUF_MAX) {
		/* Too far behind: its browser reconnects with Last-Event-ID. */
		st->dead = true;
		st->h->count.streams_dropped++;
		log_warning("http: dropping an event stream of %s that fell %zu bytes behind",
		            st->worker[0] ? st->worker : role_name(st->role), st->len);
		wake(st);
		return;
	}
	if (st->len + n > st->cap) {
		size_t ncap = (st->len + n) * 2 > STREAM_BUF_MAX ? STREAM_BUF_MAX : (st->len + n) * 2;
		char *nb = realloc(st->buf, ncap);
		if (!nb) {
			st->dead = true;
			wake(st);
			return;
		}
		st->buf = nb;
		st->cap = ncap;
	}
	memcpy(st->buf + st->len, text, n);
	st->len += n;
	wake(st);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream *st = cls;
	(void)pos;
	if (st->dead)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (!st->len) {
		/* Nothing to send: park until there is (libmicrohttpd's rule). */
		st->suspended = true;
		MHD_suspend_connection(st->conn);
		return 0;
	}
	size_t n = st->len < max ? st->len : max;
	memcpy(buf, st->buf, n);
	memmove(st->buf, st->buf + n, st->len - n);
	st->len -= n;
	return (ssize_t)n;
}

void stream_closed(struct stream *st)
{
	struct stream **pp = &st->h->streams;
	while (*pp && *pp != st)
		pp = &(*pp)->next;
	if (*pp)
		*pp = st->next;
	free(st->buf);
	free(st);
}

static void on_free(void *cls)
{
	stream_closed(cls);
}

/* Does this stream see ring slot i? (docs/CONTROL.md: what a role sees) */
static bool visible(const struct stream *st, size_t i)
{
	const struct http *h = st->h;
	if (h->ring[i].session[0])
		return !strcmp(h->ring[i].session, st->session);
	if (!h->ring[i].alarm)
		return true;
	switch (st->role) {
	case ROLE_ADMIN:
	case ROLE_DISPATCHER:
		return true;
	case ROLE_INSTALLER:
		return h->ring[i].test;
	case ROLE_WORKER:
		return st->worker[0] && h->ring[i].alerted && id_list_has(h->ring[i].alerted, st->worker);
	default:
		return false;
	}
}

static void send_slot(struct stream *st, size_t i)
{
	const struct http *h = st->h;
	char head[96];
	int n = snprintf(head, sizeof(head), "id: %llu\nevent: %s\ndata: ",
	                 (unsigned long long)h->ring[i].id, h->ring[i].event);
	push(st, head, (size_t)n);
	push(st, h->ring[i].data, strlen(h->ring[i].data));
	push(st, "\n\n", 2);
}

/* One event to every stream that may see it. data is stolen. */
static void emit(struct http *h, const char *event, json_t *data, int64_t alarm,
                 json_t *alerted, bool test, const char *session)
{
	char *text = data ? json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
	json_decref(data);
	if (!text)
		return;
	size_t i = h->next_id % STREAM_RING;
	free(h->ring[i].data);
	json_decref(h->ring[i].alerted);
	h->ring[i].id = h->next_id++;
	snprintf(h->ring[i].event, sizeof(h->ring[i].event), "%s", event);
	h->ring[i].data = text;
	h->ring[i].alarm = alarm;
	h->ring[i].alerted = alerted ? json_deep_copy(alerted) : NULL;
	h->ring[i].test = test;
	snprintf(h->ring[i].session, sizeof(h->ring[i].session), "%s", session ? session : "");
	for (struct stream *st = h->streams; st; st = st->next)
		if (visible(st, i))
			send_slot(st, i);
}

enum MHD_Result stream_open(struct http *h, struct req *r, const char *last_id)
{
	struct stream *st = calloc(1, sizeof(*st));
	if (!st)
		return MHD_NO;
	st->h = h;
	st->conn = r->conn;
	st->role = r->who.role;
	snprintf(st->worker, sizeof(st->worker), "%s", r->who.worker);
	snprintf(st->session, sizeof(st->session), "%s", r->s->token);
	struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader,
	                                                              st, on_free);
	if (!resp) {
		free(st);
		return MHD_NO;
	}
	st->next = h->streams;
	h->streams = st;
	MHD_add_response_header(resp, "Content-Type", "text/event-stream; charset=utf-8");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	/* A reconnecting browser says where it was: replay what it missed. */
	char *end;
	unsigned long long last = last_id ? strtoull(last_id, &end, 10) : 0;
	push(st, "retry: 2000\n\n", 13);
	if (last_id && *last_id && !*end && last + 1 < h->next_id) {
		uint64_t oldest = h->next_id > STREAM_RING ? h->next_id - STREAM_RING : 1;
		if (last + 1 < oldest) {
			push(st, "event: reset\ndata: {}\n\n", 23);
		} else {
			for (uint64_t id = last + 1; id < h->next_id; id++)
				if (visible(st, id % STREAM_RING))
					send_slot(st, id % STREAM_RING);
		}
	}
	enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

void streams_keepalive(struct http *h)
{
	for (struct stream *st = h->streams; st; st = st->next)
		push(st, ": keep-alive\n\n", 14);
}

void streams_free(struct http *h)
{
	/* Parked connections are resumed and told the stream ended; their
	 * responses free the streams. */
	for (struct stream *st = h->streams; st; st = st->next) {
		st->dead = true;
		wake(st);
	}
}

/* ---- what the daemon tells the consoles ---- */

void http_alarm_changed(struct manager *m, const struct alarm *a)
{
	if (m->http && m->http->streams)
		emit(m->http, "alarm", alarm_json(m, a), a->id, a->alerted, a->test, NULL);
}

void http_timeline(struct manager *m, int64_t alarm, int64_t at, const char *what,
                   const char *actor, const char *detail)
{
	struct http *h = m->http;
	if (!h || !h->streams)
		return;
	struct alarm *a = alarm_get(m, alarm);
	/* A mass incident's members come and go by thousands: its board
	 * summary counts them; the rows are in alarm show. */
	if (a && a->incident && (!strcmp(what, "joined") || !strcmp(what, "restored")))
		return;
	emit(h, "timeline", json_pack("{s:I, s:{s:o, s:s, s:o, s:o}}", "alarm", (json_int_t)alarm,
	                              "entry", "at", json_time_or_null(at), "what", what,
	                              "actor", json_str_or_null(actor),
	                              "detail", json_str_or_null(detail)),
	     alarm, a ? a->alerted : NULL, a && a->test, NULL);
}

void http_status_changed(struct manager *m)
{
	struct http *h = m->http;
	if (!h || !h->streams)
		return;
	const char *err;
	bool ok = m->store ? store_ok(m, &err) : true;
	size_t incidents = 0;
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);)
		incidents += ((struct alarm *)v)->incident != NULL;
	emit(h, "status", json_pack("{s:{s:b}, s:{s:b, s:o}, s:I}", "mqtt", "connected",
	                            m->mqtt_connected, "store", "ok", ok,
	                            "error", json_str_or_null(ok ? NULL : err),
	                            "incidents", (json_int_t)incidents), 0, NULL, false, NULL);
}

void http_device_test(struct manager *m, const char *device, const char *stage, int64_t alarm,
                      const char *detail)
{
	struct http *h = m->http;
	if (!h)
		return;
	const char *k;
	void *v;
	char at[TC_TIME_STRLEN];
	tc_time_format(tc_now_ms(), at, sizeof(at));
	for (size_t it = 0; map_next(&h->sessions, &it, &k, &v);) {
		struct session *s = v;
		if (strcmp(s->test_device, device))
			continue;
		emit(h, "test", json_pack("{s:s, s:s, s:s, s:o, s:o}", "stage", stage, "device", device,
		                          "at", at, "alarm", alarm > 0 ? json_integer(alarm) : json_null(),
		                          "detail", json_str_or_null(detail)),
		     0, NULL, false, s->token);
		if (!strcmp(stage, "alerted")) {
			/* the test is over */
			struct device *d = device_get(m, device);
			if (d)
				d->testing = false;
			s->test_device[0] = '\0';
		}
	}
}
