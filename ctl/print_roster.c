/* The human output of workers, shifts, who is on call, and console users. */

#include <stdlib.h>
#include <string.h>

#include "telecarectl.h"

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
void print_worker(const struct call *c, const json_t *d)
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

void print_worker_list(const struct call *c, const json_t *d)
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
void print_shift(const struct call *c, const json_t *d)
{
	char *s = shift_when(d);
	(void)c;
	kv("shift:", json_object_get(d, "id"));
	kv("worker:", json_object_get(d, "worker"));
	kv("kind:", json_object_get(d, "kind"));
	printf("%-13s %s\n", "when:", s ? s : "?");
	free(s);
}

void print_shift_list(const struct call *c, const json_t *d)
{
	const json_t *at = json_object_get(c->args, TC_ARG_AT);
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

void print_oncall(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "ID", "NAME", "TEAMS", "PHONE", "SHIFT", NULL };
	const json_t *team = json_object_get(c->args, TC_ARG_TEAM);
	const json_t *at = json_object_get(c->args, TC_ARG_AT);
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

/* ---- console users */

/* user add: the account as the daemon has it now (or as asked, when the
 * answer carries no user) */
void print_user_added(const struct call *c, const json_t *d)
{
	const json_t *u = json_is_object(d) ? d : c->args;
	const json_t *worker = json_object_get(u, TC_ARG_WORKER);
	fputs("user ", stdout);
	put_value(stdout, json_object_get(u, TC_ARG_NAME));
	fputs(" added: ", stdout);
	put_value(stdout, json_object_get(u, TC_ARG_ROLE));
	if (worker && !json_is_null(worker)) {
		fputs(", worker ", stdout);
		put_value(stdout, worker);
	}
	putchar('\n');
}

void print_user_passwd(const struct call *c, const json_t *d)
{
	(void)d;
	fputs("user ", stdout);
	put_value(stdout, json_object_get(c->args, TC_ARG_NAME));
	puts(": password changed");
}

void print_user_list(const struct call *c, const json_t *d)
{
	static const char *const h[] = { "NAME", "ROLE", "WORKER", "CREATED", "CHANGED", NULL };
	static const char *const k[] = { "name", "role", "worker", "created_at", "changed_at", NULL };
	(void)c;
	print_rows(d, "no users", h, k);
}
