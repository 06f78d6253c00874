/* Workers and shifts (SPEC 6, SPEC-EXTENSIONS "Escalation"): the pure parts
 * of daemon/roster.c — shift_covers, shift_parse_days, shift_parse_hours and
 * worker_in_team. Weekly shifts are wall-clock times in the local zone, so
 * every test runs with TZ=Europe/Warsaw and builds instants from RFC 3339
 * strings with explicit offsets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "telecared.h"
#include "telecare/timefmt.h"

/* ---- stubs of I/O ----
 * roster.c's non-pure functions (worker_add, shift_add, worker_json, ...)
 * queue database writes and build JSON with helpers from store.c and
 * registry.c. None of the functions tested here calls them; these stubs only
 * satisfy the linker so that store.c (SQLite) and registry.c stay out. */
int store_write(struct manager *m, enum store_stmt stmt, const char *fmt, ...)
{
	(void)m;
	(void)stmt;
	(void)fmt;
	return 0;
}

json_t *json_str_or_null(const char *s)
{
	(void)s;
	return json_null();
}

json_t *json_time_or_null(int64_t ms)
{
	(void)ms;
	return json_null();
}

/* ---- helpers ---- */

enum { MON = 1u << 0, TUE = 1u << 1, WED = 1u << 2, THU = 1u << 3, FRI = 1u << 4,
       SAT = 1u << 5, SUN = 1u << 6, ALL_DAYS = 0x7f };

static int setup_tz(void **state)
{
	(void)state;
	setenv("TZ", "Europe/Warsaw", 1);
	tzset();
	return 0;
}

static int64_t at(const char *rfc3339)
{
	int64_t ms;
	if (tc_time_parse(rfc3339, &ms) != 0)
		fail_msg("test bug: cannot parse time \"%s\"", rfc3339);
	return ms;
}

static struct shift weekly(unsigned days, const char *hours)
{
	struct shift s;
	memset(&s, 0, sizeof(s));
	s.kind = SHIFT_WEEKLY;
	s.days = days;
	if (shift_parse_hours(hours, &s.start_min, &s.end_min) != 0)
		fail_msg("test bug: hours \"%s\" rejected", hours);
	return s;
}

/* Assert coverage, naming the case on failure. */
#define COVERS(s, when, want) do { \
	bool got_ = shift_covers(&(s), at(when)); \
	if (got_ != (want)) \
		fail_msg("%s: shift_covers(%s) = %d, want %d", #s, (when), got_, (want)); \
} while (0)

/* ---- shift_covers ---- */

static void test_always(void **state)
{
	(void)state;
	struct shift s = { .kind = SHIFT_ALWAYS };
	COVERS(s, "2026-03-02T08:00:00+01:00", true);
	COVERS(s, "2026-03-29T02:30:00Z", true);
	COVERS(s, "1970-01-01T00:00:00Z", true);
	COVERS(s, "2099-12-31T23:59:59Z", true);
}

static void test_once(void **state)
{
	(void)state;
	struct shift s = { .kind = SHIFT_ONCE };
	s.from = at("2026-03-02T08:00:00+01:00");
	s.to = at("2026-03-02T16:00:00+01:00");
	assert_false(shift_covers(&s, s.from - 1));
	assert_true(shift_covers(&s, s.from));          /* from is inclusive */
	assert_true(shift_covers(&s, s.from + 1));
	assert_true(shift_covers(&s, s.to - 1));
	assert_false(shift_covers(&s, s.to));           /* to is exclusive */
	assert_false(shift_covers(&s, s.to + 1));
	COVERS(s, "2026-03-02T07:00:00Z", true);        /* 08:00+01:00 is 07:00Z */
	COVERS(s, "2026-03-02T15:00:00Z", false);       /* = to */

	/* absolute, whatever the local zone's DST: 01:00Z-02:00Z on spring-forward day */
	s.from = at("2026-03-29T01:00:00Z");
	s.to = at("2026-03-29T02:00:00Z");
	COVERS(s, "2026-03-29T03:30:00+02:00", true);
	COVERS(s, "2026-03-29T04:00:00+02:00", false);
}

static void test_weekly_within_day(void **state)
{
	(void)state;
	struct shift s = weekly(MON | TUE | WED | THU | FRI, "08:00-16:00");
	COVERS(s, "2026-03-02T07:59:00+01:00", false);  /* Monday */
	COVERS(s, "2026-03-02T08:00:00+01:00", true);
	COVERS(s, "2026-03-02T15:59:00+01:00", true);
	COVERS(s, "2026-03-02T15:59:59+01:00", true);
	COVERS(s, "2026-03-02T16:00:00+01:00", false);  /* [start, end) */
	COVERS(s, "2026-03-06T12:00:00+01:00", true);   /* Friday */
	COVERS(s, "2026-03-07T10:00:00+01:00", false);  /* Saturday */
	COVERS(s, "2026-03-08T10:00:00+01:00", false);  /* Sunday */
	/* local time, not UTC: Monday 08:30 local is 07:30Z */
	COVERS(s, "2026-03-02T07:30:00Z", true);
	COVERS(s, "2026-03-02T15:30:00Z", false);       /* 16:30 local */
}

static void test_weekly_overnight(void **state)
{
	(void)state;
	struct shift fri = weekly(FRI, "22:00-06:00");
	COVERS(fri, "2026-03-06T21:59:00+01:00", false);  /* Friday */
	COVERS(fri, "2026-03-06T22:00:00+01:00", true);
	COVERS(fri, "2026-03-06T23:59:59+01:00", true);
	COVERS(fri, "2026-03-07T00:00:00+01:00", true);   /* Saturday */
	COVERS(fri, "2026-03-07T05:59:00+01:00", true);
	COVERS(fri, "2026-03-07T05:59:59+01:00", true);
	COVERS(fri, "2026-03-07T06:00:00+01:00", false);
	COVERS(fri, "2026-03-07T22:00:00+01:00", false);  /* Saturday is not a listed day */
	COVERS(fri, "2026-03-08T05:00:00+01:00", false);  /* ...so Sunday morning is not either */
	COVERS(fri, "2026-03-06T05:00:00+01:00", false);  /* Friday morning: Thursday not listed */

	struct shift thu_fri = weekly(THU | FRI, "22:00-06:00");
	COVERS(thu_fri, "2026-03-06T05:00:00+01:00", true);   /* Thursday's night */
	COVERS(thu_fri, "2026-03-06T06:00:00+01:00", false);
	COVERS(thu_fri, "2026-03-06T12:00:00+01:00", false);
	COVERS(thu_fri, "2026-03-06T22:00:00+01:00", true);
	COVERS(thu_fri, "2026-03-05T05:00:00+01:00", false);  /* Wednesday's night */
}

static void test_week_boundary(void **state)
{
	(void)state;
	struct shift sun = weekly(SUN, "22:00-06:00");
	COVERS(sun, "2026-03-08T21:59:00+01:00", false);  /* Sunday */
	COVERS(sun, "2026-03-08T22:00:00+01:00", true);
	COVERS(sun, "2026-03-09T05:00:00+01:00", true);   /* Monday */
	COVERS(sun, "2026-03-09T06:00:00+01:00", false);
	COVERS(sun, "2026-03-08T05:00:00+01:00", false);  /* Sunday morning: Saturday not listed */

	unsigned days = 0;
	assert_int_equal(shift_parse_days("fri-mon", &days), 0);
	assert_int_equal(days, FRI | SAT | SUN | MON);
	struct shift wrap = weekly(days, "09:00-17:00");
	COVERS(wrap, "2026-03-06T10:00:00+01:00", true);   /* Friday */
	COVERS(wrap, "2026-03-08T10:00:00+01:00", true);   /* Sunday */
	COVERS(wrap, "2026-03-09T10:00:00+01:00", true);   /* Monday */
	COVERS(wrap, "2026-03-10T10:00:00+01:00", false);  /* Tuesday */
	COVERS(wrap, "2026-03-05T10:00:00+01:00", false);  /* Thursday */
}

static void test_dst(void **state)
{
	(void)state;
	struct shift night = weekly(ALL_DAYS, "22:00-06:00");
	/* spring forward, Sunday 2026-03-29: 02:00 CET -> 03:00 CEST */
	COVERS(night, "2026-03-28T21:59:00+01:00", false);
	COVERS(night, "2026-03-28T22:00:00+01:00", true);
	COVERS(night, "2026-03-29T01:59:00+01:00", true);
	COVERS(night, "2026-03-29T03:00:00+02:00", true);
	COVERS(night, "2026-03-29T05:30:00+02:00", true);
	COVERS(night, "2026-03-29T05:59:00+02:00", true);
	COVERS(night, "2026-03-29T06:00:00+02:00", false);
	COVERS(night, "2026-03-29T06:30:00+02:00", false);
	COVERS(night, "2026-03-29T04:30:00Z", false);       /* = 06:30+02:00 */

	/* fall back, Sunday 2026-10-25: 03:00 CEST -> 02:00 CET */
	COVERS(night, "2026-10-24T22:00:00+02:00", true);
	COVERS(night, "2026-10-25T02:30:00+02:00", true);
	COVERS(night, "2026-10-25T02:30:00+01:00", true);
	COVERS(night, "2026-10-25T05:59:00+01:00", true);
	COVERS(night, "2026-10-25T06:00:00+01:00", false);
	COVERS(night, "2026-10-25T05:30:00Z", false);       /* = 06:30+01:00 */

	/* a shift in the repeated hour: wall-clock semantics cover both 02:30s */
	struct shift repeated = weekly(ALL_DAYS, "02:00-03:00");
	COVERS(repeated, "2026-10-25T01:59:00+02:00", false);
	COVERS(repeated, "2026-10-25T02:00:00+02:00", true);
	COVERS(repeated, "2026-10-25T02:30:00+02:00", true);
	COVERS(repeated, "2026-10-25T02:59:00+02:00", true);
	COVERS(repeated, "2026-10-25T02:00:00+01:00", true);  /* = 03:00+02:00: back to 02:00 */
	COVERS(repeated, "2026-10-25T02:30:00+01:00", true);
	COVERS(repeated, "2026-10-25T03:00:00+01:00", false);

	/* a weekly shift on the day only: Saturday's night covers Sunday's short morning */
	struct shift sat = weekly(SAT, "22:00-06:00");
	COVERS(sat, "2026-03-29T05:30:00+02:00", true);
	COVERS(sat, "2026-03-29T06:30:00+02:00", false);
}

static void test_whole_day_and_midnight_end(void **state)
{
	(void)state;
	struct shift day = weekly(WED, "00:00-00:00");
	assert_int_equal(day.start_min, 0);
	assert_int_equal(day.end_min, 0);
	COVERS(day, "2026-03-03T23:59:59+01:00", false);  /* Tuesday */
	COVERS(day, "2026-03-04T00:00:00+01:00", true);   /* Wednesday */
	COVERS(day, "2026-03-04T12:00:00+01:00", true);
	COVERS(day, "2026-03-04T23:59:59+01:00", true);
	COVERS(day, "2026-03-05T00:00:00+01:00", false);  /* Thursday */
	COVERS(day, "2026-03-05T12:00:00+01:00", false);

	struct shift late = weekly(MON, "08:00-24:00");
	assert_int_equal(late.start_min, 8 * 60);
	assert_int_equal(late.end_min, 24 * 60);
	COVERS(late, "2026-03-02T07:59:00+01:00", false);
	COVERS(late, "2026-03-02T08:00:00+01:00", true);
	COVERS(late, "2026-03-02T23:59:00+01:00", true);
	COVERS(late, "2026-03-02T23:59:59+01:00", true);
	COVERS(late, "2026-03-03T00:00:00+01:00", false); /* Tuesday 00:00: ended at midnight */
	COVERS(late, "2026-03-03T01:00:00+01:00", false);

	/* even when the next day is listed, 08:00-24:00 does not run past midnight */
	struct shift late_daily = weekly(ALL_DAYS, "08:00-24:00");
	COVERS(late_daily, "2026-03-03T00:00:00+01:00", false);
	COVERS(late_daily, "2026-03-03T07:59:00+01:00", false);
	COVERS(late_daily, "2026-03-03T08:00:00+01:00", true);
}

/* ---- parsing ---- */

static void test_parse_days(void **state)
{
	(void)state;
	static const struct { const char *s; unsigned want; } ok[] = {
		{ "mon", MON },
		{ "mon-fri", MON | TUE | WED | THU | FRI },
		{ "sat,sun", SAT | SUN },
		{ "daily", ALL_DAYS },
		{ "weekdays", MON | TUE | WED | THU | FRI },
		{ "weekends", SAT | SUN },
		{ "fri-mon", FRI | SAT | SUN | MON },
		{ "sun-mon", SUN | MON },
		{ "mon-sun", ALL_DAYS },
		{ "mon,wed-thu", MON | WED | THU },
		{ "MON-Fri", MON | TUE | WED | THU | FRI },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		unsigned days = 0xdead;
		if (shift_parse_days(ok[i].s, &days) != 0)
			fail_msg("days \"%s\" rejected", ok[i].s);
		if (days != ok[i].want)
			fail_msg("days \"%s\" = 0x%x, want 0x%x", ok[i].s, days, ok[i].want);
	}

	static const char *bad[] = { "", "foo", "mon-", "mon,,tue", "-fri", "monday", "mon-tue-wed",
	                             ",mon" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		unsigned days = 0;
		if (shift_parse_days(bad[i], &days) == 0)
			fail_msg("days \"%s\" accepted (0x%x)", bad[i], days);
	}
}

static void test_parse_hours(void **state)
{
	(void)state;
	static const struct { const char *s; int start, end; } ok[] = {
		{ "08:00-16:00", 480, 960 },
		{ "22:00-06:00", 1320, 360 },
		{ "00:00-00:00", 0, 0 },
		{ "08:00-24:00", 480, 1440 },
		{ "23:59-00:01", 1439, 1 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		int a = -1, b = -1;
		if (shift_parse_hours(ok[i].s, &a, &b) != 0)
			fail_msg("hours \"%s\" rejected", ok[i].s);
		if (a != ok[i].start || b != ok[i].end)
			fail_msg("hours \"%s\" = %d-%d, want %d-%d", ok[i].s, a, b, ok[i].start, ok[i].end);
	}

	static const char *bad[] = { "8:00-16:00", "08:00-16", "25:00-01:00", "08:60-09:00",
	                             "24:00-01:00", "", "08:00", "08:00-16:00 ", "08:00_16:00",
	                             "08:00-24:01", "08:00-16:60", "ab:cd-ef:gh" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int a = 0, b = 0;
		if (shift_parse_hours(bad[i], &a, &b) == 0)
			fail_msg("hours \"%s\" accepted (%d-%d)", bad[i], a, b);
	}
}

/* ---- teams ---- */

static void test_worker_in_team(void **state)
{
	(void)state;
	struct worker w;
	memset(&w, 0, sizeof(w));
	w.team = (char *)"north,supervisors";
	assert_true(worker_in_team(&w, "north"));
	assert_false(worker_in_team(&w, "sup"));
	assert_true(worker_in_team(&w, "supervisors"));
	assert_false(worker_in_team(&w, "nort"));
	assert_false(worker_in_team(&w, "north,supervisors"));
	assert_false(worker_in_team(&w, "south"));

	w.team = (char *)"north";
	assert_true(worker_in_team(&w, "north"));
	assert_false(worker_in_team(&w, "northern"));

	w.team = NULL;
	assert_false(worker_in_team(&w, "north"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_always),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_weekly_within_day),
		cmocka_unit_test(test_weekly_overnight),
		cmocka_unit_test(test_week_boundary),
		cmocka_unit_test(test_dst),
		cmocka_unit_test(test_whole_day_and_midnight_end),
		cmocka_unit_test(test_parse_days),
		cmocka_unit_test(test_parse_hours),
		cmocka_unit_test(test_worker_in_team),
	};
	return cmocka_run_group_tests(tests, setup_tz, NULL);
}
