/* device.* and source.unmapped: the installer's commands; events: what
 * devices sent. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "telecare/timefmt.h"

static json_t *device_to_json(const void *d) { return device_json(d); }

static bool dc09_account_valid(const char *a)
{
	size_t n = strlen(a);
	if (n < 3 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)a[i]))
			return false;
	return true;
}

/* What device.add checks beyond the argument types, for add and for each
 * row of an import (whose rows the runner has not checked). 0, or -1 with
 * the reason in msg. */
static int check_device_args(struct manager *m, json_t *args, char *msg, size_t len)
{
	static const char *const texts[] = { "kind", "source", "address" };
	char clean[80];
	json_t *idj = json_object_get(args, "id"), *ridj = json_object_get(args, "resident");
	json_t *hb = json_object_get(args, "heartbeat_ms");
	if (!json_is_string(idj)) {
		snprintf(msg, len, "missing device id (\"id\")");
		return -1;
	}
	if (!tc_device_id_valid(json_string_value(idj), json_string_length(idj))) {
		snprintf(msg, len, "invalid device id \"%s\": 1-64 of [A-Za-z0-9._-]",
		         tc_sanitize(json_string_value(idj), json_string_length(idj), clean, sizeof(clean)));
		return -1;
	}
	if (!json_is_string(ridj)) {
		snprintf(msg, len, "missing resident id (\"resident\")");
		return -1;
	}
	if (!tc_device_id_valid(json_string_value(ridj), json_string_length(ridj))) {
		snprintf(msg, len, "invalid resident id \"%s\": 1-64 of [A-Za-z0-9._-]",
		         tc_sanitize(json_string_value(ridj), json_string_length(ridj), clean, sizeof(clean)));
		return -1;
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(*texts); i++) {
		json_t *v = json_object_get(args, texts[i]);
		if (v && !json_is_null(v) &&
		    (!json_is_string(v) || json_string_length(v) > FIELD_MAX ||
		     memchr(json_string_value(v), '\0', json_string_length(v)))) {
			snprintf(msg, len, "\"%s\" must be text of at most %d bytes", texts[i], FIELD_MAX);
			return -1;
		}
	}
	const char *id = json_string_value(idj), *rid = json_string_value(ridj);
	const char *kind = arg_str(args, "kind"), *source = arg_str(args, "source");
	const char *address = arg_str(args, "address");
	struct device *taken = NULL;
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
	else if (source && source_get(m->cfg, source)->format == TC_SRC_SIA_DC09 &&
	         !dc09_account_valid(address))
		snprintf(msg, len, "device %s: the address of a DC-09 panel is its account, 3-16 hex "
		         "digits (as the panel sends it after #)", id);
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
	const char *source = arg_str(args, "source"), *address = arg_str(args, "address");
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

/* Add one device whose arguments check_device_args() accepted. */
static json_t *add_device(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id"), *rid = arg_str(args, "resident");
	char err[256], label[160];
	int64_t seen = 0;
	int battery = -1, rssi = INT32_MIN;
	/* What it said before it was registered still tells when it was last seen. */
	if (q_device_latest(m, id, &seen, &battery, &rssi, err, sizeof(err)) < 0)
		return fail("device %s: %s", id, err);
	struct device *d = calloc(1, sizeof(*d));
	if (!d)
		return fail("out of memory");
	d->id = strdup(id);
	d->resident_id = strdup(rid);
	d->kind = dup_or_null(arg_str(args, "kind"));
	d->source = dup_or_null(arg_str(args, "source"));
	d->address = dup_or_null(arg_str(args, "address"));
	d->heartbeat_ms = arg_int(args, "heartbeat_ms", 0);
	d->created_at = tc_now_ms();
	d->last_seen = seen;
	d->battery = battery;
	d->rssi = rssi;
	if (device_add(m, d) < 0)
		return fail("out of memory");
	log_full(LOG_INFO, id, 0, NULL, "device %s added for resident %s by %s", id, rid,
	         who_label(who, label, sizeof(label)));
	return ok(device_json(d));
}

json_t *cmd_device_add(struct manager *m, const struct actor *who, json_t *args)
{
	char msg[512];
	normalize_address(m, args);
	if (check_device_args(m, args, msg, sizeof(msg)) < 0)
		return fail("%s", msg);
	return add_device(m, who, args);
}

json_t *cmd_device_list(struct manager *m, const struct actor *who, json_t *args)
{
	(void)who;
	(void)args;
	return ok(sorted_list(&m->devices, device_to_json));
}

json_t *cmd_device_show(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char err[256];
	(void)who;
	struct device *d = device_get(m, id);
	if (!d)
		return fail("device %s is not registered (telecarectl device unknown lists what "
		            "unregistered devices sent)", id);
	json_t *events = json_array();
	if (q_events(m, id, -1, 10, events, err, sizeof(err)) < 0) {
		json_decref(events);
		return fail("device %s: %s", id, err);
	}
	json_t *j = device_json(d);
	json_object_set_new(j, "events", events);
	return ok(j);
}

json_t *cmd_device_remove(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char label[160];
	if (!device_get(m, id))
		return fail("device %s is not registered", id);
	device_remove(m, id);
	log_full(LOG_INFO, id, 0, NULL, "device %s removed by %s; its events stay", id,
	         who_label(who, label, sizeof(label)));
	return ok(NULL);
}

json_t *cmd_device_unknown(struct manager *m, const struct actor *who, json_t *args)
{
	char err[256];
	(void)who;
	(void)args;
	json_t *list = json_array();
	if (q_unknown_devices(m, list, err, sizeof(err)) < 0) {
		json_decref(list);
		return fail("%s", err);
	}
	return ok(list);
}

json_t *cmd_device_test(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char label[160];
	struct device *d = device_get(m, id);
	if (!d)
		return fail("device %s is not registered", id);
	if (d->testing)
		return fail("device %s is already being tested", id);
	d->testing = true;   /* until its next alarm, or until this connection closes */
	log_full(LOG_INFO, id, 0, NULL, "device %s: on test for %s, waiting for its next alarm", id,
	         who_label(who, label, sizeof(label)));
	return ok(json_pack("{s:s, s:s, s:o}", "stage", "waiting", "device", id, "at",
	                    json_time_or_null(tc_now_ms())));
}

/* Register a device nobody had registered, keeping what it sent. */
json_t *cmd_device_adopt(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char err[256], label[160];
	if (device_get(m, id))
		return fail("device %s is already registered", id);
	int known = q_device_has_events(m, id, err, sizeof(err));
	if (known < 0)
		return fail("device %s: %s", id, err);
	if (!known)
		return fail("device %s has sent nothing; use device add", id);
	json_t *answer = cmd_device_add(m, who, args);
	if (!json_is_true(json_object_get(answer, "ok")))
		return answer;
	/* Its open alarms now know whom they are about. */
	struct device *d = device_get(m, id);
	who_label(who, label, sizeof(label));
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (strcmp(a->device, id) || a->resident_id)
			continue;
		a->resident_id = strdup(d->resident_id);
		alarm_do(m, a, &(struct life_event){ .kind = LIFE_ADOPT, .who = who }, NULL, 0);
	}
	log_full(LOG_INFO, id, 0, NULL, "device %s adopted by resident %s (by %s)", id,
	         d->resident_id, label);
	return answer;
}

/* All or nothing: every row is checked before any is added. */
json_t *cmd_device_import(struct manager *m, const struct actor *who, json_t *args)
{
	json_t *rows = json_object_get(args, "rows"), *row;
	char label[160];
	if (json_array_size(rows) > 100000)
		return fail("at most 100000 devices in one import");
	char errors[2048] = "";
	size_t n_err = 0, i;
	struct map seen = { 0 };
	json_array_foreach(rows, i, row) {
		json_int_t line = json_integer_value(json_object_get(row, "line"));
		char msg[512] = "", akey[TC_ADDRESS_MAX + 80] = "";
		normalize_address(m, row);
		const char *id = arg_str(row, "id"), *source = arg_str(row, "source");
		const char *address = arg_str(row, "address");
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
		json_t *answer = add_device(m, who, row);
		if (!json_is_true(json_object_get(answer, "ok"))) {
			/* a read failed mid-way: say so; what was added stays added */
			json_t *err = fail("import stopped after %zu devices: %s", json_array_size(added),
			                   json_string_value(json_object_get(answer, "error")));
			json_decref(answer);
			json_decref(added);
			return err;
		}
		json_array_append(added, json_object_get(json_object_get(answer, "data"), "id"));
		json_decref(answer);
	}
	log_info("device import by %s: %zu devices added", who_label(who, label, sizeof(label)),
	         json_array_size(added));
	return ok(json_pack("{s:I, s:o}", "added", (json_int_t)json_array_size(added), "devices", added));
}

/* What sources sent that became no event: per source and address. */
json_t *cmd_source_unmapped(struct manager *m, const struct actor *who, json_t *args)
{
	char err[256];
	(void)who;
	(void)args;
	json_t *list = json_array();
	if (q_unmapped(m, list, err, sizeof(err)) < 0) {
		json_decref(list);
		return fail("%s", err);
	}
	return ok(list);
}

/* events: up to LIST_MAX rows, read EVENTS_SLICE a loop pass (command.c). */
#define EVENTS_SLICE 1000

struct events_read {
	struct q_cursor *cur;
	json_t *list;                /* newest first while reading */
};

void cmd_events_free(void *state)
{
	struct events_read *e = state;
	if (!e)
		return;
	q_cursor_close(e->cur);
	json_decref(e->list);
	free(e);
}

json_t *cmd_events_slice(struct manager *m, const struct actor *who, json_t *args, void **state)
{
	struct events_read *e = *state;
	char err[256];
	(void)who;
	if (!e) {
		const char *dev = arg_str(args, "device");
		int64_t limit = arg_int(args, "limit", 20);
		if (limit < 0 || limit > LIST_MAX)
			return fail("limit must be 0-%d", LIST_MAX);
		if (!(e = calloc(1, sizeof(*e))) || !(e->list = json_array())) {
			free(e);
			return fail("out of memory");
		}
		*state = e;
		if (!(e->cur = q_events_open(m, dev, limit, err, sizeof(err))))
			return fail("%s", err);
	}
	int more = q_cursor_step(e->cur, EVENTS_SLICE, NULL, NULL, e->list, err, sizeof(err));
	if (more > 0)
		return NULL;
	if (more < 0)
		return fail("%s", err);
	/* oldest first, as the protocol lists them */
	size_t n = json_array_size(e->list);
	json_t *out = json_array();
	for (size_t i = n; i-- > 0;)
		json_array_append(out, json_array_get(e->list, i));
	return ok(out);
}
