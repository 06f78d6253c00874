/* libFuzzer: the source decoders (common/source.c) on arbitrary bytes.
 * The first byte picks what is fuzzed (its value modulo 16):
 *   0-11  a fixed topic of one of the three formats; the rest is the payload
 *   12-14 zigbee2mqtt, chirpstack, ttn with the topic taken from the input
 *         (up to the first NUL) and the payload after it
 *   15    tc_rule_parse on the rest
 * Besides "no crash, no leak, no UB" it checks the decoders' contract:
 *  - 0: an array of objects, each a valid SPEC 2.1 event (tc_event_decode)
 *    naming the source and the address, ids distinct; the address non-empty,
 *    shorter than TC_ADDRESS_MAX, valid UTF-8; decoding again gives the same
 *    events (ids are stable);
 *  - 1: no events, no address; -1: no events, a printable one-line error;
 *  - rules: on success a non-empty field and value and a valid type. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/event.h"
#include "telecare/source.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

#define NOW 1772702047123LL

static const struct {
	enum tc_source_format format;
	const char *topic;
} fixed[12] = {
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/pendant-flat-12" },
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/flat 12/hall/smoke" },
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/pendant-flat-12/availability" },
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/bridge/state" },
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/pendant-flat-12/set" },
	{ TC_SRC_CHIRPSTACK, "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124756d245831/event/up" },
	{ TC_SRC_CHIRPSTACK, "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124756d245831/event/join" },
	{ TC_SRC_CHIRPSTACK, "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/24e124756d245831/event/up" },
	{ TC_SRC_TTN, "v3/telecare-city@ttn/devices/pendant-0042/up" },
	{ TC_SRC_TTN, "v3/telecare-city@ttn/devices/pendant-0042/join" },
	{ TC_SRC_TTN, "v3/telecare-city@ttn/devices/pendant-0042/up" },
	{ TC_SRC_ZIGBEE2MQTT, "zigbee2mqtt/0x00124b0022a5c8e1" },
};

static const char *const rule_texts[] = {
	"action=single -> panic",
	"action=emergency -> panic",
	"sos=true -> panic",
	"smoke=true -> smoke",
	"tamper=true -> tamper",
	"battery_low=true -> low_battery",
	"button_event.status=short press -> panic",
	"alarm=false -> heartbeat",
	"count=0 -> cancel",
	"temperature=21.5 -> temperature",
	"a.b.c=null -> fall",
};
#define N_RULES (sizeof(rule_texts) / sizeof(rule_texts[0]))

static struct tc_source sources[3];
static struct tc_rule rules[N_RULES];

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	char err[256];
	for (size_t i = 0; i < N_RULES; i++)
		CHECK(tc_rule_parse(rule_texts[i], &rules[i], err, sizeof(err)) == 0);
	for (int f = 0; f < 3; f++) {
		sources[f].name = (char *)"fuzz";
		sources[f].format = (enum tc_source_format)f;
		sources[f].topic = f == TC_SRC_ZIGBEE2MQTT ? (char *)"zigbee2mqtt/#" : NULL;
		sources[f].rules = rules;
		sources[f].n_rules = N_RULES;
	}
}

static void check_printable(const char *s)
{
	CHECK(s[0] != '\0');
	for (; *s; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static void check_events(json_t *events, const char *address)
{
	size_t i;
	json_t *e;
	CHECK(json_is_array(events));
	CHECK(json_array_size(events) <= N_RULES);
	json_array_foreach(events, i, e) {
		CHECK(json_is_object(e));
		char *text = json_dumps(e, JSON_COMPACT);
		CHECK(text);
		struct tc_event ev;
		char err[256];
		if (tc_event_decode(text, strlen(text), TC_PAYLOAD_DEFAULT, &ev, NULL, err, sizeof(err))) {
			fprintf(stderr, "not a SPEC 2.1 event: %s\n%s\n", err, text);
			CHECK(0);
		}
		CHECK(ev.type != TC_T_INVALID);
		tc_event_clear(&ev);
		free(text);
		CHECK(strcmp(json_string_value(json_object_get(e, "address")), address) == 0);
		CHECK(strcmp(json_string_value(json_object_get(e, "source")), "fuzz") == 0);
		for (size_t k = 0; k < i; k++)
			CHECK(!json_equal(json_object_get(json_array_get(events, k), "id"),
			                  json_object_get(e, "id")));
	}
}

static void decode(const struct tc_source *src, const char *topic, const uint8_t *p, size_t n)
{
	char address[TC_ADDRESS_MAX], err[256];
	json_t *events = NULL;
	err[0] = '\0';
	int rc = tc_source_decode(src, topic, p, n, NOW, address, sizeof(address), &events, err,
	                          sizeof(err));
	if (rc == 1) {
		CHECK(events == NULL);
		CHECK(address[0] == '\0');
		return;
	}
	if (rc == -1) {
		CHECK(events == NULL);
		check_printable(err);
		return;
	}
	CHECK(rc == 0);
	size_t alen = strlen(address);
	CHECK(alen > 0 && alen < TC_ADDRESS_MAX);
	CHECK(tc_utf8_valid(address, alen));
	check_events(events, address);

	/* the same message again: the same events, the same ids */
	char address2[TC_ADDRESS_MAX];
	json_t *again = NULL;
	CHECK(tc_source_decode(src, topic, p, n, NOW, address2, sizeof(address2), &again, err,
	                       sizeof(err)) == 0);
	CHECK(strcmp(address, address2) == 0);
	CHECK(json_equal(events, again));
	json_decref(again);
	json_decref(events);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	if (size < 1)
		return 0;
	unsigned sel = data[0] % 16;
	const uint8_t *rest = data + 1;
	size_t n = size - 1;

	if (sel < 12) {
		decode(&sources[fixed[sel].format], fixed[sel].topic, rest, n);
	} else if (sel < 15) {
		const uint8_t *nul = memchr(rest, '\0', n);
		size_t tlen = nul ? (size_t)(nul - rest) : n;
		char *topic = malloc(tlen + 1);
		CHECK(topic);
		memcpy(topic, rest, tlen);
		topic[tlen] = '\0';
		const uint8_t *payload = nul ? nul + 1 : rest + n;
		decode(&sources[sel - 12], topic, payload, (size_t)(rest + n - payload));
		free(topic);
	} else {
		char *text = malloc(n + 1);
		CHECK(text);
		memcpy(text, rest, n);
		text[n] = '\0';
		struct tc_rule r;
		char err[256];
		err[0] = '\0';
		if (tc_rule_parse(text, &r, err, sizeof(err)) == 0) {
			CHECK(r.field && r.field[0] && r.value && r.value[0]);
			CHECK(r.type >= 0 && r.type < TC_T__COUNT);
			CHECK(strlen(r.field) <= 200 && strlen(r.value) <= 200);
			CHECK(!strstr(r.field, ".."));
		} else {
			CHECK(r.field == NULL && r.value == NULL);
			check_printable(err);
		}
		tc_rule_clear(&r);
		free(text);
	}
	return 0;
}
