/* Durations and RFC 3339 times. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telecare/timefmt.h"

#define DURATION_MAX_MS (366LL * 24 * 3600 * 1000)  /* a year is plenty */

int tc_duration_parse(const char *s, int64_t *ms)
{
	if (!s || !*s)
		return -1;
	const char *p = s;
	int64_t total = 0;
	bool any = false;

	/* A sequence of <number><unit>, e.g. "1h30m"; a bare number is seconds. */
	while (*p) {
		/* digits with at most one '.': no signs, exponents or hex (strtod
		 * would take "1e3" and "0x10") */
		const char *q = p;
		double v = 0, scale = 0;
		if (!isdigit((unsigned char)*q))
			return -1;
		for (; isdigit((unsigned char)*q) || (*q == '.' && scale == 0); q++) {
			if (*q == '.')
				scale = 1;
			else if (scale == 0)
				v = v * 10 + (*q - '0');
			else
				v += (*q - '0') * (scale /= 10);
			if (v > 1e12)
				return -1;
		}
		if (q == p || q[-1] == '.')
			return -1;
		p = q;
		double mult;
		if (strncmp(p, "ms", 2) == 0) { mult = 1; p += 2; }
		else if (*p == 's') { mult = 1000; p++; }
		else if (*p == 'm') { mult = 60e3; p++; }
		else if (*p == 'h') { mult = 3600e3; p++; }
		else if (*p == 'd') { mult = 86400e3; p++; }
		else if (*p == '\0' && !any) mult = 1000;
		else return -1;
		double add = v * mult;
		if (add > (double)DURATION_MAX_MS)
			return -1;
		total += (int64_t)(add + 0.5);
		if (total > DURATION_MAX_MS)
			return -1;
		any = true;
	}
	*ms = total;
	return 0;
}

void tc_duration_format(int64_t ms, char *buf, size_t len)
{
	static const struct { int64_t ms; const char *unit; } units[] = {
		{ 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" },
	};
	size_t off = 0;
	if (ms <= 0) {
		snprintf(buf, len, "0s");
		return;
	}
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && ms > 0; i++) {
		if (ms < units[i].ms)
			continue;
		int n = snprintf(buf + off, off < len ? len - off : 0, "%lld%s",
		                 (long long)(ms / units[i].ms), units[i].unit);
		if (n > 0)
			off += (size_t)n;
		ms %= units[i].ms;
	}
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

int tc_time_parse(const char *s, int64_t *ms)
{
	int Y, M, D, h, m, sec;
	const char *p = s;
	if (!s)
		return -1;
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D))
		return -1;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -1;
	int frac_ms = 0;
	if (*p == '.') {
		p++;
		int n = 0;
		while (isdigit((unsigned char)*p)) {
			if (n < 3)
				frac_ms = frac_ms * 10 + (*p - '0');
			n++;
			p++;
		}
		if (n == 0)
			return -1;
		for (; n < 3; n++)
			frac_ms *= 10;
	}
	int off_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;
		p++;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
		off_min = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (Y < 1970 || M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || h > 23 || m > 59 ||
	    sec > 60)
		return -1;
	bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	if (M == 2 && D == 29 && !leap)
		return -1;
	struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
	                 .tm_hour = h, .tm_min = m, .tm_sec = sec == 60 ? 59 : sec };
	time_t t = timegm(&tm);
	*ms = ((int64_t)t - (int64_t)off_min * 60) * 1000 + frac_ms;
	return 0;
}

void tc_time_format(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)t * 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

int64_t tc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tc_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
