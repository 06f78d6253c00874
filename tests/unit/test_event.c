/* SPEC 2.1: every rule of the device event decoder (common/event.c), plus the
 * helpers it is built on (tc_utf8_valid, tc_device_id_valid, tc_sanitize). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecare/event.h"
#include "telecare/util.h"

#define MAX TC_PAYLOAD_DEFAULT

static char err[256];
static struct tc_event ev;

/* Decode a NUL-terminated payload with the default limit. */
static int dec(const char *s)
{
	err[0] = '\0';
	return tc_event_decode(s, strlen(s), MAX, &ev, NULL, err, sizeof(err));
}

/* Decode, expecting success. */
static void ok(const char *s)
{
	int rc = dec(s);
	if (rc != 0)
		fail_msg("expected %s to decode, got: %s", s, err);
	assert_non_null(ev.root);
	assert_true(json_is_object(ev.root));
}

/* Decode, expecting rejection with a message naming `mention` (may be NULL). */
static void bad(const char *s, const char *mention)
{
	int rc = dec(s);
	if (rc == 0) {
		tc_event_clear(&ev);
		fail_msg("expected %s to be rejected", s);
	}
	assert_int_equal(rc, -1);
	assert_null(ev.root);
	assert_int_equal(ev.type, TC_T_INVALID);
	assert_true(strlen(err) > 0);
	if (mention && !strstr(err, mention))
		fail_msg("error for %s is \"%s\", which does not mention %s", s, err, mention);
}

/* Same with explicit bytes (may contain NULs or invalid UTF-8). */
static void bad_bytes(const char *s, size_t len, const char *mention)
{
	err[0] = '\0';
	int rc = tc_event_decode(s, len, MAX, &ev, NULL, err, sizeof(err));
	if (rc == 0) {
		tc_event_clear(&ev);
		fail_msg("expected %zu bytes to be rejected", len);
	}
	assert_null(ev.root);
	assert_true(strlen(err) > 0);
	if (mention && !strstr(err, mention))
		fail_msg("error is \"%s\", which does not mention %s", err, mention);
}

/* ---- good events ---- */

static void test_minimal_string_id(void **state)
{
	(void)state;
	ok("{\"id\":\"e-000123\",\"type\":\"panic\"}");
	assert_int_equal(ev.type, TC_T_PANIC);
	assert_true(json_is_string(ev.id));
	assert_string_equal(json_string_value(ev.id), "e-000123");
	assert_string_equal(ev.id_key, "\"e-000123\"");
	assert_ptr_equal(ev.id, json_object_get(ev.root, "id"));
	/* absent optional fields */
	assert_false(ev.has_ts);
	assert_int_equal(ev.battery, -1);
	assert_false(ev.has_rssi);
	assert_false(ev.test);
	assert_false(ev.has_loc);
	tc_event_clear(&ev);
	assert_null(ev.root);
	assert_null(ev.id);
}

static void test_minimal_integer_id(void **state)
{
	(void)state;
	ok("{\"id\":42,\"type\":\"fall\"}");
	assert_int_equal(ev.type, TC_T_FALL);
	assert_true(json_is_integer(ev.id));
	assert_int_equal(json_integer_value(ev.id), 42);
	assert_string_equal(ev.id_key, "42");
	tc_event_clear(&ev);

	ok("{\"id\":0,\"type\":\"heartbeat\"}");
	assert_string_equal(ev.id_key, "0");
	tc_event_clear(&ev);

	ok("{\"id\":9223372036854775807,\"type\":\"heartbeat\"}");
	assert_string_equal(ev.id_key, "9223372036854775807");
	tc_event_clear(&ev);
}

static void test_whitespace_and_order(void **state)
{
	(void)state;
	ok(" \n\t{ \"type\" : \"smoke\" ,\r\n \"id\" : \"x\" } \n");
	assert_int_equal(ev.type, TC_T_SMOKE);
	assert_string_equal(ev.id_key, "\"x\"");
	tc_event_clear(&ev);
}

/* The table of SPEC 2.1, written out independently of common/event.c. */
static const struct {
	const char *name;
	enum tc_kind kind;
	int priority;
} spec_types[] = {
	{ "panic", TC_KIND_ALARM, 1 }, { "fall", TC_KIND_ALARM, 1 },
	{ "smoke", TC_KIND_ALARM, 1 }, { "co", TC_KIND_ALARM, 1 },
	{ "gas", TC_KIND_ALARM, 1 }, { "heat", TC_KIND_ALARM, 1 },
	{ "medical", TC_KIND_ALARM, 1 },
	{ "inactivity", TC_KIND_ALARM, 2 }, { "wander", TC_KIND_ALARM, 2 },
	{ "door", TC_KIND_ALARM, 2 }, { "bed_exit", TC_KIND_ALARM, 2 },
	{ "chair_exit", TC_KIND_ALARM, 2 }, { "band_removed", TC_KIND_ALARM, 2 },
	{ "flood", TC_KIND_ALARM, 2 }, { "temperature", TC_KIND_ALARM, 2 },
	{ "low_battery", TC_KIND_TECHNICAL, 3 }, { "tamper", TC_KIND_TECHNICAL, 3 },
	{ "power_loss", TC_KIND_TECHNICAL, 3 }, { "connection_lost", TC_KIND_TECHNICAL, 3 },
	{ "power_restored", TC_KIND_RESTORAL, 0 }, { "connection_restored", TC_KIND_RESTORAL, 0 },
	{ "cancel", TC_KIND_CANCEL, 0 },
	{ "heartbeat", TC_KIND_HEARTBEAT, 0 },
};

/* The gateway's own alarm types are not for devices to send. */
static void test_internal_type_refused(void **state)
{
	(void)state;
	bad("{\"id\":\"x\",\"type\":\"storage_failed\"}", "unknown event type");
	assert_int_equal(tc_type_kind(TC_T_STORAGE_FAILED), TC_KIND_TECHNICAL);
}

static void test_all_types(void **state)
{
	(void)state;
	size_t n = sizeof(spec_types) / sizeof(spec_types[0]);
	assert_int_equal(n, TC_T__DEVICE_COUNT);  /* the types a device may send: SPEC's list */
	for (size_t i = 0; i < n; i++) {
		char buf[128];
		snprintf(buf, sizeof(buf), "{\"id\":\"t%zu\",\"type\":\"%s\"}", i, spec_types[i].name);
		ok(buf);
		assert_int_not_equal(ev.type, TC_T_INVALID);
		assert_string_equal(tc_type_name(ev.type), spec_types[i].name);
		assert_int_equal(tc_type_from_name(spec_types[i].name), ev.type);
		if (tc_type_kind(ev.type) != spec_types[i].kind)
			fail_msg("type %s: kind %d, SPEC says %d", spec_types[i].name,
			         tc_type_kind(ev.type), spec_types[i].kind);
		if (tc_type_default_priority(ev.type) != spec_types[i].priority)
			fail_msg("type %s: priority %d, SPEC says %d", spec_types[i].name,
			         tc_type_default_priority(ev.type), spec_types[i].priority);
		tc_event_clear(&ev);
	}
	assert_int_equal(tc_type_restores(TC_T_POWER_RESTORED), TC_T_POWER_LOSS);
	assert_int_equal(tc_type_restores(TC_T_CONNECTION_RESTORED), TC_T_CONNECTION_LOST);
	assert_int_equal(tc_type_restores(TC_T_PANIC), TC_T_INVALID);
	assert_int_equal(tc_type_from_name("nope"), TC_T_INVALID);
	assert_string_equal(tc_type_name(TC_T_INVALID), "invalid");
}

static void test_unknown_fields_kept(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"panic\",\"vendor\":{\"fw\":\"1.2\",\"x\":[1,2,3]},\"zz\":null}");
	json_t *v = json_object_get(ev.root, "vendor");
	assert_non_null(v);
	assert_true(json_is_object(v));
	assert_string_equal(json_string_value(json_object_get(v, "fw")), "1.2");
	assert_non_null(json_object_get(ev.root, "zz"));
	assert_int_equal(json_object_size(ev.root), 4);
	tc_event_clear(&ev);
}

static void test_null_optional_fields_are_absent(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"panic\",\"ts\":null,\"battery\":null,\"rssi\":null,"
	   "\"test\":null,\"loc\":null,\"text\":null}");
	assert_false(ev.has_ts);
	assert_int_equal(ev.battery, -1);
	assert_false(ev.has_rssi);
	assert_false(ev.test);
	assert_false(ev.has_loc);
	tc_event_clear(&ev);
}

/* ---- id ---- */

static void test_id_rules(void **state)
{
	(void)state;
	char buf[256];

	bad("{\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":\"\",\"type\":\"panic\"}", "\"id\"");

	/* 64 characters: fine; 65: too long */
	snprintf(buf, sizeof(buf), "{\"id\":\"%064d\",\"type\":\"panic\"}", 7);
	ok(buf);
	assert_int_equal(strlen(ev.id_key), 66);
	tc_event_clear(&ev);
	snprintf(buf, sizeof(buf), "{\"id\":\"%065d\",\"type\":\"panic\"}", 7);
	bad(buf, "\"id\"");

	bad("{\"id\":\"a\\u0001b\",\"type\":\"panic\"}", "\"id\"");  /* control char */
	bad("{\"id\":\"a\\tb\",\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":\"a\\u007fb\",\"type\":\"panic\"}", "\"id\"");  /* DEL */
	bad("{\"id\":\"caf\xc3\xa9\",\"type\":\"panic\"}", "\"id\"");  /* non-ASCII */
	bad("{\"id\":-1,\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":1.5,\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":1.0,\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":true,\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":null,\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":[1],\"type\":\"panic\"}", "\"id\"");
	bad("{\"id\":{},\"type\":\"panic\"}", "\"id\"");

	/* printable ASCII punctuation and space are allowed */
	ok("{\"id\":\" !#$%&'()*+,-./:;<=>?@[]^_`{|}~\",\"type\":\"panic\"}");
	tc_event_clear(&ev);
}

static void test_id_key_canonical(void **state)
{
	(void)state;
	/* escapes in the id are canonicalised: the same id spelled two ways has one key */
	ok("{\"id\":\"a\\u0062c\",\"type\":\"panic\"}");
	assert_string_equal(ev.id_key, "\"abc\"");
	tc_event_clear(&ev);
	ok("{\"id\":\"a\\\"b\",\"type\":\"panic\"}");
	assert_string_equal(ev.id_key, "\"a\\\"b\"");
	tc_event_clear(&ev);
	/* the string "42" and the integer 42 are different ids */
	ok("{\"id\":\"42\",\"type\":\"panic\"}");
	assert_string_equal(ev.id_key, "\"42\"");
	tc_event_clear(&ev);
	ok("{\"id\":42,\"type\":\"panic\"}");
	assert_string_equal(ev.id_key, "42");
	tc_event_clear(&ev);
}

/* A 64-character id is valid whatever printable ASCII it holds (SPEC 2.1), and
 * its key is its canonical JSON text. Quotes and backslashes double in JSON:
 * 64 of them need a 130-byte key. */
static void test_id_key_escaped_64(void **state)
{
	(void)state;
	static const char *fill[] = { "\\\"", "\\\\" };  /* JSON spelling of " and \ */
	for (size_t f = 0; f < 2; f++) {
		char buf[512];
		int o = snprintf(buf, sizeof(buf), "{\"id\":\"");
		for (int i = 0; i < 64; i++)
			o += snprintf(buf + o, sizeof(buf) - (size_t)o, "%s", fill[f]);
		snprintf(buf + o, sizeof(buf) - (size_t)o, "\",\"type\":\"panic\"}");
		int rc = dec(buf);
		if (rc != 0)
			fail_msg("a 64-character id of '%c' was rejected: %s", f ? '\\' : '"', err);
		assert_int_equal(json_string_length(ev.id), 64);
		char *expect = json_dumps(ev.id, JSON_ENCODE_ANY | JSON_COMPACT);
		assert_string_equal(ev.id_key, expect);
		free(expect);
		tc_event_clear(&ev);
	}
}

static void test_id_out(void **state)
{
	(void)state;
	json_t *id = NULL;
	const char *s;

	/* rejected for another field: the id comes back */
	s = "{\"id\":\"e-7\",\"type\":\"bogus\"}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), -1);
	assert_non_null(id);
	assert_string_equal(json_string_value(id), "e-7");
	json_decref(id);

	s = "{\"id\":77,\"type\":\"panic\",\"battery\":500}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), -1);
	assert_non_null(id);
	assert_int_equal(json_integer_value(id), 77);
	json_decref(id);

	/* no readable id */
	id = (json_t *)&id;  /* garbage: must be reset */
	s = "{\"type\":\"panic\"}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), -1);
	assert_null(id);
	id = (json_t *)&id;
	s = "{\"id\":-3,\"type\":\"panic\"}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), -1);
	assert_null(id);
	id = (json_t *)&id;
	s = "not json";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), -1);
	assert_null(id);

	/* accepted: id_out holds its own reference, which outlives the event */
	s = "{\"id\":\"ok\",\"type\":\"panic\"}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, &id, err, sizeof(err)), 0);
	assert_ptr_equal(id, ev.id);
	tc_event_clear(&ev);
	assert_string_equal(json_string_value(id), "ok");
	json_decref(id);
}

/* ---- type ---- */

static void test_type_rules(void **state)
{
	(void)state;
	bad("{\"id\":1}", "\"type\"");
	bad("{\"id\":1,\"type\":7}", "\"type\"");
	bad("{\"id\":1,\"type\":null}", "\"type\"");
	bad("{\"id\":1,\"type\":[\"panic\"]}", "\"type\"");
	bad("{\"id\":1,\"type\":\"explosion\"}", "explosion");
	bad("{\"id\":1,\"type\":\"PANIC\"}", "PANIC");
	bad("{\"id\":1,\"type\":\"\"}", "type");
	/* the unknown type is echoed, sanitised */
	bad("{\"id\":1,\"type\":\"a\\nb\"}", "a?b");
}

/* ---- ts ---- */

static void test_ts(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"panic\",\"ts\":\"2026-11-22T10:15:00Z\"}");
	assert_true(ev.has_ts);
	assert_int_equal(ev.ts_ms, 1795342500000LL);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"panic\",\"ts\":\"2026-11-22T12:15:00+02:00\"}");
	assert_int_equal(ev.ts_ms, 1795342500000LL);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"panic\",\"ts\":\"2026-11-22T10:15:00.123Z\"}");
	assert_int_equal(ev.ts_ms, 1795342500123LL);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"panic\",\"ts\":1700000000}");
	assert_true(ev.has_ts);
	assert_int_equal(ev.ts_ms, 1700000000000LL);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"panic\",\"ts\":0}");
	assert_true(ev.has_ts);
	assert_int_equal(ev.ts_ms, 0);
	tc_event_clear(&ev);

	bad("{\"id\":1,\"type\":\"panic\",\"ts\":-1}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":\"yesterday\"}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":\"2026-11-22\"}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":\"2026-02-30T10:15:00Z\"}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":1.5}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":true}", "\"ts\"");
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":{}}", "\"ts\"");
	/* absurd: beyond year 9999, would overflow if multiplied to ms */
	bad("{\"id\":1,\"type\":\"panic\",\"ts\":9223372036854775807}", "\"ts\"");
}

/* ---- battery, rssi, test ---- */

static void test_battery(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"low_battery\",\"battery\":0}");
	assert_int_equal(ev.battery, 0);
	tc_event_clear(&ev);
	ok("{\"id\":1,\"type\":\"low_battery\",\"battery\":100}");
	assert_int_equal(ev.battery, 100);
	tc_event_clear(&ev);
	bad("{\"id\":1,\"type\":\"low_battery\",\"battery\":-1}", "\"battery\"");
	bad("{\"id\":1,\"type\":\"low_battery\",\"battery\":101}", "\"battery\"");
	bad("{\"id\":1,\"type\":\"low_battery\",\"battery\":\"50\"}", "\"battery\"");
	bad("{\"id\":1,\"type\":\"low_battery\",\"battery\":50.5}", "\"battery\"");
	bad("{\"id\":1,\"type\":\"low_battery\",\"battery\":4294967346}", "\"battery\"");
}

static void test_rssi(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"heartbeat\",\"rssi\":-73}");
	assert_true(ev.has_rssi);
	assert_int_equal(ev.rssi, -73);
	tc_event_clear(&ev);
	ok("{\"id\":1,\"type\":\"heartbeat\",\"rssi\":0}");
	assert_true(ev.has_rssi);
	assert_int_equal(ev.rssi, 0);
	tc_event_clear(&ev);
	bad("{\"id\":1,\"type\":\"heartbeat\",\"rssi\":\"-73\"}", "\"rssi\"");
	bad("{\"id\":1,\"type\":\"heartbeat\",\"rssi\":-73.5}", "\"rssi\"");
	/* must not be truncated into an int */
	bad("{\"id\":1,\"type\":\"heartbeat\",\"rssi\":4294967296}", "\"rssi\"");
}

static void test_test_flag(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"panic\",\"test\":true}");
	assert_true(ev.test);
	tc_event_clear(&ev);
	ok("{\"id\":1,\"type\":\"panic\",\"test\":false}");
	assert_false(ev.test);
	tc_event_clear(&ev);
	bad("{\"id\":1,\"type\":\"panic\",\"test\":\"true\"}", "\"test\"");
	bad("{\"id\":1,\"type\":\"panic\",\"test\":1}", "\"test\"");
}

/* ---- loc ---- */

static void test_loc(void **state)
{
	(void)state;
	ok("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":52.2297,\"lon\":21.0122,\"acc\":12}}");
	assert_true(ev.has_loc);
	assert_float_equal(ev.lat, 52.2297, 1e-9);
	assert_float_equal(ev.lon, 21.0122, 1e-9);
	assert_float_equal(ev.acc, 12, 1e-9);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":-90,\"lon\":180}}");
	assert_true(ev.has_loc);
	assert_float_equal(ev.lat, -90, 1e-9);
	assert_float_equal(ev.lon, 180, 1e-9);
	assert_true(ev.acc < 0);
	tc_event_clear(&ev);

	ok("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":0,\"lon\":0,\"acc\":0}}");
	assert_float_equal(ev.acc, 0, 1e-9);
	tc_event_clear(&ev);

	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":52.2}}", "\"loc\"");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lon\":21}}", "\"loc\"");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":91,\"lon\":0}}", "loc.lat");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":-90.5,\"lon\":0}}", "loc.lat");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":0,\"lon\":180.1}}", "loc.lon");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":\"0\",\"lon\":0}}", "loc.lat");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":0,\"lon\":0,\"acc\":-1}}", "loc.acc");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":{\"lat\":0,\"lon\":0,\"acc\":\"5\"}}", "loc.acc");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":[52,21]}", "\"loc\"");
	bad("{\"id\":1,\"type\":\"wander\",\"loc\":\"52,21\"}", "\"loc\"");
}

/* ---- text ---- */

static void test_text(void **state)
{
	(void)state;
	char buf[2048];
	int o;

	/* 256 characters, each two bytes: fine */
	o = snprintf(buf, sizeof(buf), "{\"id\":1,\"type\":\"panic\",\"text\":\"");
	for (int i = 0; i < 256; i++)
		o += snprintf(buf + o, sizeof(buf) - (size_t)o, "\xc5\x9b");  /* ś */
	snprintf(buf + o, sizeof(buf) - (size_t)o, "\"}");
	ok(buf);
	tc_event_clear(&ev);

	/* 256 characters, four bytes each (outside the BMP): fine */
	o = snprintf(buf, sizeof(buf), "{\"id\":1,\"type\":\"panic\",\"text\":\"");
	for (int i = 0; i < 256; i++)
		o += snprintf(buf + o, sizeof(buf) - (size_t)o, "\xf0\x9f\x98\x80");
	snprintf(buf + o, sizeof(buf) - (size_t)o, "\"}");
	ok(buf);
	tc_event_clear(&ev);

	/* 256 characters as \u escapes: fine */
	o = snprintf(buf, sizeof(buf), "{\"id\":1,\"type\":\"panic\",\"text\":\"");
	for (int i = 0; i < 256; i++)
		o += snprintf(buf + o, sizeof(buf) - (size_t)o, "\\u015b");
	snprintf(buf + o, sizeof(buf) - (size_t)o, "\"}");
	ok(buf);
	tc_event_clear(&ev);

	/* 257 ASCII characters: too long */
	o = snprintf(buf, sizeof(buf), "{\"id\":1,\"type\":\"panic\",\"text\":\"");
	for (int i = 0; i < 257; i++)
		buf[o++] = 'a';
	snprintf(buf + o, sizeof(buf) - (size_t)o, "\"}");
	bad(buf, "\"text\"");

	/* 257 two-byte characters: too long */
	o = snprintf(buf, sizeof(buf), "{\"id\":1,\"type\":\"panic\",\"text\":\"");
	for (int i = 0; i < 257; i++)
		o += snprintf(buf + o, sizeof(buf) - (size_t)o, "\xc5\x9b");
	snprintf(buf + o, sizeof(buf) - (size_t)o, "\"}");
	bad(buf, "\"text\"");

	ok("{\"id\":1,\"type\":\"panic\",\"text\":\"\"}");
	tc_event_clear(&ev);
	bad("{\"id\":1,\"type\":\"panic\",\"text\":5}", "\"text\"");
	bad("{\"id\":1,\"type\":\"panic\",\"text\":[\"a\"]}", "\"text\"");
}

/* ---- size ---- */

static char *padded(size_t total)
{
	/* {"id":1,"type":"panic","pad":"xxxx..."} of exactly total bytes */
	const char *head = "{\"id\":1,\"type\":\"panic\",\"pad\":\"", *tail = "\"}";
	size_t fixed = strlen(head) + strlen(tail);
	assert_true(total > fixed);
	char *s = malloc(total + 1);
	assert_non_null(s);
	strcpy(s, head);
	memset(s + strlen(head), 'x', total - fixed);
	strcpy(s + total - strlen(tail), tail);
	assert_int_equal(strlen(s), total);
	return s;
}

static void test_size_limit(void **state)
{
	(void)state;
	char *s = padded(MAX);
	assert_int_equal(tc_event_decode(s, MAX, MAX, &ev, NULL, err, sizeof(err)), 0);
	tc_event_clear(&ev);
	free(s);

	s = padded(MAX + 1);
	json_t *id = NULL;
	assert_int_equal(tc_event_decode(s, MAX + 1, MAX, &ev, &id, err, sizeof(err)), -1);
	assert_null(ev.root);
	assert_non_null(strstr(err, "4097"));
	assert_non_null(strstr(err, "4096"));
	free(s);

	/* the limit is the caller's, not a constant */
	s = padded(300);
	assert_int_equal(tc_event_decode(s, 300, 299, &ev, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "300"));
	assert_non_null(strstr(err, "299"));
	assert_int_equal(tc_event_decode(s, 300, 300, &ev, NULL, err, sizeof(err)), 0);
	tc_event_clear(&ev);
	free(s);

	bad_bytes("", 0, NULL);
}

/* ---- UTF-8 ---- */

static void test_invalid_utf8(void **state)
{
	(void)state;
	static const struct { const char *s; size_t len; const char *what; } cases[] = {
#define C(lit, what) { lit, sizeof(lit) - 1, what }
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xc0\xaf\"}", "overlong 2-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xc1\xbf\"}", "overlong 2-byte (c1)"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xe0\x80\xaf\"}", "overlong 3-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xf0\x80\x80\xaf\"}", "overlong 4-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xed\xa0\x80\"}", "surrogate D800"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xed\xbf\xbf\"}", "surrogate DFFF"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xf4\x90\x80\x80\"}", "above U+10FFFF"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xe2\x82\"}", "truncated 3-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xc5\"}", "truncated 2-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\x80\"}", "lone continuation"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xff\"}", "0xff"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xfe\"}", "0xfe"),
		C("{\"id\":1,\"type\":\"panic\",\"text\":\"\xf8\x88\x80\x80\x80\"}", "5-byte"),
		C("{\"id\":1,\"type\":\"panic\",\"x\":1}\xe2\x82", "truncated at end of payload"),
		C("{\"id\":1,\"type\":\"panic\",\"x\":1}\xf0", "lead byte at end of payload"),
		C("{\"id\":1,\"type\":\"panic\",\"\xff\":1}", "in a key"),
#undef C
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		if (tc_event_decode(cases[i].s, cases[i].len, MAX, &ev, NULL, err, sizeof(err)) == 0) {
			tc_event_clear(&ev);
			fail_msg("invalid UTF-8 (%s) accepted", cases[i].what);
		}
		if (!strstr(err, "UTF-8"))
			fail_msg("invalid UTF-8 (%s): error \"%s\" does not say UTF-8", cases[i].what, err);
	}
}

static void test_utf8_valid(void **state)
{
	(void)state;
#define V(lit) tc_utf8_valid(lit, sizeof(lit) - 1)
	assert_true(V(""));
	assert_true(V("plain ascii"));
	assert_true(V("\x7f"));
	assert_true(V("\xc2\x80"));                 /* U+0080 */
	assert_true(V("\xdf\xbf"));                 /* U+07FF */
	assert_true(V("\xe0\xa0\x80"));             /* U+0800 */
	assert_true(V("\xed\x9f\xbf"));             /* U+D7FF */
	assert_true(V("\xee\x80\x80"));             /* U+E000 */
	assert_true(V("\xef\xbf\xbf"));             /* U+FFFF */
	assert_true(V("\xf0\x90\x80\x80"));         /* U+10000 */
	assert_true(V("\xf4\x8f\xbf\xbf"));         /* U+10FFFF */
	assert_true(V("Zaz\xc3\xb3\xc5\x82\xc4\x87 g\xc4\x99\xc5\x9bl\xc4\x85 ja\xc5\xba\xc5\x84"));
	assert_false(V("\xc0\x80"));
	assert_false(V("\xe0\x9f\xbf"));            /* overlong U+07FF */
	assert_false(V("\xf0\x8f\xbf\xbf"));        /* overlong U+FFFF */
	assert_false(V("\xed\xa0\x80"));
	assert_false(V("\xf4\x90\x80\x80"));
	assert_false(V("\xf5\x80\x80\x80"));
	assert_false(V("\xc2"));
	assert_false(V("\xe0\xa0"));
	assert_false(V("\xf0\x90\x80"));
	assert_false(V("a\xc2"));
	assert_false(V("\xc2\x41"));
	assert_false(V("\xe0\xa0\x41"));
	assert_false(V("\xff"));
#undef V
	/* a valid sequence cut by len */
	assert_false(tc_utf8_valid("\xe2\x82\xac", 2));
	assert_true(tc_utf8_valid("\xe2\x82\xac", 3));
	/* NUL is a valid code point */
	assert_true(tc_utf8_valid("a\0b", 3));
}

/* ---- not an event ---- */

static void test_not_an_object(void **state)
{
	(void)state;
	bad("not json", "JSON");
	bad("{", "JSON");
	bad("{\"id\":1,\"type\":\"panic\",}", "JSON");
	bad("[{\"id\":1,\"type\":\"panic\"}]", "object");
	/* JSON, but not an object: jansson's own message ("'[' or '{' expected") is fine */
	bad("\"panic\"", NULL);
	bad("42", NULL);
	bad("null", NULL);
	bad("{\"id\":1,\"type\":\"panic\"} x", "JSON");
	bad("{\"id\":1,\"type\":\"panic\"}{}", "JSON");
	bad("{\"id\":1,\"id\":2,\"type\":\"panic\"}", NULL);
	bad("{\"id\":1,\"type\":\"panic\",\"type\":\"fall\"}", NULL);
	bad("{\"id\":1,\"type\":\"panic\",\"x\":{\"a\":1,\"a\":2}}", NULL);
	bad("{'id':1,'type':'panic'}", "JSON");
	bad("{\"id\":1,\"type\":\"panic\",\"x\":NaN}", "JSON");
	/* embedded NUL bytes */
	bad_bytes("{\"id\":1,\"type\":\"panic\"}\0", 24, NULL);
	bad_bytes("{\"id\":1,\0\"type\":\"panic\"}", 24, NULL);
	bad("{\"id\":1,\"type\":\"panic\",\"text\":\"a\\u0000b\"}", NULL);
}

static void test_error_messages_printable(void **state)
{
	(void)state;
	/* errors go into JSON receipts and log lines: no raw bytes from the payload */
	bad("{\"id\":1,\"type\":\"\xc5\x9b\\u0007\"}", "type");
	for (const char *p = err; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	bad("{\"id\":1,\"type\":\"panic\" \x01}", "JSON");
	for (const char *p = err; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	/* a small error buffer is truncated, not overrun */
	char small[8];
	memset(small, 'Z', sizeof(small));
	const char *s = "{\"id\":1}";
	assert_int_equal(tc_event_decode(s, strlen(s), MAX, &ev, NULL, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* ---- small helpers ---- */

static void test_device_id_valid(void **state)
{
	(void)state;
#define D(lit) tc_device_id_valid(lit, strlen(lit))
	assert_true(D("pendant-0042"));
	assert_true(D("A.b_c-9"));
	assert_true(D("x"));
	assert_true(D("0123456789012345678901234567890123456789012345678901234567890123"));
	assert_false(D("01234567890123456789012345678901234567890123456789012345678901234"));
	assert_false(D(""));
	assert_false(D("a/b"));
	assert_false(D("a+b"));
	assert_false(D("a#"));
	assert_false(D("a b"));
	assert_false(D("caf\xc3\xa9"));
#undef D
	assert_false(tc_device_id_valid("ab\0c", 4));
	assert_true(tc_device_id_valid("abc/def", 3));
}

static void test_sanitize(void **state)
{
	(void)state;
	char out[16];
	assert_string_equal(tc_sanitize("abc", 3, out, sizeof(out)), "abc");
	assert_string_equal(tc_sanitize("a\nb\xc5\x9b", 5, out, sizeof(out)), "a?b??");
	assert_string_equal(tc_sanitize("", 0, out, sizeof(out)), "");
	const char *longs = "abcdefghijklmnopqrstuvwxyz";
	tc_sanitize(longs, strlen(longs), out, sizeof(out));
	assert_int_equal(strlen(out), sizeof(out) - 1);
	assert_string_equal(out + strlen(out) - 3, "...");
	assert_int_equal(strncmp(out, longs, sizeof(out) - 4), 0);
	/* exactly fitting input is not cut */
	assert_string_equal(tc_sanitize(longs, 15, out, sizeof(out)), "abcdefghijklmno");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_string_id),
		cmocka_unit_test(test_minimal_integer_id),
		cmocka_unit_test(test_whitespace_and_order),
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_internal_type_refused),
		cmocka_unit_test(test_unknown_fields_kept),
		cmocka_unit_test(test_null_optional_fields_are_absent),
		cmocka_unit_test(test_id_rules),
		cmocka_unit_test(test_id_key_canonical),
		cmocka_unit_test(test_id_key_escaped_64),
		cmocka_unit_test(test_id_out),
		cmocka_unit_test(test_type_rules),
		cmocka_unit_test(test_ts),
		cmocka_unit_test(test_battery),
		cmocka_unit_test(test_rssi),
		cmocka_unit_test(test_test_flag),
		cmocka_unit_test(test_loc),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_size_limit),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_error_messages_printable),
		cmocka_unit_test(test_device_id_valid),
		cmocka_unit_test(test_sanitize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
