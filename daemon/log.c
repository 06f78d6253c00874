/* Logging: to the journal with TELECARE_* fields when systemd started us,
 * to stderr otherwise. Every line about a device, alarm or worker names it,
 * in the message and (in the journal) as a field, so that
 * `journalctl TELECARE_ALARM=42` tells one alarm's story. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "telecared.h"
#include "telecare/timefmt.h"

static bool use_journal;

void log_init(void)
{
	/* systemd sets JOURNAL_STREAM to the device:inode of the stream it gave us. */
	const char *js = getenv("JOURNAL_STREAM");
	struct stat st;
	unsigned long long dev, ino;
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		use_journal = true;
}

static const char *prio_name(int prio)
{
	static const char *names[] = { "emerg", "alert", "crit", "error", "warning",
	                               "notice", "info", "debug" };
	return (prio >= 0 && prio <= 7) ? names[prio] : "info";
}

void log_full(int prio, const char *device, int64_t alarm, const char *worker,
              const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (len >= (int)sizeof(msg))   /* cut: never in the middle of a character */
		tc_utf8_trim(msg, strlen(msg));

	if (!use_journal) {
		char ts[TC_TIME_STRLEN];
		tc_time_format(tc_now_ms(), ts, sizeof(ts));
		fprintf(stderr, "%s %s: %s\n", ts, prio_name(prio), msg);
		return;
	}

	char f_msg[1100], f_prio[16], f_dev[96], f_alarm[48], f_worker[96];
	struct iovec iov[5];
	int n = 0;
	snprintf(f_msg, sizeof(f_msg), "MESSAGE=%s", msg);
	iov[n++] = (struct iovec){ f_msg, strlen(f_msg) };
	snprintf(f_prio, sizeof(f_prio), "PRIORITY=%d", prio);
	iov[n++] = (struct iovec){ f_prio, strlen(f_prio) };
	if (device) {
		snprintf(f_dev, sizeof(f_dev), "TELECARE_DEVICE=%s", device);
		iov[n++] = (struct iovec){ f_dev, strlen(f_dev) };
	}
	if (alarm > 0) {
		snprintf(f_alarm, sizeof(f_alarm), "TELECARE_ALARM=%lld", (long long)alarm);
		iov[n++] = (struct iovec){ f_alarm, strlen(f_alarm) };
	}
	if (worker) {
		snprintf(f_worker, sizeof(f_worker), "TELECARE_WORKER=%s", worker);
		iov[n++] = (struct iovec){ f_worker, strlen(f_worker) };
	}
	sd_journal_sendv(iov, n);
}
