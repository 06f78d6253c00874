/* Supervision (issue 4): a device registered with a heartbeat must be heard
 * within that interval plus a grace, or a technical alarm says it fell
 * silent; its battery is watched with hysteresis; many devices falling silent
 * together are one mass incident (mass.c, the class connection_lost); and
 * while the gateway cannot hear the broker it blames nobody else.
 *
 * Watched devices sit in a binary min-heap by deadline (the device keeps its
 * index), so an event costs O(log n) and one sd-event timer, armed at the
 * earliest deadline, watches 100,000 devices. Deadlines are boottime ms: a
 * step of the wall clock does not make every device look silent. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define SILENT_SLICE 256  /* devices judged silent per loop pass at most */

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
	int r;
	if (!m->sup_timer)
		return;
	if (m->sup_paused_at || m->sup_len == 0) {
		r = sd_event_source_set_enabled(m->sup_timer, SD_EVENT_OFF);
	} else {
		r = sd_event_source_set_time(m->sup_timer, (uint64_t)m->sup_heap[0]->deadline * 1000);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->sup_timer, SD_EVENT_ONESHOT);
	}
	if (r < 0)
		log_full(LOG_CRIT, NULL, 0, NULL, "supervision: cannot arm the timer: %s", strerror(-r));
}

/* ---- silence ---- */

static void key_of(char *buf, size_t len, const char *device, enum tc_type t)
{
	snprintf(buf, len, "%s/%s", device, tc_type_name(t));
}

static void went_silent(struct manager *m, struct device *d, int64_t wall)
{
	char detail[256], silent[32], hb[32], grace[32];
	d->silent = true;
	d->deadline = 0;
	tc_duration_format(d->last_seen ? wall - d->last_seen : 0, silent, sizeof(silent));
	tc_duration_format(d->heartbeat_ms, hb, sizeof(hb));
	tc_duration_format(m->cfg->sup.grace_ms, grace, sizeof(grace));
	if (d->last_seen)
		snprintf(detail, sizeof(detail), "silent for %s (heartbeat %s + grace %s)", silent, hb, grace);
	else
		snprintf(detail, sizeof(detail), "never heard (heartbeat %s + grace %s)", hb, grace);
	/* Many at once are one mass incident: alarm_raise folds them. */
	alarm_raise(m, d->id, TC_T_CONNECTION_LOST, NULL, detail);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	int64_t now = tc_mono_ms(), wall = tc_now_ms();
	(void)s;
	(void)usec;
	/* A slice at a time: 20,000 devices silent at once must not stall the
	 * loop; the timer is due again at once for the rest. */
	for (size_t n = 0; n < SILENT_SLICE && m->sup_len && m->sup_heap[0]->deadline <= now &&
	                   !m->sup_paused_at; n++) {
		struct device *d = m->sup_heap[0];
		heap_remove(m, d);
		went_silent(m, d, wall);
	}
	rearm(m);
	store_maybe_flush(m);
	return 0;
}

void supervise_heard(struct manager *m, struct device *d)
{
	if (d->silent) {
		d->silent = false;
		char key[TC_DEVICE_ID_MAX + 32];
		key_of(key, sizeof(key), d->id, TC_T_CONNECTION_LOST);
		struct alarm *a = alarm_by_key(m, key);
		/* A member of a silence incident: its restoral is recorded there. */
		mass_restore(m, d->id, TC_T_CONNECTION_LOST);
		if (a) {
			alarm_do(m, a, &(struct life_event){ .kind = LIFE_RESTORE, .device = d->id,
			                                     .type = TC_T_CONNECTION_RESTORED,
			                                     .detail = "heard again" }, NULL, 0);
		}
	}
	if (d->heartbeat_ms > 0) {
		heap_put(m, d, tc_mono_ms() + d->heartbeat_ms + m->cfg->sup.grace_ms);
		if (d->heap_index == 0)
			rearm(m);
	}
}

void supervise_watch(struct manager *m, struct device *d)
{
	if (d->heartbeat_ms <= 0) {
		supervise_unwatch(m, d);
		return;
	}
	/* A full interval from now: the gateway does not blame a device for
	 * its own absence, nor for an alarm a person closed. */
	heap_put(m, d, tc_mono_ms() + d->heartbeat_ms + m->cfg->sup.grace_ms);
	rearm(m);
}

void supervise_unwatch(struct manager *m, struct device *d)
{
	heap_remove(m, d);
	d->deadline = 0;
	rearm(m);
}

void supervise_battery(struct manager *m, struct device *d, int battery)
{
	char key[TC_DEVICE_ID_MAX + 32], detail[128];
	key_of(key, sizeof(key), d->id, TC_T_LOW_BATTERY);
	struct alarm *a = alarm_by_key(m, key);
	if (battery < m->cfg->sup.battery_low && !a) {
		snprintf(detail, sizeof(detail), "battery %d%% (below %d%%)", battery, m->cfg->sup.battery_low);
		alarm_raise(m, d->id, TC_T_LOW_BATTERY, NULL, detail);
	} else if (battery >= m->cfg->sup.battery_low + m->cfg->sup.battery_hysteresis) {
		snprintf(detail, sizeof(detail), "battery back to %d%%", battery);
		mass_restore(m, d->id, TC_T_LOW_BATTERY);
		if (a)
			alarm_system_resolve(m, a, "restored", detail);
	}
}

/* ---- the gateway's own link ---- */

static int on_outage(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	char detail[300], since[TC_TIME_STRLEN];
	(void)s;
	(void)usec;
	tc_time_format(tc_now_ms() - (tc_mono_ms() - m->sup_paused_at), since, sizeof(since));
	snprintf(detail, sizeof(detail), "gateway disconnected from the broker %s:%d since %s: "
	         "devices cannot be heard", m->cfg->mqtt.host, m->cfg->mqtt.port, since);
	/* Escalated like any alarm: the MQTT alerts wait in the session, the
	 * webhooks go out now. */
	alarm_raise(m, "telecared", TC_T_CONNECTION_LOST, "telecared/broker", detail);
	store_maybe_flush(m);
	return 0;
}

void supervise_broker(struct manager *m, bool connected)
{
	int64_t now = tc_mono_ms();
	if (!connected) {
		if (m->sup_paused_at)
			return;
		m->sup_paused_at = now;
		int r = sd_event_source_set_time(m->outage_timer,
		                                 (uint64_t)(now + m->cfg->sup.broker_outage_ms) * 1000);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->outage_timer, SD_EVENT_ONESHOT);
		if (r < 0)
			log_full(LOG_CRIT, NULL, 0, NULL, "supervision: cannot arm the broker outage timer: %s",
			         strerror(-r));
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
		alarm_system_resolve(m, a, "restored", "connected to the broker again");
	rearm(m);
}

void supervise_storage(struct manager *m, bool ok, const char *error)
{
	char detail[400];
	if (!ok) {
		/* SPEC 4: escalation goes on from memory; this alarm tells people
		 * that receipts and the record are held back. */
		snprintf(detail, sizeof(detail), "database writes failing (%s): alarms go on from memory, "
		         "receipts wait until the writes succeed", error ? error : "?");
		alarm_raise(m, "telecared", TC_T_STORAGE_FAILED, "telecared/storage", detail);
		return;
	}
	struct alarm *a = alarm_by_key(m, "telecared/storage");
	if (a)
		alarm_system_resolve(m, a, "restored", "database writes succeed again");
}

int supervise_init(struct manager *m)
{
	int r = sd_event_add_time(m->event, &m->sup_timer, CLOCK_BOOTTIME, 1, 1000, on_deadline, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->sup_timer, SD_EVENT_OFF);
	sd_event_source_set_description(m->sup_timer, "supervision");
	r = sd_event_add_time(m->event, &m->outage_timer, CLOCK_BOOTTIME, 1, 1000, on_outage, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->outage_timer, SD_EVENT_OFF);
	sd_event_source_set_description(m->outage_timer, "broker-outage");
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		char key[TC_DEVICE_ID_MAX + 32];
		d->heap_index = SIZE_MAX;
		key_of(key, sizeof(key), d->id, TC_T_CONNECTION_LOST);
		/* Still silent as far as we know: its own alarm, or an open silence
		 * incident it is an unrestored member of. */
		char mkey[TC_DEVICE_ID_MAX + 40];
		snprintf(mkey, sizeof(mkey), "connection_lost\n%s", d->id);
		d->silent = alarm_by_key(m, key) != NULL || map_get(&m->mass_member_of, mkey) != NULL;
		if (d->heartbeat_ms > 0 && !d->silent)
			supervise_watch(m, d);
	}
	/* Not connected yet: listen first, then judge. */
	supervise_broker(m, false);
	return 0;
}

void supervise_free(struct manager *m)
{
	m->sup_timer = sd_event_source_disable_unref(m->sup_timer);
	m->outage_timer = sd_event_source_disable_unref(m->outage_timer);
	free(m->sup_heap);
	m->sup_heap = NULL;
	m->sup_len = m->sup_cap = 0;
}
