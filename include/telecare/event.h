/* Device events (SPEC 2.1): types, their kinds, and the decoder.
 * Shared by telecared, the unit tests and the fuzzers. The decoder is a pure
 * function: bytes in, a decoded event or a human-readable error out. */
#ifndef TELECARE_EVENT_H
#define TELECARE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define TC_DEVICE_ID_MAX   64
#define TC_EVENT_ID_MAX    64
#define TC_TEXT_MAX        256
#define TC_PAYLOAD_DEFAULT 4096

enum tc_kind {
	TC_KIND_ALARM,      /* opens or joins the device's care alarm */
	TC_KIND_TECHNICAL,  /* opens or joins a technical alarm of that type */
	TC_KIND_RESTORAL,   /* resolves the matching technical alarm */
	TC_KIND_CANCEL,     /* "I am fine": recorded on the open care alarm */
	TC_KIND_HEARTBEAT,  /* the device is alive */
};

enum tc_type {
	TC_T_PANIC, TC_T_FALL, TC_T_SMOKE, TC_T_CO, TC_T_GAS, TC_T_HEAT, TC_T_MEDICAL,
	TC_T_INACTIVITY, TC_T_WANDER, TC_T_DOOR, TC_T_BED_EXIT, TC_T_CHAIR_EXIT,
	TC_T_BAND_REMOVED, TC_T_FLOOD, TC_T_TEMPERATURE,
	TC_T_LOW_BATTERY, TC_T_TAMPER, TC_T_POWER_LOSS, TC_T_CONNECTION_LOST,
	TC_T_POWER_RESTORED, TC_T_CONNECTION_RESTORED,
	TC_T_CANCEL, TC_T_HEARTBEAT,
	TC_T__DEVICE_COUNT,
	/* Raised by the gateway about itself; a device cannot send these. */
	TC_T_STORAGE_FAILED = TC_T__DEVICE_COUNT,
	TC_T_NOBODY_TO_ALERT,   /* an alarm whose every step names nobody now */
	TC_T__COUNT,
	TC_T_INVALID = -1,
};

const char *tc_type_name(enum tc_type t);
enum tc_type tc_type_from_name(const char *name);
enum tc_kind tc_type_kind(enum tc_type t);
/* 1 urgent, 2 high, 3 technical; 0 for types that open no alarm. */
int tc_type_default_priority(enum tc_type t);
/* For a restoral, the technical type it clears (power_restored -> power_loss);
 * TC_T_INVALID otherwise. */
enum tc_type tc_type_restores(enum tc_type t);

/* true when s (len bytes) is a valid device id: 1-64 of [A-Za-z0-9._-]. */
bool tc_device_id_valid(const char *s, size_t len);
/* true when s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool tc_utf8_valid(const char *s, size_t len);

struct tc_event {
	json_t *root;          /* the whole payload, owned; unknown fields kept */
	json_t *id;            /* borrowed from root: string or integer */
	/* canonical JSON text of id, the dedup key: 64 characters, each escaped
	 * to at most two ("\\"), two quotes, a NUL */
	char id_key[2 * TC_EVENT_ID_MAX + 3];
	enum tc_type type;
	bool has_ts;
	int64_t ts_ms;         /* device clock, ms since the epoch */
	int battery;           /* -1 when absent */
	bool has_rssi;
	int rssi;
	bool test;
	bool has_loc;
	double lat, lon, acc;  /* acc < 0 when absent */
};

/* Decode one event payload. Returns 0 and fills ev (release with
 * tc_event_clear), or -1 with a one-line reason in err. When the id could be
 * read even though the event is rejected, *id_out (if not NULL) receives a new
 * reference to it, so the rejected receipt can carry it. */
int tc_event_decode(const void *payload, size_t len, size_t max_payload,
                    struct tc_event *ev, json_t **id_out, char *err, size_t errlen);
void tc_event_clear(struct tc_event *ev);

#endif
