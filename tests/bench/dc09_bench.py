"""The DC-09 benchmark (issue 13), the scenario "dc09" of tests/bench/run.py:

    scripts/bench.sh --only dc09 [--quick]

1,000 alarm panels, each on its own persistent TCP connection to telecared's
DC-09 receiver (tc-dc09load, C), send SIA-DCS events (RP: a heartbeat) and
NULL link tests half and half, one message at a time per panel: the next
goes out when the ACK of the last is in, and an ACK is sent only after the
commit. Measured, against the same daemon and database (100,000 devices
plus the 1,000 panels), in this order:

  mqtt     MQTT ingest, closed loop with 1,000 events in flight (tc-loadgen):
           the baseline, in the same run
  closed   the 1,000 panels in a closed loop: messages/s, ACK latency, CPU
  events   the same with events only (no polls): every message a write, as
           every MQTT event is
  paced    the 1,000 panels at 1,000 messages/s (one a second each): ACK
           latency when the receiver is not saturated

CPU per message is telecared's CPU time over the window divided by the
messages answered in it. Numbers are printed, not asserted."""
import json
import os
import socket
import sqlite3
import subprocess

PANELS = 1000
ACCOUNT_BASE = 0x100000
PACED_RATE = 1000


def _tool(bench):
    """tc-dc09load next to tc-loadgen (built by scripts/bench.sh), else compiled here."""
    exe = os.path.join(os.path.dirname(bench.loadgen), "tc-dc09load")
    if os.access(exe, os.X_OK):
        return exe
    exe = os.path.join(bench.workdir, "tc-dc09load")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dc09load.c")
    subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-o", exe, src], check=True)
    return exe


def _port():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            try:
                u.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no port free for TCP and UDP")


def _register(db, now_ms):
    """The panels as devices of [source panels], supervised (polls keep them so)."""
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO devices(id, resident_id, kind, heartbeat_ms, test, created_at, source,"
            " address) VALUES (?,?,?,?,?,?,?,?)",
            ((f"p{i:04d}", f"r{i:06d}", "panel", 600000, 0, now_ms, "panels",
              f"{ACCOUNT_BASE + i:X}") for i in range(PANELS)))
    con.close()


def _load(exe, port, pids, **kw):
    args = [exe, "--port", str(port), "--panels", str(PANELS)]
    for k, v in kw.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    for name, pid in pids:
        args += ["--pid", f"{name}={pid}"]
    p = subprocess.run(args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=120 + float(kw.get("duration", 5)))
    if p.returncode != 0:
        raise RuntimeError(f"tc-dc09load failed ({p.returncode}):\n{p.stderr}")
    r = json.loads(p.stdout)
    r["args"] = args[1:]
    return r


def _us_per_msg(r, per_s):
    cpu = r["procs"]["telecared"]["cpu_pct"]
    return cpu / 100 * 1e6 / per_s if per_s and cpu is not None and cpu >= 0 else None


def scenario(bench, template, R):
    """R is run.py's module: its Broker, Daemon, loadgen, settle and sizes."""
    db = bench.fresh_db(template, "dc09")
    _register(db, R.now_ms())
    port = _port()
    exe = _tool(bench)
    secs = bench.sz["closed_s"]
    old = R.DAEMON_CONF
    R.DAEMON_CONF = old + (f"\n[source panels]\nformat = sia-dc09\nlisten = 127.0.0.1:{port}\n"
                           f"max_connections = {PANELS + 100}\n")

    def run(b, d):
        pids = [("telecared", d.pid)]
        out = {}
        mq = R.loadgen(bench, "ingest", b.port, pids + [("broker", b.pid)], window=PANELS,
                       devices=PANELS, duration=secs, warmup=1, drain=10)
        out["mqtt"] = mq
        R.log(f"  mqtt ingest (closed loop, {PANELS} in flight): {mq['answered_per_s']:,.0f}/s,"
              f" p50 {mq['latency']['p50_ms']} p99 {mq['latency']['p99_ms']} ms,"
              f" telecared {_us_per_msg(mq, mq['answered_per_s']) or 0:.1f} us/event")
        R.settle([("telecared", d.pid), ("broker", b.pid)])
        for name, kw in (("closed", {"polls": 0.5}), ("events", {"polls": 0}),
                         ("paced", {"polls": 0.5, "rate": PACED_RATE})):
            r = _load(exe, port, pids, duration=secs, warmup=1, drain=10, **kw)
            out[name] = r
            R.log(f"  dc09 {name} ({PANELS} panels, {kw['polls']:.0%} polls"
                  f"{', %d/s' % PACED_RATE if 'rate' in kw else ''}):"
                  f" {r['acked_per_s']:,.0f} messages/s, ACK p50 {r['latency']['p50_ms']:.2f}"
                  f" p99 {r['latency']['p99_ms']:.2f} max {r['latency']['max_ms']:.1f} ms,"
                  f" NAK {r['nak']}, unanswered {r['unanswered']},"
                  f" telecared {_us_per_msg(r, r['acked_per_s']) or 0:.1f} us/message")
            R.settle([("telecared", d.pid), ("broker", b.pid)])
        st = d.status() or {}
        out["daemon_status"] = {"dc09": st.get("dc09"), "counts": st.get("counts"),
                                "loop": st.get("loop")}
        c, e, p = out["closed"], out["events"], out["paced"]
        out["summary"] = {
            "dc09_messages_per_s": c["acked_per_s"],
            "dc09_ack_p50_ms": c["latency"]["p50_ms"], "dc09_ack_p99_ms": c["latency"]["p99_ms"],
            "dc09_us_per_message": _us_per_msg(c, c["acked_per_s"]),
            "dc09_events_per_s": e["acked_per_s"],
            "dc09_events_ack_p50_ms": e["latency"]["p50_ms"],
            "dc09_events_ack_p99_ms": e["latency"]["p99_ms"],
            "dc09_events_us_per_message": _us_per_msg(e, e["acked_per_s"]),
            "dc09_paced_ack_p50_ms": p["latency"]["p50_ms"],
            "dc09_paced_ack_p99_ms": p["latency"]["p99_ms"],
            "dc09_paced_us_per_message": _us_per_msg(p, p["acked_per_s"]),
            "mqtt_events_per_s": mq["answered_per_s"],
            "mqtt_receipt_p50_ms": mq["latency"]["p50_ms"],
            "mqtt_receipt_p99_ms": mq["latency"]["p99_ms"],
            "mqtt_us_per_event": _us_per_msg(mq, mq["answered_per_s"]),
            "loop_worst_ms": (st.get("loop") or {}).get("worst_ms"),
        }
        return out
    try:
        return R.with_daemon(bench, db, run)
    finally:
        R.DAEMON_CONF = old
