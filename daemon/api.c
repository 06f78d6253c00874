/* The commands of the control protocol (docs/CONTROL.md). Each takes the
 * request's args and returns {"ok": true, "data": ...} or {"ok": false,
 * "error": "..."}; errors say what was wrong and with which id. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define FIELD_MAX 1024     /* longest free-text field of a resident or device */
#define LIST_MAX  10000

static json_t *ok(json_t *data)
{
	return json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_null());
}

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* An id argument (SPEC 1 syntax). NULL with *err set when missing or bad. */
static const char *arg_id(json_t *args, const char *key, const char *what, json_t **err)
{
	json_t *v = json_object_get(args, key);
	if (!json_is_string(v)) {
		*err = fail("missing %s id (\"%s\")", what, key);
		return NULL;
	}
	if (!tc_device_id_valid(json_string_value(v), json_string_length(v))) {
		char clean[80];
		*err = fail("invalid %s id \"%s\": 1-64 of [A-Za-z0-9._-]", what,
		            tc_sanitize(json_string_value(v), json_string_length(v), clean, sizeof(clean)));
		return NULL;
	}
	return json_string_value(v);
}

/* An optional text argument: NULL when absent; *err set when not a string
 * or too long. */
static const char *arg_text(json_t *args, const char *key, json_t **err)
{
	json_t *v = json_object_get(args, key);
	if (!v || json_is_null(v))
		return NULL;
	if (!json_is_string(v) || json_string_length(v) > FIELD_MAX ||
	    memchr(json_string_value(v), '\0', json_string_length(v))) {
		*err = fail("\"%s\" must be text of at most %d bytes", key, FIELD_MAX);
		return NULL;
	}
	return json_string_value(v);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries of a map, sorted by key: for stable listings. */
static json_t *sorted_list(struct map *map, json_t *(*to_json)(const void *))
{
	const char **keys = calloc(map->len + 1, sizeof(*keys));
	json_t *list = json_array();
	if (!keys)
		return list;
	size_t n = 0;
	const char *k;
	for (size_t it = 0; map_next(map, &it, &k, NULL);)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, to_json(map_get(map, keys[i])));
	free(keys);
	return list;
}

static json_t *resident_to_json(const void *r) { return resident_json(r); }
static json_t *device_to_json(const void *d) { return device_json(d); }

json_t *event_row_json(sqlite3_stmt *s)
{
	json_t *payload = json_loads((const char *)sqlite3_column_text(s, 7), 0, NULL);
	json_t *id = json_loads((const char *)sqlite3_column_text(s, 2), JSON_DECODE_ANY, NULL);
	return json_pack("{s:I, s:s, s:o, s:s, s:o, s:o, s:b, s:o}",
	                 "seq", (json_int_t)sqlite3_column_int64(s, 0),
	                 "device", (const char *)sqlite3_column_text(s, 1),
	                 "id", id ? id : json_null(), "type", (const char *)sqlite3_column_text(s, 3),
	                 "received_at", json_time_or_null(sqlite3_column_int64(s, 4)),
	                 "alarm", sqlite3_column_type(s, 5) == SQLITE_NULL
	                          ? json_null() : json_integer(sqlite3_column_int64(s, 5)),
	                 "known", sqlite3_column_int(s, 6),
	                 "payload", payload ? payload : json_null());
}

#define EVENT_COLUMNS "seq, device_id, eid, type, received_at, alarm_id, known, payload"

/* Rows of an events query, oldest first (queries select newest first). */
static json_t *event_rows(sqlite3_stmt *s)
{
	json_t *list = json_array();
	while (sqlite3_step(s) == SQLITE_ROW)
		json_array_insert_new(list, 0, event_row_json(s));
	sqlite3_reset(s);
	return list;
}

/* ---- status ---- */

static json_t *cmd_status(struct manager *m, json_t *args)
{
	(void)args;
	const char *err;
	bool sok = store_ok(m, &err);
	int64_t now = tc_now_ms();
	return ok(json_pack(
		"{s:s, s:i, s:o, s:I, s:{s:b, s:s, s:i, s:s}, s:{s:s, s:b, s:I, s:o},"
		" s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o, s:o}",
		"version", TELECARE_VERSION, "pid", (int)getpid(),
		"started_at", json_time_or_null(m->started_at),
		"uptime_s", (json_int_t)((now - m->started_at) / 1000),
		"mqtt", "connected", m->mqtt_connected, "host", m->cfg->mqtt.host,
		"port", m->cfg->mqtt.port, "client_id", m->cfg->mqtt.client_id,
		"store", "path", m->cfg->store_path, "ok", sok, "pending", (json_int_t)store_pending(m),
		"error", json_str_or_null(err),
		"counts", "events_received", (json_int_t)m->count.received,
		"events_stored", (json_int_t)m->count.stored,
		"events_duplicate", (json_int_t)m->count.duplicate,
		"events_rejected", (json_int_t)m->count.rejected,
		"events_flood_dropped", (json_int_t)m->count.flood_dropped,
		"receipts_shed", (json_int_t)m->count.receipts_shed,
		"alarms_open", (json_int_t)m->alarms.len, "devices", (json_int_t)m->devices.len,
		"residents", (json_int_t)m->residents.len, "outbox", outbox_status(m),
		"loop", manager_loop_json(m), "dc09", dc09_status(m)));
}

/* ---- residents ---- */

static json_t *cmd_resident_add(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "resident", &err);
	const char *name = arg_text(args, "name", &err), *address = arg_text(args, "address", &err),
	           *phone = arg_text(args, "phone", &err), *team = arg_text(args, "team", &err),
	           *notes = arg_text(args, "notes", &err);
	if (err)
		return err;
	if (!name || !*name)
		return fail("resident %s: a name is required", id);
	if (team && !tc_device_id_valid(team, strlen(team)))
		return fail("resident %s: invalid team \"%s\": 1-64 of [A-Za-z0-9._-]", id, team);
	if (resident_get(m, id))
		return fail("resident %s already exists", id);
	struct resident *r = calloc(1, sizeof(*r));
	if (!r)
		return fail("out of memory");
	r->id = strdup(id);
	r->name = strdup(name);
	r->address = dup_or_null(address);
	r->phone = dup_or_null(phone);
	r->team = dup_or_null(team);
	r->notes = dup_or_null(notes);
	r->created_at = tc_now_ms();
	if (resident_add(m, r) < 0)
		return fail("out of memory");
	log_info("resident %s added", id);
	return ok(resident_json(r));
}

static json_t *cmd_resident_list(struct manager *m, json_t *args)
{
	(void)args;
	return ok(sorted_list(&m->residents, resident_to_json));
}

static json_t *cmd_resident_show(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "resident", &err);
	if (err)
		return err;
	struct resident *r = resident_get(m, id);
	if (!r)
		return fail("resident %s does not exist", id);
	json_t *j = resident_json(r), *devs = json_array(), *alarms = json_array();
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		if (d->resident_id && strcmp(d->resident_id, id) == 0)
			json_array_append_new(devs, json_string(d->id));
	}
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->resident_id && strcmp(a->resident_id, id) == 0)
			json_array_append_new(alarms, alarm_json(m, a));
	}
	json_object_set_new(j, "devices", devs);
	json_object_set_new(j, "alarms", alarms);
	return ok(j);
}

static json_t *cmd_resident_remove(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "resident", &err);
	if (err)
		return err;
	if (!resident_get(m, id))
		return fail("resident %s does not exist", id);
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		if (d->resident_id && strcmp(d->resident_id, id) == 0)
			return fail("resident %s still has device %s; remove or move its devices first",
			            id, d->id);
	}
	resident_remove(m, id);
	log_info("resident %s removed", id);
	return ok(NULL);
}

/* ---- devices ---- */

/* Everything device.add checks, for add and for each row of an import.
 * 0, or -1 with the reason in msg. */
static int check_device_args(struct manager *m, json_t *args, char *msg, size_t len)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "device", &err);
	const char *rid = err ? NULL : arg_id(args, "resident", "resident", &err);
	const char *kind = err ? NULL : arg_text(args, "kind", &err);
	const char *source = err ? NULL : arg_text(args, "source", &err);
	const char *address = err ? NULL : arg_text(args, "address", &err);
	json_t *hb = json_object_get(args, "heartbeat_ms");
	struct device *taken = NULL;
	if (err) {
		snprintf(msg, len, "%s", json_string_value(json_object_get(err, "error")));
		json_decref(err);
		return -1;
	}
	if (hb && !json_is_null(hb) &&
	    (!json_is_integer(hb) || json_integer_value(hb) < 0 ||
	     json_integer_value(hb) > 366LL * 86400 * 1000))
		snprintf(msg, len, "device %s: heartbeat must be a duration from 0 to a year", id);
	else if (kind && strlen(kind) > 64)
		snprintf(msg, len, "device %s: kind must be at most 64 characters", id);
	else if (device_get(m, id))
		snprintf(msg, len, "device %s already exists", id);
	else if (!resident_get(m, rid))
		snprintf(msg, len, "resident %s does not exist; add it first (telecarectl resident add)", rid);
	else if (!source != !address)
		snprintf(msg, len, "device %s: --source and --address go together", id);
	else if (source && !source_get(m->cfg, source))
		snprintf(msg, len, "device %s: no [source %s] in the configuration", id, source);
	else if (address && (!*address || strlen(address) >= TC_ADDRESS_MAX))
		snprintf(msg, len, "device %s: address must be 1-%d bytes", id, TC_ADDRESS_MAX - 1);
	else if (source && (taken = device_by_address(m, source, address)))
		snprintf(msg, len, "device %s: address %s of source %s is already device %s", id, address,
		         source, taken->id);
	else
		return 0;
	return -1;
}

/* ChirpStack spells a DevEUI in lowercase hex: so must its address here. */
static void normalize_address(struct manager *m, json_t *args)
{
	const char *source = json_string_value(json_object_get(args, "source"));
	const char *address = json_string_value(json_object_get(args, "address"));
	const struct tc_source *src = source ? source_get(m->cfg, source) : NULL;
	if (!src || !address || src->format != TC_SRC_CHIRPSTACK)
		return;
	char *low = strdup(address);
	for (char *c = low; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	if (low)
		json_object_set_new(args, "address", json_string(low));
	free(low);
}

static json_t *cmd_device_add(struct manager *m, json_t *args)
{
	char msg[512];
	normalize_address(m, args);
	if (check_device_args(m, args, msg, sizeof(msg)) < 0)
		return fail("%s", msg);
	const char *id = json_string_value(json_object_get(args, "id"));
	const char *rid = json_string_value(json_object_get(args, "resident"));
	const char *kind = json_string_value(json_object_get(args, "kind"));
	const char *source = json_string_value(json_object_get(args, "source"));
	const char *address = json_string_value(json_object_get(args, "address"));
	json_t *hb = json_object_get(args, "heartbeat_ms");
	struct device *d = calloc(1, sizeof(*d));
	if (!d)
		return fail("out of memory");
	d->id = strdup(id);
	d->resident_id = strdup(rid);
	d->kind = dup_or_null(kind);
	d->source = dup_or_null(source);
	d->address = dup_or_null(address);
	d->heartbeat_ms = hb ? json_integer_value(hb) : 0;
	d->created_at = tc_now_ms();
	d->battery = -1;
	d->rssi = INT32_MIN;
	/* What it said before it was registered still tells when it was last seen. */
	sqlite3_stmt *s = store_query(m, "SELECT received_at, battery, rssi FROM events"
	                                 " WHERE device_id = ? ORDER BY seq DESC LIMIT 1");
	if (s) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		if (sqlite3_step(s) == SQLITE_ROW) {
			d->last_seen = sqlite3_column_int64(s, 0);
			if (sqlite3_column_type(s, 1) != SQLITE_NULL)
				d->battery = sqlite3_column_int(s, 1);
			if (sqlite3_column_type(s, 2) != SQLITE_NULL)
				d->rssi = sqlite3_column_int(s, 2);
		}
		sqlite3_reset(s);
	}
	if (device_add(m, d) < 0)
		return fail("out of memory");
	log_full(LOG_INFO, id, 0, NULL, "device %s added for resident %s", id, rid);
	return ok(device_json(d));
}

static json_t *cmd_device_list(struct manager *m, json_t *args)
{
	(void)args;
	return ok(sorted_list(&m->devices, device_to_json));
}

static json_t *cmd_device_show(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "device", &err);
	if (err)
		return err;
	struct device *d = device_get(m, id);
	if (!d)
		return fail("device %s is not registered (telecarectl device unknown lists what "
		            "unregistered devices sent)", id);
	json_t *j = device_json(d);
	sqlite3_stmt *s = store_query(m, "SELECT " EVENT_COLUMNS " FROM events WHERE device_id = ?"
	                                 " ORDER BY seq DESC LIMIT 10");
	if (s) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		json_object_set_new(j, "events", event_rows(s));
	}
	return ok(j);
}

static json_t *cmd_device_remove(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "device", &err);
	if (err)
		return err;
	if (!device_get(m, id))
		return fail("device %s is not registered", id);
	device_remove(m, id);
	log_full(LOG_INFO, id, 0, NULL, "device %s removed; its events stay", id);
	return ok(NULL);
}

static json_t *cmd_device_unknown(struct manager *m, json_t *args)
{
	(void)args;
	sqlite3_stmt *s = store_query(m,
		"SELECT device_id, count(*), min(received_at), max(received_at),"
		" (SELECT type FROM events l WHERE l.device_id = e.device_id ORDER BY seq DESC LIMIT 1)"
		" FROM events e WHERE known = 0 GROUP BY device_id ORDER BY max(received_at) DESC");
	if (!s)
		return fail("database query failed");
	json_t *list = json_array();
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *dev = (const char *)sqlite3_column_text(s, 0);
		if (device_get(m, dev))
			continue;  /* registered since */
		json_array_append_new(list, json_pack("{s:s, s:I, s:o, s:o, s:s}", "device", dev,
		                      "events", (json_int_t)sqlite3_column_int64(s, 1),
		                      "first_seen", json_time_or_null(sqlite3_column_int64(s, 2)),
		                      "last_seen", json_time_or_null(sqlite3_column_int64(s, 3)),
		                      "last_type", (const char *)sqlite3_column_text(s, 4)));
	}
	sqlite3_reset(s);
	return ok(list);
}

static json_t *cmd_device_test(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "device", &err);
	if (err)
		return err;
	struct device *d = device_get(m, id);
	if (!d)
		return fail("device %s is not registered", id);
	if (d->testing)
		return fail("device %s is already being tested", id);
	d->testing = true;   /* until its next alarm, or until this connection closes */
	log_full(LOG_INFO, id, 0, NULL, "device %s: on test, waiting for its next alarm", id);
	return ok(json_pack("{s:s, s:s, s:o}", "stage", "waiting", "device", id, "at",
	                    json_time_or_null(tc_now_ms())));
}

/* Register a device nobody had registered, keeping what it sent. */
static json_t *cmd_device_adopt(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "device", &err);
	if (err)
		return err;
	if (device_get(m, id))
		return fail("device %s is already registered", id);
	sqlite3_stmt *s = store_query(m, "SELECT 1 FROM events WHERE device_id = ? LIMIT 1");
	int known = 0;
	if (s) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		known = sqlite3_step(s) == SQLITE_ROW;
		sqlite3_reset(s);
	}
	if (!known)
		return fail("device %s has sent nothing; use device add", id);
	json_t *answer = cmd_device_add(m, args);
	if (!json_is_true(json_object_get(answer, "ok")))
		return answer;
	/* Its open alarms now know whom they are about. */
	struct device *d = device_get(m, id);
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (strcmp(a->device, id) || a->resident_id)
			continue;
		a->resident_id = strdup(d->resident_id);
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_ADOPT }, NULL, 0);
	}
	log_full(LOG_INFO, id, 0, NULL, "device %s adopted by resident %s", id, d->resident_id);
	return answer;
}

/* All or nothing: every row is checked before any is added. */
static json_t *cmd_device_import(struct manager *m, json_t *args)
{
	json_t *rows = json_object_get(args, "rows"), *row;
	if (!json_is_array(rows) || json_array_size(rows) == 0)
		return fail("\"rows\" must be a non-empty array of devices");
	if (json_array_size(rows) > 100000)
		return fail("at most 100000 devices in one import");
	char errors[2048] = "";
	size_t n_err = 0, i;
	struct map seen = { 0 };
	json_array_foreach(rows, i, row) {
		json_int_t line = json_integer_value(json_object_get(row, "line"));
		const char *id = json_string_value(json_object_get(row, "id"));
		const char *source = json_string_value(json_object_get(row, "source"));
		const char *address = json_string_value(json_object_get(row, "address"));
		char msg[512] = "", akey[TC_ADDRESS_MAX + 80] = "";
		normalize_address(m, row);
		address = json_string_value(json_object_get(row, "address"));
		if (source && address)
			snprintf(akey, sizeof(akey), "%s\n%s", source, address);
		if (check_device_args(m, row, msg, sizeof(msg)) == 0) {
			/* and against the rows before it */
			if (map_get(&seen, id))
				snprintf(msg, sizeof(msg), "device %s appears twice in the file", id);
			else if (*akey && map_get(&seen, akey))
				snprintf(msg, sizeof(msg), "address %s of source %s appears twice", address, source);
			map_put(&seen, id, (void *)1);
			if (*akey)
				map_put(&seen, akey, (void *)1);
		}
		if (*msg && n_err++ < 10) {
			size_t len = strlen(errors);
			snprintf(errors + len, sizeof(errors) - len, "%sline %lld: %s", len ? "; " : "",
			         (long long)line, msg);
		}
	}
	map_free(&seen);
	if (n_err)
		return fail("nothing imported: %zu bad line%s: %s%s", n_err, n_err == 1 ? "" : "s", errors,
		            n_err > 10 ? "; ..." : "");
	json_t *added = json_array();
	json_array_foreach(rows, i, row) {
		json_t *answer = cmd_device_add(m, row);
		json_array_append(added, json_object_get(json_object_get(answer, "data"), "id"));
		json_decref(answer);
	}
	log_info("device import: %zu devices added", json_array_size(added));
	return ok(json_pack("{s:I, s:o}", "added", (json_int_t)json_array_size(added), "devices", added));
}

/* What sources sent that became no event: per source and address. */
static json_t *cmd_source_unmapped(struct manager *m, json_t *args)
{
	(void)args;
	sqlite3_stmt *s = store_query(m,
		"SELECT source, address, count(*), min(received_at), max(received_at),"
		" (SELECT reason FROM unmapped l WHERE l.source = u.source AND l.address IS u.address"
		"  ORDER BY seq DESC LIMIT 1),"
		" (SELECT payload FROM unmapped l WHERE l.source = u.source AND l.address IS u.address"
		"  ORDER BY seq DESC LIMIT 1)"
		" FROM unmapped u GROUP BY source, address ORDER BY max(received_at) DESC LIMIT 1000");
	if (!s)
		return fail("database query failed");
	json_t *list = json_array();
	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *payload = (const char *)sqlite3_column_blob(s, 6);
		int plen = sqlite3_column_bytes(s, 6);
		json_t *pj = payload && tc_utf8_valid(payload, (size_t)plen)
		             ? json_stringn(payload, (size_t)plen) : json_null();
		json_array_append_new(list, json_pack("{s:s, s:o, s:I, s:o, s:o, s:s, s:o}",
		                      "source", (const char *)sqlite3_column_text(s, 0),
		                      "address", json_str_or_null((const char *)sqlite3_column_text(s, 1)),
		                      "messages", (json_int_t)sqlite3_column_int64(s, 2),
		                      "first_seen", json_time_or_null(sqlite3_column_int64(s, 3)),
		                      "last_seen", json_time_or_null(sqlite3_column_int64(s, 4)),
		                      "reason", (const char *)sqlite3_column_text(s, 5),
		                      "last_payload", pj ? pj : json_null()));
	}
	sqlite3_reset(s);
	return ok(list);
}

/* ---- alarms ---- */

static int cmp_alarm_desc(const void *a, const void *b)
{
	int64_t x = (*(struct alarm *const *)a)->id, y = (*(struct alarm *const *)b)->id;
	return x < y ? 1 : x > y ? -1 : 0;
}

static json_t *cmd_alarm_list(struct manager *m, json_t *args)
{
	json_t *list = json_array();
	if (json_is_true(json_object_get(args, "open"))) {
		struct alarm **v = calloc(m->alarms.len + 1, sizeof(*v));
		size_t n = 0;
		void *a;
		for (size_t it = 0; v && map_next(&m->alarms, &it, NULL, &a);)
			v[n++] = a;
		if (v)
			qsort(v, n, sizeof(*v), cmp_alarm_desc);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, alarm_json(m, v[i]));
		free(v);
		return ok(list);
	}
	json_t *lim = json_object_get(args, "limit");
	int64_t limit = json_is_integer(lim) ? json_integer_value(lim) : 100;
	if (limit < 1 || limit > LIST_MAX)
		return fail("limit must be 1-%d", LIST_MAX);
	sqlite3_stmt *s = store_query(m, "SELECT " ALARM_COLUMNS " FROM alarms ORDER BY id DESC LIMIT ?");
	if (!s)
		return fail("database query failed");
	sqlite3_bind_int64(s, 1, limit);
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct alarm *live = alarm_get(m, sqlite3_column_int64(s, 0));
		if (live) {
			json_array_append_new(list, alarm_json(m, live));
			continue;
		}
		struct alarm *a = alarm_from_row(s);
		if (a)
			json_array_append_new(list, alarm_json(m, a));
		alarm_free(a);
	}
	sqlite3_reset(s);
	return ok(list);
}

static json_t *cmd_alarm_show(struct manager *m, json_t *args)
{
	json_t *idj = json_object_get(args, "id");
	if (!json_is_integer(idj))
		return fail("missing alarm id (an integer)");
	int64_t id = json_integer_value(idj);
	json_t *j = NULL;
	struct alarm *live = alarm_get(m, id);
	if (live) {
		j = alarm_json(m, live);
	} else {
		sqlite3_stmt *s = store_query(m, "SELECT " ALARM_COLUMNS " FROM alarms WHERE id = ?");
		if (!s)
			return fail("database query failed");
		sqlite3_bind_int64(s, 1, id);
		if (sqlite3_step(s) == SQLITE_ROW) {
			struct alarm *a = alarm_from_row(s);
			if (a)
				j = alarm_json(m, a);
			alarm_free(a);
		}
		sqlite3_reset(s);
	}
	if (!j)
		return fail("alarm %lld does not exist", (long long)id);

	json_t *tl = json_array();
	sqlite3_stmt *s = store_query(m, "SELECT at, what, actor, detail FROM timeline"
	                                 " WHERE alarm_id = ? ORDER BY seq");
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		while (sqlite3_step(s) == SQLITE_ROW)
			json_array_append_new(tl, json_pack("{s:o, s:s, s:o, s:o}",
			                      "at", json_time_or_null(sqlite3_column_int64(s, 0)),
			                      "what", (const char *)sqlite3_column_text(s, 1),
			                      "actor", json_str_or_null((const char *)sqlite3_column_text(s, 2)),
			                      "detail", json_str_or_null((const char *)sqlite3_column_text(s, 3))));
		sqlite3_reset(s);
	}
	json_object_set_new(j, "timeline", tl);
	s = store_query(m, "SELECT " EVENT_COLUMNS " FROM events WHERE alarm_id = ?"
	                   " ORDER BY seq DESC LIMIT 1000");
	if (s) {
		sqlite3_bind_int64(s, 1, id);
		json_object_set_new(j, "events", event_rows(s));
	}
	return ok(j);
}

/* ---- events ---- */

static json_t *cmd_events(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *dev = json_object_get(args, "device") ? arg_id(args, "device", "device", &err) : NULL;
	if (err)
		return err;
	json_t *lim = json_object_get(args, "limit");
	int64_t limit = json_is_integer(lim) ? json_integer_value(lim) : 20;
	if (lim && !json_is_integer(lim))
		return fail("limit must be an integer");
	if (limit < 0 || limit > LIST_MAX)
		return fail("limit must be 0-%d", LIST_MAX);
	sqlite3_stmt *s = dev
		? store_query(m, "SELECT " EVENT_COLUMNS " FROM events WHERE device_id = ?"
		                 " ORDER BY seq DESC LIMIT ?")
		: store_query(m, "SELECT " EVENT_COLUMNS " FROM events ORDER BY seq DESC LIMIT ?");
	if (!s)
		return fail("database query failed");
	int i = 1;
	if (dev)
		sqlite3_bind_text(s, i++, dev, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, i, limit);
	return ok(event_rows(s));
}

/* ---- workers, shifts, who is on call ---- */

static json_t *worker_to_json(const void *w) { return worker_json(w); }

static json_t *cmd_worker_add(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "worker", &err);
	const char *name = arg_text(args, "name", &err), *team = arg_text(args, "team", &err),
	           *phone = arg_text(args, "phone", &err), *webhook = arg_text(args, "webhook", &err);
	if (err)
		return err;
	if (!name || !*name)
		return fail("worker %s: a name is required", id);
	for (const char *t = team; t;) {
		const char *end = strchr(t, ',');
		size_t len = end ? (size_t)(end - t) : strlen(t);
		if (!tc_device_id_valid(t, len)) {
			char clean[80];
			return fail("worker %s: invalid team \"%s\" in \"%s\": comma-separated names of "
			            "1-64 [A-Za-z0-9._-]", id, tc_sanitize(t, len, clean, sizeof(clean)), team);
		}
		t = end ? end + 1 : NULL;
	}
	if (webhook && strncmp(webhook, "http://", 7) && strncmp(webhook, "https://", 8))
		return fail("worker %s: webhook must be an http:// or https:// URL", id);
	if (worker_get(m, id))
		return fail("worker %s already exists", id);
	struct worker *w = calloc(1, sizeof(*w));
	if (!w)
		return fail("out of memory");
	w->id = strdup(id);
	w->name = strdup(name);
	w->team = dup_or_null(team);
	w->phone = dup_or_null(phone);
	w->webhook = dup_or_null(webhook);
	w->created_at = tc_now_ms();
	if (worker_add(m, w) < 0)
		return fail("out of memory");
	log_full(LOG_INFO, NULL, 0, id, "worker %s added", id);
	return ok(worker_json(w));
}

static json_t *cmd_worker_list(struct manager *m, json_t *args)
{
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

static json_t *cmd_worker_show(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "worker", &err);
	if (err)
		return err;
	struct worker *w = worker_get(m, id);
	if (!w)
		return fail("worker %s is not registered", id);
	json_t *j = worker_json(w);
	json_object_set_new(j, "shifts", shifts_of(m, id, 0));
	json_object_set_new(j, "on_duty", json_boolean(worker_on_duty(m, id, tc_now_ms())));
	return ok(j);
}

static json_t *cmd_worker_remove(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *id = arg_id(args, "id", "worker", &err);
	if (err)
		return err;
	if (!worker_get(m, id))
		return fail("worker %s is not registered", id);
	worker_remove(m, id);
	log_full(LOG_INFO, NULL, 0, id, "worker %s removed with their shifts", id);
	return ok(NULL);
}

/* An optional RFC 3339 time argument; def when absent. -1 with *err when bad. */
static int64_t arg_time(json_t *args, const char *key, int64_t def, json_t **err)
{
	json_t *v = json_object_get(args, key);
	int64_t t;
	if (!v || json_is_null(v))
		return def;
	if (!json_is_string(v) || tc_time_parse(json_string_value(v), &t) < 0) {
		*err = fail("\"%s\" must be an RFC 3339 time, e.g. 2026-11-22T10:15:00Z", key);
		return -1;
	}
	return t;
}

static json_t *cmd_shift_add(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	const char *wid = arg_id(args, "worker", "worker", &err);
	if (err)
		return err;
	if (!worker_get(m, wid))
		return fail("worker %s is not registered", wid);
	struct shift sh = { 0 };
	const char *days = json_string_value(json_object_get(args, "days"));
	const char *hours = json_string_value(json_object_get(args, "hours"));
	if (json_is_true(json_object_get(args, "always"))) {
		sh.kind = SHIFT_ALWAYS;
	} else if (days || hours) {
		sh.kind = SHIFT_WEEKLY;
		if (!days || shift_parse_days(days, &sh.days) < 0)
			return fail("days must be like mon-fri, sat,sun, daily, weekdays or weekends");
		if (!hours || shift_parse_hours(hours, &sh.start_min, &sh.end_min) < 0)
			return fail("hours must be HH:MM-HH:MM, e.g. 08:00-16:00 or 22:00-06:00");
	} else if (json_object_get(args, "from") || json_object_get(args, "to")) {
		sh.kind = SHIFT_ONCE;
		sh.from = arg_time(args, "from", -1, &err);
		sh.to = arg_time(args, "to", -1, &err);
		if (err)
			return err;
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
	log_full(LOG_INFO, NULL, 0, wid, "shift %lld added for worker %s", (long long)n->id, wid);
	return ok(shift_json(n));
}

static json_t *cmd_shift_list(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	int64_t at = arg_time(args, "at", 0, &err);
	if (err)
		return err;
	return ok(shifts_of(m, NULL, at));
}

static json_t *cmd_shift_remove(struct manager *m, json_t *args)
{
	json_t *id = json_object_get(args, "id");
	if (!json_is_integer(id))
		return fail("missing shift id (an integer)");
	if (shift_remove(m, json_integer_value(id)) < 0)
		return fail("shift %lld does not exist", (long long)json_integer_value(id));
	return ok(NULL);
}

static json_t *cmd_oncall(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	int64_t at = arg_time(args, "at", tc_now_ms(), &err);
	const char *team = json_object_get(args, "team") ? arg_id(args, "team", "team", &err) : NULL;
	if (err)
		return err;
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

/* ---- alarm actions (as a worker) ---- */

static json_t *alarm_action(struct manager *m, json_t *args, const char *action)
{
	json_t *err = NULL, *idj = json_object_get(args, "id");
	const char *as = arg_id(args, "as", "worker", &err);
	const char *outcome = arg_text(args, "outcome", &err), *note = arg_text(args, "note", &err);
	if (err)
		return err;
	if (!json_is_integer(idj))
		return fail("missing alarm id (an integer)");
	char msg[1200];
	struct actor who = { .kind = ACTOR_UNIX, .role = ROLE_ADMIN };
	if (action_apply(m, &who, as, json_integer_value(idj), action, outcome, note, msg,
	                 sizeof(msg)) < 0)
		return fail("%s", msg);
	struct alarm *a = alarm_get(m, json_integer_value(idj));
	if (a)
		return ok(alarm_json(m, a));
	/* Resolved: it left memory; answer from the store once it is written. */
	store_flush(m);
	json_t *show = json_pack("{s:O}", "id", idj), *res = cmd_alarm_show(m, show);
	json_decref(show);
	return res;
}

static json_t *cmd_alarm_ack(struct manager *m, json_t *args) { return alarm_action(m, args, "ack"); }
static json_t *cmd_alarm_resolve(struct manager *m, json_t *args) { return alarm_action(m, args, "resolve"); }
static json_t *cmd_alarm_note(struct manager *m, json_t *args) { return alarm_action(m, args, "note"); }

/* ---- report ---- */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static json_t *cmd_report(struct manager *m, json_t *args)
{
	json_t *err = NULL;
	int64_t to = arg_time(args, "to", tc_now_ms(), &err);
	int64_t from = arg_time(args, "from", to - 30LL * 86400 * 1000, &err);
	if (err)
		return err;
	if (to <= from)
		return fail("\"to\" must be after \"from\"");
	sqlite3_stmt *s = store_query(m, "SELECT priority, opened_at, first_ack_at FROM alarms"
	                                 " WHERE test = 0 AND opened_at >= ? AND opened_at < ?"
	                                 " ORDER BY priority");
	if (!s)
		return fail("database query failed");
	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, to);
	json_t *rows = json_array();
	int64_t *delays = NULL;
	size_t n = 0, cap = 0, count = 0, in60 = 0, in180 = 0;
	int prio = -1;
	for (int rc = sqlite3_step(s);; rc = sqlite3_step(s)) {
		int p = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : -2;
		if (p != prio && prio >= 0) {
			/* SPEC 6: share acknowledged within 60 s and 180 s, median and p90 */
			qsort(delays, n, sizeof(*delays), cmp_i64);
			json_t *median = json_null(), *p90 = json_null();
			if (n) {
				double med = n % 2 ? (double)delays[n / 2]
				                   : ((double)delays[n / 2 - 1] + (double)delays[n / 2]) / 2;
				size_t k = (size_t)((n * 9 + 9) / 10);  /* nearest rank: ceil(0.9 n) */
				median = json_real(med / 1000.0);
				p90 = json_real((double)delays[k - 1] / 1000.0);
			}
			json_array_append_new(rows, json_pack("{s:i, s:I, s:I, s:f, s:f, s:o, s:o}",
			                      "priority", prio, "alarms", (json_int_t)count,
			                      "acknowledged", (json_int_t)n,
			                      "within_60s", (double)in60 / (double)count,
			                      "within_180s", (double)in180 / (double)count,
			                      "median_ack_s", median, "p90_ack_s", p90));
			n = count = in60 = in180 = 0;
		}
		if (rc != SQLITE_ROW)
			break;
		prio = p;
		count++;
		if (sqlite3_column_type(s, 2) == SQLITE_NULL)
			continue;
		int64_t d = sqlite3_column_int64(s, 2) - sqlite3_column_int64(s, 1);
		in60 += d <= 60000;
		in180 += d <= 180000;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			int64_t *nd = realloc(delays, cap * sizeof(*nd));
			if (!nd)
				break;
			delays = nd;
		}
		delays[n++] = d;
	}
	sqlite3_reset(s);
	free(delays);
	return ok(json_pack("{s:o, s:o, s:o}", "from", json_time_or_null(from), "to",
	                    json_time_or_null(to), "priorities", rows));
}

static const struct {
	const char *name;
	json_t *(*fn)(struct manager *, json_t *);
} commands[] = {
	{ "status", cmd_status },
	{ "resident.add", cmd_resident_add },
	{ "resident.list", cmd_resident_list },
	{ "resident.show", cmd_resident_show },
	{ "resident.remove", cmd_resident_remove },
	{ "device.add", cmd_device_add },
	{ "device.list", cmd_device_list },
	{ "device.show", cmd_device_show },
	{ "device.remove", cmd_device_remove },
	{ "device.unknown", cmd_device_unknown },
	{ "device.test", cmd_device_test },
	{ "device.adopt", cmd_device_adopt },
	{ "device.import", cmd_device_import },
	{ "source.unmapped", cmd_source_unmapped },
	{ "alarm.list", cmd_alarm_list },
	{ "alarm.show", cmd_alarm_show },
	{ "events", cmd_events },
	{ "worker.add", cmd_worker_add },
	{ "worker.list", cmd_worker_list },
	{ "worker.show", cmd_worker_show },
	{ "worker.remove", cmd_worker_remove },
	{ "shift.add", cmd_shift_add },
	{ "shift.list", cmd_shift_list },
	{ "shift.remove", cmd_shift_remove },
	{ "oncall", cmd_oncall },
	{ "alarm.ack", cmd_alarm_ack },
	{ "alarm.resolve", cmd_alarm_resolve },
	{ "alarm.note", cmd_alarm_note },
	{ "report", cmd_report },
};

json_t *api_dispatch(struct manager *m, json_t *request)
{
	const char *cmd = json_string_value(json_object_get(request, "cmd"));
	json_t *args = json_object_get(request, "args");
	if (!cmd)
		return fail("missing \"cmd\"");
	if (args && !json_is_object(args))
		return fail("\"args\" must be an object");
	json_t *empty = args ? NULL : json_object();
	for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
		if (strcmp(commands[i].name, cmd) == 0) {
			json_t *answer = commands[i].fn(m, args ? args : empty);
			json_decref(empty);
			return answer;
		}
	}
	json_decref(empty);
	char clean[64];
	return fail("unknown command \"%s\"", tc_sanitize(cmd, strlen(cmd), clean, sizeof(clean)));
}
