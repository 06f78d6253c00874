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
	int n = vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	if (n >= (int)errlen)   /* cut: never in the middle of a character */
		tc_utf8_trim(err, strlen(err));
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

int action_apply(struct manager *m, const struct actor *who, const char *as_worker, int64_t id,
                 const char *action, const char *outcome, const char *note, char *err,
                 size_t errlen)
{
	static const struct { const char *name; enum life_kind kind; } actions[] = {
		{ "ack", LIFE_ACK }, { "decline", LIFE_DECLINE }, { "note", LIFE_NOTE },
		{ "resolve", LIFE_RESOLVE },
	};
	if (!action)
		return refuse(err, errlen, "missing \"action\" (ack, resolve, decline or note)");
	size_t k = 0;
	while (k < sizeof(actions) / sizeof(*actions) && strcmp(actions[k].name, action))
		k++;
	if (k == sizeof(actions) / sizeof(*actions)) {
		char clean[40];
		return refuse(err, errlen, "unknown action \"%s\" (ack, resolve, decline or note)",
		              tc_sanitize(action, strlen(action), clean, sizeof(clean)));
	}
	if (note && strlen(note) > NOTE_MAX)
		return refuse(err, errlen, "a note is at most %d bytes", NOTE_MAX);
	if (!as_worker && who->worker[0])
		as_worker = who->worker;
	struct worker *w = as_worker ? worker_get(m, as_worker) : NULL;
	if (as_worker && !w)
		return refuse(err, errlen, "worker %s is not registered", as_worker);
	struct alarm *a = alarm_get(m, id);
	if (!a)
		return missing(m, id, err, errlen);
	if (actions[k].kind == LIFE_RESOLVE && (!outcome || !config_outcome_valid(m->cfg, outcome))) {
		char list[1024], clean[80];
		outcomes_text(m->cfg, list, sizeof(list));
		return refuse(err, errlen, "%s%s%s is not a valid outcome; use one of: %s",
		              outcome ? "\"" : "", outcome ? tc_sanitize(outcome, strlen(outcome), clean,
		              sizeof(clean)) : "a missing outcome", outcome ? "\"" : "", list);
	}
	struct device *d = device_get(m, a->device);
	struct life_event ev = { .kind = actions[k].kind, .who = who, .as_worker = as_worker,
	                         .as_name = w ? w->name : NULL, .outcome = outcome, .note = note,
	                         .on_test = d && d->testing };
	return alarm_do(m, a, &ev, err, errlen);
}

struct result {
	char worker[TC_DEVICE_ID_MAX + 1];
	json_t *answer;
};

/* SPEC 7: "ok": true only once what it reports is on disk. */
static void result_committed(struct manager *m, void *data, bool ok, const char *error)
{
	struct result *r = data;
	char topic[512];
	if (!ok && json_is_true(json_object_get(r->answer, "ok"))) {
		char msg[400];
		snprintf(msg, sizeof(msg), "not stored: the database refused it: %s", error);
		json_object_set_new(r->answer, "ok", json_false());
		json_object_set_new(r->answer, "error", json_string(msg));
		log_full(LOG_ERR, NULL, json_integer_value(json_object_get(r->answer, "alarm")),
		         r->worker, "worker %s: action not stored: %s", r->worker, error);
	}
	char *s = json_dumps(r->answer, JSON_COMPACT);
	if (s && m->outbox && mqtt_topic(m, topic, sizeof(topic), "worker/%s/result", r->worker) == 0)
		outbox_publish(m, OB_RESULT, topic, s, strlen(s), false);
	free(s);
	json_decref(r->answer);
	free(r);
}

void action_message(struct manager *m, const char *worker_raw, size_t worker_len,
                    const void *payload, size_t len)
{
	char worker[TC_DEVICE_ID_MAX + 1], err[1200], clean[80];
	if (!tc_device_id_valid(worker_raw, worker_len)) {
		log_warning("worker action on an invalid worker id \"%s\" ignored",
		            tc_sanitize(worker_raw, worker_len, clean, sizeof(clean)));
		return;
	}
	memcpy(worker, worker_raw, worker_len);
	worker[worker_len] = '\0';

	uint64_t mark = store_mark(m);
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
		struct actor who = { .kind = ACTOR_WORKER, .role = users_role_of_worker(m, worker) };
		snprintf(who.id, sizeof(who.id), "%s", worker);
		snprintf(who.worker, sizeof(who.worker), "%s", worker);
		rc = action_apply(m, &who, NULL, json_integer_value(jalarm), json_string_value(jaction),
		                  json_string_value(joutcome), json_string_value(jnote), err, sizeof(err));
	}
	if (rc < 0)
		log_full(LOG_WARNING, NULL, json_is_integer(jalarm) ? json_integer_value(jalarm) : 0,
		         worker, "worker %s: action refused: %s", worker, err);

	struct result *r = calloc(1, sizeof(*r));
	if (r) {
		snprintf(r->worker, sizeof(r->worker), "%s", worker);
		r->answer = json_pack("{s:O?, s:O?, s:b}", "alarm", json_is_integer(jalarm) ? jalarm : NULL,
		                      "action", json_is_string(jaction) ? jaction : NULL, "ok", rc == 0);
		if (rc < 0)
			json_object_set_new(r->answer, "error", json_string(err));
		store_after_commit(m, mark, result_committed, r);
	}
	json_decref(req);
	store_maybe_flush(m);
}
