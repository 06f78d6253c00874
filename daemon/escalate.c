/* Escalation (SPEC 4): an open alarm alerts the workers of its policy's
 * steps, one step after another, until a person acknowledges it; it never
 * goes quiet by itself.
 *
 * Every unresolved alarm carries its schedule (step, round, next_at) and it
 * is saved with the alarm, so a restart resumes where it was and fires what
 * is overdue at once. One sd-event timer, armed at the earliest next_at,
 * drives all alarms. Alerts go out from memory: they never wait for the disk. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"
#include "webhook.h"

struct delivery {
	int64_t alarm;
	char worker[TC_DEVICE_ID_MAX + 1];
	struct manager *m;
};

static void arm(struct manager *m, int64_t at)
{
	m->esc_armed_at = at;
	sd_event_source_set_time(m->esc_timer, (uint64_t)(at > 0 ? at : 1) * 1000);
	sd_event_source_set_enabled(m->esc_timer, SD_EVENT_ONESHOT);
}

void escalate_schedule(struct manager *m, struct alarm *a)
{
	if (a->next_at && (m->esc_armed_at == 0 || a->next_at < m->esc_armed_at))
		arm(m, a->next_at);
}

static void rearm(struct manager *m)
{
	int64_t min = 0;
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->next_at && (!min || a->next_at < min))
			min = a->next_at;
	}
	m->esc_armed_at = 0;
	if (min)
		arm(m, min);
	else
		sd_event_source_set_enabled(m->esc_timer, SD_EVENT_OFF);
}

static void on_delivered(void *userdata, bool ok, int attempts, const char *detail)
{
	struct delivery *d = userdata;
	char text[300];
	snprintf(text, sizeof(text), "worker %s via webhook%s%s (%d %s)", d->worker, ok ? "" : ": ",
	         ok ? "" : detail, attempts, attempts == 1 ? "try" : "tries");
	/* The alarm may be resolved by now: its timeline takes the entry all the same. */
	store_write(d->m, ST_TIMELINE_INSERT, "iisss", d->alarm, tc_now_ms(),
	            ok ? "delivered" : "delivery_failed", "telecared", text);
	if (!ok)
		log_full(LOG_WARNING, NULL, d->alarm, d->worker,
		         "alarm %lld: webhook for worker %s failed: %s", (long long)d->alarm, d->worker,
		         detail);
	free(d);
}

/* One alert (SPEC 2.4) to one worker: MQTT always, the webhook when set. */
static void send_alert(struct manager *m, struct alarm *a, const char *worker, const char *body)
{
	char topic[512];
	struct worker *w = worker_get(m, worker);
	if (mqtt_topic(m, topic, sizeof(topic), "worker/%s/alert", worker) == 0)
		outbox_alert(m, alarm_class(a), topic, body, strlen(body), a->id, worker);
	if (!w || !w->webhook || !m->webhooks)
		return;
	struct delivery *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->alarm = a->id;
	d->m = m;
	snprintf(d->worker, sizeof(d->worker), "%s", worker);
	outbox_webhook(m, alarm_class(a), w->webhook, body, on_delivered, d);
}

static char *alert_body(struct manager *m, struct alarm *a)
{
	json_t *j = alarm_json(m, a);
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	json_decref(j);
	return s;
}

bool id_list_has(json_t *list, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (!strcmp(json_string_value(v), id))
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
		const char *team = tg->kind == TGT_ON_DUTY_RESIDENT_TEAM ? (r ? r->team : NULL) : tg->arg;
		bool need_duty = tg->kind != TGT_TEAM;
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

struct candidate {
	struct manager *m;
	struct alarm *a;
	int64_t now;
};

/* policy_next()'s question: whom does this step alert? Keeps the answer on
 * the alarm and records a step that alerts nobody. */
static bool step_has_targets(void *ctx, int step, int round)
{
	struct candidate *c = ctx;
	struct alarm *a = c->a;
	const struct policy *p = a->policy;
	json_decref(a->step_workers);
	json_decref(a->declined);
	a->step_workers = escalate_targets(c->m, a, &p->steps[step], c->now);
	a->declined = json_array();
	if (json_array_size(a->step_workers) > 0)
		return true;
	char detail[256];
	snprintf(detail, sizeof(detail), "step %d (round %d) of policy %s: nobody to alert", step + 1,
	         round + 1, p->name);
	alarm_timeline(c->m, a->id, c->now, "step_empty", "telecared", detail);
	log_full(LOG_ERR, a->device, a->id, NULL, "alarm %lld (device %s): %s", (long long)a->id,
	         a->device, detail);
	return false;
}

/* Fire the next step of an open alarm now. */
static void fire_step(struct manager *m, struct alarm *a, int64_t now)
{
	struct candidate c = { m, a, now };
	char detail[256];
	a->next_at = policy_next(a->policy, &a->step, &a->round, now, step_has_targets, &c);
	a->updated_at = now;

	char *body = alert_body(m, a);
	size_t i;
	json_t *v;
	json_array_foreach(a->step_workers, i, v) {
		const char *wid = json_string_value(v);
		struct worker *w = worker_get(m, wid);
		if (body)
			send_alert(m, a, wid, body);
		if (!id_list_has(a->alerted, wid))
			json_array_append_new(a->alerted, json_string(wid));
		snprintf(detail, sizeof(detail), "worker %s (%s) via mqtt%s, step %d", wid,
		         w ? w->name : "?", w && w->webhook ? " and webhook" : "", a->step + 1);
		/* "alerted" once the broker has it: now, or when it is back. */
		alarm_timeline(m, a->id, now, m->mqtt_connected ? "alerted" : "queued", "telecared", detail);
	}
	if (json_array_size(a->step_workers))
		log_full(LOG_INFO, a->device, a->id, NULL, "alarm %lld (device %s): step %d alerted %zu worker(s)",
		         (long long)a->id, a->device, a->step + 1, json_array_size(a->step_workers));
	free(body);
	alarm_save(m, a);
	publish_board(m, a);  /* the level changed; the device's state did not */
	escalate_schedule(m, a);
}

void escalate_start(struct manager *m, struct alarm *a, int64_t now)
{
	if (a->test)
		return;  /* SPEC 3: test alarms never alert on-duty workers */
	if (!a->policy)
		a->policy = policy_ref(policy_for(m->cfg, a->priority));
	a->step = -1;
	a->round = 0;
	fire_step(m, a, now);
}

void escalate_follow_up(struct manager *m, struct alarm *a, const char *skip)
{
	if (!a->alerted || json_array_size(a->alerted) == 0)
		return;
	char *body = alert_body(m, a);
	size_t i;
	json_t *v;
	json_array_foreach(a->alerted, i, v)
		if (body && (!skip || strcmp(json_string_value(v), skip)))
			send_alert(m, a, json_string_value(v), body);
	free(body);
}

/* SPEC 3: not resolved within ack_timeout of its acknowledgement: open again,
 * from the first step. */
static void reopen(struct manager *m, struct alarm *a, int64_t now)
{
	char detail[200], dur[32];
	tc_duration_format(a->policy ? a->policy->ack_timeout_ms : 0, dur, sizeof(dur));
	snprintf(detail, sizeof(detail), "not resolved within %s of acknowledgement by %s", dur,
	         a->acked_by ? a->acked_by : "?");
	alarm_timeline(m, a->id, now, "reopened", "telecared", detail);
	log_full(LOG_WARNING, a->device, a->id, NULL, "alarm %lld (device %s): re-opened: %s",
	         (long long)a->id, a->device, detail);
	a->state = ALARM_OPEN;
	free(a->acked_by);
	free(a->acked_by_id);
	a->acked_by = a->acked_by_id = NULL;
	a->acked_at = 0;
	escalate_follow_up(m, a, NULL);
	publish_alarm(m, a);
	a->step = -1;
	a->round = 0;
	fire_step(m, a, now);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	int64_t now = tc_now_ms();
	(void)s;
	(void)usec;
	/* Collect first: firing changes the alarms' schedules, not the set. */
	size_t n = 0;
	struct alarm **due = calloc(m->alarms.len + 1, sizeof(*due));
	void *v;
	for (size_t it = 0; due && map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->next_at && a->next_at <= now)
			due[n++] = a;
	}
	for (size_t i = 0; i < n; i++) {
		if (due[i]->state == ALARM_OPEN)
			fire_step(m, due[i], now);
		else if (due[i]->state == ALARM_ACKED)
			reopen(m, due[i], now);
	}
	free(due);
	rearm(m);
	store_maybe_flush(m);
	return 0;
}

int escalate_init(struct manager *m)
{
	int r = sd_event_add_time(m->event, &m->esc_timer, CLOCK_REALTIME, 1, 1000, on_tick, m);
	if (r < 0)
		return r;
	/* Alerts go before new input: a flood must not delay a due step. */
	sd_event_source_set_priority(m->esc_timer, SD_EVENT_PRIORITY_IMPORTANT);
	sd_event_source_set_enabled(m->esc_timer, SD_EVENT_OFF);
	r = webhooks_new(m->event, &m->webhooks);
	if (r < 0)
		log_error("webhooks disabled: %s", strerror(-r));

	/* Alarms loaded from the store resume their schedule; one that never
	 * fired a step (the daemon died right after opening it) starts now. */
	int64_t now = tc_now_ms();
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->test)
			continue;
		if (!a->policy)
			a->policy = policy_ref(policy_for(m->cfg, a->priority));
		if (!a->next_at)
			a->next_at = now;
	}
	rearm(m);
	return 0;
}

void escalate_free(struct manager *m)
{
	m->esc_timer = sd_event_source_disable_unref(m->esc_timer);
	if (m->webhooks)
		webhooks_free(m->webhooks);
	m->webhooks = NULL;
}
