/* An alarm's life (daemon/life.c): every transition's effects, with a fake
 * clock and a fake roster. SPEC 3 (open, join, cancel, restore, resolve,
 * re-open), SPEC 2.5 (who may act), SPEC 3.1 (fold, members), SPEC 4 (steps,
 * empty steps, decline). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecared.h"

/* ---- the fake world ---- */

bool id_list_has(json_t *list, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(list, i, v)
		if (!strcmp(json_string_value(v), id))
			return true;
	return false;
}

static int64_t wall = 1796000000000, mono = 5000000;
static const char *step_targets[4][4];   /* per step: worker ids, NULL-terminated */

static json_t *fake_targets(void *ctx, const struct alarm *a, const struct step *st, int64_t t)
{
	(void)ctx;
	(void)t;
	int step = (int)(st - a->policy->steps);
	json_t *out = json_array();
	for (int i = 0; step >= 0 && step < 4 && step_targets[step][i]; i++)
		json_array_append_new(out, json_string(step_targets[step][i]));
	return out;
}

static struct life_env env(void)
{
	return (struct life_env){ .wall = wall, .mono = mono, .hold_ms = 2000,
	                          .targets = fake_targets };
}

static struct policy *policy_of(const char *a, const char *b, int repeat)
{
	char err[128];
	struct policy *p = policy_new("test");
	p->steps = calloc(2, sizeof(*p->steps));
	assert_int_equal(policy_parse_step(a, &p->steps[0], err, sizeof(err)), 0);
	p->n_steps = 1;
	if (b) {
		assert_int_equal(policy_parse_step(b, &p->steps[1], err, sizeof(err)), 0);
		p->n_steps = 2;
	}
	p->repeat = repeat;
	p->ack_timeout_ms = 60000;
	return p;
}

static struct alarm *care_alarm(void)
{
	struct alarm *a = calloc(1, sizeof(*a));
	a->id = 42;
	snprintf(a->device, sizeof(a->device), "pendant-1");
	a->resident_id = strdup("r-1");
	a->key = strdup("pendant-1/care");
	a->priority = 1;
	a->step = -1;
	a->alerted = json_array();
	a->step_workers = json_array();
	a->declined = json_array();
	a->policy = policy_of("worker:w-a wait 60s", "worker:w-b wait 30s", 0);
	return a;
}

static void free_alarm(struct alarm *a)
{
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
	if (a->incident) {
		map_free(&a->incident->members);
		map_free(&a->incident->teams);
		free(a->incident);
	}
	free(a);
}

static int setup(void **state)
{
	(void)state;
	memset(step_targets, 0, sizeof(step_targets));
	step_targets[0][0] = "w-a";
	step_targets[1][0] = "w-b";
	return 0;
}

static struct effects fx;

static int apply(struct alarm *a, struct life_event ev)
{
	struct life_env e = env();
	effects_clear(&fx);
	return life_apply(a, &ev, &e, &fx);
}

static bool has_row(enum tl_what what, const char *actor, const char *detail_part)
{
	for (size_t i = 0; i < fx.n_rows; i++)
		if (fx.rows[i].what == what && (!actor || (fx.rows[i].actor &&
		                                           !strcmp(fx.rows[i].actor, actor))) &&
		    (!detail_part || (fx.rows[i].detail && strstr(fx.rows[i].detail, detail_part))))
			return true;
	return false;
}

static bool alerts(const char *worker)
{
	return fx.alert && id_list_has(fx.alert, worker);
}

static struct actor worker_actor(const char *id)
{
	struct actor w = { .kind = ACTOR_WORKER, .role = ROLE_WORKER };
	snprintf(w.id, sizeof(w.id), "%s", id);
	snprintf(w.worker, sizeof(w.worker), "%s", id);
	return w;
}

static struct life_event by(enum life_kind kind, const struct actor *who)
{
	return (struct life_event){ .kind = kind, .who = who,
	                            .as_worker = who->worker[0] ? who->worker : NULL,
	                            .as_name = who->worker[0] ? "Worker Name" : NULL };
}

/* an open care alarm whose first step alerted w-a */
static struct alarm *opened(void)
{
	struct alarm *a = care_alarm();
	assert_int_equal(apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_FALL,
	                                               .device = "pendant-1" }), 0);
	return a;
}

/* ---- opening ---- */

static void a_care_alarm_opens_and_alerts_its_first_step_at_once(void **state)
{
	(void)state;
	struct alarm *a = opened();
	assert_int_equal(a->state, ALARM_OPEN);
	assert_int_equal(a->opened_at, wall);
	assert_true(has_row(TL_OPENED, "pendant-1", "fall, priority 1"));
	assert_true(fx.publish_state && fx.publish_board && fx.save && fx.schedule);
	assert_true(alerts("w-a"));
	assert_int_equal(json_array_size(fx.alert), 1);
	assert_int_equal(a->step, 0);
	assert_int_equal(a->next_at, mono + 60000);   /* due on boottime, not wall time */
	assert_true(id_list_has(a->alerted, "w-a"));
	assert_false(fx.resolved);
	free_alarm(a);
}

static void technical_and_unknown_alarms_are_held_before_alerting(void **state)
{
	(void)state;
	struct alarm *a = care_alarm();
	a->technical = true;
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_POWER_LOSS, .device = "b-1" });
	assert_null(fx.alert);
	assert_int_equal(a->step, -1);
	assert_int_equal(a->next_at, mono + 2000);
	assert_true(fx.schedule);
	free_alarm(a);

	a = care_alarm();
	free(a->resident_id);
	a->resident_id = NULL;   /* an unregistered device */
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_PANIC, .device = "x-1" });
	assert_null(fx.alert);
	assert_int_equal(a->next_at, mono + 2000);
	/* ...and when the hold is over, the first step fires */
	mono += 2000;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_true(alerts("w-a"));
	assert_int_equal(a->step, 0);
	free_alarm(a);
}

static void a_test_alarm_is_resolved_at_once(void **state)
{
	(void)state;
	struct alarm *a = care_alarm();
	a->test = true;
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_PANIC, .device = "pendant-1" });
	assert_true(fx.resolved);
	assert_string_equal(a->outcome, "test");
	assert_null(fx.alert);
	assert_false(fx.follow_up);
	assert_true(has_row(TL_OPENED, NULL, "(test)"));
	assert_true(has_row(TL_RESOLVED, "telecared", "test"));
	free_alarm(a);
}

/* ---- device events ---- */

static void a_join_raises_the_priority_and_adds_the_type(void **state)
{
	(void)state;
	struct alarm *a = opened();
	a->priority = 2;
	json_t *loc = json_pack("{s:f, s:f}", "lat", 52.1, "lon", 21.0);
	apply(a, (struct life_event){ .kind = LIFE_JOIN, .type = TC_T_SMOKE, .priority = 1,
	                              .device = "pendant-1", .loc = loc });
	assert_int_equal(a->priority, 1);
	assert_int_equal(a->n_types, 2);
	assert_int_equal(a->types[1], TC_T_SMOKE);
	assert_true(json_equal(a->loc, loc));
	assert_true(has_row(TL_JOINED, "pendant-1", "smoke"));
	assert_true(fx.save && fx.publish_board);
	assert_null(fx.alert);
	json_decref(loc);
	free_alarm(a);
}

static void a_cancel_is_recorded_or_resolves_by_policy(void **state)
{
	(void)state;
	struct alarm *a = opened();
	apply(a, (struct life_event){ .kind = LIFE_CANCEL, .device = "pendant-1" });
	assert_true(has_row(TL_CANCELLED, "pendant-1", "cancelled by resident"));
	assert_int_equal(a->state, ALARM_OPEN);
	assert_false(fx.resolved);
	a->policy->cancel_resolves = true;
	apply(a, (struct life_event){ .kind = LIFE_CANCEL, .device = "pendant-1" });
	assert_true(fx.resolved);
	assert_string_equal(a->outcome, "user_cancelled");
	assert_true(fx.follow_up);   /* w-a was alerted: they hear it is over */
	free_alarm(a);
}

static void a_restoral_resolves_and_a_silent_device_is_watched_again(void **state)
{
	(void)state;
	struct alarm *a = care_alarm();
	a->technical = true;
	a->types[a->n_types++] = TC_T_CONNECTION_LOST;
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_CONNECTION_LOST,
	                              .device = "telecared", .detail = "silent for 20m" });
	assert_true(has_row(TL_OPENED, "telecared", "silent for 20m"));
	apply(a, (struct life_event){ .kind = LIFE_RESTORE, .type = TC_T_CONNECTION_RESTORED,
	                              .device = "b-1", .detail = "heard again" });
	assert_true(fx.resolved);
	assert_string_equal(a->outcome, "restored");
	assert_true(has_row(TL_RESOLVED, "b-1", "restored: heard again"));
	assert_true(fx.watch_again);
	free_alarm(a);
}

static void nothing_happens_to_a_resolved_alarm(void **state)
{
	(void)state;
	struct alarm *a = opened();
	a->state = ALARM_RESOLVED;
	assert_int_equal(apply(a, (struct life_event){ .kind = LIFE_STEP }), -1);
	assert_int_equal(fx.n_rows, 0);
	assert_null(fx.alert);
	free_alarm(a);
}

/* ---- escalation ---- */

static void a_due_step_alerts_the_next_step_and_not_before(void **state)
{
	(void)state;
	struct alarm *a = opened();
	mono += 59999;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_null(fx.alert);   /* not due yet */
	mono += 1;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_true(alerts("w-b"));
	assert_int_equal(a->step, 1);
	assert_int_equal(a->next_at, mono + 30000);
	/* the last step repeats at its own wait: never quiet */
	mono += 30000;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_true(alerts("w-b"));
	assert_int_equal(a->step, 1);
	free_alarm(a);
}

static void empty_steps_are_recorded_and_nobody_is_flagged(void **state)
{
	(void)state;
	step_targets[0][0] = NULL;
	struct alarm *a = opened();   /* step 1 names nobody: step 2 at once */
	assert_true(has_row(TL_STEP_EMPTY, "telecared", "step 1"));
	assert_true(alerts("w-b"));
	assert_false(fx.nobody);
	step_targets[1][0] = NULL;
	mono += 30000;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_null(fx.alert);
	assert_true(fx.nobody);       /* the gateway's own alarm follows */
	assert_true(fx.schedule);     /* and it keeps trying */
	assert_true(a->next_at > mono);
	free_alarm(a);
}

static void an_ack_timeout_reopens_and_alerts_the_first_step_once(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor wa = worker_actor("w-a");
	assert_int_equal(apply(a, by(LIFE_ACK, &wa)), 0);
	assert_int_equal(a->next_at, mono + 60000);   /* the ack timeout */
	mono += 60000;
	apply(a, (struct life_event){ .kind = LIFE_STEP });
	assert_int_equal(a->state, ALARM_OPEN);
	assert_null(a->acked_by);
	assert_true(has_row(TL_REOPENED, "telecared", "Worker Name"));
	assert_true(alerts("w-a"));
	/* everyone alerted before hears of it, but w-a only once: the shell
	 * skips fx.alert's workers in the follow-up */
	assert_true(fx.follow_up);
	assert_true(fx.publish_state);
	assert_int_equal(a->step, 0);
	free_alarm(a);
}

/* ---- people (SPEC 2.5) ---- */

static void an_alerted_worker_may_ack_and_the_ack_stops_escalation(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor wa = worker_actor("w-a");
	assert_int_equal(apply(a, by(LIFE_ACK, &wa)), 0);
	assert_int_equal(a->state, ALARM_ACKED);
	assert_string_equal(a->acked_by, "Worker Name");
	assert_string_equal(a->acked_by_id, "w-a");
	assert_int_equal(a->first_ack_at, wall);
	assert_true(has_row(TL_ACKNOWLEDGED, "w-a", "Worker Name"));
	assert_true(fx.follow_up && fx.publish_state && fx.publish_board && fx.save);
	assert_string_equal(fx.follow_skip, "w-a");
	/* again by the same worker: accepted, nothing changes */
	assert_int_equal(apply(a, by(LIFE_ACK, &wa)), 0);
	assert_int_equal(fx.n_rows, 0);
	free_alarm(a);
}

static void a_worker_who_was_not_alerted_is_refused_and_it_is_recorded(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor off = worker_actor("w-offduty");
	static const enum life_kind kinds[] = { LIFE_ACK, LIFE_DECLINE, LIFE_NOTE };
	for (size_t i = 0; i < 3; i++) {
		struct life_event ev = by(kinds[i], &off);
		ev.note = "x";
		assert_int_equal(apply(a, ev), -1);
		assert_true(fx.refused);
		assert_string_equal(fx.error, "alarm 42 has not alerted you");
		assert_true(has_row(TL_REFUSED, "w-offduty", "has not alerted you"));
		assert_false(fx.save);
		assert_int_equal(a->state, ALARM_OPEN);
	}
	free_alarm(a);
}

static void only_the_holder_or_a_dispatcher_resolves(void **state)
{
	(void)state;
	struct alarm *a = opened();
	step_targets[1][0] = "w-b";
	mono += 60000;
	apply(a, (struct life_event){ .kind = LIFE_STEP });   /* w-b alerted too */
	struct actor wa = worker_actor("w-a"), wb = worker_actor("w-b");
	struct life_event res = by(LIFE_RESOLVE, &wb);
	res.outcome = "visit";
	assert_int_equal(apply(a, res), -1);
	assert_string_equal(fx.error, "alarm 42 is not acknowledged: acknowledge it before resolving it");
	assert_int_equal(apply(a, by(LIFE_ACK, &wa)), 0);
	assert_int_equal(apply(a, res), -1);   /* alerted, but w-a holds it */
	assert_non_null(strstr(fx.error, "held by Worker Name"));
	assert_int_equal(apply(a, by(LIFE_ACK, &wb)), -1);
	assert_non_null(strstr(fx.error, "already acknowledged"));
	struct actor disp = { .kind = ACTOR_UNIX, .role = ROLE_DISPATCHER, .uid = 1001 };
	snprintf(disp.name, sizeof(disp.name), "anna");
	res = (struct life_event){ .kind = LIFE_RESOLVE, .who = &disp, .outcome = "visit",
	                           .note = "neighbour helped" };
	assert_int_equal(apply(a, res), 0);
	assert_true(fx.resolved);
	assert_true(has_row(TL_RESOLVED, "uid 1001 (anna)", "visit: neighbour helped"));
	free_alarm(a);
}

static void the_holder_resolves_and_everyone_else_hears(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor wa = worker_actor("w-a");
	apply(a, by(LIFE_ACK, &wa));
	struct life_event res = by(LIFE_RESOLVE, &wa);
	res.outcome = "assisted_by_phone";
	assert_int_equal(apply(a, res), 0);
	assert_int_equal(a->state, ALARM_RESOLVED);
	assert_int_equal(a->resolved_at, wall);
	assert_int_equal(a->next_at, 0);
	assert_true(fx.resolved && fx.follow_up && fx.publish_board && fx.publish_state);
	assert_string_equal(fx.follow_skip, "w-a");
	free_alarm(a);
}

static void acting_for_another_worker_needs_the_dispatcher_role(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor wb = worker_actor("w-b");
	struct life_event ev = by(LIFE_ACK, &wb);
	ev.as_worker = "w-a";
	assert_int_equal(apply(a, ev), -1);
	assert_string_equal(fx.error, "acting for worker w-a needs the dispatcher role");
	struct actor admin = { .kind = ACTOR_UNIX, .role = ROLE_ADMIN, .uid = 0 };
	ev = (struct life_event){ .kind = LIFE_ACK, .who = &admin, .as_worker = "w-a",
	                          .as_name = "Anna Nowak" };
	assert_int_equal(apply(a, ev), 0);
	assert_string_equal(a->acked_by, "Anna Nowak");
	assert_string_equal(a->acked_by_id, "w-a");
	assert_true(has_row(TL_ACKNOWLEDGED, "w-a (by uid 0)", NULL));
	free_alarm(a);
}

static void installers_act_only_on_devices_on_test(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor inst = { .kind = ACTOR_UNIX, .role = ROLE_INSTALLER, .uid = 1002 };
	struct life_event ev = { .kind = LIFE_NOTE, .who = &inst, .note = "checked" };
	assert_int_equal(apply(a, ev), -1);
	assert_non_null(strstr(fx.error, "not of a device on test"));
	ev.on_test = true;
	assert_int_equal(apply(a, ev), 0);
	assert_true(has_row(TL_NOTE, "uid 1002", "checked"));
	free_alarm(a);
}

static void when_everyone_in_a_step_declines_the_next_fires_at_once(void **state)
{
	(void)state;
	step_targets[0][1] = "w-c";
	struct alarm *a = opened();
	struct actor wa = worker_actor("w-a"), wc = worker_actor("w-c"), wb = worker_actor("w-b");
	assert_int_equal(apply(a, by(LIFE_DECLINE, &wa)), 0);
	assert_true(has_row(TL_DECLINED, "w-a", NULL));
	assert_null(fx.alert);
	assert_int_equal(apply(a, by(LIFE_DECLINE, &wa)), 0);   /* twice: nothing more */
	assert_int_equal(fx.n_rows, 0);
	assert_int_equal(apply(a, by(LIFE_DECLINE, &wc)), 0);
	assert_true(alerts("w-b"));
	assert_int_equal(a->step, 1);
	/* w-a was alerted, but not by the current step */
	assert_int_equal(apply(a, by(LIFE_DECLINE, &wa)), -1);
	assert_non_null(strstr(fx.error, "not alerted by the current step"));
	assert_int_equal(apply(a, by(LIFE_DECLINE, &wb)), 0);
	free_alarm(a);
}

static void a_note_needs_text_and_long_text_arrives_whole(void **state)
{
	(void)state;
	struct alarm *a = opened();
	struct actor wa = worker_actor("w-a");
	struct life_event ev = by(LIFE_NOTE, &wa);
	assert_int_equal(apply(a, ev), -1);
	assert_non_null(strstr(fx.error, "needs a \"note\""));
	char note[801];
	for (int i = 0; i < 400; i++)
		memcpy(note + 2 * i, "\xc4\x85", 2);   /* 400 x "ą" */
	note[800] = '\0';
	ev.note = note;
	assert_int_equal(apply(a, ev), 0);
	assert_true(has_row(TL_NOTE, "w-a", note));
	assert_int_equal(strlen(fx.rows[0].detail), 800);
	free_alarm(a);
}

/* ---- mass incidents ---- */

static void a_folded_alarm_resolves_without_a_follow_up(void **state)
{
	(void)state;
	struct alarm *a = care_alarm();
	a->technical = true;
	a->types[a->n_types++] = TC_T_CONNECTION_LOST;
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_CONNECTION_LOST,
	                              .device = "b-1" });
	apply(a, (struct life_event){ .kind = LIFE_FOLD, .incident = 77 });
	assert_true(fx.resolved);
	assert_string_equal(a->outcome, "folded");
	assert_true(has_row(TL_FOLDED, "telecared", "into incident 77"));
	assert_false(fx.follow_up);
	assert_false(fx.watch_again);   /* the incident watches its devices */
	free_alarm(a);
}

static void an_incident_resolves_itself_when_every_device_is_restored(void **state)
{
	(void)state;
	struct alarm *a = care_alarm();
	a->technical = true;
	a->incident = calloc(1, sizeof(*a->incident));
	snprintf(a->incident->cls, sizeof(a->incident->cls), "power_loss");
	apply(a, (struct life_event){ .kind = LIFE_OPEN, .type = TC_T_POWER_LOSS,
	                              .device = "telecared", .detail = "21 devices" });
	assert_true(alerts("w-a"));   /* an incident is never held: it is the news */
	a->incident->devices = 2;
	apply(a, (struct life_event){ .kind = LIFE_MEMBER_JOIN, .type = TC_T_POWER_LOSS,
	                              .device = "b-9", .priority = 3 });
	assert_true(has_row(TL_JOINED, "b-9", "power_loss"));
	assert_true(fx.publish_board);
	assert_false(fx.save);        /* the member's own row says it */
	a->incident->restored = 1;
	apply(a, (struct life_event){ .kind = LIFE_MEMBER_RESTORE, .type = TC_T_POWER_LOSS,
	                              .device = "b-9" });
	assert_true(has_row(TL_RESTORED, "b-9", NULL));
	assert_false(fx.resolved);
	a->incident->restored = 2;
	apply(a, (struct life_event){ .kind = LIFE_MEMBER_RESTORE, .type = TC_T_POWER_LOSS,
	                              .device = "b-1" });
	assert_true(fx.resolved);
	assert_string_equal(a->outcome, "restored");
	free_alarm(a);
}

static void adoption_is_recorded(void **state)
{
	(void)state;
	struct alarm *a = opened();
	apply(a, (struct life_event){ .kind = LIFE_ADOPT });
	assert_true(has_row(TL_ADOPTED, "telecared", "r-1"));
	assert_true(fx.save && fx.publish_board);
	free_alarm(a);
}

static void every_timeline_word_has_a_name(void **state)
{
	(void)state;
	for (int w = 0; w < TL__COUNT; w++) {
		assert_non_null(tl_name((enum tl_what)w));
		assert_string_not_equal(tl_name((enum tl_what)w), "?");
	}
}

static int teardown(void **state)
{
	(void)state;
	effects_clear(&fx);
	return 0;
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(a_care_alarm_opens_and_alerts_its_first_step_at_once),
		T(technical_and_unknown_alarms_are_held_before_alerting),
		T(a_test_alarm_is_resolved_at_once),
		T(a_join_raises_the_priority_and_adds_the_type),
		T(a_cancel_is_recorded_or_resolves_by_policy),
		T(a_restoral_resolves_and_a_silent_device_is_watched_again),
		T(nothing_happens_to_a_resolved_alarm),
		T(a_due_step_alerts_the_next_step_and_not_before),
		T(empty_steps_are_recorded_and_nobody_is_flagged),
		T(an_ack_timeout_reopens_and_alerts_the_first_step_once),
		T(an_alerted_worker_may_ack_and_the_ack_stops_escalation),
		T(a_worker_who_was_not_alerted_is_refused_and_it_is_recorded),
		T(only_the_holder_or_a_dispatcher_resolves),
		T(the_holder_resolves_and_everyone_else_hears),
		T(acting_for_another_worker_needs_the_dispatcher_role),
		T(installers_act_only_on_devices_on_test),
		T(when_everyone_in_a_step_declines_the_next_fires_at_once),
		T(a_note_needs_text_and_long_text_arrives_whole),
		T(a_folded_alarm_resolves_without_a_follow_up),
		T(an_incident_resolves_itself_when_every_device_is_restored),
		T(adoption_is_recorded),
		T(every_timeline_word_has_a_name),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
