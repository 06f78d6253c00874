/* What workers do with alarms (SPEC 2.5): ack, resolve, decline, note.
 * The same function serves MQTT (worker/{id}/action) and telecarectl
 * (alarm ack/resolve --as WORKER); every refusal says why, naming the alarm. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define NOTE_MAX 1000

static int refuse(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static void outcomes_text(const struct config *c, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < c->n_outcomes; i++) {
		if (i)
			strncat(buf, ", ", len - strlen(buf) - 1);
		strncat(buf, c->outcomes[i], len - strlen(buf) - 1);
	}
}

/* Not in memory: resolved long ago, or never. */
static int missing(struct manager *m, int64_t id, char *err, size_t errlen)
{
	sqlite3_stmt *s = store_query(m, "SELECT outcome FROM alarms WHERE id = ?");
	int found = 0;
	char outcome[80] = "";
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			found = 1;
			snprintf(outcome, sizeof(outcome), "%s",
			         sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0) : "?");
		}
		sqlite3_reset(s);
	}
	if (found)
		return refuse(err, errlen, "alarm %lld is already resolved (%s)", (long long)id, outcome);
	return refuse(err, errlen, "alarm %lld does not exist", (long long)id);
}

static int ack(struct manager *m, struct alarm *a, struct worker *w, int64_t now, char *err,
               size_t errlen)
{
	if (a->state == ALARM_ACKED) {
		if (a->acked_by_id && !strcmp(a->acked_by_id, w->id))
			return 0;  /* the same worker again: nothing changes */
		return refuse(err, errlen, "alarm %lld is already acknowledged by %s", (long long)a->id,
		              a->acked_by ? a->acked_by : "?");
	}
	a->state = ALARM_ACKED;
	a->acked_by = strdup(w->name);
	a->acked_by_id = strdup(w->id);
	a->acked_at = a->updated_at = now;
	if (!a->first_ack_at)
		a->first_ack_at = now;
	/* Escalation stops; the ack timeout starts (SPEC 3). */
	a->next_at = now + (a->policy ? a->policy->ack_timeout_ms : 15 * 60000);
	alarm_timeline(m, a->id, now, "acknowledged", w->id, w->name);
	alarm_save(m, a);
	publish_alarm(m, a);
	escalate_follow_up(m, a, w->id);
	escalate_schedule(m, a);
	log_full(LOG_NOTICE, a->device, a->id, w->id, "alarm %lld (device %s): acknowledged by %s (%s)",
	         (long long)a->id, a->device, w->name, w->id);
	return 0;
}

static int decline(struct manager *m, struct alarm *a, struct worker *w, int64_t now, char *err,
                   size_t errlen)
{
	if (a->state != ALARM_OPEN)
		return refuse(err, errlen, "alarm %lld is acknowledged by %s; nothing to decline",
		              (long long)a->id, a->acked_by ? a->acked_by : "?");
	if (!id_list_has(a->step_workers, w->id))
		return refuse(err, errlen, "worker %s was not alerted by the current step of alarm %lld",
		              w->id, (long long)a->id);
	if (id_list_has(a->declined, w->id))
		return 0;
	json_array_append_new(a->declined, json_string(w->id));
	alarm_timeline(m, a->id, now, "declined", w->id, w->name);
	log_full(LOG_INFO, a->device, a->id, w->id, "alarm %lld (device %s): declined by %s",
	         (long long)a->id, a->device, w->id);
	if (json_array_size(a->declined) >= json_array_size(a->step_workers)) {
		/* SPEC 2.5: everyone in this step declined: the next step, now. */
		a->next_at = now;
		escalate_schedule(m, a);
	}
	alarm_save(m, a);
	return 0;
}

const char *actor_label(const struct actor *a, char *buf, size_t len)
{
	switch (a->kind) {
	case ACTOR_SYSTEM: snprintf(buf, len, "telecared"); break;
	case ACTOR_DEVICE:
	case ACTOR_WORKER: snprintf(buf, len, "%s", a->id); break;
	case ACTOR_USER: snprintf(buf, len, "user %s", a->id); break;
	case ACTOR_UNIX:
		if (a->name[0])
			snprintf(buf, len, "uid %u (%s)", a->uid, a->name);
		else
			snprintf(buf, len, "uid %u", a->uid);
		break;
	}
	return buf;
}

int action_apply(struct manager *m, const struct actor *who, const char *as_worker, int64_t id,
                 const char *action, const char *outcome, const char *note, char *err,
                 size_t errlen)
{
	int64_t now = tc_now_ms();
	const char *worker = as_worker ? as_worker : who->worker[0] ? who->worker : who->id;
	struct worker *w = worker_get(m, worker);
	if (!w)
		return refuse(err, errlen, "worker %s is not registered", worker);
	if (!action)
		return refuse(err, errlen, "missing \"action\" (ack, resolve, decline or note)");
	if (note && strlen(note) > NOTE_MAX)
		return refuse(err, errlen, "a note is at most %d bytes", NOTE_MAX);
	struct alarm *a = alarm_get(m, id);
	if (!a)
		return missing(m, id, err, errlen);

	if (!strcmp(action, "ack"))
		return ack(m, a, w, now, err, errlen);
	if (!strcmp(action, "decline"))
		return decline(m, a, w, now, err, errlen);
	if (!strcmp(action, "note")) {
		if (!note || !*note)
			return refuse(err, errlen, "a note action needs a \"note\"");
		alarm_timeline(m, a->id, now, "note", w->id, note);
		return 0;
	}
	if (!strcmp(action, "resolve")) {
		if (!outcome || !config_outcome_valid(m->cfg, outcome)) {
			char list[1024];
			outcomes_text(m->cfg, list, sizeof(list));
			char clean[80];
			return refuse(err, errlen, "%s%s%s is not a valid outcome; use one of: %s",
			              outcome ? "\"" : "", outcome ? tc_sanitize(outcome, strlen(outcome), clean,
			              sizeof(clean)) : "a missing outcome", outcome ? "\"" : "", list);
		}
		alarm_resolve(m, a, outcome, w->id, note, now);
		return 0;
	}
	char clean[40];
	return refuse(err, errlen, "unknown action \"%s\" (ack, resolve, decline or note)",
	              tc_sanitize(action, strlen(action), clean, sizeof(clean)));
}

void action_message(struct manager *m, const char *worker_raw, size_t worker_len,
                    const void *payload, size_t len)
{
	char worker[TC_DEVICE_ID_MAX + 1], err[1200], topic[512], clean[80];
	if (!tc_device_id_valid(worker_raw, worker_len)) {
		log_warning("worker action on an invalid worker id \"%s\" ignored",
		            tc_sanitize(worker_raw, worker_len, clean, sizeof(clean)));
		return;
	}
	memcpy(worker, worker_raw, worker_len);
	worker[worker_len] = '\0';

	json_t *req = NULL;
	if (len <= 8192 && tc_utf8_valid(payload, len))
		req = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	json_t *jalarm = json_object_get(req, "alarm"), *jaction = json_object_get(req, "action");
	json_t *joutcome = json_object_get(req, "outcome"), *jnote = json_object_get(req, "note");
	int rc;
	if (!json_is_object(req)) {
		rc = refuse(err, sizeof(err), "an action is a JSON object {\"alarm\": N, \"action\": ...}");
	} else if (!json_is_integer(jalarm)) {
		rc = refuse(err, sizeof(err), "\"alarm\" must be an alarm id (an integer)");
	} else if (!json_is_string(jaction) || (joutcome && !json_is_string(joutcome)) ||
	           (jnote && !json_is_string(jnote))) {
		rc = refuse(err, sizeof(err), "\"action\", \"outcome\" and \"note\" must be strings");
	} else {
		struct actor who = { .kind = ACTOR_WORKER, .role = ROLE_WORKER };
		snprintf(who.id, sizeof(who.id), "%s", worker);
		snprintf(who.worker, sizeof(who.worker), "%s", worker);
		rc = action_apply(m, &who, NULL, json_integer_value(jalarm), json_string_value(jaction),
		                  json_string_value(joutcome), json_string_value(jnote), err, sizeof(err));
	}
	if (rc < 0)
		log_full(LOG_WARNING, NULL, json_is_integer(jalarm) ? json_integer_value(jalarm) : 0,
		         worker, "worker %s: action refused: %s", worker, err);

	json_t *res = json_pack("{s:O?, s:O?, s:b}", "alarm", json_is_integer(jalarm) ? jalarm : NULL,
	                        "action", json_is_string(jaction) ? jaction : NULL, "ok", rc == 0);
	if (rc < 0)
		json_object_set_new(res, "error", json_string(err));
	char *s = json_dumps(res, JSON_COMPACT);
	if (s && mqtt_topic(m, topic, sizeof(topic), "worker/%s/result", worker) == 0)
		outbox_publish(m, OB_RESULT, topic, s, strlen(s), false);
	free(s);
	json_decref(res);
	json_decref(req);
	store_maybe_flush(m);
}
