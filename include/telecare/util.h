/* Small helpers shared by daemon, telecarectl and tests. */
#ifndef TELECARE_UTIL_H
#define TELECARE_UTIL_H

#include <stddef.h>

/* Copy len bytes of untrusted s into out (outlen >= 4) for a log line or an
 * error message: printable ASCII kept, anything else as '?', cut with "..."
 * when it does not fit. Always NUL-terminates. Returns out. */
char *tc_sanitize(const char *s, size_t len, char *out, size_t outlen);

/* s (len bytes, NUL at s[len]) may end in a UTF-8 sequence that a fixed
 * buffer cut short: cut it off too. Returns the new length. */
size_t tc_utf8_trim(char *s, size_t len);

#endif
