/* Sources (issue 4): zigbee2mqtt, ChirpStack v4 and The Things Stack v3
 * messages turned into SPEC 2.1 event objects by the mapping rules of a
 * [source NAME] section. Pure: no I/O, no clock (the receive time is passed
 * in), no globals beyond constant tables. docs/SOURCES.md describes every
 * choice made here; tests/unit/test_source.c and tests/fuzz/fuzz_source.c
 * hold the code to it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/source.h"
#include "telecare/util.h"

/* Largest message a source may send. Network-server uplinks carry metadata
 * of every gateway that heard the frame, so they are far larger than a
 * SPEC 2.1 event; this only bounds the work done on hostile input. */
#define SRC_PAYLOAD_MAX (256 * 1024)
/* Longest FIELD and VALUE of a rule, in bytes. */
#define RULE_PART_MAX 200
/* Longest id parts taken from a message: ChirpStack's deduplicationId (a
 * UUID, 36) and The Things Stack's received_at (30), with room left in the
 * 64 characters of an id for a prefix, the frame counter and "-<rule>". */
#define SRC_ID_PART_MAX 48
#define SRC_TIME_MAX 40
/* zigbee2mqtt has no message id: the same message within one window of this
 * many milliseconds has the same event id. */
#define Z2M_DEDUP_WINDOW_MS 10000

static const char *const format_names[] = {
	[TC_SRC_ZIGBEE2MQTT] = "zigbee2mqtt",
	[TC_SRC_CHIRPSTACK] = "chirpstack",
	[TC_SRC_TTN] = "ttn",
	[TC_SRC_SIA_DC09] = "sia-dc09",
};

static const char *const default_topics[] = {
	[TC_SRC_ZIGBEE2MQTT] = "zigbee2mqtt/#",
	[TC_SRC_CHIRPSTACK] = "application/+/device/+/event/up",
	[TC_SRC_TTN] = "v3/+/devices/+/up",
	[TC_SRC_SIA_DC09] = NULL,   /* a receiver of its own, not a topic */
};

#define N_FORMATS (sizeof(format_names) / sizeof(format_names[0]))

const char *tc_source_format_name(enum tc_source_format f)
{
	return ((unsigned)f < N_FORMATS) ? format_names[f] : "invalid";
}

int tc_source_format_from_name(const char *name)
{
	for (size_t f = 0; f < N_FORMATS; f++)
		if (name && strcmp(format_names[f], name) == 0)
			return (int)f;
	return -1;
}

const char *tc_source_default_topic(enum tc_source_format f)
{
	return ((unsigned)f < N_FORMATS) ? default_topics[f] : NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- rules ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* [*s, *e) trimmed of ASCII white space on both ends. */
static void trim(const char **s, const char **e)
{
	while (*s < *e && is_space(**s))
		(*s)++;
	while (*e > *s && is_space((*e)[-1]))
		(*e)--;
}

static bool has_control(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return true;
	return false;
}

int tc_rule_parse(const char *text, struct tc_rule *out, char *err, size_t errlen)
{
	char clean[64];
	memset(out, 0, sizeof(*out));
	out->type = TC_T_INVALID;
	if (!text)
		return fail(err, errlen, "rule is empty (expected FIELD=VALUE -> TYPE)");
	size_t len = strlen(text);
	tc_sanitize(text, len, clean, sizeof(clean));
	if (!tc_utf8_valid(text, len))
		return fail(err, errlen, "rule \"%s\" is not valid UTF-8", clean);

	/* the last "->": a VALUE may contain "->", a TYPE never does */
	const char *arrow = NULL;
	for (const char *p = strstr(text, "->"); p; p = strstr(p + 1, "->"))
		arrow = p;
	if (!arrow)
		return fail(err, errlen, "rule \"%s\" has no \"->\" (expected FIELD=VALUE -> TYPE)", clean);
	const char *eq = memchr(text, '=', (size_t)(arrow - text));
	if (!eq)
		return fail(err, errlen, "rule \"%s\" has no \"=\" before \"->\" (expected FIELD=VALUE -> TYPE)",
		            clean);

	const char *fs = text, *fe = eq, *vs = eq + 1, *ve = arrow, *ts = arrow + 2, *te = text + len;
	trim(&fs, &fe);
	trim(&vs, &ve);
	trim(&ts, &te);
	size_t flen = (size_t)(fe - fs), vlen = (size_t)(ve - vs), tlen = (size_t)(te - ts);

	if (flen == 0)
		return fail(err, errlen, "rule \"%s\" has an empty FIELD (expected FIELD=VALUE -> TYPE)", clean);
	if (flen > RULE_PART_MAX)
		return fail(err, errlen, "rule \"%s\": FIELD is longer than %d bytes", clean, RULE_PART_MAX);
	if (has_control(fs, flen))
		return fail(err, errlen, "rule \"%s\": FIELD contains a control character", clean);
	if (fs[0] == '.' || fe[-1] == '.' || memmem(fs, flen, "..", 2))
		return fail(err, errlen, "rule \"%s\": FIELD has an empty part between dots", clean);
	if (vlen == 0)
		return fail(err, errlen, "rule \"%s\" has an empty VALUE (expected FIELD=VALUE -> TYPE)", clean);
	if (vlen > RULE_PART_MAX)
		return fail(err, errlen, "rule \"%s\": VALUE is longer than %d bytes", clean, RULE_PART_MAX);
	if (has_control(vs, vlen))
		return fail(err, errlen, "rule \"%s\": VALUE contains a control character", clean);
	if (tlen == 0)
		return fail(err, errlen, "rule \"%s\" has no TYPE after \"->\" (expected FIELD=VALUE -> TYPE)",
		            clean);

	char type[32];
	if (tlen >= sizeof(type)) {
		tc_sanitize(ts, tlen, clean, sizeof(clean));
		return fail(err, errlen, "unknown event type \"%s\" in rule (see SPEC 2.1 for the types)", clean);
	}
	memcpy(type, ts, tlen);
	type[tlen] = '\0';
	enum tc_type t = tc_type_from_name(type);
	if (t == TC_T_INVALID) {
		tc_sanitize(ts, tlen, clean, sizeof(clean));
		return fail(err, errlen, "unknown event type \"%s\" in rule (see SPEC 2.1 for the types)", clean);
	}

	out->field = strndup(fs, flen);
	out->value = strndup(vs, vlen);
	if (!out->field || !out->value) {
		tc_rule_clear(out);
		return fail(err, errlen, "out of memory");
	}
	out->type = t;
	return 0;
}

void tc_rule_clear(struct tc_rule *r)
{
	free(r->field);
	free(r->value);
	r->field = NULL;
	r->value = NULL;
	r->type = TC_T_INVALID;
}

/* ---- matching a rule against a payload object ---- */

enum lookup { L_FOUND, L_MISSING, L_NONE };

/* Follow the dotted path through nested objects. L_MISSING: an object along
 * the way has no such key; L_NONE: something along the way is not an object. */
static enum lookup lookup(json_t *obj, const char *path, json_t **out)
{
	const char *p = path;
	json_t *cur = obj;
	for (;;) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		if (!json_is_object(cur))
			return L_NONE;
		cur = json_object_getn(cur, p, n);
		if (!cur)
			return L_MISSING;
		if (!dot)
			break;
		p = dot + 1;
	}
	*out = cur;
	return L_FOUND;
}

/* A rule VALUE that reads as a JSON-ish number: [-+]digits[.digits][e[-+]digits]. */
static bool number_text(const char *s, double *d)
{
	bool digit = false;
	for (const char *c = s; *c; c++) {
		if (*c >= '0' && *c <= '9')
			digit = true;
		else if (!strchr("+-.eE", *c))
			return false;
	}
	if (!digit)
		return false;
	char *end;
	*d = strtod(s, &end);
	return *end == '\0' && isfinite(*d);
}

static bool value_matches(json_t *v, const char *want)
{
	double d;
	switch (json_typeof(v)) {
	case JSON_STRING:
		return strlen(want) == json_string_length(v) &&
		       memcmp(want, json_string_value(v), json_string_length(v)) == 0;
	case JSON_TRUE:
		return strcmp(want, "true") == 0;
	case JSON_FALSE:
		return strcmp(want, "false") == 0;
	case JSON_NULL:
		return strcmp(want, "null") == 0;
	case JSON_INTEGER: {
		char *end;
		errno = 0;
		long long i = strtoll(want, &end, 10);
		if (*want && !is_space(*want) && *end == '\0' && errno == 0)
			return i == json_integer_value(v);
		return number_text(want, &d) && d == (double)json_integer_value(v);
	}
	case JSON_REAL:
		return number_text(want, &d) && d == json_real_value(v);
	default:
		return false;
	}
}

/* Does the rule match obj? With missing_is_zero (The Things Stack), a field
 * that is absent compares as zero and false. */
static bool rule_matches(const struct tc_rule *r, json_t *obj, bool missing_is_zero)
{
	json_t *v = NULL;
	double d;
	switch (lookup(obj, r->field, &v)) {
	case L_FOUND:
		return value_matches(v, r->value);
	case L_MISSING:
		return missing_is_zero &&
		       (strcmp(r->value, "false") == 0 || (number_text(r->value, &d) && d == 0));
	default:
		return false;
	}
}

/* ---- carried-over fields ---- */

/* A JSON number within [lo, hi], rounded to an integer; false otherwise. */
static bool int_in(json_t *v, long long lo, long long hi, int *out)
{
	double d;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < lo || json_integer_value(v) > hi)
			return false;
		*out = (int)json_integer_value(v);
		return true;
	}
	if (!json_is_real(v))
		return false;
	d = json_real_value(v);
	if (!(d > (double)lo - 0.5 && d < (double)hi + 0.5))
		return false;
	*out = (int)(d + (d >= 0 ? 0.5 : -0.5));  /* nearest, halves away from zero */
	return true;
}

/* The best (highest) RSSI over an array of reception records. */
static bool best_rssi(json_t *arr, const char *key, const char *alt, int *out)
{
	size_t i;
	json_t *rx;
	bool any = false;
	if (!json_is_array(arr))
		return false;
	json_array_foreach(arr, i, rx) {
		int r;
		if (!json_is_object(rx))
			continue;
		json_t *v = json_object_get(rx, key);
		if (!v && alt)
			v = json_object_get(rx, alt);
		if (v && int_in(v, -1000, 1000, &r) && (!any || r > *out)) {
			*out = r;
			any = true;
		}
	}
	return any;
}

/* ---- building events ---- */

struct out {
	const struct tc_source *src;
	const char *address;
	const char *id_base;   /* "-<rule index>" appended when several events */
	int battery;           /* -1: none */
	bool has_rssi;
	int rssi;
	int linkquality;       /* -1: none */
	bool simulated;
	json_t *events;
};

static int add_event(struct out *o, enum tc_type type, const char *id, const struct tc_rule *rule,
                     char *err, size_t errlen)
{
	json_t *ev = json_object();
	if (!ev)
		return fail(err, errlen, "out of memory");
	int rc = 0;
	rc |= json_object_set_new(ev, "id", json_string(id));
	rc |= json_object_set_new(ev, "type", json_string(tc_type_name(type)));
	if (o->battery >= 0)
		rc |= json_object_set_new(ev, "battery", json_integer(o->battery));
	if (o->has_rssi)
		rc |= json_object_set_new(ev, "rssi", json_integer(o->rssi));
	if (o->linkquality >= 0)
		rc |= json_object_set_new(ev, "linkquality", json_integer(o->linkquality));
	if (o->simulated)
		rc |= json_object_set_new(ev, "simulated", json_true());
	if (o->src->name && tc_utf8_valid(o->src->name, strlen(o->src->name)))
		rc |= json_object_set_new(ev, "source", json_string(o->src->name));
	rc |= json_object_set_new(ev, "address", json_string(o->address));
	if (rule) {
		char text[2 * RULE_PART_MAX + 2];
		snprintf(text, sizeof(text), "%s=%s", rule->field, rule->value);
		rc |= json_object_set_new(ev, "rule", json_string(text));
	}
	if (rc || json_array_append_new(o->events, ev) < 0) {
		json_decref(ev);
		return fail(err, errlen, "out of memory");
	}
	return 0;
}

static int make_id(char *buf, size_t buflen, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, buflen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buflen || n > TC_EVENT_ID_MAX)
		return fail(err, errlen, "event id would be longer than %d characters", TC_EVENT_ID_MAX);
	return 0;
}

/* One event per matching rule, in rule order. */
static int apply_rules(struct out *o, json_t *obj, bool missing_is_zero, char *err, size_t errlen)
{
	const struct tc_source *src = o->src;
	size_t matched = 0;
	for (size_t i = 0; i < src->n_rules; i++)
		if (rule_matches(&src->rules[i], obj, missing_is_zero))
			matched++;
	for (size_t i = 0; i < src->n_rules; i++) {
		const struct tc_rule *r = &src->rules[i];
		if (!rule_matches(r, obj, missing_is_zero))
			continue;
		char id[TC_EVENT_ID_MAX + 1];
		if (matched == 1 ? make_id(id, sizeof(id), err, errlen, "%s", o->id_base)
		                 : make_id(id, sizeof(id), err, errlen, "%s-%zu", o->id_base, i))
			return -1;
		if (add_event(o, r->type, id, r, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* ---- shared input handling ---- */

static int set_address(const char *s, size_t len, char *address, size_t addrlen, char *err,
                       size_t errlen)
{
	char clean[64];
	tc_sanitize(s, len, clean, sizeof(clean));
	if (len == 0)
		return fail(err, errlen, "the device address is empty");
	if (len > TC_ADDRESS_MAX - 1 || len >= addrlen)
		return fail(err, errlen, "device address \"%s\" is longer than %zu bytes", clean,
		            (addrlen < TC_ADDRESS_MAX ? addrlen : TC_ADDRESS_MAX) - 1);
	if (!tc_utf8_valid(s, len))
		return fail(err, errlen, "device address \"%s\" is not valid UTF-8", clean);
	if (has_control(s, len))
		return fail(err, errlen, "device address \"%s\" contains a control character", clean);
	memcpy(address, s, len);
	address[len] = '\0';
	return 0;
}

static json_t *parse_object(const void *payload, size_t len, const char *what, const char *hint,
                            char *err, size_t errlen)
{
	json_error_t jerr;
	char clean[96];
	if (len == 0) {
		fail(err, errlen, "%s is empty", what);
		return NULL;
	}
	if (!tc_utf8_valid(payload, len)) {
		fail(err, errlen, "%s is not valid UTF-8%s", what, hint);
		return NULL;
	}
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		fail(err, errlen, "%s is not valid JSON: %s at byte %d%s", what,
		     tc_sanitize(jerr.text, strlen(jerr.text), clean, sizeof(clean)), jerr.position, hint);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(err, errlen, "%s is not a JSON object%s", what, hint);
		return NULL;
	}
	return root;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t message_hash(const char *topic, const void *payload, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	h = fnv1a(h, topic, strlen(topic) + 1);  /* with its NUL, a separator */
	return fnv1a(h, payload, len);
}

static const char *last_segment(const char *topic)
{
	const char *slash = strrchr(topic, '/');
	return slash ? slash + 1 : topic;
}

/* An id part taken from a message: 1-SRC_ID_PART_MAX printable ASCII. */
static bool id_part_ok(json_t *v, size_t max)
{
	if (!json_is_string(v) || json_string_length(v) < 1 || json_string_length(v) > max)
		return false;
	const char *s = json_string_value(v);
	for (size_t i = 0; i < json_string_length(v); i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

/* ---- zigbee2mqtt ---- */

static bool seg_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Strip the base (the subscription filter without its trailing "/#" or
 * "/+"; a "+" level in it matches any one level) off topic. Returns the rest
 * after the base's '/', NULL when topic is not under the base, or "" when
 * topic is the base itself. */
static const char *z2m_rest(const char *filter, const char *topic)
{
	size_t flen = strlen(filter);
	if (flen >= 2 && filter[flen - 2] == '/' && (filter[flen - 1] == '#' || filter[flen - 1] == '+'))
		flen -= 2;
	else if (flen == 1 && (filter[0] == '#' || filter[0] == '+'))
		return topic;
	const char *f = filter, *fend = filter + flen, *t = topic;
	for (;;) {
		const char *fs = memchr(f, '/', (size_t)(fend - f));
		size_t fn = fs ? (size_t)(fs - f) : (size_t)(fend - f);
		const char *ts = strchr(t, '/');
		size_t tn = ts ? (size_t)(ts - t) : strlen(t);
		if (!(fn == 1 && f[0] == '+') && !(fn == tn && memcmp(f, t, fn) == 0))
			return NULL;
		if (!fs)
			return ts ? ts + 1 : t + tn;
		if (!ts)
			return NULL;
		f = fs + 1;
		t = ts + 1;
	}
}

static int z2m_availability(const void *payload, size_t len, bool *online, char *err, size_t errlen)
{
	const char *s = payload, *e = s + len;
	trim(&s, &e);
	if (seg_is(s, (size_t)(e - s), "online") || seg_is(s, (size_t)(e - s), "offline")) {
		*online = s[1] == 'n';
		return 0;
	}
	json_t *root = parse_object(payload, len, "zigbee2mqtt availability message",
	                            " (expected {\"state\":\"online\"} or {\"state\":\"offline\"})", err,
	                            errlen);
	if (!root)
		return -1;
	json_t *st = json_object_get(root, "state");
	int rc = 0;
	if (json_is_string(st) && strcmp(json_string_value(st), "online") == 0)
		*online = true;
	else if (json_is_string(st) && strcmp(json_string_value(st), "offline") == 0)
		*online = false;
	else
		rc = fail(err, errlen, "zigbee2mqtt availability message has no \"state\" of \"online\" "
		          "or \"offline\"");
	json_decref(root);
	return rc;
}

static int decode_z2m(struct out *o, const char *topic, const void *payload, size_t len,
                      int64_t now_ms, char *address, size_t addrlen, char *err, size_t errlen)
{
	const char *filter = o->src->topic ? o->src->topic : default_topics[TC_SRC_ZIGBEE2MQTT];
	char clean[64];
	const char *rest = z2m_rest(filter, topic);
	if (!rest) {
		tc_sanitize(filter, strlen(filter), clean, sizeof(clean));
		return fail(err, errlen, "topic is not under the zigbee2mqtt base of \"%s\"", clean);
	}
	if (!*rest)
		return 1;  /* the base itself: nobody's state */
	size_t rlen = strlen(rest);
	if (seg_is(rest, rlen, "bridge") || strncmp(rest, "bridge/", 7) == 0)
		return 1;

	/* the last two levels: commands are <name>/set, <name>/get,
	 * <name>/set/<attribute>, <name>/<endpoint>/set ... */
	const char *last = last_segment(rest), *prev = NULL;
	size_t lastn = strlen(last), prevn = 0;
	if (last > rest) {
		const char *p = last - 1;  /* the '/' before last */
		prev = p;
		while (prev > rest && prev[-1] != '/')
			prev--;
		prevn = (size_t)(p - prev);
	}
	if (seg_is(last, lastn, "set") || seg_is(last, lastn, "get") ||
	    (prev && (seg_is(prev, prevn, "set") || seg_is(prev, prevn, "get"))))
		return 1;

	bool availability = last > rest && seg_is(last, lastn, "availability");
	size_t namelen = availability ? (size_t)(last - 1 - rest) : rlen;
	if (set_address(rest, namelen, address, addrlen, err, errlen) < 0)
		return -1;
	if (len == 0)
		return 1;  /* zigbee2mqtt clearing a retained message (device removed) */

	char id[TC_EVENT_ID_MAX + 1];
	int64_t window = now_ms / Z2M_DEDUP_WINDOW_MS - (now_ms % Z2M_DEDUP_WINDOW_MS < 0);
	if (make_id(id, sizeof(id), err, errlen, "z2m-%016" PRIx64 "-%" PRId64,
	            message_hash(topic, payload, len), window) < 0)
		return -1;
	o->id_base = id;

	if (availability) {
		bool online = false;
		if (z2m_availability(payload, len, &online, err, errlen) < 0)
			return -1;
		return add_event(o, online ? TC_T_CONNECTION_RESTORED : TC_T_CONNECTION_LOST, id, NULL,
		                 err, errlen);
	}

	json_t *root = parse_object(payload, len, "zigbee2mqtt state message",
	                            " (zigbee2mqtt must publish JSON: output: json)", err, errlen);
	if (!root)
		return -1;
	json_t *v;
	int b;
	if ((v = json_object_get(root, "battery")) && int_in(v, 0, 100, &b))
		o->battery = b;
	if ((v = json_object_get(root, "linkquality")) && int_in(v, 0, 255, &b))
		o->linkquality = b;
	int rc = apply_rules(o, root, false, err, errlen);
	json_decref(root);
	return rc;
}

/* ---- ChirpStack v4 ---- */

static int decode_chirpstack(struct out *o, const char *topic, const void *payload, size_t len,
                             char *address, size_t addrlen, char *err, size_t errlen)
{
	if (strcmp(last_segment(topic), "up") != 0)
		return 1;  /* join, status, ack, txack, log, location, integration */
	json_t *root = parse_object(payload, len, "ChirpStack uplink",
	                            " (the MQTT integration must use JSON: json = true)", err, errlen);
	if (!root)
		return -1;
	int rc = -1;
	char addr[17], id[TC_EVENT_ID_MAX + 1];
	json_t *info = json_object_get(root, "deviceInfo");
	json_t *eui = json_object_get(info, "devEui");
	json_t *dedup = json_object_get(root, "deduplicationId");
	json_t *obj = json_object_get(root, "object");

	if (!json_is_object(info)) {
		fail(err, errlen, "ChirpStack uplink has no \"deviceInfo\" object");
		goto out;
	}
	if (!json_is_string(eui) || json_string_length(eui) != 16) {
		fail(err, errlen, "ChirpStack uplink: \"deviceInfo.devEui\" must be 16 hex digits");
		goto out;
	}
	for (size_t i = 0; i < 16; i++) {
		char c = json_string_value(eui)[i];
		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			fail(err, errlen, "ChirpStack uplink: \"deviceInfo.devEui\" must be 16 hex digits");
			goto out;
		}
		addr[i] = c;
	}
	addr[16] = '\0';
	if (set_address(addr, 16, address, addrlen, err, errlen) < 0)
		goto out;

	if (dedup && !id_part_ok(dedup, SRC_ID_PART_MAX)) {
		fail(err, errlen, "ChirpStack uplink: \"deduplicationId\" must be a string of 1-%d "
		     "printable ASCII characters", SRC_ID_PART_MAX);
		goto out;
	}
	if (dedup)
		snprintf(id, sizeof(id), "%s", json_string_value(dedup));
	else
		snprintf(id, sizeof(id), "cs-%016" PRIx64, message_hash(topic, payload, len));
	o->id_base = id;

	if (obj && !json_is_null(obj) && !json_is_object(obj)) {
		fail(err, errlen, "ChirpStack uplink: \"object\" must be a JSON object");
		goto out;
	}
	rc = 0;
	if (!json_is_object(obj))
		goto out;  /* no codec: nothing to match, an unmapped uplink */
	int b;
	json_t *v = json_object_get(obj, "battery");
	if (v && int_in(v, 0, 100, &b))
		o->battery = b;
	o->has_rssi = best_rssi(json_object_get(root, "rxInfo"), "rssi", NULL, &o->rssi);
	rc = apply_rules(o, obj, false, err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ---- The Things Stack v3 ---- */

static bool time_part_ok(json_t *v)
{
	if (!id_part_ok(v, SRC_TIME_MAX))
		return false;
	for (const char *s = json_string_value(v); *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      *s == ':' || *s == '.' || *s == '+' || *s == '-'))
			return false;
	return true;
}

static int decode_ttn(struct out *o, const char *topic, const void *payload, size_t len,
                      char *address, size_t addrlen, char *err, size_t errlen)
{
	if (strcmp(last_segment(topic), "up") != 0)
		return 1;  /* join, down/..., service/data, location/solved */
	json_t *root = parse_object(payload, len, "The Things Stack uplink", "", err, errlen);
	if (!root)
		return -1;
	int rc = -1;
	char id[TC_EVENT_ID_MAX + 1];
	json_t *ids = json_object_get(root, "end_device_ids");
	json_t *dev = json_object_get(ids, "device_id");
	json_t *up = json_object_get(root, "uplink_message");
	json_t *fcnt = json_object_get(up, "f_cnt");
	json_t *at = json_object_get(root, "received_at");
	json_t *dp = json_object_get(up, "decoded_payload");

	if (!json_is_string(dev)) {
		fail(err, errlen, "The Things Stack uplink has no \"end_device_ids.device_id\" string");
		goto out;
	}
	if (set_address(json_string_value(dev), json_string_length(dev), address, addrlen, err,
	                errlen) < 0)
		goto out;
	if (!json_is_object(up)) {
		fail(err, errlen, "The Things Stack uplink has no \"uplink_message\" object");
		goto out;
	}
	/* fields that are zero are left out: no f_cnt is frame 0 */
	if (fcnt && !(json_is_integer(fcnt) && json_integer_value(fcnt) >= 0 &&
	              json_integer_value(fcnt) <= UINT32_MAX)) {
		fail(err, errlen, "The Things Stack uplink: \"uplink_message.f_cnt\" must be an integer "
		     "0-4294967295");
		goto out;
	}
	if (!at)
		at = json_object_get(up, "received_at");
	if (at && !time_part_ok(at)) {
		fail(err, errlen, "The Things Stack uplink: \"received_at\" must be an RFC 3339 time");
		goto out;
	}
	long long fc = fcnt ? json_integer_value(fcnt) : 0;
	if (at)
		snprintf(id, sizeof(id), "ttn-%lld-%s", fc, json_string_value(at));
	else
		snprintf(id, sizeof(id), "ttn-%lld-%016" PRIx64, fc, message_hash(topic, payload, len));
	o->id_base = id;

	if (dp && !json_is_null(dp) && !json_is_object(dp)) {
		fail(err, errlen, "The Things Stack uplink: \"decoded_payload\" must be a JSON object");
		goto out;
	}
	rc = 0;
	if (!json_is_object(dp))
		goto out;  /* no payload formatter: an unmapped uplink */
	int b;
	json_t *v = json_object_get(dp, "battery");
	if (v && int_in(v, 0, 100, &b))
		o->battery = b;
	o->has_rssi = best_rssi(json_object_get(up, "rx_metadata"), "rssi", "channel_rssi", &o->rssi);
	o->simulated = json_is_true(json_object_get(root, "simulated"));
	rc = apply_rules(o, dp, true, err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ---- entry point ---- */

int tc_source_decode(const struct tc_source *src, const char *topic, const void *payload,
                     size_t len, int64_t now_ms, char *address, size_t addrlen, json_t **events,
                     char *err, size_t errlen)
{
	char clean[64];
	*events = NULL;
	if (addrlen)
		address[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (!addrlen)
		return fail(err, errlen, "no room for the device address");
	if (!topic || !tc_utf8_valid(topic, strlen(topic)))
		return fail(err, errlen, "topic is not valid UTF-8");
	if (len > SRC_PAYLOAD_MAX)
		return fail(err, errlen, "payload too large: %zu bytes, limit %d", len, SRC_PAYLOAD_MAX);
	if (!payload)
		len = 0, payload = "";

	struct out o = { .src = src, .address = address, .battery = -1, .linkquality = -1,
	                 .events = json_array() };
	if (!o.events)
		return fail(err, errlen, "out of memory");
	int rc;
	switch (src->format) {
	case TC_SRC_ZIGBEE2MQTT:
		rc = decode_z2m(&o, topic, payload, len, now_ms, address, addrlen, err, errlen);
		break;
	case TC_SRC_CHIRPSTACK:
		rc = decode_chirpstack(&o, topic, payload, len, address, addrlen, err, errlen);
		break;
	case TC_SRC_TTN:
		rc = decode_ttn(&o, topic, payload, len, address, addrlen, err, errlen);
		break;
	default:
		rc = fail(err, errlen, "source \"%s\" has an unknown format",
		          tc_sanitize(src->name ? src->name : "", src->name ? strlen(src->name) : 0, clean,
		                      sizeof(clean)));
		break;
	}
	if (rc != 0) {
		json_decref(o.events);
		address[0] = '\0';
		return rc;
	}
	*events = o.events;
	return 0;
}
