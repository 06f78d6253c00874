/* What tc-loadgen's modes share: the clock, a broker client and its I/O
 * pass, percentiles, and samples of other processes. */
#ifndef TC_LOADGEN_LG_H
#define TC_LOADGEN_LG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

#define LG_HOST "127.0.0.1"

uint64_t now_ns(void);   /* CLOCK_MONOTONIC, the clock every latency is taken on */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void *xcalloc(size_t n, size_t size);

/* A connected MQTT 3.1.1 client on 127.0.0.1:port (clean session, TCP_NODELAY,
 * at most inflight unacknowledged QoS 1 publishes); exits on failure. */
struct mosquitto *lg_client(const char *role, int i, void *ud, int port, int inflight);
/* One pass of a client's I/O: wait at most timeout_ns for its socket (or
 * efd, if >= 0), then read, write and keep alive. -1: the connection is gone. */
int pump(struct mosquitto *m, int efd, int64_t timeout_ns, uint64_t *last_misc);

int cmp_u64(const void *a, const void *b);
double pct(const uint64_t *v, size_t n, double p);               /* ms, v sorted, in ns */
void print_num(const char *key, double v, bool comma);           /* null for NaN */
void print_lat(const char *key, uint64_t *v, size_t n);          /* sorts v */

struct proc_sample {
	double cpu_s;       /* utime + stime */
	double wait_s;      /* runnable but waiting for a CPU (schedstat) */
	long rss_kib, hwm_kib;
	bool ok;
};
struct proc_sample sample_pid(int pid);
double psi_cpu_some_s(void);   /* seconds some task waited for a CPU, machine-wide */
double self_cpu_s(void);

/* Modes in their own files. */
int storm_main(int argc, char **argv);
int board_main(int argc, char **argv);

#endif
