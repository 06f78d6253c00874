/* The API's routes (docs/HTTP.md): each method and path names a command of
 * the one command table, with its arguments from the path, the query and
 * the body. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "telecare/device_csv.h"
#include "telecare/timefmt.h"

/* ---- routes ---- */

enum { BODY = 1, CSV = 2, QUERY = 4 };

static const struct route {
	const char *method, *path;   /* ":id" and ":name" capture a segment */
	const char *cmd;
	unsigned flags;
} routes[] = {
	{ "GET", "status", "status", 0 },
	{ "GET", "alarms", "alarm.list", QUERY },
	{ "GET", "alarms/:id", "alarm.show", 0 },
	{ "POST", "alarms/:id/actions", NULL, BODY },
	{ "GET", "residents", "resident.list", 0 },
	{ "POST", "residents", "resident.add", BODY },
	{ "GET", "residents/:id", "resident.show", 0 },
	{ "DELETE", "residents/:id", "resident.remove", 0 },
	{ "GET", "devices", "device.list", 0 },
	{ "POST", "devices", "device.add", BODY },
	{ "GET", "devices/unknown", "device.unknown", 0 },
	{ "POST", "devices/import", "device.import", CSV },
	{ "GET", "devices/:id", "device.show", 0 },
	{ "DELETE", "devices/:id", "device.remove", 0 },
	{ "POST", "devices/:id/adopt", "device.adopt", BODY },
	{ "POST", "devices/:id/test", "device.test", 0 },
	{ "GET", "sources/unmapped", "source.unmapped", 0 },
	{ "GET", "events", "events", QUERY },
	{ "GET", "workers", "worker.list", 0 },
	{ "POST", "workers", "worker.add", BODY },
	{ "GET", "workers/:id", "worker.show", 0 },
	{ "DELETE", "workers/:id", "worker.remove", 0 },
	{ "GET", "shifts", "shift.list", QUERY },
	{ "POST", "shifts", "shift.add", BODY },
	{ "DELETE", "shifts/:id", "shift.remove", 0 },
	{ "GET", "oncall", "oncall", QUERY },
	{ "GET", "oncall/gaps", "oncall.gaps", QUERY },
	{ "GET", "report", "report", QUERY },
	{ "GET", "users", "user.list", 0 },
	{ "POST", "users", "user.add", BODY },
	{ "PUT", "users/:name/password", "user.passwd", BODY },
	{ "DELETE", "users/:name", "user.remove", 0 },
};

/* Does path match pattern? The captured segment (at most one) in cap. */
static bool match(const char *pattern, const char *path, char *cap, size_t caplen, char *key,
                  size_t keylen)
{
	cap[0] = key[0] = '\0';
	while (*pattern && *path) {
		if (*pattern == ':') {
			const char *pend = strchr(pattern, '/'), *send = strchr(path, '/');
			size_t plen = pend ? (size_t)(pend - pattern) : strlen(pattern);
			size_t slen = send ? (size_t)(send - path) : strlen(path);
			if (!slen || slen >= caplen || plen - 1 >= keylen)
				return false;
			memcpy(key, pattern + 1, plen - 1);
			key[plen - 1] = '\0';
			memcpy(cap, path, slen);
			cap[slen] = '\0';
			pattern += plen;
			path += slen;
			continue;
		}
		if (*pattern != *path)
			return false;
		pattern++;
		path++;
	}
	return !*pattern && !*path;
}

/* A captured id as the command wants it: shifts and alarms are numbers. */
static json_t *capture_json(const char *cmd, const char *cap)
{
	if (cmd && (!strncmp(cmd, "shift.", 6) || !strncmp(cmd, "alarm.", 6))) {
		char *end;
		long long v = strtoll(cap, &end, 10);
		if (*cap && !*end)
			return json_integer(v);
	}
	return json_string(cap);
}

struct query {
	json_t *args;
};

static enum MHD_Result on_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
	struct query *q = cls;
	(void)kind;
	if (!key || !value)
		return MHD_YES;
	static const char *ints[] = { "limit", "hours" };
	static const char *strs[] = { "device", "at", "team", "from", "to" };
	for (size_t i = 0; i < 2; i++) {
		if (!strcmp(key, ints[i])) {
			char *end;
			long long v = strtoll(value, &end, 10);
			json_object_set_new(q->args, key, *value && !*end ? json_integer(v)
			                                                  : json_string(value));
			return MHD_YES;
		}
	}
	for (size_t i = 0; i < 5; i++)
		if (!strcmp(key, strs[i]) && tc_utf8_valid(value, strlen(value)))
			json_object_set_new(q->args, key, json_string(value));
	if (!strcmp(key, "state") && !strcmp(value, "open"))
		json_object_set_new(q->args, "open", json_true());
	return MHD_YES;
}

static json_t *body_json(struct req *r, const char **why)
{
	json_error_t err;
	if (!r->len) {
		*why = NULL;
		return json_object();
	}
	if (!tc_utf8_valid(r->body, r->len)) {
		*why = "the body is not UTF-8";
		return NULL;
	}
	json_t *j = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(j)) {
		json_decref(j);
		*why = "the body is not one JSON object";
		return NULL;
	}
	return j;
}

static enum MHD_Result alarm_action(struct http *h, struct req *r, int64_t id)
{
	const char *why;
	json_t *body = body_json(r, &why);
	if (!body)
		return http_send_error(r->conn, MHD_HTTP_BAD_REQUEST, why, 0);
	const char *action = json_string_value(json_object_get(body, "action"));
	static const char *actions[] = { "ack", "decline", "note", "resolve" };
	size_t k = 0;
	while (k < 4 && (!action || strcmp(action, actions[k])))
		k++;
	if (k == 4) {
		json_decref(body);
		return http_send_error(r->conn, MHD_HTTP_BAD_REQUEST,
		                  "\"action\" must be ack, decline, note or resolve", 0);
	}
	char cmd[32];
	snprintf(cmd, sizeof(cmd), "alarm.%s", action);
	json_t *args = json_pack("{s:I}", "id", (json_int_t)id);
	const char *keys[] = { "outcome", "note", "as" };
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_object_get(body, keys[i]);
		if (v && !json_is_null(v))
			json_object_set(args, keys[i], v);
	}
	r->kind = R_ACTION;
	r->alarm = id;
	snprintf(r->action, sizeof(r->action), "%s", action);
	json_decref(body);
	return http_command(h, r, cmd, args);
}

static enum MHD_Result device_import(struct http *h, struct req *r)
{
	json_t *rows = NULL;
	char msg[2048];
	if (device_csv(r->body ? r->body : "", r->len, &rows, msg, sizeof(msg)) < 0)
		return http_send_error(r->conn, MHD_HTTP_BAD_REQUEST, msg, 0);
	return http_command(h, r, "device.import", json_pack("{s:o}", "rows", rows));
}

static bool changes_state(const char *method)
{
	return strcmp(method, "GET") && strcmp(method, "HEAD");
}

enum MHD_Result http_api(struct http *h, struct req *r, const char *path, const char *method)
{
	if (!strcmp(path, "session")) {
		if (!strcmp(method, "POST"))
			return http_login(h, r);
	}
	if (changes_state(method)) {
		/* A cross-site form cannot set this header (docs/HTTP.md: CSRF). */
		const char *xrw = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		                                              "X-Requested-With");
		if (!xrw || strcmp(xrw, "telecare"))
			return http_send_error(r->conn, MHD_HTTP_FORBIDDEN, "a state-changing request needs "
			                  "the header X-Requested-With: telecare", 0);
	}
	r->s = session_find(h, r->conn);
	if (!r->s || !session_actor(h, r->s, &r->who))
		return http_send_error(r->conn, MHD_HTTP_UNAUTHORIZED, "not logged in, or the session ended", 0);
	if (!strcmp(path, "session")) {
		if (!strcmp(method, "DELETE")) {
			http_logout(h, r->s);
			r->s = NULL;
			return http_send_json(r->conn, MHD_HTTP_NO_CONTENT, NULL,
			                 "tc_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
		}
		if (!strcmp(method, "GET")) {
			int64_t left = h->m->cfg->http.session_max_ms - (tc_mono_ms() - r->s->created);
			json_t *j = json_pack("{s:{s:s, s:s, s:o}, s:o}", "user", "name", r->who.id,
			                      "role", role_name(r->who.role),
			                      "worker", json_str_or_null(r->who.worker[0] ? r->who.worker
			                                                                 : NULL),
			                      "expires_at", json_time_or_null(tc_now_ms() + left));
			enum MHD_Result rc = http_send_json(r->conn, MHD_HTTP_OK, j, NULL);
			json_decref(j);
			return rc;
		}
		return http_send_error(r->conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET, POST or DELETE", 0);
	}
	if (!strcmp(path, "stream") && !strcmp(method, "GET"))
		return stream_open(h, r, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
		                                                     "Last-Event-ID"));

	char cap[TC_DEVICE_ID_MAX + 1], key[16];
	bool path_known = false;
	for (size_t i = 0; i < sizeof(routes) / sizeof(*routes); i++) {
		const struct route *rt = &routes[i];
		if (!match(rt->path, path, cap, sizeof(cap), key, sizeof(key)))
			continue;
		path_known = true;
		if (strcmp(rt->method, method))
			continue;
		if (!rt->cmd) {
			char *end;
			long long id = strtoll(cap, &end, 10);
			if (!*cap || *end)
				return http_send_error(r->conn, MHD_HTTP_BAD_REQUEST, "an alarm id is a number", 0);
			return alarm_action(h, r, id);
		}
		if (rt->flags & CSV)
			return device_import(h, r);
		json_t *args;
		if (rt->flags & BODY) {
			const char *why;
			if (!(args = body_json(r, &why)))
				return http_send_error(r->conn, MHD_HTTP_BAD_REQUEST, why, 0);
		} else {
			args = json_object();
		}
		if (rt->flags & QUERY) {
			struct query q = { args };
			MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, on_query, &q);
		}
		if (*cap)
			json_object_set_new(args, key, capture_json(rt->cmd, cap));
		if (!strcmp(rt->cmd, "device.test")) {
			r->kind = R_TEST;
			snprintf(r->test_device, sizeof(r->test_device), "%s", cap);
		}
		return http_command(h, r, rt->cmd, args);
	}
	return http_send_error(r->conn, path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
	                  path_known ? "that method is not allowed here" : "no such API path", 0);
}

