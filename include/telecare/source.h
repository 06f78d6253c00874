/* Sources (issue 4): devices that do not speak SPEC 2.1 themselves, heard
 * through zigbee2mqtt or a LoRaWAN network server. A decoder turns one
 * message of the source's format into zero or more SPEC 2.1 event objects,
 * by the mapping rules of its [source NAME] section. Pure functions: no I/O,
 * the receive time is passed in. */
#ifndef TELECARE_SOURCE_H
#define TELECARE_SOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "telecare/event.h"

#define TC_ADDRESS_MAX 256

/* TC_SRC_SIA_DC09 is no MQTT source: telecared is the receiver itself (SPEC
 * 2.8, daemon/dc09.c); it has no topic and tc_source_decode() refuses it. */
enum tc_source_format { TC_SRC_ZIGBEE2MQTT, TC_SRC_CHIRPSTACK, TC_SRC_TTN, TC_SRC_SIA_DC09 };

struct tc_dc09_rule;

/* "FIELD=VALUE -> TYPE": FIELD is a dotted path into the format's payload
 * object (zigbee2mqtt: the state message; chirpstack: the decoded `object`;
 * ttn: `uplink_message.decoded_payload`); VALUE compares with the field as
 * text ("true", "emergency", "short press", "1"). */
struct tc_rule {
	char *field;
	char *value;
	enum tc_type type;
};

struct tc_source {
	char *name;
	enum tc_source_format format;
	char *topic;          /* subscription filter, e.g. "zigbee2mqtt/#"; NULL for sia-dc09 */
	struct tc_rule *rules;
	size_t n_rules;
	/* sia-dc09 only (SPEC 2.8, docs/SOURCES.md) */
	char *listen;         /* "HOST:PORT", TCP and UDP */
	char *keys;           /* the keys file, or NULL */
	int64_t max_age_ms, max_lead_ms;   /* time_window; both 0: no check */
	int64_t idle_ms;      /* idle_timeout: a TCP connection silent this long is closed */
	int max_connections;  /* TCP connections at once; more are refused */
	struct tc_dc09_rule *dc09_rules;
	size_t n_dc09_rules;
};

const char *tc_source_format_name(enum tc_source_format f);
int tc_source_format_from_name(const char *name);          /* -1 if unknown */
/* The subscription filter a format uses when the section names none (NULL
 * for sia-dc09). */
const char *tc_source_default_topic(enum tc_source_format f);
int tc_rule_parse(const char *text, struct tc_rule *out, char *err, size_t errlen);
void tc_rule_clear(struct tc_rule *r);

/* Decode one message that arrived on topic (which matched src->topic).
 * Returns 0 with *address set (the device's address in the source) and
 * *events a new JSON array of SPEC 2.1 event objects (empty: the message
 * matched no rule, an "unmapped" message to show to installers); or 1 when
 * the message is not about a device at all and is to be ignored (e.g.
 * zigbee2mqtt's bridge topics); or -1 with a reason in err when it cannot be
 * decoded. Event ids are stable for the same message (so a resend is a
 * duplicate), built from what the format offers (chirpstack deduplicationId,
 * ttn frame counter and receive time, else a hash of the payload). */
int tc_source_decode(const struct tc_source *src, const char *topic, const void *payload,
                     size_t len, int64_t now_ms, char *address, size_t addrlen, json_t **events,
                     char *err, size_t errlen);

#endif
