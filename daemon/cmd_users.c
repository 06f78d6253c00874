/* user.add / passwd / list / remove: console accounts (SPEC 6.1), admin
 * only. The runner has hashed the password in a child process before these
 * run: they get "hash", never the password, and never log either. */
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "telecare/timefmt.h"

static json_t *user_to_json(const void *u) { return user_json(u); }

json_t *cmd_user_add(struct manager *m, const struct actor *who, json_t *args)
{
	const char *name = arg_str(args, "name"), *worker = arg_str(args, "worker");
	const char *hash = arg_str(args, "hash");
	enum role role = role_from_name(arg_str(args, "role"));
	char label[160];
	if (user_get(m, name))
		return fail("user %s already exists", name);
	if (worker && !worker_get(m, worker))
		return fail("user %s: worker %s is not registered", name, worker);
	if (role == ROLE_WORKER && !worker)
		return fail("user %s: a user with the worker role needs --worker (the worker they are)",
		            name);
	if (!hash || strncmp(hash, "$y$", 3))
		return fail("user %s: the password could not be hashed", name);
	struct user *u = calloc(1, sizeof(*u));
	if (!u)
		return fail("out of memory");
	u->name = strdup(name);
	u->role = role;
	u->worker = dup_or_null(worker);
	u->hash = strdup(hash);
	u->created_at = tc_now_ms();
	if (!u->name || !u->hash || (worker && !u->worker)) {
		user_free(u);
		return fail("out of memory");
	}
	if (user_put(m, u) < 0)
		return fail("out of memory");
	log_notice("user %s (%s%s%s) added by %s", name, role_name(role), worker ? ", worker " : "",
	           worker ? worker : "", who_label(who, label, sizeof(label)));
	return ok(user_json(u));
}

json_t *cmd_user_passwd(struct manager *m, const struct actor *who, json_t *args)
{
	const char *name = arg_str(args, "name"), *hash = arg_str(args, "hash");
	char label[160];
	struct user *old = user_get(m, name);
	if (!old)
		return fail("user %s does not exist", name);
	if (!hash || strncmp(hash, "$y$", 3))
		return fail("user %s: the password could not be hashed", name);
	char *h = strdup(hash);
	if (!h)
		return fail("out of memory");
	explicit_bzero(old->hash, strlen(old->hash));
	free(old->hash);
	old->hash = h;
	old->changed_at = tc_now_ms();
	if (user_put(m, old) < 0)
		return fail("out of memory");
	log_notice("user %s: password changed by %s", name, who_label(who, label, sizeof(label)));
	return ok(user_json(old));
}

json_t *cmd_user_list(struct manager *m, const struct actor *who, json_t *args)
{
	(void)who;
	(void)args;
	return ok(sorted_list(&m->users, user_to_json));
}

json_t *cmd_user_remove(struct manager *m, const struct actor *who, json_t *args)
{
	const char *name = arg_str(args, "name");
	char label[160];
	if (!user_get(m, name))
		return fail("user %s does not exist", name);
	user_remove(m, name);
	log_notice("user %s removed by %s", name, who_label(who, label, sizeof(label)));
	return ok(NULL);
}
