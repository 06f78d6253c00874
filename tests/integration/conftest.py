"""Fixtures for the telecared integration tests.

Real parts only: a real mosquitto broker on a free loopback port, the real
telecared and telecarectl binaries, a real SQLite file in tmp_path.

    /usr/bin/python3 -m pytest tests/integration

Binaries come from $TELECARE_BUILD (default <repo>/build).
Every wait has a deadline; every process is killed in teardown; the daemon's
stderr log is attached to the report of a failing test.
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections import defaultdict

import paho.mqtt.client as paho
import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("TELECARE_BUILD", os.path.join(REPO, "build"))
TELECARED = os.path.join(BUILD, "telecared")
TELECARECTL = os.path.join(BUILD, "telecarectl")
MOSQUITTO = os.environ.get("TELECARE_MOSQUITTO", "/usr/sbin/mosquitto")
PREFIX = "telecare"
STATUS_TOPIC = PREFIX + "/gateway/status"

# Generous deadlines: these are "something is broken" limits, not timing
# targets (a sanitizer build on a loaded 2-core machine must pass too).
START_TIMEOUT = 20.0
MSG_TIMEOUT = 15.0
CTL_TIMEOUT = 15.0


def compact(value):
    """The daemon's dedup key: the compact JSON text of an event id."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout, what, interval=0.05, alive=None):
    """Poll cond() until it returns a true value or the deadline passes.
    alive(), when given, is checked each round and may raise (a dead process)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if alive is not None:
            alive()
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def tail(path, limit=12000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"(no log: {e})"
    text = data.decode("utf-8", "replace")
    if len(text) > limit:
        text = "...(cut)...\n" + text[-limit:]
    return text


# --------------------------------------------------------------------------
# broker


class Broker:
    """A mosquitto on 127.0.0.1:port; stop()/start() keep the port."""

    def __init__(self, tmp_path):
        self.dir = tmp_path / "broker"
        self.dir.mkdir(exist_ok=True)
        self.port = free_port()
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 100000\n"
            "max_inflight_messages 100\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )
        self.proc = None
        self._logf = None

    def start(self, timeout=START_TIMEOUT):
        assert self.proc is None, "broker already running"
        self._logf = open(self.log, "ab")
        self._logf.write(b"=== mosquitto start ===\n")
        self._logf.flush()
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=self._logf, stderr=self._logf,
                                     stdin=subprocess.DEVNULL)

        def accepting():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        def alive():
            if self.proc.poll() is not None:
                raise AssertionError(f"mosquitto exited with {self.proc.returncode}:\n{tail(self.log)}")

        wait_until(accepting, timeout, f"mosquitto on port {self.port}", alive=alive)

    def stop(self, timeout=10):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None
        if self._logf:
            self._logf.close()
            self._logf = None

    def restart(self):
        self.stop()
        self.start()

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def broker(tmp_path, request):
    b = Broker(tmp_path)
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])
    request.node._telecare_logs.append(("mosquitto", b.log))
    b.start()
    yield b
    b.stop()


# --------------------------------------------------------------------------
# MQTT client with a thread-safe collector


class Msg:
    __slots__ = ("topic", "payload", "retain", "qos", "index", "at")

    def __init__(self, topic, payload, retain, qos, index):
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
        self.index = index
        self.at = time.monotonic()

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    @property
    def text(self):
        return self.payload.decode("utf-8", "replace")

    def __repr__(self):
        p = self.payload if len(self.payload) < 300 else self.payload[:300] + b"..."
        return f"<{self.topic} retain={int(self.retain)} {p!r}>"


class MqttClient:
    """paho client in its own network thread; collects every message per
    topic. Reconnects by itself and resubscribes on every connect."""

    def __init__(self, port, subscriptions=(PREFIX + "/#",), client_id=None, inflight=0):
        self.port = port
        self.subscriptions = list(subscriptions)
        self._cv = threading.Condition()
        self._by_topic = defaultdict(list)
        self._count = 0
        self._subscribed = threading.Event()
        self.connects = 0
        self.client = paho.Client(client_id=client_id or "pytest-" + uuid.uuid4().hex[:12],
                                  clean_session=True, protocol=paho.MQTTv311)
        self.client.max_inflight_messages_set(inflight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.on_message_hook = None

    # callbacks (paho thread)
    def _on_connect(self, client, userdata, flags, rc):
        if rc == 0:
            self.connects += 1
            if self.subscriptions:
                client.subscribe([(t, 1) for t in self.subscriptions])
            else:
                self._subscribed.set()

    def _on_subscribe(self, client, userdata, mid, granted_qos):
        self._subscribed.set()

    def _on_message(self, client, userdata, m):
        with self._cv:
            self._count += 1
            msg = Msg(m.topic, bytes(m.payload), bool(m.retain), m.qos, self._count)
            self._by_topic[m.topic].append(msg)
            self._cv.notify_all()
        hook = self.on_message_hook
        if hook is not None:
            hook(msg)

    # API
    def connect(self, timeout=START_TIMEOUT):
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            raise AssertionError(f"MQTT client did not connect and subscribe within {timeout}s")
        return self

    def close(self):
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.client.loop_stop()

    def mark(self, topic=None):
        """A position: messages after it are 'new'. Per topic or global."""
        with self._cv:
            if topic is None:
                return self._count
            msgs = self._by_topic.get(topic)
            return msgs[-1].index if msgs else 0

    def messages(self, topic, after=0):
        with self._cv:
            return [m for m in self._by_topic.get(topic, []) if m.index > after]

    def matching(self, pattern, after=0):
        with self._cv:
            out = []
            for t, msgs in self._by_topic.items():
                if paho.topic_matches_sub(pattern, t):
                    out.extend(m for m in msgs if m.index > after)
            return sorted(out, key=lambda m: m.index)

    def wait_for(self, topic, predicate=None, timeout=MSG_TIMEOUT, after=0):
        """The first message on topic (exact, or a pattern with + and #) after
        position `after` for which predicate(msg) is true."""
        deadline = time.monotonic() + timeout
        is_pattern = "+" in topic or "#" in topic
        with self._cv:
            while True:
                msgs = self.matching(topic, after) if is_pattern else \
                    [m for m in self._by_topic.get(topic, []) if m.index > after]
                for m in msgs:
                    try:
                        if predicate is None or predicate(m):
                            return m
                    except (ValueError, KeyError, TypeError, AttributeError):
                        pass
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = msgs[-8:]
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for a matching message on {topic}; "
                        f"last seen there: {seen!r}")
                self._cv.wait(min(left, 0.5))

    def publish(self, topic, payload, qos=1, retain=False):
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    # device helpers
    def event(self, device, payload, timeout=MSG_TIMEOUT, match_id=True):
        """Publish an event for device and return (receipt dict, receipt Msg):
        the first receipt after the publish (with the same id when payload is
        a dict with an id and match_id)."""
        topic = f"{PREFIX}/dev/{device}/receipt"
        mark = self.mark(topic)
        self.publish(f"{PREFIX}/dev/{device}/event", payload)
        pred = None
        if match_id and isinstance(payload, dict) and "id" in payload:
            want = payload["id"]
            pred = lambda m: same_json(m.json().get("id"), want)  # noqa: E731
        m = self.wait_for(topic, pred, timeout=timeout, after=mark)
        return m.json(), m


def same_json(a, b):
    """Equal with the same JSON type (1 != True, 42 != "42", 1 != 1.0)."""
    return type(a) is type(b) and a == b


def retained(port, pattern, timeout=MSG_TIMEOUT):
    """Every retained message the broker holds under pattern, as
    {topic: Msg}. A fresh client subscribes, then round-trips a sentinel on
    the same connection: once the sentinel is back, the broker has sent all
    retained messages of the earlier subscription."""
    sentinel = f"pytest/sentinel/{uuid.uuid4().hex}"
    c = MqttClient(port, subscriptions=[pattern, sentinel]).connect(timeout)
    try:
        c.publish(sentinel, b"x")
        c.wait_for(sentinel, timeout=timeout)
        return {m.topic: m for m in c.matching(pattern) if m.retain}
    finally:
        c.close()


@pytest.fixture
def mqtt_factory(broker):
    clients = []

    def make(subscriptions=(PREFIX + "/#",), **kw):
        c = MqttClient(broker.port, subscriptions=subscriptions, **kw).connect()
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def mqtt(mqtt_factory):
    """A client subscribed to telecare/# on the test's broker."""
    return mqtt_factory()


# --------------------------------------------------------------------------
# telecarectl


def run_ctl(socket_path, *args, json_out=False, env=None, timeout=CTL_TIMEOUT):
    """Run telecarectl; returns (rc, stdout, stderr). socket_path None: no
    --socket option."""
    cmd = [TELECARECTL]
    if socket_path is not None:
        cmd += ["--socket", str(socket_path)]
    if json_out:
        cmd.append("--json")
    cmd += [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.pop("TELECARE_SOCKET", None)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def run_ctl_json(socket_path, *args, **kw):
    rc, out, err = run_ctl(socket_path, *args, json_out=True, **kw)
    assert rc == 0, f"telecarectl --json {' '.join(map(str, args))} exited {rc}: {err.strip()}"
    try:
        return json.loads(out)
    except ValueError as e:
        raise AssertionError(f"telecarectl --json {' '.join(map(str, args))} printed non-JSON "
                             f"({e}): {out!r}")


# --------------------------------------------------------------------------
# telecared


DEFAULT_CONFIG = {
    "mqtt": {"host": "127.0.0.1", "client_id": "telecared-test", "topic_prefix": PREFIX},
    "store": {},
    "control": {},
    "alarms": {"unknown_devices": "alarm"},
    # many daemons run at once: HTTP only where a test asks for it
    "http": {"listen": ""},
}


class Daemon:
    """One telecared with its own config, database and control socket.
    start()/kill9()/sigterm()/restart() keep the same files."""

    def __init__(self, tmp_path, broker, overrides=None, name="telecared", extra_lines=""):
        self.name = name
        self.dir = tmp_path / name
        self.dir.mkdir(exist_ok=True)
        self.broker = broker
        self.db = self.dir / "telecare.db"
        self.socket = self.dir / "control.sock"
        self.conf = self.dir / "telecared.conf"
        self.log = self.dir / "telecared.log"
        self.proc = None
        self.starts = 0
        self._logf = None
        self._watch = None
        cfg = {k: dict(v) for k, v in DEFAULT_CONFIG.items()}
        cfg["mqtt"]["port"] = str(broker.port)
        cfg["store"]["path"] = str(self.db)
        cfg["control"]["socket"] = str(self.socket)
        for section, keys in (overrides or {}).items():
            sec = cfg.setdefault(section, {})
            for k, v in keys.items():
                if v is None:
                    sec.pop(k, None)      # None: leave the key out (its default applies)
                else:
                    sec[k] = str(v)
        lines = []
        for section, keys in cfg.items():
            lines.append(f"[{section}]")
            lines += [f"{k} = {v}" for k, v in keys.items()]
            lines.append("")
        self.conf.write_text("\n".join(lines) + extra_lines)

    # -- process
    def _alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode} during start:\n"
                                 f"{tail(self.log)}")

    def _watcher(self):
        if self._watch is None and self.broker.running:
            self._watch = MqttClient(self.broker.port, subscriptions=[STATUS_TOPIC]).connect()
        return self._watch

    def start(self, wait_online=True, env=None, timeout=START_TIMEOUT):
        assert self.proc is None, "daemon already running"
        watch = self._watcher() if wait_online else None
        assert watch is not None or not wait_online, "wait_online needs a running broker"
        mark = watch.mark(STATUS_TOPIC) if watch else 0
        self.starts += 1
        self._logf = open(self.log, "ab")
        self._logf.write(f"=== start {self.starts} ===\n".encode())
        self._logf.flush()
        full_env = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            full_env.pop(k, None)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen([TELECARED, "-c", str(self.conf)],
                                     stdout=self._logf, stderr=self._logf,
                                     stdin=subprocess.DEVNULL, env=full_env)
        self.wait_ready(timeout)
        if wait_online:
            watch.wait_for(STATUS_TOPIC, lambda m: m.payload == b"online", timeout=timeout,
                           after=mark)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        def answers():
            if not os.path.exists(self.socket):
                return False
            rc, _, _ = run_ctl(self.socket, "status", timeout=5)
            return rc == 0
        wait_until(answers, timeout, f"{self.name} control socket to answer status",
                   alive=self._alive)

    def _reap(self):
        self.proc = None
        if self._logf:
            self._logf.close()
            self._logf = None

    def kill9(self):
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
        self._reap()

    def sigterm(self, timeout=20):
        """SIGTERM; returns the exit status."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            self._reap()
            raise AssertionError(f"{self.name} did not exit within {timeout}s of SIGTERM")
        self._reap()
        return rc

    def restart(self, **kw):
        if self.proc is not None:
            self.kill9()
        return self.start(**kw)

    def cleanup(self):
        """Stop the daemon the way systemd would (SIGTERM, SIGKILL after a
        while). Returns a list of problems: an unclean exit at the end of a
        test, or a sanitizer report anywhere in the log."""
        problems = []
        if self.proc is not None:
            if self.proc.poll() is not None:
                problems.append(f"{self.name} had died with status {self.proc.returncode}")
            else:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(15)
                    if rc != 0:
                        problems.append(f"{self.name} exited {rc} on SIGTERM at teardown")
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
                    problems.append(f"{self.name} ignored SIGTERM at teardown for 15s")
        self._reap()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        log = tail(self.log, 10**7)
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                       "SUMMARY: UndefinedBehaviorSanitizer"):
            if marker in log:
                problems.append(f"{self.name} log has a sanitizer report ({marker})")
        return problems

    # -- telecarectl against this daemon
    def ctl(self, *args, **kw):
        return run_ctl(self.socket, *args, **kw)

    def ctl_json(self, *args, **kw):
        return run_ctl_json(self.socket, *args, **kw)

    def request(self, cmd, args=None):
        """One request on the control socket, raw (as root: admin); its
        data, or an AssertionError with the refusal."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(CTL_TIMEOUT)
        s.connect(str(self.socket))
        s.sendall((json.dumps({"cmd": cmd, "args": args or {}}) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            assert chunk, "the control socket closed without an answer"
            buf += chunk
        s.close()
        answer = json.loads(buf)
        assert answer["ok"], f"{cmd}: {answer}"
        return answer["data"]

    # -- the database (read-only; WAL lets us read while the daemon runs)
    def query(self, sql, params=()):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, params).fetchall()]
        finally:
            con.close()

    # -- registry shortcuts
    def add_resident(self, rid, name="Test Resident", *extra):
        rc, out, err = self.ctl("resident", "add", rid, "--name", name, *extra)
        assert rc == 0, f"resident add {rid}: rc {rc}: {err}"

    def add_device(self, did, resident, *extra):
        rc, out, err = self.ctl("device", "add", did, "--resident", resident, *extra)
        assert rc == 0, f"device add {did}: rc {rc}: {err}"


@pytest.fixture
def daemon(tmp_path, broker, request):
    """Factory: daemon(overrides={"alarms": {"unknown_devices": "log"}},
    start=True, wait_online=True) -> Daemon."""
    made = []
    request.node._telecare_logs = getattr(request.node, "_telecare_logs", [])

    def make(overrides=None, start=True, wait_online=True, name=None, env=None, extra_lines=""):
        d = Daemon(tmp_path, broker, overrides, name=name or f"telecared{len(made) or ''}",
                   extra_lines=extra_lines)
        made.append(d)
        request.node._telecare_logs.append((d.name, d.log))
        if start:
            d.start(wait_online=wait_online, env=env)
        return d

    yield make
    problems = []
    for d in made:
        problems += d.cleanup()
    if problems:
        pytest.fail("; ".join(problems) + "\n" + "\n".join(
            f"--- {d.name} log ---\n{tail(d.log)}" for d in made), pytrace=False)


@pytest.fixture
def ctl(daemon):
    """ctl(*args) -> (rc, out, err) against a default daemon (started on use)."""
    holder = {}

    def run(*args, **kw):
        if "d" not in holder:
            holder["d"] = daemon()
        return holder["d"].ctl(*args, **kw)
    return run


# --------------------------------------------------------------------------
# binaries and logs in reports


def pytest_collection_modifyitems(config, items):
    # Missing binaries fail the run: a suite that skips itself proves nothing.
    missing = [p for p in (TELECARED, TELECARECTL) if not os.access(p, os.X_OK)]
    if missing and items:
        raise pytest.UsageError(f"not built: {', '.join(missing)} (build, or set TELECARE_BUILD)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and rep.when in ("setup", "call"):
        for name, path in getattr(item, "_telecare_logs", []):
            rep.sections.append((f"{name} log ({path})", tail(path)))
