/* An alarm's life (SPEC 3, 2.5, 4) as one pure function: what happens to
 * an alarm given an event and the time, and the effects that must follow
 * (timeline rows, a save, what to publish, whom to alert, when to fire next),
 * which alarm.c applies in one fixed order. No I/O and no clock here: the
 * environment brings the time and answers "whom does this step alert";
 * tests/unit/test_life.c covers every transition with a fake one.
 *
 * Strings in the effects are allocated (no fixed buffers filled from user
 * text: a note of 400 "ą" arrives whole). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

static const char *tl_names[TL__COUNT] = {
	[TL_OPENED] = "opened", [TL_JOINED] = "joined", [TL_CANCELLED] = "cancelled",
	[TL_ALERTED] = "alerted", [TL_QUEUED] = "queued", [TL_DELIVERED] = "delivered",
	[TL_DELIVERY_FAILED] = "delivery_failed", [TL_STEP_EMPTY] = "step_empty",
	[TL_DECLINED] = "declined", [TL_ACKNOWLEDGED] = "acknowledged", [TL_NOTE] = "note",
	[TL_REFUSED] = "refused", [TL_REOPENED] = "reopened", [TL_RESOLVED] = "resolved",
	[TL_FOLDED] = "folded", [TL_RESTORED] = "restored", [TL_ADOPTED] = "adopted",
};

const char *tl_name(enum tl_what w)
{
	return w < TL__COUNT ? tl_names[w] : "?";
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

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	return s;
}

static void row(struct effects *fx, enum tl_what what, const char *actor, const char *f, ...)
	__attribute__((format(printf, 4, 5)));
static void row(struct effects *fx, enum tl_what what, const char *actor, const char *f, ...)
{
	if (fx->n_rows == fx->cap_rows) {
		size_t ncap = fx->cap_rows ? fx->cap_rows * 2 : 4;
		struct life_row *n = realloc(fx->rows, ncap * sizeof(*n));
		if (!n) {
			fx->oom = true;
			return;
		}
		fx->rows = n;
		fx->cap_rows = ncap;
	}
	char *detail = NULL;
	if (f) {
		va_list ap;
		va_start(ap, f);
		detail = vfmt(f, ap);
		va_end(ap);
	}
	fx->rows[fx->n_rows++] = (struct life_row){ what, actor ? strdup(actor) : NULL, detail };
}

static void say(struct effects *fx, int prio, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void say(struct effects *fx, int prio, const char *f, ...)
{
	va_list ap;
	if (fx->n_log == sizeof(fx->log) / sizeof(*fx->log))
		return;
	va_start(ap, f);
	fx->log_prio[fx->n_log] = prio;
	fx->log[fx->n_log++] = vfmt(f, ap);
	va_end(ap);
}

static int refuse(struct effects *fx, const struct alarm *a, const char *actor, const char *action,
                  const char *f, ...) __attribute__((format(printf, 5, 6)));
static int refuse(struct effects *fx, const struct alarm *a, const char *actor, const char *action,
                  const char *f, ...)
{
	va_list ap;
	va_start(ap, f);
	free(fx->error);
	fx->error = vfmt(f, ap);
	va_end(ap);
	fx->refused = true;
	/* SPEC 2.5: recorded in the alarm's timeline as a refused action. */
	row(fx, TL_REFUSED, actor, "%s: %s", action, fx->error ? fx->error : "?");
	say(fx, LOG_WARNING, "alarm %lld (device %s): %s by %s refused: %s", (long long)a->id,
	    a->device, action, actor, fx->error ? fx->error : "?");
	return -1;
}

void effects_clear(struct effects *fx)
{
	for (size_t i = 0; i < fx->n_rows; i++) {
		free(fx->rows[i].actor);
		free(fx->rows[i].detail);
	}
	free(fx->rows);
	json_decref(fx->alert);
	free(fx->follow_skip);
	free(fx->error);
	for (size_t i = 0; i < fx->n_log; i++)
		free(fx->log[i]);
	free(fx->worker);
	memset(fx, 0, sizeof(*fx));
}

static void add_type(struct alarm *a, enum tc_type t)
{
	for (int i = 0; i < a->n_types; i++)
		if (a->types[i] == t)
			return;
	if (a->n_types < TC_T__COUNT)
		a->types[a->n_types++] = (uint8_t)t;
}

static void set_loc(struct alarm *a, const json_t *loc)
{
	if (!loc)
		return;
	json_decref(a->loc);
	a->loc = json_deep_copy(loc);
}

static bool list_has(json_t *list, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), id))
			return true;
	return false;
}

/* ---- escalation ---- */

struct candidate {
	struct alarm *a;
	const struct life_env *env;
	struct effects *fx;
};

/* policy_next()'s question: whom does this step alert? Keeps the answer on
 * the alarm and records a step that alerts nobody. */
static bool has_targets(void *ctx, int step, int round)
{
	struct candidate *c = ctx;
	struct alarm *a = c->a;
	json_t *who = c->env->targets(c->env->ctx, a, &a->policy->steps[step], c->env->wall);
	json_decref(a->step_workers);
	json_decref(a->declined);
	a->step_workers = who ? who : json_array();
	a->declined = json_array();
	if (json_array_size(a->step_workers) > 0)
		return true;
	row(c->fx, TL_STEP_EMPTY, "telecared", "step %d (round %d) of policy %s: nobody to alert",
	    step + 1, round + 1, a->policy->name);
	return false;
}

/* Fire the next step now: alert its workers, and say when the one after is due. */
static void fire(struct alarm *a, const struct life_env *env, struct effects *fx)
{
	struct candidate c = { a, env, fx };
	a->next_at = policy_next(a->policy, &a->step, &a->round, env->mono, has_targets, &c);
	a->updated_at = env->wall;
	size_t i;
	json_t *v;
	json_array_foreach(a->step_workers, i, v)
		if (!list_has(a->alerted, json_string_value(v)))
			json_array_append_new(a->alerted, json_string(json_string_value(v)));
	if (json_array_size(a->step_workers)) {
		json_decref(fx->alert);
		fx->alert = json_incref(a->step_workers);
	} else {
		fx->nobody = true;
		say(fx, LOG_ERR, "alarm %lld (device %s): nobody to alert (every step of policy %s "
		    "names nobody now)", (long long)a->id, a->device, a->policy->name);
	}
	fx->save = fx->publish_board = fx->schedule = true;
}

/* SPEC 3: resolved with an outcome; everyone alerted hears of it. */
static void resolve(struct alarm *a, const struct life_env *env, struct effects *fx,
                    const char *outcome, const char *actor, const char *skip, const char *note)
{
	a->state = ALARM_RESOLVED;
	a->resolved_at = a->updated_at = env->wall;
	a->next_at = 0;
	free(a->outcome);
	a->outcome = strdup(outcome);
	if (note)
		row(fx, TL_RESOLVED, actor, "%s: %s", outcome, note);
	else
		row(fx, TL_RESOLVED, actor, "%s", outcome);
	fx->save = fx->publish_state = fx->publish_board = fx->schedule = fx->resolved = true;
	fx->follow_up = true;
	free(fx->follow_skip);
	fx->follow_skip = skip ? strdup(skip) : NULL;
	if (a->technical && a->n_types && a->types[0] == TC_T_CONNECTION_LOST)
		fx->watch_again = true;   /* its device is judged afresh from now */
	say(fx, a->test ? LOG_INFO : LOG_NOTICE, "alarm %lld (device %s): resolved by %s: %s",
	    (long long)a->id, a->device, actor, outcome);
}

/* Technical alarms and alarms of unregistered devices wait a moment before
 * their first alert: a mass event folds them before anyone is paged. */
static bool held(const struct alarm *a)
{
	return !a->incident && (a->technical || !a->resident_id);
}

static void start(struct alarm *a, const struct life_env *env, struct effects *fx)
{
	a->step = -1;
	a->round = 0;
	if (held(a) && env->hold_ms > 0) {
		a->next_at = env->mono + env->hold_ms;
		fx->save = fx->schedule = true;
		return;
	}
	fire(a, env, fx);
}

/* ---- who may act (SPEC 2.5, 6.1) ---- */

/* 0 when who may do action on a, acting as worker (or as themselves when
 * worker is NULL); else refused with the reason. */
static int may(struct alarm *a, const struct life_event *ev, const char *worker,
               const char *label, const char *action, struct effects *fx)
{
	const struct actor *who = ev->who;
	if (who->role == ROLE_ADMIN || who->role == ROLE_DISPATCHER)
		return 0;  /* any alarm, as themselves or for a worker */
	if (ev->as_worker && (!who->worker[0] || strcmp(ev->as_worker, who->worker)))
		return refuse(fx, a, label, action, "acting for worker %s needs the dispatcher role",
		              ev->as_worker);
	if (who->role == ROLE_INSTALLER) {
		if (ev->on_test || a->test)
			return 0;
		return refuse(fx, a, label, action, "alarm %lld is not of a device on test; that needs "
		              "the dispatcher role", (long long)a->id);
	}
	if (who->role != ROLE_WORKER || !worker)
		return refuse(fx, a, label, action, "acting on alarms needs the worker role");
	bool holder = a->state == ALARM_ACKED && a->acked_by_id && !strcmp(a->acked_by_id, worker);
	if (!holder && !list_has(a->alerted, worker))
		return refuse(fx, a, label, action, "alarm %lld has not alerted you", (long long)a->id);
	if (!strcmp(action, "resolve")) {
		if (a->state == ALARM_ACKED && a->acked_by_id && !strcmp(a->acked_by_id, worker))
			return 0;
		if (a->state != ALARM_ACKED)
			return refuse(fx, a, label, action, "alarm %lld is not acknowledged: acknowledge "
			              "it before resolving it", (long long)a->id);
		return refuse(fx, a, label, action, "alarm %lld is held by %s: only they or a "
		              "dispatcher may resolve it", (long long)a->id,
		              a->acked_by ? a->acked_by : "another worker");
	}
	return 0;
}

static int ack(struct alarm *a, const struct life_event *ev, const struct life_env *env,
               struct effects *fx, const char *worker, const char *name, const char *label)
{
	if (a->state == ALARM_ACKED) {
		if (worker && a->acked_by_id && !strcmp(a->acked_by_id, worker))
			return 0;  /* the same worker again: nothing changes */
		if (!worker && !a->acked_by_id && a->acked_by && !strcmp(a->acked_by, label))
			return 0;
		return refuse(fx, a, label, "ack", "alarm %lld is already acknowledged by %s",
		              (long long)a->id, a->acked_by ? a->acked_by : "?");
	}
	a->state = ALARM_ACKED;
	free(a->acked_by);
	free(a->acked_by_id);
	a->acked_by = strdup(name);
	a->acked_by_id = worker ? strdup(worker) : NULL;
	a->acked_at = a->updated_at = env->wall;
	if (!a->first_ack_at)
		a->first_ack_at = env->wall;
	/* Escalation stops; the ack timeout starts (SPEC 3). */
	a->next_at = env->mono + (a->policy ? a->policy->ack_timeout_ms : 15 * 60000);
	row(fx, TL_ACKNOWLEDGED, label, "%s", name);
	fx->save = fx->publish_state = fx->publish_board = fx->schedule = fx->follow_up = true;
	free(fx->follow_skip);
	fx->follow_skip = worker ? strdup(worker) : NULL;
	say(fx, LOG_NOTICE, "alarm %lld (device %s): acknowledged by %s (%s)", (long long)a->id,
	    a->device, name, label);
	(void)ev;
	return 0;
}

static int decline(struct alarm *a, const struct life_env *env, struct effects *fx,
                   const char *worker, const char *name, const char *label)
{
	if (a->state != ALARM_OPEN)
		return refuse(fx, a, label, "decline", "alarm %lld is acknowledged by %s; nothing to "
		              "decline", (long long)a->id, a->acked_by ? a->acked_by : "?");
	if (!worker)
		return refuse(fx, a, label, "decline", "decline is for a worker: say which (--as)");
	if (!list_has(a->step_workers, worker))
		return refuse(fx, a, label, "decline", "worker %s was not alerted by the current step "
		              "of alarm %lld", worker, (long long)a->id);
	if (list_has(a->declined, worker))
		return 0;
	json_array_append_new(a->declined, json_string(worker));
	row(fx, TL_DECLINED, label, "%s", name);
	say(fx, LOG_INFO, "alarm %lld (device %s): declined by %s", (long long)a->id, a->device, label);
	if (json_array_size(a->declined) >= json_array_size(a->step_workers))
		fire(a, env, fx);   /* SPEC 2.5: everyone in this step declined: the next, now */
	fx->save = true;
	return 0;
}

static int person(struct alarm *a, const struct life_event *ev, const struct life_env *env,
                  struct effects *fx)
{
	static const char *names[] = { [LIFE_ACK] = "ack", [LIFE_DECLINE] = "decline",
	                               [LIFE_NOTE] = "note", [LIFE_RESOLVE] = "resolve" };
	const char *action = names[ev->kind];
	char label[200], me[96];
	actor_label(ev->who, me, sizeof(me));
	/* Who the action is for: a worker (over MQTT, named with --as, or the
	 * worker a console user is), else the person themselves. */
	const char *worker = ev->as_worker;
	const char *name = worker ? (ev->as_name ? ev->as_name : worker) : me;
	if (worker && ev->who->kind != ACTOR_WORKER)
		snprintf(label, sizeof(label), "%s (by %s)", worker, me);
	else
		snprintf(label, sizeof(label), "%s", me);
	if (worker)
		fx->worker = strdup(worker);
	if (may(a, ev, worker, label, action, fx) < 0)
		return -1;
	switch (ev->kind) {
	case LIFE_ACK:
		return ack(a, ev, env, fx, worker, name, label);
	case LIFE_DECLINE:
		return decline(a, env, fx, worker, name, label);
	case LIFE_NOTE:
		if (!ev->note || !*ev->note)
			return refuse(fx, a, label, action, "a note action needs a \"note\"");
		row(fx, TL_NOTE, label, "%s", ev->note);
		return 0;
	case LIFE_RESOLVE:
		resolve(a, env, fx, ev->outcome, label, worker, ev->note);
		return 0;
	default:
		return -1;
	}
}

/* ---- the transition ---- */

int life_apply(struct alarm *a, const struct life_event *ev, const struct life_env *env,
               struct effects *fx)
{
	const char *type = tc_type_name(ev->type);
	if (a->state == ALARM_RESOLVED)
		return -1;   /* nothing happens to a resolved alarm */
	switch (ev->kind) {
	case LIFE_OPEN:
		a->state = ALARM_OPEN;
		a->opened_at = a->updated_at = env->wall;
		a->step = -1;
		add_type(a, ev->type);
		set_loc(a, ev->loc);
		if (ev->detail)
			row(fx, TL_OPENED, ev->device, "%s", ev->detail);
		else
			row(fx, TL_OPENED, ev->device, "%s%s, priority %d", type, a->test ? " (test)" : "",
			    a->priority);
		say(fx, a->test ? LOG_INFO : LOG_WARNING, "alarm %lld (device %s): opened by %s%s, "
		    "priority %d%s%s%s", (long long)a->id, a->device, type, a->test ? " (test)" : "",
		    a->priority, a->resident_id || a->incident ? "" : ", unknown device",
		    ev->detail ? ": " : "", ev->detail ? ev->detail : "");
		if (a->test) {
			/* SPEC 3: stored, confirmed to the installer, resolved with outcome test. */
			resolve(a, env, fx, "test", "telecared", NULL, NULL);
			fx->follow_up = false;
			return 0;
		}
		fx->publish_state = fx->publish_board = true;
		start(a, env, fx);
		return 0;

	case LIFE_JOIN:
		add_type(a, ev->type);
		if (ev->priority > 0 && ev->priority < a->priority)
			a->priority = ev->priority;   /* more urgent: priority 1 is the most */
		set_loc(a, ev->loc);
		a->updated_at = env->wall;
		row(fx, TL_JOINED, ev->device, "%s", type);
		fx->save = fx->publish_state = fx->publish_board = true;
		say(fx, LOG_INFO, "alarm %lld (device %s): joined by %s", (long long)a->id, a->device, type);
		return 0;

	case LIFE_MEMBER_JOIN:
		/* A device joins a mass incident: one row, a new count on the board. */
		add_type(a, ev->type);
		if (ev->priority > 0 && ev->priority < a->priority)
			a->priority = ev->priority;
		a->updated_at = env->wall;
		row(fx, TL_JOINED, ev->device, "%s", type);
		fx->publish_board = true;
		return 0;

	case LIFE_MEMBER_RESTORE:
		a->updated_at = env->wall;
		row(fx, TL_RESTORED, ev->device, "%s", type);
		fx->publish_board = true;
		if (a->incident && a->incident->restored >= a->incident->devices)
			resolve(a, env, fx, "restored", "telecared", NULL, "every device restored");
		return 0;

	case LIFE_CANCEL:
		a->updated_at = env->wall;
		row(fx, TL_CANCELLED, ev->device, "cancelled by resident");
		say(fx, LOG_NOTICE, "alarm %lld (device %s): cancelled by resident", (long long)a->id,
		    a->device);
		if (a->policy && a->policy->cancel_resolves)   /* on_cancel = resolve */
			resolve(a, env, fx, "user_cancelled", ev->device, NULL, "cancelled by resident");
		else
			fx->save = true;
		return 0;

	case LIFE_RESTORE:
		row(fx, TL_JOINED, ev->device, "%s", type);
		resolve(a, env, fx, "restored", ev->device, NULL, ev->detail);
		return 0;

	case LIFE_SYSTEM_RESOLVE:
		resolve(a, env, fx, ev->outcome, "telecared", NULL, ev->detail);
		return 0;

	case LIFE_FOLD:
		/* Into a mass incident, before anyone was paged for it: nobody
		 * needs a follow-up, the incident speaks for it. */
		row(fx, TL_FOLDED, "telecared", "into incident %lld", (long long)ev->incident);
		resolve(a, env, fx, "folded", "telecared", NULL, NULL);
		fx->follow_up = false;
		fx->watch_again = false;   /* the incident watches its devices */
		return 0;

	case LIFE_ADOPT: {
		char who[96];
		row(fx, TL_ADOPTED, ev->who ? actor_label(ev->who, who, sizeof(who)) : "telecared",
		    "device adopted by resident %s", a->resident_id ? a->resident_id : "?");
		a->updated_at = env->wall;
		fx->save = fx->publish_state = fx->publish_board = true;
		return 0;
	}

	case LIFE_STEP:
		if (!a->next_at || a->next_at > env->mono)
			return 0;   /* not due (moved since it was queued) */
		if (a->state == ALARM_OPEN) {
			fire(a, env, fx);
			return 0;
		}
		/* SPEC 3: not resolved within ack_timeout of its acknowledgement:
		 * open again, from the first step. */
		{
			char dur[32];
			tc_duration_format(a->policy ? a->policy->ack_timeout_ms : 0, dur, sizeof(dur));
			row(fx, TL_REOPENED, "telecared", "not resolved within %s of acknowledgement by %s",
			    dur, a->acked_by ? a->acked_by : "?");
			say(fx, LOG_WARNING, "alarm %lld (device %s): re-opened: not resolved within %s of "
			    "acknowledgement by %s", (long long)a->id, a->device, dur,
			    a->acked_by ? a->acked_by : "?");
		}
		a->state = ALARM_OPEN;
		free(a->acked_by);
		free(a->acked_by_id);
		a->acked_by = a->acked_by_id = NULL;
		a->acked_at = 0;
		a->step = -1;
		a->round = 0;
		/* Everyone alerted so far hears it is open again, except those the
		 * first step alerts now: one message each, not two. */
		fx->follow_up = fx->publish_state = true;
		fire(a, env, fx);
		return 0;

	case LIFE_ACK:
	case LIFE_DECLINE:
	case LIFE_NOTE:
	case LIFE_RESOLVE:
		return person(a, ev, env, fx);
	}
	return -1;
}
