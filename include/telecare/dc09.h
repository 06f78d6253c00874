/* SIA DC-09 (ANSI/SIA DC-09-2013, "Internet Protocol Event Reporting"): the
 * frames alarm panels and social alarm units send to a receiving centre,
 * and the receiver's replies (SPEC 2.8, docs/SOURCES.md "SIA DC-09").
 *
 * Pure functions: bytes in, values out. No I/O, no clock (the caller passes
 * the time), no randomness (the caller passes the bytes an encrypted reply
 * is padded with), no globals beyond constant tables. The daemon owns the
 * sockets, the keys file's mode check and the decision when to reply; this
 * codec only says what a frame means and what a reply looks like.
 *
 * Typical use by a listener:
 *   tc_dc09_frame_next()      cut a frame out of a TCP stream
 *   tc_dc09_decode()          frame -> message (head, events, position) or a
 *                             status with a one-line reason
 *   tc_dc09_reply_for()       status -> ACK / NAK / DUH
 *   tc_dc09_reply()           the reply's bytes (an ACK only after the
 *                             message's events are committed; keep msg.head
 *                             until then, it is all the ACK needs) */
#ifndef TELECARE_DC09_H
#define TELECARE_DC09_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "telecare/event.h"

/* Longest frame accepted, LF to CR inclusive. DC-09's length field could
 * announce up to 4095 bytes; real messages are under 300 (an event, a few
 * x-data fields, a timestamp; encrypted: twice the content as hex). A longer
 * frame is refused with TC_DC09_E_LENGTH (NAK). */
#define TC_DC09_FRAME_MAX   1024
#define TC_DC09_ACCOUNT_MAX 16   /* hex digits */
#define TC_DC09_PREFIX_MAX  6    /* hex digits of Rrcvr and Lpref */
#define TC_DC09_TOKEN_MAX   15   /* an ID token we quote back (unknown ones included) */
#define TC_DC09_FIELD_MAX   8    /* area, zone, user, SIA time */
#define TC_DC09_TEXT_MAX    96   /* bytes of UTF-8 kept of a text; longer is cut */
#define TC_DC09_EVENTS_MAX  16   /* events in one SIA block; more: E_FORMAT */
#define TC_DC09_XDATA_MAX   8    /* x-data fields kept; more are parsed, not kept */
#define TC_DC09_KEY_MAX     32   /* AES-256 */
#define TC_DC09_REPLY_MAX   160  /* room for any reply tc_dc09_reply() builds */
#define TC_DC09_TS_LEN      20   /* "_HH:MM:SS,MM-DD-YYYY" */

enum tc_dc09_id {
	TC_DC09_ID_UNKNOWN,   /* an ID token we do not handle: DUH */
	TC_DC09_ID_SIA_DCS,   /* SIA DC-03 / DC-07 event blocks */
	TC_DC09_ID_ADM_CID,   /* Ademco Contact ID (SIA DC-05) */
	TC_DC09_ID_NULL,      /* link test (poll): no events */
};

/* What decode says about a frame; each maps to one reply (tc_dc09_reply_for). */
enum tc_dc09_status {
	TC_DC09_OK,           /* ACK once the events are stored */
	TC_DC09_E_CRC,        /* NAK */
	TC_DC09_E_LENGTH,     /* NAK: length field wrong, or frame too long */
	TC_DC09_E_FORMAT,     /* NAK: framing, head, data, x-data or timestamp malformed */
	TC_DC09_E_ID,         /* DUH: a well-formed head with an ID we do not handle */
	TC_DC09_E_KEY,        /* NAK: encrypted without a key for the account, or
	                       * unencrypted for an account that has a key */
	TC_DC09_E_DECRYPT,    /* NAK: encrypted part does not decrypt to a message (wrong key) */
	TC_DC09_E_TIME,       /* NAK: timestamp outside the window */
	TC_DC09__STATUS_COUNT,
};

enum tc_dc09_reply { TC_DC09_ACK, TC_DC09_NAK, TC_DC09_DUH };

enum tc_dc09_reply tc_dc09_reply_for(enum tc_dc09_status s);
/* "ok", "crc", "length", "format", "id", "key", "decrypt", "time": for
 * counters and log lines. */
const char *tc_dc09_status_name(enum tc_dc09_status s);
const char *tc_dc09_reply_name(enum tc_dc09_reply r);   /* "ACK", "NAK", "DUH" */

/* ---- keys file: "ACCOUNT KEY" per line (docs/SOURCES.md) ---- */

struct tc_dc09_key {
	char account[TC_DC09_ACCOUNT_MAX + 1];
	uint8_t bytes[TC_DC09_KEY_MAX];
	size_t len;            /* 16, 24 or 32 */
	unsigned line;         /* where it was read, for log lines (never the key) */
};

struct tc_dc09_keys {
	struct tc_dc09_key *v; /* sorted by account, case-insensitively */
	size_t n;
};

/* Parse a keys file's text (len bytes, need not be NUL-terminated). Returns 0,
 * or -1 with "line N: what" in err; the key itself is never quoted. */
int tc_dc09_keys_parse(const char *text, size_t len, struct tc_dc09_keys *out, char *err,
                       size_t errlen);
/* The key for account (hex digits compared case-insensitively), or NULL. */
const struct tc_dc09_key *tc_dc09_keys_find(const struct tc_dc09_keys *k, const char *account);
void tc_dc09_keys_clear(struct tc_dc09_keys *k);   /* wipes the key bytes */

/* ---- mapping: DC-09 events to telecared types (SPEC 2.8) ---- */

enum tc_dc09_rule_kind { TC_DC09_RULE_CID, TC_DC09_RULE_SIA, TC_DC09_RULE_ZONE };

/* "cid=QEEE -> TYPE" (Contact ID qualifier and event code, e.g. 1102),
 * "sia=CC -> TYPE" (SIA event code, e.g. PA), "zone=N -> TYPE" (an event of
 * zone N: SIA parameter / Contact ID zone, compared as numbers). */
struct tc_dc09_rule {
	enum tc_dc09_rule_kind kind;
	char match[TC_DC09_FIELD_MAX + 1];   /* "1102", "PA", "3" (no leading zeros) */
	enum tc_type type;
};

int tc_dc09_rule_parse(const char *text, struct tc_dc09_rule *out, char *err, size_t errlen);

/* ---- messages ---- */

enum tc_dc09_syntax { TC_DC09_SIA, TC_DC09_CID };

struct tc_dc09_event {
	enum tc_dc09_syntax syntax;
	char code[4];          /* SIA: two letters ("PA"); Contact ID: three digits ("101") */
	char qualifier;        /* Contact ID: '1' new, '3' restore, '6' still present; SIA: 0 */
	bool restore;          /* Contact ID qualifier 3, or an SIA restore code (AR, PH, ...) */
	char area[TC_DC09_FIELD_MAX + 1];   /* SIA "ri" / Contact ID group; "" when absent */
	char zone[TC_DC09_FIELD_MAX + 1];   /* SIA parameter / Contact ID zone or user */
	char user[TC_DC09_FIELD_MAX + 1];   /* SIA "id"; "" when absent */
	char time[TC_DC09_FIELD_MAX + 1];   /* SIA "ti" (panel's clock, "HH:MM[:SS]") */
	char text[TC_DC09_TEXT_MAX + 1];    /* SIA "^zone name^", UTF-8 */
	/* set by tc_dc09_map(): */
	enum tc_type type;     /* TC_T_INVALID: unmapped (store and list it, never drop it) */
	/* A restore of a type telecared has no restoral for (panic, low_battery,
	 * ...) is mapped to heartbeat with the restored type here; TC_T_INVALID
	 * otherwise. */
	enum tc_type restores;
	char how[24];          /* "default", "rule cid=1102", "rule zone=3", or "" when unmapped */
};

/* Everything an ACK or DUH needs; copy it to answer later (after the commit). */
struct tc_dc09_head {
	enum tc_dc09_id id;
	bool encrypted;        /* the ID token had a '*' */
	uint16_t seq;          /* 0-9999 */
	char token[TC_DC09_TOKEN_MAX + 1];            /* ID as sent, without quotes and '*' */
	char receiver[TC_DC09_PREFIX_MAX + 1];        /* hex digits after R; "" when absent */
	char prefix[TC_DC09_PREFIX_MAX + 1];          /* hex digits after L */
	char account[TC_DC09_ACCOUNT_MAX + 1];        /* hex digits after '#', as sent */
};

struct tc_dc09_xdata {
	char id;               /* 'X', 'Y', 'M', 'V', 'H', ...; 0 for an empty [] */
	uint16_t off, len;     /* the value (after the id) in msg.content, raw bytes */
};

struct tc_dc09_msg {
	struct tc_dc09_head head;
	bool head_ok;          /* head filled: true for OK and E_ID, E_KEY, E_DECRYPT,
	                        * E_TIME and some E_FORMAT (a reply can name the account) */
	char data_account[TC_DC09_ACCOUNT_MAX + 1];   /* "#ACCT|" inside the data; "" when absent */
	bool has_ts;
	int64_t ts_ms;         /* the message's timestamp (UTC), ms since the epoch */
	bool has_loc;          /* [X] and [Y] both read as a position */
	double lat, lon;
	char text[TC_DC09_TEXT_MAX + 1];   /* SIA "A" (ASCII text) block, UTF-8 */
	size_t n_events;       /* 0 for NULL (and an SIA block of text only) */
	struct tc_dc09_event events[TC_DC09_EVENTS_MAX];
	size_t n_xdata;
	struct tc_dc09_xdata xdata[TC_DC09_XDATA_MAX];
	/* The message's content after '[' (decrypted, pad and '|' removed, for
	 * encrypted ones): DATA][x-data]..._TIMESTAMP. Raw bytes: x-data and SIA
	 * texts may be Windows-1252; tc_dc09_to_utf8() before storing or logging. */
	size_t content_len;
	char content[TC_DC09_FRAME_MAX + 1];
};

struct tc_dc09_opts {
	const struct tc_dc09_keys *keys;      /* NULL: no account has a key */
	const struct tc_dc09_rule *rules;     /* the section's rules, in order */
	size_t n_rules;
	int64_t now_ms;                       /* receiver's clock */
	/* SPEC time_window: a timestamp more than max_age_ms before now or
	 * max_lead_ms after it is refused (E_TIME). Both 0: no check. */
	int64_t max_age_ms, max_lead_ms;
};

/* Decode one frame (LF ... CR, exactly len bytes). Returns TC_DC09_OK with m
 * filled and every event mapped, or another status with a one-line printable
 * reason in err ("bad CRC: ..."), and m->head filled when m->head_ok. */
enum tc_dc09_status tc_dc09_decode(const void *frame, size_t len, const struct tc_dc09_opts *o,
                                   struct tc_dc09_msg *m, char *err, size_t errlen);

/* Map one event (type, restores, how) by the rules, then SPEC 2.8's default
 * map. tc_dc09_decode() calls this for every event it yields. */
void tc_dc09_map(const struct tc_dc09_rule *rules, size_t n_rules, struct tc_dc09_event *ev);

/* ---- framing and replies ---- */

enum tc_dc09_scan { TC_DC09_NEED_MORE, TC_DC09_FRAME, TC_DC09_TOO_LONG };
/* Find the next frame in a stream's unread bytes. Bytes before an LF (and an
 * LF ... LF run without CR) are noise: *skip says how many to drop first.
 * TC_DC09_FRAME: a frame of *flen bytes starts at buf + *skip. NEED_MORE:
 * drop *skip, read more. TOO_LONG: no CR within TC_DC09_FRAME_MAX bytes of
 * the LF: drop *skip (all of len) and answer NAK. */
enum tc_dc09_scan tc_dc09_frame_next(const void *buf, size_t len, size_t *skip, size_t *flen);

/* The reply's frame in out (NUL-terminated; returns its length without the
 * NUL, or -1 when it does not fit or the cipher fails):
 *   ACK: "ACK" + the message's sequence, receiver, prefix and account, "[]"
 *        and the receiver's timestamp; "*ACK" with the part after '['
 *        encrypted for an encrypted message (key: the account's key).
 *   DUH: like an unencrypted ACK, "DUH".
 *   NAK: "NAK"0000R0L0A0[]_timestamp; h may be NULL, never encrypted.
 * now_ms is the receiver's clock; rnd (16 bytes, fresh for every reply) pads
 * an encrypted reply, may be NULL otherwise. */
int tc_dc09_reply(enum tc_dc09_reply kind, const struct tc_dc09_head *h,
                  const struct tc_dc09_key *key, int64_t now_ms, const uint8_t rnd[16],
                  char *out, size_t outlen);

/* Any frame: "TOKEN" (with '*' when key is given) + h's sequence, receiver,
 * prefix, "#" account, '[' and content (e.g. "#1234|Nri1/PA001]_12:00:00,
 * 01-02-2026"); with a key, pad + '|' + content is encrypted (pad from rnd).
 * What tc_dc09_reply() is built on; tests and test senders use it too.
 * Returns the length or -1. */
int tc_dc09_encode(const char *token, const struct tc_dc09_head *h, const char *content,
                   size_t clen, const struct tc_dc09_key *key, const uint8_t rnd[16], char *out,
                   size_t outlen);

/* ---- helpers ---- */

/* CRC-16/ARC (polynomial 0xA001 reflected, initial 0): DC-09's CRC. */
uint16_t tc_dc09_crc(const void *buf, size_t len);
/* "_HH:MM:SS,MM-DD-YYYY" (UTC) into buf (>= TC_DC09_TS_LEN + 1). */
void tc_dc09_format_ts(int64_t ms, char *buf, size_t len);
/* "40s/20s" (age/lead, durations as in the configuration) or "0" (both 0:
 * no check). Returns 0 or -1. */
int tc_dc09_window_parse(const char *s, int64_t *max_age_ms, int64_t *max_lead_ms);
/* Windows-1252 bytes (ASCII included) to UTF-8, control bytes as '?'; cut at a
 * character boundary to fit outlen (NUL-terminated). Returns the length. */
size_t tc_dc09_to_utf8(const char *s, size_t len, char *out, size_t outlen);

#endif
