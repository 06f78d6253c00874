/* The SQLite store: an append-only record of what happened.
 *
 * Writes are queued in memory (struct op) and committed together, in one
 * transaction, when the loop has drained its input or the batch is large or
 * old (group commit). A failed commit leaves the queue intact and is retried:
 * nothing is forgotten because the disk was full for a while. Work that must
 * wait for durability (receipts, control answers) is queued behind the
 * writes with store_after_commit(). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define BATCH_MAX      1000      /* writes before a commit is forced */
#define BATCH_AGE_MS   10        /* oldest write before a commit is forced */
#define RETRY_MS       1000      /* after a failed commit */
#define MAX_ARGS       32
#define SCHEMA_VERSION 2
/* Refusals are rare (a constraint, a trigger, out of memory) and a reply is
 * registered right after its writes: the last few are enough to tell every
 * waiting reply whether its writes made it. */
#define REFUSALS_KEPT  256

struct val {
	char type;                   /* 'i' int, 'd' double, 's' text, 'x' text of n bytes,
	                                'b' blob, 'z' NULL */
	int64_t i;
	double d;
	char *p;
	size_t n;
};

struct op {
	enum store_stmt stmt;
	uint64_t seq;                /* store_mark() order */
	int n;
	struct val v[MAX_ARGS];
};

struct after {
	store_done_fn fn;
	void *data;
	uint64_t since, upto;        /* the writes it reports on: [since, upto) */
};

/* A write the database refused (or that could not even be queued), until the
 * after-commit callbacks that cover it have been told. */
struct refusal {
	uint64_t seq;
	char error[160];
};

struct store {
	sqlite3 *db;
	sqlite3 *reader;             /* read-only, for long reads in slices (store_reader) */
	char *path;
	sqlite3_stmt *write[ST__WRITE_COUNT];
	struct map reads;            /* SQL text -> sqlite3_stmt */
	struct op **ops;
	size_t n_ops, cap_ops;
	struct after *afters;
	size_t n_afters, cap_afters;
	uint64_t next_seq;           /* of the next write */
	struct refusal refused[REFUSALS_KEPT];   /* the latest, a ring */
	size_t n_refused;            /* ever; the ring holds the last REFUSALS_KEPT */
	int64_t first_queued_ms;
	sd_event_source *defer, *retry;
	bool failed;
	char error[256];
};

static const char *write_sql[ST__WRITE_COUNT] = {
	[ST_EVENT_INSERT] =
		"INSERT INTO events(seq, device_id, eid, type, received_at, device_ts, known, alarm_id,"
		" battery, rssi, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
	[ST_REJECT_INSERT] =
		"INSERT INTO rejects(received_at, topic, device_id, eid, error, payload, payload_len)"
		" VALUES (?,?,?,?,?,?,?)",
	[ST_ALARM_UPSERT] =
		"INSERT OR REPLACE INTO alarms(" ALARM_COLUMNS ")"
		" VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
	[ST_TIMELINE_INSERT] =
		"INSERT INTO timeline(alarm_id, at, what, actor, detail) VALUES (?,?,?,?,?)",
	[ST_RESIDENT_UPSERT] =
		"INSERT OR REPLACE INTO residents(id, name, address, phone, team, notes, created_at,"
		" removed_at) VALUES (?,?,?,?,?,?,?,NULL)",
	[ST_RESIDENT_DELETE] = "UPDATE residents SET removed_at = ? WHERE id = ?",
	[ST_DEVICE_UPSERT] =
		"INSERT OR REPLACE INTO devices(id, resident_id, kind, heartbeat_ms, test, created_at,"
		" source, address, removed_at) VALUES (?,?,?,?,?,?,?,?,NULL)",
	[ST_DEVICE_DELETE] = "UPDATE devices SET removed_at = ? WHERE id = ?",
	[ST_WORKER_UPSERT] =
		"INSERT OR REPLACE INTO workers(id, name, team, phone, webhook, created_at, removed_at)"
		" VALUES (?,?,?,?,?,?,NULL)",
	[ST_WORKER_DELETE] = "UPDATE workers SET removed_at = ? WHERE id = ?",
	[ST_SHIFT_INSERT] =
		"INSERT INTO shifts(id, worker_id, kind, days, start_min, end_min, from_at, to_at,"
		" created_at) VALUES (?,?,?,?,?,?,?,?,?)",
	[ST_SHIFT_DELETE] = "UPDATE shifts SET removed_at = ? WHERE id = ?",
	[ST_SEQUENCE_SET] =
		"INSERT INTO sequences(name, next) VALUES (?,?)"
		" ON CONFLICT(name) DO UPDATE SET next = max(next, excluded.next)",
	[ST_MEMBER_UPSERT] =
		"INSERT OR REPLACE INTO incident_members(alarm_id, device_id, type, known, joined_at,"
		" restored_at) VALUES (?,?,?,?,?,?)",
	[ST_UNMAPPED_INSERT] =
		"INSERT INTO unmapped(received_at, source, address, device_id, topic, reason, payload)"
		" VALUES (?,?,?,?,?,?,?)",
	[ST_USER_UPSERT] =
		"INSERT OR REPLACE INTO users(name, role, worker_id, hash, created_at, changed_at,"
		" removed_at) VALUES (?,?,?,?,?,?,NULL)",
	/* a removed user's hash goes too: it is of no use to anyone any more */
	[ST_USER_DELETE] = "UPDATE users SET removed_at = ?, hash = '' WHERE name = ?",
};

/* Version 1, frozen from the first release: a new version appends a
 * migration step (ALTER TABLE ...) and never edits an old one. */
static const char *schema_v1 =
	"CREATE TABLE residents(id TEXT PRIMARY KEY, name TEXT NOT NULL, address TEXT,"
	" phone TEXT, team TEXT, notes TEXT, created_at INTEGER NOT NULL, removed_at INTEGER);"
	"CREATE TABLE devices(id TEXT PRIMARY KEY, resident_id TEXT NOT NULL, kind TEXT,"
	" heartbeat_ms INTEGER NOT NULL DEFAULT 0, test INTEGER NOT NULL DEFAULT 0,"
	" created_at INTEGER NOT NULL, removed_at INTEGER, source TEXT, address TEXT);"
	"CREATE TABLE events(seq INTEGER PRIMARY KEY, device_id TEXT NOT NULL, eid TEXT NOT NULL,"
	" type TEXT NOT NULL, received_at INTEGER NOT NULL, device_ts INTEGER,"
	" known INTEGER NOT NULL, alarm_id INTEGER, battery INTEGER, rssi INTEGER,"
	" payload TEXT NOT NULL, UNIQUE(device_id, eid));"
	"CREATE INDEX events_device ON events(device_id, seq);"
	"CREATE INDEX events_alarm ON events(alarm_id) WHERE alarm_id IS NOT NULL;"
	"CREATE INDEX events_unknown ON events(device_id, seq) WHERE known = 0;"
	"CREATE TABLE rejects(seq INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, topic TEXT,"
	" device_id TEXT, eid TEXT, error TEXT NOT NULL, payload BLOB, payload_len INTEGER NOT NULL);"
	"CREATE TABLE alarms(id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, resident_id TEXT,"
	" akey TEXT NOT NULL, priority INTEGER NOT NULL, types TEXT NOT NULL, state TEXT NOT NULL,"
	" test INTEGER NOT NULL, technical INTEGER NOT NULL, step INTEGER NOT NULL, loc TEXT,"
	" policy TEXT, opened_at INTEGER NOT NULL, acked_at INTEGER, acked_by TEXT,"
	" resolved_at INTEGER, outcome TEXT, updated_at INTEGER NOT NULL,"
	" round INTEGER NOT NULL DEFAULT 0, next_at INTEGER, policy_def TEXT, esc TEXT,"
	" acked_by_id TEXT, first_ack_at INTEGER);"
	"CREATE INDEX alarms_opened ON alarms(opened_at);"
	"CREATE TABLE workers(id TEXT PRIMARY KEY, name TEXT NOT NULL, team TEXT, phone TEXT,"
	" webhook TEXT, created_at INTEGER NOT NULL, removed_at INTEGER);"
	"CREATE TABLE unmapped(seq INTEGER PRIMARY KEY, received_at INTEGER NOT NULL,"
	" source TEXT NOT NULL, address TEXT, device_id TEXT, topic TEXT NOT NULL,"
	" reason TEXT NOT NULL, payload BLOB);"
	"CREATE INDEX unmapped_address ON unmapped(source, address, seq);"
	"CREATE TABLE shifts(id INTEGER PRIMARY KEY, worker_id TEXT NOT NULL, kind TEXT NOT NULL,"
	" days INTEGER, start_min INTEGER, end_min INTEGER, from_at INTEGER, to_at INTEGER,"
	" created_at INTEGER NOT NULL, removed_at INTEGER);"
	"CREATE INDEX alarms_unresolved ON alarms(state) WHERE state != 'resolved';"
	"CREATE TABLE timeline(seq INTEGER PRIMARY KEY, alarm_id INTEGER NOT NULL,"
	" at INTEGER NOT NULL, what TEXT NOT NULL, actor TEXT, detail TEXT);"
	"CREATE INDEX timeline_alarm ON timeline(alarm_id, seq);";

/* Version 2 (issues 9-11): id ranges reserved durably, members of mass
 * incidents, console users, and what an incident alarm is. */
static const char *schema_v2 =
	"CREATE TABLE sequences(name TEXT PRIMARY KEY, next INTEGER NOT NULL);"
	"CREATE TABLE incident_members(alarm_id INTEGER NOT NULL, device_id TEXT NOT NULL,"
	" type TEXT NOT NULL, known INTEGER NOT NULL, joined_at INTEGER NOT NULL,"
	" restored_at INTEGER, PRIMARY KEY(alarm_id, device_id));"
	"CREATE TABLE users(name TEXT PRIMARY KEY, role TEXT NOT NULL, worker_id TEXT,"
	" hash TEXT NOT NULL, created_at INTEGER NOT NULL, changed_at INTEGER,"
	" removed_at INTEGER);"
	"ALTER TABLE alarms ADD COLUMN incident TEXT;";

static void op_free(struct op *op)
{
	for (int i = 0; i < op->n; i++)
		free(op->v[i].p);
	free(op);
}

static int exec(struct store *st, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->error, sizeof(st->error), "%s", msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

static int migrate(struct store *st)
{
	sqlite3_stmt *s;
	int version = 0;
	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	if (version > SCHEMA_VERSION) {
		snprintf(st->error, sizeof(st->error),
		         "database schema version %d is newer than this telecared knows (%d)",
		         version, SCHEMA_VERSION);
		return -1;
	}
	if (version == SCHEMA_VERSION)
		return 0;
	if (exec(st, "BEGIN IMMEDIATE") < 0)
		return -1;
	if (version < 1 && exec(st, schema_v1) < 0)
		goto fail;
	if (version < 2 && exec(st, schema_v2) < 0)
		goto fail;
	char sql[64];
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SCHEMA_VERSION);
	if (exec(st, sql) < 0 || exec(st, "COMMIT") < 0)
		goto fail;
	log_info("database schema migrated from version %d to %d", version, SCHEMA_VERSION);
	return 0;
fail:
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}

static int on_defer(sd_event_source *s, void *userdata)
{
	(void)s;
	store_flush(userdata);
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	store_flush(userdata);
	return 0;
}

int store_open(struct manager *m, const char *path)
{
	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	m->store = st;
	st->path = strdup(path);
	/* Residents' addresses and medical notes: created 0640 whatever the
	 * umask; SQLite gives the -wal and -shm files the database's mode. */
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd >= 0) {
		if (fchmod(fd, 0640) < 0)
			log_warning("database %s: cannot set mode 0640: %s", path, strerror(errno));
		close(fd);
	} else if (errno != EEXIST) {
		log_error("cannot create database %s: %s", path, strerror(errno));
		return -EIO;
	}
	int rc = sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open database %s: %s", path,
		          st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		return -EIO;
	}
	/* Never block the loop for long on a lock held by a backup or a reader. */
	sqlite3_busy_timeout(st->db, 100);
	sqlite3_stmt *s;
	const char *mode = NULL;
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode=WAL", -1, &s, NULL) == SQLITE_OK) {
		if (sqlite3_step(s) == SQLITE_ROW)
			mode = (const char *)sqlite3_column_text(s, 0);
		if (!mode || strcmp(mode, "wal")) {
			log_error("database %s: cannot switch to WAL journal mode: %s", path,
			          mode ? mode : sqlite3_errmsg(st->db));
			sqlite3_finalize(s);
			return -EIO;
		}
		sqlite3_finalize(s);
	}
	/* SPEC 2.2: "stored" means committed with synchronous=FULL. */
	if (exec(st, "PRAGMA synchronous=FULL") < 0 || migrate(st) < 0) {
		log_error("database %s: %s", path, st->error);
		return -EIO;
	}
	for (int i = 0; i < ST__WRITE_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, write_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                       &st->write[i], NULL) != SQLITE_OK) {
			log_error("database %s: %s", path, sqlite3_errmsg(st->db));
			return -EIO;
		}
	}
	rc = sd_event_add_defer(m->event, &st->defer, on_defer, m);
	if (rc < 0)
		return rc;
	sd_event_source_set_priority(st->defer, SD_EVENT_PRIORITY_IDLE);
	sd_event_source_set_enabled(st->defer, SD_EVENT_OFF);
	rc = sd_event_add_time(m->event, &st->retry, CLOCK_MONOTONIC, 0, 0,
	                                on_retry, m);
	if (rc < 0)
		return rc;
	sd_event_source_set_enabled(st->retry, SD_EVENT_OFF);
	return 0;
}

void store_close(struct manager *m)
{
	struct store *st = m->store;
	if (!st)
		return;
	if (st->db && (st->n_ops || st->n_afters) && store_flush(m) < 0)
		log_error("exiting with %zu writes not on disk: %s", st->n_ops, st->error);
	/* Whoever still waits is told it did not happen (and frees its data). */
	for (size_t i = 0; i < st->n_afters; i++)
		st->afters[i].fn(m, st->afters[i].data, false, "telecared is stopping");
	st->n_afters = 0;
	for (size_t i = 0; i < st->n_ops; i++)
		op_free(st->ops[i]);
	free(st->ops);
	free(st->afters);
	for (int i = 0; i < ST__WRITE_COUNT; i++)
		sqlite3_finalize(st->write[i]);
	const char *key;
	void *v;
	for (size_t it = 0; map_next(&st->reads, &it, &key, &v);)
		sqlite3_finalize(v);
	map_free(&st->reads);
	sqlite3_close(st->reader);   /* its cursors are closed by their commands first */
	sqlite3_close(st->db);
	sd_event_source_unref(st->defer);
	sd_event_source_unref(st->retry);
	free(st->path);
	free(st);
	m->store = NULL;
}

static void arm(struct manager *m)
{
	struct store *st = m->store;
	if (!st->failed)
		sd_event_source_set_enabled(st->defer, SD_EVENT_ONESHOT);
}

static void refuse(struct store *st, uint64_t seq, const char *error)
{
	struct refusal *r = &st->refused[st->n_refused++ % REFUSALS_KEPT];
	r->seq = seq;
	snprintf(r->error, sizeof(r->error), "%s", error);
}

uint64_t store_mark(const struct manager *m)
{
	return m->store->next_seq;
}

int store_write(struct manager *m, enum store_stmt stmt, const char *fmt, ...)
{
	struct store *st = m->store;
	uint64_t seq = st->next_seq++;
	struct op *op = calloc(1, sizeof(*op));
	if (!op) {
		log_error("out of memory queueing a database write");
		refuse(st, seq, "out of memory");
		return -1;
	}
	op->seq = seq;
	op->stmt = stmt;
	/* One letter per placeholder: a mismatch is a programming error. */
	assert(strlen(fmt) == (size_t)sqlite3_bind_parameter_count(st->write[stmt]));
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt && op->n < MAX_ARGS; fmt++) {
		struct val *v = &op->v[op->n++];
		switch (*fmt) {
		case 'i':
			v->type = 'i';
			v->i = va_arg(ap, int64_t);
			break;
		case 'n':
		case 't':
			v->i = va_arg(ap, int64_t);
			v->type = (*fmt == 'n' ? v->i < 0 : v->i == 0) ? 'z' : 'i';
			break;
		case 'd':
			v->d = va_arg(ap, double);
			v->type = isnan(v->d) ? 'z' : 'd';
			break;
		case 's': {
			const char *s = va_arg(ap, const char *);
			v->type = s ? 's' : 'z';
			if (s)
				v->p = strdup(s);
			break;
		}
		case 'j': {
			json_t *j = va_arg(ap, json_t *);
			v->type = j ? 's' : 'z';
			if (j)
				v->p = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10));
			break;
		}
		case 'b':
		case 'x': {
			const void *p = va_arg(ap, const void *);
			v->n = va_arg(ap, size_t);
			v->type = *fmt;
			v->p = malloc(v->n ? v->n : 1);
			if (v->p && v->n)
				memcpy(v->p, p, v->n);
			break;
		}
		}
		if ((v->type == 's' || v->type == 'b' || v->type == 'x') && !v->p)
			v->type = 'z';  /* out of memory: better a NULL than nothing */
	}
	va_end(ap);
	if (st->n_ops == st->cap_ops) {
		size_t ncap = st->cap_ops ? st->cap_ops * 2 : 256;
		struct op **n = realloc(st->ops, ncap * sizeof(*n));
		if (!n) {
			log_error("out of memory queueing a database write");
			op_free(op);
			refuse(st, seq, "out of memory");
			return -1;
		}
		st->ops = n;
		st->cap_ops = ncap;
	}
	if (!st->n_ops)
		st->first_queued_ms = tc_now_ms();
	st->ops[st->n_ops++] = op;
	arm(m);
	return 0;
}

void store_after_commit(struct manager *m, uint64_t since, store_done_fn fn, void *data)
{
	struct store *st = m->store;
	if (st->n_afters == st->cap_afters) {
		size_t ncap = st->cap_afters ? st->cap_afters * 2 : 256;
		struct after *n = realloc(st->afters, ncap * sizeof(*n));
		if (!n) {
			/* Cannot wait for the commit: never promise what may not be
			 * on disk. A device resends; a client hears why. */
			log_error("out of memory queueing a reply for after the commit");
			fn(m, data, false, "out of memory");
			return;
		}
		st->afters = n;
		st->cap_afters = ncap;
	}
	st->afters[st->n_afters++] = (struct after){ fn, data, since, st->next_seq };
	arm(m);
}

static int bind_op(sqlite3_stmt *s, const struct op *op)
{
	int rc = SQLITE_OK;
	for (int i = 0; i < op->n && rc == SQLITE_OK; i++) {
		const struct val *v = &op->v[i];
		switch (v->type) {
		case 'i': rc = sqlite3_bind_int64(s, i + 1, v->i); break;
		case 'd': rc = sqlite3_bind_double(s, i + 1, v->d); break;
		case 's': rc = sqlite3_bind_text(s, i + 1, v->p, -1, SQLITE_STATIC); break;
		case 'b': rc = sqlite3_bind_blob(s, i + 1, v->p, (int)v->n, SQLITE_STATIC); break;
		case 'x': rc = sqlite3_bind_text(s, i + 1, v->p, (int)v->n, SQLITE_STATIC); break;
		default: rc = sqlite3_bind_null(s, i + 1); break;
		}
	}
	return rc;
}

static void fail(struct manager *m, const char *what)
{
	struct store *st = m->store;
	if (!st->failed)
		log_error("database %s: %s failed: %s; %zu writes kept in memory, retrying every %d ms",
		          st->path, what, sqlite3_errmsg(st->db), st->n_ops, RETRY_MS);
	snprintf(st->error, sizeof(st->error), "%s: %s", what, sqlite3_errmsg(st->db));
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	bool was_failed = st->failed;
	st->failed = true;
	sd_event_source_set_enabled(st->defer, SD_EVENT_OFF);
	sd_event_source_set_time_relative(st->retry, RETRY_MS * 1000ULL);
	sd_event_source_set_enabled(st->retry, SD_EVENT_ONESHOT);
	if (!was_failed)
		supervise_storage(m, false, st->error);
	manager_status(m);
}

/* The refusal of a write in [since, upto), if any. */
static const char *refusal_in(const struct store *st, uint64_t since, uint64_t upto)
{
	size_t n = st->n_refused < REFUSALS_KEPT ? st->n_refused : REFUSALS_KEPT;
	for (size_t i = 0; i < n; i++)
		if (st->refused[i].seq >= since && st->refused[i].seq < upto)
			return st->refused[i].error;
	return NULL;
}

/* Every write queued so far is committed (or refused): tell whoever waited,
 * in the order they asked. Callbacks may queue more writes and replies. */
static void run_afters(struct manager *m)
{
	struct store *st = m->store;
	struct after *afters = st->afters;
	size_t n = st->n_afters;
	st->afters = NULL;
	st->n_afters = st->cap_afters = 0;
	for (size_t i = 0; i < n; i++) {
		const char *why = refusal_in(st, afters[i].since, afters[i].upto);
		afters[i].fn(m, afters[i].data, why == NULL, why);
	}
	free(afters);
}

int store_flush(struct manager *m)
{
	struct store *st = m->store;
	sd_event_source_set_enabled(st->defer, SD_EVENT_OFF);
	if (st->n_ops) {
		if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
			fail(m, "begin");
			return -1;
		}
		for (size_t i = 0; i < st->n_ops; i++) {
			struct op *op = st->ops[i];
			if (op->stmt == ST__WRITE_COUNT)
				continue;   /* refused in an earlier try of this batch */
			sqlite3_stmt *s = st->write[op->stmt];
			int rc = bind_op(s, op);
			if (rc == SQLITE_OK)
				rc = sqlite3_step(s);
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			if (rc == SQLITE_DONE || rc == SQLITE_OK)
				continue;
			/* A write the schema refuses will be refused forever: log it and
			 * go on, rather than let it block every later write. */
			int primary = rc & 0xff;
			if (primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH ||
			    primary == SQLITE_TOOBIG || primary == SQLITE_RANGE) {
				log_error("database: write %d refused and dropped: %s", op->stmt,
				          sqlite3_errmsg(st->db));
				refuse(st, op->seq, sqlite3_errmsg(st->db));
				if (sqlite3_get_autocommit(st->db)) {
					/* RAISE(ROLLBACK) in a trigger ends the whole
					 * transaction: run the batch again without it. */
					op->stmt = ST__WRITE_COUNT;
					fail(m, "write");
					return -1;
				}
				continue;
			}
			fail(m, "write");
			return -1;
		}
		if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			fail(m, "commit");
			return -1;
		}
		for (size_t i = 0; i < st->n_ops; i++)
			op_free(st->ops[i]);
		st->n_ops = 0;
	}
	if (st->failed) {
		log_notice("database %s: writes succeed again", st->path);
		st->failed = false;
		st->error[0] = '\0';
		supervise_storage(m, true, NULL);
		manager_status(m);
	}
	run_afters(m);
	return 0;
}

void store_maybe_flush(struct manager *m)
{
	struct store *st = m->store;
	if (st->failed || !st->n_ops)
		return;
	if (st->n_ops >= BATCH_MAX || tc_now_ms() - st->first_queued_ms >= BATCH_AGE_MS)
		store_flush(m);
}

size_t store_pending(const struct manager *m)
{
	return m->store->n_ops;
}

bool store_ok(const struct manager *m, const char **error)
{
	if (error)
		*error = m->store->failed ? m->store->error : NULL;
	return !m->store->failed;
}

sqlite3_stmt *store_query(struct manager *m, const char *sql)
{
	struct store *st = m->store;
	sqlite3_stmt *s = map_get(&st->reads, sql);
	if (s) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return s;
	}
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		log_error("database: cannot prepare a query: %s", sqlite3_errmsg(st->db));
		return NULL;
	}
	if (map_put(&st->reads, sql, s) < 0) {
		sqlite3_finalize(s);
		return NULL;
	}
	return s;
}

int store_event_lookup(struct manager *m, const char *device, const char *id_key, int64_t *alarm)
{
	sqlite3_stmt *s = store_query(m, "SELECT alarm_id FROM events WHERE device_id = ? AND eid = ?");
	if (!s)
		return -1;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, id_key, -1, SQLITE_STATIC);
	int rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*alarm = sqlite3_column_type(s, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 0);
		sqlite3_reset(s);
		return 1;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Long reads (a report over a year, 10,000 events) step a few thousand rows
 * per loop pass. They hold their own read snapshot on this connection across
 * passes, never a statement of the writer's, which commits in between. */
sqlite3 *store_reader(struct manager *m)
{
	struct store *st = m->store;
	if (st->reader)
		return st->reader;
	int rc = sqlite3_open_v2(st->path, &st->reader, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
	                         NULL);
	if (rc != SQLITE_OK) {
		log_error("database %s: cannot open a reading connection: %s", st->path,
		          st->reader ? sqlite3_errmsg(st->reader) : sqlite3_errstr(rc));
		sqlite3_close(st->reader);
		st->reader = NULL;
		return NULL;
	}
	sqlite3_busy_timeout(st->reader, 100);
	return st->reader;
}

const char *store_errmsg(struct manager *m)
{
	return sqlite3_errmsg(m->store->db);
}

const char *store_path(const struct manager *m)
{
	return m->store->path;
}

/* telecared --check-db: what an operator runs on a file telecared refused. */
int store_check(const char *path, FILE *out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *s = NULL;
	int bad = 0, rows = 0;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		fprintf(out, "%s: cannot open: %s\n", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return 1;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check(100)", -1, &s, NULL);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(s)) != SQLITE_ROW)
			break;
		const char *t = (const char *)sqlite3_column_text(s, 0);
		if (t && strcmp(t, "ok")) {
			fprintf(out, "%s: %s\n", path, t);
			bad = 1;
		}
		rows++;
	}
	if (rc != SQLITE_DONE) {
		fprintf(out, "%s: integrity check failed: %s\n", path, sqlite3_errmsg(db));
		bad = 1;
	}
	sqlite3_finalize(s);
	if (!bad) {
		int version = -1;
		if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
		    sqlite3_step(s) == SQLITE_ROW)
			version = sqlite3_column_int(s, 0);
		sqlite3_finalize(s);
		if (version > SCHEMA_VERSION) {
			fprintf(out, "%s: schema version %d is newer than this telecared knows (%d)\n",
			        path, version, SCHEMA_VERSION);
			bad = 1;
		} else {
			fprintf(out, "%s: ok (schema version %d)\n", path, version);
		}
	} else {
		fprintf(out, "%s: damaged. Restore the latest backup (telecarectl backup FILE makes "
		        "one) over it while telecared is stopped.\n", path);
	}
	(void)rows;
	sqlite3_close(db);
	return bad;
}
