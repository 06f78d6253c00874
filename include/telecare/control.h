/* The control protocol between telecarectl and telecared (docs/CONTROL.md).
 * A stream Unix socket; each request and each answer is one JSON object on
 * one line. */
#ifndef TELECARE_CONTROL_H
#define TELECARE_CONTROL_H

/* Longest request line: an all-or-nothing import of 100,000 devices is a
 * few MB. The socket is open only to the daemon's user and group. */
#define TC_CONTROL_LINE_MAX (16 * 1024 * 1024)
#define TC_SOCKET_ENV       "TELECARE_SOCKET"

/* telecarectl exit status (SPEC 6) */
enum {
	TC_EXIT_OK = 0,
	TC_EXIT_REFUSED = 1,
	TC_EXIT_USAGE = 2,
	TC_EXIT_UNREACHABLE = 3,
};

#endif
