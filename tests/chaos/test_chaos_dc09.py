"""Drill (issue 13): telecared killed with SIGKILL at random moments while
DC-09 panels report over TCP and UDP. Each panel sends its messages one at
a time, every one resent byte for byte (same sequence number, same
timestamp) until an ACK names it, reconnecting whenever the receiver is
gone; a few NULL polls and some alarm events among them.

After every restart: every message that was ACKed is in the database, once;
PRAGMA integrity_check is ok. At the end the panels drain: every message
sent is ACKed and stored exactly once (the ACK is a promise backed by a
commit, SPEC 2.8 and 7).

Rounds: 6 at CHAOS_SCALE=1, 40 at 10."""
import os
import socket
import sys
import threading
import time

import chaoslib as cl

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import dc09lib as dc  # noqa: E402

DRILL = "dc09"
RESEND_AFTER = 1.5


def free_port_both():
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            u.close()
    raise AssertionError("no port free for TCP and UDP")


class Panel(threading.Thread):
    """One panel: messages in order, each resent until ACKed."""

    def __init__(self, k, port, udp=False):
        super().__init__(name=f"panel-{k}", daemon=True)
        self.k = k
        self.port = port
        self.udp = udp
        self.account = f"{0xA000 + k:04X}"
        self.device = f"dc09-{k}"
        self.seq = 0
        self.acked = {}          # message id -> (first ACK at, kind)
        self.made = {}           # message id -> frame
        self.events = {}         # message id -> expected event type, None for a poll
        self.sends = 0
        self.resends = 0
        self.reconnects = 0
        self.errors = []
        self.generating = True
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.conn = None

    def _next(self):
        self.seq = self.seq % 9999 + 1
        i = self.seq
        ts = dc.timestamp()
        if i % 7 == 0:
            msg, typ = dc.null(i, self.account, ts=ts), None
        elif i % 5 == 0:
            msg, typ = dc.cid(i, self.account, "1101", ts=ts), "panic"
        else:
            msg, typ = dc.sia(i, self.account, f"Nri1/RP{i:04d}", ts=ts), "heartbeat"
        # the daemon's message id (docs/SPEC-EXTENSIONS.md): ACCOUNT/SEQ/TIMESTAMP
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(dc.parse_timestamp(ts)))
        return f"{self.account}/{i:04d}/{iso}", msg, typ

    def _connect(self):
        while not self.stop.is_set():
            try:
                self.conn = dc.Udp(self.port) if self.udp else dc.Tcp(self.port, timeout=2)
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def _drop(self):
        if self.conn:
            self.conn.close()
        self.conn = None
        self.reconnects += 1

    def run(self):
        while not self.stop.is_set() and self.generating:
            mid, msg, typ = self._next()
            with self.lock:
                self.made[mid] = msg
                self.events[mid] = typ
            first = True
            while not self.stop.is_set():
                if self.conn is None and not self._connect():
                    return
                try:
                    self.sends += 1
                    self.resends += 0 if first else 1
                    first = False
                    r = self.conn.ask(msg, timeout=RESEND_AFTER)
                except (OSError, ConnectionError):
                    self._drop()           # gone or silent: resend, as panels do
                    continue
                if r.kind == "ACK" and r.seq == self.seq and r.account == self.account:
                    with self.lock:
                        self.acked.setdefault(mid, time.monotonic())
                    break
                if r.kind == "ACK":
                    continue               # a late ACK of an earlier send of this one
                self.errors.append(f"{mid}: {r.kind} {r.raw!r}")
                time.sleep(0.2)            # NAK: resend after a moment
            time.sleep(0.01)
        if self.conn:
            self.conn.close()

    def snapshot(self):
        with self.lock:
            return dict(self.acked), dict(self.events)


def check(d, panels):
    """Every ACKed message with an event is stored exactly once; polls store
    nothing. Returns (numbers, problems). The ACKs are looked at first: the
    panels keep going, and what is ACKed before the query must be in it."""
    snaps = [(p, p.snapshot()) for p in panels]
    rows = d.query("SELECT device_id, eid, type FROM events WHERE device_id LIKE 'dc09-%'")
    stored = {}
    for r in rows:
        mid = r["eid"].strip('"').rsplit("/", 1)[0]
        stored.setdefault((r["device_id"], mid), []).append(r["type"])
    problems, acked_n, lost = [], 0, []
    for p, (acked, events) in snaps:
        for mid in acked:
            acked_n += 1
            typ = events[mid]
            got = stored.get((p.device, mid), [])
            if typ is None:
                if got:
                    problems.append(f"{p.device} {mid}: a NULL poll stored {got}")
            elif got != [typ]:
                lost.append((p.device, mid, got))
    if lost:
        problems.append(f"{len(lost)} ACKed messages not stored once: {lost[:5]}")
    return {"acked": acked_n, "rows": len(rows), "lost": len(lost)}, problems


@cl.drill(DRILL)
def test_dc09_kill9_panels_retry_until_acked(daemon):
    rng = cl.rng_for(DRILL)
    rounds = cl.scaled(6, 40)
    port = free_port_both()
    d = daemon(extra_lines=f"\n[source panels]\nformat = sia-dc09\nlisten = 127.0.0.1:{port}\n")
    d.add_resident("r-dc09", "Drill Resident")
    n_panels = 12
    for k in range(n_panels):
        d.add_device(f"dc09-{k}", "r-dc09", "--source", "panels", "--address", f"{0xA000 + k:04X}")
    panels = [Panel(k, port, udp=(k % 4 == 3)) for k in range(n_panels)]
    for p in panels:
        p.start()
    per_round = []
    cl.say(DRILL, f"{rounds} rounds, {n_panels} panels (a quarter on UDP), seed {cl.SEED}")
    t0 = time.monotonic()
    try:
        cl.wait_until(lambda: sum(len(p.acked) for p in panels) >= 50, 30, "50 ACKs")
        for r in range(1, rounds + 1):
            run_for = rng.uniform(0.05, 0.4) if r % 3 == 2 else rng.uniform(0.5, 2.5)
            time.sleep(run_for)
            before = sum(len(p.acked) for p in panels)
            d.kill9()
            down = rng.uniform(0.1, 0.8)
            time.sleep(down)
            t_spawn = time.monotonic()
            d.start()
            ready = time.monotonic() - t_spawn
            numbers, problems = check(d, panels)
            integ = cl.integrity(d.db)
            findings = cl.log_findings(d.log)
            row = dict(numbers, round=r, ran_s=round(run_for, 2), down_s=round(down, 2),
                       acked_at_kill=before, ready_s=round(ready, 2),
                       integrity=integ[0] if len(integ) == 1 else integ[:5])
            per_round.append(row)
            cl.say(DRILL, f"round {r}/{rounds}: ran {run_for:.2f}s, {before} ACKed at the kill, "
                   f"ready {ready:.2f}s after spawn; {numbers['acked']} ACKed, {numbers['rows']} "
                   f"rows, lost {numbers['lost']}; integrity {row['integrity']}")
            cl.record(DRILL, rounds_done=r, per_round=per_round)
            assert not problems, f"round {r}: " + "; ".join(problems)
            assert integ == ["ok"], f"round {r}: integrity_check: {integ[:10]}"
            assert not findings, f"round {r}: daemon log: {findings[:10]}"
        # drain: no new messages; everything made so far must get its ACK
        for p in panels:
            p.generating = False
        deadline = time.monotonic() + 60
        for p in panels:
            p.join(max(0.1, deadline - time.monotonic()))
        alive = [p.name for p in panels if p.is_alive()]
        assert not alive, f"panels still waiting for ACKs after 60 s: {alive}"
        final, problems = check(d, panels)
        made = sum(len(p.made) for p in panels)
        unacked = [(p.device, mid) for p in panels for mid in p.made if mid not in p.acked]
        result = dict(final, rounds=rounds, messages=made,
                      sends=sum(p.sends for p in panels), resends=sum(p.resends for p in panels),
                      reconnects=sum(p.reconnects for p in panels),
                      refusals=sum(len(p.errors) for p in panels),
                      elapsed_s=round(time.monotonic() - t0, 1))
        rc = d.sigterm()
        integ = cl.integrity(d.db)
        result.update(sigterm_rc=rc, integrity=integ)
        cl.record(DRILL, **result)
        cl.say(DRILL, "result: " + ", ".join(f"{k}={v}" for k, v in result.items()))
        assert not problems, "; ".join(problems)
        assert not unacked, f"messages never ACKed: {unacked[:5]}"
        assert final["acked"] == made
        with_event = sum(1 for p in panels for t in p.events.values() if t)
        assert final["rows"] == with_event, \
            f"{final['rows']} event rows for {with_event} messages with an event"
        assert rc == 0 and integ == ["ok"], (rc, integ)
        assert result["resends"] > 0, "no message was resent: the kills hit nothing in flight"
        errors = [e for p in panels for e in p.errors]
        assert not errors, f"NAK or DUH to a good message: {errors[:5]}"
    finally:
        for p in panels:
            p.stop.set()
        for p in panels:
            p.join(5)
