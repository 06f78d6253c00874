/* The escalation schedule (SPEC 4, SPEC-EXTENSIONS "Escalation"):
 * policy_next() with an injected clock (plain integers) and a fake
 * has_targets() that decides which steps resolve to nobody and records every
 * question it is asked. Also policy_exhausted()'s truth table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecared.h"

static struct policy *make(int repeat, const char **steps, int n)
{
	struct policy *p = policy_new("test");
	assert_non_null(p);
	p->priorities = 1u << 1;
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

/* The fake: steps whose bit is set in `empty` resolve to nobody. */
struct fake {
	unsigned empty;
	int n_calls;
	struct { int step, round; } calls[256];
};

static bool fake_has_targets(void *ctx, int step, int round)
{
	struct fake *f = ctx;
	if (f->n_calls >= (int)(sizeof(f->calls) / sizeof(f->calls[0])))
		fail_msg("has_targets asked more than %d times", f->n_calls);
	f->calls[f->n_calls].step = step;
	f->calls[f->n_calls].round = round;
	f->n_calls++;
	return !(f->empty & (1u << step));
}

/* One call of policy_next with the fake, checking where it lands. */
static int64_t next(const struct policy *p, struct fake *f, int *step, int *round, int64_t now,
                    int want_step, int want_round, int64_t want_at, const char *what)
{
	int64_t at = policy_next(p, step, round, now, fake_has_targets, f);
	if (*step != want_step || *round != want_round || at != want_at)
		fail_msg("%s: at t=%lld got (step %d, round %d, next_at %lld), want (%d, %d, %lld)",
		         what, (long long)now, *step, *round, (long long)at, want_step, want_round,
		         (long long)want_at);
	return at;
}

static const char *three[] = { "worker:a wait 1s", "worker:b wait 2s", "worker:c wait 3s" };

/* SPEC 4: the chain, then `repeat` more passes, then the last step forever. */
static void test_sequence(void **state)
{
	(void)state;
	struct policy *p = make(1, three, 3);
	struct fake f = { 0 };
	int step = -1, round = -1;
	static const struct { int step, round; int64_t at; } want[] = {
		{ 0, 0, 1000 }, { 1, 0, 3000 }, { 2, 0, 6000 },
		{ 0, 1, 7000 }, { 1, 1, 9000 }, { 2, 1, 12000 },
		{ 2, 1, 15000 }, { 2, 1, 18000 }, { 2, 1, 21000 }, { 2, 1, 24000 }, { 2, 1, 27000 },
	};
	int64_t now = 0;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char what[32];
		snprintf(what, sizeof(what), "call %zu", i);
		int before = f.n_calls;
		now = next(p, &f, &step, &round, now, want[i].step, want[i].round, want[i].at, what);
		/* nobody is empty: exactly one question, about the step it lands on */
		assert_int_equal(f.n_calls, before + 1);
		assert_int_equal(f.calls[before].step, want[i].step);
		assert_int_equal(f.calls[before].round, want[i].round);
	}
	policy_unref(p);
}

/* SPEC 4: a step whose targets resolve to nobody is skipped at once. */
static void test_empty_middle_step(void **state)
{
	(void)state;
	struct policy *p = make(1, three, 3);
	struct fake f = { .empty = 1u << 1 };
	int step = -1, round = -1;

	next(p, &f, &step, &round, 0, 0, 0, 1000, "first");
	assert_int_equal(f.n_calls, 1);
	/* step 1 is asked about, found empty, and step 2 follows at once with its own wait */
	next(p, &f, &step, &round, 1000, 2, 0, 4000, "skip step 1");
	assert_int_equal(f.n_calls, 3);
	assert_int_equal(f.calls[1].step, 1);
	assert_int_equal(f.calls[1].round, 0);
	assert_int_equal(f.calls[2].step, 2);
	assert_int_equal(f.calls[2].round, 0);

	/* the second pass skips it too */
	next(p, &f, &step, &round, 4000, 0, 1, 5000, "round 1 step 0");
	next(p, &f, &step, &round, 5000, 2, 1, 8000, "round 1 skip step 1");
	assert_int_equal(f.n_calls, 6);
	assert_int_equal(f.calls[4].step, 1);
	assert_int_equal(f.calls[4].round, 1);
	next(p, &f, &step, &round, 8000, 2, 1, 11000, "forever");
	policy_unref(p);

	/* an empty first step: the alarm starts on step 1 */
	p = make(0, three, 3);
	f = (struct fake){ .empty = 1u << 0 };
	step = round = -1;
	next(p, &f, &step, &round, 0, 1, 0, 2000, "empty first step");
	assert_int_equal(f.n_calls, 2);
	assert_int_equal(f.calls[0].step, 0);
	assert_int_equal(f.calls[1].step, 1);
	policy_unref(p);
}

/* SPEC-EXTENSIONS: a whole chain of empty steps goes straight to repeating
 * the last step at its wait. */
static void test_all_empty(void **state)
{
	(void)state;
	for (int repeat = 0; repeat <= 3; repeat++) {
		struct policy *p = make(repeat, three, 3);
		struct fake f = { .empty = 0x7 };
		int step = -1, round = -1;
		char what[64];
		snprintf(what, sizeof(what), "repeat %d: first call", repeat);
		next(p, &f, &step, &round, 0, 2, repeat, 3000, what);
		assert_true(f.n_calls >= 1);
		assert_true(f.n_calls <= p->n_steps);
		assert_true(policy_exhausted(p, step, round));
		int64_t now = 3000;
		for (int i = 0; i < 5; i++) {
			int before = f.n_calls;
			snprintf(what, sizeof(what), "repeat %d: later call %d", repeat, i);
			now = next(p, &f, &step, &round, now, 2, repeat, now + 3000, what);
			assert_int_equal(f.n_calls, before + 1);
			assert_int_equal(f.calls[before].step, 2);
			assert_int_equal(f.calls[before].round, repeat);
		}
		policy_unref(p);
	}

	/* the chain goes empty mid-way (workers went off duty): same landing */
	struct policy *p = make(2, three, 3);
	struct fake f = { 0 };
	int step = -1, round = -1;
	next(p, &f, &step, &round, 0, 0, 0, 1000, "before");
	f.empty = 0x7;
	f.n_calls = 0;
	next(p, &f, &step, &round, 1000, 2, 2, 4000, "empty from step 1");
	assert_true(f.n_calls <= p->n_steps);
	policy_unref(p);
}

/* SPEC 4: after the repeats the last step repeats at its own wait until
 * someone acknowledges, even when it finds nobody: it does not loop back. */
static void test_empty_last_step_forever(void **state)
{
	(void)state;
	struct policy *p = make(1, three, 3);
	struct fake f = { 0 };
	int step = -1, round = -1;
	int64_t now = 0;
	for (int i = 0; i < 6; i++)
		now = policy_next(p, &step, &round, now, fake_has_targets, &f);
	assert_int_equal(step, 2);
	assert_int_equal(round, 1);
	assert_int_equal(now, 12000);

	f.empty = 1u << 2;
	for (int i = 0; i < 5; i++) {
		int before = f.n_calls;
		now = next(p, &f, &step, &round, now, 2, 1, now + 3000, "empty last step");
		assert_int_equal(f.n_calls, before + 1);
		assert_int_equal(f.calls[before].step, 2);
	}
	/* and someone comes on duty again: still the last step */
	f.empty = 0;
	next(p, &f, &step, &round, now, 2, 1, now + 3000, "back on duty");
	policy_unref(p);

	/* with only the last step empty from the start, the chain still runs */
	p = make(0, three, 3);
	f = (struct fake){ .empty = 1u << 2 };
	step = round = -1;
	next(p, &f, &step, &round, 0, 0, 0, 1000, "step 0");
	next(p, &f, &step, &round, 1000, 1, 0, 3000, "step 1");
	next(p, &f, &step, &round, 3000, 2, 0, 6000, "empty last step");
	next(p, &f, &step, &round, 6000, 2, 0, 9000, "empty last step again");
	policy_unref(p);
}

static void test_single_step(void **state)
{
	(void)state;
	const char *one[] = { "on_duty:* wait 30s" };
	struct policy *p = make(0, one, 1);
	struct fake f = { 0 };
	int step = -1, round = -1;
	int64_t now = 100;
	for (int i = 0; i < 6; i++)
		now = next(p, &f, &step, &round, now, 0, 0, now + 30000, "single step");
	assert_int_equal(f.n_calls, 6);

	f = (struct fake){ .empty = 1 };
	step = round = -1;
	now = 100;
	for (int i = 0; i < 6; i++)
		now = next(p, &f, &step, &round, now, 0, 0, now + 30000, "single empty step");
	assert_int_equal(f.n_calls, 6);
	policy_unref(p);
}

static void test_exhausted(void **state)
{
	(void)state;
	struct policy *p = make(2, three, 3);
	static const struct { int step, round; bool want; } t[] = {
		{ -1, -1, false }, { 0, 0, false }, { 2, 0, false }, { 2, 1, false },
		{ 0, 2, false }, { 1, 2, false }, { 2, 2, true }, { 2, 3, true },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (policy_exhausted(p, t[i].step, t[i].round) != t[i].want)
			fail_msg("repeat 2, 3 steps: exhausted(%d, %d) != %d", t[i].step, t[i].round,
			         t[i].want);
	policy_unref(p);

	p = make(0, three, 3);
	assert_false(policy_exhausted(p, -1, -1));
	assert_false(policy_exhausted(p, 0, 0));
	assert_false(policy_exhausted(p, 1, 0));
	assert_true(policy_exhausted(p, 2, 0));
	policy_unref(p);

	const char *one[] = { "on_duty:* wait 30s" };
	p = make(0, one, 1);
	assert_false(policy_exhausted(p, -1, -1));
	assert_true(policy_exhausted(p, 0, 0));
	policy_unref(p);

	p = make(1, one, 1);
	assert_false(policy_exhausted(p, 0, 0));
	assert_true(policy_exhausted(p, 0, 1));
	policy_unref(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_empty_middle_step),
		cmocka_unit_test(test_all_empty),
		cmocka_unit_test(test_empty_last_step_forever),
		cmocka_unit_test(test_single_step),
		cmocka_unit_test(test_exhausted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
