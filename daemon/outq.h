/* The outbox's queue (SPEC 4.1), pure: classes in order of precedence, FIFO
 * within a class, retained state coalesced by topic, a bound per class.
 * No I/O and no clock: tests/unit/test_outq.c drives it directly. outbox.c
 * is the shell that hands messages to libmosquitto and the webhook client. */
#ifndef TELECARE_OUTQ_H
#define TELECARE_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"

/* In order of precedence: what goes out first. */
enum ob_class {
	OB_URGENT,    /* alerts and device alarm state of priority 1 */
	OB_HIGH,      /* ... of priority 2 */
	OB_BOARD,     /* the dispatch board, coalesced per alarm */
	OB_RESULT,    /* answers to workers' actions */
	OB_RECEIPT,   /* receipts to devices */
	OB_LOW,       /* technical alerts and follow-ups */
	OB__COUNT,
};

struct outq_msg {
	struct outq_msg *next;
	enum ob_class cls;
	bool retain;                 /* coalesces with a queued message on the same topic */
	bool away;                   /* queued while the broker was away (an alert's timeline says so) */
	int64_t alarm;               /* an alert: its alarm, for the timeline; else 0 */
	char *worker;                /* an alert: its worker (points into the allocation) */
	char *topic;                 /* (points into the allocation) */
	char *payload;               /* (its own allocation: coalescing replaces it) */
	size_t len;
	void *data;                  /* the shell's (a webhook delivery) */
};

struct outq_class {
	struct outq_msg *head, *tail;
	size_t len;
	size_t max;                  /* past it, a new message is shed */
	uint64_t queued, shed, coalesced;
};

struct outq {
	struct outq_class c[OB__COUNT];
	struct map retained;         /* topic -> its queued message */
	size_t len, bytes;
};

/* A message with copies of topic, payload and worker (may be NULL).
 * NULL when out of memory. */
struct outq_msg *outq_msg_new(enum ob_class cls, const char *topic, const char *payload,
                              size_t len, bool retain, int64_t alarm, const char *worker);
void outq_msg_free(struct outq_msg *msg);

void outq_init(struct outq *q, const size_t max[OB__COUNT]);
/* Takes ownership. 0 queued; 1 coalesced into the message already queued on
 * its topic (which keeps its place and takes the new payload, and the more
 * urgent of the two classes' places is not changed); -1 shed at the class's
 * bound or out of memory (msg freed, counted). */
int outq_push(struct outq *q, struct outq_msg *msg);
/* The first message of the most urgent non-empty class no later than
 * last_cls, removed; NULL when there is none. */
struct outq_msg *outq_pop(struct outq *q, enum ob_class last_cls);
void outq_free(struct outq *q);
const char *outq_class_name(enum ob_class c);

#endif
