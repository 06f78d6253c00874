/* Supervision (issue 4): a device registered with a heartbeat must be heard
 * within that interval plus a grace, or a technical alarm says it fell
 * silent; its battery is watched with hysteresis; many devices falling silent
 * together are one incident; and while the gateway cannot hear the broker it
 * blames nobody else.
 *
 * Watched devices sit in a binary min-heap by deadline (the device keeps its
 * index), so an event costs O(log n) and one sd-event timer, armed at the
 * earliest deadline, watches 100,000 devices. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define STORM_RING 4096   /* most devices a storm threshold may name */

/* ---- the heap ---- */

static void heap_set(struct manager *m, size_t i, struct device *d)
{
	m->sup_heap[i] = d;
	d->heap_index = i;
}

static void sift_up(struct manager *m, size_t i)
{
	struct device *d = m->sup_heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (m->sup_heap[parent]->deadline <= d->deadline)
			break;
		heap_set(m, i, m->sup_heap[parent]);
		i = parent;
	}
	heap_set(m, i, d);
}

static void sift_down(struct manager *m, size_t i)
{
	struct device *d = m->sup_heap[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		int64_t best = d->deadline;
		if (l < m->sup_len && m->sup_heap[l]->deadline < best)
			min = l, best = m->sup_heap[l]->deadline;
		if (r < m->sup_len && m->sup_heap[r]->deadline < best)
			min = r;
		if (min == i)
			break;
		heap_set(m, i, m->sup_heap[min]);
		i = min;
	}
	heap_set(m, i, d);
}

static bool in_heap(struct manager *m, struct device *d)
{
	return d->heap_index < m->sup_len && m->sup_heap[d->heap_index] == d;
}

static void heap_remove(struct manager *m, struct device *d)
{
	if (!in_heap(m, d))
		return;
	size_t i = d->heap_index;
	struct device *last = m->sup_heap[--m->sup_len];
	if (last != d) {
		heap_set(m, i, last);
		sift_down(m, i);
		sift_up(m, last->heap_index);
	}
	d->heap_index = SIZE_MAX;
}

static void heap_put(struct manager *m, struct device *d, int64_t deadline)
{
	d->deadline = deadline;
	if (in_heap(m, d)) {
		sift_down(m, d->heap_index);
		sift_up(m, d->heap_index);
		return;
	}
	if (m->sup_len == m->sup_cap) {
		size_t ncap = m->sup_cap ? m->sup_cap * 2 : 1024;
		struct device **n = realloc(m->sup_heap, ncap * sizeof(*n));
		if (!n) {
			log_full(LOG_CRIT, d->id, 0, NULL, "device %s: out of memory: not supervised", d->id);
			return;
		}
		m->sup_heap = n;
		m->sup_cap = ncap;
	}
	heap_set(m, m->sup_len++, d);
	sift_up(m, d->heap_index);
}

static void rearm(struct manager *m)
{
	if (m->sup_paused_at || m->sup_len == 0) {
		sd_event_source_set_enabled(m->sup_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(m->sup_timer, (uint64_t)m->sup_heap[0]->deadline * 1000);
	sd_event_source_set_enabled(m->sup_timer, SD_EVENT_ONESHOT);
}

/* ---- silence and storms ---- */

static void key_of(char *buf, size_t len, const char *device, enum tc_type t)
{
	snprintf(buf, len, "%s/%s", device, tc_type_name(t));
}

/* The devices that fell silent within the storm window, newest last. */
static size_t recent_silences(struct manager *m, int64_t now)
{
	size_t n = 0;
	for (size_t i = 0; i < STORM_RING; i++)
		if (m->storm_times[i] && now - m->storm_times[i] <= m->cfg->sup.storm_window_ms)
			n++;
	return n;
}

static void open_storm(struct manager *m, int64_t now, size_t count)
{
	char detail[512], dur[32];
	tc_duration_format(m->cfg->sup.storm_window_ms, dur, sizeof(dur));
	snprintf(detail, sizeof(detail), "%zu devices fell silent within %s: one incident, "
	         "per-device alarms folded into it", count, dur);
	struct alarm *storm = alarm_open_technical(m, "telecared", TC_T_CONNECTION_LOST,
	                                           "telecared/storm", detail, now);
	if (!storm)
		return;
	m->storm_alarm = storm->id;
	m->storm_silent = 0;
	/* Fold the per-device alarms of this window into the incident. */
	void *v;
	size_t n = 0;
	struct alarm **fold = calloc(m->alarms.len + 1, sizeof(*fold));
	for (size_t it = 0; fold && map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		struct device *d = device_get(m, a->device);
		if (a != storm && d && d->silent && a->technical && a->n_types &&
		    a->types[0] == TC_T_CONNECTION_LOST && now - a->opened_at <= m->cfg->sup.storm_window_ms)
			fold[n++] = a;
	}
	for (size_t i = 0; i < n; i++) {
		char note[128];
		snprintf(note, sizeof(note), "folded into storm alarm %lld", (long long)storm->id);
		alarm_timeline(m, storm->id, now, "joined", fold[i]->device, "connection_lost");
		alarm_resolve(m, fold[i], "folded", "telecared", note, now);
		m->storm_silent++;
	}
	free(fold);
}

static void went_silent(struct manager *m, struct device *d, int64_t now)
{
	char detail[256], silent[32], hb[32], grace[32];
	d->silent = true;
	d->deadline = 0;
	m->storm_times[m->storm_head] = now;
	m->storm_head = (m->storm_head + 1) % STORM_RING;

	if (m->storm_alarm && alarm_get(m, m->storm_alarm)) {
		/* A storm is on: this device is one more line in it, not an alarm. */
		alarm_timeline(m, m->storm_alarm, now, "joined", d->id, "connection_lost");
		m->storm_silent++;
		return;
	}
	m->storm_alarm = 0;
	tc_duration_format(d->last_seen ? now - d->last_seen : 0, silent, sizeof(silent));
	tc_duration_format(d->heartbeat_ms, hb, sizeof(hb));
	tc_duration_format(m->cfg->sup.grace_ms, grace, sizeof(grace));
	if (d->last_seen)
		snprintf(detail, sizeof(detail), "silent for %s (heartbeat %s + grace %s)", silent, hb, grace);
	else
		snprintf(detail, sizeof(detail), "never heard (heartbeat %s + grace %s)", hb, grace);
	char key[TC_DEVICE_ID_MAX + 32];
	key_of(key, sizeof(key), d->id, TC_T_CONNECTION_LOST);
	alarm_open_technical(m, d->id, TC_T_CONNECTION_LOST, key, detail, now);

	size_t recent = recent_silences(m, now);
	if (m->cfg->sup.storm_devices > 0 && recent >= (size_t)m->cfg->sup.storm_devices)
		open_storm(m, now, recent);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	int64_t now = tc_now_ms();
	(void)s;
	(void)usec;
	while (m->sup_len && m->sup_heap[0]->deadline <= now && !m->sup_paused_at) {
		struct device *d = m->sup_heap[0];
		heap_remove(m, d);
		went_silent(m, d, now);
	}
	rearm(m);
	store_maybe_flush(m);
	return 0;
}

void supervise_heard(struct manager *m, struct device *d, int64_t now)
{
	if (d->silent) {
		d->silent = false;
		char key[TC_DEVICE_ID_MAX + 32];
		key_of(key, sizeof(key), d->id, TC_T_CONNECTION_LOST);
		struct alarm *a = alarm_by_key(m, key);
		if (a) {
			alarm_timeline(m, a->id, now, "joined", d->id, "connection_restored");
			alarm_resolve(m, a, "restored", d->id, "heard again", now);
		}
		struct alarm *storm = m->storm_alarm ? alarm_get(m, m->storm_alarm) : NULL;
		if (storm && !a) {
			alarm_timeline(m, storm->id, now, "joined", d->id, "connection_restored");
			if (m->storm_silent > 0 && --m->storm_silent == 0) {
				alarm_resolve(m, storm, "restored", "telecared", "every device heard again", now);
				m->storm_alarm = 0;
			}
		}
	}
	if (d->heartbeat_ms > 0) {
		heap_put(m, d, now + d->heartbeat_ms + m->cfg->sup.grace_ms);
		if (d->heap_index == 0)
			rearm(m);
	}
}

void supervise_watch(struct manager *m, struct device *d, int64_t now)
{
	if (d->heartbeat_ms <= 0) {
		supervise_unwatch(m, d);
		return;
	}
	/* A full interval from now or from when it was last heard, whichever is
	 * later: the gateway does not blame a device for its own absence. */
	int64_t from = d->last_seen > now ? d->last_seen : now;
	heap_put(m, d, from + d->heartbeat_ms + m->cfg->sup.grace_ms);
	rearm(m);
}

void supervise_unwatch(struct manager *m, struct device *d)
{
	heap_remove(m, d);
	d->deadline = 0;
	rearm(m);
}

void supervise_battery(struct manager *m, struct device *d, int battery, int64_t now)
{
	char key[TC_DEVICE_ID_MAX + 32], detail[128];
	key_of(key, sizeof(key), d->id, TC_T_LOW_BATTERY);
	struct alarm *a = alarm_by_key(m, key);
	if (battery < m->cfg->sup.battery_low && !a) {
		snprintf(detail, sizeof(detail), "battery %d%% (below %d%%)", battery, m->cfg->sup.battery_low);
		alarm_open_technical(m, d->id, TC_T_LOW_BATTERY, key, detail, now);
	} else if (a && battery >= m->cfg->sup.battery_low + m->cfg->sup.battery_hysteresis) {
		snprintf(detail, sizeof(detail), "battery back to %d%%", battery);
		alarm_resolve(m, a, "restored", d->id, detail, now);
	}
}

/* ---- the gateway's own link ---- */

static int on_outage(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	char detail[300], since[TC_TIME_STRLEN];
	(void)s;
	(void)usec;
	tc_time_format(m->sup_paused_at, since, sizeof(since));
	snprintf(detail, sizeof(detail), "gateway disconnected from the broker %s:%d since %s: "
	         "devices cannot be heard", m->cfg->mqtt.host, m->cfg->mqtt.port, since);
	/* Escalated like any alarm: the MQTT alerts wait in the session, the
	 * webhooks go out now. */
	alarm_open_technical(m, "telecared", TC_T_CONNECTION_LOST, "telecared/broker", detail,
	                     tc_now_ms());
	store_maybe_flush(m);
	return 0;
}

void supervise_broker(struct manager *m, bool connected, int64_t now)
{
	if (!connected) {
		if (m->sup_paused_at)
			return;
		m->sup_paused_at = now;
		sd_event_source_set_time(m->outage_timer, (uint64_t)(now + m->cfg->sup.broker_outage_ms) * 1000);
		sd_event_source_set_enabled(m->outage_timer, SD_EVENT_ONESHOT);
		rearm(m);
		return;
	}
	if (!m->sup_paused_at)
		return;
	/* Deadlines move by the time we could not listen. The same shift for
	 * every device keeps the heap's order. */
	int64_t away = now - m->sup_paused_at;
	for (size_t i = 0; i < m->sup_len; i++)
		m->sup_heap[i]->deadline += away;
	m->sup_paused_at = 0;
	sd_event_source_set_enabled(m->outage_timer, SD_EVENT_OFF);
	struct alarm *a = alarm_by_key(m, "telecared/broker");
	if (a)
		alarm_resolve(m, a, "restored", "telecared", "connected to the broker again", now);
	rearm(m);
}

void supervise_storage(struct manager *m, bool ok, const char *error)
{
	int64_t now = tc_now_ms();
	char detail[400];
	if (!ok) {
		/* SPEC 4: escalation goes on from memory; this alarm tells people
		 * that receipts and the record are held back. */
		snprintf(detail, sizeof(detail), "database writes failing (%s): alarms go on from memory, "
		         "receipts wait until the writes succeed", error ? error : "?");
		alarm_open_technical(m, "telecared", TC_T_STORAGE_FAILED, "telecared/storage", detail, now);
		return;
	}
	struct alarm *a = alarm_by_key(m, "telecared/storage");
	if (a)
		alarm_resolve(m, a, "restored", "telecared", "database writes succeed again", now);
}

int supervise_init(struct manager *m)
{
	int r = sd_event_add_time(m->event, &m->sup_timer, CLOCK_REALTIME, 1, 1000, on_deadline, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->sup_timer, SD_EVENT_OFF);
	r = sd_event_add_time(m->event, &m->outage_timer, CLOCK_REALTIME, 1, 1000, on_outage, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->outage_timer, SD_EVENT_OFF);
	m->storm_times = calloc(STORM_RING, sizeof(*m->storm_times));
	if (!m->storm_times)
		return -ENOMEM;
	/* An open storm incident from before a restart goes on collecting. */
	struct alarm *storm = alarm_by_key(m, "telecared/storm");
	m->storm_alarm = storm ? storm->id : 0;
	int64_t now = tc_now_ms();
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		char key[TC_DEVICE_ID_MAX + 32];
		d->heap_index = SIZE_MAX;
		key_of(key, sizeof(key), d->id, TC_T_CONNECTION_LOST);
		d->silent = alarm_by_key(m, key) != NULL;  /* still silent as far as we know */
		if (d->heartbeat_ms > 0 && !d->silent)
			supervise_watch(m, d, now);
	}
	/* Not connected yet: listen first, then judge. */
	supervise_broker(m, false, now);
	return 0;
}

void supervise_free(struct manager *m)
{
	m->sup_timer = sd_event_source_disable_unref(m->sup_timer);
	m->outage_timer = sd_event_source_disable_unref(m->outage_timer);
	free(m->sup_heap);
	m->sup_heap = NULL;
	m->sup_len = m->sup_cap = 0;
	free(m->storm_times);
	m->storm_times = NULL;
}
