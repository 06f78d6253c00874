/* SIA DC-09 (SPEC 2.8; common/dc09.c, common/dc09_map.c). Frames are built
 * here from the standard's definitions, with CRC and length computed by this
 * file's own CRC (written apart from the codec's), plus the two published
 * examples whose CRC and length are printed in them. Encryption is checked
 * both ways against OpenSSL's EVP used directly, and replies byte for byte
 * against frames computed outside this code (Python and the openssl tool). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "telecare/dc09.h"

#define NOW 1772702047123LL   /* 2026-03-05T09:14:07.123Z */
#define TS "_09:14:07,03-05-2026"

static const char keys_text[] =
	"# test keys\n"
	"A128 000102030405060708090a0b0c0d0e0f\n"
	"\n"
	"A192   000102030405060708090A0B0C0D0E0F1011121314151617\r\n"
	"  # an ascii key, as typed on a panel\n"
	"a256\tascii:0123456789abcdef0123456789abcdef\n"
	"ABC123 000102030405060708090a0b0c0d0e0f";

static struct tc_dc09_keys keys;
static struct tc_dc09_rule rules[8];
static size_t n_rules;
static struct tc_dc09_msg msg;
static char err[256];
static char fbuf[4096];
static int64_t window_age = 40000, window_lead = 20000;

/* CRC-16/ARC bit by bit in the form DC-09 senders write it (data bit xor
 * CRC bit), independent of the codec's table-free loop. */
static uint16_t ref_crc(const char *s, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		for (int b = 0; b < 8; b++) {
			unsigned mix = (c ^ crc) & 1;
			crc >>= 1;
			if (mix)
				crc ^= 0xA001;
			c >>= 1;
		}
	}
	return crc;
}

/* LF CRC 0LLL body CR, computed here. */
static const char *frame(const char *body)
{
	size_t n = strlen(body);
	snprintf(fbuf, sizeof(fbuf), "\n%04X0%03zX%s\r", ref_crc(body, n), n, body);
	return fbuf;
}

static enum tc_dc09_status dec_raw(const char *f, size_t len)
{
	struct tc_dc09_opts o = { &keys, rules, n_rules, NOW, window_age, window_lead };
	err[0] = '\0';
	return tc_dc09_decode(f, len, &o, &msg, err, sizeof(err));
}

static enum tc_dc09_status dec(const char *f)
{
	return dec_raw(f, strlen(f));
}

static void printable(const char *s)
{
	assert_true(s[0] != '\0');
	for (; *s; s++)
		assert_true((unsigned char)*s >= 0x20 && (unsigned char)*s < 0x7f);
}

static void ok(const char *body)
{
	enum tc_dc09_status s = dec(frame(body));
	if (s != TC_DC09_OK)
		fail_msg("%s: %s (%s)", body, tc_dc09_status_name(s), err);
	assert_true(msg.head_ok);
}

static void bad_raw(const char *f, size_t len, enum tc_dc09_status want, const char *what)
{
	enum tc_dc09_status s = dec_raw(f, len);
	if (s != want)
		fail_msg("got %s (%s), want %s", tc_dc09_status_name(s), err, tc_dc09_status_name(want));
	printable(err);
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void bad(const char *body, enum tc_dc09_status want, const char *what)
{
	const char *f = frame(body);
	bad_raw(f, strlen(f), want, what);
}

static void add_rule(const char *text)
{
	assert_true(n_rules < sizeof(rules) / sizeof(rules[0]));
	if (tc_dc09_rule_parse(text, &rules[n_rules], err, sizeof(err)) != 0)
		fail_msg("rule \"%s\": %s", text, err);
	n_rules++;
}

static int setup(void **state)
{
	(void)state;
	if (tc_dc09_keys_parse(keys_text, strlen(keys_text), &keys, err, sizeof(err)) != 0) {
		fprintf(stderr, "keys: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tc_dc09_keys_clear(&keys);
	return 0;
}

static int each(void **state)
{
	(void)state;
	n_rules = 0;
	window_age = 40000;
	window_lead = 20000;
	return 0;
}

static void hex_to_bytes(const char *hex, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (unsigned char)v;
	}
}

/* AES-CBC with a zero IV and no padding, straight from OpenSSL. */
static void evp(int enc, const uint8_t *key, size_t keylen, const unsigned char *in, size_t n,
                unsigned char *out)
{
	static const unsigned char iv[16];
	const EVP_CIPHER *c = keylen == 16 ? EVP_aes_128_cbc()
	                    : keylen == 24 ? EVP_aes_192_cbc() : EVP_aes_256_cbc();
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int l1 = 0, l2 = 0;
	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc), 1);
	assert_int_equal(EVP_CIPHER_CTX_set_padding(ctx, 0), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &l1, in, (int)n), 1);
	assert_int_equal(EVP_CipherFinal_ex(ctx, out + l1, &l2), 1);
	assert_int_equal(l1 + l2, (int)n);
	EVP_CIPHER_CTX_free(ctx);
}

static const struct tc_dc09_key *key_of(const char *account)
{
	const struct tc_dc09_key *k = tc_dc09_keys_find(&keys, account);
	assert_non_null(k);
	return k;
}

/* ---- CRC, framing, examples ---- */

static void test_crc(void **state)
{
	(void)state;
	/* CRC-16/ARC's check value */
	assert_int_equal(tc_dc09_crc("123456789", 9), 0xBB3D);
	assert_int_equal(tc_dc09_crc("", 0), 0);
	assert_int_equal(ref_crc("123456789", 9), 0xBB3D);
	/* the standard's examples, as quoted in pysiaalarm's test cases: CRC
	 * and length printed in the frame */
	const char *sia = "\"SIA-DCS\"9876R579BDFL789ABC#12345A[#12345A|NFA129]";
	const char *cid = "\"ADM-CID\"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]";
	assert_int_equal(tc_dc09_crc(sia, strlen(sia)), 0xCE11);
	assert_int_equal(strlen(sia), 0x32);
	assert_int_equal(tc_dc09_crc(cid, strlen(cid)), 0x87CD);
	assert_int_equal(strlen(cid), 0x37);
	for (size_t n = 0; n < 200; n++) {
		char buf[200];
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(i * 37 + n);
		assert_int_equal(tc_dc09_crc(buf, n), ref_crc(buf, n));
	}
}

static void test_standard_examples(void **state)
{
	(void)state;
	const char sia[] = "\nCE110032\"SIA-DCS\"9876R579BDFL789ABC#12345A[#12345A|NFA129]\r";
	assert_int_equal(dec(sia), TC_DC09_OK);
	assert_int_equal(msg.head.id, TC_DC09_ID_SIA_DCS);
	assert_false(msg.head.encrypted);
	assert_int_equal(msg.head.seq, 9876);
	assert_string_equal(msg.head.receiver, "579BDF");
	assert_string_equal(msg.head.prefix, "789ABC");
	assert_string_equal(msg.head.account, "12345A");
	assert_string_equal(msg.data_account, "12345A");
	assert_false(msg.has_ts);
	assert_int_equal(msg.n_events, 1);
	assert_string_equal(msg.events[0].code, "FA");
	assert_string_equal(msg.events[0].zone, "129");
	assert_int_equal(msg.events[0].type, TC_T_SMOKE);
	assert_string_equal(msg.events[0].how, "default");

	const char cid[] = "\n87CD0037\"ADM-CID\"9876R579BDFL789ABC#12345A[#12345A|1110 00 129]\r";
	assert_int_equal(dec(cid), TC_DC09_OK);
	assert_int_equal(msg.head.id, TC_DC09_ID_ADM_CID);
	assert_int_equal(msg.n_events, 1);
	assert_int_equal(msg.events[0].syntax, TC_DC09_CID);
	assert_int_equal(msg.events[0].qualifier, '1');
	assert_false(msg.events[0].restore);
	assert_string_equal(msg.events[0].code, "110");
	assert_string_equal(msg.events[0].area, "00");
	assert_string_equal(msg.events[0].zone, "129");
	assert_int_equal(msg.events[0].type, TC_T_SMOKE);
}

static void test_head_fields(void **state)
{
	(void)state;
	ok("\"SIA-DCS\"0000L0#123[#123|NRP]" TS);
	assert_int_equal(msg.head.seq, 0);
	assert_string_equal(msg.head.receiver, "");
	assert_string_equal(msg.head.prefix, "0");
	assert_string_equal(msg.head.account, "123");
	assert_true(msg.has_ts);
	assert_int_equal(msg.ts_ms, NOW - 123);
	assert_int_equal(msg.events[0].type, TC_T_HEARTBEAT);
	ok("\"SIA-DCS\"9999R1L1#0123456789ABCDEF[#0123456789ABCDEF|NRP]");
	assert_int_equal(msg.head.seq, 9999);
	assert_string_equal(msg.head.receiver, "1");
	assert_string_equal(msg.head.account, "0123456789ABCDEF");
	ok("\"SIA-DCS\"0001RabcdefLabc#abc[NPA001]");
	assert_string_equal(msg.head.receiver, "abcdef");
	assert_string_equal(msg.head.account, "abc");
	assert_string_equal(msg.data_account, "");
	/* the content is kept for storage, the data as sent */
	assert_string_equal(msg.content, "NPA001]");
	/* NULL: a link test, no events; data, if any, is not read */
	ok("\"NULL\"0000L0#1234[]");
	assert_int_equal(msg.head.id, TC_DC09_ID_NULL);
	assert_int_equal(msg.n_events, 0);
	ok("\"NULL\"0017R2L3#1234[]" TS);
	assert_true(msg.has_ts);
	ok("\"NULL\"0017L3#1234[whatever]");
	assert_int_equal(msg.n_events, 0);
}

static void test_frame_errors(void **state)
{
	(void)state;
	char f[2048];
	const char *good = frame("\"SIA-DCS\"0001L0#1234[#1234|NPA001]" TS);
	size_t n = strlen(good);

	memcpy(f, good, n + 1);
	f[1] = f[1] == 'F' ? 'E' : 'F';
	bad_raw(f, n, TC_DC09_E_CRC, "bad CRC: the CRC field says");
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_CRC), TC_DC09_NAK);
	assert_int_equal(tc_dc09_reply_for(TC_DC09_OK), TC_DC09_ACK);
	assert_string_equal(tc_dc09_status_name(TC_DC09__STATUS_COUNT), "invalid");
	memcpy(f, good, n + 1);
	f[20] ^= 0x01;   /* a bit flipped in the message */
	bad_raw(f, n, TC_DC09_E_CRC, "bad CRC");
	memcpy(f, good, n + 1);
	f[8] = f[8] == '0' ? '1' : '0';
	bad_raw(f, n, TC_DC09_E_LENGTH, "bad length: the length field says");
	/* a byte lost on the way: length and CRC both wrong, length reported */
	memcpy(f, good, n + 1);
	memmove(f + 30, f + 31, n - 30);
	bad_raw(f, n - 1, TC_DC09_E_LENGTH, "bad length");
	memcpy(f, good, n + 1);
	f[5] = '1';
	bad_raw(f, n, TC_DC09_E_FORMAT, "length field");
	memcpy(f, good, n + 1);
	f[2] = 'x';
	bad_raw(f, n, TC_DC09_E_FORMAT, "CRC field");
	bad_raw(good + 1, n - 1, TC_DC09_E_FORMAT, "not a frame");
	bad_raw(good, n - 1, TC_DC09_E_FORMAT, "not a frame");
	bad_raw("\n\r", 2, TC_DC09_E_FORMAT, "not a frame");
	bad_raw("", 0, TC_DC09_E_FORMAT, "not a frame");
	bad_raw("\n12340000\r", 10, TC_DC09_E_CRC, "bad CRC");
	bad_raw("\n00000000\r", 10, TC_DC09_E_FORMAT, "no '\"' before the ID");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA\t001]", TC_DC09_E_FORMAT, "control byte 0x09");

	/* the bound: 1024 bytes LF to CR; the body is 1014 */
	char body[1100];
	memset(body, 0, sizeof(body));
	strcpy(body, "\"SIA-DCS\"0001L0#1234[#1234|NPA001][I");
	size_t b = strlen(body);
	memset(body + b, 'x', 1014 - b - 1);
	body[1013] = ']';
	assert_int_equal(strlen(body), 1014);
	ok(body);
	assert_int_equal(msg.n_xdata, 1);
	assert_int_equal(msg.xdata[0].len, 1014 - b - 1);
	memmove(body + 1013, "x]", 3);
	bad(body, TC_DC09_E_LENGTH, "bad length: frame of 1025 bytes, more than 1024");
}

static void test_head_errors(void **state)
{
	(void)state;
	bad("\"SIA-DCS\"001L0#1234[NPA001]", TC_DC09_E_FORMAT, "sequence number");
	bad("\"SIA-DCS\"00a1L0#1234[NPA001]", TC_DC09_E_FORMAT, "sequence number");
	bad("\"SIA-DCS\"0001#1234[NPA001]", TC_DC09_E_FORMAT, "no account prefix");
	bad("\"SIA-DCS\"0001L#1234[NPA001]", TC_DC09_E_FORMAT, "account prefix is not");
	bad("\"SIA-DCS\"0001L1234567#1234[NPA001]", TC_DC09_E_FORMAT, "account prefix is not");
	bad("\"SIA-DCS\"0001R1234567L0#1234[NPA001]", TC_DC09_E_FORMAT, "receiver number");
	bad("\"SIA-DCS\"0001RL0#1234[NPA001]", TC_DC09_E_FORMAT, "receiver number");
	bad("\"SIA-DCS\"0001L0#12[NPA001]", TC_DC09_E_FORMAT, "no account");
	bad("\"SIA-DCS\"0001L0#12345678901234567[NPA001]", TC_DC09_E_FORMAT, "no account");
	bad("\"SIA-DCS\"0001L0#12G4[NPA001]", TC_DC09_E_FORMAT, "no account");
	bad("\"SIA-DCS\"0001L0#1234NPA001]", TC_DC09_E_FORMAT, "no '['");
	bad("\"SIA-DCS0001L0#1234[NPA001]", TC_DC09_E_FORMAT, "no closing");
	bad("\"\"0001L0#1234[NPA001]", TC_DC09_E_FORMAT, "empty or too long");
	bad("\"*\"0001L0#1234[NPA001]", TC_DC09_E_FORMAT, "empty or too long");
	bad("SIA-DCS\"0001L0#1234[NPA001]", TC_DC09_E_FORMAT, "no '\"'");
	/* unknown ID with a readable head: DUH, and the head is there for it */
	bad("\"SIA-XYZ\"0042R5L6#ABCD[#ABCD|NPA001]", TC_DC09_E_ID, "unknown ID: \"SIA-XYZ\" from account ABCD");
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_ID), TC_DC09_DUH);
	assert_true(msg.head_ok);
	assert_int_equal(msg.head.seq, 42);
	assert_string_equal(msg.head.receiver, "5");
	assert_string_equal(msg.head.prefix, "6");
	assert_string_equal(msg.head.account, "ABCD");
	bad("\"*ADM-SIA\"0042L6#ABCD[0123]", TC_DC09_E_ID, "\"*ADM-SIA\"");
	assert_true(msg.head.encrypted);
	bad("\"ACK\"0042L6#ABCD[]", TC_DC09_E_ID, "\"ACK\"");
	bad("\"sia-dcs\"0042L6#ABCD[NPA001]", TC_DC09_E_ID, "sia-dcs");
	/* unknown ID without a readable head: a format error, NAK */
	bad("\"SIA-XYZ\"42L6#ABCD[NPA001]", TC_DC09_E_FORMAT, "sequence number");
	assert_false(msg.head_ok);
}

static void test_content_errors(void **state)
{
	(void)state;
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001", TC_DC09_E_FORMAT, "data has no closing ']'");
	bad("\"SIA-DCS\"0001L0#1234[#1234|N[PA001]", TC_DC09_E_FORMAT, "'[' inside the data");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001][X1", TC_DC09_E_FORMAT, "x-data has no closing");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001][X[1]", TC_DC09_E_FORMAT, "'[' inside x-data");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]junk", TC_DC09_E_FORMAT, "\"junk\" after the data");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:07,13-05-2026", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:07,02-29-2026", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_24:00:00,03-05-2026", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:07,03-05-26", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:07,03-05-2026X", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]" TS "[X1]", TC_DC09_E_FORMAT, "not a timestamp");
	bad("\"SIA-DCS\"0001L0#1234[#12|NPA001]", TC_DC09_E_FORMAT, "#ACCT|");
	bad("\"SIA-DCS\"0001L0#1234[#1234NPA001]", TC_DC09_E_FORMAT, "#ACCT|");
	bad("\"SIA-DCS\"0001L0#1234[]", TC_DC09_E_FORMAT, "SIA-DCS data is empty");
	bad("\"SIA-DCS\"0001L0#1234[#1234|]", TC_DC09_E_FORMAT, "SIA-DCS data is empty");
	bad("\"SIA-DCS\"0001L0#1234[#1234|PA001]", TC_DC09_E_FORMAT, "starts with 'P', not N");
	bad("\"SIA-DCS\"0001L0#1234[#1234|N]", TC_DC09_E_FORMAT, "no event");
	bad("\"SIA-DCS\"0001L0#1234[#1234|Nri1]", TC_DC09_E_FORMAT, "no event");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001!]", TC_DC09_E_FORMAT, "unexpected '!' at offset 6");
	bad("\"SIA-DCS\"0001L0#1234[#1234|N001]", TC_DC09_E_FORMAT, "unexpected '0'");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001^open]", TC_DC09_E_FORMAT, "closing '^'");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA123456789]", TC_DC09_E_FORMAT, "over 8 digits");
	bad("\"SIA-DCS\"0001L0#1234[#1234|Nri123456789PA1]", TC_DC09_E_FORMAT, "over 8 characters");
	char many[400] = "\"SIA-DCS\"0001L0#1234[#1234|N";
	for (int i = 0; i < 17; i++)
		strcat(many, i ? "/PA001" : "PA001");
	strcat(many, "]");
	bad(many, TC_DC09_E_FORMAT, "more than 16 events");
	bad("\"ADM-CID\"0001L0#1234[#1234|2101 01 001]", TC_DC09_E_FORMAT, "qualifier '2'");
	/* found by fuzz_dc09: a byte that is not printable ASCII, quoted raw */
	bad("\"ADM-CID\"0001L0#1234[#1234|\xeb" "331 00 000]", TC_DC09_E_FORMAT, "qualifier '?'");
	bad("\"SIA-DCS\"0001L0#1234[#1234|\xe9PA1]", TC_DC09_E_FORMAT, "starts with '?'");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA1\xe9]", TC_DC09_E_FORMAT, "unexpected '?'");
	bad("\"ADM-CID\"0001L0#1234[#1234|1101 01 01]", TC_DC09_E_FORMAT, "not QEEE GG ZZZ");
	bad("\"ADM-CID\"0001L0#1234[#1234|1A01 01 001]", TC_DC09_E_FORMAT, "not QEEE GG ZZZ");
	bad("\"ADM-CID\"0001L0#1234[#1234|1101 01 001 ]", TC_DC09_E_FORMAT, "not QEEE GG ZZZ");
	bad("\"ADM-CID\"0001L0#1234[#1234|1101-01-001]", TC_DC09_E_FORMAT, "not QEEE GG ZZZ");
	bad("\"ADM-CID\"0001L0#1234[]", TC_DC09_E_FORMAT, "not QEEE GG ZZZ");
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_FORMAT), TC_DC09_NAK);
}

static void test_time_window(void **state)
{
	(void)state;
	/* NOW is 09:14:07.123: 40 s back is 09:13:27.123 */
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:13:28,03-05-2026");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:13:27,03-05-2026", TC_DC09_E_TIME,
	    "timestamp outside the window: 09:13:27,03-05-2026 is 40 s old (at most 40 s allowed)");
	assert_true(msg.head_ok);
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_TIME), TC_DC09_NAK);
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:27,03-05-2026");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:28,03-05-2026", TC_DC09_E_TIME,
	    "is 20 s ahead of the receiver (at most 20 s allowed)");
	bad("\"NULL\"0001L0#1234[]_09:14:07,03-05-2025", TC_DC09_E_TIME, "s old");
	/* no timestamp, no check (optional in unencrypted messages) */
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]");
	/* time_window = 0: off */
	window_age = window_lead = 0;
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:07,03-05-2000");
	assert_int_equal(msg.ts_ms, 952247647000LL);
	/* a lead of 0 still checks the age */
	window_age = 1000;
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:05,03-05-2026", TC_DC09_E_TIME, "s old");
	bad("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_09:14:09,03-05-2026", TC_DC09_E_TIME, "ahead");
	/* leap second and leap day */
	window_age = window_lead = 0;
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_23:59:60,12-31-2016");
	assert_int_equal(msg.ts_ms, 1483228800000LL);
	ok("\"SIA-DCS\"0001L0#1234[#1234|NPA001]_00:00:00,02-29-2024");
	assert_int_equal(msg.ts_ms, 1709164800000LL);
}

/* ---- data ---- */

static void test_sia_blocks(void **state)
{
	(void)state;
	/* several events; ri holds for the events after it */
	ok("\"SIA-DCS\"0001L0#1234[#1234|Nri1/PA001/BA002ri2/FA003]" TS);
	assert_int_equal(msg.n_events, 3);
	assert_string_equal(msg.events[0].code, "PA");
	assert_string_equal(msg.events[0].area, "1");
	assert_string_equal(msg.events[0].zone, "001");
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	assert_string_equal(msg.events[1].code, "BA");
	assert_string_equal(msg.events[1].area, "1");
	assert_int_equal(msg.events[1].type, TC_T_INVALID);   /* burglary: unmapped */
	assert_string_equal(msg.events[1].how, "");
	assert_string_equal(msg.events[2].code, "FA");
	assert_string_equal(msg.events[2].area, "2");
	assert_string_equal(msg.events[2].zone, "003");
	/* ri without '/', a zone text (pysiaalarm's case from its issue #11) */
	ok("\"SIA-DCS\"7960L0#123456[#123456|Nri1CL0^VX FRONTE ^]_09:14:00,03-05-2026");
	assert_int_equal(msg.n_events, 1);
	assert_string_equal(msg.events[0].code, "CL");
	assert_string_equal(msg.events[0].zone, "0");
	assert_string_equal(msg.events[0].area, "1");
	assert_string_equal(msg.events[0].text, "VX FRONTE ");
	/* time and user modifiers; a bare number after '/' repeats the code */
	ok("\"SIA-DCS\"0002L0#0123[#0123|Nti20:50:26id7ri3/PA001/002/ri4/003]");
	assert_int_equal(msg.n_events, 3);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(msg.events[i].code, "PA");
		assert_string_equal(msg.events[i].time, "20:50:26");
		assert_string_equal(msg.events[i].user, "7");
		assert_int_equal(msg.events[i].type, TC_T_PANIC);
	}
	assert_string_equal(msg.events[1].zone, "002");
	assert_string_equal(msg.events[1].area, "3");
	assert_string_equal(msg.events[2].area, "4");
	/* no parameter; an unknown modifier is skipped */
	ok("\"SIA-DCS\"0003L0#AAA[|Nxx12RP]");
	assert_string_equal(msg.data_account, "");
	assert_string_equal(msg.events[0].code, "RP");
	assert_string_equal(msg.events[0].zone, "");
	assert_int_equal(msg.events[0].type, TC_T_HEARTBEAT);
	/* no account part at all; 'O' (old event) block */
	ok("\"SIA-DCS\"0004L0#AAA[OQA5]");
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	/* text after the events, and a text-only block */
	ok("\"SIA-DCS\"0005L0#AAA[#AAA|NQA1|AHelp in the kitchen]");
	assert_int_equal(msg.n_events, 1);
	assert_string_equal(msg.text, "Help in the kitchen");
	ok("\"SIA-DCS\"0006L0#AAA[#AAA|AJust text]");
	assert_int_equal(msg.n_events, 0);
	assert_string_equal(msg.text, "Just text");
	/* spaces between the parts of a block are skipped */
	ok("\"SIA-DCS\"0008L0#AAA[#AAA|N ri1 PA001 / PA002]");
	assert_int_equal(msg.n_events, 2);
	assert_string_equal(msg.events[1].area, "1");
	/* 16 events is the most */
	char many[400] = "\"SIA-DCS\"0001L0#1234[#1234|N";
	for (int i = 0; i < 16; i++)
		strcat(many, i ? "/PA001" : "PA001");
	strcat(many, "]");
	ok(many);
	assert_int_equal(msg.n_events, 16);
	/* Windows-1252 in a zone text becomes UTF-8 */
	ok("\"SIA-DCS\"0007L0#AAA[#AAA|NFA2^K\xfc" "che \x80^]");
	assert_string_equal(msg.events[0].text, "K\xc3\xbc" "che \xe2\x82\xac");
}

static void test_cid_qualifiers(void **state)
{
	(void)state;
	static const struct {
		const char *data;
		enum tc_type type, restores;
		bool restore;
	} cases[] = {
		{ "1101 01 001", TC_T_PANIC, TC_T_INVALID, false },
		{ "6101 01 001", TC_T_PANIC, TC_T_INVALID, false },
		{ "3101 01 001", TC_T_HEARTBEAT, TC_T_PANIC, true },
		{ "1301 00 000", TC_T_POWER_LOSS, TC_T_INVALID, false },
		{ "3301 00 000", TC_T_POWER_RESTORED, TC_T_INVALID, true },
		{ "6301 00 000", TC_T_POWER_LOSS, TC_T_INVALID, false },
		{ "1350 00 000", TC_T_CONNECTION_LOST, TC_T_INVALID, false },
		{ "3350 00 000", TC_T_CONNECTION_RESTORED, TC_T_INVALID, true },
		{ "3354 00 000", TC_T_CONNECTION_RESTORED, TC_T_INVALID, true },
		{ "1302 00 000", TC_T_LOW_BATTERY, TC_T_INVALID, false },
		{ "3302 00 000", TC_T_HEARTBEAT, TC_T_LOW_BATTERY, true },
		{ "3137 01 004", TC_T_HEARTBEAT, TC_T_TAMPER, true },
		{ "3602 00 000", TC_T_HEARTBEAT, TC_T_INVALID, true },
		{ "1999 01 001", TC_T_INVALID, TC_T_INVALID, false },
		{ "3999 01 001", TC_T_INVALID, TC_T_INVALID, true },
		{ "1130 0A 0F1", TC_T_INVALID, TC_T_INVALID, false },   /* hex group and zone */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char body[128];
		snprintf(body, sizeof(body), "\"ADM-CID\"0001L0#4F39[#4F39|%s]" TS, cases[i].data);
		ok(body);
		const struct tc_dc09_event *ev = &msg.events[0];
		if (ev->type != cases[i].type || ev->restores != cases[i].restores ||
		    ev->restore != cases[i].restore)
			fail_msg("%s: type %s restores %s restore %d", cases[i].data, tc_type_name(ev->type),
			         tc_type_name(ev->restores), ev->restore);
		assert_int_equal(ev->qualifier, cases[i].data[0]);
		assert_memory_equal(ev->code, cases[i].data + 1, 3);
		assert_string_equal(ev->how, ev->type == TC_T_INVALID ? "" : "default");
	}
	assert_string_equal(msg.events[0].area, "0A");
	assert_string_equal(msg.events[0].zone, "0F1");
	/* pysiaalarm's ADM-CID case: no data account, no timestamp */
	ok("\"ADM-CID\"0247R4F39L4F39#4F39[#4F39|3401 01 057]");
	assert_string_equal(msg.events[0].code, "401");
	assert_true(msg.events[0].restore);
	ok("\"ADM-CID\"0248L0#4F39[1101 02 003]");
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	assert_string_equal(msg.events[0].area, "02");
}

static void test_xdata_position(void **state)
{
	(void)state;
	/* pysiaalarm's x-data case: degrees, hemisphere, decimal minutes */
	ok("\"SIA-DCS\"0004L0#1111[#1111|Nri1/PA501][X006E07.7777777][Y49N06.6666666]" TS);
	assert_true(msg.has_loc);
	assert_true(msg.lon > 6.12962962 && msg.lon < 6.12962963);
	assert_true(msg.lat > 49.1111110 && msg.lat < 49.1111112);
	assert_int_equal(msg.n_xdata, 2);
	assert_int_equal(msg.xdata[0].id, 'X');
	assert_memory_equal(msg.content + msg.xdata[0].off, "006E07.7777777", msg.xdata[0].len);
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	/* west and south */
	ok("\"SIA-DCS\"0004L0#1111[#1111|NPA1][Y33S52.5][X151W12.6]");
	assert_true(msg.has_loc);
	assert_true(msg.lat > -33.8751 && msg.lat < -33.8749);
	assert_true(msg.lon > -151.2101 && msg.lon < -151.2099);
	/* decimal degrees (dc09_spt writes them so) */
	ok("\"SIA-DCS\"0004L0#1111[#1111|NPA1][X-73.9857][Y40.7484][M0026B9E4268B]");
	assert_true(msg.has_loc);
	assert_true(msg.lat > 40.7483 && msg.lat < 40.7485);
	assert_true(msg.lon > -73.9858 && msg.lon < -73.9856);
	assert_int_equal(msg.n_xdata, 3);
	assert_int_equal(msg.xdata[2].id, 'M');
	assert_memory_equal(msg.content + msg.xdata[2].off, "0026B9E4268B", 12);
	/* no position: one half, out of range, unreadable, hemisphere on the
	 * wrong axis; the x-data is still kept and the message still good */
	const char *nopos[] = {
		"[X6.1]", "[X6.1][Y91]", "[X181][Y10]", "[X6.1][Yabc]", "[X6.1][Y49E06]",
		"[X6.1][Y49N60]", "[X6.1][Y1.]", "[X6.1][Y]", "[X6.1][Y+49N06]", "[X1234][Y1]",
		"[X6.1][Y49N]", "[X6.1][Y49N06.]", "[X6.1][YN06]", "[X6.1][Y-]",
	};
	for (size_t i = 0; i < sizeof(nopos) / sizeof(nopos[0]); i++) {
		char body[128];
		snprintf(body, sizeof(body), "\"SIA-DCS\"0004L0#1111[#1111|NPA1]%s" TS, nopos[i]);
		ok(body);
		if (msg.has_loc)
			fail_msg("%s gave a position %f %f", nopos[i], msg.lat, msg.lon);
	}
	/* other x-data, empty x-data, more than we keep */
	ok("\"SIA-DCS\"0004L0#1111[#1111|NPA1][Vhttp://cam/1][H09:14:00,03-05-2026][][A1][B2][C3][D4][E5][F6]" TS);
	assert_int_equal(msg.n_xdata, TC_DC09_XDATA_MAX);
	assert_int_equal(msg.xdata[2].id, 0);
	assert_int_equal(msg.xdata[2].len, 0);
	assert_true(msg.has_ts);
	/* a K (key change) request is kept as x-data, not acted on */
	ok("\"SIA-DCS\"6002L0#1111[|Nri1/RP000][KAAAAAAAAAAAAAAAA]");
	assert_int_equal(msg.xdata[0].id, 'K');
}

/* ---- encryption ---- */

static void roundtrip(const char *account, size_t keylen)
{
	const struct tc_dc09_key *k = key_of(account);
	assert_int_equal(k->len, keylen);
	struct tc_dc09_head h = { .seq = 17, .encrypted = true };
	strcpy(h.prefix, "0");
	strcpy(h.receiver, "12");
	strcpy(h.account, account);
	uint8_t rnd[16];
	for (int i = 0; i < 16; i++)
		rnd[i] = (uint8_t)(i * 7 + 3);
	char content[128], f[TC_DC09_FRAME_MAX + 1];
	/* every content length modulo 16, the pad's every length */
	for (int extra = 0; extra < 16; extra++) {
		snprintf(content, sizeof(content), "#%s|Nri1/PA001^%.*s^][X6.5][Y50.25]" TS, account, extra,
		         "abcdefghijklmnop");
		int n = tc_dc09_encode("SIA-DCS", &h, content, strlen(content), k, rnd, f, sizeof(f));
		assert_true(n > 0);
		assert_int_equal(dec_raw(f, (size_t)n), TC_DC09_OK);
		assert_true(msg.head.encrypted);
		assert_int_equal(msg.head.id, TC_DC09_ID_SIA_DCS);
		assert_int_equal(msg.head.seq, 17);
		assert_string_equal(msg.data_account, account);
		assert_int_equal(msg.n_events, 1);
		assert_int_equal(msg.events[0].type, TC_T_PANIC);
		assert_int_equal(strlen(msg.events[0].text), (size_t)extra);
		assert_true(msg.has_loc);
		assert_true(msg.has_ts);
		assert_string_equal(msg.content, content);

		/* the encrypted part, read with OpenSSL directly: pad (1-16 bytes,
		 * no '|', '[' or ']'), '|', the content; a multiple of 16 */
		const char *hex = strchr(f, '[') + 1;
		size_t hl = (size_t)(f + n - 1 - hex);
		unsigned char ct[512], pt[512];
		assert_int_equal(hl % 32, 0);
		hex_to_bytes(hex, hl, ct);
		evp(0, k->bytes, k->len, ct, hl / 2, pt);
		size_t pad = hl / 2 - strlen(content) - 1;
		assert_true(pad >= 1 && pad <= 16);
		assert_int_equal(pt[pad], '|');
		assert_memory_equal(pt + pad + 1, content, strlen(content));
		for (size_t i = 0; i < pad; i++)
			assert_true(pt[i] != '|' && pt[i] != '[' && pt[i] != ']' && pt[i] > 0x20);
		if ((strlen(content) + 1) % 16 == 0)
			assert_int_equal(pad, 16);   /* 5.4.4.3: a full block of pad */
	}
	/* an encrypted NULL */
	int n = tc_dc09_encode("NULL", &h, "]" TS, strlen("]" TS), k, rnd, f, sizeof(f));
	assert_true(n > 0);
	assert_int_equal(dec_raw(f, (size_t)n), TC_DC09_OK);
	assert_int_equal(msg.head.id, TC_DC09_ID_NULL);
	assert_int_equal(msg.n_events, 0);
	/* ADM-CID */
	snprintf(content, sizeof(content), "#%s|3301 00 000]" TS, account);
	n = tc_dc09_encode("ADM-CID", &h, content, strlen(content), k, rnd, f, sizeof(f));
	assert_int_equal(dec_raw(f, (size_t)n), TC_DC09_OK);
	assert_int_equal(msg.events[0].type, TC_T_POWER_RESTORED);
}

static void test_encrypt_128(void **state) { (void)state; roundtrip("A128", 16); }
static void test_encrypt_192(void **state) { (void)state; roundtrip("A192", 24); }
static void test_encrypt_256(void **state) { (void)state; roundtrip("A256", 32); }

/* A message encrypted here with OpenSSL alone (binary pad bytes, which the
 * standard allows: anything but '|', '[' and ']'), decoded by the codec. */
static void test_encrypt_independent(void **state)
{
	(void)state;
	const struct tc_dc09_key *k = key_of("A192");
	const char content[] = "#A192|NQA12]" TS;
	unsigned char pt[64], ct[64];
	size_t n = 48, pad = n - 1 - strlen(content);
	for (size_t i = 0; i < pad; i++)
		pt[i] = (unsigned char)(0x80 + i * 11);
	pt[pad] = '|';
	memcpy(pt + pad + 1, content, strlen(content));
	evp(1, k->bytes, k->len, pt, n, ct);
	char body[256] = "\"*SIA-DCS\"0031L0#a192[";
	for (size_t i = 0; i < n; i++)
		snprintf(body + strlen(body), 3, "%02x", ct[i]);   /* lower-case hex is read too */
	ok(body);
	assert_true(msg.head.encrypted);
	assert_string_equal(msg.head.account, "a192");
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	assert_string_equal(msg.events[0].zone, "12");
	assert_string_equal(msg.content, content);
}

static void test_encrypt_errors(void **state)
{
	(void)state;
	const struct tc_dc09_key *k = key_of("A128");
	struct tc_dc09_head h = { .seq = 5, .encrypted = true };
	strcpy(h.prefix, "0");
	strcpy(h.account, "A128");
	uint8_t rnd[16] = { 0 };
	char f[TC_DC09_FRAME_MAX + 1];
	const char content[] = "#A128|NPA001]" TS;

	/* the wrong key: another account's key of each length */
	const char *others[] = { "ABC123", "A192", "A256" };
	struct tc_dc09_key wrong;
	for (size_t i = 0; i < 3; i++) {
		wrong = *key_of(others[i]);
		int n = tc_dc09_encode("SIA-DCS", &h, content, strlen(content), &wrong, rnd, f, sizeof(f));
		assert_true(n > 0);
		if (i == 0)   /* same bytes as A128's key: must work; then change one */
			assert_int_equal(dec_raw(f, (size_t)n), TC_DC09_OK);
		wrong.bytes[3] ^= 0x40;
		n = tc_dc09_encode("SIA-DCS", &h, content, strlen(content), &wrong, rnd, f, sizeof(f));
		bad_raw(f, (size_t)n, TC_DC09_E_DECRYPT, "cannot decrypt");
		assert_true(strstr(err, "wrong key for account A128") != NULL);
		assert_true(msg.head_ok);
		for (int b = 0; b < 64; b++) {
			rnd[0] = (uint8_t)b;   /* other pads: no luck either */
			n = tc_dc09_encode("NULL", &h, "]" TS, strlen("]" TS), &wrong, rnd, f, sizeof(f));
			assert_int_equal(dec_raw(f, (size_t)n), TC_DC09_E_DECRYPT);
		}
	}
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_DECRYPT), TC_DC09_NAK);

	/* encrypted for an account without a key; plain for one with a key */
	strcpy(h.account, "1234");
	int n = tc_dc09_encode("SIA-DCS", &h, content, strlen(content), k, rnd, f, sizeof(f));
	bad_raw(f, (size_t)n, TC_DC09_E_KEY, "encrypted message from account 1234, which has no key");
	assert_int_equal(tc_dc09_reply_for(TC_DC09_E_KEY), TC_DC09_NAK);
	bad("\"SIA-DCS\"0001L0#A128[#A128|NPA001]" TS, TC_DC09_E_KEY,
	    "unencrypted message from account A128, which has a key");
	bad("\"NULL\"0001L0#a128[]", TC_DC09_E_KEY, "which has a key");
	/* encrypted without a timestamp (required) */
	strcpy(h.account, "A128");
	n = tc_dc09_encode("SIA-DCS", &h, "#A128|NPA001]", 13, k, rnd, f, sizeof(f));
	bad_raw(f, (size_t)n, TC_DC09_E_FORMAT, "encrypted message without a timestamp");
	/* the encrypted part is not whole blocks of hex */
	bad("\"*SIA-DCS\"0001L0#A128[0011", TC_DC09_E_FORMAT, "not a multiple of 32");
	bad("\"*SIA-DCS\"0001L0#A128[", TC_DC09_E_FORMAT, "not a multiple of 32");
	bad("\"*SIA-DCS\"0001L0#A128[0123456789abcdef0123456789abcdeg", TC_DC09_E_FORMAT, "not hex");
	/* encrypted and too old */
	n = tc_dc09_encode("SIA-DCS", &h, "#A128|NPA001]_09:00:00,03-05-2026",
	                   strlen("#A128|NPA001]_09:00:00,03-05-2026"), k, rnd, f, sizeof(f));
	bad_raw(f, (size_t)n, TC_DC09_E_TIME, "s old");
	/* a good one decodes; its data is still checked after decryption */
	n = tc_dc09_encode("SIA-DCS", &h, "#A128|XPA001]" TS, strlen("#A128|XPA001]" TS), k, rnd, f,
	                   sizeof(f));
	bad_raw(f, (size_t)n, TC_DC09_E_FORMAT, "starts with 'X'");
}

/* ---- replies, byte for byte (computed outside this code) ---- */

static void test_replies(void **state)
{
	(void)state;
	char out[TC_DC09_REPLY_MAX];
	struct tc_dc09_head h = { .id = TC_DC09_ID_SIA_DCS, .seq = 9876 };
	strcpy(h.receiver, "579BDF");
	strcpy(h.prefix, "789ABC");
	strcpy(h.account, "12345A");

	int n = tc_dc09_reply(TC_DC09_ACK, &h, NULL, NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n05600034\"ACK\"9876R579BDFL789ABC#12345A[]_09:14:07,03-05-2026\r");
	assert_int_equal(n, (int)strlen(out));
	n = tc_dc09_reply(TC_DC09_DUH, &h, NULL, NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n5A010034\"DUH\"9876R579BDFL789ABC#12345A[]_09:14:07,03-05-2026\r");
	n = tc_dc09_reply(TC_DC09_NAK, NULL, NULL, NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n451F0025\"NAK\"0000R0L0A0[]_09:14:07,03-05-2026\r");
	assert_int_equal(n, (int)strlen(out));
	/* NAK ignores the head, and is never encrypted */
	h.encrypted = true;
	tc_dc09_reply(TC_DC09_NAK, &h, key_of("A128"), NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n451F0025\"NAK\"0000R0L0A0[]_09:14:07,03-05-2026\r");
	/* DUH is not encrypted either */
	tc_dc09_reply(TC_DC09_DUH, &h, key_of("A128"), NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n5A010034\"DUH\"9876R579BDFL789ABC#12345A[]_09:14:07,03-05-2026\r");
	/* no receiver field: none in the reply */
	struct tc_dc09_head h2 = { .seq = 1 };
	strcpy(h2.prefix, "0");
	strcpy(h2.account, "1234");
	tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out));
	assert_string_equal(out, "\n104D0026\"ACK\"0001L0#1234[]_09:14:07,03-05-2026\r");

	/* the encrypted ACK: key 00..0f, pad from rnd 0..15 ("ABCDEFGHIJ"),
	 * ciphertext from `openssl enc -aes-128-cbc -nopad` of
	 * "ABCDEFGHIJ|]_09:14:07,03-05-2026" */
	struct tc_dc09_head h3 = { .id = TC_DC09_ID_SIA_DCS, .encrypted = true, .seq = 42 };
	strcpy(h3.receiver, "1");
	strcpy(h3.prefix, "2");
	strcpy(h3.account, "ABC123");
	uint8_t rnd[16];
	for (int i = 0; i < 16; i++)
		rnd[i] = (uint8_t)i;
	n = tc_dc09_reply(TC_DC09_ACK, &h3, key_of("ABC123"), NOW, rnd, out, sizeof(out));
	assert_string_equal(out, "\n2CEF0056\"*ACK\"0042R1L2#ABC123["
	                         "6C0C8DC0D85D6525FC806EB61F87C6D4CD0577B7F713A731F1C8448472A591A1\r");
	assert_int_equal(n, (int)strlen(out));
	assert_true(n < TC_DC09_REPLY_MAX);
	/* the longest reply fits TC_DC09_REPLY_MAX */
	struct tc_dc09_head h4 = { .encrypted = true, .seq = 9999 };
	strcpy(h4.receiver, "FFFFFF");
	strcpy(h4.prefix, "FFFFFF");
	strcpy(h4.account, "0123456789ABCDEF");
	n = tc_dc09_reply(TC_DC09_ACK, &h4, key_of("A256"), NOW, rnd, out, sizeof(out));
	assert_true(n > 0 && n < TC_DC09_REPLY_MAX);
	/* an ACK to an encrypted message without its key, a buffer too small,
	 * a head that is not one: no reply */
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h3, NULL, NOW, rnd, out, sizeof(out)), -1);
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h3, key_of("ABC123"), NOW, NULL, out, sizeof(out)), -1);
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h, NULL, NOW, NULL, out, 40), -1);
	assert_int_equal(tc_dc09_reply(TC_DC09_NAK, NULL, NULL, NOW, NULL, out, 47), -1);
	assert_int_equal(tc_dc09_reply(TC_DC09_NAK, NULL, NULL, NOW, NULL, out, 48), 47);
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, NULL, NULL, NOW, NULL, out, sizeof(out)), -1);
	h2.seq = 10000;
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out)), -1);
	h2.seq = 1;
	strcpy(h2.account, "12");
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out)), -1);
	strcpy(h2.account, "12G4");
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out)), -1);
	strcpy(h2.account, "1234");
	strcpy(h2.prefix, "L");
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out)), -1);
	strcpy(h2.prefix, "0");
	strcpy(h2.receiver, "R");
	assert_int_equal(tc_dc09_reply(TC_DC09_ACK, &h2, NULL, NOW, NULL, out, sizeof(out)), -1);
	h2.receiver[0] = '\0';
	/* a frame over 1024 bytes is never built */
	static char big[1100], bigout[2200];
	memset(big, 'x', sizeof(big) - 1);
	assert_int_equal(tc_dc09_encode("SIA-DCS", &h2, big, 1000, NULL, NULL, bigout, sizeof(bigout)), -1);
	assert_int_equal(tc_dc09_encode("SIA-DCS", &h2, big, 1099, NULL, NULL, bigout, sizeof(bigout)), -1);
	assert_true(tc_dc09_encode("SIA-DCS", &h2, big, 990, NULL, NULL, bigout, sizeof(bigout)) > 0);
	/* encrypted: pad, '|' and 480 bytes are 496, 992 hex digits, a frame
	 * of exactly 1024 bytes; 500 bytes would be 1056 */
	assert_int_equal(tc_dc09_encode("SIA-DCS", &h2, big, 480, key_of("A128"), rnd, bigout, sizeof(bigout)), 1024);
	assert_int_equal(dec_raw(bigout, 1024), TC_DC09_E_KEY);   /* 1234 has no key here */
	assert_int_equal(tc_dc09_encode("SIA-DCS", &h2, big, 500, key_of("A128"), rnd, bigout, sizeof(bigout)), -1);
	assert_int_equal(tc_dc09_encode("S\"A", &h2, "]", 1, NULL, NULL, bigout, sizeof(bigout)), -1);
	assert_int_equal(tc_dc09_encode("", &h2, "]", 1, NULL, NULL, bigout, sizeof(bigout)), -1);

	/* what the decoder makes of the replies: well-formed frames of IDs a
	 * receiver does not take (DUH from a receiver's point of view) */
	n = tc_dc09_reply(TC_DC09_ACK, &h3, key_of("ABC123"), NOW, rnd, out, sizeof(out));
	assert_int_equal(dec_raw(out, (size_t)n), TC_DC09_E_ID);
	assert_string_equal(msg.head.token, "ACK");
	assert_true(msg.head.encrypted);
	assert_int_equal(msg.head.seq, 42);

	assert_string_equal(tc_dc09_reply_name(TC_DC09_ACK), "ACK");
	assert_string_equal(tc_dc09_reply_name(TC_DC09_NAK), "NAK");
	assert_string_equal(tc_dc09_reply_name(TC_DC09_DUH), "DUH");
	static const char *const names[] = { "ok", "crc", "length", "format", "id", "key", "decrypt", "time" };
	for (int s = 0; s < TC_DC09__STATUS_COUNT; s++)
		assert_string_equal(tc_dc09_status_name((enum tc_dc09_status)s), names[s]);
}

/* ---- keys file ---- */

static void keys_bad(const char *text, const char *what, const char *secret)
{
	struct tc_dc09_keys k = { (struct tc_dc09_key *)&k, 99 };
	err[0] = '\0';
	if (tc_dc09_keys_parse(text, strlen(text), &k, err, sizeof(err)) == 0)
		fail_msg("keys accepted: %s", text);
	assert_null(k.v);
	assert_int_equal(k.n, 0);
	printable(err);
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
	if (secret && strstr(err, secret))
		fail_msg("error \"%s\" quotes the key", err);
}

static void test_keys_parse(void **state)
{
	(void)state;
	assert_int_equal(keys.n, 4);
	const struct tc_dc09_key *k = key_of("a128");
	assert_int_equal(k->len, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(k->bytes[i], i);
	assert_int_equal(k->line, 2);
	k = key_of("A192");
	assert_int_equal(k->len, 24);
	assert_int_equal(k->bytes[23], 0x17);
	assert_int_equal(k->line, 4);
	k = key_of("A256");
	assert_int_equal(k->len, 32);
	assert_memory_equal(k->bytes, "0123456789abcdef0123456789abcdef", 32);
	assert_string_equal(k->account, "a256");
	assert_null(tc_dc09_keys_find(&keys, "A25"));
	assert_null(tc_dc09_keys_find(&keys, "1234"));
	assert_null(tc_dc09_keys_find(NULL, "1234"));

	struct tc_dc09_keys e;
	assert_int_equal(tc_dc09_keys_parse("", 0, &e, err, sizeof(err)), 0);
	assert_int_equal(e.n, 0);
	assert_null(tc_dc09_keys_find(&e, "1234"));
	assert_int_equal(tc_dc09_keys_parse("# nothing\n\n   \n\t# x\n", 20, &e, err, sizeof(err)), 0);
	assert_int_equal(e.n, 0);
	tc_dc09_keys_clear(&e);
	/* many keys: found by binary search, case-insensitively */
	char big[40000] = "";
	for (int i = 0; i < 500; i++)
		snprintf(big + strlen(big), sizeof(big) - strlen(big), "%X %032X\n", 0x1000 + i * 7, i);
	assert_int_equal(tc_dc09_keys_parse(big, strlen(big), &e, err, sizeof(err)), 0);
	assert_int_equal(e.n, 500);
	for (int i = 0; i < 500; i++) {
		char acct[16];
		snprintf(acct, sizeof(acct), "%x", 0x1000 + i * 7);
		k = tc_dc09_keys_find(&e, acct);
		assert_non_null(k);
		assert_int_equal(k->bytes[15], i & 0xff);
		assert_int_equal(k->line, (unsigned)i + 1);
	}
	tc_dc09_keys_clear(&e);
	assert_null(e.v);

	const char *hex = "00112233445566778899aabbccddeeff";
	keys_bad("1234 00112233445566778899aabbccddeef", "line 1: the key of account 1234 is not 32, 48 or 64 hex digits", "0011223344");
	keys_bad("# c\n1234 00112233445566778899aabbccddeefg\n", "line 2: the key of account 1234", "0011223344");
	keys_bad("1234 00112233445566778899aabbccddeeff00", "line 1: the key", "0011223344");
	keys_bad("1234 0011223344556677 8899aabbccddeeff", "line 1: the key", "0011223344");
	keys_bad("1234\n", "line 1: account 1234 has no key", NULL);
	keys_bad("1234   \t\n", "line 1: account 1234 has no key", NULL);
	keys_bad("12 00112233445566778899aabbccddeeff", "line 1: the account is not 3-16 hex digits", "0011223344");
	keys_bad("00112233445566778899aabbccddeeff 1234", "line 1: the account is not", "0011223344");
	keys_bad("12G4 00112233445566778899aabbccddeeff", "line 1: the account is not", NULL);
	keys_bad("1234 ascii:SecretPassw0rd!!!", "line 1: the ascii: key of account 1234 has 17 characters", "SecretPassw0rd");
	keys_bad("1234 ascii:SecretPassw0rd!", "has 15 characters", "SecretPassw0rd");
	keys_bad("1234 ascii:", "has 0 characters", NULL);
	keys_bad("1234 ascii:Secret\x01Passw0rd!", "not printable ASCII", "Secret");
	keys_bad("1234 ascii:Secret\xc3\xa9Passw0rd", "not printable ASCII", "Secret");
	keys_bad("1234 00112233445566778899aabbccddeeff\nabcd 00112233445566778899aabbccddeeff\n"
	         "ABCD 00112233445566778899aabbccddeeff\n", "line 3: account ABCD already has a key on line 2", hex);
	assert_int_equal(tc_dc09_keys_parse("\n1234 0011\0" "2233", 15, &e, err, sizeof(err)), -1);
	assert_string_equal(err, "line 2: has a NUL byte");
	assert_null(e.v);
	char longline[700];
	memset(longline, ' ', sizeof(longline));
	memcpy(longline, "1234 ", 5);
	longline[sizeof(longline) - 1] = '\0';
	keys_bad(longline, "line 1: longer than 512 bytes", NULL);
	/* white space inside an ascii key is the key's */
	const char *spaced = "1234 ascii:pass word 123456\r\n";
	assert_int_equal(tc_dc09_keys_parse(spaced, strlen(spaced), &e, err, sizeof(err)), 0);
	assert_memory_equal(tc_dc09_keys_find(&e, "1234")->bytes, "pass word 123456", 16);
	tc_dc09_keys_clear(&e);
	/* text without a trailing newline, a NUL after len is not read */
	assert_int_equal(tc_dc09_keys_parse("1234 00112233445566778899aabbccddeeffXX", 37, &e, err, sizeof(err)), 0);
	tc_dc09_keys_clear(&e);
}

/* ---- rules and the default map ---- */

static void rule_bad(const char *text, const char *what)
{
	struct tc_dc09_rule r;
	err[0] = '\0';
	if (tc_dc09_rule_parse(text, &r, err, sizeof(err)) == 0)
		fail_msg("rule accepted: %s", text ? text : "(null)");
	assert_int_equal(r.type, TC_T_INVALID);
	printable(err);
	if (!strstr(err, what))
		fail_msg("error \"%s\" does not say \"%s\"", err, what);
}

static void test_rule_parse(void **state)
{
	(void)state;
	struct tc_dc09_rule r;
	assert_int_equal(tc_dc09_rule_parse("cid=1102 -> fall", &r, err, sizeof(err)), 0);
	assert_int_equal(r.kind, TC_DC09_RULE_CID);
	assert_string_equal(r.match, "1102");
	assert_int_equal(r.type, TC_T_FALL);
	assert_int_equal(tc_dc09_rule_parse("  sia = BA->panic ", &r, err, sizeof(err)), 0);
	assert_int_equal(r.kind, TC_DC09_RULE_SIA);
	assert_string_equal(r.match, "BA");
	assert_int_equal(r.type, TC_T_PANIC);
	assert_int_equal(tc_dc09_rule_parse("zone=007 -> inactivity", &r, err, sizeof(err)), 0);
	assert_int_equal(r.kind, TC_DC09_RULE_ZONE);
	assert_string_equal(r.match, "7");
	assert_int_equal(tc_dc09_rule_parse("zone=000 -> fall", &r, err, sizeof(err)), 0);
	assert_string_equal(r.match, "0");
	assert_int_equal(tc_dc09_rule_parse("cid=3350 -> connection_restored", &r, err, sizeof(err)), 0);

	rule_bad(NULL, "rule is empty");
	rule_bad("", "rule is empty");
	rule_bad("cid=1102 fall", "has no \"->\"");
	rule_bad("cid=1102 -> fall -> x", "more than one");
	rule_bad("cid 1102 -> fall", "has no \"=\"");
	rule_bad("cid=2102 -> fall", "cid= takes 4 digits");
	rule_bad("cid=102 -> fall", "cid= takes 4 digits");
	rule_bad("cid=11022 -> fall", "cid= takes 4 digits");
	rule_bad("sia=pa -> panic", "sia= takes an SIA event code");
	rule_bad("sia=PAX -> panic", "sia= takes");
	rule_bad("zone= -> fall", "zone= takes a zone number");
	rule_bad("zone=x1 -> fall", "zone= takes");
	rule_bad("zone=123456789 -> fall", "zone= takes");
	rule_bad("CID=1102 -> fall", "starts with neither cid=, sia= nor zone=");
	rule_bad("code=1102 -> fall", "starts with neither");
	rule_bad("cid=1102 -> fal", "unknown type \"fal\"");
	rule_bad("cid=1102 -> ", "no valid type");
	rule_bad("cid=1102 -> storage_failed", "unknown type");
	rule_bad("cid=1102 -> \x01\x02", "unknown type \"??\"");
}

static struct tc_dc09_event ev_of(enum tc_dc09_syntax syn, const char *code, char q,
                                  const char *zone)
{
	struct tc_dc09_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.syntax = syn;
	snprintf(ev.code, sizeof(ev.code), "%s", code);
	ev.qualifier = q;
	ev.restore = q == '3';
	snprintf(ev.zone, sizeof(ev.zone), "%s", zone);
	tc_dc09_map(rules, n_rules, &ev);
	return ev;
}

/* SPEC 2.8's table, row by row. */
static void test_default_map(void **state)
{
	(void)state;
	static const struct {
		const char *cid, *sia;
		enum tc_type type;
	} rows[] = {
		{ "100", "MA", TC_T_MEDICAL },
		{ "101", "QA", TC_T_PANIC },
		{ "120", "PA", TC_T_PANIC },
		{ "121", "HA", TC_T_PANIC },
		{ "122", NULL, TC_T_PANIC },
		{ "110", "FA", TC_T_SMOKE },
		{ "111", NULL, TC_T_SMOKE },
		{ "115", NULL, TC_T_SMOKE },
		{ "114", NULL, TC_T_HEAT },
		{ "151", "GA", TC_T_GAS },
		{ "162", NULL, TC_T_CO },
		{ "154", "WA", TC_T_FLOOD },
		{ "158", "KA", TC_T_TEMPERATURE },
		{ "159", "ZA", TC_T_TEMPERATURE },
		{ "301", "AT", TC_T_POWER_LOSS },
		{ "302", "YT", TC_T_LOW_BATTERY },
		{ "309", "XT", TC_T_LOW_BATTERY },
		{ "384", NULL, TC_T_LOW_BATTERY },
		{ "137", "TA", TC_T_TAMPER },
		{ "144", NULL, TC_T_TAMPER },
		{ "145", NULL, TC_T_TAMPER },
		{ "383", NULL, TC_T_TAMPER },
		{ "350", "YC", TC_T_CONNECTION_LOST },
		{ "354", NULL, TC_T_CONNECTION_LOST },
		{ "602", "RP", TC_T_HEARTBEAT },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct tc_dc09_event ev = ev_of(TC_DC09_CID, rows[i].cid, '1', "001");
		if (ev.type != rows[i].type)
			fail_msg("CID %s: %s, want %s", rows[i].cid, tc_type_name(ev.type),
			         tc_type_name(rows[i].type));
		assert_string_equal(ev.how, "default");
		assert_false(ev.restore);
		if (!rows[i].sia)
			continue;
		ev = ev_of(TC_DC09_SIA, rows[i].sia, 0, "001");
		if (ev.type != rows[i].type)
			fail_msg("SIA %s: %s, want %s", rows[i].sia, tc_type_name(ev.type),
			         tc_type_name(rows[i].type));
		assert_false(ev.restore);
	}
	/* SIA restore codes */
	struct tc_dc09_event ev = ev_of(TC_DC09_SIA, "AR", 0, "");
	assert_int_equal(ev.type, TC_T_POWER_RESTORED);
	assert_true(ev.restore);
	assert_string_equal(ev.how, "default");
	ev = ev_of(TC_DC09_SIA, "YK", 0, "");
	assert_int_equal(ev.type, TC_T_CONNECTION_RESTORED);
	static const struct {
		const char *code;
		enum tc_type restores;
	} hb[] = {
		{ "MH", TC_T_MEDICAL }, { "QH", TC_T_PANIC }, { "QR", TC_T_PANIC }, { "PH", TC_T_PANIC },
		{ "PR", TC_T_PANIC },   { "HH", TC_T_PANIC }, { "HR", TC_T_PANIC }, { "FH", TC_T_SMOKE },
		{ "FR", TC_T_SMOKE },   { "GH", TC_T_GAS },   { "GR", TC_T_GAS },   { "WH", TC_T_FLOOD },
		{ "WR", TC_T_FLOOD },   { "KH", TC_T_TEMPERATURE }, { "KR", TC_T_TEMPERATURE },
		{ "ZH", TC_T_TEMPERATURE }, { "ZR", TC_T_TEMPERATURE }, { "YR", TC_T_LOW_BATTERY },
		{ "XR", TC_T_LOW_BATTERY }, { "TR", TC_T_TAMPER },
	};
	for (size_t i = 0; i < sizeof(hb) / sizeof(hb[0]); i++) {
		ev = ev_of(TC_DC09_SIA, hb[i].code, 0, "");
		if (ev.type != TC_T_HEARTBEAT || ev.restores != hb[i].restores || !ev.restore)
			fail_msg("SIA %s: %s restores %s", hb[i].code, tc_type_name(ev.type),
			         tc_type_name(ev.restores));
	}
	/* unmapped stays unmapped, never dropped or guessed */
	const char *unmapped[] = { "BA", "CL", "OP", "NP", "BR", "CR", "RR", "LR", "ZZ" };
	for (size_t i = 0; i < sizeof(unmapped) / sizeof(unmapped[0]); i++) {
		ev = ev_of(TC_DC09_SIA, unmapped[i], 0, "1");
		assert_int_equal(ev.type, TC_T_INVALID);
		assert_int_equal(ev.restores, TC_T_INVALID);
		assert_false(ev.restore);
		assert_string_equal(ev.how, "");
	}
	ev = ev_of(TC_DC09_CID, "130", '1', "1");
	assert_int_equal(ev.type, TC_T_INVALID);
}

static void test_rules_override(void **state)
{
	(void)state;
	add_rule("cid=1102 -> fall");
	add_rule("cid=6101 -> heartbeat");
	add_rule("sia=BA -> panic");
	add_rule("zone=3 -> fall");
	add_rule("sia=PA -> medical");
	add_rule("zone=0003 -> flood");   /* later than zone=3: never used */
	add_rule("cid=3301 -> heartbeat");

	struct tc_dc09_event ev = ev_of(TC_DC09_CID, "102", '1', "001");
	assert_int_equal(ev.type, TC_T_FALL);
	assert_string_equal(ev.how, "rule cid=1102");
	/* its restore: a heartbeat naming what it restores */
	ev = ev_of(TC_DC09_CID, "102", '3', "001");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	assert_int_equal(ev.restores, TC_T_FALL);
	assert_string_equal(ev.how, "rule cid=1102");
	/* qualifier 6 falls back to the qualifier 1 rule, unless it has its own */
	ev = ev_of(TC_DC09_CID, "102", '6', "001");
	assert_int_equal(ev.type, TC_T_FALL);
	ev = ev_of(TC_DC09_CID, "101", '6', "001");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	assert_string_equal(ev.how, "rule cid=6101");
	/* a rule for the restore itself */
	ev = ev_of(TC_DC09_CID, "301", '3', "000");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	assert_int_equal(ev.restores, TC_T_INVALID);
	assert_string_equal(ev.how, "rule cid=3301");
	/* sia= overrides the default, and its restore code follows */
	ev = ev_of(TC_DC09_SIA, "PA", 0, "9");
	assert_int_equal(ev.type, TC_T_MEDICAL);
	ev = ev_of(TC_DC09_SIA, "PH", 0, "9");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	assert_int_equal(ev.restores, TC_T_MEDICAL);
	assert_string_equal(ev.how, "rule sia=PA");
	ev = ev_of(TC_DC09_SIA, "BA", 0, "9");
	assert_int_equal(ev.type, TC_T_PANIC);
	/* an explicit code rule beats the zone rule */
	ev = ev_of(TC_DC09_SIA, "BA", 0, "3");
	assert_int_equal(ev.type, TC_T_PANIC);
	/* zone 3: unmapped codes and alarms become falls; its tamper, battery
	 * and test reports stay what they are */
	ev = ev_of(TC_DC09_SIA, "UA", 0, "003");
	assert_int_equal(ev.type, TC_T_FALL);
	assert_string_equal(ev.how, "rule zone=3");
	ev = ev_of(TC_DC09_CID, "130", '1', "003");
	assert_int_equal(ev.type, TC_T_FALL);
	ev = ev_of(TC_DC09_CID, "101", '1', "003");
	assert_int_equal(ev.type, TC_T_FALL);
	ev = ev_of(TC_DC09_CID, "137", '1', "003");
	assert_int_equal(ev.type, TC_T_TAMPER);
	assert_string_equal(ev.how, "default");
	ev = ev_of(TC_DC09_SIA, "XT", 0, "3");
	assert_int_equal(ev.type, TC_T_LOW_BATTERY);
	ev = ev_of(TC_DC09_SIA, "RP", 0, "3");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	ev = ev_of(TC_DC09_CID, "130", '3', "003");
	assert_int_equal(ev.type, TC_T_HEARTBEAT);
	assert_int_equal(ev.restores, TC_T_FALL);
	/* other zones, hex and empty zones: no zone rule */
	ev = ev_of(TC_DC09_CID, "130", '1', "004");
	assert_int_equal(ev.type, TC_T_INVALID);
	ev = ev_of(TC_DC09_CID, "130", '1', "00A");
	assert_int_equal(ev.type, TC_T_INVALID);
	ev = ev_of(TC_DC09_SIA, "UA", 0, "");
	assert_int_equal(ev.type, TC_T_INVALID);
	/* through the decoder */
	ok("\"ADM-CID\"0001L0#1234[#1234|1102 01 001]" TS);
	assert_int_equal(msg.events[0].type, TC_T_FALL);
	ok("\"SIA-DCS\"0001L0#1234[#1234|NBA1/UA3/TA3]" TS);
	assert_int_equal(msg.events[0].type, TC_T_PANIC);
	assert_int_equal(msg.events[1].type, TC_T_FALL);
	assert_int_equal(msg.events[2].type, TC_T_TAMPER);
}

/* ---- framing a stream, helpers ---- */

static void test_frame_next(void **state)
{
	(void)state;
	size_t skip = 99, flen = 99;
	assert_int_equal(tc_dc09_frame_next("", 0, &skip, &flen), TC_DC09_NEED_MORE);
	assert_int_equal(skip, 0);
	assert_int_equal(tc_dc09_frame_next("noise", 5, &skip, &flen), TC_DC09_NEED_MORE);
	assert_int_equal(skip, 5);
	const char s1[] = "xx\nABCD0005\"NULL\r\nEFGH";
	assert_int_equal(tc_dc09_frame_next(s1, strlen(s1), &skip, &flen), TC_DC09_FRAME);
	assert_int_equal(skip, 2);
	assert_int_equal(flen, 15);
	const char *rest = s1 + skip + flen;
	assert_int_equal(tc_dc09_frame_next(rest, strlen(rest), &skip, &flen), TC_DC09_NEED_MORE);
	assert_int_equal(skip, 0);   /* keep the partial frame */
	/* LF ... LF: the first part is noise */
	const char s2[] = "\nbroken\nABCD\r";
	assert_int_equal(tc_dc09_frame_next(s2, strlen(s2), &skip, &flen), TC_DC09_FRAME);
	assert_int_equal(skip, 7);
	assert_int_equal(flen, 6);
	/* CR without LF: noise */
	assert_int_equal(tc_dc09_frame_next("abc\r", 4, &skip, &flen), TC_DC09_NEED_MORE);
	assert_int_equal(skip, 4);
	/* too long: no CR within 1024 bytes of the LF */
	char big[3000];
	memset(big, 'a', sizeof(big));
	big[10] = '\n';
	assert_int_equal(tc_dc09_frame_next(big, 1033, &skip, &flen), TC_DC09_NEED_MORE);
	assert_int_equal(skip, 10);
	assert_int_equal(tc_dc09_frame_next(big, 1034, &skip, &flen), TC_DC09_TOO_LONG);
	assert_int_equal(skip, 1034);
	big[1033] = '\r';   /* exactly 1024 bytes LF..CR */
	assert_int_equal(tc_dc09_frame_next(big, sizeof(big), &skip, &flen), TC_DC09_FRAME);
	assert_int_equal(flen, TC_DC09_FRAME_MAX);
	/* a real frame from a stream with two back to back */
	char two[600];
	const char *a = frame("\"NULL\"0001L0#1234[]");
	strcpy(two, a);
	strcat(two, frame("\"SIA-DCS\"0002L0#1234[#1234|NPA1]"));
	assert_int_equal(tc_dc09_frame_next(two, strlen(two), &skip, &flen), TC_DC09_FRAME);
	assert_int_equal(dec_raw(two + skip, flen), TC_DC09_OK);
	assert_int_equal(msg.head.id, TC_DC09_ID_NULL);
	size_t used = skip + flen;
	assert_int_equal(tc_dc09_frame_next(two + used, strlen(two) - used, &skip, &flen), TC_DC09_FRAME);
	assert_int_equal(dec_raw(two + used + skip, flen), TC_DC09_OK);
	assert_int_equal(msg.head.seq, 2);
}

static void test_helpers(void **state)
{
	(void)state;
	char ts[TC_DC09_TS_LEN + 1];
	tc_dc09_format_ts(0, ts, sizeof(ts));
	assert_string_equal(ts, "_00:00:00,01-01-1970");
	tc_dc09_format_ts(NOW, ts, sizeof(ts));
	assert_string_equal(ts, TS);
	tc_dc09_format_ts(1709164800000LL + 86399999, ts, sizeof(ts));
	assert_string_equal(ts, "_23:59:59,02-29-2024");
	tc_dc09_format_ts(253402300799000LL, ts, sizeof(ts));
	assert_string_equal(ts, "_23:59:59,12-31-9999");

	int64_t a = -1, l = -1;
	assert_int_equal(tc_dc09_window_parse("40s/20s", &a, &l), 0);
	assert_int_equal(a, 40000);
	assert_int_equal(l, 20000);
	assert_int_equal(tc_dc09_window_parse(" 2m / 0 ", &a, &l), 0);
	assert_int_equal(a, 120000);
	assert_int_equal(l, 0);
	assert_int_equal(tc_dc09_window_parse("0", &a, &l), 0);
	assert_int_equal(a, 0);
	assert_int_equal(l, 0);
	const char *wbad[] = { NULL, "", "40s", "40s/", "/20s", "40s/20s/1s", "x/1s", "-1s/1s", "0s 1s" };
	for (size_t i = 0; i < sizeof(wbad) / sizeof(wbad[0]); i++) {
		a = l = 7;
		assert_int_equal(tc_dc09_window_parse(wbad[i], &a, &l), -1);
		assert_int_equal(a, 7);
	}

	char u[16];
	assert_int_equal(tc_dc09_to_utf8("a\x80\x81\xe4\x01", 5, u, sizeof(u)), 8);
	assert_string_equal(u, "a\xe2\x82\xac?\xc3\xa4?");
	/* cut at a character boundary */
	assert_int_equal(tc_dc09_to_utf8("ab\x80", 3, u, 5), 2);
	assert_string_equal(u, "ab");
	assert_int_equal(tc_dc09_to_utf8("ab\x80", 3, u, 6), 5);
	assert_int_equal(tc_dc09_to_utf8("abc", 3, u, 1), 0);
	assert_string_equal(u, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_crc, each),
		cmocka_unit_test_setup(test_standard_examples, each),
		cmocka_unit_test_setup(test_head_fields, each),
		cmocka_unit_test_setup(test_frame_errors, each),
		cmocka_unit_test_setup(test_head_errors, each),
		cmocka_unit_test_setup(test_content_errors, each),
		cmocka_unit_test_setup(test_time_window, each),
		cmocka_unit_test_setup(test_sia_blocks, each),
		cmocka_unit_test_setup(test_cid_qualifiers, each),
		cmocka_unit_test_setup(test_xdata_position, each),
		cmocka_unit_test_setup(test_encrypt_128, each),
		cmocka_unit_test_setup(test_encrypt_192, each),
		cmocka_unit_test_setup(test_encrypt_256, each),
		cmocka_unit_test_setup(test_encrypt_independent, each),
		cmocka_unit_test_setup(test_encrypt_errors, each),
		cmocka_unit_test_setup(test_replies, each),
		cmocka_unit_test_setup(test_keys_parse, each),
		cmocka_unit_test_setup(test_rule_parse, each),
		cmocka_unit_test_setup(test_default_map, each),
		cmocka_unit_test_setup(test_rules_override, each),
		cmocka_unit_test_setup(test_frame_next, each),
		cmocka_unit_test_setup(test_helpers, each),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
