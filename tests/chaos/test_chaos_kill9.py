"""Drill 1 (issue 6): telecared killed with SIGKILL at random moments, round
after round, under mixed load: devices streaming heartbeats and alarms (each
event resent until receipted), an on-duty worker acking and resolving alarms
over MQTT as alerts arrive, a one-step policy with a 1 s wait.

After every restart: no receipted event is missing from the database, no
event is stored twice (and no event heard 'stored' twice), every open alarm
is alerted again within its wait (or was handled by a worker action the
broker kept), PRAGMA integrity_check is ok. At the end the stream drains:
every event sent is stored exactly once.

Rounds: 8 at CHAOS_SCALE=1, 50 at 10. A quarter of the kills hit the daemon
right after it came back (reloading, draining the broker's backlog), and in
one round of eight (and a few random others) it is killed once more while it
is still starting, before its control socket answers."""
import os
import time

import chaoslib as cl

WAIT_S = 1.0
DRILL = "kill9"


@cl.drill(DRILL)
def test_kill9_rounds_under_mixed_load(daemon, broker):
    rng = cl.rng_for(DRILL)
    rounds = cl.scaled(8, 50)
    rate = float(os.environ.get("CHAOS_KILL9_RATE", "300"))
    devices = [f"mix-{k}" for k in range(6)]
    d, worker = cl.mixed_setup(daemon, broker, devices, wait=f"{int(WAIT_S * 1000)}ms")
    load = cl.Load(broker.port, devices, rate=rate, window=300, resend_after=2.0, alarm_every=8,
                   name=DRILL).start()
    t0 = time.monotonic()
    per_round = []
    cl.say(DRILL, f"{rounds} rounds, {len(devices)} devices at {rate:.0f} events/s, seed {cl.SEED}")
    try:
        load.wait_receipted(50, 30)
        for r in range(1, rounds + 1):
            how = rng.random()
            if how < 0.25 or r % 8 == 2:
                run_for = rng.uniform(0.02, 0.3)     # just after the last restart
            else:
                run_for = rng.uniform(0.5, 2.5)
            time.sleep(run_for)
            in_flight = load.n_outstanding()
            t_kill = time.monotonic()
            d.kill9()
            killed_in_start = None
            if r % 8 == 4 or rng.random() < 0.1:
                time.sleep(rng.uniform(0.05, 0.3))
                killed_in_start = rng.uniform(0.005, 0.15)
                cl.spawn_and_kill(d, killed_in_start)
            time.sleep(rng.uniform(0.1, 0.6))
            t_spawn = time.monotonic()
            d.start()
            t_ready = time.monotonic()
            numbers, problems = cl.check_store(d.db, load)
            integ = cl.integrity(d.db)
            n_open, delays, handled, stuck = cl.check_escalation(d, worker, devices, t_spawn,
                                                                 t_ready, WAIT_S)
            findings = cl.log_findings(d.log)
            row = {"round": r, "ran_s": round(run_for, 2), "in_flight_at_kill": in_flight,
                   "killed_in_start_after_s": None if killed_in_start is None else
                   round(killed_in_start, 3),
                   "restart_ready_s": round(t_ready - t_spawn, 2),
                   "down_s": round(t_spawn - t_kill, 2),
                   "receipted": numbers["receipted"], "rows": numbers["rows"],
                   "lost": numbers["lost"], "stored_twice": numbers["multi"],
                   "stored_receipt_twice": numbers["stored_receipt_twice"],
                   "alarm_mismatch": numbers["alarm_mismatch"],
                   "open_alarms": n_open, "realerted": len(delays), "handled": len(handled),
                   "stuck": stuck,
                   "max_realert_after_ready_ms": round(max(delays.values()) * 1000)
                   if delays else None,
                   "integrity": integ[0] if len(integ) == 1 else integ[:5]}
            per_round.append(row)
            cl.say(DRILL, f"round {r}/{rounds}: ran {run_for:.2f}s, {in_flight} in flight at the kill"
                   f"{'' if killed_in_start is None else f', killed again {killed_in_start:.3f}s into start'}"
                   f", ready {t_ready - t_spawn:.2f}s after spawn; {numbers['receipted']} receipted, "
                   f"{numbers['rows']} rows, lost {numbers['lost']}, twice {numbers['multi']}; "
                   f"open alarms {n_open}: re-alerted {len(delays)} (max "
                   f"{row['max_realert_after_ready_ms']} ms after ready), handled {len(handled)}, "
                   f"stuck {stuck}; integrity {row['integrity']}")
            cl.record(DRILL, rounds_done=r, per_round=per_round)
            assert not problems, f"round {r}: " + "; ".join(problems)
            assert numbers["stored_receipt_twice"] == 0, \
                f"round {r}: events heard 'stored' twice (the second should be 'duplicate'): " \
                f"{numbers['twice_examples']}"
            assert integ == ["ok"], f"round {r}: integrity_check: {integ[:10]}"
            assert not stuck, f"round {r}: open alarms {stuck} got no alert within " \
                              f"{WAIT_S + cl.SLACK}s of the restart"
            assert not findings, f"round {r}: daemon log: {findings[:10]}"

        drain_s = load.drain(120)
        # give the worker's last actions a moment, then stop cleanly and check the file
        time.sleep(0.5)
        final, problems = cl.check_store(d.db, load, final=True)
        states = cl.alarm_counts(d.db, devices)
        rc = d.sigterm()
        integ = cl.integrity(d.db)
        total_s = time.monotonic() - t0
        in_flight_kills = sum(1 for x in per_round if x["in_flight_at_kill"] > 0)
        realert = [x["max_realert_after_ready_ms"] for x in per_round
                   if x["max_realert_after_ready_ms"] is not None]
        result = {
            "rounds": rounds, "events": len(load.payloads), "sent": load.sent,
            "resent": load.resent, "rows": final["rows"], "lost": final["lost"],
            "stored_twice": final["multi"], "stored_receipt_twice": final["stored_receipt_twice"],
            "kills_with_events_in_flight": in_flight_kills,
            "kills_during_start": sum(1 for x in per_round if x["killed_in_start_after_s"]),
            "restart_ready_s_max": max(x["restart_ready_s"] for x in per_round),
            "realert_after_ready_ms_max": max(realert) if realert else None,
            "alerts": len(worker.alerts), "acks_sent": worker.acks_sent, "acks_ok": worker.acks_ok,
            "resolves_ok": worker.resolves_ok, "alarms_by_state": states,
            "drain_s": round(drain_s, 2), "sigterm_rc": rc, "integrity": integ,
            "elapsed_s": round(total_s, 1)}
        cl.record(DRILL, **result)
        cl.say(DRILL, "result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
        assert not problems, "; ".join(problems)
        assert final["stored_receipt_twice"] == 0, final["twice_examples"]
        assert rc == 0, f"telecared exited {rc} on SIGTERM"
        assert integ == ["ok"], integ
        assert in_flight_kills >= 1, "no kill hit events in flight: the drill proved little"
        assert not load.stray, f"receipts for events never sent: {load.stray[:5]}"
    finally:
        load.stop()
        worker.close()
