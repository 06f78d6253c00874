/* libFuzzer: the device event decoder (SPEC 2.1) on arbitrary bytes.
 * Besides "no crash, no leak, no UB" it checks the decoder's contract:
 *  - success: a JSON object with a valid id and type, id_key the canonical
 *    JSON of the id, every optional field within its SPEC range, and the
 *    re-encoded payload decodes again to the same event;
 *  - failure: no root, a non-empty one-line printable error, the id (when
 *    returned) a valid id;
 *  - tc_utf8_valid agrees with a reference decoder (Unicode table 3-7). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

/* Well-formed UTF-8 byte sequences, straight from Unicode table 3-7. */
static int ref_utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		uint8_t c = s[i];
		uint8_t lo = 0x80, hi = 0xbf;
		size_t k;
		if (c <= 0x7f) { i++; continue; }
		else if (c >= 0xc2 && c <= 0xdf) k = 1;
		else if (c == 0xe0) { k = 2; lo = 0xa0; }
		else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) k = 2;
		else if (c == 0xed) { k = 2; hi = 0x9f; }
		else if (c == 0xf0) { k = 3; lo = 0x90; }
		else if (c >= 0xf1 && c <= 0xf3) k = 3;
		else if (c == 0xf4) { k = 3; hi = 0x8f; }
		else return 0;
		if (i + k >= n)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if (s[i + j] < 0x80 || s[i + j] > 0xbf)
				return 0;
		i += k + 1;
	}
	return 1;
}

static void check_printable(const char *s)
{
	CHECK(s[0] != '\0');
	for (; *s; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static int id_ok(json_t *id)
{
	if (json_is_integer(id))
		return json_integer_value(id) >= 0;
	if (!json_is_string(id))
		return 0;
	size_t len = json_string_length(id);
	const char *s = json_string_value(id);
	if (len < 1 || len > TC_EVENT_ID_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

static void check_event(const struct tc_event *ev)
{
	CHECK(json_is_object(ev->root));
	CHECK(ev->id == json_object_get(ev->root, "id"));
	CHECK(id_ok(ev->id));
	CHECK(ev->id_key[0] != '\0');
	char *key = json_dumps(ev->id, JSON_ENCODE_ANY | JSON_COMPACT);
	CHECK(key && strcmp(key, ev->id_key) == 0);
	free(key);
	CHECK(ev->type >= 0 && ev->type < TC_T__COUNT);
	CHECK(strcmp(json_string_value(json_object_get(ev->root, "type")), tc_type_name(ev->type)) == 0);
	CHECK(ev->battery >= -1 && ev->battery <= 100);
	if (ev->has_ts)
		CHECK(ev->ts_ms > -86400000LL * 2 && ev->ts_ms < 253402300800000LL + 86400000LL * 2);
	if (ev->has_loc) {
		CHECK(ev->lat >= -90 && ev->lat <= 90);
		CHECK(ev->lon >= -180 && ev->lon <= 180);
		CHECK(ev->acc == -1 || ev->acc >= 0);
	}
	json_t *text = json_object_get(ev->root, "text");
	if (text && !json_is_null(text))
		CHECK(json_is_string(text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	CHECK(tc_utf8_valid((const char *)data, size) == (ref_utf8_valid(data, size) == 1));

	struct tc_event ev;
	json_t *id = NULL;
	char err[256];
	err[0] = '\0';
	int rc = tc_event_decode(data, size, TC_PAYLOAD_DEFAULT, &ev, &id, err, sizeof(err));
	if (rc != 0) {
		CHECK(rc == -1);
		CHECK(ev.root == NULL);
		CHECK(ev.type == TC_T_INVALID);
		check_printable(err);
		if (id)
			CHECK(id_ok(id));
		json_decref(id);
		if (size > TC_PAYLOAD_DEFAULT)
			CHECK(strstr(err, "too large") != NULL);
		return 0;
	}
	CHECK(size <= TC_PAYLOAD_DEFAULT);
	CHECK(id == ev.id);
	check_event(&ev);

	/* what the daemon stores (the payload re-encoded) must decode to the same event */
	char *again = json_dumps(ev.root, JSON_COMPACT);
	CHECK(again);
	struct tc_event ev2;
	rc = tc_event_decode(again, strlen(again), SIZE_MAX, &ev2, NULL, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "re-encoded payload rejected: %s\n%s\n", err, again);
	CHECK(rc == 0);
	CHECK(ev2.type == ev.type);
	CHECK(strcmp(ev2.id_key, ev.id_key) == 0);
	CHECK(ev2.has_ts == ev.has_ts && (!ev.has_ts || ev2.ts_ms == ev.ts_ms));
	CHECK(ev2.battery == ev.battery);
	CHECK(ev2.has_rssi == ev.has_rssi && ev2.rssi == ev.rssi);
	CHECK(ev2.test == ev.test);
	CHECK(ev2.has_loc == ev.has_loc);
	tc_event_clear(&ev2);
	free(again);

	json_decref(id);
	tc_event_clear(&ev);
	CHECK(ev.root == NULL);
	return 0;
}
