#!/usr/bin/python3
"""The telecared benchmarks (issue 6): run every scenario, print a table,
write JSON.

    /usr/bin/python3 tests/bench/run.py [--quick] [--repeat N] [--out FILE]

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
}

# Full and quick sizes. Durations in seconds.
SIZES = {
    "full": dict(repeat=3, closed_s=4, open_s=4, open_steps=4, lat_s=6, alarm_s=6,
                 scale_s=30, devices=100000, events=1000000, open_alarms=1000,
                 resolved_alarms=10000),
    "quick": dict(repeat=1, closed_s=2, open_s=2, open_steps=3, lat_s=2, alarm_s=2,
                  scale_s=10, devices=100000, events=200000, open_alarms=1000,
                  resolved_alarms=2000),
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


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


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

[store]
path = {db}

[control]
socket = {sock}

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

    def __init__(self, bench, db, port):
        Daemon.count += 1
        n = Daemon.count
        self.dir = os.path.join(bench.workdir, f"daemon-{n}")
        os.makedirs(self.dir)
        self.conf = os.path.join(self.dir, "telecared.conf")
        self.sock = os.path.join(self.dir, "control.sock")
        with open(self.conf, "w") as f:
            f.write(DAEMON_CONF.format(port=port, n=n, db=db, sock=self.sock))
        self.notify_path = os.path.join(self.dir, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.logpath = os.path.join(self.dir, "telecared.log")
        self.logf = open(self.logpath, "wb")
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("JOURNAL_STREAM", None)
        env.pop("WATCHDOG_USEC", None)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([bench.telecared, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=env)
        self.ready_s = self._wait_ready(t0, 60)

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
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
                c.settimeout(10)
                c.connect(self.sock)
                c.sendall(b'{"cmd": "status"}\n')
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
            answer = json.loads(buf)
            return answer.get("data") if answer.get("ok") else None
        except (OSError, ValueError):
            return None

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
                f" {counts.get('receipts_held', 0)} receipts held back,"
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
# the summary


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def per_event(r, proc):
    """CPU microseconds per answered message: less sensitive to a busy
    machine than a rate is."""
    return r["procs"][proc]["cpu_pct"] / 100 * 1e6 / r["answered_per_s"]


def summarize(runs):
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
    out = []
    for key, label, unit, vals in rows:
        m = med(vals)
        t = TARGETS.get(key)
        ok = None
        if t and m is not None:
            ok = m >= t[1] if t[0] == ">=" else m < t[1]
        out.append({"key": key, "label": label, "unit": unit, "values": vals, "median": m,
                    "target": f"{t[0]} {t[1]} {t[2]}" if t else None, "met": ok})
    return out


def fmt(v):
    if v is None:
        return "-"
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
    ap.add_argument("--quick", action="store_true", help="smaller and shorter (about a minute)")
    ap.add_argument("--repeat", type=int, help="repeats (default 3, quick 1)")
    ap.add_argument("--build", default=os.path.join(REPO, "build-bench"),
                    help="where telecared was built (default build-bench)")
    ap.add_argument("--loadgen", help="tc-loadgen binary (default: found under --build)")
    ap.add_argument("--out", help="JSON results file (default BUILD/bench-results.json)")
    ap.add_argument("--workdir", help="parent of the scratch directory (default $TMPDIR or /tmp);"
                    " must be a real disk: durability costs an fsync")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--only", help="comma-separated scenarios (relay,ingest,latency,scale,startup)")
    ap.add_argument("--profile", action="store_true",
                    help="perf-record telecared during the first closed-loop ingest and write"
                         " BUILD/bench-profile.txt")
    args = ap.parse_args()

    bench = Bench(args)
    only = set(args.only.split(",")) if args.only else None
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
        if want("startup"):
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
            if want("dc09"):   # tests/bench/dc09_bench.py (issue 13)
                import dc09_bench
                log(" dc09")
                run["dc09"] = dc09_bench.scenario(bench, template, sys.modules[__name__])
            run["loadavg_after"] = os.getloadavg()
            runs.append(run)
    finally:
        if not args.keep:
            shutil.rmtree(bench.workdir, ignore_errors=True)
        else:
            log(f"kept {bench.workdir}")

    summary = summarize(runs)
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
