/* Passwords for console users (user add, user passwd): one line from
 * standard input, so a script can pipe one in; on a terminal asked twice
 * without echo. Never on the command line, never echoed, wiped from our
 * memory once sent. */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <unistd.h>

#include "telecare/event.h"
#include "telecarectl.h"

/* A signal while echo is off must not leave the terminal mute. The handler
 * needs these outside any call; nothing else uses them. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_muted;

static void unmute_and_die(int sig)
{
	if (tty_muted)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	raise(sig);   /* SA_RESETHAND: the default action, once we return */
}

enum { LINE_OK, LINE_EOF, LINE_LONG, LINE_ERROR };

/* One line from fd into buf (cap bytes, NUL-terminated, without the line
 * ending). A longer line is read to its end and thrown away: on a terminal
 * the rest would otherwise go to the shell. Byte by byte, so nothing after
 * the line is consumed and no copy is left in a stdio buffer. */
static int read_secret_line(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	bool long_line = false, any = false;
	for (;;) {
		char ch;
		ssize_t got = read(fd, &ch, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return LINE_ERROR;
		if (got == 0 || ch == '\n')
			break;
		any = true;
		if (n + 1 < cap)
			buf[n++] = ch;
		else
			long_line = true;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	*len = n;
	if (long_line)
		return LINE_LONG;
	return any || n ? LINE_OK : LINE_EOF;
}

/* Ask on the terminal with echo off. LINE_* */
static int ask(const char *prompt, char *buf, size_t cap, size_t *len)
{
	struct termios mute;
	struct sigaction sa = { .sa_handler = unmute_and_die, .sa_flags = SA_RESETHAND }, old[4];
	static const int sigs[4] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	int rc;

	if (tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return LINE_ERROR;
	mute = saved_tty;
	mute.c_lflag &= ~(tcflag_t)ECHO;
	mute.c_lflag |= ECHONL;   /* the Enter still moves to the next line */
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &sa, &old[i]);
	tty_muted = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &mute) < 0) {
		rc = LINE_ERROR;
	} else {
		/* the prompt only once echo is off: what is typed after it is never shown */
		fputs(prompt, stderr);
		fflush(stderr);
		rc = read_secret_line(STDIN_FILENO, buf, cap, len);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	}
	tty_muted = 0;
	for (int i = 0; i < 4; i++)
		sigaction(sigs[i], &old[i], NULL);
	return rc;
}

static void refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void refuse(const char *fmt, ...)
{
	va_list ap;
	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("; nothing sent to telecared\n", stderr);
}

char *read_password(const char *user)
{
	/* buf holds up to TC_PASSWORD_MAX bytes and one more, to tell too long */
	char buf[TC_PASSWORD_MAX + 2], again[TC_PASSWORD_MAX + 2];
	size_t len = 0, len2 = 0;
	bool tty = isatty(STDIN_FILENO);
	char *out = NULL;
	int rc;

	/* no core dump or same-user ptrace while the password is in memory */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (tty) {
		char prompt[128];
		snprintf(prompt, sizeof(prompt), "New password for %s: ", user ? user : "the user");
		rc = ask(prompt, buf, sizeof(buf), &len);
		if (rc == LINE_OK || rc == LINE_LONG) {
			int rc2 = ask("Again: ", again, sizeof(again), &len2);
			if (rc2 != LINE_OK && rc2 != LINE_LONG)
				rc = rc2;
			else if (rc != rc2 || len != len2 || memcmp(buf, again, len) != 0)
				rc = -1;
		}
	} else {
		rc = read_secret_line(STDIN_FILENO, buf, sizeof(buf), &len);
	}

	if (rc == -1)
		refuse("%s", "the two passwords differ");
	else if (rc == LINE_ERROR)
		fprintf(stderr, PROG ": cannot read the password: %s\n", strerror(errno));
	else if (rc == LINE_EOF || (rc == LINE_OK && len == 0))
		refuse("%s", tty ? "no password given" :
		       "no password on standard input (one line; on a terminal it is asked for)");
	else if (rc == LINE_LONG || len > TC_PASSWORD_MAX)
		refuse("the password is longer than %d bytes", TC_PASSWORD_MAX);
	else if (len < TC_PASSWORD_MIN)
		refuse("the password is shorter than %d bytes", TC_PASSWORD_MIN);
	else if (memchr(buf, '\0', len))
		refuse("%s", "the password contains a NUL byte");
	else if (!tc_utf8_valid(buf, len))
		refuse("%s", "the password is not valid UTF-8");
	else if (!(out = strndup(buf, len)))
		refuse("%s", "out of memory");
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(again, sizeof(again));
	return out;
}

void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void json_string_wipe(json_t *s)
{
	/* jansson frees its copy of the bytes without wiping them; the value is
	 * const only by contract, the buffer is jansson's own malloc'd one */
	if (json_is_string(s))
		explicit_bzero((char *)json_string_value(s), json_string_length(s));
}
