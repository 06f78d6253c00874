/* telecarectl: the command-line client of telecared (SPEC 6).
 *
 * One run is one request: the command line becomes {"cmd", "args"}, sent as
 * one line on the control socket (docs/CONTROL.md); the one-line answer's
 * data is printed as JSON (--json) or as text for people. `events --follow`
 * keeps reading event lines after the answer; `device test` reads the stages
 * of the device's next alarm after it. `device import` reads a CSV file here
 * and sends its rows in one request; `user add` and `user passwd` read a
 * password from standard input.
 *
 * The parts:
 *   main.c        global options, finding the command, usage
 *   commands.c    the table of commands and their build functions
 *   args.c        command-line parameters, declared as tables per command
 *   password.c    reading a password (user add, user passwd)
 *   import.c      device import: the file, through csv.c, into rows
 *   conn.c        the socket, the line reader, running one call
 *   stream.c      what follows an answer: events --follow, device test
 *   backup.c      backup FILE
 *   table.c       text output: cleaning, cells, aligned tables, JSON
 *   print_*.c     the human output of each command, by resource
 *
 * Adding a command: a build_* function (command line -> args, usually just a
 * parameter table handed to parse_params), a print_* function (data -> text)
 * and one row in `commands`. Usage and help come from that row. */
#ifndef TELECARE_CTL_H
#define TELECARE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "telecare/control.h"

#ifndef TELECARE_SOCKET_PATH
#define TELECARE_SOCKET_PATH "/run/telecare/control.sock"
#endif
#ifndef TELECARE_VERSION
#define TELECARE_VERSION "0.1.0"
#endif

#define PROG "telecarectl"
#define ANSWER_TIMEOUT_MS (60 * 1000)      /* a daemon that accepts but never answers */
#define DEVICE_TEST_TIMEOUT_MS (2 * 60 * 1000)   /* device test --timeout default */

/* ---- one invocation. There is no global mutable state: the options and
 * the call are passed down explicitly. */

struct command;

struct options {
	const char *socket_path;
	bool json;
};

struct call {
	const struct command *cmd;
	int argc;             /* the words after the command's name */
	char **argv;
	json_t *args;         /* filled by the command's build function */
	bool follow;          /* keep reading {"event"} lines after the answer */
	size_t *ev_width;     /* follow: the event columns' widths, set by the batch */
	int timeout_ms;       /* wait for the answer; -1 forever */
	bool test;            /* device test: read stage lines after the answer */
	int64_t test_ms;      /* device test: how long to wait for the device's alarm */
	const char *path;     /* device import: the CSV file; backup: the copy */
	bool backup;          /* backup: copy the database the status answer names */
	bool secret;          /* args hold a password: wipe what carried it */
};

struct command {
	const char *group;    /* first word */
	const char *verb;     /* second word, NULL for one-word commands */
	const char *wire;     /* "cmd" in the request */
	const char *usage;    /* shown after "telecarectl " */
	int (*build)(struct call *c);                          /* 0, PARSE_USAGE or PARSE_HELP */
	void (*print)(const struct call *c, const json_t *data);  /* human output */
};

enum { PARSE_OK = 0, PARSE_USAGE = -1, PARSE_HELP = 1 };

/* commands.c */
extern const struct command commands[];
extern const size_t ncommands;

/* ---- args.c: command-line parameters */

enum ptype {
	P_STRING,     /* any text, passed as is; the daemon judges it */
	P_ID,         /* SPEC 1 id: checked here so typos fail fast with exit 2 */
	P_SERIAL,     /* a positive integer (alarm ids) */
	P_LIMIT,      /* 1..TC_EVENTS_LIMIT_MAX */
	P_DURATION,   /* "15m": sent as milliseconds under key */
	P_FLAG,       /* --open: sent as true */
	P_TIME,       /* RFC 3339: checked here, sent as UTC with milliseconds */
	P_TEAMS,      /* "night,north": comma-separated SPEC 1 names, sent without blanks */
	P_WEEKLY,     /* --weekly DAYS HH:MM-HH:MM: two words, under key and "hours" */
	P_PATH,       /* a file name: kept in the call (any bytes), not sent */
	P_ROLE,       /* one of the roles of SPEC 6.1 */
};

struct param {
	const char *name;   /* "--name" for options; "device id" etc. for positionals */
	const char *key;    /* key in args */
	enum ptype type;
	bool required;      /* options only; positionals are always required */
};

/* One line saying what is wrong, one saying where to look; PARSE_USAGE. */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Options from opt in any order, the positionals of pos in order. */
int parse_params(struct call *c, const struct param *pos, const struct param *opt);
/* The milliseconds of a P_TIME argument already checked by parse_params. */
bool time_arg(const struct call *c, const char *key, int64_t *ms);

/* password.c: one line from standard input, or asked twice on a terminal.
 * A new string (wipe with secret_free), or NULL (reported: PARSE_USAGE). */
char *read_password(const char *user);
void secret_free(char *s);
/* Overwrite a JSON string's bytes before it is released. */
void json_string_wipe(json_t *s);

/* import.c */
int build_device_import(struct call *c);

/* conn.c */
int run(const struct options *o, struct call *c);
int die_unreachable(const char *path, const char *what);

/* ---- conn.c: the line reader over the socket. Answers can be megabytes
 * (lists of thousands), so the buffer grows; bytes after a line (the first
 * follow events) stay for the next call. */
struct reader {
	int fd;
	int sigfd;        /* readable when SIGINT/SIGTERM arrived, or -1 */
	int timeout_ms;
	char *buf;
	size_t len, cap, start, scan;
};

enum { RD_LINE, RD_EOF, RD_SIGNAL, RD_ERROR };

/* RD_LINE: *line (NUL-terminated, valid until the next call) of *linelen
 * bytes. RD_ERROR sets errno. */
int read_line(struct reader *r, char **line, size_t *linelen);

/* stream.c */
int follow_events(const struct options *o, const struct call *c, struct reader *r);
int device_test_stream(const struct options *o, const struct call *c, struct reader *r);

/* backup.c */
int build_backup(struct call *c);
void print_backup(const struct call *c, const json_t *d);
int do_backup(const struct options *o, const struct call *c, const json_t *status);

/* ---- table.c: text output. Strings from the daemon may come from devices:
 * control bytes (C0, DEL and the C1 range as UTF-8) become '?' so nothing
 * can drive the terminal. */

void put_clean(FILE *f, const char *s, size_t len);
/* A value as display text (malloc'd, cleaned): null and absent are "-". */
char *text_of(const json_t *v);
void put_value(FILE *f, const json_t *v);
/* "label:     value" lines of a show block */
void kv(const char *label, const json_t *v);
/* The strings of a JSON array joined by sep, or "-" when empty or absent. */
char *join_array(const json_t *arr, const char *sep);
int print_json(const json_t *v, size_t flags);

/* Aligned tables: cells are owned, cleaned strings, the first row the
 * headers. A column is as wide as its widest cell, at most COL_MAX (the
 * longest SPEC 1 id, so ids are never cut; longer free text is cut with an
 * ellipsis), and COL_GAP blanks separate columns. The last column is
 * neither padded nor cut, and a row ends where its remaining cells are
 * empty, so no line carries trailing blanks. */
#define COL_MAX 64
#define COL_GAP 2

struct table {
	size_t ncols, ncells, cap;
	char **cells;
};

void table_init(struct table *t, const char *const *headers);
void table_add(struct table *t, char *cell);
void table_add_value(struct table *t, const json_t *v);
/* Widen width[] (ncols entries) to the cells of t, within COL_MAX. */
void table_widths(const struct table *t, size_t *width);
/* Print the rows of t with the given widths (NULL: sized to the cells) and
 * free it. */
void table_print_with(struct table *t, const char *indent, const size_t *given);
void table_print(struct table *t, const char *indent);
/* A list answer as a table: a column per key, or `empty` for none. */
void print_rows(const json_t *d, const char *empty, const char *const *heads,
                const char *const *keys);

/* ---- print_*.c: the human output of each command */

/* print_registry.c */
void print_status(const struct call *c, const json_t *d);
void print_removed(const struct call *c, const json_t *d);
void print_resident(const struct call *c, const json_t *d);
void print_resident_list(const struct call *c, const json_t *d);
void print_device(const struct call *c, const json_t *d);
void print_device_list(const struct call *c, const json_t *d);
void print_device_unknown(const struct call *c, const json_t *d);
void print_device_unmapped(const struct call *c, const json_t *d);
void print_device_import(const struct call *c, const json_t *d);
void print_device_test(const struct call *c, const json_t *d);
void print_test_stage(const json_t *st);

/* print_alarm.c */
#define EVENT_COLS 7
void print_alarm_table(const json_t *alarms, const char *indent);
void print_alarm_list(const struct call *c, const json_t *d);
void print_alarm(const struct call *c, const json_t *d);
void print_alarm_action(const struct call *c, const json_t *d);
void print_event_list(const json_t *events, const char *indent);
void print_event_stream_line(const json_t *ev, const size_t *width);
void print_events(const struct call *c, const json_t *d);
void print_report(const struct call *c, const json_t *d);

/* print_roster.c */
void print_worker(const struct call *c, const json_t *d);
void print_worker_list(const struct call *c, const json_t *d);
void print_shift(const struct call *c, const json_t *d);
void print_shift_list(const struct call *c, const json_t *d);
void print_oncall(const struct call *c, const json_t *d);
void print_user_added(const struct call *c, const json_t *d);
void print_user_passwd(const struct call *c, const json_t *d);
void print_user_list(const struct call *c, const json_t *d);

#endif
