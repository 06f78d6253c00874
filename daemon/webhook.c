/* Webhooks: libcurl's multi interface on the sd-event loop.
 *
 * libcurl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION: one io
 * source per socket) and when to wake it up (CURLMOPT_TIMERFUNCTION: one
 * monotonic timer). When either fires we hand the event to
 * curl_multi_socket_action() and then collect finished transfers with
 * curl_multi_info_read(). A failed try waits on its own timer (1 s, then 2 s)
 * and re-adds the same easy handle; the third failure, or any 2xx answer,
 * ends the delivery with one call of done.
 *
 * done may call webhooks_free(): while we are inside one of our callbacks
 * the deliveries are cancelled at once, and the rest of the teardown waits
 * until the callback returns to the loop. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <time.h>

#include <curl/curl.h>

#include "webhook.h"

#ifndef TELECARE_VERSION
#define TELECARE_VERSION "0"
#endif

#define TRIES          3
#define TRY_TIMEOUT_MS 5000L
#define TIMER_ACCURACY_US 1000     /* curl's timer: 1 ms (sd-event's default is 250 ms) */
#define RETRY_ACCURACY_US 10000

static const uint64_t backoff_us[TRIES - 1] = { 1000000, 2000000 };

struct delivery {
	struct webhooks *w;
	struct delivery *prev, *next;
	char *url, *body;
	webhook_done_fn done;
	void *userdata;
	CURL *easy;
	struct curl_slist *headers;
	bool attached;                  /* easy is in the multi handle */
	sd_event_source *retry;         /* back-off timer between tries */
	int attempts;
	char errbuf[CURL_ERROR_SIZE];
	char detail[CURL_ERROR_SIZE + 32];
};

/* One per socket libcurl asks us to watch; curl_multi_assign()ed to it. */
struct sock {
	struct webhooks *w;
	struct sock *prev, *next;
	curl_socket_t fd;
	sd_event_source *io;
};

struct webhooks {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	struct delivery *deliveries;
	struct sock *socks;
	size_t n;
	bool dispatching;               /* inside one of our event callbacks */
	bool freeing;                   /* webhooks_free() called while dispatching */
	bool cancelling;                /* webhooks_free() is calling the done of each */
	webhook_try_fn on_try;
};

/* ---- lists ---- */

#define LIST_PUSH(head, x) do {                     \
		(x)->prev = NULL;                   \
		(x)->next = (head);                 \
		if (head)                           \
			(head)->prev = (x);         \
		(head) = (x);                       \
	} while (0)
#define LIST_UNLINK(head, x) do {                   \
		if ((x)->prev)                      \
			(x)->prev->next = (x)->next; \
		else                                \
			(head) = (x)->next;         \
		if ((x)->next)                      \
			(x)->next->prev = (x)->prev; \
		(x)->prev = (x)->next = NULL;       \
	} while (0)

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- deliveries ---- */

static void delivery_free(struct delivery *d)
{
	if (d->easy) {
		if (d->attached)
			curl_multi_remove_handle(d->w->multi, d->easy);
		curl_easy_cleanup(d->easy);
	}
	curl_slist_free_all(d->headers);
	sd_event_source_unref(d->retry);
	free(d->url);
	free(d->body);
	free(d);
}

/* Unlink, tell the caller, free. */
static void delivery_finish(struct delivery *d, bool ok)
{
	struct webhooks *w = d->w;
	LIST_UNLINK(w->deliveries, d);
	w->n--;
	if (d->easy && d->attached) {
		curl_multi_remove_handle(w->multi, d->easy);
		d->attached = false;
	}
	if (d->done)
		d->done(d->userdata, ok, d->attempts, ok ? "" : d->detail);
	delivery_free(d);
}

static int delivery_attach(struct delivery *d)
{
	CURLMcode mc = curl_multi_add_handle(d->w->multi, d->easy);
	if (mc != CURLM_OK) {
		snprintf(d->detail, sizeof(d->detail), "cannot start: %s", curl_multi_strerror(mc));
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EIO;
	}
	d->attached = true;
	d->attempts++;
	d->errbuf[0] = '\0';
	return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct delivery *d = userdata;
	struct webhooks *w = d->w;
	(void)s;
	(void)usec;
	d->retry = sd_event_source_unref(d->retry);
	if (delivery_attach(d) < 0) {
		w->dispatching = true;
		delivery_finish(d, false);
		w->dispatching = false;
		if (w->freeing)
			webhooks_free(w);
	}
	/* curl_multi_add_handle() armed curl's timer; the transfer starts from there. */
	return 0;
}

/* Why the try failed, in a few words for the alarm's timeline. */
static void describe_failure(struct delivery *d, CURLcode rc, long status)
{
	if (rc == CURLE_OK) {
		snprintf(d->detail, sizeof(d->detail), "HTTP %ld", status);
		return;
	}
	if (rc == CURLE_OPERATION_TIMEDOUT) {
		snprintf(d->detail, sizeof(d->detail), "timeout after %ld s", TRY_TIMEOUT_MS / 1000);
		return;
	}
	long os_errno = 0;
	if (rc == CURLE_COULDNT_CONNECT &&
	    curl_easy_getinfo(d->easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno > 0) {
		/* "connection refused", "no route to host", ... */
		snprintf(d->detail, sizeof(d->detail), "%s", strerror((int)os_errno));
		d->detail[0] = (char)tolower((unsigned char)d->detail[0]);
		return;
	}
	snprintf(d->detail, sizeof(d->detail), "%s", d->errbuf[0] ? d->errbuf : curl_easy_strerror(rc));
}

/* One try has ended: done, or wait and try again. */
static void try_ended(struct delivery *d, CURLcode rc)
{
	struct webhooks *w = d->w;
	long status = 0;
	curl_multi_remove_handle(w->multi, d->easy);
	d->attached = false;
	if (rc == CURLE_OK)
		curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_OK && status >= 200 && status <= 299) {
		delivery_finish(d, true);
		return;
	}
	describe_failure(d, rc, status);
	if (w->on_try)
		w->on_try(d->userdata, d->attempts, d->detail, d->attempts < TRIES);
	if (d->attempts >= TRIES) {
		delivery_finish(d, false);
		return;
	}
	int r = sd_event_add_time_relative(w->event, &d->retry, CLOCK_MONOTONIC,
	                                   backoff_us[d->attempts - 1], RETRY_ACCURACY_US,
	                                   on_retry, d);
	if (r < 0) {
		/* Keep the last try's reason; the loop cannot give us a timer. */
		delivery_finish(d, false);
		return;
	}
	sd_event_source_set_description(d->retry, "webhook-retry");
}

static void collect_finished(struct webhooks *w)
{
	CURLMsg *msg;
	int left;
	while (!w->freeing && (msg = curl_multi_info_read(w->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		CURLcode rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		if (priv)
			try_ended((struct delivery *)(void *)priv, rc);
		else
			curl_multi_remove_handle(w->multi, msg->easy_handle);
	}
}

/* ---- libcurl <-> sd-event ---- */

static void socket_action(struct webhooks *w, curl_socket_t fd, int mask)
{
	int running;
	w->dispatching = true;
	curl_multi_socket_action(w->multi, fd, mask, &running);
	collect_finished(w);
	w->dispatching = false;
	if (w->freeing)
		webhooks_free(w);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct sock *k = userdata;   /* may be freed by socket_action(): read w first */
	struct webhooks *w = k->w;
	int mask = 0;
	(void)s;
	if (revents & EPOLLIN)
		mask |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		mask |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		mask |= CURL_CSELECT_ERR;
	socket_action(w, fd, mask);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	socket_action(userdata, CURL_SOCKET_TIMEOUT, 0);
	return 0;
}

static void sock_free(struct webhooks *w, struct sock *k)
{
	LIST_UNLINK(w->socks, k);
	sd_event_source_unref(k->io);
	free(k);
}

/* CURLMOPT_SOCKETFUNCTION. Errors are not returned to libcurl: -1 would mark
 * the whole multi handle dead. Without its io source a try still ends, by
 * curl's timeout, and is retried. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct webhooks *w = userp;
	struct sock *k = socketp;
	(void)easy;

	if (what == CURL_POLL_REMOVE) {
		if (k) {
			curl_multi_assign(w->multi, fd, NULL);
			sock_free(w, k);
		}
		return 0;
	}
	uint32_t events = 0;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		events |= EPOLLOUT;
	if (k) {
		sd_event_source_set_io_events(k->io, events);
		return 0;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return 0;
	k->w = w;
	k->fd = fd;
	if (sd_event_add_io(w->event, &k->io, fd, events, on_io, k) < 0) {
		free(k);
		return 0;
	}
	sd_event_source_set_description(k->io, "webhook-io");
	LIST_PUSH(w->socks, k);
	curl_multi_assign(w->multi, fd, k);
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer, 0 means as soon as possible. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct webhooks *w = userp;
	(void)multi;
	if (timeout_ms < 0) {
		sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
		return 0;
	}
	sd_event_source_set_time(w->timer, now_us() + (uint64_t)timeout_ms * 1000);
	sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
	return 0;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

/* ---- public ---- */

int webhooks_new(sd_event *e, struct webhooks **out)
{
	if (!e || !out)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	struct webhooks *w = calloc(1, sizeof(*w));
	if (!w) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	w->event = sd_event_ref(e);
	int r = -ENOMEM;
	w->multi = curl_multi_init();
	if (!w->multi)
		goto fail;
	if (curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w) != CURLM_OK ||
	    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w) != CURLM_OK) {
		r = -EIO;
		goto fail;
	}
	r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_US, on_timer, w);
	if (r < 0)
		goto fail;
	sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
	sd_event_source_set_description(w->timer, "webhook-timer");
	*out = w;
	return 0;
fail:
	webhooks_free(w);
	return r;
}

void webhooks_free(struct webhooks *w)
{
	if (!w || w->cancelling)
		return;  /* a done that frees again: the outer call finishes the job */
	w->cancelling = true;
	/* Cancel every delivery now. Each still gets its one call of done (not
	 * ok, "cancelled"), so that its owner can record it and free what it
	 * passed as userdata. */
	while (w->deliveries) {
		struct delivery *d = w->deliveries;
		LIST_UNLINK(w->deliveries, d);
		if (d->done)
			d->done(d->userdata, false, d->attempts, "cancelled: telecared stopped");
		delivery_free(d);
	}
	w->cancelling = false;
	w->n = 0;
	if (w->dispatching) {
		/* Called from done: the callback we are in still uses w. */
		w->freeing = true;
		return;
	}
	if (w->multi)
		curl_multi_cleanup(w->multi);
	/* Sockets libcurl did not tell us to remove before cleanup. */
	while (w->socks)
		sock_free(w, w->socks);
	sd_event_source_unref(w->timer);
	sd_event_unref(w->event);
	free(w);
	curl_global_cleanup();
}

/* http:// or https:// with a host, as libcurl parses it. */
static bool url_acceptable(const char *url)
{
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
		return false;
	CURLU *u = curl_url();
	if (!u)
		return false;
	char *host = NULL;
	bool ok = curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	          curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && host[0];
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

int webhook_post(struct webhooks *w, const char *url, const char *body,
                 webhook_done_fn done, void *userdata)
{
	if (!w || !url || !body || w->freeing)
		return -EINVAL;
	if (!url_acceptable(url))
		return -EINVAL;

	struct delivery *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->w = w;
	d->done = done;
	d->userdata = userdata;
	d->url = strdup(url);
	d->body = strdup(body);
	d->easy = curl_easy_init();
	struct curl_slist *h1 = curl_slist_append(NULL, "Content-Type: application/json");
	/* "Expect:" off: no 1 s wait for "100 Continue" before bodies over 1 KiB. */
	struct curl_slist *h2 = h1 ? curl_slist_append(h1, "Expect:") : NULL;
	d->headers = h2 ? h2 : h1;
	if (!d->url || !d->body || !d->easy || !h2) {
		delivery_free(d);
		return -ENOMEM;
	}

	CURL *c = d->easy;
	bool set = curl_easy_setopt(c, CURLOPT_URL, d->url) == CURLE_OK &&
#if LIBCURL_VERSION_NUM >= 0x075500   /* 7.85.0 */
	           curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
#else
	           curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK &&
#endif
	           curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	           /* Trust the CA bundle alone: with Debian's default CA path set,
	            * libcurl re-parses the bundle for every TLS connection (tens of
	            * ms on the loop); without it the parsed store is cached in the
	            * multi handle (CURLOPT_CA_CACHE_TIMEOUT, 24 h). */
	           curl_easy_setopt(c, CURLOPT_CAPATH, NULL) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TRY_TIMEOUT_MS) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, TRY_TIMEOUT_MS) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_POST, 1L) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_POSTFIELDS, d->body) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(d->body)) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_HTTPHEADER, d->headers) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_USERAGENT, "telecared/" TELECARE_VERSION) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->errbuf) == CURLE_OK &&
	           curl_easy_setopt(c, CURLOPT_PRIVATE, d) == CURLE_OK;
	if (!set) {
		delivery_free(d);
		return -EINVAL;
	}
	int r = delivery_attach(d);
	if (r < 0) {
		delivery_free(d);
		return r;
	}
	LIST_PUSH(w->deliveries, d);
	w->n++;
	return 0;
}

void webhooks_on_try(struct webhooks *w, webhook_try_fn fn)
{
	if (w)
		w->on_try = fn;
}

size_t webhooks_in_flight(const struct webhooks *w)
{
	return w ? w->n : 0;
}
