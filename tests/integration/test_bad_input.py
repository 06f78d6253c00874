"""Bad input (SPEC 2.1, 2.2, 7): every class of malformed event gets a
`rejected` receipt with a readable error, is kept in `rejects`, is logged,
and the daemon goes on storing the next good event."""
import json
import sys

import pytest

from conftest import PREFIX, compact, same_json, tail, wait_until

NO_ID = object()     # the receipt's id must be null: there is none to read
ANY_ID = object()    # "the id when one could be read": either is fine


def obj(**fields):
    return json.dumps(fields).encode()


BASE = {"id": "e-1", "type": "panic"}


def with_(**fields):
    return json.dumps({**BASE, **fields}).encode()


def without(key):
    d = dict(BASE)
    del d[key]
    return json.dumps(d).encode()


def oversize():
    body = {**BASE, "pad": ""}
    base_len = len(json.dumps(body))
    body["pad"] = "x" * (4097 - base_len + 200)
    raw = json.dumps(body).encode()
    assert len(raw) > 4096
    return raw


# (case name, payload bytes, expected receipt id, word the error should mention)
CASES = [
    ("not_json", b"this is not json", NO_ID, None),
    ("truncated_json", b'{"id": "e-1", "type": "panic"', NO_ID, None),
    ("empty_payload", b"", NO_ID, None),
    ("json_array", b'[{"id": "e-1", "type": "panic"}]', NO_ID, None),
    ("json_string", b'"panic"', NO_ID, None),
    ("json_number", b"42", NO_ID, None),
    ("json_null", b"null", NO_ID, None),
    ("missing_id", without("id"), NO_ID, "id"),
    ("id_too_long", with_(id="x" * 65), ANY_ID, "id"),
    ("id_empty", with_(id=""), ANY_ID, "id"),
    ("id_control_char", with_(id="e\u00011"), ANY_ID, "id"),
    ("id_non_ascii", with_(id="e-\u00e91"), ANY_ID, "id"),
    ("id_negative", with_(id=-1), ANY_ID, "id"),
    ("id_float", with_(id=1.5), ANY_ID, "id"),
    ("id_bool", with_(id=True), ANY_ID, "id"),
    ("id_null", with_(id=None), ANY_ID, "id"),
    ("id_object", with_(id={"n": 1}), ANY_ID, "id"),
    ("missing_type", without("type"), "e-1", "type"),
    ("type_not_string", with_(type=1), "e-1", "type"),
    ("unknown_type", with_(type="explode"), "e-1", "type"),
    ("type_wrong_case", with_(type="PANIC"), "e-1", "type"),
    ("ts_garbage", with_(ts="yesterday"), "e-1", "ts"),
    ("ts_bool", with_(ts=True), "e-1", "ts"),
    ("ts_float", with_(ts=1700000000.5), "e-1", "ts"),
    ("battery_string", with_(battery="80"), "e-1", "battery"),
    ("battery_101", with_(battery=101), "e-1", "battery"),
    ("battery_negative", with_(battery=-1), "e-1", "battery"),
    ("battery_float", with_(battery=50.5), "e-1", "battery"),
    ("rssi_string", with_(rssi="-70"), "e-1", "rssi"),
    ("rssi_float", with_(rssi=-70.5), "e-1", "rssi"),
    ("test_string", with_(test="true"), "e-1", "test"),
    ("test_int", with_(test=1), "e-1", "test"),
    ("loc_array", with_(loc=[52.2, 21.0]), "e-1", "loc"),
    ("loc_missing_lon", with_(loc={"lat": 52.2}), "e-1", "loc"),
    ("loc_lat_string", with_(loc={"lat": "52.2", "lon": 21.0}), "e-1", "lat"),
    ("loc_lat_91", with_(loc={"lat": 91, "lon": 21.0}), "e-1", "lat"),
    ("loc_lon_181", with_(loc={"lat": 52.2, "lon": 181}), "e-1", "lon"),
    ("text_too_long", with_(text="x" * 257), "e-1", "text"),
    ("text_not_string", with_(text=5), "e-1", "text"),
    ("utf8_invalid_bytes", b'{"id": "e-1", "type": "panic", "text": "\xff\xfe"}', ANY_ID, None),
    ("utf8_overlong", b'{"id": "e-1", "type": "panic", "text": "\xc0\xaf"}', ANY_ID, None),
    ("utf8_surrogate", b'{"id": "e-1", "type": "panic", "text": "\xed\xa0\x80"}', ANY_ID, None),
    ("utf8_truncated", b'{"id": "e-1", "type": "panic", "text": "\xc5"}', ANY_ID, None),
    ("oversize", oversize(), ANY_ID, None),
    ("nul_byte_after_object", b'{"id": "e-1", "type": "panic"}\x00', ANY_ID, None),
    ("trailing_garbage", b'{"id": "e-1", "type": "panic"} x', ANY_ID, None),
]


def check_rejected(d, mqtt, topic_device, receipt, expect_id, mentions, event_topic):
    assert receipt["status"] == "rejected", receipt
    err = receipt.get("error")
    assert isinstance(err, str) and err.strip(), f"a rejected receipt carries an error: {receipt}"
    if mentions:
        assert mentions.lower() in err.lower(), f"error should name {mentions!r}: {err!r}"
    assert "id" in receipt, f"a rejected receipt has an id field (null or the id): {receipt}"
    if expect_id is NO_ID:
        assert receipt["id"] is None, receipt
    elif expect_id is not ANY_ID:
        assert same_json(receipt["id"], expect_id), f"the readable id is echoed: {receipt}"


@pytest.mark.parametrize("name,payload,expect_id,mentions", CASES, ids=[c[0] for c in CASES])
def test_rejected(daemon, mqtt, name, payload, expect_id, mentions):
    d = daemon()
    device = "bad-" + name.replace("_", "-")
    topic = f"{PREFIX}/dev/{device}/event"
    r, _ = mqtt.event(device, payload, match_id=False)
    check_rejected(d, mqtt, device, r, expect_id, mentions, topic)

    # the daemon still serves the same device; a rejected id is not "used"
    good, _ = mqtt.event(device, {"id": "e-1", "type": "heartbeat"})
    assert good["status"] == "stored", f"after a rejected event the next good one is stored: {good}"

    rows = d.query("SELECT * FROM rejects WHERE topic = ?", (topic,))
    assert len(rows) == 1, f"one rejects row for {topic}: {rows}"
    assert rows[0]["error"] and rows[0]["error"].strip(), rows
    ev = d.query("SELECT eid, type FROM events WHERE device_id = ?", (device,))
    assert ev == [{"eid": compact("e-1"), "type": "heartbeat"}], ev
    assert d.query("SELECT id FROM alarms WHERE device_id = ?", (device,)) == [], \
        "a rejected panic must not open an alarm"
    counts = d.ctl_json("status")["counts"]
    assert counts["events_rejected"] == 1, counts

    # a log line naming the device
    wait_until(lambda: device in tail(d.log, 10**7), 5, f"a log line naming {device}")


@pytest.mark.parametrize("bad", ["x" * 65, "bad$id", "bad id"], ids=["65_chars", "dollar", "space"])
def test_bad_device_id_in_topic(daemon, mqtt, bad):
    d = daemon()
    topic = f"{PREFIX}/dev/{bad}/event"
    r, _ = mqtt.event(bad, {"id": "e-1", "type": "panic"}, match_id=False)
    assert r["status"] == "rejected", r
    assert isinstance(r.get("error"), str) and r["error"].strip(), r

    good, _ = mqtt.event("good-1", {"id": "e-1", "type": "panic"})
    assert good["status"] == "stored", good

    rows = d.query("SELECT * FROM rejects WHERE topic = ?", (topic,))
    assert len(rows) == 1, f"one rejects row for {topic!r}: {d.query('SELECT * FROM rejects')}"
    assert rows[0]["error"].strip()
    assert d.query("SELECT seq FROM events WHERE device_id = ?", (bad,)) == []
    alarms = d.query("SELECT device_id FROM alarms")
    assert alarms == [{"device_id": "good-1"}], alarms


def test_boundaries_accepted(daemon, mqtt):
    """The limits themselves are valid."""
    d = daemon()
    dev = "edge-1"
    cases = [
        {"id": "x" * 64, "type": "heartbeat"},
        {"id": " ~!", "type": "heartbeat"},
        {"id": 0, "type": "heartbeat"},
        {"id": 2**53, "type": "heartbeat"},
        {"id": "b0", "type": "heartbeat", "battery": 0},
        {"id": "b100", "type": "heartbeat", "battery": 100},
        {"id": "rssi", "type": "heartbeat", "rssi": -120},
        {"id": "ts-int", "type": "heartbeat", "ts": 1700000000},
        {"id": "ts-off", "type": "heartbeat", "ts": "2026-11-22T10:15:00.123+01:00"},
        {"id": "text", "type": "heartbeat", "text": "\u0142" * 256},
        {"id": "loc", "type": "heartbeat", "loc": {"lat": -90, "lon": 180}},
        {"id": "test-false", "type": "heartbeat", "test": False},
        {"id": "unknown-fields", "type": "heartbeat", "x": [1, {"y": None}]},
    ]
    cases += [
        {"id": "quote\"back\\slash'", "type": "heartbeat"},
        {"id": "unicode-text", "type": "heartbeat", "text": "za\u017c\u00f3\u0142\u0107 \U0001F6D1"},
    ]
    for ev in cases:
        r, _ = mqtt.event(dev, ev)
        assert r["status"] == "stored", (ev, r)
    # a deeply nested unknown field is kept, not a crash
    deep = b'{"id": "deep", "type": "heartbeat", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    r, _ = mqtt.event(dev, deep, match_id=False)
    assert r["status"] in ("stored", "rejected") and r["id"] == "deep", r
    deep_stored = r["status"] == "stored"
    # a payload of exactly max_payload bytes
    body = {"id": "max", "type": "heartbeat", "pad": ""}
    body["pad"] = "y" * (4096 - len(json.dumps(body).encode()))
    raw = json.dumps(body).encode()
    assert len(raw) == 4096
    r, _ = mqtt.event(dev, raw, match_id=False)
    assert r["status"] == "stored" and r["id"] == "max", r
    assert len(d.query("SELECT seq FROM events WHERE device_id = ?", (dev,))) == \
        len(cases) + 1 + deep_stored
    assert len(d.query("SELECT seq FROM rejects")) == (not deep_stored)
    # ids and text come back exactly as sent
    row = d.query("SELECT eid, payload FROM events WHERE device_id = ? AND eid = ?",
                  (dev, compact("unicode-text")))
    assert json.loads(row[0]["payload"])["text"] == "za\u017c\u00f3\u0142\u0107 \U0001F6D1"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10000))   # Python's json must read the deep payload back
    try:
        ids = [e["id"] for e in d.ctl_json("events", "--device", dev, "--limit", "100")]
    finally:
        sys.setrecursionlimit(limit)
    assert "quote\"back\\slash'" in ids and 2**53 in ids and "x" * 64 in ids, ids
    # the longest device id is valid
    r, _ = mqtt.event("d" * 64, {"id": 1, "type": "heartbeat"})
    assert r["status"] == "stored", r


def test_max_payload_is_configurable(daemon, mqtt):
    d = daemon({"mqtt": {"max_payload": 300}})
    body = {"id": "e-1", "type": "heartbeat", "pad": "z" * 400}
    r, _ = mqtt.event("small-1", body, match_id=False)
    assert r["status"] == "rejected", r
    r, _ = mqtt.event("small-1", {"id": "e-2", "type": "heartbeat"})
    assert r["status"] == "stored", r
    assert len(d.query("SELECT seq FROM rejects")) == 1


def test_burst_of_garbage_then_good(daemon, mqtt):
    """Many bad messages in a row, then a good one: all answered, daemon alive."""
    d = daemon()
    dev = "noisy-1"
    topic = f"{PREFIX}/dev/{dev}/receipt"
    mark = mqtt.mark(topic)
    n = 300
    for i in range(n):
        mqtt.publish(f"{PREFIX}/dev/{dev}/event", CASES[i % len(CASES)][1])
    wait_until(lambda: len(mqtt.messages(topic, after=mark)) >= n, 60,
               f"{n} rejected receipts")
    statuses = {m.json()["status"] for m in mqtt.messages(topic, after=mark)}
    assert statuses == {"rejected"}, statuses
    r, _ = mqtt.event(dev, {"id": "ok", "type": "panic"})
    assert r["status"] == "stored" and isinstance(r["alarm"], int), r
    assert len(d.query("SELECT seq FROM rejects")) == n
