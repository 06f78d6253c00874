"""Shared parts of the crash and fault drills (issue 6).

The real broker, daemon, MQTT client and telecarectl helpers come from
tests/integration/conftest.py, loaded here under its own module name (so it
never collides with this directory's conftest.py); the drills add a load
generator (devices that resend until receipted), an on-duty worker that acks
over MQTT, database checks, and a report printed and written as JSON.

Size: CHAOS_SCALE (default 1; 10 for a long run). CHAOS_SEED fixes the random
moments. CHAOS_OUT: a file for the JSON summary of every drill.
"""
import importlib.util
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
_ITC_PATH = os.path.join(HERE, "..", "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("telecare_integration_conftest", _ITC_PATH)
itc = importlib.util.module_from_spec(_spec)
sys.modules["telecare_integration_conftest"] = itc
_spec.loader.exec_module(itc)

PREFIX = itc.PREFIX
Broker = itc.Broker
Daemon = itc.Daemon
MqttClient = itc.MqttClient
compact = itc.compact
retained = itc.retained
run_ctl = itc.run_ctl
tail = itc.tail
wait_until = itc.wait_until
TELECARED = itc.TELECARED
TELECARECTL = itc.TELECARECTL

SCALE = float(os.environ.get("CHAOS_SCALE", "1") or 1)
SEED = int(os.environ.get("CHAOS_SEED") or int(time.time() * 1000) % 1000000)
# Slack on top of a policy's wait before an open alarm counts as stuck: a
# restart, a reconnect, a sanitizer build on a loaded 2-core machine.
SLACK = float(os.environ.get("CHAOS_SLACK", "4"))

def _sanitized_build():
    try:
        with open(os.path.join(itc.BUILD, "CMakeCache.txt")) as f:
            return any(line.strip() in ("TELECARE_SANITIZE:BOOL=ON", "TELECARE_SANITIZE:BOOL=1")
                       for line in f)
    except OSError:
        return False


# An AddressSanitizer build is several times slower: the flood drill's default
# rate is lowered for it (the report says which rate was used).
SANITIZED = _sanitized_build()

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")

# --------------------------------------------------------------------------
# the report: printed by each drill, collected for $CHAOS_OUT

REPORT = {"scale": SCALE, "seed": SEED, "build": itc.BUILD, "sanitized_build": SANITIZED,
          "drills": {}}


def drill(name):
    """Names a test's entry in the report."""
    def mark(fn):
        fn.chaos_drill = name
        return fn
    return mark


def record(drill, **numbers):
    REPORT["drills"].setdefault(drill, {}).update(numbers)


def say(drill, text):
    print(f"[chaos {drill}] {text}", flush=True)


def pct(values, p):
    """Nearest-rank percentile of values (seconds) in ms, or None."""
    v = sorted(values)
    if not v:
        return None
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return round(v[k] * 1000, 1)


def summary(values):
    """p50/p95/max in ms of a list of seconds."""
    return {"n": len(values), "p50_ms": pct(values, 50), "p95_ms": pct(values, 95),
            "max_ms": round(max(values) * 1000, 1) if values else None}


def fmt(s):
    return f"n={s['n']} p50={s['p50_ms']}ms p95={s['p95_ms']}ms max={s['max_ms']}ms"


def scaled(small, big=None, minimum=None):
    """A size: `small` at scale 1, growing linearly (or to `big` at 10)."""
    if big is None:
        v = small * SCALE
    else:
        v = small + (big - small) * (SCALE - 1) / 9.0
    v = int(round(v))
    return max(v, minimum if minimum is not None else 1)


# --------------------------------------------------------------------------
# a policy that is easy to watch


def policy(name, steps, priorities="1,2,3", repeat=0, ack_timeout="10m"):
    lines = [f"\n[policy {name}]", f"priorities = {priorities}"]
    lines += [f"step = {s}" for s in steps]
    lines += [f"repeat = {repeat}", f"ack_timeout = {ack_timeout}", "on_cancel = keep", ""]
    return "\n".join(lines)


def setup_registry(d, devices, workers, team="north"):
    d.add_resident("r-chaos", "Chaos Resident", "--team", team, "--address", "Drill St 1")
    for dev in devices:
        d.add_device(dev, "r-chaos")
    for wid in workers:
        rc, _, err = d.ctl("worker", "add", wid, "--name", f"Worker {wid}", "--team", team)
        assert rc == 0, f"worker add {wid}: {err}"
        rc, _, err = d.ctl("shift", "add", wid, "--always")
        assert rc == 0, f"shift add {wid}: {err}"


# --------------------------------------------------------------------------
# devices: events streamed at a rate, each resent until it is receipted


ALARM_TYPES = ("panic", "fall", "smoke", "door")


class Load:
    """Devices streaming events at QoS 1. Each event is resent with the same id
    until a stored/duplicate receipt names it (SPEC 2.2). Even devices use
    string ids, odd devices integer ids. Every `alarm_every`-th event of a
    device is an alarm type, the rest are heartbeats."""

    def __init__(self, port, devices, rate=300, window=300, resend_after=2.0, alarm_every=10,
                 name="load"):
        self.devices = list(devices)
        self.rate = float(rate)
        self.window = window
        self.resend_after = resend_after
        self.alarm_every = alarm_every
        self.name = name
        self.cv = threading.Condition()
        self.payloads = {}                    # key -> payload dict (every key ever made)
        self.outstanding = {}                 # key -> last send (monotonic)
        self.first_sent = {}                  # key -> first send (monotonic)
        self.first = {}                       # key -> (status, alarm, at) of the first receipt
        self.statuses = defaultdict(list)     # key -> [status, ...]
        self.receipt_alarm = defaultdict(set)  # key -> {alarm ids named in its receipts}
        self.receipt_times = []               # monotonic time of every receipt
        self.stray = []
        self.injected = []                    # keys added by add(), sent at once
        self.counter = defaultdict(int)
        self.sent = 0
        self.resent = 0
        self.generating = True
        self.paused = False
        self._stop = threading.Event()
        self._thread = None
        self.client = MqttClient(port, subscriptions=[f"{PREFIX}/dev/+/receipt"],
                                 client_id=f"chaos-{name}-{SEED}")
        self.client.on_message_hook = self._receipt
        self.client.connect()

    # -- keys
    def _new_key(self, dev):
        k = self.devices.index(dev)
        i = self.counter[dev]
        self.counter[dev] += 1
        eid = f"e-{i:06d}" if k % 2 == 0 else i
        if self.alarm_every and i % self.alarm_every == self.alarm_every - 1:
            typ = ALARM_TYPES[(i // self.alarm_every) % len(ALARM_TYPES)]
            payload = {"id": eid, "type": typ, "battery": 80}
        else:
            payload = {"id": eid, "type": "heartbeat", "battery": 80, "rssi": -70}
        key = (dev, eid)
        return key, payload

    def add(self, device, payload):
        """Send one more event now (and resend it until receipted); returns
        its key. The first send time is in first_sent[key]."""
        key = (device, payload["id"])
        with self.cv:
            assert key not in self.payloads, f"key {key} used twice"
            self.payloads[key] = payload
            self.injected.append(key)
        return key

    # -- receipts (paho thread)
    def _receipt(self, msg):
        dev = msg.topic.split("/")[-2]
        try:
            r = msg.json()
            key = (dev, r.get("id"))
            status = r.get("status")
            alarm = r.get("alarm")
        except (ValueError, AttributeError):
            key, status, alarm = (dev, None), "garbage", None
        with self.cv:
            self.receipt_times.append(msg.at)
            if key not in self.payloads or isinstance(key[1], bool):
                self.stray.append(msg)
            else:
                self.statuses[key].append(status)
                if status in ("stored", "duplicate"):
                    self.receipt_alarm[key].add(alarm)
                    if key not in self.first:
                        self.first[key] = (status, alarm, msg.at)
                    self.outstanding.pop(key, None)
            self.cv.notify_all()

    # -- sending (load thread)
    def _send(self, key, now):
        dev, _ = key
        self.client.publish(f"{PREFIX}/dev/{dev}/event", self.payloads[key])
        self.sent += 1
        self.outstanding[key] = now
        self.first_sent.setdefault(key, now)

    def _run(self):
        tokens = 0.0
        last = time.monotonic()
        rr = 0
        while not self._stop.is_set():
            now = time.monotonic()
            tokens = min(tokens + (now - last) * self.rate, max(1.0, self.rate * 0.05))
            last = now
            with self.cv:
                while self.injected:
                    k = self.injected.pop(0)
                    if k not in self.first:
                        self._send(k, now)
                for k, t in list(self.outstanding.items()):
                    if now - t >= self.resend_after and k not in self.first:
                        self._send(k, now)
                        self.resent += 1
                while (self.generating and not self.paused and tokens >= 1.0
                       and len(self.outstanding) < self.window):
                    dev = self.devices[rr % len(self.devices)]
                    rr += 1
                    key, payload = self._new_key(dev)
                    self.payloads[key] = payload
                    self._send(key, now)
                    tokens -= 1.0
            time.sleep(0.005)

    def start(self):
        self._thread = threading.Thread(target=self._run, name=f"load-{self.name}", daemon=True)
        self._thread.start()
        return self

    # -- views
    def receipted(self):
        with self.cv:
            return dict(self.first)

    def n_outstanding(self):
        with self.cv:
            return len(self.outstanding)

    def receipts_after(self, t):
        with self.cv:
            return sum(1 for x in self.receipt_times if x > t)

    def first_receipt_after(self, t):
        with self.cv:
            later = [x for x in self.receipt_times if x > t]
            return min(later) if later else None

    def wait_receipted(self, n, timeout, what="receipts"):
        wait_until(lambda: len(self.first) >= n, timeout, f"{n} {what} ({self.name})",
                   interval=0.05)

    def drain(self, timeout):
        """Stop making new events; wait until every event made so far is
        receipted (resending as needed). Returns the seconds it took."""
        t0 = time.monotonic()
        self.generating = False
        deadline = t0 + timeout
        with self.cv:
            while True:
                missing = [k for k in self.payloads if k not in self.first]
                if not missing:
                    return time.monotonic() - t0
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name}: {len(missing)} of {len(self.payloads)} events never "
                        f"receipted within {timeout}s of the drain (sent {self.sent}, resent "
                        f"{self.resent}); first missing: {missing[:8]}")
                self.cv.wait(0.2)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(10)
        self.client.close()


# --------------------------------------------------------------------------
# an on-duty worker over MQTT


class Worker:
    """Collects alerts. ack_after(alert, n_open_alerts) -> bool decides when
    to ack an alarm (None: never); an ack is followed by a resolve."""

    def __init__(self, port, wid, ack_after=None):
        self.wid = wid
        self.ack_after = ack_after
        self.cv = threading.Condition()
        self.alerts = []                      # (at, alert dict)
        self.open_alerts = defaultdict(list)  # alarm -> [at] of state=open alerts
        self.acks_sent = 0
        self.acks_ok = 0
        self.acks_refused = 0
        self.resolves_ok = 0
        self.resolves_refused = 0
        self.results = []
        self.client = MqttClient(port, subscriptions=[f"{PREFIX}/worker/{wid}/alert",
                                                      f"{PREFIX}/worker/{wid}/result"],
                                 client_id=f"chaos-worker-{wid}-{SEED}")
        self.client.on_message_hook = self._on
        self.client.connect()

    def _act(self, payload):
        self.client.publish(f"{PREFIX}/worker/{self.wid}/action", payload)

    def _on(self, msg):
        try:
            j = msg.json()
        except ValueError:
            return
        if msg.topic.endswith("/alert"):
            with self.cv:
                self.alerts.append((msg.at, j))
                n = 0
                if j.get("state") == "open":
                    self.open_alerts[j["alarm"]].append(msg.at)
                    n = len(self.open_alerts[j["alarm"]])
                self.cv.notify_all()
            if n and self.ack_after is not None and self.ack_after(j, n):
                self.acks_sent += 1
                self._act({"alarm": j["alarm"], "action": "ack"})
        elif msg.topic.endswith("/result"):
            with self.cv:
                self.results.append(j)
            if j.get("action") == "ack":
                if j.get("ok"):
                    self.acks_ok += 1
                else:
                    self.acks_refused += 1
                # mine (or acked by me before a crash): close it
                self._act({"alarm": j.get("alarm"), "action": "resolve", "outcome": "false_alarm",
                           "note": "chaos drill"})
            elif j.get("action") == "resolve":
                if j.get("ok"):
                    self.resolves_ok += 1
                else:
                    self.resolves_refused += 1

    def first_open_alert_after(self, alarm, t):
        with self.cv:
            later = [x for x in self.open_alerts.get(alarm, ()) if x >= t]
            return min(later) if later else None

    def first_alert_for_device(self, device, after=0.0):
        with self.cv:
            for at, j in self.alerts:
                if at >= after and j.get("device") == device and j.get("state") == "open":
                    return at, j
        return None

    def close(self):
        self.client.close()


def check_escalation(d, worker, devices, t_from, t_ready, wait_s, slack=SLACK):
    """Every alarm of `devices` that the database holds as open (not test)
    gets an open alert after t_from within wait_s + slack of t_ready, or is
    no longer open (a worker's action queued in the broker was applied).
    Returns (n_open, delays in s, handled ids, stuck ids)."""
    marks = ",".join("?" * len(devices))
    rows = d.query(f"SELECT id FROM alarms WHERE state = 'open' AND test = 0 "
                   f"AND device_id IN ({marks})", devices)
    open_ids = [r["id"] for r in rows]
    pending = set(open_ids)
    delays = {}
    handled = set()
    deadline = t_ready + wait_s + slack
    while pending:
        for a in list(pending):
            at = worker.first_open_alert_after(a, t_from)
            if at is not None:
                delays[a] = max(0.0, at - t_ready)
                pending.discard(a)
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for a in list(pending):
        shown = d.ctl_json("alarm", "show", a)
        if shown.get("state") != "open":
            handled.add(a)
            pending.discard(a)
    return len(open_ids), delays, handled, sorted(pending)


# --------------------------------------------------------------------------
# database checks (read-only, beside the running daemon)


def db(path):
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=20)
    con.row_factory = sqlite3.Row
    return con


def integrity(path):
    con = db(path)
    try:
        rows = [r[0] for r in con.execute("PRAGMA integrity_check").fetchall()]
    finally:
        con.close()
    return rows


def stored_events(path, devices):
    """{(device, eid text): [alarm_id, ...]} for every row of these devices."""
    marks = ",".join("?" * len(devices))
    con = db(path)
    try:
        rows = con.execute(f"SELECT device_id, eid, alarm_id FROM events "
                           f"WHERE device_id IN ({marks})", list(devices)).fetchall()
    finally:
        con.close()
    out = defaultdict(list)
    for r in rows:
        out[(r["device_id"], r["eid"])].append(r["alarm_id"])
    return out


def check_store(path, load, final=False):
    """The durability invariants against the database now. Returns numbers;
    raises AssertionError naming what broke."""
    # receipts heard before the query must be on disk; every row the query
    # finds must be of an event sent before the query returned
    with load.cv:
        receipted = dict(load.first)
        twice_stored = {k: v for k, v in load.statuses.items() if v.count("stored") > 1}
        alarms_named = {k: set(v) for k, v in load.receipt_alarm.items() if k in receipted}
    rows = stored_events(path, load.devices)
    with load.cv:
        payloads = dict(load.payloads)
    want = {(dev, compact(eid)): (dev, eid) for dev, eid in payloads}
    lost = [want_k for want_k, k in want.items() if k in receipted and want_k not in rows]
    multi = {k: len(v) for k, v in rows.items() if len(v) > 1}
    unknown = [k for k in rows if k not in want]
    # the alarm a receipt named is the alarm the stored row points to
    mismatch = []
    for wk, k in want.items():
        if k in receipted and wk in rows:
            named = alarms_named.get(k, set())
            if any(a != rows[wk][0] for a in named):
                mismatch.append((k, sorted(named, key=str), rows[wk][0]))
    problems = []
    if lost:
        problems.append(f"{len(lost)} receipted events are not in the database: {sorted(lost)[:10]}")
    if multi:
        problems.append(f"{len(multi)} events stored more than once: {list(multi.items())[:10]}")
    if unknown:
        problems.append(f"{len(unknown)} stored events were never sent: {unknown[:10]}")
    if mismatch:
        problems.append(f"{len(mismatch)} receipts name another alarm than the stored row: "
                        f"{mismatch[:10]}")
    if final:
        missing = [wk for wk in want if wk not in rows]
        if missing:
            problems.append(f"{len(missing)} sent events are not in the database at the end: "
                            f"{sorted(missing)[:10]}")
    return {"receipted": len(receipted), "rows": sum(len(v) for v in rows.values()),
            "lost": len(lost), "multi": len(multi), "unknown": len(unknown),
            "alarm_mismatch": len(mismatch), "stored_receipt_twice": len(twice_stored),
            "twice_examples": list(twice_stored.items())[:5]}, problems


def log_findings(log_path):
    """Lines of the daemon log that point at a daemon bug."""
    text = tail(log_path, 10 ** 8)
    out = []
    for line in text.splitlines():
        if any(m in line for m in SANITIZER_MARKERS) or "refused and dropped" in line \
                or "Assertion" in line:
            out.append(line)
    return out


def kill_broker(broker):
    """SIGKILL the broker (no clean close for anyone)."""
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait(10)
    broker.proc = None
    if broker._logf:
        broker._logf.close()
        broker._logf = None


def daemon_cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks
    except (OSError, IndexError, ValueError):
        return None


def write_report():
    out = os.environ.get("CHAOS_OUT")
    if not out:
        return
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(REPORT, f, indent=2, sort_keys=True, default=str)
        f.write("\n")
    os.replace(tmp, out)


def rng_for(drill):
    return random.Random(f"{SEED}-{drill}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def spawn_and_kill(d, after):
    """Start the daemon's process and SIGKILL it `after` seconds later,
    whatever it is doing (opening the store, reloading alarms, connecting)."""
    import subprocess as sp
    assert d.proc is None
    d.starts += 1
    d._logf = open(d.log, "ab")
    d._logf.write(f"=== start {d.starts} (killed after {after:.3f}s) ===\n".encode())
    d._logf.flush()
    env = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
        env.pop(k, None)
    d.proc = sp.Popen([TELECARED, "-c", str(d.conf)], stdout=d._logf, stderr=d._logf,
                      stdin=sp.DEVNULL, env=env)
    time.sleep(after)
    exited = d.proc.poll()
    d.proc.kill()
    d.proc.wait(10)
    d._reap()
    if exited is not None:
        raise AssertionError(f"{d.name} exited by itself with {exited} during start:\n{tail(d.log)}")


def mixed_setup(daemon, broker, devices, wait="1s", worker="w-chaos", never_ack=("mix-0",)):
    """The mixed load of the kill drills: registered devices, one on-duty
    worker who acks as alerts arrive (odd devices at the first alert, even
    ones at the second, `never_ack` devices never: those escalate forever),
    and a one-step policy with a short wait."""
    d = daemon(extra_lines=policy("chaos", [f"on_duty:* wait {wait}"], ack_timeout="5s"))
    setup_registry(d, devices, [worker])

    def ack_after(alert, n):
        dev = alert.get("device") or ""
        if dev in never_ack or dev not in devices:
            return False
        k = devices.index(dev)
        return n >= (1 if k % 2 else 2)

    w = Worker(broker.port, worker, ack_after)
    return d, w


def alarm_counts(path, devices):
    marks = ",".join("?" * len(devices))
    con = db(path)
    try:
        rows = con.execute(f"SELECT state, COUNT(*) AS n FROM alarms WHERE device_id IN ({marks}) "
                           f"GROUP BY state", list(devices)).fetchall()
    finally:
        con.close()
    return {r["state"]: r["n"] for r in rows}
