"""Escalation (SPEC 2.3-2.6, 3, 4): a real broker, the real daemon, policies
whose waits are fractions of a second."""
import http.server
import json
import signal
import threading
import time

import pytest

from conftest import PREFIX, retained, wait_until


def alert_topic(worker):
    return f"{PREFIX}/worker/{worker}/alert"


def action(mqtt, worker, payload, timeout=15):
    """Publish a worker action; return the result dict."""
    topic = f"{PREFIX}/worker/{worker}/result"
    mark = mqtt.mark(topic)
    mqtt.publish(f"{PREFIX}/worker/{worker}/action", payload)
    return mqtt.wait_for(topic, timeout=timeout, after=mark).json()


def policy(name, *steps, priorities="1", repeat=0, ack_timeout="10m", on_cancel="keep"):
    lines = [f"\n[policy {name}]", f"priorities = {priorities}"]
    lines += [f"step = {s}" for s in steps]
    lines += [f"repeat = {repeat}", f"ack_timeout = {ack_timeout}", f"on_cancel = {on_cancel}", ""]
    return "\n".join(lines)


def setup_people(d, workers, resident_team="north"):
    """workers: {id: (team or None, on_duty bool, webhook or None)}."""
    d.add_resident("r-1", "Anna Kowalska", "--team", resident_team, "--address", "ul. Słowackiego 12/3")
    d.add_device("p-1", "r-1")
    for wid, (team, on_duty, hook) in workers.items():
        args = ["worker", "add", wid, "--name", f"Name {wid}"]
        if team:
            args += ["--team", team]
        if hook:
            args += ["--webhook", hook]
        rc, _, err = d.ctl(*args)
        assert rc == 0, err
        if on_duty:
            rc, _, err = d.ctl("shift", "add", wid, "--always")
            assert rc == 0, err


def alerts(mqtt, worker, alarm, after=0, state=None):
    return [m.json() for m in mqtt.messages(alert_topic(worker), after)
            if m.json()["alarm"] == alarm and (state is None or m.json()["state"] == state)]


def panic(mqtt, device="p-1", eid="e-1", **extra):
    receipt, _ = mqtt.event(device, {"id": eid, "type": "panic", **extra})
    assert receipt["status"] == "stored", receipt
    return receipt["alarm"]


def test_chain_alerts_step_by_step_repeats_then_keeps_repeating_last_step(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:@team wait 400ms", "on_duty:* wait 400ms",
                                  repeat=1))
    setup_people(d, {"w-team": ("north", True, None), "w-other": ("south", True, None),
                     "w-off": ("north", False, None)})
    alarm = panic(mqtt)
    # step 1 (team north on duty), step 2 (everyone on duty), again, then step 2 forever
    wait_until(lambda: len(alerts(mqtt, "w-team", alarm)) >= 7, 20, "7 alerts to w-team")
    levels = [a["level"] for a in alerts(mqtt, "w-team", alarm)]
    assert levels[:7] == [1, 2, 1, 2, 2, 2, 2], levels
    other = [a["level"] for a in alerts(mqtt, "w-other", alarm)]
    assert other and set(other) == {2}, other       # not in the resident's team: step 2 only
    assert alerts(mqtt, "w-off", alarm) == []        # off duty: never
    first = alerts(mqtt, "w-team", alarm)[0]
    assert first["state"] == "open" and first["priority"] == 1 and first["types"] == ["panic"]
    assert first["device"] == "p-1" and first["test"] is False
    assert first["resident"]["name"] == "Anna Kowalska"
    assert first["resident"]["address"] == "ul. Słowackiego 12/3"
    assert first["opened_at"].endswith("Z")
    tl = d.ctl_json("alarm", "show", alarm)["timeline"]
    assert sum(1 for e in tl if e["what"] == "alerted") >= 9


def test_ack_stops_chain_device_and_board_follow_second_ack_refused(daemon, mqtt, broker):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 300ms"))
    setup_people(d, {"w-a": ("north", True, None), "w-b": ("north", True, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == alarm)
    mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["alarm"] == alarm)

    mark_b = mqtt.mark(alert_topic("w-b"))
    res = action(mqtt, "w-a", {"alarm": alarm, "action": "ack"})
    assert res == {"alarm": alarm, "action": "ack", "ok": True}
    mqtt.wait_for(f"{PREFIX}/dev/p-1/alarm",
                  lambda m: m.json() == {"alarm": alarm, "state": "acknowledged", "by": "Name w-a"})
    follow = mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["state"] == "acknowledged",
                           after=mark_b).json()
    assert follow["acked_by"] == "Name w-a"
    board = retained(broker.port, f"{PREFIX}/alarms/+")[f"{PREFIX}/alarms/{alarm}"].json()
    assert board["state"] == "acknowledged" and board["acked_by"] == "Name w-a"
    assert board["acked_at"]

    res = action(mqtt, "w-b", {"alarm": alarm, "action": "ack"})
    assert res["ok"] is False and "already acknowledged by Name w-a" in res["error"]

    # the chain has stopped: no new "open" alerts to anyone
    mark = mqtt.mark()
    time.sleep(1.5)
    assert alerts(mqtt, "w-a", alarm, mark, "open") == []
    assert alerts(mqtt, "w-b", alarm, mark, "open") == []


def test_resolve_checks_outcome_and_clears_the_board(daemon, mqtt, broker):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 300ms"))
    setup_people(d, {"w-a": ("north", True, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == alarm)
    assert action(mqtt, "w-a", {"alarm": alarm, "action": "ack"})["ok"] is True

    bad = action(mqtt, "w-a", {"alarm": alarm, "action": "resolve", "outcome": "bogus"})
    assert bad["ok"] is False
    for valid in ("assisted_by_phone", "visit", "ambulance", "false_alarm"):
        assert valid in bad["error"], bad["error"]

    res = action(mqtt, "w-a", {"alarm": alarm, "action": "resolve", "outcome": "visit",
                               "note": "neighbour helped"})
    assert res["ok"] is True
    mqtt.wait_for(f"{PREFIX}/dev/p-1/alarm",
                  lambda m: m.json() == {"alarm": alarm, "state": "resolved"})
    wait_until(lambda: f"{PREFIX}/alarms/{alarm}" not in retained(broker.port, f"{PREFIX}/alarms/+"),
               10, "the board entry to be cleared")
    shown = d.ctl_json("alarm", "show", alarm)
    assert shown["state"] == "resolved" and shown["outcome"] == "visit"
    assert any(e["what"] == "resolved" and "neighbour helped" in (e["detail"] or "")
               for e in shown["timeline"])
    again = action(mqtt, "w-a", {"alarm": alarm, "action": "ack"})
    assert again["ok"] is False and "resolved" in again["error"]


def test_decline_by_everyone_in_the_step_advances_at_once(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:north wait 60s", "worker:w-c wait 60s"))
    setup_people(d, {"w-a": ("north", True, None), "w-b": ("north", True, None),
                     "w-c": ("south", True, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-b"), lambda m: m.json()["alarm"] == alarm)
    assert action(mqtt, "w-a", {"alarm": alarm, "action": "decline"})["ok"] is True
    time.sleep(0.5)
    assert alerts(mqtt, "w-c", alarm) == []          # one of two declined: still waiting
    outsider = action(mqtt, "w-c", {"alarm": alarm, "action": "decline"})
    assert outsider["ok"] is False and "not alerted" in outsider["error"]
    assert action(mqtt, "w-b", {"alarm": alarm, "action": "decline"})["ok"] is True
    # the 60 s wait is not waited out
    got = mqtt.wait_for(alert_topic("w-c"), lambda m: m.json()["alarm"] == alarm, timeout=10)
    assert got.json()["level"] == 2
    tl = d.ctl_json("alarm", "show", alarm)["timeline"]
    assert [e["actor"] for e in tl if e["what"] == "declined"] == ["w-a", "w-b"]


def test_ack_timeout_reopens_and_escalation_starts_again(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 60s", ack_timeout="1s"))
    setup_people(d, {"w-a": ("north", True, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == alarm)
    mark = mqtt.mark(alert_topic("w-a"))
    assert action(mqtt, "w-a", {"alarm": alarm, "action": "ack"})["ok"] is True
    mqtt.wait_for(f"{PREFIX}/dev/p-1/alarm", lambda m: m.json() == {"alarm": alarm, "state": "open"},
                  after=mqtt.mark(f"{PREFIX}/dev/p-1/alarm"), timeout=10)
    again = mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["state"] == "open" and
                          m.json()["level"] == 1, after=mark, timeout=10).json()
    assert again["acked_by"] is None
    tl = [e["what"] for e in d.ctl_json("alarm", "show", alarm)["timeline"]]
    assert "reopened" in tl and tl.index("reopened") > tl.index("acknowledged")


def test_nobody_on_duty_step_is_recorded_empty_and_skipped(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:@team wait 60s", "worker:w-x wait 60s"))
    setup_people(d, {"w-off": ("north", False, None), "w-x": ("south", False, None)})
    alarm = panic(mqtt)
    got = mqtt.wait_for(alert_topic("w-x"), lambda m: m.json()["alarm"] == alarm, timeout=10)
    assert got.json()["level"] == 2          # step 1 found nobody and was skipped at once
    tl = d.ctl_json("alarm", "show", alarm)["timeline"]
    assert any(e["what"] == "step_empty" and "step 1" in e["detail"] for e in tl)
    assert alerts(mqtt, "w-off", alarm) == []


def test_test_alarm_never_alerts(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 300ms"))
    setup_people(d, {"w-a": ("north", True, None)})
    alarm = panic(mqtt, test=True)
    time.sleep(1.5)
    assert alerts(mqtt, "w-a", alarm) == []
    assert mqtt.messages(alert_topic("w-a")) == []
    shown = d.ctl_json("alarm", "show", alarm)
    assert shown["state"] == "resolved" and shown["outcome"] == "test"


def test_kill9_resumes_the_schedule_where_it_was(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "worker:w-1 wait 4s", "worker:w-2 wait 60s"))
    setup_people(d, {"w-1": (None, False, None), "w-2": (None, False, None)})
    alarm = panic(mqtt)
    first = mqtt.wait_for(alert_topic("w-1"), lambda m: m.json()["alarm"] == alarm)
    time.sleep(1.0)
    d.kill9()
    mark = mqtt.mark()
    d.start()
    second = mqtt.wait_for(alert_topic("w-2"), lambda m: m.json()["alarm"] == alarm, after=mark,
                           timeout=15)
    # the next step fired when it was due (4 s after the first), not at restart
    assert second.at - first.at >= 3.5, second.at - first.at
    assert second.json()["level"] == 2
    # and the chain did not start again from the beginning
    assert alerts(mqtt, "w-1", alarm, mark) == []


def test_kill9_overdue_step_fires_at_once_after_restart(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "worker:w-1 wait 2s", "worker:w-2 wait 60s"))
    setup_people(d, {"w-1": (None, False, None), "w-2": (None, False, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-1"), lambda m: m.json()["alarm"] == alarm)
    d.kill9()
    time.sleep(3.0)                       # step 2 falls due while the daemon is down
    mark = mqtt.mark()
    d.start()
    restarted = time.monotonic()
    second = mqtt.wait_for(alert_topic("w-2"), lambda m: m.json()["alarm"] == alarm, after=mark,
                           timeout=15)
    assert second.at - restarted < 5
    assert alerts(mqtt, "w-1", alarm, mark) == []


class Hooks(http.server.BaseHTTPRequestHandler):
    received = []                        # (path, body)
    lock = threading.Lock()

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with Hooks.lock:
            Hooks.received.append((self.path, body))
        if self.path == "/hang":
            time.sleep(8)                # longer than the daemon's 5 s timeout
            return
        self.send_response(200 if self.path == "/ok" else 500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def hooks():
    Hooks.received = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_webhooks_deliver_and_failures_neither_delay_nor_vanish(daemon, mqtt, hooks):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 60s"))
    setup_people(d, {"w-ok": ("north", True, f"{hooks}/ok"), "w-fail": ("north", True, f"{hooks}/fail"),
                     "w-hang": ("north", True, f"{hooks}/hang")})
    d.add_device("p-2", "r-1")
    t0 = time.monotonic()
    alarm = panic(mqtt)
    for w in ("w-ok", "w-fail", "w-hang"):
        mqtt.wait_for(alert_topic(w), lambda m: m.json()["alarm"] == alarm, timeout=5)
    # a second alarm while /hang holds its connection: MQTT alerts still go at once
    alarm2 = panic(mqtt, device="p-2", eid="e-2")
    got = mqtt.wait_for(alert_topic("w-ok"), lambda m: m.json()["alarm"] == alarm2, timeout=5)
    assert got.at - t0 < 5
    wait_until(lambda: any(p == "/ok" and json.loads(b)["alarm"] == alarm for p, b in Hooks.received),
               10, "the /ok webhook to receive alarm 1")
    body = next(json.loads(b) for p, b in Hooks.received if p == "/ok" and json.loads(b)["alarm"] == alarm)
    assert body["state"] == "open" and body["device"] == "p-1" and body["level"] == 1

    def timeline():
        return d.ctl_json("alarm", "show", alarm)["timeline"]
    wait_until(lambda: any(e["what"] == "delivery_failed" and "w-fail" in e["detail"] and
                           "HTTP 500" in e["detail"] for e in timeline()), 20, "the 500 failure")
    # each failed try is its own row, written when it fails (SPEC 3)
    wait_until(lambda: sum(1 for e in timeline() if e["what"] == "delivery_failed" and
                           "w-fail" in e["detail"]) >= 3, 20, "a row for each of the three tries")
    tries = [e["detail"] for e in timeline() if e["what"] == "delivery_failed" and "w-fail" in e["detail"]]
    assert [("try %d" % n) in t for n, t in zip((1, 2, 3), tries)] == [True] * 3, tries
    assert any(e["what"] == "delivered" and "w-ok" in e["detail"] for e in timeline())
    assert sum(1 for p, _ in Hooks.received if p == "/fail") >= 3   # three tries


def test_telecarectl_ack_resolve_and_report(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "on_duty:* wait 60s"))
    setup_people(d, {"w-a": ("north", True, None)})
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-a"), lambda m: m.json()["alarm"] == alarm)
    acked = d.ctl_json("alarm", "ack", alarm, "--as", "w-a")
    assert acked["state"] == "acknowledged" and acked["acked_by"] == "Name w-a"
    rc, _, err = d.ctl("alarm", "ack", alarm, "--as", "w-nobody")
    assert rc == 1 and "w-nobody" in err
    rc, _, err = d.ctl("alarm", "resolve", alarm, "--as", "w-a", "--outcome", "bogus")
    assert rc == 1 and "visit" in err
    done = d.ctl_json("alarm", "resolve", alarm, "--as", "w-a", "--outcome", "false_alarm")
    assert done["state"] == "resolved" and done["outcome"] == "false_alarm"
    report = d.ctl_json("report")
    row = next(r for r in report["priorities"] if r["priority"] == 1)
    assert row["alarms"] == 1 and row["acknowledged"] == 1
    assert row["within_60s"] == 1.0 and row["within_180s"] == 1.0
    assert row["median_ack_s"] is not None and row["median_ack_s"] < 60


def test_oncall_and_shifts(daemon):
    d = daemon()
    setup_people(d, {"w-a": ("north", True, None), "w-b": ("south", False, None)})
    rc, _, err = d.ctl("shift", "add", "w-b", "--from", "2026-01-01T08:00:00Z",
                       "--to", "2026-01-01T16:00:00Z")
    assert rc == 0, err
    ids = {w["id"] for w in d.ctl_json("oncall")}
    assert ids == {"w-a"}
    ids = {w["id"] for w in d.ctl_json("oncall", "--at", "2026-01-01T09:00:00Z")}
    assert ids == {"w-a", "w-b"}
    assert {w["id"] for w in d.ctl_json("oncall", "--at", "2026-01-01T09:00:00Z",
                                         "--team", "south")} == {"w-b"}
    rc, _, err = d.ctl("shift", "add", "w-b", "--weekly", "funday", "08:00-16:00")
    assert rc == 1 and "days" in err


def test_reload_keeps_the_policy_of_open_alarms(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "worker:w-1 wait 500ms"))
    setup_people(d, {"w-1": (None, False, None), "w-2": (None, False, None)})
    d.add_device("p-2", "r-1")
    old = panic(mqtt)
    mqtt.wait_for(alert_topic("w-1"), lambda m: m.json()["alarm"] == old)
    text = d.conf.read_text().replace("worker:w-1 wait 500ms", "worker:w-2 wait 500ms")
    d.conf.write_text(text)
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in d.log.read_text(), 10, "the reload")
    new = panic(mqtt, device="p-2", eid="e-9")
    mqtt.wait_for(alert_topic("w-2"), lambda m: m.json()["alarm"] == new)
    mark = mqtt.mark()
    time.sleep(1.5)
    assert len(alerts(mqtt, "w-1", old, mark)) >= 2     # the open alarm keeps its policy
    assert alerts(mqtt, "w-2", old, mark) == []
    assert alerts(mqtt, "w-1", new, mark) == []


def test_reload_with_a_broken_file_keeps_the_running_policy(daemon, mqtt):
    d = daemon(extra_lines=policy("urgent", "worker:w-1 wait 500ms"))
    setup_people(d, {"w-1": (None, False, None)})
    d.conf.write_text(d.conf.read_text() + "\n[policy broken]\nstep = nobody:at all wait 1s\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in d.log.read_text(), 10, "the refused reload")
    assert "unknown target" in d.log.read_text()
    alarm = panic(mqtt)
    mqtt.wait_for(alert_topic("w-1"), lambda m: m.json()["alarm"] == alarm)
