/* SPEC 2.1: the device event payload, decoded and checked. Pure: no I/O, no
 * clock, no globals beyond constant tables. Every rule here has a unit test
 * (tests/unit/test_event.c) and a fuzzer (tests/fuzz/fuzz_event.c). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/event.h"
#include "telecare/timefmt.h"
#include "telecare/util.h"

static const struct {
	const char *name;
	enum tc_kind kind;
	int priority;
} types[TC_T__COUNT] = {
	[TC_T_PANIC] = { "panic", TC_KIND_ALARM, 1 },
	[TC_T_FALL] = { "fall", TC_KIND_ALARM, 1 },
	[TC_T_SMOKE] = { "smoke", TC_KIND_ALARM, 1 },
	[TC_T_CO] = { "co", TC_KIND_ALARM, 1 },
	[TC_T_GAS] = { "gas", TC_KIND_ALARM, 1 },
	[TC_T_HEAT] = { "heat", TC_KIND_ALARM, 1 },
	[TC_T_MEDICAL] = { "medical", TC_KIND_ALARM, 1 },
	[TC_T_INACTIVITY] = { "inactivity", TC_KIND_ALARM, 2 },
	[TC_T_WANDER] = { "wander", TC_KIND_ALARM, 2 },
	[TC_T_DOOR] = { "door", TC_KIND_ALARM, 2 },
	[TC_T_BED_EXIT] = { "bed_exit", TC_KIND_ALARM, 2 },
	[TC_T_CHAIR_EXIT] = { "chair_exit", TC_KIND_ALARM, 2 },
	[TC_T_BAND_REMOVED] = { "band_removed", TC_KIND_ALARM, 2 },
	[TC_T_FLOOD] = { "flood", TC_KIND_ALARM, 2 },
	[TC_T_TEMPERATURE] = { "temperature", TC_KIND_ALARM, 2 },
	[TC_T_LOW_BATTERY] = { "low_battery", TC_KIND_TECHNICAL, 3 },
	[TC_T_TAMPER] = { "tamper", TC_KIND_TECHNICAL, 3 },
	[TC_T_POWER_LOSS] = { "power_loss", TC_KIND_TECHNICAL, 3 },
	[TC_T_CONNECTION_LOST] = { "connection_lost", TC_KIND_TECHNICAL, 3 },
	[TC_T_POWER_RESTORED] = { "power_restored", TC_KIND_RESTORAL, 0 },
	[TC_T_CONNECTION_RESTORED] = { "connection_restored", TC_KIND_RESTORAL, 0 },
	[TC_T_CANCEL] = { "cancel", TC_KIND_CANCEL, 0 },
	[TC_T_HEARTBEAT] = { "heartbeat", TC_KIND_HEARTBEAT, 0 },
	/* receipts stop while the store fails: more urgent than a flat battery */
	[TC_T_STORAGE_FAILED] = { "storage_failed", TC_KIND_TECHNICAL, 2 },
	/* an alarm that reaches nobody is as urgent as the store failing */
	[TC_T_NOBODY_TO_ALERT] = { "nobody_to_alert", TC_KIND_TECHNICAL, 2 },
};

const char *tc_type_name(enum tc_type t)
{
	return (t >= 0 && t < TC_T__COUNT) ? types[t].name : "invalid";
}

enum tc_type tc_type_from_name(const char *name)
{
	for (int t = 0; t < TC_T__COUNT; t++)
		if (strcmp(types[t].name, name) == 0)
			return (enum tc_type)t;
	return TC_T_INVALID;
}

enum tc_kind tc_type_kind(enum tc_type t)
{
	return types[t].kind;
}

int tc_type_default_priority(enum tc_type t)
{
	return types[t].priority;
}

enum tc_type tc_type_restores(enum tc_type t)
{
	switch (t) {
	case TC_T_POWER_RESTORED: return TC_T_POWER_LOSS;
	case TC_T_CONNECTION_RESTORED: return TC_T_CONNECTION_LOST;
	default: return TC_T_INVALID;
	}
}

bool tc_device_id_valid(const char *s, size_t len)
{
	if (len < 1 || len > TC_DEVICE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool tc_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) { i++; continue; }
		else if (c >= 0xc2 && c <= 0xdf) { n = 1; cp = c & 0x1f; }
		else if (c >= 0xe0 && c <= 0xef) { n = 2; cp = c & 0x0f; }
		else if (c >= 0xf0 && c <= 0xf4) { n = 3; cp = c & 0x07; }
		else return false;
		if (n >= len - i)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static size_t utf8_chars(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xc0) != 0x80)
			n++;
	return n;
}

static bool id_valid(json_t *id)
{
	if (json_is_integer(id))
		return json_integer_value(id) >= 0;
	if (!json_is_string(id))
		return false;
	size_t len = json_string_length(id);
	const char *s = json_string_value(id);
	if (len < 1 || len > TC_EVENT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static int decode_loc(json_t *loc, struct tc_event *ev, char *err, size_t errlen)
{
	json_t *lat = json_object_get(loc, "lat"), *lon = json_object_get(loc, "lon"),
	       *acc = json_object_get(loc, "acc");
	if (!json_is_object(loc) || !lat || !lon)
		return fail(err, errlen, "field \"loc\" must be an object {lat, lon, acc?}");
	if (!json_is_number(lat) || fabs(json_number_value(lat)) > 90)
		return fail(err, errlen, "field \"loc.lat\" must be a number between -90 and 90");
	if (!json_is_number(lon) || fabs(json_number_value(lon)) > 180)
		return fail(err, errlen, "field \"loc.lon\" must be a number between -180 and 180");
	if (acc && !json_is_null(acc) && (!json_is_number(acc) || json_number_value(acc) < 0))
		return fail(err, errlen, "field \"loc.acc\" must be a non-negative number");
	ev->has_loc = true;
	ev->lat = json_number_value(lat);
	ev->lon = json_number_value(lon);
	ev->acc = (acc && json_is_number(acc)) ? json_number_value(acc) : -1;
	return 0;
}

static int decode_fields(json_t *root, struct tc_event *ev, char *err, size_t errlen)
{
	json_t *v;

	v = json_object_get(root, "type");
	if (!v)
		return fail(err, errlen, "missing field \"type\"");
	if (!json_is_string(v))
		return fail(err, errlen, "field \"type\" must be a string");
	ev->type = tc_type_from_name(json_string_value(v));
	if (ev->type == TC_T_INVALID || ev->type >= TC_T__DEVICE_COUNT) {
		ev->type = TC_T_INVALID;
		char clean[40];
		return fail(err, errlen, "unknown event type \"%s\"",
		            tc_sanitize(json_string_value(v), json_string_length(v), clean, sizeof(clean)));
	}

	if ((v = json_object_get(root, "ts")) && !json_is_null(v)) {
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) < 253402300800LL /* year 10000 */) {
			ev->ts_ms = json_integer_value(v) * 1000;
		} else if (!json_is_string(v) || tc_time_parse(json_string_value(v), &ev->ts_ms) < 0) {
			return fail(err, errlen, "field \"ts\" must be an RFC 3339 string or integer Unix seconds");
		}
		ev->has_ts = true;
	}
	if ((v = json_object_get(root, "battery")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 100)
			return fail(err, errlen, "field \"battery\" must be an integer 0-100");
		ev->battery = (int)json_integer_value(v);
	}
	if ((v = json_object_get(root, "rssi")) && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < -1000 || json_integer_value(v) > 1000)
			return fail(err, errlen, "field \"rssi\" must be an integer (dBm)");
		ev->has_rssi = true;
		ev->rssi = (int)json_integer_value(v);
	}
	if ((v = json_object_get(root, "test")) && !json_is_null(v)) {
		if (!json_is_boolean(v))
			return fail(err, errlen, "field \"test\" must be a boolean");
		ev->test = json_is_true(v);
	}
	if ((v = json_object_get(root, "loc")) && !json_is_null(v) && decode_loc(v, ev, err, errlen) < 0)
		return -1;
	if ((v = json_object_get(root, "text")) && !json_is_null(v)) {
		if (!json_is_string(v) ||
		    utf8_chars(json_string_value(v), json_string_length(v)) > TC_TEXT_MAX)
			return fail(err, errlen, "field \"text\" must be a string of at most %d characters",
			            TC_TEXT_MAX);
	}
	return 0;
}

int tc_event_decode(const void *payload, size_t len, size_t max_payload,
                    struct tc_event *ev, json_t **id_out, char *err, size_t errlen)
{
	memset(ev, 0, sizeof(*ev));
	ev->battery = -1;
	ev->type = TC_T_INVALID;
	if (id_out)
		*id_out = NULL;

	if (len > max_payload)
		return fail(err, errlen, "payload too large: %zu bytes, limit %zu", len, max_payload);
	if (len == 0)
		return fail(err, errlen, "payload is empty");
	if (!tc_utf8_valid(payload, len))
		return fail(err, errlen, "payload is not valid UTF-8");

	json_error_t jerr;
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		char clean[96];
		return fail(err, errlen, "payload is not valid JSON: %s at byte %d",
		            tc_sanitize(jerr.text, strlen(jerr.text), clean, sizeof(clean)), jerr.position);
	}
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, errlen, "payload is not a JSON object");
	}

	json_t *id = json_object_get(root, "id");
	if (!id) {
		json_decref(root);
		return fail(err, errlen, "missing field \"id\"");
	}
	if (!id_valid(id)) {
		json_decref(root);
		return fail(err, errlen, "field \"id\" must be a string of 1-%d printable ASCII "
		            "characters or a non-negative integer", TC_EVENT_ID_MAX);
	}
	if (id_out)
		*id_out = json_incref(id);

	if (decode_fields(root, ev, err, errlen) < 0) {
		json_decref(root);
		ev->type = TC_T_INVALID;
		return -1;
	}

	char *key = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!key || strlen(key) >= sizeof(ev->id_key)) {
		free(key);
		json_decref(root);
		ev->type = TC_T_INVALID;
		return fail(err, errlen, "out of memory");
	}
	strcpy(ev->id_key, key);
	free(key);
	ev->root = root;
	ev->id = id;
	return 0;
}

void tc_event_clear(struct tc_event *ev)
{
	json_decref(ev->root);
	ev->root = NULL;
	ev->id = NULL;
}
