/* The HTTP front's parts (docs/HTTP.md), shared by http.c (libmicrohttpd on
 * the loop, routes, answers, static files), http_session.c (sessions and
 * logins) and http_stream.c (Server-Sent Events). The rest of the daemon
 * sees only the http_* functions in telecared.h. */
#ifndef TELECARE_HTTP_H
#define TELECARE_HTTP_H

#include <microhttpd.h>

#include "telecared.h"

#define HTTP_BODY_MAX     (1u << 20)     /* a JSON body */
#define HTTP_CSV_MAX      (16u << 20)    /* a device import */
#define STREAM_RING       4096           /* events kept for Last-Event-ID */
#define STREAM_BUF_MAX    (1u << 20)     /* a reader this far behind is dropped */
#define STREAM_KEEPALIVE_US (15 * 1000000ULL)

struct session {
	char token[48];             /* 32 random bytes, base64url */
	char user[TC_DEVICE_ID_MAX + 1];
	int64_t changed_at;         /* the user's, at login: a new password ends the session */
	int64_t created, last;      /* boottime ms */
	char test_device[TC_DEVICE_ID_MAX + 1];   /* a device test it started, or "" */
	int64_t test_started;       /* boottime ms */
};

struct stream;

/* One HTTP request, from its headers to its answer. */
struct req {
	struct req *prev, *next;     /* in http.parked while suspended */
	struct manager *m;
	struct MHD_Connection *conn;
	char *body;
	size_t len, max;
	bool too_big;
	struct session *s;
	struct actor who;
	struct command_call *call;   /* a command whose answer waits for a commit */
	struct users_check *check;   /* a login whose password is being checked */
	bool suspended;              /* waiting: the connection is parked */
	bool ready;                  /* status and answer are set */
	int status;
	json_t *answer;
	char *set_cookie;
	enum { R_PLAIN, R_ACTION, R_LOGIN, R_TEST } kind;
	int64_t alarm;               /* R_ACTION */
	char action[16];
	char cmd[32];
	char addr[64];               /* the client's address, for login throttling */
	char login_user[TC_DEVICE_ID_MAX + 1];
	char test_device[TC_DEVICE_ID_MAX + 1];
	struct stream *stream;       /* GET /api/stream */
};

struct throttle {
	int fails;
	int64_t until;               /* boottime ms: refused before then */
};

struct http {
	struct manager *m;
	struct MHD_Daemon *d;
	sd_event_source *io, *timer, *later, *keepalive;
	char *root;
	int root_fd;
	struct map sessions;         /* token -> struct session */
	struct map throttle_user, throttle_addr;   /* -> struct throttle */
	struct stream *streams;
	struct req *parked;          /* requests waiting for an answer */
	struct {
		uint64_t id;
		char event[16];
		char *data;
		int64_t alarm;           /* 0: not about one alarm */
		json_t *alerted;         /* the workers it alerted, for workers' streams */
		bool test;               /* an alarm of a device on test */
		char session[48];        /* a `test` event: only this session's stream */
	} ring[STREAM_RING];
	uint64_t next_id;            /* of the next event; the ring holds the latest */
	struct {
		uint64_t requests, logins, login_failures, throttled, streams_dropped;
	} count;
};

/* http.c */
void http_run_later(struct http *h);            /* MHD_run on the next pass */
enum MHD_Result http_send_json(struct MHD_Connection *c, int status, json_t *j,
                               const char *set_cookie);
/* {"error": msg}; retry_after > 0 adds Retry-After (seconds). */
enum MHD_Result http_send_error(struct MHD_Connection *c, int status, const char *msg,
                                int retry_after);
void http_ready(struct req *r, int status, json_t *answer);   /* and resume */
void http_park(struct http *h, struct req *r);  /* suspend until http_ready() */

/* Run a command for r; its answer is sent when it is there (parked until). */
enum MHD_Result http_command(struct http *h, struct req *r, const char *cmd, json_t *args);

/* http_api.c */
enum MHD_Result http_api(struct http *h, struct req *r, const char *path, const char *method);

/* http_session.c */
struct session *session_find(struct http *h, struct MHD_Connection *c);
/* The console user behind a session, NULL when it ended (expired, user
 * removed, password changed): then the session is gone too. */
bool session_actor(struct http *h, struct session *s, struct actor *who);
enum MHD_Result http_login(struct http *h, struct req *r);
void http_logout(struct http *h, struct session *s);
void sessions_tick(struct http *h);             /* expire idle and old sessions */
void sessions_free(struct http *h);

/* http_stream.c */
enum MHD_Result stream_open(struct http *h, struct req *r, const char *last_id);
void stream_closed(struct stream *st);          /* its response is being freed */
void streams_keepalive(struct http *h);
void streams_free(struct http *h);
size_t streams_count(const struct http *h);

#endif
