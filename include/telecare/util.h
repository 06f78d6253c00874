/* Small helpers shared by daemon, telecarectl and tests. */
#ifndef TELECARE_UTIL_H
#define TELECARE_UTIL_H

#include <stddef.h>

/* Copy len bytes of untrusted s into out (outlen >= 4) for a log line or an
 * error message: printable ASCII kept, anything else as '?', cut with "..."
 * when it does not fit. Always NUL-terminates. Returns out. */
char *tc_sanitize(const char *s, size_t len, char *out, size_t outlen);

struct sockaddr_storage;
/* "127.0.0.1:8080", "[::1]:8080", "0.0.0.0:12128" (numeric addresses only:
 * nothing is looked up) -> *out. 0, or -1 when malformed. */
int tc_parse_listen(const char *s, struct sockaddr_storage *out);

/* s (len bytes, NUL at s[len]) may end in a UTF-8 sequence that a fixed
 * buffer cut short: cut it off too. Returns the new length. */
size_t tc_utf8_trim(char *s, size_t len);

#endif
