/* webhook_drill: daemon/webhook.c against a real HTTP receiver (server.py).
 *
 *   webhook_drill PORT [RUN-TAG]
 *
 * Posts to /ok, /slow, /fail, /hang, /redirect, a refused port, a name that
 * does not resolve, localhost and https:// to the plain-HTTP server at once on
 * one sd-event loop, while a 10 ms repeating timer measures how late the loop
 * gets (it must stay small while /hang is pending). The first TLS connection
 * is made before the measurement and its one-time cost (OpenSSL parsing the
 * CA bundle) is printed apart. Also: bad URLs, a 100 KiB body, a post from
 * inside done, a post without done, webhooks_free() from inside done and from
 * a timer with transfers in flight (done must not be called for those).
 * Exit status 0 when every check passed.
 * Under valgrind, WEBHOOK_DRILL_MAX_STALL_MS overrides the 50 ms stall limit
 * and WEBHOOK_DRILL_SLACK_S adds seconds to every "done by" bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "webhook.h"

#define TICK_US 10000

static int failures;
static char base[128];            /* http://127.0.0.1:PORT */
static const char *port;
static char tag[64];
static uint64_t t0;

#define CHECK(cond, ...) do {                                         \
		if (!(cond)) {                                        \
			failures++;                                   \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
			printf(__VA_ARGS__);                          \
			printf("\n");                                 \
		}                                                     \
	} while (0)

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static double since_start(void)
{
	return (double)(now_us() - t0) / 1e6;
}

/* ---- the cases ---- */

struct kase {
	const char *name;
	const char *url;               /* path on the server, or full URL */
	bool want_ok;
	int want_attempts;
	const char *want_detail;       /* substring of detail; NULL: don't care */
	double min_s, max_s;           /* when done must come */
	/* results */
	int calls;
	bool ok;
	int attempts;
	char detail[256];
	double at;                     /* seconds from post to done */
	uint64_t posted;
};

static char refused_url[128];
static char *big_body;

static struct kase cases[] = {
	{ .name = "ok", .url = "/ok", .want_ok = true, .want_attempts = 1, .want_detail = NULL, .min_s = 0.0, .max_s = 0.5 },
	{ .name = "ok-big", .url = "/ok", .want_ok = true, .want_attempts = 1, .want_detail = NULL, .min_s = 0.0, .max_s = 0.9 },
	{ .name = "slow", .url = "/slow", .want_ok = true, .want_attempts = 1, .want_detail = NULL, .min_s = 0.9, .max_s = 2.0 },
	{ .name = "fail", .url = "/fail", .want_ok = false, .want_attempts = 3, .want_detail = "HTTP 500", .min_s = 2.9, .max_s = 4.0 },
	{ .name = "redirect", .url = "/redirect", .want_ok = false, .want_attempts = 3, .want_detail = "HTTP 302", .min_s = 2.9, .max_s = 4.0 },
	{ .name = "refused", .url = NULL, .want_ok = false, .want_attempts = 3, .want_detail = "connection refused", .min_s = 2.9, .max_s = 4.0 },
	{ .name = "hang", .url = "/hang", .want_ok = false, .want_attempts = 3, .want_detail = "timeout after 5 s", .min_s = 17.5, .max_s = 19.5 },
	{ .name = "name", .url = "http://localhost:%s/ok?run=%s", .want_ok = true, .want_attempts = 1, .want_detail = NULL, .min_s = 0.0, .max_s = 0.9 },
	{ .name = "nxdomain", .url = "http://nonexistent.invalid/?run=%s%s", .want_ok = false, .want_attempts = 3, .want_detail = "resolve", .min_s = 2.9, .max_s = 4.5 },
	{ .name = "tls", .url = "https://127.0.0.1:%s/ok?run=%s", .want_ok = false, .want_attempts = 3, .want_detail = NULL, .min_s = 2.9, .max_s = 6.0 },
	{ .name = "chained", .url = "/ok", .want_ok = true, .want_attempts = 1, .want_detail = NULL, .min_s = 0.0, .max_s = 1.0 },  /* posted from ok's done */
};
#define N_CASES (sizeof(cases) / sizeof(cases[0]))
#define CHAINED (N_CASES - 1)
#define TLS (N_CASES - 2)

static struct webhooks *wh;
static sd_event *ev;
static size_t n_done;

static uint64_t max_late_us, max_late_hang_us, ticks;
static double max_late_at;
static bool verbose;
static bool hang_pending;

static void url_of(const struct kase *k, char *buf, size_t len)
{
	if (!k->url)
		snprintf(buf, len, "%s", refused_url);
	else if (k->url[0] == '/')
		snprintf(buf, len, "%s%s?run=%s", base, k->url, tag);
	else if (strcmp(k->name, "nxdomain") == 0)
		snprintf(buf, len, k->url, tag, "");
	else
		snprintf(buf, len, k->url, port, tag);   /* "...:%s/...?run=%s" */
}

static int post_case(size_t i, webhook_done_fn fn)
{
	char url[256];
	url_of(&cases[i], url, sizeof(url));
	const char *body = strcmp(cases[i].name, "ok-big") == 0 ? big_body
	                   : "{\"alarm\":42,\"type\":\"fall\",\"device\":\"pendant-1\"}";
	cases[i].posted = now_us();
	return webhook_post(wh, url, body, fn, &cases[i]);
}

static void on_done(void *userdata, bool ok, int attempts, const char *detail)
{
	struct kase *k = userdata;
	k->calls++;
	k->ok = ok;
	k->attempts = attempts;
	snprintf(k->detail, sizeof(k->detail), "%s", detail ? detail : "(null)");
	k->at = (double)(now_us() - k->posted) / 1e6;
	printf("  %6.3f s  %-9s ok=%d attempts=%d detail=\"%s\"  (in flight: %zu)\n",
	       since_start(), k->name, ok, attempts, k->detail, webhooks_in_flight(wh));
	fflush(stdout);
	if (k == &cases[0]) {
		/* Re-entry: a new post from inside done. */
		int r = post_case(CHAINED, on_done);
		CHECK(r == 0, "post from done: %s", strerror(-r));
	}
	if (strcmp(k->name, "hang") == 0)
		hang_pending = false;
	if (++n_done == N_CASES)
		sd_event_exit(ev, 0);
}

/* ---- a second instance, freed from inside done ---- */

static struct webhooks *wb;
static int wb_refused_calls, wb_other_calls;
static size_t wb_in_flight_at_free;

static void wb_refused_done(void *userdata, bool ok, int attempts, const char *detail)
{
	(void)userdata;
	wb_refused_calls++;
	printf("  %6.3f s  B/refused ok=%d attempts=%d detail=\"%s\" -> webhooks_free(B) inside done\n",
	       since_start(), ok, attempts, detail);
	wb_in_flight_at_free = webhooks_in_flight(wb);
	webhooks_free(wb);
	wb = NULL;
}

/* A delivery cancelled by webhooks_free(): done once, not ok, "cancelled". */
static void cancelled_done(void *userdata, bool ok, int attempts, const char *detail)
{
	int *calls = userdata;
	(*calls)++;
	printf("  %6.3f s  cancelled delivery: ok=%d attempts=%d detail=%s\n",
	       since_start(), ok, attempts, detail);
	CHECK(!ok && strstr(detail, "cancelled"), "a cancelled delivery reported ok=%d \"%s\"", ok,
	      detail);
}

/* ---- a third instance, freed from a timer with transfers in flight ---- */

static struct webhooks *wc;
static int wc_calls;

static int free_wc(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	(void)userdata;
	printf("  %6.3f s  C: webhooks_free with %zu in flight\n", since_start(),
	       webhooks_in_flight(wc));
	CHECK(webhooks_in_flight(wc) == 2, "C in flight %zu", webhooks_in_flight(wc));
	webhooks_free(wc);
	wc = NULL;
	return 0;
}

/* ---- loop latency ---- */

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)userdata;
	uint64_t now = now_us();
	uint64_t late = now > usec ? now - usec : 0;
	if (ticks > 0) {   /* the first tick includes start-up */
		if (late > max_late_us) {
			max_late_us = late;
			max_late_at = (double)(now - t0) / 1e6;
		}
		if (hang_pending && late > max_late_hang_us)
			max_late_hang_us = late;
	}
	if (verbose && late > 5000)
		printf("  %6.3f s  loop late by %.3f ms\n", (double)(now - t0) / 1e6, (double)late / 1000.0);
	ticks++;
	sd_event_source_set_time(s, usec + TICK_US > now ? usec + TICK_US : now + TICK_US);
	return 0;
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s;
	(void)usec;
	(void)userdata;
	CHECK(false, "deadline: only %zu of %zu deliveries done after 30 s", n_done, N_CASES);
	sd_event_exit(ev, 1);
	return 0;
}

/* A TCP port that refuses connections: bound, never listening. */
static int refusing_port(int *fd_out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		perror("refusing port");
		exit(2);
	}
	*fd_out = fd;
	return ntohs(a.sin_port);
}

static void check_bad_input(void)
{
	static const char *bad[] = {
		"ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/", "127.0.0.1/ok",
		"http://", "https://", "", "http://exa mple.com/", "httpx://host/", "mqtt://host/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = webhook_post(wh, bad[i], "{}", on_done, NULL);
		CHECK(r == -EINVAL, "post to \"%s\" gave %d, want -EINVAL", bad[i], r);
	}
	CHECK(webhook_post(wh, "http://127.0.0.1/", NULL, on_done, NULL) == -EINVAL, "NULL body");
	CHECK(webhook_post(wh, NULL, "{}", on_done, NULL) == -EINVAL, "NULL url");
	CHECK(webhook_post(NULL, "http://127.0.0.1/", "{}", on_done, NULL) == -EINVAL, "NULL w");
	CHECK(webhooks_in_flight(wh) == 0, "bad posts left %zu in flight", webhooks_in_flight(wh));
	printf("bad URLs refused with -EINVAL: %zu\n", sizeof(bad) / sizeof(bad[0]));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [RUN-TAG]\n", argv[0]);
		return 2;
	}
	port = argv[1];
	verbose = getenv("WEBHOOK_DRILL_VERBOSE") != NULL;
	snprintf(base, sizeof(base), "http://127.0.0.1:%s", port);
	snprintf(tag, sizeof(tag), "%s", argc > 2 ? argv[2] : "drill");
	const char *env = getenv("WEBHOOK_DRILL_MAX_STALL_MS");
	uint64_t max_stall_us = (uint64_t)(env ? atoi(env) : 50) * 1000;
	env = getenv("WEBHOOK_DRILL_SLACK_S");
	double slack = env ? atof(env) : 0.0;

	int refused_fd;
	int rport = refusing_port(&refused_fd);
	snprintf(refused_url, sizeof(refused_url), "http://127.0.0.1:%d/refused", rport);

	size_t big = 100 * 1024;
	big_body = malloc(big + 16);
	strcpy(big_body, "{\"pad\":\"");
	memset(big_body + 8, 'x', big);
	strcpy(big_body + 8 + big, "\"}");

	int r = sd_event_new(&ev);
	CHECK(r >= 0, "sd_event_new: %s", strerror(-r));
	r = webhooks_new(ev, &wh);
	CHECK(r == 0, "webhooks_new: %s", strerror(-r));
	r = webhooks_new(ev, &wb);
	CHECK(r == 0, "webhooks_new B: %s", strerror(-r));
	r = webhooks_new(ev, &wc);
	CHECK(r == 0, "webhooks_new C: %s", strerror(-r));
	if (failures)
		return 1;

	check_bad_input();

	/* Warm-up: the first TLS connection of a multi handle makes OpenSSL parse
	 * the CA bundle, on the loop (later ones reuse curl's cached store).
	 * Measure that one-time cost apart from the latency check below. */
	t0 = now_us();
	r = post_case(TLS, on_done);
	CHECK(r == 0, "post tls: %s", strerror(-r));
	uint64_t warm_worst = 0, warm_end = now_us() + 300000;
	while (now_us() < warm_end) {
		uint64_t a = now_us();
		sd_event_run(ev, 20000);
		if (now_us() - a > warm_worst)
			warm_worst = now_us() - a;
	}
	printf("warm-up: first HTTPS connection (CA bundle load), longest loop iteration %.3f ms\n",
	       (double)warm_worst / 1000.0);

	sd_event_source *tick, *deadline, *cfree;
	uint64_t t_measure = now_us();
	sd_event_add_time(ev, &tick, CLOCK_MONOTONIC, t_measure + TICK_US, 1, on_tick, NULL);
	sd_event_source_set_enabled(tick, SD_EVENT_ON);
	/* Absolute times: the loop's cached "now" may be as old as the warm-up's stall. */
	sd_event_add_time(ev, &deadline, CLOCK_MONOTONIC, t_measure + 30 * 1000000ULL, 1000,
	                  on_deadline, NULL);
	sd_event_add_time(ev, &cfree, CLOCK_MONOTONIC, t_measure + 300000, 1000, free_wc, NULL);

	for (size_t i = 0; i < CHAINED; i++) {
		if (i == TLS)
			continue;
		r = post_case(i, on_done);
		CHECK(r == 0, "post %s: %s", cases[i].name, strerror(-r));
	}
	hang_pending = true;
	CHECK(webhooks_in_flight(wh) == CHAINED, "in flight %zu, want %zu", webhooks_in_flight(wh),
	      (size_t)CHAINED);
	/* Fire and forget: no done at all. */
	char url[256];
	snprintf(url, sizeof(url), "%s/ok?run=%s", base, tag);
	CHECK(webhook_post(wh, url, "{\"forget\":true}", NULL, NULL) == 0, "post without done");

	/* B: a refused delivery frees B from its done while /hang is still in flight. */
	CHECK(webhook_post(wb, refused_url, "{}", wb_refused_done, NULL) == 0, "post B refused");
	snprintf(url, sizeof(url), "%s/hang?run=%s-B", base, tag);
	CHECK(webhook_post(wb, url, "{}", cancelled_done, &wb_other_calls) == 0, "post B hang");
	/* C: freed by a timer after 300 ms, with one hanging and one slow transfer. */
	snprintf(url, sizeof(url), "%s/hang?run=%s-C", base, tag);
	CHECK(webhook_post(wc, url, "{}", cancelled_done, &wc_calls) == 0, "post C hang");
	snprintf(url, sizeof(url), "%s/slow?run=%s-C", base, tag);
	CHECK(webhook_post(wc, url, "{}", cancelled_done, &wc_calls) == 0, "post C slow");

	printf("posted %zu more deliveries at once (+1 without done, +2 on B, +2 on C); "
	       "latency measured from here\n", (size_t)CHAINED - 1);
	fflush(stdout);
	r = sd_event_loop(ev);
	double total = (double)(now_us() - t_measure) / 1e6;

	/* Let anything that should not happen, happen: 200 ms more of loop. */
	sd_event_source_set_enabled(deadline, SD_EVENT_OFF);
	uint64_t until = now_us() + 200000;
	while (now_us() < until && webhooks_in_flight(wh) > 0)
		sd_event_run(ev, 50000);
	for (int i = 0; i < 20; i++)
		sd_event_run(ev, 10000);

	printf("\nresults (%.3f s in all):\n", total);
	for (size_t i = 0; i < N_CASES; i++) {
		struct kase *k = &cases[i];
		bool good = k->calls == 1 && k->ok == k->want_ok && k->attempts == k->want_attempts &&
		            (!k->want_detail || strstr(k->detail, k->want_detail)) &&
		            k->at >= k->min_s && k->at <= k->max_s + slack;
		printf("  %-4s %-9s calls=%d ok=%d attempts=%d at=%.3f s (want %.1f..%.1f) detail=\"%s\"\n",
		       good ? "PASS" : "FAIL", k->name, k->calls, k->ok, k->attempts, k->at,
		       k->min_s, k->max_s + slack, k->detail);
		if (!good)
			failures++;
	}
	CHECK(webhooks_in_flight(wh) == 0, "A still has %zu in flight", webhooks_in_flight(wh));
	CHECK(wb_refused_calls == 1 && wb == NULL, "B refused done called %d times", wb_refused_calls);
	CHECK(wb_in_flight_at_free == 1, "B had %zu in flight at free, want 1", wb_in_flight_at_free);
	CHECK(wb_other_calls == 1, "B's cancelled delivery called done %d times, want 1", wb_other_calls);
	CHECK(wc == NULL && wc_calls == 2, "C's 2 cancelled deliveries called done %d times", wc_calls);
	printf("  B: freed from inside done with %zu in flight, cancelled done calls: %d\n",
	       wb_in_flight_at_free, wb_other_calls);
	printf("  C: freed from a timer, cancelled done calls: %d\n", wc_calls);

	printf("loop latency: %llu ticks of 10 ms, worst lateness %.3f ms overall (at %.3f s), "
	       "%.3f ms while /hang pending (limit %llu ms)\n",
	       (unsigned long long)ticks, (double)max_late_us / 1000.0, max_late_at,
	       (double)max_late_hang_us / 1000.0, (unsigned long long)(max_stall_us / 1000));
	CHECK(max_late_us < max_stall_us, "loop stalled %.3f ms", (double)max_late_us / 1000.0);
	CHECK(ticks > (uint64_t)(total * 1e6 / TICK_US) * 9 / 10, "only %llu ticks",
	      (unsigned long long)ticks);

	webhooks_free(wh);
	sd_event_source_unref(tick);
	sd_event_source_unref(deadline);
	sd_event_source_unref(cfree);
	sd_event_unref(ev);
	close(refused_fd);
	free(big_body);

	printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
	return failures ? 1 : 0;
}
