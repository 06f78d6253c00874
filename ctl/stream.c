/* What follows an answer on the same connection: the events of
 * `events --follow`, the stages of `device test`. */

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telecare/timefmt.h"
#include "telecarectl.h"

/* The follow stream after the answer: {"event": {...}} lines until the
 * daemon hangs up or we are told to stop. Either way the job is done. */
int follow_events(const struct options *o, const struct call *c, struct reader *r)
{
	for (;;) {
		char *line;
		size_t len;
		int rc = read_line(r, &line, &len);
		if (rc == RD_EOF || rc == RD_SIGNAL)
			return TC_EXIT_OK;
		if (rc == RD_ERROR)
			return die_unreachable(o->socket_path, strerror(errno));

		json_error_t jerr;
		json_t *msg = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
		const json_t *ev = json_object_get(msg, TC_KEY_EVENT);
		if (json_is_object(ev)) {
			if (o->json)
				print_json(ev, JSON_COMPACT);
			else
				print_event_stream_line(ev, c->ev_width);
			fflush(stdout);
		} else if (json_is_false(json_object_get(msg, TC_KEY_OK))) {
			/* the daemon ending the stream with a reason */
			fputs(PROG ": ", stderr);
			put_value(stderr, json_object_get(msg, TC_KEY_ERROR));
			fputc('\n', stderr);
			json_decref(msg);
			return TC_EXIT_REFUSED;
		}
		/* anything else is for a newer client: skip it */
		json_decref(msg);
	}
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What device test has seen so far. */
struct test_state {
	const char *device;
	bool received, stored, receipt_sent, alerted;
	char last[32];          /* the last stage reported, "" for none */
	int64_t alarm;          /* -1 until a stage names it */
	int64_t received_at, alerted_at;   /* the daemon's clock, ms; -1 unknown */
};

/* "after \"stored\" (alarm 42)" for failure messages: how far the test got */
static void put_test_progress(FILE *f, const struct test_state *t)
{
	fprintf(f, "\"%s\"", t->last);
	if (t->alarm >= 0)
		fprintf(f, " (alarm %lld)", (long long)t->alarm);
}

static void put_missing_stages(FILE *f, const struct test_state *t)
{
	const char *sep = "";
	const struct { bool seen; const char *name; } st[] = {
		{ t->received, "received" }, { t->stored, "stored" },
		{ t->receipt_sent, "receipt sent" }, { t->alerted, "alerted" },
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		if (!st[i].seen) {
			fprintf(f, "%s%s", sep, st[i].name);
			sep = ", ";
		}
	}
}

static void note_stage(struct test_state *t, const json_t *st)
{
	const char *stage = json_string_value(json_object_get(st, TC_KEY_STAGE));
	const json_t *alarm = json_object_get(st, "alarm");
	int64_t at = -1;
	const char *ats = json_string_value(json_object_get(st, "at"));
	if (ats && tc_time_parse(ats, &at) < 0)
		at = -1;
	if (!stage)
		return;
	if (json_is_integer(alarm))
		t->alarm = json_integer_value(alarm);
	snprintf(t->last, sizeof(t->last), "%s",
	         strcmp(stage, TC_STAGE_RECEIPT_SENT) ? stage : "receipt sent");
	if (strcmp(stage, TC_STAGE_RECEIVED) == 0) {
		t->received = true;
		t->received_at = at;
	} else if (strcmp(stage, TC_STAGE_STORED) == 0) {
		t->stored = true;
	} else if (strcmp(stage, TC_STAGE_RECEIPT_SENT) == 0) {
		t->receipt_sent = true;
	} else if (strcmp(stage, TC_STAGE_ALERTED) == 0) {
		t->alerted = true;
		t->alerted_at = at;
	}
}

/* device test after the "waiting" answer: one line per stage until
 * "alerted" (the daemon then closes), the timeout, the daemon going away, or
 * Ctrl-C. Closing the connection takes the device off test. Exit 0 only when
 * every stage of the path came. */
int device_test_stream(const struct options *o, const struct call *c, struct reader *r)
{
	struct test_state t = {
		.device = json_string_value(json_object_get(c->args, TC_ARG_ID)),
		.alarm = -1, .received_at = -1, .alerted_at = -1,
	};
	char within[64];
	int64_t deadline = monotonic_ms() + c->test_ms;
	tc_duration_format(c->test_ms, within, sizeof(within));

	while (!t.alerted) {
		int64_t left = deadline - monotonic_ms();
		int rc = RD_ERROR;
		char *line = NULL;
		size_t len = 0;
		errno = ETIMEDOUT;
		if (left > 0) {
			r->timeout_ms = left > INT_MAX ? INT_MAX : (int)left;
			rc = read_line(r, &line, &len);
		}
		if (rc == RD_SIGNAL) {
			fputs("test interrupted", stderr);
			if (t.last[0]) {
				fputs(" after ", stderr);
				put_test_progress(stderr, &t);
			}
			fputs("; the device is no longer on test\n", stderr);
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_ERROR && errno == ETIMEDOUT) {
			if (!t.received) {
				fputs("test failed: no alarm from ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fprintf(stderr, " within %s (check power, range, and that it publishes to "
				        "telecare/dev/", within);
				put_clean(stderr, t.device, strlen(t.device));
				fputs("/event)\n", stderr);
			} else {
				fputs("test failed: ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fputs(" reached ", stderr);
				put_test_progress(stderr, &t);
				fprintf(stderr, " but telecared did not report ");
				put_missing_stages(stderr, &t);
				fprintf(stderr, " within %s\n", within);
			}
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_ERROR) {
			fprintf(stderr, "test failed: lost telecared at %s: %s\n", o->socket_path,
			        strerror(errno));
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_EOF) {
			fputs("test failed: telecared ended the test ", stderr);
			if (t.last[0]) {
				fputs("after ", stderr);
				put_test_progress(stderr, &t);
				fputs(", before ", stderr);
				put_missing_stages(stderr, &t);
			} else {
				fputs("before any alarm from ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fputs(" (was it stopped or restarted?)", stderr);
			}
			fputc('\n', stderr);
			return TC_EXIT_REFUSED;
		}

		json_error_t jerr;
		json_t *msg = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
		if (json_is_false(json_object_get(msg, TC_KEY_OK))) {
			/* the daemon ending the test with a reason */
			fputs("test failed: ", stderr);
			put_value(stderr, json_object_get(msg, TC_KEY_ERROR));
			fputc('\n', stderr);
			json_decref(msg);
			return TC_EXIT_REFUSED;
		}
		if (json_is_string(json_object_get(msg, TC_KEY_STAGE))) {
			note_stage(&t, msg);
			if (o->json)
				print_json(msg, JSON_COMPACT);
			else
				print_test_stage(msg);
			fflush(stdout);
		}
		/* anything else is for a newer client: skip it */
		json_decref(msg);
	}

	if (!t.received || !t.stored || !t.receipt_sent) {
		fputs("test failed: ", stderr);
		put_clean(stderr, t.device, strlen(t.device));
		if (t.alarm >= 0)
			fprintf(stderr, " \u2192 alarm %lld", (long long)t.alarm);
		fputs(": telecared did not report ", stderr);
		put_missing_stages(stderr, &t);
		fputc('\n', stderr);
		return TC_EXIT_REFUSED;
	}
	if (!o->json) {
		/* the gateway's part: from hearing the device to the installer's alert */
		int64_t took = t.received_at >= 0 && t.alerted_at >= t.received_at ?
		               t.alerted_at - t.received_at : -1;
		fputs("test passed: ", stdout);
		put_clean(stdout, t.device, strlen(t.device));
		fputs(" \u2192 ", stdout);
		if (t.alarm >= 0)
			printf("alarm %lld", (long long)t.alarm);
		else
			fputs("an alarm", stdout);
		if (took >= 1000)
			printf(" in %.1f s", (double)took / 1000.0);
		else if (took >= 0)
			printf(" in %lld ms", (long long)took);
		putchar('\n');
	}
	return TC_EXIT_OK;
}
