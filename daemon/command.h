/* The command table's parts, shared by command.c (the table and the runner)
 * and the handlers (cmd_*.c, one file per resource). The fronts (control.c
 * now, HTTP next) see only command_run() in telecared.h. */
#ifndef TELECARE_COMMAND_H
#define TELECARE_COMMAND_H

#include "telecared.h"

#define FIELD_MAX    1024     /* longest free-text argument (a name, an address, notes) */
#define LIST_MAX     10000    /* longest list a read returns */
#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

/* What a declared argument must be. The runner checks every declared
 * argument before the handler runs, so a handler reads them without
 * re-checking their types; unknown keys are ignored. */
enum arg_type {
	A_ID,         /* SPEC 1 id: 1-64 of [A-Za-z0-9._-] ("what" names it in errors) */
	A_TEXT,       /* a string of at most FIELD_MAX bytes, no NUL */
	A_INT,        /* an integer */
	A_BOOL,       /* true or false */
	A_TIME,       /* an RFC 3339 time */
	A_ROWS,       /* an array of objects (device.import) */
	A_ROLE,       /* admin, dispatcher, installer or worker */
	A_PASSWORD,   /* PASSWORD_MIN-PASSWORD_MAX bytes: hashed off the loop before the
	                 handler runs, which gets the hash as "hash", never the password */
};

#define ARG_REQUIRED 1u

struct arg {
	const char *name;
	enum arg_type type;
	unsigned flags;
	const char *what;         /* A_ID: "resident", "worker", ... */
};

/* A handler: the manager, who asks (their role already checked against the
 * table), the checked arguments. Returns the answer, {"ok": true, "data":
 * ...} or {"ok": false, "error": "..."} (a new reference). Writes it queues
 * are committed before the answer goes out (command_run does that). */
typedef json_t *(*command_fn)(struct manager *m, const struct actor *who, json_t *args);

#define ROLE_BIT(r) (1u << (r))
#define R_WORKER     ROLE_BIT(ROLE_WORKER)
#define R_INSTALLER  ROLE_BIT(ROLE_INSTALLER)
#define R_DISPATCHER ROLE_BIT(ROLE_DISPATCHER)
#define R_ADMIN      ROLE_BIT(ROLE_ADMIN)
#define R_ANY        (R_WORKER | R_INSTALLER | R_DISPATCHER | R_ADMIN)

struct command {
	const char *name;         /* "cmd" on the wire */
	command_fn fn;
	unsigned roles;           /* R_* bits: who may run it (admin always may) */
	const struct arg *args;   /* ended by { NULL } */
	/* Optional: build the answer again once the writes are committed (an
	 * answer that shows what the store holds, like alarm.resolve's). */
	command_fn committed;
	/* Optional, for a long read (a report over a year, 10,000 events): run
	 * instead of fn, one slice per loop pass. Returns the answer, or NULL to
	 * be called again on the next pass; what it keeps between slices lives
	 * in *state, freed with slice_free once answered or cancelled. */
	json_t *(*slice)(struct manager *m, const struct actor *who, json_t *args, void **state);
	void (*slice_free)(void *state);
};

extern const struct command commands[];
extern const size_t n_commands;
/* The roles column of docs/CONTROL.md: "all", "admin", or the roles besides
 * admin ("dispatcher, installer"). */
const char *command_roles_text(const struct command *c, char *buf, size_t len);

/* answers */
json_t *ok(json_t *data);
json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* checked arguments: NULL / def when absent */
const char *arg_str(json_t *args, const char *key);
int64_t arg_int(json_t *args, const char *key, int64_t def);
bool arg_true(json_t *args, const char *key);
int64_t arg_time(json_t *args, const char *key, int64_t def);   /* A_TIME, parsed */

char *dup_or_null(const char *s);
/* The entries of a map, sorted by key: stable listings. */
json_t *sorted_list(struct map *map, json_t *(*to_json)(const void *));
/* "uid 1001 (anna)" etc., for log lines that say who changed something. */
const char *who_label(const struct actor *who, char *buf, size_t len);

/* the handlers, by resource */
json_t *cmd_status(struct manager *m, const struct actor *who, json_t *args);

json_t *cmd_resident_add(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_resident_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_resident_show(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_resident_remove(struct manager *m, const struct actor *who, json_t *args);

json_t *cmd_device_add(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_show(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_remove(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_unknown(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_test(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_adopt(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_device_import(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_source_unmapped(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_events_slice(struct manager *m, const struct actor *who, json_t *args, void **state);
void cmd_events_free(void *state);

json_t *cmd_worker_add(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_worker_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_worker_show(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_worker_remove(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_shift_add(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_shift_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_shift_remove(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_oncall(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_oncall_gaps(struct manager *m, const struct actor *who, json_t *args);

json_t *cmd_alarm_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_show(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_ack(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_resolve(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_note(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_decline(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_alarm_committed(struct manager *m, const struct actor *who, json_t *args);

json_t *cmd_report_slice(struct manager *m, const struct actor *who, json_t *args, void **state);
void cmd_report_free(void *state);

json_t *cmd_user_add(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_user_passwd(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_user_list(struct manager *m, const struct actor *who, json_t *args);
json_t *cmd_user_remove(struct manager *m, const struct actor *who, json_t *args);

#endif
