/* Webhook delivery: HTTP POSTs of alert JSON through libcurl's multi
 * interface, driven by the daemon's sd-event loop. Nothing here blocks: a
 * receiver that hangs costs one socket and one timer until its try times out.
 *
 * Each delivery makes up to 3 tries (5 s timeout each, 1 s then 2 s between
 * them) and ends with exactly one call of its done callback, unless
 * webhooks_free() cancels it first. This module does not log; the caller
 * records the outcome (the alarm's timeline) from done. */
#ifndef TELECARE_WEBHOOK_H
#define TELECARE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

struct webhooks;   /* opaque */

/* Called once per delivery when it is finally done: ok after a 2xx answer;
 * otherwise detail says why the last try failed ("HTTP 500", "timeout after 5 s",
 * "connection refused"...). attempts = tries made (1..3).
 * Called from the event loop, never from webhook_post(). It may call
 * webhook_post() and even webhooks_free(); detail is valid during the call only. */
typedef void (*webhook_done_fn)(void *userdata, bool ok, int attempts, const char *detail);

/* Called when one try of a delivery fails (attempt 1..3; retry: another
 * try follows), before done: each failed try is its own row in an alarm's
 * timeline (SPEC 3), written when it fails. */
typedef void (*webhook_try_fn)(void *userdata, int attempt, const char *detail, bool retry);

int webhooks_new(sd_event *e, struct webhooks **out);        /* 0 or -errno */
/* Every delivery of w reports its failed tries to fn (NULL: nobody). */
void webhooks_on_try(struct webhooks *w, webhook_try_fn fn);
void webhooks_free(struct webhooks *w);  /* cancels pending: done(ok=false, "cancelled: ...") for each */

/* Queue a POST of body (Content-Type: application/json) to url; copies url and body.
 * Returns 0 or -errno (e.g. -EINVAL for a URL that is not http:// or https://). */
int webhook_post(struct webhooks *w, const char *url, const char *body,
                 webhook_done_fn done, void *userdata);

/* Deliveries not yet done (in a try or waiting to retry). */
size_t webhooks_in_flight(const struct webhooks *w);

#endif
