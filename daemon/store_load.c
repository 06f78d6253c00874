/* Loading at start (SPEC 7: a damaged database is refused, never
 * half-loaded) and the id ranges (ids are never reused). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

/* The end of a load query: a step that did not end in SQLITE_DONE is a
 * damaged or unreadable database, never "no more rows". */
static int done(sqlite3_stmt *s, int rc)
{
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* One integer from a one-row query (NULL: 0). -1 on error. */
static int one_int(struct manager *m, const char *sql, int64_t *v)
{
	sqlite3_stmt *s = store_query(m, sql);
	if (!s)
		return -1;
	int rc = sqlite3_step(s);
	*v = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	return done(s, rc);
}

static char *col_str(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? strdup((const char *)t) : NULL;
}

static int load_residents(struct manager *m)
{
	sqlite3_stmt *s = store_query(m, "SELECT id, name, address, phone, team, notes, created_at"
	                                 " FROM residents WHERE removed_at IS NULL");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct resident *r = calloc(1, sizeof(*r));
		if (!r)
			return -1;
		r->id = col_str(s, 0);
		r->name = col_str(s, 1);
		r->address = col_str(s, 2);
		r->phone = col_str(s, 3);
		r->team = col_str(s, 4);
		r->notes = col_str(s, 5);
		r->created_at = sqlite3_column_int64(s, 6);
		if (!r->id || !r->name || map_put(&m->residents, r->id, r) < 0) {
			resident_free(r);
			return -1;
		}
	}
	return done(s, rc);
}

static int load_devices(struct manager *m)
{
	sqlite3_stmt *s = store_query(m, "SELECT id, resident_id, kind, heartbeat_ms, test, created_at,"
	                                 " source, address FROM devices WHERE removed_at IS NULL");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct device *d = calloc(1, sizeof(*d));
		if (!d)
			return -1;
		d->id = col_str(s, 0);
		d->resident_id = col_str(s, 1);
		d->kind = col_str(s, 2);
		d->heartbeat_ms = sqlite3_column_int64(s, 3);
		d->created_at = sqlite3_column_int64(s, 5);
		d->source = col_str(s, 6);
		d->address = col_str(s, 7);
		d->battery = -1;
		d->rssi = INT32_MIN;
		d->heap_index = SIZE_MAX;
		if (!d->id || !d->resident_id || map_put(&m->devices, d->id, d) < 0) {
			device_free(d);
			return -1;
		}
		if (d->source && d->address) {
			char key[TC_ADDRESS_MAX + 80];
			snprintf(key, sizeof(key), "%s\n%s", d->source, d->address);
			if (map_put(&m->by_address, key, d) < 0)
				return -1;
		}
	}
	if (done(s, rc) < 0)
		return -1;
	/* Last seen, battery and signal of each registered device: its latest event. */
	s = store_query(m, "SELECT e.device_id, e.received_at, e.battery, e.rssi FROM events e"
	                   " JOIN (SELECT device_id, max(seq) AS seq FROM events GROUP BY device_id) l"
	                   " ON e.seq = l.seq");
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		struct device *d = id ? device_get(m, id) : NULL;
		if (!d)
			continue;
		d->last_seen = sqlite3_column_int64(s, 1);
		if (sqlite3_column_type(s, 2) != SQLITE_NULL)
			d->battery = sqlite3_column_int(s, 2);
		if (sqlite3_column_type(s, 3) != SQLITE_NULL)
			d->rssi = sqlite3_column_int(s, 3);
	}
	return done(s, rc);
}

static json_t *col_json(sqlite3_stmt *s, int i)
{
	const char *t = (const char *)sqlite3_column_text(s, i);
	return t ? json_loads(t, JSON_DECODE_ANY, NULL) : NULL;
}

static json_t *esc_list(json_t *esc, const char *key)
{
	json_t *v = json_object_get(esc, key);
	return json_is_array(v) ? json_incref(v) : json_array();
}

struct alarm *alarm_from_row(sqlite3_stmt *s)
{
	struct alarm *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->id = sqlite3_column_int64(s, 0);
	snprintf(a->device, sizeof(a->device), "%s", (const char *)sqlite3_column_text(s, 1));
	a->resident_id = col_str(s, 2);
	a->key = col_str(s, 3);
	a->priority = sqlite3_column_int(s, 4);
	json_t *types = col_json(s, 5);
	size_t i;
	json_t *t;
	json_array_foreach(types, i, t) {
		enum tc_type ty = tc_type_from_name(json_string_value(t) ? json_string_value(t) : "");
		if (ty != TC_T_INVALID && a->n_types < TC_T__COUNT)
			a->types[a->n_types++] = (uint8_t)ty;
	}
	json_decref(types);
	int state = alarm_state_from_name((const char *)sqlite3_column_text(s, 6));
	a->state = state < 0 ? ALARM_OPEN : (enum alarm_state)state;
	a->test = sqlite3_column_int(s, 7);
	a->technical = sqlite3_column_int(s, 8);
	a->step = sqlite3_column_int(s, 9);
	a->loc = col_json(s, 10);
	/* column 11, the policy's name, is also inside policy_def */
	a->opened_at = sqlite3_column_int64(s, 12);
	a->acked_at = sqlite3_column_int64(s, 13);
	a->acked_by = col_str(s, 14);
	a->resolved_at = sqlite3_column_int64(s, 15);
	a->outcome = col_str(s, 16);
	a->updated_at = sqlite3_column_int64(s, 17);
	a->round = sqlite3_column_int(s, 18);
	a->next_at = sqlite3_column_int64(s, 19);
	json_t *pdef = col_json(s, 20);
	a->policy = pdef ? policy_from_json(pdef) : NULL;
	json_decref(pdef);
	json_t *esc = col_json(s, 21);
	a->alerted = esc_list(esc, "alerted");
	a->step_workers = esc_list(esc, "step");
	a->declined = esc_list(esc, "declined");
	json_decref(esc);
	a->acked_by_id = col_str(s, 22);
	a->first_ack_at = sqlite3_column_int64(s, 23);
	json_t *inc = col_json(s, 24);
	const char *cls = json_string_value(json_object_get(inc, "class"));
	if (cls)
		a->incident = mass_incident_new(cls);
	json_decref(inc);
	a->sched_index = SIZE_MAX;
	return a;
}

static int load_alarms(struct manager *m)
{
	sqlite3_stmt *s = store_query(m, "SELECT " ALARM_COLUMNS " FROM alarms WHERE state != 'resolved'");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct alarm *a = alarm_from_row(s);
		if (!a)
			return -1;
		alarm_track(m, a);
	}
	return done(s, rc);
}

static int load_workers(struct manager *m)
{
	sqlite3_stmt *s = store_query(m, "SELECT id, name, team, phone, webhook, created_at"
	                                 " FROM workers WHERE removed_at IS NULL");
	if (!s)
		return -1;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct worker *w = calloc(1, sizeof(*w));
		if (!w)
			return -1;
		w->id = col_str(s, 0);
		w->name = col_str(s, 1);
		w->team = col_str(s, 2);
		w->phone = col_str(s, 3);
		w->webhook = col_str(s, 4);
		w->created_at = sqlite3_column_int64(s, 5);
		if (!w->id || !w->name || map_put(&m->workers, w->id, w) < 0) {
			worker_free(w);
			return -1;
		}
	}
	if (done(s, rc) < 0)
		return -1;
	s = store_query(m, "SELECT id, worker_id, kind, days, start_min, end_min, from_at, to_at"
	                   " FROM shifts WHERE removed_at IS NULL ORDER BY id");
	if (!s)
		return -1;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct shift *sh = calloc(1, sizeof(*sh));
		if (!sh)
			return -1;
		sh->id = sqlite3_column_int64(s, 0);
		sh->worker = col_str(s, 1);
		const char *kind = (const char *)sqlite3_column_text(s, 2);
		if (!sh->worker || !kind) {
			shift_free(sh);
			return -1;
		}
		sh->kind = !strcmp(kind, "weekly") ? SHIFT_WEEKLY : !strcmp(kind, "once") ? SHIFT_ONCE
		                                                                         : SHIFT_ALWAYS;
		sh->days = (unsigned)sqlite3_column_int(s, 3);
		sh->start_min = sqlite3_column_int(s, 4);
		sh->end_min = sqlite3_column_int(s, 5);
		sh->from = sqlite3_column_int64(s, 6);
		sh->to = sqlite3_column_int64(s, 7);
		int64_t next = m->next_shift_id;
		if (shift_add(m, sh) < 0)
			return -1;
		m->next_shift_id = next > sh->id + 1 ? next : sh->id + 1;
	}
	return done(s, rc);
}

/* ---- ids from durably reserved ranges (SPEC 7: ids are never reused) ----
 *
 * An alarm id is shown (in alerts, on the board) before its row is
 * committed: alerting never waits for the disk. So ids are not taken from
 * MAX(id)+1 at start, which forgets every id shown but lost in a crash;
 * they come from a range whose end is committed first. When half of the
 * range is used, the next end is queued with the ordinary writes; a crash
 * skips the rest of the range, never repeats an id. */

struct seq_commit {
	struct seq *g;
	int64_t hi;
};

static void seq_committed(struct manager *m, void *data, bool ok, const char *error)
{
	struct seq_commit *c = data;
	(void)m;
	if (ok && c->hi > c->g->durable_hi)
		c->g->durable_hi = c->hi;
	else if (!ok)
		log_error("cannot reserve %s ids up to %lld: %s", c->g->name, (long long)c->hi, error);
	free(c);
}

static void seq_reserve(struct manager *m, struct seq *g, int64_t hi)
{
	struct seq_commit *c = malloc(sizeof(*c));
	uint64_t mark = store_mark(m);
	g->pending_hi = hi;
	store_write(m, ST_SEQUENCE_SET, "si", g->name, hi);
	if (c) {
		*c = (struct seq_commit){ g, hi };
		store_after_commit(m, mark, seq_committed, c);
	}
}

int64_t seq_take(struct manager *m, struct seq *g)
{
	int64_t id = g->next++;
	if (g->next + g->range / 2 > g->pending_hi)
		seq_reserve(m, g, g->next + g->range);
	if (id >= g->durable_hi && !g->warned) {
		/* The disk has failed for a whole half range: going on beats
		 * holding an alert back, but say what it risks. */
		log_full(LOG_CRIT, NULL, 0, NULL, "%s id %lld is beyond the range reserved on disk "
		         "(%lld): database writes are failing; a crash now could reuse it",
		         g->name, (long long)id, (long long)g->durable_hi);
		g->warned = true;
	} else if (id < g->durable_hi) {
		g->warned = false;
	}
	return id;
}

void seq_at_least(struct manager *m, struct seq *g, int64_t next)
{
	if (next <= g->next)
		return;
	g->next = next;
	if (g->next + g->range / 2 > g->pending_hi)
		seq_reserve(m, g, g->next + g->range);
}

static int seq_load(struct manager *m, struct seq *g, const char *name, int64_t range,
                    const char *max_sql)
{
	int64_t max, hi = 0;
	sqlite3_stmt *s = store_query(m, "SELECT next FROM sequences WHERE name = ?");
	if (!s || one_int(m, max_sql, &max) < 0)
		return -1;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		hi = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	if (done(s, rc) < 0)
		return -1;
	g->name = name;
	g->range = range;
	/* Everything below the last committed end may have been shown. */
	g->next = hi > max + 1 ? hi : max + 1;
	g->durable_hi = g->pending_hi = 0;
	seq_reserve(m, g, g->next + g->range);
	return 0;
}


int store_load(struct manager *m)
{
	const char *path = store_path(m);
	int64_t t0 = tc_now_ms();
	/* A damaged file is refused, not half-loaded (SPEC 7). */
	sqlite3_stmt *s = store_query(m, "PRAGMA quick_check");
	int rc = s ? sqlite3_step(s) : SQLITE_ERROR;
	const char *verdict = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(s, 0) : NULL;
	if (!verdict || strcmp(verdict, "ok")) {
		char what[300];
		snprintf(what, sizeof(what), "%s", verdict ? verdict : store_errmsg(m));
		for (char *c = what; *c; c++)
			if (*c == '\n')
				*c = ' ';
		log_error("database %s is damaged: %s; telecared will not run on it. Restore the "
		          "latest backup (telecarectl backup) over it; telecared --check-db says more",
		          path, what);
		if (s)
			sqlite3_reset(s);
		return -EIO;
	}
	sqlite3_reset(s);
	int64_t checked = tc_now_ms() - t0;
	const char *what = "shifts";
	int64_t max_shift;
	if (one_int(m, "SELECT max(id) FROM shifts", &max_shift) < 0 ||
	    (what = "residents", load_residents(m) < 0) || (what = "devices", load_devices(m) < 0) ||
	    (what = "workers", load_workers(m) < 0) || (what = "alarms", load_alarms(m) < 0) ||
	    (what = "alarm ids", seq_load(m, &m->alarm_ids, "alarm", 100,
	                                  "SELECT max(id) FROM alarms") < 0) ||
	    (what = "event sequence numbers", seq_load(m, &m->event_seqs, "event", 100000,
	                                               "SELECT max(seq) FROM events") < 0)) {
		log_error("database %s: cannot load %s: %s; telecared will not run on a partial load",
		          path, what, store_errmsg(m));
		return -EIO;
	}
	if (m->next_shift_id <= max_shift)
		m->next_shift_id = max_shift + 1;
	/* The first ranges are on disk before any id is shown. */
	const char *err;
	if (store_flush(m) < 0) {
		store_ok(m, &err);
		log_error("database %s: cannot reserve ids: %s", path, err ? err : "?");
		return -EIO;
	}
	log_info("database %s checked (quick_check) in %lld ms, loaded in %lld ms", path,
	         (long long)checked, (long long)(tc_now_ms() - t0 - checked));
	return 0;
}

