/* Escalation policies (SPEC 4): the pure parts of daemon/policy.c — step
 * parsing, the schedule (policy_advance / policy_exhausted), the JSON an
 * alarm keeps its policy in, and the built-in fallback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecared.h"

static struct policy *make(const char *name, unsigned prios, int repeat, const char **steps, int n)
{
	struct policy *p = policy_new(name);
	assert_non_null(p);
	p->priorities = prios;
	p->repeat = repeat;
	p->steps = calloc((size_t)n, sizeof(*p->steps));
	assert_non_null(p->steps);
	char err[200];
	for (int i = 0; i < n; i++) {
		if (policy_parse_step(steps[i], &p->steps[i], err, sizeof(err)) != 0)
			fail_msg("step \"%s\" rejected: %s", steps[i], err);
		p->n_steps++;
	}
	return p;
}

static void test_parse_step(void **state)
{
	(void)state;
	struct step st;
	char err[200];

	assert_int_equal(policy_parse_step("on_duty:@team wait 60s", &st, err, sizeof(err)), 0);
	assert_int_equal(st.n_targets, 1);
	assert_int_equal(st.targets[0].kind, TGT_ON_DUTY_RESIDENT_TEAM);
	assert_null(st.targets[0].arg);
	assert_int_equal(st.wait_ms, 60000);
	free(st.targets);

	assert_int_equal(policy_parse_step("on_duty:night, on_duty:*,team:sup worker:w-1 wait 1h30m",
	                                   &st, err, sizeof(err)), 0);
	assert_int_equal(st.n_targets, 4);
	assert_int_equal(st.targets[0].kind, TGT_ON_DUTY_TEAM);
	assert_string_equal(st.targets[0].arg, "night");
	assert_int_equal(st.targets[1].kind, TGT_ON_DUTY_ALL);
	assert_int_equal(st.targets[2].kind, TGT_TEAM);
	assert_string_equal(st.targets[2].arg, "sup");
	assert_int_equal(st.targets[3].kind, TGT_WORKER);
	assert_string_equal(st.targets[3].arg, "w-1");
	assert_int_equal(st.wait_ms, 5400000);
	for (int k = 0; k < st.n_targets; k++)
		free(st.targets[k].arg);
	free(st.targets);

	static const char *bad[] = {
		"on_duty:@team", "on_duty:@team wait", "on_duty:@team wait 10ms", "on_duty:@team wait x",
		" wait 60s", "nobody wait 60s", "team: wait 60s", "worker:a/b wait 60s",
		"on_duty:@team, bogus wait 60s",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (policy_parse_step(bad[i], &st, err, sizeof(err)) == 0)
			fail_msg("step \"%s\" accepted", bad[i]);
		assert_true(strlen(err) > 0);
		assert_null(st.targets);
		assert_int_equal(st.n_targets, 0);
	}
}

/* SPEC 4: after the last step the chain starts again `repeat` times; after
 * that the last step repeats at its own wait until someone acknowledges. */
static void test_schedule(void **state)
{
	(void)state;
	const char *steps[] = { "on_duty:@team wait 60s", "on_duty:* wait 60s", "team:sup wait 2m" };
	struct policy *p = make("urgent", 1u << 1, 2, steps, 3);
	int step = -1, round = -1;
	static const int want_step[] = { 0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 2, 2 };
	static const int want_round[] = { 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2 };
	for (size_t i = 0; i < sizeof(want_step) / sizeof(want_step[0]); i++) {
		policy_advance(p, &step, &round);
		if (step != want_step[i] || round != want_round[i])
			fail_msg("advance %zu: step %d round %d, want step %d round %d", i, step, round,
			         want_step[i], want_round[i]);
		assert_int_equal(policy_exhausted(p, step, round), i >= 8);
	}
	policy_unref(p);

	/* one step, no repeat: the only step repeats forever */
	const char *one[] = { "on_duty:* wait 30s" };
	p = make("single", 1u << 2, 0, one, 1);
	step = -1;
	for (int i = 0; i < 5; i++) {
		policy_advance(p, &step, &round);
		assert_int_equal(step, 0);
		assert_int_equal(round, 0);
		assert_true(policy_exhausted(p, step, round));
	}
	policy_unref(p);
}

static void test_json_round_trip(void **state)
{
	(void)state;
	const char *steps[] = { "on_duty:@team wait 60s", "on_duty:night,worker:w-1 wait 90s",
	                        "team:sup wait 1h30m" };
	struct policy *p = make("urgent", (1u << 1) | (1u << 3), 2, steps, 3);
	p->ack_timeout_ms = 15 * 60000;
	p->cancel_resolves = true;
	json_t *j = policy_json(p);
	assert_non_null(j);
	struct policy *q = policy_from_json(j);
	assert_non_null(q);
	assert_string_equal(q->name, "urgent");
	assert_int_equal(q->priorities, p->priorities);
	assert_int_equal(q->repeat, 2);
	assert_int_equal(q->ack_timeout_ms, 15 * 60000);
	assert_true(q->cancel_resolves);
	assert_int_equal(q->n_steps, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(q->steps[i].wait_ms, p->steps[i].wait_ms);
		assert_int_equal(q->steps[i].n_targets, p->steps[i].n_targets);
		for (int k = 0; k < p->steps[i].n_targets; k++) {
			assert_int_equal(q->steps[i].targets[k].kind, p->steps[i].targets[k].kind);
			if (p->steps[i].targets[k].arg)
				assert_string_equal(q->steps[i].targets[k].arg, p->steps[i].targets[k].arg);
			else
				assert_null(q->steps[i].targets[k].arg);
		}
	}
	/* and the JSON of the copy is the same JSON */
	json_t *j2 = policy_json(q);
	assert_true(json_equal(j, j2));
	json_decref(j2);
	json_decref(j);
	policy_unref(q);
	policy_unref(p);

	/* malformed JSON gives NULL */
	const char *bad[] = { "{}", "{\"name\":\"x\"}", "{\"name\":\"x\",\"steps\":[]}",
	                      "{\"name\":\"x\",\"steps\":[\"nobody wait 1s\"]}",
	                      "{\"name\":\"x\",\"steps\":[5]}", "{\"steps\":[\"on_duty:* wait 1s\"]}",
	                      "[]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *b = json_loads(bad[i], 0, NULL);
		assert_non_null(b);
		struct policy *r = policy_from_json(b);
		if (r) {
			policy_unref(r);
			fail_msg("policy_from_json(%s) accepted", bad[i]);
		}
		json_decref(b);
	}
}

static void test_refcount(void **state)
{
	(void)state;
	const char *one[] = { "on_duty:* wait 30s" };
	struct policy *p = make("x", 2, 0, one, 1);
	assert_ptr_equal(policy_ref(p), p);
	assert_int_equal(p->refs, 2);
	policy_unref(p);
	assert_int_equal(p->refs, 1);
	policy_unref(p);   /* freed: ASan/valgrind see a double free or leak */
	assert_null(policy_ref(NULL));
	policy_unref(NULL);
}

static void test_policy_for(void **state)
{
	(void)state;
	struct config c;
	memset(&c, 0, sizeof(c));
	const char *one[] = { "worker:w wait 30s" };
	struct policy *mine = make("mine", 1u << 2, 0, one, 1);
	c.policies = &mine;
	c.n_policies = 1;
	assert_ptr_equal(policy_for(&c, 2), mine);
	/* priorities no section covers get a built-in policy that alerts someone */
	for (int prio = 1; prio <= 9; prio++) {
		if (prio == 2)
			continue;
		struct policy *b = policy_for(&c, prio);
		assert_non_null(b);
		assert_ptr_not_equal(b, mine);
		assert_true(b->n_steps >= 1);
		assert_true(b->steps[0].n_targets >= 1);
		assert_true(b->ack_timeout_ms > 0);
	}
	assert_non_null(policy_for(NULL, 1));
	policy_unref(mine);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_step),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_refcount),
		cmocka_unit_test(test_policy_for),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
