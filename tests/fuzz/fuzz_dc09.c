/* libFuzzer: the SIA DC-09 codec (common/dc09.c, common/dc09_map.c).
 * A random frame almost never has a right CRC, so the first byte chooses
 * how the rest is used:
 *   'w'  the message from the ID on: the harness adds LF, CRC, length, CR
 *   'e'  "ID"...[ then a content: the harness encrypts the content with
 *        the header account's key (pad, '|'), then frames it
 *   'k'  a keys file          'u'  a rule          's'  a TCP stream
 *   else the bytes as a frame
 * Beyond "no crash, no leak, no UB" it checks the codec's contract:
 *  - a status in range, a printable reason for every refusal, none on OK;
 *  - a head that was read is well-formed (sequence, hex fields);
 *  - an accepted message: events within bounds, valid types, UTF-8 texts,
 *    x-data inside the content, a position in range;
 *  - its reply (ACK, or DUH for an unknown ID, NAK otherwise) builds, and
 *    decodes as a well-formed frame with the same head;
 *  - re-encoding an accepted message (encrypted again if it was) decodes to
 *    the same events, timestamp and position;
 *  - keys: sorted, findable, 16/24/32 bytes; rules: canonical text reparses
 *    to the same rule; the stream scanner always progresses and cuts frames
 *    that start with LF and end with CR. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "telecare/dc09.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
			        #cond);                                              \
			abort();                                                     \
		}                                                                    \
	} while (0)

#define NOW 1772702047123LL   /* 2026-03-05T09:14:07.123Z; seeds use _09:14:07,03-05-2026 */

static const char keys_text[] =
	"1234 000102030405060708090a0b0c0d0e0f\n"
	"ABCD 000102030405060708090A0B0C0D0E0F1011121314151617\n"
	"12345678 ascii:0123456789abcdef0123456789abcdef\n";

static struct tc_dc09_keys keys;
static struct tc_dc09_rule rules[3];
static size_t n_rules;

static void init(void)
{
	static int done;
	char err[256];
	if (done)
		return;
	done = 1;
	CHECK(tc_dc09_keys_parse(keys_text, strlen(keys_text), &keys, err, sizeof(err)) == 0);
	const char *r[] = { "cid=1102 -> fall", "sia=BA -> panic", "zone=3 -> fall" };
	for (n_rules = 0; n_rules < 3; n_rules++)
		CHECK(tc_dc09_rule_parse(r[n_rules], &rules[n_rules], err, sizeof(err)) == 0);
}

static void check_printable(const char *s)
{
	CHECK(s[0] != '\0');
	for (; *s; s++)
		CHECK((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static int hexstr(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);
	if (n < min || n > max)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'A' && *s <= 'F') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

static int utf8ok(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	return n < cap && tc_utf8_valid(s, n);
}

static void check_head(const struct tc_dc09_head *h)
{
	CHECK(h->seq <= 9999);
	CHECK(strlen(h->token) >= 1 && strlen(h->token) <= TC_DC09_TOKEN_MAX);
	CHECK(hexstr(h->account, 3, TC_DC09_ACCOUNT_MAX));
	CHECK(hexstr(h->prefix, 1, TC_DC09_PREFIX_MAX));
	CHECK(hexstr(h->receiver, 0, TC_DC09_PREFIX_MAX));
}

static int valid_type(enum tc_type t)
{
	return t == TC_T_INVALID || (t >= 0 && t < TC_T__DEVICE_COUNT);
}

static void check_msg(const struct tc_dc09_msg *m)
{
	CHECK(m->head_ok);
	check_head(&m->head);
	CHECK(m->head.id != TC_DC09_ID_UNKNOWN);
	CHECK(m->content_len <= TC_DC09_FRAME_MAX);
	CHECK(strlen(m->content) == m->content_len);
	CHECK(m->n_events <= TC_DC09_EVENTS_MAX);
	CHECK(m->head.id != TC_DC09_ID_NULL || m->n_events == 0);
	CHECK(m->head.id != TC_DC09_ID_ADM_CID || m->n_events == 1);
	CHECK(!m->head.encrypted || m->has_ts);
	CHECK(hexstr(m->data_account, 0, TC_DC09_ACCOUNT_MAX));
	CHECK(utf8ok(m->text, sizeof(m->text)));
	for (size_t i = 0; i < m->n_events; i++) {
		const struct tc_dc09_event *ev = &m->events[i];
		CHECK(strlen(ev->code) == (ev->syntax == TC_DC09_SIA ? 2u : 3u));
		CHECK(ev->syntax == TC_DC09_SIA || ev->qualifier == '1' || ev->qualifier == '3' ||
		      ev->qualifier == '6');
		CHECK(valid_type(ev->type) && valid_type(ev->restores));
		CHECK(ev->restores == TC_T_INVALID || ev->type == TC_T_HEARTBEAT);
		CHECK((ev->type == TC_T_INVALID) == (ev->how[0] == '\0'));
		CHECK(utf8ok(ev->text, sizeof(ev->text)));
		CHECK(strnlen(ev->area, sizeof(ev->area)) < sizeof(ev->area));
		CHECK(strnlen(ev->zone, sizeof(ev->zone)) < sizeof(ev->zone));
	}
	CHECK(m->n_xdata <= TC_DC09_XDATA_MAX);
	for (size_t i = 0; i < m->n_xdata; i++)
		CHECK((size_t)m->xdata[i].off + m->xdata[i].len <= m->content_len);
	if (m->has_loc)
		CHECK(m->lat >= -90 && m->lat <= 90 && m->lon >= -180 && m->lon <= 180);
}

static enum tc_dc09_status decode(const void *f, size_t n, struct tc_dc09_msg *m, char *err,
                                  size_t errlen)
{
	struct tc_dc09_opts o = { &keys, rules, n_rules, NOW, 40000, 20000 };
	enum tc_dc09_status s = tc_dc09_decode(f, n, &o, m, err, errlen);
	CHECK((unsigned)s < TC_DC09__STATUS_COUNT);
	if (s == TC_DC09_OK) {
		CHECK(err[0] == '\0');
		check_msg(m);
	} else {
		check_printable(err);
		if (m->head_ok)
			check_head(&m->head);
		if (s == TC_DC09_E_ID || s == TC_DC09_E_KEY || s == TC_DC09_E_DECRYPT ||
		    s == TC_DC09_E_TIME)
			CHECK(m->head_ok);
	}
	return s;
}

static void check_reply(enum tc_dc09_status s, const struct tc_dc09_msg *m)
{
	static struct tc_dc09_msg r;
	char out[TC_DC09_REPLY_MAX], err[256];
	uint8_t rnd[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	enum tc_dc09_reply kind = tc_dc09_reply_for(s);
	if (kind != TC_DC09_NAK && !m->head_ok)
		kind = TC_DC09_NAK;
	const struct tc_dc09_key *key = tc_dc09_keys_find(&keys, m->head.account);
	int n = tc_dc09_reply(kind, m->head_ok ? &m->head : NULL, key, NOW, rnd, out, sizeof(out));
	CHECK(n > 0 && (size_t)n < sizeof(out) && (size_t)n == strlen(out));
	enum tc_dc09_status rs = decode(out, (size_t)n, &r, err, sizeof(err));
	if (kind == TC_DC09_NAK) {
		CHECK(rs == TC_DC09_E_FORMAT && strstr(err, "no account"));
		return;
	}
	CHECK(rs == TC_DC09_E_ID);
	CHECK(!strcmp(r.head.token, kind == TC_DC09_ACK ? "ACK" : "DUH"));
	CHECK(r.head.encrypted == (kind == TC_DC09_ACK && m->head.encrypted));
	CHECK(r.head.seq == m->head.seq);
	CHECK(!strcmp(r.head.account, m->head.account));
	CHECK(!strcmp(r.head.receiver, m->head.receiver));
	CHECK(!strcmp(r.head.prefix, m->head.prefix));
}

static void check_reencode(const struct tc_dc09_msg *m)
{
	static struct tc_dc09_msg r;
	char out[TC_DC09_FRAME_MAX + 1], err[256];
	uint8_t rnd[16] = { 0 };
	const struct tc_dc09_key *key =
		m->head.encrypted ? tc_dc09_keys_find(&keys, m->head.account) : NULL;
	CHECK(!m->head.encrypted || key);
	int n = tc_dc09_encode(m->head.token, &m->head, m->content, m->content_len, key, rnd, out,
	                       sizeof(out));
	CHECK(n > 0);
	enum tc_dc09_status s = decode(out, (size_t)n, &r, err, sizeof(err));
	if (s != TC_DC09_OK)
		fprintf(stderr, "re-encoded message refused: %s\n", err);
	CHECK(s == TC_DC09_OK);
	CHECK(r.n_events == m->n_events);
	for (size_t i = 0; i < r.n_events; i++) {
		CHECK(!strcmp(r.events[i].code, m->events[i].code));
		CHECK(!strcmp(r.events[i].zone, m->events[i].zone));
		CHECK(r.events[i].type == m->events[i].type);
		CHECK(r.events[i].restores == m->events[i].restores);
	}
	CHECK(r.has_ts == m->has_ts && r.ts_ms == m->ts_ms);
	CHECK(r.has_loc == m->has_loc);
	CHECK(r.content_len == m->content_len && !memcmp(r.content, m->content, m->content_len));
}

static void frame_and_decode(const char *f, size_t n)
{
	static struct tc_dc09_msg m;
	char err[256];
	enum tc_dc09_status s = decode(f, n, &m, err, sizeof(err));
	check_reply(s, &m);
	if (s == TC_DC09_OK)
		check_reencode(&m);
}

/* LF CRC 0LLL body CR, when it fits. */
static size_t wrap(const char *body, size_t blen, char *out, size_t outlen)
{
	if (blen + 11 > outlen || blen > 0xfff)
		return 0;
	snprintf(out, outlen, "\n%04X0%03zX", tc_dc09_crc(body, blen), blen);
	memcpy(out + 9, body, blen);
	out[9 + blen] = '\r';
	return blen + 10;
}

static void mode_encrypt(const char *in, size_t n)
{
	static char body[4096], f[4200];
	const char *br = memchr(in, '[', n);
	if (!br)
		return;
	size_t hl = (size_t)(br - in) + 1, cl = n - hl;
	if (cl > 1100)
		return;
	/* the key of the account between '#' and '[', else the first one */
	const struct tc_dc09_key *key = &keys.v[0];
	const char *hash = memchr(in, '#', hl);
	if (hash && (size_t)(br - hash - 1) <= TC_DC09_ACCOUNT_MAX) {
		char acct[TC_DC09_ACCOUNT_MAX + 1];
		memcpy(acct, hash + 1, (size_t)(br - hash - 1));
		acct[br - hash - 1] = '\0';
		const struct tc_dc09_key *k = tc_dc09_keys_find(&keys, acct);
		if (k)
			key = k;
	}
	unsigned char pt[1200], ct[1200];
	size_t pad = 16 - (cl + 1) % 16, pl = pad + 1 + cl;
	memset(pt, 'P', pad);
	pt[pad] = '|';
	memcpy(pt + pad + 1, in + hl, cl);
	static const unsigned char iv[16];
	const EVP_CIPHER *c = key->len == 16 ? EVP_aes_128_cbc()
	                    : key->len == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;
	CHECK(ctx);
	CHECK(EVP_EncryptInit_ex(ctx, c, NULL, key->bytes, iv) == 1);
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	CHECK(EVP_EncryptUpdate(ctx, ct, &l1, pt, (int)pl) == 1);
	CHECK(EVP_EncryptFinal_ex(ctx, ct + l1, &l2) == 1);
	EVP_CIPHER_CTX_free(ctx);
	memcpy(body, in, hl);
	for (size_t i = 0; i < pl; i++)
		snprintf(body + hl + 2 * i, 3, "%02X", ct[i]);
	size_t fl = wrap(body, hl + 2 * pl, f, sizeof(f));
	if (fl)
		frame_and_decode(f, fl);
}

static void mode_keys(const char *in, size_t n)
{
	struct tc_dc09_keys k;
	char err[256];
	err[0] = '\0';
	if (tc_dc09_keys_parse(in, n, &k, err, sizeof(err)) != 0) {
		check_printable(err);
		CHECK(!strncmp(err, "line ", 5));
		CHECK(k.v == NULL && k.n == 0);
		return;
	}
	for (size_t i = 0; i < k.n; i++) {
		CHECK(hexstr(k.v[i].account, 3, TC_DC09_ACCOUNT_MAX));
		CHECK(k.v[i].len == 16 || k.v[i].len == 24 || k.v[i].len == 32);
		CHECK(k.v[i].line >= 1);
		if (i)
			CHECK(strcasecmp(k.v[i - 1].account, k.v[i].account) < 0);
		CHECK(tc_dc09_keys_find(&k, k.v[i].account) == &k.v[i]);
	}
	tc_dc09_keys_clear(&k);
}

static void mode_rule(const char *in, size_t n)
{
	char text[300], err[256], again[64];
	struct tc_dc09_rule r, r2;
	if (n >= sizeof(text) || memchr(in, '\0', n))
		return;
	memcpy(text, in, n);
	text[n] = '\0';
	err[0] = '\0';
	if (tc_dc09_rule_parse(text, &r, err, sizeof(err)) != 0) {
		check_printable(err);
		CHECK(r.type == TC_T_INVALID);
		return;
	}
	CHECK(r.type >= 0 && r.type < TC_T__DEVICE_COUNT);
	static const char *const kinds[] = { "cid", "sia", "zone" };
	CHECK((unsigned)r.kind < 3);
	snprintf(again, sizeof(again), "%s=%s -> %s", kinds[r.kind], r.match, tc_type_name(r.type));
	CHECK(tc_dc09_rule_parse(again, &r2, err, sizeof(err)) == 0);
	CHECK(r2.kind == r.kind && r2.type == r.type && !strcmp(r2.match, r.match));
}

static void mode_stream(const char *in, size_t n)
{
	size_t pos = 0;
	while (pos < n) {
		size_t skip = 0, flen = 0;
		enum tc_dc09_scan s = tc_dc09_frame_next(in + pos, n - pos, &skip, &flen);
		CHECK(skip <= n - pos);
		if (s == TC_DC09_FRAME) {
			CHECK(flen >= 2 && flen <= TC_DC09_FRAME_MAX && skip + flen <= n - pos);
			const char *f = in + pos + skip;
			CHECK(f[0] == '\n' && f[flen - 1] == '\r');
			CHECK(!memchr(f + 1, '\n', flen - 2) && !memchr(f + 1, '\r', flen - 2));
			frame_and_decode(f, flen);
			pos += skip + flen;
		} else if (s == TC_DC09_TOO_LONG) {
			CHECK(skip >= TC_DC09_FRAME_MAX);
			pos += skip;
		} else {
			if (skip == 0) {
				/* a frame's start waits for more; nothing before it */
				CHECK(in[pos] == '\n' && n - pos <= TC_DC09_FRAME_MAX);
				break;
			}
			pos += skip;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char f[8200];
	init();
	if (size == 0)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0]) {
	case 'w': {
		size_t fl = wrap(in, n, f, sizeof(f));
		if (fl)
			frame_and_decode(f, fl);
		break;
	}
	case 'e': mode_encrypt(in, n); break;
	case 'k': mode_keys(in, n); break;
	case 'u': mode_rule(in, n); break;
	case 's': mode_stream(in, n); break;
	default: frame_and_decode((const char *)data, size); break;
	}
	return 0;
}
