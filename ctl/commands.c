/* The commands: what each one's command line is (its build function), what
 * it is called on the wire, and how its answer is printed. */

#include <stdlib.h>

#include "telecarectl.h"

/* ---------------------------------------------------------------------- */
/* Build functions: the command line of each command */

static int build_none(struct call *c)
{
	return parse_params(c, NULL, NULL);
}

static int build_resident_add(struct call *c)
{
	static const struct param pos[] = { { "resident id", TC_ARG_ID, P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--name", TC_ARG_NAME, P_STRING, true },
		{ "--address", TC_ARG_ADDRESS, P_STRING, false },
		{ "--phone", TC_ARG_PHONE, P_STRING, false },
		{ "--team", TC_ARG_TEAM, P_STRING, false },
		{ "--notes", TC_ARG_NOTES, P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

/* show ID / remove ID of residents, devices and workers */
static int build_by_id(struct call *c)
{
	static const struct param pos[] = { { "id", TC_ARG_ID, P_ID, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

/* --source and --address name where a device is heard (a [source NAME] of
 * the daemon's configuration and the device's address there): both or
 * neither. */
static int check_source_address(const struct call *c)
{
	bool src = json_object_get(c->args, TC_ARG_SOURCE);
	bool addr = json_object_get(c->args, TC_ARG_ADDRESS);
	if (src != addr)
		return usage_error("--source and --address go together: the [source NAME] the device "
		                   "is heard through and its address there (usage: %s)", c->cmd->usage);
	if (addr && !json_string_length(json_object_get(c->args, TC_ARG_ADDRESS)))
		return usage_error("--address needs some text");
	return PARSE_OK;
}

/* device add and device adopt take the same options */
static const struct param device_opts[] = {
	{ "--resident", TC_ARG_RESIDENT, P_ID, true },
	{ "--kind", TC_ARG_KIND, P_STRING, false },
	{ "--heartbeat", TC_ARG_HEARTBEAT, P_DURATION, false },
	{ "--source", TC_ARG_SOURCE, P_ID, false },
	{ "--address", TC_ARG_ADDRESS, P_STRING, false },
	{ 0 },
};

static int build_device_add(struct call *c)
{
	static const struct param pos[] = { { "device id", TC_ARG_ID, P_ID, true }, { 0 } };
	int rc = parse_params(c, pos, device_opts);
	return rc == PARSE_OK ? check_source_address(c) : rc;
}

static int build_device_test(struct call *c)
{
	static const struct param pos[] = { { "device id", TC_ARG_ID, P_ID, true }, { 0 } };
	static const struct param opt[] = { { "--timeout", "timeout_ms", P_DURATION, false }, { 0 } };
	int rc = parse_params(c, pos, opt);
	if (rc != PARSE_OK)
		return rc;
	/* the timeout is ours: the daemon waits as long as the connection is open */
	json_t *t = json_object_get(c->args, "timeout_ms");
	c->test_ms = t ? json_integer_value(t) : DEVICE_TEST_TIMEOUT_MS;
	json_object_del(c->args, "timeout_ms");
	if (c->test_ms <= 0)
		return usage_error("--timeout must be longer than 0 (e.g. 30s, 2m)");
	c->test = true;
	return PARSE_OK;
}

static int build_device_adopt(struct call *c)
{
	static const struct param pos[] = { { "device id", TC_ARG_ID, P_ID, true }, { 0 } };
	int rc = parse_params(c, pos, device_opts);
	return rc == PARSE_OK ? check_source_address(c) : rc;
}

static int build_alarm_list(struct call *c)
{
	static const struct param opt[] = { { "--open", TC_ARG_OPEN, P_FLAG, false }, { 0 } };
	return parse_params(c, NULL, opt);
}

static int build_alarm_show(struct call *c)
{
	static const struct param pos[] = { { "alarm id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

static int build_worker_add(struct call *c)
{
	static const struct param pos[] = { { "worker id", TC_ARG_ID, P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--name", TC_ARG_NAME, P_STRING, true },
		{ "--team", TC_ARG_TEAM, P_TEAMS, false },
		{ "--phone", TC_ARG_PHONE, P_STRING, false },
		{ "--webhook", TC_ARG_WEBHOOK, P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

static int build_shift_add(struct call *c)
{
	static const struct param pos[] = { { "worker id", TC_ARG_WORKER, P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--always", TC_ARG_ALWAYS, P_FLAG, false },
		{ "--weekly", TC_ARG_DAYS, P_WEEKLY, false },
		{ "--from", TC_ARG_FROM, P_TIME, false },
		{ "--to", TC_ARG_TO, P_TIME, false },
		{ 0 },
	};
	int rc = parse_params(c, pos, opt);
	if (rc != PARSE_OK)
		return rc;
	bool always = json_object_get(c->args, TC_ARG_ALWAYS);
	bool weekly = json_object_get(c->args, TC_ARG_DAYS);
	int64_t from, to;
	bool has_from = time_arg(c, TC_ARG_FROM, &from), has_to = time_arg(c, TC_ARG_TO, &to);
	if (always + weekly + (has_from || has_to) != 1)
		return usage_error("a shift is exactly one of --always, --weekly DAYS HH:MM-HH:MM "
		                   "or --from TIME --to TIME (usage: %s)", c->cmd->usage);
	if (has_from != has_to)
		return usage_error("a one-off shift needs both --from and --to");
	if (has_from && to <= from)
		return usage_error("--to must be after --from");
	return PARSE_OK;
}

static int build_shift_list(struct call *c)
{
	static const struct param opt[] = { { "--at", TC_ARG_AT, P_TIME, false }, { 0 } };
	return parse_params(c, NULL, opt);
}

static int build_shift_remove(struct call *c)
{
	static const struct param pos[] = { { "shift id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

static int build_oncall(struct call *c)
{
	static const struct param opt[] = {
		{ "--at", TC_ARG_AT, P_TIME, false },
		{ "--team", TC_ARG_TEAM, P_ID, false },
		{ 0 },
	};
	return parse_params(c, NULL, opt);
}

/* alarm ack / resolve / note: without --as the caller acts as themselves
 * (a console user, or the Unix user behind the socket) */
static int build_alarm_ack(struct call *c)
{
	static const struct param pos[] = { { "alarm id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	static const struct param opt[] = { { "--as", TC_ARG_AS, P_ID, false }, { 0 } };
	return parse_params(c, pos, opt);
}

static int build_alarm_resolve(struct call *c)
{
	static const struct param pos[] = { { "alarm id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	static const struct param opt[] = {
		{ "--as", TC_ARG_AS, P_ID, false },
		{ "--outcome", TC_ARG_OUTCOME, P_STRING, true },  /* [outcomes] is the daemon's */
		{ "--note", TC_ARG_NOTE, P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

static int build_alarm_note(struct call *c)
{
	static const struct param pos[] = { { "alarm id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	static const struct param opt[] = {
		{ "--as", TC_ARG_AS, P_ID, false },
		{ "--note", TC_ARG_NOTE, P_STRING, true },
		{ 0 },
	};
	int rc = parse_params(c, pos, opt);
	if (rc == PARSE_OK && !json_string_length(json_object_get(c->args, TC_ARG_NOTE)))
		return usage_error("--note needs some text");
	return rc;
}

/* Declining is a worker's answer to an alert (SPEC 2.5): always for one. */
static int build_alarm_decline(struct call *c)
{
	static const struct param pos[] = { { "alarm id", TC_ARG_ID, P_SERIAL, true }, { 0 } };
	static const struct param opt[] = { { "--as", TC_ARG_AS, P_ID, true }, { 0 } };
	return parse_params(c, pos, opt);
}

/* ---- console users (SPEC 6.1). The password never goes on the command
 * line, where every user of the host could read it in /proc: it comes from
 * standard input, after the command line was found good. */

static int add_password(struct call *c)
{
	const char *name = json_string_value(json_object_get(c->args, TC_ARG_NAME));
	char *pw = read_password(name);
	if (!pw)
		return PARSE_USAGE;
	json_t *v = json_string(pw);
	secret_free(pw);
	c->secret = true;
	if (!v || json_object_set_new(c->args, TC_ARG_PASSWORD, v) < 0)
		return usage_error("out of memory");
	return PARSE_OK;
}

static const struct param user_name[] = { { "user name", TC_ARG_NAME, P_ID, true }, { 0 } };

static int build_user_add(struct call *c)
{
	static const struct param opt[] = {
		{ "--role", TC_ARG_ROLE, P_ROLE, true },
		{ "--worker", TC_ARG_WORKER, P_ID, false },
		{ 0 },
	};
	int rc = parse_params(c, user_name, opt);
	return rc == PARSE_OK ? add_password(c) : rc;
}

static int build_user_passwd(struct call *c)
{
	int rc = parse_params(c, user_name, NULL);
	return rc == PARSE_OK ? add_password(c) : rc;
}

static int build_user_remove(struct call *c)
{
	return parse_params(c, user_name, NULL);
}

static int build_report(struct call *c)
{
	static const struct param opt[] = {
		{ "--from", TC_ARG_FROM, P_TIME, false },
		{ "--to", TC_ARG_TO, P_TIME, false },
		{ 0 },
	};
	int rc = parse_params(c, NULL, opt);
	int64_t from, to;
	if (rc == PARSE_OK && time_arg(c, TC_ARG_FROM, &from) && time_arg(c, TC_ARG_TO, &to) &&
	    to <= from)
		return usage_error("--to must be after --from");
	return rc;
}

static int build_events(struct call *c)
{
	static const struct param opt[] = {
		{ "--device", TC_ARG_DEVICE, P_ID, false },
		{ "--limit", TC_ARG_LIMIT, P_LIMIT, false },
		{ "--follow", TC_ARG_FOLLOW, P_FLAG, false },
		{ 0 },
	};
	int rc = parse_params(c, NULL, opt);
	if (rc == PARSE_OK && json_object_get(c->args, TC_ARG_FOLLOW)) {
		c->follow = true;
		c->timeout_ms = -1;   /* a quiet system sends nothing for hours */
	}
	return rc;
}

/* ---------------------------------------------------------------------- */
/* The table of commands. Order is the order of --help. */

const struct command commands[] = {
	{ "status", NULL, TC_CMD_STATUS, "status", build_none, print_status },
	{ "resident", "add", TC_CMD_RESIDENT_ADD,
	  "resident add ID --name NAME [--address A] [--phone P] [--team T] [--notes N]",
	  build_resident_add, print_resident },
	{ "resident", "list", TC_CMD_RESIDENT_LIST, "resident list", build_none, print_resident_list },
	{ "resident", "show", TC_CMD_RESIDENT_SHOW, "resident show ID", build_by_id, print_resident },
	{ "resident", "remove", TC_CMD_RESIDENT_REMOVE, "resident remove ID", build_by_id, print_removed },
	{ "device", "add", TC_CMD_DEVICE_ADD,
	  "device add ID --resident RID [--kind KIND] [--heartbeat DURATION] "
	  "[--source NAME --address ADDR]",
	  build_device_add, print_device },
	{ "device", "list", TC_CMD_DEVICE_LIST, "device list", build_none, print_device_list },
	{ "device", "show", TC_CMD_DEVICE_SHOW, "device show ID", build_by_id, print_device },
	{ "device", "remove", TC_CMD_DEVICE_REMOVE, "device remove ID", build_by_id, print_removed },
	{ "device", "unknown", TC_CMD_DEVICE_UNKNOWN, "device unknown", build_none, print_device_unknown },
	{ "device", "unmapped", TC_CMD_SOURCE_UNMAPPED, "device unmapped", build_none,
	  print_device_unmapped },
	{ "device", "test", TC_CMD_DEVICE_TEST, "device test ID [--timeout DURATION]", build_device_test,
	  print_device_test },
	{ "device", "import", TC_CMD_DEVICE_IMPORT, "device import FILE.csv", build_device_import,
	  print_device_import },
	{ "device", "adopt", TC_CMD_DEVICE_ADOPT,
	  "device adopt ID --resident RID [--kind KIND] [--heartbeat DURATION] "
	  "[--source NAME --address ADDR]",
	  build_device_adopt, print_device },
	{ "worker", "add", TC_CMD_WORKER_ADD,
	  "worker add ID --name NAME [--team T] [--phone P] [--webhook URL]",
	  build_worker_add, print_worker },
	{ "worker", "list", TC_CMD_WORKER_LIST, "worker list", build_none, print_worker_list },
	{ "worker", "show", TC_CMD_WORKER_SHOW, "worker show ID", build_by_id, print_worker },
	{ "worker", "remove", TC_CMD_WORKER_REMOVE, "worker remove ID", build_by_id, print_removed },
	{ "shift", "add", TC_CMD_SHIFT_ADD,
	  "shift add WORKER (--always | --weekly DAYS HH:MM-HH:MM | --from TIME --to TIME)",
	  build_shift_add, print_shift },
	{ "shift", "list", TC_CMD_SHIFT_LIST, "shift list [--at TIME]", build_shift_list,
	  print_shift_list },
	{ "shift", "remove", TC_CMD_SHIFT_REMOVE, "shift remove SHIFT_ID", build_shift_remove,
	  print_removed },
	{ "oncall", NULL, TC_CMD_ONCALL, "oncall [--at TIME] [--team T]", build_oncall, print_oncall },
	{ "alarm", "list", TC_CMD_ALARM_LIST, "alarm list [--open]", build_alarm_list, print_alarm_list },
	{ "alarm", "show", TC_CMD_ALARM_SHOW, "alarm show ID", build_alarm_show, print_alarm },
	{ "alarm", "ack", TC_CMD_ALARM_ACK, "alarm ack ID [--as WORKER]", build_alarm_ack,
	  print_alarm_action },
	{ "alarm", "resolve", TC_CMD_ALARM_RESOLVE,
	  "alarm resolve ID [--as WORKER] --outcome OUTCOME [--note TEXT]", build_alarm_resolve,
	  print_alarm_action },
	{ "alarm", "note", TC_CMD_ALARM_NOTE, "alarm note ID [--as WORKER] --note TEXT",
	  build_alarm_note, print_alarm_action },
	{ "alarm", "decline", TC_CMD_ALARM_DECLINE, "alarm decline ID --as WORKER",
	  build_alarm_decline, print_alarm_action },
	{ "events", NULL, TC_CMD_EVENTS, "events [--device ID] [--limit N] [--follow]", build_events,
	  print_events },
	{ "report", NULL, TC_CMD_REPORT, "report [--from TIME] [--to TIME]", build_report, print_report },
	{ "user", "add", TC_CMD_USER_ADD, "user add NAME --role ROLE [--worker WORKER_ID]",
	  build_user_add, print_user_added },
	{ "user", "passwd", TC_CMD_USER_PASSWD, "user passwd NAME", build_user_passwd,
	  print_user_passwd },
	{ "user", "list", TC_CMD_USER_LIST, "user list", build_none, print_user_list },
	{ "user", "remove", TC_CMD_USER_REMOVE, "user remove NAME", build_user_remove,
	  print_removed },
	/* the request is `status`, which says where the database is */
	{ "backup", NULL, TC_CMD_STATUS, "backup FILE", build_backup, print_backup },
};
const size_t ncommands = sizeof(commands) / sizeof(commands[0]);
