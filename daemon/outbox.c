/* The gateway's own outbox (SPEC 4.1): every outbound MQTT message and every
 * webhook delivery waits here, in order of precedence, and only a bounded
 * number is handed on at a time.
 *
 * Why: libmosquitto walks its list of unacknowledged messages on every QoS 1
 * publish and every PUBACK, and mosquitto_loop_read() reads as many packets
 * as that list is long. With 20,000 receipts handed to it at once, each
 * publish cost milliseconds, one read call ran for minutes, and an urgent
 * alert queued behind them all. Here at most OB_WINDOW publishes (plus a
 * reserve for urgent alerts) are unacknowledged; the next go out as PUBACKs
 * come back, most urgent first. While the broker is away nothing is handed
 * to libmosquitto: alerts and receipts wait here in order, retained state
 * waits coalesced (one message per topic) and is republished on connect. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "outq.h"
#include "telecare/timefmt.h"
#include "webhook.h"

/* Unacknowledged publishes at most. Measured (docs/PERFORMANCE.md, burst):
 * beyond a few hundred, libmosquitto's list walks cost more than the extra
 * pipelining gains; far below, the broker's round trip limits throughput. */
#define OB_WINDOW        256
#define OB_URGENT_EXTRA  64      /* urgent and high alerts may exceed the window by this */
#define HOOKS_MAX        16      /* webhook deliveries in flight at once */
#define MID_SLOTS        65536   /* message ids are 16 bits */

struct hook {
	char *url;
	webhook_done_fn done;
	webhook_try_fn tried;
	void *userdata;
};

struct outbox {
	struct outq q;                       /* MQTT */
	struct outq hooks;                   /* webhook deliveries waiting for a slot */
	struct outq_msg **inflight;          /* by message id: handed to libmosquitto */
	size_t n_inflight, max_inflight;
	size_t hooks_running;
	uint64_t handed, acked, failed;
	int64_t logged_shed_at;
};

static size_t limits_mqtt(const struct manager *m, size_t out[OB__COUNT])
{
	for (int i = 0; i < OB__COUNT; i++)
		out[i] = 1000000;
	out[OB_RESULT] = 100000;
	out[OB_RECEIPT] = m->cfg->receipt_queue;
	return OB__COUNT;
}

void outbox_limits(struct manager *m)
{
	if (m->outbox)
		m->outbox->q.c[OB_RECEIPT].max = m->cfg->receipt_queue;
}

int outbox_init(struct manager *m)
{
	struct outbox *ob = calloc(1, sizeof(*ob));
	size_t max[OB__COUNT];
	if (!ob || !(ob->inflight = calloc(MID_SLOTS, sizeof(*ob->inflight)))) {
		free(ob);
		return -ENOMEM;
	}
	limits_mqtt(m, max);
	outq_init(&ob->q, max);
	for (int i = 0; i < OB__COUNT; i++)
		max[i] = 100000;
	outq_init(&ob->hooks, max);
	m->outbox = ob;
	return 0;
}

static void hook_msg_free(struct outq_msg *msg, bool cancelled)
{
	struct hook *h = msg->data;
	if (h) {
		if (cancelled && h->done)
			h->done(h->userdata, false, 0, "cancelled: telecared is stopping");
		free(h->url);
		free(h);
	}
	outq_msg_free(msg);
}

void outbox_free(struct manager *m)
{
	struct outbox *ob = m->outbox;
	if (!ob)
		return;
	struct outq_msg *msg;
	while ((msg = outq_pop(&ob->hooks, OB__COUNT - 1)))
		hook_msg_free(msg, true);
	outq_free(&ob->hooks);
	outq_free(&ob->q);
	for (size_t i = 0; i < MID_SLOTS; i++)
		outq_msg_free(ob->inflight[i]);
	free(ob->inflight);
	free(ob);
	m->outbox = NULL;
}

/* At a class's bound the newest message is dropped (SPEC 2.2: a device that
 * hears no receipt resends), counted, and logged every 10 s. */
static void shed(struct manager *m, enum ob_class cls, const char *topic)
{
	struct outbox *ob = m->outbox;
	int64_t now = tc_now_ms();
	if (cls == OB_RECEIPT)
		m->count.receipts_shed++;
	if (now - ob->logged_shed_at >= 10000) {
		log_warning("outbox: the %s queue is full (%zu): dropping %s (receipts shed so far: %llu)",
		            outq_class_name(cls), ob->q.c[cls].max, topic,
		            (unsigned long long)m->count.receipts_shed);
		ob->logged_shed_at = now;
	}
}

static int enqueue(struct manager *m, struct outq_msg *msg)
{
	if (!msg) {
		log_error("outbox: out of memory queueing a message");
		return -1;
	}
	enum ob_class cls = msg->cls;
	char topic[128];
	tc_sanitize(msg->topic, strlen(msg->topic), topic, sizeof(topic));  /* the push may free it */
	int rc = outq_push(&m->outbox->q, msg) < 0 ? -1 : 0;
	if (rc < 0)
		shed(m, cls, topic);
	outbox_pump(m);
	return rc;
}

int outbox_publish(struct manager *m, enum ob_class cls, const char *topic, const char *payload,
                   size_t len, bool retain)
{
	return enqueue(m, outq_msg_new(cls, topic, payload, len, retain, 0, NULL));
}

void outbox_alert(struct manager *m, enum ob_class cls, const char *topic, const char *payload,
                  size_t len, int64_t alarm, const char *worker)
{
	struct outq_msg *msg = outq_msg_new(cls, topic, payload, len, false, alarm, worker);
	if (msg)
		msg->away = !m->mqtt_connected;
	enqueue(m, msg);
}

void outbox_pump(struct manager *m)
{
	struct outbox *ob = m->outbox;
	if (!ob || !m->mqtt_connected)
		return;
	for (;;) {
		/* Urgent and high alerts may use a reserve beyond the window, so
		 * that a full window of receipts never holds a fall back. */
		enum ob_class last = ob->n_inflight < OB_WINDOW ? OB__COUNT - 1
		                     : ob->n_inflight < OB_WINDOW + OB_URGENT_EXTRA ? OB_HIGH
		                     : (enum ob_class)-1;
		if ((int)last < 0)
			return;
		struct outq_msg *msg = outq_pop(&ob->q, last);
		if (!msg)
			return;
		int mid = 0;
		int rc = mqtt_publish(m, msg->topic, msg->payload, msg->len, msg->retain, &mid);
		if (rc < 0 || mid <= 0 || mid >= MID_SLOTS) {
			ob->failed++;
			outq_msg_free(msg);
			if (rc == -ENOTCONN)
				return;
			continue;
		}
		ob->handed++;
		if (ob->inflight[mid]) {
			/* Cannot happen with 16-bit ids and a window of hundreds;
			 * if it did, forget the older one rather than leak it. */
			outq_msg_free(ob->inflight[mid]);
			ob->n_inflight--;
		}
		ob->inflight[mid] = msg;
		if (++ob->n_inflight > ob->max_inflight)
			ob->max_inflight = ob->n_inflight;
	}
}

void outbox_puback(struct manager *m, int mid)
{
	struct outbox *ob = m->outbox;
	if (!ob || mid <= 0 || mid >= MID_SLOTS || !ob->inflight[mid])
		return;   /* presence and the board check are published directly */
	struct outq_msg *msg = ob->inflight[mid];
	ob->inflight[mid] = NULL;
	ob->n_inflight--;
	ob->acked++;
	if (msg->alarm && msg->away) {
		/* The timeline said "queued" while the broker was away; now it has it. */
		char detail[160];
		snprintf(detail, sizeof(detail), "worker %s via mqtt (queued while the broker was away)",
		         msg->worker ? msg->worker : "?");
		alarm_timeline(m, msg->alarm, tc_now_ms(), TL_ALERTED, "telecared", detail);
	}
	outq_msg_free(msg);
	outbox_pump(m);
}

size_t outbox_queued(const struct manager *m)
{
	return m->outbox ? m->outbox->q.len : 0;
}

size_t outbox_inflight(const struct manager *m)
{
	return m->outbox ? m->outbox->n_inflight : 0;
}

/* ---- webhooks: at most HOOKS_MAX at once, the rest wait in order ---- */

static void hooks_pump(struct manager *m);

struct running {
	struct manager *m;
	struct hook *h;
};

static void hook_done(void *userdata, bool ok, int attempts, const char *detail)
{
	struct running *r = userdata;
	struct manager *m = r->m;
	if (m->outbox && m->outbox->hooks_running)
		m->outbox->hooks_running--;
	if (r->h->done)
		r->h->done(r->h->userdata, ok, attempts, detail);
	free(r->h->url);
	free(r->h);
	free(r);
	if (m->outbox)
		hooks_pump(m);
}

static void hook_tried(void *userdata, int attempt, const char *detail, bool retry)
{
	struct running *r = userdata;
	if (r->h->tried)
		r->h->tried(r->h->userdata, attempt, detail, retry);
}

static void hooks_pump(struct manager *m)
{
	struct outbox *ob = m->outbox;
	webhooks_on_try(m->webhooks, hook_tried);
	while (ob->hooks_running < HOOKS_MAX) {
		struct outq_msg *msg = outq_pop(&ob->hooks, OB__COUNT - 1);
		if (!msg)
			return;
		struct hook *h = msg->data;
		msg->data = NULL;
		struct running *r = calloc(1, sizeof(*r));
		int rc = -ENOMEM;
		if (r) {
			r->m = m;
			r->h = h;
			/* The body is copied by webhook_post. */
			char *body = strndup(msg->payload, msg->len);
			rc = body ? webhook_post(m->webhooks, h->url, body, hook_done, r) : -ENOMEM;
			free(body);
		}
		outq_msg_free(msg);
		if (rc < 0) {
			free(r);
			if (h->done)
				h->done(h->userdata, false, 0, "cannot start the request");
			free(h->url);
			free(h);
			continue;
		}
		ob->hooks_running++;
	}
}

void outbox_webhook(struct manager *m, enum ob_class cls, const char *url, const char *body,
                    webhook_done_fn done, webhook_try_fn tried, void *userdata)
{
	struct outbox *ob = m->outbox;
	struct hook *h = calloc(1, sizeof(*h));
	struct outq_msg *msg = h ? outq_msg_new(cls, "webhook", body, strlen(body), false, 0, NULL)
	                         : NULL;
	if (!msg || !m->webhooks || !(h->url = strdup(url))) {
		outq_msg_free(msg);
		free(h);
		if (done)
			done(userdata, false, 0, m->webhooks ? "out of memory" : "webhooks are disabled");
		return;
	}
	h->done = done;
	h->tried = tried;
	h->userdata = userdata;
	msg->data = h;
	if (outq_push(&ob->hooks, msg) < 0) {
		/* The push freed the message, not the delivery: */
		free(h->url);
		free(h);
		if (done)
			done(userdata, false, 0, "too many webhook deliveries waiting");
		return;
	}
	hooks_pump(m);
}

json_t *outbox_status(const struct manager *m)
{
	const struct outbox *ob = m->outbox;
	json_t *queued = json_object(), *shedj = json_object(), *coal = json_object();
	for (int i = 0; i < OB__COUNT; i++) {
		json_object_set_new(queued, outq_class_name(i), json_integer((json_int_t)ob->q.c[i].len));
		json_object_set_new(shedj, outq_class_name(i), json_integer((json_int_t)ob->q.c[i].shed));
		json_object_set_new(coal, outq_class_name(i),
		                    json_integer((json_int_t)ob->q.c[i].coalesced));
	}
	return json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I}}",
	                 "queued", queued, "shed", shedj, "coalesced", coal,
	                 "receipt_limit", (json_int_t)ob->q.c[OB_RECEIPT].max,
	                 "inflight", (json_int_t)ob->n_inflight,
	                 "inflight_max_seen", (json_int_t)ob->max_inflight,
	                 "window", (json_int_t)OB_WINDOW,
	                 "handed", (json_int_t)ob->handed, "acked", (json_int_t)ob->acked,
	                 "failed", (json_int_t)ob->failed,
	                 "webhooks", "queued", (json_int_t)ob->hooks.len,
	                 "running", (json_int_t)ob->hooks_running, "max", (json_int_t)HOOKS_MAX);
}
