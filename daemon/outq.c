/* The outbox's queue: see outq.h. */
#include <stdlib.h>
#include <string.h>

#include "outq.h"

static const char *class_names[OB__COUNT] = {
	[OB_URGENT] = "urgent", [OB_HIGH] = "high", [OB_BOARD] = "board",
	[OB_RESULT] = "result", [OB_RECEIPT] = "receipt", [OB_LOW] = "low",
};

const char *outq_class_name(enum ob_class c)
{
	return c < OB__COUNT ? class_names[c] : "?";
}

struct outq_msg *outq_msg_new(enum ob_class cls, const char *topic, const char *payload,
                              size_t len, bool retain, int64_t alarm, const char *worker)
{
	size_t tlen = strlen(topic) + 1, wlen = worker ? strlen(worker) + 1 : 0;
	struct outq_msg *msg = calloc(1, sizeof(*msg) + tlen + wlen);
	if (!msg)
		return NULL;
	msg->payload = malloc(len ? len : 1);
	if (!msg->payload) {
		free(msg);
		return NULL;
	}
	memcpy(msg->payload, payload, len);
	msg->len = len;
	msg->topic = (char *)(msg + 1);
	memcpy(msg->topic, topic, tlen);
	if (worker) {
		msg->worker = msg->topic + tlen;
		memcpy(msg->worker, worker, wlen);
	}
	msg->cls = cls;
	msg->retain = retain;
	msg->alarm = alarm;
	return msg;
}

void outq_msg_free(struct outq_msg *msg)
{
	if (!msg)
		return;
	free(msg->payload);
	free(msg);
}

void outq_init(struct outq *q, const size_t max[OB__COUNT])
{
	memset(q, 0, sizeof(*q));
	for (int i = 0; i < OB__COUNT; i++)
		q->c[i].max = max[i];
}

int outq_push(struct outq *q, struct outq_msg *msg)
{
	if (msg->cls >= OB__COUNT) {
		outq_msg_free(msg);
		return -1;
	}
	struct outq_class *c = &q->c[msg->cls];
	if (msg->retain) {
		/* Only the latest state of a topic matters: replace what waits. */
		struct outq_msg *old = map_get(&q->retained, msg->topic);
		if (old) {
			q->bytes += msg->len;
			q->bytes -= old->len;
			free(old->payload);
			old->payload = msg->payload;
			old->len = msg->len;
			msg->payload = NULL;
			outq_msg_free(msg);
			q->c[old->cls].coalesced++;
			return 1;
		}
	}
	if (c->len >= c->max) {
		c->shed++;
		outq_msg_free(msg);
		return -1;
	}
	if (msg->retain && map_put(&q->retained, msg->topic, msg) < 0) {
		c->shed++;
		outq_msg_free(msg);
		return -1;
	}
	msg->next = NULL;
	if (c->tail)
		c->tail->next = msg;
	else
		c->head = msg;
	c->tail = msg;
	c->len++;
	c->queued++;
	q->len++;
	q->bytes += msg->len;
	return 0;
}

struct outq_msg *outq_pop(struct outq *q, enum ob_class last_cls)
{
	for (int i = 0; i <= (int)last_cls && i < OB__COUNT; i++) {
		struct outq_class *c = &q->c[i];
		struct outq_msg *msg = c->head;
		if (!msg)
			continue;
		c->head = msg->next;
		if (!c->head)
			c->tail = NULL;
		msg->next = NULL;
		c->len--;
		q->len--;
		q->bytes -= msg->len;
		/* Handed on: a newer state of its topic queues anew. */
		if (msg->retain && map_get(&q->retained, msg->topic) == msg)
			map_del(&q->retained, msg->topic);
		return msg;
	}
	return NULL;
}

void outq_free(struct outq *q)
{
	struct outq_msg *msg;
	while ((msg = outq_pop(q, OB__COUNT - 1)))
		outq_msg_free(msg);
	map_free(&q->retained);
}
