/* telecared: the telecare alarm gateway. Start-up, signals, systemd
 * notification, and shutdown; the work is done by the event sources the
 * other files add to the one loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "telecared.h"
#include "telecare/dc09.h"
#include "telecare/timefmt.h"

#define STATUS_INTERVAL_US (5 * 1000000ULL)

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: telecared [-c FILE] [--check-config]\n"
		"\n"
		"The telecare alarm gateway: device alarms from MQTT, stored in SQLite,\n"
		"receipted, and shown to the care centre.\n"
		"\n"
		"  -c, --config FILE   configuration file (default %s;\n"
		"                      built-in defaults when that file does not exist)\n"
		"      --check-config  validate the configuration and exit\n"
		"      --check-db      check the whole database file (read-only) and exit\n"
		"  -h, --help          this text\n"
		"      --version       print the version\n"
		"\n"
		"Runs in the foreground and logs to stderr (to the journal under systemd).\n"
		"SIGHUP reloads the configuration; SIGTERM stops cleanly.\n"
		"See telecared(8) and telecared.conf(5).\n",
		TELECARE_CONFIG_PATH);
}

json_t *manager_loop_json(const struct manager *m)
{
	return json_pack("{s:I, s:f, s:o, s:I, s:I}", "iterations", (json_int_t)m->loop.iterations,
	                 "worst_ms", (double)m->loop.worst_us / 1000.0,
	                 "worst_at", json_time_or_null(m->loop.worst_at),
	                 "over_10ms", (json_int_t)m->loop.over_10ms,
	                 "over_100ms", (json_int_t)m->loop.over_100ms);
}

static void manager_stop(struct manager *m)
{
	m->shutting_down = true;           /* MQTT input is ignored: devices resend */
	control_stop(m);
	http_stop(m);
	if (m->store && store_flush(m) < 0)
		log_error("stopping with %zu writes not on disk", store_pending(m));
	mqtt_shutdown(m);                  /* drains the outbox, then "offline" */
}

void manager_status(struct manager *m)
{
	http_status_changed(m);
	const char *err;
	bool ok = m->store ? store_ok(m, &err) : true;
	sd_notifyf(false, "STATUS=%s; %llu events stored, %llu rejected; %zu open alarms%s%s",
	           m->mqtt_connected ? "connected to broker" : "broker not connected",
	           (unsigned long long)m->count.stored, (unsigned long long)m->count.rejected,
	           m->alarms.len, ok ? "" : "; DATABASE WRITES FAILING: ", ok ? "" : err);
}

static int clock_watch_arm(int fd);

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)usec;
	manager_status(userdata);
	/* The source is SD_EVENT_ON: moving its time is all it takes to come again. */
	int r = sd_event_source_set_time_relative(s, STATUS_INTERVAL_US);
	if (r < 0)
		log_error("cannot re-arm the status timer: %s", strerror(-r));
	return 0;
}

/* The wall clock was set (NTP step, an operator, a VM resumed): timers run
 * on boottime and do not care, but say so, with how far it went. */
static int on_clock_set(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	uint64_t buf;
	(void)s;
	(void)revents;
	if (read(fd, &buf, sizeof(buf)) < 0 && errno != ECANCELED && errno != EAGAIN)
		log_warning("clock watch: %s", strerror(errno));
	int64_t offset = tc_now_ms() - tc_mono_ms();
	log_notice("the wall clock was set (by %+.3f s); escalation and supervision follow elapsed "
	           "time and are not moved", (double)(offset - m->wall_offset) / 1000.0);
	m->wall_offset = offset;
	return clock_watch_arm(fd);
}

/* A timerfd that fires only when CLOCK_REALTIME is set (timesyncd does the same). */
static int clock_watch_arm(int fd)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)INT64_MAX } };
	if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0) {
		log_warning("clock watch: %s", strerror(errno));
		return 0;
	}
	return 0;
}

static int clock_watch(struct manager *m)
{
	int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	m->wall_offset = tc_now_ms() - tc_mono_ms();
	clock_watch_arm(fd);
	int r = sd_event_add_io(m->event, &m->clock_watch, fd, EPOLLIN, on_clock_set, m);
	if (r < 0) {
		close(fd);
		return r;
	}
	sd_event_source_set_io_fd_own(m->clock_watch, true);
	sd_event_source_set_description(m->clock_watch, "clock-watch");
	return 0;
}

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* sd_event_loop(), measured: every dispatch runs one callback, and the
 * longest is the loop's worst gap (SPEC 7: the loop never stalls for long;
 * telecarectl status shows it, the benchmarks read it). */
static int run_loop(struct manager *m)
{
	for (;;) {
		if (sd_event_get_state(m->event) == SD_EVENT_FINISHED)
			break;
		int r = sd_event_prepare(m->event);
		if (r == 0)
			r = sd_event_wait(m->event, UINT64_MAX);
		if (r > 0) {
			int64_t t0 = mono_us();
			r = sd_event_dispatch(m->event);
			int64_t took = mono_us() - t0;
			m->loop.iterations++;
			if (took > m->loop.worst_us) {
				m->loop.worst_us = took;
				m->loop.worst_at = tc_now_ms();
			}
			m->loop.over_10ms += took > 10000;
			m->loop.over_100ms += took > 100000;
		}
		if (r < 0)
			return r;
	}
	int code = 0;
	sd_event_get_exit_code(m->event, &code);
	return code;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	(void)s;
	log_notice("received %s, stopping", strsignal((int)si->ssi_signo));
	sd_notify(false, "STOPPING=1");
	return sd_event_exit(m->event, 0);
}

static bool differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

static bool source_differs(const struct tc_source *a, const struct tc_source *b)
{
	if (a->format != b->format || differ(a->topic, b->topic) || a->n_rules != b->n_rules ||
	    differ(a->listen, b->listen) || differ(a->keys, b->keys) ||
	    a->max_age_ms != b->max_age_ms || a->max_lead_ms != b->max_lead_ms ||
	    a->idle_ms != b->idle_ms || a->max_connections != b->max_connections ||
	    a->n_dc09_rules != b->n_dc09_rules)
		return true;
	for (size_t i = 0; i < a->n_dc09_rules; i++)
		if (a->dc09_rules[i].kind != b->dc09_rules[i].kind ||
		    a->dc09_rules[i].type != b->dc09_rules[i].type ||
		    strcmp(a->dc09_rules[i].match, b->dc09_rules[i].match))
			return true;
	for (size_t i = 0; i < a->n_rules; i++)
		if (strcmp(a->rules[i].field, b->rules[i].field) ||
		    strcmp(a->rules[i].value, b->rules[i].value) || a->rules[i].type != b->rules[i].type)
			return true;
	return false;
}

/* SIGHUP applies what can change at run time; what takes a restart is named,
 * key by key, so an operator is never left guessing. */
static void reload_warn(const struct config *c, const struct config *n)
{
	const struct { const char *key; bool changed; } keys[] = {
		{ "[mqtt] host", differ(c->mqtt.host, n->mqtt.host) },
		{ "[mqtt] port", c->mqtt.port != n->mqtt.port },
		{ "[mqtt] client_id", differ(c->mqtt.client_id, n->mqtt.client_id) },
		{ "[mqtt] topic_prefix", differ(c->mqtt.prefix, n->mqtt.prefix) },
		{ "[mqtt] keepalive", c->mqtt.keepalive != n->mqtt.keepalive },
		{ "[mqtt] username", differ(c->mqtt.username, n->mqtt.username) },
		{ "[mqtt] password_file", differ(c->mqtt.password_file, n->mqtt.password_file) },
		{ "[mqtt] cafile", differ(c->mqtt.cafile, n->mqtt.cafile) },
		{ "[mqtt] certfile", differ(c->mqtt.certfile, n->mqtt.certfile) },
		{ "[mqtt] keyfile", differ(c->mqtt.keyfile, n->mqtt.keyfile) },
		{ "[store] path", differ(c->store_path, n->store_path) },
		{ "[control] socket", differ(c->socket_path, n->socket_path) },
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(*keys); i++)
		if (keys[i].changed)
			log_warning("reload: %s changed: it takes effect at the next restart", keys[i].key);
	for (size_t i = 0; i < n->n_sources; i++) {
		const struct tc_source *old = source_get(c, n->sources[i]->name);
		if (!old || source_differs(old, n->sources[i]))
			log_warning("reload: [source %s] %s: it takes effect at the next restart",
			            n->sources[i]->name, old ? "changed" : "added");
	}
	for (size_t i = 0; i < c->n_sources; i++)
		if (!source_get(n, c->sources[i]->name))
			log_warning("reload: [source %s] removed: it takes effect at the next restart",
			            c->sources[i]->name);
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	char err[512];
	(void)s;
	(void)si;
	sd_notify(false, "RELOADING=1");
	struct config *n = config_load(m->cfg->file, err, sizeof(err));
	if (!n) {
		log_error("reload refused, keeping the running configuration: %s", err);
	} else {
		/* What can change at run time; the rest takes a restart. */
		struct config *c = m->cfg;
		reload_warn(c, n);
		c->unknown_devices = n->unknown_devices;
		c->device_rate = n->device_rate;
		c->device_burst = n->device_burst;
		c->mqtt.max_payload = n->mqtt.max_payload;
		c->receipt_queue = n->receipt_queue;
		outbox_limits(m);
		c->mass = n->mass;
		memcpy(c->priority, n->priority, sizeof(c->priority));
		c->sup = n->sup;
		char **o = c->outcomes;
		size_t no = c->n_outcomes;
		c->outcomes = n->outcomes;
		c->n_outcomes = n->n_outcomes;
		n->outcomes = o;
		n->n_outcomes = no;
		/* New alarms take the new policies; open ones keep a reference to
		 * the policy they were opened with (SPEC 4). */
		struct policy **pp = c->policies;
		size_t np = c->n_policies;
		c->policies = n->policies;
		c->n_policies = n->n_policies;
		n->policies = pp;
		n->n_policies = np;
		config_free(n);
		dc09_reload(m);   /* the keys files: a panel added without a restart */
		log_notice("configuration reloaded from %s", c->file ? c->file : "built-in defaults");
	}
	sd_notify(false, "READY=1");
	manager_status(m);
	return 0;
}

static struct config *load_config(struct manager *m, char *err, size_t errlen)
{
	/* The default file is optional: without it the embedded defaults apply.
	 * A file named with -c must exist. */
	if (!m->config_required && access(m->config_path, F_OK) < 0 && errno == ENOENT)
		return config_load(NULL, err, errlen);
	return config_load(m->config_path, err, errlen);
}

static void manager_free(struct manager *m)
{
	control_close(m);
	http_free(m);
	hash_free(m);
	users_free(m);
	supervise_free(m);
	escalate_free(m);
	mqtt_free(m);
	outbox_free(m);
	store_close(m);      /* DC-09 replies still waiting hear of it: after it, */
	dc09_free(m);        /* their connections go */
	alarms_free(m);
	mass_free(m);
	m->clock_watch = sd_event_source_disable_unref(m->clock_watch);
	registry_free(m);
	roster_free(m);
	map_free(&m->pending);  /* values are integers, not pointers */
	map_free(&m->unmapped_seen);
	void *b;
	for (size_t it = 0; map_next(&m->buckets, &it, NULL, &b);)
		free(b);
	map_free(&m->buckets);
	sd_event_source_disable_unref(m->status_timer);
	config_free(m->cfg);
	sd_event_unref(m->event);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "check-db", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct manager m = { .config_path = TELECARE_CONFIG_PATH };
	bool check = false, check_db = false;
	int c, r;
	char err[512];

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': m.config_path = optarg; m.config_required = true; break;
		case 'C': check = true; break;
		case 'D': check_db = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("telecared %s\n", TELECARE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "telecared: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	log_init();
	m.cfg = load_config(&m, err, sizeof(err));
	if (!m.cfg) {
		fprintf(stderr, "telecared: %s\n", err);
		return 1;
	}
	if (check_db) {
		r = store_check(m.cfg->store_path, stdout);
		config_free(m.cfg);
		return r;
	}
	if (check) {
		/* The files it names must be readable too, or the start would fail later. */
		const char *files[] = { m.cfg->mqtt.password_file, m.cfg->mqtt.cafile,
		                        m.cfg->mqtt.certfile, m.cfg->mqtt.keyfile };
		const char *keys[] = { "password_file", "cafile", "certfile", "keyfile" };
		int bad = 0;
		if (control_check_path(m.cfg, m.cfg->socket_path, err, sizeof(err)) < 0) {
			fprintf(stderr, "telecared: %s: %s\n", m.cfg->file ? m.cfg->file : "built-in defaults",
			        err);
			bad = 1;
		}
		for (size_t i = 0; i < 4; i++) {
			if (files[i] && access(files[i], R_OK) < 0) {
				fprintf(stderr, "telecared: %s: [mqtt] %s %s: %s\n", m.cfg->file, keys[i],
				        files[i], strerror(errno));
				bad = 1;
			}
		}
		bad |= dc09_check_config(m.cfg, stderr);
		if (!bad)
			printf("%s: ok\n", m.cfg->file ? m.cfg->file : "built-in defaults");
		config_free(m.cfg);
		return bad;
	}
	m.started_at = tc_now_ms();
	log_notice("telecared %s starting (configuration: %s)", TELECARE_VERSION,
	           m.cfg->file ? m.cfg->file : "built-in defaults");

	sigset_t ss;
	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);

	if ((r = sd_event_default(&m.event)) < 0 ||
	    (r = sd_event_add_signal(m.event, NULL, SIGTERM, on_term, &m)) < 0 ||
	    (r = sd_event_add_signal(m.event, NULL, SIGINT, on_term, &m)) < 0 ||
	    (r = sd_event_add_signal(m.event, NULL, SIGHUP, on_hup, &m)) < 0 ||
	    (r = sd_event_set_watchdog(m.event, true)) < 0) {
		log_error("cannot set up the event loop: %s", strerror(-r));
		goto out;
	}
	if ((r = store_open(&m, m.cfg->store_path)) < 0 || (r = store_load(&m)) < 0 ||
	    (r = users_load(&m)) < 0)
		goto out;
	log_info("database %s: %zu residents, %zu devices, %zu unresolved alarms",
	         m.cfg->store_path, m.residents.len, m.devices.len, m.alarms.len);
	if ((r = control_open(&m, m.cfg->socket_path)) < 0) {
		log_error("cannot open the control socket %s: %s", m.cfg->socket_path, strerror(-r));
		goto out;
	}
	/* Open incidents whole again, and a restart in a blackout folded
	 * before anything is alerted; then supervision knows who is silent. */
	if ((r = outbox_init(&m)) < 0 || (r = escalate_init(&m)) < 0 || (r = mass_load(&m)) < 0 ||
	    (r = supervise_init(&m)) < 0 || (r = http_init(&m)) < 0 || (r = mqtt_init(&m)) < 0 ||
	    (r = dc09_init(&m)) < 0)
		goto out;
	r = sd_event_add_time_relative(m.event, &m.status_timer, CLOCK_BOOTTIME, STATUS_INTERVAL_US,
	                               0, on_status_timer, &m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m.status_timer, SD_EVENT_ON);
	if (r < 0 || (r = clock_watch(&m)) < 0) {
		log_error("cannot set up the timers: %s", strerror(-r));
		goto out;
	}

	sd_notify(false, "READY=1");
	manager_status(&m);
	r = run_loop(&m);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
	/* The order of a clean stop: no new input; what is queued on disk; what
	 * waited for it (receipts, answers) to the broker; then leave. */
	manager_stop(&m);
out:
	manager_free(&m);
	if (r < 0) {
		log_error("exiting on error: %s", strerror(-r));
		return 1;
	}
	log_notice("stopped");
	return 0;
}
