/* What an alarm looks like from outside: the device's alarm-state topic
 * (SPEC 2.3, care alarms only: a pendant says "help is coming", not "your
 * battery alarm was acknowledged") and the dispatch board (SPEC 2.6). Both
 * retained, both published at once: the board never waits for the disk. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"

enum ob_class alarm_class(const struct alarm *a)
{
	return a->priority <= 1 ? OB_URGENT : a->priority == 2 ? OB_HIGH : OB_LOW;
}

static void publish_json(struct manager *m, enum ob_class cls, const char *topic, json_t *j,
                         bool retain)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(10));
	if (s)
		outbox_publish(m, cls, topic, s, strlen(s), retain);
	else
		log_error("out of memory publishing %s", topic);
	free(s);
	json_decref(j);
}

void publish_board(struct manager *m, const struct alarm *a)
{
	char topic[512];
	if (a->test || mqtt_topic(m, topic, sizeof(topic), "alarms/%lld", (long long)a->id) < 0)
		return;
	http_alarm_changed(m, a);   /* the consoles' stream carries the same summary */
	if (a->state == ALARM_RESOLVED)
		outbox_publish(m, OB_BOARD, topic, "", 0, true);  /* an empty retained message clears it */
	else
		publish_json(m, OB_BOARD, topic, alarm_json(m, a), true);
}

void publish_state(struct manager *m, const struct alarm *a)
{
	char topic[512];
	if (a->test || a->technical || a->incident)
		return;  /* tests are confirmed by receipt; the state says "help is coming" */
	if (mqtt_topic(m, topic, sizeof(topic), "dev/%s/alarm", a->device) < 0)
		return;
	json_t *j = json_pack("{s:I, s:s}", "alarm", (json_int_t)a->id, "state",
	                      alarm_state_name(a->state));
	if (a->state == ALARM_ACKED && a->acked_by)
		json_object_set_new(j, "by", json_string(a->acked_by));
	publish_json(m, alarm_class(a), topic, j, true);
}

/* Once per connection, coalesced with whatever waits for the same topics. */
void publish_all_open(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		publish_state(m, v);
		publish_board(m, v);
	}
}

/* A retained board entry the broker still holds for an alarm that is not
 * open here (resolved while we were away, or lost with an uncommitted write):
 * clear it, so consoles do not show a ghost. */
void publish_board_seen(struct manager *m, const char *alarm_id, size_t len, bool retained,
                        size_t payloadlen)
{
	char id[24], topic[512];
	if (!retained || !payloadlen || len == 0 || len >= sizeof(id))
		return;
	for (size_t i = 0; i < len; i++)
		if (alarm_id[i] < '0' || alarm_id[i] > '9')
			return;
	memcpy(id, alarm_id, len);
	id[len] = '\0';
	/* An id the world has seen is never given again, even if our file
	 * forgot it (restored from an older backup). */
	seq_at_least(m, &m->alarm_ids, strtoll(id, NULL, 10) + 1);
	if (map_get(&m->alarms, id))
		return;
	if (mqtt_topic(m, topic, sizeof(topic), "alarms/%s", id) == 0) {
		log_info("board: clearing stale retained entry for alarm %s", id);
		outbox_publish(m, OB_BOARD, topic, "", 0, true);
	}
}
