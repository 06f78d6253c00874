/* alarm.list / show and the actions on an alarm (SPEC 2.5) for people on
 * the control socket or the console. Who may act on which alarm is
 * action_apply()'s decision; here, who may see which. */
#include <stdlib.h>
#include <string.h>

#include "command.h"

/* A worker sees the alarms that alerted them; an installer the test alarms
 * (of devices on test); dispatchers and admins everything. */
static bool may_see(const struct actor *who, const struct alarm *a)
{
	size_t i;
	json_t *v;
	switch (who->role) {
	case ROLE_ADMIN:
	case ROLE_DISPATCHER:
		return true;
	case ROLE_INSTALLER:
		return a->test;
	case ROLE_WORKER:
		json_array_foreach(a->alerted, i, v)
			if (who->worker[0] && !strcmp(json_string_value(v) ? json_string_value(v) : "",
			                              who->worker))
				return true;
		return false;
	default:
		return false;
	}
}

static int cmp_alarm_desc(const void *a, const void *b)
{
	int64_t x = (*(struct alarm *const *)a)->id, y = (*(struct alarm *const *)b)->id;
	return x < y ? 1 : x > y ? -1 : 0;
}

json_t *cmd_alarm_list(struct manager *m, const struct actor *who, json_t *args)
{
	char err[256];
	json_t *list = json_array();
	if (arg_true(args, "open")) {
		struct alarm **v = calloc(m->alarms.len + 1, sizeof(*v));
		size_t n = 0;
		void *a;
		if (!v) {
			json_decref(list);
			return fail("out of memory");
		}
		for (size_t it = 0; map_next(&m->alarms, &it, NULL, &a);)
			if (may_see(who, a))
				v[n++] = a;
		qsort(v, n, sizeof(*v), cmp_alarm_desc);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(list, alarm_json(m, v[i]));
		free(v);
		return ok(list);
	}
	int64_t limit = arg_int(args, "limit", 100);
	if (limit < 1 || limit > LIST_MAX) {
		json_decref(list);
		return fail("limit must be 1-%d", LIST_MAX);
	}
	struct q_alarm_filter f = {
		.test_only = who->role == ROLE_INSTALLER,
		.alerted = who->role == ROLE_WORKER ? who->worker : NULL,
	};
	if (f.alerted && !*f.alerted)
		return ok(list);   /* a worker account linked to no worker */
	if (q_alarms(m, limit, &f, list, err, sizeof(err)) < 0) {
		json_decref(list);
		return fail("%s", err);
	}
	return ok(list);
}

static json_t *show(struct manager *m, const struct actor *who, int64_t id)
{
	char err[256];
	json_t *j = NULL;
	struct alarm *live = alarm_get(m, id), *stored = NULL;
	if (!live) {
		int r = q_alarm(m, id, &stored, err, sizeof(err));
		if (r < 0)
			return fail("alarm %lld: %s", (long long)id, err);
	}
	struct alarm *a = live ? live : stored;
	if (!a || !may_see(who, a)) {
		/* not "permission denied": whether it exists is not theirs to know */
		alarm_free(stored);
		return fail("alarm %lld does not exist", (long long)id);
	}
	j = alarm_json(m, a);
	bool incident = a->incident != NULL;
	alarm_free(stored);
	json_t *tl = json_array(), *events = json_array();
	/* a mass incident: its devices (DECISIONS "Mass incidents") */
	json_t *members = incident ? mass_members_json(m, id) : NULL;
	if (incident && !members)
		snprintf(err, sizeof(err), "database read failed: the incident's members");
	if (q_timeline(m, id, tl, err, sizeof(err)) < 0 ||
	    q_events(m, NULL, id, 1000, events, err, sizeof(err)) < 0 || (incident && !members)) {
		json_decref(j);
		json_decref(tl);
		json_decref(events);
		json_decref(members);
		return fail("alarm %lld: %s", (long long)id, err);
	}
	json_object_set_new(j, "timeline", tl);
	json_object_set_new(j, "events", events);
	if (members)
		json_object_set_new(j, "members", members);
	return ok(j);
}

json_t *cmd_alarm_show(struct manager *m, const struct actor *who, json_t *args)
{
	return show(m, who, arg_int(args, "id", 0));
}

static json_t *act(struct manager *m, const struct actor *who, json_t *args, const char *action)
{
	int64_t id = arg_int(args, "id", 0);
	char msg[1200];
	if (action_apply(m, who, arg_str(args, "as"), id, action, arg_str(args, "outcome"),
	                 arg_str(args, "note"), msg, sizeof(msg)) < 0)
		return fail("%s", msg);
	struct alarm *a = alarm_get(m, id);
	if (a)
		return ok(alarm_json(m, a));
	/* Resolved, it left memory: the answer is built again from the store
	 * once the resolution is committed (cmd_alarm_committed). */
	return ok(json_pack("{s:I, s:s}", "alarm", (json_int_t)id, "state", "resolved"));
}

json_t *cmd_alarm_ack(struct manager *m, const struct actor *who, json_t *args)
{
	return act(m, who, args, "ack");
}

json_t *cmd_alarm_resolve(struct manager *m, const struct actor *who, json_t *args)
{
	return act(m, who, args, "resolve");
}

json_t *cmd_alarm_note(struct manager *m, const struct actor *who, json_t *args)
{
	return act(m, who, args, "note");
}

json_t *cmd_alarm_decline(struct manager *m, const struct actor *who, json_t *args)
{
	return act(m, who, args, "decline");
}

/* alarm.resolve's answer: the alarm as the store now holds it, with its
 * timeline (the resolution included). The resolver may see it whatever
 * their role: they just resolved it. */
json_t *cmd_alarm_committed(struct manager *m, const struct actor *who, json_t *args)
{
	struct actor as_admin = *who;
	as_admin.role = ROLE_ADMIN;
	return show(m, &as_admin, arg_int(args, "id", 0));
}
