"""Drill 5 (issue 9): a blackout with kill -9 rounds. 2,000 registered base
units (CHAOS_SCALE=1; 10,000 at 10) report `power_loss` within 3 s while
pendants raise falls at random moments; telecared is killed with SIGKILL
round after round (one round while it is still starting). Every device
resends until it gets a stored/duplicate receipt (SPEC 2.2). One on-duty
worker never acknowledges anything, so every open alarm must keep alerting.

After every restart: no receipted event is missing from the database, none
is stored twice, PRAGMA integrity_check is ok, and every open care alarm
(the falls) and every open incident (alarms of the pseudo-device telecared)
is alerted again within its wait (1 s) plus the mass hold (2 s) plus slack.
At the end: every event sent is stored exactly once; the blackout is one
power_loss incident (DECISIONS.md "Mass incidents") with no per-device
power_loss alarm left open beside it; each fall is its own open alarm; and
when power comes back to every unit the incident resolves itself."""
import threading
import time

import chaoslib as cl

DRILL = "blackout"
WAIT_S = 1.0
HOLD_S = 2.0         # DECISIONS.md: mass_hold default


def import_units(d, tmp_path, units):
    csv = tmp_path / "units.csv"
    csv.write_text("id,resident,kind\n" + "".join(f"{u},r-chaos,base_unit\n" for u in units))
    rc, _, err = d.ctl("device", "import", csv, timeout=120)
    assert rc == 0, f"device import: {err}"


def store_problems(d, load):
    """cl.check_store, except that a receipt may name a per-device alarm that
    was later folded into an incident (or the incident its row now names)."""
    numbers, problems = cl.check_store(d.db, load)
    if numbers["alarm_mismatch"]:
        folded = {r["id"] for r in d.query("SELECT id FROM alarms WHERE outcome = 'folded'")}
        incidents = {r["id"] for r in d.query("SELECT id FROM alarms WHERE device_id = 'telecared'")}
        rows = cl.stored_events(d.db, load.devices)
        with load.cv:
            named = {k: set(v) for k, v in load.receipt_alarm.items()}
        bad = []
        for (dev, eid), alarms in named.items():
            row = rows.get((dev, cl.compact(eid)))
            if not row:
                continue
            for a in alarms:
                if a != row[0] and not (a in folded and (row[0] in incidents or row[0] == a)):
                    bad.append(((dev, eid), a, row[0]))
        problems = [p for p in problems if "receipts name another alarm" not in p]
        if bad:
            problems.append(f"{len(bad)} receipts name another alarm than the stored row (not a "
                            f"fold): {bad[:10]}")
    return numbers, problems


@cl.drill(DRILL)
def test_blackout_with_kill9_rounds(daemon, broker, tmp_path):
    rng = cl.rng_for(DRILL)
    n_units = cl.scaled(2000, 10000)
    rounds = cl.scaled(5, 20)
    pendants = [f"pendant-{k}" for k in range(cl.scaled(8, 20))]
    units = [f"unit-{i:05d}" for i in range(n_units)]
    d = daemon(extra_lines=cl.policy("chaos", [f"on_duty:* wait {int(WAIT_S * 1000)}ms"],
                                     priorities="1,2,3", ack_timeout="10m"))
    d.add_resident("r-chaos", "Chaos Resident", "--team", "north", "--address", "Drill St 1")
    import_units(d, tmp_path, units)
    for p in pendants:
        d.add_device(p, "r-chaos")
    rc, _, err = d.ctl("worker", "add", "w-chaos", "--name", "Worker w-chaos", "--team", "north")
    assert rc == 0, err
    assert d.ctl("shift", "add", "w-chaos", "--always")[0] == 0
    worker = cl.Worker(broker.port, "w-chaos", ack_after=None)     # never acks: alerts go on
    load = cl.Load(broker.port, units + pendants, rate=1, window=10 ** 9, resend_after=3.0,
                   alarm_every=0, name=DRILL)
    load.generating = False          # only the events this drill adds
    load.start()
    watched = pendants + ["telecared"]
    fall_at = dict(zip(pendants, sorted(rng.uniform(0.0, rounds * 2.0) for _ in pendants)))
    fell = set()
    t0 = time.monotonic()
    per_round = []
    cl.say(DRILL, f"{n_units} units, {len(pendants)} pendants, {rounds} kill rounds, seed {cl.SEED}")

    def send_due_falls(every=False):
        for p, at in fall_at.items():
            if p not in fell and (every or time.monotonic() - t0 >= at):
                fell.add(p)
                load.add(p, {"id": f"fall-{p}", "type": "fall"})

    try:
        # the blackout: every unit within 3 s (as a district loses power), and
        # the first kill lands in the middle of it
        def blackout():
            for i in range(0, n_units, 100):
                for u in units[i:i + 100]:
                    load.add(u, {"id": "pl-1", "type": "power_loss"})
                time.sleep(3.0 * 100 / n_units)
        spreader = threading.Thread(target=blackout, name="blackout", daemon=True)
        spreader.start()
        for r in range(1, rounds + 1):
            run_for = rng.uniform(0.5, 2.0) if r == 1 else rng.uniform(0.5, 3.0)
            end = time.monotonic() + run_for
            while time.monotonic() < end:
                send_due_falls()
                time.sleep(0.05)
            if r == 1:
                # the blackout is still coming in: kill while some of it is in flight
                until = time.monotonic() + 3.0
                while load.n_outstanding() == 0 and time.monotonic() < until:
                    time.sleep(0.001)
            in_flight = load.n_outstanding()
            d.kill9()
            killed_in_start = None
            if r == 3:
                time.sleep(0.1)
                killed_in_start = rng.uniform(0.01, 0.2)
                cl.spawn_and_kill(d, killed_in_start)
            time.sleep(rng.uniform(0.1, 0.5))
            t_spawn = time.monotonic()
            d.start(timeout=60)
            t_ready = time.monotonic()
            numbers, problems = store_problems(d, load)
            integ = cl.integrity(d.db)
            n_open, delays, handled, stuck = cl.check_escalation(d, worker, watched, t_spawn,
                                                                 t_ready, WAIT_S + HOLD_S)
            findings = cl.log_findings(d.log)
            row = {"round": r, "ran_s": round(run_for, 2), "in_flight_at_kill": in_flight,
                   "killed_in_start_after_s": killed_in_start,
                   "restart_ready_s": round(t_ready - t_spawn, 2),
                   "receipted": numbers["receipted"], "rows": numbers["rows"],
                   "lost": numbers["lost"], "stored_twice": numbers["multi"],
                   "open_watched_alarms": n_open, "realerted": len(delays), "stuck": stuck,
                   "max_realert_after_ready_ms": round(max(delays.values()) * 1000)
                   if delays else None,
                   "integrity": integ[0] if len(integ) == 1 else integ[:5]}
            per_round.append(row)
            cl.say(DRILL, f"round {r}/{rounds}: ran {run_for:.2f}s, {in_flight} in flight at the "
                   f"kill, ready {t_ready - t_spawn:.2f}s after spawn; {numbers['receipted']} "
                   f"receipted, {numbers['rows']} rows, lost {numbers['lost']}, twice "
                   f"{numbers['multi']}; open falls/incidents {n_open}: re-alerted {len(delays)}, "
                   f"stuck {stuck}; integrity {row['integrity']}")
            cl.record(DRILL, rounds_done=r, per_round=per_round)
            assert not problems, f"round {r}: " + "; ".join(problems)
            assert numbers["stored_receipt_twice"] == 0, \
                f"round {r}: events heard 'stored' twice: {numbers['twice_examples']}"
            assert integ == ["ok"], f"round {r}: integrity_check: {integ[:10]}"
            assert not stuck, (f"round {r}: open alarms {stuck} (falls or incidents) got no alert "
                               f"within {WAIT_S + HOLD_S + cl.SLACK}s of the restart")
            assert not findings, f"round {r}: daemon log: {findings[:10]}"

        spreader.join(30)
        send_due_falls(every=True)           # every pendant falls once
        drain_s = load.drain(180)
        time.sleep(1.0)
        final, problems = store_problems(d, load)
        final_rows = cl.stored_events(d.db, load.devices)
        missing = [k for k in load.payloads if (k[0], cl.compact(k[1])) not in final_rows]
        assert not problems, "; ".join(problems)
        assert not missing, f"{len(missing)} sent events are not in the database: {missing[:10]}"

        # the blackout is one incident; the falls are their own alarms, all escalating
        open_alarms = d.ctl_json("alarm", "list", "--open")
        for a in open_alarms:
            if a["device"] == "telecared" and not a.get("incident"):
                a["incident"] = d.ctl_json("alarm", "show", a["alarm"]).get("incident")
        incs = [a for a in open_alarms if a["device"] == "telecared" and
                ((a.get("incident") or {}).get("class") == "power_loss")]
        per_unit = [a for a in open_alarms if a["device"].startswith("unit-")]
        falls = [a for a in open_alarms if a["device"].startswith("pendant-")]
        cl.record(DRILL, incidents=[(a["alarm"], a.get("incident")) for a in incs],
                  per_unit_open=len(per_unit), falls_open=len(falls))
        assert len(incs) == 1, (f"{len(incs)} open power_loss incidents after the blackout "
                                f"(want 1); {len(per_unit)} per-unit alarms open; worker got "
                                f"{len(worker.alerts)} alerts")
        assert per_unit == [], f"{len(per_unit)} per-unit alarms open beside the incident"
        assert sorted(a["device"] for a in falls) == sorted(pendants), falls
        inc = incs[0]["alarm"]
        assert incs[0]["incident"]["devices"] == n_units, incs[0]["incident"]
        t_check = time.monotonic()
        n_open, delays, handled, stuck = cl.check_escalation(d, worker, watched, t_check, t_check,
                                                             WAIT_S)
        assert not stuck, f"open alarms {stuck} stopped alerting"

        # power comes back everywhere: the incident resolves itself
        for u in units:
            load.add(u, {"id": "pr-1", "type": "power_restored"})
        restore_s = load.drain(180)
        cl.wait_until(lambda: d.ctl_json("alarm", "show", inc)["state"] == "resolved", 60,
                      f"incident {inc} to resolve once every unit is restored", interval=0.5)
        assert d.ctl_json("alarm", "show", inc)["outcome"] == "restored"
        final, problems = store_problems(d, load)
        assert not problems, "; ".join(problems)
        rc = d.sigterm()
        integ = cl.integrity(d.db)
        result = {"units": n_units, "pendants": len(pendants), "rounds": rounds,
                  "events": len(load.payloads), "sent": load.sent, "resent": load.resent,
                  "rows": final["rows"], "lost": final["lost"], "stored_twice": final["multi"],
                  "kills_with_events_in_flight": sum(1 for x in per_round
                                                     if x["in_flight_at_kill"] > 0),
                  "restart_ready_s_max": max(x["restart_ready_s"] for x in per_round),
                  "alerts": len(worker.alerts), "drain_s": round(drain_s, 2),
                  "restore_drain_s": round(restore_s, 2), "sigterm_rc": rc, "integrity": integ,
                  "elapsed_s": round(time.monotonic() - t0, 1)}
        cl.record(DRILL, **result)
        cl.say(DRILL, "result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
        assert rc == 0, f"telecared exited {rc} on SIGTERM"
        assert integ == ["ok"], integ
        assert result["kills_with_events_in_flight"] >= 1, "no kill hit events in flight"
        assert not load.stray, f"receipts for events never sent: {load.stray[:5]}"
    finally:
        load.stop()
        worker.close()
