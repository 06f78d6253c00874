/* report: per priority, how many alarms and how fast they were acknowledged
 * (SPEC 6), and per day for the console's charts. A month of a large centre
 * is a hundred thousand alarms: the report reads them a slice per loop pass
 * (command.c), on the reader connection, and sums in memory. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "telecare/timefmt.h"

#define REPORT_SLICE 5000       /* alarms read per loop pass */
#define PRIORITIES   10         /* 1-9; 0 never opens an alarm */

struct prio {
	int64_t *delays;           /* ms to the first ack, of the acknowledged alarms */
	size_t n, cap, count, in60, in180;
};

/* Alarms per local day and priority, for the console's chart. */
struct day {
	char day[11];              /* YYYY-MM-DD in the daemon's time zone */
	int prio;
	size_t alarms, in60, in180;
};

struct report {
	int64_t from, to;
	struct q_cursor *cur;
	struct prio p[PRIORITIES];
	struct day *days;
	size_t n_days, cap_days;
	/* the day of the last row, cached: rows come in opened_at order */
	char last_key[11];
	time_t last_lo, last_hi;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void report_free(void *state)
{
	struct report *r = state;
	if (!r)
		return;
	q_cursor_close(r->cur);
	for (int i = 0; i < PRIORITIES; i++)
		free(r->p[i].delays);
	free(r->days);
	free(r);
}

static int cmp_day(const void *a, const void *b)
{
	const struct day *x = a, *y = b;
	int c = strcmp(x->day, y->day);
	return c ? c : x->prio - y->prio;
}

static struct day *day_of(struct report *r, int prio, int64_t at)
{
	time_t secs = (time_t)(at / 1000);
	if (secs < r->last_lo || secs >= r->last_hi) {
		/* a new local day: its bounds, once (localtime per row is costly) */
		struct tm tm;
		localtime_r(&secs, &tm);
		strftime(r->last_key, sizeof(r->last_key), "%Y-%m-%d", &tm);
		tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
		tm.tm_isdst = -1;
		r->last_lo = mktime(&tm);
		tm.tm_mday++;
		tm.tm_isdst = -1;
		r->last_hi = mktime(&tm);
	}
	for (size_t i = r->n_days; i-- > 0;)
		if (r->days[i].prio == prio && !strcmp(r->days[i].day, r->last_key))
			return &r->days[i];
	if (r->n_days == r->cap_days) {
		size_t ncap = r->cap_days ? r->cap_days * 2 : 64;
		struct day *n = realloc(r->days, ncap * sizeof(*n));
		if (!n)
			return NULL;
		r->days = n;
		r->cap_days = ncap;
	}
	struct day *d = &r->days[r->n_days++];
	memset(d, 0, sizeof(*d));
	memcpy(d->day, r->last_key, sizeof(d->day));
	d->prio = prio;
	return d;
}

static int row(void *ctx, int priority, int64_t opened_at, int64_t first_ack)
{
	struct report *r = ctx;
	if (priority < 1 || priority >= PRIORITIES)
		return 0;
	struct prio *p = &r->p[priority];
	struct day *dy = day_of(r, priority, opened_at);
	if (!dy)
		return -1;
	p->count++;
	dy->alarms++;
	if (first_ack < 0)
		return 0;
	int64_t d = first_ack - opened_at;
	p->in60 += d <= 60000;
	p->in180 += d <= 180000;
	dy->in60 += d <= 60000;
	dy->in180 += d <= 180000;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 256;
		int64_t *nd = realloc(p->delays, ncap * sizeof(*nd));
		if (!nd)
			return -1;
		p->delays = nd;
		p->cap = ncap;
	}
	p->delays[p->n++] = d;
	return 0;
}

/* SPEC 6: share acknowledged within 60 s and 180 s, median and p90 */
static json_t *priorities_json(struct report *r)
{
	json_t *rows = json_array();
	for (int prio = 1; prio < PRIORITIES; prio++) {
		struct prio *p = &r->p[prio];
		if (!p->count)
			continue;
		json_t *median = json_null(), *p90 = json_null();
		if (p->n) {
			size_t n = p->n;
			qsort(p->delays, n, sizeof(*p->delays), cmp_i64);
			double med = n % 2 ? (double)p->delays[n / 2]
			                   : ((double)p->delays[n / 2 - 1] + (double)p->delays[n / 2]) / 2;
			size_t k = (n * 9 + 9) / 10;  /* nearest rank: ceil(0.9 n) */
			median = json_real(med / 1000.0);
			p90 = json_real((double)p->delays[k - 1] / 1000.0);
		}
		json_array_append_new(rows, json_pack("{s:i, s:I, s:I, s:f, s:f, s:o, s:o}",
		                      "priority", prio, "alarms", (json_int_t)p->count,
		                      "acknowledged", (json_int_t)p->n,
		                      "within_60s", (double)p->in60 / (double)p->count,
		                      "within_180s", (double)p->in180 / (double)p->count,
		                      "median_ack_s", median, "p90_ack_s", p90));
	}
	return rows;
}

static json_t *days_json(struct report *r)
{
	json_t *out = json_array();
	if (r->n_days)
		qsort(r->days, r->n_days, sizeof(*r->days), cmp_day);
	for (size_t i = 0; i < r->n_days; i++) {
		const struct day *d = &r->days[i];
		json_array_append_new(out, json_pack("{s:s, s:i, s:I, s:f, s:f}", "day", d->day,
		                      "priority", d->prio, "alarms", (json_int_t)d->alarms,
		                      "within_60s", (double)d->in60 / (double)d->alarms,
		                      "within_180s", (double)d->in180 / (double)d->alarms));
	}
	return out;
}

json_t *cmd_report_slice(struct manager *m, const struct actor *who, json_t *args, void **state)
{
	char err[256];
	struct report *r = *state;
	(void)who;
	if (!r) {
		int64_t to = arg_time(args, "to", tc_now_ms());
		int64_t from = arg_time(args, "from", to - 30LL * 86400 * 1000);
		if (to <= from)
			return fail("\"to\" must be after \"from\"");
		if (!(r = calloc(1, sizeof(*r))))
			return fail("out of memory");
		r->from = from;
		r->to = to;
		*state = r;
		if (!(r->cur = q_report_open(m, from, to, err, sizeof(err))))
			return fail("%s", err);
	}
	int more = q_cursor_step(r->cur, REPORT_SLICE, r, row, NULL, err, sizeof(err));
	if (more > 0)
		return NULL;   /* the next slice on the next loop pass */
	if (more < 0)
		return fail("%s", err);
	return ok(json_pack("{s:o, s:o, s:o, s:o}", "from", json_time_or_null(r->from), "to",
	                    json_time_or_null(r->to), "priorities", priorities_json(r),
	                    "days", days_json(r)));
}

void cmd_report_free(void *state)
{
	report_free(state);
}
