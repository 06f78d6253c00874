/* The SIA DC-09 receiver inside telecared (SPEC 2.8, docs/SOURCES.md): what
 * dc09.c (sockets, connections, replies in order) and dc09_msg.c (what a
 * message means and does) share. The codec is common/dc09.c. */
#ifndef TELECARED_DC09_H
#define TELECARED_DC09_H

#include "telecared.h"
#include "telecare/dc09.h"

/* Why a NAK went out: the codec's refusals, and the store's. */
enum dc09_nak {
	NAK_CRC, NAK_LENGTH, NAK_FORMAT, NAK_KEY, NAK_DECRYPT, NAK_TIME,
	NAK_STORE,            /* the database refused a write of the message, or
	                         could not tell whether it was a duplicate */
	NAK__COUNT,
};

struct dc09_stats {
	uint64_t frames_tcp, frames_udp;
	uint64_t ack, duh, nak[NAK__COUNT];
	uint64_t events, polls, unmapped, unregistered, duplicates;
	uint64_t accepted, refused, idle_closed;
	uint64_t replies_lost;       /* the connection closed before the commit came */
	uint64_t udp_dropped;        /* too many datagrams waiting for their commit */
	int64_t last_poll;           /* wall ms */
};

struct dc09_conn;

/* One [source NAME] with format = sia-dc09. */
struct dc09_src {
	struct manager *m;
	struct dc09 *dc;
	const struct tc_source *cfg; /* in m->cfg: sources are not replaced by a reload */
	struct tc_dc09_keys keys;
	int tcp_fd, udp_fd;
	sd_event_source *tcp_io, *udp_io, *accept_again;
	struct dc09_conn *conns;     /* a list */
	size_t n_conns;
	size_t udp_waiting;          /* datagrams whose reply waits for a commit */
	struct dc09_stats st;
	int64_t log_from;            /* log lines of refusals: at most LOG_BURST per window */
	unsigned log_n;
	uint64_t log_skipped;
};

struct dc09 {
	struct dc09_src *src;
	size_t n_src;
	struct map conns;            /* "%llx" of a connection's id -> struct dc09_conn */
	uint64_t next_id;
	/* Messages without a timestamp (allowed unencrypted): "<source>\n<account>
	 * \n<seq>\n<hash of the content>" -> when first heard (wall ms), so that a
	 * resend within DC09_RECENT_MS is the same message (docs/SPEC-EXTENSIONS.md). */
	struct map recent;
	struct map unmapped_pending; /* "<source>\n<message id>": unmapped rows not yet committed */
	struct tc_dc09_msg *msg;     /* the frame being handled (too big for the stack) */
	sd_event_source *sweep;
	int64_t pruned_at;           /* boottime ms: recent pruned then */
};

#define DC09_RECENT_MS  (10 * 60000LL)
#define DC09_RECENT_MAX 100000

/* Where a reply goes: a TCP connection's next reply slot, or a UDP sender. */
struct dc09_origin {
	uint64_t conn;               /* 0: UDP */
	uint32_t slot;
	struct sockaddr_storage peer;
	socklen_t peerlen;
	char text[64];               /* the peer as "address:port", for log lines */
};

/* dc09.c: hand a reply to where it goes (len 0: none, but the slot is done). */
void dc09_send(struct dc09_src *s, const struct dc09_origin *o, const char *frame, size_t len);
/* dc09.c: a log line about a refusal, at most a burst per window per source. */
void dc09_log(struct dc09_src *s, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* dc09_msg.c: one frame: exactly one dc09_send() for it follows, at once
 * (NAK, DUH) or after the commit (ACK, or NAK when the store refused). */
void dc09_frame(struct dc09_src *s, const struct dc09_origin *o, const char *frame, size_t len);
/* dc09_msg.c: refuse what is not even a frame (too long, nothing framed). */
void dc09_refuse(struct dc09_src *s, const struct dc09_origin *o, enum tc_dc09_status st,
                 const struct tc_dc09_head *h, const char *why);
/* dc09_msg.c: forget the no-timestamp messages heard too long ago. */
void dc09_recent_prune(struct dc09 *dc, int64_t now);
/* dc09_msg.c: read a keys file: a regular file, not readable or writable by
 * others, that tc_dc09_keys_parse() accepts. 0, or -1 with err naming it. */
int dc09_keys_load(const char *path, struct tc_dc09_keys *out, char *err, size_t errlen);

#endif
