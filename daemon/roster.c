/* Workers, teams and shifts: who is on duty at time T.
 *
 * shift_covers() is pure given the process time zone: weekly shifts are
 * wall-clock times in the daemon's local zone (SPEC 6), so "22:00-06:00"
 * stays 22:00-06:00 across a DST change, and a night shift that starts on
 * Friday covers Saturday morning. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telecared.h"
#include "telecare/timefmt.h"

struct worker *worker_get(struct manager *m, const char *id)
{
	return map_get(&m->workers, id);
}

void worker_free(struct worker *w)
{
	if (!w)
		return;
	free(w->id);
	free(w->name);
	free(w->team);
	free(w->phone);
	free(w->webhook);
	free(w);
}

int worker_add(struct manager *m, struct worker *w)
{
	if (map_put(&m->workers, w->id, w) < 0) {
		worker_free(w);
		return -1;
	}
	store_write(m, ST_WORKER_UPSERT, "sssssi", w->id, w->name, w->team, w->phone, w->webhook,
	            w->created_at);
	return 0;
}

void worker_remove(struct manager *m, const char *id)
{
	store_write(m, ST_WORKER_DELETE, "is", tc_now_ms(), id);
	/* Their shifts end with them. */
	for (size_t i = 0; i < m->n_shifts;) {
		if (strcmp(m->shifts[i]->worker, id) == 0)
			shift_remove(m, m->shifts[i]->id);
		else
			i++;
	}
	worker_free(map_del(&m->workers, id));
}

bool worker_in_team(const struct worker *w, const char *team)
{
	size_t n = strlen(team);
	for (const char *t = w->team; t && *t;) {
		const char *end = strchr(t, ',');
		size_t len = end ? (size_t)(end - t) : strlen(t);
		if (len == n && strncmp(t, team, n) == 0)
			return true;
		t = end ? end + 1 : NULL;
	}
	return false;
}

json_t *worker_json(const struct worker *w)
{
	json_t *teams = json_array();
	for (const char *t = w->team; t && *t;) {
		const char *end = strchr(t, ',');
		size_t len = end ? (size_t)(end - t) : strlen(t);
		json_array_append_new(teams, json_stringn(t, len));
		t = end ? end + 1 : NULL;
	}
	return json_pack("{s:s, s:s, s:o, s:o, s:o, s:o}", "id", w->id, "name", w->name,
	                 "teams", teams, "phone", json_str_or_null(w->phone),
	                 "webhook", json_str_or_null(w->webhook),
	                 "created_at", json_time_or_null(w->created_at));
}

void shift_free(struct shift *s)
{
	if (!s)
		return;
	free(s->worker);
	free(s);
}

int shift_add(struct manager *m, struct shift *s)
{
	struct shift **n = realloc(m->shifts, (m->n_shifts + 1) * sizeof(*n));
	if (!n) {
		shift_free(s);
		return -1;
	}
	m->shifts = n;
	bool is_new = s->id == 0;  /* loaded shifts come with their id */
	if (is_new)
		s->id = m->next_shift_id++;
	m->shifts[m->n_shifts++] = s;
	if (is_new)
		store_write(m, ST_SHIFT_INSERT, "issnnnttt", s->id, s->worker,
		            s->kind == SHIFT_WEEKLY ? "weekly" : s->kind == SHIFT_ONCE ? "once" : "always",
		            s->kind == SHIFT_WEEKLY ? (int64_t)s->days : (int64_t)-1,
		            s->kind == SHIFT_WEEKLY ? (int64_t)s->start_min : (int64_t)-1,
		            s->kind == SHIFT_WEEKLY ? (int64_t)s->end_min : (int64_t)-1,
		            s->from, s->to, tc_now_ms());
	return 0;
}

int shift_remove(struct manager *m, int64_t id)
{
	for (size_t i = 0; i < m->n_shifts; i++) {
		if (m->shifts[i]->id != id)
			continue;
		store_write(m, ST_SHIFT_DELETE, "ii", tc_now_ms(), id);
		shift_free(m->shifts[i]);
		memmove(&m->shifts[i], &m->shifts[i + 1], (m->n_shifts - i - 1) * sizeof(*m->shifts));
		m->n_shifts--;
		return 0;
	}
	return -1;
}

void roster_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->workers, &it, NULL, &v);)
		worker_free(v);
	map_free(&m->workers);
	for (size_t i = 0; i < m->n_shifts; i++)
		shift_free(m->shifts[i]);
	free(m->shifts);
	m->shifts = NULL;
	m->n_shifts = 0;
}

static const char *day_names[] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

json_t *shift_json(const struct shift *s)
{
	json_t *j = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)s->id, "worker", s->worker,
	                      "kind", s->kind == SHIFT_WEEKLY ? "weekly"
	                              : s->kind == SHIFT_ONCE ? "once" : "always");
	if (s->kind == SHIFT_WEEKLY) {
		json_t *days = json_array();
		for (int d = 0; d < 7; d++)
			if (s->days & (1u << d))
				json_array_append_new(days, json_string(day_names[d]));
		char hours[48];
		snprintf(hours, sizeof(hours), "%02d:%02d-%02d:%02d", s->start_min / 60,
		         s->start_min % 60, s->end_min / 60, s->end_min % 60);
		json_object_set_new(j, "days", days);
		json_object_set_new(j, "hours", json_string(hours));
	} else if (s->kind == SHIFT_ONCE) {
		json_object_set_new(j, "from", json_time_or_null(s->from));
		json_object_set_new(j, "to", json_time_or_null(s->to));
	}
	return j;
}

bool shift_covers(const struct shift *s, int64_t t)
{
	struct tm tm;
	time_t secs = (time_t)(t / 1000);
	if (s->kind == SHIFT_WEEKLY)
		localtime_r(&secs, &tm);
	return shift_covers_tm(s, t, &tm);
}

bool shift_covers_tm(const struct shift *s, int64_t t, const struct tm *lt)
{
	switch (s->kind) {
	case SHIFT_ALWAYS:
		return true;
	case SHIFT_ONCE:
		return t >= s->from && t < s->to;
	case SHIFT_WEEKLY: {
		struct tm tm = *lt;
		int day = (tm.tm_wday + 6) % 7;  /* Monday = 0 */
		int prev = (day + 6) % 7;
		int min = tm.tm_hour * 60 + tm.tm_min;
		if (s->end_min > s->start_min)   /* within one day */
			return (s->days & (1u << day)) && min >= s->start_min && min < s->end_min;
		/* past midnight (or 24 h when start == end): the evening part belongs
		 * to the day it starts, the morning part to the day before */
		return ((s->days & (1u << day)) && min >= s->start_min) ||
		       ((s->days & (1u << prev)) && min < s->end_min);
	}
	}
	return false;
}

bool worker_on_duty(struct manager *m, const char *worker, int64_t t)
{
	for (size_t i = 0; i < m->n_shifts; i++)
		if (strcmp(m->shifts[i]->worker, worker) == 0 && shift_covers(m->shifts[i], t))
			return true;
	return false;
}

static int day_index(const char *s, size_t len)
{
	for (int d = 0; d < 7; d++)
		if (len == 3 && strncasecmp(s, day_names[d], 3) == 0)
			return d;
	return -1;
}

int shift_parse_days(const char *s, unsigned *days)
{
	*days = 0;
	if (!strcasecmp(s, "daily") || !strcasecmp(s, "all"))
		return *days = 0x7f, 0;
	if (!strcasecmp(s, "weekdays"))
		return *days = 0x1f, 0;
	if (!strcasecmp(s, "weekends"))
		return *days = 0x60, 0;
	if (!*s || s[strlen(s) - 1] == ',')
		return -1;
	for (const char *p = s; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *dash = memchr(p, '-', len);
		int a = day_index(p, dash ? (size_t)(dash - p) : len);
		int b = dash ? day_index(dash + 1, len - (size_t)(dash - p) - 1) : a;
		if (a < 0 || b < 0)
			return -1;
		for (int d = a;; d = (d + 1) % 7) {  /* "fri-mon" wraps over the weekend */
			*days |= 1u << d;
			if (d == b)
				break;
		}
		p = end ? end + 1 : p + len;
	}
	return *days ? 0 : -1;
}

static int parse_hhmm(const char *s, int *min)
{
	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
	    !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
		return -1;
	int h = (s[0] - '0') * 10 + s[1] - '0', mm = (s[3] - '0') * 10 + s[4] - '0';
	if (h > 24 || mm > 59 || (h == 24 && mm))
		return -1;
	*min = h * 60 + mm;
	return 0;
}

int shift_parse_hours(const char *s, int *start_min, int *end_min)
{
	if (strlen(s) != 11 || s[5] != '-' || parse_hhmm(s, start_min) < 0 ||
	    parse_hhmm(s + 6, end_min) < 0)
		return -1;
	/* "08:00-24:00" ends at midnight of the same day: end > start */
	return *start_min == 24 * 60 ? -1 : 0;
}
