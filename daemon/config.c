/* The configuration file (SPEC 5). Errors name the file and the line of the
 * first thing wrong in it. */
#include <ctype.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

/* A rule met before its section's format: parsed once the format is known. */
struct later_rule {
	struct tc_source *src;
	char *text;
	int line;
};

struct parse {
	struct config *c;
	char err[256];          /* the first error's message */
	int err_line;           /* and its line */
	int line;               /* the line being read */
	FILE *f;
	bool outcomes_set;
	struct later_rule *later;
	size_t n_later;
};

static const char *default_outcomes[] = {
	"assisted_by_phone", "visit", "ambulance", "police", "fire", "false_alarm",
	"user_cancelled", "technical_fixed", "restored", "test",
};

static int bad(struct parse *p, const char *fmt, ...)
{
	if (!p->err[0]) {
		p->err_line = p->line;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
	}
	return 0;
}

/* An error found after its line was read (a rule parsed once its format was
 * known): recorded with the line it came from. */
static int bad_at(struct parse *p, int line, const char *fmt, ...)
{
	if (!p->err[0]) {
		p->err_line = line;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(p->err, sizeof(p->err), fmt, ap);
		va_end(ap);
	}
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

static int parse_int(const char *v, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static int add_outcomes(struct parse *p, const char *v)
{
	struct config *c = p->c;
	for (size_t i = 0; i < c->n_outcomes; i++)
		free(c->outcomes[i]);
	c->n_outcomes = 0;
	char *copy = strdup(v), *save = NULL;
	int rc = 1;
	if (!copy)
		return bad(p, "out of memory");
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		char **n;
		if (!tc_device_id_valid(tok, strlen(tok))) {
			rc = bad(p, "outcome \"%s\" must be 1-64 of [A-Za-z0-9._-]", tok);
			break;
		}
		if (!(n = realloc(c->outcomes, (c->n_outcomes + 1) * sizeof(*n))) ||
		    !(n[c->n_outcomes] = strdup(tok))) {
			if (n)
				c->outcomes = n;
			rc = bad(p, "out of memory");
			break;
		}
		c->outcomes = n;
		c->n_outcomes++;
	}
	free(copy);  /* after the messages that quote it */
	if (rc == 1 && c->n_outcomes == 0)
		return bad(p, "[outcomes] list must name at least one outcome");
	p->outcomes_set = rc == 1;
	return rc;
}

static struct policy *policy_section(struct parse *p, const char *name)
{
	struct config *c = p->c;
	for (size_t i = 0; i < c->n_policies; i++)
		if (strcmp(c->policies[i]->name, name) == 0)
			return c->policies[i];
	struct policy **n = realloc(c->policies, (c->n_policies + 1) * sizeof(*n));
	if (!n)
		return NULL;
	c->policies = n;
	struct policy *pol = policy_new(name);
	if (pol)
		c->policies[c->n_policies++] = pol;
	return pol;
}

/* A key of [policy NAME] (SPEC 4). */
static int policy_key(struct parse *p, const char *pname, const char *name, const char *value)
{
	char err[200];
	long n;
	if (!tc_device_id_valid(pname, strlen(pname)))
		return bad(p, "policy name \"%s\" must be 1-64 of [A-Za-z0-9._-]", pname);
	struct policy *pol = policy_section(p, pname);
	if (!pol)
		return bad(p, "out of memory");
	if (!strcmp(name, "priorities")) {
		char *copy = strdup(value), *save = NULL;
		unsigned mask = 0;
		for (char *t = copy ? strtok_r(copy, ", \t", &save) : NULL; t; t = strtok_r(NULL, ", \t", &save)) {
			if (parse_int(t, 1, 9, &n) < 0) {
				int rc = bad(p, "priorities must be numbers 1-9, not \"%s\"", t);
				free(copy);  /* after the message that quotes it */
				return rc;
			}
			mask |= 1u << n;
		}
		free(copy);
		if (!mask)
			return bad(p, "priorities must name at least one priority (1-9)");
		for (size_t i = 0; i < p->c->n_policies; i++) {
			struct policy *o = p->c->policies[i];
			if (o != pol && (o->priorities & mask))
				return bad(p, "a priority of [policy %s] is already covered by [policy %s]",
				           pname, o->name);
		}
		pol->priorities = mask;
		return 1;
	}
	if (!strcmp(name, "step")) {
		struct step *ns = realloc(pol->steps, (size_t)(pol->n_steps + 1) * sizeof(*ns));
		if (!ns)
			return bad(p, "out of memory");
		pol->steps = ns;
		if (policy_parse_step(value, &pol->steps[pol->n_steps], err, sizeof(err)) < 0)
			return bad(p, "%s", err);
		pol->n_steps++;
		return 1;
	}
	if (!strcmp(name, "repeat")) {
		if (parse_int(value, 0, 1000, &n) < 0)
			return bad(p, "repeat must be 0-1000, not \"%s\"", value);
		pol->repeat = (int)n;
		return 1;
	}
	if (!strcmp(name, "ack_timeout")) {
		int64_t ms;
		if (tc_duration_parse(value, &ms) < 0 || ms < 1000)
			return bad(p, "ack_timeout must be a duration of at least 1s, not \"%s\"", value);
		pol->ack_timeout_ms = ms;
		return 1;
	}
	if (!strcmp(name, "on_cancel")) {
		if (strcmp(value, "keep") && strcmp(value, "resolve"))
			return bad(p, "on_cancel must be \"keep\" or \"resolve\", not \"%s\"", value);
		pol->cancel_resolves = !strcmp(value, "resolve");
		return 1;
	}
	return bad(p, "unknown key \"%s\" in [policy %s] (priorities, step, repeat, ack_timeout, on_cancel)",
	           name, pname);
}

static struct tc_source *source_section(struct parse *p, const char *name)
{
	struct config *c = p->c;
	for (size_t i = 0; i < c->n_sources; i++)
		if (strcmp(c->sources[i]->name, name) == 0)
			return c->sources[i];
	struct tc_source **n = realloc(c->sources, (c->n_sources + 1) * sizeof(*n));
	if (!n)
		return NULL;
	c->sources = n;
	struct tc_source *src = calloc(1, sizeof(*src));
	if (!src || !(src->name = strdup(name))) {
		free(src);
		return NULL;
	}
	src->format = (enum tc_source_format)-1;
	/* -1: not given (a sia-dc09 source takes the default, any other refuses it) */
	src->max_age_ms = src->max_lead_ms = src->idle_ms = -1;
	src->max_connections = -1;
	c->sources[c->n_sources++] = src;
	return src;
}

static int dc09_rule(struct parse *p, struct tc_source *src, const char *value, int line)
{
	char err[200];
	return source_dc09_rule(src, value, err, sizeof(err)) < 0 ? bad_at(p, line, "%s", err) : 1;
}

static int mqtt_rule(struct parse *p, struct tc_source *src, const char *value, int line)
{
	char err[200];
	struct tc_rule *n = realloc(src->rules, (src->n_rules + 1) * sizeof(*n));
	if (!n)
		return bad_at(p, line, "out of memory");
	src->rules = n;
	if (tc_rule_parse(value, &src->rules[src->n_rules], err, sizeof(err)) < 0)
		return bad_at(p, line, "%s", err);
	src->n_rules++;
	return 1;
}

/* [source NAME] (docs/SOURCES.md): format, topic, rule = FIELD=VALUE -> TYPE;
 * sia-dc09: listen, keys, time_window, idle_timeout, max_connections, and
 * rule = cid=|sia=|zone= -> TYPE. */
static int source_key(struct parse *p, const char *sname, const char *name, const char *value)
{
	if (!tc_device_id_valid(sname, strlen(sname)))
		return bad(p, "source name \"%s\" must be 1-64 of [A-Za-z0-9._-]", sname);
	struct tc_source *src = source_section(p, sname);
	if (!src)
		return bad(p, "out of memory");
	if (!strcmp(name, "format")) {
		int f = tc_source_format_from_name(value);
		if (f < 0)
			return bad(p, "format must be zigbee2mqtt, chirpstack, ttn or sia-dc09, not \"%s\"",
			           value);
		if ((int)src->format >= 0 && src->format != (enum tc_source_format)f)
			return bad(p, "[source %s] has format %s already", sname,
			           tc_source_format_name(src->format));
		src->format = (enum tc_source_format)f;
		/* the rules read before the format was known, by its syntax */
		for (size_t i = 0; i < p->n_later; i++) {
			struct later_rule *r = &p->later[i];
			if (r->src != src || !r->text)
				continue;
			if (f == TC_SRC_SIA_DC09)
				dc09_rule(p, src, r->text, r->line);
			else
				mqtt_rule(p, src, r->text, r->line);
			free(r->text);
			r->text = NULL;
		}
		return 1;
	}
	char err[200];
	int rc = source_dc09_key(src, name, value, err, sizeof(err));
	if (rc)
		return rc < 0 ? bad(p, "%s", err) : 1;
	if (!strcmp(name, "topic")) {
		if (!*value || strlen(value) > 200 || value[0] == '$')
			return bad(p, "topic must be an MQTT topic filter such as zigbee2mqtt/#");
		free(src->topic);
		src->topic = strdup(value);
		return 1;
	}
	if (!strcmp(name, "rule")) {
		if (src->format == TC_SRC_SIA_DC09)
			return dc09_rule(p, src, value, p->line);
		if ((int)src->format >= 0)
			return mqtt_rule(p, src, value, p->line);
		/* Its syntax depends on the format, which may come later. */
		struct later_rule *n = realloc(p->later, (p->n_later + 1) * sizeof(*n));
		if (!n || !(n[p->n_later].text = strdup(value))) {
			if (n)
				p->later = n;
			return bad(p, "out of memory");
		}
		p->later = n;
		n[p->n_later].src = src;
		n[p->n_later++].line = p->line;
		return 1;
	}
	return bad(p, "unknown key \"%s\" in [source %s] (format, topic, rule; sia-dc09: listen, "
	           "keys, time_window, idle_timeout, max_connections)", name, sname);
}

static void source_free(struct tc_source *src)
{
	if (!src)
		return;
	for (size_t i = 0; i < src->n_rules; i++)
		tc_rule_clear(&src->rules[i]);
	free(src->rules);
	free(src->topic);
	free(src->listen);
	free(src->keys);
	free(src->dc09_rules);
	free(src->name);
	free(src);
}

const struct tc_source *source_get(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_sources; i++)
		if (strcmp(c->sources[i]->name, name) == 0)
			return c->sources[i];
	return NULL;
}

/* [supervision] (docs/SPEC-EXTENSIONS.md) */
static int supervision_key(struct parse *p, const char *name, const char *value)
{
	struct config *c = p->c;
	long n;
	int64_t *dur = !strcmp(name, "grace")           ? &c->sup.grace_ms
	               : !strcmp(name, "storm_window")  ? &c->sup.storm_window_ms
	               : !strcmp(name, "broker_outage") ? &c->sup.broker_outage_ms
	                                                : NULL;
	if (dur) {
		if (tc_duration_parse(value, dur) < 0)
			return bad(p, "%s must be a duration (30s, 2m, 1h), not \"%s\"", name, value);
		return 1;
	}
	int *num = !strcmp(name, "battery_low")          ? &c->sup.battery_low
	           : !strcmp(name, "battery_hysteresis") ? &c->sup.battery_hysteresis
	           : !strcmp(name, "storm_devices")      ? &c->sup.storm_devices
	                                                 : NULL;
	if (!num)
		return bad(p, "unknown key \"%s\" in [supervision] (grace, battery_low, "
		           "battery_hysteresis, storm_devices, storm_window, broker_outage)", name);
	long hi = !strcmp(name, "storm_devices") ? 4096 : 100;
	if (parse_int(value, 0, hi, &n) < 0)
		return bad(p, "%s must be 0-%ld, not \"%s\"", name, hi, value);
	*num = (int)n;
	return 1;
}

/* [http] (docs/HTTP.md) */
static int http_key(struct parse *p, const char *name, const char *value)
{
	struct config *c = p->c;
	int64_t ms;
	if (!strcmp(name, "listen")) {
		struct sockaddr_storage sa;
		if (*value && tc_parse_listen(value, &sa) < 0)
			return bad(p, "listen must be HOST:PORT (127.0.0.1:8080, [::1]:8080), not \"%s\"",
			           value);
		return set_str(&c->http.listen, value), 1;
	}
	char **file = !strcmp(name, "cert") ? &c->http.cert : !strcmp(name, "key") ? &c->http.key
	              : !strcmp(name, "root") ? &c->http.root : NULL;
	if (file) {
		free(*file);
		*file = *value ? strdup(value) : NULL;
		return 1;
	}
	int64_t *dur = !strcmp(name, "session_idle") ? &c->http.session_idle_ms
	               : !strcmp(name, "session_max") ? &c->http.session_max_ms : NULL;
	if (!dur)
		return bad(p, "unknown key \"%s\" in [http] (listen, cert, key, root, session_idle, "
		           "session_max)", name);
	if (tc_duration_parse(value, &ms) < 0 || ms < 1000 || ms > 7LL * 86400000)
		return bad(p, "%s must be a duration from 1s to 7d, not \"%s\"", name, value);
	*dur = ms;
	return 1;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	struct config *c = p->c;
	long n;

	if (!name)  /* a section header alone */
		return 1;
	if (strcmp(section, "mqtt") == 0) {
		if (!strcmp(name, "host"))
			return *value ? (set_str(&c->mqtt.host, value), 1) : bad(p, "host must not be empty");
		if (!strcmp(name, "port")) {
			if (parse_int(value, 1, 65535, &n) < 0)
				return bad(p, "port must be 1-65535, not \"%s\"", value);
			c->mqtt.port = (int)n;
			return 1;
		}
		if (!strcmp(name, "client_id")) {
			if (!*value || strlen(value) > 23 * 10)
				return bad(p, "client_id must be 1-230 characters");
			c->mqtt.client_id_set = true;
			return set_str(&c->mqtt.client_id, value), 1;
		}
		if (!strcmp(name, "topic_prefix")) {
			if (!*value || strpbrk(value, "+#") || value[strlen(value) - 1] == '/' || value[0] == '/')
				return bad(p, "topic_prefix must be a topic without wildcards or a leading/trailing '/'");
			return set_str(&c->mqtt.prefix, value), 1;
		}
		if (!strcmp(name, "keepalive")) {
			if (parse_int(value, 5, 3600, &n) < 0)
				return bad(p, "keepalive must be 5-3600 seconds, not \"%s\"", value);
			c->mqtt.keepalive = (int)n;
			return 1;
		}
		if (!strcmp(name, "device_rate") || !strcmp(name, "device_burst")) {
			if (parse_int(value, 1, 1000000, &n) < 0)
				return bad(p, "%s must be 1-1000000 events, not \"%s\"", name, value);
			*(!strcmp(name, "device_rate") ? &c->device_rate : &c->device_burst) = (int)n;
			return 1;
		}
		if (!strcmp(name, "receipt_queue")) {
			if (parse_int(value, 1000, 10000000, &n) < 0)
				return bad(p, "receipt_queue must be 1000-10000000 receipts, not \"%s\"", value);
			c->receipt_queue = (size_t)n;
			return 1;
		}
		if (!strcmp(name, "max_payload")) {
			if (parse_int(value, 256, 1024 * 1024, &n) < 0)
				return bad(p, "max_payload must be 256-1048576 bytes, not \"%s\"", value);
			c->mqtt.max_payload = (size_t)n;
			return 1;
		}
		char **dst = !strcmp(name, "username")        ? &c->mqtt.username
		             : !strcmp(name, "password_file") ? &c->mqtt.password_file
		             : !strcmp(name, "cafile")        ? &c->mqtt.cafile
		             : !strcmp(name, "certfile")      ? &c->mqtt.certfile
		             : !strcmp(name, "keyfile")       ? &c->mqtt.keyfile
		                                              : NULL;
		if (!dst)
			return bad(p, "unknown key \"%s\" in [mqtt]", name);
		free(*dst);
		*dst = *value ? strdup(value) : NULL;
		return 1;
	}
	if (strcmp(section, "store") == 0) {
		if (strcmp(name, "path"))
			return bad(p, "unknown key \"%s\" in [store]", name);
		return *value ? (set_str(&c->store_path, value), 1) : bad(p, "path must not be empty");
	}
	if (strcmp(section, "control") == 0) {
		if (strcmp(name, "socket"))
			return bad(p, "unknown key \"%s\" in [control]", name);
		if (!*value || strlen(value) >= 108)
			return bad(p, "socket must be a path of 1-107 characters");
		return set_str(&c->socket_path, value), 1;
	}
	if (strcmp(section, "http") == 0)
		return http_key(p, name, value);
	if (strcmp(section, "alarms") == 0) {
		int64_t *dur = !strcmp(name, "mass_window") ? &c->mass.window_ms
		               : !strcmp(name, "mass_hold") ? &c->mass.hold_ms : NULL;
		if (dur) {
			int64_t ms;
			if (tc_duration_parse(value, &ms) < 0 || ms > 86400000LL)
				return bad(p, "%s must be a duration up to 1d (2s, 2m), not \"%s\"", name, value);
			*dur = ms;
			return 1;
		}
		if (!strcmp(name, "mass_devices")) {
			if (parse_int(value, 0, 1000000, &n) < 0)
				return bad(p, "mass_devices must be 0-1000000 (0: never fold), not \"%s\"", value);
			c->mass.devices = (int)n;
			return 1;
		}
		if (strcmp(name, "unknown_devices"))
			return bad(p, "unknown key \"%s\" in [alarms] (unknown_devices, mass_devices, "
			           "mass_window, mass_hold)", name);
		if (!strcmp(value, "alarm"))
			c->unknown_devices = UNKNOWN_ALARM;
		else if (!strcmp(value, "log"))
			c->unknown_devices = UNKNOWN_LOG;
		else
			return bad(p, "unknown_devices must be \"alarm\" or \"log\", not \"%s\"", value);
		return 1;
	}
	if (strcmp(section, "priorities") == 0) {
		enum tc_type t = tc_type_from_name(name);
		if (t == TC_T_INVALID)
			return bad(p, "unknown event type \"%s\" in [priorities]", name);
		if (tc_type_kind(t) != TC_KIND_ALARM && tc_type_kind(t) != TC_KIND_TECHNICAL)
			return bad(p, "\"%s\" opens no alarm and has no priority", name);
		if (parse_int(value, 1, 9, &n) < 0)
			return bad(p, "priority of %s must be 1-9, not \"%s\"", name, value);
		c->priority[t] = (int)n;
		return 1;
	}
	if (strcmp(section, "outcomes") == 0) {
		if (strcmp(name, "list"))
			return bad(p, "unknown key \"%s\" in [outcomes]", name);
		return add_outcomes(p, value);
	}
	if (strncmp(section, "policy ", 7) == 0)
		return policy_key(p, section + 7, name, value);
	if (strcmp(section, "supervision") == 0)
		return supervision_key(p, name, value);
	if (strncmp(section, "source ", 7) == 0)
		return source_key(p, section + 7, name, value);
	return bad(p, "unknown section [%s]", section);
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	char *e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* The INI dialect of telecared.conf(5): "[section]", "key = value", comments
 * on lines that start with '#' or ';' and after " ;" or " #" in a value. No
 * line-length limit and no continuation lines: every error has one line.
 * Returns 0, or the first line that is not INI (the handler records value
 * errors itself). */
static int parse_ini(struct parse *p)
{
	char *buf = NULL, section[256] = "";
	size_t cap = 0;
	ssize_t n;
	int syntax = 0;
	bool in_section = false;
	while ((n = getline(&buf, &cap, p->f)) >= 0) {
		p->line++;
		if (memchr(buf, '\0', (size_t)n)) {
			syntax = syntax ? syntax : p->line;
			continue;
		}
		char *l = trim(buf);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *close = strchr(l, ']');
			if (!close || close[1] != '\0' || (size_t)(close - l) >= sizeof(section)) {
				syntax = syntax ? syntax : p->line;
				continue;
			}
			*close = '\0';
			snprintf(section, sizeof(section), "%s", trim(l + 1));
			in_section = true;
			handler(p, section, NULL, NULL);
			continue;
		}
		char *eq = strchr(l, '=');
		if (!eq || !in_section) {
			syntax = syntax ? syntax : p->line;
			continue;
		}
		*eq = '\0';
		char *key = trim(l), *value = eq + 1;
		for (char *c = value; *c; c++) {
			if ((*c == ';' || *c == '#') && c > value && isspace((unsigned char)c[-1])) {
				*c = '\0';
				break;
			}
		}
		value = trim(value);
		if (!*key) {
			syntax = syntax ? syntax : p->line;
			continue;
		}
		handler(p, section, key, value);
	}
	free(buf);
	return syntax;
}

static struct config *config_defaults(void)
{
	struct config *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->mqtt.host = strdup("127.0.0.1");
	c->mqtt.port = 1883;
	c->mqtt.client_id = strdup("telecared");
	c->mqtt.prefix = strdup("telecare");
	c->mqtt.keepalive = 30;
	c->mqtt.max_payload = TC_PAYLOAD_DEFAULT;
	c->store_path = strdup(TELECARE_DB_PATH);
	c->socket_path = strdup(TELECARE_SOCKET_PATH);
	c->http.listen = strdup("127.0.0.1:8080");
	c->http.root = strdup(TELECARE_CONSOLE_DIR);
	c->http.session_idle_ms = 30 * 60000;
	c->http.session_max_ms = 12 * 3600000;
	c->unknown_devices = UNKNOWN_ALARM;
	c->device_rate = 100;
	c->device_burst = 1000;
	c->receipt_queue = 100000;
	c->mass.devices = 20;
	c->mass.window_ms = 2 * 60000;
	c->mass.hold_ms = 2000;
	for (int t = 0; t < TC_T__COUNT; t++)
		c->priority[t] = tc_type_default_priority((enum tc_type)t);
	c->sup.grace_ms = 2 * 60000;
	c->sup.battery_low = 20;
	c->sup.battery_hysteresis = 10;
	c->sup.storm_devices = 0;      /* 0: connection_lost folds like any class */
	c->sup.storm_window_ms = 0;
	c->sup.broker_outage_ms = 2 * 60000;
	return c;
}

struct config *config_load(const char *path, char *err, size_t errlen)
{
	struct parse p = { .c = config_defaults() };
	if (!p.c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (path) {
		p.c->file = strdup(path);
		struct stat st;
		p.f = fopen(path, "re");
		if (!p.f || fstat(fileno(p.f), &st) < 0 || !S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "%s: %s", path, p.f ? "not a regular file" : strerror(errno));
			if (p.f)
				fclose(p.f);
			config_free(p.c);
			return NULL;
		}
		int line = parse_ini(&p);
		fclose(p.f);
		for (size_t i = 0; i < p.n_later; i++) {
			/* a section without a format: that error is reported below */
			free(p.later[i].text);
		}
		free(p.later);
		if (line != 0 || p.err[0]) {
			/* the first line that is not INI, or the first wrong value:
			 * whichever came first is the error */
			if (line > 0 && (!p.err[0] || line < p.err_line))
				snprintf(err, errlen, "%s:%d: syntax error (expected [section], key = value "
				         "or a comment)", path, line);
			else
				snprintf(err, errlen, "%s:%d: %s", path, p.err_line, p.err);
			config_free(p.c);
			return NULL;
		}
	}
	if ((p.c->http.cert == NULL) != (p.c->http.key == NULL)) {
		snprintf(err, errlen, "%s: [http] cert and key go together", path ? path : "defaults");
		config_free(p.c);
		return NULL;
	}
	/* A broker that binds client ids to logins (SPEC 9) knows the gateway
	 * by its username: without an explicit client_id, use that. */
	if (p.c->mqtt.username && !p.c->mqtt.client_id_set)
		set_str(&p.c->mqtt.client_id, p.c->mqtt.username);
	if (!p.outcomes_set) {
		p.c->outcomes = calloc(sizeof(default_outcomes) / sizeof(*default_outcomes), sizeof(char *));
		for (size_t i = 0; p.c->outcomes && i < sizeof(default_outcomes) / sizeof(*default_outcomes); i++)
			p.c->outcomes[p.c->n_outcomes++] = strdup(default_outcomes[i]);
	}
	for (size_t i = 0; i < p.c->n_policies; i++) {
		struct policy *pol = p.c->policies[i];
		if (!pol->n_steps || !pol->priorities) {
			snprintf(err, errlen, "%s: [policy %s] needs %s", path ? path : "defaults", pol->name,
			         !pol->n_steps ? "at least one step" : "priorities");
			config_free(p.c);
			return NULL;
		}
	}
	for (size_t i = 0; i < p.c->n_sources; i++) {
		struct tc_source *src = p.c->sources[i];
		const char *why = (int)src->format < 0
		                  ? "needs a format (zigbee2mqtt, chirpstack, ttn or sia-dc09)"
		                  : source_check(p.c, src);
		if (why) {
			snprintf(err, errlen, "%s: [source %s] %s", path ? path : "defaults", src->name, why);
			config_free(p.c);
			return NULL;
		}
	}
	if (p.c->mqtt.certfile && !p.c->mqtt.cafile) {
		snprintf(err, errlen, "%s: [mqtt] certfile and keyfile need cafile (TLS)",
		         path ? path : "defaults");
		config_free(p.c);
		return NULL;
	}
	if ((p.c->mqtt.certfile == NULL) != (p.c->mqtt.keyfile == NULL)) {
		snprintf(err, errlen, "%s: [mqtt] certfile and keyfile go together", path ? path : "defaults");
		config_free(p.c);
		return NULL;
	}
	return p.c;
}

bool config_outcome_valid(const struct config *c, const char *outcome)
{
	for (size_t i = 0; i < c->n_outcomes; i++)
		if (strcmp(c->outcomes[i], outcome) == 0)
			return true;
	return false;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->mqtt.host);
	free(c->mqtt.client_id);
	free(c->mqtt.prefix);
	free(c->mqtt.username);
	free(c->mqtt.password_file);
	free(c->mqtt.cafile);
	free(c->mqtt.certfile);
	free(c->mqtt.keyfile);
	free(c->store_path);
	free(c->socket_path);
	free(c->http.listen);
	free(c->http.cert);
	free(c->http.key);
	free(c->http.root);
	for (size_t i = 0; i < c->n_outcomes; i++)
		free(c->outcomes[i]);
	free(c->outcomes);
	for (size_t i = 0; i < c->n_policies; i++)
		policy_unref(c->policies[i]);
	free(c->policies);
	for (size_t i = 0; i < c->n_sources; i++)
		source_free(c->sources[i]);
	free(c->sources);
	free(c);
}
