/* The human output of the registry (residents, devices, device test and
 * import) and of status. */

#include <stdlib.h>
#include <string.h>

#include "telecare/timefmt.h"
#include "telecarectl.h"

static json_int_t num(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* The DC-09 receivers (SPEC 2.8): one block per sia-dc09 source. */
static void print_dc09(const json_t *all)
{
	const char *name;
	const json_t *s;
	json_object_foreach((json_t *)all, name, s) {
		const json_t *fr = json_object_get(s, "frames"), *re = json_object_get(s, "replies");
		const json_t *co = json_object_get(s, "connections"), *me = json_object_get(s, "messages");
		const json_t *nak = json_object_get(re, "NAK"), *v;
		const char *why;
		json_int_t naks = 0;
		json_object_foreach((json_t *)nak, why, v)
			naks += json_integer_value(v);
		printf("dc09 %s: ", name);
		put_value(stdout, json_object_get(s, "listen"));
		printf(", %" JSON_INTEGER_FORMAT " keys; connections %" JSON_INTEGER_FORMAT
		       " open (max %" JSON_INTEGER_FORMAT "), %" JSON_INTEGER_FORMAT " refused, %"
		       JSON_INTEGER_FORMAT " closed idle\n", num(s, "keys"), num(co, "open"), num(co, "max"),
		       num(co, "refused"), num(co, "idle_closed"));
		printf("  frames %" JSON_INTEGER_FORMAT " (TCP %" JSON_INTEGER_FORMAT ", UDP %"
		       JSON_INTEGER_FORMAT "): ACK %" JSON_INTEGER_FORMAT ", NAK %" JSON_INTEGER_FORMAT,
		       num(fr, "tcp") + num(fr, "udp"), num(fr, "tcp"), num(fr, "udp"), num(re, "ACK"), naks);
		bool first = true;
		json_object_foreach((json_t *)nak, why, v) {
			if (!json_integer_value(v))
				continue;
			printf("%s%s %" JSON_INTEGER_FORMAT, first ? " (" : ", ", why, json_integer_value(v));
			first = false;
		}
		printf("%s, DUH %" JSON_INTEGER_FORMAT "\n", first ? "" : ")",
		       num(json_object_get(re, "DUH"), "id"));
		printf("  messages: %" JSON_INTEGER_FORMAT " events (%" JSON_INTEGER_FORMAT
		       " resent), %" JSON_INTEGER_FORMAT " unmapped, %" JSON_INTEGER_FORMAT
		       " from unregistered accounts; %" JSON_INTEGER_FORMAT " polls from %"
		       JSON_INTEGER_FORMAT " devices, last ", num(me, "events"), num(me, "duplicates"),
		       num(me, "unmapped"), num(me, "unregistered"), num(me, "polls"),
		       num(s, "polling_devices"));
		put_value(stdout, json_object_get(s, "last_poll"));
		if (num(s, "replies_lost") || num(s, "udp_dropped"))
			printf("; %" JSON_INTEGER_FORMAT " replies lost (connection gone), %"
			       JSON_INTEGER_FORMAT " UDP messages dropped", num(s, "replies_lost"),
			       num(s, "udp_dropped"));
		putchar('\n');
	}
}

void print_status(const struct call *c, const json_t *d)
{
	const json_t *mqtt = json_object_get(d, "mqtt");
	const json_t *store = json_object_get(d, "store");
	const json_t *n = json_object_get(d, "counts");
	char up[64];
	(void)c;

	tc_duration_format((int64_t)(json_number_value(json_object_get(d, "uptime_s")) * 1000), up,
	                   sizeof(up));
	fputs("telecared ", stdout);
	put_value(stdout, json_object_get(d, "version"));
	fputs(", pid ", stdout);
	put_value(stdout, json_object_get(d, "pid"));
	printf(", up %s since ", up);
	put_value(stdout, json_object_get(d, "started_at"));

	fputs("\nmqtt:     ", stdout);
	fputs(json_is_true(json_object_get(mqtt, "connected")) ? "connected to " : "NOT connected to ",
	      stdout);
	put_value(stdout, json_object_get(mqtt, "host"));
	putchar(':');
	put_value(stdout, json_object_get(mqtt, "port"));
	fputs(" as ", stdout);
	put_value(stdout, json_object_get(mqtt, "client_id"));

	fputs("\nstore:    ", stdout);
	put_value(stdout, json_object_get(store, "path"));
	if (json_is_true(json_object_get(store, "ok"))) {
		fputs(": ok", stdout);
	} else {
		fputs(": FAILING (", stdout);
		put_value(stdout, json_object_get(store, "error"));
		putchar(')');
	}
	fputs(", pending ", stdout);
	put_value(stdout, json_object_get(store, "pending"));

	fputs("\nalarms:   ", stdout);
	put_value(stdout, json_object_get(n, "alarms_open"));
	fputs(" open\nregistry: ", stdout);
	put_value(stdout, json_object_get(n, "devices"));
	fputs(" devices, ", stdout);
	put_value(stdout, json_object_get(n, "residents"));
	fputs(" residents", stdout);
	fputs("\nevents:   ", stdout);
	put_value(stdout, json_object_get(n, "events_received"));
	fputs(" received, ", stdout);
	put_value(stdout, json_object_get(n, "events_stored"));
	fputs(" stored, ", stdout);
	put_value(stdout, json_object_get(n, "events_duplicate"));
	fputs(" duplicate, ", stdout);
	put_value(stdout, json_object_get(n, "events_rejected"));
	puts(" rejected");
	print_dc09(json_object_get(d, "dc09"));
}

/* remove: the answer is null; confirm what was removed (users go by name) */
void print_removed(const struct call *c, const json_t *d)
{
	const json_t *id = json_object_get(c->args, TC_ARG_ID);
	(void)d;
	printf("%s ", c->cmd->group);
	put_value(stdout, id ? id : json_object_get(c->args, TC_ARG_NAME));
	puts(" removed");
}

void print_resident_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "NAME", "TEAM", "PHONE", "ADDRESS", NULL };
	static const char *const k[] = { "id", "name", "team", "phone", "address", NULL };
	(void)c;
	print_rows(d, "no residents", h, k);
}

void print_device_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "RESIDENT", "KIND", "HEARTBEAT", "LAST SEEN",
	                                 "BATTERY", "RSSI", "TEST", NULL };
	static const char *const k[] = { "id", "resident", "kind", "heartbeat", "last_seen",
	                                 "battery", "rssi", "test", NULL };
	(void)c;
	print_rows(d, "no devices", h, k);
}

void print_device_unknown(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "DEVICE", "EVENTS", "FIRST SEEN", "LAST SEEN", "LAST TYPE",
	                                 NULL };
	static const char *const k[] = { "device", "events", "first_seen", "last_seen", "last_type",
	                                 NULL };
	(void)c;
	print_rows(d, "no unknown devices", h, k);
}

void print_device_unmapped(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "SOURCE", "ADDRESS", "MESSAGES", "LAST SEEN", "REASON",
	                                 "LAST PAYLOAD", NULL };
	static const char *const k[] = { "source", "address", "messages", "last_seen", "reason",
	                                 "last_payload", NULL };
	(void)c;
	print_rows(d, "no unmapped source messages", h, k);
}

/* resident show, and resident add (which answers the resident alone) */
void print_resident(const struct call *c, const json_t *d)
{
	const json_t *v;
	(void)c;

	kv("id:", json_object_get(d, "id"));
	kv("name:", json_object_get(d, "name"));
	kv("address:", json_object_get(d, "address"));
	kv("phone:", json_object_get(d, "phone"));
	kv("team:", json_object_get(d, "team"));
	kv("notes:", json_object_get(d, "notes"));
	kv("created:", json_object_get(d, "created_at"));
	if ((v = json_object_get(d, "devices"))) {
		char *ids = join_array(v, ", ");
		printf("%-13s %s\n", "devices:", ids);
		free(ids);
	}
	if ((v = json_object_get(d, "alarms"))) {
		if (!json_array_size(v)) {
			printf("%-13s none\n", "open alarms:");
		} else {
			puts("open alarms:");
			print_alarm_table(v, "  ");
		}
	}
}

/* device show, and device add */
void print_device(const struct call *c, const json_t *d)
{
	const json_t *ev;
	(void)c;

	kv("id:", json_object_get(d, "id"));
	kv("resident:", json_object_get(d, "resident"));
	kv("kind:", json_object_get(d, "kind"));
	kv("source:", json_object_get(d, "source"));
	kv("address:", json_object_get(d, "address"));
	kv("heartbeat:", json_object_get(d, "heartbeat"));
	kv("supervision:", json_object_get(d, "supervision"));
	kv("test:", json_object_get(d, "test"));
	kv("created:", json_object_get(d, "created_at"));
	kv("last seen:", json_object_get(d, "last_seen"));
	if (!json_is_null(json_object_get(d, "last_poll") ? json_object_get(d, "last_poll") : json_null()))
		kv("last poll:", json_object_get(d, "last_poll"));   /* DC-09 link tests */
	kv("battery:", json_object_get(d, "battery"));
	kv("rssi:", json_object_get(d, "rssi"));
	if ((ev = json_object_get(d, "events"))) {
		if (!json_array_size(ev)) {
			printf("%-13s none\n", "last events:");
		} else {
			puts("last events:");
			print_event_list(ev, "  ");
		}
	}
}

void print_device_import(const struct call *c, const json_t *d)
{
	const json_t *n = json_object_get(d, "added");
	(void)c;
	fputs("imported ", stdout);
	put_value(stdout, n);
	puts(json_integer_value(n) == 1 ? " device" : " devices");
}

/* One stage of device test: "AT  STAGE     DETAIL". */
void print_test_stage(const json_t *st)
{
	const char *stage = json_string_value(json_object_get(st, TC_KEY_STAGE));
	const json_t *detail = json_object_get(st, "detail"), *alarm = json_object_get(st, "alarm");

	put_value(stdout, json_object_get(st, "at"));
	fputs("  ", stdout);
	if (!stage) {
		fputs("?", stdout);
	} else if (strcmp(stage, TC_STAGE_WAITING) == 0) {
		fputs("waiting   ", stdout);
		put_value(stdout, json_object_get(st, "device"));
		fputs(": press the button (or trigger the sensor) now", stdout);
	} else if (strcmp(stage, TC_STAGE_STORED) == 0 && json_is_integer(alarm)) {
		fputs("stored    alarm ", stdout);
		put_value(stdout, alarm);
	} else {
		const char *label = strcmp(stage, TC_STAGE_RECEIPT_SENT) == 0 ? "receipt sent" : NULL;
		char *text = label ? NULL : text_of(json_object_get(st, TC_KEY_STAGE));
		label = label ? label : text;
		if (json_is_null(detail ? detail : json_null())) {
			fputs(label, stdout);
		} else {
			printf("%-9s ", label);
			put_value(stdout, detail);
		}
		free(text);
	}
	putchar('\n');
}

/* device test: the first answer, "waiting" */
void print_device_test(const struct call *c, const json_t *d)
{
	(void)c;
	print_test_stage(d);
}

