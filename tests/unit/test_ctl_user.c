/* telecarectl's new commands against a fake control socket: the requests of
 * user add/passwd/list/remove and alarm ack/decline are exactly those of
 * DECISIONS.md (issue 11), and the password comes from standard input
 * (one line) or, on a terminal (a pty here), is asked twice with echo off.
 * Run as: test_ctl_user PATH/TO/telecarectl */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

static const char *ctl_path;
static char dir[64], sock_path[96];
static int listener = -1;

struct outcome {
	int status;           /* exit status, or 128 + signal */
	char request[4096];   /* the line telecarectl sent, "" when it never connected */
	char out[8192];       /* stdout (with stderr, on a pty) */
	char err[4096];
};

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_ctl_user.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/control.sock", dir);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(listener >= 0);
	assert_int_equal(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(listener, 4), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(listener);
	unlink(sock_path);
	rmdir(dir);
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(char *buf, size_t cap, const char *data, size_t n)
{
	size_t len = strlen(buf);
	if (n > cap - 1 - len)
		n = cap - 1 - len;
	memcpy(buf + len, data, n);
	buf[len + n] = '\0';
}

/* Serve one connection if telecarectl makes one: read its request line,
 * answer `answer`. Returns when the child has exited and its output is
 * drained. out_fd/err_fd: the child's output (err_fd -1 on a pty). On a
 * pty, each time the output ends with the next of prompts, check that echo
 * is off and type the next of typed. */
static void serve(pid_t pid, int out_fd, int err_fd, const char *answer, const char *const *prompts,
                  const char *const *typed, struct outcome *o)
{
	int conn = -1;
	size_t reqlen = 0, next_prompt = 0;
	bool exited = false, out_open = true, err_open = err_fd >= 0;
	int64_t deadline = now_ms() + 20000;

	while ((out_open || err_open || !exited) && now_ms() < deadline) {
		struct pollfd p[4] = {
			{ .fd = listener, .events = conn < 0 ? POLLIN : 0 },
			{ .fd = conn, .events = POLLIN },
			{ .fd = out_open ? out_fd : -1, .events = POLLIN },
			{ .fd = err_open ? err_fd : -1, .events = POLLIN },
		};
		poll(p, 4, 100);
		if (conn < 0 && (p[0].revents & POLLIN))
			conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (conn >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			char buf[1024];
			ssize_t n = read(conn, buf, sizeof(buf));
			if (n > 0) {
				append(o->request, sizeof(o->request), buf, (size_t)n);
				reqlen += (size_t)n;
				if (memchr(buf, '\n', (size_t)n)) {
					assert_true(write(conn, answer, strlen(answer)) == (ssize_t)strlen(answer));
					shutdown(conn, SHUT_WR);
				}
			} else {
				close(conn);
				conn = -2;   /* done with it */
			}
		}
		for (int k = 2; k <= 3; k++) {
			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[1024];
			ssize_t n = read(p[k].fd, buf, sizeof(buf));
			if (n <= 0) {
				if (k == 2)
					out_open = false;
				else
					err_open = false;
				continue;
			}
			append(k == 2 ? o->out : o->err, k == 2 ? sizeof(o->out) : sizeof(o->err), buf,
			       (size_t)n);
		}
		if (prompts && prompts[next_prompt]) {
			size_t pl = strlen(prompts[next_prompt]), ol = strlen(o->out);
			if (ol >= pl && strcmp(o->out + ol - pl, prompts[next_prompt]) == 0) {
				struct termios t;
				assert_int_equal(tcgetattr(out_fd, &t), 0);
				if (t.c_lflag & ECHO)
					fail_msg("echo is on at the prompt \"%s\"", prompts[next_prompt]);
				assert_true(write(out_fd, typed[next_prompt], strlen(typed[next_prompt])) ==
				            (ssize_t)strlen(typed[next_prompt]));
				next_prompt++;
			}
		}
		int st;
		if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
			exited = true;
			o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
	}
	if (!exited) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		fail_msg("telecarectl did not finish: out \"%s\" err \"%s\"", o->out, o->err);
	}
	if (conn >= 0)
		close(conn);
	(void)reqlen;
}

/* telecarectl ARGS with stdin from a pipe holding `input` */
static void run_piped(const char *const *args, const char *input, const char *answer,
                      struct outcome *o)
{
	int in[2], out[2], err[2];
	memset(o, 0, sizeof(*o));
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	assert_int_equal(pipe2(err, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[32] = { (char *)ctl_path, (char *)"--socket", sock_path };
		int n = 3;
		for (; args[n - 3] && n < 31; n++)
			argv[n] = (char *)args[n - 3];
		argv[n] = NULL;
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(ctl_path, argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	signal(SIGPIPE, SIG_IGN);
	if (input)
		assert_true(write(in[1], input, strlen(input)) == (ssize_t)strlen(input));
	close(in[1]);
	serve(pid, out[0], err[0], answer, NULL, NULL, o);
	close(out[0]);
	close(err[0]);
}

/* telecarectl ARGS on a pty, typing typed[i] at prompts[i] */
static void run_tty(const char *const *args, const char *const *prompts, const char *const *typed,
                    const char *answer, struct outcome *o)
{
	int master;
	memset(o, 0, sizeof(*o));
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	assert_true(pid >= 0);
	if (pid == 0) {
		char *argv[32] = { (char *)ctl_path, (char *)"--socket", sock_path };
		int n = 3;
		for (; args[n - 3] && n < 31; n++)
			argv[n] = (char *)args[n - 3];
		argv[n] = NULL;
		execv(ctl_path, argv);
		_exit(127);
	}
	serve(pid, master, -1, answer, prompts, typed, o);
	close(master);
}

/* The request telecarectl sent is the JSON `want` (key order aside). */
static void request_is(const struct outcome *o, const char *want)
{
	json_error_t e;
	json_t *got = json_loads(o->request, 0, &e), *exp = json_loads(want, 0, &e);
	assert_non_null(exp);
	if (!got || !json_equal(got, exp))
		fail_msg("request %s, want %s (out \"%s\" err \"%s\")", o->request, want, o->out,
		         o->err);
	assert_non_null(strchr(o->request, '\n'));
	json_decref(got);
	json_decref(exp);
}

static const char *const ok_null = "{\"ok\":true,\"data\":null}\n";

/* ---------------------------------------------------------------------- */

static void test_user_add_password_from_stdin(void **state)
{
	(void)state;
	struct outcome o;
	static const char *const a[] = { "user", "add", "anna", "--role", "dispatcher", "--worker",
	                                 "w-anna", NULL };
	run_piped(a, "correct horse\n", ok_null, &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.add\",\"args\":{\"name\":\"anna\",\"role\":\"dispatcher\","
	           "\"worker\":\"w-anna\",\"password\":\"correct horse\"}}");
	assert_string_equal(o.out, "user anna added: dispatcher, worker w-anna\n");

	/* the answer's user when it has one; no worker for an admin */
	static const char *const b[] = { "user", "add", "root2", "--role", "admin", NULL };
	run_piped(b, "another one\r\nsecond line is not read\n",
	          "{\"ok\":true,\"data\":{\"name\":\"root2\",\"role\":\"admin\",\"worker\":null}}\n",
	          &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.add\",\"args\":{\"name\":\"root2\",\"role\":\"admin\","
	           "\"password\":\"another one\"}}");
	assert_string_equal(o.out, "user root2 added: admin\n");
}

static void test_user_passwd_and_bad_passwords(void **state)
{
	(void)state;
	struct outcome o;
	static const char *const a[] = { "user", "passwd", "anna", NULL };
	run_piped(a, "pw-12345678", ok_null, &o);   /* no newline at the end: still one line */
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.passwd\",\"args\":{\"name\":\"anna\","
	           "\"password\":\"pw-12345678\"}}");
	assert_string_equal(o.out, "user anna: password changed\n");

	static const struct { const char *input, *why; } bad[] = {
		{ "", "no password on standard input" },
		{ "\n", "no password on standard input" },
		{ "short\n", "shorter than 8 bytes" },
		{ "\xff\xfe-not-utf8\n", "not valid UTF-8" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run_piped(a, bad[i].input, ok_null, &o);
		assert_int_equal(o.status, 2);
		assert_string_equal(o.request, "");   /* nothing sent */
		if (!strstr(o.err, bad[i].why))
			fail_msg("input %zu: \"%s\", want \"%s\"", i, o.err, bad[i].why);
	}
	char longer[1100];
	memset(longer, 'x', 1025);
	strcpy(longer + 1025, "\n");
	run_piped(a, longer, ok_null, &o);
	assert_int_equal(o.status, 2);
	assert_string_equal(o.request, "");
	assert_non_null(strstr(o.err, "longer than 1024 bytes"));
	longer[1024] = '\n';
	longer[1025] = '\0';
	run_piped(a, longer, ok_null, &o);
	assert_int_equal(o.status, 0);
}

static void test_password_on_a_terminal(void **state)
{
	(void)state;
	struct outcome o;
	static const char *const a[] = { "user", "passwd", "anna", NULL };
	static const char *const prompts[] = { "New password for anna: ", "Again: ", NULL };
	static const char *const same[] = { "tty-secret-1\n", "tty-secret-1\n" };
	run_tty(a, prompts, same, ok_null, &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.passwd\",\"args\":{\"name\":\"anna\","
	           "\"password\":\"tty-secret-1\"}}");
	assert_null(strstr(o.out, "tty-secret"));   /* never echoed */
	assert_non_null(strstr(o.out, "user anna: password changed"));

	static const char *const differ[] = { "tty-secret-1\n", "tty-secret-2\n" };
	run_tty(a, prompts, differ, ok_null, &o);
	assert_int_equal(o.status, 2);
	assert_string_equal(o.request, "");
	assert_null(strstr(o.out, "tty-secret"));
	assert_non_null(strstr(o.out, "the two passwords differ"));
}

static void test_user_list_and_remove(void **state)
{
	(void)state;
	struct outcome o;
	static const char *const l[] = { "user", "list", NULL };
	run_piped(l, NULL,
	          "{\"ok\":true,\"data\":[{\"name\":\"anna\",\"role\":\"dispatcher\","
	          "\"worker\":\"w-anna\",\"created_at\":\"2026-11-22T10:15:00.000Z\","
	          "\"changed_at\":null}]}\n", &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.list\"}");
	assert_string_equal(o.out,
	                    "NAME  ROLE        WORKER  CREATED                   CHANGED\n"
	                    "anna  dispatcher  w-anna  2026-11-22T10:15:00.000Z  -\n");
	run_piped(l, NULL, "{\"ok\":true,\"data\":[]}\n", &o);
	assert_string_equal(o.out, "no users\n");

	static const char *const r[] = { "user", "remove", "anna", NULL };
	run_piped(r, NULL, ok_null, &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"user.remove\",\"args\":{\"name\":\"anna\"}}");
	assert_string_equal(o.out, "user anna removed\n");

	static const char *const refused[] = { "user", "remove", "anna", NULL };
	run_piped(refused, NULL,
	          "{\"ok\":false,\"error\":\"permission denied: user.remove needs the admin "
	          "role\"}\n", &o);
	assert_int_equal(o.status, 1);
	assert_string_equal(o.err, "telecarectl: permission denied: user.remove needs the admin "
	                    "role\n");
}

static void test_alarm_actions(void **state)
{
	(void)state;
	struct outcome o;
	static const char *const ack[] = { "alarm", "ack", "42", NULL };
	run_piped(ack, NULL, ok_null, &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"alarm.ack\",\"args\":{\"id\":42}}");
	assert_string_equal(o.out, "alarm 42 acknowledged\n");

	static const char *const res[] = { "alarm", "resolve", "42", "--outcome", "visit", NULL };
	run_piped(res, NULL, ok_null, &o);
	request_is(&o, "{\"cmd\":\"alarm.resolve\",\"args\":{\"id\":42,\"outcome\":\"visit\"}}");
	static const char *const note[] = { "alarm", "note", "42", "--as", "w-jan", "--note", "x",
	                                    NULL };
	run_piped(note, NULL, ok_null, &o);
	request_is(&o, "{\"cmd\":\"alarm.note\",\"args\":{\"id\":42,\"as\":\"w-jan\","
	           "\"note\":\"x\"}}");

	static const char *const dec[] = { "alarm", "decline", "42", "--as", "w-jan", NULL };
	run_piped(dec, NULL, ok_null, &o);
	assert_int_equal(o.status, 0);
	request_is(&o, "{\"cmd\":\"alarm.decline\",\"args\":{\"id\":42,\"as\":\"w-jan\"}}");
	assert_string_equal(o.out, "alarm 42 declined by w-jan\n");

	static const char *const no_as[] = { "alarm", "decline", "42", NULL };
	run_piped(no_as, NULL, ok_null, &o);
	assert_int_equal(o.status, 2);
	assert_string_equal(o.request, "");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s PATH/TO/telecarectl\n", argv[0]);
		return 2;
	}
	ctl_path = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user_add_password_from_stdin),
		cmocka_unit_test(test_user_passwd_and_bad_passwords),
		cmocka_unit_test(test_password_on_a_terminal),
		cmocka_unit_test(test_user_list_and_remove),
		cmocka_unit_test(test_alarm_actions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
