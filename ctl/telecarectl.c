/* telecarectl: the command-line client of telecared (SPEC 6).
 *
 * One run is one request: the command line becomes {"cmd", "args"}, sent as
 * one line on the control socket (docs/CONTROL.md); the one-line answer's
 * data is printed as JSON (--json) or as text for people. `events --follow`
 * keeps reading event lines after the answer; `device test` reads the stages
 * of the device's next alarm after it. `device import` reads a CSV file here
 * and sends its rows in one request.
 *
 * Adding a command: a build_* function (command line -> args, usually just a
 * parameter table handed to parse_params), a print_* function (data -> text)
 * and one row in `commands`. Usage and help come from that row. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "telecare/control.h"
#include "telecare/event.h"
#include "telecare/timefmt.h"

#ifndef TELECARE_SOCKET_PATH
#define TELECARE_SOCKET_PATH "/run/telecare/control.sock"
#endif
#ifndef TELECARE_VERSION
#define TELECARE_VERSION "0.1.0"
#endif

#define PROG "telecarectl"
#define ANSWER_TIMEOUT_MS (60 * 1000)      /* a daemon that accepts but never answers */
#define ANSWER_MAX ((size_t)512 << 20)     /* sanity cap on one answer line */
#define EVENTS_LIMIT_MAX 10000             /* CONTROL.md: events limit */
#define DEVICE_TEST_TIMEOUT_MS (2 * 60 * 1000)   /* device test --timeout default */
#define IMPORT_ROWS_MAX 100000             /* device import: rows in one file */
#define IMPORT_FILE_MAX ((size_t)256 << 20)  /* device import: bytes in one file */
#define IMPORT_ERRORS_MAX 10               /* device import: bad lines shown */

/* ---------------------------------------------------------------------- */
/* Commands */

struct command;

/* Everything about one invocation. There is no global mutable state: the
 * options and this call are passed down explicitly. */
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

static void put_clean(FILE *f, const char *s, size_t len);

/* The usage message for wrong input: one line saying what is wrong, one
 * line saying where to look. Always exit 2. */
static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\ntry: " PROG " --help\n", stderr);
	return PARSE_USAGE;
}

/* ---------------------------------------------------------------------- */
/* Command-line parameters, declared as tables per command */

enum ptype {
	P_STRING,     /* any text, passed as is; the daemon judges it */
	P_ID,         /* SPEC 1 id: checked here so typos fail fast with exit 2 */
	P_SERIAL,     /* a positive integer (alarm ids) */
	P_LIMIT,      /* 1..EVENTS_LIMIT_MAX */
	P_DURATION,   /* "15m": sent as milliseconds under key */
	P_FLAG,       /* --open: sent as true */
	P_TIME,       /* RFC 3339: checked here, sent as UTC with milliseconds */
	P_TEAMS,      /* "night,north": comma-separated SPEC 1 names, sent without blanks */
	P_WEEKLY,     /* --weekly DAYS HH:MM-HH:MM: two words, under key and "hours" */
	P_PATH,       /* a file name: kept in the call (any bytes), not sent */
};

struct param {
	const char *name;   /* "--name" for options; "device id" etc. for positionals */
	const char *key;    /* key in args */
	enum ptype type;
	bool required;      /* options only; positionals are always required */
};

/* "north, night" -> "north,night" in a new string, or NULL when a name is empty or
 * not a SPEC 1 name (*bad then points at it, for the message). */
static char *teams_normalize(const char *val, char **bad)
{
	char *copy = strdup(val), *out = calloc(1, strlen(val) + 1), *save = NULL;
	bool fail = !copy || !out;
	size_t len = 0;
	*bad = NULL;
	for (char *t = fail ? NULL : strtok_r(copy, ",", &save); t && !fail;
	     t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ' || *t == '\t')
			t++;
		size_t n = strlen(t);
		while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			n--;
		if (!tc_device_id_valid(t, n)) {
			*bad = strndup(t, n);
			fail = true;
			break;
		}
		if (len)
			out[len++] = ',';
		memcpy(out + len, t, n);
		len += n;
	}
	/* an empty list, or an empty name between commas ("a,,b", "a,") */
	if (!fail && (!len || strstr(val, ",,") || val[strlen(val) - 1] == ',' || val[0] == ','))
		fail = true;
	free(copy);
	if (fail) {
		free(out);
		return NULL;
	}
	return out;
}

static int put_param(struct call *c, const struct param *p, const char *val,
                     const char *val2)
{
	const char *what = p->name;
	json_t *v = NULL;

	switch (p->type) {
	case P_PATH:
		if (!val[0])
			return usage_error("%s is empty", what);
		c->path = val;
		return PARSE_OK;
	case P_STRING:
		v = json_string(val);
		if (!v)
			return usage_error("the value of %s is not valid UTF-8", what);
		break;
	case P_ID:
		if (!tc_device_id_valid(val, strlen(val)))
			return usage_error("invalid %s '%s': 1-64 characters of A-Z a-z 0-9 . _ -",
			                   what, val);
		v = json_string(val);
		break;
	case P_SERIAL:
	case P_LIMIT: {
		char *end;
		errno = 0;
		long long n = (val[0] >= '0' && val[0] <= '9') ? strtoll(val, &end, 10) : -1;
		if (n < 1 || errno || *end || (p->type == P_LIMIT && n > EVENTS_LIMIT_MAX)) {
			if (p->type == P_LIMIT)
				return usage_error("invalid %s '%s': a number from 1 to %d", what, val,
				                   EVENTS_LIMIT_MAX);
			return usage_error("invalid %s '%s': a positive number", what, val);
		}
		v = json_integer(n);
		break;
	}
	case P_DURATION: {
		int64_t ms;
		if (tc_duration_parse(val, &ms) < 0)
			return usage_error("invalid duration '%s' for %s (e.g. 30s, 15m, 1h, 1d)", val, what);
		v = json_integer(ms);
		break;
	}
	case P_FLAG:
		v = json_true();
		break;
	case P_TIME: {
		int64_t ms;
		char buf[TC_TIME_STRLEN];
		if (tc_time_parse(val, &ms) < 0)
			return usage_error("invalid time '%s' for %s: RFC 3339, e.g. 2026-11-22T10:15:00Z",
			                   val, what);
		tc_time_format(ms, buf, sizeof(buf));
		v = json_string(buf);
		break;
	}
	case P_TEAMS: {
		char *bad, *teams = teams_normalize(val, &bad);
		if (!teams) {
			int rc;
			if (bad && bad[0])
				rc = usage_error("invalid team '%s' in %s: 1-64 characters of "
				                 "A-Z a-z 0-9 . _ -", bad, what);
			else
				rc = usage_error("invalid %s '%s': comma-separated team names", what, val);
			free(bad);
			return rc;
		}
		v = json_string(teams);
		free(teams);
		break;
	}
	case P_WEEKLY:
		/* the daemon knows the spellings of days (mon-fri, weekends, ...) and
		 * hours; only the shape is ours */
		v = json_string(val);
		if (!v || !val2 || json_object_set_new(c->args, "hours", json_string(val2)) < 0) {
			json_decref(v);
			return usage_error("invalid %s: DAYS and HH:MM-HH:MM as UTF-8 text", what);
		}
		break;
	}
	if (!v || json_object_set_new(c->args, p->key, v) < 0)
		return usage_error("out of memory");
	return PARSE_OK;
}

/* Walk the words after the command name: options from opt (as "--x VALUE",
 * "--x=VALUE" or a bare flag) in any order, the positionals of pos in order.
 * "--" ends the options, for ids that start with '-'. */
static int parse_params(struct call *c, const struct param *pos, const struct param *opt)
{
	size_t npos = 0, seen = 0;
	bool options_done = false;

	while (pos && pos[npos].name)
		npos++;
	for (int i = 0; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (options_done || a[0] != '-' || a[1] == '\0') {
			if (seen >= npos)
				return usage_error("unexpected argument '%s' (usage: %s)", a, c->cmd->usage);
			int rc = put_param(c, &pos[seen++], a, NULL);
			if (rc)
				return rc;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("usage: " PROG " %s\n", c->cmd->usage);
			return PARSE_HELP;
		}
		const char *eq = strchr(a, '=');
		size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
		const struct param *p = opt;
		while (p && p->name && !(strlen(p->name) == nlen && strncmp(p->name, a, nlen) == 0))
			p++;
		if (!p || !p->name) {
			if ((nlen == 6 && strncmp(a, "--json", 6) == 0) ||
			    (nlen == 8 && strncmp(a, "--socket", 8) == 0))
				return usage_error("%.*s is a global option: put it before the command",
				                   (int)nlen, a);
			return usage_error("unknown option %.*s for '%s'", (int)nlen, a, c->cmd->usage);
		}
		if (json_object_get(c->args, p->key))
			return usage_error("%s given twice", p->name);
		const char *val, *val2 = NULL;
		if (p->type == P_FLAG) {
			if (eq)
				return usage_error("%s takes no value", p->name);
			val = "";
		} else if (eq) {
			val = eq + 1;
		} else if (i + 1 < c->argc) {
			val = c->argv[++i];
		} else if (p->type == P_WEEKLY) {
			return usage_error("%s needs DAYS and HH:MM-HH:MM (e.g. %s mon-fri 22:00-06:00)",
			                   p->name, p->name);
		} else {
			return usage_error("%s needs a value", p->name);
		}
		if (p->type == P_WEEKLY) {
			/* the second word: never an option, so "--weekly mon-fri --always"
			 * is not taken for hours */
			if (i + 1 >= c->argc || (c->argv[i + 1][0] == '-' && c->argv[i + 1][1] != '\0'))
				return usage_error("%s needs DAYS and HH:MM-HH:MM (e.g. %s mon-fri 22:00-06:00)",
				                   p->name, p->name);
			val2 = c->argv[++i];
		}
		int rc = put_param(c, p, val, val2);
		if (rc)
			return rc;
	}
	if (seen < npos)
		return usage_error("missing %s (usage: %s)", pos[seen].name, c->cmd->usage);
	for (const struct param *p = opt; p && p->name; p++)
		if (p->required && !json_object_get(c->args, p->key))
			return usage_error("missing %s (usage: %s)", p->name, c->cmd->usage);
	return PARSE_OK;
}

/* ---------------------------------------------------------------------- */
/* Build functions: the command line of each command */

static int build_none(struct call *c)
{
	return parse_params(c, NULL, NULL);
}

static int build_resident_add(struct call *c)
{
	static const struct param pos[] = { { "resident id", "id", P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--name", "name", P_STRING, true },
		{ "--address", "address", P_STRING, false },
		{ "--phone", "phone", P_STRING, false },
		{ "--team", "team", P_STRING, false },
		{ "--notes", "notes", P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

/* show ID / remove ID of residents, devices and workers */
static int build_by_id(struct call *c)
{
	static const struct param pos[] = { { "id", "id", P_ID, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

/* --source and --address name where a device is heard (a [source NAME] of
 * the daemon's configuration and the device's address there): both or
 * neither. */
static int check_source_address(const struct call *c)
{
	bool src = json_object_get(c->args, "source"), addr = json_object_get(c->args, "address");
	if (src != addr)
		return usage_error("--source and --address go together: the [source NAME] the device "
		                   "is heard through and its address there (usage: %s)", c->cmd->usage);
	if (addr && !json_string_length(json_object_get(c->args, "address")))
		return usage_error("--address needs some text");
	return PARSE_OK;
}

/* device add and device adopt take the same options */
static const struct param device_opts[] = {
	{ "--resident", "resident", P_ID, true },
	{ "--kind", "kind", P_STRING, false },
	{ "--heartbeat", "heartbeat_ms", P_DURATION, false },
	{ "--source", "source", P_ID, false },
	{ "--address", "address", P_STRING, false },
	{ 0 },
};

static int build_device_add(struct call *c)
{
	static const struct param pos[] = { { "device id", "id", P_ID, true }, { 0 } };
	int rc = parse_params(c, pos, device_opts);
	return rc == PARSE_OK ? check_source_address(c) : rc;
}

static int build_device_test(struct call *c)
{
	static const struct param pos[] = { { "device id", "id", P_ID, true }, { 0 } };
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

/* ---- device import: the CSV file ------------------------------------- */

/* RFC 4180, leniently: fields separated by commas, optionally in double
 * quotes ("" is a quote inside them, and they may span lines); lines end in
 * LF or CRLF; blanks around fields are dropped; blank lines and lines that
 * start with '#' are skipped. A UTF-8 byte order mark is ignored. */
struct csv {
	const char *path;
	const char *p, *end;   /* what is left of the file */
	long line;             /* the line p is on, from 1 */
	long start;            /* the line the last record started on */
	size_t errors;         /* lines reported as bad */
};

struct csv_field {
	char *s;               /* NUL-terminated (a NUL byte inside is kept in len) */
	size_t len;
};

/* "FILE:LINE: message" on stderr, at most IMPORT_ERRORS_MAX of them. */
static void csv_error(struct csv *cv, long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void csv_error(struct csv *cv, long line, const char *fmt, ...)
{
	va_list ap;
	if (cv->errors++ >= IMPORT_ERRORS_MAX)
		return;
	if (line <= 0)
		fputs(PROG ": ", stderr);
	put_clean(stderr, cv->path, strlen(cv->path));
	if (line > 0)
		fprintf(stderr, ":%ld", line);
	fputs(": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool csv_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

/* At the end of a line: LF, CRLF, or a CR that ends the file. */
static size_t csv_eol(const struct csv *cv, const char *p)
{
	if (p < cv->end && *p == '\n')
		return 1;
	if (p < cv->end && *p == '\r' && (p + 1 == cv->end || p[1] == '\n'))
		return p + 1 == cv->end ? 1 : 2;
	return 0;
}

static void csv_fields_free(struct csv_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(f[i].s);
	free(f);
}

/* The next record into *out (*n fields). Returns 1, 0 at the end of the
 * file, or -1 for a line that cannot be read (reported; the caller goes on
 * when cv->p moved past it, and gives up at the end of the file). */
static int csv_record(struct csv *cv, struct csv_field **out, size_t *n)
{
	struct csv_field *f = NULL;
	size_t nf = 0, cap = 0;

	*out = NULL;
	*n = 0;
	/* skip blank and comment lines */
	for (;;) {
		const char *q = cv->p;
		if (q >= cv->end)
			return 0;
		while (q < cv->end && csv_blank(*q))
			q++;
		size_t e = csv_eol(cv, q);
		if (q < cv->end && !e && *q != '#')
			break;
		if (q < cv->end && *q == '#') {
			while (q < cv->end && *q != '\n')
				q++;
			e = q < cv->end ? 1 : 0;
		}
		cv->p = q + e;
		cv->line++;
	}
	cv->start = cv->line;

	for (;;) {
		char *buf = NULL;
		size_t blen = 0;
		FILE *b = open_memstream(&buf, &blen);
		if (!b) {
			csv_fields_free(f, nf);
			csv_error(cv, cv->start, "out of memory");
			cv->p = cv->end;
			return -1;
		}
		while (cv->p < cv->end && csv_blank(*cv->p))
			cv->p++;
		const char *why = NULL;
		if (cv->p < cv->end && *cv->p == '"') {
			long opened = cv->line;
			cv->p++;
			for (;;) {
				if (cv->p >= cv->end) {
					why = "unterminated quote";
					break;
				}
				if (*cv->p == '"') {
					if (cv->p + 1 < cv->end && cv->p[1] == '"') {
						fputc('"', b);
						cv->p += 2;
						continue;
					}
					cv->p++;
					break;
				}
				if (*cv->p == '\n')
					cv->line++;
				fputc(*cv->p++, b);
			}
			if (why) {
				fclose(b);
				free(buf);
				csv_fields_free(f, nf);
				csv_error(cv, opened, "unterminated quote: a field opened with \" "
				          "is never closed");
				return -1;
			}
			while (cv->p < cv->end && csv_blank(*cv->p))
				cv->p++;
			if (cv->p < cv->end && *cv->p != ',' && !csv_eol(cv, cv->p))
				why = "text after a closing quote (a quote inside a field is written \"\")";
		} else {
			const char *s = cv->p;
			while (cv->p < cv->end && *cv->p != ',' && !csv_eol(cv, cv->p)) {
				if (*cv->p == '"')
					why = "a quote inside an unquoted field (quote the whole field "
					      "and write the quote as \"\")";
				cv->p++;
			}
			const char *e = cv->p;
			while (e > s && csv_blank(e[-1]))
				e--;
			fwrite(s, 1, (size_t)(e - s), b);
		}
		fclose(b);
		if (!buf)
			why = "out of memory";
		if (why) {
			free(buf);
			csv_fields_free(f, nf);
			csv_error(cv, cv->start, "%s", why);
			/* resynchronize at the next line */
			while (cv->p < cv->end && *cv->p != '\n')
				cv->p++;
			if (cv->p < cv->end) {
				cv->p++;
				cv->line++;
			}
			return -1;
		}
		if (nf == cap) {
			cap = cap ? cap * 2 : 8;
			struct csv_field *nfld = realloc(f, cap * sizeof(*f));
			if (!nfld) {
				free(buf);
				csv_fields_free(f, nf);
				csv_error(cv, cv->start, "out of memory");
				cv->p = cv->end;
				return -1;
			}
			f = nfld;
		}
		f[nf].s = buf;
		f[nf++].len = blen;

		if (cv->p < cv->end && *cv->p == ',') {
			cv->p++;
			continue;
		}
		size_t e = csv_eol(cv, cv->p);
		if (e) {
			cv->p += e;
			cv->line++;
		}
		break;   /* end of the line or of the file */
	}
	*out = f;
	*n = nf;
	return 1;
}

enum { COL_ID, COL_RESIDENT, COL_KIND, COL_HEARTBEAT, COL_SOURCE, COL_ADDRESS, NCOLS_CSV };
static const char *const csv_columns[NCOLS_CSV] = {
	"id", "resident", "kind", "heartbeat", "source", "address"
};

/* The header row: which column holds what (col[i]: the field index of
 * csv_columns[i], or -1). Returns 0, or -1 (reported). */
static int csv_header(struct csv *cv, const struct csv_field *f, size_t n, int *col)
{
	for (int i = 0; i < NCOLS_CSV; i++)
		col[i] = -1;
	for (size_t k = 0; k < n; k++) {
		int i = 0;
		while (i < NCOLS_CSV && !(strlen(f[k].s) == f[k].len &&
		                          strcasecmp(f[k].s, csv_columns[i]) == 0))
			i++;
		if (i == NCOLS_CSV) {
			cv->errors++;
			put_clean(stderr, cv->path, strlen(cv->path));
			fprintf(stderr, ":%ld: unknown column \"", cv->start);
			put_clean(stderr, f[k].s, f[k].len);
			fputs("\" (the columns are id, resident, kind, heartbeat, source, address)\n",
			      stderr);
			return -1;
		}
		if (col[i] >= 0) {
			csv_error(cv, cv->start, "column \"%s\" appears twice", csv_columns[i]);
			return -1;
		}
		col[i] = (int)k;
	}
	for (int i = COL_ID; i <= COL_RESIDENT; i++) {
		if (col[i] < 0) {
			csv_error(cv, cv->start, "the header row has no \"%s\" column (it names the "
			          "columns: id,resident[,kind,heartbeat,source,address])", csv_columns[i]);
			return -1;
		}
	}
	return 0;
}

/* One data record as an import row, or NULL (reported). */
static json_t *csv_row(struct csv *cv, const struct csv_field *f, size_t n, const int *col,
                       size_t ncols)
{
	static const char *const keys[NCOLS_CSV] = {
		"id", "resident", "kind", "heartbeat_ms", "source", "address"
	};
	if (n != ncols) {
		csv_error(cv, cv->start, "%zu field%s, but the header row has %zu column%s", n,
		          n == 1 ? "" : "s", ncols, ncols == 1 ? "" : "s");
		return NULL;
	}
	json_t *row = json_pack("{s:I}", "line", (json_int_t)cv->start);
	if (!row) {
		csv_error(cv, cv->start, "out of memory");
		return NULL;
	}
	for (int i = 0; i < NCOLS_CSV; i++) {
		if (col[i] < 0)
			continue;
		const struct csv_field *v = &f[col[i]];
		json_t *j;
		/* an empty optional cell is an absent value; empty id and resident
		 * are sent, and the daemon names the line */
		if (!v->len && i != COL_ID && i != COL_RESIDENT)
			continue;
		if (i == COL_HEARTBEAT) {
			int64_t ms;
			if (strlen(v->s) != v->len || tc_duration_parse(v->s, &ms) < 0) {
				if (cv->errors++ < IMPORT_ERRORS_MAX) {
					put_clean(stderr, cv->path, strlen(cv->path));
					fprintf(stderr, ":%ld: bad heartbeat \"", cv->start);
					put_clean(stderr, v->s, v->len);
					fputs("\" (a duration: 30s, 15m, 1h, 1d)\n", stderr);
				}
				json_decref(row);
				return NULL;
			}
			j = json_integer(ms);
		} else {
			j = json_stringn(v->s, v->len);
			if (!j) {
				csv_error(cv, cv->start, "the %s is not valid UTF-8 (save the file as UTF-8)",
				          csv_columns[i]);
				json_decref(row);
				return NULL;
			}
		}
		json_object_set_new(row, keys[i], j);
	}
	return row;
}

/* The whole file in memory (NUL-terminated), or NULL with errno set. */
static char *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		close(fd);
		errno = EISDIR;
		return NULL;
	}
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap + 1);
	while (buf) {
		if (n == cap) {
			char *nb = cap < IMPORT_FILE_MAX ? realloc(buf, cap * 2 + 1) : NULL;
			if (!nb) {
				free(buf);
				buf = NULL;
				errno = cap < IMPORT_FILE_MAX ? ENOMEM : EFBIG;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			int e = errno;
			free(buf);
			buf = NULL;
			errno = e;
			break;
		}
		if (got == 0) {
			buf[n] = '\0';
			*len = n;
			break;
		}
		n += (size_t)got;
	}
	int e = errno;
	close(fd);
	errno = e;
	return buf;
}

static int build_device_import(struct call *c)
{
	static const struct param pos[] = { { "CSV file", NULL, P_PATH, true }, { 0 } };
	int rc = parse_params(c, pos, NULL);
	if (rc != PARSE_OK)
		return rc;

	size_t len = 0;
	char *text = read_file(c->path, &len);
	if (!text) {
		fputs(PROG ": cannot read ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fprintf(stderr, ": %s\n", errno == EFBIG ? "larger than 256 MiB" : strerror(errno));
		return PARSE_USAGE;
	}
	struct csv cv = { .path = c->path, .p = text, .end = text + len, .line = 1 };
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		cv.p += 3;   /* the byte order mark spreadsheets write */

	struct csv_field *f;
	size_t n, ncols = 0;
	int col[NCOLS_CSV];
	bool have_header = false, structural = false;
	json_t *rows = json_array();
	int r;

	while (rows && (r = csv_record(&cv, &f, &n)) != 0) {
		if (r < 0) {
			if (!have_header || cv.p >= cv.end)
				structural = true;   /* nothing sensible can follow */
			if (structural)
				break;
			continue;
		}
		if (!have_header) {
			have_header = true;
			ncols = n;
			int hr = csv_header(&cv, f, n, col);
			csv_fields_free(f, n);
			if (hr < 0) {
				structural = true;
				break;
			}
			continue;
		}
		json_t *row = csv_row(&cv, f, n, col, ncols);
		csv_fields_free(f, n);
		if (row && !cv.errors && json_array_size(rows) >= IMPORT_ROWS_MAX) {
			json_decref(row);
			csv_error(&cv, cv.start, "more than %d devices in one file; split it",
			          IMPORT_ROWS_MAX);
			structural = true;
			break;
		}
		if (row && !cv.errors)
			json_array_append_new(rows, row);
		else
			json_decref(row);
	}
	free(text);

	if (!rows) {
		fputs(PROG ": out of memory\n", stderr);
		return PARSE_USAGE;
	}
	if (!cv.errors && !have_header)
		csv_error(&cv, 0, "empty: the first row names the columns "
		          "(id,resident[,kind,heartbeat,source,address])");
	else if (!cv.errors && !json_array_size(rows))
		csv_error(&cv, 0, "no devices below the header row");
	if (cv.errors) {
		json_decref(rows);
		if (cv.errors > IMPORT_ERRORS_MAX)
			fprintf(stderr, PROG ": ... and %zu more bad lines\n",
			        cv.errors - IMPORT_ERRORS_MAX);
		fputs(PROG ": nothing imported, nothing sent to telecared\n", stderr);
		return PARSE_USAGE;
	}
	json_object_set_new(c->args, "rows", rows);
	return PARSE_OK;
}

static int build_device_adopt(struct call *c)
{
	static const struct param pos[] = { { "device id", "id", P_ID, true }, { 0 } };
	int rc = parse_params(c, pos, device_opts);
	return rc == PARSE_OK ? check_source_address(c) : rc;
}

static int build_alarm_list(struct call *c)
{
	static const struct param opt[] = { { "--open", "open", P_FLAG, false }, { 0 } };
	return parse_params(c, NULL, opt);
}

static int build_alarm_show(struct call *c)
{
	static const struct param pos[] = { { "alarm id", "id", P_SERIAL, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

static int build_worker_add(struct call *c)
{
	static const struct param pos[] = { { "worker id", "id", P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--name", "name", P_STRING, true },
		{ "--team", "team", P_TEAMS, false },
		{ "--phone", "phone", P_STRING, false },
		{ "--webhook", "webhook", P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

/* The milliseconds of a P_TIME argument already checked by put_param. */
static bool time_arg(const struct call *c, const char *key, int64_t *ms)
{
	const char *s = json_string_value(json_object_get(c->args, key));
	return s && tc_time_parse(s, ms) == 0;
}

static int build_shift_add(struct call *c)
{
	static const struct param pos[] = { { "worker id", "worker", P_ID, true }, { 0 } };
	static const struct param opt[] = {
		{ "--always", "always", P_FLAG, false },
		{ "--weekly", "days", P_WEEKLY, false },
		{ "--from", "from", P_TIME, false },
		{ "--to", "to", P_TIME, false },
		{ 0 },
	};
	int rc = parse_params(c, pos, opt);
	if (rc != PARSE_OK)
		return rc;
	bool always = json_object_get(c->args, "always"), weekly = json_object_get(c->args, "days");
	int64_t from, to;
	bool has_from = time_arg(c, "from", &from), has_to = time_arg(c, "to", &to);
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
	static const struct param opt[] = { { "--at", "at", P_TIME, false }, { 0 } };
	return parse_params(c, NULL, opt);
}

static int build_shift_remove(struct call *c)
{
	static const struct param pos[] = { { "shift id", "id", P_SERIAL, true }, { 0 } };
	return parse_params(c, pos, NULL);
}

static int build_oncall(struct call *c)
{
	static const struct param opt[] = {
		{ "--at", "at", P_TIME, false },
		{ "--team", "team", P_ID, false },
		{ 0 },
	};
	return parse_params(c, NULL, opt);
}

static int build_alarm_ack(struct call *c)
{
	static const struct param pos[] = { { "alarm id", "id", P_SERIAL, true }, { 0 } };
	static const struct param opt[] = { { "--as", "as", P_ID, true }, { 0 } };
	return parse_params(c, pos, opt);
}

static int build_alarm_resolve(struct call *c)
{
	static const struct param pos[] = { { "alarm id", "id", P_SERIAL, true }, { 0 } };
	static const struct param opt[] = {
		{ "--as", "as", P_ID, true },
		{ "--outcome", "outcome", P_STRING, true },  /* [outcomes] is the daemon's */
		{ "--note", "note", P_STRING, false },
		{ 0 },
	};
	return parse_params(c, pos, opt);
}

static int build_alarm_note(struct call *c)
{
	static const struct param pos[] = { { "alarm id", "id", P_SERIAL, true }, { 0 } };
	static const struct param opt[] = {
		{ "--as", "as", P_ID, true },
		{ "--note", "note", P_STRING, true },
		{ 0 },
	};
	int rc = parse_params(c, pos, opt);
	if (rc == PARSE_OK && !json_string_length(json_object_get(c->args, "note")))
		return usage_error("--note needs some text");
	return rc;
}

static int build_report(struct call *c)
{
	static const struct param opt[] = {
		{ "--from", "from", P_TIME, false },
		{ "--to", "to", P_TIME, false },
		{ 0 },
	};
	int rc = parse_params(c, NULL, opt);
	int64_t from, to;
	if (rc == PARSE_OK && time_arg(c, "from", &from) && time_arg(c, "to", &to) && to <= from)
		return usage_error("--to must be after --from");
	return rc;
}

static int build_events(struct call *c)
{
	static const struct param opt[] = {
		{ "--device", "device", P_ID, false },
		{ "--limit", "limit", P_LIMIT, false },
		{ "--follow", "follow", P_FLAG, false },
		{ 0 },
	};
	int rc = parse_params(c, NULL, opt);
	if (rc == PARSE_OK && json_object_get(c->args, "follow")) {
		c->follow = true;
		c->timeout_ms = -1;   /* a quiet system sends nothing for hours */
	}
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Text output. Strings from the daemon may come from devices: control bytes
 * (C0, DEL and the C1 range as UTF-8) become '?' so nothing can drive the
 * terminal. */

static void put_clean(FILE *f, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];
		if (b < 0x20 || b == 0x7f) {
			fputc('?', f);
		} else if (b == 0xc2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
		           (unsigned char)s[i + 1] <= 0x9f) {
			fputc('?', f);   /* U+0080..U+009F: 8-bit CSI and friends */
			i++;
		} else {
			fputc(b, f);
		}
	}
}

/* A value as display text (malloc'd, cleaned): null and absent are "-". */
static char *text_of(const json_t *v)
{
	char *out = NULL, *raw = NULL;
	size_t outlen = 0, rawlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return strdup("?");
	switch (json_typeof(v ? v : json_null())) {
	case JSON_STRING:
		put_clean(f, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL:
		fprintf(f, "%.10g", json_real_value(v));
		break;
	case JSON_TRUE:
		fputs("yes", f);
		break;
	case JSON_FALSE:
		fputs("no", f);
		break;
	case JSON_NULL:
		fputs("-", f);
		break;
	default:   /* objects and arrays where text was expected: show them compactly */
		raw = json_dumps(v, JSON_COMPACT);
		rawlen = raw ? strlen(raw) : 0;
		put_clean(f, raw ? raw : "?", raw ? rawlen : 1);
		free(raw);
		break;
	}
	fclose(f);
	return out;
}

static void put_value(FILE *f, const json_t *v)
{
	char *t = text_of(v);
	fputs(t, f);
	free(t);
}

/* Display width in columns, counting UTF-8 code points (good enough for the
 * names and addresses this prints; wide CJK glyphs will misalign a little). */
static size_t text_width(const char *s)
{
	size_t w = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

/* s in exactly width columns: padded with blanks, or cut to width - 1 code
 * points and an ellipsis when longer. */
static void put_cell(FILE *f, const char *s, size_t width)
{
	size_t w = text_width(s);
	if (w > width) {
		size_t keep = width ? width - 1 : 0, n = 0;
		const char *p = s;
		for (; *p; p++) {
			if (((unsigned char)*p & 0xc0) != 0x80 && n++ == keep)
				break;
		}
		fwrite(s, 1, (size_t)(p - s), f);
		if (width)
			fputs("\u2026", f);
		return;
	}
	fputs(s, f);
	for (; w < width; w++)
		fputc(' ', f);
}

/* "label:     value" lines of a show block */
static void kv(const char *label, const json_t *v)
{
	printf("%-13s ", label);
	put_value(stdout, v);
	putchar('\n');
}

/* The strings of a JSON array joined by sep, or "-" when empty or absent. */
static char *join_array(const json_t *arr, const char *sep)
{
	char *out = NULL;
	size_t outlen = 0, i;
	const json_t *v;
	FILE *f = open_memstream(&out, &outlen);
	if (!f)
		return strdup("?");
	json_array_foreach(arr, i, v) {
		if (i)
			fputs(sep, f);
		put_value(f, v);
	}
	if (!json_array_size(arr))
		fputs("-", f);
	fclose(f);
	return out;
}

/* Tables. Every table follows one rule: a column is as wide as its widest
 * cell, at most COL_MAX (the longest SPEC 1 id, so ids are never cut; longer
 * free text is cut with an ellipsis), and COL_GAP blanks separate columns.
 * The last column is neither padded nor cut, and a row ends where its
 * remaining cells are empty, so no line carries trailing blanks. */
#define COL_MAX 64
#define COL_GAP 2

static void print_row(char *const *cells, const size_t *width, size_t ncols, const char *indent)
{
	fputs(indent, stdout);
	for (size_t col = 0; col < ncols; col++) {
		if (col + 1 == ncols) {
			fputs(cells[col], stdout);
			break;
		}
		bool rest_empty = true;
		for (size_t k = col + 1; k < ncols; k++)
			rest_empty = rest_empty && !cells[k][0];
		if (rest_empty) {
			if (text_width(cells[col]) > width[col])
				put_cell(stdout, cells[col], width[col]);
			else
				fputs(cells[col], stdout);
			break;
		}
		put_cell(stdout, cells[col], width[col]);
		for (int g = 0; g < COL_GAP; g++)
			putchar(' ');
	}
	putchar('\n');
}

/* Aligned tables: cells are owned, cleaned strings, the first row the
 * headers. */
struct table {
	size_t ncols, ncells, cap;
	char **cells;
};

static void table_add(struct table *t, char *cell)
{
	if (t->ncells == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->cells = realloc(t->cells, t->cap * sizeof(*t->cells));
		if (!t->cells)
			abort();   /* out of memory while printing: nothing sensible left */
	}
	t->cells[t->ncells++] = cell ? cell : strdup("?");
}

static void table_init(struct table *t, const char *const *headers)
{
	memset(t, 0, sizeof(*t));
	while (headers[t->ncols])
		t->ncols++;
	for (size_t i = 0; i < t->ncols; i++)
		table_add(t, strdup(headers[i]));
}

static void table_add_value(struct table *t, const json_t *v)
{
	table_add(t, text_of(v));
}

/* Widen width[] (ncols entries) to the cells of t, within COL_MAX. */
static void table_widths(const struct table *t, size_t *width)
{
	for (size_t i = 0; i < t->ncells; i++) {
		size_t w = text_width(t->cells[i]);
		if (w > COL_MAX)
			w = COL_MAX;
		if (w > width[i % t->ncols])
			width[i % t->ncols] = w;
	}
}

/* Print the rows of t with the given widths (NULL: sized to the cells) and
 * free it. */
static void table_print_with(struct table *t, const char *indent, const size_t *given)
{
	size_t *width = calloc(t->ncols, sizeof(*width));
	if (!width)
		abort();
	if (given)
		memcpy(width, given, t->ncols * sizeof(*width));
	else
		table_widths(t, width);
	for (size_t i = 0; i + t->ncols <= t->ncells; i += t->ncols)
		print_row(t->cells + i, width, t->ncols, indent);
	for (size_t i = 0; i < t->ncells; i++)
		free(t->cells[i]);
	free(t->cells);
	free(width);
}

static void table_print(struct table *t, const char *indent)
{
	table_print_with(t, indent, NULL);
}

/* Events: SEQ RECEIVED DEVICE TYPE ALARM "EVENT ID" DETAIL. */
#define EVENT_COLS 7
static const char *const event_headers[EVENT_COLS + 1] = {
	"SEQ", "RECEIVED", "DEVICE", "TYPE", "ALARM", "EVENT ID", "DETAIL", NULL
};

/* DETAIL: what a dispatcher wants at a glance, only what is present. */
static char *event_detail(const json_t *ev)
{
	const json_t *pl = json_object_get(ev, "payload");
	const json_t *v;
	char *detail = NULL;
	size_t dlen = 0;
	FILE *d = open_memstream(&detail, &dlen);
	if (!d)
		return strdup("?");
	if (json_is_false(json_object_get(ev, "known")))
		fputs(" unknown-device", d);
	if (json_is_true(json_object_get(pl, "test")))
		fputs(" test", d);
	if ((v = json_object_get(pl, "battery")) && !json_is_null(v)) {
		fputs(" battery=", d);
		put_value(d, v);
		fputc('%', d);
	}
	if ((v = json_object_get(pl, "rssi")) && !json_is_null(v)) {
		fputs(" rssi=", d);
		put_value(d, v);
	}
	if ((v = json_object_get(pl, "loc")) && json_is_object(v))
		fprintf(d, " loc=%.6f,%.6f", json_number_value(json_object_get(v, "lat")),
		        json_number_value(json_object_get(v, "lon")));
	if ((v = json_object_get(pl, "text")) && json_is_string(v)) {
		fputs(" text=\"", d);
		put_value(d, v);
		fputc('"', d);
	}
	fclose(d);
	if (detail && detail[0] == ' ')
		memmove(detail, detail + 1, strlen(detail));   /* the leading blank */
	return detail;
}

static void table_add_event(struct table *t, const json_t *ev)
{
	static const char *const keys[] = { "seq", "received_at", "device", "type", "alarm", "id" };
	for (size_t i = 0; i < EVENT_COLS - 1; i++)
		table_add_value(t, json_object_get(ev, keys[i]));
	table_add(t, event_detail(ev));
}

static void print_event_list(const json_t *events, const char *indent)
{
	size_t i;
	const json_t *ev;
	struct table t;
	table_init(&t, event_headers);
	json_array_foreach(events, i, ev)
		table_add_event(&t, ev);
	table_print(&t, indent);
}

/* events --follow: the header and the first batch set the widths, at least
 * these (a seq of 7 digits, device and event ids of 20 and 24 characters,
 * ...) so that most of the lines arriving later fit; a longer cell later is
 * cut with an ellipsis rather than shifting the columns. */
static const size_t event_follow_min[EVENT_COLS] = { 7, 24, 20, 12, 5, 24, 0 };

static void print_event_stream_line(const json_t *ev, const size_t *width)
{
	struct table t = { .ncols = EVENT_COLS };
	table_add_event(&t, ev);
	table_print_with(&t, "", width);
}

/* The resident column or line of an alarm: "Name (id)" or "-" for an
 * unknown device. */
static char *resident_label(const json_t *res)
{
	if (!json_is_object(res))
		return strdup("-");
	char *name = text_of(json_object_get(res, "name"));
	char *id = text_of(json_object_get(res, "id"));
	char *out = NULL;
	if (asprintf(&out, "%s (%s)", name, id) < 0)
		out = NULL;
	free(name);
	free(id);
	return out;
}

static void print_alarm_table(const json_t *alarms, const char *indent)
{
	static const char *const h[] = { "ALARM", "STATE", "PRI", "TYPES", "DEVICE", "RESIDENT",
	                                 "OPENED", NULL };
	struct table t;
	size_t i;
	const json_t *a;

	table_init(&t, h);
	json_array_foreach(alarms, i, a) {
		table_add_value(&t, json_object_get(a, "alarm"));
		table_add_value(&t, json_object_get(a, "state"));
		table_add_value(&t, json_object_get(a, "priority"));
		char *types = join_array(json_object_get(a, "types"), ",");
		if (json_is_true(json_object_get(a, "test"))) {
			char *tagged = NULL;
			if (asprintf(&tagged, "%s [test]", types) >= 0) {
				free(types);
				types = tagged;
			}
		}
		table_add(&t, types);
		table_add_value(&t, json_object_get(a, "device"));
		table_add(&t, resident_label(json_object_get(a, "resident")));
		table_add_value(&t, json_object_get(a, "opened_at"));
	}
	table_print(&t, indent);
}

/* ---------------------------------------------------------------------- */
/* Print functions: the human output of each command */

static void print_status(const struct call *c, const json_t *d)
{
	const json_t *mqtt = json_object_get(d, "mqtt");
	const json_t *store = json_object_get(d, "store");
	const json_t *n = json_object_get(d, "counts");
	char up[64];
	(void)c;

	tc_duration_format((int64_t)(json_number_value(json_object_get(d, "uptime_s")) * 1000), up,
	                   sizeof(up));
	fputs("telecared ", stdout);
	put_value(stdout, json_object_get(d, "version"));
	fputs(", pid ", stdout);
	put_value(stdout, json_object_get(d, "pid"));
	printf(", up %s since ", up);
	put_value(stdout, json_object_get(d, "started_at"));

	fputs("\nmqtt:     ", stdout);
	fputs(json_is_true(json_object_get(mqtt, "connected")) ? "connected to " : "NOT connected to ",
	      stdout);
	put_value(stdout, json_object_get(mqtt, "host"));
	putchar(':');
	put_value(stdout, json_object_get(mqtt, "port"));
	fputs(" as ", stdout);
	put_value(stdout, json_object_get(mqtt, "client_id"));

	fputs("\nstore:    ", stdout);
	put_value(stdout, json_object_get(store, "path"));
	if (json_is_true(json_object_get(store, "ok"))) {
		fputs(": ok", stdout);
	} else {
		fputs(": FAILING (", stdout);
		put_value(stdout, json_object_get(store, "error"));
		putchar(')');
	}
	fputs(", pending ", stdout);
	put_value(stdout, json_object_get(store, "pending"));

	fputs("\nalarms:   ", stdout);
	put_value(stdout, json_object_get(n, "alarms_open"));
	fputs(" open\nregistry: ", stdout);
	put_value(stdout, json_object_get(n, "devices"));
	fputs(" devices, ", stdout);
	put_value(stdout, json_object_get(n, "residents"));
	fputs(" residents", stdout);
	fputs("\nevents:   ", stdout);
	put_value(stdout, json_object_get(n, "events_received"));
	fputs(" received, ", stdout);
	put_value(stdout, json_object_get(n, "events_stored"));
	fputs(" stored, ", stdout);
	put_value(stdout, json_object_get(n, "events_duplicate"));
	fputs(" duplicate, ", stdout);
	put_value(stdout, json_object_get(n, "events_rejected"));
	puts(" rejected");
}

/* remove: the answer is null; confirm what was removed */
static void print_removed(const struct call *c, const json_t *d)
{
	(void)d;
	printf("%s ", c->cmd->group);
	put_value(stdout, json_object_get(c->args, "id"));
	puts(" removed");
}


/* A list answer as a table: a column per key, or `empty` for none. */
static void print_rows(const json_t *d, const char *empty, const char *const *heads,
                       const char *const *keys)
{
	struct table t;
	size_t i;
	const json_t *row;

	if (!json_array_size(d)) {
		puts(empty);
		return;
	}
	table_init(&t, heads);
	json_array_foreach(d, i, row)
		for (size_t k = 0; keys[k]; k++)
			table_add_value(&t, json_object_get(row, keys[k]));
	table_print(&t, "");
}

static void print_resident_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "NAME", "TEAM", "PHONE", "ADDRESS", NULL };
	static const char *const k[] = { "id", "name", "team", "phone", "address", NULL };
	(void)c;
	print_rows(d, "no residents", h, k);
}

static void print_device_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "RESIDENT", "KIND", "HEARTBEAT", "LAST SEEN",
	                                 "BATTERY", "RSSI", "TEST", NULL };
	static const char *const k[] = { "id", "resident", "kind", "heartbeat", "last_seen",
	                                 "battery", "rssi", "test", NULL };
	(void)c;
	print_rows(d, "no devices", h, k);
}

static void print_device_unknown(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "DEVICE", "EVENTS", "FIRST SEEN", "LAST SEEN", "LAST TYPE",
	                                 NULL };
	static const char *const k[] = { "device", "events", "first_seen", "last_seen", "last_type",
	                                 NULL };
	(void)c;
	print_rows(d, "no unknown devices", h, k);
}

static void print_device_unmapped(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "SOURCE", "ADDRESS", "MESSAGES", "LAST SEEN", "REASON",
	                                 "LAST PAYLOAD", NULL };
	static const char *const k[] = { "source", "address", "messages", "last_seen", "reason",
	                                 "last_payload", NULL };
	(void)c;
	print_rows(d, "no unmapped source messages", h, k);
}

/* resident show, and resident add (which answers the resident alone) */
static void print_resident(const struct call *c, const json_t *d)
{
	const json_t *v;
	(void)c;

	kv("id:", json_object_get(d, "id"));
	kv("name:", json_object_get(d, "name"));
	kv("address:", json_object_get(d, "address"));
	kv("phone:", json_object_get(d, "phone"));
	kv("team:", json_object_get(d, "team"));
	kv("notes:", json_object_get(d, "notes"));
	kv("created:", json_object_get(d, "created_at"));
	if ((v = json_object_get(d, "devices"))) {
		char *ids = join_array(v, ", ");
		printf("%-13s %s\n", "devices:", ids);
		free(ids);
	}
	if ((v = json_object_get(d, "alarms"))) {
		if (!json_array_size(v)) {
			printf("%-13s none\n", "open alarms:");
		} else {
			puts("open alarms:");
			print_alarm_table(v, "  ");
		}
	}
}


/* device show, and device add */
static void print_device(const struct call *c, const json_t *d)
{
	const json_t *ev;
	(void)c;

	kv("id:", json_object_get(d, "id"));
	kv("resident:", json_object_get(d, "resident"));
	kv("kind:", json_object_get(d, "kind"));
	kv("source:", json_object_get(d, "source"));
	kv("address:", json_object_get(d, "address"));
	kv("heartbeat:", json_object_get(d, "heartbeat"));
	kv("supervision:", json_object_get(d, "supervision"));
	kv("test:", json_object_get(d, "test"));
	kv("created:", json_object_get(d, "created_at"));
	kv("last seen:", json_object_get(d, "last_seen"));
	kv("battery:", json_object_get(d, "battery"));
	kv("rssi:", json_object_get(d, "rssi"));
	if ((ev = json_object_get(d, "events"))) {
		if (!json_array_size(ev)) {
			printf("%-13s none\n", "last events:");
		} else {
			puts("last events:");
			print_event_list(ev, "  ");
		}
	}
}

static void print_device_import(const struct call *c, const json_t *d)
{
	const json_t *n = json_object_get(d, "added");
	(void)c;
	fputs("imported ", stdout);
	put_value(stdout, n);
	puts(json_integer_value(n) == 1 ? " device" : " devices");
}

/* One stage of device test: "AT  STAGE     DETAIL". */
static void print_test_stage(const json_t *st)
{
	const char *stage = json_string_value(json_object_get(st, "stage"));
	const json_t *detail = json_object_get(st, "detail"), *alarm = json_object_get(st, "alarm");

	put_value(stdout, json_object_get(st, "at"));
	fputs("  ", stdout);
	if (!stage) {
		fputs("?", stdout);
	} else if (strcmp(stage, "waiting") == 0) {
		fputs("waiting   ", stdout);
		put_value(stdout, json_object_get(st, "device"));
		fputs(": press the button (or trigger the sensor) now", stdout);
	} else if (strcmp(stage, "stored") == 0 && json_is_integer(alarm)) {
		fputs("stored    alarm ", stdout);
		put_value(stdout, alarm);
	} else {
		const char *label = strcmp(stage, "receipt_sent") == 0 ? "receipt sent" : NULL;
		char *text = label ? NULL : text_of(json_object_get(st, "stage"));
		label = label ? label : text;
		if (json_is_null(detail ? detail : json_null())) {
			fputs(label, stdout);
		} else {
			printf("%-9s ", label);
			put_value(stdout, detail);
		}
		free(text);
	}
	putchar('\n');
}

/* device test: the first answer, "waiting" */
static void print_device_test(const struct call *c, const json_t *d)
{
	(void)c;
	print_test_stage(d);
}



static void print_alarm_list(const struct call *c, const json_t *d)
{
	if (!json_array_size(d)) {
		puts(json_object_get(c->args, "open") ? "no open alarms" : "no alarms");
		return;
	}
	print_alarm_table(d, "");
}

static void print_alarm(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "AT", "WHAT", "ACTOR", "DETAIL", NULL };
	const json_t *res = json_object_get(d, "resident");
	const json_t *loc = json_object_get(d, "loc");
	const json_t *tl = json_object_get(d, "timeline");
	const json_t *ev = json_object_get(d, "events");
	char *s;
	(void)c;

	kv("alarm:", json_object_get(d, "alarm"));
	kv("state:", json_object_get(d, "state"));
	kv("priority:", json_object_get(d, "priority"));
	s = join_array(json_object_get(d, "types"), ", ");
	printf("%-13s %s\n", "types:", s);
	free(s);
	kv("device:", json_object_get(d, "device"));
	kv("test:", json_object_get(d, "test"));
	kv("level:", json_object_get(d, "level"));
	kv("policy:", json_object_get(d, "policy"));
	kv("opened:", json_object_get(d, "opened_at"));
	if (json_is_object(loc)) {
		printf("%-13s %.6f, %.6f", "location:", json_number_value(json_object_get(loc, "lat")),
		       json_number_value(json_object_get(loc, "lon")));
		if (json_is_number(json_object_get(loc, "acc")))
			printf(" (within %.0f m)", json_number_value(json_object_get(loc, "acc")));
		putchar('\n');
	}
	kv("acked by:", json_object_get(d, "acked_by"));
	kv("acked at:", json_object_get(d, "acked_at"));
	kv("resolved at:", json_object_get(d, "resolved_at"));
	kv("outcome:", json_object_get(d, "outcome"));
	s = resident_label(res);
	printf("%-13s %s\n", "resident:", s ? s : "?");
	free(s);
	if (json_is_object(res)) {
		kv("address:", json_object_get(res, "address"));
		kv("phone:", json_object_get(res, "phone"));
		kv("team:", json_object_get(res, "team"));
		kv("notes:", json_object_get(res, "notes"));
	}
	if (tl) {
		size_t i;
		const json_t *e;
		struct table t;
		puts("timeline:");
		table_init(&t, h);
		json_array_foreach(tl, i, e) {
			table_add_value(&t, json_object_get(e, "at"));
			table_add_value(&t, json_object_get(e, "what"));
			table_add_value(&t, json_object_get(e, "actor"));
			table_add_value(&t, json_object_get(e, "detail"));
		}
		table_print(&t, "  ");
	}
	if (json_array_size(ev)) {
		puts("events:");
		print_event_list(ev, "  ");
	}
}

/* The WHEN of a shift: "mon,tue,wed 22:00-06:00", "always" or
 * "FROM → TO" (malloc'd, cleaned). */
static char *shift_when(const json_t *sh)
{
	const char *kind = json_string_value(json_object_get(sh, "kind"));
	char *out = NULL, *a, *b;
	if (kind && strcmp(kind, "always") == 0)
		return strdup("always");
	if (kind && strcmp(kind, "weekly") == 0) {
		a = join_array(json_object_get(sh, "days"), ",");
		b = text_of(json_object_get(sh, "hours"));
	} else if (kind && strcmp(kind, "once") == 0) {
		a = text_of(json_object_get(sh, "from"));
		b = text_of(json_object_get(sh, "to"));
		if (asprintf(&out, "%s \u2192 %s", a, b) < 0)
			out = NULL;
		free(a);
		free(b);
		return out;
	} else {
		return strdup("?");   /* a kind from a newer daemon */
	}
	if (asprintf(&out, "%s %s", a, b) < 0)
		out = NULL;
	free(a);
	free(b);
	return out;
}

static void print_shift_table(const json_t *shifts, const char *indent, bool with_worker)
{
	static const char *const hw[] = { "ID", "WORKER", "KIND", "WHEN", NULL };
	static const char *const h[] = { "ID", "KIND", "WHEN", NULL };
	struct table t;
	size_t i;
	const json_t *sh;

	table_init(&t, with_worker ? hw : h);
	json_array_foreach(shifts, i, sh) {
		table_add_value(&t, json_object_get(sh, "id"));
		if (with_worker)
			table_add_value(&t, json_object_get(sh, "worker"));
		table_add_value(&t, json_object_get(sh, "kind"));
		table_add(&t, shift_when(sh));
	}
	table_print(&t, indent);
}

/* worker show, and worker add */
static void print_worker(const struct call *c, const json_t *d)
{
	const json_t *v;
	char *s;
	(void)c;

	kv("id:", json_object_get(d, "id"));
	kv("name:", json_object_get(d, "name"));
	s = join_array(json_object_get(d, "teams"), ", ");
	printf("%-13s %s\n", "teams:", s);
	free(s);
	kv("phone:", json_object_get(d, "phone"));
	kv("webhook:", json_object_get(d, "webhook"));
	kv("created:", json_object_get(d, "created_at"));
	if ((v = json_object_get(d, "on_duty")))
		kv("on duty now:", v);
	if ((v = json_object_get(d, "shifts"))) {
		if (!json_array_size(v)) {
			printf("%-13s none\n", "shifts:");
		} else {
			puts("shifts:");
			print_shift_table(v, "  ", false);
		}
	}
}

static void print_worker_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "NAME", "TEAMS", "PHONE", "WEBHOOK", NULL };
	struct table t;
	size_t i;
	const json_t *w;
	(void)c;

	if (!json_array_size(d)) {
		puts("no workers");
		return;
	}
	table_init(&t, h);
	json_array_foreach(d, i, w) {
		table_add_value(&t, json_object_get(w, "id"));
		table_add_value(&t, json_object_get(w, "name"));
		table_add(&t, join_array(json_object_get(w, "teams"), ","));
		table_add_value(&t, json_object_get(w, "phone"));
		table_add_value(&t, json_object_get(w, "webhook"));
	}
	table_print(&t, "");
}

/* shift add: the new shift */
static void print_shift(const struct call *c, const json_t *d)
{
	char *s = shift_when(d);
	(void)c;
	kv("shift:", json_object_get(d, "id"));
	kv("worker:", json_object_get(d, "worker"));
	kv("kind:", json_object_get(d, "kind"));
	printf("%-13s %s\n", "when:", s ? s : "?");
	free(s);
}

static void print_shift_list(const struct call *c, const json_t *d)
{
	const json_t *at = json_object_get(c->args, "at");
	if (!json_array_size(d)) {
		if (at) {
			fputs("no shifts at ", stdout);
			put_value(stdout, at);
			putchar('\n');
		} else {
			puts("no shifts");
		}
		return;
	}
	print_shift_table(d, "", true);
}

static void print_oncall(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "NAME", "TEAMS", "PHONE", "SHIFT", NULL };
	const json_t *team = json_object_get(c->args, "team"), *at = json_object_get(c->args, "at");
	struct table t;
	size_t i, j;
	const json_t *w, *sh;

	if (!json_array_size(d)) {
		fputs("nobody on duty", stdout);
		if (team) {
			fputs(" in team ", stdout);
			put_value(stdout, team);
		}
		if (at) {
			fputs(" at ", stdout);
			put_value(stdout, at);
		}
		putchar('\n');
		return;
	}
	table_init(&t, h);
	json_array_foreach(d, i, w) {
		table_add_value(&t, json_object_get(w, "id"));
		table_add_value(&t, json_object_get(w, "name"));
		table_add(&t, join_array(json_object_get(w, "teams"), ","));
		table_add_value(&t, json_object_get(w, "phone"));
		/* the shifts that put the worker on duty; usually one */
		char *out = NULL;
		size_t outlen = 0;
		FILE *f = open_memstream(&out, &outlen);
		if (f) {
			json_array_foreach(json_object_get(w, "shifts"), j, sh) {
				char *when = shift_when(sh);
				fprintf(f, "%s#", j ? "; " : "");
				put_value(f, json_object_get(sh, "id"));
				fprintf(f, " %s", when ? when : "?");
				free(when);
			}
			if (!json_array_size(json_object_get(w, "shifts")))
				fputs("-", f);
			fclose(f);
		}
		table_add(&t, out);
	}
	table_print(&t, "");
}

/* alarm ack / resolve / note: what happened, then the alarm as it is now */
static void print_alarm_action(const struct call *c, const json_t *d)
{
	const char *wire = c->cmd->wire;
	fputs("alarm ", stdout);
	put_value(stdout, json_object_get(c->args, "id"));
	if (strcmp(wire, "alarm.ack") == 0) {
		fputs(" acknowledged by ", stdout);
	} else if (strcmp(wire, "alarm.resolve") == 0) {
		fputs(" resolved (", stdout);
		put_value(stdout, json_object_get(c->args, "outcome"));
		fputs(") by ", stdout);
	} else {
		fputs(": note added by ", stdout);
	}
	put_value(stdout, json_object_get(c->args, "as"));
	puts("\n");
	print_alarm(c, d);
}

/* A share 0-1 as "87.5%", seconds as "12.3s"; null and absent are "-". */
static char *percent_of(const json_t *v)
{
	char *out = NULL;
	if (!json_is_number(v) || asprintf(&out, "%.1f%%", json_number_value(v) * 100.0) < 0)
		return strdup("-");
	return out;
}

static char *seconds_of(const json_t *v)
{
	char *out = NULL;
	if (!json_is_number(v) || asprintf(&out, "%.1fs", json_number_value(v)) < 0)
		return strdup("-");
	return out;
}

static void print_report(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "PRIORITY", "ALARMS", "ACKED", "\u226460s", "\u2264180s",
	                                 "MEDIAN", "P90", NULL };
	const json_t *rows = json_object_get(d, "priorities"), *r;
	struct table t;
	size_t i;
	(void)c;

	fputs("alarms opened from ", stdout);
	put_value(stdout, json_object_get(d, "from"));
	fputs(" to ", stdout);
	put_value(stdout, json_object_get(d, "to"));
	puts(" (test alarms not counted)");
	if (!json_array_size(rows)) {
		puts("no alarms");
		return;
	}
	table_init(&t, h);
	json_array_foreach(rows, i, r) {
		table_add_value(&t, json_object_get(r, "priority"));
		table_add_value(&t, json_object_get(r, "alarms"));
		table_add_value(&t, json_object_get(r, "acknowledged"));
		table_add(&t, percent_of(json_object_get(r, "within_60s")));
		table_add(&t, percent_of(json_object_get(r, "within_180s")));
		table_add(&t, seconds_of(json_object_get(r, "median_ack_s")));
		table_add(&t, seconds_of(json_object_get(r, "p90_ack_s")));
	}
	table_print(&t, "");
}

static void print_events(const struct call *c, const json_t *d)
{
	size_t i;
	const json_t *ev;
	struct table t;

	if (!c->follow) {
		if (!json_array_size(d))
			puts("no events");
		else
			print_event_list(d, "");
		return;
	}
	/* With --follow the header comes even for an empty batch, and the lines
	 * that arrive later keep its widths so they line up under it. */
	table_init(&t, event_headers);
	json_array_foreach(d, i, ev)
		table_add_event(&t, ev);
	memcpy(c->ev_width, event_follow_min, sizeof(event_follow_min));
	table_widths(&t, c->ev_width);
	c->ev_width[EVENT_COLS - 1] = 0;   /* the last column is never padded */
	table_print_with(&t, "", c->ev_width);
}

/* ---------------------------------------------------------------------- */
/* The table of commands. Order is the order of --help. */

static int print_json(const json_t *v, size_t flags);

/* backup FILE: the request is `status`, which says where the database is. */
static int build_backup(struct call *c)
{
	static const struct param pos[] = { { "backup file", NULL, P_PATH, true }, { 0 } };
	int rc = parse_params(c, pos, NULL);
	if (rc != PARSE_OK)
		return rc;
	if (access(c->path, F_OK) == 0) {
		fputs(PROG ": ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fputs(" exists; a backup never overwrites a file\n", stderr);
		return PARSE_USAGE;
	}
	c->backup = true;
	return PARSE_OK;
}

static void print_backup(const struct call *c, const json_t *d)
{
	(void)c;
	(void)d;   /* do_backup() prints */
}

/* SQLite's online backup API over a read-only connection: one read
 * transaction, so the copy is one consistent moment of the live database
 * while telecared goes on writing (WAL readers do not block the writer). */
static int do_backup(const struct options *o, const struct call *c, const json_t *status)
{
	const char *src_path = json_string_value(json_object_get(json_object_get(status, "store"), "path"));
	sqlite3 *src = NULL, *dst = NULL;
	int rc = TC_EXIT_REFUSED, pages = 0;
	struct timespec t0, t1;
	char integrity[64] = "";

	if (!src_path) {
		fputs(PROG ": telecared did not say where its database is\n", stderr);
		return TC_EXIT_REFUSED;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_open_v2(c->path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
		fprintf(stderr, PROG ": backup: %s\n", sqlite3_errmsg(dst ? dst : src));
		goto out;
	}
	sqlite3_busy_timeout(src, 5000);
	sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
	if (!b) {
		fprintf(stderr, PROG ": backup: %s\n", sqlite3_errmsg(dst));
		goto out;
	}
	int step = sqlite3_backup_step(b, -1);   /* all pages, one snapshot */
	pages = sqlite3_backup_pagecount(b);
	sqlite3_backup_finish(b);
	if (step != SQLITE_DONE) {
		fprintf(stderr, PROG ": backup of %s failed: %s\n", src_path, sqlite3_errstr(step));
		goto out;
	}
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			snprintf(integrity, sizeof(integrity), "%s", sqlite3_column_text(st, 0));
		sqlite3_finalize(st);
	}
	if (strcmp(integrity, "ok")) {
		fprintf(stderr, PROG ": the copy failed its integrity check: %s\n", integrity);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	struct stat sb;
	long long size = stat(c->path, &sb) == 0 ? (long long)sb.st_size : -1;
	if (o->json) {
		json_t *j = json_pack("{s:s, s:s, s:i, s:I, s:f, s:s}", "database", src_path, "file",
		                      c->path, "pages", pages, "bytes", (json_int_t)size, "seconds", secs,
		                      "integrity", integrity);
		print_json(j, JSON_INDENT(2));
		json_decref(j);
	} else {
		printf("backup of %s written to ", src_path);
		put_clean(stdout, c->path, strlen(c->path));
		printf(" (%d pages, %lld bytes) in %.2f s; integrity check ok\n", pages, size, secs);
	}
	rc = TC_EXIT_OK;
out:
	sqlite3_close(src);
	sqlite3_close(dst);
	if (rc != TC_EXIT_OK)
		unlink(c->path);   /* no half copy that looks like a backup */
	return rc;
}

static const struct command commands[] = {
	{ "status", NULL, "status", "status", build_none, print_status },
	{ "resident", "add", "resident.add",
	  "resident add ID --name NAME [--address A] [--phone P] [--team T] [--notes N]",
	  build_resident_add, print_resident },
	{ "resident", "list", "resident.list", "resident list", build_none, print_resident_list },
	{ "resident", "show", "resident.show", "resident show ID", build_by_id, print_resident },
	{ "resident", "remove", "resident.remove", "resident remove ID", build_by_id, print_removed },
	{ "device", "add", "device.add",
	  "device add ID --resident RID [--kind KIND] [--heartbeat DURATION] "
	  "[--source NAME --address ADDR]",
	  build_device_add, print_device },
	{ "device", "list", "device.list", "device list", build_none, print_device_list },
	{ "device", "show", "device.show", "device show ID", build_by_id, print_device },
	{ "device", "remove", "device.remove", "device remove ID", build_by_id, print_removed },
	{ "device", "unknown", "device.unknown", "device unknown", build_none, print_device_unknown },
	{ "device", "unmapped", "source.unmapped", "device unmapped", build_none,
	  print_device_unmapped },
	{ "device", "test", "device.test", "device test ID [--timeout DURATION]", build_device_test,
	  print_device_test },
	{ "device", "import", "device.import", "device import FILE.csv", build_device_import,
	  print_device_import },
	{ "device", "adopt", "device.adopt",
	  "device adopt ID --resident RID [--kind KIND] [--heartbeat DURATION] "
	  "[--source NAME --address ADDR]",
	  build_device_adopt, print_device },
	{ "worker", "add", "worker.add",
	  "worker add ID --name NAME [--team T] [--phone P] [--webhook URL]",
	  build_worker_add, print_worker },
	{ "worker", "list", "worker.list", "worker list", build_none, print_worker_list },
	{ "worker", "show", "worker.show", "worker show ID", build_by_id, print_worker },
	{ "worker", "remove", "worker.remove", "worker remove ID", build_by_id, print_removed },
	{ "shift", "add", "shift.add",
	  "shift add WORKER (--always | --weekly DAYS HH:MM-HH:MM | --from TIME --to TIME)",
	  build_shift_add, print_shift },
	{ "shift", "list", "shift.list", "shift list [--at TIME]", build_shift_list,
	  print_shift_list },
	{ "shift", "remove", "shift.remove", "shift remove SHIFT_ID", build_shift_remove,
	  print_removed },
	{ "oncall", NULL, "oncall", "oncall [--at TIME] [--team T]", build_oncall, print_oncall },
	{ "alarm", "list", "alarm.list", "alarm list [--open]", build_alarm_list, print_alarm_list },
	{ "alarm", "show", "alarm.show", "alarm show ID", build_alarm_show, print_alarm },
	{ "alarm", "ack", "alarm.ack", "alarm ack ID --as WORKER", build_alarm_ack,
	  print_alarm_action },
	{ "alarm", "resolve", "alarm.resolve",
	  "alarm resolve ID --as WORKER --outcome OUTCOME [--note TEXT]", build_alarm_resolve,
	  print_alarm_action },
	{ "alarm", "note", "alarm.note", "alarm note ID --as WORKER --note TEXT", build_alarm_note,
	  print_alarm_action },
	{ "events", NULL, "events", "events [--device ID] [--limit N] [--follow]", build_events,
	  print_events },
	{ "report", NULL, "report", "report [--from TIME] [--to TIME]", build_report, print_report },
	{ "backup", NULL, "status", "backup FILE", build_backup, print_backup },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void print_usage(FILE *f)
{
	fputs("usage: " PROG " [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fputs("\noptions (before the command):\n"
	      "  --socket PATH  control socket (default: $" TC_SOCKET_ENV ", else "
	      TELECARE_SOCKET_PATH ")\n"
	      "  --json         print the daemon's answer as JSON (events --follow, device test:\n"
	      "                 one object per line)\n"
	      "  --help, -h     this text (COMMAND --help: that command's usage)\n"
	      "  --version      print the version\n\n"
	      "Durations: 500ms, 30s, 15m, 1h, 1d. Times: RFC 3339, e.g. 2026-11-22T10:15:00Z.\n"
	      "Worker teams: --team north,night. Shift days: mon-fri, sat,sun, daily, weekdays,\n"
	      "weekends; hours 22:00-06:00 run past midnight, in telecared's time zone.\n"
	      "Put -- before an id that starts with '-'.\n\n"
	      "device test puts the device on test and waits (default 2m) for its next alarm,\n"
	      "printing each stage: received, stored, receipt sent, alerted (the installer;\n"
	      "on-duty workers are not alerted). Exit 0 only when all of them came.\n"
	      "device import reads a CSV file whose first row names the columns: id and\n"
	      "resident, optionally kind, heartbeat, source, address, in any order, e.g.\n"
	      "  id,resident,kind,heartbeat\n"
	      "  pendant-1,r-17,pendant,15m\n"
	      "Blank lines and lines starting with # are skipped; quote fields with \"...\".\n"
	      "All or nothing: a bad line (named FILE:LINE) imports no device at all.\n"
	      "device adopt registers a device that sent events while unknown, keeping them.\n\n"
	      "Exit status: 0 done, 1 refused by telecared, 2 wrong usage, 3 telecared unreachable.\n",
	      f);
}

/* Find the command named by the first one or two words; *used gets how many
 * words the name took. Prints the usage error itself when there is none. */
static const struct command *find_command(int argc, char **argv, int *used)
{
	bool group_known = false;
	for (size_t i = 0; i < NCOMMANDS; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->group, argv[0]) != 0)
			continue;
		group_known = true;
		if (!c->verb) {
			*used = 1;
			return c;
		}
		if (argc > 1 && strcmp(c->verb, argv[1]) == 0) {
			*used = 2;
			return c;
		}
	}
	if (!group_known) {
		usage_error("unknown command '%s'", argv[0]);
		return NULL;
	}
	/* list the verbs the group has, for the message */
	char verbs[256] = "";
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(commands[i].group, argv[0]) == 0 && commands[i].verb) {
			if (verbs[0])
				strncat(verbs, ", ", sizeof(verbs) - strlen(verbs) - 1);
			strncat(verbs, commands[i].verb, sizeof(verbs) - strlen(verbs) - 1);
		}
	}
	if (argc > 1)
		usage_error("unknown command '%s %s' (%s has: %s)", argv[0], argv[1], argv[0], verbs);
	else
		usage_error("'%s' needs one of: %s", argv[0], verbs);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* The socket */

static int die_unreachable(const char *path, const char *what)
{
	fprintf(stderr, PROG ": cannot reach telecared at %s: %s\n", path, what);
	return TC_EXIT_UNREACHABLE;
}

static int connect_socket(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		/* MSG_NOSIGNAL: a daemon that went away is exit 3, not SIGPIPE */
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Line reader over the socket. Answers can be megabytes (lists of thousands),
 * so the buffer grows; bytes after a line (the first follow events) stay for
 * the next call. */
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
static int read_line(struct reader *r, char **line, size_t *linelen)
{
	for (;;) {
		char *nl = r->len > r->scan ? memchr(r->buf + r->scan, '\n', r->len - r->scan) : NULL;
		if (nl) {
			*line = r->buf + r->start;
			*linelen = (size_t)(nl - *line);
			*nl = '\0';
			r->start = r->scan = (size_t)(nl - r->buf) + 1;
			return RD_LINE;
		}
		r->scan = r->len;
		if (r->start > 0) {   /* the previous line was handed out: reclaim it */
			memmove(r->buf, r->buf + r->start, r->len - r->start);
			r->len -= r->start;
			r->scan -= r->start;
			r->start = 0;
		}
		if (r->cap - r->len < 4096) {
			size_t ncap = r->cap ? r->cap * 2 : 65536;
			char *nbuf = ncap <= ANSWER_MAX ? realloc(r->buf, ncap + 1) : NULL;
			if (!nbuf) {
				errno = EMSGSIZE;
				return RD_ERROR;
			}
			r->buf = nbuf;
			r->cap = ncap;
		}

		struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN },
		                       { .fd = r->sigfd, .events = POLLIN } };
		int n = poll(p, r->sigfd >= 0 ? 2 : 1, r->timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return RD_ERROR;
		}
		if (n == 0) {
			errno = ETIMEDOUT;
			return RD_ERROR;
		}
		if (r->sigfd >= 0 && (p[1].revents & POLLIN))
			return RD_SIGNAL;

		ssize_t got = read(r->fd, r->buf + r->len, r->cap - r->len);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return RD_ERROR;
		}
		if (got == 0) {
			if (r->len > 0) {   /* a last line without its newline: take it */
				r->buf[r->len] = '\0';
				*line = r->buf;
				*linelen = r->len;
				r->start = r->scan = r->len;
				return RD_LINE;
			}
			return RD_EOF;
		}
		r->len += (size_t)got;
	}
}

/* ---------------------------------------------------------------------- */
/* Running a call */

static int print_json(const json_t *v, size_t flags)
{
	/* 15 significant digits: 0.532 and 52.1 print as such, not as the
	 * nearest doubles' 17-digit spellings (0.53200000000000003) */
	char *s = json_dumps(v, flags | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
	if (!s) {
		fputs(PROG ": cannot encode the answer\n", stderr);
		return -1;
	}
	puts(s);
	free(s);
	return 0;
}

/* The follow stream after the answer: {"event": {...}} lines until the
 * daemon hangs up or we are told to stop. Either way the job is done. */
static int follow_events(const struct options *o, const struct call *c, struct reader *r)
{
	for (;;) {
		char *line;
		size_t len;
		int rc = read_line(r, &line, &len);
		if (rc == RD_EOF || rc == RD_SIGNAL)
			return TC_EXIT_OK;
		if (rc == RD_ERROR)
			return die_unreachable(o->socket_path, strerror(errno));

		json_error_t jerr;
		json_t *msg = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
		const json_t *ev = json_object_get(msg, "event");
		if (json_is_object(ev)) {
			if (o->json)
				print_json(ev, JSON_COMPACT);
			else
				print_event_stream_line(ev, c->ev_width);
			fflush(stdout);
		} else if (json_is_false(json_object_get(msg, "ok"))) {
			/* the daemon ending the stream with a reason */
			fputs(PROG ": ", stderr);
			put_value(stderr, json_object_get(msg, "error"));
			fputc('\n', stderr);
			json_decref(msg);
			return TC_EXIT_REFUSED;
		}
		/* anything else is for a newer client: skip it */
		json_decref(msg);
	}
}

static int64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What device test has seen so far. */
struct test_state {
	const char *device;
	bool received, stored, receipt_sent, alerted;
	char last[32];          /* the last stage reported, "" for none */
	int64_t alarm;          /* -1 until a stage names it */
	int64_t received_at, alerted_at;   /* the daemon's clock, ms; -1 unknown */
};

/* "after \"stored\" (alarm 42)" for failure messages: how far the test got */
static void put_test_progress(FILE *f, const struct test_state *t)
{
	fprintf(f, "\"%s\"", t->last);
	if (t->alarm >= 0)
		fprintf(f, " (alarm %lld)", (long long)t->alarm);
}

static void put_missing_stages(FILE *f, const struct test_state *t)
{
	const char *sep = "";
	const struct { bool seen; const char *name; } st[] = {
		{ t->received, "received" }, { t->stored, "stored" },
		{ t->receipt_sent, "receipt sent" }, { t->alerted, "alerted" },
	};
	for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++) {
		if (!st[i].seen) {
			fprintf(f, "%s%s", sep, st[i].name);
			sep = ", ";
		}
	}
}

static void note_stage(struct test_state *t, const json_t *st)
{
	const char *stage = json_string_value(json_object_get(st, "stage"));
	const json_t *alarm = json_object_get(st, "alarm");
	int64_t at = -1;
	const char *ats = json_string_value(json_object_get(st, "at"));
	if (ats && tc_time_parse(ats, &at) < 0)
		at = -1;
	if (!stage)
		return;
	if (json_is_integer(alarm))
		t->alarm = json_integer_value(alarm);
	snprintf(t->last, sizeof(t->last), "%s", strcmp(stage, "receipt_sent") ? stage : "receipt sent");
	if (strcmp(stage, "received") == 0) {
		t->received = true;
		t->received_at = at;
	} else if (strcmp(stage, "stored") == 0) {
		t->stored = true;
	} else if (strcmp(stage, "receipt_sent") == 0) {
		t->receipt_sent = true;
	} else if (strcmp(stage, "alerted") == 0) {
		t->alerted = true;
		t->alerted_at = at;
	}
}

/* device test after the "waiting" answer: one line per stage until
 * "alerted" (the daemon then closes), the timeout, the daemon going away, or
 * Ctrl-C. Closing the connection takes the device off test. Exit 0 only when
 * every stage of the path came. */
static int device_test_stream(const struct options *o, const struct call *c, struct reader *r)
{
	struct test_state t = {
		.device = json_string_value(json_object_get(c->args, "id")),
		.alarm = -1, .received_at = -1, .alerted_at = -1,
	};
	char within[64];
	int64_t deadline = monotonic_ms() + c->test_ms;
	tc_duration_format(c->test_ms, within, sizeof(within));

	while (!t.alerted) {
		int64_t left = deadline - monotonic_ms();
		int rc = RD_ERROR;
		char *line = NULL;
		size_t len = 0;
		errno = ETIMEDOUT;
		if (left > 0) {
			r->timeout_ms = left > INT_MAX ? INT_MAX : (int)left;
			rc = read_line(r, &line, &len);
		}
		if (rc == RD_SIGNAL) {
			fputs("test interrupted", stderr);
			if (t.last[0]) {
				fputs(" after ", stderr);
				put_test_progress(stderr, &t);
			}
			fputs("; the device is no longer on test\n", stderr);
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_ERROR && errno == ETIMEDOUT) {
			if (!t.received) {
				fputs("test failed: no alarm from ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fprintf(stderr, " within %s (check power, range, and that it publishes to "
				        "telecare/dev/", within);
				put_clean(stderr, t.device, strlen(t.device));
				fputs("/event)\n", stderr);
			} else {
				fputs("test failed: ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fputs(" reached ", stderr);
				put_test_progress(stderr, &t);
				fprintf(stderr, " but telecared did not report ");
				put_missing_stages(stderr, &t);
				fprintf(stderr, " within %s\n", within);
			}
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_ERROR) {
			fprintf(stderr, "test failed: lost telecared at %s: %s\n", o->socket_path,
			        strerror(errno));
			return TC_EXIT_REFUSED;
		}
		if (rc == RD_EOF) {
			fputs("test failed: telecared ended the test ", stderr);
			if (t.last[0]) {
				fputs("after ", stderr);
				put_test_progress(stderr, &t);
				fputs(", before ", stderr);
				put_missing_stages(stderr, &t);
			} else {
				fputs("before any alarm from ", stderr);
				put_clean(stderr, t.device, strlen(t.device));
				fputs(" (was it stopped or restarted?)", stderr);
			}
			fputc('\n', stderr);
			return TC_EXIT_REFUSED;
		}

		json_error_t jerr;
		json_t *msg = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
		if (json_is_false(json_object_get(msg, "ok"))) {
			/* the daemon ending the test with a reason */
			fputs("test failed: ", stderr);
			put_value(stderr, json_object_get(msg, "error"));
			fputc('\n', stderr);
			json_decref(msg);
			return TC_EXIT_REFUSED;
		}
		if (json_is_string(json_object_get(msg, "stage"))) {
			note_stage(&t, msg);
			if (o->json)
				print_json(msg, JSON_COMPACT);
			else
				print_test_stage(msg);
			fflush(stdout);
		}
		/* anything else is for a newer client: skip it */
		json_decref(msg);
	}

	if (!t.received || !t.stored || !t.receipt_sent) {
		fputs("test failed: ", stderr);
		put_clean(stderr, t.device, strlen(t.device));
		if (t.alarm >= 0)
			fprintf(stderr, " \u2192 alarm %lld", (long long)t.alarm);
		fputs(": telecared did not report ", stderr);
		put_missing_stages(stderr, &t);
		fputc('\n', stderr);
		return TC_EXIT_REFUSED;
	}
	if (!o->json) {
		/* the gateway's part: from hearing the device to the installer's alert */
		int64_t took = t.received_at >= 0 && t.alerted_at >= t.received_at ?
		               t.alerted_at - t.received_at : -1;
		fputs("test passed: ", stdout);
		put_clean(stdout, t.device, strlen(t.device));
		fputs(" \u2192 ", stdout);
		if (t.alarm >= 0)
			printf("alarm %lld", (long long)t.alarm);
		else
			fputs("an alarm", stdout);
		if (took >= 1000)
			printf(" in %.1f s", (double)took / 1000.0);
		else if (took >= 0)
			printf(" in %lld ms", (long long)took);
		putchar('\n');
	}
	return TC_EXIT_OK;
}

static int run(const struct options *o, struct call *c)
{
	int fd = -1, sigfd = -1, rc;
	char *req = NULL;
	json_t *msg = NULL, *answer = NULL;
	struct reader r = { .fd = -1, .sigfd = -1 };

	msg = json_pack("{s:s}", "cmd", c->cmd->wire);
	if (json_object_size(c->args))   /* "args may be omitted when a command takes none" */
		json_object_set(msg, "args", c->args);
	req = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	if (!req) {
		fputs(PROG ": out of memory\n", stderr);
		return TC_EXIT_USAGE;
	}
	if (strlen(req) + 1 > TC_CONTROL_LINE_MAX && c->path) {
		/* device import: the rows went into one request */
		size_t rows = json_array_size(json_object_get(c->args, "rows"));
		fputs(PROG ": ", stderr);
		put_clean(stderr, c->path, strlen(c->path));
		fprintf(stderr, ": %zu devices make a request of %zu bytes, and telecared takes at "
		        "most %d bytes in one request (about %zu devices like these); nothing "
		        "imported\n", rows, strlen(req) + 1, TC_CONTROL_LINE_MAX,
		        rows * TC_CONTROL_LINE_MAX / (strlen(req) + 1));
		free(req);
		return TC_EXIT_USAGE;
	}
	if (strlen(req) + 1 > TC_CONTROL_LINE_MAX) {
		fprintf(stderr, PROG ": request too long (%zu bytes, at most %d)\n", strlen(req) + 1,
		        TC_CONTROL_LINE_MAX);
		free(req);
		return TC_EXIT_USAGE;
	}

	if (c->follow || c->test) {
		/* Ctrl-C ends a follow normally (exit 0), a device test as a
		 * failure (exit 1): take the signals as a readable fd next to the
		 * socket instead of a handler and a flag. */
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, NULL);
		sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	}

	fd = connect_socket(o->socket_path);
	if (fd < 0) {
		rc = die_unreachable(o->socket_path, strerror(errno));
		goto out;
	}
	size_t reqlen = strlen(req);
	req[reqlen] = '\n';   /* overwrites the NUL; send length-bounded */
	if (send_all(fd, req, reqlen + 1) < 0) {
		rc = die_unreachable(o->socket_path, strerror(errno));
		goto out;
	}

	r.fd = fd;
	r.sigfd = sigfd;
	r.timeout_ms = c->timeout_ms;
	char *line;
	size_t len;
	switch (read_line(&r, &line, &len)) {
	case RD_LINE:
		break;
	case RD_SIGNAL:
		if (c->test)
			fputs("test interrupted\n", stderr);
		rc = c->test ? TC_EXIT_REFUSED : TC_EXIT_OK;
		goto out;
	case RD_EOF:
		rc = die_unreachable(o->socket_path, "connection closed before an answer");
		goto out;
	default:
		rc = die_unreachable(o->socket_path,
		                     errno == ETIMEDOUT ? "no answer within 60 s" : strerror(errno));
		goto out;
	}

	json_error_t jerr;
	answer = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
	const json_t *ok = json_object_get(answer, "ok");
	if (!json_is_boolean(ok)) {
		rc = die_unreachable(o->socket_path, "the answer is not a control protocol answer");
		goto out;
	}
	if (json_is_false(ok)) {
		fputs(PROG ": ", stderr);
		put_value(stderr, json_object_get(answer, "error"));
		fputc('\n', stderr);
		rc = TC_EXIT_REFUSED;
		goto out;
	}

	const json_t *data = json_object_get(answer, "data");
	if (!data)
		data = json_null();
	if (o->json && c->follow) {
		/* JSON Lines throughout: the batch, then the stream, one event each */
		size_t i;
		const json_t *ev;
		json_array_foreach(data, i, ev)
			print_json(ev, JSON_COMPACT);
	} else if (c->backup) {
		rc = do_backup(o, c, data);
		goto out;
	} else if (o->json && c->test) {
		print_json(data, JSON_COMPACT);   /* JSON Lines: this and the stages */
	} else if (o->json) {
		print_json(data, JSON_INDENT(2));
	} else {
		c->cmd->print(c, data);
	}
	rc = TC_EXIT_OK;
	if (c->follow) {
		fflush(stdout);
		rc = follow_events(o, c, &r);
	} else if (c->test) {
		fflush(stdout);
		rc = device_test_stream(o, c, &r);
	}

out:
	json_decref(answer);
	free(r.buf);
	free(req);
	if (fd >= 0)
		close(fd);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int i;

	/* global options, before the command */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--json") == 0) {
			o.json = true;
		} else if (strcmp(a, "--socket") == 0 || strncmp(a, "--socket=", 9) == 0) {
			if (a[8] == '=')
				o.socket_path = a + 9;
			else if (i + 1 < argc)
				o.socket_path = argv[++i];
			else
				return usage_error("--socket needs a path"), TC_EXIT_USAGE;
			if (!o.socket_path[0])
				return usage_error("--socket needs a path"), TC_EXIT_USAGE;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			print_usage(stdout);
			return TC_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			puts(PROG " " TELECARE_VERSION);
			return TC_EXIT_OK;
		} else {
			return usage_error("unknown option %s", a), TC_EXIT_USAGE;
		}
	}
	if (!o.socket_path) {
		const char *env = getenv(TC_SOCKET_ENV);
		o.socket_path = env && *env ? env : TELECARE_SOCKET_PATH;
	}
	if (i >= argc)
		return usage_error("missing command"), TC_EXIT_USAGE;
	if (strcmp(argv[i], "help") == 0) {
		print_usage(stdout);
		return TC_EXIT_OK;
	}

	int used;
	const struct command *cmd = find_command(argc - i, argv + i, &used);
	if (!cmd)
		return TC_EXIT_USAGE;

	size_t ev_width[EVENT_COLS] = { 0 };
	struct call c = {
		.cmd = cmd,
		.ev_width = ev_width,
		.argc = argc - i - used,
		.argv = argv + i + used,
		.args = json_object(),
		.timeout_ms = ANSWER_TIMEOUT_MS,
	};
	int rc = cmd->build(&c);
	if (rc == PARSE_HELP)
		rc = TC_EXIT_OK;
	else if (rc != PARSE_OK)
		rc = TC_EXIT_USAGE;
	else
		rc = run(&o, &c);
	json_decref(c.args);

	/* Output that did not reach its destination (disk full, closed pipe
	 * with SIGPIPE ignored) must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write output: %s\n", strerror(errno));
		if (rc == TC_EXIT_OK)
			rc = TC_EXIT_REFUSED;
	}
	return rc;
}
