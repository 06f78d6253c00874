/* SPEC 3 as a pure function: what an event does to its device's alarms.
 * No I/O, no clock: tests/unit/test_decide.c covers every branch.
 *
 * A device has at most one unresolved care alarm (any alarm-kind event joins
 * it) and at most one unresolved technical alarm per technical type, since a
 * restoral resolves "the matching open technical alarm". A test never joins
 * a real alarm: that one still needs a person. */
#include <stdio.h>
#include <string.h>

#include "telecared.h"

void alarm_decide(const struct config *cfg, const char *device, bool registered,
                  bool device_on_test, const struct tc_event *ev,
                  bool (*has_open)(void *ctx, const char *key), void *ctx,
                  struct alarm_decision *out)
{
	enum tc_kind kind = tc_type_kind(ev->type);
	memset(out, 0, sizeof(*out));
	out->test = ev->test || device_on_test;
	if (!registered && cfg->unknown_devices == UNKNOWN_LOG)
		return;  /* stored and listed, nothing more */

	switch (kind) {
	case TC_KIND_ALARM:
	case TC_KIND_TECHNICAL:
		out->technical = kind == TC_KIND_TECHNICAL;
		out->priority = cfg->priority[ev->type];
		if (out->technical)
			snprintf(out->key, sizeof(out->key), "%s/%s", device, tc_type_name(ev->type));
		else
			snprintf(out->key, sizeof(out->key), "%s/care", device);
		/* A test never joins a real alarm: that one still needs a person. */
		out->action = (!out->test && has_open(ctx, out->key)) ? ACT_JOIN : ACT_OPEN;
		return;
	case TC_KIND_RESTORAL:
		snprintf(out->key, sizeof(out->key), "%s/%s", device,
		         tc_type_name(tc_type_restores(ev->type)));
		if (has_open(ctx, out->key))
			out->action = ACT_RESOLVE;
		return;
	case TC_KIND_CANCEL:
		snprintf(out->key, sizeof(out->key), "%s/care", device);
		if (has_open(ctx, out->key))
			out->action = ACT_CANCEL;
		return;
	case TC_KIND_HEARTBEAT:
		return;
	}
}
