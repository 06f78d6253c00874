/* Console users (SPEC 6.1): a name, a role, maybe the worker they are, and
 * a yescrypt hash of their password. Kept in memory like the rest of the
 * registry; every change is queued to the `users` table. Removal keeps the
 * row (removed_at) but wipes its hash. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "telecared.h"
#include "telecare/timefmt.h"

struct user *user_get(struct manager *m, const char *name)
{
	return name ? map_get(&m->users, name) : NULL;
}

void user_free(struct user *u)
{
	if (!u)
		return;
	free(u->name);
	free(u->worker);
	if (u->hash)
		explicit_bzero(u->hash, strlen(u->hash));
	free(u->hash);
	free(u);
}

static void save(struct manager *m, const struct user *u)
{
	store_write(m, ST_USER_UPSERT, "sssstt", u->name, role_name(u->role), u->worker, u->hash,
	            u->created_at, u->changed_at);
}

int user_put(struct manager *m, struct user *u)
{
	struct user *old = user_get(m, u->name);
	if (old != u) {
		if (map_put(&m->users, u->name, u) < 0) {
			user_free(u);
			return -1;
		}
		user_free(old);
	}
	save(m, u);
	return 0;
}

void user_remove(struct manager *m, const char *name)
{
	store_write(m, ST_USER_DELETE, "ts", tc_now_ms(), name);
	user_free(map_del(&m->users, name));
}

json_t *user_json(const struct user *u)
{
	return json_pack("{s:s, s:s, s:o, s:o, s:o}", "name", u->name, "role", role_name(u->role),
	                 "worker", json_str_or_null(u->worker),
	                 "created_at", json_time_or_null(u->created_at),
	                 "changed_at", json_time_or_null(u->changed_at));
}

static int load_one(void *ctx, const char *name, const char *role, const char *worker,
                    const char *hash, int64_t created_at, int64_t changed_at)
{
	struct manager *m = ctx;
	struct user *u = calloc(1, sizeof(*u));
	if (!u)
		return -1;
	u->role = role_from_name(role);
	u->name = strdup(name);
	u->worker = worker ? strdup(worker) : NULL;
	u->hash = strdup(hash);
	u->created_at = created_at;
	u->changed_at = changed_at;
	if (!u->name || !u->hash || (worker && !u->worker) || map_put(&m->users, u->name, u) < 0) {
		user_free(u);
		return -1;
	}
	if (u->role == ROLE_NONE)
		log_warning("user %s has an unknown role \"%s\": they can do nothing", name, role);
	return 0;
}

int users_load(struct manager *m)
{
	char err[256];
	if (q_users(m, load_one, m, err, sizeof(err)) < 0) {
		log_error("database %s: cannot load the console users: %s", m->cfg->store_path, err);
		return -EIO;
	}
	return 0;
}

void users_free(struct manager *m)
{
	void *v;
	for (size_t it = 0; map_next(&m->users, &it, NULL, &v);)
		user_free(v);
	map_free(&m->users);
}

enum role users_role_of_worker(struct manager *m, const char *worker_id)
{
	enum role best = ROLE_WORKER;
	void *v;
	for (size_t it = 0; worker_id && map_next(&m->users, &it, NULL, &v);) {
		const struct user *u = v;
		if (u->worker && !strcmp(u->worker, worker_id) && u->role > best)
			best = u->role;
	}
	return best;
}

/* ---- checking a password (the HTTP login) ---- */

struct users_check {
	struct manager *m;
	char name[TC_DEVICE_ID_MAX + 1];
	bool known;
	struct hash_job *job;
	users_verify_fn fn;
	void *data;
};

/* Compare without leaking where the first difference is. */
static bool same_secret(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned char d = la != lb;
	for (size_t i = 0; i < la && i < lb; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static void checked(struct manager *m, void *data, const char *hash, const char *error)
{
	struct users_check *c = data;
	struct actor who = { .kind = ACTOR_USER, .role = ROLE_NONE };
	/* The user may have been removed or given a new password meanwhile:
	 * what counts is the hash they have now. */
	struct user *u = user_get(m, c->name);
	bool good = c->known && hash && u && u->hash && same_secret(hash, u->hash) &&
	            u->role != ROLE_NONE;
	if (error)
		log_error("user %s: cannot check the password: %s", c->name, error);
	if (good) {
		who.role = u->role;
		snprintf(who.id, sizeof(who.id), "%s", u->name);
		snprintf(who.worker, sizeof(who.worker), "%s", u->worker ? u->worker : "");
	}
	c->fn(m, c->data, good, good ? &who : NULL);
	free(c);
}

struct users_check *users_verify(struct manager *m, const char *name, const char *password,
                                 users_verify_fn fn, void *data)
{
	/* A yescrypt setting for names that do not exist: the same work is done
	 * for them, so the answer's time does not tell which names exist. */
	static const char unknown_setting[] = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1";
	if (!password || strlen(password) > 1024)
		return NULL;
	struct users_check *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	struct user *u = name && tc_device_id_valid(name, strlen(name)) ? user_get(m, name) : NULL;
	c->m = m;
	c->known = u && u->hash && u->hash[0] == '$';
	snprintf(c->name, sizeof(c->name), "%s", u ? u->name : "");
	c->fn = fn;
	c->data = data;
	c->job = hash_check(m, password, c->known ? u->hash : unknown_setting, checked, c);
	if (!c->job) {
		free(c);
		return NULL;
	}
	return c;
}

void users_verify_cancel(struct users_check *c)
{
	if (!c)
		return;
	hash_job_cancel(c->job);
	free(c);
}
