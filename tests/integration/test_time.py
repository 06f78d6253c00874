"""Timers follow elapsed time (SPEC 7, issue 10 "Time"): a jump of the wall
clock neither fires every escalation step at once nor holds them back, and
does not make supervised devices look silent; the STATUS= line keeps coming.

The wall clock is moved for the daemon only, by a small LD_PRELOAD shim built
here (WALLCLOCK_C): CLOCK_REALTIME, gettimeofday() and time() are offset by
nanoseconds the test writes to a shared file, read on every call; the
elapsed-time clocks (MONOTONIC, BOOTTIME) and their timers are left alone; an
absolute timerfd on the wall clock is armed, and re-armed when the offset
moves, at the real moment the shown time names (what the kernel does on a
real clock step). The machine's clock is shared and never touched, and a time
namespace cannot move CLOCK_REALTIME.

Why not libfaketime (installed, tried first): its timerfd_settime() shifts
absolute CLOCK_MONOTONIC and CLOCK_BOOTTIME timers by the wall-clock offset
as well, even with FAKETIME_DONT_FAKE_MONOTONIC=1, so after a +1 h offset
every sd-event timer is refused with EINVAL ("event loop failed: Invalid
argument") and a -1 h offset holds every monotonic timer back an hour: it
would break a correct daemon.

Caveat: the kernel sees no clock change. A TFD_TIMER_CANCEL_ON_SET timer (the
daemon's clock watch) is made to expire at once when the offset moves, the
next time the daemon reads a clock; the kernel would cancel it instead (read
gives ECANCELED, here a count). A daemon that keeps its deadlines on the
elapsed-time clock (DECISIONS.md: delays on CLOCK_BOOTTIME, wall time only
stored and shown) is judged fairly either way."""
import os
import struct
import subprocess
import threading
import time

import pytest

from conftest import PREFIX, wait_until
from test_escalation import alert_topic, policy
from test_systemd import NotifySocket

WALLCLOCK_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define ARMED_MAX 256
#define FD_MAX 65536

struct armed { int fd, flags; struct itimerspec wall; };

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_timerfd_create)(int, int);
static int (*real_timerfd_settime)(int, int, const struct itimerspec *, struct itimerspec *);
static int (*real_timerfd_gettime)(int, struct itimerspec *);
static volatile const int64_t *offset_ns;
static int64_t seen;
static struct armed armed[ARMED_MAX];
static int n_armed;
static unsigned char wall_fd[FD_MAX];

static void init(void)
{
	if (real_clock_gettime)
		return;
	real_timerfd_create = dlsym(RTLD_NEXT, "timerfd_create");
	real_timerfd_settime = dlsym(RTLD_NEXT, "timerfd_settime");
	real_timerfd_gettime = dlsym(RTLD_NEXT, "timerfd_gettime");
	const char *path = getenv("TELECARE_WALLCLOCK_FILE");
	if (path) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			void *p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
			if (p != MAP_FAILED)
				offset_ns = p;
			close(fd);
		}
	}
	real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
}

__attribute__((constructor)) static void wallclock_init(void) { init(); }

static int64_t offset(void) { return offset_ns ? *offset_ns : 0; }

static int is_wall(clockid_t c)
{
	return c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE || c == CLOCK_REALTIME_ALARM ||
	       c == CLOCK_TAI;
}

static void shift(struct timespec *t, int64_t ns)
{
	/* far-future sentinels (timesyncd-style watches use the largest time_t)
	 * stay where they are: no overflow */
	if (!ns || t->tv_sec > (time_t)(INT64_MAX / 1000000000 - 1000000000))
		return;
	int64_t v = (int64_t)t->tv_sec * 1000000000 + t->tv_nsec + ns;
	if (v < 1)
		v = 1;
	t->tv_sec = (time_t)(v / 1000000000);
	t->tv_nsec = (long)(v % 1000000000);
}

static void forget(int fd)
{
	for (int i = 0; i < n_armed; i++)
		if (armed[i].fd == fd) {
			armed[i] = armed[--n_armed];
			return;
		}
}

static int arm(int fd, int flags, const struct itimerspec *wall, struct itimerspec *old)
{
	struct itimerspec real = *wall;
	shift(&real.it_value, -offset());
	return real_timerfd_settime(fd, flags, &real, old);
}

/* The wall clock moved: an absolute wall-clock timer now names another real
 * moment (the kernel re-evaluates such timers on a clock step), and a
 * TFD_TIMER_CANCEL_ON_SET timer is told: the kernel cancels it (read gives
 * ECANCELED); here it expires at once instead (read gives a count), which a
 * reader that re-arms its watch on either treats the same. */
static void rearm_all(void)
{
	for (int i = 0; i < n_armed;) {
		struct itimerspec cur;
		if (real_timerfd_gettime(armed[i].fd, &cur) < 0 ||
		    (!cur.it_value.tv_sec && !cur.it_value.tv_nsec)) {
			armed[i] = armed[--n_armed];     /* fired or closed: nothing to move */
			continue;
		}
		if (armed[i].flags & TFD_TIMER_CANCEL_ON_SET) {
			struct itimerspec now = { .it_value = { .tv_sec = 0, .tv_nsec = 1 } };
			real_timerfd_settime(armed[i].fd, TFD_TIMER_ABSTIME, &now, NULL);
			armed[i] = armed[--n_armed];
			continue;
		}
		arm(armed[i].fd, armed[i].flags, &armed[i].wall, NULL);
		i++;
	}
}

int clock_gettime(clockid_t c, struct timespec *t)
{
	init();
	int r = real_clock_gettime(c, t);
	int64_t o = offset();
	if (o != __atomic_exchange_n(&seen, o, __ATOMIC_ACQ_REL))
		rearm_all();
	if (r == 0 && is_wall(c))
		shift(t, o);
	return r;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec t;
	int r = clock_gettime(CLOCK_REALTIME, &t);
	if (r == 0) {
		tv->tv_sec = t.tv_sec;
		tv->tv_usec = t.tv_nsec / 1000;
	}
	if (tz) {
		struct timezone *z = tz;
		z->tz_minuteswest = 0;
		z->tz_dsttime = 0;
	}
	return r;
}

time_t time(time_t *out)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	if (out)
		*out = t.tv_sec;
	return t.tv_sec;
}

int timerfd_create(int c, int flags)
{
	init();
	int fd = real_timerfd_create(c, flags);
	if (fd >= 0 && fd < FD_MAX) {
		forget(fd);
		wall_fd[fd] = (unsigned char)is_wall(c);
	}
	return fd;
}

int timerfd_settime(int fd, int flags, const struct itimerspec *v, struct itimerspec *old)
{
	init();
	if (fd < 0 || fd >= FD_MAX || !wall_fd[fd])
		return real_timerfd_settime(fd, flags, v, old);
	forget(fd);
	if (!v || !(flags & TFD_TIMER_ABSTIME) || (!v->it_value.tv_sec && !v->it_value.tv_nsec))
		return real_timerfd_settime(fd, flags, v, old);
	if (n_armed < ARMED_MAX) {
		armed[n_armed].fd = fd;
		armed[n_armed].flags = flags;
		armed[n_armed].wall = *v;
		n_armed++;
	}
	return arm(fd, flags, v, old);
}
"""


@pytest.fixture(scope="session")
def wallclock_lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("wallclock")
    src, lib = d / "wallclock.c", d / "wallclock.so"
    src.write_text(WALLCLOCK_C)
    p = subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Wno-nonnull-compare", "-shared", "-fPIC",
                        "-o", str(lib), str(src), "-ldl"], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.fail(f"cannot build the wall-clock shim: {p.stderr}", pytrace=False)
    return str(lib)


class WallClock:
    """The daemon's wall-clock offset, nanoseconds in a file it maps."""

    def __init__(self, path, lib):
        self.path = str(path)
        self.lib = lib
        self.offset = 0
        with open(self.path, "wb") as f:
            f.write(struct.pack("<q", 0))

    def jump(self, seconds):
        self.offset += seconds
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, struct.pack("<q", int(self.offset * 1e9)), 0)
        finally:
            os.close(fd)
        return time.monotonic()

    def env(self):
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {"LD_PRELOAD": self.lib, "TELECARE_WALLCLOCK_FILE": self.path,
                # a sanitizer build must accept a preloaded library before its runtime
                "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}


@pytest.fixture
def wallclock(tmp_path, wallclock_lib):
    return WallClock(tmp_path / "wallclock.offset", wallclock_lib)


def open_alerts(mqtt, worker, alarm, after=0):
    return [m for m in mqtt.messages(alert_topic(worker), after)
            if m.json()["alarm"] == alarm and m.json()["state"] == "open"]


def panic(mqtt, device, eid):
    r, _ = mqtt.event(device, {"id": eid, "type": "panic"})
    assert r["status"] == "stored", r
    return r["alarm"]


def test_wall_clock_jumps_neither_rush_nor_hold_escalation(daemon, mqtt, wallclock):
    d = daemon(start=False, extra_lines=policy("urgent", "worker:w-a wait 5s",
                                               "worker:w-b wait 5s"))
    d.start(env=wallclock.env())
    d.add_resident("r-1", "Anna Kowalska")
    d.add_device("p-1", "r-1")
    d.add_device("p-2", "r-1")
    for w in ("w-a", "w-b"):
        rc, _, err = d.ctl("worker", "add", w, "--name", f"Name {w}")
        assert rc == 0, err

    # +1 h, one second into step 1's five: step 2 is due 4 s after the jump
    first = panic(mqtt, "p-1", "e-1")
    a1 = mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == first)
    time.sleep(max(0.0, a1.at + 1.0 - time.monotonic()))
    t_fwd = wallclock.jump(+3600)
    b1 = mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["alarm"] == first, timeout=25)
    assert b1.json()["level"] == 2
    assert b1.at - t_fwd >= 2.5, (
        f"step 2 fired {b1.at - t_fwd:.1f}s after the wall clock jumped +1h, "
        f"{b1.at - a1.at:.1f}s after step 1 (wait 5s): the jump fired it early")

    # -1 h, one second into a new alarm's step 1: its step 2 must not wait an hour
    second = panic(mqtt, "p-2", "e-2")
    a2 = mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == second)
    time.sleep(max(0.0, a2.at + 1.0 - time.monotonic()))
    mark = mqtt.mark(alert_topic("w-b"))
    t_back = wallclock.jump(-3600)
    b2 = mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["alarm"] == second, timeout=25,
                       after=mark)
    assert b2.json()["level"] == 2
    assert b2.at - t_back >= 2.5, \
        f"step 2 fired {b2.at - t_back:.1f}s after the wall clock jumped -1h: early"
    # the first alarm's last step keeps repeating across the jump back
    again = mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["alarm"] == first and
                          m.json()["state"] == "open", timeout=25, after=mark)
    assert again.at - t_back < 25
    # and neither jump fired a burst: one step-2 alert per 5 s wait, give or take one
    span = time.monotonic() - b1.at
    n = len(open_alerts(mqtt, "w-b", first))
    assert n <= span / 5.0 + 2, f"{n} alerts for alarm {first} to w-b in {span:.0f}s (wait 5s)"


def test_wall_clock_jumps_make_no_device_silent(daemon, mqtt, wallclock):
    d = daemon(start=False, overrides={"supervision": {"grace": "1s"}})
    d.start(env=wallclock.env())
    d.add_resident("r-1")
    devices = [f"s-{i}" for i in range(4)]
    for dev in devices:
        d.add_device(dev, "r-1", "--heartbeat", "3s")
    stop = threading.Event()
    sent = {"n": 0}

    def heartbeats():
        # every device is heard every second: never near its 3 s + 1 s
        while not stop.is_set():
            for dev in devices:
                sent["n"] += 1
                mqtt.publish(f"{PREFIX}/dev/{dev}/event", {"id": f"hb-{sent['n']}", "type": "heartbeat"})
            stop.wait(1.0)

    def silenced():
        return [(a["alarm"], a["device"], a["types"], a["state"]) for a in d.ctl_json("alarm", "list")
                if "connection_lost" in a["types"] or a["device"] == "telecared"]

    problems, reported = [], set()
    t = threading.Thread(target=heartbeats, daemon=True)
    t.start()
    try:
        time.sleep(2.0)
        for step in (+3600, -3600):
            wallclock.jump(step)
            # events are still taken and receipted after the jump
            try:
                r, _ = mqtt.event("s-0", {"id": f"probe{step:+d}", "type": "heartbeat"}, timeout=10)
                if r["status"] != "stored":
                    problems.append(f"after a {step:+d}s jump an event got {r}")
            except AssertionError as e:
                problems.append(f"after a {step:+d}s jump an event got no receipt: {e}")
            time.sleep(6.0)
            not_ok = {dev: s for dev in devices
                      if (s := d.ctl_json("device", "show", dev)["supervision"]) != "ok"}
            if not_ok:
                problems.append(f"{step:+d}s jump: devices heard every second are {not_ok}")
            new = [a for a in silenced() if a[0] not in reported]
            reported.update(a[0] for a in new)
            if new:
                problems.append(f"{step:+d}s jump: connection_lost alarms {new}")
    finally:
        stop.set()
        t.join(5)
    assert not problems, "; ".join(problems)


def test_status_line_keeps_coming(daemon, tmp_path):
    notify = NotifySocket(tmp_path / "notify.sock")
    try:
        d = daemon(start=False)
        d.start(env={"NOTIFY_SOCKET": notify.path})
        ready = wait_until(lambda: notify.seen("READY=1"), 10, "READY=1")[0]
        time.sleep(21.0)
        with notify._lock:
            times = [t for t, x in notify.lines if x.startswith("STATUS=") and t >= ready - 1]
        gaps = [b - a for a, b in zip([ready] + times, times + [time.monotonic()])]
        assert len(times) >= 4 and max(gaps) <= 8.0, (
            f"{len(times)} STATUS= lines in the {time.monotonic() - ready:.0f}s after READY=1 "
            f"(one per 5 s expected); longest silence {max(gaps):.1f}s")
        assert d.proc.poll() is None
    finally:
        notify.close()
