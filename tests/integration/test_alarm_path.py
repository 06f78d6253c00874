"""The alarm path (SPEC 2.1-2.3, 2.6, 3): a device event becomes a stored,
receipted event and an open alarm on the board."""
import json

import pytest

from conftest import PREFIX, compact, retained, same_json, wait_until

BOARD_KEYS = {"alarm", "state", "priority", "types", "level", "device", "test", "resident",
              "opened_at", "loc", "acked_by", "acked_at"}


@pytest.fixture
def home(daemon):
    """A daemon with resident r-1 and its pendant p-1 registered."""
    d = daemon()
    d.add_resident("r-1", "Anna Kowalska", "--address", "ul. Słowackiego 12/3",
                   "--phone", "+48 600 000 000", "--team", "north",
                   "--notes", "key safe 1234; diabetic")
    d.add_device("p-1", "r-1", "--kind", "pendant")
    return d


def board_topic(alarm):
    return f"{PREFIX}/alarms/{alarm}"


def dev_alarm_topic(device):
    return f"{PREFIX}/dev/{device}/alarm"


def non_empty(m):
    return len(m.payload) > 0


def show(d, alarm):
    return d.ctl_json("alarm", "show", alarm)


def timeline_whats(a):
    return [t["what"] for t in a["timeline"]]


def test_registered_panic_opens_alarm(home, mqtt, broker):
    d = home
    ev = {"id": "e-1", "type": "panic", "battery": 80, "rssi": -70,
          "ts": "2026-11-22T10:15:00Z", "loc": {"lat": 52.2297, "lon": 21.0122, "acc": 15},
          "text": "help", "vendor_field": {"x": 1}}
    r, rmsg = mqtt.event("p-1", ev)
    assert r["status"] == "stored", r
    assert same_json(r["id"], "e-1"), r
    alarm = r["alarm"]
    assert isinstance(alarm, int) and not isinstance(alarm, bool) and alarm > 0, r
    assert not rmsg.retain, "receipts are not retained"

    # the event log
    rows = d.query("SELECT * FROM events WHERE device_id = ?", ("p-1",))
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["eid"] == compact("e-1")
    assert row["type"] == "panic"
    assert row["known"] == 1
    assert row["alarm_id"] == alarm
    stored = json.loads(row["payload"])
    assert stored["battery"] == 80
    assert stored["vendor_field"] == {"x": 1}, "unknown fields are kept in the stored payload"

    # the alarm row
    arows = d.query("SELECT * FROM alarms WHERE id = ?", (alarm,))
    assert len(arows) == 1, arows
    a = arows[0]
    assert a["device_id"] == "p-1"
    assert a["resident_id"] == "r-1"
    assert a["priority"] == 1
    assert a["state"] == "open"
    assert not a["test"] and not a["technical"]

    # the dispatch board (SPEC 2.6)
    bm = mqtt.wait_for(board_topic(alarm), non_empty)
    board = bm.json()
    assert BOARD_KEYS <= set(board), f"board lacks {BOARD_KEYS - set(board)}: {board}"
    assert board["alarm"] == alarm
    assert board["state"] == "open"
    assert board["priority"] == 1
    assert board["types"] == ["panic"]
    assert board["device"] == "p-1"
    assert board["test"] is False
    assert board["resident"]["id"] == "r-1"
    assert board["resident"]["name"] == "Anna Kowalska"
    assert board["loc"]["lat"] == pytest.approx(52.2297)
    assert board["loc"]["lon"] == pytest.approx(21.0122)
    assert board["acked_by"] is None and board["acked_at"] is None

    # the device's alarm state (SPEC 2.3)
    dm = mqtt.wait_for(dev_alarm_topic("p-1"), non_empty)
    st = dm.json()
    assert st["alarm"] == alarm and st["state"] == "open", st

    # both retained: a console or pendant that connects later sees them
    held = retained(broker.port, f"{PREFIX}/#")
    assert board_topic(alarm) in held, sorted(held)
    assert held[board_topic(alarm)].json()["alarm"] == alarm
    assert dev_alarm_topic("p-1") in held, sorted(held)
    assert held[dev_alarm_topic("p-1")].json() == st

    # telecarectl sees the same alarm
    s = show(d, alarm)
    assert s["state"] == "open" and s["device"] == "p-1" and s["priority"] == 1
    assert s["resident"]["id"] == "r-1"
    assert timeline_whats(s)[:1] == ["opened"], s["timeline"]
    listed = d.ctl_json("alarm", "list", "--open")
    assert [x["alarm"] for x in listed] == [alarm]


def test_second_panic_joins_alarm(home, mqtt):
    d = home
    r1, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    alarm = r1["alarm"]
    assert r1["status"] == "stored" and isinstance(alarm, int), r1
    r2, _ = mqtt.event("p-1", {"id": "e-2", "type": "panic"})
    assert r2 == {**r2, "status": "stored", "alarm": alarm}, r2
    r3, _ = mqtt.event("p-1", {"id": "e-3", "type": "fall"})
    assert r3["status"] == "stored" and r3["alarm"] == alarm, r3

    assert len(d.query("SELECT id FROM alarms WHERE device_id = 'p-1'")) == 1
    rows = d.query("SELECT eid, alarm_id FROM events WHERE device_id = 'p-1' ORDER BY seq")
    assert [(x["eid"], x["alarm_id"]) for x in rows] == \
        [(compact("e-1"), alarm), (compact("e-2"), alarm), (compact("e-3"), alarm)]

    s = show(d, alarm)
    assert s["types"] == ["panic", "fall"], s["types"]
    assert s["state"] == "open"
    whats = timeline_whats(s)
    assert whats.count("opened") == 1 and whats.count("joined") == 2, whats
    assert sorted(e["id"] for e in s["events"]) == ["e-1", "e-2", "e-3"], s["events"]

    # the board follows: the latest summary lists both types
    mqtt.wait_for(board_topic(alarm), lambda m: m.json()["types"] == ["panic", "fall"])


def test_more_urgent_event_raises_priority(home, mqtt):
    d = home
    r1, _ = mqtt.event("p-1", {"id": 1, "type": "inactivity"})
    alarm = r1["alarm"]
    assert r1["status"] == "stored" and isinstance(alarm, int), r1
    assert show(d, alarm)["priority"] == 2
    mqtt.wait_for(board_topic(alarm), lambda m: m.json()["priority"] == 2)
    r2, _ = mqtt.event("p-1", {"id": 2, "type": "fall"})
    assert r2["status"] == "stored" and r2["alarm"] == alarm, r2
    s = show(d, alarm)
    assert s["priority"] == 1 and s["types"] == ["inactivity", "fall"], s
    mqtt.wait_for(board_topic(alarm), lambda m: m.json()["priority"] == 1)
    # a less urgent one joins without lowering it
    r3, _ = mqtt.event("p-1", {"id": 3, "type": "door"})
    assert r3["alarm"] == alarm, r3
    assert show(d, alarm)["priority"] == 1


def test_duplicate_is_answered_not_stored(home, mqtt):
    d = home
    r1, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    alarm = r1["alarm"]
    assert r1["status"] == "stored", r1

    # the same id again, even with a different body: a duplicate
    r2, _ = mqtt.event("p-1", {"id": "e-1", "type": "fall"})
    assert r2["status"] == "duplicate", r2
    assert same_json(r2["id"], "e-1")
    assert r2["alarm"] == alarm, r2
    assert show(d, alarm)["types"] == ["panic"], "a duplicate must not join the alarm"

    # integer ids keep their JSON type; 42 and "42" are different ids
    r3, _ = mqtt.event("p-1", {"id": 42, "type": "heartbeat"})
    assert r3["status"] == "stored" and same_json(r3["id"], 42), r3
    assert r3["alarm"] is None, "a heartbeat opens no alarm"
    r4, _ = mqtt.event("p-1", {"id": "42", "type": "heartbeat"})
    assert r4["status"] == "stored" and same_json(r4["id"], "42"), r4
    r5, _ = mqtt.event("p-1", {"id": 42, "type": "heartbeat"})
    assert r5["status"] == "duplicate" and same_json(r5["id"], 42), r5
    assert r5["alarm"] is None, r5
    r6, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    assert r6["status"] == "duplicate" and r6["alarm"] == alarm, r6

    rows = d.query("SELECT eid FROM events WHERE device_id = 'p-1' ORDER BY seq")
    assert [x["eid"] for x in rows] == [compact("e-1"), "42", compact("42")], rows
    counts = d.ctl_json("status")["counts"]
    assert counts["events_stored"] == 3, counts
    assert counts["events_duplicate"] == 3, counts


def test_same_id_on_another_device_is_not_a_duplicate(home, mqtt):
    d = home
    d.add_device("p-2", "r-1")
    r1, _ = mqtt.event("p-1", {"id": "e-1", "type": "heartbeat"})
    r2, _ = mqtt.event("p-2", {"id": "e-1", "type": "heartbeat"})
    assert r1["status"] == "stored" and r2["status"] == "stored", (r1, r2)
    assert len(d.query("SELECT seq FROM events WHERE eid = ?", (compact("e-1"),))) == 2


def test_test_alarm_is_resolved_at_once(home, mqtt, broker):
    d = home
    r, _ = mqtt.event("p-1", {"id": "t-1", "type": "panic", "test": True})
    assert r["status"] == "stored", r
    alarm = r["alarm"]
    assert isinstance(alarm, int), f"a test alarm is confirmed with its alarm id: {r}"

    s = show(d, alarm)
    assert s["state"] == "resolved", s
    assert s["outcome"] == "test", s
    assert s["test"] is True, s
    arow = d.query("SELECT state, test FROM alarms WHERE id = ?", (alarm,))
    assert arow and arow[0]["state"] == "resolved" and arow[0]["test"], arow

    # a barrier: a later event's receipt, then nothing for the test alarm on the board
    rb, _ = mqtt.event("p-1", {"id": "hb-1", "type": "heartbeat"})
    assert rb["status"] == "stored"
    shown = [m for m in mqtt.messages(board_topic(alarm)) if m.payload]
    assert shown == [], f"a test alarm must never appear on the board: {shown}"
    assert board_topic(alarm) not in retained(broker.port, f"{PREFIX}/alarms/+")

    # it is over: a real panic opens a new alarm
    r2, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    assert r2["status"] == "stored" and isinstance(r2["alarm"], int), r2
    assert r2["alarm"] != alarm, "a real alarm must not join a resolved test alarm"
    assert show(d, r2["alarm"])["state"] == "open"
    mqtt.wait_for(board_topic(r2["alarm"]), non_empty)


def test_cancel_is_recorded_on_the_open_alarm(home, mqtt):
    d = home
    r1, _ = mqtt.event("p-1", {"id": "e-1", "type": "fall"})
    alarm = r1["alarm"]
    assert r1["status"] == "stored" and isinstance(alarm, int), r1
    rc, _ = mqtt.event("p-1", {"id": "c-1", "type": "cancel"})
    assert rc["status"] == "stored", rc
    assert rc["alarm"] == alarm, f"the cancel receipt carries the care alarm: {rc}"
    s = show(d, alarm)
    assert "cancelled" in timeline_whats(s), s["timeline"]
    # default on_cancel = keep: the alarm stays open
    assert s["state"] == "open", s
    row = d.query("SELECT type, alarm_id FROM events WHERE eid = ?", (compact("c-1"),))
    assert row == [{"type": "cancel", "alarm_id": alarm}], row


def test_cancel_without_alarm_is_only_stored(home, mqtt):
    d = home
    r, _ = mqtt.event("p-1", {"id": "c-1", "type": "cancel"})
    assert r["status"] == "stored" and r["alarm"] is None, r
    assert d.query("SELECT id FROM alarms") == []


def test_technical_alarms_and_restoral(home, mqtt, broker):
    d = home
    rc, _ = mqtt.event("p-1", {"id": "e-1", "type": "panic"})
    care = rc["alarm"]
    assert rc["status"] == "stored" and isinstance(care, int), rc

    r1, _ = mqtt.event("p-1", {"id": "pl-1", "type": "power_loss"})
    pl = r1["alarm"]
    assert r1["status"] == "stored" and isinstance(pl, int), r1
    assert pl != care, "a technical condition has its own alarm, not the care alarm"
    r2, _ = mqtt.event("p-1", {"id": "lb-1", "type": "low_battery", "battery": 5})
    lb = r2["alarm"]
    assert r2["status"] == "stored" and isinstance(lb, int) and lb not in (care, pl), r2
    r3, _ = mqtt.event("p-1", {"id": "pl-2", "type": "power_loss"})
    assert r3["status"] == "stored" and r3["alarm"] == pl, "power_loss again joins its alarm"

    s = show(d, pl)
    assert s["priority"] == 3 and s["types"] == ["power_loss"] and s["state"] == "open", s
    assert show(d, lb)["priority"] == 3
    assert d.query("SELECT technical FROM alarms WHERE id = ?", (pl,))[0]["technical"]
    assert not d.query("SELECT technical FROM alarms WHERE id = ?", (care,))[0]["technical"]
    mqtt.wait_for(board_topic(pl), lambda m: m.json()["priority"] == 3)
    mqtt.wait_for(board_topic(lb), non_empty)

    # the restoral resolves the matching technical alarm, and only that one
    mark = mqtt.mark(board_topic(pl))
    r4, _ = mqtt.event("p-1", {"id": "pr-1", "type": "power_restored"})
    assert r4["status"] == "stored", r4
    s = show(d, pl)
    assert s["state"] == "resolved" and s["outcome"] == "restored", s
    assert show(d, lb)["state"] == "open"
    assert show(d, care)["state"] == "open"
    mqtt.wait_for(board_topic(pl), lambda m: m.payload == b"", after=mark)

    # a restoral with nothing to restore is just stored
    r5, _ = mqtt.event("p-1", {"id": "cr-1", "type": "connection_restored"})
    assert r5["status"] == "stored" and r5["alarm"] is None, r5
    # a second power_loss now opens a new technical alarm
    r6, _ = mqtt.event("p-1", {"id": "pl-3", "type": "power_loss"})
    assert r6["status"] == "stored" and isinstance(r6["alarm"], int), r6
    assert r6["alarm"] not in (care, pl, lb)

    held = retained(broker.port, f"{PREFIX}/alarms/+")
    assert board_topic(pl) not in held, "a resolved alarm is cleared from the board"
    assert {board_topic(care), board_topic(lb), board_topic(r6["alarm"])} <= set(held), sorted(held)

    # the device's alarm-state topic shows its care alarm only
    states = [m.json() for m in mqtt.messages(dev_alarm_topic("p-1")) if m.payload]
    assert states and all(x["alarm"] == care for x in states), states


def test_heartbeat_only_stored(home, mqtt):
    d = home
    r, _ = mqtt.event("p-1", {"id": "hb-1", "type": "heartbeat", "battery": 77, "rssi": -80})
    assert r == {**r, "status": "stored", "alarm": None}, r
    assert d.query("SELECT id FROM alarms") == []
    dev = d.ctl_json("device", "show", "p-1")
    assert dev["battery"] == 77 and dev["rssi"] == -80, dev
    assert dev["last_seen"] is not None
    assert [e["id"] for e in dev["events"]] == ["hb-1"], dev["events"]
    evs = d.ctl_json("events", "--device", "p-1")
    assert [(e["id"], e["type"], e["known"]) for e in evs] == [("hb-1", "heartbeat", True)], evs


def test_same_event_many_times_at_once(home, mqtt):
    """Resends that arrive before the first copy is committed are still
    duplicates: exactly one stored, one row."""
    d = home
    topic = f"{PREFIX}/dev/p-1/receipt"
    mark = mqtt.mark(topic)
    for _ in range(10):
        mqtt.publish(f"{PREFIX}/dev/p-1/event", {"id": "burst", "type": "panic"})
    wait_until(lambda: len(mqtt.messages(topic, after=mark)) >= 10, 15, "10 receipts")
    rs = [m.json() for m in mqtt.messages(topic, after=mark)]
    assert len(rs) == 10, rs
    assert sorted(r["status"] for r in rs) == ["duplicate"] * 9 + ["stored"], rs
    assert len({r["alarm"] for r in rs}) == 1 and isinstance(rs[0]["alarm"], int), rs
    assert len(d.query("SELECT seq FROM events WHERE device_id = 'p-1'")) == 1
    assert show(d, rs[0]["alarm"])["types"] == ["panic"]
    whats = timeline_whats(show(d, rs[0]["alarm"]))
    assert whats.count("joined") == 0, whats


def test_devices_get_their_own_alarms(home, mqtt, broker):
    d = home
    for i in range(2, 6):
        d.add_device(f"p-{i}", "r-1")
    alarms = {}
    for i in range(1, 6):
        r, _ = mqtt.event(f"p-{i}", {"id": "e-1", "type": "panic"})
        assert r["status"] == "stored" and isinstance(r["alarm"], int), r
        alarms[f"p-{i}"] = r["alarm"]
    assert len(set(alarms.values())) == 5, alarms
    for dev, a in alarms.items():
        mqtt.wait_for(dev_alarm_topic(dev), lambda m, a=a: m.json()["alarm"] == a)
        assert show(d, a)["device"] == dev
    held = retained(broker.port, f"{PREFIX}/alarms/+")
    assert {board_topic(a) for a in alarms.values()} <= set(held), sorted(held)
    assert len(d.ctl_json("alarm", "list", "--open")) == 5
    assert d.ctl_json("status")["counts"]["alarms_open"] == 5
