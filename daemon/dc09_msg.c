/* What one DC-09 message does (SPEC 2.8): refused at once with NAK or DUH,
 * or applied (events through the ingest path, unmapped messages kept, NULL
 * polls heard by supervision) and answered after the commit through the one
 * reply path: ACK when every write of the message is on disk, NAK when the
 * database refused one. The sockets are dc09.c's. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "dc09.h"
#include "telecare/timefmt.h"

#define KEYS_FILE_MAX   (1 << 20)
#define UNMAPPED_RECENT 64        /* an unmapped message resent is looked for among the
                                     latest this many rows of its account */
#define MSG_ID_MAX      56        /* "ACCOUNT/SEQ/2026-05-03T09:13:27Z"; + "/15": <= 64 */

/* A message waiting for its commit: all its ACK needs, and where it goes. */
struct wait {
	struct dc09_src *src;
	struct dc09_origin origin;
	struct tc_dc09_head head;
	struct tc_dc09_key key;      /* a copy: a reload may change the keys meanwhile */
	bool has_key;
	bool failed;                 /* an event was rejected or could not be checked */
	char *unmapped_key;          /* in dc->unmapped_pending until committed */
};

/* ---- keys ---- */

int dc09_keys_load(const char *path, struct tc_dc09_keys *out, char *err, size_t errlen)
{
	char why[200];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, errlen, "keys file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "keys file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		/* SPEC 2.8: the keys are secrets; refuse rather than use them */
		snprintf(err, errlen, "keys file %s is %s by others (mode %04o): chmod o-rwx %s", path,
		         st.st_mode & S_IROTH ? "readable" : "writable", (unsigned)(st.st_mode & 07777),
		         path);
		close(fd);
		return -1;
	}
	if (st.st_size > KEYS_FILE_MAX) {
		snprintf(err, errlen, "keys file %s: larger than %d bytes", path, KEYS_FILE_MAX);
		close(fd);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1, len = 0;
	char *text = malloc(cap);
	ssize_t n = 0;
	while (text && len < cap && (n = read(fd, text + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	int rc = -1;
	if (!text)
		snprintf(err, errlen, "keys file %s: out of memory", path);
	else if (n < 0)
		snprintf(err, errlen, "keys file %s: %s", path, strerror(errno));
	else if (len == cap)
		snprintf(err, errlen, "keys file %s: changed while it was read", path);
	else if (tc_dc09_keys_parse(text, len, out, why, sizeof(why)) < 0)
		snprintf(err, errlen, "keys file %s: %s", path, why);   /* names lines, never keys */
	else
		rc = 0;
	if (text)
		explicit_bzero(text, cap);
	free(text);
	return rc;
}

/* ---- refusals ---- */

static enum dc09_nak nak_of(enum tc_dc09_status st)
{
	switch (st) {
	case TC_DC09_E_CRC: return NAK_CRC;
	case TC_DC09_E_LENGTH: return NAK_LENGTH;
	case TC_DC09_E_KEY: return NAK_KEY;
	case TC_DC09_E_DECRYPT: return NAK_DECRYPT;
	case TC_DC09_E_TIME: return NAK_TIME;
	default: return NAK_FORMAT;
	}
}

void dc09_refuse(struct dc09_src *s, const struct dc09_origin *o, enum tc_dc09_status st,
                 const struct tc_dc09_head *h, const char *why)
{
	char reply[TC_DC09_REPLY_MAX];
	enum tc_dc09_reply kind = tc_dc09_reply_for(st);
	int n = tc_dc09_reply(kind, h, NULL, tc_now_ms(), NULL, reply, sizeof(reply));
	if (n < 0 && kind == TC_DC09_DUH) {
		kind = TC_DC09_NAK;   /* no head to echo: nothing but a NAK can be said */
		n = tc_dc09_reply(kind, NULL, NULL, tc_now_ms(), NULL, reply, sizeof(reply));
	}
	if (kind == TC_DC09_DUH)
		s->st.duh++;
	else
		s->st.nak[nak_of(st)]++;
	dc09_log(s, LOG_NOTICE, "source %s: %s to %s%s%s: %s (%s)", s->cfg->name,
	         tc_dc09_reply_name(kind), o->text, h ? ", account " : "", h ? h->account : "", why,
	         tc_dc09_status_name(st));
	dc09_send(s, o, reply, n > 0 ? (size_t)n : 0);
}

/* ---- the message ---- */

/* The registered device whose address is the account. Accounts are hex
 * digits, either case: as sent, then upper, then lower case. */
static struct device *device_of(struct dc09_src *s, const char *account)
{
	char v[TC_DC09_ACCOUNT_MAX + 1];
	struct device *d = device_by_address(s->m, s->cfg->name, account);
	for (int up = 1; !d && up >= 0; up--) {
		size_t i = 0;
		for (; account[i] && i < TC_DC09_ACCOUNT_MAX; i++)
			v[i] = (char)(up ? toupper((unsigned char)account[i])
			                 : tolower((unsigned char)account[i]));
		v[i] = '\0';
		if (strcmp(v, account))
			d = device_by_address(s->m, s->cfg->name, v);
	}
	return d;
}

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

void dc09_recent_prune(struct dc09 *dc, int64_t now)
{
	const char *k;
	void *v;
	size_t n = 0;
	char **old = dc->recent.len ? calloc(dc->recent.len, sizeof(*old)) : NULL;
	for (size_t it = 0; old && map_next(&dc->recent, &it, &k, &v);)
		if (now - (int64_t)(intptr_t)v > DC09_RECENT_MS)
			old[n++] = strdup(k);
	for (size_t i = 0; i < n; i++) {
		if (old[i])
			map_del(&dc->recent, old[i]);
		free(old[i]);
	}
	free(old);
}

/* When a message like this one (key) was first heard within DC09_RECENT_MS,
 * else now (and remembered). */
static int64_t first_heard(struct dc09 *dc, const char *key, int64_t now)
{
	void *v = map_get(&dc->recent, key);
	if (v && now - (int64_t)(intptr_t)v <= DC09_RECENT_MS)
		return (int64_t)(intptr_t)v;
	if (!v && dc->recent.len >= DC09_RECENT_MAX) {
		dc09_recent_prune(dc, now);
		if (dc->recent.len >= DC09_RECENT_MAX)
			map_free(&dc->recent);   /* at worst, a resend is stored once more */
	}
	map_put(&dc->recent, key, (void *)(intptr_t)now);
	return now;
}

/* The message's identity: ACCOUNT/SEQ/TIMESTAMP, so that the same message
 * resent is a duplicate and a sequence number used again (it wraps at 9999,
 * restarts when a panel reboots) is not. Without a timestamp (allowed when
 * unencrypted), ACCOUNT/SEQ/r<when first heard>: the same sequence number and
 * content within DC09_RECENT_MS is a resend (docs/SPEC-EXTENSIONS.md). */
static void message_id(struct dc09_src *s, const struct tc_dc09_msg *msg, int64_t now, char *out,
                       size_t len)
{
	const struct tc_dc09_head *h = &msg->head;
	if (msg->has_ts) {
		char ts[32];
		time_t t = (time_t)(msg->ts_ms / 1000);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		snprintf(out, len, "%s/%04u/%s", h->account, (unsigned)h->seq, ts);
		return;
	}
	char key[TC_DEVICE_ID_MAX + TC_DC09_ACCOUNT_MAX + 40];
	snprintf(key, sizeof(key), "%s\n%s\n%04u\n%016llx", s->cfg->name, h->account,
	         (unsigned)h->seq, (unsigned long long)fnv1a(msg->content, msg->content_len));
	snprintf(out, len, "%s/%04u/r%lld", h->account, (unsigned)h->seq,
	         (long long)first_heard(s->dc, key, now));
}

static void set_str(json_t *o, const char *k, const char *v)
{
	if (v && *v)
		json_object_set_new(o, k, json_string(v));
}

/* Event i of msg as a SPEC 2.1 object; what DC-09 said is kept under "dc09". */
static json_t *event_json(const struct tc_dc09_msg *msg, size_t i, const char *mid)
{
	const struct tc_dc09_event *ev = &msg->events[i];
	const struct tc_dc09_head *h = &msg->head;
	char id[TC_EVENT_ID_MAX + 1], code[8];
	snprintf(id, sizeof(id), "%s/%zu", mid, i);
	if (ev->syntax == TC_DC09_CID)
		snprintf(code, sizeof(code), "%c%s", ev->qualifier, ev->code);
	else
		snprintf(code, sizeof(code), "%s", ev->code);
	json_t *dc = json_pack("{s:s, s:i, s:s, s:b, s:s, s:s, s:s}", "id",
	                       h->id == TC_DC09_ID_SIA_DCS ? "SIA-DCS" : "ADM-CID", "seq", (int)h->seq,
	                       "account", h->account, "encrypted", h->encrypted,
	                       ev->syntax == TC_DC09_CID ? "cid" : "sia", code, "how", ev->how,
	                       "prefix", h->prefix);
	json_t *j = json_pack("{s:s, s:s, s:o}", "id", id, "type", tc_type_name(ev->type), "dc09", dc);
	if (!j)
		return NULL;
	set_str(dc, "receiver", h->receiver);
	set_str(dc, "area", ev->area);
	set_str(dc, "zone", ev->zone);
	set_str(dc, "user", ev->user);
	set_str(dc, "time", ev->time);
	if (ev->restores != TC_T_INVALID)
		set_str(dc, "restores", tc_type_name(ev->restores));
	if (msg->has_ts) {
		char ts[TC_TIME_STRLEN];
		tc_time_format(msg->ts_ms, ts, sizeof(ts));
		json_object_set_new(j, "ts", json_string(ts));
	}
	if (msg->has_loc)
		json_object_set_new(j, "loc", json_pack("{s:f, s:f}", "lat", msg->lat, "lon", msg->lon));
	/* the zone's name, else the message's text: both UTF-8 from the codec */
	set_str(j, "text", ev->text[0] ? ev->text : msg->text);
	return j;
}

/* Keep a message that made no event (unregistered account, unmapped codes,
 * a text only) in the unmapped table, once: a resend is found among what
 * waits for its commit and the account's latest rows. 0, or -1 when it
 * cannot be told or queued. */
static int keep_unmapped(struct dc09_src *s, struct wait *w, const struct tc_dc09_msg *msg,
                         const char *mid, const struct device *d, const char *reason,
                         int64_t now)
{
	struct manager *m = s->m;
	char key[TC_DEVICE_ID_MAX + MSG_ID_MAX + 2];
	snprintf(key, sizeof(key), "%s\n%s", s->cfg->name, mid);
	if (map_get(&s->dc->unmapped_pending, key)) {
		s->st.duplicates++;
		return 0;
	}
	sqlite3_stmt *q = store_query(m, "SELECT 1 FROM (SELECT topic FROM unmapped WHERE source = ?"
	                                 " AND address = ? ORDER BY seq DESC LIMIT 64) WHERE topic = ?");
	if (!q)
		return -1;
	sqlite3_bind_text(q, 1, s->cfg->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, msg->head.account, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, mid, -1, SQLITE_STATIC);
	int rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW) {
		s->st.duplicates++;
		return 0;
	}
	if (rc != SQLITE_DONE) {
		log_error("source %s: account %s: cannot look for an unmapped message: %s", s->cfg->name,
		          msg->head.account, sqlite3_errstr(rc));
		return -1;
	}
	/* the content as the panel sent it (decrypted), for the installers */
	char text[3 * TC_DC09_FRAME_MAX + 1];
	size_t tl = tc_dc09_to_utf8(msg->content, msg->content_len, text, sizeof(text));
	s->st.unmapped++;
	if (store_write(m, ST_UNMAPPED_INSERT, "isssssb", now, s->cfg->name, msg->head.account,
	                d ? d->id : NULL, mid, reason, text, tl) < 0)
		return -1;
	if (!w->unmapped_key && (w->unmapped_key = strdup(key)))
		map_put(&s->dc->unmapped_pending, key, w);
	return 0;
}

/* The events of a message from a registered device (d) or an account nobody
 * registered (d NULL). 0, or -1 when a part could not be stored or checked. */
static int message_events(struct dc09_src *s, struct wait *w, struct device *d,
                          const struct tc_dc09_msg *msg, const char *mid, int64_t now)
{
	char reason[200];
	int rc = 0;
	if (!d) {
		s->st.unregistered++;
		dc09_log(s, LOG_NOTICE, "source %s: account %s is no registered device's address: "
		         "kept as unmapped (telecarectl device add ID --resident R --source %s "
		         "--address %s)", s->cfg->name, msg->head.account, s->cfg->name,
		         msg->head.account);
		snprintf(reason, sizeof(reason), "no device registered for account %s", msg->head.account);
		return keep_unmapped(s, w, msg, mid, NULL, reason, now);
	}
	size_t unmapped = 0, len = 0;
	reason[0] = '\0';
	for (size_t i = 0; i < msg->n_events; i++) {
		const struct tc_dc09_event *ev = &msg->events[i];
		if (ev->type == TC_T_INVALID) {
			/* listed for the installers with the rest of the message */
			char q[2] = { ev->syntax == TC_DC09_CID ? ev->qualifier : '\0', '\0' };
			int k = snprintf(reason + len, sizeof(reason) - len, "%s%s%s%s%s%s",
			                 unmapped ? ", " : "no type for ",
			                 ev->syntax == TC_DC09_CID ? "Contact ID " : "SIA ", q, ev->code,
			                 ev->zone[0] ? " zone " : "", ev->zone);
			if (k > 0 && (size_t)k < sizeof(reason) - len)
				len += (size_t)k;
			unmapped++;
			continue;
		}
		json_t *j = event_json(msg, i, mid);
		uint64_t dup = s->m->count.duplicate;
		s->st.events++;
		if (!j || ingest_event(s->m, d->id, j) < 0)
			rc = -1;
		s->st.duplicates += s->m->count.duplicate - dup;
		json_decref(j);
	}
	if (msg->n_events == 0)
		snprintf(reason, sizeof(reason), "no event (a text only)");
	if (unmapped || msg->n_events == 0) {
		if (keep_unmapped(s, w, msg, mid, d, reason, now) < 0)
			rc = -1;
		if (unmapped == msg->n_events) {
			/* nothing went through ingest: the device was heard all the same */
			d->last_seen = now;
			supervise_heard(s->m, d);
		}
	}
	return rc;
}

/* A NULL message (link test): the device is heard; nothing is stored, but an
 * account nobody registered is kept as unmapped once in DC09_RECENT_MS, so
 * that installers see a new panel polling. */
static int poll_heard(struct dc09_src *s, struct wait *w, struct device *d,
                      const struct tc_dc09_msg *msg, const char *mid, int64_t now)
{
	char key[TC_DEVICE_ID_MAX + TC_DC09_ACCOUNT_MAX + 16], reason[120];
	s->st.polls++;
	s->st.last_poll = now;
	if (d) {
		d->last_poll = d->last_seen = now;
		supervise_heard(s->m, d);
		return 0;
	}
	s->st.unregistered++;
	snprintf(key, sizeof(key), "\001poll\n%s\n%s", s->cfg->name, msg->head.account);
	if (first_heard(s->dc, key, now) != now)
		return 0;
	snprintf(reason, sizeof(reason), "no device registered for account %s (link test)",
	         msg->head.account);
	dc09_log(s, LOG_NOTICE, "source %s: %s", s->cfg->name, reason);
	return keep_unmapped(s, w, msg, mid, NULL, reason, now);
}

static void wait_free(struct dc09 *dc, struct wait *w)
{
	if (w->unmapped_key) {
		if (map_get(&dc->unmapped_pending, w->unmapped_key) == w)
			map_del(&dc->unmapped_pending, w->unmapped_key);
		free(w->unmapped_key);
	}
	explicit_bzero(&w->key, sizeof(w->key));
	free(w);
}

static void fill_random(uint8_t rnd[16])
{
	if (getrandom(rnd, 16, GRND_NONBLOCK) == 16)
		return;
	/* the pad need not be secret, only different (DC-09 5.4.4.3) */
	uint64_t x = (uint64_t)tc_mono_ms() * 6364136223846793005ULL + (uint64_t)getpid();
	for (int i = 0; i < 16; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		rnd[i] = (uint8_t)x;
	}
}

/* The one reply path: every write of the message is committed (ok) or one
 * was refused. */
static void committed(struct manager *m, void *data, bool ok, const char *error)
{
	struct wait *w = data;
	struct dc09_src *s = w->src;
	char reply[TC_DC09_REPLY_MAX];
	int n = -1;
	if (!w->origin.conn)
		s->udp_waiting--;
	if (!ok || w->failed) {
		/* SPEC 7: never an ACK for what is not on disk. A NAK makes the
		 * panel retry now (or turn to its backup path); at a stop, silence:
		 * it retries to the next run. */
		if (!m->shutting_down) {
			s->st.nak[NAK_STORE]++;
			dc09_log(s, LOG_ERR, "source %s: account %s, sequence %04u: not stored (%s): NAK",
			         s->cfg->name, w->head.account, (unsigned)w->head.seq,
			         ok ? "an event could not be checked or was rejected" : error);
			n = tc_dc09_reply(TC_DC09_NAK, NULL, NULL, tc_now_ms(), NULL, reply, sizeof(reply));
		}
	} else {
		uint8_t rnd[16];
		fill_random(rnd);
		n = tc_dc09_reply(TC_DC09_ACK, &w->head, w->has_key ? &w->key : NULL, tc_now_ms(), rnd,
		                  reply, sizeof(reply));
		if (n > 0)
			s->st.ack++;
		else
			log_error("source %s: account %s: cannot build the ACK", s->cfg->name,
			          w->head.account);
	}
	dc09_send(s, &w->origin, reply, n > 0 ? (size_t)n : 0);
	wait_free(s->dc, w);
}

void dc09_frame(struct dc09_src *s, const struct dc09_origin *o, const char *frame, size_t len)
{
	struct manager *m = s->m;
	struct tc_dc09_msg *msg = s->dc->msg;
	char err[256], mid[MSG_ID_MAX];
	int64_t now = tc_now_ms();
	struct tc_dc09_opts opts = {
		.keys = &s->keys, .rules = s->cfg->dc09_rules, .n_rules = s->cfg->n_dc09_rules,
		.now_ms = now, .max_age_ms = s->cfg->max_age_ms, .max_lead_ms = s->cfg->max_lead_ms,
	};
	enum tc_dc09_status st = tc_dc09_decode(frame, len, &opts, msg, err, sizeof(err));
	if (st != TC_DC09_OK) {
		dc09_refuse(s, o, st, msg->head_ok ? &msg->head : NULL, err);
		return;
	}
	struct wait *w = calloc(1, sizeof(*w));
	if (!w) {
		dc09_refuse(s, o, TC_DC09_E_FORMAT, NULL, "out of memory");
		return;
	}
	w->src = s;
	w->origin = *o;
	w->head = msg->head;
	const struct tc_dc09_key *key = tc_dc09_keys_find(&s->keys, msg->head.account);
	if (msg->head.encrypted && key) {
		w->key = *key;
		w->has_key = true;
	}
	struct device *d = device_of(s, msg->head.account);
	message_id(s, msg, now, mid, sizeof(mid));
	uint64_t mark = store_mark(m);
	int rc = msg->head.id == TC_DC09_ID_NULL ? poll_heard(s, w, d, msg, mid, now)
	                                         : message_events(s, w, d, msg, mid, now);
	w->failed = rc < 0;
	if (!o->conn)
		s->udp_waiting++;
	store_after_commit(m, mark, committed, w);
}
