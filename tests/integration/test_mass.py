"""Mass events (issue 9; SPEC 2.2, 3.1, 4.1, 7; DECISIONS.md "Mass
incidents"): a district power cut or a flood of strangers is one incident,
alerted once per worker, while every event is still stored and receipted and
a fall in the middle gets its own alarm; folding holds across a restart; a
burst gets every receipt; idle control clients stop nobody. Also the storm
case of issue 10: an incident of silent devices open across a restart
resolves itself when they are heard again.

Real broker and daemon. Sizes are the issue's "Done means"; every wait has a
generous deadline (a sanitizer build on a loaded 2-core machine), and no
timing is asserted beyond those."""
import json
import resource
import socket
import threading
import time
from collections import defaultdict

import pytest

from conftest import PREFIX, retained, run_ctl, wait_until
from test_escalation import policy

MASS_DEVICES_DEFAULT = 20     # DECISIONS.md: [alarms] mass_devices default


# --------------------------------------------------------------------------
# helpers


class Collector:
    """Every message on a pattern, indexed by the topic level `key_level`
    (the device or worker id). Receipts and alerts of thousands of devices
    without scanning lists on each wait."""

    def __init__(self, mqtt_factory, pattern, key_level=-2):
        self.cv = threading.Condition()
        self.by_key = defaultdict(list)       # id -> [(monotonic, dict)]
        self.n = 0
        self.key_level = key_level
        self.client = mqtt_factory(subscriptions=[pattern])
        self.client.on_message_hook = self._on

    def _on(self, msg):
        try:
            j = msg.json()
        except ValueError:
            j = {"unparsable": msg.payload[:200]}
        key = msg.topic.split("/")[self.key_level]
        with self.cv:
            self.by_key[key].append((msg.at, j))
            self.n += 1
            self.cv.notify_all()

    def wait_keys(self, keys, timeout, what, pred=None):
        """Until every key has a message (matching pred); returns the keys
        still missing at the deadline (does not raise)."""
        deadline = time.monotonic() + timeout
        keys = list(keys)
        with self.cv:
            while True:
                missing = [k for k in keys
                           if not any(pred is None or pred(j) for _, j in self.by_key.get(k, ()))]
                if not missing or time.monotonic() > deadline:
                    return missing
                self.cv.wait(0.5)

    def of(self, key):
        with self.cv:
            return [j for _, j in self.by_key.get(key, ())]

    def all(self):
        with self.cv:
            return {k: [j for _, j in v] for k, v in self.by_key.items()}


def spread(pub, events, seconds, midway=None):
    """Publish (device, payload) pairs evenly over `seconds`; midway() is
    called once half of them are out."""
    t0 = time.monotonic()
    n = len(events)
    for i, (dev, payload) in enumerate(events):
        if midway and i == n // 2:
            midway()
        delay = t0 + seconds * i / n - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        pub.publish(f"{PREFIX}/dev/{dev}/event", payload)


def import_devices(d, tmp_path, rows, name="devices.csv"):
    """rows: (device id, resident id). One all-or-nothing request."""
    csv = tmp_path / name
    csv.write_text("id,resident,kind\n" + "".join(f"{dev},{rid},base_unit\n" for dev, rid in rows))
    rc, out, err = d.ctl("device", "import", csv, timeout=120)
    assert rc == 0, f"device import: {err}"


def add_workers(d, workers, on_duty=True):
    for w in workers:
        rc, _, err = d.ctl("worker", "add", w, "--name", f"Name {w}", "--team", "north")
        assert rc == 0, err
        if on_duty:
            rc, _, err = d.ctl("shift", "add", w, "--always")
            assert rc == 0, err


def incidents(d, cls=None):
    """Open alarms on the gateway's pseudo-device (mass incidents) of a class
    (DECISIONS.md: the summary's "incident": {"class": ...})."""
    out = []
    for a in d.ctl_json("alarm", "list", "--open"):
        if a["device"] != "telecared":
            continue
        inc = a.get("incident") or d.ctl_json("alarm", "show", a["alarm"]).get("incident") or {}
        if cls is None or inc.get("class") == cls:
            a["incident"] = inc
            out.append(a)
    return out


def board_entry(broker, alarm):
    held = retained(broker.port, f"{PREFIX}/alarms/{alarm}")
    m = held.get(f"{PREFIX}/alarms/{alarm}")
    return m.json() if m is not None and m.payload else None


def open_alerts_by_alarm(alerts, worker):
    out = defaultdict(list)
    for j in alerts.of(worker):
        if j.get("state") == "open":
            out[j.get("alarm")].append(j)
    return out


def per_device_alerts(alerts, worker, type_):
    """Open alerts to worker for alarms of a device (not an incident) of type_."""
    return [j for j in alerts.of(worker) if j.get("state") == "open" and
            j.get("device") != "telecared" and type_ in (j.get("types") or [])]


def technical_policies(wait="10m"):
    return (policy("urgent", f"on_duty:* wait {wait}", priorities="1,2") +
            policy("technical", f"on_duty:* wait {wait}", priorities="3"))


# --------------------------------------------------------------------------
# the blackout


def test_blackout_of_2000_base_units_is_one_incident_and_a_fall_still_alerts(
        daemon, mqtt_factory, broker, tmp_path):
    n = 2000
    d = daemon(extra_lines=technical_policies())
    d.add_resident("r-north", "North Homes", "--team", "north")
    d.add_resident("r-south", "South Homes", "--team", "south")
    d.add_resident("r-anna", "Anna Kowalska", "--team", "north")
    d.add_device("pendant-1", "r-anna")
    units = [f"base-{i:04d}" for i in range(n)]
    import_devices(d, tmp_path, [(u, "r-north" if i % 2 == 0 else "r-south")
                                 for i, u in enumerate(units)])
    add_workers(d, ["w-1", "w-2"])
    add_workers(d, ["w-off"], on_duty=False)
    receipts = Collector(mqtt_factory, f"{PREFIX}/dev/+/receipt")
    alerts = Collector(mqtt_factory, f"{PREFIX}/worker/+/alert")
    pub = mqtt_factory(subscriptions=[])

    fall_sent = {}

    def fall():
        fall_sent["at"] = time.monotonic()
        pub.publish(f"{PREFIX}/dev/pendant-1/event", {"id": "fall-1", "type": "fall"})

    spread(pub, [(u, {"id": "pl-1", "type": "power_loss"}) for u in units], 2.0, midway=fall)
    problems = []
    missing = receipts.wait_keys(units + ["pendant-1"], 90, "receipts")
    if missing:
        problems.append(f"{len(missing)} of {n + 1} events got no receipt within 90s "
                        f"(first: {missing[:5]}; status: {d.ctl_json('status')['counts']})")
    got = receipts.all()
    not_stored = {u: got[u] for u in units if u in got and
                  [r.get("status") for r in got[u]] != ["stored"]}
    if not_stored:
        problems.append(f"{len(not_stored)} base units' receipts are not one 'stored': "
                        f"{list(not_stored.items())[:3]}")

    # the fall: its own alarm, alerted to both on-duty workers
    fall_r = (got.get("pendant-1") or [{}])[0]
    fall_alarm = fall_r.get("alarm")
    if fall_r.get("status") != "stored" or not isinstance(fall_alarm, int):
        problems.append(f"the fall's receipt: {fall_r}")
    else:
        late = alerts.wait_keys(["w-1", "w-2"], 30, "the fall's alerts",
                                pred=lambda j: j.get("alarm") == fall_alarm)
        if late:
            problems.append(f"{late} got no alert for the fall (alarm {fall_alarm}) within 30s")
        if d.ctl_json("alarm", "show", fall_alarm)["device"] != "pendant-1":
            problems.append(f"the fall's alarm {fall_alarm} is not pendant-1's")

    incs = incidents(d, "power_loss")
    if len(incs) != 1:
        per_device = [a for a in d.ctl_json("alarm", "list", "--open")
                      if a["device"].startswith("base-")]
        counts = {w: len(alerts.of(w)) for w in ("w-1", "w-2")}
        problems.append(f"{len(incs)} open power_loss incidents (want 1); {len(per_device)} "
                        f"per-device alarms open; alerts so far: {counts}")
        pytest.fail("\n".join(problems), pytrace=False)
    inc = incs[0]["alarm"]
    if fall_alarm == inc:
        problems.append("the fall was folded into the power_loss incident")

    # every base unit's event names the incident, or an alarm folded into it
    named = defaultdict(list)
    for u in units:
        for r in got.get(u, ()):
            named[r.get("alarm")].append(u)
    others = {a: us for a, us in named.items() if a != inc}
    if sum(len(us) for us in others.values()) > MASS_DEVICES_DEFAULT:
        problems.append(f"{sum(len(us) for us in others.values())} receipts name another alarm than "
                        f"the incident {inc} (at most {MASS_DEVICES_DEFAULT} may have opened "
                        f"their own before the fold): {list(others)[:10]}")
    for a in list(others)[:MASS_DEVICES_DEFAULT + 1]:
        shown = d.ctl_json("alarm", "show", a) if isinstance(a, int) else {"outcome": None}
        if shown.get("outcome") != "folded":
            problems.append(f"receipts of {others[a][:3]} name alarm {a}, which is not folded "
                            f"into the incident ({shown.get('state')}, {shown.get('outcome')})")

    # the board counts them
    def counted():
        b = board_entry(broker, inc)
        return b if b and (b.get("incident") or {}).get("devices") == n else None
    try:
        summary = wait_until(counted, 30, f"the board's incident {inc} to count {n} devices",
                             interval=0.5)
        info = summary["incident"]
        if info.get("class") != "power_loss" or info.get("teams") != {"north": n // 2,
                                                                       "south": n // 2}:
            problems.append(f"the incident's summary: {info}")
    except AssertionError as e:
        problems.append(f"{e}: {board_entry(broker, inc)}")

    # one alert per on-duty worker for the incident, none per device
    alerts.wait_keys(["w-1", "w-2"], 20, "the incident's alert",
                     pred=lambda j: j.get("alarm") == inc)
    time.sleep(3.0)          # the hold and any stragglers
    for w in ("w-1", "w-2"):
        mine = open_alerts_by_alarm(alerts, w)
        if len(mine.get(inc, [])) != 1:
            problems.append(f"{w} got {len(mine.get(inc, []))} alerts for the incident (want 1)")
        per_dev = per_device_alerts(alerts, w, "power_loss")
        if per_dev:
            problems.append(f"{w} got {len(per_dev)} per-device power_loss alerts "
                            f"(alarms {sorted({j['alarm'] for j in per_dev})[:10]})")
        about = [j for j in alerts.of(w) if j.get("alarm") != fall_alarm]
        if len(about) > 10:
            problems.append(f"{w} got {len(about)} alert-topic messages about the blackout "
                            f"(follow-ups included; one incident should be a handful)")
    if alerts.of("w-off"):
        problems.append(f"w-off (not on duty) got {len(alerts.of('w-off'))} alerts")
    assert not problems, "\n".join(problems)

    # power comes back: every unit restored, the incident resolves itself
    spread(pub, [(u, {"id": "pr-1", "type": "power_restored"}) for u in units], 2.0)
    missing = receipts.wait_keys(units, 90, "restoral receipts",
                                 pred=lambda j: j.get("id") == "pr-1")
    assert not missing, f"{len(missing)} restorals got no receipt: {missing[:5]}"
    wait_until(lambda: d.ctl_json("alarm", "show", inc)["state"] == "resolved", 60,
               f"incident {inc} to resolve once every device is restored", interval=0.5)
    shown = d.ctl_json("alarm", "show", inc)
    assert shown["outcome"] == "restored", shown["outcome"]
    wait_until(lambda: board_entry(broker, inc) is None, 30, "the board entry to clear")
    assert d.ctl_json("alarm", "show", fall_alarm)["state"] == "open"   # a fall never folds


def test_a_thousand_strangers_panicking_are_one_incident_listing_them(daemon, mqtt_factory):
    n = 1000
    d = daemon(extra_lines=technical_policies())
    add_workers(d, ["w-1", "w-2"])
    receipts = Collector(mqtt_factory, f"{PREFIX}/dev/+/receipt")
    alerts = Collector(mqtt_factory, f"{PREFIX}/worker/+/alert")
    pub = mqtt_factory(subscriptions=[])
    strangers = [f"stranger-{i:04d}" for i in range(n)]
    spread(pub, [(s, {"id": 1, "type": "panic"}) for s in strangers], 2.0)
    problems = []
    missing = receipts.wait_keys(strangers, 90, "receipts")
    if missing:
        problems.append(f"{len(missing)} of {n} panics got no receipt within 90s "
                        f"(first: {missing[:5]})")
    got = receipts.all()
    bad = {s: got[s] for s in strangers if s in got and
           [r.get("status") for r in got[s]] != ["stored"]}
    if bad:
        problems.append(f"{len(bad)} receipts are not one 'stored': {list(bad.items())[:3]}")
    incs = incidents(d, "unknown")
    if len(incs) != 1:
        opened = [a for a in d.ctl_json("alarm", "list", "--open") if a["device"] != "telecared"]
        problems.append(f"{len(incs)} open incidents of unregistered devices (want 1); "
                        f"{len(opened)} per-device alarms open; alerts to w-1: "
                        f"{len(alerts.of('w-1'))}")
        pytest.fail("\n".join(problems), pytrace=False)
    inc = incs[0]["alarm"]

    def listed():
        shown = d.ctl_json("alarm", "show", inc)
        return {m["device"] for m in shown.get("members", [])} >= set(strangers) and shown
    try:
        shown = wait_until(listed, 30, f"incident {inc} to list all {n} strangers", interval=0.5)
        members = {m["device"]: m for m in shown["members"]}
        if set(members) != set(strangers):
            problems.append(f"members that never spoke: {sorted(set(members) - set(strangers))[:5]}")
        if any(m.get("known") is not False for m in members.values()):
            problems.append("members listed as known (registered) devices")
        if shown.get("incident", {}).get("devices") != n:
            problems.append(f"the incident's summary counts {shown.get('incident')}")
    except AssertionError as e:
        shown = d.ctl_json("alarm", "show", inc)
        problems.append(f"{e}: {len(shown.get('members', []))} members listed")
    alerts.wait_keys(["w-1", "w-2"], 20, "the incident's alert", pred=lambda j: j.get("alarm") == inc)
    time.sleep(3.0)
    for w in ("w-1", "w-2"):
        mine = open_alerts_by_alarm(alerts, w)
        if len(mine.get(inc, [])) != 1:
            problems.append(f"{w} got {len(mine.get(inc, []))} alerts for the incident (want 1)")
        per_dev = per_device_alerts(alerts, w, "panic")
        if per_dev:
            problems.append(f"{w} got {len(per_dev)} alerts for strangers' own alarms")
        if len(alerts.of(w)) > 10:
            problems.append(f"{w} got {len(alerts.of(w))} alert-topic messages (follow-ups "
                            f"included; one incident should be a handful)")
    assert not problems, "\n".join(problems)


def test_a_restart_with_2000_open_technical_alarms_presents_one_incident(
        daemon, mqtt_factory, tmp_path):
    n = 2000
    # first run: folding off, a short wait, so that every alarm is overdue
    # (and would fire at once) when the daemon comes back
    d = daemon(overrides={"alarms": {"mass_devices": "0"}},
               extra_lines=policy("urgent", "on_duty:* wait 10m", priorities="1,2") +
               policy("technical", "on_duty:* wait 6s", priorities="3"))
    d.add_resident("r-north", "North Homes", "--team", "north")
    units = [f"base-{i:04d}" for i in range(n)]
    import_devices(d, tmp_path, [(u, "r-north") for u in units])
    add_workers(d, ["w-1", "w-2"])
    receipts = Collector(mqtt_factory, f"{PREFIX}/dev/+/receipt")
    pub = mqtt_factory(subscriptions=[])
    spread(pub, [(u, {"id": "pl-1", "type": "power_loss"}) for u in units], 2.0)
    missing = receipts.wait_keys(units, 90, "receipts")
    assert not missing, f"first run: {len(missing)} power_loss events got no receipt"
    wait_until(lambda: len([a for a in d.ctl_json("alarm", "list", "--open")
                            if a["device"].startswith("base-")]) == n, 30,
               f"{n} open per-device alarms with folding off")
    t_opened = time.monotonic()
    d.kill9()

    # second run: the default folding, a long wait for new alarms
    text = d.conf.read_text().replace("mass_devices = 0\n", "")
    text = text.replace("step = on_duty:* wait 6s", "step = on_duty:* wait 10m")
    d.conf.write_text(text)
    alerts = Collector(mqtt_factory, f"{PREFIX}/worker/+/alert")
    time.sleep(max(0.0, t_opened + 7.0 - time.monotonic()))   # every old step is overdue
    d.start(timeout=60)
    problems = []
    try:
        wait_until(lambda: incidents(d, "power_loss"), 30, "a power_loss incident after the restart",
                   interval=0.5)
    except AssertionError as e:
        problems.append(str(e))
    alerts.wait_keys(["w-1", "w-2"], 20, "an alert after the restart")
    time.sleep(5.0)
    incs = incidents(d, "power_loss")
    still = [a for a in d.ctl_json("alarm", "list", "--open") if a["device"].startswith("base-")]
    counts = {w: sum(1 for j in alerts.of(w) if j.get("state") == "open") for w in ("w-1", "w-2")}
    if len(incs) != 1:
        problems.append(f"{len(incs)} power_loss incidents after the restart (want 1); "
                        f"{len(still)} per-device alarms still open; open alerts per worker: "
                        f"{counts}")
    else:
        inc = incs[0]["alarm"]
        if still:
            problems.append(f"{len(still)} per-device power_loss alarms still open beside "
                            f"incident {inc}")
        shown = d.ctl_json("alarm", "show", inc)
        if (shown.get("incident") or {}).get("devices") != n:
            problems.append(f"incident {inc} counts {shown.get('incident')} (want {n} devices)")
        for w in ("w-1", "w-2"):
            mine = open_alerts_by_alarm(alerts, w)
            if len(mine.get(inc, [])) != 1 or sum(len(v) for v in mine.values()) != 1:
                problems.append(f"{w} got {sum(len(v) for v in mine.values())} alerts after the "
                                f"restart, {len(mine.get(inc, []))} of them for the incident "
                                f"(want exactly 1)")
            if len(alerts.of(w)) > 10:
                problems.append(f"{w} got {len(alerts.of(w))} alert-topic messages after the "
                                f"restart (follow-ups of folded alarms included: a flood)")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------
# a burst: every receipt, no resend


def test_a_burst_of_events_gets_every_receipt_without_a_resend(daemon, mqtt_factory):
    # the burst (20,000 from 100 devices): 5,000 from 10 does not
    # always overflow the old path on a plain build
    devices, per_device = 100, 200
    d = daemon(overrides={"mqtt": {"device_rate": "100000", "device_burst": "100000"}})
    receipts = Collector(mqtt_factory, f"{PREFIX}/dev/+/receipt")
    pub = mqtt_factory(subscriptions=[])
    ids = [f"burst-{k}" for k in range(devices)]
    t0 = time.monotonic()
    for i in range(per_device):           # as fast as the client can, never a resend
        for dev in ids:
            pub.publish(f"{PREFIX}/dev/{dev}/event", {"id": i, "type": "heartbeat"})
    sent_s = time.monotonic() - t0

    def complete():
        with receipts.cv:
            return receipts.n >= devices * per_device
    try:
        wait_until(complete, 90, f"{devices * per_device} receipts", interval=0.2)
    except AssertionError:
        pass
    got = receipts.all()
    counts = {dev: len(got.get(dev, ())) for dev in ids}
    stored = {dev: {r.get("id") for r in got.get(dev, ()) if r.get("status") == "stored"}
              for dev in ids}
    missing = {dev: per_device - len(stored[dev]) for dev in ids if len(stored[dev]) < per_device}
    status = d.ctl_json("status")
    assert not missing, (f"receipts missing after {time.monotonic() - t0:.0f}s (sent in "
                         f"{sent_s:.1f}s): {sum(missing.values())} of {devices * per_device} "
                         f"({missing}); daemon counts: {status['counts']}")
    assert all(c == per_device for c in counts.values()), f"receipts per device: {counts}"


# --------------------------------------------------------------------------
# idle control clients


def test_1100_idle_control_clients_stop_neither_receipts_nor_status(daemon, mqtt, tmp_path):
    # the limit systemd gives a service by default (LimitNOFILE soft 1024),
    # set for the daemon's start only; it may raise its own soft limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        d = daemon()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    need = 1100 + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, need), hard))
    idle = []
    try:
        # each connection is retried while the listen backlog is full, for a
        # while: a daemon that stops accepting must not stall the test
        deadline = time.monotonic() + 10
        while len(idle) < 1100 and time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(str(d.socket))
                idle.append(s)
            except BlockingIOError:
                s.close()
                time.sleep(0.002)
            except OSError:
                s.close()
                break
        time.sleep(1.0)
        r, _ = mqtt.event("p-1", {"id": "after-idle", "type": "heartbeat"}, timeout=15)
        assert r["status"] == "stored", r
        # status answers: at once, or once the daemon has made room (idle
        # clients time out); retried for 45 s
        t0 = time.monotonic()
        tries = []
        while time.monotonic() - t0 < 45:
            try:
                rc, out, err = run_ctl(d.socket, "status", json_out=True, timeout=15)
            except Exception as e:       # subprocess.TimeoutExpired: no answer at all
                rc, out, err = None, "", f"no answer within 15s ({type(e).__name__})"
            tries.append(rc)
            if rc == 0:
                break
            time.sleep(1.0)
        assert rc == 0, (f"telecarectl status beside {len(idle)} idle control clients: no answer "
                         f"in {time.monotonic() - t0:.0f}s ({len(tries)} tries, exits {tries}): "
                         f"{err.strip()}")
        assert json.loads(out)["counts"]["events_stored"] >= 1
        assert d.proc.poll() is None
    finally:
        for s in idle:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --------------------------------------------------------------------------
# a storm of silent devices across a restart (issue 10 "Storms")


def test_a_storm_open_across_a_restart_resolves_when_its_devices_are_heard(daemon, mqtt):
    n = 12
    d = daemon(overrides={"alarms": {"mass_devices": "5", "mass_window": "1m", "mass_hold": "1s"},
                          "supervision": {"grace": "500ms"}},
               extra_lines=technical_policies())
    d.add_resident("r-1", "Anna Kowalska", "--team", "north")
    add_workers(d, ["w-1"])
    silent = [f"quiet-{i:02d}" for i in range(n)]
    for dev in silent:
        d.add_device(dev, "r-1", "--heartbeat", "2s")
    # nobody speaks: one incident of silent devices, counting all of them

    def counted():
        for a in incidents(d, "connection_lost"):
            shown = d.ctl_json("alarm", "show", a["alarm"])
            if (shown.get("incident") or {}).get("devices") == n:
                return shown
        return None
    storm = wait_until(counted, 30, f"one connection_lost incident counting {n} devices",
                       interval=0.5)["alarm"]
    d.kill9()
    d.start()
    stop = threading.Event()

    def heartbeats():
        k = 0
        while not stop.is_set():
            k += 1
            for dev in silent:
                mqtt.publish(f"{PREFIX}/dev/{dev}/event", {"id": f"back-{k}", "type": "heartbeat"})
            stop.wait(0.5)

    t = threading.Thread(target=heartbeats, daemon=True)
    t.start()
    try:
        wait_until(lambda: d.ctl_json("alarm", "show", storm)["state"] == "resolved", 30,
                   f"incident {storm}, open across the restart, to resolve once every device "
                   f"is heard", interval=0.5)
        shown = d.ctl_json("alarm", "show", storm)
        assert shown["outcome"] == "restored", shown["outcome"]
        left = [a for a in d.ctl_json("alarm", "list", "--open")
                if "connection_lost" in a["types"]]
        assert left == [], f"connection_lost alarms still open: {left}"
    finally:
        stop.set()
        t.join(5)
