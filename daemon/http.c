/* HTTP (docs/HTTP.md, SPEC 8): the console's files and its JSON API, served
 * from the daemon's own event loop.
 *
 * libmicrohttpd runs in external-epoll mode: its epoll fd is an sd-event io
 * source, its timeout an sd-event timer re-armed after every MHD_run(), the
 * way systemd-journal-remote drives it. No thread, no blocking: a request
 * whose answer waits (a command's commit, a login's hash) is suspended and
 * resumed when the answer is there; an event stream is suspended while it
 * has nothing to send. Every API request runs through the command table
 * (command.c), the same one place that decides what a role may do on the
 * control socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "http.h"
#include "telecare/timefmt.h"

#define CONNECTIONS_MAX   512
#define PER_ADDRESS_MAX   128
#define IDLE_TIMEOUT_S    120

static const char *security_headers[][2] = {
	{ "Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; "
	  "img-src 'self' data:; connect-src 'self'; media-src 'self' data:; "
	  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'" },
	{ "X-Frame-Options", "DENY" },
	{ "X-Content-Type-Options", "nosniff" },
	{ "Referrer-Policy", "no-referrer" },
};

/* ---- libmicrohttpd on the loop ---- */

static void run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	MHD_run(h->d);
	int r;
	if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
		r = sd_event_source_set_time_relative(h->timer, ms * 1000);
		if (r >= 0)
			r = sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
	} else {
		r = sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
	}
	if (r < 0)
		log_error("http: cannot arm the timer: %s", strerror(-r));
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	run(userdata);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	run(userdata);
	return 0;
}

static int on_later(sd_event_source *s, void *userdata)
{
	(void)s;
	run(userdata);
	return 0;
}

void http_run_later(struct http *h)
{
	if (h->later)
		sd_event_source_set_enabled(h->later, SD_EVENT_ONESHOT);
}

static int on_keepalive(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct http *h = userdata;
	(void)usec;
	streams_keepalive(h);
	sessions_tick(h);
	sd_event_source_set_time_relative(s, STREAM_KEEPALIVE_US);
	return 0;
}

/* ---- answers ---- */

static void add_headers(struct MHD_Response *resp, bool api)
{
	for (size_t i = 0; i < sizeof(security_headers) / sizeof(*security_headers); i++)
		MHD_add_response_header(resp, security_headers[i][0], security_headers[i][1]);
	if (api)
		MHD_add_response_header(resp, "Cache-Control", "no-store");
}

enum MHD_Result http_send_json(struct MHD_Connection *c, int status, json_t *j,
                               const char *set_cookie)
{
	/* ENCODE_ANY: a command's data may be null (a removal) or a bare value. */
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(10)) : NULL;
	struct MHD_Response *resp;
	if (status == MHD_HTTP_NO_CONTENT || !j)
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	else if (text)
		resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	else
		resp = NULL;
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	if (j && status != MHD_HTTP_NO_CONTENT)
		MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	add_headers(resp, true);
	if (set_cookie)
		MHD_add_response_header(resp, "Set-Cookie", set_cookie);
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rc;
}

enum MHD_Result http_send_error(struct MHD_Connection *c, int status, const char *msg,
                                int retry_after)
{
	json_t *j = json_pack("{s:s}", "error", msg);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	struct MHD_Response *resp = text ? MHD_create_response_from_buffer(strlen(text), text,
	                                                                   MHD_RESPMEM_MUST_FREE)
	                                 : NULL;
	if (!resp) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	add_headers(resp, true);
	if (retry_after > 0) {
		char v[16];
		snprintf(v, sizeof(v), "%d", retry_after);
		MHD_add_response_header(resp, "Retry-After", v);
	}
	enum MHD_Result rc = MHD_queue_response(c, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *msg)
{
	return http_send_error(c, status, msg, 0);
}

/* A command's refusal as an HTTP status (docs/HTTP.md). The command table
 * speaks in sentences; these are the ones the API distinguishes. */
static int status_of_error(const char *e)
{
	if (!e || !strncmp(e, "nothing imported", 16))   /* bad lines of a file: the file is bad */
		return MHD_HTTP_BAD_REQUEST;
	if (!strncmp(e, "permission denied", 17))
		return MHD_HTTP_FORBIDDEN;
	if (!strncmp(e, "not stored", 10) || strstr(e, "not yet on disk"))
		return MHD_HTTP_SERVICE_UNAVAILABLE;
	if (strstr(e, "does not exist") || strstr(e, "is not registered") || strstr(e, "no such"))
		return MHD_HTTP_NOT_FOUND;
	if (strstr(e, "already") || strstr(e, "still has") || strstr(e, "has not alerted") ||
	    strstr(e, "held by") || strstr(e, "is not acknowledged") || strstr(e, "nothing to decline") ||
	    strstr(e, "not alerted by the current step"))
		return MHD_HTTP_CONFLICT;
	return MHD_HTTP_BAD_REQUEST;
}

static void unpark(struct http *h, struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (h->parked == r)
		h->parked = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

void http_park(struct http *h, struct req *r)
{
	r->suspended = true;
	r->prev = NULL;
	r->next = h->parked;
	if (h->parked)
		h->parked->prev = r;
	h->parked = r;
	MHD_suspend_connection(r->conn);
}

void http_ready(struct req *r, int status, json_t *answer)
{
	r->status = status;
	json_decref(r->answer);
	r->answer = answer;
	r->ready = true;
	r->call = NULL;
	r->check = NULL;
	if (r->suspended) {
		r->suspended = false;
		unpark(r->m->http, r);
		MHD_resume_connection(r->conn);
		http_run_later(r->m->http);
	}
}

/* A command's answer: {"ok": true, "data"} -> 200 data; else the error. */
static void on_answer(struct manager *m, void *data, json_t *answer)
{
	struct req *r = data;
	(void)m;
	bool good = json_is_true(json_object_get(answer, "ok"));
	const char *err = json_string_value(json_object_get(answer, "error"));
	json_t *out;
	int status = good ? MHD_HTTP_OK : status_of_error(err);
	if (r->kind == R_ACTION) {
		/* answered like SPEC 2.5's result */
		out = json_pack("{s:I, s:s, s:b}", "alarm", (json_int_t)r->alarm, "action", r->action,
		                "ok", good);
		if (good)
			json_object_set(out, "data", json_object_get(answer, "data"));
		else
			json_object_set_new(out, "error", json_string(err ? err : "refused"));
	} else if (good) {
		out = json_incref(json_object_get(answer, "data"));
		if (!out)
			out = json_null();
		if (r->kind == R_TEST && r->s) {
			/* its stages follow on this session's stream */
			snprintf(r->s->test_device, sizeof(r->s->test_device), "%s", r->test_device);
			r->s->test_started = tc_mono_ms();
		}
	} else {
		out = json_pack("{s:s}", "error", err ? err : "refused");
	}
	json_decref(answer);
	http_ready(r, status, out);
}

enum MHD_Result http_command(struct http *h, struct req *r, const char *cmd, json_t *args)
{
	snprintf(r->cmd, sizeof(r->cmd), "%s", cmd);
	h->count.requests++;
	r->call = command_run(h->m, &r->who, cmd, args, on_answer, r);
	json_decref(args);
	if (r->ready)
		return http_send_json(r->conn, r->status, r->answer, r->set_cookie);
	/* The answer waits for the commit: park the connection until then. */
	http_park(h, r);
	return MHD_YES;
}

/* ---- static files ---- */

static const char *content_type(const char *path)
{
	static const char *types[][2] = {
		{ ".html", "text/html; charset=utf-8" }, { ".js", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" }, { ".json", "application/json; charset=utf-8" },
		{ ".svg", "image/svg+xml" }, { ".png", "image/png" }, { ".ico", "image/x-icon" },
		{ ".webmanifest", "application/manifest+json" }, { ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof(types) / sizeof(*types); i++)
		if (!strcmp(dot, types[i][0]))
			return types[i][1];
	return "application/octet-stream";
}

static enum MHD_Result static_file(struct http *h, struct req *r, const char *url)
{
	const char *rel = url + 1;
	if (!*rel)
		rel = "index.html";
	/* Only plain relative names inside the root: no "..", no hidden files. */
	if (strlen(rel) > 200 || strstr(rel, "..") || strstr(rel, "//") || rel[0] == '.' ||
	    strstr(rel, "/.") || !tc_utf8_valid(rel, strlen(rel)))
		return send_error(r->conn, MHD_HTTP_NOT_FOUND, "no such file");
	int fd = h->root_fd >= 0 ? openat(h->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return send_error(r->conn, MHD_HTTP_NOT_FOUND, "no such file");
	}
	struct MHD_Response *resp = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (!resp) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", content_type(rel));
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	add_headers(resp, false);
	enum MHD_Result rc = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return rc;
}

/* ---- requests ---- */

static void client_address(struct MHD_Connection *c, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	buf[0] = '\0';
	if (!ci || !ci->client_addr)
		return;
	const struct sockaddr *sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf,
		          (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf,
		          (socklen_t)len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	(void)version;
	if (!r) {
		/* The headers: set up, and take the body (if any) in the next calls. */
		if (!(r = calloc(1, sizeof(*r))))
			return MHD_NO;
		r->m = h->m;
		r->conn = c;
		r->max = strncmp(url, "/api/devices/import", 19) ? HTTP_BODY_MAX : HTTP_CSV_MAX;
		client_address(c, r->addr, sizeof(r->addr));
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (r->too_big || r->len + *upload_size > r->max) {
			r->too_big = true;   /* keep reading, to answer cleanly */
		} else {
			char *nb = realloc(r->body, r->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			r->body = nb;
			memcpy(r->body + r->len, upload, *upload_size);
			r->len += *upload_size;
			r->body[r->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->ready)   /* resumed with its answer */
		return http_send_json(c, r->status, r->answer, r->set_cookie);
	if (r->call || r->check || r->stream)
		return MHD_YES;   /* (cannot happen: a parked request is not called) */
	if (r->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, r->max == HTTP_CSV_MAX
		                  ? "a CSV import is at most 16 MiB" : "a request body is at most 1 MiB");
	if (!strncmp(url, "/api/", 5))
		return http_api(h, r, url + 5, method);
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "GET only");
	return static_file(h, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;
	(void)cls;
	(void)c;
	(void)toe;
	if (!r)
		return;
	if (r->call)
		command_cancel(r->call);
	if (r->check)
		users_verify_cancel(r->check);
	if (r->suspended)
		unpark(((struct http *)cls), r);
	json_decref(r->answer);
	free(r->set_cookie);
	free(r->body);
	free(r);
	*con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	/* A browser that closed its tab is news to nobody. */
	bool client_gone = strstr(msg, "no longer available") || strstr(msg, "reset by peer");
	log_full(client_gone ? LOG_INFO : LOG_WARNING, NULL, 0, NULL, "http: %s", msg);
}

static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t cap = 0, n = 0;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			char *nb = cap < (1u << 20) ? realloc(buf, cap + 65536) : NULL;
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
			cap += 65536;
		}
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		if (got < 4096)
			break;
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

int http_init(struct manager *m)
{
	const struct config *c = m->cfg;
	struct sockaddr_storage sa;
	if (!c->http.listen || !*c->http.listen)
		return 0;   /* [http] listen empty: no HTTP */
	if (tc_parse_listen(c->http.listen, &sa) < 0) {
		log_error("http: [http] listen %s is not HOST:PORT", c->http.listen);
		return -EINVAL;
	}
	struct http *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	m->http = h;
	h->m = m;
	h->next_id = 1;
	h->root_fd = open(c->http.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (h->root_fd < 0)
		log_warning("http: the console's files %s: %s; the API is served, the console is not",
		            c->http.root, strerror(errno));
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	char *cert = NULL, *key = NULL;
	if (c->http.cert) {
		flags |= MHD_USE_TLS;
		if (!(cert = read_pem(c->http.cert)) || !(key = read_pem(c->http.key))) {
			log_error("http: cannot read [http] cert %s or key %s: %s", c->http.cert,
			          c->http.key, strerror(errno));
			free(cert);
			free(key);
			return -EINVAL;
		}
	}
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, key },
		{ MHD_OPTION_END, 0, NULL },
	};
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h,
	                        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,   /* first: its rule */
	                        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	                        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
	                        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)PER_ADDRESS_MAX,
	                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
	                        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024),
	                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
	                        MHD_OPTION_ARRAY, cert ? tls : tls + 2,
	                        MHD_OPTION_END);
	if (cert)
		explicit_bzero(key, strlen(key));
	free(cert);
	free(key);
	if (!h->d) {
		log_error("http: cannot listen on %s (in use, or not an address of this host)",
		          c->http.listen);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
	int r = info ? sd_event_add_io(m->event, &h->io, info->epoll_fd, EPOLLIN, on_io, h) : -EIO;
	if (r >= 0)
		r = sd_event_add_time_relative(m->event, &h->timer, CLOCK_MONOTONIC, 1000000, 0,
		                               on_timer, h);
	if (r >= 0)
		r = sd_event_add_defer(m->event, &h->later, on_later, h);
	if (r >= 0)
		r = sd_event_source_set_enabled(h->later, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(m->event, &h->keepalive, CLOCK_MONOTONIC,
		                               STREAM_KEEPALIVE_US, 0, on_keepalive, h);
	if (r >= 0)
		r = sd_event_source_set_enabled(h->keepalive, SD_EVENT_ON);
	if (r < 0) {
		log_error("http: cannot watch the server: %s", strerror(-r));
		return r;
	}
	sd_event_source_set_description(h->io, "http");
	log_notice("http: serving the console and the API on %s%s", c->http.listen,
	           c->http.cert ? " (HTTPS)" : "");
	run(h);
	return 0;
}

void http_stop(struct manager *m)
{
	struct http *h = m->http;
	if (!h || !h->d)
		return;
	/* Parked connections must be resumed before MHD stops (its rule). */
	streams_free(h);
	while (h->parked) {
		struct req *r = h->parked;
		if (r->call)
			command_cancel(r->call);
		if (r->check)
			users_verify_cancel(r->check);
		http_ready(r, MHD_HTTP_SERVICE_UNAVAILABLE,
		           json_pack("{s:s}", "error", "telecared is stopping"));
	}
	MHD_quiesce_daemon(h->d);
}

void http_free(struct manager *m)
{
	struct http *h = m->http;
	if (!h)
		return;
	streams_free(h);
	if (h->d)
		MHD_stop_daemon(h->d);
	h->io = sd_event_source_disable_unref(h->io);
	h->timer = sd_event_source_disable_unref(h->timer);
	h->later = sd_event_source_disable_unref(h->later);
	h->keepalive = sd_event_source_disable_unref(h->keepalive);
	sessions_free(h);
	for (size_t i = 0; i < STREAM_RING; i++) {
		free(h->ring[i].data);
		json_decref(h->ring[i].alerted);
	}
	if (h->root_fd >= 0)
		close(h->root_fd);
	free(h);
	m->http = NULL;
}

json_t *http_status(const struct manager *m)
{
	const struct http *h = m->http;
	if (!h)
		return json_null();
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "listen", m->cfg->http.listen,
	                 "sessions", (json_int_t)h->sessions.len,
	                 "streams", (json_int_t)streams_count(h),
	                 "requests", (json_int_t)h->count.requests,
	                 "logins", (json_int_t)h->count.logins,
	                 "login_failures", (json_int_t)h->count.login_failures,
	                 "logins_throttled", (json_int_t)h->count.throttled,
	                 "streams_dropped", (json_int_t)h->count.streams_dropped);
}
