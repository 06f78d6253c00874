"""No receipted event is lost (SPEC 2.2, 7): a device-like client streams
events at QoS 1 and resends whatever has no receipt; the daemon is killed
with SIGKILL, or the broker is restarted, in the middle. At the end every
event is in the database exactly once and every event got a stored or
duplicate receipt."""
import threading
import time
from collections import defaultdict

import pytest

from conftest import PREFIX, MqttClient, compact, retained

RESEND_AFTER = 2.0     # a device resends what has no receipt after this long
STREAM_DEADLINE = 120  # the whole stream must complete within this
WINDOW = 200           # events a client keeps unreceipted at once


class Stream:
    """Devices dev-0..dev-{n-1} each sending ids 0..per_device-1 (strings
    "e-000123" on even devices, integers on odd ones), interleaved."""

    def __init__(self, port, n_devices=4, per_device=600, tag="dur"):
        self.devices = [f"{tag}-{k}" for k in range(n_devices)]
        self.keys = []
        for i in range(per_device):
            for k, dev in enumerate(self.devices):
                self.keys.append((dev, f"e-{i:06d}" if k % 2 == 0 else i))
        self.keyset = set(self.keys)
        self.cv = threading.Condition()
        self.first = {}                       # key -> first status
        self.statuses = defaultdict(list)     # key -> every status received
        self.stray = []                       # receipts for keys we never sent
        self.sent = 0
        self.resent = 0
        self.client = MqttClient(port, subscriptions=[f"{PREFIX}/dev/+/receipt"])
        self.client.on_message_hook = self._receipt
        self.client.connect()
        self.log = []

    def _receipt(self, msg):
        dev = msg.topic.split("/")[-2]
        try:
            r = msg.json()
            key = (dev, r.get("id"))
            status = r.get("status")
        except (ValueError, AttributeError):
            key, status = (dev, None), "garbage"
        with self.cv:
            if key not in self.keyset or isinstance(key[1], bool):
                self.stray.append(msg)
            else:
                self.statuses[key].append(status)
                if status in ("stored", "duplicate"):
                    self.first.setdefault(key, status)
            self.cv.notify_all()

    def note(self, what):
        with self.cv:
            self.log.append(f"{time.monotonic():.3f} {what} (receipted {len(self.first)})")

    def send(self, key):
        dev, eid = key
        self.client.publish(f"{PREFIX}/dev/{dev}/event",
                            {"id": eid, "type": "heartbeat", "battery": 50})
        self.sent += 1

    def run(self, triggers, deadline=STREAM_DEADLINE):
        """triggers: [(fraction receipted, callable)], each called once from
        this thread. A callable may return [(delay s, callable)] follow-ups."""
        total = len(self.keys)
        triggers = sorted(triggers, key=lambda t: t[0])
        timed = []
        outstanding = {}
        nxt = 0
        end = time.monotonic() + deadline
        while True:
            with self.cv:
                done = len(self.first)
                for k in [k for k in outstanding if k in self.first]:
                    del outstanding[k]
            if done == total and not timed:
                return
            now = time.monotonic()
            if now > end:
                missing = [k for k in self.keys if k not in self.first]
                raise AssertionError(
                    f"stream incomplete after {deadline}s: {done}/{total} receipted, "
                    f"{len(missing)} missing (first: {missing[:5]}), sent {self.sent} "
                    f"(resent {self.resent}); timeline: {self.log}")
            while triggers and done >= triggers[0][0] * total:
                frac, fn = triggers.pop(0)
                self.note(f"trigger at {frac:.0%}")
                for delay, follow in fn() or ():
                    timed.append((time.monotonic() + delay, follow))
            for t, fn in [x for x in timed if x[0] <= now]:
                timed.remove((t, fn))
                for delay, follow in fn() or ():
                    timed.append((time.monotonic() + delay, follow))
            now = time.monotonic()
            for k, t in list(outstanding.items()):
                if now - t >= RESEND_AFTER:
                    self.send(k)
                    self.resent += 1
                    outstanding[k] = now
            while len(outstanding) < WINDOW and nxt < total:
                k = self.keys[nxt]
                nxt += 1
                self.send(k)
                outstanding[k] = now
            with self.cv:
                if len(self.first) == done:
                    self.cv.wait(0.05)

    def verify(self, d, stored_at_most_once=True):
        """stored_at_most_once: no event may get two 'stored' receipts. Only
        meaningful when the broker was not restarted: across a broker restart
        libmosquitto rightly resends QoS 1 receipts the old broker never
        acknowledged, so the same receipt can legitimately arrive twice."""
        total = len(self.keys)
        dup = sum(1 for v in self.first.values() if v == "duplicate")
        print(f"stream: {total} events, sent {self.sent} (resent {self.resent}), "
              f"first receipt duplicate for {dup}; {self.log}")
        bad = {k: v for k, v in self.statuses.items()
               if any(s not in ("stored", "duplicate") for s in v)}
        assert not bad, f"receipts other than stored/duplicate: {list(bad.items())[:5]}"
        assert not self.stray, f"receipts for events never sent: {self.stray[:5]}"
        assert len(self.first) == total
        twice = {k: v for k, v in self.statuses.items() if v.count("stored") > 1}
        assert not (twice and stored_at_most_once), \
            f"{len(twice)} events got 'stored' twice (the second should be 'duplicate'): " \
            f"{list(twice.items())[:5]}"

        rows = d.query("SELECT device_id, eid, COUNT(*) AS n FROM events "
                       "WHERE device_id LIKE 'dur-%' GROUP BY device_id, eid")
        got = {(r["device_id"], r["eid"]): r["n"] for r in rows}
        want = {(dev, compact(eid)) for dev, eid in self.keys}
        missing = want - set(got)
        extra = set(got) - want
        multi = {k: n for k, n in got.items() if n != 1}
        assert not missing, f"{len(missing)} receipted events not in the database: " \
                            f"{sorted(missing)[:10]}"
        assert not extra, f"unexpected rows: {sorted(extra)[:10]}"
        assert not multi, f"stored more than once: {list(multi.items())[:10]}"
        n = d.query("SELECT COUNT(*) AS n FROM events WHERE device_id LIKE 'dur-%'")[0]["n"]
        assert n == total

    def close(self):
        self.client.close()


@pytest.fixture
def stream_factory(broker):
    made = []

    def make(**kw):
        s = Stream(broker.port, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()


def register(d, devices):
    d.add_resident("r-dur")
    for dev in devices:
        d.add_device(dev, "r-dur")


def test_kill9_mid_stream(daemon, stream_factory):
    d = daemon()
    s = stream_factory(n_devices=4, per_device=600)   # 2400 events
    register(d, s.devices)
    kills = []

    def kill():
        d.kill9()
        kills.append(time.monotonic())
        s.note("daemon killed")
        # the stream keeps going into the broker while the daemon is dead
        return [(1.0, restart)]

    def restart():
        d.start()
        s.note("daemon restarted")

    s.run([(0.25, kill)])
    assert kills and d.starts == 2, "the kill happened mid-stream"
    s.verify(d)
    # the restarted daemon stays healthy
    assert d.ctl("status")[0] == 0


def test_broker_restart_mid_stream(daemon, broker, stream_factory):
    d = daemon()
    s = stream_factory(n_devices=4, per_device=500)   # 2000 events
    register(d, s.devices)
    watch = d._watcher()
    state = {}

    def stop_broker():
        state["mark"] = watch.mark()
        broker.stop()
        s.note("broker stopped")
        return [(1.0, start_broker)]

    def start_broker():
        broker.start()
        s.note("broker restarted")

    s.run([(0.4, stop_broker)])
    assert "mark" in state
    s.verify(d, stored_at_most_once=False)
    assert d.proc.poll() is None, "the daemon survived the broker restart"
    # it came back by itself and said so
    watch.wait_for(f"{PREFIX}/gateway/status", lambda m: m.payload == b"online",
                   after=state["mark"])
    st = d.ctl_json("status")
    assert st["mqtt"]["connected"] is True, st["mqtt"]


def test_kill9_and_broker_restart_mid_stream(daemon, broker, stream_factory):
    d = daemon()
    s = stream_factory(n_devices=4, per_device=500)   # 2000 events
    register(d, s.devices)

    def kill():
        d.kill9()
        s.note("daemon killed")
        return [(0.5, restart)]

    def restart():
        d.start()
        s.note("daemon restarted")

    def bounce():
        broker.stop()
        s.note("broker stopped")
        return [(1.0, unbounce)]

    def unbounce():
        broker.start()
        s.note("broker restarted")

    s.run([(0.25, kill), (0.6, bounce)])
    s.verify(d, stored_at_most_once=False)
    assert d.proc.poll() is None


def test_daemon_starts_before_broker(daemon, broker, mqtt_factory):
    broker.stop()
    d = daemon(start=False)
    d.start(wait_online=False)
    st = d.ctl_json("status")
    assert st["mqtt"]["connected"] is False, st["mqtt"]
    broker.start()
    c = mqtt_factory()
    c.wait_for(f"{PREFIX}/gateway/status", lambda m: m.payload == b"online", timeout=40)
    r, _ = c.event("p-1", {"id": 1, "type": "panic"})
    assert r["status"] == "stored" and isinstance(r["alarm"], int), r
    assert d.ctl_json("status")["mqtt"]["connected"] is True


def test_open_alarm_survives_restart(daemon, mqtt, broker):
    d = daemon()
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    r, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    alarm = r["alarm"]
    assert r["status"] == "stored" and isinstance(alarm, int), r
    d.kill9()
    d.start()
    # the duplicate is answered from the store, with its alarm
    r2, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    assert r2["status"] == "duplicate" and r2["alarm"] == alarm, r2
    # the open alarm was reloaded: a new panic joins it
    r3, _ = mqtt.event("p-1", {"id": "e-2", "type": "fall"})
    assert r3["status"] == "stored" and r3["alarm"] == alarm, r3
    a = d.ctl_json("alarm", "show", alarm)
    assert a["state"] == "open" and a["types"] == ["panic", "fall"], a
    # new alarms get new ids after a restart
    r4, _ = mqtt.event("p-2", {"id": "e-1", "type": "panic"})
    assert isinstance(r4["alarm"], int) and r4["alarm"] != alarm, r4
    assert len({x["id"] for x in d.query("SELECT id FROM alarms")}) == 2


def test_board_republished_after_broker_restart(daemon, mqtt, broker):
    """persistence is off: the restarted broker has forgotten every retained
    message; the daemon publishes presence and the board again."""
    d = daemon()
    r, _ = mqtt.event("p-1", {"id": 1, "type": "panic"})
    alarm = r["alarm"]
    assert isinstance(alarm, int)
    mark = mqtt.mark()
    assert d.ctl("status")[0] == 0
    broker.restart()
    mqtt.wait_for(f"{PREFIX}/gateway/status", lambda m: m.payload == b"online", after=mark,
                  timeout=40)
    mqtt.wait_for(f"{PREFIX}/alarms/{alarm}", lambda m: len(m.payload) > 0, after=mark)
    mqtt.wait_for(f"{PREFIX}/dev/p-1/alarm", lambda m: m.json()["alarm"] == alarm, after=mark)
    # and it serves devices again (its subscription is back)
    r2, _ = mqtt.event("p-1", {"id": 2, "type": "panic"})
    assert r2["status"] == "stored" and r2["alarm"] == alarm, r2


def test_events_queued_while_daemon_down(daemon, mqtt):
    """Persistent session, QoS 1 subscription: what devices sent while the
    daemon was stopped is delivered to it when it comes back, without any
    resend."""
    d = daemon()
    for how in ("sigterm", "kill9"):
        if how == "sigterm":
            assert d.sigterm() == 0
        else:
            d.kill9()
        topic = f"{PREFIX}/dev/q-1/receipt"
        mark = mqtt.mark(topic)
        ids = [f"{how}-{i}" for i in range(20)]
        for i in ids:
            mqtt.publish(f"{PREFIX}/dev/q-1/event", {"id": i, "type": "heartbeat"})
        d.start()
        for i in ids:
            m = mqtt.wait_for(topic, lambda m, i=i: m.json()["id"] == i, after=mark)
            assert m.json()["status"] == "stored", m
    assert len(d.query("SELECT seq FROM events WHERE device_id = 'q-1'")) == 40


def test_alarm_ids_not_reused_after_restart(daemon, mqtt):
    """The newest alarm is already resolved (a test alarm) when the daemon is
    killed: the next alarm after the restart must get a new id."""
    d = daemon()
    r1, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    r2, _ = mqtt.event("p-2", {"id": "t-1", "type": "panic", "test": True})
    assert isinstance(r1["alarm"], int) and isinstance(r2["alarm"], int) and r2["alarm"] > r1["alarm"]
    d.kill9()
    d.start()
    r3, _ = mqtt.event("p-3", {"id": "e-1", "type": "fall"})
    assert r3["status"] == "stored", r3
    assert r3["alarm"] not in (r1["alarm"], r2["alarm"]), (r1, r2, r3)
    test_alarm = d.ctl_json("alarm", "show", r2["alarm"])
    assert test_alarm["device"] == "p-2" and test_alarm["outcome"] == "test", test_alarm
    assert d.ctl_json("alarm", "show", r3["alarm"])["device"] == "p-3"
    seqs = [x["seq"] for x in d.query("SELECT seq FROM events ORDER BY seq")]
    assert len(seqs) == len(set(seqs)) == 3


def test_technical_alarm_survives_restart(daemon, mqtt, broker):
    d = daemon()
    r1, _ = mqtt.event("p-1", {"id": 1, "type": "connection_lost"})
    tech = r1["alarm"]
    assert isinstance(tech, int), r1
    r2, _ = mqtt.event("p-1", {"id": 2, "type": "fall"})
    care = r2["alarm"]
    assert isinstance(care, int) and care != tech, r2
    d.kill9()
    d.start()
    r3, _ = mqtt.event("p-1", {"id": 3, "type": "connection_lost"})
    assert r3["alarm"] == tech, "the reloaded technical alarm is joined"
    r4, _ = mqtt.event("p-1", {"id": 4, "type": "connection_restored"})
    assert r4["status"] == "stored", r4
    a = d.ctl_json("alarm", "show", tech)
    assert a["state"] == "resolved" and a["outcome"] == "restored", a
    assert d.ctl_json("alarm", "show", care)["state"] == "open"
    r5, _ = mqtt.event("p-1", {"id": 5, "type": "cancel"})
    assert r5["alarm"] == care, r5
    held = retained(broker.port, f"{PREFIX}/alarms/+")
    assert f"{PREFIX}/alarms/{tech}" not in held and f"{PREFIX}/alarms/{care}" in held, sorted(held)
