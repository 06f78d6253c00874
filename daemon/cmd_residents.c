/* resident.add / list / show / remove */
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "telecare/timefmt.h"

static json_t *resident_to_json(const void *r) { return resident_json(r); }

json_t *cmd_resident_add(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id"), *name = arg_str(args, "name");
	const char *team = arg_str(args, "team");
	char label[160];
	if (!name || !*name)
		return fail("resident %s: a name is required", id);
	if (team && !tc_device_id_valid(team, strlen(team)))
		return fail("resident %s: invalid team \"%s\": 1-64 of [A-Za-z0-9._-]", id, team);
	if (resident_get(m, id))
		return fail("resident %s already exists", id);
	struct resident *r = calloc(1, sizeof(*r));
	if (!r)
		return fail("out of memory");
	r->id = strdup(id);
	r->name = strdup(name);
	r->address = dup_or_null(arg_str(args, "address"));
	r->phone = dup_or_null(arg_str(args, "phone"));
	r->team = dup_or_null(team);
	r->notes = dup_or_null(arg_str(args, "notes"));
	r->created_at = tc_now_ms();
	if (resident_add(m, r) < 0)
		return fail("out of memory");
	log_info("resident %s added by %s", id, who_label(who, label, sizeof(label)));
	return ok(resident_json(r));
}

json_t *cmd_resident_list(struct manager *m, const struct actor *who, json_t *args)
{
	(void)who;
	(void)args;
	return ok(sorted_list(&m->residents, resident_to_json));
}

json_t *cmd_resident_show(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	(void)who;
	struct resident *r = resident_get(m, id);
	if (!r)
		return fail("resident %s does not exist", id);
	json_t *j = resident_json(r), *devs = json_array(), *alarms = json_array();
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		if (d->resident_id && strcmp(d->resident_id, id) == 0)
			json_array_append_new(devs, json_string(d->id));
	}
	for (size_t it = 0; map_next(&m->alarms, &it, NULL, &v);) {
		struct alarm *a = v;
		if (a->resident_id && strcmp(a->resident_id, id) == 0)
			json_array_append_new(alarms, alarm_json(m, a));
	}
	json_object_set_new(j, "devices", devs);
	json_object_set_new(j, "alarms", alarms);
	return ok(j);
}

json_t *cmd_resident_remove(struct manager *m, const struct actor *who, json_t *args)
{
	const char *id = arg_str(args, "id");
	char label[160];
	if (!resident_get(m, id))
		return fail("resident %s does not exist", id);
	void *v;
	for (size_t it = 0; map_next(&m->devices, &it, NULL, &v);) {
		struct device *d = v;
		if (d->resident_id && strcmp(d->resident_id, id) == 0)
			return fail("resident %s still has device %s; remove or move its devices first",
			            id, d->id);
	}
	resident_remove(m, id);
	log_info("resident %s removed by %s", id, who_label(who, label, sizeof(label)));
	return ok(NULL);
}
