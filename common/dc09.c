/* SIA DC-09 frames (SPEC 2.8): decoder, reply encoder, framing. Pure: no
 * I/O, no clock, no randomness (both passed in). The keys file, the rules
 * and the code map are in common/dc09_map.c. docs/SOURCES.md describes the
 * accepted format; tests/unit/test_dc09.c and tests/fuzz/fuzz_dc09.c hold
 * the code to it.
 *
 * Sources for the byte layouts. The standard is ANSI/SIA DC-09-2013 (the
 * public-review draft's text); where implementations differ from it, the
 * standard wins and the comment says so. Implementations read for
 * comparison (none copied): pysiaalarm (eavanvalkenburg/pysiaalarm, Home
 * Assistant's "sia" integration), dc09_spt (jvanovost/dc09_spt, a panel-side
 * sender), ioBroker.sia (schmupu/ioBroker.sia) and fioletoven/dc09. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "telecare/dc09.h"
#include "telecare/util.h"

#define HEAD_MIN 10   /* LF + CRC(4) + 0LLL(4) + CR */

static const char *const status_names[TC_DC09__STATUS_COUNT] = {
	[TC_DC09_OK] = "ok", [TC_DC09_E_CRC] = "crc", [TC_DC09_E_LENGTH] = "length",
	[TC_DC09_E_FORMAT] = "format", [TC_DC09_E_ID] = "id", [TC_DC09_E_KEY] = "key",
	[TC_DC09_E_DECRYPT] = "decrypt", [TC_DC09_E_TIME] = "time",
};

const char *tc_dc09_status_name(enum tc_dc09_status s)
{
	return ((unsigned)s < TC_DC09__STATUS_COUNT) ? status_names[s] : "invalid";
}

/* SPEC 2.8: DUH for an ID we do not handle, NAK for everything else wrong. */
enum tc_dc09_reply tc_dc09_reply_for(enum tc_dc09_status s)
{
	if (s == TC_DC09_OK)
		return TC_DC09_ACK;
	return s == TC_DC09_E_ID ? TC_DC09_DUH : TC_DC09_NAK;
}

const char *tc_dc09_reply_name(enum tc_dc09_reply r)
{
	switch (r) {
	case TC_DC09_ACK: return "ACK";
	case TC_DC09_NAK: return "NAK";
	case TC_DC09_DUH: return "DUH";
	}
	return "invalid";
}

static enum tc_dc09_status fail(enum tc_dc09_status s, char *err, size_t errlen,
                                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum tc_dc09_status fail(enum tc_dc09_status s, char *err, size_t errlen,
                                const char *fmt, ...)
{
	if (err && errlen) {
		static const char *const what[TC_DC09__STATUS_COUNT] = {
			[TC_DC09_E_CRC] = "bad CRC", [TC_DC09_E_LENGTH] = "bad length",
			[TC_DC09_E_FORMAT] = "bad format", [TC_DC09_E_ID] = "unknown ID",
			[TC_DC09_E_KEY] = "key", [TC_DC09_E_DECRYPT] = "cannot decrypt",
			[TC_DC09_E_TIME] = "timestamp outside the window",
		};
		int n = snprintf(err, errlen, "%s: ", what[s]);
		if (n >= 0 && (size_t)n < errlen) {
			va_list ap;
			va_start(ap, fmt);
			vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
			va_end(ap);
		}
	}
	return s;
}

/* ---- small helpers ---- */

uint16_t tc_dc09_crc(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint16_t crc = 0;
	for (size_t i = 0; i < len; i++) {
		crc ^= p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_upper(char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

/* A byte as it may appear in an error message (isprint() would follow the
 * locale). */
static char shown(char c)
{
	return (c >= 0x20 && c < 0x7f) ? c : '?';
}

/* n hex digits at p as a number, or -1. */
static long hexnum(const char *p, size_t n)
{
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		int h = hexval((unsigned char)p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* n decimal digits at p as a number, or -1. */
static long decnum(const char *p, size_t n)
{
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), and back; no timegm(), no time zone. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return (m == 2 && leap) ? 29 : dim[m - 1];
}

void tc_dc09_format_ts(int64_t ms, char *buf, size_t len)
{
	int64_t s = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
	int64_t days = s >= 0 ? s / 86400 : (s - 86399) / 86400;
	int64_t sod = s - days * 86400;
	int64_t y;
	int m, d;
	civil_from_days(days, &y, &m, &d);
	snprintf(buf, len, "_%02d:%02d:%02d,%02d-%02d-%04lld", (int)(sod / 3600),
	         (int)(sod / 60 % 60), (int)(sod % 60), m, d, (long long)y);
}

/* "_HH:MM:SS,MM-DD-YYYY" (exactly TC_DC09_TS_LEN bytes) to ms, or -1. DC-09
 * timestamps are UTC (5.5.1.8). A leap second (:60) is read as the next
 * second's start, as timegm() would. */
static int parse_ts(const char *p, int64_t *ms)
{
	if (p[0] != '_' || p[3] != ':' || p[6] != ':' || p[9] != ',' || p[12] != '-' ||
	    p[15] != '-')
		return -1;
	long hh = decnum(p + 1, 2), mi = decnum(p + 4, 2), ss = decnum(p + 7, 2);
	long mo = decnum(p + 10, 2), dd = decnum(p + 13, 2), yy = decnum(p + 16, 4);
	if (hh < 0 || hh > 23 || mi < 0 || mi > 59 || ss < 0 || ss > 60 || mo < 1 || mo > 12 ||
	    yy < 1970 || dd < 1 || dd > days_in_month(yy, (int)mo))
		return -1;
	int64_t days = days_from_civil(yy, (int)mo, (int)dd);
	*ms = ((days * 86400) + hh * 3600 + mi * 60 + ss) * 1000;
	return 0;
}

/* Windows-1252 0x80-0x9F as Unicode; 0 where the code page has no character. */
static const uint16_t cp1252[32] = {
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
};

/* DC-09-2013 allows Windows-1252 in some x-data (alarm text, location, site
 * names); ASCII is a subset, so every text is read as Windows-1252. */
size_t tc_dc09_to_utf8(const char *s, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	if (!outlen)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		unsigned u = c;
		char enc[3];
		size_t n;
		if (c < 0x20 || c == 0x7f)
			u = '?';
		else if (c >= 0x80 && c < 0xa0)
			u = cp1252[c - 0x80] ? cp1252[c - 0x80] : '?';
		if (u < 0x80) {
			enc[0] = (char)u;
			n = 1;
		} else if (u < 0x800) {
			enc[0] = (char)(0xc0 | (u >> 6));
			enc[1] = (char)(0x80 | (u & 0x3f));
			n = 2;
		} else {
			enc[0] = (char)(0xe0 | (u >> 12));
			enc[1] = (char)(0x80 | ((u >> 6) & 0x3f));
			enc[2] = (char)(0x80 | (u & 0x3f));
			n = 3;
		}
		if (o + n + 1 > outlen)
			break;
		memcpy(out + o, enc, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

/* ---- framing ---- */

enum tc_dc09_scan tc_dc09_frame_next(const void *buf, size_t len, size_t *skip, size_t *flen)
{
	const unsigned char *b = buf;
	size_t start = 0;
	*flen = 0;
	for (;;) {
		while (start < len && b[start] != '\n')
			start++;
		if (start == len) {
			*skip = len;
			return TC_DC09_NEED_MORE;
		}
		size_t i = start + 1;
		while (i < len && b[i] != '\r' && b[i] != '\n' && i - start < TC_DC09_FRAME_MAX)
			i++;
		if (i - start >= TC_DC09_FRAME_MAX) {
			*skip = i;
			return TC_DC09_TOO_LONG;
		}
		if (i == len) {
			*skip = start;
			return TC_DC09_NEED_MORE;
		}
		if (b[i] == '\r') {
			*skip = start;
			*flen = i - start + 1;
			return TC_DC09_FRAME;
		}
		start = i;   /* LF ... LF: the first was noise */
	}
}

/* ---- AES-CBC, zero IV, no padding (DC-09-2013 5.4.6: NIST SP 800-38A CBC
 * with an all-zero IV; the pad field, not PKCS#7, fills the last block) ---- */

static const EVP_CIPHER *cipher_for(size_t keylen)
{
	switch (keylen) {
	case 16: return EVP_aes_128_cbc();
	case 24: return EVP_aes_192_cbc();
	case 32: return EVP_aes_256_cbc();
	default: return NULL;
	}
}

static int aes_cbc(bool enc, const struct tc_dc09_key *key, const unsigned char *in, size_t n,
                   unsigned char *out)
{
	static const unsigned char iv[16];
	const EVP_CIPHER *c = cipher_for(key->len);
	if (!c || n % 16 || n > INT32_MAX)
		return -1;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -1;
	int ok = 0, l1 = 0, l2 = 0;
	if (EVP_CipherInit_ex(ctx, c, NULL, key->bytes, iv, enc ? 1 : 0) == 1 &&
	    EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
	    EVP_CipherUpdate(ctx, out, &l1, in, (int)n) == 1 &&
	    EVP_CipherFinal_ex(ctx, out + l1, &l2) == 1 && (size_t)(l1 + l2) == n)
		ok = 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -1;
}

/* ---- decoding ---- */

struct cursor {
	const char *p, *e;
};

/* 'c' followed by min..max hex digits into out (NUL-terminated). 1 read,
 * 0 when *p is not c, -1 when the digits are wrong. */
static int hex_field(struct cursor *c, char lead, size_t min, size_t max, char *out)
{
	if (c->p >= c->e || *c->p != lead)
		return 0;
	const char *q = c->p + 1;
	size_t n = 0;
	while (q + n < c->e && hexval((unsigned char)q[n]) >= 0 && n <= max)
		n++;
	if (n < min || n > max)
		return -1;
	memcpy(out, q, n);
	out[n] = '\0';
	c->p = q + n;
	return 1;
}

static enum tc_dc09_status parse_head(struct cursor *c, struct tc_dc09_msg *m, char *err,
                                      size_t errlen)
{
	char clean[64];
	struct tc_dc09_head *h = &m->head;
	if (c->p >= c->e || *c->p != '"')
		return fail(TC_DC09_E_FORMAT, err, errlen, "no '\"' before the ID");
	const char *q = memchr(c->p + 1, '"', (size_t)(c->e - c->p - 1));
	if (!q)
		return fail(TC_DC09_E_FORMAT, err, errlen, "ID has no closing '\"'");
	const char *tok = c->p + 1;
	size_t tlen = (size_t)(q - tok);
	if (tlen && *tok == '*') {
		h->encrypted = true;
		tok++;
		tlen--;
	}
	if (tlen == 0 || tlen > TC_DC09_TOKEN_MAX)
		return fail(TC_DC09_E_FORMAT, err, errlen, "ID \"%s\" is empty or too long",
		            tc_sanitize(c->p + 1, (size_t)(q - c->p - 1), clean, sizeof(clean)));
	memcpy(h->token, tok, tlen);
	h->token[tlen] = '\0';
	if (!strcmp(h->token, "SIA-DCS"))
		h->id = TC_DC09_ID_SIA_DCS;
	else if (!strcmp(h->token, "ADM-CID"))
		h->id = TC_DC09_ID_ADM_CID;
	else if (!strcmp(h->token, "NULL"))
		h->id = TC_DC09_ID_NULL;
	else
		h->id = TC_DC09_ID_UNKNOWN;
	c->p = q + 1;

	/* 5.5.1.5: four decimal digits, 0000-9999 */
	long seq = (c->e - c->p >= 4) ? decnum(c->p, 4) : -1;
	if (seq < 0)
		return fail(TC_DC09_E_FORMAT, err, errlen, "sequence number is not 4 digits");
	h->seq = (uint16_t)seq;
	c->p += 4;
	if (hex_field(c, 'R', 1, TC_DC09_PREFIX_MAX, h->receiver) < 0)
		return fail(TC_DC09_E_FORMAT, err, errlen, "receiver number is not R + 1-6 hex digits");
	int r = hex_field(c, 'L', 1, TC_DC09_PREFIX_MAX, h->prefix);
	if (r <= 0)
		return fail(TC_DC09_E_FORMAT, err, errlen,
		            r ? "account prefix is not L + 1-6 hex digits" : "no account prefix (L)");
	r = hex_field(c, '#', 3, TC_DC09_ACCOUNT_MAX, h->account);
	if (r <= 0)
		return fail(TC_DC09_E_FORMAT, err, errlen, "no account (# and 3-16 hex digits)");
	if (c->p >= c->e || *c->p != '[')
		return fail(TC_DC09_E_FORMAT, err, errlen, "no '[' after the account");
	c->p++;
	m->head_ok = true;
	return TC_DC09_OK;
}

/* The encrypted part: hex of pad | content (5.4.4). Decrypted into
 * m->content with the pad and its '|' removed. */
static enum tc_dc09_status decrypt_content(const char *p, size_t n, const struct tc_dc09_key *key,
                                           struct tc_dc09_msg *m, char *err, size_t errlen)
{
	/* ct zeroed: GCC -O2 cannot see that the loop fills what aes_cbc reads */
	unsigned char ct[TC_DC09_FRAME_MAX / 2] = { 0 }, pt[TC_DC09_FRAME_MAX / 2];
	if (n == 0 || n % 32)
		return fail(TC_DC09_E_FORMAT, err, errlen,
		            "encrypted part is %zu hex digits, not a multiple of 32", n);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)p[2 * i]), lo = hexval((unsigned char)p[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return fail(TC_DC09_E_FORMAT, err, errlen, "encrypted part is not hex");
		ct[i] = (unsigned char)(hi << 4 | lo);
	}
	if (aes_cbc(false, key, ct, n / 2, pt) < 0)
		return fail(TC_DC09_E_DECRYPT, err, errlen, "the cipher failed");
	/* 5.4.4.2: pad bytes are anything but '|', '[' and ']', so the first '|'
	 * ends the pad. */
	const unsigned char *bar = memchr(pt, '|', n / 2);
	if (!bar) {
		OPENSSL_cleanse(pt, sizeof(pt));
		return fail(TC_DC09_E_DECRYPT, err, errlen,
		            "no '|' after the pad (wrong key for account %s?)", m->head.account);
	}
	size_t len = n / 2 - (size_t)(bar + 1 - pt);
	memcpy(m->content, bar + 1, len);
	m->content[len] = '\0';
	m->content_len = len;
	OPENSSL_cleanse(pt, sizeof(pt));
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)m->content[i];
		if (ch < 0x20 || ch == 0x7f)
			return fail(TC_DC09_E_DECRYPT, err, errlen,
			            "decrypted text has control bytes (wrong key for account %s?)",
			            m->head.account);
	}
	return TC_DC09_OK;
}

/* A number (decimal degrees, optionally signed) or DC-09's degrees,
 * hemisphere letter and decimal minutes ("006E07.7777777", "49N06.6666666":
 * the form in pysiaalarm's x-data test case). pos/neg: the hemisphere letters. */
static bool parse_coord(const char *p, size_t n, char pos, char neg, double max, double *out)
{
	double deg = 0, frac = 0, scale = 1, sign = 1;
	size_t i = 0, digits = 0;
	if (n == 0 || n > 20)
		return false;
	if (p[0] == '-' || p[0] == '+') {
		sign = p[0] == '-' ? -1 : 1;
		i++;
	}
	for (; i < n && is_digit(p[i]) && digits < 3; i++, digits++)
		deg = deg * 10 + (p[i] - '0');
	if (!digits)
		return false;
	if (i < n && (p[i] == pos || p[i] == neg) && sign == 1 && p[0] != '+') {
		/* degrees, hemisphere, minutes */
		sign = p[i] == neg ? -1 : 1;
		i++;
		double min = 0;
		size_t md = 0;
		for (; i < n && is_digit(p[i]) && md < 2; i++, md++)
			min = min * 10 + (p[i] - '0');
		if (!md)
			return false;
		if (i < n && p[i] == '.') {
			size_t fd = 0;
			for (i++; i < n && is_digit(p[i]) && fd < 10; i++, fd++)
				min += (p[i] - '0') * (scale /= 10);
			if (!fd)
				return false;
		}
		if (i != n || min >= 60)
			return false;
		deg += min / 60;
	} else {
		if (i < n && p[i] == '.') {
			size_t fd = 0;
			for (i++; i < n && is_digit(p[i]) && fd < 10; i++, fd++)
				frac += (p[i] - '0') * (scale /= 10);
			if (!fd)
				return false;
		}
		if (i != n)
			return false;
		deg += frac;
	}
	if (deg > max)
		return false;
	*out = sign * deg;
	return true;
}

/* content = DATA ] { [x-data] } [ _TIMESTAMP ] (5.5.1.7 - 5.5.1.9). Splits it;
 * the data is returned as [*ds, *de). */
static enum tc_dc09_status split_content(struct tc_dc09_msg *m, const char **ds, const char **de,
                                         char *err, size_t errlen)
{
	const char *p = m->content, *e = m->content + m->content_len;
	const char *close = memchr(p, ']', m->content_len);
	if (!close)
		return fail(TC_DC09_E_FORMAT, err, errlen, "data has no closing ']'");
	if (memchr(p, '[', (size_t)(close - p)))
		return fail(TC_DC09_E_FORMAT, err, errlen, "'[' inside the data");
	*ds = p;
	*de = close;
	p = close + 1;
	bool have_x = false, have_y = false;
	double lon = 0, lat = 0;
	while (p < e && *p == '[') {
		const char *q = memchr(p + 1, ']', (size_t)(e - p - 1));
		if (!q)
			return fail(TC_DC09_E_FORMAT, err, errlen, "x-data has no closing ']'");
		if (memchr(p + 1, '[', (size_t)(q - p - 1)))
			return fail(TC_DC09_E_FORMAT, err, errlen, "'[' inside x-data");
		char id = q > p + 1 ? p[1] : 0;
		const char *v = q > p + 1 ? p + 2 : p + 1;
		size_t vlen = (size_t)(q - v);
		if (m->n_xdata < TC_DC09_XDATA_MAX) {
			struct tc_dc09_xdata *x = &m->xdata[m->n_xdata++];
			x->id = id;
			x->off = (uint16_t)(v - m->content);
			x->len = (uint16_t)vlen;
		}
		/* 5.5.1.9: [X] longitude, [Y] latitude; a value we cannot read is
		 * kept as x-data but gives no position */
		if (id == 'X')
			have_x = parse_coord(v, vlen, 'E', 'W', 180, &lon);
		else if (id == 'Y')
			have_y = parse_coord(v, vlen, 'N', 'S', 90, &lat);
		p = q + 1;
	}
	if (have_x && have_y) {
		m->has_loc = true;
		m->lat = lat;
		m->lon = lon;
	}
	if (p < e) {
		char clean[32];
		if (*p != '_' || (size_t)(e - p) != TC_DC09_TS_LEN || parse_ts(p, &m->ts_ms) < 0)
			return fail(TC_DC09_E_FORMAT, err, errlen,
			            "\"%s\" after the data is not a timestamp _HH:MM:SS,MM-DD-YYYY",
			            tc_sanitize(p, (size_t)(e - p), clean, sizeof(clean)));
		m->has_ts = true;
	}
	return TC_DC09_OK;
}

/* Optional "#ACCT" and the '|' that ends it (or a bare '|'), at the start of
 * the data (5.5.1.7: "#acct|..." as in the standard's examples). */
static int data_account(struct cursor *c, struct tc_dc09_msg *m)
{
	int r = hex_field(c, '#', 3, TC_DC09_ACCOUNT_MAX, m->data_account);
	if (r < 0)
		return -1;
	if (c->p < c->e && *c->p == '|')
		c->p++;
	else if (r > 0)
		return -1;
	return 0;
}

static void set_text(char *dst, const char *s, size_t n)
{
	tc_dc09_to_utf8(s, n, dst, TC_DC09_TEXT_MAX + 1);
}

/* SIA DC-03 data as DC-07 carries it: 'N' (new event; 'O' old event is
 * read the same way), then modifiers (two lower-case letters and a value:
 * ri area, id user, ti time, others skipped) and events (two upper-case
 * letters, an optional numeric parameter, an optional ^text^), separated by
 * '/'. Modifiers hold for the events after them in the block. After '/', a
 * bare number repeats the previous code for a new parameter. "|A text"
 * after the events, or a block of 'A' alone, is text. */
static enum tc_dc09_status parse_sia(struct cursor *c, struct tc_dc09_msg *m, char *err,
                                     size_t errlen)
{
	char area[TC_DC09_FIELD_MAX + 1] = "", user[TC_DC09_FIELD_MAX + 1] = "";
	char tim[TC_DC09_FIELD_MAX + 1] = "", last[3] = "";
	const char *start = c->p;
	if (c->p >= c->e)
		return fail(TC_DC09_E_FORMAT, err, errlen, "SIA-DCS data is empty");
	if (*c->p == 'A') {
		const char *bar = memchr(c->p, '|', (size_t)(c->e - c->p));
		set_text(m->text, c->p + 1, (size_t)((bar ? bar : c->e) - c->p - 1));
		return TC_DC09_OK;
	}
	if (*c->p != 'N' && *c->p != 'O')
		return fail(TC_DC09_E_FORMAT, err, errlen, "SIA data starts with '%c', not N",
		            shown(*c->p));
	c->p++;
	bool after_sep = true;
	while (c->p < c->e) {
		const char *p = c->p;
		if (*p == '/') {
			c->p++;
			after_sep = true;
			continue;
		}
		if (*p == ' ') {
			c->p++;
			continue;
		}
		if (*p == '|') {
			p++;
			if (p < c->e && *p == 'A') {
				const char *bar = memchr(p, '|', (size_t)(c->e - p));
				set_text(m->text, p + 1, (size_t)((bar ? bar : c->e) - p - 1));
			}
			break;
		}
		if (is_lower(*p) && p + 1 < c->e && is_lower(p[1])) {
			const char *v = p + 2, *ve = v;
			while (ve < c->e && (is_digit(*ve) || *ve == ':'))
				ve++;
			if ((size_t)(ve - v) > TC_DC09_FIELD_MAX)
				return fail(TC_DC09_E_FORMAT, err, errlen,
				            "SIA modifier %.2s has a value over %d characters", p,
				            TC_DC09_FIELD_MAX);
			char *dst = !strncmp(p, "ri", 2) ? area : !strncmp(p, "id", 2) ? user
			          : !strncmp(p, "ti", 2) ? tim : NULL;
			if (dst) {
				memcpy(dst, v, (size_t)(ve - v));
				dst[ve - v] = '\0';
			}
			c->p = ve;
			after_sep = false;
			continue;
		}
		bool code = is_upper(*p) && p + 1 < c->e && is_upper(p[1]);
		if (code || (is_digit(*p) && after_sep && last[0])) {
			if (m->n_events == TC_DC09_EVENTS_MAX)
				return fail(TC_DC09_E_FORMAT, err, errlen, "more than %d events in the block",
				            TC_DC09_EVENTS_MAX);
			struct tc_dc09_event *ev = &m->events[m->n_events];
			memset(ev, 0, sizeof(*ev));
			ev->syntax = TC_DC09_SIA;
			if (code) {
				memcpy(last, p, 2);
				last[2] = '\0';
				p += 2;
			}
			memcpy(ev->code, last, 3);
			const char *v = p;
			while (p < c->e && is_digit(*p))
				p++;
			if ((size_t)(p - v) > TC_DC09_FIELD_MAX)
				return fail(TC_DC09_E_FORMAT, err, errlen,
				            "SIA event %s has a parameter over %d digits", last,
				            TC_DC09_FIELD_MAX);
			memcpy(ev->zone, v, (size_t)(p - v));
			if (p < c->e && *p == '^') {
				const char *t = memchr(p + 1, '^', (size_t)(c->e - p - 1));
				if (!t)
					return fail(TC_DC09_E_FORMAT, err, errlen,
					            "SIA event %s has a text without its closing '^'", last);
				set_text(ev->text, p + 1, (size_t)(t - p - 1));
				p = t + 1;
			}
			memcpy(ev->area, area, sizeof(area));
			memcpy(ev->user, user, sizeof(user));
			memcpy(ev->time, tim, sizeof(tim));
			m->n_events++;
			c->p = p;
			after_sep = false;
			continue;
		}
		return fail(TC_DC09_E_FORMAT, err, errlen, "unexpected '%c' at offset %td of the SIA data",
		            shown(*p), p - start);
	}
	if (m->n_events == 0 && !m->text[0])
		return fail(TC_DC09_E_FORMAT, err, errlen, "SIA data has no event");
	return TC_DC09_OK;
}

/* Contact ID in DC-09: "QEEE GG ZZZ" (qualifier, event code, group or
 * partition, zone or user), as in the standard's ADM-CID example
 * "#12345A|1110 00 129". Group and zone digits may be hex (DC-05 sends
 * digits 0-F). */
static enum tc_dc09_status parse_cid(struct cursor *c, struct tc_dc09_msg *m, char *err,
                                     size_t errlen)
{
	const char *p = c->p;
	char clean[32];
	if (c->e - p != 11 || p[4] != ' ' || p[7] != ' ' || decnum(p + 1, 3) < 0 ||
	    hexnum(p + 5, 2) < 0 || hexnum(p + 8, 3) < 0)
		return fail(TC_DC09_E_FORMAT, err, errlen, "Contact ID data \"%s\" is not QEEE GG ZZZ",
		            tc_sanitize(p, (size_t)(c->e - p), clean, sizeof(clean)));
	if (p[0] != '1' && p[0] != '3' && p[0] != '6')
		return fail(TC_DC09_E_FORMAT, err, errlen,
		            "Contact ID qualifier '%c' is not 1 (new), 3 (restore) or 6 (still present)",
		            shown(p[0]));
	struct tc_dc09_event *ev = &m->events[0];
	memset(ev, 0, sizeof(*ev));
	ev->syntax = TC_DC09_CID;
	ev->qualifier = p[0];
	ev->restore = p[0] == '3';
	memcpy(ev->code, p + 1, 3);
	memcpy(ev->area, p + 5, 2);
	memcpy(ev->zone, p + 8, 3);
	m->n_events = 1;
	return TC_DC09_OK;
}

enum tc_dc09_status tc_dc09_decode(const void *frame, size_t len, const struct tc_dc09_opts *o,
                                   struct tc_dc09_msg *m, char *err, size_t errlen)
{
	const char *f = frame;
	enum tc_dc09_status s;
	memset(m, 0, sizeof(*m));
	if (err && errlen)
		err[0] = '\0';
	if (len > TC_DC09_FRAME_MAX)
		return fail(TC_DC09_E_LENGTH, err, errlen, "frame of %zu bytes, more than %d", len,
		            TC_DC09_FRAME_MAX);
	if (len < HEAD_MIN || f[0] != '\n' || f[len - 1] != '\r')
		return fail(TC_DC09_E_FORMAT, err, errlen, "not a frame (LF, CRC, length, message, CR)");
	for (size_t i = 1; i + 1 < len; i++) {
		unsigned char ch = (unsigned char)f[i];
		if (ch < 0x20 || ch == 0x7f)
			return fail(TC_DC09_E_FORMAT, err, errlen, "control byte 0x%02x at offset %zu", ch, i);
	}
	long crc = hexnum(f + 1, 4), flen = hexnum(f + 5, 4);
	if (crc < 0)
		return fail(TC_DC09_E_FORMAT, err, errlen, "CRC field is not 4 hex digits");
	/* 5.5.1.3: "0LLL", the length in hex of the bytes the CRC covers */
	if (flen < 0 || f[5] != '0')
		return fail(TC_DC09_E_FORMAT, err, errlen, "length field is not 0 and 3 hex digits");
	const char *body = f + 9;
	size_t blen = len - HEAD_MIN;
	if ((size_t)flen != blen)
		return fail(TC_DC09_E_LENGTH, err, errlen,
		            "the length field says %ld bytes, the message has %zu", flen, blen);
	uint16_t got = tc_dc09_crc(body, blen);
	if (got != (uint16_t)crc)
		return fail(TC_DC09_E_CRC, err, errlen, "the CRC field says %04lX, the message gives %04X",
		            crc, got);

	struct cursor c = { body, body + blen };
	if ((s = parse_head(&c, m, err, errlen)) != TC_DC09_OK)
		return s;
	struct tc_dc09_head *h = &m->head;
	if (h->id == TC_DC09_ID_UNKNOWN) {
		char clean[TC_DC09_TOKEN_MAX + 4];
		return fail(TC_DC09_E_ID, err, errlen, "\"%s%s\" from account %s", h->encrypted ? "*" : "",
		            tc_sanitize(h->token, strlen(h->token), clean, sizeof(clean)), h->account);
	}
	const struct tc_dc09_key *key = o && o->keys ? tc_dc09_keys_find(o->keys, h->account) : NULL;
	size_t rest = (size_t)(c.e - c.p);
	if (h->encrypted) {
		if (!key)
			return fail(TC_DC09_E_KEY, err, errlen, "encrypted message from account %s, which has no key",
			            h->account);
		if ((s = decrypt_content(c.p, rest, key, m, err, errlen)) != TC_DC09_OK)
			return s;
	} else {
		/* a panel with a key must use it: accepting plain text from its
		 * account would let anyone on the path speak for it */
		if (key)
			return fail(TC_DC09_E_KEY, err, errlen,
			            "unencrypted message from account %s, which has a key", h->account);
		memcpy(m->content, c.p, rest);
		m->content[rest] = '\0';
		m->content_len = rest;
	}

	const char *ds = NULL, *de = NULL;   /* set by split_content (for GCC -O2's sake) */
	if ((s = split_content(m, &ds, &de, err, errlen)) != TC_DC09_OK) {
		/* with a wrong key the text after a random '|' is noise that rarely
		 * passes the byte check above, but cannot pass this one */
		if (h->encrypted)
			return fail(TC_DC09_E_DECRYPT, err, errlen,
			            "decrypted text is not a message (wrong key for account %s?)", h->account);
		return s;
	}
	/* 5.5.2.1.2 and 5.4.4.3: the timestamp is required when encrypted */
	if (h->encrypted && !m->has_ts)
		return fail(TC_DC09_E_FORMAT, err, errlen, "encrypted message without a timestamp");
	if (o && m->has_ts && (o->max_age_ms || o->max_lead_ms)) {
		int64_t age = o->now_ms - m->ts_ms;
		char ts[TC_DC09_TS_LEN + 1];
		tc_dc09_format_ts(m->ts_ms, ts, sizeof(ts));
		if (age > o->max_age_ms)
			return fail(TC_DC09_E_TIME, err, errlen, "%s is %lld s old (at most %lld s allowed)",
			            ts + 1, (long long)(age / 1000), (long long)(o->max_age_ms / 1000));
		if (-age > o->max_lead_ms)
			return fail(TC_DC09_E_TIME, err, errlen,
			            "%s is %lld s ahead of the receiver (at most %lld s allowed)", ts + 1,
			            (long long)(-age / 1000), (long long)(o->max_lead_ms / 1000));
	}

	struct cursor d = { ds, de };
	if (h->id != TC_DC09_ID_NULL) {
		/* a NULL message's data, if any, means nothing */
		if (data_account(&d, m) < 0)
			return fail(TC_DC09_E_FORMAT, err, errlen,
			            "data does not start with #ACCT| (3-16 hex digits and '|')");
		s = h->id == TC_DC09_ID_SIA_DCS ? parse_sia(&d, m, err, errlen)
		                                : parse_cid(&d, m, err, errlen);
		if (s != TC_DC09_OK)
			return s;
	}
	for (size_t i = 0; i < m->n_events; i++)
		tc_dc09_map(o ? o->rules : NULL, o ? o->n_rules : 0, &m->events[i]);
	return TC_DC09_OK;
}

/* ---- encoding ---- */

struct out {
	char *b;
	size_t n, cap;
	bool over;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->over || o->n + n + 1 > o->cap) {
		o->over = true;
		return;
	}
	memcpy(o->b + o->n, s, n);
	o->n += n;
	o->b[o->n] = '\0';
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* LF CRC 0LLL body CR around the body already at out->b + 10. */
static int finish(struct out *o)
{
	put(o, "\r", 1);
	if (o->over)
		return -1;
	size_t blen = o->n - 10;
	if (blen > 0xfff || o->n > TC_DC09_FRAME_MAX)
		return -1;
	char hdr[10];
	snprintf(hdr, sizeof(hdr), "%04X0%03zX", tc_dc09_crc(o->b + 9, blen), blen);
	memcpy(o->b + 1, hdr, 8);
	return (int)o->n;
}

static bool head_valid(const struct tc_dc09_head *h)
{
	size_t a = strlen(h->account), l = strlen(h->prefix), r = strlen(h->receiver);
	if (h->seq > 9999 || a < 3 || a > TC_DC09_ACCOUNT_MAX || l < 1 || l > TC_DC09_PREFIX_MAX ||
	    r > TC_DC09_PREFIX_MAX)
		return false;
	for (const char *s = h->account; *s; s++)
		if (hexval((unsigned char)*s) < 0)
			return false;
	for (const char *s = h->prefix; *s; s++)
		if (hexval((unsigned char)*s) < 0)
			return false;
	for (const char *s = h->receiver; *s; s++)
		if (hexval((unsigned char)*s) < 0)
			return false;
	return true;
}

int tc_dc09_encode(const char *token, const struct tc_dc09_head *h, const char *content,
                   size_t clen, const struct tc_dc09_key *key, const uint8_t rnd[16], char *out,
                   size_t outlen)
{
	struct out o = { out, 0, outlen, false };
	char seq[8];
	if (!token || !*token || strchr(token, '"') || !head_valid(h) || (key && !rnd) ||
	    clen > TC_DC09_FRAME_MAX)
		return -1;
	put(&o, "\n00000000", 9);   /* LF, then CRC and length filled in by finish() */
	put(&o, "\"", 1);
	if (key)
		put(&o, "*", 1);
	puts_(&o, token);
	put(&o, "\"", 1);
	snprintf(seq, sizeof(seq), "%04u", (unsigned)h->seq);
	puts_(&o, seq);
	if (h->receiver[0]) {
		put(&o, "R", 1);
		puts_(&o, h->receiver);
	}
	put(&o, "L", 1);
	puts_(&o, h->prefix);
	put(&o, "#", 1);
	puts_(&o, h->account);
	put(&o, "[", 1);
	if (!key) {
		put(&o, content, clen);
		return finish(&o);
	}
	/* 5.4.4.3: pad + '|' + content, a multiple of 16 bytes; a message that
	 * already is one gets 16 pad bytes. The standard allows any byte but
	 * '|', '[' and ']' in the pad; letters and digits keep every receiver's
	 * text handling happy. */
	static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char pt[TC_DC09_FRAME_MAX + 32], ct[sizeof(pt)];
	size_t padlen = 16 - (clen + 1) % 16, n = padlen + 1 + clen;
	for (size_t i = 0; i < padlen; i++)
		pt[i] = (unsigned char)alnum[rnd[i] % (sizeof(alnum) - 1)];
	pt[padlen] = '|';
	memcpy(pt + padlen + 1, content, clen);
	int rc = aes_cbc(true, key, pt, n, ct);
	OPENSSL_cleanse(pt, sizeof(pt));
	if (rc < 0)
		return -1;
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		char two[2] = { hex[ct[i] >> 4], hex[ct[i] & 15] };
		put(&o, two, 2);
	}
	return finish(&o);
}

int tc_dc09_reply(enum tc_dc09_reply kind, const struct tc_dc09_head *h,
                  const struct tc_dc09_key *key, int64_t now_ms, const uint8_t rnd[16],
                  char *out, size_t outlen)
{
	char ts[TC_DC09_TS_LEN + 1], content[TC_DC09_TS_LEN + 2];
	tc_dc09_format_ts(now_ms, ts, sizeof(ts));
	if (kind == TC_DC09_NAK) {
		/* 5.5.3.2: sequence 0000, receiver 0, prefix 0, account "A0", never
		 * encrypted, the receiver's time so the panel can set its clock */
		struct out o = { out, 0, outlen, false };
		put(&o, "\n00000000", 9);
		puts_(&o, "\"NAK\"0000R0L0A0[]");
		puts_(&o, ts);
		return finish(&o);
	}
	if (!h)
		return -1;
	/* 5.5.3.1: the ACK echoes sequence, receiver, prefix and account with
	 * empty data; encrypted ("*ACK", padding and timestamp required) when
	 * the message was. DC-09 makes the timestamp optional in an unencrypted
	 * ACK; SPEC 2.8 always sends the receiver's time. pysiaalarm and
	 * ioBroker.sia leave it out of unencrypted ACKs and pysiaalarm leaves
	 * the '|' out of encrypted ones; we follow the standard's pad '|'. DUH
	 * (5.5.3.3) has the ACK's layout, unencrypted as in pysiaalarm: the
	 * message it answers was not understood. */
	snprintf(content, sizeof(content), "]%s", ts);
	if (kind == TC_DC09_ACK && h->encrypted)
		return key ? tc_dc09_encode("ACK", h, content, strlen(content), key, rnd, out, outlen) : -1;
	return tc_dc09_encode(kind == TC_DC09_ACK ? "ACK" : "DUH", h, content, strlen(content), NULL,
	                      NULL, out, outlen);
}
