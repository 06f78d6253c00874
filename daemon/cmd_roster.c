/* worker.*, shift.*, oncall: who works when. */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include <time.h>

#include "command.h"
#include "telecare/timefmt.h"

static json_t *worker_to_json(const void *w) { return worker_json(w); }

/* A webhook is refused when it is added, not when an alert needs it: http
 * or https, a host, and nothing a terminal, a log or an HTTP request line
 * would take for something else. 0, or -1 with the reason. */
static int check_webhook(const char *url, char *why, size_t len)
{
	for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == ' ') {
			snprintf(why, len, "it contains a %s (byte %zu)", *p == ' ' ? "space" : "control character",
			         (size_t)(p - (const unsigned char *)url) + 1);
			return -1;
		}
	}
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	if (!h) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	CURLUcode uc = curl_url_set(h, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK)
		snprintf(why, len, "%s", curl_url_strerror(uc));
	else if ((uc = curl_url_get(h, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK)
		snprintf(why, len, "%s", curl_url_strerror(uc));
	else if (strcmp(scheme, "http") && strcmp(scheme, "https"))
		snprintf(why, len, "its scheme is %s, not http or https", scheme);
	else if ((uc = curl_url_get(h, CURLUPART_HOST, &host, 0)) != CURLUE_OK || !*host)
		snprintf(why, len, "it has no host");
	else
		rc = 0;
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return rc;
}

json_t *cmd_worker_add(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id"), *name = arg_str(args, "name");
	const char *team = arg_str(args, "team"), *webhook = arg_str(args, "webhook");
	char clean[80], why[256], label[160];
	if (!name || !*name)
		return fail("worker %s: a name is required", id);
	for (const char *t = team; t;) {
		const char *end = strchr(t, ',');
		size_t len = end ? (size_t)(end - t) : strlen(t);
		if (!tc_device_id_valid(t, len))
			return fail("worker %s: invalid team \"%s\" in \"%s\": comma-separated names of "
			            "1-64 [A-Za-z0-9._-]", id, tc_sanitize(t, len, clean, sizeof(clean)), team);
		t = end ? end + 1 : NULL;
	}
	if (webhook && check_webhook(webhook, why, sizeof(why)) < 0)
		return fail("worker %s: webhook \"%s\" is not a usable http:// or https:// URL: %s", id,
		            tc_sanitize(webhook, strlen(webhook), clean, sizeof(clean)), why);
	if (worker_get(m, id))
		return fail("worker %s already exists", id);
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return fail("out of memory");
	w->id = strdup(id);
	w->name = strdup(name);
	w->team = dup_or_null(team);
	w->phone = dup_or_null(arg_str(args, "phone"));
	w->webhook = dup_or_null(webhook);
	w->created_at = tc_now_ms();
	if (worker_add(m, w) < 0)
		return fail("out of memory");
	log_full(LOG_INFO, NULL, 0, id, "worker %s added by %s", id, who_label(who, label, sizeof(label)));
	return ok(worker_json(w));
}

json_t *cmd_worker_list(struct manager *m, const struct actor *who, json_t *args)
{
	(void)who;
	(void)args;
	return ok(sorted_list(&m->workers, worker_to_json));
}

static json_t *shifts_of(struct manager *m, const char *worker, int64_t at)
{
	json_t *list = json_array();
	for (size_t i = 0; i < m->n_shifts; i++) {
		struct shift *sh = m->shifts[i];
		if ((!worker || !strcmp(sh->worker, worker)) && (!at || shift_covers(sh, at)))
			json_array_append_new(list, shift_json(sh));
	}
	return list;
}

json_t *cmd_worker_show(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	if (who->role == ROLE_WORKER && strcmp(who->worker, id))
		return fail("permission denied: a worker may see only themselves");
	struct worker *w = worker_get(m, id);
	if (!w)
		return fail("worker %s is not registered", id);
	json_t *j = worker_json(w);
	json_object_set_new(j, "shifts", shifts_of(m, id, 0));
	json_object_set_new(j, "on_duty", json_boolean(worker_on_duty(m, id, tc_now_ms())));
	return ok(j);
}

json_t *cmd_worker_remove(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char label[160];
	if (!worker_get(m, id))
		return fail("worker %s is not registered", id);
	worker_remove(m, id);
	log_full(LOG_INFO, NULL, 0, id, "worker %s removed with their shifts by %s", id,
	         who_label(who, label, sizeof(label)));
	return ok(NULL);
}

json_t *cmd_shift_add(struct manager *m, const struct actor *who, json_t *args)
{
	const char *wid = arg_str(args, "worker");
	const char *days = arg_str(args, "days"), *hours = arg_str(args, "hours");
	char label[160];
	if (!worker_get(m, wid))
		return fail("worker %s is not registered", wid);
	struct shift sh = { 0 };
	if (arg_true(args, "always")) {
		sh.kind = SHIFT_ALWAYS;
	} else if (days || hours) {
		sh.kind = SHIFT_WEEKLY;
		if (!days || shift_parse_days(days, &sh.days) < 0)
			return fail("days must be like mon-fri, sat,sun, daily, weekdays or weekends");
		if (!hours || shift_parse_hours(hours, &sh.start_min, &sh.end_min) < 0)
			return fail("hours must be HH:MM-HH:MM, e.g. 08:00-16:00 or 22:00-06:00");
	} else if (json_object_get(args, "from") || json_object_get(args, "to")) {
		sh.kind = SHIFT_ONCE;
		sh.from = arg_time(args, "from", -1);
		sh.to = arg_time(args, "to", -1);
		if (sh.from < 0 || sh.to < 0 || sh.to <= sh.from)
			return fail("a one-off shift needs from and to, with to after from");
	} else {
		return fail("a shift is always, weekly (days and hours) or one-off (from and to)");
	}
	struct shift *n = malloc(sizeof(*n));
	if (!n)
		return fail("out of memory");
	*n = sh;
	n->worker = strdup(wid);
	if (!n->worker || shift_add(m, n) < 0)
		return fail("out of memory");
	log_full(LOG_INFO, NULL, 0, wid, "shift %lld added for worker %s by %s", (long long)n->id, wid,
	         who_label(who, label, sizeof(label)));
	return ok(shift_json(n));
}

json_t *cmd_shift_list(struct manager *m, const struct actor *who, json_t *args)
{
	/* a worker sees their own shifts only */
	const char *only = who->role == ROLE_WORKER ? who->worker : NULL;
	if (only && !*only)
		return ok(json_array());
	return ok(shifts_of(m, only, arg_time(args, "at", 0)));
}

json_t *cmd_shift_remove(struct manager *m, const struct actor *who, json_t *args)
{
	int64_t id = arg_int(args, "id", -1);
	char label[160];
	if (shift_remove(m, id) < 0)
		return fail("shift %lld does not exist", (long long)id);
	log_info("shift %lld removed by %s", (long long)id, who_label(who, label, sizeof(label)));
	return ok(NULL);
}

json_t *cmd_oncall(struct manager *m, const struct actor *who, json_t *args)
{
	int64_t at = arg_time(args, "at", tc_now_ms());
	const char *team = arg_str(args, "team");
	(void)who;
	json_t *all = sorted_list(&m->workers, worker_to_json), *out = json_array(), *w;
	size_t i;
	json_array_foreach(all, i, w) {
		const char *id = json_string_value(json_object_get(w, "id"));
		struct worker *wk = worker_get(m, id);
		if ((team && !worker_in_team(wk, team)) || !worker_on_duty(m, id, at))
			continue;
		json_object_set_new(w, "shifts", shifts_of(m, id, at));
		json_array_append(out, w);
	}
	json_decref(all);
	return ok(out);
}

/* When nobody (of team) is on duty in the next hours: the dispatcher's view
 * of the gaps in the roster (docs/HTTP.md). Minute by minute, one local time
 * per minute for all shifts: a day is 1,440 steps over the shifts. */
json_t *cmd_oncall_gaps(struct manager *m, const struct actor *who, json_t *args)
{
	int64_t hours = arg_int(args, "hours", 24);
	const char *team = arg_str(args, "team");
	(void)who;
	if (hours < 1 || hours > 168)
		return fail("hours must be 1-168");
	int64_t start = tc_now_ms() / 60000 * 60000, end = start + hours * 3600000;
	json_t *gaps = json_array();
	int64_t gap_from = -1;
	for (int64_t t = start; t <= end; t += 60000) {
		bool covered = false;
		if (t < end) {
			struct tm tm;
			time_t secs = (time_t)(t / 1000);
			localtime_r(&secs, &tm);
			for (size_t i = 0; !covered && i < m->n_shifts; i++) {
				const struct shift *s = m->shifts[i];
				struct worker *w = team ? worker_get(m, s->worker) : NULL;
				if ((!team || (w && worker_in_team(w, team))) && shift_covers_tm(s, t, &tm))
					covered = true;
			}
		}
		if (!covered && t < end && gap_from < 0)
			gap_from = t;
		if ((covered || t >= end) && gap_from >= 0) {
			json_array_append_new(gaps, json_pack("{s:o, s:o, s:o}", "from",
			                      json_time_or_null(gap_from), "to", json_time_or_null(t),
			                      "team", json_str_or_null(team)));
			gap_from = -1;
		}
	}
	return ok(gaps);
}
