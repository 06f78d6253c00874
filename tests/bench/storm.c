/* tc-loadgen storm and board (issue 9): mass events, bursts, the board.
 *
 * storm: N events (--storm N) of one type from devices S000000... (one
 * event per device unless --storm-devices says fewer), spread evenly over
 * --storm-seconds from --start-at (a CLOCK_MONOTONIC time the runner chose,
 * so it can kill a daemon or a broker at a known moment of the storm), or
 * with --storm-seconds 0 as fast as the broker acknowledges them (at most
 * --window unacknowledged publishes per connection: a burst). Meanwhile
 * --falls K registered pendants each send one `fall`, spread over
 * [--fall-from, --fall-to] seconds of the storm, on a connection of their
 * own (so a fall never waits in this tool's queue behind the storm). The
 * tool reads the receipts, and with --alerts every worker's alerts
 * ({prefix}/worker/+/alert), each classified: about a mass incident (an
 * alarm on "telecared" whose summary has "incident"), about one of the
 * falls, or other. A fall's latency is its publish -> the first alert about
 * its alarm, both taken here on CLOCK_MONOTONIC. With --resend S an event
 * without a receipt after S seconds is sent again with the same id, as a
 * real device would (never, by default). With --relay the same load goes to
 * bench/dev/{id}/event and is read back from bench/dev/+/event: the broker
 * alone, the ceiling for a burst.
 *
 * It listens for --observe seconds from the start whatever happens, then at
 * most --drain seconds more for what is still owed (receipts; alerts of
 * falls), and prints one JSON object: counts, latencies, and every alert's
 * time (ms from the start), by worker and kind, so the runner can count any
 * window (the first minute, the minute after a restart).
 *
 * board: subscribes to {prefix}/alarms/+ and prints what the broker holds
 * retained there (the dispatch board, SPEC 2.6): every alarm id once, and
 * the incidents' class and counts. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <mosquitto.h>

#include "lg.h"

#define MAX_PUBS     16
#define MAX_WORKERS  64
#define MAX_ALERTS   2000000   /* alert records kept (all are counted) */

static struct {
	int port;
	const char *prefix;
	unsigned n, devices, dev_base;
	const char *dev_prefix, *type;
	double seconds;
	int pubs, window;
	unsigned falls, fall_base;
	const char *fall_prefix;
	double fall_from, fall_to;
	uint64_t start_at;
	double observe, drain, resend;
	bool relay, alerts, probe;
	const char *probe_device;
} o = {
	.port = 1883, .prefix = "telecare", .dev_prefix = "d", .type = "power_loss",
	.seconds = 5, .pubs = 2, .window = 256, .fall_prefix = "d", .fall_from = -1, .fall_to = -1,
	.observe = 10, .drain = 30, .probe = true, .probe_device = "d099999",
};

static char run_id[24];
static size_t run_id_len;
static uint64_t t_start;
static atomic_bool stop_all;

/* Storm events, by sequence number 1..n. */
static _Atomic uint64_t *first_sent, *recv_at;
static uint64_t *last_sent;             /* owned by the event's connection */
static _Atomic int64_t *recv_alarm;     /* the receipt's "alarm", -1 for null */
static _Atomic uint8_t *n_rcpt;         /* receipts heard for the event (saturating) */
static _Atomic uint8_t *first_status;   /* of its first receipt: 1 stored, 2 duplicate, 3 other */
static uint8_t *times_sent;             /* owned by the event's connection (saturating) */
#define RCPT_KEPT 4                     /* the first receipts of an event, for the report */
static _Atomic uint64_t (*rcpt_at)[RCPT_KEPT];
static _Atomic uint8_t (*rcpt_status)[RCPT_KEPT];
static _Atomic uint64_t *resent_at;     /* the last resend */
static atomic_ullong n_first_sent, n_sends, n_resent, n_answered;
static atomic_ullong st_stored, st_duplicate, st_rejected, st_other, n_unmatched;
static _Atomic uint64_t last_recv, last_first_send, last_puback;
static atomic_ullong late_max_ns;

/* Falls 0..falls-1. */
static _Atomic uint64_t *fall_sent, *fall_receipt, *fall_alert;
static _Atomic int64_t *fall_alarm;
static atomic_ullong n_fall_alerted, n_fall_receipted, n_fall_resent;

/* Alerts. */
struct alert_rec {
	uint64_t at;
	int64_t alarm;
	uint16_t worker;
	char kind;      /* 'i' incident, 'f' fall, 'g' other gateway alarm, 'o' other */
};
static struct alert_rec *alerts;
static atomic_ullong n_alerts, n_alert_bad;
static char workers[MAX_WORKERS][72];
static atomic_int n_workers;
static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;

struct spub {
	int index;
	pthread_t thread;
	struct mosquitto *mosq;
	atomic_bool connected;
	int inflight;                /* publishes the broker has not acknowledged */
	unsigned next_k;             /* this connection's next seq: index + 1 + pubs * next_k */
	uint64_t last_scan;
};
static struct spub pubs[MAX_PUBS], fallp;
static struct mosquitto *rx_receipts, *rx_alerts;
static atomic_int subacks;

/* ---- answers ---- */

/* What "id":"<run_id>-<rest>" names: 's' a storm seq, 'f' a fall, 'p' the
 * probe, 0 none of ours. */
static char answer_id(const char *s, size_t len, unsigned long long *num)
{
	static const char key[] = "\"id\":\"";
	const char *p = memmem(s, len, key, sizeof(key) - 1), *end = s + len;
	if (!p)
		return 0;
	p += sizeof(key) - 1;
	if ((size_t)(end - p) < run_id_len + 2 || memcmp(p, run_id, run_id_len) || p[run_id_len] != '-')
		return 0;
	p += run_id_len + 1;
	char kind = 's';
	if (*p == 'p')
		return 'p';
	if (*p == 'f')
		kind = 'f', p++;
	if (p >= end || *p < '0' || *p > '9')
		return 0;
	unsigned long long v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (unsigned long long)(*p++ - '0');
	if (p >= end || *p != '"')
		return 0;
	*num = v;
	return kind;
}

/* The receipt's "alarm": a number, or -1 (null, absent). */
static int64_t answer_alarm(const char *s, size_t len)
{
	static const char key[] = "\"alarm\":";
	const char *p = memmem(s, len, key, sizeof(key) - 1), *end = s + len;
	if (!p)
		return -1;
	p += sizeof(key) - 1;
	while (p < end && *p == ' ')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	int64_t v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return v;
}

static void max_store(_Atomic uint64_t *a, uint64_t v)
{
	uint64_t cur = atomic_load(a);
	while (cur < v && !atomic_compare_exchange_weak(a, &cur, v))
		;
}

static void on_receipt(const struct mosquitto_message *msg, uint64_t now)
{
	const char *pl = msg->payload;
	size_t len = (size_t)msg->payloadlen;
	unsigned long long k = 0;
	char kind = answer_id(pl, len, &k);
	if (kind == 'p') {
		if (!atomic_load(&recv_at[0]))
			atomic_store(&recv_at[0], now);
		return;
	}
	if (kind == 'f' && k < o.falls) {
		uint64_t zero = 0;
		if (atomic_compare_exchange_strong(&fall_receipt[k], &zero, now)) {
			atomic_store(&fall_alarm[k], answer_alarm(pl, len));
			atomic_fetch_add(&n_fall_receipted, 1);
		}
		return;
	}
	if (kind != 's' || k < 1 || k > o.n) {
		atomic_fetch_add(&n_unmatched, 1);
		return;
	}
	uint8_t status = 3;
	if (!o.relay) {
		if (memmem(pl, len, "\"stored\"", 8))
			atomic_fetch_add(&st_stored, 1), status = 1;
		else if (memmem(pl, len, "\"duplicate\"", 11))
			atomic_fetch_add(&st_duplicate, 1), status = 2;
		else if (memmem(pl, len, "\"rejected\"", 10))
			atomic_fetch_add(&st_rejected, 1);
		else
			atomic_fetch_add(&st_other, 1);
	}
	uint8_t nth = atomic_fetch_add(&n_rcpt[k], 1);   /* one receiver thread: no race */
	if (nth == 255)
		atomic_store(&n_rcpt[k], 255);
	if (nth < RCPT_KEPT) {
		atomic_store(&rcpt_at[k][nth], now);
		atomic_store(&rcpt_status[k][nth], status);
	}
	uint64_t zero = 0;
	if (atomic_compare_exchange_strong(&recv_at[k], &zero, now)) {
		atomic_store(&first_status[k], status);
		atomic_store(&recv_alarm[k], o.relay ? -1 : answer_alarm(pl, len));
		atomic_fetch_add(&n_answered, 1);
		max_store(&last_recv, now);
	}
}

static int worker_index(const char *name, size_t len)
{
	int n = atomic_load(&n_workers);
	for (int i = 0; i < n; i++)
		if (strlen(workers[i]) == len && !memcmp(workers[i], name, len))
			return i;
	pthread_mutex_lock(&workers_lock);
	n = atomic_load(&n_workers);
	int i = n < MAX_WORKERS && len < sizeof(workers[0]) ? n : -1;
	if (i >= 0) {
		memcpy(workers[i], name, len);
		workers[i][len] = '\0';
		atomic_store(&n_workers, n + 1);
	}
	pthread_mutex_unlock(&workers_lock);
	return i;
}

/* The fall number of a device id, or -1. */
static long fall_of(const char *dev)
{
	size_t pl = strlen(o.fall_prefix);
	if (strncmp(dev, o.fall_prefix, pl))
		return -1;
	char *end;
	errno = 0;
	unsigned long v = strtoul(dev + pl, &end, 10);
	if (errno || *end || end == dev + pl || v < o.fall_base || v - o.fall_base >= o.falls)
		return -1;
	return (long)(v - o.fall_base);
}

static void on_alert(const struct mosquitto_message *msg, uint64_t now)
{
	/* {prefix}/worker/{id}/alert */
	const char *t = msg->topic + strlen(o.prefix) + strlen("/worker/");
	const char *slash = strchr(t, '/');
	int w = slash ? worker_index(t, (size_t)(slash - t)) : -1;
	json_error_t err;
	json_t *j = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, &err);
	const char *dev = j ? json_string_value(json_object_get(j, "device")) : NULL;
	json_t *alarm = j ? json_object_get(j, "alarm") : NULL;
	if (w < 0 || !dev || !json_is_integer(alarm)) {
		atomic_fetch_add(&n_alert_bad, 1);
		json_decref(j);
		return;
	}
	char kind = 'o';
	long f;
	if (!strcmp(dev, "telecared"))
		kind = json_is_object(json_object_get(j, "incident")) ? 'i' : 'g';
	else if ((f = fall_of(dev)) >= 0) {
		kind = 'f';
		uint64_t zero = 0;
		if (atomic_compare_exchange_strong(&fall_alert[f], &zero, now))
			atomic_fetch_add(&n_fall_alerted, 1);
	}
	unsigned long long i = atomic_fetch_add(&n_alerts, 1);
	if (i < MAX_ALERTS)
		alerts[i] = (struct alert_rec){ now, json_integer_value(alarm), (uint16_t)w, kind };
	json_decref(j);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(void)m;
	(void)ud;
	uint64_t now = now_ns();
	size_t tl = strlen(msg->topic);
	if (!o.relay && tl > 6 && !strcmp(msg->topic + tl - 6, "/alert"))
		on_alert(msg, now);
	else
		on_receipt(msg, now);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
	(void)m;
	(void)ud;
	(void)mid;
	for (int i = 0; i < n; i++)
		if (granted[i] > 1)
			die("subscription refused");
	atomic_fetch_add(&subacks, 1);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)m;
	if (rc)
		die("connection refused: %s", mosquitto_connack_string(rc));
	if (ud)
		atomic_store(&((struct spub *)ud)->connected, true);
}

static void on_puback(struct mosquitto *m, void *ud, int mid)
{
	(void)m;
	(void)mid;
	struct spub *p = ud;
	if (p->inflight > 0)
		p->inflight--;
	if (p != &fallp)
		max_store(&last_puback, now_ns());
}

/* ---- sending ---- */

static int publish(struct spub *p, const char *dev, const char *id_tail, const char *type)
{
	char topic[256], body[256];
	if (o.relay)
		snprintf(topic, sizeof(topic), "bench/dev/%s/event", dev);
	else
		snprintf(topic, sizeof(topic), "%s/dev/%s/event", o.prefix, dev);
	int n = snprintf(body, sizeof(body), "{\"id\":\"%s-%s\",\"type\":\"%s\",\"battery\":87}", run_id,
	                 id_tail, type);
	int rc = mosquitto_publish(p->mosq, NULL, topic, n, body, 1, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "tc-loadgen: publish failed: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	p->inflight++;
	return 0;
}

static void storm_device(unsigned k, char *dev, size_t len)
{
	snprintf(dev, len, "%s%06u", o.dev_prefix, o.dev_base + (k - 1) % o.devices);
}

static int send_storm(struct spub *p, unsigned k, bool again)
{
	char dev[80], tail[24];
	storm_device(k, dev, sizeof(dev));
	snprintf(tail, sizeof(tail), "%u", k);
	uint64_t t = now_ns();
	if (!again) {
		atomic_store(&first_sent[k], t);
		max_store(&last_first_send, t);
		atomic_fetch_add(&n_first_sent, 1);
	} else {
		atomic_fetch_add(&n_resent, 1);
		atomic_store(&resent_at[k], t);
	}
	last_sent[k] = t;
	if (times_sent[k] < 255)
		times_sent[k]++;
	atomic_fetch_add(&n_sends, 1);
	return publish(p, dev, tail, o.type);
}

/* Events of this connection unanswered for --resend seconds go again. */
static void resend_scan(struct spub *p)
{
	uint64_t after = (uint64_t)(o.resend * 1e9), now = now_ns();
	for (unsigned k = (unsigned)p->index + 1; k <= o.n && p->inflight < o.window;
	     k += (unsigned)o.pubs) {
		if (!last_sent[k] || atomic_load(&recv_at[k]) || last_sent[k] + after > now)
			continue;
		send_storm(p, k, true);
	}
}

static void *storm_thread(void *arg)
{
	struct spub *p = arg;
	uint64_t last_misc = now_ns();
	while (!atomic_load(&stop_all)) {
		uint64_t now = now_ns();
		int64_t wait = 20000000;
		if (now >= t_start) {
			int burst = 0;
			for (;;) {
				unsigned k = (unsigned)p->index + 1 + (unsigned)o.pubs * p->next_k;
				if (k > o.n || burst >= 256 || p->inflight >= o.window)
					break;
				uint64_t due = t_start + (uint64_t)((double)(k - 1) * o.seconds * 1e9 / o.n);
				if (due > now) {
					int64_t w = (int64_t)(due - now);
					wait = w < wait ? w : wait;
					break;
				}
				if (now - due > atomic_load(&late_max_ns))
					atomic_store(&late_max_ns, now - due);
				send_storm(p, k, false);
				p->next_k++;
				burst++;
			}
			if (burst == 256)
				wait = 0;
			if (o.resend > 0 && now - p->last_scan > 100000000ULL) {
				p->last_scan = now;
				resend_scan(p);
			}
		} else if (t_start - now < (uint64_t)wait) {
			wait = (int64_t)(t_start - now);
		}
		if (pump(p->mosq, -1, wait, &last_misc) < 0)
			break;
	}
	return NULL;
}

static void send_fall(unsigned f, bool again)
{
	char dev[80], tail[24];
	snprintf(dev, sizeof(dev), "%s%06u", o.fall_prefix, o.fall_base + f);
	snprintf(tail, sizeof(tail), "f%u", f);
	if (!again)
		atomic_store(&fall_sent[f], now_ns());
	else
		atomic_fetch_add(&n_fall_resent, 1);
	publish(&fallp, dev, tail, "fall");
}

static void *fall_thread(void *arg)
{
	(void)arg;
	uint64_t last_misc = now_ns(), last_scan = 0;
	uint64_t *last = xcalloc(o.falls + 1, sizeof(*last));
	unsigned next = 0;
	double span = o.fall_to - o.fall_from;
	while (!atomic_load(&stop_all)) {
		uint64_t now = now_ns();
		int64_t wait = 20000000;
		while (next < o.falls) {
			uint64_t due = t_start + (uint64_t)((o.fall_from + ((double)next + 0.5) * span / o.falls) * 1e9);
			if (due > now) {
				if ((int64_t)(due - now) < wait)
					wait = (int64_t)(due - now);
				break;
			}
			send_fall(next, false);
			last[next++] = now;
		}
		if (o.resend > 0 && now - last_scan > 100000000ULL) {
			/* now is older than the sends of this pass: they are not due */
			last_scan = now;
			for (unsigned f = 0; f < next; f++)
				if (!atomic_load(&fall_receipt[f]) && last[f] + (uint64_t)(o.resend * 1e9) <= now) {
					send_fall(f, true);
					last[f] = now;
				}
		}
		if (pump(fallp.mosq, -1, wait, &last_misc) < 0)
			break;
	}
	free(last);
	return NULL;
}

static void *rx_thread(void *arg)
{
	struct mosquitto *m = arg;
	uint64_t last_misc = now_ns();
	while (!atomic_load(&stop_all))
		if (pump(m, -1, 50000000, &last_misc) < 0)
			break;
	return NULL;
}

/* ---- report ---- */

static void report(void)
{
	uint64_t *lat = xcalloc(o.n + 1, sizeof(*lat));
	size_t nl = 0, unanswered = 0;
	for (unsigned k = 1; k <= o.n; k++) {
		uint64_t s = atomic_load(&first_sent[k]), r = atomic_load(&recv_at[k]);
		if (!s)
			continue;
		if (r)
			lat[nl++] = r - s;
		else
			unanswered++;
	}
	/* Distinct alarms the storm's receipts named: one per device without
	 * folding, one (the incident) with it. */
	int64_t *al = xcalloc(o.n + 1, sizeof(*al));
	size_t na = 0, nnull = 0, distinct = 0;
	for (unsigned k = 1; k <= o.n; k++) {
		if (!atomic_load(&recv_at[k]))
			continue;
		int64_t a = atomic_load(&recv_alarm[k]);
		if (a < 0)
			nnull++;
		else
			al[na++] = a;
	}
	/* What resending did: events sent more than once, events that heard
	 * more than one receipt, events whose first receipt said "duplicate"
	 * (stored before, that receipt never heard). */
	size_t resent_events = 0, multi = 0, first_dup = 0, resent_first_stored = 0;
	for (unsigned k = 1; k <= o.n; k++) {
		resent_events += times_sent[k] > 1;
		multi += atomic_load(&n_rcpt[k]) > 1;
		first_dup += atomic_load(&first_status[k]) == 2;
		resent_first_stored += times_sent[k] > 1 && atomic_load(&first_status[k]) == 1;
	}
	qsort(al, na, sizeof(*al), cmp_u64);   /* non-negative: the order is the same */
	for (size_t i = 0; i < na; i++)
		distinct += i == 0 || al[i] != al[i - 1];
	uint64_t ls = atomic_load(&last_first_send), lr = atomic_load(&last_recv),
	         lp = atomic_load(&last_puback);
	printf("{\"mode\": \"storm\", \"relay\": %s, \"run_id\": \"%s\", \"start_ns\": %" PRIu64 ", ",
	       o.relay ? "true" : "false", run_id, t_start);
	printf("\"storm\": {\"events\": %u, \"devices\": %u, \"type\": \"%s\", ", o.n, o.devices, o.type);
	print_num("seconds", o.seconds, true);
	printf("\"sent\": %llu, \"sends\": %llu, \"resent\": %llu, \"answered\": %llu, \"unanswered\": %zu, ",
	       (unsigned long long)n_first_sent, (unsigned long long)n_sends, (unsigned long long)n_resent,
	       (unsigned long long)n_answered, unanswered);
	print_num("publish_span_s", ls ? (double)(ls - t_start) / 1e9 : NAN, true);
	print_num("puback_span_s", lp > t_start ? (double)(lp - t_start) / 1e9 : NAN, true);
	print_num("late_max_ms", (double)atomic_load(&late_max_ns) / 1e6, true);
	print_num("last_answer_s", lr ? (double)(lr - t_start) / 1e9 : NAN, true);
	printf("\"status\": {\"stored\": %llu, \"duplicate\": %llu, \"rejected\": %llu, \"other\": %llu}, ",
	       (unsigned long long)st_stored, (unsigned long long)st_duplicate,
	       (unsigned long long)st_rejected, (unsigned long long)st_other);
	printf("\"receipt_alarms\": {\"distinct\": %zu, \"null\": %zu}, \"unmatched\": %llu, ", distinct, nnull,
	       (unsigned long long)n_unmatched);
	printf("\"resend\": {\"events_resent\": %zu, \"first_answer_stored_after_resend\": %zu, "
	       "\"first_answer_duplicate\": %zu, \"answered_more_than_once\": %zu, \"examples\": [",
	       resent_events, resent_first_stored, first_dup, multi);
	/* The first few events resent or answered more than once: when each
	 * copy went and each receipt came (ms from the start). */
	static const char *const st_name[] = { "?", "stored", "duplicate", "other" };
	for (unsigned k = 1, shown = 0; k <= o.n && shown < 24; k++) {
		if (times_sent[k] < 2 && atomic_load(&n_rcpt[k]) < 2)
			continue;
		char dev[80];
		storm_device(k, dev, sizeof(dev));
		uint64_t rs = atomic_load(&resent_at[k]);
		printf("%s{\"event\": %u, \"device\": \"%s\", ", shown++ ? ", " : "", k, dev);
		print_num("sent_ms", ((double)atomic_load(&first_sent[k]) - (double)t_start) / 1e6, true);
		print_num("resent_ms", rs ? ((double)rs - (double)t_start) / 1e6 : NAN, true);
		printf("\"receipts\": [");
		unsigned nr = atomic_load(&n_rcpt[k]);
		for (unsigned i = 0; i < nr && i < RCPT_KEPT; i++)
			printf("%s[%.1f, \"%s\"]", i ? ", " : "",
			       ((double)atomic_load(&rcpt_at[k][i]) - (double)t_start) / 1e6,
			       st_name[atomic_load(&rcpt_status[k][i]) & 3]);
		printf("]}");
	}
	printf("]}, ");
	print_lat("latency", lat, nl);
	printf("}, ");

	size_t nf = 0;
	uint64_t *flat = xcalloc(o.falls + 1, sizeof(*flat));
	printf("\"falls\": {\"sent\": %u, \"receipted\": %llu, \"alerted\": %llu, \"resent\": %llu, \"list\": [",
	       o.falls, (unsigned long long)n_fall_receipted, (unsigned long long)n_fall_alerted,
	       (unsigned long long)n_fall_resent);
	for (unsigned f = 0; f < o.falls; f++) {
		uint64_t s = atomic_load(&fall_sent[f]), r = atomic_load(&fall_receipt[f]),
		         a = atomic_load(&fall_alert[f]);
		printf("%s{\"device\": \"%s%06u\", \"sent_ns\": %" PRIu64 ", ", f ? ", " : "", o.fall_prefix,
		       o.fall_base + f, s);
		print_num("receipt_ms", s && r ? (double)(r - s) / 1e6 : NAN, true);
		print_num("alert_ms", s && a ? (double)(a - s) / 1e6 : NAN, true);
		int64_t fa = atomic_load(&fall_alarm[f]);
		if (fa >= 0)
			printf("\"alarm\": %" PRId64 "}", fa);
		else
			printf("\"alarm\": null}");
		if (s && a)
			flat[nf++] = a - s;
	}
	printf("], ");
	print_lat("alert_latency", flat, nf);
	free(flat);
	printf("}, ");

	unsigned long long na_total = atomic_load(&n_alerts);
	size_t kept = na_total < MAX_ALERTS ? (size_t)na_total : MAX_ALERTS;
	printf("\"alerts\": {\"total\": %llu, \"kept\": %zu, \"unreadable\": %llu, \"workers\": {", na_total, kept,
	       (unsigned long long)n_alert_bad);
	static const char kinds[] = "ifgo";
	static const char *const kind_names[] = { "incident", "fall", "gateway", "other" };
	int nw = atomic_load(&n_workers);
	for (int w = 0; w < nw; w++) {
		printf("%s\"%s\": {", w ? ", " : "", workers[w]);
		for (int ki = 0; ki < 4; ki++) {
			printf("%s\"%s\": [", ki ? ", " : "", kind_names[ki]);
			bool first = true;
			for (size_t i = 0; i < kept; i++)
				if (alerts[i].worker == w && alerts[i].kind == kinds[ki]) {
					printf("%s%.1f", first ? "" : ",", ((double)alerts[i].at - (double)t_start) / 1e6);
					first = false;
				}
			printf("]");
		}
		printf("}");
	}
	printf("}, \"incident_alarms\": [");
	/* The distinct incident alarms alerted about. */
	int64_t *ia = xcalloc(kept + 1, sizeof(*ia));
	size_t ni = 0;
	for (size_t i = 0; i < kept; i++)
		if (alerts[i].kind == 'i')
			ia[ni++] = alerts[i].alarm;
	qsort(ia, ni, sizeof(*ia), cmp_u64);
	for (size_t i = 0, first = 1; i < ni; i++)
		if (i == 0 || ia[i] != ia[i - 1]) {
			printf("%s%" PRId64, first ? "" : ", ", ia[i]);
			first = 0;
		}
	printf("]}}\n");
	fflush(stdout);
	free(ia);
	free(lat);
	free(al);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tc-loadgen storm [options]\n"
		"  --port N             broker port on 127.0.0.1 (1883)\n"
		"  --prefix P           topic prefix (telecare)\n"
		"  --storm N            events in the storm\n"
		"  --storm-devices D    devices they come from, in turn (N: one event each)\n"
		"  --storm-prefix S     device ids are S + 6 digits (d)\n"
		"  --storm-base B       first device number (0)\n"
		"  --storm-type T       event type (power_loss)\n"
		"  --storm-seconds T    spread evenly over T s (5); 0: as fast as acknowledged\n"
		"  --pubs N             storm connections (2, at most %d)\n"
		"  --window W           unacknowledged publishes per connection (256)\n"
		"  --falls K            K pendants send one fall each (0)\n"
		"  --fall-prefix S, --fall-base B   their ids (d, 0)\n"
		"  --fall-from S, --fall-to S       spread over these seconds of the storm\n"
		"                       (default: the storm's)\n"
		"  --alerts             read every worker's alerts\n"
		"  --start-at NS        CLOCK_MONOTONIC time of the start (default: when ready)\n"
		"  --observe S          listen S s from the start (10)\n"
		"  --drain S            then at most S s more for what is owed (30)\n"
		"  --resend S           resend an event unanswered for S s (0: never)\n"
		"  --relay              through the broker alone (bench/dev/+/event)\n"
		"  --probe-device ID    a registered device for the readiness probe (d099999)\n"
		"  --no-probe           do not wait for one receipt first\n",
		MAX_PUBS);
}

static void wait_subscribed(struct mosquitto *m, int want, uint64_t deadline)
{
	uint64_t lm = now_ns();
	while (atomic_load(&subacks) < want)
		if (now_ns() > deadline || pump(m, -1, 10000000, &lm) < 0)
			die("not subscribed within 10 s");
}

static struct mosquitto *connect_pub(struct spub *p, const char *role, int i, uint64_t deadline)
{
	p->mosq = lg_client(role, i, p, o.port, o.window);
	mosquitto_connect_callback_set(p->mosq, on_connect);
	mosquitto_publish_callback_set(p->mosq, on_puback);
	uint64_t lm = now_ns();
	while (!atomic_load(&p->connected))
		if (now_ns() > deadline || pump(p->mosq, -1, 10000000, &lm) < 0)
			die("%s %d: not connected within 10 s", role, i);
	return p->mosq;
}

/* One heartbeat answered end to end: the daemon is subscribed. */
static void probe(void)
{
	uint64_t until = now_ns() + 30000000000ULL, lm = now_ns();
	while (!atomic_load(&recv_at[0])) {
		if (now_ns() > until)
			die("no answer to the probe within 30 s: is the daemon subscribed?");
		char topic[256], body[128];
		if (o.relay)
			snprintf(topic, sizeof(topic), "bench/dev/probe/event");
		else
			snprintf(topic, sizeof(topic), "%s/dev/%s/event", o.prefix, o.probe_device);
		int n = snprintf(body, sizeof(body), "{\"id\":\"%s-p\",\"type\":\"heartbeat\"}", run_id);
		mosquitto_publish(fallp.mosq, NULL, topic, n, body, 1, false);
		uint64_t next = now_ns() + 1000000000ULL;
		while (now_ns() < next && !atomic_load(&recv_at[0]))
			pump(fallp.mosq, -1, 10000000, &lm);
	}
	fallp.inflight = 0;
}

int storm_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "storm", required_argument, NULL, 'n' },
		{ "storm-devices", required_argument, NULL, 'd' },
		{ "storm-prefix", required_argument, NULL, 'S' },
		{ "storm-base", required_argument, NULL, 'b' },
		{ "storm-type", required_argument, NULL, 'T' },
		{ "storm-seconds", required_argument, NULL, 's' },
		{ "pubs", required_argument, NULL, 'c' },
		{ "window", required_argument, NULL, 'w' },
		{ "falls", required_argument, NULL, 'f' },
		{ "fall-prefix", required_argument, NULL, 'F' },
		{ "fall-base", required_argument, NULL, 'B' },
		{ "fall-from", required_argument, NULL, '1' },
		{ "fall-to", required_argument, NULL, '2' },
		{ "alerts", no_argument, NULL, 'a' },
		{ "start-at", required_argument, NULL, 'A' },
		{ "observe", required_argument, NULL, 'o' },
		{ "drain", required_argument, NULL, 'x' },
		{ "resend", required_argument, NULL, 'r' },
		{ "relay", no_argument, NULL, 'R' },
		{ "probe-device", required_argument, NULL, 'D' },
		{ "no-probe", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'P': o.prefix = optarg; break;
		case 'n': o.n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': o.devices = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'S': o.dev_prefix = optarg; break;
		case 'b': o.dev_base = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': o.type = optarg; break;
		case 's': o.seconds = atof(optarg); break;
		case 'c': o.pubs = atoi(optarg); break;
		case 'w': o.window = atoi(optarg); break;
		case 'f': o.falls = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'F': o.fall_prefix = optarg; break;
		case 'B': o.fall_base = (unsigned)strtoul(optarg, NULL, 10); break;
		case '1': o.fall_from = atof(optarg); break;
		case '2': o.fall_to = atof(optarg); break;
		case 'a': o.alerts = true; break;
		case 'A': o.start_at = strtoull(optarg, NULL, 10); break;
		case 'o': o.observe = atof(optarg); break;
		case 'x': o.drain = atof(optarg); break;
		case 'r': o.resend = atof(optarg); break;
		case 'R': o.relay = true; break;
		case 'D': o.probe_device = optarg; break;
		case 'N': o.probe = false; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.devices)
		o.devices = o.n;
	if (o.fall_from < 0)
		o.fall_from = 0;
	if (o.fall_to < 0)
		o.fall_to = o.seconds > 0 ? o.seconds : 1;
	if (o.n < 1 || o.n > 10000000 || o.devices < 1 || o.pubs < 1 || o.pubs > MAX_PUBS || o.window < 1 ||
	    o.seconds < 0 || o.seconds > 3600 || o.observe < 0 || o.observe > 3600 || o.drain < 0 ||
	    o.drain > 3600 || o.resend < 0 || o.fall_to < o.fall_from || o.falls > 100000 ||
	    (o.relay && (o.falls || o.alerts)))
		die("bad options (see tc-loadgen storm --help)");

	first_sent = xcalloc(o.n + 1, sizeof(*first_sent));
	recv_at = xcalloc(o.n + 1, sizeof(*recv_at));
	last_sent = xcalloc(o.n + 1, sizeof(*last_sent));
	recv_alarm = xcalloc(o.n + 1, sizeof(*recv_alarm));
	n_rcpt = xcalloc(o.n + 1, sizeof(*n_rcpt));
	first_status = xcalloc(o.n + 1, sizeof(*first_status));
	times_sent = xcalloc(o.n + 1, sizeof(*times_sent));
	rcpt_at = xcalloc(o.n + 1, sizeof(*rcpt_at));
	rcpt_status = xcalloc(o.n + 1, sizeof(*rcpt_status));
	resent_at = xcalloc(o.n + 1, sizeof(*resent_at));
	fall_sent = xcalloc(o.falls + 1, sizeof(*fall_sent));
	fall_receipt = xcalloc(o.falls + 1, sizeof(*fall_receipt));
	fall_alert = xcalloc(o.falls + 1, sizeof(*fall_alert));
	fall_alarm = xcalloc(o.falls + 1, sizeof(*fall_alarm));
	for (unsigned f = 0; f <= o.falls; f++)
		atomic_store(&fall_alarm[f], -1);
	alerts = o.alerts ? xcalloc(MAX_ALERTS, sizeof(*alerts)) : NULL;

	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	run_id_len = (size_t)snprintf(run_id, sizeof(run_id), "s%llx%x",
	                              (unsigned long long)rt.tv_sec * 1000 + (unsigned long long)(rt.tv_nsec / 1000000),
	                              (unsigned)getpid() & 0xfff);
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();

	/* Receivers first, subscribed before anything is sent; a connection
	 * of their own for the alerts, so they never queue behind receipts. */
	uint64_t deadline = now_ns() + 10000000000ULL;
	rx_receipts = lg_client("rx", 0, NULL, o.port, 256);
	mosquitto_subscribe_callback_set(rx_receipts, on_subscribe);
	mosquitto_message_callback_set(rx_receipts, on_message);
	char topic[256];
	if (o.relay)
		snprintf(topic, sizeof(topic), "bench/dev/+/event");
	else
		snprintf(topic, sizeof(topic), "%s/dev/+/receipt", o.prefix);
	mosquitto_subscribe(rx_receipts, NULL, topic, 1);
	wait_subscribed(rx_receipts, 1, deadline);
	if (o.alerts) {
		rx_alerts = lg_client("alerts", 0, NULL, o.port, 256);
		mosquitto_subscribe_callback_set(rx_alerts, on_subscribe);
		mosquitto_message_callback_set(rx_alerts, on_message);
		snprintf(topic, sizeof(topic), "%s/worker/+/alert", o.prefix);
		mosquitto_subscribe(rx_alerts, NULL, topic, 1);
		wait_subscribed(rx_alerts, 2, deadline);
	}
	for (int i = 0; i < o.pubs; i++) {
		pubs[i].index = i;
		connect_pub(&pubs[i], "storm", i, deadline);
	}
	connect_pub(&fallp, "falls", 0, deadline);

	pthread_t rxt, alt, ft;
	if (pthread_create(&rxt, NULL, rx_thread, rx_receipts) ||
	    (o.alerts && pthread_create(&alt, NULL, rx_thread, rx_alerts)))
		die("pthread_create failed");
	if (o.probe)
		probe();

	uint64_t now = now_ns();
	t_start = o.start_at ? o.start_at : now + 100000000ULL;
	if (t_start < now) {
		fprintf(stderr, "tc-loadgen: ready %.0f ms after --start-at: starting now\n",
		        (double)(now - t_start) / 1e6);
		t_start = now;
	}
	for (int i = 0; i < o.pubs; i++)
		if (pthread_create(&pubs[i].thread, NULL, storm_thread, &pubs[i]))
			die("pthread_create failed");
	if (pthread_create(&ft, NULL, fall_thread, NULL))
		die("pthread_create failed");

	uint64_t obs_end = t_start + (uint64_t)(o.observe * 1e9), end = obs_end + (uint64_t)(o.drain * 1e9);
	for (;;) {
		now = now_ns();
		bool owed = atomic_load(&n_answered) < o.n ||
		            (!o.relay && atomic_load(&n_fall_receipted) < o.falls) ||
		            (o.alerts && atomic_load(&n_fall_alerted) < o.falls);
		if (now >= end || (now >= obs_end && !owed))
			break;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop_all, true);
	for (int i = 0; i < o.pubs; i++)
		pthread_join(pubs[i].thread, NULL);
	pthread_join(ft, NULL);
	pthread_join(rxt, NULL);
	if (o.alerts)
		pthread_join(alt, NULL);
	report();
	for (int i = 0; i < o.pubs; i++)
		mosquitto_destroy(pubs[i].mosq);
	mosquitto_destroy(fallp.mosq);
	mosquitto_destroy(rx_receipts);
	if (rx_alerts)
		mosquitto_destroy(rx_alerts);
	mosquitto_lib_cleanup();
	return 0;
}

/* ---- board ---- */

struct board {
	json_t *entries;          /* topic -> summary, retained as delivered */
	uint64_t last_msg;
	unsigned long live, cleared, unreadable;
};

static void on_board_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(void)m;
	struct board *b = ud;
	b->last_msg = now_ns();
	if (!msg->retain)
		b->live++;
	if (msg->payloadlen == 0) {
		json_object_del(b->entries, msg->topic);
		b->cleared++;
		return;
	}
	json_error_t err;
	json_t *j = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, &err);
	if (!j) {
		b->unreadable++;
		return;
	}
	json_object_set_new(b->entries, msg->topic, j);
}

int board_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "quiet", required_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	double quiet = 1.0, timeout = 60;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'P': o.prefix = optarg; break;
		case 'q': quiet = atof(optarg); break;
		case 't': timeout = atof(optarg); break;
		case 'h':
			printf("Usage: tc-loadgen board [--port N] [--prefix P] [--quiet S (1)] [--timeout S (60)]\n"
			       "Prints what {prefix}/alarms/+ holds retained once nothing new came for S s.\n");
			return 0;
		default: return 2;
		}
	}
	if (quiet <= 0 || timeout <= 0)
		die("bad options");
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	struct board b = { .entries = json_object() };
	struct mosquitto *m = lg_client("board", 0, &b, o.port, 256);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_board_message);
	char topic[256];
	snprintf(topic, sizeof(topic), "%s/alarms/+", o.prefix);
	mosquitto_subscribe(m, NULL, topic, 1);
	uint64_t start = now_ns(), lm = start, end = start + (uint64_t)(timeout * 1e9);
	bool timed_out = false;
	wait_subscribed(m, 1, start + 10000000000ULL);
	b.last_msg = now_ns();
	for (;;) {
		uint64_t now = now_ns();
		if (now - b.last_msg >= (uint64_t)(quiet * 1e9))
			break;
		if (now >= end) {
			timed_out = true;
			break;
		}
		if (pump(m, -1, 50000000, &lm) < 0)
			die("connection lost");
	}
	json_t *ids = json_array(), *inc = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(b.entries, k, v) {
		json_t *id = json_object_get(v, "alarm");
		json_array_append(ids, id ? id : json_null());
		json_t *i = json_object_get(v, "incident");
		if (json_is_object(i))
			json_array_append_new(inc, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?}", "alarm", id, "class",
			                                     json_object_get(i, "class"), "devices",
			                                     json_object_get(i, "devices"), "restored",
			                                     json_object_get(i, "restored"), "teams",
			                                     json_object_get(i, "teams")));
	}
	json_t *out = json_pack("{s:I, s:o, s:o, s:I, s:I, s:I, s:b}", "entries",
	                        (json_int_t)json_object_size(b.entries), "alarms", ids, "incidents", inc,
	                        "live", (json_int_t)b.live, "cleared", (json_int_t)b.cleared,
	                        "unreadable", (json_int_t)b.unreadable, "timed_out", timed_out);
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
	json_decref(b.entries);
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return 0;
}
