/* Alarms (SPEC 3): applying what decide.c decided, resolving, the timeline.
 * Unresolved alarms live in memory (m->alarms, m->open_by_key); every change
 * is queued to the store and shown on the board at once.
 * Test alarms never stay open: they are recorded and resolved at once. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

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

void alarm_timeline(struct manager *m, int64_t alarm, int64_t at, const char *what,
                    const char *actor, const char *detail)
{
	store_write(m, ST_TIMELINE_INSERT, "iisss", alarm, at, what, actor, detail);
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
	store_write(m, ST_ALARM_UPSERT, "isssijsiiijsttststiijjst", a->id, a->device, a->resident_id,
	            a->key ? a->key : "", (int64_t)a->priority, types, alarm_state_name(a->state),
	            (int64_t)a->test, (int64_t)a->technical, (int64_t)a->step, a->loc,
	            a->policy ? a->policy->name : NULL, a->opened_at, a->acked_at, a->acked_by,
	            a->resolved_at, a->outcome, a->updated_at, (int64_t)a->round, a->next_at, pdef,
	            esc, a->acked_by_id, a->first_ack_at);
	json_decref(types);
	json_decref(pdef);
	json_decref(esc);
}

/* Keep an unresolved alarm findable by id and by its device slot. */
static void track(struct manager *m, struct alarm *a)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)a->id);
	if (map_put(&m->alarms, key, a) < 0 || map_put(&m->open_by_key, a->key, a) < 0)
		log_full(LOG_CRIT, a->device, a->id, NULL,
		         "alarm %lld: out of memory tracking it; it is stored, restart to reload it",
		         (long long)a->id);
}

static void untrack(struct manager *m, struct alarm *a)
{
	char key[24];
	snprintf(key, sizeof(key), "%lld", (long long)a->id);
	map_del(&m->alarms, key);
	if (map_get(&m->open_by_key, a->key) == a)
		map_del(&m->open_by_key, a->key);
}

void alarm_adopt(struct manager *m, struct alarm *a)
{
	if (!a->alerted)
		a->alerted = json_array();
	if (!a->step_workers)
		a->step_workers = json_array();
	if (!a->declined)
		a->declined = json_array();
	if (!a->key) {
		a->key = malloc(TC_DEVICE_ID_MAX + 8);
		if (a->key)
			snprintf(a->key, TC_DEVICE_ID_MAX + 8, "%s/care", a->device);
	}
	track(m, a);
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
	free(a);
}

void alarms_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);)
		alarm_free(v);
	map_free(&m->alarms);
	map_free(&m->open_by_key);
}

static void add_type(struct alarm *a, enum tc_type t)
{
	for (int i = 0; i < a->n_types; i++)
		if (a->types[i] == t)
			return;
	if (a->n_types < TC_T__COUNT)
		a->types[a->n_types++] = (uint8_t)t;
}

static void set_loc(struct alarm *a, const struct tc_event *ev)
{
	if (!ev->has_loc)
		return;
	json_decref(a->loc);
	a->loc = json_incref(json_object_get(ev->root, "loc"));
}

void alarm_resolve(struct manager *m, struct alarm *a, const char *outcome, const char *actor,
                   const char *note, int64_t now)
{
	char detail[512];
	snprintf(detail, sizeof(detail), "%s%s%s", outcome, note ? ": " : "", note ? note : "");
	a->state = ALARM_RESOLVED;
	a->resolved_at = a->updated_at = now;
	a->next_at = 0;
	free(a->outcome);
	a->outcome = strdup(outcome);
	alarm_timeline(m, a->id, now, "resolved", actor, detail);
	alarm_save(m, a);
	publish_alarm(m, a);
	escalate_follow_up(m, a, actor);
	log_full(LOG_NOTICE, a->device, a->id, NULL, "alarm %lld (device %s): resolved by %s: %s",
	         (long long)a->id, a->device, actor, outcome);
	untrack(m, a);
	alarm_free(a);
}

static struct alarm *open_alarm(struct manager *m, const char *device, const struct tc_event *ev,
                                const struct alarm_decision *d, int64_t now)
{
	struct alarm *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	struct device *dev = device_get(m, device);
	a->id = seq_take(m, &m->alarm_ids);
	snprintf(a->device, sizeof(a->device), "%s", device);
	a->resident_id = dev && dev->resident_id ? strdup(dev->resident_id) : NULL;
	a->key = strdup(d->key);
	a->priority = d->priority;
	add_type(a, ev->type);
	a->state = ALARM_OPEN;
	a->test = d->test;
	a->technical = d->technical;
	a->opened_at = a->updated_at = now;
	a->step = -1;
	a->alerted = json_array();
	a->step_workers = json_array();
	a->declined = json_array();
	set_loc(a, ev);
	return a;
}

struct alarm *alarm_by_key(struct manager *m, const char *key)
{
	return map_get(&m->open_by_key, key);
}

struct alarm *alarm_open_technical(struct manager *m, const char *device, enum tc_type type,
                                   const char *key, const char *detail, int64_t now)
{
	struct alarm *a = alarm_by_key(m, key);
	if (a)
		return a;
	struct tc_event ev = { .type = type, .battery = -1 };
	struct alarm_decision d = { .action = ACT_OPEN, .priority = m->cfg->priority[type],
	                            .technical = true };
	snprintf(d.key, sizeof(d.key), "%s", key);
	a = open_alarm(m, device, &ev, &d, now);
	if (!a) {
		log_full(LOG_CRIT, device, 0, NULL, "%s: out of memory opening a %s alarm", device,
		         tc_type_name(type));
		return NULL;
	}
	alarm_timeline(m, a->id, now, "opened", "telecared", detail);
	log_full(LOG_WARNING, device, a->id, NULL, "alarm %lld (%s): %s: %s", (long long)a->id, device,
	         tc_type_name(type), detail);
	track(m, a);
	publish_alarm(m, a);
	escalate_start(m, a, now);
	return a;
}

int64_t alarm_apply(struct manager *m, const char *device, const struct tc_event *ev,
                    const struct alarm_decision *d, int64_t now)
{
	const char *type = tc_type_name(ev->type);
	struct alarm *a = d->action == ACT_OPEN ? NULL : map_get(&m->open_by_key, d->key);
	char detail[96];
	int64_t id;

	switch (d->action) {
	case ACT_NONE:
		return -1;
	case ACT_OPEN:
		a = open_alarm(m, device, ev, d, now);
		if (!a) {
			log_full(LOG_CRIT, device, 0, NULL, "device %s: out of memory opening an alarm", device);
			return -1;
		}
		id = a->id;
		snprintf(detail, sizeof(detail), "%s%s, priority %d", type, a->test ? " (test)" : "",
		         a->priority);
		alarm_timeline(m, a->id, now, "opened", device, detail);
		log_full(a->test ? LOG_INFO : LOG_WARNING, device, id, NULL,
		         "alarm %lld (device %s): opened by %s%s, priority %d%s", (long long)id, device,
		         type, a->test ? " (test)" : "", a->priority, a->resident_id ? "" : ", unknown device");
		if (a->test) {
			/* SPEC 3: stored, confirmed to the installer, resolved with outcome test. */
			alarm_save(m, a);
			alarm_resolve(m, a, "test", "telecared", NULL, now);
			return id;
		}
		track(m, a);
		publish_alarm(m, a);
		escalate_start(m, a, now);  /* alerts, saves, and shows the level */
		return id;
	case ACT_JOIN:
		add_type(a, ev->type);
		if (d->priority < a->priority)
			a->priority = d->priority;  /* more urgent: priority 1 is the most */
		set_loc(a, ev);
		a->updated_at = now;
		alarm_timeline(m, a->id, now, "joined", device, type);
		alarm_save(m, a);
		publish_alarm(m, a);
		log_full(LOG_INFO, device, a->id, NULL, "alarm %lld (device %s): joined by %s",
		         (long long)a->id, device, type);
		return a->id;
	case ACT_RESOLVE:
		id = a->id;
		alarm_timeline(m, a->id, now, "joined", device, type);
		alarm_resolve(m, a, "restored", device, NULL, now);
		return id;
	case ACT_CANCEL:
		id = a->id;
		a->updated_at = now;
		alarm_timeline(m, a->id, now, "cancelled", device, "cancelled by resident");
		log_full(LOG_NOTICE, device, a->id, NULL, "alarm %lld (device %s): cancelled by resident",
		         (long long)a->id, device);
		if (a->policy && a->policy->cancel_resolves)  /* on_cancel = resolve */
			alarm_resolve(m, a, "user_cancelled", device, "cancelled by resident", now);
		else
			alarm_save(m, a);
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
	return json_pack("{s:I, s:s, s:i, s:o, s:i, s:s, s:b, s:b, s:o, s:o, s:O?, s:o, s:o, s:o, s:o, s:o, s:o}",
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
}
