"""Who may act on an alarm over MQTT (issue 11, SPEC 2.5): a worker the alarm
did not alert cannot ack, decline, note or resolve it (ok: false, the
reason, a timeline row); one it alerted can; resolve belongs to the holder
and to dispatchers; a worker whose console user is a dispatcher may act on
any alarm. A retained action is applied once, never again after restarts."""

from conftest import PREFIX, wait_until




def control(d, cmd, args=None):
    """One request on the daemon's control socket (as root: admin)."""
    return d.request(cmd, args)


def prepare(daemon):
    d = daemon(extra_lines="[policy urgent]\npriorities = 1\nstep = on_duty:north wait 60s\n")
    d.add_resident("r-1", "Anna", "--team", "north")
    d.add_device("p-1", "r-1")
    for wid, team, duty in (("w-a", "north", True), ("w-b", "north", True),
                            ("w-off", "south", False), ("w-disp", "south", False)):
        control(d, "worker.add", {"id": wid, "name": f"Name {wid}", "team": team})
        if duty:
            control(d, "shift.add", {"worker": wid, "always": True})
    control(d, "user.add", {"name": "anna", "role": "dispatcher", "worker": "w-disp",
                            "password": "a long enough password"})
    return d


def act(mqtt, worker, body, retain=False):
    topic = f"{PREFIX}/worker/{worker}/result"
    mark = mqtt.mark(topic)
    mqtt.publish(f"{PREFIX}/worker/{worker}/action", body, retain=retain)
    return mqtt.wait_for(topic, after=mark).json()


def timeline(d, alarm):
    return d.ctl_json("alarm", "show", alarm)["timeline"]


def test_only_those_alerted_act_and_only_the_holder_or_a_dispatcher_resolves(daemon, mqtt):
    d = prepare(daemon)
    receipt, _ = mqtt.event("p-1", {"id": "e-1", "type": "fall"})
    alarm = receipt["alarm"]
    mqtt.wait_for(f"{PREFIX}/worker/w-a/alert", lambda m: m.json()["alarm"] == alarm)

    for action in ({"action": "ack"}, {"action": "decline"}, {"action": "note", "note": "x"},
                   {"action": "resolve", "outcome": "visit"}):
        res = act(mqtt, "w-off", {"alarm": alarm, **action})
        assert res["ok"] is False, res
        assert res["error"] == f"alarm {alarm} has not alerted you", res
    refused = [e for e in timeline(d, alarm) if e["what"] == "refused"]
    assert len(refused) == 4 and all(e["actor"] == "w-off" for e in refused), refused
    assert d.ctl_json("alarm", "show", alarm)["state"] == "open"

    assert act(mqtt, "w-a", {"alarm": alarm, "action": "ack"})["ok"] is True
    # w-b was alerted too, but w-a holds it
    res = act(mqtt, "w-b", {"alarm": alarm, "action": "resolve", "outcome": "visit"})
    assert res["ok"] is False and "held by Name w-a" in res["error"], res
    assert act(mqtt, "w-b", {"alarm": alarm, "action": "note", "note": "on my way"})["ok"] is True
    # w-disp was never alerted, but their console user is a dispatcher
    res = act(mqtt, "w-disp", {"alarm": alarm, "action": "resolve", "outcome": "visit"})
    assert res["ok"] is True, res
    shown = d.ctl_json("alarm", "show", alarm)
    assert shown["state"] == "resolved"
    assert any(e["what"] == "resolved" and e["actor"] == "w-disp" for e in shown["timeline"])


def test_a_retained_action_is_applied_once_never_after_restarts(daemon, mqtt, broker):
    d = prepare(daemon)
    receipt, _ = mqtt.event("p-1", {"id": "e-1", "type": "fall"})
    alarm = receipt["alarm"]
    mqtt.wait_for(f"{PREFIX}/worker/w-a/alert", lambda m: m.json()["alarm"] == alarm)
    res = act(mqtt, "w-a", {"alarm": alarm, "action": "note", "note": "retained by mistake"},
              retain=True)
    assert res["ok"] is True
    for _ in range(2):
        d.restart()
        wait_until(lambda: "retained action ignored" in d.log.read_text(errors="replace")
                   or d.starts > 2, 15, "the gateway to see the retained action")
    notes = [e for e in timeline(d, alarm) if e["what"] == "note"]
    assert len(notes) == 1, notes
    # the gateway cleared it: a new subscriber finds no retained action
    from conftest import retained
    assert f"{PREFIX}/worker/w-a/action" not in retained(broker.port, f"{PREFIX}/worker/+/action")
