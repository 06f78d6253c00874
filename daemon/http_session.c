/* Console sessions and logins (docs/HTTP.md). A session is a random token
 * in an HttpOnly, SameSite=Strict cookie, kept in memory: it ends after
 * [http] session_idle unused, session_max after login, at logout, when its
 * user is removed or their password changes, and at a restart. Passwords
 * are checked off the loop (users_verify); failed logins are slowed per
 * user and per address, doubling from 1 s to 60 s. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http.h"
#include "telecare/timefmt.h"

#define THROTTLE_FIRST_MS 1000
#define THROTTLE_MAX_MS   60000
#define THROTTLE_KEEP     10000   /* entries kept per map; older quiet ones dropped */

static void token_new(char *out, size_t len)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[32];
	size_t got = 0;
	while (got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	size_t o = 0;
	for (size_t i = 0; i < sizeof(raw) && o + 4 < len; i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (i + 1 < sizeof(raw) ? (uint32_t)raw[i + 1] << 8 : 0) |
		             (i + 2 < sizeof(raw) ? raw[i + 2] : 0);
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		if (i + 1 < sizeof(raw))
			out[o++] = b64[(v >> 6) & 63];
		if (i + 2 < sizeof(raw))
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	explicit_bzero(raw, sizeof(raw));
}

struct session *session_find(struct http *h, struct MHD_Connection *c)
{
	const char *token = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, "tc_session");
	if (!token || strlen(token) >= sizeof(((struct session *)0)->token))
		return NULL;
	return map_get(&h->sessions, token);
}

static void session_end(struct http *h, struct session *s)
{
	if (s->test_device[0]) {
		struct device *d = device_get(h->m, s->test_device);
		if (d)
			d->testing = false;
	}
	free(map_del(&h->sessions, s->token));
}

bool session_actor(struct http *h, struct session *s, struct actor *who)
{
	int64_t now = tc_mono_ms();
	struct user *u = user_get(h->m, s->user);
	if (!u || u->changed_at != s->changed_at || now - s->last > h->m->cfg->http.session_idle_ms ||
	    now - s->created > h->m->cfg->http.session_max_ms) {
		session_end(h, s);
		return false;
	}
	s->last = now;
	/* The role is the user's now: a changed role applies at once. */
	*who = (struct actor){ .kind = ACTOR_USER, .role = u->role };
	snprintf(who->id, sizeof(who->id), "%s", u->name);
	snprintf(who->name, sizeof(who->name), "%s", u->name);
	if (u->worker)
		snprintf(who->worker, sizeof(who->worker), "%s", u->worker);
	return true;
}

void http_logout(struct http *h, struct session *s)
{
	session_end(h, s);
}

void sessions_tick(struct http *h)
{
	int64_t now = tc_mono_ms();
	const char *k;
	void *v;
	char **old = calloc(h->sessions.len + 1, sizeof(*old));
	size_t n = 0;
	for (size_t it = 0; old && map_next(&h->sessions, &it, &k, &v);) {
		struct session *s = v;
		if (now - s->last > h->m->cfg->http.session_idle_ms ||
		    now - s->created > h->m->cfg->http.session_max_ms)
			old[n++] = strdup(k);
		else if (s->test_device[0] && now - s->test_started > 10 * 60000) {
			/* A device test nobody saw end: its device is not on test forever. */
			struct device *d = device_get(h->m, s->test_device);
			if (d)
				d->testing = false;
			s->test_device[0] = '\0';
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct session *s = old[i] ? map_get(&h->sessions, old[i]) : NULL;
		if (s)
			session_end(h, s);
		free(old[i]);
	}
	free(old);
}

void sessions_free(struct http *h)
{
	void *v;
	for (size_t it = 0; map_next(&h->sessions, &it, NULL, &v);)
		free(v);
	map_free(&h->sessions);
	struct map *maps[] = { &h->throttle_user, &h->throttle_addr };
	for (size_t i = 0; i < 2; i++) {
		for (size_t it = 0; map_next(maps[i], &it, NULL, &v);)
			free(v);
		map_free(maps[i]);
	}
}

/* ---- failed logins ---- */

static struct throttle *throttle_get(struct map *map, const char *key, bool create)
{
	struct throttle *t = map_get(map, key);
	if (t || !create)
		return t;
	if (map->len >= THROTTLE_KEEP) {
		/* Forget the quiet ones: past their wait and their doubling. */
		int64_t now = tc_mono_ms();
		const char *k;
		void *v;
		char **drop = calloc(map->len, sizeof(*drop));
		size_t n = 0;
		for (size_t it = 0; drop && map_next(map, &it, &k, &v);)
			if (now - ((struct throttle *)v)->until > THROTTLE_MAX_MS)
				drop[n++] = strdup(k);
		for (size_t i = 0; i < n; i++) {
			free(drop[i] ? map_del(map, drop[i]) : NULL);
			free(drop[i]);
		}
		free(drop);
		if (map->len >= THROTTLE_KEEP)
			return NULL;   /* all busy: the address limit still holds */
	}
	t = calloc(1, sizeof(*t));
	if (t && map_put(map, key, t) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static void throttle_fail(struct throttle *t)
{
	if (!t)
		return;
	int64_t wait = THROTTLE_FIRST_MS;
	for (int i = 0; i < t->fails && wait < THROTTLE_MAX_MS; i++)
		wait *= 2;
	if (wait > THROTTLE_MAX_MS)
		wait = THROTTLE_MAX_MS;
	t->fails++;
	t->until = tc_mono_ms() + wait;
}

static void on_verified(struct manager *m, void *data, bool ok, const struct actor *who)
{
	struct req *r = data;
	struct http *h = m->http;
	if (!ok) {
		h->count.login_failures++;
		throttle_fail(throttle_get(&h->throttle_user, r->login_user, true));
		throttle_fail(throttle_get(&h->throttle_addr, r->addr, true));
		log_warning("http: failed login as %s from %s", r->login_user, r->addr);
		http_ready(r, MHD_HTTP_UNAUTHORIZED, json_pack("{s:s}", "error",
		                                               "wrong user name or password"));
		return;
	}
	struct session *s = calloc(1, sizeof(*s));
	struct user *u = user_get(m, who->id);
	if (!s || !u) {
		free(s);
		http_ready(r, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "error", "out of memory"));
		return;
	}
	token_new(s->token, sizeof(s->token));
	snprintf(s->user, sizeof(s->user), "%s", u->name);
	s->changed_at = u->changed_at;
	s->created = s->last = tc_mono_ms();
	if (map_put(&h->sessions, s->token, s) < 0) {
		free(s);
		http_ready(r, MHD_HTTP_SERVICE_UNAVAILABLE, json_pack("{s:s}", "error", "out of memory"));
		return;
	}
	free(map_del(&h->throttle_user, u->name));
	h->count.logins++;
	bool tls = m->cfg->http.cert != NULL;
	if (asprintf(&r->set_cookie, "tc_session=%s; Path=/; HttpOnly; SameSite=Strict%s", s->token,
	             tls ? "; Secure" : "") < 0)
		r->set_cookie = NULL;
	log_info("http: %s (%s) logged in from %s", u->name, role_name(u->role), r->addr);
	http_ready(r, MHD_HTTP_OK, json_pack("{s:{s:s, s:s, s:o}, s:o}", "user", "name", u->name,
	                                     "role", role_name(u->role),
	                                     "worker", json_str_or_null(u->worker),
	                                     "expires_at", json_time_or_null(
	                                             tc_now_ms() + m->cfg->http.session_max_ms)));
}

enum MHD_Result http_login(struct http *h, struct req *r)
{
	json_error_t err;
	json_t *body = r->len && tc_utf8_valid(r->body, r->len)
	               ? json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err) : NULL;
	const char *user = json_string_value(json_object_get(body, "username"));
	const char *pw = json_string_value(json_object_get(body, "password"));
	int status = 0, retry = 0;
	const char *msg = NULL;
	char wait[96];
	if (!user || !pw || !tc_device_id_valid(user, strlen(user))) {
		status = MHD_HTTP_BAD_REQUEST;
		msg = "a login is {\"username\": ..., \"password\": ...}";
	} else {
		int64_t now = tc_mono_ms();
		struct throttle *tu = throttle_get(&h->throttle_user, user, false);
		struct throttle *ta = throttle_get(&h->throttle_addr, r->addr, false);
		int64_t until = tu ? tu->until : 0;
		if (ta && ta->until > until)
			until = ta->until;
		if (until > now) {
			h->count.throttled++;
			status = MHD_HTTP_TOO_MANY_REQUESTS;
			retry = (int)((until - now + 999) / 1000);
			snprintf(wait, sizeof(wait), "too many failed logins: try again in %d s", retry);
			msg = wait;
		}
	}
	if (status) {
		json_decref(body);
		return http_send_error(r->conn, status, msg, retry);
	}
	snprintf(r->login_user, sizeof(r->login_user), "%s", user);
	r->kind = R_LOGIN;
	r->check = users_verify(h->m, user, pw, on_verified, r);
	explicit_bzero(r->body, r->len);
	json_decref(body);
	if (r->ready)
		return http_send_json(r->conn, r->status, r->answer, r->set_cookie);
	if (!r->check)
		return http_send_error(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE,
		                       "too many logins at once: try again", 1);
	http_park(h, r);
	return MHD_YES;
}
