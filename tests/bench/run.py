#!/usr/bin/python3
"""The telecared benchmarks (issue 6): run every scenario, print a table,
write JSON.

    /usr/bin/python3 tests/bench/run.py [--quick] [--repeat N] [--out FILE] [--only LIST]

scripts/bench.sh builds what this needs (build-bench/) and runs it. Real
parts only: a mosquitto on a free 127.0.0.1 port with a configuration for
load, the real telecared on a real SQLite file on disk, and tc-loadgen (C,
libmosquitto) simulating the devices and reading a worker's alerts.

Scenarios, each repeat in this order (so each is measured in the same run as
its baseline):
  relay     the broker relaying QoS 1 publisher -> subscriber, no daemon: the ceiling
  ingest    devices publish events and wait for receipts; the highest rate
            that keeps up, and its ratio to relay
  latency   event -> receipt at 500, 2,000, 5,000 events/s; alarm -> first
            worker alert at 500 alarms/s
  scale     100,000 registered devices, heartbeats every 15 min, some alarms:
            the daemon's CPU share and RSS
  startup   100,000 devices, 1,000,000 events, 1,000 open alarms: exec -> READY=1
Mass events (issue 9; `--only mass` for all five), each on a fresh daemon:
  blackout  20,000 registered base units send power_loss within 5 s while 20
            pendants send a fall: the falls' first alert, the loop's worst
            dispatch, status answer times, alerts per worker in the first
            minute, open alarms and incidents, RSS
  strangers 50,000 unregistered ids send panic within 5 s: the same figures
  restart   the blackout, kill -9 half-way, restart: READY=1, then the same
            figures for the minute after
  burst     20,000 events from 100 devices as fast as the broker takes them,
            never resent: all receipted stored? time to the last receipt, and
            the ratio to the broker alone relaying the same burst
  flap      1,000 open alarms, the broker restarted 5 times in 30 s: the
            outbox and RSS bounded, the board exactly the open alarms after
Others, in their own files:
  dc09      1,000 alarm panels on persistent TCP connections (dc09_bench.py, issue 13)
  console   2,000 heartbeats/s and panics with 50 SSE streams and 10 pollers on
            the HTTP console, against the same without them (console_bench.py,
            issue 12)
  report    the report over the start-up database's whole history, and a
            10,000-row events read, under a light load: the loop's worst gap
            (console_bench.py, issue 12)

Numbers are printed, not asserted: the exit status is 0 whenever the runs
completed, whether or not a target was met (the table says which).
Standard library only; run with Debian's /usr/bin/python3.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MOSQUITTO = os.environ.get("TELECARE_MOSQUITTO", "/usr/sbin/mosquitto")

TARGETS = {
    "ingest_per_s": (">=", 10000, "events/s"),
    "ingest_ratio": (">=", 0.4, "of relay"),
    "receipt_p99_ms_at_2000": ("<", 10, "ms"),
    "alert_p99_ms_at_500": ("<", 5, "ms"),
    "scale_cpu_pct": ("<", 5, "% of a core"),
    "scale_rss_mib": ("<", 100, "MiB"),
    "startup_s": ("<", 2, "s"),
    "burst_ratio": (">=", 0.4, "of relay"),
    "flap_board_wrong": ("<=", 0, "alarms"),
}
for _s in ("blackout", "strangers", "restart"):
    TARGETS.update({f"{_s}_fall_p99_ms": ("<", 250, "ms"), f"{_s}_loop_worst_ms": ("<", 100, "ms"),
                    f"{_s}_status_p99_ms": ("<", 250, "ms"),
                    f"{_s}_incident_alerts": ("<=", 10, "per worker"), f"{_s}_rss_mib": ("<", 200, "MiB")})

# Full and quick sizes. Durations in seconds.
SIZES = {
    "full": dict(repeat=3, closed_s=4, open_s=4, open_steps=4, lat_s=6, alarm_s=6,
                 scale_s=30, devices=100000, events=1000000, open_alarms=1000,
                 resolved_alarms=10000,
                 # issue 9: storms within storm_s; alerts counted over observe_s (a minute)
                 storm_s=5, falls=20, observe_s=60, blackout_n=20000, strangers_n=50000,
                 burst_n=20000, burst_devices=100, flap_alarms=1000, flap_restarts=5, flap_s=30),
    "quick": dict(repeat=1, closed_s=2, open_s=2, open_steps=3, lat_s=2, alarm_s=2,
                  scale_s=10, devices=100000, events=200000, open_alarms=1000,
                  resolved_alarms=2000,
                  storm_s=5, falls=20, observe_s=10, blackout_n=20000, strangers_n=50000,
                  burst_n=20000, burst_devices=100, flap_alarms=1000, flap_restarts=5, flap_s=15),
}

WINDOW = 1000          # closed loop: messages in flight (devices waiting for an answer)
PUBS = 2               # publishing connections of the load generator
INGEST_DEVICES = 10000
HEARTBEAT_S = 900      # every 15 minutes
SCALE_ALARM_RATE = 0.5 # alarms/s during the scale run
WORKER = "w-1"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what, every=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


# --------------------------------------------------------------------------
# processes


class Broker:
    """mosquitto on a free loopback port, configured for load."""

    def __init__(self, workdir):
        self.port = free_port()
        self.dir = os.path.join(workdir, f"broker-{self.port}")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(BROKER_CONF.format(port=self.port))
        self.logf = open(os.path.join(self.dir, "mosquitto.log"), "wb")
        self._start()

    def restart(self):
        """Stop (SIGTERM) and start again on the same port. persistence is
        off: the new broker has no sessions and no retained messages."""
        stop_proc(self.proc)
        self._start()

    def _start(self):
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)

        def accepting():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(accepting, 10, "mosquitto")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        stop_proc(self.proc)
        self.logf.close()


BROKER_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
"""


def stop_proc(proc, timeout=15):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(timeout)


DAEMON_CONF = """\
[mqtt]
host = 127.0.0.1
port = {port}
client_id = telecared-bench-{n}
keepalive = 30
{mqtt_extra}
[store]
path = {db}

[control]
socket = {sock}

# no console: its default port may be taken, and nothing here measures it
[http]
listen =

[alarms]
unknown_devices = alarm

[policy bench]
priorities = 1, 2, 3
step = on_duty:* wait 60s
"""


class Daemon:
    """telecared in the foreground on db, with a notify socket of ours, so
    that exec -> READY=1 can be timed."""
    count = 0

    def __init__(self, bench, db, port, mqtt_extra=""):
        Daemon.count += 1
        n = Daemon.count
        self.bench = bench
        self.dir = os.path.join(bench.workdir, f"daemon-{n}")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "telecared.conf")
        self.sock = os.path.join(self.dir, "control.sock")
        with open(self.conf, "w") as f:
            f.write(DAEMON_CONF.format(port=port, n=n, db=db, sock=self.sock, mqtt_extra=mqtt_extra))
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.logpath = os.path.join(self.dir, "telecared.log")
        self.logf = open(self.logpath, "wb")
        self.ready_s = self._start()

    def _start(self):
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("JOURNAL_STREAM", None)
        env.pop("WATCHDOG_USEC", None)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([self.bench.telecared, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=env)
        return self._wait_ready(t0, 60)

    def kill9(self):
        self.proc.kill()
        self.proc.wait()

    def restart(self):
        """Start again on the same configuration, database and broker
        session (same client id) after kill9(): exec -> READY=1 in seconds."""
        self.logf.write(b"---- restarted by the benchmark ----\n")
        self.logf.flush()
        self.ready_s = self._start()
        return self.ready_s

    def _wait_ready(self, t0, timeout):
        self.notify.settimeout(0.1)
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            try:
                data = self.notify.recv(65536)
            except socket.timeout:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"telecared exited with {self.proc.returncode}; "
                                       f"see {self.logpath}")
                continue
            if b"READY=1" in data.split(b"\n"):
                ready = time.monotonic() - t0
                # Nobody reads STATUS= from here on: close, so that the
                # daemon's later notifications fail at once instead of
                # filling a queue nobody drains.
                self.notify.close()
                os.unlink(self.notify_path)
                return ready
        raise RuntimeError(f"telecared: no READY=1 within {timeout}s; see {self.logpath}")

    @property
    def pid(self):
        return self.proc.pid

    def status(self):
        """The daemon's own counters (control protocol `status`), or None."""
        return self.request("status")

    def request(self, cmd, args=None, timeout=10):
        """One control-protocol command's data, or None (no answer, not ok)."""
        try:
            return control_request(self.sock, cmd, args, timeout)[0]
        except (OSError, ValueError):
            return None

    def log_problems(self, limit=12):
        """How many of the daemon's log lines (in the foreground: "TIME
        LEVEL: message") are errors or worse, and the first few; warnings
        are only counted (every alarm that opens is one)."""
        out, n, warnings = [], 0, 0
        try:
            with open(self.logpath, "rb") as f:
                for raw in f:
                    line = raw.decode("utf-8", "replace").rstrip()
                    level = line.split(" ", 2)[1] if line.count(" ") >= 2 else ""
                    warnings += level == "warning:"
                    if level in ("emerg:", "alert:", "crit:", "error:"):
                        n += 1
                        if len(out) < limit:
                            out.append(line[:300])
        except OSError:
            pass
        return {"errors": n, "first": out, "warnings": warnings}

    def rss_kib(self):
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self):
        rc = stop_proc(self.proc)
        self.notify.close()
        self.logf.close()
        return rc


def control_request(path, cmd, args=None, timeout=10):
    """(data, seconds): one command over the control socket, timed from
    connect to the whole answer line (CLOCK_MONOTONIC). data is None when
    the answer is not ok."""
    req = {"cmd": cmd}
    if args is not None:
        req["args"] = args
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
        c.settimeout(timeout)
        c.connect(path)
        c.sendall(json.dumps(req).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = c.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    took = time.monotonic() - t0
    answer = json.loads(buf)
    return (answer.get("data") if answer.get("ok") else None), took


# --------------------------------------------------------------------------
# the database: schema from the daemon itself, rows written directly


def create_schema(bench, db):
    """Let telecared create (migrate) an empty database, so that the schema
    is exactly the one of the binary under test."""
    d = Daemon(bench, db, free_port())  # nothing listens there: it just retries
    d.stop()


def device_id(i):
    return f"d{i:06d}"


def fill_registry(db, devices, now_ms):
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    teams = ["north", "south", "east", "west"]
    with con:
        con.executemany(
            "INSERT INTO residents(id, name, address, phone, team, notes, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            ((f"r{i:06d}", f"Resident {i}", f"ul. Testowa {i % 200 + 1}/{i % 40 + 1}, Kraków",
              f"+48 600 {i:06d}", teams[i % 4], "key safe 1234; diabetic", now_ms)
             for i in range(devices)))
        con.executemany(
            "INSERT INTO devices(id, resident_id, kind, heartbeat_ms, test, created_at)"
            " VALUES (?,?,?,?,?,?)",
            ((device_id(i), f"r{i:06d}", "pendant", HEARTBEAT_S * 1000, 0, now_ms)
             for i in range(devices)))
        con.execute("INSERT INTO workers(id, name, team, phone, webhook, created_at)"
                    " VALUES (?,?,?,?,?,?)",
                    (WORKER, "Anna Nowak", "north,south,east,west", "+48 600 000 001", None, now_ms))
        con.execute("INSERT INTO shifts(id, worker_id, kind, created_at) VALUES (1, ?, 'always', ?)",
                    (WORKER, now_ms))
    con.close()


def fill_history(db, devices, events, open_alarms, resolved_alarms, now_ms):
    """events stored events (heartbeats, and the alarm events of the alarms),
    open_alarms unresolved alarms mid-escalation, resolved_alarms closed ones."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    n_alarms = open_alarms + resolved_alarms
    start = now_ms - 30 * 86400 * 1000
    step = max(1, (now_ms - start) // max(1, events))
    with con:
        # alarm k belongs to device k * 37 % devices (spread over the fleet);
        # its event is one of the events rows.
        alarm_dev = [(k * 37) % devices for k in range(n_alarms)]
        alarm_event = {}
        for k in range(n_alarms):
            alarm_event[events - n_alarms + k] = k

        def rows():
            for s in range(events):
                k = alarm_event.get(s)
                if k is None:
                    dev = s % devices
                    yield (s + 1, device_id(dev), str(s), "heartbeat", start + s * step, None, 1,
                           None, 87, -70,
                           f'{{"id":{s},"type":"heartbeat","battery":87,"rssi":-70}}')
                else:
                    yield (s + 1, device_id(alarm_dev[k]), str(s), "panic", start + s * step, None,
                           1, k + 1, 87, -70, f'{{"id":{s},"type":"panic","battery":87,"rssi":-70}}')
        con.executemany(
            "INSERT INTO events(seq, device_id, eid, type, received_at, device_ts, known,"
            " alarm_id, battery, rssi, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows())

        def alarms():
            for k in range(n_alarms):
                dev = device_id(alarm_dev[k])
                opened = start + (events - n_alarms + k) * step
                is_open = k >= resolved_alarms
                esc = json.dumps({"alerted": [WORKER], "step": [WORKER], "declined": []})
                yield (k + 1, dev, "r" + dev[1:], dev + "/care", 1, '["panic"]',
                       "open" if is_open else "resolved", 0, 0, 0, None, "bench", opened,
                       None, None, None if is_open else opened + 120000,
                       None if is_open else "assisted_by_phone", opened, 0,
                       now_ms + 3600 * 1000 if is_open else None, None, esc, None, None)
        con.executemany(
            "INSERT INTO alarms(id, device_id, resident_id, akey, priority, types, state, test,"
            " technical, step, loc, policy, opened_at, acked_at, acked_by, resolved_at, outcome,"
            " updated_at, round, next_at, policy_def, esc, acked_by_id, first_ack_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", alarms())

        def timeline():
            for k in range(n_alarms):
                opened = start + (events - n_alarms + k) * step
                dev = device_id(alarm_dev[k])
                yield (k + 1, opened, "opened", dev, "panic, priority 1")
                yield (k + 1, opened, "alerted", "telecared", f"worker {WORKER} via mqtt, step 1")
                if k < resolved_alarms:
                    yield (k + 1, opened + 120000, "resolved", WORKER, "assisted_by_phone")
        con.executemany("INSERT INTO timeline(alarm_id, at, what, actor, detail) VALUES (?,?,?,?,?)",
                        timeline())
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


# --------------------------------------------------------------------------
# the load generator


def loadgen(bench, mode, port, pids=(), **kw):
    args = [bench.loadgen, mode, "--port", str(port), "--pubs", str(PUBS)]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        args.append("--" + k.replace("_", "-"))
        if v is not True:
            args.append(str(v))
    for name, pid in pids:
        args += ["--pid", f"{name}={pid}"]
    timeout = 60 + float(kw.get("duration", 5)) + float(kw.get("warmup", 1)) + float(kw.get("drain", 5))
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"tc-loadgen {' '.join(args[1:])} failed ({p.returncode}):\n{p.stderr}")
    if p.stderr.strip():
        log("  tc-loadgen: " + p.stderr.strip().replace("\n", "\n  tc-loadgen: "))
    r = json.loads(p.stdout)
    r["args"] = args[1:]
    return r


def run_wait_seconds(pid):
    """Seconds pid was runnable but waiting for a CPU (schedstat)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def psi_cpu_seconds():
    """Seconds some task on the machine waited for a CPU (PSI), or None."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, IndexError, ValueError):
        pass
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def settle(pids, timeout=30):
    """Wait until the daemon and the broker are idle (under 10 % of a core
    over half a second): a run that fell behind leaves a backlog the next
    one must not inherit."""
    deadline = time.monotonic() + timeout
    last = {pid: cpu_seconds(pid) for _, pid in pids}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = {pid: cpu_seconds(pid) for _, pid in pids}
        busy = [pid for pid in now if now[pid] is not None and last[pid] is not None
                and now[pid] - last[pid] > 0.05]
        if not busy:
            return
        last = now
    log("  (still busy after 30 s: the next measurement starts on a backlog)")


def keeps_up(r):
    """Receipts keep pace and latency stays bounded: everything sent in the
    window was answered, the answer rate matches the send rate, p99 is under
    100 ms and the second half of the window is not slower than the first."""
    lat, h1, h2 = r["latency"], r["latency_first_half"], r["latency_second_half"]
    if r["lost"] or r["sent"] == 0 or lat["p99_ms"] is None:
        return False
    st = r.get("status")
    if st and (st["duplicate"] or st["rejected"] or st["other"]):
        return False  # every event must be a new one, stored
    if r["answered_per_s"] < 0.97 * r["sent_per_s"]:
        return False
    if lat["p99_ms"] > 100:
        return False
    if h1["p50_ms"] is not None and h2["p50_ms"] is not None and h2["p50_ms"] > 2 * h1["p50_ms"] + 5:
        return False
    return True


def capacity(bench, mode, port, pids, sz, devices, profile=None):
    """Closed loop first (how much gets through with WINDOW in flight), then
    open-loop rates from there, bisecting: the highest one that keeps up."""
    common = dict(devices=devices, warmup=1, drain=10)
    perf = profile(sz["closed_s"]) if profile else None
    closed = loadgen(bench, mode, port, pids, window=WINDOW, duration=sz["closed_s"], **common)
    if perf:
        perf.wait(60)
    c = closed["answered_per_s"]
    log(f"  {mode} closed loop (window {WINDOW}): {c:,.0f}/s, p99 {closed['latency']['p99_ms']:.1f} ms")
    steps, lo, hi = [], None, None    # lo: highest rate that kept up; hi: lowest that did not
    # A closed loop with 1,000 in flight runs at capacity with ~100 ms of
    # queue (Little's law); an open loop at that rate rarely keeps p99 under
    # 100 ms, so the search starts a little below it.
    rate = c * 0.9
    for _ in range(sz["open_steps"]):
        settle(pids)
        r = loadgen(bench, mode, port, pids, rate=f"{rate:.0f}", duration=sz["open_s"], **common)
        ok = keeps_up(r)
        r["keeps_up"] = ok
        steps.append(r)
        log(f"  {mode} open loop {rate:,.0f}/s: answered {r['answered_per_s']:,.0f}/s, "
            f"p50 {r['latency']['p50_ms']} p99 {r['latency']['p99_ms']} ms, lost {r['lost']}"
            f" -> {'keeps up' if ok else 'falls behind'}")
        if ok:
            lo = rate if lo is None or rate > lo else lo
        else:
            hi = rate if hi is None or rate < hi else hi
        if lo is not None and hi is not None:
            if hi / lo < 1.04:
                break
            rate = (lo + hi) / 2
        else:
            rate = rate * 1.1 if ok else rate * 0.85
    ok_steps = [r for r in steps if r["keeps_up"]]
    best = max(ok_steps, key=lambda r: r["answered_per_s"]) if ok_steps else None
    return {"closed": closed, "steps": steps,
            "sustained_per_s": best["answered_per_s"] if best else None,
            "sustained": best}


def fixed_rates(bench, mode, port, pids, sz, rates):
    """Latency at fixed open-loop rates."""
    out = {}
    for rate in rates:
        r = loadgen(bench, mode, port, pids, rate=rate, devices=INGEST_DEVICES,
                    duration=sz["lat_s"], warmup=1, drain=10)
        r["keeps_up"] = keeps_up(r)
        out[str(rate)] = r
        log(f"  {mode} at {rate}/s: p50 {r['latency']['p50_ms']} p99 {r['latency']['p99_ms']}"
            f" max {r['latency']['max_ms']} ms, lost {r['lost']}")
    return out


# --------------------------------------------------------------------------
# scenarios


class Bench:
    def __init__(self, args):
        self.args = args
        self.sz = dict(SIZES["quick" if args.quick else "full"])
        if args.repeat:
            self.sz["repeat"] = args.repeat
        b = os.path.abspath(args.build)
        self.telecared = os.path.join(b, "telecared")
        self.loadgen = args.loadgen or next(
            (p for p in (os.path.join(b, "tests", "bench", "tc-loadgen"),
                         os.path.join(b, "bench-standalone", "tc-loadgen")) if os.path.exists(p)),
            None)
        for exe in (self.telecared, self.loadgen):
            if not exe or not os.access(exe, os.X_OK):
                raise SystemExit(f"run.py: missing {exe or 'tc-loadgen'}: build with scripts/bench.sh")
        base = args.workdir or tempfile.gettempdir()
        self.workdir = tempfile.mkdtemp(prefix="telecare-bench-", dir=base)

    def template(self):
        """100,000 residents and devices, one worker on duty."""
        path = os.path.join(self.workdir, "template.db")
        create_schema(self, path)
        t = time.monotonic()
        fill_registry(path, self.sz["devices"], now_ms())
        log(f"  template database: {self.sz['devices']:,} devices in {time.monotonic() - t:.1f}s")
        return path

    def fresh_db(self, template, name):
        path = os.path.join(self.workdir, name + ".db")
        for ext in ("-wal", "-shm", ""):
            if os.path.exists(path + ext):
                os.unlink(path + ext)
        shutil.copyfile(template, path)
        # On disk before the daemon starts: the kernel's writeback of a fresh
        # copy would otherwise land in one of the daemon's commits.
        with open(path, "rb+") as f:
            os.fsync(f.fileno())
        return path


def now_ms():
    return int(time.time() * 1000)


LAT_RATES = (500, 2000, 5000)


def scenario_relay(bench):
    broker = Broker(bench.workdir)
    try:
        pids = [("broker", broker.pid)]
        r = capacity(bench, "relay", broker.port, pids, bench.sz, INGEST_DEVICES)
        # the same rates as the receipt latencies: the floor this machine sets
        r["fixed"] = fixed_rates(bench, "relay", broker.port, pids, bench.sz, LAT_RATES)
        return r
    finally:
        broker.stop()


def with_daemon(bench, db, fn):
    broker = Broker(bench.workdir)
    d = None
    try:
        d = Daemon(bench, db, broker.port)
        return fn(broker, d)
    finally:
        rc = d.stop() if d else None
        broker.stop()
        if d and rc not in (0, None):
            log(f"  telecared exited with {rc}; log {d.logpath}")


def scenario_ingest(bench, template, profile_to=None):
    db = bench.fresh_db(template, "ingest")

    def run(b, d):
        prof = None
        if profile_to and not shutil.which("perf"):
            log("  profile: no perf here (Debian: linux-perf); skipped")
        elif profile_to:
            def prof(seconds):
                # cpu-clock: virtual machines rarely expose hardware counters
                return subprocess.Popen(
                    ["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g",
                     "--call-graph", "dwarf,16384", "-p", str(d.pid), "-o", profile_to,
                     "--", "sleep", str(max(1, seconds - 1))],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        r = capacity(bench, "ingest", b.port, [("telecared", d.pid), ("broker", b.pid)],
                     bench.sz, INGEST_DEVICES, profile=prof)
        st = d.status()
        r["daemon_status"] = st
        counts = (st or {}).get("counts", {})
        if counts:
            log(f"  telecared's own count: {counts.get('events_stored')} stored,"
                f" {counts.get('receipts_shed', 0)} receipts shed,"
                f" {counts.get('events_flood_dropped', 0)} dropped by the per-device rate")
        return r
    return with_daemon(bench, db, run)


def scenario_latency(bench, template):
    db = bench.fresh_db(template, "latency")
    sz = bench.sz

    def run(b, d):
        pids = [("telecared", d.pid), ("broker", b.pid)]
        out = {f"receipt_{k}": v
               for k, v in fixed_rates(bench, "ingest", b.port, pids, sz, LAT_RATES).items()}
        # 500 alarms/s, each on its own device (devices 50,000 and up, never
        # used by the heartbeats above), one worker on duty: on_duty:* wait 60s.
        r = loadgen(bench, "ingest", b.port, pids, alarm_rate=500, devices=1,
                    dev_base=50000, alarm_base=0, alert_worker=WORKER,
                    duration=sz["alarm_s"], warmup=1, drain=10)
        out["alarm_500"] = r
        a = r["alert_latency"]
        log(f"  alerts at 500 alarms/s: p50 {a['p50_ms']} p99 {a['p99_ms']} max {a['max_ms']} ms,"
            f" missing {r['alerts_missing']}")
        return out
    return with_daemon(bench, db, run)


def scenario_scale(bench, template):
    db = bench.fresh_db(template, "scale")
    sz = bench.sz
    n = sz["devices"]

    def run(b, d):
        idle_rss = d.rss_kib()
        # Every device heard once first (a closed loop over all of them), so
        # that what the daemon keeps per device that has spoken (last seen,
        # supervision, rate buckets) is all there, as after 15 minutes of
        # real heartbeats. Then the measured window.
        warm = loadgen(bench, "ingest", b.port, [("telecared", d.pid)], window=WINDOW,
                       devices=n, duration=f"{n / 6000:.1f}", warmup=0, drain=10)
        settle([("telecared", d.pid), ("broker", b.pid)])
        rate = n / HEARTBEAT_S
        # Heartbeats cycle over all devices in order: at this rate each is
        # heard every 15 minutes. Alarms use devices from 90,000 up.
        r = loadgen(bench, "ingest", b.port, [("telecared", d.pid), ("broker", b.pid)],
                    rate=f"{rate:.3f}", alarm_rate=SCALE_ALARM_RATE, devices=min(n, 90000),
                    alarm_base=90000, alert_worker=WORKER, duration=sz["scale_s"], warmup=2,
                    drain=10)
        r["rss_idle_kib"] = idle_rss
        r["ready_s"] = d.ready_s
        r["warm"] = {"sent": warm["sent"], "answered": warm["answered"], "devices": n}
        r["daemon_status"] = d.status()
        p = r["procs"]["telecared"]
        log(f"  scale: every device heard once ({warm['answered']:,} events), then"
            f" {rate:.0f} heartbeats/s + {SCALE_ALARM_RATE} alarms/s over {n:,} devices:"
            f" telecared {p['cpu_pct']:.2f}% CPU, RSS {p['rss_kib'] / 1024:.1f} MiB"
            f" (idle {idle_rss / 1024:.1f}, peak {p['hwm_kib'] / 1024:.1f})")
        return r
    return with_daemon(bench, db, run)


def scenario_startup(bench, bigdb):
    broker = Broker(bench.workdir)
    try:
        d = Daemon(bench, bigdb, broker.port)
        rss = d.rss_kib()
        d.stop()
    finally:
        broker.stop()
    log(f"  start-up: READY=1 after {d.ready_s:.3f}s, RSS {rss / 1024:.1f} MiB")
    return {"ready_s": d.ready_s, "rss_kib": rss}


# --------------------------------------------------------------------------
# mass events (issue 9): blackout, strangers, restart in the storm, burst,
# broker flap. Each on a fresh daemon and broker, so the daemon's loop.worst_ms
# (the longest single dispatch since it started) is this scenario's.

TEAM_WORKERS = [("w-north", "north"), ("w-south", "south"), ("w-east", "east"), ("w-west", "west")]
FALL_BASE = 90000       # the falls' pendants: d090000..., residents in the four teams
FLAP_BASE = 80000       # the flap's 1,000 panics: d080000...
PROBE_DEVICE = "d099999"
STATUS_EVERY_S = 0.2


def add_team_workers(db, now_ms):
    """Four more workers on duty, one per team, beside w-1 (every team): the
    falls' residents (teams in turn) each have one worker of their own."""
    con = sqlite3.connect(db)
    with con:
        for i, (w, team) in enumerate(TEAM_WORKERS):
            con.execute("INSERT INTO workers(id, name, team, phone, webhook, created_at)"
                        " VALUES (?,?,?,?,?,?)", (w, f"Worker {team}", team, f"+48 600 000 10{i}", None,
                                                 now_ms))
            con.execute("INSERT INTO shifts(id, worker_id, kind, created_at) VALUES (?, ?, 'always', ?)",
                        (10 + i, w, now_ms))
    con.close()


class StatusSampler:
    """Asks the daemon for `status` every STATUS_EVERY_S on a new control
    connection, as telecarectl would, and times each answer (connect to the
    whole line, CLOCK_MONOTONIC). Also samples its VmRSS. A sample that gets
    no answer within 30 s counts as such; while no daemon listens (a
    restart) the failed connects are counted apart."""

    def __init__(self, d, every=STATUS_EVERY_S):
        self.d = d
        self.every = every
        self.samples = []      # (t, answer_s or None, status subset or None, rss_kib, cpu)
        # cpu: (pid, its CPU seconds, its seconds waiting for a CPU, the machine's PSI)
        self.down = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join(60)

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            rss = self.d.rss_kib()
            pid = self.d.pid
            cpu = (pid, cpu_seconds(pid), run_wait_seconds(pid), psi_cpu_seconds())
            try:
                data, took = control_request(self.d.sock, "status", None, timeout=30)
            except (ConnectionRefusedError, FileNotFoundError):
                self.down += 1
                self._stop.wait(self.every)
                continue
            except (OSError, ValueError):
                self.samples.append((t, None, None, rss, cpu))
                continue
            sub = None
            if data:
                ob = data.get("outbox", {})
                sub = {"inflight": ob.get("inflight"),
                       "queued": sum((ob.get("queued") or {}).values()),
                       "receipts_queued": (ob.get("queued") or {}).get("receipt"),
                       "alarms_open": data.get("counts", {}).get("alarms_open"),
                       "worst_ms": data.get("loop", {}).get("worst_ms"),
                       "connected": data.get("mqtt", {}).get("connected")}
            self.samples.append((t, took, sub, rss, cpu))
            self._stop.wait(max(0.0, self.every - (time.monotonic() - t)))

    def summary(self, t_from=None, t_to=None):
        sel = [x for x in self.samples if (t_from is None or x[0] >= t_from)
               and (t_to is None or x[0] < t_to)]
        ms = sorted(x[1] * 1000 for x in sel if x[1] is not None)
        subs = [x[2] for x in sel if x[2]]
        rss = [x[3] for x in sel if x[3]]

        def q(p):
            if not ms:
                return None
            return ms[min(len(ms) - 1, max(0, int(p * len(ms) + 0.999999) - 1))]
        share = {}
        # CPU over the window, from its first to its last sample of the same
        # process (after a restart, the new one's)
        same = [x for x in sel if x[4][1] is not None]
        if same:
            same = [x for x in same if x[4][0] == same[-1][4][0]]
            first, last = same[0], same[-1]
            dt = last[0] - first[0]
            for i, name in enumerate(("daemon_cpu_pct", "daemon_cpu_wait_pct", "machine_cpu_pressure_pct")):
                if dt > 0.5 and first[4][i + 1] is not None and last[4][i + 1] is not None:
                    share[name] = 100 * (last[4][i + 1] - first[4][i + 1]) / dt
        return {**share, "samples": len(sel), "answered": len(ms),
                "no_answer": sum(1 for x in sel if x[1] is None),
                "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": ms[-1] if ms else None,
                "inflight_max": max((s["inflight"] or 0 for s in subs), default=None),
                "queued_max": max((s["queued"] or 0 for s in subs), default=None),
                "receipts_queued_max": max((s["receipts_queued"] or 0 for s in subs), default=None),
                "rss_max_kib": max(rss, default=None)}


def storm_loadgen(bench, port, start_at, **kw):
    """Start `tc-loadgen storm` in the background (it waits for start_at)."""
    args = [bench.loadgen, "storm", "--port", str(port), "--start-at", str(start_at),
            "--probe-device", PROBE_DEVICE]
    for k, v in kw.items():
        if v is None or v is False:
            continue
        args.append("--" + k.replace("_", "-"))
        if v is not True:
            args.append(str(v))
    return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def storm_result(p, timeout):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"tc-loadgen storm did not finish within {timeout:.0f}s:\n{err}")
    if p.returncode != 0:
        raise RuntimeError(f"tc-loadgen storm failed ({p.returncode}):\n{err}")
    if err.strip():
        log("  tc-loadgen: " + err.strip().replace("\n", "\n  tc-loadgen: "))
    r = json.loads(out)
    r["args"] = p.args[1:]
    return r


def read_board(bench, port):
    p = subprocess.run([bench.loadgen, "board", "--port", str(port), "--quiet", "1.5", "--timeout", "60"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    if p.returncode != 0:
        raise RuntimeError(f"tc-loadgen board failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def lat_summary(values_ms):
    v = sorted(x for x in values_ms if x is not None)
    if not v:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}

    def q(p):
        return v[min(len(v) - 1, max(0, int(p * len(v) + 0.999999) - 1))]
    return {"n": len(v), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": v[-1]}


def alerts_in(r, t_from_ms, t_to_ms):
    """Alerts per worker with t_from_ms <= t < t_to_ms (ms from the storm's
    start), by kind."""
    out = {}
    for w, kinds in r["alerts"]["workers"].items():
        out[w] = {k: sum(1 for t in ts if t_from_ms <= t < t_to_ms) for k, ts in kinds.items()}
        out[w]["all"] = sum(out[w].values())
    return out


def end_state(bench, b, d):
    """Open alarms, incidents and the board once the storm is over."""
    st = d.status() or {}
    board = read_board(bench, b.port)
    return {"alarms_open": st.get("counts", {}).get("alarms_open"),
            "board_entries": board["entries"],
            "incidents": board["incidents"],
            "counts": st.get("counts"), "outbox": st.get("outbox"), "loop": st.get("loop")}


def wall_offset(iso, t_mono):
    """Seconds from the CLOCK_MONOTONIC time t_mono to the daemon's RFC 3339
    time iso (status.loop.worst_at), or None."""
    if not iso:
        return None
    try:
        at = datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    wall_at_t = time.time() - (time.monotonic() - t_mono)
    return at.timestamp() - wall_at_t


def storm_figures(r, sampler, d, t0_mono, first_minute, t_busy_end=None):
    """The figures common to blackout, strangers and restart, for the window
    starting at t0_mono (CLOCK_MONOTONIC seconds)."""
    t0_ms = (t0_mono * 1e9 - r["start_ns"]) / 1e6
    per = alerts_in(r, t0_ms, t0_ms + first_minute * 1000)
    st = sampler.summary(t0_mono, t_busy_end)
    return {
        "alerts_window_s": first_minute,
        "alerts_per_worker": per,
        "incident_alerts_per_worker_max": max((x["incident"] for x in per.values()), default=0),
        "alerts_per_worker_max": max((x["all"] for x in per.values()), default=0),
        "status": st,
        "status_whole_run": sampler.summary(t0_mono),
    }


def blackout_like(bench, template, name, n, prefix, etype):
    """n devices (ids prefix + 6 digits) send one etype each within
    storm_s seconds; 20 registered pendants send a fall spread over it."""
    sz = bench.sz
    db = bench.fresh_db(template, name)
    add_team_workers(db, now_ms())
    b = Broker(bench.workdir)
    d = sampler = None
    try:
        d = Daemon(bench, db, b.port)
        sampler = StatusSampler(d).start()
        start_at = time.monotonic_ns() + 3 * 10**9   # time to connect and probe
        p = storm_loadgen(bench, b.port, start_at, storm=n, storm_prefix=prefix, storm_base=0,
                          storm_type=etype, storm_seconds=sz["storm_s"], pubs=2, window=256,
                          falls=sz["falls"], fall_base=FALL_BASE, alerts=True,
                          observe=sz["observe_s"], drain=60)
        r = storm_result(p, timeout=sz["observe_s"] + 150)
        sampler.stop()
        t0 = r["start_ns"] / 1e9
        busy_end = t0 + max(sz["storm_s"], r["storm"]["last_answer_s"] or sz["storm_s"])
        fig = storm_figures(r, sampler, d, t0, min(60, sz["observe_s"]), busy_end)
        fig.update(end_state(bench, b, d))
        fig["loop_worst_at_s"] = wall_offset((fig["loop"] or {}).get("worst_at"), t0)
        fig["rss_kib"] = d.rss_kib()
        fig["hwm_kib"] = hwm_kib(d.pid)
        fig["ready_s"] = d.ready_s
        fig["log"] = d.log_problems()
        fig["loadgen"] = r
        d.stop()
        fig["in_db"] = stored_in_db(db, r["run_id"])
        log_storm(name, fig, r)
        return fig
    finally:
        if sampler:
            sampler.stop()
        rc = d.stop() if d else None
        b.stop()
        if d and rc not in (0, None):
            log(f"  telecared exited with {rc}; log {d.logpath}")


def stored_in_db(db, run_id):
    """(storm events, falls) of this run the database holds, read after the
    daemon stopped: whatever was receipted must be there. The store keeps
    each id as JSON text: "<run_id>-<n>" for the storm, "<run_id>-f<n>"
    for falls."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        q = "SELECT count(*) FROM events WHERE eid >= ? AND eid < ?"
        storm = con.execute(q, (f'"{run_id}-0', f'"{run_id}-:')).fetchone()[0]
        falls = con.execute(q, (f'"{run_id}-f', f'"{run_id}-g')).fetchone()[0]
        return storm, falls
    finally:
        con.close()


def hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def log_storm(name, fig, r):
    s, f = r["storm"], r["falls"]
    st = fig["status"]
    a = f["alert_latency"]
    log(f"  {name}: {s['sent']:,} {s['type']} sent in {s['publish_span_s']:.2f}s,"
        f" {s['status']['stored']:,} stored (+{s['status']['duplicate']} duplicate,"
        f" {s['unanswered']} unanswered), last receipt at {s['last_answer_s']}s;"
        f" receipts named {s['receipt_alarms']['distinct']} alarm(s); in the database afterwards:"
        f" {fig['in_db'][0]:,} storm events, {fig['in_db'][1]} falls;"
        f" publishing late by up to {s['late_max_ms']:.0f} ms")
    lw = fig.get("loop_worst_at_s")
    log(f"  {name}: daemon CPU {st.get('daemon_cpu_pct', 0):.0f} % of a core, waiting for a CPU"
        f" {st.get('daemon_cpu_wait_pct', 0):.0f} % of the time, machine CPU pressure"
        f" {st.get('machine_cpu_pressure_pct', 0):.0f} % while busy; storm receipts p50"
        f" {s['latency']['p50_ms']} p99 {s['latency']['p99_ms']} ms")
    log(f"  {name}: falls {f['alerted']}/{f['sent']} alerted, first alert p50 {a['p50_ms']}"
        f" p99 {a['p99_ms']} max {a['max_ms']} ms; loop worst {fig['loop'] and fig['loop']['worst_ms']} ms"
        f" ({'?' if lw is None else f'{lw:.1f}'} s after the start);"
        f" status p99 {st['p99_ms'] and round(st['p99_ms'], 1)} max {st['max_ms'] and round(st['max_ms'], 1)} ms"
        f" ({st['answered']}/{st['samples']} answered)")
    log(f"  {name}: alerts per worker in the first {fig['alerts_window_s']}s: incident max"
        f" {fig['incident_alerts_per_worker_max']}, all max {fig['alerts_per_worker_max']};"
        f" open alarms {fig['alarms_open']}, incidents"
        f" {[(i.get('class'), i.get('devices')) for i in fig['incidents']]};"
        f" RSS {(fig['rss_kib'] or 0) / 1024:.1f} MiB (peak {(fig['hwm_kib'] or 0) / 1024:.1f});"
        f" log: {fig['log']['errors']} errors, {fig['log']['warnings']} warnings")


def scenario_blackout(bench, template):
    return blackout_like(bench, template, "blackout", bench.sz["blackout_n"], "d", "power_loss")


def scenario_strangers(bench, template):
    return blackout_like(bench, template, "strangers", bench.sz["strangers_n"], "u", "panic")


def scenario_restart(bench, template):
    """The blackout, the daemon killed (SIGKILL) half-way through the storm
    and started again at once on the same database and broker session. The
    devices resend what got no receipt after 10 s, as real ones do; the 20
    falls are spread over the storm and the seconds after the restart."""
    sz = bench.sz
    db = bench.fresh_db(template, "restart")
    add_team_workers(db, now_ms())
    b = Broker(bench.workdir)
    d = sampler = None
    kill_after = sz["storm_s"] / 2
    try:
        d = Daemon(bench, db, b.port)
        sampler = StatusSampler(d).start()
        start_at = time.monotonic_ns() + 3 * 10**9
        # observe: the kill, a restart of a few seconds, then the minute after
        observe = kill_after + 5 + sz["observe_s"]
        p = storm_loadgen(bench, b.port, start_at, storm=sz["blackout_n"], storm_prefix="d",
                          storm_base=0, storm_type="power_loss", storm_seconds=sz["storm_s"], pubs=2,
                          window=256, falls=sz["falls"], fall_base=FALL_BASE, fall_from=0,
                          fall_to=sz["storm_s"] * 3, alerts=True, resend=10, observe=observe, drain=60)
        t_kill = start_at / 1e9 + kill_after
        time.sleep(max(0, t_kill - time.monotonic()))
        first = d.status() or {}
        t_kill = time.monotonic()
        d.kill9()
        ready_s = d.restart()
        t_ready = time.monotonic()
        log(f"  restart: killed at {kill_after:.1f}s into the storm, READY=1 {ready_s:.3f}s after exec")
        r = storm_result(p, timeout=observe + 150)
        sampler.stop()
        t0 = r["start_ns"] / 1e9
        busy_end = max(t_ready + 5, t0 + (r["storm"]["last_answer_s"] or 0))
        window = min(60, sz["observe_s"], max(0.0, t0 + observe - t_ready))
        fig = storm_figures(r, sampler, d, t_ready, window, busy_end)
        fig.update(end_state(bench, b, d))
        fig["loop_worst_at_s"] = wall_offset((fig["loop"] or {}).get("worst_at"), t0)
        # the falls by when they were sent: before the kill, while no daemon ran, after READY
        groups = {"before_kill": [], "while_down": [], "after_ready": []}
        for f in r["falls"]["list"]:
            ts = f["sent_ns"] / 1e9
            g = "before_kill" if ts < t_kill else "while_down" if ts < t_ready else "after_ready"
            groups[g].append(f["alert_ms"])
        fig["falls_by_phase"] = {g: dict(lat_summary(v), missing=sum(1 for x in v if x is None))
                                 for g, v in groups.items()}
        fig["killed_at_s"] = t_kill - t0
        fig["ready_s"] = ready_s
        fig["first_daemon"] = {"loop": first.get("loop"), "counts": first.get("counts")}
        fig["rss_kib"] = d.rss_kib()
        fig["hwm_kib"] = hwm_kib(d.pid)
        fig["log"] = d.log_problems()
        fig["loadgen"] = r
        d.stop()
        fig["in_db"] = stored_in_db(db, r["run_id"])
        log_storm("restart", fig, r)
        fa = fig["falls_by_phase"]["after_ready"]
        log(f"  restart: resending: {r['storm']['resend']}")
        log(f"  restart: falls sent after READY: {fa['n']} alerted (missing {fa['missing']}),"
            f" p50 {fa['p50_ms']} p99 {fa['p99_ms']} max {fa['max_ms']} ms; while down:"
            f" {fig['falls_by_phase']['while_down']}")
        return fig
    finally:
        if sampler:
            sampler.stop()
        rc = d.stop() if d else None
        b.stop()
        if d and rc not in (0, None):
            log(f"  telecared exited with {rc}; log {d.logpath}")


# The burst must measure the daemon, not the per-device flood limit (defaults
# 100 events/s, burst 1,000): 200 events per device as fast as the broker
# takes them would be cut off past the bucket. Both are raised for it.
BURST_MQTT = "device_rate = 1000000\ndevice_burst = 1000000\n"


def scenario_burst(bench, template):
    """burst_n heartbeats from burst_devices devices as fast as the broker
    acknowledges them (256 unacknowledged per connection, two connections),
    never resent; then the same load through the broker alone."""
    sz = bench.sz
    kw = dict(storm=sz["burst_n"], storm_devices=sz["burst_devices"], storm_prefix="d", storm_base=0,
              storm_type="heartbeat", storm_seconds=0, pubs=2, window=256, observe=0, drain=120)
    out = {}
    b = Broker(bench.workdir)
    try:
        p = storm_loadgen(bench, b.port, time.monotonic_ns() + 2 * 10**9, relay=True, **kw)
        out["relay"] = storm_result(p, timeout=200)
    finally:
        b.stop()
    db = bench.fresh_db(template, "burst")
    b = Broker(bench.workdir)
    d = None
    try:
        d = Daemon(bench, db, b.port, mqtt_extra=BURST_MQTT)
        p = storm_loadgen(bench, b.port, time.monotonic_ns() + 3 * 10**9, **kw)
        out["ingest"] = storm_result(p, timeout=200)
        st = d.status() or {}
        out["counts"] = st.get("counts")
        out["outbox"] = st.get("outbox")
        out["loop"] = st.get("loop")
        out["log"] = d.log_problems()
    finally:
        rc = d.stop() if d else None
        b.stop()
        if d and rc not in (0, None):
            log(f"  telecared exited with {rc}; log {d.logpath}")
    ri, rr = out["ingest"]["storm"], out["relay"]["storm"]
    out["ingest_s"] = ri["last_answer_s"]
    out["relay_s"] = rr["last_answer_s"]
    out["ingest_per_s"] = ri["answered"] / ri["last_answer_s"] if ri["last_answer_s"] else None
    out["relay_per_s"] = rr["answered"] / rr["last_answer_s"] if rr["last_answer_s"] else None
    out["ratio"] = (out["ingest_per_s"] / out["relay_per_s"]
                    if out["ingest_per_s"] and out["relay_per_s"] else None)
    c = out["counts"] or {}
    log(f"  burst: {ri['events']:,} events from {ri['devices']} devices: {ri['status']['stored']:,} stored"
        f" (+{ri['status']['duplicate']} duplicate, {ri['status']['rejected']} rejected,"
        f" {ri['unanswered']} unanswered), last receipt after {ri['last_answer_s']}s"
        f" = {out['ingest_per_s'] or 0:,.0f}/s; relay {rr['answered']:,} in {rr['last_answer_s']}s"
        f" = {out['relay_per_s'] or 0:,.0f}/s; ratio {out['ratio'] and round(out['ratio'], 3)};"
        f" daemon: {c.get('receipts_shed')} receipts shed, {c.get('events_flood_dropped')} flood-dropped")
    return out


def scenario_flap(bench, template):
    """1,000 open care alarms (panics from registered devices: they never
    fold), then the broker restarted flap_restarts times within flap_s. The
    broker keeps nothing (persistence off), so every reconnect must bring the
    board back whole. status sampled throughout; at the end the retained
    board is compared with the daemon's open alarms."""
    sz = bench.sz
    db = bench.fresh_db(template, "flap")
    add_team_workers(db, now_ms())
    b = Broker(bench.workdir)
    d = sampler = None
    try:
        d = Daemon(bench, db, b.port)
        p = storm_loadgen(bench, b.port, time.monotonic_ns() + 3 * 10**9, storm=sz["flap_alarms"],
                          storm_prefix="d", storm_base=FLAP_BASE, storm_type="panic", storm_seconds=2,
                          pubs=2, window=256, observe=0, drain=60)
        made = storm_result(p, timeout=120)

        def drained():
            st = d.status() or {}
            ob = st.get("outbox", {})
            return (st.get("mqtt", {}).get("connected") and ob.get("inflight") == 0
                    and not sum((ob.get("queued") or {}).values())) and st
        before = wait_until(drained, 60, "the outbox to drain before the flap", every=0.2)
        rss_before = d.rss_kib()
        # Each reconnect's republish takes a fraction of a second here:
        # sample often enough to see it.
        sampler = StatusSampler(d, every=0.025).start()
        t0 = time.monotonic()
        gap = sz["flap_s"] / sz["flap_restarts"]
        for i in range(sz["flap_restarts"]):
            time.sleep(max(0, t0 + (i + 1) * gap - time.monotonic()))
            b.restart()
        t_last = time.monotonic()
        after = wait_until(drained, 90, "the outbox to drain after the flap", every=0.2)
        t_drained = time.monotonic()
        time.sleep(1)
        sampler.stop()
        st = d.status() or {}
        opened = d.request("alarm.list", {"open": True, "limit": 10000}, timeout=30) or []
        open_ids = sorted(a["alarm"] for a in opened)
        board = read_board(bench, b.port)
        on_board = sorted(i for i in board["alarms"] if i is not None)
        out = {
            "alarms_made": made["storm"]["status"], "open_before": before["counts"]["alarms_open"],
            "restarts": sz["flap_restarts"], "seconds": sz["flap_s"],
            "drained_after_s": t_drained - t_last,
            "status": sampler.summary(),
            "inflight_max_seen": st.get("outbox", {}).get("inflight_max_seen"),
            "inflight_max_seen_before": before["outbox"].get("inflight_max_seen"),
            "handed_during": after["outbox"]["handed"] - before["outbox"]["handed"],
            "rss_before_kib": rss_before, "rss_after_kib": d.rss_kib(), "hwm_kib": hwm_kib(d.pid),
            "alarms_open": st.get("counts", {}).get("alarms_open"), "listed_open": len(open_ids),
            "board_entries": board["entries"],
            "board_missing": len(set(open_ids) - set(on_board)),
            "board_extra": len(set(on_board) - set(open_ids)),
            "board_duplicates": len(on_board) - len(set(on_board)),
            "loop": st.get("loop"), "outbox": st.get("outbox"), "log": d.log_problems(),
        }
        s = out["status"]
        log(f"  flap: {out['open_before']} open alarms, broker restarted {sz['flap_restarts']}x in"
            f" {sz['flap_s']}s: outbox inflight max {s['inflight_max']} (seen by the daemon"
            f" {out['inflight_max_seen']}), queued max {s['queued_max']}, {out['handed_during']:,} handed"
            f" to libmosquitto; RSS {rss_before / 1024:.1f} -> max {(s['rss_max_kib'] or 0) / 1024:.1f}"
            f" -> {out['rss_after_kib'] / 1024:.1f} MiB; drained {out['drained_after_s']:.1f}s after the"
            f" last restart; board {out['board_entries']} entries for {out['alarms_open']} open alarms"
            f" (missing {out['board_missing']}, extra {out['board_extra']}); loop worst"
            f" {out['loop'] and out['loop']['worst_ms']} ms; status p99 {s['p99_ms'] and round(s['p99_ms'], 1)} ms")
        return out
    finally:
        if sampler:
            sampler.stop()
        rc = d.stop() if d else None
        b.stop()
        if d and rc not in (0, None):
            log(f"  telecared exited with {rc}; log {d.logpath}")


MASS = ("blackout", "strangers", "restart", "burst", "flap")


# --------------------------------------------------------------------------
# the summary


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def per_event(r, proc):
    """CPU microseconds per answered message: less sensitive to a busy
    machine than a rate is."""
    return r["procs"][proc]["cpu_pct"] / 100 * 1e6 / r["answered_per_s"]


def summarize(runs, sz=None):
    """One row per measured quantity: the median over the repeats, and the range."""
    def col(f):
        out = []
        for r in runs:
            try:
                out.append(f(r))
            except (KeyError, TypeError):
                out.append(None)
        return out

    def ratio(r):
        return r["ingest"]["sustained_per_s"] / r["relay"]["sustained_per_s"]

    def closed_ratio(r):
        return r["ingest"]["closed"]["answered_per_s"] / r["relay"]["closed"]["answered_per_s"]
    rows = [
        ("relay_per_s", "1  broker relay, QoS 1, highest rate that keeps up", "msg/s",
         col(lambda r: r["relay"]["sustained_per_s"])),
        ("relay_closed_per_s", "   relay, closed loop (1,000 in flight)", "msg/s",
         col(lambda r: r["relay"]["closed"]["answered_per_s"])),
        ("ingest_per_s", "2  durable ingest, highest rate that keeps up", "events/s",
         col(lambda r: r["ingest"]["sustained_per_s"])),
        ("ingest_ratio", "   ratio ingest / relay (same run)", "",
         col(ratio)),
        ("ingest_closed_per_s", "   ingest, closed loop (1,000 in flight)", "events/s",
         col(lambda r: r["ingest"]["closed"]["answered_per_s"])),
        ("ingest_closed_ratio", "   ratio, closed loop", "", col(closed_ratio)),
        ("ingest_cpu_daemon", "   CPU at closed-loop ingest: telecared", "% core",
         col(lambda r: r["ingest"]["closed"]["procs"]["telecared"]["cpu_pct"])),
        ("ingest_cpu_broker", "   CPU at closed-loop ingest: mosquitto", "% core",
         col(lambda r: r["ingest"]["closed"]["procs"]["broker"]["cpu_pct"])),
        ("ingest_cpu_loadgen", "   CPU at closed-loop ingest: tc-loadgen", "% core",
         col(lambda r: r["ingest"]["closed"]["procs"]["loadgen"]["cpu_pct"])),
        ("ingest_us_per_event", "   telecared CPU per event (closed loop)", "us",
         col(lambda r: per_event(r["ingest"]["closed"], "telecared"))),
        ("ingest_broker_us_per_event", "   mosquitto CPU per event (closed loop)", "us",
         col(lambda r: per_event(r["ingest"]["closed"], "broker"))),
        ("relay_broker_us_per_msg", "   mosquitto CPU per relayed message", "us",
         col(lambda r: per_event(r["relay"]["closed"], "broker"))),
        ("ingest_daemon_wait_pct", "   telecared runnable but waiting for a CPU", "% time",
         col(lambda r: r["ingest"]["closed"]["procs"]["telecared"]["cpu_wait_pct"])),
        ("ingest_cpu_pressure", "   machine: CPU pressure (PSI some) at ingest", "% time",
         col(lambda r: r["ingest"]["closed"]["cpu_pressure_pct"])),
    ]
    for rate in LAT_RATES:
        for q in ("p50", "p99", "max"):
            key = f"receipt_{q}_ms_at_{rate}"
            rows.append((key, f"3  event -> receipt at {rate:,}/s, {q}", "ms",
                         col(lambda r, rate=rate, q=q: r["latency"][f"receipt_{rate}"]["latency"][f"{q}_ms"])))
        rows.append((f"relay_p99_ms_at_{rate}", f"   baseline: relay alone at {rate:,}/s, p99", "ms",
                     col(lambda r, rate=rate: r["relay"]["fixed"][str(rate)]["latency"]["p99_ms"])))
    rows.append(("receipt_us_per_event_at_2000", "   telecared CPU per event at 2,000/s", "us",
                 col(lambda r: per_event(r["latency"]["receipt_2000"], "telecared"))))
    for q in ("p50", "p99", "max"):
        rows.append((f"alert_{q}_ms_at_500", f"3  alarm -> first alert at 500/s, {q}", "ms",
                     col(lambda r, q=q: r["latency"]["alarm_500"]["alert_latency"][f"{q}_ms"])))
    rows += [
        ("scale_cpu_pct", "4  100k devices: telecared CPU", "% core",
         col(lambda r: r["scale"]["procs"]["telecared"]["cpu_pct"])),
        ("scale_us_per_event", "   telecared CPU per event at 111/s", "us",
         col(lambda r: per_event(r["scale"], "telecared"))),
        ("scale_rss_mib", "4  100k devices: telecared RSS", "MiB",
         col(lambda r: r["scale"]["procs"]["telecared"]["rss_kib"] / 1024)),
        ("scale_hwm_mib", "   peak RSS (VmHWM, includes start-up)", "MiB",
         col(lambda r: r["scale"]["procs"]["telecared"]["hwm_kib"] / 1024)),
        ("startup_s", "5  start-up to READY=1 (100k dev, events, 1k open)", "s",
         col(lambda r: r["startup"]["ready_s"])),
        ("startup_rss_mib", "   RSS at READY=1", "MiB",
         col(lambda r: r["startup"]["rss_kib"] / 1024)),
    ]
    ran = {k for r in runs for k in r}
    first = {"receipt": "latency", "alert": "latency"}
    rows = [row for row in rows if first.get(row[0].split("_")[0], row[0].split("_")[0]) in ran]
    rows += mass_rows(col, sz or SIZES["full"], ran)
    if ran & {"console", "report"}:   # tests/bench/console_bench.py (issue 12)
        import console_bench
        TARGETS.update(console_bench.TARGETS)
        rows += console_bench.table_rows(col, ran)
    out = []
    for key, label, unit, vals in rows:
        m = med(vals)
        t = TARGETS.get(key)
        ok = None
        if t and m is not None:
            ok = m >= t[1] if t[0] == ">=" else m <= t[1] if t[0] == "<=" else m < t[1]
        out.append({"key": key, "label": label, "unit": unit, "values": vals, "median": m,
                    "target": f"{t[0]} {t[1]} {t[2]}" if t else None, "met": ok})
    return out


def mass_rows(col, sz, ran):
    """The table's rows for the issue 9 scenarios that ran."""
    rows = []
    win = "minute" if sz["observe_s"] >= 60 else f"{sz['observe_s']:g} s"
    names = {"blackout": "6  blackout", "strangers": "7  strangers", "restart": "8  restart in the storm"}
    for sc, title in names.items():
        if sc not in ran:
            continue
        def g(f, sc=sc):
            return col(lambda r: f(r[sc]))
        what = {"blackout": "power_loss", "strangers": "unknown-id panics",
                "restart": "power_loss, kill -9"}[sc]
        fall = "fall sent after READY" if sc == "restart" else "fall"
        ff = ((lambda x, q: x["falls_by_phase"]["after_ready"][q]) if sc == "restart"
              else (lambda x, q: x["loadgen"]["falls"]["alert_latency"][q]))
        rows += [
            (f"{sc}_events", f"{title}: {what}, events sent", "events",
             g(lambda x: x["loadgen"]["storm"]["sent"])),
            (f"{sc}_receipted", "   events receipted (stored or duplicate)", "events",
             g(lambda x: x["loadgen"]["storm"]["answered"])),
            (f"{sc}_in_db", "   storm events in the database afterwards", "events",
             g(lambda x: x["in_db"][0])),
            (f"{sc}_last_receipt_s", "   last receipt after the storm's start", "s",
             g(lambda x: x["loadgen"]["storm"]["last_answer_s"])),
        ]
        if sc == "restart":
            rows += [(f"{sc}_ready_s", "   kill -9 -> restarted daemon READY=1", "s", g(lambda x: x["ready_s"]))]
        rows += [
            (f"{sc}_fall_p50_ms", f"   {fall} -> first alert, p50", "ms", g(lambda x, ff=ff: ff(x, "p50_ms"))),
            (f"{sc}_fall_p99_ms", f"   {fall} -> first alert, p99", "ms", g(lambda x, ff=ff: ff(x, "p99_ms"))),
            (f"{sc}_fall_max_ms", f"   {fall} -> first alert, max", "ms", g(lambda x, ff=ff: ff(x, "max_ms"))),
            (f"{sc}_falls_alerted", f"   {'falls after READY' if sc == 'restart' else 'falls'} alerted",
             "falls", g(lambda x, ff=ff: ff(x, "n"))),
        ]
        if sc == "restart":
            rows += [(f"{sc}_fall_down_max_ms", "   fall sent while down -> first alert, max", "ms",
                      g(lambda x: x["falls_by_phase"]["while_down"]["max_ms"]))]
        rows += [
            (f"{sc}_daemon_wait_pct", "   telecared waiting for a CPU while busy", "% time",
             g(lambda x: x["status"]["daemon_cpu_wait_pct"])),
            (f"{sc}_loop_worst_ms", "   loop: worst dispatch (status.loop.worst_ms)", "ms",
             g(lambda x: x["loop"]["worst_ms"])),
            (f"{sc}_status_p99_ms", "   status answer during the storm, p99", "ms",
             g(lambda x: x["status"]["p99_ms"])),
            (f"{sc}_status_max_ms", "   status answer during the storm, max", "ms",
             g(lambda x: x["status"]["max_ms"])),
            (f"{sc}_status_unanswered", "   status requests unanswered within 30 s", "requests",
             g(lambda x: x["status"]["no_answer"])),
            (f"{sc}_incident_alerts", f"   alerts per worker, first {win}: the incident (max)", "alerts",
             g(lambda x: x["incident_alerts_per_worker_max"])),
            (f"{sc}_alerts_per_worker", f"   alerts per worker, first {win}: all (max)", "alerts",
             g(lambda x: x["alerts_per_worker_max"])),
            (f"{sc}_alarms_open", "   open alarms at the end (status)", "alarms",
             g(lambda x: x["alarms_open"])),
            (f"{sc}_incidents", "   incidents on the board at the end", "incidents",
             g(lambda x: len(x["incidents"]))),
            (f"{sc}_incident_devices", "   devices in them", "devices",
             g(lambda x: sum(i.get("devices") or 0 for i in x["incidents"]))),
            (f"{sc}_rss_mib", "   RSS, peak (VmHWM)", "MiB", g(lambda x: x["hwm_kib"] / 1024)),
        ]
    burst = [
        ("burst_stored", "9  burst: 20,000 from 100 devices, receipted stored", "events",
         col(lambda r: r["burst"]["ingest"]["storm"]["status"]["stored"])),
        ("burst_unanswered", "   events without a receipt (never resent)", "events",
         col(lambda r: r["burst"]["ingest"]["storm"]["unanswered"])),
        ("burst_last_receipt_s", "   time to the last receipt", "s", col(lambda r: r["burst"]["ingest_s"])),
        ("burst_per_s", "   rate (events / time to the last receipt)", "events/s",
         col(lambda r: r["burst"]["ingest_per_s"])),
        ("burst_relay_per_s", "   broker alone, same burst, same run", "msg/s",
         col(lambda r: r["burst"]["relay_per_s"])),
        ("burst_ratio", "   ratio burst / relay", "", col(lambda r: r["burst"]["ratio"])),
    ]
    flap = [
        ("flap_inflight_max", "10 broker flap: outbox.inflight, max sampled", "msgs",
         col(lambda r: r["flap"]["status"]["inflight_max"])),
        ("flap_queued_max", "   outbox queued (all classes), max sampled", "msgs",
         col(lambda r: r["flap"]["status"]["queued_max"])),
        ("flap_handed_per_restart", "   handed to libmosquitto per restart", "msgs",
         col(lambda r: r["flap"]["handed_during"] / r["flap"]["restarts"])),
        ("flap_rss_mib", "   RSS, max sampled during the flap", "MiB",
         col(lambda r: r["flap"]["status"]["rss_max_kib"] / 1024)),
        ("flap_rss_before_mib", "   RSS before the flap", "MiB", col(lambda r: r["flap"]["rss_before_kib"] / 1024)),
        ("flap_alarms_open", "   open alarms after the flap", "alarms", col(lambda r: r["flap"]["alarms_open"])),
        ("flap_board_entries", "   retained board entries after the flap", "alarms",
         col(lambda r: r["flap"]["board_entries"])),
        ("flap_board_wrong", "   open alarms missing + board entries extra", "alarms",
         col(lambda r: r["flap"]["board_missing"] + r["flap"]["board_extra"])),
        ("flap_loop_worst_ms", "   loop: worst dispatch", "ms", col(lambda r: r["flap"]["loop"]["worst_ms"])),
    ]
    return rows + (burst if "burst" in ran else []) + (flap if "flap" in ran else [])


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 10):
        return f"{v:,.0f}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def print_table(summary, n):
    head = f"{'scenario':<54} {'median':>9} {'min-max of ' + str(n):>17}  {'unit':<9} target"
    print(head)
    print("-" * len(head) + "-" * 14)
    for row in summary:
        vals = [v for v in row["values"] if v is not None]
        rng = f"{fmt(min(vals))}-{fmt(max(vals))}" if len(vals) > 1 else ""
        tgt = ""
        if row["target"]:
            tgt = row["target"] + ("  ok" if row["met"] else "  MISSED" if row["met"] is False else "")
        print(f"{row['label']:<54} {fmt(row['median']):>9} {rng:>17}  {row['unit']:<9} {tgt}")


def profile_report(data, out):
    if not os.path.exists(data):
        log("  profile: perf recorded nothing (is perf installed and allowed?)")
        return
    with open(out, "w") as f:
        f.write("# telecared at closed-loop ingest: perf record -e cpu-clock --call-graph dwarf\n")
        for title, extra in (("self time by library", ["--no-children", "--sort", "dso"]),
                             ("self time by symbol", ["--no-children", "--sort", "dso,symbol"]),
                             ("time including callees", ["--children", "--sort", "symbol"])):
            p = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none",
                                "--percent-limit", "0.5"] + extra,
                               capture_output=True, text=True, timeout=300)
            lines = [x for x in p.stdout.splitlines() if x.strip() and not x.startswith("#")]
            f.write(f"\n## {title}\n" + "\n".join(lines[:60]) + "\n")
    log(f"  profile: {out}")


def markdown_table(summary, n):
    out = [f"| scenario | median of {n} | range | unit | target |", "| --- | ---: | ---: | --- | --- |"]
    for row in summary:
        vals = [v for v in row["values"] if v is not None]
        rng = f"{fmt(min(vals))}–{fmt(max(vals))}" if len(vals) > 1 else ""
        tgt = ""
        if row["target"]:
            tgt = row["target"] + (" ✔" if row["met"] else " **missed**" if row["met"] is False else "")
        label = row["label"].strip().replace("->", "→")
        out.append(f"| {label} | {fmt(row['median'])} | {rng} | {row['unit']} | {tgt} |")
    return "\n".join(out) + "\n"


def machine():
    info = {"nproc": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_mib"] = int(f.readline().split()[1]) // 1024
    except OSError:
        pass
    info["loadavg"] = os.getloadavg()
    for name, cmd in (("mosquitto", [MOSQUITTO, "-h"]),
                      ("libmosquitto", ["pkg-config", "--modversion", "libmosquitto"]),
                      ("sqlite", ["pkg-config", "--modversion", "sqlite3"]),
                      ("jansson", ["pkg-config", "--modversion", "jansson"])):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
            info[name] = (p.stdout or p.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            info[name] = None
    return info


def fs_type(path):
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, typ = line.split()[:3]
                if (path + "/").startswith(mnt.rstrip("/") + "/") and len(mnt) >= len(best):
                    best, kind = mnt, f"{typ} ({dev})"
    except OSError:
        pass
    return kind


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller and shorter (about two minutes, and 1.5 for the mass events)")
    ap.add_argument("--repeat", type=int, help="repeats (default 3, quick 1)")
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"),
                    help="where telecared was built (default build-bench)")
    ap.add_argument("--loadgen", help="tc-loadgen binary (default: found under --build)")
    ap.add_argument("--out", help="JSON results file (default BUILD/bench-results.json)")
    ap.add_argument("--workdir", help="parent of the scratch directory (default $TMPDIR or /tmp);"
                    " must be a real disk: durability costs an fsync")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--only", help="comma-separated scenarios (relay,ingest,latency,scale,startup,"
                    "dc09,console,report,blackout,strangers,restart,burst,flap; mass: the last five)")
    ap.add_argument("--profile", action="store_true",
                    help="perf-record telecared during the first closed-loop ingest and write"
                         " BUILD/bench-profile.txt")
    args = ap.parse_args()

    bench = Bench(args)
    only = set(args.only.split(",")) if args.only else None
    if only and "mass" in only:
        only |= set(MASS)
    known = {"relay", "ingest", "latency", "scale", "startup", "dc09", "console", "report", "mass",
             *MASS}
    if only and only - known:
        raise SystemExit(f"run.py: unknown scenario(s) {', '.join(sorted(only - known))}")
    want = lambda s: only is None or s in only  # noqa: E731
    out = args.out or os.path.join(os.path.abspath(args.build), "bench-results.json")
    started = time.monotonic()
    info = machine()
    info["workdir_fs"] = fs_type(bench.workdir)
    log(f"telecared benchmarks ({'quick' if args.quick else 'full'}, {bench.sz['repeat']} repeat(s));"
        f" scratch {bench.workdir} on {info['workdir_fs']}")
    if info["workdir_fs"].startswith(("tmpfs", "ramfs")):
        log("  warning: the scratch directory is in memory: fsync costs nothing there")
    runs = []
    try:
        log("preparing databases")
        template = bench.template()
        bigdb = None
        if want("startup") or want("report"):
            bigdb = bench.fresh_db(template, "startup")
            t = time.monotonic()
            fill_history(bigdb, bench.sz["devices"], bench.sz["events"], bench.sz["open_alarms"],
                         bench.sz["resolved_alarms"], now_ms())
            log(f"  start-up database: {bench.sz['events']:,} events, {bench.sz['open_alarms']:,} open"
                f" and {bench.sz['resolved_alarms']:,} resolved alarms in {time.monotonic() - t:.1f}s"
                f" ({os.path.getsize(bigdb) / 2**20:.0f} MiB)")
        for i in range(bench.sz["repeat"]):
            log(f"repeat {i + 1} of {bench.sz['repeat']}")
            run = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                   "loadavg_before": os.getloadavg()}
            if want("relay"):
                log(" relay")
                run["relay"] = scenario_relay(bench)
            if want("ingest"):
                log(" ingest")
                prof = os.path.join(bench.workdir, "perf.data") if args.profile and i == 0 else None
                run["ingest"] = scenario_ingest(bench, template, prof)
                if prof:
                    profile_report(prof, os.path.join(os.path.abspath(args.build), "bench-profile.txt"))
            if want("latency"):
                log(" latency")
                run["latency"] = scenario_latency(bench, template)
            if want("scale"):
                log(" scale")
                run["scale"] = scenario_scale(bench, template)
            if want("startup"):
                log(" start-up")
                run["startup"] = scenario_startup(bench, bigdb)
            for name in MASS:
                if want(name):
                    log(f" {name}")
                    # A daemon that fails a mass event is what these scenarios
                    # are for: say so and go on to the next one.
                    try:
                        run[name] = globals()[f"scenario_{name}"](bench, template)
                    except (RuntimeError, OSError, ValueError, KeyError, TypeError,
                            subprocess.SubprocessError) as e:
                        log(f"  {name} FAILED: {e}")
                        run[name] = {"error": str(e)}
            if want("dc09"):   # tests/bench/dc09_bench.py (issue 13)
                import dc09_bench
                log(" dc09")
                run["dc09"] = dc09_bench.scenario(bench, template, sys.modules[__name__])
            for name in ("console", "report"):   # tests/bench/console_bench.py (issue 12)
                if want(name):
                    import console_bench
                    log(f" {name}")
                    run[name] = (console_bench.scenario_console(bench, template, sys.modules[__name__])
                                 if name == "console" else
                                 console_bench.scenario_report(bench, template, bigdb, sys.modules[__name__]))
            run["loadavg_after"] = os.getloadavg()
            runs.append(run)
    finally:
        if not args.keep:
            shutil.rmtree(bench.workdir, ignore_errors=True)
        else:
            log(f"kept {bench.workdir}")

    summary = summarize(runs, bench.sz)
    info["loadavg_end"] = os.getloadavg()
    result = {
        "mode": "quick" if args.quick else "full",
        "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "machine": info,
        "config": {"window": WINDOW, "pubs": PUBS, "ingest_devices": INGEST_DEVICES,
                   "sizes": bench.sz, "broker_conf": BROKER_CONF.format(port="PORT"),
                   "daemon_conf": DAEMON_CONF},
        "targets": {k: f"{v[0]} {v[1]} {v[2]}" for k, v in TARGETS.items()},
        "summary": summary,
        "runs": runs,
        "elapsed_s": time.monotonic() - started,
    }
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=1)
    md = os.path.splitext(out)[0] + ".md"
    with open(md, "w") as f:
        f.write(markdown_table(summary, len(runs)))
    print()
    print(f"telecared benchmarks: {info.get('cpu', '?')}, {info['nproc']} cores, "
          f"load average {info['loadavg'][0]:.2f} at start, {info['loadavg_end'][0]:.2f} at end; "
          f"database on {info['workdir_fs']}")
    print_table(summary, len(runs))
    print(f"\nresults: {out} and {md} ({result['elapsed_s']:.0f}s)")


if __name__ == "__main__":
    main()
