/* The one table of commands (docs/CONTROL.md) and the runner both fronts
 * use: the control socket now, the HTTP API next. A row says who may run a
 * command and what its arguments are; the runner checks both before the
 * handler runs, hashes a password off the loop when there is one, and holds
 * the answer of a command that wrote something until the store has
 * committed it (SPEC 7: every promise waits for its commit). */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "telecare/timefmt.h"

#define ARGS(...) ((const struct arg[]){ __VA_ARGS__, { NULL, 0, 0, NULL } })
#define NO_ARGS   ((const struct arg[]){ { NULL, 0, 0, NULL } })
#define REQ       ARG_REQUIRED

/* Who may do what (SPEC 6.1): admin everything; dispatcher alarms (any,
 * as themselves or for a worker) and reads of residents, devices, workers,
 * shifts, on-call, events and the report; installer residents, devices,
 * sources, imports, device tests and (read) the test alarms; worker the
 * alarms that alerted them and their own shifts. Handlers narrow lists to
 * what the role may see (alarm.list for a worker: theirs). */
/* Rows name what they have; the optional fields left out are NULL. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct command commands[] = {
	{ "status", cmd_status, R_ANY, NO_ARGS, NULL },

	{ "resident.add", cmd_resident_add, R_INSTALLER,
	  ARGS({ "id", A_ID, REQ, "resident" }, { "name", A_TEXT, 0, NULL },
	       { "address", A_TEXT, 0, NULL }, { "phone", A_TEXT, 0, NULL },
	       { "team", A_TEXT, 0, NULL }, { "notes", A_TEXT, 0, NULL }), NULL },
	{ "resident.list", cmd_resident_list, R_INSTALLER | R_DISPATCHER, NO_ARGS, NULL },
	{ "resident.show", cmd_resident_show, R_INSTALLER | R_DISPATCHER,
	  ARGS({ "id", A_ID, REQ, "resident" }), NULL },
	{ "resident.remove", cmd_resident_remove, R_INSTALLER,
	  ARGS({ "id", A_ID, REQ, "resident" }), NULL },

	{ "device.add", cmd_device_add, R_INSTALLER,
	  ARGS({ "id", A_ID, REQ, "device" }, { "resident", A_ID, REQ, "resident" },
	       { "kind", A_TEXT, 0, NULL }, { "heartbeat_ms", A_INT, 0, NULL },
	       { "source", A_TEXT, 0, NULL }, { "address", A_TEXT, 0, NULL }), NULL },
	{ "device.list", cmd_device_list, R_INSTALLER | R_DISPATCHER, NO_ARGS, NULL },
	{ "device.show", cmd_device_show, R_INSTALLER | R_DISPATCHER,
	  ARGS({ "id", A_ID, REQ, "device" }), NULL },
	{ "device.remove", cmd_device_remove, R_INSTALLER,
	  ARGS({ "id", A_ID, REQ, "device" }), NULL },
	{ "device.unknown", cmd_device_unknown, R_INSTALLER | R_DISPATCHER, NO_ARGS, NULL },
	{ "device.test", cmd_device_test, R_INSTALLER, ARGS({ "id", A_ID, REQ, "device" }), NULL },
	{ "device.adopt", cmd_device_adopt, R_INSTALLER,
	  ARGS({ "id", A_ID, REQ, "device" }, { "resident", A_ID, REQ, "resident" },
	       { "kind", A_TEXT, 0, NULL }, { "heartbeat_ms", A_INT, 0, NULL },
	       { "source", A_TEXT, 0, NULL }, { "address", A_TEXT, 0, NULL }), NULL },
	/* each row is checked like device.add's arguments by the handler */
	{ "device.import", cmd_device_import, R_INSTALLER, ARGS({ "rows", A_ROWS, REQ, NULL }), NULL },
	{ "source.unmapped", cmd_source_unmapped, R_INSTALLER, NO_ARGS, NULL },
	/* what devices sent: installers check their devices, dispatchers read it */
	{ "events", NULL, R_INSTALLER | R_DISPATCHER,
	  ARGS({ "device", A_ID, 0, "device" }, { "limit", A_INT, 0, NULL },
	       { "follow", A_BOOL, 0, NULL }), NULL, cmd_events_slice, cmd_events_free },

	{ "worker.add", cmd_worker_add, 0,
	  ARGS({ "id", A_ID, REQ, "worker" }, { "name", A_TEXT, 0, NULL },
	       { "team", A_TEXT, 0, NULL }, { "phone", A_TEXT, 0, NULL },
	       { "webhook", A_TEXT, 0, NULL }), NULL },
	{ "worker.list", cmd_worker_list, R_DISPATCHER, NO_ARGS, NULL },
	/* a worker may read their own */
	{ "worker.show", cmd_worker_show, R_DISPATCHER | R_WORKER,
	  ARGS({ "id", A_ID, REQ, "worker" }), NULL },
	{ "worker.remove", cmd_worker_remove, 0, ARGS({ "id", A_ID, REQ, "worker" }), NULL },
	{ "shift.add", cmd_shift_add, 0,
	  ARGS({ "worker", A_ID, REQ, "worker" }, { "always", A_BOOL, 0, NULL },
	       { "days", A_TEXT, 0, NULL }, { "hours", A_TEXT, 0, NULL },
	       { "from", A_TIME, 0, NULL }, { "to", A_TIME, 0, NULL }), NULL },
	/* a worker: their own shifts */
	{ "shift.list", cmd_shift_list, R_DISPATCHER | R_WORKER, ARGS({ "at", A_TIME, 0, NULL }), NULL },
	{ "shift.remove", cmd_shift_remove, 0, ARGS({ "id", A_INT, REQ, "shift" }), NULL },
	{ "oncall", cmd_oncall, R_DISPATCHER,
	  ARGS({ "at", A_TIME, 0, NULL }, { "team", A_ID, 0, "team" }), NULL },
	{ "oncall.gaps", cmd_oncall_gaps, R_DISPATCHER,
	  ARGS({ "hours", A_INT, 0, NULL }, { "team", A_ID, 0, "team" }), NULL },

	/* an installer sees test alarms, a worker the alarms that alerted them */
	{ "alarm.list", cmd_alarm_list, R_ANY,
	  ARGS({ "open", A_BOOL, 0, NULL }, { "limit", A_INT, 0, NULL }), NULL },
	{ "alarm.show", cmd_alarm_show, R_ANY, ARGS({ "id", A_INT, REQ, "alarm" }), NULL },
	/* per alarm, action_apply() decides who may act (SPEC 2.5): an installer
	 * only on alarms of devices on test, a worker on those that alerted them */
	{ "alarm.ack", cmd_alarm_ack, R_ANY,
	  ARGS({ "id", A_INT, REQ, "alarm" }, { "as", A_ID, 0, "worker" }), NULL },
	{ "alarm.resolve", cmd_alarm_resolve, R_ANY,
	  ARGS({ "id", A_INT, REQ, "alarm" }, { "as", A_ID, 0, "worker" },
	       { "outcome", A_TEXT, 0, NULL }, { "note", A_TEXT, 0, NULL }), cmd_alarm_committed },
	{ "alarm.note", cmd_alarm_note, R_ANY,
	  ARGS({ "id", A_INT, REQ, "alarm" }, { "as", A_ID, 0, "worker" },
	       { "note", A_TEXT, 0, NULL }), NULL },
	/* "as" may be left out by a worker declining for themselves */
	{ "alarm.decline", cmd_alarm_decline, R_ANY,
	  ARGS({ "id", A_INT, REQ, "alarm" }, { "as", A_ID, 0, "worker" }), NULL },

	{ "report", NULL, R_DISPATCHER,
	  ARGS({ "from", A_TIME, 0, NULL }, { "to", A_TIME, 0, NULL }), NULL,
	  cmd_report_slice, cmd_report_free },

	{ "user.add", cmd_user_add, 0,
	  ARGS({ "name", A_ID, REQ, "user" }, { "role", A_ROLE, REQ, NULL },
	       { "worker", A_ID, 0, "worker" }, { "password", A_PASSWORD, REQ, NULL }), NULL },
	{ "user.passwd", cmd_user_passwd, 0,
	  ARGS({ "name", A_ID, REQ, "user" }, { "password", A_PASSWORD, REQ, NULL }), NULL },
	{ "user.list", cmd_user_list, 0, NO_ARGS, NULL },
	{ "user.remove", cmd_user_remove, 0, ARGS({ "name", A_ID, REQ, "user" }), NULL },
};
#pragma GCC diagnostic pop
const size_t n_commands = sizeof(commands) / sizeof(commands[0]);

static const char *const role_names[] = {
	[ROLE_NONE] = "none", [ROLE_WORKER] = "worker", [ROLE_INSTALLER] = "installer",
	[ROLE_DISPATCHER] = "dispatcher", [ROLE_ADMIN] = "admin",
};

const char *role_name(enum role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(*role_names) ? role_names[r] : "none";
}

enum role role_from_name(const char *s)
{
	for (enum role r = ROLE_WORKER; r <= ROLE_ADMIN; r++)
		if (s && !strcmp(s, role_names[r]))
			return r;
	return ROLE_NONE;
}

/* ---- answers and arguments ---- */

json_t *ok(json_t *data)
{
	return json_pack("{s:b, s:o}", "ok", 1, "data", data ? data : json_null());
}

json_t *fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A cut must not leave half a character: the answer would not encode. */
	size_t len = strlen(msg);
	for (int i = 0; i < 3 && len && !tc_utf8_valid(msg, len); i++)
		msg[--len] = '\0';
	if (!tc_utf8_valid(msg, len)) {
		char clean[sizeof(msg)];
		tc_sanitize(msg, len, clean, sizeof(clean));
		return json_pack("{s:b, s:s}", "ok", 0, "error", clean);
	}
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

const char *arg_str(json_t *args, const char *key)
{
	return json_string_value(json_object_get(args, key));
}

int64_t arg_int(json_t *args, const char *key, int64_t def)
{
	json_t *v = json_object_get(args, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

bool arg_true(json_t *args, const char *key)
{
	return json_is_true(json_object_get(args, key));
}

int64_t arg_time(json_t *args, const char *key, int64_t def)
{
	int64_t t;
	const char *s = arg_str(args, key);
	return s && tc_time_parse(s, &t) == 0 ? t : def;
}

char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int cmp_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

json_t *sorted_list(struct map *map, json_t *(*to_json)(const void *))
{
	const char **keys = calloc(map->len + 1, sizeof(*keys));
	json_t *list = json_array();
	if (!keys)
		return list;
	size_t n = 0;
	const char *k;
	for (size_t it = 0; map_next(map, &it, &k, NULL);)
		keys[n++] = k;
	qsort(keys, n, sizeof(*keys), cmp_key);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, to_json(map_get(map, keys[i])));
	free(keys);
	return list;
}

const char *who_label(const struct actor *who, char *buf, size_t len)
{
	return actor_label(who, buf, len);
}

/* One declared argument; NULL when it is fine. */
static json_t *check_arg(const struct arg *a, json_t *v)
{
	char clean[80];
	if (!v || json_is_null(v)) {
		if (!(a->flags & ARG_REQUIRED))
			return NULL;
		if (a->type == A_ID)
			return !strcmp(a->what, "user") ? fail("missing user name (\"%s\")", a->name)
			                                : fail("missing %s id (\"%s\")", a->what, a->name);
		if (a->type == A_INT && a->what)
			return fail("missing %s id (an integer)", a->what);
		return fail("missing \"%s\"", a->name);
	}
	switch (a->type) {
	case A_ID:
		if (json_is_string(v) && tc_device_id_valid(json_string_value(v), json_string_length(v)))
			return NULL;
		if (!json_is_string(v))
			return fail("\"%s\" must be a %s %s", a->name, a->what,
			            strcmp(a->what, "user") ? "id" : "name");
		tc_sanitize(json_string_value(v), json_string_length(v), clean, sizeof(clean));
		return !strcmp(a->what, "user")
		       ? fail("invalid user name \"%s\": 1-64 of [A-Za-z0-9._-]", clean)
		       : fail("invalid %s id \"%s\": 1-64 of [A-Za-z0-9._-]", a->what, clean);
	case A_TEXT:
		if (json_is_string(v) && json_string_length(v) <= FIELD_MAX &&
		    !memchr(json_string_value(v), '\0', json_string_length(v)))
			return NULL;
		return fail("\"%s\" must be text of at most %d bytes", a->name, FIELD_MAX);
	case A_INT:
		if (json_is_integer(v))
			return NULL;
		return a->what ? fail("missing %s id (an integer)", a->what)
		               : fail("%s must be an integer", a->name);
	case A_BOOL:
		return json_is_boolean(v) ? NULL : fail("\"%s\" must be true or false", a->name);
	case A_TIME: {
		int64_t t;
		if (json_is_string(v) && tc_time_parse(json_string_value(v), &t) == 0)
			return NULL;
		return fail("\"%s\" must be an RFC 3339 time, e.g. 2026-11-22T10:15:00Z", a->name);
	}
	case A_ROWS: {
		size_t i;
		json_t *row;
		if (!json_is_array(v) || json_array_size(v) == 0)
			return fail("\"%s\" must be a non-empty array of devices", a->name);
		json_array_foreach(v, i, row)
			if (!json_is_object(row))
				return fail("\"%s\" must be an array of objects", a->name);
		return NULL;
	}
	case A_ROLE:
		if (role_from_name(json_string_value(v)) != ROLE_NONE)
			return NULL;
		if (json_is_string(v))
			tc_sanitize(json_string_value(v), json_string_length(v), clean, sizeof(clean));
		return fail("%s%s%s is not a role; use admin, dispatcher, installer or worker",
		            json_is_string(v) ? "\"" : "", json_is_string(v) ? clean : "that",
		            json_is_string(v) ? "\"" : "");
	case A_PASSWORD:
		if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v)))
			return fail("a password is text");
		if (json_string_length(v) < PASSWORD_MIN || json_string_length(v) > PASSWORD_MAX)
			return fail("a password is %d-%d bytes", PASSWORD_MIN, PASSWORD_MAX);
		return NULL;
	}
	return fail("argument \"%s\" of an unknown kind", a->name);
}

/* The least of the roles that may run cmd, for the refusal: dispatcher for
 * an alarm action (a worker role comes only from a console account). */
static enum role needed_role(const struct command *c)
{
	static const enum role order[] = { ROLE_INSTALLER, ROLE_DISPATCHER, ROLE_WORKER };
	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++)
		if (c->roles & ROLE_BIT(order[i]))
			return order[i];
	return ROLE_ADMIN;
}

const char *command_roles_text(const struct command *c, char *buf, size_t len)
{
	static const enum role order[] = { ROLE_DISPATCHER, ROLE_INSTALLER, ROLE_WORKER };
	if ((c->roles & R_ANY) == (R_ANY & ~R_ADMIN) || (c->roles & R_ANY) == R_ANY)
		return snprintf(buf, len, "all"), buf;
	if (!(c->roles & ~R_ADMIN))
		return snprintf(buf, len, "admin"), buf;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(order) / sizeof(*order); i++)
		if (c->roles & ROLE_BIT(order[i]))
			snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "",
			         role_name(order[i]));
	return buf;
}

bool command_allowed(const struct command *c, enum role r)
{
	return r == ROLE_ADMIN || (r != ROLE_NONE && (c->roles & ROLE_BIT(r)));
}

const struct command *command_find(const char *name)
{
	for (size_t i = 0; name && i < n_commands; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* ---- the runner ---- */

struct command_call {
	struct manager *m;
	const struct command *cmd;
	struct actor who;
	json_t *args;                 /* our own copy */
	command_reply_fn reply;       /* NULL once the front-end is gone */
	void *data;
	json_t *answer;               /* held until the commit */
	struct hash_job *job;         /* hashing a password */
	void *state;                  /* a sliced read's, between slices */
	sd_event_source *more;        /* its next slice */
	bool running;                 /* inside command_run() */
	bool finished;                /* answered while running */
};

static void slice_end(struct command_call *c)
{
	if (c->state && c->cmd->slice_free)
		c->cmd->slice_free(c->state);
	c->state = NULL;
	c->more = sd_event_source_disable_unref(c->more);
}

static void call_free(struct command_call *c)
{
	slice_end(c);
	json_decref(c->args);
	json_decref(c->answer);
	free(c);
}

static void deliver(struct command_call *c, json_t *answer)
{
	if (c->reply)
		c->reply(c->m, c->data, answer);
	else
		json_decref(answer);
	if (c->running)
		c->finished = true;   /* command_run() frees it on its way out */
	else
		call_free(c);
}

static void committed(struct manager *m, void *data, bool okay, const char *error)
{
	struct command_call *c = data;
	json_t *answer = c->answer;
	c->answer = NULL;
	if (!okay) {
		/* SPEC 7: a write the database refused is never reported as done. */
		if (json_is_true(json_object_get(answer, "ok"))) {
			json_decref(answer);
			answer = fail("not stored: the database refused it: %s", error ? error : "?");
		}
	} else if (c->cmd->committed && json_is_true(json_object_get(answer, "ok"))) {
		json_t *again = c->cmd->committed(m, &c->who, c->args);
		if (again) {
			json_decref(answer);
			answer = again;
		}
	}
	deliver(c, answer);
}

static void slice_run(struct command_call *c);

static int on_slice(sd_event_source *s, void *userdata)
{
	(void)s;
	slice_run(userdata);
	return 0;
}

/* One slice of a long read; the next waits its turn with the loop's other
 * sources, so no read holds the loop for long (issue 12). */
static void slice_run(struct command_call *c)
{
	json_t *answer = c->cmd->slice(c->m, &c->who, c->args, &c->state);
	if (!answer) {
		int r = c->more ? 0 : sd_event_add_defer(c->m->event, &c->more, on_slice, c);
		/* Below everything, the store's group commit (idle) included: a
		 * report must not hold back the receipts its slices share the loop
		 * with. */
		if (r >= 0)
			r = sd_event_source_set_priority(c->more, SD_EVENT_PRIORITY_IDLE + 1);
		if (r >= 0)
			r = sd_event_source_set_enabled(c->more, SD_EVENT_ONESHOT);
		if (r >= 0)
			return;
		answer = fail("cannot go on reading: %s", strerror(-r));
	}
	slice_end(c);
	deliver(c, answer);
}

static void execute(struct command_call *c)
{
	struct manager *m = c->m;
	if (c->cmd->slice) {
		slice_run(c);   /* reads write nothing: answered when the last slice is read */
		return;
	}
	uint64_t mark = store_mark(m);
	json_t *answer = c->cmd->fn(m, &c->who, c->args);
	if (!answer)
		answer = fail("out of memory");
	if (store_mark(m) == mark) {
		deliver(c, answer);   /* nothing written: answer from memory, at once */
		return;
	}
	c->answer = answer;
	store_after_commit(m, mark, committed, c);
}

static void hashed(struct manager *m, void *data, const char *hash, const char *error)
{
	struct command_call *c = data;
	(void)m;
	c->job = NULL;
	if (!hash) {
		deliver(c, fail("cannot hash the password: %s", error ? error : "?"));
		return;
	}
	json_object_set_new(c->args, "hash", json_string(hash));
	execute(c);
}

/* A password is needed only as its hash: forget it as soon as it is one. */
static void wipe_string(json_t *v)
{
	if (json_is_string(v))
		explicit_bzero((char *)json_string_value(v), json_string_length(v));
}

struct command_call *command_run(struct manager *m, const struct actor *who, const char *name,
                                 json_t *args, command_reply_fn reply, void *data)
{
	char clean[80];
	const struct command *cmd = command_find(name);
	json_t *err = NULL;
	if (!name)
		err = fail("missing \"cmd\"");
	else if (!cmd)
		err = fail("unknown command \"%s\"", tc_sanitize(name, strlen(name), clean, sizeof(clean)));
	else if (!command_allowed(cmd, who->role) && (cmd->roles & R_ANY) == R_ANY)
		err = fail("permission denied: %s needs a role", cmd->name);
	else if (!command_allowed(cmd, who->role))
		err = fail("permission denied: %s needs the %s role", cmd->name,
		           role_name(needed_role(cmd)));
	else if (args && !json_is_object(args))
		err = fail("\"args\" must be an object");
	for (const struct arg *a = cmd && !err ? cmd->args : NULL; a && a->name && !err; a++)
		err = check_arg(a, json_object_get(args, a->name));
	if (err) {
		reply(m, data, err);
		return NULL;
	}

	struct command_call *c = calloc(1, sizeof(*c));
	/* A shallow copy: handlers may add or normalise keys (the hash, a
	 * lowercased address) without touching the caller's object. */
	json_t *copy = args ? json_copy(args) : json_object();
	if (!c || !copy) {
		free(c);
		json_decref(copy);
		reply(m, data, fail("out of memory"));
		return NULL;
	}
	*c = (struct command_call){ .m = m, .cmd = cmd, .who = *who, .args = copy, .reply = reply,
	                            .data = data, .running = true };
	json_object_del(copy, "hash");   /* only the runner sets it */
	const struct arg *pw = NULL;
	for (const struct arg *a = cmd->args; a->name; a++)
		if (a->type == A_PASSWORD)
			pw = a;
	if (pw) {
		json_t *v = json_object_get(copy, pw->name);
		c->job = hash_password(m, json_string_value(v), hashed, c);
		wipe_string(v);
		json_object_del(copy, pw->name);
		if (!c->job)
			deliver(c, fail("cannot hash the password now: too many at once; try again"));
	} else {
		execute(c);
	}
	c->running = false;
	if (c->finished) {
		call_free(c);
		return NULL;
	}
	return c;
}

void command_cancel(struct command_call *c)
{
	if (!c)
		return;
	c->reply = NULL;
	if (c->more) {
		/* a long read nobody waits for any more */
		call_free(c);
		return;
	}
	if (c->job) {
		/* The hash is not wanted any more; nothing was changed yet. */
		hash_job_cancel(c->job);
		call_free(c);
	}
	/* else it waits for the commit: committed() frees it */
}
