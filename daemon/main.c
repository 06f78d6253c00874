/* telecared: the telecare alarm gateway. Start-up, signals, systemd
 * notification, and shutdown; the work is done by the event sources the
 * other files add to the one loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "telecared.h"
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
		"  -h, --help          this text\n"
		"      --version       print the version\n"
		"\n"
		"Runs in the foreground and logs to stderr (to the journal under systemd).\n"
		"SIGHUP reloads the configuration; SIGTERM stops cleanly.\n"
		"See telecared(8) and telecared.conf(5).\n",
		TELECARE_CONFIG_PATH);
}

void manager_status(struct manager *m)
{
	const char *err;
	bool ok = m->store ? store_ok(m, &err) : true;
	sd_notifyf(false, "STATUS=%s; %llu events stored, %llu rejected; %zu open alarms%s%s",
	           m->mqtt_connected ? "connected to broker" : "broker not connected",
	           (unsigned long long)m->count.stored, (unsigned long long)m->count.rejected,
	           m->alarms.len, ok ? "" : "; DATABASE WRITES FAILING: ", ok ? "" : err);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)usec;
	manager_status(userdata);
	sd_event_source_set_time_relative(s, STATUS_INTERVAL_US);
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;
	(void)s;
	log_notice("received %s, stopping", strsignal((int)si->ssi_signo));
	sd_notify(false, "STOPPING=1");
	return sd_event_exit(m->event, 0);
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
		c->unknown_devices = n->unknown_devices;
		c->device_rate = n->device_rate;
		c->device_burst = n->device_burst;
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
		if (strcmp(c->mqtt.host, n->mqtt.host) || c->mqtt.port != n->mqtt.port ||
		    strcmp(c->mqtt.prefix, n->mqtt.prefix) || strcmp(c->store_path, n->store_path) ||
		    strcmp(c->socket_path, n->socket_path))
			log_warning("reload: [mqtt], [store] and [control] changes take effect at the next restart");
		config_free(n);
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
	hash_free(m);
	users_free(m);
	supervise_free(m);
	escalate_free(m);
	mqtt_free(m);
	store_close(m);
	alarms_free(m);
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
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	struct manager m = { .config_path = TELECARE_CONFIG_PATH };
	bool check = false;
	int c, r;
	char err[512];

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': m.config_path = optarg; m.config_required = true; break;
		case 'C': check = true; break;
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
	if ((r = escalate_init(&m)) < 0 || (r = supervise_init(&m)) < 0 || (r = mqtt_init(&m)) < 0)
		goto out;
	r = sd_event_add_time_relative(m.event, &m.status_timer, CLOCK_MONOTONIC, STATUS_INTERVAL_US,
	                               0, on_status_timer, &m);
	if (r < 0)
		goto out;

	sd_notify(false, "READY=1");
	manager_status(&m);
	r = sd_event_loop(m.event);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
	mqtt_shutdown(&m);
out:
	manager_free(&m);
	if (r < 0) {
		log_error("exiting on error: %s", strerror(-r));
		return 1;
	}
	log_notice("stopped");
	return 0;
}
