"""Unregistered devices (SPEC 3): stored, listed by `telecarectl device
unknown`, and alarmed or only logged per [alarms] unknown_devices."""
import re

from conftest import PREFIX, retained

UNKNOWN_KEYS = {"device", "events", "first_seen", "last_seen", "last_type"}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def unknown_entry(d, device):
    listed = d.ctl_json("device", "unknown")
    assert isinstance(listed, list), listed
    for x in listed:
        assert UNKNOWN_KEYS <= set(x), f"device unknown entry lacks {UNKNOWN_KEYS - set(x)}: {x}"
    found = [x for x in listed if x["device"] == device]
    return found[0] if found else None, listed


def test_unknown_device_opens_alarm(daemon, mqtt, broker):
    d = daemon()  # unknown_devices = alarm
    r, _ = mqtt.event("stranger-1", {"id": "u-1", "type": "panic"})
    assert r["status"] == "stored", r
    alarm = r["alarm"]
    assert isinstance(alarm, int), f"an unknown pendant still gets help: {r}"

    a = d.ctl_json("alarm", "show", alarm)
    assert a["state"] == "open" and a["device"] == "stranger-1", a
    assert a["resident"] is None, a
    row = d.query("SELECT resident_id, state FROM alarms WHERE id = ?", (alarm,))
    assert row == [{"resident_id": None, "state": "open"}], row
    board = mqtt.wait_for(f"{PREFIX}/alarms/{alarm}", lambda m: len(m.payload) > 0).json()
    assert board["device"] == "stranger-1" and board["resident"] is None, board
    ev = d.query("SELECT known, alarm_id FROM events WHERE device_id = 'stranger-1'")
    assert ev == [{"known": 0, "alarm_id": alarm}], ev

    r2, _ = mqtt.event("stranger-1", {"id": "u-2", "type": "heartbeat"})
    assert r2["status"] == "stored" and r2["alarm"] is None, r2

    entry, listed = unknown_entry(d, "stranger-1")
    assert entry is not None, f"stranger-1 not listed: {listed}"
    assert entry["events"] == 2, entry
    assert entry["last_type"] == "heartbeat", entry
    assert RFC3339_UTC.match(entry["first_seen"]) and RFC3339_UTC.match(entry["last_seen"]), entry
    assert entry["first_seen"] <= entry["last_seen"], entry
    assert f"{PREFIX}/alarms/{alarm}" in retained(broker.port, f"{PREFIX}/alarms/+")


def test_registered_devices_are_not_unknown(daemon, mqtt):
    d = daemon()
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    r, _ = mqtt.event("p-1", {"id": 1, "type": "heartbeat"})
    assert r["status"] == "stored", r
    r, _ = mqtt.event("stranger-9", {"id": 1, "type": "heartbeat"})
    assert r["status"] == "stored", r
    listed = d.ctl_json("device", "unknown")
    assert [x["device"] for x in listed] == ["stranger-9"], listed
    rows = d.query("SELECT device_id, known FROM events ORDER BY seq")
    assert rows == [{"device_id": "p-1", "known": 1}, {"device_id": "stranger-9", "known": 0}]


def test_unknown_policy_defaults_to_alarm(daemon, mqtt):
    d = daemon({"alarms": {"unknown_devices": None}})
    assert "unknown_devices" not in d.conf.read_text()
    r, _ = mqtt.event("stranger-1", {"id": "u-1", "type": "fall"})
    assert r["status"] == "stored" and isinstance(r["alarm"], int), r


def test_unknown_device_log_policy(daemon, mqtt):
    d = daemon({"alarms": {"unknown_devices": "log"}})
    r, _ = mqtt.event("stranger-2", {"id": "u-1", "type": "panic"})
    assert r["status"] == "stored", r
    assert r["alarm"] is None, f"with unknown_devices = log nothing opens: {r}"
    r2, _ = mqtt.event("stranger-2", {"id": "u-2", "type": "power_loss"})
    assert r2["status"] == "stored" and r2["alarm"] is None, r2

    entry, listed = unknown_entry(d, "stranger-2")
    assert entry is not None, f"stranger-2 not listed: {listed}"
    assert entry["events"] == 2 and entry["last_type"] == "power_loss", entry
    assert d.query("SELECT id FROM alarms") == []
    assert d.ctl_json("alarm", "list") == []
    ev = d.query("SELECT known, alarm_id FROM events WHERE device_id = 'stranger-2' ORDER BY seq")
    assert ev == [{"known": 0, "alarm_id": None}] * 2, ev

    # a registered device still opens alarms under the log policy
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    r3, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    assert r3["status"] == "stored" and isinstance(r3["alarm"], int), r3
    # and, by then, nothing was ever on the board for stranger-2
    boards = [m.json() for m in mqtt.matching(f"{PREFIX}/alarms/+") if m.payload]
    assert all(b["device"] == "p-1" for b in boards), boards
