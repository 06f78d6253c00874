/* One device message: decoded, checked for duplicates, applied to the
 * alarms, queued for the store, and receipted after the commit (SPEC 2.2).
 *
 * libmosquitto acknowledged the QoS 1 message before we saw it, so the
 * receipt is the only promise that counts: "stored" goes out after COMMIT,
 * and a device that hears nothing resends with the same id. Duplicates are
 * found among committed events (the unique index) and among those still
 * waiting for their commit (m->pending). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define REJECT_KEEP_BYTES 1024   /* how much of a rejected payload is kept */
#define TOPIC_ID_MAX      256    /* a bad device id still gets a receipt up to this length */

struct receipt {
	char device[TC_DEVICE_ID_MAX + 1];
	char id_key[2 * TC_EVENT_ID_MAX + 3];
	char *pending_key;           /* NULL for a duplicate */
	json_t *id;
	json_t *payload;             /* for `events --follow`; NULL for a duplicate */
	const char *status;
	int64_t alarm;               /* -1: none */
	int64_t seq, received_at;
	enum tc_type type;
	bool known;
	bool test_watch;             /* an installer runs `device test` on this device */
	bool silent;                 /* from a source: nobody listens for a receipt */
};

/* Queue a receipt in the outbox; -1 when it could not be (shed at the bound). */
static int send_receipt(struct manager *m, const char *device, json_t *id, const char *status,
                        int64_t alarm, const char *error)
{
	char topic[512];
	int rc = -1;
	if (!m->outbox || mqtt_topic(m, topic, sizeof(topic), "dev/%s/receipt", device) < 0)
		return -1;
	json_t *j = json_pack("{s:O?, s:s}", "id", id, "status", status);
	if (error)
		json_object_set_new(j, "error", json_string(error));
	else
		json_object_set_new(j, "alarm", alarm >= 0 ? json_integer(alarm) : json_null());
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (s)
		rc = outbox_publish(m, OB_RECEIPT, topic, s, strlen(s), false);
	free(s);
	return rc;
}

static void receipt_committed(struct manager *m, void *data, bool ok, const char *error)
{
	struct receipt *r = data;
	char why[300];
	if (r->pending_key)
		map_del(&m->pending, r->pending_key);
	if (!ok) {
		/* SPEC 7: a write the database refuses is never reported as done.
		 * The alarm it opened escalates from memory all the same. */
		snprintf(why, sizeof(why), "not stored: the database refused it: %s", error);
		log_full(LOG_ERR, r->device, r->alarm > 0 ? r->alarm : 0, NULL,
		         "device %s: event %s %s", r->device, r->id_key, why);
		m->count.refused++;
		if (r->test_watch)
			control_device_test(m, r->device, "not_stored", r->alarm, why);
		if (!r->silent)
			send_receipt(m, r->device, r->id, "rejected", -1, why);
		goto out;
	}
	if (r->pending_key)
		m->count.stored++;
	if (r->pending_key && control_has_followers(m)) {
		json_t *ev = json_pack("{s:I, s:s, s:O, s:s, s:o, s:o, s:b, s:O}",
		                       "seq", (json_int_t)r->seq, "device", r->device, "id", r->id,
		                       "type", tc_type_name(r->type),
		                       "received_at", json_time_or_null(r->received_at),
		                       "alarm", r->alarm >= 0 ? json_integer(r->alarm) : json_null(),
		                       "known", r->known, "payload", r->payload);
		control_event_stored(m, ev);
		json_decref(ev);
	}
	if (r->test_watch)
		control_device_test(m, r->device, "stored", r->alarm, NULL);
	int sent = r->silent ? -1 : send_receipt(m, r->device, r->id, r->status, r->alarm, NULL);
	if (r->test_watch) {
		/* Only a receipt that is on its way (queued in order for the
		 * broker) counts as sent. */
		if (sent == 0)
			control_device_test(m, r->device, "receipt_sent", r->alarm, NULL);
		else
			control_device_test(m, r->device, "receipt_not_sent", r->alarm,
			                    r->silent ? "a source's device takes no receipt"
			                              : "the outbox's receipt queue is full");
		control_device_test(m, r->device, "alerted", r->alarm, "installer (on-duty workers are not alerted)");
	}
out:
	free(r->pending_key);
	json_decref(r->id);
	json_decref(r->payload);
	free(r);
}

struct rejection {
	char *device, *error;
	json_t *id;
};

static void rejection_committed(struct manager *m, void *data, bool ok, const char *error)
{
	struct rejection *rj = data;
	/* The rejection is the answer whether or not its record was kept. */
	if (!ok)
		log_error("device %s: the record of a rejected event was refused: %s", rj->device, error);
	send_receipt(m, rj->device, rj->id, "rejected", -1, rj->error);
	json_decref(rj->id);
	free(rj);
}

static void reject(struct manager *m, const char *device, size_t device_len, bool device_ok,
                   json_t *id, const void *payload, size_t len, const char *error, bool receipt)
{
	char clean[TC_DEVICE_ID_MAX + 8], topic_dev[TOPIC_ID_MAX + 1];
	tc_sanitize(device, device_len, clean, sizeof(clean));
	m->count.rejected++;
	log_full(LOG_WARNING, clean, 0, NULL, "device %s: rejected event: %s", clean, error);

	char *idtext = id ? json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	char topic[512] = "";
	uint64_t mark = store_mark(m);
	mqtt_topic(m, topic, sizeof(topic), "dev/%.*s/event", (int)device_len, device);
	store_write(m, ST_REJECT_INSERT, "issssbi", tc_now_ms(), topic,
	            device_ok ? clean : NULL, idtext, error, payload,
	            len > REJECT_KEEP_BYTES ? (size_t)REJECT_KEEP_BYTES : len, (int64_t)len);
	free(idtext);

	/* The receipt goes to the topic the device used, even when its id is
	 * malformed, as long as that is a topic we can publish to; once the
	 * rejection is on disk, like every receipt (SPEC 7). */
	if (receipt && device_len <= TOPIC_ID_MAX && !memchr(device, '\0', device_len)) {
		struct rejection *rj = calloc(1, sizeof(*rj) + device_len + 1 + strlen(error) + 1);
		if (!rj) {
			log_error("device %s: out of memory queueing a rejected receipt", clean);
			return;
		}
		rj->device = (char *)(rj + 1);
		memcpy(rj->device, device, device_len);
		rj->error = rj->device + device_len + 1;
		strcpy(rj->error, error);
		rj->id = json_incref(id);
		store_after_commit(m, mark, rejection_committed, rj);
	}
	(void)topic_dev;
}

static bool has_open(void *ctx, const char *key)
{
	struct manager *m = ctx;
	return map_get(&m->open_by_key, key) != NULL;
}

/* The value stored in m->pending: alarm id + 2, so that "no alarm" (-1) is
 * not a NULL pointer. */
static void *pending_value(int64_t alarm)
{
	return (void *)(intptr_t)(alarm + 2);
}

static struct receipt *receipt_new(const char *device, json_t *id, const char *status,
                                   int64_t alarm)
{
	struct receipt *r = calloc(1, sizeof(*r));
	if (!r) {
		log_error("device %s: out of memory queueing a receipt", device);
		return NULL;
	}
	snprintf(r->device, sizeof(r->device), "%s", device);
	r->id = json_incref(id);
	r->status = status;
	r->alarm = alarm;
	return r;
}

struct bucket {
	double tokens;
	int64_t at, logged_at;       /* boottime ms */
	uint64_t dropped;
};

#define BUCKETS_MAX   200000   /* flood buckets kept; past it, idle ones are dropped */
#define UNMAPPED_MAX  50000    /* unmapped addresses remembered for the once-a-minute rule */
#define LONG_ID_KEY   "\001long ids"   /* one bucket for every topic id over 64 bytes */

/* Drop the buckets that are full again (their device has been quiet long
 * enough to send a whole burst): they would be created the same. */
static void buckets_prune(struct manager *m, int64_t now)
{
	const char *k;
	void *v;
	char **idle = calloc(m->buckets.len, sizeof(*idle));
	size_t n = 0;
	for (size_t it = 0; idle && map_next(&m->buckets, &it, &k, &v);) {
		struct bucket *b = v;
		if (b->tokens + (double)(now - b->at) * m->cfg->device_rate / 1000.0 >= m->cfg->device_burst)
			idle[n++] = strdup(k);
	}
	for (size_t i = 0; i < n; i++) {
		free(idle[i] ? map_del(&m->buckets, idle[i]) : NULL);
		free(idle[i]);
	}
	free(idle);
	if (m->buckets.len > BUCKETS_MAX) {
		/* Still full of busy ids: start afresh rather than grow. */
		for (size_t it = 0; map_next(&m->buckets, &it, NULL, &v);)
			free(v);
		map_free(&m->buckets);
	}
}

/* One device (or one source topic) may not crowd out the others (SPEC 7:
 * floods): a token bucket per key, checked before any decoding. Over the
 * limit, the message is dropped unreceipted (a real device resends) and
 * logged once in a while. Ids too long to be a device share one bucket, so
 * that random long ids cannot each bring a fresh burst. */
static bool within_rate(struct manager *m, const char *device, size_t len)
{
	/* Elapsed time: a step of the wall clock must not drain every bucket. */
	int64_t now = tc_mono_ms();
	char key[TC_DEVICE_ID_MAX + 1];
	if (len > TC_DEVICE_ID_MAX) {
		snprintf(key, sizeof(key), "%s", LONG_ID_KEY);
		len = strlen(key);
	} else {
		memcpy(key, device, len);
		key[len] = '\0';
	}
	struct bucket *b = map_get(&m->buckets, key);
	if (!b) {
		if (m->buckets.len >= BUCKETS_MAX)
			buckets_prune(m, now);
		b = calloc(1, sizeof(*b));
		if (!b || map_put(&m->buckets, key, b) < 0) {
			free(b);
			return true;
		}
		b->tokens = m->cfg->device_burst;
		b->at = now;
	}
	b->tokens += (double)(now - b->at) * m->cfg->device_rate / 1000.0;
	if (b->tokens > m->cfg->device_burst)
		b->tokens = m->cfg->device_burst;
	b->at = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return true;
	}
	b->dropped++;
	m->count.flood_dropped++;
	if (now - b->logged_at > 10000) {
		char clean[TC_DEVICE_ID_MAX + 8];
		log_full(LOG_WARNING, key[0] == '\001' ? NULL : key, 0, NULL, "%s %s: more than %d "
		         "events a second: dropped %llu so far, without receipts",
		         key[0] == '\001' ? "devices with" : "device",
		         tc_sanitize(key[0] == '\001' ? "ids over 64 bytes" : key, strlen(key), clean,
		                     sizeof(clean)), m->cfg->device_rate,
		         (unsigned long long)b->dropped);
		b->logged_at = now;
	}
	return false;
}

/* 0: stored or a duplicate (its answer waits for the commit); -1: dropped,
 * rejected or not checkable. */
static int ingest(struct manager *m, const char *device_raw, size_t device_len,
                  const void *payload, size_t len, bool receipt)
{
	char err[256], device[TC_DEVICE_ID_MAX + 1];
	struct tc_event ev;
	json_t *id = NULL;
	int64_t now = tc_now_ms();

	m->count.received++;
	if (receipt && !within_rate(m, device_raw, device_len))
		return -1;
	bool device_ok = tc_device_id_valid(device_raw, device_len);
	if (tc_event_decode(payload, len, m->cfg->mqtt.max_payload, &ev, &id, err, sizeof(err)) < 0) {
		reject(m, device_raw, device_len, device_ok, id, payload, len, err, receipt);
		json_decref(id);
		return -1;
	}
	if (!device_ok) {
		char clean[TC_DEVICE_ID_MAX + 8];
		snprintf(err, sizeof(err), "invalid device id \"%s\" in the topic: 1-%d of [A-Za-z0-9._-]",
		         tc_sanitize(device_raw, device_len, clean, sizeof(clean)), TC_DEVICE_ID_MAX);
		reject(m, device_raw, device_len, false, id, payload, len, err, receipt);
		json_decref(id);
		tc_event_clear(&ev);
		return -1;
	}
	json_decref(id);
	memcpy(device, device_raw, device_len);
	device[device_len] = '\0';

	/* A duplicate: answered from what is stored (or about to be). */
	char pkey[TC_DEVICE_ID_MAX + sizeof(ev.id_key) + 2];
	snprintf(pkey, sizeof(pkey), "%s\n%s", device, ev.id_key);
	int64_t alarm = -1;
	void *pv = map_get(&m->pending, pkey);
	int found = pv ? 1 : store_event_lookup(m, device, ev.id_key, &alarm);
	if (pv)
		alarm = (int64_t)(intptr_t)pv - 2;
	if (found != 0) {
		if (found < 0) {
			/* Cannot tell: no receipt, the device will ask again. */
			log_full(LOG_ERR, device, 0, NULL, "device %s: cannot check event %s for a duplicate",
			         device, ev.id_key);
		} else {
			m->count.duplicate++;
			struct receipt *r = receipt_new(device, ev.id, "duplicate", alarm);
			if (r) {
				r->silent = !receipt;
				store_after_commit(m, store_mark(m), receipt_committed, r);
			}
		}
		tc_event_clear(&ev);
		store_maybe_flush(m);
		return found < 0 ? -1 : 0;
	}

	struct device *dev = device_get(m, device);
	struct alarm_decision d;
	alarm_decide(m->cfg, device, dev != NULL, dev && dev->testing, &ev, has_open, m, &d);
	bool watched = dev && dev->testing && (d.action == ACT_OPEN || d.action == ACT_JOIN);
	if (watched)
		control_device_test(m, device, "received", -1, tc_type_name(ev.type));
	alarm = alarm_apply(m, device, &ev, &d);
	if (dev) {
		dev->last_seen = now;
		if (ev.battery >= 0)
			dev->battery = ev.battery;
		if (ev.has_rssi)
			dev->rssi = ev.rssi;
		supervise_heard(m, dev);
		if (ev.battery >= 0)
			supervise_battery(m, dev, ev.battery);
	} else if (m->cfg->unknown_devices == UNKNOWN_LOG || d.action == ACT_NONE) {
		log_full(LOG_NOTICE, device, 0, NULL, "device %s: %s from an unregistered device (stored)",
		         device, tc_type_name(ev.type));
	}

	uint64_t mark = store_mark(m);
	int64_t seq = seq_take(m, &m->event_seqs);
	/* The payload as the device sent it (checked UTF-8 JSON), not re-encoded. */
	store_write(m, ST_EVENT_INSERT, "isssininndx", seq, device, ev.id_key, tc_type_name(ev.type),
	            now, ev.has_ts ? ev.ts_ms : (int64_t)-1, (int64_t)(dev != NULL), alarm,
	            (int64_t)ev.battery, ev.has_rssi ? (double)ev.rssi : (double)NAN, payload, len);
	struct receipt *r = receipt_new(device, ev.id, "stored", alarm);
	if (r) {
		r->test_watch = watched;
		r->silent = !receipt;
		snprintf(r->id_key, sizeof(r->id_key), "%s", ev.id_key);
	}
	if (r && (r->pending_key = strdup(pkey)) &&
	    map_put(&m->pending, pkey, pending_value(alarm)) == 0) {
		r->payload = json_incref(ev.root);
		r->seq = seq;
		r->received_at = now;
		r->type = ev.type;
		r->known = dev != NULL;
		store_after_commit(m, mark, receipt_committed, r);
	} else if (r) {
		/* Stored all the same; only the receipt is lost, and the resend
		 * will be answered "duplicate". */
		log_error("device %s: out of memory tracking event %s", device, ev.id_key);
		free(r->pending_key);
		json_decref(r->id);
		free(r);
	}
	tc_event_clear(&ev);
	store_maybe_flush(m);
	return 0;
}

void ingest_message(struct manager *m, const char *device, size_t device_len,
                    const void *payload, size_t len)
{
	ingest(m, device, device_len, payload, len, true);
}

int ingest_event(struct manager *m, const char *device, const json_t *event)
{
	char *text = json_dumps(event, JSON_COMPACT);
	int rc = text ? ingest(m, device, strlen(device), text, strlen(text), false) : -1;
	free(text);
	return rc;
}

/* A message on a source's topic (docs/SOURCES.md): its events go the way of
 * any device event when the address belongs to a registered device; anything
 * else is kept as "unmapped" for the installers, never dropped. */
void ingest_source(struct manager *m, const struct tc_source *src, const char *topic,
                   const void *payload, size_t len)
{
	char address[TC_ADDRESS_MAX], err[256], clean[128], bucket[TC_DEVICE_ID_MAX + 1];
	json_t *events = NULL;
	int64_t now = tc_now_ms();
	address[0] = '\0';
	/* A source's topic names its device (zigbee2mqtt/<name>, .../device/<eui>/...):
	 * the same flood limit as a device's, before any decoding. */
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a: LoRaWAN topics outgrow a device id */
	for (const char *c = topic; *c; c++)
		h = (h ^ (unsigned char)*c) * 1099511628211ULL;
	snprintf(bucket, sizeof(bucket), "\002%.30s %016llx", src->name, (unsigned long long)h);
	if (!within_rate(m, bucket, strlen(bucket)))
		return;
	int rc = tc_source_decode(src, topic, payload, len, now, address, sizeof(address), &events,
	                          err, sizeof(err));
	if (rc == 1)
		return;  /* not about a device (bridge state, commands, joins) */
	struct device *d = rc == 0 ? device_by_address(m, src->name, address) : NULL;
	const char *reason = rc < 0 ? err
	                     : !d ? "no device registered for this address"
	                     : json_array_size(events) == 0 ? "no rule matched" : NULL;
	if (reason && !d && rc == 0) {
		/* Unregistered addresses (every lamp on a zigbee network) are kept
		 * and listed, but one message per address a minute is enough. */
		char key[TC_ADDRESS_MAX + 80];
		snprintf(key, sizeof(key), "%s\n%s", src->name, address);
		void *last = map_get(&m->unmapped_seen, key);
		if (last && now - (int64_t)(intptr_t)last < 60000)
			return;
		if (!last && m->unmapped_seen.len >= UNMAPPED_MAX)
			map_free(&m->unmapped_seen);   /* a minute's duplicates more, at worst */
		map_put(&m->unmapped_seen, key, (void *)(intptr_t)now);
	}
	if (reason) {
		m->count.received++;
		log_full(LOG_NOTICE, NULL, 0, NULL, "source %s: %s %s: %s", src->name,
		         rc < 0 ? "message on" : "address",
		         tc_sanitize(rc < 0 ? topic : address, strlen(rc < 0 ? topic : address), clean,
		                     sizeof(clean)), reason);
		store_write(m, ST_UNMAPPED_INSERT, "isssssb", now, src->name, rc < 0 ? NULL : address,
		            d ? d->id : NULL, topic, reason, payload,
		            len > REJECT_KEEP_BYTES ? (size_t)REJECT_KEEP_BYTES : len);
		json_decref(events);
		store_maybe_flush(m);
		return;
	}
	size_t i;
	json_t *ev;
	json_array_foreach(events, i, ev) {
		char *text = json_dumps(ev, JSON_COMPACT);
		if (text)
			ingest(m, d->id, strlen(d->id), text, strlen(text), false);
		free(text);
	}
	json_decref(events);
}
