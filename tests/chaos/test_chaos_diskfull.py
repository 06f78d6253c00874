"""Drill 3 (issue 6): the database's filesystem fills up.

The drill mounts a small tmpfs for the daemon's database (root needed; a
failed mount fails the drill), streams heartbeats that are resent until
receipted, then fills the tmpfs with a fill file. SPEC 4 and
docs/SPEC-EXTENSIONS.md "Storage": commits fail and are retried every
second, receipts wait, alarms go on from memory, a `storage_failed`
technical alarm opens on the pseudo-device `telecared`. Checked while full:
that alarm is on the board (telecare/alarms/+) and alerted to the on-duty
worker; new alarms from devices are alerted to the worker; no receipt goes
out. Then the fill file is deleted: the backlog is written, receipts resume
for the resent events, every event is stored exactly once, the alarms the
worker was alerted about are the ones stored, `storage_failed` resolves.

Size: CHAOS_SCALE sets how many alarms are raised while full (5 at 1) and how
long the disk stays full (3 s at 1, 20 s at 10)."""
import errno
import os
import time

import chaoslib as cl

DRILL = "disk_full"
ALERT_BOUND_S = float(os.environ.get("CHAOS_DISKFULL_ALERT_BOUND", "5"))


def fill(path):
    """Write zeros to path until the filesystem says ENOSPC; returns bytes."""
    n = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    w = os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
                if w <= 0:
                    break
                n += w
        os.fsync(fd)
    finally:
        os.close(fd)
    return n


def ctl_status_store(d):
    """(status["store"], None) or (None, what went wrong)."""
    rc, out, err = d.ctl("status", json_out=True)
    if rc != 0:
        return None, f"`telecarectl status` exited {rc}: {err.strip()}"
    return cl.json.loads(out)["store"], None


def is_storage_alarm(m):
    if not m.payload:
        return False
    j = m.json()
    return j.get("device") == "telecared" and "storage_failed" in (j.get("types") or [])


@cl.drill(DRILL)
def test_database_filesystem_full(tmpfs, broker, daemon):
    # (fixture order: the daemon is torn down before the tmpfs is unmounted)
    size = os.environ.get("CHAOS_TMPFS_SIZE", "4m")
    n_alarms = cl.scaled(5, 20)
    hold_s = float(cl.scaled(3, 20))
    mnt = tmpfs(size)
    dbfile = mnt / "telecare.db"
    fillfile = mnt / "fill"
    d = daemon(db_path=dbfile, extra_lines=cl.policy("chaos", ["on_duty:* wait 2s"]))
    devices = [f"disk-{k}" for k in range(4)]
    alarm_devs = [f"full-{k}" for k in range(n_alarms)]
    cl.setup_registry(d, devices + alarm_devs, ["w-duty"])
    worker = cl.Worker(broker.port, "w-duty", ack_after=None)   # on duty, never acks
    board = cl.MqttClient(broker.port, subscriptions=[f"{cl.PREFIX}/alarms/+"]).connect()
    load = cl.Load(broker.port, devices + alarm_devs, rate=100, window=200, resend_after=2.0,
                   alarm_every=0, name=DRILL)
    # only the heartbeat devices stream; the alarm devices send what the drill adds
    load.devices = devices
    load_all = devices + alarm_devs
    r = {"tmpfs_size": size}
    later = []      # contract breaches that should not stop the drill's measurements
    cl.say(DRILL, f"tmpfs {size} at {mnt}; {n_alarms} alarms while full, full for {hold_s:.0f}s")
    try:
        load.start()
        load.wait_receipted(100, 30)
        st0 = os.statvfs(mnt)
        r["free_before_fill_kib"] = st0.f_bavail * st0.f_frsize // 1024

        # ---- fill the disk
        t_fill = time.monotonic()
        r["fill_bytes"] = fill(fillfile)
        sf = board.wait_for(f"{cl.PREFIX}/alarms/+", is_storage_alarm, timeout=60)
        t_sf = sf.at
        storage_alarm = sf.json()["alarm"]
        r["fill_to_storage_failed_s"] = round(t_sf - t_fill, 2)
        r["storage_alarm_on_board"] = {k: sf.json().get(k) for k in
                                       ("alarm", "device", "types", "priority", "technical", "state")}
        # SPEC-EXTENSIONS "Storage": `telecarectl status` shows store.ok false and the error
        status_store, status_problem = ctl_status_store(d)
        r["status_store_while_full"] = status_store or status_problem
        if status_problem:
            later.append(f"while the disk was full, {status_problem}")
        elif status_store.get("ok") is not False:
            later.append(f"while the disk was full, status said store {status_store}")
        cl.say(DRILL, f"filled {r['fill_bytes']} bytes; storage_failed alarm {storage_alarm} on the "
               f"board {r['fill_to_storage_failed_s']}s later; status store: "
               f"{r['status_store_while_full']}")
        assert sf.json()["technical"] is True and sf.json()["types"] == ["storage_failed"], sf.json()

        # ---- while full: receipts stop, alerts go on from memory
        time.sleep(1.0)          # what was committed before the failure has been receipted
        t_quiet = time.monotonic()
        sent_at = {}
        keys = {}
        for k, dev in enumerate(alarm_devs):
            keys[dev] = load.add(dev, {"id": f"a-{k}", "type": "panic", "battery": 80})
            sent_at[dev] = time.monotonic()
            time.sleep(0.2)
        latencies = {}
        deadline = time.monotonic() + ALERT_BOUND_S + 5
        while len(latencies) < len(alarm_devs) and time.monotonic() < deadline:
            for dev in alarm_devs:
                if dev not in latencies:
                    got = worker.first_alert_for_device(dev, after=t_quiet)
                    if got:
                        latencies[dev] = got[0] - load.first_sent.get(keys[dev], sent_at[dev])
            time.sleep(0.05)
        storage_alert = worker.first_alert_for_device("telecared")
        remaining = t_quiet + hold_s - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        receipts_while_full = load.receipts_after(t_quiet)
        status_full, _ = ctl_status_store(d)
        status_full = status_full or {}
        alert_lat = cl.summary(list(latencies.values()))
        r.update({"alarms_while_full": n_alarms, "alerted_while_full": len(latencies),
                  "alert_latency_while_full": alert_lat,
                  "storage_failed_alerted_to_worker": storage_alert is not None,
                  "receipts_while_full": receipts_while_full,
                  "pending_writes_while_full": status_full.get("pending"),
                  "full_for_s": round(time.monotonic() - t_quiet, 1),
                  "alarm_ids_alerted": {dev: worker.first_alert_for_device(dev, t_quiet)[1]["alarm"]
                                        for dev in latencies}})
        cl.say(DRILL, f"while full: {len(latencies)}/{n_alarms} new alarms alerted ({cl.fmt(alert_lat)}"
               f"), storage_failed alerted to the worker: {storage_alert is not None}, receipts: "
               f"{receipts_while_full}, writes pending: {status_full.get('pending')}")
        cl.record(DRILL, **r)
        assert len(latencies) == n_alarms, \
            f"alarms not alerted while the disk was full: {sorted(set(alarm_devs) - set(latencies))}"
        assert max(latencies.values()) < ALERT_BOUND_S, alert_lat
        assert storage_alert is not None, "the on-duty worker got no storage_failed alert"
        assert receipts_while_full == 0, \
            f"{receipts_while_full} receipts went out while no commit could succeed"

        # ---- free the space
        t_free = time.monotonic()
        os.remove(fillfile)
        cl.wait_until(lambda: load.first_receipt_after(t_free) is not None, 30,
                      "receipts after the space came back")
        t_receipt = load.first_receipt_after(t_free)
        cleared = board.wait_for(f"{cl.PREFIX}/alarms/{storage_alarm}",
                                 lambda m: m.payload == b"", timeout=30)
        drain_s = load.drain(60)
        time.sleep(0.3)
        load.devices = load_all
        final, problems = cl.check_store(dbfile, load, final=True)
        shown = d.ctl_json("alarm", "show", storage_alarm)
        status_after = d.ctl_json("status")["store"]
        # the alarms the worker was alerted about from memory are the stored ones
        mism = []
        for dev in alarm_devs:
            st, alarm, _ = load.receipted()[keys[dev]]
            alerted = r["alarm_ids_alerted"].get(dev)
            row = d.query("SELECT device_id, state FROM alarms WHERE id = ?", (alarm,))
            if alarm != alerted or not row or row[0]["device_id"] != dev:
                mism.append((dev, alerted, alarm, row))
        integ = cl.integrity(dbfile)
        findings = cl.log_findings(d.log)
        r.update({"free_to_first_receipt_s": round(t_receipt - t_free, 2),
                  "free_to_storage_resolved_on_board_s": round(cleared.at - t_free, 2),
                  "drain_s": round(drain_s, 2), "events": len(load.payloads), "sent": load.sent,
                  "resent": load.resent, "rows": final["rows"], "lost": final["lost"],
                  "stored_twice": final["multi"],
                  "stored_receipt_twice": final["stored_receipt_twice"],
                  "storage_alarm_state": shown["state"], "storage_alarm_outcome": shown.get("outcome"),
                  "status_store_after": status_after, "alarm_id_mismatch": mism,
                  "integrity": integ})
        cl.record(DRILL, **r)
        cl.say(DRILL, f"space back: first receipt {r['free_to_first_receipt_s']}s, storage_failed "
               f"off the board {r['free_to_storage_resolved_on_board_s']}s, every event receipted "
               f"{r['drain_s']}s after; {final['rows']} rows for {len(load.payloads)} events (sent "
               f"{load.sent}, resent {load.resent}), lost {final['lost']}, twice {final['multi']}; "
               f"storage alarm {shown['state']}/{shown.get('outcome')}; integrity {integ}")
        assert not problems, "; ".join(problems)
        assert final["stored_receipt_twice"] == 0, final["twice_examples"]
        assert shown["state"] == "resolved" and shown.get("outcome") == "restored", shown
        assert status_after["ok"] is True, status_after
        assert not mism, f"alerted alarm ids differ from the stored ones: {mism}"
        assert integ == ["ok"], integ
        assert not findings, f"daemon log: {findings[:10]}"
        assert d.proc.poll() is None, "telecared died"
        assert not later, "; ".join(later)
        rc = d.sigterm()
        cl.record(DRILL, sigterm_rc=rc)
        assert rc == 0, f"telecared exited {rc} on SIGTERM after the drill"
    finally:
        try:
            os.remove(fillfile)
        except OSError:
            pass
        load.stop()
        worker.close()
        board.close()
