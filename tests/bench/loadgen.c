/* tc-loadgen: the load generator of the telecared benchmarks (issue 6).
 *
 * Simulates many devices (and reads what one worker is sent) over a few
 * MQTT connections to a broker on 127.0.0.1, and prints one JSON object with
 * what it measured. It is a test tool, not the daemon: it uses threads, one
 * per connection, each driving its own libmosquitto client with ppoll()
 * (no mosquitto_loop_start: we want to wake a sender the moment it may send).
 *
 *   tc-loadgen relay  ...   publisher -> broker -> subscriber, no daemon:
 *                           QoS 1 messages on bench/dev/{id}/event, read back
 *                           from bench/dev/+/event (the ceiling).
 *   tc-loadgen ingest ...   devices publish QoS 1 events to
 *                           {prefix}/dev/{id}/event and wait for
 *                           {prefix}/dev/{id}/receipt (SPEC 2.1, 2.2); with
 *                           --alert-worker also the worker's alerts (SPEC 2.4).
 *   tc-loadgen storm ...    a mass event (storm.c): many devices, one event
 *                           each, within a few seconds, plus falls whose first
 *                           alert is timed; or a burst as fast as the broker
 *                           takes it, through the daemon or the broker alone.
 *   tc-loadgen board ...    reads the retained dispatch board (storm.c).
 *
 * Load is either closed (--window W: at most W messages sent and not yet
 * answered, each answer lets the next one go) or open (--rate R heartbeats/s
 * and --alarm-rate A alarms/s on a fixed schedule, whatever happens).
 * Every message carries "<run>-<sequence number>" as its event id (the run
 * part is new for every run, so a second run against the same database is
 * not answered "duplicate"); the answer names it, and the send and answer
 * times (CLOCK_MONOTONIC) are kept per sequence number. Only what was sent
 * inside the measurement window (after --warmup, for --duration seconds) is
 * counted; afterwards the tool waits up to --drain seconds for what is still
 * owed, then reports and exits. With --pid it also reports the CPU share,
 * run-queue wait and RSS of those processes over the window. Bounded in
 * time and memory; connects only to 127.0.0.1. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "lg.h"

#define MAX_PUBS   16
#define MAX_PIDS   4
#define PROBE_SEQ  0          /* sequence number 0 is the readiness probe */

enum mode { MODE_RELAY, MODE_INGEST };

struct opts {
	enum mode mode;
	int port;
	const char *prefix;           /* topic prefix (ingest) */
	const char *dev_prefix;       /* device ids are dev_prefix + 6 digits */
	int pubs;                     /* publishing connections */
	int window;                   /* closed loop: messages in flight; 0: open loop */
	double rate;                  /* open loop: heartbeats per second */
	double alarm_rate;            /* open loop: alarms per second, each on a new device */
	unsigned devices, dev_base;   /* heartbeats cycle over [dev_base, dev_base + devices) */
	unsigned alarm_base;          /* alarms use dev_base + alarm_base + 0, 1, 2, ... */
	double warmup, duration, drain;
	const char *worker;           /* read {prefix}/worker/{worker}/alert */
	const char *pid_name[MAX_PIDS];
	int pid[MAX_PIDS];
	int n_pids;
	size_t max_msgs;
	bool probe;                   /* one event answered before the load starts */
	bool quiet;
};

static struct opts o = {
	.mode = MODE_INGEST, .port = 1883, .prefix = "telecare", .dev_prefix = "d", .pubs = 2,
	.devices = 1000, .warmup = 1, .duration = 5, .drain = 5, .probe = true,
};

/* Per sequence number: kind, send and answer times (ns, 0 = not yet). */
static _Atomic uint64_t *sent_ns, *recv_ns;
static uint8_t *is_alarm;
static uint32_t *alarm_index;    /* seq -> alarm number, for alarms */
static size_t cap;               /* sequence numbers available */
/* Per alarm number: the seq of the alarm event and when its first alert came. */
static _Atomic uint64_t *alert_ns;
static _Atomic uint64_t *alarm_seq;
static size_t alarm_cap;

static uint64_t t_start, t0, t1;  /* load starts, window opens, window closes */
static char run_id[24];           /* the first part of every event id of this run */
static size_t run_id_len;
static atomic_bool stop_sending, stop_all, capped;
static atomic_ullong n_status_stored, n_status_duplicate, n_status_rejected, n_status_other;
static atomic_ullong n_alerts_total, n_alerts_unmatched, n_recv_unmatched;
static atomic_ullong n_sent, n_answered, n_first_alerts;  /* what is still owed, for the drain */
static atomic_int subscribed;
static atomic_ullong alarms_sent;

struct pub {
	int index;
	pthread_t thread;
	struct mosquitto *mosq;
	int efd;                     /* eventfd: the receiver returned credit */
	atomic_int credit;           /* closed loop: how many may still be sent */
	atomic_bool connected;
	uint64_t next_seq_k;         /* this thread's seqs are index + pubs * k, k >= 1 */
	uint64_t hb_k, alarm_k;      /* messages of each stream sent so far */
	unsigned dev_cursor;
	int publish_errors;
};

static struct pub pubs[MAX_PUBS];
static struct mosquitto *rx;
static atomic_bool rx_connected;

/* ---- parsing answers: small, fixed shapes; no JSON library needed ---- */

/* The sequence number in "id":"<run_id>-<seq>"; PROBE_SEQ for the probe
 * ("<run_id>-p"); -1 for anything else. */
static long long answer_seq(const char *s, size_t len)
{
	static const char key[] = "\"id\":\"";
	const char *p = memmem(s, len, key, sizeof(key) - 1), *end = s + len;
	if (!p)
		return -1;
	p += sizeof(key) - 1;
	if ((size_t)(end - p) < run_id_len + 2 || memcmp(p, run_id, run_id_len) || p[run_id_len] != '-')
		return -1;
	p += run_id_len + 1;
	if (*p == 'p')
		return PROBE_SEQ;
	if (*p < '0' || *p > '9')
		return -1;
	long long v = 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0');
	return p < end && *p == '"' ? v : -1;
}

/* The device number in "device":"<dev_prefix>NNNNNN", or -1. */
static long long alert_device(const char *s, size_t len)
{
	static const char key[] = "\"device\":\"";
	const char *p = memmem(s, len, key, sizeof(key) - 1);
	if (!p)
		return -1;
	p += sizeof(key) - 1;
	size_t pl = strlen(o.dev_prefix);
	if ((size_t)(s + len - p) < pl || memcmp(p, o.dev_prefix, pl))
		return -1;
	p += pl;
	long long v = 0;
	int digits = 0;
	while (p < s + len && *p >= '0' && *p <= '9')
		v = v * 10 + (*p++ - '0'), digits++;
	return digits ? v : -1;
}

static void credit_back(uint64_t seq)
{
	if (!o.window || seq == PROBE_SEQ)
		return;
	struct pub *p = &pubs[seq % (uint64_t)o.pubs];
	if (atomic_fetch_add(&p->credit, 1) == 0) {
		uint64_t one = 1;
		ssize_t w = write(p->efd, &one, sizeof(one));
		(void)w;  /* on failure the sender still wakes at its poll timeout */
	}
}

static void on_rx_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(void)m;
	(void)ud;
	uint64_t now = now_ns();
	const char *pl = msg->payload;
	size_t len = (size_t)msg->payloadlen;
	size_t tl = strlen(msg->topic);
	if (o.mode == MODE_INGEST && tl > 6 && !strcmp(msg->topic + tl - 6, "/alert")) {
		atomic_fetch_add(&n_alerts_total, 1);
		long long dev = alert_device(pl, len);
		long long a = dev - (long long)o.dev_base - (long long)o.alarm_base;
		if (dev < 0 || a < 0 || (size_t)a >= alarm_cap || !atomic_load(&alarm_seq[a])) {
			atomic_fetch_add(&n_alerts_unmatched, 1);
			return;
		}
		uint64_t zero = 0;
		if (atomic_compare_exchange_strong(&alert_ns[a], &zero, now))  /* the first alert counts */
			atomic_fetch_add(&n_first_alerts, 1);
		return;
	}
	long long seq = answer_seq(pl, len);
	if (seq < 0 || (size_t)seq >= cap) {
		atomic_fetch_add(&n_recv_unmatched, 1);
		return;
	}
	if (o.mode == MODE_INGEST) {
		if (memmem(pl, len, "\"stored\"", 8))
			atomic_fetch_add(&n_status_stored, 1);
		else if (memmem(pl, len, "\"duplicate\"", 11))
			atomic_fetch_add(&n_status_duplicate, 1);
		else if (memmem(pl, len, "\"rejected\"", 10))
			atomic_fetch_add(&n_status_rejected, 1);
		else
			atomic_fetch_add(&n_status_other, 1);
	}
	uint64_t zero = 0;
	if (atomic_compare_exchange_strong(&recv_ns[seq], &zero, now) && seq != PROBE_SEQ) {
		atomic_fetch_add(&n_answered, 1);
		credit_back((uint64_t)seq);
	}
}

static void on_rx_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	if (rc) {
		fprintf(stderr, "tc-loadgen: receiver refused: %s\n", mosquitto_connack_string(rc));
		return;
	}
	char topic[256];
	if (o.mode == MODE_RELAY)
		snprintf(topic, sizeof(topic), "bench/dev/+/event");
	else
		snprintf(topic, sizeof(topic), "%s/dev/+/receipt", o.prefix);
	mosquitto_subscribe(m, NULL, topic, 1);
	if (o.worker) {
		snprintf(topic, sizeof(topic), "%s/worker/%s/alert", o.prefix, o.worker);
		mosquitto_subscribe(m, NULL, topic, 1);
	}
	atomic_store(&rx_connected, true);
}

static void on_rx_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
	(void)m;
	(void)ud;
	(void)mid;
	for (int i = 0; i < n; i++)
		if (granted[i] > 1)
			fprintf(stderr, "tc-loadgen: subscription refused\n");
	atomic_fetch_add(&subscribed, 1);
}

static void on_pub_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)m;
	struct pub *p = ud;
	if (rc)
		fprintf(stderr, "tc-loadgen: publisher refused: %s\n", mosquitto_connack_string(rc));
	else
		atomic_store(&p->connected, true);
}

static struct mosquitto *client(const char *role, int i, void *ud)
{
	return lg_client(role, i, ud, o.port, 256);
}

static void *rx_thread(void *arg)
{
	(void)arg;
	uint64_t last_misc = now_ns();
	while (!atomic_load(&stop_all))
		if (pump(rx, -1, 50000000, &last_misc) < 0)
			break;
	return NULL;
}

/* The payload of one message; returns its length. */
static int payload(char *buf, size_t len, uint64_t seq, bool alarm, uint64_t t)
{
	return snprintf(buf, len, "{\"id\":\"%s-%" PRIu64 "\",\"type\":\"%s\",\"battery\":87,"
	                "\"rssi\":-70,\"t\":%" PRIu64 "}", run_id, seq, alarm ? "panic" : "heartbeat", t);
}

static int send_one(struct pub *p, uint64_t seq, unsigned dev, bool alarm)
{
	char topic[256], body[256];
	if (o.mode == MODE_RELAY)
		snprintf(topic, sizeof(topic), "bench/dev/%s%06u/event", o.dev_prefix, dev);
	else
		snprintf(topic, sizeof(topic), "%s/dev/%s%06u/event", o.prefix, o.dev_prefix, dev);
	uint64_t t = now_ns();
	int n = payload(body, sizeof(body), seq, alarm, t);
	is_alarm[seq] = alarm;
	atomic_store(&sent_ns[seq], t);
	atomic_fetch_add(&n_sent, 1);
	int rc = mosquitto_publish(p->mosq, NULL, topic, n, body, 1, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		if (p->publish_errors++ < 5)
			fprintf(stderr, "tc-loadgen: publish failed: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}

static bool next_seq(struct pub *p, uint64_t *seq)
{
	uint64_t s = (uint64_t)p->index + (uint64_t)o.pubs * ++p->next_seq_k;
	if (s >= cap) {
		atomic_store(&capped, true);
		return false;
	}
	*seq = s;
	return true;
}

static unsigned next_device(struct pub *p)
{
	/* Each connection cycles over its own share of the devices, so in the
	 * closed loop a device's previous event has long been answered. */
	unsigned share = o.devices / (unsigned)o.pubs;
	if (share == 0)
		share = 1;
	unsigned d = o.dev_base + (unsigned)p->index + (unsigned)o.pubs * (p->dev_cursor % share);
	p->dev_cursor++;
	return d >= o.dev_base + o.devices ? o.dev_base + (unsigned)p->index % o.devices : d;
}

static void send_alarm(struct pub *p)
{
	uint64_t a = (uint64_t)p->index + (uint64_t)o.pubs * p->alarm_k++;
	uint64_t seq;
	if (a >= alarm_cap) {
		atomic_store(&capped, true);
		return;
	}
	if (!next_seq(p, &seq))
		return;
	alarm_index[seq] = (uint32_t)a;
	atomic_store(&alarm_seq[a], seq);
	if (send_one(p, seq, o.dev_base + o.alarm_base + (unsigned)a, true) == 0)
		atomic_fetch_add(&alarms_sent, 1);
}

static void *pub_thread(void *arg)
{
	struct pub *p = arg;
	uint64_t last_misc = now_ns();
	double hb_rate = o.rate / o.pubs, al_rate = o.alarm_rate / o.pubs;
	/* Stagger the connections' schedules so their sends interleave. */
	double hb_off = hb_rate > 0 ? (double)p->index / o.pubs / hb_rate : 0;
	double al_off = al_rate > 0 ? (double)p->index / o.pubs / al_rate : 0;

	while (!atomic_load(&stop_all)) {
		uint64_t now = now_ns();
		int64_t wait = 50000000;  /* 50 ms when there is nothing to do */
		if (!atomic_load(&stop_sending) && now >= t_start) {
			if (now >= t1) {
				atomic_store(&stop_sending, true);
			} else if (o.window) {
				int burst = 0;
				while (burst < 256 && atomic_load(&p->credit) > 0) {
					uint64_t seq;
					if (!next_seq(p, &seq))
						break;
					atomic_fetch_sub(&p->credit, 1);
					send_one(p, seq, next_device(p), false);
					burst++;
				}
				wait = burst == 256 ? 0 : 50000000;
			} else {
				double el = (double)(now - t_start) / 1e9;
				int burst = 0;
				while (hb_rate > 0 && burst < 256 &&
				       hb_off + (double)p->hb_k / hb_rate <= el) {
					uint64_t seq;
					p->hb_k++;
					if (!next_seq(p, &seq))
						break;
					send_one(p, seq, next_device(p), false);
					burst++;
				}
				while (al_rate > 0 && burst < 256 &&
				       al_off + (double)p->alarm_k / al_rate <= el) {
					send_alarm(p);
					burst++;
				}
				double next = 1e18;
				if (hb_rate > 0)
					next = hb_off + (double)p->hb_k / hb_rate;
				if (al_rate > 0 && al_off + (double)p->alarm_k / al_rate < next)
					next = al_off + (double)p->alarm_k / al_rate;
				double w = (next - el) * 1e9;
				wait = burst == 256 ? 0 : w > 50e6 ? 50000000 : (int64_t)w;
			}
		}
		if (pump(p->mosq, p->efd, wait, &last_misc) < 0)
			break;
	}
	return NULL;
}

/* ---- results ---- */

static double psi_before, psi_after;

static void report(struct proc_sample *before, struct proc_sample *after, double self_before,
                   double self_after, double real_window)
{
	size_t sent = 0, answered = 0, lost = 0, in_window = 0, hb_n = 0, al_n = 0;
	size_t half_n[2] = { 0, 0 };
	uint64_t *hb = xcalloc(cap, sizeof(*hb)), *al = xcalloc(cap, sizeof(*al));
	uint64_t *half[2] = { xcalloc(cap, sizeof(uint64_t)), xcalloc(cap, sizeof(uint64_t)) };
	uint64_t mid = t0 + (t1 - t0) / 2;
	uint64_t *alert = xcalloc(alarm_cap + 1, sizeof(*alert));
	size_t alert_n = 0, alert_missing = 0, alarms_in_window = 0;

	for (size_t s = 1; s < cap; s++) {
		uint64_t ts = atomic_load(&sent_ns[s]), tr = atomic_load(&recv_ns[s]);
		if (tr >= t0 && tr < t1)
			in_window++;
		if (ts < t0 || ts >= t1 || !ts)
			continue;
		sent++;
		if (!tr) {
			lost++;
			continue;
		}
		answered++;
		uint64_t lat = tr - ts;
		if (is_alarm[s])
			al[al_n++] = lat;
		else
			hb[hb_n++] = lat;
		int h = ts >= mid;
		half[h][half_n[h]++] = lat;
		if (is_alarm[s]) {
			uint32_t a = alarm_index[s];
			alarms_in_window++;
			uint64_t ta = atomic_load(&alert_ns[a]);
			if (o.worker) {
				if (ta)
					alert[alert_n++] = ta - ts;
				else
					alert_missing++;
			}
		}
	}
	/* Alarms whose receipt never came still count for their alert. */
	for (size_t a = 0; o.worker && a < alarm_cap; a++) {
		uint64_t s = atomic_load(&alarm_seq[a]);
		if (!s)
			continue;
		uint64_t ts = atomic_load(&sent_ns[s]);
		if (ts < t0 || ts >= t1 || atomic_load(&recv_ns[s]))
			continue;
		uint64_t ta = atomic_load(&alert_ns[a]);
		alarms_in_window++;
		if (ta)
			alert[alert_n++] = ta - ts;
		else
			alert_missing++;
	}

	double win = (double)(t1 - t0) / 1e9;
	printf("{\"mode\": \"%s\", \"pubs\": %d, \"window\": %d, ", o.mode == MODE_RELAY ? "relay" : "ingest",
	       o.pubs, o.window);
	print_num("rate", o.rate, true);
	print_num("alarm_rate", o.alarm_rate, true);
	print_num("duration_s", win, true);
	print_num("real_window_s", real_window, true);
	printf("\"devices\": %u, \"sent\": %zu, \"answered\": %zu, \"lost\": %zu, \"capped\": %s, ", o.devices,
	       sent, answered, lost, atomic_load(&capped) ? "true" : "false");
	print_num("sent_per_s", (double)sent / win, true);
	print_num("answered_per_s", (double)in_window / win, true);
	print_lat("latency", hb_n ? hb : al, hb_n ? hb_n : al_n);
	printf(", ");
	if (hb_n && al_n) {
		print_lat("alarm_receipt_latency", al, al_n);
		printf(", ");
	}
	print_lat("latency_first_half", half[0], half_n[0]);
	printf(", ");
	print_lat("latency_second_half", half[1], half_n[1]);
	if (o.mode == MODE_INGEST) {
		printf(", \"status\": {\"stored\": %llu, \"duplicate\": %llu, \"rejected\": %llu, \"other\": %llu}",
		       (unsigned long long)n_status_stored, (unsigned long long)n_status_duplicate,
		       (unsigned long long)n_status_rejected, (unsigned long long)n_status_other);
	}
	if (o.worker) {
		printf(", \"alarms\": %zu, \"alerts_missing\": %zu, \"alerts_total\": %llu, \"alerts_unmatched\": %llu, ",
		       alarms_in_window, alert_missing, (unsigned long long)n_alerts_total,
		       (unsigned long long)n_alerts_unmatched);
		print_lat("alert_latency", alert, alert_n);
	}
	printf(", \"unmatched_answers\": %llu", (unsigned long long)n_recv_unmatched);
	printf(", \"procs\": {");
	for (int i = 0; i < o.n_pids; i++) {
		printf("%s\"%s\": {\"pid\": %d, ", i ? ", " : "", o.pid_name[i], o.pid[i]);
		if (before[i].ok && after[i].ok) {
			print_num("cpu_pct", 100.0 * (after[i].cpu_s - before[i].cpu_s) / real_window, true);
			print_num("cpu_wait_pct", 100.0 * (after[i].wait_s - before[i].wait_s) / real_window, true);
			printf("\"rss_kib\": %ld, \"hwm_kib\": %ld}", after[i].rss_kib, after[i].hwm_kib);
		} else {
			printf("\"cpu_pct\": null, \"rss_kib\": null, \"hwm_kib\": null}");
		}
	}
	printf("%s\"loadgen\": {", o.n_pids ? ", " : "");
	print_num("cpu_pct", 100.0 * (self_after - self_before) / real_window, false);
	printf("}}, ");
	/* How busy the machine was: the share of the window in which some task
	 * (ours or anyone's) waited for a CPU, and the load average. */
	print_num("cpu_pressure_pct", 100.0 * (psi_after - psi_before) / real_window, true);
	double la[1] = { NAN };
	getloadavg(la, 1);
	print_num("loadavg", la[0], false);
	printf("}\n");
	fflush(stdout);
	free(hb);
	free(al);
	free(half[0]);
	free(half[1]);
	free(alert);
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: tc-loadgen relay|ingest [options]\n"
		"       tc-loadgen storm --help    mass events, bursts (issue 9)\n"
		"       tc-loadgen board --help    what the retained dispatch board holds\n"
		"  --port N            broker port on 127.0.0.1 (1883)\n"
		"  --prefix P          topic prefix (telecare)\n"
		"  --dev-prefix S      device ids are S + 6 digits (d)\n"
		"  --pubs N            publishing connections (2, at most %d)\n"
		"  --window N          closed loop: N messages in flight\n"
		"  --rate R            open loop: R heartbeats per second\n"
		"  --alarm-rate A      open loop: A alarms per second, each on its own device\n"
		"  --devices N         heartbeats cycle over N devices (1000)\n"
		"  --dev-base N        first device number (0)\n"
		"  --alarm-base N      alarms use devices dev-base + N, N+1, ... (devices)\n"
		"  --warmup S, --duration S, --drain S   seconds (1, 5, 5)\n"
		"  --alert-worker ID   also measure alarm -> first alert to this worker\n"
		"  --pid NAME=PID      report CPU share and RSS of PID over the window\n"
		"  --max-msgs N        memory bound: sequence numbers available\n"
		"  --no-probe          do not wait for one answered message first\n",
		MAX_PUBS);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "prefix", required_argument, NULL, 'P' },
		{ "dev-prefix", required_argument, NULL, 'D' },
		{ "pubs", required_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "alarm-rate", required_argument, NULL, 'a' },
		{ "devices", required_argument, NULL, 'd' },
		{ "dev-base", required_argument, NULL, 'b' },
		{ "alarm-base", required_argument, NULL, 'B' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "duration", required_argument, NULL, 't' },
		{ "drain", required_argument, NULL, 'x' },
		{ "alert-worker", required_argument, NULL, 'A' },
		{ "pid", required_argument, NULL, 'I' },
		{ "max-msgs", required_argument, NULL, 'M' },
		{ "no-probe", no_argument, NULL, 'N' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "storm"))
		return storm_main(argc, argv);
	if (!strcmp(argv[1], "board"))
		return board_main(argc, argv);
	if (!strcmp(argv[1], "relay"))
		o.mode = MODE_RELAY;
	else if (!strcmp(argv[1], "ingest"))
		o.mode = MODE_INGEST;
	else if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	} else {
		usage(stderr);
		return 2;
	}
	bool alarm_base_set = false;
	int c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'P': o.prefix = optarg; break;
		case 'D': o.dev_prefix = optarg; break;
		case 'n': o.pubs = atoi(optarg); break;
		case 'w': o.window = atoi(optarg); break;
		case 'r': o.rate = atof(optarg); break;
		case 'a': o.alarm_rate = atof(optarg); break;
		case 'd': o.devices = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': o.dev_base = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'B': o.alarm_base = (unsigned)strtoul(optarg, NULL, 10); alarm_base_set = true; break;
		case 'W': o.warmup = atof(optarg); break;
		case 't': o.duration = atof(optarg); break;
		case 'x': o.drain = atof(optarg); break;
		case 'A': o.worker = optarg; break;
		case 'I': {
			char *eq = strchr(optarg, '=');
			if (!eq || o.n_pids == MAX_PIDS)
				die("--pid NAME=PID, at most %d", MAX_PIDS);
			*eq = '\0';
			o.pid_name[o.n_pids] = optarg;
			o.pid[o.n_pids++] = atoi(eq + 1);
			break;
		}
		case 'M': o.max_msgs = strtoull(optarg, NULL, 10); break;
		case 'N': o.probe = false; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (o.pubs < 1 || o.pubs > MAX_PUBS || o.devices < 1 || o.duration <= 0 || o.duration > 600 ||
	    o.warmup < 0 || o.warmup > 60 || o.drain < 0 || o.drain > 120 || o.window < 0 ||
	    o.rate < 0 || o.alarm_rate < 0)
		die("bad options (see --help)");
	if (!o.window && o.rate <= 0 && o.alarm_rate <= 0)
		die("give --window or --rate/--alarm-rate");
	if (o.window && (o.rate > 0 || o.alarm_rate > 0))
		die("--window is a closed loop: no --rate or --alarm-rate with it");
	if (o.mode == MODE_RELAY && (o.alarm_rate > 0 || o.worker))
		die("relay carries heartbeats only");
	if (o.window && o.window < o.pubs)
		o.pubs = o.window;
	if (!alarm_base_set)
		o.alarm_base = o.devices;

	double total = o.warmup + o.duration;
	if (!o.max_msgs) {
		double per_s = o.window ? 100000 : o.rate + o.alarm_rate;
		o.max_msgs = (size_t)(per_s * total * 1.1) + 1000;
	}
	if (o.max_msgs > 50000000)
		o.max_msgs = 50000000;
	cap = o.max_msgs + 1;
	sent_ns = xcalloc(cap, sizeof(*sent_ns));
	recv_ns = xcalloc(cap, sizeof(*recv_ns));
	is_alarm = xcalloc(cap, 1);
	alarm_index = xcalloc(cap, sizeof(*alarm_index));
	alarm_cap = o.alarm_rate > 0 ? (size_t)(o.alarm_rate * total * 1.1) + 64 : 1;
	alert_ns = xcalloc(alarm_cap, sizeof(*alert_ns));
	alarm_seq = xcalloc(alarm_cap, sizeof(*alarm_seq));

	struct timespec rt;
	clock_gettime(CLOCK_REALTIME, &rt);
	run_id_len = (size_t)snprintf(run_id, sizeof(run_id), "%llx%x",
	                              (unsigned long long)rt.tv_sec * 1000 + (unsigned long long)(rt.tv_nsec / 1000000),
	                              (unsigned)getpid() & 0xfff);
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();

	/* The receiver first, subscribed before anything is sent. */
	rx = client("rx", 0, NULL);
	mosquitto_connect_callback_set(rx, on_rx_connect);
	mosquitto_subscribe_callback_set(rx, on_rx_subscribe);
	mosquitto_message_callback_set(rx, on_rx_message);
	int want_subs = o.worker ? 2 : 1;
	uint64_t deadline = now_ns() + 10000000000ULL, last_misc = now_ns();
	while (atomic_load(&subscribed) < want_subs) {
		if (now_ns() > deadline || pump(rx, -1, 10000000, &last_misc) < 0)
			die("receiver: not subscribed within 10 s");
	}
	for (int i = 0; i < o.pubs; i++) {
		struct pub *p = &pubs[i];
		p->index = i;
		p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd < 0)
			die("eventfd: %s", strerror(errno));
		p->mosq = client("pub", i, p);
		mosquitto_connect_callback_set(p->mosq, on_pub_connect);
		while (!atomic_load(&p->connected)) {
			uint64_t lm = now_ns();
			if (now_ns() > deadline || pump(p->mosq, -1, 10000000, &lm) < 0)
				die("publisher %d: not connected within 10 s", i);
		}
	}

	pthread_t rxt;
	if (pthread_create(&rxt, NULL, rx_thread, NULL))
		die("pthread_create failed");

	/* The probe: one message answered end to end means the path is up (the
	 * daemon has subscribed). It is sent again every second for up to 20 s. */
	if (o.probe) {
		uint64_t pd = now_ns() + 20000000000ULL;
		while (!atomic_load(&recv_ns[PROBE_SEQ])) {
			if (now_ns() > pd)
				die("no answer to the probe within 20 s: is the daemon subscribed?");
			char topic[256], body[128];
			if (o.mode == MODE_RELAY)
				snprintf(topic, sizeof(topic), "bench/dev/probe/event");
			else
				snprintf(topic, sizeof(topic), "%s/dev/%s%06u/event", o.prefix, o.dev_prefix, o.dev_base);
			/* A resend of the same id is answered "duplicate": that is an answer too. */
			int n = snprintf(body, sizeof(body), "{\"id\":\"%s-p\",\"type\":\"heartbeat\"}", run_id);
			atomic_store(&sent_ns[PROBE_SEQ], now_ns());
			mosquitto_publish(pubs[0].mosq, NULL, topic, n, body, 1, false);
			uint64_t until = now_ns() + 1000000000ULL;
			while (now_ns() < until && !atomic_load(&recv_ns[PROBE_SEQ])) {
				uint64_t lm = now_ns();
				pump(pubs[0].mosq, -1, 10000000, &lm);
			}
		}
		atomic_store(&n_recv_unmatched, 0);
		atomic_store(&n_status_stored, 0);
		atomic_store(&n_status_duplicate, 0);
		atomic_store(&n_status_rejected, 0);
		atomic_store(&n_status_other, 0);
	}

	for (int i = 0; i < o.pubs; i++)
		atomic_store(&pubs[i].credit, o.window / o.pubs + (i < o.window % o.pubs));
	t_start = now_ns() + 20000000ULL;
	t0 = t_start + (uint64_t)(o.warmup * 1e9);
	t1 = t0 + (uint64_t)(o.duration * 1e9);
	for (int i = 0; i < o.pubs; i++)
		if (pthread_create(&pubs[i].thread, NULL, pub_thread, &pubs[i]))
			die("pthread_create failed");

	struct proc_sample before[MAX_PIDS], after[MAX_PIDS];
	double self_before, self_after;
	struct timespec ts;
	uint64_t now;
	while ((now = now_ns()) < t0) {
		uint64_t d = t0 - now;
		ts = (struct timespec){ (time_t)(d / 1000000000), (long)(d % 1000000000) };
		nanosleep(&ts, NULL);
	}
	uint64_t real0 = now_ns();
	for (int i = 0; i < o.n_pids; i++)
		before[i] = sample_pid(o.pid[i]);
	self_before = self_cpu_s();
	psi_before = psi_cpu_some_s();
	while ((now = now_ns()) < t1) {
		uint64_t d = t1 - now;
		ts = (struct timespec){ (time_t)(d / 1000000000), (long)(d % 1000000000) };
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < o.n_pids; i++)
		after[i] = sample_pid(o.pid[i]);
	self_after = self_cpu_s();
	psi_after = psi_cpu_some_s();
	double real_window = (double)(now_ns() - real0) / 1e9;
	atomic_store(&stop_sending, true);

	/* Drain: wait for what was sent inside the window, up to --drain s. */
	uint64_t dd = now_ns() + (uint64_t)(o.drain * 1e9);
	for (;;) {
		bool owed = atomic_load(&n_answered) < atomic_load(&n_sent) ||
		            (o.worker && atomic_load(&n_first_alerts) < atomic_load(&alarms_sent));
		if (!owed || now_ns() >= dd)
			break;
		ts = (struct timespec){ 0, 20000000 };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop_all, true);
	for (int i = 0; i < o.pubs; i++)
		pthread_join(pubs[i].thread, NULL);
	pthread_join(rxt, NULL);
	report(before, after, self_before, self_after, real_window);

	for (int i = 0; i < o.pubs; i++) {
		mosquitto_disconnect(pubs[i].mosq);
		mosquitto_destroy(pubs[i].mosq);
		close(pubs[i].efd);
	}
	mosquitto_disconnect(rx);
	mosquitto_destroy(rx);
	mosquitto_lib_cleanup();
	return 0;
}
