/* Escalation (SPEC 4): an open alarm alerts the workers of its policy's
 * steps, one after another, until a person acknowledges it; it never goes
 * quiet by itself. What a step does is life.c's; when it is due and whom it
 * reaches is here.
 *
 * Due times are boottime milliseconds (a step of the wall clock neither fires
 * every step at once nor holds them back); the alarm's row keeps wall time
 * for a restart. Alarms wait in a min-heap by due time (esc_sched); those due
 * move to a second heap ordered by priority, then due time (esc_ready), and
 * are fired a slice at a time, so that 20,000 alarms due at once after a
 * restart neither stall the loop nor delay the fall that is due among them.
 * One boottime timer, armed at the earliest due time, drives all of them. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"
#include "webhook.h"

#define MOVE_SLICE 4096   /* due alarms moved to the ready heap per pass */
#define FIRE_SLICE 64     /* steps fired per pass; the rest on the next */

struct delivery {
	int64_t alarm;
	char worker[TC_DEVICE_ID_MAX + 1];
	struct manager *m;
};

/* ---- the two heaps (the alarm keeps its index; it is in at most one) ---- */

typedef bool (*before_fn)(const struct alarm *x, const struct alarm *y);

static bool by_due(const struct alarm *x, const struct alarm *y)
{
	return x->next_at < y->next_at;
}

static bool by_priority(const struct alarm *x, const struct alarm *y)
{
	return x->priority != y->priority ? x->priority < y->priority : x->next_at < y->next_at;
}

struct heap {
	struct alarm ***v;
	size_t *len, *cap;
	before_fn before;
};

static struct heap sched(struct manager *m)
{
	return (struct heap){ &m->esc_sched, &m->esc_sched_len, &m->esc_sched_cap, by_due };
}

static struct heap ready(struct manager *m)
{
	return (struct heap){ &m->esc_ready, &m->esc_ready_len, &m->esc_ready_cap, by_priority };
}

static void heap_set(struct heap h, size_t i, struct alarm *a)
{
	(*h.v)[i] = a;
	a->sched_index = i;
}

static void sift_up(struct heap h, size_t i)
{
	struct alarm *a = (*h.v)[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!h.before(a, (*h.v)[parent]))
			break;
		heap_set(h, i, (*h.v)[parent]);
		i = parent;
	}
	heap_set(h, i, a);
}

static void sift_down(struct heap h, size_t i)
{
	struct alarm *a = (*h.v)[i];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = i;
		struct alarm *b = a;
		if (l < *h.len && h.before((*h.v)[l], b))
			best = l, b = (*h.v)[l];
		if (r < *h.len && h.before((*h.v)[r], b))
			best = r;
		if (best == i)
			break;
		heap_set(h, i, (*h.v)[best]);
		i = best;
	}
	heap_set(h, i, a);
}

static bool heap_has(struct heap h, const struct alarm *a)
{
	return a->sched_index < *h.len && (*h.v)[a->sched_index] == a;
}

static int heap_push(struct heap h, struct alarm *a)
{
	if (*h.len == *h.cap) {
		size_t ncap = *h.cap ? *h.cap * 2 : 256;
		struct alarm **n = realloc(*h.v, ncap * sizeof(*n));
		if (!n)
			return -1;
		*h.v = n;
		*h.cap = ncap;
	}
	heap_set(h, (*h.len)++, a);
	sift_up(h, a->sched_index);
	return 0;
}

static void heap_remove(struct heap h, struct alarm *a)
{
	if (!heap_has(h, a))
		return;
	size_t i = a->sched_index;
	struct alarm *last = (*h.v)[--*h.len];
	if (last != a) {
		heap_set(h, i, last);
		sift_down(h, i);
		sift_up(h, last->sched_index);
	}
	a->sched_index = SIZE_MAX;
}

static struct alarm *heap_pop(struct heap h)
{
	if (!*h.len)
		return NULL;
	struct alarm *a = (*h.v)[0];
	heap_remove(h, a);
	return a;
}

/* ---- the timer ---- */

static void rearm(struct manager *m)
{
	if (!m->esc_timer)
		return;
	int r;
	if (m->esc_ready_len)
		r = sd_event_source_set_enabled(m->esc_more, SD_EVENT_ONESHOT);
	else
		r = 0;
	if (r >= 0 && m->esc_sched_len) {
		r = sd_event_source_set_time(m->esc_timer, (uint64_t)m->esc_sched[0]->next_at * 1000);
		if (r >= 0)
			r = sd_event_source_set_enabled(m->esc_timer, SD_EVENT_ONESHOT);
	} else if (r >= 0) {
		r = sd_event_source_set_enabled(m->esc_timer, SD_EVENT_OFF);
	}
	if (r < 0)
		log_full(LOG_CRIT, NULL, 0, NULL, "escalation: cannot arm the timer: %s", strerror(-r));
}

void escalate_unschedule(struct manager *m, struct alarm *a)
{
	heap_remove(sched(m), a);
	heap_remove(ready(m), a);
}

void escalate_schedule(struct manager *m, struct alarm *a)
{
	bool was_first = m->esc_sched_len && m->esc_sched[0] == a;
	escalate_unschedule(m, a);
	if (a->next_at && a->state != ALARM_RESOLVED && !a->test && heap_push(sched(m), a) < 0)
		log_full(LOG_CRIT, a->device, a->id, NULL, "alarm %lld: out of memory scheduling its next "
		         "step; it is stored, restart to reload it", (long long)a->id);
	if (was_first || (m->esc_sched_len && m->esc_sched[0] == a))
		rearm(m);
}

/* One slice: move what is due, fire the most urgent of it. */
static void run(struct manager *m)
{
	int64_t now = tc_mono_ms();
	for (size_t i = 0; i < MOVE_SLICE && m->esc_sched_len && m->esc_sched[0]->next_at <= now; i++) {
		struct alarm *a = heap_pop(sched(m));
		if (heap_push(ready(m), a) < 0)
			heap_push(sched(m), a);   /* out of memory: try again next pass */
	}
	for (size_t i = 0; i < FIRE_SLICE && m->esc_ready_len; i++) {
		struct alarm *a = heap_pop(ready(m));
		/* alarm_do reschedules (or frees) it. */
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_STEP }, NULL, 0);
	}
	if (m->esc_sched_len && m->esc_sched[0]->next_at <= now)
		sd_event_source_set_enabled(m->esc_more, SD_EVENT_ONESHOT);
	rearm(m);
	store_maybe_flush(m);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	run(userdata);
	return 0;
}

static int on_more(sd_event_source *s, void *userdata)
{
	(void)s;
	run(userdata);
	return 0;
}

/* ---- whom a step alerts ---- */

bool id_list_has(json_t *list, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), id))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *escalate_targets(struct manager *m, const struct alarm *a, const struct step *st, int64_t t)
{
	json_t *out = json_array();
	const char **ids = calloc(m->workers.len + 1, sizeof(*ids));
	size_t n = 0;
	const char *k;
	for (size_t it = 0; ids && map_next(&m->workers, &it, &k, NULL);)
		ids[n++] = k;
	if (ids)
		qsort(ids, n, sizeof(*ids), cmp_str);  /* a stable order: alerts are reproducible */

	struct resident *r = a->resident_id ? resident_get(m, a->resident_id) : NULL;
	for (int ti = 0; ti < st->n_targets; ti++) {
		const struct target *tg = &st->targets[ti];
		if (tg->kind == TGT_WORKER) {
			if (worker_get(m, tg->arg) && !id_list_has(out, tg->arg))
				json_array_append_new(out, json_string(tg->arg));
			continue;
		}
		/* on_duty:@team without a team (an unknown device, a resident with
		 * none) means everyone on duty: somebody must hear it. */
		const char *team = tg->kind == TGT_ON_DUTY_RESIDENT_TEAM ? (r ? r->team : NULL)
		                   : tg->kind == TGT_EVERYONE ? NULL : tg->arg;
		bool need_duty = tg->kind != TGT_TEAM && tg->kind != TGT_EVERYONE;
		for (size_t i = 0; i < n; i++) {
			struct worker *w = worker_get(m, ids[i]);
			if (team && !worker_in_team(w, team))
				continue;
			if (need_duty && !worker_on_duty(m, w->id, t))
				continue;
			if (!id_list_has(out, w->id))
				json_array_append_new(out, json_string(w->id));
		}
	}
	free(ids);
	return out;
}

static json_t *targets(void *ctx, const struct alarm *a, const struct step *st, int64_t wall)
{
	return escalate_targets(ctx, a, st, wall);
}

void escalate_env(struct manager *m, struct life_env *env)
{
	*env = (struct life_env){ .wall = tc_now_ms(), .mono = tc_mono_ms(),
	                          .hold_ms = m->cfg->mass.hold_ms, .targets = targets, .ctx = m };
}

/* ---- sending ---- */

static void on_tried(void *userdata, int attempt, const char *detail, bool retry)
{
	struct delivery *d = userdata;
	char text[400];
	/* SPEC 3: each failed try is its own row, written when it fails. */
	snprintf(text, sizeof(text), "worker %s via webhook: try %d failed: %s%s", d->worker, attempt,
	         detail, retry ? "; trying again" : "; giving up");
	alarm_timeline(d->m, d->alarm, tc_now_ms(), TL_DELIVERY_FAILED, "telecared", text);
	log_full(LOG_WARNING, NULL, d->alarm, d->worker, "alarm %lld: webhook for worker %s: try %d "
	         "failed: %s", (long long)d->alarm, d->worker, attempt, detail);
}

static void on_delivered(void *userdata, bool ok, int attempts, const char *detail)
{
	struct delivery *d = userdata;
	char text[400];
	/* The alarm may be resolved by now: its timeline takes the entry all the same. */
	if (ok) {
		snprintf(text, sizeof(text), "worker %s via webhook (%d %s)", d->worker, attempts,
		         attempts == 1 ? "try" : "tries");
		alarm_timeline(d->m, d->alarm, tc_now_ms(), TL_DELIVERED, "telecared", text);
	} else if (attempts == 0) {
		/* Never tried (stopping, webhooks disabled): nothing wrote a row yet. */
		snprintf(text, sizeof(text), "worker %s via webhook: %s", d->worker, detail);
		alarm_timeline(d->m, d->alarm, tc_now_ms(), TL_DELIVERY_FAILED, "telecared", text);
	}
	free(d);
}

/* One message (SPEC 2.4) to one worker: MQTT always, the webhook when set. */
static void send_one(struct manager *m, struct alarm *a, const char *worker, const char *body,
                     enum ob_class cls, bool step)
{
	char topic[512];
	struct worker *w = worker_get(m, worker);
	if (mqtt_topic(m, topic, sizeof(topic), "worker/%s/alert", worker) == 0) {
		if (step)
			outbox_alert(m, cls, topic, body, strlen(body), a->id, worker);
		else
			outbox_publish(m, cls, topic, body, strlen(body), false);
	}
	if (!w || !w->webhook)
		return;
	struct delivery *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->alarm = a->id;
	d->m = m;
	snprintf(d->worker, sizeof(d->worker), "%s", worker);
	outbox_webhook(m, cls, w->webhook, body, on_delivered, on_tried, d);
}

static char *alert_body(struct manager *m, struct alarm *a)
{
	json_t *j = alarm_json(m, a);
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	return s;
}

void escalate_alert(struct manager *m, struct alarm *a, json_t *workers)
{
	char *body = alert_body(m, a);
	int64_t now = tc_now_ms();
	size_t i;
	json_t *v;
	json_array_foreach(workers, i, v) {
		const char *wid = json_string_value(v);
		struct worker *w = worker_get(m, wid);
		char *detail = NULL;
		if (body)
			send_one(m, a, wid, body, alarm_class(a), true);
		if (asprintf(&detail, "worker %s (%s) via mqtt%s, step %d", wid, w ? w->name : "?",
		             w && w->webhook ? " and webhook" : "", a->step + 1) < 0)
			detail = NULL;
		/* "alerted" once the broker has it: now, or when it is back. */
		alarm_timeline(m, a->id, now, m->mqtt_connected ? TL_ALERTED : TL_QUEUED, "telecared",
		               detail);
		free(detail);
	}
	if (json_array_size(workers))
		log_full(LOG_INFO, a->device, a->id, NULL, "alarm %lld (device %s): step %d alerted %zu "
		         "worker(s)", (long long)a->id, a->device, a->step + 1, json_array_size(workers));
	free(body);
}

void escalate_follow_up(struct manager *m, struct alarm *a, const char *skip, json_t *except)
{
	if (!a->alerted || json_array_size(a->alerted) == 0)
		return;
	char *body = alert_body(m, a);
	size_t i;
	json_t *v;
	json_array_foreach(a->alerted, i, v) {
		const char *wid = json_string_value(v);
		if (!body || (skip && !strcmp(wid, skip)) || (except && id_list_has(except, wid)))
			continue;
		send_one(m, a, wid, body, OB_LOW, false);   /* SPEC 4.1: follow-ups go last */
	}
	free(body);
}

/* ---- start ---- */

int escalate_init(struct manager *m)
{
	int r = sd_event_add_time(m->event, &m->esc_timer, CLOCK_BOOTTIME, 1, 1000, on_tick, m);
	if (r < 0)
		return r;
	/* A due step goes before new input: a flood must not delay it. */
	sd_event_source_set_priority(m->esc_timer, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_enabled(m->esc_timer, SD_EVENT_OFF);
	sd_event_source_set_description(m->esc_timer, "escalation");
	/* What a slice left over waits its turn with the other sources. */
	r = sd_event_add_defer(m->event, &m->esc_more, on_more, m);
	if (r < 0)
		return r;
	sd_event_source_set_enabled(m->esc_more, SD_EVENT_OFF);
	sd_event_source_set_description(m->esc_more, "escalation-more");
	r = webhooks_new(m->event, &m->webhooks);
	if (r < 0)
		log_error("webhooks disabled: %s", strerror(-r));

	/* Alarms loaded from the store resume their schedule; one that never
	 * fired a step (the daemon died right after opening it) starts now. */
	int64_t now = tc_mono_ms();
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->test)
			continue;
		if (!a->policy)
			a->policy = policy_ref(policy_for(m->cfg, a->priority));
		if (!a->next_at)
			a->next_at = now;
		escalate_schedule(m, a);
	}
	rearm(m);
	return 0;
}

void escalate_free(struct manager *m)
{
	m->esc_timer = sd_event_source_disable_unref(m->esc_timer);
	m->esc_more = sd_event_source_disable_unref(m->esc_more);
	if (m->webhooks)
		webhooks_free(m->webhooks);
	m->webhooks = NULL;
	free(m->esc_sched);
	free(m->esc_ready);
	m->esc_sched = m->esc_ready = NULL;
	m->esc_sched_len = m->esc_ready_len = m->esc_sched_cap = m->esc_ready_cap = 0;
}
