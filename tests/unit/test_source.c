/* Sources (issue 4): the rule syntax and the zigbee2mqtt, ChirpStack v4 and
 * The Things Stack v3 decoders (common/source.c), on sample messages written
 * from each format's public documentation. Every event a decoder produces
 * must pass the SPEC 2.1 decoder (tc_event_decode). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "telecare/event.h"
#include "telecare/source.h"

#define NOW 1772702047123LL  /* 2026-03-05T09:14:07.123Z */

static char err[256];
static char addr[TC_ADDRESS_MAX];
static json_t *events;

/* A source of the given format with rules parsed from text (asserting each
 * parses); NULL-terminated list. */
static struct tc_source *source(enum tc_source_format f, const char *topic, ...)
{
	struct tc_source *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->name = strdup("test-src");
	s->format = f;
	s->topic = topic ? strdup(topic) : NULL;
	va_list ap;
	va_start(ap, topic);
	for (const char *r; (r = va_arg(ap, const char *));) {
		s->rules = realloc(s->rules, (s->n_rules + 1) * sizeof(*s->rules));
		assert_non_null(s->rules);
		if (tc_rule_parse(r, &s->rules[s->n_rules], err, sizeof(err)) != 0)
			fail_msg("rule \"%s\" did not parse: %s", r, err);
		s->n_rules++;
	}
	va_end(ap);
	return s;
}

static void source_free(struct tc_source *s)
{
	for (size_t i = 0; i < s->n_rules; i++)
		tc_rule_clear(&s->rules[i]);
	free(s->rules);
	free(s->name);
	free(s->topic);
	free(s);
}

static int dec_at(const struct tc_source *s, const char *topic, const char *payload, size_t len,
                  int64_t now)
{
	err[0] = '\0';
	memset(addr, 'x', sizeof(addr));
	events = (json_t *)&events;  /* must be overwritten */
	return tc_source_decode(s, topic, payload, len, now, addr, sizeof(addr), &events, err,
	                        sizeof(err));
}

static int dec(const struct tc_source *s, const char *topic, const char *payload)
{
	return dec_at(s, topic, payload, strlen(payload), NOW);
}

/* Every event must decode as SPEC 2.1 and name its source and address. */
static void check_events(const char *address)
{
	size_t i;
	json_t *e;
	assert_true(json_is_array(events));
	json_array_foreach(events, i, e) {
		char *text = json_dumps(e, JSON_COMPACT);
		assert_non_null(text);
		struct tc_event ev;
		char eerr[256];
		if (tc_event_decode(text, strlen(text), TC_PAYLOAD_DEFAULT, &ev, NULL, eerr, sizeof(eerr)))
			fail_msg("event %s is not SPEC 2.1: %s", text, eerr);
		assert_string_equal(json_string_value(json_object_get(e, "address")), address);
		assert_string_equal(json_string_value(json_object_get(e, "source")), "test-src");
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(json_string_value(json_object_get(json_array_get(events, k), "id")),
			                        json_string_value(json_object_get(e, "id")));
		tc_event_clear(&ev);
		free(text);
	}
}

/* Expect rc 0, the address, n events, all valid. */
static void ok(int rc, const char *address, size_t n)
{
	if (rc != 0)
		fail_msg("expected 0, got %d: %s", rc, err);
	assert_string_equal(addr, address);
	check_events(address);
	if (json_array_size(events) != n) {
		char *t = json_dumps(events, 0);
		fail_msg("expected %zu events, got %s", n, t);
	}
}

static void ignored(int rc)
{
	if (rc != 1)
		fail_msg("expected 1 (ignored), got %d (%s)", rc, err);
	assert_null(events);
	assert_string_equal(addr, "");
}

static void bad(int rc, const char *mention)
{
	if (rc != -1) {
		char *t = rc == 0 ? json_dumps(events, 0) : NULL;
		fail_msg("expected -1, got %d %s", rc, t ? t : "");
	}
	assert_null(events);
	assert_true(strlen(err) > 0);
	if (mention && !strstr(err, mention))
		fail_msg("error \"%s\" does not mention \"%s\"", err, mention);
}

static json_t *ev_at(size_t i)
{
	return json_array_get(events, i);
}

static const char *str(size_t i, const char *key)
{
	return json_string_value(json_object_get(ev_at(i), key));
}

static json_int_t num(size_t i, const char *key)
{
	json_t *v = json_object_get(ev_at(i), key);
	if (!json_is_integer(v))
		fail_msg("event %zu has no integer \"%s\"", i, key);
	return json_integer_value(v);
}

static void done(void)
{
	json_decref(events);
	events = NULL;
}

/* ---- formats and rules ---- */

static void test_formats(void **state)
{
	(void)state;
	assert_string_equal(tc_source_format_name(TC_SRC_ZIGBEE2MQTT), "zigbee2mqtt");
	assert_string_equal(tc_source_format_name(TC_SRC_CHIRPSTACK), "chirpstack");
	assert_string_equal(tc_source_format_name(TC_SRC_TTN), "ttn");
	assert_int_equal(tc_source_format_from_name("zigbee2mqtt"), TC_SRC_ZIGBEE2MQTT);
	assert_int_equal(tc_source_format_from_name("chirpstack"), TC_SRC_CHIRPSTACK);
	assert_int_equal(tc_source_format_from_name("ttn"), TC_SRC_TTN);
	assert_int_equal(tc_source_format_from_name("lorawan"), -1);
	assert_int_equal(tc_source_format_from_name("TTN"), -1);
	assert_int_equal(tc_source_format_from_name(""), -1);
	assert_string_equal(tc_source_default_topic(TC_SRC_ZIGBEE2MQTT), "zigbee2mqtt/#");
	assert_string_equal(tc_source_default_topic(TC_SRC_CHIRPSTACK), "application/+/device/+/event/up");
	assert_string_equal(tc_source_default_topic(TC_SRC_TTN), "v3/+/devices/+/up");
}

static void rule_ok(const char *text, const char *field, const char *value, enum tc_type type)
{
	struct tc_rule r;
	if (tc_rule_parse(text, &r, err, sizeof(err)) != 0)
		fail_msg("rule \"%s\" rejected: %s", text, err);
	assert_string_equal(r.field, field);
	assert_string_equal(r.value, value);
	assert_int_equal(r.type, type);
	tc_rule_clear(&r);
	assert_null(r.field);
	assert_null(r.value);
}

static void rule_bad(const char *text, const char *mention)
{
	struct tc_rule r;
	err[0] = '\0';
	if (tc_rule_parse(text, &r, err, sizeof(err)) == 0)
		fail_msg("rule \"%s\" accepted", text);
	assert_null(r.field);
	assert_null(r.value);
	assert_true(strlen(err) > 0);
	if (mention && !strstr(err, mention))
		fail_msg("error for \"%s\" is \"%s\", which does not mention %s", text, err, mention);
	tc_rule_clear(&r);  /* harmless after a failure */
}

static void test_rule_parse(void **state)
{
	(void)state;
	rule_ok("action=emergency -> panic", "action", "emergency", TC_T_PANIC);
	rule_ok("sos=true -> panic", "sos", "true", TC_T_PANIC);
	rule_ok("button_event.status=short press -> panic", "button_event.status", "short press",
	        TC_T_PANIC);
	rule_ok("  tamper = true  ->  tamper  ", "tamper", "true", TC_T_TAMPER);
	rule_ok("battery_low=true->low_battery", "battery_low", "true", TC_T_LOW_BATTERY);
	rule_ok("\tcontact=false\t->\tdoor", "contact", "false", TC_T_DOOR);
	/* the first '=' and the last "->" split: VALUE may hold both */
	rule_ok("mode=a=b -> fall", "mode", "a=b", TC_T_FALL);
	rule_ok("state=on->off -> heartbeat", "state", "on->off", TC_T_HEARTBEAT);
	rule_ok("r\xc3\xa9sum\xc3\xa9=Notruf ausgel\xc3\xb6st -> medical", "r\xc3\xa9sum\xc3\xa9",
	        "Notruf ausgel\xc3\xb6st", TC_T_MEDICAL);
	rule_ok("count=0 -> connection_restored", "count", "0", TC_T_CONNECTION_RESTORED);
}

static void test_rule_errors(void **state)
{
	(void)state;
	rule_bad("action emergency -> panic", "=");
	rule_bad("action=emergency panic", "->");
	rule_bad("action=emergency", "->");
	rule_bad("action=emergency -> emergency", "unknown event type \"emergency\"");
	rule_bad("action=emergency -> Panic", "unknown event type \"Panic\"");
	rule_bad("action=emergency -> panic fall", "unknown event type");
	rule_bad("action=emergency -> a-type-name-that-is-far-too-long-to-be-one", "unknown event type");
	rule_bad("action=emergency -> ", "no TYPE");
	rule_bad("=emergency -> panic", "empty FIELD");
	rule_bad("action= -> panic", "empty VALUE");
	rule_bad("action=   -> panic", "empty VALUE");
	rule_bad("button_event..status=x -> panic", "dots");
	rule_bad(".status=x -> panic", "dots");
	rule_bad("status.=x -> panic", "dots");
	rule_bad("act\x01ion=x -> panic", "control");
	rule_bad("action=x\x7fy -> panic", "control");
	rule_bad("action=\xff -> panic", "UTF-8");
	rule_bad("", NULL);
	rule_bad("->", NULL);
	rule_bad(NULL, NULL);

	char big[512];
	memset(big, 'a', sizeof(big));
	snprintf(big + 201, sizeof(big) - 201, "=x -> panic");
	rule_bad(big, "longer");
	memset(big, 'a', sizeof(big));
	big[0] = 'f';
	big[1] = '=';
	snprintf(big + 203, sizeof(big) - 203, " -> panic");
	rule_bad(big, "longer");
}

/* ---- zigbee2mqtt ---- */

/* HEIMAN HS1EB: its converter publishes action single/double/hold. */
static const char *hs1eb = "{\"action\":\"single\",\"battery\":87,\"linkquality\":120}";

static void test_z2m_button(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/#", "action=emergency -> panic",
	                             "action=single -> panic", NULL);
	ok(dec(s, "zigbee2mqtt/pendant-flat-12", hs1eb), "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "panic");
	assert_int_equal(num(0, "battery"), 87);
	assert_int_equal(num(0, "linkquality"), 120);
	assert_null(json_object_get(ev_at(0), "rssi"));  /* LQI is not dBm */
	assert_string_equal(str(0, "rule"), "action=single");
	const char *id = str(0, "id");
	assert_true(strncmp(id, "z2m-", 4) == 0);
	char want_tail[32];
	snprintf(want_tail, sizeof(want_tail), "-%lld", (long long)(NOW / 10000));
	assert_string_equal(id + strlen(id) - strlen(want_tail), want_tail);
	char first[TC_EVENT_ID_MAX + 1];
	snprintf(first, sizeof(first), "%s", id);
	done();

	/* the same message again within the window: the same id (a duplicate) */
	ok(dec_at(s, "zigbee2mqtt/pendant-flat-12", hs1eb, strlen(hs1eb), NOW / 10000 * 10000 + 9999),
	   "pendant-flat-12", 1);
	assert_string_equal(str(0, "id"), first);
	done();
	/* a minute later it is a new press */
	ok(dec_at(s, "zigbee2mqtt/pendant-flat-12", hs1eb, strlen(hs1eb), NOW + 60000),
	   "pendant-flat-12", 1);
	assert_string_not_equal(str(0, "id"), first);
	done();
	/* another device, same payload: another id */
	ok(dec(s, "zigbee2mqtt/pendant-flat-13", hs1eb), "pendant-flat-13", 1);
	assert_string_not_equal(str(0, "id"), first);
	done();

	/* the emergency rule */
	ok(dec(s, "zigbee2mqtt/pendant-flat-12", "{\"action\":\"emergency\",\"battery\":87}"),
	   "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "panic");
	assert_string_equal(str(0, "rule"), "action=emergency");
	done();

	/* double press, hold, and the empty action that follows: no rule, unmapped */
	ok(dec(s, "zigbee2mqtt/pendant-flat-12", "{\"action\":\"double\",\"battery\":87,\"linkquality\":96}"),
	   "pendant-flat-12", 0);
	done();
	ok(dec(s, "zigbee2mqtt/pendant-flat-12", "{\"action\":\"\",\"battery\":87,\"linkquality\":96}"),
	   "pendant-flat-12", 0);
	done();
	ok(dec(s, "zigbee2mqtt/pendant-flat-12", "{}"), "pendant-flat-12", 0);
	done();
	source_free(s);
}

static void test_z2m_smoke(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, NULL, "smoke=true -> smoke",
	                             "tamper=true -> tamper", "battery_low=true -> low_battery", NULL);
	const char *t = "zigbee2mqtt/smoke-kitchen-12";
	ok(dec(s, t, "{\"smoke\":true,\"battery_low\":false,\"tamper\":false,\"battery\":100,"
	             "\"linkquality\":72}"), "smoke-kitchen-12", 1);
	assert_string_equal(str(0, "type"), "smoke");
	assert_int_equal(num(0, "battery"), 100);
	done();

	ok(dec(s, t, "{\"smoke\":false,\"battery_low\":false,\"tamper\":false}"), "smoke-kitchen-12", 0);
	done();

	/* several rules match: one event each, in rule order, ids told apart */
	ok(dec(s, t, "{\"smoke\":true,\"battery_low\":true,\"tamper\":true,\"battery\":8}"),
	   "smoke-kitchen-12", 3);
	assert_string_equal(str(0, "type"), "smoke");
	assert_string_equal(str(1, "type"), "tamper");
	assert_string_equal(str(2, "type"), "low_battery");
	const char *id0 = str(0, "id"), *id2 = str(2, "id");
	assert_string_equal(id0 + strlen(id0) - 2, "-0");
	assert_string_equal(id2 + strlen(id2) - 2, "-2");
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(num(i, "battery"), 8);
	done();

	ok(dec(s, t, "{\"smoke\":false,\"battery_low\":true,\"tamper\":false}"), "smoke-kitchen-12", 1);
	assert_string_equal(str(0, "type"), "low_battery");
	done();

	/* "true" as a string compares as text too; TRUE does not */
	ok(dec(s, t, "{\"smoke\":\"true\"}"), "smoke-kitchen-12", 1);
	done();
	ok(dec(s, t, "{\"smoke\":\"TRUE\"}"), "smoke-kitchen-12", 0);
	done();
	ok(dec(s, t, "{\"smoke\":1}"), "smoke-kitchen-12", 0);
	done();
	source_free(s);
}

static void test_z2m_battery_linkquality(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, NULL, "sos=true -> panic", NULL);
	const char *t = "zigbee2mqtt/sos";
	static const struct { const char *payload; int battery; int lqi; } cases[] = {
		{ "{\"sos\":true,\"battery\":0,\"linkquality\":0}", 0, 0 },
		{ "{\"sos\":true,\"battery\":100,\"linkquality\":255}", 100, 255 },
		{ "{\"sos\":true,\"battery\":101,\"linkquality\":256}", -1, -1 },
		{ "{\"sos\":true,\"battery\":-1,\"linkquality\":-1}", -1, -1 },
		{ "{\"sos\":true,\"battery\":255}", -1, -1 },   /* zigbee's "unknown" */
		{ "{\"sos\":true,\"battery\":87.6,\"linkquality\":99.4}", 88, 99 },
		{ "{\"sos\":true,\"battery\":\"87\",\"linkquality\":\"120\"}", -1, -1 },
		{ "{\"sos\":true,\"battery\":null,\"linkquality\":true}", -1, -1 },
		{ "{\"sos\":true,\"battery\":{\"v\":1},\"linkquality\":[1]}", -1, -1 },
		{ "{\"sos\":true,\"battery\":1e300}", -1, -1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ok(dec(s, t, cases[i].payload), "sos", 1);
		json_t *b = json_object_get(ev_at(0), "battery"), *l = json_object_get(ev_at(0), "linkquality");
		if (cases[i].battery < 0)
			assert_null(b);
		else
			assert_int_equal(json_integer_value(b), cases[i].battery);
		if (cases[i].lqi < 0)
			assert_null(l);
		else
			assert_int_equal(json_integer_value(l), cases[i].lqi);
		done();
	}
	/* an integer beyond 64 bits is beyond the JSON parser */
	bad(dec(s, t, "{\"sos\":true,\"battery\":99999999999999999999}"), "too big integer");
	source_free(s);
}

static void test_z2m_availability(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/#", "action=single -> panic", NULL);
	const char *t = "zigbee2mqtt/pendant-flat-12/availability";

	ok(dec(s, t, "{\"state\":\"offline\"}"), "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "connection_lost");
	assert_null(json_object_get(ev_at(0), "rule"));
	assert_true(strncmp(str(0, "id"), "z2m-", 4) == 0);
	done();
	ok(dec(s, t, "{\"state\":\"online\"}"), "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "connection_restored");
	done();
	/* legacy_availability_payload: plain text */
	ok(dec(s, t, "offline"), "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "connection_lost");
	done();
	ok(dec(s, t, "online"), "pendant-flat-12", 1);
	assert_string_equal(str(0, "type"), "connection_restored");
	done();
	ok(dec(s, t, " offline\n"), "pendant-flat-12", 1);
	done();

	bad(dec(s, t, "{\"state\":\"asleep\"}"), "state");
	bad(dec(s, t, "{\"state\":false}"), "state");
	bad(dec(s, t, "{}"), "state");
	bad(dec(s, t, "OFFLINE"), "availability");
	bad(dec(s, t, "[\"offline\"]"), "availability");
	/* an empty retained message is zigbee2mqtt clearing it: nothing */
	ignored(dec(s, t, ""));
	source_free(s);
}

static void test_z2m_topics(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/#", "action=single -> panic", NULL);

	/* friendly names may contain '/' */
	ok(dec(s, "zigbee2mqtt/flat 12/hall/sos button", hs1eb), "flat 12/hall/sos button", 1);
	done();
	ok(dec(s, "zigbee2mqtt/flat 12/hall/sos button/availability", "{\"state\":\"offline\"}"),
	   "flat 12/hall/sos button", 1);
	assert_string_equal(str(0, "type"), "connection_lost");
	done();
	/* the IEEE address as the name, non-ASCII names */
	ok(dec(s, "zigbee2mqtt/0x00124b0022a5c8e1", hs1eb), "0x00124b0022a5c8e1", 1);
	done();
	ok(dec(s, "zigbee2mqtt/Wohnung 3/Notrufknopf K\xc3\xbc" "che", hs1eb),
	   "Wohnung 3/Notrufknopf K\xc3\xbc" "che", 1);
	done();

	/* the bridge and commands to devices are not device state */
	ignored(dec(s, "zigbee2mqtt/bridge/state", "{\"state\":\"online\"}"));
	ignored(dec(s, "zigbee2mqtt/bridge/state", "online"));
	ignored(dec(s, "zigbee2mqtt/bridge/info", "{\"version\":\"1.35.3\"}"));
	ignored(dec(s, "zigbee2mqtt/bridge/devices", "[]"));
	ignored(dec(s, "zigbee2mqtt/bridge/event", "{\"type\":\"device_joined\"}"));
	ignored(dec(s, "zigbee2mqtt/bridge/logging", "{\"level\":\"info\"}"));
	ignored(dec(s, "zigbee2mqtt/bridge/request/permit_join", "{\"value\":true}"));
	ignored(dec(s, "zigbee2mqtt/bridge", "x"));
	ignored(dec(s, "zigbee2mqtt/pendant-flat-12/set", "{\"state\":\"ON\"}"));
	ignored(dec(s, "zigbee2mqtt/pendant-flat-12/get", "{\"state\":\"\"}"));
	ignored(dec(s, "zigbee2mqtt/pendant-flat-12/set/state", "ON"));
	ignored(dec(s, "zigbee2mqtt/pendant-flat-12/get/state", ""));
	ignored(dec(s, "zigbee2mqtt/flat 12/hall/plug/l1/set", "{\"state\":\"ON\"}"));
	ignored(dec(s, "zigbee2mqtt", hs1eb));
	/* a device's state with an empty payload: a retained message cleared */
	ignored(dec(s, "zigbee2mqtt/pendant-flat-12", ""));
	/* "bridgework" is a device, not the bridge */
	ok(dec(s, "zigbee2mqtt/bridgework", hs1eb), "bridgework", 1);
	done();

	/* another base, also one with a '+' level */
	struct tc_source *s2 = source(TC_SRC_ZIGBEE2MQTT, "site/z2m/#", "action=single -> panic", NULL);
	ok(dec(s2, "site/z2m/pendant-7", hs1eb), "pendant-7", 1);
	done();
	ignored(dec(s2, "site/z2m/bridge/state", "online"));
	bad(dec(s2, "zigbee2mqtt/pendant-7", hs1eb), "not under");
	bad(dec(s2, "site/pendant-7", hs1eb), "not under");
	source_free(s2);
	s2 = source(TC_SRC_ZIGBEE2MQTT, "+/zigbee2mqtt/#", "action=single -> panic", NULL);
	ok(dec(s2, "house-4/zigbee2mqtt/pendant-7", hs1eb), "pendant-7", 1);
	done();
	ignored(dec(s2, "house-4/zigbee2mqtt/bridge/state", "online"));
	source_free(s2);
	s2 = source(TC_SRC_ZIGBEE2MQTT, "#", "action=single -> panic", NULL);
	ok(dec(s2, "pendant-7", hs1eb), "pendant-7", 1);
	done();
	source_free(s2);
	source_free(s);
}

static void test_z2m_hostile(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, NULL, "action=single -> panic",
	                             "a.b.c.d=1 -> fall", NULL);
	const char *t = "zigbee2mqtt/pendant";

	bad(dec(s, t, "single"), "JSON");
	bad(dec(s, t, "[1,2]"), "not a JSON object");
	bad(dec(s, t, "\"single\""), "not a JSON object");
	bad(dec(s, t, "{\"action\":\"single\""), "JSON");
	bad(dec(s, t, "{\"action\":\"single\",\"action\":\"double\"}"), "JSON");
	bad(dec_at(s, t, "{\"action\":\"\xc3\x28\"}", 15, NOW), "UTF-8");
	bad(dec_at(s, t, "{\"action\":\"single\"}\0x", 21, NOW), NULL);
	/* the topic and the name are checked too */
	bad(dec(s, "zigbee2mqtt/pend\xff", hs1eb), "UTF-8");
	bad(dec(s, "zigbee2mqtt/pend\x01" "ant", hs1eb), "control");
	ignored(dec(s, "zigbee2mqtt/", hs1eb));  /* no name: nobody's state */
	bad(dec(s, "zigbee2mqtt//availability", "offline"), "empty");

	/* nesting deeper than the JSON parser allows */
	size_t depth = 100000;
	char *deep = malloc(2 * depth + 1);
	assert_non_null(deep);
	memset(deep, '[', depth);
	memset(deep + depth, ']', depth);
	bad(dec_at(s, t, deep, 2 * depth, NOW), "JSON");
	free(deep);

	/* nesting the parser accepts: the rule path just walks it */
	ok(dec(s, t, "{\"a\":{\"b\":{\"c\":{\"d\":1}}}}"), "pendant", 1);
	assert_string_equal(str(0, "type"), "fall");
	done();
	ok(dec(s, t, "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}"), "pendant", 0);
	done();
	ok(dec(s, t, "{\"a\":{\"b\":\"c\"}}"), "pendant", 0);
	done();
	ok(dec(s, t, "{\"a\":[{\"b\":1}]}"), "pendant", 0);
	done();

	/* a huge string value is carried nowhere */
	size_t n = 200000;
	char *huge = malloc(n + 64);
	assert_non_null(huge);
	int k = snprintf(huge, n + 64, "{\"action\":\"single\",\"x\":\"");
	memset(huge + k, 'a', n - (size_t)k - 2);
	memcpy(huge + n - 2, "\"}", 3);
	ok(dec_at(s, t, huge, n, NOW), "pendant", 1);
	char *text = json_dumps(ev_at(0), JSON_COMPACT);
	assert_true(strlen(text) < 512);
	free(text);
	done();
	free(huge);

	/* past the payload limit */
	size_t big = 300000;
	char *p = malloc(big);
	assert_non_null(p);
	memset(p, ' ', big);
	memcpy(p, "{}", 2);
	bad(dec_at(s, t, p, big, NOW), "too large");
	free(p);

	/* addresses up to 255 bytes pass, longer ones do not */
	char topic[400] = "zigbee2mqtt/";
	size_t base = strlen(topic);
	memset(topic + base, 'n', 255);
	topic[base + 255] = '\0';
	ok(dec(s, topic, hs1eb), topic + base, 1);
	done();
	topic[base + 255] = 'n';
	topic[base + 256] = '\0';
	bad(dec(s, topic, hs1eb), "longer than 255");
	/* and never more than the caller's buffer */
	char small[8];
	json_t *evs = NULL;
	assert_int_equal(tc_source_decode(s, "zigbee2mqtt/pendant-flat-12", hs1eb, strlen(hs1eb), NOW,
	                                  small, sizeof(small), &evs, err, sizeof(err)), -1);
	assert_null(evs);
	assert_string_equal(small, "");
	assert_int_equal(tc_source_decode(s, "zigbee2mqtt/pendant", hs1eb, strlen(hs1eb), NOW,
	                                  small, sizeof(small), &evs, err, sizeof(err)), 0);
	assert_string_equal(small, "pendant");
	json_decref(evs);
	source_free(s);
}

static void test_values(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, NULL, "n=1 -> panic", "t=21.5 -> temperature",
	                             "z=null -> heartbeat", "o=1 -> fall", "neg=-3 -> gas", NULL);
	const char *t = "zigbee2mqtt/x";
	ok(dec(s, t, "{\"n\":1}"), "x", 1);
	done();
	ok(dec(s, t, "{\"n\":1.0}"), "x", 1);
	done();
	ok(dec(s, t, "{\"n\":\"1\"}"), "x", 1);
	done();
	ok(dec(s, t, "{\"n\":10}"), "x", 0);
	done();
	ok(dec(s, t, "{\"n\":true}"), "x", 0);
	done();
	ok(dec(s, t, "{\"t\":21.5}"), "x", 1);
	assert_string_equal(str(0, "type"), "temperature");
	done();
	ok(dec(s, t, "{\"t\":2.15e1}"), "x", 1);
	done();
	ok(dec(s, t, "{\"t\":21.4}"), "x", 0);
	done();
	ok(dec(s, t, "{\"z\":null}"), "x", 1);
	done();
	ok(dec(s, t, "{}"), "x", 0);  /* missing is not null, nor 0 outside ttn */
	done();
	ok(dec(s, t, "{\"o\":{\"v\":1}}"), "x", 0);
	done();
	ok(dec(s, t, "{\"o\":[1]}"), "x", 0);
	done();
	ok(dec(s, t, "{\"neg\":-3}"), "x", 1);
	done();
	bad(dec(s, t, "{\"n\":\"1\\u0000\"}"), "\\u0000");  /* NUL in a string: rejected */
	source_free(s);
}

/* ---- ChirpStack v4 ---- */

/* A Milesight WS101 SOS button's uplink through the v4 MQTT integration
 * (JSON encoding), event "up". */
static const char *ws101 =
	"{\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\","
	"\"time\":\"2026-03-05T09:14:07.231114+00:00\","
	"\"deviceInfo\":{\"tenantId\":\"52f14cd4-c6f1-4fbd-8f87-4025e1d49242\",\"tenantName\":\"ChirpStack\","
	"\"applicationId\":\"17c82e96-be03-4f38-aef3-f83d48582d97\",\"applicationName\":\"telecare\","
	"\"deviceProfileId\":\"14855bf7-d10d-4aee-b618-ebfcb64dc7ad\",\"deviceProfileName\":\"Milesight WS101\","
	"\"deviceName\":\"ws101-flat-12\",\"devEui\":\"24e124756d245831\",\"deviceClassEnabled\":\"CLASS_A\","
	"\"tags\":{\"flat\":\"12\"}},"
	"\"devAddr\":\"01f2a3b4\",\"adr\":true,\"dr\":5,\"fCnt\":118,\"fPort\":85,\"confirmed\":false,"
	"\"data\":\"AXVa/y4B\","
	"\"object\":{\"button_event\":{\"status\":\"short press\"},\"battery\":90},"
	"\"rxInfo\":[{\"gatewayId\":\"0016c001f153a14c\",\"uplinkId\":4217106255,\"rssi\":-101,\"snr\":2.5,"
	"\"channel\":2,\"context\":\"E3OWOQ==\",\"metadata\":{\"region_common_name\":\"EU868\","
	"\"region_config_id\":\"eu868\"},\"crcStatus\":\"CRC_OK\"},"
	"{\"gatewayId\":\"0016c001f1500812\",\"uplinkId\":212355,\"rssi\":-87,\"snr\":9.0,\"channel\":2,"
	"\"context\":\"AQHIfA==\",\"metadata\":{\"region_common_name\":\"EU868\","
	"\"region_config_id\":\"eu868\"},\"crcStatus\":\"CRC_OK\"}],"
	"\"txInfo\":{\"frequency\":868300000,\"modulation\":{\"lora\":{\"bandwidth\":125000,"
	"\"spreadingFactor\":7,\"codeRate\":\"CR_4_5\"}}}}";

#define CS_UP "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124756d245831/event/up"
#define CS_EV(e) "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124756d245831/event/" e

/* ws101 with one substring replaced */
static char *edit(const char *in, const char *from, const char *to)
{
	const char *at = strstr(in, from);
	assert_non_null(at);
	size_t n = strlen(in) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);
	assert_non_null(out);
	snprintf(out, n, "%.*s%s%s", (int)(at - in), in, to, at + strlen(from));
	return out;
}

static void test_chirpstack_ws101(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_CHIRPSTACK, NULL,
	                             "button_event.status=short press -> panic", NULL);
	ok(dec(s, CS_UP, ws101), "24e124756d245831", 1);
	assert_string_equal(str(0, "type"), "panic");
	assert_string_equal(str(0, "id"), "5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11");
	assert_int_equal(num(0, "battery"), 90);
	assert_int_equal(num(0, "rssi"), -87);
	assert_string_equal(str(0, "rule"), "button_event.status=short press");
	assert_null(json_object_get(ev_at(0), "linkquality"));
	done();

	/* the id does not depend on the receive time */
	ok(dec_at(s, CS_UP, ws101, strlen(ws101), NOW + 3600000), "24e124756d245831", 1);
	assert_string_equal(str(0, "id"), "5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11");
	done();

	/* a DevEUI in capitals is normalised */
	char *p = edit(ws101, "\"devEui\":\"24e124756d245831\"", "\"devEui\":\"24E124756D245831\"");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	free(p);
	done();

	/* a long press matches no rule: unmapped */
	p = edit(ws101, "short press", "long press");
	ok(dec(s, CS_UP, p), "24e124756d245831", 0);
	free(p);
	done();

	/* no codec: no object, unmapped */
	p = edit(ws101, "\"object\":{\"button_event\":{\"status\":\"short press\"},\"battery\":90},", "");
	ok(dec(s, CS_UP, p), "24e124756d245831", 0);
	free(p);
	done();
	p = edit(ws101, "\"object\":{\"button_event\":{\"status\":\"short press\"},\"battery\":90}",
	         "\"object\":null");
	ok(dec(s, CS_UP, p), "24e124756d245831", 0);
	free(p);
	done();

	/* no rxInfo, or RSSI that is not a number: no rssi */
	p = edit(ws101, "\"rssi\":-87", "\"rssi\":\"-87\"");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	assert_int_equal(num(0, "rssi"), -101);
	free(p);
	done();
	p = edit(ws101, "\"rxInfo\":[", "\"rxInfoX\":[");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	assert_null(json_object_get(ev_at(0), "rssi"));
	free(p);
	done();
	p = edit(ws101, "\"battery\":90", "\"battery\":900");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	assert_null(json_object_get(ev_at(0), "battery"));
	free(p);
	done();
	source_free(s);
}

static void test_chirpstack_several_rules(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_CHIRPSTACK, "application/+/device/+/event/+",
	                             "button_event.status=long press -> fall",
	                             "button_event.status=short press -> panic", "battery=90 -> heartbeat",
	                             NULL);
	ok(dec(s, CS_UP, ws101), "24e124756d245831", 2);
	assert_string_equal(str(0, "type"), "panic");
	assert_string_equal(str(0, "id"), "5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11-1");
	assert_string_equal(str(1, "type"), "heartbeat");
	assert_string_equal(str(1, "id"), "5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11-2");
	done();
	source_free(s);
}

static void test_chirpstack_other_events(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_CHIRPSTACK, "application/+/device/+/event/+",
	                             "button_event.status=short press -> panic", NULL);
	ignored(dec(s, CS_EV("join"),
	            "{\"deduplicationId\":\"c9dbe358-2578-4fb7-b295-66b44edc45a6\","
	            "\"time\":\"2026-03-05T09:10:00.000000+00:00\",\"deviceInfo\":{\"devEui\":\"24e124756d245831\"},"
	            "\"devAddr\":\"01f2a3b4\"}"));
	ignored(dec(s, CS_EV("status"),
	            "{\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c12\",\"deviceInfo\":"
	            "{\"devEui\":\"24e124756d245831\"},\"margin\":6,\"batteryLevel\":75.5}"));
	ignored(dec(s, CS_EV("ack"), "{\"queueItemId\":\"x\",\"acknowledged\":true}"));
	ignored(dec(s, CS_EV("txack"), "{\"downlinkId\":1}"));
	ignored(dec(s, CS_EV("log"), "{\"level\":\"ERROR\",\"code\":\"UPLINK_CODEC\"}"));
	ignored(dec(s, CS_EV("location"), "{}"));
	ignored(dec(s, CS_EV("integration"), "{}"));
	ignored(dec(s, "application/17c82e96/device/24e124756d245831/command/down", "{}"));
	source_free(s);
}

static void test_chirpstack_bad(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_CHIRPSTACK, NULL,
	                             "button_event.status=short press -> panic", NULL);
	/* protobuf encoding instead of JSON */
	static const char pb[] = "\x0a\x24\x35\x64\x39\x63\x12\x8a\x01\xff\xfe";
	bad(dec_at(s, CS_UP, pb, sizeof(pb) - 1, NOW), "json = true");
	bad(dec(s, CS_UP, ""), "empty");
	bad(dec(s, CS_UP, "[]"), "not a JSON object");
	bad(dec(s, CS_UP, "{\"object\":{}}"), "deviceInfo");

	static const struct { const char *from, *to, *mention; } cases[] = {
		{ "\"devEui\":\"24e124756d245831\"", "\"devEui\":\"24e124756d24583\"", "devEui" },
		{ "\"devEui\":\"24e124756d245831\"", "\"devEui\":\"24e124756d24583g\"", "devEui" },
		{ "\"devEui\":\"24e124756d245831\"", "\"devEui\":2638", "devEui" },
		{ "\"devEui\":\"24e124756d245831\"", "\"devEUI\":\"24e124756d245831\"", "devEui" },
		{ "\"deviceInfo\":{", "\"deviceInfo\":7,\"x\":{", "deviceInfo" },
		{ "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\"", "\"deduplicationId\":17",
		  "deduplicationId" },
		{ "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\"", "\"deduplicationId\":\"\"",
		  "deduplicationId" },
		{ "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\"",
		  "\"deduplicationId\":\"5d9c2c52 7a1e\"", "deduplicationId" },
		{ "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\"",
		  "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11-5d9c2c52-7a1e-4b8b\"",
		  "deduplicationId" },
		{ "\"object\":{\"button_event\":{\"status\":\"short press\"},\"battery\":90}",
		  "\"object\":\"short press\"", "object" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = edit(ws101, cases[i].from, cases[i].to);
		bad(dec(s, CS_UP, p), cases[i].mention);
		free(p);
	}

	/* without a deduplicationId the id is a hash of the message: a resend is
	 * a duplicate whenever it comes */
	char *p = edit(ws101, "\"deduplicationId\":\"5d9c2c52-7a1e-4b8b-9f0a-3b1b2f4a6c11\",", "");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	char id[TC_EVENT_ID_MAX + 1];
	snprintf(id, sizeof(id), "%s", str(0, "id"));
	assert_true(strncmp(id, "cs-", 3) == 0);
	done();
	ok(dec_at(s, CS_UP, p, strlen(p), NOW + 86400000), "24e124756d245831", 1);
	assert_string_equal(str(0, "id"), id);
	done();
	free(p);
	source_free(s);
}

/* ---- The Things Stack v3 ---- */

/* An uplink as TTS publishes it on v3/{app}@{tenant}/devices/{dev}/up. The
 * frame counter is 0, so f_cnt is left out; the second gateway reports
 * channel_rssi only. */
static const char *tts_up =
	"{\"end_device_ids\":{\"device_id\":\"pendant-0042\",\"application_ids\":"
	"{\"application_id\":\"telecare-city\"},\"dev_eui\":\"70B3D57ED005A1B2\","
	"\"join_eui\":\"0000000000000000\",\"dev_addr\":\"260B1234\"},"
	"\"correlation_ids\":[\"as:up:01HR2Y7A5Q0V0G8C2TQJ9N5M3K\",\"gs:uplink:01HR2Y7A4XJ3B2W6Y4Q8E5R1T0\"],"
	"\"received_at\":\"2026-03-05T09:14:07.512344985Z\","
	"\"uplink_message\":{\"session_key_id\":\"AY3kR8H8pX6yqv5H0A1b2Q==\",\"f_port\":10,"
	"\"frm_payload\":\"AUw=\",\"decoded_payload\":{\"sos\":true,\"battery\":76},"
	"\"rx_metadata\":[{\"gateway_ids\":{\"gateway_id\":\"gw-town-hall\",\"eui\":\"B827EBFFFE8B0A12\"},"
	"\"time\":\"2026-03-05T09:14:07.287364Z\",\"timestamp\":2463457000,\"rssi\":-112,"
	"\"channel_rssi\":-112,\"snr\":-3.25,\"uplink_token\":\"ChkKFwoLZ3ctdG93bi1oYWxs\","
	"\"received_at\":\"2026-03-05T09:14:07.301230411Z\"},"
	"{\"gateway_ids\":{\"gateway_id\":\"gw-library\"},\"channel_rssi\":-95,\"snr\":7.5}],"
	"\"settings\":{\"data_rate\":{\"lora\":{\"bandwidth\":125000,\"spreading_factor\":7,"
	"\"coding_rate\":\"4/5\"}},\"frequency\":\"868100000\",\"timestamp\":2463457000},"
	"\"received_at\":\"2026-03-05T09:14:07.301230411Z\",\"consumed_airtime\":\"0.046336s\","
	"\"network_ids\":{\"net_id\":\"000013\",\"tenant_id\":\"ttn\",\"cluster_id\":\"eu1\"}}}";

#define TTS_UP "v3/telecare-city@ttn/devices/pendant-0042/up"

static void test_ttn_uplink(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_TTN, NULL, "sos=true -> panic", NULL);
	ok(dec(s, TTS_UP, tts_up), "pendant-0042", 1);
	assert_string_equal(str(0, "type"), "panic");
	assert_string_equal(str(0, "id"), "ttn-0-2026-03-05T09:14:07.512344985Z");
	assert_int_equal(num(0, "battery"), 76);
	assert_int_equal(num(0, "rssi"), -95);
	assert_null(json_object_get(ev_at(0), "simulated"));
	done();

	char *p = edit(tts_up, "\"f_port\":10,", "\"f_port\":10,\"f_cnt\":25,");
	ok(dec(s, TTS_UP, p), "pendant-0042", 1);
	assert_string_equal(str(0, "id"), "ttn-25-2026-03-05T09:14:07.512344985Z");
	free(p);
	done();
	p = edit(tts_up, "\"f_port\":10,", "\"f_port\":10,\"f_cnt\":4294967295,");
	ok(dec(s, TTS_UP, p), "pendant-0042", 1);
	assert_string_equal(str(0, "id"), "ttn-4294967295-2026-03-05T09:14:07.512344985Z");
	free(p);
	done();

	/* no top-level received_at: the uplink's own */
	p = edit(tts_up, "\"received_at\":\"2026-03-05T09:14:07.512344985Z\",", "");
	ok(dec(s, TTS_UP, p), "pendant-0042", 1);
	assert_string_equal(str(0, "id"), "ttn-0-2026-03-05T09:14:07.301230411Z");
	free(p);
	done();

	/* a simulated uplink (from the console) says so */
	p = edit(tts_up, "\"received_at\":\"2026-03-05T09:14:07.512344985Z\",",
	         "\"received_at\":\"2026-03-05T09:14:07.512344985Z\",\"simulated\":true,");
	ok(dec(s, TTS_UP, p), "pendant-0042", 1);
	assert_true(json_is_true(json_object_get(ev_at(0), "simulated")));
	free(p);
	done();

	/* no payload formatter: unmapped */
	p = edit(tts_up, "\"decoded_payload\":{\"sos\":true,\"battery\":76},", "");
	ok(dec(s, TTS_UP, p), "pendant-0042", 0);
	free(p);
	done();
	p = edit(tts_up, "\"sos\":true", "\"sos\":false");
	ok(dec(s, TTS_UP, p), "pendant-0042", 0);
	free(p);
	done();
	source_free(s);
}

static void test_ttn_missing_is_zero(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_TTN, NULL, "fall=false -> heartbeat", "count=0 -> cancel",
	                             "state.alarm=0 -> inactivity", "sos=true -> panic", NULL);
	/* decoded_payload {"sos":true}: fall, count and state.alarm are absent,
	 * which TTS does for false and zero */
	char *p = edit(tts_up, "\"sos\":true,\"battery\":76", "\"sos\":true");
	ok(dec(s, TTS_UP, p), "pendant-0042", 4);
	assert_string_equal(str(0, "type"), "heartbeat");
	assert_string_equal(str(1, "type"), "cancel");
	assert_string_equal(str(2, "type"), "inactivity");
	assert_string_equal(str(3, "type"), "panic");
	assert_string_equal(str(3, "id"), "ttn-0-2026-03-05T09:14:07.512344985Z-3");
	assert_null(json_object_get(ev_at(0), "battery"));
	free(p);
	done();
	p = edit(tts_up, "\"sos\":true,\"battery\":76",
	         "\"sos\":false,\"fall\":true,\"count\":2,\"state\":{\"alarm\":1}");
	ok(dec(s, TTS_UP, p), "pendant-0042", 0);
	free(p);
	done();
	/* a path through something that is not an object does not match */
	p = edit(tts_up, "\"sos\":true,\"battery\":76", "\"fall\":true,\"count\":1,\"state\":5");
	ok(dec(s, TTS_UP, p), "pendant-0042", 0);
	free(p);
	done();
	source_free(s);

	/* ChirpStack does not omit: a missing field matches nothing there */
	s = source(TC_SRC_CHIRPSTACK, NULL, "fall=false -> heartbeat", NULL);
	ok(dec(s, CS_UP, ws101), "24e124756d245831", 0);
	done();
	source_free(s);
}

static void test_ttn_other_and_bad(void **state)
{
	(void)state;
	struct tc_source *s = source(TC_SRC_TTN, "v3/+/devices/#", "sos=true -> panic", NULL);
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/join",
	            "{\"end_device_ids\":{\"device_id\":\"pendant-0042\"},\"join_accept\":{}}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/down/queued", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/down/sent", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/down/ack", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/down/nack", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/down/failed", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/service/data", "{}"));
	ignored(dec(s, "v3/telecare-city@ttn/devices/pendant-0042/location/solved", "{}"));

	static const struct { const char *from, *to, *mention; } cases[] = {
		{ "\"device_id\":\"pendant-0042\"", "\"device\":\"pendant-0042\"", "device_id" },
		{ "\"device_id\":\"pendant-0042\"", "\"device_id\":42", "device_id" },
		{ "\"device_id\":\"pendant-0042\"", "\"device_id\":\"\"", "empty" },
		{ "\"uplink_message\":{", "\"uplink_message\":[],\"x\":{", "uplink_message" },
		{ "\"f_port\":10,", "\"f_cnt\":-1,", "f_cnt" },
		{ "\"f_port\":10,", "\"f_cnt\":4294967296,", "f_cnt" },
		{ "\"f_port\":10,", "\"f_cnt\":\"25\",", "f_cnt" },
		{ "\"f_port\":10,", "\"f_cnt\":2.5,", "f_cnt" },
		{ "\"received_at\":\"2026-03-05T09:14:07.512344985Z\"", "\"received_at\":12",
		  "received_at" },
		{ "\"received_at\":\"2026-03-05T09:14:07.512344985Z\"",
		  "\"received_at\":\"2026-03-05 09:14:07\"", "received_at" },
		{ "\"received_at\":\"2026-03-05T09:14:07.512344985Z\"",
		  "\"received_at\":\"2026-03-05T09:14:07.512344985123456789+00:00\"", "received_at" },
		{ "\"decoded_payload\":{\"sos\":true,\"battery\":76}", "\"decoded_payload\":[true]",
		  "decoded_payload" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *p = edit(tts_up, cases[i].from, cases[i].to);
		bad(dec(s, TTS_UP, p), cases[i].mention);
		free(p);
	}
	bad(dec(s, TTS_UP, "{\"end_device_ids\":{\"device_id\":\"pendant-0042\"}}"), "uplink_message");
	bad(dec(s, TTS_UP, "not json"), "JSON");

	/* without any receive time the id hashes the message */
	char *p = edit(tts_up, "\"received_at\":\"2026-03-05T09:14:07.512344985Z\",", "");
	char *q = edit(p, "\"received_at\":\"2026-03-05T09:14:07.301230411Z\",", "");
	ok(dec(s, TTS_UP, q), "pendant-0042", 1);
	assert_true(strncmp(str(0, "id"), "ttn-0-", 6) == 0);
	assert_int_equal(strlen(str(0, "id")), 6 + 16);
	done();
	free(q);
	free(p);
	source_free(s);
}

static void test_edges(void **state)
{
	(void)state;
	/* rule values that are not numbers never equal a number */
	struct tc_source *s = source(TC_SRC_ZIGBEE2MQTT, "site/z2m/#", "n=- -> panic", "n=abc -> fall",
	                             "n=0x1 -> gas", "n=nan -> co", NULL);
	ok(dec(s, "site/z2m/x", "{\"n\":0}"), "x", 0);
	done();
	ok(dec(s, "site/z2m/x", "{\"n\":1}"), "x", 0);
	done();
	ok(dec(s, "site/z2m/x", "{\"n\":0.5}"), "x", 0);
	done();
	/* a topic shorter than the base */
	bad(dec(s, "site", hs1eb), "not under");
	bad(dec(s, "other/z2m/x", hs1eb), "not under");
	source_free(s);

	/* reception records that are not objects are skipped */
	s = source(TC_SRC_CHIRPSTACK, NULL, "button_event.status=short press -> panic", NULL);
	char *p = edit(ws101, "\"rxInfo\":[", "\"rxInfo\":[7,null,{\"rssi\":-60.4},");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	assert_int_equal(num(0, "rssi"), -60);
	free(p);
	done();
	p = edit(ws101, "\"rxInfo\":[", "\"rxInfo\":{\"rssi\":-1},\"x\":[");
	ok(dec(s, CS_UP, p), "24e124756d245831", 1);
	assert_null(json_object_get(ev_at(0), "rssi"));
	free(p);
	done();
	/* no payload at all */
	json_t *evs = (json_t *)&evs;
	assert_int_equal(tc_source_decode(s, CS_UP, NULL, 0, NOW, addr, sizeof(addr), &evs, err,
	                                  sizeof(err)), -1);
	assert_null(evs);
	assert_non_null(strstr(err, "empty"));
	/* an unknown format */
	s->format = (enum tc_source_format)7;
	bad(dec(s, CS_UP, ws101), "unknown format");
	s->format = TC_SRC_CHIRPSTACK;
	source_free(s);

	/* TTS receive times with characters no time has */
	s = source(TC_SRC_TTN, NULL, "sos=true -> panic", NULL);
	p = edit(tts_up, "\"received_at\":\"2026-03-05T09:14:07.512344985Z\"",
	         "\"received_at\":\"2026/03/05T09:14:07Z\"");
	bad(dec(s, TTS_UP, p), "received_at");
	free(p);
	source_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_rule_parse),
		cmocka_unit_test(test_rule_errors),
		cmocka_unit_test(test_z2m_button),
		cmocka_unit_test(test_z2m_smoke),
		cmocka_unit_test(test_z2m_battery_linkquality),
		cmocka_unit_test(test_z2m_availability),
		cmocka_unit_test(test_z2m_topics),
		cmocka_unit_test(test_z2m_hostile),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_chirpstack_ws101),
		cmocka_unit_test(test_chirpstack_several_rules),
		cmocka_unit_test(test_chirpstack_other_events),
		cmocka_unit_test(test_chirpstack_bad),
		cmocka_unit_test(test_ttn_uplink),
		cmocka_unit_test(test_ttn_missing_is_zero),
		cmocka_unit_test(test_ttn_other_and_bad),
		cmocka_unit_test(test_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
