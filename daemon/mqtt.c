/* libmosquitto on the sd-event loop, without its threads.
 *
 * After every call into the library we look at mosquitto_socket() and
 * mosquitto_want_write() and make the io source match (sync_io); a closed
 * socket schedules a reconnect with back-off (1 s doubling to 30 s). The
 * session is persistent (clean session off, fixed client id) and every
 * subscription is QoS 1, so the broker keeps our messages while we are away. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <mosquitto.h>

#include "telecared.h"
#include "telecare/timefmt.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000

static void sync_io(struct manager *m);

int mqtt_topic(const struct manager *m, char *buf, size_t len, const char *fmt, ...)
{
	int n = snprintf(buf, len, "%s/", m->cfg->mqtt.prefix);
	if (n < 0 || (size_t)n >= len)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(buf + n, len - (size_t)n, fmt, ap);
	va_end(ap);
	return (k < 0 || (size_t)k >= len - (size_t)n) ? -1 : 0;
}

int mqtt_publish(struct manager *m, const char *topic, const void *payload, size_t len,
                 bool retain, int *mid)
{
	int rc = mosquitto_publish(m->mosq, mid, topic, (int)len, payload, 1, retain);
	if (m->mqtt_io && mosquitto_want_write(m->mosq))
		sd_event_source_set_io_events(m->mqtt_io, EPOLLIN | EPOLLOUT);
	/* NO_CONN: the link dropped under us; libmosquitto keeps the QoS 1
	 * message in the session and sends it on reconnect. */
	if (rc == MOSQ_ERR_SUCCESS || rc == MOSQ_ERR_NO_CONN)
		return 0;
	char clean[128];
	log_error("mqtt: cannot publish to %s: %s",
	          tc_sanitize(topic, strlen(topic), clean, sizeof(clean)), mosquitto_strerror(rc));
	return -EIO;
}

static void publish_presence(struct manager *m, const char *state)
{
	char topic[512];
	if (mqtt_topic(m, topic, sizeof(topic), "gateway/status") == 0)
		mqtt_publish(m, topic, state, strlen(state), true, NULL);
}

/* The board check, once per connection: subscribe to the board, take the
 * retained entries the broker holds, clear those of alarms that are not
 * unresolved here, and unsubscribe once our own sentinel comes back (the
 * broker sends a subscription's retained messages before anything published
 * after it). Staying subscribed would echo every board message we send. */
static void board_check_start(struct manager *m)
{
	char board[512], sync[512], nonce[64];
	if (mqtt_topic(m, board, sizeof(board), "alarms/+") < 0 ||
	    mqtt_topic(m, sync, sizeof(sync), "gateway/sync") < 0)
		return;
	snprintf(nonce, sizeof(nonce), "%d-%llu", (int)getpid(), (unsigned long long)++m->board_nonce);
	if (mosquitto_subscribe(m->mosq, NULL, sync, 1) != MOSQ_ERR_SUCCESS ||
	    mosquitto_subscribe(m->mosq, NULL, board, 1) != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: cannot subscribe for the board check");
		return;
	}
	m->board_checking = true;
	mqtt_publish(m, sync, nonce, strlen(nonce), false, NULL);
}

static void board_check_end(struct manager *m, const void *payload, size_t len)
{
	char board[512], sync[512], nonce[64];
	snprintf(nonce, sizeof(nonce), "%d-%llu", (int)getpid(), (unsigned long long)m->board_nonce);
	if (!m->board_checking || len != strlen(nonce) || memcmp(payload, nonce, len))
		return;   /* an earlier connection's sentinel */
	m->board_checking = false;
	if (mqtt_topic(m, board, sizeof(board), "alarms/+") == 0)
		mosquitto_unsubscribe(m->mosq, NULL, board);
	if (mqtt_topic(m, sync, sizeof(sync), "gateway/sync") == 0)
		mosquitto_unsubscribe(m->mosq, NULL, sync);
}

static void schedule_reconnect(struct manager *m)
{
	int enabled = SD_EVENT_OFF;
	sd_event_source_get_enabled(m->mqtt_retry, &enabled);
	if (enabled != SD_EVENT_OFF || m->shutting_down)
		return;
	sd_event_source_set_time_relative(m->mqtt_retry, (uint64_t)m->mqtt_backoff_ms * 1000);
	sd_event_source_set_enabled(m->mqtt_retry, SD_EVENT_ONESHOT);
	m->mqtt_backoff_ms = m->mqtt_backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                             : m->mqtt_backoff_ms * 2;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	int rc = MOSQ_ERR_SUCCESS;
	(void)s;
	(void)fd;
	if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
		rc = mosquitto_loop_read(m->mosq, 1);
	if (rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT) && mosquitto_socket(m->mosq) >= 0)
		rc = mosquitto_loop_write(m->mosq, 1);
	/* A connection attempt that failed (refused, TLS handshake) can leave
	 * libmosquitto's socket open and hung up: drop it and retry later
	 * instead of spinning on EPOLLHUP. */
	if (!m->mqtt_connected && mosquitto_socket(m->mosq) >= 0 &&
	    (rc != MOSQ_ERR_SUCCESS || (revents & (EPOLLHUP | EPOLLERR)))) {
		log_warning("mqtt: connecting to %s:%d failed (%s); retrying in %llds", m->cfg->mqtt.host,
		            m->cfg->mqtt.port,
		            rc == MOSQ_ERR_ERRNO ? strerror(errno)
		            : rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "connection closed",
		            (long long)m->mqtt_backoff_ms / 1000);
		m->mqtt_abandoned = true;
	}
	sync_io(m);
	return 0;
}

static void sync_io(struct manager *m)
{
	/* An abandoned attempt's socket is closed by the next reconnect. */
	int fd = m->mqtt_abandoned ? -1 : mosquitto_socket(m->mosq);
	if (fd != m->mqtt_fd) {
		m->mqtt_io = sd_event_source_disable_unref(m->mqtt_io);
		m->mqtt_fd = fd;
		if (fd >= 0) {
			int r = sd_event_add_io(m->event, &m->mqtt_io, fd, EPOLLIN, on_io, m);
			if (r < 0)
				log_error("mqtt: cannot watch the broker socket: %s", strerror(-r));
		}
	}
	if (m->mqtt_io)
		sd_event_source_set_io_events(m->mqtt_io,
		                              EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0));
	else
		schedule_reconnect(m);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	(void)s;
	(void)usec;
	m->mqtt_abandoned = false;
	int rc = mosquitto_reconnect_async(m->mosq);   /* closes any old socket first */
	if (rc != MOSQ_ERR_SUCCESS)
		log_warning("mqtt: cannot connect to %s:%d: %s; retrying in %llds", m->cfg->mqtt.host,
		            m->cfg->mqtt.port,
		            rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
		            (long long)m->mqtt_backoff_ms / 1000);
	m->mqtt_fd = -2;  /* a new socket may reuse the old number: re-register */
	sync_io(m);
	return 0;
}

static int on_misc(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	(void)usec;
	if (mosquitto_socket(m->mosq) >= 0 && !m->mqtt_abandoned)
		mosquitto_loop_misc(m->mosq);  /* keepalive pings, dead-broker detection */
	sync_io(m);
	sd_event_source_set_time_relative(s, 1000000);
	return 0;
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc)
{
	struct manager *m = userdata;
	char topic[512];
	if (rc != 0) {
		log_error("mqtt: broker %s:%d refused the connection: %s", m->cfg->mqtt.host,
		          m->cfg->mqtt.port, mosquitto_connack_string(rc));
		return;  /* the broker closes; sync_io schedules the retry */
	}
	m->mqtt_connected = true;
	m->mqtt_backoff_ms = BACKOFF_MIN_MS;
	log_notice("mqtt: connected to %s:%d as %s", m->cfg->mqtt.host, m->cfg->mqtt.port,
	           m->cfg->mqtt.client_id);
	static const char *subs[] = { "dev/+/event", "worker/+/action" };
	for (size_t i = 0; i < sizeof(subs) / sizeof(*subs); i++) {
		if (mqtt_topic(m, topic, sizeof(topic), "%s", subs[i]) < 0)
			continue;
		int r = mosquitto_subscribe(mosq, NULL, topic, 1);
		if (r != MOSQ_ERR_SUCCESS)
			log_error("mqtt: cannot subscribe to %s: %s", topic, mosquitto_strerror(r));
	}
	for (size_t i = 0; i < m->cfg->n_sources; i++) {
		if (!m->cfg->sources[i]->topic)
			continue;   /* sia-dc09: not on the broker */
		int r = mosquitto_subscribe(mosq, NULL, m->cfg->sources[i]->topic, 1);
		if (r != MOSQ_ERR_SUCCESS)
			log_error("mqtt: cannot subscribe to %s for source %s: %s", m->cfg->sources[i]->topic,
			          m->cfg->sources[i]->name, mosquitto_strerror(r));
	}
	publish_presence(m, "online");
	board_check_start(m);
	/* Retained state once per connection, coalesced with what waits. */
	publish_all_open(m);
	outbox_pump(m);
	supervise_broker(m, true);
	manager_status(m);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc)
{
	struct manager *m = userdata;
	(void)mosq;
	if (m->shutting_down)
		;
	else if (m->mqtt_connected)
		log_warning("mqtt: lost the connection to %s:%d (%s); reconnecting", m->cfg->mqtt.host,
		            m->cfg->mqtt.port, rc ? mosquitto_strerror(rc) : "closed");
	else  /* refused, TLS failure, or closed before CONNACK */
		log_warning("mqtt: connecting to %s:%d failed (%s); retrying in %llds", m->cfg->mqtt.host,
		            m->cfg->mqtt.port, rc ? mosquitto_strerror(rc) : "closed by the broker",
		            (long long)m->mqtt_backoff_ms / 1000);
	m->mqtt_connected = false;
	m->board_checking = false;
	m->mqtt_fd = -2;
	if (!m->shutting_down)
		supervise_broker(m, false);
	manager_status(m);
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid)
{
	(void)mosq;
	outbox_puback(userdata, mid);
}

/* libmosquitto's own errors say what went wrong in TLS ("certificate verify
 * failed") where its return codes say only "a TLS error occurred". */
static void on_log(struct mosquitto *mosq, void *userdata, int level, const char *text)
{
	(void)mosq;
	(void)userdata;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		log_full(level & MOSQ_LOG_ERR ? LOG_ERR : LOG_WARNING, NULL, 0, NULL, "mqtt: %s", text);
}

/* "<prefix>/<rest>": return rest, or NULL. */
static const char *strip_prefix(const struct manager *m, const char *topic)
{
	size_t n = strlen(m->cfg->mqtt.prefix);
	if (strncmp(topic, m->cfg->mqtt.prefix, n) || topic[n] != '/')
		return NULL;
	return topic + n + 1;
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg)
{
	struct manager *m = userdata;
	(void)mosq;
	if (m->shutting_down)
		return;  /* no receipt: the device resends to the next run */
	for (size_t i = 0; i < m->cfg->n_sources; i++) {
		bool match = false;
		const struct tc_source *src = m->cfg->sources[i];
		if (src->topic &&   /* sia-dc09: not on the broker */
		    mosquitto_topic_matches_sub(src->topic, msg->topic, &match) == MOSQ_ERR_SUCCESS && match) {
			/* A retained state replayed on (re)subscribing is not news:
			 * a stale "smoke": true must not open a new alarm. */
			if (!msg->retain)
				ingest_source(m, src, msg->topic, msg->payload, (size_t)msg->payloadlen);
			return;
		}
	}
	const char *rest = strip_prefix(m, msg->topic);
	if (!rest)
		return;
	if (strncmp(rest, "dev/", 4) == 0) {
		const char *dev = rest + 4, *end = strchr(dev, '/');
		if (end && strcmp(end, "/event") == 0)
			ingest_message(m, dev, (size_t)(end - dev), msg->payload, (size_t)msg->payloadlen);
	} else if (strncmp(rest, "worker/", 7) == 0) {
		const char *w = rest + 7, *end = strchr(w, '/');
		if (!end || strcmp(end, "/action"))
			return;
		if (msg->retain) {
			/* SPEC 2.5: an action happens once, when it is sent. A
			 * retained one would be applied again on every reconnect. */
			char clean[80];
			log_warning("worker %s: retained action ignored and cleared (actions must not be "
			            "retained)", tc_sanitize(w, (size_t)(end - w), clean, sizeof(clean)));
			if (msg->payloadlen)
				mqtt_publish(m, msg->topic, "", 0, true, NULL);
			return;
		}
		action_message(m, w, (size_t)(end - w), msg->payload, (size_t)msg->payloadlen);
	} else if (strncmp(rest, "alarms/", 7) == 0) {
		if (m->board_checking)
			publish_board_seen(m, rest + 7, strlen(rest + 7), msg->retain,
			                   (size_t)msg->payloadlen);
	} else if (strcmp(rest, "gateway/sync") == 0) {
		board_check_end(m, msg->payload, (size_t)msg->payloadlen);
	}
}

static char *read_password(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	char buf[512] = "";
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

int mqtt_init(struct manager *m)
{
	const struct config *c = m->cfg;
	char topic[512];
	int rc;

	mosquitto_lib_init();
	m->mqtt_fd = -1;
	m->mqtt_backoff_ms = BACKOFF_MIN_MS;
	m->mosq = mosquitto_new(c->mqtt.client_id, false, m);
	if (!m->mosq) {
		log_error("mqtt: cannot create a client: %s", strerror(errno));
		return -ENOMEM;
	}
	mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* Receipts and alerts are small and urgent: without this, Nagle holds
	 * each one back for the broker's next packet or a 40 ms delayed ACK. */
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	/* Receipts are many and small: do not hold them back behind 20 in flight. */
	mosquitto_max_inflight_messages_set(m->mosq, 0);
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_message_callback_set(m->mosq, on_message);
	mosquitto_log_callback_set(m->mosq, on_log);
	mosquitto_publish_callback_set(m->mosq, on_publish);

	if (mqtt_topic(m, topic, sizeof(topic), "gateway/status") == 0 &&
	    (rc = mosquitto_will_set(m->mosq, topic, 7, "offline", 1, true)) != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: cannot set the will: %s", mosquitto_strerror(rc));
		return -EINVAL;
	}
	if (c->mqtt.username) {
		char *pw = NULL;
		if (c->mqtt.password_file && !(pw = read_password(c->mqtt.password_file))) {
			log_error("mqtt: cannot read password_file %s: %s", c->mqtt.password_file,
			          strerror(errno));
			return -errno;
		}
		rc = mosquitto_username_pw_set(m->mosq, c->mqtt.username, pw);
		if (pw)
			explicit_bzero(pw, strlen(pw));
		free(pw);
		if (rc != MOSQ_ERR_SUCCESS) {
			log_error("mqtt: bad username or password: %s", mosquitto_strerror(rc));
			return -EINVAL;
		}
	}
	if (c->mqtt.cafile) {
		rc = mosquitto_tls_set(m->mosq, c->mqtt.cafile, NULL, c->mqtt.certfile, c->mqtt.keyfile,
		                       NULL);
		if (rc != MOSQ_ERR_SUCCESS) {
			log_error("mqtt: TLS setup with cafile %s failed: %s", c->mqtt.cafile,
			          rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			return -EINVAL;
		}
	}

	rc = sd_event_add_time(m->event, &m->mqtt_retry, CLOCK_MONOTONIC, 0, 0,
	                                on_retry, m);
	if (rc < 0)
		return rc;
	sd_event_source_set_enabled(m->mqtt_retry, SD_EVENT_OFF);
	rc = sd_event_add_time_relative(m->event, &m->mqtt_misc, CLOCK_MONOTONIC, 1000000, 0,
	                                on_misc, m);
	if (rc < 0)
		return rc;
	sd_event_source_set_enabled(m->mqtt_misc, SD_EVENT_ON);

	/* Starting while the broker is down is fine: the retry timer takes over. */
	rc = mosquitto_connect_async(m->mosq, c->mqtt.host, c->mqtt.port, c->mqtt.keepalive);
	if (rc != MOSQ_ERR_SUCCESS)
		log_warning("mqtt: cannot connect to %s:%d: %s; retrying in %llds", c->mqtt.host,
		            c->mqtt.port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc),
		            (long long)m->mqtt_backoff_ms / 1000);
	sync_io(m);
	return 0;
}

void mqtt_shutdown(struct manager *m)
{
	if (!m->mosq)
		return;
	m->shutting_down = true;
	if (m->mqtt_connected) {
		/* What waited for the last commit (receipts, answers, alerts)
		 * goes to the broker first, for a bounded time. */
		int64_t deadline = tc_mono_ms() + 2000;
		while ((outbox_queued(m) || outbox_inflight(m)) && m->mqtt_connected &&
		       tc_mono_ms() < deadline && mosquitto_loop(m->mosq, 50, 1) == MOSQ_ERR_SUCCESS)
			outbox_pump(m);
		if (outbox_queued(m) || outbox_inflight(m))
			log_warning("mqtt: stopping with %zu messages not sent and %zu not acknowledged",
			            outbox_queued(m), outbox_inflight(m));
		/* Tell consoles we left on purpose; the will covers the other case. */
		publish_presence(m, "offline");
		mosquitto_disconnect(m->mosq);
		deadline = tc_mono_ms() + 1000;
		while (mosquitto_socket(m->mosq) >= 0 && tc_mono_ms() < deadline &&
		       mosquitto_loop(m->mosq, 50, 1) == MOSQ_ERR_SUCCESS)
			;
	}
}

void mqtt_free(struct manager *m)
{
	m->mqtt_io = sd_event_source_disable_unref(m->mqtt_io);
	m->mqtt_misc = sd_event_source_disable_unref(m->mqtt_misc);
	m->mqtt_retry = sd_event_source_disable_unref(m->mqtt_retry);
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	mosquitto_lib_cleanup();
}
