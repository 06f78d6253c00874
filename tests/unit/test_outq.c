/* The outbox's queue (daemon/outq.c, SPEC 4.1): precedence between classes,
 * arrival order within one, coalescing of retained state, and the bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "outq.h"

static struct outq q;

static int setup(void **state)
{
	(void)state;
	size_t max[OB__COUNT];
	for (int i = 0; i < OB__COUNT; i++)
		max[i] = 100;
	max[OB_RECEIPT] = 3;
	outq_init(&q, max);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	outq_free(&q);
	return 0;
}

static int push(enum ob_class cls, const char *topic, const char *payload, bool retain)
{
	struct outq_msg *msg = outq_msg_new(cls, topic, payload, strlen(payload), retain, 0, NULL);
	assert_non_null(msg);
	return outq_push(&q, msg);
}

/* Pop and check topic and payload; frees the message. */
static void expect(enum ob_class last, const char *topic, const char *payload)
{
	struct outq_msg *msg = outq_pop(&q, last);
	assert_non_null(msg);
	assert_string_equal(msg->topic, topic);
	assert_int_equal(msg->len, strlen(payload));
	assert_memory_equal(msg->payload, payload, msg->len);
	outq_msg_free(msg);
}

static void urgent_goes_before_everything_queued_earlier(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++)
		assert_int_equal(push(OB_RECEIPT, "dev/d/receipt", "r", false), 0);
	assert_int_equal(push(OB_LOW, "worker/w/alert", "technical", false), 0);
	assert_int_equal(push(OB_BOARD, "alarms/1", "board", true), 0);
	assert_int_equal(push(OB_HIGH, "worker/w/alert", "door", false), 0);
	assert_int_equal(push(OB_URGENT, "worker/w/alert", "fall", false), 0);
	assert_int_equal(push(OB_RESULT, "worker/w/result", "ok", false), 0);
	assert_int_equal(q.len, 8);
	expect(OB__COUNT - 1, "worker/w/alert", "fall");
	expect(OB__COUNT - 1, "worker/w/alert", "door");
	expect(OB__COUNT - 1, "alarms/1", "board");
	expect(OB__COUNT - 1, "worker/w/result", "ok");
	for (int i = 0; i < 3; i++)
		expect(OB__COUNT - 1, "dev/d/receipt", "r");
	expect(OB__COUNT - 1, "worker/w/alert", "technical");
	assert_null(outq_pop(&q, OB__COUNT - 1));
	assert_int_equal(q.len, 0);
	assert_int_equal(q.bytes, 0);
}

static void arrival_order_within_a_class(void **state)
{
	(void)state;
	char t[32];
	for (int i = 0; i < 50; i++) {
		snprintf(t, sizeof(t), "worker/w%d/alert", i);
		assert_int_equal(push(OB_URGENT, t, "x", false), 0);
	}
	for (int i = 0; i < 50; i++) {
		snprintf(t, sizeof(t), "worker/w%d/alert", i);
		expect(OB__COUNT - 1, t, "x");
	}
}

static void pop_stops_at_the_last_class_asked(void **state)
{
	(void)state;
	push(OB_RECEIPT, "dev/d/receipt", "r", false);
	push(OB_BOARD, "alarms/1", "b", true);
	/* The reserve beyond the window is for urgent and high only. */
	assert_null(outq_pop(&q, OB_HIGH));
	push(OB_HIGH, "worker/w/alert", "h", false);
	expect(OB_HIGH, "worker/w/alert", "h");
	assert_null(outq_pop(&q, OB_HIGH));
	expect(OB_BOARD, "alarms/1", "b");
	assert_null(outq_pop(&q, OB_RESULT));
	expect(OB_RECEIPT, "dev/d/receipt", "r");
}

static void retained_state_coalesces_and_keeps_its_place(void **state)
{
	(void)state;
	assert_int_equal(push(OB_BOARD, "alarms/1", "v1", true), 0);
	assert_int_equal(push(OB_BOARD, "alarms/2", "w1", true), 0);
	assert_int_equal(push(OB_BOARD, "alarms/1", "v2", true), 1);
	assert_int_equal(push(OB_BOARD, "alarms/1", "", true), 1);   /* cleared: latest wins */
	assert_int_equal(q.len, 2);
	assert_int_equal(q.c[OB_BOARD].coalesced, 2);
	assert_int_equal(q.bytes, 2);
	expect(OB__COUNT - 1, "alarms/1", "");
	/* Handed on: a newer state queues anew, behind what waits. */
	assert_int_equal(push(OB_BOARD, "alarms/1", "v3", true), 0);
	expect(OB__COUNT - 1, "alarms/2", "w1");
	expect(OB__COUNT - 1, "alarms/1", "v3");
	assert_null(outq_pop(&q, OB__COUNT - 1));
}

static void non_retained_messages_never_coalesce(void **state)
{
	(void)state;
	assert_int_equal(push(OB_URGENT, "worker/w/alert", "a", false), 0);
	assert_int_equal(push(OB_URGENT, "worker/w/alert", "b", false), 0);
	expect(OB__COUNT - 1, "worker/w/alert", "a");
	expect(OB__COUNT - 1, "worker/w/alert", "b");
}

static void a_full_class_sheds_the_newest_and_counts_it(void **state)
{
	(void)state;
	push(OB_RECEIPT, "dev/a/receipt", "1", false);
	push(OB_RECEIPT, "dev/b/receipt", "2", false);
	push(OB_RECEIPT, "dev/c/receipt", "3", false);
	assert_int_equal(push(OB_RECEIPT, "dev/d/receipt", "4", false), -1);
	assert_int_equal(push(OB_RECEIPT, "dev/e/receipt", "5", false), -1);
	assert_int_equal(q.c[OB_RECEIPT].shed, 2);
	/* Other classes are not affected by the receipts' bound. */
	assert_int_equal(push(OB_URGENT, "worker/w/alert", "fall", false), 0);
	expect(OB__COUNT - 1, "worker/w/alert", "fall");
	expect(OB__COUNT - 1, "dev/a/receipt", "1");
	expect(OB__COUNT - 1, "dev/b/receipt", "2");
	expect(OB__COUNT - 1, "dev/c/receipt", "3");
	assert_null(outq_pop(&q, OB__COUNT - 1));
}

static void alert_tags_are_copied(void **state)
{
	(void)state;
	char worker[] = "w-jan";
	struct outq_msg *msg = outq_msg_new(OB_URGENT, "worker/w-jan/alert", "{}", 2, false, 42,
	                                    worker);
	assert_non_null(msg);
	worker[0] = 'X';
	assert_int_equal(outq_push(&q, msg), 0);
	msg = outq_pop(&q, OB__COUNT - 1);
	assert_int_equal(msg->alarm, 42);
	assert_string_equal(msg->worker, "w-jan");
	outq_msg_free(msg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(urgent_goes_before_everything_queued_earlier, setup, teardown),
		cmocka_unit_test_setup_teardown(arrival_order_within_a_class, setup, teardown),
		cmocka_unit_test_setup_teardown(pop_stops_at_the_last_class_asked, setup, teardown),
		cmocka_unit_test_setup_teardown(retained_state_coalesces_and_keeps_its_place, setup, teardown),
		cmocka_unit_test_setup_teardown(non_retained_messages_never_coalesce, setup, teardown),
		cmocka_unit_test_setup_teardown(a_full_class_sheds_the_newest_and_counts_it, setup, teardown),
		cmocka_unit_test_setup_teardown(alert_tags_are_copied, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
