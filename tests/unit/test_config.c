/* The configuration file (SPEC 5): config_load (daemon/config.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "telecared.h"
#include "telecare/dc09.h"

static char dir[64];
static char path[128];
static char err[512];
static int nfiles;

static int group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/telecare-test-config-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < nfiles; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%d.conf", dir, i);
		unlink(p);
	}
	rmdir(dir);
	return 0;
}

/* Write text to a new file; its name is left in path. */
static const char *write_conf(const char *text)
{
	snprintf(path, sizeof(path), "%s/%d.conf", dir, nfiles++);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

static struct config *load(const char *text)
{
	err[0] = '\0';
	struct config *c = config_load(write_conf(text), err, sizeof(err));
	if (!c)
		fail_msg("config rejected: %s\n--- file ---\n%s", err, text);
	assert_string_equal(c->file, path);
	return c;
}

/* Expect the text to be rejected at line `line` with a message containing `what`. */
static void load_bad(const char *text, int line, const char *what)
{
	err[0] = '\0';
	struct config *c = config_load(write_conf(text), err, sizeof(err));
	if (c) {
		config_free(c);
		fail_msg("config accepted, expected an error at line %d\n--- file ---\n%s", line, text);
	}
	char prefix[160];
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
	if (strlen(err) <= strlen(prefix) + 3)
		fail_msg("error \"%s\" says nothing", err);
	if (what && !strstr(err, what))
		fail_msg("error \"%s\" does not mention \"%s\"", err, what);
}

static void assert_default_priorities(const struct config *c)
{
	for (int t = 0; t < TC_T__COUNT; t++)
		assert_int_equal(c->priority[t], tc_type_default_priority((enum tc_type)t));
}

static void test_defaults(void **state)
{
	(void)state;
	struct config *c = config_load(NULL, err, sizeof(err));
	assert_non_null(c);
	assert_null(c->file);
	assert_string_equal(c->mqtt.host, "127.0.0.1");
	assert_int_equal(c->mqtt.port, 1883);
	assert_string_equal(c->mqtt.client_id, "telecared");
	assert_string_equal(c->mqtt.prefix, "telecare");
	assert_int_equal(c->mqtt.keepalive, 30);
	assert_int_equal(c->mqtt.max_payload, 4096);
	assert_null(c->mqtt.username);
	assert_null(c->mqtt.password_file);
	assert_null(c->mqtt.cafile);
	assert_null(c->mqtt.certfile);
	assert_null(c->mqtt.keyfile);
	assert_string_equal(c->store_path, TELECARE_DB_PATH);
	assert_string_equal(c->socket_path, TELECARE_SOCKET_PATH);
	assert_int_equal(c->unknown_devices, UNKNOWN_ALARM);
	assert_default_priorities(c);
	static const char *outcomes[] = { "assisted_by_phone", "visit", "ambulance", "police",
	                                  "fire", "false_alarm", "user_cancelled",
	                                  "technical_fixed", "restored", "test" };
	assert_int_equal(c->n_outcomes, 10);
	for (size_t i = 0; i < 10; i++) {
		assert_string_equal(c->outcomes[i], outcomes[i]);
		assert_true(config_outcome_valid(c, outcomes[i]));
	}
	assert_false(config_outcome_valid(c, "nope"));
	assert_false(config_outcome_valid(c, ""));
	config_free(c);
	config_free(NULL);
}

static void test_empty_file_is_defaults(void **state)
{
	(void)state;
	struct config *c = load("");
	assert_int_equal(c->mqtt.port, 1883);
	assert_int_equal(c->n_outcomes, 10);
	config_free(c);
	c = load("; only a comment\n# and another\n\n");
	assert_string_equal(c->mqtt.host, "127.0.0.1");
	config_free(c);
}

/* The example of SPEC 5, verbatim. */
static const char spec_example[] =
	"[mqtt]\n"
	"host = 127.0.0.1\n"
	"port = 1883\n"
	"client_id = telecared\n"
	"topic_prefix = telecare\n"
	"keepalive = 30\n"
	"max_payload = 4096\n"
	"username =\n"
	"password_file =\n"
	"cafile =\n"
	"certfile =\n"
	"keyfile =\n"
	"\n"
	"[store]\n"
	"path = /var/lib/telecare/telecare.db\n"
	"\n"
	"[control]\n"
	"socket = /run/telecare/control.sock\n"
	"\n"
	"[alarms]\n"
	"unknown_devices = alarm\n"
	"\n"
	"[priorities]\n"
	"inactivity = 1\n"
	"\n"
	"[outcomes]\n"
	"list = assisted_by_phone, visit, ambulance, police, fire, false_alarm, user_cancelled, "
	"technical_fixed, restored, test\n"
	"\n"
	"[policy urgent]\n"
	"priorities = 1\n"
	"step = on_duty:@team wait 60s\n";

static void test_spec_example(void **state)
{
	(void)state;
	struct config *c = load(spec_example);
	assert_string_equal(c->mqtt.host, "127.0.0.1");
	assert_int_equal(c->mqtt.port, 1883);
	assert_string_equal(c->mqtt.client_id, "telecared");
	assert_string_equal(c->mqtt.prefix, "telecare");
	assert_int_equal(c->mqtt.keepalive, 30);
	assert_int_equal(c->mqtt.max_payload, 4096);
	assert_null(c->mqtt.username);
	assert_null(c->mqtt.password_file);
	assert_null(c->mqtt.cafile);
	assert_null(c->mqtt.certfile);
	assert_null(c->mqtt.keyfile);
	assert_string_equal(c->store_path, "/var/lib/telecare/telecare.db");
	assert_string_equal(c->socket_path, "/run/telecare/control.sock");
	assert_int_equal(c->unknown_devices, UNKNOWN_ALARM);
	assert_int_equal(c->priority[TC_T_INACTIVITY], 1);
	assert_int_equal(c->priority[TC_T_PANIC], 1);
	assert_int_equal(c->priority[TC_T_DOOR], 2);
	assert_int_equal(c->priority[TC_T_LOW_BATTERY], 3);
	assert_int_equal(c->n_outcomes, 10);
	assert_string_equal(c->outcomes[0], "assisted_by_phone");
	assert_string_equal(c->outcomes[9], "test");
	assert_true(config_outcome_valid(c, "technical_fixed"));
	config_free(c);
}

static void test_full_non_defaults(void **state)
{
	(void)state;
	struct config *c = load(
		"; telecared test configuration\n"
		"[mqtt]\n"
		"host = broker.example\n"
		"port = 8883\n"
		"client_id = gw-1\n"
		"topic_prefix = care/site-a\n"
		"keepalive = 60   ; inline comment\n"
		"max_payload = 65536\n"
		"username = gateway\n"
		"password_file = /etc/telecare/mqtt.pass\n"
		"cafile = /etc/ssl/ca.pem\n"
		"certfile = /etc/telecare/cert.pem\n"
		"keyfile = /etc/telecare/key.pem\n"
		"[store]\n"
		"path = /tmp/x.db\n"
		"[control]\n"
		"socket = /tmp/x.sock\n"
		"[alarms]\n"
		"unknown_devices = log\n"
		"[priorities]\n"
		"low_battery = 2\n"
		"panic = 9\n"
		"[outcomes]\n"
		"list = visit,ambulance\ttest\n"
		"[policy urgent]\n"
		"priorities = 1\n"
		"step = on_duty:@team wait 60s\n"
		"step = on_duty:* wait 60s\n"
		"step = team:supervisors wait 2m\n"
		"repeat = 2\n"
		"ack_timeout = 15m\n"
		"on_cancel = keep\n"
		"[policy technical]\n"
		"priorities = 3\n"
		"step = team:technicians wait 1h\n");
	assert_string_equal(c->mqtt.host, "broker.example");
	assert_int_equal(c->mqtt.port, 8883);
	assert_string_equal(c->mqtt.client_id, "gw-1");
	assert_string_equal(c->mqtt.prefix, "care/site-a");
	assert_int_equal(c->mqtt.keepalive, 60);
	assert_int_equal(c->mqtt.max_payload, 65536);
	assert_string_equal(c->mqtt.username, "gateway");
	assert_string_equal(c->mqtt.password_file, "/etc/telecare/mqtt.pass");
	assert_string_equal(c->mqtt.cafile, "/etc/ssl/ca.pem");
	assert_string_equal(c->mqtt.certfile, "/etc/telecare/cert.pem");
	assert_string_equal(c->mqtt.keyfile, "/etc/telecare/key.pem");
	assert_string_equal(c->store_path, "/tmp/x.db");
	assert_string_equal(c->socket_path, "/tmp/x.sock");
	assert_int_equal(c->unknown_devices, UNKNOWN_LOG);
	assert_int_equal(c->priority[TC_T_LOW_BATTERY], 2);
	assert_int_equal(c->priority[TC_T_PANIC], 9);
	assert_int_equal(c->priority[TC_T_FALL], 1);
	assert_int_equal(c->n_outcomes, 3);
	assert_true(config_outcome_valid(c, "visit"));
	assert_true(config_outcome_valid(c, "ambulance"));
	assert_true(config_outcome_valid(c, "test"));
	assert_false(config_outcome_valid(c, "police"));
	config_free(c);
}

static void test_later_value_wins(void **state)
{
	(void)state;
	struct config *c = load("[mqtt]\nport = 1\nport = 2\nhost = a\nhost = b\n"
	                        "[outcomes]\nlist = a, b\nlist = c\n[mqtt]\nport = 3\n");
	assert_int_equal(c->mqtt.port, 3);
	assert_string_equal(c->mqtt.host, "b");
	assert_int_equal(c->n_outcomes, 1);
	assert_string_equal(c->outcomes[0], "c");
	config_free(c);
}

static void test_policy_sections_accepted(void **state)
{
	(void)state;
	/* SPEC 4's example section, verbatim */
	struct config *c = load("[policy urgent]\n"
	                        "priorities = 1\n"
	                        "step = on_duty:@team wait 60s\n"
	                        "step = on_duty:* wait 60s\n"
	                        "step = team:supervisors wait 2m\n"
	                        "repeat = 2\n"
	                        "ack_timeout = 15m\n"
	                        "on_cancel = keep\n"
	                        "[policy technical]\n"
	                        "priorities = 3, 4\n"
	                        "step = worker:w-1, on_duty:night wait 500ms\n"
	                        "on_cancel = resolve\n");
	assert_int_equal(c->n_policies, 2);
	struct policy *u = c->policies[0], *t = c->policies[1];
	assert_string_equal(u->name, "urgent");
	assert_int_equal(u->priorities, 1u << 1);
	assert_int_equal(u->n_steps, 3);
	assert_int_equal(u->steps[0].n_targets, 1);
	assert_int_equal(u->steps[0].targets[0].kind, TGT_ON_DUTY_RESIDENT_TEAM);
	assert_int_equal(u->steps[0].wait_ms, 60000);
	assert_int_equal(u->steps[1].targets[0].kind, TGT_ON_DUTY_ALL);
	assert_int_equal(u->steps[2].targets[0].kind, TGT_TEAM);
	assert_string_equal(u->steps[2].targets[0].arg, "supervisors");
	assert_int_equal(u->steps[2].wait_ms, 120000);
	assert_int_equal(u->repeat, 2);
	assert_int_equal(u->ack_timeout_ms, 15 * 60000);
	assert_false(u->cancel_resolves);
	assert_string_equal(t->name, "technical");
	assert_int_equal(t->priorities, (1u << 3) | (1u << 4));
	assert_int_equal(t->n_steps, 1);
	assert_int_equal(t->steps[0].n_targets, 2);
	assert_int_equal(t->steps[0].targets[0].kind, TGT_WORKER);
	assert_string_equal(t->steps[0].targets[0].arg, "w-1");
	assert_int_equal(t->steps[0].targets[1].kind, TGT_ON_DUTY_TEAM);
	assert_string_equal(t->steps[0].targets[1].arg, "night");
	assert_int_equal(t->steps[0].wait_ms, 500);
	assert_true(t->cancel_resolves);
	config_free(c);

	/* a section may be split in two */
	c = load("[policy p]\npriorities = 2\n[mqtt]\nport = 1\n[policy p]\nstep = on_duty:* wait 1m\n");
	assert_int_equal(c->n_policies, 1);
	assert_int_equal(c->policies[0]->n_steps, 1);
	config_free(c);
}

static void test_errors_policy(void **state)
{
	(void)state;
	load_bad("[policy urgent]\npriorities = 1\nstep = on_duty:* wait 60s\nbogus = 1\n", 4, "bogus");
	load_bad("[policy urgent]\npriorities = 0\n", 2, "priorities");
	load_bad("[policy urgent]\npriorities = 10\n", 2, "priorities");
	load_bad("[policy urgent]\npriorities =\n", 2, "priorities");
	/* the offending token is quoted in the message (read after it was freed: ASan) */
	load_bad("[policy urgent]\npriorities = 1, high\n", 2, "\"high\"");
	load_bad("[policy urgent]\npriorities = 1\nstep = on_duty:*\n", 3, "wait");
	load_bad("[policy urgent]\npriorities = 1\nstep = on_duty:* wait soon\n", 3, "soon");
	load_bad("[policy urgent]\npriorities = 1\nstep = somebody wait 60s\n", 3, "somebody");
	load_bad("[policy urgent]\npriorities = 1\nstep = team:a/b wait 60s\n", 3, "team:a/b");
	load_bad("[policy urgent]\npriorities = 1\nstep =  wait 60s\n", 3, NULL);
	load_bad("[policy urgent]\nrepeat = -1\n", 2, "repeat");
	load_bad("[policy urgent]\nack_timeout = 0\n", 2, "ack_timeout");
	load_bad("[policy urgent]\non_cancel = maybe\n", 2, "on_cancel");
	load_bad("[policy a]\npriorities = 1\nstep = on_duty:* wait 1m\n"
	         "[policy b]\npriorities = 2, 1\n", 5, "priorit");
	load_bad("[policy bad/name]\npriorities = 1\n", 2, "bad/name");

	/* a policy without steps or priorities: named in the error */
	err[0] = '\0';
	struct config *c = config_load(write_conf("[policy lonely]\npriorities = 1\n"), err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "lonely"));
	c = config_load(write_conf("[policy lonely]\nstep = on_duty:* wait 1m\n"), err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "lonely"));
}

static void test_errors_mqtt(void **state)
{
	(void)state;
	load_bad("[mqtt]\nhost = x\nport = 0\n", 3, "port");
	load_bad("[mqtt]\nport = 65536\n", 2, "port");
	load_bad("[mqtt]\n\n\nport = abc\n", 4, "port");
	load_bad("[mqtt]\nport = 80x\n", 2, "port");
	load_bad("[mqtt]\nport = -1\n", 2, "port");
	load_bad("[mqtt]\nport =\n", 2, "port");
	load_bad("[mqtt]\nport = 99999999999999999999\n", 2, "port");
	load_bad("[mqtt]\nhost =\n", 2, "host");
	load_bad("[mqtt]\nkeepalive = 4\n", 2, "keepalive");
	load_bad("[mqtt]\nmax_payload = 255\n", 2, "max_payload");
	load_bad("[mqtt]\nmax_payload = 1048577\n", 2, "max_payload");
	load_bad("[mqtt]\ntopic_prefix = a/+/b\n", 2, "topic_prefix");
	load_bad("[mqtt]\ntopic_prefix = a/#\n", 2, "topic_prefix");
	load_bad("[mqtt]\ntopic_prefix = /telecare\n", 2, "topic_prefix");
	load_bad("[mqtt]\ntopic_prefix = telecare/\n", 2, "topic_prefix");
	load_bad("[mqtt]\ntopic_prefix =\n", 2, "topic_prefix");
	load_bad("[mqtt]\nclient_id =\n", 2, "client_id");
	load_bad("[mqtt]\nhost = a\nprot = 1883\n", 3, "prot");
}

static void test_errors_sections(void **state)
{
	(void)state;
	load_bad("[mqtt]\nport = 1883\n[nope]\nkey = value\n", 4, "nope");
	load_bad("key = value\n", 1, NULL);                  /* before any section */
	load_bad("[store]\npath =\n", 2, "path");
	load_bad("[store]\nfile = x\n", 2, "file");
	load_bad("[control]\nsocket =\n", 2, "socket");
	load_bad("[control]\npath = /x\n", 2, "path");
	char big[256];
	memset(big, 0, sizeof(big));
	strcpy(big, "[control]\nsocket = /");
	memset(big + strlen(big), 's', 108);
	strcat(big, "\n");
	load_bad(big, 2, "socket");
	load_bad("[alarms]\nunknown_devices = maybe\n", 2, "unknown_devices");
	load_bad("[alarms]\nunknown_devices =\n", 2, "unknown_devices");
	load_bad("[alarms]\nunknown_device = log\n", 2, "unknown_device");
}

/* [source NAME] with format = sia-dc09 (SPEC 2.8) */
static void test_dc09_source(void **state)
{
	(void)state;
	struct config *c = load("[source panels]\nrule = cid=1102 -> fall\nformat = sia-dc09\n"
	                        "listen = 0.0.0.0:12128\nrule = zone=3 -> smoke\n"
	                        "[source v6]\nformat = sia-dc09\nlisten = [::1]:9\nkeys = /k\n"
	                        "time_window = 0\nidle_timeout = 90s\nmax_connections = 10\n");
	assert_int_equal(c->n_sources, 2);
	const struct tc_source *p = c->sources[0], *v = c->sources[1];
	assert_int_equal(p->format, TC_SRC_SIA_DC09);
	assert_null(p->topic);
	assert_string_equal(p->listen, "0.0.0.0:12128");
	assert_null(p->keys);
	assert_int_equal(p->max_age_ms, 40000);     /* defaults */
	assert_int_equal(p->max_lead_ms, 20000);
	assert_int_equal(p->idle_ms, 300000);
	assert_int_equal(p->max_connections, 4096);
	assert_int_equal(p->n_dc09_rules, 2);       /* the one before the format kept its place */
	assert_int_equal(p->dc09_rules[0].kind, TC_DC09_RULE_CID);
	assert_string_equal(p->dc09_rules[0].match, "1102");
	assert_int_equal(p->dc09_rules[0].type, TC_T_FALL);
	assert_int_equal(p->dc09_rules[1].kind, TC_DC09_RULE_ZONE);
	assert_int_equal(p->n_rules, 0);
	assert_string_equal(v->keys, "/k");
	assert_int_equal(v->max_age_ms, 0);
	assert_int_equal(v->max_lead_ms, 0);
	assert_int_equal(v->idle_ms, 90000);
	assert_int_equal(v->max_connections, 10);
	struct sockaddr_storage ss;
	assert_int_equal(tc_parse_listen(v->listen, &ss), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	config_free(c);

	load_bad("[source p]\nformat = sia-dc09\nlisten = 1.2.3.4\n", 3, "listen");
	load_bad("[source p]\nformat = sia-dc09\nlisten = [::1:5\n", 3, "listen");
	load_bad("[source p]\nformat = sia-dc09\ntime_window = 40s\n", 3, "time_window");
	load_bad("[source p]\nformat = sia-dc09\nidle_timeout = 0\n", 3, "idle_timeout");
	load_bad("[source p]\nformat = sia-dc09\nmax_connections = 0\n", 3, "max_connections");
	load_bad("[source p]\nformat = sia-dc09\nrule = action=single -> panic\n", 3, "rule");
	load_bad("[source p]\nrule = sia=pa -> panic\n\nformat = sia-dc09\n", 2, "sia=");
	load_bad("[source p]\nrule = =x -> fall\n#\nformat = zigbee2mqtt\n", 2, NULL);
	load_bad("[source p]\nformat = sia-dc09\nformat = ttn\n", 3, "already");
	load_bad("[source p]\nformat = dc09\n", 2, "sia-dc09");

	/* errors found once the file is read: no line */
	static const char *const whole[][2] = {
		{ "[source p]\nformat = sia-dc09\n", "needs listen" },
		{ "[source p]\nformat = sia-dc09\nlisten = 1.2.3.4:5\ntopic = a/#\n", "topic" },
		{ "[source p]\nformat = ttn\nkeys = /k\n", "sia-dc09" },
		{ "[source p]\nformat = ttn\ntime_window = 0\n", "sia-dc09" },
		{ "[source a]\nformat = sia-dc09\nlisten = 1.2.3.4:5\n"
		  "[source b]\nformat = sia-dc09\nlisten = 1.2.3.4:5\n", "another source" },
		{ "[source p]\nrule = cid=1102 -> fall\n", "needs a format" },
	};
	for (size_t i = 0; i < sizeof(whole) / sizeof(*whole); i++) {
		c = config_load(write_conf(whole[i][0]), err, sizeof(err));
		if (c) {
			config_free(c);
			fail_msg("accepted:\n%s", whole[i][0]);
		}
		if (!strstr(err, whole[i][1]))
			fail_msg("error \"%s\" does not mention \"%s\"", err, whole[i][1]);
	}
}

static void test_errors_priorities(void **state)
{
	(void)state;
	load_bad("[priorities]\nexplosion = 1\n", 2, "explosion");
	load_bad("[priorities]\nheartbeat = 1\n", 2, "heartbeat");
	load_bad("[priorities]\ncancel = 1\n", 2, "cancel");
	load_bad("[priorities]\npower_restored = 1\n", 2, "power_restored");
	load_bad("[priorities]\npanic = 0\n", 2, "panic");
	load_bad("[priorities]\npanic = 10\n", 2, "panic");
	load_bad("[priorities]\npanic = -1\n", 2, "panic");
	load_bad("[priorities]\npanic = high\n", 2, "panic");
	load_bad("[priorities]\npanic = 1.5\n", 2, "panic");
	load_bad("[priorities]\npanic =\n", 2, "panic");
}

static void test_errors_outcomes(void **state)
{
	(void)state;
	load_bad("[outcomes]\nlist =\n", 2, "outcome");
	load_bad("[outcomes]\nlist = , ,\n", 2, "outcome");
	/* the offending token is quoted in the message (read after it was freed: ASan) */
	load_bad("[outcomes]\nlist = visit, bad/outcome\n", 2, "\"bad/outcome\"");
	load_bad("[outcomes]\nlist = visit\nother = x\n", 3, "other");
}

static void test_errors_syntax(void **state)
{
	(void)state;
	load_bad("[mqtt]\nport 1883\n", 2, NULL);
	load_bad("[mqtt\nport = 1883\n", 1, NULL);
	load_bad("[mqtt]\nhost = a\n\n= 5\n", 4, NULL);
}

static void test_first_error_wins(void **state)
{
	(void)state;
	load_bad("[mqtt]\nport = 0\nkeepalive = 1\n[nope]\nx = y\n", 2, "port");
	load_bad("[alarms]\nunknown_devices = x\n[priorities]\npanic = 0\n", 2, "unknown_devices");
}

/* inih reports the line of the first error, and config.c keeps the message of
 * the first error its handler saw. When the first error is a syntax error
 * (which never reaches the handler) and a later line has a handler error, the
 * message must still describe the first error's line. */
static void test_syntax_error_then_value_error(void **state)
{
	(void)state;
	load_bad("[mqtt]\nthis line is garbage\nport = 0\n", 2, NULL);
	if (strstr(err, "port"))
		fail_msg("line 2 is a syntax error, but the message is about line 3: \"%s\"", err);
}

static void test_cert_without_key(void **state)
{
	(void)state;
	err[0] = '\0';
	struct config *c = config_load(write_conf("[mqtt]\ncertfile = /c.pem\n"), err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "keyfile"));
	c = config_load(write_conf("[mqtt]\nkeyfile = /k.pem\n"), err, sizeof(err));
	assert_null(c);
	assert_non_null(strstr(err, "certfile"));
}

static void test_missing_file(void **state)
{
	(void)state;
	char p[160];
	snprintf(p, sizeof(p), "%s/does-not-exist.conf", dir);
	err[0] = '\0';
	assert_null(config_load(p, err, sizeof(err)));
	assert_non_null(strstr(err, p));
	assert_true(strlen(err) > strlen(p) + 2);
}

/* `telecared -c DIR` by mistake must not run on the built-in defaults. */
static void test_directory_is_an_error(void **state)
{
	(void)state;
	err[0] = '\0';
	struct config *c = config_load(dir, err, sizeof(err));
	if (c) {
		config_free(c);
		fail_msg("config_load(\"%s\"), a directory, succeeded", dir);
	}
	assert_non_null(strstr(err, dir));
}

/* SPEC 5 sets no line length limit. A long line (a long outcomes list, a deep
 * certificate path) must be read whole, not cut into two lines. */
static void test_long_lines(void **state)
{
	(void)state;
	char text[1024];
	int o = snprintf(text, sizeof(text), "[outcomes]\nlist = ");
	for (int i = 0; i < 30; i++)
		o += snprintf(text + o, sizeof(text) - (size_t)o, "%soutcome_number_%02d", i ? ", " : "", i);
	snprintf(text + o, sizeof(text) - (size_t)o, "\n");
	assert_true(strlen(text) > 400);
	struct config *c = load(text);
	assert_int_equal(c->n_outcomes, 30);
	assert_string_equal(c->outcomes[29], "outcome_number_29");
	config_free(c);

	o = snprintf(text, sizeof(text), "[mqtt]\ncafile = /");
	for (int i = 0; i < 30; i++)
		o += snprintf(text + o, sizeof(text) - (size_t)o, "directory%02d/", i);
	snprintf(text + o, sizeof(text) - (size_t)o, "ca.pem\nport = 1884\n");
	c = load(text);
	assert_non_null(c->mqtt.cafile);
	assert_int_equal(strlen(c->mqtt.cafile), 1 + 30 * 12 + 6);
	assert_int_equal(c->mqtt.port, 1884);
	config_free(c);
}

/* Worse than an error: when the cut falls just before a space, inih takes the
 * rest of the line as a continuation line (INI_ALLOW_MULTILINE) and the
 * handler sees "list" again with only the tail: outcomes are silently lost. */
static void test_long_line_not_silently_cut(void **state)
{
	(void)state;
	char text[1024];
	/* "list = xxxo00, o01, ..., o59": byte 200 of the line is a space */
	int o = snprintf(text, sizeof(text), "[outcomes]\nlist = xxx");
	for (int i = 0; i < 60; i++)
		o += snprintf(text + o, sizeof(text) - (size_t)o, "%so%02d", i ? ", " : "", i);
	snprintf(text + o, sizeof(text) - (size_t)o, "\n");
	err[0] = '\0';
	struct config *c = config_load(write_conf(text), err, sizeof(err));
	if (!c)
		return;  /* an error is acceptable (test_long_lines wants it read whole) */
	size_t n = c->n_outcomes;
	bool first = config_outcome_valid(c, "xxxo00"), last = config_outcome_valid(c, "o59");
	config_free(c);
	if (n != 60 || !first || !last)
		fail_msg("a 60-outcome list was accepted as %zu outcomes (first kept: %d, last kept: %d)",
		         n, first, last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_file_is_defaults),
		cmocka_unit_test(test_spec_example),
		cmocka_unit_test(test_full_non_defaults),
		cmocka_unit_test(test_later_value_wins),
		cmocka_unit_test(test_policy_sections_accepted),
		cmocka_unit_test(test_errors_policy),
		cmocka_unit_test(test_errors_mqtt),
		cmocka_unit_test(test_errors_sections),
		cmocka_unit_test(test_dc09_source),
		cmocka_unit_test(test_errors_priorities),
		cmocka_unit_test(test_errors_outcomes),
		cmocka_unit_test(test_errors_syntax),
		cmocka_unit_test(test_first_error_wins),
		cmocka_unit_test(test_syntax_error_then_value_error),
		cmocka_unit_test(test_cert_without_key),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory_is_an_error),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_long_line_not_silently_cut),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
