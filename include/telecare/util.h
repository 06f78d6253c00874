/* Small helpers shared by daemon, telecarectl and tests. */
#ifndef TELECARE_UTIL_H
#define TELECARE_UTIL_H

#include <stddef.h>

/* Copy len bytes of untrusted s into out (outlen >= 4) for a log line or an
 * error message: printable ASCII kept, anything else as '?', cut with "..."
 * when it does not fit. Always NUL-terminates. Returns out. */
char *tc_sanitize(const char *s, size_t len, char *out, size_t outlen);

#define _cleanup_(f) __attribute__((cleanup(f)))
void tc_freep(void *p);  /* for _cleanup_(tc_freep) char *x */

#endif
