/* SPEC 3 as a pure rule: alarm_decide (daemon/decide.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecared.h"

/* The device's open alarm keys, as the fake has_open sees them. */
struct open_set {
	const char *keys[8];
	size_t n;
	int calls;
};

static bool has_open(void *ctx, const char *key)
{
	struct open_set *o = ctx;
	o->calls++;
	for (size_t i = 0; i < o->n; i++)
		if (strcmp(o->keys[i], key) == 0)
			return true;
	return false;
}

static struct config cfg;

static int setup(void **state)
{
	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.unknown_devices = UNKNOWN_ALARM;
	for (int t = 0; t < TC_T__COUNT; t++)
		cfg.priority[t] = tc_type_default_priority((enum tc_type)t);
	return 0;
}

struct opts {
	bool unregistered;
	bool on_test;
	bool test_flag;
};

static struct alarm_decision decide3(const char *device, enum tc_type type, struct open_set *open,
                                     struct opts o)
{
	struct tc_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.battery = -1;
	ev.test = o.test_flag;
	struct alarm_decision d;
	memset(&d, 0xa5, sizeof(d));  /* the rule must set every field */
	alarm_decide(&cfg, device, !o.unregistered, o.on_test, &ev, has_open, open, &d);
	return d;
}

static struct alarm_decision decide(enum tc_type type, struct open_set *open)
{
	return decide3("dev", type, open, (struct opts){ 0 });
}

static void test_panic_opens_care(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	struct alarm_decision d = decide(TC_T_PANIC, &none);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");
	assert_int_equal(d.priority, 1);
	assert_false(d.technical);
	assert_false(d.test);
}

static void test_panic_joins_open_care(void **state)
{
	(void)state;
	struct open_set care = { .keys = { "dev/care" }, .n = 1 };
	struct alarm_decision d = decide(TC_T_PANIC, &care);
	assert_int_equal(d.action, ACT_JOIN);
	assert_string_equal(d.key, "dev/care");
	assert_int_equal(d.priority, 1);
	assert_false(d.technical);

	/* every alarm-kind type shares the one care alarm */
	d = decide(TC_T_DOOR, &care);
	assert_int_equal(d.action, ACT_JOIN);
	assert_string_equal(d.key, "dev/care");
	assert_int_equal(d.priority, 2);
}

static void test_other_devices_alarm_does_not_count(void **state)
{
	(void)state;
	struct open_set other = { .keys = { "dev2/care", "de/care", "dev/power_loss" }, .n = 3 };
	struct alarm_decision d = decide(TC_T_FALL, &other);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");
}

static void test_inactivity_priority_2(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	struct alarm_decision d = decide(TC_T_INACTIVITY, &none);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");
	assert_int_equal(d.priority, 2);
	assert_false(d.technical);
}

static void test_every_alarm_type_priority(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	for (int t = 0; t < TC_T__COUNT; t++) {
		enum tc_kind k = tc_type_kind((enum tc_type)t);
		if (k != TC_KIND_ALARM && k != TC_KIND_TECHNICAL)
			continue;
		struct alarm_decision d = decide((enum tc_type)t, &none);
		assert_int_equal(d.action, ACT_OPEN);
		assert_int_equal(d.priority, tc_type_default_priority((enum tc_type)t));
		assert_int_equal(d.technical, k == TC_KIND_TECHNICAL);
	}
}

static void test_low_battery_technical(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	struct alarm_decision d = decide(TC_T_LOW_BATTERY, &none);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/low_battery");
	assert_int_equal(d.priority, 3);
	assert_true(d.technical);

	struct open_set lb = { .keys = { "dev/low_battery" }, .n = 1 };
	d = decide(TC_T_LOW_BATTERY, &lb);
	assert_int_equal(d.action, ACT_JOIN);
	assert_string_equal(d.key, "dev/low_battery");
	assert_true(d.technical);

	/* an open care alarm is another slot: low battery still opens its own */
	struct open_set care = { .keys = { "dev/care" }, .n = 1 };
	d = decide(TC_T_LOW_BATTERY, &care);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/low_battery");

	/* and a technical alarm does not take a care event */
	d = decide(TC_T_PANIC, &lb);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");

	/* each technical type has its own slot */
	d = decide(TC_T_TAMPER, &lb);
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/tamper");
}

static void test_restorals(void **state)
{
	(void)state;
	struct open_set pl = { .keys = { "dev/power_loss", "dev/care" }, .n = 2 };
	struct alarm_decision d = decide(TC_T_POWER_RESTORED, &pl);
	assert_int_equal(d.action, ACT_RESOLVE);
	assert_string_equal(d.key, "dev/power_loss");

	struct open_set none = { .keys = { "dev/care", "dev/connection_lost" }, .n = 2 };
	d = decide(TC_T_POWER_RESTORED, &none);
	assert_int_equal(d.action, ACT_NONE);

	d = decide(TC_T_CONNECTION_RESTORED, &none);
	assert_int_equal(d.action, ACT_RESOLVE);
	assert_string_equal(d.key, "dev/connection_lost");

	struct open_set empty = { .n = 0 };
	d = decide(TC_T_CONNECTION_RESTORED, &empty);
	assert_int_equal(d.action, ACT_NONE);
}

static void test_cancel(void **state)
{
	(void)state;
	struct open_set care = { .keys = { "dev/care" }, .n = 1 };
	struct alarm_decision d = decide(TC_T_CANCEL, &care);
	assert_int_equal(d.action, ACT_CANCEL);
	assert_string_equal(d.key, "dev/care");

	struct open_set tech = { .keys = { "dev/power_loss" }, .n = 1 };
	d = decide(TC_T_CANCEL, &tech);
	assert_int_equal(d.action, ACT_NONE);

	struct open_set none = { .n = 0 };
	d = decide(TC_T_CANCEL, &none);
	assert_int_equal(d.action, ACT_NONE);
}

static void test_heartbeat(void **state)
{
	(void)state;
	struct open_set care = { .keys = { "dev/care", "dev/power_loss" }, .n = 2 };
	struct alarm_decision d = decide(TC_T_HEARTBEAT, &care);
	assert_int_equal(d.action, ACT_NONE);
	assert_int_equal(d.priority, 0);
}

static void test_test_never_joins(void **state)
{
	(void)state;
	struct open_set care = { .keys = { "dev/care", "dev/low_battery" }, .n = 2 };

	struct alarm_decision d = decide3("dev", TC_T_PANIC, &care, (struct opts){ .test_flag = true });
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");
	assert_true(d.test);
	assert_int_equal(d.priority, 1);

	d = decide3("dev", TC_T_FALL, &care, (struct opts){ .on_test = true });
	assert_int_equal(d.action, ACT_OPEN);
	assert_true(d.test);

	d = decide3("dev", TC_T_LOW_BATTERY, &care, (struct opts){ .on_test = true });
	assert_int_equal(d.action, ACT_OPEN);
	assert_true(d.technical);
	assert_true(d.test);

	struct open_set none = { .n = 0 };
	d = decide3("dev", TC_T_PANIC, &none, (struct opts){ .test_flag = true, .on_test = true });
	assert_int_equal(d.action, ACT_OPEN);
	assert_true(d.test);

	/* a real event on a device not on test is not a test */
	d = decide3("dev", TC_T_PANIC, &care, (struct opts){ 0 });
	assert_int_equal(d.action, ACT_JOIN);
	assert_false(d.test);
}

static void test_unregistered(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	struct open_set care = { .keys = { "dev/care", "dev/power_loss" }, .n = 2 };

	cfg.unknown_devices = UNKNOWN_LOG;
	for (int t = 0; t < TC_T__COUNT; t++) {
		struct alarm_decision d = decide3("dev", (enum tc_type)t, &care,
		                                  (struct opts){ .unregistered = true });
		if (d.action != ACT_NONE)
			fail_msg("unregistered %s with unknown_devices=log: action %d",
			         tc_type_name((enum tc_type)t), d.action);
	}
	/* registered devices are not affected by the policy */
	struct alarm_decision d = decide(TC_T_PANIC, &none);
	assert_int_equal(d.action, ACT_OPEN);

	cfg.unknown_devices = UNKNOWN_ALARM;
	d = decide3("dev", TC_T_PANIC, &none, (struct opts){ .unregistered = true });
	assert_int_equal(d.action, ACT_OPEN);
	assert_string_equal(d.key, "dev/care");
	assert_int_equal(d.priority, 1);
	d = decide3("dev", TC_T_PANIC, &care, (struct opts){ .unregistered = true });
	assert_int_equal(d.action, ACT_JOIN);
	d = decide3("dev", TC_T_POWER_RESTORED, &care, (struct opts){ .unregistered = true });
	assert_int_equal(d.action, ACT_RESOLVE);
}

static void test_priority_override(void **state)
{
	(void)state;
	struct open_set none = { .n = 0 };
	cfg.priority[TC_T_INACTIVITY] = 1;   /* SPEC 5: [priorities] inactivity = 1 */
	cfg.priority[TC_T_LOW_BATTERY] = 7;
	cfg.priority[TC_T_PANIC] = 2;
	struct alarm_decision d = decide(TC_T_INACTIVITY, &none);
	assert_int_equal(d.action, ACT_OPEN);
	assert_int_equal(d.priority, 1);
	d = decide(TC_T_LOW_BATTERY, &none);
	assert_int_equal(d.priority, 7);
	d = decide(TC_T_PANIC, &none);
	assert_int_equal(d.priority, 2);
	struct open_set care = { .keys = { "dev/care" }, .n = 1 };
	d = decide(TC_T_INACTIVITY, &care);
	assert_int_equal(d.action, ACT_JOIN);
	assert_int_equal(d.priority, 1);
}

static void test_long_device_id(void **state)
{
	(void)state;
	char dev[TC_DEVICE_ID_MAX + 1], want[128];
	memset(dev, 'd', TC_DEVICE_ID_MAX);
	dev[TC_DEVICE_ID_MAX] = '\0';
	struct open_set none = { .n = 0 };
	/* the longest key: a 64-character device and the longest technical type */
	struct alarm_decision d = decide3(dev, TC_T_CONNECTION_LOST, &none, (struct opts){ 0 });
	snprintf(want, sizeof(want), "%s/connection_lost", dev);
	assert_string_equal(d.key, want);
	d = decide3(dev, TC_T_CONNECTION_RESTORED, &none, (struct opts){ 0 });
	assert_string_equal(d.key, want);
	d = decide3(dev, TC_T_PANIC, &none, (struct opts){ 0 });
	snprintf(want, sizeof(want), "%s/care", dev);
	assert_string_equal(d.key, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_panic_opens_care, setup),
		cmocka_unit_test_setup(test_panic_joins_open_care, setup),
		cmocka_unit_test_setup(test_other_devices_alarm_does_not_count, setup),
		cmocka_unit_test_setup(test_inactivity_priority_2, setup),
		cmocka_unit_test_setup(test_every_alarm_type_priority, setup),
		cmocka_unit_test_setup(test_low_battery_technical, setup),
		cmocka_unit_test_setup(test_restorals, setup),
		cmocka_unit_test_setup(test_cancel, setup),
		cmocka_unit_test_setup(test_heartbeat, setup),
		cmocka_unit_test_setup(test_test_never_joins, setup),
		cmocka_unit_test_setup(test_unregistered, setup),
		cmocka_unit_test_setup(test_priority_override, setup),
		cmocka_unit_test_setup(test_long_device_id, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
