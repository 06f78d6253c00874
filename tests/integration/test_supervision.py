"""Supervision (issue 4): silent devices, low batteries, storms, and the
gateway's own link to the broker. Real broker, real daemon, short intervals."""
import http.server
import json
import threading
import time

import pytest

from conftest import PREFIX, retained, wait_until

SUP = {"grace": "500ms", "battery_low": "20", "battery_hysteresis": "10",
       "storm_devices": "5", "storm_window": "30s", "broker_outage": "1s"}


def board(broker):
    return {t: m.json() for t, m in retained(broker.port, f"{PREFIX}/alarms/+").items() if m.payload}


def technical(broker, device, type_):
    return [a for a in board(broker).values() if a["device"] == device and a["types"] == [type_]]


def open_alarms(d):
    return d.ctl_json("alarm", "list", "--open")


def test_silent_device_opens_connection_lost_and_speaking_resolves_it(daemon, mqtt, broker):
    d = daemon({"supervision": SUP})
    d.add_resident("r-1")
    d.add_device("p-1", "r-1", "--heartbeat", "1s")
    assert d.ctl_json("device", "show", "p-1")["supervision"] == "ok"
    wait_until(lambda: technical(broker, "p-1", "connection_lost"), 10, "connection_lost on the board")
    alarm = technical(broker, "p-1", "connection_lost")[0]
    assert alarm["technical"] is True and alarm["priority"] == 3
    tl = d.ctl_json("alarm", "show", alarm["alarm"])["timeline"]
    assert "never heard" in tl[0]["detail"] or "silent for" in tl[0]["detail"]
    assert d.ctl_json("device", "show", "p-1")["supervision"] == "silent"

    receipt, _ = mqtt.event("p-1", {"id": "hb-1", "type": "heartbeat"})
    assert receipt["status"] == "stored"
    wait_until(lambda: d.ctl_json("alarm", "show", alarm["alarm"])["state"] == "resolved", 10,
               "the connection_lost alarm to resolve")
    shown = d.ctl_json("alarm", "show", alarm["alarm"])
    assert shown["outcome"] == "restored"
    assert any(e["detail"] == "connection_restored" for e in shown["timeline"])
    assert d.ctl_json("device", "show", "p-1")["supervision"] == "ok"
    # heard regularly: no new alarm
    for i in range(4):
        mqtt.event("p-1", {"id": f"hb-{i + 2}", "type": "heartbeat"})
        time.sleep(0.4)
    assert not technical(broker, "p-1", "connection_lost")


def test_low_battery_opens_one_alarm_and_clears_with_hysteresis(daemon, mqtt, broker):
    d = daemon({"supervision": SUP})
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    for i, b in enumerate([15, 14, 13, 12, 11]):
        r, _ = mqtt.event("p-1", {"id": f"b-{i}", "type": "heartbeat", "battery": b})
        assert r["status"] == "stored"
    lows = [a for a in open_alarms(d) if a["types"] == ["low_battery"]]
    assert len(lows) == 1, lows
    mqtt.event("p-1", {"id": "b-up1", "type": "heartbeat", "battery": 25})   # < 20 + 10: stays
    assert [a["alarm"] for a in open_alarms(d) if a["types"] == ["low_battery"]] == [lows[0]["alarm"]]
    mqtt.event("p-1", {"id": "b-up2", "type": "heartbeat", "battery": 31})
    wait_until(lambda: not [a for a in open_alarms(d) if a["types"] == ["low_battery"]], 10,
               "low_battery to clear")
    assert d.ctl_json("alarm", "show", lows[0]["alarm"])["outcome"] == "restored"


def test_fifty_devices_falling_silent_make_one_storm_incident(daemon, mqtt, broker):
    d = daemon({"supervision": SUP})
    d.add_resident("r-1")
    # register all of them first, with a heartbeat long enough to do so...
    for i in range(50):
        d.add_device(f"s-{i:02d}", "r-1", "--heartbeat", "2s")
    # ...then nobody speaks
    wait_until(lambda: any(a["device"] == "telecared" for a in open_alarms(d)), 20, "a storm alarm")
    wait_until(lambda: all(d.ctl_json("device", "show", f"s-{i:02d}")["supervision"] == "silent"
                           for i in (0, 25, 49)), 20, "all devices silent")
    time.sleep(1.0)
    alarms = open_alarms(d)
    storms = [a for a in alarms if a["device"] == "telecared"]
    per_device = [a for a in alarms if a["device"].startswith("s-")]
    assert len(storms) == 1, storms
    assert per_device == [], f"{len(per_device)} per-device alarms left open: not folded"
    shown = d.ctl_json("alarm", "show", storms[0]["alarm"])
    assert "devices fell silent" in shown["timeline"][0]["detail"]
    joined = {e["actor"] for e in shown["timeline"] if e["what"] == "joined"}
    assert len(joined) == 50, sorted(joined)
    # every device speaks again: the incident resolves
    for i in range(50):
        mqtt.publish(f"{PREFIX}/dev/s-{i:02d}/event", {"id": "back", "type": "heartbeat"})
    wait_until(lambda: d.ctl_json("alarm", "show", storms[0]["alarm"])["state"] == "resolved", 20,
               "the storm incident to resolve")


class Hook(http.server.BaseHTTPRequestHandler):
    bodies = []

    def do_POST(self):
        Hook.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def hook():
    Hook.bodies = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def test_broker_outage_pauses_supervision_and_is_alerted_by_webhook(daemon, mqtt, broker, hook):
    d = daemon({"supervision": SUP})
    d.add_resident("r-1")
    d.add_device("p-1", "r-1", "--heartbeat", "1500ms")
    rc, _, err = d.ctl("worker", "add", "w-1", "--name", "Night Desk", "--webhook", hook)
    assert rc == 0, err
    assert d.ctl("shift", "add", "w-1", "--always")[0] == 0
    mqtt.event("p-1", {"id": "hb-0", "type": "heartbeat"})
    mqtt.close()
    broker.stop()
    # the broker is away far longer than p-1's heartbeat + grace...
    wait_until(lambda: any(b["device"] == "telecared" and b["types"] == ["connection_lost"]
                           for b in Hook.bodies), 15, "the broker-outage alert by webhook")
    time.sleep(3)
    alarms = open_alarms(d)
    assert [a for a in alarms if a["device"] == "telecared"], alarms
    # ...but the gateway could not hear anyone: p-1 is not blamed
    assert not [a for a in alarms if a["device"] == "p-1"], alarms
    broker.start()
    wait_until(lambda: d.ctl_json("status")["mqtt"]["connected"], 20, "the reconnect")
    wait_until(lambda: not [a for a in open_alarms(d) if a["device"] == "telecared"], 10,
               "the outage alarm to resolve")
    # and p-1 gets a full interval after the reconnect before it counts as silent
    assert not [a for a in open_alarms(d) if a["device"] == "p-1"]
