/* report: per priority, how many alarms and how fast they were
 * acknowledged (SPEC 6). */
#include <stdlib.h>

#include "command.h"
#include "telecare/timefmt.h"

struct tally {
	json_t *rows;
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

static int row(void *ctx, int priority, int64_t opened_at, int64_t first_ack)
{
	struct tally *t = ctx;
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
		return fail("%s", err);
	}
	return ok(json_pack("{s:o, s:o, s:o}", "from", json_time_or_null(from), "to",
	                    json_time_or_null(to), "priorities", t.rows));
}
