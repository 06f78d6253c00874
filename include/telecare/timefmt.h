/* Durations and RFC 3339 times, as the configuration, telecarectl and the
 * payloads spell them. All times are int64 milliseconds since the Unix epoch. */
#ifndef TELECARE_TIMEFMT_H
#define TELECARE_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

#define TC_TIME_STRLEN 32  /* "2026-11-22T10:15:00.123Z" and its NUL, with room */

/* "500ms", "30s", "2m", "1h", "1d" or plain seconds ("90", "1.5").
 * Returns 0 and *ms, or -1 when malformed, negative or absurdly long. */
int tc_duration_parse(const char *s, int64_t *ms);
/* ms spelled by units, largest first: "500ms", "1m30s", "2m", "1h30m". */
void tc_duration_format(int64_t ms, char *buf, size_t len);

/* RFC 3339: "2026-11-22T10:15:00Z", with optional fraction and numeric offset;
 * a lowercase t/z and a space instead of T are accepted. Returns 0 or -1. */
int tc_time_parse(const char *s, int64_t *ms);
/* UTC with milliseconds: "2026-11-22T10:15:00.123Z". */
void tc_time_format(int64_t ms, char *buf, size_t len);

int64_t tc_now_ms(void);   /* CLOCK_REALTIME: what is stored and shown */
/* CLOCK_BOOTTIME: when things are due. A step of the wall clock does not
 * move it, and it counts while suspended. */
int64_t tc_mono_ms(void);

#endif
