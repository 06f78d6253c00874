"""telecarectl (SPEC 6, docs/CONTROL.md): registry commands, --json output,
exit codes 0 done / 1 refused / 2 usage / 3 unreachable."""
import json
import re
import socket

import pytest

from conftest import run_ctl

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RESIDENT_KEYS = {"id", "name", "address", "phone", "team", "notes", "created_at"}
DEVICE_KEYS = {"id", "resident", "kind", "heartbeat", "heartbeat_ms", "test", "created_at",
               "last_seen", "battery", "rssi"}


@pytest.fixture
def d(daemon):
    return daemon()


def ok(d, *args):
    rc, out, err = d.ctl(*args)
    assert rc == 0, f"telecarectl {' '.join(args)}: rc {rc}: {err}"
    return out


def refused(d, *args):
    rc, out, err = d.ctl(*args)
    assert rc == 1, f"telecarectl {' '.join(args)} should be refused (1), got {rc}: {out}{err}"
    assert err.strip(), "a refusal gives its reason on stderr"
    return err


def test_status(d):
    ok(d, "status")
    s = d.ctl_json("status")
    for k in ("version", "pid", "started_at", "uptime_s", "mqtt", "store", "counts"):
        assert k in s, f"status lacks {k}: {s}"
    assert s["pid"] == d.proc.pid
    assert s["mqtt"]["connected"] is True
    assert s["store"]["ok"] is True and s["store"]["path"] == str(d.db)
    assert RFC3339_UTC.match(s["started_at"]), s["started_at"]
    for k in ("events_received", "events_stored", "events_duplicate", "events_rejected",
              "alarms_open", "devices", "residents"):
        assert s["counts"][k] == 0, s["counts"]


def test_resident_and_device_lifecycle(d):
    ok(d, "resident", "add", "r-17", "--name", "Anna Kowalska", "--address",
             "ul. Słowackiego 12/3", "--phone", "+48 600 000 000", "--team", "north",
             "--notes", "key safe 1234; diabetic")
    ok(d, "resident", "add", "r-18", "--name", "Jan Nowak")

    residents = d.ctl_json("resident", "list")
    assert isinstance(residents, list) and sorted(r["id"] for r in residents) == ["r-17", "r-18"]
    for r in residents:
        assert RESIDENT_KEYS <= set(r), r
    r17 = d.ctl_json("resident", "show", "r-17")
    assert r17["name"] == "Anna Kowalska" and r17["address"] == "ul. Słowackiego 12/3"
    assert r17["phone"] == "+48 600 000 000" and r17["team"] == "north"
    assert r17["notes"] == "key safe 1234; diabetic"
    assert r17["devices"] == [] and r17["alarms"] == []
    assert RFC3339_UTC.match(r17["created_at"]), r17
    r18 = d.ctl_json("resident", "show", "r-18")
    assert r18["address"] is None and r18["phone"] is None and r18["team"] is None, r18

    dev = d.ctl_json("device", "add", "pendant-1", "--resident", "r-17", "--kind", "pendant",
                     "--heartbeat", "15m")
    assert DEVICE_KEYS <= set(dev), dev
    assert dev["id"] == "pendant-1" and dev["resident"] == "r-17" and dev["kind"] == "pendant"
    assert dev["heartbeat"] == "15m" and dev["heartbeat_ms"] == 900000, dev
    assert dev["test"] is False and dev["last_seen"] is None
    ok(d, "device", "add", "fall-1", "--resident", "r-17")
    devices = d.ctl_json("device", "list")
    assert sorted(x["id"] for x in devices) == ["fall-1", "pendant-1"], devices
    shown = d.ctl_json("device", "show", "pendant-1")
    assert shown["resident"] == "r-17" and shown["events"] == [], shown
    assert d.ctl_json("device", "show", "fall-1")["heartbeat"] is None
    assert sorted(d.ctl_json("resident", "show", "r-17")["devices"]) == ["fall-1", "pendant-1"]

    # refusals: exit 1 with the reason on stderr
    refused(d, "device", "add", "pendant-2", "--resident", "r-99")
    refused(d, "device", "add", "pendant-1", "--resident", "r-18")     # exists
    refused(d, "resident", "add", "r-17", "--name", "Someone Else")    # exists
    refused(d, "resident", "remove", "r-17")                           # devices linked
    refused(d, "device", "show", "nope")
    refused(d, "resident", "show", "nope")
    refused(d, "device", "remove", "nope")
    refused(d, "resident", "remove", "nope")
    refused(d, "alarm", "show", "999")

    # the plain (non-JSON) output is not empty for a show
    assert ok(d, "device", "show", "pendant-1").strip()
    assert ok(d, "resident", "list").strip()

    # writes are durable: a killed daemon still knows them
    d.kill9()
    d.start()
    assert sorted(x["id"] for x in d.ctl_json("device", "list")) == ["fall-1", "pendant-1"]
    assert d.ctl_json("resident", "show", "r-17")["name"] == "Anna Kowalska"
    counts = d.ctl_json("status")["counts"]
    assert counts["devices"] == 2 and counts["residents"] == 2, counts

    ok(d, "device", "remove", "pendant-1")
    ok(d, "device", "remove", "fall-1")
    assert d.ctl_json("device", "list") == []
    refused(d, "device", "show", "pendant-1")
    ok(d, "resident", "remove", "r-17")
    assert [r["id"] for r in d.ctl_json("resident", "list")] == ["r-18"]
    d.kill9()
    d.start()
    assert [r["id"] for r in d.ctl_json("resident", "list")] == ["r-18"]
    assert d.ctl_json("device", "list") == []


def test_removed_device_becomes_unknown(d, mqtt):
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    r, _ = mqtt.event("p-1", {"id": 1, "type": "heartbeat"})
    assert r["status"] == "stored"
    ok(d, "device", "remove", "p-1")
    r, _ = mqtt.event("p-1", {"id": 2, "type": "heartbeat"})
    assert r["status"] == "stored"
    assert [x["device"] for x in d.ctl_json("device", "unknown")] == ["p-1"]
    assert len(d.query("SELECT seq FROM events WHERE device_id = 'p-1'")) == 2, \
        "a removed device's events stay"


def test_events_and_alarm_list_json(d, mqtt):
    d.add_resident("r-1")
    d.add_device("p-1", "r-1")
    for i in range(5):
        r, _ = mqtt.event("p-1", {"id": i, "type": "heartbeat"})
        assert r["status"] == "stored"
    r, _ = mqtt.event("p-1", {"id": "x", "type": "panic"})
    alarm = r["alarm"]
    evs = d.ctl_json("events")
    assert [e["id"] for e in evs] == [0, 1, 2, 3, 4, "x"], "oldest first, ids as sent"
    for e in evs:
        assert {"seq", "device", "id", "type", "received_at", "alarm", "known", "payload"} <= set(e)
        assert isinstance(e["payload"], dict)
    assert [e["seq"] for e in evs] == sorted(e["seq"] for e in evs)
    assert [e["id"] for e in d.ctl_json("events", "--limit", "2")] == [4, "x"]
    assert d.ctl_json("events", "--device", "nobody") == []
    alarms = d.ctl_json("alarm", "list")
    assert [a["alarm"] for a in alarms] == [alarm]
    a = d.ctl_json("alarm", "show", str(alarm))
    assert "timeline" in a and a["timeline"][0]["what"] == "opened", a
    assert {"at", "what", "actor", "detail"} <= set(a["timeline"][0])


USAGE = [
    [],
    ["frobnicate"],
    ["resident"],
    ["resident", "add"],
    ["resident", "add", "r-1"],                 # --name is required
    ["device", "add", "d-1"],                   # --resident is required
    ["device", "add", "d-1", "--resident"],     # option without its value
    ["resident", "show"],
    ["alarm", "show"],
    ["status", "--no-such-option"],
    ["events", "--limit"],
]


@pytest.mark.parametrize("args", USAGE, ids=[" ".join(a) or "no-command" for a in USAGE])
def test_usage_errors_exit_2(d, args):
    rc, out, err = d.ctl(*args)
    assert rc == 2, f"telecarectl {' '.join(args)}: expected 2 (usage), got {rc}: {out}{err}"
    assert err.strip(), "usage errors explain themselves on stderr"


def test_usage_checked_before_connecting(tmp_path):
    rc, _, err = run_ctl(tmp_path / "none.sock", "frobnicate")
    assert rc == 2, err


def test_unreachable_exit_3(tmp_path):
    rc, _, err = run_ctl(tmp_path / "missing.sock", "status")
    assert rc == 3, err
    assert err.strip()
    # a socket file nobody listens on
    path = tmp_path / "dead.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.close()
    rc, _, err = run_ctl(path, "status")
    assert rc == 3, err
    rc, _, err = run_ctl(tmp_path / "missing.sock", "device", "list", json_out=True)
    assert rc == 3, err


def test_socket_from_environment(d):
    rc, out, err = run_ctl(None, "status", env={"TELECARE_SOCKET": str(d.socket)})
    assert rc == 0, err
    rc, out, err = run_ctl(None, "--json", "status", env={"TELECARE_SOCKET": str(d.socket)})
    assert rc == 0, err
    assert json.loads(out)["pid"] == d.proc.pid


def test_json_lists_are_arrays(d):
    for args in (["resident", "list"], ["device", "list"], ["device", "unknown"],
                 ["alarm", "list"], ["alarm", "list", "--open"], ["events"]):
        assert d.ctl_json(*args) == [], args


def test_invalid_ids_refused(d):
    for bad in ("has space", "x" * 65, "bad$id", "ünï"):
        rc, _, err = d.ctl("resident", "add", bad, "--name", "X")
        assert rc in (1, 2), f"resident add {bad!r}: rc {rc}"
    d.add_resident("r-1")
    rc, _, err = d.ctl("device", "add", "bad/id", "--resident", "r-1")
    assert rc in (1, 2), f"device add bad/id: rc {rc}"
    assert d.ctl_json("device", "list") == []
    assert [r["id"] for r in d.ctl_json("resident", "list")] == ["r-1"]


def test_bad_heartbeat_duration(d):
    d.add_resident("r-1")
    rc, _, err = d.ctl("device", "add", "d-1", "--resident", "r-1", "--heartbeat", "soon")
    assert rc in (1, 2), rc
    assert d.ctl_json("device", "list") == []


def test_raw_protocol_malformed_request(d):
    """docs/CONTROL.md: a malformed request gets ok:false, the connection
    stays usable; answers come in order."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    f = s.makefile("rwb")
    try:
        f.write(b"this is not json\n")
        f.write(b'{"cmd": "no.such.command"}\n')
        f.write(b'{"cmd": "status"}\n')
        f.flush()
        a1, a2, a3 = (json.loads(f.readline()) for _ in range(3))
        assert a1["ok"] is False and a1["error"], a1
        assert a2["ok"] is False and a2["error"], a2
        assert a3["ok"] is True and a3["data"]["pid"] == d.proc.pid, a3
    finally:
        f.close()
        s.close()
    assert d.ctl("status")[0] == 0


def test_raw_protocol_long_line(d):
    """A request line longer than the limit (16 MiB) gets an error answer and the
    connection is closed; the daemon goes on."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(d.socket))
    f = s.makefile("rwb")
    try:
        try:
            f.write(b'{"cmd": "status", "pad": "' + b"x" * (17 * 1024 * 1024) + b'"}\n')
            f.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        line = f.readline()
        answer = json.loads(line)
        assert answer["ok"] is False and answer["error"], answer
        try:
            rest = f.read()
        except ConnectionResetError:
            rest = b""   # closed with our unread megabytes still coming: a reset is a close
        assert rest == b"", f"the connection is closed after the error: {rest[:100]!r}"
    finally:
        f.close()
        s.close()
    assert d.ctl("status")[0] == 0


def test_raw_protocol_follow(d, mqtt):
    """events with follow: the usual answer, then one {"event": ...} line per
    stored event."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(str(d.socket))
    f = s.makefile("rwb")
    try:
        f.write(b'{"cmd": "events", "args": {"follow": true}}\n')
        f.flush()
        first = json.loads(f.readline())
        assert first["ok"] is True and first["data"] == [], first
        r, _ = mqtt.event("p-1", {"id": "f-1", "type": "panic"})
        assert r["status"] == "stored"
        ev = json.loads(f.readline())
        assert ev["event"]["device"] == "p-1" and ev["event"]["id"] == "f-1", ev
        assert ev["event"]["alarm"] == r["alarm"], ev
    finally:
        f.close()
        s.close()
    assert d.ctl("status")[0] == 0
