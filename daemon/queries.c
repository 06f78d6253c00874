/* The reads of the store's tables that commands need, one function each,
 * next to the schema (store.c) they depend on. Every parameter is bound and
 * every sqlite3_step() result checked: a read that fails returns -1 with the
 * database's reason, never a list cut short as if it had ended. Reads see
 * what is committed; what is queued and not yet committed is in memory. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define EVENT_COLUMNS "seq, device_id, eid, type, received_at, alarm_id, known, payload"

static int failed(sqlite3_stmt *s, int rc, char *err, size_t len)
{
	snprintf(err, len, "database read failed: %s",
	         s ? sqlite3_errmsg(sqlite3_db_handle(s)) : "cannot prepare the query (see the log)");
	if (s)
		sqlite3_reset(s);
	(void)rc;
	return -1;
}

/* Prepare (cached) and bind: "t" text, "i" int64. NULL with err set. */
static sqlite3_stmt *prepare(struct manager *m, const char *sql, char *err, size_t len,
                             const char *fmt, ...)
{
	sqlite3_stmt *s = store_query(m, sql);
	if (!s) {
		failed(NULL, 0, err, len);
		return NULL;
	}
	va_list ap;
	va_start(ap, fmt);
	int rc = SQLITE_OK;
	for (int i = 1; *fmt && rc == SQLITE_OK; fmt++, i++) {
		if (*fmt == 't')
			rc = sqlite3_bind_text(s, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
		else
			rc = sqlite3_bind_int64(s, i, va_arg(ap, int64_t));
	}
	va_end(ap);
	if (rc != SQLITE_OK) {
		failed(s, rc, err, len);
		return NULL;
	}
	return s;
}

/* After the last row: SQLITE_DONE is the end, anything else an error. */
static int done(sqlite3_stmt *s, int rc, char *err, size_t len)
{
	if (rc != SQLITE_DONE)
		return failed(s, rc, err, len);
	sqlite3_reset(s);
	return 0;
}

static const char *col_text(sqlite3_stmt *s, int i)
{
	return (const char *)sqlite3_column_text(s, i);
}

static json_t *event_row_json(sqlite3_stmt *s)
{
	const char *p = col_text(s, 7), *id = col_text(s, 2);
	json_t *payload = p ? json_loads(p, 0, NULL) : NULL;
	json_t *idj = id ? json_loads(id, JSON_DECODE_ANY, NULL) : NULL;
	return json_pack("{s:I, s:s?, s:o, s:s?, s:o, s:o, s:b, s:o}",
	                 "seq", (json_int_t)sqlite3_column_int64(s, 0), "device", col_text(s, 1),
	                 "id", idj ? idj : json_null(), "type", col_text(s, 3),
	                 "received_at", json_time_or_null(sqlite3_column_int64(s, 4)),
	                 "alarm", sqlite3_column_type(s, 5) == SQLITE_NULL
	                          ? json_null() : json_integer(sqlite3_column_int64(s, 5)),
	                 "known", sqlite3_column_int(s, 6),
	                 "payload", payload ? payload : json_null());
}

int q_users(struct manager *m, q_user_fn fn, void *ctx, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m, "SELECT name, role, worker_id, hash, created_at, changed_at"
	                             " FROM users WHERE removed_at IS NULL", err, len, "");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!col_text(s, 0) || !col_text(s, 1) || !col_text(s, 3)) {
			sqlite3_reset(s);
			snprintf(err, len, "a row of the users table has no name, role or hash");
			return -1;
		}
		if (fn(ctx, col_text(s, 0), col_text(s, 1), col_text(s, 2), col_text(s, 3),
		       sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5)) < 0) {
			sqlite3_reset(s);
			snprintf(err, len, "out of memory");
			return -1;
		}
	}
	return done(s, rc, err, len);
}

int q_device_latest(struct manager *m, const char *device, int64_t *seen, int *battery,
                    int *rssi, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m, "SELECT received_at, battery, rssi FROM events"
	                             " WHERE device_id = ? ORDER BY seq DESC LIMIT 1",
	                          err, len, "t", device);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return done(s, rc, err, len);
	*seen = sqlite3_column_int64(s, 0);
	if (sqlite3_column_type(s, 1) != SQLITE_NULL)
		*battery = sqlite3_column_int(s, 1);
	if (sqlite3_column_type(s, 2) != SQLITE_NULL)
		*rssi = sqlite3_column_int(s, 2);
	sqlite3_reset(s);
	return 1;
}

int q_device_has_events(struct manager *m, const char *device, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m, "SELECT 1 FROM events WHERE device_id = ? LIMIT 1",
	                          err, len, "t", device);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return done(s, rc, err, len);
	sqlite3_reset(s);
	return 1;
}

int q_events(struct manager *m, const char *device, int64_t alarm, int64_t limit, json_t *out,
             char *err, size_t len)
{
	sqlite3_stmt *s;
	if (device)
		s = prepare(m, "SELECT " EVENT_COLUMNS " FROM events WHERE device_id = ?"
		               " ORDER BY seq DESC LIMIT ?", err, len, "ti", device, limit);
	else if (alarm >= 0)
		s = prepare(m, "SELECT " EVENT_COLUMNS " FROM events WHERE alarm_id = ?"
		               " ORDER BY seq DESC LIMIT ?", err, len, "ii", alarm, limit);
	else
		s = prepare(m, "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq DESC LIMIT ?",
		            err, len, "i", limit);
	if (!s)
		return -1;
	size_t at = json_array_size(out);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_insert_new(out, at, event_row_json(s));   /* oldest first */
	return done(s, rc, err, len);
}

int q_unknown_devices(struct manager *m, json_t *out, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m,
		"SELECT device_id, count(*), min(received_at), max(received_at),"
		" (SELECT type FROM events l WHERE l.device_id = e.device_id ORDER BY seq DESC LIMIT 1)"
		" FROM events e WHERE known = 0 GROUP BY device_id ORDER BY max(received_at) DESC",
		err, len, "");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *dev = col_text(s, 0);
		if (!dev || device_get(m, dev))
			continue;  /* registered since */
		json_array_append_new(out, json_pack("{s:s, s:I, s:o, s:o, s:s?}", "device", dev,
		                      "events", (json_int_t)sqlite3_column_int64(s, 1),
		                      "first_seen", json_time_or_null(sqlite3_column_int64(s, 2)),
		                      "last_seen", json_time_or_null(sqlite3_column_int64(s, 3)),
		                      "last_type", col_text(s, 4)));
	}
	return done(s, rc, err, len);
}

int q_unmapped(struct manager *m, json_t *out, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m,
		"SELECT source, address, count(*), min(received_at), max(received_at),"
		" (SELECT reason FROM unmapped l WHERE l.source = u.source AND l.address IS u.address"
		"  ORDER BY seq DESC LIMIT 1),"
		" (SELECT payload FROM unmapped l WHERE l.source = u.source AND l.address IS u.address"
		"  ORDER BY seq DESC LIMIT 1)"
		" FROM unmapped u GROUP BY source, address ORDER BY max(received_at) DESC LIMIT 1000",
		err, len, "");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *payload = (const char *)sqlite3_column_blob(s, 6);
		int plen = sqlite3_column_bytes(s, 6);
		json_t *pj = payload && tc_utf8_valid(payload, (size_t)plen)
		             ? json_stringn(payload, (size_t)plen) : json_null();
		json_array_append_new(out, json_pack("{s:s?, s:o, s:I, s:o, s:o, s:s?, s:o}",
		                      "source", col_text(s, 0), "address", json_str_or_null(col_text(s, 1)),
		                      "messages", (json_int_t)sqlite3_column_int64(s, 2),
		                      "first_seen", json_time_or_null(sqlite3_column_int64(s, 3)),
		                      "last_seen", json_time_or_null(sqlite3_column_int64(s, 4)),
		                      "reason", col_text(s, 5), "last_payload", pj ? pj : json_null()));
	}
	return done(s, rc, err, len);
}

/* The live alarm when it is in memory (it may have changed since its last
 * commit), else the stored row. */
static int alarm_rows(struct manager *m, sqlite3_stmt *s, json_t *out, char *err, size_t len)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct alarm *live = alarm_get(m, sqlite3_column_int64(s, 0));
		if (live) {
			json_array_append_new(out, alarm_json(m, live));
			continue;
		}
		struct alarm *a = alarm_from_row(s);
		if (!a) {
			sqlite3_reset(s);
			snprintf(err, len, "out of memory");
			return -1;
		}
		json_array_append_new(out, alarm_json(m, a));
		alarm_free(a);
	}
	return done(s, rc, err, len);
}

int q_alarms(struct manager *m, int64_t limit, const struct q_alarm_filter *f, json_t *out,
             char *err, size_t len)
{
	sqlite3_stmt *s;
	if (f && f->alerted)
		s = prepare(m, "SELECT " ALARM_COLUMNS " FROM alarms WHERE EXISTS"
		               " (SELECT 1 FROM json_each(alarms.esc, '$.alerted') WHERE value = ?)"
		               " ORDER BY id DESC LIMIT ?", err, len, "ti", f->alerted, limit);
	else if (f && f->test_only)
		s = prepare(m, "SELECT " ALARM_COLUMNS " FROM alarms WHERE test = 1"
		               " ORDER BY id DESC LIMIT ?", err, len, "i", limit);
	else
		s = prepare(m, "SELECT " ALARM_COLUMNS " FROM alarms ORDER BY id DESC LIMIT ?",
		            err, len, "i", limit);
	return s ? alarm_rows(m, s, out, err, len) : -1;
}

int q_alarm(struct manager *m, int64_t id, struct alarm **out, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m, "SELECT " ALARM_COLUMNS " FROM alarms WHERE id = ?",
	                          err, len, "i", id);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW)
		return done(s, rc, err, len);
	*out = alarm_from_row(s);
	sqlite3_reset(s);
	if (!*out) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return 1;
}

int q_timeline(struct manager *m, int64_t alarm, json_t *out, char *err, size_t len)
{
	sqlite3_stmt *s = prepare(m, "SELECT at, what, actor, detail FROM timeline"
	                             " WHERE alarm_id = ? ORDER BY seq", err, len, "i", alarm);
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(out, json_pack("{s:o, s:s?, s:o, s:o}",
		                      "at", json_time_or_null(sqlite3_column_int64(s, 0)),
		                      "what", col_text(s, 1), "actor", json_str_or_null(col_text(s, 2)),
		                      "detail", json_str_or_null(col_text(s, 3))));
	return done(s, rc, err, len);
}

/* ---- long reads, in slices ---- */

struct q_cursor {
	sqlite3_stmt *s;          /* on the reader connection: a snapshot of its own */
	int kind;                 /* 0 report, 1 events */
};

static struct q_cursor *cursor_open(struct manager *m, int kind, const char *sql, char *err,
                                    size_t len)
{
	sqlite3 *db = store_reader(m);
	struct q_cursor *c = calloc(1, sizeof(*c));
	if (!db || !c) {
		free(c);
		snprintf(err, len, "database read failed: cannot open a reading connection");
		return NULL;
	}
	if (sqlite3_prepare_v2(db, sql, -1, &c->s, NULL) != SQLITE_OK) {
		snprintf(err, len, "database read failed: %s", sqlite3_errmsg(db));
		free(c);
		return NULL;
	}
	c->kind = kind;
	return c;
}

struct q_cursor *q_report_open(struct manager *m, int64_t from, int64_t to, char *err, size_t len)
{
	/* No ORDER BY: a sort would read every row in the first step. The
	 * opened_at index yields them a slice at a time; the report sums by
	 * priority itself. */
	struct q_cursor *c = cursor_open(m, 0, "SELECT priority, opened_at, first_ack_at FROM alarms"
	                                       " WHERE opened_at >= ? AND opened_at < ? AND test = 0",
	                                 err, len);
	if (c) {
		sqlite3_bind_int64(c->s, 1, from);
		sqlite3_bind_int64(c->s, 2, to);
	}
	return c;
}

struct q_cursor *q_events_open(struct manager *m, const char *device, int64_t limit, char *err,
                               size_t len)
{
	struct q_cursor *c = cursor_open(m, 1, device
		? "SELECT " EVENT_COLUMNS " FROM events WHERE device_id = ? ORDER BY seq DESC LIMIT ?"
		: "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq DESC LIMIT ?", err, len);
	if (c && device) {
		sqlite3_bind_text(c->s, 1, device, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(c->s, 2, limit);
	} else if (c) {
		sqlite3_bind_int64(c->s, 1, limit);
	}
	return c;
}

int q_cursor_step(struct q_cursor *c, size_t max, void *ctx, q_report_fn report, json_t *events,
                  char *err, size_t len)
{
	for (size_t n = 0; n < max; n++) {
		int rc = sqlite3_step(c->s);
		if (rc == SQLITE_DONE)
			return 0;
		if (rc != SQLITE_ROW) {
			snprintf(err, len, "database read failed: %s",
			         sqlite3_errmsg(sqlite3_db_handle(c->s)));
			return -1;
		}
		if (c->kind == 1) {
			json_array_append_new(events, event_row_json(c->s));   /* newest first */
			continue;
		}
		int64_t ack = sqlite3_column_type(c->s, 2) == SQLITE_NULL ? -1
		              : sqlite3_column_int64(c->s, 2);
		if (report(ctx, sqlite3_column_int(c->s, 0), sqlite3_column_int64(c->s, 1), ack) < 0) {
			snprintf(err, len, "out of memory");
			return -1;
		}
	}
	return 1;
}

void q_cursor_close(struct q_cursor *c)
{
	if (!c)
		return;
	sqlite3_finalize(c->s);   /* ends its read snapshot */
	free(c);
}
