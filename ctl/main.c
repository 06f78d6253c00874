/* telecarectl's entry: global options, finding the command, usage. The
 * parts are listed in telecarectl.h. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "telecarectl.h"

static void print_usage(FILE *f)
{
	fputs("usage: " PROG " [--socket PATH] [--json] COMMAND [ARGS]\n\ncommands:\n", f);
	for (size_t i = 0; i < ncommands; i++)
		fprintf(f, "  %s\n", commands[i].usage);
	fputs("\noptions (before the command):\n"
	      "  --socket PATH  control socket (default: $" TC_SOCKET_ENV ", else "
	      TELECARE_SOCKET_PATH ")\n"
	      "  --json         print the daemon's answer as JSON (events --follow, device test:\n"
	      "                 one object per line)\n"
	      "  --help, -h     this text (COMMAND --help: that command's usage)\n"
	      "  --version      print the version\n\n"
	      "Durations: 500ms, 30s, 15m, 1h, 1d. Times: RFC 3339, e.g. 2026-11-22T10:15:00Z.\n"
	      "Worker teams: --team north,night. Shift days: mon-fri, sat,sun, daily, weekdays,\n"
	      "weekends; hours 22:00-06:00 run past midnight, in telecared's time zone.\n"
	      "Put -- before an id that starts with '-'.\n\n"
	      "device test puts the device on test and waits (default 2m) for its next alarm,\n"
	      "printing each stage: received, stored, receipt sent, alerted (the installer;\n"
	      "on-duty workers are not alerted). Exit 0 only when all of them came.\n"
	      "device import reads a CSV file whose first row names the columns: id and\n"
	      "resident, optionally kind, heartbeat, source, address, in any order, e.g.\n"
	      "  id,resident,kind,heartbeat\n"
	      "  pendant-1,r-17,pendant,15m\n"
	      "Blank lines and lines starting with # are skipped; quote fields with \"...\".\n"
	      "All or nothing: a bad line (named FILE:LINE) imports no device at all.\n"
	      "device adopt registers a device that sent events while unknown, keeping them.\n"
	      "alarm ack, resolve and note act for WORKER with --as, else as you (the Unix user).\n"
	      "user add and user passwd read the password from standard input, one line; on a\n"
	      "terminal they ask twice without echo. Roles: admin, dispatcher, installer, worker.\n\n"
	      "Exit status: 0 done, 1 refused by telecared, 2 wrong usage, 3 telecared unreachable.\n",
	      f);
}

/* Find the command named by the first one or two words; *used gets how many
 * words the name took. Prints the usage error itself when there is none. */
static const struct command *find_command(int argc, char **argv, int *used)
{
	bool group_known = false;
	for (size_t i = 0; i < ncommands; i++) {
		const struct command *c = &commands[i];
		if (strcmp(c->group, argv[0]) != 0)
			continue;
		group_known = true;
		if (!c->verb) {
			*used = 1;
			return c;
		}
		if (argc > 1 && strcmp(c->verb, argv[1]) == 0) {
			*used = 2;
			return c;
		}
	}
	if (!group_known) {
		usage_error("unknown command '%s'", argv[0]);
		return NULL;
	}
	/* list the verbs the group has, for the message */
	char verbs[256] = "";
	for (size_t i = 0; i < ncommands; i++) {
		if (strcmp(commands[i].group, argv[0]) == 0 && commands[i].verb) {
			if (verbs[0])
				strncat(verbs, ", ", sizeof(verbs) - strlen(verbs) - 1);
			strncat(verbs, commands[i].verb, sizeof(verbs) - strlen(verbs) - 1);
		}
	}
	if (argc > 1)
		usage_error("unknown command '%s %s' (%s has: %s)", argv[0], argv[1], argv[0], verbs);
	else
		usage_error("'%s' needs one of: %s", argv[0], verbs);
	return NULL;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	int i;

	/* global options, before the command */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--json") == 0) {
			o.json = true;
		} else if (strcmp(a, "--socket") == 0 || strncmp(a, "--socket=", 9) == 0) {
			if (a[8] == '=')
				o.socket_path = a + 9;
			else if (i + 1 < argc)
				o.socket_path = argv[++i];
			else
				return usage_error("--socket needs a path"), TC_EXIT_USAGE;
			if (!o.socket_path[0])
				return usage_error("--socket needs a path"), TC_EXIT_USAGE;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			print_usage(stdout);
			return TC_EXIT_OK;
		} else if (strcmp(a, "--version") == 0) {
			puts(PROG " " TELECARE_VERSION);
			return TC_EXIT_OK;
		} else {
			return usage_error("unknown option %s", a), TC_EXIT_USAGE;
		}
	}
	if (!o.socket_path) {
		const char *env = getenv(TC_SOCKET_ENV);
		o.socket_path = env && *env ? env : TELECARE_SOCKET_PATH;
	}
	if (i >= argc)
		return usage_error("missing command"), TC_EXIT_USAGE;
	if (strcmp(argv[i], "help") == 0) {
		print_usage(stdout);
		return TC_EXIT_OK;
	}

	int used;
	const struct command *cmd = find_command(argc - i, argv + i, &used);
	if (!cmd)
		return TC_EXIT_USAGE;

	size_t ev_width[EVENT_COLS] = { 0 };
	struct call c = {
		.cmd = cmd,
		.ev_width = ev_width,
		.argc = argc - i - used,
		.argv = argv + i + used,
		.args = json_object(),
		.timeout_ms = ANSWER_TIMEOUT_MS,
	};
	int rc = cmd->build(&c);
	if (rc == PARSE_HELP)
		rc = TC_EXIT_OK;
	else if (rc != PARSE_OK)
		rc = TC_EXIT_USAGE;
	else
		rc = run(&o, &c);
	if (c.secret)
		json_string_wipe(json_object_get(c.args, TC_ARG_PASSWORD));
	json_decref(c.args);

	/* Output that did not reach its destination (disk full, closed pipe
	 * with SIGPIPE ignored) must not look like success. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": cannot write output: %s\n", strerror(errno));
		if (rc == TC_EXIT_OK)
			rc = TC_EXIT_REFUSED;
	}
	return rc;
}
