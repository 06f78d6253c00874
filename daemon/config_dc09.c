/* The keys of a [source NAME] section with format = sia-dc09 (SPEC 2.8,
 * docs/SOURCES.md), and what a source's section must hold once the file is
 * read. config.c reads the file and reports errors with their line. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "telecared.h"
#include "telecare/dc09.h"
#include "telecare/timefmt.h"

static int set(char **dst, const char *v, char *err, size_t errlen)
{
	char *s = strdup(v);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(*dst);
	*dst = s;
	return 1;
}

int source_dc09_key(struct tc_source *src, const char *name, const char *value, char *err,
                    size_t errlen)
{
	struct sockaddr_storage ss;
	char *end;
	if (!strcmp(name, "listen")) {
		if (strlen(value) > 64 || tc_parse_listen(value, &ss) < 0) {
			snprintf(err, errlen, "listen must be ADDRESS:PORT with a numeric address, e.g. "
			         "0.0.0.0:12128 or [::]:12128, not \"%s\"", value);
			return -1;
		}
		return set(&src->listen, value, err, errlen);
	}
	if (!strcmp(name, "keys")) {
		if (!*value) {
			snprintf(err, errlen, "keys must be the path of the keys file");
			return -1;
		}
		return set(&src->keys, value, err, errlen);
	}
	if (!strcmp(name, "time_window")) {
		if (tc_dc09_window_parse(value, &src->max_age_ms, &src->max_lead_ms) < 0) {
			snprintf(err, errlen, "time_window must be AGE/LEAD durations such as 40s/20s, or 0 "
			         "(no check), not \"%s\"", value);
			return -1;
		}
		return 1;
	}
	if (!strcmp(name, "idle_timeout")) {
		if (tc_duration_parse(value, &src->idle_ms) < 0 || src->idle_ms < 1000 ||
		    src->idle_ms > 86400000LL) {
			snprintf(err, errlen, "idle_timeout must be a duration from 1s to 1d, not \"%s\"",
			         value);
			return -1;
		}
		return 1;
	}
	if (!strcmp(name, "max_connections")) {
		long n = strtol(value, &end, 10);
		if (!*value || *end || n < 1 || n > 1000000) {
			snprintf(err, errlen, "max_connections must be 1-1000000, not \"%s\"", value);
			return -1;
		}
		src->max_connections = (int)n;
		return 1;
	}
	return 0;
}

int source_dc09_rule(struct tc_source *src, const char *value, char *err, size_t errlen)
{
	struct tc_dc09_rule *n = realloc(src->dc09_rules, (src->n_dc09_rules + 1) * sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	src->dc09_rules = n;
	if (tc_dc09_rule_parse(value, &src->dc09_rules[src->n_dc09_rules], err, errlen) < 0)
		return -1;
	src->n_dc09_rules++;
	return 0;
}

const char *source_check(const struct config *c, struct tc_source *src)
{
	if (src->format != TC_SRC_SIA_DC09) {
		if (src->listen || src->keys || src->max_age_ms >= 0 || src->idle_ms >= 0 ||
		    src->max_connections >= 0)
			return "listen, keys, time_window, idle_timeout and max_connections are for "
			       "format sia-dc09";
		if (!src->topic)
			src->topic = strdup(tc_source_default_topic(src->format));
		return src->topic ? NULL : "out of memory";
	}
	if (src->topic)
		return "topic is for MQTT sources; a sia-dc09 source listens on its own port (listen)";
	if (!src->listen)
		return "format sia-dc09 needs listen (ADDRESS:PORT, e.g. 0.0.0.0:12128)";
	for (size_t i = 0; i < c->n_sources && c->sources[i] != src; i++)
		if (c->sources[i]->listen && !strcmp(c->sources[i]->listen, src->listen))
			return "listen is the same as another source's";
	if (src->max_age_ms < 0) {
		src->max_age_ms = 40000;   /* SPEC 2.8: 40s/20s */
		src->max_lead_ms = 20000;
	}
	if (src->idle_ms < 0)
		src->idle_ms = 5 * 60000;
	if (src->max_connections < 0)
		src->max_connections = 4096;
	return NULL;
}
