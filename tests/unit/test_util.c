/* common/util.c: cutting text where a fixed buffer ends, without cutting a
 * character in two (issue 10: 400 x "ą" made rows and answers invalid). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "telecare/event.h"
#include "telecare/util.h"

static void trim_keeps_whole_characters(void **state)
{
	(void)state;
	char buf[64];
	static const struct { const char *in; size_t keep; } cases[] = {
		{ "abc", 3 },
		{ "a\xc4\x85", 3 },            /* ą whole */
		{ "a\xc4", 1 },                /* ą cut after its lead byte */
		{ "a\xe2\x82\xac", 4 },        /* € whole */
		{ "a\xe2\x82", 1 },            /* € cut */
		{ "a\xe2", 1 },
		{ "a\xf0\x9f\x98\x80", 5 },    /* 😀 whole */
		{ "a\xf0\x9f\x98", 1 },        /* 😀 cut */
		{ "\xc4", 0 },
		{ "", 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		size_t n = tc_utf8_trim(buf, strlen(buf));
		assert_int_equal(n, cases[i].keep);
		assert_int_equal(strlen(buf), cases[i].keep);
		assert_true(tc_utf8_valid(buf, n));
	}
}

static void a_cut_buffer_of_a_long_polish_text_stays_valid(void **state)
{
	(void)state;
	char text[801], buf[512];
	for (int i = 0; i < 400; i++)
		memcpy(text + 2 * i, "\xc4\x85", 2);
	text[800] = '\0';
	for (size_t size = 2; size < sizeof(buf); size++) {
		int n = snprintf(buf, size, "error: %s", text);
		assert_true(n >= (int)size);
		size_t len = tc_utf8_trim(buf, strlen(buf));
		assert_true(tc_utf8_valid(buf, len));
		assert_true(len + 1 >= size - 1);   /* at most one character lost */
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(trim_keeps_whole_characters),
		cmocka_unit_test(a_cut_buffer_of_a_long_polish_text_stays_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
