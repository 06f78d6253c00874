/* Alarms (SPEC 3): the shell around life.c. Unresolved alarms live in memory
 * (m->alarms, m->open_by_key); every change is one transition of life.c whose
 * effects are applied here, by one function, in one order: timeline rows,
 * the alarm's row, the device's state and the board, alerts, follow-ups, the
 * schedule, the gateway's own alarms, supervision, the log, and last leaving
 * memory. Test alarms never stay open. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define BOARD_SLICE 1000   /* board summaries built per loop pass at most */

static const char *state_names[] = { "open", "acknowledged", "resolved" };

const char *alarm_state_name(enum alarm_state s)
{
	return state_names[s];
}

int alarm_state_from_name(const char *s)
{
	for (int i = 0; s && i < 3; i++)
		if (strcmp(state_names[i], s) == 0)
			return i;
	return -1;
}

struct alarm *alarm_get(struct manager *m, int64_t id)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)id);
	return map_get(&m->alarms, key);
}

struct alarm *alarm_by_key(struct manager *m, const char *key)
{
	return map_get(&m->open_by_key, key);
}

void alarm_timeline(struct manager *m, int64_t alarm, int64_t at, enum tl_what what,
                    const char *actor, const char *detail)
{
	store_write(m, ST_TIMELINE_INSERT, "iisss", alarm, at, tl_name(what), actor, detail);
	http_timeline(m, alarm, at, tl_name(what), actor, detail);
}

static json_t *types_json(const struct alarm *a)
{
	json_t *t = json_array();
	for (int i = 0; i < a->n_types; i++)
		json_array_append_new(t, json_string(tc_type_name((enum tc_type)a->types[i])));
	return t;
}

void alarm_save(struct manager *m, struct alarm *a)
{
	json_t *types = types_json(a);
	json_t *pdef = a->policy ? policy_json(a->policy) : NULL;
	json_t *esc = json_pack("{s:O, s:O, s:O}", "alerted", a->alerted, "step", a->step_workers,
	                        "declined", a->declined);
	json_t *inc = a->incident ? json_pack("{s:s}", "class", a->incident->cls) : NULL;
	/* Due times run on boottime in memory; the row keeps wall time, which
	 * is what a restart (a new boot, perhaps) can use. */
	int64_t next_wall = a->next_at ? tc_now_ms() + (a->next_at - tc_mono_ms()) : 0;
	store_write(m, ST_ALARM_UPSERT, "isssijsiiijsttststiijjstj", a->id, a->device, a->resident_id,
	            a->key ? a->key : "", (int64_t)a->priority, types, alarm_state_name(a->state),
	            (int64_t)a->test, (int64_t)a->technical, (int64_t)a->step, a->loc,
	            a->policy ? a->policy->name : NULL, a->opened_at, a->acked_at, a->acked_by,
	            a->resolved_at, a->outcome, a->updated_at, (int64_t)a->round, next_wall, pdef,
	            esc, a->acked_by_id, a->first_ack_at, inc);
	json_decref(types);
	json_decref(pdef);
	json_decref(esc);
	json_decref(inc);
}

/* Keep an unresolved alarm findable by id and by its device slot. */
static int track(struct manager *m, struct alarm *a)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)a->id);
	if (map_put(&m->alarms, key, a) < 0 || map_put(&m->open_by_key, a->key, a) < 0) {
		map_del(&m->alarms, key);
		log_full(LOG_CRIT, a->device, a->id, NULL,
		         "alarm %lld: out of memory tracking it; it is stored, restart to reload it",
		         (long long)a->id);
		return -1;
	}
	return 0;
}

static void untrack(struct manager *m, struct alarm *a)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)a->id);
	map_del(&m->alarms, key);
	if (map_get(&m->open_by_key, a->key) == a)
		map_del(&m->open_by_key, a->key);
}

void alarm_track(struct manager *m, struct alarm *a)
{
	if (!a->alerted)
		a->alerted = json_array();
	if (!a->step_workers)
		a->step_workers = json_array();
	if (!a->declined)
		a->declined = json_array();
	if (!a->key && asprintf(&a->key, "%s/care", a->device) < 0)
		a->key = NULL;
	/* The row says when in wall time; from now on it is due in boottime. */
	if (a->next_at)
		a->next_at = tc_mono_ms() + (a->next_at - tc_now_ms());
	a->sched_index = SIZE_MAX;
	if (!a->key || track(m, a) < 0)
		alarm_free(a);
}

void alarm_free(struct alarm *a)
{
	if (!a)
		return;
	free(a->resident_id);
	free(a->key);
	json_decref(a->loc);
	free(a->acked_by);
	free(a->acked_by_id);
	free(a->outcome);
	policy_unref(a->policy);
	json_decref(a->alerted);
	json_decref(a->step_workers);
	json_decref(a->declined);
	mass_incident_free(a->incident);
	free(a);
}

void alarms_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);)
		alarm_free(v);
	map_free(&m->alarms);
	map_free(&m->open_by_key);
	m->board_defer = sd_event_source_disable_unref(m->board_defer);
	free(m->board_dirty);
	m->board_dirty = NULL;
	m->n_board_dirty = m->cap_board_dirty = 0;
}

/* ---- the board, once per loop pass ---- */

static int on_board(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	size_t n = m->n_board_dirty < BOARD_SLICE ? m->n_board_dirty : BOARD_SLICE;
	for (size_t i = 0; i < n; i++) {
		struct alarm *a = alarm_get(m, m->board_dirty[i]);
		if (a && a->board_dirty) {
			a->board_dirty = false;
			publish_board(m, a);
		}
	}
	memmove(m->board_dirty, m->board_dirty + n, (m->n_board_dirty - n) * sizeof(*m->board_dirty));
	m->n_board_dirty -= n;
	if (m->n_board_dirty)
		sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
	return 0;
}

void alarm_board_later(struct manager *m, struct alarm *a)
{
	if (a->board_dirty)
		return;
	if (!m->board_defer) {
		if (sd_event_add_defer(m->event, &m->board_defer, on_board, m) < 0) {
			publish_board(m, a);
			return;
		}
		sd_event_source_set_description(m->board_defer, "board");
	}
	if (m->n_board_dirty == m->cap_board_dirty) {
		size_t ncap = m->cap_board_dirty ? m->cap_board_dirty * 2 : 256;
		int64_t *n = realloc(m->board_dirty, ncap * sizeof(*n));
		if (!n) {
			publish_board(m, a);
			return;
		}
		m->board_dirty = n;
		m->cap_board_dirty = ncap;
	}
	m->board_dirty[m->n_board_dirty++] = a->id;
	a->board_dirty = true;
	sd_event_source_set_enabled(m->board_defer, SD_EVENT_ONESHOT);
}

/* ---- applying a transition ---- */

/* SPEC 10 of issue 10: an alarm whose every step names nobody raises the
 * gateway's own alarm, sent to every registered worker (on duty or not). */
static void nobody_to_alert(struct manager *m, const struct alarm *a)
{
	char detail[160];
	/* With no worker registered at all there is nobody to tell: the board
	 * shows the alarm, and a gateway being set up is not paged about it. */
	if (a == m->nobody || m->workers.len == 0 ||
	    (m->nobody && alarm_get(m, m->nobody->id) != m->nobody))
		return;
	snprintf(detail, sizeof(detail), "nobody to alert for alarm %lld (device %s): no step of "
	         "its policy names anyone now", (long long)a->id, a->device);
	if (m->nobody) {
		alarm_timeline(m, m->nobody->id, tc_now_ms(), TL_JOINED, a->device, detail);
		return;
	}
	m->nobody = alarm_raise(m, "telecared", TC_T_NOBODY_TO_ALERT, "telecared/nobody", detail);
}

static void apply(struct manager *m, struct alarm *a, struct effects *fx)
{
	int64_t wall = tc_now_ms();
	for (size_t i = 0; i < fx->n_rows; i++)
		alarm_timeline(m, a->id, wall, fx->rows[i].what, fx->rows[i].actor, fx->rows[i].detail);
	if (fx->save)
		alarm_save(m, a);
	if (fx->publish_state)
		publish_state(m, a);
	if (fx->publish_board) {
		if (a->state == ALARM_RESOLVED)
			publish_board(m, a);       /* clears it, while a is still here */
		else
			alarm_board_later(m, a);
		if (a->test)
			http_alarm_changed(m, a);  /* never on the board; installers see it */
	}
	if (fx->alert) {
		escalate_alert(m, a, fx->alert);
		if (m->nobody && a != m->nobody && m->nobody->state != ALARM_RESOLVED) {
			struct alarm *nb = m->nobody;
			m->nobody = NULL;
			alarm_system_resolve(m, nb, "restored", "alarms reach someone again");
		}
	}
	if (fx->follow_up)
		escalate_follow_up(m, a, fx->follow_skip, fx->alert);
	if (fx->schedule || fx->resolved)
		escalate_schedule(m, a);
	if (fx->nobody)
		nobody_to_alert(m, a);
	if (fx->watch_again) {
		struct device *d = device_get(m, a->device);
		if (d && d->silent) {
			d->silent = false;
			supervise_watch(m, d);
		}
	}
	for (size_t i = 0; i < fx->n_log; i++)
		if (fx->log[i])
			log_full(fx->log_prio[i], a->device, a->id, fx->worker, "%s", fx->log[i]);
	if (fx->oom)
		log_full(LOG_CRIT, a->device, a->id, NULL, "alarm %lld: out of memory recording a "
		         "timeline row", (long long)a->id);
	if (fx->resolved) {
		if (a == m->nobody)
			m->nobody = NULL;
		mass_forget(m, a);
		untrack(m, a);
		alarm_free(a);
	}
}

int alarm_do(struct manager *m, struct alarm *a, const struct life_event *ev, char *err,
             size_t errlen)
{
	struct life_env env;
	struct effects fx = { 0 };
	escalate_env(m, &env);
	int rc = life_apply(a, ev, &env, &fx);
	if (rc < 0 && err)
		snprintf(err, errlen, "%s", fx.error ? fx.error : "nothing to do");
	apply(m, a, &fx);
	effects_clear(&fx);
	return rc;
}

struct alarm *alarm_new(struct manager *m, const char *device, const char *key, int priority,
                        bool technical, bool test)
{
	struct alarm *a = calloc(1, sizeof(*a));
	if (!a || !(a->key = strdup(key)) || !(a->alerted = json_array()) ||
	    !(a->step_workers = json_array()) || !(a->declined = json_array())) {
		alarm_free(a);
		log_full(LOG_CRIT, device, 0, NULL, "device %s: out of memory opening an alarm", device);
		return NULL;
	}
	struct device *dev = device_get(m, device);
	a->id = seq_take(m, &m->alarm_ids);
	snprintf(a->device, sizeof(a->device), "%s", device);
	a->resident_id = dev && dev->resident_id ? strdup(dev->resident_id) : NULL;
	a->priority = priority;
	a->technical = technical;
	a->test = test;
	a->step = -1;
	a->sched_index = SIZE_MAX;
	if (!test)
		a->policy = policy_ref(policy_for(m->cfg, priority));
	return a;
}

int64_t alarm_open(struct manager *m, struct alarm *a, enum tc_type type, const json_t *loc,
                   const char *actor, const char *detail)
{
	/* A test alarm is resolved at once: never tracked, freed by apply(). */
	if (!a->test && track(m, a) < 0) {
		alarm_free(a);
		return -1;
	}
	int64_t id = a->id;
	struct life_event ev = { .kind = LIFE_OPEN, .type = type, .device = actor, .loc = loc,
	                         .detail = detail };
	alarm_do(m, a, &ev, NULL, 0);
	return id;
}

struct alarm *alarm_raise(struct manager *m, const char *device, enum tc_type type,
                          const char *key, const char *detail)
{
	char k[TC_DEVICE_ID_MAX + 40];
	if (!key) {
		snprintf(k, sizeof(k), "%s/%s", device, tc_type_name(type));
		key = k;
	}
	struct alarm *a = alarm_by_key(m, key);
	if (a)
		return a;
	if (strcmp(device, "telecared")) {
		struct alarm *in = mass_event(m, device, type, true, m->cfg->priority[type]);
		if (in)
			return in;
	}
	a = alarm_new(m, device, key, m->cfg->priority[type], true, false);
	if (!a)
		return NULL;
	if (type == TC_T_NOBODY_TO_ALERT) {
		policy_unref(a->policy);
		a->policy = policy_ref(policy_everyone());
	}
	int64_t id = alarm_open(m, a, type, NULL, "telecared", detail);
	return id < 0 ? NULL : alarm_get(m, id);
}

void alarm_system_resolve(struct manager *m, struct alarm *a, const char *outcome,
                          const char *note)
{
	struct life_event ev = { .kind = LIFE_SYSTEM_RESOLVE, .outcome = outcome, .detail = note };
	alarm_do(m, a, &ev, NULL, 0);
}

int64_t alarm_apply(struct manager *m, const char *device, const struct tc_event *ev,
                    const struct alarm_decision *d)
{
	bool known = device_get(m, device) != NULL;
	const json_t *loc = ev->has_loc ? json_object_get(ev->root, "loc") : NULL;
	struct alarm *a = d->action == ACT_OPEN ? NULL : alarm_by_key(m, d->key);
	int64_t id = -1;

	/* A member of a mass incident restored: recorded there. */
	if (tc_type_kind(ev->type) == TC_KIND_RESTORAL)
		id = mass_restore(m, device, tc_type_restores(ev->type));
	switch (d->action) {
	case ACT_NONE:
		return id > 0 ? id : -1;
	case ACT_OPEN: {
		const char *cls = mass_class(ev->type, known, d->test);
		struct alarm *in = cls ? mass_event(m, device, ev->type, known, d->priority) : NULL;
		if (in)
			return in->id;
		a = alarm_new(m, device, d->key, d->priority, d->technical, d->test);
		return a ? alarm_open(m, a, ev->type, loc, device, NULL) : -1;
	}
	case ACT_JOIN:
		id = a->id;
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_JOIN, .type = ev->type,
		                                     .priority = d->priority, .device = device,
		                                     .loc = loc }, NULL, 0);
		return id;
	case ACT_RESOLVE:
		id = a->id;
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_RESTORE, .type = ev->type,
		                                     .device = device }, NULL, 0);
		return id;
	case ACT_CANCEL:
		id = a->id;
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_CANCEL, .device = device }, NULL, 0);
		return id;
	}
	return -1;
}

json_t *alarm_json(struct manager *m, const struct alarm *a)
{
	struct resident *r = a->resident_id ? resident_get(m, a->resident_id) : NULL;
	json_t *res;
	if (r)
		res = resident_json(r);
	else if (a->resident_id)  /* removed since: still say who it was */
		res = json_pack("{s:s}", "id", a->resident_id);
	else
		res = json_null();
	json_t *j = json_pack("{s:I, s:s, s:i, s:o, s:i, s:s, s:b, s:b, s:o, s:o, s:O?, s:o, s:o, s:o, s:o, s:o, s:o}",
	                      "alarm", (json_int_t)a->id, "state", alarm_state_name(a->state),
	                      "priority", a->priority, "types", types_json(a), "level", a->step + 1,
	                      "device", a->device, "test", a->test, "technical", a->technical,
	                      "resident", res, "opened_at", json_time_or_null(a->opened_at),
	                      "loc", a->loc, "acked_by", json_str_or_null(a->acked_by),
	                      "acked_at", json_time_or_null(a->acked_at),
	                      "resolved_at", json_time_or_null(a->resolved_at),
	                      "outcome", json_str_or_null(a->outcome),
	                      "policy", json_str_or_null(a->policy ? a->policy->name : NULL),
	                      "acked_by_id", json_str_or_null(a->acked_by_id));
	if (j && a->incident)
		json_object_set_new(j, "incident", mass_incident_json(a));
	return j;
}
