/* The human output of alarms, events and the report. */

#include <stdlib.h>
#include <string.h>

#include "telecarectl.h"

/* Events: SEQ RECEIVED DEVICE TYPE ALARM "EVENT ID" DETAIL. */
static const char *const event_headers[EVENT_COLS + 1] = {
	"SEQ", "RECEIVED", "DEVICE", "TYPE", "ALARM", "EVENT ID", "DETAIL", NULL
};

/* DETAIL: what a dispatcher wants at a glance, only what is present. */
static char *event_detail(const json_t *ev)
{
	const json_t *pl = json_object_get(ev, "payload");
	const json_t *v;
	char *detail = NULL;
	size_t dlen = 0;
	FILE *d = open_memstream(&detail, &dlen);
	if (!d)
		return strdup("?");
	if (json_is_false(json_object_get(ev, "known")))
		fputs(" unknown-device", d);
	if (json_is_true(json_object_get(pl, "test")))
		fputs(" test", d);
	if ((v = json_object_get(pl, "battery")) && !json_is_null(v)) {
		fputs(" battery=", d);
		put_value(d, v);
		fputc('%', d);
	}
	if ((v = json_object_get(pl, "rssi")) && !json_is_null(v)) {
		fputs(" rssi=", d);
		put_value(d, v);
	}
	if ((v = json_object_get(pl, "loc")) && json_is_object(v))
		fprintf(d, " loc=%.6f,%.6f", json_number_value(json_object_get(v, "lat")),
		        json_number_value(json_object_get(v, "lon")));
	if ((v = json_object_get(pl, "text")) && json_is_string(v)) {
		fputs(" text=\"", d);
		put_value(d, v);
		fputc('"', d);
	}
	fclose(d);
	if (detail && detail[0] == ' ')
		memmove(detail, detail + 1, strlen(detail));   /* the leading blank */
	return detail;
}

static void table_add_event(struct table *t, const json_t *ev)
{
	static const char *const keys[] = { "seq", "received_at", "device", "type", "alarm", "id" };
	for (size_t i = 0; i < EVENT_COLS - 1; i++)
		table_add_value(t, json_object_get(ev, keys[i]));
	table_add(t, event_detail(ev));
}

void print_event_list(const json_t *events, const char *indent)
{
	size_t i;
	const json_t *ev;
	struct table t;
	table_init(&t, event_headers);
	json_array_foreach(events, i, ev)
		table_add_event(&t, ev);
	table_print(&t, indent);
}

/* events --follow: the header and the first batch set the widths, at least
 * these (a seq of 7 digits, device and event ids of 20 and 24 characters,
 * ...) so that most of the lines arriving later fit; a longer cell later is
 * cut with an ellipsis rather than shifting the columns. */
static const size_t event_follow_min[EVENT_COLS] = { 7, 24, 20, 12, 5, 24, 0 };

void print_event_stream_line(const json_t *ev, const size_t *width)
{
	struct table t = { .ncols = EVENT_COLS };
	table_add_event(&t, ev);
	table_print_with(&t, "", width);
}

/* The resident column or line of an alarm: "Name (id)" or "-" for an
 * unknown device. */
static char *resident_label(const json_t *res)
{
	if (!json_is_object(res))
		return strdup("-");
	char *name = text_of(json_object_get(res, "name"));
	char *id = text_of(json_object_get(res, "id"));
	char *out = NULL;
	if (asprintf(&out, "%s (%s)", name, id) < 0)
		out = NULL;
	free(name);
	free(id);
	return out;
}

void print_alarm_table(const json_t *alarms, const char *indent)
{
	static const char *const h[] = { "ALARM", "STATE", "PRI", "TYPES", "DEVICE", "RESIDENT",
	                                 "OPENED", NULL };
	struct table t;
	size_t i;
	const json_t *a;

	table_init(&t, h);
	json_array_foreach(alarms, i, a) {
		table_add_value(&t, json_object_get(a, "alarm"));
		table_add_value(&t, json_object_get(a, "state"));
		table_add_value(&t, json_object_get(a, "priority"));
		char *types = join_array(json_object_get(a, "types"), ",");
		if (json_is_true(json_object_get(a, "test"))) {
			char *tagged = NULL;
			if (asprintf(&tagged, "%s [test]", types) >= 0) {
				free(types);
				types = tagged;
			}
		}
		table_add(&t, types);
		table_add_value(&t, json_object_get(a, "device"));
		table_add(&t, resident_label(json_object_get(a, "resident")));
		table_add_value(&t, json_object_get(a, "opened_at"));
	}
	table_print(&t, indent);
}

void print_alarm_list(const struct call *c, const json_t *d)
{
	if (!json_array_size(d)) {
		puts(json_object_get(c->args, TC_ARG_OPEN) ? "no open alarms" : "no alarms");
		return;
	}
	print_alarm_table(d, "");
}

void print_alarm(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "AT", "WHAT", "ACTOR", "DETAIL", NULL };
	const json_t *res = json_object_get(d, "resident");
	const json_t *loc = json_object_get(d, "loc");
	const json_t *tl = json_object_get(d, "timeline");
	const json_t *ev = json_object_get(d, "events");
	char *s;
	(void)c;

	kv("alarm:", json_object_get(d, "alarm"));
	kv("state:", json_object_get(d, "state"));
	kv("priority:", json_object_get(d, "priority"));
	s = join_array(json_object_get(d, "types"), ", ");
	printf("%-13s %s\n", "types:", s);
	free(s);
	kv("device:", json_object_get(d, "device"));
	kv("test:", json_object_get(d, "test"));
	kv("level:", json_object_get(d, "level"));
	kv("policy:", json_object_get(d, "policy"));
	kv("opened:", json_object_get(d, "opened_at"));
	if (json_is_object(loc)) {
		printf("%-13s %.6f, %.6f", "location:", json_number_value(json_object_get(loc, "lat")),
		       json_number_value(json_object_get(loc, "lon")));
		if (json_is_number(json_object_get(loc, "acc")))
			printf(" (within %.0f m)", json_number_value(json_object_get(loc, "acc")));
		putchar('\n');
	}
	kv("acked by:", json_object_get(d, "acked_by"));
	kv("acked at:", json_object_get(d, "acked_at"));
	kv("resolved at:", json_object_get(d, "resolved_at"));
	kv("outcome:", json_object_get(d, "outcome"));
	s = resident_label(res);
	printf("%-13s %s\n", "resident:", s ? s : "?");
	free(s);
	if (json_is_object(res)) {
		kv("address:", json_object_get(res, "address"));
		kv("phone:", json_object_get(res, "phone"));
		kv("team:", json_object_get(res, "team"));
		kv("notes:", json_object_get(res, "notes"));
	}
	if (tl) {
		size_t i;
		const json_t *e;
		struct table t;
		puts("timeline:");
		table_init(&t, h);
		json_array_foreach(tl, i, e) {
			table_add_value(&t, json_object_get(e, "at"));
			table_add_value(&t, json_object_get(e, "what"));
			table_add_value(&t, json_object_get(e, "actor"));
			table_add_value(&t, json_object_get(e, "detail"));
		}
		table_print(&t, "  ");
	}
	if (json_array_size(ev)) {
		puts("events:");
		print_event_list(ev, "  ");
	}
}

/* alarm ack / resolve / note / decline: what happened, then the alarm as it
 * is now. Without --as the caller acted as themselves; the alarm's timeline
 * names them. */
void print_alarm_action(const struct call *c, const json_t *d)
{
	const char *wire = c->cmd->wire;
	const json_t *as = json_object_get(c->args, TC_ARG_AS);
	fputs("alarm ", stdout);
	put_value(stdout, json_object_get(c->args, TC_ARG_ID));
	if (strcmp(wire, TC_CMD_ALARM_ACK) == 0) {
		fputs(" acknowledged", stdout);
	} else if (strcmp(wire, TC_CMD_ALARM_RESOLVE) == 0) {
		fputs(" resolved (", stdout);
		put_value(stdout, json_object_get(c->args, TC_ARG_OUTCOME));
		putchar(')');
	} else if (strcmp(wire, TC_CMD_ALARM_DECLINE) == 0) {
		fputs(" declined", stdout);
	} else {
		fputs(": note added", stdout);
	}
	if (as) {
		fputs(" by ", stdout);
		put_value(stdout, as);
	}
	putchar('\n');
	if (json_is_object(d)) {
		putchar('\n');
		print_alarm(c, d);
	}
}

/* A share 0-1 as "87.5%", seconds as "12.3s"; null and absent are "-". */
static char *percent_of(const json_t *v)
{
	char *out = NULL;
	if (!json_is_number(v) || asprintf(&out, "%.1f%%", json_number_value(v) * 100.0) < 0)
		return strdup("-");
	return out;
}

static char *seconds_of(const json_t *v)
{
	char *out = NULL;
	if (!json_is_number(v) || asprintf(&out, "%.1fs", json_number_value(v)) < 0)
		return strdup("-");
	return out;
}

void print_report(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "PRIORITY", "ALARMS", "ACKED", "\u226460s", "\u2264180s",
	                                 "MEDIAN", "P90", NULL };
	const json_t *rows = json_object_get(d, "priorities"), *r;
	struct table t;
	size_t i;
	(void)c;

	fputs("alarms opened from ", stdout);
	put_value(stdout, json_object_get(d, "from"));
	fputs(" to ", stdout);
	put_value(stdout, json_object_get(d, "to"));
	puts(" (test alarms not counted)");
	if (!json_array_size(rows)) {
		puts("no alarms");
		return;
	}
	table_init(&t, h);
	json_array_foreach(rows, i, r) {
		table_add_value(&t, json_object_get(r, "priority"));
		table_add_value(&t, json_object_get(r, "alarms"));
		table_add_value(&t, json_object_get(r, "acknowledged"));
		table_add(&t, percent_of(json_object_get(r, "within_60s")));
		table_add(&t, percent_of(json_object_get(r, "within_180s")));
		table_add(&t, seconds_of(json_object_get(r, "median_ack_s")));
		table_add(&t, seconds_of(json_object_get(r, "p90_ack_s")));
	}
	table_print(&t, "");
}

void print_events(const struct call *c, const json_t *d)
{
	size_t i;
	const json_t *ev;
	struct table t;

	if (!c->follow) {
		if (!json_array_size(d))
			puts("no events");
		else
			print_event_list(d, "");
		return;
	}
	/* With --follow the header comes even for an empty batch, and the lines
	 * that arrive later keep its widths so they line up under it. */
	table_init(&t, event_headers);
	json_array_foreach(d, i, ev)
		table_add_event(&t, ev);
	memcpy(c->ev_width, event_follow_min, sizeof(event_follow_min));
	table_widths(&t, c->ev_width);
	c->ev_width[EVENT_COLS - 1] = 0;   /* the last column is never padded */
	table_print_with(&t, "", c->ev_width);
}
