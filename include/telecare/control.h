/* The control protocol between telecarectl and telecared (docs/CONTROL.md).
 * A stream Unix socket; each request and each answer is one JSON object on
 * one line:
 *
 *   {"cmd": "alarm.ack", "args": {"id": 42, "as": "w-jan"}}
 *   {"ok": true, "data": ...}   or   {"ok": false, "error": "..."}
 *
 * What both sides must agree on lives here: the limits, the envelope's and
 * the streams' keys, the commands' names and the keys of their arguments.
 * The fields of the objects in answers (a resident's "name", an alarm's
 * "acked_by", ...) are described in docs/CONTROL.md; telecarectl only
 * displays them. */
#ifndef TELECARE_CONTROL_H
#define TELECARE_CONTROL_H

/* ---- limits */

/* Longest request line: an all-or-nothing import of 100,000 devices is a
 * few MB. */
#define TC_CONTROL_LINE_MAX (16 * 1024 * 1024)
/* events: how many stored events one request returns (default 20) */
#define TC_EVENTS_LIMIT_MAX     10000
#define TC_EVENTS_LIMIT_DEFAULT 20
/* device.import: rows in one request; bad rows named in a refusal */
#define TC_IMPORT_ROWS_MAX   100000
#define TC_IMPORT_ERRORS_MAX 10
/* free text of a resident or device (name, address, notes, kind, ...) */
#define TC_FIELD_MAX 1024
/* user.*: names are 1-64 characters of [A-Za-z0-9._-] like every SPEC 1 id;
 * passwords 8-1024 bytes of UTF-8 */
#define TC_USER_NAME_MAX 64
#define TC_PASSWORD_MIN  8
#define TC_PASSWORD_MAX  1024

#define TC_SOCKET_ENV "TELECARE_SOCKET"

/* telecarectl exit status (SPEC 6) */
enum {
	TC_EXIT_OK = 0,
	TC_EXIT_REFUSED = 1,
	TC_EXIT_USAGE = 2,
	TC_EXIT_UNREACHABLE = 3,
};

/* ---- the envelope */

#define TC_KEY_CMD   "cmd"
#define TC_KEY_ARGS  "args"     /* may be omitted when a command takes none */
#define TC_KEY_OK    "ok"
#define TC_KEY_DATA  "data"
#define TC_KEY_ERROR "error"

/* ---- lines that follow an answer on the same connection */

/* events with "follow": true: {"event": {...}} per stored event */
#define TC_KEY_EVENT "event"
/* device.test: {"stage": ..., "device", "at", "alarm", "detail"}; after
 * "alerted" the daemon closes the connection */
#define TC_KEY_STAGE          "stage"
#define TC_STAGE_WAITING      "waiting"
#define TC_STAGE_RECEIVED     "received"
#define TC_STAGE_STORED       "stored"
#define TC_STAGE_RECEIPT_SENT "receipt_sent"
#define TC_STAGE_ALERTED      "alerted"
/* Either stream may end with {"ok": false, "error": "..."}. */

/* ---- commands */

#define TC_CMD_STATUS          "status"
#define TC_CMD_RESIDENT_ADD    "resident.add"
#define TC_CMD_RESIDENT_LIST   "resident.list"
#define TC_CMD_RESIDENT_SHOW   "resident.show"
#define TC_CMD_RESIDENT_REMOVE "resident.remove"
#define TC_CMD_DEVICE_ADD      "device.add"
#define TC_CMD_DEVICE_LIST     "device.list"
#define TC_CMD_DEVICE_SHOW     "device.show"
#define TC_CMD_DEVICE_REMOVE   "device.remove"
#define TC_CMD_DEVICE_UNKNOWN  "device.unknown"
#define TC_CMD_DEVICE_TEST     "device.test"
#define TC_CMD_DEVICE_IMPORT   "device.import"
#define TC_CMD_DEVICE_ADOPT    "device.adopt"
#define TC_CMD_SOURCE_UNMAPPED "source.unmapped"
#define TC_CMD_WORKER_ADD      "worker.add"
#define TC_CMD_WORKER_LIST     "worker.list"
#define TC_CMD_WORKER_SHOW     "worker.show"
#define TC_CMD_WORKER_REMOVE   "worker.remove"
#define TC_CMD_SHIFT_ADD       "shift.add"
#define TC_CMD_SHIFT_LIST      "shift.list"
#define TC_CMD_SHIFT_REMOVE    "shift.remove"
#define TC_CMD_ONCALL          "oncall"
#define TC_CMD_ALARM_LIST      "alarm.list"
#define TC_CMD_ALARM_SHOW      "alarm.show"
#define TC_CMD_ALARM_ACK       "alarm.ack"
#define TC_CMD_ALARM_RESOLVE   "alarm.resolve"
#define TC_CMD_ALARM_NOTE      "alarm.note"
#define TC_CMD_ALARM_DECLINE   "alarm.decline"
#define TC_CMD_EVENTS          "events"
#define TC_CMD_REPORT          "report"
#define TC_CMD_USER_ADD        "user.add"
#define TC_CMD_USER_PASSWD     "user.passwd"
#define TC_CMD_USER_LIST       "user.list"
#define TC_CMD_USER_REMOVE     "user.remove"

/* ---- keys of "args" */

#define TC_ARG_ID        "id"         /* string id, or integer for alarms and shifts */
#define TC_ARG_NAME      "name"
#define TC_ARG_ADDRESS   "address"
#define TC_ARG_PHONE     "phone"
#define TC_ARG_TEAM      "team"
#define TC_ARG_NOTES     "notes"
#define TC_ARG_RESIDENT  "resident"
#define TC_ARG_KIND      "kind"
#define TC_ARG_HEARTBEAT "heartbeat_ms"
#define TC_ARG_SOURCE    "source"
#define TC_ARG_ROWS      "rows"       /* device.import: [{"line", "id", "resident", ...}] */
#define TC_ARG_LINE      "line"
#define TC_ARG_WEBHOOK   "webhook"
#define TC_ARG_WORKER    "worker"     /* shift.add, user.add */
#define TC_ARG_ALWAYS    "always"
#define TC_ARG_DAYS      "days"
#define TC_ARG_HOURS     "hours"
#define TC_ARG_FROM      "from"
#define TC_ARG_TO        "to"
#define TC_ARG_AT        "at"
#define TC_ARG_OPEN      "open"
#define TC_ARG_AS        "as"         /* alarm.*: the worker acted for; absent: the caller */
#define TC_ARG_OUTCOME   "outcome"
#define TC_ARG_NOTE      "note"
#define TC_ARG_DEVICE    "device"
#define TC_ARG_LIMIT     "limit"
#define TC_ARG_FOLLOW    "follow"
#define TC_ARG_ROLE      "role"
#define TC_ARG_PASSWORD  "password"

/* ---- roles (SPEC 6.1), the values of user.add's "role" */

#define TC_ROLE_ADMIN      "admin"
#define TC_ROLE_DISPATCHER "dispatcher"
#define TC_ROLE_INSTALLER  "installer"
#define TC_ROLE_WORKER     "worker"

#endif
