/* Durations (SPEC 4) and RFC 3339 times (common/timefmt.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecare/timefmt.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)

static void dur_ok(const char *s, int64_t want)
{
	int64_t ms = -12345;
	if (tc_duration_parse(s, &ms) != 0)
		fail_msg("duration \"%s\" rejected", s);
	if (ms != want)
		fail_msg("duration \"%s\": %lld ms, want %lld", s, (long long)ms, (long long)want);
}

static void dur_bad(const char *s)
{
	int64_t ms = -12345;
	if (tc_duration_parse(s, &ms) == 0)
		fail_msg("duration \"%s\" accepted as %lld ms", s ? s : "(null)", (long long)ms);
	assert_int_equal(ms, -12345);  /* untouched on error */
}

static void test_duration_parse(void **state)
{
	(void)state;
	dur_ok("500ms", 500);
	dur_ok("30s", 30 * SEC);
	dur_ok("2m", 2 * MIN);
	dur_ok("1h", HOUR);
	dur_ok("1d", DAY);
	dur_ok("90", 90 * SEC);
	dur_ok("1.5", 1500);
	dur_ok("0.5s", 500);
	dur_ok("1.5m", 90 * SEC);
	dur_ok("1h30m", HOUR + 30 * MIN);
	dur_ok("1d2h3m4s5ms", DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5);
	dur_ok("60s", MIN);
	dur_ok("0", 0);
	dur_ok("0s", 0);
	dur_ok("1ms", 1);
	dur_ok("366d", 366 * DAY);
	dur_ok("007s", 7 * SEC);
}

static void test_duration_parse_bad(void **state)
{
	(void)state;
	dur_bad(NULL);
	dur_bad("");
	dur_bad("-1");
	dur_bad("-1s");
	dur_bad("+1s");
	dur_bad("m");
	dur_bad("s");
	dur_bad("ms");
	dur_bad("1s2");        /* a bare number only alone */
	dur_bad("1h30");
	dur_bad(" 1s");
	dur_bad("1s ");
	dur_bad("1 s");
	dur_bad(".5");
	dur_bad("1.5.5");
	dur_bad("1mo");
	dur_bad("1hh");
	dur_bad("1h-30m");
	dur_bad("367d");       /* absurdly long */
	dur_bad("9999999999999999999999d");
	dur_bad("200d200d");
	dur_bad("nan");
	dur_bad("inf");
}

/* Durations are decimal: "500ms", "30s", "2m", "1h", "1d" or plain seconds
 * ("90", "1.5") per SPEC 4 and timefmt.h. strtod would also read hexadecimal
 * and exponents. */
static void test_duration_rejects_non_decimal(void **state)
{
	(void)state;
	dur_bad("0x10");
	dur_bad("0x1p3s");
	dur_bad("1e3");
	dur_bad("1e3ms");
	dur_bad("2E1s");
}

static void dur_fmt(int64_t ms, const char *want)
{
	char buf[64];
	tc_duration_format(ms, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fail_msg("tc_duration_format(%lld) = \"%s\", want \"%s\"", (long long)ms, buf, want);
}

static void test_duration_format(void **state)
{
	(void)state;
	dur_fmt(500, "500ms");
	dur_fmt(30 * SEC, "30s");
	dur_fmt(2 * MIN, "2m");
	dur_fmt(HOUR, "1h");
	dur_fmt(DAY, "1d");
	dur_fmt(HOUR + 30 * MIN, "1h30m");
	dur_fmt(1, "1ms");
	dur_fmt(0, "0s");
	dur_fmt(-5, "0s");

	/* a small buffer is NUL-terminated and not overrun */
	char buf[8];
	memset(buf, 'Z', sizeof(buf));
	tc_duration_format(DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5, buf, 6);
	assert_true(memchr(buf, '\0', 6) != NULL);
	assert_int_equal(buf[6], 'Z');
	assert_int_equal(buf[7], 'Z');
}

/* The examples timefmt.h gives for the formatter ("ms spelled by units,
 * largest first: 500ms, 1m30s, 2m, 1h30m"). */
static void test_duration_format_doc_examples(void **state)
{
	(void)state;
	dur_fmt(500, "500ms");
	dur_fmt(90 * SEC, "1m30s");
	dur_fmt(2 * MIN, "2m");
	dur_fmt(HOUR + 30 * MIN, "1h30m");
}

static void test_duration_round_trip(void **state)
{
	(void)state;
	static const int64_t samples[] = {
		1, 999, 1000, 1001, 59999, 60000, 61000, 90000, 3599999, 3600000, 5400000,
		86399999, 86400000, 86400001, 7 * DAY + 1, 366 * DAY,
	};
	char buf[64];
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		int64_t back = -1;
		tc_duration_format(samples[i], buf, sizeof(buf));
		if (tc_duration_parse(buf, &back) != 0 || back != samples[i])
			fail_msg("%lld -> \"%s\" -> %lld", (long long)samples[i], buf, (long long)back);
	}
	/* a pseudo-random sweep */
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < 100000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		int64_t ms = (int64_t)(x % (uint64_t)(366 * DAY)) + 1;
		int64_t back = -1;
		tc_duration_format(ms, buf, sizeof(buf));
		if (tc_duration_parse(buf, &back) != 0 || back != ms)
			fail_msg("%lld -> \"%s\" -> %lld", (long long)ms, buf, (long long)back);
	}
	/* and parse -> format -> parse */
	static const char *spellings[] = { "1.5", "90", "1h30m", "2m", "500ms", "0.25s", "1d" };
	for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
		int64_t a, b;
		assert_int_equal(tc_duration_parse(spellings[i], &a), 0);
		tc_duration_format(a, buf, sizeof(buf));
		assert_int_equal(tc_duration_parse(buf, &b), 0);
		assert_int_equal(a, b);
	}
}

/* ---- RFC 3339 ---- */

static void time_ok(const char *s, int64_t want)
{
	int64_t ms = -12345;
	if (tc_time_parse(s, &ms) != 0)
		fail_msg("time \"%s\" rejected", s);
	if (ms != want)
		fail_msg("time \"%s\": %lld ms, want %lld", s, (long long)ms, (long long)want);
}

static void time_bad(const char *s)
{
	int64_t ms = -12345;
	if (tc_time_parse(s, &ms) == 0)
		fail_msg("time \"%s\" accepted as %lld", s ? s : "(null)", (long long)ms);
}

static void time_fmt(int64_t ms, const char *want)
{
	char buf[TC_TIME_STRLEN];
	tc_time_format(ms, buf, sizeof(buf));
	if (strcmp(buf, want) != 0)
		fail_msg("tc_time_format(%lld) = \"%s\", want \"%s\"", (long long)ms, buf, want);
}

#define T_2026 1795342500000LL   /* 2026-11-22T10:15:00Z */

static void test_time_parse(void **state)
{
	(void)state;
	time_ok("1970-01-01T00:00:00Z", 0);
	time_ok("2026-11-22T10:15:00Z", T_2026);
	time_ok("2026-11-22T10:15:00.123Z", T_2026 + 123);
	time_ok("2026-11-22T10:15:00.1Z", T_2026 + 100);
	time_ok("2026-11-22T10:15:00.12Z", T_2026 + 120);
	time_ok("2026-11-22T10:15:00.123456789Z", T_2026 + 123);  /* truncated to ms */
	time_ok("2026-11-22t10:15:00z", T_2026);
	time_ok("2026-11-22 10:15:00Z", T_2026);
	time_ok("2026-11-22T10:15:00+00:00", T_2026);
	time_ok("2026-11-22T10:15:00-00:00", T_2026);
	time_ok("2026-11-22T12:15:00+02:00", T_2026);
	time_ok("2026-11-22T04:45:00-05:30", T_2026);
	time_ok("2026-11-23T00:15:00+14:00", T_2026);
	time_ok("2026-11-22T12:15:00.500+02:00", T_2026 + 500);
	time_ok("2023-11-14T22:13:20Z", 1700000000000LL);
	/* leap years */
	time_ok("2024-02-29T00:00:00Z", 1709164800000LL);
	time_ok("2000-02-29T12:34:56Z", 951827696000LL);
	time_ok("2024-12-31T23:59:59Z", 1735689599000LL);
	/* a leap second is read as :59 */
	time_ok("2016-12-31T23:59:60Z", 1483228799000LL);
}

static void test_time_parse_bad(void **state)
{
	(void)state;
	time_bad(NULL);
	time_bad("");
	time_bad("2026");
	time_bad("2026-11-22");
	time_bad("2026-11-22T10:15");
	time_bad("2026-11-22T10:15:00");          /* no zone */
	time_bad("2026-11-22T10:15:00.Z");
	time_bad("2026-11-22T10:15:00ZZ");
	time_bad("2026-11-22T10:15:00Z ");
	time_bad(" 2026-11-22T10:15:00Z");
	time_bad("2026-11-22X10:15:00Z");
	time_bad("2026/11/22T10:15:00Z");
	time_bad("26-11-22T10:15:00Z");
	time_bad("2026-1-22T10:15:00Z");
	time_bad("2023-02-29T00:00:00Z");         /* not a leap year */
	time_bad("2100-02-29T00:00:00Z");         /* not a leap year either */
	time_bad("2024-02-30T00:00:00Z");
	time_bad("2024-04-31T00:00:00Z");
	time_bad("2024-13-01T00:00:00Z");
	time_bad("2024-00-10T00:00:00Z");
	time_bad("2024-01-00T00:00:00Z");
	time_bad("2024-01-32T00:00:00Z");
	time_bad("2024-01-01T24:00:00Z");
	time_bad("2024-01-01T23:60:00Z");
	time_bad("2024-01-01T23:59:61Z");
	time_bad("2024-01-01T00:00:00+2:00");
	time_bad("2024-01-01T00:00:00+0200");
	time_bad("2024-01-01T00:00:00+02");
	time_bad("2024-01-01T00:00:00+24:00");
	time_bad("2024-01-01T00:00:00+02:60");
	time_bad("2024-01-01T00:00:00 +02:00");
	time_bad("1969-12-31T23:59:59Z");
	time_bad("-001-01-01T00:00:00Z");
	time_bad("2024-01-01T00:00:00Z\n");
}

static void test_time_format(void **state)
{
	(void)state;
	time_fmt(0, "1970-01-01T00:00:00.000Z");
	time_fmt(T_2026 + 123, "2026-11-22T10:15:00.123Z");
	time_fmt(1709164800000LL, "2024-02-29T00:00:00.000Z");
	time_fmt(1735689599999LL, "2024-12-31T23:59:59.999Z");
	time_fmt(-1, "1969-12-31T23:59:59.999Z");
	time_fmt(-1000, "1969-12-31T23:59:59.000Z");
	time_fmt(-1001, "1969-12-31T23:59:58.999Z");
	char buf[TC_TIME_STRLEN];
	tc_time_format(T_2026, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 24);
}

static void test_time_round_trip(void **state)
{
	(void)state;
	char buf[TC_TIME_STRLEN];
	/* format -> parse over ~300 years of ms, pseudo-random */
	uint64_t x = 2463534242ULL;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13; x ^= x >> 7; x ^= x << 17;
		int64_t ms = (int64_t)(x % 10000000000000ULL);  /* up to year 2286 */
		int64_t back = -1;
		tc_time_format(ms, buf, sizeof(buf));
		if (tc_time_parse(buf, &back) != 0 || back != ms)
			fail_msg("%lld -> \"%s\" -> %lld", (long long)ms, buf, (long long)back);
	}
	/* every day of a leap and a common year at noon */
	for (int64_t d = 0; d < 731; d++) {
		int64_t ms = 1704110400000LL + d * DAY, back = -1;  /* 2024-01-01T12:00Z */
		tc_time_format(ms, buf, sizeof(buf));
		assert_int_equal(tc_time_parse(buf, &back), 0);
		assert_int_equal(back, ms);
	}
	/* parse -> format normalises offsets to UTC */
	int64_t ms;
	assert_int_equal(tc_time_parse("2026-11-22T04:45:00.007-05:30", &ms), 0);
	tc_time_format(ms, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22T10:15:00.007Z");
	assert_int_equal(tc_time_parse("2024-03-01T01:30:00+02:00", &ms), 0);
	tc_time_format(ms, buf, sizeof(buf));
	assert_string_equal(buf, "2024-02-29T23:30:00.000Z");
	/* the largest time the parser reads */
	assert_int_equal(tc_time_parse("9999-12-31T23:59:59.999Z", &ms), 0);
	tc_time_format(ms, buf, sizeof(buf));
	assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
}

static void test_now(void **state)
{
	(void)state;
	int64_t a = tc_now_ms();
	assert_true(a > 1700000000000LL);
	assert_true(tc_now_ms() >= a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_duration_parse_bad),
		cmocka_unit_test(test_duration_rejects_non_decimal),
		cmocka_unit_test(test_duration_format),
		cmocka_unit_test(test_duration_format_doc_examples),
		cmocka_unit_test(test_duration_round_trip),
		cmocka_unit_test(test_time_parse),
		cmocka_unit_test(test_time_parse_bad),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_time_round_trip),
		cmocka_unit_test(test_now),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
