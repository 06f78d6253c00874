/* status: the daemon's health, for every role. */
#include <unistd.h>

#include "command.h"
#include "telecare/timefmt.h"

json_t *cmd_status(struct manager *m, const struct actor *who, json_t *args)
{
	(void)args;
	const char *err;
	bool sok = store_ok(m, &err);
	int64_t now = tc_now_ms();
	char label[160];
	json_t *j = json_pack(
		"{s:s, s:i, s:o, s:I, s:{s:b, s:s, s:i, s:s}, s:{s:s, s:b, s:I, s:o},"
		" s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o, s:o}",
		"version", TELECARE_VERSION, "pid", (int)getpid(),
		"started_at", json_time_or_null(m->started_at),
		"uptime_s", (json_int_t)((now - m->started_at) / 1000),
		"mqtt", "connected", m->mqtt_connected, "host", m->cfg->mqtt.host,
		"port", m->cfg->mqtt.port, "client_id", m->cfg->mqtt.client_id,
		"store", "path", m->cfg->store_path, "ok", sok, "pending", (json_int_t)store_pending(m),
		"error", json_str_or_null(err),
		"counts", "events_received", (json_int_t)m->count.received,
		"events_stored", (json_int_t)m->count.stored,
		"events_duplicate", (json_int_t)m->count.duplicate,
		"events_rejected", (json_int_t)m->count.rejected,
		"events_flood_dropped", (json_int_t)m->count.flood_dropped,
		"receipts_shed", (json_int_t)m->count.receipts_shed,
		"alarms_open", (json_int_t)m->alarms.len, "devices", (json_int_t)m->devices.len,
		"residents", (json_int_t)m->residents.len, "outbox", outbox_status(m),
		"loop", manager_loop_json(m));
	if (!j)
		return NULL;
	json_object_set_new(j, "control", control_status(m));
	json_object_set_new(j, "http", http_status(m));
	json_t *outcomes = json_array();   /* what a resolve may say: the console offers these */
	for (size_t i = 0; i < m->cfg->n_outcomes; i++)
		json_array_append_new(outcomes, json_string(m->cfg->outcomes[i]));
	json_object_set_new(j, "outcomes", outcomes);
	json_object_set_new(j, "dc09", dc09_status(m));   /* SIA DC-09 receivers (SPEC 2.8) */
	size_t incidents = 0;
	void *v;
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);)
		incidents += ((struct alarm *)v)->incident != NULL;
	json_object_set_new(json_object_get(j, "counts"), "incidents_open", json_integer((json_int_t)incidents));
	json_object_set_new(json_object_get(j, "counts"), "events_refused",
	                    json_integer((json_int_t)m->count.refused));
	/* who the daemon takes the caller for: the first thing to check when
	 * a command is refused */
	json_object_set_new(j, "caller", json_pack("{s:s, s:s}", "actor",
	                    actor_label(who, label, sizeof(label)), "role", role_name(who->role)));
	return ok(j);
}
