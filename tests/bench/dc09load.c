/* tc-dc09load: the DC-09 load generator of the telecared benchmarks (issue 13).
 *
 * Simulates many alarm panels, each on its own persistent TCP connection to
 * a DC-09 receiver on 127.0.0.1 (SIA DC-09-2013 frames, CRC-16/ARC, no
 * encryption), sending SIA-DCS events (RP, a periodic test: a heartbeat) and
 * NULL link tests, one message at a time per panel as panels do: the next
 * goes out when the ACK of the last is in. Closed loop (every panel sends
 * again at once) or open loop (--rate messages per second over the idle
 * panels). Measures, over --duration seconds after --warmup: messages ACKed
 * per second, ACK latency (send -> ACK) percentiles, NAKs, and with --pid the
 * CPU share of those processes. Prints one JSON object. Single thread, epoll.
 *
 *   tc-dc09load --port P --panels 1000 --duration 5 [--rate R] [--polls 0.5]
 *               [--account-base 100000] [--pid telecared=PID]
 *
 * Accounts are the hex numbers account-base, account-base + 1, ... */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PIDS 4
#define LAT_MAX  (20u * 1000 * 1000)

struct panel {
	int fd;
	unsigned account;
	unsigned seq;
	bool waiting, in_window;
	int64_t sent_ns;
	size_t in_len;
	char in[512];
};

static struct {
	int port, panels, n_pids;
	double duration, warmup, drain, rate, polls;
	unsigned account_base;
	const char *pid_name[MAX_PIDS];
	int pid[MAX_PIDS];
} o = { .panels = 1000, .duration = 5, .warmup = 1, .drain = 10, .polls = 0.5,
        .account_base = 0x100000 };

static uint32_t *lat_us;
static size_t n_lat;
static uint64_t sent_w, acked_w, nak, duh, other, sent_total, acked_total;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint16_t crc16(const char *p, size_t n)
{
	uint16_t crc = 0;
	for (size_t i = 0; i < n; i++) {
		crc ^= (unsigned char)p[i];
		for (int b = 0; b < 8; b++)
			crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
	}
	return crc;
}

/* One frame of the panel's next message into out; returns its length. */
static size_t build(struct panel *p, char *out, size_t cap)
{
	char body[256], ts[32];
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(ts, sizeof(ts), "_%H:%M:%S,%m-%d-%Y", &tm);
	p->seq = p->seq % 9999 + 1;
	bool poll = (double)rand() / RAND_MAX < o.polls;
	int n = poll ? snprintf(body, sizeof(body), "\"NULL\"%04uR0L0#%X[]%s", p->seq, p->account, ts)
	             : snprintf(body, sizeof(body), "\"SIA-DCS\"%04uR0L0#%X[#%X|Nri1/RP%04u]%s",
	                        p->seq, p->account, p->account, p->seq, ts);
	return (size_t)snprintf(out, cap, "\n%04X0%03X%s\r", crc16(body, (size_t)n), n, body);
}

static void send_next(struct panel *p, int64_t t, int64_t w0, int64_t w1)
{
	char f[300];
	size_t n = build(p, f, sizeof(f));
	if (send(p->fd, f, n, MSG_NOSIGNAL) != (ssize_t)n) {
		fprintf(stderr, "tc-dc09load: send: %s\n", strerror(errno));
		exit(1);
	}
	p->waiting = true;
	p->sent_ns = t;
	p->in_window = t >= w0 && t < w1;
	sent_w += p->in_window;
	sent_total++;
}

static double cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(double p)
{
	if (!n_lat)
		return -1;
	size_t k = (size_t)(p / 100.0 * (double)n_lat + 0.5);
	k = k ? k - 1 : 0;
	if (k >= n_lat)
		k = n_lat - 1;
	return lat_us[k] / 1000.0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tc-dc09load --port P [--panels N] [--duration S] [--warmup S] "
	        "[--drain S] [--rate R] [--polls F] [--account-base HEX] [--pid NAME=PID]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", 1, 0, 'p' }, { "panels", 1, 0, 'n' }, { "duration", 1, 0, 'd' },
		{ "warmup", 1, 0, 'w' }, { "drain", 1, 0, 'D' }, { "rate", 1, 0, 'r' },
		{ "polls", 1, 0, 'P' }, { "account-base", 1, 0, 'a' }, { "pid", 1, 0, 'i' }, { 0 },
	};
	int c;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': o.port = atoi(optarg); break;
		case 'n': o.panels = atoi(optarg); break;
		case 'd': o.duration = atof(optarg); break;
		case 'w': o.warmup = atof(optarg); break;
		case 'D': o.drain = atof(optarg); break;
		case 'r': o.rate = atof(optarg); break;
		case 'P': o.polls = atof(optarg); break;
		case 'a': o.account_base = (unsigned)strtoul(optarg, NULL, 16); break;
		case 'i': {
			char *eq = strchr(optarg, '=');
			if (!eq || o.n_pids == MAX_PIDS)
				usage();
			*eq = '\0';
			o.pid_name[o.n_pids] = optarg;
			o.pid[o.n_pids++] = atoi(eq + 1);
			break;
		}
		default: usage();
		}
	}
	if (o.port <= 0 || o.panels <= 0 || o.duration <= 0)
		usage();
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)o.panels + 64) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lat_us = malloc(LAT_MAX * sizeof(*lat_us));
	struct panel *pn = calloc((size_t)o.panels, sizeof(*pn));
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!lat_us || !pn || ep < 0)
		return 1;
	srand(12345);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o.port) };
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	for (int i = 0; i < o.panels; i++) {
		struct panel *p = &pn[i];
		p->account = o.account_base + (unsigned)i;
		p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (p->fd < 0 || connect(p->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			fprintf(stderr, "tc-dc09load: connection %d: %s\n", i, strerror(errno));
			return 1;
		}
		int one = 1;
		setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		fcntl(p->fd, F_SETFL, O_NONBLOCK);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
		epoll_ctl(ep, EPOLL_CTL_ADD, p->fd, &ev);
	}
	int64_t t0 = now_ns(), w0 = t0 + (int64_t)(o.warmup * 1e9),
	        w1 = w0 + (int64_t)(o.duration * 1e9), end = w1 + (int64_t)(o.drain * 1e9);
	double cpu0[MAX_PIDS], cpu1[MAX_PIDS];
	bool measuring = false, measured = false;
	int64_t wall0 = 0, wall1 = 0;
	double tokens = 0;
	int64_t last = t0;
	int rr = 0, busy = 0;
	if (o.rate <= 0)
		for (int i = 0; i < o.panels; i++)
			send_next(&pn[i], now_ns(), w0, w1);
	struct epoll_event evs[256];
	for (;;) {
		int64_t t = now_ns();
		if (!measuring && t >= w0) {
			measuring = true;
			wall0 = t;
			for (int i = 0; i < o.n_pids; i++)
				cpu0[i] = cpu_s(o.pid[i]);
		}
		if (measuring && !measured && t >= w1) {
			measured = true;
			wall1 = t;
			for (int i = 0; i < o.n_pids; i++)
				cpu1[i] = cpu_s(o.pid[i]);
		}
		busy = 0;
		for (int i = 0; i < o.panels; i++)
			busy += pn[i].waiting;
		if (t >= w1 && busy == 0)
			break;
		if (t >= end)
			break;
		if (o.rate > 0 && t < w1) {
			tokens += (double)(t - last) / 1e9 * o.rate;
			if (tokens > o.rate * 0.05 + 1)
				tokens = o.rate * 0.05 + 1;
			for (int k = 0; k < o.panels && tokens >= 1; k++) {
				struct panel *p = &pn[rr++ % o.panels];
				if (p->waiting)
					continue;
				send_next(p, t, w0, w1);
				tokens -= 1;
			}
		}
		last = t;
		int n = epoll_wait(ep, evs, 256, o.rate > 0 ? 1 : 100);
		for (int k = 0; k < n; k++) {
			struct panel *p = evs[k].data.ptr;
			ssize_t r = recv(p->fd, p->in + p->in_len, sizeof(p->in) - p->in_len, 0);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN)
					continue;
				fprintf(stderr, "tc-dc09load: panel %X: the receiver closed the connection\n",
				        p->account);
				return 1;
			}
			p->in_len += (size_t)r;
			char *cr;
			while ((cr = memchr(p->in, '\r', p->in_len))) {
				size_t len = (size_t)(cr - p->in) + 1;
				int64_t tn = now_ns();
				const char *q = memchr(p->in, '"', len);
				bool ack = q && len - (size_t)(q - p->in) > 9 && !memcmp(q, "\"ACK\"", 5) &&
				           (unsigned)atoi(q + 5) == p->seq;
				if (ack) {
					acked_total++;
					if (p->in_window) {
						acked_w++;
						if (n_lat < LAT_MAX)
							lat_us[n_lat++] = (uint32_t)((tn - p->sent_ns) / 1000);
					}
				} else if (q && !memcmp(q, "\"NAK\"", 5)) {
					nak++;
				} else if (q && !memcmp(q, "\"DUH\"", 5)) {
					duh++;
				} else {
					other++;
				}
				p->waiting = false;
				memmove(p->in, p->in + len, p->in_len - len);
				p->in_len -= len;
				if (o.rate <= 0 && tn < w1)
					send_next(p, tn, w0, w1);
			}
		}
	}
	if (!measured) {
		wall1 = now_ns();
		for (int i = 0; i < o.n_pids; i++)
			cpu1[i] = cpu_s(o.pid[i]);
	}
	qsort(lat_us, n_lat, sizeof(*lat_us), cmp_u32);
	double win = (double)(wall1 - wall0) / 1e9;
	printf("{\"panels\": %d, \"rate\": %.0f, \"polls\": %.2f, \"window_s\": %.3f, "
	       "\"sent\": %llu, \"acked\": %llu, \"sent_total\": %llu, \"acked_total\": %llu, "
	       "\"unanswered\": %d, \"nak\": %llu, \"duh\": %llu, \"other\": %llu, "
	       "\"acked_per_s\": %.1f, \"latency\": {\"n\": %zu, \"p50_ms\": %.3f, \"p99_ms\": %.3f, "
	       "\"max_ms\": %.3f}, \"procs\": {",
	       o.panels, o.rate, o.polls, win, (unsigned long long)sent_w, (unsigned long long)acked_w,
	       (unsigned long long)sent_total, (unsigned long long)acked_total, busy,
	       (unsigned long long)nak, (unsigned long long)duh, (unsigned long long)other,
	       (double)acked_w / win, n_lat, pct(50), pct(99), n_lat ? lat_us[n_lat - 1] / 1000.0 : -1);
	for (int i = 0; i < o.n_pids; i++)
		printf("%s\"%s\": {\"pid\": %d, \"cpu_pct\": %.2f}", i ? ", " : "", o.pid_name[i], o.pid[i],
		       cpu0[i] >= 0 && cpu1[i] >= 0 ? 100.0 * (cpu1[i] - cpu0[i]) / win : -1.0);
	printf("}}\n");
	for (int i = 0; i < o.panels; i++)
		close(pn[i].fd);
	free(pn);
	free(lat_us);
	return 0;
}
