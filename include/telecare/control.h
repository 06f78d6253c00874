/* The control protocol between telecarectl and telecared (docs/CONTROL.md).
 * A stream Unix socket; each request and each answer is one JSON object on
 * one line. */
#ifndef TELECARE_CONTROL_H
#define TELECARE_CONTROL_H

#define TC_CONTROL_LINE_MAX (64 * 1024)   /* longest request line */
#define TC_SOCKET_ENV       "TELECARE_SOCKET"

/* telecarectl exit status (SPEC 6) */
enum {
	TC_EXIT_OK = 0,
	TC_EXIT_REFUSED = 1,
	TC_EXIT_USAGE = 2,
	TC_EXIT_UNREACHABLE = 3,
};

#endif
