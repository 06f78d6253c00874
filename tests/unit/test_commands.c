/* The command table and its runner (daemon/command.c), with the handlers,
 * the store's reply path and the password hashing replaced by fakes:
 * - every command in the table is documented in docs/CONTROL.md, with the
 *   roles the table gives it, and every documented command is in the table;
 * - refusals name the command and the role it needs;
 * - declared arguments are checked before a handler runs;
 * - an answer to a command that wrote waits for the commit, and says "not
 *   stored" when the write was refused; a cancelled call is never answered;
 * - a password reaches the handler only as the hash, never as itself. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"     /* before cmocka.h, whose fail() macro would hide ours */

#include <cmocka.h>

/* ---- fakes ---- */

static uint64_t fake_mark;
static store_done_fn pending_fn;
static void *pending_data;
static hash_done_fn hash_fn;
static void *hash_data;
static char hashed_password[64];
static int cancelled_jobs, handler_calls;
static json_t *handler_args;

uint64_t store_mark(const struct manager *m)
{
	(void)m;
	return fake_mark;
}

void store_after_commit(struct manager *m, uint64_t since, store_done_fn fn, void *data)
{
	(void)m;
	(void)since;
	pending_fn = fn;
	pending_data = data;
}

struct hash_job *hash_password(struct manager *m, const char *password, hash_done_fn fn,
                               void *data)
{
	(void)m;
	snprintf(hashed_password, sizeof(hashed_password), "%s", password);
	hash_fn = fn;
	hash_data = data;
	return (struct hash_job *)&hash_fn;
}

void hash_job_cancel(struct hash_job *j)
{
	(void)j;
	cancelled_jobs++;
	hash_fn = NULL;
}

const char *actor_label(const struct actor *a, char *buf, size_t len)
{
	snprintf(buf, len, "uid %u", a->uid);
	return buf;
}

/* Handlers: read-only ones answer; the "writing" ones queue a fake write. */
static json_t *read_only(void)
{
	handler_calls++;
	return ok(json_string("read"));
}

static json_t *writes(json_t *args)
{
	handler_calls++;
	fake_mark++;
	json_decref(handler_args);
	handler_args = json_deep_copy(args);
	return ok(json_string("written"));
}

#define READ_ONLY(name) \
	json_t *name(struct manager *m, const struct actor *who, json_t *args) \
	{ (void)m; (void)who; (void)args; return read_only(); }
#define WRITES(name) \
	json_t *name(struct manager *m, const struct actor *who, json_t *args) \
	{ (void)m; (void)who; return writes(args); }

READ_ONLY(cmd_status)
WRITES(cmd_resident_add)
READ_ONLY(cmd_resident_list)
READ_ONLY(cmd_resident_show)
WRITES(cmd_resident_remove)
WRITES(cmd_device_add)
READ_ONLY(cmd_device_list)
READ_ONLY(cmd_device_show)
WRITES(cmd_device_remove)
READ_ONLY(cmd_device_unknown)
READ_ONLY(cmd_device_test)
WRITES(cmd_device_adopt)
WRITES(cmd_device_import)
READ_ONLY(cmd_source_unmapped)
WRITES(cmd_worker_add)
READ_ONLY(cmd_worker_list)
READ_ONLY(cmd_worker_show)
WRITES(cmd_worker_remove)
WRITES(cmd_shift_add)
READ_ONLY(cmd_shift_list)
WRITES(cmd_shift_remove)
READ_ONLY(cmd_oncall)
READ_ONLY(cmd_oncall_gaps)
READ_ONLY(cmd_alarm_list)
READ_ONLY(cmd_alarm_show)
WRITES(cmd_alarm_ack)
WRITES(cmd_alarm_resolve)
WRITES(cmd_alarm_note)
WRITES(cmd_alarm_decline)
WRITES(cmd_user_add)
WRITES(cmd_user_passwd)
READ_ONLY(cmd_user_list)
WRITES(cmd_user_remove)

/* Long reads answer in slices: three passes, then the answer. */
static int slices, sliced_freed;

static json_t *sliced(void **state)
{
	static int mine;
	slices++;
	if (!*state)
		*state = &mine;
	mine++;
	if (mine < 3)
		return NULL;
	mine = 0;
	return ok(json_string("read"));
}

json_t *cmd_events_slice(struct manager *m, const struct actor *who, json_t *args, void **state)
{
	(void)m;
	(void)who;
	(void)args;
	return sliced(state);
}

json_t *cmd_report_slice(struct manager *m, const struct actor *who, json_t *args, void **state)
{
	(void)m;
	(void)who;
	(void)args;
	return sliced(state);
}

static void slice_freed(void *state)
{
	(void)state;
	sliced_freed++;
}

void cmd_events_free(void *state)
{
	slice_freed(state);
}

void cmd_report_free(void *state)
{
	slice_freed(state);
}

json_t *cmd_alarm_committed(struct manager *m, const struct actor *who, json_t *args)
{
	(void)m;
	(void)who;
	(void)args;
	return ok(json_string("as committed"));
}

/* ---- the runner's front ---- */

static json_t *answer;
static int answers;

static void on_reply(struct manager *m, void *data, json_t *a)
{
	(void)m;
	(void)data;
	json_decref(answer);
	answer = a;
	answers++;
}

static struct manager mgr;

static struct command_call *run(enum role role, const char *cmd, const char *args_json)
{
	struct actor who = { .kind = ACTOR_UNIX, .role = role, .uid = 1001 };
	json_t *args = args_json ? json_loads(args_json, 0, NULL) : NULL;
	if (args_json)
		assert_non_null(args);
	struct command_call *c = command_run(&mgr, &who, cmd, args, on_reply, NULL);
	json_decref(args);
	return c;
}

static const char *error_of(const json_t *a)
{
	assert_non_null(a);
	assert_false(json_is_true(json_object_get(a, "ok")));
	return json_string_value(json_object_get(a, "error"));
}

static int setup(void **state)
{
	(void)state;
	fake_mark = 0;
	pending_fn = NULL;
	hash_fn = NULL;
	cancelled_jobs = handler_calls = answers = 0;
	json_decref(answer);
	answer = NULL;
	json_decref(handler_args);
	handler_args = NULL;
	return 0;
}

/* ---- docs/CONTROL.md ---- */

static char *read_docs(void)
{
	FILE *f = fopen(TELECARE_SOURCE_DIR "/docs/CONTROL.md", "r");
	assert_non_null(f);
	static char buf[1 << 17];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	assert_true(n < sizeof(buf) - 1);
	buf[n] = '\0';
	return buf;
}

/* The roles cell of the row "| `name` | roles | ...", or NULL. */
static const char *documented_roles(const char *docs, const char *name, char *out, size_t len)
{
	char row[96];
	snprintf(row, sizeof(row), "\n| `%s` | ", name);
	const char *p = strstr(docs, row);
	if (!p)
		return NULL;
	p += strlen(row);
	const char *end = strstr(p, " |");
	assert_non_null(end);
	snprintf(out, len, "%.*s", (int)(end - p), p);
	/* documented once */
	assert_null(strstr(end, row));
	return out;
}

static void test_every_command_documented_with_its_roles(void **state)
{
	(void)state;
	const char *docs = read_docs();
	char doc[128], table[128];
	for (size_t i = 0; i < n_commands; i++) {
		const char *d = documented_roles(docs, commands[i].name, doc, sizeof(doc));
		if (!d)
			fail_msg("%s is not documented in docs/CONTROL.md (a row \"| `%s` | roles |\")",
			         commands[i].name, commands[i].name);
		command_roles_text(&commands[i], table, sizeof(table));
		if (strcmp(d, table))
			fail_msg("%s: docs/CONTROL.md says roles \"%s\", the table \"%s\"", commands[i].name,
			         d, table);
	}
	/* and nothing documented in a command table that the table does not have */
	int tables = 0;
	for (const char *t = docs; (t = strstr(t, "\n| `cmd` | roles |")); t++) {
		tables++;
		const char *line = strchr(t + 1, '\n');   /* the header's end */
		while (line && line[1] == '|') {
			const char *p = line + 1;
			line = strchr(p, '\n');
			if (strncmp(p, "| `", 3))
				continue;   /* the | --- | line */
			p += 3;
			const char *end = strchr(p, '`');
			char name[64];
			snprintf(name, sizeof(name), "%.*s", (int)(end - p), p);
			if (!command_find(name))
				fail_msg("docs/CONTROL.md documents \"%s\", which is not in the command table",
				         name);
		}
	}
	assert_true(tables >= 4);
	/* the roles are documented too */
	assert_non_null(strstr(docs, "`telecare-admin`"));
	assert_non_null(strstr(docs, "`telecare-dispatch`"));
	assert_non_null(strstr(docs, "`telecare-install`"));
}

/* ---- roles ---- */

static void test_refusals_name_the_role(void **state)
{
	(void)state;
	assert_null(run(ROLE_INSTALLER, "worker.add", "{\"id\": \"w\", \"name\": \"W\"}"));
	assert_string_equal(error_of(answer), "permission denied: worker.add needs the admin role");
	assert_null(run(ROLE_DISPATCHER, "resident.add", "{\"id\": \"r\", \"name\": \"R\"}"));
	assert_string_equal(error_of(answer),
	                    "permission denied: resident.add needs the installer role");
	assert_null(run(ROLE_WORKER, "report", NULL));
	assert_string_equal(error_of(answer), "permission denied: report needs the dispatcher role");
	assert_null(run(ROLE_WORKER, "device.list", NULL));
	assert_string_equal(error_of(answer), "permission denied: device.list needs the installer role");
	assert_null(run(ROLE_NONE, "status", NULL));
	assert_string_equal(error_of(answer), "permission denied: status needs a role");
	assert_int_equal(handler_calls, 0);
	/* and what is allowed runs */
	assert_null(run(ROLE_WORKER, "status", NULL));
	assert_true(json_is_true(json_object_get(answer, "ok")));
	assert_null(run(ROLE_ADMIN, "user.list", NULL));
	assert_true(json_is_true(json_object_get(answer, "ok")));
	assert_int_equal(handler_calls, 2);
}

static void test_every_role_sees_status_and_admin_everything(void **state)
{
	(void)state;
	for (size_t i = 0; i < n_commands; i++) {
		assert_true(command_allowed(&commands[i], ROLE_ADMIN));
		assert_false(command_allowed(&commands[i], ROLE_NONE));
	}
	const struct command *st = command_find("status");
	for (enum role r = ROLE_WORKER; r <= ROLE_ADMIN; r++)
		assert_true(command_allowed(st, r));
	for (const char *const *n = (const char *const[]){ "user.add", "user.passwd", "user.list",
	     "user.remove", "worker.add", "shift.add", NULL }; *n; n++)
		for (enum role r = ROLE_WORKER; r < ROLE_ADMIN; r++)
			assert_false(command_allowed(command_find(*n), r));
}

/* ---- arguments ---- */

static void test_arguments_checked_first(void **state)
{
	(void)state;
	static const struct { const char *cmd, *args, *error; } cases[] = {
		{ "resident.add", "{\"name\": \"R\"}", "missing resident id (\"id\")" },
		{ "resident.add", "{\"id\": \"bad id\"}", "invalid resident id \"bad id\": 1-64 of [A-Za-z0-9._-]" },
		{ "resident.add", "{\"id\": \"r\", \"notes\": 7}", "\"notes\" must be text of at most 1024 bytes" },
		{ "alarm.show", "{\"id\": \"7\"}", "missing alarm id (an integer)" },
		{ "alarm.show", "{}", "missing alarm id (an integer)" },
		{ "events", "{\"limit\": \"many\"}", "limit must be an integer" },
		{ "events", "{\"follow\": 1}", "\"follow\" must be true or false" },
		{ "report", "{\"from\": \"yesterday\"}",
		  "\"from\" must be an RFC 3339 time, e.g. 2026-11-22T10:15:00Z" },
		{ "device.import", "{\"rows\": []}", "\"rows\" must be a non-empty array of devices" },
		{ "user.add", "{\"name\": \"a b\", \"role\": \"admin\", \"password\": \"12345678\"}",
		  "invalid user name \"a b\": 1-64 of [A-Za-z0-9._-]" },
		{ "user.add", "{\"name\": \"ab\", \"role\": \"boss\", \"password\": \"12345678\"}",
		  "\"boss\" is not a role; use admin, dispatcher, installer or worker" },
		{ "user.add", "{\"name\": \"ab\", \"role\": \"admin\", \"password\": \"1234567\"}",
		  "a password is 8-1024 bytes" },
		{ "no.such", NULL, "unknown command \"no.such\"" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_null(run(ROLE_ADMIN, cases[i].cmd, cases[i].args));
		if (strcmp(error_of(answer), cases[i].error))
			fail_msg("%s %s: \"%s\", expected \"%s\"", cases[i].cmd,
			         cases[i].args ? cases[i].args : "", error_of(answer), cases[i].error);
	}
	assert_int_equal(handler_calls, 0);
	assert_null(hash_fn);
	json_t *args = json_array();
	struct actor who = { .kind = ACTOR_UNIX, .role = ROLE_ADMIN };
	assert_null(command_run(&mgr, &who, "status", args, on_reply, NULL));
	assert_string_equal(error_of(answer), "\"args\" must be an object");
	json_decref(args);
}

/* ---- the answer waits for the commit ---- */

static void test_write_answered_after_commit(void **state)
{
	(void)state;
	struct command_call *c = run(ROLE_INSTALLER, "resident.add", "{\"id\": \"r\", \"name\": \"R\"}");
	assert_non_null(c);
	assert_int_equal(answers, 0);
	assert_non_null(pending_fn);
	pending_fn(&mgr, pending_data, true, NULL);
	assert_int_equal(answers, 1);
	assert_string_equal(json_string_value(json_object_get(answer, "data")), "written");

	c = run(ROLE_INSTALLER, "resident.add", "{\"id\": \"r2\", \"name\": \"R\"}");
	assert_non_null(c);
	pending_fn(&mgr, pending_data, false, "UNIQUE constraint failed: residents.id");
	assert_int_equal(answers, 2);
	assert_string_equal(error_of(answer),
	                    "not stored: the database refused it: UNIQUE constraint failed: residents.id");

	/* a read answers at once */
	pending_fn = NULL;
	assert_null(run(ROLE_INSTALLER, "resident.list", NULL));
	assert_int_equal(answers, 3);
	assert_null(pending_fn);
}

static void test_committed_answer_rebuilt(void **state)
{
	(void)state;
	assert_non_null(run(ROLE_DISPATCHER, "alarm.resolve", "{\"id\": 3, \"outcome\": \"x\"}"));
	pending_fn(&mgr, pending_data, true, NULL);
	assert_string_equal(json_string_value(json_object_get(answer, "data")), "as committed");
}

static void test_cancelled_call_not_answered(void **state)
{
	(void)state;
	struct command_call *c = run(ROLE_INSTALLER, "resident.add", "{\"id\": \"r\", \"name\": \"R\"}");
	assert_non_null(c);
	command_cancel(c);
	pending_fn(&mgr, pending_data, true, NULL);   /* frees it; no reply */
	assert_int_equal(answers, 0);
}

/* ---- passwords ---- */

static void test_password_reaches_handler_as_hash_only(void **state)
{
	(void)state;
	struct command_call *c = run(ROLE_ADMIN, "user.add",
		"{\"name\": \"anna\", \"role\": \"dispatcher\", \"password\": \"correct horse\","
		" \"hash\": \"$y$forged\"}");
	assert_non_null(c);
	assert_int_equal(handler_calls, 0);   /* not before the hash */
	assert_non_null(hash_fn);
	assert_string_equal(hashed_password, "correct horse");
	hash_fn(&mgr, hash_data, "$y$j9T$salt$hash", NULL);
	assert_int_equal(handler_calls, 1);
	assert_string_equal(json_string_value(json_object_get(handler_args, "hash")),
	                    "$y$j9T$salt$hash");
	assert_null(json_object_get(handler_args, "password"));
	assert_int_equal(answers, 0);         /* it wrote: after the commit */
	pending_fn(&mgr, pending_data, true, NULL);
	assert_int_equal(answers, 1);

	/* a hash that failed: an error, and the handler never runs */
	handler_calls = 0;
	assert_non_null(run(ROLE_ADMIN, "user.passwd", "{\"name\": \"anna\", \"password\": \"12345678\"}"));
	hash_fn(&mgr, hash_data, NULL, "the hashing process failed");
	assert_int_equal(handler_calls, 0);
	assert_string_equal(error_of(answer), "cannot hash the password: the hashing process failed");

	/* cancelled while hashing: the job is cancelled, nothing answered */
	answers = 0;
	c = run(ROLE_ADMIN, "user.passwd", "{\"name\": \"anna\", \"password\": \"12345678\"}");
	command_cancel(c);
	assert_int_equal(cancelled_jobs, 1);
	assert_int_equal(answers, 0);
}

/* A long read runs a slice per loop pass and answers after the last; the
 * loop's other sources run in between. Cancelled midway, its state is freed. */
static void test_long_reads_answer_in_slices(void **state)
{
	(void)state;
	sd_event *e = NULL;
	assert_int_equal(sd_event_new(&e), 0);
	mgr.event = e;
	slices = sliced_freed = 0;
	struct command_call *c = run(ROLE_DISPATCHER, "report", NULL);
	assert_non_null(c);                  /* pending */
	assert_int_equal(slices, 1);
	assert_int_equal(answers, 0);
	assert_true(sd_event_run(e, 0) > 0); /* one pass: one more slice */
	assert_int_equal(slices, 2);
	assert_int_equal(answers, 0);
	assert_true(sd_event_run(e, 0) > 0);
	assert_int_equal(slices, 3);
	assert_int_equal(answers, 1);
	assert_true(json_is_true(json_object_get(answer, "ok")));
	assert_int_equal(sliced_freed, 1);
	/* a reader gone midway: no answer, nothing kept */
	c = run(ROLE_INSTALLER, "events", "{\"limit\": 10000}");
	assert_non_null(c);
	command_cancel(c);
	assert_int_equal(sliced_freed, 2);
	assert_int_equal(sd_event_run(e, 0), 0);
	assert_int_equal(answers, 1);
	/* roles are checked before any slice */
	assert_null(run(ROLE_INSTALLER, "report", NULL));
	assert_string_equal(error_of(answer), "permission denied: report needs the dispatcher role");
	mgr.event = NULL;
	sd_event_unref(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_every_command_documented_with_its_roles, setup),
		cmocka_unit_test_setup(test_refusals_name_the_role, setup),
		cmocka_unit_test_setup(test_every_role_sees_status_and_admin_everything, setup),
		cmocka_unit_test_setup(test_arguments_checked_first, setup),
		cmocka_unit_test_setup(test_long_reads_answer_in_slices, setup),
		cmocka_unit_test_setup(test_write_answered_after_commit, setup),
		cmocka_unit_test_setup(test_committed_answer_rebuilt, setup),
		cmocka_unit_test_setup(test_cancelled_call_not_answered, setup),
		cmocka_unit_test_setup(test_password_reaches_handler_as_hash_only, setup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	json_decref(answer);
	json_decref(handler_args);
	return rc;
}
