/* libFuzzer: RFC 3339 times and durations (common/timefmt.c) on arbitrary
 * NUL-terminated strings. Properties checked:
 *  - tc_time_parse: a time it accepts in [1970, 10000) formats to a string
 *    that parses back to the same millisecond;
 *  - tc_duration_parse: results are 0..366 days, and format -> parse is the
 *    identity;
 *  - tc_time_format / tc_duration_format: always NUL-terminated, never past
 *    the buffer, for any int64 (the input's first bytes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telecare/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

#define YEAR_10000_MS 253402300800000LL
#define DURATION_MAX_MS (366LL * 24 * 3600 * 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256)
		return 0;
	char *s = malloc(size + 1);   /* exactly sized: ASan sees any read past the NUL */
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	int64_t ms = INT64_MIN, back = INT64_MIN;
	char buf[TC_TIME_STRLEN];
	if (tc_time_parse(s, &ms) == 0) {
		CHECK(ms != INT64_MIN);
		/* years 1970-9999 with an offset of less than a day either way */
		CHECK(ms > -86400000LL && ms < YEAR_10000_MS + 86400000LL);
		if (ms >= 0 && ms < YEAR_10000_MS) {
			tc_time_format(ms, buf, sizeof(buf));
			CHECK(strlen(buf) == 24);
			if (tc_time_parse(buf, &back) != 0 || back != ms) {
				fprintf(stderr, "\"%s\" -> %lld -> \"%s\" -> %lld\n", s, (long long)ms, buf,
				        (long long)back);
				abort();
			}
		}
	}

	ms = INT64_MIN;
	if (tc_duration_parse(s, &ms) == 0) {
		CHECK(ms >= 0 && ms <= DURATION_MAX_MS);
		char d[64];
		tc_duration_format(ms, d, sizeof(d));
		back = INT64_MIN;
		if (tc_duration_parse(d, &back) != 0 || back != ms) {
			fprintf(stderr, "\"%s\" -> %lld -> \"%s\" -> %lld\n", s, (long long)ms, d,
			        (long long)back);
			abort();
		}
	}

	/* the formatters on any value and a buffer of any size */
	if (size >= 9) {
		int64_t v;
		memcpy(&v, data, sizeof(v));
		size_t len = data[8] % 40;
		char *out = malloc(len ? len : 1);
		if (out) {
			if (len) {
				/* tc_time_format handles years gmtime_r can represent */
				if (v > -62135596800000LL && v < YEAR_10000_MS) {
					tc_time_format(v, out, len);
					CHECK(memchr(out, '\0', len) != NULL);
				}
				tc_duration_format(v, out, len);
				CHECK(memchr(out, '\0', len) != NULL);
			}
			free(out);
		}
	}
	free(s);
	return 0;
}
