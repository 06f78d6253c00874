"""systemd integration (SPEC 7, issue 2): sd_notify READY/WATCHDOG/STOPPING
on a notify socket the test owns, a clean exit on SIGTERM with the
presence topic set to offline, SIGHUP re-reading the configuration."""
import signal
import socket
import threading
import time

import pytest

from conftest import STATUS_TOPIC, retained, wait_until


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.lines = []          # (monotonic time, "KEY=value")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            now = time.monotonic()
            with self._lock:
                for line in data.decode("utf-8", "replace").split("\n"):
                    if line:
                        self.lines.append((now, line))

    def seen(self, line):
        with self._lock:
            return [t for t, x in self.lines if x == line]

    def startswith(self, prefix):
        with self._lock:
            return [x for _, x in self.lines if x.startswith(prefix)]

    def close(self):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify.sock")
    yield n
    n.close()


def test_notify_ready_watchdog_stopping(daemon, notify, mqtt, broker):
    d = daemon(start=False)
    d.start(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "500000"})
    ready = wait_until(lambda: notify.seen("READY=1"), 10, "READY=1 on the notify socket")
    # the watchdog is pinged repeatedly once running
    wait_until(lambda: len([t for t in notify.seen("WATCHDOG=1") if t >= ready[0]]) >= 3, 15,
               "three WATCHDOG=1 pings after READY=1")

    # the daemon keeps working while pinging
    r, _ = mqtt.event("p-1", {"id": 1, "type": "heartbeat"})
    assert r["status"] == "stored", r

    mark = mqtt.mark(STATUS_TOPIC)
    rc = d.sigterm()
    assert rc == 0, f"SIGTERM must exit 0, got {rc}"
    assert notify.seen("STOPPING=1"), f"no STOPPING=1; got {[x for _, x in notify.lines]}"
    assert notify.seen("READY=1")[0] < notify.seen("STOPPING=1")[0]
    off = mqtt.wait_for(STATUS_TOPIC, lambda m: m.payload == b"offline", after=mark)
    assert off.payload == b"offline"
    held = retained(broker.port, STATUS_TOPIC)
    assert held[STATUS_TOPIC].payload == b"offline", "offline is retained"


def test_notify_status_line(daemon, notify, mqtt):
    """STATUS= tells what the daemon is doing (issue 2, systemd basics)."""
    d = daemon(start=False)
    d.start(env={"NOTIFY_SOCKET": notify.path})
    wait_until(lambda: notify.seen("READY=1"), 10, "READY=1")
    wait_until(lambda: notify.startswith("STATUS="), 10, "a STATUS= line")
    status = notify.startswith("STATUS=")
    assert any(s.strip() != "STATUS=" for s in status), status


def test_sigterm_exit_0_without_notify(daemon, mqtt, broker):
    d = daemon()
    mark = mqtt.mark(STATUS_TOPIC)
    assert d.sigterm() == 0
    mqtt.wait_for(STATUS_TOPIC, lambda m: m.payload == b"offline", after=mark)
    # the database is closed cleanly and reusable
    d.start()
    assert d.ctl("status")[0] == 0


def test_sigterm_with_broker_down(daemon, broker):
    d = daemon()
    broker.stop()
    # the daemon notices the lost connection at its own pace; it must still
    # exit promptly and cleanly on SIGTERM
    assert d.sigterm() == 0


def test_kill9_publishes_will_offline(daemon, mqtt, broker):
    d = daemon()
    mark = mqtt.mark(STATUS_TOPIC)
    d.kill9()
    mqtt.wait_for(STATUS_TOPIC, lambda m: m.payload == b"offline", after=mark)
    assert retained(broker.port, STATUS_TOPIC)[STATUS_TOPIC].payload == b"offline"
    d.start()
    assert retained(broker.port, STATUS_TOPIC)[STATUS_TOPIC].payload == b"online"


def test_sighup_rereads_config(daemon, mqtt):
    d = daemon({"alarms": {"unknown_devices": "log"}})
    r, _ = mqtt.event("stranger-1", {"id": 1, "type": "panic"})
    assert r["status"] == "stored" and r["alarm"] is None, r

    text = d.conf.read_text().replace("unknown_devices = log", "unknown_devices = alarm")
    d.conf.write_text(text)
    d.proc.send_signal(signal.SIGHUP)
    # the signal is pending before the next control request is read; once
    # the daemon answers, it has handled the reload
    assert d.ctl("status")[0] == 0
    r2, _ = mqtt.event("stranger-1", {"id": 2, "type": "panic"})
    assert r2["status"] == "stored", r2
    assert isinstance(r2["alarm"], int), f"after SIGHUP unknown_devices = alarm applies: {r2}"
    assert d.proc.poll() is None


def test_sighup_with_broken_config_keeps_running(daemon, mqtt):
    d = daemon()
    d.conf.write_text(d.conf.read_text() + "\n[alarms]\nunknown_devices = sometimes\n")
    d.proc.send_signal(signal.SIGHUP)
    assert d.ctl("status")[0] == 0
    r, _ = mqtt.event("p-1", {"id": 1, "type": "panic"})
    assert r["status"] == "stored" and isinstance(r["alarm"], int), \
        "a bad configuration on reload keeps the old one"
    assert d.proc.poll() is None
