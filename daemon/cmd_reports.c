/* report: per priority, how many alarms and how fast they were
 * acknowledged (SPEC 6). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "telecare/timefmt.h"

/* Alarms per local day and priority, for the console's chart. */
struct day {
	char day[11];              /* YYYY-MM-DD in the daemon's time zone */
	int prio;
	size_t alarms, in60, in180;
};

struct tally {
	json_t *rows;
	struct day *days;
	size_t n_days, cap_days;
	int prio;                  /* -1 before the first row */
	int64_t *delays;           /* ms to the first ack, of this priority's acknowledged alarms */
	size_t n, cap, count, in60, in180;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* SPEC 6: share acknowledged within 60 s and 180 s, median and p90 */
static void close_priority(struct tally *t)
{
	if (t->prio < 0)
		return;
	if (t->n)   /* no acknowledged alarm: no array (qsort must not see NULL) */
		qsort(t->delays, t->n, sizeof(*t->delays), cmp_i64);
	json_t *median = json_null(), *p90 = json_null();
	if (t->n) {
		size_t n = t->n;
		double med = n % 2 ? (double)t->delays[n / 2]
		                   : ((double)t->delays[n / 2 - 1] + (double)t->delays[n / 2]) / 2;
		size_t k = (n * 9 + 9) / 10;  /* nearest rank: ceil(0.9 n) */
		median = json_real(med / 1000.0);
		p90 = json_real((double)t->delays[k - 1] / 1000.0);
	}
	json_array_append_new(t->rows, json_pack("{s:i, s:I, s:I, s:f, s:f, s:o, s:o}",
	                      "priority", t->prio, "alarms", (json_int_t)t->count,
	                      "acknowledged", (json_int_t)t->n,
	                      "within_60s", (double)t->in60 / (double)t->count,
	                      "within_180s", (double)t->in180 / (double)t->count,
	                      "median_ack_s", median, "p90_ack_s", p90));
	t->n = t->count = t->in60 = t->in180 = 0;
}

static struct day *day_of(struct tally *t, int prio, int64_t at)
{
	char key[11];
	time_t secs = (time_t)(at / 1000);
	struct tm tm;
	localtime_r(&secs, &tm);
	strftime(key, sizeof(key), "%Y-%m-%d", &tm);
	/* rows come by priority, then any day: a short linear search per row
	 * over at most 9 priorities x the days asked for */
	for (size_t i = t->n_days; i-- > 0;)
		if (t->days[i].prio == prio && !strcmp(t->days[i].day, key))
			return &t->days[i];
	if (t->n_days == t->cap_days) {
		size_t ncap = t->cap_days ? t->cap_days * 2 : 64;
		struct day *n = realloc(t->days, ncap * sizeof(*n));
		if (!n)
			return NULL;
		t->days = n;
		t->cap_days = ncap;
	}
	struct day *d = &t->days[t->n_days++];
	memset(d, 0, sizeof(*d));
	memcpy(d->day, key, sizeof(key));
	d->prio = prio;
	return d;
}

static int cmp_day(const void *a, const void *b)
{
	const struct day *x = a, *y = b;
	int c = strcmp(x->day, y->day);
	return c ? c : x->prio - y->prio;
}

static json_t *days_json(struct tally *t)
{
	json_t *out = json_array();
	if (t->n_days)
		qsort(t->days, t->n_days, sizeof(*t->days), cmp_day);
	for (size_t i = 0; i < t->n_days; i++) {
		const struct day *d = &t->days[i];
		json_array_append_new(out, json_pack("{s:s, s:i, s:I, s:f, s:f}", "day", d->day,
		                      "priority", d->prio, "alarms", (json_int_t)d->alarms,
		                      "within_60s", (double)d->in60 / (double)d->alarms,
		                      "within_180s", (double)d->in180 / (double)d->alarms));
	}
	return out;
}

static int row(void *ctx, int priority, int64_t opened_at, int64_t first_ack)
{
	struct tally *t = ctx;
	struct day *dy = day_of(t, priority, opened_at);
	if (!dy)
		return -1;
	dy->alarms++;
	if (first_ack >= 0) {
		dy->in60 += first_ack - opened_at <= 60000;
		dy->in180 += first_ack - opened_at <= 180000;
	}
	if (priority != t->prio) {
		close_priority(t);
		t->prio = priority;
	}
	t->count++;
	if (first_ack < 0)
		return 0;
	int64_t d = first_ack - opened_at;
	t->in60 += d <= 60000;
	t->in180 += d <= 180000;
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 256;
		int64_t *nd = realloc(t->delays, ncap * sizeof(*nd));
		if (!nd)
			return -1;
		t->delays = nd;
		t->cap = ncap;
	}
	t->delays[t->n++] = d;
	return 0;
}

json_t *cmd_report(struct manager *m, const struct actor *who, json_t *args)
{
	char err[256];
	(void)who;
	int64_t to = arg_time(args, "to", tc_now_ms());
	int64_t from = arg_time(args, "from", to - 30LL * 86400 * 1000);
	if (to <= from)
		return fail("\"to\" must be after \"from\"");
	struct tally t = { .rows = json_array(), .prio = -1 };
	int r = q_report(m, from, to, row, &t, err, sizeof(err));
	if (r == 0)
		close_priority(&t);
	free(t.delays);
	if (r < 0) {
		json_decref(t.rows);
		free(t.days);
		return fail("%s", err);
	}
	json_t *days = days_json(&t);
	free(t.days);
	return ok(json_pack("{s:o, s:o, s:o, s:o}", "from", json_time_or_null(from), "to",
	                    json_time_or_null(to), "priorities", t.rows, "days", days));
}
