/* telecared: the map of the program.
 *
 * One process, one thread, one sd-event loop. Every input (MQTT socket,
 * control socket, timers, signals) is an event source; callbacks are short.
 * Memory is the brain: residents, devices and unresolved alarms live here.
 * The database is the memory: every change is queued as a write and the
 * queue is committed in one transaction per loop pass (group commit);
 * receipts and control answers wait for that commit. */
#ifndef TELECARED_H
#define TELECARED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <syslog.h>
#include <sys/socket.h>

#include <jansson.h>
#include <systemd/sd-event.h>

#include "telecare/event.h"
#include "telecare/source.h"
#include "telecare/util.h"
#include "map.h"

struct mosquitto;
struct sqlite3;
struct sqlite3_stmt;

/* ---- escalation policies (policy.c) ---- */

enum target_kind {
	TGT_ON_DUTY_RESIDENT_TEAM,  /* on_duty:@team (everyone on duty when the alarm has no team) */
	TGT_ON_DUTY_TEAM,           /* on_duty:TEAM */
	TGT_ON_DUTY_ALL,            /* on_duty:* */
	TGT_TEAM,                   /* team:TEAM, on duty or not */
	TGT_WORKER,                 /* worker:ID */
	TGT_EVERYONE,               /* everyone registered, on duty or not */
};

struct target {
	enum target_kind kind;
	char *arg;                  /* team or worker id; NULL for the others */
};

struct step {
	struct target *targets;
	int n_targets;
	int64_t wait_ms;
};

/* Shared by the configuration and every alarm opened with it: an alarm keeps
 * its policy across a reload (SPEC 4), so policies are reference counted. */
struct policy {
	int refs;
	char *name;
	unsigned priorities;        /* bit p set: applies to priority p */
	struct step *steps;
	int n_steps;
	int repeat;
	int64_t ack_timeout_ms;
	bool cancel_resolves;       /* on_cancel = resolve */
};

enum unknown_policy { UNKNOWN_ALARM, UNKNOWN_LOG };

struct config {
	char *file;                 /* where it came from, or NULL for built-in */
	struct {
		char *host;
		int port;
		char *client_id;        /* default: the username, else "telecared" */
		bool client_id_set;
		char *prefix;
		int keepalive;
		size_t max_payload;
		char *username;
		char *password_file;
		char *cafile, *certfile, *keyfile;
	} mqtt;
	char *store_path;
	char *socket_path;
	struct {
		char *listen;           /* "127.0.0.1:8080"; NULL or "": no HTTP */
		char *cert, *key;       /* PEM files: HTTPS */
		char *root;             /* the console's static files */
		int64_t session_idle_ms, session_max_ms;
	} http;
	enum unknown_policy unknown_devices;
	int device_rate;            /* events a second one device may send (sustained) */
	int device_burst;           /* ...and at once */
	size_t receipt_queue;       /* receipts the outbox keeps waiting at most (SPEC 2.2) */
	struct {
		int devices;            /* more than this many devices of a class in window: fold */
		int64_t window_ms;
		int64_t hold_ms;        /* technical and unknown-device alarms wait this before alerting */
	} mass;
	int priority[TC_T__COUNT];  /* per event type; 0 = opens no alarm */
	char **outcomes;
	size_t n_outcomes;
	struct policy **policies;   /* from [policy NAME] sections, in file order */
	size_t n_policies;
	struct tc_source **sources; /* from [source NAME] sections */
	size_t n_sources;
	struct {
		int64_t grace_ms;           /* allowed beyond a device's heartbeat interval */
		int battery_low;            /* percent: below opens low_battery */
		int battery_hysteresis;     /* cleared at battery_low + this */
		int storm_devices;          /* this many silent within storm_window: one incident
		                               (0: [alarms] mass_devices applies) */
		int64_t storm_window_ms;    /* 0: [alarms] mass_window */
		int64_t broker_outage_ms;   /* gateway away from the broker this long: alarm */
	} sup;
};

/* ---- in-memory registry (registry.c) ---- */

struct resident {
	char *id, *name, *address, *phone, *team, *notes;
	int64_t created_at;
};

struct device {
	char *id;
	char *resident_id;          /* NULL for an unknown device */
	char *kind;
	int64_t heartbeat_ms;       /* 0: not supervised */
	bool testing;               /* `device test` is waiting for its next alarm (memory only:
	                               a crash must not leave a device's alarms as tests) */
	int64_t created_at;
	int64_t last_seen;          /* from the latest event; 0: never */
	int64_t last_poll;          /* DC-09: the latest NULL message (memory only); 0: none */
	int battery, rssi;          /* last reported; battery -1, rssi INT32_MIN: unknown */
	char *source, *address;     /* heard through [source NAME] at this address, or NULL */
	/* supervision (supervise.c) */
	int64_t deadline;           /* heard by then, or connection_lost; 0: not watched */
	size_t heap_index;          /* position in m->sup_heap, when watched */
	bool silent;                /* its deadline passed and it has not been heard since */
};

struct worker {
	char *id, *name;
	char *team;                 /* comma-separated team names, or NULL */
	char *phone, *webhook;
	int64_t created_at;
};

enum shift_kind { SHIFT_ALWAYS, SHIFT_WEEKLY, SHIFT_ONCE };

struct shift {
	int64_t id;
	char *worker;
	enum shift_kind kind;
	unsigned days;              /* SHIFT_WEEKLY: bit 0 Monday ... bit 6 Sunday */
	int start_min, end_min;     /* SHIFT_WEEKLY: minutes of the local day; end <= start runs past midnight */
	int64_t from, to;           /* SHIFT_ONCE: [from, to) */
};

/* ---- alarms (alarm.c) ---- */

enum alarm_state { ALARM_OPEN, ALARM_ACKED, ALARM_RESOLVED };

struct alarm {
	int64_t id;
	char device[TC_DEVICE_ID_MAX + 1];
	char *resident_id;          /* NULL: unknown device */
	char *key;                  /* "<device>/care" or "<device>/<technical type>" */
	int priority;
	uint8_t types[TC_T__COUNT]; /* in order of arrival */
	int n_types;
	enum alarm_state state;
	bool test;
	bool technical;
	json_t *loc;                /* last known position or NULL */
	int64_t opened_at, acked_at, resolved_at, updated_at, first_ack_at;
	char *acked_by;             /* the worker's name, as SPEC 2.3 shows it */
	char *acked_by_id;
	char *outcome;
	/* escalation (escalate.c) */
	struct policy *policy;      /* a reference; NULL for test alarms */
	int step;                   /* index of the step fired last; -1 before the first */
	int round;                  /* completed passes over the chain */
	int64_t next_at;            /* when the next step (or the ack timeout) fires; 0: never */
	json_t *alerted;            /* every worker id alerted so far (for follow-ups) */
	json_t *step_workers;       /* worker ids alerted by the current step */
	json_t *declined;           /* of those, who declined */
	size_t sched_index;         /* in m->esc_sched or m->esc_ready; SIZE_MAX: in neither */
	struct incident *incident;  /* a mass incident (mass.c); NULL for one device's alarm */
	bool board_dirty;           /* its board summary waits to be published (alarm.c) */
};

/* A mass incident (SPEC 3.1): many devices of one class as one alarm. */
struct member {
	enum tc_type type;
	bool known;                 /* a registered device */
	bool restored;
	int64_t joined_at, restored_at;
	int64_t alarm;              /* its own alarm, kept open because it had alerted; or 0 */
};

#define INCIDENT_SAMPLE 20
struct incident {
	char cls[32];               /* a technical type's name, or "unknown" */
	struct map members;         /* device id -> struct member */
	size_t devices, restored;
	struct map teams;           /* team (or "none") -> count, as (void *)(intptr_t) */
	char *sample[INCIDENT_SAMPLE];
	size_t n_sample;
};

/* What an event does to the alarms of its device: the pure decision. */
enum alarm_action {
	ACT_NONE,        /* heartbeat, test of a non-alarm, log-only unknown device */
	ACT_OPEN,        /* open a new alarm */
	ACT_JOIN,        /* join the device's open alarm */
	ACT_RESOLVE,     /* restoral: resolve the matching technical alarm */
	ACT_CANCEL,      /* recorded on the open care alarm */
};

struct alarm_decision {
	enum alarm_action action;
	int priority;            /* for OPEN and JOIN */
	bool technical;
	bool test;
	char key[TC_DEVICE_ID_MAX + 32];  /* open-alarm slot the event belongs to */
};

/* ---- who acts (issue 11: roles; SPEC 6.1) ---- */

enum role { ROLE_NONE, ROLE_WORKER, ROLE_INSTALLER, ROLE_DISPATCHER, ROLE_ADMIN };

enum actor_kind {
	ACTOR_SYSTEM,               /* telecared itself */
	ACTOR_DEVICE,               /* a device (cancel, restoral) */
	ACTOR_WORKER,               /* a worker over MQTT (worker/{id}/action) */
	ACTOR_USER,                 /* a console user (HTTP) */
	ACTOR_UNIX,                 /* a Unix user on the control socket */
};

/* Every change records who made it (SPEC 6.1). */
struct actor {
	enum actor_kind kind;
	enum role role;
	char id[TC_DEVICE_ID_MAX + 1];   /* worker id, device id, console user name; "" for unix */
	unsigned uid;                    /* ACTOR_UNIX */
	char name[TC_DEVICE_ID_MAX + 1]; /* the Unix login, when known */
	char worker[TC_DEVICE_ID_MAX + 1];  /* the worker this person is, or "" */
};

/* Ids handed out from a range whose end is committed first (store.c). */
struct seq {
	const char *name;           /* "alarm", "event": its row in the sequences table */
	int64_t next;
	int64_t durable_hi;         /* ids below this are reserved on disk */
	int64_t pending_hi;         /* the end queued last */
	int64_t range;
	bool warned;
};

/* ---- an alarm's life (life.c): one pure transition, its effects ---- */

/* The timeline's vocabulary: docs/CONTROL.md lists exactly these. */
enum tl_what {
	TL_OPENED, TL_JOINED, TL_CANCELLED, TL_ALERTED, TL_QUEUED, TL_DELIVERED,
	TL_DELIVERY_FAILED, TL_STEP_EMPTY, TL_DECLINED, TL_ACKNOWLEDGED, TL_NOTE, TL_REFUSED,
	TL_REOPENED, TL_RESOLVED, TL_FOLDED, TL_RESTORED, TL_ADOPTED,
	TL__COUNT,
};

enum life_kind {
	LIFE_OPEN,             /* a new alarm (prepared by alarm_new) */
	LIFE_JOIN,             /* another alarm event of its device */
	LIFE_CANCEL,           /* the resident says "I am fine" */
	LIFE_RESTORE,          /* the device's restoral of its technical condition */
	LIFE_STEP,             /* its next step (or the ack timeout) is due */
	LIFE_ACK, LIFE_DECLINE, LIFE_NOTE, LIFE_RESOLVE,   /* a person acts */
	LIFE_SYSTEM_RESOLVE,   /* the gateway resolves it (storage back, battery back...) */
	LIFE_FOLD,             /* folded into a mass incident */
	LIFE_MEMBER_JOIN,      /* a mass incident: one more device */
	LIFE_MEMBER_RESTORE,   /* ... one of its devices restored (counts updated first) */
	LIFE_ADOPT,            /* its device was registered (resident set first) */
};

struct life_event {
	enum life_kind kind;
	enum tc_type type;          /* the event's type (OPEN, JOIN, RESTORE, MEMBER_*) */
	int priority;               /* JOIN, MEMBER_JOIN: the event's priority */
	const char *device;         /* the actor of device events */
	const json_t *loc;          /* OPEN, JOIN: the position sent, or NULL */
	const char *detail;         /* OPEN: why (instead of type and priority); RESTORE and
	                               SYSTEM_RESOLVE: a note */
	const struct actor *who;    /* ACK, DECLINE, NOTE, RESOLVE */
	const char *as_worker;      /* ... the worker acted as (checked to exist), or NULL */
	const char *as_name;        /* ... that worker's name */
	const char *outcome;        /* RESOLVE (checked against [outcomes]), SYSTEM_RESOLVE */
	const char *note;           /* NOTE, RESOLVE */
	bool on_test;               /* the alarm's device is on test (installers may act) */
	int64_t incident;           /* FOLD: into which */
};

struct life_env {
	int64_t wall, mono;         /* now: wall for what is stored and shown, mono (boottime)
	                               for when things are due */
	int64_t hold_ms;            /* [alarms] mass_hold */
	/* Whom a step alerts at wall time t: a new JSON array of worker ids. */
	json_t *(*targets)(void *ctx, const struct alarm *a, const struct step *st, int64_t wall);
	void *ctx;
};

struct life_row {
	enum tl_what what;
	char *actor, *detail;
};

/* What must follow a transition; alarm.c applies it in this order. */
struct effects {
	struct life_row *rows;      /* 1. timeline rows */
	size_t n_rows, cap_rows;
	bool save;                  /* 2. the alarm's row */
	bool publish_state;         /* 3. the device's alarm-state topic (care alarms) */
	bool publish_board;         /*    and the board */
	json_t *alert;              /* 4. workers the step alerts now, or NULL */
	bool follow_up;             /* 5. everyone alerted before hears of the change... */
	char *follow_skip;          /*    ...but this worker (who acted) */
	bool schedule;              /* 6. next_at changed */
	bool nobody;                /* 7. the step found nobody: the gateway's own alarm */
	bool watch_again;           /* 8. a connection_lost alarm ended: watch its device */
	char *log[4];               /* 9. the log lines */
	int log_prio[4];
	size_t n_log;
	char *worker;               /*    the worker they are about (a journal field), or NULL */
	bool resolved;              /* 10. leaves memory */
	bool refused;               /* a person's action refused: error says why */
	char *error;
	bool oom;
};

const char *tl_name(enum tl_what w);
/* The transition: changes a and fills fx (zeroed by the caller). 0, or -1
 * when refused (fx->error) or nothing happens. Pure: no I/O, no clock. */
int life_apply(struct alarm *a, const struct life_event *ev, const struct life_env *env,
               struct effects *fx);
void effects_clear(struct effects *fx);

/* ---- the manager: the one context struct ---- */

struct store;
struct control;

struct counters {
	uint64_t received, stored, duplicate, rejected;
	uint64_t receipts_shed;      /* past the outbox's receipt bound (SPEC 2.2) */
	uint64_t refused;            /* events the database refused to store */
	uint64_t flood_dropped;      /* over a device's rate: not processed, no receipt */
};

struct manager {
	sd_event *event;
	struct config *cfg;
	char *config_path;           /* -c, or the default */
	bool config_required;        /* -c given: a missing file is an error */
	int64_t started_at;

	/* mqtt.c */
	struct mosquitto *mosq;
	sd_event_source *mqtt_io, *mqtt_misc, *mqtt_retry;
	int mqtt_fd;
	bool mqtt_connected;
	bool mqtt_abandoned;         /* a failed attempt's socket, left for the next reconnect */
	int64_t mqtt_backoff_ms;
	bool board_checking;         /* subscribed to the board until our sentinel returns */
	uint64_t board_nonce;
	bool shutting_down;

	/* store.c */
	struct store *store;

	/* outbox.c */
	struct outbox *outbox;

	/* http.c */
	struct http *http;

	/* registry.c */
	struct map residents;        /* id -> struct resident */
	struct map devices;          /* id -> struct device (registered only) */
	struct map by_address;       /* "<source>\n<address>" -> struct device */

	/* alarm.c */
	struct map alarms;           /* decimal id -> struct alarm (unresolved only) */
	struct map open_by_key;      /* alarm key -> struct alarm */
	struct seq alarm_ids;

	/* roster.c */
	struct map workers;          /* id -> struct worker */
	struct shift **shifts;
	size_t n_shifts;
	int64_t next_shift_id;

	/* supervise.c (deadlines in boottime ms) */
	struct device **sup_heap;    /* min-heap of watched devices by deadline */
	size_t sup_len, sup_cap;
	sd_event_source *sup_timer, *outage_timer;
	int64_t sup_paused_at;       /* broker away since (boottime); 0: listening */

	/* escalate.c */
	sd_event_source *esc_timer, *esc_more;
	struct alarm **esc_sched;    /* min-heap by next_at: waiting for their time */
	size_t esc_sched_len, esc_sched_cap;
	struct alarm **esc_ready;    /* min-heap by (priority, next_at): due, fired in slices */
	size_t esc_ready_len, esc_ready_cap;
	struct webhooks *webhooks;
	struct alarm *nobody;        /* the gateway's "nobody to alert" alarm, or NULL */

	/* mass.c */
	struct map mass_classes;     /* class -> struct mass_class */
	struct map mass_member_of;   /* "<class>\n<device>" -> incident id (unrestored members) */

	/* alarm.c */
	sd_event_source *board_defer;
	int64_t *board_dirty;        /* alarm ids whose board summary waits for the next pass */
	size_t n_board_dirty, cap_board_dirty;

	/* ingest.c */
	struct map pending;          /* "<device>\n<id key>" -> alarm id + 2 (uncommitted events) */
	struct map unmapped_seen;    /* "<source>\n<address>" -> when last kept (ms) */
	struct map buckets;          /* device -> struct bucket (flood limit) */
	struct seq event_seqs;

	/* control.c, users.c, hash.c (the control plane) */
	struct control *control;
	struct map users;            /* name -> struct user */
	struct hashes *hashes;

	/* dc09.c: the SIA DC-09 receivers of the sia-dc09 sources */
	struct dc09 *dc09;

	sd_event_source *status_timer, *clock_watch;
	int64_t wall_offset;         /* wall - boottime when last looked (clock.c) */
	struct counters count;
	struct {
		uint64_t iterations;
		int64_t worst_us;        /* longest dispatch (one callback) since start */
		int64_t worst_at;        /* when (wall ms) */
		uint64_t over_10ms, over_100ms;
	} loop;
};

/* ---- policy.c ---- */
/* Parse one "step = TARGETS wait DURATION" value into st. 0 or -1 with err. */
int policy_parse_step(const char *value, struct step *st, char *err, size_t errlen);
struct policy *policy_new(const char *name);
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy *p);
/* The policy for a priority: the configuration's, else a built-in one. */
struct policy *policy_for(const struct config *c, int priority);
struct policy *policy_everyone(void);   /* every registered worker; "nobody to alert" */
json_t *policy_json(const struct policy *p);
struct policy *policy_from_json(json_t *j);    /* NULL when malformed */
/* The escalation schedule (pure): the step that follows (step, round). */
void policy_advance(const struct policy *p, int *step, int *round);
/* True once the chain has been run 1 + repeat times: the last step repeats. */
bool policy_exhausted(const struct policy *p, int step, int round);
/* The schedule (pure but for the callback): advance from (step, round) to the
 * next step that has someone to alert, skipping empty ones at once as SPEC 4
 * says, and return when the step after it is due. has_targets is asked about
 * each candidate step (and may record it). */
int64_t policy_next(const struct policy *p, int *step, int *round, int64_t now,
                    bool (*has_targets)(void *ctx, int step, int round), void *ctx);

/* ---- config.c ---- */
/* Parse file into a new config; on error returns NULL with "file:line: what"
 * in err. path NULL: the built-in defaults. */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *c);
bool config_outcome_valid(const struct config *c, const char *outcome);
/* config_dc09.c: a sia-dc09 section's keys (1 set, 0 not one of them, -1
 * with err), its rules (0 or -1), and once the file is read, whether a
 * source's keys fit its format (defaults filled in): NULL or the error. */
int source_dc09_key(struct tc_source *src, const char *name, const char *value, char *err,
                    size_t errlen);
int source_dc09_rule(struct tc_source *src, const char *value, char *err, size_t errlen);
const char *source_check(const struct config *c, struct tc_source *src);

/* ---- log.c ---- */
void log_init(void);
void log_full(int prio, const char *device, int64_t alarm, const char *worker,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define log_info(...)    log_full(LOG_INFO, NULL, 0, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, NULL, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, 0, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, NULL, 0, NULL, __VA_ARGS__)

/* ---- mqtt.c ---- */
int mqtt_init(struct manager *m);
void mqtt_free(struct manager *m);
void mqtt_shutdown(struct manager *m);     /* "offline", DISCONNECT, flushed */
/* Hand one QoS 1 publish to libmosquitto (the outbox does; nothing else
 * should). 0 with *mid set, or -EIO. */
int mqtt_publish(struct manager *m, const char *topic, const void *payload, size_t len,
                 bool retain, int *mid);
/* prefix + "/" + the formatted rest */
int mqtt_topic(const struct manager *m, char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* ---- http.c, http_session.c, http_stream.c: the console and its API ---- */
int http_init(struct manager *m);           /* [http] listen empty: nothing */
void http_stop(struct manager *m);          /* shutdown: end streams, finish answers */
void http_free(struct manager *m);
json_t *http_status(const struct manager *m);   /* the "http" key of status */
/* What the consoles' event streams hear (docs/HTTP.md "The stream"). */
void http_alarm_changed(struct manager *m, const struct alarm *a);
void http_timeline(struct manager *m, int64_t alarm, int64_t at, const char *what,
                   const char *actor, const char *detail);
void http_status_changed(struct manager *m);
void http_device_test(struct manager *m, const char *device, const char *stage, int64_t alarm,
                      const char *detail);

/* ---- outbox.c (SPEC 4.1; the order is in outq.h) ---- */
#include "outq.h"
int outbox_init(struct manager *m);
void outbox_free(struct manager *m);
/* Queue a QoS 1 publish: it goes out in order of precedence, at most a window
 * unacknowledged. Retained messages coalesce by topic while they wait. */
int outbox_publish(struct manager *m, enum ob_class cls, const char *topic, const char *payload,
                   size_t len, bool retain);   /* 0, or -1 shed at its class's bound */
/* An alert to a worker: as outbox_publish; when it waited for the broker,
 * the alarm's timeline says "alerted" once the broker has it. */
void outbox_alert(struct manager *m, enum ob_class cls, const char *topic, const char *payload,
                  size_t len, int64_t alarm, const char *worker);
/* A webhook delivery: waits for one of a bounded number of slots; tried
 * hears of each failed try, done of the end (webhook.h). */
void outbox_webhook(struct manager *m, enum ob_class cls, const char *url, const char *body,
                    void (*done)(void *userdata, bool ok, int attempts, const char *detail),
                    void (*tried)(void *userdata, int attempt, const char *detail, bool retry),
                    void *userdata);
void outbox_pump(struct manager *m);       /* hand over what the window allows */
void outbox_limits(struct manager *m);     /* the configuration's bounds changed (SIGHUP) */
void outbox_puback(struct manager *m, int mid);
size_t outbox_queued(const struct manager *m);
size_t outbox_inflight(const struct manager *m);
json_t *outbox_status(const struct manager *m);

/* ---- store.c ---- */
enum store_stmt {
	ST_EVENT_INSERT, ST_REJECT_INSERT, ST_ALARM_UPSERT, ST_TIMELINE_INSERT,
	ST_RESIDENT_UPSERT, ST_RESIDENT_DELETE, ST_DEVICE_UPSERT, ST_DEVICE_DELETE,
	ST_WORKER_UPSERT, ST_WORKER_DELETE, ST_SHIFT_INSERT, ST_SHIFT_DELETE, ST_UNMAPPED_INSERT,
	ST_SEQUENCE_SET, ST_MEMBER_UPSERT,
	ST_USER_UPSERT, ST_USER_DELETE,   /* users.c */
	ST__WRITE_COUNT,
};
int store_open(struct manager *m, const char *path);
void store_close(struct manager *m);
/* Queue one write; fmt names the arguments: i int64, n int64 or NULL when
 * negative, t time (0 = NULL), s string or NULL, j json_t* or NULL, d double
 * (NAN = NULL), x text and b blob (each a pointer and a size_t).
 * 0, or -1 when it could not be queued (out of memory): a reply covering it
 * is then told it failed. */
int store_write(struct manager *m, enum store_stmt stmt, const char *fmt, ...);
/* The one reply path (SPEC 7: every promise waits for its commit). Take a
 * mark, queue the writes a promise depends on, then register the reply:
 * fn(m, data, ok, error) runs once every write queued so far is committed,
 * with ok false (and the database's reason) when a write queued since the
 * mark was refused. Replies run in the order they were registered. */
typedef void (*store_done_fn)(struct manager *m, void *data, bool ok, const char *error);
uint64_t store_mark(const struct manager *m);
void store_after_commit(struct manager *m, uint64_t since, store_done_fn fn, void *data);
/* Commit now. 0 on success, -1 if the writes stay queued for a retry. */
int store_flush(struct manager *m);
/* Commit if the batch is large or old enough; called between events. */
void store_maybe_flush(struct manager *m);
size_t store_pending(const struct manager *m);
bool store_ok(const struct manager *m, const char **error);
/* A prepared statement for a read, cached by its SQL text. */
struct sqlite3_stmt *store_query(struct manager *m, const char *sql);
/* Is (device, id key) stored? Returns 1 with *alarm (or -1 for none), 0, -1 on error. */
int store_event_lookup(struct manager *m, const char *device, const char *id_key, int64_t *alarm);
const char *store_errmsg(struct manager *m);       /* SQLite's last message */
/* A read-only connection for long reads stepped in slices (queries.c). */
struct sqlite3 *store_reader(struct manager *m);
const char *store_path(const struct manager *m);
/* ---- store_load.c ---- */
/* Check (quick_check) and load residents, devices, workers, open alarms and
 * the id ranges; any error refuses the start. */
int store_load(struct manager *m);
/* The next id of g; never one given before, even across a crash. */
int64_t seq_take(struct manager *m, struct seq *g);
/* Never hand out an id below next (an id seen on the retained board). */
void seq_at_least(struct manager *m, struct seq *g, int64_t next);
/* telecared --check-db: a full integrity check, read-only. 0 ok, 1 damaged. */
int store_check(const char *path, FILE *out);
/* The columns alarm_from_row() reads, in order: select them FROM alarms. */
#define ALARM_COLUMNS "id, device_id, resident_id, akey, priority, types, state, test, technical," \
	" step, loc, policy, opened_at, acked_at, acked_by, resolved_at, outcome, updated_at," \
	" round, next_at, policy_def, esc, acked_by_id, first_ack_at, incident"
struct alarm *alarm_from_row(struct sqlite3_stmt *s);

/* ---- registry.c ---- */
struct resident *resident_get(struct manager *m, const char *id);
struct device *device_get(struct manager *m, const char *id);
struct device *device_by_address(struct manager *m, const char *source, const char *address);
int resident_add(struct manager *m, struct resident *r);   /* takes ownership */
void resident_remove(struct manager *m, const char *id);
int device_add(struct manager *m, struct device *d);       /* takes ownership; supervised */
void device_save(struct manager *m, const struct device *d);
void device_remove(struct manager *m, const char *id);
void resident_free(struct resident *r);
void device_free(struct device *d);
void registry_free(struct manager *m);
json_t *resident_json(const struct resident *r);
json_t *device_json(const struct device *d);
json_t *json_str_or_null(const char *s);
json_t *json_time_or_null(int64_t ms);              /* 0: null */

/* ---- roster.c ---- */
struct worker *worker_get(struct manager *m, const char *id);
int worker_add(struct manager *m, struct worker *w);        /* takes ownership */
void worker_remove(struct manager *m, const char *id);
void worker_free(struct worker *w);
json_t *worker_json(const struct worker *w);
bool worker_in_team(const struct worker *w, const char *team);
int shift_add(struct manager *m, struct shift *s);          /* takes ownership; sets s->id */
int shift_remove(struct manager *m, int64_t id);            /* 0, or -1 if absent */
void shift_free(struct shift *s);
json_t *shift_json(const struct shift *s);
void roster_free(struct manager *m);
/* Pure: does the shift cover time t (ms; weekly shifts in local time)? */
bool shift_covers(const struct shift *s, int64_t t);
struct tm;
/* The same, with t's local time already at hand (many shifts, one time). */
bool shift_covers_tm(const struct shift *s, int64_t t, const struct tm *local);
bool worker_on_duty(struct manager *m, const char *worker, int64_t t);
/* "mon-fri", "sat,sun", "daily", "weekdays", "weekends" -> bit 0 Monday..6 Sunday */
int shift_parse_days(const char *s, unsigned *days);
int shift_parse_hours(const char *s, int *start_min, int *end_min);  /* "22:00-06:00" */

/* ---- supervise.c (times in boottime ms: tc_mono_ms) ---- */
int supervise_init(struct manager *m);
void supervise_free(struct manager *m);
void supervise_watch(struct manager *m, struct device *d);     /* added, changed, judged afresh */
void supervise_unwatch(struct manager *m, struct device *d);   /* removed */
/* The device was heard (any event): its deadline moves; a silent device is restored. */
void supervise_heard(struct manager *m, struct device *d);
void supervise_battery(struct manager *m, struct device *d, int battery);
void supervise_broker(struct manager *m, bool connected);
/* The store failed or recovered: the gateway's own technical alarm. */
void supervise_storage(struct manager *m, bool ok, const char *error);

/* ---- escalate.c ---- */
int escalate_init(struct manager *m);
void escalate_free(struct manager *m);
/* a->next_at (boottime ms) changed, or 0: (re)place it in the schedule. */
void escalate_schedule(struct manager *m, struct alarm *a);
void escalate_unschedule(struct manager *m, struct alarm *a);
/* Send a step's alerts (MQTT and webhooks) and record them. */
void escalate_alert(struct manager *m, struct alarm *a, json_t *workers);
/* Tell every worker in a->alerted, but skip and those in except, of a change. */
void escalate_follow_up(struct manager *m, struct alarm *a, const char *skip, json_t *except);
bool id_list_has(json_t *list, const char *id);   /* a JSON array of id strings */
/* Workers a step's targets name at wall time t, without duplicates (new array). */
json_t *escalate_targets(struct manager *m, const struct alarm *a, const struct step *st, int64_t t);
/* The environment life_apply() needs, now. */
void escalate_env(struct manager *m, struct life_env *env);

/* ---- action.c ---- */
/* A person's action on an alarm (SPEC 2.5): who acts (a worker over MQTT,
 * a Unix user on the control socket, a console user), and as_worker, the
 * worker acted for (`--as`), or NULL for who's own worker. Returns 0 when
 * accepted (its writes are queued: answer through store_after_commit), or
 * -1 with the reason in err. */
int action_apply(struct manager *m, const struct actor *who, const char *as_worker, int64_t alarm,
                 const char *action, const char *outcome, const char *note, char *err,
                 size_t errlen);
/* The role of the console user linked to worker (users.c), else ROLE_WORKER. */
enum role users_role_of_worker(struct manager *m, const char *worker);
/* "w-jan", "user anna", "uid 1001 (anna)", "telecared": the timeline's actor. */
const char *actor_label(const struct actor *a, char *buf, size_t len);
void action_message(struct manager *m, const char *worker, size_t worker_len,
                    const void *payload, size_t len);

/* ---- decide.c ---- */
/* The pure rule of SPEC 3: what an event of this type does, given the
 * device's open alarms. has_open(key) answers whether a key has an open alarm. */
void alarm_decide(const struct config *cfg, const char *device, bool registered,
                  bool device_on_test, const struct tc_event *ev,
                  bool (*has_open)(void *ctx, const char *key), void *ctx,
                  struct alarm_decision *out);

/* ---- alarm.c: the shell around life.c ---- */
/* What an event from a device does (decided by alarm_decide, folded into a
 * mass incident by mass.c when it must); returns the alarm it opened,
 * joined, resolved or was recorded on, or -1. */
int64_t alarm_apply(struct manager *m, const char *device, const struct tc_event *ev,
                    const struct alarm_decision *d);
/* Run one transition of a and apply its effects in their fixed order.
 * 0, or -1 when refused (the reason in err, if given). a may be freed
 * (resolved) on return. */
int alarm_do(struct manager *m, struct alarm *a, const struct life_event *ev, char *err,
             size_t errlen);
/* A new alarm, not yet opened or tracked: its id is taken, its policy set. */
struct alarm *alarm_new(struct manager *m, const char *device, const char *key, int priority,
                        bool technical, bool test);
/* Track and open it (LIFE_OPEN); returns its id, or -1 (freed). */
int64_t alarm_open(struct manager *m, struct alarm *a, enum tc_type type, const json_t *loc,
                   const char *actor, const char *detail);
/* A technical alarm the gateway raises (supervision, its broker link, its
 * storage, nobody to alert), under key (NULL: "device/type"): folds into a
 * mass incident like a device's would, unless device is "telecared".
 * Returns the alarm it opened or joined, or the one already open. */
struct alarm *alarm_raise(struct manager *m, const char *device, enum tc_type type,
                          const char *key, const char *detail);
/* The gateway resolves a (outcome, note): LIFE_SYSTEM_RESOLVE. */
void alarm_system_resolve(struct manager *m, struct alarm *a, const char *outcome,
                          const char *note);
struct alarm *alarm_get(struct manager *m, int64_t id);
struct alarm *alarm_by_key(struct manager *m, const char *key);
void alarm_timeline(struct manager *m, int64_t alarm, int64_t at, enum tl_what what,
                    const char *actor, const char *detail);
void alarm_save(struct manager *m, struct alarm *a);
void alarm_track(struct manager *m, struct alarm *a);      /* loaded from the store */
void alarm_free(struct alarm *a);
void alarms_free(struct manager *m);
const char *alarm_state_name(enum alarm_state s);
int alarm_state_from_name(const char *s);
json_t *alarm_json(struct manager *m, const struct alarm *a);  /* the board summary */
/* Publish a's board summary once, at the end of this loop pass. */
void alarm_board_later(struct manager *m, struct alarm *a);

/* ---- fold.c: the mass-incident rule, pure ---- */
/* The class an alarm event folds by ("power_loss", "unknown"), or NULL. */
const char *mass_class(enum tc_type type, bool known, bool test);
struct fold_arrival {
	char device[TC_DEVICE_ID_MAX + 1];
	int64_t at;                 /* boottime ms */
};
/* The latest distinct devices that raised an alarm of one class. */
struct fold_window {
	struct fold_arrival *ring;  /* oldest first, at most threshold + 1 */
	size_t cap, head, len;
	struct map recent;          /* device -> 1, those in the ring */
};
/* device raised an alarm of the class at now: 1 when the window now holds
 * more than threshold devices (fold them), 0 not, -1 out of memory. */
int fold_arrive(struct fold_window *w, const char *device, int64_t now, int threshold,
                int64_t window);
const char *fold_device(const struct fold_window *w, size_t i);   /* oldest first */
void fold_clear(struct fold_window *w);
void fold_window_free(struct fold_window *w);
/* At start: mark in fold[] the alarms (opened times sorted) that lie in a
 * window with more than threshold of them; returns how many. */
size_t fold_select(const int64_t *opened, size_t n, int64_t window, int threshold, bool *fold);

/* ---- mass.c: mass incidents (SPEC 3.1), the shell ---- */
/* A device's alarm event of a foldable class: the incident it joined (one
 * that is active, or one its arrival just formed), or NULL to open or join
 * its own alarm. */
struct alarm *mass_event(struct manager *m, const char *device, enum tc_type type, bool known,
                         int priority);
/* A restoral (restores: the type it clears): the incident the device was an
 * unrestored member of (the restoral is recorded there), else 0. */
int64_t mass_restore(struct manager *m, const char *device, enum tc_type restores);
struct incident *mass_incident_new(const char *cls);
/* At start, before anything is alerted: rebuild incidents, fold what must. */
int mass_load(struct manager *m);
void mass_incident_free(struct incident *in);
void mass_forget(struct manager *m, struct alarm *a);     /* a leaves memory */
void mass_free(struct manager *m);
json_t *mass_incident_json(const struct alarm *a);
json_t *mass_members_json(struct manager *m, int64_t alarm);  /* from the store */

/* ---- publish.c ---- */
/* The device alarm-state topic (SPEC 2.3) and the board (SPEC 2.6). */
void publish_state(struct manager *m, const struct alarm *a);   /* the device's (care alarms) */
void publish_board(struct manager *m, const struct alarm *a);   /* the board only */
void publish_all_open(struct manager *m);           /* after (re)connecting */
enum ob_class alarm_class(const struct alarm *a);   /* its alerts' and state's precedence */
void publish_board_seen(struct manager *m, const char *alarm_id, size_t len, bool retained,
                        size_t payloadlen);

/* ---- ingest.c ---- */
/* A message on <prefix>/dev/{device}/event: receipted (SPEC 2.2). */
void ingest_message(struct manager *m, const char *device, size_t device_len,
                    const void *payload, size_t len);
/* A message on a source's topic. */
void ingest_source(struct manager *m, const struct tc_source *src, const char *topic,
                   const void *payload, size_t len);
/* An event of a source outside MQTT (dc09.c): a SPEC 2.1 object for a
 * device id, the way a source's events go (no receipt). 0 when it is stored
 * or a duplicate (its writes are queued: answer through store_after_commit),
 * -1 when it was rejected or could not be checked for a duplicate. */
int ingest_event(struct manager *m, const char *device, const json_t *event);
const struct tc_source *source_get(const struct config *c, const char *name);

/* ==== the control plane (issue 11): control socket, command table, users ==== */

/* ---- control.c: the Unix socket (docs/CONTROL.md) ---- */
int control_open(struct manager *m, const char *path);
void control_close(struct manager *m);
void control_stop(struct manager *m);       /* accept nothing more (shutdown) */
/* Is path usable as the control socket? Absent, or a stale socket; not a
 * file of another kind, not the database. 0, or -1 with the reason. */
int control_check_path(const struct config *c, const char *path, char *err, size_t errlen);
/* Is any `events --follow` client listening? (then build what it is sent) */
bool control_has_followers(const struct manager *m);
/* Notify `events --follow` clients of a committed event. */
void control_event_stored(struct manager *m, json_t *event);
/* `device test`: tell the installer waiting on this device what just happened
 * ("received", "stored", "receipt_sent", "alerted"); "alerted" ends the test. */
void control_device_test(struct manager *m, const char *device, const char *stage,
                         int64_t alarm, const char *detail);
json_t *control_status(const struct manager *m);   /* the "control" key of status */

/* ---- sockfile.c: the control socket's file ---- */
/* Check the path, replace a stale socket (never anything else), bind with
 * mode 0666 and listen. 0 with the socket and the file's identity, or a
 * negative errno (logged). */
int sockfile_listen(const struct config *cfg, const char *path, int *fd, dev_t *dev, ino_t *ino);
void sockfile_remove(const char *path, dev_t dev, ino_t ino);   /* only if still ours */
/* RLIMIT_NOFILE's soft limit raised to the hard one: the limit now, 0 if none. */
uint64_t fd_limit_raise(void);

/* ---- peercred.c: who is on the other end of a Unix socket ---- */
/* The actor behind a connected Unix socket (SO_PEERCRED): uid 0 and the
 * daemon's own uid are admin; else the highest of the groups
 * telecare-admin, telecare-dispatch, telecare-install the user is in
 * (primary or supplementary, from the user database); else ROLE_NONE. */
int peer_actor(int fd, struct actor *out);

/* ---- command.c: the one command table, for every front ---- */
/* Run one request for who: the role check, the arguments' check, the
 * handler, and the wait for the commit of what it wrote. reply(m, data,
 * answer) runs exactly once with the answer (the callee owns it), now or
 * later, unless command_cancel() came first. Returns a handle while the
 * answer is pending, or NULL once reply has run. */
typedef void (*command_reply_fn)(struct manager *m, void *data, json_t *answer);
struct command_call;
struct command_call *command_run(struct manager *m, const struct actor *who, const char *name,
                                 json_t *args, command_reply_fn reply, void *data);
void command_cancel(struct command_call *call);   /* the front is gone */
struct command;
const struct command *command_find(const char *name);
bool command_allowed(const struct command *c, enum role r);
const char *role_name(enum role r);
enum role role_from_name(const char *s);          /* ROLE_NONE when unknown */

/* ---- hash.c: password hashes in a child process, off the loop ---- */
typedef void (*hash_done_fn)(struct manager *m, void *data, const char *hash, const char *error);
struct hash_job;
/* A new yescrypt hash of password / the hash of password under the setting
 * of a stored hash. fn runs later, from the loop, never from these calls.
 * NULL when too many are waiting already. */
struct hash_job *hash_password(struct manager *m, const char *password, hash_done_fn fn,
                               void *data);
struct hash_job *hash_check(struct manager *m, const char *password, const char *stored,
                            hash_done_fn fn, void *data);
void hash_job_cancel(struct hash_job *j);         /* fn will not run */
void hash_free(struct manager *m);                /* at exit: fn(error) for each */
size_t hash_jobs(const struct manager *m);

/* ---- users.c: console users (SPEC 6.1) ---- */
struct user {
	char *name;
	enum role role;
	char *worker;               /* the worker this person is, or NULL */
	char *hash;                 /* crypt(3) yescrypt, "$y$..." */
	int64_t created_at, changed_at;
};
int users_load(struct manager *m);                /* after store_load() */
void users_free(struct manager *m);
struct user *user_get(struct manager *m, const char *name);
int user_put(struct manager *m, struct user *u);  /* add or replace; takes ownership */
void user_remove(struct manager *m, const char *name);
void user_free(struct user *u);
json_t *user_json(const struct user *u);
/* users_role_of_worker(): declared with action.c, its caller */
/* The HTTP login: the password is checked in a child process; fn(m, data,
 * ok, who) runs later from the loop with the console user's actor when ok.
 * NULL when it cannot start now (too many checks waiting). */
typedef void (*users_verify_fn)(struct manager *m, void *data, bool ok, const struct actor *who);
struct users_check;
struct users_check *users_verify(struct manager *m, const char *name, const char *password,
                                 users_verify_fn fn, void *data);
void users_verify_cancel(struct users_check *c);  /* fn will not run */

/* ---- queries.c: the commands' reads of the store, one function each ---- */
/* Each returns 0 (or 1 found / 0 not found), or -1 with the reason in err:
 * a failed read is an error, never a short list. Lists are appended to out. */
typedef int (*q_user_fn)(void *ctx, const char *name, const char *role, const char *worker,
                         const char *hash, int64_t created_at, int64_t changed_at);
int q_users(struct manager *m, q_user_fn fn, void *ctx, char *err, size_t len);
int q_device_latest(struct manager *m, const char *device, int64_t *seen, int *battery,
                    int *rssi, char *err, size_t len);
int q_device_has_events(struct manager *m, const char *device, char *err, size_t len);
/* The newest limit events of a device (or of an alarm, alarm >= 0, or of
 * all), appended oldest first. */
int q_events(struct manager *m, const char *device, int64_t alarm, int64_t limit, json_t *out,
             char *err, size_t len);
int q_unknown_devices(struct manager *m, json_t *out, char *err, size_t len);
int q_unmapped(struct manager *m, json_t *out, char *err, size_t len);
struct q_alarm_filter {
	bool test_only;             /* an installer: test alarms */
	const char *alerted;        /* a worker: the alarms that alerted them */
};
int q_alarms(struct manager *m, int64_t limit, const struct q_alarm_filter *f, json_t *out,
             char *err, size_t len);                /* newest first */
int q_alarm(struct manager *m, int64_t id, struct alarm **out, char *err, size_t len);
int q_timeline(struct manager *m, int64_t alarm, json_t *out, char *err, size_t len);
/* first_ack -1: never acknowledged */
typedef int (*q_report_fn)(void *ctx, int priority, int64_t opened_at, int64_t first_ack);
/* Long reads in slices (issue 12: no read may hold the loop for long): on
 * the reader connection, with a snapshot of their own across loop passes. */
struct q_cursor;
struct q_cursor *q_report_open(struct manager *m, int64_t from, int64_t to, char *err, size_t len);
struct q_cursor *q_events_open(struct manager *m, const char *device, int64_t limit, char *err,
                               size_t len);
/* Up to max rows: to report (a report cursor) or appended to events, newest
 * first (an events cursor). 1 more to come, 0 done, -1 error in err. */
int q_cursor_step(struct q_cursor *c, size_t max, void *ctx, q_report_fn report, json_t *events,
                  char *err, size_t len);
void q_cursor_close(struct q_cursor *c);
/* ---- dc09.c: the SIA DC-09 receiver (SPEC 2.8) ---- */
/* Keys files read and checked, listeners bound (an address that cannot be
 * bound is an error naming it). 0 or a negative errno. */
int dc09_init(struct manager *m);
void dc09_free(struct manager *m);
/* SIGHUP: read the keys files again (kept as they were on an error). */
void dc09_reload(struct manager *m);
/* --check-config: the keys files (mode, syntax); errors to err. 0 or 1. */
int dc09_check_config(const struct config *c, FILE *err);
/* The receivers' figures for `status`, per source; {} without one. */
json_t *dc09_status(struct manager *m);

/* ---- main.c ---- */
void manager_status(struct manager *m);            /* refresh sd_notify STATUS= */
json_t *manager_loop_json(const struct manager *m); /* the loop's figures, for status */

#endif
