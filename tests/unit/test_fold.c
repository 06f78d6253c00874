/* The mass-incident rule (daemon/fold.c, SPEC 3.1) with a fake clock: more
 * than N distinct devices of a class within the window fold; each device
 * counts once; the window slides; registered care alarms never fold; the
 * alarms found open at start fold by the same rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "telecared.h"

static void only_technical_alarms_and_strangers_fold(void **state)
{
	(void)state;
	assert_string_equal(mass_class(TC_T_POWER_LOSS, true, false), "power_loss");
	assert_string_equal(mass_class(TC_T_CONNECTION_LOST, true, false), "connection_lost");
	assert_null(mass_class(TC_T_FALL, true, false));        /* every fall is its own alarm */
	assert_null(mass_class(TC_T_PANIC, true, false));
	assert_string_equal(mass_class(TC_T_PANIC, false, false), "unknown");
	assert_string_equal(mass_class(TC_T_POWER_LOSS, false, false), "unknown");
	assert_null(mass_class(TC_T_POWER_LOSS, true, true));   /* tests never fold */
	assert_null(mass_class(TC_T_HEARTBEAT, false, false));
	assert_null(mass_class(TC_T_POWER_RESTORED, true, false));
}

static void more_than_the_threshold_within_the_window_folds(void **state)
{
	(void)state;
	struct fold_window w = { 0 };
	char dev[16];
	int64_t t = 1000000;
	for (int i = 0; i < 20; i++) {
		snprintf(dev, sizeof(dev), "b-%d", i);
		assert_int_equal(fold_arrive(&w, dev, t + i * 100, 20, 120000), 0);
	}
	/* the same devices again: still twenty */
	for (int i = 0; i < 20; i++) {
		snprintf(dev, sizeof(dev), "b-%d", i);
		assert_int_equal(fold_arrive(&w, dev, t + 3000, 20, 120000), 0);
	}
	assert_int_equal(fold_arrive(&w, "b-20", t + 4000, 20, 120000), 1);   /* the 21st */
	assert_int_equal(w.len, 21);
	assert_string_equal(fold_device(&w, 0), "b-0");
	assert_string_equal(fold_device(&w, 20), "b-20");
	fold_window_free(&w);
}

static void the_window_slides(void **state)
{
	(void)state;
	struct fold_window w = { 0 };
	/* one new device a minute: never more than 2 within 2 minutes */
	char dev[16];
	for (int i = 0; i < 50; i++) {
		snprintf(dev, sizeof(dev), "d-%d", i);
		assert_int_equal(fold_arrive(&w, dev, (int64_t)i * 61000, 3, 120000), 0);
		assert_true(w.len <= 3);
	}
	/* then three at once, with the last minute's two: more than 3 */
	assert_int_equal(fold_arrive(&w, "x-1", 49 * 61000 + 10, 3, 120000), 0);
	assert_int_equal(fold_arrive(&w, "x-2", 49 * 61000 + 20, 3, 120000), 1);
	fold_window_free(&w);
}

static void a_threshold_of_zero_never_folds_and_a_new_one_counts_afresh(void **state)
{
	(void)state;
	struct fold_window w = { 0 };
	char dev[16];
	for (int i = 0; i < 100; i++) {
		snprintf(dev, sizeof(dev), "d-%d", i);
		assert_int_equal(fold_arrive(&w, dev, i, 0, 120000), 0);
	}
	assert_int_equal(fold_arrive(&w, "a", 0, 2, 1000), 0);
	assert_int_equal(fold_arrive(&w, "b", 1, 2, 1000), 0);
	/* a reload lowered the threshold: the count starts again */
	assert_int_equal(fold_arrive(&w, "c", 2, 1, 1000), 0);
	assert_int_equal(w.len, 1);
	assert_int_equal(fold_arrive(&w, "d", 3, 1, 1000), 1);
	fold_window_free(&w);
}

static void alarms_open_at_start_fold_by_the_same_rule(void **state)
{
	(void)state;
	/* opened times, sorted: a burst of 5 within 2 s among stragglers */
	int64_t opened[] = { 0, 60000, 100000, 100100, 100200, 100300, 100400, 400000 };
	bool fold[8] = { 0 };
	assert_int_equal(fold_select(opened, 8, 2000, 4, fold), 5);
	bool want[8] = { false, false, true, true, true, true, true, false };
	assert_memory_equal(fold, want, sizeof(want));
	/* exactly the threshold: nothing folds */
	bool none[8] = { 0 };
	assert_int_equal(fold_select(opened, 8, 2000, 5, none), 0);
	/* threshold 0: never */
	assert_int_equal(fold_select(opened, 8, 2000, 0, none), 0);
	/* a long blackout: every alarm is within a window of some others */
	int64_t spread[2000];
	bool all[2000] = { 0 };
	for (int i = 0; i < 2000; i++)
		spread[i] = (int64_t)i * 100;   /* 200 s, 10 a second */
	assert_int_equal(fold_select(spread, 2000, 120000, 20, all), 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(only_technical_alarms_and_strangers_fold),
		cmocka_unit_test(more_than_the_threshold_within_the_window_folds),
		cmocka_unit_test(the_window_slides),
		cmocka_unit_test(a_threshold_of_zero_never_folds_and_a_new_one_counts_afresh),
		cmocka_unit_test(alarms_open_at_start_fold_by_the_same_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
