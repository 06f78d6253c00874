/* Escalation policies (SPEC 4): who is alerted, in what order, how long each
 * step waits. Parsing, the built-in defaults, the JSON an alarm keeps its
 * policy in, and the schedule itself as a pure function. */
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

struct policy *policy_new(const char *name)
{
	struct policy *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->refs = 1;
	p->name = strdup(name);
	p->ack_timeout_ms = 15 * 60 * 1000;
	if (!p->name) {
		free(p);
		return NULL;
	}
	return p;
}

struct policy *policy_ref(struct policy *p)
{
	if (p)
		p->refs++;
	return p;
}

void policy_unref(struct policy *p)
{
	if (!p || --p->refs > 0)
		return;
	for (int i = 0; i < p->n_steps; i++) {
		for (int k = 0; k < p->steps[i].n_targets; k++)
			free(p->steps[i].targets[k].arg);
		free(p->steps[i].targets);
	}
	free(p->steps);
	free(p->name);
	free(p);
}

static int parse_target(const char *t, struct target *out, char *err, size_t errlen)
{
	const char *arg = NULL;
	memset(out, 0, sizeof(*out));
	if (!strcmp(t, "on_duty:@team")) {
		out->kind = TGT_ON_DUTY_RESIDENT_TEAM;
	} else if (!strcmp(t, "everyone")) {
		out->kind = TGT_EVERYONE;
	} else if (!strcmp(t, "on_duty:*")) {
		out->kind = TGT_ON_DUTY_ALL;
	} else if (!strncmp(t, "on_duty:", 8)) {
		out->kind = TGT_ON_DUTY_TEAM;
		arg = t + 8;
	} else if (!strncmp(t, "team:", 5)) {
		out->kind = TGT_TEAM;
		arg = t + 5;
	} else if (!strncmp(t, "worker:", 7)) {
		out->kind = TGT_WORKER;
		arg = t + 7;
	} else {
		snprintf(err, errlen, "unknown target \"%s\" (on_duty:@team, on_duty:TEAM, on_duty:*, "
		         "team:TEAM, worker:ID or everyone)", t);
		return -1;
	}
	if (arg) {
		if (!tc_device_id_valid(arg, strlen(arg))) {
			snprintf(err, errlen, "target \"%s\": a team or worker id is 1-64 of [A-Za-z0-9._-]", t);
			return -1;
		}
		out->arg = strdup(arg);
	}
	return 0;
}

int policy_parse_step(const char *value, struct step *st, char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	const char *w = strstr(value, " wait ");
	if (!w) {
		snprintf(err, errlen, "a step is \"TARGETS wait DURATION\", e.g. \"on_duty:@team wait 60s\"");
		return -1;
	}
	const char *dur = w + 6;
	while (*dur == ' ')
		dur++;
	if (tc_duration_parse(dur, &st->wait_ms) < 0 || st->wait_ms < 100) {
		snprintf(err, errlen, "step wait \"%s\" must be a duration of at least 100ms "
		         "(500ms, 30s, 2m, 1h, 1d)", dur);
		return -1;
	}
	char *targets = strndup(value, (size_t)(w - value)), *save = NULL;
	if (!targets) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char *t = strtok_r(targets, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		struct target *n = realloc(st->targets, (size_t)(st->n_targets + 1) * sizeof(*n));
		if (!n || parse_target(t, &n[st->n_targets], err, errlen) < 0) {
			if (n)
				st->targets = n;
			else
				snprintf(err, errlen, "out of memory");
			goto fail;
		}
		st->targets = n;
		st->n_targets++;
	}
	free(targets);
	if (st->n_targets == 0) {
		snprintf(err, errlen, "a step needs at least one target");
		return -1;
	}
	return 0;
fail:
	free(targets);
	for (int k = 0; k < st->n_targets; k++)
		free(st->targets[k].arg);
	free(st->targets);
	st->targets = NULL;
	st->n_targets = 0;
	return -1;
}

static struct policy *builtin(int priority)
{
	/* Used for a priority no [policy] section covers: the resident's team,
	 * then everyone on duty, with waits by urgency; never silent. */
	static const struct { const char *name; const char *steps[2]; int repeat; int64_t ack; } b[] = {
		{ "builtin-urgent", { "on_duty:@team wait 60s", "on_duty:* wait 60s" }, 2, 15 * 60000 },
		{ "builtin-high", { "on_duty:@team wait 2m", "on_duty:* wait 2m" }, 2, 30 * 60000 },
		{ "builtin-technical", { "on_duty:@team wait 15m", "on_duty:* wait 15m" }, 1, 120 * 60000 },
	};
	static struct policy *made[3];
	int i = priority <= 1 ? 0 : priority == 2 ? 1 : 2;
	if (made[i])
		return made[i];
	struct policy *p = policy_new(b[i].name);
	char err[128];
	if (!p)
		return NULL;
	p->steps = calloc(2, sizeof(*p->steps));
	for (int k = 0; p->steps && k < 2; k++)
		if (policy_parse_step(b[i].steps[k], &p->steps[k], err, sizeof(err)) == 0)
			p->n_steps++;
	p->repeat = b[i].repeat;
	p->ack_timeout_ms = b[i].ack;
	made[i] = p;  /* lives as long as the process: one reference kept here */
	return p;
}

struct policy *policy_everyone(void)
{
	/* For the gateway's "nobody to alert" alarm: when no step of an alarm's
	 * policy names anyone on duty, tell every registered worker. */
	static struct policy *made;
	char err[128];
	if (made)
		return made;
	struct policy *p = policy_new("builtin-everyone");
	if (!p || !(p->steps = calloc(1, sizeof(*p->steps))) ||
	    policy_parse_step("everyone wait 15m", &p->steps[0], err, sizeof(err)) < 0) {
		policy_unref(p);
		return NULL;
	}
	p->n_steps = 1;
	p->ack_timeout_ms = 2 * 3600000;
	made = p;   /* lives as long as the process */
	return p;
}

struct policy *policy_for(const struct config *c, int priority)
{
	for (size_t i = 0; c && i < c->n_policies; i++)
		if (priority >= 0 && priority < 32 && (c->policies[i]->priorities & (1u << priority)))
			return c->policies[i];
	return builtin(priority);
}

static const char *target_text(const struct target *t, char *buf, size_t len)
{
	switch (t->kind) {
	case TGT_ON_DUTY_RESIDENT_TEAM: return "on_duty:@team";
	case TGT_ON_DUTY_ALL: return "on_duty:*";
	case TGT_EVERYONE: return "everyone";
	case TGT_ON_DUTY_TEAM: snprintf(buf, len, "on_duty:%s", t->arg); break;
	case TGT_TEAM: snprintf(buf, len, "team:%s", t->arg); break;
	case TGT_WORKER: snprintf(buf, len, "worker:%s", t->arg); break;
	}
	return buf;
}

json_t *policy_json(const struct policy *p)
{
	json_t *steps = json_array();
	for (int i = 0; i < p->n_steps; i++) {
		char text[1024] = "", buf[96], dur[32];
		for (int k = 0; k < p->steps[i].n_targets; k++) {
			if (k)
				strncat(text, ",", sizeof(text) - strlen(text) - 1);
			strncat(text, target_text(&p->steps[i].targets[k], buf, sizeof(buf)),
			        sizeof(text) - strlen(text) - 1);
		}
		tc_duration_format(p->steps[i].wait_ms, dur, sizeof(dur));
		strncat(text, " wait ", sizeof(text) - strlen(text) - 1);
		strncat(text, dur, sizeof(text) - strlen(text) - 1);
		json_array_append_new(steps, json_string(text));
	}
	json_t *prios = json_array();
	for (int i = 0; i < 32; i++)
		if (p->priorities & (1u << i))
			json_array_append_new(prios, json_integer(i));
	return json_pack("{s:s, s:o, s:o, s:i, s:I, s:s}", "name", p->name, "priorities", prios,
	                 "steps", steps, "repeat", p->repeat, "ack_timeout_ms",
	                 (json_int_t)p->ack_timeout_ms, "on_cancel",
	                 p->cancel_resolves ? "resolve" : "keep");
}

struct policy *policy_from_json(json_t *j)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	json_t *steps = json_object_get(j, "steps"), *v;
	if (!name || !json_is_array(steps) || json_array_size(steps) == 0)
		return NULL;
	struct policy *p = policy_new(name);
	if (!p)
		return NULL;
	p->steps = calloc(json_array_size(steps), sizeof(*p->steps));
	size_t i;
	char err[256];
	json_array_foreach(steps, i, v) {
		if (!p->steps || !json_is_string(v) ||
		    policy_parse_step(json_string_value(v), &p->steps[p->n_steps], err, sizeof(err)) < 0) {
			policy_unref(p);
			return NULL;
		}
		p->n_steps++;
	}
	json_array_foreach(json_object_get(j, "priorities"), i, v)
		if (json_integer_value(v) >= 0 && json_integer_value(v) < 32)
			p->priorities |= 1u << json_integer_value(v);
	p->repeat = (int)json_integer_value(json_object_get(j, "repeat"));
	if (json_is_integer(json_object_get(j, "ack_timeout_ms")))
		p->ack_timeout_ms = json_integer_value(json_object_get(j, "ack_timeout_ms"));
	const char *oc = json_string_value(json_object_get(j, "on_cancel"));
	p->cancel_resolves = oc && !strcmp(oc, "resolve");
	return p;
}

bool policy_exhausted(const struct policy *p, int step, int round)
{
	return round >= p->repeat && step >= p->n_steps - 1;
}

void policy_advance(const struct policy *p, int *step, int *round)
{
	if (*step < 0) {
		*step = 0;
		*round = 0;
	} else if (*step + 1 < p->n_steps) {
		(*step)++;
	} else if (*round < p->repeat) {
		/* SPEC 4: after the last step the chain starts again `repeat` times */
		(*round)++;
		*step = 0;
	}
	/* ...and after that the last step repeats at its own wait: unchanged. */
}

int64_t policy_next(const struct policy *p, int *step, int *round, int64_t now,
                    bool (*has_targets)(void *ctx, int step, int round), void *ctx)
{
	int empties = 0;
	for (;;) {
		policy_advance(p, step, round);
		if (has_targets(ctx, *step, *round))
			break;
		/* SPEC 4: a step that alerts nobody is skipped at once... */
		if (policy_exhausted(p, *step, *round))
			break;  /* ...but the last step keeps its wait, and keeps trying */
		if (++empties >= p->n_steps) {
			/* A whole chain found nobody: go straight to repeating the
			 * last step, instead of recording the same news many times. */
			*round = p->repeat;
			*step = p->n_steps - 1;
			break;
		}
	}
	return now + p->steps[*step].wait_ms;
}
