/* Command-line parameters, declared as tables per command (struct param):
 * options in any order, positionals in order, each checked for its type
 * before the daemon is asked, so typos fail fast with exit 2. */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/event.h"
#include "telecare/timefmt.h"
#include "telecarectl.h"

/* The usage message for wrong input: one line saying what is wrong, one
 * line saying where to look. Always exit 2. */
int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\ntry: " PROG " --help\n", stderr);
	return PARSE_USAGE;
}

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
	case P_ROLE: {
		static const char *const roles[] = { TC_ROLE_ADMIN, TC_ROLE_DISPATCHER, TC_ROLE_INSTALLER,
		                                     TC_ROLE_WORKER };
		size_t i = 0;
		while (i < sizeof(roles) / sizeof(roles[0]) && strcmp(val, roles[i]) != 0)
			i++;
		if (i == sizeof(roles) / sizeof(roles[0]))
			return usage_error("invalid %s '%s': one of %s, %s, %s, %s", what, val, roles[0],
			                   roles[1], roles[2], roles[3]);
		v = json_string(val);
		break;
	}
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
		if (n < 1 || errno || *end || (p->type == P_LIMIT && n > TC_EVENTS_LIMIT_MAX)) {
			if (p->type == P_LIMIT)
				return usage_error("invalid %s '%s': a number from 1 to %d", what, val,
				                   TC_EVENTS_LIMIT_MAX);
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
		if (!v || !val2 || json_object_set_new(c->args, TC_ARG_HOURS, json_string(val2)) < 0) {
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
int parse_params(struct call *c, const struct param *pos, const struct param *opt)
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

/* The milliseconds of a P_TIME argument already checked by put_param. */
bool time_arg(const struct call *c, const char *key, int64_t *ms)
{
	const char *s = json_string_value(json_object_get(c->args, key));
	return s && tc_time_parse(s, ms) == 0;
}

