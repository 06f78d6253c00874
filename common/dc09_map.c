/* SIA DC-09 (SPEC 2.8), the parts that are not frames: the default code
 * map and the `rule` overrides, the keys file, the time window setting.
 * Pure, like common/dc09.c. docs/SOURCES.md "SIA DC-09" is the reference
 * for every choice made here. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "telecare/dc09.h"
#include "telecare/timefmt.h"
#include "telecare/util.h"

#define KEYS_LINE_MAX 512

struct code_type {
	const char *code;
	enum tc_type type;
};

/* SPEC 2.8's table; the Contact ID codes are SIA DC-05's event codes. */
static const struct code_type cid_map[] = {
	{ "100", TC_T_MEDICAL },       { "101", TC_T_PANIC },
	{ "110", TC_T_SMOKE },         { "111", TC_T_SMOKE },
	{ "114", TC_T_HEAT },          { "115", TC_T_SMOKE },
	{ "120", TC_T_PANIC },         { "121", TC_T_PANIC },
	{ "122", TC_T_PANIC },         { "137", TC_T_TAMPER },
	{ "144", TC_T_TAMPER },        { "145", TC_T_TAMPER },
	{ "151", TC_T_GAS },           { "154", TC_T_FLOOD },
	{ "158", TC_T_TEMPERATURE },   { "159", TC_T_TEMPERATURE },
	{ "162", TC_T_CO },            { "301", TC_T_POWER_LOSS },
	{ "302", TC_T_LOW_BATTERY },   { "309", TC_T_LOW_BATTERY },
	{ "350", TC_T_CONNECTION_LOST }, { "354", TC_T_CONNECTION_LOST },
	{ "383", TC_T_TAMPER },        { "384", TC_T_LOW_BATTERY },
	{ "602", TC_T_HEARTBEAT },
};

/* SPEC 2.8's table, plus XT (SIA "transmitter battery trouble", a pendant's
 * flat battery; the table's YT is the panel's own battery). */
static const struct code_type sia_map[] = {
	{ "MA", TC_T_MEDICAL },  { "QA", TC_T_PANIC },      { "PA", TC_T_PANIC },
	{ "HA", TC_T_PANIC },    { "FA", TC_T_SMOKE },      { "GA", TC_T_GAS },
	{ "WA", TC_T_FLOOD },    { "KA", TC_T_TEMPERATURE }, { "ZA", TC_T_TEMPERATURE },
	{ "AT", TC_T_POWER_LOSS }, { "YT", TC_T_LOW_BATTERY }, { "XT", TC_T_LOW_BATTERY },
	{ "TA", TC_T_TAMPER },   { "YC", TC_T_CONNECTION_LOST }, { "RP", TC_T_HEARTBEAT },
};

/* SIA restore codes and the code each restores (SIA DC-03's code list as
 * pysiaalarm carries it: ..H "alarm restore", ..R "restoral", and the
 * irregular AR, YR, XR, TR, YK). Only pairs whose alarm code is mapped
 * above; any other restore code is just an unmapped code. */
static const struct {
	const char *restore, *of;
} sia_restores[] = {
	{ "MH", "MA" }, { "QH", "QA" }, { "QR", "QA" }, { "PH", "PA" }, { "PR", "PA" },
	{ "HH", "HA" }, { "HR", "HA" }, { "FH", "FA" }, { "FR", "FA" }, { "GH", "GA" },
	{ "GR", "GA" }, { "WH", "WA" }, { "WR", "WA" }, { "KH", "KA" }, { "KR", "KA" },
	{ "ZH", "ZA" }, { "ZR", "ZA" }, { "AR", "AT" }, { "YR", "YT" }, { "XR", "XT" },
	{ "TR", "TA" }, { "YK", "YC" },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static enum tc_type default_type(enum tc_dc09_syntax syn, const char *code)
{
	const struct code_type *t = syn == TC_DC09_CID ? cid_map : sia_map;
	size_t n = syn == TC_DC09_CID ? N_OF(cid_map) : N_OF(sia_map);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(t[i].code, code))
			return t[i].type;
	return TC_T_INVALID;
}

static const char *sia_restore_of(const char *code)
{
	for (size_t i = 0; i < N_OF(sia_restores); i++)
		if (!strcmp(sia_restores[i].restore, code))
			return sia_restores[i].of;
	return NULL;
}

/* A zone as the number rules compare: decimal digits without leading
 * zeros. false for an empty or hex zone (those match no zone rule). */
static bool zone_number(const char *z, char *out, size_t outlen)
{
	if (!*z)
		return false;
	for (const char *p = z; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	while (z[0] == '0' && z[1])
		z++;
	snprintf(out, outlen, "%s", z);
	return true;
}

static const struct tc_dc09_rule *find_rule(const struct tc_dc09_rule *r, size_t n,
                                            enum tc_dc09_rule_kind kind, const char *match)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].kind == kind && !strcmp(r[i].match, match))
			return &r[i];
	return NULL;
}

static void how_rule(char *how, size_t len, const struct tc_dc09_rule *r)
{
	static const char *const kinds[] = { "cid", "sia", "zone" };
	snprintf(how, len, "rule %s=%s", kinds[r->kind], r->match);
}

/* The type of a new event of code in zone. An explicit cid=1EEE / sia=CC
 * rule first; then the default map when it says technical, restoral,
 * heartbeat or cancel (a zone that is "the fall detector" still reports
 * its own tamper and battery); then a zone rule; then the default alarm
 * type; else unmapped. */
static enum tc_type map_new(const struct tc_dc09_rule *rules, size_t n, enum tc_dc09_syntax syn,
                            const char *code, const char *zone, char *how, size_t howlen)
{
	char key[8], num[TC_DC09_FIELD_MAX + 1];
	const struct tc_dc09_rule *r;
	if (syn == TC_DC09_CID) {
		snprintf(key, sizeof(key), "1%s", code);
		r = find_rule(rules, n, TC_DC09_RULE_CID, key);
	} else {
		r = find_rule(rules, n, TC_DC09_RULE_SIA, code);
	}
	if (r) {
		how_rule(how, howlen, r);
		return r->type;
	}
	enum tc_type d = default_type(syn, code);
	if (d != TC_T_INVALID && tc_type_kind(d) != TC_KIND_ALARM) {
		snprintf(how, howlen, "default");
		return d;
	}
	if (zone_number(zone, num, sizeof(num)) && (r = find_rule(rules, n, TC_DC09_RULE_ZONE, num))) {
		how_rule(how, howlen, r);
		return r->type;
	}
	snprintf(how, howlen, "%s", d != TC_T_INVALID ? "default" : "");
	return d;
}

void tc_dc09_map(const struct tc_dc09_rule *rules, size_t n, struct tc_dc09_event *ev)
{
	char key[8];
	const struct tc_dc09_rule *r;
	const char *base = ev->code;
	ev->type = TC_T_INVALID;
	ev->restores = TC_T_INVALID;
	ev->how[0] = '\0';
	if (ev->syntax == TC_DC09_SIA) {
		const char *of = sia_restore_of(ev->code);
		ev->restore = of != NULL;
		if (of)
			base = of;
	}

	/* a rule for exactly this code (and Contact ID qualifier) wins */
	if (ev->syntax == TC_DC09_CID) {
		snprintf(key, sizeof(key), "%c%s", ev->qualifier, ev->code);
		r = find_rule(rules, n, TC_DC09_RULE_CID, key);
	} else {
		r = find_rule(rules, n, TC_DC09_RULE_SIA, ev->code);
	}
	if (r) {
		how_rule(ev->how, sizeof(ev->how), r);
		ev->type = r->type;
		return;
	}
	/* qualifier 6, "still present", is the event again: it joins the
	 * device's open alarm, or opens one if that was resolved meanwhile */
	enum tc_type t = map_new(rules, n, ev->syntax, base, ev->zone, ev->how, sizeof(ev->how));
	if (!ev->restore || t == TC_T_INVALID) {
		ev->type = t;
		return;
	}
	/* A restore: the restoral type when telecared has one (power_loss ->
	 * power_restored). Otherwise a heartbeat that names what was restored:
	 * the device spoke, nothing opens, and the open alarm stays for a
	 * person to resolve (a released panic button is not "I am fine"). */
	if (tc_type_kind(t) == TC_KIND_TECHNICAL)
		for (int i = 0; i < TC_T__DEVICE_COUNT; i++)
			if (tc_type_restores((enum tc_type)i) == t) {
				ev->type = (enum tc_type)i;
				return;
			}
	ev->type = TC_T_HEARTBEAT;
	if (tc_type_kind(t) == TC_KIND_ALARM || tc_type_kind(t) == TC_KIND_TECHNICAL)
		ev->restores = t;
}

/* ---- rules ---- */

static int rfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rfail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static void trim(const char **s, const char **e)
{
	while (*s < *e && (**s == ' ' || **s == '\t'))
		(*s)++;
	while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
		(*e)--;
}

static bool all(const char *s, size_t n, bool (*ok)(char))
{
	for (size_t i = 0; i < n; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

static bool digit(char c) { return c >= '0' && c <= '9'; }
static bool upper(char c) { return c >= 'A' && c <= 'Z'; }

int tc_dc09_rule_parse(const char *text, struct tc_dc09_rule *out, char *err, size_t errlen)
{
	static const char expect[] = "(expected cid=QEEE, sia=CODE or zone=N, then -> TYPE)";
	char clean[80], tname[32];
	memset(out, 0, sizeof(*out));
	out->type = TC_T_INVALID;
	if (!text || !*text)
		return rfail(err, errlen, "rule is empty %s", expect);
	tc_sanitize(text, strlen(text), clean, sizeof(clean));
	const char *arrow = strstr(text, "->");
	if (!arrow)
		return rfail(err, errlen, "rule \"%s\" has no \"->\" %s", clean, expect);
	if (strstr(arrow + 2, "->"))
		return rfail(err, errlen, "rule \"%s\" has more than one \"->\"", clean);
	const char *eq = memchr(text, '=', (size_t)(arrow - text));
	if (!eq)
		return rfail(err, errlen, "rule \"%s\" has no \"=\" %s", clean, expect);
	const char *ks = text, *ke = eq, *vs = eq + 1, *ve = arrow, *ts = arrow + 2,
	           *te = text + strlen(text);
	trim(&ks, &ke);
	trim(&vs, &ve);
	trim(&ts, &te);
	size_t kl = (size_t)(ke - ks), vl = (size_t)(ve - vs);
	if (kl == 3 && !memcmp(ks, "cid", 3)) {
		/* qualifier and event code: 1102 */
		if (vl != 4 || !all(vs, 4, digit) || (vs[0] != '1' && vs[0] != '3' && vs[0] != '6'))
			return rfail(err, errlen,
			             "rule \"%s\": cid= takes 4 digits, the qualifier (1 new, 3 restore, "
			             "6 still present) and the event code, e.g. cid=1101", clean);
		out->kind = TC_DC09_RULE_CID;
		memcpy(out->match, vs, 4);
	} else if (kl == 3 && !memcmp(ks, "sia", 3)) {
		if (vl != 2 || !all(vs, 2, upper))
			return rfail(err, errlen,
			             "rule \"%s\": sia= takes an SIA event code, two upper-case letters, "
			             "e.g. sia=PA", clean);
		out->kind = TC_DC09_RULE_SIA;
		memcpy(out->match, vs, 2);
	} else if (kl == 4 && !memcmp(ks, "zone", 4)) {
		if (vl < 1 || vl > TC_DC09_FIELD_MAX || !all(vs, vl, digit))
			return rfail(err, errlen, "rule \"%s\": zone= takes a zone number of 1-%d digits",
			             clean, TC_DC09_FIELD_MAX);
		out->kind = TC_DC09_RULE_ZONE;
		while (vl > 1 && vs[0] == '0') {
			vs++;
			vl--;
		}
		memcpy(out->match, vs, vl);
	} else {
		return rfail(err, errlen, "rule \"%s\" starts with neither cid=, sia= nor zone= %s",
		             clean, expect);
	}
	size_t tl = (size_t)(te - ts);
	if (tl == 0 || tl >= sizeof(tname))
		return rfail(err, errlen, "rule \"%s\" has no valid type after \"->\"", clean);
	memcpy(tname, ts, tl);
	tname[tl] = '\0';
	enum tc_type t = tc_type_from_name(tname);
	if (t == TC_T_INVALID || t >= TC_T__DEVICE_COUNT) {
		char ct[40];
		return rfail(err, errlen, "rule \"%s\": unknown type \"%s\"", clean,
		             tc_sanitize(tname, tl, ct, sizeof(ct)));
	}
	out->type = t;
	return 0;
}

/* ---- keys file ---- */

static int key_cmp(const void *a, const void *b)
{
	const struct tc_dc09_key *x = a, *y = b;
	int c = strcasecmp(x->account, y->account);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static bool hexdigit(char c)
{
	return digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static int hv(char c)
{
	return digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
}

static void keys_wipe(struct tc_dc09_key *v, size_t n)
{
	if (v)
		OPENSSL_cleanse(v, n * sizeof(*v));
	free(v);
}

void tc_dc09_keys_clear(struct tc_dc09_keys *k)
{
	keys_wipe(k->v, k->n);
	k->v = NULL;
	k->n = 0;
}

/* One line "ACCOUNT KEY" into k. The messages name the line and the account,
 * never the key or anything that could be it. */
static int key_line(const char *p, const char *e, unsigned line, struct tc_dc09_key *k, char *err,
                    size_t errlen)
{
	const char *a = p;
	while (p < e && *p != ' ' && *p != '\t')
		p++;
	size_t al = (size_t)(p - a);
	if (al < 3 || al > TC_DC09_ACCOUNT_MAX || !all(a, al, hexdigit))
		return rfail(err, errlen,
		             "line %u: the account is not 3-16 hex digits (expected ACCOUNT KEY)", line);
	memcpy(k->account, a, al);
	k->account[al] = '\0';
	k->line = line;
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	size_t kl = (size_t)(e - p);
	if (kl == 0)
		return rfail(err, errlen, "line %u: account %s has no key", line, k->account);
	if (kl >= 6 && !memcmp(p, "ascii:", 6)) {
		/* the key as a panel's keypad takes it: its characters are its bytes */
		p += 6;
		kl -= 6;
		if (kl != 16 && kl != 24 && kl != 32)
			return rfail(err, errlen,
			             "line %u: the ascii: key of account %s has %zu characters, not 16, 24 or 32",
			             line, k->account, kl);
		for (size_t i = 0; i < kl; i++)
			if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
				return rfail(err, errlen,
				             "line %u: the ascii: key of account %s has a byte that is not "
				             "printable ASCII", line, k->account);
		memcpy(k->bytes, p, kl);
		k->len = kl;
		return 0;
	}
	if ((kl != 32 && kl != 48 && kl != 64) || !all(p, kl, hexdigit))
		return rfail(err, errlen,
		             "line %u: the key of account %s is not 32, 48 or 64 hex digits "
		             "(or ascii: and 16, 24 or 32 characters)", line, k->account);
	for (size_t i = 0; i < kl / 2; i++)
		k->bytes[i] = (uint8_t)(hv(p[2 * i]) << 4 | hv(p[2 * i + 1]));
	k->len = kl / 2;
	return 0;
}

int tc_dc09_keys_parse(const char *text, size_t len, struct tc_dc09_keys *out, char *err,
                       size_t errlen)
{
	struct tc_dc09_key *v = NULL;
	size_t n = 0, cap = 0;
	unsigned line = 0;
	const char *p = text, *e = text + len;
	out->v = NULL;
	out->n = 0;
	while (p < e) {
		line++;
		const char *nl = memchr(p, '\n', (size_t)(e - p));
		const char *le = nl ? nl : e, *next = nl ? nl + 1 : e;
		if (memchr(p, '\0', (size_t)(le - p))) {
			rfail(err, errlen, "line %u: has a NUL byte", line);
			goto bad;
		}
		if (le - p > KEYS_LINE_MAX) {
			rfail(err, errlen, "line %u: longer than %d bytes", line, KEYS_LINE_MAX);
			goto bad;
		}
		while (le > p && (le[-1] == '\r' || le[-1] == ' ' || le[-1] == '\t'))
			le--;
		while (p < le && (*p == ' ' || *p == '\t'))
			p++;
		if (p == le || *p == '#') {
			p = next;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct tc_dc09_key *nv = calloc(nc, sizeof(*nv));
			if (!nv) {
				rfail(err, errlen, "line %u: out of memory", line);
				goto bad;
			}
			if (n)
				memcpy(nv, v, n * sizeof(*v));
			keys_wipe(v, n);
			v = nv;
			cap = nc;
		}
		if (key_line(p, le, line, &v[n], err, errlen) < 0) {
			n++;   /* wipe the partial entry too */
			goto bad;
		}
		n++;
		p = next;
	}
	if (n)
		qsort(v, n, sizeof(*v), key_cmp);
	for (size_t i = 1; i < n; i++)
		if (!strcasecmp(v[i - 1].account, v[i].account)) {
			rfail(err, errlen, "line %u: account %s already has a key on line %u", v[i].line,
			      v[i].account, v[i - 1].line);
			goto bad;
		}
	out->v = v;
	out->n = n;
	return 0;
bad:
	keys_wipe(v, n);
	return -1;
}

static int find_cmp(const void *key, const void *elem)
{
	return strcasecmp(key, ((const struct tc_dc09_key *)elem)->account);
}

const struct tc_dc09_key *tc_dc09_keys_find(const struct tc_dc09_keys *k, const char *account)
{
	if (!k || !k->n || !account)
		return NULL;
	return bsearch(account, k->v, k->n, sizeof(*k->v), find_cmp);
}

/* ---- time_window = AGE/LEAD ---- */

static int duration(const char *s, const char *e, int64_t *ms)
{
	char buf[32];
	trim(&s, &e);
	if (e - s <= 0 || (size_t)(e - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	return tc_duration_parse(buf, ms);
}

int tc_dc09_window_parse(const char *s, int64_t *max_age_ms, int64_t *max_lead_ms)
{
	int64_t a, l;
	if (!s)
		return -1;
	const char *e = s + strlen(s), *t = s, *te = e;
	trim(&t, &te);
	if (te - t == 1 && *t == '0') {
		*max_age_ms = *max_lead_ms = 0;
		return 0;
	}
	const char *slash = memchr(s, '/', (size_t)(e - s));
	if (!slash || memchr(slash + 1, '/', (size_t)(e - slash - 1)))
		return -1;
	if (duration(s, slash, &a) < 0 || duration(slash + 1, e, &l) < 0)
		return -1;
	*max_age_ms = a;
	*max_lead_ms = l;
	return 0;
}
