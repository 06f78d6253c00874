/* tc-loadgen: what its modes share (see lg.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lg.h"

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "tc-loadgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p)
		die("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

struct mosquitto *lg_client(const char *role, int i, void *ud, int port, int inflight)
{
	char id[64];
	snprintf(id, sizeof(id), "tc-loadgen-%d-%s-%d", (int)getpid(), role, i);
	struct mosquitto *m = mosquitto_new(id, true, ud);
	if (!m)
		die("mosquitto_new: %s", strerror(errno));
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
	/* libmosquitto 2.0 walks its whole list of unacknowledged QoS 1 messages
	 * on every publish and every PUBACK while it has send quota left: with
	 * no limit (0) the cost per message grows with the backlog, and an open
	 * loop that falls behind would slow itself down. A few hundred keeps
	 * the walk short and loopback busy. */
	mosquitto_max_inflight_messages_set(m, (unsigned)inflight);
	int rc = mosquitto_connect(m, LG_HOST, port, 60);
	if (rc != MOSQ_ERR_SUCCESS)
		die("cannot connect to %s:%d: %s", LG_HOST, port,
		    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
	return m;
}

int pump(struct mosquitto *m, int efd, int64_t timeout_ns, uint64_t *last_misc)
{
	struct pollfd fds[2];
	int n = 0, fd = mosquitto_socket(m);
	if (fd < 0)
		return -1;
	fds[n++] = (struct pollfd){ fd, (short)(POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0)), 0 };
	if (efd >= 0)
		fds[n++] = (struct pollfd){ efd, POLLIN, 0 };
	if (timeout_ns < 0)
		timeout_ns = 0;
	struct timespec ts = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
	int r = ppoll(fds, (nfds_t)n, &ts, NULL);
	if (r < 0 && errno != EINTR)
		return -1;
	int rc = MOSQ_ERR_SUCCESS;
	if (r > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
		/* mosquitto_loop_read() reads as many packets as there are QoS 1
		 * messages of ours in flight, at least one: a receiver would read one
		 * per poll. Read on while bytes are waiting. */
		for (int i = 0; i < 256 && rc == MOSQ_ERR_SUCCESS; i++) {
			rc = mosquitto_loop_read(m, 1);
			int avail = 0;
			if (mosquitto_socket(m) < 0 || ioctl(fd, FIONREAD, &avail) < 0 || avail <= 0)
				break;
		}
	}
	if (rc == MOSQ_ERR_SUCCESS && mosquitto_socket(m) >= 0 && mosquitto_want_write(m))
		rc = mosquitto_loop_write(m, 1);
	if (n > 1 && r > 0 && (fds[1].revents & POLLIN)) {
		uint64_t v;
		ssize_t rd = read(efd, &v, sizeof(v));
		(void)rd;  /* only clears the wake-up */
	}
	uint64_t now = now_ns();
	if (now - *last_misc > 500000000ULL) {
		*last_misc = now;
		if (rc == MOSQ_ERR_SUCCESS)
			rc = mosquitto_loop_misc(m);
	}
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN) {
		fprintf(stderr, "tc-loadgen: connection lost: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}


int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

double pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return NAN;
	size_t i = (size_t)ceil(p * (double)n);
	i = i ? i - 1 : 0;
	return (double)v[i < n ? i : n - 1] / 1e6;  /* ms */
}

void print_num(const char *key, double v, bool comma)
{
	if (isnan(v))
		printf("\"%s\": null%s", key, comma ? ", " : "");
	else
		printf("\"%s\": %.3f%s", key, v, comma ? ", " : "");
}

void print_lat(const char *key, uint64_t *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += (double)v[i];
	printf("\"%s\": {\"n\": %zu, ", key, n);
	print_num("mean_ms", n ? sum / (double)n / 1e6 : NAN, true);
	print_num("p50_ms", pct(v, n, 0.50), true);
	print_num("p90_ms", pct(v, n, 0.90), true);
	print_num("p99_ms", pct(v, n, 0.99), true);
	print_num("p999_ms", pct(v, n, 0.999), true);
	print_num("max_ms", n ? (double)v[n - 1] / 1e6 : NAN, false);
	printf("}");
}


struct proc_sample sample_pid(int pid)
{
	struct proc_sample s = { 0 };
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return s;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields after the ")" that closes comm: state is field 3; utime 14, stime 15. */
	char *p = strrchr(buf, ')');
	if (!p)
		return s;
	unsigned long long ut = 0, st = 0;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return s;
	s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "re");
	if (f) {
		unsigned long long run = 0, wait = 0;
		if (fscanf(f, "%llu %llu", &run, &wait) == 2)
			s.wait_s = (double)wait / 1e9;
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return s;
	while (fgets(buf, sizeof(buf), f)) {
		if (!strncmp(buf, "VmRSS:", 6))
			s.rss_kib = atol(buf + 6);
		else if (!strncmp(buf, "VmHWM:", 6))
			s.hwm_kib = atol(buf + 6);
	}
	fclose(f);
	s.ok = true;
	return s;
}

/* Pressure stall information: microseconds some task waited for a CPU. */
double psi_cpu_some_s(void)
{
	FILE *f = fopen("/proc/pressure/cpu", "re");
	unsigned long long total = 0;
	if (!f)
		return NAN;
	char line[256];
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "some ", 5)) {
			char *t = strstr(line, "total=");
			if (t)
				total = strtoull(t + 6, NULL, 10);
		}
	fclose(f);
	return (double)total / 1e6;
}

double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

